//! Ensembles of real server processes: N ferrokeeper processes or N Apache ZooKeeper 3.8
//! JVMs, each with a generated zoo.cfg (`server.N` lines) and `myid`, on loopback ports
//! from a range reserved for ensemble tests, so that tests started in parallel by nextest
//! and other engineers' servers on the same machine do not collide.
//!
//! The helpers a fault-injection test needs: find the leader through `srvr` (`Mode:
//! leader`), kill a member with SIGKILL, freeze and thaw it (SIGSTOP/SIGCONT), restart it
//! on the same config and data, read its zxid and node count, and connect strings.
//!
//! Every process is killed (SIGKILL, by its own pid) when the [`Ensemble`] drops, which
//! happens on a test's panic too; a frozen process dies of SIGKILL all the same.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::net::TcpStream;

use super::{Kind, JAVA_ADMIN_JARS, JAVA_BARE_PROPERTY_PREFIXES, JAVA_ZK_JARS};

/// Client, quorum and election ports of ensemble tests come from this range
/// (`[PORT_RANGE_START, PORT_RANGE_END)`), below the kernel's ephemeral ports (a client
/// socket of another test could otherwise hold a port between its check and its bind)
/// and below the ports [`super::free_port`] hands out.
pub const PORT_RANGE_START: u16 = 12000;
/// See [`PORT_RANGE_START`].
pub const PORT_RANGE_END: u16 = 15000;

/// How long a wait for an ensemble to form may take before the test fails. This is not an
/// assertion about speed: it only keeps a broken setup from hanging the suite.
pub const FORM_LIMIT: Duration = Duration::from_secs(120);

/// Whether Java and Debian's ZooKeeper jars are installed.
pub fn java_available() -> bool {
    Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// `n` distinct loopback ports from the ensemble range that were free a moment ago and
/// that no other test process has claimed ([`super::claim_port`]). The search starts at a
/// random place so that parallel test processes rarely race for the same port; a port is
/// checked by binding it (and released at once). The claim keeps a member's ports its own
/// while it is killed and restarted: a free-port check alone once handed a dead member's
/// ports to another test's ensemble, and the member's restart failed to bind.
pub fn range_ports(n: usize) -> Vec<u16> {
    let span = PORT_RANGE_END - PORT_RANGE_START;
    let mut at = rand::random_range(0..span);
    let mut out = Vec::with_capacity(n);
    for _ in 0..span {
        let port = PORT_RANGE_START + at;
        at = (at + 1) % span;
        // Claim first, then check: a check's bind briefly holds the port, which a member
        // being restarted by the test that claimed it would then fail to bind (CI saw a
        // restarted member stop with "cannot listen on the quorum port").
        if super::claim_port(port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            out.push(port);
            if out.len() == n {
                return out;
            }
        }
    }
    panic!("fewer than {n} free ports in {PORT_RANGE_START}..{PORT_RANGE_END}");
}

/// Whether a member's process runs, is frozen or is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Running.
    Running,
    /// Frozen with SIGSTOP.
    Stopped,
    /// Killed (SIGKILL) and not restarted.
    Dead,
}

/// One server of an ensemble.
pub struct Member {
    /// Its `myid`.
    pub id: u64,
    /// The address it listens on (127.0.0.1 unless it runs in a network namespace).
    pub host: String,
    /// Its client port.
    pub client_port: u16,
    /// Its directory (zoo.cfg, data, server.log).
    pub dir: PathBuf,
    /// Whether it runs.
    pub state: MemberState,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Member {
    /// "host:port".
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    /// The process id while it has one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Adds a JVM system property (`-Dname=value`) to a Java member's command line.
    pub fn java_property(&mut self, name: &str, value: &str) {
        let at = self
            .args
            .iter()
            .position(|a| a == "-cp")
            .unwrap_or(self.args.len());
        self.args.insert(at, format!("-D{name}={value}"));
    }

    /// Its log so far (ferrokeeper's tracing output, or Java's console log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("open server.log");
        let log2 = log.try_clone().expect("clone log");
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn member {}: {e}", self.id));
        self.child = Some(child);
        self.state = MemberState::Running;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.state = MemberState::Dead;
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.pid().expect("member has a process") as libc::pid_t;
        // SAFETY: kill(2) with our own child's pid; no memory is shared.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }
}

/// What an ensemble is started with beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct EnsembleOptions {
    /// Extra zoo.cfg lines for every member (later keys win over the defaults).
    pub config: Vec<(String, String)>,
    /// Environment for ferrokeeper processes (`FERROKEEPER_RAFT_TICK_MS`, `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// Each member's address (all 127.0.0.1 when empty).
    pub hosts: Vec<String>,
    /// Each member's command prefix for `ip` (`netns exec <name>`), none when empty.
    pub ip_prefixes: Vec<Vec<String>>,
    /// How many of the members (the last ones) are observers: `:observer` on their
    /// server lines and `peerType=observer` in their own zoo.cfg.
    pub observers: usize,
    /// Extra zoo.cfg lines for one member each (`member_config[i]` for member `i`),
    /// after the shared ones: per-member ports such as `admin.serverPort`.
    pub member_config: Vec<Vec<(String, String)>>,
}

impl EnsembleOptions {
    /// Options with these extra zoo.cfg lines.
    pub fn config(lines: &[(&str, &str)]) -> EnsembleOptions {
        EnsembleOptions {
            config: lines
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: Vec::new(),
            hosts: Vec::new(),
            ip_prefixes: Vec::new(),
            observers: 0,
            member_config: Vec::new(),
        }
    }

    fn host(&self, i: usize) -> String {
        self.hosts
            .get(i)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into())
    }
}

/// A running ensemble, killed when dropped.
pub struct Ensemble {
    /// Which server every member runs.
    pub kind: Kind,
    /// The members, `members[i].id == i + 1`.
    pub members: Vec<Member>,
    /// The directory holding every member's directory.
    pub dir: PathBuf,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
        if std::env::var_os("FK_KEEP_TEST_DIRS").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("ensemble directory kept: {}", self.dir.display());
        }
    }
}

/// The zoo.cfg lines every ensemble member gets unless the options override them.
const ENSEMBLE_CONFIG: &[(&str, &str)] = &[
    ("tickTime", "2000"),
    ("initLimit", "10"),
    ("syncLimit", "5"),
    ("4lw.commands.whitelist", "*"),
    ("maxClientCnxns", "0"),
    ("extendedTypesEnabled", "true"),
    ("admin.enableServer", "false"),
];

impl Ensemble {
    /// Starts an `n`-member ensemble of `kind` and waits until every member has joined a
    /// quorum (leader or follower).
    pub fn start(kind: Kind, n: usize) -> Ensemble {
        Ensemble::start_with(kind, n, &EnsembleOptions::default())
    }

    /// Like [`Ensemble::start`] with extra config lines and environment.
    pub fn start_with(kind: Kind, n: usize, options: &EnsembleOptions) -> Ensemble {
        let dir = ensemble_dir(kind);
        let ports = range_ports(3 * n);
        let mut servers = String::new();
        let observer = |i: usize| i + options.observers >= n;
        for i in 0..n {
            servers.push_str(&format!(
                "server.{}={}:{}:{}{}\n",
                i + 1,
                options.host(i),
                ports[3 * i + 1],
                ports[3 * i + 2],
                if observer(i) { ":observer" } else { "" }
            ));
        }
        let mut lines: Vec<(String, String)> = ENSEMBLE_CONFIG
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &options.config {
            lines.retain(|(lk, _)| lk != k);
            lines.push((k.clone(), v.clone()));
        }
        let mut members = Vec::new();
        for i in 0..n {
            let id = i as u64 + 1;
            let mdir = dir.join(format!("m{id}"));
            let data = mdir.join("data");
            std::fs::create_dir_all(&data).expect("member data dir");
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
            let mut member_lines = lines.clone();
            for (k, v) in options.member_config.get(i).into_iter().flatten() {
                member_lines.retain(|(lk, _)| lk != k);
                member_lines.push((k.clone(), v.clone()));
            }
            let mut cfg = String::new();
            for (k, v) in &member_lines {
                cfg.push_str(&format!("{k}={v}\n"));
            }
            if observer(i) {
                cfg.push_str("peerType=observer\n");
            }
            cfg.push_str(&format!(
                "clientPort={}\nclientPortAddress={}\ndataDir={}\n{servers}",
                ports[3 * i],
                options.host(i),
                data.display()
            ));
            let cfg_path = mdir.join("zoo.cfg");
            std::fs::write(&cfg_path, cfg).expect("write zoo.cfg");
            let mut member = member_command(
                kind,
                id,
                ports[3 * i],
                &mdir,
                &cfg_path,
                &member_lines,
                options,
            );
            member.host = options.host(i);
            if let Some(prefix) = options.ip_prefixes.get(i) {
                let mut args = prefix.clone();
                args.push(member.program.display().to_string());
                args.append(&mut member.args);
                member.args = args;
                member.program = PathBuf::from("ip");
            }
            members.push(member);
        }
        Ensemble::launch(kind, dir, members)
    }

    /// Starts members whose configs the caller wrote (see [`member_command`]) and waits
    /// until each has joined a quorum.
    pub fn launch(kind: Kind, dir: PathBuf, members: Vec<Member>) -> Ensemble {
        let mut ensemble = Ensemble { kind, members, dir };
        for m in &mut ensemble.members {
            m.spawn();
        }
        for i in 0..ensemble.members.len() {
            ensemble.wait_joined(i);
        }
        ensemble
    }

    /// Every member's "host:port", comma-separated (a client connect string).
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(Member::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i`'s (0-based) "127.0.0.1:port".
    pub fn address(&self, i: usize) -> String {
        self.members[i].address()
    }

    /// Every member's address.
    pub fn addresses(&self) -> Vec<String> {
        self.members.iter().map(Member::address).collect()
    }

    /// Member `i`'s `srvr` reply, if it answers.
    pub fn srvr(&self, i: usize) -> Option<String> {
        if self.members[i].state != MemberState::Running {
            return None;
        }
        four_letter_word_at(&self.members[i].host, self.members[i].client_port, "srvr").ok()
    }

    /// Member `i`'s `Mode:` ("leader", "follower", ...), if it answers and serves.
    pub fn mode(&self, i: usize) -> Option<String> {
        let srvr = self.srvr(i)?;
        if srvr.contains("not currently serving") {
            return None;
        }
        srvr.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Member `i`'s last zxid and node count from `srvr`.
    pub fn zxid_and_count(&self, i: usize) -> Option<(i64, u64)> {
        let srvr = self.srvr(i)?;
        let zxid = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Zxid: 0x"))
            .and_then(|z| i64::from_str_radix(z.trim(), 16).ok())?;
        let count = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Node count: "))
            .and_then(|c| c.trim().parse().ok())?;
        Some((zxid, count))
    }

    /// Waits until member `i` serves as a leader, follower or observer.
    pub fn wait_joined(&self, i: usize) -> String {
        self.wait_mode(i, &["leader", "follower", "observer"])
    }

    /// Waits until member `i` serves in one of `modes` (as `srvr` names them: "leader",
    /// "follower", "observer", "read-only") and returns the mode.
    pub fn wait_mode(&self, i: usize, modes: &[&str]) -> String {
        let deadline = Instant::now() + FORM_LIMIT;
        loop {
            if let Some(mode) = self.mode(i) {
                if modes.contains(&mode.as_str()) {
                    return mode;
                }
            }
            if let Some(child) = &self.members[i].child {
                // A member that exits during start shows its log.
                assert!(
                    super::process_runs(child.id()),
                    "member {} is gone:\n{}",
                    i + 1,
                    self.members[i].log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "member {} never served as {modes:?}; log:\n{}",
                i + 1,
                self.members[i].log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the running member that says it leads, waiting until one does and
    /// every other running member serves as a follower (an election has settled).
    pub fn leader(&self) -> usize {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].state == MemberState::Running)
            .collect();
        self.leader_of(&running)
    }

    /// Like [`Ensemble::leader`] among `members` only (one side of a partition).
    pub fn leader_of(&self, members: &[usize]) -> usize {
        self.settled_leader(members, FORM_LIMIT)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like [`Ensemble::leader`], but an ensemble that has not settled within `limit`
    /// is an error naming each member's mode, not a panic.
    pub fn try_leader(&self, limit: Duration) -> Result<usize, String> {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].state == MemberState::Running)
            .collect();
        self.settled_leader(&running, limit)
    }

    fn settled_leader(&self, members: &[usize], limit: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        loop {
            let modes: Vec<Option<String>> = (0..self.members.len())
                .map(|i| {
                    if members.contains(&i) {
                        self.mode(i)
                    } else {
                        None
                    }
                })
                .collect();
            let leaders: Vec<usize> = modes
                .iter()
                .enumerate()
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(i, _)| i)
                .collect();
            let settled = members.iter().all(|&i| {
                matches!(
                    modes[i].as_deref(),
                    Some("leader" | "follower" | "observer")
                )
            });
            if leaders.len() == 1 && settled {
                return Ok(leaders[0]);
            }
            if Instant::now() >= deadline {
                return Err(format!("no settled leader; modes {modes:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills member `i` with SIGKILL: no shutdown of any kind.
    pub fn kill9(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Freezes member `i` (SIGSTOP): its sockets stay open and nothing answers.
    pub fn sigstop(&mut self, i: usize) {
        self.members[i].signal(libc::SIGSTOP);
        self.members[i].state = MemberState::Stopped;
    }

    /// Thaws member `i` (SIGCONT).
    pub fn sigcont(&mut self, i: usize) {
        self.members[i].signal(libc::SIGCONT);
        self.members[i].state = MemberState::Running;
    }

    /// Starts member `i` again on its config and data (killing it first if it runs) and
    /// waits until it has joined the quorum.
    pub fn restart(&mut self, i: usize) {
        self.members[i].kill();
        self.members[i].spawn();
        self.wait_joined(i);
    }

    /// Waits until every running member reports the same zxid and node count, and
    /// returns them.
    pub fn wait_converged(&self) -> (i64, u64) {
        let deadline = Instant::now() + FORM_LIMIT;
        loop {
            let seen: Vec<Option<(i64, u64)>> = (0..self.members.len())
                .filter(|&i| self.members[i].state == MemberState::Running)
                .map(|i| self.zxid_and_count(i))
                .collect();
            if let Some(Some(first)) = seen.first() {
                if seen.iter().all(|s| s.as_ref() == Some(first)) {
                    return *first;
                }
            }
            assert!(
                Instant::now() < deadline,
                "members never converged: (zxid, node count) {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tail of every member's log, for a failure message.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            let log = m.log();
            let all: Vec<&str> = log.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!("--- member {} ({:?}) ---\n", m.id, m.state));
            for l in &all[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

fn ensemble_dir(kind: Kind) -> PathBuf {
    let base = std::env::temp_dir().join("ferrokeeper-tests");
    let name = format!(
        "ensemble-{kind:?}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).expect("create ensemble dir");
    dir
}

/// A member of `kind` that runs `cfg_path` (not yet started): ferrokeeper with
/// `options.env`, or Java's `QuorumPeerMain` with the `znode.*` keys of `lines` also
/// passed as bare system properties (see [`JAVA_BARE_PROPERTY_PREFIXES`]).
pub fn member_command(
    kind: Kind,
    id: u64,
    client_port: u16,
    dir: &Path,
    cfg_path: &Path,
    lines: &[(String, String)],
    options: &EnsembleOptions,
) -> Member {
    let (program, mut args, mut env) = match kind {
        Kind::Ferrokeeper => (
            PathBuf::from(env!("CARGO_BIN_EXE_ferrokeeper")),
            Vec::new(),
            vec![(
                "RUST_LOG".to_string(),
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )],
        ),
        Kind::JavaZk => {
            let mut args: Vec<String> = vec![
                "-Xmx256m".into(),
                "-XX:+UseSerialGC".into(),
                "-Dzookeeper.extendedTypesEnabled=true".into(),
            ];
            args.extend(
                lines
                    .iter()
                    .filter(|(k, _)| JAVA_BARE_PROPERTY_PREFIXES.iter().any(|p| k.starts_with(p)))
                    .map(|(k, v)| format!("-D{k}={v}")),
            );
            // The AdminServer needs Jetty, the servlet API and Jackson on the classpath.
            let mut classpath = JAVA_ZK_JARS.to_string();
            if lines
                .iter()
                .any(|(k, v)| k == "admin.enableServer" && v == "true")
            {
                for j in JAVA_ADMIN_JARS {
                    classpath.push_str(&format!(":/usr/share/java/{j}.jar"));
                }
            }
            args.extend([
                "-cp".to_string(),
                classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain".to_string(),
            ]);
            (PathBuf::from("java"), args, Vec::new())
        }
    };
    args.push(cfg_path.display().to_string());
    if kind == Kind::Ferrokeeper {
        env.extend(options.env.iter().cloned());
    }
    Member {
        id,
        host: "127.0.0.1".into(),
        client_port,
        dir: dir.to_path_buf(),
        state: MemberState::Dead,
        program,
        args,
        env,
        child: None,
    }
}

/// Sends a four-letter word to `host:port` and reads until the server closes.
pub fn four_letter_word_at(host: &str, port: u16, cmd: &str) -> std::io::Result<String> {
    let addr: std::net::SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(std::io::Error::other)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
