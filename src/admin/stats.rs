//! [`ServerStats`]: the plain data the server gathers so that every four-letter word can be
//! answered from it, plus helpers that gather the host-level parts (environment, file
//! descriptors, directory sizes).
//!
//! The server fills a `ServerStats` when a four-letter word arrives; gathering is cheap
//! except for the per-connection, per-watch and per-session sections, which only some
//! commands need: see [`FourLetterWord::needs`](super::FourLetterWord::needs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::java_fmt::java_rounded_avg;
use crate::config::ensemble::ELECTION_ALG;
use crate::config::{Config, Ensemble};

/// The ZooKeeper release whose semantics ferrokeeper follows (the 3.9 line: its wire
/// protocol, operations and four-letter words). Clients and scripts read the server's
/// version as the digits before the first `-`.
pub const ZOOKEEPER_VERSION: &str = "3.9.4";

/// ZooKeeper's default text trace mask (`gtmk`): client request, server packet, session and
/// warning events (`ZooTrace`), 306.
pub const DEFAULT_TRACE_MASK: i64 = 0b1_0011_0010;

/// The version string `srvr`, `stat`, `mntr` and `envi` print, in ZooKeeper's shape
/// `<version>-<revision>, built on <date>`: `3.9.4-ferrokeeper-0.2.0, built on <date>`,
/// the revision being this crate's version (`CARGO_PKG_VERSION`), so the two can never
/// disagree. The date is `FERROKEEPER_BUILD_DATE` at compile time, or `unknown`.
pub fn full_version() -> String {
    format!(
        "{ZOOKEEPER_VERSION}-ferrokeeper-{}, built on {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("FERROKEEPER_BUILD_DATE").unwrap_or("unknown")
    )
}

/// The server's role, as `srvr`'s `Mode:` line and `mntr`'s `zk_server_state` print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    /// A single server (ZooKeeper's `standalone`).
    #[default]
    Standalone,
    /// A partitioned member serving reads only (ZooKeeper's `read-only`); `srvr` and `stat`
    /// then add a `READ-ONLY mode` line and `isro` answers `ro`.
    ReadOnly,
    /// Ensemble leader.
    Leader,
    /// Ensemble follower.
    Follower,
    /// Ensemble observer.
    Observer,
}

impl ServerMode {
    /// ZooKeeper's name for the mode (`ServerStats.getServerState`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::ReadOnly => "read-only",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
        }
    }
}

/// Count, sum, minimum and maximum of a series of integer samples: ZooKeeper's
/// `AvgMinMaxCounter`. Used for request latency and for `mntr` summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Samples recorded.
    pub count: u64,
    /// Sum of the samples.
    pub sum: u64,
    /// Smallest sample; meaningful only when `count > 0`.
    pub min: u64,
    /// Largest sample; meaningful only when `count > 0`.
    pub max: u64,
}

impl Summary {
    /// Adds one sample.
    pub fn record(&mut self, sample: u64) {
        if self.count == 0 || sample < self.min {
            self.min = sample;
        }
        if self.count == 0 || sample > self.max {
            self.max = sample;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(sample);
    }

    /// The minimum as ZooKeeper prints it: 0 when there are no samples.
    pub fn min_or_zero(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The maximum as ZooKeeper prints it: 0 when there are no samples.
    pub fn max_or_zero(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.max
        }
    }

    /// The average as ZooKeeper prints it: rounded to 4 places half-up, 0 without samples.
    pub fn avg(&self) -> f64 {
        java_rounded_avg(self.sum, self.count)
    }
}

/// A [`Summary`] with percentiles (ZooKeeper's `AvgMinMaxPercentileCounter`), for `mntr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PercentileSummary {
    /// Count, sum, min, max.
    pub summary: Summary,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
}

/// One `mntr` value beyond the fixed gauges (see [`ServerStats::metrics`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A counter or integer gauge: `zk_<name>\t<n>`.
    Int(i64),
    /// A floating-point gauge, printed as Java prints a double.
    Float(f64),
    /// A text value.
    Text(String),
    /// `zk_avg_<name>`, `zk_min_<name>`, `zk_max_<name>`, `zk_cnt_<name>`, `zk_sum_<name>`.
    Summary(Summary),
    /// As `Summary`, then `zk_p50_<name>`, `zk_p95_<name>`, `zk_p99_<name>`, `zk_p999_<name>`.
    Percentiles(PercentileSummary),
}

/// Sizes of responses sent to clients (ZooKeeper's `BufferStats`); -1 until the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferStats {
    /// Size of the last response, in bytes.
    pub last: i64,
    /// Smallest response.
    pub min: i64,
    /// Largest response.
    pub max: i64,
}

impl Default for BufferStats {
    fn default() -> Self {
        BufferStats {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

impl BufferStats {
    /// Records one response of `size` bytes.
    pub fn record(&mut self, size: i64) {
        self.last = size;
        if self.min == -1 || size < self.min {
            self.min = size;
        }
        if size > self.max {
            self.max = size;
        }
    }
}

/// One client connection, as `cons` and `stat` print it (`ServerCnxn.dumpConnectionInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStats {
    /// The client's address.
    pub remote: SocketAddr,
    /// Java NIO interest ops, printed in hex: 1 (read) for a connection waiting for
    /// requests, 0 for one being answered a four-letter word (the connection asking is
    /// itself listed). ferrokeeper has no selector: use 1 for sessions, 0 otherwise.
    pub interest_ops: u32,
    /// Requests received and not yet answered.
    pub outstanding_requests: u64,
    /// Packets received on this connection (since it opened or `crst`).
    pub packets_received: u64,
    /// Packets sent on this connection (since it opened or `crst`).
    pub packets_sent: u64,
    /// The session, once the connect handshake is done; `None` before (and for the
    /// four-letter-word connection itself). Only `cons` prints it.
    pub session: Option<ConnectionSession>,
}

/// Per-session details of a connection (the part of `cons` after `sent=`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSession {
    /// The session id (non-zero).
    pub session_id: i64,
    /// ZooKeeper's short name of the last operation (`PING`, `GETD`, ...):
    /// [`last_operation_name`] of its opcode; `NA` before the first and after `crst`.
    pub last_operation: &'static str,
    /// When the connection was established, in ms since the Unix epoch.
    pub established_ms: i64,
    /// The negotiated session timeout.
    pub session_timeout_ms: u32,
    /// The last client xid answered (`lcxid`); `None` (or negative) before the first
    /// request and after `crst`, when ZooKeeper leaves the field out.
    pub last_cxid: Option<i32>,
    /// The zxid in the last reply header; -1 after `crst`.
    pub last_zxid: i64,
    /// When the last response was sent, in ms of a monotonic clock (ZooKeeper prints
    /// `System.nanoTime()` in ms, which has no fixed origin); 0 after `crst`.
    pub last_response_ms: u64,
    /// Latency of the last request, in ms.
    pub last_latency_ms: u64,
    /// Latencies of this connection's requests, in ms (min, integer average, max are
    /// printed).
    pub latency: Summary,
}

/// A connection in the idle-connection expiry queue, as `dump` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiringConnection {
    /// The client's address.
    pub remote: SocketAddr,
    /// Its session id, 0 before the handshake.
    pub session_id: i64,
}

/// The server settings `conf` prints (`ZooKeeperServer.dumpConf`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfStats {
    /// `clientPort`.
    pub client_port: u16,
    /// `secureClientPort`; -1 when there is none (always, for now).
    pub secure_client_port: i32,
    /// The snapshot directory, absolute. (ZooKeeper prints `<dataDir>/version-2`, where its
    /// snapshots live; ferrokeeper prints the directory its own snapshots live in.)
    pub data_dir: PathBuf,
    /// The transaction log directory, absolute.
    pub data_log_dir: PathBuf,
    /// `tickTime`.
    pub tick_time_ms: u32,
    /// `maxClientCnxns`.
    pub max_client_cnxns: u32,
    /// Effective `minSessionTimeout`.
    pub min_session_timeout_ms: u32,
    /// Effective `maxSessionTimeout`.
    pub max_session_timeout_ms: u32,
    /// `clientPortListenBacklog`; -1 for the system default.
    pub client_port_listen_backlog: i32,
    /// The server id.
    pub server_id: u64,
    /// The ensemble's lines, in quorum mode only.
    pub quorum: Option<QuorumConf>,
}

/// What `conf` adds in quorum mode (`QuorumZooKeeperServer.dumpConf`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumConf {
    /// `initLimit`, in ticks.
    pub init_limit: u32,
    /// `syncLimit`, in ticks.
    pub sync_limit: u32,
    /// `electionAlg` (always 3).
    pub election_alg: u32,
    /// This server's election port.
    pub election_port: u16,
    /// This server's quorum port.
    pub quorum_port: u16,
    /// This server's role as Java's enum ordinal: 0 participant, 1 observer.
    pub peer_type: u8,
    /// The `/zookeeper/config` text (server lines and `version=`, no final newline).
    pub membership: String,
}

impl QuorumConf {
    /// The `conf` lines of an ensemble, as seen by its member `ensemble.my_id`.
    pub fn from_ensemble(ensemble: &Ensemble) -> QuorumConf {
        let me = ensemble.me();
        QuorumConf {
            init_limit: ensemble.init_limit,
            sync_limit: ensemble.sync_limit,
            election_alg: ELECTION_ALG,
            election_port: me.election_port,
            quorum_port: me.quorum_port,
            peer_type: me.role.ordinal(),
            membership: ensemble.zookeeper_config_text(),
        }
    }
}

impl ConfStats {
    /// The `conf` section of a configuration. Directories are made absolute against the
    /// current directory, as Java's `File.getAbsolutePath` does.
    pub fn from_config(config: &Config) -> ConfStats {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        ConfStats {
            client_port: config.client_port,
            secure_client_port: -1,
            data_dir: absolute(&config.data_dir),
            data_log_dir: absolute(&config.data_log_dir),
            tick_time_ms: config.tick_time_ms,
            max_client_cnxns: config.limits.client_cnxns_per_ip_max,
            min_session_timeout_ms: config.limits.session_timeout_ms_min,
            max_session_timeout_ms: config.limits.session_timeout_ms_max,
            client_port_listen_backlog: config
                .client_port_listen_backlog
                .and_then(|b| i32::try_from(b).ok())
                .unwrap_or(-1),
            server_id: config.server_id,
            quorum: config.ensemble.as_ref().map(QuorumConf::from_ensemble),
        }
    }
}

/// Bytes on disk under the two data directories (`dirs`, and `conf`'s size lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirSizes {
    /// Bytes under `dataDir` (snapshots): see [`dir_size_bytes`].
    pub data_dir_bytes: u64,
    /// Bytes under `dataLogDir` (transaction log).
    pub data_log_dir_bytes: u64,
}

/// Everything a four-letter-word reply is made from. The server fills it in; the
/// formatters in [`fourlw`](super::fourlw) only read it.
///
/// What an ensemble member adds to `mntr` (ZooKeeper 3.8's MonitorCommand keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumStats {
    /// Voting members (`zk_quorum_size`).
    pub quorum_size: u64,
    /// Leader-only figures; `None` on a follower.
    pub leader: Option<LeaderStats>,
}

/// The leader's `mntr` figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderStats {
    /// Learners it replicates to (`zk_learners`).
    pub learners: u64,
    /// Followers up to date (`zk_synced_followers`).
    pub synced_followers: u64,
    /// Observers up to date (`zk_synced_observers`).
    pub synced_observers: u64,
    /// Syncs not yet answered (`zk_pending_syncs`).
    pub pending_syncs: u64,
    /// Milliseconds since it became leader (`zk_leader_uptime`).
    pub leader_uptime_ms: u64,
    /// Proposal sizes in bytes: last, max, min (`zk_*_proposal_size`).
    pub proposal_sizes: (u64, u64, u64),
    /// Proposals made since this server became leader.
    pub proposals: u64,
}

/// Counts follow ZooKeeper's definitions, so that numbers mean the same thing on both
/// servers; where ZooKeeper's definition is surprising the field says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStats {
    /// `false` while the server is not serving (starting, loading, shutting down): most
    /// commands then answer "This ZooKeeper instance is not currently serving requests".
    pub serving: bool,
    /// The full version string: [`full_version`].
    pub version: String,
    /// The server's role.
    pub mode: ServerMode,
    /// The zxid of the last transaction applied (`Zxid:` in `srvr`).
    pub last_processed_zxid: i64,
    /// Znodes in the tree, counted as ZooKeeper 3.8 counts them: its node table holds the
    /// root twice (as "" and "/") and always has `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config`, so an empty server reports 5 and each user znode adds 1.
    pub node_count: u64,
    /// Latency of requests answered (ms), since start or the last `srst`.
    pub latency: Summary,
    /// Packets received from clients since start or `srst` (a four-letter word counts as
    /// one packet).
    pub packets_received: u64,
    /// Packets sent to clients since start or `srst`.
    pub packets_sent: u64,
    /// Open client connections, including the one asking for the four-letter word.
    pub alive_connections: u64,
    /// Requests received and not yet answered.
    pub outstanding_requests: u64,
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// All watches: one-shot data, exist and child watches plus persistent ones (a
    /// persistent watch counts twice, as ZooKeeper registers it as a data and a child
    /// watch). `mntr`'s `zk_watch_count`.
    pub watch_count: u64,
    /// Ephemeral znodes (`zk_ephemerals_count`).
    pub ephemerals_count: u64,
    /// Sum over all znodes of path length plus data length, in bytes, counting the root
    /// twice as ZooKeeper does (`zk_approximate_data_size`).
    pub approximate_data_size: u64,
    /// Sessions in the session table (`zk_global_sessions`).
    pub global_sessions: u64,
    /// Local (non-replicated) sessions; always 0 in ferrokeeper.
    pub local_sessions: u64,
    /// Open file descriptors of the process, when known: [`file_descriptors`].
    pub open_file_descriptors: Option<u64>,
    /// The file descriptor limit of the process, when known.
    pub max_file_descriptors: Option<u64>,
    /// Chance that a new connection is dropped by connection throttling (0 = none).
    pub connection_drop_probability: f64,
    /// Sizes of responses sent.
    pub client_response_size: BufferStats,
    /// Failed authentications.
    pub auth_failed_count: u64,
    /// Further `mntr` values, by ZooKeeper's metric name without the `zk_` prefix and
    /// without the `avg_`/`min_`/... prefixes of summaries (`"fsynctime"`, `"readlatency"`).
    /// Names ZooKeeper 3.8 has are printed in ZooKeeper's order; others follow, sorted.
    pub metrics: BTreeMap<String, Metric>,
    /// Client connections (for `stat` and `cons`), in any order.
    pub connections: Vec<ConnectionStats>,
    /// The watches `wchs`, `wchc` and `wchp` list: path -> sessions watching it. ZooKeeper
    /// 3.8 lists its *data* watch table only: watches set by `exists` and `getData`, and
    /// persistent (recursive or not) watches. One-shot child watches (`getChildren`) are
    /// counted in `watch_count` but not listed.
    pub data_watches: BTreeMap<String, BTreeSet<i64>>,
    /// Ephemeral znodes by owning session (for `dump`).
    pub ephemerals: BTreeMap<i64, BTreeSet<String>>,
    /// Session expiry schedule (for `dump`): expiry time in ms since the Unix epoch ->
    /// sessions expiring then. ZooKeeper lists emptied buckets too (with 0 sessions).
    pub session_expiry: BTreeMap<i64, Vec<i64>>,
    /// Idle-connection expiry schedule (for `dump`), like `session_expiry`. ZooKeeper's NIO
    /// server closes a connection that stays silent past its session timeout; leave empty
    /// if connections are not tracked this way.
    pub connection_expiry: BTreeMap<i64, Vec<ExpiringConnection>>,
    /// Settings `conf` prints.
    pub conf: ConfStats,
    /// Bytes under the data directories (for `conf` and `dirs`).
    pub dir_sizes: DirSizes,
    /// `envi`'s lines, in order: [`environment`].
    pub environment: Vec<(String, String)>,
    /// The text trace mask `gtmk` prints and `stmk` sets.
    pub trace_mask: i64,
    /// `hash`'s lines: (zxid, digest of the tree right after that txn), oldest first: the
    /// state's digest history ([`crate::core::digest::DigestLog`]).
    pub digest_log: Vec<(i64, i64)>,
    /// In an ensemble: the quorum's figures `mntr` adds (`None` when standalone).
    pub quorum: Option<QuorumStats>,
    /// The transaction log's counters since it was opened, once it runs (`mntr`'s
    /// `zk_fk_log_*` keys).
    pub log: Option<ferrokeeper_storage::log::LogStats>,
    /// How often each connection limit held a client back, on a running server
    /// (`mntr`'s `zk_fk_cnxns_refused_*` and `zk_fk_reads_paused_*` keys).
    pub limits: Option<LimitStats>,
    /// Quota limits and usage by top-level namespace (ZooKeeper's `quota_*_per_namespace`
    /// gauge sets), in the order ZooKeeper prints them: [`super::mntr::quota_order`].
    pub quota_namespaces: Vec<(String, crate::core::quota::NamespaceQuota)>,
    /// Writes refused by a hard quota limit, by namespace (ZooKeeper's counter set
    /// `quota_exceeded_error_per_namespace`), in ZooKeeper's order as above.
    pub quota_exceeded: Vec<(String, u64)>,
}

/// What the server's start took: ZooKeeper's `startup_snap_load_time`,
/// `startup_txns_loaded`, `startup_txns_load_time` and `dbinittime` summaries (one
/// sample each, as in ZooKeeper, which records them once per load).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartupStats {
    /// Finding, checking and mapping the newest snapshot, ms.
    pub snap_load_ms: u64,
    /// Log txns replayed after it.
    pub txns_loaded: u64,
    /// Replaying them (log opening and tail recovery included), ms.
    pub txns_load_ms: u64,
    /// The whole recovery, ms.
    pub db_init_ms: u64,
}

impl StartupStats {
    /// The four summaries by ZooKeeper's names.
    pub fn metrics(&self) -> [(&'static str, Summary); 4] {
        let one = |v: u64| Summary {
            count: 1,
            sum: v,
            min: v,
            max: v,
        };
        [
            ("startup_snap_load_time", one(self.snap_load_ms)),
            ("startup_txns_loaded", one(self.txns_loaded)),
            ("startup_txns_load_time", one(self.txns_load_ms)),
            ("dbinittime", one(self.db_init_ms)),
        ]
    }
}

/// How often each limit held a client back since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitStats {
    /// Connections closed at accept because `maxCnxns` were open.
    pub cnxns_refused_total: u64,
    /// Connections closed at accept because `maxClientCnxns` were open from the address.
    pub cnxns_refused_per_ip: u64,
    /// Times a connection stopped reading because `globalOutstandingLimit` was reached.
    pub reads_paused_global_outstanding: u64,
    /// Times a connection stopped reading because `sessionQueuedRequestsMax` of its
    /// requests waited.
    pub reads_paused_session_queue: u64,
    /// Times a connection stopped reading because its client left replies unread.
    pub reads_paused_output: u64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            serving: true,
            version: full_version(),
            mode: ServerMode::Standalone,
            last_processed_zxid: 0,
            node_count: 0,
            latency: Summary::default(),
            packets_received: 0,
            packets_sent: 0,
            alive_connections: 0,
            outstanding_requests: 0,
            uptime_ms: 0,
            watch_count: 0,
            ephemerals_count: 0,
            approximate_data_size: 0,
            global_sessions: 0,
            local_sessions: 0,
            open_file_descriptors: None,
            max_file_descriptors: None,
            connection_drop_probability: 0.0,
            client_response_size: BufferStats::default(),
            auth_failed_count: 0,
            metrics: BTreeMap::new(),
            connections: Vec::new(),
            data_watches: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            session_expiry: BTreeMap::new(),
            connection_expiry: BTreeMap::new(),
            conf: ConfStats::from_config(&Config::embedded_default()),
            dir_sizes: DirSizes::default(),
            environment: Vec::new(),
            trace_mask: DEFAULT_TRACE_MASK,
            digest_log: Vec::new(),
            quorum: None,
            log: None,
            limits: None,
            quota_namespaces: Vec::new(),
            quota_exceeded: Vec::new(),
        }
    }
}

/// ZooKeeper's short name for the last operation of a connection (`lop=` in `cons`), by
/// opcode, as `FinalRequestProcessor` sets it. Opcodes it does not name (auth, sasl, ...)
/// leave the previous name in place in ZooKeeper; here they map to `NA`.
pub fn last_operation_name(opcode: i32) -> &'static str {
    match opcode {
        11 => "PING",
        -10 => "SESS",
        14 => "MULT",
        22 => "MLTR",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        5 => "SETD",
        16 => "RECO",
        7 => "SETA",
        -11 => "CLOS",
        9 => "SYNC",
        13 => "CHEC",
        3 => "EXIS",
        4 => "GETD",
        101 => "SETW",
        105 => "STW2",
        106 => "ADDW",
        6 => "GETA",
        8 | 12 => "GETC",
        104 => "GETACN",
        17 => "CHKW",
        18 => "REMW",
        107 => "HOMI",
        103 => "GETE",
        _ => "NA",
    }
}

/// Bytes of all files under `path`, recursively (ZooKeeper's `getDirSize`); a file's own
/// length if `path` is a file; 0 if it cannot be read.
pub fn dir_size_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| dir_size_bytes(&entry.path()))
        .sum()
}

/// (open file descriptors, soft limit) of this process, from `/proc/self`; `None` where
/// not available (ZooKeeper prints these two `mntr` lines on Unix only).
pub fn file_descriptors() -> (Option<u64>, Option<u64>) {
    let open = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.filter_map(Result::ok).count() as u64);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line["Max open files".len()..].split_whitespace().next())
                .and_then(|soft| soft.parse().ok())
        });
    (open, max)
}

/// `envi`'s lines, in ZooKeeper's order and with its keys (`Environment.list`), filled
/// with what means the same for this process. The `java.*` keys have no meaning here and
/// are `<NA>`, ZooKeeper's own placeholder for an unknown value. `os.memory.free` and
/// `os.memory.max` are the host's available and total memory and `os.memory.total` the
/// process's resident size (Java prints its heap's free, maximum and current size).
pub fn environment(version: &str) -> Vec<(String, String)> {
    let na = || "<NA>".to_string();
    let read_trimmed = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let env_or_na = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(na)
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64".to_string(),
        "x86" => "i386".to_string(),
        other => other.to_string(),
    };
    let meminfo_mb = |field: &str| -> Option<u64> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with(field))?;
        let kb: u64 = line[field.len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb / 1024)
    };
    let rss_mb = || -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line["VmRSS:".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb / 1024)
    };
    let mb = |v: Option<u64>| v.map_or_else(na, |v| format!("{v}MB"));
    vec![
        ("zookeeper.version".into(), version.to_string()),
        (
            "host.name".into(),
            read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(na),
        ),
        ("java.version".into(), na()),
        ("java.vendor".into(), na()),
        ("java.home".into(), na()),
        ("java.class.path".into(), na()),
        ("java.library.path".into(), na()),
        (
            "java.io.tmpdir".into(),
            std::env::temp_dir().display().to_string(),
        ),
        ("java.compiler".into(), na()),
        (
            "os.name".into(),
            read_trimmed("/proc/sys/kernel/ostype")
                .unwrap_or_else(|| std::env::consts::OS.to_string()),
        ),
        ("os.arch".into(), arch),
        (
            "os.version".into(),
            read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(na),
        ),
        ("user.name".into(), env_or_na("USER")),
        ("user.home".into(), env_or_na("HOME")),
        (
            "user.dir".into(),
            std::env::current_dir().map_or_else(|_| na(), |d| d.display().to_string()),
        ),
        ("os.memory.free".into(), mb(meminfo_mb("MemAvailable:"))),
        ("os.memory.max".into(), mb(meminfo_mb("MemTotal:"))),
        ("os.memory.total".into(), mb(rss_mb())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keeps_zookeepers_shape() {
        let v = full_version();
        assert!(
            v.starts_with(&format!(
                "3.9.4-ferrokeeper-{}, built on ",
                env!("CARGO_PKG_VERSION")
            )),
            "{v}"
        );
        assert!(v.contains(", built on "), "{v}");
        // Scripts take the digits before the first '-' as the version.
        let numeric = v.split('-').next().expect("has a dash");
        let parts: Vec<u32> = numeric
            .split('.')
            .map(|p| p.parse().expect("digits"))
            .collect();
        assert_eq!(parts, vec![3, 9, 4]);
    }

    #[test]
    fn summary_matches_avg_min_max_counter() {
        let mut s = Summary::default();
        assert_eq!((s.min_or_zero(), s.avg(), s.max_or_zero()), (0, 0.0, 0));
        for sample in [12, 0, 3] {
            s.record(sample);
        }
        assert_eq!(
            (s.min_or_zero(), s.max_or_zero(), s.count, s.sum),
            (0, 12, 3, 15)
        );
        assert_eq!(s.avg(), 5.0);
    }

    #[test]
    fn buffer_stats_start_at_minus_one() {
        let mut b = BufferStats::default();
        assert_eq!((b.last, b.min, b.max), (-1, -1, -1));
        b.record(16);
        b.record(108);
        assert_eq!((b.last, b.min, b.max), (108, 16, 108));
    }

    #[test]
    fn operation_names() {
        assert_eq!(last_operation_name(11), "PING");
        assert_eq!(last_operation_name(12), "GETC");
        assert_eq!(last_operation_name(104), "GETACN");
        assert_eq!(last_operation_name(100), "NA");
    }

    #[test]
    fn environment_has_zookeepers_keys_in_order() {
        let env = environment("v");
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "zookeeper.version",
                "host.name",
                "java.version",
                "java.vendor",
                "java.home",
                "java.class.path",
                "java.library.path",
                "java.io.tmpdir",
                "java.compiler",
                "os.name",
                "os.arch",
                "os.version",
                "user.name",
                "user.home",
                "user.dir",
                "os.memory.free",
                "os.memory.max",
                "os.memory.total",
            ]
        );
        assert_eq!(env[0].1, "v");
        assert_eq!(env[9].1, "Linux");
        assert!(env[15].1.ends_with("MB"), "{:?}", env[15]);
    }

    #[test]
    fn file_descriptors_are_known_on_linux() {
        let (open, max) = file_descriptors();
        assert!(open.is_some_and(|n| n >= 3), "{open:?}");
        assert!(max.is_some_and(|n| n >= open.unwrap_or(0)), "{max:?}");
    }

    #[test]
    fn dir_size_sums_files_recursively() {
        let dir = std::env::temp_dir().join(format!("ferrokeeper-dirsize-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("version-2")).expect("mkdir");
        std::fs::write(dir.join("myid"), b"1\n").expect("write");
        std::fs::write(dir.join("version-2/log.1"), vec![0u8; 1000]).expect("write");
        assert_eq!(dir_size_bytes(&dir), 1002);
        assert_eq!(dir_size_bytes(&dir.join("myid")), 2);
        assert_eq!(dir_size_bytes(&dir.join("absent")), 0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
