//! Live check of the ensemble configuration against Apache ZooKeeper 3.8: starts a
//! three-server Java ensemble on loopback (one of them an observer, client ports on the
//! server lines), then compares what each Java server prints for `conf` and serves at
//! `/zookeeper/config` with what ferrokeeper derives from the same `zoo.cfg` and `myid`.
//!
//! Skipped, with a message, when `java` or Debian's ZooKeeper is missing. The fixtures in
//! `src/admin/testdata/zk-3.8.0-ensemble` hold the same comparison offline.

mod common;

use std::path::PathBuf;

use common::ensemble::{java_available, member_command, Ensemble, EnsembleOptions};
use common::Kind;
use ferrokeeper::admin::{render, ConfStats, DirSizes, FourLetterWord, ServerStats};
use ferrokeeper::config::Config;

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
    let ports = common::ensemble::range_ports(9);
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
    let mut members = Vec::new();
    let mut configs = Vec::new();
    for n in 1..=3 {
        let member_dir = dir.join(format!("m{n}"));
        let data = member_dir.join("data");
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
        let path = member_dir.join("zoo.cfg");
        std::fs::write(&path, &cfg).expect("zoo.cfg");
        members.push(member_command(
            Kind::JavaZk,
            n as u64,
            client_port(n),
            &member_dir,
            &path,
            &[],
            &EnsembleOptions::default(),
        ));
        configs.push(path);
    }
    // Waits until every member serves as a leader, follower or observer.
    let ensemble = Ensemble::launch(Kind::JavaZk, dir.clone(), members);
    assert_eq!(ensemble.wait_joined(2), "observer");
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
