//! Values of every wire type built from a byte string, for proptest (which shrinks the
//! bytes, and so the values) and for the structure-aware fuzz target (which includes this
//! file by path). The bytes only steer choices: any byte string makes a valid value,
//! and running out of bytes makes the smallest one.
#![allow(dead_code)]

use ferrokeeper_net::codes::OpCode;
use ferrokeeper_net::records::*;
use ferrokeeper_net::request::{Connect, CreateOp, MultiOp, Request};
use ferrokeeper_net::response::{ConnectReply, MultiResult};
use ferrokeeper_net::{Buffer, NullableBuffer};

/// A cursor over the steering bytes; reads past the end as zeros.
pub struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    /// A source over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Src { data, pos: 0 }
    }

    /// The next byte, or 0 once the bytes are used up.
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = self.byte();
        }
        a
    }
}

/// A type that can be built from steering bytes.
pub trait Gen: Sized {
    /// Builds one value.
    fn gen(s: &mut Src<'_>) -> Self;
}

impl Gen for i32 {
    fn gen(s: &mut Src<'_>) -> Self {
        // Edge values first, so that they come up often and shrink to 0.
        match s.below(8) {
            0 => 0,
            1 => -1,
            2 => i32::MIN,
            3 => i32::MAX,
            _ => i32::from_be_bytes(s.array()),
        }
    }
}

impl Gen for i64 {
    fn gen(s: &mut Src<'_>) -> Self {
        match s.below(8) {
            0 => 0,
            1 => -1,
            2 => i64::MIN,
            3 => i64::MAX,
            _ => i64::from_be_bytes(s.array()),
        }
    }
}

impl Gen for bool {
    fn gen(s: &mut Src<'_>) -> Self {
        s.byte() & 1 == 1
    }
}

impl Gen for String {
    fn gen(s: &mut Src<'_>) -> Self {
        // Paths, empty strings and multi-byte UTF-8 (jute strings are UTF-8 on the wire).
        const PIECES: [&str; 8] = ["/", "a", "zk", "-", "0000000001", "é", "日本", "🦀"];
        let n = s.below(6);
        let mut out = String::new();
        for _ in 0..n {
            out.push_str(PIECES[s.below(PIECES.len())]);
        }
        out
    }
}

impl Gen for Buffer {
    fn gen(s: &mut Src<'_>) -> Self {
        let n = match s.below(8) {
            7 => 300,
            k => k * 3,
        };
        Buffer((0..n).map(|_| s.byte()).collect())
    }
}

impl Gen for NullableBuffer {
    /// Null one time in eight: ZooKeeper keeps null data apart from empty.
    fn gen(s: &mut Src<'_>) -> Self {
        if s.below(8) == 0 {
            NullableBuffer(None)
        } else {
            NullableBuffer(Some(Buffer::gen(s).0))
        }
    }
}

impl<T: Gen> Gen for Vec<T> {
    fn gen(s: &mut Src<'_>) -> Self {
        let n = s.below(4);
        (0..n).map(|_| T::gen(s)).collect()
    }
}

/// Something done to every record type.
pub trait RecordVisitor {
    /// Visits record type `T`, called `name`.
    fn visit<T>(&mut self, name: &str)
    where
        T: Gen
            + ferrokeeper_net::Encode
            + ferrokeeper_net::Decode
            + PartialEq
            + std::fmt::Debug
            + Default;
}

/// Implements [`Gen`] for records by listing their fields; the field types come from
/// the struct itself.
macro_rules! gen_records {
    ($( $name:ident { $($field:ident),* } ),* $(,)?) => {
        $(
            impl Gen for $name {
                #[allow(unused_variables)]
                fn gen(s: &mut Src<'_>) -> Self {
                    $name { $( $field: Gen::gen(s) ),* }
                }
            }
        )*
        /// The names of the records that have a generator, to check none is missed.
        pub const RECORD_NAMES: &[&str] = &[$(stringify!($name)),*];

        /// Calls `v` once per record type.
        pub fn for_each_record(v: &mut impl RecordVisitor) {
            $( v.visit::<$name>(stringify!($name)); )*
        }
    };
}

gen_records! {
    Id { scheme, id },
    Acl { perms, id },
    Stat { czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeral_owner, data_length, num_children, pzxid },
    StatPersisted { czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeral_owner, pzxid },
    ClientInfo { auth_scheme, user },
    ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd },
    ConnectResponse { protocol_version, time_out, session_id, passwd },
    SetWatches { relative_zxid, data_watches, exist_watches, child_watches },
    SetWatches2 { relative_zxid, data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches },
    RequestHeader { xid, r#type },
    MultiHeader { r#type, done, err },
    AuthPacket { r#type, scheme, auth },
    ReplyHeader { xid, zxid, err },
    GetDataRequest { path, watch },
    SetDataRequest { path, data, version },
    ReconfigRequest { joining_servers, leaving_servers, new_members, cur_config_id },
    SetDataResponse { stat },
    GetSaslRequest { token },
    SetSaslRequest { token },
    SetSaslResponse { token },
    CreateRequest { path, data, acl, flags },
    CreateTtlRequest { path, data, acl, flags, ttl },
    DeleteRequest { path, version },
    GetChildrenRequest { path, watch },
    GetAllChildrenNumberRequest { path },
    GetStatPersistedRequest { path },
    GetChildren2Request { path, watch },
    CheckVersionRequest { path, version },
    GetMaxChildrenRequest { path },
    GetMaxChildrenResponse { max },
    SetMaxChildrenRequest { path, max },
    SyncRequest { path },
    SyncResponse { path },
    GetAclRequest { path },
    SetAclRequest { path, acl, version },
    SetAclResponse { stat },
    AddWatchRequest { path, mode },
    WatcherEvent { r#type, state, path },
    ErrorResponse { err },
    CreateResponse { path },
    Create2Response { path, stat },
    ExistsRequest { path, watch },
    ExistsResponse { stat },
    GetDataResponse { data, stat },
    GetChildrenResponse { children },
    GetAllChildrenNumberResponse { total_number },
    GetStatPersistedResponse { stat_persisted },
    GetChildren2Response { children, stat },
    GetAclResponse { acl, stat },
    CheckWatchesRequest { path, r#type },
    RemoveWatchesRequest { path, r#type },
    GetEphemeralsRequest { prefix_path },
    GetEphemeralsResponse { ephemerals },
    WhoAmIResponse { client_info },
    LearnerInfo { serverid, protocol_version, config_version },
    QuorumPacket { r#type, zxid, data, authinfo },
    QuorumAuthPacket { magic, status, token },
    FileHeader { magic, version, dbid },
    TxnDigest { version, tree_digest },
    TxnHeader { client_id, cxid, zxid, time, r#type },
    CreateTxnV0 { path, data, acl, ephemeral },
    CreateTxn { path, data, acl, ephemeral, parent_c_version },
    CreateTtlTxn { path, data, acl, parent_c_version, ttl },
    CreateContainerTxn { path, data, acl, parent_c_version },
    DeleteTxn { path },
    SetDataTxn { path, data, version },
    CheckVersionTxn { path, version },
    SetAclTxn { path, acl, version },
    SetMaxChildrenTxn { path, max },
    CreateSessionTxn { time_out },
    CloseSessionTxn { paths2_delete },
    ErrorTxn { err },
    Txn { r#type, data },
    MultiTxn { txns },
}

/// The four create opcodes.
pub const CREATE_OPS: [OpCode; 4] = [
    OpCode::Create,
    OpCode::Create2,
    OpCode::CreateContainer,
    OpCode::CreateTtl,
];

impl Gen for CreateOp {
    /// A create as `Request::decode` returns it: the opcode always set, ttl -1 unless
    /// createTTL (the other creates carry none on the wire; -1 is what ZooKeeper's prep
    /// uses for them).
    fn gen(s: &mut Src<'_>) -> Self {
        let op = CREATE_OPS[s.below(4)];
        CreateOp {
            opcode: Some(op),
            path: Gen::gen(s),
            data: Gen::gen(s),
            acl: Gen::gen(s),
            flags: Gen::gen(s),
            ttl: if op == OpCode::CreateTtl {
                Gen::gen(s)
            } else {
                -1
            },
        }
    }
}

impl Gen for MultiOp {
    fn gen(s: &mut Src<'_>) -> Self {
        match s.below(6) {
            0 => MultiOp::Create(Gen::gen(s)),
            1 => MultiOp::Delete(Gen::gen(s)),
            2 => MultiOp::SetData(Gen::gen(s)),
            3 => MultiOp::Check(Gen::gen(s)),
            4 => MultiOp::GetChildren(Gen::gen(s)),
            _ => MultiOp::GetData(Gen::gen(s)),
        }
    }
}

/// Header types `Request::decode` reads as `Request::Unknown`: the ones only servers
/// use, and numbers that are no opcode.
fn unknown_type(s: &mut Src<'_>) -> i32 {
    match s.below(6) {
        0 => OpCode::Notification.code(),
        1 => OpCode::DeleteContainer.code(),
        2 => OpCode::CreateSession.code(),
        3 => OpCode::Error.code(),
        _ => {
            let t = i32::gen(s);
            if OpCode::from_i32(t).is_some() {
                1000
            } else {
                t
            }
        }
    }
}

impl Gen for Request {
    /// A request as `Request::decode` returns it (setWatches with no persistent watches
    /// is the only shape of type 101, so both shapes come up).
    fn gen(s: &mut Src<'_>) -> Self {
        match s.below(26) {
            0 => Request::Ping,
            1 => Request::CloseSession,
            2 => Request::Create(Gen::gen(s)),
            3 => Request::Delete(Gen::gen(s)),
            4 => Request::Exists(Gen::gen(s)),
            5 => Request::GetData(Gen::gen(s)),
            6 => Request::SetData(Gen::gen(s)),
            7 => Request::GetAcl(Gen::gen(s)),
            8 => Request::SetAcl(Gen::gen(s)),
            9 => Request::GetChildren(Gen::gen(s)),
            10 => Request::GetChildren2(Gen::gen(s)),
            11 => Request::Sync(Gen::gen(s)),
            12 => Request::Check(Gen::gen(s)),
            13 => Request::Multi(Gen::gen(s)),
            14 => Request::MultiRead(Gen::gen(s)),
            15 => Request::Reconfig(Gen::gen(s)),
            16 => Request::CheckWatches(Gen::gen(s)),
            17 => Request::RemoveWatches(Gen::gen(s)),
            18 => Request::Auth(Gen::gen(s)),
            19 => Request::SetWatches(Gen::gen(s)),
            20 => Request::Sasl(Gen::gen(s)),
            21 => Request::GetEphemerals(Gen::gen(s)),
            22 => Request::GetAllChildrenNumber(Gen::gen(s)),
            23 => Request::AddWatch(Gen::gen(s)),
            24 => Request::WhoAmI,
            _ => Request::Unknown(unknown_type(s)),
        }
    }
}

impl Gen for MultiResult {
    fn gen(s: &mut Src<'_>) -> Self {
        match s.below(8) {
            0 => MultiResult::Create(Gen::gen(s)),
            1 => MultiResult::Create2(Gen::gen(s)),
            2 => MultiResult::Delete,
            3 => MultiResult::SetData(Gen::gen(s)),
            4 => MultiResult::Check,
            5 => MultiResult::GetChildren(Gen::gen(s)),
            6 => MultiResult::GetData(Gen::gen(s)),
            _ => MultiResult::Error(Gen::gen(s)),
        }
    }
}

impl Gen for Connect {
    /// A handshake as `Connect::decode` returns it: `read_only` is false without the byte.
    fn gen(s: &mut Src<'_>) -> Self {
        let request = Gen::gen(s);
        let has_read_only = bool::gen(s);
        let read_only = has_read_only && bool::gen(s);
        Connect {
            request,
            read_only,
            has_read_only,
        }
    }
}

impl Gen for ConnectReply {
    fn gen(s: &mut Src<'_>) -> Self {
        let response = Gen::gen(s);
        let read_only = if bool::gen(s) {
            Some(bool::gen(s))
        } else {
            None
        };
        ConnectReply {
            response,
            read_only,
        }
    }
}
