//! Crash test: writers keep ferrokeeper busy while it is killed with SIGKILL at a random
//! moment, cycle after cycle; after each restart every acknowledged write must be there
//! (data and version), and a write that was in flight must be either whole or absent —
//! never half of a multi.
//!
//! Seeded: `FK_CRASH_SEED` replays a run; the seed is printed. `FK_CRASH_CYCLES` sets
//! the number of kill/restart cycles (default 8).

mod common;
mod raw;

use std::time::Duration;

use common::Server;
use rand::{Rng, SeedableRng};
use raw::{err, op, Conn, MultiOp};

const WRITERS: usize = 4;

/// What one writer knows was acknowledged, and what it had in flight when the server
/// died (acknowledged or not, the server may have committed it).
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// Last value acknowledged by setData on /crash/w<k>, and its version.
    set_acked: Option<(u64, i32)>,
    /// A setData whose reply never came: (value).
    set_in_flight: Option<u64>,
    /// Counters of acknowledged multis (each creates /crash/m<k>-<n>/a and /b).
    multis_acked: Vec<u64>,
    /// A multi whose reply never came.
    multi_in_flight: Option<u64>,
    /// Next counter value to use.
    next: u64,
}

async fn writer(addr: String, k: usize, mut ledger: Ledger, seed: u64) -> Ledger {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut c = Conn::connect(&addr).await;
    let node = format!("/crash/w{k}");
    loop {
        let n = ledger.next;
        ledger.next += 1;
        if rng.random_bool(0.7) {
            ledger.set_in_flight = Some(n);
            match c.set_data(&node, n.to_string().as_bytes(), -1).await {
                Ok(stat) => {
                    ledger.set_acked = Some((n, stat.version));
                    ledger.set_in_flight = None;
                }
                Err(e) if e == err::CLOSED => return ledger,
                Err(e) => panic!("setData {node}: error {e}"),
            }
        } else {
            let parent = format!("/crash/m{k}-{n}");
            let ops = [
                MultiOp::Create {
                    opcode: op::CREATE,
                    path: parent.clone(),
                    data: vec![],
                    acl: raw::open_acl(),
                    flags: 0,
                    ttl: 0,
                },
                MultiOp::Create {
                    opcode: op::CREATE,
                    path: format!("{parent}/a"),
                    data: b"a".to_vec(),
                    acl: raw::open_acl(),
                    flags: 0,
                    ttl: 0,
                },
                MultiOp::Create {
                    opcode: op::CREATE,
                    path: format!("{parent}/b"),
                    data: b"b".to_vec(),
                    acl: raw::open_acl(),
                    flags: 0,
                    ttl: 0,
                },
            ];
            ledger.multi_in_flight = Some(n);
            let (e, _) = c.multi(&ops).await;
            if e == err::CLOSED {
                return ledger;
            }
            assert_eq!(e, 0, "multi {parent}");
            ledger.multis_acked.push(n);
            ledger.multi_in_flight = None;
        }
    }
}

async fn multi_state(c: &mut Conn, k: usize, n: u64) -> (bool, bool, bool) {
    let parent = format!("/crash/m{k}-{n}");
    let p = c.exists(&parent, false).await.is_ok();
    let a = c.exists(&format!("{parent}/a"), false).await.is_ok();
    let b = c.exists(&format!("{parent}/b"), false).await.is_ok();
    (p, a, b)
}

async fn verify(addr: &str, ledgers: &mut [Ledger], cycle: usize, seed: u64) {
    let mut c = Conn::connect(addr).await;
    for (k, l) in ledgers.iter_mut().enumerate() {
        let what = format!("seed {seed} cycle {cycle} writer {k}");
        let (data, stat) = c
            .get_data(&format!("/crash/w{k}"), false)
            .await
            .expect("writer node");
        let value: u64 = std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some((acked, version)) = l.set_acked {
            match l.set_in_flight {
                // The unacknowledged setData may have committed: one version more.
                Some(n) if value == n => assert_eq!(stat.version, version + 1, "{what}"),
                _ => assert_eq!(
                    (value, stat.version),
                    (acked, version),
                    "{what}: acknowledged setData lost"
                ),
            }
        }
        // From here on the state as read is what the writer builds on.
        if let Some(n) = l.set_in_flight.take() {
            if value == n {
                l.set_acked = Some((n, stat.version));
            }
        }
        for &n in &l.multis_acked {
            assert_eq!(
                multi_state(&mut c, k, n).await,
                (true, true, true),
                "{what}: acknowledged multi {n} lost"
            );
        }
        if let Some(n) = l.multi_in_flight.take() {
            let s = multi_state(&mut c, k, n).await;
            assert!(
                s == (true, true, true) || s == (false, false, false),
                "{what}: multi {n} half applied: {s:?}"
            );
            if s.0 {
                l.multis_acked.push(n);
            }
        }
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let seed: u64 = std::env::var("FK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let cycles: usize = std::env::var("FK_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    eprintln!("crash test: seed {seed}, {cycles} cycles (replay: FK_CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = Server::start(common::Kind::Ferrokeeper, &[("forceSync", "yes")]);
    let addr = server.address();
    {
        let mut c = Conn::connect(&addr).await;
        c.create("/crash", b"", raw::open_acl(), 0)
            .await
            .expect("create /crash");
        for k in 0..WRITERS {
            c.create(&format!("/crash/w{k}"), b"0", raw::open_acl(), 0)
                .await
                .expect("create writer node");
        }
        c.close().await;
    }
    let mut ledgers = vec![Ledger::default(); WRITERS];
    let mut acked_total = 0usize;
    for cycle in 0..cycles {
        let tasks: Vec<_> = ledgers
            .iter()
            .cloned()
            .enumerate()
            .map(|(k, l)| {
                tokio::spawn(writer(
                    addr.clone(),
                    k,
                    l,
                    seed ^ (cycle * WRITERS + k) as u64,
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        // SIGKILL mid-flight: a blocking call is fine here, the writers run on their own.
        tokio::task::block_in_place(|| server.kill9_and_restart());
        for (k, t) in tasks.into_iter().enumerate() {
            ledgers[k] = t.await.expect("writer task");
        }
        verify(&addr, &mut ledgers, cycle, seed).await;
        acked_total = ledgers
            .iter()
            .map(|l| l.multis_acked.len() + usize::from(l.set_acked.is_some()))
            .sum();
    }
    let sets: u64 = ledgers.iter().map(|l| l.next).sum();
    eprintln!("crash test: {cycles} kills survived; {sets} writes issued, {acked_total} multis/sets acknowledged and verified");
    assert!(
        sets > 20,
        "the writers barely wrote: the test proves nothing"
    );
}
