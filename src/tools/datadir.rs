//! A ferrokeeper data directory read without writing to it: the newest snapshot that
//! verifies, then the transaction log replayed after it, with the same snapshot loader
//! ([`crate::snapshot::state_from_base`]) and the same replay
//! ([`crate::commit::log::replay`]) the server recovers with at startup.
//!
//! Unlike the server's startup, nothing is repaired: temp files of an interrupted
//! snapshot stay, and a torn log tail is not zeroed, only not read (the log reader's
//! read-only rules). The tools can therefore run on a copy, a backup, or the directory of
//! a stopped server, and leave it as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokeeper_storage::backend::disk::DiskStorage;
use ferrokeeper_storage::snapshot as snapfile;

use super::ToolError;
use crate::core::state::DataState;
use crate::core::tree::Base;
use crate::snapshot::Rejected;

/// What [`load`] recovered.
#[derive(Debug)]
pub struct Recovered {
    /// The state at the last txn of the log.
    pub state: DataState,
    /// The snapshot it started from (`None`: an empty state, no snapshot yet).
    pub snapshot: Option<PathBuf>,
    /// That snapshot's zxid (0 without one).
    pub snapshot_zxid: i64,
    /// Txns replayed from the log after the snapshot.
    pub txns_replayed: u64,
    /// Newer snapshots that failed verification, newest first (with file and offset).
    pub rejected: Vec<Rejected>,
}

/// Loads the state a server started on `data_dir` (and `data_log_dir`, ZooKeeper's
/// `dataLogDir`, when the log is kept apart) would serve. `extended_types` is the
/// server's `extendedTypesEnabled`. `progress(txns)` is called every few thousand txns
/// replayed.
pub fn load(
    data_dir: &Path,
    data_log_dir: Option<&Path>,
    extended_types: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Recovered, ToolError> {
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    let (state, snapshot, rejected) = newest_snapshot(&snap_dir, extended_types)?;
    let mut state = state.unwrap_or_else(|| {
        DataState::new(crate::core::sequencer::open_acl_unsafe(), extended_types)
    });
    let snapshot_zxid = state.last_zxid;
    let log_dir = crate::commit::log::log_dir(data_log_dir.unwrap_or(data_dir));
    let mut txns_replayed = 0u64;
    if log_dir.is_dir() {
        let records = ferrokeeper_storage::log::read(&log_dir, state.last_zxid).map_err(|e| {
            ToolError::Log(crate::commit::log::ReplayError::Log {
                dir: log_dir.clone(),
                source: e,
            })
        })?;
        let mut seen = 0u64;
        let counted = records.inspect(|_| {
            seen += 1;
            if seen.is_multiple_of(PROGRESS_STEP_TXNS) {
                progress(seen);
            }
        });
        let context: String = rejected
            .iter()
            .map(|r| format!("; snapshot rejected: {}", r.reason))
            .collect();
        txns_replayed = crate::commit::log::replay(counted, &mut state, &log_dir, &context)
            .map_err(ToolError::Log)?;
        progress(txns_replayed);
    }
    Ok(Recovered {
        state,
        snapshot,
        snapshot_zxid,
        txns_replayed,
        rejected,
    })
}

/// How often, in txns, replay reports progress.
const PROGRESS_STEP_TXNS: u64 = 4096;

/// The newest snapshot in `dir` that verifies, as a state; the rejected newer ones.
#[allow(clippy::type_complexity)]
fn newest_snapshot(
    dir: &Path,
    extended_types: bool,
) -> Result<(Option<DataState>, Option<PathBuf>, Vec<Rejected>), ToolError> {
    let mut storage = match DiskStorage::open_read_only(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None, Vec::new())),
        Err(source) => {
            return Err(ToolError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let files = snapfile::list_with(&mut storage).map_err(ToolError::Snapshot)?;
    let mut rejected = Vec::new();
    for f in files.iter().rev() {
        match open_snapshot(&mut storage, f, extended_types) {
            Ok(state) => return Ok((Some(state), Some(f.path.clone()), rejected)),
            Err(reason) => rejected.push(Rejected {
                path: f.path.clone(),
                zxid: f.zxid,
                reason,
            }),
        }
    }
    Ok((None, None, rejected))
}

/// One snapshot file as a state: checksums verified, the archive mapped (a compressed
/// one decompressed into memory: a tool changes nothing in the data directory).
pub fn open_snapshot(
    storage: &mut DiskStorage,
    f: &snapfile::SnapshotFile,
    extended_types: bool,
) -> Result<DataState, String> {
    snapfile::read_with(storage, f)
        .map_err(|e| e.to_string())
        .and_then(Base::open)
        .map(|base| crate::snapshot::state_from_base(Arc::new(base), extended_types))
}
