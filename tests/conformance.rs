//! Black-box conformance tests of every client operation, over real sockets.
//!
//! Every scenario is an `async fn` that takes the address of a running server and runs
//! under its own root path. The `scenarios!` macro turns each into two tests:
//! `<name>_java`, against Apache ZooKeeper 3.8 (the authority: it must pass), and
//! `<name>_ferrokeeper`, against this project's server (ignored until the server is
//! built). One server of each kind is shared by the whole binary (`Server::shared`), so
//! the JVM starts once.
//!
//! Most scenarios speak the wire protocol through the raw client of `tests/raw` so they
//! can pin exact error codes, every Stat field, reply-header zxids and every watch
//! notification; the `client_*` scenarios go through the `zookeeper-client` crate, a
//! real client library, to show its ordinary API works end to end.
//!
//! Citations: "PG" is the ZooKeeper Programmer's Guide (zookeeperProgrammers.md), with
//! its section name; "jute" is a record of zookeeper.jute. Behaviour of the real server
//! that the docs do not state is recorded next to the assertion with the source file of
//! ZooKeeper 3.8.0 (`zookeeper-server/src/main/java/org/apache/zookeeper/server/...`)
//! that explains it.

mod common;
mod raw;

use std::time::{Duration, Instant};

use common::{Kind, Server};
use ferrokeeper_net::records::{Acl, ClientInfo, CreateRequest, CreateTtlRequest, Id, Stat};
use raw::{err, ev, mode, op, perms, Conn, ConnectOptions, Event, MultiOp, OpResult};

/// The shared servers' extra config: containers and TTL nodes are checked every 100 ms
/// instead of every minute, so reaping can be tested quickly.
const CONFIG: &[(&str, &str)] = &[("znode.container.checkIntervalMs", "100")];

/// `tickTime` of the shared servers (common::BASE_CONFIG).
const TICK_MS: i32 = 2000;

thread_local! {
    /// The server kind the scenario on this thread talks to (each `tokio::test` runs
    /// on its own current-thread runtime).
    static KIND: std::cell::Cell<Kind> = const { std::cell::Cell::new(Kind::JavaZk) };
}

/// Whether `exists` checks READ on an existing node: ZooKeeper 3.9.2 added the check
/// (FinalRequestProcessor, exists case); 3.8, installed here, has none. ferrokeeper
/// follows 3.9.
fn exists_checks_read() -> bool {
    KIND.with(|k| k.get()) == Kind::Ferrokeeper
}

macro_rules! scenarios {
    ($($scenario:ident => $java:ident, $ferrokeeper:ident;)*) => {$(
        #[tokio::test]
        async fn $java() {
            KIND.with(|k| k.set(Kind::JavaZk));
            let addr = Server::shared(Kind::JavaZk, CONFIG).address();
            $scenario(&addr).await;
        }

        #[tokio::test]
        async fn $ferrokeeper() {
            KIND.with(|k| k.set(Kind::Ferrokeeper));
            let addr = Server::shared(Kind::Ferrokeeper, CONFIG).address();
            $scenario(&addr).await;
        }
    )*};
}

scenarios! {
    session_timeout_negotiation => session_timeout_negotiation_java, session_timeout_negotiation_ferrokeeper;
    session_reattach => session_reattach_java, session_reattach_ferrokeeper;
    connect_handshake => connect_handshake_java, connect_handshake_ferrokeeper;
    frame_limits => frame_limits_java, frame_limits_ferrokeeper;
    create_all_modes => create_all_modes_java, create_all_modes_ferrokeeper;
    create_flags_and_opcodes => create_flags_and_opcodes_java, create_flags_and_opcodes_ferrokeeper;
    sequential_suffix => sequential_suffix_java, sequential_suffix_ferrokeeper;
    create2_stat => create2_stat_java, create2_stat_ferrokeeper;
    create_errors => create_errors_java, create_errors_ferrokeeper;
    delete_versions => delete_versions_java, delete_versions_ferrokeeper;
    stat_changes => stat_changes_java, stat_changes_ferrokeeper;
    system_nodes => system_nodes_java, system_nodes_ferrokeeper;
    acl_get_set => acl_get_set_java, acl_get_set_ferrokeeper;
    acl_digest_denial => acl_digest_denial_java, acl_digest_denial_ferrokeeper;
    acl_auth_scheme => acl_auth_scheme_java, acl_auth_scheme_ferrokeeper;
    acl_world_read_only => acl_world_read_only_java, acl_world_read_only_ferrokeeper;
    acl_invalid => acl_invalid_java, acl_invalid_ferrokeeper;
    auth_failed => auth_failed_java, auth_failed_ferrokeeper;
    get_children => get_children_java, get_children_ferrokeeper;
    sync => sync_java, sync_ferrokeeper;
    multi_success => multi_success_java, multi_success_ferrokeeper;
    multi_failure => multi_failure_java, multi_failure_ferrokeeper;
    multi_read => multi_read_java, multi_read_ferrokeeper;
    failed_writes_consume_zxid => failed_writes_consume_zxid_java, failed_writes_consume_zxid_ferrokeeper;
    get_ephemerals => get_ephemerals_java, get_ephemerals_ferrokeeper;
    get_all_children_number => get_all_children_number_java, get_all_children_number_ferrokeeper;
    watch_data => watch_data_java, watch_data_ferrokeeper;
    watch_exists => watch_exists_java, watch_exists_ferrokeeper;
    watch_children => watch_children_java, watch_children_ferrokeeper;
    watch_event_order => watch_event_order_java, watch_event_order_ferrokeeper;
    watch_persistent => watch_persistent_java, watch_persistent_ferrokeeper;
    watch_persistent_recursive => watch_persistent_recursive_java, watch_persistent_recursive_ferrokeeper;
    remove_watches => remove_watches_java, remove_watches_ferrokeeper;
    set_watches => set_watches_java, set_watches_ferrokeeper;
    session_close => session_close_java, session_close_ferrokeeper;
    session_expiry => session_expiry_java, session_expiry_ferrokeeper;
    who_am_i => who_am_i_java, who_am_i_ferrokeeper;
    path_validation => path_validation_java, path_validation_ferrokeeper;
    empty_path_is_root_for_reads => empty_path_is_root_for_reads_java, empty_path_is_root_for_reads_ferrokeeper;
    unknown_opcode => unknown_opcode_java, unknown_opcode_ferrokeeper;
    malformed_request => malformed_request_java, malformed_request_ferrokeeper;
    container_reaping => container_reaping_java, container_reaping_ferrokeeper;
    ttl_expiry => ttl_expiry_java, ttl_expiry_ferrokeeper;
    reply_header_zxid => reply_header_zxid_java, reply_header_zxid_ferrokeeper;
    client_basic_ops => client_basic_ops_java, client_basic_ops_ferrokeeper;
    client_multi => client_multi_java, client_multi_ferrokeeper;
    client_watches => client_watches_java, client_watches_ferrokeeper;
    client_auth_and_whoami => client_auth_and_whoami_java, client_auth_and_whoami_ferrokeeper;
    client_ephemerals_and_counts => client_ephemerals_and_counts_java, client_ephemerals_and_counts_ferrokeeper;
}

// ---------------------------------------------------------------------------------------
// helpers

/// Creates the scenario's root `/<name>` (persistent, open ACL) and returns its path.
async fn root(c: &mut Conn, name: &str) -> String {
    let path = format!("/{name}");
    c.create(&path, b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .expect("create scenario root");
    path
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Waits until every change made before this call has been delivered on `c`: a sync
/// reply is ordered after every notification the server queued for the connection
/// before it (PG "ZooKeeper Watches": ordering guarantee; the server answers a session's
/// requests in order).
async fn settle(c: &mut Conn) {
    c.sync("/").await.expect("sync");
}

/// Asserts that no notification is pending on `c` after a settle.
async fn assert_no_events(c: &mut Conn, what: &str) {
    settle(c).await;
    let e = c.take_events();
    assert!(e.is_empty(), "{what}: unexpected events {e:?}");
}

fn event(kind: i32, path: &str) -> Event {
    // State 3 is SyncConnected (Watcher.Event.KeeperState). ZooKeeper 3.8 sends −1 as the
    // notification header's zxid (NIOServerCnxn.process: `new ReplyHeader(-1, -1L, 0)`);
    // 3.9 sends the triggering txn's zxid (ZOOKEEPER-4655), so events are compared
    // without it (see `kinds`).
    Event {
        zxid: 0,
        kind,
        state: 3,
        path: path.into(),
    }
}

/// Events with the header zxid cleared, for comparison with [`event`].
fn kinds(events: Vec<Event>) -> Vec<Event> {
    events.into_iter().map(|e| Event { zxid: 0, ..e }).collect()
}

/// Waits (sending nothing) until the server closes `c`'s connection.
async fn wait_closed(c: &mut Conn, what: &str) {
    while !c.is_closed() {
        match c.next_incoming().await {
            raw::Incoming::Closed => {}
            other => panic!("{what}: expected the server to close the connection, got {other:?}"),
        }
    }
}

async fn stat_of(c: &mut Conn, path: &str) -> Stat {
    c.exists(path, false)
        .await
        .unwrap_or_else(|e| panic!("exists {path}: {e}"))
}

async fn wait_until_gone(c: &mut Conn, path: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match c.exists(path, false).await {
            Err(err::NO_NODE) => return start.elapsed(),
            Ok(_) => {}
            Err(e) => panic!("exists {path}: {e}"),
        }
        assert!(
            start.elapsed() < limit,
            "{path} still exists after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// sessions

/// PG "ZooKeeper Sessions": the server grants a timeout within [2, 20] × tickTime
/// (zookeeperAdmin.md minSessionTimeout / maxSessionTimeout defaults). jute
/// ConnectResponse: protocolVersion, timeOut, sessionId, passwd (16 bytes).
async fn session_timeout_negotiation(addr: &str) {
    for (asked, granted) in [
        (1, 2 * TICK_MS),
        (0, 2 * TICK_MS),
        (2 * TICK_MS - 1, 2 * TICK_MS),
        (2 * TICK_MS, 2 * TICK_MS),
        (10_000, 10_000),
        (20 * TICK_MS, 20 * TICK_MS),
        (20 * TICK_MS + 1, 20 * TICK_MS),
        (i32::MAX, 20 * TICK_MS),
    ] {
        let c = Conn::connect_with(
            addr,
            ConnectOptions {
                timeout_ms: asked,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(c.timeout_ms, granted, "asked for {asked} ms");
        assert_ne!(c.session_id, 0);
        assert_eq!(c.passwd.len(), 16, "session password length");
    }
    // Through a real client: zookeeper-client reports the negotiated timeout.
    let client = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_millis(100))
        .connect(addr)
        .await
        .expect("connect");
    assert_eq!(
        client.session_timeout(),
        Duration::from_millis(2 * TICK_MS as u64)
    );
}

/// PG "ZooKeeper Sessions": a client reconnects to its session with id and password; a
/// wrong password is refused. Java refuses with a ConnectResponse of timeout 0, id 0 and
/// closes (ZooKeeperServer.finishSessionInit with valid = false). When a session moves to
/// a new connection the server closes the old one (ZooKeeperServer
/// .processConnectRequest: `serverCnxnFactory.closeSession(sessionId, CLIENT_RECONNECT)`).
async fn session_reattach(addr: &str) {
    let mut a = Conn::connect(addr).await;
    let r = root(&mut a, "session_reattach").await;
    let eph = format!("{r}/eph");
    a.create(&eph, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    let opts = ConnectOptions {
        session_id: a.session_id,
        passwd: a.passwd.clone(),
        ..Default::default()
    };
    let mut b = Conn::connect_with(addr, opts.clone()).await;
    assert_eq!(b.session_id, a.session_id, "same session after reattach");
    assert_eq!(b.timeout_ms, 30_000);
    assert_eq!(b.passwd, a.passwd);
    assert_eq!(
        a.ping().await.err,
        err::CLOSED,
        "the old connection is closed"
    );
    assert_eq!(
        stat_of(&mut b, &eph).await.ephemeral_owner,
        a.session_id,
        "ephemerals survive the move"
    );
    let mut bad = opts.clone();
    bad.passwd[0] ^= 0xff;
    let refused = Conn::connect_with(addr, bad).await;
    assert_eq!(refused.session_id, 0, "wrong password: session refused");
    assert!(refused.timeout_ms <= 0);
    assert!(refused.is_closed());
    // Java closes the session's live connection before it checks the password (same
    // place: closeSession runs first, reopenSession checks the password afterwards), so
    // the refused attempt also disconnected b. The session itself lives on.
    assert_eq!(
        b.ping().await.err,
        err::CLOSED,
        "a refused reattach drops the live connection (Java 3.8)"
    );
    let mut c = Conn::connect_with(addr, opts.clone()).await;
    assert_eq!(c.session_id, a.session_id);
    assert!(c.exists(&eph, false).await.is_ok());
    // A session id the server never issued is refused the same way.
    let unknown = Conn::connect_with(
        addr,
        ConnectOptions {
            session_id: 0x7777,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(unknown.session_id, 0);
    c.close().await;
}

/// jute ConnectResponse{protocolVersion, timeOut, sessionId, passwd} and the optional
/// readOnly byte: sent only to clients that sent one in their ConnectRequest
/// (ZooKeeperServer.finishSessionInit: `if (!cnxn.isOldClient) bos.writeBool(...)`).
async fn connect_handshake(addr: &str) {
    let mut new_client = Conn::connect(addr).await;
    let resp = &new_client.connect_response;
    assert_eq!(
        resp.len(),
        4 + 4 + 8 + 4 + 16 + 1,
        "ConnectResponse + readOnly"
    );
    assert_eq!(&resp[0..4], &[0, 0, 0, 0], "protocolVersion 0");
    assert_eq!(resp[36], 0, "not a read-only server");
    let mut old_client = Conn::connect_with(
        addr,
        ConnectOptions {
            send_read_only: false,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        old_client.connect_response.len(),
        36,
        "no readOnly byte for an old client"
    );
    assert_ne!(old_client.session_id, 0);
    assert!(old_client.exists("/", false).await.is_ok());
    // Session ids of one server are distinct; the password is 16 bytes.
    assert_ne!(new_client.session_id, old_client.session_id);
    new_client.close().await;
    old_client.close().await;
}

/// Framing (jute.maxbuffer, default 0xfffff): a request frame longer than that makes the
/// server close the connection ("Len error", NIOServerCnxn.readLength); data just below
/// it is stored and read back whole.
async fn frame_limits(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "frame_limits").await;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let n = format!("{r}/big");
    c.create(&n, &big, raw::open_acl(), 0).await.unwrap();
    let (data, s) = c.get_data(&n, false).await.unwrap();
    assert_eq!(s.data_length, 1_000_000);
    assert!(data == big, "1 MB of data read back unchanged");
    let mut d = Conn::connect(addr).await;
    d.write_bytes(&(0x10_0000i32).to_be_bytes()).await;
    wait_closed(&mut d, "frame length 0x100000").await;
    let mut e = Conn::connect(addr).await;
    e.write_bytes(&(-1i32).to_be_bytes()).await;
    wait_closed(&mut e, "negative frame length").await;
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// create

/// PG "Znodes" (Ephemeral Nodes, Sequence Nodes, Container Nodes, TTL Nodes): all seven
/// CreateModes through create2 / createContainer / createTTL (jute CreateRequest,
/// CreateTTLRequest, Create2Response).
async fn create_all_modes(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "create_all_modes").await;
    let sid = c.session_id;

    let (p, s) = c
        .create2(
            &format!("{r}/persistent"),
            b"p",
            raw::open_acl(),
            mode::PERSISTENT,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/persistent"));
    assert_eq!(s.ephemeral_owner, 0);

    let (p, s) = c
        .create2(
            &format!("{r}/ephemeral"),
            b"e",
            raw::open_acl(),
            mode::EPHEMERAL,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/ephemeral"));
    assert_eq!(s.ephemeral_owner, sid, "ephemeralOwner is the session id");

    let (p, s) = c
        .create2(
            &format!("{r}/ps-"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/ps-0000000002"));
    assert_eq!(s.ephemeral_owner, 0);

    let (p, s) = c
        .create2(
            &format!("{r}/es-"),
            b"",
            raw::open_acl(),
            mode::EPHEMERAL_SEQUENTIAL,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/es-0000000003"));
    assert_eq!(s.ephemeral_owner, sid);

    // Containers are stored with ephemeralOwner Long.MIN_VALUE
    // (EphemeralType.CONTAINER_EPHEMERAL_OWNER) but clients never see that value:
    // DataNode.copyStat reports 0 for every non-NORMAL owner (getClientEphemeralOwner).
    let (p, s) = c
        .create_container(&format!("{r}/container"), b"c")
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/container"));
    assert_eq!(
        s.ephemeral_owner, 0,
        "container owner as the client sees it"
    );
    assert_eq!(stat_of(&mut c, &p).await.ephemeral_owner, 0);

    // TTL nodes: stored owner is 0xFF << 56 | ttl (EphemeralType.TTL), again shown as 0.
    let (p, s) = c
        .create_ttl(
            &format!("{r}/ttl"),
            b"t",
            mode::PERSISTENT_WITH_TTL,
            3_600_000,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/ttl"));
    assert_eq!(s.ephemeral_owner, 0, "TTL owner as the client sees it");
    let (p, s) = c
        .create_ttl(
            &format!("{r}/ttls-"),
            b"",
            mode::PERSISTENT_SEQUENTIAL_WITH_TTL,
            3_600_000,
        )
        .await
        .unwrap();
    assert_eq!(p, format!("{r}/ttls-0000000006"));
    assert_eq!(s.ephemeral_owner, 0);

    let mut names = c.get_children(&r, false).await.unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "container",
            "ephemeral",
            "es-0000000003",
            "persistent",
            "ps-0000000002",
            "ttl",
            "ttls-0000000006"
        ]
    );
    // The plain create reply (jute CreateResponse) carries only the path.
    let reply = c
        .call(
            op::CREATE,
            &CreateRequest {
                path: format!("{r}/plain"),
                data: Default::default(),
                acl: raw::open_acl(),
                flags: 0,
            },
        )
        .await;
    assert_eq!(reply.err, 0);
    assert_eq!(
        reply.body,
        ferrokeeper_net::jute::Encode::to_bytes(&format!("{r}/plain"))
    );
    c.close().await;
}

/// Which opcode/flag combinations the server accepts (PrepRequestProcessor
/// .pRequest2TxnCreate and validateCreateRequest; EphemeralType.validateTTL).
async fn create_flags_and_opcodes(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "create_flags_and_opcodes").await;
    let req = |name: &str, flags: i32| CreateRequest {
        path: format!("{r}/{name}"),
        data: Default::default(),
        acl: raw::open_acl(),
        flags,
    };
    // TTL flags through create/create2 are refused: the TTL there is −1, which
    // validateTTL rejects.
    for opcode in [op::CREATE, op::CREATE2] {
        for flags in [
            mode::PERSISTENT_WITH_TTL,
            mode::PERSISTENT_SEQUENTIAL_WITH_TTL,
        ] {
            assert_eq!(
                c.call(opcode, &req("t", flags)).await.err,
                err::BAD_ARGUMENTS,
                "opcode {opcode} flags {flags}"
            );
        }
    }
    // Unknown flags: CreateMode.fromFlag throws, which becomes BadArguments.
    for flags in [7, -1, 100] {
        assert_eq!(
            c.call(op::CREATE, &req("u", flags)).await.err,
            err::BAD_ARGUMENTS,
            "flags {flags}"
        );
    }
    // createTTL accepts only the two TTL modes and 0 < ttl <= 2^40 - 1 (EphemeralType.MAX_TTL
    // for the extended types: the TTL must fit the low 40 bits of the owner).
    let ttl_req = |flags: i32, ttl: i64| CreateTtlRequest {
        path: format!("{r}/ttl"),
        data: Default::default(),
        acl: raw::open_acl(),
        flags,
        ttl,
    };
    for (flags, ttl) in [
        (mode::PERSISTENT, 1000),
        (mode::EPHEMERAL, 1000),
        (mode::PERSISTENT_SEQUENTIAL, 1000),
        (mode::CONTAINER, 1000),
        (mode::PERSISTENT_WITH_TTL, 0),
        (mode::PERSISTENT_WITH_TTL, -1),
        (mode::PERSISTENT_WITH_TTL, 1 << 40),
    ] {
        assert_eq!(
            c.call(op::CREATE_TTL, &ttl_req(flags, ttl)).await.err,
            err::BAD_ARGUMENTS,
            "createTTL flags {flags} ttl {ttl}"
        );
    }
    let ok = c
        .call(
            op::CREATE_TTL,
            &ttl_req(mode::PERSISTENT_WITH_TTL, (1 << 40) - 1),
        )
        .await;
    assert_eq!(ok.err, 0, "largest TTL");
    // createContainer ignores the flags: the node is a container whatever they say
    // (PrepRequestProcessor builds a CreateContainerTxn from the opcode alone).
    let reply = c
        .call(op::CREATE_CONTAINER, &req("c_flag0", mode::PERSISTENT))
        .await;
    assert_eq!(reply.err, 0);
    let reply = c
        .call(op::CREATE_CONTAINER, &req("c_flag1", mode::EPHEMERAL))
        .await;
    assert_eq!(reply.err, 0);
    assert_eq!(
        stat_of(&mut c, &format!("{r}/c_flag1"))
            .await
            .ephemeral_owner,
        0,
        "not ephemeral"
    );
    // create/create2 with the CONTAINER flag succeed but make a plain persistent node: the
    // txn is a CreateTxn (ephemeral = false), not a CreateContainerTxn. The
    // container_reaping scenario shows it is never reaped.
    assert_eq!(
        c.call(op::CREATE, &req("not_container", mode::CONTAINER))
            .await
            .err,
        0
    );
    c.close().await;
}

/// PG "Sequence Nodes -- Unique Naming": the suffix is `%010d` of the parent's
/// sequence counter. The counter is the parent's *stored* cversion, which counts child
/// creations only (PrepRequestProcessor.pRequest2TxnCreate), so deletes do not advance
/// it even though they advance the cversion clients see (see stat_changes).
async fn sequential_suffix(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "sequential_suffix").await;
    let p = format!("{r}/p");
    c.create(&p, b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .unwrap();
    assert_eq!(
        c.create(
            &format!("{p}/s-"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await
        .unwrap(),
        format!("{p}/s-0000000000")
    );
    c.create(
        &format!("{p}/plain"),
        b"",
        raw::open_acl(),
        mode::PERSISTENT,
    )
    .await
    .unwrap();
    c.delete(&format!("{p}/plain"), -1).await.unwrap();
    // Two creations so far: the next suffix is 2, not 3 (the delete did not count).
    assert_eq!(
        c.create(
            &format!("{p}/s-"),
            b"",
            raw::open_acl(),
            mode::EPHEMERAL_SEQUENTIAL
        )
        .await
        .unwrap(),
        format!("{p}/s-0000000002")
    );
    // A failed create does not advance it either.
    assert_eq!(
        c.create(&format!("{p}/s-0000000002"), b"", raw::open_acl(), 0)
            .await,
        Err(err::NODE_EXISTS)
    );
    // An empty name: the path may end with '/' when sequential; the child is just digits.
    assert_eq!(
        c.create(
            &format!("{p}/"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await
        .unwrap(),
        format!("{p}/0000000003")
    );
    // Names "." and ".." become valid once the suffix is appended.
    assert_eq!(
        c.create(
            &format!("{p}/."),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await
        .unwrap(),
        format!("{p}/.0000000004")
    );
    // The counter is per parent.
    let q = format!("{r}/q");
    c.create(&q, b"", raw::open_acl(), mode::PERSISTENT)
        .await
        .unwrap();
    assert_eq!(
        c.create(
            &format!("{q}/x"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await
        .unwrap(),
        format!("{q}/x0000000000")
    );
    // A sequential node whose suffixed name already exists: NodeExists (the suffix is
    // computed first, then the existence check runs).
    c.create(
        &format!("{q}/y0000000002"),
        b"",
        raw::open_acl(),
        mode::PERSISTENT,
    )
    .await
    .unwrap();
    assert_eq!(
        c.create(
            &format!("{q}/y"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await,
        Err(err::NODE_EXISTS)
    );
    // A sequential create under an ephemeral parent: NoChildrenForEphemerals.
    let e = format!("{r}/eph");
    c.create(&e, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    assert_eq!(
        c.create(
            &format!("{e}/s"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await,
        Err(err::NO_CHILDREN_FOR_EPHEMERALS)
    );
    c.close().await;
}

/// jute Create2Response: the new node's Stat. czxid = mzxid = pzxid = the txn's zxid
/// (also the reply header's zxid), ctime = mtime, versions 0.
async fn create2_stat(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "create2_stat").await;
    let reply = c
        .call(
            op::CREATE2,
            &CreateRequest {
                path: format!("{r}/n"),
                data: b"hello".to_vec().into(),
                acl: raw::open_acl(),
                flags: mode::EPHEMERAL,
            },
        )
        .await;
    assert_eq!(reply.err, 0);
    let resp: ferrokeeper_net::records::Create2Response = reply.decode();
    let s = resp.stat;
    assert_eq!(resp.path, format!("{r}/n"));
    assert_eq!(s.czxid, reply.zxid);
    assert_eq!(s.mzxid, reply.zxid);
    assert_eq!(s.pzxid, reply.zxid);
    assert_eq!(s.ctime, s.mtime);
    assert!(
        s.ctime > 1_600_000_000_000,
        "ctime is wall-clock ms: {}",
        s.ctime
    );
    assert_eq!((s.version, s.cversion, s.aversion), (0, 0, 0));
    assert_eq!(s.ephemeral_owner, c.session_id);
    assert_eq!(s.data_length, 5);
    assert_eq!(s.num_children, 0);
    assert_eq!(
        stat_of(&mut c, &format!("{r}/n")).await,
        s,
        "exists shows the same stat"
    );
    c.close().await;
}

/// Create's errors and the order the server checks them in (PrepRequestProcessor
/// .pRequest2TxnCreate: path shape, ACL validity, parent exists, CREATE permission,
/// sequence suffix, full path validity, node exists, parent not ephemeral).
async fn create_errors(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "create_errors").await;
    let open = raw::open_acl;
    c.create(&format!("{r}/a"), b"", open(), 0).await.unwrap();
    assert_eq!(
        c.create(&format!("{r}/a"), b"", open(), 0).await,
        Err(err::NODE_EXISTS)
    );
    assert_eq!(
        c.create(&format!("{r}/a"), b"", open(), mode::EPHEMERAL)
            .await,
        Err(err::NODE_EXISTS)
    );
    assert_eq!(
        c.create(&format!("{r}/missing/b"), b"", open(), 0).await,
        Err(err::NO_NODE)
    );
    c.create(&format!("{r}/e"), b"", open(), mode::EPHEMERAL)
        .await
        .unwrap();
    assert_eq!(
        c.create(&format!("{r}/e/child"), b"", open(), 0).await,
        Err(err::NO_CHILDREN_FOR_EPHEMERALS)
    );
    assert_eq!(
        c.create(&format!("{r}/e/child"), b"", open(), mode::EPHEMERAL)
            .await,
        Err(err::NO_CHILDREN_FOR_EPHEMERALS)
    );
    // Precedence: an invalid ACL is reported before a missing parent.
    assert_eq!(
        c.create(&format!("{r}/missing/b"), b"", vec![], 0).await,
        Err(err::INVALID_ACL)
    );
    // ... and a missing parent before an existing node's clash can even be looked at.
    assert_eq!(
        c.create(&format!("{r}/missing/a"), b"", open(), 0).await,
        Err(err::NO_NODE)
    );
    // The root exists.
    assert_eq!(c.create("/", b"", open(), 0).await, Err(err::NODE_EXISTS));
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// delete, stat

/// PG "ZooKeeper Stat Structure" / delete(path, version): −1 matches any version.
/// Checks in order (PrepRequestProcessor, case delete): path shape and special paths
/// (BadArguments), parent exists (NoNode), DELETE permission on the parent, node exists
/// (NoNode), version (BadVersion), children (NotEmpty).
async fn delete_versions(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "delete_versions").await;
    let n = format!("{r}/n");
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    c.set_data(&n, b"1", -1).await.unwrap();
    c.set_data(&n, b"2", -1).await.unwrap();
    assert_eq!(c.delete(&n, 0).await, Err(err::BAD_VERSION));
    assert_eq!(c.delete(&n, 3).await, Err(err::BAD_VERSION));
    assert_eq!(
        c.delete(&n, -2).await,
        Err(err::BAD_VERSION),
        "only -1 is the wildcard"
    );
    c.delete(&n, 2).await.unwrap();
    assert_eq!(c.delete(&n, -1).await, Err(err::NO_NODE));
    assert_eq!(
        c.delete(&format!("{r}/nope/x"), -1).await,
        Err(err::NO_NODE)
    );

    let p = format!("{r}/p");
    c.create(&p, b"", raw::open_acl(), 0).await.unwrap();
    c.create(&format!("{p}/c"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    assert_eq!(c.delete(&p, -1).await, Err(err::NOT_EMPTY));
    assert_eq!(c.delete(&p, 0).await, Err(err::NOT_EMPTY));
    // A wrong version is reported before NotEmpty.
    assert_eq!(c.delete(&p, 7).await, Err(err::BAD_VERSION));
    c.delete(&format!("{p}/c"), 0).await.unwrap();
    c.delete(&p, -1).await.unwrap();

    // The root and the system nodes cannot be deleted: BadArguments
    // (ZKDatabase.isSpecialPath covers /, /zookeeper, /zookeeper/quota, /zookeeper/config).
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            c.delete(special, -1).await,
            Err(err::BAD_ARGUMENTS),
            "delete {special}"
        );
    }
    c.close().await;
}

/// PG "ZooKeeper Stat Structure": how each write moves each Stat field.
/// The cversion clients see is 2 × (stored cversion) − numChildren
/// (DataNode.copyStat): the stored counter counts creations, so the visible one counts
/// creations plus deletions.
async fn stat_changes(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "stat_changes").await;
    let p = format!("{r}/p");
    let (_, created) = c.create2(&p, b"abc", raw::open_acl(), 0).await.unwrap();

    // setData: version +1, mzxid = txn zxid, mtime moves, dataLength; the rest stays.
    let reply = c
        .call(
            op::SET_DATA,
            &ferrokeeper_net::records::SetDataRequest {
                path: p.clone(),
                data: b"hello world".to_vec().into(),
                version: 0,
            },
        )
        .await;
    assert_eq!(reply.err, 0);
    let s = reply
        .decode::<ferrokeeper_net::records::SetDataResponse>()
        .stat;
    assert_eq!(s.version, 1);
    assert_eq!(s.mzxid, reply.zxid);
    assert!(s.mzxid > created.mzxid);
    assert!(s.mtime >= created.mtime);
    assert_eq!(s.data_length, 11);
    assert_eq!(
        (s.czxid, s.ctime, s.cversion, s.aversion, s.pzxid),
        (created.czxid, created.ctime, 0, 0, created.pzxid)
    );
    assert_eq!(c.set_data(&p, b"x", 0).await, Err(err::BAD_VERSION));
    assert_eq!(
        c.set_data(&format!("{r}/nope"), b"x", -1).await,
        Err(err::NO_NODE)
    );
    let (data, s2) = c.get_data(&p, false).await.unwrap();
    assert_eq!(data, b"hello world");
    assert_eq!(s2, s, "getData's stat equals setData's");
    // Empty data: dataLength 0; the server stores what it was sent.
    let s3 = c.set_data(&p, b"", 1).await.unwrap();
    assert_eq!((s3.version, s3.data_length), (2, 0));

    // Children: create moves cversion, pzxid, numChildren of the parent, not its mzxid.
    let (_, child) = c
        .create2(&format!("{p}/a"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    let ps = stat_of(&mut c, &p).await;
    assert_eq!(
        (ps.cversion, ps.num_children, ps.pzxid),
        (1, 1, child.czxid)
    );
    assert_eq!((ps.version, ps.mzxid), (2, s3.mzxid));
    c.create(&format!("{p}/b"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    let del = c
        .call(
            op::DELETE,
            &ferrokeeper_net::records::DeleteRequest {
                path: format!("{p}/a"),
                version: -1,
            },
        )
        .await;
    assert_eq!(del.err, 0);
    let ps = stat_of(&mut c, &p).await;
    // Two creations and one deletion: cversion 3 (stored 2, 2 × 2 − 1).
    assert_eq!((ps.cversion, ps.num_children, ps.pzxid), (3, 1, del.zxid));
    // setData on a child does not touch the parent.
    c.set_data(&format!("{p}/b"), b"zz", -1).await.unwrap();
    assert_eq!(stat_of(&mut c, &p).await, ps);
    // setACL moves only aversion (not mzxid, not version).
    let sa = c.set_acl(&p, raw::open_acl(), 0).await.unwrap();
    assert_eq!(sa.aversion, 1);
    assert_eq!(Stat { aversion: 0, ..sa }, ps);
    // exists, getData, getChildren2 and getACL all show the same stat.
    let st = stat_of(&mut c, &p).await;
    assert_eq!(c.get_data(&p, false).await.unwrap().1, st);
    assert_eq!(c.get_children2(&p, false).await.unwrap().1, st);
    assert_eq!(c.get_acl(&p).await.unwrap().1, st);
    // exists on a missing node is NoNode with no body.
    let reply = c
        .call(
            op::EXISTS,
            &ferrokeeper_net::records::ExistsRequest {
                path: format!("{r}/nope"),
                watch: false,
            },
        )
        .await;
    assert_eq!((reply.err, reply.body.len()), (err::NO_NODE, 0));
    c.close().await;
}

/// The nodes every server has: `/`, `/zookeeper`, `/zookeeper/quota`,
/// `/zookeeper/config` (ZooDefs.ZOOKEEPER_NODE_SUBTREE, ZOOKEEPER_QUOTAS,
/// CONFIG_NODE), as a fresh standalone Apache ZooKeeper 3.8 shows them. They are
/// created at DataTree construction with an all-zero StatPersisted; visible cversions are
/// negative because 2 × 0 − numChildren < 0 (DataNode.copyStat). /zookeeper/config has
/// aversion −1 (DataTree.addConfigNode sets it) and a read-only ACL.
async fn system_nodes(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let zero = Stat::default();

    let (data, s) = c.get_data("/zookeeper", false).await.unwrap();
    assert!(data.is_empty());
    assert_eq!(
        s,
        Stat {
            cversion: -2,
            num_children: 2,
            ..zero
        },
        "/zookeeper"
    );
    assert_eq!(
        sorted(c.get_children("/zookeeper", false).await.unwrap()),
        ["config", "quota"]
    );
    assert_eq!(c.get_acl("/zookeeper").await.unwrap().0, raw::open_acl());

    let (data, s) = c.get_data("/zookeeper/quota", false).await.unwrap();
    assert!(data.is_empty());
    assert_eq!(s, zero, "/zookeeper/quota");
    assert!(c
        .get_children("/zookeeper/quota", false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        c.get_acl("/zookeeper/quota").await.unwrap().0,
        raw::open_acl()
    );

    let (data, s) = c.get_data("/zookeeper/config", false).await.unwrap();
    assert!(
        data.is_empty(),
        "standalone without dynamic config: {:?}",
        String::from_utf8_lossy(&data)
    );
    assert_eq!(
        s,
        Stat {
            aversion: -1,
            ..zero
        },
        "/zookeeper/config"
    );
    assert!(c
        .get_children("/zookeeper/config", false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        c.get_acl("/zookeeper/config").await.unwrap().0,
        vec![raw::world(perms::READ)]
    );
    assert_eq!(
        c.set_data("/zookeeper/config", b"x", -1).await,
        Err(err::NO_AUTH)
    );

    // The root: created with zeros; other scenarios add children to it concurrently, so
    // only the fields they cannot move are pinned.
    let (data, s) = c.get_data("/", false).await.unwrap();
    assert!(data.is_empty());
    assert_eq!(
        (
            s.czxid,
            s.mzxid,
            s.ctime,
            s.mtime,
            s.version,
            s.aversion,
            s.ephemeral_owner,
            s.data_length
        ),
        (0, 0, 0, 0, 0, 0, 0, 0)
    );
    assert!(c
        .get_children("/", false)
        .await
        .unwrap()
        .contains(&"zookeeper".to_string()));
    assert_eq!(c.get_acl("/").await.unwrap().0, raw::open_acl());
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// ACLs

/// PG "ZooKeeper access control using ACLs": getACL returns the ACL and the Stat;
/// setACL checks the ACL version (aversion), −1 matching any.
async fn acl_get_set(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "acl_get_set").await;
    let n = format!("{r}/n");
    c.create(&n, b"", vec![raw::world(perms::ALL)], 0)
        .await
        .unwrap();
    let (a, s) = c.get_acl(&n).await.unwrap();
    assert_eq!(a, raw::open_acl());
    assert_eq!(s.aversion, 0);
    let new_acl = vec![raw::world(perms::READ | perms::WRITE | perms::ADMIN)];
    assert_eq!(
        c.set_acl(&n, new_acl.clone(), 1).await,
        Err(err::BAD_VERSION)
    );
    let s1 = c.set_acl(&n, new_acl.clone(), 0).await.unwrap();
    assert_eq!(s1.aversion, 1);
    let s2 = c.set_acl(&n, new_acl.clone(), -1).await.unwrap();
    assert_eq!(s2.aversion, 2);
    assert_eq!(c.get_acl(&n).await.unwrap(), (new_acl, s2));
    assert_eq!(c.get_acl(&format!("{r}/nope")).await, Err(err::NO_NODE));
    assert_eq!(
        c.set_acl(&format!("{r}/nope"), raw::open_acl(), -1).await,
        Err(err::NO_NODE)
    );
    // Duplicate entries are dropped (PrepRequestProcessor.removeDuplicates); order kept.
    let dup = vec![
        raw::world(perms::READ),
        acl(perms::ALL, "ip", "127.0.0.1"),
        raw::world(perms::READ),
    ];
    c.set_acl(&n, dup, -1).await.unwrap();
    assert_eq!(
        c.get_acl(&n).await.unwrap().0,
        vec![raw::world(perms::READ), acl(perms::ALL, "ip", "127.0.0.1")]
    );
    // Permission bits are stored as sent, even 0 and bits beyond ALL.
    c.set_acl(&n, vec![raw::world(perms::ADMIN | 32 | perms::READ)], -1)
        .await
        .unwrap();
    assert_eq!(c.get_acl(&n).await.unwrap().0, vec![raw::world(49)]);
    c.close().await;
}

/// PG "ACL Permissions" and "Builtin ACL Schemes" (digest): without the identity every
/// guarded operation is NoAuth; exists is not guarded. getACL needs READ or ADMIN; a
/// session with READ but not ADMIN sees digest ids with the hash masked as "user:x"
/// (FinalRequestProcessor, case getACL).
async fn acl_digest_denial(addr: &str) {
    let mut owner = Conn::connect(addr).await;
    let r = root(&mut owner, "acl_digest_denial").await;
    assert_eq!(owner.add_auth("digest", b"alice:secret").await, 0);
    let alice = raw::digest_id("alice", "secret");
    let n = format!("{r}/n");
    owner
        .create(
            &n,
            b"data",
            vec![Acl {
                perms: perms::ALL,
                id: alice.clone(),
            }],
            0,
        )
        .await
        .unwrap();
    owner
        .create(&format!("{n}/child"), b"", raw::open_acl(), 0)
        .await
        .unwrap();

    let mut other = Conn::connect(addr).await;
    assert_eq!(other.get_data(&n, false).await, Err(err::NO_AUTH));
    assert_eq!(other.set_data(&n, b"x", -1).await, Err(err::NO_AUTH));
    assert_eq!(other.get_children(&n, false).await, Err(err::NO_AUTH));
    assert_eq!(other.get_children2(&n, false).await, Err(err::NO_AUTH));
    assert_eq!(other.get_acl(&n).await, Err(err::NO_AUTH));
    assert_eq!(
        other.set_acl(&n, raw::open_acl(), -1).await,
        Err(err::NO_AUTH)
    );
    assert_eq!(
        other
            .create(&format!("{n}/x"), b"", raw::open_acl(), 0)
            .await,
        Err(err::NO_AUTH)
    );
    assert_eq!(
        other.delete(&format!("{n}/child"), -1).await,
        Err(err::NO_AUTH)
    );
    assert_eq!(other.get_all_children_number(&n).await, Err(err::NO_AUTH));
    // 3.8: exists has no ACL check (FinalRequestProcessor: "TODO we need to figure out
    // the security requirement for this!"); 3.9.2+ needs READ on an existing node.
    if exists_checks_read() {
        assert_eq!(other.exists(&n, false).await.map(|_| ()), Err(err::NO_AUTH));
    } else {
        assert!(other.exists(&n, false).await.is_ok());
    }
    // Deleting the node itself needs DELETE on its parent (open), not on the node.
    // Denial inside a multi and a multiRead.
    let (hdr, res) = other
        .multi(&[MultiOp::SetData {
            path: n.clone(),
            data: b"x".to_vec(),
            version: -1,
        }])
        .await;
    assert_eq!((hdr, res), (0, vec![OpResult::Error(err::NO_AUTH)]));
    let (hdr, res) = other
        .multi_read(&[MultiOp::GetData { path: n.clone() }])
        .await;
    assert_eq!((hdr, res), (0, vec![OpResult::Error(err::NO_AUTH)]));
    // A wrong password authenticates (digest auth always succeeds) but as another id.
    assert_eq!(other.add_auth("digest", b"alice:wrong").await, 0);
    assert_eq!(other.get_data(&n, false).await, Err(err::NO_AUTH));
    // The right one grants access.
    assert_eq!(other.add_auth("digest", b"alice:secret").await, 0);
    assert_eq!(other.get_data(&n, false).await.unwrap().0, b"data");

    // Masking: READ for everyone, ALL for alice. A session without alice reads the ACL
    // with alice's hash replaced by "x".
    let m = format!("{r}/masked");
    owner
        .create(
            &m,
            b"",
            vec![
                raw::world(perms::READ),
                Acl {
                    perms: perms::ALL,
                    id: alice.clone(),
                },
            ],
            0,
        )
        .await
        .unwrap();
    let mut third = Conn::connect(addr).await;
    let (seen, _) = third.get_acl(&m).await.unwrap();
    assert_eq!(
        seen,
        vec![
            raw::world(perms::READ),
            acl(perms::ALL, "digest", "alice:x")
        ]
    );
    assert_eq!(
        owner.get_acl(&m).await.unwrap().0[1].id,
        alice,
        "ADMIN sees the hash"
    );
    // ip: every connection carries ip:<address> (IPAuthenticationProvider); an ip ACL for
    // 127.0.0.1 grants loopback clients.
    let ip = format!("{r}/ip");
    owner
        .create(&ip, b"ip", vec![acl(perms::ALL, "ip", "127.0.0.1")], 0)
        .await
        .unwrap();
    assert_eq!(third.get_data(&ip, false).await.unwrap().0, b"ip");
    let ip2 = format!("{r}/ip2");
    owner
        .create(&ip2, b"", vec![acl(perms::ALL, "ip", "10.0.0.0/8")], 0)
        .await
        .unwrap();
    assert_eq!(third.get_data(&ip2, false).await, Err(err::NO_AUTH));
    owner.close().await;
    other.close().await;
    third.close().await;
}

/// PG "Builtin ACL Schemes": `auth` stands for every identity the session has
/// authenticated (the id field is ignored); the stored ACL names them. Without any
/// authenticated identity it is InvalidACL (PrepRequestProcessor.fixupACL). The ip
/// identity does not count (its provider is not "authenticated").
async fn acl_auth_scheme(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "acl_auth_scheme").await;
    assert_eq!(
        c.create(&format!("{r}/a"), b"", vec![acl(perms::ALL, "auth", "")], 0)
            .await,
        Err(err::INVALID_ACL)
    );
    assert_eq!(c.add_auth("digest", b"bob:pw").await, 0);
    let bob = raw::digest_id("bob", "pw");
    c.create(&format!("{r}/a"), b"", vec![acl(perms::ALL, "auth", "")], 0)
        .await
        .unwrap();
    assert_eq!(
        c.get_acl(&format!("{r}/a")).await.unwrap().0,
        vec![Acl {
            perms: perms::ALL,
            id: bob.clone()
        }]
    );
    c.create(
        &format!("{r}/b"),
        b"",
        vec![acl(perms::ALL, "auth", "ignored")],
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        c.get_acl(&format!("{r}/b")).await.unwrap().0,
        vec![Acl {
            perms: perms::ALL,
            id: bob.clone()
        }]
    );
    // Mixed with world: order kept, auth expanded in place.
    c.create(
        &format!("{r}/c"),
        b"",
        vec![acl(perms::ALL, "auth", ""), raw::world(perms::READ)],
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        c.get_acl(&format!("{r}/c")).await.unwrap().0,
        vec![
            Acl {
                perms: perms::ALL,
                id: bob.clone()
            },
            raw::world(perms::READ)
        ]
    );
    // Two identities: both are listed. Their order is the iteration order of the
    // session's identity set (a ConcurrentHashMap-backed set in ServerCnxn), so it is
    // compared sorted. The node grants READ only, so even its creator sees the hashes
    // masked: getACL shows hashes only to ADMIN.
    assert_eq!(c.add_auth("digest", b"carol:pw").await, 0);
    c.create(
        &format!("{r}/d"),
        b"",
        vec![acl(perms::READ, "auth", "")],
        0,
    )
    .await
    .unwrap();
    let mut got = c.get_acl(&format!("{r}/d")).await.unwrap().0;
    got.sort();
    assert_eq!(
        got,
        vec![
            acl(perms::READ, "digest", "bob:x"),
            acl(perms::READ, "digest", "carol:x")
        ]
    );
    c.create(&format!("{r}/e"), b"", vec![acl(perms::ALL, "auth", "")], 0)
        .await
        .unwrap();
    let mut got = c.get_acl(&format!("{r}/e")).await.unwrap().0;
    got.sort();
    assert_eq!(
        got,
        vec![
            Acl {
                perms: perms::ALL,
                id: bob
            },
            Acl {
                perms: perms::ALL,
                id: raw::digest_id("carol", "pw")
            }
        ]
    );
    // Another session without those identities is denied.
    let mut other = Conn::connect(addr).await;
    assert_eq!(
        other.get_data(&format!("{r}/a"), false).await,
        Err(err::NO_AUTH)
    );
    c.close().await;
    other.close().await;
}

/// ZooDefs.Ids.READ_ACL_UNSAFE (world:anyone READ): reads pass, every write is NoAuth.
async fn acl_world_read_only(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "acl_world_read_only").await;
    let n = format!("{r}/n");
    c.create(&n, b"ro", vec![raw::world(perms::READ)], 0)
        .await
        .unwrap();
    assert_eq!(c.get_data(&n, false).await.unwrap().0, b"ro");
    assert!(c.get_children(&n, false).await.unwrap().is_empty());
    assert_eq!(
        c.get_acl(&n).await.unwrap().0,
        vec![raw::world(perms::READ)],
        "READ suffices for getACL"
    );
    assert_eq!(c.set_data(&n, b"x", -1).await, Err(err::NO_AUTH));
    assert_eq!(
        c.create(&format!("{n}/c"), b"", raw::open_acl(), 0).await,
        Err(err::NO_AUTH)
    );
    assert_eq!(c.set_acl(&n, raw::open_acl(), -1).await, Err(err::NO_AUTH));
    // The node itself can be deleted: delete checks DELETE on the parent.
    c.delete(&n, -1).await.unwrap();
    // A node nobody may touch (perms 0) can still be stat'ed and deleted.
    c.create(&n, b"", vec![raw::world(0)], 0).await.unwrap();
    assert_eq!(c.get_data(&n, false).await, Err(err::NO_AUTH));
    assert_eq!(c.get_acl(&n).await, Err(err::NO_AUTH));
    // exists: no check in 3.8, READ required from 3.9.2 (see exists_checks_read).
    if exists_checks_read() {
        assert_eq!(c.exists(&n, false).await.map(|_| ()), Err(err::NO_AUTH));
    } else {
        assert!(c.exists(&n, false).await.is_ok());
    }
    c.delete(&n, -1).await.unwrap();
    c.close().await;
}

/// InvalidACL (−114): an ACL list the server refuses (PrepRequestProcessor.fixupACL:
/// empty list, unknown scheme, an id its provider calls invalid, `auth` with no
/// authenticated identity).
async fn acl_invalid(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "acl_invalid").await;
    let n = format!("{r}/n");
    for (what, a) in [
        ("empty", vec![]),
        (
            "world id other than anyone",
            vec![acl(perms::ALL, "world", "someone")],
        ),
        ("unknown scheme", vec![acl(perms::ALL, "nosuch", "x")]),
        (
            "digest without colon",
            vec![acl(perms::ALL, "digest", "nocolon")],
        ),
        (
            "digest with two colons",
            vec![acl(perms::ALL, "digest", "a:b:c")],
        ),
        ("ip not an address", vec![acl(perms::ALL, "ip", "notanip")]),
        ("auth without identity", vec![acl(perms::ALL, "auth", "")]),
        ("super", vec![acl(perms::ALL, "super", "x")]),
        (
            "one bad among good",
            vec![raw::world(perms::ALL), acl(perms::ALL, "nosuch", "x")],
        ),
    ] {
        assert_eq!(
            c.create(&n, b"", a.clone(), 0).await,
            Err(err::INVALID_ACL),
            "create with {what}"
        );
    }
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    assert_eq!(c.set_acl(&n, vec![], -1).await, Err(err::INVALID_ACL));
    // InvalidACL is checked before the node is looked up.
    assert_eq!(
        c.set_acl(&format!("{r}/nope"), vec![], -1).await,
        Err(err::INVALID_ACL)
    );
    // Accepted: perms 0, ip with a CIDR mask, a well-formed digest id.
    for (what, a) in [
        ("perms 0", vec![raw::world(0)]),
        ("ip/cidr", vec![acl(perms::ALL, "ip", "10.0.0.0/8")]),
        ("digest", vec![acl(perms::ALL, "digest", "u:anything")]),
    ] {
        assert!(
            c.set_acl(&n, a.clone(), -1).await.is_ok(),
            "setACL with {what}"
        );
        // perms 0 leaves no ADMIN: put open back through a fresh node instead.
        c.delete(&n, -1).await.unwrap();
        c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    }
    c.close().await;
}

/// auth with an unknown scheme: the reply (xid −4) is AuthFailed and the server closes
/// the connection (ZooKeeperServer.processPacket: `cnxn.sendResponse(...AUTHFAILED)`,
/// then `cnxn.sendBuffer(closeConn)`).
async fn auth_failed(addr: &str) {
    let mut c = Conn::connect(addr).await;
    assert_eq!(c.add_auth("nosuchscheme", b"x").await, err::AUTH_FAILED);
    wait_closed(&mut c, "after AuthFailed").await;
    // digest accepts any bytes, even without a colon.
    let mut d = Conn::connect(addr).await;
    assert_eq!(d.add_auth("digest", b"nocolon").await, 0);
    assert_eq!(d.ping().await.err, 0);
    d.close().await;
}

// ---------------------------------------------------------------------------------------
// reads

/// jute GetChildrenResponse / GetChildren2Response. The order of children is not
/// specified (Java keeps them in a HashSet), so they are compared sorted.
async fn get_children(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "get_children").await;
    assert!(c.get_children(&r, false).await.unwrap().is_empty());
    for name in ["b", "a", "c", "a1"] {
        c.create(&format!("{r}/{name}"), b"", raw::open_acl(), 0)
            .await
            .unwrap();
    }
    c.create(&format!("{r}/a/deep"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    assert_eq!(
        sorted(c.get_children(&r, false).await.unwrap()),
        ["a", "a1", "b", "c"]
    );
    let (kids, s) = c.get_children2(&r, false).await.unwrap();
    assert_eq!(sorted(kids), ["a", "a1", "b", "c"]);
    assert_eq!(s, stat_of(&mut c, &r).await);
    assert_eq!(s.num_children, 4);
    assert_eq!(
        c.get_children(&format!("{r}/nope"), false).await,
        Err(err::NO_NODE)
    );
    assert_eq!(
        c.get_children2(&format!("{r}/nope"), false).await,
        Err(err::NO_NODE)
    );
    c.close().await;
}

/// PG "Consistency Guarantees" (sync): the reply carries the path as sent; the server
/// does not check that it exists or is valid (FinalRequestProcessor, case sync).
async fn sync(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "sync").await;
    assert_eq!(c.sync(&r).await, Ok(r.clone()));
    assert_eq!(c.sync(&format!("{r}/nope")).await, Ok(format!("{r}/nope")));
    assert_eq!(c.sync("not/a/path").await, Ok("not/a/path".to_string()));
    assert_eq!(c.sync("").await, Ok(String::new()));
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// multi

/// PG "Multi" / jute MultiHeader, MultiResponse: all ops apply at one zxid, results in
/// order. A create2 inside a multi is answered as a plain create (path only) by 3.8.0:
/// ZOOKEEPER-4026 (in 3.9.0) makes it a create2 result with the Stat, so either
/// is accepted here.
async fn multi_success(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "multi_success").await;
    c.create(&format!("{r}/x"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    let ops = vec![
        MultiOp::Create {
            opcode: op::CREATE,
            path: format!("{r}/a"),
            data: b"a".to_vec(),
            acl: raw::open_acl(),
            flags: 0,
            ttl: 0,
        },
        MultiOp::Create {
            opcode: op::CREATE,
            path: format!("{r}/a/b"),
            data: vec![],
            acl: raw::open_acl(),
            flags: mode::EPHEMERAL,
            ttl: 0,
        },
        MultiOp::Create {
            opcode: op::CREATE,
            path: format!("{r}/s-"),
            data: vec![],
            acl: raw::open_acl(),
            flags: mode::PERSISTENT_SEQUENTIAL,
            ttl: 0,
        },
        MultiOp::Create {
            opcode: op::CREATE2,
            path: format!("{r}/c2"),
            data: vec![],
            acl: raw::open_acl(),
            flags: 0,
            ttl: 0,
        },
        MultiOp::Create {
            opcode: op::CREATE_CONTAINER,
            path: format!("{r}/cont"),
            data: vec![],
            acl: raw::open_acl(),
            flags: mode::CONTAINER,
            ttl: 0,
        },
        MultiOp::Create {
            opcode: op::CREATE_TTL,
            path: format!("{r}/ttl"),
            data: vec![],
            acl: raw::open_acl(),
            flags: mode::PERSISTENT_WITH_TTL,
            ttl: 3_600_000,
        },
        MultiOp::Check {
            path: format!("{r}/x"),
            version: 0,
        },
        MultiOp::SetData {
            path: format!("{r}/x"),
            data: b"xx".to_vec(),
            version: 0,
        },
        MultiOp::Check {
            path: format!("{r}/x"),
            version: 1,
        },
        MultiOp::Delete {
            path: format!("{r}/x"),
            version: 1,
        },
    ];
    let reply = c.call_raw(op::MULTI, &raw::encode_multi(&ops)).await;
    assert_eq!(reply.err, 0);
    let res = raw::decode_multi_response(&reply.body);
    assert_eq!(res.len(), ops.len());
    assert_eq!(res[0], OpResult::Create(format!("{r}/a")));
    assert_eq!(res[1], OpResult::Create(format!("{r}/a/b")));
    assert_eq!(res[2], OpResult::Create(format!("{r}/s-0000000002")));
    match &res[3] {
        OpResult::Create(p) => assert_eq!(p, &format!("{r}/c2")),
        OpResult::Create2(p, s) => {
            assert_eq!(p, &format!("{r}/c2"));
            assert_eq!(s.czxid, reply.zxid);
        }
        other => panic!("create2 in multi: {other:?}"),
    }
    for (i, name) in [(4, "cont"), (5, "ttl")] {
        match &res[i] {
            OpResult::Create2(p, s) => {
                assert_eq!(p, &format!("{r}/{name}"));
                assert_eq!(s.czxid, reply.zxid, "{name}: created at the multi's zxid");
            }
            other => panic!("{name} in multi: {other:?}"),
        }
    }
    assert_eq!(res[6], OpResult::Check);
    match &res[7] {
        OpResult::SetData(s) => assert_eq!((s.version, s.mzxid, s.data_length), (1, reply.zxid, 2)),
        other => panic!("setData in multi: {other:?}"),
    }
    assert_eq!(res[8], OpResult::Check);
    assert_eq!(res[9], OpResult::Delete);
    // Everything happened at one zxid.
    assert_eq!(stat_of(&mut c, &format!("{r}/a")).await.czxid, reply.zxid);
    assert_eq!(
        stat_of(&mut c, &format!("{r}/a/b")).await.ephemeral_owner,
        c.session_id
    );
    assert_eq!(c.exists(&format!("{r}/x"), false).await, Err(err::NO_NODE));
    // An empty multi is a successful no-op that still returns an (empty) MultiResponse:
    // just the closing MultiHeader{-1, true, -1}.
    let reply = c.call_raw(op::MULTI, &raw::encode_multi(&[])).await;
    assert_eq!(reply.err, 0);
    assert_eq!(reply.body, [255, 255, 255, 255, 1, 255, 255, 255, 255]);
    c.close().await;
}

/// PG "Multi": a multi is atomic. When one op fails, nothing is applied and every op
/// gets an ErrorResult: ops before the failing one report 0 (OK), the failing one its
/// code, the ones after RuntimeInconsistency (−2) (DataTree.processTxn, case multi). The
/// reply header's err is 0 (FinalRequestProcessor builds the MultiResponse and does not
/// raise the op's error for multi), so the failure shows only inside the body.
async fn multi_failure(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "multi_failure").await;
    let mut w = Conn::connect(addr).await;
    c.create(&format!("{r}/x"), b"v0", raw::open_acl(), 0)
        .await
        .unwrap();
    w.get_data(&format!("{r}/x"), true).await.unwrap();
    w.get_children(&r, true).await.unwrap();
    let before = stat_of(&mut c, &r).await;
    let create = |name: &str| MultiOp::Create {
        opcode: op::CREATE,
        path: format!("{r}/{name}"),
        data: vec![],
        acl: raw::open_acl(),
        flags: 0,
        ttl: 0,
    };
    let cases: Vec<(Vec<MultiOp>, Vec<OpResult>)> = vec![
        (
            vec![
                create("a"),
                MultiOp::Check {
                    path: format!("{r}/x"),
                    version: 5,
                },
                MultiOp::SetData {
                    path: format!("{r}/x"),
                    data: b"v1".to_vec(),
                    version: -1,
                },
            ],
            vec![
                OpResult::Error(0),
                OpResult::Error(err::BAD_VERSION),
                OpResult::Error(err::RUNTIME_INCONSISTENCY),
            ],
        ),
        (
            vec![create("a"), create("a")],
            vec![OpResult::Error(0), OpResult::Error(err::NODE_EXISTS)],
        ),
        (
            vec![
                MultiOp::Delete {
                    path: format!("{r}/nope"),
                    version: -1,
                },
                create("a"),
            ],
            vec![
                OpResult::Error(err::NO_NODE),
                OpResult::Error(err::RUNTIME_INCONSISTENCY),
            ],
        ),
        (
            vec![
                create("a"),
                MultiOp::Delete {
                    path: r.clone(),
                    version: -1,
                },
            ],
            vec![OpResult::Error(0), OpResult::Error(err::NOT_EMPTY)],
        ),
        (
            vec![MultiOp::Create {
                opcode: op::CREATE,
                path: format!("{r}/bad"),
                data: vec![],
                acl: vec![],
                flags: 0,
                ttl: 0,
            }],
            vec![OpResult::Error(err::INVALID_ACL)],
        ),
        (
            // Later ops see earlier ops' effects: delete x, then check x fails NoNode.
            vec![
                MultiOp::Delete {
                    path: format!("{r}/x"),
                    version: -1,
                },
                MultiOp::Check {
                    path: format!("{r}/x"),
                    version: -1,
                },
            ],
            vec![OpResult::Error(0), OpResult::Error(err::NO_NODE)],
        ),
    ];
    for (ops, want) in cases {
        let reply = c.call_raw(op::MULTI, &raw::encode_multi(&ops)).await;
        assert_eq!(reply.err, 0, "multi reply header err for {ops:?}");
        assert_eq!(raw::decode_multi_response(&reply.body), want, "{ops:?}");
    }
    // Nothing was applied, and no watch fired.
    assert_eq!(c.exists(&format!("{r}/a"), false).await, Err(err::NO_NODE));
    assert_eq!(c.get_data(&format!("{r}/x"), false).await.unwrap().0, b"v0");
    let after = stat_of(&mut c, &r).await;
    assert_eq!(
        (after.cversion, after.num_children, after.pzxid),
        (before.cversion, before.num_children, before.pzxid)
    );
    assert_no_events(&mut w, "failed multis").await;
    c.close().await;
    w.close().await;
}

/// multiRead (3.6, ZOOKEEPER-3402): getData and getChildren ops; each op fails alone
/// (FinalRequestProcessor, case multiRead: an ErrorResult in place, the rest still run).
async fn multi_read(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "multi_read").await;
    c.create(&format!("{r}/a"), b"A", raw::open_acl(), 0)
        .await
        .unwrap();
    c.create(&format!("{r}/a/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    let sa = stat_of(&mut c, &format!("{r}/a")).await;
    let (hdr, res) = c
        .multi_read(&[
            MultiOp::GetData {
                path: format!("{r}/a"),
            },
            MultiOp::GetData {
                path: format!("{r}/nope"),
            },
            MultiOp::GetChildren {
                path: format!("{r}/a"),
            },
            MultiOp::GetChildren {
                path: format!("{r}/nope"),
            },
        ])
        .await;
    assert_eq!(hdr, 0);
    assert_eq!(
        res,
        vec![
            OpResult::GetData(b"A".to_vec(), sa),
            OpResult::Error(err::NO_NODE),
            OpResult::GetChildren(vec!["k".into()]),
            OpResult::Error(err::NO_NODE),
        ]
    );
    let (hdr, res) = c.multi_read(&[]).await;
    assert_eq!((hdr, res), (0, vec![]));
    c.close().await;
}

/// Java turns every failed write into an error txn with its own zxid (PrepRequestProcessor
/// .pRequestHelper sets the header type to OpCode.error and the txn is logged), so the
/// reply header of a failed write carries a new zxid and the next write's zxid skips it.
/// This pins that observable detail separately from the rest.
async fn failed_writes_consume_zxid(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "failed_writes_consume_zxid").await;
    // The shared server has other sessions writing concurrently, so measure on a quiet
    // private sequence: every reply's zxid must be greater than the one before.
    let ok = c
        .call(
            op::SET_DATA,
            &ferrokeeper_net::records::SetDataRequest {
                path: r.clone(),
                data: Default::default(),
                version: -1,
            },
        )
        .await;
    assert_eq!(ok.err, 0);
    let failed = c
        .call(
            op::SET_DATA,
            &ferrokeeper_net::records::SetDataRequest {
                path: r.clone(),
                data: Default::default(),
                version: 99,
            },
        )
        .await;
    assert_eq!(failed.err, err::BAD_VERSION);
    assert!(
        failed.zxid > ok.zxid,
        "failed setData got zxid {:x} after {:x}",
        failed.zxid,
        ok.zxid
    );
    let failed_multi = c
        .call_raw(
            op::MULTI,
            &raw::encode_multi(&[MultiOp::Check {
                path: r.clone(),
                version: 99,
            }]),
        )
        .await;
    assert!(
        failed_multi.zxid > failed.zxid,
        "failed multi consumed a zxid"
    );
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// getEphemerals, getAllChildrenNumber

/// getEphemerals (3.6, ZOOKEEPER-3209): the calling session's ephemerals whose path
/// starts with the prefix, as a plain string prefix ("/e1" matches "/e10"); "/" or ""
/// means all. Order unspecified (a HashSet in Java).
async fn get_ephemerals(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "get_ephemerals").await;
    let mut other = Conn::connect(addr).await;
    for name in ["e1", "e10", "e2"] {
        c.create(
            &format!("{r}/{name}"),
            b"",
            raw::open_acl(),
            mode::EPHEMERAL,
        )
        .await
        .unwrap();
    }
    c.create(&format!("{r}/p"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.create(
        &format!("{r}/p/e"),
        b"",
        raw::open_acl(),
        mode::EPHEMERAL_SEQUENTIAL,
    )
    .await
    .unwrap();
    other
        .create(
            &format!("{r}/theirs"),
            b"",
            raw::open_acl(),
            mode::EPHEMERAL,
        )
        .await
        .unwrap();
    let all = [
        format!("{r}/e1"),
        format!("{r}/e10"),
        format!("{r}/e2"),
        format!("{r}/p/e0000000000"),
    ];
    assert_eq!(sorted(c.get_ephemerals(&r).await.unwrap()), all);
    assert_eq!(sorted(c.get_ephemerals("/").await.unwrap()), all);
    assert_eq!(sorted(c.get_ephemerals("").await.unwrap()), all);
    assert_eq!(
        sorted(c.get_ephemerals(&format!("{r}/e1")).await.unwrap()),
        [format!("{r}/e1"), format!("{r}/e10")]
    );
    assert_eq!(
        c.get_ephemerals(&format!("{r}/nope")).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        other.get_ephemerals(&r).await.unwrap(),
        [format!("{r}/theirs")]
    );
    c.close().await;
    other.close().await;
}

/// getAllChildrenNumber (3.6, ZOOKEEPER-3167): the number of descendants, the node
/// itself not counted; READ is required.
async fn get_all_children_number(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "get_all_children_number").await;
    assert_eq!(c.get_all_children_number(&r).await, Ok(0));
    for p in ["a", "a/b", "a/b/c", "a/d", "e"] {
        c.create(&format!("{r}/{p}"), b"", raw::open_acl(), 0)
            .await
            .unwrap();
    }
    assert_eq!(c.get_all_children_number(&r).await, Ok(5));
    assert_eq!(c.get_all_children_number(&format!("{r}/a")).await, Ok(3));
    assert_eq!(
        c.get_all_children_number(&format!("{r}/a/b/c")).await,
        Ok(0)
    );
    assert_eq!(
        c.get_all_children_number(&format!("{r}/nope")).await,
        Err(err::NO_NODE)
    );
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// watches

/// PG "ZooKeeper Watches": a data watch (getData) fires once, on setData
/// (NodeDataChanged) or delete (NodeDeleted), then is gone. Setting it twice gives one
/// event (watches are a set per path and connection).
async fn watch_data(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_data").await;
    let mut w = Conn::connect(addr).await;
    let n = format!("{r}/n");
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();

    w.get_data(&n, true).await.unwrap();
    w.get_data(&n, true).await.unwrap();
    c.set_data(&n, b"1", -1).await.unwrap();
    assert_eq!(
        kinds(vec![w.next_event().await]),
        [event(ev::DATA_CHANGED, &n)]
    );
    c.set_data(&n, b"2", -1).await.unwrap();
    assert_no_events(&mut w, "second setData after the one-shot fired").await;

    // Child changes do not fire a data watch; ACL changes neither.
    w.get_data(&n, true).await.unwrap();
    c.create(&format!("{n}/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.set_acl(&n, raw::open_acl(), -1).await.unwrap();
    assert_no_events(&mut w, "child create / setACL under a data watch").await;
    c.delete(&format!("{n}/k"), -1).await.unwrap();
    assert_no_events(&mut w, "child delete under a data watch").await;
    // A setData with a failed version check does not fire.
    assert_eq!(c.set_data(&n, b"3", 0).await, Err(err::BAD_VERSION));
    assert_no_events(&mut w, "failed setData").await;
    // delete fires NodeDeleted.
    c.delete(&n, -1).await.unwrap();
    assert_eq!(kinds(vec![w.next_event().await]), [event(ev::DELETED, &n)]);
    assert_no_events(&mut w, "after delete").await;
    // getData with watch on a missing node: NoNode and no watch left.
    assert_eq!(w.get_data(&n, true).await, Err(err::NO_NODE));
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    assert_no_events(&mut w, "create after failed getData watch").await;
    // setData with identical data still fires (every setData is a change).
    w.get_data(&n, true).await.unwrap();
    c.set_data(&n, b"", -1).await.unwrap();
    assert_eq!(
        kinds(vec![w.next_event().await]),
        [event(ev::DATA_CHANGED, &n)]
    );
    // The watching session's own writes fire its watches too, before the reply
    // (FinalRequestProcessor applies the txn, which triggers, then answers).
    w.get_data(&n, true).await.unwrap();
    w.set_data(&n, b"own", -1).await.unwrap();
    assert_eq!(
        kinds(w.take_events()),
        [event(ev::DATA_CHANGED, &n)],
        "own change: event before the reply"
    );
    c.close().await;
    w.close().await;
}

/// PG "ZooKeeper Watches": exists sets a data watch on an existing node and an exist
/// watch on a missing one; NodeCreated fires the latter. exists and getData watches on
/// the same node are one watch: one event.
async fn watch_exists(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_exists").await;
    let mut w = Conn::connect(addr).await;
    let n = format!("{r}/n");
    assert_eq!(w.exists(&n, true).await, Err(err::NO_NODE));
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    assert_eq!(kinds(vec![w.next_event().await]), [event(ev::CREATED, &n)]);
    assert_no_events(&mut w, "after NodeCreated").await;

    w.exists(&n, true).await.unwrap();
    w.get_data(&n, true).await.unwrap();
    c.set_data(&n, b"x", -1).await.unwrap();
    assert_eq!(
        kinds(vec![w.next_event().await]),
        [event(ev::DATA_CHANGED, &n)]
    );
    assert_no_events(&mut w, "exists + getData watch: one event").await;

    w.exists(&n, true).await.unwrap();
    c.delete(&n, -1).await.unwrap();
    assert_eq!(kinds(vec![w.next_event().await]), [event(ev::DELETED, &n)]);

    // An exist watch on a missing node is not fired by a failed create elsewhere, and
    // survives until the node appears.
    assert_eq!(w.exists(&n, true).await, Err(err::NO_NODE));
    assert_eq!(
        c.create(&format!("{n}/x"), b"", raw::open_acl(), 0).await,
        Err(err::NO_NODE)
    );
    assert_no_events(&mut w, "failed create").await;
    c.create(&n, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    assert_eq!(kinds(vec![w.next_event().await]), [event(ev::CREATED, &n)]);
    c.close().await;
    w.close().await;
}

/// PG "ZooKeeper Watches": a child watch (getChildren / getChildren2) fires
/// NodeChildrenChanged when a child is created or deleted, NodeDeleted when the node
/// itself goes; not on data changes of the node or its children.
async fn watch_children(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_children").await;
    let mut w = Conn::connect(addr).await;
    let p = format!("{r}/p");
    c.create(&p, b"", raw::open_acl(), 0).await.unwrap();

    w.get_children(&p, true).await.unwrap();
    c.set_data(&p, b"x", -1).await.unwrap();
    assert_no_events(&mut w, "setData on a child-watched node").await;
    c.create(&format!("{p}/a"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    assert_eq!(
        kinds(vec![w.next_event().await]),
        [event(ev::CHILDREN_CHANGED, &p)]
    );
    c.create(&format!("{p}/b"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    assert_no_events(&mut w, "second create after the one-shot fired").await;

    w.get_children2(&p, true).await.unwrap();
    c.set_data(&format!("{p}/a"), b"x", -1).await.unwrap();
    c.create(&format!("{p}/a/grandchild"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    assert_no_events(&mut w, "grandchild create / child setData").await;
    c.delete(&format!("{p}/b"), -1).await.unwrap();
    assert_eq!(
        kinds(vec![w.next_event().await]),
        [event(ev::CHILDREN_CHANGED, &p)]
    );

    c.delete(&format!("{p}/a/grandchild"), -1).await.unwrap();
    c.delete(&format!("{p}/a"), -1).await.unwrap();
    w.get_children(&p, true).await.unwrap();
    c.delete(&p, -1).await.unwrap();
    assert_eq!(kinds(vec![w.next_event().await]), [event(ev::DELETED, &p)]);
    assert_no_events(&mut w, "after the watched node was deleted").await;
    assert_eq!(w.get_children(&p, true).await, Err(err::NO_NODE));
    c.create(&p, b"", raw::open_acl(), 0).await.unwrap();
    assert_no_events(&mut w, "getChildren watch on a missing node is not set").await;
    c.close().await;
    w.close().await;
}

/// The order of events one write produces (DataTree.createNode / deleteNode: the node's
/// own watches first, then the parent's child watches), and one session's events in
/// zxid order.
async fn watch_event_order(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_event_order").await;
    let mut w = Conn::connect(addr).await;
    let a = format!("{r}/a");
    // create: NodeCreated on the node, then NodeChildrenChanged on the parent.
    assert_eq!(w.exists(&a, true).await, Err(err::NO_NODE));
    w.get_children(&r, true).await.unwrap();
    c.create(&a, b"", raw::open_acl(), 0).await.unwrap();
    settle(&mut w).await;
    assert_eq!(
        kinds(w.take_events()),
        [event(ev::CREATED, &a), event(ev::CHILDREN_CHANGED, &r)]
    );
    // delete: NodeDeleted on the node (data and child watchers), then the parent's.
    w.get_data(&a, true).await.unwrap();
    w.get_children(&a, true).await.unwrap();
    w.get_children(&r, true).await.unwrap();
    c.delete(&a, -1).await.unwrap();
    settle(&mut w).await;
    // The data and the child watch on /a are two watches of one connection, yet one
    // NodeDeleted arrives: DataTree.deleteNode triggers the data watches, then the child
    // watches with the watchers already notified passed as `supress`.
    assert_eq!(
        kinds(w.take_events()),
        [event(ev::DELETED, &a), event(ev::CHILDREN_CHANGED, &r)]
    );
    // A multi's events come in op order.
    c.create(&a, b"", raw::open_acl(), 0).await.unwrap();
    let b = format!("{r}/b");
    w.get_data(&a, true).await.unwrap();
    w.exists(&b, true).await.unwrap_err();
    w.get_children(&r, true).await.unwrap();
    let (hdr, res) = c
        .multi(&[
            MultiOp::SetData {
                path: a.clone(),
                data: b"1".to_vec(),
                version: -1,
            },
            MultiOp::Create {
                opcode: op::CREATE,
                path: b.clone(),
                data: vec![],
                acl: raw::open_acl(),
                flags: 0,
                ttl: 0,
            },
        ])
        .await;
    assert_eq!(hdr, 0);
    assert!(!matches!(res[0], OpResult::Error(_)));
    settle(&mut w).await;
    assert_eq!(
        kinds(w.take_events()),
        [
            event(ev::DATA_CHANGED, &a),
            event(ev::CREATED, &b),
            event(ev::CHILDREN_CHANGED, &r)
        ]
    );
    c.close().await;
    w.close().await;
}

/// addWatch PERSISTENT (3.6, ZOOKEEPER-1416; PG "Persistent, Recursive Watches"): like
/// data + child watches on one node that stay after firing.
async fn watch_persistent(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_persistent").await;
    let mut w = Conn::connect(addr).await;
    let p = format!("{r}/p");
    // addWatch's reply body is an ErrorResponse{0} (FinalRequestProcessor, case
    // addWatch); the node need not exist.
    let reply = w.add_watch(&p, 0).await;
    assert_eq!((reply.err, reply.body.as_slice()), (0, &[0u8, 0, 0, 0][..]));
    c.create(&p, b"", raw::open_acl(), 0).await.unwrap();
    c.set_data(&p, b"1", -1).await.unwrap();
    c.set_data(&p, b"2", -1).await.unwrap();
    c.create(&format!("{p}/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.set_data(&format!("{p}/k"), b"x", -1).await.unwrap();
    c.create(&format!("{p}/k/g"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.delete(&format!("{p}/k/g"), -1).await.unwrap();
    c.delete(&format!("{p}/k"), -1).await.unwrap();
    c.delete(&p, -1).await.unwrap();
    c.create(&p, b"", raw::open_acl(), 0).await.unwrap();
    settle(&mut w).await;
    assert_eq!(
        kinds(w.take_events()),
        [
            event(ev::CREATED, &p),
            event(ev::DATA_CHANGED, &p),
            event(ev::DATA_CHANGED, &p),
            event(ev::CHILDREN_CHANGED, &p),
            event(ev::CHILDREN_CHANGED, &p),
            event(ev::DELETED, &p),
            event(ev::CREATED, &p),
        ]
    );
    // A one-shot watch on the same node: the connection gets one event per change (the
    // watch manager keeps a set of watchers per path). In 3.8 setting it also turns the
    // persistent watch on this path back into a one-shot one (ZOOKEEPER-4466: one mode
    // per path and connection, WatchManager.addWatch), so nothing after this event is
    // pinned.
    w.get_data(&p, true).await.unwrap();
    c.set_data(&p, b"3", -1).await.unwrap();
    settle(&mut w).await;
    assert_eq!(kinds(w.take_events()), [event(ev::DATA_CHANGED, &p)]);
    c.close().await;
    w.close().await;
}

/// addWatch PERSISTENT_RECURSIVE: NodeCreated, NodeDeleted and NodeDataChanged for the
/// node and every descendant; never NodeChildrenChanged (PG "Persistent, Recursive
/// Watches").
async fn watch_persistent_recursive(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "watch_persistent_recursive").await;
    let mut w = Conn::connect(addr).await;
    let t = format!("{r}/t");
    assert_eq!(w.add_watch(&t, 1).await.err, 0);
    c.create(&t, b"", raw::open_acl(), 0).await.unwrap();
    c.create(&format!("{t}/a"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.create(&format!("{t}/a/b"), b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    c.set_data(&format!("{t}/a/b"), b"x", -1).await.unwrap();
    c.set_data(&t, b"y", -1).await.unwrap();
    c.delete(&format!("{t}/a/b"), -1).await.unwrap();
    // A sibling prefix is not a descendant.
    c.create(&format!("{r}/tt"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    settle(&mut w).await;
    assert_eq!(
        kinds(w.take_events()),
        [
            event(ev::CREATED, &t),
            event(ev::CREATED, &format!("{t}/a")),
            event(ev::CREATED, &format!("{t}/a/b")),
            event(ev::DATA_CHANGED, &format!("{t}/a/b")),
            event(ev::DATA_CHANGED, &t),
            event(ev::DELETED, &format!("{t}/a/b")),
        ]
    );
    // A one-shot child watch inside the subtree still gets NodeChildrenChanged, once,
    // and the recursive watch its NodeCreated.
    w.get_children(&format!("{t}/a"), true).await.unwrap();
    c.create(&format!("{t}/a/c"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    settle(&mut w).await;
    let mut got = kinds(w.take_events());
    got.sort_by_key(|e| e.kind);
    assert_eq!(
        got,
        [
            event(ev::CREATED, &format!("{t}/a/c")),
            event(ev::CHILDREN_CHANGED, &format!("{t}/a"))
        ]
    );
    c.close().await;
    w.close().await;
}

/// removeWatches / checkWatches (3.5, WatcherType 1 children, 2 data, 3 any):
/// NoWatcher (−121) when the connection has no such watch. The server sends no
/// notification for a removal (the Java client makes DataWatchRemoved /
/// ChildWatchRemoved locally). Types 4 (persistent) and 5 (persistent recursive) exist
/// only from 3.9 (ZOOKEEPER-4472); 3.8's WatcherType.fromInt throws on them, which
/// FinalRequestProcessor answers with MarshallingError (−5). In 3.8 a persistent watch
/// is removed with Any.
async fn remove_watches(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "remove_watches").await;
    let mut w = Conn::connect(addr).await;
    let n = format!("{r}/n");
    c.create(&n, b"", raw::open_acl(), 0).await.unwrap();
    for ty in 1..=3 {
        assert_eq!(
            w.remove_watches(&n, ty).await.err,
            err::NO_WATCHER,
            "type {ty} without watches"
        );
        assert_eq!(
            w.check_watches(&n, ty).await.err,
            err::NO_WATCHER,
            "checkWatches type {ty}"
        );
    }
    for ty in [4, 5] {
        let code = w.remove_watches(&n, ty).await.err;
        assert!(
            code == err::MARSHALLING_ERROR || code == err::NO_WATCHER,
            "type {ty}: 3.8 or 3.9 answer, got {code}"
        );
    }
    // An unknown type is MarshallingError in every version.
    assert_eq!(w.remove_watches(&n, 9).await.err, err::MARSHALLING_ERROR);
    assert_eq!(w.ping().await.err, 0, "still connected");
    w.get_data(&n, true).await.unwrap();
    assert_eq!(w.check_watches(&n, 2).await.err, 0);
    assert_eq!(w.check_watches(&n, 1).await.err, err::NO_WATCHER);
    assert_eq!(
        w.remove_watches(&n, 1).await.err,
        err::NO_WATCHER,
        "children type, only a data watch"
    );
    let reply = w.remove_watches(&n, 2).await;
    assert_eq!((reply.err, reply.body.len()), (0, 0));
    assert_eq!(
        w.remove_watches(&n, 2).await.err,
        err::NO_WATCHER,
        "already removed"
    );
    c.set_data(&n, b"x", -1).await.unwrap();
    assert_no_events(&mut w, "removed data watch").await;

    w.get_children(&n, true).await.unwrap();
    w.exists(&n, true).await.unwrap();
    assert_eq!(w.remove_watches(&n, 3).await.err, 0, "any removes both");
    c.create(&format!("{n}/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.set_data(&n, b"y", -1).await.unwrap();
    assert_no_events(&mut w, "removed child and data watches").await;

    // Persistent watches: removed by Any.
    assert_eq!(w.add_watch(&n, 0).await.err, 0);
    assert_eq!(w.remove_watches(&n, 3).await.err, 0);
    assert_eq!(w.add_watch(&n, 1).await.err, 0);
    assert_eq!(w.remove_watches(&n, 3).await.err, 0);
    c.set_data(&n, b"z", -1).await.unwrap();
    assert_no_events(&mut w, "removed persistent watches").await;
    // Only the connection's own watches count.
    w.get_data(&n, true).await.unwrap();
    assert_eq!(
        c.remove_watches(&n, 2).await.err,
        err::NO_WATCHER,
        "another session's watch"
    );
    // removeWatches on a missing node: NoWatcher, not NoNode.
    assert_eq!(
        w.remove_watches(&format!("{r}/nope"), 3).await.err,
        err::NO_WATCHER
    );
    c.close().await;
    w.close().await;
}

/// SetWatches / SetWatches2 (xid −8; PG "ZooKeeper Watches": on reconnect the client
/// re-registers its watches with the last zxid it saw). The server fires at once what
/// the client missed and registers the rest (DataTree.setWatches): a data watch on a
/// missing node → NodeDeleted, on a node with mzxid > relativeZxid → NodeDataChanged;
/// an exist watch on an existing node → NodeCreated; a child watch on a missing node →
/// NodeDeleted, on a node with pzxid > relativeZxid → NodeChildrenChanged. Events come
/// in that order (data, exist, child lists, each in list order), then the reply
/// (xid −8, err 0, no body).
async fn set_watches(addr: &str) {
    let mut a = Conn::connect(addr).await;
    let r = root(&mut a, "set_watches").await;
    let p = |name: &str| format!("{r}/{name}");
    for name in ["changed", "gone", "same", "parent", "parent/old"] {
        a.create(&p(name), b"", raw::open_acl(), 0).await.unwrap();
    }
    // The last zxid this client saw.
    let relative = a
        .call(
            op::EXISTS,
            &ferrokeeper_net::records::ExistsRequest {
                path: r.clone(),
                watch: false,
            },
        )
        .await
        .zxid;
    let mut b = Conn::connect(addr).await;
    b.set_data(&p("changed"), b"x", -1).await.unwrap();
    b.delete(&p("gone"), -1).await.unwrap();
    b.create(&p("appeared"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    b.create(&p("parent/new"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    // Reconnect the session on a new connection and re-register.
    let mut a2 = Conn::connect_with(
        addr,
        ConnectOptions {
            session_id: a.session_id,
            passwd: a.passwd.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(a2.session_id, a.session_id);
    let set = ferrokeeper_net::records::SetWatches {
        relative_zxid: relative,
        data_watches: vec![p("changed"), p("gone"), p("same")],
        exist_watches: vec![p("appeared"), p("absent")],
        child_watches: vec![p("parent"), p("same"), p("gone")],
    };
    a2.send_raw(
        -8,
        op::SET_WATCHES,
        &ferrokeeper_net::jute::Encode::to_bytes(&set),
    )
    .await;
    let reply = a2.wait_reply(-8).await;
    assert_eq!((reply.err, reply.body.len()), (0, 0));
    assert_eq!(
        kinds(a2.take_events()),
        [
            event(ev::DATA_CHANGED, &p("changed")),
            event(ev::DELETED, &p("gone")),
            event(ev::CREATED, &p("appeared")),
            event(ev::CHILDREN_CHANGED, &p("parent")),
            event(ev::DELETED, &p("gone")),
        ],
        "missed changes are delivered before the reply"
    );
    // The rest are registered and fire later.
    b.create(&p("absent"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    b.set_data(&p("same"), b"y", -1).await.unwrap();
    b.create(&p("same/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    settle(&mut a2).await;
    assert_eq!(
        kinds(a2.take_events()),
        [
            event(ev::CREATED, &p("absent")),
            event(ev::DATA_CHANGED, &p("same")),
            event(ev::CHILDREN_CHANGED, &p("same"))
        ]
    );
    // SetWatches2 adds persistent and persistent-recursive watches, which fire nothing
    // at registration.
    let set2 = ferrokeeper_net::records::SetWatches2 {
        relative_zxid: 0,
        persistent_watches: vec![p("same")],
        persistent_recursive_watches: vec![p("tree")],
        ..Default::default()
    };
    a2.send_raw(
        -8,
        op::SET_WATCHES2,
        &ferrokeeper_net::jute::Encode::to_bytes(&set2),
    )
    .await;
    let reply = a2.wait_reply(-8).await;
    assert_eq!((reply.err, reply.body.len()), (0, 0));
    assert!(a2.take_events().is_empty());
    b.create(&p("tree"), b"", raw::open_acl(), 0).await.unwrap();
    b.create(&p("tree/x"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    b.set_data(&p("same"), b"z", -1).await.unwrap();
    b.set_data(&p("same"), b"w", -1).await.unwrap();
    settle(&mut a2).await;
    assert_eq!(
        kinds(a2.take_events()),
        [
            event(ev::CREATED, &p("tree")),
            event(ev::CREATED, &p("tree/x")),
            event(ev::DATA_CHANGED, &p("same")),
            event(ev::DATA_CHANGED, &p("same")),
        ]
    );
    a2.close().await;
    b.close().await;
}

// ---------------------------------------------------------------------------------------
// session end

/// PG "Ephemeral Nodes": closing a session deletes its ephemerals, which fires other
/// sessions' watches. The closeSession reply comes first, then the server closes the
/// socket.
async fn session_close(addr: &str) {
    let mut w = Conn::connect(addr).await;
    let r = root(&mut w, "session_close").await;
    let mut a = Conn::connect(addr).await;
    let e1 = format!("{r}/e1");
    a.create(&e1, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    let s2 = a
        .create(
            &format!("{r}/s-"),
            b"",
            raw::open_acl(),
            mode::EPHEMERAL_SEQUENTIAL,
        )
        .await
        .unwrap();
    w.exists(&e1, true).await.unwrap();
    w.get_data(&s2, true).await.unwrap();
    w.get_children(&r, true).await.unwrap();
    let before = stat_of(&mut w, &r).await;
    let reply = a.close().await;
    assert_eq!((reply.err, reply.body.len()), (0, 0));
    assert!(a.is_closed());
    settle(&mut w).await;
    let mut got = kinds(w.take_events());
    // Ephemerals go in no specified order (a HashSet in Java), but the parent's child
    // watch fires once, for the first of them.
    let children_changed: Vec<_> = got
        .iter()
        .filter(|e| e.kind == ev::CHILDREN_CHANGED)
        .cloned()
        .collect();
    assert_eq!(children_changed, [event(ev::CHILDREN_CHANGED, &r)]);
    got.retain(|e| e.kind != ev::CHILDREN_CHANGED);
    got.sort_by(|x, y| x.path.cmp(&y.path));
    assert_eq!(got, [event(ev::DELETED, &e1), event(ev::DELETED, &s2)]);
    assert!(w.get_children(&r, false).await.unwrap().is_empty());
    // All deletions happen in the closeSession txn: the parent's pzxid is the close's
    // zxid, which is the closeSession reply's zxid.
    let after = stat_of(&mut w, &r).await;
    assert_eq!(after.pzxid, reply.zxid);
    assert_eq!(after.cversion, before.cversion + 2);
    w.close().await;
}

/// PG "ZooKeeper Sessions": a session the server does not hear from for its timeout
/// expires; its ephemerals are deleted and other sessions' watches fire. The expired
/// session cannot be resumed.
async fn session_expiry(addr: &str) {
    let mut w = Conn::connect(addr).await;
    let r = root(&mut w, "session_expiry").await;
    // The shortest timeout the server grants (2 × tickTime); this session will never
    // ping, so it expires 1 to 1.5 timeouts later (SessionTrackerImpl rounds the expiry
    // time up to the next tick).
    let mut a = Conn::connect_with(
        addr,
        ConnectOptions {
            timeout_ms: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(a.timeout_ms, 2 * TICK_MS);
    let e = format!("{r}/e");
    a.create(&e, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    let start = Instant::now();
    w.exists(&e, true).await.unwrap();
    w.get_children(&r, true).await.unwrap();
    // Keep the watcher alive while waiting; the silent session says nothing.
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ephemeral not removed; events so far {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        w.ping().await;
        got.extend(kinds(w.take_events()));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(2 * TICK_MS as u64 - 200),
        "expired too early: {elapsed:?}"
    );
    assert_eq!(
        got,
        [event(ev::DELETED, &e), event(ev::CHILDREN_CHANGED, &r)]
    );
    // The server closed the expired session's connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.is_closed() && Instant::now() < deadline {
        a.next_incoming().await;
    }
    assert!(a.is_closed(), "expired session's connection still open");
    // Resuming it is refused.
    let again = Conn::connect_with(
        addr,
        ConnectOptions {
            session_id: a.session_id,
            passwd: a.passwd.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(again.session_id, 0);
    assert!(again.timeout_ms <= 0);
    w.close().await;
}

/// whoAmI (3.7, ZOOKEEPER-3969): the session's identities. Every connection has the ip
/// identity of its address (IPAuthenticationProvider); digest adds the user name.
async fn who_am_i(addr: &str) {
    let mut c = Conn::connect(addr).await;
    // The order is the iteration order of the session's identity set (ServerCnxn
    // .authInfo, a ConcurrentHashMap-backed set), so it is compared sorted.
    let ip = ClientInfo {
        auth_scheme: "ip".into(),
        user: "127.0.0.1".into(),
    };
    assert_eq!(c.who_am_i().await.unwrap(), std::slice::from_ref(&ip));
    assert_eq!(c.add_auth("digest", b"dave:pw").await, 0);
    let mut got = c.who_am_i().await.unwrap();
    got.sort_by(|a, b| (&a.auth_scheme, &a.user).cmp(&(&b.auth_scheme, &b.user)));
    assert_eq!(
        got,
        [
            ClientInfo {
                auth_scheme: "digest".into(),
                user: "dave".into()
            },
            ip.clone()
        ]
    );
    // The same identity twice is listed once.
    assert_eq!(c.add_auth("digest", b"dave:pw").await, 0);
    assert_eq!(c.who_am_i().await.unwrap().len(), 2);
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// paths and malformed requests

/// Path validation (PathUtils.validatePath; PG "ZNodes": "The following characters can't
/// be used..."). Which operation validates is uneven in Java 3.8, and this table records
/// it: create checks the full path (BadArguments) but only after finding the parent
/// (NoNode first when the parent part is itself bad); setData and setACL validate first
/// (BadArguments); delete checks only for a missing '/' and NUL (BadArguments) and
/// otherwise reports NoNode; reads look the string up as is (NoNode), except exists,
/// which refuses NUL (BadArguments).
async fn path_validation(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "path_validation").await;
    let e = format!("{r}/e");
    c.create(&e, b"", raw::open_acl(), mode::EPHEMERAL)
        .await
        .unwrap();
    const BA: i32 = err::BAD_ARGUMENTS;
    const NN: i32 = err::NO_NODE;
    // (path, create, exists, getData, setData, delete)
    let table: Vec<(String, i32, i32, i32, i32, i32)> = vec![
        (format!("{r}/a//b"), NN, NN, NN, BA, NN),
        (format!("{r}//b"), NN, NN, NN, BA, NN),
        (format!("{r}/"), BA, NN, NN, BA, NN),
        (format!("{r}/."), BA, NN, NN, BA, NN),
        (format!("{r}/.."), BA, NN, NN, BA, NN),
        (format!("{r}/./x"), NN, NN, NN, BA, NN),
        (format!("{r}/x/."), NN, NN, NN, BA, NN),
        ("relative".to_string(), BA, NN, NN, BA, BA),
        (r[1..].to_string(), BA, NN, NN, BA, BA),
        (format!("{r}/nul\0x"), BA, BA, NN, BA, BA),
        (format!("{r}/ctl\u{1}"), BA, NN, NN, BA, NN),
        (format!("{r}/del\u{7f}"), BA, NN, NN, BA, NN),
        (format!("{r}/priv\u{e000}"), BA, NN, NN, BA, NN),
        (format!("{r}/nonchar\u{fffe}"), BA, NN, NN, BA, NN),
        (format!("{e}/"), BA, NN, NN, BA, NN),
    ];
    for (p, create, exists, get_data, set_data, delete) in table {
        let got = (
            c.create(&p, b"", raw::open_acl(), 0)
                .await
                .err()
                .unwrap_or(0),
            c.exists(&p, false).await.err().unwrap_or(0),
            c.get_data(&p, false).await.err().unwrap_or(0),
            c.set_data(&p, b"", -1).await.err().unwrap_or(0),
            c.delete(&p, -1).await.err().unwrap_or(0),
        );
        assert_eq!(
            got,
            (create, exists, get_data, set_data, delete),
            "path {p:?}: (create, exists, getData, setData, delete)"
        );
    }
    // setACL validates like setData; getACL, getChildren like getData.
    assert_eq!(
        c.set_acl(&format!("{r}/a//b"), raw::open_acl(), -1).await,
        Err(BA)
    );
    assert_eq!(c.get_acl(&format!("{r}/a//b")).await, Err(NN));
    assert_eq!(c.get_children(&format!("{r}/a//b"), false).await, Err(NN));
    // A trailing slash on a sequential create is the empty-prefix form (see
    // sequential_suffix), and under an ephemeral parent gives NoChildrenForEphemerals.
    assert_eq!(
        c.create(
            &format!("{e}/"),
            b"",
            raw::open_acl(),
            mode::PERSISTENT_SEQUENTIAL
        )
        .await,
        Err(err::NO_CHILDREN_FOR_EPHEMERALS)
    );
    // Inside a multi the same checks give the same codes.
    let (_, res) = c
        .multi(&[MultiOp::Create {
            opcode: op::CREATE,
            path: format!("{r}/"),
            data: vec![],
            acl: raw::open_acl(),
            flags: 0,
            ttl: 0,
        }])
        .await;
    assert_eq!(res, [OpResult::Error(BA)]);
    // Paths under /zookeeper are ordinary for create.
    c.close().await;
}

/// Java's DataTree also registers the root under "" (DataTree constructor), so reads
/// with an empty path act on "/": exists, getData, getChildren, getACL and
/// getAllChildrenNumber all succeed. Writes refuse it.
async fn empty_path_is_root_for_reads(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let root_stat = stat_of(&mut c, "/").await;
    let empty_stat = stat_of(&mut c, "").await;
    assert_eq!(
        (empty_stat.czxid, empty_stat.ctime, empty_stat.aversion),
        (root_stat.czxid, root_stat.ctime, root_stat.aversion)
    );
    assert!(c
        .get_children("", false)
        .await
        .unwrap()
        .contains(&"zookeeper".to_string()));
    assert_eq!(c.get_acl("").await.unwrap().0, raw::open_acl());
    assert!(c.get_all_children_number("").await.unwrap() >= 3);
    assert_eq!(
        c.create("", b"", raw::open_acl(), 0).await,
        Err(err::BAD_ARGUMENTS)
    );
    assert_eq!(c.set_data("", b"", -1).await, Err(err::BAD_ARGUMENTS));
    assert_eq!(c.delete("", -1).await, Err(err::BAD_ARGUMENTS));
    c.close().await;
}

/// An opcode the server does not know: the reply is Unimplemented (−6) with zxid −1
/// (`request.zxid` is never set) and the server closes the connection
/// (ZooKeeperServer.submitRequestNow → UnimplementedRequestProcessor).
async fn unknown_opcode(addr: &str) {
    for opcode in [99, 10, 23, 108, 1000, -5] {
        let mut c = Conn::connect(addr).await;
        let reply = c.call_raw(opcode, &[0, 0, 0, 0]).await;
        assert_eq!(
            (reply.err, reply.zxid, reply.body.len()),
            (err::UNIMPLEMENTED, -1, 0),
            "opcode {opcode}"
        );
        wait_closed(&mut c, &format!("after opcode {opcode}")).await;
    }
}

/// A request whose body does not decode: MarshallingError (−5) for that xid, and the
/// connection stays open (FinalRequestProcessor catches the IOException). A truncated
/// write still consumes a zxid in Java (PrepRequestProcessor makes an error txn).
async fn malformed_request(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = c.call_raw(op::GET_DATA, &[0, 0, 0]).await;
    assert_eq!((r.err, r.body.len()), (err::MARSHALLING_ERROR, 0));
    assert_eq!(c.ping().await.err, 0, "still connected");
    let r = c.call_raw(op::CREATE, &[0, 0, 0]).await;
    assert_eq!(r.err, err::MARSHALLING_ERROR);
    assert_eq!(c.ping().await.err, 0, "still connected");
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// containers and TTL

/// PG "Container Nodes": a container is deleted once its last child is deleted (by the
/// ContainerManager, every znode.container.checkIntervalMs). A container that never had
/// a child is kept (cversion 0 and maxNeverUsedIntervalMs 0: ContainerManager
/// .getCandidates).
async fn container_reaping(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "container_reaping").await;
    let mut w = Conn::connect(addr).await;
    let used = format!("{r}/used");
    let never = format!("{r}/never");
    let fake = format!("{r}/fake");
    c.create_container(&used, b"").await.unwrap();
    c.create_container(&never, b"").await.unwrap();
    // create (not createContainer) with the CONTAINER flag makes a persistent node.
    c.create(&fake, b"", raw::open_acl(), mode::CONTAINER)
        .await
        .unwrap();
    for p in [&used, &fake] {
        c.create(&format!("{p}/k"), b"", raw::open_acl(), mode::EPHEMERAL)
            .await
            .unwrap();
    }
    // A container with a child is kept.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(c.exists(&used, false).await.is_ok());
    w.exists(&used, true).await.unwrap();
    for p in [&used, &fake] {
        c.delete(&format!("{p}/k"), -1).await.unwrap();
    }
    let took = wait_until_gone(&mut c, &used, Duration::from_secs(10)).await;
    eprintln!("container reaped {took:?} after its last child went");
    // Reaping is a delete: watches fire.
    settle(&mut w).await;
    assert_eq!(kinds(w.take_events()), [event(ev::DELETED, &used)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        c.exists(&never, false).await.is_ok(),
        "never-used container is kept"
    );
    assert!(
        c.exists(&fake, false).await.is_ok(),
        "create with CONTAINER flag is not a container"
    );
    c.close().await;
    w.close().await;
}

/// PG "TTL Nodes": a TTL node with no children is deleted once it has not been
/// modified for its TTL (ContainerManager.getCandidates: now − mtime > ttl). setData
/// moves mtime and so postpones expiry; a child keeps it.
async fn ttl_expiry(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "ttl_expiry").await;
    let short = format!("{r}/short");
    let parent = format!("{r}/parent");
    let long = format!("{r}/long");
    let start = Instant::now();
    c.create_ttl(&short, b"", mode::PERSISTENT_WITH_TTL, 300)
        .await
        .unwrap();
    c.create_ttl(&parent, b"", mode::PERSISTENT_WITH_TTL, 300)
        .await
        .unwrap();
    c.create(&format!("{parent}/k"), b"", raw::open_acl(), 0)
        .await
        .unwrap();
    c.create_ttl(&long, b"", mode::PERSISTENT_WITH_TTL, 3_600_000)
        .await
        .unwrap();
    let (seq, _) = c
        .create_ttl(
            &format!("{r}/seq-"),
            b"",
            mode::PERSISTENT_SEQUENTIAL_WITH_TTL,
            300,
        )
        .await
        .unwrap();
    wait_until_gone(&mut c, &short, Duration::from_secs(10)).await;
    wait_until_gone(&mut c, &seq, Duration::from_secs(10)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "expired before its TTL"
    );
    assert!(
        c.exists(&parent, false).await.is_ok(),
        "TTL node with a child is kept"
    );
    assert!(c.exists(&long, false).await.is_ok());
    c.delete(&format!("{parent}/k"), -1).await.unwrap();
    wait_until_gone(&mut c, &parent, Duration::from_secs(10)).await;
    c.close().await;
}

/// jute ReplyHeader.zxid: for reads, the last zxid the server applied; for writes, the
/// write's zxid. A ping reply carries it too (FinalRequestProcessor, case ping).
async fn reply_header_zxid(addr: &str) {
    let mut c = Conn::connect(addr).await;
    let r = root(&mut c, "reply_header_zxid").await;
    let w = c
        .call(
            op::SET_DATA,
            &ferrokeeper_net::records::SetDataRequest {
                path: r.clone(),
                data: Default::default(),
                version: -1,
            },
        )
        .await;
    let read = c
        .call(
            op::GET_DATA,
            &ferrokeeper_net::records::GetDataRequest {
                path: r.clone(),
                watch: false,
            },
        )
        .await;
    assert!(read.zxid >= w.zxid);
    let s: ferrokeeper_net::records::GetDataResponse = read.decode();
    assert_eq!(s.stat.mzxid, w.zxid);
    let ping = c.ping().await;
    assert!(ping.zxid >= read.zxid);
    assert_eq!(ping.body.len(), 0);
    c.close().await;
}

// ---------------------------------------------------------------------------------------
// through the zookeeper-client crate

async fn zk_connect(addr: &str) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("zookeeper-client connect {addr}: {e}"))
}

/// The ordinary client API end to end: create (all modes), getData, setData, exists,
/// getChildren, delete, getACL/setACL, sync.
async fn client_basic_ops(addr: &str) {
    use zookeeper_client::{Acls, CreateMode, Error};
    let zk = zk_connect(addr).await;
    let r = "/client_basic_ops";
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let (s, seq) = zk.create(r, b"root", &open).await.unwrap();
    assert_eq!(s.version, 0);
    assert_eq!(seq.into_i64(), -1);
    let (_, seq) = zk
        .create(
            &format!("{r}/s-"),
            b"",
            &CreateMode::PersistentSequential.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    assert_eq!(seq.to_string(), "0000000000");
    let (s, _) = zk
        .create(
            &format!("{r}/e"),
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    assert_eq!(s.ephemeral_owner, zk.session_id().0);
    let (_, seq) = zk
        .create(
            &format!("{r}/es-"),
            b"",
            &CreateMode::EphemeralSequential.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    assert_eq!(seq.into_i64(), 2);
    let (s, _) = zk
        .create(
            &format!("{r}/c"),
            b"",
            &CreateMode::Container.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    assert_eq!(s.ephemeral_owner, 0);
    let ttl = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(3600));
    zk.create(&format!("{r}/t"), b"", &ttl).await.unwrap();
    let ttl_seq = CreateMode::PersistentSequential
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(3600));
    let (_, seq) = zk.create(&format!("{r}/ts-"), b"", &ttl_seq).await.unwrap();
    assert_eq!(seq.into_i64(), 5);
    assert_eq!(
        zk.create(r, b"", &open).await.unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        zk.create(&format!("{r}/no/x"), b"", &open)
            .await
            .unwrap_err(),
        Error::NoNode
    );
    assert_eq!(
        zk.create(&format!("{r}/e/x"), b"", &open)
            .await
            .unwrap_err(),
        Error::NoChildrenForEphemerals
    );

    let (data, s) = zk.get_data(r).await.unwrap();
    assert_eq!((data.as_slice(), s.num_children), (&b"root"[..], 6));
    let s2 = zk.set_data(r, b"new", Some(0)).await.unwrap();
    assert_eq!(s2.version, 1);
    assert_eq!(
        zk.set_data(r, b"x", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(zk.check_stat(r).await.unwrap(), Some(s2));
    assert_eq!(zk.check_stat(&format!("{r}/nope")).await.unwrap(), None);
    let mut kids = zk.list_children(r).await.unwrap();
    kids.sort();
    assert_eq!(
        kids,
        [
            "c",
            "e",
            "es-0000000002",
            "s-0000000000",
            "t",
            "ts-0000000005"
        ]
    );
    let (kids, s3) = zk.get_children(r).await.unwrap();
    assert_eq!((kids.len(), s3), (6, s2));
    assert_eq!(zk.delete(r, None).await.unwrap_err(), Error::NotEmpty);
    zk.delete(&format!("{r}/s-0000000000"), Some(0))
        .await
        .unwrap();
    assert_eq!(
        zk.delete(&format!("{r}/t"), Some(3)).await.unwrap_err(),
        Error::BadVersion
    );
    let (acl, s4) = zk.get_acl(r).await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!((acl[0].scheme(), acl[0].id()), ("world", "anyone"));
    let s5 = zk
        .set_acl(r, &Acls::anyone_all(), Some(s4.aversion))
        .await
        .unwrap();
    assert_eq!(s5.aversion, 1);
    zk.sync(r).await.unwrap();
    let (config, config_stat) = zk.get_config().await.unwrap();
    assert!(config.is_empty());
    assert_eq!(config_stat.aversion, -1);
}

/// Multi through the client: a successful transaction and an atomic failure, as the
/// client library reports it (the index and code of the failing op).
async fn client_multi(addr: &str) {
    use zookeeper_client::{
        Acls, CreateMode, Error, MultiReadResult, MultiWriteError, MultiWriteResult,
    };
    let zk = zk_connect(addr).await;
    let r = "/client_multi";
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.create(r, b"", &open).await.unwrap();
    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{r}/a"), b"a", &open).unwrap();
    w.add_set_data(r, b"x", Some(0)).unwrap();
    w.add_check_version(&format!("{r}/a"), 0).unwrap();
    let res = w.commit().await.unwrap();
    assert_eq!(res.len(), 3);
    assert!(matches!(&res[0], MultiWriteResult::Create { path, .. } if path == &format!("{r}/a")));
    assert!(matches!(&res[1], MultiWriteResult::SetData { stat } if stat.version == 1));
    assert_eq!(res[2], MultiWriteResult::Check);

    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{r}/b"), b"", &open).unwrap();
    w.add_delete(&format!("{r}/a"), Some(7)).unwrap();
    w.add_set_data(r, b"y", None).unwrap();
    let e = w.commit().await.unwrap_err();
    assert_eq!(
        e,
        MultiWriteError::OperationFailed {
            index: 1,
            source: Error::BadVersion
        }
    );
    assert_eq!(zk.check_stat(&format!("{r}/b")).await.unwrap(), None);

    let mut rd = zk.new_multi_reader();
    rd.add_get_data(&format!("{r}/a")).unwrap();
    rd.add_get_children(r).unwrap();
    rd.add_get_data(&format!("{r}/nope")).unwrap();
    let res = rd.commit().await.unwrap();
    assert!(matches!(&res[0], MultiReadResult::Data { data, .. } if data == b"a"));
    assert!(
        matches!(&res[1], MultiReadResult::Children { children } if children == &["a".to_string()])
    );
    assert!(matches!(
        &res[2],
        MultiReadResult::Error { err: Error::NoNode }
    ));
}

/// One-shot and persistent watches through the client.
async fn client_watches(addr: &str) {
    use zookeeper_client::{Acls, AddWatchMode, CreateMode, EventType};
    let zk = zk_connect(addr).await;
    let other = zk_connect(addr).await;
    let r = "/client_watches";
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.create(r, b"", &open).await.unwrap();
    let n = format!("{r}/n");
    let exists_watch = zk.check_and_watch_stat(&n).await.unwrap().1;
    let children_watch = zk.list_and_watch_children(r).await.unwrap().1;
    // The recursive watch is on another session: 3.8 keeps one watch mode per path and
    // connection, so a persistent watch and a one-shot watch of one session on the same
    // path do not coexist (ZOOKEEPER-4466, fixed in 3.9; WatchManager.addWatch
    // overwrites the mode, and a recursive mode suppresses NodeChildrenChanged).
    let watcher = zk_connect(addr).await;
    let mut recursive = watcher
        .watch(r, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    other.create(&n, b"", &open).await.unwrap();
    let e = tokio::time::timeout(raw::IO_LIMIT, exists_watch.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, n.as_str())
    );
    let e = tokio::time::timeout(raw::IO_LIMIT, children_watch.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, r)
    );
    let e = tokio::time::timeout(raw::IO_LIMIT, recursive.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, n.as_str())
    );
    let (_, _, data_watch) = zk.get_and_watch_data(&n).await.unwrap();
    other.set_data(&n, b"x", None).await.unwrap();
    let e = tokio::time::timeout(raw::IO_LIMIT, data_watch.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, n.as_str())
    );
    let e = tokio::time::timeout(raw::IO_LIMIT, recursive.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, n.as_str())
    );
    other.delete(&n, None).await.unwrap();
    let e = tokio::time::timeout(raw::IO_LIMIT, recursive.changed())
        .await
        .unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, n.as_str())
    );
    drop(recursive);
}

/// Digest auth and whoAmI through the client.
async fn client_auth_and_whoami(addr: &str) {
    use zookeeper_client::{Acl, Acls, AuthId, AuthUser, CreateMode, Error, Permission};
    let zk = zk_connect(addr).await;
    zk.auth("digest", b"erin:pw").await.unwrap();
    let mut users = zk.list_auth_users().await.unwrap();
    users.sort_by(|a, b| (a.scheme(), a.user()).cmp(&(b.scheme(), b.user())));
    assert_eq!(
        users,
        [
            AuthUser::new("digest", "erin"),
            AuthUser::new("ip", "127.0.0.1")
        ]
    );
    let creator = [Acl::new(Permission::ALL, AuthId::authed())];
    zk.create(
        "/client_auth",
        b"secret",
        &CreateMode::Persistent.with_acls(Acls::new(&creator)),
    )
    .await
    .unwrap();
    let anon = zk_connect(addr).await;
    assert_eq!(
        anon.get_data("/client_auth").await.unwrap_err(),
        Error::NoAuth
    );
    let guest = zk_connect(addr).await;
    guest.auth("digest", b"erin:pw").await.unwrap();
    assert_eq!(guest.get_data("/client_auth").await.unwrap().0, b"secret");
    assert_eq!(
        zk.create(
            "/client_auth2",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all())
        )
        .await
        .map(|_| ()),
        Ok(())
    );
    assert_eq!(
        anon.create(
            "/client_auth3",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all())
        )
        .await
        .unwrap_err(),
        Error::InvalidAcl
    );
}

/// getEphemerals and getAllChildrenNumber through the client; closing the client
/// removes its ephemerals.
async fn client_ephemerals_and_counts(addr: &str) {
    use zookeeper_client::{Acls, CreateMode};
    let zk = zk_connect(addr).await;
    let r = "/client_ephemerals";
    zk.create(
        r,
        b"",
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await
    .unwrap();
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    zk.create(&format!("{r}/a"), b"", &eph).await.unwrap();
    zk.create(&format!("{r}/b"), b"", &eph).await.unwrap();
    let mut e = zk.list_ephemerals(r).await.unwrap();
    e.sort();
    assert_eq!(e, [format!("{r}/a"), format!("{r}/b")]);
    assert_eq!(zk.count_descendants_number(r).await.unwrap(), 2);
    let other = zk_connect(addr).await;
    drop(zk);
    // Dropping every handle closes the session (zookeeper-client sends closeSession).
    let start = Instant::now();
    loop {
        if other.list_children(r).await.unwrap().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ephemerals of a closed client remain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
