//! The report's `restart` section and its two charts: restart time against the znode
//! count, and memory per znode against the znode count.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::restart::{Memory, RestartPoint, RestartResult};
use crate::server::{Pair, ServerKind};
use plotters::style::RGBColor;

use crate::svg::{line_chart, server_color, short_number, Chart, Series};

/// The colour of ZooKeeper's live-heap series (a lighter shade of its own).
const JAVA_HEAP_COLOR: RGBColor = RGBColor(0xf0, 0xb2, 0x7a);

/// Chart files of the section, relative to the report.
#[derive(Debug, Clone)]
pub struct RestartCharts {
    /// Restart time against znodes.
    pub time: String,
    /// Memory per znode against znodes.
    pub memory: String,
}

/// Writes the charts into `dir`, named after the report's `stem`.
pub fn write_charts(restart: &RestartResult, dir: &Path, stem: &str) -> io::Result<RestartCharts> {
    let charts = RestartCharts {
        time: format!("{stem}-restart.svg"),
        memory: format!("{stem}-restart-memory.svg"),
    };
    std::fs::write(dir.join(&charts.time), time_chart(restart)?)?;
    std::fs::write(dir.join(&charts.memory), memory_chart(restart)?)?;
    Ok(charts)
}

fn categories(restart: &RestartResult) -> Vec<String> {
    restart
        .points
        .iter()
        .map(|p| short_number(p.znodes as f64))
        .collect()
}

fn time_chart(restart: &RestartResult) -> io::Result<String> {
    let side = |kind: ServerKind| Series {
        name: kind.name().into(),
        color: server_color(kind),
        values: restart
            .points
            .iter()
            .map(|p| p.restart_ns(kind).map(|(median, _)| median as f64 / 1e6))
            .collect(),
    };
    line_chart(&Chart {
        title: "Restart: spawn to first getData answered (median)".into(),
        y_label: "ms (log)".into(),
        x_label: "znodes on disk".into(),
        categories: categories(restart),
        series: vec![side(ServerKind::Java), side(ServerKind::Ferrokeeper)],
        log_y: true,
    })
}

fn memory_chart(restart: &RestartResult) -> io::Result<String> {
    let side = |kind: ServerKind| Series {
        name: format!("{} RSS", kind.name()),
        color: server_color(kind),
        values: restart
            .points
            .iter()
            .map(|p| p.after_pass.get(kind).map(|m| per_znode(m.rss, p.znodes)))
            .collect(),
    };
    let mut series = vec![side(ServerKind::Java), side(ServerKind::Ferrokeeper)];
    if restart.points.iter().any(|p| p.java_live_heap.is_some()) {
        series.push(Series {
            name: "ZooKeeper live heap".into(),
            color: JAVA_HEAP_COLOR,
            values: restart
                .points
                .iter()
                .map(|p| p.java_live_heap.map(|h| per_znode(h, p.znodes)))
                .collect(),
        });
    }
    line_chart(&Chart {
        title: "Memory per znode after a getData pass over all (whole process)".into(),
        y_label: "bytes per znode".into(),
        x_label: "znodes on disk".into(),
        categories: categories(restart),
        series,
        log_y: false,
    })
}

fn per_znode(bytes: u64, znodes: u64) -> f64 {
    bytes as f64 / znodes.max(1) as f64
}

fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn mem(m: Option<Memory>) -> String {
    m.map_or("–".into(), |m| {
        format!("{} ({} / {})", mib(m.rss), mib(m.anon), mib(m.file))
    })
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or("–".into(), f)
}

fn logged(p: &RestartPoint, kind: ServerKind) -> String {
    let f = |v: f64| format!("{v:.0} ms");
    match kind {
        ServerKind::Java => format!(
            "load {}, snapshot {}",
            opt(p.logged_ms(kind, |r| r.logged_load_ms), f),
            opt(p.logged_ms(kind, |r| r.logged_snapshot_ms), f)
        ),
        ServerKind::Ferrokeeper => format!(
            "recovered in {}",
            opt(p.logged_ms(kind, |r| r.logged_load_ms), f)
        ),
    }
}

/// The section's markdown. `idle_rss` is each main server's RSS right after its start,
/// the baseline the per-znode delta is taken over.
pub fn section(
    restart: &RestartResult,
    idle_rss: &Pair<Option<u64>>,
    charts: Option<&RestartCharts>,
) -> String {
    let plan = &restart.plan;
    let mut md = String::new();
    md.push_str("## Restart (`restart`)\n\n");
    let _ = writeln!(
        md,
        "Time from spawning the server process until a getData of a known znode (the last data znode written, `/bench/restart/p<k>/n<N-1>`) returns its data, with N data znodes of {} B on disk under {} parents, plus {} sessions with {} ephemerals each. ZooKeeper starts from an Apache ZooKeeper 3.8 `version-2/snapshot.<zxid>` written by the bench (`zk_snapshot.rs`); ferrokeeper from the same data imported with `ferrokeeper import` (timed apart, below). Each run starts from a fresh copy of the server's data directory, fsynced and then read once: **the page cache is warm for both servers**. A new probe connection starts every millisecond (every 0.5 % of the time waited so far once that is longer, at most 20 ms), up to 128 at once, so a connection the server accepts but leaves unanswered does not hold the clock. Servers alternate (ABBA), {} run(s) per server per N. Ratio is ferrokeeper / ZooKeeper: below 1× means ferrokeeper is back sooner.\n",
        restart.data_bytes,
        plan.parents,
        plan.sessions,
        plan.ephemerals_per_session,
        plan.runs
    );
    md.push_str("| znodes | ZooKeeper (median) | ferrokeeper (median) | ratio | ZooKeeper max | ferrokeeper max |\n|---:|---:|---:|---:|---:|---:|\n");
    for p in &restart.points {
        let (j, f) = (
            p.restart_ns(ServerKind::Java),
            p.restart_ns(ServerKind::Ferrokeeper),
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            p.znodes,
            opt(j, |t| ms(t.0)),
            opt(f, |t| ms(t.0)),
            match (j, f) {
                (Some(j), Some(f)) if j.0 > 0 => format!("{:.3}×", f.0 as f64 / j.0 as f64),
                _ => "–".into(),
            },
            opt(j, |t| ms(t.1)),
            opt(f, |t| ms(t.1)),
        );
    }
    if let Some(c) = charts {
        let _ = writeln!(md, "\n![restart time]({})\n", c.time);
    } else {
        md.push('\n');
    }

    md.push_str("### Per server\n\n");
    md.push_str("Memory is `VmRSS (RssAnon / RssFile)` from `/proc/<pid>/status`, on each server's first run of each N: right after the first read, and after one pipelined getData of every data znode (8 sessions × 32 outstanding), so both hold all their data resident. Per znode is over the N data znodes; the delta column subtracts the main server's RSS right after its start. CPU is the server's user + system time from spawn to the first read, all threads.\n\n");
    md.push_str("| znodes | server | median | max | CPU to first read | its own log says | RSS after first read | RSS after full pass | RSS / znode (delta) | full pass getData/s | snapshot on disk | on disk / znode |\n|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for p in &restart.points {
        for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
            let runs = p.runs.get(kind);
            let first = runs.first();
            let t = p.restart_ns(kind);
            let pass = p.pass.get(kind);
            let after = *p.after_pass.get(kind);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.znodes,
                kind.name(),
                opt(t, |t| ms(t.0)),
                opt(t, |t| ms(t.1)),
                opt(first.and_then(|r| r.cpu_ns), ms),
                logged(p, kind),
                mem(first.and_then(|r| r.after_first_read)),
                mem(after),
                opt(after, |m| format!(
                    "{:.0} B ({})",
                    per_znode(m.rss, p.znodes),
                    opt(*idle_rss.get(kind), |idle| format!(
                        "{:.0} B",
                        (m.rss as f64 - idle as f64) / p.znodes.max(1) as f64
                    ))
                )),
                if pass.ops > 0 {
                    format!("{:.0}", pass.ops_per_sec())
                } else {
                    "–".into()
                },
                opt(*p.snapshot_bytes.get(kind), mib),
                opt(*p.snapshot_bytes.get(kind), |b| format!(
                    "{:.0} B",
                    per_znode(b, p.znodes)
                )),
            );
        }
    }
    if let Some(c) = charts {
        let _ = writeln!(md, "\n![memory per znode]({})\n", c.memory);
    } else {
        md.push('\n');
    }

    md.push_str("### Data and import\n\n");
    md.push_str("| znodes | all znodes | ZooKeeper snapshot written by the bench | written in | `ferrokeeper import` | import peak RSS | ZooKeeper `-Xmx` | ZooKeeper live heap after the pass (per znode) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &restart.points {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.znodes,
            p.znodes_total,
            mib(p.generated_bytes),
            ms(p.generate_ns),
            opt(p.import.as_ref(), |i| ms(i.ns)),
            opt(p.import.as_ref(), |i| mib(i.peak_rss)),
            p.java_heap,
            opt(p.java_live_heap, |h| format!(
                "{} ({:.0} B)",
                mib(h),
                per_znode(h, p.znodes)
            )),
        );
    }
    md.push('\n');
    for p in &restart.points {
        if let Some(i) = &p.import {
            let _ = writeln!(md, "- import of {}: `{}`", p.znodes, i.summary);
        }
    }
    md.push_str("\nNotes:\n\n");
    md.push_str("- ZooKeeper writes a full snapshot of the loaded tree before it serves (`ZooKeeperServer.loadData` ends with `takeSnapshot()`), so that write is part of its restart time; \"its own log says\" splits its startup into the snapshot load and that write (`Snapshot loaded in`, `Snapshot taken in`). Its on-disk size is that rewritten snapshot's (with the 3.8 digest block).\n");
    md.push_str("- ferrokeeper's \"recovered in\" is the `elapsed` of its `recovered:` log line (snapshot load plus log replay); the rest of its restart time is process start, listening and the first request.\n");
    md.push_str("- The snapshot's sessions are restored by both servers with a 30 s timeout and expire during the pass (their ephemerals are deleted); the pass reads only the persistent data znodes.\n");
    md.push_str("- ZooKeeper 3.8 leaves connections that arrive in a window of about 40 ms, some 0.3 s after spawn (port bound, not yet serving), unanswered until its 10 s sessionless-connection timeout; a client with one connection at a time that lands there waits 10 s. The concurrent probes keep that out of the figures above.\n");
    md.push_str("- ZooKeeper's `-Xmx` is twice the live heap the tree needs by the estimate in `restart.rs` (400 B per znode plus its data), at least 1 GiB; the live-heap column shows what it really held.\n");
    md.push_str("- ZooKeeper's RSS follows its heap sizing (`-Xmx`, G1) more than its live data; its live heap (after `jcmd GC.run`) is the fairer per-znode figure.\n");
    md
}
