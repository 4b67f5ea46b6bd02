//! The commit stage's transaction log: replay at startup, and the log executor that
//! makes each batch durable before the stage releases its replies.
//!
//! The log writer (`ferrokeeper_storage::log::LogWriter`) is blocking; it runs on an
//! executor of its own, so a batch's write + fdatasync never stalls the commit stage,
//! which keeps prepping the next batch meanwhile (group commit with pipelining).
//! Failure is fail-stop: if a write or a sync fails, nothing more is acknowledged and
//! the server stops, as a replica that cannot persist must not serve.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use ferrokeeper_storage::backend::Storage;
use ferrokeeper_storage::log::{self as txlog, LogError, LogOptions, LogStats, LogWriter, Record};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};

use crate::core::apply::apply;
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

/// What the log executor has done since the log was opened, for `mntr`
/// (`zk_fk_log_*`) and for the benchmark's fdatasyncs per acknowledged write and log
/// bytes per write.
///
/// Shared by the log executor (which stores) and the shards (which read, for `mntr`)
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
}

impl Default for LogCounters {
    fn default() -> Self {
        LogCounters::new()
    }
}

impl LogCounters {
    /// Counters at zero, before the log executor has started.
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
        }
    }

    /// Stores the writer's counters (cumulative since the log was opened).
    pub(crate) fn publish(&self, s: &LogStats) {
        self.batches.store(s.appends, Relaxed);
        self.records.store(s.records, Relaxed);
        self.bytes.store(s.bytes, Relaxed);
        self.fdatasyncs.store(s.fdatasyncs, Relaxed);
        self.fsyncs.store(s.fsyncs, Relaxed);
        self.segments_created.store(s.segments_created, Relaxed);
        self.segments_removed.store(s.segments_removed, Relaxed);
        self.running.store(true, Relaxed);
    }

    /// The counters, or `None` while no log executor has started in this process.
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
    let (writer, recovered) = LogWriter::open(dir, opts).map_err(log_err)?;
    report_recovery(&recovered);
    let records = txlog::read(dir, state.last_zxid).map_err(log_err)?;
    let replayed = replay(records, state, dir, gap_context)?;
    Ok((writer, replayed))
}

/// [`open_and_replay`] on any [`Storage`]: `storage` becomes the writer's, `reader` (the
/// same directory) is read for replay after the writer has recovered the tail.
pub fn open_and_replay_with<S: Storage, R: Storage>(
    storage: S,
    reader: R,
    opts: LogOptions,
    state: &mut DataState,
    gap_context: &str,
) -> Result<(LogWriter<S>, u64), ReplayError> {
    let dir = storage.path("");
    let log_err = |source| ReplayError::Log {
        dir: dir.clone(),
        source,
    };
    let (writer, recovered) = LogWriter::open_with(storage, opts).map_err(log_err)?;
    report_recovery(&recovered);
    let records = txlog::read_with(reader, state.last_zxid).map_err(log_err)?;
    let replayed = replay(records, state, &dir, gap_context)?;
    Ok((writer, replayed))
}

fn report_recovery(recovered: &txlog::Recovered) {
    if let Some(t) = &recovered.torn_tail {
        tracing::warn!(
            file = %t.file.display(), offset = t.offset, bytes = recovered.truncated_bytes,
            "transaction log had a torn tail (an unacknowledged write cut by a crash); truncated"
        );
    }
}

/// Applies every record after `state.last_zxid` to `state`; returns how many.
fn replay(
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

/// The log executor: appends the batches queued for it (one write + one fdatasync for
/// all of them), then acknowledges each. A failure stops the server (fail-stop, through [`super::FailStop`]).
///
/// Retention runs here too, because the writer is this executor's alone: after a batch
/// is acknowledged, segments wholly covered by the oldest retained snapshot
/// (`purge_through`, set by the snapshot thread) are removed. The purge therefore waits
/// for the next write after a snapshot; an idle server keeps its old segments until then.
pub async fn run(
    mut writer: LogWriter,
    batches: SharedReceiver<LogBatch>,
    acks: SharedSender<u64>,
    purge_through: std::sync::Arc<std::sync::atomic::AtomicI64>,
    counters: std::sync::Arc<LogCounters>,
    fail: super::FailStop,
) {
    let batches = batches.connect().await;
    let acks = acks.connect().await;
    let mut purged_through = -1i64;
    counters.publish(&writer.stats());
    while let Some(first) = batches.recv().await {
        // Group commit across batches: every batch already queued goes into the same
        // write and fdatasync. (Measured: one sync per queued batch left ferrokeeper at
        // ~4 writes per fdatasync with 16 in flight, ZooKeeper at 7.4.)
        let mut queued = vec![first];
        let mut queued_bytes = queued[0].bytes.len();
        let limit = writer.options().batch_bytes_max;
        while queued_bytes < limit {
            match futures_lite::future::poll_once(batches.recv()).await {
                Some(Some(b)) => {
                    queued_bytes += b.bytes.len();
                    queued.push(b);
                }
                Some(None) | None => break,
            }
        }
        let mut records: Vec<Record<'_>> = Vec::new();
        for batch in &queued {
            let mut start = 0;
            for &(zxid, end) in &batch.records {
                records.push(Record {
                    zxid,
                    bytes: &batch.bytes[start..end],
                });
                start = end;
            }
        }
        if !records.is_empty() {
            // More than the log takes at once goes in parts; the replies wait for the
            // last part, so acknowledgement is still per batch.
            let mut part_start = 0;
            let mut part_bytes = 0;
            for i in 0..records.len() {
                let framed =
                    records[i].bytes.len() + ferrokeeper_storage::log::format::FRAME_HEADER_BYTES;
                if part_bytes + framed > limit && i > part_start {
                    if !append_or_stop(&mut writer, &records[part_start..i], &fail) {
                        return;
                    }
                    part_start = i;
                    part_bytes = 0;
                }
                part_bytes += framed;
            }
            if !append_or_stop(&mut writer, &records[part_start..], &fail) {
                return;
            }
            // Before the ack: a client holding its reply finds its batch counted.
            counters.publish(&writer.stats());
        }
        drop(records);
        for batch in queued {
            if acks.send(batch.seq).await.is_err() {
                return;
            }
        }
        let target = purge_through.load(std::sync::atomic::Ordering::Acquire);
        if target > purged_through {
            let before = writer.segment_names().count();
            if let Err(e) = writer.purge_through(target) {
                fail.stop(format!("transaction log purge failed: {e}"));
                return;
            }
            let removed = before - writer.segment_names().count();
            if removed > 0 {
                tracing::info!(
                    through = format_args!("0x{target:x}"),
                    removed,
                    "purged log segments covered by the oldest retained snapshot"
                );
            }
            purged_through = target;
            counters.publish(&writer.stats());
        }
    }
}

/// Appends, or stops the server without acknowledging anything more: a replica that
/// cannot persist must not serve. Returns whether the append succeeded.
fn append_or_stop(writer: &mut LogWriter, records: &[Record<'_>], fail: &super::FailStop) -> bool {
    match writer.append(records) {
        Ok(()) => true,
        Err(e) => {
            fail.stop(format!("transaction log write failed: {e}"));
            false
        }
    }
}
