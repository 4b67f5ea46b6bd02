//! The embeddable server (issue #12 item 4): `ferrokeeper::embedded::TestServer` inside
//! this test process, used through the zookeeper-client crate as an application's tests
//! would use it.

use std::time::Duration;

use ferrokeeper::embedded::{Options, TestServer};
use zookeeper_client::{Acls, Client, CreateMode, Error};

async fn client(server: &TestServer) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", server.connect_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_use_stop_and_restart_on_the_same_data() {
    let keep = tempfile::tempdir().expect("tempdir");
    let options = Options {
        data_dir: Some(keep.path().join("data")),
        config: vec![("snapCount".into(), "50".into())],
    };
    let server = tokio::task::spawn_blocking({
        let options = options.clone();
        move || TestServer::start_with(options)
    })
    .await
    .expect("join")
    .expect("start");
    assert!(server.connect_string().starts_with("127.0.0.1:"));
    let zk = client(&server).await;
    let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.create("/app", b"config", &open).await.expect("create");
    for i in 0..120 {
        zk.create(&format!("/app/k{i:03}"), format!("{i}").as_bytes(), &open)
            .await
            .expect("create child");
    }
    zk.set_data("/app", b"config v2", None).await.expect("set");
    drop(zk);
    let port = server.port();
    assert!(
        listening_here(port),
        "the probe sees the running server's listener"
    );
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .expect("join")
        .expect("a clean stop");
    // Stopped means this process holds no listener on the port any more (the listener
    // went with the shard). A connect probe cannot tell: the port is an ephemeral one, so
    // another test process may have taken it since, or the probe may connect to itself.
    assert!(
        !listening_here(port),
        "port {port} still has a listener in this process after stop"
    );

    // A second server on the same directory sees everything the first one acknowledged.
    let server = tokio::task::spawn_blocking(move || TestServer::start_with(options))
        .await
        .expect("join")
        .expect("restart");
    let zk = client(&server).await;
    let (data, stat) = zk.get_data("/app").await.expect("get");
    assert_eq!((data.as_slice(), stat.version), (&b"config v2"[..], 1));
    assert_eq!(
        zk.get_children("/app").await.expect("children").0.len(),
        120
    );
    drop(zk);
    // Dropping stops it too.
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_data_dir_goes_with_the_server_and_two_run_side_by_side() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        (
            TestServer::start().expect("start a"),
            TestServer::start().expect("start b"),
        )
    })
    .await
    .expect("join");
    assert_ne!(a.port(), b.port());
    let dir = a.data_dir().to_path_buf();
    assert!(dir.is_dir());
    let za = client(&a).await;
    let zb = client(&b).await;
    let open = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    za.create("/only-a", b"", &open).await.expect("create on a");
    assert!(matches!(zb.get_data("/only-a").await, Err(Error::NoNode)));
    drop((za, zb));
    tokio::task::spawn_blocking(move || {
        a.stop().expect("stop a");
        drop(b);
    })
    .await
    .expect("join");
    assert!(!dir.exists(), "{} removed with the server", dir.display());
}

/// Whether a socket this process holds listens on 127.0.0.1:`port` (Linux: the process's
/// socket inodes from /proc/self/fd against the LISTEN rows of /proc/net/tcp).
fn listening_here(port: u16) -> bool {
    let mine: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|row| {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // local_address is "IP:PORT" in hex, st 0A is LISTEN, the inode is column 9.
        cols.len() > 9
            && cols[3] == "0A"
            && cols[1].ends_with(&format!(":{port:04X}"))
            && mine.contains(cols[9])
    })
}
