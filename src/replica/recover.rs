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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrokeeper_storage::backend::sim::SimStorage;
    use ferrokeeper_storage::log::format::{FRAME_HEADER_BYTES, HEADER_BYTES};
    use ferrokeeper_storage::log::LogOptions;
    use ferrokeeper_storage::raftlog::{EntryRef, HardState as StoredHs, RaftLog};

    use super::*;
    use crate::core::txn::{Txn, TxnOp};

    fn fresh() -> DataState {
        let mut s = DataState::new(crate::core::sequencer::open_acl_unsafe(), false);
        s.set_ensemble_config(b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n");
        s
    }

    /// More entries than one append may carry go in through `append_bounded`, and a
    /// restart replays exactly those up to the stored commit (Raft §5.3: what is
    /// committed is applied; the rest is raft-rs's to replay or replace).
    #[test]
    fn a_catch_up_larger_than_a_batch_is_logged_and_replayed_to_the_commit() {
        let batch_bytes_max = 4096;
        let opts = LogOptions {
            segment_bytes: (HEADER_BYTES + batch_bytes_max) as u64 * 4,
            batch_bytes_max,
            record_bytes_max: batch_bytes_max - FRAME_HEADER_BYTES,
            ..LogOptions::default()
        };
        let disk = SimStorage::new(7);
        let (mut log, _) = RaftLog::open_with(disk.clone(), opts).expect("log opens");
        let datas: Vec<Vec<u8>> = (1..=40i64)
            .map(|i| {
                let txn = Txn {
                    zxid: i,
                    time_ms: 1000 + i,
                    session_id: 0,
                    cxid: 0,
                    op: TxnOp::Create {
                        path: Arc::from(format!("/n{i}").as_str()),
                        data: Some(Arc::from(vec![b'x'; 300].as_slice())),
                        acl: crate::core::sequencer::open_acl_unsafe(),
                        ephemeral_owner: 0,
                        parent_cversion: i as i32 + 1,
                    },
                };
                let mut out = Vec::new();
                wire::encode_entry(&[txn], &[], &mut out);
                out
            })
            .collect();
        let entries: Vec<EntryRef<'_>> = datas
            .iter()
            .enumerate()
            .map(|(i, d)| EntryRef {
                index: i as u64 + 1,
                term: 1,
                kind: 0,
                data: d,
            })
            .collect();
        assert!(
            log.append(&entries).is_err(),
            "one append is over the limit"
        );
        super::super::driver::append_bounded(&mut log, &entries).expect("bounded appends");
        log.save_hard_state(&StoredHs {
            term: 1,
            vote: 1,
            commit: 30,
        })
        .expect("hard state");
        drop(log);
        disk.crash();
        let (_, recovered) = RaftLog::open_with(disk, opts).expect("log reopens");
        let r = recover(recovered, fresh()).expect("recovers");
        assert_eq!(r.entries.len(), 40);
        assert_eq!(r.applied, 30);
        assert_eq!(r.state.last_zxid, 30);
        assert!(r.state.tree.get("/n30").is_some());
        assert!(r.state.tree.get("/n31").is_none());
    }
}
