//! Superseded snapshots stored zstd-compressed (issue #13; `storage/FORMAT.md`,
//! "Compressed superseded snapshots"), end to end on a real server and real files:
//! a server with a small `snapCount` compresses every snapshot but the newest; with the
//! newest damaged, a restart restores the newest compressed one to a plain file, maps
//! it, replays the log after it and serves every znode written; the offline tools read
//! `.zst` files.

mod common;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{names_in, Kind, Server};
use raw::{mode, Conn};

fn names(dir: &Path) -> Vec<String> {
    names_in(dir, "")
}

fn ferrokeeper(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
        .args(args)
        .output()
        .expect("run ferrokeeper")
}

/// The snapshot directory once superseded snapshots are compressed
/// (`common::settled_snapshots`).
fn wait_compressed(s: &Server, min_compressed: usize) -> Vec<String> {
    common::settled_snapshots(
        &s.snap_dir(),
        min_compressed,
        Duration::from_secs(60),
        || s.log(),
    )
}

/// At least `n` znodes under `/c`, each with data of its own, and more in rounds of 100
/// until the server has written `snapshots` snapshots; returns what was written. A server
/// starts no snapshot while one is still being written, so how many snapshots `n`
/// creates yield depends on the disk's speed.
async fn write(s: &Server, n: usize, snapshots: usize) -> BTreeMap<String, Vec<u8>> {
    let mut c = Conn::connect(&s.address()).await;
    let mut written = BTreeMap::new();
    c.create("/c", b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    written.insert("/c".to_string(), Vec::new());
    let written_snapshots = || common::finished_names_in(&s.snap_dir(), "fk-snap.").len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while i < n || written_snapshots() < snapshots {
        assert!(
            Instant::now() < deadline,
            "{snapshots} snapshots not written after {i} creates:\n{}",
            s.log()
        );
        let round = if i < n { n } else { 100 };
        for _ in 0..round {
            let p = format!("/c/n{i:05}");
            let data = format!("znode {i} {}", "x".repeat(i % 50)).into_bytes();
            c.create(&p, &data, raw::open_acl(), mode::PERSISTENT)
                .await
                .expect("create");
            written.insert(p, data);
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    written
}

/// Every znode under `/c` as the server serves it.
async fn read(addr: &str) -> BTreeMap<String, Vec<u8>> {
    let mut c = Conn::connect(addr).await;
    let mut out = BTreeMap::new();
    out.insert(
        "/c".to_string(),
        c.get_data("/c", false).await.expect("get").0,
    );
    for child in c.get_children("/c", false).await.expect("children") {
        let p = format!("/c/{child}");
        let (data, _) = c.get_data(&p, false).await.expect("get");
        out.insert(p, data);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_snapshots_are_compressed_and_a_damaged_newest_falls_back_to_one() {
    // No purge (ZooKeeper's default): every snapshot is kept.
    let mut server = Server::start(Kind::Ferrokeeper, &[("snapCount", "200")]);
    let addr = server.address();
    let written = write(&server, 1500, 4).await;
    let files = wait_compressed(&server, 3);
    eprintln!("snapshots: {files:?}");
    assert_eq!(read(&addr).await, written);
    let dir = server.snap_dir();

    // Every `.zst` is a zstd frame of a whole plain snapshot: what `zstd -d` gives back
    // has the snapshot's magic and its zxid.
    for name in files.iter().filter(|n| n.ends_with(".zst")) {
        let plain =
            zstd::decode_all(&std::fs::read(dir.join(name)).expect("read")[..]).expect("zstd -d");
        assert_eq!(&plain[..8], b"FKSNAPSH", "{name}");
        let zxid = i64::from_le_bytes(plain[16..24].try_into().expect("8"));
        assert_eq!(name, &format!("fk-snap.{zxid:016x}.zst"));
    }

    // Damage the newest (plain) snapshot's payload, restart: the newest compressed one
    // is restored, loaded, and the log replayed after it.
    let newest = files
        .iter()
        .find(|n| !n.ends_with(".zst"))
        .expect("plain")
        .clone();
    let fallback = files
        .iter()
        .filter(|n| n.ends_with(".zst"))
        .max()
        .expect("zst")
        .trim_end_matches(".zst")
        .to_string();
    let mut bytes = std::fs::read(dir.join(&newest)).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(dir.join(&newest), bytes).expect("damage");
    server.kill9_and_restart();
    let log = server.log();
    assert!(
        log.contains("snapshot rejected")
            && log.contains(&newest)
            && log.contains("byte offset 48"),
        "the damaged newest is rejected, named with its offset"
    );
    let loaded = log
        .lines()
        .rfind(|l| l.contains("loaded snapshot"))
        .unwrap_or_default();
    assert!(loaded.contains(&fallback), "loaded {fallback}: {loaded}");
    let now = names(&dir);
    assert!(
        now.contains(&fallback),
        "restored to its plain name: {now:?}"
    );
    assert!(!now.contains(&format!("{fallback}.zst")), "{now:?}");
    assert_eq!(read(&addr).await, written, "every znode written is served");

    // Writes continue; the next snapshots supersede (and compress) the restored one.
    let mut c = Conn::connect(&addr).await;
    for i in 0..300 {
        c.create(&format!("/d{i}"), b"", raw::open_acl(), mode::PERSISTENT)
            .await
            .expect("create after restart");
    }
    let after = wait_compressed_or_damaged(&server, &newest);
    assert!(after.contains(&format!("{fallback}.zst")), "{after:?}");

    // The level: compression speed of the restored snapshot, for the record.
    measure_levels(
        &dir.join(
            after
                .iter()
                .find(|n| !n.ends_with(".zst") && **n != newest)
                .expect("plain"),
        ),
    );
}

/// As [`wait_compressed`], but the damaged snapshot stays plain beside the newest: the
/// compressor refuses a file that fails its checksum and leaves it as it is.
fn wait_compressed_or_damaged(s: &Server, damaged: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = names(&s.snap_dir());
        let plain: Vec<&String> = now
            .iter()
            .filter(|n| n.len() == "fk-snap.".len() + 16 && *n != damaged)
            .collect();
        if plain.len() == 1
            && !now.iter().any(|n| n.ends_with(".tmp"))
            && s.log().contains("left uncompressed")
        {
            return now;
        }
        assert!(Instant::now() < deadline, "{now:?}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints zstd's speed and ratio at levels 1 and 3 on one snapshot file.
fn measure_levels(path: &Path) {
    let plain = std::fs::read(path).expect("read");
    for level in [1, 3] {
        let started = Instant::now();
        let z = zstd::encode_all(&plain[..], level).expect("compress");
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "zstd level {level}: {} -> {} bytes ({:.3}), {:.0} MB/s",
            plain.len(),
            z.len(),
            z.len() as f64 / plain.len() as f64,
            plain.len() as f64 / secs / 1e6
        );
    }
}

/// The offline tools on compressed snapshots: `dump-snapshot` of a `.zst` prints what it
/// prints for the decompressed file; `verify` checks every `.zst` in full; `digest` and
/// `export` work from a data directory whose only snapshots are compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_read_compressed_snapshots() {
    let server = Server::start(Kind::Ferrokeeper, &[("snapCount", "200")]);
    let written = write(&server, 800, 3).await;
    let files = wait_compressed(&server, 2);
    let dir = server.snap_dir();
    let zst = files
        .iter()
        .find(|n| n.ends_with(".zst"))
        .expect("zst")
        .clone();
    let plain_dir = tempfile_dir(&server, "plain");
    let plain = plain_dir.join(zst.trim_end_matches(".zst"));
    std::fs::write(
        &plain,
        zstd::decode_all(&std::fs::read(dir.join(&zst)).expect("read")[..]).expect("zstd -d"),
    )
    .expect("write plain");
    let from_zst = ferrokeeper(&["dump-snapshot", dir.join(&zst).to_str().expect("utf-8")]);
    let from_plain = ferrokeeper(&["dump-snapshot", plain.to_str().expect("utf-8")]);
    assert!(
        from_zst.status.success(),
        "{}",
        String::from_utf8_lossy(&from_zst.stderr)
    );
    assert!(from_zst.stdout.len() > 1000);
    assert_eq!(from_zst.stdout, from_plain.stdout);

    let data = server.dir.join("data");
    let data = data.to_str().expect("utf-8");
    let verify = ferrokeeper(&["verify", "--data-dir", data]);
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(
        verify.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for name in files.iter().filter(|n| n.ends_with(".zst")) {
        assert!(
            text.lines().any(|l| l.starts_with("ok")
                && l.contains(name.as_str())
                && l.contains("tree digest")),
            "{name} verified in full: {text}"
        );
    }
    let digest_before = ferrokeeper(&["digest", "--data-dir", data]);
    assert!(digest_before.status.success());

    // A copy of the data directory without its plain (newest) snapshot: the tools start
    // from the newest compressed one and replay the log after it.
    // SAFETY: signalling our own child process by its pid.
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::four_letter_word(server.port, "ruok").is_ok() {
        assert!(Instant::now() < deadline, "server did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
    let copy = tempfile_dir_at(&plain_dir, "copy");
    copy_tree(Path::new(data), &copy);
    let copy_snap = copy.join("ferrokeeper/snap");
    for n in names(&copy_snap).iter().filter(|n| !n.ends_with(".zst")) {
        std::fs::remove_file(copy_snap.join(n)).expect("remove plain");
    }
    let copy_s = copy.to_str().expect("utf-8");
    let digest = ferrokeeper(&["digest", "--data-dir", copy_s]);
    assert!(
        digest.status.success(),
        "{}",
        String::from_utf8_lossy(&digest.stderr)
    );
    assert_eq!(digest.stdout, digest_before.stdout);
    assert!(
        names(&copy_snap).iter().all(|n| n.ends_with(".zst")),
        "the tools write nothing"
    );
    let out = plain_dir.join("zk");
    let export = ferrokeeper(&[
        "export",
        "--data-dir",
        copy_s,
        "--zookeeper-data-dir",
        out.to_str().expect("utf-8"),
    ]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let summary = String::from_utf8_lossy(&export.stderr).into_owned()
        + &String::from_utf8_lossy(&export.stdout);
    assert!(summary.contains("znodes"), "{summary}");
    assert!(written.len() > 800);
}

fn tempfile_dir(server: &Server, name: &str) -> PathBuf {
    tempfile_dir_at(&server.dir, name)
}

fn tempfile_dir_at(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
