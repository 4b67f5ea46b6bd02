//! A shard: one glommio executor pinned to one core, owning the connections the kernel
//! hands its SO_REUSEPORT listener. Everything here is single-threaded: connection
//! state, the shard's watch table and its current root live in `Rc`/`RefCell`, and no
//! lock is taken on the per-request path.
//!
//! Reads are served here from the shard's root. Writes go to the commit stage through
//! a bounded SPSC queue; when it is full the connection's reader waits, which stops it
//! reading its socket (backpressure). Completions come back in commit order; the shard
//! takes the new root, fires its watches, then releases replies — so a client always
//! sees a watch event before a reply that reflects the change.

pub mod admin;
mod conn;
pub mod latency;
pub mod listener;
pub mod placement;
pub mod read;
pub mod reply;
pub mod report;
pub mod secure;
pub mod shared;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use crate::commit::stage::{Completion, StageMsg};
use crate::core::apply::ChangeKind;
use crate::core::sequencer::{CommitRequest, ReplyMsg};
use crate::core::state::DataState;
use crate::core::watch::{AclOf, WatchTable};
use crate::shard::shared::{ServerShared, ShardStats};
use shared::Refusal;

/// One shard's single-threaded state.
pub struct Shard {
    /// Index of this shard.
    pub index: usize,
    /// Server-wide settings and counters.
    pub shared: Arc<ServerShared>,
    /// The newest published state this shard has taken.
    pub root: RefCell<Arc<DataState>>,
    /// Live connections.
    pub conns: RefCell<HashMap<u64, Rc<conn::Conn>>>,
    /// Watches of this shard's connections.
    pub watches: RefCell<WatchTable>,
    /// Queue to the commit stage.
    pub to_commit: ConnectedSender<StageMsg>,
    /// Sessions heard from since the last touch report.
    pub touched: RefCell<HashSet<i64>>,
    next_conn: Cell<u64>,
    /// Sequence number of the last completion taken (see [`Shard::catch_up`]).
    applied_seq: Cell<u64>,
    /// This shard's counters.
    pub stats: Arc<ShardStats>,
    /// The buffer every connection of the shard reads its socket through.
    read_scratch: conn::ReadScratch,
}

impl Shard {
    fn conn(&self, id: u64) -> Option<Rc<conn::Conn>> {
        self.conns.borrow().get(&id).cloned()
    }

    /// Applies one completion: watch events (judged against the state before and
    /// after the batch), the new root, then replies.
    fn complete(self: &Rc<Self>, c: Completion) {
        let before = self.root.replace(c.state.clone());
        self.applied_seq.set(c.seq);
        if !c.changes.is_empty() {
            let mut fired = Vec::new();
            {
                let mut w = self.watches.borrow_mut();
                for ch in c.changes.iter() {
                    match ch.kind {
                        ChangeKind::Created => w.node_created(&ch.path, ch.zxid, &mut fired),
                        ChangeKind::Deleted => w.node_deleted(&ch.path, ch.zxid, &mut fired),
                        ChangeKind::DataChanged => w.data_changed(&ch.path, ch.zxid, &mut fired),
                    }
                }
                self.note_watches(&w);
                *self
                    .stats
                    .watch_triggers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = w.triggered();
            }
            for n in fired {
                if let Some(conn) = self.conn(n.conn) {
                    // ZooKeeper sends an event only to a watcher that may READ the node
                    // the event names: a deleted node is judged by its last ACL.
                    let path = n.event.path.as_str();
                    let node = match n.acl {
                        AclOf::Unchecked => None,
                        _ => c.state.tree.get(path).or_else(|| before.tree.get(path)),
                    };
                    if let Some(node) = node {
                        if !conn.may_read(node.acl(), self.shared.skip_acl) {
                            continue;
                        }
                    }
                    conn.notify(&n.event, n.zxid);
                }
            }
        }
        // Each write sent to the commit stage comes back as exactly one write reply, to
        // the shard that sent it: count them off before waking the connections, so a
        // reader held back by `globalOutstandingLimit` sees the lower count.
        // A reply for a connection already gone was counted off when it went (in an
        // ensemble a leader change closes connections whose replies never come).
        let answered = c
            .replies
            .iter()
            .filter(|(id, r)| {
                matches!(r, ReplyMsg::Write { .. }) && self.conns.borrow().contains_key(id)
            })
            .count();
        if answered > 0 {
            self.shared
                .outstanding_requests
                .fetch_sub(answered as u32, std::sync::atomic::Ordering::Relaxed);
        }
        // The oldest write answered here, and how many waited long: where a slow
        // request waited is logged once per completion, not once per request.
        let now = std::time::Instant::now();
        let mut oldest: Option<std::time::Instant> = None;
        let mut slow = 0u32;
        for (conn_id, reply) in c.replies {
            if let Some(conn) = self.conn(conn_id) {
                if let Some(received) = conn.on_reply(self, reply) {
                    if now.saturating_duration_since(received) >= conn::SLOW_REQUEST {
                        slow += 1;
                        oldest = Some(oldest.map_or(received, |o| o.min(received)));
                    }
                }
            }
        }
        if let Some(oldest) = oldest {
            log_slow_requests(self.index, slow, oldest, now, &c.stamps);
        }
        for r in c.reports {
            if r.reset_connections {
                for conn in self.conns.borrow().values() {
                    conn.reset_counters();
                }
            }
            r.submit(self.index, self.report());
        }
    }
}

/// Logs where the slowest of the `slow` writes a completion answered waited, read at
/// `oldest`; the wait is split into the stages of a write's way (ARCHITECTURE.md): read →
/// taken into a batch (the queue to the commit stage and the sequencer) → durable →
/// handed to the shards → taken by this shard at `now`. Once per completion, not once per
/// request: a stall delays hundreds of requests at once (issue #13's tail).
fn log_slow_requests(
    shard: usize,
    slow: u32,
    oldest: std::time::Instant,
    now: std::time::Instant,
    s: &crate::commit::stage::BatchStamps,
) {
    let since = |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a);
    tracing::info!(
        shard,
        slow,
        longest = ?since(oldest, now),
        to_batch = ?since(oldest, s.taken),
        to_durable = ?since(s.taken, s.durable),
        to_published = ?since(s.durable, s.published),
        to_shard = ?since(s.published, now),
        "slow requests answered"
    );
}

// Long because it starts the shard's three tasks (completions, touch reports,
// accept loop) that share its state, in the order they must start.
/// Runs a shard until the process ends.
pub async fn run(
    index: usize,
    shared: Arc<ServerShared>,
    to_commit: glommio::channels::shared_channel::SharedSender<StageMsg>,
    from_commit: glommio::channels::shared_channel::SharedReceiver<Completion>,
    root: Arc<DataState>,
) {
    // A shared channel connects when both of its ends have; connecting both of ours
    // at once keeps the shard and the commit stage from waiting on each other.
    let (to_commit, from_commit): (_, ConnectedReceiver<Completion>) =
        futures_lite::future::zip(to_commit.connect(), from_commit.connect()).await;
    let stats = shared.shard_stats[index].clone();
    let shard = Rc::new(Shard {
        index,
        shared: shared.clone(),
        root: RefCell::new(root),
        conns: RefCell::new(HashMap::new()),
        watches: RefCell::new(WatchTable::default()),
        to_commit,
        touched: RefCell::new(HashSet::new()),
        next_conn: Cell::new(1),
        applied_seq: Cell::new(0),
        stats,
        read_scratch: conn::ReadScratch::new(),
    });

    let addr = shared.listen_addr;
    let backlog = shared.config.client_port_listen_backlog;
    let listener = match listener::bind(addr, backlog) {
        Ok(l) => l,
        Err(e) => {
            shared
                .fail
                .stop(format!("shard {index} cannot listen on {addr}: {e}"));
            return;
        }
    };
    tracing::info!(shard = index, %addr, "shard listening");
    if index == 0 {
        shard.serve_admin_calls();
        if let Some(handed) = shared.placement.handed() {
            glommio::spawn_local(serve_handed(shard.clone(), handed)).detach();
        }
    }
    let unified = shared.config.tls.port_unification && shared.tls.is_some();
    if let Some(port) = shared.config.tls.secure_client_port {
        let ip = (shared.config.tls.secure_client_port_address)
            .unwrap_or_else(|| shared.listen_addr.ip());
        let secure_addr = SocketAddr::new(ip, port);
        match listener::bind(secure_addr, backlog) {
            Ok(l) => {
                tracing::info!(shard = index, addr = %secure_addr, "shard listening for TLS");
                glommio::spawn_local(accept_loop(shard.clone(), l, secure::PortKind::Secure))
                    .detach();
            }
            Err(e) => {
                shared.fail.stop(format!(
                    "shard {index} cannot listen on {secure_addr} (secureClientPort): {e}"
                ));
                return;
            }
        }
    }

    // Completions, in commit order.
    let s = shard.clone();
    glommio::spawn_local(async move {
        while let Some(c) = from_commit.recv().await {
            s.complete(c);
        }
    })
    .detach();

    // Session touches, reported in batches so the commit stage is not asked per request.
    let s = shard.clone();
    let touch_every = Duration::from_millis((shared.tick_time_ms / 4).clamp(10, 250));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(touch_every).await;
            let ids: Vec<i64> = s.touched.borrow_mut().drain().collect();
            if !ids.is_empty()
                && s.to_commit
                    .send(StageMsg::Core(CommitRequest::Touch(ids)))
                    .await
                    .is_err()
            {
                return;
            }
            s.publish_watch_stats();
        }
    })
    .detach();

    let kind = if unified {
        secure::PortKind::Unified
    } else {
        secure::PortKind::Plain
    };
    accept_loop(shard, listener, kind).await;
}

/// Accepts connections on one of the shard's listeners until the process ends, and
/// serves each here or hands it to shard 0 (`placement`).
async fn accept_loop(shard: Rc<Shard>, listener: listener::Listener, kind: secure::PortKind) {
    let index = shard.index;
    loop {
        // The address `accept4` returned, where the socket's `peer_addr` would ask the
        // kernel again (`getpeername`).
        let (socket, peer): (_, Option<SocketAddr>) = match listener.shared_accept().await {
            Ok(accepted) => {
                let peer = accepted.peer_addr().ok();
                (placement::own(accepted), peer)
            }
            Err(e) => {
                tracing::warn!(shard = index, error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Some(p) = peer {
            if let Err(refusal) = shard.shared.admit(p.ip()) {
                // ZooKeeper's messages, so that log searches find both servers.
                match refusal {
                    Refusal::TooManyConnections { max } => {
                        tracing::warn!(shard = index, "Too many connections - max is {max}")
                    }
                    Refusal::TooManyFromAddress { max } => tracing::warn!(
                        shard = index,
                        "Too many connections from {} - max is {max}",
                        p.ip()
                    ),
                }
                continue;
            }
        }
        let placement = &shard.shared.placement;
        let handed = placement::Handed { socket, peer, kind };
        let handed = match placement.choose(index) {
            placement::Place::Here => handed,
            placement::Place::First => match placement.hand_to_first(index, handed) {
                Ok(()) => continue,
                Err(back) => back,
            },
        };
        start_connection(&shard, handed);
    }
}

/// Serves an accepted connection on this shard, in a task of its own.
fn start_connection(shard: &Rc<Shard>, c: placement::Handed) {
    let id = shard.next_conn.get();
    shard.next_conn.set(id + 1);
    let s = shard.clone();
    glommio::spawn_local(async move {
        let shared = s.shared.clone();
        let index = s.index;
        // SAFETY: the descriptor is the accepted socket, given up by its only owner.
        let stream = unsafe {
            <glommio::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(
                std::os::fd::IntoRawFd::into_raw_fd(c.socket),
            )
        };
        secure::serve(s, id, stream, c.peer, c.kind).await;
        // The slot `admit` took for this address is free again.
        if let Some(p) = c.peer {
            shared.release(p.ip());
        }
        shared.placement.ended(index);
    })
    .detach();
}

/// Serves, on shard 0, the connections other shards hand it.
async fn serve_handed(shard: Rc<Shard>, handed: async_channel::Receiver<placement::Handed>) {
    while let Ok(c) = handed.recv().await {
        start_connection(&shard, c);
    }
}

impl Shard {
    /// Waits until this shard's root includes every batch the commit stage has
    /// published. A write's reply may be released by another shard first; a request
    /// served here afterwards must not see an older state, and its session must get
    /// the batch's watch events before the reply (standalone ZooKeeper's single
    /// pipeline gives both). The completion is already in this shard's queue, so the
    /// wait is a few scheduler turns at most.
    pub async fn catch_up(&self) {
        let target = self
            .shared
            .handoff
            .seq
            .load(std::sync::atomic::Ordering::Acquire);
        let mut turns = 0u32;
        while self.applied_seq.get() < target {
            turns += 1;
            if turns < 64 {
                futures_lite::future::yield_now().await;
            } else {
                glommio::timer::sleep(Duration::from_micros(50)).await;
            }
        }
    }

    /// Tells the commit stage whether this shard holds any watch (`Handoff::watching`),
    /// after each change of its watch table: without one, batches that bring it no reply
    /// need not wake it (`commit::stage::publish`).
    pub fn note_watches(&self, w: &WatchTable) {
        let watching = !w.is_empty();
        let flag = &self.shared.handoff.watching[self.index];
        if flag.load(std::sync::atomic::Ordering::Relaxed) != watching {
            // SeqCst, though the fence before the executor sleeps is what orders it
            // against the commit stage's look (see `publish`).
            flag.store(watching, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Drops the watches of connection `id`, which has closed.
    fn forget_watches(&self, id: u64) {
        let mut w = self.watches.borrow_mut();
        w.remove_connection(id);
        self.note_watches(&w);
    }

    /// Copies watch counts into the shared counters the 4lw commands read.
    fn publish_watch_stats(&self) {
        let w = self.watches.borrow();
        self.stats
            .watch_count
            .store(w.watch_count() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}
