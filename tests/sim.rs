//! The whole-server simulator's driver (`ferrokeeper::sim`): one seed is one
//! deterministic run of the real commit path on simulated disks, with faults, power
//! cuts and restarts, checked after every step.
//!
//! - `cargo test --release --test sim`: the CI mode, a fixed set of seeds (sized to run
//!   in about a minute on a 2-core machine in release), so CI is deterministic.
//! - `FK_SIM_SEED=<n>`: replays seed `n` alone (every failure message names it).
//! - `FK_SIM_SEEDS=<count>` (from `FK_SIM_FIRST=<n>`, default a seed drawn from the
//!   time and printed) and `FK_SIM_STEPS=<n>`: the long mode, for hours.
//! - `FK_SIM_TRACE=1`: prints handshakes and pings of the run to stderr.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use ferrokeeper::sim::{run_seed, Summary};

/// Seeds in the CI mode. Measured on the 2-core development machine in release:
/// about 30 ms of CPU per seed of 1000 steps, so ~48 s alone and more with the
/// machine shared.
const CI_SEEDS: u64 = 1600;
/// Steps per seed unless `FK_SIM_STEPS` says otherwise.
const STEPS_DEFAULT: u64 = 1000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// Runs one seed; a panic inside the server code is reported with the seed and step.
fn one(seed: u64, steps: u64) -> Result<Summary, String> {
    let step = Cell::new(0);
    match catch_unwind(AssertUnwindSafe(|| run_seed(seed, steps, &step))) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(f)) => Err(f.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!(
                "seed {seed} step {}: panicked: {msg} (replay: FK_SIM_SEED={seed} cargo test --release --test sim)",
                step.get() + 1
            ))
        }
    }
}

#[test]
fn simulated_server_survives_faults_and_restarts() {
    let steps = env_u64("FK_SIM_STEPS").unwrap_or(STEPS_DEFAULT);
    let (first, count) = if let Some(seed) = env_u64("FK_SIM_SEED") {
        (seed, 1)
    } else if let Some(count) = env_u64("FK_SIM_SEEDS") {
        let first = env_u64("FK_SIM_FIRST").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() << 20)
                .unwrap_or(0)
        });
        (first, count)
    } else {
        (0, CI_SEEDS)
    };
    println!("sim: first seed {first}, {count} seeds of {steps} steps");
    let started = Instant::now();
    let mut total = Summary::default();
    let mut failures = Vec::new();
    for seed in first..first + count {
        match one(seed, steps) {
            Ok(s) => total.add(&s),
            Err(e) => {
                eprintln!("{e}");
                failures.push(e);
                if failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "sim: first seed {first}, {total}, failures {}, {:.1} s ({:.1} ms per seed)",
        failures.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / count.max(1) as f64
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
