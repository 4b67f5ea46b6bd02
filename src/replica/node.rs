//! One ensemble member's replication logic, sans IO: raft-rs's `RawNode` beside the
//! sequencer (while this server leads) and the state machine (always). Client requests,
//! peer frames, clock ticks and "the log has persisted up to ready n" go in; peer frames
//! to send, log writes to make durable and completions to publish come out
//! ([`Output`]). The glommio driver (`replica::run`) and a simulator both drive it.
//!
//! - One Raft entry is one sequencer batch ([`super::wire::Entry`]): its txns, and the
//!   replies for clients connected to other servers. A follower releases those replies
//!   when it applies the entry, after the state they reflect: read-your-writes and
//!   "watch event before the data" hold on every server for free.
//! - The leader keeps the replies for its own clients, and the state its sequencer
//!   computed, beside each proposed entry, and adopts that state when the entry commits.
//! - A follower forwards its clients' requests (handshakes, writes, closes, session
//!   touches) to the leader; the leader's sequencer alone decides sessions and expiry.
//! - When the leader changes, every server closes its client connections, as ZooKeeper
//!   does when a server leaves its leader: replies held for the old leader's proposals are
//!   gone, and the clients reconnect (keeping their sessions) and learn the outcome.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChangeV2, ConfState, Entry as RaftEntry, EntryType, HardState, Message, MessageType,
    Snapshot,
};
use raft::{Config as RaftConfig, RawNode, StateRole};

use super::local::{LocalSessions, Reattach};
use super::membership::{conf_change, next_servers, Membership, ReconfigAsk};
use super::store::{Offer, Store};
use super::wire;
use crate::config::ensemble::{PeerRole, ServerSpec};
use crate::core::apply::Outcome;
use crate::core::apply::{apply, Change};
use crate::core::machine::StateMachine;
use crate::core::prep::ReconfigPlan;
use crate::core::sequencer::{
    opcode_of, CommitRequest, CoreConfig, Entropy, Origin, ReplyMsg, Sequencer,
};
use crate::core::state::DataState;
use ferrokeeper_net::codes::{CreateMode, ErrorCode, OpCode};
use ferrokeeper_net::request::{MultiOp, Request};

/// How often at most the commit index alone makes the hard state be stored.
const COMMIT_SAVE_INTERVAL_MS: i64 = 1000;

/// Peer frame kind: a Raft message (raft-rs's protobuf encoding).
pub const KIND_RAFT: u8 = 1;
/// Peer frame kind: requests a follower forwards to the leader ([`wire::encode_forward`]).
pub const KIND_FORWARD: u8 = 2;

/// Where the ensemble's part of an [`Origin`] starts: above the shell's own routing
/// (shard and connection) sit an incarnation byte and the server id. Both are 0 for
/// this server's connections as the shards name them; a request forwarded to the leader
/// carries them, so that the reply in the entry finds its way back. The incarnation
/// (random per process start) keeps a reply meant for a connection of an earlier run of
/// this server, still in an entry committed after a restart, from reaching a new
/// connection that happens to have the same id.
const INCARNATION_SHIFT: u32 = 48;
const SERVER_SHIFT: u32 = 56;

/// `origin` as the leader sees it: tagged with server `id` and `incarnation`.
pub fn tag(origin: Origin, id: u64, incarnation: u8) -> Origin {
    Origin(
        (origin.0 & ((1 << INCARNATION_SHIFT) - 1))
            | (u64::from(incarnation) << INCARNATION_SHIFT)
            | ((id & 0xff) << SERVER_SHIFT),
    )
}

/// `origin` without the ensemble's tag: the shards' name for it.
pub fn untag(origin: Origin) -> Origin {
    Origin(origin.0 & ((1 << INCARNATION_SHIFT) - 1))
}

/// The server byte of an [`Origin`] (0: this server's own connection).
pub fn server_of(origin: Origin) -> u64 {
    origin.0 >> SERVER_SHIFT
}

/// The incarnation byte of an [`Origin`].
pub fn incarnation_of(origin: Origin) -> u8 {
    (origin.0 >> INCARNATION_SHIFT) as u8
}

/// What the node needs to know about the ensemble.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This server's id (`myid`), 1..=255.
    pub id: u64,
    /// Every voting member's id (ZooKeeper's participants).
    pub voters: Vec<u64>,
    /// Members that replicate without voting (ZooKeeper's observers: Raft learners).
    pub learners: Vec<u64>,
    /// Raft ticks without a leader's word before a follower campaigns (the election
    /// timeout is randomized in [this, 2 × this)).
    pub election_tick: usize,
    /// The election timeout's upper bound, exclusive (0: raft-rs's 2 × `election_tick`).
    /// raft-rs draws the timeout from the thread's RNG; a simulator sets
    /// `election_tick + 1` so a seed replays.
    pub max_election_tick: usize,
    /// Raft ticks between the leader's heartbeats.
    pub heartbeat_tick: usize,
    /// The sequencer's settings (a leader creates one).
    pub core: CoreConfig,
    /// This process's incarnation (random per start, 1..=255; see [`tag`]).
    pub incarnation: u8,
    /// `localSessionsEnabled`: new sessions stay on this server (see `replica::local`).
    pub local_sessions: bool,
    /// `localSessionsUpgradingEnabled`: an ephemeral create upgrades a local session
    /// instead of failing with EphemeralOnLocalSession.
    pub local_upgrading: bool,
    /// With `readonlymode.enabled`: how long without a leader before this server serves
    /// read-only clients (ZooKeeper: max(2000 ms, tickTime)); `None`: never.
    pub read_only_after_ms: Option<i64>,
    /// `multiAddress.enabled`: server lines a reconfig brings may have several addresses.
    pub multi_address: bool,
    /// `standaloneEnabled`: a reconfig must leave at least two voters (else one).
    pub standalone_enabled: bool,
}

/// A ready's log work: entries to append (replacing any stored suffix from the first
/// one's index on) and a hard state to make durable, then report `number` persisted.
#[derive(Debug)]
pub struct Persist {
    /// raft-rs's ready number.
    pub number: u64,
    /// Entries, consecutive.
    pub entries: Vec<RaftEntry>,
    /// The hard state to store: when term or vote changed (those must be durable before
    /// a vote or an append response leaves), or the commit index moved and was last
    /// stored a while ago; `None` otherwise.
    pub hard_state: Option<HardState>,
    /// A snapshot installed at this index: drop every stored entry before appending.
    pub snapshot: Option<u64>,
    /// The commit index when the entries were handed out, stored with the last of them
    /// (see [`crate::replica::recover::stored_entries`]).
    pub commit: u64,
}

/// A snapshot the leader sent: the driver writes it as a snapshot file, loads the state
/// from it and hands that to [`Node::installed`] before the ready's log work goes out.
#[derive(Debug)]
pub struct Install {
    /// Index of the last entry it reflects.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// What the leader's loader produced (see `replica::driver`).
    pub data: Vec<u8>,
}

/// A committed step for the shards: the state after it, its watch changes and the
/// replies for this server's connections (origins with the server byte cleared).
#[derive(Debug)]
pub struct Publish {
    /// The state after the entry.
    pub state: Arc<DataState>,
    /// Watch-relevant changes, in order (shared with every shard as they are).
    pub changes: Arc<[Change]>,
    /// Replies for this server's connections, in order.
    pub replies: Vec<(Origin, ReplyMsg)>,
}

/// What the node wants done, in order within each list.
#[derive(Debug, Default)]
pub struct Output {
    /// Peer frames: (to, kind, payload).
    pub send: Vec<(u64, u8, Vec<u8>)>,
    /// Log work, in ready order.
    pub persist: Vec<Persist>,
    /// Completions for the shards, in commit order.
    pub publish: Vec<Publish>,
    /// A snapshot to install, before anything in `persist`.
    pub install: Option<Install>,
    /// A configuration change was applied: `/zookeeper/config`'s text after it (the
    /// driver updates the peers and writes the dynamic configuration file).
    pub membership: Option<String>,
}

/// This server's part in the ensemble, for the four-letter words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leading: the sequencer runs here.
    Leader,
    /// Following a known leader.
    Follower,
    /// Replicating from a known leader without a vote (a ZooKeeper observer).
    Observer,
    /// No leader known (an election is under way).
    Looking,
    /// No leader known for a while, and `readonlymode.enabled`: serving read-only
    /// clients (ZooKeeper's ReadOnlyZooKeeperServer).
    ReadOnly,
}

/// A batch the leader proposed and has not seen committed yet.
struct Proposed {
    index: u64,
    term: u64,
    state: Arc<DataState>,
    changes: Vec<Change>,
    local: Vec<(Origin, ReplyMsg)>,
}

/// What a member starts from (see `replica::recover`).
#[derive(Debug)]
pub struct Restored {
    /// The committed state it knows.
    pub state: DataState,
    /// The Raft position (index, term) of the snapshot `state` came from, if any.
    pub start: Option<(u64, u64)>,
    /// Stored entries after `start`.
    pub entries: Vec<RaftEntry>,
    /// Stored term, vote and commit.
    pub hard_state: Option<HardState>,
    /// Index `state` reflects.
    pub applied: u64,
}

impl Restored {
    /// A member that has never run: `state` and an empty log.
    pub fn fresh(state: DataState) -> Restored {
        Restored {
            state,
            start: None,
            entries: Vec::new(),
            hard_state: None,
            applied: 0,
        }
    }
}

/// One ensemble member.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<Store>,
    /// Index and term of the last entry applied (or of the snapshot the state came from).
    applied_at: (u64, u64),
    machine: StateMachine,
    seq: Option<Sequencer>,
    entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send>,
    proposed: VecDeque<Proposed>,
    leader: u64,
    role: Role,
    /// Requests waiting to be forwarded to the leader (origins already tagged).
    forward: Vec<CommitRequest>,
    /// The `sasl` ACL scheme's provider, when registered: the ids of a forwarded write
    /// arrive without it (it is configuration, not session state) and get it back here.
    sasl_acl: Option<Arc<crate::core::acl::SaslAcl>>,
    /// This server's connections with a session handshake under way or done, to close
    /// when the leader changes.
    conns: HashSet<Origin>,
    /// Persisted messages (vote and append responses) held until their ready is durable.
    held: VecDeque<(u64, Vec<Message>)>,
    /// Term and vote last handed to the log, to tell when the hard state must be synced.
    durable_term_vote: (u64, u64),
    /// The ready (number, index) that brought a snapshot, until the log has persisted it:
    /// raft-rs may not count anything as applied before that.
    apply_after_persist: Option<(u64, u64)>,
    /// Requests forwarded to the leader and not yet answered, per connection: how many,
    /// and since when (the later of the oldest's sending and the last answer).
    awaiting: HashMap<Origin, (u32, i64)>,
    /// The clock at the last step.
    last_now_ms: i64,
    /// Sizes of the entries proposed since leading: last, max, min, and how many.
    proposal_sizes: (u64, u64, u64, u64),
    /// Entries committed in the ready that brought a snapshot, waiting for its state.
    after_install: Vec<RaftEntry>,
    /// Commit index last handed to the log, and when (ms).
    durable_commit: (u64, i64),
    /// Sessions kept on this server alone (`localSessionsEnabled`).
    local: LocalSessions,
    /// Since when no leader has been known (the read-only mode's clock).
    looking_since_ms: Option<i64>,
    /// An observer's Raft ticks since the leader's last message (see [`Node::tick`]).
    quiet_ticks: usize,
    /// The servers a planned `reconfig` asks for, until its batch is proposed.
    reconfig_next: Option<BTreeMap<u64, ServerSpec>>,
    /// An applied configuration left this server out: it serves no client.
    removed: bool,
    /// The snapshot being written of the committed state: its zxid, and the lineage the
    /// state was of ([`Node::snapshot_state`]).
    snapshotting: Option<(i64, u64)>,
    /// The leader's way to a snapshot (see [`Node::snapshot_state`]): freeze the head
    /// when the next batch is proposed, ...
    freeze_next_proposal: bool,
    /// ... wait for that proposal (its zxid) to commit, ...
    frozen_proposal: Option<i64>,
    /// ... and snapshot the state it committed, at its Raft position (index, term).
    snapshot_ready: Option<(Arc<DataState>, (u64, u64))>,
    /// Bumped each time a snapshot from the leader replaces the committed state: the
    /// states before and after are of different trees, and a snapshot of one is no
    /// base for the other (its nodes outside the overlay would be lost or resurrected).
    lineage: u64,
    out: Output,
}

/// What [`Node::rebase`] did, for the log: overlay entries before and after, and the
/// number of nodes whose children lists moved onto the new base, for the committed
/// state and (on the leader) the sequencer's head.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rebased {
    /// The committed state's overlay entries before and after.
    pub state_overlay: (usize, usize),
    /// The committed state's nodes moved onto the new base's lists.
    pub state_moved: usize,
    /// The head's overlay entries before and after, and its nodes moved; `None` when not
    /// leading.
    pub head: Option<(usize, usize, usize)>,
}

/// Why the node cannot go on (the server must stop).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// raft-rs refused.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A committed entry does not decode: the log or a peer is corrupt.
    #[error("committed entry {index} does not decode: {source}")]
    Entry {
        /// Its index.
        index: u64,
        /// Why.
        source: wire::WireError,
    },
}

impl Node {
    /// Registers the `sasl` ACL scheme's provider for writes forwarded by followers
    /// (see the field).
    pub fn set_sasl_acl(&mut self, sasl_acl: Option<Arc<crate::core::acl::SaslAcl>>) {
        self.sasl_acl = sasl_acl;
    }

    /// A node over a recovered log ([`Restored`]).
    pub fn new(
        cfg: NodeConfig,
        restored: Restored,
        mut entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send>,
        logger: &slog::Logger,
    ) -> Result<Node, NodeError> {
        let Restored {
            state,
            start,
            entries,
            hard_state,
            applied,
        } = restored;
        let store = Store::new(ConfState::from((cfg.voters.clone(), cfg.learners.clone())));
        let durable_term_vote;
        let mut applied_at = (0, 0);
        let mut applied = applied;
        if let Some((index, term)) = start {
            store.compact_to(index, term)?;
            applied = applied.max(index);
            applied_at = (index, term);
        }
        {
            let after = start.map(|s| s.0).unwrap_or(0);
            let entries: Vec<RaftEntry> = entries.into_iter().filter(|e| e.index > after).collect();
            if let Some(e) = entries.iter().take_while(|e| e.index <= applied).last() {
                applied_at = (e.index, e.term);
            }
            store.append(&entries)?;
            let mut w = store.mem.wl();
            let mut hs = hard_state.unwrap_or_default();
            durable_term_vote = (hs.term, hs.vote);
            hs.commit = hs.commit.max(applied);
            if hs.term < applied_at.1 {
                hs.term = applied_at.1;
            }
            w.set_hardstate(hs);
        }
        let rc = RaftConfig {
            id: cfg.id,
            election_tick: cfg.election_tick,
            max_election_tick: cfg.max_election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let raw = RawNode::new(&rc, store, logger)?;
        let local = LocalSessions::new(cfg.id as i64, &state, entropy());
        Ok(Node {
            cfg,
            raw,
            applied_at,
            machine: StateMachine::new(state),
            seq: None,
            entropy,
            proposed: VecDeque::new(),
            leader: 0,
            role: Role::Looking,
            forward: Vec::new(),
            sasl_acl: None,
            conns: HashSet::new(),
            held: VecDeque::new(),
            durable_term_vote,
            durable_commit: (applied, 0),
            after_install: Vec::new(),
            awaiting: HashMap::new(),
            last_now_ms: 0,
            proposal_sizes: (0, 0, 0, 0),
            apply_after_persist: None,
            local,
            looking_since_ms: None,
            quiet_ticks: 0,
            reconfig_next: None,
            removed: false,
            snapshotting: None,
            freeze_next_proposal: false,
            frozen_proposal: None,
            snapshot_ready: None,
            lineage: 0,
            out: Output::default(),
        })
    }

    /// The committed state.
    pub fn state(&self) -> &Arc<DataState> {
        self.machine.state()
    }

    /// This server's role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The voters and learners of the Raft configuration this member runs with (the
    /// incoming side while a joint change is under way), each sorted.
    pub fn raft_members(&self) -> (Vec<u64>, Vec<u64>) {
        let cs = self.raw.raft.prs().conf().to_conf_state();
        let (mut voters, mut learners) = (cs.voters, cs.learners);
        voters.sort_unstable();
        learners.sort_unstable();
        (voters, learners)
    }

    /// The leader's id (0 when none is known).
    pub fn leader(&self) -> u64 {
        self.leader
    }

    /// Entry sizes proposed since this server became leader: last, max, min, count.
    pub fn proposal_sizes(&self) -> (u64, u64, u64, u64) {
        self.proposal_sizes
    }

    /// The sequencer, while leading.
    pub fn sequencer(&self) -> Option<&Sequencer> {
        self.seq.as_ref()
    }

    /// On the leader: (learners, synced followers, synced observers). Learners are every
    /// other member the leader replicates to; a member is synced when its log holds
    /// everything committed and it has been heard from recently.
    pub fn followers(&self) -> (usize, usize, usize) {
        if self.role != Role::Leader {
            return (0, 0, 0);
        }
        let commit = self.raw.raft.raft_log.committed;
        let (mut all, mut synced, mut observers) = (0, 0, 0);
        for (id, p) in self.raw.raft.prs().iter() {
            if *id == self.cfg.id {
                continue;
            }
            all += 1;
            if p.matched >= commit && p.recent_active {
                if self.cfg.learners.contains(id) {
                    observers += 1;
                } else {
                    synced += 1;
                }
            }
        }
        (all, synced, observers)
    }

    /// A request from one of this server's shards at `now_ms`.
    pub fn client(&mut self, msg: CommitRequest, now_ms: i64) {
        if self.role == Role::ReadOnly {
            self.client_read_only(msg, now_ms);
            return;
        }
        let msgs = match msg {
            CommitRequest::Connect { conn, connect } => {
                // ZooKeeperServer.processConnectRequest on the server the client reached:
                // a client that has seen a newer zxid than this server must look elsewhere.
                if connect.request.last_zxid_seen > self.machine.last_zxid() {
                    self.reply_now(
                        conn,
                        ReplyMsg::Close {
                            reason: "client has seen a zxid newer than this server's",
                        },
                    );
                    return;
                }
                if self.leader == 0 || self.removed {
                    self.reply_now(
                        conn,
                        ReplyMsg::Close {
                            reason: "closed by the leader",
                        },
                    );
                    return;
                }
                self.conns.insert(conn);
                if self.local_connect(conn, &connect, now_ms) {
                    return;
                }
                vec![CommitRequest::Connect { conn, connect }]
            }
            CommitRequest::ConnClosed { conn, session_id } => {
                self.conns.remove(&conn);
                self.awaiting.remove(&conn);
                if self.local.contains(session_id) {
                    self.local.conn_closed(session_id, conn);
                    return;
                }
                vec![CommitRequest::ConnClosed { conn, session_id }]
            }
            CommitRequest::Write { conn, .. } if self.leader == 0 => {
                self.conns.remove(&conn);
                self.reply_now(
                    conn,
                    ReplyMsg::Close {
                        reason: "closed by the leader",
                    },
                );
                return;
            }
            CommitRequest::Write {
                conn,
                session_id,
                xid,
                request,
                auth,
                local: _,
            } if self.local.contains(session_id) => {
                match self.local_write(conn, session_id, xid, request, auth) {
                    Some(msgs) => msgs,
                    None => return,
                }
            }
            CommitRequest::Touch(ids) => {
                // A local session's touch stays here (LearnerSessionTracker.touchSession).
                let global: Vec<i64> = ids
                    .into_iter()
                    .filter(|id| !self.local.touch(*id, now_ms))
                    .collect();
                if global.is_empty() {
                    return;
                }
                vec![CommitRequest::Touch(global)]
            }
            other => vec![other],
        };
        for msg in msgs {
            if self.seq.is_some() {
                self.lead(msg, now_ms);
            } else if self.leader != 0 {
                if let CommitRequest::Connect { conn, .. } | CommitRequest::Write { conn, .. } =
                    &msg
                {
                    let w = self.awaiting.entry(*conn).or_insert((0, now_ms));
                    if w.0 == 0 {
                        w.1 = now_ms;
                    }
                    w.0 += 1;
                }
                self.forward
                    .push(retag(msg, self.cfg.id, self.cfg.incarnation));
            }
        }
    }

    /// A handshake a local session answers here: a new session when local sessions
    /// are on, or a reattach of one of this server's local sessions. Returns whether it
    /// was answered.
    fn local_connect(
        &mut self,
        conn: Origin,
        connect: &ferrokeeper_net::request::Connect,
        now_ms: i64,
    ) -> bool {
        let req = &connect.request;
        let read_only = self.role == Role::ReadOnly;
        if req.session_id == 0 {
            if !self.cfg.local_sessions {
                return false;
            }
            let timeout_ms = req.time_out.clamp(
                self.cfg.core.min_session_timeout_ms,
                self.cfg.core.max_session_timeout_ms,
            );
            let (session_id, passwd) = self.local.create(timeout_ms, conn, now_ms);
            self.reply_now(
                conn,
                ReplyMsg::Connected {
                    session_id,
                    timeout_ms,
                    passwd,
                    valid: true,
                    read_only,
                },
            );
            return true;
        }
        let (reply, old) = match self
            .local
            .reattach(req.session_id, &req.passwd.0, conn, now_ms)
        {
            Reattach::Unknown => return false,
            Reattach::Refused(old) => (
                ReplyMsg::Connected {
                    session_id: 0,
                    timeout_ms: 0,
                    passwd: [0; 16],
                    valid: false,
                    read_only,
                },
                old,
            ),
            Reattach::Done(timeout_ms, old) => {
                let passwd = req.passwd.0.as_slice().try_into().unwrap_or([0; 16]);
                (
                    ReplyMsg::Connected {
                        session_id: req.session_id,
                        timeout_ms,
                        passwd,
                        valid: true,
                        read_only,
                    },
                    old,
                )
            }
        };
        if let Some(old) = old {
            self.conns.remove(&old);
            self.reply_now(
                old,
                ReplyMsg::Close {
                    reason: "session reattached on another connection",
                },
            );
        }
        self.reply_now(conn, reply);
        true
    }

    /// A write of a local session: a close ends it here; an ephemeral create upgrades
    /// it first (or fails); anything else goes on marked local. Returns what goes on to
    /// the sequencer, or `None` when it was answered here.
    fn local_write(
        &mut self,
        conn: Origin,
        session_id: i64,
        xid: i32,
        request: Request,
        auth: Arc<crate::core::acl::AuthIds>,
    ) -> Option<Vec<CommitRequest>> {
        if let Request::CloseSession = request {
            self.close_local(conn, session_id, xid);
            return None;
        }
        let ephemeral = creates_ephemeral(&request);
        let write = CommitRequest::Write {
            conn,
            session_id,
            xid,
            request,
            auth,
            local: !ephemeral,
        };
        if !ephemeral {
            return Some(vec![write]);
        }
        // QuorumZooKeeperServer.checkUpgradeSession.
        if !self.cfg.local_upgrading {
            let reply = ReplyMsg::Write {
                xid,
                zxid: self.machine.last_zxid(),
                opcode: OpCode::Error,
                outcome: Outcome::Error(ErrorCode::EphemeralOnLocalSession),
            };
            self.reply_now(conn, reply);
            return None;
        }
        let s = self.local.remove(session_id)?;
        tracing::info!(
            session = format_args!("0x{session_id:x}"),
            "local session makes an ephemeral: upgrading it"
        );
        Some(vec![
            CommitRequest::UpgradeSession {
                conn,
                session_id,
                timeout_ms: s.timeout_ms,
                passwd: s.passwd,
            },
            write,
        ])
    }

    /// Ends local session `session_id` at its client's request.
    fn close_local(&mut self, conn: Origin, session_id: i64, xid: i32) {
        self.local.remove(session_id);
        self.conns.remove(&conn);
        let zxid = self.machine.last_zxid();
        self.publish_replies(vec![
            (
                conn,
                ReplyMsg::Write {
                    xid,
                    zxid,
                    opcode: OpCode::CloseSession,
                    outcome: Outcome::SessionClosed,
                },
            ),
            (
                conn,
                ReplyMsg::Close {
                    reason: "client closed the session",
                },
            ),
        ]);
    }

    /// A request while in read-only mode (ReadOnlyZooKeeperServer and its
    /// ReadOnlyRequestProcessor): only clients that asked for read-only are served,
    /// only local sessions can be opened or closed, and every write and sync gets
    /// NotReadOnly. Reads never come here: the shards serve them.
    fn client_read_only(&mut self, msg: CommitRequest, now_ms: i64) {
        match msg {
            CommitRequest::Connect { conn, connect } => {
                let refuse = if !connect.read_only {
                    Some("a read-only server closes clients that did not ask for read-only")
                } else if connect.request.last_zxid_seen > self.machine.last_zxid() {
                    Some("client has seen a zxid newer than this server's")
                } else {
                    None
                };
                if let Some(reason) = refuse {
                    self.reply_now(conn, ReplyMsg::Close { reason });
                    return;
                }
                self.conns.insert(conn);
                if self.local_connect(conn, &connect, now_ms) {
                    return;
                }
                let id = connect.request.session_id;
                if id == 0 || self.machine.state().sessions.contains_key(&id) {
                    // No global session can be created or renewed without a quorum
                    // (ZOOKEEPER-3863, 3.7+): the client keeps looking.
                    self.conns.remove(&conn);
                    self.reply_now(
                        conn,
                        ReplyMsg::Close {
                            reason: "no global session can be created or renewed in read-only mode",
                        },
                    );
                } else {
                    self.reply_now(
                        conn,
                        ReplyMsg::Connected {
                            session_id: 0,
                            timeout_ms: 0,
                            passwd: [0; 16],
                            valid: false,
                            read_only: true,
                        },
                    );
                }
            }
            CommitRequest::Write {
                conn,
                session_id,
                xid,
                request,
                ..
            } => {
                if matches!(request, Request::CloseSession) && self.local.contains(session_id) {
                    self.close_local(conn, session_id, xid);
                    return;
                }
                let reply = ReplyMsg::Write {
                    xid,
                    zxid: self.machine.last_zxid(),
                    opcode: opcode_of(&request),
                    outcome: Outcome::Error(ErrorCode::NotReadOnly),
                };
                self.reply_now(conn, reply);
            }
            CommitRequest::ConnClosed { conn, session_id } => {
                self.conns.remove(&conn);
                self.local.conn_closed(session_id, conn);
            }
            CommitRequest::Touch(ids) => {
                for id in ids {
                    self.local.touch(id, now_ms);
                }
            }
            CommitRequest::UpgradeSession { .. } => {}
        }
    }

    /// Closes the connections of requests forwarded to the leader and not answered
    /// within `timeout_ms`. A forwarded request lost with a broken peer connection would
    /// otherwise leave its client waiting for ever: the follower answers its pings, so
    /// the client never notices (ZooKeeper's follower drops its clients when it loses
    /// the leader for `syncLimit` ticks; this is the same bound per request).
    pub fn expire_forwarded(&mut self, now_ms: i64, timeout_ms: i64) {
        let late: Vec<Origin> = self
            .awaiting
            .iter()
            .filter(|(_, (n, since))| *n > 0 && now_ms - since > timeout_ms)
            .map(|(o, _)| *o)
            .collect();
        for o in late {
            tracing::warn!(
                me = self.cfg.id,
                conn = o.0,
                "no answer from the leader; closing the client's connection"
            );
            self.awaiting.remove(&o);
            self.conns.remove(&o);
            self.reply_now(
                o,
                ReplyMsg::Close {
                    reason: "closed by the leader",
                },
            );
        }
    }

    /// Peer `from` ended the connection it sends on (its process is gone, or the
    /// connection was reset). When that peer is this follower's leader, the follower
    /// stops waiting out the whole election timeout, as ZooKeeper's followers go looking
    /// as soon as the leader's socket closes: it campaigns after a random part of it
    /// (raft-rs's randomized timeout less its minimum, 0 to 8 ticks by default), which
    /// keeps the two followers of a dead leader from campaigning at once. The other
    /// followers grant the pre-vote only once their own lease on the leader ran out, or
    /// they lost it the same way: a leader still heard by a quorum keeps leading.
    ///
    /// On a leader, the lost peer's progress drops back to probing (raft-rs's
    /// `report_unreachable`), so the leader stops streaming entries into the transport's
    /// queue for a dead member; once back, the member is probed and, if the log was
    /// compacted past it meanwhile, sent the snapshot.
    pub fn peer_lost(&mut self, from: u64) {
        if self.raw.raft.state == StateRole::Leader {
            self.raw.report_unreachable(from);
            return;
        }
        let raft = &mut self.raw.raft;
        if from != raft.leader_id || raft.state != StateRole::Follower || !raft.promotable() {
            return;
        }
        let minimum = raft.election_timeout();
        if raft.election_elapsed < minimum {
            tracing::info!(
                me = self.cfg.id,
                leader = from,
                wait_ticks = raft.randomized_election_timeout().saturating_sub(minimum),
                "the leader's connection closed; campaigning without waiting out the lease"
            );
            raft.election_elapsed = minimum;
        }
    }

    /// A frame from peer `from`.
    pub fn peer(&mut self, from: u64, kind: u8, payload: &[u8], now_ms: i64) {
        match kind {
            KIND_RAFT => match Message::parse_from_bytes(payload) {
                Ok(m) => {
                    if m.from != from {
                        tracing::warn!(
                            from,
                            claimed = m.from,
                            "raft message with a wrong sender; dropped"
                        );
                        return;
                    }
                    if from == self.raw.raft.leader_id || m.term > self.raw.raft.term {
                        self.quiet_ticks = 0;
                    }
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!(from, error = %e, "raft message not taken");
                    }
                    // An observer that forgot a quiet leader (`observer_lost_leader`)
                    // hears from it again: raft-rs's soft state did not change, so no
                    // ready reports it.
                    let heard = self.raw.raft.leader_id;
                    if self.leader == 0 && heard != raft::INVALID_ID && self.is_learner() {
                        self.on_leader(heard, self.raw.raft.state, now_ms);
                    }
                }
                Err(e) => tracing::warn!(from, error = %e, "undecodable raft message; dropped"),
            },
            KIND_FORWARD => {
                if self.seq.is_none() {
                    // Not (or no longer) the leader: the follower closes those clients
                    // when it learns of the new leader, and they retry there.
                    return;
                }
                match wire::decode_forward(payload) {
                    Ok(msgs) => {
                        for m in msgs {
                            if origin_of(&m).is_some_and(|o| server_of(o) != from) {
                                tracing::warn!(
                                    from,
                                    "forwarded request for another server's client; dropped"
                                );
                                continue;
                            }
                            let mut m = m;
                            // The peer wire carries no ACL providers: the leader puts its
                            // own sasl provider back on forwarded writes.
                            if let (Some(_), CommitRequest::Write { auth, .. }) =
                                (&self.sasl_acl, &mut m)
                            {
                                *auth =
                                    Arc::new((**auth).clone().with_sasl_acl(self.sasl_acl.clone()));
                            }
                            self.lead(m, now_ms);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(from, error = %e, "undecodable forwarded requests; dropped")
                    }
                }
            }
            _ => tracing::warn!(from, kind, "unknown peer frame kind; dropped"),
        }
    }

    /// Hands a request to the leader's sequencer; a `reconfig` first gets the checks
    /// that need the ensemble ([`Node::plan_reconfig`]).
    fn lead(&mut self, msg: CommitRequest, now_ms: i64) {
        let plan = match &msg {
            CommitRequest::Write {
                request: Request::Reconfig(r),
                ..
            } => Some(self.plan_reconfig(r)),
            _ => None,
        };
        let Some(seq) = self.seq.as_mut() else {
            return;
        };
        let planned = plan.is_some();
        if let Some(plan) = plan {
            seq.plan_reconfig(plan);
        }
        seq.handle(msg, now_ms);
        if planned && seq.batch_reconfig().is_none() {
            // Prep refused it after the plan (the session, or the ACL).
            self.reconfig_next = None;
        }
    }

    /// `PrepRequestProcessor`'s reconfig checks that need the ensemble, in its order:
    /// no reconfig in progress (ReconfigInProgress), `curConfigId` −1 or the last
    /// configuration's version (BadVersion), a valid next membership (BadArguments), and
    /// a synced quorum of its voters (NewConfigNoQuorum). The verdict is the next
    /// membership's server lines.
    fn plan_reconfig(&mut self, r: &ferrokeeper_net::records::ReconfigRequest) -> ReconfigPlan {
        let conf = self.raw.raft.prs().conf().to_conf_state();
        if self.reconfig_next.is_some()
            || self.raw.raft.has_pending_conf()
            || !conf.voters_outgoing.is_empty()
        {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let text = self
            .seq
            .as_ref()
            .map(|s| s.head().config_text())
            .unwrap_or_default();
        let current =
            Membership::parse(&text, self.cfg.multi_address).map_err(|_| ErrorCode::SystemError)?;
        if r.cur_config_id != -1 && r.cur_config_id as u64 != current.version {
            return Err(ErrorCode::BadVersion);
        }
        let ask = ReconfigAsk {
            joining: &r.joining_servers,
            leaving: &r.leaving_servers,
            new_members: &r.new_members,
        };
        let next = next_servers(
            &current,
            ask,
            self.cfg.multi_address,
            self.cfg.standalone_enabled,
        )?;
        // Leader.isQuorumSynced: this server if it votes in the next configuration, and
        // the members it streams entries to that answered lately. Java counts a learner
        // synced once its sync finished and its acks arrive in time, not one holding every
        // committed entry: under steady writes a follower is always a batch behind, and
        // asking that refused adds for as long as the load lasted (CI, session 13).
        let voters: Vec<u64> = next
            .values()
            .filter(|s| s.role == PeerRole::Participant)
            .map(|s| s.id)
            .collect();
        let synced = voters
            .iter()
            .filter(|id| {
                **id == self.cfg.id
                    || self.raw.raft.prs().get(**id).is_some_and(|p| {
                        p.state == raft::ProgressState::Replicate && p.recent_active
                    })
            })
            .count();
        if synced * 2 <= voters.len() {
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let lines = Membership {
            servers: next.clone(),
            version: 0,
        }
        .server_lines();
        self.reconfig_next = Some(next);
        Ok(lines)
    }

    /// One Raft tick; while leading, also the sequencer's clock (expiry, reaping) when
    /// `sessions` says so.
    pub fn tick(&mut self, now_ms: i64, sessions: bool) {
        self.raw.tick();
        self.observer_lost_leader(now_ms);
        self.hand_over_if_demoted();
        if sessions {
            if let Some(seq) = self.seq.as_mut() {
                seq.tick(now_ms);
            }
            let expired = self.local.expire(now_ms);
            let replies: Vec<_> = expired
                .into_iter()
                .filter_map(|(id, owner)| {
                    tracing::info!(session = format_args!("0x{id:x}"), "local session expired");
                    owner
                })
                .map(|o| {
                    self.conns.remove(&o);
                    (
                        o,
                        ReplyMsg::Close {
                            reason: "session expired",
                        },
                    )
                })
                .collect();
            if !replies.is_empty() {
                self.publish_replies(replies);
            }
        }
        self.maybe_read_only(now_ms);
    }

    /// A Raft learner never campaigns, so raft-rs keeps its leader for ever once the
    /// leader goes quiet; a ZooKeeper observer whose leader stops answering for
    /// `syncLimit` ticks drops its clients and looks for a leader. After two election
    /// timeouts without a word from the leader the observer forgets it (the leader's
    /// next heartbeat or a new leader's message brings it back through raft-rs's soft
    /// state).
    fn is_learner(&self) -> bool {
        self.cfg.learners.contains(&self.cfg.id)
    }

    fn observer_lost_leader(&mut self, now_ms: i64) {
        if self.role != Role::Observer {
            self.quiet_ticks = 0;
            return;
        }
        self.quiet_ticks += 1;
        if self.quiet_ticks > 2 * self.cfg.election_tick {
            tracing::info!(
                me = self.cfg.id,
                leader = self.leader,
                "observer: no word from the leader for two election timeouts; looking"
            );
            self.quiet_ticks = 0;
            self.raw.raft.leader_id = raft::INVALID_ID;
            self.on_leader(0, self.raw.raft.state, now_ms);
        }
    }

    /// QuorumPeer's LOOKING loop: with `readonlymode.enabled`, a server that has found
    /// no leader for the configured time starts serving read-only clients.
    fn maybe_read_only(&mut self, now_ms: i64) {
        let Some(after) = self.cfg.read_only_after_ms else {
            return;
        };
        if self.leader != 0 || self.role == Role::ReadOnly {
            return;
        }
        let since = *self.looking_since_ms.get_or_insert(now_ms);
        if now_ms - since >= after {
            tracing::info!(
                me = self.cfg.id,
                waited_ms = now_ms - since,
                "no leader: serving read-only clients"
            );
            self.role = Role::ReadOnly;
        }
    }

    /// The log made readies up to `number` durable.
    pub fn persisted(&mut self, number: u64) {
        while self.held.front().is_some_and(|(n, _)| *n <= number) {
            if let Some((_, msgs)) = self.held.pop_front() {
                for m in msgs {
                    self.send_raft(m);
                }
            }
        }
        self.raw.on_persist_ready(number);
        if let Some((n, _)) = self.apply_after_persist {
            if n <= number {
                self.apply_after_persist = None;
                self.raw.advance_apply();
            }
        }
    }

    /// Index and term of the last entry the committed state reflects.
    pub fn applied_at(&self) -> (u64, u64) {
        self.applied_at
    }

    /// The state the driver loaded from the snapshot in [`Output::install`]; the
    /// entries committed after it in the same ready are applied now.
    pub fn installed(&mut self, state: DataState) -> Result<(), NodeError> {
        self.machine = StateMachine::new(state);
        self.lineage += 1;
        self.drop_leader_snapshot();
        self.publish_replies(Vec::new());
        let committed = std::mem::take(&mut self.after_install);
        self.apply_committed(committed)
    }

    /// The committed state to snapshot and its Raft position (index, term), frozen at
    /// its zxid first ([`StateMachine::freeze`]), so that the rebase on the written file
    /// ([`Node::rebase`]) drops the frozen layer whole, as the standalone commit stage
    /// does, instead of passing over the overlay and merging the children lists of the
    /// nodes written since (measured on the leader without it: 70-150 ms per rebase
    /// after 200k creates under one parent, which held up heartbeats).
    ///
    /// The leader's committed states are its head's, taken when its proposals commit,
    /// and the head is ahead of them while proposals are in flight: then the head is
    /// frozen when the next batch is proposed, and that batch's state is the one to
    /// snapshot once committed. Until it is, this returns `None` (ask again later).
    pub fn snapshot_state(&mut self) -> Option<(Arc<DataState>, (u64, u64))> {
        if let Some(seq) = self.seq.as_mut() {
            if let Some((state, at)) = self.snapshot_ready.take() {
                self.snapshotting = Some((state.last_zxid, self.lineage));
                return Some((state, at));
            }
            if self.freeze_next_proposal || self.frozen_proposal.is_some() {
                return None;
            }
            if seq.last_zxid() != self.machine.last_zxid() {
                self.freeze_next_proposal = true;
                return None;
            }
            // Nothing in flight: the head is the committed state; both freeze.
            seq.freeze();
        }
        let state = self.machine.freeze();
        self.snapshotting = Some((state.last_zxid, self.lineage));
        Some((state, self.applied_at))
    }

    /// Forgets a leader's snapshot under way (see [`Node::snapshot_state`]): the lead
    /// was lost, or the state replaced.
    fn drop_leader_snapshot(&mut self) {
        self.freeze_next_proposal = false;
        self.frozen_proposal = None;
        self.snapshot_ready = None;
    }

    /// Moves the committed state, and the sequencer's head while leading, onto `base`:
    /// the file written from [`Node::snapshot_state`]'s state. Nothing visible changes;
    /// the overlays keep only what was written after the snapshot, and the old overlay
    /// and base go once the shards' published states and the in-flight proposals let go
    /// of them. The head holds the committed state at the snapshot's zxid: it grew from
    /// the committed state (`head_of_log`) by entries Raft commits in order.
    ///
    /// Returns `None` and touches nothing when `base` is not that snapshot, or a snapshot
    /// from the leader replaced the state since it was taken.
    pub fn rebase(&mut self, base: Arc<crate::core::tree::Base>) -> Option<Rebased> {
        let (zxid, lineage) = self.snapshotting.take()?;
        if zxid != base.zxid() || lineage != self.lineage || self.machine.last_zxid() < zxid {
            return None;
        }
        let before = self.machine.state().tree.overlay_len();
        let state_moved = self.machine.rebase(base.clone());
        let mut rebased = Rebased {
            state_overlay: (before, self.machine.state().tree.overlay_len()),
            state_moved,
            head: None,
        };
        // A head behind the snapshot would break the invariant above; it is left on its
        // old base then (correct, only larger) rather than stopping the server.
        if let Some(seq) = self.seq.as_mut().filter(|s| s.last_zxid() >= zxid) {
            let before = seq.head().tree.overlay_len();
            let moved = seq.rebase(base);
            rebased.head = Some((before, seq.head().tree.overlay_len(), moved));
        }
        Some(rebased)
    }

    /// Offers followers that are behind the log's start the snapshot `offer`.
    pub fn offer_snapshot(&self, offer: Offer) {
        self.raw.store().set_offer(offer);
    }

    /// Where to compact for a snapshot at `index` ([`Store::compact_point`]).
    pub fn compact_point(&self, index: u64, max_entries: u64, max_bytes: u64) -> u64 {
        self.raw
            .store()
            .compact_point(index, max_entries, max_bytes)
    }

    /// Drops the in-memory entries up to `index` (at most the applied index, and only
    /// entries already on disk); a follower that needs them gets the offered snapshot.
    pub fn compact(&mut self, index: u64) -> Result<(), NodeError> {
        let log = &self.raw.raft.raft_log;
        let index = index.min(self.applied_at.0).min(log.persisted);
        if index < log.first_index() {
            return Ok(());
        }
        let term = log.term(index)?;
        self.raw.store().compact_to(index, term)?;
        Ok(())
    }

    /// Proposes what the sequencer has built, handles raft-rs's readies, and returns
    /// everything to do.
    pub fn step(&mut self, now_ms: i64) -> Result<Output, NodeError> {
        self.last_now_ms = now_ms;
        self.propose()?;
        if !self.forward.is_empty() && self.leader != 0 && self.leader != self.cfg.id {
            let mut buf = Vec::new();
            wire::encode_forward(&self.forward, &mut buf);
            self.forward.clear();
            self.out.send.push((self.leader, KIND_FORWARD, buf));
        }
        while self.raw.has_ready() {
            self.ready(now_ms)?;
            // A leader's own proposals may now be in the sequencer's batch (a change of
            // role produced closes): propose them in the same step.
            self.propose()?;
        }
        Ok(std::mem::take(&mut self.out))
    }

    fn propose(&mut self) -> Result<(), NodeError> {
        // raft-rs can step down inside a tick (check_quorum: the quorum went quiet) or a
        // peer message, before the ready that reports it has reached `on_leader`: the
        // sequencer is still here then, and raft-rs would drop the proposal
        // (ProposalDropped), which the driver treats as fatal, or, with a new leader
        // known, forward it there with this sequencer's zxids. Leave the batch in the
        // sequencer; the coming ready drops both and closes the connections whose
        // replies it held.
        // So does a leader handing over the lead (a reconfig took its vote): raft-rs
        // drops proposals until the transfer ends one way or the other.
        if self.raw.raft.state != StateRole::Leader || self.raw.raft.lead_transferee.is_some() {
            return Ok(());
        }
        let Some(seq) = self.seq.as_mut() else {
            return Ok(());
        };
        let batch = seq.take_batch();
        if batch.txns.is_empty() && batch.replies.is_empty() {
            return Ok(());
        }
        if self.freeze_next_proposal && !batch.txns.is_empty() {
            // The state this batch commits is the next snapshot (`snapshot_state`).
            self.freeze_next_proposal = false;
            seq.freeze();
            self.frozen_proposal = Some(seq.last_zxid());
        }
        let state = Arc::new(seq.head().clone());
        let (local, remote): (Vec<_>, Vec<_>) = batch
            .replies
            .into_iter()
            .partition(|(o, _)| server_of(*o) == 0);
        let mut data = Vec::new();
        wire::encode_entry(&batch.txns, &remote, &mut data);
        let before = self.raw.raft.raft_log.last_index();
        let size = data.len() as u64;
        let next = self.reconfig_next.take();
        match (batch.reconfig, next) {
            (Some(zxid), Some(next)) => {
                let conf = self.raw.raft.prs().conf().to_conf_state();
                let mut cc = conf_change(&conf, &next);
                if cc.changes.is_empty() {
                    // Only addresses changed: the text is all there is to replicate.
                    self.raw.propose(Vec::new(), data)?;
                } else {
                    tracing::info!(
                        me = self.cfg.id,
                        zxid = format_args!("0x{zxid:x}"),
                        changes = ?cc.changes,
                        "reconfig: proposing a configuration change"
                    );
                    // The batch rides inside the change (its context), so the log keeps
                    // one entry for both and every member applies them together.
                    cc.context = data.into();
                    self.raw.propose_conf_change(Vec::new(), cc)?;
                }
            }
            _ => self.raw.propose(Vec::new(), data)?,
        }
        let p = &mut self.proposal_sizes;
        *p = if p.3 == 0 {
            (size, size, size, 1)
        } else {
            (size, p.1.max(size), p.2.min(size), p.3 + 1)
        };
        let index = self.raw.raft.raft_log.last_index();
        debug_assert_eq!(index, before + 1);
        self.proposed.push_back(Proposed {
            index,
            term: self.raw.raft.term,
            state,
            changes: batch.changes,
            local,
        });
        Ok(())
    }

    fn ready(&mut self, now_ms: i64) -> Result<(), NodeError> {
        let mut rd = self.raw.ready();
        for m in rd.take_messages() {
            self.send_raft(m);
        }
        let installed_at = if rd.snapshot().is_empty() {
            None
        } else {
            Some(self.take_snapshot(rd.snapshot())?)
        };
        if let Some(ss) = rd.ss() {
            let (leader, role) = (ss.leader_id, ss.raft_state);
            self.on_leader(leader, role, now_ms);
        }
        let committed = rd.take_committed_entries();
        if installed_at.is_some() {
            // They follow the snapshot: applied once its state is in (`installed`).
            self.after_install = committed;
        } else {
            self.apply_committed(committed)?;
        }
        let entries = rd.take_entries();
        let hard_state = rd.hs().cloned();
        if !entries.is_empty() {
            self.raw.mut_store().append(&entries)?;
        }
        let mut durable_hs = None;
        if let Some(hs) = hard_state {
            let tv = (hs.term, hs.vote);
            self.raw.mut_store().mem.wl().set_hardstate(hs.clone());
            // Term and vote must be durable before a vote or an append response leaves.
            // The commit index rides with the entries (`Persist::commit`), which a
            // configuration change needs; the hard state's copy is also stored about once
            // a second, for a restart after a quiet spell.
            let commit_due = hs.commit > self.durable_commit.0
                && now_ms - self.durable_commit.1 >= COMMIT_SAVE_INTERVAL_MS;
            if tv != self.durable_term_vote || commit_due {
                self.durable_term_vote = tv;
                self.durable_commit = (hs.commit, now_ms);
                durable_hs = Some(hs);
            }
        }
        let number = rd.number();
        // raft-rs hands a follower every message as one to send after the ready is
        // durable, heartbeat responses included; they claim nothing about the log, so
        // they leave now. Held behind a slow fdatasync they would let the leader's
        // check_quorum depose it for a busy disk (ZooKeeper's pings do not wait for the
        // sync queue either).
        let (liveness, persisted): (Vec<Message>, Vec<Message>) = rd
            .take_persisted_messages()
            .into_iter()
            .partition(|m| m.get_msg_type() == MessageType::MsgHeartbeatResponse);
        for m in liveness {
            self.send_raft(m);
        }
        let must_persist = !entries.is_empty() || durable_hs.is_some() || installed_at.is_some();
        self.raw.advance_append_async(rd);
        if must_persist {
            self.out.persist.push(Persist {
                number,
                entries,
                hard_state: durable_hs,
                snapshot: installed_at,
                commit: self.raw.raft.raft_log.committed,
            });
            if !persisted.is_empty() {
                self.held.push_back((number, persisted));
            }
        } else {
            // Nothing to make durable: the ready is persisted as soon as it is handed
            // back, and its messages may leave (after any earlier held ones).
            if self.held.is_empty() {
                for m in persisted {
                    self.send_raft(m);
                }
                self.raw.on_persist_ready(number);
            } else {
                self.held.push_back((number, persisted));
                self.out.persist.push(Persist {
                    number,
                    entries: Vec::new(),
                    hard_state: None,
                    snapshot: None,
                    commit: 0,
                });
            }
        }
        if let Some(index) = installed_at {
            // raft-rs takes the snapshot as applied only once it is persisted.
            self.apply_after_persist = Some((number, index));
        } else if self.apply_after_persist.is_none() {
            self.raw.advance_apply();
        }
        Ok(())
    }

    /// The leader no longer has the entries this server lacks: take its state whole. The
    /// store starts after the snapshot; the driver fetches the file, loads it and calls
    /// `installed` before this ready's log work goes out. Returns the snapshot's index.
    fn take_snapshot(&mut self, snap: &Snapshot) -> Result<u64, NodeError> {
        let (index, term) = (snap.get_metadata().index, snap.get_metadata().term);
        tracing::info!(
            me = self.cfg.id,
            index,
            term,
            "installing a snapshot from the leader"
        );
        self.raw.mut_store().apply_snapshot(Snapshot {
            data: Default::default(),
            ..snap.clone()
        })?;
        self.out.install = Some(Install {
            index,
            term,
            data: snap.data.to_vec(),
        });
        self.applied_at = (index, term);
        self.proposed.clear();
        Ok(index)
    }

    fn on_leader(&mut self, leader: u64, role: StateRole, now_ms: i64) {
        let was_leading = self.seq.is_some();
        let changed = leader != self.leader;
        if changed {
            tracing::info!(
                me = self.cfg.id,
                leader,
                ?role,
                term = self.raw.raft.term,
                "leader changed"
            );
            // Connections go with the leader they were served under, and so do the
            // local sessions (ZooKeeper builds a new server object after each election);
            // a read-only server's clients move back to read-write servers the same way.
            if self.leader != 0 || self.role == Role::ReadOnly {
                self.close_all();
            }
            self.forward.clear();
            self.looking_since_ms = (leader == 0).then_some(now_ms);
        }
        self.leader = leader;
        let observer = self.cfg.learners.contains(&self.cfg.id);
        self.role = match role {
            StateRole::Leader => Role::Leader,
            _ if leader != 0 && observer => Role::Observer,
            _ if leader != 0 => Role::Follower,
            _ if self.role == Role::ReadOnly => Role::ReadOnly,
            _ => Role::Looking,
        };
        if role == StateRole::Leader && !was_leading {
            let head = self.head_of_log();
            let entropy = (self.entropy)();
            self.proposal_sizes = (0, 0, 0, 0);
            self.seq = Some(Sequencer::with_state(
                self.cfg.core.clone(),
                head,
                now_ms,
                entropy,
            ));
        } else if role != StateRole::Leader && was_leading {
            self.seq = None;
            self.proposed.clear();
            self.drop_leader_snapshot();
        }
    }

    /// The committed state plus every txn in the log after it: what a new leader's
    /// sequencer starts from (Raft commits those entries before any of its own).
    fn head_of_log(&self) -> DataState {
        let mut head = (**self.machine.state()).clone();
        let log = &self.raw.raft.raft_log;
        let mut changes = Vec::new();
        if log.last_index() > log.applied {
            let entries = log
                .entries(log.applied + 1, None, raft::GetEntriesContext::empty(false))
                .unwrap_or_default();
            for e in &entries {
                let Ok(Some((batch, _))) = entry_parts(e) else {
                    continue;
                };
                if let Ok(entry) = wire::decode_entry(&batch) {
                    for t in entry.txns {
                        if t.zxid == head.last_zxid + 1 {
                            let extended = head.extended_types;
                            apply(&mut head, &t, extended, &mut changes);
                        }
                    }
                }
            }
        }
        head
    }

    fn apply_committed(&mut self, committed: Vec<RaftEntry>) -> Result<(), NodeError> {
        for e in committed {
            self.applied_at = (e.index, e.term);
            while self.proposed.front().is_some_and(|p| p.index < e.index) {
                self.proposed.pop_front();
            }
            let (batch, cc) = match entry_parts(&e) {
                Ok(Some(parts)) => parts,
                // The no-op a new leader appends.
                Ok(None) => continue,
                Err(source) => {
                    return Err(NodeError::Entry {
                        index: e.index,
                        source,
                    })
                }
            };
            if !batch.is_empty() {
                self.apply_batch(&e, &batch)?;
            }
            if let Some(cc) = cc {
                self.apply_conf_change(&cc, e.index);
            }
        }
        Ok(())
    }

    /// Applies one committed batch and publishes it with this server's replies.
    fn apply_batch(&mut self, e: &RaftEntry, batch: &[u8]) -> Result<(), NodeError> {
        {
            let entry = wire::decode_entry(batch).map_err(|source| NodeError::Entry {
                index: e.index,
                source,
            })?;
            let mine = self
                .proposed
                .front()
                .is_some_and(|p| p.index == e.index && p.term == e.term);
            let mut replies = Vec::new();
            let (state, changes) = if mine {
                let Some(p) = self.proposed.pop_front() else {
                    unreachable!("checked above")
                };
                let applied = self.machine.adopt(&entry.txns, p.state, p.changes);
                replies = p.local;
                if self.frozen_proposal == Some(applied.state.last_zxid) {
                    self.frozen_proposal = None;
                    self.snapshot_ready = Some((applied.state.clone(), self.applied_at));
                }
                (applied.state, applied.changes)
            } else {
                let fresh: Vec<_> = entry
                    .txns
                    .into_iter()
                    .filter(|t| t.zxid > self.machine.last_zxid())
                    .collect();
                let applied = self.machine.apply(&fresh);
                (applied.state, applied.changes)
            };
            if self
                .frozen_proposal
                .is_some_and(|z| self.machine.last_zxid() >= z)
            {
                // Its zxid committed in an entry not proposed here (the lead changed
                // within one ready): the next `snapshot_state` starts over.
                self.frozen_proposal = None;
            }
            for (o, r) in entry.replies {
                if server_of(o) == self.cfg.id && incarnation_of(o) == self.cfg.incarnation {
                    let local = untag(o);
                    if let Some(w) = self.awaiting.get_mut(&local) {
                        if matches!(r, ReplyMsg::Write { .. } | ReplyMsg::Connected { .. }) {
                            w.0 = w.0.saturating_sub(1);
                            w.1 = self.last_now_ms;
                        }
                        if w.0 == 0 || matches!(r, ReplyMsg::Close { .. }) {
                            self.awaiting.remove(&local);
                        }
                    }
                    if let ReplyMsg::Close { .. } = r {
                        self.conns.remove(&local);
                    }
                    replies.push((local, r));
                }
            }
            self.out.publish.push(Publish {
                state,
                changes,
                replies,
            });
        }
        Ok(())
    }

    /// Makes Raft adopt a committed configuration change (the batch that set
    /// `/zookeeper/config` was applied just before). A member the change leaves out
    /// closes its clients and serves none; a leader that no longer votes hands the lead
    /// to the most up-to-date voter.
    fn apply_conf_change(&mut self, cc: &ConfChangeV2, index: u64) {
        let joint = !self
            .raw
            .raft
            .prs()
            .conf()
            .to_conf_state()
            .voters_outgoing
            .is_empty();
        if cc.changes.is_empty() && !joint {
            // Leaving a joint configuration this member never entered: it restarted
            // from a state that already holds the change (see `replica::membership`).
            return;
        }
        let cs = match self.raw.apply_conf_change(cc) {
            Ok(cs) => cs,
            Err(e) => {
                // A member that started from a snapshot taken after the change sees it
                // again; raft-rs refuses what it already has.
                tracing::warn!(me = self.cfg.id, index, error = %e, "configuration change not applied");
                return;
            }
        };
        tracing::info!(me = self.cfg.id, index, voters = ?cs.voters, learners = ?cs.learners,
            outgoing = ?cs.voters_outgoing, "configuration change applied");
        self.raw.mut_store().set_conf(cs.clone());
        self.cfg.voters = cs.voters.clone();
        self.cfg.learners = cs.learners.clone();
        let me = self.cfg.id;
        let member = [
            &cs.voters,
            &cs.learners,
            &cs.voters_outgoing,
            &cs.learners_next,
        ]
        .iter()
        .any(|ids| ids.contains(&me));
        if !member && !self.removed {
            tracing::info!(
                me,
                "reconfig: this server left the ensemble; closing its clients"
            );
            self.removed = true;
            self.close_all();
            self.role = Role::Looking;
        } else if member {
            self.removed = false;
            if matches!(self.role, Role::Follower | Role::Observer) {
                self.role = if self.is_learner() {
                    Role::Observer
                } else {
                    Role::Follower
                };
            }
        }
        self.hand_over_if_demoted();
        self.out.membership = Some(self.machine.state().config_text());
    }

    /// A leader the configuration no longer counts as a voter hands the lead to the
    /// most up-to-date voter; again on later ticks while the handover has not happened
    /// (the voter may not have applied the change yet, and then refuses to campaign).
    fn hand_over_if_demoted(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            return;
        }
        if self.raw.raft.lead_transferee.is_some() {
            self.step_down_if_removed();
            return;
        }
        let cs = self.raw.raft.prs().conf().to_conf_state();
        let me = self.cfg.id;
        if cs.voters.contains(&me) || !cs.voters_outgoing.is_empty() {
            return;
        }
        let commit = self.raw.raft.raft_log.committed;
        let best = cs
            .voters
            .iter()
            .filter_map(|id| self.raw.raft.prs().get(*id).map(|p| (p.matched, *id)))
            .filter(|(matched, _)| *matched >= commit)
            .max();
        if let Some((_, to)) = best {
            tracing::info!(
                me,
                to,
                "reconfig: this leader no longer votes; handing over"
            );
            self.raw.transfer_leader(to);
        }
        self.step_down_if_removed();
    }

    /// A leader removed outright steps down in its term. raft-rs would go on leading
    /// without a progress entry of its own and panic on the next append response
    /// (`maybe_commit` unwraps it; raft-rs marks that branch untested). A TimeoutNow the
    /// handover queued still goes out; otherwise the voters elect a leader when their
    /// election timeout passes.
    fn step_down_if_removed(&mut self) {
        let me = self.cfg.id;
        if self.raw.raft.state == StateRole::Leader && self.raw.raft.prs().get(me).is_none() {
            let term = self.raw.raft.term;
            self.raw.raft.become_follower(term, raft::INVALID_ID);
            tracing::info!(
                me,
                term,
                "reconfig: this leader left the ensemble; stepped down"
            );
        }
    }

    fn close_all(&mut self) {
        self.awaiting.clear();
        self.local.clear();
        let replies: Vec<_> = self
            .conns
            .drain()
            .map(|o| {
                (
                    o,
                    ReplyMsg::Close {
                        reason: "closed by the leader",
                    },
                )
            })
            .collect();
        if !replies.is_empty() {
            tracing::info!(
                me = self.cfg.id,
                connections = replies.len(),
                "leader changed: closing client connections"
            );
            self.publish_replies(replies);
        }
    }

    fn reply_now(&mut self, conn: Origin, reply: ReplyMsg) {
        self.publish_replies(vec![(conn, reply)]);
    }

    /// Publishes `replies` with the committed state as it is (no txn, no watch change).
    fn publish_replies(&mut self, replies: Vec<(Origin, ReplyMsg)>) {
        self.out.publish.push(Publish {
            state: self.machine.state().clone(),
            changes: Arc::default(),
            replies,
        });
    }

    fn send_raft(&mut self, m: Message) {
        let to = m.to;
        match m.write_to_bytes() {
            Ok(bytes) => self.out.send.push((to, KIND_RAFT, bytes)),
            Err(e) => tracing::error!(to, error = %e, "raft message does not encode; dropped"),
        }
    }
}

/// An entry's batch bytes and its configuration change, if it is one.
pub type EntryParts<'a> = (Cow<'a, [u8]>, Option<ConfChangeV2>);

/// A committed entry's batch bytes and configuration change: a normal entry's data, or
/// a change with its batch in the context (see [`Node::propose`]); `None` for the
/// no-op a new leader appends. Shared with the log replay at start.
pub fn entry_parts(e: &RaftEntry) -> Result<Option<EntryParts<'_>>, wire::WireError> {
    match e.get_entry_type() {
        EntryType::EntryNormal if e.data.is_empty() => Ok(None),
        EntryType::EntryNormal => Ok(Some((Cow::Borrowed(&e.data[..]), None))),
        EntryType::EntryConfChangeV2 => {
            let cc = ConfChangeV2::parse_from_bytes(&e.data)
                .map_err(|err| wire::WireError::Other(format!("configuration change: {err}")))?;
            let batch = cc.context.to_vec();
            Ok(Some((Cow::Owned(batch), Some(cc))))
        }
        // ferrokeeper never proposes the first form.
        EntryType::EntryConfChange => Ok(None),
    }
}

fn origin_of(m: &CommitRequest) -> Option<Origin> {
    match m {
        CommitRequest::Connect { conn, .. }
        | CommitRequest::Write { conn, .. }
        | CommitRequest::UpgradeSession { conn, .. }
        | CommitRequest::ConnClosed { conn, .. } => Some(*conn),
        CommitRequest::Touch(_) => None,
    }
}

fn retag(mut m: CommitRequest, id: u64, incarnation: u8) -> CommitRequest {
    match &mut m {
        CommitRequest::Connect { conn, .. }
        | CommitRequest::Write { conn, .. }
        | CommitRequest::UpgradeSession { conn, .. }
        | CommitRequest::ConnClosed { conn, .. } => *conn = tag(*conn, id, incarnation),
        CommitRequest::Touch(_) => {}
    }
    m
}

/// Whether `request` creates an ephemeral node (a create, or a multi with one), the
/// requests QuorumZooKeeperServer.checkUpgradeSession upgrades a local session for.
fn creates_ephemeral(request: &Request) -> bool {
    let ephemeral = |flags: i32| CreateMode::from_i32(flags).is_some_and(|m| m.is_ephemeral());
    match request {
        Request::Create(c) => ephemeral(c.flags),
        Request::Multi(ops) => ops.iter().any(|op| match op {
            MultiOp::Create(c) => ephemeral(c.flags),
            _ => false,
        }),
        _ => false,
    }
}

/// A slog drain that hands raft-rs's log lines to `tracing` (raft-rs logs through slog).
pub struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{}", record.msg())
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{}", record.msg()),
            slog::Level::Info => tracing::info!(target: "raft", "{}", record.msg()),
            _ => tracing::debug!(target: "raft", "{}", record.msg()),
        }
        Ok(())
    }
}

/// The logger raft-rs gets.
pub fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

#[cfg(test)]
mod tests;
