//! Errors of the transaction log: one enum for opening, appending, purging and reading.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with the transaction log.
///
/// Operating errors are values; broken invariants of this crate are panics.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A system call on a log file or the log directory failed. During `append` and
    /// `purge_through` this also stops the writer (see [`LogError::Stopped`]).
    #[error("{op} failed on {}: {source}", file.display())]
    Io {
        /// The operation: "write", "fdatasync", "read", "create", "fsync directory", ...
        op: &'static str,
        /// The file (or directory) operated on.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A header or record failed verification where a torn write cannot explain it
    /// (before the tail, or in a sealed segment). The log must not be used until an operator
    /// has looked at it: starting would silently lose acknowledged transactions.
    #[error("transaction log corrupt: {} at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset in that file of the bad header or record.
        offset: u64,
        /// What was wrong, in words.
        reason: String,
    },
    /// Segment indexes jump: a segment between two others is missing.
    #[error(
        "transaction log segment missing between {} (index {before_index}) and {} (index {after_index})",
        before.display(),
        after.display()
    )]
    MissingSegment {
        /// The segment before the gap.
        before: PathBuf,
        /// Its segment index.
        before_index: u64,
        /// The segment after the gap.
        after: PathBuf,
        /// Its segment index (should have been `before_index + 1`).
        after_index: u64,
    },
    /// A segment was written by a newer ferrokeeper in a format version this build does not read.
    #[error("{}: transaction log format version {version} is newer than this build reads (up to {supported})", file.display())]
    UnsupportedVersion {
        /// The segment file.
        file: PathBuf,
        /// Its format version.
        version: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A file in the log directory starts with the segment prefix but is not a segment name.
    #[error("{}: looks like a log segment but is not named {prefix}<16 lowercase hex digits>", file.display())]
    UnexpectedFile {
        /// The file.
        file: PathBuf,
        /// The segment name prefix it starts with (`fk-log.` or `fk-raft.`).
        prefix: &'static str,
    },
    /// [`super::LogOptions`] are inconsistent (a limit below what another limit needs).
    #[error("invalid transaction log options: {0}")]
    InvalidOptions(String),
    /// A record's payload exceeds `record_bytes_max`. Nothing was written.
    #[error(
        "record zxid {zxid:#x} has {bytes} bytes, more than record_bytes_max {record_bytes_max}"
    )]
    RecordTooLarge {
        /// The record's zxid.
        zxid: i64,
        /// Its payload size.
        bytes: usize,
        /// The limit.
        record_bytes_max: usize,
    },
    /// A batch's frames exceed `batch_bytes_max`. Nothing was written.
    #[error("batch of {bytes} framed bytes exceeds batch_bytes_max {batch_bytes_max}")]
    BatchTooLarge {
        /// The batch's framed size.
        bytes: usize,
        /// The limit.
        batch_bytes_max: usize,
    },
    /// A record's zxid is negative or not greater than the zxid before it. Nothing was written.
    #[error("record zxid {zxid:#x} does not follow {last_zxid:?} (zxids must be non-negative and increase)")]
    ZxidOrder {
        /// The offending zxid.
        zxid: i64,
        /// The zxid before it (in the batch or the log), if any.
        last_zxid: Option<i64>,
    },
    /// An earlier write, fdatasync or directory operation failed, so the writer refuses all
    /// further work (fail-stop). Retrying an fsync after a failure can report success for
    /// data that never reached the disk ("fsyncgate"); the only safe path is to restart and
    /// recover from what the disk actually holds.
    #[error("transaction log writer stopped after an earlier failure: {cause}")]
    Stopped {
        /// The first failure, as text.
        cause: String,
    },
    /// A Raft entry's index does not continue the Raft log, or does not fit the log's
    /// i64 keys. Nothing was written.
    #[error("raft entry index {index}: {reason}")]
    RaftIndex {
        /// The offending index.
        index: u64,
        /// What was expected, in words.
        reason: String,
    },
    /// Another writer holds the log directory's lock.
    #[error("{} is locked by another transaction log writer: {source}", dir.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
        /// The error from flock.
        #[source]
        source: io::Error,
    },
}
