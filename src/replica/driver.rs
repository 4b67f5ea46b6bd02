//! The ensemble's shell: runs a [`Node`] on the commit executor, with the peer transport
//! as tasks on the same thread (a Raft message costs no thread crossing), and the Raft
//! log on the log executor. Replaces `commit::stage::run` when `server.N` lines make
//! this server an ensemble member; the shards are the same.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use raft::eraftpb::{Entry as RaftEntry, EntryType, HardState};

use super::node::{Node, Role};
use crate::commit::report::ReportCollector;
use crate::commit::role::{roles, EnsembleStatus, EnsembleView};
use crate::commit::stage::{now_ms, Completion, StageMsg};
use crate::commit::FailStop;
use crate::peer::{PeerConfig, PeerNet};

/// Log work for the log executor: append `entries` (replacing any stored suffix from the
/// first one's index), store `hard_state`, then acknowledge `number`.
#[derive(Debug)]
pub struct LogJob {
    /// raft-rs's ready number.
    pub number: u64,
    /// Consecutive entries.
    pub entries: Vec<RaftEntry>,
    /// Term and vote to make durable.
    pub hard_state: Option<HardState>,
}

/// Everything the ensemble's commit executor needs.
pub struct Parts {
    /// The member, recovered.
    pub node: Node,
    /// One receiver per shard.
    pub from_shards: Vec<SharedReceiver<StageMsg>>,
    /// One sender per shard.
    pub to_shards: Vec<SharedSender<Completion>>,
    /// To the log executor.
    pub to_log: SharedSender<LogJob>,
    /// Ready numbers the log executor made durable.
    pub from_log: SharedReceiver<u64>,
    /// The peer transport's settings.
    pub peers: PeerConfig,
    /// One Raft tick.
    pub raft_tick: Duration,
    /// How often the leader's sequencer checks session expiry and reaping.
    pub session_tick: Duration,
    /// Completions published so far (read by the shards).
    pub published_seq: Arc<AtomicU64>,
    /// Role and quorum figures for the admin commands.
    pub status: Arc<EnsembleStatus>,
    /// Voting members.
    pub quorum_size: u64,
    /// When the server started (for `leader_uptime`).
    pub started: Instant,
    /// Stops the server when the node cannot go on.
    pub fail: FailStop,
}

/// Runs the ensemble member until the process ends or it fails.
// Long because its tasks (one per shard, peers, ticks, log acknowledgements and the
// stepping loop) share the node through `Rc`s created here; each task is a short loop.
pub async fn run(p: Parts) {
    let node = Rc::new(RefCell::new(p.node));
    let reports: Rc<RefCell<Vec<Arc<ReportCollector>>>> = Rc::default();
    let (kick, kicked) = local_channel::new_bounded::<()>(1);
    let kick = Rc::new(kick);
    let fail = p.fail.clone();

    for rx in p.from_shards {
        let node = node.clone();
        let kick = kick.clone();
        let reports = reports.clone();
        glommio::spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                match msg {
                    StageMsg::Core(m) => node.borrow_mut().client(m, now_ms()),
                    StageMsg::Report(collector) => {
                        let schedule = node
                            .borrow()
                            .sequencer()
                            .map(|s| s.session_schedule())
                            .unwrap_or_default();
                        *collector
                            .session_expiry
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = schedule;
                        reports.borrow_mut().push(collector);
                    }
                }
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    let (net, incoming) = match PeerNet::start(p.peers).await {
        Ok(x) => x,
        Err(e) => {
            fail.stop(format!("cannot listen on the quorum port: {e}"));
            return;
        }
    };
    {
        let node = node.clone();
        let kick = kick.clone();
        glommio::spawn_local(async move {
            while let Some(f) = incoming.recv().await {
                node.borrow_mut().peer(f.from, f.kind, &f.payload, now_ms());
                let _ = kick.try_send(());
            }
        })
        .detach();
    }
    {
        let node = node.clone();
        let kick = kick.clone();
        let (raft_tick, session_tick) = (p.raft_tick, p.session_tick);
        glommio::spawn_local(async move {
            let mut next_sessions = Instant::now();
            loop {
                glommio::timer::sleep(raft_tick).await;
                let sessions = Instant::now() >= next_sessions;
                if sessions {
                    next_sessions = Instant::now() + session_tick;
                }
                node.borrow_mut().tick(now_ms(), sessions);
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    let (to_log, from_log) =
        futures_lite::future::zip(p.to_log.connect(), p.from_log.connect()).await;
    let mut senders = Vec::with_capacity(p.to_shards.len());
    for s in p.to_shards {
        senders.push(s.connect().await);
    }
    {
        let node = node.clone();
        let kick = kick.clone();
        glommio::spawn_local(async move {
            while let Some(n) = from_log.recv().await {
                node.borrow_mut().persisted(n);
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    let mut seq = 0u64;
    let mut view = EnsembleView {
        quorum_size: p.quorum_size,
        ..EnsembleView::default()
    };
    let mut was_leader = false;
    while kicked.recv().await.is_some() {
        let out = match node.borrow_mut().step(now_ms()) {
            Ok(out) => out,
            Err(e) => {
                fail.stop(format!("replication stopped: {e}"));
                return;
            }
        };
        {
            let n = node.borrow();
            let leader = n.role() == Role::Leader;
            view.role = match n.role() {
                Role::Leader => roles::LEADER,
                Role::Follower => roles::FOLLOWER,
                Role::Looking => roles::LOOKING,
            };
            view.leader = n.leader();
            let (learners, synced) = n.followers();
            view.learners = learners as u64;
            view.synced_followers = synced as u64;
            if leader && !was_leader {
                view.leader_since_ms = p.started.elapsed().as_millis() as u64;
            }
            was_leader = leader;
            p.status.store(&view);
        }
        for (to, kind, payload) in out.send {
            net.send(to, kind, payload);
        }
        for job in out.persist {
            let job = LogJob {
                number: job.number,
                entries: job.entries,
                hard_state: job.hard_state,
            };
            if to_log.send(job).await.is_err() {
                tracing::error!("log executor gone; stopping the ensemble driver");
                return;
            }
        }
        let mut pending_reports = std::mem::take(&mut *reports.borrow_mut());
        let mut publish = out.publish;
        if publish.is_empty() && !pending_reports.is_empty() {
            publish.push(super::node::Publish {
                state: node.borrow().state().clone(),
                changes: Vec::new(),
                replies: Vec::new(),
            });
        }
        for pb in publish {
            seq += 1;
            let completion = Completion {
                seq,
                state: pb.state,
                changes: Arc::from(pb.changes),
                replies: Vec::new(),
                reports: std::mem::take(&mut pending_reports),
            };
            if !crate::commit::stage::publish(&senders, completion, pb.replies, &p.published_seq)
                .await
            {
                return;
            }
        }
    }
}

/// Raft entry kinds as the log stores them.
fn kind_of(e: &RaftEntry) -> u8 {
    match e.get_entry_type() {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    }
}

/// The raft-rs entry for a stored one.
pub fn entry_from_stored(e: ferrokeeper_storage::raftlog::Entry) -> RaftEntry {
    let mut r = RaftEntry {
        index: e.index,
        term: e.term,
        ..Default::default()
    };
    r.set_entry_type(match e.kind {
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => EntryType::EntryNormal,
    });
    r.data = e.data.into();
    r
}

/// The log executor of an ensemble member: appends each job's entries (one write and
/// one fdatasync for every job already queued), stores term and vote, then acknowledges.
/// Failure is fail-stop, as for the standalone log.
pub async fn run_log(
    mut log: ferrokeeper_storage::raftlog::RaftLog,
    jobs: SharedReceiver<LogJob>,
    acks: SharedSender<u64>,
    counters: Arc<crate::commit::log::LogCounters>,
    fail: FailStop,
) {
    use ferrokeeper_storage::raftlog::{EntryRef, HardState as StoredHs};
    let jobs = jobs.connect().await;
    let acks = acks.connect().await;
    counters.publish(&log.stats());
    while let Some(first) = jobs.recv().await {
        let mut queued = vec![first];
        while let Some(Some(j)) = futures_lite::future::poll_once(jobs.recv()).await {
            queued.push(j);
            if queued.len() >= 64 {
                break;
            }
        }
        // Runs of jobs whose entries continue each other go in one append; a job whose
        // first entry overwrites earlier ones starts a new run (the log truncates then).
        let mut run: Vec<EntryRef<'_>> = Vec::new();
        let mut hard_state = None;
        for job in &queued {
            if let (Some(first), Some(last)) = (job.entries.first(), run.last()) {
                if first.index != last.index + 1 {
                    if let Err(e) = append_bounded(&mut log, &run) {
                        fail.stop(format!("raft log write failed: {e}"));
                        return;
                    }
                    run.clear();
                }
            }
            for e in &job.entries {
                run.push(EntryRef {
                    index: e.index,
                    term: e.term,
                    kind: kind_of(e),
                    data: &e.data,
                });
            }
            if let Some(hs) = &job.hard_state {
                hard_state = Some(StoredHs {
                    term: hs.term,
                    vote: hs.vote,
                    commit: hs.commit,
                });
            }
        }
        if !run.is_empty() {
            if let Err(e) = append_bounded(&mut log, &run) {
                fail.stop(format!("raft log write failed: {e}"));
                return;
            }
        }
        drop(run);
        if let Some(hs) = hard_state {
            if let Err(e) = log.save_hard_state(&hs) {
                fail.stop(format!("raft hard state write failed: {e}"));
                return;
            }
        }
        counters.publish(&log.stats());
        for job in queued {
            if acks.send(job.number).await.is_err() {
                return;
            }
        }
    }
}

/// Appends `entries` (consecutive) in as many appends as the log's `batch_bytes_max`
/// needs. A follower catching up takes up to `max_size_per_msg` of entries per message
/// and several messages per ready, and the log executor joins queued readies: one append
/// of all of them could exceed the batch limit, and the log would refuse it for good
/// (a restart would refuse the same catch-up again). Splitting is safe: the entries are
/// acknowledged only after every part is durable, and a crash between parts leaves a
/// prefix of them, which Raft treats as entries never received.
pub fn append_bounded<S: ferrokeeper_storage::backend::Storage>(
    log: &mut ferrokeeper_storage::raftlog::RaftLog<S>,
    entries: &[ferrokeeper_storage::raftlog::EntryRef<'_>],
) -> Result<(), ferrokeeper_storage::log::LogError> {
    use ferrokeeper_storage::log::format::frame_bytes;
    use ferrokeeper_storage::raftlog::ENTRY_HEAD_BYTES;
    let batch_bytes_max = log.options().batch_bytes_max;
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        let framed = frame_bytes(ENTRY_HEAD_BYTES + e.data.len());
        if i > start && bytes + framed > batch_bytes_max {
            log.append(&entries[start..i])?;
            start = i;
            bytes = 0;
        }
        bytes += framed;
    }
    if start < entries.len() {
        log.append(&entries[start..])?;
    }
    Ok(())
}
