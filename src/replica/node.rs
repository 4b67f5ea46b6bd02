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

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry as RaftEntry, EntryType, HardState, Message};
use raft::storage::MemStorage;
use raft::{Config as RaftConfig, RawNode, StateRole};

use super::wire;
use crate::core::apply::{apply, Change};
use crate::core::machine::StateMachine;
use crate::core::sequencer::{CommitRequest, CoreConfig, Entropy, Origin, ReplyMsg, Sequencer};
use crate::core::state::DataState;

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
    /// Every voting member's id, this one included.
    pub voters: Vec<u64>,
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
}

/// A ready's log work: entries to append (replacing any stored suffix from the first
/// one's index on) and a hard state to make durable, then report `number` persisted.
#[derive(Debug)]
pub struct Persist {
    /// raft-rs's ready number.
    pub number: u64,
    /// Entries, consecutive.
    pub entries: Vec<RaftEntry>,
    /// The new hard state when term or vote changed (those must be durable before a vote
    /// or an append response leaves); `None` when only the commit index moved.
    pub hard_state: Option<HardState>,
}

/// A committed step for the shards: the state after it, its watch changes and the
/// replies for this server's connections (origins with the server byte cleared).
#[derive(Debug)]
pub struct Publish {
    /// The state after the entry.
    pub state: Arc<DataState>,
    /// Watch-relevant changes, in order.
    pub changes: Vec<Change>,
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
}

/// This server's part in the ensemble, for the four-letter words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leading: the sequencer runs here.
    Leader,
    /// Following a known leader.
    Follower,
    /// No leader known (an election is under way).
    Looking,
}

/// A batch the leader proposed and has not seen committed yet.
struct Proposed {
    index: u64,
    term: u64,
    state: Arc<DataState>,
    changes: Vec<Change>,
    local: Vec<(Origin, ReplyMsg)>,
}

/// One ensemble member.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<MemStorage>,
    machine: StateMachine,
    seq: Option<Sequencer>,
    entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send>,
    proposed: VecDeque<Proposed>,
    leader: u64,
    role: Role,
    /// Requests waiting to be forwarded to the leader (origins already tagged).
    forward: Vec<CommitRequest>,
    /// This server's connections with a session handshake under way or done, to close
    /// when the leader changes.
    conns: HashSet<Origin>,
    /// Persisted messages (vote and append responses) held until their ready is durable.
    held: VecDeque<(u64, Vec<Message>)>,
    /// Term and vote last handed to the log, to tell when the hard state must be synced.
    durable_term_vote: (u64, u64),
    out: Output,
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
    /// The leader sent a snapshot; installing one is not built yet.
    #[error("the leader sent a snapshot at index {0}; snapshot install is not supported yet")]
    Snapshot(u64),
}

impl Node {
    /// A node over a recovered log: `entries` as stored (after `applied`, which the state
    /// machine's `state` already reflects), `hard_state` as last made durable.
    pub fn new(
        cfg: NodeConfig,
        state: DataState,
        entries: Vec<RaftEntry>,
        hard_state: Option<HardState>,
        applied: u64,
        entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send>,
        logger: &slog::Logger,
    ) -> Result<Node, NodeError> {
        let store = MemStorage::new_with_conf_state(ConfState::from((cfg.voters.clone(), vec![])));
        let mut durable_term_vote = (0, 0);
        {
            let mut w = store.wl();
            w.append(&entries)?;
            if let Some(hs) = hard_state {
                durable_term_vote = (hs.term, hs.vote);
                w.set_hardstate(hs);
            }
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
        Ok(Node {
            cfg,
            raw,
            machine: StateMachine::new(state),
            seq: None,
            entropy,
            proposed: VecDeque::new(),
            leader: 0,
            role: Role::Looking,
            forward: Vec::new(),
            conns: HashSet::new(),
            held: VecDeque::new(),
            durable_term_vote,
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

    /// The leader's id (0 when none is known).
    pub fn leader(&self) -> u64 {
        self.leader
    }

    /// The sequencer, while leading.
    pub fn sequencer(&self) -> Option<&Sequencer> {
        self.seq.as_ref()
    }

    /// On the leader: (followers, followers whose log matches the leader's commit).
    pub fn followers(&self) -> (usize, usize) {
        if self.role != Role::Leader {
            return (0, 0);
        }
        let commit = self.raw.raft.raft_log.committed;
        let mut all = 0;
        let mut synced = 0;
        for (id, p) in self.raw.raft.prs().iter() {
            if *id == self.cfg.id {
                continue;
            }
            all += 1;
            if p.matched >= commit && p.recent_active {
                synced += 1;
            }
        }
        (all, synced)
    }

    /// A request from one of this server's shards at `now_ms`.
    pub fn client(&mut self, msg: CommitRequest, now_ms: i64) {
        match &msg {
            CommitRequest::Connect { conn, connect } => {
                // ZooKeeperServer.processConnectRequest on the server the client reached:
                // a client that has seen a newer zxid than this server must look elsewhere.
                if connect.request.last_zxid_seen > self.machine.last_zxid() {
                    self.reply_now(
                        *conn,
                        ReplyMsg::Close {
                            reason: "client has seen a zxid newer than this server's",
                        },
                    );
                    return;
                }
                if self.leader == 0 {
                    self.reply_now(
                        *conn,
                        ReplyMsg::Close {
                            reason: "closed by the leader",
                        },
                    );
                    return;
                }
                self.conns.insert(*conn);
            }
            CommitRequest::ConnClosed { conn, .. } => {
                self.conns.remove(conn);
            }
            CommitRequest::Write { conn, .. } if self.leader == 0 => {
                let conn = *conn;
                self.conns.remove(&conn);
                self.reply_now(
                    conn,
                    ReplyMsg::Close {
                        reason: "closed by the leader",
                    },
                );
                return;
            }
            _ => {}
        }
        if let Some(seq) = self.seq.as_mut() {
            seq.handle(msg, now_ms);
        } else if self.leader != 0 {
            self.forward
                .push(retag(msg, self.cfg.id, self.cfg.incarnation));
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
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!(from, error = %e, "raft message not taken");
                    }
                }
                Err(e) => tracing::warn!(from, error = %e, "undecodable raft message; dropped"),
            },
            KIND_FORWARD => {
                let Some(seq) = self.seq.as_mut() else {
                    // Not (or no longer) the leader: the follower closes those clients
                    // when it learns of the new leader, and they retry there.
                    return;
                };
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
                            seq.handle(m, now_ms);
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

    /// One Raft tick; while leading, also the sequencer's clock (expiry, reaping) when
    /// `sessions` says so.
    pub fn tick(&mut self, now_ms: i64, sessions: bool) {
        self.raw.tick();
        if sessions {
            if let Some(seq) = self.seq.as_mut() {
                seq.tick(now_ms);
            }
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
    }

    /// Proposes what the sequencer has built, handles raft-rs's readies, and returns
    /// everything to do.
    pub fn step(&mut self, now_ms: i64) -> Result<Output, NodeError> {
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
        let Some(seq) = self.seq.as_mut() else {
            return Ok(());
        };
        if self.raw.raft.state != StateRole::Leader {
            // raft-rs stepped down (a tick without quorum, a higher term) and the ready
            // that says so is not handled yet: a proposal now would be refused
            // (ProposalDropped, no leader known) or forwarded to the new leader with this
            // sequencer's zxids. That ready drops the sequencer and closes its clients.
            return Ok(());
        }
        let batch = seq.take_batch();
        if batch.txns.is_empty() && batch.replies.is_empty() {
            return Ok(());
        }
        let state = Arc::new(seq.head().clone());
        let (local, remote): (Vec<_>, Vec<_>) = batch
            .replies
            .into_iter()
            .partition(|(o, _)| server_of(*o) == 0);
        let mut data = Vec::new();
        wire::encode_entry(&batch.txns, &remote, &mut data);
        let before = self.raw.raft.raft_log.last_index();
        self.raw.propose(Vec::new(), data)?;
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
        if !rd.snapshot().is_empty() {
            return Err(NodeError::Snapshot(rd.snapshot().get_metadata().index));
        }
        if let Some(ss) = rd.ss() {
            let (leader, role) = (ss.leader_id, ss.raft_state);
            self.on_leader(leader, role, now_ms);
        }
        let committed = rd.take_committed_entries();
        self.apply_committed(committed)?;
        let entries = rd.take_entries();
        let hard_state = rd.hs().cloned();
        if !entries.is_empty() {
            self.raw.mut_store().wl().append(&entries)?;
        }
        let mut durable_hs = None;
        if let Some(hs) = hard_state {
            let tv = (hs.term, hs.vote);
            self.raw.mut_store().wl().set_hardstate(hs.clone());
            if tv != self.durable_term_vote {
                self.durable_term_vote = tv;
                durable_hs = Some(hs);
            }
        }
        let number = rd.number();
        let persisted = rd.take_persisted_messages();
        let must_persist = !entries.is_empty() || durable_hs.is_some();
        self.raw.advance_append_async(rd);
        if must_persist {
            self.out.persist.push(Persist {
                number,
                entries,
                hard_state: durable_hs,
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
                });
            }
        }
        self.raw.advance_apply();
        Ok(())
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
            if self.leader != 0 {
                self.close_all();
            }
            self.forward.clear();
        }
        self.leader = leader;
        self.role = match role {
            StateRole::Leader => Role::Leader,
            _ if leader != 0 => Role::Follower,
            _ => Role::Looking,
        };
        if role == StateRole::Leader && !was_leading {
            let head = self.head_of_log();
            let entropy = (self.entropy)();
            self.seq = Some(Sequencer::with_state(
                self.cfg.core.clone(),
                head,
                now_ms,
                entropy,
            ));
        } else if role != StateRole::Leader && was_leading {
            self.seq = None;
            self.proposed.clear();
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
                if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
                    continue;
                }
                if let Ok(entry) = wire::decode_entry(&e.data) {
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
            if e.get_entry_type() != EntryType::EntryNormal {
                tracing::warn!(
                    index = e.index,
                    "configuration change entries are not supported yet; skipped"
                );
                continue;
            }
            while self.proposed.front().is_some_and(|p| p.index < e.index) {
                self.proposed.pop_front();
            }
            if e.data.is_empty() {
                // The no-op a new leader appends.
                continue;
            }
            let entry = wire::decode_entry(&e.data).map_err(|source| NodeError::Entry {
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
                (applied.state, applied.changes.to_vec())
            } else {
                let fresh: Vec<_> = entry
                    .txns
                    .into_iter()
                    .filter(|t| t.zxid > self.machine.last_zxid())
                    .collect();
                let applied = self.machine.apply(&fresh);
                (applied.state, applied.changes.to_vec())
            };
            for (o, r) in entry.replies {
                if server_of(o) == self.cfg.id && incarnation_of(o) == self.cfg.incarnation {
                    let local = untag(o);
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

    fn close_all(&mut self) {
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
            self.out.publish.push(Publish {
                state: self.machine.state().clone(),
                changes: Vec::new(),
                replies,
            });
        }
    }

    fn reply_now(&mut self, conn: Origin, reply: ReplyMsg) {
        self.out.publish.push(Publish {
            state: self.machine.state().clone(),
            changes: Vec::new(),
            replies: vec![(conn, reply)],
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

fn origin_of(m: &CommitRequest) -> Option<Origin> {
    match m {
        CommitRequest::Connect { conn, .. }
        | CommitRequest::Write { conn, .. }
        | CommitRequest::ConnClosed { conn, .. } => Some(*conn),
        CommitRequest::Touch(_) => None,
    }
}

fn retag(mut m: CommitRequest, id: u64, incarnation: u8) -> CommitRequest {
    match &mut m {
        CommitRequest::Connect { conn, .. }
        | CommitRequest::Write { conn, .. }
        | CommitRequest::ConnClosed { conn, .. } => *conn = tag(*conn, id, incarnation),
        CommitRequest::Touch(_) => {}
    }
    m
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
