//! Four-letter words on a shard: gathering a [`ServerStats`] from the shard's root, the
//! server-wide counters and (when the command lists connections or watches) a report
//! round across all shards, then applying the command's side effects.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::Shard;
use crate::admin::{
    ConfStats, ConnectionSession, ConnectionStats, DirSizes, ServerStats, SideEffect, StatsNeeds,
    Summary,
};
use crate::commit::report::ReportCollector;
use crate::commit::stage::StageMsg;

/// How long a report round may take before the reply goes out with what arrived.
const REPORT_WAIT: Duration = Duration::from_secs(2);

/// AdminServer questions that may wait for shard 0 at once; more wait in the HTTP
/// executor, so a burst of scrapes cannot grow a queue on the shard.
pub const ADMIN_CALLS_MAX: usize = 16;

/// A question from the HTTP executor (AdminServer, Prometheus) to shard 0: gather the
/// stats `needs` asks for, apply `effect`, and answer on `reply`. The executors run on
/// different threads, so the answer travels on a channel of its own.
#[derive(Debug)]
pub struct AdminCall {
    /// The parts of the stats the reply reads.
    pub needs: StatsNeeds,
    /// The command's side effect, applied after gathering (as the 4lw path does).
    pub effect: Option<SideEffect>,
    /// Where the answer goes (a one-slot channel).
    pub reply: async_channel::Sender<AdminAnswer>,
}

/// Shard 0's answer to an [`AdminCall`].
#[derive(Debug)]
pub struct AdminAnswer {
    /// The gathered stats.
    pub stats: ServerStats,
    /// The state they were read from (the HTTP side checks the root's ACL with it).
    pub root: Arc<crate::core::state::DataState>,
}

impl Shard {
    // Long because it gathers each part of ServerStats a word may need, one block per
    // part, guarded by `needs` so cheap words stay cheap.
    /// The stats a four-letter word needs.
    pub async fn gather_stats(self: &Rc<Self>, needs: StatsNeeds) -> ServerStats {
        let shared = &self.shared;
        let root = self.catch_up_root().await;
        let mut s = ServerStats {
            last_processed_zxid: root.last_zxid,
            // ZooKeeper's node table holds the root twice ("" and "/").
            node_count: root.tree.len() as u64 + 1,
            uptime_ms: shared.started.elapsed().as_millis() as u64,
            ephemerals_count: root.ephemeral_count() as u64,
            approximate_data_size: root.tree.data_bytes()
                + root.tree.get("/").map(|n| n.data_len() as u64).unwrap_or(0),
            global_sessions: root.sessions.len() as u64,
            trace_mask: shared.trace_mask.load(Relaxed),
            conf: ConfStats::from_config(&shared.config),
            log: shared.log_counters.read(),
            limits: Some(shared.limit_counters.read()),
            digest_log: root
                .digest_log
                .entries()
                .map(|e| (e.zxid, e.digest))
                .collect(),
            quota_namespaces: crate::admin::quota_order(crate::core::quota::namespace_metrics(
                &root,
            )),
            quota_exceeded: crate::admin::quota_order(shared.core_stats.quota_exceeded.read()),
            ..ServerStats::default()
        };
        if let Some(e) = &shared.ensemble {
            let v = e.read();
            use crate::commit::role::roles;
            s.mode = match v.role {
                roles::LEADER => crate::admin::ServerMode::Leader,
                roles::FOLLOWER => crate::admin::ServerMode::Follower,
                roles::OBSERVER => crate::admin::ServerMode::Observer,
                roles::READ_ONLY => crate::admin::ServerMode::ReadOnly,
                // A server without a leader does not serve: ZooKeeper's 4lws then say
                // "not currently serving requests".
                _ => {
                    s.serving = false;
                    s.mode
                }
            };
            s.quorum = Some(crate::admin::QuorumStats {
                quorum_size: v.quorum_size,
                leader: (v.role == roles::LEADER).then(|| crate::admin::LeaderStats {
                    learners: v.learners,
                    synced_followers: v.synced_followers,
                    synced_observers: v.synced_observers,
                    pending_syncs: v.pending_syncs,
                    leader_uptime_ms: (shared.started.elapsed().as_millis() as u64)
                        .saturating_sub(v.leader_since_ms),
                    proposal_sizes: (
                        v.last_proposal_size,
                        v.max_proposal_size,
                        v.min_proposal_size,
                    ),
                    proposals: v.proposals,
                }),
            });
        }
        if let Some(st) = shared.shard_stats.first() {
            let (last, min, max) = st.responses.read();
            s.client_response_size = crate::admin::stats::BufferStats { last, min, max };
        }
        let mut latency = Summary::default();
        for st in &shared.shard_stats {
            s.packets_received += st.packets_received.load(Relaxed);
            s.packets_sent += st.packets_sent.load(Relaxed);
            s.alive_connections += st.connections.load(Relaxed);
            s.watch_count += st.watch_count.load(Relaxed);
            let count = st.latency_count.load(Relaxed);
            if count > 0 {
                latency.count += count;
                latency.sum += st.latency_sum_ms.load(Relaxed);
                let min = st.latency_min_ms.load(Relaxed);
                latency.min = if latency.count == count {
                    min
                } else {
                    latency.min.min(min)
                };
                latency.max = latency.max.max(st.latency_max_ms.load(Relaxed));
            }
        }
        s.latency = latency;
        let (mut reads, mut updates) = (
            super::latency::Samples::default(),
            super::latency::Samples::default(),
        );
        for st in &shared.shard_stats {
            reads.merge(&st.read_latency.read());
            updates.merge(&st.update_latency.read());
        }
        // ZooKeeper counts both refusals at accept (maxCnxns, maxClientCnxns) as
        // `connection_rejected`.
        if let Some(l) = &s.limits {
            s.metrics.insert(
                "connection_rejected".to_string(),
                crate::admin::Metric::Int((l.cnxns_refused_total + l.cnxns_refused_per_ip) as i64),
            );
        }
        // A counter ZooKeeper prints on every server: 0 but on a leader.
        let proposals = s
            .quorum
            .as_ref()
            .and_then(|q| q.leader.as_ref())
            .map_or(0, |l| l.proposals);
        s.metrics.insert(
            "proposal_count".to_string(),
            crate::admin::Metric::Int(proposals as i64),
        );
        // Counters ZooKeeper's ServerMetrics keeps, summed over the shards.
        // `response_bytes` counts every frame written (ZooKeeper's counts replies only,
        // not watch events).
        let sum = |f: fn(&super::shared::ShardStats) -> &std::sync::atomic::AtomicU64| {
            let n: u64 = shared
                .shard_stats
                .iter()
                .map(|st| f(st).load(Relaxed))
                .sum();
            crate::admin::Metric::Int(n as i64)
        };
        for (name, metric) in [
            (
                "connection_request_count",
                sum(|st| &st.connection_requests),
            ),
            ("bytes_received_count", sum(|st| &st.bytes_received)),
            (
                "stale_sessions_expired",
                crate::admin::Metric::Int(shared.core_stats.sessions_expired.load(Relaxed) as i64),
            ),
            ("response_bytes", sum(|st| &st.bytes_sent)),
            (
                "unsuccessful_handshake",
                sum(|st| &st.unsuccessful_handshakes),
            ),
            (
                "sessionless_connections_expired",
                sum(|st| &st.sessionless_expired),
            ),
            (
                "snap_count",
                crate::admin::Metric::Int(
                    shared
                        .ensemble
                        .as_ref()
                        .map_or(0, |e| e.snapshots_sent() as i64),
                ),
            ),
            (
                "fsynctime",
                crate::admin::Metric::Summary(shared.log_counters.fsync_times()),
            ),
            (
                "snapshottime",
                crate::admin::Metric::Summary(shared.log_counters.snapshot_times()),
            ),
        ] {
            s.metrics.insert(name.to_string(), metric);
        }
        // Watchers per trigger, merged over the shards: each shard samples its own
        // connections' watchers, so one change with watchers on two shards is two
        // samples here where ZooKeeper, with one watch table, records one.
        let mut triggers = [Summary::default(); 4];
        for st in &shared.shard_stats {
            let t = *st
                .watch_triggers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (merged, part) in triggers
                .iter_mut()
                .zip([t.created, t.deleted, t.changed, t.children])
            {
                if part.count > 0 {
                    merged.min = if merged.count == 0 {
                        part.min
                    } else {
                        merged.min.min(part.min)
                    };
                    merged.max = merged.max.max(part.max);
                    merged.count += part.count;
                    merged.sum += part.sum;
                }
            }
        }
        for (name, summary) in [
            "node_created_watch_count",
            "node_deleted_watch_count",
            "node_changed_watch_count",
            "node_children_watch_count",
        ]
        .into_iter()
        .zip(triggers)
        {
            s.metrics
                .insert(name.to_string(), crate::admin::Metric::Summary(summary));
        }
        if let Some(batches) = shared.log_counters.batch_sizes() {
            s.metrics.insert(
                "sync_processor_batch_size".to_string(),
                crate::admin::Metric::Summary(batches),
            );
        }
        if let Some(startup) = shared.startup.get() {
            for (name, summary) in startup.metrics() {
                s.metrics
                    .insert(name.to_string(), crate::admin::Metric::Summary(summary));
            }
        }
        for (name, samples) in [("readlatency", reads), ("updatelatency", updates)] {
            s.metrics.insert(
                name.to_string(),
                crate::admin::Metric::Percentiles(samples.summary()),
            );
        }
        if needs.connections || needs.watches || needs.session_dump {
            let collector = Arc::new(ReportCollector::new(shared.shard_stats.len()));
            if self
                .to_commit
                .send(StageMsg::Report(collector.clone()))
                .await
                .is_ok()
            {
                let reports = collector.wait(REPORT_WAIT).await;
                // Watch counts are exact here, not the last periodic copy.
                s.watch_count = reports.iter().map(|r| r.watch_count).sum();
                s.outstanding_requests = 0;
                for r in &reports {
                    for c in &r.connections {
                        s.outstanding_requests += c.outstanding;
                        let remote = c
                            .remote
                            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                        let (min, max, sum, count) = c.latency;
                        s.connections.push(ConnectionStats {
                            remote,
                            interest_ops: u32::from(c.session_id != 0),
                            outstanding_requests: c.outstanding,
                            packets_received: c.packets_received,
                            packets_sent: c.packets_sent,
                            session: (c.session_id != 0).then(|| ConnectionSession {
                                session_id: c.session_id,
                                last_operation: c.last_op,
                                established_ms: c.established_ms,
                                session_timeout_ms: c.session_timeout_ms.max(0) as u32,
                                last_cxid: (c.last_cxid >= 0).then_some(c.last_cxid),
                                last_zxid: c.last_zxid,
                                last_response_ms: c.last_response_ms,
                                last_latency_ms: c.last_latency_ms,
                                latency: Summary {
                                    count,
                                    sum,
                                    min,
                                    max,
                                },
                            }),
                        });
                    }
                    for (session, paths) in &r.watches_by_session {
                        for p in paths {
                            s.data_watches
                                .entry(p.clone())
                                .or_default()
                                .insert(*session);
                        }
                    }
                }
                let schedule = collector
                    .session_expiry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                for (at, id) in schedule {
                    s.session_expiry.entry(at).or_default().push(id);
                }
            }
        }
        if needs.session_dump {
            let mut eph: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
            for (id, session) in root.sessions.iter() {
                if !session.ephemerals.is_empty() {
                    eph.insert(
                        *id,
                        session.ephemerals.iter().map(|p| p.to_string()).collect(),
                    );
                }
            }
            s.ephemerals = eph;
        }
        if needs.environment {
            s.environment = crate::admin::environment(&s.version);
        }
        if needs.dir_sizes {
            s.dir_sizes = DirSizes {
                data_dir_bytes: crate::admin::dir_size_bytes(&shared.config.data_dir),
                data_log_dir_bytes: crate::admin::dir_size_bytes(&shared.config.data_log_dir),
            };
        }
        if needs.file_descriptors {
            let (open, max) = crate::admin::file_descriptors();
            s.open_file_descriptors = open;
            s.max_file_descriptors = max;
        }
        s
    }

    /// Answers the HTTP executor's questions, one at a time, until the server stops.
    /// Runs on shard 0 only.
    pub fn serve_admin_calls(self: &Rc<Self>) {
        let calls = self.shared.admin_calls.1.clone();
        let s = self.clone();
        glommio::spawn_local(async move {
            while let Ok(call) = calls.recv().await {
                let stats = s.gather_stats(call.needs).await;
                if let Some(effect) = call.effect {
                    s.apply_admin_effect(effect);
                }
                let root = s.root.borrow().clone();
                // The asker may have given up (its connection closed): nothing to do.
                let _ = call.reply.send(AdminAnswer { stats, root }).await;
            }
        })
        .detach();
    }

    /// The shard's root after catching up with everything published.
    async fn catch_up_root(&self) -> Arc<crate::core::state::DataState> {
        self.catch_up().await;
        self.root.borrow().clone()
    }

    /// Carries out what `srst`, `crst` and `stmk` change.
    pub fn apply_admin_effect(self: &Rc<Self>, effect: SideEffect) {
        match effect {
            SideEffect::ResetServerStats => {
                for st in &self.shared.shard_stats {
                    st.reset();
                }
                if let Some(st) = self.shared.shard_stats.first() {
                    st.responses.reset();
                }
            }
            SideEffect::ResetConnectionStats => {
                let collector = Arc::new(ReportCollector::reset(self.shared.shard_stats.len()));
                let s = self.clone();
                glommio::spawn_local(async move {
                    let _ = s.to_commit.send(StageMsg::Report(collector)).await;
                })
                .detach();
            }
            SideEffect::SetTraceMask(mask) => self.shared.trace_mask.store(mask, Relaxed),
        }
    }
}
