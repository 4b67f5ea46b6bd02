//! The connection's side of SASL and of enforced authentication: what
//! `ZooKeeperServer.processSasl` and `AuthenticationHelper.enforceAuthentication` do
//! with a packet. The exchange itself is `crate::auth`'s; this only moves tokens and ids
//! between it and the connection.

use std::rc::Rc;
use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::frame::{begin_frame, end_frame};
use ferrokeeper_net::jute::Encode as _;
use ferrokeeper_net::records::ReplyHeader;
use ferrokeeper_net::NullableBuffer;

use super::{header_only, Conn, Shard};
use crate::auth::{SaslConn, SaslOutcome};

/// Handles one SASL token (`GetSASLRequest`) with the request's own xid.
pub(super) fn on_token(shard: &Rc<Shard>, conn: &Rc<Conn>, xid: i32, token: &[u8]) {
    let security = &shard.shared.security;
    if !security.sasl_enabled() {
        // No login configured: like such a standalone ZooKeeper, answer Ok with a null
        // token (SetSASLResponse with length -1); the client then carries on
        // unauthenticated.
        let zxid = shard.root.borrow().last_zxid;
        conn.push_output(|out| {
            super::super::reply::ok_with(out, xid, zxid, |o| NullableBuffer(None).encode(o))
        });
        return;
    }
    let peer = conn
        .st
        .borrow()
        .remote
        .map(|a| a.to_string())
        .unwrap_or_default();
    let outcome = {
        let mut st = conn.st.borrow_mut();
        let exchange = st.sasl.get_or_insert_with(|| SaslConn::start(security));
        exchange.evaluate(security, token, &peer)
    };
    // processSasl answers with zxid 0 whatever happened.
    match outcome {
        SaslOutcome::Reply(token) => conn.push_output(|out| {
            super::super::reply::ok_with(out, xid, 0, |o| NullableBuffer(token).encode(o))
        }),
        SaslOutcome::Authenticated { token, ids } => {
            {
                let mut st = conn.st.borrow_mut();
                let mut all = (*st.auth).clone();
                for id in ids {
                    all.add(id);
                }
                st.auth = Arc::new(all);
            }
            conn.push_output(|out| {
                super::super::reply::ok_with(out, xid, 0, |o| NullableBuffer(token).encode(o))
            });
        }
        SaslOutcome::Fail(err) => {
            // The error header is followed by a null SetSASLResponse, as in Java.
            conn.push_output(|out| {
                let at = begin_frame(out);
                ReplyHeader {
                    xid,
                    zxid: 0,
                    err: err.code(),
                }
                .encode(out);
                NullableBuffer(None).encode(out);
                end_frame(out, at);
            });
            conn.close("SASL authentication failed");
        }
    }
}

/// Whether the connection may send an ordinary request under `enforce.auth.*`. When it
/// may not, it has been answered -124 and is closing.
pub(super) fn may_proceed(shard: &Rc<Shard>, conn: &Rc<Conn>, xid: i32) -> bool {
    let security = &shard.shared.security;
    if security.enforced_schemes.is_empty() {
        return true;
    }
    let allowed = security.allows(conn.st.borrow().auth.ids().iter());
    if !allowed {
        tracing::warn!(
            conn = conn.id,
            schemes = ?security.enforced_schemes,
            "request from a connection not authenticated by an enforced scheme; closing"
        );
        conn.push_output(|out| header_only(out, xid, 0, ErrorCode::SessionClosedRequireSaslAuth));
        conn.close("authentication required");
    }
    allowed
}
