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

/// One overlay record: the node at `path` as txn `zxid` wrote it, or its deletion
/// (`node` is `None`), and the next record whose path has the same [`Near`] digest.
///
/// The overlay's B-tree maps each digest to one pointer, so copying a leaf (what a
/// write to a leaf shared with the published state does) bumps one reference count per
/// entry. The path used to be a key of its own beside an `Arc<Node>`: two counts and
/// 48 bytes per entry instead of one and 24, and the leaf copies with their later drops
/// were a fifth of the server's CPU per closed-loop setData
/// (bench/results/write-cpu-2026-12-06.md).
#[derive(Debug, Clone)]
struct Record {
    path: Arc<str>,
    zxid: i64,
    node: Option<Node>,
    /// Invariant: each record of a chain has a path of its own, all of the same digest.
    next: Option<Arc<Record>>,
}

impl Record {
    /// The record for `path` in the chain that starts here.
    fn find(&self, path: &str) -> Option<&Record> {
        self.chain().find(|r| *r.path == *path)
    }

    /// The records of the chain that starts here.
    fn chain(&self) -> impl Iterator<Item = &Record> {
        std::iter::successors(Some(self), |r| r.next.as_deref())
    }
}

/// [`Record::find`] for a change: the records on the way are copied where shared.
fn find_mut<'a>(link: &'a mut Arc<Record>, path: &str) -> Option<&'a mut Record> {
    link.find(path)?;
    if *link.path == *path {
        return Some(Arc::make_mut(link));
    }
    find_mut(Arc::make_mut(link).next.as_mut()?, path)
}

/// Puts `record` in `overlay` at `near`, in place of the record for its path if the
/// chain there has one. `record.next` is ignored.
fn put_record(overlay: &mut Overlay, near: Near, record: Record) {
    let Some(head) = overlay.get_mut(&near) else {
        overlay.insert(
            near,
            Arc::new(Record {
                next: None,
                ..record
            }),
        );
        return;
    };
    if head.find(&record.path).is_none() {
        let next = Some(head.clone());
        *head = Arc::new(Record { next, ..record });
        return;
    }
    let mut link = head;
    while *link.path != *record.path {
        link = Arc::make_mut(link)
            .next
            .as_mut()
            .expect("the chain holds the path: found above");
    }
    let next = link.next.clone();
    *link = Arc::new(Record { next, ..record });
}

/// The part of a path the overlay is ordered by: the parent path's hash, then the
/// name's length and its last seven bytes. A lookup down the B-tree compares integers
/// held in the tree's own nodes, and reads a path (a pointer to follow, a `memcmp`)
/// only at the record it lands on. Ordering by path alone made each of a lookup's ~18
/// compares a cache miss on another key's string: 28 % of a shard's CPU in closed-loop
/// reads (bench/results/read-profile-2026-12-06.md). Nothing needs the overlay in path
/// order but the snapshot writer, which sorts anyway ([`Tree::sorted_refs`]).
///
/// Siblings sit together, and names numbered in sequence (`n1`, `n2` … `n10` …;
/// ZooKeeper's sequential nodes) follow each other, so a run of creates under one
/// parent lands in the same B-tree leaf, as it did in path order. A full-path hash
/// scattered them: after each publication a create copied a leaf of its own, and 1M
/// creates cost 3× the server CPU and ~20 % more memory
/// (bench/results/hash-index-2026-12-06.md).
///
/// Equal digests are legal (any two paths may share one, e.g. `/q/a-0000000001` and
/// `/q/b-0000000001`): such paths share a slot, chained ([`Record::next`]), and each is
/// found by its own path.
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

/// Every record of `overlay`, with its digest.
fn records(overlay: &Overlay) -> impl Iterator<Item = (Near, &Record)> {
    overlay
        .iter()
        .flat_map(|(near, head)| head.chain().map(move |r| (*near, r)))
}

/// A path to look up, with its digest taken once for every layer.
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

    /// The record for the path in `overlay`.
    fn find<'m>(&self, overlay: &'m Overlay) -> Option<&'m Record> {
        overlay.get(&self.near)?.find(self.path)
    }
}

/// The value [`Node::digest`] keeps for `node` at `path`.
fn digest_of(path: &str, node: &Node) -> u32 {
    crate::core::digest::node_crc(path, node.data.as_deref(), &node.stat)
}

/// The overlay's map (see [`Near`] and [`Record`]).
type Overlay = OrdMap<Near, Arc<Record>>;

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
/// trie's own (issue #13). It is ordered by a digest of the path ([`Near`]), so that a
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

    /// Number of overlay slots, frozen ones included: nodes written and deleted since
    /// the base, but for paths that share a slot ([`Near`]).
    pub fn overlay_len(&self) -> usize {
        self.overlay.len() + self.frozen.as_ref().map_or(0, |f| f.entries.len())
    }

    fn record(&self, probe: &Probe<'_>) -> Option<&Record> {
        probe
            .find(&self.overlay)
            .or_else(|| probe.find(&self.frozen.as_ref()?.entries))
    }

    /// The node at `path`. The empty path names the root, as in ZooKeeper's node map
    /// (so `getData("")` answers with `/`).
    pub fn get(&self, path: &str) -> Option<NodeRef<'_>> {
        let path = if path.is_empty() { "/" } else { path };
        self.get_probed(&Probe::new(path))
    }

    /// [`Tree::get`] by a probe: one digest for both overlay layers.
    fn get_probed(&self, probe: &Probe<'_>) -> Option<NodeRef<'_>> {
        match self.record(probe) {
            Some(r) => r.node.as_ref().map(NodeRef::Owned),
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
        self.put_probed(Near::of(&path), path, node, zxid);
        digest
    }

    /// [`Tree::put`] with the path's digest taken and `node.digest` computed.
    fn put_probed(&mut self, near: Near, path: Arc<str>, node: Node, zxid: i64) {
        let path_len = path.len();
        match self.get_probed(&Probe { near, path: &path }) {
            Some(old) => self.data_bytes -= (path_len + old.data_len()) as u64,
            None => self.len += 1,
        }
        self.data_bytes += (path_len + node.data_len()) as u64;
        let record = Record {
            path,
            zxid,
            node: Some(node),
            next: None,
        };
        put_record(&mut self.overlay, near, record);
    }

    /// Removes the node at `path`, deleted by txn `zxid`; returns its stat.
    pub fn remove(&mut self, path: &Arc<str>, zxid: i64) -> Option<NodeStat> {
        let near = Near::of(path);
        let old = self.get_probed(&Probe { near, path })?;
        let stat = old.stat();
        self.data_bytes -= (path.len() + old.data_len()) as u64;
        self.len -= 1;
        // A tombstone even when no base holds the node: a snapshot taken before this
        // delete may hold it and become the base (`rebase`), and must not bring it back.
        // Tombstones last until the next rebase.
        let record = Record {
            path: path.clone(),
            zxid,
            node: None,
            next: None,
        };
        put_record(&mut self.overlay, near, record);
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
        let written = self
            .overlay
            .get_mut(&probe.near)
            .and_then(|head| find_mut(head, path));
        if let Some(r) = written {
            if let Some(node) = r.node.as_mut() {
                let old = i64::from(node.digest);
                let before = node.data_len();
                f(node);
                if digested {
                    node.digest = digest_of(path, node);
                }
                let after = node.data_len();
                r.zxid = zxid;
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
            .is_some_and(|f| probe.find(&f.entries).is_some())
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
        self.put_probed(probe.near, Arc::from(path), node, zxid);
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
            if self.overlay.is_empty() {
                self.overlay = f.entries;
                return;
            }
            for (near, head) in &f.entries {
                let Some(newer) = self.overlay.get(near) else {
                    self.overlay.insert(*near, head.clone());
                    continue;
                };
                let older: Vec<Record> = head
                    .chain()
                    .filter(|r| newer.find(&r.path).is_none())
                    .cloned()
                    .collect();
                for r in older {
                    put_record(&mut self.overlay, *near, r);
                }
            }
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
            let thawing = self.written_where(|n| n.children.is_stale(&base));
            let thawed = thawing.len();
            for (near, path) in thawing {
                let at = base.find(&path);
                let head = self.overlay.get_mut(&near).expect("listed above");
                if let Some(node) = find_mut(head, &path).and_then(|r| r.node.as_mut()) {
                    node.children.thaw(&base, at);
                }
            }
            self.base = Some(base);
            return thawed;
        }
        self.unfreeze();
        let kept = |r: &Record| r.zxid > at && (r.node.is_some() || base.find(&r.path).is_some());
        let mut overlay = Overlay::new();
        for (near, head) in &self.overlay {
            if head.next.is_none() {
                // One path at this digest (nearly always): the record is shared as is.
                if kept(head) {
                    overlay.insert(*near, head.clone());
                }
                continue;
            }
            for r in head.chain().filter(|r| kept(r)) {
                put_record(&mut overlay, *near, r.clone());
            }
        }
        self.overlay = overlay;
        let moving = self.written_where(|n| !n.children.is_on(&base));
        let moved = moving.len();
        for (near, path) in moving {
            let head = self.overlay.get_mut(&near).expect("listed above");
            if let Some(node) = find_mut(head, &path).and_then(|r| r.node.as_mut()) {
                node.children = node.children.rebased(&base, base.find(&path));
            }
        }
        self.base = Some(base);
        moved
    }

    /// The overlay's nodes (not its deletions) for which `pick` holds, by digest and
    /// path.
    fn written_where(&self, pick: impl Fn(&Node) -> bool) -> Vec<(Near, Arc<str>)> {
        records(&self.overlay)
            .filter(|(_, r)| r.node.as_ref().is_some_and(&pick))
            .map(|(near, r)| (near, r.path.clone()))
            .collect()
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
            .flat_map(|f| records(&f.entries))
            .filter(|(near, r)| {
                Probe {
                    near: *near,
                    path: &r.path,
                }
                .find(&self.overlay)
                .is_none()
            });
        // The overlay is in digest order ([`Near`]): sorted here, its one ordered use.
        let mut owned: Vec<(&str, &Node)> = records(&self.overlay)
            .chain(frozen)
            .filter_map(|(_, r)| r.node.as_ref().map(|n| (&*r.path, n)))
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
            if no_entries || self.record(&Probe::new(path)).is_none() {
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

    /// Paths with equal digests (made here by hand: real ones need two paths with the
    /// same name's tail under parents whose hashes collide) share a slot and are each
    /// found, replaced and changed by their own path; a clone keeps what it saw.
    #[test]
    fn equal_digests_are_told_apart_by_path() {
        let near = |parent: u64| Near { parent, tail: 1 };
        let record = |path: &str, zxid: i64| Record {
            path: Arc::from(path),
            zxid,
            node: None,
            next: None,
        };
        let keys = [
            (7, "/b"),
            (7, "/a"),
            (3, "/z"),
            (7, "/a/b"),
            (u64::MAX, "/"),
            (0, "/y"),
        ];
        let mut map = Overlay::new();
        for (i, (parent, path)) in keys.iter().enumerate() {
            put_record(&mut map, near(*parent), record(path, i as i64));
        }
        assert_eq!(map.len(), 4);
        assert_eq!(records(&map).count(), keys.len());
        let find = |map: &Overlay, parent: u64, path: &str| {
            Probe {
                near: near(parent),
                path,
            }
            .find(map)
            .map(|r| r.zxid)
        };
        for (i, (parent, path)) in keys.iter().enumerate() {
            assert_eq!(find(&map, *parent, path), Some(i as i64));
        }
        assert_eq!(find(&map, 7, "/c"), None);
        assert_eq!(find(&map, 3, "/a"), None);
        let before = map.clone();
        put_record(&mut map, near(7), record("/a", 10));
        let head = map.get_mut(&near(7)).expect("slot 7");
        find_mut(head, "/b").expect("/b").zxid = 11;
        assert!(find_mut(head, "/c").is_none());
        assert_eq!(find(&map, 7, "/a"), Some(10));
        assert_eq!(find(&map, 7, "/b"), Some(11));
        assert_eq!(find(&map, 7, "/a/b"), Some(3));
        assert_eq!(records(&map).count(), keys.len());
        assert_eq!(find(&before, 7, "/a"), Some(1));
        assert_eq!(find(&before, 7, "/b"), Some(0));
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
            // Names of one length that end alike share a digest ([`Near`]): `p0000042`
            // and `q0000042` under one parent share a slot.
            let path = format!(
                "/n{}/{}{:07}",
                next(5),
                ["p", "q"][next(2) as usize],
                next(100)
            );
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
                    let p = format!("/n{a}/{}{:07}", ["p", "q"][b % 2], b / 2);
                    assert_eq!(tree.get(&p).map(|n| n.stat().mzxid), model.get(&p).copied());
                }
            }
        }
    }
}
