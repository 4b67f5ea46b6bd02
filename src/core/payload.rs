//! The payload of a snapshot (format version 3): an rkyv 0.8 archive of [`SnapshotRoot`]
//! (the state as [`SnapshotData`], and the tree digest), laid out so that a server can
//! serve the tree straight from the mapped file ([`crate::core::tree::Base`]) without decoding
//! it.
//!
//! Version 2 payloads are the archive of a bare [`SnapshotData`]. They still load: the
//! [`SnapshotData`] inside a version 3 root has the same layout, so both are served in
//! place; only the digest, which version 2 lacks, is computed once on load.
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

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ferrokeeper_net::records::Acl;
use rkyv::rancor;

use crate::core::state::{DataState, CONTAINER_OWNER, EXTENDED_MASK};

/// The root of a version 3 payload.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapshotRoot {
    /// The state: the whole root of a version 2 payload.
    pub data: SnapshotData,
    /// ZooKeeper's tree digest of the state's tree ([`crate::core::digest`]), so that loading
    /// need not read every node to compute it.
    pub digest: i64,
}

/// The state in the form a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapshotData {
    /// zxid of the last txn the state includes.
    pub last_zxid: i64,
    /// `extendedTypesEnabled` of the server that wrote it.
    pub extended_types: bool,
    /// Sum over the nodes of path length plus data length (ZooKeeper's
    /// `approximateDataSize`).
    pub data_bytes: u64,
    /// Distinct ACLs; nodes refer to them by index.
    pub acls: Vec<Vec<AclData>>,
    /// Every node, sorted by path (bytewise).
    pub nodes: Vec<NodeData>,
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
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AclData {
    /// `ZooDefs.Perms` bits.
    pub perms: i32,
    /// Scheme (`world`, `digest`, `ip`, ...).
    pub scheme: String,
    /// Identity within the scheme.
    pub id: String,
}

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct NodeData {
    /// Full path.
    pub path: String,
    /// Data; `None` is null data (kept apart from empty).
    pub data: Option<Vec<u8>>,
    /// Index into [`SnapshotData::acls`].
    pub acl: u32,
    /// The persisted stat, as stored (cversion counts creates).
    pub stat: StatData,
    /// The children, as node indices in name order (which is also path order).
    pub children: Vec<u32>,
}

/// A node's persisted stat (`StatPersisted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StatData {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Creation time, ms.
    pub ctime: i64,
    /// Last setData time, ms.
    pub mtime: i64,
    /// zxid of the last change to the children.
    pub pzxid: i64,
    /// Owner: session, container marker or TTL encoding.
    pub ephemeral_owner: i64,
    /// Data version.
    pub version: i32,
    /// Child creates.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
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

/// Why an archive failed full validation.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct InvalidPayload {
    /// The file (or a description of the buffer).
    pub file: String,
    /// What was wrong.
    pub reason: String,
}

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
        let mut nodes = Vec::with_capacity(sorted.len());
        let mut extended_owners = Vec::new();
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
            nodes.push(NodeData {
                path: path.to_string(),
                data: node.data().map(<[u8]>::to_vec),
                acl,
                stat: StatData {
                    czxid: s.czxid,
                    mzxid: s.mzxid,
                    ctime: s.ctime,
                    mtime: s.mtime,
                    pzxid: s.pzxid,
                    ephemeral_owner: s.ephemeral_owner,
                    version: s.version,
                    cversion: s.cversion,
                    aversion: s.aversion,
                },
                children: Vec::new(),
            });
        }
        // Children in path order, which for siblings is name order.
        for (i, (path, _)) in sorted.iter().enumerate() {
            if *path == "/" {
                continue;
            }
            if let Some(&p) = index_of.get(crate::core::path::parent(path)) {
                nodes[p as usize].children.push(i as u32);
            }
        }
        let slots = (sorted.len() * 2).next_power_of_two().max(2);
        let mut index = vec![0u32; slots];
        for (i, (path, _)) in sorted.iter().enumerate() {
            let mut slot = index_start(path, slots);
            while index[slot] != 0 {
                slot = (slot + 1) & (slots - 1);
            }
            index[slot] = i as u32 + 1;
        }
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
            nodes,
            index,
            sessions,
            containers: indices(&mut state.containers.iter()),
            extended_owners,
        }
    }
}

impl SnapshotRoot {
    /// The stored form of `state`.
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

/// Validates a version 3 `payload` completely: rkyv's structural check (every offset and
/// length in bounds) and the invariants serving relies on (paths sorted and unique, a
/// root, parents present, indices in range, an index that finds every node). `payload`
/// must be 16-byte aligned. Returns the state inside the root.
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
    let mut prev: Option<&str> = None;
    for (i, node) in a.nodes.iter().enumerate() {
        let path = node.path.as_str();
        if prev.is_some_and(|p| p >= path) {
            return Err(bad(format!("node paths out of order at {path}")));
        }
        prev = Some(path);
        if node.acl.to_native() as usize >= a.acls.len() {
            return Err(bad(format!("{path}: ACL index {} out of range", node.acl)));
        }
        let mut last_child: Option<usize> = None;
        for &c in node.children.iter() {
            let c = in_range(path, c.to_native())?;
            let child = a.nodes[c].path.as_str();
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
    for node in a.nodes.iter() {
        for &c in node.children.iter() {
            counted[c.to_native() as usize] += 1;
        }
    }
    for (i, node) in a.nodes.iter().enumerate() {
        let want = usize::from(node.path.as_str() != "/");
        if counted[i] != want {
            return Err(bad(format!(
                "{} is listed as a child {} times",
                node.path.as_str(),
                counted[i]
            )));
        }
    }
    if a.nodes.first().map(|n| n.path.as_str()) != Some("/") {
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

/// The tree digest of an archived state, from its nodes: a pass over all of them. A
/// version 3 payload stores it; this is for checking one, and for a version 2 payload,
/// which does not.
pub fn archived_digest(a: &ArchivedSnapshotData) -> i64 {
    a.nodes.iter().fold(0i64, |sum, n| {
        let stat = n.stat.to_stat();
        let data = n.data.as_ref().map(|d| d.as_slice());
        sum.wrapping_add(crate::core::digest::node_digest(
            n.path.as_str(),
            data,
            &stat,
        ))
    })
}

impl ArchivedStatData {
    /// The stat as the tree holds it.
    pub fn to_stat(&self) -> crate::core::tree::NodeStat {
        crate::core::tree::NodeStat {
            czxid: self.czxid.to_native(),
            mzxid: self.mzxid.to_native(),
            ctime: self.ctime.to_native(),
            mtime: self.mtime.to_native(),
            version: self.version.to_native(),
            cversion: self.cversion.to_native(),
            aversion: self.aversion.to_native(),
            ephemeral_owner: self.ephemeral_owner.to_native(),
            pzxid: self.pzxid.to_native(),
        }
    }
}
