//! `ferrokeeper-bench compare`: Apache ZooKeeper and ferrokeeper started side by side
//! with equivalent settings, the same data preloaded into both, and every workload run
//! against each in turn, alternating (Java, ferrokeeper, then ferrokeeper, Java, ...) so
//! that drift in the machine's load falls on both alike.
//!
//! Per run it records throughput, latency percentiles, the server's CPU time per op
//! (`/proc/<pid>/stat`) and RSS; the `load` workload also gives memory per znode. The
//! command fails (non-zero exit) when a workload errs — an error reply, a broken
//! connection, requests left unanswered, a server that died — and never because of a
//! performance number.

use std::path::PathBuf;
use std::time::Duration;

use crate::clock::now_ns;
use crate::engine::Pace;
use crate::report;
use crate::server::{java_zookeeper_installed, Server, ServerKind, ServerSettings};
use crate::stats::RunStats;
use crate::workload::{preload, run_workload, Dataset, LoadShape, Target, Templates, Workload};

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
                },
                rounds: 1,
                sweep: vec![(1, 1), (4, 4)],
                sweep_warmup_ns: 100 * MS,
                sweep_measure_ns: 300 * MS,
                fixed_rate_fraction: 0.5,
                light_write_rate: 200.0,
                global_warmup_ns: 0,
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
                },
                rounds: 2,
                sweep: vec![(1, 1), (4, 1), (16, 1), (16, 4), (16, 16), (16, 32)],
                sweep_warmup_ns: 500 * MS,
                sweep_measure_ns: 2 * S,
                fixed_rate_fraction: 0.5,
                light_write_rate: 2_000.0,
                global_warmup_ns: 5 * S,
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
    /// The command line as typed, for the report.
    pub command_line: String,
}

/// One server's side of a workload.
#[derive(Debug, Clone)]
pub struct Side {
    /// All rounds merged.
    pub stats: RunStats,
    /// RSS after the last round, bytes.
    pub rss_bytes: Option<u64>,
}

impl Side {
    fn new() -> Side {
        Side {
            stats: RunStats::empty(),
            rss_bytes: None,
        }
    }
}

/// A value per server.
#[derive(Debug, Clone)]
pub struct Pair<T> {
    /// Apache ZooKeeper's.
    pub java: T,
    /// ferrokeeper's.
    pub fk: T,
}

impl<T> Pair<T> {
    /// The value of `kind`.
    pub fn get(&self, kind: ServerKind) -> &T {
        match kind {
            ServerKind::Java => &self.java,
            ServerKind::Ferrokeeper => &self.fk,
        }
    }

    /// The value of `kind`, mutably.
    pub fn get_mut(&mut self, kind: ServerKind) -> &mut T {
        match kind {
            ServerKind::Java => &mut self.java,
            ServerKind::Ferrokeeper => &mut self.fk,
        }
    }
}

/// A workload's result on both servers.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// The workload.
    pub workload: Workload,
    /// Per server.
    pub sides: Pair<Side>,
}

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
    pub durability: Option<crate::durability::DurabilityResult>,
    /// `restart`, if run.
    pub restart: Option<crate::restart::RestartResult>,
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

/// Why `compare` could not run at all (as opposed to a workload erring).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A server did not start.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    /// Setup failed.
    #[error("{0}")]
    Setup(String),
}

struct Bench {
    plan: Plan,
    servers: Pair<Server>,
    templates: Templates,
    errors: Vec<String>,
    dead: Pair<bool>,
}

impl Bench {
    /// Runs `workload` on `kind` once with `shape`; errors are recorded, not returned.
    fn run(
        &mut self,
        kind: ServerKind,
        workload: Workload,
        shape: &LoadShape,
        tag: &str,
    ) -> RunStats {
        if *self.dead.get(kind) {
            let mut s = RunStats::empty();
            s.error(|| format!("{} is not running", kind.name()));
            return s;
        }
        let server = self.servers.get(kind);
        let target = Target {
            addr: server.addr(),
            pid: Some(server.pid()),
            templates: &self.templates,
            tag,
        };
        let stats = match run_workload(workload, &target, shape) {
            Ok(s) => s,
            Err(e) => {
                let mut s = RunStats::empty();
                s.error(|| e.to_string());
                s
            }
        };
        if let Some(e) = &stats.first_error {
            self.errors.push(format!(
                "{} on {}: {} error(s), first: {e}",
                workload.name(),
                kind.name(),
                stats.errors
            ));
        }
        if stats.unanswered > 0 {
            self.errors.push(format!(
                "{} on {}: {} requests unanswered (stall)",
                workload.name(),
                kind.name(),
                stats.unanswered
            ));
        }
        let server = self.servers.get_mut(kind);
        if !server.is_running() {
            self.errors.push(format!(
                "{} died during {}; log tail:\n{}",
                kind.name(),
                workload.name(),
                server.log_tail(20)
            ));
            *self.dead.get_mut(kind) = true;
        }
        eprintln!(
            "  {:<13} {:<11} {:>10.0} ops/s  p50 {:>8}  p99 {:>8}  max {:>8}  server {:>7} µs/op  client {:>6} µs/op{}{}",
            workload.name(),
            kind.name(),
            stats.ops_per_sec(),
            report::fmt_latency(stats.latency.value_at_quantile(0.5)),
            report::fmt_latency(stats.latency.value_at_quantile(0.99)),
            report::fmt_latency(stats.latency.max()),
            stats
                .server_cpu_ns
                .map(|c| format!("{:.1}", report::per_op_us(c, stats.ops)))
                .unwrap_or_else(|| "?".into()),
            format!("{:.1}", report::per_op_us(stats.client_cpu_ns, stats.ops)),
            if stats.send_lag.is_empty() {
                String::new()
            } else {
                format!(
                    "  send lag p99 {}",
                    report::fmt_latency(stats.send_lag.value_at_quantile(0.99))
                )
            },
            if stats.errors > 0 { "  ERRORS" } else { "" }
        );
        stats
    }
}

/// The order of servers in round `round`: Java first on even rounds, ferrokeeper first
/// on odd ones (ABBA), so a trend in the machine's load is shared.
pub fn round_order(round: usize) -> [ServerKind; 2] {
    if round.is_multiple_of(2) {
        [ServerKind::Java, ServerKind::Ferrokeeper]
    } else {
        [ServerKind::Ferrokeeper, ServerKind::Java]
    }
}

/// Runs the comparison.
pub fn compare(options: &CompareOptions) -> Result<CompareResult, CompareError> {
    let started = now_ns();
    let mut plan = Plan::of(options.profile);
    if let Some(t) = options.threads {
        plan.shape.threads = t.max(1);
    }
    if let Some(s) = options.sessions {
        plan.shape.sessions = s.max(1);
    }
    if let Some(k) = options.outstanding {
        plan.shape.outstanding = k.max(1);
    }
    if let Some(r) = options.rounds {
        plan.rounds = r.max(1);
    }
    let settings = ServerSettings {
        ferrokeeper_bin: options.ferrokeeper_bin.clone(),
        ferrokeeper_shards: options.shards,
        java_heap: options.java_heap.clone(),
        java_classpath: crate::server::JAVA_ZK_CLASSPATH.to_string(),
        tick_time_ms: 2000,
        base_dir: options.base_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ferrokeeper-bench-{}", std::process::id()))
        }),
    };
    if !options.ferrokeeper_bin.exists() {
        return Err(CompareError::Setup(format!(
            "no ferrokeeper binary at {} (build it with `cargo build --release`)",
            options.ferrokeeper_bin.display()
        )));
    }
    if !java_zookeeper_installed(&settings.java_classpath) {
        return Err(CompareError::Setup(
            "Apache ZooKeeper is not installed (apt-get install zookeeper; tests/run.sh does it)"
                .into(),
        ));
    }
    let _ = std::fs::remove_dir_all(&settings.base_dir);
    eprintln!(
        "compare --{}: servers under {}",
        plan.profile.name(),
        settings.base_dir.display()
    );
    let result = (|| {
        let java = Server::start(ServerKind::Java, &settings)?;
        let fk = Server::start(ServerKind::Ferrokeeper, &settings)?;
        eprintln!(
            "  ZooKeeper pid {} port {}, ferrokeeper pid {} port {}",
            java.pid(),
            java.port,
            fk.pid(),
            fk.port
        );
        let mut bench = Bench {
            templates: Templates::new(&plan.dataset),
            plan: plan.clone(),
            servers: Pair { java, fk },
            errors: Vec::new(),
            dead: Pair {
                java: false,
                fk: false,
            },
        };
        let mut result = run_all(&mut bench, options, &settings, started);
        if options.workloads.contains(&Workload::Durability) {
            // The forceSync=no pair stops first: the durable pair gets the machine.
            drop(bench);
            crate::durability::run_into(&mut result, &settings);
        }
        Ok::<_, CompareError>(result)
    })();
    if !options.keep_dirs {
        let _ = std::fs::remove_dir_all(&settings.base_dir);
    }
    result
}

fn run_all(
    bench: &mut Bench,
    options: &CompareOptions,
    settings: &ServerSettings,
    started: u64,
) -> CompareResult {
    let plan = bench.plan.clone();
    let idle_rss = Pair {
        java: bench.servers.java.rss_bytes().ok(),
        fk: bench.servers.fk.rss_bytes().ok(),
    };
    let configs = Pair {
        java: (
            bench.servers.java.config.clone(),
            bench.servers.java.command.clone(),
        ),
        fk: (
            bench.servers.fk.config.clone(),
            bench.servers.fk.command.clone(),
        ),
    };
    for kind in round_order(0) {
        let server = bench.servers.get(kind);
        let t = now_ns();
        match preload(
            server.addr(),
            &plan.dataset,
            plan.shape.threads,
            plan.shape.session_timeout_ms,
        ) {
            Ok(_) => eprintln!(
                "  preloaded {} nodes + {} children into {} in {:.1} s",
                plan.dataset.nodes,
                plan.dataset.children,
                kind.name(),
                (now_ns() - t) as f64 / 1e9
            ),
            Err(e) => bench
                .errors
                .push(format!("preload of {}: {e}", kind.name())),
        }
    }
    let preloaded_rss = Pair {
        java: bench.servers.java.rss_bytes().ok(),
        fk: bench.servers.fk.rss_bytes().ok(),
    };
    // After the RSS reading above, so the Memory table's preload row stays comparable.
    if options.workloads.contains(&Workload::ChildrenWide) {
        for kind in round_order(0) {
            let server = bench.servers.get(kind);
            let children = crate::wide::children_of(plan.profile);
            let t = now_ns();
            match crate::wide::preload(
                server.addr(),
                children,
                plan.shape.threads,
                plan.shape.session_timeout_ms,
            ) {
                Ok(_) => eprintln!(
                    "  preloaded {children} children of {} into {} in {:.1} s",
                    crate::wide::WIDE_PARENT,
                    kind.name(),
                    (now_ns() - t) as f64 / 1e9
                ),
                Err(e) => bench.errors.push(format!(
                    "preload of children-wide into {}: {e}",
                    kind.name()
                )),
            }
        }
    }
    let shared_workloads = options.workloads.iter().any(|w| *w != Workload::Restart);
    if plan.global_warmup_ns > 0 && shared_workloads {
        eprintln!(
            "  warming both servers up ({} s of mixed each, not measured)",
            plan.global_warmup_ns / S
        );
        let mut shape = plan.shape.clone();
        shape.warmup_ns = plan.global_warmup_ns;
        shape.measure_ns = 100 * MS;
        for kind in round_order(0) {
            let stats = bench.run(kind, Workload::Mixed, &shape, "warmup");
            drop(stats);
        }
    }

    let mut workloads = Vec::new();
    // `load` comes last (it grows the tree); `restart` and `durability` run on servers of
    // their own.
    let shared_tree = |w: &&Workload| {
        !matches!(
            **w,
            Workload::Load | Workload::Restart | Workload::Durability
        )
    };
    for &workload in options.workloads.iter().filter(shared_tree) {
        let mut sides = Pair {
            java: Side::new(),
            fk: Side::new(),
        };
        for round in 0..plan.rounds {
            for kind in round_order(round) {
                let tag = format!("{}-{}-r{round}", kind.tag(), workload.name());
                let stats = bench.run(kind, workload, &plan.shape, &tag);
                let side = sides.get_mut(kind);
                side.stats.merge_round(&stats);
                side.rss_bytes = bench.servers.get(kind).rss_bytes().ok();
            }
        }
        workloads.push(WorkloadResult { workload, sides });
    }

    let mut sweep = Vec::new();
    if options.workloads.contains(&Workload::Read) {
        eprintln!("  sweep: read throughput against requests in flight");
        for (i, &(sessions, outstanding)) in plan.sweep.iter().enumerate() {
            let mut shape = plan.shape.clone();
            shape.sessions = sessions;
            shape.outstanding = outstanding;
            shape.warmup_ns = plan.sweep_warmup_ns;
            shape.measure_ns = plan.sweep_measure_ns;
            let mut stats = Pair {
                java: RunStats::empty(),
                fk: RunStats::empty(),
            };
            for kind in round_order(i) {
                *stats.get_mut(kind) = bench.run(kind, Workload::Read, &shape, "sweep");
            }
            sweep.push(SweepPoint {
                sessions,
                outstanding,
                stats,
            });
        }
    }

    let mut fixed_rate = Vec::new();
    let mut fixed_rates = Vec::new();
    let base = workloads
        .iter()
        .find(|w| w.workload == Workload::Mixed)
        .or_else(|| workloads.iter().find(|w| w.workload == Workload::Read));
    if let Some(base) = base {
        let (rate, how) = match options.rate {
            Some(r) => (r, "given with --rate".to_string()),
            None => (
                plan.fixed_rate_fraction
                    * base
                        .sides
                        .java
                        .stats
                        .ops_per_sec()
                        .min(base.sides.fk.stats.ops_per_sec()),
                format!(
                    "{:.0} % of the slower server's closed-loop `{}` throughput",
                    plan.fixed_rate_fraction * 100.0,
                    base.workload.name()
                ),
            ),
        };
        fixed_rates.push((base.workload, rate, how));
    }
    if options.workloads.contains(&Workload::Write) {
        fixed_rates.push((
            Workload::Write,
            plan.light_write_rate,
            "a light load: CPU per op when requests do not queue".to_string(),
        ));
    }
    for (workload, rate, how) in fixed_rates.iter().filter(|(_, r, _)| *r >= 1.0).cloned() {
        eprintln!(
            "  fixed rate: {} at {rate:.0} ops/s (latency from the intended send time)",
            workload.name()
        );
        let mut shape = plan.shape.clone();
        shape.pace = Pace::Rate { ops_per_sec: rate };
        let mut stats = Pair {
            java: RunStats::empty(),
            fk: RunStats::empty(),
        };
        for round in 0..plan.rounds {
            for kind in round_order(round) {
                let s = bench.run(kind, workload, &shape, "rate");
                stats.get_mut(kind).merge_round(&s);
            }
        }
        fixed_rate.push(FixedRate {
            workload,
            rate,
            how,
            stats,
        });
    }

    let mut memory = None;
    if options.workloads.contains(&Workload::Load) {
        let mut mem = Pair {
            java: Memory::default(),
            fk: Memory::default(),
        };
        let mut sides = Pair {
            java: Side::new(),
            fk: Side::new(),
        };
        for kind in round_order(0) {
            // Settled states before and after: Java after a full GC (its RSS otherwise
            // says more about when G1 last collected than about the tree), ferrokeeper
            // after a pause.
            std::thread::sleep(Duration::from_millis(500));
            let heap_before = bench.servers.get(kind).java_live_heap_bytes();
            let m = mem.get_mut(kind);
            m.rss_before = bench.servers.get(kind).rss_bytes().ok();
            let tag = format!("{}-load", kind.tag());
            let stats = bench.run(kind, Workload::Load, &plan.shape, &tag);
            std::thread::sleep(Duration::from_secs(1));
            let server = bench.servers.get(kind);
            let rss_peak = server.rss_bytes().ok();
            let heap_after = server.java_live_heap_bytes();
            let m = mem.get_mut(kind);
            m.rss_peak = rss_peak;
            m.rss_after = server.rss_bytes().ok();
            m.live_heap = heap_before.zip(heap_after);
            let side = sides.get_mut(kind);
            side.rss_bytes = m.rss_after;
            side.stats = stats;
        }
        workloads.push(WorkloadResult {
            workload: Workload::Load,
            sides,
        });
        memory = Some(mem);
    }

    let mut restart = None;
    if options.workloads.contains(&Workload::Restart) {
        let r = crate::restart::run(
            &crate::restart::RestartPlan::of(plan.profile),
            &crate::restart::RestartSetup {
                settings,
                data_bytes: plan.dataset.data_bytes,
                threads: plan.shape.threads,
                keep_dirs: options.keep_dirs,
            },
            &mut bench.errors,
        );
        workloads.push(WorkloadResult {
            workload: Workload::Restart,
            sides: r.sides(),
        });
        restart = Some(r);
    }

    CompareResult {
        plan,
        options: options.clone(),
        workloads,
        sweep,
        fixed_rate,
        memory,
        durability: None,
        restart,
        idle_rss,
        preloaded_rss,
        configs,
        errors: std::mem::take(&mut bench.errors),
        elapsed_s: (now_ns() - started) as f64 / 1e9,
    }
}
