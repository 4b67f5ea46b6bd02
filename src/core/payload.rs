//! The payload of a snapshot (format version 5): an rkyv 0.8 archive of [`SnapshotRoot`]
//! (the state as [`SnapshotData`], and the tree digest), laid out so that a server can
//! serve the tree straight from the mapped file ([`crate::core::tree::Base`]) without decoding
//! it.
//!
//! Nodes are fixed-size 64 B plain records ([`NodeData`]: no pointer inside) that point
//! into two shared arrays: `heap`, every node's full path followed by its data, back to
//! back, and `children`, every node's children lists, back to back. A record stores where
//! its stretch of each *ends*; it starts where the previous record's ends. The two stat
//! fields that rarely differ from a default (`ephemeral_owner`, 0 for most nodes, and
//! `pzxid`, equal to `czxid` until a child is created or deleted) live in side tables
//! that list only the nodes whose record flags them.
//!
//! Versions 2 to 4 still load: [`legacy::upgrade`] converts one once into this layout,
//! and the server writes it back as version 5 at startup.
//!
//! What makes it servable in place, beyond the state itself:
//! - nodes are sorted by path, and each node lists its children as node indices in name
//!   order, so `getChildren` walks an array;
//! - `index` is an open-addressing hash table over the paths (XXH3-64, linear probing,
//!   a power-of-two number of slots at most half full), so a lookup costs one or two
//!   cache misses instead of a binary search;
//! - the sets a server keeps beside the tree (each session's ephemerals, containers,
//!   nodes with an extended owner) are stored as node-index lists, so building them
//!   costs what they hold, not what the tree holds;
//! - `data_bytes` is stored, so `mntr` need not add it up.
//!
//! The byte layout is in `storage/FORMAT.md`.

#[cfg(test)]
use std::collections::HashMap;
use std::path::Path;
#[cfg(test)]
use std::sync::Arc;

#[cfg(test)]
use ferrokeeper_net::records::Acl;
use rkyv::rancor;

#[cfg(test)]
use crate::core::state::{DataState, CONTAINER_OWNER, EXTENDED_MASK};
use crate::core::tree::NodeStat;

pub mod legacy;
pub mod stream;

/// The bit of [`NodeData::path_len`] that marks null data (kept apart from empty).
pub const NULL_DATA: u32 = 1 << 31;
/// The bit of [`NodeData::path_len`] that says the node's `ephemeral_owner` is not 0:
/// it is listed in [`SnapshotData::owner_nodes`].
pub const HAS_OWNER: u32 = 1 << 30;
/// The bit of [`NodeData::path_len`] that says the node's `pzxid` is not its `czxid`: it
/// is listed in [`SnapshotData::pzxid_nodes`].
pub const PZXID_DIFFERS: u32 = 1 << 29;
/// The bits of [`NodeData::path_len`] that hold the length; the writer refuses a longer
/// path (ZooKeeper's are bounded by `jute.maxbuffer`, 1 MiB by default, far below).
pub const PATH_LEN_MASK: u32 = PZXID_DIFFERS - 1;
/// Bytes of zeros before the node records, so that the records start 64-byte aligned in
/// the file (48 B header + 16 B): each 64 B record is then one cache line of the mapping.
pub const RECORDS_PAD_BYTES: usize = 16;

/// The root of a version 5 payload.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotRoot {
    /// The state.
    pub data: SnapshotData,
    /// ZooKeeper's tree digest of the state's tree ([`crate::core::digest`]), so that loading
    /// need not read every node to compute it.
    pub digest: i64,
}

/// The state in the form a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotData {
    /// zxid of the last txn the state includes.
    pub last_zxid: i64,
    /// `extendedTypesEnabled` of the server that wrote it.
    pub extended_types: bool,
    /// Sum over the nodes of path length plus data length (ZooKeeper's
    /// `approximateDataSize`).
    pub data_bytes: u64,
    /// [`RECORDS_PAD_BYTES`] zero bytes. Declared first so that rkyv writes it first,
    /// at payload offset 0, and `nodes` right after it, at file offset 64.
    pub records_pad: Vec<u8>,
    /// Every node, sorted by path (bytewise).
    pub nodes: Vec<NodeData>,
    /// Distinct ACLs; nodes refer to them by index.
    pub acls: Vec<Vec<AclData>>,
    /// Every node's full path then its data, in node order, unaligned.
    pub heap: Vec<u8>,
    /// Every node's children (node indices in name order), in node order.
    pub children: Vec<u32>,
    /// Hash index over `nodes`: a power-of-two number of slots, each 0 (empty) or a node
    /// index plus one; a path's probe starts at `xxh3_64(path) & (len - 1)`.
    pub index: Vec<u32>,
    /// Every session, sorted by id.
    pub sessions: Vec<SessionData>,
    /// Container nodes, as node indices in path order.
    pub containers: Vec<u32>,
    /// Nodes whose owner has the extended (TTL) high byte, as node indices in path
    /// order: TTL nodes when extended types are on.
    pub extended_owners: Vec<u32>,
    /// The nodes flagged [`HAS_OWNER`], as strictly increasing node indices; `owners[k]`
    /// is the `ephemeral_owner` of node `owner_nodes[k]`. Parallel arrays rather than a
    /// list of pairs: 12 B an entry instead of a padded 16.
    pub owner_nodes: Vec<u32>,
    /// See [`SnapshotData::owner_nodes`].
    pub owners: Vec<i64>,
    /// The nodes flagged [`PZXID_DIFFERS`], as strictly increasing node indices;
    /// `pzxids[k]` is the `pzxid` of node `pzxid_nodes[k]`.
    pub pzxid_nodes: Vec<u32>,
    /// See [`SnapshotData::pzxid_nodes`].
    pub pzxids: Vec<i64>,
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct AclData {
    /// `ZooDefs.Perms` bits.
    pub perms: i32,
    /// Scheme (`world`, `digest`, `ip`, ...).
    pub scheme: String,
    /// Identity within the scheme.
    pub id: String,
}

/// One znode: 64 bytes archived, no padding. Its `ephemeral_owner` is 0 and its `pzxid`
/// its `czxid` unless `path_len` flags them ([`HAS_OWNER`], [`PZXID_DIFFERS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct NodeData {
    /// End of the node's path and data in [`SnapshotData::heap`]; they start at the
    /// previous node's `heap_end` (0 for the first node).
    pub heap_end: u64,
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Creation time, ms.
    pub ctime: i64,
    /// Last setData time, ms.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child creates (the stored cversion).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Length of the full path at the start of the node's heap stretch
    /// ([`PATH_LEN_MASK`]); the rest is the data. [`NULL_DATA`] set: the data is null
    /// (and the rest is empty). [`HAS_OWNER`], [`PZXID_DIFFERS`]: the node is in the
    /// side table of that field.
    pub path_len: u32,
    /// Index into [`SnapshotData::acls`].
    pub acl: u32,
    /// End of the node's children in [`SnapshotData::children`]; they start at the
    /// previous node's `children_end`.
    pub children_end: u32,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SessionData {
    /// Session id.
    pub id: i64,
    /// Negotiated timeout, ms.
    pub timeout_ms: i32,
    /// Password.
    pub passwd: [u8; 16],
    /// The session's ephemeral nodes, as node indices in path order.
    pub ephemerals: Vec<u32>,
}

/// The slot where a path's probe starts in an index of `slots` (a power of two) slots.
pub fn index_start(path: &str, slots: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(path.as_bytes()) as usize) & (slots - 1)
}

/// The path index over `count` nodes whose paths come in node order (storage/FORMAT.md,
/// `index`): a power of two of at least twice the count, each node at the first empty
/// slot from its path's start, as node index + 1.
pub fn index_slots<'p>(count: usize, paths: impl Iterator<Item = &'p str>) -> Vec<u32> {
    let len = (count * 2).next_power_of_two().max(2);
    let mut slots = vec![0u32; len];
    for (i, path) in paths.enumerate() {
        let mut slot = index_start(path, len);
        while slots[slot] != 0 {
            slot = (slot + 1) & (len - 1);
        }
        slots[slot] = i as u32 + 1;
    }
    slots
}

/// The flag bits of [`NodeData::path_len`] for a node with stat `s`.
pub fn stat_flags(s: &NodeStat) -> u32 {
    let owner = if s.ephemeral_owner != 0 { HAS_OWNER } else { 0 };
    let pzxid = if s.pzxid != s.czxid { PZXID_DIFFERS } else { 0 };
    owner | pzxid
}

/// The node records and the tables that follow them ([`SnapshotData`]'s `nodes`,
/// `heap`, `children` and the owner and pzxid side tables), built node by node in path
/// order: by the streaming writer's test oracle and by the conversion of older versions.
#[derive(Debug, Default)]
pub struct NodeTables {
    nodes: Vec<NodeData>,
    heap: Vec<u8>,
    children: Vec<u32>,
    owner_nodes: Vec<u32>,
    owners: Vec<i64>,
    pzxid_nodes: Vec<u32>,
    pzxids: Vec<i64>,
}

impl NodeTables {
    /// Appends the next node: its full path, data (`None` is null), stat, ACL number and
    /// children (node indices in name order).
    pub fn push(
        &mut self,
        path: &[u8],
        data: Option<&[u8]>,
        s: &NodeStat,
        acl: u32,
        children: impl IntoIterator<Item = u32>,
    ) {
        let i = self.nodes.len() as u32;
        let flags = stat_flags(s);
        if flags & HAS_OWNER != 0 {
            self.owner_nodes.push(i);
            self.owners.push(s.ephemeral_owner);
        }
        if flags & PZXID_DIFFERS != 0 {
            self.pzxid_nodes.push(i);
            self.pzxids.push(s.pzxid);
        }
        self.heap.extend_from_slice(path);
        self.heap.extend_from_slice(data.unwrap_or_default());
        self.children.extend(children);
        let null = if data.is_none() { NULL_DATA } else { 0 };
        self.nodes.push(NodeData {
            heap_end: self.heap.len() as u64,
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            path_len: path.len() as u32 | null | flags,
            acl,
            children_end: self.children.len() as u32,
        });
    }

    /// A [`SnapshotData`] holding these tables, every other field empty.
    pub fn into_data(self) -> SnapshotData {
        SnapshotData {
            last_zxid: 0,
            extended_types: false,
            data_bytes: 0,
            records_pad: vec![0; RECORDS_PAD_BYTES],
            nodes: self.nodes,
            acls: Vec::new(),
            heap: self.heap,
            children: self.children,
            index: Vec::new(),
            sessions: Vec::new(),
            containers: Vec::new(),
            extended_owners: Vec::new(),
            owner_nodes: self.owner_nodes,
            owners: self.owners,
            pzxid_nodes: self.pzxid_nodes,
            pzxids: self.pzxids,
        }
    }
}

/// Why an archive failed full validation.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct InvalidPayload {
    /// The file (or a description of the buffer).
    pub file: String,
    /// What was wrong.
    pub reason: String,
}

// The test oracle of the streaming writer ([`stream`]): the state as owned structs, which
// `rkyv::to_bytes` turns into the bytes the writer must produce. Not in the product path
// (it copies the whole state, then the archive copies it again).
#[cfg(test)]
impl SnapshotData {
    // Long because it builds every table of the archive in one pass over the tree, so
    // that node indices stay consistent across them.
    /// The stored form of `state`. Deterministic: the same state always gives the same
    /// bytes (nodes by path, sessions by id, ACLs numbered in order of first use).
    pub fn from_state(state: &DataState) -> SnapshotData {
        let sorted = state.tree.sorted_nodes();
        let index_of: HashMap<&str, u32> = sorted
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i as u32))
            .collect();
        let mut acls: Vec<Vec<AclData>> = Vec::new();
        // Nodes created with the same ACL share one allocation: look the pointer up
        // first, the content only on a miss.
        let mut by_ptr: HashMap<*const Acl, u32> = HashMap::new();
        let mut by_content: HashMap<&[Acl], u32> = HashMap::new();
        let mut extended_owners = Vec::new();
        // Children in path order, which for siblings is name order: grouped by parent
        // first, then laid out in node order.
        let mut child_lists: Vec<Vec<u32>> = vec![Vec::new(); sorted.len()];
        for (i, (path, _)) in sorted.iter().enumerate() {
            if *path == "/" {
                continue;
            }
            if let Some(&p) = index_of.get(crate::core::path::parent(path)) {
                child_lists[p as usize].push(i as u32);
            }
        }
        let mut tables = NodeTables::default();
        for (i, (path, node)) in sorted.iter().enumerate() {
            let node_acl = node.acl();
            let acl = *by_ptr.entry(node_acl.as_ptr()).or_insert_with(|| {
                *by_content.entry(&node_acl[..]).or_insert_with(|| {
                    acls.push(
                        node_acl
                            .iter()
                            .map(|a| AclData {
                                perms: a.perms,
                                scheme: a.id.scheme.clone(),
                                id: a.id.id.clone(),
                            })
                            .collect(),
                    );
                    (acls.len() - 1) as u32
                })
            });
            let s = node.stat();
            if s.ephemeral_owner != CONTAINER_OWNER
                && s.ephemeral_owner & EXTENDED_MASK == EXTENDED_MASK
            {
                extended_owners.push(i as u32);
            }
            let children = std::mem::take(&mut child_lists[i]);
            tables.push(path.as_bytes(), node.data(), &s, acl, children);
        }
        let index = index_slots(sorted.len(), sorted.iter().map(|(p, _)| *p));
        let indices = |paths: &mut dyn Iterator<Item = &Arc<str>>| -> Vec<u32> {
            let mut v: Vec<u32> = paths.filter_map(|p| index_of.get(&**p).copied()).collect();
            v.sort_unstable();
            v
        };
        let mut sessions: Vec<SessionData> = state
            .sessions
            .iter()
            .map(|(id, s)| SessionData {
                id: *id,
                timeout_ms: s.timeout_ms,
                passwd: s.passwd,
                ephemerals: indices(&mut s.ephemerals.iter()),
            })
            .collect();
        sessions.sort_unstable_by_key(|s| s.id);
        SnapshotData {
            last_zxid: state.last_zxid,
            extended_types: state.extended_types,
            data_bytes: state.tree.data_bytes(),
            acls,
            index,
            sessions,
            containers: indices(&mut state.containers.iter()),
            extended_owners,
            ..tables.into_data()
        }
    }
}

impl SnapshotRoot {
    /// The stored form of `state` (the streaming writer's test oracle).
    #[cfg(test)]
    pub fn from_state(state: &DataState) -> SnapshotRoot {
        SnapshotRoot {
            data: SnapshotData::from_state(state),
            digest: state.digest,
        }
    }

    /// The archive bytes (16-byte aligned in memory).
    pub fn to_bytes(&self) -> rkyv::util::AlignedVec {
        match rkyv::to_bytes::<rancor::Error>(self) {
            Ok(b) => b,
            // Serializing owned vectors and strings into memory fails only if memory does.
            Err(e) => panic!("rkyv serialization of a snapshot failed: {e}"),
        }
    }
}

impl ArchivedSnapshotData {
    /// Node `i`'s stretch of an array its records end by `end_of`: it starts where the
    /// record before it ends (0 for the first) and is empty for a node out of range.
    fn stretch(&self, i: usize, end_of: fn(&ArchivedNodeData) -> usize) -> (usize, usize) {
        let start = i
            .checked_sub(1)
            .and_then(|p| self.nodes.get(p))
            .map_or(0, end_of);
        let end = self.nodes.get(i).map_or(start, end_of);
        (start, end)
    }

    /// Node `i`'s stretch of the heap: (start, end of the path, end).
    fn heap_span(&self, i: usize) -> (usize, usize, usize) {
        let (start, end) = self.stretch(i, |n| n.heap_end.to_native() as usize);
        let Some(n) = self.nodes.get(i) else {
            return (start, start, start);
        };
        let path_end = start.saturating_add((n.path_len.to_native() & PATH_LEN_MASK) as usize);
        (start, path_end, end)
    }

    /// The bytes of node `i`'s full path (empty for a node out of range or a stretch out
    /// of the heap, which a validated archive has not).
    pub fn path_bytes(&self, i: usize) -> &[u8] {
        let (start, path_end, _) = self.heap_span(i);
        self.heap.get(start..path_end).unwrap_or_default()
    }

    /// Node `i`'s full path (empty if it is not UTF-8, which a validated archive's is).
    pub fn path(&self, i: usize) -> &str {
        std::str::from_utf8(self.path_bytes(i)).unwrap_or_default()
    }

    /// Node `i`'s data; `None` is null.
    pub fn data(&self, i: usize) -> Option<&[u8]> {
        if self.nodes.get(i)?.path_len.to_native() & NULL_DATA != 0 {
            return None;
        }
        let (_, path_end, end) = self.heap_span(i);
        Some(self.heap.get(path_end..end).unwrap_or_default())
    }

    /// Node `i`'s children, as node indices in name order.
    pub fn children(&self, i: usize) -> &[rkyv::rend::u32_le] {
        let (start, end) = self.stretch(i, |n| n.children_end.to_native() as usize);
        self.children.get(start..end).unwrap_or_default()
    }

    /// The stat of node `i`, whose record is `n`, as the tree holds it: the record's
    /// fields, and the owner and pzxid from the side tables when the record flags them
    /// (through `ranks`, built over this archive, or a binary search), else 0 and the
    /// czxid.
    pub fn stat(&self, i: u32, n: &ArchivedNodeData, ranks: &SideRanks) -> NodeStat {
        let flags = n.path_len.to_native();
        let czxid = n.czxid.to_native();
        let ephemeral_owner = if flags & HAS_OWNER != 0 {
            side_value(&self.owner_nodes, &self.owners, ranks.owner.as_ref(), i).unwrap_or(0)
        } else {
            0
        };
        let pzxid = if flags & PZXID_DIFFERS != 0 {
            side_value(&self.pzxid_nodes, &self.pzxids, ranks.pzxid.as_ref(), i).unwrap_or(czxid)
        } else {
            czxid
        };
        NodeStat {
            czxid,
            mzxid: n.mzxid.to_native(),
            ctime: n.ctime.to_native(),
            mtime: n.mtime.to_native(),
            version: n.version.to_native(),
            cversion: n.cversion.to_native(),
            aversion: n.aversion.to_native(),
            ephemeral_owner,
            pzxid,
        }
    }
}

/// The value a side table holds for node `i` (`nodes` strictly increasing, `values`
/// parallel to it), found through `rank` (built over `nodes`) if there is one, else by a
/// binary search of `nodes`.
fn side_value(
    nodes: &[rkyv::rend::u32_le],
    values: &[rkyv::rend::i64_le],
    rank: Option<&SideRank>,
    i: u32,
) -> Option<i64> {
    let k = match rank {
        Some(rank) => rank.position(i)?,
        None => side_search(nodes, i)?,
    };
    values.get(k).map(|v| v.to_native())
}

/// Node `i`'s position in a side table's node list, by binary search.
fn side_search(nodes: &[rkyv::rend::u32_le], i: u32) -> Option<usize> {
    nodes.binary_search_by_key(&i, |n| n.to_native()).ok()
}

/// A side table with fewer entries than this is searched rather than ranked: its node
/// list (16 KiB at this size) stays in cache, so the search's ~12 steps cost less than
/// the rank's miss on a structure sized by the whole tree.
pub const SIDE_RANK_ENTRIES_MIN: usize = 4096;

/// The rank structures of an archive's side tables, built when a base is opened: the
/// one place that decides whether a flagged node's owner or pzxid is found by rank or by
/// binary search. The default ranks nothing (every lookup searches), which is what a
/// single pass over an archive (validation, the digest) uses.
#[derive(Debug, Default)]
pub struct SideRanks {
    owner: Option<SideRank>,
    pzxid: Option<SideRank>,
}

impl SideRanks {
    /// Ranks for the side tables of `a` that have at least [`SIDE_RANK_ENTRIES_MIN`]
    /// entries. Costs a pass over those tables' node lists plus one over `nodes / 64`
    /// words, and 0.19 B a node for each table ranked.
    pub fn new(a: &ArchivedSnapshotData) -> SideRanks {
        let n = a.nodes.len();
        let rank = |nodes: &[rkyv::rend::u32_le]| {
            (nodes.len() >= SIDE_RANK_ENTRIES_MIN).then(|| SideRank::new(nodes, n))
        };
        SideRanks {
            owner: rank(&a.owner_nodes),
            pzxid: rank(&a.pzxid_nodes),
        }
    }

    /// Bytes the rank structures take.
    pub fn heap_bytes(&self) -> usize {
        [&self.owner, &self.pzxid]
            .into_iter()
            .flatten()
            .map(|r| std::mem::size_of_val(&r.words[..]))
            .sum()
    }
}

/// A rank structure over a side table's node list (strictly increasing node indices):
/// for each run of 64 nodes, a bitmap of which are listed and the number listed before
/// the run, so that node `i`'s position in the table is that count plus the set bits
/// below `i`. A lookup reads one 12 B word (one cache line, nearly always) instead of
/// the ~20 steps of a binary search of a table of a million entries, each its own miss
/// once the table outgrows the caches.
#[derive(Debug)]
pub struct SideRank {
    words: Vec<RankWord>,
}

/// 64 nodes of a [`SideRank`]. The count and the bitmap sit together, so that one read
/// brings both; as `u32`s, so that the word is 12 B (0.19 B a node), not a padded 16.
#[derive(Debug, Clone, Copy, Default)]
struct RankWord {
    /// Listed nodes before this word's first.
    before: u32,
    /// Bit `b` of `bits[0] | bits[1] << 32`: node `64 * word + b` is listed.
    bits: [u32; 2],
}

impl RankWord {
    fn bits(&self) -> u64 {
        u64::from(self.bits[0]) | u64::from(self.bits[1]) << 32
    }
}

impl SideRank {
    /// The rank of `nodes` (strictly increasing indices of a tree of `node_count`
    /// nodes; an index out of range is left out, which a validated archive has not).
    pub fn new(nodes: &[rkyv::rend::u32_le], node_count: usize) -> SideRank {
        let mut words = vec![RankWord::default(); node_count.div_ceil(64)];
        for i in nodes.iter().map(|i| i.to_native() as usize) {
            if let Some(w) = words.get_mut(i / 64) {
                w.bits[(i % 64) / 32] |= 1 << (i % 32);
            }
        }
        let mut before = 0u32;
        for w in &mut words {
            w.before = before;
            before += w.bits().count_ones();
        }
        SideRank { words }
    }

    /// Node `i`'s position in the table, if it is listed.
    pub fn position(&self, i: u32) -> Option<usize> {
        let i = i as usize;
        let w = self.words.get(i / 64)?;
        let bits = w.bits();
        let bit = 1u64 << (i % 64);
        if bits & bit == 0 {
            return None;
        }
        Some(w.before as usize + (bits & (bit - 1)).count_ones() as usize)
    }
}

// Long because it checks every invariant serving relies on, in one place, each with
// its own message.
/// Validates a version 5 `payload` completely: rkyv's structural check (every offset and
/// length in bounds) and the invariants serving relies on (every node's heap and
/// children stretches in bounds and in order, side tables listing exactly the flagged
/// nodes, paths UTF-8, sorted and unique, a root,
/// parents present, indices in range, an index that finds every node, the stored
/// digest). `payload` must be 16-byte aligned. Returns the state inside the root.
///
/// The server runs this on every snapshot it writes, before writing it; loading trusts
/// the payload checksum instead (see [`crate::core::tree::Base::open`]), which is what keeps
/// restart time independent of the data size.
pub fn validate<'a>(
    file: &Path,
    payload: &'a [u8],
) -> Result<&'a ArchivedSnapshotData, InvalidPayload> {
    let bad = |reason: String| InvalidPayload {
        file: file.display().to_string(),
        reason,
    };
    let root = rkyv::access::<ArchivedSnapshotRoot, rancor::Error>(payload)
        .map_err(|e| bad(format!("not a valid archive: {e}")))?;
    let a = &root.data;
    let n = a.nodes.len();
    if n > u32::MAX as usize - 1 {
        return Err(bad(format!("{n} nodes is more than the format holds")));
    }
    let slots = a.index.len();
    if !slots.is_power_of_two() || slots < 2 * n {
        return Err(bad(format!("index of {slots} slots for {n} nodes")));
    }
    let in_range = |what: &str, i: u32| {
        if (i as usize) < n {
            Ok(i as usize)
        } else {
            Err(bad(format!("{what}: node index {i} out of range")))
        }
    };
    if a.records_pad.len() != RECORDS_PAD_BYTES || a.records_pad.iter().any(|&b| b != 0) {
        return Err(bad(
            "padding before the node records is not 16 zero bytes".into()
        ));
    }
    if a.owner_nodes.len() != a.owners.len() || a.pzxid_nodes.len() != a.pzxids.len() {
        return Err(bad(
            "side table lengths differ from their node lists'".into()
        ));
    }
    // Stretches first: everything below reads paths and children through them. The side
    // tables in the same pass: each must list exactly its flagged nodes, in order, once.
    let (mut heap_at, mut children_at) = (0u64, 0u32);
    let (mut owner_at, mut pzxid_at) = (0usize, 0usize);
    for (i, node) in a.nodes.iter().enumerate() {
        let (heap_end, children_end) = (node.heap_end.to_native(), node.children_end.to_native());
        let flags = node.path_len.to_native();
        let path_len = u64::from(flags & PATH_LEN_MASK);
        let null = flags & NULL_DATA != 0;
        if flags & HAS_OWNER != 0 {
            let listed = a.owner_nodes.get(owner_at).map(|n| n.to_native() as usize);
            if listed != Some(i) || a.owners[owner_at].to_native() == 0 {
                return Err(bad(format!("node {i}: flagged owner not listed, or 0")));
            }
            owner_at += 1;
        }
        if flags & PZXID_DIFFERS != 0 {
            let listed = a.pzxid_nodes.get(pzxid_at).map(|n| n.to_native() as usize);
            if listed != Some(i) || a.pzxids[pzxid_at] == node.czxid {
                return Err(bad(format!(
                    "node {i}: flagged pzxid not listed, or its czxid"
                )));
            }
            pzxid_at += 1;
        }
        if heap_end < heap_at
            || heap_end > a.heap.len() as u64
            || heap_at + path_len > heap_end
            || (null && heap_at + path_len != heap_end)
        {
            return Err(bad(format!("node {i}: heap stretch out of bounds")));
        }
        if children_end < children_at || children_end as usize > a.children.len() {
            return Err(bad(format!("node {i}: children stretch out of bounds")));
        }
        if std::str::from_utf8(a.path_bytes(i)).is_err() {
            return Err(bad(format!("node {i}: path is not UTF-8")));
        }
        (heap_at, children_at) = (heap_end, children_end);
    }
    if heap_at != a.heap.len() as u64 || children_at as usize != a.children.len() {
        return Err(bad(
            "heap or children array longer than its nodes' stretches".into(),
        ));
    }
    if owner_at != a.owner_nodes.len() || pzxid_at != a.pzxid_nodes.len() {
        return Err(bad(
            "a side table lists a node its record does not flag".into()
        ));
    }
    let mut prev: Option<&str> = None;
    for (i, node) in a.nodes.iter().enumerate() {
        let path = a.path(i);
        if prev.is_some_and(|p| p >= path) {
            return Err(bad(format!("node paths out of order at {path}")));
        }
        prev = Some(path);
        if node.acl.to_native() as usize >= a.acls.len() {
            return Err(bad(format!("{path}: ACL index {} out of range", node.acl)));
        }
        let mut last_child: Option<usize> = None;
        for &c in a.children(i) {
            let c = in_range(path, c.to_native())?;
            let child = a.path(c);
            if last_child.is_some_and(|l| l >= c)
                || crate::core::path::parent(child) != path
                || c == i
            {
                return Err(bad(format!("{path}: child list holds {child}")));
            }
            last_child = Some(c);
        }
        let mut slot = index_start(path, slots);
        loop {
            match a.index[slot].to_native() {
                0 => return Err(bad(format!("{path}: not found through the index"))),
                s if s as usize == i + 1 => break,
                _ => slot = (slot + 1) & (slots - 1),
            }
        }
    }
    let mut counted = vec![0usize; n];
    for &c in a.children.iter() {
        counted[c.to_native() as usize] += 1;
    }
    for (i, count) in counted.iter().enumerate() {
        let want = usize::from(a.path(i) != "/");
        if *count != want {
            return Err(bad(format!(
                "{} is listed as a child {count} times",
                a.path(i)
            )));
        }
    }
    if n == 0 || a.path(0) != "/" {
        return Err(bad("no root node".into()));
    }
    for s in a.sessions.iter() {
        for &e in s.ephemerals.iter() {
            in_range("session ephemerals", e.to_native())?;
        }
    }
    for &c in a.containers.iter().chain(a.extended_owners.iter()) {
        in_range("containers and extended owners", c.to_native())?;
    }
    // The incrementally kept digest must be the one the nodes give: a drift is a bug in
    // keeping it, and a snapshot must not carry it on.
    let summed = archived_digest(a);
    if summed != root.digest.to_native() {
        return Err(bad(format!(
            "tree digest {} in the root, the nodes give {summed}",
            root.digest
        )));
    }
    Ok(a)
}

/// The tree digest of an archived state, from its nodes: a pass over all of them, for
/// checking the one a payload stores.
pub fn archived_digest(a: &ArchivedSnapshotData) -> i64 {
    a.nodes.iter().enumerate().fold(0i64, |sum, (i, n)| {
        sum.wrapping_add(crate::core::digest::node_digest(
            a.path(i),
            a.data(i),
            &a.stat(i as u32, n, &SideRanks::default()),
        ))
    })
}

/// A payload of format `version` (2 to 5; 16-byte aligned) as a fully validated
/// version 5 archive: a version 5 payload as it is, an older one converted
/// ([`legacy::upgrade`]): `Some` of the converted archive's bytes, `None` when the
/// payload was version 5 already.
pub fn validated_v5(
    file: &Path,
    version: u32,
    payload: &[u8],
) -> Result<Option<rkyv::util::AlignedVec>, InvalidPayload> {
    if version >= 5 {
        return validate(file, payload).map(|_| None);
    }
    let root = legacy::upgrade(version, payload).ok_or_else(|| InvalidPayload {
        file: file.display().to_string(),
        reason: format!("format version {version} payload shorter than its root"),
    })?;
    let bytes = root.to_bytes();
    validate(file, &bytes)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive of the nodes in `tables` (digest 0: these tests read stats, not the
    /// digest).
    fn archive_of(tables: NodeTables) -> rkyv::util::AlignedVec {
        SnapshotRoot {
            data: tables.into_data(),
            digest: 0,
        }
        .to_bytes()
    }

    /// The rank finds every node where the binary search finds it, and nothing where the
    /// search finds nothing: over a table listing node 0, the last node, both sides of
    /// word boundaries (63, 64, 65, 127, 128) and a pseudo-random third of the rest, for
    /// every node, through `stat` as a base serves it.
    #[test]
    fn side_rank_agrees_with_the_binary_search_for_every_node() {
        let count = 300u32;
        let edges = [0, 63, 64, 65, 127, 128, 191, 192, count - 1];
        let mut tables = NodeTables::default();
        for i in 0..count {
            let mixed = (i.wrapping_mul(2_654_435_761) >> 7) % 3 == 0;
            let owner = edges.contains(&i) || mixed;
            // The pzxid table lists the complement, so its words are mixed too.
            let s = NodeStat {
                czxid: 1000 + i64::from(i),
                ephemeral_owner: if owner { 7 + i64::from(i) } else { 0 },
                pzxid: if owner {
                    1000 + i64::from(i)
                } else {
                    5000 + i64::from(i)
                },
                ..NodeStat::default()
            };
            tables.push(format!("/n{i:03}").as_bytes(), Some(b"x"), &s, 0, []);
        }
        let bytes = archive_of(tables);
        let a = &rkyv::access::<ArchivedSnapshotRoot, rancor::Error>(&bytes)
            .expect("archive")
            .data;
        let ranked = SideRanks {
            owner: Some(SideRank::new(&a.owner_nodes, a.nodes.len())),
            pzxid: Some(SideRank::new(&a.pzxid_nodes, a.nodes.len())),
        };
        let (owner, pzxid) = (ranked.owner.as_ref(), ranked.pzxid.as_ref());
        for (i, n) in a.nodes.iter().enumerate() {
            let i = i as u32;
            assert_eq!(
                owner.and_then(|r| r.position(i)),
                side_search(&a.owner_nodes, i),
                "owner of node {i}"
            );
            assert_eq!(
                pzxid.and_then(|r| r.position(i)),
                side_search(&a.pzxid_nodes, i),
                "pzxid of node {i}"
            );
            assert_eq!(
                a.stat(i, n, &ranked),
                a.stat(i, n, &SideRanks::default()),
                "stat of node {i}"
            );
        }
        for i in edges {
            assert!(owner.and_then(|r| r.position(i)).is_some(), "node {i}");
        }
        // Past the last node: not listed, whatever the table holds.
        assert_eq!(owner.and_then(|r| r.position(count)), None);
        assert_eq!(owner.and_then(|r| r.position(u32::MAX)), None);
        assert_eq!(ranked.heap_bytes(), 2 * 12 * 5);
    }

    /// Tables below [`SIDE_RANK_ENTRIES_MIN`] entries are searched, at or above it
    /// ranked.
    #[test]
    fn only_large_side_tables_are_ranked() {
        let mut tables = NodeTables::default();
        for i in 0..SIDE_RANK_ENTRIES_MIN as i64 + 10 {
            let s = NodeStat {
                czxid: i,
                // Every node an ephemeral, but only ten with a pzxid of their own.
                ephemeral_owner: 1,
                pzxid: if i < 10 { i + 1 } else { i },
                ..NodeStat::default()
            };
            tables.push(format!("/n{i:05}").as_bytes(), None, &s, 0, []);
        }
        let bytes = archive_of(tables);
        let a = &rkyv::access::<ArchivedSnapshotRoot, rancor::Error>(&bytes)
            .expect("archive")
            .data;
        let ranks = SideRanks::new(a);
        assert!(ranks.owner.is_some());
        assert!(ranks.pzxid.is_none());
    }
}
