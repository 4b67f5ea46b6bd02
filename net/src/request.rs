//! Requests as the server receives them: the connect handshake, then framed packets of
//! `RequestHeader` + a record chosen by the header's type.
//!
//! Like ZooKeeper, the server ignores bytes after the record inside a frame (clients of
//! different versions append optional fields), so request decoding is not strict about
//! trailing bytes; it is strict about everything the record needs.

use crate::codes::OpCode;
use crate::jute::{Decode, DecodeError, NullableBuffer, Reader};
use crate::records::*;

/// The connect handshake (`ConnectRequest` + the optional `readOnly` byte of 3.3+ clients).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// The record itself.
    pub request: ConnectRequest,
    /// Whether the client accepts a read-only server; absent on old clients (false).
    pub read_only: bool,
    /// Whether the client sent the `readOnly` byte; the server answers in the same form.
    pub has_read_only: bool,
}

impl Connect {
    /// Decodes a connect frame's payload.
    pub fn decode(payload: &[u8]) -> Result<Connect, DecodeError> {
        let mut r = Reader::new(payload);
        let request = ConnectRequest::decode(&mut r)?;
        let has_read_only = r.remaining() > 0;
        let read_only = if has_read_only { r.read_bool()? } else { false };
        Ok(Connect {
            request,
            read_only,
            has_read_only,
        })
    }
}

/// Any of the four create requests in one shape; `ttl` is read only for createTTL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateOp {
    /// Which create this was: `Create`, `Create2`, `CreateContainer` or `CreateTtl`.
    pub opcode: Option<OpCode>,
    /// The requested path (before any sequence suffix).
    pub path: String,
    /// Initial data (null is kept apart from empty, as ZooKeeper keeps it).
    pub data: NullableBuffer,
    /// Initial ACL.
    pub acl: Vec<Acl>,
    /// `CreateMode` flags as sent.
    pub flags: i32,
    /// TTL in ms for createTTL; −1 otherwise (as ZooKeeper's prep sets it).
    pub ttl: i64,
}

impl CreateOp {
    fn decode(opcode: OpCode, r: &mut Reader<'_>) -> Result<CreateOp, DecodeError> {
        if opcode == OpCode::CreateTtl {
            let c = CreateTtlRequest::decode(r)?;
            Ok(CreateOp {
                opcode: Some(opcode),
                path: c.path,
                data: c.data,
                acl: c.acl,
                flags: c.flags,
                ttl: c.ttl,
            })
        } else {
            let c = CreateRequest::decode(r)?;
            Ok(CreateOp {
                opcode: Some(opcode),
                path: c.path,
                data: c.data,
                acl: c.acl,
                flags: c.flags,
                ttl: -1,
            })
        }
    }

    /// The opcode, `Create` when unset.
    pub fn op(&self) -> OpCode {
        self.opcode.unwrap_or(OpCode::Create)
    }
}

/// One operation inside a multi or multiRead (`MultiOperationRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create, create2, createContainer or createTTL.
    Create(CreateOp),
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// check (version check).
    Check(CheckVersionRequest),
    /// getChildren (multiRead only).
    GetChildren(GetChildrenRequest),
    /// getData (multiRead only).
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The op's opcode as it travels in `MultiHeader.type`.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(c) => c.op(),
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The path the op works on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(c) => &c.path,
            MultiOp::Delete(d) => &d.path,
            MultiOp::SetData(s) => &s.path,
            MultiOp::Check(c) => &c.path,
            MultiOp::GetChildren(g) => &g.path,
            MultiOp::GetData(g) => &g.path,
        }
    }
}

/// Decodes a `MultiOperationRecord`: `MultiHeader` + op record pairs until `done`.
pub fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = match OpCode::from_i32(h.r#type) {
            Some(
                op @ (OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl),
            ) => MultiOp::Create(CreateOp::decode(op, r)?),
            Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::decode(r)?),
            Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::decode(r)?),
            Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::decode(r)?),
            Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::decode(r)?),
            Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::decode(r)?),
            _ => {
                return Err(DecodeError::Unknown {
                    what: "multi op type",
                    value: h.r#type,
                })
            }
        };
        ops.push(op);
    }
}

/// A request after the handshake, decoded by its header's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// ping.
    Ping,
    /// closeSession.
    CloseSession,
    /// create, create2, createContainer, createTTL.
    Create(CreateOp),
    /// delete.
    Delete(DeleteRequest),
    /// exists.
    Exists(ExistsRequest),
    /// getData.
    GetData(GetDataRequest),
    /// setData.
    SetData(SetDataRequest),
    /// getACL.
    GetAcl(GetAclRequest),
    /// setACL.
    SetAcl(SetAclRequest),
    /// getChildren.
    GetChildren(GetChildrenRequest),
    /// getChildren2.
    GetChildren2(GetChildren2Request),
    /// sync.
    Sync(SyncRequest),
    /// check outside a multi.
    Check(CheckVersionRequest),
    /// multi.
    Multi(Vec<MultiOp>),
    /// multiRead.
    MultiRead(Vec<MultiOp>),
    /// reconfig.
    Reconfig(ReconfigRequest),
    /// checkWatches.
    CheckWatches(CheckWatchesRequest),
    /// removeWatches.
    RemoveWatches(RemoveWatchesRequest),
    /// auth.
    Auth(AuthPacket),
    /// setWatches (as setWatches2 with no persistent watches) or setWatches2.
    SetWatches(SetWatches2),
    /// sasl.
    Sasl(GetSaslRequest),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// addWatch.
    AddWatch(AddWatchRequest),
    /// whoAmI.
    WhoAmI,
    /// A type this server does not serve (including ones only servers send).
    Unknown(i32),
}

impl Request {
    /// Decodes a request frame's payload into its header and body. A header that cannot
    /// be read is an `Err` with no header; a body that cannot be read is `(header, Err)`,
    /// so the caller can answer that xid with `MarshallingError` as ZooKeeper does.
    pub fn decode(
        payload: &[u8],
    ) -> Result<(RequestHeader, Result<Request, DecodeError>), DecodeError> {
        let mut r = Reader::new(payload);
        let header = RequestHeader::decode(&mut r)?;
        Ok((header, Self::decode_body(header.r#type, &mut r)))
    }

    fn decode_body(ty: i32, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        let Some(op) = OpCode::from_i32(ty) else {
            return Ok(Request::Unknown(ty));
        };
        Ok(match op {
            OpCode::Ping => Request::Ping,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Request::Create(CreateOp::decode(op, r)?)
            }
            OpCode::Delete => Request::Delete(Decode::decode(r)?),
            OpCode::Exists => Request::Exists(Decode::decode(r)?),
            OpCode::GetData => Request::GetData(Decode::decode(r)?),
            OpCode::SetData => Request::SetData(Decode::decode(r)?),
            OpCode::GetAcl => Request::GetAcl(Decode::decode(r)?),
            OpCode::SetAcl => Request::SetAcl(Decode::decode(r)?),
            OpCode::GetChildren => Request::GetChildren(Decode::decode(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Decode::decode(r)?),
            OpCode::Sync => Request::Sync(Decode::decode(r)?),
            OpCode::Check => Request::Check(Decode::decode(r)?),
            OpCode::Multi => Request::Multi(decode_multi(r)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi(r)?),
            OpCode::Reconfig => Request::Reconfig(Decode::decode(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Decode::decode(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Decode::decode(r)?),
            OpCode::Auth => Request::Auth(Decode::decode(r)?),
            OpCode::SetWatches => {
                let s = SetWatches::decode(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                })
            }
            OpCode::SetWatches2 => Request::SetWatches(Decode::decode(r)?),
            OpCode::Sasl => Request::Sasl(Decode::decode(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Decode::decode(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Decode::decode(r)?),
            OpCode::AddWatch => Request::AddWatch(Decode::decode(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => Request::Unknown(ty),
        })
    }

    /// Whether this request changes state and so goes through the commit stage.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::CloseSession
                | Request::Reconfig(_)
        )
    }
}
