//! Live check of the ensemble configuration against Apache ZooKeeper 3.8: starts a
//! three-server Java ensemble on loopback (one of them an observer, client ports on the
//! server lines), then compares what each Java server prints for `conf` and serves at
//! `/zookeeper/config` with what ferrokeeper derives from the same `zoo.cfg` and `myid`.
//!
//! Skipped, with a message, when `java` or Debian's ZooKeeper is missing. The fixtures in
//! `src/admin/testdata/zk-3.8.0-ensemble` hold the same comparison offline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrokeeper::admin::{render, ConfStats, DirSizes, FourLetterWord, ServerStats};
use ferrokeeper::config::Config;

const JAVA_ZK_JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar";

/// Java servers, killed (SIGKILL, by their own pid) when the test ends either way.
struct Ensemble {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn java_available() -> bool {
    Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Waits until the server says it is a leader, follower or observer. Waiting is not an
/// assertion about time: the limit only keeps a broken setup from hanging the suite.
fn wait_for_quorum(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(srvr) = common::four_letter_word(port, "srvr") {
            if let Some(mode) = srvr.lines().find_map(|l| l.strip_prefix("Mode: ")) {
                if mode != "standalone" {
                    return mode.to_string();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "server on port {port} never joined a quorum"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn java_value(conf: &str, key: &str) -> String {
    conf.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("Java's conf has no {key} line:\n{conf}"))
        .to_string()
}

/// ferrokeeper's `conf` for this configuration, with the directory lines taken from
/// Java's (ZooKeeper names its `version-2` subdirectory and measures its own files).
fn ferrokeeper_conf(config: &Config, java_conf: &str) -> String {
    let mut stats = ServerStats {
        conf: ConfStats::from_config(config),
        dir_sizes: DirSizes {
            data_dir_bytes: java_value(java_conf, "dataDirSize").parse().expect("size"),
            data_log_dir_bytes: java_value(java_conf, "dataLogSize").parse().expect("size"),
        },
        ..ServerStats::default()
    };
    stats.conf.data_dir = PathBuf::from(java_value(java_conf, "dataDir"));
    stats.conf.data_log_dir = PathBuf::from(java_value(java_conf, "dataLogDir"));
    render(FourLetterWord::Conf, &stats)
}

#[test]
fn config_ensemble_matches_a_live_java_ensemble() {
    if !java_available() {
        eprintln!(
            "SKIPPED: java or /usr/share/java/zookeeper.jar is missing \
             (apt-get install zookeeper, see STACK-NOTES.md)"
        );
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("ferrokeeper-ensemble-java-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ports: Vec<u16> = (0..9).map(|_| common::free_port()).collect();
    let client_port = |n: usize| ports[3 * (n - 1)];
    let quorum_port = |n: usize| ports[3 * (n - 1) + 1];
    let election_port = |n: usize| ports[3 * (n - 1) + 2];
    // Server 1 gives its client port in zoo.cfg only, 2 on its line only, 3 (an observer)
    // in both places.
    let servers = format!(
        "server.1=127.0.0.1:{}:{}\n\
         server.2=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n\
         server.3=127.0.0.1:{}:{}:observer;{}\n",
        quorum_port(1),
        election_port(1),
        quorum_port(2),
        election_port(2),
        client_port(2),
        quorum_port(3),
        election_port(3),
        client_port(3),
    );
    let mut ensemble = Ensemble {
        children: Vec::new(),
        dir: dir.clone(),
    };
    let mut configs = Vec::new();
    for n in 1..=3 {
        let data = dir.join(format!("d{n}"));
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{n}\n")).expect("myid");
        let mut cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\n{servers}",
            data.display()
        );
        match n {
            1 => cfg.push_str(&format!("clientPort={}\n", client_port(1))),
            3 => cfg.push_str(&format!(
                "clientPort={}\npeerType=observer\n",
                client_port(3)
            )),
            _ => {}
        }
        let path = dir.join(format!("zoo{n}.cfg"));
        std::fs::write(&path, &cfg).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join(format!("log{n}.txt"))).expect("log");
        let log2 = log.try_clone().expect("log");
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", JAVA_ZK_JARS])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&path)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("spawn java");
        ensemble.children.push(child);
        configs.push(path);
    }
    for n in 1..=3 {
        let mode = wait_for_quorum(client_port(n));
        if n == 3 {
            assert_eq!(mode, "observer");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (n, path) in configs.iter().enumerate() {
        let n = n + 1;
        let (config, warnings) = Config::load(path).expect("ferrokeeper reads Java's config");
        assert!(
            warnings.iter().all(|w| !w.contains("error")),
            "{warnings:?}"
        );
        let ensemble_config = config.ensemble.clone().expect("quorum mode");
        assert_eq!(config.client_port, client_port(n));

        let java_conf = common::four_letter_word(client_port(n), "conf").expect("conf");
        assert_eq!(
            ferrokeeper_conf(&config, &java_conf),
            java_conf,
            "server {n}"
        );

        let address = format!("127.0.0.1:{}", client_port(n));
        let java_config_node = runtime.block_on(async {
            let client = zookeeper_client::Client::connect(&address)
                .await
                .expect("connect to Java");
            client
                .get_data("/zookeeper/config")
                .await
                .expect("get /zookeeper/config")
                .0
        });
        assert_eq!(
            ensemble_config.zookeeper_config_text(),
            String::from_utf8(java_config_node).expect("utf-8"),
            "server {n}"
        );
    }
}
