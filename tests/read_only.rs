//! Read-only mode and local sessions (issue #10), each scenario run against a
//! three-member ferrokeeper ensemble and the same scenario against a three-member Java
//! ZooKeeper 3.8 ensemble, with real clients over real sockets.
//!
//! - Read-only mode (`readonlymode.enabled=true`, with `localSessionsEnabled=true`, which
//!   3.7+ needs for a read-only server to take new sessions): two of three members are killed; the
//!   one left reports `Mode: read-only` and `isro` answers `ro`; a read-only kazoo client
//!   (`tests/cross/kazoo_read_only.py`) and the Java shell (`zkCli.sh -r`) read, writes and
//!   `sync` get NotReadOnly, a client that did not ask for read-only is refused. When the
//!   two return, the member rejoins and the kazoo client, still running, writes again.
//!   Curator with `canBeReadOnly(true)` (`tests/cross/CuratorReadOnly.java`) sees
//!   READ_ONLY, reads, gets NotReadOnlyException on writes, then SUSPENDED, CONNECTED
//!   and writes.
//! - Local sessions (`localSessionsEnabled=true`, with and without
//!   `localSessionsUpgradingEnabled`): `tests/cross/kazoo_local_sessions.py` checks that a
//!   local session writes, is unknown to other members, and is upgraded by an ephemeral
//!   create (or refused with EphemeralOnLocalSession).
//!
//! The limits on waits only keep a broken ensemble from hanging the suite; nothing here
//! asserts a time. A test that needs java, Debian's ZooKeeper or python's kazoo prints
//! `SKIPPED:` and why when they are missing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ensemble::{java_available, Ensemble, EnsembleOptions};
use common::Kind;
use zookeeper_client::{Acls, Client, CreateMode};

/// The Java shell, from Debian's `zookeeper` package.
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// How long one phase of a client script may take before the test gives up on it.
const PHASE_LIMIT: Duration = Duration::from_secs(150);

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why this scenario cannot run here, if it cannot.
fn missing_prerequisite(kind: Kind) -> Option<String> {
    if kind == Kind::JavaZk && !java_available() {
        return Some("java or /usr/share/java/zookeeper.jar is missing".into());
    }
    let has_kazoo = Command::new(python())
        .args(["-c", "import kazoo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!has_kazoo).then(|| format!("{} has no kazoo (tests/run.sh installs it)", python()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cross")
        .join(name)
        .display()
        .to_string()
}

/// Creates `/ro` and `/ro/data` ("before") through `address` and waits until every
/// member has it.
fn seed(ensemble: &Ensemble, address: &str) {
    runtime().block_on(async {
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(address)
            .await
            .expect("connect");
        let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
        client.create("/ro", b"", &open).await.expect("create /ro");
        client
            .create("/ro/data", b"before", &open)
            .await
            .expect("create /ro/data");
    });
    ensemble.wait_converged();
}

/// A client script driven phase by phase over stdin (see `kazoo_read_only.py`).
struct Phased {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    transcript: String,
}

impl Phased {
    fn start(mut command: Command) -> Phased {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Phased {
            child,
            stdin,
            lines,
            transcript: String::new(),
        }
    }

    /// Runs `phase` and returns its report lines.
    fn phase(&mut self, phase: &str) -> Vec<String> {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{phase}").expect("send phase");
        stdin.flush().expect("flush phase");
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(PHASE_LIMIT)
                .unwrap_or_else(|_| panic!("phase {phase} never ended:\n{}", self.transcript));
            self.transcript.push_str(&line);
            self.transcript.push('\n');
            if line == "DONE" {
                return out;
            }
            out.push(line);
        }
    }

    /// Ends input and returns whether the script exited 0.
    fn finish(mut self) -> bool {
        drop(self.stdin.take());
        self.child.wait().is_ok_and(|s| s.success())
    }
}

fn assert_all_ok(what: &str, lines: &[String], logs: &str) {
    let failures: Vec<&String> = lines.iter().filter(|l| !l.starts_with("ok ")).collect();
    assert!(
        failures.is_empty() && !lines.is_empty(),
        "{what}: {failures:?}\nall lines:\n{}\n{logs}",
        lines.join("\n")
    );
}

/// Runs `zkCli.sh -server address [-r]` with `input` and returns what it printed, less
/// logging noise.
fn zkcli(address: &str, read_only: bool, input: &str, out: &Path) -> String {
    let mut command = Command::new(ZKCLI);
    command.arg("-server").arg(address);
    if read_only {
        command.arg("-r");
    }
    let file = std::fs::File::create(out).expect("zkCli output file");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("start zkCli.sh");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("zkCli input");
    let deadline = std::time::Instant::now() + PHASE_LIMIT;
    while child.try_wait().expect("wait zkCli").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let l = l.trim();
            !(l.is_empty()
                || l.starts_with("SLF4J:")
                || l.starts_with("Connecting to ")
                || l == "Welcome to ZooKeeper!"
                || l.starts_with("JLine support")
                || l == "WATCHER::"
                || l.starts_with("WatchedEvent state:"))
        })
        .map(|l| l.trim().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

// ------------------------------------------------------------------ read-only mode

fn read_only_mode(kind: Kind) {
    if let Some(why) = missing_prerequisite(kind) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    // Since ZOOKEEPER-3863 (3.7) a read-only server keeps no global sessions: it serves
    // local sessions only, so without localSessionsEnabled Java 3.8 lets no new client
    // in (the connect request is left unanswered; ferrokeeper closes the connection).
    let options = EnsembleOptions::config(&[
        ("readonlymode.enabled", "true"),
        ("localSessionsEnabled", "true"),
    ]);
    let mut ensemble = Ensemble::start_with(kind, 3, &options);
    let leader = ensemble.leader();
    let survivor = (leader + 1) % 3;
    let address = ensemble.address(survivor);
    seed(&ensemble, &ensemble.connect_string());

    for i in (0..3).filter(|&i| i != survivor) {
        ensemble.kill9(i);
    }
    let mode = ensemble.wait_mode(survivor, &["read-only"]);
    assert_eq!(mode, "read-only");
    let member = &ensemble.members[survivor];
    let isro = common::ensemble::four_letter_word_at(&member.host, member.client_port, "isro")
        .expect("isro");
    assert_eq!(isro, "ro", "isro on a read-only member");

    let mut kazoo = Command::new(python());
    kazoo.arg(script("kazoo_read_only.py")).arg(&address);
    let mut kazoo = Phased::start(kazoo);
    let report = kazoo.phase("ro");
    assert_all_ok("kazoo in read-only mode", &report, &ensemble.logs_tail(30));
    let mut curator = curator(&address);
    if let Some(curator) = curator.as_mut() {
        let report = curator.phase("ro");
        assert_all_ok(
            "Curator in read-only mode",
            &report,
            &ensemble.logs_tail(30),
        );
    }

    // The Java client through its shell: `-r` asks for read-only. A read answers as
    // usual; each write or sync prints the NotReadOnly error and the shell goes on.
    let shell = zkcli(
        &address,
        true,
        "get /ro/data\nls /ro\ncreate /ro/java x\nset /ro/data y\nsync /ro\nget /ro/data\nquit\n",
        &ensemble.dir.join("zkcli-ro.out"),
    );
    // What Java ZooKeeper 3.8 makes the shell print, line for line (after these come
    // only connection-state messages as the shell quits).
    let expected = [
        "before",
        "[data]",
        "Not a read-only call: /ro/java",
        "Not a read-only call: /ro/data",
        "Sync has failed. rc=-119",
        "before",
    ];
    let lines: Vec<&str> = shell.lines().take(expected.len()).collect();
    assert_eq!(lines, expected, "zkCli.sh -r against {kind:?}:\n{shell}");

    for i in (0..3).filter(|&i| i != survivor) {
        ensemble.restart(i);
    }
    ensemble.wait_mode(survivor, &["leader", "follower"]);
    let report = kazoo.phase("rejoined");
    assert_all_ok(
        "kazoo after the quorum returned",
        &report,
        &ensemble.logs_tail(30),
    );
    assert!(kazoo.finish(), "kazoo_read_only.py failed");
    if let Some(mut curator) = curator {
        let report = curator.phase("rejoined");
        assert_all_ok(
            "Curator after the quorum returned",
            &report,
            &ensemble.logs_tail(30),
        );
        assert!(curator.finish(), "CuratorReadOnly.java failed");
    }
    ensemble.wait_converged();
}

/// Curator with `canBeReadOnly(true)` on `address` (`tests/cross/CuratorReadOnly.java`),
/// or `None` with the reason printed when its jars are missing.
fn curator(address: &str) -> Option<Phased> {
    let cp = match common::curator_classpath() {
        Ok(cp) => cp,
        Err(why) => {
            eprintln!("SKIPPED (the Curator part only): {why}");
            return None;
        }
    };
    let mut java = Command::new("java");
    java.args(["-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", &cp])
        .arg(script("CuratorReadOnly.java"))
        .arg(address);
    Some(Phased::start(java))
}

#[test]
fn read_only_mode_java() {
    read_only_mode(Kind::JavaZk);
}

#[test]
fn read_only_mode_ferrokeeper() {
    read_only_mode(Kind::Ferrokeeper);
}

// ------------------------------------------------------------------ local sessions

fn local_sessions(kind: Kind, upgrading: bool) {
    if let Some(why) = missing_prerequisite(kind) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let options = EnsembleOptions::config(&[
        ("localSessionsEnabled", "true"),
        (
            "localSessionsUpgradingEnabled",
            if upgrading { "true" } else { "false" },
        ),
    ]);
    let ensemble = Ensemble::start_with(kind, 3, &options);
    let leader = ensemble.leader();
    let a = ensemble.address((leader + 1) % 3);
    let b = ensemble.address((leader + 2) % 3);
    let output = Command::new(python())
        .arg(script("kazoo_local_sessions.py"))
        .arg(upgrading.to_string())
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run kazoo_local_sessions.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_all_ok(
        &format!(
            "local sessions (upgrading {upgrading}), stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        &lines,
        &ensemble.logs_tail(30),
    );
    assert!(output.status.success(), "kazoo_local_sessions.py failed");
}

#[test]
fn local_sessions_upgrading_java() {
    local_sessions(Kind::JavaZk, true);
}

#[test]
fn local_sessions_upgrading_ferrokeeper() {
    local_sessions(Kind::Ferrokeeper, true);
}

#[test]
fn local_sessions_without_upgrading_java() {
    local_sessions(Kind::JavaZk, false);
}

#[test]
fn local_sessions_without_upgrading_ferrokeeper() {
    local_sessions(Kind::Ferrokeeper, false);
}
