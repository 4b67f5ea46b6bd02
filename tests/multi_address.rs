//! Several quorum addresses per server (ZooKeeper 3.6+, `multiAddress.enabled=true`),
//! the same three-member configuration run by ferrokeeper and by Java ZooKeeper 3.8.
//!
//! For ferrokeeper every server line names two addresses, `192.0.2.N:port|127.0.0.1:port`
//! (192.0.2.0/24 is TEST-NET-1: nothing answers there), and `quorumListenOnAllIPs=true`
//! makes each member listen on the wildcard address of both ports. A member can reach its
//! peers only through their second address, so the ensemble forms only if the peers'
//! addresses are tried in turn. Then a write through one member is read on the others, and
//! `/zookeeper/config` shows both addresses.
//!
//! Java 3.8 with the same lines did not form an ensemble here (member 1's peers gave up on
//! its election port), so the Java half gives both addresses on 127.0.0.1 and the test
//! compares only `/zookeeper/config`'s shape: Java keeps a server's addresses in a set, so
//! their order is compared as a set.
//!
//! Skipped, with a message, where java or Debian's ZooKeeper is missing (the Java half
//! only).

mod common;

use std::time::Duration;

use common::ensemble::{java_available, member_command, range_ports, Ensemble, EnsembleOptions};
use common::Kind;
use zookeeper_client::{Acls, Client, CreateMode};

fn run(kind: Kind, first_host: impl Fn(usize) -> String) -> Option<String> {
    if kind == Kind::JavaZk && !java_available() {
        eprintln!("SKIPPED: java or /usr/share/java/zookeeper.jar is missing");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "ferrokeeper-multi-address-{kind:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // Per member: client, and two pairs of quorum and election ports.
    let ports = range_ports(15);
    let port = |n: usize, k: usize| ports[5 * (n - 1) + k];
    let mut servers = String::new();
    for n in 1..=3 {
        servers.push_str(&format!(
            "server.{n}={}:{}:{}|127.0.0.1:{}:{}\n",
            first_host(n),
            port(n, 1),
            port(n, 2),
            port(n, 3),
            port(n, 4)
        ));
    }
    let lines: Vec<(String, String)> = vec![
        ("multiAddress.enabled".into(), "true".into()),
        ("quorumListenOnAllIPs".into(), "true".into()),
    ];
    let mut members = Vec::new();
    for n in 1..=3 {
        let member_dir = dir.join(format!("m{n}"));
        let data = member_dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{n}\n")).expect("myid");
        let cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\n\
             multiAddress.enabled=true\nquorumListenOnAllIPs=true\n{servers}",
            data.display(),
            port(n, 0)
        );
        let path = member_dir.join("zoo.cfg");
        std::fs::write(&path, &cfg).expect("zoo.cfg");
        // Java reads the switch as the system property zookeeper.multiAddress.enabled
        // (zoo.cfg's unknown keys become zookeeper.<key> properties, too late for some
        // readers), so it is also passed on the command line.
        let mut member = member_command(
            kind,
            n as u64,
            port(n, 0),
            &member_dir,
            &path,
            &lines,
            &EnsembleOptions::default(),
        );
        if kind == Kind::JavaZk {
            member.java_property("zookeeper.multiAddress.enabled", "true");
        }
        members.push(member);
    }
    let ensemble = Ensemble::launch(kind, dir, members);
    let leader = ensemble.leader();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = runtime.block_on(async {
        let connect = |i: usize| {
            let address = ensemble.address(i);
            async move {
                Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .connect(&address)
                    .await
                    .unwrap_or_else(|e| panic!("connect {address}: {e}"))
            }
        };
        let writer = connect(others[0]).await;
        writer
            .create(
                "/multi",
                b"two addresses",
                &CreateMode::Persistent.with_acls(Acls::anyone_all()),
            )
            .await
            .expect("a write through a follower");
        for i in 0..3 {
            let reader = connect(i).await;
            reader.sync("/multi").await.expect("sync");
            let (data, _) = reader.get_data("/multi").await.expect("read");
            assert_eq!(data, b"two addresses", "member {}", i + 1);
        }
        let (config, _) = writer
            .get_data("/zookeeper/config")
            .await
            .expect("/zookeeper/config");
        String::from_utf8(config).expect("utf-8")
    });
    Some(config)
}

#[test]
fn multi_address_ensemble_forms_through_the_second_address() {
    let ferrokeeper = run(Kind::Ferrokeeper, |n| format!("192.0.2.{n}")).expect("ferrokeeper ran");
    assert!(
        ferrokeeper.contains("|127.0.0.1:"),
        "/zookeeper/config lists both addresses:\n{ferrokeeper}"
    );
    let loopback = |_| "127.0.0.1".to_string();
    if let Some(java) = run(Kind::JavaZk, loopback) {
        let ours = run(Kind::Ferrokeeper, loopback).expect("ferrokeeper ran");
        assert_eq!(shape(&ours), shape(&java), "{ours}\n--- Java ---\n{java}");
    }
}

/// Per line of a config text: its addresses as a sorted set with port numbers blanked
/// (each run takes its own ports), and the rest of the line.
fn shape(config: &str) -> Vec<(Vec<String>, String)> {
    let blank = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect()
    };
    config
        .lines()
        .map(|line| {
            let Some((key, value)) = line.split_once('=') else {
                return (Vec::new(), blank(line));
            };
            let (addresses, rest) = match value.rsplit_once(":participant") {
                Some((addresses, client)) => (addresses, format!(":participant{client}")),
                None => (value, String::new()),
            };
            let mut set: Vec<String> = addresses.split('|').map(blank).collect();
            set.sort();
            (set, blank(&format!("{key}={rest}")))
        })
        .collect()
}
