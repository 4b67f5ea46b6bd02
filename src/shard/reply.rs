//! Encoding replies into a connection's output buffer. Error replies carry only the
//! header, as ZooKeeper's `FinalRequestProcessor` sends them; a failed multi is an `Ok`
//! header with per-op error results.

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::frame::{begin_frame, end_frame};
use ferrokeeper_net::jute::{write_buffer, Encode};
use ferrokeeper_net::records::{MultiHeader, ReplyHeader, SetDataResponse, Stat, WatcherEvent};
use ferrokeeper_net::response::{MultiResult, MULTI_DONE};

use crate::core::apply::Outcome;

/// Writes a header-only reply.
pub fn header_only(out: &mut Vec<u8>, xid: i32, zxid: i64, err: ErrorCode) {
    let at = begin_frame(out);
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .encode(out);
    end_frame(out, at);
}

/// Writes a reply with an `Ok` header and the body `body` writes.
pub fn ok_with(out: &mut Vec<u8>, xid: i32, zxid: i64, body: impl FnOnce(&mut Vec<u8>)) {
    let at = begin_frame(out);
    ReplyHeader { xid, zxid, err: 0 }.encode(out);
    body(out);
    end_frame(out, at);
}

/// Writes a watch notification (xid −1).
pub fn notification(out: &mut Vec<u8>, zxid: i64, event: &WatcherEvent) {
    ferrokeeper_net::response::write_notification(out, zxid, event);
}

/// Writes a `GetDataResponse` body straight from the node's bytes (no copy into a
/// record); null data is written as length −1.
pub fn get_data_body(out: &mut Vec<u8>, data: Option<&[u8]>, stat: &Stat) {
    match data {
        Some(d) => write_buffer(out, d),
        None => (-1i32).encode(out),
    }
    stat.encode(out);
}

/// Writes the reply to a committed write.
pub fn write_reply(out: &mut Vec<u8>, xid: i32, zxid: i64, opcode: OpCode, outcome: &Outcome) {
    match outcome {
        Outcome::Error(err) => header_only(out, xid, zxid, *err),
        Outcome::Created { path, stat } => ok_with(out, xid, zxid, |o| {
            write_buffer(o, path.as_bytes());
            if opcode != OpCode::Create {
                stat.encode(o);
            }
        }),
        Outcome::DataSet(stat) | Outcome::AclSet(stat) => {
            ok_with(out, xid, zxid, |o| stat.encode(o))
        }
        Outcome::Multi(results) => ok_with(out, xid, zxid, |o| {
            for r in results {
                multi_result(r).encode(o);
            }
            MULTI_DONE.encode(o);
        }),
        Outcome::Deleted
        | Outcome::Checked
        | Outcome::SessionCreated
        | Outcome::SessionClosed
        | Outcome::CreatedPlain(_) => header_only(out, xid, zxid, ErrorCode::Ok),
        Outcome::Synced(path) => ok_with(out, xid, zxid, |o| write_buffer(o, path.as_bytes())),
        Outcome::Reconfigured { data, stat } => {
            ok_with(out, xid, zxid, |o| get_data_body(o, Some(data), stat))
        }
    }
}

/// One result of a multi (`MultiResponse.serialize`): a plain create reports type
/// create with its path; the create2 family reports create2 with path and stat.
fn multi_result(r: &Outcome) -> MultiResult {
    match r {
        Outcome::CreatedPlain(path) => {
            MultiResult::created(OpCode::Create, path.to_string(), Stat::default())
        }
        Outcome::Created { path, stat } => {
            MultiResult::created(OpCode::Create2, path.to_string(), *stat)
        }
        Outcome::Deleted => MultiResult::Delete,
        Outcome::DataSet(stat) => MultiResult::SetData(SetDataResponse { stat: *stat }),
        Outcome::Checked => MultiResult::Check,
        Outcome::Error(err) => MultiResult::Error(err.code()),
        // The sequencer never puts these in a multi; one that arrives in a replicated
        // entry from a broken peer is answered as a server error, not a crash.
        Outcome::AclSet(_)
        | Outcome::SessionCreated
        | Outcome::SessionClosed
        | Outcome::Synced(_)
        | Outcome::Reconfigured { .. }
        | Outcome::Multi(_) => MultiResult::Error(ErrorCode::SystemError.code()),
    }
}

/// Writes a multiRead result header for a successful read; its body follows.
pub fn multi_read_header(out: &mut Vec<u8>, ty: OpCode) {
    MultiHeader {
        r#type: ty.code(),
        done: false,
        err: 0,
    }
    .encode(out);
}

/// Writes a multi or multiRead error result.
pub fn multi_error(out: &mut Vec<u8>, err: ErrorCode) {
    MultiResult::Error(err.code()).encode(out);
}

/// Writes the end marker of a multi response.
pub fn multi_done(out: &mut Vec<u8>) {
    MULTI_DONE.encode(out);
}
