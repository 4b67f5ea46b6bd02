//! # ferrokeeper-storage — the transaction log and snapshot files
//!
//! ## What this crate owns
//! - [`log`]: the transaction log. Segment files (`fk-log.<16 hex digits of the first
//!   zxid>`) of checksummed records, preallocated with `fallocate`, appended in
//!   group-committed batches (one write + one fdatasync per batch, linked on io_uring),
//!   recovered on open (torn tail cut, corruption refused with file and byte offset),
//!   replayed with [`log::read`], trimmed with [`log::LogWriter::purge_through`];
//!   segments a snapshot covers compressed to `<segment>.zst` in the background
//!   ([`log::LogWriter::compress_through`]) and decompressed at open when a replay needs
//!   them (`storage/FORMAT.md`, "Compressed segments").
//!   The byte layout and the recovery rules are in `storage/FORMAT.md`;
//!   [`log::format`] mirrors it with named offset constants.
//! - [`raftlog`]: the Raft log of the replicated ensemble, on the same segments and frames
//!   (`fk-raft.<16 hex digits of the first index>`, magic `FKRAFTLG`): the frame's key is
//!   the Raft index, the payload the term, the kind and the entry's data; suffix
//!   truncation for Raft's conflicts; a hard-state file of two checksummed slots, synced
//!   before a save returns. Raft-agnostic: the server wraps it in raft-rs's `Storage`.
//! - [`snapshot`]: snapshot files (`fk-snap.<16 hex digits of the zxid>`): a checksummed
//!   header framing an opaque payload (the server's serialized state), written to a temp
//!   file, fsynced, renamed and the directory fsynced; listed, verified (errors name the
//!   file and byte offset) and trimmed to the newest N ([`snapshot::retain`]).
//! - [`backend`]: the storage seam. [`backend::Storage`] is the handful of file operations
//!   the log and the snapshot files use; [`backend::disk::DiskStorage`] implements it on a real directory
//!   (io_uring, falling back to `pwrite` + `fdatasync` with a warning where io_uring is
//!   unavailable); [`backend::sim::SimStorage`] implements it in memory with a model of
//!   written-versus-durable bytes and seeded faults, for the crash tests.
//!
//! ## The API in one place
//! ```text
//! LogWriter::open(dir, LogOptions) -> (LogWriter, Recovered)       // recover, then append
//! LogWriter::open_with(storage, LogOptions)                        // any Storage (the simulator)
//! LogWriter::append(&[Record { zxid, bytes }]) -> Result<()>       // durable on Ok
//! LogWriter::stage(&[Record]) -> Option<Staged>                    // append in halves: frame,
//! LogWriter::{staged_bytes, staged_file}  ... caller writes + syncs  //   the caller's own IO,
//! LogWriter::finish_staged(Staged, io::Result<()>) -> Result<u64>   //   then the outcome
//! LogWriter::purge_through(zxid) -> Result<()>                     // retention
//! LogWriter::compress_through(zxid) -> Result<bool>                // <segment>.zst, background
//! LogWriter::open_replaying(dir, opts, after_zxid, visit)          // decompress what replay needs
//! LogWriter::{last_zxid, tail, segment_names, stats, stopped, io_mode}
//! log::read(dir, after_zxid) -> impl Iterator<Item = Result<OwnedRecord>>   // replay
//! log::read_with(storage, after_zxid)
//! RaftLog::open(dir, LogOptions) -> (RaftLog, raftlog::Recovered { entries, hard_state, .. })
//! RaftLog::append(&[EntryRef { index, term, kind, data }])        // durable on Ok; cuts a conflict
//! RaftLog::{truncate_from(index), purge_through(index), save_hard_state(&HardState)}
//! RaftLog::{first_index, last_index, stats, stopped}
//! snapshot::write(dir, zxid, payload) -> path                      // durable on Ok
//! snapshot::list(dir) -> Vec<SnapshotFile>   snapshot::read(&file) -> Snapshot (verified)
//! snapshot::retain(dir, keep) -> kept       snapshot::remove_temp_files(dir)
//! snapshot::compress_superseded_with(storage, level)   snapshot::restore_with(storage, &file)
//! snapshot::{retain_claimed, compress_superseded_claimed_with}(.., claim)  // skip what is refused
//! snapshot::{write,list,read,retain,remove_temp_files}_with(storage, ..)  // any Storage
//! ```
//!
//! ## What it must never do
//! - Depend on another workspace crate (nor on the `raft` crate), or know what a payload
//!   means: it stores the server's serialized transactions as opaque bytes, keyed by zxid,
//!   and Raft entries as a term, a kind number and opaque data, keyed by index.
//! - Retry an fsync after a failure, or append after any write or sync error (fail-stop).
//! - Surface a partial record, or start from a log that is corrupt before its tail.
//! - Allocate per append: the batch buffer is sized by `batch_bytes_max` once, at open.
//!
//! ## Threads
//! None of its own. [`log::LogWriter`] is blocking and single-threaded; the server runs it
//! on its commit thread (or a thread of its own) and hands it one batch at a time. A caller
//! with an io_uring of its own (the server's commit executor) stages a batch, writes and
//! syncs it asynchronously, and finishes it: only a segment roll then blocks.
#![warn(missing_docs)]
// What a client, a file or the network can make fail is never unwrapped (STYLE.md);
// unit tests may (clippy.toml).
#![deny(clippy::unwrap_used)]

pub mod backend;
pub mod log;
pub mod raftlog;
pub mod snapshot;
