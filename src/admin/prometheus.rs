//! Prometheus `/metrics`: the text exposition format 0.0.4, with ZooKeeper's metric names
//! and types, written by hand.
//!
//! ZooKeeper's `PrometheusMetricsProvider` uses the Java client library `simpleclient`
//! 0.9, whose output this mirrors:
//!
//! * every family has `# HELP <name> <name>` (ZooKeeper passes the name as help) and
//!   `# TYPE <name> <type>`;
//! * **counters keep their name**: no `_total` suffix and no `_created` sample (both came
//!   with simpleclient 0.10, which ZooKeeper has not adopted), so existing scrape configs
//!   and the "ZooKeeper by Prometheus" dashboard find `commit_count`, not
//!   `commit_count_total`;
//! * gauges are ZooKeeper's registered gauges (`ZooKeeperServer.registerMetrics` and the
//!   quorum ones), under the same names `mntr` prints without `zk_`;
//! * summaries print `name{quantile="0.5"}` and `name{quantile="0.99"}` for percentile
//!   summaries (ZooKeeper's ADVANCED level adds 0.9, which ferrokeeper's
//!   [`PercentileSummary`](super::PercentileSummary) does not keep), then `name_count` and
//!   `name_sum`;
//! * the quota gauge sets print as one gauge family each with a `key` label per
//!   namespace (`quota_count_limit_per_namespace{key="app",} 5.0`), and the counter set
//!   `quota_exceeded_error_per_namespace` as one counter family labelled the same way
//!   (its `# HELP`/`# TYPE` lines print before any namespace has a sample, as
//!   simpleclient prints a registered labelled counter without children);
//! * values print as Java doubles (`5.0`), as simpleclient's `doubleToGoString` does.
//!
//! * on an ensemble, the quorum gauges ZooKeeper's servers register: `quorum_size` on
//!   every member (QuorumZooKeeperServer), the leader's `learners`, `synced_followers`,
//!   `synced_non_voting_followers`, `synced_observers`, `pending_syncs`, `leader_uptime`
//!   and `last_`/`max_`/`min_proposal_size` (LeaderZooKeeperServer, unregistered when it
//!   stops leading), and a follower's `synced_observers` (FollowerZooKeeperServer);
//!   `tests/metrics.rs` scrapes a three-member ensemble with a real Prometheus.
//!
//! The text/JVM families (`version`, `server_state`, `jvm_*`) are left out: ferrokeeper
//! has no JVM, and ZooKeeper's Prometheus output has no text metrics either.

use std::fmt::Write as _;

use super::java_fmt::java_double;
use super::mntr::{mntr_entries, MntrValue, QUOTA_EXCEEDED_SET, QUOTA_GAUGE_SETS};
use super::stats::{Metric, ServerMode, ServerStats, Summary};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {name}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    let _ = writeln!(out, "{name}{labels} {}", go_double(value));
}

/// simpleclient's `doubleToGoString`: Go's spellings of the infinities and NaN, Java's
/// `Double.toString` otherwise.
fn go_double(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_string()
    } else if x == f64::INFINITY {
        "+Inf".to_string()
    } else if x == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        java_double(x)
    }
}

/// `{key="<namespace>",}`, the label ZooKeeper gives a set's keys, with the value
/// escaped as the text format wants (`\\`, `\"`, `\n`).
fn key_label(key: &str) -> String {
    let mut escaped = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    format!("{{key=\"{escaped}\",}}")
}

fn summary(out: &mut String, name: &str, s: &Summary, quantiles: &[(&str, u64)]) {
    family(out, name, "summary");
    for (q, v) in quantiles {
        sample(out, name, &format!("{{quantile=\"{q}\",}}"), *v as f64);
    }
    sample(out, &format!("{name}_count"), "", s.count as f64);
    sample(out, &format!("{name}_sum"), "", s.sum as f64);
}

/// The `/metrics` body for `s`.
pub fn render(s: &ServerStats) -> String {
    let mut out = String::with_capacity(8 << 10);
    // The gauges are mntr's fixed part: the same stats without the counters and
    // summaries of `metrics` (written below with their own types) and without
    // ferrokeeper's own log and limit counters.
    let gauges_only = ServerStats {
        metrics: Default::default(),
        log: None,
        limits: None,
        quota_namespaces: Vec::new(),
        quota_exceeded: Vec::new(),
        ..s.clone()
    };
    for (name, value) in mntr_entries(&gauges_only) {
        let v = match value {
            MntrValue::Int(n) => n as f64,
            MntrValue::Float(x) => x,
            MntrValue::Text(_) => continue,
        };
        family(&mut out, &name, "gauge");
        sample(&mut out, &name, "", v);
    }
    // A follower registers `synced_observers` too (FollowerZooKeeperServer: the observers
    // it serves as an observer master, null otherwise, which the provider writes as 0),
    // though `mntr` prints it on a follower only as an observer master. ferrokeeper's
    // followers are never observer masters: 0.
    if s.mode == ServerMode::Follower && s.quorum.as_ref().is_some_and(|q| q.leader.is_none()) {
        family(&mut out, "synced_observers", "gauge");
        sample(&mut out, "synced_observers", "", 0.0);
    }
    // Gauge sets are labelled gauges: `name{key="<namespace>",}` (ZooKeeper's
    // PrometheusMetricsProvider labels a gauge set's keys `key`).
    for (set, limit, pick) in QUOTA_GAUGE_SETS {
        let listed: Vec<_> = s
            .quota_namespaces
            .iter()
            .filter(|(_, q)| if *limit { q.has_limits } else { q.has_stats })
            .collect();
        if listed.is_empty() {
            continue;
        }
        family(&mut out, set, "gauge");
        for (ns, q) in listed {
            sample(&mut out, set, &key_label(ns), pick(q) as f64);
        }
    }
    // A counter set is a labelled counter (`PrometheusLabelledCounter`), registered
    // when ZooKeeper makes its ServerMetrics: its family prints before any namespace
    // has a sample.
    family(&mut out, QUOTA_EXCEEDED_SET, "counter");
    for (ns, n) in &s.quota_exceeded {
        sample(&mut out, QUOTA_EXCEEDED_SET, &key_label(ns), *n as f64);
    }
    for (name, metric) in &s.metrics {
        match metric {
            Metric::Int(n) => {
                family(&mut out, name, "counter");
                sample(&mut out, name, "", *n as f64);
            }
            Metric::Float(x) => {
                family(&mut out, name, "gauge");
                sample(&mut out, name, "", *x);
            }
            Metric::Text(_) => {}
            Metric::Summary(sm) => summary(&mut out, name, sm, &[]),
            Metric::Percentiles(p) => summary(
                &mut out,
                name,
                &p.summary,
                &[("0.5", p.p50), ("0.99", p.p99)],
            ),
        }
    }
    // ferrokeeper's own counters (mntr's `zk_fk_*`), as counters under their mntr names.
    let own = ServerStats {
        metrics: Default::default(),
        quota_namespaces: Vec::new(),
        quota_exceeded: Vec::new(),
        ..s.clone()
    };
    let fixed = mntr_entries(&gauges_only).len();
    for (name, value) in mntr_entries(&own).into_iter().skip(fixed) {
        if let MntrValue::Int(n) = value {
            family(&mut out, &name, "counter");
            sample(&mut out, &name, "", n as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PercentileSummary;

    #[test]
    fn gauges_counters_and_summaries_keep_zookeepers_names() {
        let mut s = ServerStats {
            node_count: 5,
            ..ServerStats::default()
        };
        s.metrics.insert("snap_count".into(), Metric::Int(3));
        s.metrics.insert(
            "fsynctime".into(),
            Metric::Summary(Summary {
                count: 2,
                sum: 7,
                min: 3,
                max: 4,
            }),
        );
        s.metrics.insert(
            "readlatency".into(),
            Metric::Percentiles(PercentileSummary {
                p50: 1,
                p99: 9,
                ..PercentileSummary::default()
            }),
        );
        let text = render(&s);
        assert!(text.contains(
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n"
        ));
        assert!(text.contains("# TYPE snap_count counter\nsnap_count 3.0\n"));
        assert!(!text.contains("_total"));
        assert!(text.contains("# TYPE fsynctime summary\nfsynctime_count 2.0\nfsynctime_sum 7.0\n"));
        assert!(text
            .contains("readlatency{quantile=\"0.5\",} 1.0\nreadlatency{quantile=\"0.99\",} 9.0\n"));
        assert!(!text.contains("version"));
        assert!(!text.contains("server_state"));
        // The quota counter set prints its family before any namespace counts.
        assert!(text.contains("# TYPE quota_exceeded_error_per_namespace counter\n# HELP"));
    }

    /// The gauges each role registers (LeaderZooKeeperServer, FollowerZooKeeperServer,
    /// QuorumZooKeeperServer.registerMetrics).
    #[test]
    fn quorum_gauges_follow_the_role() {
        use crate::admin::stats::{LeaderStats, QuorumStats};
        let follower = ServerStats {
            mode: ServerMode::Follower,
            quorum: Some(QuorumStats {
                quorum_size: 3,
                leader: None,
            }),
            ..ServerStats::default()
        };
        let text = render(&follower);
        assert!(text.contains("\nquorum_size 3.0\n"));
        assert!(text.contains("\nsynced_observers 0.0\n"));
        assert!(!text.contains("learners"));
        assert!(!text.contains("leader_uptime"));
        let leader = ServerStats {
            mode: ServerMode::Leader,
            quorum: Some(QuorumStats {
                quorum_size: 3,
                leader: Some(LeaderStats {
                    learners: 2,
                    synced_followers: 2,
                    ..LeaderStats::default()
                }),
            }),
            ..ServerStats::default()
        };
        let text = render(&leader);
        assert!(text.contains("\nsynced_followers 2.0\n"));
        assert_eq!(text.matches("# TYPE synced_observers gauge").count(), 1);
    }

    #[test]
    fn quota_counter_set_is_a_labelled_counter() {
        let s = ServerStats {
            quota_exceeded: vec![("app".into(), 2), ("a\"b".into(), 1)],
            ..ServerStats::default()
        };
        let text = render(&s);
        assert!(text.contains(
            "# TYPE quota_exceeded_error_per_namespace counter\n\
             quota_exceeded_error_per_namespace{key=\"app\",} 2.0\n\
             quota_exceeded_error_per_namespace{key=\"a\\\"b\",} 1.0\n"
        ));
        assert!(!text.contains("app_quota_exceeded"));
    }
}
