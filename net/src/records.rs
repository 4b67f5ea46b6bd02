//! Every record of `zookeeper.jute` (apache/zookeeper, `zookeeper-jute/src/main/resources`),
//! one Rust struct per jute `class`, fields in jute order with jute's names in snake_case.
//! `ustring` is [`String`], `buffer` is [`Buffer`] ([`NullableBuffer`] for znode data,
//! where ZooKeeper keeps null apart from empty), `vector<T>` is `Vec<T>`.
//!
//! Field documentation lives in the jute file and ZooKeeper's Programmer's Guide; the
//! structs mirror them one to one, so they are not documented again field by field.
#![allow(missing_docs)]

use crate::jute::{Buffer, NullableBuffer};
use crate::jute_record;

// ---- module org.apache.zookeeper.data ----

jute_record! {
    /// An identity: a scheme and the id within it (`world:anyone`, `digest:user:hash`).
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Id { pub scheme: String, pub id: String }
}
jute_record! {
    /// A permission set granted to one identity.
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Acl { pub perms: i32, pub id: Id }
}
jute_record! {
    /// A znode's metadata as clients see it.
    #[derive(Copy, Hash)]
    pub struct Stat {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub data_length: i32, pub num_children: i32, pub pzxid: i64,
    }
}
jute_record! {
    /// A znode's metadata as ZooKeeper stores it (no dataLength, numChildren).
    #[derive(Copy)]
    pub struct StatPersisted {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub pzxid: i64,
    }
}
jute_record! {
    /// One authenticated identity of a session, as whoAmI reports it (3.7+).
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

// ---- module org.apache.zookeeper.proto ----

jute_record! {
    /// The first packet of a connection. Clients of 3.3+ append a `readOnly` boolean
    /// after this record; see [`crate::request::Connect`].
    pub struct ConnectRequest {
        pub protocol_version: i32, pub last_zxid_seen: i64, pub time_out: i32,
        pub session_id: i64, pub passwd: Buffer,
    }
}
jute_record! {
    /// The server's answer to [`ConnectRequest`]; a `readOnly` byte follows for new clients.
    pub struct ConnectResponse {
        pub protocol_version: i32, pub time_out: i32, pub session_id: i64, pub passwd: Buffer,
    }
}
jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64, pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>, pub child_watches: Vec<String>,
    }
}
jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64, pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>, pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>, pub persistent_recursive_watches: Vec<String>,
    }
}
jute_record! {
    #[derive(Copy)]
    pub struct RequestHeader { pub xid: i32, pub r#type: i32 }
}
jute_record! {
    #[derive(Copy)]
    pub struct MultiHeader { pub r#type: i32, pub done: bool, pub err: i32 }
}
jute_record! {
    pub struct AuthPacket { pub r#type: i32, pub scheme: String, pub auth: Buffer }
}
jute_record! {
    #[derive(Copy)]
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}
jute_record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: NullableBuffer, pub version: i32 } }
jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String, pub leaving_servers: String,
        pub new_members: String, pub cur_config_id: i64,
    }
}
jute_record! { pub struct SetDataResponse { pub stat: Stat } }
jute_record! { pub struct GetSaslRequest { pub token: Buffer } }
jute_record! { pub struct SetSaslRequest { pub token: Buffer } }
jute_record! { pub struct SetSaslResponse { pub token: Buffer } }
jute_record! {
    pub struct CreateRequest { pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub flags: i32 }
}
jute_record! {
    pub struct CreateTtlRequest {
        pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64,
    }
}
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
jute_record! { pub struct GetStatPersistedRequest { pub path: String } }
jute_record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetMaxChildrenRequest { pub path: String } }
jute_record! { pub struct GetMaxChildrenResponse { pub max: i32 } }
jute_record! { pub struct SetMaxChildrenRequest { pub path: String, pub max: i32 } }
jute_record! { pub struct SyncRequest { pub path: String } }
jute_record! { pub struct SyncResponse { pub path: String } }
jute_record! { pub struct GetAclRequest { pub path: String } }
jute_record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct SetAclResponse { pub stat: Stat } }
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! { pub struct WatcherEvent { pub r#type: i32, pub state: i32, pub path: String } }
jute_record! { pub struct ErrorResponse { pub err: i32 } }
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct ExistsResponse { pub stat: Stat } }
jute_record! { pub struct GetDataResponse { pub data: NullableBuffer, pub stat: Stat } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
jute_record! { pub struct GetStatPersistedResponse { pub stat_persisted: StatPersisted } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
jute_record! { pub struct CheckWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct RemoveWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
jute_record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }

// ---- module org.apache.zookeeper.server.quorum ----

jute_record! {
    pub struct LearnerInfo { pub serverid: i64, pub protocol_version: i32, pub config_version: i64 }
}
jute_record! {
    pub struct QuorumPacket { pub r#type: i32, pub zxid: i64, pub data: Buffer, pub authinfo: Vec<Id> }
}
jute_record! { pub struct QuorumAuthPacket { pub magic: i64, pub status: i32, pub token: Buffer } }

// ---- module org.apache.zookeeper.server.persistence ----

jute_record! { pub struct FileHeader { pub magic: i32, pub version: i32, pub dbid: i64 } }

// ---- module org.apache.zookeeper.txn ----

jute_record! { pub struct TxnDigest { pub version: i32, pub tree_digest: i64 } }
jute_record! {
    pub struct TxnHeader { pub client_id: i64, pub cxid: i32, pub zxid: i64, pub time: i64, pub r#type: i32 }
}
jute_record! {
    pub struct CreateTxnV0 { pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub ephemeral: bool }
}
jute_record! {
    pub struct CreateTxn {
        pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub ephemeral: bool,
        pub parent_c_version: i32,
    }
}
jute_record! {
    pub struct CreateTtlTxn {
        pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub parent_c_version: i32, pub ttl: i64,
    }
}
jute_record! {
    pub struct CreateContainerTxn {
        pub path: String, pub data: NullableBuffer, pub acl: Vec<Acl>, pub parent_c_version: i32,
    }
}
jute_record! { pub struct DeleteTxn { pub path: String } }
jute_record! { pub struct SetDataTxn { pub path: String, pub data: NullableBuffer, pub version: i32 } }
jute_record! { pub struct CheckVersionTxn { pub path: String, pub version: i32 } }
jute_record! { pub struct SetAclTxn { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct SetMaxChildrenTxn { pub path: String, pub max: i32 } }
jute_record! { pub struct CreateSessionTxn { pub time_out: i32 } }
jute_record! { pub struct CloseSessionTxn { pub paths2_delete: Vec<String> } }
jute_record! { pub struct ErrorTxn { pub err: i32 } }
jute_record! { pub struct Txn { pub r#type: i32, pub data: Buffer } }
jute_record! { pub struct MultiTxn { pub txns: Vec<Txn> } }
