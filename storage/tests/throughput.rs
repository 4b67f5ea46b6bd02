//! Measures (prints, never asserts) append throughput on the real disk: appends/s and
//! fdatasyncs per append for batches of 1, 16 and 256 records of 100 bytes, with default
//! options (64 MiB fallocated segments, force_sync, io_uring), plus two variations at
//! batches 1 and 256: zero-filled segments, and the pwrite path.
//!
//! The log lives under `target/tmp` (the repo's filesystem, like a data directory), not in
//! `/tmp`, which may be tmpfs. Run with output:
//! `cargo test --release -p ferrokeeper-storage --test throughput -- --nocapture`
//! (`FK_BENCH_SECS=<s>` per configuration, default 0.25 to keep the test suite quick;
//! `FK_BENCH_ROUNDS=<n>` rounds of the interleaved variations, default 1).

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
    let mut latencies: Vec<Duration> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        next_batch(&mut zxid, &mut batch);
        let t = Instant::now();
        w.append(&batch).expect("append");
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = w.stats();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_micros()
    };
    let appends = after.appends - before.appends;
    eprintln!(
        "{label:<34} batch {batch_records:>3}: {:>7.0} appends/s {:>9.0} records/s  {:.2} fdatasyncs/append  p50 {:>5} us  p99 {:>6} us  (first append incl. segment creation {:>4} ms)",
        appends as f64 / elapsed,
        (after.records - before.records) as f64 / elapsed,
        (after.fdatasyncs - before.fdatasyncs) as f64 / appends as f64,
        pct(0.50),
        pct(0.99),
        first.as_millis(),
    );
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
    for batch in [1, 16, 256] {
        run("default (io_uring, fallocated)", batch, defaults);
    }
    // The disk is shared and noisy: interleave the variations so they see the same load.
    let zero_filled = LogOptions {
        segment_zero_fill: true,
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
    for _ in 0..rounds {
        for batch in [1, 256] {
            run("default (io_uring, fallocated)", batch, defaults);
            run("segments zero-filled", batch, zero_filled);
            run("pwrite + fdatasync fallback", batch, pwrite);
        }
    }
}
