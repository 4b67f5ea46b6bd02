//! Report rounds: how an admin command sees every shard. Shard state is
//! single-threaded, so a shard cannot read another's connections or watches. Instead
//! the asking shard sends a [`ReportCollector`] through the commit stage, which hands it
//! to every shard with the next completion; each shard fills in its part, in commit
//! order, and the asker waits for all parts. The mutex here is on the admin path only.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// One connection as `cons` and `stat` show it.
#[derive(Debug, Clone)]
pub struct ConnReport {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// Session id (0 before the handshake completes).
    pub session_id: i64,
    /// Negotiated session timeout.
    pub session_timeout_ms: i32,
    /// Requests waiting for the commit stage.
    pub outstanding: u64,
    /// Frames received.
    pub packets_received: u64,
    /// Frames sent.
    pub packets_sent: u64,
    /// When the connection was accepted (ms since the epoch).
    pub established_ms: i64,
    /// Short name of the last operation (ZooKeeper's `lastOp`).
    pub last_op: &'static str,
    /// xid of the last request answered.
    pub last_cxid: i32,
    /// zxid of the last reply.
    pub last_zxid: i64,
    /// When the last reply was written (the shard's monotonic clock).
    pub last_response_ms: u64,
    /// Latency of the last request, ms.
    pub last_latency_ms: u64,
    /// Latency min, max, sum and count over the connection's requests, ms.
    pub latency: (u64, u64, u64, u64),
}

/// One shard's part of a report round.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    /// Its connections.
    pub connections: Vec<ConnReport>,
    /// Data-table watches by session: the paths each session watches (`wchc`).
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// All watches on the shard (`zk_watch_count`).
    pub watch_count: u64,
}

/// Collects one report per shard, and the commit stage's session schedule.
#[derive(Debug)]
pub struct ReportCollector {
    parts: Mutex<Vec<Option<ShardReport>>>,
    /// (expiry time in ms since the epoch, session id), filled by the commit stage.
    pub session_expiry: Mutex<Vec<(i64, i64)>>,
    /// `crst`: each shard resets its connections' counters when it reports.
    pub reset_connections: bool,
}

impl ReportCollector {
    /// A collector for `shards` parts.
    pub fn new(shards: usize) -> ReportCollector {
        ReportCollector {
            parts: Mutex::new(vec![None; shards]),
            session_expiry: Mutex::new(Vec::new()),
            reset_connections: false,
        }
    }

    /// A round that only resets every connection's counters (`crst`).
    pub fn reset(shards: usize) -> ReportCollector {
        ReportCollector {
            reset_connections: true,
            ..ReportCollector::new(shards)
        }
    }

    /// Stores shard `index`'s part.
    pub fn submit(&self, index: usize, report: ShardReport) {
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = parts.get_mut(index) {
            *slot = Some(report);
        }
    }

    /// Waits (polling, up to `limit`) until every shard has answered; returns the
    /// parts received, with missing shards left out.
    pub async fn wait(&self, limit: Duration) -> Vec<ShardReport> {
        let start = std::time::Instant::now();
        loop {
            {
                let parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
                if parts.iter().all(Option::is_some) || start.elapsed() >= limit {
                    return parts.iter().flatten().cloned().collect();
                }
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }
}
