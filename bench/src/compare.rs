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

use std::time::Duration;

use crate::clock::now_ns;
use crate::durability::DurabilityPlan;
use crate::engine::Pace;
use crate::results::{CompareResult, FixedRate, Memory, SweepPoint};
use crate::server::{
    java_zookeeper_installed, round_order, Pair, Server, ServerKind, ServerSettings,
};
use crate::stats::{RunStats, Side};
use crate::units::{fmt_latency, per_op_us};
use crate::workload::{
    preload, run_workload, LoadShape, Target, Templates, Workload, WorkloadResult,
};

// Re-exported so that callers of `compare` (the binary, the root package's bench_smoke
// test) find the command line's types beside it, as they always have.
pub use crate::plan::{CompareOptions, Plan, Profile};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// The window over which [`Bench::wait_idle`] reads both servers' CPU time. Long enough
/// for `/proc/<pid>/stat`'s 10 ms ticks to tell idle from busy.
const IDLE_WINDOW: Duration = Duration::from_millis(300);
/// Both servers together may use this much CPU time per [`IDLE_WINDOW`] and count as
/// idle (one clock tick: ~3 % of a core; an idle Java ZooKeeper and an idle ferrokeeper
/// use less).
const IDLE_CPU_MAX: Duration = Duration::from_millis(10);
/// How long [`Bench::wait_idle`] waits before it measures anyway (and says so).
const IDLE_WAIT_MAX: Duration = Duration::from_secs(20);

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
    /// Waits (at most [`IDLE_WAIT_MAX`]) until neither server uses more than
    /// [`IDLE_CPU_MAX`] of CPU time per [`IDLE_WINDOW`]. On this 2-core machine a
    /// server's background work after its own run (ferrokeeper compressing covered log
    /// segments once writes pause; Java's JIT compiler or a collection) would otherwise
    /// take CPU from the other server's measured run, or be charged to its own next one.
    fn wait_idle(&self, workload: Workload) {
        let pids: Vec<u32> = [ServerKind::Java, ServerKind::Ferrokeeper]
            .into_iter()
            .filter(|k| !*self.dead.get(*k))
            .map(|k| self.servers.get(k).pid())
            .collect();
        let cpu = || -> Option<u64> {
            pids.iter()
                .map(|&p| crate::stats::process_cpu_ns(p).ok())
                .sum()
        };
        let started = std::time::Instant::now();
        let Some(mut before) = cpu() else { return };
        loop {
            std::thread::sleep(IDLE_WINDOW);
            let Some(now) = cpu() else { return };
            let used = now.saturating_sub(before);
            before = now;
            if used <= IDLE_CPU_MAX.as_nanos() as u64 {
                break;
            }
            if started.elapsed() >= IDLE_WAIT_MAX {
                eprintln!(
                    "  {}: the servers still used {} ms of CPU per {} ms after {} s; measuring anyway",
                    workload.name(),
                    used / MS,
                    IDLE_WINDOW.as_millis(),
                    IDLE_WAIT_MAX.as_secs()
                );
                return;
            }
        }
        if started.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "  {}: waited {:.1} s for both servers to go idle",
                workload.name(),
                started.elapsed().as_secs_f64()
            );
        }
    }

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
        self.wait_idle(workload);
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
            fmt_latency(stats.latency.value_at_quantile(0.5)),
            fmt_latency(stats.latency.value_at_quantile(0.99)),
            fmt_latency(stats.latency.max()),
            stats
                .server_cpu_ns
                .map(|c| format!("{:.1}", per_op_us(c, stats.ops)))
                .unwrap_or_else(|| "?".into()),
            format!("{:.1}", per_op_us(stats.client_cpu_ns, stats.ops)),
            if stats.send_lag.is_empty() {
                String::new()
            } else {
                format!(
                    "  send lag p99 {}",
                    fmt_latency(stats.send_lag.value_at_quantile(0.99))
                )
            },
            if stats.errors > 0 { "  ERRORS" } else { "" }
        );
        stats
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
    if let Some(b) = options.data_bytes {
        plan.dataset.data_bytes = b;
    }
    if let Some(n) = options.load_nodes {
        plan.shape.load_nodes = n;
    }
    plan.shape.load_random_data = options.load_random_data;
    let settings = ServerSettings {
        ferrokeeper_bin: options.ferrokeeper_bin.clone(),
        ferrokeeper_shards: options.shards,
        java_heap: options.java_heap.clone(),
        java_classpath: crate::server::JAVA_ZK_CLASSPATH.to_string(),
        tick_time_ms: 2000,
        extra_config: options.zoo_cfg.clone(),
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
            add_durability(&mut result, &settings);
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
            let children = plan.wide_children;
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
            java: Side::empty(),
            fk: Side::empty(),
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
            java: Side::empty(),
            fk: Side::empty(),
        };
        for kind in round_order(0) {
            // Settled states before and after: Java after a full GC (its RSS otherwise
            // says more about when G1 last collected than about the tree), ferrokeeper
            // after a pause. Not after its fold (the snapshot the load starts, then the
            // tree moved onto it): the folded znodes then live in the mapped snapshot,
            // not resident until read, and RSS per znode came out negative; the
            // `restart` workload reads every znode and measures that state.
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
            // After the RSS readings, which the wait below would otherwise move.
            match crate::datadir::settle(&server.data_dir()) {
                Ok(settled) => {
                    let total = settled.usage.total();
                    eprintln!(
                        "  dataDir of {} after load: {} file(s), {:.1} MiB allocated, {:.1} MiB apparent{}",
                        kind.name(),
                        total.files,
                        total.allocated as f64 / (1 << 20) as f64,
                        total.bytes as f64 / (1 << 20) as f64,
                        if settled.settled { "" } else { " (still changing)" }
                    );
                    m.data_dir = Some(settled);
                }
                Err(e) => eprintln!("  dataDir of {} not read: {e}", kind.name()),
            }
            m.log_written_bytes = crate::durability::read_log(server).ok().map(|l| l.bytes);
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

/// Runs the durability workload on a pair of `forceSync=yes` servers of its own (under
/// `settings.base_dir/durable`) and adds it to `result`: the details in
/// `result.durability`, and a `durability` row (its point with the most writes in
/// flight) in `result.workloads`. Errors are added to `result.errors`.
fn add_durability(result: &mut CompareResult, settings: &ServerSettings) {
    let started = now_ns();
    let plan = DurabilityPlan::of(result.plan.profile);
    let mut settings = settings.clone();
    settings.base_dir = settings.base_dir.join("durable");
    eprintln!(
        "  durability: servers with forceSync=yes under {}",
        settings.base_dir.display()
    );
    match crate::durability::run(&plan, &settings, &result.plan.dataset, &result.plan.shape) {
        Ok((d, rss, errors)) => {
            if let Some(top) = d.points.iter().max_by_key(|p| p.sessions * p.outstanding) {
                let side = |kind| Side {
                    stats: top.stats.get(kind).clone(),
                    rss_bytes: *rss.get(kind),
                };
                result.workloads.push(WorkloadResult {
                    workload: Workload::Durability,
                    sides: Pair {
                        java: side(ServerKind::Java),
                        fk: side(ServerKind::Ferrokeeper),
                    },
                });
            }
            result.durability = Some(d);
            result.errors.extend(errors);
        }
        Err(e) => result
            .errors
            .push(format!("durability: a server did not start: {e}")),
    }
    result.elapsed_s += (now_ns() - started) as f64 / 1e9;
}
