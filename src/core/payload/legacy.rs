//! Payloads of format versions 2 and 3, which this build still loads but no longer
//! serves in place: [`upgrade`] converts one, once, into a version 4 payload (the nodes
//! keep their indices, so the ACL table, the hash index, the sessions and the other
//! node-index lists carry over as they are).
//!
//! Version 3's root is [`SnapshotRootV3`]; version 2's is the bare [`SnapshotDataV3`]
//! it nests (version 2 stores no digest: it is computed during the conversion).

use super::{AclData, NodeData, SessionData, SnapshotData, SnapshotRoot, NULL_DATA};

/// The root of a version 3 payload.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotRootV3 {
    /// The state: the whole root of a version 2 payload.
    pub data: SnapshotDataV3,
    /// The tree digest.
    pub digest: i64,
}

/// The state as versions 2 and 3 store it.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotDataV3 {
    /// zxid of the last txn the state includes.
    pub last_zxid: i64,
    /// `extendedTypesEnabled` of the server that wrote it.
    pub extended_types: bool,
    /// Sum over the nodes of path length plus data length.
    pub data_bytes: u64,
    /// Distinct ACLs; nodes refer to them by index.
    pub acls: Vec<Vec<AclData>>,
    /// Every node, sorted by path.
    pub nodes: Vec<NodeDataV3>,
    /// Hash index over `nodes` (the same table as version 4's).
    pub index: Vec<u32>,
    /// Every session, sorted by id.
    pub sessions: Vec<SessionData>,
    /// Container nodes, as node indices.
    pub containers: Vec<u32>,
    /// Nodes with an extended owner, as node indices.
    pub extended_owners: Vec<u32>,
}

/// One znode in versions 2 and 3.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct NodeDataV3 {
    /// Full path.
    pub path: String,
    /// Data; `None` is null.
    pub data: Option<Vec<u8>>,
    /// Index into the ACL table.
    pub acl: u32,
    /// The persisted stat.
    pub stat: StatData,
    /// The children, as node indices in name order.
    pub children: Vec<u32>,
}

/// A node's persisted stat in versions 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
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
    /// Owner.
    pub ephemeral_owner: i64,
    /// Data version.
    pub version: i32,
    /// Child creates.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
}

/// The version 4 form of a version 2 (`version` 2) or 3 payload, which must be 16-byte
/// aligned and is trusted as [`crate::core::tree::Base::open`] trusts a payload whose
/// checksum matched (it was fully validated by the writer of its version); the result
/// is validated completely by the caller before it is served. `None` when the payload
/// is too short for its root.
pub fn upgrade(version: u32, payload: &[u8]) -> Option<SnapshotRoot> {
    let (a, digest) = match version {
        2 if payload.len() >= std::mem::size_of::<ArchivedSnapshotDataV3>() => {
            // SAFETY: the checksum matched, so these are the bytes a version 2 writer
            // produced after validating them as an `ArchivedSnapshotDataV3` root.
            let a = unsafe { rkyv::access_unchecked::<ArchivedSnapshotDataV3>(payload) };
            (a, None)
        }
        3 if payload.len() >= std::mem::size_of::<ArchivedSnapshotRootV3>() => {
            // SAFETY: as above, with an `ArchivedSnapshotRootV3` root.
            let r = unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV3>(payload) };
            (&r.data, Some(r.digest.to_native()))
        }
        _ => return None,
    };
    let mut heap = Vec::new();
    let mut children = Vec::new();
    let mut nodes = Vec::with_capacity(a.nodes.len());
    let mut digest_sum = 0i64;
    for n in a.nodes.iter() {
        let s = &n.stat;
        let data = n.data.as_ref().map(|d| d.as_slice());
        if digest.is_none() {
            digest_sum = digest_sum.wrapping_add(crate::core::digest::node_digest(
                n.path.as_str(),
                data,
                &s.to_stat(),
            ));
        }
        heap.extend_from_slice(n.path.as_bytes());
        heap.extend_from_slice(data.unwrap_or_default());
        children.extend(n.children.iter().map(|c| c.to_native()));
        nodes.push(NodeData {
            heap_end: heap.len() as u64,
            czxid: s.czxid.to_native(),
            mzxid: s.mzxid.to_native(),
            ctime: s.ctime.to_native(),
            mtime: s.mtime.to_native(),
            pzxid: s.pzxid.to_native(),
            ephemeral_owner: s.ephemeral_owner.to_native(),
            version: s.version.to_native(),
            cversion: s.cversion.to_native(),
            aversion: s.aversion.to_native(),
            path_len: n.path.len() as u32 | if data.is_none() { NULL_DATA } else { 0 },
            acl: n.acl.to_native(),
            children_end: children.len() as u32,
        });
    }
    let u32s = |v: &rkyv::vec::ArchivedVec<rkyv::rend::u32_le>| -> Vec<u32> {
        v.iter().map(|i| i.to_native()).collect()
    };
    let data = SnapshotData {
        last_zxid: a.last_zxid.to_native(),
        extended_types: a.extended_types,
        data_bytes: a.data_bytes.to_native(),
        acls: a
            .acls
            .iter()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| AclData {
                        perms: e.perms.to_native(),
                        scheme: e.scheme.as_str().to_owned(),
                        id: e.id.as_str().to_owned(),
                    })
                    .collect()
            })
            .collect(),
        nodes,
        heap,
        children,
        index: u32s(&a.index),
        sessions: a
            .sessions
            .iter()
            .map(|s| SessionData {
                id: s.id.to_native(),
                timeout_ms: s.timeout_ms.to_native(),
                passwd: s.passwd,
                ephemerals: u32s(&s.ephemerals),
            })
            .collect(),
        containers: u32s(&a.containers),
        extended_owners: u32s(&a.extended_owners),
    };
    Some(SnapshotRoot {
        data,
        digest: digest.unwrap_or(digest_sum),
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
