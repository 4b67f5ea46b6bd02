//! Encoding replies into a connection's output buffer. Error replies carry only the
//! header, as ZooKeeper's `FinalRequestProcessor` sends them; a failed multi is an `Ok`
//! header with per-op error results.

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::frame::{begin_frame, end_frame};
use ferrokeeper_net::jute::{write_buffer, Encode};
use ferrokeeper_net::records::{MultiHeader, ReplyHeader, Stat, WatcherEvent};

use crate::commit::apply::Outcome;

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
    let at = begin_frame(out);
    ReplyHeader {
        xid: ferrokeeper_net::codes::xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(out);
    event.encode(out);
    end_frame(out, at);
}

/// Writes a `GetDataResponse` body straight from the node's bytes (no copy into a record).
pub fn get_data_body(out: &mut Vec<u8>, data: &[u8], stat: &Stat) {
    write_buffer(out, data);
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
                multi_result(o, r);
            }
            multi_done(o);
        }),
        Outcome::Deleted
        | Outcome::Checked
        | Outcome::SessionCreated
        | Outcome::SessionClosed
        | Outcome::CreatedPlain(_) => header_only(out, xid, zxid, ErrorCode::Ok),
    }
}

fn multi_header(out: &mut Vec<u8>, ty: OpCode, err: i32) {
    MultiHeader {
        r#type: ty.code(),
        done: false,
        err,
    }
    .encode(out);
}

/// One result of a multi (`MultiResponse.serialize`): a plain create reports type
/// create with its path; the create2 family reports create2 with path and stat.
fn multi_result(out: &mut Vec<u8>, r: &Outcome) {
    match r {
        Outcome::CreatedPlain(path) => {
            multi_header(out, OpCode::Create, 0);
            write_buffer(out, path.as_bytes());
        }
        Outcome::Created { path, stat } => {
            multi_header(out, OpCode::Create2, 0);
            write_buffer(out, path.as_bytes());
            stat.encode(out);
        }
        Outcome::Deleted => multi_header(out, OpCode::Delete, 0),
        Outcome::DataSet(stat) => {
            multi_header(out, OpCode::SetData, 0);
            stat.encode(out);
        }
        Outcome::Checked => multi_header(out, OpCode::Check, 0),
        Outcome::Error(err) => {
            multi_header(out, OpCode::Error, err.code());
            err.code().encode(out);
        }
        Outcome::AclSet(_)
        | Outcome::SessionCreated
        | Outcome::SessionClosed
        | Outcome::Multi(_) => {
            panic!("outcome {r:?} cannot appear inside a multi")
        }
    }
}

/// Writes the end marker of a multi response.
pub fn multi_done(out: &mut Vec<u8>) {
    MultiHeader {
        r#type: -1,
        done: true,
        err: -1,
    }
    .encode(out);
}
