//! Starting the two servers with equivalent settings, and reading their CPU time and
//! memory; [`Pair`], a value per server, and the order rounds alternate in.
//!
//! Both get the same `zoo.cfg` lines (tickTime, a data directory on the same disk, the
//! loopback client address, all four-letter words, no connection cap, no AdminServer,
//! `forceSync=no` unless the durability workload asks for `yes`), each its own directory
//! and port: both write their transaction logs, and `forceSync` is the same on both. Both
//! servers are started as direct children (Java's pid is
//! the JVM's) with `PR_SET_PDEATHSIG`, so they die with the harness however it dies.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::clock::now_ns;
use crate::setup::SetupClient;
use crate::stats::{process_cpu_ns, process_rss_bytes};

/// The classpath of Debian's `zookeeper` package (Apache ZooKeeper 3.8), as the
/// project's tests use it.
pub const JAVA_ZK_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-handler.jar:/usr/share/java/netty-transport.jar:/usr/share/java/netty-common.jar:/usr/share/java/netty-buffer.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-epoll.jar:/usr/share/java/netty-transport-native-unix-common.jar";

/// How long a server may take to start serving.
const START_NS_MAX: u64 = 90_000_000_000;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Apache ZooKeeper 3.8 (Debian's package).
    Java,
    /// This project's server.
    Ferrokeeper,
}

impl ServerKind {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Java => "ZooKeeper",
            ServerKind::Ferrokeeper => "ferrokeeper",
        }
    }

    /// A short tag for node names and files.
    pub fn tag(self) -> &'static str {
        match self {
            ServerKind::Java => "zk",
            ServerKind::Ferrokeeper => "fk",
        }
    }
}

/// A value per server.
#[derive(Debug, Clone)]
pub struct Pair<T> {
    /// Apache ZooKeeper's.
    pub java: T,
    /// ferrokeeper's.
    pub fk: T,
}

impl<T> Pair<T> {
    /// The value of `kind`.
    pub fn get(&self, kind: ServerKind) -> &T {
        match kind {
            ServerKind::Java => &self.java,
            ServerKind::Ferrokeeper => &self.fk,
        }
    }

    /// The value of `kind`, mutably.
    pub fn get_mut(&mut self, kind: ServerKind) -> &mut T {
        match kind {
            ServerKind::Java => &mut self.java,
            ServerKind::Ferrokeeper => &mut self.fk,
        }
    }
}

/// The order of servers in round `round`: Java first on even rounds, ferrokeeper first
/// on odd ones (ABBA), so a trend in the machine's load is shared.
pub fn round_order(round: usize) -> [ServerKind; 2] {
    if round.is_multiple_of(2) {
        [ServerKind::Java, ServerKind::Ferrokeeper]
    } else {
        [ServerKind::Ferrokeeper, ServerKind::Java]
    }
}

/// What the servers are started with.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The ferrokeeper binary.
    pub ferrokeeper_bin: PathBuf,
    /// `ferrokeeper.shards` (None: the server's default, the cores available).
    pub ferrokeeper_shards: Option<usize>,
    /// The JVM's `-Xmx`.
    pub java_heap: String,
    /// The JVM classpath.
    pub java_classpath: String,
    /// `tickTime`, ms.
    pub tick_time_ms: u32,
    /// Directory under which each server gets its own (same disk for both).
    pub base_dir: PathBuf,
    /// More lines for both servers' `zoo.cfg` (`compare --zoo-cfg`); one with the key of a
    /// default line replaces it.
    pub extra_config: Vec<(String, String)>,
}

impl ServerSettings {
    /// The `zoo.cfg` lines both servers share (before port and data directory).
    pub fn common_config(&self) -> Vec<(String, String)> {
        [
            ("tickTime", self.tick_time_ms.to_string()),
            ("clientPortAddress", "127.0.0.1".into()),
            ("4lw.commands.whitelist", "*".into()),
            ("maxClientCnxns", "0".into()),
            ("admin.enableServer", "false".into()),
            // No fsync on either side until ferrokeeper has its transaction log.
            ("forceSync", "no".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .filter(|(k, _)| !self.extra_config.iter().any(|(e, _)| e == k))
        .chain(self.extra_config.iter().cloned())
        .collect()
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Files or the process could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: io::Error,
    },
    /// The process exited while starting.
    #[error("{kind} exited during startup ({status}); last log lines:\n{log}")]
    Exited {
        /// Which server.
        kind: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The server did not serve in time.
    #[error("{kind} not serving after {seconds} s; last log lines:\n{log}")]
    NotReady {
        /// Which server.
        kind: &'static str,
        /// The limit.
        seconds: u64,
        /// The end of its log.
        log: String,
    },
}

/// A running server, killed when dropped.
pub struct Server {
    /// Which server.
    pub kind: ServerKind,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// Its directory (zoo.cfg, data/, server.log).
    pub dir: PathBuf,
    /// The `zoo.cfg` it was started with.
    pub config: String,
    /// The command line, for the report.
    pub command: String,
    child: Child,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts `kind` and waits until it serves sessions.
    pub fn start(kind: ServerKind, settings: &ServerSettings) -> Result<Server, ServerError> {
        Server::start_with_force_sync(kind, settings, false)
    }

    /// [`Server::start`] with `forceSync` chosen: `true` is ZooKeeper's default (the log
    /// is fsynced before a write is acknowledged), which the `durability` workload runs.
    pub fn start_with_force_sync(
        kind: ServerKind,
        settings: &ServerSettings,
        force_sync: bool,
    ) -> Result<Server, ServerError> {
        let dir = settings.base_dir.join(kind.tag());
        let mut server = Server::spawn_with_force_sync(kind, settings, &dir, force_sync)?;
        server.wait_serving()?;
        Ok(server)
    }

    /// Starts `kind` in `dir` (its `zoo.cfg`, `server.log`, and `data/`, which may hold
    /// data already) and returns at once, without waiting for it to serve: the restart
    /// workload times that wait itself.
    pub fn spawn(
        kind: ServerKind,
        settings: &ServerSettings,
        dir: &Path,
    ) -> Result<Server, ServerError> {
        Server::spawn_with_force_sync(kind, settings, dir, false)
    }

    /// [`Server::spawn`] with `forceSync` chosen.
    pub fn spawn_with_force_sync(
        kind: ServerKind,
        settings: &ServerSettings,
        dir: &Path,
        force_sync: bool,
    ) -> Result<Server, ServerError> {
        let force_sync = if force_sync { "yes" } else { "no" };
        let port = free_port().map_err(io_err("find a free port"))?;
        let data = dir.join("data");
        let mut lines = settings.common_config();
        for (key, value) in lines.iter_mut() {
            if key == "forceSync" {
                *value = force_sync.into();
            }
        }
        lines.push(("clientPort".into(), port.to_string()));
        lines.push(("dataDir".into(), data.display().to_string()));
        if kind == ServerKind::Ferrokeeper {
            if let Some(shards) = settings.ferrokeeper_shards {
                lines.push(("ferrokeeper.shards".into(), shards.to_string()));
            }
        }
        Server::spawn_config(kind, settings, dir, port, &lines)
    }

    /// Starts `kind` in `dir` with exactly these `zoo.cfg` lines (`port` must be their
    /// `clientPort`, `dir/data` their `dataDir`), without waiting for it to serve: an
    /// ensemble's members are all spawned before any of them can serve.
    pub fn spawn_config(
        kind: ServerKind,
        settings: &ServerSettings,
        dir: &Path,
        port: u16,
        lines: &[(String, String)],
    ) -> Result<Server, ServerError> {
        let force_sync = lines
            .iter()
            .find(|(k, _)| k == "forceSync")
            .map_or("yes", |(_, v)| v.as_str());
        let dir = dir.to_path_buf();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(io_err(format!("create {}", data.display())))?;
        let config: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let cfg_path = dir.join("zoo.cfg");
        std::fs::write(&cfg_path, &config).map_err(io_err("write zoo.cfg"))?;
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).map_err(io_err("create server.log"))?;
        let log2 = log.try_clone().map_err(io_err("clone log"))?;
        let mut command = match kind {
            ServerKind::Ferrokeeper => {
                let mut c = Command::new(&settings.ferrokeeper_bin);
                c.arg(&cfg_path);
                c
            }
            ServerKind::Java => {
                let mut c = Command::new("java");
                c.arg(format!("-Xmx{}", settings.java_heap))
                    // zoo.cfg's forceSync becomes this property; set it outright as well.
                    .arg(format!("-Dzookeeper.forceSync={force_sync}"))
                    .args(["-cp", &settings.java_classpath])
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg_path);
                c
            }
        };
        let command_text = format!(
            "{} {}",
            command.get_program().to_string_lossy(),
            command
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .map(|a| if a.len() > 80 {
                    "<classpath>".into()
                } else {
                    a
                })
                .collect::<Vec<_>>()
                .join(" ")
        );
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if kind == ServerKind::Ferrokeeper && std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(io_err(format!("spawn {}", kind.name())))?;
        Ok(Server {
            kind,
            port,
            dir,
            config,
            command: command_text,
            child,
        })
    }

    /// Waits until the server serves sessions (or exits, or [`START_NS_MAX`] passes).
    pub fn wait_serving(&mut self) -> Result<(), ServerError> {
        let deadline = now_ns() + START_NS_MAX;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ServerError::Exited {
                    kind: self.kind.name(),
                    status: status.to_string(),
                    log: self.log_tail(30),
                });
            }
            // Java answers `ruok` before it serves sessions; `srvr` says "not currently
            // serving" until it does. A completed handshake settles it for both.
            if let Ok(srvr) = four_letter_word(self.port, "srvr") {
                if !srvr.contains("not currently serving")
                    && SetupClient::connect(self.addr(), 30_000)
                        .map(|c| c.close())
                        .is_ok()
                {
                    return Ok(());
                }
            }
            if now_ns() > deadline {
                return Err(ServerError::NotReady {
                    kind: self.kind.name(),
                    seconds: START_NS_MAX / 1_000_000_000,
                    log: self.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (`kill -9`) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU time used so far (user + system), ns.
    pub fn cpu_ns(&self) -> io::Result<u64> {
        process_cpu_ns(self.pid())
    }

    /// Resident memory now, bytes.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        process_rss_bytes(self.pid())
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server's `dataDir` (snapshots and transaction logs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The path of the server's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Java only: runs a full GC and returns the heap in use after it (live data),
    /// bytes, from `jcmd GC.run` and `jcmd GC.heap_info`. `None` when jcmd is missing.
    pub fn java_live_heap_bytes(&self) -> Option<u64> {
        if self.kind != ServerKind::Java {
            return None;
        }
        let pid = self.pid().to_string();
        let ok = Command::new("jcmd")
            .args([&pid, "GC.run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let out = Command::new("jcmd")
            .args([&pid, "GC.heap_info"])
            .output()
            .ok()?;
        parse_heap_used(&String::from_utf8_lossy(&out.stdout))
    }
}

/// Finds "used NNNK" on the heap line of `jcmd GC.heap_info` output
/// (" garbage-first heap   total 262144K, used 21504K [...").
pub fn parse_heap_used(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.contains(" heap ") && l.contains("used "))?;
    let after = &line[line.find("used ")? + 5..];
    let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
    let kb: u64 = digits.parse().ok()?;
    let unit = after[digits.len()..].chars().next()?;
    Some(match unit {
        'K' => kb * 1024,
        'M' => kb * 1024 * 1024,
        _ => kb,
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a four-letter word and reads the reply until the server closes.
pub fn four_letter_word(port: u16, word: &str) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `java -version`'s first line, or why not.
pub fn java_version() -> String {
    match Command::new("java").arg("-version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("?")
            .to_string(),
        Err(e) => format!("java not runnable: {e}"),
    }
}

/// The version of Debian's zookeeper package, if installed.
pub fn zookeeper_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "zookeeper"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "?".into())
}

/// Whether Java ZooKeeper's jar is where the classpath says.
pub fn java_zookeeper_installed(classpath: &str) -> bool {
    classpath
        .split(':')
        .next()
        .is_some_and(|jar| Path::new(jar).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_used_from_jcmd_output() {
        let text = "12345:\n garbage-first heap   total 262144K, used 21504K [0x00000000e0000000, 0x0000000100000000)\n  region size 1024K, 5 young (5120K), 0 survivors (0K)\n";
        assert_eq!(parse_heap_used(text), Some(21504 * 1024));
    }
}
