//! Golden bytes: frames a real ZooKeeper 3.8 client exchanged with a real ZooKeeper 3.8
//! server, captured by `golden/capture.py` (see its header for the procedure and the
//! fixture format). Every request must decode to the request its opcode names and
//! re-encode to the very same bytes; every reply must decode with the response record
//! of its request and re-encode to the very same bytes. This pins ferrokeeper-net's
//! encoders to Java's bytes, not to our reading of zookeeper.jute.
//!
//! A difference is allowed only where it is listed in [`KNOWN_NULLS`]: Java writes a
//! null `ustring`/`vector` as length −1 where ferrokeeper-net reads null as empty and
//! writes length 0 (both 4 bytes, so frames still line up). Znode data keeps null apart
//! from empty ([`ferrokeeper_net::NullableBuffer`]), so null data matches exactly and
//! the list is now empty.

#[path = "support/fixtures.rs"]
mod fixtures;

use ferrokeeper_net::client::encode_connect;
use ferrokeeper_net::codes::OpCode;
use ferrokeeper_net::frame::{check_frame, write_reply, EncodeDyn, JUTE_MAXBUFFER_DEFAULT};
use ferrokeeper_net::records::*;
use ferrokeeper_net::request::{Connect, CreateOp, MultiOp, Request};
use ferrokeeper_net::response::{
    encode_connect_response, encode_multi_response, write_notification, ConnectReply, MultiResult,
    Reply, NOTIFICATION_ZXID_NONE,
};
use ferrokeeper_net::Decode;
use fixtures::{fixture, hex, SESSIONS};

/// Frames in which Java wrote a null (−1) length where we write 0:
/// (session, direction, label, index of the frame in its file, nulls in it).
/// (The java session's `create("/j/seq-", null, ...)` and the getData answering it with
/// null data used to be listed here; both now re-encode exactly.)
const KNOWN_NULLS: &[(&str, &str, &str, usize, usize)] = &[];

/// The payload of a whole frame, after checking the frame as the server would.
fn payload(frame: &[u8]) -> &[u8] {
    let n = check_frame(frame, JUTE_MAXBUFFER_DEFAULT)
        .expect("frame length refused")
        .expect("frame incomplete");
    assert_eq!(n + 4, frame.len(), "frame has trailing bytes");
    &frame[4..]
}

/// Compares our encoding with Java's. Returns how many 4-byte lengths Java wrote as −1
/// (null) where we wrote 0; any other difference fails.
fn same_bytes_but_nulls(ours: &[u8], java: &[u8], what: &str) -> usize {
    assert_eq!(
        ours.len(),
        java.len(),
        "{what}: length differs\n ours {}\n java {}",
        hex(ours),
        hex(java)
    );
    let mut nulls = 0;
    let mut i = 0;
    while i < ours.len() {
        if ours[i] == java[i] {
            i += 1;
            continue;
        }
        // A null length and an empty one differ in all four bytes; the difference starts
        // at the first of them unless earlier bytes happen to agree, which they cannot
        // (0x00 vs 0xff).
        let null_here =
            java.get(i..i + 4) == Some(&[0xff; 4][..]) && ours.get(i..i + 4) == Some(&[0; 4][..]);
        assert!(
            null_here,
            "{what}: byte {i} differs\n ours {}\n java {}",
            hex(ours),
            hex(java)
        );
        nulls += 1;
        i += 4;
    }
    nulls
}

fn opcode_of(label: &str) -> OpCode {
    let op = match label {
        "create" => OpCode::Create,
        "delete" => OpCode::Delete,
        "exists" => OpCode::Exists,
        "getData" => OpCode::GetData,
        "setData" => OpCode::SetData,
        "getACL" => OpCode::GetAcl,
        "setACL" => OpCode::SetAcl,
        "getChildren" => OpCode::GetChildren,
        "sync" => OpCode::Sync,
        "ping" => OpCode::Ping,
        "getChildren2" => OpCode::GetChildren2,
        "check" => OpCode::Check,
        "multi" => OpCode::Multi,
        "create2" => OpCode::Create2,
        "reconfig" => OpCode::Reconfig,
        "checkWatches" => OpCode::CheckWatches,
        "removeWatches" => OpCode::RemoveWatches,
        "createContainer" => OpCode::CreateContainer,
        "createTTL" => OpCode::CreateTtl,
        "multiRead" => OpCode::MultiRead,
        "auth" => OpCode::Auth,
        "setWatches" => OpCode::SetWatches,
        "sasl" => OpCode::Sasl,
        "getEphemerals" => OpCode::GetEphemerals,
        "getAllChildrenNumber" => OpCode::GetAllChildrenNumber,
        "setWatches2" => OpCode::SetWatches2,
        "addWatch" => OpCode::AddWatch,
        "whoAmI" => OpCode::WhoAmI,
        "closeSession" => OpCode::CloseSession,
        other => panic!("unknown label {other}"),
    };
    assert_eq!(op.name().to_lowercase(), label.to_lowercase());
    op
}

/// The request variant a Java client sends under each opcode.
fn variant_matches(op: OpCode, req: &Request) -> bool {
    match req {
        Request::Create(c) => c.op() == op,
        Request::Ping => op == OpCode::Ping,
        Request::CloseSession => op == OpCode::CloseSession,
        Request::Delete(_) => op == OpCode::Delete,
        Request::Exists(_) => op == OpCode::Exists,
        Request::GetData(_) => op == OpCode::GetData,
        Request::SetData(_) => op == OpCode::SetData,
        Request::GetAcl(_) => op == OpCode::GetAcl,
        Request::SetAcl(_) => op == OpCode::SetAcl,
        Request::GetChildren(_) => op == OpCode::GetChildren,
        Request::GetChildren2(_) => op == OpCode::GetChildren2,
        Request::Sync(_) => op == OpCode::Sync,
        Request::Check(_) => op == OpCode::Check,
        Request::Multi(_) => op == OpCode::Multi,
        Request::MultiRead(_) => op == OpCode::MultiRead,
        Request::Reconfig(_) => op == OpCode::Reconfig,
        Request::CheckWatches(_) => op == OpCode::CheckWatches,
        Request::RemoveWatches(_) => op == OpCode::RemoveWatches,
        Request::Auth(_) => op == OpCode::Auth,
        Request::SetWatches(_) => matches!(op, OpCode::SetWatches | OpCode::SetWatches2),
        Request::Sasl(_) => op == OpCode::Sasl,
        Request::GetEphemerals(_) => op == OpCode::GetEphemerals,
        Request::GetAllChildrenNumber(_) => op == OpCode::GetAllChildrenNumber,
        Request::AddWatch(_) => op == OpCode::AddWatch,
        Request::WhoAmI => op == OpCode::WhoAmI,
        Request::Unknown(_) => false,
    }
}

fn known_nulls(session: &str, direction: &str, label: &str, index: usize) -> usize {
    KNOWN_NULLS
        .iter()
        .find(|k| k.0 == session && k.1 == direction && k.2 == label && k.3 == index)
        .map_or(0, |k| k.4)
}

#[test]
fn every_captured_request_decodes_and_reencodes_to_javas_bytes() {
    for session in SESSIONS {
        let frames = fixture(session, "c2s");
        assert!(frames.len() >= 5, "{session}: too few frames");
        for (index, f) in frames.iter().enumerate() {
            let what = format!("{session}.c2s #{index} {}", f.label);
            let payload = payload(&f.bytes);
            let mut ours = Vec::new();
            if f.label == "connect" {
                // The first frame of each connection (the java session reconnects once).
                let c = Connect::decode(payload).expect(&what);
                assert_eq!(
                    c.read_only,
                    session == "cli_mt",
                    "{what}: cli_mt -r asks read-only"
                );
                // Every client here is newer than 3.3: 44 bytes + the readOnly byte. The
                // raw session plays a 3.2 client, without it.
                let old_client = session == "raw";
                assert_eq!(c.has_read_only, !old_client, "{what}: readOnly byte");
                assert_eq!(payload.len(), 45 - usize::from(old_client), "{what}");
                assert_eq!(c.request.passwd.len(), 16, "{what}");
                encode_connect(&c, &mut ours);
            } else {
                let op = opcode_of(&f.label);
                let (header, body) = Request::decode(payload).expect(&what);
                assert_eq!(header.r#type, op.code(), "{what}");
                let req = body.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(variant_matches(op, &req), "{what}: decoded as {req:?}");
                assert_eq!(req.header_type(), header.r#type, "{what}");
                req.encode_frame(header.xid, &mut ours);
            }
            let nulls = same_bytes_but_nulls(&ours, &f.bytes, &what);
            assert_eq!(
                nulls,
                known_nulls(session, "c2s", &f.label, index),
                "{what}: nulls"
            );
        }
    }
}

/// Decodes a reply body by the request's opcode and re-encodes the whole frame.
fn reencode_reply(op: OpCode, reply: &Reply<'_>, out: &mut Vec<u8>, what: &str) {
    let h = reply.header;
    fn record<T: Decode + EncodeDyn>(reply: &Reply<'_>, what: &str) -> T {
        reply
            .record::<T>()
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }
    // ZooKeeper sends no body with an error, except for multi whose results say what
    // failed.
    if h.err != 0 && op != OpCode::Multi && op != OpCode::MultiRead {
        assert!(reply.body.is_empty(), "{what}: body with an error");
        write_reply(out, h.xid, h.zxid, h.err, None);
        return;
    }
    let body: Option<Box<dyn EncodeDyn>> = match op {
        OpCode::Create => Some(Box::new(record::<CreateResponse>(reply, what))),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Some(Box::new(record::<Create2Response>(reply, what)))
        }
        OpCode::Exists => Some(Box::new(record::<ExistsResponse>(reply, what))),
        OpCode::GetData | OpCode::Reconfig => {
            Some(Box::new(record::<GetDataResponse>(reply, what)))
        }
        OpCode::SetData => Some(Box::new(record::<SetDataResponse>(reply, what))),
        OpCode::GetAcl => Some(Box::new(record::<GetAclResponse>(reply, what))),
        OpCode::SetAcl => Some(Box::new(record::<SetAclResponse>(reply, what))),
        OpCode::GetChildren => Some(Box::new(record::<GetChildrenResponse>(reply, what))),
        OpCode::GetChildren2 => Some(Box::new(record::<GetChildren2Response>(reply, what))),
        OpCode::Sync => Some(Box::new(record::<SyncResponse>(reply, what))),
        OpCode::GetEphemerals => Some(Box::new(record::<GetEphemeralsResponse>(reply, what))),
        OpCode::GetAllChildrenNumber => Some(Box::new(record::<GetAllChildrenNumberResponse>(
            reply, what,
        ))),
        OpCode::WhoAmI => Some(Box::new(record::<WhoAmIResponse>(reply, what))),
        // ZooKeeper answers addWatch with an `ErrorResponse{0}` body, not an empty one.
        OpCode::AddWatch => Some(Box::new(record::<ErrorResponse>(reply, what))),
        OpCode::Sasl => Some(Box::new(record::<SetSaslResponse>(reply, what))),
        OpCode::Multi | OpCode::MultiRead => {
            let results = reply.multi().unwrap_or_else(|e| panic!("{what}: {e}"));
            let mut body = Vec::new();
            encode_multi_response(&results, &mut body);
            Some(Box::new(RawBody(body)))
        }
        OpCode::Delete
        | OpCode::Ping
        | OpCode::Check
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::RemoveWatches
        | OpCode::CheckWatches
        | OpCode::CloseSession => {
            assert!(reply.body.is_empty(), "{what}: unexpected body");
            None
        }
        other => panic!("{what}: no reply expected for {other:?}"),
    };
    write_reply(out, h.xid, h.zxid, h.err, body.as_deref());
}

/// Bytes already encoded, passed where a record is expected.
struct RawBody(Vec<u8>);
impl ferrokeeper_net::Encode for RawBody {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

#[test]
fn every_captured_reply_decodes_and_reencodes_to_javas_bytes() {
    for session in SESSIONS {
        let frames = fixture(session, "s2c");
        assert!(frames.len() >= 5, "{session}: too few frames");
        for (index, f) in frames.iter().enumerate() {
            let what = format!("{session}.s2c #{index} {}", f.label);
            let payload = payload(&f.bytes);
            let mut ours = Vec::new();
            match f.label.as_str() {
                "connect_response" => {
                    let c = ConnectReply::decode(payload).expect(&what);
                    // The server answers with a readOnly byte exactly when the client
                    // sent one (all but the raw session).
                    let old_client = session == "raw";
                    let want = if old_client { None } else { Some(false) };
                    assert_eq!(c.read_only, want, "{what}");
                    assert_eq!(payload.len(), 37 - usize::from(old_client), "{what}");
                    assert_eq!(c.response.protocol_version, 0, "{what}");
                    assert_ne!(c.response.session_id, 0, "{what}");
                    encode_connect_response(&c.response, c.read_only, &mut ours);
                }
                "notification" => {
                    let reply = Reply::decode(payload).expect(&what);
                    assert!(reply.is_notification(), "{what}");
                    // ZooKeeper 3.8 writes zxid −1 and err 0 in every notification.
                    assert_eq!(reply.header.zxid, NOTIFICATION_ZXID_NONE, "{what}");
                    assert_eq!(reply.header.err, 0, "{what}");
                    let event: WatcherEvent = reply.record().expect(&what);
                    write_notification(&mut ours, reply.header.zxid, &event);
                }
                label => {
                    let op = opcode_of(label);
                    let reply = Reply::decode(payload).expect(&what);
                    assert!(!reply.is_notification(), "{what}");
                    reencode_reply(op, &reply, &mut ours, &what);
                }
            }
            let nulls = same_bytes_but_nulls(&ours, &f.bytes, &what);
            assert_eq!(
                nulls,
                known_nulls(session, "s2c", &f.label, index),
                "{what}: nulls"
            );
        }
    }
}

/// Returns the decoded request of the first frame labelled `label` in a session.
fn first_request(session: &str, label: &str) -> (RequestHeader, Request) {
    let f = fixture(session, "c2s")
        .into_iter()
        .find(|f| f.label == label)
        .unwrap_or_else(|| panic!("no {label} in {session}"));
    let (h, r) = Request::decode(&f.bytes[4..]).expect("header");
    (h, r.expect("body"))
}

fn replies_of(session: &str, label: &str) -> Vec<(ReplyHeader, Vec<u8>)> {
    fixture(session, "s2c")
        .into_iter()
        .filter(|f| f.label == label)
        .map(|f| {
            let r = Reply::decode(&f.bytes[4..]).expect("reply");
            (r.header, r.body.to_vec())
        })
        .collect()
}

/// The multi the Java client sent (create, container, TTL, sequential create, check,
/// setData, delete) and what ZooKeeper 3.8 answered: a plain create's result is type 1
/// (`CreateResponse`), a container's and a TTL node's are type 15 (`Create2Response`).
#[test]
fn java_multi_result_types_per_create_opcode() {
    let (_, req) = first_request("java", "multi");
    let Request::Multi(ops) = req else {
        panic!("not a multi: {req:?}")
    };
    let kinds: Vec<OpCode> = ops.iter().map(MultiOp::opcode).collect();
    assert_eq!(
        kinds,
        [
            OpCode::Create,
            OpCode::CreateContainer,
            OpCode::CreateTtl,
            OpCode::Create,
            OpCode::Check,
            OpCode::SetData,
            OpCode::Delete
        ]
    );
    let MultiOp::Create(CreateOp { ttl, flags, .. }) = &ops[2] else {
        panic!()
    };
    assert_eq!((*ttl, *flags), (60000, 5));

    let (h, body) = &replies_of("java", "multi")[0];
    assert_eq!(h.err, 0);
    let results = Reply { header: *h, body }.multi().expect("multi response");
    let kinds: Vec<OpCode> = results.iter().map(MultiResult::opcode).collect();
    assert_eq!(
        kinds,
        [
            OpCode::Create,
            OpCode::Create2,
            OpCode::Create2,
            OpCode::Create,
            OpCode::Check,
            OpCode::SetData,
            OpCode::Delete
        ]
    );
    let MultiResult::Create(CreateResponse { path }) = &results[3] else {
        panic!()
    };
    let suffix = path
        .strip_prefix("/j/m4-")
        .expect("sequential name in the result");
    assert!(
        suffix.len() == 10 && suffix.bytes().all(|b| b.is_ascii_digit()),
        "{path}"
    );
}

/// A multi that fails on its second op: the reply header's err is 0 (the failure is in
/// the results, as the first error), ops before it report 0, the failing op its code,
/// ops after it RuntimeInconsistency.
#[test]
fn java_failed_multi_reports_each_op() {
    let (h, body) = &replies_of("java", "multi")[1];
    let results = Reply { header: *h, body }.multi().expect("multi response");
    assert_eq!(
        results,
        [
            MultiResult::Error(0),
            MultiResult::Error(-101),
            MultiResult::Error(-2)
        ]
    );
    assert_eq!(h.err, 0, "header err of a failed multi");
}

/// multiRead answers each op on its own: a failing getData does not fail the others.
#[test]
fn java_multi_read_results() {
    let (_, req) = first_request("java", "multiRead");
    let Request::MultiRead(ops) = req else {
        panic!("not a multiRead")
    };
    assert_eq!(ops.len(), 3);
    let (h, body) = &replies_of("java", "multiRead")[0];
    let results = Reply { header: *h, body }
        .multi()
        .expect("multiRead response");
    assert!(matches!(results[0], MultiResult::GetChildren(_)));
    assert!(matches!(results[1], MultiResult::GetData(_)));
    assert_eq!(results[2], MultiResult::Error(-101));
}

/// The java session is cut by the proxy after addWatch. The client reconnects with its
/// session id, password and last zxid, re-sends its auth, then re-registers its watches
/// with setWatches2 (it has a persistent one) — under an ordinary xid: the Java client
/// gives every packet but ping and auth a fresh xid when it sends it, so the
/// SET_WATCHES_XID (−8) it builds the header with never reaches the wire.
#[test]
fn java_reconnect_and_set_watches2() {
    let c2s = fixture("java", "c2s");
    let s2c = fixture("java", "s2c");
    let connects: Vec<Connect> = c2s
        .iter()
        .filter(|f| f.label == "connect")
        .map(|f| Connect::decode(&f.bytes[4..]).expect("connect"))
        .collect();
    let replies: Vec<ConnectReply> = s2c
        .iter()
        .filter(|f| f.label == "connect_response")
        .map(|f| ConnectReply::decode(&f.bytes[4..]).expect("connect_response"))
        .collect();
    assert_eq!((connects.len(), replies.len()), (2, 2));
    let (first, again) = (&connects[0].request, &connects[1].request);
    assert_eq!((first.session_id, first.last_zxid_seen), (0, 0));
    assert_eq!(first.passwd.0, vec![0; 16]);
    assert_eq!(again.session_id, replies[0].response.session_id);
    assert_eq!(again.passwd, replies[0].response.passwd);
    assert!(again.last_zxid_seen > 0);
    assert_eq!(
        replies[1].response.session_id,
        replies[0].response.session_id
    );

    // After the second handshake: auth first, then setWatches2.
    let at = c2s
        .iter()
        .rposition(|f| f.label == "connect")
        .expect("reconnect");
    let labels: Vec<&str> = c2s[at + 1..at + 3]
        .iter()
        .map(|f| f.label.as_str())
        .collect();
    assert_eq!(labels, ["auth", "setWatches2"]);
    let (h, req) = first_request("java", "setWatches2");
    assert!(h.xid > 0, "setWatches2 xid {}", h.xid);
    let Request::SetWatches(w) = req else {
        panic!("{req:?}")
    };
    assert_eq!(w.relative_zxid, again.last_zxid_seen);
    assert_eq!(w.exist_watches, ["/j/later"]);
    assert_eq!(w.persistent_recursive_watches, ["/j"]);
    let (rh, body) = &replies_of("java", "setWatches2")[0];
    assert_eq!((rh.xid, rh.err, body.len()), (h.xid, 0, 0));
}

/// Creates inside a multi, hand-built (no client sends most of these) and answered by
/// ZooKeeper 3.8: the result type follows the create the server performed, which 3.8
/// derives from the flags alone — a create2 with persistent flags is a plain create
/// (type 1), so is a createContainer with persistent flags; container and TTL flags
/// give type 15 whatever the header says.
#[test]
fn raw_multi_create_result_types_follow_the_flags() {
    let (_, req) = first_request("raw", "multi");
    let Request::Multi(ops) = req else {
        panic!("{req:?}")
    };
    let sent: Vec<(OpCode, i32)> = ops
        .iter()
        .map(|op| match op {
            MultiOp::Create(c) => (c.op(), c.flags),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sent,
        [
            (OpCode::Create2, 0),
            (OpCode::CreateContainer, 0),
            (OpCode::Create, 4),
            (OpCode::Create2, 4),
            (OpCode::CreateTtl, 5),
            (OpCode::Create, 2),
        ]
    );
    let (h, body) = &replies_of("raw", "multi")[0];
    let results = Reply { header: *h, body }.multi().expect("multi");
    let got: Vec<(OpCode, &str)> = results
        .iter()
        .map(|r| match r {
            MultiResult::Create(c) => (OpCode::Create, c.path.as_str()),
            MultiResult::Create2(c) => (OpCode::Create2, c.path.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (OpCode::Create, "/r1"),
            (OpCode::Create, "/r2"),
            (OpCode::Create2, "/r3"),
            (OpCode::Create2, "/r4"),
            (OpCode::Create2, "/r5"),
            (OpCode::Create, "/r60000000005"),
        ]
    );
    // MultiResult::created gives the same types for the creates the server performed.
    let performed = [
        OpCode::Create,
        OpCode::Create,
        OpCode::CreateContainer,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::Create,
    ];
    for ((op, r), (want, _)) in performed.iter().zip(&results).zip(&got) {
        let path = match r {
            MultiResult::Create(c) => c.path.clone(),
            MultiResult::Create2(c) => c.path.clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            MultiResult::created(*op, path, Stat::default()).opcode(),
            *want
        );
    }
}

/// setWatches (type 101) with a relative zxid older than the node's change: the server
/// fires the watch at once, and the notification comes before the setWatches reply.
#[test]
fn raw_set_watches_fires_stale_watches_before_replying() {
    let s2c = fixture("raw", "s2c");
    let labels: Vec<&str> = s2c.iter().map(|f| f.label.as_str()).collect();
    let at = labels
        .iter()
        .position(|l| *l == "setWatches")
        .expect("reply");
    assert_eq!(labels[at - 1], "notification");
    let (_, req) = first_request("raw", "setWatches");
    let Request::SetWatches(w) = &req else {
        panic!("{req:?}")
    };
    assert!(w.persistent_watches.is_empty() && w.persistent_recursive_watches.is_empty());
    assert_eq!(req.header_type(), OpCode::SetWatches.code());
}
