//! SASL (opcode 102) with DIGEST-MD5, the `sasl` ACL scheme and enforced authentication,
//! over real sockets, against Apache ZooKeeper 3.8 and ferrokeeper started with the same
//! zoo.cfg lines and the same JAAS file (ZOOKEEPER-SECURITY-OPS.md §1).
//!
//! - Raw-bytes cases: a small DIGEST-MD5 client (RFC 2831) written here, so that every
//!   reply can be checked byte for byte. Each case returns a transcript of what the
//!   server answered; the Java transcript and the ferrokeeper transcript must be equal,
//!   and each case also asserts the facts it pins.
//! - kazoo with pure-sasl: `tests/cross/kazoo_sasl.py`, which checks itself.
//! - The Java shell `zkCli.sh` with a JAAS `Client` section (right and wrong password).
//!
//! Servers listen on ports 23000–23999 (this suite's range, so that parallel suites on
//! the machine never collide).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{free_port, run_client, Kind, Launch, Server};
use ferrokeeper_net::jute::{Decode, Encode};
use ferrokeeper_net::records::{
    Acl, AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, ExistsRequest, GetDataRequest,
    GetSaslRequest, Id, ReplyHeader, RequestHeader, WhoAmIResponse,
};
use md5::{Digest as _, Md5};

const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
const OP_CREATE: i32 = 1;
const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_AUTH: i32 = 100;
const OP_SASL: i32 = 102;
const OP_WHO_AM_I: i32 = 107;
const AUTH_XID: i32 = -4;
const PERMS_ALL: i32 = 31;

const JAAS: &str = r#"
// The server's users (DigestLoginModule), and two client logins for zkCli.sh.
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret"
    user_carol="carolsecret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bobsecret";
};
ClientWrong {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="not-bobs-password";
};
"#;

// ------------------------------------------------------------------ harness

/// The JAAS file every server and client of this run reads.
fn jaas_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir()
            .join("ferrokeeper-tests")
            .join(format!("sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create jaas dir");
        let path = dir.join("jaas.conf");
        std::fs::write(&path, JAAS).expect("write jaas.conf");
        path
    })
}

/// A server of `kind` with the sasl provider registered, the JAAS file, and `extra`.
fn start(kind: Kind, extra: &[(&str, &str)]) -> Server {
    let mut lines = vec![("authProvider.1", SASL_PROVIDER)];
    lines.extend_from_slice(extra);
    let jaas = jaas_path().display().to_string();
    let launch = Launch::properties(&[("java.security.auth.login.config", &jaas)]);
    Server::start_on_port_with(kind, free_port(), &lines, &launch)
}

/// Runs `case` against Java then ferrokeeper, each with `extra`; the transcripts must
/// be equal, and each server must still answer afterwards.
fn both(extra: &[(&str, &str)], case: impl Fn(&Server) -> Vec<String>) {
    let mut transcripts = Vec::new();
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = start(kind, extra);
        transcripts.push(case(&server));
        assert_eq!(
            server.four_letter("ruok"),
            "imok",
            "{kind:?} stopped answering"
        );
    }
    assert_eq!(
        transcripts[1], transcripts[0],
        "ferrokeeper (left) differs from Java ZooKeeper (right)"
    );
}

// ------------------------------------------------------------------ raw client

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Reads one frame, or None when the server closed the connection.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn connect(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // Only a hang guard: no case waits for time to pass.
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut p = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: vec![0; 16].into(),
    }
    .to_bytes();
    false.encode(&mut p);
    s.write_all(&frame(&p)).expect("send connect");
    let reply = read_frame(&mut s).expect("connect reply");
    let resp = ConnectResponse::decode(&mut ferrokeeper_net::Reader::new(&reply)).expect("decode");
    assert_ne!(resp.session_id, 0, "{:?}: no session", server.kind);
    s
}

/// Sends one request; returns the reply header and body, or None when the connection
/// was closed instead.
fn request(s: &mut TcpStream, xid: i32, op: i32, body: &[u8]) -> Option<(ReplyHeader, Vec<u8>)> {
    let mut p = RequestHeader { xid, r#type: op }.to_bytes();
    p.extend_from_slice(body);
    s.write_all(&frame(&p)).ok()?;
    loop {
        let f = read_frame(s)?;
        let mut r = ferrokeeper_net::Reader::new(&f);
        let h = ReplyHeader::decode(&mut r).ok()?;
        if h.xid == -1 {
            continue; // a watch notification
        }
        return Some((h, r.rest().to_vec()));
    }
}

/// A SASL request's reply as a transcript line: `err`, then the token (`null` for a
/// null token, the text for a printable one, `<n bytes>` otherwise).
fn sasl_line(reply: Option<(ReplyHeader, Vec<u8>)>) -> (String, Option<Vec<u8>>) {
    let Some((h, body)) = reply else {
        return ("closed".into(), None);
    };
    let token = ferrokeeper_net::NullableBuffer::decode(&mut ferrokeeper_net::Reader::new(&body))
        .expect("SetSASLResponse")
        .0;
    let shown = match &token {
        None => "null".to_string(),
        Some(t) if t.starts_with(b"rspauth=") => "rspauth=<32 hex>".to_string(),
        Some(t) if t.starts_with(b"realm=") => "challenge".to_string(),
        Some(t) => format!("<{} bytes>", t.len()),
    };
    (format!("sasl err={} token={shown}", h.err), token)
}

fn sasl(s: &mut TcpStream, xid: i32, token: &[u8]) -> (String, Option<Vec<u8>>) {
    let body = GetSaslRequest {
        token: token.to_vec().into(),
    }
    .to_bytes();
    sasl_line(request(s, xid, OP_SASL, &body))
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2831 §2.1.2.1 response-value (`a2_prefix` "AUTHENTICATE:") or rspauth (":").
fn digest(user: &str, password: &str, nonce: &str, cnonce: &str, a2_prefix: &str) -> String {
    let secret = md5(&[user.as_bytes(), b":zk-sasl-md5:", password.as_bytes()]);
    let ha1 = hex(&md5(&[
        &secret,
        b":",
        nonce.as_bytes(),
        b":",
        cnonce.as_bytes(),
    ]));
    let ha2 = hex(&md5(&[a2_prefix.as_bytes(), b"zookeeper/zk-sasl-md5"]));
    let kd = format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}");
    hex(&md5(&[kd.as_bytes()]))
}

/// One DIGEST-MD5 exchange as the Java client does it, xids `xid` and `xid + 1`; the
/// transcript lines of both steps. A returned rspauth is checked against the password.
fn sasl_login(s: &mut TcpStream, xid: i32, user: &str, password: &str) -> Vec<String> {
    let (first, challenge) = sasl(s, xid, b"");
    let mut lines = vec![first];
    let Some(challenge) = challenge else {
        return lines;
    };
    let challenge = String::from_utf8(challenge).expect("challenge is text");
    assert!(challenge.contains("realm=\"zk-sasl-md5\""), "{challenge}");
    assert!(challenge.contains("algorithm=md5-sess"), "{challenge}");
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("nonce in the challenge");
    let cnonce = "OA6MHXh6VqTrRk";
    let response = format!(
        "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",\
         nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
         response={},qop=auth",
        digest(user, password, nonce, cnonce, "AUTHENTICATE:")
    );
    let (second, token) = sasl(s, xid + 1, response.as_bytes());
    if let Some(token) = token {
        let want = format!("rspauth={}", digest(user, password, nonce, cnonce, ":"));
        assert_eq!(String::from_utf8_lossy(&token), want, "server's rspauth");
    }
    lines.push(second);
    lines
}

/// An ordinary request's outcome: `<what> err=<n>`, or `<what> closed`.
fn outcome(what: &str, reply: Option<(ReplyHeader, Vec<u8>)>) -> String {
    match reply {
        Some((h, _)) => format!("{what} err={}", h.err),
        None => format!("{what} closed"),
    }
}

fn exists(s: &mut TcpStream, xid: i32) -> String {
    let body = ExistsRequest {
        path: "/".into(),
        watch: false,
    }
    .to_bytes();
    outcome("exists /", request(s, xid, OP_EXISTS, &body))
}

fn create(s: &mut TcpStream, xid: i32, path: &str, acl: Vec<Acl>) -> String {
    let body = CreateRequest {
        path: path.into(),
        data: b"secret".to_vec().into(),
        acl,
        flags: 0,
    }
    .to_bytes();
    outcome(&format!("create {path}"), request(s, xid, OP_CREATE, &body))
}

fn get_data(s: &mut TcpStream, xid: i32, path: &str) -> String {
    let body = GetDataRequest {
        path: path.into(),
        watch: false,
    }
    .to_bytes();
    outcome(&format!("get {path}"), request(s, xid, OP_GET_DATA, &body))
}

fn add_auth(s: &mut TcpStream, scheme: &str, auth: &str) -> String {
    let body = AuthPacket {
        r#type: 0,
        scheme: scheme.into(),
        auth: auth.as_bytes().to_vec().into(),
    }
    .to_bytes();
    outcome(
        &format!("addauth {scheme}"),
        request(s, AUTH_XID, OP_AUTH, &body),
    )
}

/// whoAmI's ids as sorted `scheme:user` strings (the Java server keeps its ids in a
/// set, so their order is not part of the protocol).
fn who_am_i(s: &mut TcpStream, xid: i32) -> String {
    let (h, body) = request(s, xid, OP_WHO_AM_I, &[]).expect("whoAmI reply");
    assert_eq!(h.err, 0);
    let r = WhoAmIResponse::decode(&mut ferrokeeper_net::Reader::new(&body)).expect("decode");
    let mut ids: Vec<String> = r
        .client_info
        .iter()
        .map(|c| format!("{}:{}", c.auth_scheme, c.user))
        .collect();
    ids.sort();
    format!("whoami {}", ids.join(" "))
}

fn sasl_acl(user: &str) -> Vec<Acl> {
    vec![Acl {
        perms: PERMS_ALL,
        id: Id {
            scheme: "sasl".into(),
            id: user.into(),
        },
    }]
}

/// Whether the server has closed the connection, told without waiting for time to pass:
/// one more request is either answered (open) or meets the end of the stream (closed).
fn closed_line(s: &mut TcpStream) -> String {
    let body = ExistsRequest {
        path: "/".into(),
        watch: false,
    }
    .to_bytes();
    match request(s, 999, OP_EXISTS, &body) {
        None => "connection closed".into(),
        Some((h, _)) => format!("connection open (exists err={})", h.err),
    }
}

// ------------------------------------------------------------------ raw cases

/// The right password: a challenge without qop, then rspauth; the connection holds
/// `sasl:bob`, which whoAmI shows and a `sasl:bob` ACL admits; nobody else is admitted.
#[test]
fn digest_md5_login_gives_a_sasl_id() {
    both(&[], |server| {
        let mut t = Vec::new();
        let mut bob = connect(server);
        t.extend(sasl_login(&mut bob, 1, "bob", "bobsecret"));
        assert_eq!(
            t,
            [
                "sasl err=0 token=challenge",
                "sasl err=0 token=rspauth=<32 hex>"
            ]
        );
        t.push(who_am_i(&mut bob, 3));
        assert_eq!(t[2], "whoami ip:127.0.0.1 sasl:bob");
        t.push(create(&mut bob, 4, "/sasl-bob", sasl_acl("bob")));
        t.push(get_data(&mut bob, 5, "/sasl-bob"));
        // `auth:` expands to the connection's sasl id.
        let auth = vec![Acl {
            perms: PERMS_ALL,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }];
        t.push(create(&mut bob, 6, "/sasl-auth", auth));

        let mut carol = connect(server);
        t.extend(sasl_login(&mut carol, 1, "carol", "carolsecret"));
        t.push(get_data(&mut carol, 3, "/sasl-bob"));
        t.push(get_data(&mut carol, 4, "/sasl-auth"));
        let mut anon = connect(server);
        t.push(who_am_i(&mut anon, 1));
        t.push(get_data(&mut anon, 2, "/sasl-bob"));
        assert_eq!(
            t[3..6],
            [
                "create /sasl-bob err=0",
                "get /sasl-bob err=0",
                "create /sasl-auth err=0"
            ]
        );
        assert_eq!(
            t[8..10],
            ["get /sasl-bob err=-102", "get /sasl-auth err=-102"]
        );
        t
    });
}

/// A wrong password or an unknown user: AuthFailed (−115) with a null token, then the
/// server closes the connection.
#[test]
fn wrong_password_is_auth_failed_and_closes() {
    both(&[], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "wrong"));
        t.push(closed_line(&mut c));
        assert_eq!(
            t,
            [
                "sasl err=0 token=challenge",
                "sasl err=-115 token=null",
                "connection closed"
            ]
        );
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "mallory", "whatever"));
        t.push(closed_line(&mut c));
        assert_eq!(t[4..], ["sasl err=-115 token=null", "connection closed"]);
        t
    });
}

/// `allowSaslFailedClients=true`: the failed step is answered Ok with a null token and
/// the connection carries on, unauthenticated.
#[test]
fn allow_sasl_failed_clients_keeps_the_connection() {
    both(&[("allowSaslFailedClients", "true")], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "wrong"));
        t.push(exists(&mut c, 3));
        t.push(who_am_i(&mut c, 4));
        assert_eq!(
            t,
            [
                "sasl err=0 token=challenge",
                "sasl err=0 token=null",
                "exists / err=0",
                "whoami ip:127.0.0.1"
            ]
        );
        t
    });
}

/// `zookeeper.superUser=carol` makes carol a super user (every ACL admits her);
/// `SASLAuthenticationProvider.superPassword` replaces the JAAS password of `super`,
/// whose sasl id every `sasl` ACL admits.
#[test]
fn super_user_and_super_password() {
    let extra = [
        ("superUser", "carol"),
        ("SASLAuthenticationProvider.superPassword", "override"),
    ];
    both(&extra, |server| {
        let mut t = Vec::new();
        let mut bob = connect(server);
        t.extend(sasl_login(&mut bob, 1, "bob", "bobsecret"));
        t.push(create(&mut bob, 3, "/only-bob", sasl_acl("bob")));
        let digest_only = vec![Acl {
            perms: PERMS_ALL,
            id: Id {
                scheme: "digest".into(),
                id: "dave:KX4w6Yh1QjXCKMXi1sC7FVWg5V0=".into(),
            },
        }];
        t.push(create(&mut bob, 4, "/only-dave", digest_only));

        let mut carol = connect(server);
        t.extend(sasl_login(&mut carol, 1, "carol", "carolsecret"));
        t.push(who_am_i(&mut carol, 3));
        t.push(get_data(&mut carol, 4, "/only-bob"));
        t.push(get_data(&mut carol, 5, "/only-dave"));
        assert_eq!(t[7..9], ["get /only-bob err=0", "get /only-dave err=0"]);

        let mut old = connect(server);
        t.extend(sasl_login(&mut old, 1, "super", "adminsecret"));
        t.push(closed_line(&mut old));
        let mut sup = connect(server);
        t.extend(sasl_login(&mut sup, 1, "super", "override"));
        t.push(get_data(&mut sup, 3, "/only-bob"));
        t.push(get_data(&mut sup, 4, "/only-dave"));
        assert_eq!(t[10], "sasl err=-115 token=null");
        assert_eq!(
            t[13..],
            [
                "sasl err=0 token=rspauth=<32 hex>",
                "get /only-bob err=0",
                "get /only-dave err=-102"
            ]
        );
        t
    });
}

/// `sessionRequireClientSASLAuth=true`: a request before SASL gets −124 and the
/// connection closes; a digest addauth does not count; a failed exchange is answered
/// −124 too; after a good exchange requests are served.
#[test]
fn session_require_client_sasl_auth() {
    both(&[("sessionRequireClientSASLAuth", "true")], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.push(exists(&mut c, 1));
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.push(add_auth(&mut c, "digest", "dave:pw"));
        t.push(exists(&mut c, 1));
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "wrong"));
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "bobsecret"));
        t.push(exists(&mut c, 3));
        assert_eq!(t[0..2], ["exists / err=-124", "connection closed"]);
        assert_eq!(t[3..5], ["exists / err=-124", "connection closed"]);
        assert_eq!(t[6..8], ["sasl err=-124 token=null", "connection closed"]);
        assert_eq!(t[t.len() - 1], "exists / err=0");
        t
    });
}

/// `enforce.auth.enabled=true` with `enforce.auth.schemes=digest`: unauthenticated
/// requests get −124 and the connection closes; after a digest addauth they are served.
#[test]
fn enforce_auth_schemes_digest() {
    let extra = [
        ("enforce.auth.enabled", "true"),
        ("enforce.auth.schemes", "digest"),
    ];
    both(&extra, |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.push(exists(&mut c, 1));
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "bobsecret"));
        t.push(exists(&mut c, 3));
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.push(add_auth(&mut c, "digest", "dave:pw"));
        t.push(exists(&mut c, 1));
        assert_eq!(t[0..2], ["exists / err=-124", "connection closed"]);
        assert_eq!(t[t.len() - 1], "exists / err=0");
        t
    });
}

/// Garbage during an exchange: a response that is not DIGEST-MD5 is AuthFailed and
/// closes the connection; so is a token after the exchange completed. The server
/// carries on.
#[test]
fn garbage_during_a_sasl_exchange() {
    both(&[], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.push(sasl(&mut c, 1, b"").0);
        t.push(sasl(&mut c, 2, b"\xff\x00,,=\"unterminated").0);
        t.push(closed_line(&mut c));
        // DIGEST-MD5 has no initial response, but a non-empty first token is answered
        // with the challenge all the same; garbage after it fails.
        let mut c = connect(server);
        t.push(sasl(&mut c, 1, b"username=\"bob\",response=00").0);
        t.push(sasl(&mut c, 2, b"username=\"bob\",response=00").0);
        t.push(closed_line(&mut c));
        let mut c = connect(server);
        t.extend(sasl_login(&mut c, 1, "bob", "bobsecret"));
        // A token after the exchange completed.
        t.push(sasl(&mut c, 3, b"more").0);
        t.push(closed_line(&mut c));
        assert_eq!(t[1..3], ["sasl err=-115 token=null", "connection closed"]);
        assert_eq!(
            t[3..6],
            [
                "sasl err=0 token=challenge",
                "sasl err=-115 token=null",
                "connection closed"
            ]
        );
        t
    });
}

/// `letAnySaslUserDoX=anyone-sasl`: an ACL entry `sasl:anyone-sasl` admits every
/// connection holding a sasl id, and nobody else.
#[test]
fn let_any_sasl_user_do_x() {
    both(&[("letAnySaslUserDoX", "anyone-sasl")], |server| {
        let mut t = Vec::new();
        let mut bob = connect(server);
        t.extend(sasl_login(&mut bob, 1, "bob", "bobsecret"));
        t.push(create(&mut bob, 3, "/any-sasl", sasl_acl("anyone-sasl")));
        let mut carol = connect(server);
        t.extend(sasl_login(&mut carol, 1, "carol", "carolsecret"));
        t.push(get_data(&mut carol, 3, "/any-sasl"));
        let mut anon = connect(server);
        t.push(get_data(&mut anon, 1, "/any-sasl"));
        assert_eq!(t[2], "create /any-sasl err=0");
        assert_eq!(t[5..], ["get /any-sasl err=0", "get /any-sasl err=-102"]);
        t
    });
}

/// A write pipelined right behind a failing SASL response is never executed: the
/// server stops reading the connection once the exchange failed.
#[test]
fn write_pipelined_behind_a_failed_exchange_is_not_executed() {
    both(&[], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.push(sasl(&mut c, 1, b"").0);
        let mut bytes = RequestHeader {
            xid: 2,
            r#type: OP_SASL,
        }
        .to_bytes();
        GetSaslRequest {
            token: b"username=\"bob\",response=00".to_vec().into(),
        }
        .encode(&mut bytes);
        let mut batch = frame(&bytes);
        let mut create_bytes = RequestHeader {
            xid: 3,
            r#type: OP_CREATE,
        }
        .to_bytes();
        CreateRequest {
            path: "/smuggled".into(),
            data: b"x".to_vec().into(),
            acl: vec![Acl {
                perms: PERMS_ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: 0,
        }
        .encode(&mut create_bytes);
        batch.extend_from_slice(&frame(&create_bytes));
        c.write_all(&batch).expect("send the batch");
        let first = read_frame(&mut c).map(|f| {
            let h = ReplyHeader::decode(&mut ferrokeeper_net::Reader::new(&f)).expect("header");
            format!("xid={} err={}", h.xid, h.err)
        });
        t.push(format!("{first:?}"));
        t.push(format!("then: {:?}", read_frame(&mut c).map(|f| f.len())));
        let mut other = connect(server);
        t.push(get_data(&mut other, 1, "/smuggled"));
        assert_eq!(
            t[1..],
            [
                "Some(\"xid=2 err=-115\")",
                "then: None",
                "get /smuggled err=-101"
            ]
        );
        t
    });
}

/// The `sasl` scheme validates ids as Kerberos names (InvalidACL −114 otherwise) and
/// cannot be claimed with an auth packet (AuthFailed).
#[test]
fn sasl_acl_ids_are_validated_and_not_claimable() {
    both(&[], |server| {
        let mut t = Vec::new();
        let mut c = connect(server);
        t.push(create(&mut c, 1, "/bad-sasl-id", sasl_acl("a@b@c")));
        t.push(create(
            &mut c,
            2,
            "/kerberos-id",
            sasl_acl("zk/host@EXAMPLE.COM"),
        ));
        t.push(add_auth(&mut c, "sasl", "bob"));
        assert_eq!(
            t[0..2],
            ["create /bad-sasl-id err=-114", "create /kerberos-id err=0"]
        );
        t
    });
}

/// Without `authProvider.N` naming the sasl provider, a `sasl` ACL is InvalidACL.
#[test]
fn sasl_acl_without_the_provider_is_invalid() {
    let mut transcripts = Vec::new();
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let server = Server::start_on_port_with(kind, free_port(), &[], &Launch::default());
        let mut c = connect(&server);
        transcripts.push(create(&mut c, 1, "/no-provider", sasl_acl("bob")));
    }
    assert_eq!(transcripts, ["create /no-provider err=-114"; 2]);
}

// ------------------------------------------------------------------ real clients

/// Whether Python has kazoo and pure-sasl; the reason to skip when not.
fn kazoo_missing(python: &str) -> Option<String> {
    let probe = Command::new(python)
        .args(["-c", "import kazoo, puresasl"])
        .output();
    match probe {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Some(e.to_string()),
    }
}

fn kazoo(kind: Kind) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if let Some(why) = kazoo_missing(&python) {
        eprintln!(
            "SKIPPED: kazoo with pure-sasl is not importable by {python} ({why}); \
             `python3 -m pip install kazoo pure-sasl` (tests/run.sh does it)"
        );
        return;
    }
    let server = start(kind, &[]);
    let mut command = Command::new(&python);
    command
        .arg("-u")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross/kazoo_sasl.py"))
        .arg(format!("127.0.0.1:{}", server.port))
        .arg("/kazoo-sasl");
    let (ok, output) = run_client(command, "", &server.dir.join("kazoo.out"));
    let wanted: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
        .collect();
    assert!(
        ok,
        "kazoo SASL checks against {kind:?}:\n{output}\n--- server log ---\n{}",
        server.log()
    );
    println!("{}", wanted.join("\n"));
}

#[test]
fn kazoo_digest_md5_java() {
    kazoo(Kind::JavaZk);
}

#[test]
fn kazoo_digest_md5_ferrokeeper() {
    kazoo(Kind::Ferrokeeper);
}

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// zkCli.sh (the Java client) logs in with the JAAS `Client` section: it sees
/// SaslAuthenticated, whoami shows `sasl: bob`, and a `sasl:bob` ACL admits it. With
/// the `ClientWrong` section it sees AuthFailed and is no longer connected.
fn zkcli(kind: Kind) {
    assert!(
        Path::new(ZKCLI).exists(),
        "zkCli.sh is missing: tests/run.sh installs Debian's zookeeper package"
    );
    let server = start(kind, &[]);
    let run = |section: &str, input: &str, name: &str| {
        let mut command = Command::new(ZKCLI);
        command
            .arg("-server")
            .arg(format!("127.0.0.1:{}", server.port))
            .env(
                "CLIENT_JVMFLAGS",
                format!(
                    "-Djava.security.auth.login.config={} -Dzookeeper.sasl.clientconfig={section}",
                    jaas_path().display()
                ),
            );
        let (_, output) = run_client(command, input, &server.dir.join(name));
        output
    };
    let good = run(
        "Client",
        "whoami\ncreate /zkcli-sasl x\nsetAcl /zkcli-sasl sasl:bob:cdrwa\ngetAcl /zkcli-sasl\nget /zkcli-sasl\nquit\n",
        "zkcli-good.out",
    );
    let lines: Vec<&str> = good.lines().map(str::trim).collect();
    for want in [
        "WatchedEvent state:SaslAuthenticated type:None path:null",
        "sasl: bob",
        "ip: 127.0.0.1",
        "Created /zkcli-sasl",
        "'sasl,'bob",
        ": cdrwa",
        "x",
    ] {
        assert!(
            lines.contains(&want),
            "{kind:?}: zkCli.sh did not print {want:?}:\n{good}\n--- server log ---\n{}",
            server.log()
        );
    }
    // The shell may run `get` before or after the failure arrives ("Not connected" or
    // "KeeperErrorCode = AuthFailed"): either way it must not read the data.
    let bad = run("ClientWrong", "get /zkcli-sasl\nquit\n", "zkcli-bad.out");
    let lines: Vec<&str> = bad.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"WatchedEvent state:AuthFailed type:None path:null")
            && !lines.contains(&"x"),
        "{kind:?}: zkCli.sh with a wrong password:\n{bad}\n--- server log ---\n{}",
        server.log()
    );
}

#[test]
fn zkcli_digest_md5_java() {
    zkcli(Kind::JavaZk);
}

#[test]
fn zkcli_digest_md5_ferrokeeper() {
    zkcli(Kind::Ferrokeeper);
}
