//! The `durability` workload of `compare`: setData on a second pair of servers started
//! with `forceSync=yes` (ZooKeeper's default: a write is acknowledged only once the
//! transaction log holding it has been fsynced), both on the same disk.
//!
//! The rest of `compare` runs with `forceSync=no` on both sides, so it compares request
//! processing; this compares what a user of the defaults gets. For each point of
//! writes in flight (1, 16 and 256 in the `quick` profile) it measures:
//!
//! * throughput, latency percentiles, the longest gap and the server's CPU per write,
//!   from timed closed-loop runs (rounds alternating between the servers, as elsewhere);
//! * syncs per acknowledged write and log bytes per write, from one *counted* pass of a
//!   fixed number of writes per server, outside the timed runs:
//!   - each server's own count of its transaction-log syncs, from `mntr`: ZooKeeper's
//!     `zk_cnt_fsynctime` (one sample per `FileChannel.force` in `FileTxnLog.commit`),
//!     ferrokeeper's `zk_fk_log_fdatasyncs` + `zk_fk_log_fsyncs`;
//!   - the same measured from outside, identically for both: `perf stat -p <pid>` on the
//!     tracepoints `ext4:ext4_sync_file_enter` (every fsync or fdatasync of a file on
//!     ext4, whether by syscall or by io_uring, which is how ferrokeeper syncs) and
//!     `syscalls:sys_enter_fdatasync` / `sys_enter_fsync`. This also counts syncs that are
//!     not the log's (snapshots), so it is an upper bound of the log's;
//!   - the log's growth in written data, not in file size (both servers preallocate their
//!     segments): ferrokeeper's `zk_fk_log_bytes` (framed records), and for ZooKeeper its
//!     `version-2/log.*` files parsed up to the last whole record ([`java_log_extent`]).
//!
//! Counted passes run after the timed runs and never inside them: `perf` attaching to a
//! few hundred JVM threads takes a moment, and a pass's length depends on the server.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::now_ns;
use crate::engine::{run_pipeline, Pace, PipelineSpec, Span};
use crate::ops::{Mix, OpKind, OpSource};
use crate::plan::Profile;
use crate::server::{four_letter_word, round_order, Pair, Server, ServerKind, ServerSettings};
use crate::stats::RunStats;
use crate::units::{fmt_latency, per_op_us};
use crate::workload::{preload, run_workload, Dataset, LoadShape, Target, Templates, Workload};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// What the durability workload runs.
#[derive(Debug, Clone)]
pub struct DurabilityPlan {
    /// (sessions, outstanding per session) of each point.
    pub points: Vec<(usize, usize)>,
    /// setData on both servers before anything is measured (JIT warm-up), ns.
    pub warmup_global_ns: u64,
    /// Warm-up of each timed run, ns.
    pub warmup_ns: u64,
    /// Measured window of each timed run, ns.
    pub measure_ns: u64,
    /// Timed runs per point per server (alternating).
    pub rounds: usize,
    /// The counted pass at a point lasts about this long on the slower server: its
    /// writes are this times the slower server's timed throughput there, ns.
    pub counted_ns: u64,
    /// Fewest writes of a counted pass.
    pub counted_writes_min: u64,
    /// Most writes of a counted pass.
    pub counted_writes_max: u64,
}

impl DurabilityPlan {
    /// The plan of a profile.
    pub fn of(profile: Profile) -> DurabilityPlan {
        match profile {
            Profile::Smoke => DurabilityPlan {
                points: vec![(1, 1), (4, 4)],
                warmup_global_ns: 0,
                warmup_ns: 100 * MS,
                measure_ns: 300 * MS,
                rounds: 1,
                counted_ns: 200 * MS,
                counted_writes_min: 50,
                counted_writes_max: 2_000,
            },
            Profile::Quick => DurabilityPlan {
                points: vec![(1, 1), (4, 4), (16, 16)],
                warmup_global_ns: 3 * S,
                warmup_ns: 500 * MS,
                measure_ns: 3 * S,
                rounds: 2,
                counted_ns: 2 * S,
                counted_writes_min: 500,
                counted_writes_max: 100_000,
            },
            Profile::Full => DurabilityPlan {
                points: vec![(1, 1), (1, 16), (4, 4), (16, 16), (32, 16)],
                warmup_global_ns: 10 * S,
                warmup_ns: S,
                measure_ns: 8 * S,
                rounds: 3,
                counted_ns: 5 * S,
                counted_writes_min: 1_000,
                counted_writes_max: 500_000,
            },
        }
    }
}

/// Sync counts `perf stat` read from a server process over a counted pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerfSyncs {
    /// `ext4:ext4_sync_file_enter`: fsyncs and fdatasyncs of ext4 files, any path.
    pub ext4_sync_file: Option<u64>,
    /// `syscalls:sys_enter_fdatasync`.
    pub fdatasync_calls: Option<u64>,
    /// `syscalls:sys_enter_fsync`.
    pub fsync_calls: Option<u64>,
}

/// A server's transaction log at one moment, as far as the bench can see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogReading {
    /// Txns in the log.
    pub txns: u64,
    /// Bytes of written log data (framed records and file headers).
    pub bytes: u64,
    /// Syncs of the log, by the server's own count (`None`: not reported).
    pub syncs: Option<u64>,
}

/// One server's counted pass at one point.
#[derive(Debug, Clone, Default)]
pub struct SyncPass {
    /// Writes sent (all were acknowledged unless `errors` or `unanswered` say otherwise).
    pub writes: u64,
    /// Writes acknowledged.
    pub acknowledged: u64,
    /// Wall time of the pass, ns.
    pub elapsed_ns: u64,
    /// The log before and after (`None`: could not be read, see `note`).
    pub log: Option<(LogReading, LogReading)>,
    /// What `perf stat` counted (`None`: perf could not count, see `note`).
    pub perf: Option<PerfSyncs>,
    /// Why a measurement is missing.
    pub note: Option<String>,
}

impl SyncPass {
    /// Log syncs per acknowledged write, by the server's own count.
    pub fn log_syncs_per_write(&self) -> Option<f64> {
        let (a, b) = self.log?;
        let syncs = b.syncs?.checked_sub(a.syncs?)?;
        (self.acknowledged > 0).then(|| syncs as f64 / self.acknowledged as f64)
    }

    /// All ext4 syncs of the process per acknowledged write, from perf.
    pub fn perf_syncs_per_write(&self) -> Option<f64> {
        let n = self.perf?.ext4_sync_file?;
        (self.acknowledged > 0).then(|| n as f64 / self.acknowledged as f64)
    }

    /// Written log bytes per acknowledged write.
    pub fn log_bytes_per_write(&self) -> Option<f64> {
        let (a, b) = self.log?;
        let bytes = b.bytes.checked_sub(a.bytes)?;
        (self.acknowledged > 0).then(|| bytes as f64 / self.acknowledged as f64)
    }

    /// Txns the log gained (the writes plus each session's createSession and
    /// closeSession).
    pub fn log_txns(&self) -> Option<u64> {
        let (a, b) = self.log?;
        b.txns.checked_sub(a.txns)
    }
}

/// One point of writes in flight.
#[derive(Debug, Clone)]
pub struct DurabilityPoint {
    /// Sessions.
    pub sessions: usize,
    /// Outstanding writes per session.
    pub outstanding: usize,
    /// The timed runs, rounds merged.
    pub stats: Pair<RunStats>,
    /// The counted passes.
    pub pass: Pair<SyncPass>,
}

/// Everything the durability workload found.
#[derive(Debug, Clone)]
pub struct DurabilityResult {
    /// The plan run.
    pub plan: DurabilityPlan,
    /// Per point, in the plan's order.
    pub points: Vec<DurabilityPoint>,
    /// The zoo.cfg and command of each server.
    pub configs: Pair<(String, String)>,
    /// Where the data directories were: file system and device.
    pub disk: String,
    /// Bytes of data per setData.
    pub data_bytes: usize,
}

/// The servers, the requests and the errors of the durability runs.
struct Durable {
    servers: Pair<Server>,
    dead: Pair<bool>,
    templates: Templates,
    errors: Vec<String>,
}

/// What [`run`] found, the RSS of each server after it, and its errors.
pub type RunOutput = (DurabilityResult, Pair<Option<u64>>, Vec<String>);

/// Runs the durability workload on a pair of `forceSync=yes` servers of its own, started
/// under `settings.base_dir`. `compare` adds what it finds to its results.
pub fn run(
    plan: &DurabilityPlan,
    settings: &ServerSettings,
    dataset: &Dataset,
    shape: &LoadShape,
) -> Result<RunOutput, crate::server::ServerError> {
    let _ = std::fs::remove_dir_all(&settings.base_dir);
    let java = Server::start_with_force_sync(ServerKind::Java, settings, true)?;
    let fk = Server::start_with_force_sync(ServerKind::Ferrokeeper, settings, true)?;
    eprintln!(
        "  durability: ZooKeeper pid {} port {}, ferrokeeper pid {} port {}",
        java.pid(),
        java.port,
        fk.pid(),
        fk.port
    );
    let mut d = Durable {
        servers: Pair { java, fk },
        dead: Pair {
            java: false,
            fk: false,
        },
        templates: Templates::new(dataset),
        errors: Vec::new(),
    };
    for kind in round_order(0) {
        let server = d.servers.get(kind);
        if let Err(e) = preload(
            server.addr(),
            dataset,
            shape.threads,
            shape.session_timeout_ms,
        ) {
            d.errors
                .push(format!("durability: preload of {}: {e}", kind.name()));
        }
    }
    if plan.warmup_global_ns > 0 {
        let &(sessions, outstanding) = plan
            .points
            .iter()
            .max_by_key(|(s, o)| s * o)
            .unwrap_or(&(4, 4));
        let mut warm = shape.clone();
        (warm.sessions, warm.outstanding) = (sessions, outstanding);
        (warm.warmup_ns, warm.measure_ns) = (plan.warmup_global_ns, 100 * MS);
        for kind in round_order(0) {
            d.timed(kind, &warm, "warmup");
        }
    }
    let mut points = Vec::new();
    for (i, &(sessions, outstanding)) in plan.points.iter().enumerate() {
        let mut point_shape = shape.clone();
        point_shape.sessions = sessions;
        point_shape.outstanding = outstanding;
        point_shape.pace = Pace::Closed;
        point_shape.warmup_ns = plan.warmup_ns;
        point_shape.measure_ns = plan.measure_ns;
        let mut stats = Pair {
            java: RunStats::empty(),
            fk: RunStats::empty(),
        };
        for round in 0..plan.rounds {
            for kind in round_order(i + round) {
                let s = d.timed(kind, &point_shape, &format!("{sessions}x{outstanding}"));
                stats.get_mut(kind).merge_round(&s);
            }
        }
        // The same number of writes for both: about `counted_ns` on the slower one.
        let slower = stats.java.ops_per_sec().min(stats.fk.ops_per_sec());
        let writes = ((slower * plan.counted_ns as f64 / 1e9) as u64)
            .clamp(plan.counted_writes_min, plan.counted_writes_max);
        let mut pass = Pair {
            java: SyncPass::default(),
            fk: SyncPass::default(),
        };
        for kind in round_order(i) {
            *pass.get_mut(kind) = d.counted(kind, &point_shape, writes);
        }
        points.push(DurabilityPoint {
            sessions,
            outstanding,
            stats,
            pass,
        });
    }
    let rss = Pair {
        java: d.servers.java.rss_bytes().ok(),
        fk: d.servers.fk.rss_bytes().ok(),
    };
    let configs = Pair {
        java: (
            d.servers.java.config.clone(),
            d.servers.java.command.clone(),
        ),
        fk: (d.servers.fk.config.clone(), d.servers.fk.command.clone()),
    };
    let result = DurabilityResult {
        plan: plan.clone(),
        points,
        configs,
        disk: disk_of(&settings.base_dir),
        data_bytes: dataset.data_bytes,
    };
    let errors = std::mem::take(&mut d.errors);
    // The servers stop here; `compare` removes their directories unless told to keep them.
    drop(d);
    Ok((result, rss, errors))
}

impl Durable {
    /// Records what went wrong in a run of `kind`; marks a server that died.
    fn check(&mut self, kind: ServerKind, what: &str, stats: &RunStats) {
        if let Some(e) = &stats.first_error {
            self.errors.push(format!(
                "durability {what} on {}: {} error(s), first: {e}",
                kind.name(),
                stats.errors
            ));
        }
        if stats.unanswered > 0 {
            self.errors.push(format!(
                "durability {what} on {}: {} requests unanswered (stall)",
                kind.name(),
                stats.unanswered
            ));
        }
        let server = self.servers.get_mut(kind);
        if !server.is_running() {
            self.errors.push(format!(
                "{} (forceSync=yes) died during durability {what}; log tail:\n{}",
                kind.name(),
                server.log_tail(20)
            ));
            *self.dead.get_mut(kind) = true;
        }
    }

    /// One timed closed-loop setData run.
    fn timed(&mut self, kind: ServerKind, shape: &LoadShape, tag: &str) -> RunStats {
        if *self.dead.get(kind) {
            return RunStats::empty();
        }
        let server = self.servers.get(kind);
        let tag = format!("{}-durability-{tag}", kind.tag());
        let target = Target {
            addr: server.addr(),
            pid: Some(server.pid()),
            templates: &self.templates,
            tag: &tag,
        };
        let stats = run_workload(Workload::Durability, &target, shape).unwrap_or_else(|e| {
            let mut s = RunStats::empty();
            s.error(|| e.to_string());
            s
        });
        self.check(kind, "timed run", &stats);
        eprintln!(
            "  {:<13} {:<11} {:>3}×{:<3} {:>8.0} ops/s  p50 {:>8}  p99 {:>8}  p99.9 {:>8}  gap {:>8}  server {:>7} µs/op",
            "durability",
            kind.name(),
            shape.sessions,
            shape.outstanding,
            stats.ops_per_sec(),
            fmt_latency(stats.latency.value_at_quantile(0.5)),
            fmt_latency(stats.latency.value_at_quantile(0.99)),
            fmt_latency(stats.latency.value_at_quantile(0.999)),
            fmt_latency(stats.max_gap_ns),
            stats
                .server_cpu_ns
                .map(|c| format!("{:.1}", per_op_us(c, stats.ops)))
                .unwrap_or_else(|| "?".into()),
        );
        stats
    }

    /// One counted pass of `writes` setData, with the log read before and after and
    /// `perf stat` counting syncs meanwhile.
    fn counted(&mut self, kind: ServerKind, shape: &LoadShape, writes: u64) -> SyncPass {
        let mut pass = SyncPass {
            writes,
            ..SyncPass::default()
        };
        if *self.dead.get(kind) {
            pass.note = Some("server not running".into());
            return pass;
        }
        let mut notes = Vec::new();
        let server = self.servers.get(kind);
        let before = read_log(server).map_err(|e| notes.push(format!("log: {e}")));
        let perf = PerfStat::attach(server.pid()).map_err(|e| notes.push(format!("perf: {e}")));
        let spec = PipelineSpec {
            addr: server.addr(),
            sessions: shape.sessions,
            outstanding: shape.outstanding,
            threads: shape.threads,
            pace: Pace::Closed,
            span: Span::Count,
            session_timeout_ms: shape.session_timeout_ms,
            drain_ns: shape.drain_ns,
            server_pid: Some(server.pid()),
            peers: Vec::new(),
            peer_pids: Vec::new(),
        };
        let mix = self.templates.mix(Workload::Durability);
        let left = Arc::new(AtomicU64::new(writes));
        let t0 = now_ns();
        let stats = run_pipeline(&spec, &|w| {
            Box::new(Counted {
                inner: Mix::new(Arc::clone(&mix), 1_000 + w as u64),
                left: Arc::clone(&left),
            }) as Box<dyn OpSource>
        })
        .unwrap_or_else(|e| {
            let mut s = RunStats::empty();
            s.error(|| e.to_string());
            s
        });
        pass.elapsed_ns = now_ns() - t0;
        pass.acknowledged = stats.ops.saturating_sub(stats.errors);
        pass.perf = perf
            .and_then(|p| p.finish().map_err(|e| notes.push(format!("perf: {e}"))))
            .ok();
        let server = self.servers.get(kind);
        let after = read_log(server).map_err(|e| notes.push(format!("log: {e}")));
        pass.log = before.ok().zip(after.ok());
        pass.note = (!notes.is_empty()).then(|| notes.join("; "));
        self.check(kind, "counted pass", &stats);
        eprintln!(
            "  {:<13} {:<11} {:>3}×{:<3} counted pass: {} writes in {:.2} s, log syncs/write {}, perf ext4 syncs/write {}, log bytes/write {}{}",
            "durability",
            kind.name(),
            shape.sessions,
            shape.outstanding,
            pass.acknowledged,
            pass.elapsed_ns as f64 / 1e9,
            fmt_opt(pass.log_syncs_per_write(), 3),
            fmt_opt(pass.perf_syncs_per_write(), 3),
            fmt_opt(pass.log_bytes_per_write(), 1),
            pass.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        pass
    }
}

/// setData from a mix until a budget shared by all workers runs out.
struct Counted {
    inner: Mix,
    left: Arc<AtomicU64>,
}

impl OpSource for Counted {
    fn next(&mut self, session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind> {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .ok()?;
        self.inner.next(session, xid, out)
    }
}

/// The transaction log of `server` now: ferrokeeper's from `mntr`, ZooKeeper's from its
/// log files (txns and bytes) and `mntr` (`zk_cnt_fsynctime`, one per log fsync).
pub fn read_log(server: &Server) -> io::Result<LogReading> {
    let mntr = four_letter_word(server.port, "mntr")?;
    let key = |k: &str| mntr_value(&mntr, k);
    match server.kind {
        ServerKind::Ferrokeeper => {
            let missing =
                || io::Error::other("mntr has no zk_fk_log_* counters (is the log running?)");
            Ok(LogReading {
                txns: key("zk_fk_log_records").ok_or_else(missing)?,
                bytes: key("zk_fk_log_bytes").ok_or_else(missing)?,
                syncs: key("zk_fk_log_fdatasyncs")
                    .zip(key("zk_fk_log_fsyncs"))
                    .map(|(a, b)| a + b),
            })
        }
        ServerKind::Java => {
            let (txns, bytes) = java_log_extent(&server.data_dir().join("version-2"))?;
            Ok(LogReading {
                txns,
                bytes,
                syncs: key("zk_cnt_fsynctime"),
            })
        }
    }
}

/// The value of `key` in a `mntr` reply (`key\tvalue` lines).
pub fn mntr_value(mntr: &str, key: &str) -> Option<u64> {
    mntr.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .and_then(|v| v.trim().parse().ok())
}

/// Bytes of a ZooKeeper transaction log file's header (`FileHeader`: magic "ZKLG",
/// version, dbid).
const JAVA_LOG_HEADER_BYTES: u64 = 16;
/// Bytes of a record's framing: Adler-32 checksum (a long), length (an int), and the
/// end-of-record byte 0x42 (`FileTxnLog.append`, `Util.writeTxnBytes`).
const JAVA_RECORD_FRAME_BYTES: u64 = 8 + 4 + 1;
/// The end-of-record byte.
const JAVA_EOR: u8 = 0x42;
/// Largest txn a well-formed log holds here (`jute.maxbuffer` default plus slack).
const JAVA_TXN_BYTES_MAX: usize = 4 << 20;

/// (txns, written bytes) of ZooKeeper's transaction logs in `version2`: every
/// `log.<zxid>` file's header plus its records up to the last whole one. ZooKeeper
/// preallocates log files (`FilePadding`: 64 MiB, zeros), so the file size says nothing
/// about the data; the first record whose length is 0, whose end-of-record byte is not
/// 0x42 or whose Adler-32 does not match ends the file's data.
pub fn java_log_extent(version2: &Path) -> io::Result<(u64, u64)> {
    let mut txns = 0u64;
    let mut bytes = 0u64;
    let mut logs: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(version2)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("log."))
        {
            logs.push(path);
        }
    }
    let mut txn = Vec::new();
    for path in logs {
        let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
        let mut header = [0u8; JAVA_LOG_HEADER_BYTES as usize];
        if r.read_exact(&mut header).is_err() || &header[..4] != b"ZKLG" {
            continue;
        }
        bytes += JAVA_LOG_HEADER_BYTES;
        loop {
            let mut head = [0u8; 12];
            if r.read_exact(&mut head).is_err() {
                break;
            }
            let crc = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
            let len = i32::from_be_bytes(head[8..].try_into().expect("4 bytes"));
            if len <= 0 || len as usize > JAVA_TXN_BYTES_MAX {
                break;
            }
            txn.resize(len as usize + 1, 0);
            if r.read_exact(&mut txn).is_err()
                || txn[len as usize] != JAVA_EOR
                || u64::from(adler32(&txn[..len as usize])) != crc
            {
                break;
            }
            txns += 1;
            bytes += JAVA_RECORD_FRAME_BYTES + len as u64;
        }
    }
    Ok((txns, bytes))
}

/// Adler-32 (RFC 1950), ZooKeeper's txn-log checksum (`java.util.zip.Adler32`).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before b overflows u32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// `perf stat` counting sync tracepoints of one process.
struct PerfStat {
    child: Child,
}

/// The tracepoints counted, in [`PerfSyncs`] order.
const PERF_EVENTS: [&str; 3] = [
    "ext4:ext4_sync_file_enter",
    "syscalls:sys_enter_fdatasync",
    "syscalls:sys_enter_fsync",
];

/// How long `perf stat -p` gets to attach to every thread before the pass starts.
const PERF_ATTACH_MS: u64 = 700;

impl PerfStat {
    fn attach(pid: u32) -> io::Result<PerfStat> {
        let mut child = Command::new("perf")
            .args(["stat", "-x,", "-e", &PERF_EVENTS.join(","), "-p"])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(PERF_ATTACH_MS));
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(io::Error::other(format!(
                "perf stat exited ({status}): {}",
                err.lines().next().unwrap_or("")
            )));
        }
        Ok(PerfStat { child })
    }

    fn finish(self) -> io::Result<PerfSyncs> {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let out = self.child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let counts = parse_perf_csv(&text);
        if counts.ext4_sync_file.is_none()
            && counts.fdatasync_calls.is_none()
            && counts.fsync_calls.is_none()
        {
            return Err(io::Error::other(format!(
                "perf stat counted nothing: {}",
                text.lines().next().unwrap_or("")
            )));
        }
        Ok(counts)
    }
}

/// Reads `perf stat -x,` output (`count,unit,event,...` per line; `<not counted>` or
/// `<not supported>` where a count is missing).
pub fn parse_perf_csv(text: &str) -> PerfSyncs {
    let count = |event: &str| {
        text.lines().find_map(|l| {
            let mut f = l.split(',');
            let value = f.next()?;
            let event_field = f.nth(1)?;
            (event_field == event)
                .then(|| value.trim().parse().ok())
                .flatten()
        })
    };
    PerfSyncs {
        ext4_sync_file: count(PERF_EVENTS[0]),
        fdatasync_calls: count(PERF_EVENTS[1]),
        fsync_calls: count(PERF_EVENTS[2]),
    }
}

/// "ext4 on /dev/vda (/)": the file system and device holding `path`, from
/// `/proc/self/mounts` (the longest mount point that is a prefix of it).
pub fn disk_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = std::fs::canonicalize(path)
        .or_else(|_| std::fs::canonicalize(path.parent().unwrap_or(path)))
        .unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1].len(), f[2], f[0], f[1]))
        })
        .max_by_key(|m| m.0)
        .map(|(_, fs, dev, at)| format!("{fs} on {dev} (mounted at {at})"))
        .unwrap_or_else(|| "?".into())
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("?".into(), |x| format!("{x:.decimals$}"))
}

fn ratio_opt(fk: Option<f64>, java: Option<f64>) -> String {
    match (fk, java) {
        (Some(f), Some(j)) if j > 0.0 && f.is_finite() => format!("{:.2}×", f / j),
        _ => "–".into(),
    }
}

/// The rows issue #9 asks for: setData with `forceSync=yes` at 1 and at 16 writes in
/// flight (every point of the plan with that many; `quick` has 1×1 and 4×4), p50, p99 and
/// server CPU per write side by side. README's fsync table is this table.
pub fn fsync_rows(d: &DurabilityResult) -> String {
    use std::fmt::Write as _;
    let mut md = String::from("| setData, `forceSync=yes` | ZooKeeper writes/s | ferrokeeper writes/s | ratio | p50 ZK / fk | p99 ZK / fk | CPU µs/write ZK / fk | CPU ratio |\n|---|---:|---:|---:|---|---|---|---:|\n");
    for p in d
        .points
        .iter()
        .filter(|p| matches!(p.sessions * p.outstanding, 1 | 16))
    {
        let (j, f) = (&p.stats.java, &p.stats.fk);
        let q = |s: &RunStats, q: f64| {
            if s.latency.is_empty() {
                "–".to_string()
            } else {
                fmt_latency(s.latency.value_at_quantile(q))
            }
        };
        let cpu = |s: &RunStats| s.server_cpu_ns.map(|c| per_op_us(c, s.ops));
        let _ = writeln!(
            md,
            "| {} in flight ({}×{}) | {:.0} | {:.0} | {} | {} / {} | {} / {} | {} / {} | {} |",
            p.sessions * p.outstanding,
            p.sessions,
            p.outstanding,
            j.ops_per_sec(),
            f.ops_per_sec(),
            ratio_opt(Some(f.ops_per_sec()), Some(j.ops_per_sec())),
            q(j, 0.5),
            q(f, 0.5),
            q(j, 0.99),
            q(f, 0.99),
            fmt_opt(cpu(j), 1),
            fmt_opt(cpu(f), 1),
            ratio_opt(cpu(f), cpu(j)),
        );
    }
    md
}

/// The report's durability section.
pub fn render(d: &DurabilityResult) -> String {
    use std::fmt::Write as _;
    let plan = &d.plan;
    let mut md = String::new();
    md.push_str("## Durability: setData with `forceSync=yes` on both\n\n");
    let _ = writeln!(
        md,
        "A second pair of servers, started with `forceSync=yes` (ZooKeeper's default: a write is acknowledged only after the transaction log holding it is on disk), data directories on the same disk ({}), the same preloaded tree; each write is a setData of {} B to a random data node. Ratios are ferrokeeper / ZooKeeper. Timed runs: closed loop, warm-up {:.1} s, {:.1} s measured, {} round(s) per server alternating, after {:.0} s of unmeasured writes on each.\n",
        d.disk,
        d.data_bytes,
        plan.warmup_ns as f64 / 1e9,
        plan.measure_ns as f64 / 1e9,
        plan.rounds,
        plan.warmup_global_ns as f64 / 1e9
    );
    md.push_str(&fsync_rows(d));
    md.push_str("\nEvery point:\n\n");
    md.push_str("| in flight (sessions × outstanding) | ZooKeeper writes/s | ferrokeeper writes/s | ratio | CPU µs/write ZooKeeper | CPU µs/write ferrokeeper | CPU ratio |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for p in &d.points {
        let (j, f) = (&p.stats.java, &p.stats.fk);
        let cpu = |s: &RunStats| s.server_cpu_ns.map(|c| per_op_us(c, s.ops));
        let _ = writeln!(
            md,
            "| {} ({}×{}) | {:.0} | {:.0} | {} | {} | {} | {} |",
            p.sessions * p.outstanding,
            p.sessions,
            p.outstanding,
            j.ops_per_sec(),
            f.ops_per_sec(),
            ratio_opt(Some(f.ops_per_sec()), Some(j.ops_per_sec())),
            fmt_opt(cpu(j), 1),
            fmt_opt(cpu(f), 1),
            ratio_opt(cpu(f), cpu(j)),
        );
    }
    md.push_str("\n| in flight | server | writes | p50 | p99 | p99.9 | max | longest gap |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for p in &d.points {
        for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
            let s = p.stats.get(kind);
            let q = |q: f64| {
                if s.latency.is_empty() {
                    "–".into()
                } else {
                    fmt_latency(s.latency.value_at_quantile(q))
                }
            };
            let _ = writeln!(
                md,
                "| {}×{} | {} | {} | {} | {} | {} | {} | {} |",
                p.sessions,
                p.outstanding,
                kind.name(),
                s.ops,
                q(0.5),
                q(0.99),
                q(0.999),
                q(1.0),
                fmt_latency(s.max_gap_ns)
            );
        }
    }
    md.push_str("\n### Syncs and log bytes per acknowledged write\n\n");
    md.push_str("One counted pass per server and point, after the timed runs: the same number of setData for both (about ");
    let _ = write!(
        md,
        "{:.1} s on the slower server), closed loop at the point's sessions × outstanding. ",
        plan.counted_ns as f64 / 1e9
    );
    md.push_str("\"Log syncs\" are each server's own count of transaction-log syncs, read from `mntr` before and after: ZooKeeper's `zk_cnt_fsynctime` (one sample per `FileChannel.force(false)`, an fdatasync, in `FileTxnLog.commit`), ferrokeeper's `zk_fk_log_fdatasyncs` + `zk_fk_log_fsyncs`. \"perf\" is the same counted from outside and identically for both with `perf stat -x, -e ext4:ext4_sync_file_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p <pid>` over the pass: the ext4 tracepoint sees every fsync and fdatasync of a file, whether it came by syscall (ZooKeeper) or through io_uring (ferrokeeper, which therefore shows no fdatasync syscalls), so it also counts snapshot and directory syncs. \"Log bytes\" are written log data, not file size (both preallocate): ferrokeeper's `zk_fk_log_bytes` (24-byte frame header + txn per record), ZooKeeper's `version-2/log.*` parsed up to the last whole record (16-byte file header; per record an 8-byte Adler-32, a 4-byte length, the txn — header, setData record and the 3.8 txn digest — and the end-of-record byte). Both count each session's createSession and closeSession too (the \"txns\" column), divided among the writes.\n\n");
    md.push_str("| in flight | writes per pass | log syncs/write ZooKeeper | log syncs/write ferrokeeper | ratio | log bytes/write ZooKeeper | log bytes/write ferrokeeper | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &d.points {
        let (j, f) = (&p.pass.java, &p.pass.fk);
        let _ = writeln!(
            md,
            "| {}×{} | {} | {} | {} | {} | {} | {} | {} |",
            p.sessions,
            p.outstanding,
            j.writes.max(f.writes),
            fmt_opt(j.log_syncs_per_write(), 3),
            fmt_opt(f.log_syncs_per_write(), 3),
            ratio_opt(f.log_syncs_per_write(), j.log_syncs_per_write()),
            fmt_opt(j.log_bytes_per_write(), 1),
            fmt_opt(f.log_bytes_per_write(), 1),
            ratio_opt(f.log_bytes_per_write(), j.log_bytes_per_write()),
        );
    }
    md.push_str("\n| in flight | server | acknowledged | txns | pass time | log syncs | perf: ext4 syncs | perf: fdatasync() | perf: fsync() | perf ext4 syncs/write | note |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for p in &d.points {
        for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
            let s = p.pass.get(kind);
            let n = |v: Option<u64>| v.map_or("?".into(), |x| x.to_string());
            let syncs = s.log.and_then(|(a, b)| b.syncs?.checked_sub(a.syncs?));
            let perf = s.perf.unwrap_or_default();
            let _ = writeln!(
                md,
                "| {}×{} | {} | {} | {} | {:.2} s | {} | {} | {} | {} | {} | {} |",
                p.sessions,
                p.outstanding,
                kind.name(),
                s.acknowledged,
                n(s.log_txns()),
                s.elapsed_ns as f64 / 1e9,
                n(syncs),
                n(perf.ext4_sync_file),
                n(perf.fdatasync_calls),
                n(perf.fsync_calls),
                fmt_opt(s.perf_syncs_per_write(), 3),
                s.note.as_deref().unwrap_or(""),
            );
        }
    }
    md.push('\n');
    for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
        let (cfg, cmd) = d.configs.get(kind);
        let _ = writeln!(
            md,
            "{} (durability): `{cmd}`\n\n```properties\n{cfg}```\n",
            kind.name()
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_the_rfc_example() {
        // RFC 1950's reference value for "Wikipedia" (commonly cited check value).
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        // Long input: the modular reduction per chunk keeps it exact.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&long)), (b << 16) | a);
    }

    fn java_record(zxid: i64, body_len: usize) -> Vec<u8> {
        // TxnHeader (clientId, cxid, zxid, time, type) then a body.
        let mut txn = Vec::new();
        txn.extend_from_slice(&1i64.to_be_bytes());
        txn.extend_from_slice(&1i32.to_be_bytes());
        txn.extend_from_slice(&zxid.to_be_bytes());
        txn.extend_from_slice(&0i64.to_be_bytes());
        txn.extend_from_slice(&5i32.to_be_bytes());
        txn.resize(txn.len() + body_len, b'x');
        let mut rec = Vec::new();
        rec.extend_from_slice(&u64::from(adler32(&txn)).to_be_bytes());
        rec.extend_from_slice(&(txn.len() as i32).to_be_bytes());
        rec.extend_from_slice(&txn);
        rec.push(JAVA_EOR);
        rec
    }

    #[test]
    fn java_log_extent_stops_at_preallocated_zeros_and_torn_records() {
        let dir = std::env::temp_dir().join(format!("fk-bench-javalog-{}", std::process::id()));
        let v2 = dir.join("version-2");
        std::fs::create_dir_all(&v2).expect("dir");
        let mut file = Vec::new();
        file.extend_from_slice(b"ZKLG");
        file.extend_from_slice(&2i32.to_be_bytes());
        file.extend_from_slice(&0i64.to_be_bytes());
        let r1 = java_record(1, 10);
        let r2 = java_record(2, 100);
        file.extend_from_slice(&r1);
        file.extend_from_slice(&r2);
        let whole = file.len() as u64;
        // A torn third record (bad checksum), then preallocated zeros.
        let mut r3 = java_record(3, 50);
        r3[20] ^= 1;
        file.extend_from_slice(&r3);
        file.resize(file.len() + 4096, 0);
        std::fs::write(v2.join("log.1"), &file).expect("write");
        std::fs::write(v2.join("snapshot.0"), b"not a log").expect("write");
        assert_eq!(java_log_extent(&v2).expect("read"), (2, whole));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn perf_csv_counts_and_missing_counts() {
        let text = "\n2998,,ext4:ext4_sync_file_enter,1541660584,100.00,,\n<not supported>,,syscalls:sys_enter_fdatasync,0,100.00,,\n7,,syscalls:sys_enter_fsync,1541660584,100.00,,\n";
        assert_eq!(
            parse_perf_csv(text),
            PerfSyncs {
                ext4_sync_file: Some(2998),
                fdatasync_calls: None,
                fsync_calls: Some(7),
            }
        );
    }

    #[test]
    fn mntr_values_by_exact_key() {
        let mntr = "zk_fk_log_fdatasyncs\t12\nzk_fk_log_fsyncs\t2\nzk_cnt_fsynctime\t7\n";
        assert_eq!(mntr_value(mntr, "zk_fk_log_fsyncs"), Some(2));
        assert_eq!(mntr_value(mntr, "zk_fk_log_fdatasyncs"), Some(12));
        assert_eq!(mntr_value(mntr, "zk_cnt_fsynctime"), Some(7));
        assert_eq!(mntr_value(mntr, "zk_fk_log"), None);
    }

    #[test]
    fn counted_source_stops_at_its_budget() {
        let templates = Templates::new(&Dataset {
            nodes: 3,
            data_bytes: 4,
            children: 0,
        });
        let left = Arc::new(AtomicU64::new(3));
        let mut a = Counted {
            inner: Mix::new(templates.mix(Workload::Durability), 1),
            left: Arc::clone(&left),
        };
        let mut b = Counted {
            inner: Mix::new(templates.mix(Workload::Durability), 2),
            left: Arc::clone(&left),
        };
        let mut out = Vec::new();
        assert_eq!(a.next(0, 1, &mut out), Some(OpKind::SetData));
        assert_eq!(b.next(1, 1, &mut out), Some(OpKind::SetData));
        assert_eq!(a.next(0, 2, &mut out), Some(OpKind::SetData));
        assert_eq!(b.next(1, 2, &mut out), None);
        assert_eq!(a.next(0, 3, &mut out), None);
    }
}
