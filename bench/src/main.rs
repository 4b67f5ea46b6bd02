//! `ferrokeeper-bench`: the load generator and the side-by-side comparison against
//! Apache ZooKeeper. See the crate docs (`lib.rs`) for the design.
//!
//! ```text
//! ferrokeeper-bench compare [--smoke|--quick] [--ensemble] [--workloads read,write,...]
//!                           [--ferrokeeper-bin target/release/ferrokeeper] [--out DIR]
//! ferrokeeper-bench run --server 127.0.0.1:2181 --workload read [--preload] ...
//! ferrokeeper-bench zk-snapshot --znodes 1000000 --out DIR     # ZooKeeper 3.8 dataDir
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferrokeeper_bench::compare::compare;
use ferrokeeper_bench::engine::Pace;
use ferrokeeper_bench::plan::{CompareOptions, Plan, Profile};
use ferrokeeper_bench::report::{self, Machine};
use ferrokeeper_bench::units::{fmt_latency, per_op_us};
use ferrokeeper_bench::workload::{
    preload, run_workload, Dataset, LoadShape, Target, Templates, Workload,
};

#[derive(Parser)]
#[command(
    name = "ferrokeeper-bench",
    about = "Load generator for ZooKeeper-protocol servers, and ferrokeeper vs Apache ZooKeeper side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start Apache ZooKeeper and ferrokeeper, run the workloads against each, alternating,
    /// and write a markdown report. Exits 1 if a workload errs (never on performance).
    Compare(CompareArgs),
    /// Run one workload against a server that is already running.
    Run(RunArgs),
    /// Write the `restart` workload's Apache ZooKeeper 3.8 snapshot into DIR/version-2
    /// (to start ZooKeeper from, or to feed `ferrokeeper import`).
    ZkSnapshot(ZkSnapshotArgs),
    /// Server memory per idle client connection: opens N sessions (from many loopback
    /// source addresses), pings each, and reports each server's RSS growth per
    /// connection, Apache ZooKeeper and ferrokeeper in one run.
    IdleConns(IdleConnsArgs),
}

#[derive(Args)]
struct IdleConnsArgs {
    /// Connection counts, each on fresh servers.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    connections: Vec<usize>,
    /// Only this server: `zk` or `fk` (default: both).
    #[arg(long)]
    only: Option<String>,
    /// The ferrokeeper server binary (default: target/release/ferrokeeper).
    #[arg(long)]
    ferrokeeper_bin: Option<PathBuf>,
    /// ferrokeeper.shards (default: the server's, one per core).
    #[arg(long)]
    shards: Option<usize>,
    /// The JVM's -Xmx (100k connections need more than the default 1g).
    #[arg(long, default_value = "3g")]
    java_heap: String,
    /// Seconds to wait, sessions open and idle, before reading RSS.
    #[arg(long, default_value_t = 5)]
    settle_s: u64,
    /// Handshakes in flight at once while opening.
    #[arg(long, default_value_t = 256)]
    handshakes_in_flight: usize,
    /// Also write the table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ZkSnapshotArgs {
    /// Data znodes.
    #[arg(long)]
    znodes: u64,
    /// Bytes of data per znode.
    #[arg(long, default_value_t = 128)]
    data_bytes: usize,
    /// The ZooKeeper dataDir to write into.
    #[arg(long)]
    out: PathBuf,
}

const WORKLOAD_HELP: &str = "comma-separated: read, write, mixed, create-delete, exists, children, children-wide, multi, watch-fanout, sessions, load, restart, durability (default: all)";

#[derive(Args)]
struct CompareArgs {
    /// Tiny sizes, under a minute (CI).
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// A few minutes.
    #[arg(long)]
    quick: bool,
    /// Three servers of each kind as replicated ensembles, one after the other: reads,
    /// writes, mixed and failover time (instead of the standalone workloads).
    #[arg(long)]
    ensemble: bool,
    /// With --ensemble: take the servers' ports counting up from this one (default: any
    /// free ports).
    #[arg(long)]
    port_base: Option<u16>,
    /// With --ensemble: add this many observers to the three voters (the rows' sessions
    /// are spread over them too; no failover series).
    #[arg(long, default_value_t = 0)]
    observers: usize,
    #[arg(long, help = WORKLOAD_HELP, value_delimiter = ',')]
    workloads: Vec<String>,
    /// The ferrokeeper server binary (default: target/release/ferrokeeper, built by
    /// `cargo build --release`).
    #[arg(long)]
    ferrokeeper_bin: Option<PathBuf>,
    /// Directory for the report and charts (default: bench/results; for --smoke a
    /// temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write no report files.
    #[arg(long)]
    no_report: bool,
    /// Client worker threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Sessions of the pipelined workloads.
    #[arg(long)]
    sessions: Option<usize>,
    /// Requests in flight per session.
    #[arg(long)]
    outstanding: Option<usize>,
    /// Runs per workload per server.
    #[arg(long)]
    rounds: Option<usize>,
    /// Bytes of data per znode (and per setData) instead of the profile's.
    #[arg(long)]
    data_bytes: Option<usize>,
    /// Nodes `load` creates instead of the profile's (quick: 100,000).
    #[arg(long)]
    load_nodes: Option<u64>,
    /// Gives each of `load`'s creates random data of its own (the default data, the
    /// alphabet repeated, compresses to almost nothing: this shows the dataDir for data
    /// that does not compress).
    #[arg(long)]
    load_random_data: bool,
    /// Rate of the fixed-rate run, ops/s (default: half the slower server's throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// ferrokeeper.shards (default: the server's, one per core).
    #[arg(long)]
    shards: Option<usize>,
    /// The JVM's -Xmx.
    #[arg(long, default_value = "1g")]
    java_heap: String,
    /// Where the servers' directories go (default: a fresh temp directory).
    #[arg(long)]
    base_dir: Option<PathBuf>,
    /// Keep the servers' directories (zoo.cfg, data, server.log) afterwards.
    #[arg(long)]
    keep_dirs: bool,
    /// One more `zoo.cfg` line for both servers, `key=value` (repeatable), e.g.
    /// `--zoo-cfg preAllocSize=4096` for small log segments that roll during a run.
    #[arg(long, value_parser = parse_cfg_line)]
    zoo_cfg: Vec<(String, String)>,
}

fn parse_cfg_line(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not key=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Args)]
struct RunArgs {
    /// The server's client address.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: SocketAddr,
    /// One workload name (see compare --help).
    #[arg(long)]
    workload: String,
    /// Create the benchmark tree first.
    #[arg(long)]
    preload: bool,
    /// Data nodes.
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Bytes per data node.
    #[arg(long, default_value_t = 128)]
    data_bytes: usize,
    /// Children of /bench/children.
    #[arg(long, default_value_t = 1_000)]
    children: usize,
    /// Sessions.
    #[arg(long, default_value_t = 32)]
    sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 8)]
    outstanding: usize,
    /// Client worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Fixed rate, ops/s (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Warm-up, ms.
    #[arg(long, default_value_t = 1_000)]
    warmup_ms: u64,
    /// Measured window, ms.
    #[arg(long, default_value_t = 5_000)]
    measure_ms: u64,
    /// watch-fanout watchers.
    #[arg(long, default_value_t = 200)]
    watchers: usize,
    /// Nodes `load` creates.
    #[arg(long, default_value_t = 100_000)]
    load_nodes: u64,
    /// The server's pid, to report its CPU time per op.
    #[arg(long)]
    pid: Option<u32>,
}

fn parse_workloads(names: &[String]) -> Result<Vec<Workload>, String> {
    if names.is_empty() {
        return Ok(Workload::ALL.to_vec());
    }
    let mut chosen = Vec::new();
    for n in names {
        let w = Workload::parse(n.trim()).ok_or_else(|| format!("unknown workload {n:?}"))?;
        if !chosen.contains(&w) {
            chosen.push(w);
        }
    }
    // Always in the canonical order: load last, since it grows the tree.
    Ok(Workload::ALL
        .into_iter()
        .filter(|w| chosen.contains(w))
        .collect())
}

fn default_ferrokeeper_bin() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/ferrokeeper"));
    }
    candidates.push(PathBuf::from("target/release/ferrokeeper"));
    candidates.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/release/ferrokeeper"
    )));
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| candidates[candidates.len() - 2].clone())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Compare(args) => run_compare(args),
        Command::Run(args) => run_one(args),
        Command::ZkSnapshot(args) => zk_snapshot(args),
        Command::IdleConns(args) => idle_conns(args),
    }
}

fn run_compare(args: CompareArgs) -> ExitCode {
    let profile = if args.smoke {
        Profile::Smoke
    } else if args.quick {
        Profile::Quick
    } else {
        Profile::Full
    };
    if args.ensemble {
        return run_ensemble(args, profile);
    }
    let workloads = match parse_workloads(&args.workloads) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("ferrokeeper-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let out_dir = if args.no_report {
        None
    } else {
        Some(args.out.clone().unwrap_or_else(|| match profile {
            Profile::Smoke => std::env::temp_dir().join("ferrokeeper-bench-smoke"),
            _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")),
        }))
    };
    let options = CompareOptions {
        profile,
        workloads,
        ferrokeeper_bin: args.ferrokeeper_bin.unwrap_or_else(default_ferrokeeper_bin),
        out_dir: out_dir.clone(),
        threads: args.threads,
        sessions: args.sessions,
        outstanding: args.outstanding,
        rounds: args.rounds,
        data_bytes: args.data_bytes,
        load_nodes: args.load_nodes,
        load_random_data: args.load_random_data,
        rate: args.rate,
        shards: args.shards,
        java_heap: args.java_heap,
        base_dir: args.base_dir,
        keep_dirs: args.keep_dirs,
        zoo_cfg: args.zoo_cfg,
        command_line: std::iter::once("ferrokeeper-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let machine = Machine::detect();
    let result = match compare(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrokeeper-bench compare: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = out_dir {
        match report::write(&result, &machine, &dir) {
            Ok(path) => eprintln!("report: {}", path.display()),
            Err(e) => {
                eprintln!(
                    "ferrokeeper-bench: writing the report in {}: {e}",
                    dir.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    if let Some(d) = &result.durability {
        eprint!("{}", ferrokeeper_bench::durability::fsync_rows(d));
    }
    if result.errors.is_empty() {
        eprintln!("compare: no errors ({:.0} s)", result.elapsed_s);
        ExitCode::SUCCESS
    } else {
        eprintln!("compare: {} error(s):", result.errors.len());
        for e in &result.errors {
            eprintln!("  - {e}");
        }
        ExitCode::from(1)
    }
}

fn run_ensemble(args: CompareArgs, profile: Profile) -> ExitCode {
    use ferrokeeper_bench::ensemble::{self, EnsemblePlan};
    let mut plan = EnsemblePlan::of(profile);
    if let Some(t) = args.threads {
        plan.threads = t.max(1);
    }
    if let Some(s) = args.sessions {
        plan.sessions = s.max(1);
    }
    if let Some(k) = args.outstanding {
        plan.outstanding = k.max(1);
    }
    if let Some(r) = args.rounds {
        plan.rounds = r.max(1);
    }
    plan.observers = args.observers;
    if !args.workloads.is_empty() {
        let rows: Vec<_> = ensemble::ROWS
            .into_iter()
            .filter(|w| args.workloads.iter().any(|a| a == w.name()))
            .collect();
        if rows.is_empty() {
            eprintln!("ferrokeeper-bench: --ensemble measures only read, write and mixed");
            return ExitCode::from(2);
        }
        plan.rows = rows;
    }
    let bin = args.ferrokeeper_bin.unwrap_or_else(default_ferrokeeper_bin);
    if !bin.exists() {
        eprintln!(
            "ferrokeeper-bench: no ferrokeeper binary at {} (build it with `cargo build --release`)",
            bin.display()
        );
        return ExitCode::from(2);
    }
    let classpath = ferrokeeper_bench::server::JAVA_ZK_CLASSPATH.to_string();
    if !ferrokeeper_bench::server::java_zookeeper_installed(&classpath) {
        eprintln!(
            "ferrokeeper-bench: Apache ZooKeeper is not installed (apt-get install zookeeper)"
        );
        return ExitCode::from(2);
    }
    let settings = ferrokeeper_bench::server::ServerSettings {
        ferrokeeper_bin: bin,
        ferrokeeper_shards: args.shards,
        java_heap: args.java_heap,
        java_classpath: classpath,
        tick_time_ms: 2000,
        extra_config: Vec::new(),
        base_dir: args.base_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ferrokeeper-bench-ens-{}", std::process::id()))
        }),
    };
    let _ = std::fs::remove_dir_all(&settings.base_dir);
    let command_line = std::iter::once("ferrokeeper-bench".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let machine = Machine::detect();
    let result = ensemble::run(&plan, &settings, args.port_base, &command_line);
    if !args.keep_dirs {
        let _ = std::fs::remove_dir_all(&settings.base_dir);
    }
    if !args.no_report {
        let dir = args.out.unwrap_or_else(|| match profile {
            Profile::Smoke => std::env::temp_dir().join("ferrokeeper-bench-smoke"),
            _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results")),
        });
        match ferrokeeper_bench::ensemble_report::write(&result, &machine, &dir) {
            Ok(path) => eprintln!("report: {}", path.display()),
            Err(e) => {
                eprintln!(
                    "ferrokeeper-bench: writing the report in {}: {e}",
                    dir.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    eprint!(
        "{}",
        ferrokeeper_bench::ensemble_report::summary_table(&result)
    );
    if result.errors.is_empty() {
        eprintln!("compare --ensemble: no errors ({:.0} s)", result.elapsed_s);
        ExitCode::SUCCESS
    } else {
        eprintln!("compare --ensemble: {} error(s):", result.errors.len());
        for e in &result.errors {
            eprintln!("  - {e}");
        }
        ExitCode::from(1)
    }
}

fn run_one(args: RunArgs) -> ExitCode {
    let Some(workload) = Workload::parse(&args.workload) else {
        eprintln!("ferrokeeper-bench: unknown workload {:?}", args.workload);
        return ExitCode::from(2);
    };
    let dataset = Dataset {
        nodes: args.nodes,
        data_bytes: args.data_bytes,
        children: args.children,
    };
    if args.preload {
        if let Err(e) = preload(args.server, &dataset, args.threads, 30_000) {
            eprintln!("ferrokeeper-bench: preload: {e}");
            return ExitCode::from(1);
        }
        if workload == Workload::ChildrenWide {
            let children = Plan::of(Profile::Quick).wide_children;
            if let Err(e) =
                ferrokeeper_bench::wide::preload(args.server, children, args.threads, 30_000)
            {
                eprintln!("ferrokeeper-bench: preload of children-wide: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let templates = Templates::new(&dataset);
    let shape = LoadShape {
        sessions: args.sessions,
        outstanding: args.outstanding,
        threads: args.threads,
        pace: args
            .rate
            .map_or(Pace::Closed, |r| Pace::Rate { ops_per_sec: r }),
        warmup_ns: args.warmup_ms * 1_000_000,
        measure_ns: args.measure_ms * 1_000_000,
        session_timeout_ms: 30_000,
        drain_ns: 10_000_000_000,
        fanout_watchers: args.watchers,
        session_concurrency: 8,
        load_nodes: args.load_nodes,
        load_random_data: false,
    };
    let tag = format!("run-{}", std::process::id());
    let target = Target {
        addr: args.server,
        pid: args.pid,
        templates: &templates,
        tag: &tag,
    };
    match run_workload(workload, &target, &shape) {
        Ok(s) => {
            let h = &s.latency;
            println!(
                "{}: {:.0} ops/s ({} ops), p50 {} p99 {} p99.9 {} max {}, client CPU {:.1} µs/op{}{}",
                workload.name(),
                s.ops_per_sec(),
                s.ops,
                fmt_latency(h.value_at_quantile(0.5)),
                fmt_latency(h.value_at_quantile(0.99)),
                fmt_latency(h.value_at_quantile(0.999)),
                fmt_latency(h.max()),
                per_op_us(s.client_cpu_ns, s.ops),
                s.server_cpu_ns
                    .map(|c| format!(", server CPU {:.1} µs/op", per_op_us(c, s.ops)))
                    .unwrap_or_default(),
                s.first_error
                    .as_ref()
                    .map(|e| format!(", {} errors, first: {e}", s.errors))
                    .unwrap_or_default()
            );
            if s.errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("ferrokeeper-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn zk_snapshot(args: ZkSnapshotArgs) -> ExitCode {
    let plan = ferrokeeper_bench::restart::RestartPlan::of(Profile::Quick);
    let spec = ferrokeeper_bench::zk_snapshot::TreeSpec {
        znodes: args.znodes,
        parents: plan.parents,
        data_bytes: args.data_bytes,
        sessions: plan.sessions,
        ephemerals_per_session: plan.ephemerals_per_session,
        session_timeout_ms: plan.session_timeout_ms,
    };
    match ferrokeeper_bench::zk_snapshot::write_snapshot(&args.out, &spec) {
        Ok(w) => {
            println!(
                "{} ({} bytes, {} znodes in all, zxid 0x{:x})",
                w.path.display(),
                w.bytes,
                spec.znodes_total(),
                w.last_zxid
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrokeeper-bench zk-snapshot: {e}");
            ExitCode::from(1)
        }
    }
}

fn idle_conns(args: IdleConnsArgs) -> ExitCode {
    use ferrokeeper_bench::idle::{self, IdleSpec};
    use ferrokeeper_bench::server::ServerKind;
    let kinds = match args.only.as_deref() {
        None => vec![ServerKind::Java, ServerKind::Ferrokeeper],
        Some("zk") => vec![ServerKind::Java],
        Some("fk") => vec![ServerKind::Ferrokeeper],
        Some(other) => {
            eprintln!("ferrokeeper-bench: --only takes zk or fk, not {other:?}");
            return ExitCode::from(2);
        }
    };
    let most = args.connections.iter().copied().max().unwrap_or(0) as u64;
    // The harness and the server each hold one descriptor per session, plus their own.
    match idle::raise_nofile(most + 4096) {
        Ok(limit) if limit < most + 1024 => {
            eprintln!(
                "ferrokeeper-bench: RLIMIT_NOFILE is {limit}, too low for {most} connections (run as root)"
            );
            return ExitCode::from(2);
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("ferrokeeper-bench: raising RLIMIT_NOFILE: {e}");
            return ExitCode::from(2);
        }
    }
    let settings = ferrokeeper_bench::server::ServerSettings {
        ferrokeeper_bin: args.ferrokeeper_bin.unwrap_or_else(default_ferrokeeper_bin),
        ferrokeeper_shards: args.shards,
        java_heap: args.java_heap,
        java_classpath: ferrokeeper_bench::server::JAVA_ZK_CLASSPATH.to_string(),
        tick_time_ms: 2000,
        extra_config: Vec::new(),
        base_dir: std::env::temp_dir()
            .join(format!("ferrokeeper-bench-idle-{}", std::process::id())),
    };
    let spec = IdleSpec {
        connections: args.connections,
        handshakes_in_flight: args.handshakes_in_flight.max(1),
        // The most a server grants at tickTime 2000 (20 ticks).
        session_timeout_ms: 40_000,
        settle_ns: args.settle_s * 1_000_000_000,
        open_ns_max: 600_000_000_000,
        kinds,
    };
    let (points, errors) = idle::run(&settings, &spec);
    let _ = std::fs::remove_dir_all(&settings.base_dir);
    let table = idle::table(&points);
    print!("{table}");
    if let Some(out) = args.out {
        if let Err(e) = std::fs::write(&out, &table) {
            eprintln!("ferrokeeper-bench: writing {}: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            eprintln!("  - {e}");
        }
        ExitCode::from(1)
    }
}
