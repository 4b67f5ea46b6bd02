//! The markdown report of a comparison and its charts.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::datadir::{Settled, Usage};
use crate::plan::Profile;
use crate::results::{CompareResult, Memory};
use crate::server::{java_version, zookeeper_version, Pair, ServerKind};
use crate::stats::{RunStats, Side};
use crate::svg::{bar_chart, line_chart, server_color, Chart, Series};
use crate::units::{fmt_latency, per_op_us};
use crate::workload::Workload;

/// What the machine is.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Cores the process may use.
    pub nproc: usize,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// Memory.
    pub mem_total: String,
    /// `/proc/loadavg` when asked.
    pub loadavg: String,
    /// The JVM.
    pub java: String,
    /// Debian's zookeeper package version.
    pub zookeeper: String,
}

impl Machine {
    /// Reads it from `/proc` and the JVM.
    pub fn detect() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| "?".into())
        };
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu: field(&cpuinfo, "model name"),
            mem_total: field(&read("/proc/meminfo"), "MemTotal"),
            loadavg: loadavg(),
            java: java_version(),
            zookeeper: zookeeper_version(),
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Today's date and the time, UTC: ("2025-01-31", "2025-01-31 14:05 UTC").
pub fn date_utc() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    let date = format!("{y:04}-{m:02}-{d:02}");
    let time = format!("{date} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60);
    (date, time)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn ratio(fk: f64, java: f64) -> String {
    if java > 0.0 && fk.is_finite() && java.is_finite() {
        format!("{:.2}×", fk / java)
    } else {
        "–".into()
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    })
}

fn pct(h: &Histogram<u64>, q: f64) -> String {
    if h.is_empty() {
        "–".into()
    } else {
        fmt_latency(h.value_at_quantile(q))
    }
}

fn cpu_us(stats: &RunStats) -> f64 {
    stats
        .server_cpu_ns
        .map_or(f64::NAN, |c| per_op_us(c, stats.ops))
}

fn fmt_us(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "–".into()
    }
}

/// Chart files of a report, relative to the report.
struct Charts {
    throughput: String,
    cpu: String,
    sweep: Option<String>,
    latency: Option<String>,
    restart: Option<crate::restart_report::RestartCharts>,
}

/// Writes `<date>-<profile>.md`, `latest.md` and the SVG charts into `dir`. Returns the
/// dated report's path.
pub fn write(result: &CompareResult, machine: &Machine, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let (date, _) = date_utc();
    let stem = format!("{date}-{}", result.plan.profile.name());
    let charts = Charts {
        throughput: format!("{stem}-throughput.svg"),
        cpu: format!("{stem}-cpu.svg"),
        sweep: (!result.sweep.is_empty()).then(|| format!("{stem}-outstanding.svg")),
        latency: result
            .fixed_rate
            .first()
            .map(|_| format!("{stem}-latency.svg")),
        restart: match &result.restart {
            Some(r) => Some(crate::restart_report::write_charts(r, dir, &stem)?),
            None => None,
        },
    };
    std::fs::write(
        dir.join(&charts.throughput),
        workload_chart(
            result,
            "Throughput per workload (closed loop)",
            "ops/s (log)",
            RunStats::ops_per_sec,
        )?,
    )?;
    std::fs::write(
        dir.join(&charts.cpu),
        workload_chart(
            result,
            "Server CPU time per op",
            "µs of CPU per op (log)",
            cpu_us,
        )?,
    )?;
    if let Some(f) = &charts.sweep {
        std::fs::write(dir.join(f), sweep_chart(result)?)?;
    }
    if let (Some(f), Some(fr)) = (&charts.latency, result.fixed_rate.first()) {
        std::fs::write(dir.join(f), latency_chart(fr.workload, fr.rate, &fr.stats)?)?;
    }
    let md = render(result, machine, &charts);
    let path = dir.join(format!("{stem}.md"));
    std::fs::write(&path, &md)?;
    std::fs::write(dir.join("latest.md"), &md)?;
    Ok(path)
}

/// One server's series in a chart, in its colour.
fn side_series(kind: ServerKind, values: Vec<Option<f64>>) -> Series {
    Series {
        name: kind.name().into(),
        color: server_color(kind),
        values,
    }
}

/// A bar per workload and server of `value` (left out where it is not positive), on a
/// log scale.
fn workload_chart(
    result: &CompareResult,
    title: &str,
    y_label: &str,
    value: impl Fn(&RunStats) -> f64,
) -> io::Result<String> {
    let side = |kind: ServerKind| {
        let values = result
            .workloads
            .iter()
            .map(|w| Some(value(&w.sides.get(kind).stats)).filter(|v| v.is_finite() && *v > 0.0))
            .collect();
        side_series(kind, values)
    };
    bar_chart(&Chart {
        title: title.into(),
        y_label: y_label.into(),
        x_label: "workload".into(),
        categories: result
            .workloads
            .iter()
            .map(|w| w.workload.name().into())
            .collect(),
        series: vec![side(ServerKind::Java), side(ServerKind::Ferrokeeper)],
        log_y: true,
    })
}

fn sweep_chart(result: &CompareResult) -> io::Result<String> {
    let side = |kind: ServerKind| {
        let values = result
            .sweep
            .iter()
            .map(|p| Some(p.stats.get(kind).ops_per_sec()))
            .collect();
        side_series(kind, values)
    };
    line_chart(&Chart {
        title: "read: throughput against requests in flight".into(),
        y_label: "ops/s".into(),
        x_label: "requests in flight (sessions × outstanding per session)".into(),
        categories: result
            .sweep
            .iter()
            .map(|p| format!("{}×{}", p.sessions, p.outstanding))
            .collect(),
        series: vec![side(ServerKind::Java), side(ServerKind::Ferrokeeper)],
        log_y: false,
    })
}

/// The quantiles of the latency chart and their labels.
const CHART_QUANTILES: [(f64, &str); 6] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (1.0, "max"),
];

fn latency_chart(workload: Workload, rate: f64, stats: &Pair<RunStats>) -> io::Result<String> {
    let side = |kind: ServerKind| {
        let h = &stats.get(kind).latency;
        let values = CHART_QUANTILES
            .iter()
            .map(|(q, _)| (!h.is_empty()).then(|| h.value_at_quantile(*q) as f64 / 1e3))
            .collect();
        side_series(kind, values)
    };
    line_chart(&Chart {
        title: format!(
            "{} at a fixed {rate:.0} ops/s: latency percentiles",
            workload.name()
        ),
        y_label: "latency, µs (log)".into(),
        x_label: "percentile (latency from the intended send time)".into(),
        categories: CHART_QUANTILES.iter().map(|(_, l)| l.to_string()).collect(),
        series: vec![side(ServerKind::Java), side(ServerKind::Ferrokeeper)],
        log_y: true,
    })
}

fn memory_per_znode(before: Option<u64>, after: Option<u64>, nodes: u64) -> String {
    match (before, after) {
        (Some(b), Some(a)) if nodes > 0 => {
            format!("{:.0} B", (a as f64 - b as f64) / nodes as f64)
        }
        _ => "?".into(),
    }
}

/// "files: apparent / allocated".
fn usage_cell(u: &Usage) -> String {
    format!(
        "{}: {} / {}",
        u.files,
        mib(Some(u.bytes)),
        mib(Some(u.allocated))
    )
}

/// The Memory table's rows about each server's data directory after `load`.
fn data_dir_rows(md: &mut String, java: &Memory, fk: &Memory) {
    let (Some(j), Some(f)) = (&java.data_dir, &fk.data_dir) else {
        return;
    };
    let (j, f) = (&j.usage, &f.usage);
    let _ = writeln!(
        md,
        "| dataDir after `load`: snapshots (files: apparent / allocated) | {} | {} |",
        usage_cell(&j.snapshots),
        usage_cell(&f.snapshots)
    );
    let _ = writeln!(
        md,
        "| dataDir after `load`: transaction logs (files: apparent / allocated) | {} | {} |",
        usage_cell(&j.logs),
        usage_cell(&f.logs)
    );
    let _ = writeln!(
        md,
        "| transaction log data written (records, since start) | {} | {} |",
        mib(java.log_written_bytes),
        mib(fk.log_written_bytes)
    );
    let _ = writeln!(
        md,
        "| dataDir after `load`: other (files: apparent / allocated) | {} | {} |",
        usage_cell(&j.other),
        usage_cell(&f.other)
    );
    let (jt, ft) = (j.total(), f.total());
    let _ = writeln!(
        md,
        "| **dataDir after `load`, allocated** (apparent) | **{}** ({}) | **{}** ({}) |",
        mib(Some(jt.allocated)),
        mib(Some(jt.bytes)),
        mib(Some(ft.allocated)),
        mib(Some(ft.bytes))
    );
    let _ = writeln!(
        md,
        "| **dataDir allocated, ferrokeeper / ZooKeeper** (apparent) | | **{}** ({}) |",
        ratio(ft.allocated as f64, jt.allocated as f64),
        ratio(ft.bytes as f64, jt.bytes as f64)
    );
}

/// Below the Memory table: each snapshot's size and how the data directories were read.
fn data_dir_notes(md: &mut String, java: &Memory, fk: &Memory) {
    let (Some(j), Some(f)) = (&java.data_dir, &fk.data_dir) else {
        return;
    };
    let sizes = |s: &Settled| {
        s.usage
            .snapshot_bytes
            .iter()
            .map(|b| format!("{:.0}", *b as f64 / (1 << 20) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let waited = |s: &Settled| {
        format!(
            "{:.1} s{}",
            s.waited.as_secs_f64(),
            if s.settled { "" } else { ", still changing" }
        )
    };
    let _ = writeln!(
        md,
        "\nSnapshots in the dataDir after `load`, oldest first, MiB: ZooKeeper {}; ferrokeeper {}.",
        sizes(j),
        sizes(f)
    );
    let _ = writeln!(
        md,
        "\nThe dataDir (everything the server keeps: the preload's data too) is walked after the settled RSS reading, every {} ms, until nothing in it has changed for {} s, so a snapshot being written is counted whole (last change seen after: ZooKeeper {}, ferrokeeper {}). Apparent is `st_size`, allocated is `st_blocks` × 512 (what `du` shows). Both servers preallocate log files `preAllocSize` (64 MiB by default) at a time: ZooKeeper by writing a byte at the end (a sparse file), ferrokeeper with `fallocate` and zeros (its next segment, `fk-log-spare`, included). \"Log data written\" is the records themselves: ferrokeeper's `zk_fk_log_bytes`, ZooKeeper's `log.*` files parsed up to their last whole record.",
        crate::datadir::POLL.as_millis(),
        crate::datadir::QUIET.as_secs(),
        waited(j),
        waited(f)
    );
}

/// The report's markdown.
fn render(result: &CompareResult, machine: &Machine, charts: &Charts) -> String {
    let plan = &result.plan;
    let shape = &plan.shape;
    let (_, when) = date_utc();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# ferrokeeper vs Apache ZooKeeper — `{}` profile, {when}\n",
        plan.profile.name()
    );
    let _ = writeln!(md, "Command: `{}`\n", result.options.command_line);
    if result.errors.is_empty() {
        let _ = writeln!(
            md,
            "All workloads completed without errors ({:.0} s in all).\n",
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
    md.push_str("## Summary\n\n");
    md.push_str("Closed loop, all rounds merged. Ratios are ferrokeeper / ZooKeeper: above 1× means ferrokeeper does more ops/s; below 1× in the CPU column means ferrokeeper spends less CPU per op.\n\n");
    md.push_str("| workload | op | ZooKeeper ops/s | ferrokeeper ops/s | ratio | p99 ZooKeeper | p99 ferrokeeper | CPU µs/op ZooKeeper | CPU µs/op ferrokeeper | CPU ratio |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for w in &result.workloads {
        let (j, f) = (&w.sides.java.stats, &w.sides.fk.stats);
        let (jc, fc) = (cpu_us(j), cpu_us(f));
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |",
            w.workload.name(),
            w.workload.op_unit(),
            j.ops_per_sec(),
            f.ops_per_sec(),
            ratio(f.ops_per_sec(), j.ops_per_sec()),
            pct(&j.latency, 0.99),
            pct(&f.latency, 0.99),
            fmt_us(jc),
            fmt_us(fc),
            ratio(fc, jc),
        );
    }
    let _ = writeln!(
        md,
        "\n![throughput]({})\n\n![cpu per op]({})\n",
        charts.throughput, charts.cpu
    );

    md.push_str("## Latency and resources per workload\n\n");
    md.push_str("`watch-fanout` latency is from the setData's send to the last watcher's notification; `sessions` latency is one whole session life (connect, handshake, closeSession answered); `load` latency is per create.\n\n");
    md.push_str("| workload | server | ops | p50 | p99 | p99.9 | max | longest gap | client CPU µs/op | RSS after |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for w in &result.workloads {
        for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
            let side: &Side = w.sides.get(kind);
            let s = &side.stats;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.workload.name(),
                kind.name(),
                s.ops,
                pct(&s.latency, 0.5),
                pct(&s.latency, 0.99),
                pct(&s.latency, 0.999),
                if s.latency.is_empty() {
                    "–".into()
                } else {
                    fmt_latency(s.latency.max())
                },
                fmt_latency(s.max_gap_ns),
                fmt_us(per_op_us(s.client_cpu_ns, s.ops)),
                mib(side.rss_bytes),
            );
        }
    }
    md.push_str("\n\"Longest gap\" is the longest time one client worker went without any completion inside the measured window: a stall shows there even when percentiles hide it.\n\n");

    if !result.sweep.is_empty() {
        md.push_str("## Throughput against requests in flight (`read`)\n\n");
        md.push_str("| sessions × outstanding | in flight | ZooKeeper ops/s | ferrokeeper ops/s | ratio | p99 ZooKeeper | p99 ferrokeeper |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for p in &result.sweep {
            let (j, f) = (&p.stats.java, &p.stats.fk);
            let _ = writeln!(
                md,
                "| {}×{} | {} | {:.0} | {:.0} | {} | {} | {} |",
                p.sessions,
                p.outstanding,
                p.sessions * p.outstanding,
                j.ops_per_sec(),
                f.ops_per_sec(),
                ratio(f.ops_per_sec(), j.ops_per_sec()),
                pct(&j.latency, 0.99),
                pct(&f.latency, 0.99)
            );
        }
        if let Some(c) = &charts.sweep {
            let _ = writeln!(md, "\n![throughput against outstanding]({c})\n");
        }
    }

    for (i, fr) in result.fixed_rate.iter().enumerate() {
        let _ = writeln!(
            md,
            "## Latency at a fixed rate (`{}`, {:.0} ops/s)\n",
            fr.workload.name(),
            fr.rate
        );
        let _ = writeln!(md, "The rate is {}. Latency is measured from each request's *intended* send time, so a stall is charged in full to every request it delayed (coordinated omission corrected).\n", fr.how);
        md.push_str("| server | achieved ops/s | p50 | p90 | p99 | p99.9 | p99.99 | max | CPU µs/op | client send lag p99 / max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
            let s = fr.stats.get(kind);
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                kind.name(),
                s.ops_per_sec(),
                pct(&s.latency, 0.5),
                pct(&s.latency, 0.9),
                pct(&s.latency, 0.99),
                pct(&s.latency, 0.999),
                pct(&s.latency, 0.9999),
                if s.latency.is_empty() {
                    "–".into()
                } else {
                    fmt_latency(s.latency.max())
                },
                fmt_us(cpu_us(s)),
                pct(&s.send_lag, 0.99),
                if s.send_lag.is_empty() {
                    "–".into()
                } else {
                    fmt_latency(s.send_lag.max())
                }
            );
        }
        md.push_str("\n\"Client send lag\" is how late the load generator sent each request after its intended time (window full, or the client thread not scheduled). A latency tail no longer than the send-lag tail was made by the client or the machine, not by the server.\n");
        if let (0, Some(c)) = (i, &charts.latency) {
            let _ = writeln!(md, "\n![latency percentiles]({c})\n");
        } else {
            md.push('\n');
        }
    }

    if let Some(d) = &result.durability {
        md.push_str(&crate::durability::render(d));
    }

    md.push_str("## Memory\n\n");
    md.push_str("| | ZooKeeper | ferrokeeper |\n|---|---:|---:|\n");
    let _ = writeln!(
        md,
        "| RSS after start | {} | {} |",
        mib(result.idle_rss.java),
        mib(result.idle_rss.fk)
    );
    let _ = writeln!(
        md,
        "| RSS after preload ({} nodes of {} B + {} children) | {} | {} |",
        plan.dataset.nodes,
        plan.dataset.data_bytes,
        plan.dataset.children,
        mib(result.preloaded_rss.java),
        mib(result.preloaded_rss.fk)
    );
    if let Some(mem) = &result.memory {
        let n = shape.load_nodes;
        let _ = writeln!(
            md,
            "| RSS before `load` (settled) | {} | {} |",
            mib(mem.java.rss_before),
            mib(mem.fk.rss_before)
        );
        let _ = writeln!(
            md,
            "| RSS right after `load` (+{n} nodes of {} B) | {} | {} |",
            plan.dataset.data_bytes,
            mib(mem.java.rss_peak),
            mib(mem.fk.rss_peak)
        );
        let _ = writeln!(
            md,
            "| RSS after `load` (settled) | {} | {} |",
            mib(mem.java.rss_after),
            mib(mem.fk.rss_after)
        );
        let _ = writeln!(
            md,
            "| **RSS per znode** (settled delta / {n}) | {} | {} |",
            memory_per_znode(mem.java.rss_before, mem.java.rss_after, n),
            memory_per_znode(mem.fk.rss_before, mem.fk.rss_after, n)
        );
        if let Some((b, a)) = mem.java.live_heap {
            let _ = writeln!(
                md,
                "| Java live heap per znode (after full GC, `jcmd`) | {} | – |",
                memory_per_znode(Some(b), Some(a), n)
            );
            if let (Some(fb), Some(fa)) = (mem.fk.rss_before, mem.fk.rss_after) {
                let fk = (fa as f64 - fb as f64) / n as f64;
                let java = (a as f64 - b as f64) / n as f64;
                let _ = writeln!(
                    md,
                    "| ferrokeeper RSS per znode / Java live heap per znode | {} | |",
                    ratio(fk, java)
                );
            }
        }
        data_dir_rows(&mut md, &mem.java, &mem.fk);
        md.push_str("\n\"Settled\" is Java after a full GC (`jcmd <pid> GC.run`) and ferrokeeper after a 1 s pause. Java's RSS still depends on its heap sizing (`-Xmx`, G1's growth and shrinking) more than on live data; the live-heap row is the fairer measure of what ZooKeeper keeps per znode.\n");
        data_dir_notes(&mut md, &mem.java, &mem.fk);
    }
    md.push('\n');

    if let Some(r) = &result.restart {
        md.push_str(&crate::restart_report::section(
            r,
            &result.idle_rss,
            charts.restart.as_ref(),
        ));
        md.push('\n');
    }

    md.push_str("## Settings\n\n");
    let _ = writeln!(
        md,
        "- Data: {} data nodes of {} B under `/bench/data`, {} children under `/bench/children`, preloaded identically into both servers.",
        plan.dataset.nodes, plan.dataset.data_bytes, plan.dataset.children
    );
    let _ = writeln!(
        md,
        "- Load: {} sessions × {} outstanding requests, {} client thread(s), warm-up {:.1} s then {:.1} s measured, {} round(s) per server, alternating (ZooKeeper first in even rounds, ferrokeeper first in odd ones).",
        shape.sessions,
        shape.outstanding,
        shape.threads,
        shape.warmup_ns as f64 / 1e9,
        shape.measure_ns as f64 / 1e9,
        plan.rounds
    );
    let _ = writeln!(
        md,
        "- `watch-fanout`: {} watchers; `sessions`: {} session lives at once; `load`: {} creates{}; `multi`: 5 setData each; `mixed`: 90 % getData / 10 % setData.",
        shape.fanout_watchers,
        shape.session_concurrency,
        shape.load_nodes,
        if shape.load_random_data {
            ", each with random data of its own (`--load-random-data`)"
        } else {
            ""
        }
    );
    if result
        .workloads
        .iter()
        .any(|w| w.workload == Workload::ChildrenWide)
    {
        let (wide_sessions, wide_outstanding) =
            crate::wide::in_flight(shape.sessions, shape.outstanding);
        let _ = writeln!(
            md,
            "- `children-wide`: getChildren of `{}` with {} children (names `n<i>`, a reply of about {} KB), {} sessions × {} outstanding (each reply is large).",
            crate::wide::WIDE_PARENT,
            plan.wide_children,
            crate::wide::reply_bytes(plan.wide_children) / 1000,
            wide_sessions,
            wide_outstanding
        );
    }
    let _ = writeln!(
        md,
        "- Session timeout asked: {} ms; both servers tickTime 2000 ms.",
        shape.session_timeout_ms
    );
    md.push_str("- Server CPU is `utime + stime` of the server process from `/proc/<pid>/stat` over the measured window (10 ms ticks); RSS is `VmRSS` from `/proc/<pid>/status`.\n");
    md.push_str("- The client is `ferrokeeper-bench` itself (raw TCP, pre-encoded requests, epoll); its own CPU per op is in the per-workload table.\n\n");
    for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
        let (cfg, cmd) = result.configs.get(kind);
        let _ = writeln!(md, "{}: `{cmd}`\n\n```properties\n{cfg}```\n", kind.name());
    }

    md.push_str("## Machine\n\n");
    let _ = writeln!(md, "- nproc: {}", machine.nproc);
    let _ = writeln!(md, "- kernel: {}", machine.kernel);
    let _ = writeln!(md, "- CPU: {}", machine.cpu);
    let _ = writeln!(md, "- memory: {}", machine.mem_total);
    let _ = writeln!(
        md,
        "- load average at start / end: {} / {}",
        machine.loadavg,
        loadavg()
    );
    let _ = writeln!(md, "- Java: {}", machine.java);
    let _ = writeln!(
        md,
        "- Apache ZooKeeper: Debian package {}",
        machine.zookeeper
    );
    md.push('\n');

    md.push_str("## Caveats\n\n");
    if result.durability.is_some() {
        md.push_str("- **No fsync on either side, except in the durability section.** Every other workload runs with `forceSync=no` on both servers, so its write numbers compare request processing, not disks; the durability section runs a second pair with `forceSync=yes`.\n");
    } else {
        md.push_str("- **No fsync on either side.** Both servers write their transaction logs with `forceSync=no`, so write numbers compare request processing, not disks; the `durability` workload compares them with `forceSync=yes`.\n");
    }
    let _ = writeln!(md, "- **Shared, noisy machine.** {} cores shared by both servers, the load generator and other engineers' work. Each workload alternates between the servers in the same run so drift falls on both; CPU µs per op is the steadier number, ops/s the noisier one.", machine.nproc);
    md.push_str("- Both servers are idle-but-running while the other is measured; the client runs on the same cores and its CPU is reported.\n");
    md.push_str("- Single server (standalone) on both sides; no quorum.\n");
    if plan.profile != Profile::Full {
        let _ = writeln!(
            md,
            "- The `{}` profile uses short windows: treat differences under ~20 % as noise.",
            plan.profile.name()
        );
    }
    md.push('\n');

    if !result.errors.is_empty() {
        md.push_str("## Errors\n\n");
        for e in &result.errors {
            let _ = writeln!(md, "- {}", e.replace('\n', "\n  "));
        }
        md.push('\n');
    }
    let _ = Workload::ALL;
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn latency_units() {
        assert_eq!(fmt_latency(1_500), "2 µs");
        assert_eq!(fmt_latency(2_500_000), "2.50 ms");
        assert_eq!(fmt_latency(3_000_000_000), "3.00 s");
    }
}
