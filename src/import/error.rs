//! Why an import failed. Every variant names the file and, where the file's bytes are at
//! fault, the byte offset: for a `.gz` or `.snappy` snapshot the offset counts bytes of
//! the *decompressed* stream, which is what ZooKeeper checksums.

use std::path::PathBuf;

use ferrokeeper_net::DecodeError;

/// An import of a ZooKeeper data directory failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Neither `<dir>/version-2` exists nor is `<dir>` itself a `version-2` directory.
    #[error("{}: no ZooKeeper data here (expected a `version-2` directory in it)", dir.display())]
    NoVersionDir {
        /// The directory given.
        dir: PathBuf,
    },

    /// Listing a directory or reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The snapshot directory holds no `snapshot.<zxid>` file. ZooKeeper 3.5.3 and later
    /// write one when they first start, so its absence means the data is incomplete
    /// (ZooKeeper itself refuses to start from logs alone, ZOOKEEPER-2325).
    #[error("{}: no snapshot.<zxid> file; ZooKeeper data without a snapshot is incomplete", dir.display())]
    NoSnapshot {
        /// The `version-2` directory searched.
        dir: PathBuf,
    },

    /// Every snapshot candidate was rejected. `newest` is why the newest one was.
    #[error("{}: none of {tried} snapshots is valid; the newest: {newest}", dir.display())]
    NoValidSnapshot {
        /// The `version-2` directory searched.
        dir: PathBuf,
        /// How many snapshots were tried.
        tried: usize,
        /// Why the newest candidate was rejected.
        newest: Box<ImportError>,
    },

    /// A file does not start with the magic number of its kind (`ZKSN`, `ZKLG`).
    #[error("{}: byte 0: magic {found:#010x}, expected {expected:#010x} ({})", file.display(), magic_name(*expected))]
    BadMagic {
        /// The file.
        file: PathBuf,
        /// The magic found.
        found: i32,
        /// The magic expected.
        expected: i32,
    },

    /// A file header carries a format version other than 2, the only one ZooKeeper
    /// 3.5–3.9 write: a newer ZooKeeper wrote it, or it is corrupt.
    #[error("{}: byte 4: format version {version}, only version 2 is understood", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found.
        version: i32,
    },

    /// A record does not decode.
    #[error("{}: byte {offset}: malformed {what}: {detail}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// Offset of the record (or the field) that failed.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint (offsets in it are relative to `offset`).
        detail: DecodeError,
    },

    /// A compressed snapshot does not decompress.
    #[error("{}: cannot decompress ({format}): {detail}", file.display())]
    Decompress {
        /// The file.
        file: PathBuf,
        /// `gzip` or `snappy`.
        format: &'static str,
        /// What the decompressor said.
        detail: String,
    },

    /// A snapshot ends before its Adler32 seal, or a length field in it reaches past
    /// its end (which is what a cut inside a length-prefixed field looks like).
    #[error("{}: byte {offset}: snapshot ends (or a length overruns it) while reading {what}", file.display())]
    Truncated {
        /// The file.
        file: PathBuf,
        /// Offset of the field that could not be read whole.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },

    /// A snapshot's Adler32 seal does not match its bytes.
    #[error("{}: byte {offset}: snapshot checksum {stored:#x} stored, {computed:#x} computed", file.display())]
    SnapshotChecksum {
        /// The file.
        file: PathBuf,
        /// Offset of the seal.
        offset: u64,
        /// The seal's value.
        stored: i64,
        /// Adler32 of the bytes before it.
        computed: i64,
    },

    /// A snapshot lists a node before (or without) its parent. ZooKeeper writes nodes
    /// depth first, so this is corruption (`DataTree.deserialize` refuses it too).
    #[error("{}: byte {offset}: node {path} has no parent before it", file.display())]
    MissingParent {
        /// The file.
        file: PathBuf,
        /// Offset of the node's record.
        offset: u64,
        /// The node.
        path: String,
    },

    /// A snapshot node refers to an ACL id that is not in the snapshot's ACL cache, and
    /// no replayed transaction gave the node its ACL.
    #[error("{}: byte {offset}: node {path} refers to ACL {acl_ref}, which the snapshot does not hold", file.display())]
    UnknownAcl {
        /// The snapshot.
        file: PathBuf,
        /// Offset of the node's record.
        offset: u64,
        /// The node.
        path: String,
        /// The ACL id it refers to.
        acl_ref: i64,
    },

    /// A complete log record whose Adler32 checksum does not match: corruption before
    /// the log's tail, which ZooKeeper also refuses to start from.
    #[error("{}: byte {offset}: txn checksum {stored:#x} stored, {computed:#x} computed", file.display())]
    LogChecksum {
        /// The log file.
        file: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The checksum in the record.
        stored: i64,
        /// Adler32 of the record's bytes.
        computed: i64,
    },

    /// A log record with a negative length.
    #[error("{}: byte {offset}: txn length {len}", file.display())]
    LogBadLength {
        /// The log file.
        file: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The length found.
        len: i32,
    },

    /// A log record (or a multi's sub-record) of a type ZooKeeper never logs.
    #[error("{}: byte {offset}: unknown txn type {txn_type}", file.display())]
    UnknownTxnType {
        /// The log file.
        file: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The type found.
        txn_type: i32,
    },

    /// Transactions are missing: zxids went backwards, or skipped within one epoch.
    #[error("{}: byte {offset}: txn zxid {found:#x} follows {previous:#x}: transactions are missing", file.display())]
    LogGap {
        /// The log file.
        file: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The zxid before (the snapshot's, for the first replayed txn).
        previous: i64,
        /// The zxid found.
        found: i64,
    },

    /// A replayed txn contradicts the state in a way that ZooKeeper's own replay could
    /// not have produced (for example, deleting a node that still has children).
    #[error("{}: byte {offset}: txn {zxid:#x}: {detail}", file.display())]
    ReplayConflict {
        /// The log file.
        file: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// The txn's zxid.
        zxid: i64,
        /// What does not fit.
        detail: String,
    },

    /// Writing ferrokeeper's snapshot of the imported state failed.
    #[error("writing the imported snapshot: {detail}")]
    Write {
        /// The writer's error.
        detail: String,
    },
}

fn magic_name(magic: i32) -> &'static str {
    match magic {
        super::format::SNAP_MAGIC => "ZKSN, a snapshot",
        super::format::LOG_MAGIC => "ZKLG, a transaction log",
        _ => "unknown",
    }
}
