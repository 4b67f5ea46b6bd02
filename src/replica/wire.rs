//! What servers of an ensemble send each other, byte by byte: the replicated entry (one
//! commit batch: its txns and the replies addressed to clients of other servers) and the
//! requests a follower forwards to the leader. Hand-written, little-endian, versioned
//! by a leading byte: these are ferrokeeper's own formats (the peer frames that carry
//! them are `ferrokeeper_net::peer`'s), and a decoder never panics on what a peer sends.

use std::sync::Arc;

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::records::{Id, Stat};
use ferrokeeper_net::request::{Connect, Request};

use crate::core::acl::AuthIds;
use crate::core::apply::Outcome;
use crate::core::codec;
use crate::core::sequencer::{CommitRequest, Origin, ReplyMsg};
use crate::core::txn::Txn;

/// Version byte of an entry as this code writes it.
const ENTRY_VERSION: u8 = 1;
/// Version byte of a forward message.
const FORWARD_VERSION: u8 = 1;

/// Why bytes from a peer (or the log) did not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    #[error("truncated at byte {0}")]
    Short(usize),
    /// A version, tag or code this code does not know.
    #[error("unknown {what} {value} at byte {at}")]
    Unknown {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: i64,
        /// Where.
        at: usize,
    },
    /// A txn inside the entry did not decode.
    #[error("txn {index}: {reason}")]
    Txn {
        /// Its position in the entry.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A forwarded request did not decode.
    #[error("forwarded request: {0}")]
    Request(String),
    /// Bytes left over after the structure.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A configuration change entry did not decode.
    #[error("{0}")]
    Other(String),
}

/// One replicated entry: a commit batch as every server applies it.
#[derive(Debug, Default)]
pub struct Entry {
    /// Txns in zxid order (may be empty: a batch of replies only).
    pub txns: Vec<Txn>,
    /// Replies for clients connected to other servers than the leader, each addressed by
    /// an [`Origin`] whose top byte names the server.
    pub replies: Vec<(Origin, ReplyMsg)>,
}

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    /// A length-prefixed section written by `f`.
    fn section(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let at = self.0.len();
        self.u32(0);
        f(self.0);
        let len = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> R<'a> {
    fn new(b: &'a [u8]) -> Self {
        R { b, at: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).ok_or(WireError::Short(self.at))?;
        let s = self.b.get(self.at..end).ok_or(WireError::Short(self.at))?;
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.arr::<1>()?[0])
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, WireError> {
        let at = self.at;
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Unknown {
            what: "non-UTF-8 string",
            value: 0,
            at,
        })
    }
    /// A count of items each at least `min` bytes long, refused if the bytes left
    /// cannot hold that many (so a corrupt count never allocates gigabytes).
    fn count(&mut self, min: usize) -> Result<usize, WireError> {
        let at = self.at;
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() - self.at {
            return Err(WireError::Short(at));
        }
        Ok(n)
    }
    fn unknown(&self, what: &'static str, value: i64) -> WireError {
        WireError::Unknown {
            what,
            value,
            at: self.at,
        }
    }
    fn end(&self) -> Result<(), WireError> {
        match self.b.len() - self.at {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }
}

/// Encodes `entry` into `out`.
pub fn encode_entry(txns: &[Txn], replies: &[(Origin, ReplyMsg)], out: &mut Vec<u8>) {
    let mut w = W(out);
    w.u8(ENTRY_VERSION);
    w.u32(txns.len() as u32);
    for t in txns {
        w.section(|o| codec::encode(t, o));
    }
    w.u32(replies.len() as u32);
    for (to, r) in replies {
        w.u64(to.0);
        encode_reply(&mut w, r);
    }
}

/// Decodes an entry written by [`encode_entry`].
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, WireError> {
    let mut r = R::new(bytes);
    let v = r.u8()?;
    if v != ENTRY_VERSION {
        return Err(r.unknown("entry version", v.into()));
    }
    let n = r.count(4)?;
    let mut txns = Vec::with_capacity(n);
    for index in 0..n {
        let b = r.bytes()?;
        txns.push(codec::decode(b).map_err(|e| WireError::Txn {
            index,
            reason: e.to_string(),
        })?);
    }
    let n = r.count(9)?;
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        let to = Origin(r.u64()?);
        replies.push((to, decode_reply(&mut r)?));
    }
    r.end()?;
    Ok(Entry { txns, replies })
}

/// Why a connection is closed, as the sequencer names it; sent as an index into this
/// table so the entry needs no strings (an unknown index reads as the last one).
const CLOSE_REASONS: &[&str] = &[
    "client has seen a zxid newer than this server's",
    "session reattach attempted from another connection",
    "session reattached on another connection",
    "client closed the session",
    "session expired",
    "closed by the leader",
];

fn encode_reply(w: &mut W<'_>, r: &ReplyMsg) {
    match r {
        ReplyMsg::Connected {
            session_id,
            timeout_ms,
            passwd,
            valid,
            // Only a read-only server says so, and it answers its own clients directly:
            // no entry carries it.
            read_only: _,
        } => {
            w.u8(0);
            w.i64(*session_id);
            w.i32(*timeout_ms);
            w.0.extend_from_slice(passwd);
            w.u8(u8::from(*valid));
        }
        ReplyMsg::Write {
            xid,
            zxid,
            opcode,
            outcome,
        } => {
            w.u8(1);
            w.i32(*xid);
            w.i64(*zxid);
            w.i32(opcode.code());
            encode_outcome(w, outcome);
        }
        ReplyMsg::Close { reason } => {
            w.u8(2);
            let i = CLOSE_REASONS
                .iter()
                .position(|r| r == reason)
                .unwrap_or(CLOSE_REASONS.len() - 1);
            w.u8(i as u8);
        }
    }
}

fn decode_reply(r: &mut R<'_>) -> Result<ReplyMsg, WireError> {
    Ok(match r.u8()? {
        0 => ReplyMsg::Connected {
            session_id: r.i64()?,
            timeout_ms: r.i32()?,
            passwd: r.arr()?,
            valid: r.u8()? != 0,
            read_only: false,
        },
        1 => {
            let xid = r.i32()?;
            let zxid = r.i64()?;
            let code = r.i32()?;
            let opcode = OpCode::from_i32(code).ok_or_else(|| r.unknown("opcode", code.into()))?;
            ReplyMsg::Write {
                xid,
                zxid,
                opcode,
                outcome: decode_outcome(r, 0)?,
            }
        }
        2 => {
            let i = usize::from(r.u8()?).min(CLOSE_REASONS.len() - 1);
            ReplyMsg::Close {
                reason: CLOSE_REASONS[i],
            }
        }
        t => return Err(r.unknown("reply tag", t.into())),
    })
}

fn encode_stat(w: &mut W<'_>, s: &Stat) {
    w.i64(s.czxid);
    w.i64(s.mzxid);
    w.i64(s.ctime);
    w.i64(s.mtime);
    w.i32(s.version);
    w.i32(s.cversion);
    w.i32(s.aversion);
    w.i64(s.ephemeral_owner);
    w.i32(s.data_length);
    w.i32(s.num_children);
    w.i64(s.pzxid);
}

fn decode_stat(r: &mut R<'_>) -> Result<Stat, WireError> {
    Ok(Stat {
        czxid: r.i64()?,
        mzxid: r.i64()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        data_length: r.i32()?,
        num_children: r.i32()?,
        pzxid: r.i64()?,
    })
}

fn encode_outcome(w: &mut W<'_>, o: &Outcome) {
    match o {
        Outcome::Created { path, stat } => {
            w.u8(0);
            w.bytes(path.as_bytes());
            encode_stat(w, stat);
        }
        Outcome::CreatedPlain(path) => {
            w.u8(1);
            w.bytes(path.as_bytes());
        }
        Outcome::Deleted => w.u8(2),
        Outcome::DataSet(stat) => {
            w.u8(3);
            encode_stat(w, stat);
        }
        Outcome::AclSet(stat) => {
            w.u8(4);
            encode_stat(w, stat);
        }
        Outcome::Checked => w.u8(5),
        Outcome::SessionCreated => w.u8(6),
        Outcome::SessionClosed => w.u8(7),
        Outcome::Error(e) => {
            w.u8(8);
            w.i32(e.code());
        }
        Outcome::Multi(results) => {
            w.u8(9);
            w.u32(results.len() as u32);
            for r in results {
                encode_outcome(w, r);
            }
        }
        Outcome::Synced(path) => {
            w.u8(10);
            w.bytes(path.as_bytes());
        }
        Outcome::Reconfigured { data, stat } => {
            w.u8(11);
            w.bytes(data);
            encode_stat(w, stat);
        }
    }
}

/// How deep multis may nest in what a peer sends (the sequencer never nests them; the
/// bound only keeps a hostile entry from recursing without end).
const OUTCOME_DEPTH_MAX: u32 = 1;

fn decode_outcome(r: &mut R<'_>, depth: u32) -> Result<Outcome, WireError> {
    let path = |r: &mut R<'_>| -> Result<Arc<str>, WireError> { Ok(Arc::from(r.string()?)) };
    Ok(match r.u8()? {
        0 => Outcome::Created {
            path: path(r)?,
            stat: decode_stat(r)?,
        },
        1 => Outcome::CreatedPlain(path(r)?),
        2 => Outcome::Deleted,
        3 => Outcome::DataSet(decode_stat(r)?),
        4 => Outcome::AclSet(decode_stat(r)?),
        5 => Outcome::Checked,
        6 => Outcome::SessionCreated,
        7 => Outcome::SessionClosed,
        8 => {
            let code = r.i32()?;
            Outcome::Error(
                ErrorCode::from_i32(code).ok_or_else(|| r.unknown("error code", code.into()))?,
            )
        }
        9 if depth < OUTCOME_DEPTH_MAX => {
            let n = r.count(1)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(decode_outcome(r, depth + 1)?);
            }
            Outcome::Multi(v)
        }
        10 => Outcome::Synced(path(r)?),
        11 => Outcome::Reconfigured {
            data: Arc::from(r.bytes()?),
            stat: decode_stat(r)?,
        },
        t => return Err(r.unknown("outcome tag", t.into())),
    })
}

/// Encodes requests a follower forwards to the leader, in order, into `out`.
pub fn encode_forward(msgs: &[CommitRequest], out: &mut Vec<u8>) {
    let mut w = W(out);
    w.u8(FORWARD_VERSION);
    w.u32(msgs.len() as u32);
    for m in msgs {
        match m {
            CommitRequest::Connect { conn, connect } => {
                w.u8(0);
                w.u64(conn.0);
                w.section(|o| ferrokeeper_net::client::encode_connect(connect, o));
            }
            CommitRequest::Write {
                conn,
                session_id,
                xid,
                request,
                auth,
                local,
            } => {
                // Tag 4: the same record from a local session (see `replica::local`).
                w.u8(if *local { 4 } else { 1 });
                w.u64(conn.0);
                w.i64(*session_id);
                w.u32(auth.ids().len() as u32);
                for id in auth.ids() {
                    w.bytes(id.scheme.as_bytes());
                    w.bytes(id.id.as_bytes());
                }
                w.section(|o| request.encode_frame(*xid, o));
            }
            CommitRequest::UpgradeSession {
                conn,
                session_id,
                timeout_ms,
                passwd,
            } => {
                w.u8(5);
                w.u64(conn.0);
                w.i64(*session_id);
                w.i32(*timeout_ms);
                w.0.extend_from_slice(passwd);
            }
            CommitRequest::ConnClosed { conn, session_id } => {
                w.u8(2);
                w.u64(conn.0);
                w.i64(*session_id);
            }
            CommitRequest::Touch(ids) => {
                w.u8(3);
                w.u32(ids.len() as u32);
                for id in ids {
                    w.i64(*id);
                }
            }
        }
    }
}

/// Decodes what [`encode_forward`] wrote.
pub fn decode_forward(bytes: &[u8]) -> Result<Vec<CommitRequest>, WireError> {
    let mut r = R::new(bytes);
    let v = r.u8()?;
    if v != FORWARD_VERSION {
        return Err(r.unknown("forward version", v.into()));
    }
    let n = r.count(9)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match r.u8()? {
            0 => {
                let conn = Origin(r.u64()?);
                // The section is a whole frame: a 4-byte length, then the record.
                let frame = r.bytes()?;
                let connect = Connect::decode(frame.get(4..).unwrap_or(&[]))
                    .map_err(|e| WireError::Request(e.to_string()))?;
                CommitRequest::Connect { conn, connect }
            }
            tag @ (1 | 4) => {
                let conn = Origin(r.u64()?);
                let session_id = r.i64()?;
                let n = r.count(8)?;
                let mut auth: Option<AuthIds> = None;
                for _ in 0..n {
                    let id = Id {
                        scheme: r.string()?,
                        id: r.string()?,
                    };
                    match auth.as_mut() {
                        // The ip id comes first (AuthIds' invariant).
                        None => auth = Some(AuthIds::from_ip_id(id.id)),
                        Some(a) => a.add(id),
                    }
                }
                let auth = auth.ok_or_else(|| WireError::Request("no ip id".into()))?;
                let frame = r.bytes()?;
                let (header, request) = Request::decode(frame.get(4..).unwrap_or(&[]))
                    .map_err(|e| WireError::Request(e.to_string()))?;
                let request = request.map_err(|e| WireError::Request(e.to_string()))?;
                CommitRequest::Write {
                    conn,
                    session_id,
                    xid: header.xid,
                    request,
                    auth: Arc::new(auth),
                    local: tag == 4,
                }
            }
            5 => CommitRequest::UpgradeSession {
                conn: Origin(r.u64()?),
                session_id: r.i64()?,
                timeout_ms: r.i32()?,
                passwd: r.arr()?,
            },
            2 => CommitRequest::ConnClosed {
                conn: Origin(r.u64()?),
                session_id: r.i64()?,
            },
            3 => {
                let n = r.count(8)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(r.i64()?);
                }
                CommitRequest::Touch(ids)
            }
            t => return Err(r.unknown("forward tag", t.into())),
        });
    }
    r.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests;
