//! The simulated clients and the run of one seed: a seeded mix of every write kind
//! through `CommitRequest`s, reads and watches served from the committed state, clock
//! jumps that expire silent sessions, injected disk faults and power cuts, and the
//! checks after every step and every restart (see the [module](super) documentation).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ferrokeeper_net::codes::{perms, EventType};
use ferrokeeper_net::jute::{Buffer, NullableBuffer};
use ferrokeeper_net::records::{
    Acl, CheckVersionRequest, ConnectRequest, DeleteRequest, Id, SetAclRequest, SetDataRequest,
};
use ferrokeeper_net::request::{Connect, CreateOp, MultiOp, Request};
use ferrokeeper_storage::backend::sim::{Prng, SimFaults};
use ferrokeeper_storage::log::LogOptions;

use super::check::{check_indexes, diff_states};
use super::model::{create_opcode, Model};
use super::server::{Flush, ServerConfig, SimServer, Trouble};
use super::Summary;
use crate::commit::log::LogBatch;
use crate::core::acl::AuthIds;
use crate::core::apply::{ChangeKind, Outcome};
use crate::core::codec;
use crate::core::machine::StateMachine;
use crate::core::sequencer::{CommitRequest, CoreConfig, Origin, ReplyMsg};
use crate::core::state::DataState;
use crate::core::txn::{Txn, TxnOp};
use crate::core::watch::{WatchKind, WatchTable};

const START_MS: i64 = 1_700_000_000_000;
/// Node names; each seed uses the first 2 to 8 (few: creates collide, parents are
/// missing; more: bigger trees, more nodes in the snapshot base).
const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
const TIMEOUT_MIN_MS: i32 = 4_000;
const TIMEOUT_MAX_MS: i32 = 20_000;

/// A session's timing as the simulator expects the sequencer to keep it.
#[derive(Debug)]
struct Heard {
    /// The stored (first negotiated) timeout.
    timeout: i32,
    /// (step, deadline), in step order. Steps, not times, order the updates: a step's
    /// pings come before its tick, and the clock may stand still across steps.
    history: Vec<(u64, i64)>,
}

impl Heard {
    fn update(&mut self, step: u64, deadline: i64) {
        let at = self.history.partition_point(|(s, _)| *s <= step);
        self.history.insert(at, (step, deadline));
    }

    /// The deadline in force at the tick of `step`.
    fn deadline_at(&self, step: u64) -> i64 {
        self.history
            .iter()
            .rev()
            .find(|(s, _)| *s <= step)
            .map_or(i64::MIN, |(_, d)| *d)
    }
}

struct Client {
    /// (id, password, negotiated timeout).
    session: Option<(i64, [u8; 16], i32)>,
    conn: Option<Origin>,
    /// Stopped touching: its session must expire, and only then.
    silent: bool,
    next_xid: i32,
    last_zxid_seen: i64,
}

/// A handshake in flight: which client, when the server took it, and whether it
/// reattaches with a deliberately wrong password.
struct Connecting {
    client: usize,
    at_ms: i64,
    at_step: u64,
    reattach: Option<(i64, bool)>,
}

/// A write in flight, by (session, xid).
struct Pending {
    request: Request,
}

/// One seed's run.
pub struct Sim {
    seed: u64,
    step: u64,
    rng: Prng,
    now: i64,
    server: SimServer,
    clients: Vec<Client>,
    next_conn: u64,
    connecting: HashMap<Origin, Connecting>,
    pending: HashMap<(i64, i32), Pending>,
    model: Model,
    /// Per session: its stored timeout and the history of its expiry deadline as the
    /// sequencer times it, as (since, deadline) in time order. A ping moves the deadline
    /// to now + the stored timeout; a reattach to now + the timeout negotiated by that
    /// handshake (ZooKeeper's `revalidateSession` touches with the new value but keeps
    /// the session's own). A history, because batches in flight commit expiries
    /// decided at an earlier tick.
    heard: HashMap<i64, Heard>,
    /// Each session's password, from its CreateSession txn.
    passwords: HashMap<i64, [u8; 16]>,
    /// The tick time of each sealed batch not yet acknowledged, oldest first.
    sealed_ticks: std::collections::VecDeque<(i64, u64)>,
    /// The tick time of the last acknowledged batch.
    /// The follower-style twin: the log's bytes decoded and applied txn by txn, and
    /// its state after every zxid not yet known durable (crash-free: never from disk).
    twin: StateMachine,
    history: BTreeMap<i64, Arc<DataState>>,
    last_acked: i64,
    /// The clock value of the last tick (sessions heard from before it minus their
    /// timeout must have expired).
    ticked_at: i64,
    ticked_step: u64,
    /// The time of this step's tick.
    tick_now: i64,
    watches: WatchTable,
    /// One-shot registrations the table has not fired yet: (conn, path, child table?).
    oneshot: HashSet<(u64, String, bool)>,
    persistent: HashSet<(u64, String)>,
    recursive: HashSet<(u64, String)>,
    auth: Arc<AuthIds>,
    /// How many of [`NAMES`] this seed uses.
    names: usize,
    /// Print handshakes and pings to stderr (`FK_SIM_TRACE`), to follow a replayed seed.
    trace: bool,
    /// Counters for the summary.
    pub summary: Summary,
}

type Fail = String;

/// The txns and unreleased replies of batches the log refused: some may have reached
/// the disk, and a restart tells which.
type Limbo<'a> = (&'a [Txn], &'a [(Origin, ReplyMsg)]);

impl Sim {
    /// A run of `seed`: a server on fresh disks with settings drawn from the seed.
    ///
    /// # Errors
    /// If the first start fails.
    pub fn new(seed: u64) -> Result<Sim, Fail> {
        let mut rng = Prng::new(seed);
        let batch_bytes_max = 8 * 1024;
        let log = LogOptions {
            segment_bytes: (ferrokeeper_storage::log::format::HEADER_BYTES
                + batch_bytes_max
                + rng.range(0, 16 * 1024) as usize) as u64,
            batch_bytes_max,
            record_bytes_max: batch_bytes_max
                - ferrokeeper_storage::log::format::FRAME_HEADER_BYTES,
            ..LogOptions::default()
        };
        log.validate().map_err(|e| format!("log options: {e}"))?;
        let cfg = ServerConfig {
            core: CoreConfig {
                tick_time_ms: 2000,
                min_session_timeout_ms: TIMEOUT_MIN_MS,
                max_session_timeout_ms: TIMEOUT_MAX_MS,
                extended_types: true,
                skip_acl: false,
                enforce_quota: false,
                acl_providers: Default::default(),
                server_id: 1,
                container_check_interval_ms: rng.range(200, 3000) as i64,
                container_max_per_minute: rng.range(1, 10_000) as usize,
                reconfig_enabled: false,
                stats: Default::default(),
                container_max_never_used_ms: if rng.below(2) == 0 {
                    0
                } else {
                    rng.range(1000, 30_000) as i64
                },
            },
            log,
            snap_count: rng.range(4, 60),
            snap_retain: 3,
            purge: rng.below(4) != 0,
            rebase_delay_flushes: rng.range(0, 3) as u32,
        };
        let (server, rec) = SimServer::new(cfg, rng.next_u64(), START_MS)?;
        let clients = (0..rng.range(2, 6))
            .map(|_| Client {
                session: None,
                conn: None,
                silent: false,
                next_xid: 1,
                last_zxid_seen: 0,
            })
            .collect();
        let names = rng.range(2, NAMES.len() as u64) as usize;
        let mut history = BTreeMap::new();
        history.insert(0, rec.state.clone());
        Ok(Sim {
            seed,
            step: 0,
            rng,
            now: START_MS,
            server,
            clients,
            next_conn: 1,
            connecting: HashMap::new(),
            pending: HashMap::new(),
            model: Model {
                root_cversion: rec.state.tree.get("/").map_or(0, |n| n.stat().cversion),
                ..Model::default()
            },
            heard: HashMap::new(),
            passwords: HashMap::new(),
            sealed_ticks: Default::default(),
            twin: StateMachine::new((*rec.state).clone()),
            history,
            last_acked: 0,
            ticked_at: START_MS,
            ticked_step: 0,
            tick_now: START_MS,
            watches: WatchTable::new(),
            oneshot: HashSet::new(),
            persistent: HashSet::new(),
            recursive: HashSet::new(),
            auth: Arc::new(AuthIds::from_ip_id("127.0.0.1".into())),
            trace: std::env::var_os("FK_SIM_TRACE").is_some(),
            names,
            summary: Summary::default(),
        })
    }

    /// The step being run (for failure messages after a panic).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Runs one step: faults perhaps, the clock, pings, timers, client actions, the
    /// flush and its checks, perhaps a power cut, reads.
    ///
    /// # Errors
    /// The failed check, described.
    pub fn one_step_public(&mut self) -> Result<(), Fail> {
        self.step += 1;
        self.one_step()
    }

    /// Ends the run of `steps` steps with a last power cut and recovery.
    ///
    /// # Errors
    /// The failed check, described.
    pub fn finish(&mut self, steps: u64) -> Result<(), Fail> {
        self.step += 1;
        self.summary.crashes += 1;
        self.restart()?;
        self.summary.steps += steps;
        self.summary.seeds += 1;
        Ok(())
    }

    /// The server's counters.
    pub fn server_stats(&self) -> super::server::ServerStats {
        self.server.stats
    }

    fn one_step(&mut self) -> Result<(), Fail> {
        self.maybe_inject_faults();
        // The clock: mostly small steps, sometimes a jump past every session timeout.
        self.now += match self.rng.below(100) {
            0..=2 => self.rng.range(5_000, 25_000) as i64,
            _ => self.rng.range(0, 400) as i64,
        };
        // Connected, chatty clients are heard from as time passes (their pings).
        let touched: Vec<i64> = self
            .clients
            .iter()
            .filter(|c| c.conn.is_some() && !c.silent)
            .filter_map(|c| c.session.map(|s| s.0))
            .collect();
        for id in &touched {
            if let Some(h) = self.heard.get_mut(id) {
                let deadline = self.now + i64::from(h.timeout);
                h.update(self.step, deadline);
            }
        }
        self.server.advance_clock(self.now);
        if self.trace {
            eprintln!("step {} now {} touch {:x?}", self.step, self.now, touched);
        }
        self.server.handle(CommitRequest::Touch(touched));
        self.server.tick(self.now);
        self.tick_now = self.now;
        let actions = self.rng.range(1, 5);
        for _ in 0..actions {
            self.client_action();
        }
        self.flush()?;
        if self.rng.below(200) == 0 && self.server.is_up() {
            // A power cut with nothing failing: every acknowledged write must survive.
            self.summary.crashes += 1;
            self.restart()?;
        }
        if self.server.is_up() {
            for _ in 0..self.rng.range(0, 3) {
                self.read()?;
            }
        }
        Ok(())
    }

    fn maybe_inject_faults(&mut self) {
        if self.rng.below(100) >= 3 {
            return;
        }
        self.summary.fault_plans += 1;
        let plan = |rng: &mut Prng| match rng.below(4) {
            0 => SimFaults {
                write_fail_per_million: rng.range(10_000, 200_000) as u32,
                ..SimFaults::default()
            },
            1 => SimFaults {
                sync_fail_per_million: rng.range(10_000, 200_000) as u32,
                ..SimFaults::default()
            },
            2 => SimFaults {
                crash_after_ops: Some(rng.range(0, 40)),
                ..SimFaults::default()
            },
            _ => SimFaults::default(),
        };
        let log = plan(&mut self.rng);
        let snap = plan(&mut self.rng);
        self.server.set_faults(log, snap);
    }

    fn new_origin(&mut self) -> Origin {
        self.next_conn += 1;
        Origin(self.next_conn)
    }

    fn client_action(&mut self) {
        let ci = self.rng.below(self.clients.len() as u64) as usize;
        // A client waits for its handshake's answer before doing anything else.
        if self.connecting.values().any(|c| c.client == ci) {
            return;
        }
        let Some(conn) = self.clients[ci].conn else {
            self.connect(ci);
            return;
        };
        let Some((session_id, _, _)) = self.clients[ci].session else {
            return;
        };
        match self.rng.below(100) {
            0..=74 => {
                let request = self.write_request(session_id);
                let c = &mut self.clients[ci];
                let xid = c.next_xid;
                c.next_xid += 1;
                self.pending.insert(
                    (session_id, xid),
                    Pending {
                        request: request.clone(),
                    },
                );
                self.server.handle(CommitRequest::Write {
                    conn,
                    session_id,
                    xid,
                    request,
                    auth: self.auth.clone(),
                    local: false,
                });
                self.summary.writes_sent += 1;
            }
            75..=81 => {
                // The connection drops; the session lives on until it expires.
                self.disconnect(ci);
                self.server
                    .handle(CommitRequest::ConnClosed { conn, session_id });
            }
            82..=84 => {
                let c = &mut self.clients[ci];
                let xid = c.next_xid;
                c.next_xid += 1;
                self.pending.insert(
                    (session_id, xid),
                    Pending {
                        request: Request::CloseSession,
                    },
                );
                self.server.handle(CommitRequest::Write {
                    conn,
                    session_id,
                    xid,
                    request: Request::CloseSession,
                    auth: self.auth.clone(),
                    local: false,
                });
                self.summary.writes_sent += 1;
            }
            85..=87 => self.clients[ci].silent = !self.clients[ci].silent,
            // The client reconnects before the server noticed the old connection go:
            // the reattach closes the old one ("session moved").
            88..=89 => self.connect(ci),
            _ => {
                let path = self.pick_path();
                let kind = if self.rng.below(2) == 0 {
                    WatchKind::Persistent
                } else {
                    WatchKind::PersistentRecursive
                };
                self.watches.add(&path, conn.0, kind);
                match kind {
                    WatchKind::Persistent => self.persistent.insert((conn.0, path)),
                    _ => self.recursive.insert((conn.0, path)),
                };
            }
        }
    }

    fn connect(&mut self, ci: usize) {
        let origin = self.new_origin();
        let c = &self.clients[ci];
        let reattach = match c.session {
            Some((id, passwd, _)) if self.rng.below(10) != 0 => {
                let bad = self.rng.below(10) == 0;
                let mut p = passwd.to_vec();
                if bad {
                    p[0] ^= 1;
                }
                Some((id, p, bad))
            }
            _ => None,
        };
        let time_out = self.rng.range(2_000, 25_000) as i32;
        let (session_id, passwd) = match &reattach {
            Some((id, p, _)) => (*id, p.clone()),
            None => (0, vec![0; 16]),
        };
        if reattach.is_none() {
            // A new session replaces the old one, which is left to expire.
            self.clients[ci].session = None;
        }
        if self.trace {
            eprintln!(
                "step {} now {} client {ci} connect {:?} reattach {:x?}",
                self.step,
                self.now,
                origin,
                reattach.as_ref().map(|r| (r.0, r.2))
            );
        }
        self.connecting.insert(
            origin,
            Connecting {
                client: ci,
                at_ms: self.now,
                at_step: self.step,
                reattach: reattach.map(|(id, _, bad)| (id, bad)),
            },
        );
        self.server.handle(CommitRequest::Connect {
            conn: origin,
            connect: Connect {
                request: ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.clients[ci].last_zxid_seen,
                    time_out,
                    session_id,
                    passwd: Buffer(passwd),
                },
                read_only: false,
                has_read_only: false,
            },
        });
    }

    fn disconnect(&mut self, ci: usize) {
        if let Some(conn) = self.clients[ci].conn.take() {
            self.drop_watches(conn.0);
        }
    }

    fn drop_watches(&mut self, conn: u64) {
        self.watches.remove_connection(conn);
        self.oneshot.retain(|(c, _, _)| *c != conn);
        self.persistent.retain(|(c, _)| *c != conn);
        self.recursive.retain(|(c, _)| *c != conn);
    }

    /// A path: mostly from a small space (so that creates collide and parents are
    /// missing), sometimes a node the model knows (sequential names included).
    fn pick_path(&mut self) -> String {
        if !self.model.nodes.is_empty() && self.rng.below(3) == 0 {
            let i = self.rng.below(self.model.nodes.len() as u64) as usize;
            if let Some(p) = self.model.nodes.keys().nth(i) {
                return p.clone();
            }
        }
        let depth = self.rng.range(1, 3);
        let mut p = String::new();
        for _ in 0..depth {
            p.push('/');
            p.push_str(NAMES[self.rng.below(self.names as u64) as usize]);
        }
        p
    }

    fn data(&mut self) -> NullableBuffer {
        match self.rng.below(40) {
            0 => NullableBuffer(None),
            1 => NullableBuffer(Some(vec![b'x'; self.rng.range(1000, 3000) as usize])),
            _ => {
                let mut d = vec![0u8; self.rng.range(0, 24) as usize];
                self.rng.fill(&mut d);
                NullableBuffer(Some(d))
            }
        }
    }

    fn acl(&mut self) -> Vec<Acl> {
        let world = Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        };
        match self.rng.below(20) {
            0 => Vec::new(),
            1 => vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "auth".into(),
                    id: String::new(),
                },
            }],
            2 => vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "bogus".into(),
                    id: "x".into(),
                },
            }],
            3..=6 => vec![
                world.clone(),
                Acl {
                    perms: perms::READ,
                    id: Id {
                        scheme: "ip".into(),
                        id: "127.0.0.1".into(),
                    },
                },
            ],
            7 => vec![world.clone(), world],
            _ => vec![world],
        }
    }

    /// A version: usually any (-1), often the model's, sometimes wrong.
    fn version(&mut self, current: Option<i32>) -> i32 {
        match (self.rng.below(4), current) {
            (0 | 1, _) => -1,
            (2, Some(v)) => v,
            _ => self.rng.range(0, 3) as i32,
        }
    }

    fn create_op(&mut self) -> CreateOp {
        let flags = match self.rng.below(20) {
            0..=5 => 0,
            6..=8 => 1,
            9..=10 => 2,
            11..=12 => 3,
            13..=15 => 4,
            16..=17 => 5,
            _ => 6,
        };
        let ttl = if matches!(flags, 5 | 6) {
            self.rng.range(1, 20_000) as i64
        } else {
            -1
        };
        CreateOp {
            opcode: Some(create_opcode(flags)),
            path: self.pick_path(),
            data: self.data(),
            acl: self.acl(),
            flags,
            ttl,
        }
    }

    fn multi_op(&mut self) -> MultiOp {
        let path = self.pick_path();
        let v = self.model.nodes.get(&path).map(|n| n.version);
        match self.rng.below(4) {
            0 => MultiOp::Create(self.create_op()),
            1 => MultiOp::Delete(DeleteRequest {
                path,
                version: self.version(v),
            }),
            2 => MultiOp::SetData(SetDataRequest {
                path,
                data: self.data(),
                version: self.version(v),
            }),
            _ => MultiOp::Check(CheckVersionRequest {
                path,
                version: self.version(v),
            }),
        }
    }

    fn write_request(&mut self, _session: i64) -> Request {
        let path = self.pick_path();
        let node = self.model.nodes.get(&path);
        let (v, av) = (node.map(|n| n.version), node.map(|n| n.aversion));
        match self.rng.below(20) {
            0..=6 => Request::Create(self.create_op()),
            7..=9 => Request::Delete(DeleteRequest {
                path,
                version: self.version(v),
            }),
            10..=12 => Request::SetData(SetDataRequest {
                path,
                data: self.data(),
                version: self.version(v),
            }),
            13..=14 => Request::SetAcl(SetAclRequest {
                path,
                acl: self.acl(),
                version: self.version(av),
            }),
            15 => Request::Check(CheckVersionRequest {
                path,
                version: self.version(v),
            }),
            _ => {
                let n = self.rng.range(1, 4);
                Request::Multi((0..n).map(|_| self.multi_op()).collect())
            }
        }
    }

    /// A read from the committed state, checked against the model, perhaps leaving a
    /// watch, as `shard::read` serves getData / exists / getChildren.
    fn read(&mut self) -> Result<(), Fail> {
        let connected: Vec<u64> = self
            .clients
            .iter()
            .filter_map(|c| c.conn.map(|o| o.0))
            .collect();
        if connected.is_empty() {
            return Ok(());
        }
        let conn = connected[self.rng.below(connected.len() as u64) as usize];
        let path = self.pick_path();
        let watch = self.rng.below(2) == 0;
        let Some(state) = self.server.committed().cloned() else {
            return Ok(());
        };
        // A read's reply header carries the server's zxid: the client has now seen it.
        if let Some(c) = self
            .clients
            .iter_mut()
            .find(|c| c.conn.map(|o| o.0) == Some(conn))
        {
            c.last_zxid_seen = c.last_zxid_seen.max(state.last_zxid);
        }
        let node = state.tree.get(&path);
        let m = self.model.nodes.get(&path);
        self.summary.reads += 1;
        match self.rng.below(3) {
            0 => {
                // getData: NoNode registers nothing.
                match (node, m) {
                    (None, None) => {}
                    (Some(n), Some(m)) => {
                        if n.data().map(<[u8]>::to_vec) != m.data || n.stat().version != m.version {
                            return Err(format!("getData {path}: tree and model differ"));
                        }
                        if watch {
                            self.watches.add(&path, conn, WatchKind::Data);
                            self.oneshot.insert((conn, path, false));
                        }
                    }
                    (n, m) => {
                        return Err(format!(
                            "getData {path}: tree has it: {}, model has it: {}",
                            n.is_some(),
                            m.is_some()
                        ))
                    }
                }
            }
            1 => {
                // exists: a watch is left whether or not the node exists.
                if node.is_some() != m.is_some() {
                    return Err(format!("exists {path}: tree and model differ"));
                }
                if watch {
                    self.watches.add(&path, conn, WatchKind::Data);
                    self.oneshot.insert((conn, path, false));
                }
            }
            _ => {
                let Some(n) = node else {
                    if m.is_some() {
                        return Err(format!("getChildren {path}: the model has it"));
                    }
                    return Ok(());
                };
                let got: Vec<String> = n.children().map(str::to_string).collect();
                let want = self.model.children(&path);
                if got != want {
                    return Err(format!("getChildren {path}: {got:?}, model {want:?}"));
                }
                if watch {
                    self.watches.add(&path, conn, WatchKind::Child);
                    self.oneshot.insert((conn, path, true));
                }
            }
        }
        Ok(())
    }

    /// Feeds a batch's log bytes to the twin, txn by txn, keeping its state per zxid.
    fn feed_twin(&mut self, txns: &[Txn], log: &LogBatch) -> Result<(), Fail> {
        let mut start = 0;
        if log.records.len() != txns.len() {
            return Err("log batch and txns differ in length".into());
        }
        for (&(zxid, end), txn) in log.records.iter().zip(txns) {
            let bytes = &log.bytes[start..end];
            start = end;
            let decoded =
                codec::decode(bytes).map_err(|e| format!("txn 0x{zxid:x} does not decode: {e}"))?;
            let mut again = Vec::new();
            codec::encode(&decoded, &mut again);
            if again != bytes || decoded.zxid != txn.zxid || zxid != txn.zxid {
                return Err(format!(
                    "txn 0x{zxid:x} does not round-trip through the codec"
                ));
            }
            let applied = self.twin.apply(std::slice::from_ref(&decoded));
            self.history.insert(zxid, applied.state);
        }
        Ok(())
    }

    /// Seals this step's batch, and syncs the log sometimes (always when its queue is
    /// full): batches stay in flight across steps while the sequencer runs ahead.
    fn flush(&mut self) -> Result<(), Fail> {
        if self.server.queued() >= super::server::LOG_QUEUE_DEPTH {
            self.sync()?;
        }
        if self.server.seal() {
            self.sealed_ticks.push_back((self.tick_now, self.step));
        }
        if self.rng.below(3) != 0 {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Fail> {
        match self.server.sync() {
            Flush::Down | Flush::Idle => Ok(()),
            Flush::Acked(batches) => {
                for a in batches {
                    self.acked(a)?;
                }
                Ok(())
            }
            Flush::Stopped { batches, .. } => {
                self.summary.fail_stops += 1;
                let mut txns = Vec::new();
                let mut replies = Vec::new();
                for b in batches {
                    self.feed_twin(&b.txns, &b.log)?;
                    txns.extend(b.txns);
                    replies.extend(b.replies);
                }
                self.restart_with_limbo(&txns, &replies)
            }
        }
    }

    fn acked(&mut self, a: super::server::Acked) -> Result<(), Fail> {
        if let Some((t, step)) = self.sealed_ticks.pop_front() {
            self.ticked_at = t;
            self.ticked_step = step;
        }
        self.feed_twin(&a.txns, &a.log)?;
        if !a.txns.is_empty() {
            // Apply equals adopt: the follower's result is the leader's.
            if let Some(d) = diff_states(self.twin.state(), &a.state) {
                return Err(format!(
                    "apply and adopt differ after zxid 0x{:x}: {d}",
                    a.state.last_zxid
                ));
            }
            self.last_acked = a.state.last_zxid;
        }
        let expected = self.absorb(&a.txns, &a.replies, true)?;
        self.deliver(&a.replies)?;
        self.fire_watches(&a.changes, &expected)?;
        if let Some(d) = self.model.diff(&a.state) {
            return Err(format!("model and committed state differ: {d}"));
        }
        if let Some(d) = check_indexes(&a.state) {
            return Err(format!("committed state's indexes: {d}"));
        }
        self.check_expiry_done(&a.state)?;
        // States before the last acknowledged zxid can no longer be recovered to.
        let keep = self.history.split_off(&self.last_acked);
        self.history = keep;
        if a.then_stopped.is_some() {
            self.summary.fail_stops += 1;
            self.restart()?;
        }
        Ok(())
    }

    /// Walks a batch's txns in zxid order against the model: each client write's reply
    /// is checked against the model's prediction and applied; session creation, expiry
    /// and reaping (no client asked) are applied from the txn. Returns the watch
    /// changes the model expects, in order.
    fn absorb(
        &mut self,
        txns: &[Txn],
        replies: &[(Origin, ReplyMsg)],
        live: bool,
    ) -> Result<Vec<(ChangeKind, String)>, Fail> {
        let outcomes: HashMap<i64, &Outcome> = replies
            .iter()
            .filter_map(|(_, r)| match r {
                ReplyMsg::Write { zxid, outcome, .. } => Some((*zxid, outcome)),
                _ => None,
            })
            .collect();
        self.model.changes.clear();
        for t in txns {
            if self.trace {
                if let TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. } = t.op {
                    eprintln!(
                        "step {} txn 0x{:x} session 0x{:x} cxid {} at {}: {:?} (live {live})",
                        self.step, t.zxid, t.session_id, t.cxid, t.time_ms, t.op
                    );
                }
            }
            match &t.op {
                TxnOp::CreateSession {
                    session_id, passwd, ..
                } => {
                    self.model.sessions.insert(*session_id);
                    self.passwords.insert(*session_id, *passwd);
                }
                TxnOp::CloseSession { session_id } if t.cxid == 0 => {
                    // Expiry: only once the session went unheard for its timeout.
                    if let Some(h) = self.heard.remove(session_id) {
                        let deadline = h.deadline_at(self.ticked_step);
                        if live && t.time_ms < deadline {
                            return Err(format!(
                                "session 0x{session_id:x} expired at {} but is due at {deadline} (timeout {}, history {:?})",
                                t.time_ms, h.timeout, h.history
                            ));
                        }
                    }
                    self.model.close_session(*session_id);
                    self.summary.expiries += 1;
                }
                TxnOp::Delete { path } if t.session_id == 0 && t.cxid == 0 => {
                    // The reaper: only a childless container or TTL node.
                    let kind = self
                        .model
                        .nodes
                        .get(&**path)
                        .map(|n| crate::core::state::owner_kind(n.owner, true));
                    let reapable = matches!(
                        kind,
                        Some(
                            crate::core::state::OwnerKind::Container
                                | crate::core::state::OwnerKind::Ttl
                        )
                    ) && !self.model.has_children(path);
                    if !reapable {
                        return Err(format!("the reaper deleted {path}, which is not reapable"));
                    }
                    self.model.nodes.remove(&**path);
                    self.model
                        .changes
                        .push((ChangeKind::Deleted, path.to_string()));
                    self.summary.reaped += 1;
                }
                _ => {
                    let Some(p) = self.pending.remove(&(t.session_id, t.cxid)) else {
                        return Err(format!(
                            "txn 0x{:x} ({:?}) answers no request",
                            t.zxid, t.op
                        ));
                    };
                    let Some(outcome) = outcomes.get(&t.zxid) else {
                        return Err(format!("txn 0x{:x} has no reply", t.zxid));
                    };
                    check_stats(outcome, t)
                        .and_then(|()| self.model.write(&p.request, t.session_id, outcome))
                        .map_err(|e| format!("zxid 0x{:x}: {e}", t.zxid))?;
                    if matches!(p.request, Request::CloseSession) {
                        self.heard.remove(&t.session_id);
                    }
                    self.summary.acked_writes_checked += 1;
                }
            }
        }
        Ok(std::mem::take(&mut self.model.changes))
    }

    /// Hands replies to the clients.
    fn deliver(&mut self, replies: &[(Origin, ReplyMsg)]) -> Result<(), Fail> {
        for (origin, reply) in replies {
            match reply {
                ReplyMsg::Connected {
                    session_id,
                    timeout_ms,
                    passwd,
                    valid,
                    ..
                } => {
                    if self.trace {
                        eprintln!("step {} {origin:?} connected 0x{session_id:x} valid {valid} timeout {timeout_ms}", self.step);
                    }
                    let Some(c) = self.connecting.remove(origin) else {
                        return Err(format!("a handshake answer for unknown {origin:?}"));
                    };
                    // A reattach succeeds if the session lives and the password is its
                    // own: after a restart whose clock reads earlier, a closed session's
                    // id may be handed out again, with another password.
                    let expect_valid = match c.reattach {
                        None => true,
                        Some((id, bad)) => {
                            let held = self.clients[c.client].session.map(|s| s.1);
                            !bad && self.model.sessions.contains(&id)
                                && held.is_some()
                                && self.passwords.get(&id).copied() == held
                        }
                    };
                    if *valid != expect_valid {
                        return Err(format!(
                            "handshake {:?}: valid={valid}, expected {expect_valid}",
                            c.reattach
                        ));
                    }
                    let client = &mut self.clients[c.client];
                    if *valid {
                        if let Some((id, _)) = c.reattach {
                            if *session_id != id {
                                return Err("reattach answered with another session".into());
                            }
                        }
                        if !(TIMEOUT_MIN_MS..=TIMEOUT_MAX_MS).contains(timeout_ms) {
                            return Err(format!("negotiated timeout {timeout_ms}"));
                        }
                        client.session = Some((*session_id, *passwd, *timeout_ms));
                        client.conn = Some(*origin);
                        let deadline = c.at_ms + i64::from(*timeout_ms);
                        match c.reattach {
                            None => {
                                self.heard.insert(
                                    *session_id,
                                    Heard {
                                        timeout: *timeout_ms,
                                        history: vec![(c.at_step, deadline)],
                                    },
                                );
                            }
                            Some(_) => {
                                if let Some(h) = self.heard.get_mut(session_id) {
                                    h.update(c.at_step, deadline);
                                }
                            }
                        }
                    } else {
                        // The shard closes a refused handshake; the session is gone (or
                        // the password was wrong: the client gives up on it).
                        client.session = None;
                    }
                }
                ReplyMsg::Write { zxid, .. } => {
                    if let Some(c) = self.clients.iter_mut().find(|c| c.conn == Some(*origin)) {
                        c.last_zxid_seen = c.last_zxid_seen.max(*zxid);
                    }
                }
                ReplyMsg::Close { reason } => {
                    if reason.contains("newer") {
                        return Err(format!(
                            "a client was refused: {reason} (an acknowledged zxid was lost)"
                        ));
                    }
                    if let Some(ci) = self.clients.iter().position(|c| c.conn == Some(*origin)) {
                        self.disconnect(ci);
                        if reason.contains("expired") || reason.contains("closed the session") {
                            self.clients[ci].session = None;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the batch's changes through the watch table and checks what fired: each
    /// event answers a change of this batch; a one-shot watch fires once and then is
    /// gone; every one-shot watch on a changed path fires.
    fn fire_watches(
        &mut self,
        changes: &[crate::core::apply::Change],
        expected: &[(ChangeKind, String)],
    ) -> Result<(), Fail> {
        let mut got: Vec<(u8, &str)> = changes.iter().map(|c| (c.kind as u8, &*c.path)).collect();
        let mut want: Vec<(u8, &str)> = expected
            .iter()
            .map(|(k, p)| (*k as u8, p.as_str()))
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            return Err(format!(
                "the batch's watch changes {got:?} differ from the model's {want:?}"
            ));
        }
        let mut fired = Vec::new();
        for ch in changes {
            match ch.kind {
                ChangeKind::Created => self.watches.node_created(&ch.path, ch.zxid, &mut fired),
                ChangeKind::Deleted => self.watches.node_deleted(&ch.path, ch.zxid, &mut fired),
                ChangeKind::DataChanged => self.watches.data_changed(&ch.path, ch.zxid, &mut fired),
            }
        }
        for n in &fired {
            self.summary.events += 1;
            let path = n.event.path.as_str();
            let ty = EventType::from_i32(n.event.r#type);
            let answers = changes.iter().any(|c| match (ty, c.kind) {
                (Some(EventType::NodeCreated), ChangeKind::Created)
                | (Some(EventType::NodeDeleted), ChangeKind::Deleted)
                | (Some(EventType::NodeDataChanged), ChangeKind::DataChanged) => {
                    &*c.path == path && c.zxid == n.zxid
                }
                (
                    Some(EventType::NodeChildrenChanged),
                    ChangeKind::Created | ChangeKind::Deleted,
                ) => crate::core::path::parent(&c.path) == path && c.zxid == n.zxid,
                _ => false,
            });
            if !answers {
                return Err(format!(
                    "event {:?} answers no change of the batch",
                    n.event
                ));
            }
            let key = |child: bool| (n.conn, path.to_string(), child);
            let persistent = self.persistent.contains(&(n.conn, path.to_string()));
            let recursive = self.recursive.iter().any(|(c, p)| {
                *c == n.conn
                    && (p == path
                        || p == "/"
                        || (path.starts_with(p.as_str())
                            && path.as_bytes().get(p.len()) == Some(&b'/')))
            });
            let justified = match ty {
                Some(EventType::NodeCreated | EventType::NodeDataChanged) => {
                    self.oneshot.remove(&key(false)) || persistent || recursive
                }
                Some(EventType::NodeDeleted) => {
                    let d = self.oneshot.remove(&key(false));
                    let c = self.oneshot.remove(&key(true));
                    d || c || persistent || recursive
                }
                Some(EventType::NodeChildrenChanged) => {
                    self.oneshot.remove(&key(true)) || persistent
                }
                _ => false,
            };
            if !justified {
                return Err(format!(
                    "event {:?} to connection {} with no watch left to fire (one-shot fired twice?)",
                    n.event, n.conn
                ));
            }
        }
        for c in changes {
            let p = c.path.to_string();
            let parent = crate::core::path::parent(&c.path).to_string();
            let missed = self.oneshot.iter().find(|(_, wp, child)| {
                // A data watch on the path fires on any change; a child watch on the
                // parent on a create or delete; a child watch on the path on its delete.
                let data = !*child && *wp == p;
                let parent_child = *child && *wp == parent && c.kind != ChangeKind::DataChanged;
                let own_child = *child && *wp == p && c.kind == ChangeKind::Deleted;
                data || parent_child || own_child
            });
            if let Some(w) = missed {
                return Err(format!(
                    "one-shot watch {w:?} did not fire for {:?} {}",
                    c.kind, c.path
                ));
            }
        }
        Ok(())
    }

    /// Sessions unheard for their timeout at the last tick must have expired.
    fn check_expiry_done(&self, state: &DataState) -> Result<(), Fail> {
        for (id, h) in &self.heard {
            let deadline = h.deadline_at(self.ticked_step);
            if state.sessions.contains_key(id) && deadline <= self.ticked_at {
                return Err(format!(
                    "session 0x{id:x} due at {deadline} (timeout {}) still alive at {}",
                    h.timeout, self.ticked_at
                ));
            }
        }
        Ok(())
    }

    fn restart_with_limbo(
        &mut self,
        txns: &[Txn],
        replies: &[(Origin, ReplyMsg)],
    ) -> Result<(), Fail> {
        self.restart_inner(Some((txns, replies)))
    }

    fn restart(&mut self) -> Result<(), Fail> {
        self.restart_inner(None)
    }

    /// Power cut and recovery, then every check a restart owes: nothing acknowledged is
    /// lost, the recovered state is the twin's at the same zxid, the model agrees.
    // Long because each check names what it compares in its failure message; the checks
    // run in the order a restart's guarantees build on each other.
    fn restart_inner(&mut self, limbo: Option<Limbo<'_>>) -> Result<(), Fail> {
        self.summary.restarts += 1;
        // A restarted process reads the wall clock afresh: usually later, sometimes
        // earlier (the clock was stepped back while it was down).
        if self.rng.below(4) == 0 {
            self.now -= self.rng.range(0, 3_000) as i64;
        } else {
            self.now += self.rng.range(0, 2_000) as i64;
        }
        let mut trouble = Trouble::default();
        if self.rng.below(8) == 0 {
            trouble.flip = Some(self.rng.next_u64());
        }
        if self.rng.below(6) == 0 {
            let plan = |rng: &mut Prng| match rng.below(3) {
                0 => SimFaults {
                    crash_after_ops: Some(rng.range(0, 30)),
                    ..SimFaults::default()
                },
                1 => SimFaults {
                    sync_fail_per_million: 300_000,
                    write_fail_per_million: 300_000,
                    ..SimFaults::default()
                },
                _ => SimFaults::default(),
            };
            let log = plan(&mut self.rng);
            let snap = plan(&mut self.rng);
            trouble.faults = Some((log, snap));
        }
        let rec = self.server.restart(self.now, trouble)?;
        let z = rec.state.last_zxid;
        if self.trace {
            eprintln!(
                "step {} restart at {}: zxid 0x{z:x} (snapshot 0x{:x}, {} replayed), sessions {:x?}",
                self.step,
                self.now,
                rec.snapshot_zxid,
                rec.replayed,
                rec.state.sessions.keys().collect::<Vec<_>>()
            );
        }
        if z < self.last_acked {
            return Err(format!(
                "recovered zxid 0x{z:x} is behind the last acknowledged 0x{:x} (snapshot 0x{:x}, {} replayed, {} rejected)",
                self.last_acked, rec.snapshot_zxid, rec.replayed, rec.rejected
            ));
        }
        let Some(twin) = self.history.get(&z).cloned() else {
            return Err(format!(
                "recovered zxid 0x{z:x}, which was never written (last acknowledged 0x{:x})",
                self.last_acked
            ));
        };
        if let Some(d) = diff_states(&rec.state, &twin) {
            return Err(format!(
                "recovered state at 0x{z:x} (snapshot 0x{:x}, {} replayed) differs from the twin's: {d}",
                rec.snapshot_zxid, rec.replayed
            ));
        }
        if let Some(d) = check_indexes(&rec.state) {
            return Err(format!("recovered state's indexes: {d}"));
        }
        // The unacknowledged batch's txns that survived are committed after all.
        if let Some((txns, replies)) = limbo {
            let survived: Vec<Txn> = txns.iter().filter(|t| t.zxid <= z).cloned().collect();
            self.absorb(&survived, replies, false)?;
        }
        self.pending.clear();
        self.connecting.clear();
        for ci in 0..self.clients.len() {
            self.disconnect(ci);
        }
        self.watches = WatchTable::new();
        self.oneshot.clear();
        self.persistent.clear();
        self.recursive.clear();
        // Restored sessions get a full timeout from now (`Sequencer::with_state`).
        self.heard = rec
            .state
            .sessions
            .iter()
            .map(|(id, s)| {
                (
                    *id,
                    Heard {
                        timeout: s.timeout_ms,
                        history: vec![(self.step, self.now + i64::from(s.timeout_ms))],
                    },
                )
            })
            .collect();
        self.history.retain(|zxid, _| *zxid <= z);
        self.twin = StateMachine::new((*twin).clone());
        self.last_acked = z;
        self.ticked_at = self.now;
        self.ticked_step = self.step;
        self.sealed_ticks.clear();
        if let Some(d) = self.model.diff(&rec.state) {
            return Err(format!("model and recovered state differ: {d}"));
        }
        self.summary.recovered_zxids += 1;
        Ok(())
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The stats a write's reply carries must say what the write did: a new node was
/// created and last modified by this txn at its time, at version 0 with no children; a
/// setData modified the node in this txn; the data length is the data's.
fn check_stats(outcome: &Outcome, t: &Txn) -> Result<(), Fail> {
    let ok = match outcome {
        Outcome::Created { stat, .. } => {
            stat.czxid == t.zxid
                && stat.mzxid == t.zxid
                && stat.pzxid == t.zxid
                && stat.ctime == t.time_ms
                && stat.mtime == t.time_ms
                && stat.version == 0
                && stat.cversion == 0
                && stat.aversion == 0
                && stat.num_children == 0
        }
        Outcome::DataSet(stat) => {
            stat.mzxid == t.zxid && stat.mtime == t.time_ms && stat.czxid <= t.zxid
        }
        Outcome::Multi(results) => {
            for r in results {
                check_stats(r, t)?;
            }
            true
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("reply stat does not match the txn: {outcome:?}"))
    }
}
