//! Shared harness for black-box tests: starts ferrokeeper (the binary this package
//! builds) or Apache ZooKeeper 3.8 from Debian on a free loopback port with a zoo.cfg
//! written for the test, waits until it answers `ruok`, and kills it on drop.
//!
//! Both servers get the same config lines, so a differential test compares like with
//! like. Java ZooKeeper passes unknown zoo.cfg keys on as `zookeeper.<key>` system
//! properties, so `extendedTypesEnabled=true` in zoo.cfg enables TTL nodes on both.
//! Keys that Java reads as bare system properties (`znode.container.checkIntervalMs`,
//! ...) are also passed to the JVM as `-D` flags, see [`JAVA_BARE_PROPERTY_PREFIXES`].
//!
//! [`Server::shared`] starts one server per kind per test binary and keeps it for the
//! whole run, so a suite of many short scenarios pays the JVM start once.
#![allow(dead_code)]

pub mod ensemble;
pub mod linearize;
pub mod netns;
pub mod pki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This project's server.
    Ferrokeeper,
    /// Apache ZooKeeper 3.8 from Debian's `zookeeper` package.
    JavaZk,
}

/// The config lines every test server gets unless a test overrides them.
pub const BASE_CONFIG: &[(&str, &str)] = &[
    ("tickTime", "2000"),
    ("clientPortAddress", "127.0.0.1"),
    ("4lw.commands.whitelist", "*"),
    ("maxClientCnxns", "0"),
    ("extendedTypesEnabled", "true"),
    ("admin.enableServer", "false"),
];

/// Config keys that Apache ZooKeeper reads with `Integer.getInteger("<key>")` rather than
/// from zoo.cfg. Its config parser turns an unknown zoo.cfg key into the system property
/// `zookeeper.<key>` (QuorumPeerConfig.parseProperties), which these readers never look
/// at: `ZooKeeperServerMain.runFromConfig` reads `znode.container.checkIntervalMs`,
/// `znode.container.maxPerMinute` and `znode.container.maxNeverUsedIntervalMs` bare. So
/// the harness passes them to the JVM as `-D<key>=<value>` as well as writing them to
/// zoo.cfg, where ferrokeeper reads them.
pub const JAVA_BARE_PROPERTY_PREFIXES: &[&str] = &["znode.", "readonlymode."];

const JAVA_ZK_JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-handler.jar:/usr/share/java/netty-transport.jar:/usr/share/java/netty-common.jar:/usr/share/java/netty-buffer.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-epoll.jar:/usr/share/java/netty-transport-native-unix-common.jar";

/// How a server process is started beyond its zoo.cfg.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// System properties: `-Dk=v` before the config path for ferrokeeper, JVM flags for
    /// Java.
    pub properties: Vec<(String, String)>,
    /// Environment variables for ferrokeeper (`SERVER_JVMFLAGS`, `JVMFLAGS`). Java takes
    /// these through `zkServer.sh`, which the harness does not use, so a test that sets
    /// them runs ferrokeeper only.
    pub env: Vec<(String, String)>,
    /// Java only: put Jetty, the servlet API and Jackson ([`JAVA_ADMIN_JARS`]) on the
    /// classpath, so Java ZooKeeper runs its AdminServer.
    pub java_admin_server: bool,
}

/// The jars Java ZooKeeper's AdminServer needs beyond the harness's classpath (Debian
/// packages Jetty 9, the servlet API and Jackson apart from ZooKeeper).
pub const JAVA_ADMIN_JARS: &[&str] = &[
    "jetty9-server",
    "jetty9-servlet",
    "jetty9-http",
    "jetty9-io",
    "jetty9-util",
    "jetty9-security",
    "jetty9-util-ajax",
    "servlet-api",
    "jackson-core",
    "jackson-databind",
    "jackson-annotations",
];

/// The first of [`JAVA_ADMIN_JARS`] that is not installed, as a path.
pub fn missing_java_admin_jar() -> Option<String> {
    JAVA_ADMIN_JARS
        .iter()
        .map(|j| format!("/usr/share/java/{j}.jar"))
        .find(|j| !Path::new(j).exists())
}

impl Launch {
    /// A launch with these system properties.
    pub fn properties(properties: &[(&str, &str)]) -> Launch {
        Launch {
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Launch::default()
        }
    }
}

/// A running server, killed when dropped.
pub struct Server {
    /// Which server this is.
    pub kind: Kind,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// Its temp directory (zoo.cfg, data, log).
    pub dir: PathBuf,
    child: Child,
}

/// A loopback port that was free a moment ago, for a server a test is about to start.
///
/// Ports come from below the kernel's ephemeral range (`ip_local_port_range`), so that no
/// client socket of a parallel test can be handed the port between this check and the
/// server's bind; and they are drawn at random, so that the many processes nextest runs
/// at once rarely draw the same one (a port is checked by binding it on 127.0.0.1 and on
/// the wildcard address, then released). One process never gets a port twice. The
/// ensemble range ([`ensemble::PORT_RANGE_START`]..) lies below this one.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let low = ensemble::PORT_RANGE_END;
    let high = ephemeral_low().max(low + 1000);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..10_000 {
        let port = rand::random_range(low..high);
        // Claim before the bind check: the check's listener holds the port for a moment,
        // and a test restarting the server whose port it is would fail to bind then.
        if !given.contains(&port)
            && claim_port(port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

/// Claims `port` for this test process until it exits; false when another live test
/// process holds it. A free-port check alone cannot see a port whose server a test has
/// killed and is about to restart; the claim can. It is an exclusive `flock` on
/// `<tmp>/ferrokeeper-tests/ports/<port>`, which the kernel drops when the process exits,
/// so a crashed test leaves nothing stale. The lock file stays open for the process's
/// life (the descriptor is close-on-exec: servers the test starts do not inherit it).
pub fn claim_port(port: u16) -> bool {
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;
    static CLAIMS: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("ferrokeeper-tests").join("ports");
    if std::fs::create_dir_all(&dir).is_err() {
        // No place for claims (an unwritable temp dir): the bind check alone decides.
        return true;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return true;
    };
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    CLAIMS.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    true
}

/// Whether process `pid` runs: it exists and is not a zombie (a child that has exited but
/// was not waited for still answers `kill(pid, 0)`).
pub fn process_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')' (the command may hold one).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The first port of the kernel's ephemeral range (32768 if it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

fn temp_dir(kind: Kind) -> PathBuf {
    let base = std::env::temp_dir().join("ferrokeeper-tests");
    std::fs::create_dir_all(&base).expect("create temp base");
    let name = format!(
        "{:?}-{}-{}",
        kind,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let d = base.join(name);
    std::fs::create_dir_all(d.join("data")).expect("create data dir");
    d
}

/// The names in `dir` that start with `prefix`, sorted (none when `dir` cannot be read).
pub fn names_in(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// [`names_in`] without the `.tmp` files of a write not finished (or left by a kill).
pub fn finished_names_in(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v = names_in(dir, prefix);
    v.retain(|n| !n.ends_with(".tmp"));
    v
}

/// The snapshot names in `dir` once its snapshots have settled: exactly one plain
/// snapshot, at least `min_compressed` compressed ones (superseded snapshots are
/// compressed in the background), no temp file, the same across two looks. Panics with
/// `context()` after `limit` (a deadline for a broken setup, not a timing assertion).
pub fn settled_snapshots(
    dir: &Path,
    min_compressed: usize,
    limit: Duration,
    context: impl Fn() -> String,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut last = Vec::new();
    loop {
        let now = names_in(dir, "fk-snap.");
        let plain = now
            .iter()
            .filter(|n| n.len() == "fk-snap.".len() + 16)
            .count();
        let compressed = now.iter().filter(|n| n.ends_with(".zst")).count();
        let tmp = now.iter().any(|n| n.ends_with(".tmp"));
        if plain == 1 && compressed >= min_compressed && !tmp && now == last {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{}: snapshots never settled within {limit:?}: {now:?}\n{}",
            dir.display(),
            context()
        );
        last = now;
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Server {
    /// ferrokeeper's snapshot directory under this server's dataDir.
    pub fn snap_dir(&self) -> PathBuf {
        self.dir.join("data/ferrokeeper/snap")
    }

    /// ferrokeeper's transaction log directory under this server's dataDir.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("data/ferrokeeper/log")
    }

    /// Starts ferrokeeper with the base config.
    pub fn ferrokeeper() -> Server {
        Server::start(Kind::Ferrokeeper, &[])
    }

    /// Starts Apache ZooKeeper with the base config.
    pub fn java() -> Server {
        Server::start(Kind::JavaZk, &[])
    }

    /// Starts `kind` with the base config plus `extra` lines (later keys win).
    pub fn start(kind: Kind, extra: &[(&str, &str)]) -> Server {
        Server::start_inner(kind, extra, &Launch::default(), false, None, None)
    }

    /// Starts `kind` like [`Server::start`] on a copy of `data` as its dataDir (a
    /// ZooKeeper `version-2` tree for Java, a `ferrokeeper` tree for ferrokeeper).
    pub fn start_from_data(kind: Kind, extra: &[(&str, &str)], data: &Path) -> Server {
        Server::start_inner(kind, extra, &Launch::default(), false, None, Some(data))
    }

    /// [`Server::start_from_data`] on a given client port (for tests that keep to a port
    /// range of their own).
    pub fn start_from_data_on_port(
        kind: Kind,
        port: u16,
        extra: &[(&str, &str)],
        data: &Path,
    ) -> Server {
        Server::start_inner(
            kind,
            extra,
            &Launch::default(),
            false,
            Some(port),
            Some(data),
        )
    }

    /// Starts `kind` with the base config plus `extra`, and `launch`'s system properties
    /// and environment.
    pub fn start_with(kind: Kind, extra: &[(&str, &str)], launch: &Launch) -> Server {
        Server::start_inner(kind, extra, launch, false, None, None)
    }

    /// Starts `kind` like [`Server::start`] but on a given client port (taking over a
    /// port another server has just left).
    pub fn start_on_port(kind: Kind, port: u16, extra: &[(&str, &str)]) -> Server {
        Server::start_inner(kind, extra, &Launch::default(), false, Some(port), None)
    }

    /// Starts `kind` like [`Server::start_with`] but on a given client port (for tests
    /// that keep to a port range of their own).
    pub fn start_on_port_with(
        kind: Kind,
        port: u16,
        extra: &[(&str, &str)],
        launch: &Launch,
    ) -> Server {
        Server::start_inner(kind, extra, launch, false, Some(port), None)
    }

    /// The one server of `kind` this test binary shares between its tests, started with
    /// the base config plus `extra` on first use (later calls' `extra` is ignored). It
    /// lives until the test process exits: it is spawned from a thread that never ends
    /// with `PR_SET_PDEATHSIG`, so the kernel kills it when the test process dies however
    /// it dies, and an `atexit` hook kills it and removes its directory on a normal exit
    /// (set `FK_KEEP_TEST_DIRS=1` to keep the directory and its `server.log`).
    /// Tests that share it must each work under their own root path.
    pub fn shared(kind: Kind, extra: &'static [(&'static str, &'static str)]) -> &'static Server {
        static SHARED: [std::sync::OnceLock<Server>; 2] =
            [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
        let slot = match kind {
            Kind::Ferrokeeper => 0,
            Kind::JavaZk => 1,
        };
        SHARED[slot].get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("shared-{kind:?}-parent"))
                .spawn(move || {
                    // A panic here (the server failed to start) reaches the test through
                    // the closed channel below.
                    let server =
                        Server::start_inner(kind, extra, &Launch::default(), true, None, None);
                    let _ = tx.send(server);
                    // The server's parent-death signal is tied to this thread: keep it.
                    loop {
                        std::thread::park();
                    }
                })
                .expect("spawn shared server thread");
            let server = rx
                .recv()
                .unwrap_or_else(|_| panic!("shared {kind:?} server failed to start"));
            register_shared_cleanup(server.pid(), server.dir.clone());
            server
        })
    }

    fn start_inner(
        kind: Kind,
        extra: &[(&str, &str)],
        launch: &Launch,
        die_with_parent_thread: bool,
        port: Option<u16>,
        seed: Option<&Path>,
    ) -> Server {
        let dir = temp_dir(kind);
        if let Some(seed) = seed {
            let copied = Command::new("cp")
                .arg("-a")
                .arg(seed.join("."))
                .arg(dir.join("data"))
                .status()
                .expect("run cp");
            assert!(
                copied.success(),
                "copy {} into the data dir",
                seed.display()
            );
        }
        let port = port.unwrap_or_else(free_port);
        let mut cfg = String::new();
        let mut lines: Vec<(String, String)> = BASE_CONFIG
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in extra {
            lines.retain(|(lk, _)| lk != k);
            lines.push((k.to_string(), v.to_string()));
        }
        for (k, v) in &lines {
            cfg.push_str(&format!("{k}={v}\n"));
        }
        cfg.push_str(&format!("clientPort={port}\n"));
        cfg.push_str(&format!("dataDir={}\n", dir.join("data").display()));
        let cfg_path = dir.join("zoo.cfg");
        std::fs::write(&cfg_path, cfg).expect("write zoo.cfg");
        let log = std::fs::File::create(dir.join("server.log")).expect("create server.log");
        let log2 = log.try_clone().expect("clone log");
        let mut java_properties: Vec<String> = lines
            .iter()
            .filter(|(k, _)| JAVA_BARE_PROPERTY_PREFIXES.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| format!("-D{k}={v}"))
            .collect();
        let launch_properties: Vec<String> = launch
            .properties
            .iter()
            .map(|(k, v)| format!("-D{k}={v}"))
            .collect();
        java_properties.extend(launch_properties.iter().cloned());
        let mut command = match kind {
            Kind::Ferrokeeper => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_ferrokeeper"));
                c.args(&launch_properties).arg(&cfg_path);
                for (k, v) in &launch.env {
                    c.env(k, v);
                }
                c
            }
            Kind::JavaZk => {
                assert!(
                    Path::new("/usr/share/java/zookeeper.jar").exists(),
                    "Apache ZooKeeper is not installed: run the README's test command (tests/run.sh), which installs it"
                );
                let mut classpath = JAVA_ZK_JARS.to_string();
                if launch.java_admin_server {
                    for j in JAVA_ADMIN_JARS {
                        classpath.push_str(&format!(":/usr/share/java/{j}.jar"));
                    }
                }
                let mut c = Command::new("java");
                c.args(["-Xmx512m", "-Dzookeeper.extendedTypesEnabled=true"])
                    .args(&java_properties)
                    .args(["-cp", &classpath])
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg_path);
                c
            }
        };
        if die_with_parent_thread {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if kind == Kind::Ferrokeeper {
            command.env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        }
        let child = command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {kind:?}: {e}"));
        let mut server = Server {
            kind,
            port,
            dir,
            child,
        };
        server.wait_ready(Duration::from_secs(60));
        server
    }

    /// Kills ferrokeeper with SIGKILL (no shutdown of any kind) and starts it again on
    /// the same port, config and data directory; returns once it answers `ruok`.
    pub fn kill9_and_restart(&mut self) {
        self.kill9_change_restart(|| {});
    }

    /// `kill9_and_restart` with `change` run while the server is down: files changed
    /// then are what the restart finds, with no snapshot written in between.
    pub fn kill9_change_restart(&mut self, change: impl FnOnce()) {
        assert_eq!(
            self.kind,
            Kind::Ferrokeeper,
            "only ferrokeeper restarts here"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        change();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("open server.log");
        let log2 = log.try_clone().expect("clone log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrokeeper"));
        command.arg(self.dir.join("zoo.cfg")).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        self.child = command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("respawn ferrokeeper");
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} exited during startup ({status}); log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            // Java ZooKeeper answers `ruok` as soon as its listener is bound, before the
            // server is running: a session opened then is closed at once ("ZooKeeperServer
            // not running", NIOServerCnxn.readLength). `srvr` tells the two apart: until
            // the server runs it answers "This ZooKeeper instance is not currently serving
            // requests" (NIOServerCnxn / FourLetterCommands).
            if let Ok(reply) = four_letter_word(self.port, "ruok") {
                if reply == "imok" {
                    if let Ok(srvr) = four_letter_word(self.port, "srvr") {
                        if !srvr.contains("not currently serving") {
                            return;
                        }
                    }
                }
            }
            if start.elapsed() > limit {
                panic!(
                    "{:?} not ready after {limit:?}; log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// "127.0.0.1:port".
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends a four-letter word and returns the whole reply.
    pub fn four_letter(&self, cmd: &str) -> String {
        four_letter_word(self.port, cmd).expect("four-letter word")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The process id (for CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Shared servers to kill (pid) and directories to remove when the test process exits.
static SHARED_CLEANUP: std::sync::Mutex<Vec<(u32, PathBuf)>> = std::sync::Mutex::new(Vec::new());

fn register_shared_cleanup(pid: u32, dir: PathBuf) {
    extern "C" fn cleanup() {
        let Ok(list) = SHARED_CLEANUP.lock() else {
            return;
        };
        for (pid, dir) in list.iter() {
            // SAFETY: plain syscalls on a child process of ours.
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(*pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            if std::env::var_os("FK_KEEP_TEST_DIRS").is_none() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let mut list = SHARED_CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    if list.is_empty() {
        // SAFETY: registers a plain function; libtest ends with `process::exit`, which runs it.
        unsafe {
            libc::atexit(cleanup);
        }
    }
    list.push((pid, dir));
}

/// Sends `cmd` as the first bytes of a new connection and reads until the server closes.
pub fn four_letter_word(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The Debian jars the Curator program needs (`libcurator-recipes-java` and the
/// ZooKeeper client), or why they are missing.
pub fn curator_classpath() -> Result<String, String> {
    let jars = [
        "curator-client",
        "curator-framework",
        "curator-recipes",
        "guava",
        "slf4j-api",
        "slf4j-simple",
        "zookeeper",
        "zookeeper-jute",
    ];
    let mut cp = Vec::new();
    for j in jars {
        let path = format!("/usr/share/java/{j}.jar");
        if !Path::new(&path).exists() {
            return Err(format!(
                "{path} missing (apt-get install libcurator-recipes-java)"
            ));
        }
        cp.push(path);
    }
    Ok(cp.join(":"))
}

/// How long one client process (kazoo, zkCli.sh, the Java client) may run before
/// [`run_client`] gives up on it: a hang guard, never a timed assertion.
pub const CLIENT_HANG_LIMIT: Duration = Duration::from_secs(180);

/// Runs a client to its end with `input` on stdin, its stdout and stderr both into
/// `out_path`; (success, output). Panics with the output so far if it outlives
/// [`CLIENT_HANG_LIMIT`].
pub fn run_client(mut command: Command, input: &str, out_path: &Path) -> (bool, String) {
    let out = std::fs::File::create(out_path).expect("create output");
    let err = out.try_clone().expect("clone output");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e} (tests/run.sh installs it)"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > CLIENT_HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} hung; output:\n{}",
                std::fs::read_to_string(out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        std::fs::read_to_string(out_path).expect("read output"),
    )
}

/// Runs `promtool check metrics` on `text`; `None` when promtool is not installed, else
/// its report when it finds a format error (its lint of names, such as counters without
/// `_total`, is ZooKeeper's naming and passes).
pub fn promtool_errors(text: &str) -> Option<Option<String>> {
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad =
        report.contains("error while linting") || report.contains("text format parsing error");
    Some(bad.then_some(report))
}

/// ferrokeeper with its AdminServer on a port of this test's range.
///
/// Ports are drawn at random by each test process, so another test's server can hold
/// the one drawn here; ferrokeeper then serves without an AdminServer (as ZooKeeper
/// does) and the other server answers instead, until it stops (CI, session 14: a
/// connection refused halfway through a run). The answer to `conf` must name this
/// server's client port; if not, another port is drawn.
pub fn ferrokeeper_with_admin(extra: &[(&str, &str)]) -> (Server, String) {
    for _ in 0..3 {
        let admin = free_port().to_string();
        let mut lines = vec![
            ("admin.enableServer", "true"),
            ("admin.serverAddress", "127.0.0.1"),
            ("admin.serverPort", admin.as_str()),
        ];
        lines.extend_from_slice(extra);
        let server = Server::start(Kind::Ferrokeeper, &lines);
        let base = format!("http://127.0.0.1:{admin}/commands");
        let served = extra
            .iter()
            .find(|(k, _)| *k == "admin.commandURL")
            .map_or("/commands", |(_, v)| *v);
        if serves_client_port(&format!("http://127.0.0.1:{admin}{served}"), server.port) {
            return (server, base);
        }
        eprintln!("the AdminServer at {base} is not this server's; another port");
    }
    panic!("no AdminServer of our own after three ports");
}

/// Whether the AdminServer at `base` belongs to the server listening for clients on
/// `client` (its `conf` says so).
pub fn serves_client_port(base: &str, client: u16) -> bool {
    ureq::get(&format!("{base}/conf"))
        .timeout(Duration::from_secs(10))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .is_some_and(|text| {
            // The reply is pretty-printed JSON, one top-level key a line.
            let want = format!("  \"client_port\" : {client}");
            text.lines().any(|l| l.trim_end_matches(',') == want)
        })
}
