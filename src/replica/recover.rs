//! An ensemble member's files: recovery at start (the newest snapshot, then the Raft
//! log's committed entries after it, [`replay`], which the ensemble simulator shares), the Raft position of each snapshot, and writing a
//! snapshot the leader sent.
//!
//! A snapshot file holds a state at a zxid; Raft needs to know which log position that
//! state is. Each snapshot an ensemble member takes or installs gets a small position
//! file (`raft-meta/fk-raftpos.<zxid>`: index and term), written and synced before the
//! snapshot itself, so a snapshot without one is never used as a Raft starting point.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft::eraftpb::{Entry as RaftEntry, EntryType, HardState};

use super::store::SnapshotLoader;
use crate::core::state::DataState;

/// Where the position files live.
pub fn meta_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ferrokeeper").join("raft-meta")
}

fn meta_path(dir: &Path, zxid: i64) -> PathBuf {
    dir.join(format!("fk-raftpos.{zxid:016x}"))
}

/// Durably records that the snapshot at `zxid` is Raft position (`index`, `term`).
pub fn write_meta(dir: &Path, zxid: i64, index: u64, term: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = meta_path(dir, zxid);
    let tmp = path.with_extension("tmp");
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&zxid.to_le_bytes());
    bytes.extend_from_slice(&index.to_le_bytes());
    bytes.extend_from_slice(&term.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes the position files of snapshots that are gone (retention removed them).
pub fn prune_meta(data_dir: &Path) {
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    let Ok(entries) = std::fs::read_dir(meta_dir(data_dir)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("fk-raftpos.")) else {
            continue;
        };
        let Ok(zxid) = i64::from_str_radix(hex, 16) else {
            continue;
        };
        // A superseded snapshot may be stored compressed: its position still applies,
        // as a fallback, restored to its plain name when loaded.
        let snapshot = snap_dir.join(ferrokeeper_storage::snapshot::snapshot_name(zxid));
        let compressed = snap_dir.join(ferrokeeper_storage::snapshot::compressed_name(zxid));
        if !snapshot.exists() && !compressed.exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The Raft position of the snapshot at `zxid`, if recorded and intact.
pub fn read_meta(dir: &Path, zxid: i64) -> Option<(u64, u64)> {
    let b = std::fs::read(meta_path(dir, zxid)).ok()?;
    if b.len() != 32 {
        return None;
    }
    let word = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_le_bytes(a)
    };
    if xxhash_rust::xxh3::xxh3_64(&b[..24]) != word(3) || word(0) as i64 != zxid {
        return None;
    }
    Some((word(1), word(2)))
}

/// What a member starts from.
pub struct Recovered {
    /// The committed state as far as this member knows it.
    pub state: DataState,
    /// The snapshot's Raft position, when the state came from one.
    pub start: Option<(u64, u64)>,
    /// Stored entries after `start`.
    pub entries: Vec<RaftEntry>,
    /// Stored term, vote and commit.
    pub hard_state: Option<HardState>,
    /// Index the state reflects.
    pub applied: u64,
    /// The snapshot on offer to followers (zxid, index, term), if any.
    pub offer: Option<(i64, u64, u64)>,
}

/// Bit of a stored entry's kind: its stored data starts with a commit index (u64 LE),
/// then the entry's own data.
///
/// The last entry of each append carries the commit index its member knew, so that the
/// index is durable exactly when the entries are (one checksummed frame). A restart
/// applies the log up to it and takes the membership from that state; a configuration
/// change needs this. raft-rs lets a change take effect when applied, which is safe
/// while any two configurations members use are at most one change apart, and the
/// leader proposes change k+1 only once it applied change k, so an append carrying
/// change k+1 carries a commit index at or past change k. With the commit index stored
/// apart (once a second, as before), a member that crashed could restart two changes
/// behind and be elected by servers already removed: the ensemble simulator found a
/// txn committed by the current majority lost that way.
pub const COMMIT_STAMP: u8 = 0x80;

/// The stored data of a job's last entry: `commit`, then the entry's data. `None` when
/// the job has no entries.
pub fn commit_stamp(entries: &[RaftEntry], commit: u64) -> Option<Vec<u8>> {
    let last = entries.last()?;
    let mut data = Vec::with_capacity(8 + last.data.len());
    data.extend_from_slice(&commit.to_le_bytes());
    data.extend_from_slice(&last.data);
    Some(data)
}

/// A job's entries as the Raft log stores them: the entry type as the kind (0 normal,
/// 1 conf change, 2 conf change v2) and the last one with `stamp`
/// ([`commit_stamp`]).
pub fn stored_entries<'a>(
    entries: &'a [RaftEntry],
    stamp: Option<&'a [u8]>,
) -> impl Iterator<Item = ferrokeeper_storage::raftlog::EntryRef<'a>> + 'a {
    let last = entries.len().saturating_sub(1);
    entries.iter().enumerate().map(move |(i, e)| {
        let kind = match e.get_entry_type() {
            EntryType::EntryNormal => 0,
            EntryType::EntryConfChange => 1,
            EntryType::EntryConfChangeV2 => 2,
        };
        match stamp.filter(|_| i == last) {
            Some(data) => ferrokeeper_storage::raftlog::EntryRef {
                index: e.index,
                term: e.term,
                kind: kind | COMMIT_STAMP,
                data,
            },
            None => ferrokeeper_storage::raftlog::EntryRef {
                index: e.index,
                term: e.term,
                kind,
                data: &e.data,
            },
        }
    })
}

/// The raft-rs entry for a stored one, and the commit index stamped on it, if any.
///
/// # Errors
/// A stamped entry too short to hold its stamp.
pub fn entry_from_stored(
    e: ferrokeeper_storage::raftlog::Entry,
) -> Result<(RaftEntry, Option<u64>), ReplayError> {
    let mut r = RaftEntry {
        index: e.index,
        term: e.term,
        ..Default::default()
    };
    r.set_entry_type(match e.kind & !COMMIT_STAMP {
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => EntryType::EntryNormal,
    });
    let mut data = e.data;
    let mut stamp = None;
    if e.kind & COMMIT_STAMP != 0 {
        let Some(head) = data.get(..8) else {
            return Err(ReplayError::Entry {
                index: e.index,
                source: super::wire::WireError::Other(format!(
                    "a stamped entry of {} bytes has no commit index",
                    data.len()
                )),
            });
        };
        let mut b = [0u8; 8];
        b.copy_from_slice(head);
        stamp = Some(u64::from_le_bytes(b));
        data.drain(..8);
    }
    r.data = data.into();
    Ok((r, stamp))
}

/// Rebuilds the committed state: the newest snapshot that has a Raft position (or a
/// fresh state with the ensemble's config), then the committed entries after it
/// ([`replay`]).
pub fn recover(
    data_dir: &Path,
    stored: ferrokeeper_storage::raftlog::Recovered,
    config_text: &[u8],
    extended_types: bool,
    log_dir: &Path,
) -> std::io::Result<Recovered> {
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    let metas = meta_dir(data_dir);
    let mut start = None;
    let mut state = None;
    let files = ferrokeeper_storage::snapshot::list(&snap_dir)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    for f in files.iter().rev() {
        let Some(pos) = read_meta(&metas, f.zxid) else {
            tracing::warn!(file = %f.path.display(), "snapshot without a Raft position; not used");
            continue;
        };
        // A compressed (superseded) snapshot is restored to its plain name first.
        match ferrokeeper_storage::snapshot::load(f)
            .map_err(|e| e.to_string())
            .and_then(crate::core::tree::Base::open)
        {
            Ok(base) => {
                let mut loaded = crate::snapshot::state_from_base(Arc::new(base), extended_types);
                // A snapshot of an older format is written back in this build's, at the
                // same zxid, so its Raft position still applies.
                crate::snapshot::write_back_upgraded(&snap_dir, &mut loaded);
                state = Some(loaded);
                start = Some(pos);
                tracing::info!(file = %f.path.display(), index = pos.0, term = pos.1, "loaded snapshot");
                break;
            }
            Err(e) => {
                tracing::warn!(file = %f.path.display(), error = %e, "snapshot rejected; trying an older one")
            }
        }
    }
    let mut state = state.unwrap_or_else(|| {
        DataState::new(crate::core::sequencer::open_acl_unsafe(), extended_types)
    });
    // A reconfig leaves a newer configuration in the state than the files may hold (a
    // restart between the change and the rewrite of the files): the newer one wins.
    let version = |text: &str| {
        super::membership::Membership::parse(text, true)
            .map(|m| m.version)
            .unwrap_or(0)
    };
    if version(&String::from_utf8_lossy(config_text)) >= version(&state.config_text()) {
        state.set_ensemble_config(config_text);
    }
    replay(stored, state, start)
        .map_err(|e| std::io::Error::other(format!("raft log {}: {e}", log_dir.display())))
}

/// Why the stored log cannot continue the state.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A stored entry up to the commit index does not decode: the log is corrupt.
    #[error("entry {index}: {source}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// Why it does not decode.
        source: super::wire::WireError,
    },
    /// The log does not start right after the state's position.
    #[error("the log starts at index {first} but the state to continue (snapshot or empty) is at index {after}; the entries between are missing")]
    Gap {
        /// The log's first stored index.
        first: u64,
        /// The state's index.
        after: u64,
    },
}

/// Replays the committed entries of `stored` (what `RaftLog::open` returned) after
/// `start` (the Raft position `state` reflects; `None`: a fresh state at index 0) onto
/// `state`. What `run_ensemble` does at start and the ensemble simulator at every
/// restart, in one place so the two cannot drift apart.
pub fn replay(
    stored: ferrokeeper_storage::raftlog::Recovered,
    mut state: DataState,
    start: Option<(u64, u64)>,
) -> Result<Recovered, ReplayError> {
    let offer = start.map(|(i, t)| (state.last_zxid, i, t));
    let after = start.map(|s| s.0).unwrap_or(0);
    let mut stamped = 0;
    let mut entries: Vec<RaftEntry> = Vec::with_capacity(stored.entries.len());
    for e in stored.entries.into_iter().filter(|e| e.index > after) {
        let (e, stamp) = entry_from_stored(e)?;
        stamped = stamped.max(stamp.unwrap_or(0));
        entries.push(e);
    }
    if let Some(first) = entries.first() {
        if first.index != after + 1 {
            return Err(ReplayError::Gap {
                first: first.index,
                after,
            });
        }
    }
    let last = entries.last().map(|e| e.index).unwrap_or(after);
    // The commit index is stored beside term and vote and stamped on entries (see
    // `COMMIT_STAMP`): the larger counts. Entries past the last stored one cannot be
    // applied (a torn tail may have taken them), and raft-rs refuses a commit beyond its
    // log.
    let hard_state = stored.hard_state.map(|h| HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit.max(stamped).min(last).max(after),
        ..Default::default()
    });
    let applied = hard_state
        .as_ref()
        .map(|h| h.commit)
        .unwrap_or(after)
        .max(after);
    let mut changes = Vec::new();
    for e in entries.iter().take_while(|e| e.index <= applied) {
        let batch = match super::node::entry_parts(e) {
            Ok(Some((batch, _))) if !batch.is_empty() => batch,
            Ok(_) => continue,
            Err(source) => {
                return Err(ReplayError::Entry {
                    index: e.index,
                    source,
                })
            }
        };
        let entry = super::wire::decode_entry(&batch).map_err(|source| ReplayError::Entry {
            index: e.index,
            source,
        })?;
        for t in entry.txns {
            // A new leader's entries may repeat txns an earlier entry already holds
            // (see `Node::head_of_log`): only the next zxid applies.
            if t.zxid == state.last_zxid + 1 {
                let extended = state.extended_types;
                crate::core::apply::apply(&mut state, &t, extended, &mut changes);
            }
        }
        changes.clear();
    }
    Ok(Recovered {
        state,
        start,
        entries,
        hard_state,
        applied,
        offer,
    })
}

/// Magic of the descriptor a Raft snapshot message carries: the snapshot file itself
/// travels beside Raft, in chunks the follower asks for
/// ([`crate::snapshot::transfer::Pins::read_chunk`]), so a snapshot of any size fits
/// the peer transport's frames and never sits whole in memory.
const DESC_MAGIC: [u8; 8] = *b"FKSNAPD1";

/// Which snapshot file a Raft snapshot message stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapDesc {
    /// The snapshot's zxid (its file name).
    pub zxid: i64,
    /// The file's length in bytes.
    pub len: u64,
}

impl SnapDesc {
    /// The bytes Raft carries.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24);
        b.extend_from_slice(&DESC_MAGIC);
        b.extend_from_slice(&self.zxid.to_le_bytes());
        b.extend_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Reads what [`SnapDesc::encode`] wrote.
    pub fn decode(b: &[u8]) -> Option<SnapDesc> {
        if b.len() != 24 || b[..8] != DESC_MAGIC {
            return None;
        }
        let mut z = [0u8; 8];
        z.copy_from_slice(&b[8..16]);
        let mut l = [0u8; 8];
        l.copy_from_slice(&b[16..24]);
        Some(SnapDesc {
            zxid: i64::from_le_bytes(z),
            len: u64::from_le_bytes(l),
        })
    }
}

fn snap_path(data_dir: &Path, zxid: i64) -> PathBuf {
    crate::snapshot::snap_dir(data_dir).join(ferrokeeper_storage::snapshot::snapshot_name(zxid))
}

/// The descriptor of the snapshot at `zxid` in `snap_dir`, for raft-rs to send a
/// follower. One compressed since it was offered is described by its plain length
/// ([`crate::snapshot::transfer::plain_len`]), and restored when the follower asks for it.
pub fn snapshot_loader(snap_dir: &Path, zxid: i64) -> SnapshotLoader {
    let snap_dir = snap_dir.to_path_buf();
    Arc::new(
        move || match crate::snapshot::transfer::plain_len(&snap_dir, zxid) {
            Ok(len) => Some(SnapDesc { zxid, len }.encode()),
            Err(e) => {
                tracing::warn!(zxid = format_args!("0x{zxid:x}"), error = %e, "the snapshot to offer is gone");
                None
            }
        },
    )
}

/// The temp file a fetched snapshot is written to (removed at startup if left over).
pub fn fetch_path(data_dir: &Path, zxid: i64) -> PathBuf {
    let mut p = snap_path(data_dir, zxid).into_os_string();
    p.push(ferrokeeper_storage::snapshot::TEMP_SUFFIX);
    PathBuf::from(p)
}

/// Completes a snapshot fetched into [`fetch_path`]: records its Raft position, syncs
/// and renames it into place, verifies it like any snapshot file, and returns its state.
pub fn install_fetched(
    data_dir: &Path,
    desc: SnapDesc,
    index: u64,
    term: u64,
    extended_types: bool,
) -> Result<DataState, String> {
    let tmp = fetch_path(data_dir, desc.zxid);
    let path = snap_path(data_dir, desc.zxid);
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    let finish = || -> std::io::Result<()> {
        write_meta(&meta_dir(data_dir), desc.zxid, index, term)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&snap_dir)?.sync_all()
    };
    finish().map_err(|e| format!("installing {}: {e}", path.display()))?;
    let file = ferrokeeper_storage::snapshot::SnapshotFile {
        zxid: desc.zxid,
        name: ferrokeeper_storage::snapshot::snapshot_name(desc.zxid),
        path: path.clone(),
        bytes: desc.len,
    };
    let base = ferrokeeper_storage::snapshot::read(&file)
        .map_err(|e| e.to_string())
        .and_then(crate::core::tree::Base::open)?;
    Ok(crate::snapshot::state_from_base(
        Arc::new(base),
        extended_types,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_storage::raftlog::{Entry as StoredEntry, HardState as StoredHs};

    fn raft_entry(index: u64, kind: EntryType, data: &[u8]) -> RaftEntry {
        let mut e = RaftEntry {
            index,
            term: 1,
            data: data.to_vec().into(),
            ..Default::default()
        };
        e.set_entry_type(kind);
        e
    }

    fn stored(entries: &[RaftEntry], commit: u64) -> Vec<StoredEntry> {
        let stamp = commit_stamp(entries, commit);
        stored_entries(entries, stamp.as_deref())
            .map(|r| StoredEntry {
                index: r.index,
                term: r.term,
                kind: r.kind,
                data: r.data.to_vec(),
            })
            .collect()
    }

    #[test]
    fn the_last_entry_of_an_append_carries_the_commit_index() {
        let entries = [
            raft_entry(5, EntryType::EntryNormal, b"a"),
            raft_entry(6, EntryType::EntryConfChangeV2, b"cc"),
        ];
        let out = stored(&entries, 4);
        assert_eq!((out[0].kind, out[0].data.as_slice()), (0, &b"a"[..]));
        assert_eq!(out[1].kind, 2 | COMMIT_STAMP);
        let (back, stamp) = entry_from_stored(out[1].clone()).expect("decodes");
        assert_eq!(stamp, Some(4));
        assert_eq!(back.get_entry_type(), EntryType::EntryConfChangeV2);
        assert_eq!(&back.data[..], b"cc");
        let (first, none) = entry_from_stored(out[0].clone()).expect("decodes");
        assert_eq!((none, &first.data[..]), (None, &b"a"[..]));
        assert!(commit_stamp(&[], 9).is_none());
    }

    #[test]
    fn a_stamp_too_short_for_its_commit_index_is_an_error() {
        let e = StoredEntry {
            index: 3,
            term: 1,
            kind: COMMIT_STAMP,
            data: vec![1, 2, 3],
        };
        assert!(matches!(
            entry_from_stored(e),
            Err(ReplayError::Entry { index: 3, .. })
        ));
    }

    #[test]
    fn replay_commits_up_to_the_newest_stamp_when_the_hard_state_lags() {
        // Empty (no-op) entries: the stamp alone moves the commit index.
        let entries: Vec<RaftEntry> = (1..=4)
            .map(|i| raft_entry(i, EntryType::EntryNormal, b""))
            .collect();
        let mut log = stored(&entries[..3], 2);
        log.extend(stored(&entries[3..], 3));
        let recovered = ferrokeeper_storage::raftlog::Recovered {
            entries: log,
            hard_state: Some(StoredHs {
                term: 1,
                vote: 1,
                commit: 1,
            }),
            torn_tail: None,
        };
        let state = DataState::new(crate::core::sequencer::open_acl_unsafe(), false);
        let r = replay(recovered, state, None).expect("replays");
        assert_eq!(r.hard_state.map(|h| h.commit), Some(3));
        assert_eq!(r.applied, 3);
    }
}
