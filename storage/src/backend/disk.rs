//! The real directory: io_uring for the append path, std for everything else.
//!
//! Why io_uring for a blocking writer: the write and its fdatasync go to the kernel as two
//! linked submissions in one `io_uring_enter` (the fdatasync starts only if the write fully
//! succeeded), and the ring is the seam through which the writer later moves to registered
//! buffers or polled completion without changing the log. Why one ring per writer: the log
//! writer is the only submitter (a future `SINGLE_ISSUER` ring), and its completions are
//! never mixed with other traffic.
//!
//! Where io_uring is unavailable (old kernel, `kernel.io_uring_disabled`, a seccomp filter),
//! [`IoMode::Auto`] falls back to `pwrite` + `fdatasync` and says so once with a warning.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::{FileId, Overwrite, Storage};

/// How [`DiskStorage`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring if the kernel offers it (write and fsync opcodes), else `pwrite` + `fdatasync`
    /// with a warning.
    #[default]
    Auto,
    /// io_uring, or fail to open.
    IoUring,
    /// `pwrite` + `fdatasync`, no ring.
    Pwrite,
}

/// Submission queue entries: a write and its linked fdatasync are the most in flight.
const RING_ENTRIES: u32 = 8;
const USER_DATA_WRITE: u64 = 1;
const USER_DATA_FSYNC: u64 = 2;

/// A directory of files on a real filesystem.
pub struct DiskStorage {
    dir: PathBuf,
    dir_file: File,
    files: HashMap<u32, File>,
    next_id: u32,
    /// `Some` when writes go through io_uring.
    ring: Option<IoUring<squeue::Entry, cqueue::Entry>>,
}

impl DiskStorage {
    /// Opens `dir` (creating it and its parents if missing) with the given write path.
    pub fn open(dir: &Path, mode: IoMode) -> io::Result<DiskStorage> {
        DiskStorage::open_with_ring(dir, mode, new_ring)
    }

    /// [`DiskStorage::open`] with the ring built by `make_ring`, so that tests can make
    /// io_uring "unavailable" and exercise the fallback.
    fn open_with_ring(
        dir: &Path,
        mode: IoMode,
        make_ring: impl FnOnce() -> io::Result<IoUring<squeue::Entry, cqueue::Entry>>,
    ) -> io::Result<DiskStorage> {
        fs::create_dir_all(dir)?;
        // The directory's own entry, and its parents' up to the root, must survive a crash
        // like any file creation, whoever created them (the server creates its data
        // directories itself, before the log or a snapshot opens them). A directory with
        // nothing pending syncs cheaply; this runs once per writer open or snapshot.
        sync_ancestors(dir)?;
        let dir_file = File::open(dir)?;
        let ring = match mode {
            IoMode::Pwrite => None,
            IoMode::IoUring => Some(make_ring()?),
            IoMode::Auto => match make_ring() {
                Ok(ring) => Some(ring),
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "io_uring unavailable; the transaction log falls back to pwrite + fdatasync"
                    );
                    None
                }
            },
        };
        Ok(DiskStorage {
            dir: dir.to_path_buf(),
            dir_file,
            files: HashMap::new(),
            next_id: 0,
            ring,
        })
    }

    /// Opens the existing `dir` without a ring and without syncing anything: for reading
    /// (replay, listing), and for the occasional removal (whose caller syncs the directory).
    pub fn open_read_only(dir: &Path) -> io::Result<DiskStorage> {
        let dir_file = File::open(dir)?;
        Ok(DiskStorage {
            dir: dir.to_path_buf(),
            dir_file,
            files: HashMap::new(),
            next_id: 0,
            ring: None,
        })
    }

    /// The write path in use: [`IoMode::IoUring`] or [`IoMode::Pwrite`].
    pub fn io_mode(&self) -> IoMode {
        if self.ring.is_some() {
            IoMode::IoUring
        } else {
            IoMode::Pwrite
        }
    }

    /// Takes an exclusive advisory lock (`flock`) on the directory for as long as this
    /// storage lives, so that two writers never append to one log.
    pub fn lock_exclusive(&mut self) -> io::Result<()> {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(self.dir_file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn file(&self, file: FileId) -> &File {
        self.files
            .get(&file.0)
            .expect("FileId from this storage, not closed")
    }

    fn insert(&mut self, f: File) -> FileId {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).expect("fewer than 2^32 opens");
        self.files.insert(id, f);
        FileId(id)
    }
}

/// Fsyncs the ancestor directories of `dir` (its parent upwards) that are on `dir`'s
/// filesystem, so that the entries leading to `dir` are durable. Climbing stops at a mount
/// point, and at a directory this process may not open (e.g. mode `--x`): that is an
/// operator's layout, not something a crash can undo.
fn sync_ancestors(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?.join(dir)
    };
    let device = fs::metadata(&dir)?.dev();
    for ancestor in dir.ancestors().skip(1) {
        let f = match File::open(ancestor) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => break,
            Err(e) => return Err(e),
        };
        if f.metadata()?.dev() != device {
            break;
        }
        f.sync_all()?;
    }
    Ok(())
}

/// Builds a ring and checks that the kernel knows the two opcodes the log uses.
fn new_ring() -> io::Result<IoUring<squeue::Entry, cqueue::Entry>> {
    let ring = IoUring::<squeue::Entry, cqueue::Entry>::builder().build(RING_ENTRIES)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    if !probe.is_supported(opcode::Write::CODE) || !probe.is_supported(opcode::Fsync::CODE) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring lacks IORING_OP_WRITE or IORING_OP_FSYNC",
        ));
    }
    Ok(ring)
}

/// Writes `data` at `offset` through the ring, linked to an fdatasync when `sync`.
///
/// A short write breaks the link (the kernel cancels the fdatasync with `ECANCELED`); the
/// rest is then written with a fresh linked fdatasync. That is not an fsync retry: no
/// fdatasync has failed. Any negative result is returned as the error and never retried.
fn uring_write_at(
    ring: &mut IoUring<squeue::Entry, cqueue::Entry>,
    file: &File,
    mut offset: u64,
    mut data: &[u8],
    sync: bool,
) -> io::Result<()> {
    let fd = types::Fd(file.as_raw_fd());
    loop {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let write = opcode::Write::new(fd, data.as_ptr(), len)
            .offset(offset)
            .build()
            .user_data(USER_DATA_WRITE);
        let want = if sync { 2 } else { 1 };
        {
            let mut sq = ring.submission();
            assert!(sq.is_empty(), "the ring is drained after every operation");
            // SAFETY: `data` outlives the operation: we wait below for every completion
            // before returning (or panic, which never returns into a caller that could
            // reuse the buffer while the kernel still reads it).
            unsafe {
                if sync {
                    let fsync = opcode::Fsync::new(fd)
                        .flags(types::FsyncFlags::DATASYNC)
                        .build()
                        .user_data(USER_DATA_FSYNC);
                    sq.push(&write.flags(squeue::Flags::IO_LINK))
                        .expect("ring has room for two entries");
                    sq.push(&fsync).expect("ring has room for two entries");
                } else {
                    sq.push(&write).expect("ring has room for one entry");
                }
            }
        }
        let mut write_res: Option<i32> = None;
        let mut fsync_res: Option<i32> = None;
        let mut got = 0;
        while got < want {
            match ring.submit_and_wait(want - got) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
                    ) => {}
                Err(e) => panic!(
                    "io_uring_enter failed ({e}) with a write in flight; stopping rather than \
                     returning while the kernel may still read the buffer"
                ),
            }
            for cqe in ring.completion() {
                match cqe.user_data() {
                    USER_DATA_WRITE => write_res = Some(cqe.result()),
                    USER_DATA_FSYNC => fsync_res = Some(cqe.result()),
                    other => panic!("unexpected io_uring completion user_data {other}"),
                }
                got += 1;
            }
        }
        let written = write_res.expect("write completion seen");
        if written < 0 {
            return Err(io::Error::from_raw_os_error(-written));
        }
        let written = written as usize;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "io_uring write wrote 0 bytes",
            ));
        }
        if written < data.len() {
            // Short write: the linked fdatasync (if any) was cancelled; write the rest.
            data = &data[written..];
            offset += written as u64;
            continue;
        }
        if let Some(res) = fsync_res {
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
        }
        return Ok(());
    }
}

impl Storage for DiskStorage {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn create(&mut self, name: &str) -> io::Result<FileId> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(self.dir.join(name))?;
        Ok(self.insert(f))
    }

    fn open(&mut self, name: &str) -> io::Result<FileId> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(name))?;
        Ok(self.insert(f))
    }

    fn close(&mut self, file: FileId) {
        self.files.remove(&file.0);
    }

    fn map(&mut self, file: FileId) -> io::Result<Option<memmap2::Mmap>> {
        let f = self.file(file);
        // SAFETY: the files mapped are snapshots, written once (temp file, fsync,
        // rename) and never modified afterwards, and log segments during the writer's
        // recovery, which holds the directory's exclusive lock and drops each mapping
        // before it writes to that file; nothing in this process or in a well-behaved
        // operator's hands writes to a mapped file, which is what a read-only mapping's
        // soundness rests on.
        Ok(Some(unsafe { memmap2::Mmap::map(f) }?))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))
    }

    fn rename(&mut self, from: &str, to: &str, overwrite: Overwrite) -> io::Result<()> {
        let (from_path, to_path) = (self.dir.join(from), self.dir.join(to));
        if overwrite == Overwrite::Allow {
            return fs::rename(from_path, to_path);
        }
        let c = |name: &str| {
            std::ffi::CString::new(name).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "file name with a NUL byte")
            })
        };
        let (from_c, to_c) = (c(from)?, c(to)?);
        let dir_fd = self.dir_file.as_raw_fd();
        // SAFETY: both names are NUL-terminated C strings that outlive the call; the
        // directory descriptor is ours.
        let rc = unsafe {
            libc::renameat2(
                dir_fd,
                from_c.as_ptr(),
                dir_fd,
                to_c.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINVAL) {
            // A filesystem without RENAME_NOREPLACE. Checking first is enough: the log
            // directory is locked by its one writer, the only one to create names in it.
            if to_path.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            return fs::rename(from_path, to_path);
        }
        Err(err)
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.dir_file.sync_all()
    }

    fn len(&mut self, file: FileId) -> io::Result<u64> {
        Ok(self.file(file).metadata()?.len())
    }

    fn allocate(&mut self, file: FileId, len_bytes: u64) -> io::Result<()> {
        let f = self.file(file);
        let len = libc::off_t::try_from(len_bytes).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "allocation larger than off_t")
        })?;
        // SAFETY: fallocate on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
            // Some filesystems cannot preallocate; a sparse file keeps the format correct
            // (unwritten bytes read as zero), only fdatasync may then touch metadata.
            tracing::warn!(error = %err, "fallocate unsupported; log segment is sparse");
            if f.metadata()?.len() < len_bytes {
                f.set_len(len_bytes)?;
            }
            return Ok(());
        }
        Err(err)
    }

    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file(file).read_exact_at(buf, offset)
    }

    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8], sync: bool) -> io::Result<()> {
        let f = self
            .files
            .get(&file.0)
            .expect("FileId from this storage, not closed");
        match self.ring.as_mut() {
            Some(ring) => uring_write_at(ring, f, offset, data, sync),
            None => {
                f.write_all_at(data, offset)?;
                if sync {
                    f.sync_data()?;
                }
                Ok(())
            }
        }
    }

    fn sync_data(&mut self, file: FileId) -> io::Result<()> {
        self.file(file).sync_data()
    }

    fn sync_all(&mut self, file: FileId) -> io::Result<()> {
        self.file(file).sync_all()
    }

    fn write_back(&mut self, file: FileId, offset: u64, len: u64) -> io::Result<()> {
        let f = self.file(file);
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range larger than off64_t",
            ));
        };
        // Waits for writeback already under way, starts the range's, and waits for it: the
        // pages are on the disk (not durable: no cache flush) when this returns.
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: sync_file_range on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::sync_file_range(f.as_raw_fd(), offset, len, flags) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // A filesystem or kernel without it: only the pacing is lost, and the
            // caller's sync writes the data anyway. An IO error is reported.
            Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::ESPIPE) => Ok(()),
            _ => Err(err),
        }
    }

    fn try_clone_file(&self, file: FileId) -> io::Result<Option<File>> {
        self.file(file).try_clone().map(Some)
    }

    fn helper(&self) -> io::Result<Option<Box<dyn Storage + Send>>> {
        // pwrite, no ring: the helper writes large runs of zeros, not latency-bound batches.
        Ok(Some(Box::new(DiskStorage::open_read_only(&self.dir)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mode: IoMode) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = DiskStorage::open(tmp.path(), mode).expect("open");
        assert_eq!(
            s.io_mode(),
            if mode == IoMode::Pwrite {
                IoMode::Pwrite
            } else {
                IoMode::IoUring
            }
        );
        let f = s.create("a").expect("create");
        s.allocate(f, 8192).expect("allocate");
        assert_eq!(s.len(f).expect("len"), 8192);
        s.write_at(f, 100, b"hello", true).expect("write+sync");
        s.write_at(f, 105, b" world", false).expect("write");
        s.write_back(f, 0, 8192).expect("write back");
        let mut buf = [0u8; 13];
        s.read_at(f, 98, &mut buf).expect("read");
        assert_eq!(&buf, b"\0\0hello world");
        assert!(s.create("a").is_err(), "create must not clobber");
        s.close(f);
        assert_eq!(s.list().expect("list"), vec!["a".to_string()]);
        let b = s.create("b").expect("create b");
        s.close(b);
        let err = s.rename("a", "b", Overwrite::Never).expect_err("b exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        s.rename("a", "c", Overwrite::Never).expect("rename");
        s.rename("c", "b", Overwrite::Allow).expect("rename over b");
        assert_eq!(s.list().expect("list"), vec!["b".to_string()]);
        let f = s.open("b").expect("open renamed");
        let mut buf = [0u8; 5];
        s.read_at(f, 100, &mut buf).expect("read renamed");
        assert_eq!(&buf, b"hello");
        s.close(f);
        s.remove("b").expect("remove");
        s.sync_dir().expect("sync dir");
    }

    #[test]
    fn io_uring_round_trip() {
        round_trip(IoMode::IoUring);
    }

    #[test]
    fn pwrite_round_trip() {
        round_trip(IoMode::Pwrite);
    }

    #[test]
    fn large_write_through_the_ring() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut s = DiskStorage::open(tmp.path(), IoMode::IoUring).expect("open");
        let f = s.create("big").expect("create");
        let data: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
        s.write_at(f, 7, &data, true).expect("write");
        let mut back = vec![0u8; data.len()];
        s.read_at(f, 7, &mut back).expect("read");
        assert!(back == data);
    }

    #[test]
    fn auto_falls_back_to_pwrite_when_io_uring_is_unavailable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let unavailable = || Err(io::Error::from_raw_os_error(libc::ENOSYS));
        let mut s =
            DiskStorage::open_with_ring(tmp.path(), IoMode::Auto, unavailable).expect("open");
        assert_eq!(s.io_mode(), IoMode::Pwrite);
        let f = s.create("a").expect("create");
        s.write_at(f, 0, b"still works", true).expect("write");
        let mut buf = [0u8; 11];
        s.read_at(f, 0, &mut buf).expect("read");
        assert_eq!(&buf, b"still works");
        // Asking for io_uring explicitly fails instead.
        assert!(DiskStorage::open_with_ring(tmp.path(), IoMode::IoUring, unavailable).is_err());
    }

    #[test]
    fn a_failed_ring_write_is_an_error_and_cancels_its_fdatasync() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("ro");
        fs::write(&path, b"x").expect("write");
        let read_only = File::open(&path).expect("open read-only");
        let mut ring = new_ring().expect("ring");
        let err = uring_write_at(&mut ring, &read_only, 0, b"data", true).expect_err("EBADF");
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        // The ring is drained: it serves the next write.
        let rw = OpenOptions::new().write(true).open(&path).expect("open rw");
        uring_write_at(&mut ring, &rw, 0, b"ok", true).expect("write after a failure");
    }

    #[test]
    fn second_lock_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut a = DiskStorage::open(tmp.path(), IoMode::Pwrite).expect("open");
        let mut b = DiskStorage::open(tmp.path(), IoMode::Pwrite).expect("open");
        a.lock_exclusive().expect("first lock");
        assert!(b.lock_exclusive().is_err());
        drop(a);
        b.lock_exclusive().expect("lock after the holder is gone");
    }
}
