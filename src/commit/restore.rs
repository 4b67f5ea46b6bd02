//! The AdminServer's `restore` on the commit stage: the whole state replaced by one
//! decoded from a ZooKeeper snapshot (`crate::import::stream`), made durable first.
//!
//! # How it is kept safe
//!
//! - **Where.** Only the commit stage mutates state, so the swap happens there, at the
//!   point where the flusher takes a batch: the batch taken (txns prepped against the
//!   old state) is logged and published as usual, and every request prepped after that
//!   point sees the restored state. No await falls between taking the batch and the
//!   swap, so no request is prepped against a state that is then thrown away.
//! - **zxids stay monotonic.** The restored state takes zxid
//!   `R = max(snapshot's zxid, last zxid + 1)`. ZooKeeper keeps the snapshot's zxid even
//!   when it is older than what clients have seen; ferrokeeper cannot (its log and a
//!   client's `lastZxidSeen` both require the counter to go forward), so a snapshot
//!   older than the server answers a `last_zxid` above the snapshot's own.
//! - **Durable before the answer.** The state is written as a ferrokeeper snapshot at
//!   `R` (temp file, fsync, rename, directory fsync: `ferrokeeper_storage::snapshot`)
//!   and read back through its mapping, checksum and all, before anything is swapped:
//!   that mapped snapshot becomes the new head, as at startup. A restart finds it as
//!   the newest snapshot; the log's records (all at or below `R`) are skipped, and the
//!   txns after the restore (`R + 1`, ...) follow it without a gap. If that snapshot
//!   were lost, the older snapshot plus the log would stop at a gap before `R + 1`,
//!   and the server refuses to start rather than silently serve the old state.
//! - **No stale base.** A background snapshot of the old state, once written, would be
//!   handed to the head as its new base; the restore therefore waits until none is in
//!   flight and the last one written has been taken.
//! - **Clients.** Every connection that owns a session is closed with the swap (as
//!   ferrokeeper closes them when an ensemble's leader changes): its watches belonged
//!   to the old tree. Clients reconnect; a session the snapshot holds survives (with a
//!   full timeout from the restore, as after a restart), any other is expired. Java's
//!   restore keeps connections open and drops their watches silently.

use std::sync::Arc;

use crate::core::sequencer::{Origin, Sequencer};
use crate::core::state::DataState;
use crate::snapshot::SnapshotPolicy;

/// A restore asked of the commit stage.
#[derive(Debug)]
pub struct RestoreCall {
    /// The decoded snapshot; its `last_zxid` is the snapshot's zxid.
    pub state: DataState,
    /// Where the answer goes: the zxid the server continues from, or why it failed.
    pub reply: async_channel::Sender<Result<i64, String>>,
}

/// A restore swapped in: what the flusher publishes after the batch taken with it.
#[derive(Debug)]
pub struct Restored {
    /// The new committed state (served from the snapshot just written).
    pub state: DataState,
    /// Connections to close.
    pub owners: Vec<Origin>,
    /// The zxid the state is at.
    pub zxid: i64,
    /// The caller, answered once the state is published.
    pub reply: async_channel::Sender<Result<i64, String>>,
}

/// What closes the connections.
pub const CLOSE_REASON: &str = "the server's state was restored from a snapshot";

/// Writes `call`'s state durably as the newest snapshot and swaps it into `core`.
/// `core`'s batch must have been taken. On failure nothing is swapped, the caller is
/// answered here and `None` returned.
pub fn swap(
    core: &mut Sequencer,
    snapshots: &Arc<SnapshotPolicy>,
    call: RestoreCall,
    now_ms: i64,
) -> Option<Restored> {
    let RestoreCall { mut state, reply } = call;
    let snapshot_zxid = state.last_zxid;
    let zxid = snapshot_zxid.max(core.head().last_zxid + 1);
    state.last_zxid = zxid;
    let extended_types = state.extended_types;
    let written = crate::snapshot::write_state(&snapshots.dir, &state)
        .map_err(|e| format!("writing the restored state as a snapshot failed: {e}"))
        .and_then(|(file, _)| {
            // Read back through the mapping the server will serve: what is swapped in
            // is exactly what a restart would load.
            ferrokeeper_storage::snapshot::read(&file)
                .map_err(|e| e.to_string())
                .and_then(crate::core::tree::Base::open)
                .map_err(|e| {
                    if let Err(rm) = std::fs::remove_file(&file.path) {
                        tracing::error!(file = %file.path.display(), error = %rm, "cannot remove a restore snapshot that does not read back");
                    }
                    format!("the restored snapshot does not read back: {e}")
                })
        });
    let base = match written {
        Ok(base) => base,
        Err(e) => {
            tracing::warn!(error = %e, "restore failed; the state is unchanged");
            let _ = reply.try_send(Err(e));
            return None;
        }
    };
    drop(state);
    let state = crate::snapshot::state_from_base(Arc::new(base), extended_types);
    if let Err(e) = snapshots.retain_and_mark() {
        tracing::warn!(error = %e, "snapshot retention after a restore failed");
    }
    // The snapshots before the restore are superseded like any (on a thread of its own).
    snapshots.compress_superseded(None);
    let before = core.head().last_zxid;
    let owners = core.restore(state.clone(), now_ms);
    tracing::info!(
        before = format_args!("0x{before:x}"),
        snapshot_zxid = format_args!("0x{snapshot_zxid:x}"),
        zxid = format_args!("0x{zxid:x}"),
        znodes = state.tree.len(),
        sessions = state.sessions.len(),
        closing = owners.len(),
        "state restored from a snapshot"
    );
    Some(Restored {
        state,
        owners,
        zxid,
        reply,
    })
}
