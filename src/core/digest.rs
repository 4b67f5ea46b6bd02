//! ZooKeeper's tree digest (3.6+, `digest.enabled`): a 64-bit sum that two servers with
//! the same tree agree on, kept up to date on every change rather than recomputed.
//!
//! What ZooKeeper computes (`DigestCalculator`, digest version 2, unchanged through 3.9):
//!
//! - a **node digest** is the CRC32 of the node's path (the root as the empty path), then
//!   its data (nothing for null data), then 60 bytes of its persisted stat, big-endian:
//!   czxid, mzxid, pzxid, ctime, mtime (i64 each), version, cversion, aversion (i32 each),
//!   ephemeralOwner (i64). The stat is `StatPersisted`: cversion counts child creates,
//!   containers and TTL nodes keep their special owner. ACLs, the child list and data
//!   length are not in it; ctime and mtime are, so two servers agree only on a tree
//!   built from the same txns (with the same txn times).
//! - nodes under `/zookeeper/` count for nothing (`NodeHashMapImpl`; `/zookeeper` itself
//!   counts), because ZooKeeper updates quota nodes outside txns.
//! - the **tree digest** is the wrapping i64 sum of the node digests (`AdHash`): a node
//!   added adds its digest, a node removed subtracts it, a node changed subtracts the old
//!   and adds the new one.
//!
//! After each txn ZooKeeper notes (zxid, tree digest); those whose zxid is a multiple of
//! 128 go into a history of at most 1024 entries (`DataTree.logZxidDigest`), which is
//! what the `hash` four-letter word and the admin `hash` command print. ZooKeeper has no
//! mntr key for the digest itself (only `digest_mismatches_count`, which a standalone
//! server never raises).
//!
//! This module is pure: the calculation, the history, and the [`DataState`] methods that
//! change the tree and the digest together, which `commit::apply` and the import use for
//! every node they add, change or remove. Invariant kept by those methods:
//! `state.digest == of_tree(&state.tree)`.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::core::state::DataState;
use crate::core::tree::{Node, NodeRef, NodeStat, Tree};

/// `DigestCalculator.DIGEST_VERSION`: the version of the calculation implemented here.
pub const DIGEST_VERSION: i32 = 2;
/// Nodes whose path starts with this count for nothing (`ZooDefs.ZOOKEEPER_NODE_SUBTREE`).
pub const EXCLUDED_PREFIX: &str = "/zookeeper/";
/// Bytes of stat a node digest covers: five i64, three i32, one i64.
pub const STAT_BYTES: usize = 60;
/// The history keeps the digest of txns whose zxid is a multiple of this
/// (`DataTree.DIGEST_LOG_INTERVAL`).
pub const LOG_INTERVAL: i64 = 128;
/// Entries the history keeps, oldest dropped first (`DataTree.DIGEST_LOG_LIMIT`).
pub const LOG_ENTRIES_MAX: usize = 1024;

/// Whether the node at `path` counts in the tree digest.
pub fn counts(path: &str) -> bool {
    !path.starts_with(EXCLUDED_PREFIX)
}

/// The 60 stat bytes of a node digest, in ZooKeeper's order.
pub fn stat_bytes(s: &NodeStat) -> [u8; STAT_BYTES] {
    let mut out = [0u8; STAT_BYTES];
    let mut at = 0;
    let mut put = |b: &[u8]| {
        out[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        put(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        put(&v.to_be_bytes());
    }
    put(&s.ephemeral_owner.to_be_bytes());
    out
}

/// The digest of one node (`DigestCalculator.calculateDigest`): 0 for a node that does
/// not count, else the CRC32 as a non-negative i64.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &NodeStat) -> i64 {
    i64::from(node_crc(path, data, stat))
}

/// [`node_digest`] as the CRC32 it is (0 for a node that does not count): what the tree
/// keeps with each node ([`Node::digest`]).
pub fn node_crc(path: &str, data: Option<&[u8]>, stat: &NodeStat) -> u32 {
    if !counts(path) {
        return 0;
    }
    // ZooKeeper's node map holds the root as "" (with "/" as an alias it never digests).
    let path = if path == "/" { "" } else { path }.as_bytes();
    let data = data.unwrap_or_default();
    let stat = stat_bytes(stat);
    // One CRC over the three parts laid end to end in a stack buffer where they fit: the
    // same value as three updates, without a short path's scalar fallback and a
    // finalisation per part (crc32 was a sixth of a log replay's profile, issue #13,
    // with two node digests per setData).
    let len = path.len() + data.len() + STAT_BYTES;
    if len <= INLINE_BYTES_MAX {
        let mut buf = [0u8; INLINE_BYTES_MAX];
        buf[..path.len()].copy_from_slice(path);
        buf[path.len()..path.len() + data.len()].copy_from_slice(data);
        buf[len - STAT_BYTES..len].copy_from_slice(&stat);
        return crc32fast::hash(&buf[..len]);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(path);
    crc.update(data);
    crc.update(&stat);
    crc.finalize()
}

/// Largest node digest input (path, data and stat) hashed from one stack buffer.
const INLINE_BYTES_MAX: usize = 512;

/// The digest of the node `node` at `path`.
pub fn of_node(path: &str, node: &NodeRef<'_>) -> i64 {
    node_digest(path, node.data(), &node.stat())
}

/// The tree digest computed from scratch: a pass over every node. Used once per load of
/// something that carries no digest (a fresh tree, an import, a snapshot written before
/// digests were stored) and by tests; changes keep the digest incrementally.
pub fn of_tree(tree: &Tree) -> i64 {
    tree.sorted_nodes().iter().fold(0i64, |sum, (path, node)| {
        sum.wrapping_add(of_node(path, node))
    })
}

/// One entry of the history: the tree digest right after txn `zxid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    /// The txn.
    pub zxid: i64,
    /// The tree digest after it.
    pub digest: i64,
}

/// The bounded digest history (`DataTree.digestLog`).
///
/// Shared between the clones of a state (published states clone it for free); an append
/// copies it only when a published clone still holds it, which happens at most once per
/// [`LOG_INTERVAL`] txns.
#[derive(Debug, Clone, Default)]
pub struct DigestLog {
    // Invariant: at most LOG_ENTRIES_MAX entries, zxids strictly increasing.
    entries: Arc<VecDeque<ZxidDigest>>,
}

impl DigestLog {
    /// Notes the digest after txn `zxid`; kept if `zxid` is a multiple of
    /// [`LOG_INTERVAL`]. A second note for the same zxid (an import applies a multi's
    /// sub-ops one by one) replaces the first, so the entry is the digest after the
    /// whole txn.
    pub fn record(&mut self, zxid: i64, digest: i64) {
        if zxid % LOG_INTERVAL != 0 {
            return;
        }
        let entries = Arc::make_mut(&mut self.entries);
        if let Some(last) = entries.back_mut() {
            if last.zxid == zxid {
                last.digest = digest;
                return;
            }
            // A zxid at or below the last one noted would mean txns applied out of
            // order; ZooKeeper's history takes whatever comes, and so does this one
            // (entries stay in arrival order).
        }
        entries.push_back(ZxidDigest { zxid, digest });
        if entries.len() > LOG_ENTRIES_MAX {
            entries.pop_front();
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = ZxidDigest> + '_ {
        self.entries.iter().copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Changes to the tree that keep [`DataState::digest`] in step: one call per node added,
/// changed or removed (ZooKeeper's `NodeHashMap.put`, `preChange`/`postChange`,
/// `remove`).
impl DataState {
    /// Adds `node` at `path`, where no node is, written by txn `zxid`.
    ///
    /// Only for a path that holds no node (a create, which prep has checked): replacing
    /// a node would leave its digest in the sum. Checked in debug builds; in release the
    /// snapshot writer's validation, which recomputes the digest, catches a drift.
    pub fn add_node(&mut self, path: Arc<str>, node: Node, zxid: i64) {
        debug_assert!(!self.tree.contains(&path), "add_node over {path}");
        let new = self.tree.put(path, node, zxid);
        self.digest = self.digest.wrapping_add(new);
    }

    /// Changes the node at `path` with `f` (see [`Tree::update`]; panics if it is
    /// missing). The old digest is the one the tree keeps with the node, the new one is
    /// computed after `f` on the node `f` gets: no lookup beyond the update's own, and
    /// the old data is not read.
    pub fn update_node(&mut self, path: &str, zxid: i64, f: impl FnOnce(&mut Node)) {
        let (old, new) = self.tree.update(path, zxid, f);
        self.digest = self.digest.wrapping_sub(old).wrapping_add(new);
    }

    /// Removes the node at `path`, deleted by txn `zxid`; returns its stat.
    pub fn remove_node(&mut self, path: &Arc<str>, zxid: i64) -> Option<NodeStat> {
        let old = self.tree.get(path).map_or(0, |n| n.digest(path));
        let stat = self.tree.remove(path, zxid)?;
        self.digest = self.digest.wrapping_sub(old);
        Some(stat)
    }

    /// Marks txn `zxid` as wholly applied: the state's zxid moves to it and its digest
    /// goes to the history.
    pub fn end_txn(&mut self, zxid: i64) {
        self.last_zxid = zxid;
        self.digest_log.record(zxid, self.digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, pzxid: i64, time: i64, cversion: i32, owner: i64) -> NodeStat {
        NodeStat {
            czxid,
            mzxid: czxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid,
        }
    }

    /// The stat bytes are ZooKeeper's order (czxid, mzxid, pzxid, ctime, mtime, version,
    /// cversion, aversion, ephemeralOwner), big-endian, not `NodeStat`'s field order.
    #[test]
    fn stat_bytes_are_in_digest_order() {
        let s = NodeStat {
            czxid: 1,
            mzxid: 2,
            ctime: 4,
            mtime: 5,
            version: 6,
            cversion: 7,
            aversion: 8,
            ephemeral_owner: 9,
            pzxid: 3,
        };
        let b = stat_bytes(&s);
        for (i, want) in [1i64, 2, 3, 4, 5].iter().enumerate() {
            assert_eq!(b[i * 8..i * 8 + 8], want.to_be_bytes());
        }
        assert_eq!(b[40..44], 6i32.to_be_bytes());
        assert_eq!(b[44..48], 7i32.to_be_bytes());
        assert_eq!(b[48..52], 8i32.to_be_bytes());
        assert_eq!(b[52..60], 9i64.to_be_bytes());
    }

    /// Hand-computed: the root is digested as "" followed by 60 zero bytes (CRC32 of 60
    /// zero bytes is 0x04128908), and null data is the same as empty data.
    #[test]
    fn root_and_null_data() {
        let zero = NodeStat::default();
        assert_eq!(node_digest("/", None, &zero), 0x0412_8908);
        assert_eq!(node_digest("", Some(b""), &zero), 0x0412_8908);
        assert_eq!(
            node_digest("/x", None, &zero),
            node_digest("/x", Some(b""), &zero)
        );
    }

    /// `/zookeeper` counts, what is under it does not.
    #[test]
    fn system_subtree_is_excluded() {
        let s = NodeStat::default();
        assert!(node_digest("/zookeeper", None, &s) != 0);
        assert_eq!(node_digest("/zookeeper/quota", None, &s), 0);
        assert_eq!(node_digest("/zookeeper/config", Some(b"x"), &s), 0);
        assert!(counts("/zookeeperx"));
    }

    /// Values read from Debian's ZooKeeper 3.8.0: the `TxnDigest` its txn log holds
    /// after each txn of a fresh server (session 0x1000006874d0000 created at zxid 1,
    /// `create /a hello` at zxid 2, `create -e /e eph` at zxid 3; the times are the txn
    /// headers'), and the `hash` line it printed for zxid 0x80 after 125 failed deletes
    /// ("80: 8623171981").
    #[test]
    fn matches_zookeeper_3_8() {
        let zk = NodeStat::default();
        let fresh = node_digest("/", Some(b""), &zk) + node_digest("/zookeeper", Some(b""), &zk);
        assert_eq!(fresh, 0x51c6_d660);
        assert_eq!(
            DataState::new(crate::core::sequencer::open_acl_unsafe(), true).digest,
            fresh
        );

        let t2 = 1_796_416_588_089;
        let a = node_digest("/a", Some(b"hello"), &stat(2, 2, t2, 0, 0));
        let root = node_digest("/", Some(b""), &stat(0, 2, 0, 1, 0));
        assert_eq!(root + node_digest("/zookeeper", None, &zk) + a, 0xe372_14f8);

        let t3 = 1_796_416_588_108;
        let e = node_digest(
            "/e",
            Some(b"eph"),
            &stat(3, 3, t3, 0, 0x0100_0006_874d_0000),
        );
        let root = node_digest("/", Some(b""), &stat(0, 3, 0, 2, 0));
        assert_eq!(
            root + node_digest("/zookeeper", None, &zk) + a + e,
            8_623_171_981
        );
    }

    /// The one-buffer CRC of short inputs equals the streamed CRC of the three parts, on
    /// both sides of the buffer's size.
    #[test]
    fn inline_and_streamed_digests_agree() {
        let s = stat(7, 9, 1_700_000_000_123, 3, 0x0100_0006_874d_0000);
        for data_len in [
            0usize,
            1,
            15,
            100,
            400,
            INLINE_BYTES_MAX - 70,
            451,
            452,
            453,
            2000,
        ] {
            let data: Vec<u8> = (0..data_len).map(|i| (i * 31 + 7) as u8).collect();
            for path in ["/", "/a", "/bench-000123", "/zookeeper"] {
                let mut crc = crc32fast::Hasher::new();
                crc.update(if path == "/" { b"" } else { path.as_bytes() });
                crc.update(&data);
                crc.update(&stat_bytes(&s));
                let want = i64::from(crc.finalize());
                assert_eq!(
                    node_digest(path, Some(&data), &s),
                    want,
                    "{path} {data_len}"
                );
            }
        }
    }

    #[test]
    fn history_keeps_multiples_of_128_and_at_most_1024() {
        let mut log = DigestLog::default();
        for z in 1..=(LOG_INTERVAL * (LOG_ENTRIES_MAX as i64 + 5)) {
            log.record(z, z * 10);
        }
        assert_eq!(log.len(), LOG_ENTRIES_MAX);
        let first = log.entries().next().expect("entries");
        assert_eq!(first.zxid, LOG_INTERVAL * 6);
        assert!(log.entries().all(|e| e.zxid % LOG_INTERVAL == 0));
        // A second note for the same zxid replaces the first.
        let last = log.entries().last().expect("entries");
        log.record(last.zxid, 7);
        assert_eq!(log.len(), LOG_ENTRIES_MAX);
        assert_eq!(log.entries().last().map(|e| e.digest), Some(7));
    }

    /// A published clone does not see later entries.
    #[test]
    fn history_clones_are_snapshots() {
        let mut log = DigestLog::default();
        log.record(128, 1);
        let published = log.clone();
        log.record(256, 2);
        assert_eq!(published.len(), 1);
        assert_eq!(log.len(), 2);
    }
}
