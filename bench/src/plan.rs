//! What `compare` runs: the [`Profile`] named on the command line, the [`Plan`] it fixes
//! (data, load shape, rounds, sweep, rates) and the [`CompareOptions`] as given.
//!
//! Plain data, below the runners and the report, which read it alike.

use std::path::PathBuf;

use crate::engine::Pace;
use crate::workload::{Dataset, LoadShape, Workload};

/// How big and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Tiny sizes, well under a minute: keeps the harness from rotting (CI).
    Smoke,
    /// A few minutes.
    Quick,
    /// The real thing: bigger data, longer windows, more rounds.
    Full,
}

impl Profile {
    /// The name in file names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }
}

/// Everything a profile fixes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The profile.
    pub profile: Profile,
    /// The preloaded data.
    pub dataset: Dataset,
    /// Sessions, windows, ... of every run.
    pub shape: LoadShape,
    /// Runs per workload per server (alternating).
    pub rounds: usize,
    /// Throughput against requests in flight: `read` at these (sessions, outstanding).
    pub sweep: Vec<(usize, usize)>,
    /// Warm-up and window of each sweep point, ns.
    pub sweep_warmup_ns: u64,
    /// Window of each sweep point, ns.
    pub sweep_measure_ns: u64,
    /// The fixed-rate run of `mixed` goes at this fraction of the slower server's
    /// closed-loop `mixed` throughput.
    pub fixed_rate_fraction: f64,
    /// The rate of the light-load `write` run, ops/s.
    pub light_write_rate: f64,
    /// Both servers run `mixed` this long before anything is measured (JIT warm-up).
    pub global_warmup_ns: u64,
    /// Children of `children-wide`'s parent ([`crate::wide::WIDE_PARENT`]): 100,000 is
    /// the width the workload is about; the smoke profile only keeps it working.
    pub wide_children: usize,
}

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

impl Plan {
    /// The plan of a profile.
    pub fn of(profile: Profile) -> Plan {
        let threads = 1;
        match profile {
            Profile::Smoke => Plan {
                profile,
                dataset: Dataset {
                    nodes: 200,
                    data_bytes: 64,
                    children: 100,
                },
                shape: LoadShape {
                    sessions: 4,
                    outstanding: 4,
                    threads,
                    pace: Pace::Closed,
                    warmup_ns: 100 * MS,
                    measure_ns: 400 * MS,
                    session_timeout_ms: 30_000,
                    drain_ns: 5 * S,
                    fanout_watchers: 10,
                    session_concurrency: 4,
                    load_nodes: 2_000,
                    load_random_data: false,
                },
                rounds: 1,
                sweep: vec![(1, 1), (4, 4)],
                sweep_warmup_ns: 100 * MS,
                sweep_measure_ns: 300 * MS,
                fixed_rate_fraction: 0.5,
                light_write_rate: 200.0,
                global_warmup_ns: 0,
                wide_children: 1_000,
            },
            Profile::Quick => Plan {
                profile,
                dataset: Dataset {
                    nodes: 10_000,
                    data_bytes: 128,
                    children: 1_000,
                },
                shape: LoadShape {
                    sessions: 32,
                    outstanding: 8,
                    threads,
                    pace: Pace::Closed,
                    warmup_ns: S,
                    measure_ns: 4 * S,
                    session_timeout_ms: 30_000,
                    drain_ns: 10 * S,
                    fanout_watchers: 200,
                    session_concurrency: 8,
                    load_nodes: 100_000,
                    load_random_data: false,
                },
                rounds: 2,
                sweep: vec![(1, 1), (4, 1), (16, 1), (16, 4), (16, 16), (16, 32)],
                sweep_warmup_ns: 500 * MS,
                sweep_measure_ns: 2 * S,
                fixed_rate_fraction: 0.5,
                light_write_rate: 2_000.0,
                global_warmup_ns: 5 * S,
                wide_children: 100_000,
            },
            Profile::Full => Plan {
                profile,
                dataset: Dataset {
                    nodes: 100_000,
                    data_bytes: 256,
                    children: 1_000,
                },
                shape: LoadShape {
                    sessions: 64,
                    outstanding: 8,
                    threads,
                    pace: Pace::Closed,
                    warmup_ns: 3 * S,
                    measure_ns: 10 * S,
                    session_timeout_ms: 30_000,
                    drain_ns: 10 * S,
                    fanout_watchers: 1_000,
                    session_concurrency: 16,
                    load_nodes: 1_000_000,
                    load_random_data: false,
                },
                rounds: 3,
                sweep: vec![
                    (1, 1),
                    (4, 1),
                    (16, 1),
                    (16, 4),
                    (16, 16),
                    (32, 16),
                    (64, 8),
                ],
                sweep_warmup_ns: S,
                sweep_measure_ns: 5 * S,
                fixed_rate_fraction: 0.5,
                light_write_rate: 2_000.0,
                global_warmup_ns: 20 * S,
                wide_children: 100_000,
            },
        }
    }
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The profile.
    pub profile: Profile,
    /// Workloads to run (in [`Workload::ALL`] order).
    pub workloads: Vec<Workload>,
    /// The ferrokeeper binary (`cargo build --release`: `target/release/ferrokeeper`).
    pub ferrokeeper_bin: PathBuf,
    /// Where the report goes (`None`: no files).
    pub out_dir: Option<PathBuf>,
    /// Overrides of the plan.
    pub threads: Option<usize>,
    /// Sessions override.
    pub sessions: Option<usize>,
    /// Outstanding-per-session override.
    pub outstanding: Option<usize>,
    /// Rounds override.
    pub rounds: Option<usize>,
    /// Bytes of data per znode (and per setData) instead of the profile's.
    pub data_bytes: Option<usize>,
    /// Nodes `load` creates instead of the profile's.
    pub load_nodes: Option<u64>,
    /// Random data of its own in each of `load`'s creates.
    pub load_random_data: bool,
    /// Fixed rate override (ops/s), instead of a fraction of the measured throughput.
    pub rate: Option<f64>,
    /// `ferrokeeper.shards`.
    pub shards: Option<usize>,
    /// The JVM's `-Xmx`.
    pub java_heap: String,
    /// Where the servers' directories go (`None`: a fresh temp directory).
    pub base_dir: Option<PathBuf>,
    /// Keep the servers' directories (logs) afterwards.
    pub keep_dirs: bool,
    /// More `zoo.cfg` lines for both servers (`--zoo-cfg`).
    pub zoo_cfg: Vec<(String, String)>,
    /// The command line as typed, for the report.
    pub command_line: String,
}
