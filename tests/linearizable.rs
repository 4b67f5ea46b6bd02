//! Linearizability of a 3-node ferrokeeper ensemble, checked on histories recorded from
//! several clients (the checker: `common::linearize`), and the checker's own tests.

mod common;

use common::linearize::{check, Event, Op};

fn ev(invoked: u64, completed: Option<u64>, op: Op) -> Event {
    Event {
        invoked,
        completed,
        op,
    }
}

#[test]
fn checker_accepts_concurrent_writes_read_in_either_order() {
    // Two overlapping writes; a later read may see either, but then the other is gone.
    let h = vec![
        ev(0, Some(10), Op::Write(1)),
        ev(1, Some(9), Op::Write(2)),
        ev(11, Some(12), Op::Read(Some(1))),
        ev(13, Some(14), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_ok());
}

#[test]
fn checker_refuses_a_stale_read() {
    // write 1 completes, then write 2 completes, then a read returns 1: stale.
    let h = vec![
        ev(0, Some(1), Op::Write(1)),
        ev(2, Some(3), Op::Write(2)),
        ev(4, Some(5), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_err());
}

#[test]
fn checker_refuses_a_value_going_back() {
    // Two reads after both writes completed may not flip between the values.
    let h = vec![
        ev(0, Some(5), Op::Write(1)),
        ev(0, Some(5), Op::Write(2)),
        ev(6, Some(7), Op::Read(Some(2))),
        ev(8, Some(9), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_err());
}

#[test]
fn checker_lets_an_unknown_write_take_effect_late_or_never() {
    let late = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(None)),
        ev(3, Some(4), Op::Read(Some(7))),
    ];
    assert!(check(&late).is_ok());
    let never = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(None)),
        ev(30, Some(40), Op::Read(None)),
    ];
    assert!(check(&never).is_ok());
    // But it cannot be un-done once seen.
    let undone = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(Some(7))),
        ev(3, Some(4), Op::Read(None)),
    ];
    assert!(check(&undone).is_err());
}

#[test]
fn checker_handles_hundreds_of_operations() {
    // Five clients, each writing its own values and reading back, sequential per client
    // but overlapping across clients: linearizable by construction (a single register
    // simulated with a global order).
    let mut h = Vec::new();
    let mut value = None;
    let mut t = 0u64;
    for round in 0..60u64 {
        for c in 0..5u64 {
            let v = round * 10 + c;
            h.push(ev(t, Some(t + 3), Op::Write(v)));
            value = Some(v);
            t += 1;
        }
        t += 3;
        h.push(ev(t, Some(t + 1), Op::Read(value)));
        t += 2;
    }
    assert!(check(&h).is_ok());
}

// ---- The ensemble under test ----

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleOptions};
use common::Kind;
use zookeeper_client::{Acls, Client, CreateMode};

const KEYS: usize = 3;
const CLIENTS: u64 = 6;

async fn connect(hosts: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(2))
        .connect(hosts)
        .await
        .unwrap_or_else(|e| panic!("connect {hosts}: {e}"))
}

/// Whether an error leaves the operation's outcome unknown (it may have taken effect).
fn unknown(e: &zookeeper_client::Error) -> bool {
    !matches!(
        e,
        zookeeper_client::Error::NoNode | zookeeper_client::Error::BadVersion
    )
}

// Long because it is one client's whole loop: pick an operation, time it, record what
// came back, reconnect when the session ends.
async fn client_loop(
    c: u64,
    hosts: String,
    start: Instant,
    until: Instant,
    history: Arc<Mutex<Vec<Vec<Event>>>>,
) {
    let mut client = connect(&hosts).await;
    let mut seq = 0u64;
    // A small deterministic generator per client: which key, read or write.
    let mut x = c.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
    while Instant::now() < until {
        let key = (next() % KEYS as u64) as usize;
        let path = format!("/lin/k{key}");
        let invoked = Instant::now();
        if next() % 2 == 0 {
            seq += 1;
            let v = (c << 32) | seq;
            let r = client.set_data(&path, v.to_string().as_bytes(), None).await;
            let completed = match &r {
                Ok(_) => Some(ns(Instant::now())),
                Err(e) if unknown(e) => None,
                Err(_) => continue,
            };
            history.lock().expect("history")[key].push(Event {
                invoked: ns(invoked),
                completed,
                op: Op::Write(v),
            });
            if r.is_err() {
                if client.state().is_terminated() {
                    client = connect(&hosts).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            match client.get_data(&path).await {
                Ok((data, _)) => {
                    let seen = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok());
                    history.lock().expect("history")[key].push(Event {
                        invoked: ns(invoked),
                        completed: Some(ns(Instant::now())),
                        op: Op::Read(seen),
                    });
                }
                Err(_) => {
                    if client.state().is_terminated() {
                        client = connect(&hosts).await;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

/// Registers on three znodes, six clients spread over a three-member ensemble with
/// `ferrokeeper.quorumReads=true`, the leader killed with -9 and restarted midway: every
/// key's history of writes and reads must be linearizable. (The same run with
/// `quorumReads=false` fails the check, as it should: followers then serve reads
/// locally, ZooKeeper's sequential consistency, and a reader can see a value another
/// client has already overwritten. Tried by hand on 2026-12-05: "no order takes more
/// than 346 of 11070 operations".)
#[test]
fn quorum_reads_are_linearizable_across_a_leader_kill() {
    let options = EnsembleOptions::config(&[("ferrokeeper.quorumReads", "true")]);
    let mut ens = Ensemble::start_with(Kind::Ferrokeeper, 3, &options);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addrs = ens.addresses();
    rt.block_on(async {
        let c = connect(&ens.connect_string()).await;
        let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
        c.create("/lin", b"", &open).await.expect("create /lin");
        for k in 0..KEYS {
            c.create(&format!("/lin/k{k}"), b"", &open)
                .await
                .expect("create key");
        }
    });
    let history: Arc<Mutex<Vec<Vec<Event>>>> = Arc::new(Mutex::new(vec![Vec::new(); KEYS]));
    let start = Instant::now();
    let until = start + Duration::from_secs(8);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        // Each client starts on a different member: the connect string begins there.
        let n = addrs.len();
        let hosts: Vec<String> = (0..n)
            .map(|i| addrs[(c as usize + i) % n].clone())
            .collect();
        tasks.push(rt.spawn(client_loop(
            c,
            hosts.join(","),
            start,
            until,
            history.clone(),
        )));
    }
    std::thread::sleep(Duration::from_secs(3));
    let leader = ens.leader();
    ens.kill9(leader);
    std::thread::sleep(Duration::from_secs(2));
    ens.restart(leader);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let history = history.lock().expect("history");
    let mut ops = 0;
    for (k, h) in history.iter().enumerate() {
        ops += h.len();
        if let Err(e) = check(h) {
            panic!("key /lin/k{k}: {e}\n{h:#?}");
        }
    }
    eprintln!("linearizable: {ops} operations on {KEYS} keys from {CLIENTS} clients");
    assert!(
        ops > 100,
        "too few operations recorded ({ops}) to mean anything"
    );
}
