//! The hard-state file: Raft's term, vote and commit, in two checksummed slots.
//!
//! `storage/FORMAT.md`, "Raft hard state", is the specification; the constants here mirror
//! it. Why two slots rather than write-temp-then-rename: a save is then one write and one
//! fdatasync into a file whose size never changes, instead of a create, an fsync, a rename
//! and a directory fsync. A save always overwrites the slot that does *not* hold the newest
//! value, so a crash that tears it leaves the other slot, the previous value, intact.

use xxhash_rust::xxh3::xxh3_64;

use super::HardState;
use crate::backend::{FileId, Storage};
use crate::log::LogError;

/// Name of the hard-state file, in the Raft log's directory. It does not start with the
/// segment prefix `fk-raft.`, so segment listing never sees it.
pub const HARD_STATE_FILE_NAME: &str = "fk-raft-hardstate";
/// Magic at byte 0 of each slot: "ferrokeeper raft hard state".
pub const HARD_STATE_MAGIC: [u8; 8] = *b"FKRAFTHS";
/// The slot format version this code writes, and the newest it reads.
pub const HARD_STATE_VERSION: u32 = 1;
/// Offsets of the two slots. 4 KiB apart, so that no device writes both in one sector or
/// page: a torn write of one cannot touch the other.
pub const HARD_STATE_SLOT_OFFSETS: [u64; 2] = [0, 4096];
/// Length of the file, preallocated at creation.
pub const HARD_STATE_FILE_BYTES: u64 = 8192;

/// Offset in a slot of the magic (8 bytes).
pub const SLOT_MAGIC_OFFSET: usize = 0;
/// Offset of the version (u32).
pub const SLOT_VERSION_OFFSET: usize = 8;
/// Offset of the flags (u32, zero in version 1).
pub const SLOT_FLAGS_OFFSET: usize = 12;
/// Offset of the sequence number (u64): 1 for the first save, +1 per save; a slot with
/// sequence `n` is slot `n % 2`.
pub const SLOT_SEQUENCE_OFFSET: usize = 16;
/// Offset of the term (u64).
pub const SLOT_TERM_OFFSET: usize = 24;
/// Offset of the vote (u64, 0 = none, as in Raft).
pub const SLOT_VOTE_OFFSET: usize = 32;
/// Offset of the commit index (u64).
pub const SLOT_COMMIT_OFFSET: usize = 40;
/// Offset of the checksum (u64): XXH3-64 of bytes `[0, SLOT_CHECKSUM_OFFSET)`.
pub const SLOT_CHECKSUM_OFFSET: usize = 48;
/// Size of a slot.
pub const SLOT_BYTES: usize = 56;

/// One slot as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Never written: all zeros.
    Empty,
    /// Checksum, magic or length wrong: a torn save, or damage.
    Invalid,
    /// A whole save.
    Valid { sequence: u64, state: HardState },
    /// A whole save in a newer format.
    Newer(u32),
}

/// Encodes the slot of save number `sequence`.
pub(crate) fn encode_slot(sequence: u64, hs: &HardState) -> [u8; SLOT_BYTES] {
    let mut b = [0u8; SLOT_BYTES];
    b[SLOT_MAGIC_OFFSET..SLOT_MAGIC_OFFSET + 8].copy_from_slice(&HARD_STATE_MAGIC);
    b[SLOT_VERSION_OFFSET..SLOT_VERSION_OFFSET + 4]
        .copy_from_slice(&HARD_STATE_VERSION.to_le_bytes());
    for (at, v) in [
        (SLOT_SEQUENCE_OFFSET, sequence),
        (SLOT_TERM_OFFSET, hs.term),
        (SLOT_VOTE_OFFSET, hs.vote),
        (SLOT_COMMIT_OFFSET, hs.commit),
    ] {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    let checksum = xxh3_64(&b[..SLOT_CHECKSUM_OFFSET]);
    b[SLOT_CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    b
}

/// Decodes one slot.
pub(crate) fn decode_slot(b: &[u8; SLOT_BYTES]) -> Slot {
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at = |at: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(a)
    };
    if b.iter().all(|&x| x == 0) {
        return Slot::Empty;
    }
    if b[SLOT_MAGIC_OFFSET..SLOT_MAGIC_OFFSET + 8] != HARD_STATE_MAGIC
        || u64_at(SLOT_CHECKSUM_OFFSET) != xxh3_64(&b[..SLOT_CHECKSUM_OFFSET])
    {
        return Slot::Invalid;
    }
    let version = u32_at(SLOT_VERSION_OFFSET);
    if version > HARD_STATE_VERSION {
        return Slot::Newer(version);
    }
    let sequence = u64_at(SLOT_SEQUENCE_OFFSET);
    if version == 0 || u32_at(SLOT_FLAGS_OFFSET) != 0 || sequence == 0 {
        return Slot::Invalid;
    }
    Slot::Valid {
        sequence,
        state: HardState {
            term: u64_at(SLOT_TERM_OFFSET),
            vote: u64_at(SLOT_VOTE_OFFSET),
            commit: u64_at(SLOT_COMMIT_OFFSET),
        },
    }
}

/// The newest hard state of the two slots and its sequence (0 if none was ever saved).
/// `slots[i]` was read at `HARD_STATE_SLOT_OFFSETS[i]`.
pub(crate) fn choose<S: Storage>(
    storage: &S,
    slots: [Slot; 2],
) -> Result<(u64, Option<HardState>), LogError> {
    let file = storage.path(HARD_STATE_FILE_NAME);
    let corrupt = |slot: usize, reason: String| LogError::Corrupt {
        file: file.clone(),
        offset: HARD_STATE_SLOT_OFFSETS[slot],
        reason,
    };
    let mut best: Option<(u64, HardState)> = None;
    for (i, slot) in slots.iter().enumerate() {
        match *slot {
            Slot::Newer(version) => {
                return Err(LogError::UnsupportedVersion {
                    file: file.clone(),
                    version,
                    supported: HARD_STATE_VERSION,
                })
            }
            Slot::Valid { sequence, state } => {
                if sequence % 2 != i as u64 {
                    return Err(corrupt(
                        i,
                        format!("hard state save {sequence} found in slot {i}"),
                    ));
                }
                if best.is_none_or(|(s, _)| sequence > s) {
                    best = Some((sequence, state));
                }
            }
            Slot::Empty | Slot::Invalid => {}
        }
    }
    let invalid = slots.iter().filter(|s| **s == Slot::Invalid).count();
    match (best, invalid) {
        // Only one save is ever in flight, and each is synced before the next begins: two
        // bad slots cannot both be torn saves.
        (_, 2) => Err(corrupt(0, "both hard state slots are damaged".into())),
        (Some((sequence, state)), n) => {
            if n == 1 {
                tracing::warn!(file = %file.display(), sequence,
                    "raft hard state: one slot is torn (a save interrupted by a crash); using the other");
            }
            Ok((sequence, Some(state)))
        }
        (None, n) => {
            if n == 1 {
                tracing::warn!(file = %file.display(),
                    "raft hard state: the first save was torn by a crash; no hard state");
            }
            Ok((0, None))
        }
    }
}

/// Opens (creating, preallocated and durable) the hard-state file and reads the newest
/// value. Returns the open file and the sequence of that value.
pub(crate) fn open<S: Storage>(
    storage: &mut S,
) -> Result<(FileId, u64, Option<HardState>), LogError> {
    let path = storage.path(HARD_STATE_FILE_NAME);
    let io = |op, source| LogError::Io {
        op,
        file: path.clone(),
        source,
    };
    let file = match storage.open(HARD_STATE_FILE_NAME) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let f = storage
                .create(HARD_STATE_FILE_NAME)
                .map_err(|e| io("create", e))?;
            let made = (|| {
                storage
                    .allocate(f, HARD_STATE_FILE_BYTES)
                    .map_err(|e| io("fallocate", e))?;
                // fsync, not fdatasync: the size must be durable, so that saves never change it.
                storage.sync_all(f).map_err(|e| io("fsync", e))?;
                storage.sync_dir().map_err(|e| io("fsync directory", e))
            })();
            if let Err(e) = made {
                storage.close(f);
                return Err(e);
            }
            return Ok((f, 0, None));
        }
        Err(e) => return Err(io("open", e)),
    };
    let read = (|| {
        let len = storage.len(file).map_err(|e| io("stat", e))?;
        let mut slots = [Slot::Empty; 2];
        for (slot, &at) in slots.iter_mut().zip(HARD_STATE_SLOT_OFFSETS.iter()) {
            // A file shorter than a slot's end is a creation that a crash interrupted
            // before its allocation was durable: the missing bytes read as zero.
            let mut b = [0u8; SLOT_BYTES];
            let have = len.saturating_sub(at).min(SLOT_BYTES as u64) as usize;
            if have > 0 {
                storage
                    .read_at(file, at, &mut b[..have])
                    .map_err(|e| io("read", e))?;
            }
            *slot = decode_slot(&b);
        }
        let chosen = choose(storage, slots)?;
        if len < HARD_STATE_FILE_BYTES {
            storage
                .allocate(file, HARD_STATE_FILE_BYTES)
                .map_err(|e| io("fallocate", e))?;
            storage.sync_all(file).map_err(|e| io("fsync", e))?;
        }
        // The directory entry may be no more durable than the crash left it.
        storage.sync_dir().map_err(|e| io("fsync directory", e))?;
        Ok(chosen)
    })();
    match read {
        Ok((sequence, state)) => Ok((file, sequence, state)),
        Err(e) => {
            storage.close(file);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(term: u64) -> HardState {
        HardState {
            term,
            vote: 2,
            commit: 3,
        }
    }

    #[test]
    fn slot_layout_and_round_trip() {
        let b = encode_slot(5, &hs(7));
        assert_eq!(&b[0..8], b"FKRAFTHS");
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[16..24], &5u64.to_le_bytes());
        assert_eq!(&b[24..32], &7u64.to_le_bytes());
        assert_eq!(
            decode_slot(&b),
            Slot::Valid {
                sequence: 5,
                state: hs(7)
            }
        );
        for i in 0..SLOT_BYTES {
            let mut bad = b;
            bad[i] ^= 0x20;
            assert_eq!(decode_slot(&bad), Slot::Invalid, "flip at {i}");
        }
        assert_eq!(decode_slot(&[0; SLOT_BYTES]), Slot::Empty);
    }

    #[test]
    fn the_newest_whole_slot_wins() {
        let sim = crate::backend::sim::SimStorage::new(1);
        let v = |sequence, term| Slot::Valid {
            sequence,
            state: hs(term),
        };
        assert_eq!(
            choose(&sim, [v(4, 1), v(5, 2)]).ok(),
            Some((5, Some(hs(2))))
        );
        assert_eq!(
            choose(&sim, [v(6, 3), v(5, 2)]).ok(),
            Some((6, Some(hs(3))))
        );
        assert_eq!(
            choose(&sim, [Slot::Invalid, v(5, 2)]).ok(),
            Some((5, Some(hs(2))))
        );
        assert_eq!(
            choose(&sim, [Slot::Empty, Slot::Empty]).ok(),
            Some((0, None))
        );
        assert_eq!(
            choose(&sim, [Slot::Invalid, Slot::Empty]).ok(),
            Some((0, None))
        );
        assert!(matches!(
            choose(&sim, [Slot::Invalid, Slot::Invalid]),
            Err(LogError::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            choose(&sim, [v(5, 1), Slot::Empty]),
            Err(LogError::Corrupt { offset: 0, .. })
        ));
        assert!(matches!(
            choose(&sim, [Slot::Newer(2), Slot::Empty]),
            Err(LogError::UnsupportedVersion { version: 2, .. })
        ));
    }
}
