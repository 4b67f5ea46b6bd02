//! A minimal ZooKeeper client over tokio TCP, built on `ferrokeeper-net`'s records, for
//! tests that need what a full client library hides: the exact error code of every
//! reply, the reply header's zxid, every Stat field, every notification in arrival
//! order interleaved with replies, requests a library refuses to send (bad paths,
//! unknown opcodes), and a session that simply stops talking.
//!
//! One request is in flight at a time: [`Conn::call`] writes a request and reads frames
//! until that request's reply comes back, keeping every notification that arrives on
//! the way in [`Conn::events`] and every frame in [`Conn::log`]. No background pings
//! are sent: a test that idles longer than a third of its session timeout must
//! [`Conn::ping`] itself, and a test that wants its session to expire just stops.
#![allow(dead_code)]

pub mod tree;

use std::collections::VecDeque;
use std::time::Duration;

use ferrokeeper_net::frame::{begin_frame, check_frame, end_frame};
use ferrokeeper_net::jute::{Decode, Encode, Reader};
use ferrokeeper_net::records::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Opcodes (`ZooDefs.OpCode`).
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Error codes (`KeeperException.Code`) the tests name.
pub mod err {
    pub const OK: i32 = 0;
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    pub const MARSHALLING_ERROR: i32 = -5;
    pub const UNIMPLEMENTED: i32 = -6;
    pub const BAD_ARGUMENTS: i32 = -8;
    pub const NO_NODE: i32 = -101;
    pub const NO_AUTH: i32 = -102;
    pub const BAD_VERSION: i32 = -103;
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    pub const NODE_EXISTS: i32 = -110;
    pub const NOT_EMPTY: i32 = -111;
    pub const SESSION_EXPIRED: i32 = -112;
    pub const INVALID_ACL: i32 = -114;
    pub const AUTH_FAILED: i32 = -115;
    pub const NO_WATCHER: i32 = -121;
    /// Not a server code: the connection closed before the reply came.
    pub const CLOSED: i32 = i32::MIN;
}

/// Watch event types (`Watcher.Event.EventType`).
pub mod ev {
    pub const NONE: i32 = -1;
    pub const CREATED: i32 = 1;
    pub const DELETED: i32 = 2;
    pub const DATA_CHANGED: i32 = 3;
    pub const CHILDREN_CHANGED: i32 = 4;
}

/// Create flags (`CreateMode`).
pub mod mode {
    pub const PERSISTENT: i32 = 0;
    pub const EPHEMERAL: i32 = 1;
    pub const PERSISTENT_SEQUENTIAL: i32 = 2;
    pub const EPHEMERAL_SEQUENTIAL: i32 = 3;
    pub const CONTAINER: i32 = 4;
    pub const PERSISTENT_WITH_TTL: i32 = 5;
    pub const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;
}

/// `ZooDefs.Perms`.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// `world:anyone` with `perms`.
pub fn world(perms: i32) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }
}

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
pub fn open_acl() -> Vec<Acl> {
    vec![world(perms::ALL)]
}

/// The `digest` ACL id of `user:password`: `user:base64(sha1("user:password"))`
/// (DigestAuthenticationProvider.generateDigest).
pub fn digest_id(user: &str, password: &str) -> Id {
    use base64::Engine;
    use sha1::Digest;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    Id {
        scheme: "digest".into(),
        id: format!(
            "{user}:{}",
            base64::engine::general_purpose::STANDARD.encode(hash)
        ),
    }
}

/// One reply: its header and the undecoded body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    /// Decodes the body as `T` (whole body, no trailing bytes).
    pub fn decode<T: Decode>(&self) -> T {
        T::from_bytes(&self.body)
            .unwrap_or_else(|e| panic!("decoding reply body {:?}: {e}", self.body))
    }

    /// `Ok(body as T)` when `err` is 0, else `Err(err)`.
    pub fn result<T: Decode>(&self) -> Result<T, i32> {
        if self.err == 0 {
            Ok(self.decode())
        } else {
            Err(self.err)
        }
    }
}

/// One watch notification (xid −1): the header's zxid and the `WatcherEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub zxid: i64,
    pub kind: i32,
    pub state: i32,
    pub path: String,
}

/// Whatever came in, in arrival order.
#[derive(Debug, Clone)]
pub enum Incoming {
    Reply(Reply),
    Event(Event),
    /// The server closed the connection (or it failed).
    Closed,
}

/// One result inside a `MultiResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Vec<u8>, Stat),
    GetChildren(Vec<String>),
    Error(i32),
}

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone)]
pub enum MultiOp {
    Create {
        opcode: i32,
        path: String,
        data: Vec<u8>,
        acl: Vec<Acl>,
        flags: i32,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    GetData {
        path: String,
    },
    GetChildren {
        path: String,
    },
}

/// Encodes a `MultiOperationRecord`: `MultiHeader{type, false, -1}` + record per op,
/// ended by `MultiHeader{-1, true, -1}` (MultiOperationRecord.serialize).
pub fn encode_multi(ops: &[MultiOp]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in ops {
        let ty = match o {
            MultiOp::Create { opcode, .. } => *opcode,
            MultiOp::Delete { .. } => op::DELETE,
            MultiOp::SetData { .. } => op::SET_DATA,
            MultiOp::Check { .. } => op::CHECK,
            MultiOp::GetData { .. } => op::GET_DATA,
            MultiOp::GetChildren { .. } => op::GET_CHILDREN,
        };
        MultiHeader {
            r#type: ty,
            done: false,
            err: -1,
        }
        .encode(&mut out);
        match o {
            MultiOp::Create {
                opcode,
                path,
                data,
                acl,
                flags,
                ttl,
            } => {
                if *opcode == op::CREATE_TTL {
                    CreateTtlRequest {
                        path: path.clone(),
                        data: data.clone().into(),
                        acl: acl.clone(),
                        flags: *flags,
                        ttl: *ttl,
                    }
                    .encode(&mut out)
                } else {
                    CreateRequest {
                        path: path.clone(),
                        data: data.clone().into(),
                        acl: acl.clone(),
                        flags: *flags,
                    }
                    .encode(&mut out)
                }
            }
            MultiOp::Delete { path, version } => DeleteRequest {
                path: path.clone(),
                version: *version,
            }
            .encode(&mut out),
            MultiOp::SetData {
                path,
                data,
                version,
            } => SetDataRequest {
                path: path.clone(),
                data: data.clone().into(),
                version: *version,
            }
            .encode(&mut out),
            MultiOp::Check { path, version } => CheckVersionRequest {
                path: path.clone(),
                version: *version,
            }
            .encode(&mut out),
            MultiOp::GetData { path } => GetDataRequest {
                path: path.clone(),
                watch: false,
            }
            .encode(&mut out),
            MultiOp::GetChildren { path } => GetChildrenRequest {
                path: path.clone(),
                watch: false,
            }
            .encode(&mut out),
        }
    }
    MultiHeader {
        r#type: -1,
        done: true,
        err: -1,
    }
    .encode(&mut out);
    out
}

/// Decodes a `MultiResponse` (MultiResponse.deserialize): `MultiHeader` + result per op
/// until `done`. The result record depends on the header's type.
pub fn decode_multi_response(body: &[u8]) -> Vec<OpResult> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    loop {
        let h = MultiHeader::decode(&mut r).expect("multi header");
        if h.done {
            break;
        }
        let res = match h.r#type {
            op::CREATE => {
                OpResult::Create(CreateResponse::decode(&mut r).expect("create result").path)
            }
            op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => {
                let c = Create2Response::decode(&mut r).expect("create2 result");
                OpResult::Create2(c.path, c.stat)
            }
            op::DELETE => OpResult::Delete,
            op::SET_DATA => OpResult::SetData(
                SetDataResponse::decode(&mut r)
                    .expect("setData result")
                    .stat,
            ),
            op::CHECK => OpResult::Check,
            op::GET_DATA => {
                let g = GetDataResponse::decode(&mut r).expect("getData result");
                OpResult::GetData(g.data.0.unwrap_or_default(), g.stat)
            }
            op::GET_CHILDREN => OpResult::GetChildren(
                GetChildrenResponse::decode(&mut r)
                    .expect("getChildren result")
                    .children,
            ),
            op::ERROR => OpResult::Error(ErrorResponse::decode(&mut r).expect("error result").err),
            other => panic!("unknown multi result type {other}"),
        };
        out.push(res);
    }
    r.finish().expect("bytes after MultiResponse");
    out
}

/// Options of the connect handshake.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub last_zxid_seen: i64,
    pub read_only: bool,
    /// Whether to send the `readOnly` byte at all (clients before 3.3 did not).
    pub send_read_only: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid_seen: 0,
            read_only: false,
            send_read_only: true,
        }
    }
}

/// One connection with its session.
pub struct Conn {
    /// The server's address, for failure messages.
    pub addr: String,
    w: OwnedWriteHalf,
    rx: mpsc::UnboundedReceiver<Incoming>,
    next_xid: i32,
    closed: bool,
    /// The last request written (xid, opcode), for a failure message.
    last_sent: Option<(i32, i32)>,
    /// Session id the server assigned (or 0 if it refused the session).
    pub session_id: i64,
    /// Session password.
    pub passwd: Vec<u8>,
    /// Negotiated session timeout in ms.
    pub timeout_ms: i32,
    /// The handshake reply's payload as received (empty if the server sent none).
    pub connect_response: Vec<u8>,
    /// Notifications received and not yet taken by the test.
    pub events: VecDeque<Event>,
    /// Every frame received since the last [`Conn::take_log`], in order (pings left out).
    pub log: Vec<Incoming>,
}

/// How long any single wait on the server may take before the test fails.
pub const IO_LIMIT: Duration = Duration::from_secs(20);

impl Conn {
    /// Connects and opens a new session with a 30 s timeout.
    pub async fn connect(addr: &str) -> Conn {
        Conn::connect_with(addr, ConnectOptions::default()).await
    }

    /// Connects with explicit handshake fields. If the server refuses the session (for
    /// example an expired session id), the result has `session_id == 0` and
    /// `timeout_ms <= 0`, as ZooKeeper answers (NIOServerCnxn / ZooKeeperServer
    /// .finishSessionInit: a ConnectResponse with timeout 0 and id 0, then close).
    pub async fn connect_with(addr: &str, o: ConnectOptions) -> Conn {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        let (mut rd, mut w) = stream.into_split();
        let mut out = Vec::new();
        let at = begin_frame(&mut out);
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: o.last_zxid_seen,
            time_out: o.timeout_ms,
            session_id: o.session_id,
            passwd: o.passwd.clone().into(),
        }
        .encode(&mut out);
        if o.send_read_only {
            o.read_only.encode(&mut out);
        }
        end_frame(&mut out, at);
        w.write_all(&out).await.expect("write connect");

        let mut buf = Vec::new();
        let first = tokio::time::timeout(IO_LIMIT, read_frame(&mut rd, &mut buf))
            .await
            .expect("connect response in time");
        let connect_response = first.clone().unwrap_or_default();
        let (session_id, passwd, timeout_ms) = match first {
            Some(frame) => {
                let mut r = Reader::new(&frame);
                let resp = ConnectResponse::decode(&mut r).expect("ConnectResponse");
                (resp.session_id, resp.passwd.0, resp.time_out)
            }
            None => (0, Vec::new(), 0),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match read_frame(&mut rd, &mut buf).await {
                    None => {
                        let _ = tx.send(Incoming::Closed);
                        return;
                    }
                    Some(frame) => {
                        let mut r = Reader::new(&frame);
                        let h = ReplyHeader::decode(&mut r).expect("reply header");
                        let item = if h.xid == -1 {
                            let e = WatcherEvent::decode(&mut r).expect("watcher event");
                            Incoming::Event(Event {
                                zxid: h.zxid,
                                kind: e.r#type,
                                state: e.state,
                                path: e.path,
                            })
                        } else {
                            Incoming::Reply(Reply {
                                xid: h.xid,
                                zxid: h.zxid,
                                err: h.err,
                                body: r.rest().to_vec(),
                            })
                        };
                        if tx.send(item).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Conn {
            addr: addr.to_string(),
            w,
            rx,
            next_xid: 1,
            last_sent: None,
            closed: session_id == 0,
            session_id,
            passwd,
            timeout_ms,
            connect_response,
            events: VecDeque::new(),
            log: Vec::new(),
        }
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes one request frame with an explicit xid and raw body bytes.
    pub async fn send_raw(&mut self, xid: i32, opcode: i32, body: &[u8]) {
        let mut out = Vec::with_capacity(body.len() + 12);
        let at = begin_frame(&mut out);
        RequestHeader {
            xid,
            r#type: opcode,
        }
        .encode(&mut out);
        out.extend_from_slice(body);
        end_frame(&mut out, at);
        self.last_sent = Some((xid, opcode));
        // A write to a connection the server closed may fail; the read side reports it.
        let _ = self.w.write_all(&out).await;
    }

    /// Receives the next frame (event or reply), recording it.
    pub async fn next_incoming(&mut self) -> Incoming {
        let item = match tokio::time::timeout(IO_LIMIT, self.rx.recv()).await {
            Ok(Some(item)) => item,
            Ok(None) => Incoming::Closed,
            Err(_) => panic!(
                "no frame from the server {} within {IO_LIMIT:?} (session 0x{:x}, last request (xid, opcode) {:?})",
                self.addr, self.session_id, self.last_sent
            ),
        };
        match &item {
            Incoming::Closed => self.closed = true,
            Incoming::Event(e) => self.events.push_back(e.clone()),
            Incoming::Reply(r) if r.xid == -2 => return item,
            Incoming::Reply(_) => {}
        }
        self.log.push(item.clone());
        item
    }

    /// Reads frames until the reply with `xid` arrives; events on the way are kept.
    pub async fn wait_reply(&mut self, xid: i32) -> Reply {
        loop {
            if self.closed {
                return Reply {
                    xid,
                    zxid: 0,
                    err: err::CLOSED,
                    body: Vec::new(),
                };
            }
            match self.next_incoming().await {
                Incoming::Reply(r) if r.xid == xid => return r,
                Incoming::Reply(r) if r.xid == -2 => {}
                Incoming::Reply(r) => {
                    panic!("reply for xid {} while waiting for xid {xid}: {r:?}", r.xid)
                }
                Incoming::Event(_) => {}
                Incoming::Closed => {}
            }
        }
    }

    /// Sends one request and waits for its reply.
    pub async fn call(&mut self, opcode: i32, body: &impl Encode) -> Reply {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_raw(xid, opcode, &body.to_bytes()).await;
        self.wait_reply(xid).await
    }

    /// Sends one request with a raw body and waits for its reply.
    pub async fn call_raw(&mut self, opcode: i32, body: &[u8]) -> Reply {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_raw(xid, opcode, body).await;
        self.wait_reply(xid).await
    }

    /// Writes raw bytes to the socket (for malformed frames).
    pub async fn write_bytes(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes).await;
    }

    /// Sends one request without waiting: returns its xid for [`Conn::wait_reply`], so a
    /// test can have requests in flight on several connections at once.
    pub async fn start_call(&mut self, opcode: i32, body: &[u8]) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_raw(xid, opcode, body).await;
        xid
    }

    /// Takes the log of frames received so far.
    pub fn take_log(&mut self) -> Vec<Incoming> {
        std::mem::take(&mut self.log)
    }

    /// Takes the events received so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Waits for the next event (returns at once if one is queued).
    pub async fn next_event(&mut self) -> Event {
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            if self.closed {
                panic!("connection closed while waiting for an event");
            }
            self.next_incoming().await;
        }
    }

    // ---- typed operations ----

    /// ping (xid −2): the reply is ordered after everything the server sent before.
    pub async fn ping(&mut self) -> Reply {
        self.send_raw(-2, op::PING, &[]).await;
        loop {
            if self.closed {
                return Reply {
                    xid: -2,
                    zxid: 0,
                    err: err::CLOSED,
                    body: Vec::new(),
                };
            }
            if let Incoming::Reply(r) = self.next_incoming().await {
                if r.xid == -2 {
                    return r;
                }
                panic!("unexpected reply while pinging: {r:?}");
            }
        }
    }

    /// auth (xid −4): `AuthPacket{0, scheme, auth}`.
    pub async fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> i32 {
        let body = AuthPacket {
            r#type: 0,
            scheme: scheme.into(),
            auth: auth.to_vec().into(),
        }
        .to_bytes();
        self.send_raw(-4, op::AUTH, &body).await;
        self.wait_reply(-4).await.err
    }

    pub async fn create(
        &mut self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        flags: i32,
    ) -> Result<String, i32> {
        let req = CreateRequest {
            path: path.into(),
            data: data.to_vec().into(),
            acl,
            flags,
        };
        self.call(op::CREATE, &req)
            .await
            .result::<CreateResponse>()
            .map(|r| r.path)
    }

    pub async fn create2(
        &mut self,
        path: &str,
        data: &[u8],
        acl: Vec<Acl>,
        flags: i32,
    ) -> Result<(String, Stat), i32> {
        let req = CreateRequest {
            path: path.into(),
            data: data.to_vec().into(),
            acl,
            flags,
        };
        self.call(op::CREATE2, &req)
            .await
            .result::<Create2Response>()
            .map(|r| (r.path, r.stat))
    }

    pub async fn create_container(
        &mut self,
        path: &str,
        data: &[u8],
    ) -> Result<(String, Stat), i32> {
        let req = CreateRequest {
            path: path.into(),
            data: data.to_vec().into(),
            acl: open_acl(),
            flags: mode::CONTAINER,
        };
        self.call(op::CREATE_CONTAINER, &req)
            .await
            .result::<Create2Response>()
            .map(|r| (r.path, r.stat))
    }

    pub async fn create_ttl(
        &mut self,
        path: &str,
        data: &[u8],
        flags: i32,
        ttl: i64,
    ) -> Result<(String, Stat), i32> {
        let req = CreateTtlRequest {
            path: path.into(),
            data: data.to_vec().into(),
            acl: open_acl(),
            flags,
            ttl,
        };
        self.call(op::CREATE_TTL, &req)
            .await
            .result::<Create2Response>()
            .map(|r| (r.path, r.stat))
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> Result<(), i32> {
        let r = self
            .call(
                op::DELETE,
                &DeleteRequest {
                    path: path.into(),
                    version,
                },
            )
            .await;
        if r.err == 0 {
            assert!(r.body.is_empty(), "delete reply has a body: {:?}", r.body);
            Ok(())
        } else {
            Err(r.err)
        }
    }

    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, i32> {
        self.call(
            op::EXISTS,
            &ExistsRequest {
                path: path.into(),
                watch,
            },
        )
        .await
        .result::<ExistsResponse>()
        .map(|r| r.stat)
    }

    pub async fn get_data(&mut self, path: &str, watch: bool) -> Result<(Vec<u8>, Stat), i32> {
        self.call(
            op::GET_DATA,
            &GetDataRequest {
                path: path.into(),
                watch,
            },
        )
        .await
        .result::<GetDataResponse>()
        .map(|r| (r.data.0.unwrap_or_default(), r.stat))
    }

    pub async fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, i32> {
        self.call(
            op::SET_DATA,
            &SetDataRequest {
                path: path.into(),
                data: data.to_vec().into(),
                version,
            },
        )
        .await
        .result::<SetDataResponse>()
        .map(|r| r.stat)
    }

    pub async fn get_acl(&mut self, path: &str) -> Result<(Vec<Acl>, Stat), i32> {
        self.call(op::GET_ACL, &GetAclRequest { path: path.into() })
            .await
            .result::<GetAclResponse>()
            .map(|r| (r.acl, r.stat))
    }

    pub async fn set_acl(&mut self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, i32> {
        self.call(
            op::SET_ACL,
            &SetAclRequest {
                path: path.into(),
                acl,
                version,
            },
        )
        .await
        .result::<SetAclResponse>()
        .map(|r| r.stat)
    }

    pub async fn get_children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, i32> {
        self.call(
            op::GET_CHILDREN,
            &GetChildrenRequest {
                path: path.into(),
                watch,
            },
        )
        .await
        .result::<GetChildrenResponse>()
        .map(|r| r.children)
    }

    pub async fn get_children2(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), i32> {
        self.call(
            op::GET_CHILDREN2,
            &GetChildren2Request {
                path: path.into(),
                watch,
            },
        )
        .await
        .result::<GetChildren2Response>()
        .map(|r| (r.children, r.stat))
    }

    pub async fn sync(&mut self, path: &str) -> Result<String, i32> {
        self.call(op::SYNC, &SyncRequest { path: path.into() })
            .await
            .result::<SyncResponse>()
            .map(|r| r.path)
    }

    /// multi: returns the reply header's err and the per-op results.
    pub async fn multi(&mut self, ops: &[MultiOp]) -> (i32, Vec<OpResult>) {
        let r = self.call_raw(op::MULTI, &encode_multi(ops)).await;
        let results = if r.body.is_empty() {
            Vec::new()
        } else {
            decode_multi_response(&r.body)
        };
        (r.err, results)
    }

    /// multiRead: returns the reply header's err and the per-op results.
    pub async fn multi_read(&mut self, ops: &[MultiOp]) -> (i32, Vec<OpResult>) {
        let r = self.call_raw(op::MULTI_READ, &encode_multi(ops)).await;
        let results = if r.body.is_empty() {
            Vec::new()
        } else {
            decode_multi_response(&r.body)
        };
        (r.err, results)
    }

    pub async fn get_ephemerals(&mut self, prefix: &str) -> Result<Vec<String>, i32> {
        self.call(
            op::GET_EPHEMERALS,
            &GetEphemeralsRequest {
                prefix_path: prefix.into(),
            },
        )
        .await
        .result::<GetEphemeralsResponse>()
        .map(|r| r.ephemerals)
    }

    pub async fn get_all_children_number(&mut self, path: &str) -> Result<i32, i32> {
        self.call(
            op::GET_ALL_CHILDREN_NUMBER,
            &GetAllChildrenNumberRequest { path: path.into() },
        )
        .await
        .result::<GetAllChildrenNumberResponse>()
        .map(|r| r.total_number)
    }

    /// addWatch: mode 0 = PERSISTENT, 1 = PERSISTENT_RECURSIVE. The success reply body is
    /// an `ErrorResponse{0}` (FinalRequestProcessor, case addWatch).
    pub async fn add_watch(&mut self, path: &str, mode: i32) -> Reply {
        self.call(
            op::ADD_WATCH,
            &AddWatchRequest {
                path: path.into(),
                mode,
            },
        )
        .await
    }

    /// removeWatches with a `WatcherType` (1 children, 2 data, 3 any, 4 persistent,
    /// 5 persistent recursive).
    pub async fn remove_watches(&mut self, path: &str, watcher_type: i32) -> Reply {
        self.call(
            op::REMOVE_WATCHES,
            &RemoveWatchesRequest {
                path: path.into(),
                r#type: watcher_type,
            },
        )
        .await
    }

    /// checkWatches with a `WatcherType`.
    pub async fn check_watches(&mut self, path: &str, watcher_type: i32) -> Reply {
        self.call(
            op::CHECK_WATCHES,
            &CheckWatchesRequest {
                path: path.into(),
                r#type: watcher_type,
            },
        )
        .await
    }

    pub async fn who_am_i(&mut self) -> Result<Vec<ClientInfo>, i32> {
        self.call_raw(op::WHO_AM_I, &[])
            .await
            .result::<WhoAmIResponse>()
            .map(|r| r.client_info)
    }

    /// closeSession: waits for the reply and then for the server to close the socket.
    pub async fn close(&mut self) -> Reply {
        let r = self.call_raw(op::CLOSE_SESSION, &[]).await;
        while !self.closed {
            self.next_incoming().await;
        }
        r
    }
}

async fn read_frame(rd: &mut tokio::net::tcp::OwnedReadHalf, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        match check_frame(buf, 64 << 20) {
            Ok(Some(n)) => {
                let frame = buf[4..4 + n].to_vec();
                buf.drain(..4 + n);
                return Some(frame);
            }
            Ok(None) => {}
            Err(e) => panic!("bad frame from server: {e}"),
        }
        let mut chunk = [0u8; 64 * 1024];
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
