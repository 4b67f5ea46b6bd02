//! One simulated server: the real sequencer, state machine, log writer and snapshot
//! code, on two simulated disks ([`SimStorage`]), with a clock the simulator owns.
//!
//! It is a value the simulator steps: [`SimServer::handle`] takes a request,
//! [`SimServer::tick`] moves the clock, [`SimServer::seal`] takes the batch built so far
//! and queues it for the log (as the stage's flusher), and [`SimServer::sync`] does what
//! the stage's flusher does once the batch is taken (`commit::append`'s group append,
//! adopt, snapshot, rebase, purge) and returns the replies that may now be released.
//! Sealing without syncing leaves batches in flight while the sequencer runs ahead, as
//! the real stage pipelines them (the real stage seals the next batch only after the
//! last is durable, one of the orders the simulator explores). Nothing here touches a
//! socket or a thread, so several servers can later share one scheduler and a simulated
//! network; the server knows nothing about clients beyond the [`Origin`] it hands back.
//!
//! Failure is fail-stop, as on a real server: a failed log write or fsync (or the
//! process dying, `crash_after_ops`) stops the server before it acknowledges anything
//! more; [`SimServer::restart`] then cuts the power on both disks and recovers exactly as
//! `server::run` does.

use std::sync::Arc;

use ferrokeeper_storage::backend::sim::{SimFaults, SimStorage};
use ferrokeeper_storage::log::{LogOptions, LogWriter, Record};
use ferrokeeper_storage::snapshot as snapfile;

use crate::commit::log::LogBatch;
use crate::core::apply::Change;
use crate::core::machine::StateMachine;
use crate::core::sequencer::{
    open_acl_unsafe, CommitRequest, CoreConfig, Origin, ReplyMsg, SeededEntropy, Sequencer,
};
use crate::core::state::DataState;
use crate::core::tree::Base;
use crate::core::txn::Txn;

/// What a simulated server is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The core's settings (sessions, extended types, reaping).
    pub core: CoreConfig,
    /// The log's limits (small segments, so that rolls and purges happen often).
    pub log: LogOptions,
    /// `snapCount`: a snapshot after a random number of txns in `[n/2 + 1, n]`.
    pub snap_count: u64,
    /// Snapshots kept when purging.
    pub snap_retain: usize,
    /// Whether old snapshots and log segments are purged (`autopurge.purgeInterval > 0`).
    pub purge: bool,
    /// Flushes between a snapshot being written and the head moving onto it: the real
    /// stage rebases when the snapshot thread is done, later than it froze the head.
    pub rebase_delay_flushes: u32,
}

/// The running part of a server: gone while it is stopped.
struct Live {
    writer: LogWriter<SimStorage>,
    seq: Sequencer,
    machine: StateMachine,
    /// Txns since the last snapshot, and the count that triggers the next one.
    since_snapshot: u64,
    threshold: u64,
    /// A snapshot written and read back, waiting `flushes` more flushes to become the
    /// head's base (the stage's `take_written`).
    written: Option<(Arc<Base>, u32)>,
    /// Log records through this zxid are covered by the oldest retained snapshot.
    purge_target: i64,
    purged_through: i64,
    /// Batches sealed and waiting for the log, oldest first (at most
    /// [`LOG_QUEUE_DEPTH`], as the stage's channel to the log).
    queue: std::collections::VecDeque<Sealed>,
}

/// Batches that may wait for the log at once (`server::LOG_QUEUE_DEPTH`).
pub const LOG_QUEUE_DEPTH: usize = 2;

/// A batch taken from the sequencer and queued for the log: what to release once it is
/// durable (the stage's `Pending`).
struct Sealed {
    txns: Vec<Txn>,
    log: LogBatch,
    replies: Vec<(Origin, ReplyMsg)>,
    changes: Vec<Change>,
    state: Arc<DataState>,
    snapshot: bool,
}

/// A batch the log refused, or that was queued behind one.
#[derive(Debug)]
pub struct Unacked {
    /// The batch's txns.
    pub txns: Vec<Txn>,
    /// The bytes handed to the log.
    pub log: LogBatch,
    /// The replies that were never released.
    pub replies: Vec<(Origin, ReplyMsg)>,
}

/// What one [`SimServer::sync`] did.
#[derive(Debug)]
pub enum Flush {
    /// The server is stopped (fail-stop); nothing happened.
    Down,
    /// No batch was pending.
    Idle,
    /// The queued batches are durable and committed, in order: their replies may be
    /// released.
    Acked(Vec<Acked>),
    /// The log refused the group: nothing of it is acknowledged, and the server has
    /// stopped. Its txns may or may not be on disk; a restart decides.
    Stopped {
        /// Why.
        reason: String,
        /// The batches, in order.
        batches: Vec<Unacked>,
    },
}

/// An acknowledged batch.
#[derive(Debug)]
pub struct Acked {
    /// The txns, in zxid order.
    pub txns: Vec<Txn>,
    /// The bytes the log made durable (what a follower would receive).
    pub log: LogBatch,
    /// Replies to release, in order.
    pub replies: Vec<(Origin, ReplyMsg)>,
    /// The committed state after the batch (adopted from the sequencer's head).
    pub state: Arc<DataState>,
    /// The batch's watch changes.
    pub changes: Arc<[Change]>,
    /// The zxid a snapshot was written at during this flush, if one was.
    pub snapshot: Option<i64>,
    /// The server stopped right after acknowledging (a failed purge): restart it.
    pub then_stopped: Option<String>,
}

/// What a restart recovered.
#[derive(Debug)]
pub struct Recovery {
    /// The recovered committed state.
    pub state: Arc<DataState>,
    /// zxid of the snapshot it started from (0: none).
    pub snapshot_zxid: i64,
    /// Log records replayed onto it.
    pub replayed: u64,
    /// Snapshots rejected on the way.
    pub rejected: usize,
}

/// Counters for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    /// Snapshots written.
    pub snapshots: u64,
    /// Snapshots that failed to write (the server carries on).
    pub snapshot_failures: u64,
    /// Rebases of the head onto a snapshot.
    pub rebases: u64,
    /// Fail-stops (failed log IO or a dead process).
    pub fail_stops: u64,
    /// Recoveries that failed under an injected fault (and were retried).
    pub failed_recoveries: u64,
    /// Snapshot files damaged by a flipped bit before a recovery.
    pub flipped_snapshots: u64,
}

/// What can go wrong around one restart (see [`SimServer::restart`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Trouble {
    /// Flip a bit of the newest snapshot, chosen by this value.
    pub flip: Option<u64>,
    /// Faults for the first recovery attempt: (log disk, snapshot disk).
    pub faults: Option<(SimFaults, SimFaults)>,
}

/// A simulated server. See the module documentation.
pub struct SimServer {
    cfg: ServerConfig,
    log_disk: SimStorage,
    snap_disk: SimStorage,
    live: Option<Live>,
    now_ms: i64,
    /// Seeds the sequencer's entropy and the snapshot thresholds, anew on each start.
    rng: ferrokeeper_storage::backend::sim::Prng,
    seq_no: u64,
    /// Snapshot files this simulator damaged that may still be on disk.
    damaged: std::collections::BTreeSet<String>,
    /// Counters.
    pub stats: ServerStats,
}

impl SimServer {
    /// A server on fresh disks, started at `now_ms`.
    ///
    /// # Errors
    /// If recovery from the (empty) disks fails, which is a bug.
    pub fn new(cfg: ServerConfig, seed: u64, now_ms: i64) -> Result<(SimServer, Recovery), String> {
        let mut server = SimServer {
            cfg,
            log_disk: SimStorage::new(seed ^ 0x1111),
            snap_disk: SimStorage::new(seed ^ 0x2222),
            live: None,
            now_ms,
            rng: ferrokeeper_storage::backend::sim::Prng::new(seed ^ 0x3333),
            seq_no: 0,
            damaged: Default::default(),
            stats: ServerStats::default(),
        };
        let rec = server.recover()?;
        Ok((server, rec))
    }

    /// Whether the server is running (not fail-stopped).
    pub fn is_up(&self) -> bool {
        self.live.is_some()
    }

    /// The clock as the server last saw it.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The committed state (what reads are served from), if running.
    pub fn committed(&self) -> Option<&Arc<DataState>> {
        self.live.as_ref().map(|l| l.machine.state())
    }

    /// Replaces the fault plans of the log's and the snapshots' disks.
    pub fn set_faults(&self, log: SimFaults, snap: SimFaults) {
        self.log_disk.set_faults(log);
        self.snap_disk.set_faults(snap);
    }

    /// Takes one request, as the stage's receivers do. Dropped while stopped.
    pub fn handle(&mut self, msg: CommitRequest) {
        if let Some(live) = self.live.as_mut() {
            live.seq.handle(msg, self.now_ms);
        }
    }

    /// Moves the clock to `now_ms` (never backwards) without running timers: requests
    /// handled next see this time.
    pub fn advance_clock(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Moves the clock to `now_ms` (never backwards) and runs the sequencer's timers.
    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
        if let Some(live) = self.live.as_mut() {
            live.seq.tick(self.now_ms);
        }
    }

    /// Stops the server without a disk failure (the simulator pulls the plug).
    pub fn kill(&mut self) {
        self.live = None;
    }

    /// Number of batches sealed and waiting for [`SimServer::sync`].
    pub fn queued(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.queue.len())
    }

    /// Takes the batch built so far and queues it for the log, as the stage's flusher
    /// does: a written snapshot first becomes the head's base, the snapshot decision is
    /// made (and the head frozen) where the head is exactly the state after the batch,
    /// and the head is cloned as the state to publish once the batch is durable.
    /// Returns whether a batch was queued.
    ///
    /// # Panics
    /// If the queue is full: the caller syncs first, as the stage waits on the channel.
    pub fn seal(&mut self) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        assert!(
            live.queue.len() < LOG_QUEUE_DEPTH,
            "sync before sealing more"
        );
        if let Some((base, left)) = live.written.take() {
            if left == 0 {
                live.seq.rebase(base);
                self.stats.rebases += 1;
            } else {
                live.written = Some((base, left - 1));
            }
        }
        let batch = live.seq.take_batch();
        if batch.is_empty() {
            return false;
        }
        self.seq_no += 1;
        let log = LogBatch::encode(self.seq_no, &batch.txns);
        live.since_snapshot += batch.txns.len() as u64;
        let snapshot = live.since_snapshot >= live.threshold && live.written.is_none();
        if snapshot {
            live.seq.freeze();
            live.since_snapshot = 0;
            live.threshold = threshold(&mut self.rng, self.cfg.snap_count);
        }
        let state = Arc::new(live.seq.head().clone());
        live.queue.push_back(Sealed {
            txns: batch.txns,
            log,
            replies: batch.replies,
            changes: batch.changes,
            state,
            snapshot,
        });
        true
    }

    /// What the stage's flusher does for the queued batches: one
    /// group append (in parts no larger than `batch_bytes_max`), then, per batch in
    /// order, adopt its state as committed; then purge what retained snapshots cover,
    /// and take the snapshots due.
    pub fn sync(&mut self) -> Flush {
        let Some(live) = self.live.as_mut() else {
            return Flush::Down;
        };
        if live.queue.is_empty() {
            return Flush::Idle;
        }
        let queued: Vec<Sealed> = live.queue.drain(..).collect();
        if let Err(reason) = append(&mut live.writer, &queued) {
            self.live = None;
            self.stats.fail_stops += 1;
            return Flush::Stopped {
                reason,
                batches: queued
                    .into_iter()
                    .map(|b| Unacked {
                        txns: b.txns,
                        log: b.log,
                        replies: b.replies,
                    })
                    .collect(),
            };
        }
        let mut acked = Vec::with_capacity(queued.len());
        let mut to_snapshot = Vec::new();
        for b in queued {
            let applied = live.machine.adopt(&b.txns, b.state, b.changes);
            if b.snapshot {
                to_snapshot.push(applied.state.clone());
            }
            acked.push(Acked {
                txns: b.txns,
                log: b.log,
                replies: b.replies,
                state: applied.state,
                changes: applied.changes,
                snapshot: None,
                then_stopped: None,
            });
        }
        // The flusher purges after publishing; a failed purge stops the server
        // with the batches already acknowledged.
        let mut then_stopped = None;
        if live.purge_target > live.purged_through {
            match live.writer.purge_through(live.purge_target) {
                Ok(()) => live.purged_through = live.purge_target,
                Err(e) => then_stopped = Some(format!("transaction log purge failed: {e}")),
            }
        }
        for state in to_snapshot {
            if then_stopped.is_some() {
                break;
            }
            match snapshot_of(&mut self.snap_disk, &state) {
                Ok(base) => {
                    self.stats.snapshots += 1;
                    if let Some(a) = acked
                        .iter_mut()
                        .find(|a| a.state.last_zxid == state.last_zxid)
                    {
                        a.snapshot = Some(state.last_zxid);
                    }
                    live.written = Some((base, self.cfg.rebase_delay_flushes));
                    if self.cfg.purge {
                        match snapfile::retain_with(&mut self.snap_disk, self.cfg.snap_retain) {
                            Ok(kept) if kept.len() >= self.cfg.snap_retain => {
                                if let Some(oldest) = kept.first() {
                                    live.purge_target = live.purge_target.max(oldest.zxid);
                                }
                            }
                            Ok(_) => {}
                            Err(e) => tracing::debug!(error = %e, "snapshot retention failed"),
                        }
                    }
                }
                Err(e) => {
                    self.stats.snapshot_failures += 1;
                    tracing::debug!(error = %e, "snapshot failed");
                }
            }
            // A failed snapshot loses nothing and the server carries on, unless the
            // process itself died during it.
            if self.snap_disk.is_dead() {
                then_stopped = Some("the process died while writing a snapshot".into());
            }
        }
        if let Some(reason) = then_stopped {
            self.live = None;
            self.stats.fail_stops += 1;
            if let Some(last) = acked.last_mut() {
                last.then_stopped = Some(reason);
            }
        }
        Flush::Acked(acked)
    }

    /// Cuts the power on both disks and recovers as `server::run` does: the newest
    /// valid snapshot, then the log after it, then a new sequencer and state machine.
    ///
    /// `trouble` can make the restart harder, as real restarts are: `flip` damages one
    /// bit of the newest snapshot file (chosen by the value) after the power cut, so
    /// recovery must fall back to an older one; `faults` are injected into the first
    /// recovery attempt (the process dies while recovering, or an fsync fails), after
    /// which the power is cut again and recovery retried without faults. A recovery that
    /// fails with no fault injected is a bug.
    ///
    /// # Errors
    /// If recovery refuses without an injected fault (a gap, a record that does not
    /// decode): with crash-consistent storage that is a bug.
    pub fn restart(&mut self, now_ms: i64, trouble: Trouble) -> Result<Recovery, String> {
        self.live = None;
        // A new process reads the clock afresh, which may have been stepped back.
        self.now_ms = now_ms;
        self.log_disk.crash();
        self.snap_disk.crash();
        if let Some(r) = trouble.flip {
            self.flip_newest_snapshot(r);
        }
        if let Some((log, snap)) = trouble.faults {
            self.set_faults(log, snap);
            let attempt = self.recover();
            let dead = self.log_disk.is_dead() || self.snap_disk.is_dead();
            match attempt {
                Ok(rec) if !dead => return Ok(rec),
                Ok(_) | Err(_) => {
                    self.stats.failed_recoveries += 1;
                    self.live = None;
                    self.log_disk.crash();
                    self.snap_disk.crash();
                }
            }
        }
        self.recover()
    }

    /// Flips one bit of the newest snapshot file, settled on disk.
    fn flip_newest_snapshot(&mut self, r: u64) {
        let newest = self
            .snap_disk
            .names()
            .into_iter()
            .filter(|n| snapfile::parse_snapshot_name(n).is_some())
            .max_by_key(|n| snapfile::parse_snapshot_name(n));
        let Some(name) = newest else {
            return;
        };
        // One damaged snapshot at a time: with every retained snapshot damaged and the
        // log purged behind them, refusing to start is the right answer, not a bug.
        let names = self.snap_disk.names();
        self.damaged.retain(|d| names.contains(d));
        if !self.damaged.is_empty() {
            return;
        }
        self.damaged.insert(name.clone());
        let Some(len) = self.snap_disk.file_bytes(&name).map(|b| b.len()) else {
            return;
        };
        if len == 0 {
            return;
        }
        self.snap_disk
            .flip_bit(&name, (r >> 3) as usize % len, (r & 7) as u8);
        self.stats.flipped_snapshots += 1;
    }

    fn recover(&mut self) -> Result<Recovery, String> {
        let ext = self.cfg.core.extended_types;
        let loaded = crate::snapshot::load_newest_with(&mut self.snap_disk.clone(), ext)
            .map_err(|e| format!("loading snapshots: {e}"))?;
        let snapshot_zxid = loaded.state.as_ref().map_or(0, |s| s.last_zxid);
        let mut state = loaded
            .state
            .unwrap_or_else(|| DataState::new(open_acl_unsafe(), ext));
        let gap_context: String = loaded
            .rejected
            .iter()
            .map(|r| format!("; snapshot rejected: {}", r.reason))
            .collect();
        let (writer, replayed) = crate::commit::log::open_and_replay_with(
            self.log_disk.clone(),
            self.cfg.log,
            &mut state,
            &gap_context,
        )
        .map_err(|e| format!("replaying the log: {e}"))?;
        // Retention as of now (`SnapshotPolicy::retain_and_mark` at startup).
        let mut purge_target = -1;
        if self.cfg.purge {
            if let Ok(kept) = snapfile::retain_with(&mut self.snap_disk, self.cfg.snap_retain) {
                if kept.len() >= self.cfg.snap_retain {
                    purge_target = kept.first().map_or(-1, |f| f.zxid);
                }
            }
        }
        let entropy = SeededEntropy(self.rng.next_u64());
        let seq = Sequencer::with_state(
            self.cfg.core.clone(),
            state.clone(),
            self.now_ms,
            Box::new(entropy),
        );
        let machine = StateMachine::new(state);
        let committed = machine.state().clone();
        self.live = Some(Live {
            writer,
            seq,
            machine,
            since_snapshot: 0,
            threshold: threshold(&mut self.rng, self.cfg.snap_count),
            written: None,
            purge_target,
            purged_through: -1,
            queue: std::collections::VecDeque::new(),
        });
        Ok(Recovery {
            state: committed,
            snapshot_zxid,
            replayed,
            rejected: loaded.rejected.len(),
        })
    }
}

/// `[n/2 + 1, n]`, as `SnapshotPolicy::next_threshold`, from the seed.
fn threshold(rng: &mut ferrokeeper_storage::backend::sim::Prng, n: u64) -> u64 {
    let low = n / 2 + 1;
    rng.range(low, n.max(low))
}

/// Appends the queued batches as `commit::append::Appender::append` does: their records
/// in one group, in parts of at most `batch_bytes_max` framed bytes, each staged, written
/// and finished as the commit executor does it (here through the simulated storage);
/// acknowledged only if every part is.
fn append(writer: &mut LogWriter<SimStorage>, queued: &[Sealed]) -> Result<(), String> {
    let mut records = Vec::new();
    for b in queued {
        let mut start = 0;
        for &(zxid, end) in &b.log.records {
            records.push(Record {
                zxid,
                bytes: &b.log.bytes[start..end],
            });
            start = end;
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let limit = writer.options().batch_bytes_max;
    let mut part_start = 0;
    let mut part_bytes = 0;
    for i in 0..records.len() {
        let framed = records[i].bytes.len() + ferrokeeper_storage::log::format::FRAME_HEADER_BYTES;
        if part_bytes + framed > limit && i > part_start {
            append_part(writer, &records[part_start..i])?;
            part_start = i;
            part_bytes = 0;
        }
        part_bytes += framed;
    }
    append_part(writer, &records[part_start..])
}

/// One part, in the halves the commit executor uses: stage, write, finish.
fn append_part(writer: &mut LogWriter<SimStorage>, records: &[Record<'_>]) -> Result<(), String> {
    let failed = |e| format!("transaction log write failed: {e}");
    let Some(staged) = writer.stage(records).map_err(failed)? else {
        return Ok(());
    };
    let written = writer.write_staged(&staged);
    writer
        .finish_staged(staged, written)
        .map(|_| ())
        .map_err(failed)
}

/// Writes `state` as a snapshot and reads it back as a base, as the snapshot thread of
/// `SnapshotPolicy::start` does.
fn snapshot_of(disk: &mut SimStorage, state: &DataState) -> Result<Arc<Base>, String> {
    let (file, _) = crate::snapshot::write_state_with(disk, state).map_err(|e| e.to_string())?;
    let snap = snapfile::read_with(disk, &file).map_err(|e| e.to_string())?;
    Base::open(snap).map(Arc::new)
}
