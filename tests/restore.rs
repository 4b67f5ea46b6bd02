//! The AdminServer's `restore` (issue #12 item 1): a ZooKeeper-format snapshot POSTed
//! with `Authorization: <scheme> <cred>` replaces the server's state.
//!
//! * ferrokeeper → ferrokeeper: a snapshot streamed by one server's `snapshot` command is
//!   restored into another that holds a different tree and a live client; the client's
//!   connection is closed, the second server serves the first one's tree znode by znode
//!   (data, every Stat field, ACL, ephemerals with their owner), a second restore
//!   within `admin.rateLimiterIntervalInMS` gets 429, and after a write and a `kill -9` the restored tree (plus the write) is still there.
//! * Java ZooKeeper 3.8 → ferrokeeper: the clean snapshot Java writes at startup is
//!   restored and compared with Java's own tree, and the Java client's session
//!   reattaches to ferrokeeper with the password Java gave it. A body that is not a
//!   snapshot gets 500 naming the byte offset and leaves the state alone; GET gets 405;
//!   `admin.restore.enabled=false` gets 503.
//!
//! Not compared with Java's own `restore`: the command is new in ZooKeeper 3.9 and
//! Debian ships 3.8, whose AdminServer has neither `snapshot` nor `restore`. The answers
//! follow 3.9's `Commands.RestoreCommand` as read from its source.
//!
//! Ports come from this test's range, 24000–24999.

mod common;
mod raw;

use std::time::{Duration, Instant};

use common::{ferrokeeper_with_admin, free_port, Kind, Launch, Server};
use raw::tree::{assert_same_tree, connect, read_tree, write_varied};
use raw::{mode, open_acl, Conn, ConnectOptions, Incoming};

/// An HTTP answer: status, headers, body.
struct Reply {
    status: u16,
    body: Vec<u8>,
    last_zxid_header: Option<String>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a thread of its own (ureq blocks; the tests run on tokio).
async fn http(method: &str, url: &str, auth: Option<&str>, body: Option<Vec<u8>>) -> Reply {
    let (method, url, auth) = (
        method.to_string(),
        url.to_string(),
        auth.map(str::to_string),
    );
    tokio::task::spawn_blocking(move || {
        let mut req = ureq::request(&method, &url).timeout(Duration::from_secs(120));
        if let Some(a) = &auth {
            req = req.set("Authorization", a);
        }
        let sent = match &body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let response = match sent {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = response.status();
        let last_zxid_header = response.header("last_zxid").map(str::to_string);
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("read body");
        Reply {
            status,
            body,
            last_zxid_header,
        }
    })
    .await
    .expect("request thread")
}

/// The value of a top-level key of a pretty-printed JSON reply, as printed.
fn top_value(json: &str, key: &str) -> Option<String> {
    let prefix = format!("  \"{key}\" : ");
    json.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.trim_end_matches(',').to_string())
}

/// Waits until the server closes `c` (pings and events on the way are skipped).
async fn closed_by_server(c: &mut Conn) {
    loop {
        if let Incoming::Closed = c.next_incoming().await {
            return;
        }
    }
}

/// The root's ACL is world:anyone ALL on a fresh server, so any digest id authenticates
/// and is authorized (ZooKeeper checks ALL on `/` for the ids the header yields).
const AUTH: &str = "digest operator:pw";

// Long because it is one scenario in order: two servers, snapshot, restore, checks,
// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_from_one_server_restores_into_another() {
    let (a, a_admin) = ferrokeeper_with_admin(&[]);
    let owner = write_varied(&a.address(), "/app").await;
    let want = read_tree(&a.address()).await;
    let snap = http("GET", &format!("{a_admin}/snapshot"), Some(AUTH), None).await;
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert_eq!(&snap.body[..4], b"ZKSN", "a ZooKeeper snapshot");
    let snap_zxid = snap.last_zxid_header.expect("last_zxid header");
    let snap_zxid = i64::from_str_radix(snap_zxid.trim_start_matches("0x"), 16).expect("hex");

    // The other server has a tree of its own, more txns than the snapshot, and a client.
    let (mut b, b_admin) = ferrokeeper_with_admin(&[]);
    let mut other = write_varied(&b.address(), "/other").await;
    for i in 0..100 {
        other
            .set_data("/other", format!("{i}").as_bytes(), -1)
            .await
            .expect("churn");
    }
    let b_zxid_before = other.exists("/other", false).await.expect("exists").mzxid;
    assert!(
        b_zxid_before > snap_zxid,
        "the target is ahead of the snapshot"
    );

    // Auth comes first, as in ZooKeeper: no header → 401, and nothing is restored.
    let anonymous = http(
        "POST",
        &format!("{b_admin}/restore"),
        None,
        Some(snap.body.clone()),
    )
    .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let get = http("GET", &format!("{b_admin}/restore"), Some(AUTH), None).await;
    assert_eq!(get.status, 405, "restore is POST only: {}", get.text());

    let restored = http(
        "POST",
        &format!("{b_admin}/rest"),
        Some(AUTH),
        Some(snap.body.clone()),
    )
    .await;
    assert_eq!(restored.status, 200, "{}", restored.text());
    let text = restored.text();
    assert_eq!(
        top_value(&text, "command").as_deref(),
        Some("\"restore\""),
        "{text}"
    );
    assert_eq!(top_value(&text, "error").as_deref(), Some("null"), "{text}");
    let last_zxid: i64 = top_value(&text, "last_zxid")
        .expect("last_zxid")
        .parse()
        .expect("a number");
    // ferrokeeper keeps zxids monotonic: the restored state is past everything the
    // target had served (ZooKeeper would answer the snapshot's own zxid).
    assert_eq!(last_zxid, b_zxid_before + 1, "{text}");

    // The target's client was closed; the tree is the source's, znode by znode.
    closed_by_server(&mut other).await;
    let got = read_tree(&b.address()).await;
    assert_same_tree("restored", &want, &got);

    // The source's session is in the snapshot (its ephemerals compared above), but not
    // its password: a ZooKeeper snapshot stores none, and the importer derives Java's
    // (`ZooKeeperServer.generatePasswd`), which a ferrokeeper session does not use. So
    // a ferrokeeper client cannot reattach after a ferrokeeper → ferrokeeper restore;
    // a Java session can (the other test).
    let mut again = connect(&b.address()).await;

    // One restore per admin.rateLimiterIntervalInMS (5 minutes by default).
    let limited = http(
        "POST",
        &format!("{b_admin}/restore"),
        Some(AUTH),
        Some(snap.body.clone()),
    )
    .await;
    assert_eq!(limited.status, 429, "{}", limited.text());

    // Writes continue after the restored zxid, and everything survives a kill -9.
    let after = again
        .create("/after", b"x", open_acl(), mode::PERSISTENT)
        .await
        .expect("write after restore");
    assert_eq!(after, "/after");
    let after_stat = again.exists("/after", false).await.expect("exists");
    // (Session creates and closes since the restore took the zxids between.)
    assert!(
        after_stat.czxid > last_zxid,
        "the next zxids follow the restore"
    );
    drop(again);
    let mut want_after = want.clone();
    let mut fresh = connect(&b.address()).await;
    let (data, stat) = fresh.get_data("/after", false).await.expect("get");
    let (acl, _) = fresh.get_acl("/after").await.expect("acl");
    want_after.insert("/after".to_string(), (data, stat, acl));
    let now_root = fresh.get_data("/", false).await.expect("root").1;
    want_after.get_mut("/").expect("root").1 = now_root;
    fresh.close().await;
    b.kill9_and_restart();
    let restarted = read_tree(&b.address()).await;
    assert_same_tree("after kill -9", &want_after, &restarted);
    drop(owner);
    drop(a);
}

// Long because it runs Java, restarts it for a clean snapshot, then checks the refusals
// and the restore in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_3_8_snapshot_restores_as_java_serves_it() {
    // Java writes a tree; restarted, it writes a clean (not fuzzy) snapshot of it at
    // startup (`ZooKeeperServer.loadData` → takeSnapshot).
    let java = Server::start_on_port_with(Kind::JavaZk, free_port(), &[], &Launch::default());
    let owner = write_varied(&java.address(), "/zk").await;
    let (owner_id, owner_passwd) = (owner.session_id, owner.passwd.clone());
    drop(owner);
    // SAFETY: signalling our own child process by its pid.
    unsafe { libc::kill(java.pid() as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::four_letter_word(java.port, "ruok").is_ok() {
        assert!(Instant::now() < deadline, "Java did not die");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = java;
    let java =
        Server::start_from_data_on_port(Kind::JavaZk, free_port(), &[], &first.dir.join("data"));
    // Reattach the owner so its ephemerals stay while the tree is read.
    let keep = Conn::connect_with(
        &java.address(),
        ConnectOptions {
            session_id: owner_id,
            passwd: owner_passwd.clone(),
            ..ConnectOptions::default()
        },
    )
    .await;
    assert_eq!(keep.session_id, owner_id, "Java kept the session");
    let want = read_tree(&java.address()).await;
    let version2 = java.dir.join("data").join("version-2");
    let newest = std::fs::read_dir(&version2)
        .expect("version-2")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot."))
        })
        .max_by_key(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            i64::from_str_radix(name.trim_start_matches("snapshot."), 16).unwrap_or(-1)
        })
        .expect("Java wrote a snapshot at startup");
    let body = std::fs::read(&newest).expect("read snapshot");

    let (fk, admin) = ferrokeeper_with_admin(&[("admin.rateLimiterIntervalInMS", "0")]);
    let mut c = connect(&fk.address()).await;
    c.create("/mine", b"m", open_acl(), mode::PERSISTENT)
        .await
        .expect("create");

    // Not a snapshot: 500 naming the offset; the state is unchanged.
    let mut garbage = body.clone();
    garbage[body.len() / 2] ^= 0xff;
    let bad = http(
        "POST",
        &format!("{admin}/restore"),
        Some(AUTH),
        Some(garbage),
    )
    .await;
    assert_eq!(bad.status, 500, "{}", bad.text());
    assert!(bad.text().contains("does not decode"), "{}", bad.text());
    assert!(
        c.exists("/mine", false).await.is_ok(),
        "a failed restore changes nothing"
    );

    let ok = http("POST", &format!("{admin}/restore"), Some(AUTH), Some(body)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    closed_by_server(&mut c).await;
    let got = read_tree(&fk.address()).await;
    assert_same_tree("Java's snapshot restored", &want, &got);
    drop(keep);
    let moved = Conn::connect_with(
        &fk.address(),
        ConnectOptions {
            session_id: owner_id,
            passwd: owner_passwd,
            ..ConnectOptions::default()
        },
    )
    .await;
    assert_eq!(
        moved.session_id, owner_id,
        "the Java session reattaches to ferrokeeper"
    );

    // admin.restore.enabled=false: 503 after the auth check, as ZooKeeper.
    let (_off, off_admin) = ferrokeeper_with_admin(&[("admin.restore.enabled", "false")]);
    let refused = http(
        "POST",
        &format!("{off_admin}/restore"),
        Some(AUTH),
        Some(vec![1]),
    )
    .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
}
