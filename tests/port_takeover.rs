//! Taking over the client port from Apache ZooKeeper: users migrate by stopping Java
//! ZooKeeper on 2181 and starting ferrokeeper on 2181 at once. Java's side of each
//! closed client connection waits out TIME_WAIT on that port for a minute; ferrokeeper
//! must bind it anyway (SO_REUSEADDR beside SO_REUSEPORT, `src/server/listener.rs`)
//! and serve. Skips, saying why, when Debian's ZooKeeper is not installed.

mod common;
mod raw;

use common::{Kind, Server};

/// Sessions opened and closed on Java before it stops. ZooKeeper closes the connection
/// after answering closeSession, so each leaves a TIME_WAIT socket on its side.
const SESSIONS: usize = 5;

/// Sockets in TIME_WAIT whose local port is `port` (`ss`, from iproute2).
fn time_wait_on(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htan", "state", "time-wait"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .expect("run ss (iproute2)");
    assert!(out.status.success(), "ss failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrokeeper_takes_the_port_java_zookeeper_just_left() {
    if !std::path::Path::new("/usr/share/java/zookeeper.jar").exists() {
        eprintln!(
            "SKIPPED: Apache ZooKeeper is not installed (/usr/share/java/zookeeper.jar); \
             `apt-get install -y zookeeper zookeeper-bin` (see STACK-NOTES.md) to run this test"
        );
        return;
    }
    let java = tokio::task::block_in_place(|| Server::start(Kind::JavaZk, &[]));
    let port = java.port;
    for i in 0..SESSIONS {
        let mut c = raw::Conn::connect(&java.address()).await;
        c.create(&format!("/takeover{i}"), b"java", raw::open_acl(), 0)
            .await
            .expect("create on Java ZooKeeper");
        c.close().await;
    }
    // Two sessions still open when Java stops: their connections close as it dies.
    let _open = [
        raw::Conn::connect(&java.address()).await,
        raw::Conn::connect(&java.address()).await,
    ];
    let waiting = time_wait_on(port);
    assert!(
        waiting > 0,
        "precondition: Java ZooKeeper's closed connections should leave TIME_WAIT sockets on port {port}"
    );
    // Stop Java (SIGKILL, then reaped) and start ferrokeeper on its port at once.
    drop(java);
    let fk = tokio::task::block_in_place(|| Server::start_on_port(Kind::Ferrokeeper, port, &[]));
    // Serving while Java's TIME_WAIT sockets are still there: the bind did not wait them
    // out (they last 60 s; binding without SO_REUSEADDR failed with EADDRINUSE).
    let still_waiting = time_wait_on(port);
    let mut c = raw::Conn::connect(&fk.address()).await;
    c.create("/served", b"ferrokeeper", raw::open_acl(), 0)
        .await
        .expect("create on ferrokeeper");
    let (data, _) = c.get_data("/served", false).await.expect("getData");
    assert_eq!(data, b"ferrokeeper");
    c.close().await;
    assert!(
        still_waiting > 0,
        "ferrokeeper served on port {port}, but Java's TIME_WAIT sockets ({waiting} before it \
         stopped) were gone by then, so this run did not show the takeover"
    );
    eprintln!(
        "port {port}: {waiting} TIME_WAIT sockets before Java stopped, {still_waiting} when ferrokeeper served"
    );
}
