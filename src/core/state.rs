//! The replicated state: the data tree, the session table and the indexes ZooKeeper
//! keeps beside the tree (ephemerals per session, containers, TTL nodes).
//!
//! A [`DataState`] is cheap to clone (persistent maps): the commit stage owns the *head*
//! state and publishes clones to the shards; a published state is never mutated.

use std::sync::Arc;

use imbl::{HashMap, OrdSet};

use crate::core::tree::Tree;

/// `ephemeralOwner` of container nodes (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an extended ephemeral owner (TTL nodes).
pub const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Bits of an extended owner that carry the TTL value.
pub const TTL_VALUE_MASK: i64 = 0x0000_00ff_ffff_ffff;
/// Largest TTL in ms (about 34 years), as `EphemeralType.TTL.maxValue()`.
pub const TTL_MAX_MS: i64 = TTL_VALUE_MASK;

/// What kind of node an `ephemeralOwner` denotes (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// Plain persistent node (owner 0).
    Void,
    /// Ephemeral, owned by a session.
    Normal,
    /// Container.
    Container,
    /// Persistent with TTL.
    Ttl,
}

/// Classifies an `ephemeralOwner` like `EphemeralType.get`, which sees TTL owners only
/// when extended types are enabled.
pub fn owner_kind(owner: i64, extended_types: bool) -> OwnerKind {
    if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if extended_types && (owner & EXTENDED_MASK) == EXTENDED_MASK {
        OwnerKind::Ttl
    } else if owner == 0 {
        OwnerKind::Void
    } else {
        OwnerKind::Normal
    }
}

/// The TTL in ms carried by a TTL node's owner.
pub fn ttl_of(owner: i64) -> i64 {
    owner & TTL_VALUE_MASK
}

/// One session as the state knows it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The password the client must present to reattach.
    pub passwd: [u8; 16],
    /// Paths of the session's ephemeral nodes.
    pub ephemerals: OrdSet<Arc<str>>,
}

/// Everything a txn can change.
#[derive(Debug, Clone)]
pub struct DataState {
    /// The znodes.
    pub tree: Tree,
    /// Live sessions by id.
    pub sessions: HashMap<i64, Session>,
    /// Container nodes, for the reaper.
    pub containers: OrdSet<Arc<str>>,
    /// TTL nodes, for the reaper.
    pub ttls: OrdSet<Arc<str>>,
    /// Paths that have a quota (ZooKeeper's `PathTrie` of quota prefixes), normalised
    /// as the trie keeps them; see [`crate::core::quota`]. Not in snapshots: rebuilt by
    /// [`crate::core::quota::setup`] when a state is loaded.
    pub quota_paths: OrdSet<Arc<str>>,
    /// zxid of the last applied txn.
    pub last_zxid: i64,
    /// `extendedTypesEnabled`: whether TTL owners are recognised.
    pub extended_types: bool,
    /// ZooKeeper's tree digest ([`crate::core::digest`]). Invariant: equals
    /// `digest::of_tree(&tree)`; kept so by changing the tree only through the
    /// `DataState` methods in [`crate::core::digest`].
    pub digest: i64,
    /// The digests of recent txns whose zxid is a multiple of 128 (`hash` prints them).
    pub digest_log: crate::core::digest::DigestLog,
}

impl DataState {
    /// A fresh state as a new standalone ZooKeeper has it.
    pub fn new(open_acl: Arc<[ferrokeeper_net::records::Acl]>, extended_types: bool) -> DataState {
        let tree = Tree::new(open_acl);
        DataState {
            digest: crate::core::digest::of_tree(&tree),
            digest_log: Default::default(),
            tree,
            sessions: HashMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            quota_paths: OrdSet::new(),
            last_zxid: 0,
            extended_types,
        }
    }

    /// Puts the ensemble's configuration text into `/zookeeper/config`, as every member
    /// of a ZooKeeper ensemble shows it (`QuorumPeer` writes it there at start). Each
    /// member does this to its fresh state from the same `server.N` lines, before any
    /// txn, so the replicas stay identical without a txn for it.
    pub fn set_ensemble_config(&mut self, text: &[u8]) {
        self.tree.update("/zookeeper/config", 0, |n| {
            n.data = Some(Arc::from(text));
        });
        self.digest = crate::core::digest::of_tree(&self.tree);
    }

    /// `/zookeeper/config`'s text (empty when the node has no data).
    pub fn config_text(&self) -> String {
        self.tree
            .get(crate::core::path::CONFIG)
            .and_then(|n| n.data().map(|d| String::from_utf8_lossy(d).into_owned()))
            .unwrap_or_default()
    }

    /// The `Stat` clients see for `node`.
    pub fn stat(&self, node: &crate::core::tree::NodeRef<'_>) -> ferrokeeper_net::records::Stat {
        node.client_stat(self.extended_types)
    }

    /// Number of ephemeral nodes across all sessions.
    pub fn ephemeral_count(&self) -> usize {
        self.sessions.values().map(|s| s.ephemerals.len()).sum()
    }
}
