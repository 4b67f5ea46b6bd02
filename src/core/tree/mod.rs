//! The data tree: znodes by full path, in two layers.
//!
//! - The **base** is the snapshot the server started from (or the newest it has written
//!   since), mapped into memory and read in place ([`Base`]): no per-node work to load
//!   it, so restart time does not grow with the data, and its nodes cost the archive's
//!   compact bytes rather than heap objects.
//! - The **overlay** is a persistent (structurally shared) map of what changed since the
//!   base: nodes written since, and tombstones for base nodes deleted since. Each entry
//!   remembers the zxid that last wrote it.
//!
//! Cloning a [`Tree`] is O(1) and a clone never sees later changes: this is what makes
//! the read-copy-update design work. The commit stage mutates its own *head* copy; after
//! each durable batch it publishes a clone, which shards read without locks while the
//! head moves on. A change copies only the trie path to the changed entry.
//!
//! When a newer snapshot is written, [`Tree::rebase`] makes it the base and keeps only
//! the overlay entries written after it: the logical content is unchanged, and memory
//! goes back to the archive's size.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use ferrokeeper_net::records::{Acl, Stat};
use imbl::{OrdMap, OrdSet};

mod base;
pub use base::{Base, BaseChildren, BaseNode};

/// A znode's persisted metadata (jute `StatPersisted`).
///
/// Packed to 4-byte alignment: 60 bytes instead of 64, so that [`Node`] holds its kept
/// digest in what was this struct's padding and stays 104 bytes (the memory bound of
/// `tests/memory.rs`). Its fields are read and written by value; a reference to one
/// does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C, packed(4))]
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
    pub children: ChildSet,
    /// The node's digest ([`crate::core::digest::node_digest`], a CRC32 or 0) as the
    /// tree last computed it, kept so that a change subtracts the old digest without
    /// reading the old data, seldom in cache when a node is written after thousands of
    /// others (a seventh of a log replay's CPU, issue #13). Kept by the tree: whatever a
    /// caller sets is replaced when the tree stores or changes the node, and only nodes
    /// the tree holds are read for it.
    pub digest: u32,
}

impl Node {
    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// The `Stat` a client sees (see [`NodeRef::client_stat`]).
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        NodeRef::Owned(self).client_stat(extended_types)
    }
}

/// A node as the tree holds it: owned (written since the base) or read in place from
/// the base.
#[derive(Clone, Copy)]
pub enum NodeRef<'a> {
    /// In the overlay.
    Owned(&'a Node),
    /// In the base.
    Base(BaseNode<'a>),
}

impl<'a> NodeRef<'a> {
    /// The persisted stat.
    pub fn stat(&self) -> NodeStat {
        match self {
            NodeRef::Owned(n) => n.stat,
            NodeRef::Base(b) => b.stat(),
        }
    }

    /// Data; `None` is null data.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self {
            NodeRef::Owned(n) => n.data.as_deref(),
            NodeRef::Base(b) => b.data(),
        }
    }

    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// The ACL.
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        match self {
            NodeRef::Owned(n) => &n.acl,
            NodeRef::Base(b) => b.acl(),
        }
    }

    /// Number of children.
    pub fn num_children(&self) -> usize {
        match self {
            NodeRef::Owned(n) => n.children.len(),
            NodeRef::Base(b) => b.num_children(),
        }
    }

    /// Whether it has children.
    pub fn has_children(&self) -> bool {
        self.num_children() > 0
    }

    /// Whether it has a child called `name`.
    pub fn has_child(&self, name: &str) -> bool {
        match self {
            NodeRef::Owned(n) => n.children.contains(name),
            NodeRef::Base(b) => b.has_child(name),
        }
    }

    /// The children's names, in order.
    pub fn children(&self) -> Children<'a> {
        match self {
            NodeRef::Owned(n) => Children::Owned(n.children.iter()),
            NodeRef::Base(b) => Children::Base(b.children()),
        }
    }

    /// The node's digest ([`crate::core::digest::node_digest`]) at `path`: the one the
    /// tree keeps for a node it stored, computed for a base node.
    pub fn digest(&self, path: &str) -> i64 {
        i64::from(self.kept_digest(path))
    }

    /// [`NodeRef::digest`] as [`Node::digest`] keeps it.
    fn kept_digest(&self, path: &str) -> u32 {
        match self {
            NodeRef::Owned(n) => n.digest,
            NodeRef::Base(b) => crate::core::digest::node_crc(path, b.data(), &b.stat()),
        }
    }

    /// An owned copy (children and data copied when the node is in the base).
    pub fn to_node(&self) -> Node {
        match self {
            NodeRef::Owned(n) => (*n).clone(),
            NodeRef::Base(b) => Node {
                data: b.data().map(Arc::from),
                acl: b.acl().clone(),
                stat: b.stat(),
                children: ChildSet::of_base(b.base().clone(), b.index()),
                // Set when the tree stores the copy.
                digest: 0,
            },
        }
    }

    /// The `Stat` a client sees, as `DataNode.copyStat` renders it: the stored
    /// cversion counts creates only (it doubles as the sequence counter), so the
    /// visible one is `2 × cversion − numChildren` (every create has a delete except for
    /// the children still present); containers and TTL nodes show `ephemeralOwner` 0.
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let s = self.stat();
        let num_children = self.num_children() as i32;
        let owner = match crate::core::state::owner_kind(s.ephemeral_owner, extended_types) {
            crate::core::state::OwnerKind::Normal => s.ephemeral_owner,
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

/// The names of a node's children, in order.
pub enum Children<'a> {
    /// An overlay node's set.
    Owned(ChildIter<'a>),
    /// A base node's list.
    Base(BaseChildren<'a>),
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Children::Owned(it) => it.next(),
            Children::Base(it) => it.next(),
        }
    }
}

/// The names of an overlay node's children: an underlying list plus the names added
/// and removed since. The underlying list is a base node's (when the node was copied
/// from the base), or the node's set as it was in the frozen layer (when copied from
/// there), or nothing. So copying a node with a million children into the overlay costs
/// nothing, and neither does rebasing it: a set over its frozen self moves onto the new
/// base's list for the same path, which holds the same names ([`Tree::rebase`]).
///
/// A node with no children and no list under it (every fresh leaf) holds no layers at
/// all: one null pointer in the node instead of 64 bytes of empty layers (issue #13:
/// 461 → 405 B of heap per fresh znode in `tests/memory.rs`).
#[derive(Debug, Clone, Default)]
pub struct ChildSet(Option<Box<Layers>>);

/// A [`ChildSet`]'s underlying list and its changes.
///
/// Invariants: `added` holds no name of the underlying list; `removed` holds only names
/// of it.
#[derive(Debug, Clone, Default)]
struct Layers {
    under: Under,
    added: OrdSet<Arc<str>>,
    removed: OrdSet<Arc<str>>,
}

#[derive(Debug, Clone, Default)]
enum Under {
    #[default]
    Nothing,
    Base(Arc<Base>, u32),
    Frozen(Arc<ChildSet>),
}

impl ChildSet {
    fn with(layers: Layers) -> ChildSet {
        ChildSet(Some(Box::new(layers)))
    }

    fn layers(&self) -> Option<&Layers> {
        self.0.as_deref()
    }

    /// The children of base node `i`, unchanged. None (a leaf) holds no layers and so
    /// no reference to `base`: a leaf copied from the base is not among the nodes a
    /// rebase must move onto the new base ([`Tree::rebase`]).
    pub fn of_base(base: Arc<Base>, i: u32) -> ChildSet {
        if base.node(i).num_children() == 0 {
            return ChildSet::default();
        }
        ChildSet::with(Layers {
            under: Under::Base(base, i),
            ..Layers::default()
        })
    }

    /// The same names, as changes over `frozen`. No names (a leaf) need no layer under
    /// them: such a set is not among those a rebase must move onto the new base.
    fn over(frozen: &ChildSet) -> ChildSet {
        if frozen.is_empty() {
            return ChildSet::default();
        }
        ChildSet::with(Layers {
            under: Under::Frozen(Arc::new(frozen.clone())),
            ..Layers::default()
        })
    }

    /// Whether it is relative to `base` (or holds nothing that needs one).
    fn is_on(&self, base: &Arc<Base>) -> bool {
        self.layers().is_none_or(|l| l.is_on(base))
    }

    /// Whether its underlying list is the frozen layer's or an older base's.
    fn is_stale(&self, base: &Arc<Base>) -> bool {
        self.layers().is_some_and(|l| l.is_stale(base))
    }

    /// Puts base node `at` of `base` under the changes, in place of an underlying list
    /// that holds the same names.
    fn thaw(&mut self, base: &Arc<Base>, at: Option<u32>) {
        self.0.get_or_insert_default().thaw(base, at);
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.layers().map_or(0, Layers::len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `name` is a child.
    pub fn contains(&self, name: &str) -> bool {
        self.layers().is_some_and(|l| l.contains(name))
    }

    /// Adds `name`; false if it was there.
    pub fn insert(&mut self, name: Arc<str>) -> bool {
        self.0.get_or_insert_default().insert(name)
    }

    /// Removes `name`; false if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.as_mut().is_some_and(|l| l.remove(name))
    }

    /// The names, in order.
    pub fn iter(&self) -> ChildIter<'_> {
        ChildIter(self.layers().map(Layers::iter))
    }

    /// The same names, relative to base node `at` of `base` (or to no base when `at` is
    /// `None`): one merge pass over both lists.
    fn rebased(&self, base: &Arc<Base>, at: Option<u32>) -> ChildSet {
        match self.layers() {
            Some(l) => l.rebased(base, at),
            None => Layers::default().rebased(base, at),
        }
    }
}

impl Layers {
    /// Whether it is relative to `base` (or holds nothing that needs one).
    fn is_on(&self, base: &Arc<Base>) -> bool {
        match &self.under {
            Under::Base(b, _) => Arc::ptr_eq(b, base),
            Under::Nothing => self.added.is_empty(),
            Under::Frozen(_) => false,
        }
    }

    /// Whether its underlying list is the frozen layer's or an older base's.
    fn is_stale(&self, base: &Arc<Base>) -> bool {
        match &self.under {
            Under::Nothing => false,
            Under::Base(b, _) => !Arc::ptr_eq(b, base),
            Under::Frozen(_) => true,
        }
    }

    /// Puts base node `at` of `base` under the changes, in place of an underlying list
    /// that holds the same names.
    fn thaw(&mut self, base: &Arc<Base>, at: Option<u32>) {
        self.under = match at {
            Some(i) => Under::Base(base.clone(), i),
            None => Under::Nothing,
        };
    }

    fn under_len(&self) -> usize {
        match &self.under {
            Under::Nothing => 0,
            Under::Base(b, i) => b.node(*i).num_children(),
            Under::Frozen(f) => f.len(),
        }
    }

    fn under_has(&self, name: &str) -> bool {
        match &self.under {
            Under::Nothing => false,
            Under::Base(b, i) => b.node(*i).has_child(name),
            Under::Frozen(f) => f.contains(name),
        }
    }

    /// Number of children.
    fn len(&self) -> usize {
        self.under_len() - self.removed.len() + self.added.len()
    }

    /// Whether `name` is a child.
    fn contains(&self, name: &str) -> bool {
        self.added.contains(name) || (self.under_has(name) && !self.removed.contains(name))
    }

    /// Adds `name`; false if it was there.
    fn insert(&mut self, name: Arc<str>) -> bool {
        if self.removed.remove(&*name).is_some() {
            return true;
        }
        if self.under_has(&name) {
            return false;
        }
        self.added.insert(name).is_none()
    }

    /// Removes `name`; false if it was not there.
    fn remove(&mut self, name: &str) -> bool {
        if self.added.remove(name).is_some() {
            return true;
        }
        self.under_has(name) && self.removed.insert(Arc::from(name)).is_none()
    }

    fn iter(&self) -> LayerIter<'_> {
        let under = match &self.under {
            Under::Nothing => UnderIter::Nothing,
            Under::Base(b, i) => UnderIter::Base(b.node(*i).children()),
            Under::Frozen(f) => UnderIter::Frozen(Box::new(f.iter())),
        };
        LayerIter {
            under: under.peekable(),
            removed: &self.removed,
            added: self.added.iter().peekable(),
        }
    }

    /// The same names, relative to base node `at` of `base` (or to no base when `at` is
    /// `None`): one merge pass over both lists.
    fn rebased(&self, base: &Arc<Base>, at: Option<u32>) -> ChildSet {
        let mut out = Layers {
            under: at.map_or(Under::Nothing, |i| Under::Base(base.clone(), i)),
            ..Layers::default()
        };
        let mut new_list = at.map(|i| base.node(i).children().peekable());
        for name in self.iter() {
            if let Some(list) = new_list.as_mut() {
                while let Some(b) = list.next_if(|b| *b < name) {
                    out.removed.insert(Arc::from(b));
                }
                if list.next_if(|b| *b == name).is_some() {
                    continue;
                }
            }
            out.added.insert(Arc::from(name));
        }
        if let Some(list) = new_list {
            for b in list {
                out.removed.insert(Arc::from(b));
            }
        }
        ChildSet::with(out)
    }
}

impl FromIterator<Arc<str>> for ChildSet {
    fn from_iter<I: IntoIterator<Item = Arc<str>>>(names: I) -> ChildSet {
        let added: OrdSet<Arc<str>> = names.into_iter().collect();
        if added.is_empty() {
            return ChildSet::default();
        }
        ChildSet::with(Layers {
            added,
            ..Layers::default()
        })
    }
}

enum UnderIter<'a> {
    Nothing,
    Base(BaseChildren<'a>),
    Frozen(Box<ChildIter<'a>>),
}

impl<'a> Iterator for UnderIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            UnderIter::Nothing => None,
            UnderIter::Base(it) => it.next(),
            UnderIter::Frozen(it) => it.next(),
        }
    }
}

/// The names of a [`ChildSet`], in order.
pub struct ChildIter<'a>(Option<LayerIter<'a>>);

impl<'a> Iterator for ChildIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.as_mut()?.next()
    }
}

/// The names of a [`Layers`], in order.
struct LayerIter<'a> {
    under: std::iter::Peekable<UnderIter<'a>>,
    removed: &'a OrdSet<Arc<str>>,
    added:
        std::iter::Peekable<imbl::ordset::Iter<'a, Arc<str>, imbl::shared_ptr::DefaultSharedPtr>>,
}

impl<'a> Iterator for LayerIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let from_under = match (self.under.peek(), self.added.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(u), Some(a)) => *u < &***a,
            };
            if !from_under {
                return self.added.next().map(|a| &**a);
            }
            let name = self.under.next()?;
            if !self.removed.contains(name) {
                return Some(name);
            }
        }
    }
}

/// One overlay entry: the node written at `zxid`, or its deletion.
#[derive(Debug, Clone)]
struct Entry {
    zxid: i64,
    node: Option<Arc<Node>>,
}

/// An overlay key: a path behind a digest of it ([`Near`]). Keys order by the digest
/// first and by path only between equal digests, so a lookup down the B-tree compares
/// integers held in the tree's own nodes, and reads a path (a pointer to follow, a
/// `memcmp`) only at the key it lands on. Ordering by path alone made each of a lookup's
/// ~18 compares a cache miss on another key's string: 28 % of a shard's CPU in
/// closed-loop reads (bench/results/read-profile-2026-12-06.md). Nothing needs the
/// overlay in path order but the snapshot writer, which sorts anyway
/// ([`Tree::sorted_refs`]).
///
/// Equal digests are legal (any two paths may share one): the path breaks the tie, so
/// such keys are distinct and each is found by its own path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    // Field order is the derived order: digest, then path.
    near: Near,
    path: Arc<str>,
}

/// The part of a [`Key`] compared first: the parent path's hash, then the name's length
/// and its last seven bytes. Siblings sit together, and names numbered in sequence
/// (`n1`, `n2` … `n10` …; ZooKeeper's sequential nodes) follow each other, so a run
/// of creates under one parent lands in the same B-tree leaf, as it did in path order.
/// A full-path hash scattered them: after each publication a create copied a leaf of its
/// own (64 entries, two reference counts each), and 1M creates cost 3× the server CPU
/// and ~20 % more memory (bench/results/hash-index-2026-12-06.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Near {
    parent: u64,
    tail: u64,
}

impl Near {
    fn of(path: &str) -> Near {
        let (parent, name) = match path.rfind('/') {
            Some(i) => (&path.as_bytes()[..i], &path.as_bytes()[i + 1..]),
            None => (&b""[..], path.as_bytes()),
        };
        let mut tail = (name.len().min(255) as u64) << 56;
        for (i, b) in name.iter().rev().take(7).enumerate() {
            tail |= u64::from(*b) << (8 * i);
        }
        Near {
            parent: xxhash_rust::xxh3::xxh3_64(parent),
            tail,
        }
    }
}

impl Key {
    fn new(path: Arc<str>) -> Key {
        Key {
            near: Near::of(&path),
            path,
        }
    }

    /// This key as a lookup probe (its digest already taken).
    fn probe(&self) -> Probe<'_> {
        Probe {
            near: self.near,
            path: &self.path,
        }
    }
}

/// A key to look one up by without owning a path: [`Key`]'s borrowed form.
struct Probe<'a> {
    near: Near,
    path: &'a str,
}

impl<'a> Probe<'a> {
    fn new(path: &'a str) -> Probe<'a> {
        Probe {
            near: Near::of(path),
            path,
        }
    }

    /// As the map's lookups take it.
    fn key(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// What [`Key`] and [`Probe`] share, so that the overlay (keyed by `Key`) can be searched
/// with a `Probe` (`Key: Borrow<dyn KeyView>`). Its order is `Key`'s derived order, as
/// `Borrow` requires.
trait KeyView {
    fn view(&self) -> (Near, &str);
}

impl KeyView for Key {
    fn view(&self) -> (Near, &str) {
        (self.near, &self.path)
    }
}

impl KeyView for Probe<'_> {
    fn view(&self) -> (Near, &str) {
        (self.near, self.path)
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.view(), other.view());
        a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
    }
}

/// The value [`Node::digest`] keeps for `node` at `path`.
fn digest_of(path: &str, node: &Node) -> u32 {
    crate::core::digest::node_crc(path, node.data.as_deref(), &node.stat)
}

/// The overlay's map (see [`Key`]).
type Overlay = OrdMap<Key, Entry>;

/// The overlay as it was when a snapshot was decided, waiting for that snapshot to
/// become the base.
#[derive(Debug, Clone)]
struct Frozen {
    at: i64,
    entries: Overlay,
}

/// The layered map from path to node: `overlay` over `frozen` over `base`.
///
/// The overlay is a B-tree (`OrdMap`) rather than a hash trie (`imbl::HashMap`): its
/// nodes are at least half full, where the trie's fixed-width chunks were mostly empty.
/// Measured with `tests/memory.rs` (100k creates of 100 B, published every 64):
/// 586 B of heap per fresh znode with the trie, of which an estimated ~200 B were the
/// trie's own (issue #13). It is ordered by a digest of the path ([`Key`]), so that a
/// lookup compares integers, as a hash table's would.
#[derive(Debug, Clone)]
pub struct Tree {
    base: Option<Arc<Base>>,
    frozen: Option<Frozen>,
    overlay: Overlay,
    len: usize,
    data_bytes: u64,
}

impl Tree {
    /// A tree holding only `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`
    /// with the stats a fresh standalone ZooKeeper shows: all zero, open ACLs except on
    /// `/zookeeper/config`, which everyone may read and only a super user may change
    /// (`ZooKeeperServer` gives it `READ_ACL_UNSAFE`).
    pub fn new(open_acl: Arc<[Acl]>) -> Tree {
        let mut t = Tree::empty();
        let mk = |children: &[&str]| Node {
            data: Some(Arc::from(&b""[..])),
            acl: open_acl.clone(),
            stat: NodeStat::default(),
            children: children.iter().map(|c| Arc::<str>::from(*c)).collect(),
            digest: 0,
        };
        t.put(Arc::from("/"), mk(&["zookeeper"]), 0);
        t.put(Arc::from("/zookeeper"), mk(&["config", "quota"]), 0);
        t.put(Arc::from("/zookeeper/quota"), mk(&[]), 0);
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
        t.put(Arc::from("/zookeeper/config"), config, 0);
        t
    }

    /// A tree with no node at all, not even `/`: the start of a load, which puts every
    /// node itself.
    pub fn empty() -> Tree {
        Tree {
            base: None,
            frozen: None,
            overlay: OrdMap::new(),
            len: 0,
            data_bytes: 0,
        }
    }

    /// A tree serving `base` as it is.
    pub fn from_base(base: Arc<Base>) -> Tree {
        Tree {
            len: base.len(),
            data_bytes: base.data_bytes(),
            base: Some(base),
            frozen: None,
            overlay: OrdMap::new(),
        }
    }

    /// The base layer, if any.
    pub fn base(&self) -> Option<&Arc<Base>> {
        self.base.as_ref()
    }

    /// Whether a frozen layer waits for its snapshot ([`Tree::freeze`]).
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Number of overlay entries, frozen ones included (nodes written and deleted
    /// since the base).
    pub fn overlay_len(&self) -> usize {
        self.overlay.len() + self.frozen.as_ref().map_or(0, |f| f.entries.len())
    }

    fn entry(&self, probe: &Probe<'_>) -> Option<&Entry> {
        self.overlay
            .get(probe.key())
            .or_else(|| self.frozen.as_ref()?.entries.get(probe.key()))
    }

    /// The node at `path`. The empty path names the root, as in ZooKeeper's node map
    /// (so `getData("")` answers with `/`).
    pub fn get(&self, path: &str) -> Option<NodeRef<'_>> {
        let path = if path.is_empty() { "/" } else { path };
        self.get_probed(&Probe::new(path))
    }

    /// [`Tree::get`] by a probe: one digest for both overlay layers.
    fn get_probed(&self, probe: &Probe<'_>) -> Option<NodeRef<'_>> {
        match self.entry(probe) {
            Some(e) => e.node.as_deref().map(NodeRef::Owned),
            None => {
                let base = self.base.as_ref()?;
                base.find(probe.path).map(|i| NodeRef::Base(base.node(i)))
            }
        }
    }

    /// Whether a node exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Number of znodes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree is empty (only before a load has put the root).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum over the nodes of path length plus data length.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Replaces (or inserts) the node at `path`, as written by txn `zxid`. Returns the
    /// node's digest ([`Node::digest`]).
    pub fn put(&mut self, path: Arc<str>, mut node: Node, zxid: i64) -> i64 {
        node.digest = digest_of(&path, &node);
        let digest = i64::from(node.digest);
        self.put_keyed(Key::new(path), node, zxid);
        digest
    }

    /// [`Tree::put`] with the path's key already made and `node.digest` computed.
    fn put_keyed(&mut self, key: Key, node: Node, zxid: i64) {
        let path_len = key.path.len();
        match self.get_probed(&key.probe()) {
            Some(old) => self.data_bytes -= (path_len + old.data_len()) as u64,
            None => self.len += 1,
        }
        self.data_bytes += (path_len + node.data_len()) as u64;
        self.overlay.insert(
            key,
            Entry {
                zxid,
                node: Some(Arc::new(node)),
            },
        );
    }

    /// Removes the node at `path`, deleted by txn `zxid`; returns its stat.
    pub fn remove(&mut self, path: &Arc<str>, zxid: i64) -> Option<NodeStat> {
        let key = Key::new(path.clone());
        let old = self.get_probed(&key.probe())?;
        let stat = old.stat();
        self.data_bytes -= (path.len() + old.data_len()) as u64;
        self.len -= 1;
        // A tombstone even when no base holds the node: a snapshot taken before this
        // delete may hold it and become the base (`rebase`), and must not bring it back.
        // Tombstones last until the next rebase.
        self.overlay.insert(key, Entry { zxid, node: None });
        Some(stat)
    }

    /// Applies `f` to a copy of the node at `path` (written by txn `zxid`) and stores
    /// the copy. A base node is copied into the overlay first. Panics if the node is
    /// missing: callers have checked. Returns the node's digest before and after
    /// ([`Node::digest`]).
    pub fn update(&mut self, path: &str, zxid: i64, f: impl FnOnce(&mut Node)) -> (i64, i64) {
        self.change(path, zxid, f, true)
    }

    /// [`Tree::update`] of the children list alone, which no digest covers: the kept
    /// digest stays, without a CRC over the node (the import links every node it loads
    /// to its parent this way).
    pub fn update_children(&mut self, path: &str, zxid: i64, f: impl FnOnce(&mut ChildSet)) {
        self.change(path, zxid, |n| f(&mut n.children), false);
    }

    /// [`Tree::update`]; `f` changes what the node's digest covers unless `digested` is
    /// false.
    fn change(
        &mut self,
        path: &str,
        zxid: i64,
        f: impl FnOnce(&mut Node),
        digested: bool,
    ) -> (i64, i64) {
        let path = if path.is_empty() { "/" } else { path };
        let probe = Probe::new(path);
        if let Some(e) = self.overlay.get_mut(probe.key()) {
            if let Some(node) = e.node.as_mut() {
                let node = Arc::make_mut(node);
                let old = i64::from(node.digest);
                let before = node.data_len();
                f(node);
                if digested {
                    node.digest = digest_of(path, node);
                }
                let after = node.data_len();
                e.zxid = zxid;
                self.data_bytes = self.data_bytes + after as u64 - before as u64;
                return (old, i64::from(node.digest));
            }
        }
        let held = self
            .get_probed(&probe)
            .unwrap_or_else(|| panic!("update of missing node {path}"));
        let mut node = held.to_node();
        node.digest = held.kept_digest(path);
        let old = i64::from(node.digest);
        if self
            .frozen
            .as_ref()
            .is_some_and(|f| f.entries.contains_key(probe.key()))
        {
            // Changes from here on are kept apart, so that the rebase onto the frozen
            // layer's snapshot can put the new base's list under them.
            node.children = ChildSet::over(&node.children);
        }
        f(&mut node);
        if digested {
            node.digest = digest_of(path, &node);
        }
        let new = i64::from(node.digest);
        let key = Key {
            near: probe.near,
            path: Arc::from(path),
        };
        self.put_keyed(key, node, zxid);
        (old, new)
    }

    /// Sets the overlay aside as the state at `at` (the head's zxid), which a snapshot
    /// is about to be taken of; writes from now on go to a fresh overlay. When that
    /// snapshot becomes the base, [`Tree::rebase`] drops the frozen layer whole: O(1),
    /// where finding the entries written after the snapshot would take a pass over the
    /// overlay on the commit path. A frozen layer whose snapshot never came is folded
    /// back first.
    pub fn freeze(&mut self, at: i64) {
        self.unfreeze();
        let entries = std::mem::take(&mut self.overlay);
        self.frozen = Some(Frozen { at, entries });
    }

    /// Folds the frozen layer back into the overlay (newer entries win).
    fn unfreeze(&mut self) {
        if let Some(f) = self.frozen.take() {
            self.overlay = std::mem::take(&mut self.overlay).union(f.entries);
        }
    }

    /// Makes `base` the base layer. `base` must hold this tree's own state at
    /// `base.zxid()`: a snapshot of an earlier version of this tree. Nothing visible
    /// changes.
    ///
    /// When the tree was frozen at that zxid (the commit stage's way), the frozen layer
    /// is exactly what the new base holds, and goes. Otherwise every entry written
    /// after that zxid stays and the rest go (a pass over the overlay), and the kept
    /// nodes' children lists move onto the new base (one merge pass each).
    ///
    /// In the first case, nodes copied since the freeze (from the frozen layer or from
    /// the old base, both of which hold the state at the freeze) put the new base's list
    /// for their path under their changes, in place of the one they were copied over: a
    /// pass over the overlay, which holds only what was written since the freeze; no
    /// children list is walked. Leaves hold no list (see [`ChildSet`]), so only nodes
    /// with children are touched: a `base.find` and a copy of the node each, which the
    /// shards' published states share (measured: ~5 µs each on the commit executor,
    /// 75 ms for 10k setData on leaves before leaves were left out, issue #13).
    ///
    /// Returns the number of nodes moved onto the new base's lists that way.
    pub fn rebase(&mut self, base: Arc<Base>) -> usize {
        let at = base.zxid();
        if self.frozen.as_ref().is_some_and(|f| f.at == at) {
            self.frozen = None;
            let thawing: Vec<Key> = self
                .overlay
                .iter()
                .filter(|(_, e)| e.node.as_ref().is_some_and(|n| n.children.is_stale(&base)))
                .map(|(k, _)| k.clone())
                .collect();
            let thawed = thawing.len();
            for key in thawing {
                let at = base.find(&key.path);
                if let Some(node) = self.overlay.get_mut(&key).and_then(|e| e.node.as_mut()) {
                    Arc::make_mut(node).children.thaw(&base, at);
                }
            }
            self.base = Some(base);
            return thawed;
        }
        self.unfreeze();
        let mut overlay: Overlay = self
            .overlay
            .iter()
            .filter(|(k, e)| e.zxid > at && (e.node.is_some() || base.find(&k.path).is_some()))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let kept: Vec<Key> = overlay
            .iter()
            .filter(|(_, e)| e.node.as_ref().is_some_and(|n| !n.children.is_on(&base)))
            .map(|(k, _)| k.clone())
            .collect();
        let moved = kept.len();
        for key in kept {
            if let Some(node) = overlay.get_mut(&key).and_then(|e| e.node.as_mut()) {
                let node = Arc::make_mut(node);
                node.children = node.children.rebased(&base, base.find(&key.path));
            }
        }
        self.overlay = overlay;
        self.base = Some(base);
        moved
    }

    /// Every node, sorted by path.
    pub fn sorted_nodes(&self) -> Vec<(&str, NodeRef<'_>)> {
        self.sorted_refs().iter().collect()
    }

    /// Every node, sorted by path, in a compact form ([`SortedRefs`]): what the
    /// snapshot writer holds while it writes, 4 B a node of the base plus 24 B a node of
    /// the overlay, instead of [`Tree::sorted_nodes`]' 40 B a node.
    pub fn sorted_refs(&self) -> SortedRefs<'_> {
        let frozen = self
            .frozen
            .iter()
            .flat_map(|f| f.entries.iter())
            .filter(|(k, _)| !self.overlay.contains_key(*k));
        // The overlay is in digest order ([`Key`]): sorted here, its one ordered use.
        let mut owned: Vec<(&str, &Node)> = self
            .overlay
            .iter()
            .chain(frozen)
            .filter_map(|(k, e)| e.node.as_deref().map(|n| (&*k.path, n)))
            .collect();
        owned.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let Some(base) = self.base.as_ref() else {
            return SortedRefs {
                base: None,
                refs: Vec::new(),
                is_owned: Vec::new(),
                owned,
            };
        };
        let mut refs: Vec<u32> = Vec::with_capacity(self.len);
        let mut is_owned: Vec<u64> = Vec::with_capacity(self.len.div_ceil(64));
        let mut push = |r: u32, owned: bool, refs: &mut Vec<u32>| {
            let i = refs.len();
            if i.is_multiple_of(64) {
                is_owned.push(0);
            }
            if owned {
                if let Some(w) = is_owned.last_mut() {
                    *w |= 1 << (i % 64);
                }
            }
            refs.push(r);
        };
        let mut next = 0usize;
        let no_entries = self.overlay_len() == 0;
        for (i, b) in base.iter().enumerate() {
            let path = b.path();
            while next < owned.len() && owned[next].0 < path {
                push(next as u32, true, &mut refs);
                next += 1;
            }
            if no_entries || self.entry(&Probe::new(path)).is_none() {
                push(i as u32, false, &mut refs);
            }
        }
        for k in next..owned.len() {
            push(k as u32, true, &mut refs);
        }
        SortedRefs {
            base: Some(base),
            refs,
            is_owned,
            owned,
        }
    }

    /// All paths (unordered).
    pub fn paths(&self) -> Vec<&str> {
        self.sorted_nodes().into_iter().map(|(p, _)| p).collect()
    }

    /// Number of descendants of `path` (not counting itself).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.get(&p) {
                for c in n.children() {
                    count += 1;
                    stack.push(crate::core::path::join(&p, c));
                }
            }
        }
        count
    }
}

/// Every node of a tree in path order ([`Tree::sorted_refs`]): node `i` is a base node
/// (by its index in the base) or an overlay node (by its index in `owned`), which bit
/// `i` of `is_owned` tells. Without a base every node is owned and `refs` is empty.
pub struct SortedRefs<'a> {
    base: Option<&'a Arc<Base>>,
    refs: Vec<u32>,
    is_owned: Vec<u64>,
    owned: Vec<(&'a str, &'a Node)>,
}

impl<'a> SortedRefs<'a> {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        match self.base {
            None => self.owned.len(),
            Some(_) => self.refs.len(),
        }
    }

    /// Whether there is no node (never, for a tree with a root).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Node `i` (in path order) and its path. Panics if `i` is out of range, as indexing.
    pub fn get(&self, i: usize) -> (&'a str, NodeRef<'a>) {
        let owned = |k: usize| {
            let (p, n) = self.owned[k];
            (p, NodeRef::Owned(n))
        };
        match self.base {
            None => owned(i),
            Some(base) => {
                let r = self.refs[i];
                if self.is_owned[i / 64] >> (i % 64) & 1 == 1 {
                    owned(r as usize)
                } else {
                    let b = base.node(r);
                    (b.path(), NodeRef::Base(b))
                }
            }
        }
    }

    /// The path of node `i`.
    pub fn path(&self, i: usize) -> &'a str {
        self.get(i).0
    }

    /// Every node in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, NodeRef<'a>)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_are_snapshots() {
        let mut t = Tree::new(Arc::from(Vec::new()));
        let before = t.clone();
        t.put(Arc::from("/x"), Node::default(), 1);
        assert!(t.get("/x").is_some());
        assert!(before.get("/x").is_none());
        assert_eq!(before.len(), 4);
    }

    /// Keys with equal digests (made here by hand: real ones need two paths with the
    /// same name's tail under parents whose hashes collide) are distinct, ordered by
    /// path, and each found by its own path; the borrowed form orders exactly as the key
    /// does, as `Borrow` requires.
    #[test]
    fn equal_digests_are_told_apart_by_path() {
        let key = |parent: u64, path: &str| Key {
            near: Near { parent, tail: 1 },
            path: Arc::from(path),
        };
        let keys = [
            key(7, "/b"),
            key(7, "/a"),
            key(3, "/z"),
            key(7, "/a/b"),
            key(u64::MAX, "/"),
            key(0, "/y"),
        ];
        let mut map: Overlay = OrdMap::new();
        for (i, k) in keys.iter().enumerate() {
            map.insert(
                k.clone(),
                Entry {
                    zxid: i as i64,
                    node: None,
                },
            );
        }
        assert_eq!(map.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            let probe = k.probe();
            assert_eq!(map.get(probe.key()).map(|e| e.zxid), Some(i as i64));
            for other in &keys {
                let view: &dyn KeyView = other;
                assert_eq!(probe.key().cmp(view), k.cmp(other), "{k:?} vs {other:?}");
            }
        }
        let missing = Probe {
            near: Near { parent: 7, tail: 1 },
            path: "/c",
        };
        assert!(map.get(missing.key()).is_none());
        let order: Vec<&str> = map.keys().map(|k| &*k.path).collect();
        assert_eq!(order, ["/y", "/z", "/a", "/a/b", "/b", "/"]);
    }

    /// Siblings numbered in sequence get increasing digests (so a run of creates
    /// appends to one B-tree leaf), whatever the number's width; paths without a slash
    /// (never a valid znode, but a client may ask) and the root have digests too.
    #[test]
    fn numbered_siblings_follow_each_other() {
        let mut prev = Near::of("/p/n0");
        for i in 1..200_000 {
            let next = Near::of(&format!("/p/n{i}"));
            assert!(prev < next, "n{i}");
            prev = next;
        }
        let seq = |i: u32| Near::of(&format!("/q/lock-{i:010}"));
        assert!(seq(999_999) < seq(1_000_000));
        // A carry past the seventh byte from the end starts the run over elsewhere
        // in the parent's stretch (once in ten million for decimal numbers): slower
        // that once, never wrong.
        assert!(seq(9_999_999) > seq(10_000_000));
        assert_eq!(Near::of("/a").parent, Near::of("/b").parent);
        assert_ne!(Near::of("/a/x").parent, Near::of("/b/x").parent);
        let _ = (
            Near::of(""),
            Near::of("/"),
            Near::of("abc"),
            Near::of(&"é".repeat(300)),
        );
    }

    /// The layered tree against a plain ordered map, through random puts, removes,
    /// updates, clones, freezes and unfreezes: every lookup agrees, `sorted_nodes` is in
    /// path order, a clone keeps what it saw, and the digest kept with each node (also
    /// through children-only updates) is the one its path, data and stat give.
    #[test]
    fn agrees_with_a_model_map() {
        use std::collections::BTreeMap;
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut t = Tree::empty();
        let mut model: BTreeMap<String, i64> = BTreeMap::new();
        let mut saved: Vec<(Tree, BTreeMap<String, i64>)> = Vec::new();
        for zxid in 1..4000_i64 {
            let path = format!("/n{}/c{}", next(5), next(200));
            match next(10) {
                0..=3 => {
                    let mut node = Node::default();
                    node.stat.mzxid = zxid;
                    t.put(Arc::from(path.as_str()), node, zxid);
                    model.insert(path, zxid);
                }
                4..=5 => {
                    let removed = t.remove(&Arc::from(path.as_str()), zxid).map(|s| s.mzxid);
                    assert_eq!(removed, model.remove(&path));
                }
                6 if model.contains_key(&path) => {
                    t.update_children(&path, zxid, |c| {
                        c.insert(Arc::from("child"));
                    });
                }
                7 if model.contains_key(&path) => {
                    let data: Arc<[u8]> = Arc::from(zxid.to_be_bytes().as_slice());
                    t.update(&path, zxid, |n| {
                        n.stat.mzxid = zxid;
                        n.data = Some(data);
                    });
                    model.insert(path, zxid);
                }
                8 => t.freeze(zxid),
                _ => saved.push((t.clone(), model.clone())),
            }
        }
        saved.push((t, model));
        for (tree, model) in &saved {
            assert_eq!(tree.len(), model.len());
            let sorted: Vec<(String, i64)> = tree
                .sorted_nodes()
                .into_iter()
                .map(|(p, n)| (p.to_string(), n.stat().mzxid))
                .collect();
            let expected: Vec<(String, i64)> = model.iter().map(|(p, z)| (p.clone(), *z)).collect();
            assert_eq!(sorted, expected);
            for (path, node) in tree.sorted_nodes() {
                let computed = crate::core::digest::node_digest(path, node.data(), &node.stat());
                assert_eq!(node.digest(path), computed, "{path}");
            }
            for a in 0..5 {
                for b in 0..200 {
                    let p = format!("/n{a}/c{b}");
                    assert_eq!(tree.get(&p).map(|n| n.stat().mzxid), model.get(&p).copied());
                }
            }
        }
    }
}
