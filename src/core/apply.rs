//! Applying a txn to a state: pure and deterministic. The same function serves live
//! commits, log replay and (later) followers, so they cannot disagree.

use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::records::Stat;

use super::txn::{Txn, TxnOp};
use crate::core::path::{name as name_of, parent as parent_of};
use crate::core::quota;
use crate::core::state::{owner_kind, DataState, OwnerKind, Session};
use crate::core::tree::{Node, NodeStat};

/// A change that watches react to, in the order ZooKeeper fires them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The node it happened to.
    pub path: Arc<str>,
    /// The txn that made it (notifications carry it in their reply header).
    pub zxid: i64,
}

/// The kinds of change watches react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A node was created (NodeCreated on it, NodeChildrenChanged on its parent).
    Created,
    /// A node was deleted (NodeDeleted on it, NodeChildrenChanged on its parent).
    Deleted,
    /// A node's data was set (NodeDataChanged).
    DataChanged,
}

/// What one (sub-)op of a txn produced, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Node created at this final path.
    Created {
        /// Final path.
        path: Arc<str>,
        /// The new node's stat.
        stat: Stat,
    },
    /// Inside a multi: created by a plain `create` op, whose result carries only the
    /// path (`OpResult.CreateResult` without stat).
    CreatedPlain(Arc<str>),
    /// Node deleted.
    Deleted,
    /// Data set; the node's new stat.
    DataSet(Stat),
    /// ACL set; the node's new stat.
    AclSet(Stat),
    /// Version check passed.
    Checked,
    /// Session created.
    SessionCreated,
    /// Session closed.
    SessionClosed,
    /// Failed (or, inside a failed multi, rolled back with `Ok`).
    Error(ErrorCode),
    /// A multi's per-op outcomes.
    Multi(Vec<Outcome>),
    /// A `sync` went through the leader (no txn): the reply carries the path.
    Synced(Arc<str>),
    /// A `reconfig` committed: `/zookeeper/config`'s new data and stat (the reply is
    /// a GetDataResponse).
    Reconfigured {
        /// The new configuration text.
        data: Arc<[u8]>,
        /// The node's stat after it.
        stat: Stat,
    },
}

/// Applies `txn` to `state`, appending watch-relevant changes to `changes`.
///
/// Prep has validated everything, so a txn that does not fit the state is a broken
/// invariant, and panics with the txn.
pub fn apply(
    state: &mut DataState,
    txn: &Txn,
    extended_types: bool,
    changes: &mut Vec<Change>,
) -> Outcome {
    let out = apply_op(state, txn, &txn.op, extended_types, changes);
    state.end_txn(txn.zxid);
    out
}

// Long because it is one match with an arm per txn kind, each short; splitting it
// would scatter the one place that says what every txn does to the state.
fn apply_op(
    state: &mut DataState,
    txn: &Txn,
    op: &TxnOp,
    extended_types: bool,
    changes: &mut Vec<Change>,
) -> Outcome {
    match op {
        TxnOp::CreateSession {
            session_id,
            timeout_ms,
            passwd,
        } => {
            state.sessions.insert(
                *session_id,
                Session {
                    timeout_ms: *timeout_ms,
                    passwd: *passwd,
                    ephemerals: Default::default(),
                },
            );
            Outcome::SessionCreated
        }
        TxnOp::CloseSession { session_id } => {
            if let Some(session) = state.sessions.remove(session_id) {
                for path in session.ephemerals.iter() {
                    delete_node(state, path, txn.zxid, extended_types);
                    changes.push(Change {
                        kind: ChangeKind::Deleted,
                        path: path.clone(),
                        zxid: txn.zxid,
                    });
                }
            }
            Outcome::SessionClosed
        }
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            let parent = parent_of(path);
            state.update_node(parent, txn.zxid, |p| {
                p.children.insert(Arc::from(name_of(path)));
                if *parent_cversion > p.stat.cversion {
                    p.stat.cversion = *parent_cversion;
                    p.stat.pzxid = txn.zxid;
                }
            });
            let node = Node {
                data: data.clone(),
                acl: acl.clone(),
                stat: NodeStat {
                    czxid: txn.zxid,
                    mzxid: txn.zxid,
                    ctime: txn.time_ms,
                    mtime: txn.time_ms,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: *ephemeral_owner,
                    pzxid: txn.zxid,
                },
                children: Default::default(),
                // The tree computes it when it stores the node.
                digest: 0,
            };
            let stat = node.client_stat(extended_types);
            let data_len = node.data_len();
            state.add_node(path.clone(), node, txn.zxid);
            quota::on_create(state, path, data_len, txn.zxid);
            match owner_kind(*ephemeral_owner, extended_types) {
                OwnerKind::Container => {
                    state.containers.insert(path.clone());
                }
                OwnerKind::Ttl => {
                    state.ttls.insert(path.clone());
                }
                OwnerKind::Normal => {
                    if let Some(s) = state.sessions.get_mut(ephemeral_owner) {
                        s.ephemerals.insert(path.clone());
                    }
                }
                OwnerKind::Void => {}
            }
            changes.push(Change {
                kind: ChangeKind::Created,
                path: path.clone(),
                zxid: txn.zxid,
            });
            Outcome::Created {
                path: path.clone(),
                stat,
            }
        }
        TxnOp::Delete { path } => {
            delete_node(state, path, txn.zxid, extended_types);
            changes.push(Change {
                kind: ChangeKind::Deleted,
                path: path.clone(),
                zxid: txn.zxid,
            });
            Outcome::Deleted
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            let mut stat = Stat::default();
            let ext = state.extended_types;
            set_data(state, path, data.clone(), *version, txn.into(), |n| {
                stat = n.client_stat(ext)
            });
            changes.push(Change {
                kind: ChangeKind::DataChanged,
                path: path.clone(),
                zxid: txn.zxid,
            });
            Outcome::DataSet(stat)
        }
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => {
            state.update_node(path, txn.zxid, |n| {
                n.acl = acl.clone();
                n.stat.aversion = *aversion;
            });
            Outcome::AclSet(node_stat(state, path))
        }
        TxnOp::Check { .. } => Outcome::Checked,
        TxnOp::Error { err } => Outcome::Error(*err),
        TxnOp::Multi(ops) => Outcome::Multi(
            ops.iter()
                .map(|o| apply_op(state, txn, o, extended_types, changes))
                .collect(),
        ),
    }
}

/// setData's change to the state, the one both [`apply`] and log replay make (replay
/// reads the record in place and has no reply to build and no watch to fire: issue #13).
/// `txn` gives the zxid and time; `on_node` sees the changed node, for the reply's stat,
/// taken from the node the update already holds (as DataTree.setData copies it before the
/// quota update): a second lookup by path was ~8% of a log replay's profile.
pub fn set_data(
    state: &mut DataState,
    path: &str,
    data: Option<Arc<[u8]>>,
    version: i32,
    txn: TxnTime,
    on_node: impl FnOnce(&Node),
) {
    let mut old_len = 0;
    let new_len = data.as_ref().map_or(0, |d| d.len());
    state.update_node(path, txn.zxid, |n| {
        old_len = n.data.as_ref().map_or(0, |d| d.len());
        n.data = data;
        n.stat.mtime = txn.time_ms;
        n.stat.mzxid = txn.zxid;
        n.stat.version = version;
        on_node(n);
    });
    quota::on_set_data(state, path, old_len, new_len, txn.zxid);
}

/// The zxid and time of the txn a change belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnTime {
    /// The txn's zxid.
    pub zxid: i64,
    /// The txn's time, ms since the epoch.
    pub time_ms: i64,
}

impl From<&Txn> for TxnTime {
    fn from(txn: &Txn) -> TxnTime {
        TxnTime {
            zxid: txn.zxid,
            time_ms: txn.time_ms,
        }
    }
}

fn node_stat(state: &DataState, path: &str) -> Stat {
    state
        .tree
        .get(path)
        .unwrap_or_else(|| panic!("node {path} vanished during apply"))
        .client_stat(state.extended_types)
}

fn delete_node(state: &mut DataState, path: &Arc<str>, zxid: i64, extended_types: bool) {
    let parent = parent_of(path);
    state.update_node(parent, zxid, |p| {
        p.children.remove(name_of(path));
        // As DataTree.deleteNode: pzxid only moves forward; cversion is not touched.
        if zxid > p.stat.pzxid {
            p.stat.pzxid = zxid;
        }
    });
    // Only a node under a quota needs its length (one lookup more per delete).
    let data_len = if state.quota_paths.is_empty() {
        0
    } else {
        state.tree.get(path).map_or(0, |n| n.data_len())
    };
    let node = state
        .remove_node(path, zxid)
        .unwrap_or_else(|| panic!("delete of missing node {path}"));
    quota::on_delete(state, path, data_len, zxid);
    let owner = node.ephemeral_owner;
    match owner_kind(owner, extended_types) {
        OwnerKind::Container => {
            state.containers.remove(path);
        }
        OwnerKind::Ttl => {
            state.ttls.remove(path);
        }
        OwnerKind::Normal => {
            if let Some(s) = state.sessions.get_mut(&owner) {
                s.ephemerals.remove(path);
            }
        }
        OwnerKind::Void => {}
    }
}
