//! What a server keeps in its data directory, as a user's `du` sees it: bytes by kind
//! (snapshots, transaction logs, the rest), both apparent (`st_size`) and allocated on
//! disk (`st_blocks` × 512), read by walking the directory.
//!
//! The two differ because both servers preallocate their log files `preAllocSize` (64 MiB
//! by default) at a time: ZooKeeper by writing one byte at the end of each step
//! (`FilePadding`: a sparse file, blocks only where records are), ferrokeeper with
//! `fallocate` and zero-filled spare segments (every segment wholly allocated). A reading
//! is taken once nothing has changed for a while, so that a snapshot still being written
//! is counted whole.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often [`settle`] reads the directory.
pub const POLL: Duration = Duration::from_millis(100);
/// [`settle`] returns once the directory has not changed for this long: longer than
/// the gap between two writes of a snapshot in progress, and than ferrokeeper's wait
/// before it folds a quiet overlay into a snapshot (1 s of no writes, seen at the commit
/// stage's next tick).
pub const QUIET: Duration = Duration::from_secs(3);
/// Beyond this [`settle`] returns the directory as it is, marked unsettled.
pub const SETTLE_MAX: Duration = Duration::from_secs(120);

/// Files of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Regular files.
    pub files: u64,
    /// Their apparent size (`st_size`), bytes.
    pub bytes: u64,
    /// Their blocks on disk (`st_blocks` × 512), bytes.
    pub allocated: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64, allocated: u64) {
        self.bytes += bytes;
        self.allocated += allocated;
    }

    /// The sum of `self` and `other`.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            files: self.files + other.files,
            bytes: self.bytes + other.bytes,
            allocated: self.allocated + other.allocated,
        }
    }
}

/// A data directory by kind of file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDirUsage {
    /// Snapshot files, whole or being written.
    pub snapshots: Usage,
    /// Transaction log files, preallocated ones included.
    pub logs: Usage,
    /// Everything else, directories' own blocks included (not in `files`).
    pub other: Usage,
    /// The apparent size of each snapshot, oldest (lowest zxid) first.
    pub snapshot_bytes: Vec<u64>,
}

impl DataDirUsage {
    /// All kinds together.
    pub fn total(&self) -> Usage {
        self.snapshots.plus(self.logs).plus(self.other)
    }
}

/// What a file in a data directory is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// ZooKeeper's `snapshot.<zxid>`; ferrokeeper's `fk-snap.<zxid>` (`.tmp` while it is
    /// written).
    Snapshot,
    /// ZooKeeper's `log.<zxid>`; ferrokeeper's `fk-log.<zxid>`, its preallocated
    /// `fk-log-spare`, and an ensemble member's Raft log (`fk-raft.<index>`,
    /// `fk-raft-spare`).
    Log,
    /// Anything else (epochs, locks, ...).
    Other,
}

impl FileKind {
    /// The kind of the file named `name`. The names are the servers' on-disk formats
    /// (ZooKeeper's `FileTxnSnapLog`, ferrokeeper's `storage/FORMAT.md`), written out here
    /// because the bench sees ferrokeeper only from outside, as it sees ZooKeeper.
    pub fn of(name: &str) -> FileKind {
        if name.starts_with("snapshot.") || name.starts_with("fk-snap.") {
            FileKind::Snapshot
        } else if name.starts_with("log.")
            || name.starts_with("fk-log")
            || name.starts_with("fk-raft")
        {
            FileKind::Log
        } else {
            FileKind::Other
        }
    }
}

/// The zxid in a snapshot's name (the hex digits after its last dot but a `.tmp` or a
/// `.zst`: ferrokeeper keeps superseded snapshots compressed).
fn snapshot_zxid(name: &str) -> Option<u64> {
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    let name = name.strip_suffix(".zst").unwrap_or(name);
    u64::from_str_radix(&name[name.rfind('.')? + 1..], 16).ok()
}

/// Reads `dir` and everything under it. A file that disappears while it is read (a
/// snapshot renamed into place, a segment purged) is left out: [`settle`] reads again.
pub fn read(dir: &Path) -> io::Result<DataDirUsage> {
    let mut usage = DataDirUsage::default();
    let mut snapshots = Vec::new();
    walk(dir, &mut usage, &mut snapshots)?;
    snapshots.sort_unstable();
    usage.snapshot_bytes = snapshots.into_iter().map(|(_, bytes)| bytes).collect();
    Ok(usage)
}

fn walk(dir: &Path, usage: &mut DataDirUsage, snapshots: &mut Vec<(u64, u64)>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    usage.other.add(meta.len(), meta.blocks() * 512);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            match walk(&entry.path(), usage, snapshots) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let (bytes, allocated) = (meta.len(), meta.blocks() * 512);
        let kind = match FileKind::of(&name) {
            FileKind::Snapshot => {
                snapshots.push((snapshot_zxid(&name).unwrap_or(u64::MAX), bytes));
                &mut usage.snapshots
            }
            FileKind::Log => &mut usage.logs,
            FileKind::Other => &mut usage.other,
        };
        kind.files += 1;
        kind.add(bytes, allocated);
    }
    Ok(())
}

/// A reading of a data directory once it stopped changing.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The last reading.
    pub usage: DataDirUsage,
    /// When the last change was seen, after the first reading (zero: none was).
    pub waited: Duration,
    /// Whether it stopped changing before [`SETTLE_MAX`].
    pub settled: bool,
}

/// Reads `dir` every [`POLL`] until a reading has stayed the same for [`QUIET`]
/// (snapshots still being written, a log spare still being zero-filled, show as
/// change), or [`SETTLE_MAX`] has passed.
pub fn settle(dir: &Path) -> io::Result<Settled> {
    settle_within(dir, QUIET, SETTLE_MAX)
}

/// [`settle`] with its two durations given.
fn settle_within(dir: &Path, quiet: Duration, limit: Duration) -> io::Result<Settled> {
    let started = Instant::now();
    let mut last = read(dir)?;
    let mut same_since = started;
    loop {
        let now = Instant::now();
        if now.duration_since(same_since) >= quiet || now.duration_since(started) >= limit {
            return Ok(Settled {
                usage: last,
                waited: same_since.duration_since(started),
                settled: now.duration_since(same_since) >= quiet,
            });
        }
        std::thread::sleep(POLL);
        let next = read(dir)?;
        if next != last {
            last = next;
            same_since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name_on_both_servers() {
        for name in [
            "snapshot.1a2b",
            "fk-snap.0000000100000002",
            "fk-snap.0000000100000002.tmp",
        ] {
            assert_eq!(FileKind::of(name), FileKind::Snapshot, "{name}");
        }
        for name in [
            "log.100000001",
            "fk-log.0000000100000001",
            "fk-log-spare",
            "fk-raft.0000000000000007",
        ] {
            assert_eq!(FileKind::of(name), FileKind::Log, "{name}");
        }
        for name in ["acceptedEpoch", "currentEpoch", "myid", "lock", "snapshotx"] {
            assert_eq!(FileKind::of(name), FileKind::Other, "{name}");
        }
    }

    #[test]
    fn snapshots_in_zxid_order_and_sparse_files_allocated_less() {
        let dir = std::env::temp_dir().join(format!("fk-bench-datadir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let v2 = dir.join("version-2");
        std::fs::create_dir_all(&v2).expect("mkdir");
        // ZooKeeper's names are unpadded hex: "snapshot.a" comes after "snapshot.9".
        std::fs::write(v2.join("snapshot.a"), vec![1u8; 3000]).expect("write");
        std::fs::write(v2.join("snapshot.9"), vec![1u8; 2000]).expect("write");
        std::fs::write(v2.join("acceptedEpoch"), b"0").expect("write");
        // ferrokeeper's compressed superseded snapshot sorts by its zxid too.
        let fk = dir.join("ferrokeeper").join("snap");
        std::fs::create_dir_all(&fk).expect("mkdir");
        std::fs::write(fk.join("fk-snap.0000000000000002.zst"), vec![1u8; 100]).expect("write");
        std::fs::write(fk.join("fk-snap.0000000000000010"), vec![1u8; 4000]).expect("write");
        // A preallocated log as ZooKeeper makes it: one byte at the end of 8 MiB.
        let log = std::fs::File::create(v2.join("log.1")).expect("create");
        log.set_len(8 << 20).expect("set_len");
        drop(log);

        let usage = read(&dir).expect("read");
        assert_eq!(usage.snapshot_bytes, vec![100, 2000, 3000, 4000]);
        assert_eq!((usage.snapshots.files, usage.snapshots.bytes), (4, 9100));
        assert!(usage.snapshots.allocated >= 9100);
        assert_eq!((usage.logs.files, usage.logs.bytes), (1, 8 << 20));
        assert!(usage.logs.allocated < 8 << 20, "a sparse file: {usage:?}");
        assert_eq!(usage.other.files, 1);
        assert_eq!(usage.total().files, 6);

        let settled = settle_within(&dir, Duration::from_millis(200), Duration::from_secs(5))
            .expect("settle");
        assert!(settled.settled);
        assert_eq!(settled.usage, usage);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
