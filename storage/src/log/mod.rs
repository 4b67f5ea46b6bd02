//! The transaction log: segment files of checksummed records, appended in group-committed
//! batches, recovered on open.
//!
//! - [`LogWriter::open`] scans and verifies every segment, repairs a torn tail, and refuses
//!   corruption (naming the file and byte offset).
//! - [`LogWriter::append`] makes one batch durable with one write and one fdatasync.
//! - [`LogWriter::purge_through`] removes old whole segments.
//! - [`read`] replays records after a zxid.
//!
//! The byte layout and the recovery rules are in `storage/FORMAT.md`; [`format`](mod@format) mirrors it.

pub mod format;
pub mod scan;

mod compress;
mod error;
mod reader;
mod segments;
mod writer;

pub use crate::backend::disk::IoMode;
pub use compress::ZSTD_LEVEL;
pub use error::LogError;
pub use reader::{read, read_with, LogReader};
pub(crate) use writer::open_locked;
pub use writer::{LogWriter, Recovered, ReplayVisitor, Staged, TornTail};

/// Default `segment_bytes`: 64 MiB, ZooKeeper's default `preAllocSize`.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Default `record_bytes_max`: 2 MiB, room for a transaction carrying a request at
/// ZooKeeper's default `jute.maxbuffer` (1 MiB) plus its paths and ACLs.
pub const RECORD_BYTES_MAX_DEFAULT: usize = 2 * 1024 * 1024;
/// Default `batch_bytes_max`: 8 MiB of frames per append.
pub const BATCH_BYTES_MAX_DEFAULT: usize = 8 * 1024 * 1024;

/// Limits and switches of the transaction log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Size every new segment is preallocated to (ZooKeeper's `preAllocSize`). A batch that
    /// does not fit in the rest of the current segment starts a new one.
    /// Must be `>= HEADER_BYTES + batch_bytes_max` and `<= format::SEGMENT_BYTES_MAX`.
    pub segment_bytes: u64,
    /// Whether `append` fdatasyncs (ZooKeeper's `forceSync`). `false` trades durability of
    /// acknowledged writes for speed: a power cut may lose them (never corrupt the log).
    pub force_sync: bool,
    /// Largest payload of one record, in bytes.
    pub record_bytes_max: usize,
    /// Largest batch, in framed bytes (24 bytes of frame header per record plus payloads).
    /// The writer's buffer is allocated at this size once, up front.
    pub batch_bytes_max: usize,
    /// Whether a spare segment is filled with written zeros after `fallocate`, on the
    /// log's helper thread (default on; a segment created inline because no spare was
    /// ready is never zero-filled).
    ///
    /// `fallocate` keeps the file size fixed, so an append's fdatasync never commits a size
    /// change. But ext4 and XFS allocate *unwritten* extents, and the first write into one
    /// converts it, a metadata change that the next fdatasync must commit. Writing zeros
    /// once per segment (PostgreSQL's `wal_init_zero`) avoids that, at the price of writing
    /// the segment twice (100–300 ms of writing for 64 MiB on the development disk, which
    /// is why it happens on the helper thread, never on the commit path). Measured there in
    /// quiet moments: no difference for batches of one 100-byte record; for 31 KiB batches,
    /// zero-filled segments cut the append's p50 from ~300 µs to ~180 µs. It also makes a
    /// seal's fdatasyncs (with `force_sync` off) data-only: no journal commit. And it pays
    /// with `force_sync` off too, where no append waits for a sync: a server alone with
    /// `forceSync=no` and zero fill off did 5-15 % fewer closed-loop writes at as much or
    /// more CPU per write (`bench/results/deferred-seal-2026-12-06.md`); a buffered write
    /// into an unwritten extent costs more than one into written zeros. The zeros go to the disk a chunk at a time, each
    /// written back before the next, so that they never queue in front of an append's
    /// fdatasync (flushed all at once, they made appends' syncs wait 10–24 ms).
    pub segment_zero_fill: bool,
    /// How writes reach the disk.
    pub io: IoMode,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            force_sync: true,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            segment_zero_fill: true,
            io: IoMode::Auto,
        }
    }
}

impl LogOptions {
    /// Checks that the limits fit together.
    pub fn validate(&self) -> Result<(), LogError> {
        let bad = |m: String| Err(LogError::InvalidOptions(m));
        if self.record_bytes_max == 0 || self.record_bytes_max > u32::MAX as usize {
            return bad(format!(
                "record_bytes_max {} must be in 1..=u32::MAX",
                self.record_bytes_max
            ));
        }
        if format::frame_bytes(self.record_bytes_max) > self.batch_bytes_max {
            return bad(format!(
                "batch_bytes_max {} must hold one framed record of record_bytes_max {} ({} bytes)",
                self.batch_bytes_max,
                self.record_bytes_max,
                format::frame_bytes(self.record_bytes_max)
            ));
        }
        let min = (format::HEADER_BYTES + self.batch_bytes_max) as u64;
        if self.segment_bytes < min || self.segment_bytes > format::SEGMENT_BYTES_MAX {
            return bad(format!(
                "segment_bytes {} must be in {min}..={} (header plus batch_bytes_max, up to u32 offsets)",
                self.segment_bytes,
                format::SEGMENT_BYTES_MAX
            ));
        }
        Ok(())
    }
}

/// One record to append: an opaque payload (the server's serialized txn) and its zxid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The transaction's zxid; must be greater than every zxid before it in the log.
    pub zxid: i64,
    /// The payload, at most `record_bytes_max` bytes.
    pub bytes: &'a [u8],
}

/// What the writer frames: a record's key (zxid, or Raft index) and its payload, which the
/// writer asks to write itself into the batch buffer, so that a payload made of parts is
/// copied once, straight into the frame.
pub(crate) trait Payload {
    /// The frame's i64 key.
    fn key(&self) -> i64;
    /// Exactly the number of bytes [`Payload::write_payload`] appends.
    fn payload_bytes(&self) -> usize;
    /// Appends the payload to `out`.
    fn write_payload(&self, out: &mut Vec<u8>);
}

impl Payload for Record<'_> {
    fn key(&self) -> i64 {
        self.zxid
    }
    fn payload_bytes(&self) -> usize {
        self.bytes.len()
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bytes);
    }
}

/// A record read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The transaction's zxid.
    pub zxid: i64,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// Counters of a writer's work since it opened, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Batches appended.
    pub appends: u64,
    /// Records appended.
    pub records: u64,
    /// Framed bytes appended.
    pub bytes: u64,
    /// fdatasyncs issued (linked to an append's write, a seal's, or in recovery).
    pub fdatasyncs: u64,
    /// Full fsyncs issued (new segment files and the directory).
    pub fsyncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments removed (purged, or empty at recovery).
    pub segments_removed: u64,
    /// Segments covered by a snapshot compressed to `<name>.zst` in the background.
    pub segments_compressed: u64,
    /// Spare segments prepared ahead of need, off the commit path.
    pub spares_prepared: u64,
    /// Rolls that found no spare ready and created the new segment inline, on the commit
    /// path (the first roll of a fresh log always does).
    pub rolls_inline: u64,
    /// Finished segments sealed by the helper thread (with `force_sync` off: the segment's
    /// fdatasync, then the next one's), off the commit path.
    pub seals_deferred: u64,
    /// The appends' syncs timed, in whole milliseconds as ZooKeeper's `fsynctime`
    /// summary records them (`FileTxnLog.commit` times `FileChannel.force`): how many,
    /// their sum, smallest and largest. Only the sync that makes an append durable
    /// counts, not recovery's or a roll's.
    pub append_syncs: SyncTimes,
}

/// Durations of syncs in whole milliseconds (count, sum, min, max).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncTimes {
    /// Syncs timed.
    pub count: u64,
    /// Their durations' sum, ms.
    pub sum_ms: u64,
    /// The shortest, ms (0 before the first).
    pub min_ms: u64,
    /// The longest, ms.
    pub max_ms: u64,
}

impl SyncTimes {
    /// Adds one sync that took `elapsed` (truncated to whole ms, as Java's
    /// `TimeUnit.NANOSECONDS.toMillis`).
    pub fn record(&mut self, elapsed: std::time::Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.count += 1;
    }
}
