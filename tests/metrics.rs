//! `mntr` and `/metrics` against Apache ZooKeeper 3.8 (issue #12 items 2 and 6):
//!
//! * `mntr_keys_match_zookeepers_standalone`: the key sets of a live Java standalone
//!   `mntr` and ferrokeeper's after the same small workload. Java's keys ferrokeeper does
//!   not print must be exactly [`NOT_PRINTED`] (the list `src/admin/mntr.rs` documents);
//!   ferrokeeper's extra keys are its own `fk_*` ones. The counters added here
//!   (`connection_request_count`, `bytes_received_count`, `response_bytes`,
//!   `sync_processor_batch_size`, `startup_*`, `dbinittime`) must move as the workload
//!   says, and the `client_response_size` summary must equal Java's.
//! * `prometheus_scrapes_the_dashboard_names`: Debian's Prometheus scrapes ferrokeeper's
//!   `/metrics` with a temporary config; every name the "ZooKeeper by Prometheus"
//!   Grafana dashboard (10465) queries that ferrokeeper exports is then found through
//!   Prometheus' HTTP query API.
//! * `log_sync_snapshot_and_sessionless_counters_move_as_javas`: `fsynctime` (forceSync
//!   on), `snapshottime` (snapCount crossed) and `sessionless_connections_expired`
//!   (`nio.sessionlessCnxnTimeout` of 1 s) move on ferrokeeper as on Java 3.8 after the
//!   same writes and raw connections; ferrokeeper's AdminServer `monitor` and
//!   Prometheus `/metrics` carry them with ZooKeeper's names and types.
//!
//! * `prometheus_scrapes_an_ensemble`: Prometheus scrapes the three members of a
//!   ferrokeeper ensemble. The leader exposes the quorum gauges ZooKeeper's leader
//!   registers (`LeaderZooKeeperServer.registerMetrics`: `learners`, `synced_followers`,
//!   ... `min_proposal_size`) with a three-voter quorum's values, every member
//!   `quorum_size` (QuorumZooKeeperServer), a follower `synced_observers`
//!   (FollowerZooKeeperServer) and none of the leader's; `promtool check metrics`
//!   accepts each member's text. Debian ships no ZooKeeper Prometheus provider jar, so
//!   the names and which role registers them come from ZooKeeper's source
//!   (release-3.8.6), not from a live Java scrape.
//!
//! Ports come from this test's range, 24000–24999 (an ensemble's from
//! `common::ensemble::range_ports`).

mod common;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Kind, Launch, Server};
use raw::{mode, open_acl, Conn, ConnectOptions};

/// `mntr` as a map of key (without `zk_`) to value.
fn mntr(server: &Server) -> BTreeMap<String, String> {
    server
        .four_letter("mntr")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim_start_matches("zk_").to_string(), v.to_string()))
        .collect()
}

/// Java 3.8's standalone `mntr` keys that ferrokeeper does not print (captured from a
/// run of this test): the request-processor pipeline, caches, throttling, JVM, Netty and
/// ZAB machinery it does not have, the TLS connection gauges it does not count yet, and
/// the counters it could fill but does not yet (`src/admin/mntr.rs` groups them and says
/// why). Summaries by their base name.
const NOT_PRINTED: &[&str] = &[
    "add_dead_watcher_stall_time",
    "close_session_prep_time",
    "cnxn_closed_without_zk_server_running",
    "commit_commit_proc_req_queued",
    "commit_count",
    "commit_process_time",
    "commit_propagation_latency",
    "concurrent_request_processing_in_commit_processor",
    "connection_drop_count",
    "connection_revalidate_count",
    "connection_token_deficit",
    "dead_watchers_cleaner_latency",
    "dead_watchers_cleared",
    "dead_watchers_queued",
    "diff_count",
    "digest_mismatches_count",
    "election_time",
    "ensemble_auth_fail",
    "ensemble_auth_skip",
    "ensemble_auth_success",
    "follower_sync_time",
    "inflight_diff_count",
    "inflight_snap_count",
    "insecure_admin_count",
    "jvm_pause_time_ms",
    "large_requests_rejected",
    "leader_unavailable_time",
    "learner_commit_received_count",
    "learner_proposal_received_count",
    "learner_request_processor_queue_size",
    "local_write_committed_time_ms",
    "looking_count",
    "netty_queued_buffer_capacity",
    "non_mtls_local_conn_count",
    "non_mtls_remote_conn_count",
    "observer_sync_time",
    "om_commit_process_time_ms",
    "om_proposal_process_time_ms",
    "outstanding_changes_queued",
    "outstanding_changes_removed",
    "outstanding_tls_handshake",
    "pending_session_queue_size",
    "prep_process_time",
    "prep_processor_queue_size",
    "prep_processor_queue_time_ms",
    "prep_processor_request_queued",
    "propagation_latency",
    "proposal_ack_creation_latency",
    "proposal_latency",
    "proposal_process_time",
    "quit_leading_due_to_disloyal_voter",
    "quorum_ack_latency",
    "read_commit_proc_issued",
    "read_commit_proc_req_queued",
    "read_commitproc_time_ms",
    "read_final_proc_time_ms",
    "reads_after_write_in_session_queue",
    "reads_issued_from_session_queue",
    "request_commit_queued",
    "request_throttle_queue_time_ms",
    "request_throttle_wait_count",
    "requests_in_session_queue",
    "requests_not_forwarded_to_commit_processor",
    "response_packet_cache_hits",
    "response_packet_cache_misses",
    "response_packet_get_children_cache_hits",
    "response_packet_get_children_cache_misses",
    "revalidate_count",
    "server_write_committed_time_ms",
    "session_queues_drained",
    "skip_learner_request_to_next_processor_count",
    "socket_closing_time",
    "stale_replies",
    "stale_requests",
    "stale_requests_dropped",
    "sync_process_time",
    "sync_processor_queue_and_flush_time_ms",
    "sync_processor_queue_flush_time_ms",
    "sync_processor_queue_size",
    "sync_processor_queue_time_ms",
    "sync_processor_request_queued",
    "throttled_ops",
    "time_waiting_empty_pool_in_commit_processor_read_ms",
    "tls_handshake_exceeded",
    "unavailable_time",
    "unrecoverable_error_count",
    "watch_bytes",
    "write_batch_time_in_commit_processor",
    "write_commit_proc_issued",
    "write_commit_proc_req_queued",
    "write_commitproc_time_ms",
    "write_final_proc_time_ms",
];

/// Reduces `avg_x`, `min_x`, ..., `p999_x` to `x`.
fn base_names(keys: impl Iterator<Item = String>) -> BTreeSet<String> {
    keys.map(|k| {
        for p in [
            "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
        ] {
            if let Some(rest) = k.strip_prefix(p) {
                // Fixed gauges that merely look like summaries.
                if !matches!(k.as_str(), "avg_latency" | "min_latency" | "max_latency") {
                    return rest.to_string();
                }
            }
        }
        k
    })
    .collect()
}

async fn workload(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        let c = Conn::connect(addr).await;
        if c.session_id != 0 {
            break c;
        }
        assert!(Instant::now() < deadline, "no session from {addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    c.create("/m", b"x", open_acl(), mode::PERSISTENT)
        .await
        .expect("create");
    for i in 0..20 {
        c.set_data("/m", format!("{i}").as_bytes(), -1)
            .await
            .expect("set");
        c.get_data("/m", true).await.expect("get");
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mntr_keys_match_zookeepers_standalone() {
    let java = Server::start_on_port_with(Kind::JavaZk, free_port(), &[], &Launch::default());
    let fk = Server::start_on_port_with(Kind::Ferrokeeper, free_port(), &[], &Launch::default());
    workload(&java.address()).await;
    workload(&fk.address()).await;
    let (j, f) = (mntr(&java), mntr(&fk));
    let (jb, fb) = (base_names(j.keys().cloned()), base_names(f.keys().cloned()));
    // `<namespace>_read_per_namespace` and `_write_per_namespace` are named after the
    // paths used (`m_...` here): ferrokeeper keeps no per-namespace counts.
    let java_only: Vec<&String> = jb
        .difference(&fb)
        .filter(|k| !k.ends_with("_per_namespace"))
        .collect();
    let fk_only: Vec<&String> = fb
        .difference(&jb)
        .filter(|k| !k.starts_with("fk_"))
        .collect();
    eprintln!("Java only: {java_only:?}\nferrokeeper only: {fk_only:?}");
    let expected: Vec<String> = NOT_PRINTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        java_only.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        expected,
        "Java's mntr keys ferrokeeper lacks differ from the documented list"
    );
    assert!(fk_only.is_empty(), "keys Java does not print: {fk_only:?}");
    // Response sizes (header and body, no length prefix) of the same replies, pings and
    // watch events, the ConnectResponse left out, as Java counts them: the last is the
    // closeSession's bare header.
    for k in [
        "last_client_response_size",
        "min_client_response_size",
        "max_client_response_size",
    ] {
        assert_eq!(f.get(k), j.get(k), "{k}");
    }
    assert_eq!(f["last_client_response_size"], "16");

    // The counters filled here moved with the workload: one session handshake (plus
    // the four-letter words, which are not ConnectRequests), its bytes both ways, 41
    // writes in at least one log write each, and one startup.
    let num = |k: &str| -> f64 {
        f.get(k)
            .unwrap_or_else(|| panic!("mntr lacks {k}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} is not a number"))
    };
    assert_eq!(num("connection_request_count"), 1.0);
    assert!(num("bytes_received_count") > 20.0 * 20.0);
    assert!(num("response_bytes") > 20.0 * 20.0);
    assert!(num("cnt_sync_processor_batch_size") >= 1.0);
    assert!(num("sum_sync_processor_batch_size") >= 21.0);
    assert_eq!(num("cnt_startup_txns_loaded"), 1.0);
    assert_eq!(num("cnt_dbinittime"), 1.0);
}

/// The `mntr` values of the watch-trigger summaries and `stale_sessions_expired`.
fn watch_and_expiry_keys(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(k, _)| k.ends_with("_watch_count") || k.as_str() == "stale_sessions_expired")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Watches on `/w` from `a` and `b`, changes from `c`, each step waiting for its
/// events so that every trigger has happened before `mntr` is read.
async fn watch_workload(addr: &str) {
    let (mut a, mut b, mut c) = (
        Conn::connect(addr).await,
        Conn::connect(addr).await,
        Conn::connect(addr).await,
    );
    // NodeCreated with two watchers: one sample of 2.
    a.exists("/w", true).await.expect_err("no /w yet");
    b.exists("/w", true).await.expect_err("no /w yet");
    c.create("/w", b"", open_acl(), mode::PERSISTENT)
        .await
        .expect("create /w");
    a.next_event().await;
    b.next_event().await;
    // NodeDataChanged for a's data watch (b's child watch does not see it): one of 1.
    a.get_data("/w", true).await.expect("get");
    b.get_children("/w", true).await.expect("children");
    c.set_data("/w", b"x", -1).await.expect("set");
    a.next_event().await;
    // NodeChildrenChanged for b; the child's own NodeCreated has no watcher: no sample.
    c.create("/w/c", b"", open_acl(), mode::PERSISTENT)
        .await
        .expect("create /w/c");
    b.next_event().await;
    c.delete("/w/c", -1).await.expect("delete /w/c");
    // NodeDeleted: the data table's trigger finds a and b (a sample of 2), the child
    // table's finds a (a sample of 1, though a gets no second event).
    a.get_data("/w", true).await.expect("get");
    a.get_children("/w", true).await.expect("children");
    b.exists("/w", true).await.expect("exists");
    c.delete("/w", -1).await.expect("delete /w");
    a.next_event().await;
    b.next_event().await;
    for conn in [&mut a, &mut b, &mut c] {
        conn.ping().await;
        conn.close().await;
    }
}

/// `node_created_watch_count`, `node_deleted_watch_count`, `node_changed_watch_count`,
/// `node_children_watch_count` (ZooKeeper's `WatchManager.triggerWatch` summaries: one
/// sample of the watchers found per trigger that found any) and
/// `stale_sessions_expired` (`SessionTrackerImpl.run`: one per session expired, none
/// for a session closed) match Java 3.8 after the same watches, changes and one
/// session left to expire. ferrokeeper runs one shard here: with several, a trigger's
/// watchers on different shards are separate samples (see `src/admin/mntr.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_trigger_and_expiry_counters_match_java() {
    let java = Server::start_on_port_with(Kind::JavaZk, free_port(), &[], &Launch::default());
    let fk = Server::start_on_port_with(
        Kind::Ferrokeeper,
        free_port(),
        &[("ferrokeeper.shards", "1")],
        &Launch::default(),
    );
    let mut seen = Vec::new();
    for server in [&java, &fk] {
        let addr = server.address();
        // Wait for the server to take sessions (ferrokeeper's connection may be refused
        // while it starts).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut c = Conn::connect(&addr).await;
            if c.session_id != 0 {
                c.close().await;
                break;
            }
            assert!(Instant::now() < deadline, "no session from {addr}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        watch_workload(&addr).await;
        // A session with the smallest timeout (2 × tickTime) whose client goes away
        // without closing it.
        let lost = Conn::connect_with(
            &addr,
            ConnectOptions {
                timeout_ms: 4000,
                ..ConnectOptions::default()
            },
        )
        .await;
        assert_ne!(lost.session_id, 0);
        drop(lost);
        // A deadline for a broken setup, not a timing assertion: wait for the expiry.
        let deadline = Instant::now() + Duration::from_secs(120);
        while mntr(server)
            .get("stale_sessions_expired")
            .map(String::as_str)
            != Some("1")
        {
            assert!(
                Instant::now() < deadline,
                "the lost session never expired: {:?}",
                watch_and_expiry_keys(&mntr(server))
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        seen.push(watch_and_expiry_keys(&mntr(server)));
    }
    let (f, j) = (seen.pop(), seen.pop());
    assert_eq!(f, j);
    let j = j.unwrap_or_default();
    let get = |k: &str| j.get(k).map(String::as_str);
    assert_eq!(get("cnt_node_created_watch_count"), Some("1"));
    assert_eq!(get("sum_node_created_watch_count"), Some("2"));
    assert_eq!(get("cnt_node_deleted_watch_count"), Some("2"));
    assert_eq!(get("sum_node_deleted_watch_count"), Some("3"));
    assert_eq!(get("cnt_node_changed_watch_count"), Some("1"));
    assert_eq!(get("cnt_node_children_watch_count"), Some("1"));
}

/// A Prometheus server scraping `target` every second, its data in a temp dir.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    api: String,
}

impl Prometheus {
    fn start(targets: &[String]) -> Option<Prometheus> {
        let bin = "/usr/bin/prometheus";
        if !std::path::Path::new(bin).exists() {
            eprintln!("SKIPPED: Prometheus is not installed (tests/run.sh installs Debian's `prometheus`)");
            return None;
        }
        let web = free_port();
        let dir = std::env::temp_dir().join(format!(
            "ferrokeeper-tests/prometheus-{}-{web}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // The dashboard filters on `job` and `instance`; any job name does.
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: zookeeper\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), cfg).expect("config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start prometheus");
        Some(Prometheus {
            child,
            dir,
            api: format!("http://127.0.0.1:{web}/api/v1/query"),
        })
    }

    /// The number of series `query` returns now, `None` if Prometheus does not answer.
    fn series(&self, query: &str) -> Option<usize> {
        let body = ureq::get(&self.api)
            .query("query", query)
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        // {"status":"success","data":{"resultType":"vector","result":[{...},...]}}
        if !body.contains("\"status\":\"success\"") {
            return None;
        }
        let result = body.split("\"result\":").nth(1)?;
        Some(result.matches("\"metric\":").count())
    }

    /// The value of the one series `query` returns now; `None` if there is not exactly
    /// one or Prometheus does not answer.
    fn value(&self, query: &str) -> Option<f64> {
        let body = ureq::get(&self.api)
            .query("query", query)
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        // "value": [<time>, "<number>"]
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The names dashboard 10465 queries (`../shared/ZOOKEEPER-SECURITY-OPS.md` §5) that a
/// standalone ferrokeeper exports. Counters and gauges are queried bare; summaries by
/// `_count` and `_sum` as the dashboard does.
const DASHBOARD_EXPORTED: &[&str] = &[
    "znode_count",
    "ephemerals_count",
    "global_sessions",
    "local_sessions",
    "approximate_data_size",
    "packets_received",
    "packets_sent",
    "outstanding_requests",
    "last_client_response_size",
    "min_client_response_size",
    "max_client_response_size",
    "num_alive_connections",
    "connection_drop_probability",
    "open_file_descriptor_count",
    "watch_count",
    "uptime",
    "avg_latency",
    "min_latency",
    "max_latency",
    "bytes_received_count",
    "connection_request_count",
    "connection_rejected",
    "readlatency_count",
    "readlatency_sum",
    "updatelatency_count",
    "updatelatency_sum",
    "startup_snap_load_time_count",
    "startup_txns_loaded_sum",
    "dbinittime_sum",
    "sync_processor_batch_size_count",
    "sync_processor_batch_size_sum",
    "sessionless_connections_expired",
    "fsynctime_count",
    "fsynctime_sum",
    "snapshottime_count",
    "snapshottime_sum",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_dashboard_names() {
    let metrics = free_port();
    let metrics_port = metrics.to_string();
    let fk = Server::start_on_port_with(
        Kind::Ferrokeeper,
        free_port(),
        &[
            (
                "metricsProvider.className",
                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            ),
            ("metricsProvider.httpHost", "127.0.0.1"),
            ("metricsProvider.httpPort", metrics_port.as_str()),
        ],
        &Launch::default(),
    );
    workload(&fk.address()).await;
    let Some(prom) = Prometheus::start(&[format!("127.0.0.1:{metrics}")]) else {
        return;
    };
    // A deadline for a broken setup, not a timing assertion: wait for the first scrape
    // that saw the write workload.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if prom.series("updatelatency_count > 0") == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped ferrokeeper: {}",
            std::fs::read_to_string(prom.dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(prom.series("up{job=\"zookeeper\"} == 1"), Some(1));
    let missing: Vec<&str> = DASHBOARD_EXPORTED
        .iter()
        .copied()
        .filter(|name| prom.series(&format!("{name}{{job=~\"zookeeper\"}}")) != Some(1))
        .collect();
    assert!(
        missing.is_empty(),
        "Prometheus has no series for {missing:?}"
    );
    // Counters keep ZooKeeper's names: no `_total` twin.
    assert_eq!(prom.series("bytes_received_count_total"), Some(0));
    drop(fk);
}

/// The number `mntr` shows for `key` (0 when absent).
fn mntr_num(server: &Server, key: &str) -> f64 {
    mntr(server)
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `key` in `server`'s `mntr` is at least `at_least`. The deadline is for a
/// broken setup, not a timing assertion.
async fn wait_mntr(server: &Server, key: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while mntr_num(server, key) < at_least {
        assert!(
            Instant::now() < deadline,
            "{key} never reached {at_least}: {:?}",
            mntr(server).get(key)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads `stream` until the server closes it, with a deadline for a broken setup;
/// returns the bytes received.
fn read_until_closed(mut stream: std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server never closed a sessionless connection: {e}"),
        }
    }
}

/// The counters ZooKeeper 3.8 keeps for its transaction log syncs (`fsynctime`,
/// `FileTxnLog.commit`), its snapshots (`snapshottime`, `ZooKeeperServer.takeSnapshot`)
/// and connections that never made a session (`sessionless_connections_expired`,
/// `NIOServerCnxnFactory`'s expirer), on both servers: after 30 writes with forceSync
/// on, each synced append is a sample; crossing snapCount (10) writes a snapshot; of
/// three raw connections, the one that sent nothing and the one that stopped inside its
/// ConnectRequest are closed and counted, the one that sent `ruok` is answered and not
/// counted. Java also snapshots at startup, so the snapshot count is compared as growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_sync_snapshot_and_sessionless_counters_move_as_javas() {
    let cfg = [
        ("forceSync", "yes"),
        ("snapCount", "10"),
        ("nio.sessionlessCnxnTimeout", "1000"),
    ];
    let java = Server::start_on_port_with(Kind::JavaZk, free_port(), &cfg, &Launch::default());
    let admin = free_port().to_string();
    let metrics = free_port().to_string();
    let mut fk_cfg = cfg.to_vec();
    fk_cfg.extend_from_slice(&[
        ("admin.enableServer", "true"),
        ("admin.serverAddress", "127.0.0.1"),
        ("admin.serverPort", admin.as_str()),
        (
            "metricsProvider.className",
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        ),
        ("metricsProvider.httpHost", "127.0.0.1"),
        ("metricsProvider.httpPort", metrics.as_str()),
    ]);
    let fk =
        Server::start_on_port_with(Kind::Ferrokeeper, free_port(), &fk_cfg, &Launch::default());
    let mut seen = Vec::new();
    for server in [&java, &fk] {
        let addr = server.address();
        workload(&addr).await;
        let (syncs, snaps) = (
            mntr_num(server, "cnt_fsynctime"),
            mntr_num(server, "cnt_snapshottime"),
        );
        assert!(syncs >= 1.0, "{addr}: no fsynctime sample after 21 writes");
        workload_more(&addr).await;
        wait_mntr(server, "cnt_snapshottime", snaps + 1.0).await;
        let grown = mntr_num(server, "cnt_fsynctime") - syncs;
        assert!(
            grown >= 1.0,
            "{addr}: fsynctime did not grow with 30 more writes"
        );

        let silent = std::net::TcpStream::connect(&addr).expect("connect");
        let mut partial = std::net::TcpStream::connect(&addr).expect("connect");
        // The length prefix of a ConnectRequest, and nothing after it.
        std::io::Write::write_all(&mut partial, &44u32.to_be_bytes()).expect("write");
        let mut ruok = std::net::TcpStream::connect(&addr).expect("connect");
        std::io::Write::write_all(&mut ruok, b"ruok").expect("write");
        assert_eq!(read_until_closed(ruok), b"imok");
        assert!(read_until_closed(silent).is_empty());
        assert!(read_until_closed(partial).is_empty());
        wait_mntr(server, "sessionless_connections_expired", 2.0).await;
        seen.push(mntr_num(server, "sessionless_connections_expired"));
        let m = mntr(server);
        for key in ["fsynctime", "snapshottime"] {
            for p in ["avg_", "min_", "max_", "cnt_", "sum_"] {
                assert!(m.contains_key(&format!("{p}{key}")), "{addr}: no {p}{key}");
            }
        }
        assert!(m.contains_key("snap_count"), "{addr}: no snap_count");
    }
    assert_eq!(seen, vec![2.0, 2.0], "sessionless_connections_expired");

    // The AdminServer's `monitor` and the Prometheus exposition carry the same names.
    let monitor = ureq::get(&format!("http://127.0.0.1:{admin}/commands/monitor"))
        .call()
        .expect("monitor")
        .into_string()
        .expect("monitor body");
    for key in [
        "\"avg_fsynctime\"",
        "\"cnt_snapshottime\"",
        "\"snap_count\"",
        "\"sessionless_connections_expired\" : 2",
    ] {
        assert!(monitor.contains(key), "monitor lacks {key}: {monitor}");
    }
    let text = ureq::get(&format!("http://127.0.0.1:{metrics}/metrics"))
        .call()
        .expect("/metrics")
        .into_string()
        .expect("/metrics body");
    for line in [
        "# TYPE fsynctime summary",
        "# TYPE snapshottime summary",
        "# TYPE snap_count counter",
        "# TYPE sessionless_connections_expired counter",
        "sessionless_connections_expired 2.0",
    ] {
        assert!(text.contains(line), "/metrics lacks {line:?}");
    }
}

/// Thirty more writes on `/m` (made by [`workload`]), to cross snapCount again.
async fn workload_more(addr: &str) {
    let mut c = Conn::connect(addr).await;
    assert_ne!(c.session_id, 0, "no session from {addr}");
    for i in 0..30 {
        c.set_data("/m", format!("more {i}").as_bytes(), -1)
            .await
            .expect("set");
    }
    c.close().await;
}

/// The gauges ZooKeeper's leader registers (`LeaderZooKeeperServer.registerMetrics`) and
/// unregisters when it stops leading, with their values on a three-voter ensemble whose
/// followers are synced: `None` where the value is a reading (uptime, sizes), checked to
/// be positive.
const LEADER_GAUGES: &[(&str, Option<f64>)] = &[
    ("learners", Some(2.0)),
    ("synced_followers", Some(2.0)),
    ("synced_non_voting_followers", Some(0.0)),
    ("synced_observers", Some(0.0)),
    ("pending_syncs", Some(0.0)),
    ("leader_uptime", None),
    ("last_proposal_size", None),
    ("max_proposal_size", None),
    ("min_proposal_size", None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_an_ensemble() {
    use common::ensemble::{range_ports, Ensemble, EnsembleOptions};
    let metrics = range_ports(3);
    let mut options = EnsembleOptions::config(&[
        ("forceSync", "no"),
        (
            "metricsProvider.className",
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        ),
        ("metricsProvider.httpHost", "127.0.0.1"),
    ]);
    options.member_config = metrics
        .iter()
        .map(|p| vec![("metricsProvider.httpPort".to_string(), p.to_string())])
        .collect();
    let ens = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
    let leader = ens.leader();
    // A member just elected may refuse sessions for a moment: retried until a deadline
    // for a broken setup.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = Conn::connect(&ens.address(leader)).await;
        if c.session_id != 0
            && c.create("/prom", b"x", open_acl(), mode::PERSISTENT)
                .await
                .is_ok()
        {
            for i in 0..5 {
                c.set_data("/prom", format!("v{i}").as_bytes(), -1)
                    .await
                    .expect("set");
            }
            c.close().await;
            break;
        }
        assert!(Instant::now() < deadline, "no session on the leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ens.wait_converged();
    let instance = |i: usize| format!("127.0.0.1:{}", metrics[i]);
    let Some(prom) = Prometheus::start(&(0..3).map(instance).collect::<Vec<_>>()) else {
        return;
    };
    let on =
        |name: &str, i: usize| format!("{name}{{job=\"zookeeper\",instance=\"{}\"}}", instance(i));
    // Wait for a scrape of all three that saw both followers synced (a deadline for a
    // broken setup, not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = prom.series("up{job=\"zookeeper\"} == 1") == Some(3);
        if up && prom.value(&on("synced_followers", leader)) == Some(2.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the ensemble synced: {}",
            std::fs::read_to_string(prom.dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..3 {
        let role = if i == leader { "leader" } else { "follower" };
        assert_eq!(prom.value(&on("quorum_size", i)), Some(3.0), "{role} {i}");
        // Registered by leader and follower alike (0: no observers).
        assert_eq!(
            prom.value(&on("synced_observers", i)),
            Some(0.0),
            "{role} {i}"
        );
        assert_eq!(
            prom.value(&on("znode_count", i)),
            prom.value(&on("znode_count", leader))
        );
        for (name, want) in LEADER_GAUGES {
            let got = prom.value(&on(name, i));
            if i != leader {
                if *name != "synced_observers" {
                    assert_eq!(
                        prom.series(&on(name, i)),
                        Some(0),
                        "a follower exposes {name}"
                    );
                }
                continue;
            }
            match want {
                Some(v) => assert_eq!(got, Some(*v), "leader {name}"),
                None => assert!(got.is_some_and(|g| g > 0.0), "leader {name}: {got:?}"),
            }
        }
        // The proposal count is a counter every member prints (0 on a follower).
        let proposals = prom.value(&on("proposal_count", i));
        assert_eq!(
            proposals.is_some_and(|p| p > 0.0),
            i == leader,
            "{role} proposal_count {proposals:?}"
        );
        let text = ureq::get(&format!("http://{}/metrics", instance(i)))
            .call()
            .expect("/metrics")
            .into_string()
            .expect("/metrics body");
        match common::promtool_errors(&text) {
            None => eprintln!("SKIPPED promtool check: promtool is not installed"),
            Some(None) => {}
            Some(Some(report)) => panic!("promtool rejects the {role}'s text:\n{report}"),
        }
    }
}
