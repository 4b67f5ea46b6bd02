//! Seeded clients of the ensemble: each connects to a random live member, keeps its
//! session alive with touches, sends creates (plain, sequential, ephemeral), setData,
//! delete, multi and sync, and when a member closes it (leader change, a newer zxid
//! seen, a crash) reconnects elsewhere with its session id and password.
//!
//! Replies are handled without drawing from the seed, so the order in which one publish
//! lists replies to different connections (a member keeps them in a hash set) cannot
//! change the run.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokeeper_net::jute::{Buffer, NullableBuffer};
use ferrokeeper_net::records::{
    CheckVersionRequest, ConnectRequest, DeleteRequest, SetDataRequest, SyncRequest,
};
use ferrokeeper_net::request::{Connect, CreateOp, MultiOp, Request};
use ferrokeeper_storage::backend::sim::Prng;

use crate::core::sequencer::{open_acl_unsafe, CommitRequest, Origin};
use crate::sim::model::create_opcode;

/// Node names the clients use: few, so that creates collide and deletes find nodes.
const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A session as the client holds it.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Its id.
    pub id: i64,
    /// Its password.
    pub passwd: [u8; 16],
}

/// One client.
#[derive(Debug, Default)]
pub struct Client {
    /// The session, once a handshake succeeded.
    pub session: Option<Session>,
    /// The member and connection, while connected (or connecting).
    pub conn: Option<(u64, Origin)>,
    /// A handshake is under way on `conn`.
    pub handshaking: bool,
    /// The next request's xid.
    pub next_xid: i32,
    /// The newest zxid this client has seen in a reply.
    pub last_zxid_seen: i64,
    /// The newest acknowledged write's zxid in this session (invariant 4).
    pub last_acked_zxid: i64,
    /// Writes sent and not answered on this connection, by xid.
    pub pending: BTreeMap<i32, Request>,
    /// When the client last touched its session.
    pub touched_at: i64,
}

/// An acknowledged write (reply Ok).
#[derive(Debug, Clone)]
pub struct Ack {
    /// Its session.
    pub session_id: i64,
    /// Its xid.
    pub xid: i32,
    /// Its zxid.
    pub zxid: i64,
    /// The client.
    pub client: usize,
}

fn pick_path(rng: &mut Prng) -> String {
    let depth = rng.range(1, 2);
    let mut p = String::new();
    for _ in 0..depth {
        p.push('/');
        p.push_str(NAMES[rng.below(NAMES.len() as u64) as usize]);
    }
    p
}

fn data(rng: &mut Prng) -> NullableBuffer {
    let mut d = vec![0u8; rng.range(0, 16) as usize];
    rng.fill(&mut d);
    NullableBuffer(Some(d))
}

fn version(rng: &mut Prng) -> i32 {
    if rng.below(3) == 0 {
        rng.range(0, 2) as i32
    } else {
        -1
    }
}

fn create_op(rng: &mut Prng) -> CreateOp {
    // Plain, ephemeral, sequential, ephemeral sequential.
    let flags = rng.below(4) as i32;
    CreateOp {
        opcode: Some(create_opcode(flags)),
        path: pick_path(rng),
        data: data(rng),
        acl: open_acl_unsafe().to_vec(),
        flags,
        ttl: -1,
    }
}

/// A random write (or sync).
pub fn write_request(rng: &mut Prng) -> Request {
    match rng.below(20) {
        0..=7 => Request::Create(create_op(rng)),
        8..=10 => Request::SetData(SetDataRequest {
            path: pick_path(rng),
            data: data(rng),
            version: version(rng),
        }),
        11..=13 => Request::Delete(DeleteRequest {
            path: pick_path(rng),
            version: version(rng),
        }),
        14..=17 => {
            let n = rng.range(1, 3);
            Request::Multi(
                (0..n)
                    .map(|_| match rng.below(4) {
                        0 => MultiOp::Create(create_op(rng)),
                        1 => MultiOp::Delete(DeleteRequest {
                            path: pick_path(rng),
                            version: version(rng),
                        }),
                        2 => MultiOp::SetData(SetDataRequest {
                            path: pick_path(rng),
                            data: data(rng),
                            version: version(rng),
                        }),
                        _ => MultiOp::Check(CheckVersionRequest {
                            path: pick_path(rng),
                            version: version(rng),
                        }),
                    })
                    .collect(),
            )
        }
        _ => Request::Sync(SyncRequest {
            path: pick_path(rng),
        }),
    }
}

/// The handshake of `c` on connection `conn`: a reattach when it has a session.
pub fn connect_request(
    c: &Client,
    conn: Origin,
    timeout_ms: i32,
    read_only: bool,
) -> CommitRequest {
    let (session_id, passwd) = match c.session {
        Some(s) => (s.id, s.passwd.to_vec()),
        None => (0, vec![0; 16]),
    };
    CommitRequest::Connect {
        conn,
        connect: Connect {
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: c.last_zxid_seen,
                time_out: timeout_ms,
                session_id,
                passwd: Buffer(passwd),
            },
            read_only,
            has_read_only: true,
        },
    }
}

/// A write on `conn` for `session_id`.
pub fn write(
    conn: Origin,
    session_id: i64,
    xid: i32,
    request: Request,
    auth: &Arc<crate::core::acl::AuthIds>,
) -> CommitRequest {
    CommitRequest::Write {
        conn,
        session_id,
        xid,
        request,
        auth: auth.clone(),
        local: false,
    }
}
