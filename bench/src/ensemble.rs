//! `compare --ensemble`: three ferrokeeper servers against three Apache ZooKeeper 3.8
//! servers, each trio a replicated ensemble on loopback, run one after the other in the
//! same invocation (ZooKeeper first), with the same data, load and `zoo.cfg` lines.
//!
//! Rows, for each ensemble:
//!
//! * `read`, `write`, `mixed` (90 % getData, 10 % setData): the pipelined generator of
//!   [`crate::engine`] with its sessions spread round-robin over the three members (so a
//!   third of the sessions talk to the leader and the writes of the rest are forwarded),
//!   and the server CPU time per op summed over the three processes, since a replicated
//!   write costs something on every member;
//! * `failover`: under a steady setData load from writers on every member, the leader
//!   (found with `srvr`'s `Mode:` line on both kinds) is killed with SIGKILL, N times; each
//!   time is measured from the kill to the first acknowledged write that was *sent after*
//!   the kill (a write acknowledged just after the kill may have been committed before it
//!   and proves nothing). Besides the load's writers, which may be left waiting on a write
//!   the dead leader never committed, a fresh probe session on a surviving member sends
//!   one setData every [`EnsemblePlan::probe_interval_ns`], so the measurement does not
//!   depend on how long a member leaves a client hanging. The killed member is restarted
//!   on its own data, and the next kill waits until the ensemble has one leader and two
//!   followers again and writes flow.
//!
//! Both ensembles run with `forceSync=yes` (ZooKeeper's default): an ensemble exists for
//! durable writes. On a 2-core machine six server processes and the client share the
//! cores, so the figures are ratios from one run and say nothing absolute.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokeeper_net::jute::NullableBuffer;
use ferrokeeper_net::records::SetDataRequest;
use ferrokeeper_net::request::Request;

use crate::clock::now_ns;
use crate::engine::{run_pipeline, Pace, PipelineSpec, Span};
use crate::ops::{Mix, OpSource, Rng};
use crate::plan::{Plan, Profile};
use crate::server::{four_letter_word, Pair, Server, ServerError, ServerKind, ServerSettings};
use crate::setup::{count_children, SetupClient};
use crate::stats::RunStats;
use crate::units::{fmt_latency, per_op_us};
use crate::workload::{
    data_paths, payload, preload, Dataset, Templates, Workload, CHILDREN_PARENT,
};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// Voting members of each ensemble.
pub const MEMBERS: usize = 3;

/// The rows measured with the pipelined generator, in report order.
pub const ROWS: [Workload; 3] = [Workload::Read, Workload::Write, Workload::Mixed];

/// What the ensemble comparison runs.
#[derive(Debug, Clone)]
pub struct EnsemblePlan {
    /// The profile it was made from.
    pub profile: Profile,
    /// The preloaded tree (the standalone profile's).
    pub dataset: Dataset,
    /// Sessions in all (spread over the members).
    pub sessions: usize,
    /// Requests in flight per session.
    pub outstanding: usize,
    /// Client worker threads.
    pub threads: usize,
    /// Warm-up of each timed run, ns.
    pub warmup_ns: u64,
    /// Window of each timed run, ns.
    pub measure_ns: u64,
    /// Timed runs per row.
    pub rounds: usize,
    /// Unmeasured `mixed` on each ensemble before its rows (JIT warm-up), ns.
    pub global_warmup_ns: u64,
    /// Leader kills.
    pub kills: usize,
    /// Blocking setData writers per member during failover (one write in flight each).
    pub writers_per_member: usize,
    /// A writer gives a write up after this long and reconnects, ns.
    pub write_timeout_ns: u64,
    /// A probe session is started this often after a kill until a write is acknowledged.
    pub probe_interval_ns: u64,
    /// A kill whose next acknowledged write takes longer than this is a failed failover.
    pub failover_ns_max: u64,
    /// How long the restarted ensemble runs its write load before the next kill, ns.
    pub settle_ns: u64,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// Observers added to the [`MEMBERS`] voters (`server.N=...:observer`); the rows'
    /// sessions are spread over them too, and the failover series is not run.
    pub observers: usize,
    /// The rows to measure (a subset of [`ROWS`], in its order).
    pub rows: Vec<Workload>,
}

impl EnsemblePlan {
    /// Voters and observers.
    pub fn members(&self) -> usize {
        MEMBERS + self.observers
    }

    /// The plan of a profile.
    pub fn of(profile: Profile) -> EnsemblePlan {
        let base = Plan::of(profile);
        let common = EnsemblePlan {
            profile,
            dataset: base.dataset,
            sessions: 30,
            outstanding: 8,
            threads: base.shape.threads,
            warmup_ns: S,
            measure_ns: 4 * S,
            rounds: 2,
            global_warmup_ns: 5 * S,
            kills: 3,
            writers_per_member: 2,
            write_timeout_ns: 2 * S,
            probe_interval_ns: 20 * MS,
            failover_ns_max: 60 * S,
            settle_ns: 2 * S,
            session_timeout_ms: 30_000,
            observers: 0,
            rows: ROWS.to_vec(),
        };
        match profile {
            Profile::Smoke => EnsemblePlan {
                sessions: 6,
                outstanding: 4,
                warmup_ns: 100 * MS,
                measure_ns: 400 * MS,
                rounds: 1,
                global_warmup_ns: 0,
                kills: 1,
                settle_ns: 500 * MS,
                ..common
            },
            Profile::Quick => common,
            Profile::Full => EnsemblePlan {
                sessions: 60,
                warmup_ns: 3 * S,
                measure_ns: 10 * S,
                rounds: 3,
                global_warmup_ns: 20 * S,
                kills: 10,
                ..common
            },
        }
    }
}

/// What a failover series found on one ensemble.
#[derive(Debug, Clone, Default)]
pub struct Failover {
    /// Per kill: kill to the first acknowledged write sent after it, ns (`None`: none
    /// within [`EnsemblePlan::failover_ns_max`]).
    pub times_ns: Vec<Option<u64>>,
    /// The `myid` of the leader killed, per kill.
    pub leaders: Vec<usize>,
    /// Writes the load's writers got acknowledged over the whole series.
    pub acknowledged: u64,
    /// Writer connections lost, refused or given up (timeouts) over the series.
    pub reconnects: u64,
    /// Error replies to writes (e.g. a session expired or moved) over the series.
    pub error_replies: u64,
}

impl Failover {
    /// The measured times, sorted, ns.
    pub fn sorted_ns(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.times_ns.iter().flatten().copied().collect();
        v.sort_unstable();
        v
    }

    /// The nearest-rank percentile `q` (0..=1) of the measured times, ns.
    pub fn percentile_ns(&self, q: f64) -> Option<u64> {
        let v = self.sorted_ns();
        if v.is_empty() {
            return None;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// One ensemble's results.
#[derive(Debug, Clone)]
pub struct EnsembleSide {
    /// Per row of [`ROWS`] run, rounds merged.
    pub rows: Vec<(Workload, RunStats)>,
    /// The failover series (`None`: not run, the ensemble was not whole).
    pub failover: Option<Failover>,
    /// Member 1's `zoo.cfg` and command line.
    pub config: (String, String),
    /// RSS of each member after the rows, bytes.
    pub rss_bytes: Vec<Option<u64>>,
}

/// Everything `compare --ensemble` found.
#[derive(Debug, Clone)]
pub struct EnsembleResult {
    /// The plan run.
    pub plan: EnsemblePlan,
    /// Per kind (`None`: the ensemble did not start).
    pub sides: Pair<Option<EnsembleSide>>,
    /// Every error, in order.
    pub errors: Vec<String>,
    /// Wall time, s.
    pub elapsed_s: f64,
    /// The command line, for the report.
    pub command_line: String,
}

/// Where the ensembles' ports come from.
#[derive(Debug)]
pub struct Ports {
    next: Option<u16>,
    taken: Vec<u16>,
}

impl Ports {
    /// Ports counted up from `base` (each checked free), or any free ports when `None`.
    pub fn new(base: Option<u16>) -> Ports {
        Ports {
            next: base,
            taken: Vec::new(),
        }
    }

    /// A loopback port that is free now and was not handed out before.
    pub fn take(&mut self) -> io::Result<u16> {
        for _ in 0..1_000 {
            let port = match self.next.as_mut() {
                Some(next) => {
                    let p = *next;
                    *next = next
                        .checked_add(1)
                        .ok_or_else(|| io::Error::other("ran out of ports"))?;
                    p
                }
                None => TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
            };
            if !self.taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                self.taken.push(port);
                return Ok(port);
            }
        }
        Err(io::Error::other("no free loopback port found"))
    }
}

/// One ensemble: its members (a killed one is `None` until restarted) and how to start
/// each again.
struct Ensemble {
    kind: ServerKind,
    members: Vec<Option<Server>>,
    lines: Vec<Vec<(String, String)>>,
    dirs: Vec<PathBuf>,
    ports: Vec<u16>,
}

/// Which role a member's `srvr` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader,
    Follower,
    Other,
}

impl Ensemble {
    /// Writes each member's `zoo.cfg` and `myid`, spawns all three, and waits until each
    /// serves sessions (which needs a quorum, so none can before the others run).
    fn start(
        kind: ServerKind,
        settings: &ServerSettings,
        ports: &mut Ports,
        observers: usize,
    ) -> Result<Ensemble, ServerError> {
        let members = MEMBERS + observers;
        let io_err = |what: &str| {
            let what = what.to_string();
            move |source| ServerError::Io { what, source }
        };
        let mut quorum = Vec::new();
        let mut client = Vec::new();
        for id in 1..=members {
            let (c, q, e) = (
                ports.take().map_err(io_err("find a free port"))?,
                ports.take().map_err(io_err("find a free port"))?,
                ports.take().map_err(io_err("find a free port"))?,
            );
            client.push(c);
            let role = if id > MEMBERS { ":observer" } else { "" };
            quorum.push(format!("server.{id}=127.0.0.1:{q}:{e}{role}"));
        }
        let mut ens = Ensemble {
            kind,
            members: Vec::new(),
            lines: Vec::new(),
            dirs: Vec::new(),
            ports: client.clone(),
        };
        for id in 1..=members {
            let dir = settings.base_dir.join(format!("{}-ens{id}", kind.tag()));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).map_err(io_err("create the data directory"))?;
            std::fs::write(data.join("myid"), format!("{id}\n")).map_err(io_err("write myid"))?;
            let mut lines = settings.common_config();
            for (key, value) in lines.iter_mut() {
                if key == "forceSync" {
                    *value = "yes".into();
                }
            }
            lines.push(("initLimit".into(), "10".into()));
            lines.push(("syncLimit".into(), "5".into()));
            lines.push(("clientPort".into(), client[id - 1].to_string()));
            lines.push(("dataDir".into(), data.display().to_string()));
            if kind == ServerKind::Ferrokeeper {
                if let Some(shards) = settings.ferrokeeper_shards {
                    lines.push(("ferrokeeper.shards".into(), shards.to_string()));
                }
            }
            if id > MEMBERS {
                lines.push(("peerType".into(), "observer".into()));
            }
            for line in &quorum {
                if let Some((k, v)) = line.split_once('=') {
                    lines.push((k.to_string(), v.to_string()));
                }
            }
            ens.lines.push(lines);
            ens.dirs.push(dir);
        }
        for i in 0..members {
            let server =
                Server::spawn_config(kind, settings, &ens.dirs[i], ens.ports[i], &ens.lines[i])?;
            ens.members.push(Some(server));
        }
        for server in ens.members.iter_mut().flatten() {
            server.wait_serving()?;
        }
        Ok(ens)
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    fn pids(&self) -> Vec<u32> {
        self.members.iter().flatten().map(|s| s.pid()).collect()
    }

    /// The role member `i` reports in `srvr`'s `Mode:` line.
    fn role(&self, i: usize) -> Role {
        if self.members[i].is_none() {
            return Role::Other;
        }
        match four_letter_word(self.ports[i], "srvr") {
            Ok(text) => match text
                .lines()
                .find_map(|l| l.strip_prefix("Mode:"))
                .map(str::trim)
            {
                Some("leader") => Role::Leader,
                Some("follower") => Role::Follower,
                _ => Role::Other,
            },
            Err(_) => Role::Other,
        }
    }

    /// The leader's index, when exactly one voter says it leads and every other one
    /// follows.
    fn whole_leader(&self) -> Option<usize> {
        let roles: Vec<Role> = (0..MEMBERS).map(|i| self.role(i)).collect();
        let leaders: Vec<usize> = (0..MEMBERS).filter(|&i| roles[i] == Role::Leader).collect();
        let followers = roles.iter().filter(|r| **r == Role::Follower).count();
        (leaders.len() == 1 && followers == MEMBERS - 1).then(|| leaders[0])
    }

    /// Waits up to `limit_ns` for one leader and two followers.
    fn wait_whole(&self, limit_ns: u64) -> Option<usize> {
        let deadline = now_ns() + limit_ns;
        loop {
            if let Some(l) = self.whole_leader() {
                return Some(l);
            }
            if now_ns() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Member `i` started again on its own data directory and configuration.
    fn restart(&mut self, settings: &ServerSettings, i: usize) -> Result<(), ServerError> {
        let mut server = Server::spawn_config(
            self.kind,
            settings,
            &self.dirs[i],
            self.ports[i],
            &self.lines[i],
        )?;
        server.wait_serving()?;
        self.members[i] = Some(server);
        Ok(())
    }

    /// Names the members that died, with their log tails.
    fn check_alive(&mut self, what: &str, errors: &mut Vec<String>) {
        for (i, slot) in self.members.iter_mut().enumerate() {
            if let Some(server) = slot {
                if !server.is_running() {
                    errors.push(format!(
                        "{} ensemble member {} died during {what}; log tail:\n{}",
                        self.kind.name(),
                        i + 1,
                        server.log_tail(20)
                    ));
                    *slot = None;
                }
            }
        }
    }
}

/// Runs both ensembles, ZooKeeper's first, and returns what they did.
pub fn run(
    plan: &EnsemblePlan,
    settings: &ServerSettings,
    port_base: Option<u16>,
    command_line: &str,
) -> EnsembleResult {
    let started = now_ns();
    let mut ports = Ports::new(port_base);
    let mut errors = Vec::new();
    let mut sides = Pair {
        java: None,
        fk: None,
    };
    let templates = Templates::new(&plan.dataset);
    for kind in [ServerKind::Java, ServerKind::Ferrokeeper] {
        eprintln!(
            "ensemble: {} × {} ({} observers) under {}",
            plan.members(),
            kind.name(),
            plan.observers,
            settings.base_dir.display()
        );
        match Ensemble::start(kind, settings, &mut ports, plan.observers) {
            Ok(mut ens) => {
                eprintln!("  pids {:?}, client ports {:?}", ens.pids(), ens.ports);
                let side = run_side(plan, settings, &mut ens, &templates, &mut errors);
                *sides.get_mut(kind) = Some(side);
                // Dropping the ensemble kills its members before the next one starts.
            }
            Err(e) => errors.push(format!("{} ensemble did not start: {e}", kind.name())),
        }
    }
    EnsembleResult {
        plan: plan.clone(),
        sides,
        errors,
        elapsed_s: (now_ns() - started) as f64 / 1e9,
        command_line: command_line.to_string(),
    }
}

/// Preload, warm-up, the rows and the failover series on one ensemble.
fn run_side(
    plan: &EnsemblePlan,
    settings: &ServerSettings,
    ens: &mut Ensemble,
    templates: &Templates,
    errors: &mut Vec<String>,
) -> EnsembleSide {
    let kind = ens.kind;
    let addrs = ens.addrs();
    let t = now_ns();
    match preload(
        addrs[0],
        &plan.dataset,
        plan.threads,
        plan.session_timeout_ms,
    ) {
        Ok(_) => eprintln!(
            "  preloaded {} nodes through member 1 in {:.1} s",
            plan.dataset.nodes,
            (now_ns() - t) as f64 / 1e9
        ),
        Err(e) => errors.push(format!("{} ensemble: preload: {e}", kind.name())),
    }
    // Every member must hold the whole tree before reads are spread over them.
    for (i, &addr) in addrs.iter().enumerate() {
        if !wait_children(addr, plan.dataset.children, plan.session_timeout_ms) {
            errors.push(format!(
                "{} ensemble: member {} did not catch up with the preload",
                kind.name(),
                i + 1
            ));
        }
    }
    if plan.global_warmup_ns > 0 {
        eprintln!(
            "  warm-up: {} s of mixed, not measured",
            plan.global_warmup_ns / S
        );
        let _ = timed(
            plan,
            ens,
            templates,
            Workload::Mixed,
            plan.global_warmup_ns,
            100 * MS,
        );
    }
    let mut rows = Vec::new();
    for &workload in &plan.rows {
        let mut merged = RunStats::empty();
        for _ in 0..plan.rounds {
            let stats = timed(
                plan,
                ens,
                templates,
                workload,
                plan.warmup_ns,
                plan.measure_ns,
            );
            print_row(kind, workload, &stats);
            if let Some(e) = &stats.first_error {
                errors.push(format!(
                    "{} ensemble {}: {} error(s), first: {e}",
                    kind.name(),
                    workload.name(),
                    stats.errors
                ));
            }
            merged.merge_round(&stats);
        }
        ens.check_alive(workload.name(), errors);
        rows.push((workload, merged));
    }
    let rss_bytes = ens
        .members
        .iter()
        .map(|m| m.as_ref().and_then(|s| s.rss_bytes().ok()))
        .collect();
    let failover = if plan.observers > 0 || plan.kills == 0 {
        None
    } else if ens.members.iter().all(Option::is_some) {
        Some(failover(plan, settings, ens, errors))
    } else {
        errors.push(format!(
            "{} ensemble: a member died, no failover series",
            kind.name()
        ));
        None
    };
    let config = ens.members[0]
        .as_ref()
        .map(|s| (s.config.clone(), s.command.clone()))
        .unwrap_or_default();
    EnsembleSide {
        rows,
        failover,
        config,
        rss_bytes,
    }
}

/// Waits until `addr` lists `want` children of [`CHILDREN_PARENT`].
fn wait_children(addr: SocketAddr, want: usize, session_timeout_ms: i32) -> bool {
    let deadline = now_ns() + 60 * S;
    while now_ns() < deadline {
        if count_children(addr, CHILDREN_PARENT, session_timeout_ms).ok() == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// One timed closed-loop run of `workload` with sessions spread over the members.
fn timed(
    plan: &EnsemblePlan,
    ens: &Ensemble,
    templates: &Templates,
    workload: Workload,
    warmup_ns: u64,
    measure_ns: u64,
) -> RunStats {
    let addrs = ens.addrs();
    let pids = ens.pids();
    let spec = PipelineSpec {
        addr: addrs[0],
        sessions: plan.sessions,
        outstanding: plan.outstanding,
        threads: plan.threads,
        pace: Pace::Closed,
        span: Span::Timed {
            warmup_ns,
            measure_ns,
        },
        session_timeout_ms: plan.session_timeout_ms,
        drain_ns: 10 * S,
        // A CPU figure over fewer than all members would flatter the ensemble.
        server_pid: (pids.len() == plan.members()).then(|| pids[0]),
        peers: addrs[1..].to_vec(),
        peer_pids: pids.get(1..).map(<[u32]>::to_vec).unwrap_or_default(),
    };
    let mix = templates.mix(workload);
    run_pipeline(&spec, &|w| {
        Box::new(Mix::new(Arc::clone(&mix), 1 + w as u64)) as Box<dyn OpSource>
    })
    .unwrap_or_else(|e| {
        let mut s = RunStats::empty();
        s.error(|| e.to_string());
        s
    })
}

fn print_row(kind: ServerKind, workload: Workload, stats: &RunStats) {
    eprintln!(
        "  {:<8} {:<11} {:>9.0} ops/s  p50 {:>8}  p99 {:>8}  server CPU (all) {:>7} µs/op{}",
        workload.name(),
        kind.name(),
        stats.ops_per_sec(),
        fmt_latency(stats.latency.value_at_quantile(0.5)),
        fmt_latency(stats.latency.value_at_quantile(0.99)),
        stats
            .server_cpu_ns
            .map(|c| format!("{:.1}", per_op_us(c, stats.ops)))
            .unwrap_or_else(|| "?".into()),
        if stats.errors > 0 { "  ERRORS" } else { "" }
    );
}

/// What the failover writers and probes share with the thread that kills.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// When the current kill was sent (0: no kill pending).
    kill_ns: AtomicU64,
    /// The first acknowledgement of a write sent after `kill_ns` (`u64::MAX`: none yet).
    first_ack_ns: AtomicU64,
    acknowledged: AtomicU64,
    reconnects: AtomicU64,
    error_replies: AtomicU64,
    probes_running: AtomicUsize,
}

impl Shared {
    /// Records an acknowledged write sent at `sent_ns`.
    fn acked(&self, sent_ns: u64) {
        let ack = now_ns();
        let kill = self.kill_ns.load(Ordering::Acquire);
        if kill != 0 && sent_ns >= kill {
            self.first_ack_ns.fetch_min(ack, Ordering::AcqRel);
        }
    }
}

/// The setData requests writers pick from.
struct Writes {
    requests: Vec<Request>,
}

impl Writes {
    fn new(dataset: &Dataset) -> Writes {
        let data = payload(dataset.data_bytes);
        Writes {
            requests: data_paths(dataset.nodes.clamp(1, 1_000))
                .into_iter()
                .map(|path| {
                    Request::SetData(SetDataRequest {
                        path,
                        data: NullableBuffer(Some(data.clone())),
                        version: -1,
                    })
                })
                .collect(),
        }
    }
}

/// One setData writer: a session on `addrs[start]`, moving to the next member whenever
/// its connection breaks, a write times out or is refused, until `stop`.
fn writer(
    addrs: &[SocketAddr],
    start: usize,
    plan: &EnsemblePlan,
    writes: &Writes,
    shared: &Shared,
) {
    let wait = Duration::from_nanos(plan.write_timeout_ns);
    let mut at = start;
    let mut rng = Rng::new(0x5eed + start as u64);
    let mut client: Option<SetupClient> = None;
    while !shared.stop.load(Ordering::Acquire) {
        let Some(c) = client.as_mut() else {
            match SetupClient::connect_waiting(addrs[at], plan.session_timeout_ms, wait) {
                Ok(c) => client = Some(c),
                Err(_) => {
                    shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    at = (at + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            continue;
        };
        let request = &writes.requests[rng.below(writes.requests.len())];
        let sent = now_ns();
        match c.call(request) {
            Ok((h, _)) if h.err == 0 => {
                shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                shared.acked(sent);
            }
            Ok(_) => {
                shared.error_replies.fetch_add(1, Ordering::Relaxed);
                client = None;
                at = (at + 1) % addrs.len();
            }
            Err(_) => {
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                client = None;
                at = (at + 1) % addrs.len();
            }
        }
    }
    if let Some(c) = client {
        c.close();
    }
}

/// One probe: a new session on `addr`, one setData, closed.
fn probe(addr: SocketAddr, plan: &EnsemblePlan, request: &Request, shared: &Shared) {
    let sent = now_ns();
    let wait = Duration::from_nanos(plan.write_timeout_ns);
    if let Ok(mut c) = SetupClient::connect_waiting(addr, plan.session_timeout_ms, wait) {
        if matches!(c.call(request), Ok((h, _)) if h.err == 0) {
            shared.acked(sent);
        }
        c.close();
    }
    shared.probes_running.fetch_sub(1, Ordering::AcqRel);
}

/// Kills the leader `plan.kills` times under write load; see the module docs.
fn failover(
    plan: &EnsemblePlan,
    settings: &ServerSettings,
    ens: &mut Ensemble,
    errors: &mut Vec<String>,
) -> Failover {
    let kind = ens.kind;
    let addrs = ens.addrs();
    let writes = Writes::new(&plan.dataset);
    let shared = Shared {
        first_ack_ns: AtomicU64::new(u64::MAX),
        ..Shared::default()
    };
    let mut result = Failover::default();
    eprintln!(
        "  failover: {} kills of the leader under {} writers",
        plan.kills,
        plan.writers_per_member * MEMBERS
    );
    std::thread::scope(|scope| {
        for w in 0..plan.writers_per_member * MEMBERS {
            let (addrs, writes, shared) = (&addrs, &writes, &shared);
            scope.spawn(move || writer(addrs, w % MEMBERS, plan, writes, shared));
        }
        for k in 0..plan.kills {
            let Some(leader) = ready_for_kill(plan, ens, &shared) else {
                errors.push(format!(
                    "{} ensemble: no leader and two followers with writes flowing before kill {}",
                    kind.name(),
                    k + 1
                ));
                break;
            };
            let time = kill_and_wait(plan, ens, leader, &addrs, &writes, &shared, scope);
            eprintln!(
                "  kill {} of member {} (leader): next write acknowledged after {}",
                k + 1,
                leader + 1,
                time.map_or("–".into(), fmt_latency)
            );
            result.times_ns.push(time);
            result.leaders.push(leader + 1);
            if time.is_none() {
                errors.push(format!(
                    "{} ensemble: no write acknowledged within {} s of killing the leader",
                    kind.name(),
                    plan.failover_ns_max / S
                ));
            }
            if let Err(e) = ens.restart(settings, leader) {
                errors.push(format!(
                    "{} ensemble: member {} did not restart: {e}",
                    kind.name(),
                    leader + 1
                ));
                break;
            }
        }
        shared.stop.store(true, Ordering::Release);
    });
    ens.check_alive("failover", errors);
    result.acknowledged = shared.acknowledged.load(Ordering::Relaxed);
    result.reconnects = shared.reconnects.load(Ordering::Relaxed);
    result.error_replies = shared.error_replies.load(Ordering::Relaxed);
    result
}

/// Waits for one leader and two followers and for a write to get through, then lets
/// the writers run for `settle_ns`; returns the leader's index.
fn ready_for_kill(plan: &EnsemblePlan, ens: &Ensemble, shared: &Shared) -> Option<usize> {
    ens.wait_whole(plan.failover_ns_max)?;
    // On a loaded machine the writers may take a while to reconnect after a restart:
    // wait for one acknowledgement rather than demand some within the settling time.
    let before = shared.acknowledged.load(Ordering::Relaxed);
    let deadline = now_ns() + plan.failover_ns_max;
    while shared.acknowledged.load(Ordering::Relaxed) == before {
        if now_ns() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_nanos(plan.settle_ns));
    // The leader may have changed while settling; ask again.
    ens.wait_whole(plan.failover_ns_max)
}

/// Kills member `leader` with SIGKILL and measures until a write sent after the kill is
/// acknowledged, starting probes on the survivors meanwhile. Returns the time, ns.
fn kill_and_wait<'s>(
    plan: &'s EnsemblePlan,
    ens: &mut Ensemble,
    leader: usize,
    addrs: &'s [SocketAddr],
    writes: &'s Writes,
    shared: &'s Shared,
    scope: &'s std::thread::Scope<'s, '_>,
) -> Option<u64> {
    /// Probes alive at once at most: each waits up to `write_timeout_ns`.
    const PROBES_MAX: usize = 32;
    shared.first_ack_ns.store(u64::MAX, Ordering::Release);
    let kill_ns = now_ns();
    shared.kill_ns.store(kill_ns, Ordering::Release);
    if let Some(mut server) = ens.members[leader].take() {
        server.kill();
    }
    let survivors: Vec<SocketAddr> = (0..MEMBERS)
        .filter(|&i| i != leader)
        .map(|i| addrs[i])
        .collect();
    let mut n = 0usize;
    let result = loop {
        let first = shared.first_ack_ns.load(Ordering::Acquire);
        if first != u64::MAX {
            break Some(first - kill_ns);
        }
        if now_ns() > kill_ns + plan.failover_ns_max {
            break None;
        }
        if shared.probes_running.load(Ordering::Acquire) < PROBES_MAX {
            shared.probes_running.fetch_add(1, Ordering::AcqRel);
            let addr = survivors[n % survivors.len()];
            let request = &writes.requests[n % writes.requests.len()];
            scope.spawn(move || probe(addr, plan, request, shared));
            n += 1;
        }
        std::thread::sleep(Duration::from_nanos(plan.probe_interval_ns));
    };
    shared.kill_ns.store(0, Ordering::Release);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_percentiles_are_nearest_rank_over_measured_kills() {
        let f = Failover {
            times_ns: vec![Some(300), None, Some(100), Some(200)],
            ..Failover::default()
        };
        assert_eq!(f.sorted_ns(), vec![100, 200, 300]);
        assert_eq!(f.percentile_ns(0.5), Some(200));
        assert_eq!(f.percentile_ns(0.99), Some(300));
        assert_eq!(f.percentile_ns(0.0), Some(100));
        assert_eq!(Failover::default().percentile_ns(0.5), None);
    }

    #[test]
    fn ports_count_up_from_the_base_and_never_repeat() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = held.local_addr().unwrap().port();
        let mut ports = Ports::new(Some(busy));
        let a = ports.take().unwrap();
        let b = ports.take().unwrap();
        assert!(a > busy, "the busy port {busy} is skipped");
        assert!(b > a);
        let mut any = Ports::new(None);
        let taken: Vec<u16> = (0..9).map(|_| any.take().unwrap()).collect();
        let mut unique = taken.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), taken.len());
    }

    #[test]
    fn sessions_spread_round_robin_over_the_members() {
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let spec = PipelineSpec {
            addr: at(1),
            sessions: 6,
            outstanding: 1,
            threads: 1,
            pace: Pace::Closed,
            span: Span::Count,
            session_timeout_ms: 30_000,
            drain_ns: S,
            server_pid: None,
            peers: vec![at(2), at(3)],
            peer_pids: Vec::new(),
        };
        let spread: Vec<SocketAddr> = (0..6).map(|i| spec.addr_of(i)).collect();
        assert_eq!(spread, vec![at(1), at(2), at(3), at(1), at(2), at(3)]);
        assert_eq!(spec.server_cpu_ns(), None);
    }
}
