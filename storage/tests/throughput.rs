//! Measures (prints, never asserts) append latency and throughput on the real disk, for
//! batches of 1, 16 and 256 records of 100 bytes (force_sync, io_uring):
//!
//! - with 64 MiB segments (ZooKeeper's default `preAllocSize`) and with 1 MiB segments, so
//!   that segments roll often (every ~33 appends of 256 records, every ~8,400 of one);
//! - with and without zero-filled segments (`segment_zero_fill`);
//! - and, once per round, the pwrite + fdatasync fallback.
//!
//! Each line gives appends/s, records/s, fdatasyncs per append, p50 / p99 / p99.9 / max of
//! every append, then the appends that rolled to a new segment (count, and the worst one),
//! and how often a roll had to wait for the next segment's preparation.
//!
//! The log lives under `target/tmp` (the repo's filesystem, like a data directory), not in
//! a tmpfs. Run with output:
//! `cargo test --release -p ferrokeeper-storage --test throughput -- --nocapture`
//! (`FK_BENCH_SECS=<s>` per configuration, default 0.25 to keep the test suite quick;
//! `FK_BENCH_ROUNDS=<n>` rounds of the interleaved variations, default 1;
//! `FK_BENCH_ONLY=<label>/<batch>`, e.g. `"1 MiB segments, zero-filled/256"`, only that one).

use std::time::{Duration, Instant};

use ferrokeeper_storage::log::{IoMode, LogOptions, LogWriter, Record};

fn secs() -> f64 {
    std::env::var("FK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.25)
}

fn filesystem(path: &std::path::Path) -> String {
    std::process::Command::new("df")
        .args(["--output=source,fstype"])
        .arg(path)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .unwrap_or("?")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

fn run(label: &str, batch_records: usize, opts: LogOptions) {
    // `FK_BENCH_ONLY=<label>/<batch>` runs that one configuration, so that
    // a script can alternate two builds configuration by configuration.
    if let Ok(only) = std::env::var("FK_BENCH_ONLY") {
        if format!("{label}/{batch_records}") != only {
            return;
        }
    }
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tmp = tempfile::tempdir_in(base).expect("tempdir under target/tmp");
    let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
    const PAYLOAD: [u8; 100] = [0x5A; 100];
    let mut zxid = 1i64;
    let mut batch: Vec<Record<'static>> = Vec::with_capacity(batch_records);
    let next_batch = |zxid: &mut i64, batch: &mut Vec<Record<'static>>| {
        batch.clear();
        for _ in 0..batch_records {
            batch.push(Record {
                zxid: *zxid,
                bytes: &PAYLOAD,
            });
            *zxid += 1;
        }
    };
    // Warm up: the first append creates the first segment.
    let created = Instant::now();
    next_batch(&mut zxid, &mut batch);
    w.append(&batch).expect("append");
    let first = created.elapsed();
    let before = w.stats();
    let budget = Duration::from_secs_f64(secs());
    let mut latencies: Vec<Duration> = Vec::with_capacity(1 << 16);
    let mut rolls: Vec<Duration> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        next_batch(&mut zxid, &mut batch);
        let segments = w.stats().segments_created;
        let t = Instant::now();
        w.append(&batch).expect("append");
        let took = t.elapsed();
        latencies.push(took);
        if w.stats().segments_created != segments {
            rolls.push(took);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = w.stats();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_micros()
    };
    let appends = after.appends - before.appends;
    let worst_roll = rolls.iter().max().map_or(0, |d| d.as_micros());
    eprintln!(
        "{label:<30} batch {batch_records:>3}: {:>6.0} appends/s {:>8.0} records/s {:.2} fdatasyncs/append  \
         p50 {:>5} us  p99 {:>6} us  p99.9 {:>6} us  max {:>7} us | rolls {:>3}, worst {:>7} us, waited {:>3} | first append {:>4} ms",
        appends as f64 / elapsed,
        (after.records - before.records) as f64 / elapsed,
        (after.fdatasyncs - before.fdatasyncs) as f64 / appends as f64,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        latencies.last().map_or(0, |d| d.as_micros()),
        rolls.len(),
        worst_roll,
        roll_waits(&after) - roll_waits(&before),
        first.as_millis(),
    );
}

/// Rolls that found the next segment not yet prepared (0 where the writer prepares none).
fn roll_waits(_stats: &ferrokeeper_storage::log::LogStats) -> u64 {
    0
}

#[test]
fn append_throughput_on_the_real_disk() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let defaults = LogOptions::default();
    eprintln!(
        "log directory filesystem: {} ({})",
        filesystem(base),
        base.display()
    );
    let small = |zero_fill: bool| LogOptions {
        segment_bytes: 1 << 20,
        // As the server sizes it: a batch never takes more than half a segment.
        batch_bytes_max: 1 << 19,
        record_bytes_max: (1 << 19) - 24,
        segment_zero_fill: zero_fill,
        ..defaults
    };
    let large = |zero_fill: bool| LogOptions {
        segment_zero_fill: zero_fill,
        ..defaults
    };
    let pwrite = LogOptions {
        io: IoMode::Pwrite,
        ..defaults
    };
    let rounds: u32 = std::env::var("FK_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    eprintln!(
        "defaults: segment_zero_fill = {}",
        defaults.segment_zero_fill
    );
    // The disk is shared and noisy: interleave the variations so they see the same load.
    for _ in 0..rounds {
        for batch in [1, 16, 256] {
            run("64 MiB segments, fallocated", batch, large(false));
            run("64 MiB segments, zero-filled", batch, large(true));
            run("1 MiB segments, fallocated", batch, small(false));
            run("1 MiB segments, zero-filled", batch, small(true));
        }
        for batch in [1, 256] {
            run("pwrite + fdatasync (defaults)", batch, pwrite);
        }
    }
}
