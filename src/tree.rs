//! The data tree: znodes by full path in a persistent (structurally shared) map.
//!
//! Cloning a [`Tree`] is O(1) and a clone never sees later changes: this is what makes
//! the read-copy-update design work. The commit stage mutates its own *head* copy; after
//! each durable batch it publishes a clone, which shards read without locks while the
//! head moves on. A change copies only the trie path to the changed entry.

use std::sync::Arc;

use ferrokeeper_net::records::{Acl, Stat};
use imbl::{HashMap, OrdSet};

/// A znode's persisted metadata (jute `StatPersisted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Creation time, ms since the epoch.
    pub ctime: i64,
    /// Last setData time, ms since the epoch.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version: bumped on each child create (it is also the sequence counter).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session for ephemerals; `i64::MIN` for containers; 0xff.. TTL encoding.
    pub ephemeral_owner: i64,
    /// zxid of the last change to the children list.
    pub pzxid: i64,
}

/// One znode.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// The node's data, shared with the txn that wrote it and with readers; `None` is
    /// null data, which ZooKeeper keeps apart from empty (getData answers length −1).
    pub data: Option<Arc<[u8]>>,
    /// The node's ACL; nodes created with the same ACL share one allocation.
    pub acl: Arc<[Acl]>,
    /// Persisted metadata.
    pub stat: NodeStat,
    /// Names (not paths) of the children, ordered.
    pub children: OrdSet<Arc<str>>,
}

impl Node {
    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The `Stat` a client sees, as `DataNode.copyStat` renders it: the stored
    /// cversion counts creates only (it doubles as the sequence counter), so the
    /// visible one is `2 × cversion − numChildren` (every create has a delete except for
    /// the children still present); containers and TTL nodes show `ephemeralOwner` 0.
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let owner = match crate::state::owner_kind(s.ephemeral_owner, extended_types) {
            crate::state::OwnerKind::Normal => s.ephemeral_owner,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: self.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// The persistent map from path to node.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: HashMap<Arc<str>, Arc<Node>>,
}

impl Tree {
    /// A tree holding only `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`
    /// with the stats a fresh standalone ZooKeeper shows: all zero, open ACLs except on
    /// `/zookeeper/config`, which everyone may read and only a super user may change
    /// (`ZooKeeperServer` gives it `READ_ACL_UNSAFE`).
    pub fn new(open_acl: Arc<[Acl]>) -> Tree {
        let mut t = Tree {
            nodes: HashMap::new(),
        };
        let mk = |children: &[&str]| Node {
            data: Some(Arc::from(&b""[..])),
            acl: open_acl.clone(),
            stat: NodeStat::default(),
            children: children.iter().map(|c| Arc::<str>::from(*c)).collect(),
        };
        t.nodes.insert(Arc::from("/"), Arc::new(mk(&["zookeeper"])));
        t.nodes
            .insert(Arc::from("/zookeeper"), Arc::new(mk(&["config", "quota"])));
        t.nodes
            .insert(Arc::from("/zookeeper/quota"), Arc::new(mk(&[])));
        // ZooKeeperServer gives /zookeeper/config READ_ACL_UNSAFE, and
        // DataTree.addConfigNode sets it with version -1, which becomes the aversion.
        let mut config = mk(&[]);
        config.stat.aversion = -1;
        config.acl = Arc::from(vec![Acl {
            perms: ferrokeeper_net::codes::perms::READ,
            id: ferrokeeper_net::records::Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]);
        t.nodes
            .insert(Arc::from("/zookeeper/config"), Arc::new(config));
        t
    }

    /// A tree with no node at all, not even `/`: the start of a load, which puts every
    /// node itself (a snapshot carries the system nodes with their own stats).
    pub fn empty() -> Tree {
        Tree {
            nodes: HashMap::new(),
        }
    }

    /// The node at `path`. The empty path names the root, as in ZooKeeper's node map
    /// (so `getData("")` answers with `/`).
    pub fn get(&self, path: &str) -> Option<&Arc<Node>> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    /// Number of znodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is empty (never true: `/` always exists).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Replaces (or inserts) the node at `path`.
    pub fn put(&mut self, path: Arc<str>, node: Node) {
        self.nodes.insert(path, Arc::new(node));
    }

    /// Removes the node at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Arc<Node>> {
        self.nodes.remove(path)
    }

    /// Applies `f` to a copy of the node at `path` and stores the copy.
    /// Panics if the node is missing: callers have checked.
    pub fn update(&mut self, path: &str, f: impl FnOnce(&mut Node)) {
        let node = self
            .nodes
            .get_mut(path)
            .unwrap_or_else(|| panic!("update of missing node {path}"));
        f(Arc::make_mut(node));
    }

    /// All paths (unordered).
    pub fn paths(&self) -> impl Iterator<Item = &Arc<str>> {
        self.nodes.keys()
    }

    /// Number of descendants of `path` (not counting itself).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.get(&p) {
                for c in &n.children {
                    count += 1;
                    stack.push(crate::path::join(&p, c));
                }
            }
        }
        count
    }

    /// Approximate bytes of paths and data, as ZooKeeper's `approximateDataSize`.
    pub fn approximate_data_size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|(p, n)| (p.len() + n.data_len()) as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_are_snapshots() {
        let mut t = Tree::new(Arc::from(Vec::new()));
        let before = t.clone();
        t.put(Arc::from("/x"), Node::default());
        assert!(t.get("/x").is_some());
        assert!(before.get("/x").is_none());
        assert_eq!(before.len(), 4);
    }
}
