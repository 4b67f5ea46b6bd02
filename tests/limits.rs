//! Every limit the configuration parses is enforced: each is exercised over a real socket
//! against ferrokeeper and, where Apache ZooKeeper has the same limit, against Java too,
//! so the two refuse, throttle or close in the same visible way. The limits also come in
//! as Java system properties (`-Dzookeeper.maxCnxns=...`), the way `zkServer.sh` passes
//! them, with ZooKeeper's precedence: a zoo.cfg key wins over the property it stands for.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Kind, Launch, Server};
use ferrokeeper_net::jute::{Decode, Encode};
use ferrokeeper_net::records::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, Id, ReplyHeader,
    RequestHeader,
};

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Connects and sends a ConnectRequest; `None` when the server closes the connection
/// instead of answering (how both servers refuse a connection over a limit).
fn try_handshake(port: u16) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
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
    let resp = ConnectResponse::decode(&mut ferrokeeper_net::Reader::new(&reply)).ok()?;
    (resp.session_id != 0).then_some(s)
}

/// A handshake that is retried while the server has not yet counted off connections that
/// were just closed (its readiness probe's, or a test's): both servers release a slot
/// after the close is seen, not when the client closes.
fn handshake(server: &Server) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = try_handshake(server.port) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: no session; log:\n{}",
            server.kind,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: 31,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

fn request_frame(xid: i32, op: i32, body: &impl Encode) -> Vec<u8> {
    let mut p = RequestHeader { xid, r#type: op }.to_bytes();
    body.encode(&mut p);
    frame(&p)
}

/// Reads replies until the one for `xid`, skipping notifications.
fn reply(s: &mut TcpStream) -> ReplyHeader {
    loop {
        let f = read_frame(s).expect("a reply");
        let h = ReplyHeader::decode(&mut ferrokeeper_net::Reader::new(&f)).expect("header");
        if h.xid != -1 {
            return h;
        }
    }
}

/// ferrokeeper's `mntr` counter `zk_fk_<name>`: how often a limit held a client back.
fn fk_counter(server: &Server, name: &str) -> u64 {
    let mntr = common::four_letter_word(server.port, "mntr").unwrap_or_default();
    mntr.lines()
        .find_map(|l| l.strip_prefix(&format!("zk_fk_{name}\t")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zk_fk_{name} in mntr:\n{mntr}"))
}

/// `maxCnxns` (ServerCnxnFactory): with `limit` connections open, the next is accepted by
/// the kernel and closed by the server before it answers anything; once one closes, a new
/// one is served.
fn assert_total_limit(server: &Server, limit: usize) {
    let mut open: Vec<TcpStream> = (0..limit).map(|_| handshake(server)).collect();
    assert!(
        try_handshake(server.port).is_none(),
        "{:?}: connection {} was served with maxCnxns {limit}",
        server.kind,
        limit + 1
    );
    // A four-letter word is a connection too, and is refused the same way.
    let refused = common::four_letter_word(server.port, "ruok").unwrap_or_default();
    assert_eq!(
        refused, "",
        "{:?}: ruok answered over maxCnxns",
        server.kind
    );
    if server.kind == Kind::Ferrokeeper {
        // The refusals above were maxCnxns's, not maxClientCnxns's.
        assert!(fk_counter_over_limit(server, &mut open, "cnxns_refused_total") >= 2);
    }
    open.pop();
    open.push(handshake(server));
    assert_eq!(open.len(), limit);
}

/// Reads a counter while `open` holds every slot: frees one for the `mntr` connection,
/// reads, and takes the slot back.
fn fk_counter_over_limit(server: &Server, open: &mut Vec<TcpStream>, name: &str) -> u64 {
    open.pop();
    let deadline = Instant::now() + Duration::from_secs(20);
    let value = loop {
        let mntr = common::four_letter_word(server.port, "mntr").unwrap_or_default();
        if !mntr.is_empty() {
            break mntr
                .lines()
                .find_map(|l| l.strip_prefix(&format!("zk_fk_{name}\t")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
        assert!(
            Instant::now() < deadline,
            "mntr refused after a slot was freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    open.push(handshake(server));
    value
}

#[test]
fn max_cnxns_closes_connections_beyond_the_limit() {
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start(kind, &[("maxCnxns", "3")]);
        assert_total_limit(&server, 3);
    }
}

#[test]
fn max_cnxns_counts_every_address_and_is_checked_before_max_client_cnxns() {
    // maxClientCnxns (per address) higher than maxCnxns: the total limit refuses first.
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start(kind, &[("maxCnxns", "2"), ("maxClientCnxns", "5")]);
        assert_total_limit(&server, 2);
    }
}

#[test]
fn max_cnxns_as_a_system_property() {
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let launch = Launch::properties(&[("zookeeper.maxCnxns", "2")]);
        let server = Server::start_with(kind, &[], &launch);
        assert_total_limit(&server, 2);
    }
}

#[test]
fn zoo_cfg_wins_over_the_system_property() {
    // QuorumPeerConfig copies the zoo.cfg key over zookeeper.maxCnxns.
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let launch = Launch::properties(&[("zookeeper.maxCnxns", "1")]);
        let server = Server::start_with(kind, &[("maxCnxns", "3")], &launch);
        assert_total_limit(&server, 3);
    }
}

#[test]
fn system_properties_from_jvmflags_environment_variables() {
    // zkServer.sh passes $SERVER_JVMFLAGS then $JVMFLAGS; the later flag wins.
    let launch = Launch {
        properties: Vec::new(),
        env: vec![
            (
                "SERVER_JVMFLAGS".into(),
                "-Xmx512m -Dzookeeper.maxCnxns=5".into(),
            ),
            ("JVMFLAGS".into(), "-Dzookeeper.maxCnxns='2'".into()),
        ],
        ..Launch::default()
    };
    let server = Server::start_with(Kind::Ferrokeeper, &[], &launch);
    assert_total_limit(&server, 2);
}

#[test]
fn jute_maxbuffer_as_a_system_property() {
    // Java reads jute.maxbuffer only as a system property (BinaryInputArchive.maxBuffer).
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let launch = Launch::properties(&[("jute.maxbuffer", "4096")]);
        let server = Server::start_with(kind, &[], &launch);
        let mut s = handshake(&server);
        let small = GetDataRequest {
            path: "/zookeeper".into(),
            watch: false,
        };
        s.write_all(&request_frame(1, 4, &small)).expect("send");
        assert_eq!(reply(&mut s).err, 0, "{kind:?}");
        let big = GetDataRequest {
            path: format!("/{}", "x".repeat(8192)),
            watch: false,
        };
        s.write_all(&request_frame(2, 4, &big)).expect("send");
        assert!(
            read_frame(&mut s).is_none(),
            "{kind:?}: a request over jute.maxbuffer was answered"
        );
    }
}

/// Pipelines `count` creates on each of `sessions` sessions before reading any reply,
/// then checks every reply: throttling must delay requests, never fail them.
fn pipelined_writes_all_succeed(server: &Server, root: &str, sessions: usize, count: i32) {
    let mut setup = handshake(server);
    let create = |path: String| CreateRequest {
        path,
        data: b"v".to_vec().into(),
        acl: open_acl(),
        flags: 0,
    };
    setup
        .write_all(&request_frame(1, 1, &create(root.to_string())))
        .expect("send");
    assert_eq!(reply(&mut setup).err, 0);
    let workers: Vec<_> = (0..sessions)
        .map(|n| {
            let mut s = handshake(server);
            let root = root.to_string();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                for xid in 1..=count {
                    bytes.extend(request_frame(xid, 1, &create(format!("{root}/s{n}-{xid}"))));
                    // A read ordered behind the write, as a client's sync-then-read would be.
                    bytes.extend(request_frame(
                        count + xid,
                        4,
                        &GetDataRequest {
                            path: format!("{root}/s{n}-{xid}"),
                            watch: false,
                        },
                    ));
                }
                s.write_all(&bytes).expect("pipeline");
                for xid in 1..=count {
                    let h = reply(&mut s);
                    assert_eq!((h.xid, h.err), (xid, 0), "create on session {n}");
                    let h = reply(&mut s);
                    assert_eq!((h.xid, h.err), (count + xid, 0), "read on session {n}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .expect("a session's requests all succeed, in order");
    }
}

#[test]
fn global_outstanding_limit_throttles_and_never_fails_a_request() {
    // ZooKeeperServer.shouldThrottle: over globalOutstandingLimit, connections with a
    // request outstanding stop being read; the client sees slower replies, not errors.
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start(kind, &[("globalOutstandingLimit", "1")]);
        pipelined_writes_all_succeed(&server, "/global", 4, 300);
        if kind == Kind::Ferrokeeper {
            // Held back, not refused: connections stopped reading at the limit.
            assert!(fk_counter(&server, "reads_paused_global_outstanding") > 0);
            assert_eq!(fk_counter(&server, "reads_paused_session_queue"), 0);
        }
    }
}

#[test]
fn global_outstanding_limit_as_a_system_property() {
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let launch = Launch::properties(&[("zookeeper.globalOutstandingLimit", "2")]);
        let server = Server::start_with(kind, &[], &launch);
        pipelined_writes_all_succeed(&server, "/global", 3, 200);
    }
}

/// The `queued=` counts of every session in `cons`.
fn queued_counts(server: &Server) -> Vec<u64> {
    let cons = common::four_letter_word(server.port, "cons").unwrap_or_default();
    cons.lines()
        .filter_map(|l| l.split("queued=").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn one_session_cannot_queue_without_bound() {
    // ferrokeeper's own bound (ZooKeeper has none): a session with 4 requests waiting is
    // not read until one is answered, so the writes it pipelines queue in its socket,
    // not in the server; every request still succeeds, in order.
    let server = Server::start(
        Kind::Ferrokeeper,
        &[("ferrokeeper.sessionQueuedRequestsMax", "4")],
    );
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let port = server.port;
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let cons = common::four_letter_word(port, "cons").unwrap_or_default();
                for n in cons
                    .lines()
                    .filter_map(|l| l.split("queued=").nth(1))
                    .filter_map(|rest| rest.split(',').next())
                    .filter_map(|n| n.parse::<u64>().ok())
                {
                    most = most.max(n);
                }
            }
            most
        })
    };
    pipelined_writes_all_succeed(&server, "/session", 2, 2000);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.join().expect("sampler");
    assert!(
        most <= 4,
        "a session had {most} writes queued with a bound of 4"
    );
    assert!(queued_counts(&server).iter().all(|&n| n == 0));
    // 4,000 pipelined requests on each session went through a queue of 4.
    assert!(fk_counter(&server, "reads_paused_session_queue") > 0);
}
