//! What a `compare` run found, as records: per workload, the sweep, the fixed-rate runs,
//! memory around `load`, the durability and restart sections, and the servers' settings.
//!
//! `compare` fills these in from the runners and the report reads them; this module uses
//! the runners only for the records they produce (`durability`, `restart`) and never the
//! report or `compare`.

use crate::datadir::Settled;
use crate::durability::DurabilityResult;
use crate::plan::{CompareOptions, Plan};
use crate::restart::RestartResult;
use crate::server::Pair;
use crate::stats::RunStats;
use crate::workload::{Workload, WorkloadResult};

/// One point of the throughput-against-outstanding sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Sessions.
    pub sessions: usize,
    /// Outstanding per session.
    pub outstanding: usize,
    /// Per server.
    pub stats: Pair<RunStats>,
}

/// A fixed-rate run.
#[derive(Debug, Clone)]
pub struct FixedRate {
    /// The workload.
    pub workload: Workload,
    /// How the rate was chosen, for the report.
    pub how: String,
    /// The rate, ops/s.
    pub rate: f64,
    /// Per server.
    pub stats: Pair<RunStats>,
}

/// Memory readings around `load`.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// RSS before, settled (Java: after a full GC), bytes.
    pub rss_before: Option<u64>,
    /// RSS right after, before any GC, bytes.
    pub rss_peak: Option<u64>,
    /// RSS after, settled (Java: after a full GC), bytes.
    pub rss_after: Option<u64>,
    /// Java: live heap after a full GC, before and after, bytes.
    pub live_heap: Option<(u64, u64)>,
    /// The data directory after `load`, once it stopped changing.
    pub data_dir: Option<Settled>,
    /// Bytes of transaction log data written, as opposed to the log files' size
    /// ([`crate::durability::read_log`]).
    pub log_written_bytes: Option<u64>,
}

/// Everything `compare` found, for the report.
#[derive(Debug, Clone)]
pub struct CompareResult {
    /// The plan run.
    pub plan: Plan,
    /// The options given.
    pub options: CompareOptions,
    /// Per workload.
    pub workloads: Vec<WorkloadResult>,
    /// The sweep (empty when `read` was not selected).
    pub sweep: Vec<SweepPoint>,
    /// The fixed-rate runs (the first is `mixed` at a fraction of the throughput).
    pub fixed_rate: Vec<FixedRate>,
    /// Memory around `load`, if run.
    pub memory: Option<Pair<Memory>>,
    /// The `durability` workload (its own `forceSync=yes` servers), if run.
    pub durability: Option<DurabilityResult>,
    /// `restart`, if run.
    pub restart: Option<RestartResult>,
    /// RSS of each server after start, bytes.
    pub idle_rss: Pair<Option<u64>>,
    /// RSS after the preload, bytes.
    pub preloaded_rss: Pair<Option<u64>>,
    /// The zoo.cfg and command of each server.
    pub configs: Pair<(String, String)>,
    /// Every error, in order.
    pub errors: Vec<String>,
    /// Wall time of the whole comparison, s.
    pub elapsed_s: f64,
}
