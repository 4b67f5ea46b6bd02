//! Raw-bytes wire tests: bad input of every kind, sent over a real socket to
//! ferrokeeper and to Apache ZooKeeper, asserting on the raw bytes that come back.
//! Each case pins what the real server does (its `NIOServerCnxn` and
//! `FinalRequestProcessor` behaviour) and checks ferrokeeper does the same.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Kind, Server};
use ferrokeeper_net::jute::{Decode, Encode};
use ferrokeeper_net::records::{
    ConnectRequest, ConnectResponse, GetDataRequest, ReplyHeader, RequestHeader,
};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn open(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads one reply frame, or None when the server closed the connection.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// Java ZooKeeper answers `ruok` before it serves sessions ("ZooKeeperServer not
/// running"), so the first handshake is retried for a few seconds.
fn handshake(server: &Server) -> (TcpStream, ConnectResponse) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match try_handshake(server) {
            Some(r) => return r,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            None => panic!(
                "{:?}: no connect reply; log:\n{}",
                server.kind,
                server.log()
            ),
        }
    }
}

fn try_handshake(server: &Server) -> Option<(TcpStream, ConnectResponse)> {
    let mut s = open(server);
    let mut p = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: vec![0; 16].into(),
    }
    .to_bytes();
    false.encode(&mut p);
    s.write_all(&frame(&p)).ok()?;
    let reply = read_frame(&mut s)?;
    let mut r = ferrokeeper_net::Reader::new(&reply);
    let resp = ConnectResponse::decode(&mut r).ok()?;
    Some((s, resp))
}

fn request(s: &mut TcpStream, xid: i32, op: i32, body: &[u8]) -> Option<(ReplyHeader, Vec<u8>)> {
    let mut p = RequestHeader { xid, r#type: op }.to_bytes();
    p.extend_from_slice(body);
    s.write_all(&frame(&p)).ok()?;
    loop {
        let f = read_frame(s)?;
        let mut r = ferrokeeper_net::Reader::new(&f);
        let h = ReplyHeader::decode(&mut r).ok()?;
        if h.xid == -1 {
            continue; // a notification
        }
        return Some((h, r.rest().to_vec()));
    }
}

fn both(case: impl Fn(&Server)) {
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start(kind, &[]);
        case(&server);
        // Whatever the case did, the server still answers.
        assert_eq!(
            server.four_letter("ruok"),
            "imok",
            "{kind:?} stopped answering"
        );
    }
}

#[test]
fn four_letter_word_ruok_then_close() {
    both(|s| {
        let mut c = open(s);
        c.write_all(b"ruok").expect("send");
        let mut out = String::new();
        c.read_to_string(&mut out).expect("read");
        assert_eq!(out, "imok", "{:?}", s.kind);
    });
}

#[test]
fn oversized_length_prefix_closes_the_connection() {
    both(|s| {
        let mut c = open(s);
        c.write_all(&0x7fff_fff0_i32.to_be_bytes()).expect("send");
        c.write_all(&[0u8; 64]).expect("send");
        assert!(
            closed(&mut c),
            "{:?} kept a connection with a 2 GiB frame",
            s.kind
        );
    });
}

#[test]
fn negative_length_prefix_closes_the_connection() {
    both(|s| {
        let mut c = open(s);
        c.write_all(&(-5i32).to_be_bytes()).expect("send");
        assert!(closed(&mut c), "{:?}", s.kind);
    });
}

#[test]
fn garbage_instead_of_connect_closes_the_connection() {
    both(|s| {
        let mut c = open(s);
        c.write_all(&frame(b"this is not a connect request"))
            .expect("send");
        assert!(closed(&mut c), "{:?}", s.kind);
    });
}

#[test]
fn truncated_frame_then_hangup_leaves_the_server_up() {
    both(|s| {
        let mut c = open(s);
        c.write_all(&100i32.to_be_bytes()).expect("send");
        c.write_all(&[1, 2, 3]).expect("send");
        drop(c);
    });
}

#[test]
fn unknown_opcode_is_unimplemented_then_closed() {
    both(|s| {
        let (mut c, _) = handshake(s);
        let (h, body) =
            request(&mut c, 7, 999, &[]).unwrap_or_else(|| panic!("{:?}: no reply", s.kind));
        assert_eq!((h.xid, h.err), (7, -6), "{:?}", s.kind);
        assert!(body.is_empty());
        // UnimplementedRequestProcessor then closes the connection.
        assert!(
            closed(&mut c),
            "{:?} kept the connection after an unknown opcode",
            s.kind
        );
    });
}

#[test]
fn truncated_request_body_is_marshalling_error() {
    both(|s| {
        let (mut c, _) = handshake(s);
        // getData whose path claims 100 bytes but carries 3.
        let mut body = 100i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"/ab");
        let reply = request(&mut c, 9, 4, &body);
        match reply {
            Some((h, _)) => assert_eq!((h.xid, h.err), (9, -5), "{:?}", s.kind),
            None => panic!("{:?} closed instead of answering MarshallingError", s.kind),
        }
    });
}

#[test]
fn request_over_jute_maxbuffer_closes_the_connection() {
    both(|s| {
        let (mut c, _) = handshake(s);
        let body = GetDataRequest {
            path: "/".repeat(0x10_0000 + 16),
            watch: false,
        }
        .to_bytes();
        assert!(
            request(&mut c, 10, 4, &body).is_none(),
            "{:?} answered an oversized request",
            s.kind
        );
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A client that sends requests and never reads replies must not grow the server
/// without bound, and must not slow other sessions down.
#[test]
fn client_that_never_reads_is_bounded() {
    let server = Server::ferrokeeper();
    let (mut writer, _) = handshake(&server);
    let big = vec![b'x'; 1_000_000];
    let create = ferrokeeper_net::records::CreateRequest {
        path: "/big".into(),
        data: big.into(),
        acl: vec![ferrokeeper_net::records::Acl {
            perms: 31,
            id: ferrokeeper_net::records::Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
    };
    let (h, _) = request(&mut writer, 1, 1, &create.to_bytes()).expect("create");
    assert_eq!(h.err, 0);

    let (mut hog, _) = handshake(&server);
    hog.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut p = RequestHeader { xid: 2, r#type: 4 }.to_bytes();
    GetDataRequest {
        path: "/big".into(),
        watch: false,
    }
    .encode(&mut p);
    let f = frame(&p);
    let start = Instant::now();
    let mut sent = 0;
    // Each reply is 1 MB; 2,000 would be 2 GB if the server buffered them all.
    while sent < 2000 && start.elapsed() < Duration::from_secs(20) {
        if hog.write_all(&f).is_err() {
            break;
        }
        sent += 1;
    }
    // Another session is unaffected.
    let (mut other, _) = handshake(&server);
    let t = Instant::now();
    let (h, _) = request(
        &mut other,
        3,
        3,
        &ferrokeeper_net::records::ExistsRequest {
            path: "/big".into(),
            watch: false,
        }
        .to_bytes(),
    )
    .expect("exists");
    assert_eq!(h.err, 0);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "other session stalled"
    );
    let rss = rss_kib(server.pid());
    assert!(
        rss < 512 * 1024,
        "server RSS {rss} KiB after {sent} unread 1 MB replies"
    );
    drop(hog);
}

/// Null data (length −1) is kept apart from empty data: ZooKeeper stores what the
/// client sent and getData answers −1 for null (zkCli prints "null"). Checked on the
/// raw bytes of the reply, for create and for setData.
#[test]
fn null_data_round_trips_as_null() {
    both(|s| {
        let (mut c, _) = handshake(s);
        let acl = ferrokeeper_net::records::Acl {
            perms: 31,
            id: ferrokeeper_net::records::Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        };
        let create = |path: &str, data: ferrokeeper_net::NullableBuffer| {
            ferrokeeper_net::records::CreateRequest {
                path: path.into(),
                data,
                acl: vec![acl.clone()],
                flags: 0,
            }
        };
        let (h, _) = request(
            &mut c,
            1,
            1,
            &create("/null", ferrokeeper_net::NullableBuffer(None)).to_bytes(),
        )
        .expect("create");
        assert_eq!(h.err, 0, "{:?}", s.kind);
        let (h, _) =
            request(&mut c, 2, 1, &create("/empty", vec![].into()).to_bytes()).expect("create");
        assert_eq!(h.err, 0, "{:?}", s.kind);
        let data_len = |c: &mut TcpStream, xid: i32, path: &str| {
            let get = GetDataRequest {
                path: path.into(),
                watch: false,
            };
            let (h, body) = request(c, xid, 4, &get.to_bytes()).expect("getData");
            assert_eq!(h.err, 0);
            i32::from_be_bytes([body[0], body[1], body[2], body[3]])
        };
        assert_eq!(data_len(&mut c, 3, "/null"), -1, "{:?}: null data", s.kind);
        assert_eq!(data_len(&mut c, 4, "/empty"), 0, "{:?}: empty data", s.kind);
        let set = ferrokeeper_net::records::SetDataRequest {
            path: "/empty".into(),
            data: ferrokeeper_net::NullableBuffer(None),
            version: -1,
        };
        let (h, _) = request(&mut c, 5, 5, &set.to_bytes()).expect("setData");
        assert_eq!(h.err, 0);
        assert_eq!(
            data_len(&mut c, 6, "/empty"),
            -1,
            "{:?}: setData null",
            s.kind
        );
    });
}

/// SASL without a JAAS login configured: a standalone ZooKeeper answers Ok with a
/// null token (length −1) and keeps the connection; so does ferrokeeper (SASL with a
/// login is `tests/sasl.rs`).
#[test]
fn sasl_without_a_provider_answers_a_null_token() {
    both(|s| {
        let (mut c, _) = handshake(s);
        let req = ferrokeeper_net::records::GetSaslRequest {
            token: b"token".to_vec().into(),
        };
        let (h, body) = request(&mut c, 3, 102, &req.to_bytes()).expect("sasl reply");
        assert_eq!((h.xid, h.err), (3, 0), "{:?}", s.kind);
        assert_eq!(
            body,
            (-1i32).to_be_bytes().to_vec(),
            "{:?}: null token",
            s.kind
        );
        let exists = ferrokeeper_net::records::ExistsRequest {
            path: "/".into(),
            watch: false,
        };
        let (h, _) = request(&mut c, 4, 3, &exists.to_bytes()).expect("still connected");
        assert_eq!(h.err, 0);
    });
}

/// reconfig on a standalone server with `reconfigEnabled` unset: ReconfigDisabled (−123),
/// answered like any failed write, and the connection stays open.
#[test]
fn reconfig_is_disabled_on_a_standalone_server() {
    both(|s| {
        let (mut c, _) = handshake(s);
        let req = ferrokeeper_net::records::ReconfigRequest {
            joining_servers: "server.2=127.0.0.1:2888:3888".into(),
            leaving_servers: String::new(),
            new_members: String::new(),
            cur_config_id: -1,
        };
        let (h, body) = request(&mut c, 5, 16, &req.to_bytes()).expect("reconfig reply");
        assert_eq!((h.xid, h.err, body.len()), (5, -123, 0), "{:?}", s.kind);
        let exists = ferrokeeper_net::records::ExistsRequest {
            path: "/zookeeper/config".into(),
            watch: false,
        };
        let (h, _) = request(&mut c, 6, 3, &exists.to_bytes()).expect("still connected");
        assert_eq!(h.err, 0);
    });
}

/// `maxClientCnxns` counts connections open now, not ever: with a limit of 3, ten
/// connections made and closed one after another are all served, and a fourth at once
/// is refused while three are open.
#[test]
fn closed_connections_free_their_max_client_cnxns_slot() {
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start(kind, &[("maxClientCnxns", "3")]);
        for _ in 0..10 {
            // `handshake` retries while the server has not yet seen the last close.
            let (s, _) = handshake(&server);
            drop(s);
        }
        let open: Vec<TcpStream> = (0..3).map(|_| handshake(&server).0).collect();
        assert!(
            try_handshake(&server).is_none(),
            "{kind:?}: a fourth connection was served with a limit of 3"
        );
        drop(open);
    }
}
