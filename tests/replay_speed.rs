//! Log replay speed at startup, by phase (issue #13: "log replay ≥ 2M txns/s"). Prints
//! figures; asserts only that replay rebuilds the state (never a time).
//!
//! ```sh
//! cargo test --release --test replay_speed -- --nocapture
//! FK_REPLAY_TXNS=2000000 cargo test --release --test replay_speed -- --nocapture
//! ```
//!
//! The log is written directly through the storage's writer with txns encoded by the
//! server's codec (no server, no client): 10,000 creates of 100-byte nodes, then setData
//! of 100 bytes to them round-robin, the shape of the benchmark's write workload. The
//! phases are timed one after the other: the writer's recovery scan (`LogWriter::open`:
//! every segment read and every frame verified), the reader's pass (read, verified again,
//! each payload handed out: what the offline tools use, no longer part of a restart),
//! decoding each txn, and applying it to the tree. A restart
//! (`commit::log::open_and_replay`, the server's own path) is one recovery scan that hands
//! each verified payload, borrowed from the segment's bytes, to decode and apply; "apply"
//! is what the total leaves after the scan and decode. Each phase prints its wall time and
//! the CPU time of the test's thread (user + system), the figure to trust on a shared
//! machine (the log's helper thread, which prepares the next spare meanwhile, is not in it).

use std::sync::Arc;
use std::time::Instant;

use ferrokeeper::core::codec;
use ferrokeeper::core::sequencer::open_acl_unsafe;
use ferrokeeper::core::state::DataState;
use ferrokeeper::core::txn::{Txn, TxnOp};
use ferrokeeper_storage::log::{self as txlog, LogOptions, LogWriter, Record};

const ZNODES: i64 = 10_000;
const DATA_BYTES: usize = 100;
const TXNS_DEFAULT: i64 = 500_000;
const BATCH_TXNS: usize = 64;

fn txn(zxid: i64) -> Txn {
    let node = (zxid - 1) % ZNODES;
    let path: Arc<str> = Arc::from(format!("/bench-{node:06}"));
    let data: Option<Arc<[u8]>> = Some(Arc::from(vec![zxid as u8; DATA_BYTES]));
    let op = if zxid <= ZNODES {
        TxnOp::Create {
            path,
            data,
            acl: open_acl_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: zxid as i32,
        }
    } else {
        TxnOp::SetData {
            path,
            data,
            version: ((zxid - 1) / ZNODES) as i32,
        }
    };
    Txn {
        zxid,
        time_ms: 1_700_000_000_000 + zxid,
        session_id: 0x100,
        cxid: zxid as i32,
        op,
    }
}

/// CPU time (user + system) the calling thread has used, in seconds.
fn thread_cpu_secs() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value, and getrusage only writes to it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid pointer to a `rusage` the call may write.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A phase's wall-clock and CPU clocks, started.
struct Clocks {
    wall: Instant,
    cpu: f64,
}

impl Clocks {
    fn start() -> Clocks {
        Clocks {
            wall: Instant::now(),
            cpu: thread_cpu_secs(),
        }
    }

    /// (wall, cpu) seconds since the start.
    fn elapsed(&self) -> (f64, f64) {
        (
            self.wall.elapsed().as_secs_f64(),
            thread_cpu_secs() - self.cpu,
        )
    }
}

fn rate(n: u64, (secs, cpu): (f64, f64)) -> String {
    format!(
        "{:>8.0} ms  {:>6.3} µs/txn  {:>6.2} M txns/s  cpu {:>6.0} ms  {:>6.3} µs/txn",
        secs * 1e3,
        secs * 1e6 / n as f64,
        n as f64 / secs / 1e6,
        cpu * 1e3,
        cpu * 1e6 / n as f64,
    )
}

fn minus((a, b): (f64, f64), (c, d): (f64, f64)) -> (f64, f64) {
    (a - c, b - d)
}

#[test]
fn replay_speed_by_phase() {
    let txns: i64 = std::env::var("FK_REPLAY_TXNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(TXNS_DEFAULT);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let opts = LogOptions {
        force_sync: false,
        ..LogOptions::default()
    };
    // Write the log.
    {
        let (mut w, _) = LogWriter::open(&dir, opts).expect("open");
        let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); BATCH_TXNS];
        let mut zxid = 1;
        while zxid <= txns {
            let n = (txns - zxid + 1).min(BATCH_TXNS as i64) as usize;
            for (i, buf) in bufs.iter_mut().take(n).enumerate() {
                buf.clear();
                codec::encode(&txn(zxid + i as i64), buf);
            }
            let batch: Vec<Record<'_>> = (0..n)
                .map(|i| Record {
                    zxid: zxid + i as i64,
                    bytes: &bufs[i],
                })
                .collect();
            w.append(&batch).expect("append");
            zxid += n as i64;
        }
        w.wait_background().expect("background");
    }
    // Written with force_sync off, the segments' pages are still dirty; recovery's fdatasync
    // of the newest segment would then write it out and be timed as replay. A restart
    // finds them clean unless it comes within the kernel's writeback interval of a crash
    // (FK_REPLAY_DIRTY=1 keeps them dirty, to see that case).
    if std::env::var_os("FK_REPLAY_DIRTY").is_none() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .expect("sync segment");
        }
    }
    let n = txns as u64;
    let bytes: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    eprintln!(
        "replay speed: {n} txns ({} creates, then setData of {DATA_BYTES} B), {} MiB of segment files",
        ZNODES.min(txns),
        bytes >> 20
    );

    // Phase 1: the writer's recovery scan.
    let started = Clocks::start();
    let (w, recovered) = LogWriter::open(&dir, opts).expect("reopen");
    let open_secs = started.elapsed();
    assert_eq!(recovered.records, n);
    drop(w);
    eprintln!(
        "  recovery scan (LogWriter::open)      {}",
        rate(n, open_secs)
    );

    // Phase 2: the reader's pass, payloads handed out.
    let started = Clocks::start();
    let mut payload_bytes = 0usize;
    for rec in txlog::read(&dir, 0).expect("read") {
        payload_bytes += rec.expect("record").bytes.len();
    }
    let read_secs = started.elapsed();
    eprintln!(
        "  read (verify, payloads)              {}  ({} MiB of payload)",
        rate(n, read_secs),
        payload_bytes >> 20
    );

    // Phase 3: read and decode.
    let started = Clocks::start();
    for rec in txlog::read(&dir, 0).expect("read") {
        let rec = rec.expect("record");
        let txn = codec::decode(&rec.bytes).expect("decode");
        assert_eq!(txn.zxid, rec.zxid);
    }
    let decode_secs = minus(started.elapsed(), read_secs);
    eprintln!(
        "  decode (read subtracted)             {}",
        rate(n, decode_secs)
    );

    // Everything, as the server does at startup.
    let mut state = DataState::new(open_acl_unsafe(), false);
    let system_znodes = state.tree.len() as i64; // /, /zookeeper and its children.
    let started = Clocks::start();
    let (w, replayed) =
        ferrokeeper::commit::log::open_and_replay(&dir, opts, &mut state, "").expect("replay");
    let total_secs = started.elapsed();
    drop(w);
    assert_eq!(replayed, n);
    assert_eq!(state.last_zxid, txns);
    assert_eq!(state.tree.len() as i64, ZNODES.min(txns) + system_znodes);
    eprintln!(
        "  apply (the rest of the total)        {}",
        rate(n, minus(minus(total_secs, open_secs), decode_secs))
    );
    eprintln!(
        "  total (commit::log::open_and_replay) {}",
        rate(n, total_secs)
    );
}
