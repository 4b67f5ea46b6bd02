//! The commit stage's executor: one glommio executor (its own thread) that receives
//! requests from every shard, runs them through the [`Sequencer`] in arrival order, makes
//! each batch durable itself (`commit::append`, on the executor's own io_uring), and then
//! publishes the new state and sends each shard its completion. No reply leaves before
//! its txn is on disk (unless `forceSync=no`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};

use super::report::ReportCollector;
use super::restore::RestoreCall;
use crate::core::apply::Change;
use crate::core::machine::StateMachine;
use crate::core::sequencer::{CommitRequest, Entropy, Origin, ReplyMsg, Sequencer};
use crate::core::state::DataState;

/// A message from a shard to the commit stage.
#[derive(Debug)]
pub enum StageMsg {
    /// A request for the sequencer.
    Core(CommitRequest),
    /// An admin command wants every shard's report; it travels with the next
    /// completion, so each shard answers after everything committed before it.
    Report(Arc<ReportCollector>),
}

/// What the commit stage sends each shard after a durable batch.
#[derive(Debug)]
pub struct Completion {
    /// The batch's position in commit order.
    pub seq: u64,
    /// The state after the batch.
    pub state: Arc<DataState>,
    /// The batch's watch-relevant changes, shared by all shards.
    pub changes: Arc<[Change]>,
    /// Replies for this shard's connections (by connection id), in order.
    pub replies: Vec<(u64, ReplyMsg)>,
    /// Report rounds this shard must answer (admin commands).
    pub reports: Vec<Arc<ReportCollector>>,
    /// When the batch was taken, made durable and handed to the shards: the commit
    /// stage's part of a slow write's trail (`shard`, "slow requests answered").
    pub stamps: BatchStamps,
}

/// When a batch passed the commit stage's steps.
#[derive(Debug, Clone, Copy)]
pub struct BatchStamps {
    /// The flusher took the batch from the sequencer.
    pub taken: Instant,
    /// The log reported it durable.
    pub durable: Instant,
    /// The completion went to the shards.
    pub published: Instant,
}

impl BatchStamps {
    /// Every step now (a batch with no log write).
    pub fn now() -> BatchStamps {
        let now = Instant::now();
        BatchStamps {
            taken: now,
            durable: now,
            published: now,
        }
    }
}

/// What the commit stage (an ensemble member's driver) and the shards share about the
/// batches handed to the shards.
#[derive(Debug)]
pub struct Handoff {
    /// Sequence number of the newest batch handed to the shards. Stored before the
    /// completions are sent, so once any client has a reply from a batch, every shard can
    /// tell that it must first take that batch's completion (`Shard::catch_up`).
    pub seq: std::sync::atomic::AtomicU64,
    /// Per shard: whether its watch table holds any watch (kept by the shard,
    /// `Shard::note_watches`). See [`publish`] for what it decides.
    pub watching: Box<[std::sync::atomic::AtomicBool]>,
}

impl Handoff {
    /// Nothing handed over yet to `shards` shards, none of them watching.
    pub fn new(shards: usize) -> Handoff {
        Handoff {
            seq: std::sync::atomic::AtomicU64::new(0),
            watching: (0..shards)
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
        }
    }
}

/// Completions queued for a sleeping shard before one wakes it (see [`publish`]): each
/// holds a state, so this bounds what an idle shard keeps alive between its own wakes.
const LAZY_QUEUED_MAX: usize = 32;

/// Bits of an [`Origin`] that carry the connection id; the shard index sits above them.
const CONN_BITS: u32 = 40;
/// Bits of an [`Origin`] that carry the shard index, above the connection id. The 16
/// bits above them are the ensemble's (`replica::node::tag`): server id and incarnation.
const SHARD_BITS: u32 = 8;

/// The origin of connection `conn` on shard `shard`.
pub fn origin(shard: usize, conn: u64) -> Origin {
    debug_assert!(conn < 1 << CONN_BITS, "connection ids fit in 40 bits");
    debug_assert!(shard < 1 << SHARD_BITS, "shard indexes fit in 8 bits");
    Origin(((shard as u64) << CONN_BITS) | conn)
}

/// The shard and connection an [`Origin`] made by [`origin`] names.
pub fn route(o: Origin) -> (usize, u64) {
    (
        ((o.0 >> CONN_BITS) & ((1 << SHARD_BITS) - 1)) as usize,
        o.0 & ((1 << CONN_BITS) - 1),
    )
}

/// The operating system's randomness, for session passwords.
#[derive(Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), buf);
    }
}

/// Milliseconds since the Unix epoch (ZooKeeper's `Time.currentWallTime`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A commit cycle (batch taken, logged, published) this long is logged with its phases.
const SLOW_CYCLE: Duration = Duration::from_millis(20);

/// Quiet ticks after a rebase before the commit thread returns freed memory to the OS.
const COLLECT_AFTER_REBASE: u32 = 5;

/// A tick with at most this many transactions committed counts as quiet for the collect
/// after a rebase (10,000 a second at the default 100 ms tick).
///
/// The collect (`mi_collect(true)`) runs on the commit executor and took 7-12 ms in the
/// write benchmarks (`bench/results/deferred-seal-2026-12-06.md`): every request in
/// flight waited. Under a write load the overlay the rebase freed is built again from the
/// same pages before the next snapshot, so returning them buys nothing there; once the
/// writes slow down the collect runs and RSS settles as before.
const QUIET_TICK_TXNS: i64 = 1_000;

/// Runs the commit stage until every shard has gone.
///
/// Three kinds of task share the stage's thread: one receiver per shard runs requests
/// through the core; a ticker drives session expiry and snapshots; the flusher takes the
/// batch built so far, has `log` write and sync it on this executor's own ring, then
/// publishes it. While batch n is being written and synced the flusher waits on the
/// ring and the receivers go on: requests keep arriving and form batch n+1, which the
/// flusher takes whole as soon as n is published (group commit with pipelining).
///
/// A write thus crosses threads twice: the shard's request to this executor, and the
/// completion back to the shard. The disk's completion wakes this executor through its
/// own ring.
// Long because the tasks share the core through `Rc`s created here; each task is a
// short loop.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    core: Sequencer,
    machine: StateMachine,
    from_shards: Vec<SharedReceiver<StageMsg>>,
    to_shards: Vec<SharedSender<Completion>>,
    mut log: super::append::Appender,
    tick: Duration,
    batch_max: usize,
    handoff: Arc<Handoff>,
    snapshots: Arc<crate::snapshot::SnapshotPolicy>,
    restores: async_channel::Receiver<RestoreCall>,
) {
    let core = Rc::new(RefCell::new(core));
    let reports: Rc<RefCell<Vec<Arc<ReportCollector>>>> = Rc::default();
    let (kick, kicked) = local_channel::new_bounded::<()>(1);
    let kick = Rc::new(kick);
    // Restores wait here for the flusher (`commit::restore`).
    let pending_restores: Rc<RefCell<Vec<RestoreCall>>> = Rc::default();
    {
        let pending = pending_restores.clone();
        let kick = kick.clone();
        glommio::spawn_local(async move {
            while let Ok(call) = restores.recv().await {
                pending.borrow_mut().push(call);
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    for rx in from_shards {
        let core = core.clone();
        let kick = kick.clone();
        let reports = reports.clone();
        glommio::spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                match msg {
                    StageMsg::Core(msg) => core.borrow_mut().handle(msg, now_ms()),
                    StageMsg::Report(collector) => {
                        *collector
                            .session_expiry
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = core.borrow().session_schedule();
                        reports.borrow_mut().push(collector);
                    }
                }
                let _ = kick.try_send(());
                if core.borrow().batch_len() >= batch_max {
                    // Let the flusher take a full batch before prepping more.
                    glommio::executor().yield_task_queue_now().await;
                }
            }
        })
        .detach();
    }

    {
        let core = core.clone();
        let kick = kick.clone();
        let snapshots = snapshots.clone();
        glommio::spawn_local(async move {
            let mut collect_in: Option<u32> = None;
            // The last zxid at the previous tick: how many transactions a tick saw.
            let mut last_tick_zxid = core.borrow().last_zxid();
            // The head's base as last seen here (compared, never dereferenced): a rebase
            // in the commit loop below schedules the collect too, not only one here.
            let mut seen_base: Option<usize> = None;
            loop {
                glommio::timer::sleep(tick).await;
                if let Some(base) = snapshots.take_written() {
                    rebase(&mut core.borrow_mut(), base);
                }
                let base = core
                    .borrow()
                    .head()
                    .tree
                    .base()
                    .map(|b| Arc::as_ptr(b) as usize);
                if base != seen_base {
                    seen_base = base;
                    collect_in = Some(COLLECT_AFTER_REBASE);
                }
                // The nodes a rebase let go of are freed by whichever thread drops the
                // last state holding them, mostly this one; once the shards have moved
                // on, hand the emptied pages back to the OS (measured: without this,
                // RSS kept ~190 B per znode of freed overlay).
                let zxid = core.borrow().last_zxid();
                let quiet = zxid.wrapping_sub(last_tick_zxid) <= QUIET_TICK_TXNS;
                last_tick_zxid = zxid;
                if let Some(n) = collect_in.as_mut().filter(|_| quiet) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        collect_in = None;
                        let started = std::time::Instant::now();
                        // SAFETY: mi_collect only frees this thread's unused pages.
                        unsafe { libmimalloc_sys::mi_collect(true) };
                        if started.elapsed() >= SLOW_CYCLE / 4 {
                            tracing::info!(elapsed = ?started.elapsed(), "slow mi_collect on the commit executor");
                        }
                    }
                }
                core.borrow_mut().tick(now_ms());
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    let mut senders = Vec::with_capacity(to_shards.len());
    for s in to_shards {
        senders.push(s.connect().await);
    }
    let mut machine = machine;

    let mut seq = 0u64;
    // Txns since the last snapshot, and the count that triggers the next one (random in
    // [snapCount/2 + 1, snapCount], as ZooKeeper). Decided here, where the head is
    // exactly the state after the batch, so that the head can be frozen at it.
    let mut since_snapshot = 0u64;
    let mut threshold = snapshots.next_threshold();
    let mut fold = crate::snapshot::Fold::new(Instant::now());
    while kicked.recv().await.is_some() {
        let cycle = std::time::Instant::now();
        let (batch, state, snapshot, restored) = {
            let mut c = core.borrow_mut();
            if let Some(base) = snapshots.take_written() {
                rebase(&mut c, base);
            }
            let batch = c.take_batch();
            since_snapshot += batch.txns.len() as u64;
            // The ticker kicks this loop with empty batches too, so a quiet head is seen
            // here. With an empty batch the head is the state last published, and that
            // is durable: the fold freezes and snapshots it as a batch's state would be,
            // and publishes it (an empty batch) on the way.
            let fold_due = fold.due(cycle, c.last_zxid(), &c.head().tree);
            let folding = batch.is_empty() && fold_due && !snapshots.busy();
            // While one is being written, the count goes on and the next batch after
            // it finishes takes the next.
            let counted = !batch.is_empty() && since_snapshot >= threshold && !snapshots.busy();
            let snapshot = counted || folding;
            if folding {
                tracing::info!(
                    overlay = c.head().tree.overlay_len(),
                    zxid = format_args!("0x{:x}", c.last_zxid()),
                    "writes quiet: folding the overlay into a snapshot"
                );
                fold.started(cycle);
            }
            if snapshot {
                c.freeze();
                since_snapshot = 0;
                threshold = snapshots.next_threshold();
            }
            // No await between taking the batch and cloning the head: the state
            // published is exactly the one the batch produced.
            let state = Arc::new(c.head().clone());
            // A restore swaps the head right after the batch is taken, and never while
            // a snapshot of the old state is in flight (`commit::restore`).
            let restored = if snapshot || snapshots.busy() {
                None
            } else {
                let call = pending_restores.borrow_mut().pop();
                call.and_then(|call| super::restore::swap(&mut c, &snapshots, call, now_ms()))
            };
            (batch, state, snapshot, restored)
        };
        let reports = std::mem::take(&mut *reports.borrow_mut());
        // A rebase with no write after it would leave the shards on the state before it,
        // and with it the frozen overlay and the old base, until the next write: after a
        // load, that kept every znode of it on the heap beside the new mapped snapshot
        // (issue #13). The head equals the published state but for its layers then, so
        // it is published as an empty batch.
        let unpublished_rebase = batch.is_empty()
            && state.last_zxid == machine.state().last_zxid
            && !same_layers(&state.tree, &machine.state().tree);
        if batch.is_empty()
            && reports.is_empty()
            && restored.is_none()
            && !unpublished_rebase
            && !snapshot
        {
            if !log.idle() {
                return;
            }
            continue;
        }
        seq += 1;
        let prepared = cycle.elapsed();
        let txns = batch.txns.len();
        let log_batch = super::log::LogBatch::encode(seq, &batch.txns);
        // Durable before anything of it is released; the receivers run meanwhile.
        if !log.append(std::slice::from_ref(&log_batch)).await {
            return;
        }
        drop(log_batch);
        let durable_at = Instant::now();
        let durable = durable_at - cycle;
        // The published state is immutable and exactly the state after this batch:
        // snapshotting it (an O(1) clone) never blocks commits.
        let applied = machine.adopt(&batch.txns, state, batch.changes);
        let snapshot_of = snapshot.then(|| applied.state.clone());
        let completion = Completion {
            seq,
            state: applied.state,
            changes: applied.changes,
            replies: Vec::new(),
            reports,
            stamps: BatchStamps {
                taken: cycle,
                durable: durable_at,
                published: durable_at,
            },
        };
        if !publish(&senders, completion, batch.replies, &handoff).await {
            return;
        }
        if let Some(state) = snapshot_of {
            if !snapshots.start(state) {
                tracing::warn!("previous snapshot still being written; skipping this one");
            }
        }
        if !log.purge() {
            return;
        }
        if cycle.elapsed() >= SLOW_CYCLE {
            // Where a write stall on the commit path comes from (issue #13).
            tracing::info!(
                elapsed = ?cycle.elapsed(), prepared = ?prepared, durable = ?durable, txns,
                "slow commit cycle"
            );
        }
        if let Some(r) = restored {
            // After the old state's last batch: shards take the restored state and
            // close the connections that belonged to the old one.
            machine = StateMachine::new(r.state);
            since_snapshot = 0;
            threshold = snapshots.next_threshold();
            seq += 1;
            let completion = Completion {
                seq,
                state: machine.state().clone(),
                changes: Arc::from(Vec::new()),
                replies: Vec::new(),
                reports: Vec::new(),
                stamps: BatchStamps::now(),
            };
            let closes = r
                .owners
                .into_iter()
                .map(|o| {
                    let close = ReplyMsg::Close {
                        reason: super::restore::CLOSE_REASON,
                    };
                    (o, close)
                })
                .collect();
            if !publish(&senders, completion, closes, &handoff).await {
                return;
            }
            let _ = r.reply.try_send(Ok(r.zxid));
        }
    }
}

/// Whether two trees are layered on the same base (and have the same frozen layer or
/// none): what a rebase changes.
fn same_layers(a: &crate::core::tree::Tree, b: &crate::core::tree::Tree) -> bool {
    let same_base = match (a.base(), b.base()) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    same_base && a.is_frozen() == b.is_frozen()
}

/// Moves the sequencer's head onto a snapshot just written, and says how long it took.
fn rebase(core: &mut Sequencer, base: Arc<crate::core::tree::Base>) {
    let started = std::time::Instant::now();
    let before = core.head().tree.overlay_len();
    let at = base.zxid();
    let moved = core.rebase(base);
    tracing::info!(
        zxid = format_args!("0x{at:x}"),
        overlay_before = before,
        lists_moved = moved,
        overlay_after = core.head().tree.overlay_len(),
        elapsed = ?started.elapsed(),
        "tree rebased on the new snapshot"
    );
}

/// Hands a durable batch to every shard: `completion` (without replies) to each, with
/// the replies for that shard's connections.
///
/// A shard is woken for the batch only if it has something to do with it now: replies
/// or reports for it, or watches the changes may fire. Otherwise the completion waits in
/// its queue (at most [`LAZY_QUEUED_MAX`]) until the shard wakes for something else — a
/// request, which first catches up with `seq` (`Shard::catch_up`), or its own timer. At
/// light load this spares a sleeping shard's wake per write (an eventfd write, a context
/// switch and a few `io_uring_enter`; bench/results/light-writes-2026-12-06.md).
///
/// No watch event is delayed by it: the channel's fence after the push orders it against
/// the shard's fence before it sleeps (`glommio`'s `send_lazy`). Either this load of
/// `watching` sees a watch the shard registered before sleeping (and wakes it), or the
/// shard's last look before sleeping sees this completion (and takes it).
pub(crate) async fn publish(
    senders: &[glommio::channels::shared_channel::ConnectedSender<Completion>],
    completion: Completion,
    replies: Vec<(Origin, ReplyMsg)>,
    handoff: &Handoff,
) -> bool {
    // Published before any shard can release a reply from this batch. Every batch
    // counts, not only those with txns: a reattach closes the old connection in a
    // batch that commits nothing.
    handoff
        .seq
        .store(completion.seq, std::sync::atomic::Ordering::Release);
    let stamps = BatchStamps {
        published: Instant::now(),
        ..completion.stamps
    };
    let mut per_shard: Vec<Vec<(u64, ReplyMsg)>> = (0..senders.len()).map(|_| Vec::new()).collect();
    for (to, reply) in replies {
        let (shard, conn) = route(to);
        per_shard[shard].push((conn, reply));
    }
    for (i, replies) in per_shard.into_iter().enumerate() {
        let busy = !replies.is_empty() || !completion.reports.is_empty();
        let watching = &handoff.watching[i];
        // Relaxed: `send_lazy` calls this after its `SeqCst` fence.
        let wake = |queued: usize| {
            busy || queued >= LAZY_QUEUED_MAX || watching.load(std::sync::atomic::Ordering::Relaxed)
        };
        let c = Completion {
            seq: completion.seq,
            state: completion.state.clone(),
            changes: completion.changes.clone(),
            replies,
            reports: completion.reports.clone(),
            stamps,
        };
        if senders[i].send_lazy(c, wake).await.is_err() {
            tracing::error!(shard = i, "shard gone; stopping the commit stage");
            return false;
        }
    }
    true
}
