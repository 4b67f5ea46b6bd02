//! Txns as bytes: the payload of a log record, in ZooKeeper's own txn serialization
//! (`TxnHeader`, then the `zookeeper.jute` txn record for the header's type, with
//! `MultiTxn` of `Txn{type, data}` for multi), so that one codec reads ferrokeeper's log
//! and an imported ZooKeeper log. It has two layers:
//!
//! - **Record** ([`decode_record`]): bytes → [`LoggedTxn`], the header, the txn record
//!   *as logged* ([`TxnRecord`]) and the optional digest trailer. It knows every shape
//!   ZooKeeper 3.5–3.9 writes (`SerializeUtils.deserializeTxn`): a create too short for
//!   `CreateTxn` is a pre-3.3 `CreateTxnV0`, a closeSession has no record (3.5) or lists
//!   the paths to delete (3.6+), `reconfig` logs a `SetDataTxn`, and 3.6+ may append a
//!   12-byte `TxnDigest`. Errors carry the byte offset within the txn bytes
//!   ([`RecordError`]). Import's replay works on this layer, because ZooKeeper's replay
//!   rules depend on what was logged (which create opcode, a parent cversion of −1).
//! - **Interpretation** ([`interpret`]): record → [`TxnOp`], what `apply` takes. An
//!   ephemeral create is owned by the header's session (`CreateTxn` names no owner),
//!   containers and TTL nodes get their special owners, a closeSession's logged path
//!   list is ignored (apply derives the paths from the state), and error codes must be
//!   ones ZooKeeper defines.
//!
//! [`decode`] runs both layers; it is how ferrokeeper's own log is replayed. [`encode`]
//! writes what `decode` reads back unchanged; it writes no digest.
//!
//! ## ferrokeeper's extension: the session password
//!
//! `CreateSessionTxn` is followed by the session's 16-byte password as a jute `buffer`
//! (length 16 as an int, then the bytes: 20 bytes in all), because ferrokeeper's
//! passwords are random where ZooKeeper derives them from the session id and a server
//! secret. What follows `CreateSessionTxn` is told apart by its length alone:
//!
//! | bytes left | meaning                                              |
//! |-----------:|------------------------------------------------------|
//! | 0          | no password, no digest                               |
//! | 12         | ZooKeeper's `TxnDigest` (3.6+), no password          |
//! | 20         | ferrokeeper's password                               |
//! | 32         | a password, then a digest                            |
//!
//! Anything else is an error, and so is a password buffer whose length is not 16: that
//! is what keeps a 12-byte remainder unambiguous (an 8-byte buffer is also 12 bytes).
//! A session whose record has no password (ZooKeeper's) decodes with an all-zero one.

use std::sync::Arc;

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::jute::{write_buffer, Buffer, Decode, DecodeError, Encode, Reader};
use ferrokeeper_net::records::{
    Acl, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, CreateTxnV0, DeleteTxn, ErrorTxn, MultiTxn, SetAclTxn, SetDataTxn, TxnDigest,
    TxnHeader,
};

use super::txn::{Txn, TxnOp};
use crate::core::state::{owner_kind, OwnerKind, CONTAINER_OWNER, EXTENDED_MASK, TTL_VALUE_MASK};

/// `TxnDigest` is version (int) and treeDigest (long).
pub const TXN_DIGEST_LEN: usize = 12;
/// ferrokeeper's session passwords are 16 bytes.
pub const SESSION_PASSWD_LEN: usize = 16;

/// Why log bytes are not a txn ferrokeeper can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnDecodeError {
    /// The bytes are not a txn record (see [`RecordError`]).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An error code that ZooKeeper does not define.
    #[error("unknown error code {0} in an error txn")]
    ErrorCode(i32),
}

/// Why a txn's bytes did not decode into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A field did not decode.
    #[error("{what} at byte {at} of the txn: {detail}")]
    Decode {
        /// Offset within the txn bytes (for a multi's sub-record, where the `MultiTxn`
        /// starts).
        at: usize,
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint.
        detail: DecodeError,
    },
    /// A type ZooKeeper never logs (or never logs inside a multi).
    #[error("txn type {0} is not a logged txn")]
    UnknownType(i32),
}

/// Which create a [`TxnRecord::Create`] was logged as; import's replay treats them
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// `OpCode.create` (1). Only this kind moves the parent's cversion when replay finds
    /// the node already present (`DataTree.processTxn`'s NODEEXISTS fix-up).
    Create,
    /// `OpCode.create2` (15).
    Create2,
    /// `OpCode.createTTL` (21), with its TTL in ms.
    Ttl(i64),
    /// `OpCode.createContainer` (19).
    Container,
}

/// One txn record, decoded but not interpreted: the record as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    /// `createSession` (−10).
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
        /// ferrokeeper's password extension; `None` in ZooKeeper's logs.
        passwd: Option<[u8; SESSION_PASSWD_LEN]>,
    },
    /// `closeSession` (−11). 3.6+ list the ephemerals to delete; 3.5 logs no record.
    CloseSession {
        /// `CloseSessionTxn.paths2Delete`, when present.
        paths: Option<Vec<String>>,
    },
    /// `create`, `create2`, `createTTL`, `createContainer`.
    Create {
        /// Which create.
        kind: CreateKind,
        /// Final path.
        path: String,
        /// Data (`None`: null).
        data: Option<Vec<u8>>,
        /// ACL.
        acl: Vec<Acl>,
        /// Whether the session in the txn header owns the node.
        ephemeral: bool,
        /// The parent's new cversion; −1 (pre-3.3 `CreateTxnV0`) means "one more".
        parent_cversion: i32,
    },
    /// `delete` or `deleteContainer`.
    Delete {
        /// Path.
        path: String,
    },
    /// `setData`, or `reconfig` (which logs a `SetDataTxn` on `/zookeeper/config`).
    SetData {
        /// Path.
        path: String,
        /// New data (`None`: null).
        data: Option<Vec<u8>>,
        /// New version.
        version: i32,
    },
    /// `setACL`.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// New aversion.
        version: i32,
    },
    /// `check` (inside multi).
    Check {
        /// Path.
        path: String,
    },
    /// `error`: a failed request (or a failed multi's sub-op).
    Error {
        /// `KeeperException.Code`, unchecked.
        err: i32,
    },
    /// `multi`.
    Multi(Vec<TxnRecord>),
}

/// A txn's bytes as logged: what [`decode_record`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedTxn {
    /// The txn header.
    pub header: TxnHeader,
    /// The txn record.
    pub record: TxnRecord,
    /// The tree digest after this txn, as the writer computed it (ZooKeeper 3.6+).
    pub digest: Option<TxnDigest>,
}

/// Appends the bytes of `txn`.
pub fn encode(txn: &Txn, out: &mut Vec<u8>) {
    TxnHeader {
        client_id: txn.session_id,
        cxid: txn.cxid,
        zxid: txn.zxid,
        time: txn.time_ms,
        r#type: op_type(&txn.op),
    }
    .encode(out);
    encode_body(&txn.op, txn.session_id, out);
}

fn op_type(op: &TxnOp) -> i32 {
    let code = match op {
        TxnOp::CreateSession { .. } => OpCode::CreateSession,
        TxnOp::CloseSession { .. } => OpCode::CloseSession,
        TxnOp::Create {
            ephemeral_owner, ..
        } => match owner_kind(*ephemeral_owner, true) {
            OwnerKind::Container => OpCode::CreateContainer,
            OwnerKind::Ttl => OpCode::CreateTtl,
            OwnerKind::Void | OwnerKind::Normal => OpCode::Create,
        },
        TxnOp::Delete { .. } => OpCode::Delete,
        TxnOp::SetData { .. } => OpCode::SetData,
        TxnOp::SetAcl { .. } => OpCode::SetAcl,
        TxnOp::Check { .. } => OpCode::Check,
        TxnOp::Error { .. } => OpCode::Error,
        TxnOp::Multi(_) => OpCode::Multi,
    };
    code.code()
}

// Long because it is one match with an arm per jute txn record, mirroring `decode`.
//
// The records a client's writes make (create, delete, setData, check, multi) are
// written field by field in their jute order, straight from the txn: building the
// record structs first copied each path and data into a fresh `String` and `Vec`, and
// each multi sub-record into a `Vec` of its own, ~12 % of the commit thread's CPU in the
// `multi` workload (bench/results/setdata-cpu-2026-12-06.md). `encodes_as_the_records`
// pins these arms to the record structs' bytes.
fn encode_body(op: &TxnOp, session_id: i64, out: &mut Vec<u8>) {
    match op {
        TxnOp::CreateSession {
            session_id: id,
            timeout_ms,
            passwd,
        } => {
            assert_eq!(*id, session_id, "createSession txn for another session");
            CreateSessionTxn {
                time_out: *timeout_ms,
            }
            .encode(out);
            Buffer(passwd.to_vec()).encode(out);
        }
        TxnOp::CloseSession { session_id: id } => {
            assert_eq!(*id, session_id, "closeSession txn for another session");
            CloseSessionTxn {
                paths2_delete: Vec::new(),
            }
            .encode(out);
        }
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            // CreateTxn, CreateContainerTxn and CreateTTLTxn share their first fields.
            write_buffer(out, path.as_bytes());
            write_data(out, data.as_deref());
            write_acl(out, acl);
            match owner_kind(*ephemeral_owner, true) {
                OwnerKind::Container => parent_cversion.encode(out),
                OwnerKind::Ttl => {
                    parent_cversion.encode(out);
                    (*ephemeral_owner & TTL_VALUE_MASK).encode(out);
                }
                kind => {
                    // ZooKeeper's CreateTxn names no owner: an ephemeral belongs to the
                    // session in the header, which prep guarantees.
                    assert!(
                        kind == OwnerKind::Void || *ephemeral_owner == session_id,
                        "ephemeral {path} owned by 0x{ephemeral_owner:x}, created by 0x{session_id:x}"
                    );
                    (kind == OwnerKind::Normal).encode(out);
                    parent_cversion.encode(out);
                }
            }
        }
        // DeleteTxn.
        TxnOp::Delete { path } => write_buffer(out, path.as_bytes()),
        // SetDataTxn.
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            write_buffer(out, path.as_bytes());
            write_data(out, data.as_deref());
            version.encode(out);
        }
        TxnOp::SetAcl {
            path,
            acl,
            aversion,
        } => SetAclTxn {
            path: path.to_string(),
            acl: acl.to_vec(),
            version: *aversion,
        }
        .encode(out),
        // CheckVersionTxn.
        TxnOp::Check { path } => {
            write_buffer(out, path.as_bytes());
            (-1i32).encode(out);
        }
        TxnOp::Error { err } => ErrorTxn { err: err.code() }.encode(out),
        // MultiTxn: a vector of Txn{type, data}, each data a buffer holding the op's
        // record, whose length is filled in once the record is written.
        TxnOp::Multi(ops) => {
            (ops.len() as i32).encode(out);
            for o in ops {
                op_type(o).encode(out);
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                encode_body(o, session_id, out);
                let len = (out.len() - at - 4) as i32;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }
}

/// A jute `buffer` that may be null (length −1), as [`NullableBuffer`] writes it.
fn write_data(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        Some(d) => write_buffer(out, d),
        None => (-1i32).encode(out),
    }
}

/// A jute `vector<ACL>`, as `Vec<Acl>` writes it.
fn write_acl(out: &mut Vec<u8>, acl: &[Acl]) {
    (acl.len() as i32).encode(out);
    for a in acl {
        a.encode(out);
    }
}

/// Decodes a txn from its bytes (ferrokeeper's log or ZooKeeper's): both layers.
pub fn decode(bytes: &[u8]) -> Result<Txn, TxnDecodeError> {
    match decode_set_data(bytes) {
        Some(txn) => Ok(txn),
        None => decode_two_layers(bytes),
    }
}

/// [`decode`] without the setData fast path: the record, then its interpretation.
fn decode_two_layers(bytes: &[u8]) -> Result<Txn, TxnDecodeError> {
    let LoggedTxn { header, record, .. } = decode_record(bytes)?;
    Ok(Txn {
        zxid: header.zxid,
        time_ms: header.time,
        session_id: header.client_id,
        cxid: header.cxid,
        op: interpret(header.client_id, record)?,
    })
}

/// A logged setData read in place: the path and data borrowed from the record's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRecord<'a> {
    /// The txn header (zxid, time, session, cxid).
    pub header: TxnHeader,
    /// The node's path.
    pub path: &'a str,
    /// The new data; `None` is null data.
    pub data: Option<&'a [u8]>,
    /// The node's data version after the change.
    pub version: i32,
}

/// setData, most of a busy log, read straight from the record's bytes: the header and
/// fields borrowed, no allocation. `None` for any other record and for anything unusual (a
/// path that is not UTF-8, a bad length, trailing bytes that are no digest): [`decode`]
/// then takes the general path, which reads it the same way or names the error. Log
/// replay applies what this returns without building a [`Txn`] (issue #13).
pub fn read_set_data(bytes: &[u8]) -> Option<SetDataRecord<'_>> {
    let mut r = Reader::new(bytes);
    let header = TxnHeader::decode(&mut r).ok()?;
    // reconfig also logs a SetDataTxn; it is left to the general path.
    if !matches!(OpCode::from_i32(header.r#type), Some(OpCode::SetData)) {
        return None;
    }
    let path = std::str::from_utf8(r.read_buffer().ok()?).ok()?;
    // A jute buffer of length -1 is null (`NullableBuffer`).
    let data = if r.rest().starts_with(&[0xff; 4]) {
        r.take(4).ok()?;
        None
    } else {
        Some(r.read_buffer().ok()?)
    };
    let version = r.read_i32().ok()?;
    // Nothing, or a `TxnDigest` (two numbers, any value reads), may follow.
    if !matches!(r.remaining(), 0 | TXN_DIGEST_LEN) {
        return None;
    }
    Some(SetDataRecord {
        header,
        path,
        data,
        version,
    })
}

/// setData decoded from [`read_set_data`] into the txn's `Arc`s: one allocation and one
/// copy each for the path and the data, where the two layers build an owned `SetDataTxn`
/// first and copy both again (issue #13: decode was a sixth of a log replay).
fn decode_set_data(bytes: &[u8]) -> Option<Txn> {
    let SetDataRecord {
        header,
        path,
        data,
        version,
    } = read_set_data(bytes)?;
    Some(Txn {
        zxid: header.zxid,
        time_ms: header.time,
        session_id: header.client_id,
        cxid: header.cxid,
        op: TxnOp::SetData {
            path: Arc::from(path),
            data: data.map(Arc::from),
            version,
        },
    })
}

/// The interpretation layer: what a record logged by `session_id` (the header's
/// `clientId`) changes.
pub fn interpret(session_id: i64, record: TxnRecord) -> Result<TxnOp, TxnDecodeError> {
    Ok(match record {
        TxnRecord::CreateSession { timeout_ms, passwd } => TxnOp::CreateSession {
            session_id,
            timeout_ms,
            // ZooKeeper's own logs carry no password: such sessions get an unusable
            // all-zero one until they expire.
            passwd: passwd.unwrap_or([0; SESSION_PASSWD_LEN]),
        },
        // The paths are derived from the state at apply time; ZooKeeper's list (3.6+)
        // is ignored.
        TxnRecord::CloseSession { .. } => TxnOp::CloseSession { session_id },
        TxnRecord::Create {
            kind,
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        } => TxnOp::Create {
            path: Arc::from(path),
            data: data.map(Arc::from),
            acl: Arc::from(acl),
            ephemeral_owner: match kind {
                CreateKind::Create | CreateKind::Create2 if ephemeral => session_id,
                CreateKind::Create | CreateKind::Create2 => 0,
                CreateKind::Container => CONTAINER_OWNER,
                CreateKind::Ttl(ttl) => EXTENDED_MASK | (ttl & TTL_VALUE_MASK),
            },
            parent_cversion,
        },
        TxnRecord::Delete { path } => TxnOp::Delete {
            path: Arc::from(path),
        },
        TxnRecord::SetData {
            path,
            data,
            version,
        } => TxnOp::SetData {
            path: Arc::from(path),
            data: data.map(Arc::from),
            version,
        },
        TxnRecord::SetAcl { path, acl, version } => TxnOp::SetAcl {
            path: Arc::from(path),
            acl: Arc::from(acl),
            aversion: version,
        },
        TxnRecord::Check { path } => TxnOp::Check {
            path: Arc::from(path),
        },
        TxnRecord::Error { err } => TxnOp::Error {
            err: ErrorCode::from_i32(err).ok_or(TxnDecodeError::ErrorCode(err))?,
        },
        TxnRecord::Multi(records) => TxnOp::Multi(
            records
                .into_iter()
                .map(|r| interpret(session_id, r))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn dec<T: Decode>(r: &mut Reader<'_>, what: &'static str) -> Result<T, RecordError> {
    let at = r.position();
    T::decode(r).map_err(|detail| RecordError::Decode { at, what, detail })
}

/// The record layer: one txn's bytes into header, record by type, optional digest.
pub fn decode_record(bytes: &[u8]) -> Result<LoggedTxn, RecordError> {
    let mut r = Reader::new(bytes);
    let header: TxnHeader = dec(&mut r, "txn header")?;
    let after_header = r.position();
    let record = match OpCode::from_i32(header.r#type) {
        Some(OpCode::CreateSession) => {
            let timeout_ms = dec::<CreateSessionTxn>(&mut r, "CreateSessionTxn")?.time_out;
            let passwd = session_passwd(&mut r)?;
            TxnRecord::CreateSession { timeout_ms, passwd }
        }
        Some(OpCode::CloseSession) => {
            // 3.6+ log a CloseSessionTxn (unless zookeeper.closeSessionTxn.enabled is
            // off); 3.5 log no record. Either may be followed by a 12-byte digest.
            let mut probe = r.clone();
            match CloseSessionTxn::decode(&mut probe) {
                Ok(t) if matches!(probe.remaining(), 0 | TXN_DIGEST_LEN) => {
                    r = probe;
                    TxnRecord::CloseSession {
                        paths: Some(t.paths2_delete),
                    }
                }
                _ => TxnRecord::CloseSession { paths: None },
            }
        }
        Some(OpCode::Create) => {
            let mut probe = r.clone();
            match CreateTxn::decode(&mut probe) {
                Ok(t) => {
                    r = probe;
                    create_record(CreateKind::Create, t)
                }
                // SerializeUtils.deserializeTxn: a create too short for CreateTxn is a
                // CreateTxnV0 (pre-3.3), whose parent cversion is "one more" (−1).
                Err(_) => {
                    let t: CreateTxnV0 = dec(&mut r, "CreateTxnV0")?;
                    TxnRecord::Create {
                        kind: CreateKind::Create,
                        path: t.path,
                        data: t.data.0,
                        acl: t.acl,
                        ephemeral: t.ephemeral,
                        parent_cversion: -1,
                    }
                }
            }
        }
        Some(OpCode::Multi) => {
            let multi: MultiTxn = dec(&mut r, "MultiTxn")?;
            let mut records = Vec::with_capacity(multi.txns.len());
            for sub in multi.txns {
                let mut sr = Reader::new(&sub.data);
                // Sub-record offsets point at the multi record as a whole.
                let record = decode_op(sub.r#type, &mut sr).map_err(|e| match e {
                    RecordError::Decode { what, detail, .. } => RecordError::Decode {
                        at: after_header,
                        what,
                        detail,
                    },
                    other => other,
                })?;
                records.push(record);
            }
            TxnRecord::Multi(records)
        }
        _ => decode_op(header.r#type, &mut r)?,
    };
    let digest = match r.remaining() {
        0 => None,
        TXN_DIGEST_LEN => Some(dec::<TxnDigest>(&mut r, "TxnDigest")?),
        extra => {
            return Err(RecordError::Decode {
                at: r.position(),
                what: "txn record",
                detail: DecodeError::Trailing { extra },
            })
        }
    };
    Ok(LoggedTxn {
        header,
        record,
        digest,
    })
}

/// ferrokeeper's password extension after a `CreateSessionTxn`, told from ZooKeeper's
/// digest trailer by the length left (module docs).
fn session_passwd(r: &mut Reader<'_>) -> Result<Option<[u8; SESSION_PASSWD_LEN]>, RecordError> {
    if matches!(r.remaining(), 0 | TXN_DIGEST_LEN) {
        return Ok(None);
    }
    let at = r.position();
    let what = "session password";
    let b = r
        .read_buffer()
        .map_err(|detail| RecordError::Decode { at, what, detail })?;
    let passwd = b.try_into().map_err(|_| RecordError::Decode {
        at,
        what,
        detail: DecodeError::BadLength {
            at,
            len: i32::try_from(b.len()).unwrap_or(i32::MAX),
        },
    })?;
    Ok(Some(passwd))
}

fn create_record(kind: CreateKind, t: CreateTxn) -> TxnRecord {
    TxnRecord::Create {
        kind,
        path: t.path,
        data: t.data.0,
        acl: t.acl,
        ephemeral: t.ephemeral,
        parent_cversion: t.parent_c_version,
    }
}

/// The records that may appear both alone and inside a multi (`DataTree.processTxn`).
fn decode_op(txn_type: i32, r: &mut Reader<'_>) -> Result<TxnRecord, RecordError> {
    Ok(match OpCode::from_i32(txn_type) {
        Some(OpCode::Create) => create_record(CreateKind::Create, dec(r, "CreateTxn")?),
        Some(OpCode::Create2) => create_record(CreateKind::Create2, dec(r, "CreateTxn")?),
        Some(OpCode::CreateTtl) => {
            let t: CreateTtlTxn = dec(r, "CreateTTLTxn")?;
            TxnRecord::Create {
                kind: CreateKind::Ttl(t.ttl),
                path: t.path,
                data: t.data.0,
                acl: t.acl,
                ephemeral: false,
                parent_cversion: t.parent_c_version,
            }
        }
        Some(OpCode::CreateContainer) => {
            let t: CreateContainerTxn = dec(r, "CreateContainerTxn")?;
            TxnRecord::Create {
                kind: CreateKind::Container,
                path: t.path,
                data: t.data.0,
                acl: t.acl,
                ephemeral: false,
                parent_cversion: t.parent_c_version,
            }
        }
        Some(OpCode::Delete | OpCode::DeleteContainer) => TxnRecord::Delete {
            path: dec::<DeleteTxn>(r, "DeleteTxn")?.path,
        },
        Some(OpCode::SetData | OpCode::Reconfig) => {
            let t: SetDataTxn = dec(r, "SetDataTxn")?;
            TxnRecord::SetData {
                path: t.path,
                data: t.data.0,
                version: t.version,
            }
        }
        Some(OpCode::SetAcl) => {
            let t: SetAclTxn = dec(r, "SetACLTxn")?;
            TxnRecord::SetAcl {
                path: t.path,
                acl: t.acl,
                version: t.version,
            }
        }
        Some(OpCode::Check) => TxnRecord::Check {
            path: dec::<CheckVersionTxn>(r, "CheckVersionTxn")?.path,
        },
        Some(OpCode::Error) => TxnRecord::Error {
            err: dec::<ErrorTxn>(r, "ErrorTxn")?.err,
        },
        _ => return Err(RecordError::UnknownType(txn_type)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_net::jute::NullableBuffer;
    use ferrokeeper_net::records::{Acl, Id, Txn as JuteTxn};

    fn acl() -> Arc<[Acl]> {
        Arc::from(vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }])
    }

    fn roundtrip(session_id: i64, op: TxnOp) {
        let txn = Txn {
            zxid: 42,
            time_ms: 1_700_000_000_000,
            session_id,
            cxid: 7,
            op,
        };
        let mut bytes = Vec::new();
        encode(&txn, &mut bytes);
        let back = decode(&bytes).expect("decode");
        assert_eq!(format!("{txn:?}"), format!("{back:?}"));
    }

    /// The setData fast path reads what the two layers read: with and without data, with
    /// a digest trailer, and (by falling back) a path that is not UTF-8 or bytes left
    /// over that are no digest.
    #[test]
    fn set_data_fast_path_agrees_with_both_layers() {
        let two_layers = decode_two_layers;
        let record = |path: &[u8], data: Option<&[u8]>, trailer: &[u8]| {
            let mut b = Vec::new();
            TxnHeader {
                client_id: 5,
                cxid: 6,
                zxid: 7,
                time: 8,
                r#type: OpCode::SetData.code(),
            }
            .encode(&mut b);
            Buffer(path.to_vec()).encode(&mut b);
            NullableBuffer(data.map(<[u8]>::to_vec)).encode(&mut b);
            3i32.encode(&mut b);
            b.extend_from_slice(trailer);
            b
        };
        let digest = TxnDigest {
            version: 2,
            tree_digest: 99,
        }
        .to_bytes();
        for bytes in [
            record(b"/a", Some(b"xyz"), &[]),
            record(b"/a", Some(b""), &[]),
            record(b"/a", None, &[]),
            record(b"/a", Some(b"xyz"), &digest),
            record(b"/\xff", Some(b"xyz"), &[]),
            record(b"/a", Some(b"xyz"), &[1, 2, 3]),
        ] {
            assert_eq!(
                format!("{:?}", decode(&bytes)),
                format!("{:?}", two_layers(&bytes))
            );
        }
        assert!(decode_set_data(&record(b"/\xff", None, &[])).is_none());
        assert!(decode(&record(b"/a", None, &[1, 2, 3])).is_err());
    }

    #[test]
    fn every_txn_kind_round_trips() {
        let s = 0x1234;
        let p: Arc<str> = Arc::from("/a");
        let d: Option<Arc<[u8]>> = Some(Arc::from(&b"data"[..]));
        roundtrip(
            s,
            TxnOp::CreateSession {
                session_id: s,
                timeout_ms: 30000,
                passwd: [9; 16],
            },
        );
        roundtrip(s, TxnOp::CloseSession { session_id: s });
        for owner in [0, s, CONTAINER_OWNER, EXTENDED_MASK | 5000] {
            roundtrip(
                s,
                TxnOp::Create {
                    path: p.clone(),
                    data: d.clone(),
                    acl: acl(),
                    ephemeral_owner: owner,
                    parent_cversion: 3,
                },
            );
        }
        roundtrip(
            s,
            TxnOp::SetData {
                path: p.clone(),
                data: None,
                version: 1,
            },
        );
        roundtrip(s, TxnOp::Delete { path: p.clone() });
        roundtrip(
            s,
            TxnOp::SetData {
                path: p.clone(),
                data: d.clone(),
                version: 4,
            },
        );
        roundtrip(
            s,
            TxnOp::SetAcl {
                path: p.clone(),
                acl: acl(),
                aversion: 2,
            },
        );
        roundtrip(s, TxnOp::Check { path: p.clone() });
        roundtrip(
            s,
            TxnOp::Error {
                err: ErrorCode::NoNode,
            },
        );
        roundtrip(
            s,
            TxnOp::Multi(vec![
                TxnOp::Delete { path: p.clone() },
                TxnOp::Error {
                    err: ErrorCode::RuntimeInconsistency,
                },
            ]),
        );
    }

    /// The records `encode_body` writes field by field are byte for byte the
    /// `zookeeper.jute` records (`CreateTxn`, `CreateContainerTxn`, `CreateTTLTxn`,
    /// `DeleteTxn`, `SetDataTxn`, `CheckVersionTxn`, `MultiTxn` of `Txn`), null data too.
    #[test]
    fn encodes_as_the_records() {
        let s = 0x1234;
        let p: Arc<str> = Arc::from("/a/b");
        let body = |op: &TxnOp| {
            let mut b = Vec::new();
            encode_body(op, s, &mut b);
            b
        };
        let nb = |d: Option<&[u8]>| NullableBuffer(d.map(<[u8]>::to_vec));
        let mut ops = Vec::new();
        let mut records: Vec<Vec<u8>> = Vec::new();
        for data in [Some(&b"data"[..]), None] {
            let d: Option<Arc<[u8]>> = data.map(Arc::from);
            for owner in [0, s, CONTAINER_OWNER, EXTENDED_MASK | 5000] {
                ops.push(TxnOp::Create {
                    path: p.clone(),
                    data: d.clone(),
                    acl: acl(),
                    ephemeral_owner: owner,
                    parent_cversion: 3,
                });
                records.push(match owner {
                    CONTAINER_OWNER => CreateContainerTxn {
                        path: p.to_string(),
                        data: nb(data),
                        acl: acl().to_vec(),
                        parent_c_version: 3,
                    }
                    .to_bytes(),
                    o if o == s || o == 0 => CreateTxn {
                        path: p.to_string(),
                        data: nb(data),
                        acl: acl().to_vec(),
                        ephemeral: o == s,
                        parent_c_version: 3,
                    }
                    .to_bytes(),
                    _ => CreateTtlTxn {
                        path: p.to_string(),
                        data: nb(data),
                        acl: acl().to_vec(),
                        parent_c_version: 3,
                        ttl: 5000,
                    }
                    .to_bytes(),
                });
            }
            ops.push(TxnOp::SetData {
                path: p.clone(),
                data: d,
                version: 4,
            });
            records.push(
                SetDataTxn {
                    path: p.to_string(),
                    data: nb(data),
                    version: 4,
                }
                .to_bytes(),
            );
        }
        ops.push(TxnOp::Delete { path: p.clone() });
        records.push(
            DeleteTxn {
                path: p.to_string(),
            }
            .to_bytes(),
        );
        ops.push(TxnOp::Check { path: p.clone() });
        records.push(
            CheckVersionTxn {
                path: p.to_string(),
                version: -1,
            }
            .to_bytes(),
        );
        for (op, record) in ops.iter().zip(&records) {
            assert_eq!(&body(op), record, "{op:?}");
        }
        let multi = MultiTxn {
            txns: ops
                .iter()
                .zip(&records)
                .map(|(op, record)| JuteTxn {
                    r#type: op_type(op),
                    data: Buffer(record.clone()),
                })
                .collect(),
        };
        assert_eq!(body(&TxnOp::Multi(ops)), multi.to_bytes());
    }

    /// An empty record (a 3.5 closeSession has none).
    struct Nothing;
    impl Encode for Nothing {
        fn encode(&self, _: &mut Vec<u8>) {}
    }

    /// A txn's bytes as ZooKeeper's `Util.marshallTxnEntry` writes them: header, record,
    /// and (3.6+) a digest.
    fn zk_txn(op: OpCode, record: &impl Encode, digest: bool) -> Vec<u8> {
        let mut b = TxnHeader {
            client_id: 0x77,
            cxid: 1,
            zxid: 1,
            time: 5001,
            r#type: op.code(),
        }
        .to_bytes();
        record.encode(&mut b);
        if digest {
            TxnDigest {
                version: 2,
                tree_digest: 99,
            }
            .encode(&mut b);
        }
        b
    }

    fn create(path: &str) -> CreateTxn {
        CreateTxn {
            path: path.into(),
            data: NullableBuffer(Some(b"x".to_vec())),
            acl: acl().to_vec(),
            ephemeral: false,
            parent_c_version: 1,
        }
    }

    /// `SerializeUtils.deserializeTxn`'s shapes, 3.5 to 3.9.
    #[test]
    fn decodes_every_txn_kind() {
        let record = |b: &[u8]| decode_record(b).map(|l| (l.record, l.digest));
        // 3.5-style closeSession: no record at all.
        let (op, _) = record(&zk_txn(OpCode::CloseSession, &Nothing, false)).expect("3.5");
        assert_eq!(op, TxnRecord::CloseSession { paths: None });
        let close = CloseSessionTxn {
            paths2_delete: vec!["/e".into()],
        };
        let (op, d) = record(&zk_txn(OpCode::CloseSession, &close, true)).expect("3.6");
        assert_eq!(
            op,
            TxnRecord::CloseSession {
                paths: Some(vec!["/e".into()])
            }
        );
        assert!(d.is_some());
        let ttl = CreateTtlTxn {
            path: "/t".into(),
            data: NullableBuffer(Some(Vec::new())),
            acl: acl().to_vec(),
            parent_c_version: 4,
            ttl: 1000,
        };
        let (op, _) = record(&zk_txn(OpCode::CreateTtl, &ttl, true)).expect("ttl");
        assert!(matches!(
            op,
            TxnRecord::Create {
                kind: CreateKind::Ttl(1000),
                parent_cversion: 4,
                ..
            }
        ));
        let v0 = CreateTxnV0 {
            path: "/old".into(),
            data: NullableBuffer(Some(Vec::new())),
            acl: acl().to_vec(),
            ephemeral: true,
        };
        let (op, _) = record(&zk_txn(OpCode::Create, &v0, false)).expect("v0");
        assert!(matches!(
            op,
            TxnRecord::Create {
                parent_cversion: -1,
                ephemeral: true,
                ..
            }
        ));
        let multi = MultiTxn {
            txns: vec![
                JuteTxn {
                    r#type: OpCode::Create2.code(),
                    data: Buffer(create("/m").to_bytes()),
                },
                JuteTxn {
                    r#type: OpCode::SetData.code(),
                    data: Buffer(
                        SetDataTxn {
                            path: "/m".into(),
                            data: NullableBuffer(Some(b"y".to_vec())),
                            version: 1,
                        }
                        .to_bytes(),
                    ),
                },
            ],
        };
        let (op, _) = record(&zk_txn(OpCode::Multi, &multi, true)).expect("multi");
        let TxnRecord::Multi(ops) = op else {
            panic!("not a multi")
        };
        assert!(matches!(
            ops[0],
            TxnRecord::Create {
                kind: CreateKind::Create2,
                ..
            }
        ));
        assert!(matches!(ops[1], TxnRecord::SetData { version: 1, .. }));
        // reconfig logs a SetDataTxn (ReconfigRequest's txn).
        let reconfig = SetDataTxn {
            path: "/zookeeper/config".into(),
            data: NullableBuffer(Some(b"server.1=...".to_vec())),
            version: 2,
        };
        let (op, _) = record(&zk_txn(OpCode::Reconfig, &reconfig, true)).expect("reconfig");
        assert!(matches!(op, TxnRecord::SetData { version: 2, .. }));
        assert_eq!(
            record(&zk_txn(OpCode::GetData, &Nothing, false)),
            Err(RecordError::UnknownType(4))
        );
    }

    /// Errors name the offset of the field that failed within the txn bytes: after the
    /// 32-byte `TxnHeader` for a record, where the `MultiTxn` starts for a sub-record.
    #[test]
    fn record_errors_carry_offsets() {
        let header_len = TxnHeader::default().to_bytes().len();
        assert_eq!(header_len, 32);
        let mut short = zk_txn(OpCode::Delete, &DeleteTxn { path: "/a".into() }, false);
        short.truncate(short.len() - 1);
        assert!(matches!(
            decode_record(&short),
            Err(RecordError::Decode {
                at,
                what: "DeleteTxn",
                ..
            }) if at == header_len
        ));
        let mut long = zk_txn(OpCode::Delete, &DeleteTxn { path: "/a".into() }, false);
        let end = long.len();
        long.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode_record(&long),
            Err(RecordError::Decode {
                at: end,
                what: "txn record",
                detail: DecodeError::Trailing { extra: 3 },
            })
        );
        let multi = MultiTxn {
            txns: vec![JuteTxn {
                r#type: OpCode::Delete.code(),
                data: Buffer(vec![0, 0, 0, 9]),
            }],
        };
        assert!(matches!(
            decode_record(&zk_txn(OpCode::Multi, &multi, false)),
            Err(RecordError::Decode { at, .. }) if at == header_len
        ));
        // A session or a multi inside a multi is never logged.
        let nested = MultiTxn {
            txns: vec![JuteTxn {
                r#type: OpCode::CreateSession.code(),
                data: Buffer(CreateSessionTxn { time_out: 1 }.to_bytes()),
            }],
        };
        assert_eq!(
            decode_record(&zk_txn(OpCode::Multi, &nested, false)),
            Err(RecordError::UnknownType(OpCode::CreateSession.code()))
        );
    }

    /// The password extension and ZooKeeper's digest trailer after `CreateSessionTxn`,
    /// told apart by the length left (module docs).
    #[test]
    fn session_password_and_digest_are_told_apart_by_length() {
        let session = CreateSessionTxn { time_out: 4000 };
        let digest = TxnDigest {
            version: 2,
            tree_digest: 99,
        };
        let mut with_passwd = session.to_bytes();
        Buffer(vec![7; SESSION_PASSWD_LEN]).encode(&mut with_passwd);
        let cases = [
            (session.to_bytes(), false, false),
            (session.to_bytes(), false, true),
            (with_passwd.clone(), true, false),
            (with_passwd, true, true),
        ];
        for (record, has_passwd, has_digest) in cases {
            let bytes = zk_txn(OpCode::CreateSession, &RawRecord(record), has_digest);
            let logged = decode_record(&bytes).expect("createSession");
            let passwd = has_passwd.then_some([7; SESSION_PASSWD_LEN]);
            assert_eq!(
                logged.record,
                TxnRecord::CreateSession {
                    timeout_ms: 4000,
                    passwd,
                },
                "passwd {has_passwd}, digest {has_digest}"
            );
            assert_eq!(logged.digest, has_digest.then_some(digest.clone()));
            let TxnOp::CreateSession {
                session_id, passwd, ..
            } = decode(&bytes).expect("txn").op
            else {
                panic!("not a createSession")
            };
            assert_eq!(session_id, 0x77);
            let zeros = [0; SESSION_PASSWD_LEN];
            assert_eq!(passwd, if has_passwd { [7; 16] } else { zeros });
        }
        // A password of another length is refused...
        let other = |len: usize| {
            let mut record = session.to_bytes();
            Buffer(vec![7; len]).encode(&mut record);
            decode_record(&zk_txn(OpCode::CreateSession, &RawRecord(record), false))
        };
        for len in [0, 4, 15, 17] {
            assert!(other(len).is_err(), "password of {len} bytes");
        }
        // ...because one of 8 bytes would be 12 bytes, read as a digest.
        let eight = other(8).expect("reads as a digest");
        assert!(matches!(
            eight.record,
            TxnRecord::CreateSession { passwd: None, .. }
        ));
        assert!(eight.digest.is_some());
    }

    /// The interpretation layer: owners from the header's session and the create kind,
    /// closeSession's path list ignored, unknown error codes refused.
    #[test]
    fn interpretation_of_records() {
        let s = 0x99;
        let owner = |kind, ephemeral| {
            let record = TxnRecord::Create {
                kind,
                path: "/n".into(),
                data: None,
                acl: acl().to_vec(),
                ephemeral,
                parent_cversion: 1,
            };
            match interpret(s, record) {
                Ok(TxnOp::Create {
                    ephemeral_owner, ..
                }) => ephemeral_owner,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(owner(CreateKind::Create, true), s);
        assert_eq!(owner(CreateKind::Create2, false), 0);
        assert_eq!(owner(CreateKind::Container, false), CONTAINER_OWNER);
        assert_eq!(owner(CreateKind::Ttl(500), false), EXTENDED_MASK | 500);
        let close = TxnRecord::CloseSession {
            paths: Some(vec!["/elsewhere".into()]),
        };
        assert!(matches!(
            interpret(s, close),
            Ok(TxnOp::CloseSession { session_id }) if session_id == s
        ));
        assert_eq!(
            interpret(s, TxnRecord::Multi(vec![TxnRecord::Error { err: -12345 }])).err(),
            Some(TxnDecodeError::ErrorCode(-12345))
        );
    }

    /// Record bytes written as they are.
    struct RawRecord(Vec<u8>);
    impl Encode for RawRecord {
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = decode(&bytes);
        }
    }
}
