//! The standalone server's log appends, made by the commit executor itself.
//!
//! Why here and not on a log executor of its own: a write used to cross threads four
//! times (shard → commit → log → commit → shard), and each crossing of a parked glommio
//! executor costs an eventfd write, a wakeup and a park (measured at 1 write in flight
//! with `forceSync=yes`: p50 440 µs against ZooKeeper's 290–320 µs, 500 µs of server CPU
//! per write against 200–230). The storage's [`LogWriter`] frames a batch
//! ([`LogWriter::stage`]); this module writes it (`pwrite`, into the page cache) and
//! fdatasyncs it through glommio's own io_uring, so that the commit executor sleeps in
//! its ring until the sync completes and is woken by the completion itself, not by
//! another thread. While the sync is in
//! flight the executor keeps running its other tasks: requests from the shards go on
//! into the sequencer and form the next batch (group commit with pipelining).
//!
//! Log format, recovery, torn-tail rules, preallocation and fail-stop are the writer's,
//! unchanged: this module only moves the `write` of a framed batch onto the commit
//! executor and its `fdatasync` onto a ring the executor polls. A segment roll takes the spare segment the
//! writer prepared on its helper thread (a header write and a rename) and a purge only
//! hands its removals to that thread; a roll creates the segment inline (create,
//! fallocate, fsync, directory fsync) only when the spare is not ready yet. With
//! `forceSync=no` the roll's fdatasync of the old segment used to be the longest of them
//! (the whole 64 MiB segment, 100–350 ms): a writeback thread now starts each MiB's
//! writeback as it is appended ([`WRITEBACK_BYTES`]), so the roll waits for about one MiB.

use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ferrokeeper_storage::backend::disk::DiskStorage;
use ferrokeeper_storage::backend::{FileId, Storage};
use ferrokeeper_storage::log::{LogWriter, Record, Staged};
use glommio::io::BufferedFile;

use super::log::{LogBatch, LogCounters};
use super::FailStop;

/// The transaction log as the commit executor drives it: the writer, a glommio handle on
/// the segment being appended to, and retention.
pub struct Appender<S: Storage = DiskStorage> {
    writer: LogWriter<S>,
    /// The current segment (duplicates of the writer's descriptor); replaced when a batch
    /// starts a new segment.
    segment: Option<Segment>,
    /// Zxid through which segments may go (set by the snapshot thread).
    purge_through: Arc<AtomicI64>,
    purged_through: i64,
    /// Zxid through which segments may be compressed (the newest snapshot read back, set
    /// by the snapshot thread); `None` with `ferrokeeper.log.compressSuperseded=false`.
    compress_through: Option<Arc<AtomicI64>>,
    compressed_through: i64,
    /// When the last records were appended: covered segments are compressed once writes
    /// have paused for [`COMPRESS_QUIET`] (or [`COMPRESS_BACKLOG`] of them pile up).
    appended_at: Option<std::time::Instant>,
    counters: Arc<LogCounters>,
    fail: FailStop,
    /// With `forceSync=no`: the thread that starts segment writeback, once needed.
    writeback: Option<std::sync::mpsc::SyncSender<WritebackRange>>,
}

/// Covered segments are handed over for compression once no records have been appended
/// for this long (the commit stage asks on its idle turns, [`Appender::idle`]), the same
/// pause after which the commit stage folds its overlay into a snapshot.
///
/// Compressing a 64 MiB segment takes ~150 ms of a core (zstd level 1). During a write
/// burst that is CPU the shards and the client need: measured with the compression
/// running right after each snapshot, a closed-loop setData cost 3.4 µs of server CPU
/// against 3.1 with compression off, p99 3.4–4.0 ms against 2.4–2.9 and max latency
/// 9.4–15.8 ms against 7.4–8.6 (three alternating runs each,
/// `bench/results/log-compress-quiet-2026-12-07.md`).
pub const COMPRESS_QUIET: std::time::Duration = crate::snapshot::FOLD_QUIET;

/// This many covered segments left plain are compressed at once even while writes go on
/// (16 × 64 MiB = 1 GiB, what ~8 s of closed-loop `multi` writes here, ~15 s of setData):
/// a burst shorter than that never shares its CPU with the compressor, and a server that
/// is never quiet still keeps its dataDir within 1 GiB of what it would be, paying the
/// compression's CPU (~0.3 µs per setData) as it goes.
pub const COMPRESS_BACKLOG: usize = 16;

/// A range of a segment whose writeback is to be started.
type WritebackRange = (Arc<std::fs::File>, u64, u64);

/// The segment being appended to, as this executor writes and syncs it.
struct Segment {
    /// The writer's id of it, to see when a batch has started a new one.
    id: FileId,
    /// For the write (shared with the writeback thread).
    file: Arc<std::fs::File>,
    /// The same file on this executor's ring, for the fdatasync.
    ring: BufferedFile,
    /// With `forceSync=no`: the offset up to which writeback has been started
    /// ([`WRITEBACK_BYTES`]).
    writeback_from: u64,
}

/// With `forceSync=no`, the kernel is asked to start writing a segment's pages back each
/// time this many more bytes have been appended (`sync_file_range(SYNC_FILE_RANGE_WRITE)`,
/// which starts the IO and does not wait for it). The roll's fdatasync of the old segment,
/// which keeps a torn tail possible only in the newest segment, then waits for at most
/// about this much instead of the whole segment: that wait was a 100–150 ms stall of every
/// write when a 64 MiB segment rolled (RocksDB's `bytes_per_sync` does the same).
/// `sync_file_range` itself blocks while the device queue is congested (up to ~15 ms was
/// measured here), so it is called on a thread of its own, never on the commit executor.
const WRITEBACK_BYTES: u64 = 1 << 20;
/// An append's write and fdatasync that take longer are logged with the batch's size and
/// offset in the segment.
const SYNC_SLOW: std::time::Duration = std::time::Duration::from_millis(10);
/// Ranges waiting for the writeback thread; when it falls behind, more are skipped (the
/// roll's fdatasync still syncs everything).
const WRITEBACK_QUEUE_MAX: usize = 64;

impl<S: Storage> Appender<S> {
    /// Takes over `writer` (recovered and replayed) for the commit executor.
    pub fn new(
        writer: LogWriter<S>,
        purge_through: Arc<AtomicI64>,
        counters: Arc<LogCounters>,
        fail: FailStop,
    ) -> Appender<S> {
        counters.publish(&writer.stats());
        Appender {
            writer,
            segment: None,
            purge_through,
            purged_through: -1,
            compress_through: None,
            compressed_through: -1,
            appended_at: None,
            counters,
            fail,
            writeback: None,
        }
    }

    /// Compresses the segments covered by the newest snapshot read back
    /// (`compress_through`; `None`: never).
    pub fn compressing(mut self, compress_through: Option<Arc<AtomicI64>>) -> Appender<S> {
        self.compress_through = compress_through;
        self
    }

    /// Appends the records of `batches` (one write and, with `forceSync`, one fdatasync
    /// for all of them unless they exceed `batch_bytes_max`, which splits them in parts).
    /// Returns once they are durable; `false` when the log failed, after stopping the
    /// server (fail-stop): nothing more may be acknowledged.
    pub async fn append(&mut self, batches: &[LogBatch]) -> bool {
        let mut records: Vec<Record<'_>> = Vec::new();
        for batch in batches {
            let mut start = 0;
            for &(zxid, end) in &batch.records {
                records.push(Record {
                    zxid,
                    bytes: &batch.bytes[start..end],
                });
                start = end;
            }
        }
        if records.is_empty() {
            return true;
        }
        self.appended_at = Some(std::time::Instant::now());
        // More than the log takes at once goes in parts; the replies wait for the last
        // part, so acknowledgement is still per batch.
        let limit = self.writer.options().batch_bytes_max;
        let mut part_start = 0;
        let mut part_bytes = 0;
        for i in 0..records.len() {
            let framed =
                records[i].bytes.len() + ferrokeeper_storage::log::format::FRAME_HEADER_BYTES;
            if part_bytes + framed > limit && i > part_start {
                if !self.append_part(&records[part_start..i]).await {
                    return false;
                }
                part_start = i;
                part_bytes = 0;
            }
            part_bytes += framed;
        }
        if !self.append_part(&records[part_start..]).await {
            return false;
        }
        // Before the replies: a client holding its reply finds its batch counted.
        self.counters.publish(&self.writer.stats());
        true
    }

    /// Stages, writes and finishes one part; `false` after a fail-stop.
    async fn append_part(&mut self, records: &[Record<'_>]) -> bool {
        let before = self.writer.stats();
        let started = std::time::Instant::now();
        let staged = self.writer.stage(records);
        let after = self.writer.stats();
        if after.segments_created > before.segments_created {
            // The roll ran on this executor: every write waited for it. Logged with its
            // duration so that a stall is attributed (a spare renamed into place, or a
            // segment created inline because the spare was not ready).
            tracing::info!(
                elapsed = ?started.elapsed(),
                inline = after.rolls_inline > before.rolls_inline,
                "log segment rolled on the commit executor"
            );
        }
        let staged = match staged {
            Ok(Some(staged)) => staged,
            Ok(None) => return true,
            Err(e) => {
                self.fail.stop(format!("transaction log write failed: {e}"));
                return false;
            }
        };
        let written = self.write(&staged).await;
        match self.writer.finish_staged(staged, written) {
            Ok(_) => true,
            Err(e) => {
                self.fail.stop(format!("transaction log write failed: {e}"));
                false
            }
        }
    }

    /// Writes the staged batch at its offset and, with `forceSync`, fdatasyncs it on this
    /// executor's ring; through the writer's own storage (blocking) when the storage has
    /// no real file to share.
    ///
    /// The write itself is a plain `pwrite` into the page cache, made here, blocking for
    /// the few microseconds of the copy; only the fdatasync goes through the ring. Measured
    /// against writing through the ring too (write, then fdatasync, two ring round trips,
    /// each of which io_uring hands to a kernel worker): on tmpfs, where the sync costs
    /// nothing and the path's own overhead shows, p50 at 1 write in flight 153–204 µs
    /// against 178–274 µs, and at 16 in flight 21.0k–26.2k writes/s against 19.4k–20.8k.
    async fn write(&mut self, staged: &Staged) -> std::io::Result<()> {
        if self.segment.as_ref().map(|s| s.id) != Some(staged.file()) {
            if let Some(old) = self.segment.take() {
                // The writer has synced and closed its own descriptor of it; these have
                // nothing left to flush.
                let _ = old.ring.close().await;
            }
            let Some(file) = self.writer.staged_file(staged)? else {
                return self.writer.write_staged(staged);
            };
            let for_ring = file.try_clone()?;
            // SAFETY: `into_raw_fd` hands over a descriptor nobody else owns or closes.
            let ring = unsafe { BufferedFile::from_raw_fd(for_ring.into_raw_fd()) };
            self.segment = Some(Segment {
                id: staged.file(),
                file: Arc::new(file),
                ring,
                writeback_from: staged.offset(),
            });
        }
        let Some(segment) = self.segment.as_mut() else {
            unreachable!("the segment was opened above");
        };
        let bytes = self.writer.staged_bytes();
        let started = std::time::Instant::now();
        segment.file.write_all_at(bytes, staged.offset())?;
        if self.writer.options().force_sync {
            let written = started.elapsed();
            segment.ring.fdatasync().await?;
            let synced = started.elapsed() - written;
            if written + synced >= SYNC_SLOW {
                // Where a write stall of forceSync=yes comes from (issue #13): the page-cache
                // copy, or the fdatasync (the kernel's, plus the wait for its completion).
                tracing::info!(
                    ?written,
                    ?synced,
                    bytes = bytes.len(),
                    offset = staged.offset(),
                    "slow log write + fdatasync"
                );
            }
            self.writer.record_append_sync(synced);
        } else {
            let end = staged.offset() + bytes.len() as u64;
            if end >= segment.writeback_from + WRITEBACK_BYTES {
                let range = (segment.file.clone(), segment.writeback_from, end);
                segment.writeback_from = end;
                if self.writeback.is_none() {
                    self.writeback = spawn_writeback();
                }
                if let Some(tx) = &self.writeback {
                    let _ = tx.try_send(range);
                }
            }
        }
        Ok(())
    }

    /// Removes segments wholly covered by the oldest retained snapshot, if the snapshot
    /// thread moved that mark, and hands segments wholly covered by the newest one to the
    /// log's helper thread for compression if [`COMPRESS_BACKLOG`] of them wait (else
    /// [`Appender::idle`] does, once writes pause); `false` after a fail-stop. Runs after
    /// a batch is published, so a purge waits for the next write after a snapshot.
    ///
    /// The compression itself runs on the log's helper thread, between its other tasks
    /// (`ferrokeeper_storage` `log/writer/background.rs` says why there): here it is only
    /// a look at the segment list.
    pub fn purge(&mut self) -> bool {
        if !self.compress(false) {
            return false;
        }
        let target = self.purge_through.load(Ordering::Acquire);
        if target <= self.purged_through {
            return true;
        }
        let before = self.writer.segment_names().count();
        let started = std::time::Instant::now();
        if let Err(e) = self.writer.purge_through(target) {
            self.fail.stop(format!("transaction log purge failed: {e}"));
            return false;
        }
        let removed = before - self.writer.segment_names().count();
        if removed > 0 {
            tracing::info!(
                through = format_args!("0x{target:x}"),
                removed,
                elapsed = ?started.elapsed(),
                "purged log segments covered by the oldest retained snapshot (removed in the background)"
            );
        }
        self.purged_through = target;
        self.counters.publish(&self.writer.stats());
        true
    }

    /// The commit stage's turn with nothing to write: hands the covered segments over for
    /// compression once writes have paused for [`COMPRESS_QUIET`]; `false` after a
    /// fail-stop.
    pub fn idle(&mut self) -> bool {
        let quiet = self
            .appended_at
            .is_none_or(|at| at.elapsed() >= COMPRESS_QUIET);
        !quiet || self.compress(true)
    }

    /// Hands the segments the newest snapshot covers over for compression, if that mark
    /// moved and writes are `quiet` or [`COMPRESS_BACKLOG`] covered segments wait;
    /// `false` after a fail-stop.
    fn compress(&mut self, quiet: bool) -> bool {
        let Some(through) = &self.compress_through else {
            return true;
        };
        let target = through.load(Ordering::Acquire);
        if target <= self.compressed_through {
            return true;
        }
        if !quiet && self.writer.plain_covered(target) < COMPRESS_BACKLOG {
            return true;
        }
        match self.writer.compress_through(target) {
            // Every covered segment was handed over.
            Ok(true) => self.compressed_through = target,
            // One waits for its seal: asked again after the next batch.
            Ok(false) => {}
            Err(e) => {
                self.fail
                    .stop(format!("transaction log compression failed: {e}"));
                return false;
            }
        }
        true
    }
}

/// Starts the thread that starts segment writeback ([`WRITEBACK_BYTES`]); it ends when the
/// appender drops its sender. `None` if no thread can be started: then nothing is written
/// back early, which only makes rolls slower.
fn spawn_writeback() -> Option<std::sync::mpsc::SyncSender<WritebackRange>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<WritebackRange>(WRITEBACK_QUEUE_MAX);
    let spawned = std::thread::Builder::new()
        .name("log-writeback".into())
        .spawn(move || {
            for (file, from, to) in rx {
                start_writeback(&file, from, to);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "no log writeback thread; segment rolls sync more");
            None
        }
    }
}

/// Starts writing `[from, to)` of `file` back to disk without waiting for it (see
/// [`WRITEBACK_BYTES`]). Only an optimisation: a failure is ignored (the roll's
/// fdatasync, which does wait, reports real IO errors).
fn start_writeback(file: &std::fs::File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range on a descriptor we own; no memory is passed.
    let _ = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}
