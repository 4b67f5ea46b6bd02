//! Differential test: the same seeded random sequence of operations goes to two servers
//! (ferrokeeper and Apache ZooKeeper, or two Apache ZooKeepers to prove the harness),
//! and every reply and every watch notification must match field by field.
//!
//! The operations work in a small path space under one root per seed (`/d<seed>/a`,
//! `/d<seed>/a/b`, ...) so creates collide, deletes hit non-empty nodes and versions go
//! stale; they come from three sessions with different identities, so ACLs deny some of
//! them and watches fire across sessions; sessions are closed and reopened mid-run.
//!
//! Normalised, because it must differ between two servers: zxids (each replaced by its
//! rank of first appearance on that server, so equality and order are compared, not
//! values), ctime/mtime (dropped), session ids (replaced by "s<slot>g<generation>"), the
//! order of lists ZooKeeper keeps in hash sets (children, getEphemerals, whoAmI: sorted),
//! and the order of the notifications one closeSession produces (its ephemerals are
//! deleted in hash-set order: sorted). Everything else is compared as is, including the
//! reply header's zxid and err, sequential names, data, every other Stat field, and for
//! each session the ordered notifications (type, state, path) received during the step,
//! split into those before and after the acting session's reply.
//!
//! Steps are strictly sequential. After every write the harness sends `sync` on every
//! session and waits for the replies: a sync reply is ordered after every notification
//! the server queued for that connection before it, so each step's events are complete
//! when compared.
//!
//! Left out on purpose (a known difference between ZooKeeper versions, not a bug):
//! create2 inside multi (3.8.0 answers it as a plain create, ZOOKEEPER-4026); a one-shot
//! and a persistent watch of one session on one path (3.8 keeps one mode per path,
//! ZOOKEEPER-4466): session 2 sets only persistent watches, sessions 0 and 1 only
//! one-shot ones; removeWatches types 4 and 5 (3.9 only); a standalone `check` request
//! (Java 3.8.0 applies it and never answers: NullPointerException serializing the reply).
//! Tolerated: exists answered NoAuth by the candidate where 3.8 returns a stat (3.9.2
//! checks READ on exists, `exists_acl_3_9`); checkWatches Ok from 3.8 where the candidate answers NoWatcher, because
//! 3.8 answers for any connection's watch on the path and 3.9 (followed by ferrokeeper)
//! only for the asking connection's (see `check_watches_3_8_quirk`).
//!
//! Seeds: `FK_DIFF_SEED=<n>` runs that one seed (`FK_DIFF_OPS` ops, default 5000);
//! otherwise fixed seeds plus one derived from the clock, which is printed.

mod common;
mod diff;
mod raw;

use std::time::Instant;

use common::{Kind, Server};
use diff::run_seed;
use raw::Conn;

/// Both servers get this: containers and TTL nodes must not be reaped during a run (the
/// reaper's timing would differ between the two), and fsync is off to keep the run fast
/// (it changes no reply). `snapCount=200` makes ferrokeeper take dozens of snapshots
/// during a run and serve from each (its tree is rebased on every one), so the run
/// compares the layered tree, not only a heap-only one, with ZooKeeper.
const CONFIG: &[(&str, &str)] = &[
    ("znode.container.checkIntervalMs", "3600000"),
    ("forceSync", "no"),
    ("snapCount", "200"),
];

/// Ops per seed for the fixed seeds; the clock seed gets the rest of `OPS_TOTAL`.
const FIXED_SEEDS: &[u64] = &[1, 2, 3];
const OPS_PER_FIXED_SEED: usize = 1250;
const OPS_TOTAL: usize = 5000;

#[test]
fn differential_java_vs_java() {
    let a = Server::start(Kind::JavaZk, CONFIG);
    let b = Server::start(Kind::JavaZk, CONFIG);
    run_all(&a, &b);
}

#[test]
fn differential_ferrokeeper_vs_java() {
    let a = Server::start(Kind::JavaZk, CONFIG);
    let b = Server::start(Kind::Ferrokeeper, CONFIG);
    run_all(&a, &b);
}

/// The harness must see a difference when there is one: two Java servers, one of which
/// holds an extra node inside the run's path space.
#[test]
fn differential_detects_a_difference() {
    let a = Server::start(Kind::JavaZk, CONFIG);
    let b = Server::start(Kind::JavaZk, CONFIG);
    let addr = b.address();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut c = Conn::connect(&addr).await;
        c.create("/d7", b"", raw::open_acl(), 0)
            .await
            .expect("create /d7");
        c.close().await;
    });
    let (ra, ca) = (a.address(), b.address());
    let worker = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(run_seed(7, 200, &[ra], &[ca]));
        })
        .expect("spawn");
    let panic = worker.join().expect_err("the extra node went unnoticed");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("DIVERGENCE at seed 7 step setup"),
        "unexpected failure: {msg}"
    );
    assert!(
        msg.contains("err=-110"),
        "the candidate's NodeExists is shown: {msg}"
    );
}

/// Runs every planned seed on a runtime of its own, in a thread with a large stack: the
/// step futures (two servers' exec joined) are big in debug builds.
fn run_all(reference: &Server, candidate: &Server) {
    let (ra, ca, rk, ck) = (
        reference.address(),
        candidate.address(),
        reference.kind,
        candidate.kind,
    );
    let worker = std::thread::Builder::new()
        .name("differential".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(run_plan(&ra, &ca, rk, ck));
        })
        .expect("spawn differential thread");
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn run_plan(reference: &str, candidate: &str, reference_kind: Kind, candidate_kind: Kind) {
    let plan: Vec<(u64, usize)> = match std::env::var("FK_DIFF_SEED") {
        Ok(s) => {
            let seed = s
                .trim()
                .parse()
                .expect("FK_DIFF_SEED must be an unsigned integer");
            let ops = std::env::var("FK_DIFF_OPS")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(OPS_TOTAL);
            vec![(seed, ops)]
        }
        Err(_) => {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
                % 1_000_000_007;
            let mut plan: Vec<(u64, usize)> = FIXED_SEEDS
                .iter()
                .map(|&s| (s, OPS_PER_FIXED_SEED))
                .collect();
            plan.push((clock, OPS_TOTAL - OPS_PER_FIXED_SEED * FIXED_SEEDS.len()));
            plan
        }
    };
    for (seed, ops) in plan {
        eprintln!("differential: seed {seed}, {ops} ops ({reference_kind:?} vs {candidate_kind:?}); replay with FK_DIFF_SEED={seed} FK_DIFF_OPS={ops}");
        let start = Instant::now();
        run_seed(
            seed,
            ops,
            &[reference.to_string()],
            &[candidate.to_string()],
        )
        .await;
        eprintln!("differential: seed {seed} passed in {:?}", start.elapsed());
    }
}
