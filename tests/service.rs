//! Running as a service (issue #12 item 5): SIGTERM and SIGINT stop the server cleanly
//! (exit code 0) with every acknowledged write on disk; under systemd's `Type=notify`
//! the server says READY=1 once clients can connect and STOPPING=1 on the signal
//! (sd_notify(3)); `--version` prints the package version.
//!
//! The server here is the binary started directly (not the harness's `Server`), because
//! these tests need its exit status and its environment.

mod common;
mod raw;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use raw::{mode, open_acl, Conn};

/// A port no other test process holds: drawn and claimed by [`common::free_port`], so
/// that a server another test binary starts cannot bind it (with `SO_REUSEPORT`, beside
/// ours) while this test restarts its server. A fixed port here once let a parallel test
/// take it between the stop and the restart, and the restart's connect was reset.
fn port() -> u16 {
    common::free_port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join("ferrokeeper-tests")
        .join(format!("service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("data")).expect("create the data dir");
    d
}

/// Starts the binary on `dir/zoo.cfg` with `env` added, stderr into `dir/server.log`.
fn spawn(dir: &Path, port: u16, env: &[(&str, &Path)]) -> Child {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\ndataDir={}\n\
             admin.enableServer=false\nferrokeeper.shards=2\n",
            dir.join("data").display()
        ),
    )
    .expect("write zoo.cfg");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("server.log");
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrokeeper"));
    c.arg(&cfg)
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("start ferrokeeper")
}

/// A session, once the port accepts one (the server binds it after it recovers).
async fn connect(port: u16) -> Conn {
    let addr = format!("127.0.0.1:{port}");
    // A bound on the wait so that a server that never starts fails the test instead of
    // hanging it; not an assertion about how fast it starts.
    for _ in 0..600 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            let c = Conn::connect(&addr).await;
            if c.session_id != 0 {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session from {addr}");
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child process by its pid.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "kill({}, {sig})", child.id());
}

fn wait(mut child: Child, dir: &Path) -> ExitStatus {
    let status = child.wait().expect("wait for ferrokeeper");
    eprintln!(
        "server log:\n{}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
    status
}

/// Writers keep creating znodes while SIGTERM arrives; the server exits with 0, and after
/// a restart on the same data directory every create that was acknowledged is there.
async fn clean_stop_keeps_acknowledged_writes(sig: i32, name: &str, port: u16) {
    let dir = temp_dir(name);
    let child = spawn(&dir, port, &[]);
    let mut setup = connect(port).await;
    setup
        .create("/w", b"", open_acl(), mode::PERSISTENT)
        .await
        .expect("create /w");
    // Four writers, each creating /w/<writer>-<n> until its connection closes.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut writers = Vec::new();
    for w in 0..4 {
        let acked = acked_tx.clone();
        writers.push(tokio::spawn(async move {
            let mut c = connect(port).await;
            for n in 0.. {
                let path = format!("/w/{w}-{n}");
                match c.create(&path, b"x", open_acl(), mode::PERSISTENT).await {
                    Ok(_) => {
                        let _ = acked.send(path);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    drop(acked_tx);
    // Signal in the middle of the writes: after 200 acknowledgements.
    let mut acked = Vec::new();
    while acked.len() < 200 {
        acked.push(acked_rx.recv().await.expect("a writer acknowledged"));
    }
    signal(&child, sig);
    let status = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || wait(child, &dir)
    })
    .await
    .expect("join");
    for w in writers {
        w.await.expect("writer");
    }
    while let Some(p) = acked_rx.recv().await {
        acked.push(p);
    }
    assert_eq!(
        status.code(),
        Some(0),
        "a clean stop exits with 0: {status}"
    );
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(log.contains("stopped; the log is synced"), "{log}");

    let child = spawn(&dir, port, &[]);
    let mut c = connect(port).await;
    for p in &acked {
        assert!(
            c.exists(p, false).await.is_ok(),
            "{p} was acknowledged before {name} and is gone after the restart"
        );
    }
    eprintln!(
        "{} acknowledged creates all present after {name}",
        acked.len()
    );
    signal(&child, libc::SIGTERM);
    assert_eq!(wait(child, &dir).code(), Some(0));
    // Kept when a test fails (its server log is in it); a passing test's 128 MiB of log
    // segment and spare go.
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_acknowledged_writes() {
    clean_stop_keeps_acknowledged_writes(libc::SIGTERM, "sigterm", port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_and_keeps_acknowledged_writes() {
    clean_stop_keeps_acknowledged_writes(libc::SIGINT, "sigint", port()).await;
}

/// systemd's side of sd_notify(3): a datagram socket whose path is in $NOTIFY_SOCKET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_when_ready_and_when_stopping() {
    let dir = temp_dir("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    // A bound so that a server that never notifies fails the test instead of hanging it.
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let p = port();
    let child = spawn(&dir, p, &[("NOTIFY_SOCKET", &sock_path)]);
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY=1 from the server");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains(&format!("MAINPID={}", child.id())),
        "{ready:?}"
    );
    // READY means clients can connect now.
    let mut c = Conn::connect(&format!("127.0.0.1:{p}")).await;
    assert_ne!(c.session_id, 0, "a session right after READY=1");
    c.create("/ready", b"", open_acl(), mode::PERSISTENT)
        .await
        .expect("write after READY");
    signal(&child, libc::SIGTERM);
    let n = sock.recv(&mut buf).expect("STOPPING=1 from the server");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(wait(child, &dir).code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_flag_prints_the_package_version() {
    let o = Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("ferrokeeper {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The unit file in the repository is a `Type=notify` service that stops with SIGTERM,
/// with the tuner's file and memlock limits, and starts the installed binary.
#[test]
fn the_systemd_unit_file_matches_the_server() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/systemd/ferrokeeper.service"),
    )
    .expect("read the unit file");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "KillSignal=SIGTERM",
        "LimitNOFILE=65536",
        "LimitMEMLOCK=67108864",
        "ExecStart=/usr/local/bin/ferrokeeper /etc/ferrokeeper/zoo.cfg",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line} missing from the unit"
        );
    }
    if let Ok(o) = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/systemd/ferrokeeper.service"))
        .output()
    {
        eprintln!(
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not checked");
    }
}
