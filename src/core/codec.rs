//! Txns as bytes: the payload of a log record. The layout is ZooKeeper's own txn
//! serialization (`TxnHeader` followed by the txn record of `zookeeper.jute`, and
//! `MultiTxn` of `Txn{type, data}` for multi), so the same decoder reads ferrokeeper's
//! log and an imported ZooKeeper log. One extension: `CreateSessionTxn` is followed by
//! the session's 16-byte password as a jute `buffer`, because ferrokeeper's passwords are
//! random where ZooKeeper derives them from the session id and a server secret.

use std::sync::Arc;

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::jute::{Buffer, Decode, DecodeError, Encode, NullableBuffer, Reader};
use ferrokeeper_net::records::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, MultiTxn, SetAclTxn, SetDataTxn, Txn as JuteTxn, TxnHeader,
};

use super::txn::{Txn, TxnOp};
use crate::core::state::{owner_kind, OwnerKind, CONTAINER_OWNER, EXTENDED_MASK, TTL_VALUE_MASK};

/// Why log bytes are not a txn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnDecodeError {
    /// The bytes are not valid jute for the record.
    #[error("txn record: {0}")]
    Jute(#[from] DecodeError),
    /// The header names a txn type that cannot be applied.
    #[error("txn type {0} cannot be applied")]
    Type(i32),
    /// An error code that ZooKeeper does not define.
    #[error("unknown error code {0} in an error txn")]
    ErrorCode(i32),
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
        } => match owner_kind(*ephemeral_owner, true) {
            OwnerKind::Container => CreateContainerTxn {
                path: path.to_string(),
                data: NullableBuffer(data.as_deref().map(<[u8]>::to_vec)),
                acl: acl.to_vec(),
                parent_c_version: *parent_cversion,
            }
            .encode(out),
            OwnerKind::Ttl => CreateTtlTxn {
                path: path.to_string(),
                data: NullableBuffer(data.as_deref().map(<[u8]>::to_vec)),
                acl: acl.to_vec(),
                parent_c_version: *parent_cversion,
                ttl: *ephemeral_owner & TTL_VALUE_MASK,
            }
            .encode(out),
            kind => {
                // ZooKeeper's CreateTxn names no owner: an ephemeral belongs to the
                // session in the header, which prep guarantees.
                assert!(
                    kind == OwnerKind::Void || *ephemeral_owner == session_id,
                    "ephemeral {path} owned by 0x{ephemeral_owner:x}, created by 0x{session_id:x}"
                );
                CreateTxn {
                    path: path.to_string(),
                    data: NullableBuffer(data.as_deref().map(<[u8]>::to_vec)),
                    acl: acl.to_vec(),
                    ephemeral: kind == OwnerKind::Normal,
                    parent_c_version: *parent_cversion,
                }
                .encode(out)
            }
        },
        TxnOp::Delete { path } => DeleteTxn {
            path: path.to_string(),
        }
        .encode(out),
        TxnOp::SetData {
            path,
            data,
            version,
        } => SetDataTxn {
            path: path.to_string(),
            data: NullableBuffer(data.as_deref().map(<[u8]>::to_vec)),
            version: *version,
        }
        .encode(out),
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
        TxnOp::Check { path } => CheckVersionTxn {
            path: path.to_string(),
            version: -1,
        }
        .encode(out),
        TxnOp::Error { err } => ErrorTxn { err: err.code() }.encode(out),
        TxnOp::Multi(ops) => MultiTxn {
            txns: ops
                .iter()
                .map(|o| {
                    let mut data = Vec::new();
                    encode_body(o, session_id, &mut data);
                    JuteTxn {
                        r#type: op_type(o),
                        data: Buffer(data),
                    }
                })
                .collect(),
        }
        .encode(out),
    }
}

/// Decodes a txn from its bytes (ferrokeeper's log or ZooKeeper's).
pub fn decode(bytes: &[u8]) -> Result<Txn, TxnDecodeError> {
    let mut r = Reader::new(bytes);
    let h = TxnHeader::decode(&mut r)?;
    let op = decode_body(h.r#type, h.client_id, &mut r)?;
    Ok(Txn {
        zxid: h.zxid,
        time_ms: h.time,
        session_id: h.client_id,
        cxid: h.cxid,
        op,
    })
}

fn decode_body(ty: i32, session_id: i64, r: &mut Reader<'_>) -> Result<TxnOp, TxnDecodeError> {
    let op = OpCode::from_i32(ty).ok_or(TxnDecodeError::Type(ty))?;
    Ok(match op {
        OpCode::CreateSession => {
            let t = CreateSessionTxn::decode(r)?;
            // ZooKeeper's own logs carry no password: such sessions get an unusable
            // all-zero one until they expire.
            let mut passwd = [0u8; 16];
            if r.remaining() > 0 {
                let b = r.read_buffer()?;
                let n = b.len().min(16);
                passwd[..n].copy_from_slice(&b[..n]);
            }
            TxnOp::CreateSession {
                session_id,
                timeout_ms: t.time_out,
                passwd,
            }
        }
        OpCode::CloseSession => {
            // The paths are derived from the state at apply time; ZooKeeper's list
            // (3.6+) is read and ignored.
            if r.remaining() > 0 {
                CloseSessionTxn::decode(r)?;
            }
            TxnOp::CloseSession { session_id }
        }
        OpCode::Create | OpCode::Create2 => {
            let t = CreateTxn::decode(r)?;
            TxnOp::Create {
                path: Arc::from(t.path),
                data: t.data.0.map(Arc::from),
                acl: Arc::from(t.acl),
                ephemeral_owner: if t.ephemeral { session_id } else { 0 },
                parent_cversion: t.parent_c_version,
            }
        }
        OpCode::CreateContainer => {
            let t = CreateContainerTxn::decode(r)?;
            TxnOp::Create {
                path: Arc::from(t.path),
                data: t.data.0.map(Arc::from),
                acl: Arc::from(t.acl),
                ephemeral_owner: CONTAINER_OWNER,
                parent_cversion: t.parent_c_version,
            }
        }
        OpCode::CreateTtl => {
            let t = CreateTtlTxn::decode(r)?;
            TxnOp::Create {
                path: Arc::from(t.path),
                data: t.data.0.map(Arc::from),
                acl: Arc::from(t.acl),
                ephemeral_owner: EXTENDED_MASK | (t.ttl & TTL_VALUE_MASK),
                parent_cversion: t.parent_c_version,
            }
        }
        OpCode::Delete | OpCode::DeleteContainer => TxnOp::Delete {
            path: Arc::from(DeleteTxn::decode(r)?.path),
        },
        OpCode::SetData => {
            let t = SetDataTxn::decode(r)?;
            TxnOp::SetData {
                path: Arc::from(t.path),
                data: t.data.0.map(Arc::from),
                version: t.version,
            }
        }
        OpCode::SetAcl => {
            let t = SetAclTxn::decode(r)?;
            TxnOp::SetAcl {
                path: Arc::from(t.path),
                acl: Arc::from(t.acl),
                aversion: t.version,
            }
        }
        OpCode::Check => TxnOp::Check {
            path: Arc::from(CheckVersionTxn::decode(r)?.path),
        },
        OpCode::Error => {
            let code = ErrorTxn::decode(r)?.err;
            TxnOp::Error {
                err: ErrorCode::from_i32(code).ok_or(TxnDecodeError::ErrorCode(code))?,
            }
        }
        OpCode::Multi => {
            let m = MultiTxn::decode(r)?;
            let mut ops = Vec::with_capacity(m.txns.len());
            for t in m.txns {
                let mut sub = Reader::new(&t.data.0);
                ops.push(decode_body(t.r#type, session_id, &mut sub)?);
            }
            TxnOp::Multi(ops)
        }
        _ => return Err(TxnDecodeError::Type(ty)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_net::records::{Acl, Id};

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

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = decode(&bytes);
        }
    }
}
