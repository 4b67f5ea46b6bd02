//! `restart`: how long each server takes from being spawned until it answers a getData
//! of a known znode, with N znodes on disk, and what the data costs in memory and on
//! disk.
//!
//! Per znode count N:
//!
//! 1. **Data.** [`zk_snapshot`](crate::zk_snapshot) writes an Apache ZooKeeper 3.8
//!    `version-2/snapshot.<zxid>` of N data znodes (`/bench/restart/p<k>/n<i>`, the
//!    profile's data size), a few sessions and their ephemerals. ZooKeeper starts from
//!    that directory. ferrokeeper gets the same data through its importer
//!    (`ferrokeeper import`), which is timed on its own and checks the file's seals, so
//!    it also validates the generator.
//! 2. **Timed restarts.** Each run starts from a fresh copy of the server's data
//!    directory (ZooKeeper rewrites its snapshot at startup, ferrokeeper may write to
//!    its log), fsynced so no writeback overlaps the start, and read once so the page
//!    cache is warm for both servers alike. The clock starts just before the process is
//!    spawned and stops when a getData of the last data znode returns its data; probe
//!    connections start every millisecond or so until then, several at once
//!    (`PROBES_IN_FLIGHT_MAX`). Servers alternate (ABBA), each run several times; the
//!    report gives median and max.
//! 3. **Memory.** On each server's first run of each N: RSS (with `RssAnon` and `RssFile`
//!    apart, since ferrokeeper may serve from an mmapped file) right after the first
//!    read, then after one pipelined getData of every data znode, so both hold all of
//!    it resident. For ZooKeeper also its live heap after a full GC (`jcmd`).
//! 4. **Disk.** ZooKeeper's snapshot as it rewrote it at startup, ferrokeeper's files
//!    under `<dataDir>/ferrokeeper/snap/`.
//!
//! ZooKeeper's heap is set per N ([`java_heap_mib`]); the main servers' `--java-heap`
//! does not apply here.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ferrokeeper_net::frame::{begin_frame, check_frame, end_frame};
use ferrokeeper_net::jute::{Buffer, Decode, Encode, Reader};
use ferrokeeper_net::records::{GetDataRequest, GetDataResponse, RequestHeader};
use ferrokeeper_net::request::Request;
use ferrokeeper_net::OpCode;

use crate::clock::now_ns;
use crate::engine::{error_name, run_pipeline, Pace, PipelineSpec, Span};
use crate::ops::{OpKind, OpSource};
use crate::plan::Profile;
use crate::server::{round_order, Pair, Server, ServerKind, ServerSettings};
use crate::stats::{process_cpu_ns, RunStats, Side};
use crate::units::{fmt_latency, per_op_us};
use crate::zk_snapshot::{write_snapshot, TreeSpec};

/// What the restart workload does in a profile.
#[derive(Debug, Clone)]
pub struct RestartPlan {
    /// Data znode counts, ascending.
    pub znode_counts: Vec<u64>,
    /// Timed restarts per server per count.
    pub runs: usize,
    /// Parents the data znodes are spread over.
    pub parents: u64,
    /// Sessions in the snapshot.
    pub sessions: u64,
    /// Ephemerals per session.
    pub ephemerals_per_session: u64,
    /// Session timeout of the snapshot's sessions, ms.
    pub session_timeout_ms: i32,
}

impl RestartPlan {
    /// The plan of `profile`.
    pub fn of(profile: Profile) -> RestartPlan {
        let (znode_counts, runs) = match profile {
            Profile::Smoke => (vec![200, 2_000], 1),
            Profile::Quick => (vec![100_000, 1_000_000], 3),
            Profile::Full => (vec![100_000, 1_000_000, 10_000_000], 3),
        };
        RestartPlan {
            znode_counts,
            runs,
            parents: 8,
            sessions: 4,
            ephemerals_per_session: 5,
            session_timeout_ms: 30_000,
        }
    }
}

/// Java live heap per data znode of this workload's tree, besides the data itself:
/// measured 475 B per znode of 128 B at 1M (`jcmd GC.run`, the report's live-heap
/// column), rounded up.
const JAVA_LIVE_HEAP_BYTES_PER_ZNODE: u64 = 400;
/// `-Xmx` over the live heap: G1 needs room to collect while the snapshot loads.
const JAVA_HEAP_HEADROOM: u64 = 2;
/// The smallest `-Xmx` used (the main servers' default).
const JAVA_HEAP_MIB_MIN: u64 = 1024;

/// ZooKeeper's `-Xmx` for `znodes` data znodes of `data_bytes`, MiB: twice the live
/// heap they need, at least 1 GiB (1M of 128 B: 1 GiB; 10M of 256 B: 12.2 GiB).
pub fn java_heap_mib(znodes: u64, data_bytes: usize) -> u64 {
    let per_znode = JAVA_LIVE_HEAP_BYTES_PER_ZNODE + data_bytes as u64;
    (znodes * per_znode * JAVA_HEAP_HEADROOM)
        .div_ceil(1 << 20)
        .max(JAVA_HEAP_MIB_MIN)
}

/// Memory of a process from `/proc/<pid>/status`, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`.
    pub rss: u64,
    /// `RssAnon`: heap, stacks, anonymous maps.
    pub anon: u64,
    /// `RssFile`: resident pages of mapped files (binary, libraries, mmapped data).
    pub file: u64,
}

/// Reads [`Memory`] of `pid`.
pub fn read_memory(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str| -> io::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or_else(|| io::Error::other(format!("no {key} in /proc/{pid}/status")))?;
        let kb: u64 = line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("bad line {line:?}")))?;
        Ok(kb * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// One timed restart.
#[derive(Debug, Clone)]
pub struct RestartRun {
    /// Spawn to the first getData answered with the known znode's data, ns.
    pub restart_ns: u64,
    /// CPU time the server used until then (all threads), ns.
    pub cpu_ns: Option<u64>,
    /// Connection attempts the probe made.
    pub probes: u32,
    /// Memory right after the first read.
    pub after_first_read: Option<Memory>,
    /// What the server's own log says loading took, ms: ZooKeeper's "Snapshot loaded
    /// in", ferrokeeper's "recovered:" line's `elapsed` (snapshot load and log replay).
    pub logged_load_ms: Option<f64>,
    /// ZooKeeper only: its log's "Snapshot taken in", ms, the snapshot
    /// `ZooKeeperServer.loadData` writes before it serves.
    pub logged_snapshot_ms: Option<f64>,
}

/// The importer's run.
#[derive(Debug, Clone)]
pub struct Import {
    /// Wall time, ns.
    pub ns: u64,
    /// Peak RSS (`ru_maxrss`), bytes.
    pub peak_rss: u64,
    /// Its last line of output.
    pub summary: String,
}

/// Everything measured at one znode count.
#[derive(Debug, Clone)]
pub struct RestartPoint {
    /// Data znodes.
    pub znodes: u64,
    /// All znodes of the tree (parents, ephemerals and system nodes too).
    pub znodes_total: u64,
    /// ZooKeeper's `-Xmx`.
    pub java_heap: String,
    /// Writing the ZooKeeper snapshot took this long, ns.
    pub generate_ns: u64,
    /// The generated snapshot's size.
    pub generated_bytes: u64,
    /// The import into ferrokeeper (`None` if it failed).
    pub import: Option<Import>,
    /// Snapshot bytes on disk: ZooKeeper's as it rewrote it at startup, ferrokeeper's
    /// snapshot directory.
    pub snapshot_bytes: Pair<Option<u64>>,
    /// The timed restarts, in the order run.
    pub runs: Pair<Vec<RestartRun>>,
    /// The getData pass over every data znode after the first restart.
    pub pass: Pair<RunStats>,
    /// Memory after that pass.
    pub after_pass: Pair<Option<Memory>>,
    /// ZooKeeper's live heap after the pass and a full GC, bytes.
    pub java_live_heap: Option<u64>,
}

impl RestartPoint {
    /// Median and max restart time of `kind`, ns.
    pub fn restart_ns(&self, kind: ServerKind) -> Option<(u64, u64)> {
        let mut t: Vec<u64> = self.runs.get(kind).iter().map(|r| r.restart_ns).collect();
        t.sort_unstable();
        let max = *t.last()?;
        Some((median(&t), max))
    }

    /// The median over `kind`'s runs of one of their logged times.
    pub fn logged_ms(
        &self,
        kind: ServerKind,
        which: impl Fn(&RestartRun) -> Option<f64>,
    ) -> Option<f64> {
        let mut v: Vec<f64> = self.runs.get(kind).iter().filter_map(which).collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    }
}

fn median(sorted: &[u64]) -> u64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// The restart workload's results.
#[derive(Debug, Clone)]
pub struct RestartResult {
    /// The plan run.
    pub plan: RestartPlan,
    /// Data bytes per znode.
    pub data_bytes: usize,
    /// Per znode count.
    pub points: Vec<RestartPoint>,
}

impl RestartResult {
    /// The summary table's row: the full pass at the largest count.
    pub fn sides(&self) -> Pair<Side> {
        let side = |kind: ServerKind| match self.points.last() {
            Some(p) => Side {
                stats: p.pass.get(kind).clone(),
                rss_bytes: p.after_pass.get(kind).map(|m| m.rss),
            },
            None => Side {
                stats: RunStats::empty(),
                rss_bytes: None,
            },
        };
        Pair {
            java: side(ServerKind::Java),
            fk: side(ServerKind::Ferrokeeper),
        }
    }
}

/// Where and with what the restart workload runs.
pub struct RestartSetup<'a> {
    /// Both servers' settings; `base_dir/restart` holds the data.
    pub settings: &'a ServerSettings,
    /// Data bytes per znode.
    pub data_bytes: usize,
    /// Client worker threads of the full pass.
    pub threads: usize,
    /// Keep the generated and imported data afterwards.
    pub keep_dirs: bool,
}

/// Runs the restart workload; every failure is pushed onto `errors`.
pub fn run(
    plan: &RestartPlan,
    setup: &RestartSetup<'_>,
    errors: &mut Vec<String>,
) -> RestartResult {
    let mut points = Vec::new();
    for (index, &znodes) in plan.znode_counts.iter().enumerate() {
        let dir = setup
            .settings
            .base_dir
            .join("restart")
            .join(format!("n{znodes}"));
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(p) = run_point(plan, setup, znodes, index, &dir, errors) {
            points.push(p);
        }
        if !setup.keep_dirs {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    RestartResult {
        plan: plan.clone(),
        data_bytes: setup.data_bytes,
        points,
    }
}

fn run_point(
    plan: &RestartPlan,
    setup: &RestartSetup<'_>,
    znodes: u64,
    index: usize,
    dir: &Path,
    errors: &mut Vec<String>,
) -> Option<RestartPoint> {
    let spec = Arc::new(TreeSpec {
        znodes,
        parents: plan.parents,
        data_bytes: setup.data_bytes,
        sessions: plan.sessions,
        ephemerals_per_session: plan.ephemerals_per_session,
        session_timeout_ms: plan.session_timeout_ms,
    });
    let zk_src = dir.join("zk-src");
    let fk_src = dir.join("fk-src");
    let t = now_ns();
    let written = match write_snapshot(&zk_src, &spec) {
        Ok(w) => w,
        Err(e) => {
            errors.push(format!(
                "restart n={znodes}: writing the ZooKeeper snapshot: {e}"
            ));
            return None;
        }
    };
    let generate_ns = now_ns() - t;
    eprintln!(
        "  restart n={znodes}: wrote {} ({:.1} MiB) in {:.1} s",
        written.path.display(),
        written.bytes as f64 / (1 << 20) as f64,
        generate_ns as f64 / 1e9
    );
    let import = match run_import(&setup.settings.ferrokeeper_bin, &zk_src, &fk_src, dir) {
        Ok(i) => {
            eprintln!(
                "  restart n={znodes}: ferrokeeper import {:.2} s, peak RSS {:.0} MiB: {}",
                i.ns as f64 / 1e9,
                i.peak_rss as f64 / (1 << 20) as f64,
                i.summary
            );
            if !i
                .summary
                .contains(&format!(" {} znodes", spec.znodes_total()))
            {
                errors.push(format!(
                    "restart n={znodes}: the import does not report the {} znodes written: {}",
                    spec.znodes_total(),
                    i.summary
                ));
            }
            Some(i)
        }
        Err(e) => {
            errors.push(format!(
                "restart n={znodes}: ferrokeeper import failed: {e}"
            ));
            None
        }
    };
    let java_heap = format!("{}m", java_heap_mib(znodes, setup.data_bytes));
    let mut settings = setup.settings.clone();
    settings.java_heap = java_heap.clone();
    let mut point = RestartPoint {
        znodes,
        znodes_total: spec.znodes_total(),
        java_heap,
        generate_ns,
        generated_bytes: written.bytes,
        snapshot_bytes: Pair {
            java: None,
            fk: import
                .as_ref()
                .and_then(|_| dir_bytes(&fk_src.join("ferrokeeper").join("snap")).ok()),
        },
        import,
        runs: Pair {
            java: Vec::new(),
            fk: Vec::new(),
        },
        pass: Pair {
            java: RunStats::empty(),
            fk: RunStats::empty(),
        },
        after_pass: Pair {
            java: None,
            fk: None,
        },
        java_live_heap: None,
    };
    let mut failed = Pair {
        java: false,
        fk: point.import.is_none(),
    };
    for round in 0..plan.runs {
        for kind in round_order(round + index) {
            if *failed.get(kind) {
                continue;
            }
            let src = match kind {
                ServerKind::Java => &zk_src,
                ServerKind::Ferrokeeper => &fk_src,
            };
            let first = point.runs.get(kind).is_empty();
            let run_dir = dir.join(format!("run-{}", kind.tag()));
            let r = timed_restart(kind, &settings, src, &run_dir, &spec);
            match r {
                Ok((server, run)) => {
                    eprintln!(
                        "  restart n={znodes} {:<11} {:>10}  cpu {:>8}  rss {:>8.1} MiB",
                        kind.name(),
                        fmt_latency(run.restart_ns),
                        run.cpu_ns.map_or("?".into(), fmt_latency),
                        run.after_first_read
                            .map_or(f64::NAN, |m| m.rss as f64 / (1 << 20) as f64),
                    );
                    point.runs.get_mut(kind).push(run);
                    if kind == ServerKind::Java && point.snapshot_bytes.java.is_none() {
                        point.snapshot_bytes.java = newest_snapshot_bytes(&run_dir.join("data"));
                    }
                    if first {
                        full_pass(&server, &spec, setup.threads, &mut point, errors);
                    }
                    drop(server);
                }
                Err(e) => {
                    errors.push(format!("restart n={znodes} on {}: {e}", kind.name()));
                    *failed.get_mut(kind) = true;
                }
            }
            let _ = std::fs::remove_dir_all(&run_dir);
        }
    }
    Some(point)
}

/// The pass over every data znode, and the memory readings around it.
fn full_pass(
    server: &Server,
    spec: &Arc<TreeSpec>,
    threads: usize,
    point: &mut RestartPoint,
    errors: &mut Vec<String>,
) {
    let kind = server.kind;
    let pipeline = PipelineSpec {
        addr: server.addr(),
        sessions: 8,
        outstanding: 32,
        threads,
        pace: Pace::Closed,
        span: Span::Count,
        session_timeout_ms: 30_000,
        drain_ns: 60_000_000_000,
        server_pid: Some(server.pid()),
        peers: Vec::new(),
        peer_pids: Vec::new(),
    };
    let next = Arc::new(AtomicU64::new(0));
    let stats = match run_pipeline(&pipeline, &|_| {
        Box::new(FullPass {
            spec: Arc::clone(spec),
            next: Arc::clone(&next),
            path: String::new(),
        }) as Box<dyn OpSource>
    }) {
        Ok(s) => s,
        Err(e) => {
            let mut s = RunStats::empty();
            s.error(|| e.to_string());
            s
        }
    };
    if let Some(e) = &stats.first_error {
        errors.push(format!(
            "restart n={}: getData pass on {}: {} error(s), first: {e}",
            spec.znodes,
            kind.name(),
            stats.errors
        ));
    } else if stats.ops != spec.znodes {
        errors.push(format!(
            "restart n={}: getData pass on {} answered {} of {} reads",
            spec.znodes,
            kind.name(),
            stats.ops,
            spec.znodes
        ));
    }
    let mem = read_memory(server.pid()).ok();
    eprintln!(
        "  restart n={} {:<11} pass {:>10.0} getData/s  server {:>6} µs/op  rss {:.1} MiB (anon {:.1}, file {:.1})",
        spec.znodes,
        kind.name(),
        stats.ops_per_sec(),
        stats
            .server_cpu_ns
            .map_or("?".into(), |c| format!("{:.1}", per_op_us(c, stats.ops))),
        mem.map_or(f64::NAN, |m| m.rss as f64 / (1 << 20) as f64),
        mem.map_or(f64::NAN, |m| m.anon as f64 / (1 << 20) as f64),
        mem.map_or(f64::NAN, |m| m.file as f64 / (1 << 20) as f64),
    );
    *point.pass.get_mut(kind) = stats;
    *point.after_pass.get_mut(kind) = mem;
    if kind == ServerKind::Java {
        point.java_live_heap = server.java_live_heap_bytes();
    }
}

/// Copies `src` into `run_dir/data`, starts `kind` there and probes until the known
/// znode reads back. Returns the running server.
fn timed_restart(
    kind: ServerKind,
    settings: &ServerSettings,
    src: &Path,
    run_dir: &Path,
    spec: &TreeSpec,
) -> Result<(Server, RestartRun), String> {
    let _ = std::fs::remove_dir_all(run_dir);
    let data = run_dir.join("data");
    copy_tree(src, &data).map_err(|e| format!("copying {}: {e}", src.display()))?;
    warm(&data).map_err(|e| format!("reading {}: {e}", data.display()))?;
    let path: Arc<str> = spec.path(spec.known_index()).into();
    let mut want = Vec::new();
    spec.data(spec.known_index(), &mut want);
    let want: Arc<[u8]> = want.into();
    let deadline_ns = START_NS_MAX_BASE + spec.znodes * START_NS_PER_ZNODE;

    let t0 = now_ns();
    let mut server = Server::spawn(kind, settings, run_dir).map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel::<Result<u64, Probe>>();
    let (mut probes, mut in_flight) = (0u32, 0usize);
    let mut next_probe_ns = t0;
    let mut last = String::from("no probe answered yet");
    let done_ns = loop {
        let now = now_ns();
        if in_flight < PROBES_IN_FLIGHT_MAX && now >= next_probe_ns {
            let (tx, addr, path, want) = (tx.clone(), server.addr(), path.clone(), want.clone());
            std::thread::spawn(move || {
                let _ = tx.send(first_read(addr, &path, &want));
            });
            probes += 1;
            in_flight += 1;
            next_probe_ns = now + probe_interval_ns(now - t0);
        }
        match rx.recv_timeout(Duration::from_micros(PROBE_WAKE_US)) {
            Ok(Ok(at)) => break at,
            Ok(Err(Probe::NotYet(why))) => {
                in_flight -= 1;
                last = why;
            }
            Ok(Err(Probe::Wrong(e))) => {
                return Err(format!("{} served, but {e}", kind.name()));
            }
            Err(_) => {}
        }
        if !server.is_running() {
            return Err(format!(
                "exited while starting; log tail:\n{}",
                server.log_tail(20)
            ));
        }
        if now_ns() - t0 > deadline_ns {
            return Err(format!(
                "no answer to getData {path} after {} s (last try: {last}); log tail:\n{}",
                deadline_ns / 1_000_000_000,
                server.log_tail(20)
            ));
        }
    };
    // Probes still waiting (a connection the server never answers) end on their own
    // read timeout; their results go nowhere.
    let restart_ns = done_ns - t0;
    let cpu_ns = process_cpu_ns(server.pid()).ok();
    let after_first_read = read_memory(server.pid()).ok();
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let (logged_load_ms, logged_snapshot_ms) = match kind {
        ServerKind::Java => (
            logged_ms_after(&log, "Snapshot loaded in "),
            logged_ms_after(&log, "Snapshot taken in "),
        ),
        ServerKind::Ferrokeeper => (ferrokeeper_recovered_ms(&log), None),
    };
    Ok((
        server,
        RestartRun {
            restart_ns,
            cpu_ns,
            probes,
            after_first_read,
            logged_load_ms,
            logged_snapshot_ms,
        },
    ))
}

/// Probe connections open at once. Each probe is a thread with its own connection, so
/// one the server accepts but never answers does not hold up the next: ZooKeeper 3.8
/// leaves every connection that arrives in a window of about 40 ms, some 0.3 s after
/// spawn (port bound, connections not yet served), unanswered until its 10 s
/// sessionless-connection timeout closes it. At one probe per millisecond that is a
/// few dozen stuck probes.
const PROBES_IN_FLIGHT_MAX: usize = 128;
/// How often the prober wakes to start a probe or collect an answer, µs.
const PROBE_WAKE_US: u64 = 200;

/// Time between probe starts after `elapsed_ns` of waiting: 1 ms at first, then 0.5 %
/// of the time waited so far (at most 20 ms), so the measurement's resolution stays
/// under a percent while a multi-second start is not hammered with connections that
/// take CPU from the server being timed.
fn probe_interval_ns(elapsed_ns: u64) -> u64 {
    (elapsed_ns / 200).clamp(1_000_000, 20_000_000)
}

/// How long a restart may take: this, plus [`START_NS_PER_ZNODE`] per znode.
const START_NS_MAX_BASE: u64 = 120_000_000_000;
/// Allowance per znode (60 s per million).
const START_NS_PER_ZNODE: u64 = 60_000;

/// Why a probe did not succeed.
#[derive(Debug)]
enum Probe {
    /// Not serving yet: refused, closed, handshake refused. Try again.
    NotYet(String),
    /// Serving, but the answer is wrong: a failure, not a wait.
    Wrong(String),
}

/// Connects, handshakes, reads `path` and checks its data is `want`; closes the session.
/// Returns when the read's answer arrived ([`now_ns`]).
fn first_read(addr: SocketAddr, path: &str, want: &[u8]) -> Result<u64, Probe> {
    let not_yet = |e: io::Error| Probe::NotYet(e.to_string());
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(not_yet)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(not_yet)?;
    s.set_nodelay(true).map_err(not_yet)?;
    let mut out = Vec::new();
    ferrokeeper_net::client::encode_connect(
        &ferrokeeper_net::request::Connect {
            request: ferrokeeper_net::records::ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30_000,
                session_id: 0,
                passwd: Buffer(vec![0; 16]),
            },
            read_only: false,
            has_read_only: true,
        },
        &mut out,
    );
    s.write_all(&out).map_err(not_yet)?;
    let mut buf = Vec::new();
    let hello = read_frame(&mut s, &mut buf).map_err(not_yet)?;
    let reply = ferrokeeper_net::response::ConnectReply::decode(&hello)
        .map_err(|e| Probe::NotYet(format!("handshake: {e}")))?;
    if reply.response.session_id == 0 {
        return Err(Probe::NotYet("session refused".into()));
    }
    // Only now the read: a server answers the handshake once it serves the tree.
    out.clear();
    Request::GetData(GetDataRequest {
        path: path.to_string(),
        watch: false,
    })
    .encode_frame(1, &mut out);
    s.write_all(&out).map_err(not_yet)?;
    let payload = read_frame(&mut s, &mut buf).map_err(not_yet)?;
    let answered_ns = now_ns();
    let reply = ferrokeeper_net::response::Reply::decode(&payload)
        .map_err(|e| Probe::Wrong(format!("getData {path}: bad reply: {e}")))?;
    if reply.header.err != 0 {
        return Err(Probe::Wrong(format!(
            "getData {path} answered {}",
            error_name(reply.header.err)
        )));
    }
    let data = GetDataResponse::decode(&mut Reader::new(reply.body))
        .map_err(|e| Probe::Wrong(format!("getData {path}: bad response: {e}")))?
        .data;
    if data.0.as_deref() != Some(want) {
        return Err(Probe::Wrong(format!(
            "getData {path} returned {:?}, expected {:?}",
            data.0.as_deref().map(String::from_utf8_lossy),
            String::from_utf8_lossy(want)
        )));
    }
    // Close the session so it does not linger into the pass (best effort).
    out.clear();
    Request::CloseSession.encode_frame(2, &mut out);
    if s.write_all(&out).is_ok() {
        let _ = read_frame(&mut s, &mut buf);
    }
    Ok(answered_ns)
}

fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    loop {
        if let Some(len) =
            check_frame(buf, crate::conn::REPLY_BYTES_MAX).map_err(io::Error::other)?
        {
            let payload = buf[4..4 + len].to_vec();
            buf.drain(..4 + len);
            return Ok(payload);
        }
        let mut chunk = [0u8; 16 << 10];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// getData of every data znode once, in index order, shared by all workers.
struct FullPass {
    spec: Arc<TreeSpec>,
    next: Arc<AtomicU64>,
    path: String,
}

impl OpSource for FullPass {
    fn next(&mut self, _session: usize, xid: i32, out: &mut Vec<u8>) -> Option<OpKind> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.spec.znodes {
            return None;
        }
        self.spec.write_path(i, &mut self.path);
        append_get_data(xid, &self.path, out);
        Some(OpKind::GetData)
    }
}

/// Appends a framed getData (no watch) of `path` under `xid`.
fn append_get_data(xid: i32, path: &String, out: &mut Vec<u8>) {
    let at = begin_frame(out);
    RequestHeader {
        xid,
        r#type: OpCode::GetData.code(),
    }
    .encode(out);
    path.encode(out);
    false.encode(out);
    end_frame(out, at);
}

/// Runs `ferrokeeper import` from `zk` into `out`; its output goes to `dir/import.log`.
fn run_import(bin: &Path, zk: &Path, out: &Path, dir: &Path) -> Result<Import, String> {
    let log_path = dir.join("import.log");
    let log = File::create(&log_path).map_err(|e| format!("create import.log: {e}"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(bin);
    command
        .arg("import")
        .arg("--zookeeper-data-dir")
        .arg(zk)
        .arg("--data-dir")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let t0 = now_ns();
    let child = command
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 writes into both out-params.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4, not Child::wait: it also returns the child's peak RSS.
    // SAFETY: the pid is our own child's, not yet waited for; the pointers are valid.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let ns = now_ns() - t0;
    if rc < 0 {
        return Err(format!("wait4: {}", io::Error::last_os_error()));
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let how = if libc::WIFEXITED(status) {
            format!("exit code {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        // A panic's message and place say more than the end of its backtrace.
        let panic = lines.iter().position(|l| l.contains("panicked at"));
        let shown = match panic {
            Some(at) => &lines[at..(at + 2).min(lines.len())],
            None => &lines[lines.len().saturating_sub(10)..],
        };
        return Err(format!(
            "{how} after {:.1} s, peak RSS {} MiB ({}):\n{}",
            ns as f64 / 1e9,
            usage.ru_maxrss.max(0) / 1024,
            log_path.display(),
            shown.join("\n")
        ));
    }
    Ok(Import {
        ns,
        peak_rss: usage.ru_maxrss.max(0) as u64 * 1024,
        summary: strip_ansi(lines.last().copied().unwrap_or("")),
    })
}

/// Copies the files under `src` into `dst` (created), fsyncing each, so no writeback
/// of the copy overlaps the timed start.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
            File::open(&to)?.sync_all()?;
        }
    }
    Ok(())
}

/// Reads every file under `dir` once, so both servers start with their data in the
/// page cache.
fn warm(dir: &Path) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            warm(&entry.path())?;
        } else {
            let mut f = File::open(entry.path())?;
            while f.read(&mut buf)? > 0 {}
        }
    }
    Ok(())
}

/// Bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

/// The size of the newest `snapshot.*` in `data_dir/version-2`.
fn newest_snapshot_bytes(data_dir: &Path) -> Option<u64> {
    std::fs::read_dir(data_dir.join("version-2"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let zxid = i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            Some((zxid, e.metadata().ok()?.len()))
        })
        .max()
        .map(|(_, len)| len)
}

/// The number of ms after the last `marker` in a ZooKeeper log ("... in 1234 ms").
fn logged_ms_after(log: &str, marker: &str) -> Option<f64> {
    let at = log.rfind(marker)? + marker.len();
    let digits: String = log[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// ferrokeeper's "recovered" log line's `elapsed=<Duration as Debug>`, ms.
fn ferrokeeper_recovered_ms(log: &str) -> Option<f64> {
    let line = strip_ansi(log.lines().rev().find(|l| l.contains("recovered:"))?);
    let at = line.find(" elapsed=")? + " elapsed=".len();
    parse_debug_duration_ms(line[at..].split_whitespace().next()?)
}

/// `Duration`'s Debug form ("1.5s", "12.3ms", "450µs", "80ns") in ms.
fn parse_debug_duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "s" => v * 1e3,
        "ms" => v,
        "µs" | "us" => v / 1e3,
        "ns" => v / 1e6,
        _ => return None,
    })
}

/// `s` without ANSI escape sequences (tracing colours its output even into a file).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (0x40..=0x7e).
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Template;

    #[test]
    fn get_data_frame_matches_the_full_encoder() {
        let path = "/bench/restart/p3/n11".to_string();
        let mut want = Vec::new();
        Template::new(&Request::GetData(GetDataRequest {
            path: path.clone(),
            watch: false,
        }))
        .append(42, &mut want);
        let mut got = Vec::new();
        append_get_data(42, &path, &mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn log_parsing() {
        let zk = "2025 INFO Snapshot loaded in 1234 ms, highest zxid is 0x1\n... Snapshot taken in 56 ms\n";
        assert_eq!(logged_ms_after(zk, "Snapshot loaded in "), Some(1234.0));
        assert_eq!(logged_ms_after(zk, "Snapshot taken in "), Some(56.0));
        let fk = "\u{1b}[2m2025\u{1b}[0m INFO recovered: snapshot plus transaction log (restart time) \u{1b}[3msnapshot_elapsed\u{1b}[0m\u{1b}[2m=\u{1b}[0m1.5ms \u{1b}[3melapsed\u{1b}[0m\u{1b}[2m=\u{1b}[0m2.25s\n";
        assert_eq!(ferrokeeper_recovered_ms(fk), Some(2250.0));
        assert_eq!(parse_debug_duration_ms("450µs"), Some(0.45));
    }

    #[test]
    fn java_heap_grows_with_the_tree() {
        assert_eq!(java_heap_mib(1_000, 128), JAVA_HEAP_MIB_MIN);
        assert_eq!(java_heap_mib(1_000_000, 128), JAVA_HEAP_MIB_MIN);
        assert_eq!(java_heap_mib(10_000_000, 256), 12_513);
        assert_eq!(median(&[1, 2, 3, 10]), 2);
        assert_eq!(median(&[1, 5, 9]), 5);
    }
}
