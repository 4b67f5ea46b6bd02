//! The disk probe: what the transaction log's directory can do.
//!
//! ferrokeeper acknowledges a write only after the log batch holding it is fdatasynced, so
//! the data directory's sync latency is the floor of every write's latency, and the sync
//! rate times the batch size is the ceiling of write throughput. The probe measures both
//! in the directory itself, with the log's own access pattern:
//!
//! 1. **Sync latency, fallocated space**: appends of one 4 KiB block to a file preallocated
//!    with `fallocate`, each followed by `fdatasync`. This is what the log's segments are
//!    today. On ext4 and xfs fallocated blocks are *unwritten extents*: the first write to
//!    each block converts its extent, so the sync must also commit the filesystem journal.
//! 2. **Sync latency, written space**: the same appends over blocks that were already
//!    written (zero-filled and synced first): only data and a device cache flush. This is
//!    the device's own sync cost, and what a log with zero-filled segments would see.
//!
//!    Both phases open the file with `O_DIRECT` when the filesystem allows it (so the write
//!    goes to the device, not only to the page cache), else buffered.
//! 3. **Group commit**: batches of 1, 16 and 256 records of 100 bytes, written back to back
//!    into fallocated space with one buffered `pwrite` and one `fdatasync` per batch, as the
//!    log writes them (`storage/FORMAT.md`: frames back to back, no padding, segments
//!    preallocated with `fallocate`).
//!
//! The probe is bounded by a time budget (25% to each sync phase, the rest shared by the
//! group-commit phases) and by the size of its files (64 MiB each, less on a nearly full
//! disk; 16 MiB for the zero-filled one); it writes only its own files, named
//! `.ferrokeeper-tune-<pid>-<phase>`, and removes them. The numbers are those of a quiet
//! moment only if the moment was quiet: the IO and CPU pressure just before the probe is
//! recorded so that a busy host can be recognised.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::parse;
use crate::sysfs::read;

/// The block the sync-latency phase appends: a page, the unit `O_DIRECT` needs.
pub const BLOCK_BYTES: usize = 4096;
/// The size of a record in the group-commit phase.
pub const RECORD_BYTES: usize = 100;
/// The batch sizes the group-commit phase measures, in records.
pub const GROUP_COMMIT_BATCH_RECORDS: [usize; 3] = [1, 16, 256];
/// The size of each probe file: ZooKeeper's default `preAllocSize`, the size of one
/// log segment.
pub const PROBE_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The size of the zero-filled file of the written-space phase: filling it is part of the
/// phase's time, so it is kept to what a few seconds of syncs use.
pub const WRITTEN_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Below this much room for a probe file the probe does not run.
pub const PROBE_FILE_BYTES_MIN: u64 = 1024 * 1024;
/// Appends before measuring starts, so that the first allocation of the file's blocks and
/// a cold device queue do not count.
pub const WARMUP_APPENDS: usize = 8;
/// The default time budget of the whole probe.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(6);

/// The data directory and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskReport {
    /// The directory probed.
    pub data_dir: PathBuf,
    /// The filesystem (`statfs` `f_type`), by name; `unknown (0x…)` for a magic number not
    /// known here.
    pub filesystem: Option<String>,
    /// Whether the filesystem lives in memory (tmpfs, ramfs): fdatasync does nothing there
    /// and nothing survives a reboot, so the sync numbers are meaningless.
    pub in_memory: bool,
    /// Bytes free for an unprivileged writer.
    pub free_bytes: Option<u64>,
    /// The block device under the directory, when there is one.
    pub device: Option<BlockDevice>,
    /// Whether `fallocate(2)` works in the directory.
    pub fallocate: Option<Fallocate>,
    /// Sync latency of 4 KiB appends into fallocated (unwritten) space, as the log's
    /// segments are today; `None` if the probe did not run.
    pub sync_fallocated: Option<SyncLatency>,
    /// Sync latency of 4 KiB writes over already written blocks: the device's own cost;
    /// `None` if the probe did not run.
    pub sync_written: Option<SyncLatency>,
    /// Group-commit throughput per batch size; empty if the probe did not run.
    pub group_commit: Vec<GroupCommit>,
    /// The time budget given, in seconds.
    pub budget_seconds: f64,
    /// The time the probe took, in seconds.
    pub elapsed_seconds: f64,
    /// Pressure stall information just before the probe, when the kernel has PSI.
    pub pressure_before: Option<Pressure>,
    /// Why (part of) the probe could not run.
    pub error: Option<String>,
}

/// Above this share of time with tasks waiting for IO or for a CPU (PSI `some avg10`,
/// percent) just before the probe, its numbers are flagged as taken on a busy host: a
/// thread woken by a finished sync then waits for a CPU (a scheduler tick, 4 ms at
/// HZ=250), and other syncs share the device.
pub const PRESSURE_BUSY_PERCENT: f64 = 5.0;

impl DiskReport {
    /// Whether the host was busy (IO or CPU pressure above [`PRESSURE_BUSY_PERCENT`])
    /// just before the probe, so that its numbers may understate the disk.
    pub fn measured_on_busy_host(&self) -> bool {
        self.pressure_before.is_some_and(|p| {
            p.io_some_avg10.unwrap_or(0.0) > PRESSURE_BUSY_PERCENT
                || p.cpu_some_avg10.unwrap_or(0.0) > PRESSURE_BUSY_PERCENT
        })
    }
}

/// The block device under the data directory (`/sys/dev/block/<major>:<minor>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockDevice {
    /// The kernel's name for the device, for example `vda` or `nvme0n1`.
    pub name: String,
    /// `queue/rotational`: a spinning disk (a seek per sync).
    pub rotational: Option<bool>,
    /// `queue/write_cache`: `write back` (syncs flush a volatile cache) or `write through`.
    pub write_cache: Option<String>,
    /// `queue/scheduler`, the one selected.
    pub scheduler: Option<String>,
    /// The driver (`device/driver`), for example `virtio_blk` or `nvme`.
    pub driver: Option<String>,
}

/// `/proc/pressure/{io,cpu}`: the share of the last 10 s in which some task waited for
/// IO or for a CPU. Other work on the host makes the probe's numbers pessimistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pressure {
    /// `io` `some avg10`, in percent.
    pub io_some_avg10: Option<f64>,
    /// `cpu` `some avg10`, in percent.
    pub cpu_some_avg10: Option<f64>,
}

/// Whether `fallocate(2)` works.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fallocate {
    /// It allocated the probe file's blocks.
    pub works: bool,
    /// The error when it did not.
    pub error: Option<String>,
}

/// Latency of one 4 KiB append followed by `fdatasync`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncLatency {
    /// Whether the file was written with `O_DIRECT`.
    pub direct_io: bool,
    /// Why `O_DIRECT` was not used, when it was not.
    pub direct_io_error: Option<String>,
    /// Appends measured.
    pub samples: usize,
    /// Median append + fdatasync, in microseconds.
    pub p50_us: f64,
    /// 99th percentile, in microseconds.
    pub p99_us: f64,
    /// Slowest, in microseconds.
    pub max_us: f64,
    /// Appends (each with its fdatasync) per second, one after another.
    pub syncs_per_second: f64,
    /// The phase ended because its file was full, not because its time was up.
    pub stopped_at_file_end: bool,
}

/// Throughput of batches of `batch_records` records with one `fdatasync` per batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCommit {
    /// Records per batch.
    pub batch_records: usize,
    /// Bytes per record.
    pub record_bytes: usize,
    /// Batches measured.
    pub batches: usize,
    /// Records made durable per second.
    pub records_per_second: f64,
    /// Batches (fdatasyncs) per second.
    pub batches_per_second: f64,
    /// Median time of one batch (write + fdatasync), in microseconds.
    pub batch_p50_us: f64,
    /// 99th percentile, in microseconds.
    pub batch_p99_us: f64,
    /// The phase ended because its file was full, not because its time was up.
    pub stopped_at_file_end: bool,
}

/// Probes `dir`: filesystem, device, fallocate, and (if `budget` is not zero) sync latency
/// and group-commit throughput. Never fails: what could not be measured is `None` and the
/// reason is in [`DiskReport::error`].
pub fn run(dir: &Path, budget: Duration) -> DiskReport {
    let started = Instant::now();
    let mut report = DiskReport {
        data_dir: dir.to_path_buf(),
        filesystem: None,
        in_memory: false,
        free_bytes: None,
        device: None,
        fallocate: None,
        sync_fallocated: None,
        sync_written: None,
        group_commit: Vec::new(),
        budget_seconds: budget.as_secs_f64(),
        elapsed_seconds: 0.0,
        pressure_before: pressure(),
        error: None,
    };
    match statfs(dir) {
        Ok((magic, free)) => {
            let name = parse::filesystem_name(magic)
                .map_or_else(|| format!("unknown (0x{magic:x})"), str::to_string);
            report.in_memory = parse::is_memory_filesystem(&name);
            report.filesystem = Some(name);
            report.free_bytes = Some(free);
        }
        Err(e) => {
            report.error = Some(format!("cannot statfs {}: {e}", dir.display()));
            return finish(report, started);
        }
    }
    report.device = block_device(dir);

    let file_bytes = report.free_bytes.map_or(PROBE_FILE_BYTES_MAX, |free| {
        (free / 4).min(PROBE_FILE_BYTES_MAX)
    });
    let file_bytes = file_bytes - file_bytes % BLOCK_BYTES as u64;
    if file_bytes < PROBE_FILE_BYTES_MIN {
        report.error = Some(format!(
            "only {} bytes free in {}: not enough room for a probe file",
            report.free_bytes.unwrap_or(0),
            dir.display()
        ));
        return finish(report, started);
    }

    // fallocate is checked even without a time budget: it is instant, and the log needs it.
    match ProbeFile::create(dir, "fallocate", false) {
        Ok(f) => report.fallocate = Some(f.preallocate(PROBE_FILE_BYTES_MIN)),
        Err(e) => {
            report.error = Some(format!("cannot create a file in {}: {e}", dir.display()));
            return finish(report, started);
        }
    }
    if budget.is_zero() {
        return finish(report, started);
    }

    match sync_latency(dir, Space::Fallocated, file_bytes, budget.mul_f64(0.25)) {
        Ok(s) => report.sync_fallocated = Some(s),
        Err(e) => report.error = Some(format!("sync latency probe (fallocated) failed: {e}")),
    }
    let written_bytes = file_bytes.min(WRITTEN_FILE_BYTES_MAX);
    match sync_latency(dir, Space::Written, written_bytes, budget.mul_f64(0.25)) {
        Ok(s) => report.sync_written = Some(s),
        Err(e) => report.error = Some(format!("sync latency probe (written) failed: {e}")),
    }
    let per_batch_size = budget.mul_f64(0.5 / GROUP_COMMIT_BATCH_RECORDS.len() as f64);
    for batch_records in GROUP_COMMIT_BATCH_RECORDS {
        match group_commit(dir, file_bytes, batch_records, per_batch_size) {
            Ok(g) => report.group_commit.push(g),
            Err(e) => {
                report.error = Some(format!(
                    "group commit probe ({batch_records} records per batch) failed: {e}"
                ));
                break;
            }
        }
    }
    finish(report, started)
}

fn finish(mut report: DiskReport, started: Instant) -> DiskReport {
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report
}

/// A probe file, removed when dropped.
struct ProbeFile {
    path: PathBuf,
    file: File,
}

impl ProbeFile {
    fn create(dir: &Path, phase: &str, direct: bool) -> io::Result<ProbeFile> {
        let path = dir.join(format!(".ferrokeeper-tune-{}-{phase}", std::process::id()));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        if direct {
            options.custom_flags(libc::O_DIRECT);
        }
        let file = options.open(&path)?;
        Ok(ProbeFile { path, file })
    }

    /// Allocates `bytes` at the start of the file with `fallocate(2)` (mode 0: allocate,
    /// and extend the size), as the log does for each segment.
    fn preallocate(&self, bytes: u64) -> Fallocate {
        let Ok(len) = libc::off_t::try_from(bytes) else {
            return Fallocate {
                works: false,
                error: Some(format!("{bytes} bytes do not fit off_t")),
            };
        };
        // SAFETY: the descriptor is open for the lifetime of `self.file`.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, len) };
        if rc == 0 {
            Fallocate {
                works: true,
                error: None,
            }
        } else {
            Fallocate {
                works: false,
                error: Some(io::Error::last_os_error().to_string()),
            }
        }
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A buffer of `len` bytes whose start is aligned to [`BLOCK_BYTES`], as `O_DIRECT` needs.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize, fill: u8) -> AlignedBuf {
        let storage = vec![fill; len + BLOCK_BYTES];
        let start = storage.as_ptr().align_offset(BLOCK_BYTES);
        assert!(start < BLOCK_BYTES, "a u8 pointer can always be aligned");
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// Where the sync-latency phase writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    /// Blocks allocated by `fallocate` and never written (unwritten extents).
    Fallocated,
    /// Blocks written (with zeros) and synced before the measurement.
    Written,
}

/// Phases 1 and 2: 4 KiB appends, each followed by fdatasync, into `space`.
fn sync_latency(
    dir: &Path,
    space: Space,
    file_bytes: u64,
    budget: Duration,
) -> io::Result<SyncLatency> {
    let phase = match space {
        Space::Fallocated => "sync-fallocated",
        Space::Written => "sync-written",
    };
    let block = AlignedBuf::new(BLOCK_BYTES, 0xA5);
    // O_DIRECT first; some filesystems refuse it at open (EINVAL), others at the first
    // write, so both are tried before falling back to buffered writes.
    let (file, direct_io_error) = match ProbeFile::create(dir, phase, true) {
        Ok(f) => {
            let _ = f.preallocate(file_bytes);
            match f.file.write_all_at(block.bytes(), 0) {
                Ok(()) => (f, None),
                Err(e) => {
                    drop(f);
                    (ProbeFile::create(dir, phase, false)?, Some(e.to_string()))
                }
            }
        }
        Err(e) => (ProbeFile::create(dir, phase, false)?, Some(e.to_string())),
    };
    if direct_io_error.is_some() {
        let _ = file.preallocate(file_bytes);
    }
    if space == Space::Written {
        // Write every block once and make it durable, so that the measured writes change
        // no extent and no size: each sync carries data and a cache flush, nothing else.
        let chunk = AlignedBuf::new(1024 * 1024, 0);
        let mut at = 0u64;
        while at < file_bytes {
            let n = (file_bytes - at).min(chunk.len as u64) as usize;
            file.file.write_all_at(&chunk.bytes()[..n], at)?;
            at += n as u64;
        }
        file.file.sync_all()?;
    }

    // The first block was written by the O_DIRECT test (or not at all): start after it.
    let mut offset = BLOCK_BYTES as u64;
    for _ in 0..WARMUP_APPENDS {
        timed_append(&file.file, block.bytes(), &mut offset)?;
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut stopped_at_file_end = false;
    while started.elapsed() < budget {
        if offset + BLOCK_BYTES as u64 > file_bytes {
            stopped_at_file_end = true;
            break;
        }
        samples.push(timed_append(&file.file, block.bytes(), &mut offset)?);
    }
    let elapsed = started.elapsed();
    let stats = Percentiles::of(&mut samples);
    Ok(SyncLatency {
        direct_io: direct_io_error.is_none(),
        direct_io_error,
        samples: samples.len(),
        p50_us: stats.p50_us,
        p99_us: stats.p99_us,
        max_us: stats.max_us,
        syncs_per_second: per_second(samples.len(), elapsed),
        stopped_at_file_end,
    })
}

/// Phase 3: batches of `batch_records` records, one buffered write and one fdatasync each.
fn group_commit(
    dir: &Path,
    file_bytes: u64,
    batch_records: usize,
    budget: Duration,
) -> io::Result<GroupCommit> {
    let file = ProbeFile::create(dir, &format!("batch{batch_records}"), false)?;
    let _ = file.preallocate(file_bytes);
    let batch = vec![0x5Au8; batch_records * RECORD_BYTES];
    let mut offset = 0u64;
    for _ in 0..WARMUP_APPENDS {
        timed_append(&file.file, &batch, &mut offset)?;
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut stopped_at_file_end = false;
    while started.elapsed() < budget {
        if offset + batch.len() as u64 > file_bytes {
            stopped_at_file_end = true;
            break;
        }
        samples.push(timed_append(&file.file, &batch, &mut offset)?);
    }
    let elapsed = started.elapsed();
    let stats = Percentiles::of(&mut samples);
    Ok(GroupCommit {
        batch_records,
        record_bytes: RECORD_BYTES,
        batches: samples.len(),
        records_per_second: per_second(samples.len() * batch_records, elapsed),
        batches_per_second: per_second(samples.len(), elapsed),
        batch_p50_us: stats.p50_us,
        batch_p99_us: stats.p99_us,
        stopped_at_file_end,
    })
}

/// Writes `bytes` at `*offset`, fdatasyncs, advances `*offset`; returns the time taken.
fn timed_append(file: &File, bytes: &[u8], offset: &mut u64) -> io::Result<Duration> {
    let t = Instant::now();
    file.write_all_at(bytes, *offset)?;
    file.sync_data()?;
    *offset += bytes.len() as u64;
    Ok(t.elapsed())
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// Nearest-rank percentiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Percentiles {
    /// Sorts `samples` and takes the nearest-rank 50th and 99th percentiles and the
    /// maximum; all zero for no samples.
    pub(crate) fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let rank = |p: f64| {
            // Nearest rank: the smallest sample with at least p of the samples at or below it.
            let n = samples.len();
            let r = (p * n as f64).ceil() as usize;
            samples[r.clamp(1, n) - 1]
        };
        if samples.is_empty() {
            return Percentiles {
                p50_us: 0.0,
                p99_us: 0.0,
                max_us: 0.0,
            };
        }
        Percentiles {
            p50_us: us(rank(0.50)),
            p99_us: us(rank(0.99)),
            max_us: us(samples[samples.len() - 1]),
        }
    }
}

/// PSI of IO and CPU, if the kernel has it (`CONFIG_PSI`, Linux 4.20+).
fn pressure() -> Option<Pressure> {
    let some = |path: &str| read(path).as_deref().and_then(parse::psi_some_avg10);
    let p = Pressure {
        io_some_avg10: some("/proc/pressure/io"),
        cpu_some_avg10: some("/proc/pressure/cpu"),
    };
    (p.io_some_avg10.is_some() || p.cpu_some_avg10.is_some()).then_some(p)
}

/// `statfs(2)`: the filesystem's magic number and the bytes available to unprivileged
/// writers.
fn statfs(dir: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: statfs is plain old data; all-zero is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `st` is writable for the call.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type is signed on some architectures; the magic numbers are 32-bit patterns.
    let magic = (st.f_type as u64) & 0xFFFF_FFFF;
    let free = (st.f_bavail as u64).saturating_mul(st.f_bsize as u64);
    Ok((magic, free))
}

/// The block device holding `dir`, from `/sys/dev/block/<major>:<minor>`. For a partition
/// the queue settings are the parent disk's.
fn block_device(dir: &Path) -> Option<BlockDevice> {
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    if major == 0 {
        // Anonymous devices: tmpfs, overlayfs, NFS, FUSE. No queue to describe.
        return None;
    }
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys.clone()
    };
    let queue = disk.join("queue");
    Some(BlockDevice {
        name: sys.file_name()?.to_string_lossy().into_owned(),
        rotational: read(queue.join("rotational"))
            .as_deref()
            .and_then(parse::sysctl_u64)
            .map(|r| r != 0),
        write_cache: read(queue.join("write_cache"))
            .as_deref()
            .map(|s| s.trim().to_string()),
        scheduler: read(queue.join("scheduler"))
            .as_deref()
            .and_then(parse::bracketed_choice),
        driver: std::fs::read_link(disk.join("device/driver"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_micros(m)).collect()
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut s = ms(&(1..=100).rev().collect::<Vec<_>>());
        let p = Percentiles::of(&mut s);
        assert_eq!(p.p50_us, 50.0);
        assert_eq!(p.p99_us, 99.0);
        assert_eq!(p.max_us, 100.0);

        let mut one = ms(&[7]);
        let p = Percentiles::of(&mut one);
        assert_eq!((p.p50_us, p.p99_us, p.max_us), (7.0, 7.0, 7.0));

        let p = Percentiles::of(&mut []);
        assert_eq!((p.p50_us, p.p99_us, p.max_us), (0.0, 0.0, 0.0));
    }

    #[test]
    fn aligned_buffer_is_aligned() {
        let b = AlignedBuf::new(BLOCK_BYTES, 1);
        assert_eq!(b.bytes().as_ptr() as usize % BLOCK_BYTES, 0);
        assert_eq!(b.bytes().len(), BLOCK_BYTES);
    }
}
