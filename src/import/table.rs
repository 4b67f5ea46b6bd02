//! ZooKeeper's snapshot as a compact table of node records, written as ferrokeeper's
//! version 5 snapshot without building a [`crate::core::state::DataState`] (issue #13:
//! an owned tree node costs ~500 B a znode, which put a 10M-znode import at 5.4 GiB).
//!
//! Per node the table keeps its path (in one arena), its stat, an ACL number and where
//! its data lies in the decompressed snapshot: ~100 B plus the path, the data staying on
//! disk. A compressed snapshot is decompressed into a temp file as it is parsed, so the
//! data can be read back by offset; the temp file is removed when the table is dropped.
//! The records are sorted by path and handed to the snapshot writer as a
//! [`Source`]; the writer reads each node's data with a positioned read.
//!
//! The checks are those of [`super::replay::Loader::from_source`], at the same record:
//! every node but the root has its parent earlier in the file (looked up by path hash);
//! a path that occurs twice keeps its last record (the first one's digest is taken back
//! out after the sort).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokeeper_net::records::Acl;
use imbl::OrdSet;

use super::error::ImportError;
use super::format::{Compression, SnapshotFile, SnapshotSource, OPEN_ACL_REF};
use super::password::zookeeper_session_passwd;
use super::replay::{node_stat, SnapshotSummary, SYSTEM_PATHS};
use super::snapshot::SnapshotParser;
use crate::core::digest::node_digest;
use crate::core::path::parent as parent_of;
use crate::core::payload::stream::Source;
use crate::core::sequencer::open_acl_unsafe;
use crate::core::state::{owner_kind, OwnerKind, Session};
use crate::core::tree::{NodeStat, Tree};

/// How often (in snapshot bytes) the loader reports progress.
const PROGRESS_STEP_BYTES: u64 = 1 << 20;
/// [`Rec::data_len`] of null data.
const NULL_LEN: u32 = u32::MAX;
/// [`Rec::offset`] of a system node ferrokeeper added (after every record of the file).
const ADDED: u64 = u64::MAX;
/// Write buffer of the decompressed copy.
const TEMP_WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Hashes of paths are already hashes: the set uses them as they are.
#[derive(Default, Clone, Copy)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed (write_u64); fold anything else in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type BuildNoHash = std::hash::BuildHasherDefault<NoHash>;

fn path_hash(path: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(path.as_bytes())
}

/// Records per chunk of [`Chunked`].
const CHUNK_RECS: usize = 1 << 16;
/// Bytes per chunk of [`Arena`] (a longer path gets a chunk of its own size).
const ARENA_CHUNK_BYTES: usize = 1 << 24;

/// A vector grown in fixed chunks: growing never copies (a doubling `Vec` holds the
/// old and the new buffer at once, 1.5 times the table at its peak).
struct Chunked<T>(Vec<Vec<T>>);

impl<T> Chunked<T> {
    fn push(&mut self, v: T) {
        match self.0.last_mut() {
            Some(c) if c.len() < CHUNK_RECS => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(CHUNK_RECS);
                c.push(v);
                self.0.push(c);
            }
        }
    }
    fn len(&self) -> usize {
        self.0.len().saturating_sub(1) * CHUNK_RECS + self.0.last().map_or(0, Vec::len)
    }
    fn heap_bytes(&self) -> usize {
        self.0.len() * CHUNK_RECS * std::mem::size_of::<T>()
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.0[i / CHUNK_RECS][i % CHUNK_RECS]
    }
}

/// Paths back to back in chunks; a path is found by its chunk (high 32 bits of its
/// handle) and its start in the chunk (low 32 bits).
#[derive(Default)]
struct Arena(Vec<String>);

impl Arena {
    fn push(&mut self, path: &str) -> u64 {
        let fits = self
            .0
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= path.len());
        if !fits {
            self.0
                .push(String::with_capacity(ARENA_CHUNK_BYTES.max(path.len())));
        }
        let chunk = self.0.len() - 1;
        let c = &mut self.0[chunk];
        let at = c.len();
        c.push_str(path);
        ((chunk as u64) << 32) | at as u64
    }
    fn get(&self, handle: u64, len: u32) -> &str {
        let at = (handle & u64::from(u32::MAX)) as usize;
        self.0
            .get((handle >> 32) as usize)
            .and_then(|c| c.get(at..at + len as usize))
            .unwrap_or_default()
    }
    fn heap_bytes(&self) -> usize {
        self.0.iter().map(String::capacity).sum()
    }
}

/// One node: 96 B, plus its path in the arena.
#[derive(Debug, Clone, Copy)]
struct Rec {
    /// Offset of the record in the decompressed snapshot ([`ADDED`] for a system node).
    offset: u64,
    /// The path's handle in [`Table::arena`].
    path_at: u64,
    stat: NodeStat,
    path_len: u32,
    /// [`NULL_LEN`]: null data.
    data_len: u32,
    /// Index into [`Table::acls`].
    acl: u32,
    /// The data starts this many bytes after `offset`.
    data_skip: u32,
}

/// The snapshot's nodes as records, sorted by path, and what the writer needs beside
/// them. See the module docs.
pub struct Table {
    arena: Arena,
    recs: Chunked<Rec>,
    /// Record numbers in path order, one per distinct path.
    order: Vec<u32>,
    acls: Vec<Arc<[Acl]>>,
    /// The decompressed snapshot, read by offset.
    data: std::fs::File,
    /// The temp copy to remove, for a compressed snapshot.
    temp: Option<PathBuf>,
    sessions: imbl::HashMap<i64, Session>,
    containers: OrdSet<Arc<str>>,
    /// Ephemerals whose owner has no session in the snapshot, by owner.
    pub orphans: BTreeMap<i64, BTreeSet<Arc<str>>>,
    /// Nodes whose ACL id is not in the snapshot's cache: path → (id, record offset).
    /// They are written with an empty ACL; replay may resolve them.
    pub pending_acl: HashMap<Arc<str>, (i64, u64)>,
    last_zxid: i64,
    extended_types: bool,
    data_bytes: u64,
    digest: i64,
}

impl Drop for Table {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            // A temp copy left behind is only disk space; the import reports nothing.
            let _ = std::fs::remove_file(t);
        }
    }
}

/// A source that copies what it reads into a file (the decompressed snapshot).
struct Tee<'a> {
    src: &'a mut dyn SnapshotSource,
    out: std::io::BufWriter<std::fs::File>,
    path: &'a Path,
}

impl SnapshotSource for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ImportError> {
        let n = self.src.read(buf)?;
        self.out
            .write_all(&buf[..n])
            .map_err(|source| ImportError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        Ok(n)
    }

    fn progress(&self) -> (u64, u64) {
        self.src.progress()
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Table {
    /// Parses snapshot `file` (zxid `zxid`) into a table. A compressed one is
    /// decompressed into `temp` (created, and removed with the table).
    pub fn load(
        file: &Path,
        compression: Compression,
        zxid: i64,
        temp: &Path,
        extended_types: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Table, SnapshotSummary), ImportError> {
        let mut src = SnapshotFile::open(file, compression)?;
        if compression == Compression::None {
            let data = std::fs::File::open(file).map_err(io_error(file))?;
            return Table::parse(file, &mut src, data, None, zxid, extended_types, progress);
        }
        let out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)
            .map_err(io_error(temp))?;
        let copy = out.try_clone().map_err(io_error(temp))?;
        let mut tee = Tee {
            src: &mut src,
            out: std::io::BufWriter::with_capacity(TEMP_WRITE_BUFFER_BYTES, copy),
            path: temp,
        };
        let parsed = Table::parse(
            file,
            &mut tee,
            out,
            Some(temp.to_path_buf()),
            zxid,
            extended_types,
            progress,
        );
        let flushed = tee.out.flush().map_err(io_error(temp));
        let parsed = parsed?;
        flushed?;
        Ok(parsed)
    }

    // Long because it reads ZooKeeper's snapshot sections in file order (sessions, ACL
    // cache, nodes, tail) as `Loader::from_source` does, each a short loop.
    fn parse(
        file: &Path,
        src: &mut dyn SnapshotSource,
        data: std::fs::File,
        temp: Option<PathBuf>,
        zxid: i64,
        extended_types: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Table, SnapshotSummary), ImportError> {
        let open_acl = open_acl_unsafe();
        let mut t = Table {
            arena: Arena::default(),
            recs: Chunked(Vec::new()),
            order: Vec::new(),
            acls: vec![open_acl.clone()],
            data,
            temp,
            sessions: Default::default(),
            containers: OrdSet::new(),
            orphans: BTreeMap::new(),
            pending_acl: HashMap::new(),
            last_zxid: zxid,
            extended_types,
            data_bytes: 0,
            digest: 0,
        };
        let mut by_content: HashMap<Arc<[Acl]>, u32> = HashMap::from([(open_acl, 0)]);
        let mut p = SnapshotParser::new(file, src)?;
        let sessions = p.sessions()?;
        for (id, timeout_ms) in &sessions {
            t.sessions.insert(
                *id,
                Session {
                    timeout_ms: *timeout_ms,
                    passwd: zookeeper_session_passwd(*id),
                    ephemerals: Default::default(),
                },
            );
        }
        let mut intern = |acls: &mut Vec<Arc<[Acl]>>, acl: Vec<Acl>| -> u32 {
            let acl: Arc<[Acl]> = Arc::from(acl);
            *by_content.entry(acl.clone()).or_insert_with(|| {
                acls.push(acl);
                (acls.len() - 1) as u32
            })
        };
        let cache: HashMap<i64, u32> = p
            .acl_cache()?
            .into_iter()
            .map(|(id, acl)| (id, intern(&mut t.acls, acl)))
            .collect();
        let mut empty_acl = None;
        // DataTree.deserialize: each node's parent is already in the map. Paths seen so
        // far, by hash (8 B a node while parsing); a collision could only let a corrupt
        // file through to the writer, which refuses a node without its parent.
        let mut seen: std::collections::HashSet<u64, BuildNoHash> = Default::default();
        let mut next_report = PROGRESS_STEP_BYTES;
        while let Some(rec) = p.next_node()? {
            let path: &str = if rec.path.is_empty() { "/" } else { &rec.path };
            if path != "/"
                && (!path.starts_with('/')
                    || path.ends_with('/')
                    || !seen.contains(&path_hash(parent_of(path))))
            {
                return Err(ImportError::MissingParent {
                    file: file.to_path_buf(),
                    offset: rec.offset,
                    path: rec.path,
                });
            }
            seen.insert(path_hash(path));
            let acl = if rec.acl_ref == OPEN_ACL_REF {
                0
            } else if let Some(&a) = cache.get(&rec.acl_ref) {
                a
            } else {
                t.pending_acl
                    .insert(Arc::from(path), (rec.acl_ref, rec.offset));
                *empty_acl.get_or_insert_with(|| intern(&mut t.acls, Vec::new()))
            };
            let stat = node_stat(&rec.stat);
            t.digest = t.digest.wrapping_add(node_digest(path, rec.data, &stat));
            let too_long = |what| ImportError::Write {
                detail: format!("{path}: {what} longer than the format holds"),
            };
            let data_len = match rec.data {
                None => NULL_LEN,
                Some(d) => u32::try_from(d.len())
                    .ok()
                    .filter(|l| *l != NULL_LEN)
                    .ok_or_else(|| too_long("data"))?,
            };
            let path_at = t.arena.push(path);
            t.recs.push(Rec {
                offset: rec.offset,
                path_at,
                stat,
                path_len: u32::try_from(path.len()).map_err(|_| too_long("path"))?,
                data_len,
                acl,
                data_skip: u32::try_from(rec.data_at - rec.offset).map_err(|_| too_long("path"))?,
            });
            let owner = rec.stat.ephemeral_owner;
            match owner_kind(owner, extended_types) {
                OwnerKind::Container => {
                    t.containers.insert(Arc::from(path));
                }
                OwnerKind::Normal => match t.sessions.get_mut(&owner) {
                    Some(s) => {
                        s.ephemerals.insert(Arc::from(path));
                    }
                    None => {
                        t.orphans.entry(owner).or_default().insert(Arc::from(path));
                    }
                },
                // TTL nodes are found again from their stats when the snapshot is loaded.
                OwnerKind::Ttl | OwnerKind::Void => {}
            }
            if p.position() >= next_report {
                let (done, total) = p.source_progress();
                progress(done, total);
                next_report = p.position() + PROGRESS_STEP_BYTES;
            }
        }
        drop(seen);
        let nodes = t.recs.len();
        let dbid = p.dbid;
        let tail = p.finish()?;
        t.sort()?;
        t.add_system_nodes(&mut intern);
        t.data_bytes = t
            .order
            .iter()
            .map(|&r| {
                let r = &t.recs[r as usize];
                let data_len = if r.data_len == NULL_LEN {
                    0
                } else {
                    r.data_len
                };
                u64::from(r.path_len) + u64::from(data_len)
            })
            .sum();
        let (_, total) = src.progress();
        progress(total, total);
        Ok((
            t,
            SnapshotSummary {
                dbid,
                nodes,
                sessions: sessions.len(),
                tail,
            },
        ))
    }

    fn rec_path<'a>(arena: &'a Arena, r: &Rec) -> &'a str {
        arena.get(r.path_at, r.path_len)
    }

    /// Sorts the records by path; of a path seen twice the last record stays and the
    /// others leave the digest.
    fn sort(&mut self) -> Result<(), ImportError> {
        let (arena, recs) = (&self.arena, &self.recs);
        let mut order: Vec<u32> = (0..recs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (pa, pb) = (
                Table::rec_path(arena, &recs[a as usize]),
                Table::rec_path(arena, &recs[b as usize]),
            );
            pa.cmp(pb).then(a.cmp(&b))
        });
        let mut dropped = Vec::new();
        order.dedup_by(|later, earlier| {
            let same = Table::rec_path(arena, &recs[*later as usize])
                == Table::rec_path(arena, &recs[*earlier as usize]);
            if same {
                // Keep the later record in the earlier one's place.
                dropped.push(*earlier);
                *earlier = *later;
            }
            same
        });
        self.order = order;
        let mut buf = Vec::new();
        for r in dropped {
            let rec = self.recs[r as usize];
            let data = self
                .read_data(&rec, &mut buf)
                .map_err(|source| ImportError::Io {
                    path: PathBuf::from("(snapshot data)"),
                    source,
                })?;
            let path = Table::rec_path(&self.arena, &rec);
            self.digest = self.digest.wrapping_sub(node_digest(path, data, &rec.stat));
        }
        Ok(())
    }

    /// The position of `path` in [`Table::order`], or where it would go.
    fn find(&self, path: &str) -> Result<usize, usize> {
        self.order
            .binary_search_by(|&r| Table::rec_path(&self.arena, &self.recs[r as usize]).cmp(path))
    }

    /// Ferrokeeper's system nodes fill in for those the snapshot lacks (as the loader).
    fn add_system_nodes(&mut self, intern: &mut impl FnMut(&mut Vec<Arc<[Acl]>>, Vec<Acl>) -> u32) {
        let system = Tree::new(open_acl_unsafe());
        for path in SYSTEM_PATHS {
            let Err(at) = self.find(path) else {
                continue;
            };
            let Some(node) = system.get(path) else {
                continue;
            };
            let stat = node.stat();
            // Tree::new gives its nodes empty data: nothing to read from the file.
            debug_assert!(node.data().is_some_and(<[u8]>::is_empty));
            let data = node.data().map(|_| &[][..]);
            self.digest = self.digest.wrapping_add(node_digest(path, data, &stat));
            let acl = intern(&mut self.acls, node.acl().to_vec());
            self.order.insert(at, self.recs.len() as u32);
            let path_at = self.arena.push(path);
            self.recs.push(Rec {
                offset: ADDED,
                path_at,
                stat,
                path_len: path.len() as u32,
                data_len: if data.is_none() { NULL_LEN } else { 0 },
                acl,
                data_skip: 0,
            });
        }
    }

    fn read_data<'s>(&self, rec: &Rec, buf: &'s mut Vec<u8>) -> std::io::Result<Option<&'s [u8]>> {
        if rec.data_len == NULL_LEN {
            return Ok(None);
        }
        buf.resize(rec.data_len as usize, 0);
        if rec.data_len > 0 {
            self.data
                .read_exact_at(buf, rec.offset + u64::from(rec.data_skip))?;
        }
        Ok(Some(&buf[..]))
    }

    /// Bytes the table holds on the heap (records, order, paths), for the memory log.
    pub fn heap_bytes(&self) -> usize {
        self.recs.heap_bytes() + self.order.capacity() * 4 + self.arena.heap_bytes()
    }

    fn rec(&self, i: usize) -> &Rec {
        &self.recs[self.order[i] as usize]
    }
}

impl Source for Table {
    fn len(&self) -> usize {
        self.order.len()
    }
    fn path(&self, i: usize) -> &str {
        Table::rec_path(&self.arena, self.rec(i))
    }
    fn stat(&self, i: usize) -> NodeStat {
        self.rec(i).stat
    }
    fn acl(&self, i: usize) -> &Arc<[Acl]> {
        &self.acls[self.rec(i).acl as usize]
    }
    fn data<'s>(&'s self, i: usize, buf: &'s mut Vec<u8>) -> std::io::Result<Option<&'s [u8]>> {
        self.read_data(self.rec(i), buf)
    }
    fn sessions(&self) -> &imbl::HashMap<i64, Session> {
        &self.sessions
    }
    fn containers(&self) -> &OrdSet<Arc<str>> {
        &self.containers
    }
    fn last_zxid(&self) -> i64 {
        self.last_zxid
    }
    fn extended_types(&self) -> bool {
        self.extended_types
    }
    fn data_bytes(&self) -> u64 {
        self.data_bytes
    }
    fn digest(&self) -> i64 {
        self.digest
    }
}
