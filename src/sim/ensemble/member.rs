//! One ensemble member in the simulator: a [`Node`] over the real Raft log
//! (`ferrokeeper_storage::raftlog::RaftLog`) on a simulated disk ([`SimStorage`]) that
//! crashes, tears writes and fails operations.
//!
//! The node's log work ([`Persist`]) is done as `replica::driver::run_log` does it
//! (entries, then the hard state, then `Node::persisted`), after a seeded delay. A crash
//! drops the node and the disk's unsynced bytes; a restart recovers as the server does
//! ([`crate::replica::recover::recover`]).

use std::collections::{BTreeMap, VecDeque};

use ferrokeeper_storage::backend::sim::{Prng, SimFaults, SimStorage};
use ferrokeeper_storage::log::LogOptions;
use ferrokeeper_storage::raftlog::{EntryRef, HardState as StoredHs, RaftLog};

use crate::core::sequencer::{CoreConfig, Entropy, SeededEntropy};
use crate::core::state::DataState;
use crate::replica::membership::Membership;
use crate::replica::node::{entry_parts, Node, NodeConfig, Persist};
use crate::replica::recover::{commit_stamp, replay, stored_entries};
use crate::replica::wire;

/// The settings every member shares.
#[derive(Clone)]
pub struct MemberConfig {
    /// The sequencer's settings, but for `server_id`.
    pub core: CoreConfig,
    /// The Raft log's settings.
    pub log: LogOptions,
    /// `/zookeeper/config`'s text.
    pub config_text: Vec<u8>,
    /// Log work waits this long (uniform, ms) before it is done.
    pub disk_delay_ms: (u64, u64),
    /// Print raft-rs's log (`FK_ENS_SEED` with a trace).
    pub trace: bool,
    /// `readonlymode.enabled` (serve read-only after this long without a leader), with
    /// local sessions that an ephemeral upgrades, as read-only mode needs since 3.7.
    pub read_only_after_ms: Option<i64>,
}

/// One member: its disk always, its node and log while up.
pub struct Member {
    /// `myid`.
    pub id: u64,
    /// The simulated disk (a handle; the log holds another).
    pub disk: SimStorage,
    /// The node, while up.
    pub node: Option<Node>,
    log: Option<RaftLog<SimStorage>>,
    /// Log work not done yet: (when it is due, the work).
    jobs: VecDeque<(i64, Persist)>,
    /// The node's log as it handed it out (index → data of normal entries), to find
    /// the txns it applies.
    mirror: BTreeMap<u64, Vec<u8>>,
    /// The zxid of the node's state, as last checked.
    pub applied_zxid: i64,
    /// The mirror's index from which the next applied txn is looked for.
    cursor: u64,
    /// This run's incarnation (1..=255).
    incarnation: u8,
    /// Sessions' entropy for this member's sequencers.
    entropy_seed: u64,
    /// When a crashed member restarts.
    pub down_until: Option<i64>,
}

impl Member {
    /// A member on a fresh disk, not started.
    pub fn new(id: u64, seed: u64) -> Member {
        Member {
            id,
            disk: SimStorage::new(seed ^ (id << 40) ^ 0x5eed),
            node: None,
            log: None,
            jobs: VecDeque::new(),
            mirror: BTreeMap::new(),
            applied_zxid: 0,
            cursor: 0,
            incarnation: id as u8,
            entropy_seed: seed.wrapping_mul(31).wrapping_add(id << 32),
            down_until: None,
        }
    }

    /// Whether the node runs.
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// Starts (or restarts) the member from its disk, as `server::run_ensemble` does.
    /// Returns the txns the recovered state holds, to check against the history.
    pub fn start(
        &mut self,
        cfg: &MemberConfig,
        rng: &mut Prng,
    ) -> Result<Vec<crate::core::txn::Txn>, String> {
        self.disk.set_faults(SimFaults::default());
        let (log, recovered) = RaftLog::open_with(self.disk.clone(), cfg.log)
            .map_err(|e| format!("member {}: the raft log does not open: {e}", self.id))?;
        let mut state = DataState::new(
            crate::core::sequencer::open_acl_unsafe(),
            cfg.core.extended_types,
        );
        state.set_ensemble_config(&cfg.config_text);
        let r = replay(recovered, state, None)
            .map_err(|e| format!("member {}: recovery: {e}", self.id))?;
        self.mirror.clear();
        for e in &r.entries {
            self.mirror_entry(e)?;
        }
        // The membership is the recovered state's, as the server takes it.
        let membership = Membership::parse(&r.state.config_text(), false)
            .ok()
            .filter(|m| !m.servers.is_empty())
            .ok_or_else(|| format!("member {}: no membership in /zookeeper/config", self.id))?;
        self.cursor = 0;
        self.applied_zxid = 0;
        let recovered_zxid = r.state.last_zxid;
        // A new incarnation per start, as the server draws one: replies in entries
        // committed after the restart for the old run's connections must not be
        // delivered.
        self.incarnation = self.incarnation % 255 + 1;
        let election_tick = rng.range(8, 20) as usize;
        let node_cfg = NodeConfig {
            id: self.id,
            voters: membership.voters(),
            learners: membership.learners(),
            election_tick,
            max_election_tick: election_tick + 1,
            heartbeat_tick: 2,
            core: CoreConfig {
                server_id: self.id as i64,
                ..cfg.core.clone()
            },
            incarnation: self.incarnation,
            local_sessions: cfg.read_only_after_ms.is_some(),
            local_upgrading: cfg.read_only_after_ms.is_some(),
            read_only_after_ms: cfg.read_only_after_ms,
            multi_address: false,
            standalone_enabled: true,
        };
        self.entropy_seed = self.entropy_seed.wrapping_add(0x1000);
        let mut n = self.entropy_seed;
        let entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send> = Box::new(move || {
            n = n.wrapping_add(1);
            Box::new(SeededEntropy(n))
        });
        let logger = if cfg.trace {
            crate::replica::node::raft_logger()
        } else {
            slog::Logger::root(slog::Discard, slog::o!())
        };
        let node = Node::new(
            node_cfg,
            crate::replica::node::Restored {
                state: r.state,
                start: r.start,
                entries: r.entries,
                hard_state: r.hard_state,
                applied: r.applied,
            },
            entropy,
            &logger,
        )
        .map_err(|e| format!("member {}: node does not start: {e}", self.id))?;
        self.node = Some(node);
        self.log = Some(log);
        self.jobs.clear();
        self.down_until = None;
        self.txns_up_to(recovered_zxid)
    }

    /// Power cut: the node and its log are gone, and so is what the disk had not synced.
    pub fn crash(&mut self, restart_at: i64) {
        self.node = None;
        self.log = None;
        self.jobs.clear();
        self.mirror.clear();
        self.disk.crash();
        self.down_until = Some(restart_at);
    }

    /// Takes the node's log work: into the mirror now, onto the disk when due.
    pub fn queue(
        &mut self,
        jobs: Vec<Persist>,
        now: i64,
        rng: &mut Prng,
        delay_ms: (u64, u64),
    ) -> Result<(), String> {
        for p in jobs {
            if let Some(first) = p.entries.first() {
                let _ = self.mirror.split_off(&first.index);
                for e in &p.entries {
                    self.mirror_entry(e)?;
                }
            }
            // Jobs complete in order: none is due before the one queued ahead of it.
            let due = (now + rng.range(delay_ms.0, delay_ms.1) as i64)
                .max(self.jobs.back().map_or(i64::MIN, |(d, _)| *d));
            self.jobs.push_back((due, p));
        }
        Ok(())
    }

    /// Keeps entry `e`'s batch, if it carries one (a normal entry's data, or a
    /// configuration change's context).
    fn mirror_entry(&mut self, e: &raft::eraftpb::Entry) -> Result<(), String> {
        let parts = entry_parts(e).map_err(|err| {
            format!(
                "member {}: entry {} does not decode: {err}",
                self.id, e.index
            )
        })?;
        if let Some((batch, _)) = parts.filter(|(b, _)| !b.is_empty()) {
            self.mirror.insert(e.index, batch.into_owned());
        }
        Ok(())
    }

    /// Does the log work due by `now`. `Err` is the log's fail-stop (the member must
    /// crash).
    pub fn run_jobs(&mut self, now: i64) -> Result<(), String> {
        while self.jobs.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, job)) = self.jobs.pop_front() else {
                break;
            };
            let (Some(log), Some(node)) = (self.log.as_mut(), self.node.as_mut()) else {
                return Ok(());
            };
            let stamp = commit_stamp(&job.entries, job.commit);
            let run: Vec<EntryRef<'_>> = stored_entries(&job.entries, stamp.as_deref()).collect();
            if !run.is_empty() {
                crate::replica::driver::append_bounded(log, &run)
                    .map_err(|e| format!("raft log write failed: {e}"))?;
            }
            if let Some(hs) = &job.hard_state {
                log.save_hard_state(&StoredHs {
                    term: hs.term,
                    vote: hs.vote,
                    commit: hs.commit,
                })
                .map_err(|e| format!("raft hard state write failed: {e}"))?;
            }
            node.persisted(job.number);
        }
        Ok(())
    }

    /// Log work not done yet.
    pub fn jobs_pending(&self) -> usize {
        self.jobs.len()
    }

    /// The txns after the last checked zxid up to `zxid`, from the node's log: the ones
    /// it has just applied. In a committed entry only the txns after the state's zxid
    /// apply (see `Node::head_of_log`), so the first txn carrying each next zxid, in
    /// index order, is the one applied.
    pub fn txns_up_to(&mut self, zxid: i64) -> Result<Vec<crate::core::txn::Txn>, String> {
        let mut out = Vec::new();
        if zxid < self.applied_zxid {
            return Err(format!(
                "member {} went back from zxid 0x{:x} to 0x{zxid:x}",
                self.id, self.applied_zxid
            ));
        }
        let mut at = self.applied_zxid;
        let mut last_index = self.cursor;
        for (index, data) in self.mirror.range(self.cursor..) {
            if at >= zxid {
                break;
            }
            let entry = wire::decode_entry(data)
                .map_err(|e| format!("member {}: entry {index} does not decode: {e}", self.id))?;
            for t in entry.txns {
                if t.zxid == at + 1 && t.zxid <= zxid {
                    at = t.zxid;
                    out.push(t);
                }
            }
            last_index = *index;
        }
        if at != zxid {
            return Err(format!(
                "member {} reached zxid 0x{zxid:x} but its log holds txns only to 0x{at:x}",
                self.id
            ));
        }
        self.applied_zxid = zxid;
        self.cursor = last_index;
        Ok(out)
    }
}
