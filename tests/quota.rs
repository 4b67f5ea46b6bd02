//! Quotas (ZooKeeper 3.7+ semantics, ZOOKEEPER-SECURITY-OPS.md §3) over real sockets,
//! differentially: the same `zkCli.sh setquota/listquota/delquota` sessions and the
//! same Rust-client requests against Apache ZooKeeper 3.8 and ferrokeeper, both started
//! with `enforceQuota=true`, must print and answer the same: listquota's lines, the
//! `zookeeper_limits`/`zookeeper_stats` data and stat after creates, deletes and
//! setData, the error codes (QuotaExceeded −125), and mntr's quota gauges. Then, on
//! ferrokeeper alone: the usage survives a kill -9 restart, from the log and from a
//! snapshot.
//!
//! Servers listen on ports from `common::free_port`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ensemble::java_available;
use common::{free_port, Kind, Launch, Server};
use zookeeper_client::{Acls, Client, CreateMode};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const ENFORCE: &[(&str, &str)] = &[("enforceQuota", "true")];
/// How long one zkCli.sh session may take (a JVM start and a few dozen requests).
const ZKCLI_LIMIT: Duration = Duration::from_secs(120);

fn start(kind: Kind, extra: &[(&str, &str)]) -> Server {
    Server::start_on_port_with(kind, free_port(), extra, &Launch::default())
}

/// Why the differential tests cannot run here, if they cannot.
fn java_missing() -> Option<&'static str> {
    (!java_available() || !std::path::Path::new(ZKCLI).exists())
        .then_some("Apache ZooKeeper (java, zookeeper.jar, zkCli.sh) is not installed: tests/run.sh installs it")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ------------------------------------------------------------------ zkCli.sh

/// The zkCli.sh session both servers get: the sequence `setquota`, `listquota` and
/// `delquota` send (exists, getChildren, create, getData, setData, delete on
/// /zookeeper/quota), with writes that the quota refuses in between.
const ZKCLI_SESSION: &[&str] = &[
    "create /q",
    "create /q/a hello",
    "setquota -N 3 /q",
    "listquota /q",
    "setquota -b 100 /q",
    "listquota /q",
    "get -s /zookeeper/quota/q/zookeeper_limits",
    "get -s /zookeeper/quota/q/zookeeper_stats",
    "create /q/b",
    "create /q/c",
    "listquota /q",
    "set /q/a 0123456789",
    "get -s /zookeeper/quota/q/zookeeper_stats",
    "setquota -B 12 /q",
    "set /q/a 0123456789abc",
    "set /q/a 0123",
    "listquota /q",
    "setquota -n 2 /q/a",
    "create /r",
    "create /r/s",
    "setquota -n 2 /r/s",
    "setquota -n 2 /r",
    "delquota -N /q",
    "listquota /q",
    "create /q/c",
    "delete /q/b",
    "listquota /q",
    "setquota -n 0 /q",
    "setquota -n 1 /zookeeper/quota/q",
    "setquota -n 1 /missing",
    "delquota /q",
    "listquota /q",
    "ls /zookeeper/quota",
    "delquota /r/s",
    "ls /zookeeper/quota",
    "delquota /nothing",
];

/// Runs `commands` in one zkCli.sh session against `server`, each followed by
/// `version` (a known line that asks nothing of the server), and returns one block of
/// output lines per command, with the lines that differ by nature (times, session
/// ids, banners) normalised.
fn zkcli_blocks(server: &Server, commands: &[&str]) -> Vec<Vec<String>> {
    let mut input = String::new();
    for c in commands {
        input.push_str(c);
        input.push_str("\nversion\n");
    }
    input.push_str("quit\n");
    let out_path = server.dir.join("zkcli.out");
    let file = std::fs::File::create(&out_path).expect("zkCli output file");
    let mut child = Command::new(ZKCLI)
        .arg("-server")
        .arg(server.address())
        .stdin(Stdio::piped())
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("start zkCli.sh");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("zkCli input");
    let deadline = Instant::now() + ZKCLI_LIMIT;
    while child.try_wait().expect("wait zkCli").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("zkCli.sh against {:?} did not finish", server.kind);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let mut blocks = vec![Vec::new()];
    for line in out.lines() {
        let l = line.trim();
        if l.is_empty()
            || l.starts_with("SLF4J:")
            || l.starts_with("Connecting to ")
            || l == "Welcome to ZooKeeper!"
            || l.starts_with("JLine support")
            || l == "WATCHER::"
            || l.starts_with("WatchedEvent state:")
        {
            continue;
        }
        if l.starts_with("ZooKeeper CLI version:") {
            blocks.push(Vec::new());
            continue;
        }
        let normal = if l.starts_with("ctime = ") || l.starts_with("mtime = ") {
            format!("{} = *", &l[..5])
        } else {
            l.to_string()
        };
        blocks.last_mut().expect("never empty").push(normal);
    }
    blocks.truncate(commands.len());
    blocks
}

/// `setquota`, `listquota` and `delquota` from Java's own shell print the same against
/// ferrokeeper as against Apache ZooKeeper 3.8 with `enforceQuota=true`: the limits and
/// stats text, the stat of both nodes (version, zxids, data length: the stats node's
/// mzxid and version stay while its data moves), refused writes (QuotaExceeded), the
/// shell's own checks (parent or child quota, missing path) and the trimming of
/// `/zookeeper/quota` on delquota.
#[test]
fn zkcli_quota_session_matches_java() {
    if let Some(why) = java_missing() {
        eprintln!("SKIPPED zkcli_quota_session_matches_java: {why}");
        return;
    }
    let java = start(Kind::JavaZk, ENFORCE);
    let fk = start(Kind::Ferrokeeper, ENFORCE);
    let want = zkcli_blocks(&java, ZKCLI_SESSION);
    let got = zkcli_blocks(&fk, ZKCLI_SESSION);
    let mut report = String::new();
    for (i, command) in ZKCLI_SESSION.iter().enumerate() {
        let (w, g) = (want.get(i), got.get(i));
        if w != g {
            report.push_str(&format!(
                "`{command}`\n  java:        {w:?}\n  ferrokeeper: {g:?}\n"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "zkCli.sh quota session differs:\n{report}--- ferrokeeper log ---\n{}",
        fk.log()
    );
    // The session did hit the limits (not only printed the same nothing).
    let all: Vec<&String> = want.iter().flatten().collect();
    assert!(
        all.iter().any(|l| l.contains("Quota has exceeded")),
        "no write was refused: {want:?}"
    );
}

// ------------------------------------------------------------------ Rust client

/// One step's result as text: the outcome, then the stats and limits nodes' data and
/// the stats node's version, mzxid and data length.
async fn observe(zk: &Client, outcome: String) -> String {
    let mut line = outcome;
    for node in ["zookeeper_stats", "zookeeper_limits"] {
        match zk.get_data(&format!("/zookeeper/quota/q/{node}")).await {
            Ok((data, stat)) => line.push_str(&format!(
                " | {node}={} v{} mzxid={} len={}",
                String::from_utf8_lossy(&data),
                stat.version,
                stat.mzxid,
                stat.data_length
            )),
            Err(e) => line.push_str(&format!(" | {node}: {e:?}")),
        }
    }
    line
}

fn outcome<T>(r: Result<T, zookeeper_client::Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// A scripted run through the Rust client: quota nodes made by hand (as zkCli does),
/// then creates, setData, deletes and multis, some over the hard limits, with the
/// limits changed in between. Returns one line per step.
async fn client_transcript(address: &str) -> Vec<String> {
    let zk = Client::connect(address).await.expect("connect");
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let mut out = Vec::new();
    macro_rules! step {
        ($label:expr, $fut:expr) => {{
            let r = outcome($fut.await);
            out.push(observe(&zk, format!("{}: {}", $label, r)).await);
        }};
    }
    step!("create /q", zk.create("/q", b"root", &open));
    step!("create /q/a", zk.create("/q/a", b"12345", &open));
    step!(
        "create quota path",
        zk.create("/zookeeper/quota/q", b"", &open)
    );
    step!(
        "create limits",
        zk.create(
            "/zookeeper/quota/q/zookeeper_limits",
            b"count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=4",
            &open
        )
    );
    step!(
        "create stats",
        zk.create(
            "/zookeeper/quota/q/zookeeper_stats",
            b"count=0,bytes=0",
            &open
        )
    );
    step!("create /q/b", zk.create("/q/b", b"xyz", &open));
    step!(
        "create /q/big (bytes)",
        zk.create("/q/big", &[b'x'; 20], &open)
    );
    step!("create /q/s- seq", zk.create("/q/s-", b"", &seq));
    step!("create /q/c (count)", zk.create("/q/c", b"", &open));
    step!(
        "set /q/a +7 bytes",
        zk.set_data("/q/a", b"123456789012", None)
    );
    step!("set /q/a over", zk.set_data("/q/a", b"1234567890123", None));
    step!(
        "set /q/a bad version",
        zk.set_data("/q/a", &[b'y'; 30], Some(77))
    );
    step!("delete /q/b", zk.delete("/q/b", None));
    step!("create /q/e ephemeral", zk.create("/q/e", b"eph", &eph));
    {
        let mut w = zk.new_multi_writer();
        w.add_create("/q/m1", b"", &open).expect("op");
        w.add_create("/q/m2", b"", &open).expect("op");
        let r = outcome(w.commit().await.map_err(zookeeper_client::Error::from));
        out.push(observe(&zk, format!("multi two creates: {r}")).await);
    }
    step!(
        "soft limits",
        zk.set_data(
            "/zookeeper/quota/q/zookeeper_limits",
            b"count=1,bytes=1",
            None
        )
    );
    step!("create /q/soft", zk.create("/q/soft", b"soft", &open));
    step!(
        "stats written by a client",
        zk.set_data(
            "/zookeeper/quota/q/zookeeper_stats",
            b"count=1,bytes=2=;extra=3",
            None
        )
    );
    step!("create /q/after", zk.create("/q/after", b"ab", &open));
    step!(
        "delete limits",
        zk.delete("/zookeeper/quota/q/zookeeper_limits", None)
    );
    step!("create /q/free", zk.create("/q/free", b"free", &open));
    out
}

/// The Rust client's script gets the same answers and leaves the same quota nodes
/// (data, version, mzxid, length) on both servers.
#[test]
fn client_writes_under_quota_match_java() {
    if let Some(why) = java_missing() {
        eprintln!("SKIPPED client_writes_under_quota_match_java: {why}");
        return;
    }
    let java = start(Kind::JavaZk, ENFORCE);
    let fk = start(Kind::Ferrokeeper, ENFORCE);
    let rt = runtime();
    let want = rt.block_on(client_transcript(&java.address()));
    let got = rt.block_on(client_transcript(&fk.address()));
    let diff: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  java:        {w}\n  ferrokeeper: {g}"))
        .collect();
    assert!(
        diff.is_empty() && want.len() == got.len(),
        "client transcript differs:\n{}\n--- java ---\n{}\n--- ferrokeeper ---\n{}",
        diff.join("\n"),
        want.join("\n"),
        got.join("\n")
    );
    assert!(
        want.iter().any(|l| l.contains("QuotaExceeded")),
        "nothing was refused: {want:?}"
    );
}

/// Without `enforceQuota` (ZooKeeper's default) the same script is never refused on
/// either server, and the usage is still kept.
#[test]
fn without_enforcement_nothing_is_refused() {
    if let Some(why) = java_missing() {
        eprintln!("SKIPPED without_enforcement_nothing_is_refused: {why}");
        return;
    }
    let java = start(Kind::JavaZk, &[]);
    let fk = start(Kind::Ferrokeeper, &[]);
    let rt = runtime();
    let want = rt.block_on(client_transcript(&java.address()));
    let got = rt.block_on(client_transcript(&fk.address()));
    assert_eq!(want, got);
    assert!(!got.iter().any(|l| l.contains("QuotaExceeded")), "{got:?}");
}

// ------------------------------------------------------------------ mntr

/// The `mntr` lines about quotas, in order.
fn quota_lines(server: &Server) -> Vec<String> {
    server
        .four_letter("mntr")
        .lines()
        .filter(|l| l.contains("quota"))
        .map(str::to_string)
        .collect()
}

/// mntr prints the per-namespace quota gauges (`zk_<namespace>_quota_*_per_namespace`)
/// and the counter set `zk_<namespace>_quota_exceeded_error_per_namespace` as ZooKeeper
/// 3.8 does, in its order and with its values.
#[test]
fn mntr_quota_metrics_match_java() {
    if let Some(why) = java_missing() {
        eprintln!("SKIPPED mntr_quota_metrics_match_java: {why}");
        return;
    }
    let java = start(Kind::JavaZk, ENFORCE);
    let fk = start(Kind::Ferrokeeper, ENFORCE);
    let rt = runtime();
    for s in [&java, &fk] {
        rt.block_on(client_transcript(&s.address()));
        rt.block_on(async {
            let zk = Client::connect(&s.address()).await.expect("connect");
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            for p in [
                "/ns2",
                "/ns2/x",
                "/zookeeper/quota/ns2",
                "/zookeeper/quota/ns2/x",
            ] {
                zk.create(p, b"", &open).await.expect("create");
            }
            zk.create(
                "/zookeeper/quota/ns2/x/zookeeper_limits",
                b"count=5,bytes=50",
                &open,
            )
            .await
            .expect("limits");
            zk.create(
                "/zookeeper/quota/ns2/x/zookeeper_stats",
                b"count=0,bytes=0",
                &open,
            )
            .await
            .expect("stats");
            zk.create("/ns2/x/y", b"data", &open).await.expect("create");
        });
    }
    let want = quota_lines(&java);
    let counter = "_quota_exceeded_error_per_namespace";
    assert!(want.iter().any(|l| l.contains(counter)), "{want:?}");
    assert_eq!(quota_lines(&fk), want);
}

/// `zk_<namespace>_quota_exceeded_error_per_namespace` from a server's mntr, by
/// namespace (absent until a namespace's first refusal).
fn exceeded_counts(server: &Server) -> Vec<String> {
    server
        .four_letter("mntr")
        .lines()
        .filter(|l| l.contains("_quota_exceeded_error_per_namespace"))
        .map(str::to_string)
        .collect()
}

/// The counter set `quota_exceeded_error_per_namespace` moves as ZooKeeper 3.8's does,
/// step by step (`ZooKeeperServer.checkQuota`): only a write refused by a *hard* limit
/// counts (a soft limit passed only logs; a write that fits counts nothing), a refused
/// create and a refused setData count one each, a multi whose op is refused counts
/// one, and the key is the top-level namespace of the written path (`deep` for
/// `/deep/a/x`), not the quota's path. ferrokeeper's Prometheus `/metrics` shows the
/// same values as a counter labelled `key` (Debian ships no ZooKeeper Prometheus
/// provider, so that half is checked against ferrokeeper's own mntr only).
#[test]
fn quota_exceeded_counter_matches_java() {
    if let Some(why) = java_missing() {
        eprintln!("SKIPPED quota_exceeded_counter_matches_java: {why}");
        return;
    }
    let metrics_port = free_port().to_string();
    let java = start(Kind::JavaZk, ENFORCE);
    let fk = start(
        Kind::Ferrokeeper,
        &[
            ("enforceQuota", "true"),
            (
                "metricsProvider.className",
                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            ),
            ("metricsProvider.httpHost", "127.0.0.1"),
            ("metricsProvider.httpPort", metrics_port.as_str()),
        ],
    );
    let rt = runtime();
    let mut transcripts = Vec::new();
    for s in [&java, &fk] {
        let mut out = Vec::new();
        rt.block_on(async {
            let zk = Client::connect(&s.address()).await.expect("connect");
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            let mut after = |step: &str, r: String| {
                out.push(format!("{step}: {r} | {}", exceeded_counts(s).join(", ")));
            };
            for p in [
                "/c",
                "/deep",
                "/deep/a",
                "/zookeeper/quota/c",
                "/zookeeper/quota/deep",
                "/zookeeper/quota/deep/a",
            ] {
                zk.create(p, b"", &open).await.expect("create");
            }
            let quota = |q: &'static str, limits: &'static [u8]| {
                let zk = &zk;
                let open = &open;
                async move {
                    zk.create(
                        &format!("/zookeeper/quota{q}/zookeeper_limits"),
                        limits,
                        open,
                    )
                    .await
                    .expect("limits");
                    zk.create(
                        &format!("/zookeeper/quota{q}/zookeeper_stats"),
                        b"count=0,bytes=0",
                        open,
                    )
                    .await
                    .expect("stats");
                }
            };
            quota(
                "/c",
                b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3",
            )
            .await;
            quota("/deep/a", b"count=-1,bytes=-1=;countHardLimit=2").await;
            after("quotas made", "ok".into());
            let r = outcome(zk.create("/c/x", b"12345", &open).await);
            after("create /c/x fits", r);
            let r = outcome(zk.create("/c/big", &[b'b'; 6], &open).await);
            after("create /c/big over hard bytes", r);
            let r = outcome(zk.create("/c/y", b"", &open).await);
            after("create /c/y fits", r);
            let r = outcome(zk.create("/c/z", b"", &open).await);
            after("create /c/z over hard count", r);
            let r = outcome(zk.set_data("/c/x", &[b's'; 11], None).await);
            after("set /c/x over hard bytes", r);
            // /deep/a itself counts one of the two.
            let r = outcome(zk.create("/deep/a/x", b"", &open).await);
            after("create /deep/a/x fits", r);
            {
                let mut w = zk.new_multi_writer();
                w.add_create("/deep/a/m1", b"", &open).expect("op");
                w.add_create("/deep/a/m2", b"", &open).expect("op");
                let r = outcome(w.commit().await.map_err(zookeeper_client::Error::from));
                after("multi over hard count", r);
            }
            let r = outcome(
                zk.set_data(
                    "/zookeeper/quota/c/zookeeper_limits",
                    b"count=1,bytes=1",
                    None,
                )
                .await,
            );
            after("soft limits only", r);
            let r = outcome(zk.create("/c/soft", b"soft", &open).await);
            after("create /c/soft over soft limits", r);
            let r = outcome(zk.set_data("/c/x", &[b's'; 40], None).await);
            after("set /c/x over soft bytes", r);
            let r = outcome(zk.create("/free", b"", &open).await);
            after("create /free, no quota", r);
        });
        transcripts.push(out);
    }
    let (fk_lines, java_lines) = (transcripts.pop(), transcripts.pop());
    assert_eq!(fk_lines, java_lines);
    let java_lines = java_lines.unwrap_or_default();
    // The Java side did refuse and count, so the comparison is not of two empty sets.
    assert!(
        java_lines
            .last()
            .is_some_and(|l| l.contains("zk_c_quota_exceeded_error_per_namespace\t3")
                && l.contains("zk_deep_quota_exceeded_error_per_namespace\t1")),
        "{java_lines:#?}"
    );
    // ferrokeeper's Prometheus exposition: the same counts, labelled `key`.
    let body = http_get(&format!("127.0.0.1:{metrics_port}"), "/metrics");
    for want in [
        "# TYPE quota_exceeded_error_per_namespace counter",
        "quota_exceeded_error_per_namespace{key=\"c\",} 3.0",
        "quota_exceeded_error_per_namespace{key=\"deep\",} 1.0",
    ] {
        assert!(body.lines().any(|l| l == want), "no {want:?} in:\n{body}");
    }
}

/// A plain HTTP/1.0 GET's body (the exposition is small; the server closes).
fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(text)
}

// ------------------------------------------------------------------ restart

async fn stats_of(address: &str, quota: &str) -> String {
    let zk = Client::connect(address).await.expect("connect");
    let (data, _) = zk
        .get_data(&format!("/zookeeper/quota{quota}/zookeeper_stats"))
        .await
        .expect("stats node");
    String::from_utf8_lossy(&data).into_owned()
}

/// After kill -9 the usage is what it was (recomputed from the tree as ZooKeeper does
/// on load, then moved by the replayed log), the quota is still registered (writes
/// move it, a hard limit still refuses), with and without a snapshot in between
/// (`snapCount=2` makes one every few txns).
#[test]
fn restart_keeps_usage_and_enforcement() {
    for extra in [
        &[("enforceQuota", "true")][..],
        &[("enforceQuota", "true"), ("snapCount", "2")],
    ] {
        let mut fk = start(Kind::Ferrokeeper, extra);
        let rt = runtime();
        let addr = fk.address();
        rt.block_on(async {
            let zk = Client::connect(&addr).await.expect("connect");
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            for (p, d) in [("/q", &b"ab"[..]), ("/zookeeper/quota/q", b"")] {
                zk.create(p, d, &open).await.expect("create");
            }
            zk.create(
                "/zookeeper/quota/q/zookeeper_limits",
                b"count=-1,bytes=-1=;countHardLimit=5",
                &open,
            )
            .await
            .expect("limits");
            zk.create(
                "/zookeeper/quota/q/zookeeper_stats",
                b"count=0,bytes=0",
                &open,
            )
            .await
            .expect("stats");
            for i in 0..3 {
                zk.create(&format!("/q/n{i}"), b"xyz", &open)
                    .await
                    .expect("create");
            }
            zk.set_data("/q/n0", b"x", None).await.expect("set");
            zk.delete("/q/n2", None).await.expect("delete");
        });
        let before = rt.block_on(stats_of(&addr, "/q"));
        assert_eq!(before, "count=3,bytes=6", "{extra:?}");
        fk.kill9_and_restart();
        assert_eq!(rt.block_on(stats_of(&addr, "/q")), before, "{extra:?}");
        rt.block_on(async {
            let zk = Client::connect(&addr).await.expect("connect");
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            zk.create("/q/n3", b"", &open).await.expect("create");
            zk.create("/q/n4", b"", &open).await.expect("create");
            assert_eq!(
                zk.create("/q/n5", b"", &open).await.map(|_| ()),
                Err(zookeeper_client::Error::QuotaExceeded),
                "{extra:?}"
            );
        });
        assert_eq!(
            rt.block_on(stats_of(&addr, "/q")),
            "count=5,bytes=6",
            "{extra:?}"
        );
    }
}
