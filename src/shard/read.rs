//! Serving reads on the shard from its current root. A read never waits for the commit
//! stage and never takes a lock: the root is an immutable published state.

use std::sync::Arc;

use ferrokeeper_net::codes::{perms, ErrorCode, WatcherType};
use ferrokeeper_net::jute::{write_buffer, Encode};
use ferrokeeper_net::records::{Acl, ClientInfo, SetWatches2};
use ferrokeeper_net::request::{MultiOp, Request};

use super::reply::{
    get_data_body, header_only, multi_done, multi_error, multi_read_header, notification, ok_with,
};
use crate::core::acl::{self, AuthIds};
use crate::core::state::DataState;
use crate::core::tree::NodeRef;
use crate::core::watch::{NodeZxids, SetWatchLists, WatchKind, WatchTable};

/// What a read needs to know about its connection.
pub struct ReadCtx<'a> {
    /// The shard-local connection id (watch owner).
    pub conn: u64,
    /// The session.
    pub session_id: i64,
    /// The session's identities.
    pub auth: &'a AuthIds,
    /// `skipACL`.
    pub skip_acl: bool,
}

fn readable(node: &NodeRef<'_>, perm: i32, ctx: &ReadCtx<'_>) -> Result<(), ErrorCode> {
    if acl::check(node.acl(), perm, ctx.auth, ctx.skip_acl) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// The node at `path` if the session may READ it, registering a watch of `kind` when
/// `watch` is set, in ZooKeeper's order (`handleGetDataRequest`,
/// `handleGetChildrenRequest`): a missing node is NoNode and leaves no watch, a denied
/// one is NoAuth and leaves no watch.
fn read_node<'r>(
    root: &'r DataState,
    watches: &mut WatchTable,
    ctx: &ReadCtx<'_>,
    path: &str,
    watch: bool,
    kind: WatchKind,
) -> Result<NodeRef<'r>, ErrorCode> {
    let n = root.tree.get(path).ok_or(ErrorCode::NoNode)?;
    readable(&n, perms::READ, ctx)?;
    if watch {
        watches.add(path, ctx.conn, kind);
    }
    Ok(n)
}

// Long because it is one match with an arm per read opcode, each short.
/// Serves one read request against `root`, registering watches in `watches`, and
/// writes the reply frame into `out`.
pub fn serve(
    root: &Arc<DataState>,
    watches: &mut WatchTable,
    ctx: &ReadCtx<'_>,
    xid: i32,
    req: &Request,
    out: &mut Vec<u8>,
) {
    let zxid = root.last_zxid;
    let tree = &root.tree;
    let r: Result<(), ErrorCode> = (|| {
        match req {
            Request::Ping => {
                header_only(out, ferrokeeper_net::codes::xid::PING, zxid, ErrorCode::Ok);
            }
            Request::Sync(s) => ok_with(out, xid, zxid, |o| write_buffer(o, s.path.as_bytes())),
            Request::Exists(e) => {
                if e.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let node = tree.get(&e.path);
                if let Some(n) = &node {
                    readable(n, perms::READ, ctx)?;
                }
                // DataTree.statNode registers the watch before it finds the node
                // missing: an exists watch on an absent node waits for its creation.
                if e.watch {
                    watches.add(&e.path, ctx.conn, WatchKind::Data);
                }
                let n = node.ok_or(ErrorCode::NoNode)?;
                let stat = root.stat(&n);
                ok_with(out, xid, zxid, |o| stat.encode(o));
            }
            Request::GetData(g) => {
                let n = read_node(root, watches, ctx, &g.path, g.watch, WatchKind::Data)?;
                ok_with(out, xid, zxid, |o| {
                    get_data_body(o, n.data(), &root.stat(&n))
                });
            }
            Request::GetChildren(g) => {
                let n = read_node(root, watches, ctx, &g.path, g.watch, WatchKind::Child)?;
                ok_with(out, xid, zxid, |o| children_body(o, &n));
            }
            Request::GetChildren2(g) => {
                let n = read_node(root, watches, ctx, &g.path, g.watch, WatchKind::Child)?;
                ok_with(out, xid, zxid, |o| {
                    children_body(o, &n);
                    root.stat(&n).encode(o);
                });
            }
            Request::GetAcl(g) => {
                let n = tree.get(&g.path).ok_or(ErrorCode::NoNode)?;
                readable(&n, perms::READ | perms::ADMIN, ctx)?;
                // Without ADMIN, digest ids are shown as "user:x" (ZOOKEEPER-1392).
                let admin = acl::check(n.acl(), perms::ADMIN, ctx.auth, ctx.skip_acl);
                let acl: Vec<Acl> = if admin {
                    n.acl().to_vec()
                } else {
                    acl::redact_for_get_acl(n.acl())
                };
                ok_with(out, xid, zxid, |o| {
                    acl.encode(o);
                    root.stat(&n).encode(o);
                });
            }
            Request::GetAllChildrenNumber(g) => {
                let n = tree.get(&g.path).ok_or(ErrorCode::NoNode)?;
                readable(&n, perms::READ, ctx)?;
                let count = tree.descendant_count(&g.path) as i32;
                ok_with(out, xid, zxid, |o| count.encode(o));
            }
            Request::GetEphemerals(g) => {
                let prefix = g.prefix_path.trim();
                let all = prefix.is_empty() || prefix == "/";
                let list: Vec<String> = root
                    .sessions
                    .get(&ctx.session_id)
                    .map(|s| {
                        s.ephemerals
                            .iter()
                            .filter(|p| all || p.starts_with(g.prefix_path.as_str()))
                            .map(|p| p.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                ok_with(out, xid, zxid, |o| list.encode(o));
            }
            Request::MultiRead(ops) => ok_with(out, xid, zxid, |o| {
                for op in ops {
                    multi_read_op(root, watches, ctx, op, o);
                }
                multi_done(o);
            }),
            Request::AddWatch(a) => {
                // An unknown mode fails Java's enum lookup: MarshallingError.
                let kind = match a.mode {
                    0 => WatchKind::Persistent,
                    1 => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::MarshallingError),
                };
                watches.add(&a.path, ctx.conn, kind);
                ok_with(out, xid, zxid, |o| 0i32.encode(o));
            }
            Request::CheckWatches(c) => {
                let ty = WatcherType::from_i32(c.r#type).ok_or(ErrorCode::MarshallingError)?;
                if !watches.contains(&c.path, ctx.conn, ty) {
                    return Err(ErrorCode::NoWatcher);
                }
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            Request::RemoveWatches(c) => {
                let ty = WatcherType::from_i32(c.r#type).ok_or(ErrorCode::MarshallingError)?;
                if !watches.remove(&c.path, ctx.conn, ty) {
                    return Err(ErrorCode::NoWatcher);
                }
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            Request::WhoAmI => {
                let infos: Vec<ClientInfo> = ctx.auth.client_infos();
                ok_with(out, xid, zxid, |o| infos.encode(o));
            }
            Request::SetWatches(s) => {
                set_watches(root, watches, ctx, s, out);
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            _ => return Err(ErrorCode::Unimplemented),
        }
        Ok(())
    })();
    if let Err(err) = r {
        header_only(out, xid, zxid, err);
    }
}

fn children_body(out: &mut Vec<u8>, n: &NodeRef<'_>) {
    (n.num_children() as i32).encode(out);
    for c in n.children() {
        write_buffer(out, c.as_bytes());
    }
}

fn multi_read_op(
    root: &DataState,
    watches: &mut WatchTable,
    ctx: &ReadCtx<'_>,
    op: &MultiOp,
    out: &mut Vec<u8>,
) {
    let r: Result<(), ErrorCode> = (|| {
        match op {
            MultiOp::GetChildren(g) => {
                let n = read_node(root, watches, ctx, &g.path, g.watch, WatchKind::Child)?;
                multi_read_header(out, ferrokeeper_net::OpCode::GetChildren);
                children_body(out, &n);
            }
            MultiOp::GetData(g) => {
                let n = read_node(root, watches, ctx, &g.path, g.watch, WatchKind::Data)?;
                multi_read_header(out, ferrokeeper_net::OpCode::GetData);
                get_data_body(out, n.data(), &root.stat(&n));
            }
            _ => return Err(ErrorCode::BadArguments),
        }
        Ok(())
    })();
    if let Err(err) = r {
        multi_error(out, err);
    }
}

/// `DataTree.setWatches`: re-registers a reconnecting client's watches, and fires at
/// once the events it missed since `relativeZxid`.
fn set_watches(
    root: &Arc<DataState>,
    watches: &mut WatchTable,
    ctx: &ReadCtx<'_>,
    s: &SetWatches2,
    out: &mut Vec<u8>,
) {
    let mut fired = Vec::new();
    watches.set_watches(
        ctx.conn,
        SetWatchLists::from(s),
        |p| {
            root.tree.get(p).map(|n| {
                let s = n.stat();
                NodeZxids {
                    mzxid: s.mzxid,
                    pzxid: s.pzxid,
                }
            })
        },
        &mut fired,
    );
    for n in fired {
        notification(out, n.zxid, &n.event);
    }
}
