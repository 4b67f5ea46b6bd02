//! The tree's base layer: a snapshot file mapped into memory and read in place.
//!
//! Opening a base costs the payload checksum (one sequential pass at memory speed over
//! the mapped file) plus what is proportional to the ACL table and to the large side
//! tables (their rank structures, [`SideRanks`]); nothing is decoded per node. Nodes are
//! read through [`BaseNode`] straight from the archive (format version 5). A version 2,
//! 3 or 4 file is converted once into a version 5 archive held in memory (see
//! [`Base::upgraded_from`]).

use std::sync::Arc;

use ferrokeeper_net::records::{Acl, Id};
use ferrokeeper_storage::snapshot::Snapshot;

use super::NodeStat;
use crate::core::payload::{
    index_start, ArchivedNodeData, ArchivedSnapshotData, ArchivedSnapshotRoot, SideRanks,
};

/// A mapped snapshot serving as the bottom layer of a [`super::Tree`].
pub struct Base {
    snap: Snapshot,
    acls: Vec<Arc<[Acl]>>,
    /// Built over the archive's side tables at open, for [`BaseNode::stat`].
    ranks: SideRanks,
    upgraded_from: Option<u32>,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("file", &self.snap.path)
            .field("zxid", &self.snap.zxid)
            .field("nodes", &self.len())
            .finish()
    }
}

impl Base {
    /// Serves `snap`, whose payload checksum [`ferrokeeper_storage::snapshot::read`] has
    /// verified.
    ///
    /// The archive is not validated node by node here (that would make restart time
    /// grow with the data): the checksum proves these are the bytes a ferrokeeper of
    /// this format version wrote, and the writer fully validated them
    /// ([`crate::core::payload::validate`]) before writing. What is checked is
    /// what costs nothing: the archive's root fits, the index is a power of two and
    /// larger than the node count (so a probe always ends), the root node is first, and
    /// the zxids agree.
    ///
    /// The side tables of the owners and pzxids get their rank structures here
    /// ([`SideRanks::new`]): at 1M nodes all of them ephemerals, a pass over the 1M
    /// listed indices and 190 KB, so that a stat of an ephemeral is not a binary search.
    pub fn open(snap: Snapshot) -> Result<Base, String> {
        let (snap, upgraded_from) = match snap.version {
            5 => (snap, None),
            v @ (2..=4) => {
                let bytes = crate::core::payload::validated_v5(&snap.path, v, snap.payload())
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default();
                tracing::warn!(
                    file = %snap.path.display(), format_version = v, bytes = bytes.len(),
                    "snapshot of an older format converted to version 5 in memory, a pass over every node (the server writes it back as version 5)"
                );
                let path = snap.path.clone();
                (Snapshot::in_memory(path, snap.zxid, &bytes), Some(v))
            }
            v => {
                return Err(format!(
                    "{}: snapshot format version {v} is not one this build serves (2 to 5)",
                    snap.path.display()
                ))
            }
        };
        let payload = snap.payload();
        let root_bytes = std::mem::size_of::<ArchivedSnapshotRoot>();
        if payload.len() < root_bytes {
            return Err(format!(
                "{}: payload of {} bytes is smaller than the archive's root ({root_bytes})",
                snap.path.display(),
                payload.len()
            ));
        }
        let base = Base {
            snap,
            acls: Vec::new(),
            ranks: SideRanks::default(),
            upgraded_from,
        };
        let a = base.archive();
        let snap = &base.snap;
        let file = snap.path.display();
        if a.last_zxid.to_native() != snap.zxid {
            return Err(format!(
                "{file}: payload zxid 0x{:x} differs from the header's 0x{:x}",
                a.last_zxid.to_native(),
                snap.zxid
            ));
        }
        let n = a.nodes.len();
        let slots = a.index.len();
        if !slots.is_power_of_two() || slots < 2 * n {
            return Err(format!("{file}: index of {slots} slots for {n} nodes"));
        }
        if a.nodes.is_empty() || a.path(0) != "/" {
            return Err(format!("{file}: no root node"));
        }
        let acls = a
            .acls
            .iter()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| Acl {
                        perms: e.perms.to_native(),
                        id: Id {
                            scheme: e.scheme.as_str().to_owned(),
                            id: e.id.as_str().to_owned(),
                        },
                    })
                    .collect::<Vec<_>>()
                    .into()
            })
            .collect();
        let ranks = SideRanks::new(a);
        Ok(Base {
            acls,
            ranks,
            ..base
        })
    }

    /// The archived state.
    pub fn archive(&self) -> &ArchivedSnapshotData {
        &self.root().data
    }

    fn root(&self) -> &ArchivedSnapshotRoot {
        // SAFETY: the payload's checksum matched, so the bytes are those the writer
        // produced, and the writer validated them (structure and every relative pointer)
        // before writing, as an `ArchivedSnapshotRoot` of version 5 (`open` refused any
        // other version, converting versions 2 to 4 into a fully validated version 5
        // archive first, and a payload too short for the root).
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRoot>(self.snap.payload()) }
    }

    /// The tree digest the snapshot stores.
    pub fn digest(&self) -> i64 {
        self.root().digest.to_native()
    }

    /// The format version of the file it was read from when that was older than 5 (its
    /// archive was then converted to version 5 in memory, and the server writes it back
    /// as a version 5 file).
    pub fn upgraded_from(&self) -> Option<u32> {
        self.upgraded_from
    }

    /// The format version it serves (5; see [`Base::upgraded_from`] for the file's).
    pub fn format_version(&self) -> u32 {
        self.snap.version
    }

    /// zxid of the state the base holds.
    pub fn zxid(&self) -> i64 {
        self.snap.zxid
    }

    /// The snapshot file it maps.
    pub fn file(&self) -> &std::path::Path {
        &self.snap.path
    }

    /// Size of the mapped file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.snap.file_bytes()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.archive().nodes.len()
    }

    /// Whether it holds no node (never, for a valid snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of path and data lengths over the nodes.
    pub fn data_bytes(&self) -> u64 {
        self.archive().data_bytes.to_native()
    }

    /// The node at index `i`.
    pub fn node(self: &Arc<Self>, i: u32) -> BaseNode<'_> {
        BaseNode {
            base: self,
            node: &self.archive().nodes[i as usize],
            index: i,
        }
    }

    /// The index of the node at `path`.
    pub fn find(&self, path: &str) -> Option<u32> {
        let a = self.archive();
        let slots = a.index.len();
        let mut slot = index_start(path, slots);
        // `open` checked that the index has more slots than nodes, so an empty slot
        // ends every probe; the bound is a second guard.
        for _ in 0..slots {
            match a.index[slot].to_native() {
                0 => return None,
                s => {
                    let i = s - 1;
                    if a.path_bytes(i as usize) == path.as_bytes() {
                        return Some(i);
                    }
                }
            }
            slot = (slot + 1) & (slots - 1);
        }
        None
    }

    /// Every node, in path order, with its index.
    pub fn iter(self: &Arc<Self>) -> impl Iterator<Item = BaseNode<'_>> {
        self.archive()
            .nodes
            .iter()
            .enumerate()
            .map(move |(i, node)| BaseNode {
                base: self,
                node,
                index: i as u32,
            })
    }

    /// The ACL table entry `i`.
    fn acl(&self, i: u32) -> &Arc<[Acl]> {
        &self.acls[i as usize]
    }
}

/// A node read in place from a [`Base`].
#[derive(Clone, Copy)]
pub struct BaseNode<'a> {
    base: &'a Arc<Base>,
    node: &'a ArchivedNodeData,
    index: u32,
}

impl<'a> BaseNode<'a> {
    /// The base it is in.
    pub fn base(&self) -> &'a Arc<Base> {
        self.base
    }

    /// Its index in the base.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Full path.
    pub fn path(&self) -> &'a str {
        self.base.archive().path(self.index as usize)
    }

    /// Data; `None` is null.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.base.archive().data(self.index as usize)
    }

    fn child_ids(&self) -> &'a [rkyv::rend::u32_le] {
        self.base.archive().children(self.index as usize)
    }

    /// The ACL.
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        self.base.acl(self.node.acl.to_native())
    }

    /// The persisted stat.
    pub fn stat(&self) -> NodeStat {
        self.base
            .archive()
            .stat(self.index, self.node, &self.base.ranks)
    }

    /// Number of children.
    pub fn num_children(&self) -> usize {
        self.child_ids().len()
    }

    /// Whether it has a child called `name` (a binary search: children are in name
    /// order).
    pub fn has_child(&self, name: &str) -> bool {
        let names = self.children();
        self.child_ids()
            .binary_search_by(|i| names.name_of(i.to_native()).cmp(name))
            .is_ok()
    }

    /// The children's names, in order.
    pub fn children(&self) -> BaseChildren<'a> {
        let path = self.path();
        BaseChildren {
            archive: self.base.archive(),
            ids: self.child_ids().iter(),
            skip: if path == "/" { 1 } else { path.len() + 1 },
        }
    }
}

/// The names of a base node's children, in order.
///
/// A child's path is its parent's, a slash and its name (the writer's validation checks
/// it), so the name is the path past a known length: a wide `getChildren` from the base
/// spent a third of its time searching each path for its last slash.
pub struct BaseChildren<'a> {
    archive: &'a ArchivedSnapshotData,
    ids: std::slice::Iter<'a, rkyv::rend::u32_le>,
    /// The length of the parent's path and the slash after it.
    skip: usize,
}

impl<'a> BaseChildren<'a> {
    fn name_of(&self, i: u32) -> &'a str {
        let archive: &'a ArchivedSnapshotData = self.archive;
        let path = archive.path_bytes(i as usize);
        match path.get(self.skip..).map(std::str::from_utf8) {
            Some(Ok(name)) => name,
            _ => crate::core::path::name(archive.path(i as usize)),
        }
    }
}

impl<'a> Iterator for BaseChildren<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let i = self.ids.next()?.to_native();
        Some(self.name_of(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ids.size_hint()
    }
}
