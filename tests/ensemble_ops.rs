//! The operator's view of an ensemble (issue #12): `mntr`, `srvr` and `stat` on the
//! leader and on a follower of a three-member ferrokeeper ensemble, compared key by key
//! with a three-member Apache ZooKeeper 3.8 ensemble after the same small workload.
//!
//! What is compared, and what differs on purpose, is pinned in the constants below:
//! a key that appears or disappears on either side fails the test until the lists and
//! `src/admin/mntr.rs` say why.
//!
//! `leader_counts_a_snapshot_sync`: a ferrokeeper follower that fell behind a compacted
//! log is synced by snapshot, which its leader counts as `snap_count` (and each member
//! times its own snapshots as `snapshottime`).
//!
//! `a_quiet_ensemble_folds_its_overlay`: with writes quiet, every member folds its overlay
//! into a snapshot long before `snapCount`.
//!
//! `a_follower_fetches_a_snapshot_its_leader_had_compressed`: members compress their
//! superseded snapshots, and a leader restores a compressed snapshot a follower must
//! fetch before serving it.
//!
//! Ports come from `common::ensemble::range_ports`.

mod common;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::ensemble::{four_letter_word_at, java_available, Ensemble, EnsembleOptions};
use common::Kind;
use raw::{mode, open_acl, Conn};

/// MonitorCommand's quorum keys of a leader (ZooKeeper 3.8 names), all of which
/// ferrokeeper's leader prints, from its Raft driver's view of the peers, and neither
/// follower prints.
const LEADER_ONLY: &[&str] = &[
    "learners",
    "synced_followers",
    "synced_non_voting_followers",
    "pending_syncs",
    "leader_uptime",
    "last_proposal_size",
    "max_proposal_size",
    "min_proposal_size",
];

/// Keys Java's leader prints that ferrokeeper's does not: the summary sets
/// `<sid>_learner_handler_qp_size` and `<sid>_learner_handler_qp_time_ms`, one per
/// follower, the queue of ZAB's LearnerHandler, which Raft's replication replaces.
fn is_java_leader_only(key: &str) -> bool {
    key.split_once('_').is_some_and(|(sid, rest)| {
        sid.parse::<u64>().is_ok() && rest.starts_with("learner_handler_qp_")
    })
}

/// Keys Java prints on both roles that ferrokeeper's ensemble members leave out: the
/// startup summaries (a member recovers through its Raft driver, which does not time
/// its load; `src/admin/mntr.rs` says so).
const JAVA_MEMBER_ONLY: &[&str] = &[
    "dbinittime",
    "startup_snap_load_time",
    "startup_txns_load_time",
    "startup_txns_loaded",
];

/// Keys Java prints on both roles that ferrokeeper does not: everything a standalone
/// comparison (`tests/metrics.rs`, NOT_PRINTED) already pins, plus the ensemble's ZAB
/// machinery. Filtered here by the same rule as `tests/metrics.rs`: the lists there
/// and in `src/admin/mntr.rs` are the reference; this test checks only that the
/// ensemble adds no *other* difference.
fn is_known_java_only(key: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "prep_",
        "sync_processor_",
        "commit_",
        "read_commit",
        "write_commit",
        "om_",
        "learner_",
        "leader_unavailable",
        "follower_",
        "observer_",
        "proposal_",
        "quorum_ack",
        "election_",
        "looking_",
        "diff_",
        "inflight_",
        "ensemble_auth",
        "response_packet",
        "dead_watcher",
        "add_dead",
        "jvm_",
        "netty_",
        "tls_",
        "non_mtls",
        "outstanding_",
        "stale_",
        "request_",
        "requests_",
        "reads_",
        "session_queues",
        "pending_session",
        "connection_token",
        "connection_drop",
        "connection_revalidate",
        "revalidate",
        "digest_",
        "unavailable_",
        "socket_closing",
        "close_session",
        "local_write",
        "server_write",
        "time_waiting",
        "concurrent_request",
        "write_batch",
        "read_final",
        "write_final",
        "propagation",
        "commit",
        "quit_leading",
        "skip_learner",
        "watch_bytes",
        "throttled",
        "large_requests",
        "insecure_admin",
        "unrecoverable",
        "cnxn_closed",
        "sync_process",
        "write_per_namespace",
        "read_per_namespace",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || key.ends_with("_per_namespace")
}

/// Keys ferrokeeper prints that Java does not: its own `fk_*` counters, and on an
/// ensemble member no `startup_*`/`dbinittime` (it leaves them out, as listed in
/// `src/admin/mntr.rs`; Java prints them).
fn is_known_fk_only(key: &str) -> bool {
    key.starts_with("fk_")
}

/// `mntr` as a map of key (without `zk_`) to value.
fn mntr(ens: &Ensemble, i: usize) -> BTreeMap<String, String> {
    let m = &ens.members[i];
    four_letter_word_at(&m.host, m.client_port, "mntr")
        .expect("mntr")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim_start_matches("zk_").to_string(), v.to_string()))
        .collect()
}

/// Reduces `avg_x`, `min_x`, ..., `p999_x` to `x`.
fn base_names<'a>(keys: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    keys.map(|k| {
        for p in [
            "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
        ] {
            if let Some(rest) = k.strip_prefix(p) {
                // avg_latency and friends are gauges of their own.
                if rest != "latency" && !rest.ends_with("client_response_size") {
                    return rest.to_string();
                }
            }
        }
        k.clone()
    })
    .collect()
}

/// The labels of a `srvr`/`stat` reply (the text before `:` of each line), in order,
/// with the client lines of `stat` (indented) reduced to one marker.
fn labels(reply: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in reply.lines() {
        let label = if line.starts_with(' ') {
            "<client>".to_string()
        } else {
            line.split_once(':')
                .map_or(line, |(label, _)| label)
                .to_string()
        };
        if out.last() != Some(&label) || label != "<client>" {
            out.push(label);
        }
    }
    out
}

fn four(ens: &Ensemble, i: usize, word: &str) -> String {
    let m = &ens.members[i];
    four_letter_word_at(&m.host, m.client_port, word).expect(word)
}

/// One session on the leader: a few creates and setData, so proposals have sizes.
fn workload(ens: &Ensemble, leader: usize) {
    writes(ens, leader, "/ops", 10);
}

/// One session on member `leader`: creates `path`, then sets its data `sets` times.
fn writes(ens: &Ensemble, leader: usize, path: &str, sets: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let addr = ens.address(leader);
        let mut c = raw::tree::connect(&addr).await;
        c.create(path, b"x", open_acl(), mode::PERSISTENT)
            .await
            .expect("create");
        for i in 0..sets {
            c.set_data(path, format!("value {i}").as_bytes(), -1)
                .await
                .expect("set");
        }
        c.close().await;
    });
}

/// The three views of one member.
struct View {
    mntr: BTreeMap<String, String>,
    srvr: Vec<String>,
    stat: Vec<String>,
}

fn view(ens: &Ensemble, i: usize) -> View {
    View {
        mntr: mntr(ens, i),
        srvr: labels(&four(ens, i, "srvr")),
        stat: labels(&four(ens, i, "stat")),
    }
}

#[test]
fn ensemble_mntr_srvr_stat_match_java() {
    if !java_available() {
        eprintln!(
            "SKIPPED: java or /usr/share/java/zookeeper.jar is missing (apt-get install zookeeper)"
        );
        return;
    }
    let options = EnsembleOptions::config(&[("forceSync", "no")]);
    let java = Ensemble::start_with(Kind::JavaZk, 3, &options);
    let fk = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
    let mut views = Vec::new();
    for ens in [&java, &fk] {
        let leader = ens.leader();
        workload(ens, leader);
        ens.wait_converged();
        let follower = (leader + 1) % 3;
        views.push((view(ens, leader), view(ens, follower)));
    }
    let (fk_view, java_view) = (views.pop().expect("fk"), views.pop().expect("java"));
    for (role, j, f) in [
        ("leader", &java_view.0, &fk_view.0),
        ("follower", &java_view.1, &fk_view.1),
    ] {
        let (jb, fb) = (base_names(j.mntr.keys()), base_names(f.mntr.keys()));
        let java_only: Vec<&String> = jb
            .difference(&fb)
            .filter(|k| !is_known_java_only(k))
            .filter(|k| !(role == "leader" && is_java_leader_only(k)))
            .filter(|k| !JAVA_MEMBER_ONLY.contains(&k.as_str()))
            .collect();
        let fk_only: Vec<&String> = fb
            .difference(&jb)
            .filter(|k| !is_known_fk_only(k))
            .collect();
        eprintln!("{role}: Java only {java_only:?}; ferrokeeper only {fk_only:?}");
        assert!(
            java_only.is_empty(),
            "{role}: Java's keys ferrokeeper lacks: {java_only:?}"
        );
        assert!(fk_only.is_empty(), "{role}: keys Java lacks: {fk_only:?}");
        for key in ["server_state", "peer_state"] {
            assert_eq!(j.mntr.get(key), f.mntr.get(key), "{role}: {key}");
        }
        for key in ["quorum_size", "synced_observers", "znode_count"] {
            assert_eq!(j.mntr.get(key), f.mntr.get(key), "{role}: {key}");
        }
        for key in LEADER_ONLY {
            let (jk, fk) = (j.mntr.contains_key(*key), f.mntr.contains_key(*key));
            assert_eq!(jk, role == "leader", "{role}: Java and {key}");
            assert_eq!(fk, jk, "{role}: ferrokeeper and {key}");
        }
        assert_eq!(f.srvr, j.srvr, "{role}: srvr labels");
        assert_eq!(f.stat, j.stat, "{role}: stat labels");
    }
    // The leader's view of its followers agrees in value.
    for key in [
        "learners",
        "synced_followers",
        "synced_non_voting_followers",
        "pending_syncs",
    ] {
        assert_eq!(
            java_view.0.mntr.get(key),
            fk_view.0.mntr.get(key),
            "leader: {key}"
        );
    }
}

/// The number `mntr` shows for `key` on member `i` (0 when absent).
fn mntr_num(ens: &Ensemble, i: usize, key: &str) -> f64 {
    mntr(ens, i)
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Writes rounds of ten sets on member `leader` (`/pad0`, `/pad1`, ...) until it has
/// timed `at_least` snapshots. A member starts no snapshot while its last one is still
/// being written (ZooKeeper's leader skips one then too), so how many snapshots a fixed
/// number of writes yields depends on how fast the disk is: 80 writes in 25 ms gave two.
fn snapshots_after_writes(ens: &Ensemble, leader: usize, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0.. {
        if mntr_num(ens, leader, "cnt_snapshottime") >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {}: cnt_snapshottime never reached {at_least}\n{}",
            leader + 1,
            ens.logs_tail(20)
        );
        writes(ens, leader, &format!("/pad{round}"), 10);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `key` on member `i` is at least `at_least`: a deadline for a broken
/// setup, not a timing assertion.
fn wait_mntr(ens: &Ensemble, i: usize, key: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while mntr_num(ens, i, key) < at_least {
        assert!(
            Instant::now() < deadline,
            "member {}: {key} never reached {at_least}\n{}",
            i + 1,
            ens.logs_tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An ensemble whose leader snapshots every ~10 txns (snapCount 10) and compacts its Raft
/// log right up to each snapshot (margin 0): a follower killed for a few writes can only
/// come back by installing the leader's snapshot.
fn snapshot_sync_options() -> EnsembleOptions {
    let mut options = EnsembleOptions::config(&[("forceSync", "no"), ("snapCount", "10")]);
    options.env.push((
        "FERROKEEPER_RAFT_COMPACT_MARGIN".to_string(),
        "0".to_string(),
    ));
    options
}

/// ZooKeeper's leader counts `snap_count` once per learner it syncs by snapshot
/// (LearnerHandler). A ferrokeeper follower killed while the leader snapshots (snapCount
/// 10) and compacts its Raft log past the follower's position (margin 0) can only come
/// back by the snapshot, and the leader counts it; before that, no member counted one.
#[test]
fn leader_counts_a_snapshot_sync() {
    let mut fk = Ensemble::start_with(Kind::Ferrokeeper, 3, &snapshot_sync_options());
    let leader = fk.leader();
    let behind = (leader + 1) % 3;
    fk.kill9(behind);
    writes(&fk, leader, "/a", 30);
    wait_mntr(&fk, leader, "cnt_snapshottime", 1.0);
    // More writes after the snapshot: the leader compacts once it sees it written.
    writes(&fk, leader, "/b", 30);
    snapshots_after_writes(&fk, leader, 2.0);
    assert_eq!(
        mntr_num(&fk, leader, "snap_count"),
        0.0,
        "no snapshot sent yet"
    );
    fk.restart(behind);
    fk.wait_converged();
    wait_mntr(&fk, leader, "snap_count", 1.0);
    assert_eq!(
        mntr_num(&fk, behind, "snap_count"),
        0.0,
        "a follower sends none"
    );
}

/// A quiet ensemble folds its overlay into a snapshot on every member (`snapshot::Fold`,
/// driven by `replica::driver`), far below `snapCount`: each member times one snapshot
/// (`snapshottime`) after 1,500 creates and a quiet second, every member still serves
/// the nodes, and a follower restarted from its fold's snapshot serves them too.
#[test]
fn a_quiet_ensemble_folds_its_overlay() {
    let options = EnsembleOptions::config(&[("forceSync", "no"), ("snapCount", "100000")]);
    let mut fk = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
    let leader = fk.leader();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = 1_500;
    rt.block_on(async {
        let addr = fk.address(leader);
        let mut c = raw::tree::connect(&addr).await;
        c.create("/fold", b"", open_acl(), mode::PERSISTENT)
            .await
            .expect("root");
        for i in 0..n {
            c.create(
                &format!("/fold/n{i}"),
                format!("v{i}").as_bytes(),
                open_acl(),
                mode::PERSISTENT,
            )
            .await
            .expect("create");
        }
        c.close().await;
    });
    for i in 0..3 {
        wait_mntr(&fk, i, "cnt_snapshottime", 1.0);
        assert!(
            fk.members[i].log().contains("writes quiet: folding"),
            "member {} folded",
            i + 1
        );
    }
    let follower = (leader + 1) % 3;
    fk.kill9(follower);
    fk.restart(follower);
    fk.wait_converged();
    for i in 0..3 {
        rt.block_on(async {
            let mut c = Conn::connect(&fk.address(i)).await;
            c.sync("/fold").await.expect("sync");
            let (data, _) = c.get_data("/fold/n1499", false).await.expect("get");
            assert_eq!(data, b"v1499", "member {}", i + 1);
            let children = c.get_children("/fold", false).await.expect("children");
            assert_eq!(children.len(), n, "member {}", i + 1);
        });
    }
}

/// `log` without the ANSI colour sequences (`ESC [ ... m`) tracing puts around fields.
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How long a member's snapshots may take to settle (`common::settled_snapshots`).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// Ensemble members compress superseded snapshots (`storage/FORMAT.md`, "Compressed
/// superseded snapshots"), and a follower still gets the snapshot a Raft message names
/// when the leader had compressed it (`snapshot::transfer`). A follower is killed while
/// its leader takes several snapshots (snapCount 10) and compacts its Raft log past the
/// follower (margin 0); the leader compresses all but its newest. Then the newest, the
/// one the leader offers, is compressed too, by the test: it stands in for the rare ways
/// the snapshot named gets compressed before its transfer (the compressor gave up
/// waiting for the driver to move the offer on, or the leader restarted mid-transfer
/// and lost its pins). The leader describes it by its plain length, restores it when
/// the follower asks for the first chunk (answering "not yet" meanwhile), and serves
/// the restored file: the follower installs that snapshot and serves every value written.
#[test]
fn a_follower_fetches_a_snapshot_its_leader_had_compressed() {
    use ferrokeeper_storage::snapshot as snapfile;
    let mut fk = Ensemble::start_with(Kind::Ferrokeeper, 3, &snapshot_sync_options());
    let leader = fk.leader();
    let behind = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let snap_dir: Vec<std::path::PathBuf> = fk
        .members
        .iter()
        .map(|m| m.dir.join("data/ferrokeeper/snap"))
        .collect();
    fk.kill9(behind);
    writes(&fk, leader, "/a", 40);
    writes(&fk, leader, "/b", 40);
    snapshots_after_writes(&fk, leader, 3.0);
    let before = common::settled_snapshots(&snap_dir[leader], 2, SETTLE_LIMIT, || fk.logs_tail(20));
    // The member still running compresses its superseded snapshots as well.
    common::settled_snapshots(&snap_dir[other], 1, SETTLE_LIMIT, || fk.logs_tail(20));
    let offered = snapfile::list(&snap_dir[leader])
        .expect("list")
        .pop()
        .expect("a snapshot");
    assert!(!offered.is_compressed(), "{before:?}");
    let mut storage =
        ferrokeeper_storage::backend::disk::DiskStorage::open_read_only(&snap_dir[leader])
            .expect("open the leader's snapshot directory");
    snapfile::compress_with(&mut storage, &offered, snapfile::LEVEL).expect("compress");
    assert_eq!(
        common::names_in(&snap_dir[leader], &offered.name),
        [format!("{}.zst", offered.name)]
    );

    fk.restart(behind);
    fk.wait_converged();
    wait_mntr(&fk, leader, "snap_count", 1.0);
    let leader_log = fk.members[leader].log();
    assert!(
        leader_log.contains("restored a compressed snapshot for a follower"),
        "{}",
        fk.logs_tail(40)
    );
    // Served from the restored plain file, which stays (pinned, then the newest).
    assert_eq!(
        common::names_in(&snap_dir[leader], &offered.name),
        std::slice::from_ref(&offered.name)
    );
    let follower_log = without_colours(&fk.members[behind].log());
    let zxid = format!("zxid=0x{:x}", offered.zxid);
    assert!(
        follower_log
            .lines()
            .any(|l| l.contains("installed the leader's snapshot") && l.contains(&zxid)),
        "the follower installs snapshot {zxid}:\n{}",
        fk.logs_tail(40)
    );
    assert!(
        follower_log.contains("the leader restored the snapshot it sends"),
        "the follower was told to wait for the restore:\n{}",
        fk.logs_tail(40)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for i in 0..3 {
        rt.block_on(async {
            let mut c = Conn::connect(&fk.address(i)).await;
            c.sync("/b").await.expect("sync");
            for path in ["/a", "/b"] {
                let (data, _) = c.get_data(path, false).await.expect("get");
                assert_eq!(data, b"value 39", "member {} {path}", i + 1);
            }
        });
    }
}
