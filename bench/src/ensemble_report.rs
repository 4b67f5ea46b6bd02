//! The markdown report of `compare --ensemble` and its two charts (throughput per row,
//! failover time), written beside the standalone reports as
//! `<date>-<profile>-ensemble.md` and `latest-ensemble.md`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::ensemble::{EnsembleResult, EnsembleSide, MEMBERS};
use crate::report::{date_utc, Machine};
use crate::server::ServerKind;
use crate::stats::RunStats;
use crate::svg::{bar_chart, server_color, Chart, Series};
use crate::units::{fmt_latency, per_op_us};
use crate::workload::Workload;

const KINDS: [ServerKind; 2] = [ServerKind::Java, ServerKind::Ferrokeeper];

fn ratio(fk: Option<f64>, java: Option<f64>) -> String {
    match (fk, java) {
        (Some(f), Some(j)) if j > 0.0 && f.is_finite() && j.is_finite() => {
            format!("{:.2}×", f / j)
        }
        _ => "–".into(),
    }
}

fn row(side: Option<&EnsembleSide>, workload: Workload) -> Option<&RunStats> {
    side?
        .rows
        .iter()
        .find(|(w, _)| *w == workload)
        .map(|(_, s)| s)
}

fn ops(s: Option<&RunStats>) -> Option<f64> {
    s.map(RunStats::ops_per_sec).filter(|v| *v > 0.0)
}

fn quantile_ns(s: Option<&RunStats>, q: f64) -> Option<u64> {
    s.filter(|s| !s.latency.is_empty())
        .map(|s| s.latency.value_at_quantile(q))
}

fn cpu(s: Option<&RunStats>) -> Option<f64> {
    let s = s?;
    s.server_cpu_ns
        .map(|c| per_op_us(c, s.ops))
        .filter(|v| v.is_finite())
}

fn lat(v: Option<u64>) -> String {
    v.map_or("–".into(), fmt_latency)
}

/// Writes the report and its charts into `dir`; returns the dated report's path.
pub fn write(result: &EnsembleResult, machine: &Machine, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let (date, _) = date_utc();
    let observers = match result.plan.observers {
        0 => String::new(),
        n => format!("-{n}-observers"),
    };
    let stem = format!("{date}-{}-ensemble{observers}", result.plan.profile.name());
    let throughput = format!("{stem}-throughput.svg");
    let failover = format!("{stem}-failover.svg");
    std::fs::write(dir.join(&throughput), throughput_chart(result)?)?;
    std::fs::write(dir.join(&failover), failover_chart(result)?)?;
    let md = render(result, machine, &throughput, &failover);
    let path = dir.join(format!("{stem}.md"));
    std::fs::write(&path, &md)?;
    std::fs::write(dir.join(format!("latest-ensemble{observers}.md")), &md)?;
    Ok(path)
}

fn throughput_chart(result: &EnsembleResult) -> io::Result<String> {
    let series = KINDS
        .iter()
        .map(|&kind| Series {
            name: format!("{} ({} servers)", kind.name(), result.plan.members()),
            color: server_color(kind),
            values: result
                .plan
                .rows
                .iter()
                .map(|&w| ops(row(result.sides.get(kind).as_ref(), w)))
                .collect(),
        })
        .collect();
    bar_chart(&Chart {
        title: format!(
            "Ensemble of {MEMBERS} voters and {} observers: throughput (closed loop)",
            result.plan.observers
        ),
        y_label: "ops/s (log)".into(),
        x_label: "row".into(),
        categories: result
            .plan
            .rows
            .iter()
            .map(|w| w.name().to_string())
            .collect(),
        series,
        log_y: true,
    })
}

fn failover_chart(result: &EnsembleResult) -> io::Result<String> {
    let series = KINDS
        .iter()
        .map(|&kind| {
            let f = result
                .sides
                .get(kind)
                .as_ref()
                .and_then(|s| s.failover.as_ref());
            Series {
                name: kind.name().into(),
                color: server_color(kind),
                values: [0.5, 0.99]
                    .iter()
                    .map(|&q| f.and_then(|f| f.percentile_ns(q)).map(|ns| ns as f64 / 1e6))
                    .collect(),
            }
        })
        .collect();
    bar_chart(&Chart {
        title: "Leader killed (kill -9): kill to next acknowledged write".into(),
        y_label: "ms".into(),
        x_label: "percentile over the kills".into(),
        categories: vec!["p50".into(), "p99".into()],
        series,
        log_y: false,
    })
}

/// The summary table: one line per row and the failover line. README's ensemble table
/// is this table.
pub fn summary_table(result: &EnsembleResult) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| row | ZooKeeper ops/s | ferrokeeper ops/s | ratio | p50 ZK / fk | p99 ZK / fk | server CPU µs/op, {} processes, ZK / fk | CPU ratio |\n|---|---:|---:|---:|---|---|---|---:|",
        result.plan.members()
    );
    let (java, fk) = (result.sides.java.as_ref(), result.sides.fk.as_ref());
    for &w in &result.plan.rows {
        let (j, f) = (row(java, w), row(fk, w));
        let name = match w {
            Workload::Read => "reads (getData)",
            Workload::Write => "writes (setData)",
            Workload::Mixed => "mixed (90 % getData, 10 % setData)",
            other => other.name(),
        };
        let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} |",
            ops(j).map_or("–".into(), |v| format!("{v:.0}")),
            ops(f).map_or("–".into(), |v| format!("{v:.0}")),
            ratio(ops(f), ops(j)),
            lat(quantile_ns(j, 0.5)),
            lat(quantile_ns(f, 0.5)),
            lat(quantile_ns(j, 0.99)),
            lat(quantile_ns(f, 0.99)),
            us(cpu(j)),
            us(cpu(f)),
            ratio(cpu(f), cpu(j)),
        );
    }
    let fo = |side: Option<&EnsembleSide>| side.and_then(|s| s.failover.clone());
    let (jf, ff) = (fo(java), fo(fk));
    let p = |f: &Option<crate::ensemble::Failover>, q| f.as_ref().and_then(|f| f.percentile_ns(q));
    let kills = |f: &Option<crate::ensemble::Failover>| {
        f.as_ref().map_or("–".into(), |f| {
            format!("{}/{}", f.sorted_ns().len(), f.times_ns.len())
        })
    };
    let _ = writeln!(
        md,
        "| failover: kill -9 the leader → next acknowledged write (kills measured ZK {}, fk {}) | – | – | p50 {}, p99 {} | {} / {} | {} / {} | – | – |",
        kills(&jf),
        kills(&ff),
        ratio(p(&ff, 0.5).map(|v| v as f64), p(&jf, 0.5).map(|v| v as f64)),
        ratio(p(&ff, 0.99).map(|v| v as f64), p(&jf, 0.99).map(|v| v as f64)),
        lat(p(&jf, 0.5)),
        lat(p(&ff, 0.5)),
        lat(p(&jf, 0.99)),
        lat(p(&ff, 0.99)),
    );
    md
}

/// The report's markdown.
fn render(result: &EnsembleResult, machine: &Machine, throughput: &str, failover: &str) -> String {
    let plan = &result.plan;
    let (_, when) = date_utc();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Ensembles of 3: ferrokeeper vs Apache ZooKeeper — `{}` profile, {when}\n",
        plan.profile.name()
    );
    let _ = writeln!(md, "Command: `{}`\n", result.command_line);
    if result.errors.is_empty() {
        let _ = writeln!(
            md,
            "Completed without errors ({:.0} s in all).\n",
            result.elapsed_s
        );
    } else {
        let _ = writeln!(
            md,
            "**{} error(s)** — see [Errors](#errors). ({:.0} s in all.)\n",
            result.errors.len(),
            result.elapsed_s
        );
    }
    let _ = writeln!(
        md,
        "Machine: {} cores ({}), {}, kernel {}; load average at the end {}. {}; Debian zookeeper {}.\n",
        machine.nproc,
        machine.cpu,
        machine.mem_total,
        machine.kernel,
        crate::report::loadavg(),
        machine.java,
        machine.zookeeper
    );
    let _ = writeln!(
        md,
        "{} servers of each kind ({MEMBERS} voters and {} observers), each set an ensemble on loopback, run one after the other (ZooKeeper's first), with the same `zoo.cfg` lines, `forceSync=yes` (ZooKeeper's default) and data on the same disk. All {} processes and the client share this machine's {} cores, so these are ratios from one run, not timings to rely on. The tree ({} data nodes of {} B) is preloaded through member 1 and checked on every member. Rows are closed loop, {} sessions spread round-robin over the members × {} outstanding, warm-up {:.1} s, {:.1} s measured, {} round(s), after {:.0} s of unmeasured `mixed`. Server CPU per op is `utime + stime` from `/proc/<pid>/stat` summed over every member. Ratios are ferrokeeper / ZooKeeper (for latency and CPU lower is better).\n",
        plan.members(),
        plan.observers,
        2 * plan.members(),
        machine.nproc,
        plan.dataset.nodes,
        plan.dataset.data_bytes,
        plan.sessions,
        plan.outstanding,
        plan.warmup_ns as f64 / 1e9,
        plan.measure_ns as f64 / 1e9,
        plan.rounds,
        plan.global_warmup_ns as f64 / 1e9,
    );
    md.push_str(&summary_table(result));
    if plan.observers == 0 {
        let _ = writeln!(
            md,
            "\nFailover: {} blocking writers ({} per member, one setData in flight each; a write unanswered for {:.1} s is given up and the writer moves to the next member) keep writing; the leader (by `srvr`'s `Mode:` line) is killed with SIGKILL and the time runs from the kill to the first acknowledgement of a write *sent after* the kill, by a writer or by one of the probe sessions started on the survivors every {} ms. The killed member is restarted on its data and the next kill waits for one leader, two followers and {:.1} s of writes. Percentiles are nearest-rank over {} kills, so p99 is the slowest.\n",
            plan.writers_per_member * MEMBERS,
            plan.writers_per_member,
            plan.write_timeout_ns as f64 / 1e9,
            plan.probe_interval_ns / 1_000_000,
            plan.settle_ns as f64 / 1e9,
            plan.kills
        );
    }
    let _ = writeln!(
        md,
        "![throughput]({throughput})\n\n![failover]({failover})\n"
    );
    md.push_str("## Failover, kill by kill\n\n| server | leader killed (myid) | kill → next acknowledged write | writes acknowledged (series) | reconnects | error replies |\n|---|---|---|---:|---:|---:|\n");
    for kind in KINDS {
        if let Some(f) = result
            .sides
            .get(kind)
            .as_ref()
            .and_then(|s| s.failover.as_ref())
        {
            let times: Vec<String> = f.times_ns.iter().map(|t| lat(*t)).collect();
            let leaders: Vec<String> = f.leaders.iter().map(|l| l.to_string()).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                kind.name(),
                leaders.join(", "),
                times.join(", "),
                f.acknowledged,
                f.reconnects,
                f.error_replies
            );
        }
    }
    md.push_str("\n## Memory and configuration\n\n");
    for kind in KINDS {
        if let Some(side) = result.sides.get(kind) {
            let rss: Vec<String> = side
                .rss_bytes
                .iter()
                .map(|r| {
                    r.map_or("?".into(), |b| {
                        format!("{:.0} MiB", b as f64 / (1 << 20) as f64)
                    })
                })
                .collect();
            let _ = writeln!(
                md,
                "{}: RSS of the members after the rows: {}. Member 1's command: `{}`\n\n```\n{}```\n",
                kind.name(),
                rss.join(", "),
                side.config.1,
                side.config.0
            );
        }
    }
    if !result.errors.is_empty() {
        md.push_str("## Errors\n\n");
        for e in &result.errors {
            let _ = writeln!(md, "- {}", e.replace('\n', "\n  "));
        }
    }
    md
}
