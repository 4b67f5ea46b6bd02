//! Compressed log segments on a real server (`storage/FORMAT.md`, "Compressed segments";
//! `ferrokeeper.log.compressSuperseded`): with small segments and frequent snapshots, the
//! segments a snapshot covers become `fk-log.*.zst` while the server runs; when the newer
//! snapshots are damaged, the restart falls back to an older one (then to none),
//! decompresses the segments the replay needs, and serves every znode as it was.

mod common;
mod raw;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{finished_names_in, names_in, Kind, Server};
use raw::tree::read_tree;
use raw::{mode, Conn};

/// The zxid in a `fk-snap.`/`fk-log.` name (16 hex digits after the first dot).
fn zxid_of(name: &str) -> i64 {
    i64::from_str_radix(&name.split('.').nth(1).expect("a dot")[..16], 16).expect("hex")
}

/// 64 KiB segments and a snapshot every 50–100 txns; autopurge off (the default), so
/// every segment and snapshot stays.
const CONFIG: &[(&str, &str)] = &[("snapCount", "100"), ("preAllocSize", "64")];

/// Waits (bounded) until `done` holds.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until no snapshot is being written (no `.tmp`) twice in a row.
fn settle_snapshots(s: &Server) {
    let quiet = || {
        !names_in(&s.snap_dir(), "fk-snap.")
            .iter()
            .any(|n| n.ends_with(".tmp"))
    };
    wait_for("snapshots settle", Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(300));
        quiet() && {
            std::thread::sleep(Duration::from_millis(300));
            quiet()
        }
    });
}

/// Flips one byte `skew` bytes past the middle of a snapshot, in place (the running
/// server may still map it: no truncation).
fn damage(path: &Path, skew: u64) {
    let len = std::fs::metadata(path).expect("snapshot").len();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open snapshot");
    let at = len / 2 + skew;
    let mut byte = [0u8];
    use std::io::Read;
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut byte).expect("read");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&[byte[0] ^ 0x5a]).expect("write");
    f.sync_all().expect("sync");
}

/// The compressed segments left must all be wholly at or below `after`: each one's next
/// segment (by name) starts at or below `after + 1`.
fn assert_needed_decompressed(log: &[String], after: i64) {
    for (i, name) in log.iter().enumerate() {
        if !name.ends_with(".zst") {
            continue;
        }
        let next = log.get(i + 1).map(|n| zxid_of(n));
        assert!(
            next.is_some_and(|n| n <= after + 1),
            "{name} may hold txns after 0x{after:x} and was not decompressed: {log:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_segments_come_back_when_an_older_snapshot_is_loaded() {
    let mut server = Server::start(Kind::Ferrokeeper, CONFIG);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    c.create("/z", b"root", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    for d in 0..8 {
        c.create(&format!("/z/d{d}"), b"", raw::open_acl(), mode::PERSISTENT)
            .await
            .expect("dir");
    }
    // ~3,000 txns of ~150 B framed: several 64 KiB segments.
    let written = 2400;
    for i in 0..written {
        let p = format!("/z/d{}/n{i:05}", i % 8);
        let data = format!("value {i} {}", "x".repeat(i % 120));
        c.create(&p, data.as_bytes(), raw::open_acl(), mode::PERSISTENT)
            .await
            .expect("create");
        if i % 4 == 0 {
            c.set_data(&p, format!("changed {i}").as_bytes(), -1)
                .await
                .expect("set");
        }
        if i % 9 == 0 {
            c.delete(&p, -1).await.expect("delete");
        }
    }
    // Compression runs in the background after the batch that follows a snapshot's
    // read-back: a few more writes make sure that batch comes.
    let log = server.log_dir();
    let mut extra = 0;
    wait_for(
        "segments covered by a snapshot are compressed",
        Duration::from_secs(30),
        || {
            names_in(&log, "fk-log.")
                .iter()
                .filter(|n| n.ends_with(".zst"))
                .count()
                >= 3
        },
    );
    while extra < 5 {
        c.create(
            &format!("/z/extra{extra}"),
            b"e",
            raw::open_acl(),
            mode::PERSISTENT,
        )
        .await
        .expect("extra");
        extra += 1;
    }
    settle_snapshots(&server);
    let before = read_tree(&addr).await;
    assert!(before.len() > 2000, "{} znodes", before.len());
    let segments = names_in(&log, "fk-log.");
    let compressed = segments.iter().filter(|n| n.ends_with(".zst")).count();
    assert!(
        segments.iter().all(|n| !n.ends_with(".tmp")),
        "{segments:?}"
    );
    eprintln!("log before the restart: {segments:?}");
    // The tools read the compressed segments as plain ones: `verify` checks every record
    // (consecutive zxids across segments), `dump-log` prints every txn from zxid 1.
    let data = server.dir.join("data");
    let verified = ferrokeeper::tools::inspect::verify(&data, None, false, &mut |_| {});
    assert!(verified.ok, "{:#?}", verified.lines);
    let mut dump = Vec::new();
    let txns = ferrokeeper::tools::inspect::dump_log(&log, &mut dump, &mut |_| {})
        .expect("dump-log reads compressed segments");
    let dump = String::from_utf8(dump).expect("utf-8");
    assert!(txns > written as u64, "{txns} txns");
    assert!(
        dump.contains("/z/d0/n00000"),
        "the first creates are in the dump"
    );

    // The newer half of the snapshots damaged: the restart falls back to an older one,
    // past the first segments, so that some compressed segments are needed and some not.
    // Damaged while the server is down: a snapshot it wrote after the damage (a quiet
    // server folds its overlay) would be loaded instead.
    let snap_dir = server.snap_dir();
    let mut snaps = Vec::new();
    server.kill9_change_restart(|| {
        snaps = finished_names_in(&snap_dir, "fk-snap.");
        assert!(snaps.len() >= 4, "{snaps:?}");
        for name in &snaps[snaps.len() / 2..] {
            damage(&snap_dir.join(name), 0);
        }
    });
    let keep = snaps.len() / 2;
    let loaded = zxid_of(&snaps[keep - 1]);
    let after_fallback = names_in(&log, "fk-log.");
    eprintln!("log after falling back to 0x{loaded:x}: {after_fallback:?}");
    assert!(
        server
            .log()
            .contains(&format!("snapshot_zxid=0x{loaded:x}"))
            || server.log().contains(&snaps[keep - 1]),
        "fell back to {}",
        snaps[keep - 1]
    );
    assert_needed_decompressed(&after_fallback, loaded);
    let still = after_fallback
        .iter()
        .filter(|n| n.ends_with(".zst"))
        .count();
    assert!(
        still < compressed,
        "segments were decompressed: {after_fallback:?}"
    );
    assert!(
        still > 0,
        "segments wholly before the loaded snapshot stay compressed: {after_fallback:?}"
    );
    assert!(server.log().contains("decompressing a log segment"));
    assert_eq!(
        before,
        read_tree(&addr).await,
        "the tree after the fallback"
    );

    // Then no usable snapshot at all: every segment is decompressed. (First past the
    // moment a quiet server folds its replayed overlay into a snapshot, 1 s idle.)
    std::thread::sleep(Duration::from_secs(2));
    settle_snapshots(&server);
    server.kill9_change_restart(|| {
        for name in finished_names_in(&snap_dir, "fk-snap.") {
            // Not the byte flipped before: flipped twice, it would be whole again.
            damage(&snap_dir.join(name), 7);
        }
    });
    let plain = names_in(&log, "fk-log.");
    assert!(plain.iter().all(|n| !n.ends_with(".zst")), "{plain:?}");
    assert_eq!(zxid_of(&plain[0]), 1, "{plain:?}");
    assert_eq!(
        before,
        read_tree(&addr).await,
        "the tree replayed from zxid 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_turns_compression_off() {
    let mut config = CONFIG.to_vec();
    config.push(("ferrokeeper.log.compressSuperseded", "false"));
    let server = Server::start(Kind::Ferrokeeper, &config);
    let mut c = Conn::connect(&server.address()).await;
    for i in 0..1500 {
        let data = format!("value {i} {}", "y".repeat(100));
        c.create(
            &format!("/n{i:05}"),
            data.as_bytes(),
            raw::open_acl(),
            mode::PERSISTENT,
        )
        .await
        .expect("create");
    }
    settle_snapshots(&server);
    c.create("/last", b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("create");
    std::thread::sleep(Duration::from_millis(500));
    let log = names_in(&server.log_dir(), "fk-log.");
    assert!(log.len() >= 3, "{log:?}");
    assert!(log.iter().all(|n| !n.contains(".zst")), "{log:?}");
}
