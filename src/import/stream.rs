//! One ZooKeeper snapshot held in memory (the body of an AdminServer `restore`) into a
//! [`DataState`], as ZooKeeper 3.9's `ZooKeeperServer.restoreFromSnapshot` reads the
//! stream into a new `ZKDatabase`.
//!
//! The stream is a plain (uncompressed) `snapshot.<zxid>` file: Java reads it through a
//! `CheckedInputStream` with no decompression. It has no file name, so its zxid comes
//! from the file itself, in this order:
//!
//! 1. the `lastProcessedZxid` block (ZooKeeper 3.9 writes it when
//!    `zookeeper.serializeLastProcessedZxid.enabled`, the default; its `restore`
//!    requires that setting, so a Java 3.9 snapshot always has it);
//! 2. the zxid of the digest trailer (3.6+ with digests on, and `ferrokeeper export`);
//! 3. the largest czxid, mzxid or pzxid of any node (a 3.5 snapshot with neither).
//!
//! Java stops at 1 and takes 0 when the block is missing; 2 and 3 are ferrokeeper's,
//! so that snapshots from ZooKeeper 3.8 (Debian's) and from ferrokeeper restore too.

use std::path::Path;

use super::replay::Loader;
use super::{compare_digest, DigestCheck, ImportError, ImportOptions};
use crate::core::digest::DIGEST_VERSION;
use crate::core::state::DataState;

/// What a restore stream held.
#[derive(Debug)]
pub struct StreamedSnapshot {
    /// The state, with `state.last_zxid` the snapshot's zxid.
    pub state: DataState,
    /// Nodes read (the root included).
    pub nodes: usize,
    /// Sessions read.
    pub sessions: usize,
    /// The tree digest in the trailer against the state's, where they can be compared.
    pub digest: DigestCheck,
    /// Ephemeral nodes dropped because their session is not in the snapshot.
    pub dead_session_ephemerals: usize,
}

/// Parses `bytes`, a whole uncompressed ZooKeeper snapshot; `label` names it in errors
/// (every error carries the byte offset in `bytes`).
pub fn state_from_snapshot_bytes(
    label: &Path,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<StreamedSnapshot, ImportError> {
    let (mut loader, summary) =
        Loader::from_snapshot(label, bytes, opts.extended_types, &mut |_, _| {})?;
    let digest_block = summary
        .tail
        .digest
        .filter(|d| d.zxid != 0 && d.version == DIGEST_VERSION);
    let zxid = summary
        .tail
        .last_processed_zxid
        .or(digest_block.map(|d| d.zxid))
        .unwrap_or_else(|| newest_node_zxid(&loader.state));
    loader.state.last_zxid = zxid;
    let digest = match digest_block {
        Some(d) if d.zxid == zxid => compare_digest(&loader.state, d.zxid, d.digest),
        _ => DigestCheck::Unavailable,
    };
    // ZooKeeper's restore keeps such nodes until the next restart's `loadData` removes
    // them; ferrokeeper's state may not hold an ephemeral without its session, so they
    // go now, as that restart would remove them.
    let dead_session_ephemerals = loader.remove_dead_session_ephemerals()?;
    let state = loader.into_state()?;
    Ok(StreamedSnapshot {
        state,
        nodes: summary.nodes,
        sessions: summary.sessions,
        digest,
        dead_session_ephemerals,
    })
}

/// The largest zxid any node's stat names.
fn newest_node_zxid(state: &DataState) -> i64 {
    state
        .tree
        .sorted_nodes()
        .iter()
        .map(|(_, n)| {
            let s = n.stat();
            s.czxid.max(s.mzxid).max(s.pzxid)
        })
        .max()
        .unwrap_or(0)
}
