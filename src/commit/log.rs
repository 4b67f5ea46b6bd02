//! The commit stage's transaction log: the batch encoding, replay at startup, and the
//! counters `mntr` reads. The appends themselves are made by the commit executor
//! (`commit::append`), which writes and syncs each batch on its own io_uring and keeps
//! prepping the next batch meanwhile (group commit with pipelining).
//! Failure is fail-stop: if a write or a sync fails, nothing more is acknowledged and
//! the server stops, as a replica that cannot persist must not serve.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ferrokeeper_storage::backend::Storage;
use ferrokeeper_storage::log::{self as txlog, LogError, LogOptions, LogStats, LogWriter};

use crate::core::apply::{apply, set_data, TxnTime};
use crate::core::codec;
use crate::core::state::DataState;
use crate::core::txn::Txn;

/// One batch on its way to the log: its txns encoded back to back.
#[derive(Debug)]
pub struct LogBatch {
    /// Position in the stage's order of batches.
    pub seq: u64,
    /// The encoded txns.
    pub bytes: Vec<u8>,
    /// (zxid, end offset in `bytes`) of each txn.
    pub records: Vec<(i64, usize)>,
}

impl LogBatch {
    /// Encodes `txns` as batch `seq`.
    pub fn encode(seq: u64, txns: &[Txn]) -> LogBatch {
        let mut bytes = Vec::new();
        let mut records = Vec::with_capacity(txns.len());
        for t in txns {
            codec::encode(t, &mut bytes);
            records.push((t.zxid, bytes.len()));
        }
        LogBatch {
            seq,
            bytes,
            records,
        }
    }
}

/// Why the log could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log itself refused (corruption, missing segment, IO): names file and offset.
    #[error("transaction log {dir}: {source}")]
    Log {
        /// The log directory.
        dir: PathBuf,
        /// What the log reported.
        source: LogError,
    },
    /// A record is not a txn ferrokeeper can apply.
    #[error("transaction log {dir}: record with zxid 0x{zxid:x} does not decode: {source}")]
    Txn {
        /// The log directory.
        dir: PathBuf,
        /// The record's zxid.
        zxid: i64,
        /// Why.
        source: codec::TxnDecodeError,
    },
    /// The log does not continue the state it is replayed onto: txns between the state's
    /// zxid (a snapshot's, or 0) and the log's first later record are missing.
    #[error(
        "transaction log {dir}: the state to replay onto is at zxid 0x{base:x} but the log's next record is 0x{next:x}; the txns between are missing{context}"
    )]
    Gap {
        /// The log directory.
        dir: PathBuf,
        /// zxid of the state replay starts from.
        base: i64,
        /// zxid of the first log record after it.
        next: i64,
        /// What the caller knows about why (rejected snapshots, with file and offset).
        context: String,
    },
}

/// What the log has done since it was opened, for `mntr`
/// (`zk_fk_log_*`) and for the benchmark's fdatasyncs per acknowledged write and log
/// bytes per write.
///
/// Shared by the log's owner (which stores: the commit executor of a standalone server,
/// the log executor of an ensemble member) and the shards (which read, for `mntr`)
/// through an `Arc`, so `mntr` reads the counters on any shard without a report round
/// through the commit stage, which would delay the reply behind the next fdatasync.
/// Each value is a copy of the writer's own [`LogStats`], stored with relaxed
/// atomics after every append: a handful of uncontended stores per batch, and a reader
/// may see one counter a batch ahead of another (they are statistics, not state).
#[derive(Debug)]
pub struct LogCounters {
    running: AtomicBool,
    batches: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    fdatasyncs: AtomicU64,
    fsyncs: AtomicU64,
    segments_created: AtomicU64,
    segments_removed: AtomicU64,
    segments_compressed: AtomicU64,
    spares_prepared: AtomicU64,
    rolls_inline: AtomicU64,
    seals_deferred: AtomicU64,
    /// Smallest and largest txns per log write (ZooKeeper's `sync_processor_batch_size`
    /// summary; `u64::MAX` before the first).
    batch_records_min: AtomicU64,
    batch_records_max: AtomicU64,
    /// The appends' sync times (ZooKeeper's `fsynctime`): the writer's
    /// [`LogStats::append_syncs`] as last published.
    append_syncs: std::sync::Mutex<ferrokeeper_storage::log::SyncTimes>,
    /// The snapshots' write times in ms (ZooKeeper's `snapshottime`), recorded by the
    /// snapshot thread ([`crate::snapshot::SnapshotPolicy`]); kept here because these
    /// counters are already shared with the shards.
    snapshots: std::sync::Mutex<crate::admin::Summary>,
}

impl Default for LogCounters {
    fn default() -> Self {
        LogCounters::new()
    }
}

impl LogCounters {
    /// Counters at zero, before the log's owner has started.
    pub const fn new() -> LogCounters {
        LogCounters {
            running: AtomicBool::new(false),
            batches: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            fdatasyncs: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            segments_created: AtomicU64::new(0),
            segments_removed: AtomicU64::new(0),
            segments_compressed: AtomicU64::new(0),
            spares_prepared: AtomicU64::new(0),
            rolls_inline: AtomicU64::new(0),
            seals_deferred: AtomicU64::new(0),
            batch_records_min: AtomicU64::new(u64::MAX),
            batch_records_max: AtomicU64::new(0),
            append_syncs: std::sync::Mutex::new(ferrokeeper_storage::log::SyncTimes {
                count: 0,
                sum_ms: 0,
                min_ms: 0,
                max_ms: 0,
            }),
            snapshots: std::sync::Mutex::new(crate::admin::Summary {
                count: 0,
                sum: 0,
                min: 0,
                max: 0,
            }),
        }
    }

    /// Stores the writer's counters (cumulative since the log was opened).
    pub(crate) fn publish(&self, s: &LogStats) {
        // Only the log's owner stores, so the previous values are its own: the txns of
        // the writes since the last call (one write, usually) give the batch size.
        let writes = s.appends.saturating_sub(self.batches.load(Relaxed));
        let records = s.records.saturating_sub(self.records.load(Relaxed));
        if let Some(per_write) = records.checked_div(writes) {
            self.batch_records_min.fetch_min(per_write, Relaxed);
            self.batch_records_max.fetch_max(per_write, Relaxed);
        }
        self.batches.store(s.appends, Relaxed);
        self.records.store(s.records, Relaxed);
        self.bytes.store(s.bytes, Relaxed);
        self.fdatasyncs.store(s.fdatasyncs, Relaxed);
        self.fsyncs.store(s.fsyncs, Relaxed);
        self.segments_created.store(s.segments_created, Relaxed);
        self.segments_removed.store(s.segments_removed, Relaxed);
        self.segments_compressed
            .store(s.segments_compressed, Relaxed);
        self.spares_prepared.store(s.spares_prepared, Relaxed);
        self.rolls_inline.store(s.rolls_inline, Relaxed);
        self.seals_deferred.store(s.seals_deferred, Relaxed);
        if let Ok(mut t) = self.append_syncs.lock() {
            *t = s.append_syncs;
        }
        self.running.store(true, Relaxed);
    }

    /// The appends' sync times in ms: ZooKeeper's `fsynctime` summary. Zero samples
    /// before the first synced append (and always with `forceSync=no`, as in Java).
    pub fn fsync_times(&self) -> crate::admin::Summary {
        let t = self
            .append_syncs
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|p| *p.into_inner());
        crate::admin::Summary {
            count: t.count,
            sum: t.sum_ms,
            min: t.min_ms,
            max: t.max_ms,
        }
    }

    /// Records one snapshot written in `elapsed` (whole ms, as ZooKeeper's
    /// `takeSnapshot` records `snapshottime`).
    pub fn record_snapshot(&self, elapsed: std::time::Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        if let Ok(mut s) = self.snapshots.lock() {
            s.record(ms);
        }
    }

    /// The snapshots' write times in ms: ZooKeeper's `snapshottime` summary.
    pub fn snapshot_times(&self) -> crate::admin::Summary {
        self.snapshots
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|p| *p.into_inner())
    }

    /// Txns per log write: ZooKeeper's `sync_processor_batch_size` summary (count:
    /// writes, sum: txns), or `None` before the first write.
    pub fn batch_sizes(&self) -> Option<crate::admin::Summary> {
        let count = self.batches.load(Relaxed);
        let min = self.batch_records_min.load(Relaxed);
        (self.running.load(Relaxed) && min != u64::MAX).then(|| crate::admin::Summary {
            count,
            sum: self.records.load(Relaxed),
            min,
            max: self.batch_records_max.load(Relaxed),
        })
    }

    /// The counters, or `None` while no log has started in this process.
    /// Fields as in [`LogStats`]: `appends` are writes to the log (a stage batch larger
    /// than `batch_bytes_max` takes several), `bytes` are framed record bytes (payload
    /// plus frame header, no segment headers and no preallocation), `fdatasyncs`
    /// include the one recovery issues at open, `fsyncs` are whole-file and directory
    /// syncs (segment creation and purges).
    pub fn read(&self) -> Option<LogStats> {
        if !self.running.load(Relaxed) {
            return None;
        }
        Some(LogStats {
            appends: self.batches.load(Relaxed),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            fdatasyncs: self.fdatasyncs.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            segments_created: self.segments_created.load(Relaxed),
            segments_removed: self.segments_removed.load(Relaxed),
            segments_compressed: self.segments_compressed.load(Relaxed),
            spares_prepared: self.spares_prepared.load(Relaxed),
            rolls_inline: self.rolls_inline.load(Relaxed),
            seals_deferred: self.seals_deferred.load(Relaxed),
            append_syncs: self
                .append_syncs
                .lock()
                .map(|t| *t)
                .unwrap_or_else(|p| *p.into_inner()),
        })
    }
}

/// The log's directory under `dataLogDir`.
pub fn log_dir(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join("ferrokeeper").join("log")
}

/// Opens the log (recovering a torn tail) and replays onto `state` every txn with a
/// zxid above `state.last_zxid` (0 for a fresh state, a snapshot's zxid otherwise).
///
/// zxids are consecutive (the commit core assigns `last_zxid + 1`), so the first record
/// replayed must be `state.last_zxid + 1`: anything else means txns are missing (a
/// purged log without the snapshot that covered it) and replay refuses with
/// [`ReplayError::Gap`], adding `gap_context` to the message.
pub fn open_and_replay(
    dir: &Path,
    opts: LogOptions,
    state: &mut DataState,
    gap_context: &str,
) -> Result<(LogWriter, u64), ReplayError> {
    let log_err = |source| ReplayError::Log {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        log_err(LogError::Io {
            op: "create directory",
            file: dir.to_path_buf(),
            source: e,
        })
    })?;
    // Compressed segments that hold txns after the state's zxid are decompressed first.
    let after = state.last_zxid;
    let mut replay = Replayer::new(state, dir, gap_context);
    let (writer, recovered) = LogWriter::open_replaying(dir, opts, after, &mut |zxid, bytes| {
        replay.record(zxid, bytes)
    })
    .map_err(log_err)?;
    report_recovery(&recovered);
    let replayed = replay.finish()?;
    Ok((writer, replayed))
}

/// [`open_and_replay`] on any [`Storage`]: `storage` becomes the writer's.
pub fn open_and_replay_with<S: Storage>(
    storage: S,
    opts: LogOptions,
    state: &mut DataState,
    gap_context: &str,
) -> Result<(LogWriter<S>, u64), ReplayError> {
    let dir = storage.path("");
    let after = state.last_zxid;
    let mut replay = Replayer::new(state, &dir, gap_context);
    let (writer, recovered) =
        LogWriter::open_replaying_with(storage, opts, after, &mut |zxid, bytes| {
            replay.record(zxid, bytes)
        })
        .map_err(|source| ReplayError::Log {
            dir: dir.clone(),
            source,
        })?;
    report_recovery(&recovered);
    let replayed = replay.finish()?;
    Ok((writer, replayed))
}

/// Applies the records the writer's recovery scan hands out (in log order, borrowed from
/// the segment's bytes: no copy of the payload) to a state, the same way [`replay`] does.
/// The first record that cannot be applied (a gap, an undecodable txn) stops it; the
/// error waits for [`Replayer::finish`], since the scan's visitor cannot fail.
struct Replayer<'a> {
    state: &'a mut DataState,
    dir: &'a Path,
    gap_context: &'a str,
    /// zxid of the state before replay.
    base: i64,
    replayed: u64,
    /// Changes for watches: none are set at startup, so cleared after every txn (one
    /// buffer, reused).
    sink: Vec<crate::core::apply::Change>,
    failed: Option<ReplayError>,
}

impl<'a> Replayer<'a> {
    fn new(state: &'a mut DataState, dir: &'a Path, gap_context: &'a str) -> Self {
        let base = state.last_zxid;
        Replayer {
            state,
            dir,
            gap_context,
            base,
            replayed: 0,
            sink: Vec::new(),
            failed: None,
        }
    }

    fn record(&mut self, zxid: i64, bytes: &[u8]) {
        // Records up to the state's zxid are already in it (a snapshot covers them).
        if self.failed.is_some() || zxid <= self.base {
            return;
        }
        if zxid != self.state.last_zxid + 1 {
            self.failed = Some(ReplayError::Gap {
                dir: self.dir.to_path_buf(),
                base: self.base,
                next: zxid,
                context: self.gap_context.to_string(),
            });
            return;
        }
        // setData, most of a busy log, is applied from the record's bytes: no txn built,
        // no reply, no change for watches (none are set at startup), the path borrowed
        // (issue #13). The same change as `apply`'s, through the same function.
        if let Some(set) = codec::read_set_data(bytes) {
            let time = TxnTime {
                zxid: set.header.zxid,
                time_ms: set.header.time,
            };
            set_data(
                self.state,
                set.path,
                set.data.map(Arc::from),
                set.version,
                time,
                |_| {},
            );
            self.state.end_txn(time.zxid);
            self.replayed += 1;
            return;
        }
        match codec::decode(bytes) {
            Ok(txn) => {
                let extended_types = self.state.extended_types;
                apply(self.state, &txn, extended_types, &mut self.sink);
                self.sink.clear();
                self.replayed += 1;
            }
            Err(source) => {
                self.failed = Some(ReplayError::Txn {
                    dir: self.dir.to_path_buf(),
                    zxid,
                    source,
                });
            }
        }
    }

    fn finish(self) -> Result<u64, ReplayError> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.replayed),
        }
    }
}

fn report_recovery(recovered: &txlog::Recovered) {
    if !recovered.decompressed_segments.is_empty() {
        tracing::warn!(
            segments = ?recovered.decompressed_segments,
            "decompressed log segments: replay starts before their end (an older snapshot, or none, was loaded)"
        );
    }
    if let Some(t) = &recovered.torn_tail {
        tracing::warn!(
            file = %t.file.display(), offset = t.offset, bytes = recovered.truncated_bytes,
            "transaction log had a torn tail (an unacknowledged write cut by a crash); truncated"
        );
    }
}

/// Applies every record after `state.last_zxid` to `state`; returns how many. Public
/// for the offline tools (`crate::tools`), which replay a log read without a writer.
pub fn replay(
    records: impl Iterator<Item = Result<txlog::OwnedRecord, LogError>>,
    state: &mut DataState,
    dir: &Path,
    gap_context: &str,
) -> Result<u64, ReplayError> {
    let mut replayed = 0u64;
    let mut sink = Vec::new();
    let base = state.last_zxid;
    for rec in records {
        let rec = rec.map_err(|source| ReplayError::Log {
            dir: dir.to_path_buf(),
            source,
        })?;
        if rec.zxid != state.last_zxid + 1 {
            return Err(ReplayError::Gap {
                dir: dir.to_path_buf(),
                base,
                next: rec.zxid,
                context: gap_context.to_string(),
            });
        }
        let txn = codec::decode(&rec.bytes).map_err(|source| ReplayError::Txn {
            dir: dir.to_path_buf(),
            zxid: rec.zxid,
            source,
        })?;
        apply(state, &txn, state.extended_types, &mut sink);
        sink.clear();
        replayed += 1;
    }
    Ok(replayed)
}
