//! `mntr`: `zk_<key>\t<value>` lines in ZooKeeper 3.8's order.
//!
//! ZooKeeper 3.8 (standalone) prints, in this order: `version` and `server_state`; its
//! gauges (fixed names, in the iteration order of its metrics registry); its counters;
//! its summaries (`avg_`, `min_`, `max_`, `cnt_`, `sum_` and for some `p50_` .. `p999_`);
//! and per-namespace summary sets (`<ns>_read_per_namespace`, ...). The order below was
//! captured from ZooKeeper 3.8.0 (`testdata/zk-3.8.0/mntr.txt`).
//!
//! # What ferrokeeper prints
//!
//! * All gauges from [`ServerStats`] fields, in ZooKeeper's order, except the three that
//!   describe TLS connections (`zk_non_mtls_remote_conn_count`,
//!   `zk_non_mtls_local_conn_count`, `zk_outstanding_tls_handshake`): TLS exists now
//!   (`secureClientPort`, `client.portUnification`), but the shards do not yet count
//!   connections by mTLS or handshakes in flight, and a constant 0 would be a false
//!   reading. `zk_open_file_descriptor_count` and `zk_max_file_descriptor_count` are
//!   printed when known, as ZooKeeper prints them on Unix only.
//! * Of the counters and summaries, those the server puts in [`ServerStats::metrics`]:
//!   names ZooKeeper has are printed in ZooKeeper's position; other names follow, sorted.
//! * On an ensemble, `zk_peer_state` after `zk_server_state` (`leading - broadcast`,
//!   `following - broadcast`, `observing - broadcast`), and MonitorCommand's quorum gauges: `zk_quorum_size`, and on the leader
//!   `zk_learners`, `zk_synced_followers`, `zk_synced_non_voting_followers` (always 0:
//!   Raft has no non-voting followers but observers), `zk_synced_observers`,
//!   `zk_pending_syncs` (learners catching up by snapshot), `zk_leader_uptime` and the
//!   `zk_*_proposal_size` gauges, from the Raft driver's view of its peers.
//!
//! Filled (`shard::admin::gather_stats`), with what each means here:
//!
//! | name | kind | ferrokeeper's source |
//! |---|---|---|
//! | `readlatency`, `updatelatency` | percentile summaries | per-shard HDR histograms (`shard::latency`) |
//! | `connection_rejected` | counter | refusals by `maxCnxns` and `maxClientCnxns` |
//! | `proposal_count` | counter | a leader's Raft proposals (0 on other servers, as ZooKeeper prints it) |
//! | `connection_request_count` | counter | ConnectRequests received (where ZooKeeper's `processConnectRequest` counts) |
//! | `bytes_received_count` | counter | bytes read from client sockets (4lw included) |
//! | `response_bytes` | counter | bytes written to clients; ZooKeeper counts replies only, ferrokeeper watch events and 4lw answers too |
//! | `unsuccessful_handshake` | counter | TLS handshakes that failed or timed out |
//! | `sync_processor_batch_size` | summary | txns per transaction-log write (the group-commit batch) |
//! | `startup_snap_load_time`, `startup_txns_loaded`, `startup_txns_load_time`, `dbinittime` | summaries, one sample | the standalone server's recovery: mapping the newest snapshot, the log txns replayed after it and the time it took, the whole recovery (ms) |
//! | `node_created_watch_count`, `node_deleted_watch_count`, `node_changed_watch_count`, `node_children_watch_count` | summaries | watchers found per trigger of each shard's watch table (`core::watch::TriggerSizes`); with several shards, one change's watchers on two shards are two samples where ZooKeeper's single table records one |
//! | `stale_sessions_expired` | counter | sessions the sequencer expires (on an ensemble, the leader; ZooKeeper's learners also count their local sessions, ferrokeeper's do not) |
//! | `<namespace>_quota_exceeded_error_per_namespace` | counter set | writes refused by a hard quota limit (see below) |
//! | `fsynctime` | summary, ms | with `forceSync=yes`, each transaction-log append's sync (the io_uring fdatasync; on the blocking path, the write and its sync together), on an ensemble the Raft log's; ZooKeeper times `FileChannel.force` in `FileTxnLog.commit`. No samples with `forceSync=no`, as in ZooKeeper |
//! | `snapshottime` | summary, ms | each snapshot written by the snapshot thread (serializing and writing), as ZooKeeper times `takeSnapshot`; ZooKeeper also snapshots once at startup, ferrokeeper does not, so a fresh ferrokeeper shows no sample where ZooKeeper shows one |
//! | `snap_count` | counter | snapshots a member began serving to a follower (the first chunk of each transfer; a retried first chunk counts again), where ZooKeeper's LearnerHandler counts a SNAP sync |
//! | `sessionless_connections_expired` | counter | connections closed for sending nothing for `nio.sessionlessCnxnTimeout` (`zookeeper.nio.sessionlessCnxnTimeout`, default 10 s) before their ConnectRequest or four-letter word was whole. ZooKeeper's NIO factory also expires a session's connection idle for its session timeout under this name; ferrokeeper's session expiry closes those as `stale_sessions_expired` only |
//!
//! `auth_failed_count` is printed and stays 0: ZooKeeper bumps it only in its Netty
//! factory, when the x509 provider refuses a client after the TLS handshake, and
//! ferrokeeper has no such refusal (a certificate the trust store rejects fails the
//! handshake: `unsuccessful_handshake`). An ensemble member leaves the `startup_*`
//! summaries out.
//!
//! Without a counterpart, so left out: `throttled_ops` and `large_requests_rejected`
//! (ferrokeeper accepts `throttledOpWaitTime`, `largeRequestMaxBytes` and
//! `largeRequestThreshold` but throttles by its own bounds, counted in the `fk_*` keys
//! below) and `unrecoverable_error_count` (ZooKeeper's server keeps running in an error
//! state; ferrokeeper stops the process on an unrecoverable error, so no reading could
//! show it).
//!
//! `tests/metrics.rs` compares the key set with a live ZooKeeper 3.8 standalone `mntr`
//! and pins the difference: the keys Java prints that ferrokeeper does not are exactly
//! the groups listed here and below.
//!
//! Left out as specific to Java ZooKeeper's machinery, with no ferrokeeper counterpart:
//! the request-processor queues and timings (`prep_processor_*`, `sync_processor_queue_*`,
//! `*commit_proc*`, `*commitproc*`, `*_final_proc_time_ms`, `session_queues_drained`,
//! `*_in_session_queue`, `pending_session_queue_size`, `outstanding_changes_*`,
//! `request_commit_queued`, `requests_not_forwarded_to_commit_processor`), its response
//! caches (`response_packet_*cache*`), its lazy dead-watcher cleaner (`dead_watchers_*`,
//! `add_dead_watcher_stall_time`), the JVM (`jvm_pause_time_ms`), Netty
//! (`netty_queued_buffer_capacity`), the AdminServer (`insecure_admin_count`), TLS
//! (`tls_handshake_exceeded`, `non_mtls_*`), connection throttling tokens
//! (`connection_token_deficit`, `connection_drop_count`, `connection_revalidate_count`,
//! `revalidate_count`), digests (`digest_mismatches_count`) and the parts of an ensemble
//! that belong to ZAB rather than Raft (`proposal_*`, `learner_*`, `leader_*`, `follower_*`, `observer_*`, `om_*`,
//! `election_time`, `looking_count`, `quorum_ack_latency`, `commit_count`, `diff_count`,
//! `snap`-sync `inflight_*`, `ensemble_auth_*`, `quit_leading_due_to_disloyal_voter`,
//! `*propagation_latency`, `*_write_committed_time_ms`, `stale_*`, `unavailable_time`).
//! The names stay in [`JAVA_METRIC_ORDER`] so that a metric filled later prints where
//! ZooKeeper prints it.
//!
//! Quota gauges (`zk_<namespace>_quota_count_limit_per_namespace` and its three
//! siblings) follow the gauges, as ZooKeeper prints its gauge sets: see
//! [`QUOTA_GAUGE_SETS`] and [`quota_order`]. ZooKeeper's counter set
//! `quota_exceeded_error_per_namespace` (`zk_<namespace>_quota_exceeded_error_per_namespace`,
//! writes refused by a hard limit; see [`crate::core::quota::ExceededCounts`]) prints
//! after the counters and before the summaries, where ZooKeeper dumps counter sets, and
//! only for namespaces that had a refusal.
//!
//! # ferrokeeper's own keys
//!
//! Last, once the transaction log is running, the log's counters since it was opened
//! (`ServerStats::log`), under names ZooKeeper does not use, in the same
//! `zk_<key>\t<value>` shape (clients and exporters skip keys they do not know):
//! `zk_fk_log_batches` (writes to the log), `zk_fk_log_records` (txns appended),
//! `zk_fk_log_bytes` (framed record bytes written: payload plus frame headers, not the
//! preallocated file size), `zk_fk_log_fdatasyncs`, `zk_fk_log_fsyncs` (whole-file and
//! directory syncs of segment creation and purges), `zk_fk_log_segments_created`,
//! `zk_fk_log_segments_removed`, `zk_fk_log_spares_prepared` (segments prepared ahead on
//! the log's helper thread), `zk_fk_log_rolls_inline` (rolls that found no spare ready
//! and created the segment on the commit path), `zk_fk_log_seals_deferred` (finished
//! segments the helper thread fdatasynced after a roll, with `forceSync=no`) and
//! `zk_fk_log_segments_compressed` (segments the newest snapshot covers, stored as
//! `.zst`). Differences of two readings give fdatasyncs per write
//! and log bytes per write (`ferrokeeper-bench compare`'s durability section).
//!
//! Then how often each connection limit held a client back (`ServerStats::limits`):
//! `zk_fk_cnxns_refused_total` (`maxCnxns`), `zk_fk_cnxns_refused_per_ip`
//! (`maxClientCnxns`), `zk_fk_reads_paused_global_outstanding` (`globalOutstandingLimit`),
//! `zk_fk_reads_paused_session_queue` (`ferrokeeper.sessionQueuedRequestsMax`) and
//! `zk_fk_reads_paused_output` (a client not reading its replies).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::core::quota::NamespaceQuota;

use super::java_fmt::java_double;
use super::stats::{Metric, ServerMode, ServerStats, Summary};

/// ZooKeeper 3.8's counters, then its summaries, in the order standalone `mntr` prints
/// them (captured from 3.8.0). Summary names are the part after `avg_`.
pub const JAVA_METRIC_ORDER: &[&str] = &[
    // Counters.
    "proposal_count",
    "watch_bytes",
    "outstanding_changes_removed",
    "throttled_ops",
    "stale_requests_dropped",
    "large_requests_rejected",
    "insecure_admin_count",
    "connection_rejected",
    "cnxn_closed_without_zk_server_running",
    "sessionless_connections_expired",
    "looking_count",
    "dead_watchers_queued",
    "stale_requests",
    "connection_drop_count",
    "learner_proposal_received_count",
    "digest_mismatches_count",
    "dead_watchers_cleared",
    "response_packet_cache_hits",
    "bytes_received_count",
    "add_dead_watcher_stall_time",
    "request_throttle_wait_count",
    "requests_not_forwarded_to_commit_processor",
    "response_packet_cache_misses",
    "ensemble_auth_success",
    "prep_processor_request_queued",
    "learner_commit_received_count",
    "stale_replies",
    "connection_request_count",
    "response_bytes",
    "ensemble_auth_fail",
    "diff_count",
    "response_packet_get_children_cache_misses",
    "connection_revalidate_count",
    "quit_leading_due_to_disloyal_voter",
    "snap_count",
    "unrecoverable_error_count",
    "unsuccessful_handshake",
    "commit_count",
    "stale_sessions_expired",
    "response_packet_get_children_cache_hits",
    "sync_processor_request_queued",
    "outstanding_changes_queued",
    "request_commit_queued",
    "ensemble_auth_skip",
    "skip_learner_request_to_next_processor_count",
    "tls_handshake_exceeded",
    "revalidate_count",
    // Summaries (avg/min/max/cnt/sum).
    "socket_closing_time",
    "proposal_process_time",
    "leader_unavailable_time",
    "node_created_watch_count",
    "session_queues_drained",
    "write_commit_proc_req_queued",
    "connection_token_deficit",
    "read_commit_proc_req_queued",
    "node_deleted_watch_count",
    "startup_txns_load_time",
    "sync_processor_queue_size",
    "follower_sync_time",
    "prep_processor_queue_size",
    "fsynctime",
    "inflight_snap_count",
    "reads_issued_from_session_queue",
    "learner_request_processor_queue_size",
    "snapshottime",
    "unavailable_time",
    "startup_txns_loaded",
    "reads_after_write_in_session_queue",
    "requests_in_session_queue",
    "write_commit_proc_issued",
    "prep_process_time",
    "pending_session_queue_size",
    "time_waiting_empty_pool_in_commit_processor_read_ms",
    "commit_process_time",
    "dbinittime",
    "inflight_diff_count",
    "netty_queued_buffer_capacity",
    "election_time",
    "commit_commit_proc_req_queued",
    "sync_processor_batch_size",
    "node_children_watch_count",
    "write_batch_time_in_commit_processor",
    "read_commit_proc_issued",
    "concurrent_request_processing_in_commit_processor",
    "observer_sync_time",
    "node_changed_watch_count",
    "sync_process_time",
    "startup_snap_load_time",
    // Summaries with percentiles.
    "prep_processor_queue_time_ms",
    "jvm_pause_time_ms",
    "close_session_prep_time",
    "read_commitproc_time_ms",
    "updatelatency",
    "local_write_committed_time_ms",
    "request_throttle_queue_time_ms",
    "readlatency",
    "quorum_ack_latency",
    "om_commit_process_time_ms",
    "read_final_proc_time_ms",
    "commit_propagation_latency",
    "dead_watchers_cleaner_latency",
    "write_final_proc_time_ms",
    "proposal_ack_creation_latency",
    "proposal_latency",
    "om_proposal_process_time_ms",
    "sync_processor_queue_and_flush_time_ms",
    "propagation_latency",
    "server_write_committed_time_ms",
    "sync_processor_queue_time_ms",
    "sync_processor_queue_flush_time_ms",
    "write_commitproc_time_ms",
];

/// The first summary of [`JAVA_METRIC_ORDER`]: counter sets print just before it.
const FIRST_SUMMARY: &str = "socket_closing_time";

/// ZooKeeper's counter set of writes refused by a hard quota limit
/// (`QuotaMetricsUtils.QUOTA_EXCEEDED_ERROR_PER_NAMESPACE`).
pub const QUOTA_EXCEEDED_SET: &str = "quota_exceeded_error_per_namespace";

/// The gauges ZooKeeper 3.8 prints that ferrokeeper leaves out (see the module docs).
pub const OMITTED_GAUGES: &[&str] = &[
    "non_mtls_remote_conn_count",
    "outstanding_tls_handshake",
    "non_mtls_local_conn_count",
];

/// One `mntr` value, typed as ZooKeeper's metrics are (the AdminServer's `monitor` prints
/// the same keys as JSON numbers and strings).
#[derive(Debug, Clone, PartialEq)]
pub enum MntrValue {
    /// A Java `long` or `int`.
    Int(i64),
    /// A Java `double`.
    Float(f64),
    /// A string (`version`, `server_state`).
    Text(String),
}

impl std::fmt::Display for MntrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MntrValue::Int(n) => write!(f, "{n}"),
            MntrValue::Float(x) => f.write_str(&java_double(*x)),
            MntrValue::Text(t) => f.write_str(t),
        }
    }
}

/// The `mntr` keys (without `zk_`) and values of a serving server, in ZooKeeper's order.
pub type MntrEntries = Vec<(String, MntrValue)>;

fn line(out: &mut MntrEntries, key: &str, value: impl Into<MntrNum>) {
    out.push((key.to_string(), value.into().0));
}

/// Conversion of the value types `mntr` prints.
struct MntrNum(MntrValue);

impl From<u64> for MntrNum {
    fn from(v: u64) -> Self {
        MntrNum(MntrValue::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
}
impl From<i64> for MntrNum {
    fn from(v: i64) -> Self {
        MntrNum(MntrValue::Int(v))
    }
}
impl From<f64> for MntrNum {
    fn from(v: f64) -> Self {
        MntrNum(MntrValue::Float(v))
    }
}
impl From<&String> for MntrNum {
    fn from(v: &String) -> Self {
        MntrNum(MntrValue::Text(v.clone()))
    }
}
impl From<&str> for MntrNum {
    fn from(v: &str) -> Self {
        MntrNum(MntrValue::Text(v.to_string()))
    }
}

fn summary_lines(out: &mut MntrEntries, name: &str, s: &Summary) {
    line(out, &format!("avg_{name}"), s.avg());
    line(out, &format!("min_{name}"), s.min_or_zero());
    line(out, &format!("max_{name}"), s.max_or_zero());
    line(out, &format!("cnt_{name}"), s.count);
    line(out, &format!("sum_{name}"), s.sum);
}

fn metric_lines(out: &mut MntrEntries, name: &str, metric: &Metric) {
    match metric {
        Metric::Int(n) => line(out, name, *n),
        Metric::Float(x) => line(out, name, *x),
        Metric::Text(t) => line(out, name, t),
        Metric::Summary(s) => summary_lines(out, name, s),
        Metric::Percentiles(p) => {
            summary_lines(out, name, &p.summary);
            line(out, &format!("p50_{name}"), p.p50);
            line(out, &format!("p95_{name}"), p.p95);
            line(out, &format!("p99_{name}"), p.p99);
            line(out, &format!("p999_{name}"), p.p999);
        }
    }
}

/// Writes the `mntr` reply for a serving server.
pub(super) fn write_mntr(out: &mut String, s: &ServerStats) {
    for (key, value) in mntr_entries(s) {
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
}

// Long because it lists every gauge in ZooKeeper's order, one line each, with the
// quorum part in MonitorCommand's order.
/// The `mntr` keys and values of a serving server, in ZooKeeper's order.
pub fn mntr_entries(s: &ServerStats) -> MntrEntries {
    let out = &mut MntrEntries::with_capacity(64);
    line(out, "version", &s.version);
    line(out, "server_state", s.mode.as_str());
    // A serving ensemble member's `QuorumPeer.getDetailedPeerState`: its peer state and
    // ZAB phase, lower case. ferrokeeper serves only once its Raft role is settled,
    // which is ZAB's broadcast phase.
    let peer_state = match s.mode {
        ServerMode::Leader => Some("leading - broadcast"),
        ServerMode::Follower => Some("following - broadcast"),
        ServerMode::Observer => Some("observing - broadcast"),
        ServerMode::Standalone | ServerMode::ReadOnly => None,
    };
    if let Some(state) = peer_state {
        line(out, "peer_state", state);
    }
    // Gauges, in ZooKeeper's order; comments mark the ones left out.
    line(out, "ephemerals_count", s.ephemerals_count);
    line(out, "num_alive_connections", s.alive_connections);
    line(out, "avg_latency", s.latency.avg());
    line(out, "outstanding_requests", s.outstanding_requests);
    line(out, "znode_count", s.node_count);
    line(out, "global_sessions", s.global_sessions);
    // non_mtls_remote_conn_count: no TLS.
    line(
        out,
        "last_client_response_size",
        s.client_response_size.last,
    );
    line(out, "packets_sent", s.packets_sent);
    line(out, "packets_received", s.packets_received);
    line(out, "max_client_response_size", s.client_response_size.max);
    line(
        out,
        "connection_drop_probability",
        s.connection_drop_probability,
    );
    line(out, "watch_count", s.watch_count);
    line(out, "auth_failed_count", s.auth_failed_count);
    line(out, "min_latency", s.latency.min_or_zero());
    if let Some(max) = s.max_file_descriptors {
        line(out, "max_file_descriptor_count", max);
    }
    line(out, "approximate_data_size", s.approximate_data_size);
    if let Some(open) = s.open_file_descriptors {
        line(out, "open_file_descriptor_count", open);
    }
    line(out, "local_sessions", s.local_sessions);
    line(out, "uptime", s.uptime_ms);
    line(out, "max_latency", s.latency.max_or_zero());
    // outstanding_tls_handshake: no TLS.
    line(out, "min_client_response_size", s.client_response_size.min);
    // non_mtls_local_conn_count: no TLS.
    if let Some(q) = &s.quorum {
        // MonitorCommand's quorum part, in its order (3.8 names: `learners`, not 3.4's
        // `followers`).
        line(out, "quorum_size", q.quorum_size);
        if let Some(l) = &q.leader {
            line(out, "learners", l.learners);
            line(out, "synced_followers", l.synced_followers);
            line(out, "synced_non_voting_followers", 0u64);
            line(out, "synced_observers", l.synced_observers);
            line(out, "pending_syncs", l.pending_syncs);
            line(out, "leader_uptime", l.leader_uptime_ms);
            let shown = |v: u64| if l.proposals == 0 { -1 } else { v as i64 };
            line(out, "last_proposal_size", shown(l.proposal_sizes.0));
            line(out, "max_proposal_size", shown(l.proposal_sizes.1));
            line(out, "min_proposal_size", shown(l.proposal_sizes.2));
        }
        // A follower prints `synced_observers` only as an observer master
        // (`observerMasterPort`), which ferrokeeper's followers never are.
    }

    quota_lines(out, &s.quota_namespaces);
    for name in JAVA_METRIC_ORDER {
        // DefaultMetricsProvider dumps its counter sets after its counters, before
        // its summaries; a SimpleCounterSet prints `<key>_<name>` for each key it has.
        if *name == FIRST_SUMMARY {
            for (ns, n) in &s.quota_exceeded {
                line(out, &format!("{ns}_{QUOTA_EXCEEDED_SET}"), *n);
            }
        }
        if let Some(metric) = s.metrics.get(*name) {
            metric_lines(out, name, metric);
        }
    }
    for (name, metric) in &s.metrics {
        if !JAVA_METRIC_ORDER.contains(&name.as_str()) {
            metric_lines(out, name, metric);
        }
    }
    if let Some(log) = &s.log {
        log_lines(out, log);
    }
    // Only a running server has limits to report (the formatting tests have none).
    if let Some(limits) = &s.limits {
        line(out, "fk_cnxns_refused_total", limits.cnxns_refused_total);
        line(out, "fk_cnxns_refused_per_ip", limits.cnxns_refused_per_ip);
        line(
            out,
            "fk_reads_paused_global_outstanding",
            limits.reads_paused_global_outstanding,
        );
        line(
            out,
            "fk_reads_paused_session_queue",
            limits.reads_paused_session_queue,
        );
        line(out, "fk_reads_paused_output", limits.reads_paused_output);
    }
    std::mem::take(out)
}

/// ZooKeeper's quota gauge sets (`QuotaMetricsUtils`), in the order ZooKeeper 3.8's
/// metrics registry holds them (captured from a live 3.8.0 `mntr`), each with a
/// `(limit gauge?, pick)` rule: limit gauges list namespaces that have a limits node,
/// usage gauges those that have a stats node.
#[allow(clippy::type_complexity)]
pub const QUOTA_GAUGE_SETS: &[(&str, bool, fn(&NamespaceQuota) -> i64)] = &[
    ("quota_bytes_limit_per_namespace", true, |q| q.bytes_limit),
    ("quota_count_usage_per_namespace", false, |q| q.count_usage),
    ("quota_count_limit_per_namespace", true, |q| q.count_limit),
    ("quota_bytes_usage_per_namespace", false, |q| q.bytes_usage),
];

/// The gauge-set lines: `<namespace>_<set>` (DefaultMetricsProvider joins key and
/// name), right after the gauges, as ZooKeeper prints gauge sets before its counters.
fn quota_lines(out: &mut MntrEntries, namespaces: &[(String, NamespaceQuota)]) {
    for (set, limit, pick) in QUOTA_GAUGE_SETS {
        for (ns, q) in namespaces {
            if (*limit && q.has_limits) || (!*limit && q.has_stats) {
                line(out, &format!("{ns}_{set}"), pick(q));
            }
        }
    }
}

/// Orders namespaces as a Java `ConcurrentHashMap` iterates them, which is how
/// ZooKeeper's gauge sets hold them: by bucket (`(h ^ h >>> 16) & (n - 1)` of
/// `String.hashCode`, over a table of `n` ≥ 16 slots kept under 3/4 full). Keys that
/// share a bucket are in Java's insertion order, which follows its `HashSet` of child
/// names; here they are in name order.
pub fn quota_order<V>(map: BTreeMap<String, V>) -> Vec<(String, V)> {
    let mut slots = 16usize;
    while map.len() >= slots - slots / 4 {
        slots *= 2;
    }
    let bucket = |key: &str| {
        let h = key.encode_utf16().fold(0i32, |h, unit| {
            h.wrapping_mul(31).wrapping_add(i32::from(unit))
        });
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (slots - 1)
    };
    let mut v: Vec<(String, V)> = map.into_iter().collect();
    v.sort_by_key(|(k, _)| bucket(k));
    v
}

/// ferrokeeper's transaction-log counters (see the module docs).
fn log_lines(out: &mut MntrEntries, log: &ferrokeeper_storage::log::LogStats) {
    line(out, "fk_log_batches", log.appends);
    line(out, "fk_log_records", log.records);
    line(out, "fk_log_bytes", log.bytes);
    line(out, "fk_log_fdatasyncs", log.fdatasyncs);
    line(out, "fk_log_fsyncs", log.fsyncs);
    line(out, "fk_log_segments_created", log.segments_created);
    line(out, "fk_log_segments_removed", log.segments_removed);
    line(out, "fk_log_spares_prepared", log.spares_prepared);
    line(out, "fk_log_rolls_inline", log.rolls_inline);
    line(out, "fk_log_seals_deferred", log.seals_deferred);
    line(out, "fk_log_segments_compressed", log.segments_compressed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counter_set_prints_between_counters_and_summaries() {
        let mut s = ServerStats {
            quota_exceeded: vec![("q".into(), 3)],
            ..ServerStats::default()
        };
        s.metrics
            .insert("unsuccessful_handshake".into(), Metric::Int(0));
        s.metrics
            .insert("fsynctime".into(), Metric::Summary(Summary::default()));
        let keys: Vec<String> = mntr_entries(&s).into_iter().map(|(k, _)| k).collect();
        let at = |k: &str| keys.iter().position(|x| x == k).expect(k);
        assert!(at("unsuccessful_handshake") < at("q_quota_exceeded_error_per_namespace"));
        assert!(at("q_quota_exceeded_error_per_namespace") < at("avg_fsynctime"));
    }

    #[test]
    fn log_counters_print_as_zk_keys() {
        let mut entries = MntrEntries::new();
        let log = ferrokeeper_storage::log::LogStats {
            appends: 3,
            records: 7,
            bytes: 900,
            fdatasyncs: 4,
            fsyncs: 2,
            segments_created: 1,
            segments_removed: 0,
            ..Default::default()
        };
        log_lines(&mut entries, &log);
        let out: String = entries
            .iter()
            .map(|(k, v)| format!("zk_{k}\t{v}\n"))
            .collect();
        assert_eq!(
            out,
            "zk_fk_log_batches\t3\nzk_fk_log_records\t7\nzk_fk_log_bytes\t900\n\
             zk_fk_log_fdatasyncs\t4\nzk_fk_log_fsyncs\t2\nzk_fk_log_segments_created\t1\n\
             zk_fk_log_segments_removed\t0\nzk_fk_log_spares_prepared\t0\nzk_fk_log_rolls_inline\t0\n\
             zk_fk_log_seals_deferred\t0\nzk_fk_log_segments_compressed\t0\n"
        );
    }
}
