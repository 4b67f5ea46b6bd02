//! The independent model: a plain map path → (data, versions, owner, ACL) plus the set
//! of live sessions, written only from what the server acknowledged (replies, and the
//! txns of acknowledged batches that no client asked for: session expiry and reaping).
//! It predicts each write's result from ZooKeeper's rules, in the order
//! `PrepRequestProcessor` checks them, without sharing any code with `core::prep`.

use std::collections::{BTreeMap, BTreeSet};

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::records::Acl;
use ferrokeeper_net::request::{CreateOp, MultiOp, Request};

use crate::core::apply::{ChangeKind, Outcome};
use crate::core::state::{CONTAINER_OWNER, EXTENDED_MASK};

/// One znode as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MNode {
    /// Data (`None`: null).
    pub data: Option<Vec<u8>>,
    /// Data version.
    pub version: i32,
    /// ACL version.
    pub aversion: i32,
    /// Raw `ephemeralOwner` (session, container marker or TTL encoding).
    pub owner: i64,
    /// ACL.
    pub acl: Vec<Acl>,
    /// Stored cversion: creates under it so far (the sequence counter).
    pub cversion: i32,
}

/// The model. Paths under `/zookeeper` and `/` itself are the server's and not modelled.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Nodes by path.
    pub nodes: BTreeMap<String, MNode>,
    /// Live sessions.
    pub sessions: BTreeSet<i64>,
    /// The watch changes applied since the caller last took them, in order.
    pub changes: Vec<(ChangeKind, String)>,
    /// The root's stored cversion (the root is not in `nodes`).
    pub root_cversion: i32,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn acl_valid(acl: &[Acl]) -> bool {
    !acl.is_empty()
        && acl.iter().all(|a| {
            (a.id.scheme == "world" && a.id.id == "anyone")
                || (a.id.scheme == "ip" && a.id.id == "127.0.0.1")
        })
}

/// The owner a create gives its node (what `CreateMode` and the opcode decide).
fn owner_of(c: &CreateOp, session: i64) -> i64 {
    match c.flags {
        1 | 3 => session,
        4 => CONTAINER_OWNER,
        5 | 6 => EXTENDED_MASK | c.ttl,
        _ => 0,
    }
}

impl Model {
    fn exists(&self, path: &str) -> bool {
        path == "/" || self.nodes.contains_key(path)
    }

    /// The path a create makes: a sequential one appends the parent's counter.
    fn final_path(&self, c: &CreateOp) -> String {
        if matches!(c.flags, 2 | 3 | 6) {
            let p = parent(&c.path);
            let counter = if p == "/" {
                self.root_cversion
            } else {
                self.nodes.get(p).map_or(0, |n| n.cversion)
            };
            format!("{}{counter:010}", c.path)
        } else {
            c.path.clone()
        }
    }

    fn bump_cversion(&mut self, parent: &str) {
        if parent == "/" {
            self.root_cversion += 1;
        } else if let Some(n) = self.nodes.get_mut(parent) {
            n.cversion += 1;
        }
    }

    /// Whether `path` has children.
    pub fn has_children(&self, path: &str) -> bool {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    /// Names of `path`'s children, sorted.
    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| {
                let rest = &p[prefix.len()..];
                (!rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    fn version_ok(current: i32, expected: i32) -> bool {
        expected == -1 || expected == current
    }

    fn predict_create(&self, c: &CreateOp, session: i64) -> Result<(), ErrorCode> {
        if !acl_valid(&c.acl) {
            return Err(ErrorCode::InvalidAcl);
        }
        let p = parent(&c.path);
        if !self.exists(p) {
            return Err(ErrorCode::NoNode);
        }
        // A sequential name may collide too (a node created earlier under that name),
        // and then ZooKeeper answers NodeExists as for any other name.
        if self.exists(&self.final_path(c)) {
            return Err(ErrorCode::NodeExists);
        }
        if let Some(pn) = self.nodes.get(p) {
            let kind = crate::core::state::owner_kind(pn.owner, true);
            if kind == crate::core::state::OwnerKind::Normal {
                return Err(ErrorCode::NoChildrenForEphemerals);
            }
        }
        let _ = session;
        Ok(())
    }

    fn predict_one(&self, req: &MultiOp, session: i64) -> Result<(), ErrorCode> {
        if !self.sessions.contains(&session) {
            return Err(ErrorCode::SessionExpired);
        }
        match req {
            MultiOp::Create(c) => self.predict_create(c, session),
            MultiOp::Delete(d) => {
                if !self.exists(parent(&d.path)) {
                    return Err(ErrorCode::NoNode);
                }
                let n = self.nodes.get(&d.path).ok_or(ErrorCode::NoNode)?;
                if !Self::version_ok(n.version, d.version) {
                    return Err(ErrorCode::BadVersion);
                }
                if self.has_children(&d.path) {
                    return Err(ErrorCode::NotEmpty);
                }
                Ok(())
            }
            MultiOp::SetData(s) => {
                let n = self.nodes.get(&s.path).ok_or(ErrorCode::NoNode)?;
                if !Self::version_ok(n.version, s.version) {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(())
            }
            MultiOp::Check(c) => {
                let n = self.nodes.get(&c.path).ok_or(ErrorCode::NoNode)?;
                if !Self::version_ok(n.version, c.version) {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(())
            }
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::Unimplemented),
        }
    }

    /// Applies one successful op, with its outcome (which names a sequential node).
    fn apply_one(&mut self, req: &MultiOp, session: i64, out: &Outcome) -> Result<(), String> {
        match (req, out) {
            (MultiOp::Create(c), Outcome::Created { path, .. } | Outcome::CreatedPlain(path)) => {
                let path = path.to_string();
                let want = self.final_path(c);
                if path != want {
                    return Err(format!(
                        "create of {} made {path}, model expects {want}",
                        c.path
                    ));
                }
                self.bump_cversion(parent(&path).to_string().as_str());
                if self.nodes.contains_key(&path) {
                    return Err(format!("create made {path}, which the model already has"));
                }
                self.changes.push((ChangeKind::Created, path.clone()));
                self.nodes.insert(
                    path,
                    MNode {
                        data: c.data.0.clone(),
                        version: 0,
                        aversion: 0,
                        owner: owner_of(c, session),
                        acl: dedup(&c.acl),
                        cversion: 0,
                    },
                );
            }
            (MultiOp::Delete(d), Outcome::Deleted) => {
                self.nodes.remove(&d.path);
                self.changes.push((ChangeKind::Deleted, d.path.clone()));
            }
            (MultiOp::SetData(s), Outcome::DataSet(stat)) => {
                let n = self
                    .nodes
                    .get_mut(&s.path)
                    .ok_or_else(|| format!("setData of {} the model lacks", s.path))?;
                // checkAndIncVersion: the next version skips -1 (ZOOKEEPER-4743).
                let next = match n.version.wrapping_add(1) {
                    -1 => 0,
                    v => v,
                };
                if stat.version != next {
                    return Err(format!(
                        "setData {}: version {} in the reply, model expects {next}",
                        s.path, stat.version
                    ));
                }
                n.version = next;
                n.data = s.data.0.clone();
                self.changes.push((ChangeKind::DataChanged, s.path.clone()));
            }
            (MultiOp::Check(_), Outcome::Checked) => {}
            (req, out) => return Err(format!("{req:?} answered {out:?}")),
        }
        Ok(())
    }

    /// Checks the server's `outcome` for a client's write against the model's
    /// prediction, then applies it. `Err` describes a disagreement.
    pub fn write(&mut self, req: &Request, session: i64, outcome: &Outcome) -> Result<(), String> {
        let single = |op: MultiOp| Some(op);
        let as_multi = match req {
            Request::Create(c) => single(MultiOp::Create(c.clone())),
            Request::Delete(d) => single(MultiOp::Delete(d.clone())),
            Request::SetData(s) => single(MultiOp::SetData(s.clone())),
            Request::Check(c) => single(MultiOp::Check(c.clone())),
            _ => None,
        };
        if let Some(op) = as_multi {
            let predicted = self.predict_one(&op, session);
            return match (predicted, outcome) {
                (Err(want), Outcome::Error(got)) if want == *got => Ok(()),
                (Ok(()), out) if !matches!(out, Outcome::Error(_)) => {
                    self.apply_one(&op, session, out)
                }
                (want, got) => Err(format!(
                    "{req:?}: model predicts {want:?}, server answered {got:?}"
                )),
            };
        }
        match req {
            Request::SetAcl(s) => {
                let predicted = if !self.sessions.contains(&session) {
                    Err(ErrorCode::SessionExpired)
                } else if !acl_valid(&s.acl) {
                    Err(ErrorCode::InvalidAcl)
                } else {
                    match self.nodes.get(&s.path) {
                        None => Err(ErrorCode::NoNode),
                        Some(n) if !Self::version_ok(n.aversion, s.version) => {
                            Err(ErrorCode::BadVersion)
                        }
                        Some(_) => Ok(()),
                    }
                };
                match (predicted, outcome) {
                    (Err(want), Outcome::Error(got)) if want == *got => Ok(()),
                    (Ok(()), Outcome::AclSet(stat)) => {
                        let n = self.nodes.get_mut(&s.path).expect("predicted present");
                        n.aversion += 1;
                        n.acl = dedup(&s.acl);
                        if stat.aversion != n.aversion || stat.version != n.version {
                            return Err(format!("setACL {}: stat {stat:?}", s.path));
                        }
                        Ok(())
                    }
                    (want, got) => Err(format!(
                        "{req:?}: model predicts {want:?}, server answered {got:?}"
                    )),
                }
            }
            Request::Multi(ops) => self.multi(ops, session, outcome),
            Request::CloseSession => match outcome {
                Outcome::SessionClosed => {
                    self.close_session(session);
                    Ok(())
                }
                other => Err(format!("closeSession answered {other:?}")),
            },
            other => Err(format!("the workload sent an unexpected write {other:?}")),
        }
    }

    fn multi(&mut self, ops: &[MultiOp], session: i64, outcome: &Outcome) -> Result<(), String> {
        let Outcome::Multi(results) = outcome else {
            return Err(format!("multi answered {outcome:?}"));
        };
        if results.len() != ops.len() {
            return Err(format!(
                "multi of {} ops has {} results",
                ops.len(),
                results.len()
            ));
        }
        // First the prediction alone: which op fails first, if any (a sequential
        // create's name is not known yet; a placeholder stands in for it).
        let mut scratch = self.clone();
        let mut failing = None;
        for (i, op) in ops.iter().enumerate() {
            match scratch.predict_one(op, session) {
                Ok(()) => {
                    let synthetic = scratch.synthetic_outcome(op);
                    scratch.apply_one(op, session, &synthetic)?;
                }
                Err(want) => {
                    failing = Some((i, want));
                    break;
                }
            }
        }
        if let Some((i, want)) = failing {
            // ZooKeeper's failed multi: Ok before the failing op, its code, then
            // RuntimeInconsistency.
            for (j, r) in results.iter().enumerate() {
                let expect = match j.cmp(&i) {
                    std::cmp::Ordering::Less => ErrorCode::Ok,
                    std::cmp::Ordering::Equal => want,
                    std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                };
                if *r != Outcome::Error(expect) {
                    return Err(format!(
                        "failed multi (op {i} {:?}: {want:?}): result {j} is {r:?}, expected {expect:?} ({results:?})",
                        ops[i]
                    ));
                }
            }
            return Ok(());
        }
        let mut scratch = self.clone();
        for (i, (op, r)) in ops.iter().zip(results).enumerate() {
            if matches!(r, Outcome::Error(_)) {
                return Err(format!(
                    "multi op {i} {op:?}: model predicts success, server answered {r:?} ({results:?})"
                ));
            }
            scratch.apply_one(op, session, r)?;
        }
        *self = scratch;
        Ok(())
    }

    /// The outcome the model expects for an op it predicts to succeed, with a
    /// placeholder name for a sequential create.
    fn synthetic_outcome(&self, op: &MultiOp) -> Outcome {
        match op {
            MultiOp::Create(c) => Outcome::CreatedPlain(self.final_path(c).into()),
            MultiOp::Delete(_) => Outcome::Deleted,
            MultiOp::SetData(s) => {
                let version =
                    self.nodes
                        .get(&s.path)
                        .map_or(0, |n| match n.version.wrapping_add(1) {
                            -1 => 0,
                            v => v,
                        });
                Outcome::DataSet(ferrokeeper_net::records::Stat {
                    version,
                    ..Default::default()
                })
            }
            _ => Outcome::Checked,
        }
    }

    /// A session ends (closed or expired): it and its ephemerals go.
    pub fn close_session(&mut self, session: i64) {
        self.sessions.remove(&session);
        for p in self.ephemerals_of(session) {
            self.changes.push((ChangeKind::Deleted, p));
        }
        self.nodes.retain(|_, n| n.owner != session);
    }

    /// Paths a close of `session` deletes, sorted.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.owner == session)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Compares the model with `state`: the same modelled nodes, each with the same
    /// data, versions, owner and ACL, and the same sessions.
    pub fn diff(&self, state: &crate::core::state::DataState) -> Option<String> {
        let mut seen = 0usize;
        for (path, n) in state.tree.sorted_nodes() {
            if path == "/" || path == "/zookeeper" || path.starts_with("/zookeeper/") {
                continue;
            }
            seen += 1;
            let Some(m) = self.nodes.get(path) else {
                return Some(format!("the tree has {path}, the model does not"));
            };
            let s = n.stat();
            let data = n.data().map(<[u8]>::to_vec);
            if data != m.data
                || s.version != m.version
                || s.aversion != m.aversion
                || s.ephemeral_owner != m.owner
                || s.cversion != m.cversion
                || n.acl()[..] != m.acl[..]
            {
                return Some(format!(
                    "{path}: tree has data {:?} v{} av{} cv{} owner 0x{:x} acl {:?}; model {m:?}",
                    data,
                    s.version,
                    s.aversion,
                    s.cversion,
                    { s.ephemeral_owner },
                    n.acl()
                ));
            }
        }
        if seen != self.nodes.len() {
            let missing: Vec<&String> = self
                .nodes
                .keys()
                .filter(|p| !state.tree.contains(p))
                .take(5)
                .collect();
            return Some(format!("the model has nodes the tree lacks: {missing:?}"));
        }
        let root = state.tree.get("/").map(|n| n.stat().cversion);
        if root != Some(self.root_cversion) {
            return Some(format!(
                "root cversion {root:?}, model {}",
                self.root_cversion
            ));
        }
        let ids: BTreeSet<i64> = state.sessions.keys().copied().collect();
        if ids != self.sessions {
            return Some(format!(
                "sessions: tree {:x?}, model {:x?}",
                ids, self.sessions
            ));
        }
        None
    }
}

fn dedup(acl: &[Acl]) -> Vec<Acl> {
    let mut out: Vec<Acl> = Vec::new();
    for a in acl {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// The opcode the workload sends a create with, from its flags.
pub fn create_opcode(flags: i32) -> OpCode {
    match flags {
        4 => OpCode::CreateContainer,
        5 | 6 => OpCode::CreateTtl,
        _ => OpCode::Create2,
    }
}
