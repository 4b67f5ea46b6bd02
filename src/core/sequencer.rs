//! The sequencer: the leader-side machine that turns requests into txns. It owns the
//! speculative *head* state (every txn it has issued, committed or not), assigns zxids,
//! preps requests against the head, decides session creation, reattachment and expiry,
//! and reaps containers and TTL nodes, all as txns. Its output is a [`Batch`]: the txns
//! to replicate and make durable, plus the leader-only effects (replies, closes) to
//! release once they are. Time comes in as an argument and randomness through
//! [`Entropy`], so a test or a simulator drives it deterministically; `commit::stage`
//! runs it on an executor.
//!
//! The head is speculative: when a leader loses leadership, [`Sequencer::rollback`]
//! drops everything not committed and starts again from the committed state.

use std::collections::HashMap;
use std::sync::Arc;

use ferrokeeper_net::codes::{ErrorCode, OpCode};
use ferrokeeper_net::records::{Acl, Id};
use ferrokeeper_net::request::{Connect, Request};

use super::acl::AuthIds;
use super::apply::{apply, Change, Outcome};
use super::prep::{prep, PrepCtx};
use super::state::{ttl_of, DataState};
use super::txn::{Txn, TxnOp};

/// Where a reply goes. Opaque to the core: the shell packs its own routing into it (on
/// a server, the shard and the connection on it), and the sequencer only hands it back
/// with the replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(pub u64);

/// Randomness, passed in: session passwords come from here. The server gives it the
/// operating system's generator; tests and the simulator a seeded one.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// A small seeded generator (SplitMix64) for tests and simulators: the same seed gives
/// the same bytes on every platform.
#[derive(Debug, Clone)]
pub struct SeededEntropy(pub u64);

impl SeededEntropy {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// Settings the commit logic depends on.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `tickTime`.
    pub tick_time_ms: i64,
    /// Lower bound of negotiated session timeouts.
    pub min_session_timeout_ms: i32,
    /// Upper bound of negotiated session timeouts.
    pub max_session_timeout_ms: i32,
    /// `extendedTypesEnabled`.
    pub extended_types: bool,
    /// `skipACL`.
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse creates and setData.
    pub enforce_quota: bool,
    /// The authentication providers registered beyond ip and digest (`x509` when a
    /// secure client port is set).
    pub acl_providers: super::acl::Providers,
    /// The server id (high byte of session ids).
    pub server_id: i64,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: i64,
    /// `znode.container.maxPerMinute`.
    pub container_max_per_minute: usize,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never).
    pub container_max_never_used_ms: i64,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// Statistics for `mntr`, shared with whoever prints them.
    pub stats: Arc<CoreStats>,
}

/// Statistics the commit logic keeps for `mntr` and `/metrics`. They are not state:
/// never replicated, persisted or digested, and on an ensemble only the leader (which
/// runs the sequencer) moves them, as only ZooKeeper's leader runs its prep and
/// session tracker.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// ZooKeeper's `quota_exceeded_error_per_namespace`, bumped by prep.
    pub quota_exceeded: super::quota::ExceededCounts,
    /// Sessions expired for want of a heartbeat: ZooKeeper's `stale_sessions_expired`,
    /// which `SessionTrackerImpl.run` bumps for each session it expires.
    pub sessions_expired: std::sync::atomic::AtomicU64,
}

/// A message from a shard to the commit stage.
#[derive(Debug)]
pub enum CommitRequest {
    /// A connection's handshake.
    Connect {
        /// Who.
        conn: Origin,
        /// What it sent.
        connect: Connect,
    },
    /// A write (or closeSession) from a connected session.
    Write {
        /// Who.
        conn: Origin,
        /// The session.
        session_id: i64,
        /// The request's xid.
        xid: i32,
        /// The decoded request.
        request: Request,
        /// The session's identities.
        auth: Arc<AuthIds>,
        /// The session is local to the server the client is connected to (see
        /// `replica::local`): no session check, no ephemerals.
        local: bool,
    },
    /// A local session becomes global (`localSessionsUpgradingEnabled`): a
    /// CreateSession txn with its id, timeout and password, ahead of the request that
    /// needs it (an ephemeral create).
    UpgradeSession {
        /// The connection it is attached to.
        conn: Origin,
        /// Its id.
        session_id: i64,
        /// Its negotiated timeout.
        timeout_ms: i32,
        /// Its password.
        passwd: [u8; 16],
    },
    /// A connection went away (its session lives on until it expires).
    ConnClosed {
        /// Who.
        conn: Origin,
        /// The session it carried, if any.
        session_id: i64,
    },
    /// Sessions heard from since the last report.
    Touch(Vec<i64>),
}

/// The reason of the [`ReplyMsg::Close`] that follows a committed closeSession: the
/// session has left the sequencer's table then, so the connection's `ConnClosed` would
/// change nothing.
pub const CLOSED_BY_CLIENT: &str = "client closed the session";

/// A reply the commit stage sends back to one connection.
#[derive(Debug, Clone)]
pub enum ReplyMsg {
    /// The handshake's answer. `valid == false` means: answer with timeout 0 and
    /// session 0 (the client reports SessionExpired), then close.
    Connected {
        /// Session id.
        session_id: i64,
        /// Negotiated timeout.
        timeout_ms: i32,
        /// Session password.
        passwd: [u8; 16],
        /// Whether the session is usable.
        valid: bool,
        /// The server is in read-only mode (the connect response says so).
        read_only: bool,
    },
    /// A write's result.
    Write {
        /// The request's xid.
        xid: i32,
        /// The txn's zxid.
        zxid: i64,
        /// The request's opcode (decides the response record).
        opcode: OpCode,
        /// What happened.
        outcome: Outcome,
    },
    /// Close the connection (session closed, expired, moved elsewhere or refused).
    Close {
        /// Why, for the log.
        reason: &'static str,
    },
}

/// What one group of requests produced. `txns` are what every replica must apply, in
/// zxid order (the only replicated part). `replies` are leader-only effects, released
/// once the txns are durable. `changes` are the watch changes the speculative apply
/// produced: the state machine adopts them with the head (see
/// [`super::machine::StateMachine::adopt`]) instead of applying the txns a second time.
#[derive(Debug, Default)]
pub struct Batch {
    /// Txns in zxid order.
    pub txns: Vec<Txn>,
    /// Replies in order.
    pub replies: Vec<(Origin, ReplyMsg)>,
    /// Watch-relevant changes in order.
    pub changes: Vec<Change>,
    /// The head moved onto a new base since the last batch: publish it even with
    /// nothing else in the batch, so that shards let go of the old layers.
    pub rebased: bool,
    /// A `reconfig` in this batch committed (its zxid): the replication layer proposes
    /// the batch as a Raft configuration change.
    pub reconfig: Option<i64>,
}

impl Batch {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty() && self.replies.is_empty() && !self.rebased
    }
}

struct SessionLife {
    expires_at_ms: i64,
    owner: Option<Origin>,
}

/// The commit stage's state and logic.
pub struct Sequencer {
    head: DataState,
    cfg: CoreConfig,
    next_session_id: i64,
    lives: HashMap<i64, SessionLife>,
    batch: Batch,
    next_reap_ms: i64,
    open_acl: Arc<[Acl]>,
    entropy: Box<dyn Entropy + Send>,
    /// The replication layer's verdict on the next `reconfig` (see [`Sequencer::plan_reconfig`]).
    reconfig_plan: Option<super::prep::ReconfigPlan>,
}

/// ZooKeeper's `OPEN_ACL_UNSAFE`: all permissions for world:anyone.
pub fn open_acl_unsafe() -> Arc<[Acl]> {
    Arc::from(vec![Acl {
        perms: ferrokeeper_net::codes::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }])
}

impl Sequencer {
    /// A commit core over a fresh state.
    pub fn new(cfg: CoreConfig, now_ms: i64, entropy: Box<dyn Entropy + Send>) -> Sequencer {
        let open_acl = open_acl_unsafe();
        // SessionTrackerImpl.initializeNextSessionId: time in the middle bits, server id
        // in the top byte.
        let next_session_id = (((now_ms << 24) as u64) >> 8) as i64 | (cfg.server_id << 56);
        Sequencer {
            head: DataState::new(open_acl.clone(), cfg.extended_types),
            next_reap_ms: now_ms + cfg.container_check_interval_ms,
            cfg,
            next_session_id,
            lives: HashMap::new(),
            batch: Batch::default(),
            open_acl,
            entropy,
            reconfig_plan: None,
        }
    }

    /// Hands the sequencer the replication layer's verdict on the `reconfig` request it
    /// is about to handle (a standalone server never calls this: its reconfig is
    /// Unimplemented, as ZooKeeper's).
    pub fn plan_reconfig(&mut self, plan: super::prep::ReconfigPlan) {
        self.reconfig_plan = Some(plan);
    }

    /// The zxid of a `reconfig` that committed in the batch being built, if any.
    pub fn batch_reconfig(&self) -> Option<i64> {
        self.batch.reconfig
    }

    /// A commit core over a state recovered from the log. Restored sessions get a full
    /// timeout from now to reconnect, as ZooKeeper gives them after a restart.
    pub fn with_state(
        cfg: CoreConfig,
        state: DataState,
        now_ms: i64,
        entropy: Box<dyn Entropy + Send>,
    ) -> Sequencer {
        let mut core = Sequencer::new(cfg, now_ms, entropy);
        core.adopt_state(state, now_ms);
        core
    }

    /// Replaces the whole state with `state` (the AdminServer's `restore`), as
    /// ZooKeeper's `restoreFromSnapshot` swaps in a new database and session tracker.
    /// The batch must have been taken. Returns the connections that owned sessions:
    /// the caller closes them, so that every client reconnects to the new state (its
    /// session survives if `state` has it).
    pub fn restore(&mut self, state: DataState, now_ms: i64) -> Vec<Origin> {
        assert!(
            self.batch.txns.is_empty() && self.batch.replies.is_empty(),
            "restore with an untaken batch"
        );
        let owners = self.lives.values().filter_map(|l| l.owner).collect();
        self.lives.clear();
        self.adopt_state(state, now_ms);
        owners
    }

    /// Takes `state` as the head, its sessions with a full timeout from now.
    fn adopt_state(&mut self, state: DataState, now_ms: i64) {
        // Session ids come from the clock at start, so a start whose clock reads no later
        // than an earlier start's (stepped back, or the same millisecond) would hand out
        // the ids of restored sessions again, and the new session's CreateSession would
        // replace a live one (its ephemerals orphaned). Start past every restored id of
        // this server (found by the simulator, seed 489).
        let own = self.cfg.server_id & 0xff;
        let newest_own = state
            .sessions
            .keys()
            .filter(|id| (**id >> 56) & 0xff == own)
            .max();
        if let Some(&newest) = newest_own {
            self.next_session_id = self.next_session_id.max(newest + 1);
        }
        for (id, s) in state.sessions.iter() {
            self.lives.insert(
                *id,
                SessionLife {
                    expires_at_ms: now_ms + i64::from(s.timeout_ms),
                    owner: None,
                },
            );
        }
        self.head = state;
    }

    /// The head state (all accepted txns).
    pub fn head(&self) -> &DataState {
        &self.head
    }

    /// Freezes the head tree's overlay at the head's zxid, ahead of a snapshot of this
    /// very state (see [`crate::core::tree::Tree::freeze`]).
    pub fn freeze(&mut self) {
        let at = self.head.last_zxid;
        self.head.tree.freeze(at);
    }

    /// Moves the head tree onto `base`, a snapshot of an earlier published head (see
    /// [`crate::core::tree::Tree::rebase`]). What readers see does not change.
    /// Returns the number of nodes whose children lists moved onto `base`.
    pub fn rebase(&mut self, base: Arc<super::tree::Base>) -> usize {
        let moved = self.head.tree.rebase(base);
        self.batch.rebased = true;
        moved
    }

    /// The ACL new trees start with.
    pub fn open_acl(&self) -> &Arc<[Acl]> {
        &self.open_acl
    }

    /// Takes the batch built so far.
    pub fn take_batch(&mut self) -> Batch {
        std::mem::take(&mut self.batch)
    }

    /// Whether requests are waiting in the current batch.
    pub fn batch_len(&self) -> usize {
        self.batch.txns.len() + self.batch.replies.len()
    }

    /// zxid of the last accepted txn.
    pub fn last_zxid(&self) -> i64 {
        self.head.last_zxid
    }

    fn negotiate(&self, asked: i32) -> i32 {
        asked.clamp(
            self.cfg.min_session_timeout_ms,
            self.cfg.max_session_timeout_ms,
        )
    }

    fn commit(&mut self, session_id: i64, cxid: i32, op: TxnOp, now_ms: i64) -> (i64, Outcome) {
        let zxid = self.head.last_zxid + 1;
        let txn = Txn {
            zxid,
            time_ms: now_ms,
            session_id,
            cxid,
            op,
        };
        let outcome = apply(
            &mut self.head,
            &txn,
            self.cfg.extended_types,
            &mut self.batch.changes,
        );
        self.batch.txns.push(txn);
        (zxid, outcome)
    }

    /// Handles one message from a shard at time `now_ms`.
    pub fn handle(&mut self, msg: CommitRequest, now_ms: i64) {
        match msg {
            CommitRequest::Connect { conn, connect } => self.connect(conn, connect, now_ms),
            CommitRequest::Write {
                conn,
                session_id,
                xid,
                request,
                auth,
                local,
            } => {
                // A session in the table is global whatever the server said (an upgrade
                // may have overtaken the flag).
                let local = local && !self.head.sessions.contains_key(&session_id);
                self.write(conn, (session_id, local), xid, request, &auth, now_ms)
            }
            CommitRequest::UpgradeSession {
                conn,
                session_id,
                timeout_ms,
                passwd,
            } => self.upgrade(conn, session_id, timeout_ms, passwd, now_ms),
            CommitRequest::ConnClosed { conn, session_id } => {
                if let Some(life) = self.lives.get_mut(&session_id) {
                    if life.owner == Some(conn) {
                        life.owner = None;
                    }
                }
            }
            CommitRequest::Touch(ids) => {
                for id in ids {
                    if let (Some(life), Some(s)) =
                        (self.lives.get_mut(&id), self.head.sessions.get(&id))
                    {
                        life.expires_at_ms = now_ms + i64::from(s.timeout_ms);
                    }
                }
            }
        }
    }

    // Long because it follows ZooKeeper's processConnectRequest step by step (new
    // session, refused reattach, reattach that moves the owner), each case short.
    fn connect(&mut self, conn: Origin, connect: Connect, now_ms: i64) {
        let req = &connect.request;
        // ZooKeeperServer.processConnectRequest: a client that has seen a newer zxid
        // than ours must find another server.
        if req.last_zxid_seen > self.head.last_zxid {
            self.batch.replies.push((
                conn,
                ReplyMsg::Close {
                    reason: "client has seen a zxid newer than this server's",
                },
            ));
            return;
        }
        let timeout_ms = self.negotiate(req.time_out);
        if req.session_id == 0 {
            let session_id = self.next_session_id;
            self.next_session_id += 1;
            let mut passwd = [0u8; 16];
            self.entropy.fill(&mut passwd);
            self.create_session(conn, session_id, timeout_ms, passwd, now_ms);
            self.batch.replies.push((
                conn,
                ReplyMsg::Connected {
                    session_id,
                    timeout_ms,
                    passwd,
                    valid: true,
                    read_only: false,
                },
            ));
            return;
        }
        let valid = self
            .head
            .sessions
            .get(&req.session_id)
            .is_some_and(|s| s.passwd[..] == req.passwd[..]);
        if !valid {
            // ZooKeeper drops the session's live connection before it checks the
            // password, so even a refused reattach disconnects the owner.
            if let Some(old) = self
                .lives
                .get_mut(&req.session_id)
                .and_then(|l| l.owner.take())
            {
                self.batch.replies.push((
                    old,
                    ReplyMsg::Close {
                        reason: "session reattach attempted from another connection",
                    },
                ));
            }
            self.batch.replies.push((
                conn,
                ReplyMsg::Connected {
                    session_id: 0,
                    timeout_ms: 0,
                    passwd: [0; 16],
                    valid: false,
                    read_only: false,
                },
            ));
            return;
        }
        let session = &self.head.sessions[&req.session_id];
        let passwd = session.passwd;
        let life = self.lives.entry(req.session_id).or_insert(SessionLife {
            expires_at_ms: 0,
            owner: None,
        });
        life.expires_at_ms = now_ms + i64::from(timeout_ms);
        if let Some(old) = life.owner.replace(conn) {
            if old != conn {
                self.batch.replies.push((
                    old,
                    ReplyMsg::Close {
                        reason: "session reattached on another connection",
                    },
                ));
            }
        }
        self.batch.replies.push((
            conn,
            ReplyMsg::Connected {
                session_id: req.session_id,
                timeout_ms,
                passwd,
                valid: true,
                read_only: false,
            },
        ));
    }

    fn write(
        &mut self,
        conn: Origin,
        (session_id, local): (i64, bool),
        xid: i32,
        request: Request,
        auth: &AuthIds,
        now_ms: i64,
    ) {
        let opcode = opcode_of(&request);
        // A sync reaches the sequencer only in an ensemble, where it must not be answered
        // before the connected server has applied everything committed before it: it
        // rides in the next batch without a txn (ZooKeeper's leader does the same).
        if let Request::Sync(s) = &request {
            self.batch.replies.push((
                conn,
                ReplyMsg::Write {
                    xid,
                    zxid: self.head.last_zxid,
                    opcode,
                    outcome: Outcome::Synced(Arc::from(s.path.as_str())),
                },
            ));
            return;
        }
        // PrepRequestProcessor.checkSession: a session that has reattached elsewhere
        // refuses requests still arriving on its old connection.
        if self
            .lives
            .get(&session_id)
            .and_then(|l| l.owner)
            .is_some_and(|owner| owner != conn)
        {
            self.batch.replies.push((
                conn,
                ReplyMsg::Write {
                    xid,
                    zxid: self.head.last_zxid,
                    opcode,
                    outcome: Outcome::Error(ErrorCode::SessionMoved),
                },
            ));
            return;
        }
        let plan = match request {
            Request::Reconfig(_) => self.reconfig_plan.take(),
            _ => None,
        };
        let ctx = PrepCtx {
            session_id,
            auth,
            extended_types: self.cfg.extended_types,
            skip_acl: self.cfg.skip_acl,
            acl_providers: self.cfg.acl_providers,
            zxid: self.head.last_zxid + 1,
            time_ms: now_ms,
            local_session: local,
            reconfig_enabled: self.cfg.reconfig_enabled,
            reconfig: plan.as_ref(),
            enforce_quota: self.cfg.enforce_quota,
            quota_exceeded: &self.cfg.stats.quota_exceeded,
        };
        let op = prep(&self.head, &request, &ctx);
        let closing = matches!(op, TxnOp::CloseSession { .. });
        let (zxid, outcome) = self.commit(session_id, xid, op, now_ms);
        let outcome = self.reply_outcome(&request, zxid, outcome);
        self.batch.replies.push((
            conn,
            ReplyMsg::Write {
                xid,
                zxid,
                opcode,
                outcome,
            },
        ));
        if closing {
            self.lives.remove(&session_id);
            self.batch.replies.push((
                conn,
                ReplyMsg::Close {
                    reason: CLOSED_BY_CLIENT,
                },
            ));
        }
    }

    /// The reply a committed write gets: a multi's plain creates answer with the path
    /// alone, and a reconfig answers with the new /zookeeper/config and marks the batch.
    fn reply_outcome(&mut self, request: &Request, zxid: i64, mut outcome: Outcome) -> Outcome {
        if let (Request::Multi(ops), Outcome::Multi(results)) = (request, &mut outcome) {
            // A plain create's result carries only the path; which ops are plain is
            // decided after MultiOperationRecord rebuilt them (see multi_create_kind).
            for (op, r) in ops.iter().zip(results.iter_mut()) {
                let plain = match op {
                    ferrokeeper_net::request::MultiOp::Create(c) => {
                        super::prep::multi_create_kind(c)
                            .is_some_and(|(op, _)| op == OpCode::Create)
                    }
                    _ => false,
                };
                if let (true, Outcome::Created { path, .. }) = (plain, &*r) {
                    *r = Outcome::CreatedPlain(path.clone());
                }
            }
        }
        if let (Request::Reconfig(_), Outcome::DataSet(stat)) = (request, &outcome) {
            let data = self
                .head
                .tree
                .get(super::path::CONFIG)
                .and_then(|n| n.data().map(Arc::from))
                .unwrap_or_else(|| Arc::from(&b""[..]));
            outcome = Outcome::Reconfigured { data, stat: *stat };
            self.batch.reconfig = Some(zxid);
        }
        outcome
    }

    /// QuorumZooKeeperServer.makeUpgradeRequest: the local session `session_id` becomes
    /// a global one, attached to `conn`, with its own timeout and password.
    fn upgrade(
        &mut self,
        conn: Origin,
        session_id: i64,
        timeout_ms: i32,
        passwd: [u8; 16],
        now_ms: i64,
    ) {
        if self.head.sessions.contains_key(&session_id) {
            return;
        }
        tracing::info!(
            session = format_args!("0x{session_id:x}"),
            "upgrading a local session"
        );
        self.create_session(conn, session_id, timeout_ms, passwd, now_ms);
    }

    /// Commits the creation of session `session_id` and starts its timeout, owned by
    /// `conn`.
    fn create_session(
        &mut self,
        conn: Origin,
        session_id: i64,
        timeout_ms: i32,
        passwd: [u8; 16],
        now_ms: i64,
    ) {
        self.commit(
            session_id,
            0,
            TxnOp::CreateSession {
                session_id,
                timeout_ms,
                passwd,
            },
            now_ms,
        );
        self.lives.insert(
            session_id,
            SessionLife {
                expires_at_ms: now_ms + i64::from(timeout_ms),
                owner: Some(conn),
            },
        );
    }

    /// Expires sessions not heard from within their timeout, and reaps containers and
    /// TTL nodes when their interval is due. Call it every tick or so.
    pub fn tick(&mut self, now_ms: i64) {
        let mut expired: Vec<i64> = self
            .lives
            .iter()
            .filter(|(_, l)| l.expires_at_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            let life = self.lives.remove(&id);
            if self.head.sessions.contains_key(&id) {
                tracing::info!(session = format_args!("0x{id:x}"), "session expired");
                self.cfg
                    .stats
                    .sessions_expired
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.commit(id, 0, TxnOp::CloseSession { session_id: id }, now_ms);
            }
            if let Some(owner) = life.and_then(|l| l.owner) {
                self.batch.replies.push((
                    owner,
                    ReplyMsg::Close {
                        reason: "session expired",
                    },
                ));
            }
        }
        if now_ms >= self.next_reap_ms {
            self.next_reap_ms = now_ms + self.cfg.container_check_interval_ms;
            self.reap(now_ms);
        }
    }

    /// ContainerManager: empty containers that once had children, containers never
    /// used for `maxNeverUsedIntervalMs`, and childless TTL nodes not modified within
    /// their TTL are deleted, at most `maxPerMinute` per minute.
    fn reap(&mut self, now_ms: i64) {
        let budget = (self.cfg.container_max_per_minute as i64
            * self.cfg.container_check_interval_ms
            / 60_000)
            .max(1) as usize;
        let mut doomed: Vec<Arc<str>> = Vec::new();
        for path in self.head.containers.iter() {
            let Some(n) = self.head.tree.get(path) else {
                continue;
            };
            if n.has_children() {
                continue;
            }
            let used = n.stat().cversion > 0;
            let never_used_expired = self.cfg.container_max_never_used_ms > 0
                && now_ms - n.stat().mtime > self.cfg.container_max_never_used_ms;
            if used || never_used_expired {
                doomed.push(path.clone());
            }
        }
        for path in self.head.ttls.iter() {
            let Some(n) = self.head.tree.get(path) else {
                continue;
            };
            let ttl = ttl_of(n.stat().ephemeral_owner);
            if !n.has_children() && ttl != 0 && now_ms - n.stat().mtime > ttl {
                doomed.push(path.clone());
            }
        }
        for path in doomed.into_iter().take(budget) {
            self.commit(0, 0, TxnOp::Delete { path }, now_ms);
        }
    }

    /// Every session the sequencer times, as (expiry time in ms, session id), for `dump`.
    pub fn session_schedule(&self) -> Vec<(i64, i64)> {
        self.lives
            .iter()
            .map(|(id, l)| (l.expires_at_ms, *id))
            .collect()
    }

    /// Drops everything not committed: the head becomes `committed` (the state
    /// machine's), the batch being built is discarded with its replies, and the timers
    /// of sessions that no longer exist are forgotten. A leader that lost leadership
    /// calls this; its clients' unanswered writes are the shell's to fail.
    pub fn rollback(&mut self, committed: &DataState) {
        self.head = committed.clone();
        self.batch = Batch::default();
        self.lives
            .retain(|id, _| committed.sessions.contains_key(id));
    }

    /// Sessions alive in the head state (for 4lw and tests).
    pub fn session_count(&self) -> usize {
        self.head.sessions.len()
    }
}

/// The opcode a reply must answer for.
pub fn opcode_of(r: &Request) -> OpCode {
    match r {
        Request::Create(c) => c.op(),
        Request::Delete(_) => OpCode::Delete,
        Request::SetData(_) => OpCode::SetData,
        Request::SetAcl(_) => OpCode::SetAcl,
        Request::Check(_) => OpCode::Check,
        Request::Multi(_) => OpCode::Multi,
        Request::CloseSession => OpCode::CloseSession,
        Request::Reconfig(_) => OpCode::Reconfig,
        _ => OpCode::Error,
    }
}

/// An outcome's error code, if the whole request failed (a failed multi is not an
/// error at the reply-header level: its per-op results carry the codes).
pub fn outcome_err(o: &Outcome) -> ErrorCode {
    match o {
        Outcome::Error(e) => *e,
        _ => ErrorCode::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_net::jute::Buffer;
    use ferrokeeper_net::records::ConnectRequest;

    use crate::core::scenario_tests::cfg;

    fn new_session(core: &mut Sequencer, conn: u64, now_ms: i64) -> i64 {
        core.handle(
            CommitRequest::Connect {
                conn: Origin(conn),
                connect: Connect {
                    request: ConnectRequest {
                        protocol_version: 0,
                        last_zxid_seen: 0,
                        time_out: 10_000,
                        session_id: 0,
                        passwd: Buffer(vec![0; 16]),
                    },
                    read_only: false,
                    has_read_only: false,
                },
            },
            now_ms,
        );
        let batch = core.take_batch();
        match batch.replies.last() {
            Some((_, ReplyMsg::Connected { session_id, .. })) => *session_id,
            other => panic!("no handshake answer: {other:?}"),
        }
    }

    /// A restart whose clock reads the same millisecond as the previous start (or an
    /// earlier one: the clock was stepped back) must not hand out a restored session's
    /// id again. Found by the simulator (`FK_SIM_SEED=489`): the second session's
    /// CreateSession replaced the first, live one.
    #[test]
    fn restart_at_an_earlier_clock_does_not_reuse_restored_session_ids() {
        let t = 1_700_000_000_000;
        let mut first = Sequencer::new(cfg(), t, Box::new(SeededEntropy(1)));
        let a = new_session(&mut first, 1, t);
        let b = new_session(&mut first, 2, t);
        for restart_ms in [t, t - 5_000] {
            let mut again = Sequencer::with_state(
                cfg(),
                first.head().clone(),
                restart_ms,
                Box::new(SeededEntropy(2)),
            );
            let c = new_session(&mut again, 3, restart_ms);
            assert!(c != a && c != b, "session id 0x{c:x} handed out again");
            assert_eq!(again.head().sessions.len(), 3);
            assert_eq!(c >> 56, 1, "still this server's id byte");
        }
    }
}
