//! The state machine every server runs: committed txn batches in, the new state and its
//! watch changes out. It is the only way the committed state moves, and it asserts
//! that it moves in zxid order: a batch must start right after the last applied zxid
//! and run without gaps, or the server is broken and must stop.
//!
//! Two ways in, with one result:
//! - [`StateMachine::apply`] applies txns one by one (log replay; a follower's
//!   committed entries).
//! - [`StateMachine::adopt`] takes the state the sequencer already computed for the same
//!   txns on this server (the leader, or a standalone server). Applying them a second
//!   time would double the tree work on every write; adopting is equivalent because
//!   the sequencer computed that state with the same [`super::apply::apply`] from the
//!   state this machine holds. The simulator checks the equivalence by applying and
//!   adopting side by side and comparing the results.

use std::sync::Arc;

use super::apply::{apply, Change};
use super::state::DataState;
use super::txn::Txn;

/// The committed state and the machine that moves it.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: Arc<DataState>,
}

/// What a committed batch produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The state after the batch (immutable, shared with readers).
    pub state: Arc<DataState>,
    /// The batch's watch-relevant changes, in order.
    pub changes: Arc<[Change]>,
}

impl StateMachine {
    /// A machine whose committed state is `state` (recovered from a snapshot and the log,
    /// or fresh).
    pub fn new(state: DataState) -> StateMachine {
        StateMachine {
            state: Arc::new(state),
        }
    }

    /// The committed state.
    pub fn state(&self) -> &Arc<DataState> {
        &self.state
    }

    /// zxid of the last committed txn.
    pub fn last_zxid(&self) -> i64 {
        self.state.last_zxid
    }

    /// Sets the committed state's tree overlay aside at its zxid, ahead of a snapshot of
    /// exactly this state, and returns that state for the snapshot
    /// ([`super::tree::Tree::freeze`]): the rebase on the written snapshot then drops the
    /// frozen layer whole instead of passing over the overlay. Nothing visible changes.
    pub fn freeze(&mut self) -> Arc<DataState> {
        let mut state = (*self.state).clone();
        let at = state.last_zxid;
        state.tree.freeze(at);
        self.state = Arc::new(state);
        self.state.clone()
    }

    /// Moves the committed state's tree onto `base`, a snapshot of this state or of an
    /// earlier state it grew from ([`super::tree::Tree::rebase`]). Nothing visible
    /// changes; the zxid stays. Returns the number of nodes whose children lists moved.
    pub fn rebase(&mut self, base: Arc<super::tree::Base>) -> usize {
        assert!(
            base.zxid() <= self.state.last_zxid,
            "rebase on a snapshot ahead of the committed state"
        );
        let mut state = (*self.state).clone();
        let moved = state.tree.rebase(base);
        self.state = Arc::new(state);
        moved
    }

    /// Applies committed `txns` to the committed state.
    ///
    /// # Panics
    /// If the txns do not continue the committed zxids one by one.
    pub fn apply(&mut self, txns: &[Txn]) -> Applied {
        let mut state = (*self.state).clone();
        let mut changes = Vec::new();
        for t in txns {
            assert_eq!(
                t.zxid,
                state.last_zxid + 1,
                "committed txn out of order: the state is at zxid 0x{:x}",
                state.last_zxid
            );
            let extended = state.extended_types;
            apply(&mut state, t, extended, &mut changes);
        }
        self.state = Arc::new(state);
        Applied {
            state: self.state.clone(),
            changes: Arc::from(changes),
        }
    }

    /// Takes `state` and `changes`, which this server's sequencer produced by applying
    /// `txns` to the committed state, as the result of committing them.
    ///
    /// # Panics
    /// If `txns` do not continue the committed zxids one by one, or `state` is not the
    /// state after the last of them.
    pub fn adopt(&mut self, txns: &[Txn], state: Arc<DataState>, changes: Vec<Change>) -> Applied {
        let mut expect = self.state.last_zxid;
        for t in txns {
            expect += 1;
            assert_eq!(t.zxid, expect, "adopted txn out of order");
        }
        assert_eq!(
            state.last_zxid, expect,
            "adopted state is not the state after the batch"
        );
        self.state = state;
        Applied {
            state: self.state.clone(),
            changes: Arc::from(changes),
        }
    }
}
