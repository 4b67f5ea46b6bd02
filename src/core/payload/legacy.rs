//! Payloads of format versions 2 to 4, which this build still loads but no longer
//! serves in place: [`upgrade`] converts one, once, into a version 5 payload (the nodes
//! keep their indices, so the ACL table, the hash index, the sessions and the other
//! node-index lists carry over as they are).
//!
//! Version 4's root is [`SnapshotRootV4`] (80 B node records holding every stat field);
//! version 3's is [`SnapshotRootV3`]; version 2's is the bare [`SnapshotDataV3`] it
//! nests (version 2 stores no digest: it is computed during the conversion).

use rkyv::rend::u32_le;
use rkyv::vec::ArchivedVec;

use super::{
    AclData, ArchivedAclData, ArchivedSessionData, NodeTables, SessionData, SnapshotData,
    SnapshotRoot, NULL_DATA,
};
use crate::core::tree::NodeStat;

/// The root of a version 4 payload.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotRootV4 {
    /// The state.
    pub data: SnapshotDataV4,
    /// The tree digest.
    pub digest: i64,
}

/// The state as version 4 stores it: version 5's without the side tables, the
/// padding before the records, and with the ACLs first.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct SnapshotDataV4 {
    /// zxid of the last txn the state includes.
    pub last_zxid: i64,
    /// `extendedTypesEnabled` of the server that wrote it.
    pub extended_types: bool,
    /// Sum over the nodes of path length plus data length.
    pub data_bytes: u64,
    /// Distinct ACLs; nodes refer to them by index.
    pub acls: Vec<Vec<AclData>>,
    /// Every node, sorted by path.
    pub nodes: Vec<NodeDataV4>,
    /// Every node's full path then its data, in node order.
    pub heap: Vec<u8>,
    /// Every node's children, in node order.
    pub children: Vec<u32>,
    /// Hash index over `nodes` (the same table as version 5's).
    pub index: Vec<u32>,
    /// Every session, sorted by id.
    pub sessions: Vec<SessionData>,
    /// Container nodes, as node indices.
    pub containers: Vec<u32>,
    /// Nodes with an extended owner, as node indices.
    pub extended_owners: Vec<u32>,
}

/// One znode in version 4: 80 bytes, every stat field inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize)]
pub struct NodeDataV4 {
    /// End of the node's path and data in the heap.
    pub heap_end: u64,
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
    /// Length of the full path; bit 31 ([`NULL_DATA`]) marks null data.
    pub path_len: u32,
    /// Index into the ACL table.
    pub acl: u32,
    /// End of the node's children in the children array.
    pub children_end: u32,
}

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
    /// Hash index over `nodes` (the same table as version 5's).
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

/// The version 5 form of a version 2 (`version` 2), 3 or 4 payload, which must be
/// 16-byte aligned and is trusted as [`crate::core::tree::Base::open`] trusts a payload
/// whose checksum matched (it was fully validated by the writer of its version); the
/// result is validated completely by the caller before it is served. `None` when the
/// payload is too short for its root.
pub fn upgrade(version: u32, payload: &[u8]) -> Option<SnapshotRoot> {
    let a = match version {
        2 if payload.len() >= std::mem::size_of::<ArchivedSnapshotDataV3>() => {
            // SAFETY: the checksum matched, so these are the bytes a version 2 writer
            // produced after validating them as an `ArchivedSnapshotDataV3` root.
            let a = unsafe { rkyv::access_unchecked::<ArchivedSnapshotDataV3>(payload) };
            return Some(upgrade_v3(a, None));
        }
        3 if payload.len() >= std::mem::size_of::<ArchivedSnapshotRootV3>() => {
            // SAFETY: as above, with an `ArchivedSnapshotRootV3` root.
            let r = unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV3>(payload) };
            return Some(upgrade_v3(&r.data, Some(r.digest.to_native())));
        }
        4 if payload.len() >= std::mem::size_of::<ArchivedSnapshotRootV4>() => {
            // SAFETY: as above, with an `ArchivedSnapshotRootV4` root.
            unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV4>(payload) }
        }
        _ => return None,
    };
    let d = &a.data;
    let mut tables = NodeTables::default();
    let (mut heap_at, mut children_at) = (0usize, 0usize);
    for n in d.nodes.iter() {
        let (heap_end, children_end) = (
            n.heap_end.to_native() as usize,
            n.children_end.to_native() as usize,
        );
        let path_end = heap_at + (n.path_len.to_native() & !NULL_DATA) as usize;
        let path = d.heap.get(heap_at..path_end).unwrap_or_default();
        let data = (n.path_len.to_native() & NULL_DATA == 0)
            .then(|| d.heap.get(path_end..heap_end).unwrap_or_default());
        let children = d
            .children
            .get(children_at..children_end)
            .unwrap_or_default();
        let stat = NodeStat {
            czxid: n.czxid.to_native(),
            mzxid: n.mzxid.to_native(),
            ctime: n.ctime.to_native(),
            mtime: n.mtime.to_native(),
            version: n.version.to_native(),
            cversion: n.cversion.to_native(),
            aversion: n.aversion.to_native(),
            ephemeral_owner: n.ephemeral_owner.to_native(),
            pzxid: n.pzxid.to_native(),
        };
        let acl = n.acl.to_native();
        tables.push(
            path,
            data,
            &stat,
            acl,
            children.iter().map(|c| c.to_native()),
        );
        (heap_at, children_at) = (heap_end, children_end);
    }
    let data = SnapshotData {
        last_zxid: d.last_zxid.to_native(),
        extended_types: d.extended_types,
        data_bytes: d.data_bytes.to_native(),
        acls: acls(&d.acls),
        index: u32s(&d.index),
        sessions: sessions(&d.sessions),
        containers: u32s(&d.containers),
        extended_owners: u32s(&d.extended_owners),
        ..tables.into_data()
    };
    Some(SnapshotRoot {
        data,
        digest: a.digest.to_native(),
    })
}

/// [`upgrade`] of a version 2 or 3 state; `digest` is `None` for version 2, which
/// stores none (it is computed here).
fn upgrade_v3(a: &ArchivedSnapshotDataV3, digest: Option<i64>) -> SnapshotRoot {
    let mut tables = NodeTables::default();
    let mut digest_sum = 0i64;
    for n in a.nodes.iter() {
        let stat = n.stat.to_stat();
        let data = n.data.as_ref().map(|d| d.as_slice());
        if digest.is_none() {
            digest_sum = digest_sum.wrapping_add(crate::core::digest::node_digest(
                n.path.as_str(),
                data,
                &stat,
            ));
        }
        let children = n.children.iter().map(|c| c.to_native());
        tables.push(n.path.as_bytes(), data, &stat, n.acl.to_native(), children);
    }
    let data = SnapshotData {
        last_zxid: a.last_zxid.to_native(),
        extended_types: a.extended_types,
        data_bytes: a.data_bytes.to_native(),
        acls: acls(&a.acls),
        index: u32s(&a.index),
        sessions: sessions(&a.sessions),
        containers: u32s(&a.containers),
        extended_owners: u32s(&a.extended_owners),
        ..tables.into_data()
    };
    SnapshotRoot {
        data,
        digest: digest.unwrap_or(digest_sum),
    }
}

fn u32s(v: &ArchivedVec<u32_le>) -> Vec<u32> {
    v.iter().map(|i| i.to_native()).collect()
}

fn acls(v: &ArchivedVec<ArchivedVec<ArchivedAclData>>) -> Vec<Vec<AclData>> {
    v.iter()
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
        .collect()
}

fn sessions(v: &ArchivedVec<ArchivedSessionData>) -> Vec<SessionData> {
    v.iter()
        .map(|s| SessionData {
            id: s.id.to_native(),
            timeout_ms: s.timeout_ms.to_native(),
            passwd: s.passwd,
            ephemerals: u32s(&s.ephemerals),
        })
        .collect()
}

impl ArchivedStatData {
    /// The stat as the tree holds it.
    pub fn to_stat(&self) -> NodeStat {
        NodeStat {
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
