//! The ensemble simulator's driver (`ferrokeeper::sim::ensemble`): one seed is one
//! deterministic run of 3 or 5 replication members (raft-rs, sequencer, state machine,
//! the real Raft log on simulated disks) over a simulated network with partitions,
//! crashes, restarts and disk faults, checked after every step and after healing.
//!
//! - `cargo test --release --test sim_ensemble`: the CI mode, fixed seeds for 3 and for
//!   5 members.
//! - `FK_ENS_SEED=<n>` (with `FK_ENS_NODES=3|5`, default both): replays seed `n` alone
//!   and prints its trace to stderr.
//! - `FK_ENS_SEEDS=<count>` (from `FK_ENS_FIRST=<n>`, default a seed drawn from the
//!   time and printed), `FK_ENS_STEPS=<n>`: more seeds.
//! - `FK_ENS_LONG=1`: the long mode, seeds from the time until stopped (hours), printing
//!   a summary every minute; failures are printed as they come and end the run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use ferrokeeper::sim::ensemble::{run_seed, Settings, Summary};

/// Seeds per size in the CI mode: about 20 s for both sizes on the 2-core machine in
/// release (some 30 ms of CPU per run of 1500 steps).
const CI_SEEDS: u64 = 200;
/// Steps (of 10 simulated ms) with faults per seed unless `FK_ENS_STEPS` says otherwise.
const STEPS_DEFAULT: u64 = 1500;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// Runs one seed; a panic inside the code under test is reported with the seed.
fn one(seed: u64, settings: Settings) -> Result<Summary, String> {
    match catch_unwind(AssertUnwindSafe(|| run_seed(seed, settings))) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(f)) => Err(f.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!(
                "seed {seed} ({} members): panicked: {msg} (replay: FK_ENS_SEED={seed} FK_ENS_NODES={} cargo test --release --test sim_ensemble)",
                settings.nodes, settings.nodes
            ))
        }
    }
}

fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() << 20)
        .unwrap_or(0)
}

#[test]
fn simulated_ensembles_stay_safe_and_live() {
    let steps = env_u64("FK_ENS_STEPS").unwrap_or(STEPS_DEFAULT);
    let sizes: Vec<u64> = match env_u64("FK_ENS_NODES") {
        Some(n) => vec![n],
        None => vec![3, 5],
    };
    let long = std::env::var("FK_ENS_LONG").is_ok_and(|v| v == "1");
    let one_seed = env_u64("FK_ENS_SEED");
    let (first, count) = if let Some(seed) = one_seed {
        (seed, 1)
    } else if long {
        (env_u64("FK_ENS_FIRST").unwrap_or_else(time_seed), u64::MAX)
    } else if let Some(count) = env_u64("FK_ENS_SEEDS") {
        (env_u64("FK_ENS_FIRST").unwrap_or_else(time_seed), count)
    } else {
        (0, CI_SEEDS)
    };
    println!("sim_ensemble: first seed {first}, {count} seeds of {steps} steps, sizes {sizes:?}");
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut total = Summary::default();
    let mut failures = Vec::new();
    let mut seed = first;
    while seed < first.saturating_add(count) {
        for &nodes in &sizes {
            let settings = Settings {
                nodes,
                steps,
                trace: one_seed.is_some(),
            };
            match one(seed, settings) {
                Ok(s) => total.add(&s),
                Err(e) => {
                    eprintln!("{e}");
                    failures.push(e);
                }
            }
        }
        if long && reported.elapsed() > Duration::from_secs(60) {
            println!("sim_ensemble: {:?}: {total}", started.elapsed());
            reported = Instant::now();
        }
        if failures.len() >= 10 || (long && !failures.is_empty()) {
            break;
        }
        seed += 1;
    }
    println!("sim_ensemble: {:?}: {total}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} failed seed(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total.acks > 0,
        "no write was acknowledged: the workload is broken"
    );
}
