//! Ensembles of real processes, real clients over real sockets (issue #9).
//!
//! - Clients across servers: kazoo (`tests/cross/kazoo_ensemble.py`), the Rust
//!   `zookeeper-client` crate, `zkCli.sh` and `cli_mt` with a three-host connect string,
//!   against a three-member ferrokeeper ensemble: CRUD through followers, a watch set on
//!   one server fired by a write through another, unique sequential names, ephemerals
//!   that go with their session, `sync` on a lagging follower.
//! - Session moves (raw protocol), checked against a Java 3.8 ensemble and ferrokeeper.
//! - Faults: kill -9 of the leader under a write load (3 kills in CI,
//!   `FK_ENSEMBLE_KILLS=30` for the long run, which prints p50/p99 failover times), and a
//!   leader frozen with SIGSTOP past the election timeout. Nothing acknowledged may be
//!   lost, and every member converges on one zxid and node count. A partition (one
//!   network namespace per member, blackhole routes) cuts the leader off from both
//!   followers and heals; skipped where `ip netns` is unavailable.
//! - A differential run (`tests/diff`) in ensemble mode: one operation sequence against
//!   three ferrokeeper members and three Java members, sessions spread over the servers.
//!
//! Timing figures are printed, never asserted; the limits on waits only keep a broken
//! ensemble from hanging the suite. A test that needs java, python's kazoo or Debian's
//! ZooKeeper clients prints `SKIPPED:` and why when they are missing.

mod common;
mod diff;
mod raw;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{java_available, Ensemble, EnsembleOptions, FORM_LIMIT};
use common::Kind;
use raw::{err, mode, Conn, ConnectOptions};
use zookeeper_client::{Acls, Client, CreateMode, EventType};

/// The Java shell, from Debian's `zookeeper` package.
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// The C shell, from Debian's `zookeeper-bin` package.
const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
/// How long one client process may run before the test gives up on it.
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
}

async fn zk_connect(cluster: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(2))
        .connect(cluster)
        .await
        .unwrap_or_else(|e| panic!("zookeeper-client connect {cluster}: {e}"))
}

fn open() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Runs `command` with `input` on stdin and returns whether it succeeded and its
/// stdout and stderr together.
fn run_client(mut command: Command, input: &str, out_path: &Path) -> (bool, String) {
    let out = std::fs::File::create(out_path).expect("client output file");
    let err = out.try_clone().expect("clone output file");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    {
        // Dropping stdin at the end of this block is the client's end of input.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let _ = stdin.write_all(input.as_bytes());
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait client") {
            break Some(status);
        }
        if start.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(out_path).unwrap_or_default();
    (status.is_some_and(|s| s.success()), output)
}

// ------------------------------------------------------------------ clients across servers

#[test]
fn kazoo_across_a_ferrokeeper_ensemble() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_kazoo = Command::new(&python)
        .args(["-c", "import kazoo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_kazoo {
        return skip(&format!("{python} has no kazoo (tests/run.sh installs it)"));
    }
    let ens = Ensemble::start(Kind::Ferrokeeper, 3);
    let leader = ens.leader();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross/kazoo_ensemble.py");
    let mut command = Command::new(&python);
    command.arg("-u").arg(script).arg(leader.to_string());
    for m in &ens.members {
        command.arg(format!("{}:{}", m.address(), m.pid().expect("running")));
    }
    let (ok, output) = run_client(command, "", &ens.dir.join("kazoo.out"));
    assert!(ok, "kazoo checks failed:\n{output}\n{}", ens.logs_tail(40));
    print!("{output}");
}

/// The kazoo checks again through the Rust `zookeeper-client` crate.
#[test]
fn rust_client_across_a_ferrokeeper_ensemble() {
    let mut ens = Ensemble::start(Kind::Ferrokeeper, 3);
    let leader = ens.leader();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (fa, fb) = (ens.address(followers[0]), ens.address(followers[1]));
    let rt = runtime();
    rt.block_on(async {
        let a = zk_connect(&fa).await;
        let b = zk_connect(&fb).await;
        // CRUD through followers: a follower answers a write after applying it, so the
        // writer reads its own write; the other follower does after a sync.
        a.create("/rc", b"", &open()).await.expect("create /rc");
        a.create("/rc/crud", b"one", &open()).await.expect("create");
        assert_eq!(a.get_data("/rc/crud").await.expect("get").0, b"one");
        b.sync("/rc/crud").await.expect("sync");
        assert_eq!(b.get_data("/rc/crud").await.expect("get").0, b"one");
        let stat = b.set_data("/rc/crud", b"two", Some(0)).await.expect("set");
        assert_eq!(stat.version, 1);
        a.sync("/rc/crud").await.expect("sync");
        assert_eq!(a.get_data("/rc/crud").await.expect("get").0, b"two");
        a.delete("/rc/crud", Some(1)).await.expect("delete");
        b.sync("/rc").await.expect("sync");
        assert_eq!(b.check_stat("/rc/crud").await.expect("exists"), None);

        // A watch set through one server fires for a write through another, and the
        // watcher then reads the new data (Programmer's Guide, "ZooKeeper Watches").
        a.create("/rc/w", b"0", &open()).await.expect("create");
        b.sync("/rc/w").await.expect("sync");
        let (_, _, watch) = b.get_and_watch_data("/rc/w").await.expect("watch");
        a.set_data("/rc/w", b"1", None).await.expect("set");
        let e = tokio::time::timeout(raw::IO_LIMIT, watch.changed())
            .await
            .expect("watch fired");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, "/rc/w")
        );
        assert_eq!(b.get_data("/rc/w").await.expect("get").0, b"1");

        // Sequential creates from every server at once get unique names.
        a.create("/rc/seq", b"", &open()).await.expect("create");
        let mut tasks = Vec::new();
        for addr in ens.addresses() {
            tasks.push(tokio::spawn(async move {
                let c = zk_connect(&addr).await;
                let mut names = Vec::new();
                let mode = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
                for _ in 0..20 {
                    let (_, seq) = c.create("/rc/seq/n-", b"", &mode).await.expect("create");
                    names.push(seq.to_string());
                }
                names
            }));
        }
        let mut names = Vec::new();
        for t in tasks {
            names.extend(t.await.expect("task"));
        }
        let total = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), total, "duplicate sequential names");
        a.sync("/rc/seq").await.expect("sync");
        assert_eq!(a.list_children("/rc/seq").await.expect("ls").len(), total);

        // An ephemeral goes when its session closes, seen through another server.
        let owner = zk_connect(&fa).await;
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        owner.create("/rc/eph", b"", &eph).await.expect("create");
        b.sync("/rc").await.expect("sync");
        let (stat, gone) = b.check_and_watch_stat("/rc/eph").await.expect("exists");
        assert!(stat.is_some());
        drop(owner);
        let e = tokio::time::timeout(raw::IO_LIMIT, gone.changed())
            .await
            .expect("deletion notified");
        assert_eq!(e.event_type, EventType::NodeDeleted);
        assert_eq!(b.check_stat("/rc/eph").await.expect("exists"), None);
        b.create("/rc/lag", b"", &open()).await.expect("create");
        a.sync("/rc/lag").await.expect("sync");
        drop((a, b));
    });

    // A lagging follower: frozen while the others commit a write, asked at once after it
    // thaws. `sync` makes it catch up before the read (Programmer's Guide, "sync").
    let lagging = followers[1];
    let (reader, writer) = rt.block_on(async { (zk_connect(&fb).await, zk_connect(&fa).await) });
    rt.block_on(reader.sync("/rc/lag")).expect("sync");
    ens.sigstop(lagging);
    let written = rt.block_on(writer.set_data("/rc/lag", b"written while frozen", None));
    ens.sigcont(lagging);
    written.expect("the two running members commit without the frozen one");
    rt.block_on(async {
        reader
            .sync("/rc/lag")
            .await
            .expect("sync on the lagging follower");
        assert_eq!(
            reader.get_data("/rc/lag").await.expect("get").0,
            b"written while frozen"
        );
    });
}

#[test]
fn zkcli_and_cli_mt_with_a_three_host_connect_string() {
    if !Path::new(ZKCLI).exists() || !Path::new(CLI_MT).exists() {
        return skip(&format!(
            "{ZKCLI} or {CLI_MT} is missing (apt-get install zookeeper zookeeper-bin)"
        ));
    }
    let ens = Ensemble::start(Kind::Ferrokeeper, 3);
    let hosts = ens.connect_string();

    let mut zkcli = Command::new(ZKCLI);
    zkcli.arg("-server").arg(&hosts);
    let input = "create /cli one\nget /cli\nset /cli two\nget /cli\ncreate -s /cli/s- x\n\
                 create -s /cli/s- x\nls /cli\ndelete /cli/s-0000000000\nls /cli\nquit\n";
    let (ok, out) = run_client(zkcli, input, &ens.dir.join("zkcli.out"));
    assert!(ok, "zkCli.sh failed:\n{out}");
    for want in [
        "Created /cli\n",
        "\none\n",
        "\ntwo\n",
        "Created /cli/s-0000000000",
        "Created /cli/s-0000000001",
        "[s-0000000000, s-0000000001]",
        "[s-0000000001]",
    ] {
        assert!(out.contains(want), "zkCli.sh output lacks {want:?}:\n{out}");
    }

    // cli_mt, one process per command (see tests/cross_client.rs), each with all three
    // hosts: whichever member it picks, it sees what the zkCli session wrote.
    let cli_mt = |cmd: &str, name: &str| {
        let mut c = Command::new(CLI_MT);
        c.arg("-h").arg(&hosts).arg("-c").arg(cmd);
        run_client(c, "", &ens.dir.join(name))
    };
    for i in 0..3 {
        let (ok, out) = cli_mt("get /cli", &format!("cli_mt-get{i}.out"));
        assert!(ok, "cli_mt failed:\n{out}");
        assert!(
            out.contains("/cli: rc = 0") && out.contains("\ntwo"),
            "cli_mt get /cli:\n{out}"
        );
    }
    let (ok, out) = cli_mt("create /cli/c", "cli_mt-create.out");
    assert!(ok && out.contains("[/cli/c]: rc = 0"), "{out}");
    let (ok, out) = cli_mt("ls /cli", "cli_mt-ls.out");
    assert!(
        ok && out.contains("s-0000000001") && out.contains("c"),
        "{out}"
    );
}

// ------------------------------------------------------------------ session moves

#[test]
fn session_move_java() {
    if !java_available() {
        return skip(
            "java or /usr/share/java/zookeeper.jar is missing (apt-get install zookeeper)",
        );
    }
    session_move(Kind::JavaZk);
}

#[test]
fn session_move_ferrokeeper() {
    session_move(Kind::Ferrokeeper);
}

/// A session reattached on another server (same id and password) keeps its ephemerals;
/// the connection it left is done with. A write still sent on the old connection gets
/// what a Java 3.8 ensemble gives it: no reply, the connection closed. The leader finds
/// the session owned by the other server (SessionMovedException), and the server
/// closes the connection instead of answering (FinalRequestProcessor,
/// ZOOKEEPER-710); no SessionMoved error code reaches the client. A handshake whose lastZxidSeen is beyond the server's last zxid is
/// refused: the server closes without a session ("Refusing session request for client
/// as it has seen zxid ... our last zxid is ...", ZooKeeperServer.processConnectRequest).
fn session_move(kind: Kind) {
    let ens = Ensemble::start(kind, 3);
    let leader = ens.leader();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (addr_a, addr_b) = (ens.address(followers[0]), ens.address(followers[1]));
    let rt = runtime();
    rt.block_on(async {
        let mut a = Conn::connect(&addr_a).await;
        assert_ne!(a.session_id, 0);
        let r = a
            .call(
                raw::op::CREATE,
                &ferrokeeper_net::records::CreateRequest {
                    path: "/moved".into(),
                    data: Vec::new().into(),
                    acl: raw::open_acl(),
                    flags: mode::EPHEMERAL,
                },
            )
            .await;
        assert_eq!(r.err, 0, "create the ephemeral");
        let last_zxid = r.zxid;
        // B may not have applied the create yet, and a server refuses a client that has
        // seen a newer zxid than its own (as the end of this test checks): a sync through
        // B first, as a client that found B behind would get by trying again.
        let mut helper = Conn::connect(&addr_b).await;
        assert_eq!(helper.sync("/").await, Ok("/".into()));
        helper.close().await;

        let mut b = Conn::connect_with(
            &addr_b,
            ConnectOptions {
                session_id: a.session_id,
                passwd: a.passwd.clone(),
                last_zxid_seen: last_zxid,
                ..ConnectOptions::default()
            },
        )
        .await;
        assert_eq!(
            b.session_id, a.session_id,
            "{kind:?}: the session reattaches on B"
        );
        assert_eq!(
            b.exists("/moved", false).await.map(|s| s.ephemeral_owner),
            Ok(a.session_id)
        );

        // Java 3.8 leaves A's connection open when the session moves, and A even serves
        // reads from its copy (a read is not checked against the session's owner); the
        // first write closes it. ferrokeeper closes A as soon as the move commits, the
        // stricter choice: a client there stops acting on a session that now lives
        // elsewhere at once. Either way a write on A is never answered nor applied.
        match kind {
            Kind::JavaZk => {
                let read = a.exists("/moved", false).await;
                assert!(
                    read.is_ok(),
                    "Java serves a read on the old connection: {read:?}"
                );
            }
            Kind::Ferrokeeper => {
                // Waits (up to raw::IO_LIMIT) for the close without sending anything.
                let closed = a.next_incoming().await;
                assert!(
                    matches!(closed, raw::Incoming::Closed),
                    "A's connection is closed when the session moves: {closed:?}"
                );
            }
        }
        let r = a.set_data("/moved", b"from A", -1).await;
        assert_eq!(
            r,
            Err(err::CLOSED),
            "{kind:?}: a write on the old connection is not answered (the connection closes)"
        );
        assert!(a.is_closed());
        // Whether or not it was sent, the write did not happen and the ephemeral stays.
        assert_eq!(b.sync("/").await, Ok("/".into()));
        let (data, stat) = b
            .get_data("/moved", false)
            .await
            .expect("ephemeral survives");
        assert!(
            data.is_empty(),
            "{kind:?}: a write on the moved-from connection applied"
        );
        assert_eq!(stat.ephemeral_owner, b.session_id);

        // lastZxidSeen beyond the server's zxid: refused, no session.
        let (zxid, _) = ens.zxid_and_count(followers[0]).expect("srvr");
        let refused = Conn::connect_with(
            &addr_a,
            ConnectOptions {
                last_zxid_seen: zxid + (1 << 40),
                ..ConnectOptions::default()
            },
        )
        .await;
        assert_eq!(
            refused.session_id, 0,
            "{kind:?}: a client from the future is refused"
        );
        b.close().await;
    });
}

// ------------------------------------------------------------------ faults

/// What the writers of a load had acknowledged.
#[derive(Default)]
struct Acked {
    /// Every create that was answered Ok.
    creates: Vec<String>,
    /// For each writer's node, the highest version a setData was answered with.
    versions: HashMap<String, i32>,
    /// (sent, answered) of every acknowledged write.
    times: Vec<(Instant, Instant)>,
}

/// A write load from `writers` clients spread over the ensemble: each creates
/// `/<root>/w<k>-<i>` and sets `/<root>/w<k>` in turn, and records what was acknowledged.
struct Load {
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(rt: &tokio::runtime::Runtime, ens: &Ensemble, root: &str, writers: usize) -> Load {
        let addrs = ens.addresses();
        rt.block_on(async {
            let c = zk_connect(&ens.connect_string()).await;
            c.create(root, b"", &open())
                .await
                .expect("create load root");
            for k in 0..writers {
                c.create(&format!("{root}/w{k}"), b"", &open())
                    .await
                    .expect("create writer node");
            }
        });
        let acked = Arc::new(Mutex::new(Acked::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for k in 0..writers {
            // Each writer lists the members starting at a different one; the client
            // shuffles them, so the writers end up over all servers either way.
            let mut hosts = addrs.clone();
            hosts.rotate_left(k % addrs.len());
            let hosts = hosts.join(",");
            let (acked, stop, root) = (acked.clone(), stop.clone(), root.to_string());
            tasks.push(rt.spawn(writer(k, hosts, root, acked, stop)));
        }
        Load { acked, stop, tasks }
    }

    /// Stops the writers and returns what they had acknowledged.
    fn stop(self, rt: &tokio::runtime::Runtime) -> Acked {
        self.stop.store(true, Ordering::SeqCst);
        rt.block_on(async {
            for t in self.tasks {
                t.await.expect("writer task");
            }
        });
        std::mem::take(&mut *self.acked.lock().expect("acked lock"))
    }

    /// Waits for the first acknowledged write sent at or after `from`; returns how long
    /// after `from` its answer came.
    fn first_ack_after(&self, from: Instant) -> Duration {
        let deadline = Instant::now() + FORM_LIMIT;
        loop {
            let best = self
                .acked
                .lock()
                .expect("acked lock")
                .times
                .iter()
                .filter(|(sent, _)| *sent >= from)
                .map(|(_, answered)| *answered - from)
                .min();
            if let Some(d) = best {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "no write acknowledged since the fault"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

async fn writer(
    k: usize,
    hosts: String,
    root: String,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let node = format!("{root}/w{k}");
    let mut client = zk_connect(&hosts).await;
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let path = format!("{root}/w{k}-{i:08}");
        i += 1;
        let sent = Instant::now();
        let created = client.create(&path, b"", &open()).await;
        let answered = Instant::now();
        if created.is_ok() {
            let mut a = acked.lock().expect("acked lock");
            a.creates.push(path);
            a.times.push((sent, answered));
        }
        let sent = Instant::now();
        let set = client.set_data(&node, &i.to_be_bytes(), None).await;
        let answered = Instant::now();
        match set {
            Ok(stat) => {
                let mut a = acked.lock().expect("acked lock");
                let v = a.versions.entry(node.clone()).or_insert(0);
                *v = (*v).max(stat.version);
                a.times.push((sent, answered));
            }
            Err(e) => {
                if client.state().is_terminated() {
                    eprintln!("writer {k}: session ended ({e}); opening another");
                    client = zk_connect(&hosts).await;
                }
                // Unanswered (connection lost, no leader yet): the next write tries again.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if created.is_err() && client.state().is_terminated() {
            client = zk_connect(&hosts).await;
        }
    }
}

/// After every member converged: every acknowledged create exists and every writer's
/// node has reached the highest acknowledged version, on every member.
fn check_nothing_acked_lost(
    rt: &tokio::runtime::Runtime,
    ens: &Ensemble,
    root: &str,
    acked: &Acked,
) {
    for addr in ens.addresses() {
        rt.block_on(async {
            let c = zk_connect(&addr).await;
            c.sync(root).await.expect("sync");
            let children: std::collections::HashSet<String> = c
                .list_children(root)
                .await
                .expect("list")
                .into_iter()
                .map(|n| format!("{root}/{n}"))
                .collect();
            let lost: Vec<&String> = acked
                .creates
                .iter()
                .filter(|p| !children.contains(*p))
                .collect();
            assert!(
                lost.is_empty(),
                "{addr}: {} of {} acknowledged creates are lost, first {:?}",
                lost.len(),
                acked.creates.len(),
                lost.first()
            );
            for (node, version) in &acked.versions {
                let (_, stat) = c.get_data(node).await.expect("writer node");
                assert!(
                    stat.version >= *version,
                    "{addr}: {node} at version {} below the acknowledged {version}",
                    stat.version
                );
            }
        });
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn failover_kill9_leader_under_write_load() {
    let kills: usize = std::env::var("FK_ENSEMBLE_KILLS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(3);
    let mut ens = Ensemble::start(Kind::Ferrokeeper, 3);
    let rt = runtime();
    let load = Load::start(&rt, &ens, "/fo", 6);
    let mut failovers = Vec::new();
    for round in 0..kills {
        let leader = ens.leader();
        // Some load on the settled ensemble before the fault.
        let warm = Instant::now();
        load.first_ack_after(warm);
        std::thread::sleep(Duration::from_millis(200));
        let killed_at = Instant::now();
        ens.kill9(leader);
        let failover = load.first_ack_after(killed_at);
        eprintln!(
            "kill {}/{kills}: member {} (leader) killed; next acknowledged write after {failover:?}",
            round + 1,
            leader + 1
        );
        failovers.push(failover);
        ens.restart(leader);
    }
    let acked = load.stop(&rt);
    let (zxid, count) = ens.wait_converged();
    check_nothing_acked_lost(&rt, &ens, "/fo", &acked);
    failovers.sort();
    eprintln!(
        "failover over {kills} kills: p50 {:?}, p99 {:?}, max {:?}; {} creates and {} writes \
         acknowledged, none lost; converged at zxid {zxid:#x} with {count} nodes",
        percentile(&failovers, 0.5),
        percentile(&failovers, 0.99),
        failovers.last().expect("at least one kill"),
        acked.creates.len(),
        acked.times.len()
    );
}

/// A port claimed by a live test process is not drawn by another, and its claim ends
/// with that process. CI once saw a killed member's ports drawn by another test's ensemble
/// while it was down: its restart failed to bind, and the other ensemble's server answered
/// `srvr` on its client port.
#[test]
fn a_port_claimed_by_a_live_test_process_is_not_drawn_again() {
    let port = common::free_port();
    let file = std::env::temp_dir()
        .join("ferrokeeper-tests")
        .join("ports")
        .join(port.to_string());
    // The claim is a flock(2); util-linux `flock` takes the same lock in another process.
    // This process holds `port` already, so first a port nobody holds: one above it.
    let other = port + 1;
    let other_file = file.with_file_name(other.to_string());
    // `--no-fork`: one process holds the lock, so killing it ends the claim.
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(&other_file)
        .args(["-c", "echo locked; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run flock(1)");
    // flock(1) runs its command only once it holds the lock.
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().expect("stdout")),
        &mut said,
    )
    .expect("read flock(1)");
    assert_eq!(said.trim(), "locked");
    assert!(
        !common::claim_port(other),
        "a port another process claimed was drawn"
    );
    holder.kill().expect("kill flock(1)");
    holder.wait().expect("wait flock(1)");
    assert!(common::claim_port(other), "the claim outlived its process");
    assert!(file.exists(), "free_port left no claim for {port}");
}

#[test]
fn sigstop_leader_past_the_election_timeout() {
    let mut ens = Ensemble::start(Kind::Ferrokeeper, 3);
    let rt = runtime();
    let load = Load::start(&rt, &ens, "/stop", 4);
    let old = ens.leader();
    load.first_ack_after(Instant::now());
    let stopped_at = Instant::now();
    ens.sigstop(old);
    // A new leader among the two others serves while the old one is frozen.
    let new = ens.leader();
    let elected = stopped_at.elapsed();
    assert_ne!(new, old);
    // A new session on the new leader: its write shows when the ensemble serves again,
    // apart from the load's clients, which may first try the frozen member and wait out
    // their connection timeout there.
    let probe_addr = ens.address(new);
    rt.block_on(async {
        let mut c = Conn::connect(&probe_addr).await;
        let r = c.create("/stop-probe", b"", raw::open_acl(), 0).await;
        assert_eq!(r.map(|_| ()), Ok(()), "a write on the new leader");
    });
    let probe = stopped_at.elapsed();
    let served = load.first_ack_after(stopped_at);
    eprintln!(
        "member {} frozen; member {} leads (seen {elected:?} after the freeze; a new \
         session's write on it done {probe:?} after); the load's next acknowledged write \
         after {served:?}",
        old + 1,
        new + 1
    );
    // Frozen well past the election timeout (8 to 16 ticks of 50 ms): the new term is
    // under way with writes in it when the old leader wakes.
    std::thread::sleep(Duration::from_secs(2));
    ens.sigcont(old);
    let mode = ens.wait_joined(old);
    let leader = ens.leader();
    eprintln!(
        "member {} thawed: {mode}; member {} leads",
        old + 1,
        leader + 1
    );
    // Writes go on after the thaw, then the load stops and everything settles.
    load.first_ack_after(Instant::now());
    let acked = load.stop(&rt);
    let (zxid, count) = ens.wait_converged();
    assert_eq!(
        ens.mode(old).as_deref(),
        Some(if leader == old { "leader" } else { "follower" })
    );
    check_nothing_acked_lost(&rt, &ens, "/stop", &acked);
    eprintln!(
        "{} creates acknowledged, none lost; converged at zxid {zxid:#x} with {count} nodes",
        acked.creates.len()
    );
}

/// A leader cut off from both followers by blackhole routes (one network namespace per
/// member): the two followers elect a leader and serve; the old leader cannot commit and
/// steps down (it has lost its quorum); after the heal it follows and catches up, and
/// nothing acknowledged is lost. Clients run outside the namespaces and reach every
/// member throughout, as clients do when only the links between servers fail.
#[test]
fn partition_leader_from_followers() {
    let netns = match common::netns::Netns::create(3) {
        Ok(n) => n,
        Err(why) => return skip(&format!("network namespaces are unavailable here: {why}")),
    };
    let options = EnsembleOptions {
        hosts: (0..3).map(|i| netns.host(i)).collect(),
        ip_prefixes: (0..3).map(|i| netns.exec_prefix(i)).collect(),
        ..EnsembleOptions::default()
    };
    let ens = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
    let rt = runtime();
    let load = Load::start(&rt, &ens, "/part", 4);
    let old = ens.leader();
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    load.first_ack_after(Instant::now());
    for &o in &others {
        netns.cut(old, o);
    }
    // Timed from when the last route is in: a write sent while `ip` was still at work
    // may commit with the old leader.
    let cut_at = Instant::now();
    let new = ens.leader_of(&others);
    let elected = cut_at.elapsed();
    let served = load.first_ack_after(cut_at);
    eprintln!(
        "member {} cut off; member {} leads the majority (seen {elected:?} after the cut); \
         next acknowledged write after {served:?}; the old leader says {:?} (it steps down \
         when its quorum has been quiet for an election timeout)",
        old + 1,
        new + 1,
        ens.mode(old)
    );
    // Writes go on in the majority for a while before the heal.
    std::thread::sleep(Duration::from_secs(1));
    for &o in &others {
        netns.heal(old, o);
    }
    let leader = ens.leader();
    eprintln!(
        "healed: member {} says {:?}; member {} leads",
        old + 1,
        ens.mode(old),
        leader + 1
    );
    load.first_ack_after(Instant::now());
    let acked = load.stop(&rt);
    let (zxid, count) = ens.wait_converged();
    check_nothing_acked_lost(&rt, &ens, "/part", &acked);
    eprintln!(
        "{} creates acknowledged, none lost; converged at zxid {zxid:#x} with {count} nodes",
        acked.creates.len()
    );
    drop(ens);
    drop(netns);
}

// ------------------------------------------------------------------ differential

/// Config both ensembles get for the differential run (see tests/differential.rs).
const DIFF_CONFIG: &[(&str, &str)] = &[
    ("znode.container.checkIntervalMs", "3600000"),
    ("forceSync", "no"),
    ("snapCount", "200"),
];

#[test]
fn differential_ensemble_ferrokeeper_vs_java() {
    if !java_available() {
        return skip(
            "java or /usr/share/java/zookeeper.jar is missing (apt-get install zookeeper)",
        );
    }
    let options = EnsembleOptions::config(DIFF_CONFIG);
    let ops: usize = std::env::var("FK_DIFF_OPS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("FK_DIFF_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(11);
    // A Java follower now and then never answers a request of a session it has just
    // created (seen about once in eight runs: the new session's first request, no reply
    // and no error, the log quiet). That is the reference failing, not the candidate. And
    // on a loaded machine a member can miss the leader's heartbeats long enough for an
    // election, after which ZooKeeper's rule closes every client connection: right
    // behaviour, but no comparison can go on. Either way the run goes again, on the next
    // seed and on fresh ensembles (sessions left open by the broken run would expire
    // during the next one, at different times on the two sides), and says so: up to three
    // more times, since under CI's parallel tests the Java hang came twice in a row
    // (2026-12-05, seeds 11 and 12: each a new session's first request on a Java follower,
    // its log quiet after "auth success"). Later hangs were not only first requests: a
    // create, a session's 888th request, on a follower while two CPU hogs ran (seed 23;
    // the same seed replayed on a quiet machine passed), and four attempts in a row in
    // one CI run. The test now runs alone (.config/nextest.toml) and gets six attempts.
    // Any other hang or divergence fails at once.
    const ATTEMPTS: usize = 6;
    let mut attempt_seed = seed;
    for attempt in 0..ATTEMPTS {
        let java = Ensemble::start_with(Kind::JavaZk, 3, &options);
        let ferro = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
        // The candidate's sessions go to every member, the leader included. The
        // reference's go to Java's two followers only: on the Java leader a client's
        // sync can be answered before a notification for a write committed just before
        // it reaches the same connection (seen here: a recursive watch's NodeCreated
        // missing from the step and arriving after the settling sync), which would make
        // the comparison flaky, while a follower's sync comes back through the leader
        // behind the commits it must follow.
        // Under CI's parallel tests a Java member once never left its election within
        // the two minutes (2026-12-06, modes [follower, leader, None]): the reference
        // failing again, so a fresh pair of ensembles, as for a hang.
        let java_leader = match java.try_leader(FORM_LIMIT) {
            Ok(leader) => leader,
            Err(why) if attempt + 1 < ATTEMPTS => {
                eprintln!(
                    "differential (ensembles): the Java reference did not settle ({why}); once more with fresh ensembles\n{}",
                    java.logs_tail(20)
                );
                continue;
            }
            Err(why) => panic!(
                "the Java reference did not settle: {why}\n{}",
                java.logs_tail(40)
            ),
        };
        let ra: Vec<String> = (0..3)
            .filter(|&i| i != java_leader)
            .map(|i| java.address(i))
            .collect();
        let ca = ferro.addresses();
        let elections = |e: &Ensemble| {
            e.members
                .iter()
                .map(|m| {
                    m.log()
                        .matches("leader changed: closing client connections")
                        .count()
                })
                .sum::<usize>()
        };
        let elections_before = elections(&ferro);
        eprintln!("differential (ensembles): seed {attempt_seed}, {ops} ops; replay with FK_DIFF_SEED={attempt_seed} FK_DIFF_OPS={ops}");
        let worker = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(diff::run_seed(attempt_seed, ops, &ra, &ca));
            })
            .expect("spawn differential thread");
        let Err(panic) = worker.join() else {
            break;
        };
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        let reference_hang = java
            .addresses()
            .iter()
            .any(|a| msg.contains(&format!("no frame from the server {a} ")));
        let candidate_election = elections(&ferro) > elections_before;
        if attempt + 1 < ATTEMPTS && (reference_hang || candidate_election) {
            let why = if reference_hang {
                "the Java reference stopped answering"
            } else {
                "ferrokeeper's members held an election (clients closed, as ZooKeeper does)"
            };
            eprintln!("differential (ensembles): {why} ({msg}); once more on the next seed with fresh ensembles");
            attempt_seed += 1;
            continue;
        }
        eprintln!("{}", ferro.logs_tail(30));
        std::panic::resume_unwind(panic);
    }
}

/// Curator's InterProcessMutex, a counter incremented under it and a LeaderLatch, run by
/// four workers for 12 s while the leader is killed with -9 and restarted
/// (`tests/cross/CuratorEnsemble.java`): no increment lost or doubled, no two holders of
/// the lock, exactly one latch leader at the end.
fn curator_recipes_survive_a_leader_kill(kind: Kind) {
    let cp = match common::curator_classpath() {
        Ok(cp) => cp,
        Err(why) => return skip(&why),
    };
    if kind == Kind::JavaZk && !java_available() {
        return skip("java or Debian's zookeeper package is missing");
    }
    let mut ens = Ensemble::start(kind, 3);
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross/CuratorEnsemble.java");
    let mut child = Command::new("java")
        .args(["-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", &cp])
        .arg(&program)
        .args([ens.connect_string().as_str(), "4", "12", "/curator"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start java");
    std::thread::sleep(Duration::from_secs(5));
    let leader = ens.leader();
    ens.kill9(leader);
    std::thread::sleep(Duration::from_secs(3));
    ens.restart(leader);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait java") {
            break s;
        }
        if started.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            panic!("the Curator program did not finish\n{}", ens.logs_tail(40));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("java output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{kind:?}: {}", stdout.trim());
    assert!(
        status.success(),
        "{kind:?}: Curator recipes failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn curator_recipes_survive_a_leader_kill_ferrokeeper() {
    curator_recipes_survive_a_leader_kill(Kind::Ferrokeeper);
}

#[test]
fn curator_recipes_survive_a_leader_kill_java() {
    curator_recipes_survive_a_leader_kill(Kind::JavaZk);
}
