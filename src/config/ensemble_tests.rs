//! Tests of the ensemble configuration. Each rejection test names the ZooKeeper 3.8 check
//! it mirrors (`QuorumServer` is `QuorumPeer.QuorumServer`, `QPC` is `QuorumPeerConfig`).
//!
//! Debian's ZooKeeper 3.8.0 (`QuorumPeerMain zoo.cfg`) was run on these to confirm the
//! source reading: it exits on `standaloneEnabled=false` without server lines, on a
//! `clientPort` that differs from this server's line, on a missing `initLimit`, and on a
//! `myid` with no server line (when the peer starts); it runs with `server.1` and
//! `server.01` both given (keeping one of them), which ferrokeeper refuses.

use super::*;
use crate::config::{Config, SystemProperties};

/// Java's captures (see `src/admin/testdata/zk-3.8.0-ensemble/README.md`).
macro_rules! java {
    ($name:literal) => {
        include_str!(concat!("../admin/testdata/zk-3.8.0-ensemble/", $name))
    };
}

fn spec(value: &str) -> ServerSpec {
    ServerSpec::parse(7, value, false).expect("valid server line")
}

fn spec_err(value: &str) -> String {
    ServerSpec::parse(7, value, false).expect_err("invalid server line")
}

fn as_server(text: &str, my_id: u64) -> Result<(Config, Vec<String>), ConfigError> {
    Config::parse_as_server(text, &SystemProperties::empty(), my_id)
}

fn ok(text: &str, my_id: u64) -> (Config, Vec<String>) {
    as_server(text, my_id).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str, my_id: u64) -> String {
    match as_server(text, my_id) {
        Ok((c, _)) => panic!("{text}: accepted: {:?}", c.ensemble),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = "dataDir=/d\nclientPort=2181\ninitLimit=10\nsyncLimit=5\n";
const THREE: &str = "server.1=127.0.0.1:2889:3889\nserver.2=127.0.0.1:2890:3890\n\
                     server.3=127.0.0.1:2891:3891\n";

// ---- the server line's syntax (QuorumServer.initializeWithAddressString) ----

#[test]
fn config_server_line_host_ports() {
    let s = spec("zk1.example.com:2888:3888");
    assert_eq!(s.id, 7);
    assert_eq!(s.host, "zk1.example.com");
    assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
    assert_eq!(s.role, PeerRole::Participant);
    assert_eq!(s.client, None);
    assert_eq!(s.zookeeper_value(), "zk1.example.com:2888:3888:participant");
}

#[test]
fn config_server_line_roles_any_case() {
    assert_eq!(spec("h:1:2:participant").role, PeerRole::Participant);
    assert_eq!(spec("h:1:2:observer").role, PeerRole::Observer);
    assert_eq!(spec("h:1:2:OBSERVER").role, PeerRole::Observer);
    assert_eq!(spec("h:1:2:observer").zookeeper_value(), "h:1:2:observer");
}

#[test]
fn config_server_line_client_port_forms() {
    // `;port` is the wildcard address, which ZooKeeper writes as 0.0.0.0.
    let s = spec("h:1:2;2181");
    let client = s.client.clone().expect("client");
    assert_eq!((client.host.as_str(), client.port), ("0.0.0.0", 2181));
    assert!(client.is_wildcard());
    assert_eq!(s.zookeeper_value(), "h:1:2:participant;0.0.0.0:2181");
    let s = spec("h:1:2:observer;127.0.0.1:2181");
    assert_eq!(s.zookeeper_value(), "h:1:2:observer;127.0.0.1:2181");
    assert!(!s.client.expect("client").is_wildcard());
    // Java's String.split drops trailing empty pieces: a trailing ';' or ':' is no part.
    assert_eq!(spec("h:1:2;").client, None);
    assert_eq!(spec("h:1:2:").role, PeerRole::Participant);
}

#[test]
fn config_server_line_ipv6() {
    // Java prints IPv6 literals uncompressed (Inet6Address.getHostAddress), in brackets.
    let s = spec("[::1]:2888:3888:participant;[::1]:2181");
    assert_eq!(s.host, "0:0:0:0:0:0:0:1");
    assert_eq!(
        s.zookeeper_value(),
        "[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181"
    );
    let s = spec("[fe80::a:0:1]:1:2");
    assert_eq!(s.host, "fe80:0:0:0:0:a:0:1");
    // An IPv4-mapped address is an IPv4 address to Java.
    assert_eq!(spec("[::ffff:10.0.0.1]:1:2").host, "10.0.0.1");
}

#[test]
fn config_server_line_rejections() {
    let wrong_form = "expected host:quorumPort:electionPort";
    for (value, reason) in [
        ("h:1", wrong_form),
        ("h:1:2:observer:5", wrong_form),
        ("h:1:2;3;4", wrong_form),
        ("h:1:2;a:b:3", wrong_form),
        ("h:x:2", "quorum port \"x\" is not a number"),
        ("h:1: 2", "election port \" 2\" is not a number"),
        ("h:1:70000", "election port 70000 is out of range (1-65535)"),
        ("h:0:2", "quorum port 0 is out of range"),
        ("h:1:2;x", "client port \"x\" is not a number"),
        ("h:1:2;h:0", "client port 0 is out of range"),
        (
            "h:2888:2888",
            "the quorum port and the election port of server.7 are both 2888",
        ),
        ("h:1:2:leader", "unknown peer type \"leader\""),
        ("a:1:2|b:1:2", "several addresses for server 7"),
        ("a:1:2|b:1:2", "multiple address feature is disabled"),
        ("[::1:1:2", "starts with '[' but has no matching ']'"),
        ("[::1]", "has no port after the bracketed address"),
        ("[::1]:", "has no port after the bracketed address"),
        (":1:2", "the host is empty"),
    ] {
        let reason_got = spec_err(value);
        assert!(reason_got.contains(reason), "{value}: {reason_got}");
    }
}

#[test]
fn config_multi_address_lines() {
    // Refused unless the feature is on, as in ZooKeeper 3.6+.
    let two = "server.1=127.0.0.1:2889:3889|127.0.0.2:2989:3989\n\
               server.2=127.0.0.1:2890:3890\nserver.3=127.0.0.1:2891:3891\n";
    let e = err(&format!("{BASE}{two}"), 1);
    assert!(e.contains("multiple address feature is disabled"), "{e}");
    for key in ["multiAddress.enabled", "zookeeper.multiAddress.enabled"] {
        let (c, _) = ok(&format!("{BASE}{key}=TRUE\n{two}"), 1);
        let e = c.ensemble.expect("quorum");
        let me = e.me();
        assert_eq!(me.other_addresses.len(), 1);
        assert_eq!(
            me.zookeeper_value(),
            "127.0.0.1:2889:3889|127.0.0.2:2989:3989:participant"
        );
        assert_eq!(
            e.quorum_addrs(1).expect("literals"),
            ["127.0.0.1:2889", "127.0.0.2:2989"]
                .map(|a| a.parse::<SocketAddr>().expect("addr"))
                .to_vec()
        );
        assert_eq!(e.quorum_listen_addrs().expect("literals").len(), 2);
    }
    let spec = ServerSpec::parse(7, "a:1:2:observer|b:3:4:observer;2181", true).expect("valid");
    assert_eq!(spec.role, PeerRole::Observer);
    assert_eq!(spec.zookeeper_value(), "a:1:2|b:3:4:observer;0.0.0.0:2181");
    let mixed =
        ServerSpec::parse(7, "a:1:2:participant|b:3:4:observer", true).expect_err("mixed roles");
    assert!(mixed.contains("different roles"), "{mixed}");
    // The addresses of one server must not clash with another's.
    let clash = "multiAddress.enabled=true\nserver.1=127.0.0.1:2889:3889|127.0.0.1:2890:3999\n\
                 server.2=127.0.0.1:2890:3890\nserver.3=127.0.0.1:2891:3891\n";
    let e = err(&format!("{BASE}{clash}"), 1);
    assert!(e.contains("2890"), "{e}");
}

#[test]
fn config_server_line_errors_name_line_and_key() {
    let e = err(&format!("{BASE}{THREE}server.4=h:1\n"), 1);
    assert!(
        e.starts_with("line 8: invalid value \"h:1\" for server.4: expected host:"),
        "{e}"
    );
    let e = err(&format!("{BASE}server.x=h:1:2\n"), 1);
    assert!(
        e.contains("for server.x: the server id \"x\" is not a non-negative integer"),
        "{e}"
    );
    let e = err(&format!("{BASE}server.-1=h:1:2\n"), 1);
    assert!(e.contains("server.-1"), "{e}");
}

// ---- quorum mode or standalone (QPC.parseDynamicConfig, isDistributed) ----

#[test]
fn config_three_servers_make_an_ensemble() {
    let (c, w) = ok(&format!("{BASE}{THREE}"), 2);
    assert!(w.is_empty(), "{w:?}");
    let e = c.ensemble.expect("quorum mode");
    assert_eq!(e.my_id, 2);
    assert_eq!(c.server_id, 2);
    assert_eq!((e.init_limit, e.sync_limit, e.version), (10, 5, 0));
    assert_eq!(e.servers.len(), 3);
    assert_eq!(e.me().quorum_port, 2890);
    assert_eq!(e.role(), PeerRole::Participant);
    assert_eq!(e.participants().count(), 3);
    assert_eq!(e.observers().count(), 0);
    assert_eq!(
        e.quorum_addr(3).expect("literal"),
        "127.0.0.1:2891".parse::<SocketAddr>().expect("addr")
    );
    assert!(e.quorum_addr(9).is_err());
    assert_eq!(
        e.quorum_listen_addrs().expect("literal"),
        vec!["127.0.0.1:2890".parse::<SocketAddr>().expect("addr")]
    );
    // The client port stays zoo.cfg's: no server line has one.
    assert_eq!(c.client_port, 2181);
}

#[test]
fn config_one_server_line_is_standalone() {
    // HBase writes a single line; ZooKeeper logs an error and runs standalone.
    let (c, w) = ok(&format!("{BASE}server.1=127.0.0.1:2889:3889\n"), 1);
    assert!(c.ensemble.is_none());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("only one server line"), "{w:?}");
    // With standaloneEnabled=false it is an ensemble of one.
    let (c, _) = ok(
        &format!("{BASE}standaloneEnabled=false\nserver.1=127.0.0.1:2889:3889\n"),
        1,
    );
    assert_eq!(c.ensemble.expect("quorum mode").servers.len(), 1);
}

#[test]
fn config_standalone_line_gives_the_client_port() {
    // ZooKeeper's standalone server takes the client address QPC.setupClientPort chose.
    let (c, _) = ok(
        "dataDir=/d\nserver.1=127.0.0.1:2889:3889;127.0.0.1:2200\n",
        1,
    );
    assert!(c.ensemble.is_none());
    assert_eq!(c.client_port, 2200);
    assert_eq!(
        c.client_port_address,
        Some("127.0.0.1".parse::<IpAddr>().expect("ip"))
    );
}

#[test]
fn config_participant_count_warnings() {
    // QPC.parseDynamicConfig warns about 2 participants and about even numbers.
    let two = "server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\n";
    let (_, w) = ok(&format!("{BASE}{two}"), 1);
    assert!(w[0].contains("tolerates no server failure"), "{w:?}");
    let (_, w) = ok(&format!("{BASE}{THREE}server.4=127.0.0.1:5:6\n"), 1);
    assert!(w[0].contains("even number"), "{w:?}");
    // Observers do not count.
    let (c, w) = ok(
        &format!("{BASE}{THREE}server.4=127.0.0.1:5:6:observer\n"),
        4,
    );
    assert!(w.is_empty(), "{w:?}");
    let e = c.ensemble.expect("quorum");
    assert_eq!(e.role(), PeerRole::Observer);
    assert_eq!(e.observers().count(), 1);
}

// ---- rejections (QPC, QuorumPeer.start) ----

#[test]
fn config_rejects_observers_without_participants() {
    let e = err(&format!("{BASE}server.1=h:1:2:observer\n"), 1);
    assert_eq!(e, "observers without participants cannot form an ensemble");
}

#[test]
fn config_rejects_observers_next_to_a_standalone_participant() {
    let e = err(
        &format!("{BASE}server.1=h:1:2\nserver.2=h:3:4:observer\n"),
        1,
    );
    assert!(e.starts_with("observers need a quorum"), "{e}");
}

#[test]
fn config_rejects_standalone_disabled_without_participants() {
    let e = err(&format!("{BASE}standaloneEnabled=false\n"), 1);
    assert_eq!(
        e,
        "standaloneEnabled=false needs at least one participant server.N line"
    );
}

#[test]
fn config_rejects_missing_limits() {
    let e = err(&format!("dataDir=/d\nsyncLimit=5\n{THREE}"), 1);
    assert_eq!(e, "initLimit is not set");
    let e = err(&format!("dataDir=/d\ninitLimit=5\n{THREE}"), 1);
    assert_eq!(e, "syncLimit is not set");
    let e = err(&format!("{BASE}initLimit=0\n{THREE}"), 1);
    assert!(e.contains("for initLimit: must be at least 1"), "{e}");
}

#[test]
fn config_rejects_missing_myid() {
    // Config::parse knows no myid; ZooKeeper without dataDir/myid fails the same way.
    let e = Config::parse(&format!("{BASE}{THREE}"))
        .expect_err("no myid")
        .to_string();
    assert_eq!(
        e,
        "myid file is missing: in an ensemble, /d/myid must hold this server's id"
    );
}

#[test]
fn config_rejects_myid_not_among_the_servers() {
    let e = err(&format!("{BASE}{THREE}"), 4);
    assert_eq!(
        e,
        "myid is 4, but there is no server.4 line (servers: 1,2,3)"
    );
}

#[test]
fn config_rejects_duplicate_ids_and_addresses() {
    let e = err(&format!("{BASE}{THREE}server.01=127.0.0.1:5:6\n"), 1);
    assert_eq!(e, "server id 1 is given twice (server.1 and server.01)");
    let e = err(
        &format!("{BASE}server.1=h:2888:3888\nserver.2=H:3888:3889\nserver.3=g:1:2\n"),
        1,
    );
    assert_eq!(
        e,
        "H:3888 is the election address of server.1 and the quorum address of server.2"
    );
    let e = err(
        &format!("{BASE}server.1=h:1:2;h:2181\nserver.2=h:3:4;h:2181\nserver.3=g:1:2\n"),
        1,
    );
    assert!(e.contains("client address of server.1"), "{e}");
    // Wildcard client addresses are shared by design (one server per machine).
    ok(
        "dataDir=/d\ninitLimit=1\nsyncLimit=1\nserver.1=a:1:2;2181\nserver.2=b:1:2;2181\n",
        1,
    );
    // A repeated key is a repeated key (the last wins, with a warning), not a duplicate id.
    let (_, w) = ok(&format!("{BASE}{THREE}server.3=127.0.0.1:2891:3891\n"), 1);
    assert!(w[0].contains("server.3 is set more than once"), "{w:?}");
}

#[test]
fn config_peer_type() {
    // QPC.setupPeerType: the server line wins, with a warning.
    let (c, w) = ok(&format!("{BASE}{THREE}peerType=observer\n"), 1);
    assert_eq!(c.ensemble.expect("quorum").role(), PeerRole::Participant);
    assert_eq!(
        w,
        vec![
            "peerType is observer but server.1 says participant; using participant, as \
              ZooKeeper does"
                .to_string()
        ]
    );
    let (_, w) = ok(&format!("{BASE}{THREE}peerType=Participant\n"), 1);
    assert!(w.is_empty(), "{w:?}");
    let e = err(&format!("{BASE}{THREE}peerType=leader\n"), 1);
    assert!(
        e.ends_with("for peerType: unknown peer type (choose participant or observer)"),
        "{e}"
    );
}

#[test]
fn config_election_alg() {
    ok(&format!("{BASE}{THREE}electionAlg=3\n"), 1);
    let e = err(&format!("{BASE}{THREE}electionAlg=1\n"), 1);
    assert!(
        e.ends_with("for electionAlg: only electionAlg 3 exists in ZooKeeper 3.8 and later"),
        "{e}"
    );
}

#[test]
fn config_election_tunables_are_ignored_with_a_note() {
    let (_, w) = ok(
        &format!("{BASE}{THREE}cnxTimeout=5000\nelectionPortBindRetry=3\n"),
        1,
    );
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("line 8: cnxTimeout is ignored"), "{w:?}");
    assert!(w[1].contains("electionPortBindRetry is ignored"), "{w:?}");
}

#[test]
fn config_quorum_listen_on_all_ips() {
    let (c, _) = ok(&format!("{BASE}{THREE}quorumListenOnAllIPs=true\n"), 3);
    let e = c.ensemble.expect("quorum");
    assert!(e.quorum_listen_on_all_ips);
    assert_eq!(
        e.quorum_listen_addrs().expect("wildcard"),
        vec!["0.0.0.0:2891".parse::<SocketAddr>().expect("addr")]
    );
    let e = err(&format!("{BASE}{THREE}quorumListenOnAllIPs=yes\n"), 3);
    assert!(e.contains("quorumListenOnAllIPs"), "{e}");
}

#[test]
fn config_hierarchical_quorums_are_refused_in_quorum_mode() {
    let e = err(&format!("{BASE}{THREE}group.1=1:2:3\nweight.1=1\n"), 1);
    assert!(
        e.starts_with("line 8: group.1: hierarchical quorums"),
        "{e}"
    );
}

#[test]
fn config_version_key_in_zoo_cfg() {
    // QuorumMaj reads `version` (hex) from the static file in backward-compatible mode.
    let (c, _) = ok(&format!("{BASE}{THREE}version=100000000\n"), 1);
    let e = c.ensemble.expect("quorum");
    assert_eq!(e.version, 0x1_0000_0000);
    assert!(e.zookeeper_config_text().ends_with("\nversion=100000000"));
    let e = err(&format!("{BASE}{THREE}version=xyz\n"), 1);
    assert!(e.contains("for version: not a hexadecimal number"), "{e}");
}

// ---- the client port on its own line or on the server line (QPC.setupClientPort) ----

#[test]
fn config_client_port_from_the_server_line() {
    let lines = "server.1=127.0.0.1:1:2;127.0.0.1:2201\nserver.2=127.0.0.1:3:4;2202\n";
    let text = format!("dataDir=/d\ninitLimit=1\nsyncLimit=1\n{lines}");
    let (c, w) = ok(&text, 1);
    assert_eq!(c.client_port, 2201);
    assert_eq!(
        c.client_port_address,
        Some("127.0.0.1".parse::<IpAddr>().expect("ip"))
    );
    assert!(!w.iter().any(|w| w.contains("clientPort")), "{w:?}");
    // The wildcard on the line is "all addresses", as without clientPortAddress.
    let (c, _) = ok(&text, 2);
    assert_eq!((c.client_port, c.client_port_address), (2202, None));
}

#[test]
fn config_client_port_in_both_places() {
    let lines = "server.1=127.0.0.1:1:2;127.0.0.1:2201\nserver.2=127.0.0.1:3:4;2202\n";
    let base = "dataDir=/d\ninitLimit=1\nsyncLimit=1\n";
    // Equal: fine.
    ok(
        &format!("{base}clientPort=2201\nclientPortAddress=127.0.0.1\n{lines}"),
        1,
    );
    // A wildcard (or no) clientPortAddress only has to agree on the port, and the line's
    // address is taken.
    let (c, _) = ok(&format!("{base}clientPort=2201\n{lines}"), 1);
    assert_eq!(
        c.client_port_address,
        Some("127.0.0.1".parse::<IpAddr>().expect("ip"))
    );
    ok(
        &format!("{base}clientPort=2202\nclientPortAddress=0.0.0.0\n{lines}"),
        2,
    );
    // Different port.
    let e = err(&format!("{base}clientPort=2181\n{lines}"), 1);
    assert_eq!(
        e,
        "the client address of this server (id 1) is 0.0.0.0:2181 in zoo.cfg but \
         127.0.0.1:2201 on its server line"
    );
    // A specific address against the line's wildcard differs too (InetSocketAddress.equals).
    let e = err(
        &format!("{base}clientPort=2202\nclientPortAddress=127.0.0.1\n{lines}"),
        2,
    );
    assert!(
        e.contains("127.0.0.1:2202 in zoo.cfg but 0.0.0.0:2202"),
        "{e}"
    );
}

#[test]
fn config_client_port_nowhere_defaults_with_a_warning() {
    let (c, w) = ok(&format!("dataDir=/d\ninitLimit=1\nsyncLimit=1\n{THREE}"), 1);
    assert_eq!(c.client_port, crate::config::DEFAULT_CLIENT_PORT);
    assert!(
        w.iter().any(|w| w.starts_with("clientPort is not set")),
        "{w:?}"
    );
}

// ---- the dynamic configuration file ----

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferrokeeper-ensemble-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[test]
fn config_dynamic_file_version_from_its_name() {
    assert_eq!(
        version_from_file_name(Path::new("/a/zoo.cfg.dynamic.100000000")),
        Some(0x1_0000_0000)
    );
    assert_eq!(
        version_from_file_name(Path::new("/a/zoo.cfg.dynamic")),
        None
    );
    assert_eq!(version_from_file_name(Path::new("noext")), None);
    let dir = temp_dir("dynname");
    let dynamic = dir.join("zoo.cfg.dynamic");
    std::fs::write(&dynamic, THREE).expect("write");
    let (c, _) = ok(
        &format!("{BASE}dynamicConfigFile={}\n", dynamic.display()),
        1,
    );
    let e = c.ensemble.expect("quorum");
    assert_eq!(e.version, 0);
    assert_eq!(e.dynamic_config_file.as_deref(), Some(dynamic.as_path()));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn config_dynamic_file_rejections() {
    let dir = temp_dir("dynbad");
    let dynamic = dir.join("zoo.cfg.dynamic.1");
    let cfg = format!("{BASE}dynamicConfigFile={}\n", dynamic.display());
    let dynamic_name = dynamic.display().to_string();

    // QPC.parse: the version is the file name's, not a key.
    std::fs::write(&dynamic, format!("{THREE}version=1\n")).expect("write");
    let e = err(&cfg, 1);
    assert_eq!(
        e,
        format!(
            "{dynamic_name}: line 4: a dynamic configuration file must not hold a version; \
             it is the suffix of the file's name"
        )
    );
    // QPC.parseDynamicConfig: nothing but server lines.
    std::fs::write(&dynamic, format!("{THREE}tickTime=2000\n")).expect("write");
    let e = err(&cfg, 1);
    assert_eq!(
        e,
        format!(
            "{dynamic_name}: line 4: tickTime does not belong in a dynamic configuration \
             file (only server.N)"
        )
    );
    // A bad line names the dynamic file.
    std::fs::write(&dynamic, "server.1=h:1\n").expect("write");
    let e = err(&cfg, 1);
    assert!(
        e.starts_with(&format!(
            "{dynamic_name}: line 1: invalid value \"h:1\" for server.1"
        )),
        "{e}"
    );
    // QPC.parseProperties: server lines in zoo.cfg next to a dynamic file.
    std::fs::write(&dynamic, THREE).expect("write");
    let e = err(&format!("{cfg}server.4=h:1:2\n"), 1);
    assert_eq!(
        e,
        "line 6: server.4 must be in the dynamic configuration file, since dynamicConfigFile \
         is set"
    );
    // A missing dynamic file names itself.
    let e = err(
        &format!("{BASE}dynamicConfigFile={}/none\n", dir.display()),
        1,
    );
    assert!(
        e.starts_with(&format!("cannot read {}/none", dir.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

// ---- configurations Java ran, and what it printed ----

/// The `static/` ensemble's zoo.cfg of server `n`, with its dataDir moved to `dir`.
fn static_cfg(n: u64) -> &'static str {
    match n {
        1 => java!("static/zoo1.cfg"),
        2 => java!("static/zoo2.cfg"),
        _ => java!("static/zoo3.cfg"),
    }
}

#[test]
fn config_java_static_ensemble_membership_matches() {
    // /zookeeper/config as Java 3.8 served it (zkCli's println adds the final newline).
    for n in 1..=3 {
        let (c, w) = ok(static_cfg(n), n);
        assert!(w.is_empty(), "{w:?}");
        let e = c.ensemble.expect("quorum");
        assert_eq!(
            format!("{}\n", e.zookeeper_config_text()),
            java!("static/zookeeper_config.txt")
        );
        assert_eq!(c.client_port, 21900 + n as u16);
    }
}

/// The `dynamic/` ensemble's zoo.cfg of server `n`, pointing at the captured dynamic file.
fn dynamic_cfg(n: u64) -> String {
    let text = match n {
        1 => java!("dynamic/zoo1.cfg"),
        2 => java!("dynamic/zoo2.cfg"),
        3 => java!("dynamic/zoo3.cfg"),
        _ => java!("dynamic/zoo4.cfg"),
    };
    let dynamic = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/admin/testdata/zk-3.8.0-ensemble/dynamic/zoo.cfg.dynamic.100000000"
    );
    text.lines()
        .map(|line| {
            if line.starts_with("dynamicConfigFile=") {
                format!("dynamicConfigFile={dynamic}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

#[test]
fn config_java_dynamic_ensemble_membership_matches() {
    for n in 1..=4 {
        let (c, w) = ok(&dynamic_cfg(n), n);
        assert!(w.is_empty(), "server {n}: {w:?}");
        let e = c.ensemble.expect("quorum");
        assert_eq!(e.version, 0x1_0000_0000);
        assert_eq!(
            format!("{}\n", e.zookeeper_config_text()),
            java!("dynamic/zookeeper_config.txt"),
            "server {n}"
        );
        assert_eq!(c.client_port, 21910 + n as u16);
        let expected_role = if n == 4 {
            PeerRole::Observer
        } else {
            PeerRole::Participant
        };
        assert_eq!(e.role(), expected_role);
    }
    let (c, _) = ok(&dynamic_cfg(3), 3);
    assert_eq!(
        c.client_port_address,
        Some("::1".parse::<IpAddr>().expect("ip"))
    );
    let (c, _) = ok(&dynamic_cfg(4), 4);
    assert_eq!(c.client_port_address, None);
}

/// What kazoo's test harness (kazoo/testing/common.py, `ManagedZooKeeper.run`) writes for
/// server 2 of a 3-server `ZookeeperCluster` at port offset 20000 whose third server is an
/// observer: its own line first, then its peers', then `peerType`.
const KAZOO_SERVER_2: &str = "
tickTime=2000
dataDir=/tmp/tmpkazoo/data
clientPort=20010
secureClientPort=20014
maxClientCnxns=0
admin.serverPort=20013
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
ssl.keyStore.location=/tmp/tmpkazoo/keystore.jks
ssl.keyStore.password=apassword
ssl.trustStore.location=/tmp/tmpkazoo/truststore.jks
ssl.trustStore.password=apassword


initLimit=4
syncLimit=2
server.2=localhost:20012:20011:participant
server.1=localhost:20002:20001:participant
server.3=localhost:20022:20021:observer
peerType=participant
";

#[test]
fn config_kazoo_harness_config_parses() {
    let (c, w) = ok(KAZOO_SERVER_2, 2);
    // The TLS keys are read (src/config/tls.rs); two participants tolerate no failure
    // (Java warns about that too).
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("tolerates no server failure"), "{w:?}");
    assert!(c.tls.secure_client_port.is_some());
    assert_eq!(c.client_port, 20010);
    let e = c.ensemble.expect("quorum");
    assert_eq!((e.my_id, e.init_limit, e.sync_limit), (2, 4, 2));
    assert_eq!(e.participants().count(), 2);
    assert_eq!(e.servers[&3].role, PeerRole::Observer);
    assert_eq!(e.me().quorum_port, 20012);
    assert_eq!(e.me().election_port, 20011);
    assert!(e
        .quorum_addr(1)
        .expect("localhost resolves")
        .ip()
        .is_loopback());
    assert_eq!(
        e.zookeeper_config_text(),
        "server.1=localhost:20002:20001:participant\n\
         server.2=localhost:20012:20011:participant\n\
         server.3=localhost:20022:20021:observer\n\
         version=0"
    );
    // The observer's own copy says peerType=observer, which agrees with its line.
    let observer = KAZOO_SERVER_2.replace("peerType=participant", "peerType=observer");
    let (c, w) = ok(&observer, 3);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(c.ensemble.expect("quorum").role(), PeerRole::Observer);
}

#[test]
fn config_load_reads_myid_for_the_ensemble() {
    let dir = temp_dir("load");
    std::fs::write(dir.join("myid"), "3\n").expect("write myid");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        static_cfg(3).replace("/tmp/zkens/d3", &dir.display().to_string()),
    )
    .expect("write cfg");
    let (c, w) = Config::load(&cfg).expect("load");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.ensemble.expect("quorum").my_id, 3);
    // Without myid, Config::load fails as ZooKeeper does.
    std::fs::remove_file(dir.join("myid")).expect("remove myid");
    let e = Config::load(&cfg).expect_err("no myid");
    assert!(e.to_string().contains("myid file is missing"), "{e}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
