//! A simulated directory that models written-versus-durable bytes and injects seeded faults.
//!
//! Model (the contract of [`Storage`], made executable):
//! - Every file is an inode with two byte images: `written` (what reads see now, the page
//!   cache) and `durable` (what survives a crash), plus the list of writes made since the
//!   inode's last successful sync, in order.
//! - The directory has a current name → inode map, a durable one (as of the last
//!   successful `sync_dir`), and the changes made since (create, rename, remove), in order.
//! - [`SimStorage::crash`] replaces the current state with what a power cut could leave:
//!   the directory is the durable map plus a random prefix of the changes since (a
//!   journalling filesystem commits them in order, and may commit on its own; a rename is
//!   one change, so atomic); for each inode, the unsynced writes reach the disk either as an
//!   in-order prefix whose last write is torn at a random byte, or sector by sector (512
//!   bytes) in any subset, as page-cache writeback may order them. An inode no name
//!   reaches is gone.
//! - Faults, each drawn from the seeded [`Prng`]: a write fails (with nothing or a prefix
//!   of it landing in the page cache), an fsync fails (the unsynced writes then either did
//!   or did not reach the disk, and a later sync does not retry them: fsyncgate), and the
//!   process "dies" after a chosen number of operations (every later operation fails until
//!   [`SimStorage::crash`]).
//!
//! A [`SimStorage`] is a cheap handle: clones share one simulated disk, so a test keeps one
//! clone, hands another to the log, and crashes the disk under it. It is not `Send`, so it
//! offers no [`Storage::helper`]: background work (preparing the next log segment) runs
//! inline, [`Storage::background_steps`] steps after each append, a number drawn from the
//! seed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use super::{FileId, Overwrite, Storage};

/// Sector size of the simulated disk: the unit in which out-of-order writeback lands.
pub const SIM_SECTOR_BYTES: usize = 512;

/// A small, seeded PRNG (SplitMix64): deterministic on every platform, so a seed replays.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range");
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// Which faults the simulated disk injects, and how often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimFaults {
    /// Chance, per million `write_at` calls, that the write fails with EIO.
    pub write_fail_per_million: u32,
    /// Chance, per million syncs (`sync_data`, `sync_all`, or the sync of `write_at`), that it fails with EIO.
    pub sync_fail_per_million: u32,
    /// The process "dies" once this many more operations have run: every later operation
    /// fails until [`SimStorage::crash`]. An operation cut short this way may have landed a
    /// prefix of its bytes in the page cache.
    pub crash_after_ops: Option<u64>,
}

/// What [`SimStorage::crash`] did, for test failure messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Whether some directory change since the last `sync_dir` was lost (else all survived).
    pub dir_reverted: bool,
    /// Directory changes since the last `sync_dir`: (kept, made).
    pub dir_changes: (usize, usize),
    /// Per file: (name, unsynced writes, how they landed).
    pub files: Vec<(String, usize, &'static str)>,
    /// The operation during which the process died (`crash_after_ops` ran out), and the
    /// file it was on, if it died.
    pub died_at: Option<(&'static str, String)>,
}

/// A change to the directory not yet made durable by `sync_dir`.
#[derive(Clone, Debug)]
enum DirChange {
    Create(String, u64),
    Remove(String),
    Rename(String, String),
}

fn apply(dir: &mut BTreeMap<String, u64>, change: &DirChange) {
    match change {
        DirChange::Create(name, ino) => {
            dir.insert(name.clone(), *ino);
        }
        DirChange::Remove(name) => {
            dir.remove(name);
        }
        DirChange::Rename(from, to) => {
            if let Some(ino) = dir.remove(from) {
                dir.insert(to.clone(), ino);
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Inode {
    written: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last successful sync, oldest first: (offset, bytes).
    unsynced: Vec<(usize, Vec<u8>)>,
}

#[derive(Debug)]
struct SimState {
    rng: Prng,
    faults: SimFaults,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
    /// Changes to `dir` since `durable_dir`, oldest first.
    dir_changes: Vec<DirChange>,
    handles: HashMap<u32, u64>,
    next_handle: u32,
    ops: u64,
    /// Set once `crash_after_ops` has run out; cleared by `crash`.
    dead: bool,
    /// The operation (and file) that found the process dead first.
    died_at: Option<(&'static str, String)>,
}

/// A simulated directory. See the module documentation for the model.
#[derive(Clone, Debug)]
pub struct SimStorage {
    state: Rc<RefCell<SimState>>,
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO on {what}"))
}

fn dead() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

impl SimStorage {
    /// An empty simulated directory whose faults are driven by `seed`. No faults until
    /// [`SimStorage::set_faults`].
    pub fn new(seed: u64) -> SimStorage {
        SimStorage {
            state: Rc::new(RefCell::new(SimState {
                rng: Prng::new(seed),
                faults: SimFaults::default(),
                inodes: HashMap::new(),
                next_inode: 0,
                dir: BTreeMap::new(),
                durable_dir: BTreeMap::new(),
                dir_changes: Vec::new(),
                handles: HashMap::new(),
                next_handle: 0,
                ops: 0,
                dead: false,
                died_at: None,
            })),
        }
    }

    /// Replaces the fault plan; `crash_after_ops` counts from now.
    pub fn set_faults(&self, faults: SimFaults) {
        let mut s = self.state.borrow_mut();
        s.faults = faults;
        s.ops = 0;
    }

    /// Operations run since the last [`SimStorage::set_faults`].
    pub fn ops(&self) -> u64 {
        self.state.borrow().ops
    }

    /// Whether the process has "died" (`crash_after_ops` ran out) and every operation now
    /// fails until [`SimStorage::crash`]: a whole-server simulator tells a failed snapshot,
    /// which a live server survives, from a dead process by this.
    pub fn is_dead(&self) -> bool {
        self.state.borrow().dead
    }

    /// Simulates a power cut (see the module documentation) and revives the process: open
    /// handles are gone, faults are cleared, and the disk holds only what could have survived.
    pub fn crash(&self) -> CrashReport {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        let changes = std::mem::take(&mut s.dir_changes);
        let kept = s.rng.below(changes.len() as u64 + 1) as usize;
        let mut report = CrashReport {
            dir_reverted: kept < changes.len(),
            dir_changes: (kept, changes.len()),
            files: Vec::new(),
            died_at: s.died_at.take(),
        };
        for change in &changes[..kept] {
            apply(&mut s.durable_dir, change);
        }
        s.dir = s.durable_dir.clone();
        let names: BTreeMap<u64, String> = s.dir.iter().map(|(n, &i)| (i, n.clone())).collect();
        let live: Vec<u64> = s.dir.values().copied().collect();
        s.inodes.retain(|ino, _| live.contains(ino));
        let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let inode = s.inodes.get_mut(&ino).expect("listed inode");
            let unsynced = std::mem::take(&mut inode.unsynced);
            let how = if unsynced.is_empty() {
                "none"
            } else if s.rng.below(2) == 0 {
                land_prefix(&mut s.rng, &mut inode.durable, &unsynced);
                "prefix, last torn"
            } else {
                land_sectors(&mut s.rng, &mut inode.durable, &inode.written, &unsynced);
                "sectors in any order"
            };
            inode.written = inode.durable.clone();
            let name = names.get(&ino).cloned().unwrap_or_default();
            report.files.push((name, unsynced.len(), how));
        }
        s.handles.clear();
        s.faults = SimFaults::default();
        s.dead = false;
        report
    }

    /// Flips one bit of a file's durable (and current) bytes: silent media corruption.
    pub fn flip_bit(&self, name: &str, offset: usize, bit: u8) {
        let mut s = self.state.borrow_mut();
        let ino = *s.dir.get(name).expect("flip_bit on an existing file");
        let inode = s.inodes.get_mut(&ino).expect("inode of a listed file");
        assert!(
            inode.unsynced.is_empty(),
            "flip bits only in a settled (crashed or synced) file"
        );
        inode.durable[offset] ^= 1 << bit;
        inode.written[offset] ^= 1 << bit;
    }

    /// The bytes reads of `name` see now, if it exists.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.state.borrow();
        let ino = s.dir.get(name)?;
        Some(s.inodes[ino].written.clone())
    }

    /// Names in the directory now, sorted.
    pub fn names(&self) -> Vec<String> {
        self.state.borrow().dir.keys().cloned().collect()
    }

    /// Starts operation `what` on `name` (for [`CrashReport::died_at`]): counts it, and
    /// fails it if the process is (now) dead.
    fn op(&self, what: &'static str, name: &str) -> io::Result<std::cell::RefMut<'_, SimState>> {
        let mut s = self.state.borrow_mut();
        if s.dead {
            return Err(dead());
        }
        s.ops += 1;
        if let Some(limit) = s.faults.crash_after_ops {
            if s.ops > limit {
                s.dead = true;
                s.died_at = Some((what, name.to_string()));
                return Err(dead());
            }
        }
        Ok(s)
    }

    /// [`SimStorage::op`] on an open file.
    fn file_op(
        &self,
        what: &'static str,
        file: FileId,
    ) -> io::Result<std::cell::RefMut<'_, SimState>> {
        let name = self.state.borrow().name_of(file);
        self.op(what, &name)
    }
}

/// Lands the unsynced writes in order: all before a random one fully, that one as a random
/// prefix (possibly empty, possibly whole), none after it.
fn land_prefix(rng: &mut Prng, durable: &mut Vec<u8>, unsynced: &[(usize, Vec<u8>)]) {
    let last = rng.below(unsynced.len() as u64 + 1) as usize;
    for (i, (offset, data)) in unsynced.iter().enumerate() {
        let n = match i.cmp(&last) {
            std::cmp::Ordering::Less => data.len(),
            std::cmp::Ordering::Equal => rng.range(0, data.len() as u64) as usize,
            std::cmp::Ordering::Greater => break,
        };
        put(durable, *offset, &data[..n]);
    }
}

/// Lands each sector touched by an unsynced write, or not, independently; a landed sector
/// carries its current (page cache) content.
fn land_sectors(
    rng: &mut Prng,
    durable: &mut Vec<u8>,
    written: &[u8],
    unsynced: &[(usize, Vec<u8>)],
) {
    let mut sectors: Vec<usize> = Vec::new();
    for (offset, data) in unsynced {
        if data.is_empty() {
            continue;
        }
        let first = offset / SIM_SECTOR_BYTES;
        let last = (offset + data.len() - 1) / SIM_SECTOR_BYTES;
        sectors.extend(first..=last);
    }
    sectors.sort_unstable();
    sectors.dedup();
    for sector in sectors {
        if rng.below(2) == 0 {
            let start = sector * SIM_SECTOR_BYTES;
            let end = (start + SIM_SECTOR_BYTES).min(written.len());
            if start < end {
                put(durable, start, &written[start..end]);
            }
        }
    }
}

fn put(image: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(data);
}

impl SimState {
    /// The current name of an open file's inode ("" once it has none).
    fn name_of(&self, file: FileId) -> String {
        let Some(ino) = self.handles.get(&file.0) else {
            return String::new();
        };
        self.dir
            .iter()
            .find(|(_, i)| *i == ino)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    fn inode(&mut self, file: FileId) -> &mut Inode {
        let ino = *self
            .handles
            .get(&file.0)
            .expect("FileId from this storage, not closed");
        self.inodes.get_mut(&ino).expect("open inode exists")
    }

    fn new_handle(&mut self, ino: u64) -> FileId {
        let id = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(id, ino);
        FileId(id)
    }

    /// A sync: on success the inode's writes are durable; on an injected failure they may or
    /// may not be, and are forgotten either way (a later sync does not retry them).
    fn sync(&mut self, file: FileId) -> io::Result<()> {
        let per_million = self.faults.sync_fail_per_million;
        let fail = self.rng.chance(per_million);
        let lands = self.rng.below(2) == 0;
        let inode = self.inode(file);
        if fail && !lands {
            inode.unsynced.clear();
            return Err(eio("fsync"));
        }
        inode.durable = inode.written.clone();
        inode.unsynced.clear();
        if fail {
            return Err(eio("fsync"));
        }
        Ok(())
    }
}

impl Storage for SimStorage {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("sim:/{name}"))
    }

    fn list(&mut self) -> io::Result<Vec<String>> {
        let s = self.op("list", "")?;
        Ok(s.dir.keys().cloned().collect())
    }

    fn create(&mut self, name: &str) -> io::Result<FileId> {
        let mut s = self.op("create", name)?;
        if s.dir.contains_key(name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let ino = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(ino, Inode::default());
        s.dir.insert(name.to_string(), ino);
        s.dir_changes.push(DirChange::Create(name.to_string(), ino));
        Ok(s.new_handle(ino))
    }

    fn open(&mut self, name: &str) -> io::Result<FileId> {
        let mut s = self.op("open", name)?;
        let ino = *s
            .dir
            .get(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(s.new_handle(ino))
    }

    fn close(&mut self, file: FileId) {
        self.state.borrow_mut().handles.remove(&file.0);
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut s = self.op("remove", name)?;
        if s.dir.remove(name).is_none() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        s.dir_changes.push(DirChange::Remove(name.to_string()));
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str, overwrite: Overwrite) -> io::Result<()> {
        let mut s = self.op("rename", from)?;
        if !s.dir.contains_key(from) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        if overwrite == Overwrite::Never && s.dir.contains_key(to) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let change = DirChange::Rename(from.to_string(), to.to_string());
        apply(&mut s.dir, &change);
        s.dir_changes.push(change);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut s = self.op("sync_dir", "")?;
        let per_million = s.faults.sync_fail_per_million;
        if s.rng.chance(per_million) {
            // The changes may or may not have reached the disk; a crash decides.
            return Err(eio("directory fsync"));
        }
        s.durable_dir = s.dir.clone();
        s.dir_changes.clear();
        Ok(())
    }

    fn len(&mut self, file: FileId) -> io::Result<u64> {
        let mut s = self.file_op("len", file)?;
        Ok(s.inode(file).written.len() as u64)
    }

    fn allocate(&mut self, file: FileId, len_bytes: u64) -> io::Result<()> {
        let mut s = self.file_op("allocate", file)?;
        let len =
            usize::try_from(len_bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let inode = s.inode(file);
        if inode.written.len() < len {
            // Allocation is metadata: it survives a crash only once synced, like the data.
            let offset = inode.written.len();
            inode.unsynced.push((offset, vec![0; len - offset]));
            inode.written.resize(len, 0);
        }
        Ok(())
    }

    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.file_op("read", file)?;
        let inode = s.inode(file);
        let start =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let src = inode
            .written
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8], sync: bool) -> io::Result<()> {
        let offset =
            usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut s = match self.file_op(if sync { "write+sync" } else { "write" }, file) {
            Ok(s) => s,
            Err(e) => {
                // The process died during this write: part of it may be in the page cache.
                let mut s = self.state.borrow_mut();
                let n = s.rng.range(0, data.len() as u64) as usize;
                if s.handles.contains_key(&file.0) && n > 0 {
                    let inode = s.inode(file);
                    put(&mut inode.written, offset, &data[..n]);
                    inode.unsynced.push((offset, data[..n].to_vec()));
                }
                return Err(e);
            }
        };
        let per_million = s.faults.write_fail_per_million;
        if s.rng.chance(per_million) {
            let n = if s.rng.below(2) == 0 {
                0
            } else {
                s.rng.range(0, data.len() as u64) as usize
            };
            let inode = s.inode(file);
            put(&mut inode.written, offset, &data[..n]);
            inode.unsynced.push((offset, data[..n].to_vec()));
            return Err(eio("write"));
        }
        let inode = s.inode(file);
        put(&mut inode.written, offset, data);
        inode.unsynced.push((offset, data.to_vec()));
        if sync {
            s.sync(file)?;
        }
        Ok(())
    }

    fn sync_data(&mut self, file: FileId) -> io::Result<()> {
        let mut s = self.file_op("sync_data", file)?;
        s.sync(file)
    }

    fn sync_all(&mut self, file: FileId) -> io::Result<()> {
        let mut s = self.file_op("sync_all", file)?;
        s.sync(file)
    }

    fn background_steps(&mut self) -> u32 {
        // Often none (preparation then lags and a roll has to finish it), sometimes a burst.
        let mut s = self.state.borrow_mut();
        match s.rng.below(4) {
            0 | 1 => 0,
            2 => 1,
            _ => s.rng.range(2, 8) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_and_unsynced_may_not() {
        for seed in 0..200 {
            let mut sim = SimStorage::new(seed);
            let f = sim.create("f").expect("create");
            sim.sync_dir().expect("sync dir");
            sim.write_at(f, 0, b"durable!", true).expect("write");
            sim.write_at(f, 8, &[7u8; 2000], false).expect("write");
            sim.crash();
            let bytes = sim
                .file_bytes("f")
                .expect("file survives its synced creation");
            assert_eq!(&bytes[..8], b"durable!", "seed {seed}");
            assert!(bytes[8..].iter().all(|&b| b == 7 || b == 0), "seed {seed}");
        }
    }

    #[test]
    fn unsynced_creation_may_vanish_and_both_outcomes_happen() {
        let (mut vanished, mut kept) = (0, 0);
        for seed in 0..100 {
            let mut sim = SimStorage::new(seed);
            sim.create("f").expect("create");
            if sim.crash().dir_reverted {
                assert!(sim.names().is_empty());
                vanished += 1;
            } else {
                assert_eq!(sim.names(), vec!["f".to_string()]);
                kept += 1;
            }
        }
        assert!(vanished > 10 && kept > 10);
    }

    #[test]
    fn a_crash_keeps_a_prefix_of_directory_changes_and_renames_are_atomic() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut sim = SimStorage::new(seed);
            let f = sim.create("tmp").expect("create");
            sim.write_at(f, 0, b"whole", true).expect("write");
            sim.rename("tmp", "final", Overwrite::Never)
                .expect("rename");
            let old = sim.create("old").expect("create old");
            sim.close(old);
            sim.remove("old").expect("remove old");
            let report = sim.crash();
            let names = sim.names();
            // Prefixes of [create tmp, rename, create old, remove old].
            let want: &[&str] = match report.dir_changes {
                (0, 4) => &[],
                (1, 4) => &["tmp"],
                (2, 4) => &["final"],
                (3, 4) => &["final", "old"],
                (4, 4) => &["final"],
                other => panic!("seed {seed}: {other:?}"),
            };
            assert_eq!(names, want, "seed {seed}");
            if let Some(name) = names.iter().find(|n| *n != "old") {
                assert_eq!(sim.file_bytes(name).expect("file"), b"whole", "seed {seed}");
            }
            seen.insert(report.dir_changes.0);
        }
        assert_eq!(seen.len(), 5, "every prefix happens");
    }

    #[test]
    fn rename_refuses_to_replace_unless_allowed() {
        let mut sim = SimStorage::new(3);
        let a = sim.create("a").expect("create");
        sim.write_at(a, 0, b"a", false).expect("write");
        let b = sim.create("b").expect("create");
        sim.write_at(b, 0, b"b", false).expect("write");
        let err = sim
            .rename("a", "b", Overwrite::Never)
            .expect_err("b exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        sim.rename("a", "b", Overwrite::Allow).expect("replace");
        assert_eq!(sim.names(), vec!["b".to_string()]);
        assert_eq!(sim.file_bytes("b").expect("b"), b"a");
    }

    #[test]
    fn the_operation_the_process_died_in_is_reported() {
        let mut sim = SimStorage::new(1);
        let f = sim.create("f").expect("create");
        sim.set_faults(SimFaults {
            crash_after_ops: Some(1),
            ..SimFaults::default()
        });
        sim.write_at(f, 0, b"x", false).expect("op 1");
        assert!(sim.sync_data(f).is_err());
        assert!(sim.sync_dir().is_err());
        assert_eq!(sim.crash().died_at, Some(("sync_data", "f".to_string())));
    }

    #[test]
    fn dead_process_fails_every_operation() {
        let mut sim = SimStorage::new(1);
        sim.set_faults(SimFaults {
            crash_after_ops: Some(2),
            ..SimFaults::default()
        });
        let f = sim.create("f").expect("op 1");
        sim.write_at(f, 0, b"x", false).expect("op 2");
        assert!(sim.sync_data(f).is_err());
        assert!(sim.list().is_err());
        sim.crash();
        assert!(sim.list().is_ok());
    }

    #[test]
    fn prng_is_stable() {
        // Seeds printed by failing tests must replay on every machine and every version.
        let mut r = Prng::new(42);
        assert_eq!(r.next_u64(), 0xBDD7_3226_2FEB_6E95);
    }
}
