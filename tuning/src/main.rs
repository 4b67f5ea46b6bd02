//! `ferrokeeper-tune`: checks this host for ferrokeeper, probes the data directory's disk,
//! prints recommended `zoo.cfg` settings, and with `--apply` (as root) makes the few safe,
//! reversible kernel changes. See the library's crate documentation for the parts.
//!
//! Exit status: 0 when the report was produced (whatever the checks found), 1 with
//! `--strict` when a check failed, 2 for a usage error, 3 for `--apply` without root
//! (nothing changed), 4 when an `--apply` change did not take.

#![warn(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use ferrokeeper_tuning::apply;
use ferrokeeper_tuning::report::Applied;
use ferrokeeper_tuning::{probe, HostReport, Report, Status, Targets};

/// Checks this host for ferrokeeper, measures the data directory's disk, and prints the
/// settings to use.
#[derive(Debug, Parser)]
#[command(name = "ferrokeeper-tune", version)]
struct Args {
    /// The directory that will hold the transaction log (zoo.cfg's dataLogDir, else
    /// dataDir). The disk probe writes its files here (removed afterwards).
    #[arg(long, value_name = "DIR", default_value = ".")]
    data_dir: PathBuf,

    /// Print the whole report as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,

    /// As root, raise net.core.somaxconn and net.ipv4.tcp_max_syn_backlog when they are
    /// below 1024 and set transparent huge pages from always to madvise, printing each
    /// change before making it and the command that reverts it. Nothing is persisted.
    #[arg(long)]
    apply: bool,

    /// Time budget of the disk probe, in seconds; 0 skips the timed measurements.
    #[arg(long, value_name = "SECS", default_value_t = probe::DEFAULT_BUDGET.as_secs_f64())]
    probe_seconds: f64,

    /// Write latency (p99, at the server) the batch limit is sized for, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = Targets::default().write_latency_p99_us / 1000.0)]
    target_write_latency_ms: f64,

    /// Client connections the host should hold (checked against the open-file limit).
    #[arg(long, value_name = "N", default_value_t = Targets::default().expected_connections)]
    expected_connections: u64,

    /// The commit stage's CPU time per request, in microseconds (not measured by the
    /// tuner: use the bench's figure).
    #[arg(long, value_name = "US", default_value_t = Targets::default().prep_us_per_request)]
    commit_stage_us: f64,

    /// Explain every check, not only those that are not ok.
    #[arg(long, short)]
    verbose: bool,

    /// Exit with status 1 if any check fails.
    #[arg(long)]
    strict: bool,
}

const EXIT_CHECK_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_ROOT: u8 = 3;
const EXIT_APPLY_FAILED: u8 = 4;

fn main() -> ExitCode {
    let args = Args::parse();
    let valid = |v: f64, min: f64, max: f64| v.is_finite() && v >= min && v <= max;
    if !valid(args.probe_seconds, 0.0, 600.0)
        || !valid(args.target_write_latency_ms, 0.001, 60_000.0)
        || !valid(args.commit_stage_us, 0.0, 1e6)
    {
        eprintln!(
            "ferrokeeper-tune: --probe-seconds must be in 0..=600, --target-write-latency-ms \
             in 0.001..=60000, --commit-stage-us in 0..=1000000"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let targets = Targets {
        write_latency_p99_us: args.target_write_latency_ms * 1000.0,
        expected_connections: args.expected_connections,
        prep_us_per_request: args.commit_stage_us,
    };

    let mut host = HostReport::gather();
    let budget = Duration::from_secs_f64(args.probe_seconds);
    if !budget.is_zero() {
        eprintln!(
            "probing {} for up to {:.1} s...",
            args.data_dir.display(),
            budget.as_secs_f64()
        );
    }
    host.disk = Some(probe::run(&args.data_dir, budget));
    let mut report = Report::new(host, targets);

    let mut code = if args.strict && report.worst == Status::Fail {
        EXIT_CHECK_FAILED
    } else {
        0
    };
    if args.apply {
        let root = report.host.is_root();
        report.applied = Some(Applied {
            root,
            outcomes: Vec::new(),
        });
        if !args.json {
            print!("{}", report.text(args.verbose));
        }
        if root {
            let outcomes = apply_as_root(&report.plan, args.json);
            if outcomes.iter().any(|o| !o.done) {
                code = EXIT_APPLY_FAILED;
            }
            if let Some(a) = report.applied.as_mut() {
                a.outcomes = outcomes;
            }
        } else {
            explain_without_root(&report.plan, args.json);
            code = EXIT_NOT_ROOT;
        }
    } else if !args.json {
        print!("{}", report.text(args.verbose));
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("ferrokeeper-tune: cannot encode the report as JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::from(code)
}

/// Makes the plan's changes, announcing each before it is made, then prints how to revert,
/// how to persist, and the manual steps. In JSON mode the narration goes to stderr.
fn apply_as_root(plan: &apply::Plan, json: bool) -> Vec<apply::Outcome> {
    let say = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say("\nAPPLY".to_string());
    if plan.actions.is_empty() {
        say("nothing to change on this host.".to_string());
    }
    let outcomes = apply::execute(
        plan,
        |a| {
            say(format!(
                "setting {}: {} -> {}  (writing {})",
                a.setting,
                a.from,
                a.to,
                a.path.display()
            ))
        },
        |o| match &o.error {
            None => say(format!("  done: {} = {}", o.action.setting, o.action.to)),
            Some(e) => say(format!("  FAILED: {}: {e}", o.action.setting)),
        },
    );
    let done: Vec<_> = outcomes.iter().filter(|o| o.done).collect();
    if !done.is_empty() {
        say("to revert (a reboot also reverts, nothing was persisted):".to_string());
        for o in done {
            say(format!("  {}", o.action.revert));
        }
        say("to keep these after a reboot:".to_string());
        for p in &plan.persist {
            say(format!("  {p}"));
        }
    }
    print_manual(plan, &say);
    outcomes
}

fn explain_without_root(plan: &apply::Plan, json: bool) {
    let say = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say("\nAPPLY".to_string());
    say("--apply needs root (it writes /proc/sys and /sys); nothing was changed.".to_string());
    if plan.actions.is_empty() {
        say("As root it would change nothing on this host.".to_string());
    } else {
        say("As root it would run:".to_string());
        for a in &plan.actions {
            say(format!(
                "  echo {} > {}   (now {}; revert: {})",
                a.to,
                a.path.display(),
                a.from,
                a.revert
            ));
        }
    }
    print_manual(plan, &say);
}

fn print_manual(plan: &apply::Plan, say: &impl Fn(String)) {
    if !plan.manual.is_empty() {
        say("manual steps (never done by --apply):".to_string());
        for m in &plan.manual {
            say(format!("  {}: {}", m.check, m.fix));
        }
    }
}
