//! One seed's run: the scheduler that steps members, network, disks and clients, injects
//! faults, heals, and checks (see the [module](super) documentation).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::records::{Id, ReconfigRequest};
use ferrokeeper_net::request::{CreateOp, Request};
use ferrokeeper_storage::backend::sim::{Prng, SimFaults};
use ferrokeeper_storage::log::LogOptions;

use super::clients::{self, Ack, Client, Session};
use super::history::History;
use super::member::{Member, MemberConfig};
use super::net::{Frame, Net, NetFaults};
use super::{Failure, Settings, Summary, LIVENESS_MS, STEP_MS, TICK_MS};
use crate::core::acl::AuthIds;
use crate::core::apply::Outcome;
use crate::core::sequencer::{CommitRequest, CoreConfig, Origin, ReplyMsg};
use crate::core::state::DataState;
use crate::replica::membership::Membership;
use crate::replica::node::{Output, Role};

const START_MS: i64 = 1_700_000_000_000;
/// A client gives up on a handshake or a write not answered within this long, and
/// reconnects elsewhere (as a ZooKeeper client's request timeout would).
const CLIENT_PATIENCE_MS: i64 = 4_000;
/// Clients touch their session this often.
const TOUCH_MS: i64 = 1_000;
/// Writes a client keeps in flight at most.
const PIPELINE_MAX: usize = 3;

type Fail = String;

struct Run {
    seed: u64,
    settings: Settings,
    step: u64,
    now: i64,
    rng: Prng,
    cfg: MemberConfig,
    members: BTreeMap<u64, Member>,
    net: Net,
    clients: Vec<Client>,
    /// (member, origin) → client.
    conns: BTreeMap<(u64, u64), usize>,
    /// When each client's connection or oldest pending request started, by client.
    waiting_since: BTreeMap<usize, i64>,
    next_conn: u64,
    history: History,
    acks: Vec<Ack>,
    auth: Arc<AuthIds>,
    /// A super user's ids, for `reconfig`.
    super_auth: Arc<AuthIds>,
    /// Faults are injected (false once healing starts).
    chaos: bool,
    /// Clients send writes (false while settling).
    writing: bool,
    /// Client 0 sends the liveness probe instead of its writes.
    probing: bool,
    /// Client 0 brings every server back into the membership instead of writing.
    rejoining: bool,
    heal_at: Option<i64>,
    /// The liveness probe's xid and acknowledgment, once sent / answered.
    probe: (Option<i32>, bool),
    roles: BTreeMap<u64, Role>,
    /// When each member ticks next.
    next_tick: BTreeMap<u64, i64>,
    summary: Summary,
}

/// Runs `seed` with `settings`.
///
/// # Errors
/// The first failed check, with the seed and step.
pub fn run_seed(seed: u64, settings: Settings) -> Result<Summary, Failure> {
    let mut run = Run::new(seed, settings);
    let result = run.run();
    let step = run.step;
    result.map_err(|message| Failure {
        seed,
        nodes: settings.nodes,
        step,
        message,
    })?;
    let mut s = run.summary;
    s.seeds = 1;
    s.steps = run.step;
    s.frames = run.net.counters;
    s.txns = run.history.txns.len() as u64;
    Ok(s)
}

impl Run {
    fn new(seed: u64, settings: Settings) -> Run {
        let mut rng = Prng::new(seed ^ (settings.nodes << 56));
        let ids: Vec<u64> = (1..=settings.nodes).collect();
        let batch_bytes_max = 64 * 1024;
        let log = LogOptions {
            segment_bytes: (ferrokeeper_storage::log::format::HEADER_BYTES
                + batch_bytes_max
                + rng.range(0, 64 * 1024) as usize) as u64,
            batch_bytes_max,
            record_bytes_max: batch_bytes_max
                - ferrokeeper_storage::log::format::FRAME_HEADER_BYTES,
            ..LogOptions::default()
        };
        let config_text: Vec<u8> = ids
            .iter()
            .map(|id| format!("server.{id}=127.0.0.{id}:2888:3888:participant;0.0.0.0:2181\n"))
            .collect::<String>()
            .into_bytes();
        let core = CoreConfig {
            tick_time_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40_000,
            extended_types: false,
            skip_acl: false,
            enforce_quota: false,
            acl_providers: Default::default(),
            server_id: 0,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            reconfig_enabled: true,
            stats: Default::default(),
            container_max_never_used_ms: 0,
        };
        let disk_max = rng.range(0, 30);
        let cfg = MemberConfig {
            core,
            log,
            config_text: config_text.clone(),
            disk_delay_ms: (0, disk_max),
            trace: settings.trace,
            read_only_after_ms: rng.chance(500_000).then(|| rng.range(500, 3000) as i64),
        };
        let faults = NetFaults {
            loss_per_million: [0, 1_000, 10_000, 50_000][rng.below(4) as usize],
            dup_per_million: [0, 1_000, 20_000][rng.below(3) as usize],
            delay_ms: (1, rng.range(2, 40)),
        };
        let mut fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), false);
        fresh.set_ensemble_config(&config_text);
        let clients = (0..rng.range(2, 6)).map(|_| Client::default()).collect();
        Run {
            seed,
            settings,
            step: 0,
            now: START_MS,
            members: ids.iter().map(|id| (*id, Member::new(*id, seed))).collect(),
            net: Net::new(&ids, faults),
            rng,
            cfg,
            clients,
            conns: BTreeMap::new(),
            waiting_since: BTreeMap::new(),
            next_conn: 1,
            history: History::new(fresh),
            acks: Vec::new(),
            auth: Arc::new(AuthIds::from_ip_id("127.0.0.1".into())),
            super_auth: Arc::new({
                let mut a = AuthIds::from_ip_id("127.0.0.1".into());
                a.add(Id {
                    scheme: crate::core::acl::SUPER.into(),
                    id: String::new(),
                });
                a
            }),
            chaos: true,
            writing: true,
            probing: false,
            rejoining: false,
            heal_at: None,
            probe: (None, false),
            roles: BTreeMap::new(),
            next_tick: BTreeMap::new(),
            summary: Summary::default(),
        }
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.settings.trace {
            eprintln!(
                "[seed {} step {} t+{}ms] {what}",
                self.seed,
                self.step,
                self.now - START_MS
            );
        }
    }

    fn run(&mut self) -> Result<(), Fail> {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.start(id)?;
        }
        for _ in 0..self.settings.steps {
            self.one_step()?;
        }
        self.heal();
        self.probing = true;
        // Liveness: a leader, and a write that commits, within bounded simulated time.
        let started = self.now;
        while !self.probe.1 {
            if self.now - started > LIVENESS_MS {
                return Err(format!(
                    "liveness: {} ms after healing, no write committed (roles {:?})",
                    self.now - started,
                    self.roles
                ));
            }
            self.one_step()?;
        }
        self.trace(format_args!(
            "liveness: probe committed after {} ms",
            self.now - started
        ));
        // Every server is a voter again (it may have been left out), so that all of
        // them converge below.
        self.probing = false;
        self.rejoining = true;
        let started = self.now;
        // A change asked before healing may still commit (and leave a server out).
        while !self.missing_voters().is_empty() || self.reconfig_in_flight() {
            if self.now - started > LIVENESS_MS {
                return Err(format!(
                    "membership: {} ms after healing, servers {:?} are still not voters (roles {:?})",
                    self.now - started,
                    self.missing_voters(),
                    self.roles
                ));
            }
            self.one_step()?;
        }
        self.rejoining = false;
        // Convergence: every member applies the whole history.
        self.writing = false;
        let started = self.now;
        loop {
            if self.converged() {
                break;
            }
            if self.now - started > LIVENESS_MS {
                let zxids: Vec<_> = self
                    .members
                    .values()
                    .map(|m| (m.id, m.applied_zxid, m.is_up()))
                    .collect();
                return Err(format!(
                    "members did not converge within {LIVENESS_MS} ms after healing: (id, zxid, up) {zxids:?}, history to 0x{:x}",
                    self.history.contiguous()
                ));
            }
            self.one_step()?;
        }
        self.final_checks()
    }

    /// Every member up, its log work done, at the history's last zxid.
    fn converged(&self) -> bool {
        let top = self.history.contiguous();
        self.history
            .txns
            .keys()
            .next_back()
            .is_none_or(|z| *z == top)
            && self
                .members
                .values()
                .all(|m| m.is_up() && m.jobs_pending() == 0 && m.applied_zxid == top)
    }

    /// The committed membership (the twin's `/zookeeper/config`).
    fn membership(&self) -> Membership {
        Membership::parse(&self.history.twin.config_text(), false).unwrap_or_default()
    }

    /// Whether a client waits for the answer to a `reconfig`.
    fn reconfig_in_flight(&self) -> bool {
        self.clients.iter().any(|c| {
            c.pending
                .values()
                .any(|r| matches!(r, Request::Reconfig(_)))
        })
    }

    /// Servers the committed membership does not count as voters.
    fn missing_voters(&self) -> Vec<u64> {
        let voters = self.membership().voters();
        self.members
            .keys()
            .copied()
            .filter(|id| !voters.contains(id))
            .collect()
    }

    /// A membership change for a client to ask: while faults run, a voter leaves (never
    /// below a majority of all servers) or one that left joins again; while rejoining,
    /// the servers not voters join, as many at once as the current voters alone can make
    /// a quorum of the new membership: ferrokeeper's leader counts a joiner as synced
    /// only once it is a member (README, "Dynamic reconfiguration"), so two voters asking
    /// to add three would get NewConfigNoQuorum for good (the long mode found it: seed
    /// 1883751663534844, 5 members, where a removal asked before the previous one showed
    /// in the committed membership had left two voters).
    fn reconfig_request(&mut self) -> Request {
        let n = self.settings.nodes;
        let voters = self.membership().voters();
        let line = |id: u64| format!("server.{id}=127.0.0.{id}:2888:3888:participant;0.0.0.0:2181");
        let missing = self.missing_voters();
        let (joining, leaving) = if self.rejoining {
            let v = voters.len();
            let at_once = (1..=missing.len())
                .take_while(|k| (v + k) / 2 < v)
                .last()
                .unwrap_or(1);
            (
                missing
                    .iter()
                    .take(at_once)
                    .map(|id| line(*id))
                    .collect::<Vec<_>>()
                    .join(","),
                String::new(),
            )
        } else if !missing.is_empty()
            && (voters.len() as u64 <= n / 2 + 1 || self.rng.chance(500_000))
        {
            let id = missing[self.rng.below(missing.len() as u64) as usize];
            (line(id), String::new())
        } else {
            let id = voters[self.rng.below(voters.len() as u64) as usize];
            (String::new(), id.to_string())
        };
        Request::Reconfig(ReconfigRequest {
            joining_servers: joining,
            leaving_servers: leaving,
            new_members: String::new(),
            cur_config_id: -1,
        })
    }

    fn heal(&mut self) {
        self.chaos = false;
        self.net.heal();
        self.net.faults.loss_per_million = 0;
        self.net.faults.dup_per_million = 0;
        for m in self.members.values_mut() {
            m.disk.set_faults(SimFaults::default());
            if m.down_until.is_some() {
                m.down_until = Some(self.now);
            }
        }
        self.trace(format_args!(
            "healed: no partition, loss or faults; down members restart"
        ));
    }

    fn final_checks(&mut self) -> Result<(), Fail> {
        for a in &self.acks {
            let Some(c) = self.history.txns.get(&a.zxid) else {
                return Err(format!(
                    "acknowledged write lost: client {} session 0x{:x} xid {} zxid 0x{:x} is not in the committed history",
                    a.client, a.session_id, a.xid, a.zxid
                ));
            };
            if c.session_id != a.session_id || c.cxid != a.xid || c.error {
                return Err(format!(
                    "acknowledged write lost: client {} session 0x{:x} xid {} was acknowledged at zxid 0x{:x}, which holds session 0x{:x} cxid {} (failed: {})",
                    a.client, a.session_id, a.xid, a.zxid, c.session_id, c.cxid, c.error
                ));
            }
        }
        self.summary.acks += self.acks.len() as u64;
        let membership = self.membership();
        for m in self.members.values() {
            if let Some(node) = &m.node {
                if node.role() == Role::ReadOnly {
                    return Err(format!(
                        "member {} still serves read-only after the ensemble healed",
                        m.id
                    ));
                }
                let want = (membership.voters(), membership.learners());
                if node.raft_members() != want {
                    return Err(format!(
                        "member {}: its Raft configuration (voters, learners) {:?} is not /zookeeper/config's {want:?}",
                        m.id,
                        node.raft_members()
                    ));
                }
            }
        }
        if let Some(e) = crate::sim::check::check_indexes(&self.history.twin) {
            return Err(format!("the twin's indexes: {e}"));
        }
        for m in self.members.values() {
            if let Some(node) = &m.node {
                if let Some(d) = crate::sim::check::diff_states(node.state(), &self.history.twin) {
                    return Err(format!(
                        "member {} differs from the twin that applies the history: {d}",
                        m.id
                    ));
                }
            }
        }
        Ok(())
    }

    fn start(&mut self, id: u64) -> Result<(), Fail> {
        let Some(m) = self.members.get_mut(&id) else {
            return Ok(());
        };
        let txns = m.start(&self.cfg, &mut self.rng)?;
        let zxid = m.applied_zxid;
        let digest = m.node.as_ref().map_or(0, |n| n.state().digest);
        for t in &txns {
            self.history.applied(id, t)?;
        }
        self.history.reached(id, zxid, digest)?;
        self.trace(format_args!("member {id} started at zxid 0x{zxid:x}"));
        Ok(())
    }

    /// `sockets_closed`: the process exited on a machine that runs on (a fail-stop), so
    /// its peers see its connections end; after a power cut they see nothing.
    fn crash(&mut self, id: u64, why: &str, sockets_closed: bool) {
        let restart_at = self.now + self.rng.range(100, 4000) as i64;
        if let Some(m) = self.members.get_mut(&id) {
            m.crash(restart_at);
        }
        self.summary.crashes += 1;
        self.roles.remove(&id);
        let gone: Vec<usize> = self
            .conns
            .iter()
            .filter(|((m, _), _)| *m == id)
            .map(|(_, c)| *c)
            .collect();
        for ci in gone {
            self.drop_conn(ci, false);
        }
        // The kernel closes a dead process's sockets: its peers' transports report the
        // connection lost (`peer::KIND_LOST`), at once on this network.
        let closed_to = self
            .members
            .values_mut()
            .filter(|m| sockets_closed && m.id != id);
        for m in closed_to {
            if let Some(node) = m.node.as_mut() {
                node.peer_lost(id);
            }
        }
        self.trace(format_args!(
            "member {id} crashed ({why}), restarts at t+{}ms",
            restart_at - START_MS
        ));
    }

    // Long because it is the schedule of one step, in order: faults, restarts, network,
    // disks, ticks, clients, then every member's step; each part is a short loop.
    fn one_step(&mut self) -> Result<(), Fail> {
        self.step += 1;
        self.now += STEP_MS;
        if self.chaos {
            self.faults();
        }
        let due: Vec<u64> = self
            .members
            .values()
            .filter(|m| m.down_until.is_some_and(|t| t <= self.now))
            .map(|m| m.id)
            .collect();
        for id in due {
            self.start(id)?;
        }
        for f in self.net.due(self.now) {
            if let Some(node) = self.members.get_mut(&f.to).and_then(|m| m.node.as_mut()) {
                node.peer(f.from, f.kind, &f.payload, self.now);
            }
        }
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in &ids {
            let r = self
                .members
                .get_mut(id)
                .map_or(Ok(()), |m| m.run_jobs(self.now));
            if let Err(e) = r {
                self.summary.fail_stops += 1;
                self.crash(*id, &e, true);
            }
        }
        // Each member ticks on its own clock, a tick TICK_MS after the last give or take
        // a step: real timers drift apart. With fixed election timeouts (so that a seed
        // replays), ticks in lockstep could split every vote for ever between two
        // members whose timeouts are equal.
        for (id, m) in self.members.iter_mut() {
            let Some(node) = m.node.as_mut() else {
                continue;
            };
            let next = self.next_tick.entry(*id).or_insert(self.now);
            if *next <= self.now {
                node.tick(self.now, true);
                *next = self.now + TICK_MS + STEP_MS * (self.rng.below(3) as i64 - 1);
            }
        }
        self.clients_act();
        for id in &ids {
            let out = match self.members.get_mut(id).and_then(|m| m.node.as_mut()) {
                Some(node) => node
                    .step(self.now)
                    .map_err(|e| format!("member {id}: {e}"))?,
                None => continue,
            };
            self.output(*id, out)?;
        }
        Ok(())
    }

    fn faults(&mut self) {
        let n = self.settings.nodes;
        if let Some(at) = self.heal_at {
            if at <= self.now {
                self.net.heal();
                self.heal_at = None;
                self.trace(format_args!("partition healed"));
            }
        } else if self.rng.chance(2_000) {
            // One member alone, or a minority: the other side is the majority.
            let size = self.rng.range(1, (n - 1) / 2);
            let mut cut: Vec<u64> = Vec::new();
            while (cut.len() as u64) < size {
                let id = self.rng.range(1, n);
                if !cut.contains(&id) {
                    cut.push(id);
                }
            }
            self.net.partition(&cut);
            self.heal_at = Some(self.now + self.rng.range(300, 6000) as i64);
            self.summary.partitions += 1;
            self.trace(format_args!("partition: {cut:?} cut off"));
        }
        if self.rng.chance(1_000) {
            let id = self.rng.range(1, n);
            if self.members.get(&id).is_some_and(|m| m.is_up()) {
                self.crash(id, "power cut", false);
            }
        }
        if self.rng.chance(1_000) {
            let id = self.rng.range(1, n);
            let faults = match self.rng.below(3) {
                0 => SimFaults {
                    crash_after_ops: Some(self.rng.range(1, 60)),
                    ..SimFaults::default()
                },
                1 => SimFaults {
                    write_fail_per_million: 50_000,
                    ..SimFaults::default()
                },
                _ => SimFaults {
                    sync_fail_per_million: 50_000,
                    ..SimFaults::default()
                },
            };
            if let Some(m) = self.members.get(&id).filter(|m| m.is_up()) {
                m.disk.set_faults(faults);
                self.summary.disk_faults += 1;
                self.trace(format_args!("member {id}: disk faults {faults:?}"));
            }
        }
    }

    /// Takes member `id`'s output: log work, frames, and what it published (checked
    /// against the history, replies to the clients).
    fn output(&mut self, id: u64, out: Output) -> Result<(), Fail> {
        let delay = self.cfg.disk_delay_ms;
        let Some(m) = self.members.get_mut(&id) else {
            return Ok(());
        };
        m.queue(out.persist, self.now, &mut self.rng, delay)?;
        for (to, kind, payload) in out.send {
            let frame = Frame {
                from: id,
                to,
                kind,
                payload,
            };
            self.net.send(&mut self.rng, self.now, frame);
        }
        for pb in out.publish {
            let zxid = pb.state.last_zxid;
            let Some(m) = self.members.get_mut(&id) else {
                break;
            };
            let txns = m.txns_up_to(zxid)?;
            for t in &txns {
                self.history.applied(id, t)?;
            }
            self.history.reached(id, zxid, pb.state.digest)?;
            // A member closes its connections in hash-set order; sorting by connection
            // (stable: each connection's replies stay in order) keeps the ConnClosed
            // messages the clients answer with, and so the run, a function of the seed.
            let mut replies = pb.replies;
            replies.sort_by_key(|(o, _)| o.0);
            for (origin, reply) in replies {
                self.reply(id, origin, reply)?;
            }
        }
        let role = self
            .members
            .get(&id)
            .and_then(|m| m.node.as_ref())
            .map(|n| n.role());
        if let Some(role) = role {
            if role == Role::Leader && self.roles.get(&id) != Some(&Role::Leader) {
                self.summary.elections += 1;
                self.trace(format_args!("member {id} leads"));
            }
            if role == Role::ReadOnly && self.roles.get(&id) != Some(&Role::ReadOnly) {
                self.summary.read_only += 1;
                self.trace(format_args!("member {id} serves read-only"));
            }
            self.roles.insert(id, role);
        }
        Ok(())
    }

    /// A reply from member `id` to one of its connections. Draws nothing from the seed
    /// (see [`super::clients`]).
    fn reply(&mut self, id: u64, origin: Origin, reply: ReplyMsg) -> Result<(), Fail> {
        let Some(&ci) = self.conns.get(&(id, origin.0)) else {
            // A connection the client has already given up.
            return Ok(());
        };
        let now = self.now;
        let c = &mut self.clients[ci];
        match reply {
            ReplyMsg::Connected {
                session_id,
                passwd,
                valid,
                ..
            } => {
                if !c.handshaking {
                    return Err(format!(
                        "client {ci}: a second handshake answer (session 0x{session_id:x}) on {origin:?} of member {id}"
                    ));
                }
                if valid {
                    if c.session.map(|s| s.id) != Some(session_id) {
                        c.last_acked_zxid = 0;
                    }
                    c.session = Some(Session {
                        id: session_id,
                        passwd,
                    });
                    c.handshaking = false;
                    c.touched_at = now;
                    self.waiting_since.remove(&ci);
                } else {
                    // The session expired: the next connection starts a new one.
                    c.session = None;
                    self.drop_conn(ci, true);
                }
            }
            ReplyMsg::Write {
                xid, zxid, outcome, ..
            } => self.write_reply(ci, id, origin, xid, zxid, outcome)?,
            ReplyMsg::Close { reason } => {
                self.trace(format_args!(
                    "client {ci}: member {id} closed {origin:?}: {reason}"
                ));
                self.drop_conn(ci, true);
            }
        }
        Ok(())
    }

    /// The answer to client `ci`'s request `xid`: checks per-session order and records
    /// the acknowledgement the final history check holds the ensemble to.
    fn write_reply(
        &mut self,
        ci: usize,
        id: u64,
        origin: Origin,
        xid: i32,
        zxid: i64,
        outcome: Outcome,
    ) -> Result<(), Fail> {
        let now = self.now;
        let c = &mut self.clients[ci];
        let request = c.pending.remove(&xid);
        if self.settings.trace {
            eprintln!(
                "[seed {} step {}] client {ci}: member {id} {origin:?} reply xid {xid} zxid 0x{zxid:x} {outcome:?} for {request:?}",
                self.seed, self.step
            );
        }
        let c = &mut self.clients[ci];
        self.waiting_since.remove(&ci);
        if !c.pending.is_empty() {
            self.waiting_since.insert(ci, now);
        }
        let synced = matches!(outcome, Outcome::Synced(_));
        if !synced {
            c.last_zxid_seen = c.last_zxid_seen.max(zxid);
        }
        let ok = succeeded(&outcome);
        // A local session's close is no txn: its reply carries the member's last
        // zxid (as ZooKeeper's does), which is some other txn's.
        let local_close = matches!(request, Some(Request::CloseSession))
            && self.cfg.read_only_after_ms.is_some()
            && self
                .history
                .txns
                .get(&zxid)
                .is_none_or(|t| Some(t.session_id) != c.session.map(|s| s.id) || t.cxid != xid);
        if let (Some(request), Some(session)) = (request, c.session) {
            if ok && !synced && !local_close {
                if zxid <= c.last_acked_zxid {
                    return Err(format!(
                        "per-session order: client {ci} session 0x{:x}: xid {xid} acknowledged at zxid 0x{zxid:x}, after a write at 0x{:x}",
                        session.id, c.last_acked_zxid
                    ));
                }
                c.last_acked_zxid = zxid;
                self.acks.push(Ack {
                    session_id: session.id,
                    xid,
                    zxid,
                    client: ci,
                });
                if self.probe.0 == Some(xid) && ci == 0 {
                    self.probe.1 = true;
                }
                if matches!(request, Request::Reconfig(_)) {
                    self.summary.reconfigs.1 += 1;
                }
            }
            if matches!(request, Request::CloseSession) {
                c.session = None;
                self.drop_conn(ci, true);
            } else if matches!(outcome, Outcome::Error(ErrorCode::NotReadOnly)) {
                // A client on a read-only server looks for a read-write one (the
                // Java client probes with `isro`): without this a writer, the
                // liveness probe included, could stay on a server left out of
                // the membership, read-only for good.
                self.drop_conn(ci, true);
            }
        }
        Ok(())
    }

    /// Client `ci` loses its connection; `tell` says whether its member (if up) hears of
    /// it, as the shard would when the socket closes.
    fn drop_conn(&mut self, ci: usize, tell: bool) {
        let c = &mut self.clients[ci];
        let Some((id, origin)) = c.conn.take() else {
            return;
        };
        c.handshaking = false;
        c.pending.clear();
        self.conns.remove(&(id, origin.0));
        self.waiting_since.remove(&ci);
        let session_id = c.session.map_or(0, |s| s.id);
        if tell {
            if let Some(node) = self.members.get_mut(&id).and_then(|m| m.node.as_mut()) {
                node.client(
                    CommitRequest::ConnClosed {
                        conn: origin,
                        session_id,
                    },
                    self.now,
                );
            }
        }
    }

    // Long because it is one decision per client and state (disconnected, waiting,
    // connected), each a few lines; the requests themselves are built in `clients`.
    fn clients_act(&mut self) {
        let n = self.settings.nodes;
        for ci in 0..self.clients.len() {
            if self
                .waiting_since
                .get(&ci)
                .is_some_and(|t| self.now - t > CLIENT_PATIENCE_MS)
            {
                self.trace(format_args!("client {ci}: no answer, reconnects"));
                self.drop_conn(ci, true);
            }
            if !self.rng.chance(200_000) {
                continue;
            }
            let now = self.now;
            let Some((id, origin)) = self.clients[ci].conn else {
                let id = self.rng.range(1, n);
                let Some(node) = self.members.get_mut(&id).and_then(|m| m.node.as_mut()) else {
                    continue;
                };
                let origin = Origin(self.next_conn);
                self.next_conn += 1;
                let timeout = self.rng.range(6_000, 20_000) as i32;
                let read_only = self.cfg.read_only_after_ms.is_some() && self.rng.chance(500_000);
                let c = &mut self.clients[ci];
                c.conn = Some((id, origin));
                c.handshaking = true;
                node.client(clients::connect_request(c, origin, timeout, read_only), now);
                let session = c.session.map(|s| s.id);
                self.conns.insert((id, origin.0), ci);
                self.waiting_since.insert(ci, now);
                self.summary.connects += 1;
                self.trace(format_args!(
                    "client {ci}: connects to member {id} as {origin:?} (session {session:x?})"
                ));
                continue;
            };
            let c = &self.clients[ci];
            let Some(session) = c.session.filter(|_| !c.handshaking) else {
                continue;
            };
            if now - c.touched_at >= TOUCH_MS {
                if let Some(node) = self.members.get_mut(&id).and_then(|m| m.node.as_mut()) {
                    node.client(CommitRequest::Touch(vec![session.id]), now);
                }
                self.clients[ci].touched_at = now;
            }
            let r = self.rng.below(1000);
            let request = if ci == 0 && self.rejoining {
                if !self.clients[ci].pending.is_empty() {
                    continue;
                }
                self.reconfig_request()
            } else if ci == 0 && self.probing {
                // The liveness probe: one create at a time until one is acknowledged.
                if !self.clients[ci].pending.is_empty() {
                    continue;
                }
                Request::Create(CreateOp {
                    opcode: Some(ferrokeeper_net::codes::OpCode::Create),
                    path: format!("/liveness-{}", self.step),
                    data: ferrokeeper_net::jute::NullableBuffer(None),
                    acl: crate::core::sequencer::open_acl_unsafe().to_vec(),
                    flags: 0,
                    ttl: -1,
                })
            } else if !self.writing {
                continue;
            } else if r < 5 {
                self.trace(format_args!("client {ci}: disconnects from member {id}"));
                self.drop_conn(ci, true);
                continue;
            } else if r < 10 {
                Request::CloseSession
            } else if r < 13 && self.chaos {
                self.reconfig_request()
            } else if self.clients[ci].pending.len() < PIPELINE_MAX {
                clients::write_request(&mut self.rng)
            } else {
                continue;
            };
            let c = &mut self.clients[ci];
            c.next_xid += 1;
            let xid = c.next_xid;
            if ci == 0 && self.probing {
                self.probe.0 = Some(xid);
            }
            if self.settings.trace {
                eprintln!(
                    "[seed {} step {}] client {ci}: session 0x{:x} xid {xid} on member {id} {origin:?}: {request:?}",
                    self.seed, self.step, session.id
                );
            }
            let c = &mut self.clients[ci];
            c.pending.insert(xid, request.clone());
            self.waiting_since.entry(ci).or_insert(now);
            self.summary.writes += 1;
            let auth = if matches!(request, Request::Reconfig(_)) {
                self.summary.reconfigs.0 += 1;
                self.trace(format_args!("client {ci}: asks {request:?}"));
                &self.super_auth
            } else {
                &self.auth
            };
            let msg = clients::write(origin, session.id, xid, request, auth);
            if let Some(node) = self.members.get_mut(&id).and_then(|m| m.node.as_mut()) {
                node.client(msg, now);
            }
        }
    }
}

/// Whether a write succeeded: not an error, and for a multi, no op failed (a failed
/// multi answers every op with an error, the ones before the failure with `Ok`).
fn succeeded(o: &Outcome) -> bool {
    match o {
        Outcome::Error(_) => false,
        Outcome::Multi(ops) => ops.iter().all(|o| !matches!(o, Outcome::Error(_))),
        _ => true,
    }
}
