//! The peer transport: opaque frames between the servers of an ensemble, over TCP on
//! ZooKeeper's quorum port.
//!
//! ## Shape
//!
//! Every server dials every peer for its *outgoing* frames and accepts connections for
//! its *incoming* ones: two TCP connections per pair, one per direction, so there is no
//! tie-breaking over who keeps which connection. A dialer opens with a handshake
//! (`ferrokeeper_net::peer`) naming itself and the server it meant to reach, then writes
//! frames and never reads anything but the end of the connection.
//!
//! Everything runs as tasks on the caller's glommio executor (the commit executor in
//! the ensemble), with no thread of its own, so a Raft message costs no thread crossing:
//! [`PeerNet::send`] appends the encoded frame to the peer's queue and wakes its dialer,
//! which writes everything queued in one write (`TCP_NODELAY`: the coalescing is ours,
//! not Nagle's). Incoming frames arrive on one bounded channel, in order per sender while
//! a connection lasts; a full channel stops reading the sockets, so TCP pushes back.
//!
//! ## Loss
//!
//! Raft tolerates loss and resends, so nothing here retries: a frame is dropped (and
//! counted in [`PeerStats`]) when its peer's queue is full, when it is larger than the
//! maximum frame, when a connection dies with it written but unread, and when
//! [`Faults`] or a cut ([`PeerNet::set_cut`]) say so. Frames queued while a peer is
//! unreachable are kept up to [`PeerConfig::queue_bytes_max`] and sent after reconnecting.
//!
//! ## A peer gone
//!
//! When a peer ends the connection it sends on (its process exited or was killed: the
//! kernel closes its sockets; or a reset), the caller gets an [`Incoming`] of kind
//! [`KIND_LOST`] from it after that connection's last frame. A follower takes it as
//! ZooKeeper's followers take the leader's socket closing: the leader is gone, so it
//! need not wait out the whole election timeout. A connection replaced by the peer's
//! newer one, or ended by this side, sends none.
//!
//! ## Must never
//!
//! Block or await in [`PeerNet::send`], panic on anything a peer sends, or deliver a
//! frame from a connection whose handshake was refused.

mod accept;
mod dial;
mod faults;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ferrokeeper_net::peer::{encode_frame, frame_bytes};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::task::JoinHandle;

pub use faults::{Faults, FaultsError};

/// The smallest per-peer queue, in bytes: about a second of Raft traffic at a rate the
/// log can commit (STACK-NOTES.md: ~4k batches/s), so a peer that restarts finds its
/// recent messages waiting.
pub const QUEUE_BYTES_MIN: usize = 16 << 20;

/// Frames received and not yet taken by the caller before the transport stops reading
/// its sockets.
pub const INCOMING_FRAMES_MAX: usize = 4096;

/// The first wait before redialing a peer; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// The longest wait between two dials of one peer. A connection that lasted at least
/// this long resets the wait to [`BACKOFF_MIN`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long a dial may take: a peer behind a blackhole route never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an accepted connection may take to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from an incoming connection at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// The transport's configuration.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// This server's id (the N of `server.N`).
    pub my_id: u64,
    /// The quorum addresses to listen on (one accept loop each; at least one).
    pub listen: Vec<SocketAddr>,
    /// Every peer's quorum addresses by server id (several on a multi-address server
    /// line: a dialer moves to the next after a failed dial). An entry for `my_id` is
    /// ignored, so the ensemble's whole server list may be passed.
    pub peers: BTreeMap<u64, Vec<SocketAddr>>,
    /// Faults to inject on the sending side ([`Faults::none`] in production).
    pub faults: Faults,
    /// The largest payload of one frame, in bytes, sent or accepted (at most `u32::MAX`).
    pub max_frame: usize,
    /// Frame kinds that keep TCP's promise under fault injection: never duplicated or
    /// delayed out of order (they may still be dropped, as a broken connection loses
    /// them). Requests a follower forwards rely on it, as ZooKeeper's do on TCP.
    pub ordered_kinds: Vec<u8>,
}

impl PeerConfig {
    /// The per-peer queue bound, in bytes: [`QUEUE_BYTES_MIN`], or four maximal frames
    /// if that is more, so a peer's queue always holds a few of the largest messages.
    /// A peer's memory is at most twice this: the queue, and one write in flight.
    pub fn queue_bytes_max(&self) -> usize {
        QUEUE_BYTES_MIN.max(frame_bytes(self.max_frame).saturating_mul(4))
    }
}

/// Not a frame: the kind of the [`Incoming`] that says the connection `from` sent on was
/// ended by the peer (see "A peer gone"). Reserved: a frame of this kind on the wire is a
/// malformed stream.
pub const KIND_LOST: u8 = 0;

/// One frame received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The sender's server id (as its handshake said, checked against the peer list).
    pub from: u64,
    /// The frame's kind byte.
    pub kind: u8,
    /// The frame's payload.
    pub payload: Vec<u8>,
}

/// Counters since [`PeerNet::start`], over all peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames written to outgoing connections.
    pub frames_sent: u64,
    /// Bytes written to outgoing connections (frame headers and handshakes included).
    pub bytes_sent: u64,
    /// Frames read from incoming connections and handed to the caller.
    pub frames_received: u64,
    /// Bytes of those frames, headers included.
    pub bytes_received: u64,
    /// Frames dropped because their peer's queue was full.
    pub dropped_queue_full: u64,
    /// Frames dropped because their payload exceeded the maximum frame.
    pub dropped_oversized: u64,
    /// Frames dropped because they were addressed to no configured peer.
    pub dropped_unknown_peer: u64,
    /// Frames dropped by [`Faults`] or a cut, including those queued when a cut began.
    pub dropped_by_faults: u64,
    /// Extra copies [`Faults`] made.
    pub duplicated_by_faults: u64,
    /// Copies [`Faults`] held back before queuing them.
    pub delayed_by_faults: u64,
    /// Outgoing connections established after an earlier one to the same peer ended.
    pub reconnects: u64,
    /// Incoming connections closed for a refused handshake or a malformed or oversized
    /// frame.
    pub connections_refused: u64,
}

impl PeerStats {
    /// Frames dropped for any reason counted here.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_oversized
            + self.dropped_unknown_peer
            + self.dropped_by_faults
    }
}

/// The handle to a running transport. Cheap to clone; not `Send` (it lives on the
/// executor that started it).
#[derive(Clone)]
pub struct PeerNet {
    inner: Rc<Inner>,
}

/// State shared by the handle and the transport's tasks.
struct Inner {
    my_id: u64,
    local_addr: SocketAddr,
    max_frame: usize,
    queue_bytes_max: usize,
    /// One entry per peer: those at start, then as [`PeerNet::set_peers`] changes them
    /// (a reconfig). Its dialer holds its own reference, so a removed peer's queue
    /// lives until the dialer is cancelled.
    out: RefCell<BTreeMap<u64, Rc<Outgoing>>>,
    faults: RefCell<faults::FaultGen>,
    ordered_kinds: Vec<u8>,
    stats: RefCell<PeerStats>,
    /// Where incoming frames go; taken at shutdown, so the caller's receiver ends once
    /// the connection tasks holding clones are gone too.
    to_caller: RefCell<Option<Rc<LocalSender<Incoming>>>>,
    /// The accept loop and the dialers.
    tasks: RefCell<Vec<JoinHandle<()>>>,
    /// Accepted connections by serial number; each removes itself when it ends.
    conns: RefCell<BTreeMap<u64, JoinHandle<()>>>,
    /// Which accepted connection each peer currently sends on (a serial in `conns`).
    incoming_from: RefCell<BTreeMap<u64, u64>>,
    next_serial: Cell<u64>,
    closed: Cell<bool>,
}

/// One peer's outgoing side.
struct Outgoing {
    /// Its quorum addresses, dialled in turn. Invariant: not empty.
    addrs: Vec<SocketAddr>,
    queue: RefCell<Queue>,
    /// Whether the dialer holds an established connection.
    connected: Cell<bool>,
    /// Whether frames to this peer are dropped (a partition in tests).
    cut: Cell<bool>,
    /// Wakes the dialer when something was queued; a full channel means it is already
    /// woken, so senders `try_send` and ignore the result.
    wake: LocalSender<()>,
    /// The dialer's end of `wake`, taken when it starts.
    wake_rx: RefCell<Option<LocalReceiver<()>>>,
    /// The dialer task, cancelled when the peer leaves the ensemble.
    dialer: RefCell<Option<JoinHandle<()>>>,
}

impl Outgoing {
    fn new(addrs: Vec<SocketAddr>) -> Outgoing {
        let (wake, wake_rx) = local_channel::new_bounded(1);
        Outgoing {
            addrs,
            queue: RefCell::new(Queue::default()),
            connected: Cell::new(false),
            cut: Cell::new(false),
            wake,
            wake_rx: RefCell::new(Some(wake_rx)),
            dialer: RefCell::new(None),
        }
    }
}

/// Frames waiting for a peer's connection.
///
/// Invariant: `bytes.len() + delayed_bytes <= queue_bytes_max`.
#[derive(Default)]
struct Queue {
    /// Encoded frames, ready to be written as they are.
    bytes: Vec<u8>,
    /// How many frames `bytes` holds.
    frames: u64,
    /// Frames held back by [`Faults`], by the time they are due (and a tie-breaker).
    delayed: BTreeMap<(Instant, u64), Vec<u8>>,
    delayed_bytes: usize,
    delayed_seq: u64,
}

impl Queue {
    /// Moves the delayed frames due at `now` to the ready bytes, and returns when the
    /// next one is due.
    fn release_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            let frame = entry.remove();
            self.delayed_bytes -= frame.len();
            self.bytes.extend_from_slice(&frame);
            self.frames += 1;
        }
        None
    }

    /// Empties the queue and returns how many frames it held.
    fn clear(&mut self) -> u64 {
        let dropped = self.frames + self.delayed.len() as u64;
        self.bytes.clear();
        self.frames = 0;
        self.delayed.clear();
        self.delayed_bytes = 0;
        dropped
    }
}

impl Inner {
    fn count(&self, f: impl FnOnce(&mut PeerStats)) {
        f(&mut self.stats.borrow_mut());
    }

    fn next_serial(&self) -> u64 {
        let s = self.next_serial.get();
        self.next_serial.set(s + 1);
        s
    }

    fn is_peer(&self, id: u64) -> bool {
        self.out.borrow().contains_key(&id)
    }

    fn peer(&self, id: u64) -> Option<Rc<Outgoing>> {
        self.out.borrow().get(&id).cloned()
    }
}

impl PeerNet {
    /// Binds `listen` (SO_REUSEADDR), spawns the accept loop and one dialer per peer on
    /// the current glommio executor, and returns the handle and the stream of incoming
    /// frames. The tasks run until [`PeerNet::shutdown`].
    pub async fn start(cfg: PeerConfig) -> std::io::Result<(PeerNet, LocalReceiver<Incoming>)> {
        let listeners = cfg
            .listen
            .iter()
            .map(|&a| accept::bind(a))
            .collect::<std::io::Result<Vec<_>>>()?;
        let local_addr = listeners
            .first()
            .ok_or_else(|| std::io::Error::other("no quorum address to listen on"))?
            .local_addr()?;
        let queue_bytes_max = cfg.queue_bytes_max();
        // The wire's length field is a u32.
        let max_frame = cfg.max_frame.min(u32::MAX as usize);
        let out = cfg
            .peers
            .iter()
            .filter(|(id, addrs)| **id != cfg.my_id && !addrs.is_empty())
            .map(|(id, addrs)| (*id, Rc::new(Outgoing::new(addrs.clone()))))
            .collect::<BTreeMap<_, _>>();
        let (tx, rx) = local_channel::new_bounded(INCOMING_FRAMES_MAX);
        let inner = Rc::new(Inner {
            my_id: cfg.my_id,
            local_addr,
            max_frame,
            queue_bytes_max,
            faults: RefCell::new(faults::FaultGen::new(cfg.faults.clone(), cfg.my_id)),
            ordered_kinds: cfg.ordered_kinds.clone(),
            stats: RefCell::new(PeerStats::default()),
            to_caller: RefCell::new(Some(Rc::new(tx))),
            tasks: RefCell::new(Vec::new()),
            conns: RefCell::new(BTreeMap::new()),
            incoming_from: RefCell::new(BTreeMap::new()),
            next_serial: Cell::new(0),
            closed: Cell::new(false),
            out: RefCell::new(out),
        });
        tracing::info!(
            me = cfg.my_id,
            listen = %local_addr,
            peers = ?cfg.peers,
            faults = %cfg.faults,
            "peer transport started"
        );
        let mut tasks = Vec::with_capacity(listeners.len());
        for listener in listeners {
            tasks.push(glommio::spawn_local(accept::accept_loop(inner.clone(), listener)).detach());
        }
        *inner.tasks.borrow_mut() = tasks;
        let net = PeerNet { inner };
        let peers: Vec<(u64, Rc<Outgoing>)> = net
            .inner
            .out
            .borrow()
            .iter()
            .map(|(id, o)| (*id, o.clone()))
            .collect();
        for (id, out) in peers {
            net.spawn_dialer(id, out);
        }
        Ok((net, rx))
    }

    fn spawn_dialer(&self, id: u64, out: Rc<Outgoing>) {
        let task = glommio::spawn_local(dial::dial(self.inner.clone(), id, out.clone())).detach();
        *out.dialer.borrow_mut() = Some(task);
    }

    /// Makes `peers` (id → quorum addresses; an entry for this server is ignored) the
    /// peer list after a reconfig: a new peer gets a dialer and may connect here, a
    /// removed one's dialer stops and its frames are dropped, a peer whose addresses
    /// changed is dialled afresh.
    pub fn set_peers(&self, peers: &BTreeMap<u64, Vec<SocketAddr>>) {
        if self.inner.closed.get() {
            return;
        }
        let wanted: BTreeMap<u64, &Vec<SocketAddr>> = peers
            .iter()
            .filter(|(id, addrs)| **id != self.inner.my_id && !addrs.is_empty())
            .map(|(id, addrs)| (*id, addrs))
            .collect();
        let stale: Vec<u64> = self
            .inner
            .out
            .borrow()
            .iter()
            .filter(|(id, o)| wanted.get(id).is_none_or(|addrs| **addrs != o.addrs))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(out) = self.inner.out.borrow_mut().remove(&id) {
                if let Some(task) = out.dialer.borrow_mut().take() {
                    task.cancel();
                }
                out.queue.borrow_mut().clear();
                tracing::info!(me = self.inner.my_id, peer = id, "peer removed");
            }
        }
        for (id, addrs) in wanted {
            if self.inner.is_peer(id) {
                continue;
            }
            let out = Rc::new(Outgoing::new(addrs.clone()));
            self.inner.out.borrow_mut().insert(id, out.clone());
            tracing::info!(me = self.inner.my_id, peer = id, addrs = ?addrs, "peer added");
            self.spawn_dialer(id, out);
        }
    }

    /// Queues a frame for `to`; never blocks or awaits. Per-peer queue is bounded
    /// (bytes); when full the frame is dropped and counted (Raft tolerates loss and
    /// resends). So are frames to an unknown peer, frames above the maximum size, and
    /// frames sent after [`PeerNet::shutdown`].
    ///
    /// Without delay faults the frame is encoded straight into the peer's queue buffer,
    /// which the dialer swaps with its write buffer: no allocation per frame once both
    /// buffers have grown to the traffic's size.
    pub fn send(&self, to: u64, kind: u8, payload: Vec<u8>) {
        let inner = &self.inner;
        let Some(out) = inner.peer(to) else {
            inner.count(|s| s.dropped_unknown_peer += 1);
            tracing::debug!(me = inner.my_id, to, "frame to an unknown peer dropped");
            return;
        };
        if payload.len() > inner.max_frame {
            inner.count(|s| s.dropped_oversized += 1);
            tracing::warn!(
                me = inner.my_id,
                to,
                kind,
                bytes = payload.len(),
                max = inner.max_frame,
                "frame above the maximum frame size dropped"
            );
            return;
        }
        if inner.closed.get() {
            return;
        }
        if out.cut.get() {
            inner.count(|s| s.dropped_by_faults += 1);
            return;
        }
        let mut fate = inner.faults.borrow_mut().fate();
        if inner.ordered_kinds.contains(&kind) && fate.copies > 0 {
            fate.copies = 1;
            fate.delays[0] = Duration::ZERO;
        }
        if fate.copies == 0 {
            inner.count(|s| s.dropped_by_faults += 1);
            return;
        }
        if fate.copies > 1 {
            inner.count(|s| s.duplicated_by_faults += 1);
        }
        let mut queued = false;
        for delay in &fate.delays[..fate.copies] {
            queued |= self.enqueue(&out, kind, &payload, *delay);
        }
        if queued {
            let _ = out.wake.try_send(());
        }
    }

    /// Appends one copy of a frame to `out`'s queue, now or after `delay`; false if the
    /// queue is full.
    fn enqueue(&self, out: &Outgoing, kind: u8, payload: &[u8], delay: Duration) -> bool {
        let inner = &self.inner;
        let mut q = out.queue.borrow_mut();
        let wire = frame_bytes(payload.len());
        if q.bytes.len() + q.delayed_bytes + wire > inner.queue_bytes_max {
            drop(q);
            inner.count(|s| s.dropped_queue_full += 1);
            return false;
        }
        if delay.is_zero() {
            encode_frame(&mut q.bytes, kind, payload);
            q.frames += 1;
        } else {
            let mut frame = Vec::with_capacity(wire);
            encode_frame(&mut frame, kind, payload);
            let seq = q.delayed_seq;
            q.delayed_seq += 1;
            q.delayed_bytes += wire;
            q.delayed.insert((Instant::now() + delay, seq), frame);
            drop(q);
            inner.count(|s| s.delayed_by_faults += 1);
        }
        true
    }

    /// Whether an outgoing connection to `to` is established now.
    pub fn connected(&self, to: u64) -> bool {
        self.inner.peer(to).is_some_and(|o| o.connected.get())
    }

    /// Counters since start, over all peers.
    pub fn stats(&self) -> PeerStats {
        *self.inner.stats.borrow()
    }

    /// The address the first listener is bound to (the port, when `listen` asked for
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Cuts (or restores) the link to `to`: while cut, frames to it are dropped, as are
    /// those already queued when the cut begins. The connection itself stays up. Cut
    /// both ends' links for a full partition.
    pub fn set_cut(&self, to: u64, cut: bool) {
        let Some(out) = self.inner.peer(to) else {
            return;
        };
        out.cut.set(cut);
        if cut {
            let dropped = out.queue.borrow_mut().clear();
            self.inner.count(|s| s.dropped_by_faults += dropped);
        }
    }

    /// Closes every connection and stops the tasks. Their sockets (the listener's
    /// included) close when the executor next runs, as cancelled tasks are dropped then.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        let tasks = std::mem::take(&mut *inner.tasks.borrow_mut());
        let conns = std::mem::take(&mut *inner.conns.borrow_mut());
        for task in tasks.iter().chain(conns.values()) {
            task.cancel();
        }
        for out in inner.out.borrow().values() {
            if let Some(task) = out.dialer.borrow_mut().take() {
                task.cancel();
            }
        }
        inner.incoming_from.borrow_mut().clear();
        inner.to_caller.borrow_mut().take();
        for out in inner.out.borrow().values() {
            out.connected.set(false);
            out.queue.borrow_mut().clear();
        }
        tracing::info!(me = inner.my_id, "peer transport shut down");
    }
}
