//! Work the log keeps off the commit path: preparing the next segment ahead of need (the
//! *spare*), renaming it to the segment a roll made of it, sealing a finished segment
//! (with `force_sync` off) and removing purged segments.
//!
//! Why: creating a segment (create, `fallocate`, fsync, directory fsync) took up to ~16 ms
//! and a purge's unlink plus directory fsync a few more, and both ran on the commit
//! executor, stalling every write behind them. Here they run on a helper thread that owns a
//! second handle on the directory ([`Storage::helper`]); a roll then only writes the header
//! into the ready spare and renames it (`storage/FORMAT.md`, "Roll").
//!
//! A storage without a helper handle (the simulator) gets the same work run inline, one
//! storage operation per step, as many steps as [`Storage::background_steps`] says after
//! each append, so that a seed replays exactly and crashes land between any two steps.
//!
//! Compressing a segment a snapshot covers (`super::super::compress`) is work of another
//! kind: long (a 64 MiB segment is ~100 ms of CPU at zstd level 1) and needed by nobody
//! soon. It runs on the same thread, which already owns a handle on the directory and
//! orders every directory change the log makes after its own, but only when no task is
//! waiting, one chunk of input (`COMPRESS_CHUNK_BYTES`) per step, so that a seal, a rename
//! or a spare that a roll will wait for is delayed by at most one chunk, never by a whole
//! segment. (On the snapshot thread it would need its own view of which segments are
//! sealed and race the helper's removals; on a thread of its own, the same, plus a third
//! handle on the directory.) A removal of a segment being compressed first gives the
//! compression up, and removes the segment in whichever forms exist.
//!
//! Order matters for crashes: the tasks run one at a time in the order they were handed
//! over, and the directory changes they make (a spare's creation, a removal) follow the
//! writer's own (a roll's rename) in the order the writer made them, which is the order a
//! crash keeps a prefix of (the [`Storage`] contract).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::backend::{FileId, Overwrite, Storage};
use crate::log::compress::{CompressJob, Compressed, Compression};
use crate::log::format::SegmentForm;
use crate::log::LogStats;

/// A piece of background work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Task {
    /// Create the spare, `fallocate` it to `segment_bytes` (zero-filling it with
    /// `segment_zero_fill`), fsync it and the directory.
    Spare,
    /// Remove a purged segment (or a stale spare recovery found) and fsync the directory.
    /// A segment is removed in whichever forms exist: plain, compressed, or both (a
    /// compression given up for this removal after its rename).
    Remove(String),
    /// Rename the spare, which a roll made the current segment by writing its header, to
    /// that segment's name (`RENAME_NOREPLACE`, no directory fsync: the next spare's
    /// creation makes it durable, and recovery renames a spare holding a header itself).
    /// On the commit path a rename waited for the filesystem's journal whenever a commit
    /// of it was running: 8.6 ms in one `multi` run, the roll's only wait left.
    Rename(String),
    /// Seal a finished segment (`force_sync` off): fdatasync `sealed`, then fdatasync `next`,
    /// the segment after it, whose first `through` bytes were written before this task was
    /// handed over. The second sync is what lets frames written after it carry a
    /// `synced_through` past the header: the witness that `sealed` is whole
    /// (`storage/FORMAT.md`, "Roll").
    Seal {
        sealed: String,
        next: String,
        through: u64,
    },
}

/// A background operation that failed; the writer stops on it (fail-stop).
#[derive(Debug)]
pub(super) struct Failure {
    pub op: &'static str,
    pub name: String,
    pub source: io::Error,
}

/// What a task needs to know about the log.
#[derive(Clone, Debug)]
struct Plan {
    spare: String,
    segment_bytes: u64,
    zero_fill: bool,
}

/// A task in progress on the inline runner: the next step, and the spare's handle once
/// created.
#[derive(Debug)]
struct Running {
    task: Task,
    step: u32,
    file: Option<FileId>,
    /// A removal found the segment's plain file.
    found: bool,
}

impl Running {
    fn new(task: Task) -> Running {
        Running {
            task,
            step: 0,
            file: None,
            found: false,
        }
    }
}

/// What the writer hands the helper thread.
enum ToHelper {
    /// A task, run before any compression step.
    Task(Task),
    /// A compression, queued behind earlier ones and run when no task waits.
    Compress(CompressJob),
}

/// What the helper thread hands back: each task's outcome in order, and each
/// compression's (the segment's plain name and how it ended) in its own order.
enum Outcome {
    Task(Result<Task, Failure>),
    Compressed(String, Result<Compressed, Failure>),
}

/// The compressions handed over and not yet ended: the one in progress and those queued.
#[derive(Default)]
struct Compressor {
    /// Boxed: the encoder's state is large, and the inline runner holds this in place.
    active: Option<Box<Compression>>,
    queued: VecDeque<CompressJob>,
    /// Set once a segment was left uncompressed: the later ones are then left too, so
    /// that the compressed segments stay an oldest-first run (`storage/FORMAT.md`).
    stopped: bool,
}

impl Compressor {
    fn idle(&self) -> bool {
        self.active.is_none() && self.queued.is_empty()
    }

    /// Runs one step of the oldest compression; the segment's name and how it ended when
    /// it did.
    fn step<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
    ) -> Result<Option<(String, Compressed)>, Failure> {
        if self.active.is_none() {
            let Some(job) = self.queued.pop_front() else {
                return Ok(None);
            };
            if self.stopped {
                let why = "an older segment was left uncompressed".to_string();
                return Ok(Some((job.name, Compressed::Skipped(why))));
            }
            self.active = Some(Box::new(Compression::new(job)));
        }
        let active = self.active.as_mut().expect("active");
        match active.step(storage) {
            Ok(None) => Ok(None),
            Ok(Some(done)) => {
                let name = self.active.take().expect("active").name().to_string();
                self.stopped |= matches!(done, Compressed::Skipped(_));
                Ok(Some((name, done)))
            }
            Err((op, name, source)) => {
                if let Some(c) = self.active.take() {
                    c.close(storage);
                }
                Err(Failure { op, name, source })
            }
        }
    }

    /// Gives up every compression of segment `name` (a removal of it is next).
    fn abandon<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
        name: &str,
    ) -> Vec<(String, Compressed)> {
        let mut given_up = Vec::new();
        if self.active.as_ref().is_some_and(|c| c.name() == name) {
            let c = self.active.take().expect("active");
            given_up.push((name.to_string(), c.abandon(storage)));
        }
        self.queued.retain(|job| {
            let keep = job.name != name;
            if !keep {
                given_up.push((job.name.clone(), Compressed::Abandoned));
            }
            keep
        });
        given_up
    }

    fn close<S: Storage + ?Sized>(&mut self, storage: &mut S) {
        if let Some(c) = self.active.take() {
            c.close(storage);
        }
        self.queued.clear();
    }
}

enum Runner {
    /// A helper thread with its own storage handle: tasks in, outcomes out, in order.
    Thread {
        tasks: Option<mpsc::Sender<ToHelper>>,
        outcomes: mpsc::Receiver<Outcome>,
        /// Asks the thread to stop between two steps (the writer is being dropped).
        quit: Arc<AtomicBool>,
        handle: Option<JoinHandle<()>>,
    },
    /// Steps run on the writer's own storage, when it asks.
    Inline {
        running: Option<Running>,
        scratch: Vec<u8>,
        compressor: Compressor,
    },
}

/// The writer's background work: what is queued, and whether a spare is ready.
pub(super) struct Background {
    plan: Plan,
    runner: Runner,
    /// Tasks handed over and not yet done, oldest first (the one running is the first).
    pending: VecDeque<Task>,
    /// Invariant: a ready spare is never also pending.
    spare_ready: bool,
    /// The last seal finished and not yet taken: the next segment and how far it is synced.
    sealed: Option<(String, u64)>,
    /// Segments whose compression was handed over and has not ended, by plain name.
    compressing: Vec<String>,
    /// Compressions ended and not yet taken by the writer.
    compressed: Vec<(String, Compressed)>,
}

/// Bytes of zeros written per step when zero-filling a spare, and written back to the
/// disk before the next step: the most of them an append's fdatasync can find queued
/// ahead of its own write (~1 ms at the development disk's ~270 MB/s).
const ZERO_CHUNK_BYTES: usize = 256 << 10;

impl Background {
    /// A runner for `storage`'s directory: a helper thread if the storage hands out a
    /// second handle, inline steps otherwise (or when no thread can be started).
    pub(super) fn new<S: Storage>(
        storage: &S,
        spare: String,
        segment_bytes: u64,
        zero_fill: bool,
    ) -> Background {
        let plan = Plan {
            spare,
            segment_bytes,
            zero_fill,
        };
        let runner = match storage.helper() {
            Ok(Some(helper)) => spawn(helper, plan.clone()).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no log helper thread; segment preparation and purges run inline");
                inline()
            }),
            Ok(None) => inline(),
            Err(e) => {
                tracing::warn!(error = %e, "no second handle on the log directory; segment preparation and purges run inline");
                inline()
            }
        };
        Background {
            plan,
            runner,
            pending: VecDeque::new(),
            spare_ready: false,
            sealed: None,
            compressing: Vec::new(),
            compressed: Vec::new(),
        }
    }

    /// Hands `task` over. A spare is asked for only when none is ready or pending.
    pub(super) fn submit(&mut self, task: Task) {
        if task == Task::Spare && (self.spare_ready || self.pending.contains(&Task::Spare)) {
            return;
        }
        self.pending.push_back(task.clone());
        match &mut self.runner {
            Runner::Thread { tasks, .. } => {
                if let Some(tx) = tasks {
                    // The thread only ends after the sender is dropped (or on a panic, which
                    // then shows up as a missing outcome in `wait_for`).
                    let _ = tx.send(ToHelper::Task(task));
                }
            }
            Runner::Inline { .. } => {}
        }
    }

    /// Hands over the compression of a segment (after every compression handed over
    /// before it).
    pub(super) fn compress(&mut self, job: CompressJob) {
        self.compressing.push(job.name.clone());
        match &mut self.runner {
            Runner::Thread { tasks, .. } => {
                if let Some(tx) = tasks {
                    let _ = tx.send(ToHelper::Compress(job));
                }
            }
            Runner::Inline { compressor, .. } => compressor.queued.push_back(job),
        }
    }

    /// Whether the compression of `name` was handed over and has not ended.
    pub(super) fn compressing(&self, name: &str) -> bool {
        self.compressing.iter().any(|n| n == name)
    }

    /// Whether a seal of `name` is pending.
    pub(super) fn seal_pending(&self, name: &str) -> bool {
        self.pending
            .iter()
            .any(|t| matches!(t, Task::Seal { sealed, .. } if sealed == name))
    }

    /// The compressions that ended since the last call.
    pub(super) fn take_compressed(&mut self) -> Vec<(String, Compressed)> {
        std::mem::take(&mut self.compressed)
    }

    /// Collects finished work without blocking (the thread), or runs as many steps as the
    /// storage asks for now (inline). Counts what finished in `stats`.
    pub(super) fn poll<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
    ) -> Result<(), Failure> {
        match &self.runner {
            Runner::Thread { .. } => {
                while let Some(outcome) = self.outcome(false) {
                    self.take_outcome(outcome, stats)?;
                }
                Ok(())
            }
            Runner::Inline { .. } => {
                for _ in 0..storage.background_steps() {
                    if self.idle() {
                        break;
                    }
                    self.step_inline(storage, stats)?;
                }
                Ok(())
            }
        }
    }

    /// Blocks until no pending task removes `name` (a roll about to create that name).
    pub(super) fn wait_for_removal<S: Storage>(
        &mut self,
        storage: &mut S,
        name: &str,
        stats: &mut LogStats,
    ) -> Result<(), Failure> {
        self.wait_while(
            storage,
            stats,
            "remove (helper thread gone)",
            name,
            |t| matches!(t, Task::Remove(n) if n == name),
            false,
        )
    }

    /// Blocks until no rename is pending (a roll about to create a segment under its name:
    /// every earlier segment must have its own first, or a crash could keep the new name
    /// and not an earlier one's, and a read-only reader would find a gap).
    pub(super) fn wait_for_renames<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
    ) -> Result<(), Failure> {
        self.wait_while(
            storage,
            stats,
            "rename (helper thread gone)",
            "",
            |t| matches!(t, Task::Rename(_)),
            false,
        )
    }

    /// Blocks until no seal is pending (a roll about to start a segment after the one
    /// being sealed: only the newest segment's predecessor may be unsealed).
    pub(super) fn wait_for_seal<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
    ) -> Result<(), Failure> {
        self.wait_while(
            storage,
            stats,
            "fdatasync (helper thread gone)",
            "",
            |t| matches!(t, Task::Seal { .. }),
            false,
        )
    }

    /// The last seal that finished since the last call: the segment after the sealed one,
    /// and the offset through which it is now durable.
    pub(super) fn take_sealed(&mut self) -> Option<(String, u64)> {
        self.sealed.take()
    }

    /// Blocks until no pending task matches `waits_for`; `op` and `name` are the failure's
    /// if the helper thread is gone.
    fn wait_while<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
        op: &'static str,
        name: &str,
        waits_for: impl Fn(&Task) -> bool,
        waits_for_compressions: bool,
    ) -> Result<(), Failure> {
        while self.pending.iter().any(&waits_for)
            || (waits_for_compressions && !self.compressing.is_empty())
        {
            match &self.runner {
                Runner::Thread { .. } => match self.outcome(true) {
                    Some(outcome) => self.take_outcome(outcome, stats)?,
                    None => {
                        return Err(Failure {
                            op,
                            name: name.to_string(),
                            source: io::Error::other("the log helper thread ended"),
                        })
                    }
                },
                Runner::Inline { .. } => self.step_inline(storage, stats)?,
            }
        }
        Ok(())
    }

    /// Blocks until every task and compression handed over is done (`removals_only`: every
    /// removal).
    pub(super) fn wait_all<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
        removals_only: bool,
    ) -> Result<(), Failure> {
        self.wait_while(
            storage,
            stats,
            "background work (helper thread gone)",
            "",
            |t| !removals_only || matches!(t, Task::Remove(_)),
            !removals_only,
        )
    }

    /// Takes the ready spare, if there is one (the caller then renames it into place).
    pub(super) fn take_spare(&mut self) -> bool {
        std::mem::take(&mut self.spare_ready)
    }

    /// Whether nothing handed over is left to do.
    fn idle(&self) -> bool {
        self.pending.is_empty() && self.compressing.is_empty()
    }

    /// Takes one outcome of the helper thread in.
    fn take_outcome(&mut self, outcome: Outcome, stats: &mut LogStats) -> Result<(), Failure> {
        match outcome {
            Outcome::Task(done) => self.finish(done?, stats),
            Outcome::Compressed(name, done) => self.finish_compression(name, done?, stats),
        }
        Ok(())
    }

    fn finish_compression(&mut self, name: String, done: Compressed, stats: &mut LogStats) {
        let at = self.compressing.iter().position(|n| *n == name);
        let at = at.expect("a compression ends once, after it was handed over");
        self.compressing.remove(at);
        if let Compressed::Done { .. } = done {
            stats.segments_compressed += 1;
            stats.fsyncs += 3;
        }
        self.compressed.push((name, done));
    }

    /// The helper thread's next outcome: waiting for it with `block`, else only if there.
    fn outcome(&self, block: bool) -> Option<Outcome> {
        let Runner::Thread { outcomes, .. } = &self.runner else {
            return None;
        };
        if block {
            outcomes.recv().ok()
        } else {
            outcomes.try_recv().ok()
        }
    }

    fn finish(&mut self, done: Task, stats: &mut LogStats) {
        let first = self.pending.pop_front();
        assert_eq!(
            first.as_ref(),
            Some(&done),
            "background tasks finish in order"
        );
        match done {
            Task::Spare => {
                self.spare_ready = true;
                stats.fsyncs += 2;
                stats.spares_prepared += 1;
            }
            Task::Seal { next, through, .. } => {
                stats.fdatasyncs += 2;
                stats.seals_deferred += 1;
                self.sealed = Some((next, through));
            }
            Task::Rename(_) => {}
            Task::Remove(name) => {
                stats.fsyncs += 1;
                // A stale spare left by recovery is no segment.
                if name != self.plan.spare {
                    stats.segments_removed += 1;
                }
            }
        }
    }

    fn step_inline<S: Storage>(
        &mut self,
        storage: &mut S,
        stats: &mut LogStats,
    ) -> Result<(), Failure> {
        let Runner::Inline {
            running,
            scratch,
            compressor,
        } = &mut self.runner
        else {
            unreachable!("inline steps only on the inline runner");
        };
        if self.pending.is_empty() {
            // Compression runs only when no task waits, as on the helper thread.
            if let Some((name, done)) = compressor.step(storage)? {
                self.finish_compression(name, done, stats);
            }
            return Ok(());
        }
        if running.is_none() {
            let task = self.pending.front().cloned().expect("a pending task");
            if let Task::Remove(name) = &task {
                for (name, done) in compressor.abandon(storage, name) {
                    self.compressed.push((name.clone(), done.clone()));
                    self.compressing.retain(|n| *n != name);
                }
            }
            *running = Some(Running::new(task));
        }
        let run = running.as_mut().expect("running");
        match step(storage, &self.plan, run, scratch) {
            Ok(false) => Ok(()),
            Ok(true) => {
                let task = running.take().expect("running").task;
                self.finish(task, stats);
                Ok(())
            }
            Err(failure) => {
                if let Some(file) = running.take().and_then(|r| r.file) {
                    storage.close(file);
                }
                Err(failure)
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Runner::Thread {
            tasks,
            quit,
            handle,
            ..
        } = &mut self.runner
        {
            // Stop between two steps and wait: a writer opened next on this directory must
            // not find a helper still creating a spare its recovery just removed.
            quit.store(true, Ordering::Release);
            tasks.take();
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn inline() -> Runner {
    Runner::Inline {
        running: None,
        scratch: Vec::new(),
        compressor: Compressor::default(),
    }
}

fn spawn(mut storage: Box<dyn Storage + Send>, plan: Plan) -> io::Result<Runner> {
    let (task_tx, task_rx) = mpsc::channel::<ToHelper>();
    let (out_tx, out_rx) = mpsc::channel();
    let quit = Arc::new(AtomicBool::new(false));
    let quit_thread = quit.clone();
    let handle = std::thread::Builder::new()
        .name("log-helper".into())
        .spawn(move || {
            let mut scratch = Vec::new();
            let mut compressor = Compressor::default();
            loop {
                // A task first; a compression step only when none is waiting.
                let message = if compressor.idle() {
                    task_rx.recv().ok()
                } else {
                    match task_rx.try_recv() {
                        Ok(m) => Some(m),
                        Err(mpsc::TryRecvError::Disconnected) => None,
                        Err(mpsc::TryRecvError::Empty) => {
                            if quit_thread.load(Ordering::Acquire) {
                                break;
                            }
                            let outcome = match compressor.step(storage.as_mut()) {
                                Ok(None) => continue,
                                Ok(Some((name, done))) => Outcome::Compressed(name, Ok(done)),
                                Err(failure) => {
                                    let name = failure.name.clone();
                                    let _ = out_tx.send(Outcome::Compressed(name, Err(failure)));
                                    break; // The writer stops on it.
                                }
                            };
                            if out_tx.send(outcome).is_err() {
                                break;
                            }
                            continue;
                        }
                    }
                };
                let task = match message {
                    None => break,
                    Some(ToHelper::Compress(job)) => {
                        compressor.queued.push_back(job);
                        continue;
                    }
                    Some(ToHelper::Task(task)) => task,
                };
                if let Task::Remove(name) = &task {
                    for (name, done) in compressor.abandon(storage.as_mut(), name) {
                        let _ = out_tx.send(Outcome::Compressed(name, Ok(done)));
                    }
                }
                let mut run = Running::new(task);
                let outcome = loop {
                    if quit_thread.load(Ordering::Acquire) && !matches!(run.task, Task::Rename(_)) {
                        // An unfinished spare is removed by the next open's recovery, an
                        // unsealed segment is checked by it, a purge is redone later, a
                        // compression's leftovers are cleaned up by it. Only the renames
                        // still queued are done (one call each), so that a clean stop
                        // leaves every segment under its name.
                        if let Some(f) = run.file.take() {
                            storage.close(f);
                        }
                        compressor.close(storage.as_mut());
                        for message in task_rx.try_iter() {
                            if let ToHelper::Task(task @ Task::Rename(_)) = message {
                                let mut rename = Running::new(task);
                                let renamed =
                                    step(storage.as_mut(), &plan, &mut rename, &mut scratch);
                                if renamed.is_err() {
                                    return; // Recovery renames a spare holding a header.
                                }
                            }
                        }
                        return;
                    }
                    match step(storage.as_mut(), &plan, &mut run, &mut scratch) {
                        Ok(false) => continue,
                        Ok(true) => break Ok(run.task),
                        Err(failure) => {
                            if let Some(f) = run.file.take() {
                                storage.close(f);
                            }
                            break Err(failure);
                        }
                    }
                };
                let failed = outcome.is_err();
                if out_tx.send(Outcome::Task(outcome)).is_err() || failed {
                    // After a failure the writer stops; nothing more may touch the directory.
                    break;
                }
            }
            compressor.close(storage.as_mut());
        })?;
    Ok(Runner::Thread {
        tasks: Some(task_tx),
        outcomes: out_rx,
        quit,
        handle: Some(handle),
    })
}

/// Runs the next storage operation of `run`; `Ok(true)` when the task is done.
fn step<S: Storage + ?Sized>(
    storage: &mut S,
    plan: &Plan,
    run: &mut Running,
    scratch: &mut Vec<u8>,
) -> Result<bool, Failure> {
    let fail = |op, name: &str| {
        let name = name.to_string();
        move |source| Failure { op, name, source }
    };
    match run.task.clone() {
        Task::Spare => {
            let name = plan.spare.as_str();
            match run.step {
                0 => run.file = Some(storage.create(name).map_err(fail("create", name))?),
                1 => storage
                    .allocate(run.file.expect("created"), plan.segment_bytes)
                    .map_err(fail("fallocate", name))?,
                // Zero-filled in chunks, one step each, so that inline runs stay short.
                2.. if plan.zero_fill && zero_filled_bytes(run.step) < plan.segment_bytes => {
                    let from = zero_filled_bytes(run.step);
                    let n = (plan.segment_bytes - from).min(ZERO_CHUNK_BYTES as u64) as usize;
                    scratch.clear();
                    scratch.resize(n, 0);
                    let file = run.file.expect("created");
                    storage
                        .write_at(file, from, scratch, false)
                        .map_err(fail("write", name))?;
                    // Each chunk reaches the disk before the next is written: left to the
                    // final fsync, the 64 MiB went to the device at once (16 requests of
                    // 4 MiB), and every append's fdatasync meanwhile waited behind them,
                    // 10-24 ms, for 8 of the 11 syncs over 10 ms in one run (issue #13).
                    storage
                        .write_back(file, from, n as u64)
                        .map_err(fail("sync_file_range", name))?;
                }
                _ => {
                    // fsync, not fdatasync: the size and extents must be durable too; then
                    // the directory, so that the spare's name is.
                    let file = run.file.take().expect("created");
                    let synced = storage.sync_all(file).map_err(fail("fsync", name));
                    storage.close(file);
                    synced?;
                    storage.sync_dir().map_err(fail("fsync directory", name))?;
                    return Ok(true);
                }
            }
        }
        Task::Seal { sealed, next, .. } => {
            // One file per step: open, fdatasync, close (a crash lands between the two).
            let name = if run.step == 0 { sealed } else { next };
            let file = storage.open(&name).map_err(fail("open", &name))?;
            let synced = storage.sync_data(file).map_err(fail("fdatasync", &name));
            storage.close(file);
            synced?;
            if run.step == 1 {
                return Ok(true);
            }
        }
        Task::Rename(name) => {
            storage
                .rename(&plan.spare, &name, Overwrite::Never)
                .map_err(fail("rename", &plan.spare))?;
            return Ok(true);
        }
        Task::Remove(name) => match run.step {
            0 => match storage.remove(&name) {
                Ok(()) => run.found = true,
                // A segment kept compressed: removed in the next step.
                Err(e) if e.kind() == io::ErrorKind::NotFound && name != plan.spare => {}
                Err(e) => return Err(fail("remove", &name)(e)),
            },
            1 if name != plan.spare => {
                let zst = SegmentForm::Compressed.file_name(&name);
                match storage.remove(&zst) {
                    Ok(()) => {}
                    // Plain only; or neither, which is a failure as it always was.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && run.found => {}
                    Err(e) => return Err(fail("remove", &zst)(e)),
                }
            }
            _ => {
                // One directory fsync per removal: a crash leaves an oldest-first prefix
                // removed, never a gap that recovery would report as a missing segment.
                storage.sync_dir().map_err(fail("fsync directory", &name))?;
                return Ok(true);
            }
        },
    }
    run.step = run.step.saturating_add(1);
    Ok(false)
}

/// Bytes of a spare already zero-filled when its task is at `step` (steps 2.. write).
fn zero_filled_bytes(step: u32) -> u64 {
    u64::from(step.saturating_sub(2)) * ZERO_CHUNK_BYTES as u64
}
