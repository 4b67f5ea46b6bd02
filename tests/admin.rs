//! The AdminServer (`/commands/<name>`) and the Prometheus metrics provider (`/metrics`)
//! over real HTTP, through the `ureq` client:
//!
//! * every ZooKeeper 3.9 command answers by its primary name and by each alias, with
//!   `command` (the primary name) and `error` last, as ZooKeeper's `CommandResponse`;
//! * the reply's top-level keys equal those of Apache ZooKeeper 3.8's own AdminServer
//!   (Debian's package with its Jetty and Jackson jars), command by command;
//! * `snapshot` and `restore` check the `Authorization` header as ZooKeeper 3.9 does
//!   (401 missing, 401 not authenticated, 403 not authorized);
//! * `/metrics` is Prometheus text that `promtool check metrics` accepts, with
//!   ZooKeeper's names (no `_total`).
//!
//! Ports come from this test's range, 21000–21999 (one per server).

mod common;
mod raw;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    ferrokeeper_with_admin, four_letter_word, free_port, serves_client_port, Kind, Server,
};

/// Every command with its names, primary first (ZooKeeper 3.9 `Commands.java`).
const COMMANDS: &[&[&str]] = &[
    &["connection_stat_reset", "crst"],
    &["configuration", "conf", "config"],
    &["connections", "cons"],
    &["hash"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["get_trace_mask", "gtmk"],
    &["initial_configuration", "icfg"],
    &["is_read_only", "isro"],
    &["last_snapshot", "lsnp"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["observer_connection_stat_reset", "orst"],
    &["restore", "rest"],
    &["ruok"],
    &["set_trace_mask", "stmk"],
    &["snapshot", "snap"],
    &["server_stats", "srvr"],
    &["stats", "stat"],
    &["stat_reset", "srst"],
    &["observers", "obsr"],
    &["system_properties", "sysp"],
    &["voting_view"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["watch_summary", "wchs"],
    &["zabstate"],
];

/// An HTTP answer.
struct Reply {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request(method: &str, url: &str, auth: Option<&str>) -> Reply {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(60));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_string();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|k| {
            let v = response.header(&k).unwrap_or("").to_string();
            (k, v)
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("read body");
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

fn get(url: &str) -> Reply {
    request("GET", url, None)
}

/// The top-level keys of a pretty-printed JSON object, in order (Jackson's and
/// ferrokeeper's printers indent them by exactly two spaces).
fn top_keys(json: &str) -> Vec<String> {
    json.lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once("\" : ").map(|(k, _)| k.to_string()))
        .collect()
}

/// The value of a top-level key, as printed.
fn top_value(json: &str, key: &str) -> Option<String> {
    let prefix = format!("  \"{key}\" : ");
    json.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.trim_end_matches(',').to_string())
}

#[test]
fn every_command_answers_by_every_name() {
    let (_fk, base) = ferrokeeper_with_admin(&[]);
    for names in COMMANDS {
        let primary = names[0];
        for name in *names {
            let r = get(&format!("{base}/{name}"));
            match primary {
                // Need the Authorization header: checked in their own test.
                "snapshot" | "restore" => {
                    assert_eq!(r.status, 401, "{name}: {}", r.text());
                    continue;
                }
                _ => {}
            }
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            assert!(r.content_type.starts_with("application/json"), "{name}");
            let text = r.text();
            let keys = top_keys(&text);
            assert_eq!(
                top_value(&text, "command").as_deref(),
                Some(format!("\"{primary}\"").as_str()),
                "{name}:\n{text}"
            );
            // `command` then `error` close the object, except where the command puts
            // its own error among its data first (leader on a standalone server,
            // set_trace_mask without its argument), as ZooKeeper's LinkedHashMap keeps.
            let tail: Vec<&str> = keys.iter().rev().take(2).map(|k| k.as_str()).collect();
            assert!(
                tail == ["error", "command"] || tail == ["command", "error"],
                "{name}: keys {keys:?}"
            );
        }
    }
    let unknown = get(&format!("{base}/nosuch"));
    assert_eq!(unknown.status, 200);
    assert_eq!(
        unknown.text(),
        "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
    );
    let listing = get(&base);
    assert_eq!(listing.status, 200);
    let text = listing.text();
    for names in COMMANDS {
        let link = format!("<a href=\"/commands/{0}\">{0}</a>", names[0]);
        assert!(text.contains(&link), "listing lacks {link}:\n{text}");
    }
    assert_eq!(
        get(&format!("{}/elsewhere", &base[..base.len() - 9])).status,
        404
    );
}

#[test]
fn trace_mask_and_stat_reset_take_effect() {
    let (fk, base) = ferrokeeper_with_admin(&[]);
    let set = get(&format!("{base}/stmk?traceMask=306")).text();
    assert_eq!(
        top_value(&set, "tracemask").as_deref(),
        Some("306"),
        "{set}"
    );
    let got = get(&format!("{base}/gtmk")).text();
    assert_eq!(
        top_value(&got, "tracemask").as_deref(),
        Some("306"),
        "{got}"
    );
    assert_eq!(fk.four_letter("gtmk").trim_end(), "306");
    let bad = get(&format!("{base}/stmk?traceMask=x")).text();
    assert_eq!(
        top_value(&bad, "error").as_deref(),
        Some("\"setTraceMask requires long traceMask argument, got x\""),
        "{bad}"
    );
    // Some traffic, then srst: the packet counters start again.
    for _ in 0..3 {
        four_letter_word(fk.port, "ruok").expect("ruok");
    }
    assert_eq!(get(&format!("{base}/srst")).status, 200);
    let srvr = get(&format!("{base}/srvr")).text();
    assert!(srvr.contains("\"packets_received\" : 0"), "{srvr}");
}

#[tokio::test]
async fn snapshot_and_restore_check_authorization_like_zookeeper() {
    // No rate limit here: ZooKeeper 3.9 lets one snapshot through per interval (tests/
    // restore.rs checks the limit on restore).
    let (fk, base) = ferrokeeper_with_admin(&[("admin.rateLimiterIntervalInMS", "0")]);
    let snap = format!("{base}/snapshot");
    let asked = |auth: Option<&str>| {
        let (url, auth) = (snap.clone(), auth.map(str::to_string));
        std::thread::spawn(move || request("GET", &url, auth.as_deref()))
            .join()
            .expect("request thread")
    };
    let missing = asked(None);
    assert_eq!(missing.status, 401);
    assert_eq!(
        top_value(&missing.text(), "error").as_deref(),
        Some("\"Auth info is missing for the command\"")
    );
    for bad in ["nosuchscheme secret", "digest a b", "x509"] {
        let r = asked(Some(bad));
        assert_eq!(r.status, 401, "{bad}: {}", r.text());
        assert_eq!(
            top_value(&r.text(), "error").as_deref(),
            Some("\"Not authenticated\""),
            "{bad}"
        );
    }
    // The root is world:anyone ALL: any authenticated id passes.
    let open = asked(Some("digest anyone:pw"));
    assert_eq!(open.status, 200, "{}", open.text());

    // Now only admin:pw holds ALL on the root.
    let mut c = raw::Conn::connect(&fk.address()).await;
    c.create("/data", b"payload", raw::open_acl(), 0)
        .await
        .expect("create");
    assert_eq!(c.add_auth("digest", b"admin:pw").await, 0);
    let only_admin = ferrokeeper_net::records::Acl {
        perms: ferrokeeper_net::codes::perms::ALL,
        id: raw::digest_id("admin", "pw"),
    };
    c.set_acl("/", vec![only_admin], -1)
        .await
        .expect("setACL /");
    let wrong = asked(Some("digest admin:wrong"));
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(
        top_value(&wrong.text(), "error").as_deref(),
        Some("\"Not authorized\"")
    );
    let ok = asked(Some("digest admin:pw"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.content_type, "application/octet-stream");
    let size: usize = ok
        .header("snapshot_size")
        .expect("snapshot_size header")
        .parse()
        .expect("size");
    assert_eq!(ok.body.len(), size);
    let zxid = ok.header("last_zxid").expect("last_zxid header");
    assert!(zxid.starts_with("0x") && zxid != "0x0", "{zxid}");
    // A ZooKeeper snapshot file: its header starts with the magic "ZKSN".
    assert!(size > 16, "a snapshot has at least its header");
    assert_eq!(&ok.body[..4], b"ZKSN", "ZooKeeper's snapshot magic");

    let no_stream = {
        let url = format!("{snap}?streaming=false");
        std::thread::spawn(move || request("GET", &url, Some("digest admin:pw")))
            .join()
            .expect("thread")
    };
    assert_eq!(no_stream.status, 200);
    assert!(no_stream.header("snapshot_size").is_some());
    assert_eq!(
        top_keys(&no_stream.text()),
        ["command", "error"],
        "{}",
        no_stream.text()
    );

    let restore = format!("{base}/restore");
    let posted = std::thread::spawn(move || request("POST", &restore, Some("digest admin:pw")))
        .join()
        .expect("thread");
    // An empty body is no snapshot: 500, the state unchanged (tests/restore.rs restores).
    assert_eq!(posted.status, 500, "{}", posted.text());
    assert!(
        posted.text().contains("does not decode"),
        "{}",
        posted.text()
    );
    c.close().await;
}

/// Apache ZooKeeper with its AdminServer: the harness's classpath plus Jetty 9, the
/// servlet API and Jackson, which Debian packages apart from ZooKeeper.
struct JavaAdmin {
    child: Child,
    dir: std::path::PathBuf,
    /// Its client port.
    client: u16,
    base: String,
}

/// The harness's own jars; [`common::JAVA_ADMIN_JARS`] adds the AdminServer's.
const JAVA_HARNESS_JARS: &[&str] = &[
    "zookeeper",
    "zookeeper-jute",
    "slf4j-api",
    "slf4j-simple",
    "netty-handler",
    "netty-transport",
    "netty-common",
    "netty-buffer",
    "netty-codec",
    "netty-resolver",
    "netty-transport-native-epoll",
    "netty-transport-native-unix-common",
];

impl JavaAdmin {
    /// `None`, with the reason printed, when a jar is missing.
    fn start() -> Option<JavaAdmin> {
        let jars: Vec<String> = JAVA_HARNESS_JARS
            .iter()
            .chain(common::JAVA_ADMIN_JARS)
            .map(|j| format!("/usr/share/java/{j}.jar"))
            .collect();
        if let Some(missing) = jars.iter().find(|j| !Path::new(j).exists()) {
            eprintln!(
                "SKIPPED the comparison with ZooKeeper's AdminServer: {missing} is missing \
                 (apt-get install libjetty9-java libjackson2-databind-java)"
            );
            return None;
        }
        // Another test's server may hold a port drawn here (see `ferrokeeper_with_admin`):
        // then the admin port's answers are not Java's, and the start is tried again.
        for _ in 0..3 {
            let java = JavaAdmin::spawn(&jars);
            if serves_client_port(&java.base, java.client) {
                return Some(java);
            }
            eprintln!(
                "the AdminServer at {} is not this Java server's; other ports",
                java.base
            );
        }
        panic!("no Java AdminServer of our own after three tries");
    }

    /// Starts Java ZooKeeper on fresh ports and waits until its client port and its
    /// admin port answer `ruok`.
    fn spawn(jars: &[String]) -> JavaAdmin {
        let (client, admin) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!(
            "ferrokeeper-tests/java-admin-{}-{client}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin}\n\
             4lw.commands.whitelist=*\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", &jars.join(":")])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(dir.join("zoo.cfg"))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start java");
        let java = JavaAdmin {
            child,
            dir,
            client,
            base: format!("http://127.0.0.1:{admin}/commands"),
        };
        // Ready when the admin port answers ruok (a deadline for a broken start, not a
        // timing assertion).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = ureq::get(&format!("{}/ruok", java.base))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok();
            if up && four_letter_word(client, "ruok").is_ok() {
                return java;
            }
            assert!(
                Instant::now() < deadline,
                "Java ZooKeeper's AdminServer did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for JavaAdmin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn replies_have_zookeepers_keys() {
    let Some(java) = JavaAdmin::start() else {
        return;
    };
    let (_fk, base) = ferrokeeper_with_admin(&[]);
    // Keys that name data rather than fields: the JVM's properties and environment,
    // and the metrics (compared below as a subset).
    let data_keyed = ["environment", "system_properties", "monitor"];
    let mut differences = Vec::new();
    for names in COMMANDS {
        let primary = names[0];
        // 3.9 commands the 3.8 reference does not have.
        if primary == "snapshot" || primary == "restore" {
            continue;
        }
        let j = get(&format!("{}/{primary}", java.base)).text();
        let f = get(&format!("{base}/{primary}")).text();
        let (jk, fk) = (top_keys(&j), top_keys(&f));
        if data_keyed.contains(&primary) {
            let jset: BTreeSet<&String> = jk.iter().collect();
            let extra: Vec<&String> = fk
                .iter()
                .filter(|k| !jset.contains(k) && !k.starts_with("fk_"))
                .collect();
            if primary == "monitor" && !extra.is_empty() {
                differences.push(format!("monitor keys Java lacks: {extra:?}"));
            }
            continue;
        }
        if jk != fk {
            differences.push(format!(
                "{primary}:\n--- java {jk:?}\n--- ferrokeeper {fk:?}"
            ));
        }
        // Nested objects too (server_stats, client_response): the keys at any depth.
        let nested = |t: &str| -> BTreeSet<String> {
            t.lines()
                .filter_map(|l| l.trim_start().strip_prefix('"'))
                .filter_map(|l| l.split_once("\" : ").map(|(k, _)| k.to_string()))
                .collect()
        };
        if matches!(primary, "server_stats" | "configuration" | "last_snapshot") {
            let (jn, fnested) = (nested(&j), nested(&f));
            if jn != fnested {
                differences.push(format!(
                    "{primary} nested keys: java only {:?}, ferrokeeper only {:?}",
                    jn.difference(&fnested).collect::<Vec<_>>(),
                    fnested.difference(&jn).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn admin_server_can_be_disabled_and_moved() {
    let url = free_port().to_string();
    let fk = Server::start(
        Kind::Ferrokeeper,
        &[
            ("admin.enableServer", "false"),
            ("admin.serverPort", url.as_str()),
        ],
    );
    // Judged by the server's own log, not by connecting: under nextest another test's
    // server may take the port in between.
    assert!(
        !fk.log().contains("AdminServer listening"),
        "admin.enableServer=false still listens:\n{}",
        fk.log()
    );
    drop(fk);
    let (_fk, base) = ferrokeeper_with_admin(&[("admin.commandURL", "/zk")]);
    let root = base.trim_end_matches("/commands");
    assert_eq!(get(&format!("{root}/zk/ruok")).status, 200);
    assert!(get(&format!("{root}/zk"))
        .text()
        .contains("<a href=\"/zk/ruok\">ruok</a>"));
}

#[test]
fn metrics_are_prometheus_text_with_zookeepers_names() {
    let metrics = free_port().to_string();
    let fk = Server::start(
        Kind::Ferrokeeper,
        &[
            (
                "metricsProvider.className",
                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            ),
            ("metricsProvider.httpHost", "127.0.0.1"),
            ("metricsProvider.httpPort", metrics.as_str()),
        ],
    );
    four_letter_word(fk.port, "ruok").expect("ruok");
    let r = get(&format!("http://127.0.0.1:{metrics}/metrics"));
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type
    );
    let text = r.text();
    // The exposition format, line by line: comments are HELP or TYPE; a sample is a
    // name, optional labels, and a value that parses as a float (Go's spellings of the
    // infinities and NaN included).
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample: name value");
        let name = series.split('{').next().unwrap_or("");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample before its TYPE: {line}");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        // ZooKeeper's counters keep their names (simpleclient 0.9 adds no `_total`);
        // ferrokeeper's own `fk_*` names are spelled as mntr spells them.
        assert!(
            name.starts_with("fk_") || !name.ends_with("_total"),
            "a _total name: {line}"
        );
    }
    for name in [
        "znode_count",
        "ephemerals_count",
        "watch_count",
        "num_alive_connections",
        "packets_received",
        "avg_latency",
        "uptime",
    ] {
        assert!(typed.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert_eq!(
        get(&format!("http://127.0.0.1:{metrics}/other")).status,
        404
    );

    // promtool, Prometheus' own checker of the format.
    match common::promtool_errors(&text) {
        None => eprintln!(
            "SKIPPED promtool check: promtool is not installed (apt-get install prometheus)"
        ),
        Some(errors) => assert!(errors.is_none(), "promtool rejects the text:\n{errors:?}"),
    }
}
