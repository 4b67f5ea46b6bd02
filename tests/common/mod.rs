//! Shared harness for black-box tests: starts ferrokeeper (the binary this package
//! builds) or Apache ZooKeeper 3.8 from Debian on a free loopback port with a zoo.cfg
//! written for the test, waits until it answers `ruok`, and kills it on drop.
//!
//! Both servers get the same config lines, so a differential test compares like with
//! like. Java ZooKeeper passes unknown zoo.cfg keys on as `zookeeper.<key>` system
//! properties, so `extendedTypesEnabled=true` in zoo.cfg enables TTL nodes on both.
#![allow(dead_code)]

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

const JAVA_ZK_JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-handler.jar:/usr/share/java/netty-transport.jar:/usr/share/java/netty-common.jar:/usr/share/java/netty-buffer.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-epoll.jar:/usr/share/java/netty-transport-native-unix-common.jar";

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

/// A free loopback port (bound then released; a race is possible but rare).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
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

impl Server {
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
        let dir = temp_dir(kind);
        let port = free_port();
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
        let child = match kind {
            Kind::Ferrokeeper => Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
                .arg(&cfg_path)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log2))
                .spawn()
                .expect("spawn ferrokeeper"),
            Kind::JavaZk => {
                assert!(
                    Path::new("/usr/share/java/zookeeper.jar").exists(),
                    "Apache ZooKeeper is not installed: run the README's test command (tests/run.sh), which installs it"
                );
                Command::new("java")
                    .args([
                        "-Xmx512m",
                        "-Dzookeeper.extendedTypesEnabled=true",
                        "-cp",
                        JAVA_ZK_JARS,
                    ])
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg_path)
                    .stdout(Stdio::from(log))
                    .stderr(Stdio::from(log2))
                    .spawn()
                    .expect("spawn java")
            }
        };
        let mut server = Server {
            kind,
            port,
            dir,
            child,
        };
        server.wait_ready(Duration::from_secs(60));
        server
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
            if let Ok(reply) = four_letter_word(self.port, "ruok") {
                if reply == "imok" && self.takes_sessions() {
                    return;
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

    /// Whether the server, having answered `imok`, also takes sessions.
    ///
    /// Java ZooKeeper answers `imok` as soon as its client port is open, before it has
    /// loaded its database; until then it closes every session request ("ZooKeeperServer
    /// not running"), which clients that do not retry (cli_mt) see as a failure. Its
    /// `srvr` reply tells the two states apart. ferrokeeper must answer `imok` only once
    /// it takes sessions, so `ruok` alone is its readiness check.
    fn takes_sessions(&self) -> bool {
        match self.kind {
            Kind::Ferrokeeper => true,
            Kind::JavaZk => four_letter_word(self.port, "srvr")
                .map(|reply| reply.starts_with("Zookeeper version:"))
                .unwrap_or(false),
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

/// Sends `cmd` as the first bytes of a new connection and reads until the server closes.
pub fn four_letter_word(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
