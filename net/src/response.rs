//! Responses: what the server writes after a request, and what a client reads back.
//!
//! The server side encodes (the handshake answer, multi results, watch notifications);
//! the client side (the load generator, raw wire tests) decodes the same shapes. Plain
//! replies are `ReplyHeader` + one record and need nothing beyond
//! [`crate::frame::write_reply`]; [`Reply`] splits one for a reader.
//!
//! Byte layouts follow ZooKeeper 3.8/3.9 as captured from a real server
//! (`net/tests/golden/`), not only as the jute file describes them.

use crate::codes::{xid, OpCode};
use crate::frame::{begin_frame, end_frame};
use crate::jute::{Decode, DecodeError, Encode, Reader};
use crate::records::{
    ConnectResponse, Create2Response, CreateResponse, ErrorResponse, GetChildrenResponse,
    GetDataResponse, MultiHeader, ReplyHeader, SetDataResponse, Stat, WatcherEvent,
};

/// The `MultiHeader` that ends a multi request or response: type −1, done, err −1.
pub const MULTI_DONE: MultiHeader = MultiHeader {
    r#type: -1,
    done: true,
    err: -1,
};

/// The zxid ZooKeeper 3.8 writes in every notification's `ReplyHeader`, and 3.9 writes
/// for events no transaction triggered. Since 3.9 (ZOOKEEPER-4655) a notification
/// carries the zxid of the transaction that fired it; clients of both versions never
/// take a notification's zxid as their last seen zxid.
pub const NOTIFICATION_ZXID_NONE: i64 = -1;

/// One result in a multi or multiRead response (`OpResult` in the Java client).
///
/// The result type on the wire is not always the request op's type: see
/// [`MultiResult::created`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// A plain create (type 1): `CreateResponse{path}`.
    Create(CreateResponse),
    /// create2, createContainer or createTTL (type 15, create2): `Create2Response{path, stat}`.
    Create2(Create2Response),
    /// delete (type 2): no body.
    Delete,
    /// setData (type 5): `SetDataResponse{stat}`.
    SetData(SetDataResponse),
    /// check (type 13): no body.
    Check,
    /// getChildren in a multiRead (type 8): `GetChildrenResponse`.
    GetChildren(GetChildrenResponse),
    /// getData in a multiRead (type 4): `GetDataResponse`.
    GetData(GetDataResponse),
    /// A failed op (type −1): `ErrorResponse{err}`, the error code also in the header.
    ///
    /// When a multi fails, every op gets one: ops before the failing one carry 0 (OK),
    /// the failing op its error, ops after it `RuntimeInconsistency` (−2). In a multiRead
    /// each failing op carries its own error and the others their normal results.
    Error(i32),
}

impl MultiResult {
    /// The result of a successful create inside a multi, typed as ZooKeeper types it
    /// (`FinalRequestProcessor`): a plain create answers `CreateResponse` under type 1;
    /// create2, createContainer and createTTL all answer `Create2Response` under type 15.
    ///
    /// `op` is the create the server actually performed, which Java derives from the
    /// op's flags more than from its `MultiHeader.type` (`MultiOperationRecord`):
    /// container flags make a createContainer and TTL flags a createTTL whatever the
    /// type. With other flags, 3.8 performs a plain create even when the type says
    /// create2 or createContainer (seen in `net/tests/golden/raw.*.hex`); 3.9 keeps
    /// the type (ZOOKEEPER-4026), so a create2 op answers type 15 there.
    pub fn created(op: OpCode, path: String, stat: Stat) -> MultiResult {
        if op == OpCode::Create {
            MultiResult::Create(CreateResponse { path })
        } else {
            MultiResult::Create2(Create2Response { path, stat })
        }
    }

    /// The result's `MultiHeader.type`.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(_) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::Check => OpCode::Check,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::GetData(_) => OpCode::GetData,
            MultiResult::Error(_) => OpCode::Error,
        }
    }

    /// The result's `MultiHeader.err`: the error code for an error, 0 otherwise.
    pub fn err(&self) -> i32 {
        match self {
            MultiResult::Error(err) => *err,
            _ => 0,
        }
    }
}

impl Encode for MultiResult {
    /// One result: its `MultiHeader{type, done=false, err}` and its body.
    fn encode(&self, out: &mut Vec<u8>) {
        MultiHeader {
            r#type: self.opcode().code(),
            done: false,
            err: self.err(),
        }
        .encode(out);
        match self {
            MultiResult::Create(c) => c.encode(out),
            MultiResult::Create2(c) => c.encode(out),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(s) => s.encode(out),
            MultiResult::GetChildren(g) => g.encode(out),
            MultiResult::GetData(g) => g.encode(out),
            MultiResult::Error(err) => ErrorResponse { err: *err }.encode(out),
        }
    }
}

/// Appends a `MultiResponse` body (no frame, no `ReplyHeader`): each result, then
/// [`MULTI_DONE`]. An empty multi answers just the terminator.
pub fn encode_multi_response(results: &[MultiResult], out: &mut Vec<u8>) {
    for result in results {
        result.encode(out);
    }
    MULTI_DONE.encode(out);
}

/// Decodes a `MultiResponse` body: results until a header with `done` set, whatever
/// its type. Like the Java client, the header's `err` is not checked; an error result's
/// code is the one in its `ErrorResponse`.
pub fn decode_multi_response(r: &mut Reader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
    // No reservation up front: each result consumes at least its 9-byte header, so the
    // vector can only grow as far as the input goes.
    let mut results = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(results);
        }
        let result = match OpCode::from_i32(header.r#type) {
            Some(OpCode::Create) => MultiResult::Create(Decode::decode(r)?),
            Some(OpCode::Create2) => MultiResult::Create2(Decode::decode(r)?),
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::SetData) => MultiResult::SetData(Decode::decode(r)?),
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::GetChildren) => MultiResult::GetChildren(Decode::decode(r)?),
            Some(OpCode::GetData) => MultiResult::GetData(Decode::decode(r)?),
            Some(OpCode::Error) => MultiResult::Error(ErrorResponse::decode(r)?.err),
            _ => {
                return Err(DecodeError::Unknown {
                    what: "multi result type",
                    value: header.r#type,
                })
            }
        };
        results.push(result);
    }
}

/// The handshake answer as a client reads it: `ConnectResponse` and the `readOnly` byte
/// that servers add for clients that sent one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectReply {
    /// The record. A refused session (expired, bad password) comes back with
    /// `time_out` 0, `session_id` 0 and 16 zero bytes of password, then the server
    /// closes the connection.
    pub response: ConnectResponse,
    /// The `readOnly` byte: `Some(true)` from a read-only server, `None` when absent.
    pub read_only: Option<bool>,
}

impl ConnectReply {
    /// Decodes a connect-response frame's payload. Bytes after the `readOnly` byte are
    /// ignored, as the Java client ignores them.
    pub fn decode(payload: &[u8]) -> Result<ConnectReply, DecodeError> {
        let mut r = Reader::new(payload);
        let response = ConnectResponse::decode(&mut r)?;
        let read_only = if r.remaining() > 0 {
            Some(r.read_bool()?)
        } else {
            None
        };
        Ok(ConnectReply {
            response,
            read_only,
        })
    }
}

/// Appends the framed handshake answer: `ConnectResponse`, then the `readOnly` byte when
/// `read_only` is `Some`. ZooKeeper writes that byte exactly when the client's
/// `ConnectRequest` carried one (`Connect::has_read_only`): a client that did not send
/// it may not expect it.
pub fn encode_connect_response(resp: &ConnectResponse, read_only: Option<bool>, out: &mut Vec<u8>) {
    let at = begin_frame(out);
    resp.encode(out);
    if let Some(read_only) = read_only {
        read_only.encode(out);
    }
    end_frame(out, at);
}

/// Appends a framed watch notification: `ReplyHeader{xid −1, zxid, err 0}` then the
/// `WatcherEvent`. Pass [`NOTIFICATION_ZXID_NONE`] to answer as ZooKeeper 3.8 does, or
/// the zxid of the transaction that fired the watch to answer as 3.9 does.
pub fn write_notification(out: &mut Vec<u8>, zxid: i64, event: &WatcherEvent) {
    let at = begin_frame(out);
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(out);
    event.encode(out);
    end_frame(out, at);
}

/// A reply frame's payload split for a reader: the header and the body's bytes, which
/// are decoded by the caller according to the request the xid belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The reply header. A non-zero `err` comes with an empty body for every request but
    /// multi, whose failure shows in its results.
    pub header: ReplyHeader,
    /// The bytes after the header (not copied).
    pub body: &'a [u8],
}

impl<'a> Reply<'a> {
    /// Splits a reply frame's payload.
    pub fn decode(payload: &'a [u8]) -> Result<Reply<'a>, DecodeError> {
        let mut r = Reader::new(payload);
        let header = ReplyHeader::decode(&mut r)?;
        Ok(Reply {
            header,
            body: r.rest(),
        })
    }

    /// Whether this is a watch notification (xid −1) rather than an answer to a request.
    pub fn is_notification(&self) -> bool {
        self.header.xid == xid::NOTIFICATION
    }

    /// Decodes the body as one record, refusing bytes left over.
    pub fn record<T: Decode>(&self) -> Result<T, DecodeError> {
        T::from_bytes(self.body)
    }

    /// Decodes the body as a multi or multiRead response, refusing bytes left over.
    pub fn multi(&self) -> Result<Vec<MultiResult>, DecodeError> {
        let mut r = Reader::new(self.body);
        let results = decode_multi_response(&mut r)?;
        r.finish()?;
        Ok(results)
    }
}
