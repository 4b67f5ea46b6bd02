//! What every shard shares: the settings and counters the connection code and the
//! admin commands read, and the connection admission rules.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, Limits};

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
    /// ConnectRequests received (`connection_request_count`, counted where ZooKeeper's
    /// `processConnectRequest` counts it).
    pub connection_requests: AtomicU64,
    /// Bytes read from clients (`bytes_received_count`).
    pub bytes_received: AtomicU64,
    /// TLS handshakes that failed or timed out (`unsuccessful_handshake`).
    pub unsuccessful_handshakes: AtomicU64,
    /// Connections closed for sending no ConnectRequest in time
    /// (`sessionless_connections_expired`).
    pub sessionless_expired: AtomicU64,
    /// Latencies of reads (`readlatency`) and of writes (`updatelatency`).
    pub read_latency: super::latency::LatencyHistogram,
    /// See `read_latency`.
    pub update_latency: super::latency::LatencyHistogram,
    /// Watchers per trigger (`node_*_watch_count`): the shard's watch table's figures,
    /// copied after each batch of changes (the lock is uncontended but for `mntr`).
    pub watch_triggers: std::sync::Mutex<crate::core::watch::TriggerSizes>,
    /// Sizes of the responses sent (`client_response_size`), one set for all shards.
    pub responses: Arc<ResponseSizes>,
}

/// The last, smallest and largest response sent to a client, in bytes without the
/// length prefix, as ZooKeeper's `ServerStats.updateClientResponseSize` keeps them for
/// every frame with a reply header (replies, pings, watch events; not a
/// ConnectResponse, not a four-letter word's text). Shared by every shard: each store is
/// skipped when it would not change the value, so a workload of same-size replies reads
/// the shared line and leaves it unshared-clean rather than bouncing it between cores.
#[derive(Debug)]
pub struct ResponseSizes {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for ResponseSizes {
    fn default() -> Self {
        ResponseSizes {
            last: AtomicI64::new(-1),
            min: AtomicI64::new(-1),
            max: AtomicI64::new(-1),
        }
    }
}

impl ResponseSizes {
    /// Records one response of `size` bytes.
    pub fn record(&self, size: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.last.load(Relaxed) != size {
            self.last.store(size, Relaxed);
        }
        let min = self.min.load(Relaxed);
        if min == -1 || size < min {
            // -1 (none yet) is below every size: replace it, then keep the smaller.
            let _ = self
                .min
                .fetch_update(Relaxed, Relaxed, |m| (m == -1 || size < m).then_some(size));
        }
        if size > self.max.load(Relaxed) {
            self.max.fetch_max(size, Relaxed);
        }
    }

    /// (last, min, max), -1 for each before the first response.
    pub fn read(&self) -> (i64, i64, i64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.last.load(Relaxed),
            self.min.load(Relaxed),
            self.max.load(Relaxed),
        )
    }

    /// `srst`: forgets them.
    pub fn reset(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.last.store(-1, Relaxed);
        self.min.store(-1, Relaxed);
        self.max.store(-1, Relaxed);
    }
}

impl ShardStats {
    /// Counts one answered request.
    pub fn record_latency(&self, ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.latency_count.fetch_add(1, Relaxed);
        // Most requests take 0 ms and change neither the sum nor the extremes: a load
        // instead of a locked read-modify-write for each (only this shard stores).
        if ms > 0 {
            self.latency_sum_ms.fetch_add(ms, Relaxed);
        }
        if ms < self.latency_min_ms.load(Relaxed) {
            self.latency_min_ms.fetch_min(ms, Relaxed);
        }
        if ms > self.latency_max_ms.load(Relaxed) {
            self.latency_max_ms.fetch_max(ms, Relaxed);
        }
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

    /// Counters at zero, with the latency minimum unset; `responses` is the set all
    /// shards share.
    pub fn new(responses: Arc<ResponseSizes>) -> ShardStats {
        let s = ShardStats {
            responses,
            ..ShardStats::default()
        };
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
    /// Every bound the shards enforce (a copy of `config.limits`, for short paths).
    pub limits: Limits,
    /// `skipACL`.
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest`.
    pub super_digest: Option<String>,
    /// SASL and enforced-auth settings.
    pub security: Arc<crate::auth::Security>,
    /// Per-shard counters.
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// What the commit stage and the shards share about the batches handed over.
    pub handoff: Arc<crate::commit::stage::Handoff>,
    /// When the server started.
    pub started: Instant,
    /// The trace mask `gtmk` shows and `stmk` sets (kept for compatibility; ferrokeeper
    /// logs through `tracing` filters instead).
    pub trace_mask: std::sync::atomic::AtomicI64,
    /// Live connections, in total and by client address. Touched only on accept and
    /// close, never on the request path, so a mutex shared by the shards is fine here.
    pub cnxns: std::sync::Mutex<CnxnCounts>,
    /// Writes sent to the commit stage and not yet answered, across all shards: what
    /// `globalOutstandingLimit` bounds (see `shard::conn`).
    pub outstanding_requests: AtomicU32,
    /// How often each limit held a client back.
    pub limit_counters: LimitCounters,
    /// The transaction log's counters, stored by the log's owner (the commit executor;
    /// an ensemble member's log executor).
    pub log_counters: Arc<crate::commit::log::LogCounters>,
    /// Stops the server when a shard cannot go on (it cannot listen).
    pub fail: crate::commit::FailStop,
    /// The ensemble driver's view of this server's role (`None` when standalone).
    pub ensemble: Option<Arc<crate::commit::role::EnsembleStatus>>,
    /// Questions from the AdminServer and Prometheus executor to shard 0 (see
    /// `shard::admin::AdminCall`): the HTTP side holds the sender, shard 0 the receiver.
    pub admin_calls: (
        async_channel::Sender<super::admin::AdminCall>,
        async_channel::Receiver<super::admin::AdminCall>,
    ),
    /// The AdminServer's `restore` calls to the commit stage (`commit::restore`): the
    /// HTTP side holds the sender, a standalone commit stage the receiver (an ensemble
    /// member has none and refuses restores).
    pub restores: (
        async_channel::Sender<crate::commit::restore::RestoreCall>,
        async_channel::Receiver<crate::commit::restore::RestoreCall>,
    ),
    /// Startup figures (`mntr`'s `startup_*` and `dbinittime`), set once recovery is
    /// done (a standalone server's; an ensemble member leaves it unset).
    pub startup: std::sync::OnceLock<crate::admin::StartupStats>,
    /// The commit logic's statistics (quota refusals, session expiries), moved by the
    /// sequencer, which holds the same `Arc` in its `CoreConfig`.
    pub core_stats: Arc<crate::core::sequencer::CoreStats>,
    /// TLS for `secureClientPort` and `client.portUnification` (`None` without either).
    pub tls: Option<Arc<crate::tls::TlsServer>>,
    /// Which shard serves a new connection (`shard::placement`).
    pub placement: super::placement::Placement,
}

/// How often each limit held a client back, since the process started: `mntr` shows them
/// as `zk_fk_*` keys, so an operator sees which bound the server runs into (ZooKeeper
/// only logs these). Relaxed atomics: statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// Connections closed at accept because `maxCnxns` were open.
    pub cnxns_refused_total: AtomicU64,
    /// Connections closed at accept because `maxClientCnxns` were open from the address.
    pub cnxns_refused_per_ip: AtomicU64,
    /// Times a connection stopped reading because `globalOutstandingLimit` was reached.
    pub reads_paused_global_outstanding: AtomicU64,
    /// Times a connection stopped reading because `sessionQueuedRequestsMax` of its
    /// requests waited.
    pub reads_paused_session_queue: AtomicU64,
    /// Times a connection stopped reading because its client left replies unread.
    pub reads_paused_output: AtomicU64,
}

impl LimitCounters {
    /// The counters as values, for `mntr`.
    pub fn read(&self) -> crate::admin::LimitStats {
        use std::sync::atomic::Ordering::Relaxed;
        crate::admin::LimitStats {
            cnxns_refused_total: self.cnxns_refused_total.load(Relaxed),
            cnxns_refused_per_ip: self.cnxns_refused_per_ip.load(Relaxed),
            reads_paused_global_outstanding: self.reads_paused_global_outstanding.load(Relaxed),
            reads_paused_session_queue: self.reads_paused_session_queue.load(Relaxed),
            reads_paused_output: self.reads_paused_output.load(Relaxed),
        }
    }
}

/// Live connections, for `maxCnxns` and `maxClientCnxns`.
#[derive(Debug, Default)]
pub struct CnxnCounts {
    /// All live connections. Invariant: the sum of `per_ip`.
    pub total: u32,
    /// Live connections by client address; addresses with none are absent.
    pub per_ip: std::collections::HashMap<IpAddr, u32>,
}

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `maxCnxns` connections are open.
    TooManyConnections {
        /// The configured limit.
        max: u32,
    },
    /// `maxClientCnxns` connections are open from this address.
    TooManyFromAddress {
        /// The configured limit.
        max: u32,
    },
}

impl ServerShared {
    /// Counts a new connection from `ip`, or refuses it when `maxCnxns` connections are
    /// open in total, or `maxClientCnxns` from this address. The total is checked first,
    /// as ZooKeeper's `NIOServerCnxnFactory.doAccept` does; in both cases ZooKeeper closes
    /// the socket it has just accepted, before reading anything, and so does the caller.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut c = self.cnxns.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.limits.cnxns_max;
        if max > 0 && c.total >= max {
            self.limit_counters
                .cnxns_refused_total
                .fetch_add(1, Relaxed);
            return Err(Refusal::TooManyConnections { max });
        }
        let max = self.limits.client_cnxns_per_ip_max;
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if max > 0 && from_ip >= max {
            self.limit_counters
                .cnxns_refused_per_ip
                .fetch_add(1, Relaxed);
            return Err(Refusal::TooManyFromAddress { max });
        }
        c.per_ip.insert(ip, from_ip + 1);
        c.total += 1;
        Ok(())
    }

    /// Forgets a connection from `ip` that [`ServerShared::admit`] counted.
    pub fn release(&self, ip: IpAddr) {
        let mut c = self.cnxns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
            c.total -= 1;
        }
    }
}
