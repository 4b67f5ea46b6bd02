//! The client's half of the wire: encoding the handshake and requests, for the load
//! generator and for tests that speak raw bytes.
//!
//! Every encoder here is the inverse of a decoder in [`crate::request`]: what
//! [`encode_request`] writes, [`crate::request::Request::decode`] reads back to the same
//! value, and the bytes are the ones the Java client writes for that value (pinned by
//! `net/tests/golden.rs`).

use crate::codes::OpCode;
use crate::frame::{begin_frame, end_frame, EncodeDyn};
use crate::jute::Encode;
use crate::records::{MultiHeader, RequestHeader};
use crate::request::{Connect, CreateOp, MultiOp, Request};
use crate::response::MULTI_DONE;

/// Appends one framed request: `RequestHeader{xid, opcode}` then the body, if any.
pub fn encode_request(xid: i32, opcode: OpCode, body: Option<&dyn EncodeDyn>, out: &mut Vec<u8>) {
    encode_request_raw(xid, opcode.code(), body, out);
}

/// As [`encode_request`] for a header type that may not be an opcode (tests of unknown
/// types).
pub fn encode_request_raw(xid: i32, r#type: i32, body: Option<&dyn EncodeDyn>, out: &mut Vec<u8>) {
    let at = begin_frame(out);
    RequestHeader { xid, r#type }.encode(out);
    if let Some(body) = body {
        body.encode_dyn(out);
    }
    end_frame(out, at);
}

/// Appends the framed handshake: `ConnectRequest`, then the `readOnly` byte when
/// `connect.has_read_only` (every client since 3.3 sends it: 45 bytes in all).
pub fn encode_connect(connect: &Connect, out: &mut Vec<u8>) {
    let at = begin_frame(out);
    connect.request.encode(out);
    if connect.has_read_only {
        connect.read_only.encode(out);
    }
    end_frame(out, at);
}

impl Encode for CreateOp {
    /// `CreateTTLRequest` for createTTL, `CreateRequest` (no ttl) for the other creates.
    fn encode(&self, out: &mut Vec<u8>) {
        // Field by field (the records own their fields; building one would clone), in
        // the order of `CreateTTLRequest` and `CreateRequest` in zookeeper.jute.
        if self.op() == OpCode::CreateTtl {
            self.path.encode(out);
            self.data.encode(out);
            self.acl.encode(out);
            self.flags.encode(out);
            self.ttl.encode(out);
        } else {
            self.path.encode(out);
            self.data.encode(out);
            self.acl.encode(out);
            self.flags.encode(out);
        }
    }
}

impl Encode for MultiOp {
    /// One op of a `MultiOperationRecord`: `MultiHeader{type, done=false, err=−1}` and
    /// the op's request record.
    fn encode(&self, out: &mut Vec<u8>) {
        MultiHeader {
            r#type: self.opcode().code(),
            done: false,
            err: -1,
        }
        .encode(out);
        match self {
            MultiOp::Create(c) => c.encode(out),
            MultiOp::Delete(d) => d.encode(out),
            MultiOp::SetData(s) => s.encode(out),
            MultiOp::Check(c) => c.encode(out),
            MultiOp::GetChildren(g) => g.encode(out),
            MultiOp::GetData(g) => g.encode(out),
        }
    }
}

/// Appends a `MultiOperationRecord` (the body of multi and multiRead): each op, then
/// the terminating `MultiHeader{−1, true, −1}`.
pub fn encode_multi(ops: &[MultiOp], out: &mut Vec<u8>) {
    for op in ops {
        op.encode(out);
    }
    MULTI_DONE.encode(out);
}

impl Request {
    /// The `RequestHeader.type` this request travels under. setWatches is chosen as the
    /// Java client chooses it: type 101 (`SetWatches`) when there are no persistent
    /// watches, 105 (`SetWatches2`) otherwise.
    pub fn header_type(&self) -> i32 {
        let op = match self {
            Request::Ping => OpCode::Ping,
            Request::CloseSession => OpCode::CloseSession,
            Request::Create(c) => c.op(),
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(s) => {
                if s.persistent_watches.is_empty() && s.persistent_recursive_watches.is_empty() {
                    OpCode::SetWatches
                } else {
                    OpCode::SetWatches2
                }
            }
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Unknown(ty) => return *ty,
        };
        op.code()
    }

    /// Appends the request's body (the record after `RequestHeader`; nothing for ping,
    /// closeSession, whoAmI and unknown types).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Request::Ping | Request::CloseSession | Request::WhoAmI | Request::Unknown(_) => {}
            Request::Create(c) => c.encode(out),
            Request::Delete(r) => r.encode(out),
            Request::Exists(r) => r.encode(out),
            Request::GetData(r) => r.encode(out),
            Request::SetData(r) => r.encode(out),
            Request::GetAcl(r) => r.encode(out),
            Request::SetAcl(r) => r.encode(out),
            Request::GetChildren(r) => r.encode(out),
            Request::GetChildren2(r) => r.encode(out),
            Request::Sync(r) => r.encode(out),
            Request::Check(r) => r.encode(out),
            Request::Multi(ops) | Request::MultiRead(ops) => encode_multi(ops, out),
            Request::Reconfig(r) => r.encode(out),
            Request::CheckWatches(r) => r.encode(out),
            Request::RemoveWatches(r) => r.encode(out),
            Request::Auth(r) => r.encode(out),
            Request::SetWatches(s) => {
                if self.header_type() == OpCode::SetWatches.code() {
                    // `SetWatches` is `SetWatches2` without the two persistent lists.
                    s.relative_zxid.encode(out);
                    s.data_watches.encode(out);
                    s.exist_watches.encode(out);
                    s.child_watches.encode(out);
                } else {
                    s.encode(out);
                }
            }
            Request::Sasl(r) => r.encode(out),
            Request::GetEphemerals(r) => r.encode(out),
            Request::GetAllChildrenNumber(r) => r.encode(out),
            Request::AddWatch(r) => r.encode(out),
        }
    }

    /// Appends the whole framed request under `xid`.
    pub fn encode_frame(&self, xid: i32, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        RequestHeader {
            xid,
            r#type: self.header_type(),
        }
        .encode(out);
        self.encode_body(out);
        end_frame(out, at);
    }
}
