//! The version 5 payload written straight from a [`DataState`], in file order, without
//! building [`super::SnapshotData`] or the archive in memory.
//!
//! The bytes are exactly those `rkyv::to_bytes` gives for [`super::SnapshotRoot::from_state`]
//! (the tests hold the two equal on every kind of state); the layout rules this follows
//! are rkyv 0.8's, written out in `storage/FORMAT.md` ("Payload: an rkyv 0.8 archive"):
//! out-of-line parts depth-first in field order, each array aligned for its element,
//! relative pointers from the field's own position, the root last. The sizes and field
//! offsets are the constants below; `archived_layout_matches_format_md` ties them to
//! rkyv's own types.
//!
//! What is held in memory while writing, per znode: the sorted node references
//! ([`crate::core::tree::Tree::sorted_refs`]: 4 B a base node, 24 B an overlay node),
//! the hash index (4 B a slot, 2–4 slots a
//! node), each node's children end and the children array (4 B each), and the owner and
//! pzxid side tables (12 B a node that has one). Paths and data are read from the tree as
//! they are written, twice (node records, then the heap).
//!
//! Validation is done while generating instead of on a finished archive: nodes strictly
//! increasing with `/` first, every other node's parent present, counts and lengths
//! within the format's u32 fields (a path within [`PATH_LEN_MASK`]), the heap exactly the
//! nodes' stretches, the stored digest equal to the nodes'. The side tables agree with
//! the records' flags by construction: both come from one [`stat_flags`] per node. A
//! state that breaks one is refused with [`super::InvalidPayload`] before anything gets
//! a snapshot's final name.

use std::collections::HashMap;
use std::sync::Arc;

use ferrokeeper_net::records::Acl;
use imbl::OrdSet;

use super::{
    index_slots, index_start, stat_flags, InvalidPayload, HAS_OWNER, NULL_DATA, PATH_LEN_MASK,
    PZXID_DIFFERS, RECORDS_PAD_BYTES,
};
use crate::core::state::{DataState, Session, CONTAINER_OWNER, EXTENDED_MASK};
use crate::core::tree::{NodeStat, SortedRefs};

/// `ArchivedVec<T>` (and the element slot of `Vec<Vec<_>>`): i64 relative offset, u64 length.
pub const VEC_BYTES: usize = 16;
/// `ArchivedString`: 16 bytes inline (padded with 0xff) or u64 tagged length + i64 offset.
pub const STRING_BYTES: usize = 16;
/// Longest string rkyv stores inline.
pub const STRING_INLINE_MAX: usize = 16;
/// `ArchivedAclData`: perms i32, 4 B padding, scheme, id.
pub const ACL_BYTES: usize = 40;
/// Offset of `scheme` in `ArchivedAclData`.
pub const ACL_SCHEME_AT: usize = 8;
/// Offset of `id` in `ArchivedAclData`.
pub const ACL_ID_AT: usize = 24;
/// `ArchivedNodeData`: no padding.
pub const NODE_BYTES: usize = 64;
/// Offsets in `ArchivedNodeData` of its 4-byte fields, after the five 8-byte ones
/// (`heap_end`, `czxid`, `mzxid`, `ctime`, `mtime`): `version`, `cversion`,
/// `aversion`, `path_len`, `acl`, `children_end`.
pub const NODE_FIELDS4_AT: usize = 40;
/// `ArchivedSessionData`: id i64, timeout_ms i32, passwd 16 B, 4 B padding, ephemerals.
pub const SESSION_BYTES: usize = 48;
/// Offset of `passwd` in `ArchivedSessionData`.
pub const SESSION_PASSWD_AT: usize = 12;
/// Offset of `ephemerals` in `ArchivedSessionData`.
pub const SESSION_EPHEMERALS_AT: usize = 32;
/// `ArchivedSnapshotData`.
pub const DATA_BYTES: usize = 232;
/// `ArchivedSnapshotRoot`: the data, then the digest.
pub const ROOT_BYTES: usize = 240;
/// Alignment of every struct and vector header above.
pub const STRUCT_ALIGN: u64 = 8;
/// Alignment of a `u32` array.
pub const U32_ALIGN: u64 = 4;
/// Offsets in `ArchivedSnapshotData` of `last_zxid`, `extended_types`, `data_bytes`.
pub const DATA_LAST_ZXID_AT: usize = 0;
/// See [`DATA_LAST_ZXID_AT`].
pub const DATA_EXTENDED_TYPES_AT: usize = 8;
/// See [`DATA_LAST_ZXID_AT`].
pub const DATA_DATA_BYTES_AT: usize = 16;
/// Offsets in `ArchivedSnapshotData` of its vectors, in declaration order (which is the
/// order their elements are written in): records_pad, nodes, acls, heap, children,
/// index, sessions, containers, extended_owners, owner_nodes, owners, pzxid_nodes,
/// pzxids.
pub const DATA_VECS_AT: [usize; 13] = [24, 40, 56, 72, 88, 104, 120, 136, 152, 168, 184, 200, 216];
/// Offset of `digest` in `ArchivedSnapshotRoot`.
pub const ROOT_DIGEST_AT: usize = 232;

// The root is the data, then the digest, with no padding.
const _: () = assert!(DATA_BYTES == ROOT_DIGEST_AT && ROOT_DIGEST_AT + 8 == ROOT_BYTES);

/// Where the payload goes, in order.
pub trait Out {
    /// The sink's error.
    type Error;
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

impl Out for Vec<u8> {
    type Error = std::convert::Infallible;
    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// What the writer reads: the nodes in path order (node `i` of `0..len()`), the sets
/// kept beside them, and the state's scalars. [`write`] takes a [`DataState`] through
/// [`StateSource`]; the import writes from its table of ZooKeeper's records
/// (`crate::import::table`) without building a state.
pub trait Source {
    /// Number of nodes.
    fn len(&self) -> usize;
    /// Whether there is no node (never a valid payload).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Node `i`'s full path.
    fn path(&self, i: usize) -> &str;
    /// Node `i`'s stat.
    fn stat(&self, i: usize) -> NodeStat;
    /// Node `i`'s ACL; equal lists may or may not share an allocation.
    fn acl(&self, i: usize) -> &Arc<[Acl]>;
    /// Node `i`'s data, `None` when null; `buf` may hold it (a source that reads it
    /// from a file), else it is borrowed from the source.
    fn data<'s>(&'s self, i: usize, buf: &'s mut Vec<u8>) -> std::io::Result<Option<&'s [u8]>>;
    /// Every session, ephemerals by path.
    fn sessions(&self) -> &imbl::HashMap<i64, Session>;
    /// Container nodes by path.
    fn containers(&self) -> &OrdSet<Arc<str>>;
    /// zxid of the last txn included.
    fn last_zxid(&self) -> i64;
    /// `extendedTypesEnabled`.
    fn extended_types(&self) -> bool;
    /// Sum of path and data lengths over the nodes.
    fn data_bytes(&self) -> u64;
    /// The tree digest the nodes must add up to.
    fn digest(&self) -> i64;
}

/// A [`DataState`] as a [`Source`]: its tree's nodes sorted by path.
pub struct StateSource<'a> {
    state: &'a DataState,
    sorted: SortedRefs<'a>,
}

impl<'a> StateSource<'a> {
    /// Sorts `state`'s nodes (see [`crate::core::tree::Tree::sorted_refs`]).
    pub fn new(state: &'a DataState) -> Self {
        StateSource {
            state,
            sorted: state.tree.sorted_refs(),
        }
    }
}

impl Source for StateSource<'_> {
    fn len(&self) -> usize {
        self.sorted.len()
    }
    fn path(&self, i: usize) -> &str {
        self.sorted.path(i)
    }
    fn stat(&self, i: usize) -> NodeStat {
        self.sorted.get(i).1.stat()
    }
    fn acl(&self, i: usize) -> &Arc<[Acl]> {
        self.sorted.get(i).1.acl()
    }
    fn data<'s>(&'s self, i: usize, _: &'s mut Vec<u8>) -> std::io::Result<Option<&'s [u8]>> {
        Ok(self.sorted.get(i).1.data())
    }
    fn sessions(&self) -> &imbl::HashMap<i64, Session> {
        &self.state.sessions
    }
    fn containers(&self) -> &OrdSet<Arc<str>> {
        &self.state.containers
    }
    fn last_zxid(&self) -> i64 {
        self.state.last_zxid
    }
    fn extended_types(&self) -> bool {
        self.state.extended_types
    }
    fn data_bytes(&self) -> u64 {
        self.state.tree.data_bytes()
    }
    fn digest(&self) -> i64 {
        self.state.digest
    }
}

/// Why the payload was not written whole.
#[derive(Debug)]
pub enum StreamError<E> {
    /// The sink failed.
    Out(E),
    /// The source failed to read a node's data.
    Read(std::io::Error),
    /// The state breaks an invariant of the format: a bug, never given a final name.
    Invalid(InvalidPayload),
}

/// Counts what goes out, so that offsets are known without looking back.
struct Enc<'o, O: Out> {
    out: &'o mut O,
    pos: u64,
}

impl<O: Out> Enc<'_, O> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError<O::Error>> {
        self.pos += bytes.len() as u64;
        self.out.put(bytes).map_err(StreamError::Out)
    }

    /// Pads with zeros to `align`; returns the aligned position.
    fn align(&mut self, align: u64) -> Result<u64, StreamError<O::Error>> {
        let pad = (align - self.pos % align) % align;
        self.put(&[0u8; 8][..pad as usize])?;
        Ok(self.pos)
    }

    /// A `u32` array, aligned; returns its position.
    fn u32s(&mut self, values: &[u32]) -> Result<u64, StreamError<O::Error>> {
        let at = self.align(U32_ALIGN)?;
        let mut buf = Vec::with_capacity(4 * values.len().min(1 << 14));
        for chunk in values.chunks(1 << 14) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            self.put(&buf)?;
        }
        Ok(at)
    }

    /// An `i64` array, aligned; returns its position.
    fn i64s(&mut self, values: &[i64]) -> Result<u64, StreamError<O::Error>> {
        let at = self.align(STRUCT_ALIGN)?;
        let mut buf = Vec::with_capacity(8 * values.len().min(1 << 13));
        for chunk in values.chunks(1 << 13) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            self.put(&buf)?;
        }
        Ok(at)
    }
}

/// Writes an `ArchivedVec` header at `field` (its absolute position) into `out`.
fn vec_header(out: &mut [u8], field: u64, target: u64, len: usize) {
    let rel = target.wrapping_sub(field) as i64;
    out[..8].copy_from_slice(&rel.to_le_bytes());
    out[8..16].copy_from_slice(&(len as u64).to_le_bytes());
}

/// Writes an `ArchivedString` at `field` into `out`; `target` is where its bytes were
/// written when it is too long to be inline.
fn string_repr(out: &mut [u8], field: u64, s: &str, target: u64) {
    if s.len() <= STRING_INLINE_MAX {
        out[..STRING_BYTES].fill(0xff);
        out[..s.len()].copy_from_slice(s.as_bytes());
    } else {
        // rkyv's out-of-line repr (little-endian): length with its low six bits in
        // place, bit 7 set as the marker, the rest shifted up two; then the offset,
        // relative to the string's own position.
        let l = s.len() as u64;
        let tagged = (l & 0b0011_1111) | 0b1000_0000 | ((l & !0b0011_1111) << 2);
        out[..8].copy_from_slice(&tagged.to_le_bytes());
        out[8..16].copy_from_slice(&(target.wrapping_sub(field) as i64).to_le_bytes());
    }
}

/// The distinct ACLs in order of first use along `sorted`, and each node's number.
struct Acls<'a> {
    lists: Vec<&'a [Acl]>,
    by_ptr: HashMap<*const Acl, u32>,
    by_content: HashMap<&'a [Acl], u32>,
}

impl<'a> Acls<'a> {
    fn number(&mut self, acl: &'a Arc<[Acl]>) -> u32 {
        // Nodes created with the same ACL share one allocation: look the pointer up
        // first, the content only on a miss. The pointers stay valid: the source is
        // borrowed for the whole write.
        let lists = &mut self.lists;
        let by_content = &mut self.by_content;
        *self.by_ptr.entry(acl.as_ptr()).or_insert_with(|| {
            *by_content.entry(&acl[..]).or_insert_with(|| {
                lists.push(&acl[..]);
                (lists.len() - 1) as u32
            })
        })
    }
}

fn invalid<E>(reason: String) -> StreamError<E> {
    StreamError::Invalid(InvalidPayload {
        file: "snapshot being written".into(),
        reason,
    })
}

/// The hash index over `sorted` (as [`super::SnapshotData::index`]) and a lookup in it.
struct Index<'s, S: Source + ?Sized> {
    slots: Vec<u32>,
    sorted: &'s S,
}

impl<'s, S: Source + ?Sized> Index<'s, S> {
    fn build(sorted: &'s S) -> Self {
        let slots = index_slots(sorted.len(), (0..sorted.len()).map(|i| sorted.path(i)));
        Index { slots, sorted }
    }

    fn find(&self, path: &str) -> Option<u32> {
        let len = self.slots.len();
        let mut slot = index_start(path, len);
        loop {
            match self.slots[slot] {
                0 => return None,
                s if self.sorted.path(s as usize - 1) == path => return Some(s - 1),
                _ => slot = (slot + 1) & (len - 1),
            }
        }
    }

    /// Sorted node numbers of those `paths` that are nodes.
    fn numbers<'p>(&self, paths: impl Iterator<Item = &'p Arc<str>>) -> Vec<u32> {
        let mut v: Vec<u32> = paths.filter_map(|p| self.find(p)).collect();
        v.sort_unstable();
        v
    }
}

/// Checks the node order and finds each node's children: returns each node's children
/// end and the children array (as [`super::SnapshotData::children`]).
fn children<E, S: Source + ?Sized>(
    sorted: &S,
    index: &Index<'_, S>,
) -> Result<(Vec<u32>, Vec<u32>), StreamError<E>> {
    let n = sorted.len();
    if n == 0 || sorted.path(0) != "/" {
        return Err(invalid("no root node".into()));
    }
    if n > u32::MAX as usize - 1 {
        return Err(invalid(format!("{n} nodes is more than the format holds")));
    }
    let parent_of = |j: usize| -> Result<usize, StreamError<E>> {
        let path = sorted.path(j);
        index
            .find(crate::core::path::parent(path))
            .map(|p| p as usize)
            .ok_or_else(|| invalid(format!("{path}: parent missing")))
    };
    // Counts, then starts (a prefix sum), then each child placed at its parent's cursor
    // in node order, which leaves the cursors at the ends and each list increasing.
    let mut ends = vec![0u32; n];
    for j in 1..n {
        if sorted.path(j - 1) >= sorted.path(j) {
            return Err(invalid(format!(
                "node paths out of order at {}",
                sorted.path(j)
            )));
        }
        ends[parent_of(j)?] += 1;
    }
    let mut at = 0u32;
    for e in ends.iter_mut() {
        let count = *e;
        *e = at;
        at += count;
    }
    let mut list = vec![0u32; n - 1];
    for j in 1..n {
        let p = parent_of(j)?;
        list[ends[p] as usize] = j as u32;
        ends[p] += 1;
    }
    Ok((ends, list))
}

/// Writes `state` as a version 5 payload into `out`; returns the payload's length.
pub fn write<O: Out>(state: &DataState, out: &mut O) -> Result<u64, StreamError<O::Error>> {
    write_from(&StateSource::new(state), out)
}

// Long because it writes the archive's parts in rkyv's order, each needing the
// positions of the ones before it; the parts are small helpers above.
/// Writes the nodes and sets of `sorted` as a version 5 payload into `out`; returns the
/// payload's length.
pub fn write_from<O: Out, S: Source + ?Sized>(
    sorted: &S,
    out: &mut O,
) -> Result<u64, StreamError<O::Error>> {
    let mut enc = Enc { out, pos: 0 };
    let mut acls = Acls {
        lists: Vec::new(),
        by_ptr: HashMap::new(),
        by_content: HashMap::new(),
    };
    for i in 0..sorted.len() {
        acls.number(sorted.acl(i));
    }

    let index = Index::build(sorted);
    let (children_ends, children_list) = children(sorted, &index)?;

    // The padding that puts the records 64-byte aligned in the file, then the records.
    let pad_at = enc.pos;
    enc.put(&[0u8; RECORDS_PAD_BYTES])?;
    let nodes_at = enc.align(STRUCT_ALIGN)?;
    let (mut heap_end, mut digest) = (0u64, 0i64);
    let mut extended_owners = Vec::new();
    let (mut owner_nodes, mut owners) = (Vec::new(), Vec::new());
    let (mut pzxid_nodes, mut pzxids) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for (i, &children_end) in children_ends.iter().enumerate() {
        let path = sorted.path(i);
        let s = sorted.stat(i);
        let data = sorted.data(i, &mut buf).map_err(StreamError::Read)?;
        if path.len() > PATH_LEN_MASK as usize {
            return Err(invalid(format!(
                "node {i}: path longer than the format holds"
            )));
        }
        heap_end += (path.len() + data.map_or(0, <[u8]>::len)) as u64;
        digest = digest.wrapping_add(crate::core::digest::node_digest(path, data, &s));
        if s.ephemeral_owner != CONTAINER_OWNER
            && s.ephemeral_owner & EXTENDED_MASK == EXTENDED_MASK
        {
            extended_owners.push(i as u32);
        }
        let flags = stat_flags(&s);
        if flags & HAS_OWNER != 0 {
            owner_nodes.push(i as u32);
            owners.push(s.ephemeral_owner);
        }
        if flags & PZXID_DIFFERS != 0 {
            pzxid_nodes.push(i as u32);
            pzxids.push(s.pzxid);
        }
        let null = if data.is_none() { NULL_DATA } else { 0 };
        let path_len = path.len() as u32 | null | flags;
        let mut rec = [0u8; NODE_BYTES];
        let fields8 = [heap_end as i64, s.czxid, s.mzxid, s.ctime, s.mtime];
        for (k, v) in fields8.iter().enumerate() {
            rec[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
        }
        let fields4 = [
            s.version as u32,
            s.cversion as u32,
            s.aversion as u32,
            path_len,
            acls.number(sorted.acl(i)),
            children_end,
        ];
        for (k, v) in fields4.iter().enumerate() {
            let at = NODE_FIELDS4_AT + 4 * k;
            rec[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        enc.put(&rec)?;
    }
    drop(children_ends);
    if digest != sorted.digest() {
        return Err(invalid(format!(
            "tree digest {} in the state, the nodes give {digest}",
            sorted.digest()
        )));
    }

    // acls: each list's long strings, then its entries; then the lists' headers.
    let mut acl_lists = Vec::with_capacity(acls.lists.len());
    for list in &acls.lists {
        let mut strings = Vec::with_capacity(list.len());
        for a in list.iter() {
            let mut at = [0u64; 2];
            for (k, s) in [&a.id.scheme, &a.id.id].into_iter().enumerate() {
                if s.len() > STRING_INLINE_MAX {
                    at[k] = enc.pos;
                    enc.put(s.as_bytes())?;
                }
            }
            strings.push(at);
        }
        let list_at = enc.align(STRUCT_ALIGN)?;
        for (a, at) in list.iter().zip(&strings) {
            let field = enc.pos;
            let mut rec = [0u8; ACL_BYTES];
            rec[..4].copy_from_slice(&a.perms.to_le_bytes());
            let scheme_at = field + ACL_SCHEME_AT as u64;
            string_repr(&mut rec[ACL_SCHEME_AT..], scheme_at, &a.id.scheme, at[0]);
            let id_at = field + ACL_ID_AT as u64;
            string_repr(&mut rec[ACL_ID_AT..], id_at, &a.id.id, at[1]);
            enc.put(&rec)?;
        }
        acl_lists.push((list_at, list.len()));
    }
    let acls_at = enc.align(STRUCT_ALIGN)?;
    for &(list_at, len) in &acl_lists {
        let mut h = [0u8; VEC_BYTES];
        vec_header(&mut h, enc.pos, list_at, len);
        enc.put(&h)?;
    }

    // heap: read from the tree again, so it must come out at the length counted above.
    let heap_at = enc.pos;
    for i in 0..sorted.len() {
        enc.put(sorted.path(i).as_bytes())?;
        let data = sorted.data(i, &mut buf).map_err(StreamError::Read)?;
        enc.put(data.unwrap_or_default())?;
    }
    drop(buf);
    if enc.pos - heap_at != heap_end {
        return Err(invalid(
            "heap longer or shorter than its nodes' stretches".into(),
        ));
    }

    let children_at = enc.u32s(&children_list)?;
    let children_len = children_list.len();
    drop(children_list);
    let index_at = enc.u32s(&index.slots)?;
    let index_len = index.slots.len();

    // sessions: each one's ephemerals, then the records.
    let mut sessions: Vec<_> = sorted.sessions().iter().collect();
    sessions.sort_unstable_by_key(|(id, _)| **id);
    let mut ephemerals_at = Vec::with_capacity(sessions.len());
    for (_, s) in &sessions {
        let e = index.numbers(s.ephemerals.iter());
        ephemerals_at.push((enc.u32s(&e)?, e.len()));
    }
    let sessions_at = enc.align(STRUCT_ALIGN)?;
    for ((id, s), &(e_at, e_len)) in sessions.iter().zip(&ephemerals_at) {
        let field = enc.pos;
        let mut rec = [0u8; SESSION_BYTES];
        rec[..8].copy_from_slice(&id.to_le_bytes());
        rec[8..12].copy_from_slice(&s.timeout_ms.to_le_bytes());
        rec[SESSION_PASSWD_AT..SESSION_PASSWD_AT + 16].copy_from_slice(&s.passwd);
        let e_field = field + SESSION_EPHEMERALS_AT as u64;
        vec_header(&mut rec[SESSION_EPHEMERALS_AT..], e_field, e_at, e_len);
        enc.put(&rec)?;
    }
    let containers = index.numbers(sorted.containers().iter());
    let containers_at = enc.u32s(&containers)?;
    let extended_at = enc.u32s(&extended_owners)?;
    let owner_nodes_at = enc.u32s(&owner_nodes)?;
    let owners_at = enc.i64s(&owners)?;
    let pzxid_nodes_at = enc.u32s(&pzxid_nodes)?;
    let pzxids_at = enc.i64s(&pzxids)?;

    // The root, last.
    let root_at = enc.align(STRUCT_ALIGN)?;
    let mut root = [0u8; ROOT_BYTES];
    root[DATA_LAST_ZXID_AT..DATA_LAST_ZXID_AT + 8]
        .copy_from_slice(&sorted.last_zxid().to_le_bytes());
    root[DATA_EXTENDED_TYPES_AT] = u8::from(sorted.extended_types());
    root[DATA_DATA_BYTES_AT..DATA_DATA_BYTES_AT + 8]
        .copy_from_slice(&sorted.data_bytes().to_le_bytes());
    let vecs = [
        (pad_at, RECORDS_PAD_BYTES),
        (nodes_at, sorted.len()),
        (acls_at, acl_lists.len()),
        (heap_at, heap_end as usize),
        (children_at, children_len),
        (index_at, index_len),
        (sessions_at, sessions.len()),
        (containers_at, containers.len()),
        (extended_at, extended_owners.len()),
        (owner_nodes_at, owner_nodes.len()),
        (owners_at, owners.len()),
        (pzxid_nodes_at, pzxid_nodes.len()),
        (pzxids_at, pzxids.len()),
    ];
    for (&field, &(target, len)) in DATA_VECS_AT.iter().zip(&vecs) {
        vec_header(&mut root[field..], root_at + field as u64, target, len);
    }
    root[ROOT_DIGEST_AT..].copy_from_slice(&sorted.digest().to_le_bytes());
    enc.put(&root)?;
    Ok(enc.pos)
}
