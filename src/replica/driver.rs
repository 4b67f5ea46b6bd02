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

use super::node::{Node, Role};
use super::recover;
use super::store::Offer;
use crate::commit::report::ReportCollector;
use crate::commit::role::{roles, EnsembleStatus, EnsembleView};
use crate::commit::stage::{now_ms, Completion, StageMsg};
use crate::commit::FailStop;
use crate::peer::{Incoming, PeerConfig, PeerNet, KIND_LOST};

/// Log work for the log executor: append the entries (replacing any stored suffix from
/// the first one's index, the last one stamped with the commit index), store the hard
/// state, then acknowledge the number.
pub type LogJob = super::node::Persist;

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
    /// What the driver and the shards share about the completions handed over.
    pub handoff: Arc<crate::commit::stage::Handoff>,
    /// Role and quorum figures for the admin commands.
    pub status: Arc<EnsembleStatus>,
    /// Voting members.
    pub quorum_size: u64,
    /// When the server started (for `leader_uptime`).
    pub started: Instant,
    /// Stops the server when the node cannot go on.
    pub fail: FailStop,
    /// `dataDir` (snapshots and their Raft positions).
    pub data_dir: std::path::PathBuf,
    /// When snapshots are taken and what is kept.
    pub snapshots: Arc<crate::snapshot::SnapshotPolicy>,
    /// `extendedTypesEnabled`, for loading a snapshot the leader sends.
    pub extended_types: bool,
    /// The newest snapshot recovered (zxid, index, term), offered to followers.
    pub offer: Option<(i64, u64, u64)>,
    /// Raft log entries up to this index may go (the log executor purges them).
    pub purge_through: Arc<AtomicU64>,
    /// Entries kept below the newest snapshot: at most this many, ...
    pub compact_margin: u64,
    /// ... taking at most this many bytes.
    pub compact_margin_bytes: u64,
    /// A request forwarded to the leader and not answered within this closes its
    /// client's connection (`syncLimit × tickTime`).
    pub forward_timeout_ms: i64,
    /// This server's id.
    pub my_id: u64,
    /// The `zoo.cfg` to point at a reconfig's dynamic file (`None`: write none).
    pub config_file: Option<std::path::PathBuf>,
}

/// Entries kept in memory and on disk below the newest snapshot by default, so that a
/// follower a little behind gets entries rather than the whole snapshot.
pub const COMPACT_MARGIN_DEFAULT: u64 = 10_000;

/// Bytes of entries kept below the newest snapshot by default (~40,000 writes of 200 B;
/// ZooKeeper keeps 500 proposals in memory for the same purpose).
pub const COMPACT_MARGIN_BYTES_DEFAULT: u64 = 8 << 20;

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
    let (chunk_tx, chunk_rx) = local_channel::new_bounded::<Incoming>(4);
    {
        let node = node.clone();
        let kick = kick.clone();
        let net = net.clone();
        let snapshots = p.snapshots.clone();
        let status = p.status.clone();
        glommio::spawn_local(async move {
            while let Some(f) = incoming.recv().await {
                match f.kind {
                    KIND_SNAP_REQ => serve_chunk(&net, &snapshots, &status, f.from, &f.payload),
                    KIND_SNAP_CHUNK => {
                        // Only the fetch under way wants it; a late chunk is dropped.
                        let _ = chunk_tx.try_send(f);
                    }
                    KIND_LOST => node.borrow_mut().peer_lost(f.from),
                    _ => {
                        node.borrow_mut().peer(f.from, f.kind, &f.payload, now_ms());
                        let _ = kick.try_send(());
                    }
                }
            }
        })
        .detach();
    }
    // When to return the memory a rebase freed to the OS (see `COLLECT_AFTER_REBASE`).
    let collect_at: Rc<std::cell::Cell<Option<Instant>>> = Rc::default();
    {
        let node = node.clone();
        let kick = kick.clone();
        let collect_at = collect_at.clone();
        let (raft_tick, session_tick) = (p.raft_tick, p.session_tick);
        let forward_timeout_ms = p.forward_timeout_ms;
        glommio::spawn_local(async move {
            let mut next_sessions = Instant::now();
            loop {
                let slept = Instant::now();
                glommio::timer::sleep(raft_tick).await;
                let late = slept.elapsed().saturating_sub(raft_tick);
                if late >= SLOW_DRIVER_CYCLE {
                    // The executor was starved or blocked: heartbeats were late too.
                    tracing::info!(?late, "raft tick late");
                }
                let sessions = Instant::now() >= next_sessions;
                if sessions {
                    next_sessions = Instant::now() + session_tick;
                }
                let mut n = node.borrow_mut();
                n.tick(now_ms(), sessions);
                if sessions {
                    n.expire_forwarded(now_ms(), forward_timeout_ms);
                }
                drop(n);
                if collect_at.get().is_some_and(|at| Instant::now() >= at) {
                    collect_at.set(None);
                    // The old overlay's nodes were mostly allocated, and are freed, on
                    // this thread; hand the emptied pages back (as `commit::stage`).
                    let started = Instant::now();
                    // SAFETY: mi_collect only frees this thread's unused pages.
                    unsafe { libmimalloc_sys::mi_collect(true) };
                    tracing::debug!(elapsed = ?started.elapsed(), "mi_collect after a rebase");
                }
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    let (to_log, from_log) =
        futures_lite::future::zip(p.to_log.connect(), p.from_log.connect()).await;
    // The log executor's queue is short (it takes what is queued into one fdatasync);
    // jobs wait here instead, so a slow sync never holds up the step loop, which sends
    // heartbeats, their responses and every other message to peers. With the loop
    // waiting on a full queue, a disk busy for half a second cost the leader its lease.
    let (log_backlog, log_backlog_rx) = local_channel::new_bounded::<LogJob>(LOG_BACKLOG_JOBS);
    glommio::spawn_local(async move {
        while let Some(job) = log_backlog_rx.recv().await {
            if to_log.send(job).await.is_err() {
                tracing::error!("log executor gone; stopping the ensemble driver");
                return;
            }
        }
    })
    .detach();
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
    let mut snaps = Snapshots {
        last_zxid: p.offer.map(|o| o.0).unwrap_or(0),
        threshold: p.snapshots.next_threshold(),
        pending: None,
        fold: crate::snapshot::Fold::new(Instant::now()),
    };
    if let Some((zxid, index, term)) = p.offer {
        node.borrow().offer_snapshot(Offer {
            index,
            term,
            load: recover::snapshot_loader(&p.snapshots.dir, zxid),
        });
    }
    while kicked.recv().await.is_some() {
        let cycle = Instant::now();
        let mut out = match node.borrow_mut().step(now_ms()) {
            Ok(out) => out,
            Err(e) => {
                fail.stop(format!("replication stopped: {e}"));
                return;
            }
        };
        if let Some(inst) = out.install.take() {
            // Rare and whole: done here, before this ready's log work (which drops the
            // entries the snapshot replaces) goes to the log executor. The step loop
            // waits; peer frames are still taken (chunks among them).
            let leader = node.borrow().leader();
            let fetched = fetch_snapshot(&net, &chunk_rx, leader, &p.data_dir, &inst.data).await;
            let result = fetched.and_then(|desc| {
                let state = recover::install_fetched(
                    &p.data_dir,
                    desc,
                    inst.index,
                    inst.term,
                    p.extended_types,
                )?;
                let mut n = node.borrow_mut();
                n.installed(state).map_err(|e| e.to_string())?;
                n.offer_snapshot(Offer {
                    index: inst.index,
                    term: inst.term,
                    load: recover::snapshot_loader(&p.snapshots.dir, desc.zxid),
                });
                Ok(desc.zxid)
            });
            match result {
                Ok(zxid) => {
                    tracing::info!(
                        index = inst.index,
                        zxid = format_args!("0x{zxid:x}"),
                        "installed the leader's snapshot"
                    );
                    snaps.last_zxid = zxid;
                    let _ = kick.try_send(());
                }
                Err(e) => {
                    fail.stop(format!("installing the leader's snapshot failed: {e}"));
                    return;
                }
            }
        }
        if let Some(text) = out.membership.take() {
            adopt_membership(&net, &text, p.my_id, p.config_file.as_deref(), &mut view);
        }
        let rebased = snaps.maybe_take(
            &node,
            &p.snapshots,
            &p.data_dir,
            &p.purge_through,
            (p.compact_margin, p.compact_margin_bytes),
        );
        if rebased {
            collect_at.set(Some(Instant::now() + COLLECT_AFTER_REBASE));
        }
        {
            let n = node.borrow();
            let leader = n.role() == Role::Leader;
            view.role = match n.role() {
                Role::Leader => roles::LEADER,
                Role::Follower => roles::FOLLOWER,
                Role::Observer => roles::OBSERVER,
                Role::Looking => roles::LOOKING,
                Role::ReadOnly => roles::READ_ONLY,
            };
            view.leader = n.leader();
            let (learners, synced, observers) = n.followers();
            view.learners = learners as u64;
            view.synced_followers = synced as u64;
            view.synced_observers = observers as u64;
            let (last, max, min, count) = n.proposal_sizes();
            view.last_proposal_size = last;
            view.max_proposal_size = max;
            view.min_proposal_size = min;
            view.proposals = count;
            if leader && !was_leader {
                view.leader_since_ms = p.started.elapsed().as_millis() as u64;
            }
            was_leader = leader;
            p.status.store(&view);
        }
        let stepped = cycle.elapsed();
        for (to, kind, payload) in out.send {
            net.send(to, kind, payload);
        }
        let persist_jobs = out.persist.len();
        for job in out.persist {
            if log_backlog.send(job).await.is_err() {
                return;
            }
        }
        let handed_to_log = cycle.elapsed();
        let mut pending_reports = std::mem::take(&mut *reports.borrow_mut());
        let mut publish = out.publish;
        // A rebase publishes the rebased state after this cycle's (it is the newest, at
        // the same zxid as the last of them): the shards let go of the old overlay and
        // base now, not at the next write.
        if rebased || (publish.is_empty() && !pending_reports.is_empty()) {
            publish.push(super::node::Publish {
                state: node.borrow().state().clone(),
                changes: Arc::default(),
                replies: Vec::new(),
            });
        }
        for pb in publish {
            seq += 1;
            let completion = Completion {
                seq,
                state: pb.state,
                changes: pb.changes,
                replies: Vec::new(),
                reports: std::mem::take(&mut pending_reports),
                stamps: crate::commit::stage::BatchStamps::now(),
            };
            if !crate::commit::stage::publish(&senders, completion, pb.replies, &p.handoff).await {
                return;
            }
        }
        if cycle.elapsed() >= SLOW_DRIVER_CYCLE {
            // Nothing goes to a peer while a cycle runs: a long one delays heartbeats.
            tracing::info!(
                elapsed = ?cycle.elapsed(), ?stepped, ?handed_to_log, persist_jobs,
                "slow replication cycle"
            );
        }
    }
}

/// Log jobs the step loop may leave waiting for the log executor before it waits too
/// (each is one ready's entries; raft-rs's in-flight limits bound them long before).
const LOG_BACKLOG_JOBS: usize = 4096;

/// A driver cycle or a tick this late is logged: peers hear nothing meanwhile.
const SLOW_DRIVER_CYCLE: Duration = Duration::from_millis(100);

/// A configuration change was applied: the peers, the quorum size and the files follow
/// `/zookeeper/config`'s new text.
fn adopt_membership(
    net: &PeerNet,
    text: &str,
    my_id: u64,
    config_file: Option<&std::path::Path>,
    view: &mut EnsembleView,
) {
    let membership = match super::membership::Membership::parse(text, true) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "the applied configuration does not parse; peers unchanged");
            return;
        }
    };
    match super::membership::peer_addrs(&membership, my_id) {
        Ok(peers) => net.set_peers(&peers),
        Err(e) => tracing::warn!(error = %e, "a server of the new configuration does not resolve"),
    }
    view.quorum_size = membership.voters().len() as u64;
    if let Some(file) = config_file {
        match super::dynamic::write(file, &membership, my_id) {
            Ok(path) => {
                tracing::info!(file = %path.display(), version = format_args!("{:x}", membership.version), "reconfig: dynamic configuration written")
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "reconfig: the dynamic configuration file was not written")
            }
        }
    }
}

/// Each member snapshots its committed state every `snapCount` txns or so, as a
/// standalone server does; a snapshot written becomes the one offered to followers, and
/// the log before it (less a margin) is compacted.
struct Snapshots {
    last_zxid: i64,
    threshold: u64,
    /// (zxid, index, term) of the snapshot being written.
    pending: Option<(i64, u64, u64)>,
    /// A quiet member's overlay folded into a snapshot, as the standalone server's.
    fold: crate::snapshot::Fold,
}

impl Snapshots {
    /// Takes a snapshot written since the last call (offered to followers, the log
    /// compacted before it, the member rebased on it: returns whether it was) and starts
    /// the next one when due.
    fn maybe_take(
        &mut self,
        node: &Rc<RefCell<Node>>,
        policy: &Arc<crate::snapshot::SnapshotPolicy>,
        data_dir: &std::path::Path,
        purge_through: &AtomicU64,
        (margin, margin_bytes): (u64, u64),
    ) -> bool {
        let mut rebased = false;
        if let Some(base) = policy.take_written() {
            if let Some((zxid, index, term)) = self.pending.take() {
                let mut n = node.borrow_mut();
                n.offer_snapshot(Offer {
                    index,
                    term,
                    load: recover::snapshot_loader(&policy.dir, zxid),
                });
                let through = n.compact_point(index, margin, margin_bytes);
                if let Err(e) = n.compact(through) {
                    tracing::warn!(error = %e, through, "raft log compaction failed");
                } else {
                    purge_through.fetch_max(through, std::sync::atomic::Ordering::AcqRel);
                }
            }
            rebased = rebase(&mut node.borrow_mut(), base);
        }
        if self.pending.is_some() && !policy.busy() {
            // Its thread ended without a snapshot (the position or the file failed, and
            // said so): the next trigger tries again.
            self.pending = None;
        }
        let now = Instant::now();
        let (due, fold) = {
            let n = node.borrow();
            let state = n.state();
            let due = (state.last_zxid - self.last_zxid) as u64 >= self.threshold;
            (due, self.fold.due(now, state.last_zxid, &state.tree))
        };
        if !(due || fold) || policy.busy() || self.pending.is_some() {
            return rebased;
        }
        // Frozen at its zxid (on a leader, perhaps a later state: see
        // `Node::snapshot_state`), with the Raft position it is at.
        let Some((state, (index, term))) = node.borrow_mut().snapshot_state() else {
            return rebased;
        };
        let zxid = state.last_zxid;
        // The position is recorded (and the files of snapshots retention removed are
        // pruned) on the snapshot's thread: their fsyncs took up to 0.7 s on a busy disk
        // here, and nothing reaches a peer while this loop waits.
        let data_dir = data_dir.to_path_buf();
        let record = move || {
            recover::prune_meta(&data_dir);
            recover::write_meta(&recover::meta_dir(&data_dir), zxid, index, term).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot record the snapshot's Raft position: {e}"),
                )
            })
        };
        let overlay = state.tree.overlay_len();
        if policy.start_after(state, record) {
            if fold && !due {
                tracing::info!(
                    overlay,
                    zxid = format_args!("0x{zxid:x}"),
                    "writes quiet: folding the overlay into a snapshot"
                );
            }
            if fold {
                self.fold.started(now);
            }
            self.pending = Some((zxid, index, term));
            self.last_zxid = zxid;
            self.threshold = policy.next_threshold();
        }
        rebased
    }
}

/// Moves the member's committed state (and head, while leading) onto a snapshot just
/// written (`Node::rebase`) and logs it as the standalone commit stage does; says
/// whether anything moved.
fn rebase(node: &mut Node, base: Arc<crate::core::tree::Base>) -> bool {
    let started = Instant::now();
    let at = base.zxid();
    let Some(r) = node.rebase(base) else {
        tracing::info!(
            zxid = format_args!("0x{at:x}"),
            "snapshot written of a state since replaced by the leader's; not rebased on it"
        );
        return false;
    };
    let (head_before, head_after, head_moved) = match r.head {
        Some((b, a, m)) => (Some(b), Some(a), Some(m)),
        None => (None, None, None),
    };
    tracing::info!(
        zxid = format_args!("0x{at:x}"),
        overlay_before = r.state_overlay.0,
        lists_moved = r.state_moved,
        overlay_after = r.state_overlay.1,
        head_overlay_before = ?head_before,
        head_lists_moved = ?head_moved,
        head_overlay_after = ?head_after,
        elapsed = ?started.elapsed(),
        "tree rebased on the new snapshot"
    );
    true
}

/// How long after a rebase the commit executor returns freed memory to the OS: by then
/// the shards have taken the rebased state and dropped the one before it, which held
/// the old overlay and base (as `commit::stage`'s collect, a few ticks after).
const COLLECT_AFTER_REBASE: Duration = Duration::from_millis(500);

/// Peer frame kind: a follower asks the leader for a piece of a snapshot file
/// (zxid i64, offset u64, length u32; little-endian).
pub const KIND_SNAP_REQ: u8 = 3;
/// Peer frame kind: the answer (zxid i64, offset u64, status u8, then the bytes). The
/// status is one of [`CHUNK_OK`] (bytes follow), [`CHUNK_GONE`] and [`CHUNK_NOT_YET`].
/// A follower of a build before `CHUNK_NOT_YET` existed takes any status but 0 as gone;
/// members of one ensemble run one build in practice.
pub const KIND_SNAP_CHUNK: u8 = 4;
/// Chunk status 0: the bytes follow (none only past the file's end, which a follower
/// does not ask for).
pub const CHUNK_OK: u8 = 0;
/// Chunk status 1: the server has no such snapshot (neither the plain file nor its
/// `.zst`, or it cannot be read or restored). The follower gives up (fail-stop).
pub const CHUNK_GONE: u8 = 1;
/// Chunk status 2: the snapshot is there but not readable yet (its `.zst` is being
/// restored to the plain file for this transfer, see `snapshot::transfer`): ask again
/// after [`CHUNK_NOT_YET_WAIT`].
pub const CHUNK_NOT_YET: u8 = 2;
/// Bytes asked for at once.
const CHUNK_BYTES: u32 = 1 << 20;
/// How long a chunk may take before it is asked for again, and how many times.
const CHUNK_WAIT: Duration = Duration::from_secs(2);
const CHUNK_TRIES: u32 = 15;
/// How long a follower waits after a [`CHUNK_NOT_YET`] before asking again: a restore
/// takes from milliseconds (a small snapshot) to seconds, and each ask is a 20-byte frame.
const CHUNK_NOT_YET_WAIT: Duration = Duration::from_millis(200);
/// How long a follower goes on asking while the answer is [`CHUNK_NOT_YET`] before it
/// gives up on the leader. A restore decompresses at several hundred MB/s and writes the
/// plain file once (fsynced at the end): 2 minutes covers a multi-GB snapshot on a slow,
/// busy disk, and a restore that takes longer is a leader in trouble.
const CHUNK_NOT_YET_MAX: Duration = Duration::from_secs(120);

// A pin outlasts, twice over, the longest gap a live fetch leaves between two requests
// (see `snapshot::transfer::PIN_FOR`): `CHUNK_TRIES` unanswered waits, after which the
// follower gives up, or one `CHUNK_NOT_YET_WAIT`.
const _: () = {
    let pin_ms = crate::snapshot::transfer::PIN_FOR.as_millis();
    assert!(CHUNK_WAIT.as_millis() * CHUNK_TRIES as u128 * 2 <= pin_ms);
    assert!(CHUNK_NOT_YET_WAIT.as_millis() * 2 <= pin_ms);
};

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    le_i64(b) as u64
}

/// Answers a follower's chunk request from this server's snapshot files, pinning the
/// snapshot for the transfer and restoring it first when it was compressed
/// (`snapshot::transfer::Pins::read_chunk`; a restore runs on a thread of its own and
/// the follower is told to ask again). The first chunk of a snapshot served counts one
/// snapshot sent (`snap_count`): a follower fetches a snapshot from offset 0 once per
/// install (a retried first chunk counts again).
fn serve_chunk(
    net: &PeerNet,
    snapshots: &crate::snapshot::SnapshotPolicy,
    status: &EnsembleStatus,
    from: u64,
    req: &[u8],
) {
    use crate::snapshot::transfer::Chunk;
    if req.len() != 20 {
        tracing::warn!(from, "malformed snapshot chunk request; dropped");
        return;
    }
    let zxid = le_i64(&req[0..8]);
    let offset = le_u64(&req[8..16]);
    let mut l = [0u8; 4];
    l.copy_from_slice(&req[16..20]);
    let len = u32::from_le_bytes(l).min(CHUNK_BYTES) as usize;
    let mut out = Vec::with_capacity(17 + len);
    out.extend_from_slice(&zxid.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    match snapshots
        .pins
        .read_chunk(&snapshots.dir, zxid, offset, len, Instant::now())
    {
        Chunk::Bytes(bytes) => {
            if offset == 0 {
                status.count_snapshot_sent();
            }
            out.push(CHUNK_OK);
            out.extend_from_slice(&bytes);
        }
        Chunk::NotYet => out.push(CHUNK_NOT_YET),
        Chunk::Gone(why) => {
            tracing::warn!(from, zxid = format_args!("0x{zxid:x}"), error = %why, "cannot serve the snapshot a follower asks for");
            out.push(CHUNK_GONE);
        }
    }
    net.send(from, KIND_SNAP_CHUNK, out);
}

/// Fetches the snapshot a Raft snapshot message describes from `leader`, chunk by chunk,
/// into its temp file; returns what it fetched. A chunk unanswered for [`CHUNK_WAIT`] is
/// asked for again, up to [`CHUNK_TRIES`] times; one answered "not yet" is asked for
/// again after [`CHUNK_NOT_YET_WAIT`], for up to [`CHUNK_NOT_YET_MAX`].
async fn fetch_snapshot(
    net: &PeerNet,
    chunks: &local_channel::LocalReceiver<Incoming>,
    leader: u64,
    data_dir: &std::path::Path,
    desc_bytes: &[u8],
) -> Result<recover::SnapDesc, String> {
    use std::os::unix::fs::FileExt;
    let desc = recover::SnapDesc::decode(desc_bytes)
        .ok_or_else(|| "the leader's snapshot message has no valid descriptor".to_string())?;
    let tmp = recover::fetch_path(data_dir, desc.zxid);
    let file = std::fs::create_dir_all(crate::snapshot::snap_dir(data_dir))
        .and_then(|_| std::fs::File::create(&tmp))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let started = Instant::now();
    let mut offset = 0u64;
    let mut tries = 0;
    // When the leader first answered "not yet" for the chunk at `offset`.
    let mut not_yet_since: Option<Instant> = None;
    while offset < desc.len {
        let want = (desc.len - offset).min(u64::from(CHUNK_BYTES)) as u32;
        let mut req = Vec::with_capacity(20);
        req.extend_from_slice(&desc.zxid.to_le_bytes());
        req.extend_from_slice(&offset.to_le_bytes());
        req.extend_from_slice(&want.to_le_bytes());
        net.send(leader, KIND_SNAP_REQ, req);
        let got = futures_lite::future::or(chunks.recv(), async {
            glommio::timer::sleep(CHUNK_WAIT).await;
            None
        })
        .await;
        let Some(chunk) = got.filter(|c| {
            c.from == leader
                && c.payload.len() >= 17
                && le_i64(&c.payload[0..8]) == desc.zxid
                && le_u64(&c.payload[8..16]) == offset
        }) else {
            tries += 1;
            if tries >= CHUNK_TRIES {
                return Err(format!(
                    "no answer from server {leader} for snapshot 0x{:x} at byte {offset}",
                    desc.zxid
                ));
            }
            continue;
        };
        tries = 0;
        let bytes = &chunk.payload[17..];
        match chunk.payload[16] {
            CHUNK_OK if !bytes.is_empty() => {}
            CHUNK_NOT_YET => {
                let since = *not_yet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= CHUNK_NOT_YET_MAX {
                    return Err(format!(
                        "server {leader} has not made snapshot 0x{:x} readable in {CHUNK_NOT_YET_MAX:?} (restoring it from its compressed file)",
                        desc.zxid
                    ));
                }
                glommio::timer::sleep(CHUNK_NOT_YET_WAIT).await;
                continue;
            }
            _ => {
                return Err(format!(
                    "server {leader} no longer has snapshot 0x{:x}",
                    desc.zxid
                ));
            }
        }
        if let Some(since) = not_yet_since.take() {
            tracing::info!(
                zxid = format_args!("0x{:x}", desc.zxid), offset, waited = ?since.elapsed(),
                "the leader restored the snapshot it sends from its compressed file"
            );
        }
        file.write_all_at(bytes, offset)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        offset += bytes.len() as u64;
    }
    tracing::info!(
        zxid = format_args!("0x{:x}", desc.zxid), bytes = desc.len, elapsed = ?started.elapsed(),
        "fetched the leader's snapshot"
    );
    Ok(desc)
}

/// Raft entry kinds as the log stores them.
/// The log executor of an ensemble member: appends each job's entries (one write and
/// one fdatasync for every job already queued), stores term and vote, then acknowledges.
/// Failure is fail-stop, as for the standalone log.
pub async fn run_log(
    mut log: ferrokeeper_storage::raftlog::RaftLog,
    jobs: SharedReceiver<LogJob>,
    acks: SharedSender<u64>,
    counters: Arc<crate::commit::log::LogCounters>,
    purge_through: Arc<AtomicU64>,
    fail: FailStop,
) {
    use ferrokeeper_storage::raftlog::{EntryRef, HardState as StoredHs};
    let jobs = jobs.connect().await;
    let acks = acks.connect().await;
    counters.publish(&log.stats());
    let mut purged = 0u64;
    while let Some(first) = jobs.recv().await {
        let mut queued = vec![first];
        while let Some(j) = take_queued(&jobs) {
            queued.push(j);
            if queued.len() >= 64 {
                break;
            }
        }
        // Runs of jobs whose entries continue each other go in one append; a job whose
        // first entry overwrites earlier ones starts a new run (the log truncates then),
        // and a snapshot install empties the log first.
        let stamps: Vec<Option<Vec<u8>>> = queued
            .iter()
            .map(|j| super::recover::commit_stamp(&j.entries, j.commit))
            .collect();
        let mut run: Vec<EntryRef<'_>> = Vec::new();
        let mut hard_state = None;
        for (job, stamp) in queued.iter().zip(&stamps) {
            let restart = job.snapshot.is_some()
                || matches!((job.entries.first(), run.last()), (Some(f), Some(l)) if f.index != l.index + 1);
            if restart && !run.is_empty() {
                if let Err(e) = append_bounded(&mut log, &run) {
                    fail.stop(format!("raft log write failed: {e}"));
                    return;
                }
                run.clear();
            }
            if job.snapshot.is_some() {
                if let Some(first) = log.first_index() {
                    if let Err(e) = log.truncate_from(first) {
                        fail.stop(format!("raft log reset for a snapshot failed: {e}"));
                        return;
                    }
                }
            }
            run.extend(super::recover::stored_entries(
                &job.entries,
                stamp.as_deref(),
            ));
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
        drop(stamps);
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
        let target = purge_through.load(std::sync::atomic::Ordering::Acquire);
        if target > purged {
            if let Err(e) = log.purge_through(target) {
                fail.stop(format!("raft log purge failed: {e}"));
                return;
            }
            purged = target;
            counters.publish(&log.stats());
        }
    }
}

/// A message already in `rx`, if there is one, without waiting. Polling `recv()` with
/// the task's own waker (`poll_once`) would leave a clone of that waker with glommio's
/// reactor each time the channel is empty, and those pile up until the sender next
/// wakes the channel: during a long catch-up a member's log task passed 32767 clones and
/// panicked ("Waker invariant broken", glommio's 16-bit task refcount), which stopped the
/// ensemble driver. A no-op waker leaves nothing the task's refcount counts; the outer
/// `recv().await` registers the real waker once before the task sleeps.
fn take_queued<T: Send + Sized>(
    rx: &glommio::channels::shared_channel::ConnectedReceiver<T>,
) -> Option<T> {
    use std::future::Future as _;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut recv = std::pin::pin!(rx.recv());
    match recv.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(item) => item,
        std::task::Poll::Pending => None,
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
