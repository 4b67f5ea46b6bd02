//! From ZooKeeper's records to ferrokeeper's state: the snapshot's nodes become a
//! [`DataState`], then each logged txn is converted to a [`TxnOp`] and applied with
//! [`commit::apply::apply`](crate::core::apply::apply), the function live commits use.
//!
//! `apply` trusts prep: it panics on a txn that does not fit the state. A ZooKeeper
//! snapshot is *fuzzy* (written while txns kept landing), so replay meets txns that the
//! snapshot already reflects, and ZooKeeper's own replay (`FileTxnSnapLog.processTransaction`
//! → `DataTree.processTxn`) ignores the NoNode and NodeExists that result. This module
//! reproduces exactly that tolerance by looking at the state *before* calling `apply`:
//!
//! | txn                 | state found              | ZooKeeper (`DataTree`)                     | here |
//! |---------------------|--------------------------|--------------------------------------------|------|
//! | create              | parent missing           | NoNode, ignored                            | skipped |
//! | create              | node present             | NodeExists, ignored; for `OpCode.create` only, the parent's cversion/pzxid move forward to the txn's (`setCversionPzxid`) | same, on the tree directly |
//! | delete              | parent missing           | NoNode, ignored                            | skipped |
//! | delete              | node missing             | parent's pzxid moves forward, NoNode ignored (`deleteNode`) | same, on the tree directly |
//! | setData, setACL     | node missing             | NoNode, ignored                            | skipped |
//! | createSession       | session present          | timeout replaced                           | `apply`, ephemerals kept |
//! | closeSession        | —                        | deletes the txn's paths, then the session's remaining ephemerals, ignoring NoNode (`killSession`) | same, each delete as above |
//! | multi               | —                        | each sub-txn on its own, errors ignored    | each sub-op on its own |
//!
//! The two "directly" rows are the only state changes made outside `apply`; no live txn
//! can ask for them, so `apply` does not offer them. Where ZooKeeper's replay would
//! damage its own tree (a delete or closeSession removing a node that still has
//! children, which only a corrupt or hand-made log asks for), the import stops with
//! [`ImportError::ReplayConflict`] instead.
//!
//! Two more ZooKeeper rules are kept:
//! - Ephemerals are indexed by owner even when the owner has no session (a fuzzy
//!   snapshot can hold a session's nodes but not yet the session; its createSession is
//!   then replayed). Such *orphans* join their session when it is created; those still
//!   orphaned at the end are deleted, as `ZooKeeperServer.loadData` kills "dead sessions".
//! - A node whose ACL id is missing from the snapshot's cache (a create whose ACL
//!   entered the cache after the cache was written) takes the ACL of the replayed create
//!   or setACL that the fuzzy snapshot already reflected; one left unresolved is an error.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::records::{Acl, StatPersisted, TxnHeader};

use super::error::ImportError;
use super::format::{InMemory, SnapshotSource, OPEN_ACL_REF};
use super::password::zookeeper_session_passwd;
use super::snapshot::{SnapshotParser, SnapshotTail};
use super::txnlog::LogTxn;
use crate::core::apply::{apply, Change};
use crate::core::codec::{CreateKind, TxnRecord};
use crate::core::path::{name as name_of, parent as parent_of};
use crate::core::sequencer::open_acl_unsafe;
use crate::core::state::{
    owner_kind, DataState, OwnerKind, Session, CONTAINER_OWNER, EXTENDED_MASK, TTL_MAX_MS,
};
use crate::core::tree::{Node, NodeStat};
use crate::core::txn::{Txn, TxnOp};

/// The nodes `Tree::new` creates, parents first. A snapshot's own versions replace them.
pub(crate) const SYSTEM_PATHS: [&str; 4] =
    ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// How often (in snapshot bytes) the snapshot loader reports progress.
const PROGRESS_STEP_BYTES: u64 = 1 << 20;
/// The zxid the loader gives its tree writes. An entry's zxid matters only when a tree
/// is rebased on a newer snapshot, which an import never does.
const NO_REBASE: i64 = 0;

/// What the snapshot held, for the report.
#[derive(Debug, Clone)]
pub struct SnapshotSummary {
    /// File header dbid.
    pub dbid: i64,
    /// Nodes read (the root included).
    pub nodes: usize,
    /// Sessions read.
    pub sessions: usize,
    /// The blocks after the nodes.
    pub tail: SnapshotTail,
}

/// The state under construction and the bookkeeping replay needs beside it.
pub struct Loader {
    /// The state being built.
    pub state: DataState,
    extended_types: bool,
    /// Every distinct ACL once, so nodes with equal ACLs share one allocation.
    acls: HashSet<Arc<[Acl]>>,
    /// Ephemeral nodes whose owner has no session (yet), by owner.
    orphans: BTreeMap<i64, BTreeSet<Arc<str>>>,
    /// Nodes whose snapshot ACL id was not in the cache: path → (id, record offset).
    pending_acl: HashMap<Arc<str>, (i64, u64)>,
    snapshot_file: PathBuf,
    changes: Vec<Change>,
}

impl Loader {
    /// Parses a decompressed snapshot held in memory into a state. `progress(done,
    /// total)` is called every MiB or so with snapshot byte counts.
    pub fn from_snapshot(
        file: &Path,
        bytes: &[u8],
        extended_types: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Loader, SnapshotSummary), ImportError> {
        Loader::from_source(file, &mut InMemory::new(bytes), extended_types, progress)
    }

    // Long because it reads ZooKeeper's snapshot sections in file order (sessions,
    // ACL cache, nodes, digest), each a short loop.
    /// Parses a snapshot read from `src` into a state, one node record at a time.
    /// `progress(done, total)` is called every MiB or so with the source's progress.
    pub fn from_source(
        file: &Path,
        src: &mut dyn SnapshotSource,
        extended_types: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Loader, SnapshotSummary), ImportError> {
        let open_acl = open_acl_unsafe();
        let mut state = DataState::new(open_acl.clone(), extended_types);
        // Set ferrokeeper's system nodes aside: the snapshot has its own (with their real
        // stats and ACLs); ours only fill in for ones it lacks.
        let system: Vec<(Arc<str>, Node)> = SYSTEM_PATHS
            .iter()
            .map(|p| {
                let path: Arc<str> = Arc::from(*p);
                let node = state
                    .tree
                    .get(p)
                    .expect("Tree::new creates the system nodes")
                    .to_node();
                state.tree.remove(&path, NO_REBASE);
                (path, node)
            })
            .collect();
        let mut loader = Loader {
            state,
            extended_types,
            acls: HashSet::from([open_acl.clone()]),
            orphans: BTreeMap::new(),
            pending_acl: HashMap::new(),
            snapshot_file: file.to_path_buf(),
            changes: Vec::new(),
        };

        let mut p = SnapshotParser::new(file, src)?;
        let sessions = p.sessions()?;
        for (id, timeout_ms) in &sessions {
            loader.state.sessions.insert(
                *id,
                Session {
                    timeout_ms: *timeout_ms,
                    passwd: zookeeper_session_passwd(*id),
                    ephemerals: Default::default(),
                },
            );
        }
        let cache: HashMap<i64, Arc<[Acl]>> = p
            .acl_cache()?
            .into_iter()
            .map(|(id, acl)| (id, loader.intern(acl)))
            .collect();

        let mut nodes = 0usize;
        let mut digest = 0i64;
        let mut next_report = PROGRESS_STEP_BYTES;
        while let Some(rec) = p.next_node()? {
            // DataTree.deserialize: the root is stored as "", and each node's parent must
            // already be in the map (the walk is depth first).
            let path: Arc<str> = if rec.path.is_empty() {
                Arc::from("/")
            } else {
                Arc::from(rec.path.as_str())
            };
            let is_root = &*path == "/";
            if !is_root
                && (!path.starts_with('/')
                    || path.ends_with('/')
                    || loader.state.tree.get(parent_of(&path)).is_none())
            {
                return Err(ImportError::MissingParent {
                    file: file.to_path_buf(),
                    offset: rec.offset,
                    path: rec.path,
                });
            }
            let acl = if rec.acl_ref == OPEN_ACL_REF {
                open_acl.clone()
            } else if let Some(acl) = cache.get(&rec.acl_ref) {
                acl.clone()
            } else {
                loader
                    .pending_acl
                    .insert(path.clone(), (rec.acl_ref, rec.offset));
                Arc::from(Vec::new())
            };
            // A path seen twice (never written by ZooKeeper) keeps the children found so
            // far, and its first version leaves the digest.
            let (children, replaced) = match loader.state.tree.get(&path) {
                Some(n) => (n.to_node().children, n.digest(&path)),
                None => (Default::default(), 0),
            };
            let node = Node {
                data: rec.data.map(Arc::from),
                acl,
                stat: node_stat(&rec.stat),
                children,
                digest: 0,
            };
            let new = loader.state.tree.put(path.clone(), node, NO_REBASE);
            digest = digest.wrapping_add(new).wrapping_sub(replaced);
            if !is_root {
                loader.link(&path);
            }
            loader.index(&path, rec.stat.ephemeral_owner);
            nodes += 1;
            if p.position() >= next_report {
                let (done, total) = p.source_progress();
                progress(done, total);
                next_report = p.position() + PROGRESS_STEP_BYTES;
            }
        }
        let dbid = p.dbid;
        let tail = p.finish()?;
        for (path, mut node) in system {
            if loader.state.tree.get(&path).is_none() {
                node.children = Default::default();
                digest = digest.wrapping_add(loader.state.tree.put(path.clone(), node, NO_REBASE));
                if &*path != "/" {
                    loader.link(&path);
                }
            }
        }
        // A node's digest does not involve its children, so the sum kept node by node
        // above is the tree's (`digest::of_tree`), without the sorted list of every node
        // that a pass over the tree builds (40-50 B per znode: 0.5 GB at 10M, issue #13).
        // Replay keeps it from here.
        debug_assert_eq!(digest, crate::core::digest::of_tree(&loader.state.tree));
        loader.state.digest = digest;
        // As ZooKeeper's snapshot load: quota index rebuilt, usage recomputed (outside
        // the digest: the quota nodes are under /zookeeper/).
        crate::core::quota::setup(&mut loader.state);
        let (_, total) = src.progress();
        progress(total, total);
        Ok((
            loader,
            SnapshotSummary {
                dbid,
                nodes,
                sessions: sessions.len(),
                tail,
            },
        ))
    }

    /// A loader that replays onto `state` (a snapshot written from ZooKeeper's and
    /// loaded, see [`super::table`]), with the snapshot's ephemerals that have no
    /// session (`orphans`) and its nodes whose ACL id was not in the cache
    /// (`pending_acl`: path → (id, record offset)).
    pub fn on_state(
        file: &Path,
        state: DataState,
        orphans: BTreeMap<i64, BTreeSet<Arc<str>>>,
        pending_acl: HashMap<Arc<str>, (i64, u64)>,
    ) -> Loader {
        Loader {
            extended_types: state.extended_types,
            state,
            acls: HashSet::from([open_acl_unsafe()]),
            orphans,
            pending_acl,
            snapshot_file: file.to_path_buf(),
            changes: Vec::new(),
        }
    }

    /// Applies one logged txn with ZooKeeper's replay tolerance (see the module docs).
    pub fn replay(&mut self, file: &Path, t: &LogTxn) -> Result<(), ImportError> {
        let h = &t.header;
        match &t.op {
            TxnRecord::CreateSession { timeout_ms, .. } => self.create_session(h, *timeout_ms),
            TxnRecord::CloseSession { paths } => self.close_session(file, t, paths.as_deref())?,
            TxnRecord::Multi(ops) if ops.iter().any(|o| matches!(o, TxnRecord::Error { .. })) => {
                // DataTree.processTxn: in a failed multi every sub-txn becomes an error
                // (Ok before the failing one, RuntimeInconsistency after it); nothing
                // changes.
                let mut failed = false;
                let errors = ops
                    .iter()
                    .map(|o| match o {
                        TxnRecord::Error { err } => {
                            failed = true;
                            TxnOp::Error {
                                err: error_code(*err),
                            }
                        }
                        _ if failed => TxnOp::Error {
                            err: ErrorCode::RuntimeInconsistency,
                        },
                        _ => TxnOp::Error { err: ErrorCode::Ok },
                    })
                    .collect();
                self.apply(h, TxnOp::Multi(errors));
            }
            TxnRecord::Multi(ops) => {
                // Sub-ops one by one, so each gets the tolerance a lone txn gets; `apply`
                // applies a `TxnOp::Multi` the same way, op after op with one zxid.
                for op in ops {
                    self.replay_op(file, t, op)?;
                }
            }
            op => self.replay_op(file, t, op)?,
        }
        self.state.end_txn(h.zxid);
        Ok(())
    }

    // Long because it is one match with an arm per ZooKeeper txn type.
    fn replay_op(&mut self, file: &Path, t: &LogTxn, op: &TxnRecord) -> Result<(), ImportError> {
        let h = &t.header;
        match op {
            TxnRecord::Create {
                kind,
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            } => {
                if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
                    return Err(conflict(
                        file,
                        t,
                        format!("create of invalid path {path:?}"),
                    ));
                }
                let parent = parent_of(path);
                let Some(p) = self.state.tree.get(parent) else {
                    return Ok(()); // NoNode: ignored in replay.
                };
                // Java's int arithmetic wraps; so does the sequence counter it feeds.
                let parent_cversion = if *parent_cversion == -1 {
                    p.stat().cversion.wrapping_add(1)
                } else {
                    *parent_cversion
                };
                if p.has_child(name_of(path)) {
                    // NodeExists: the snapshot already has this node.
                    let parent_behind = parent_cversion > p.stat().cversion;
                    if self.pending_acl.remove(path.as_str()).is_some() {
                        let acl = self.intern(acl.clone());
                        self.state.update_node(path, NO_REBASE, |n| n.acl = acl);
                    }
                    if *kind == CreateKind::Create && parent_behind {
                        self.state.update_node(parent, NO_REBASE, |p| {
                            p.stat.cversion = parent_cversion;
                            p.stat.pzxid = h.zxid;
                        });
                    }
                    return Ok(());
                }
                let ephemeral_owner = match kind {
                    CreateKind::Ttl(ttl) => {
                        if !(1..=TTL_MAX_MS).contains(ttl) {
                            return Err(conflict(file, t, format!("TTL {ttl} out of range")));
                        }
                        EXTENDED_MASK | ttl
                    }
                    CreateKind::Container => CONTAINER_OWNER,
                    CreateKind::Create | CreateKind::Create2 if *ephemeral => h.client_id,
                    CreateKind::Create | CreateKind::Create2 => 0,
                };
                let path: Arc<str> = Arc::from(path.as_str());
                let acl = self.intern(acl.clone());
                self.apply(
                    h,
                    TxnOp::Create {
                        path: path.clone(),
                        data: data.as_deref().map(Arc::from),
                        acl,
                        ephemeral_owner,
                        parent_cversion,
                    },
                );
                if owner_kind(ephemeral_owner, self.extended_types) == OwnerKind::Normal
                    && !self.state.sessions.contains_key(&ephemeral_owner)
                {
                    self.orphans
                        .entry(ephemeral_owner)
                        .or_default()
                        .insert(path);
                }
            }
            TxnRecord::Delete { path } => self.delete(Some((file, t)), h.zxid, h.time, path)?,
            TxnRecord::SetData {
                path,
                data,
                version,
            } => {
                let path = root_alias(path);
                if self.state.tree.get(path).is_some() {
                    self.apply(
                        h,
                        TxnOp::SetData {
                            path: Arc::from(path),
                            data: data.as_deref().map(Arc::from),
                            version: *version,
                        },
                    );
                }
            }
            TxnRecord::SetAcl { path, acl, version } => {
                let path = root_alias(path);
                if self.state.tree.get(path).is_some() {
                    self.pending_acl.remove(path);
                    let acl = self.intern(acl.clone());
                    self.apply(
                        h,
                        TxnOp::SetAcl {
                            path: Arc::from(path),
                            acl,
                            aversion: *version,
                        },
                    );
                }
            }
            TxnRecord::Check { path } => self.apply(
                h,
                TxnOp::Check {
                    path: Arc::from(path.as_str()),
                },
            ),
            TxnRecord::Error { err } => self.apply(
                h,
                TxnOp::Error {
                    err: error_code(*err),
                },
            ),
            TxnRecord::CreateSession { .. }
            | TxnRecord::CloseSession { .. }
            | TxnRecord::Multi(_) => {
                // The log decoder never puts these inside a multi.
                return Err(conflict(
                    file,
                    t,
                    "session or multi txn inside a multi".into(),
                ));
            }
        }
        Ok(())
    }

    /// `FileTxnSnapLog.processTransaction` puts the session (a known one gets the new
    /// timeout); its ephemerals, and any orphans it owns, stay indexed under it.
    fn create_session(&mut self, h: &TxnHeader, timeout_ms: i32) {
        let id = h.client_id;
        let mut ephemerals = self
            .state
            .sessions
            .get(&id)
            .map(|s| s.ephemerals.clone())
            .unwrap_or_default();
        if let Some(orphans) = self.orphans.remove(&id) {
            ephemerals.extend(orphans);
        }
        self.apply(
            h,
            TxnOp::CreateSession {
                session_id: id,
                timeout_ms,
                passwd: zookeeper_session_passwd(id),
            },
        );
        if let Some(s) = self.state.sessions.get_mut(&id) {
            s.ephemerals = ephemerals;
        }
    }

    /// `DataTree.killSession`: the txn's paths (3.6+) and the owner's indexed ephemerals
    /// are deleted, NoNode ignored. `apply(CloseSession)` deletes the ones indexed under
    /// the session; the rest (orphans, and listed paths it does not own) go first, at
    /// the same zxid, so the order does not matter.
    fn close_session(
        &mut self,
        file: &Path,
        t: &LogTxn,
        paths: Option<&[String]>,
    ) -> Result<(), ImportError> {
        let h = &t.header;
        let own = self
            .state
            .sessions
            .get(&h.client_id)
            .map(|s| s.ephemerals.clone())
            .unwrap_or_default();
        let mut others: BTreeSet<Arc<str>> = self.orphans.remove(&h.client_id).unwrap_or_default();
        for p in paths.unwrap_or_default() {
            if !own.contains(p.as_str()) {
                others.insert(Arc::from(p.as_str()));
            }
        }
        for path in &others {
            self.delete(Some((file, t)), h.zxid, h.time, path)?;
        }
        // `apply` deletes the session's ephemerals without looking for children (prep
        // never lets an ephemeral have any); a log that gave one children is refused
        // here rather than leave those children without a parent.
        if let Some(p) = own
            .iter()
            .find(|p| self.state.tree.get(p).is_some_and(|n| n.has_children()))
        {
            return Err(conflict(
                file,
                t,
                format!("closeSession would delete {p}, which has children"),
            ));
        }
        self.apply(
            h,
            TxnOp::CloseSession {
                session_id: h.client_id,
            },
        );
        Ok(())
    }

    /// `DataTree.deleteNode` as replay sees it. `origin` names the txn for errors; `None`
    /// for the dead-session cleanup after replay.
    fn delete(
        &mut self,
        origin: Option<(&Path, &LogTxn)>,
        zxid: i64,
        time_ms: i64,
        path: &str,
    ) -> Result<(), ImportError> {
        let fail = |detail: String| match origin {
            Some((file, t)) => conflict(file, t, detail),
            None => ImportError::ReplayConflict {
                file: PathBuf::new(),
                offset: 0,
                zxid,
                detail,
            },
        };
        if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
            return Err(fail(format!("delete of invalid path {path:?}")));
        }
        let parent = parent_of(path);
        let Some(p) = self.state.tree.get(parent) else {
            return Ok(()); // NoNode: ignored in replay.
        };
        let Some(node) = self.state.tree.get(path) else {
            // The child may be gone already (fuzzy snapshot), but ZooKeeper still moves
            // the parent's pzxid forward before it reports NoNode.
            if zxid > p.stat().pzxid {
                self.state
                    .update_node(parent, NO_REBASE, |p| p.stat.pzxid = zxid);
            }
            return Ok(());
        };
        if node.has_children() {
            return Err(fail(format!(
                "delete of {path}, which has {} children",
                node.num_children()
            )));
        }
        let owner = node.stat().ephemeral_owner;
        let path: Arc<str> = Arc::from(path);
        let txn = Txn {
            zxid,
            time_ms,
            session_id: origin.map_or(0, |(_, t)| t.header.client_id),
            cxid: origin.map_or(0, |(_, t)| t.header.cxid),
            op: TxnOp::Delete { path: path.clone() },
        };
        self.changes.clear();
        apply(
            &mut self.state,
            &txn,
            self.extended_types,
            &mut self.changes,
        );
        if let Some(set) = self.orphans.get_mut(&owner) {
            set.remove(&path);
            if set.is_empty() {
                self.orphans.remove(&owner);
            }
        }
        self.pending_acl.remove(&path);
        Ok(())
    }

    /// `ZooKeeperServer.loadData`: sessions that own ephemerals but have no timeout entry
    /// are dead, and their nodes are deleted at the last zxid. Returns how many.
    pub fn remove_dead_session_ephemerals(&mut self) -> Result<usize, ImportError> {
        let zxid = self.state.last_zxid;
        let doomed: Vec<Arc<str>> = self.orphans.values().flatten().cloned().collect();
        for path in &doomed {
            tracing::info!(path = %path, "deleting an ephemeral of a session that no longer exists");
            self.delete(None, zxid, 0, path)?;
        }
        self.state.last_zxid = zxid;
        Ok(doomed.len())
    }

    /// The finished state; fails if a node's ACL never resolved.
    pub fn into_state(self) -> Result<DataState, ImportError> {
        if let Some((path, (acl_ref, offset))) = self
            .pending_acl
            .iter()
            .min_by_key(|(_, (_, offset))| *offset)
        {
            return Err(ImportError::UnknownAcl {
                file: self.snapshot_file.clone(),
                offset: *offset,
                path: path.to_string(),
                acl_ref: *acl_ref,
            });
        }
        Ok(self.state)
    }

    fn apply(&mut self, h: &TxnHeader, op: TxnOp) {
        let txn = Txn {
            zxid: h.zxid,
            time_ms: h.time,
            session_id: h.client_id,
            cxid: h.cxid,
            op,
        };
        // Watches are not a concern of an import: the changes are dropped.
        self.changes.clear();
        apply(
            &mut self.state,
            &txn,
            self.extended_types,
            &mut self.changes,
        );
    }

    /// Adds `path` (not the root) to its parent's children.
    fn link(&mut self, path: &Arc<str>) {
        let name: Arc<str> = Arc::from(name_of(path));
        self.state
            .tree
            .update_children(parent_of(path), NO_REBASE, |c| {
                c.insert(name);
            });
    }

    /// Files a loaded node under the index its owner calls for (`DataTree.deserialize`).
    fn index(&mut self, path: &Arc<str>, owner: i64) {
        match owner_kind(owner, self.extended_types) {
            OwnerKind::Container => {
                self.state.containers.insert(path.clone());
            }
            OwnerKind::Ttl => {
                self.state.ttls.insert(path.clone());
            }
            OwnerKind::Normal => match self.state.sessions.get_mut(&owner) {
                Some(s) => {
                    s.ephemerals.insert(path.clone());
                }
                None => {
                    self.orphans.entry(owner).or_default().insert(path.clone());
                }
            },
            OwnerKind::Void => {}
        }
    }

    fn intern(&mut self, acl: Vec<Acl>) -> Arc<[Acl]> {
        if let Some(a) = self.acls.get(acl.as_slice()) {
            return a.clone();
        }
        let a: Arc<[Acl]> = Arc::from(acl);
        self.acls.insert(a.clone());
        a
    }
}

pub(crate) fn node_stat(s: &StatPersisted) -> NodeStat {
    NodeStat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        pzxid: s.pzxid,
    }
}

/// ZooKeeper's node map holds the root under both "" and "/".
fn root_alias(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// An `ErrorTxn` code; one this protocol does not define reads as SystemError (the
/// code is kept nowhere in the state, so nothing depends on it).
fn error_code(err: i32) -> ErrorCode {
    ErrorCode::from_i32(err).unwrap_or(ErrorCode::SystemError)
}

fn conflict(file: &Path, t: &LogTxn, detail: String) -> ImportError {
    ImportError::ReplayConflict {
        file: file.to_path_buf(),
        offset: t.offset,
        zxid: t.header.zxid,
        detail,
    }
}
