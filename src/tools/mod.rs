//! # tools — offline work on data directories, and the way back to Apache ZooKeeper
//!
//! What `ferrokeeper`'s subcommands do, as library functions (the binary adds only
//! argument parsing and progress bars):
//!
//! - [`datadir::load`]: a ferrokeeper data directory's state (newest snapshot, then the
//!   log), read without writing to the directory.
//! - [`export::write_zookeeper_snapshot`]: a state written as an Apache ZooKeeper 3.8/3.9
//!   `version-2` snapshot, to any `std::io::Write` (a file for `ferrokeeper export`, an
//!   HTTP body for the AdminServer's `snapshot` command).
//! - [`inspect`]: the log printed one txn per line (as ZooKeeper's `TxnLogToolkit`
//!   prints its logs), a snapshot printed node by node (as `SnapshotFormatter`), the
//!   tree digest, and a verification of every snapshot and log record.
//!
//! Must never: write into the directory it reads, or panic on any file content (a
//! damaged file is an error naming the file and the byte offset).

pub mod datadir;
pub mod export;
pub mod inspect;

use std::path::PathBuf;

pub use export::{write_zookeeper_snapshot, write_zookeeper_snapshot_with, ExportSummary};

/// Why a tool could not read a data directory.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A system call failed on a file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The snapshot directory could not be listed, or a snapshot failed verification
    /// (names the file and byte offset).
    #[error(transparent)]
    Snapshot(ferrokeeper_storage::snapshot::SnapshotError),
    /// The log is damaged, does not decode, or does not continue the snapshot (names the
    /// file and byte offset, or the zxid).
    #[error(transparent)]
    Log(crate::commit::log::ReplayError),
    /// The snapshot given is not a ferrokeeper snapshot file.
    #[error("{}: not a ferrokeeper snapshot file (fk-snap.<16 hex digits>, or that plus .zst)", path.display())]
    NotASnapshot {
        /// The path given.
        path: PathBuf,
    },
}
