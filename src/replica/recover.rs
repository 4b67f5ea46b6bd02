//! An ensemble member's files: recovery at start (the newest snapshot, then the Raft
//! log's committed entries after it), the Raft position of each snapshot, and writing a
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

/// The raft-rs entry for a stored one.
pub fn entry_from_stored(e: ferrokeeper_storage::raftlog::Entry) -> RaftEntry {
    let mut r = RaftEntry {
        index: e.index,
        term: e.term,
        ..Default::default()
    };
    r.set_entry_type(match e.kind {
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => EntryType::EntryNormal,
    });
    r.data = e.data.into();
    r
}

/// Rebuilds the committed state: the newest snapshot that has a Raft position (or a
/// fresh state with the ensemble's config), then the committed entries after it.
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
        match ferrokeeper_storage::snapshot::read(f)
            .map_err(|e| e.to_string())
            .and_then(crate::core::tree::Base::open)
        {
            Ok(base) => {
                state = Some(crate::snapshot::state_from_base(
                    Arc::new(base),
                    extended_types,
                ));
                start = Some(pos);
                tracing::info!(file = %f.path.display(), index = pos.0, term = pos.1, "loaded snapshot");
                break;
            }
            Err(e) => {
                tracing::warn!(file = %f.path.display(), error = %e, "snapshot rejected; trying an older one")
            }
        }
    }
    let offer = start.and_then(|(i, t)| state.as_ref().map(|s: &DataState| (s.last_zxid, i, t)));
    let mut state = state.unwrap_or_else(|| {
        DataState::new(crate::core::sequencer::open_acl_unsafe(), extended_types)
    });
    state.set_ensemble_config(config_text);
    let after = start.map(|s| s.0).unwrap_or(0);
    let entries: Vec<RaftEntry> = stored
        .entries
        .into_iter()
        .filter(|e| e.index > after)
        .map(entry_from_stored)
        .collect();
    if let Some(first) = entries.first() {
        if first.index != after + 1 {
            return Err(std::io::Error::other(format!(
                "raft log {}: the log starts at index {} but the state to continue (snapshot or empty) is at index {after}; the entries between are missing",
                log_dir.display(),
                first.index
            )));
        }
    }
    let last = entries.last().map(|e| e.index).unwrap_or(after);
    let hard_state = stored.hard_state.map(|h| HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit.min(last).max(after),
        ..Default::default()
    });
    let applied = hard_state
        .as_ref()
        .map(|h| h.commit)
        .unwrap_or(after)
        .max(after);
    let mut changes = Vec::new();
    for e in entries.iter().take_while(|e| e.index <= applied) {
        if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
            continue;
        }
        let entry = super::wire::decode_entry(&e.data).map_err(|err| {
            std::io::Error::other(format!(
                "raft log {}: entry {}: {err}",
                log_dir.display(),
                e.index
            ))
        })?;
        for t in entry.txns {
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

/// Loads the snapshot at `zxid` for a follower: its zxid, then the whole file.
pub fn snapshot_loader(data_dir: &Path, zxid: i64) -> SnapshotLoader {
    let path = crate::snapshot::snap_dir(data_dir)
        .join(ferrokeeper_storage::snapshot::snapshot_name(zxid));
    Arc::new(move || {
        let file = match std::fs::read(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the snapshot to send");
                return None;
            }
        };
        let mut data = Vec::with_capacity(8 + file.len());
        data.extend_from_slice(&zxid.to_le_bytes());
        data.extend_from_slice(&file);
        Some(data)
    })
}

/// Writes a snapshot the leader sent (`data` from a [`snapshot_loader`]) into this
/// member's snapshot directory with its Raft position, verifies it like any snapshot
/// file, and returns its state.
pub fn install(
    data_dir: &Path,
    data: &[u8],
    index: u64,
    term: u64,
    extended_types: bool,
) -> Result<(DataState, i64), String> {
    if data.len() < 8 + ferrokeeper_storage::snapshot::HEADER_BYTES {
        return Err(format!(
            "snapshot from the leader is {} bytes, too short",
            data.len()
        ));
    }
    let mut z = [0u8; 8];
    z.copy_from_slice(&data[..8]);
    let zxid = i64::from_le_bytes(z);
    let file_bytes = &data[8..];
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    let name = ferrokeeper_storage::snapshot::snapshot_name(zxid);
    let path = snap_dir.join(&name);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&snap_dir)?;
        write_meta(&meta_dir(data_dir), zxid, index, term)?;
        let tmp = snap_dir.join(format!("{name}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(file_bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&snap_dir)?.sync_all()
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))?;
    let file = ferrokeeper_storage::snapshot::SnapshotFile {
        zxid,
        name,
        path: path.clone(),
        bytes: file_bytes.len() as u64,
    };
    let base = ferrokeeper_storage::snapshot::read(&file)
        .map_err(|e| e.to_string())
        .and_then(crate::core::tree::Base::open)?;
    Ok((
        crate::snapshot::state_from_base(Arc::new(base), extended_types),
        zxid,
    ))
}
