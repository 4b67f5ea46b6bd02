//! Wiring: builds the commit stage and the shards from a [`Config`], connects them with
//! bounded SPSC queues (one pair per shard), and runs each on its own glommio executor.
//!
//! [`start`] returns a [`Running`] server; [`Running::wait`] blocks until a part fails or
//! a [`StopHandle`] asks for a clean stop (the binary's SIGTERM/SIGINT handler, or an
//! embedded server's `stop`): the shards stop first (no new requests, connections
//! closed), then the commit stage, then every log file is synced to disk.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

use crate::commit::stage::OsEntropy;
use crate::config::Config;
use crate::core::machine::StateMachine;
use crate::core::sequencer::{CoreConfig, Sequencer};
use crate::service::until_stopped;
use crate::shard::shared::{ServerShared, ShardStats};

/// Runs the server until the process is killed, until a part of it fails (then the
/// reason is returned and the caller ends the process), or until a [`StopHandle`] taken
/// from [`start`]'s [`Running`] stops it.
pub fn run(config: Config) -> std::io::Result<()> {
    start(config)?.wait()
}

/// Starts the server's executors and returns at once; the port is bound moments later
/// (see [`Running::wait_until_serving`]).
pub fn start(config: Config) -> std::io::Result<Running> {
    if let Some(ensemble) = config.ensemble.clone() {
        return start_ensemble(config, ensemble);
    }
    start_standalone(config)
}

/// Why [`Running::wait`] returned.
enum Ended {
    /// A part of the server failed, for this reason.
    Failed(String),
    /// A [`StopHandle`] asked for a clean stop.
    Stopped,
}

/// Asks a running server to stop cleanly. Cheap to clone and to send to another thread
/// (a signal handler's, an embedding test's).
#[derive(Debug, Clone)]
pub struct StopHandle(std::sync::mpsc::Sender<Ended>);

impl std::fmt::Debug for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Failed(reason) => write!(f, "Failed({reason})"),
            Ended::Stopped => f.write_str("Stopped"),
        }
    }
}

impl StopHandle {
    /// Asks the server to stop; [`Running::wait`] then stops it and returns `Ok`. Does
    /// nothing once the server has ended.
    pub fn stop(&self) {
        let _ = self.0.send(Ended::Stopped);
    }
}

/// A started server: its executors, and what [`Running::wait`] needs to stop them.
pub struct Running {
    ended: std::sync::mpsc::Receiver<Ended>,
    stop: StopHandle,
    /// Set first on a clean stop: the shards stop taking and answering requests.
    stop_shards: Arc<AtomicBool>,
    /// Set once the shards have ended: the commit stage (and, in an ensemble, the
    /// replication driver and its log) stop.
    stop_core: Arc<AtomicBool>,
    shards: Vec<glommio::ExecutorJoinHandle<()>>,
    core: Vec<glommio::ExecutorJoinHandle<()>>,
    listen_addr: SocketAddr,
    /// The directories whose files hold acknowledged writes (synced on a clean stop).
    log_dirs: Vec<std::path::PathBuf>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("listen_addr", &self.listen_addr)
            .field("log_dirs", &self.log_dirs)
            .finish_non_exhaustive()
    }
}

impl Running {
    fn new(
        failed: std::sync::mpsc::Receiver<String>,
        flags: (Arc<AtomicBool>, Arc<AtomicBool>),
        shards: Vec<glommio::ExecutorJoinHandle<()>>,
        core: Vec<glommio::ExecutorJoinHandle<()>>,
        listen_addr: SocketAddr,
        log_dirs: Vec<std::path::PathBuf>,
    ) -> Running {
        let (tx, ended) = std::sync::mpsc::channel();
        let forward = tx.clone();
        // `FailStop` has its own channel; this thread carries its reason into ours, so
        // that `wait` blocks on one receiver. It ends when every `FailStop` is dropped
        // (the executors have ended).
        let _ = std::thread::Builder::new()
            .name("fail-watch".into())
            .spawn(move || {
                if let Ok(reason) = failed.recv() {
                    let _ = forward.send(Ended::Failed(reason));
                }
            });
        Running {
            ended,
            stop: StopHandle(tx),
            stop_shards: flags.0,
            stop_core: flags.1,
            shards,
            core,
            listen_addr,
            log_dirs,
        }
    }

    /// A handle that stops this server from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The client port's address, as configured (`0.0.0.0` when no
    /// `clientPortAddress` was given).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Blocks until the client port accepts connections (every shard binds it on its own
    /// executor, after `start` has returned), or until `timeout` passes. Probes with a
    /// TCP connect that it closes at once; the shard sees a client that leaves.
    pub fn wait_until_serving(&self, timeout: Duration) -> bool {
        wait_until_serving(self.listen_addr, timeout)
    }

    /// Blocks until a part of the server fails (its reason is the error) or a
    /// [`StopHandle`] asks for a stop. A stop ends the shards first, so that nothing new
    /// is acknowledged, then the commit stage, then syncs every file of the log: every
    /// write a client saw acknowledged is on disk when this returns `Ok`.
    pub fn wait(self) -> std::io::Result<()> {
        let ended = self.ended.recv().unwrap_or(Ended::Stopped);
        match ended {
            Ended::Failed(reason) => {
                // The caller ends the process; the flags let an embedding process's
                // executors end too.
                self.stop_shards.store(true, Ordering::Release);
                self.stop_core.store(true, Ordering::Release);
                Err(std::io::Error::other(reason))
            }
            Ended::Stopped => {
                tracing::info!("stopping: shards first, then the commit stage");
                self.stop_shards.store(true, Ordering::Release);
                for h in self.shards {
                    let _ = h.join();
                }
                self.stop_core.store(true, Ordering::Release);
                for h in self.core {
                    let _ = h.join();
                }
                for dir in &self.log_dirs {
                    sync_dir_files(dir)?;
                }
                tracing::info!(log_dirs = ?self.log_dirs, "stopped; the log is synced");
                Ok(())
            }
        }
    }
}

/// Blocks until `listen_addr` (a server's client port; an unspecified address is probed
/// on loopback) accepts a TCP connection, or `timeout` passes; says which. The probe
/// connection is closed at once: the shard sees a client that leaves.
pub fn wait_until_serving(listen_addr: SocketAddr, timeout: Duration) -> bool {
    let mut addr = listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// fsyncs every file directly in `dir`, then `dir` itself. With forceSync=yes each
/// acknowledged batch was synced already; with forceSync=no this is what makes a clean
/// stop lose nothing. A missing directory has nothing to sync.
fn sync_dir_files(dir: &std::path::Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

// Long because it wires the executors in the order they must start, and the channels
// between them are created and handed out in one place.
fn start_standalone(config: Config) -> std::io::Result<Running> {
    let shards = config.shards.max(1);
    let (fail, failed) = crate::commit::FailStop::new();
    let stop_shards = Arc::new(AtomicBool::new(false));
    let stop_core = Arc::new(AtomicBool::new(false));
    let log_counters = Arc::new(crate::commit::log::LogCounters::new());
    let on_shard = commit_on_shard(config.commit_on_shard, shards, cpus());
    let shared = server_shared(&config, &fail, &log_counters, None, on_shard)?;
    let listen_addr = shared.listen_addr;
    let core_cfg = core_config(&config, &shared);
    let (state, writer, snapshots, startup) = recover(&config)?;
    let timed = log_counters.clone();
    snapshots.time_into(crate::snapshot::SnapshotTimer(Box::new(move |elapsed| {
        timed.record_snapshot(elapsed)
    })));
    let _ = shared.startup.set(startup);
    let core = Sequencer::with_state(
        core_cfg,
        state.clone(),
        crate::commit::stage::now_ms(),
        Box::new(OsEntropy),
    );
    let machine = StateMachine::new(state);
    let root = machine.state().clone();
    let purge_through = snapshots.purge_through.clone();
    let compress_through = config
        .log_compress_superseded
        .then(|| snapshots.compress_through.clone());
    let depth = config.limits.commit_queue_depth_requests;
    let batch_max = config.limits.commit_batch_requests_max;

    let (to_commit_rx, to_shard_tx, shard_ends) = shard_channels(shards, depth);

    let tick = Duration::from_millis((u64::from(config.tick_time_ms) / 20).clamp(5, 100));
    let handoff = shared.handoff.clone();
    let stop = stop_core.clone();
    let restores = shared.restores.1.clone();
    let commit_stage = move || {
        until_stopped(
            stop,
            crate::commit::stage::run(
                core,
                machine,
                to_commit_rx,
                to_shard_tx,
                // Made on the commit stage's executor: it holds a file on that ring.
                crate::commit::append::Appender::new(writer, purge_through, log_counters, fail)
                    .compressing(compress_through),
                tick,
                batch_max,
                handoff,
                snapshots,
                restores,
            ),
        )
    };
    let (handles, commit) = if on_shard {
        let mut ends = shard_ends.into_iter();
        let (tx, crx) = ends.next().expect("at least one shard");
        let (s0, r0, stop0) = (shared.clone(), root.clone(), stop_shards.clone());
        // Shard 0's accept loop ends with the other shards; the executor (its handle is
        // the commit stage's) runs on until the commit stage stops, so its connections'
        // tasks may still answer in that short window, as the commit stage still
        // commits what reached it.
        let h0 = executor(shard_placement(0, shared.config.pin_shards, cpus()))
            .name("shard0")
            .spawn(move || async move {
                let commit = glommio::spawn_local(commit_stage());
                until_stopped(stop0, crate::shard::run(0, s0, tx, crx, r0)).await;
                commit.await;
            })
            .map_err(|e| std::io::Error::other(format!("cannot start shard 0: {e}")))?;
        (
            spawn_shards(1, &shared, ends.collect(), &root, &stop_shards)?,
            h0,
        )
    } else {
        let commit = executor(commit_placement(shards))
            .name("commit")
            .spawn(commit_stage)
            .map_err(|e| std::io::Error::other(format!("cannot start the commit stage: {e}")))?;
        (
            spawn_shards(0, &shared, shard_ends, &root, &stop_shards)?,
            commit,
        )
    };
    crate::http::start(&shared, &stop_shards)?;
    tracing::info!(%listen_addr, shards, commit_on_shard = on_shard, force_sync = config.force_sync, limits = ?config.limits, "ferrokeeper serving");
    drop(shared);
    Ok(Running::new(
        failed,
        (stop_shards, stop_core),
        handles,
        vec![commit],
        listen_addr,
        vec![crate::commit::log::log_dir(&config.data_log_dir)],
    ))
}

/// Environment variable for the Raft tick in milliseconds (default
/// [`RAFT_TICK_MS_DEFAULT`]); tests shorten or lengthen elections with it.
pub const RAFT_TICK_ENV: &str = "FERROKEEPER_RAFT_TICK_MS";
/// One Raft tick. The leader heartbeats every [`HEARTBEAT_TICKS`] and a follower that
/// hears nothing for [`ELECTION_TICKS`] to twice that campaigns: 400–800 ms, so a dead
/// leader is replaced in well under a second (ZooKeeper's own detection takes
/// `syncLimit × tickTime`, 10 s with the usual settings).
pub const RAFT_TICK_MS_DEFAULT: u64 = 50;
const HEARTBEAT_TICKS: usize = 2;
const ELECTION_TICKS: usize = 8;
/// Environment variable for the Raft entries kept below the newest snapshot (default
/// `replica::driver::COMPACT_MARGIN_DEFAULT`); tests set it low to force snapshot installs.
pub const COMPACT_MARGIN_ENV: &str = "FERROKEEPER_RAFT_COMPACT_MARGIN";
/// The bytes those entries may take (default `replica::driver::COMPACT_MARGIN_BYTES_DEFAULT`).
pub const COMPACT_MARGIN_BYTES_ENV: &str = "FERROKEEPER_RAFT_COMPACT_MARGIN_BYTES";
/// Environment variable with fault settings for the peer transport (`drop=0.01,dup=0.001,
/// delay=5..20,seed=7`; see `peer::Faults::parse`), for partition and chaos tests.
pub const PEER_FAULTS_ENV: &str = "FERROKEEPER_PEER_FAULTS";

/// Runs an ensemble member: the same shards as a standalone server, with the commit
/// executor running the replication driver and the log executor the Raft log.
// Long because, as `run`, it wires the executors in the order they must start and hands
// out the channels between them in one place.
fn start_ensemble(config: Config, ensemble: crate::config::Ensemble) -> std::io::Result<Running> {
    use crate::replica::{driver, node};
    let shards = config.shards.max(1);
    let (fail, failed) = crate::commit::FailStop::new();
    let stop_shards = Arc::new(AtomicBool::new(false));
    let stop_core = Arc::new(AtomicBool::new(false));
    let log_counters = Arc::new(crate::commit::log::LogCounters::new());
    let status = Arc::new(crate::commit::role::EnsembleStatus::default());
    let shared = server_shared(&config, &fail, &log_counters, Some(status.clone()), false)?;
    let listen_addr = shared.listen_addr;

    // Recover: the newest snapshot with a Raft position, then the Raft log's committed
    // entries after it.
    let started = Instant::now();
    let dir = config.data_log_dir.join("ferrokeeper").join("raft");
    std::fs::create_dir_all(&dir)?;
    let (log, stored) = ferrokeeper_storage::raftlog::RaftLog::open(&dir, log_options(&config)?)
        .map_err(|e| std::io::Error::other(format!("raft log {}: {e}", dir.display())))?;
    let recovered = crate::replica::recover::recover(
        &config.data_dir,
        stored,
        ensemble.zookeeper_config_text().as_bytes(),
        config.extended_types_enabled,
        &dir,
    )?;
    tracing::info!(
        dir = %dir.display(), snapshot_at = ?recovered.start, entries = recovered.entries.len(),
        applied = recovered.applied, zxid = format_args!("0x{:x}", recovered.state.last_zxid),
        znodes = recovered.state.tree.len(), sessions = recovered.state.sessions.len(),
        elapsed = ?started.elapsed(), "recovered: snapshot plus raft log (restart time)"
    );
    let snapshots = Arc::new(
        crate::snapshot::SnapshotPolicy::new(
            crate::snapshot::snap_dir(&config.data_dir),
            config.snap_count,
            config.autopurge_snap_retain_count,
            config.autopurge_purge_interval_hours > 0,
        )
        // A snapshot a follower is fetching is pinned against compression and
        // retention, and one compressed before the follower asked is restored for it
        // (`snapshot::transfer`).
        .with_compression(config.compress_superseded_snapshots),
    );
    let timed = log_counters.clone();
    snapshots.time_into(crate::snapshot::SnapshotTimer(Box::new(move |elapsed| {
        timed.record_snapshot(elapsed)
    })));
    let purge_through = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let raft_tick = std::env::var(RAFT_TICK_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(RAFT_TICK_MS_DEFAULT);
    let faults = match std::env::var(PEER_FAULTS_ENV) {
        Ok(text) => crate::peer::Faults::parse(&text)
            .map_err(|e| std::io::Error::other(format!("{PEER_FAULTS_ENV}: {e}")))?,
        Err(_) => crate::peer::Faults::none(),
    };
    // The membership is the state's (a reconfig keeps it in /zookeeper/config, which
    // recovery left newer than the files when they lag behind).
    let membership = crate::replica::membership::Membership::parse(
        &recovered.state.config_text(),
        ensemble.multi_address,
    )
    .ok()
    .filter(|m| !m.servers.is_empty())
    .unwrap_or_else(|| crate::replica::membership::Membership {
        servers: ensemble.servers.clone(),
        version: ensemble.version,
    });
    let voters: Vec<u64> = membership.voters();
    let peers = crate::replica::membership::peer_addrs(&membership, ensemble.my_id)?;
    let incarnation = 1 + (rand::random::<u8>() % 255);
    let node_cfg = node::NodeConfig {
        id: ensemble.my_id,
        voters: voters.clone(),
        learners: membership.learners(),
        election_tick: ELECTION_TICKS,
        heartbeat_tick: HEARTBEAT_TICKS,
        // raft-rs's default: randomized in [election, 2 × election).
        max_election_tick: 0,
        core: core_config(&config, &shared),
        incarnation,
        local_sessions: config.local_sessions_enabled,
        local_upgrading: config.local_sessions_upgrading_enabled,
        // QuorumPeer: a LOOKING peer starts its read-only server after
        // max(2000, tickTime) ms.
        read_only_after_ms: config
            .read_only_mode_enabled
            .then(|| (config.tick_time_ms as i64).max(2000)),
        multi_address: ensemble.multi_address,
        standalone_enabled: config.standalone_enabled,
    };
    let offer = recovered.offer;
    let mut node = node::Node::new(
        node_cfg,
        node::Restored {
            state: recovered.state,
            start: recovered.start,
            entries: recovered.entries,
            hard_state: recovered.hard_state,
            applied: recovered.applied,
        },
        Box::new(|| Box::new(OsEntropy)),
        &node::raft_logger(),
    )
    .map_err(|e| std::io::Error::other(format!("cannot start replication: {e}")))?;
    // Writes forwarded by followers carry the session's ids; the sasl scheme's provider
    // is this server's configuration.
    node.set_sasl_acl(shared.security.sasl_acl.clone());
    let root = node.state().clone();

    let (to_log, log_jobs) = shared_channel::new_bounded(LOG_QUEUE_DEPTH * 4);
    let (log_acks, from_log) = shared_channel::new_bounded(LOG_QUEUE_DEPTH * 4);
    let log = executor(Placement::Unbound)
        .name("raftlog")
        .spawn({
            let fail = fail.clone();
            let purge_through = purge_through.clone();
            let stop = stop_core.clone();
            move || {
                until_stopped(
                    stop,
                    driver::run_log(log, log_jobs, log_acks, log_counters, purge_through, fail),
                )
            }
        })
        .map_err(|e| std::io::Error::other(format!("cannot start the log executor: {e}")))?;
    let depth = config.limits.commit_queue_depth_requests;
    let (to_commit_rx, to_shard_tx, shard_ends) = shard_channels(shards, depth);
    let session_tick = Duration::from_millis((u64::from(config.tick_time_ms) / 20).clamp(5, 100));
    let parts = driver::Parts {
        node,
        from_shards: to_commit_rx,
        to_shards: to_shard_tx,
        to_log,
        from_log,
        peers: crate::peer::PeerConfig {
            my_id: ensemble.my_id,
            listen: ensemble.quorum_listen_addrs()?,
            peers,
            faults,
            max_frame: PEER_FRAME_MAX,
            ordered_kinds: vec![crate::replica::node::KIND_FORWARD],
        },
        raft_tick: Duration::from_millis(raft_tick),
        session_tick,
        handoff: shared.handoff.clone(),
        status,
        quorum_size: voters.len() as u64,
        started: shared.started,
        fail: fail.clone(),
        data_dir: config.data_dir.clone(),
        snapshots,
        extended_types: config.extended_types_enabled,
        offer,
        purge_through,
        compact_margin: std::env::var(COMPACT_MARGIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(driver::COMPACT_MARGIN_DEFAULT),
        compact_margin_bytes: std::env::var(COMPACT_MARGIN_BYTES_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(driver::COMPACT_MARGIN_BYTES_DEFAULT),
        forward_timeout_ms: i64::from(ensemble.sync_limit.max(1)) * i64::from(config.tick_time_ms),
        my_id: ensemble.my_id,
        config_file: config.config_file.clone(),
    };
    let commit_placement = commit_placement(shards);
    let stop = stop_core.clone();
    let commit = executor(commit_placement)
        .name("commit")
        .spawn(move || until_stopped(stop, driver::run(parts)))
        .map_err(|e| std::io::Error::other(format!("cannot start the commit stage: {e}")))?;
    let handles = spawn_shards(0, &shared, shard_ends, &root, &stop_shards)?;
    crate::http::start(&shared, &stop_shards)?;
    tracing::info!(
        %listen_addr, shards, my_id = ensemble.my_id, voters = ?voters, raft_tick_ms = raft_tick,
        "ferrokeeper ensemble member serving"
    );
    drop(shared);
    Ok(Running::new(
        failed,
        (stop_shards, stop_core),
        handles,
        vec![commit, log],
        listen_addr,
        vec![dir],
    ))
}

/// What every shard and the commit executor share, from the config.
fn server_shared(
    config: &Config,
    fail: &crate::commit::FailStop,
    log_counters: &Arc<crate::commit::log::LogCounters>,
    ensemble: Option<Arc<crate::commit::role::EnsembleStatus>>,
    commit_on_shard: bool,
) -> std::io::Result<Arc<ServerShared>> {
    let security = crate::auth::Security::from_config(config).map_err(std::io::Error::other)?;
    // The stores are opened before anything listens: a wrong password stops the start
    // with an error naming the key, as ZooKeeper's does.
    let tls = if config.tls.enabled() {
        let server = crate::tls::TlsServer::new(&config.tls)
            .map_err(|e| std::io::Error::other(format!("TLS: {e}")))?;
        Some(Arc::new(server))
    } else {
        None
    };
    let shards = config.shards.max(1);
    let listen_addr = SocketAddr::new(
        config
            .client_port_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        config.client_port,
    );
    Ok(Arc::new(ServerShared {
        tls,
        log_counters: log_counters.clone(),
        fail: fail.clone(),
        listen_addr,
        tick_time_ms: u64::from(config.tick_time_ms),
        limits: config.limits.clone(),
        skip_acl: config.skip_acl,
        super_digest: config.super_digest.clone(),
        security: Arc::new(security),
        shard_stats: {
            let responses = Arc::new(crate::shard::shared::ResponseSizes::default());
            (0..shards)
                .map(|_| Arc::new(ShardStats::new(responses.clone())))
                .collect()
        },
        started: Instant::now(),
        handoff: Arc::new(crate::commit::stage::Handoff::new(shards)),
        trace_mask: std::sync::atomic::AtomicI64::new(crate::admin::DEFAULT_TRACE_MASK),
        cnxns: Default::default(),
        outstanding_requests: std::sync::atomic::AtomicU32::new(0),
        limit_counters: Default::default(),
        config: config.clone(),
        ensemble,
        admin_calls: async_channel::bounded(crate::shard::admin::ADMIN_CALLS_MAX),
        // One restore at a time: the AdminServer's rate limit allows one per interval.
        restores: async_channel::bounded(1),
        startup: std::sync::OnceLock::new(),
        core_stats: Default::default(),
        placement: crate::shard::placement::Placement::new(shards, commit_on_shard),
    }))
}

/// One bounded channel pair per shard: (the commit side's receivers, its senders, each
/// shard's ends).
type ShardChannels = (
    Vec<shared_channel::SharedReceiver<crate::commit::stage::StageMsg>>,
    Vec<shared_channel::SharedSender<crate::commit::stage::Completion>>,
    Vec<(
        shared_channel::SharedSender<crate::commit::stage::StageMsg>,
        shared_channel::SharedReceiver<crate::commit::stage::Completion>,
    )>,
);

fn shard_channels(shards: usize, depth: usize) -> ShardChannels {
    let mut to_commit_rx = Vec::new();
    let mut to_shard_tx = Vec::new();
    let mut shard_ends = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = shared_channel::new_bounded(depth);
        let (ctx, crx) = shared_channel::new_bounded(depth);
        to_commit_rx.push(rx);
        to_shard_tx.push(ctx);
        shard_ends.push((tx, crx));
    }
    (to_commit_rx, to_shard_tx, shard_ends)
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// With a core left over by the shards (the tuner's default from 4 cores up), the commit
/// executor, which every write passes through, gets it to itself.
fn commit_placement(shards: usize) -> Placement {
    if shards < cpus() {
        Placement::Fixed(shards)
    } else {
        Placement::Unbound
    }
}

/// Whether a standalone server runs its commit stage on shard 0's executor: as
/// `ferrokeeper.commitOnShard` says, else when the shards take every core.
///
/// Every write crosses from its shard to the commit stage and back. With the commit stage
/// on a thread of its own each crossing wakes a sleeping executor (an eventfd write, an
/// `io_uring_enter`, a context switch), and at light load those wakes are most of a
/// write's cost (bench/results/light-writes-2026-12-06.md). On shard 0's executor a write
/// from one of shard 0's connections crosses no thread at all: at one setData in flight
/// on 2 cores the server's CPU per write fell from 86–89 µs to 40–43 µs on a quiet
/// machine (bench/results/commit-on-shard-2026-12-06.md); from another shard's
/// connections a write still crosses to shard 0 and back. The price is that shard 0's requests wait behind the
/// commit stage's work on that executor, and the commit stage no longer runs on
/// whichever core is free; with a core to spare (`commit_placement`) it keeps its own.
fn commit_on_shard(setting: Option<bool>, shards: usize, cpus: usize) -> bool {
    setting.unwrap_or(shards >= cpus)
}

/// Where shard `i` runs: pinned to a core (round-robin) unless `ferrokeeper.pinShards`
/// is off, then wherever the scheduler puts it.
///
/// The trade, measured on 2 cores shared with other busy processes
/// (bench/results/tail-2026-12-06.md): a pinned shard that is runnable waits for its own
/// core even when the other one frees first (`perf sched`: 138–182 ms off its core while
/// other processes' threads ran), and its connections stall while the other shard's go on:
/// those stalls were the write workloads' 0.4–0.8 s maximum latencies. Unpinned, the
/// maxima fell to 48–179 ms in 6 of 7 runs, but the scheduler kept the server's threads
/// together on one core, and under the same contention the server got less CPU: about a
/// fifth fewer writes/s (8–38% per alternating pair). Pinning stays the default; a machine
/// whose cores are shared with other busy processes can turn it off.
fn shard_placement(i: usize, pin: bool, cpus: usize) -> Placement {
    if pin {
        Placement::Fixed(i % cpus)
    } else {
        Placement::Unbound
    }
}

/// Starts one executor for each of `shard_ends`, the shards from `first` on, placed by
/// [`shard_placement`].
fn spawn_shards(
    first: usize,
    shared: &Arc<ServerShared>,
    shard_ends: Vec<(
        shared_channel::SharedSender<crate::commit::stage::StageMsg>,
        shared_channel::SharedReceiver<crate::commit::stage::Completion>,
    )>,
    root: &Arc<crate::core::state::DataState>,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Vec<glommio::ExecutorJoinHandle<()>>> {
    let cpus = cpus();
    let pin = shared.config.pin_shards;
    let mut handles = Vec::new();
    for (i, (tx, crx)) in shard_ends.into_iter().enumerate() {
        let i = first + i;
        let shared = shared.clone();
        let root = root.clone();
        let stop = stop.clone();
        let h = executor(shard_placement(i, pin, cpus))
            .name(&format!("shard{i}"))
            .spawn(move || until_stopped(stop, crate::shard::run(i, shared, tx, crx, root)))
            .map_err(|e| std::io::Error::other(format!("cannot start shard {i}: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

/// The largest peer frame: an entry is one commit batch, bounded by the log's batch size,
/// and a Raft append message carries up to 1 MiB of entries (`max_size_per_msg`).
const PEER_FRAME_MAX: usize = 64 << 20;

/// The sequencer's settings from the config.
fn core_config(config: &Config, shared: &ServerShared) -> CoreConfig {
    CoreConfig {
        tick_time_ms: i64::from(config.tick_time_ms),
        min_session_timeout_ms: config.limits.session_timeout_ms_min as i32,
        max_session_timeout_ms: config.limits.session_timeout_ms_max as i32,
        extended_types: config.extended_types_enabled,
        skip_acl: config.skip_acl,
        enforce_quota: config.enforce_quota,
        acl_providers: crate::core::acl::Providers {
            x509: config.tls.enabled(),
        },
        server_id: config.server_id as i64,
        container_check_interval_ms: config.container_check_interval_ms as i64,
        container_max_per_minute: config.container_max_per_minute as usize,
        container_max_never_used_ms: config.container_max_never_used_interval_ms as i64,
        reconfig_enabled: config.reconfig_enabled,
        stats: shared.core_stats.clone(),
    }
}

/// Recovers the committed state: the newest valid snapshot, then the log records after
/// it. Returns the state, the log writer positioned after it, and the snapshot policy.
fn recover(
    config: &Config,
) -> std::io::Result<(
    crate::core::state::DataState,
    ferrokeeper_storage::log::LogWriter,
    Arc<crate::snapshot::SnapshotPolicy>,
    crate::admin::StartupStats,
)> {
    // Recover: the newest valid snapshot, then the log records after it.
    let started = Instant::now();
    let snap_dir = crate::snapshot::snap_dir(&config.data_dir);
    let snapshots = Arc::new(
        crate::snapshot::SnapshotPolicy::new(
            snap_dir.clone(),
            config.snap_count,
            config.autopurge_snap_retain_count,
            config.autopurge_purge_interval_hours > 0,
        )
        .with_compression(config.compress_superseded_snapshots),
    );
    if config.autopurge_purge_interval_hours == 0 {
        // As ZooKeeper's DatadirCleanupManager: purgeInterval 0 (the default) is off.
        tracing::info!(
            "autopurge.purgeInterval is 0: old snapshots and log segments are kept (set it to purge)"
        );
    }
    let loaded = crate::snapshot::load_newest(&snap_dir, config.extended_types_enabled)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let snapshot_zxid = loaded.state.as_ref().map(|s| s.last_zxid);
    let mut loaded_state = loaded.state;
    if let Some(s) = loaded_state.as_mut() {
        // A snapshot of an older format is written back in this build's.
        crate::snapshot::write_back_upgraded(&snap_dir, s);
    }
    let mut state = loaded_state.unwrap_or_else(|| {
        crate::core::state::DataState::new(
            crate::core::sequencer::open_acl_unsafe(),
            config.extended_types_enabled,
        )
    });
    let snapshot_elapsed = started.elapsed();
    // If newer snapshots were rejected, replay from the older state must still reach
    // the end: the log's check for a gap refuses to start otherwise, and says why.
    let gap_context: String = loaded
        .rejected
        .iter()
        .map(|r| format!("; snapshot rejected: {}", r.reason))
        .collect();
    let log_dir = crate::commit::log::log_dir(&config.data_log_dir);
    let log_opts = log_options(config)?;
    let replay_started = Instant::now();
    let (writer, replayed) =
        crate::commit::log::open_and_replay(&log_dir, log_opts, &mut state, &gap_context)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    let startup = crate::admin::StartupStats {
        snap_load_ms: snapshot_elapsed.as_millis() as u64,
        txns_loaded: replayed,
        txns_load_ms: replay_started.elapsed().as_millis() as u64,
        db_init_ms: started.elapsed().as_millis() as u64,
    };
    tracing::info!(
        snapshot = ?loaded.from, snapshot_zxid = format_args!("0x{:x}", snapshot_zxid.unwrap_or(0)),
        snapshot_elapsed = ?snapshot_elapsed, rejected_snapshots = loaded.rejected.len(),
        log_dir = %log_dir.display(), txns = replayed, zxid = format_args!("0x{:x}", state.last_zxid),
        znodes = state.tree.len(), sessions = state.sessions.len(), elapsed = ?started.elapsed(),
        "recovered: snapshot plus transaction log (restart time)"
    );
    // The loaded snapshot was read and verified: the log before it may be compressed.
    if let Some(zxid) = snapshot_zxid {
        snapshots
            .compress_through
            .fetch_max(zxid, std::sync::atomic::Ordering::AcqRel);
    }
    // Retention state as of now: lets the commit executor purge what existing snapshots
    // already cover, from the first write on.
    if let Err(e) = snapshots.retain_and_mark() {
        tracing::warn!(error = %e, "snapshot retention at startup failed");
    }
    Ok((state, writer, snapshots, startup))
}

/// Environment variable that sets glommio's preemption timer, in microseconds, for every
/// executor the server starts; unset, glommio's default (100 ms). For tests: the start
/// hang (below) needed the timer to fire between a reactor poll and the task-queue pass
/// after it, which a timer of a few tens of microseconds makes near certain.
pub const PREEMPT_TIMER_ENV: &str = "FERROKEEPER_PREEMPT_TIMER_US";

/// glommio's registered I/O buffer pool per executor. Its default (10 MiB) is pinned and
/// resident from the start: with three executors it was 30 of the 34 MiB of heap an
/// idle server held (measured with /proc/PID/smaps_rollup, issue #13). ferrokeeper's
/// files go through its own rings (`ferrokeeper_storage`), so the pool serves only socket
/// receives, and a receive that finds it full gets a heap buffer instead (glommio's
/// `UringBufferAllocator::new_buffer`): 1 MiB holds sixteen 64 KiB receives in flight.
const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;

/// A builder for one of the server's executors.
///
/// The start hang: glommio 0.9.0 could park an executor with tasks it had just woken
/// still queued, when its preemption timer had fired before the queue pass. The
/// transaction log's executor did so while its `shared_channel::connect` to the commit
/// stage was ready to complete; a connect is woken only by its own executor's polls
/// (the peer's connect writes no eventfd) and the log has no timer or I/O at start-up,
/// so it slept for ever. The commit stage then spun in its own connect to the log, the
/// shards spun in theirs to the commit stage, and the port was never bound: about 1 start
/// in 200 under client load, where those spinning executors keep the log's thread off
/// the CPU long enough (100 ms) for the timer to fire. No order of connects avoids it,
/// since any connect can be the one whose wakeup is lost; the workspace patches glommio
/// (net/vendor/glommio/FERROKEEPER-PATCH.md) and tests/start_hang.rs guards it.
fn executor(placement: Placement) -> LocalExecutorBuilder {
    let builder = LocalExecutorBuilder::new(placement).io_memory(EXECUTOR_IO_MEMORY_BYTES);
    match std::env::var(PREEMPT_TIMER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(us) if us > 0 => builder.preempt_timer(Duration::from_micros(us)),
        _ => builder,
    }
}

/// Batches that may wait for the log at once: one being written and synced, one
/// forming behind it, and one more queued. Deeper queues add latency, not throughput.
const LOG_QUEUE_DEPTH: usize = 2;

/// The log's limits from zoo.cfg: `preAllocSize` is the segment size, `forceSync` the
/// sync switch; a batch never takes more than half a segment.
fn log_options(config: &Config) -> std::io::Result<ferrokeeper_storage::log::LogOptions> {
    let segment_bytes = config.pre_alloc_size_kb.saturating_mul(1024);
    let mut opts = ferrokeeper_storage::log::LogOptions {
        segment_bytes,
        force_sync: config.force_sync,
        ..Default::default()
    };
    opts.batch_bytes_max = opts.batch_bytes_max.min((segment_bytes / 2) as usize);
    // A record must fit in a batch with its frame header.
    opts.record_bytes_max = opts.record_bytes_max.min(
        opts.batch_bytes_max
            .saturating_sub(ferrokeeper_storage::log::format::FRAME_HEADER_BYTES),
    );
    opts.validate().map_err(|e| {
        std::io::Error::other(format!(
            "preAllocSize={} (KB) does not fit the transaction log: {e}",
            config.pre_alloc_size_kb
        ))
    })?;
    Ok(opts)
}
