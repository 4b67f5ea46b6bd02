//! Snapshots in transfer to a follower: pinned against compression and retention, and
//! restored from `.zst` when a follower asks for one that was compressed all the same.
//!
//! A follower behind its leader's log start gets a Raft message naming a snapshot by
//! zxid and length, then fetches the file chunk by chunk beside Raft
//! (`replica::driver`, `KIND_SNAP_REQ`). Meanwhile the member serving it may write a
//! newer snapshot, and its compressor would compress the one named, or retention remove
//! it; the follower found the file gone and stopped (fail-stop: its Raft has already
//! taken the snapshot's position). So:
//!
//! - Every chunk asked for pins its snapshot for [`PIN_FOR`] ([`Pins::pin`]); the
//!   compressor and retention leave a pinned snapshot alone ([`Pins::claim`]).
//! - A chunk of a snapshot whose plain file is gone but whose `.zst` is there (it was
//!   compressed before the first chunk was asked for: a newer snapshot came between the
//!   Raft message and the request, or this member restarted mid-transfer and lost its
//!   pins) has the `.zst` restored to its plain name on a thread of its own, by the
//!   restore the startup fallback uses (`snapfile::restore_with`). Until that is done
//!   the follower is answered "not yet" ([`Chunk::NotYet`]) and asks again, rather than
//!   the step loop of this member waiting the seconds a large restore takes.
//! - One thread at a time works on a snapshot's files: the compressor, retention and a
//!   restore each hold a [`Claim`] on its zxid while they do.
//!
//! Reading a plain file needs no claim: a snapshot file is never written after its
//! rename, and a read that opened it before a removal reads it whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferrokeeper_storage::snapshot as snapfile;

/// How long a snapshot stays pinned after the last chunk asked of it. A live fetch
/// asks again within `CHUNK_WAIT` (2 s) of its last request, and gives up after
/// `CHUNK_TRIES` × `CHUNK_WAIT` = 30 s without an answer (`replica::driver`, which
/// checks at compile time that this outlasts that): 60 s is twice the longest gap a
/// fetch that is still going can leave. What a pin costs is one superseded snapshot
/// kept plain, or past retention, that much longer (until the pass after the pin has
/// expired: the compressor and retention run after each new snapshot).
pub const PIN_FOR: Duration = Duration::from_secs(60);

/// The pins and claims of one snapshot directory, shared by the ensemble driver (which
/// pins and restores) and the snapshot threads (which compress and remove).
#[derive(Debug, Default)]
pub struct Pins {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Pinned zxids, each with the instant its pin expires.
    pinned: BTreeMap<i64, Instant>,
    /// Zxids whose files a thread is working on (compressing, removing, restoring).
    // Invariant: a zxid is here exactly while one `Claim` on it exists.
    claimed: BTreeSet<i64>,
    /// Zxids whose restore failed, and why: answered "gone" while they stay pinned
    /// rather than restored again at every request.
    failed: BTreeMap<i64, String>,
}

impl State {
    fn expire(&mut self, now: Instant) {
        self.pinned.retain(|_, until| *until > now);
        let pinned = &self.pinned;
        self.failed.retain(|zxid, _| pinned.contains_key(zxid));
    }
}

/// The right to work on one snapshot's files (compress, remove or restore them), given
/// by [`Pins::claim`]; released when dropped.
#[derive(Debug)]
pub struct Claim {
    pins: Arc<Pins>,
    zxid: i64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let released = self.pins.state().claimed.remove(&self.zxid);
        assert!(released, "claim on 0x{:x} was not recorded", self.zxid);
    }
}

/// What a follower's chunk request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes of the plain file from the offset asked (fewer at its end, none past it).
    Bytes(Vec<u8>),
    /// The plain file is being restored from its `.zst` (or its files are otherwise
    /// being worked on): ask again shortly.
    NotYet,
    /// Neither the plain file nor the `.zst` is there, or it cannot be read or
    /// restored: why.
    Gone(String),
}

impl Pins {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pins the snapshot at `zxid` until `now` + [`PIN_FOR`] (or later, if it already is).
    pub fn pin(&self, zxid: i64, now: Instant) {
        let mut s = self.state();
        s.expire(now);
        let until = now + PIN_FOR;
        let at = s.pinned.entry(zxid).or_insert(until);
        *at = (*at).max(until);
    }

    /// Whether the snapshot at `zxid` is pinned at `now`.
    pub fn pinned(&self, zxid: i64, now: Instant) -> bool {
        self.state()
            .pinned
            .get(&zxid)
            .is_some_and(|until| *until > now)
    }

    /// A claim on the files of the snapshot at `zxid`, for the compressor and
    /// retention: none while the snapshot is pinned, or while another claim holds it.
    pub fn claim(self: &Arc<Self>, zxid: i64, now: Instant) -> Option<Claim> {
        let mut s = self.state();
        s.expire(now);
        if s.pinned.contains_key(&zxid) || !s.claimed.insert(zxid) {
            return None;
        }
        Some(Claim {
            pins: self.clone(),
            zxid,
        })
    }

    /// Up to `len` bytes from `offset` of the snapshot at `zxid` in `dir`, for a
    /// follower, after pinning it. When the plain file is gone and the `.zst` is there,
    /// starts restoring it (unless a thread already works on its files) and answers
    /// [`Chunk::NotYet`]; see the module's doc.
    pub fn read_chunk(
        self: &Arc<Self>,
        dir: &Path,
        zxid: i64,
        offset: u64,
        len: usize,
        now: Instant,
    ) -> Chunk {
        self.pin(zxid, now);
        let plain = dir.join(snapfile::snapshot_name(zxid));
        match read_at(&plain, offset, len) {
            Ok(bytes) => return Chunk::Bytes(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Chunk::Gone(format!("{}: {e}", plain.display())),
        }
        let mut s = self.state();
        if s.claimed.contains(&zxid) {
            return Chunk::NotYet;
        }
        if let Some(why) = s.failed.get(&zxid) {
            return Chunk::Gone(format!("restoring it failed: {why}"));
        }
        // A restore that ended between the read above and the lock left the plain file.
        if plain.exists() {
            return Chunk::NotYet;
        }
        let zst = dir.join(snapfile::compressed_name(zxid));
        if !zst.exists() {
            return Chunk::Gone(format!(
                "neither {} nor {} exists",
                plain.display(),
                zst.display()
            ));
        }
        s.claimed.insert(zxid);
        drop(s);
        let claim = Claim {
            pins: self.clone(),
            zxid,
        };
        match restore_in_background(dir.to_path_buf(), claim) {
            Ok(()) => Chunk::NotYet,
            Err(e) => Chunk::Gone(format!("cannot start restoring {}: {e}", zst.display())),
        }
    }
}

/// The length of the plain file of the snapshot at `zxid` in `dir` (of a compressed
/// one, the length it restores to: the first chunk request restores it), for a Raft
/// message that names it. It pins nothing: raft-rs builds such a message for a follower
/// that is down as well, and a pin is for a transfer under way.
pub fn plain_len(dir: &Path, zxid: i64) -> Result<u64, String> {
    let plain = dir.join(snapfile::snapshot_name(zxid));
    match std::fs::metadata(&plain) {
        Ok(m) => return Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", plain.display())),
    }
    let name = snapfile::compressed_name(zxid);
    let file = snapfile::SnapshotFile {
        zxid,
        path: dir.join(&name),
        name,
        bytes: 0,
    };
    snapfile::plain_bytes(&file).map_err(|e| e.to_string())
}

/// Restores the `.zst` of the snapshot `claim` names, in `dir`, on a thread of its own
/// (off the calling thread's CPU, as a snapshot's), then pins it afresh; a failure is
/// remembered for [`Pins::read_chunk`] to answer with. The claim is held until the end.
fn restore_in_background(dir: PathBuf, claim: Claim) -> std::io::Result<()> {
    let caller_cpu = super::current_cpu();
    let zxid = claim.zxid;
    tracing::info!(
        zxid = format_args!("0x{zxid:x}"),
        "a follower asks for a compressed snapshot: restoring it"
    );
    std::thread::Builder::new()
        .name("snapshot-restore".into())
        .spawn(move || {
            if let Some(cpu) = caller_cpu {
                super::keep_off_cpu(cpu);
            }
            let started = Instant::now();
            match restore(&dir, zxid) {
                Ok(file) => {
                    tracing::info!(
                        file = %file.path.display(), bytes = file.bytes, elapsed = ?started.elapsed(),
                        "restored a compressed snapshot for a follower"
                    );
                    claim.pins.pin(zxid, Instant::now());
                }
                Err(e) => {
                    tracing::error!(zxid = format_args!("0x{zxid:x}"), error = %e, "restoring a compressed snapshot for a follower failed");
                    claim.pins.state().failed.insert(zxid, e);
                }
            }
            drop(claim);
        })
        .map(|_| ())
}

/// Restores the compressed snapshot at `zxid` in `dir` to its plain name
/// (`snapfile::restore_with`); returns the plain file.
fn restore(dir: &Path, zxid: i64) -> Result<snapfile::SnapshotFile, String> {
    let mut storage = super::snapshot_storage(dir).map_err(|e| e.to_string())?;
    let listed = snapfile::list_with(&mut storage).map_err(|e| e.to_string())?;
    let Some(file) = listed.into_iter().find(|f| f.zxid == zxid) else {
        return Err(format!(
            "snapshot 0x{zxid:x} is gone from {}",
            dir.display()
        ));
    };
    if !file.is_compressed() {
        // Plain already: nothing to restore.
        return Ok(file);
    }
    snapfile::restore_with(&mut storage, &file).map_err(|e| e.to_string())
}

/// Up to `len` bytes of the file at `path` from `offset`.
fn read_at(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotPolicy;

    /// Writes a plain snapshot at each of `zxids` into `dir`, with a payload of its own
    /// that compresses; returns each file's bytes.
    fn write_snapshots(dir: &Path, zxids: &[i64]) -> BTreeMap<i64, Vec<u8>> {
        zxids
            .iter()
            .map(|&z| {
                let payload: Vec<u8> = (0..20_000i64).map(|i| (i / 7 + z) as u8).collect();
                let path = snapfile::write(dir, z, &payload).expect("write");
                (z, std::fs::read(path).expect("read back"))
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        n.sort();
        n
    }

    /// Asks for a chunk until the answer is not [`Chunk::NotYet`] (as a follower does,
    /// bounded by a deadline for a broken restore, not a timing assertion).
    fn chunk_when_ready(pins: &Arc<Pins>, dir: &Path, zxid: i64, offset: u64, len: usize) -> Chunk {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match pins.read_chunk(dir, zxid, offset, len, Instant::now()) {
                Chunk::NotYet => {
                    assert!(Instant::now() < deadline, "never ready: {:?}", names(dir));
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// A snapshot the retention after a new snapshot passed over, because the
    /// compressor held it then, goes with the compressor's next pass: without that it
    /// stayed past `snapRetainCount` until the next snapshot.
    #[test]
    fn a_compression_pass_applies_the_retention_it_held_up() {
        let d = tempfile::tempdir().expect("tempdir");
        write_snapshots(d.path(), &[1, 2, 3, 4, 5]);
        let policy = Arc::new(SnapshotPolicy::new(d.path().to_path_buf(), 10, 3, true));
        let held = policy.pins.claim(1, Instant::now()).expect("claim");
        policy.retain_and_mark().expect("retain");
        assert_eq!(names(d.path()).len(), 4, "{:?}", names(d.path()));
        drop(held);
        policy.compress_pass();
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(3),
                snapfile::compressed_name(4),
                snapfile::snapshot_name(5),
            ]
        );
    }

    /// A snapshot pinned for a transfer is left plain by the compressor and kept past
    /// retention (while the log mark still follows the newest `retain`); once its pin
    /// has expired, the next pass compresses it and the next retention removes it.
    #[test]
    fn a_pinned_snapshot_is_neither_compressed_nor_purged() {
        let d = tempfile::tempdir().expect("tempdir");
        write_snapshots(d.path(), &[1, 2, 3, 4, 5]);
        let policy = Arc::new(SnapshotPolicy::new(d.path().to_path_buf(), 10, 3, true));
        let now = Instant::now();
        policy.pins.pin(1, now);
        policy.pins.pin(3, now);
        policy.compress_pass();
        policy.retain_and_mark().expect("retain");
        assert_eq!(
            names(d.path()),
            [
                snapfile::snapshot_name(1),
                snapfile::snapshot_name(3),
                snapfile::compressed_name(4),
                snapfile::snapshot_name(5),
            ]
        );
        assert_eq!(
            policy
                .purge_through
                .load(std::sync::atomic::Ordering::Acquire),
            3
        );
        // The pins expire (as if PIN_FOR had passed with no chunk asked).
        for until in policy.pins.state().pinned.values_mut() {
            *until = now;
        }
        assert!(!policy.pins.pinned(1, Instant::now()));
        policy.compress_pass();
        policy.retain_and_mark().expect("retain");
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(3),
                snapfile::compressed_name(4),
                snapfile::snapshot_name(5),
            ]
        );
        assert!(policy.pins.state().claimed.is_empty());
    }

    /// A follower asking for a snapshot that was compressed is answered "not yet" while
    /// the `.zst` is restored on a thread of its own, then served the plain file byte for
    /// byte; a Raft message describes it by its plain length before the restore; the
    /// restored file stays pinned, so the compressor leaves it plain. A snapshot in
    /// neither form is gone.
    #[test]
    fn a_compressed_snapshot_is_restored_for_a_follower_and_served_byte_for_byte() {
        let d = tempfile::tempdir().expect("tempdir");
        let plain = write_snapshots(d.path(), &[0x10, 0x20, 0x30]);
        let policy = Arc::new(SnapshotPolicy::new(d.path().to_path_buf(), 10, 3, true));
        policy.compress_pass();
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(0x10),
                snapfile::compressed_name(0x20),
                snapfile::snapshot_name(0x30),
            ]
        );
        let pins = &policy.pins;
        let whole = &plain[&0x20];
        assert_eq!(plain_len(d.path(), 0x20), Ok(whole.len() as u64));
        assert!(!pins.pinned(0x20, Instant::now()));
        assert_eq!(
            pins.read_chunk(d.path(), 0x20, 0, 1 << 20, Instant::now()),
            Chunk::NotYet
        );
        assert_eq!(
            chunk_when_ready(pins, d.path(), 0x20, 0, 1 << 20),
            Chunk::Bytes(whole.clone())
        );
        assert_eq!(
            pins.read_chunk(d.path(), 0x20, 100, 50, Instant::now()),
            Chunk::Bytes(whole[100..150].to_vec())
        );
        assert_eq!(
            pins.read_chunk(d.path(), 0x20, whole.len() as u64, 50, Instant::now()),
            Chunk::Bytes(Vec::new())
        );
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(0x10),
                snapfile::snapshot_name(0x20),
                snapfile::snapshot_name(0x30),
            ]
        );
        assert!(pins.pinned(0x20, Instant::now()));
        policy.compress_pass();
        assert!(d.path().join(snapfile::snapshot_name(0x20)).exists());
        assert_eq!(plain_len(d.path(), 0x20), Ok(whole.len() as u64));
        match pins.read_chunk(d.path(), 0x40, 0, 10, Instant::now()) {
            Chunk::Gone(why) => assert!(why.contains("neither"), "{why}"),
            other => panic!("expected gone, got {other:?}"),
        }
        assert!(plain_len(d.path(), 0x40).is_err());
        assert!(pins.state().claimed.is_empty());
    }

    /// While another thread works on a snapshot's files (here a claim held as the
    /// compressor holds one), a chunk of it is "not yet" and no restore starts; once
    /// the claim is released the restore runs. The pin a request leaves keeps the
    /// compressor's and retention's claims off it.
    #[test]
    fn no_restore_starts_while_another_claim_holds_the_snapshot() {
        let d = tempfile::tempdir().expect("tempdir");
        let plain = write_snapshots(d.path(), &[0x10, 0x20]);
        snapfile::compress_superseded_with(
            &mut crate::snapshot::snapshot_storage(d.path()).expect("storage"),
            snapfile::LEVEL,
        )
        .expect("compress");
        let pins = Arc::new(Pins::default());
        let held = pins.claim(0x10, Instant::now()).expect("claim");
        assert!(pins.claim(0x10, Instant::now()).is_none());
        for _ in 0..3 {
            assert_eq!(
                pins.read_chunk(d.path(), 0x10, 0, 1 << 20, Instant::now()),
                Chunk::NotYet
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(0x10),
                snapfile::snapshot_name(0x20)
            ]
        );
        drop(held);
        assert!(
            pins.claim(0x10, Instant::now()).is_none(),
            "pinned by the request"
        );
        assert_eq!(
            chunk_when_ready(&pins, d.path(), 0x10, 0, 1 << 20),
            Chunk::Bytes(plain[&0x10].clone())
        );
    }

    /// A `.zst` that does not restore is answered "gone" with the reason, left where it
    /// is with no temp file beside it, and not restored again at every request.
    #[test]
    fn a_damaged_compressed_snapshot_is_gone_after_one_restore() {
        let d = tempfile::tempdir().expect("tempdir");
        write_snapshots(d.path(), &[0x10, 0x20]);
        snapfile::compress_superseded_with(
            &mut crate::snapshot::snapshot_storage(d.path()).expect("storage"),
            snapfile::LEVEL,
        )
        .expect("compress");
        let zst = d.path().join(snapfile::compressed_name(0x10));
        let bytes = std::fs::read(&zst).expect("zst");
        std::fs::write(&zst, &bytes[..bytes.len() / 2]).expect("cut");
        let pins = Arc::new(Pins::default());
        match chunk_when_ready(&pins, d.path(), 0x10, 0, 1 << 20) {
            Chunk::Gone(why) => assert!(why.contains("restoring it failed"), "{why}"),
            other => panic!("expected gone, got {other:?}"),
        }
        assert!(matches!(
            pins.read_chunk(d.path(), 0x10, 0, 1 << 20, Instant::now()),
            Chunk::Gone(_)
        ));
        assert_eq!(
            names(d.path()),
            [
                snapfile::compressed_name(0x10),
                snapfile::snapshot_name(0x20)
            ]
        );
    }
}
