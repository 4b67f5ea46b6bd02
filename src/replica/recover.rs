//! Recovery of an ensemble member from its Raft log: what `server::run_ensemble` does at
//! start and the ensemble simulator does at every restart, in one place so the two
//! cannot drift apart.
//!
//! The state machine is rebuilt from a fresh state (with the ensemble's
//! `/zookeeper/config` text) by replaying every committed entry up to the stored commit
//! index; raft-rs gets the whole stored log and the hard state, and replays anything
//! committed after that itself (the node skips txns its state already holds).

use raft::eraftpb::{Entry as RaftEntry, EntryType, HardState};

use super::driver::entry_from_stored;
use super::wire;
use crate::core::state::DataState;

/// A member's starting point, ready for [`super::node::Node::new`].
#[derive(Debug)]
pub struct Recovery {
    /// The state after the entries up to `applied`.
    pub state: DataState,
    /// Every stored entry, in index order.
    pub entries: Vec<RaftEntry>,
    /// Term, vote and commit as last made durable (commit clipped to the last entry).
    pub hard_state: Option<HardState>,
    /// The index `state` reflects.
    pub applied: u64,
}

/// A stored entry up to the commit index does not decode: the log is corrupt.
#[derive(Debug, thiserror::Error)]
#[error("entry {index}: {source}")]
pub struct RecoverError {
    /// The entry's index.
    pub index: u64,
    /// Why it does not decode.
    pub source: wire::WireError,
}

/// Replays `recovered` (what `RaftLog::open` returned) onto `state`, a fresh state with
/// the ensemble configuration already set.
pub fn recover(
    recovered: ferrokeeper_storage::raftlog::Recovered,
    mut state: DataState,
) -> Result<Recovery, RecoverError> {
    let entries: Vec<RaftEntry> = recovered
        .entries
        .into_iter()
        .map(entry_from_stored)
        .collect();
    let last = entries.last().map(|e| e.index).unwrap_or(0);
    // The commit index is stored beside term and vote; entries past the last stored one
    // cannot be applied (a torn tail may have taken them), and raft-rs refuses a commit
    // beyond its log.
    let hard_state = recovered.hard_state.map(|h| HardState {
        term: h.term,
        vote: h.vote,
        commit: h.commit.min(last),
        ..Default::default()
    });
    let applied = hard_state.as_ref().map(|h| h.commit).unwrap_or(0);
    let mut changes = Vec::new();
    for e in entries.iter().take_while(|e| e.index <= applied) {
        if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
            continue;
        }
        let entry = wire::decode_entry(&e.data).map_err(|source| RecoverError {
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
    Ok(Recovery {
        state,
        entries,
        hard_state,
        applied,
    })
}
