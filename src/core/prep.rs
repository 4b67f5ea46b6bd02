//! Prep: turns a write request into a txn by checking it against the head state, in
//! exactly the order ZooKeeper's `PrepRequestProcessor` checks, so the first failing
//! check (and so the error code a client sees) is the same.

use std::sync::Arc;

use ferrokeeper_net::codes::{perms, CreateMode, ErrorCode, OpCode};
use ferrokeeper_net::records::Acl;
use ferrokeeper_net::request::{CreateOp, MultiOp, Request};

use super::apply::apply;
use super::txn::{Txn, TxnOp};
use crate::core::acl::{self, AuthIds};
use crate::core::path;
use crate::core::quota::{self, CheckOp};
use crate::core::state::{
    owner_kind, DataState, OwnerKind, CONTAINER_OWNER, EXTENDED_MASK, TTL_MAX_MS,
};

/// Who asks, and the settings prep depends on.
#[derive(Debug, Clone, Copy)]
pub struct PrepCtx<'a> {
    /// The requesting session.
    pub session_id: i64,
    /// Its identities.
    pub auth: &'a AuthIds,
    /// `extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// `skipACL`.
    pub skip_acl: bool,
    /// The authentication providers registered beyond ip and digest.
    pub acl_providers: acl::Providers,
    /// The zxid the txn will carry (multi sub-ops share it).
    pub zxid: i64,
    /// The txn's time.
    pub time_ms: i64,
    /// The session is a local session of the server the client is connected to
    /// (`localSessionsEnabled`): it is in no session table here, and may own no
    /// ephemeral (that server upgrades it first).
    pub local_session: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// For a `reconfig` on an ensemble's leader: what the replication layer decided
    /// about it before prep (see [`ReconfigPlan`]); `None` on a standalone server.
    pub reconfig: Option<&'a ReconfigPlan>,
    /// `zookeeper.enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// Where refusals by a hard quota limit are counted.
    pub quota_exceeded: &'a quota::ExceededCounts,
}

/// What the leader's replication layer made of a `reconfig` request before prep: the
/// checks that need the ensemble (a reconfig in progress, the version, the new
/// membership, a synced quorum), in ZooKeeper's order, or the new server lines.
pub type ReconfigPlan = Result<String, ErrorCode>;

type Prepped = Result<TxnOp, ErrorCode>;

/// Decides the txn for a write request. Failures become `TxnOp::Error`.
pub fn prep(state: &DataState, request: &Request, ctx: &PrepCtx<'_>) -> TxnOp {
    let result = match request {
        Request::Create(c) => check_session(state, ctx)
            .and_then(|_| prep_create(state, state, c, (c.op(), c.ttl), ctx)),
        Request::Delete(d) => {
            check_session(state, ctx).and_then(|_| prep_delete(state, &d.path, d.version, ctx))
        }
        Request::SetData(s) => check_session(state, ctx).and_then(|_| {
            prep_set_data(state, state, &s.path, s.data.0.as_deref(), s.version, ctx)
        }),
        Request::SetAcl(s) => check_session(state, ctx).and_then(|_| prep_set_acl(state, s, ctx)),
        Request::Check(c) => {
            check_session(state, ctx).and_then(|_| prep_check(state, &c.path, c.version, ctx))
        }
        Request::Multi(ops) => return prep_multi(state, ops, ctx),
        Request::CloseSession => Ok(TxnOp::CloseSession {
            session_id: ctx.session_id,
        }),
        Request::Reconfig(_) => prep_reconfig(state, ctx),
        _ => Err(ErrorCode::Unimplemented),
    };
    result.unwrap_or_else(|err| TxnOp::Error { err })
}

/// `PrepRequestProcessor`'s reconfig: enabled, a live session, an ensemble (standalone
/// is Unimplemented), the replication layer's checks, then WRITE on
/// `/zookeeper/config` (which only a super user has). The txn sets the node's data to the
/// new server lines and `version=<this zxid>`, with data version −1 as ZooKeeper writes.
fn prep_reconfig(state: &DataState, ctx: &PrepCtx<'_>) -> Prepped {
    if !ctx.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    check_session(state, ctx)?;
    let lines = ctx.reconfig.ok_or(ErrorCode::Unimplemented)?.clone()?;
    let node = state.tree.get(path::CONFIG).ok_or(ErrorCode::NoNode)?;
    check_acl(node.acl(), perms::WRITE, ctx)?;
    let data = format!("{lines}\nversion={:x}", ctx.zxid);
    Ok(TxnOp::SetData {
        path: Arc::from(path::CONFIG),
        data: Some(Arc::from(data.into_bytes())),
        version: -1,
    })
}

fn check_session(state: &DataState, ctx: &PrepCtx<'_>) -> Result<(), ErrorCode> {
    // LeaderSessionTracker.checkSession lets a session it does not know through when
    // local sessions are on: it lives on the server that forwarded the request.
    if ctx.local_session || state.sessions.contains_key(&ctx.session_id) {
        Ok(())
    } else {
        Err(ErrorCode::SessionExpired)
    }
}

fn check_acl(
    node_acl: &[ferrokeeper_net::records::Acl],
    perm: i32,
    ctx: &PrepCtx<'_>,
) -> Result<(), ErrorCode> {
    if acl::check(node_acl, perm, ctx.auth, ctx.skip_acl) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// `PrepRequestProcessor.checkAndIncVersion`: -1 matches any version; the next version
/// skips -1 (ZOOKEEPER-4743) so a client can always name it.
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

/// `op` and `ttl` are the request's own, or inside a multi what `multi_create_kind`
/// rebuilt them to. `state` has a multi's earlier ops applied; `before` is the state
/// before the request, which quota checks read (see [`quota`]).
fn prep_create(
    state: &DataState,
    before: &DataState,
    c: &CreateOp,
    (op, ttl): (OpCode, i64),
    ctx: &PrepCtx<'_>,
) -> Prepped {
    let mode = CreateMode::from_i32(c.flags).ok_or(ErrorCode::BadArguments)?;
    // validateCreateRequest: TTL needs extended types, then the TTL must fit the mode.
    if mode.is_ttl() && !ctx.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    if mode.is_ttl() {
        if ttl <= 0 || ttl > TTL_MAX_MS {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    // validatePathForCreate: only '/' presence and NUL here; the full check comes later.
    let Some(last_slash) = c.path.rfind('/') else {
        return Err(ErrorCode::BadArguments);
    };
    if c.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = if last_slash == 0 {
        "/"
    } else {
        &c.path[..last_slash]
    };
    let acl = acl::fixup_acl_with(&c.acl, ctx.auth, ctx.acl_providers)?;
    // ZooKeeper looks the parent up by the raw prefix: "/a/" has parent "/a", and "/"
    // has parent "", which ZooKeeper's node map (like our tree) resolves to the root.
    let parent = state.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    check_acl(parent.acl(), perms::CREATE, ctx)?;
    let mut final_path = c.path.clone();
    if mode.is_sequential() {
        final_path.push_str(&format!("{:010}", parent.stat().cversion));
    }
    path::validate(&final_path, false).map_err(|_| ErrorCode::BadArguments)?;
    if state.tree.contains(&final_path) {
        return Err(ErrorCode::NodeExists);
    }
    if owner_kind(parent.stat().ephemeral_owner, ctx.extended_types) == OwnerKind::Normal {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    if ctx.enforce_quota {
        let new_len = c.data.0.as_ref().map_or(0, Vec::len);
        quota::check(
            before,
            &final_path,
            new_len,
            CheckOp::Create,
            ctx.quota_exceeded,
        )?;
    }
    let ephemeral_owner = match op {
        OpCode::CreateContainer => CONTAINER_OWNER,
        OpCode::CreateTtl => {
            if !mode.is_ttl() {
                // ZooKeeper would log a CreateTTLTxn it cannot apply; refuse it instead.
                return Err(ErrorCode::BadArguments);
            }
            EXTENDED_MASK | ttl
        }
        // The forwarding server upgrades a local session before an ephemeral create;
        // one that still arrives local is refused, as a learner refuses it when
        // upgrading is off.
        _ if mode.is_ephemeral() && ctx.local_session => {
            return Err(ErrorCode::EphemeralOnLocalSession)
        }
        _ if mode.is_ephemeral() => ctx.session_id,
        // ZooKeeper's CreateTxn has only an `ephemeral` flag, so a plain create with the
        // container or TTL mode makes an ordinary persistent node; so do we.
        _ => 0,
    };
    Ok(TxnOp::Create {
        path: Arc::from(final_path),
        data: c.data.0.as_deref().map(Arc::from),
        acl: shared_acl(acl, parent.acl()),
        ephemeral_owner,
        parent_cversion: parent.stat().cversion.wrapping_add(1),
    })
}

/// A new node's ACL: its parent's own allocation when the two are equal (siblings
/// created with one ACL, the usual case, then share it: ~100 B less per znode held in
/// memory, and the ACL check of a read touches a line other reads keep warm), else a new
/// one. Sharing is invisible: ACLs are compared and stored by content.
fn shared_acl(fixed: Vec<Acl>, parent: &Arc<[Acl]>) -> Arc<[Acl]> {
    if parent[..] == fixed[..] {
        parent.clone()
    } else {
        Arc::from(fixed)
    }
}

fn prep_delete(state: &DataState, p: &str, version: i32, ctx: &PrepCtx<'_>) -> Prepped {
    let parent_path = path::delete_parent(p)?;
    let parent = state.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    check_acl(parent.acl(), perms::DELETE, ctx)?;
    let node = state.tree.get(p).ok_or(ErrorCode::NoNode)?;
    check_and_inc_version(node.stat().version, version)?;
    if node.has_children() {
        return Err(ErrorCode::NotEmpty);
    }
    Ok(TxnOp::Delete { path: Arc::from(p) })
}

fn prep_set_data(
    state: &DataState,
    before: &DataState,
    p: &str,
    data: Option<&[u8]>,
    version: i32,
    ctx: &PrepCtx<'_>,
) -> Prepped {
    path::validate(p, false).map_err(|_| ErrorCode::BadArguments)?;
    let node = state.tree.get(p).ok_or(ErrorCode::NoNode)?;
    check_acl(node.acl(), perms::WRITE, ctx)?;
    if ctx.enforce_quota {
        let new_len = data.map_or(0, <[u8]>::len);
        let old_len = node.data_len();
        quota::check(
            before,
            p,
            new_len,
            CheckOp::SetData { old_len },
            ctx.quota_exceeded,
        )?;
    }
    let version = check_and_inc_version(node.stat().version, version)?;
    Ok(TxnOp::SetData {
        path: Arc::from(p),
        data: data.map(Arc::from),
        version,
    })
}

fn prep_set_acl(
    state: &DataState,
    s: &ferrokeeper_net::records::SetAclRequest,
    ctx: &PrepCtx<'_>,
) -> Prepped {
    path::validate(&s.path, false).map_err(|_| ErrorCode::BadArguments)?;
    let acl = acl::fixup_acl_with(&s.acl, ctx.auth, ctx.acl_providers)?;
    let node = state.tree.get(s.path.as_str()).ok_or(ErrorCode::NoNode)?;
    check_acl(node.acl(), perms::ADMIN, ctx)?;
    let aversion = check_and_inc_version(node.stat().aversion, s.version)?;
    Ok(TxnOp::SetAcl {
        path: Arc::from(s.path.as_str()),
        acl: Arc::from(acl),
        aversion,
    })
}

fn prep_check(state: &DataState, p: &str, version: i32, ctx: &PrepCtx<'_>) -> Prepped {
    path::validate(p, false).map_err(|_| ErrorCode::BadArguments)?;
    let node = state.tree.get(p).ok_or(ErrorCode::NoNode)?;
    check_acl(node.acl(), perms::READ, ctx)?;
    check_and_inc_version(node.stat().version, version)?;
    Ok(TxnOp::Check { path: Arc::from(p) })
}

/// Preps each op against a scratch copy of the state with the earlier ops applied, as
/// ZooKeeper preps against its outstanding change records. On the first failure every
/// op becomes an error txn: `Ok` before it, its code, `RuntimeInconsistency` after.
fn prep_multi(state: &DataState, ops: &[MultiOp], ctx: &PrepCtx<'_>) -> TxnOp {
    // MultiOperationRecord rebuilds every op before prep sees it; an op it cannot
    // rebuild fails the whole request, which still uses a zxid.
    let mut kinds = Vec::with_capacity(ops.len());
    for op in ops {
        kinds.push(match op {
            MultiOp::Create(c) => match multi_create_kind(c) {
                Some(kind) => Some(kind),
                None => {
                    return TxnOp::Error {
                        err: ErrorCode::MarshallingError,
                    }
                }
            },
            _ => None,
        });
    }
    // The scratch copy costs a path copy of the shared tree per op and its drop (most
    // of a 5-setData multi's CPU, profiled in bench/results/profile-churn.md); ops that
    // cannot see each other's effects are prepped against `state` itself.
    let mut scratch = (!independent_ops(ops)).then(|| state.clone());
    let mut txns = Vec::with_capacity(ops.len());
    let mut failed: Option<usize> = None;
    let mut sink = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if failed.is_some() {
            txns.push(TxnOp::Error {
                err: ErrorCode::RuntimeInconsistency,
            });
            continue;
        }
        let view = scratch.as_ref().unwrap_or(state);
        let r = check_session(view, ctx).and_then(|_| match op {
            MultiOp::Create(c) => {
                let kind = kinds[i].unwrap_or((c.op(), c.ttl));
                prep_create(view, state, c, kind, ctx)
            }
            MultiOp::Delete(d) => prep_delete(view, &d.path, d.version, ctx),
            MultiOp::SetData(s) => {
                prep_set_data(view, state, &s.path, s.data.0.as_deref(), s.version, ctx)
            }
            MultiOp::Check(c) => prep_check(view, &c.path, c.version, ctx),
            // Reads belong in multiRead; ZooKeeper's prep has no txn for them.
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::Unimplemented),
        });
        match r {
            Ok(t) => {
                if let Some(scratch) = scratch.as_mut() {
                    let sub = Txn {
                        zxid: ctx.zxid,
                        time_ms: ctx.time_ms,
                        session_id: ctx.session_id,
                        cxid: 0,
                        op: t.clone(),
                    };
                    apply(scratch, &sub, ctx.extended_types, &mut sink);
                    sink.clear();
                }
                txns.push(t);
            }
            // Only a quota node whose text does not parse fails an op this way; in
            // ZooKeeper that is an exception that fails the whole request.
            Err(ErrorCode::MarshallingError) => {
                return TxnOp::Error {
                    err: ErrorCode::MarshallingError,
                }
            }
            Err(err) => {
                failed = Some(i);
                txns.push(TxnOp::Error { err });
            }
        }
    }
    if let Some(i) = failed {
        for t in txns.iter_mut().take(i) {
            *t = TxnOp::Error { err: ErrorCode::Ok };
        }
    }
    TxnOp::Multi(txns)
}

/// Ops of a multi longer than this always take the scratch copy (the check below is
/// quadratic in the ops).
const INDEPENDENT_OPS_MAX: usize = 64;

/// Whether prepping each op of a multi against the state before the multi gives what
/// prepping it against a scratch copy with the earlier ops applied gives: every op is a
/// setData or a check, no two name the same path, and none is under `/zookeeper`.
/// A setData's prep reads only its own node (existence, ACL, version, and with
/// `enforceQuota` its data length; the quota usage it checks is read from the state
/// before the multi either way), and a check's reads existence, ACL and version. The
/// only node a setData's apply changes besides its own is a quota stats node under
/// `/zookeeper/quota` (its data, in place), which no op here may name.
fn independent_ops(ops: &[MultiOp]) -> bool {
    if ops.len() > INDEPENDENT_OPS_MAX {
        return false;
    }
    let mut seen: Vec<&str> = Vec::with_capacity(ops.len());
    for op in ops {
        let p = match op {
            MultiOp::SetData(s) => s.path.as_str(),
            MultiOp::Check(c) => c.path.as_str(),
            _ => return false,
        };
        if p == "/zookeeper" || p.starts_with("/zookeeper/") || seen.contains(&p) {
            return false;
        }
        seen.push(p);
    }
    true
}

/// How ZooKeeper 3.9's `MultiOperationRecord` and `Op.create` rebuild a create op, as
/// the (opcode, ttl) prep then sees: the opcode follows the flags (a TTL mode makes
/// createTTL, a container mode makes createContainer, anything else keeps the header's
/// type), and a createTTL op whose flags are not a TTL mode becomes a plain create
/// without its TTL. `None` for flags that name no mode on a create, create2 or
/// createContainer op.
pub(crate) fn multi_create_kind(c: &CreateOp) -> Option<(OpCode, i64)> {
    if c.op() == OpCode::CreateTtl {
        let mode = CreateMode::from_i32(c.flags).unwrap_or(CreateMode::Persistent);
        return Some(if mode.is_ttl() {
            (OpCode::CreateTtl, c.ttl)
        } else if mode.is_container() {
            (OpCode::CreateContainer, -1)
        } else {
            (OpCode::Create, -1)
        });
    }
    let mode = CreateMode::from_i32(c.flags)?;
    Some(if mode.is_ttl() {
        // CreateOptions without a TTL: prep then refuses it (BadArguments).
        (OpCode::CreateTtl, -1)
    } else if mode.is_container() {
        (OpCode::CreateContainer, c.ttl)
    } else {
        (c.op(), c.ttl)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_increment_skips_minus_one() {
        assert_eq!(check_and_inc_version(5, -1), Ok(6));
        assert_eq!(check_and_inc_version(5, 5), Ok(6));
        assert_eq!(check_and_inc_version(5, 4), Err(ErrorCode::BadVersion));
        assert_eq!(check_and_inc_version(-2, -1), Ok(0));
    }
}
