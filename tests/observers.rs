//! Observers (issue #10): three voters and two observers (`server.N=...:observer` and
//! `peerType=observer`), the same scenario against ferrokeeper and Java ZooKeeper 3.8,
//! with the Rust `zookeeper-client` crate over real sockets.
//!
//! - `srvr` says `Mode: observer` on the observers, and the leader's `mntr` counts them
//!   (`zk_learners`, `zk_synced_followers`, `zk_synced_observers`), compared with Java's
//!   values for the same ensemble.
//! - An observer serves reads and sessions and forwards writes: a write through one
//!   observer is read back there, seen on the other after `sync`, and fires a watch set
//!   through a follower.
//! - Observers never vote: with two of the three voters killed, the one voter and two
//!   observers left are no quorum, so the observers stop serving (`srvr` says so) and
//!   come back when a voter returns.
//!
//! Waits are bounded only to keep a broken ensemble from hanging the suite. Skipped, with
//! a message, where java or Debian's ZooKeeper is missing (the Java half only).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ensemble::{java_available, Ensemble, EnsembleOptions, FORM_LIMIT};
use common::Kind;
use zookeeper_client::{Acls, Client, CreateMode, EventType};

const VOTERS: usize = 3;
const OBSERVERS: usize = 2;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect(address: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(2))
        .connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect {address}: {e}"))
}

/// The leader's `mntr` values for the learner counts.
fn learner_counts(ensemble: &Ensemble, leader: usize) -> BTreeMap<String, String> {
    let member = &ensemble.members[leader];
    let mntr = common::ensemble::four_letter_word_at(&member.host, member.client_port, "mntr")
        .expect("mntr");
    mntr.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| {
            matches!(
                *k,
                "zk_server_state"
                    | "zk_learners"
                    | "zk_synced_followers"
                    | "zk_synced_non_voting_followers"
                    | "zk_synced_observers"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the scenario and returns the leader's learner counts.
fn observers(kind: Kind) -> Option<BTreeMap<String, String>> {
    if kind == Kind::JavaZk && !java_available() {
        eprintln!("SKIPPED: java or /usr/share/java/zookeeper.jar is missing");
        return None;
    }
    let options = EnsembleOptions {
        observers: OBSERVERS,
        ..EnsembleOptions::default()
    };
    let mut ensemble = Ensemble::start_with(kind, VOTERS + OBSERVERS, &options);
    let leader = ensemble.leader();
    assert!(leader < VOTERS, "an observer leads");
    for i in 0..VOTERS + OBSERVERS {
        let want = if i == leader {
            "leader"
        } else if i < VOTERS {
            "follower"
        } else {
            "observer"
        };
        assert_eq!(ensemble.mode(i).as_deref(), Some(want), "member {}", i + 1);
    }
    // The leader counts its learners once they have synced.
    let deadline = Instant::now() + FORM_LIMIT;
    let counts = loop {
        let counts = learner_counts(&ensemble, leader);
        if counts.get("zk_synced_observers").map(String::as_str) == Some("2")
            || Instant::now() > deadline
        {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let follower = (0..VOTERS).find(|&i| i != leader).expect("a follower");
    let (o1, o2) = (VOTERS, VOTERS + 1);
    runtime().block_on(async {
        let on_observer = connect(&ensemble.address(o1)).await;
        let on_other = connect(&ensemble.address(o2)).await;
        let on_follower = connect(&ensemble.address(follower)).await;
        let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
        on_follower
            .create("/obs", b"", &open)
            .await
            .expect("create /obs through a follower");
        on_observer.sync("/obs").await.expect("sync on an observer");
        let (_, _, watch) = on_observer
            .get_and_watch_children("/obs")
            .await
            .expect("watch /obs on an observer");
        on_observer
            .create("/obs/w", b"through an observer", &open)
            .await
            .expect("a write through an observer");
        let (data, _) = on_observer
            .get_data("/obs/w")
            .await
            .expect("read back on the observer");
        assert_eq!(data, b"through an observer");
        let event = tokio::time::timeout(Duration::from_secs(30), watch.changed())
            .await
            .expect("the observer's watch fires");
        assert_eq!(event.event_type, EventType::NodeChildrenChanged);
        on_other
            .sync("/obs")
            .await
            .expect("sync on the other observer");
        let (data, _) = on_other
            .get_data("/obs/w")
            .await
            .expect("read on the other observer");
        assert_eq!(data, b"through an observer");
    });

    // One voter and two observers are no quorum.
    let gone: Vec<usize> = (0..VOTERS).filter(|&i| i != follower).collect();
    for &i in &gone {
        ensemble.kill9(i);
    }
    let deadline = Instant::now() + FORM_LIMIT;
    while ensemble.mode(o1).is_some() || ensemble.mode(follower).is_some() {
        assert!(
            Instant::now() < deadline,
            "one voter and two observers kept serving: modes {:?} {:?}",
            ensemble.mode(follower),
            ensemble.mode(o1)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ensemble.restart(gone[0]);
    for i in [follower, o1, o2] {
        ensemble.wait_joined(i);
    }
    runtime().block_on(async {
        let client = connect(&ensemble.address(o2)).await;
        let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
        client
            .create("/obs/after", b"", &open)
            .await
            .expect("a write through an observer once a quorum is back");
    });
    Some(counts)
}

#[test]
fn observers_serve_reads_forward_writes_and_never_vote() {
    let Some(java) = observers(Kind::JavaZk) else {
        observers(Kind::Ferrokeeper);
        return;
    };
    let ferrokeeper = observers(Kind::Ferrokeeper).expect("ferrokeeper ran");
    assert_eq!(
        ferrokeeper, java,
        "the leader's learner counts in mntr (ferrokeeper, Java)"
    );
}
