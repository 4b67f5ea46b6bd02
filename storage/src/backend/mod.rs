//! The storage seam: the few file operations the log needs, behind a trait.
//!
//! Production and simulation run the same log code (TigerBeetle's habit): [`disk::DiskStorage`]
//! talks to a real directory through io_uring (or `pwrite` + `fdatasync` where io_uring is
//! unavailable); [`sim::SimStorage`] keeps files in memory, models written-versus-durable
//! bytes, and injects seeded faults (torn writes, lost unsynced data, bit flips, failed
//! writes and fsyncs).
//!
//! The trait is deliberately blocking and single-threaded: the log writer owns one storage
//! and runs on its own thread. Work that must stay off the commit path (preparing the next
//! log segment) gets a second handle on the same directory ([`Storage::helper`]) and runs
//! on a helper thread; a storage that cannot be shared across threads (the simulator)
//! returns none, and the log then runs that work inline, a few steps at a time, at points
//! the storage chooses ([`Storage::background_steps`]), so that a seed replays exactly.

use std::io;
use std::path::PathBuf;

pub mod disk;
pub mod sim;

/// Whether [`Storage::rename`] may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with `AlreadyExists` if the target exists (`RENAME_NOREPLACE`).
    Never,
    /// Atomically replace the target if it exists (POSIX `rename`).
    Allow,
}

/// A file opened through a [`Storage`]. Only meaningful to the storage that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(pub(crate) u32);

/// One directory of files, as the log sees it.
///
/// Contract, which both implementations keep and the simulator checks:
/// - `write_at` with `sync = true` returns `Ok` only after the bytes are durable
///   (the same as `write_at` then `sync_data`, but one submission on io_uring).
/// - Bytes written without a later successful sync may be lost, or torn, by a crash.
/// - A created, renamed or removed name is durable only after a successful `sync_dir`.
///   Until then a crash may keep any prefix of those directory changes, in order (a
///   journalling filesystem commits them in order); a rename is atomic (the old name or
///   the new one, never both or neither).
/// - After an error from `write_at`, `sync_data` or `sync_all`, nothing is promised about
///   the unsynced bytes of that file, and a later successful sync does not make them
///   durable (Linux marks failed pages clean: "fsyncgate"). Callers must stop.
pub trait Storage {
    /// The path (or a descriptive name) of `name`, for error messages.
    fn path(&self, name: &str) -> PathBuf;
    /// Names of the regular files in the directory, in no particular order.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// Creates `name`, which must not exist, opened for reading and writing.
    fn create(&mut self, name: &str) -> io::Result<FileId>;
    /// Opens the existing file `name` for reading and writing.
    fn open(&mut self, name: &str) -> io::Result<FileId>;
    /// Closes a file. The id must not be used again.
    fn close(&mut self, file: FileId);
    /// Removes `name` from the directory (durable after `sync_dir`).
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Renames `from` to `to` within the directory (durable after `sync_dir`).
    fn rename(&mut self, from: &str, to: &str, overwrite: Overwrite) -> io::Result<()>;
    /// Makes creations, renames and removals in the directory durable (fsync of the directory).
    fn sync_dir(&mut self) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&mut self, file: FileId) -> io::Result<u64>;
    /// Reserves space so that the file is at least `len_bytes` long (fallocate); new bytes read as zero.
    fn allocate(&mut self, file: FileId, len_bytes: u64) -> io::Result<()>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`; with `sync`, also makes it durable before returning.
    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8], sync: bool) -> io::Result<()>;
    /// Makes the file's written data durable (fdatasync).
    fn sync_data(&mut self, file: FileId) -> io::Result<()>;
    /// Makes the file's data and metadata durable (fsync).
    fn sync_all(&mut self, file: FileId) -> io::Result<()>;
    /// Writes the written bytes of `[offset, offset + len)` out to the disk and waits for
    /// them, to pace a large write so that it never fills the device's queue at once. Not
    /// a sync: no metadata, no cache flush, nothing is promised durable (a later
    /// [`Storage::sync_all`] or [`Storage::sync_data`] does that). The default does
    /// nothing (the simulator, which has no queue to fill).
    fn write_back(&mut self, _file: FileId, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// `file` mapped read-only into memory, where the storage can (the disk can; the
    /// simulator answers `None` and callers read instead).
    fn map(&mut self, _file: FileId) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
    /// A handle of its own on the open `file` (a duplicated descriptor), for a caller that
    /// writes through its own io_uring instead of [`Storage::write_at`]. `None` (the
    /// default) when the storage has no real file behind `file` (the simulator).
    fn try_clone_file(&self, _file: FileId) -> io::Result<Option<std::fs::File>> {
        Ok(None)
    }
    /// A second, independent handle on the same directory that a helper thread may own,
    /// for work kept off the commit path. `None` (the default) when this storage cannot be
    /// shared across threads: the caller then runs that work inline, see
    /// [`Storage::background_steps`].
    fn helper(&self) -> io::Result<Option<Box<dyn Storage + Send>>> {
        Ok(None)
    }
    /// For a storage without a [`Storage::helper`]: how many steps of background work to
    /// run inline now (the log asks after each append). The simulator draws it from its
    /// seed, so that background work lands between appends in every possible way.
    fn background_steps(&mut self) -> u32 {
        1
    }
}
