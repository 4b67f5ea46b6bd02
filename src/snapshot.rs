//! Snapshots of the replicated state: how a [`DataState`] is written as one and served
//! from one, and the policy that takes them (every ~`snapCount` txns, from a published
//! state, on a thread of its own), rebases the serving tree on them and trims old
//! snapshots and log segments.
//!
//! The *file* (header, checksum, crash-safe write, listing, retention, mapping) belongs
//! to `ferrokeeper_storage::snapshot`; this module owns the *payload* ([`payload`]), an
//! rkyv 0.8 archive laid out to be served in place. The byte layout is in
//! `storage/FORMAT.md`.
//!
//! ## Loading is mapping
//!
//! At startup the newest snapshot whose checksum verifies is mapped and becomes the
//! tree's base layer ([`crate::core::tree::Base`]): no node is decoded, so restart time does
//! not grow with the number of znodes. What is built is what the server keeps beside
//! the tree, each at the size of what it holds: the session table with each session's
//! ephemerals, the container and TTL indexes, the quota index (with each quota's usage
//! recomputed, as ZooKeeper does on load: a walk of each quota's subtree).
//!
//! ## Rebasing
//!
//! After a snapshot is written, the snapshot thread maps it and hands it to the commit
//! stage, which makes it the base of its head tree ([`crate::core::tree::Tree::rebase`]):
//! nodes written before the snapshot leave the heap for the mapped archive.
//!
//! ## Folding a quiet overlay
//!
//! A server that writes little may go days without reaching `snapCount`, and then serves
//! every node written since its last snapshot from the overlay, where a read costs more
//! than from the mapped base (issue #13: 3.4 µs of CPU per getData against 1.9 µs). When
//! the writes have stopped for a while and the overlay is large, a snapshot is taken
//! anyway ([`Fold`]), and the overlay empties into the fresh base.
//!
//! ## Compressing what is superseded
//!
//! After each snapshot, the older plain ones are compressed in the background
//! ([`SnapshotPolicy::compress_superseded`]). On an ensemble member, a snapshot a
//! follower is fetching is pinned and left plain, and one compressed before the
//! follower asked is restored for it ([`transfer`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokeeper_storage::backend::disk::{DiskStorage, IoMode};
use ferrokeeper_storage::backend::Storage;
use ferrokeeper_storage::snapshot as snapfile;

use crate::core::payload::{self, stream};
use crate::core::state::{owner_kind, DataState, OwnerKind, Session};
use crate::core::tree::{Base, Tree};

pub mod transfer;

/// The snapshot directory under `dataDir`.
pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ferrokeeper").join("snap")
}

/// The smallest `autopurge.snapRetainCount` honoured (as ZooKeeper's `PurgeTxnLog`).
pub const RETAIN_COUNT_MIN: usize = 3;

/// The state served from `base`: the tree is the base itself; sessions, their
/// ephemerals and the container and TTL indexes are built from the archive's lists, and
/// the tree digest is the one the snapshot stores (for a version 2 snapshot, which
/// stores none, computed over the nodes once, when [`Base::open`] converted it).
/// `extended_types` is the serving config's (it decides what a TTL owner is).
pub fn state_from_base(base: Arc<Base>, extended_types: bool) -> DataState {
    let mut state = DataState::new(crate::core::sequencer::open_acl_unsafe(), extended_types);
    let a = base.archive();
    state.last_zxid = base.zxid();
    let path_of =
        |i: &rkyv::rend::u32_le| -> Arc<str> { Arc::from(base.node(i.to_native()).path()) };
    let kind_of = |i: &rkyv::rend::u32_le| {
        owner_kind(
            base.node(i.to_native()).stat().ephemeral_owner,
            extended_types,
        )
    };
    for s in a.sessions.iter() {
        state.sessions.insert(
            s.id.to_native(),
            Session {
                timeout_ms: s.timeout_ms.to_native(),
                passwd: s.passwd,
                ephemerals: s
                    .ephemerals
                    .iter()
                    .filter(|i| kind_of(i) == OwnerKind::Normal)
                    .map(path_of)
                    .collect(),
            },
        );
    }
    state.containers = a.containers.iter().map(path_of).collect();
    for i in a.extended_owners.iter() {
        match kind_of(i) {
            OwnerKind::Ttl => {
                state.ttls.insert(path_of(i));
            }
            // Without extended types an extended owner is a session id like any other.
            OwnerKind::Normal => {
                let owner = base.node(i.to_native()).stat().ephemeral_owner;
                if let Some(s) = state.sessions.get_mut(&owner) {
                    s.ephemerals.insert(path_of(i));
                }
            }
            OwnerKind::Container | OwnerKind::Void => {}
        }
    }
    state.digest = base.digest();
    state.tree = Tree::from_base(base);
    // As ZooKeeper's snapshot load (`DataTree.deserialize` → `setupQuota`): the quota
    // index is rebuilt and each quota's usage recomputed from the tree.
    crate::core::quota::setup(&mut state);
    state
}

/// Why no state could be loaded at startup.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Listing the directory failed, or it holds a file that is not ours.
    #[error("snapshot directory {}: {source}", dir.display())]
    Dir {
        /// The snapshot directory.
        dir: PathBuf,
        /// Why.
        source: snapfile::SnapshotError,
    },
}

/// A snapshot that failed to load, and why.
#[derive(Debug)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Its zxid.
    pub zxid: i64,
    /// The error (names the file and, for file damage, the byte offset).
    pub reason: String,
}

/// What [`load_newest`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The state of the newest valid snapshot, if any.
    pub state: Option<DataState>,
    /// The snapshot it came from.
    pub from: Option<PathBuf>,
    /// Newer snapshots that failed verification, newest first.
    pub rejected: Vec<Rejected>,
}

/// Loads the newest snapshot in `dir` that verifies and decodes, trying older ones when
/// it does not (each rejection is logged). Temp files of interrupted snapshots are
/// removed first. Whether the log then covers the gap is the caller's check.
pub fn load_newest(dir: &Path, extended_types: bool) -> Result<Loaded, LoadError> {
    match DiskStorage::open_read_only(dir) {
        Ok(mut storage) => load_newest_with(&mut storage, extended_types),
        // No directory yet: a server starting for the first time.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Loaded {
            state: None,
            from: None,
            rejected: Vec::new(),
        }),
        Err(e) => Err(LoadError::Dir {
            dir: dir.to_path_buf(),
            source: snapfile::SnapshotError::Io {
                op: "open",
                file: dir.to_path_buf(),
                source: e,
            },
        }),
    }
}

/// [`load_newest`] on any [`Storage`] (the simulator's disk, or a real directory).
pub fn load_newest_with<S: Storage>(
    storage: &mut S,
    extended_types: bool,
) -> Result<Loaded, LoadError> {
    let dir = storage.path("");
    let dir_err = |source| LoadError::Dir {
        dir: dir.clone(),
        source,
    };
    let removed = snapfile::remove_temp_files_with(storage).map_err(dir_err)?;
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed temp files of interrupted snapshots");
    }
    let files = snapfile::list_with(storage).map_err(dir_err)?;
    let mut rejected = Vec::new();
    for f in files.iter().rev() {
        let started = Instant::now();
        // A compressed snapshot is restored to its plain name first and mapped as any
        // other (`snapfile::load_with`); one that does not decompress is rejected here
        // like a damaged plain file, and the next older one tried.
        let result = snapfile::load_with(storage, f)
            .map_err(|e| e.to_string())
            .and_then(Base::open)
            .map(|base| state_from_base(Arc::new(base), extended_types));
        match result {
            Ok(state) => {
                tracing::info!(
                    file = %f.path.display(), zxid = format_args!("0x{:x}", f.zxid),
                    bytes = f.bytes, znodes = state.tree.len(), sessions = state.sessions.len(),
                    elapsed = ?started.elapsed(), "loaded snapshot"
                );
                return Ok(Loaded {
                    state: Some(state),
                    from: Some(f.path.clone()),
                    rejected,
                });
            }
            Err(reason) => {
                tracing::warn!(file = %f.path.display(), %reason, "snapshot rejected; trying an older one");
                rejected.push(Rejected {
                    path: f.path.clone(),
                    zxid: f.zxid,
                    reason,
                });
            }
        }
    }
    Ok(Loaded {
        state: None,
        from: None,
        rejected,
    })
}

/// When `state` is served from a snapshot of an older format version (converted to
/// version 5 in memory on load, see [`Base::upgraded_from`]), writes it back to `dir` as
/// a version 5 snapshot at the same zxid (replacing the old file) and serves that file
/// instead, so that the tree is mapped again rather than held on the heap. Call it before
/// anything is applied to `state`. A failure is logged and leaves `state` as it was.
pub fn write_back_upgraded(dir: &Path, state: &mut DataState) {
    let Some(from) = state.tree.base().and_then(|b| b.upgraded_from()) else {
        return;
    };
    let started = Instant::now();
    let rewritten = write_state(dir, state)
        .map_err(|e| e.to_string())
        .and_then(|(file, _)| snapfile::read(&file).map_err(|e| e.to_string()))
        .and_then(Base::open);
    match rewritten {
        Ok(base) => {
            tracing::warn!(
                file = %base.file().display(), from_format_version = from,
                elapsed = ?started.elapsed(),
                "snapshot rewritten in format version 5 (this build's); older builds cannot read it"
            );
            state.tree.rebase(Arc::new(base));
        }
        Err(e) => tracing::error!(
            error = %e,
            "writing the converted snapshot back as version 5 failed; serving it from memory"
        ),
    }
}

/// Writes `state` as a snapshot in `dir`, streaming the payload from the state
/// ([`payload::stream`]: no copy of the state, no archive in memory), checking the
/// format's invariants as it goes (the loader trusts the checksum, see [`Base::open`]).
/// Returns the file and the payload size.
pub fn write_state(
    dir: &Path,
    state: &DataState,
) -> Result<(snapfile::SnapshotFile, usize), WriteError> {
    write_state_with(&mut snapshot_storage(dir)?, state)
}

/// The snapshot directory `dir` opened for writing (created if missing).
fn snapshot_storage(dir: &Path) -> Result<DiskStorage, snapfile::SnapshotError> {
    DiskStorage::open(dir, IoMode::Pwrite).map_err(|e| snapfile::SnapshotError::Io {
        op: "create directory",
        file: dir.to_path_buf(),
        source: e,
    })
}

impl<S: Storage> stream::Out for snapfile::PayloadSink<'_, S> {
    type Error = snapfile::SnapshotError;
    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.write(bytes)
    }
}

/// [`write_state`] on any [`Storage`]. A state that breaks an invariant of the format is
/// refused ([`WriteError::Invalid`]) and its temp file removed: no final name is given.
pub fn write_state_with<S: Storage>(
    storage: &mut S,
    state: &DataState,
) -> Result<(snapfile::SnapshotFile, usize), WriteError> {
    let (path, len) = snapfile::write_streamed_with(storage, state.last_zxid, |sink| {
        stream::write(state, sink).map(|_| ()).map_err(stream_error)
    })?;
    #[cfg(test)]
    tests::assert_streams_as_rkyv(state, &path.display().to_string());
    let file = snapfile::SnapshotFile {
        zxid: state.last_zxid,
        name: snapfile::snapshot_name(state.last_zxid),
        path,
        bytes: snapfile::HEADER_BYTES as u64 + len,
    };
    Ok((file, len as usize))
}

/// Writes the nodes of `source` as a snapshot in `dir` at `source.last_zxid()`, as
/// [`write_state`] writes a state (the import writes ZooKeeper's records this way,
/// without building a state). Returns the file and the payload size.
pub fn write_source<T: stream::Source + ?Sized>(
    dir: &Path,
    source: &T,
) -> Result<(snapfile::SnapshotFile, usize), WriteError> {
    let mut storage = snapshot_storage(dir)?;
    let zxid = source.last_zxid();
    let (path, len) = snapfile::write_streamed_with(&mut storage, zxid, |sink| {
        stream::write_from(source, sink)
            .map(|_| ())
            .map_err(stream_error)
    })?;
    let file = snapfile::SnapshotFile {
        zxid,
        name: snapfile::snapshot_name(zxid),
        path,
        bytes: snapfile::HEADER_BYTES as u64 + len,
    };
    Ok((file, len as usize))
}

/// A streaming writer's failure as a [`WriteError`].
pub fn stream_error(e: stream::StreamError<snapfile::SnapshotError>) -> WriteError {
    match e {
        stream::StreamError::Out(e) => WriteError::File(e),
        stream::StreamError::Invalid(e) => WriteError::Invalid(e),
        stream::StreamError::Read(source) => WriteError::File(snapfile::SnapshotError::Io {
            op: "read node data",
            file: PathBuf::from("(snapshot source)"),
            source,
        }),
    }
}

/// Writes stopped this long ago before a fold: a burst of writes is let finish first, so
/// that the fold's snapshot is not immediately stale again.
pub const FOLD_QUIET: Duration = Duration::from_secs(1);
/// Folds at most this often. Each one is a snapshot like any other and counts against
/// `autopurge.snapRetainCount`, so this bounds how soon a fold can push the older
/// snapshots (and the log behind them) out: with the default of 3 retained, by a few
/// minutes at the least. A snapshot taken at `snapCount` does not count here.
pub const FOLD_INTERVAL_MIN: Duration = Duration::from_secs(60);
/// An overlay smaller than this is not worth a snapshot: its share of a read's cost is
/// small, and a tiny overlay is what a quiet server left after a fold has.
pub const FOLD_OVERLAY_MIN: usize = 1_000;
/// Nor is an overlay under 1/this of the base's nodes: the fold writes the whole tree,
/// so this bounds a fold's write at this many times the nodes it moves.
pub const FOLD_OVERLAY_SHARE: usize = 8;

/// When a quiet server folds its overlay into a fresh snapshot (see the module's doc).
///
/// The owner of the snapshot trigger (the standalone commit stage, an ensemble member's
/// driver) asks [`Fold::due`] at every turn of its loop, and starts a snapshot as it
/// does at `snapCount` when it says so. Nothing changed since the last fold means an
/// overlay emptied by that fold: a quiet server does not snapshot again and again.
#[derive(Debug)]
pub struct Fold {
    /// The zxid seen at the last turn, and when it was first seen.
    seen_zxid: i64,
    seen_at: Instant,
    /// When the last fold started.
    folded_at: Option<Instant>,
}

impl Fold {
    /// A rule that has seen nothing yet (the first turn starts the quiet clock).
    pub fn new(now: Instant) -> Fold {
        Fold {
            seen_zxid: i64::MIN,
            seen_at: now,
            folded_at: None,
        }
    }

    /// Whether the state at `zxid` with `tree` is to be folded now: no txn for
    /// [`FOLD_QUIET`], an overlay of at least [`FOLD_OVERLAY_MIN`] entries and
    /// 1/[`FOLD_OVERLAY_SHARE`] of the base, and no fold in the last
    /// [`FOLD_INTERVAL_MIN`]. Whether a snapshot is already under way is the caller's
    /// to check, as it is for `snapCount`.
    pub fn due(&mut self, now: Instant, zxid: i64, tree: &Tree) -> bool {
        if zxid != self.seen_zxid {
            self.seen_zxid = zxid;
            self.seen_at = now;
            return false;
        }
        let overlay = tree.overlay_len();
        let base = tree.base().map_or(0, |b| b.len());
        now.duration_since(self.seen_at) >= FOLD_QUIET
            && overlay >= FOLD_OVERLAY_MIN.max(base / FOLD_OVERLAY_SHARE)
            && self
                .folded_at
                .is_none_or(|at| now.duration_since(at) >= FOLD_INTERVAL_MIN)
    }

    /// Records a fold started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.folded_at = Some(now);
    }
}

/// Why a snapshot was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file could not be written.
    #[error(transparent)]
    File(#[from] snapfile::SnapshotError),
    /// The serialized state failed validation: a bug, never written to disk.
    #[error("refusing to write an invalid snapshot: {0}")]
    Invalid(#[from] payload::InvalidPayload),
}

/// The CPU the calling thread runs on.
fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments; a negative answer is an error.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// Keeps the calling thread off `cpu`, when its affinity allows another CPU.
///
/// A snapshot's thread is kept off the CPU of the thread that started it, the commit
/// stage's: with the shards pinned to every core and the commit stage on shard 0
/// (`server::commit_on_shard`), the new thread took a time slice from the core under shard
/// 0 as it started, and every write waited ~8.5 ms (to_batch in the "slow requests"
/// lines, each at the start of a snapshot write). Off that CPU, 3 write workloads in one
/// `compare` run had 4 and 0 slow lines ≥ 8 ms (was 20 and 39) and maxima of 7.8–8.9 ms,
/// and snapshots took no longer (bench/results/stalls-2026-12-06-s18-causes.md). A
/// lower priority did as much for the stalls but starved the snapshot under load.
fn keep_off_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is the empty set; the calls read and write only `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        if !libc::CPU_ISSET(cpu, &set) || libc::CPU_COUNT(&set) < 2 {
            return;
        }
        libc::CPU_CLR(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lowers the calling thread to nice 19 (on Linux a thread has a nice value of its
/// own). It cannot be raised again without privileges: call it only on a thread that
/// does nothing else afterwards.
fn lowest_priority() {
    // SAFETY: no pointers; gettid names the calling thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

/// When and where snapshots are taken, and what is kept. Shared by the commit stage
/// (which counts txns and starts snapshots) and the log's owner (which purges).
#[derive(Debug)]
pub struct SnapshotPolicy {
    /// Where snapshots go.
    pub dir: PathBuf,
    /// `snapCount`: a snapshot is taken after a random number of txns in
    /// `[snap_count / 2 + 1, snap_count]`, as ZooKeeper does so that the servers of an
    /// ensemble do not all snapshot at once.
    pub snap_count: u64,
    /// Snapshots kept (`autopurge.snapRetainCount`, at least [`RETAIN_COUNT_MIN`]).
    pub retain: usize,
    /// Whether old snapshots and log segments are removed at all
    /// (`autopurge.purgeInterval` > 0). ZooKeeper purges every `purgeInterval` hours;
    /// ferrokeeper purges after every snapshot and at startup, which keeps at most what
    /// ZooKeeper's purge would keep, sooner.
    pub purge: bool,
    /// Whether a snapshot is being written (at most one at a time).
    pub in_flight: AtomicBool,
    /// Log records with zxid at or below this are covered by the oldest retained
    /// snapshot; the log's owner purges segments through it. −1: nothing yet.
    pub purge_through: Arc<AtomicI64>,
    /// The zxid of the newest snapshot written and read back (or loaded at startup): log
    /// segments wholly at or below it are compressed by the log's owner, when
    /// `ferrokeeper.log.compressSuperseded` is on. −1: nothing yet.
    pub compress_through: Arc<AtomicI64>,
    /// The newest snapshot written and mapped, waiting for the commit stage to rebase
    /// its head tree on it ([`SnapshotPolicy::take_written`]).
    written: Mutex<Option<Arc<Base>>>,
    /// Where each snapshot's write time goes (`snapshottime`), once the server has
    /// wired it ([`SnapshotPolicy::time_into`]).
    times: std::sync::OnceLock<SnapshotTimer>,
    /// Whether superseded snapshots are compressed after each new one
    /// (`ferrokeeper.snapshot.compressSuperseded`, on by default; see
    /// [`SnapshotPolicy::compress_superseded`]).
    pub compress: bool,
    /// Whether the compressor thread runs; at most one does.
    compressing: AtomicBool,
    /// A snapshot was written since the running compressor listed the directory: it
    /// makes another pass before it ends.
    compress_again: AtomicBool,
    /// Snapshots in transfer to followers, which the compressor and retention leave
    /// alone, and the claims that keep two threads off one snapshot's files.
    pub pins: Arc<transfer::Pins>,
}

/// How long the compressor waits for the commit stage (or an ensemble member's driver)
/// to take the snapshot just written before it compresses the one before: the driver
/// offers followers the newest snapshot it has taken, by name, so the one it offered
/// until then stays plain until it has moved on. Past this the compressor goes ahead (a
/// server shutting down takes nothing); the commit stage takes it within a batch. A
/// follower that asks for the one compressed anyway has it restored ([`transfer`]).
pub const COMPRESS_WAIT_TAKEN: Duration = Duration::from_secs(30);

/// Receives each snapshot's write time (see [`SnapshotPolicy::time_into`]).
pub struct SnapshotTimer(pub Box<dyn Fn(std::time::Duration) + Send + Sync>);

impl std::fmt::Debug for SnapshotTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotTimer")
    }
}

impl SnapshotPolicy {
    /// A policy from the config values.
    pub fn new(dir: PathBuf, snap_count: u32, retain_count: u32, purge: bool) -> SnapshotPolicy {
        SnapshotPolicy {
            dir,
            snap_count: u64::from(snap_count.max(2)),
            retain: (retain_count as usize).max(RETAIN_COUNT_MIN),
            purge,
            in_flight: AtomicBool::new(false),
            purge_through: Arc::new(AtomicI64::new(-1)),
            compress_through: Arc::new(AtomicI64::new(-1)),
            written: Mutex::new(None),
            times: std::sync::OnceLock::new(),
            compress: true,
            compressing: AtomicBool::new(false),
            compress_again: AtomicBool::new(false),
            pins: Arc::default(),
        }
    }

    /// The policy with compression of superseded snapshots on or off
    /// (`ferrokeeper.snapshot.compressSuperseded`).
    pub fn with_compression(mut self, compress: bool) -> SnapshotPolicy {
        self.compress = compress;
        self
    }

    /// Whether the compressor thread is running (tests wait for it to finish).
    pub fn compressing(&self) -> bool {
        self.compressing.load(Ordering::Acquire)
    }

    /// Compresses every plain snapshot older than the newest one on a thread of its own
    /// (`snapfile::compress_superseded_with`), unless compression is off. A compressor
    /// already running makes another pass instead, so two never work on one directory.
    ///
    /// The thread runs at the lowest priority (nice 19) and off the commit stage's CPU
    /// (`commit_cpu`): it is the only CPU-heavy work here whose delay costs nothing but
    /// disk space for a while. It has its own flag rather than `in_flight`, so that a
    /// compressor starved by a busy server never holds up the next snapshot.
    pub fn compress_superseded(self: &Arc<Self>, commit_cpu: Option<usize>) {
        if !self.compress {
            return;
        }
        self.compress_again.store(true, Ordering::Release);
        if self.compressing.swap(true, Ordering::AcqRel) {
            return;
        }
        let policy = self.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-compress".into())
            .spawn(move || {
                if let Some(cpu) = commit_cpu {
                    keep_off_cpu(cpu);
                }
                lowest_priority();
                loop {
                    while policy.compress_again.swap(false, Ordering::AcqRel) {
                        policy.wait_taken();
                        policy.compress_pass();
                    }
                    policy.compressing.store(false, Ordering::Release);
                    // A request that came after the last swap and saw this thread still
                    // running left the flag set: take it over unless a new thread did.
                    if !policy.compress_again.load(Ordering::Acquire)
                        || policy.compressing.swap(true, Ordering::AcqRel)
                    {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the snapshot compressor thread");
            self.compressing.store(false, Ordering::Release);
        }
    }

    /// Waits (bounded, [`COMPRESS_WAIT_TAKEN`]) until the newest snapshot written has
    /// been taken as the base, see the constant for why.
    fn wait_taken(&self) {
        let started = Instant::now();
        while started.elapsed() < COMPRESS_WAIT_TAKEN {
            let waiting = self.written.lock().map(|w| w.is_some()).unwrap_or(false);
            if !waiting {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One pass of the compressor over the snapshot directory, logged.
    fn compress_pass(&self) {
        let started = Instant::now();
        let mut storage = match snapshot_storage(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot compress superseded snapshots");
                return;
            }
        };
        // A snapshot pinned for a follower's transfer, or whose files another thread
        // works on, is left plain: a later pass takes it.
        let claim = |f: &snapfile::SnapshotFile| {
            let claim = self.pins.claim(f.zxid, Instant::now());
            if claim.is_none() {
                tracing::info!(file = %f.path.display(), "superseded snapshot left plain for now: pinned for a follower's transfer, or being worked on");
            }
            claim
        };
        match snapfile::compress_superseded_claimed_with(&mut storage, snapfile::LEVEL, claim) {
            Ok((done, refused)) => {
                for f in &done {
                    tracing::info!(file = %f.path.display(), bytes = f.bytes, "superseded snapshot compressed");
                }
                for e in &refused {
                    tracing::warn!(error = %e, "superseded snapshot left uncompressed: it fails verification");
                }
                if !done.is_empty() {
                    tracing::info!(files = done.len(), elapsed = ?started.elapsed(), "compressed superseded snapshots");
                    // The retention after the newest snapshot skips one this pass held:
                    // without another, it would stay until the next snapshot.
                    if let Err(e) = self.retain_and_mark() {
                        tracing::error!(error = %e, "snapshot retention failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "compressing superseded snapshots failed"),
        }
    }

    /// Hands every snapshot's write time to `record` from now on (ZooKeeper's
    /// `snapshottime`). The first call wins.
    pub fn time_into(&self, record: SnapshotTimer) {
        let _ = self.times.set(record);
    }

    /// The next threshold, uniformly in `[snap_count / 2 + 1, snap_count]`.
    pub fn next_threshold(&self) -> u64 {
        use rand::Rng;
        let low = self.snap_count / 2 + 1;
        rand::rng().random_range(low..=self.snap_count.max(low))
    }

    /// Applies retention when purging is on: keeps the newest `retain` snapshots and publishes the oldest
    /// kept zxid for the log's owner to purge through. An older snapshot pinned for a
    /// follower's transfer stays until a retention after its pin has expired.
    pub fn retain_and_mark(&self) -> Result<(), snapfile::SnapshotError> {
        if !self.purge {
            return Ok(());
        }
        let claim = |f: &snapfile::SnapshotFile| {
            let claim = self.pins.claim(f.zxid, Instant::now());
            if claim.is_none() {
                tracing::info!(file = %f.path.display(), "snapshot past retention kept for now: pinned for a follower's transfer, or being worked on");
            }
            claim
        };
        let kept = snapfile::retain_claimed(&self.dir, self.retain, claim)?;
        // The log is trimmed only once `retain` snapshots exist: until then, it is the
        // only thing that lets an operator fall back past a damaged snapshot.
        if kept.len() >= self.retain {
            if let Some(oldest) = kept.first() {
                self.purge_through.fetch_max(oldest.zxid, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    /// Whether a snapshot is being written, or written and not yet taken as the base.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire)
            || self.written.lock().map(|w| w.is_some()).unwrap_or(false)
    }

    /// The newest snapshot written since the last call, mapped, for the commit stage
    /// to rebase on.
    pub fn take_written(&self) -> Option<Arc<Base>> {
        self.written.lock().ok()?.take()
    }

    /// Starts a snapshot of `state` on a thread of its own, unless one is in flight
    /// (then returns false: ZooKeeper likewise skips, "too busy to snap").
    pub fn start(self: &Arc<Self>, state: Arc<DataState>) -> bool {
        self.start_after(state, || Ok(()))
    }

    /// As [`SnapshotPolicy::start`], running `before` first on the snapshot's thread: an
    /// ensemble member records the snapshot's Raft position there, so that its two
    /// fsyncs never hold up the replication loop. When `before` fails, nothing is
    /// written (the log still holds every txn) and `busy` turns false.
    pub fn start_after(
        self: &Arc<Self>,
        state: Arc<DataState>,
        before: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> bool {
        if self.in_flight.swap(true, Ordering::AcqRel) {
            return false;
        }
        let policy = self.clone();
        let commit_cpu = current_cpu();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                if let Some(cpu) = commit_cpu {
                    keep_off_cpu(cpu);
                }
                // Whatever happens below, even a panic, a later trigger may try again.
                struct Done<'a>(&'a AtomicBool);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _done = Done(&policy.in_flight);
                if let Err(e) = before() {
                    tracing::error!(error = %e, "not snapshotting: the step before it failed");
                    return;
                }
                let started = Instant::now();
                match write_state(&policy.dir, &state) {
                    Ok((file, bytes)) => {
                        // ZooKeeper times `takeSnapshot`'s save: serializing and writing.
                        if let Some(record) = policy.times.get() {
                            (record.0)(started.elapsed());
                        }
                        tracing::info!(
                            file = %file.path.display(), zxid = format_args!("0x{:x}", state.last_zxid),
                            znodes = state.tree.len(), bytes, elapsed = ?started.elapsed(),
                            "snapshot written"
                        );
                        // Read back through a mapping, checksum and all: this is the
                        // base the tree moves onto.
                        match snapfile::read(&file).map_err(|e| e.to_string()).and_then(Base::open) {
                            Ok(base) => {
                                if let Ok(mut w) = policy.written.lock() {
                                    *w = Some(Arc::new(base));
                                }
                                // Only a snapshot that reads back may stand in for the
                                // log before it.
                                policy.compress_through.fetch_max(state.last_zxid, Ordering::AcqRel);
                            }
                            Err(e) => tracing::error!(error = %e, "snapshot just written does not read back"),
                        }
                        if let Err(e) = policy.retain_and_mark() {
                            tracing::error!(error = %e, "snapshot retention failed");
                        }
                        policy.compress_superseded(commit_cpu);
                    }
                    // A failed snapshot loses nothing (the log still holds every txn);
                    // the next trigger tries again.
                    Err(e) => tracing::error!(error = %e, "snapshot failed"),
                }
                drop(state);
                // The writer's side tables (sorted node references, index, children)
                // were built on this thread; hand their pages back to the OS now rather
                // than keeping them for a heap that is about to die (measured, when the
                // whole payload was built in memory: without this, RSS per znode doubled
                // after one snapshot).
                // SAFETY: mi_collect only frees this thread's unused pages.
                unsafe { libmimalloc_sys::mi_collect(true) };
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the snapshot thread");
            self.in_flight.store(false, Ordering::Release);
            return false;
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;
