//! Restart from snapshot plus log: a whole tree (paths, data, every Stat field, ACLs)
//! read through a client is the same before a SIGKILL and after the restart; the log is
//! purged behind the retained snapshots; a damaged newest snapshot falls back to an older
//! one, and with no usable snapshot and a purged log the server refuses to start. Also
//! `ferrokeeper import` of a Java ZooKeeper 3.8 data directory, served afterwards.

mod common;
mod raw;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{finished_names_in, Kind, Server};
use ferrokeeper_net::records::{Acl, Stat};
use raw::{mode, perms, Conn};

/// What a client sees of one znode.
type Seen = (Vec<u8>, Stat, Vec<Acl>);

/// Every znode under `/`, read through a client, by path.
async fn read_tree(addr: &str) -> BTreeMap<String, Seen> {
    let mut c = Conn::connect(addr).await;
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let (data, stat) = c.get_data(&p, false).await.expect("get_data");
        let (acl, _) = c.get_acl(&p).await.expect("get_acl");
        for child in c.get_children(&p, false).await.expect("get_children") {
            stack.push(if p == "/" {
                format!("/{child}")
            } else {
                format!("{p}/{child}")
            });
        }
        out.insert(p, (data, stat, acl));
    }
    out
}

/// Creates `n` znodes in a few subtrees with churn: setData, deletes, setACL,
/// sequentials, containers, TTL nodes and ephemerals of a session that stays open.
async fn churn(c: &mut Conn, root: &str, n: usize) {
    let read_only = vec![raw::world(perms::READ)];
    c.create(root, b"root", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    for d in 0..10 {
        c.create(
            &format!("{root}/d{d}"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT,
        )
        .await
        .expect("dir");
    }
    c.create_container(&format!("{root}/box"), b"c")
        .await
        .expect("container");
    for i in 0..n {
        let p = format!("{root}/d{}/n{i}", i % 10);
        let data = vec![(i % 251) as u8; i % 300];
        let acl = if i % 17 == 0 {
            read_only.clone()
        } else {
            raw::open_acl()
        };
        c.create(&p, &data, acl, mode::PERSISTENT)
            .await
            .expect("create");
        if i % 3 == 0 && i % 17 != 0 {
            c.set_data(&p, format!("v{i}").as_bytes(), -1)
                .await
                .expect("set");
        }
        if i % 5 == 0 && i % 17 != 0 {
            c.delete(&p, -1).await.expect("delete");
        }
        if i % 97 == 0 {
            c.create(
                &format!("{root}/box/s-"),
                b"",
                raw::open_acl(),
                mode::PERSISTENT_SEQUENTIAL,
            )
            .await
            .expect("sequential");
            c.create_ttl(
                &format!("{root}/ttl{i}"),
                b"t",
                mode::PERSISTENT_WITH_TTL,
                3_600_000,
            )
            .await
            .expect("ttl");
            c.create(
                &format!("{root}/eph{i}"),
                b"e",
                raw::open_acl(),
                mode::EPHEMERAL,
            )
            .await
            .expect("ephemeral");
        }
    }
}

/// Small segments so that a few thousand txns span several and purging shows (on, as
/// ZooKeeper's autopurge is, only with a purge interval).
const CONFIG: &[(&str, &str)] = &[
    ("snapCount", "100"),
    ("preAllocSize", "256"),
    ("autopurge.purgeInterval", "1"),
];

/// Waits until no snapshot temp file exists and the count is stable (the background
/// snapshot thread has finished).
fn settle_snapshots(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let tmp = std::fs::read_dir(s.snap_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .unwrap_or(false);
        if !tmp || Instant::now() > deadline {
            return;
        }
    }
}

/// The "recovered: ... elapsed=..." line of the last start.
fn restart_line(s: &Server) -> String {
    s.log()
        .lines()
        .rfind(|l| l.contains("recovered: snapshot plus transaction log"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_and_log_keeps_the_whole_tree() {
    let mut server = Server::start(Kind::Ferrokeeper, CONFIG);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    churn(&mut c, "/r", 3000).await;
    settle_snapshots(&server);
    let before = read_tree(&addr).await;
    assert!(before.len() > 2000, "{} znodes", before.len());

    // Retention runs after each snapshot and again after the compressor's pass (which
    // may hold the oldest then): bounded, as both are background threads.
    let deadline = Instant::now() + Duration::from_secs(20);
    while finished_names_in(&server.snap_dir(), "fk-snap.").len() > 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let snaps = finished_names_in(&server.snap_dir(), "fk-snap.");
    assert_eq!(
        snaps.len(),
        3,
        "snapRetainCount (3) snapshots kept: {snaps:?}"
    );
    let segments = finished_names_in(&server.log_dir(), "fk-log.");
    assert!(
        !segments.contains(&"fk-log.0000000000000001".to_string()),
        "the first segment was purged: {segments:?}"
    );

    server.kill9_and_restart();
    let line = restart_line(&server);
    eprintln!("restart: {line}");
    assert!(
        line.contains("fk-snap."),
        "restarted from a snapshot: {line}"
    );
    let after = read_tree(&addr).await;
    assert_eq!(before.len(), after.len());
    for (p, seen) in &before {
        assert_eq!(Some(seen), after.get(p), "{p}");
    }

    // Writes continue at the next zxid, and a second restart agrees again.
    let mut c = Conn::connect(&addr).await;
    c.create("/after", b"x", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("create after restart");
    let before = read_tree(&addr).await;
    server.kill9_and_restart();
    assert_eq!(before, read_tree(&addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let mut server = Server::start(Kind::Ferrokeeper, CONFIG);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    churn(&mut c, "/f", 600).await;
    settle_snapshots(&server);
    let before = read_tree(&addr).await;
    let snaps = finished_names_in(&server.snap_dir(), "fk-snap.");
    assert!(snaps.len() >= 2, "{snaps:?}");
    let newest = server.snap_dir().join(snaps.last().expect("one"));
    let mut bytes = std::fs::read(&newest).expect("read snapshot");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&newest, bytes).expect("damage snapshot");

    server.kill9_and_restart();
    let log = server.log();
    assert!(
        log.contains("snapshot rejected") && log.contains("byte offset 48"),
        "the rejection names file and offset"
    );
    assert_eq!(before, read_tree(&addr).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_usable_snapshot_and_a_purged_log_refuses_to_start() {
    let mut server = Server::start(Kind::Ferrokeeper, CONFIG);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    churn(&mut c, "/g", 2000).await;
    settle_snapshots(&server);
    assert!(!finished_names_in(&server.log_dir(), "fk-log.")
        .contains(&"fk-log.0000000000000001".to_string()));
    for name in finished_names_in(&server.snap_dir(), "fk-snap.") {
        let p = server.snap_dir().join(name);
        let mut bytes = std::fs::read(&p).expect("read");
        bytes[20] ^= 1; // inside the header's zxid: caught by the header checksum
        std::fs::write(&p, bytes).expect("damage");
    }
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.kill9_and_restart();
    }));
    assert!(restarted.is_err(), "the server must refuse to start");
    let log = server.log();
    assert!(log.contains("txns between are missing"), "gap reported");
    assert!(
        log.contains("byte offset 40"),
        "damaged file and offset named"
    );
}

// ---- import ----

/// A workload on Java ZooKeeper with `snapCount=100`: several of its snapshots and logs.
async fn java_workload(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        let c = Conn::connect(addr).await;
        if c.session_id != 0 {
            break c;
        }
        assert!(Instant::now() < deadline, "no session from ZooKeeper");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    churn(&mut c, "/imp", 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_a_zookeeper_data_dir_then_serve_it() {
    let java = Server::start(Kind::JavaZk, &[("snapCount", "100")]);
    java_workload(&java.address()).await;
    let live = read_tree(&java.address()).await;
    // A copy of the data directory taken while ZooKeeper runs would race its writes:
    // kill it first (no shutdown snapshot), then copy.
    let pid = java.pid() as i32;
    // SAFETY: signalling our own child process by its pid.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(500));
    let zk_data = java.dir.join("data");

    // The ferrokeeper that will serve the import: started on an empty data directory,
    // killed, its directory replaced by the import's output, then started again (the
    // harness writes dataDir itself).
    let mut fk = Server::start(Kind::Ferrokeeper, &[]);
    // SAFETY: signalling our own child process by its pid.
    unsafe { libc::kill(fk.pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    let out = fk.dir.join("data");
    std::fs::remove_dir_all(out.join("ferrokeeper")).expect("clear the fresh server's data");
    let run = |out: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
            .args(["import", "--zookeeper-data-dir"])
            .arg(&zk_data)
            .arg("--data-dir")
            .arg(out)
            .output()
            .expect("run ferrokeeper import")
    };
    let started = Instant::now();
    let o = run(&out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("import took {:?}: {stderr}", started.elapsed());
    assert!(o.status.success(), "import failed: {stderr}");
    assert!(stderr.contains("100%"), "progress shown");
    // A second import into the same place refuses.
    let again = run(&out);
    assert!(!again.status.success(), "second import must refuse");
    fk.kill9_and_restart();
    let served = read_tree(&fk.address()).await;
    let strip = |m: &BTreeMap<String, Seen>| -> BTreeMap<String, Seen> {
        // /zookeeper/config's data is the ensemble config, which differs per server.
        m.iter()
            .filter(|(p, _)| !p.starts_with("/zookeeper"))
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect()
    };
    let (live, served) = (strip(&live), strip(&served));
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        served.keys().collect::<Vec<_>>()
    );
    for (p, seen) in &live {
        assert_eq!(Some(seen), served.get(p), "{p}");
    }
}

/// Restart time at scale: `FK_RESTART_ZNODES` znodes (default 10 000) of 100 bytes made
/// with pipelined creates, `snapCount=10000`, then SIGKILL and restart; prints the
/// server's own "recovered" line (snapshot load time and total). Run with
/// `cargo test --release --test restart restart_time -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn restart_time_at_scale() {
    use ferrokeeper_net::jute::Encode;
    let n: usize = std::env::var("FK_RESTART_ZNODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut server = Server::start(Kind::Ferrokeeper, &[("snapCount", "10000")]);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    c.create("/s", b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    let started = Instant::now();
    let window = 1000;
    let mut i = 0;
    while i < n {
        let mut xids = Vec::with_capacity(window);
        for k in i..(i + window).min(n) {
            let body = ferrokeeper_net::records::CreateRequest {
                path: format!("/s/n{k:07}"),
                data: vec![7u8; 100].into(),
                acl: raw::open_acl(),
                flags: mode::PERSISTENT,
            }
            .to_bytes();
            xids.push(c.start_call(raw::op::CREATE, &body).await);
        }
        for x in xids {
            assert_eq!(c.wait_reply(x).await.err, 0);
        }
        i += window;
    }
    eprintln!("created {n} znodes in {:?}", started.elapsed());
    settle_snapshots(&server);
    let wall = Instant::now();
    server.kill9_and_restart();
    eprintln!("kill9_and_restart until ruok+srvr: {:?}", wall.elapsed());
    eprintln!("{}", restart_line(&server));
    eprintln!(
        "snapshots: {:?}",
        finished_names_in(&server.snap_dir(), "fk-snap.")
    );
}

/// Lines of the server's log that contain `what`, without their colours (ANSI escapes).
fn log_lines(s: &Server, what: &str) -> Vec<String> {
    let plain = |l: &str| {
        let mut out = String::new();
        let mut escaped = false;
        for ch in l.chars() {
            match (escaped, ch) {
                (false, '\x1b') => escaped = true,
                (false, c) => out.push(c),
                (true, 'm') => escaped = false,
                (true, _) => {}
            }
        }
        out
    };
    s.log()
        .lines()
        .map(plain)
        .filter(|l| l.contains(what))
        .collect()
}

/// A quiet server folds its overlay into a snapshot (`snapshot::Fold`) long before
/// `snapCount`: after 1,500 creates and a quiet second the tree is rebased on a fresh
/// snapshot with nothing left in the overlay, reads and watches set before the fold
/// answer as before, writes after it go on, a quiet server does not fold again, and a
/// restart serves the same tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_overlay_folds_into_a_snapshot() {
    let mut server = Server::start(Kind::Ferrokeeper, &[("snapCount", "100000")]);
    let addr = server.address();
    let mut c = Conn::connect(&addr).await;
    c.create("/fold", b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    let n = 1_500;
    for i in 0..n {
        c.create(
            &format!("/fold/n{i}"),
            format!("v{i}").as_bytes(),
            raw::open_acl(),
            mode::PERSISTENT,
        )
        .await
        .expect("create");
    }
    // Watches set on nodes still in the overlay, to fire after the fold.
    c.get_data("/fold/n7", true).await.expect("watch data");
    c.get_children("/fold", true).await.expect("watch children");
    c.exists("/fold/n8", true).await.expect("watch exists");
    let before = read_tree(&addr).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let rebased = loop {
        assert_eq!(c.ping().await.err, 0, "session alive while quiet");
        let rebased = log_lines(&server, "tree rebased on the new snapshot");
        if !rebased.is_empty() {
            break rebased;
        }
        assert!(
            Instant::now() < deadline,
            "no fold within 30 s; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(log_lines(&server, "writes quiet: folding").len(), 1);
    assert!(
        rebased[0].contains("overlay_after=0"),
        "the overlay emptied into the base: {}",
        rebased[0]
    );
    settle_snapshots(&server);
    assert_eq!(finished_names_in(&server.snap_dir(), "fk-snap.").len(), 1);

    // Served from the base now, the same as from the overlay.
    assert_eq!(before, read_tree(&addr).await);
    assert!(c.take_events().is_empty(), "the fold fired no watch");
    c.set_data("/fold/n7", b"changed", -1).await.expect("set");
    let e = c.next_event().await;
    assert_eq!(
        (e.kind, e.path.as_str()),
        (raw::ev::DATA_CHANGED, "/fold/n7")
    );
    c.delete("/fold/n8", -1).await.expect("delete a base node");
    let mut seen = [c.next_event().await, c.next_event().await];
    seen.sort_by_key(|e| e.kind);
    assert_eq!(
        seen.iter()
            .map(|e| (e.kind, e.path.as_str()))
            .collect::<Vec<_>>(),
        [
            (raw::ev::DELETED, "/fold/n8"),
            (raw::ev::CHILDREN_CHANGED, "/fold")
        ]
    );
    assert_eq!(
        c.exists("/fold/n8", false).await.err(),
        Some(raw::err::NO_NODE)
    );
    let (data, _) = c.get_data("/fold/n9", false).await.expect("base node");
    assert_eq!(data, b"v9");

    // Quiet again with a small overlay: no second fold.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(log_lines(&server, "writes quiet: folding").len(), 1);

    let before = read_tree(&addr).await;
    server.kill9_and_restart();
    let line = restart_line(&server);
    assert!(
        line.contains("fk-snap."),
        "restarted from the fold's snapshot: {line}"
    );
    assert_eq!(before, read_tree(&addr).await);
}
