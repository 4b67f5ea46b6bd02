//! TLS on the client ports over real sockets, ferrokeeper beside Apache ZooKeeper 3.8
//! (its Netty connection factory) with the same stores:
//! - `secureClientPort` with PEM, PKCS12 and JKS stores (passwords inline and from
//!   `passwordPath`), X.509 v3 and v1 client certificates, `ssl.clientAuth` need/want;
//! - x509 ACLs by subject DN in RFC 2253 form, and `X509AuthenticationProvider.superUser`;
//! - `client.portUnification` (TLS and plaintext on `clientPort`);
//! - four-letter words over TLS (`openssl s_client`), the Java client's `whoami` over TLS
//!   (Netty client socket), a client stalling mid-handshake, a wrong keystore password.
//!
//! Certificates are made in each test with the `openssl` command and, for JKS, Java's
//! `keytool`; kazoo (Python) and the Java client are the clients. A test whose tool is
//! missing says so and skips. Test servers use ports 24000–24999.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{have, run, Pki, CLIENT_V1_DN, CLIENT_V3_DN, STORE_PASSWORD};
use common::{free_port, Kind, Server};

/// Says why a test skips, once, on stderr (visible with `--nocapture` and in nextest's
/// output of the test).
fn skip(why: &str) -> bool {
    eprintln!("SKIPPED: {why}");
    true
}

fn missing_openssl() -> bool {
    !have("openssl", &["version"]) && skip("the openssl command is not installed")
}

fn missing_kazoo() -> bool {
    !have("python3", &["-c", "import kazoo"]) && skip("python3 with kazoo is not installed")
}

fn missing_java() -> bool {
    !(Path::new("/usr/share/java/zookeeper.jar").exists()
        && Path::new("/usr/share/java/netty-handler.jar").exists()
        && have("java", &["-version"]))
        && skip("Java ZooKeeper with Netty jars is not installed (tests/run.sh installs it)")
}

/// zoo.cfg lines for a secure port with PEM stores.
fn pem_config(pki: &Pki, secure_port: u16) -> Vec<(String, String)> {
    vec![
        ("secureClientPort".into(), secure_port.to_string()),
        (
            "serverCnxnFactory".into(),
            "org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
        ),
        // No password: Java's `PemReader` takes a keystore password to mean the key
        // is encrypted ("overrun" on a plain key).
        ("ssl.keyStore.location".into(), pki.path("keystore.pem")),
        ("ssl.trustStore.location".into(), pki.path("ca.pem")),
        // Java checks a client certificate's names against the client's address by
        // default; the v1 certificate has no SAN to match.
        ("ssl.hostnameVerification".into(), "false".into()),
    ]
}

fn start(kind: Kind, client_port: u16, config: &[(String, String)]) -> Server {
    let extra: Vec<(&str, &str)> = config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Server::start_on_port(kind, client_port, &extra)
}

/// Which client certificate kazoo presents.
#[derive(Clone, Copy)]
enum Cert {
    V3,
    V1,
    None,
}

/// Runs `tests/cross/kazoo_tls.py` and returns its one line of output.
fn kazoo(pki: &Pki, port: u16, tls: bool, cert: Cert, verb: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross/kazoo_tls.py");
    let (ca, crt, key) = match (tls, cert) {
        (false, _) => ("-".to_string(), "-".to_string(), "-".to_string()),
        (true, Cert::None) => (pki.path("ca.pem"), "-".into(), "-".into()),
        (true, Cert::V3) => (
            pki.path("ca.pem"),
            pki.path("client.pem"),
            pki.path("client.key"),
        ),
        (true, Cert::V1) => (
            pki.path("ca.pem"),
            pki.path("client-v1.pem"),
            pki.path("client-v1.key"),
        ),
    };
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("127.0.0.1:{port}"))
        .args([ca, crt, key])
        .args(verb)
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        panic!(
            "kazoo printed nothing ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.lines().last().unwrap_or_default().to_string()
}

/// `openssl s_client` to the server on `port`, trusting the test CA and presenting the
/// v3 client certificate.
fn s_client(pki: &Pki, port: u16) -> Command {
    let mut c = Command::new("openssl");
    c.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-CAfile", &pki.path("ca.pem")])
        .args(["-cert", &pki.path("client.pem")])
        .args(["-key", &pki.path("client.key")]);
    c
}

/// A four-letter word over TLS with `openssl s_client`: its whole reply.
fn four_letter_tls(pki: &Pki, port: u16, word: &str) -> String {
    // Java binds its secure port after the plain one, which is what `start` waited for:
    // under load a word sent at once found no listener and read "".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on the secure port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut child = s_client(pki, port)
        .arg("-quiet")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(word.as_bytes())
        .expect("write the word");
    // `-quiet` ignores the end of stdin: s_client ends when the server closes.
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The x509 scenario, run against both servers (secure port, PEM stores, `need`):
/// the v3 client protects a node with its DN, reads it, the v1 client (the superuser
/// here) reads it too, a plaintext client may not.
fn x509_scenario(kind: Kind, pki: &Pki) -> Vec<String> {
    let (plain, secure) = (free_port(), free_port());
    let mut config = pem_config(pki, secure);
    config.push((
        "X509AuthenticationProvider.superUser".into(),
        CLIENT_V1_DN.into(),
    ));
    let server = start(kind, plain, &config);
    let steps = vec![
        kazoo(
            pki,
            secure,
            true,
            Cert::V3,
            &["create_x509", "/x509-acl", CLIENT_V3_DN],
        ),
        kazoo(pki, secure, true, Cert::V3, &["get", "/x509-acl"]),
        kazoo(pki, secure, true, Cert::V1, &["get", "/x509-acl"]),
        kazoo(pki, plain, false, Cert::None, &["get", "/x509-acl"]),
        kazoo(
            pki,
            secure,
            true,
            Cert::V1,
            &["create_x509", "/x509-bad", "no equals"],
        ),
        kazoo(pki, secure, true, Cert::V1, &["roundtrip", "/v1"]),
        four_letter_tls(pki, secure, "ruok"),
    ];
    drop(server);
    steps
}

#[test]
fn x509_acls_by_subject_dn_match_java() {
    if missing_openssl() || missing_kazoo() {
        return;
    }
    let pki = Pki::new();
    let fk = x509_scenario(Kind::Ferrokeeper, &pki);
    assert_eq!(
        fk,
        [
            "created",
            "secret",
            "secret",
            "NoAuthError",
            "InvalidACLError",
            "ok",
            "imok"
        ]
    );
    if missing_java() {
        return;
    }
    assert_eq!(x509_scenario(Kind::JavaZk, &pki), fk);
}

#[test]
fn client_auth_need_want_none() {
    if missing_openssl() || missing_kazoo() {
        return;
    }
    let pki = Pki::new();
    for (auth, without_cert, with_cert) in [
        ("need", "connect-failed", "ok"),
        ("want", "ok", "ok"),
        ("none", "ok", "ok"),
    ] {
        let (plain, secure) = (free_port(), free_port());
        let mut config = pem_config(&pki, secure);
        config.retain(|(k, _)| k != "ssl.keyStore.location");
        config.push(("ssl.keyStore.location".into(), pki.path("keystore-enc.pem")));
        config.push(("ssl.keyStore.password".into(), STORE_PASSWORD.into()));
        config.push(("ssl.clientAuth".into(), auth.into()));
        let server = start(Kind::Ferrokeeper, plain, &config);
        let without = kazoo(&pki, secure, true, Cert::None, &["roundtrip", "/nocert"]);
        assert!(
            without.starts_with(without_cert),
            "clientAuth={auth}, no certificate: {without}\n{}",
            server.log()
        );
        let with = kazoo(&pki, secure, true, Cert::V3, &["roundtrip", "/cert"]);
        assert_eq!(with, with_cert, "clientAuth={auth}, certificate");
        if auth == "want" {
            // With `want` and no certificate the client has no x509 id.
            let made = kazoo(
                &pki,
                secure,
                true,
                Cert::V3,
                &["create_x509", "/w", CLIENT_V3_DN],
            );
            assert_eq!(made, "created");
            assert_eq!(
                kazoo(&pki, secure, true, Cert::None, &["get", "/w"]),
                "NoAuthError"
            );
        }
    }
}

/// A keystore, a truststore, and extra config lines (the `.type` keys).
type StoreVariant = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// JKS and PKCS12 stores, by extension and by `.type`, with passwords inline and from a
/// file; the Java server is started with the same stores to show they are Java's.
#[test]
fn jks_and_pkcs12_stores() {
    if missing_openssl() || missing_kazoo() {
        return;
    }
    let pki = Pki::new();
    if !pki.make_jks() {
        skip("keytool (Java) is not installed: no JKS stores");
        return;
    }
    let variants: [StoreVariant; 3] = [
        ("keystore.jks", "truststore.p12", &[]),
        ("keystore.p12", "truststore.jks", &[]),
        (
            "keystore.jks",
            "truststore.jks",
            &[("ssl.keyStore.type", "jks"), ("ssl.trustStore.type", "JKS")],
        ),
    ];
    let mut kinds = vec![Kind::Ferrokeeper];
    if !missing_java() {
        kinds.push(Kind::JavaZk);
    }
    for kind in kinds {
        for (i, (keystore, truststore, types)) in variants.iter().enumerate() {
            let (plain, secure) = (free_port(), free_port());
            let mut config = pem_config(&pki, secure);
            config.retain(|(k, _)| {
                !k.starts_with("ssl.keyStore") && !k.starts_with("ssl.trustStore")
            });
            config.push(("ssl.keyStore.location".into(), pki.path(keystore)));
            config.push(("ssl.trustStore.location".into(), pki.path(truststore)));
            // The password from a file for one store, inline for the other.
            config.push(("ssl.keyStore.passwordPath".into(), pki.path("password.txt")));
            config.push(("ssl.trustStore.password".into(), STORE_PASSWORD.into()));
            for (k, v) in *types {
                config.push((k.to_string(), v.to_string()));
            }
            let server = start(kind, plain, &config);
            let got = kazoo(
                &pki,
                secure,
                true,
                Cert::V3,
                &["roundtrip", &format!("/s{i}")],
            );
            assert_eq!(
                got,
                "ok",
                "{kind:?} {keystore} {truststore}:\n{}",
                server.log()
            );
            let got = kazoo(
                &pki,
                secure,
                true,
                Cert::V1,
                &["roundtrip", &format!("/v{i}")],
            );
            assert_eq!(got, "ok", "{kind:?} {keystore} {truststore}, v1 client");
        }
    }
}

#[test]
fn port_unification_serves_tls_and_plaintext_on_the_client_port() {
    if missing_openssl() || missing_kazoo() {
        return;
    }
    let pki = Pki::new();
    let mut kinds = vec![Kind::Ferrokeeper];
    if !missing_java() {
        kinds.push(Kind::JavaZk);
    }
    for kind in kinds {
        let plain = free_port();
        let mut config = pem_config(&pki, free_port());
        config.retain(|(k, _)| k != "secureClientPort");
        config.push(("client.portUnification".into(), "true".into()));
        // Java registers the x509 provider by itself only for a secure port; without it
        // a unified port closes every TLS client that sends a certificate ("X509 Auth
        // provider not found"). ferrokeeper registers it for either.
        config.push((
            "authProvider.x509".into(),
            "org.apache.zookeeper.server.auth.X509AuthenticationProvider".into(),
        ));
        let server = start(kind, plain, &config);
        assert_eq!(
            kazoo(&pki, plain, true, Cert::V3, &["roundtrip", "/tls"]),
            "ok",
            "{kind:?} TLS on the unified port:\n{}",
            server.log()
        );
        assert_eq!(
            kazoo(&pki, plain, false, Cert::None, &["roundtrip", "/plain"]),
            "ok"
        );
        assert_eq!(server.four_letter("ruok"), "imok");
        assert_eq!(four_letter_tls(&pki, plain, "ruok"), "imok", "{kind:?}");
    }
}

/// Four-letter words over TLS answer as Java's do (the reply, then the close).
#[test]
fn four_letter_words_over_tls_match_java() {
    if missing_openssl() || missing_java() {
        return;
    }
    let pki = Pki::new();
    let (mut replies, mut logs) = (Vec::new(), Vec::new());
    for kind in [Kind::Ferrokeeper, Kind::JavaZk] {
        let secure = free_port();
        let server = start(kind, free_port(), &pem_config(&pki, secure));
        let keys = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.split([':', '=']).next().unwrap_or("").trim().to_string())
                .collect()
        };
        replies.push((
            four_letter_tls(&pki, secure, "ruok"),
            keys(&four_letter_tls(&pki, secure, "srvr")),
            four_letter_tls(&pki, secure, "nope"),
        ));
        logs.push(server.log());
    }
    assert_eq!(
        replies[0], replies[1],
        "ferrokeeper, then Java:\n{}",
        logs[1]
    );
}

/// The Java client over TLS (Netty client socket) sees its x509 identity with `whoami`,
/// on both servers alike.
#[test]
fn java_client_over_tls_whoami_matches_java() {
    if missing_openssl() || missing_java() {
        return;
    }
    let pki = Pki::new();
    if !pki.make_jks() {
        skip("keytool (Java) is not installed");
        return;
    }
    // The client's own keystore: its certificate and key as PKCS12.
    run(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-in",
            "client.pem",
            "-inkey",
            "client.key",
        ])
        .args(["-name", "client", "-out", "client.p12", "-passout"])
        .arg(format!("pass:{STORE_PASSWORD}"))
        .current_dir(&pki.dir));
    let mut outputs = Vec::new();
    for kind in [Kind::Ferrokeeper, Kind::JavaZk] {
        let secure = free_port();
        let server = start(kind, free_port(), &pem_config(&pki, secure));
        let jars = [
            "zookeeper.jar",
            "zookeeper-jute.jar",
            "slf4j-api.jar",
            "slf4j-nop.jar",
            "netty-handler.jar",
            "netty-transport.jar",
            "netty-common.jar",
            "netty-buffer.jar",
            "netty-codec.jar",
            "netty-resolver.jar",
            "netty-transport-native-epoll.jar",
            "netty-transport-native-unix-common.jar",
            "jline.jar",
        ]
        .map(|j| format!("/usr/share/java/{j}"))
        .join(":");
        let out = Command::new("java")
            .args([
                "-Dzookeeper.client.secure=true",
                "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            ])
            .arg(format!(
                "-Dzookeeper.ssl.keyStore.location={}",
                pki.path("client.p12")
            ))
            .arg(format!(
                "-Dzookeeper.ssl.keyStore.password={STORE_PASSWORD}"
            ))
            .arg(format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                pki.path("truststore.jks")
            ))
            .arg(format!(
                "-Dzookeeper.ssl.trustStore.password={STORE_PASSWORD}"
            ))
            .args(["-cp", &jars, "org.apache.zookeeper.ZooKeeperMain"])
            .args(["-server", &format!("127.0.0.1:{secure}"), "whoami"])
            .stdin(Stdio::null())
            .output()
            .expect("run the Java client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains(&format!("x509: {CLIENT_V3_DN}")),
            "{kind:?}: whoami over TLS:\n{text}\n{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        // Java keeps a connection's ids in a hash set, so whoami's order is the set's:
        // compare the ids as a set.
        let mut ids: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("x509:") || l.starts_with("ip:"))
            .map(str::to_string)
            .collect();
        ids.sort();
        outputs.push(ids);
    }
    assert_eq!(outputs[0], outputs[1], "ferrokeeper, then Java");
}

/// A client that stops in the middle of its handshake holds only its own connection:
/// other clients connect and work meanwhile, and the stalled one is dropped in the end.
#[test]
fn a_stalled_handshake_blocks_no_one() {
    if missing_openssl() || missing_kazoo() {
        return;
    }
    let pki = Pki::new();
    let (plain, secure) = (free_port(), free_port());
    let mut config = pem_config(&pki, secure);
    config.push(("client.portUnification".into(), "true".into()));
    let server = start(Kind::Ferrokeeper, plain, &config);
    // A TLS record header announcing a 255-byte handshake message that never comes, on
    // both TLS ports, and a unified-port connection that never sends a byte.
    let mut stalled = Vec::new();
    for p in [secure, plain] {
        let mut s = TcpStream::connect(("127.0.0.1", p)).expect("connect");
        s.write_all(&[0x16, 0x03, 0x01, 0x00, 0xff, 0x01])
            .expect("write a partial ClientHello");
        stalled.push(s);
    }
    stalled.push(TcpStream::connect(("127.0.0.1", plain)).expect("connect"));
    for i in 0..3 {
        assert_eq!(
            kazoo(
                &pki,
                secure,
                true,
                Cert::V3,
                &["roundtrip", &format!("/during{i}")]
            ),
            "ok"
        );
    }
    assert_eq!(
        kazoo(&pki, plain, false, Cert::None, &["roundtrip", "/p"]),
        "ok"
    );
    // The server drops each stalled connection (after its handshake timeout); the read
    // timeout only keeps a broken server from hanging the test.
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("set timeout");
        let mut buf = [0u8; 64];
        let closed = match s.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed,
            "a stalled connection was not closed:\n{}",
            server.log()
        );
    }
}

/// A keystore password that does not open the store stops the start, and the message
/// names the key to fix.
#[test]
fn a_wrong_keystore_password_stops_the_start_naming_the_key() {
    if missing_openssl() {
        return;
    }
    let pki = Pki::new();
    for (store, key_named) in [
        ("keystore.p12", "ssl.keyStore.password"),
        ("keystore-enc.pem", "ssl.keyStore.password"),
    ] {
        let dir = pki.dir.join(format!("wrong-{store}"));
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        let cfg = format!(
            "tickTime=2000\nclientPort={}\nclientPortAddress=127.0.0.1\ndataDir={}\n\
             secureClientPort={}\nssl.keyStore.location={}\nssl.keyStore.password=wrong\n\
             ssl.trustStore.location={}\n",
            free_port(),
            dir.join("data").display(),
            free_port(),
            pki.path(store),
            pki.path("ca.pem"),
        );
        std::fs::write(dir.join("zoo.cfg"), cfg).expect("write zoo.cfg");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
            .arg(dir.join("zoo.cfg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrokeeper");
        // Bounded wait so a server that wrongly starts cannot hang the suite.
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let status = status.unwrap_or_else(|| panic!("started with a wrong password:\n{text}"));
        assert!(!status.success(), "{store}: exit {status}:\n{text}");
        assert!(
            text.contains(key_named),
            "{store}: the error does not name {key_named}:\n{text}"
        );
    }
}

/// The subject of the certificate the server on `port` presents (`openssl s_client`),
/// as openssl prints it (`CN = localhost`), or why there is none.
fn served_subject(pki: &Pki, port: u16) -> String {
    let out = s_client(pki, port)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| format!("no certificate: {text}"))
}

/// `client.certReload=true`: when the keystore file changes, connections made after it
/// get the new certificate, as ZooKeeper 3.8.1+ does (its X509Util watches the store
/// files and rebuilds the SSL context). ferrokeeper only: the key is new in 3.7.2, 3.8.1
/// and 3.9.0, and Debian's 3.8.0 does not have it (run against it, it keeps serving the
/// old certificate). The limit on the wait only keeps a broken reload from hanging the
/// suite.
#[test]
fn cert_reload_serves_a_replaced_keystore_to_new_connections() {
    if missing_openssl() {
        return;
    }
    let pki = Pki::new();
    pki.sign("renewed", "/CN=renewed", Some("server.ext"));
    let renewed = format!("{}{}", pki.read("renewed.pem"), pki.read("renewed.key"));
    {
        let kind = Kind::Ferrokeeper;
        let live = format!("live-{kind:?}.pem");
        std::fs::copy(pki.dir.join("keystore.pem"), pki.dir.join(&live)).expect("copy store");
        let (plain, secure) = (free_port(), free_port());
        let mut config = pem_config(&pki, secure);
        config.retain(|(k, _)| k != "ssl.keyStore.location");
        config.push(("ssl.keyStore.location".into(), pki.path(&live)));
        config.push(("client.certReload".into(), "true".into()));
        let server = start(kind, plain, &config);
        let before = served_subject(&pki, secure);
        assert_eq!(before, "CN = localhost", "{kind:?} before the change");
        // Replace the store whole (write beside it, then rename), as a renewal tool would.
        let staged = pki.dir.join(format!("{live}.new"));
        std::fs::write(&staged, &renewed).expect("write the renewed store");
        std::fs::rename(&staged, pki.dir.join(&live)).expect("rename over the store");
        let started = Instant::now();
        let mut after = served_subject(&pki, secure);
        while after != "CN = renewed" && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(250));
            after = served_subject(&pki, secure);
        }
        assert_eq!(
            after,
            "CN = renewed",
            "{kind:?}: new connections still get the old certificate:\n{}",
            server.log()
        );
    }
}
