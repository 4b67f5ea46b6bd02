//! HTTPS on the AdminServer, beside Apache ZooKeeper 3.8's own (`JettyAdminServer` with
//! Debian's Jetty 9.4 jars), both given the same `zoo.cfg`:
//!
//! * `admin.forceHttps=true`: HTTPS only, with the `ssl.quorum.keyStore.*` and
//!   `ssl.quorum.trustStore.*` stores; curl checks the certificate against the CA
//!   (`--cacert`) and with `-k`. A plain-text request gets the same bytes from both
//!   servers (the JDK's fatal `internal_error` alert, then the close) and curl fails on it.
//!   Replies carry Jetty's `Strict-Transport-Security` header.
//! * `admin.portUnification=true`: HTTP and HTTPS on the one port, the HSTS header only
//!   on HTTPS.
//! * A trust store that is not configured: Java's AdminServer does not start (its
//!   constructor throws) and the server runs on without it; ferrokeeper the same.
//! * `admin.needClientAuth=true` is ZooKeeper 3.9 only (3.8 ignores it and never asks
//!   for a certificate), so it is checked on ferrokeeper alone: without a client
//!   certificate the handshake fails, with one the CA signed the command answers.
//!   `ssl.quorum.enabledProtocols` and `ssl.quorum.ciphersuites` are 3.9 only as well.
//!
//! Tools: `openssl` (the PKI), `keytool` (the JKS stores, which both servers read),
//! `curl`. A missing tool or jar skips the test with the reason on stderr.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::pki::{have, Pki, STORE_PASSWORD};
use common::{free_port, Kind, Launch, Server};

/// The bytes the JDK's TLS engine (under Jetty, in ZooKeeper 3.8) sends a client whose
/// first bytes are not TLS: an alert record, TLS 1.2, fatal `internal_error`.
const NOT_TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

/// Why this test cannot run here, if it cannot.
fn missing_tools(java: bool) -> Option<String> {
    for (tool, probe) in [
        ("openssl", &["version"][..]),
        ("keytool", &["-help"][..]),
        ("curl", &["--version"][..]),
    ] {
        if !have(tool, probe) {
            return Some(format!("{tool} is not installed"));
        }
    }
    if java {
        if !Path::new("/usr/share/java/zookeeper.jar").exists() {
            return Some("Java ZooKeeper is not installed (tests/run.sh installs it)".into());
        }
        if let Some(jar) = common::missing_java_admin_jar() {
            return Some(format!(
                "{jar} is missing (apt-get install libjetty9-java libjackson2-databind-java)"
            ));
        }
    }
    None
}

/// The `ssl.quorum.*` lines for both JKS stores of `pki`.
fn quorum_stores(pki: &Pki) -> Vec<(String, String)> {
    vec![
        (
            "ssl.quorum.keyStore.location".into(),
            pki.path("keystore.jks"),
        ),
        ("ssl.quorum.keyStore.password".into(), STORE_PASSWORD.into()),
        (
            "ssl.quorum.trustStore.location".into(),
            pki.path("truststore.jks"),
        ),
        (
            "ssl.quorum.trustStore.password".into(),
            STORE_PASSWORD.into(),
        ),
    ]
}

/// The PKI with its JKS stores (`missing_tools` has made sure keytool is there).
fn pki() -> Pki {
    let pki = Pki::new();
    assert!(pki.make_jks(), "keytool");
    pki
}

/// A server of `kind` with its AdminServer on a free port and these extra lines.
fn start(kind: Kind, lines: &[(String, String)]) -> (Server, u16) {
    let admin = free_port();
    let admin_s = admin.to_string();
    let mut cfg: Vec<(&str, &str)> = vec![
        ("admin.enableServer", "true"),
        ("admin.serverAddress", "127.0.0.1"),
        ("admin.serverPort", admin_s.as_str()),
    ];
    cfg.extend(lines.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let launch = Launch {
        java_admin_server: true,
        ..Launch::default()
    };
    (Server::start_with(kind, &cfg, &launch), admin)
}

/// What curl got: its exit status, the response head (status line and headers, lower
/// case) and the body.
struct Curl {
    ok: bool,
    head: String,
    body: String,
}

fn curl(url: &str, extra: &[&str]) -> Curl {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    Curl {
        ok: out.status.success(),
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// Sends a plain-text HTTP request and reads what comes back until the server closes.
fn plain_text_exchange(port: u16) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"GET /commands/ruok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

const HSTS: &str = "strict-transport-security: max-age=86400; includesubdomains";

/// ruok's JSON, as both servers print it.
fn is_ruok(body: &str) -> bool {
    body.contains("\"command\" : \"ruok\"") && body.contains("\"error\" : null")
}

#[test]
fn force_https_serves_tls_only_as_zookeeper() {
    if let Some(why) = missing_tools(true) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let pki = pki();
    let mut lines = quorum_stores(&pki);
    lines.push(("admin.forceHttps".into(), "true".into()));
    let mut alerts = Vec::new();
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let (_server, port) = start(kind, &lines);
        let https = format!("https://localhost:{port}/commands/ruok");
        let verified = curl(&https, &["--cacert", &pki.path("ca.pem")]);
        assert!(
            verified.ok,
            "{kind:?}: curl --cacert failed: {}",
            verified.head
        );
        assert!(
            verified.head.starts_with("http/1.1 200"),
            "{kind:?}: {}",
            verified.head
        );
        assert!(
            verified.head.contains(HSTS),
            "{kind:?}: no HSTS: {}",
            verified.head
        );
        assert!(verified.head.contains("content-type: application/json"));
        assert!(is_ruok(&verified.body), "{kind:?}: {}", verified.body);
        let insecure = curl(
            &format!("https://127.0.0.1:{port}/commands/is_read_only"),
            &["-k"],
        );
        assert!(insecure.ok && insecure.body.contains("\"read_only\" : false"));
        let plain = curl(&format!("http://127.0.0.1:{port}/commands/ruok"), &[]);
        assert!(
            !plain.ok,
            "{kind:?}: plain HTTP answered on a forceHttps port"
        );
        alerts.push(plain_text_exchange(port));
    }
    assert_eq!(
        alerts[0], NOT_TLS_ALERT,
        "Java's answer to plain text changed"
    );
    assert_eq!(
        alerts[1], alerts[0],
        "ferrokeeper answers plain text unlike Java"
    );
}

#[test]
fn port_unification_takes_http_and_https_as_zookeeper() {
    if let Some(why) = missing_tools(true) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let pki = pki();
    let mut lines = quorum_stores(&pki);
    lines.push(("admin.portUnification".into(), "true".into()));
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        let (_server, port) = start(kind, &lines);
        let https = curl(
            &format!("https://localhost:{port}/commands/ruok"),
            &["--cacert", &pki.path("ca.pem")],
        );
        assert!(https.ok && is_ruok(&https.body), "{kind:?}: {}", https.head);
        assert!(https.head.contains(HSTS), "{kind:?}: {}", https.head);
        let plain = curl(&format!("http://127.0.0.1:{port}/commands/ruok"), &[]);
        assert!(plain.ok && is_ruok(&plain.body), "{kind:?}: {}", plain.head);
        assert!(
            !plain.head.contains("strict-transport-security"),
            "{kind:?}: HSTS on plain HTTP: {}",
            plain.head
        );
    }
}

#[test]
fn a_store_that_does_not_load_leaves_the_server_without_its_admin_server() {
    if let Some(why) = missing_tools(true) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let pki = pki();
    // The keystore only: Java loads the trust store too and fails without one.
    let lines: Vec<(String, String)> = quorum_stores(&pki)
        .into_iter()
        .filter(|(k, _)| k.starts_with("ssl.quorum.keyStore"))
        .chain([("admin.forceHttps".to_string(), "true".to_string())])
        .collect();
    for kind in [Kind::JavaZk, Kind::Ferrokeeper] {
        // `start` waits for ruok on the client port: the server runs.
        let (server, port) = start(kind, &lines);
        assert_eq!(server.four_letter("ruok"), "imok");
        let refused = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(
            refused.is_err(),
            "{kind:?}: the AdminServer listens although its trust store is missing"
        );
    }
}

#[test]
fn need_client_auth_asks_for_a_certificate_the_trust_store_signed() {
    if let Some(why) = missing_tools(false) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    // ZooKeeper 3.9's `admin.needClientAuth`; 3.8 has no such key, so no Java here.
    let pki = pki();
    let mut lines = quorum_stores(&pki);
    lines.push(("admin.forceHttps".into(), "true".into()));
    lines.push(("admin.needClientAuth".into(), "true".into()));
    let (_server, port) = start(Kind::Ferrokeeper, &lines);
    let url = format!("https://localhost:{port}/commands/ruok");
    let without = curl(&url, &["--cacert", &pki.path("ca.pem")]);
    assert!(!without.ok, "answered without a client certificate");
    let with = curl(
        &url,
        &[
            "--cacert",
            &pki.path("ca.pem"),
            "--cert",
            &pki.path("client.pem"),
            "--key",
            &pki.path("client.key"),
        ],
    );
    assert!(with.ok && is_ruok(&with.body), "{}", with.head);
}
