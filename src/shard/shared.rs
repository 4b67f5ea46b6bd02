//! What every shard shares: the settings and counters the connection code and the
//! admin commands read, and the connection admission rules.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;

/// Counters one shard keeps and the admin commands read (relaxed atomics: they are
/// statistics, not synchronisation).
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Live connections.
    pub connections: AtomicU64,
    /// Frames received.
    pub packets_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// Watches registered on this shard.
    pub watch_count: AtomicU64,
    /// Frames sent to clients.
    pub packets_sent: AtomicU64,
    /// Requests answered, for the latency average.
    pub latency_count: AtomicU64,
    /// Sum of request latencies, ms.
    pub latency_sum_ms: AtomicU64,
    /// Smallest request latency, ms (`u64::MAX` before the first).
    pub latency_min_ms: AtomicU64,
    /// Largest request latency, ms.
    pub latency_max_ms: AtomicU64,
}

impl ShardStats {
    /// Counts one answered request.
    pub fn record_latency(&self, ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_ms.fetch_add(ms, Relaxed);
        self.latency_min_ms.fetch_min(ms, Relaxed);
        self.latency_max_ms.fetch_max(ms, Relaxed);
    }

    /// `srst`: forgets latencies and packet counts.
    pub fn reset(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency_count.store(0, Relaxed);
        self.latency_sum_ms.store(0, Relaxed);
        self.latency_min_ms.store(u64::MAX, Relaxed);
        self.latency_max_ms.store(0, Relaxed);
    }

    /// Counters at zero, with the latency minimum unset.
    pub fn new() -> ShardStats {
        let s = ShardStats::default();
        s.latency_min_ms
            .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        s
    }
}

/// What every shard shares: settings and counters.
#[derive(Debug)]
pub struct ServerShared {
    /// The whole configuration (for `conf` and friends).
    pub config: Config,
    /// Where shards listen.
    pub listen_addr: SocketAddr,
    /// `tickTime`.
    pub tick_time_ms: u64,
    /// `jute.maxbuffer`: the largest frame a client may send.
    pub jute_max_buffer: usize,
    /// `skipACL`.
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest`.
    pub super_digest: Option<String>,
    /// Per-shard counters.
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// Sequence number of the newest batch the commit stage has handed to the shards.
    /// Stored before the completions are sent, so once any client has a reply from a
    /// batch, every shard can tell that it must first take that batch's completion.
    pub published_seq: Arc<std::sync::atomic::AtomicU64>,
    /// When the server started.
    pub started: Instant,
    /// The trace mask `gtmk` shows and `stmk` sets (kept for compatibility; ferrokeeper
    /// logs through `tracing` filters instead).
    pub trace_mask: std::sync::atomic::AtomicI64,
    /// `maxClientCnxns`: connections allowed from one address (0 = unlimited).
    pub max_client_cnxns: u32,
    /// Live connections by client address. Touched only on accept and close, never
    /// on the request path, so a mutex shared by the shards is fine here.
    pub conns_per_ip: std::sync::Mutex<std::collections::HashMap<IpAddr, u32>>,
    /// The transaction log's counters, stored by the log executor.
    pub log_counters: Arc<crate::commit::log::LogCounters>,
    /// Stops the server when a shard cannot go on (it cannot listen).
    pub fail: crate::commit::FailStop,
}

impl ServerShared {
    /// Counts a new connection from `ip`, or refuses it when `maxClientCnxns` is reached.
    pub fn admit(&self, ip: IpAddr) -> bool {
        let mut m = self.conns_per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if self.max_client_cnxns > 0 && *n >= self.max_client_cnxns {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a connection from `ip`.
    pub fn release(&self, ip: IpAddr) {
        let mut m = self.conns_per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}
