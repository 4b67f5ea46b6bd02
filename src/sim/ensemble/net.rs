//! The simulated network between ensemble members: every frame is dropped when a
//! partition separates its ends, at sending or at delivery, and gets a seeded delay.
//!
//! - Raft frames (`KIND_RAFT`) overtake each other, are lost and are duplicated: Raft
//!   must tolerate all of it.
//! - Forwarded client requests (`KIND_FORWARD`) keep their order per sender and
//!   receiver and are never duplicated, as over the real transport's TCP connection:
//!   the node relies on that (a duplicated handshake would open two sessions, and
//!   reordered writes of one session would commit out of xid order). They are lost only
//!   to partitions, as when a peer connection breaks.

use std::collections::BTreeMap;

use ferrokeeper_storage::backend::sim::Prng;

use crate::replica::node::KIND_RAFT;

/// One frame on the wire.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// Peer frame kind (`node::KIND_RAFT`, `node::KIND_FORWARD`).
    pub kind: u8,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// How the network misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetFaults {
    /// Chance per million that a frame is lost.
    pub loss_per_million: u32,
    /// Chance per million that a frame is delivered twice.
    pub dup_per_million: u32,
    /// Delay of each frame (and of each copy), uniform in this range, ms.
    pub delay_ms: (u64, u64),
}

/// Frames in flight, by delivery time.
pub struct Net {
    /// (delivery time, sequence) → frame: the sequence keeps equal times in send order
    /// and makes the order a function of the seed alone.
    flight: BTreeMap<(i64, u64), Frame>,
    seq: u64,
    /// The delivery time of the last forwarded-request frame per (from, to).
    fifo: BTreeMap<(u64, u64), i64>,
    /// Each member's side of the current partition (equal: they can talk).
    side: BTreeMap<u64, u8>,
    /// The faults in force.
    pub faults: NetFaults,
    /// Frames sent, lost (by fault or partition) and duplicated, for the summary.
    pub counters: (u64, u64, u64),
}

impl Net {
    /// A healed network over `ids`.
    pub fn new(ids: &[u64], faults: NetFaults) -> Net {
        Net {
            flight: BTreeMap::new(),
            seq: 0,
            fifo: BTreeMap::new(),
            side: ids.iter().map(|id| (*id, 0)).collect(),
            faults,
            counters: (0, 0, 0),
        }
    }

    /// Whether `a` and `b` can talk now.
    pub fn connected(&self, a: u64, b: u64) -> bool {
        self.side.get(&a) == self.side.get(&b)
    }

    /// Puts the members in `cut` on one side and everyone else on the other.
    pub fn partition(&mut self, cut: &[u64]) {
        for (id, side) in self.side.iter_mut() {
            *side = u8::from(cut.contains(id));
        }
    }

    /// Whether any partition is in force.
    pub fn partitioned(&self) -> bool {
        self.side.values().any(|s| *s != 0)
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        for side in self.side.values_mut() {
            *side = 0;
        }
    }

    /// Sends `frame` at `now`.
    pub fn send(&mut self, rng: &mut Prng, now: i64, frame: Frame) {
        self.counters.0 += 1;
        if !self.connected(frame.from, frame.to) {
            self.counters.1 += 1;
            return;
        }
        if frame.kind != KIND_RAFT {
            let delay = self.delay(rng);
            let last = self.fifo.entry((frame.from, frame.to)).or_insert(now);
            let at = (now + delay).max(*last);
            *last = at;
            self.put(at, frame);
            return;
        }
        if rng.chance(self.faults.loss_per_million) {
            self.counters.1 += 1;
            return;
        }
        if rng.chance(self.faults.dup_per_million) {
            self.counters.2 += 1;
            let at = now + self.delay(rng);
            self.put(at, frame.clone());
        }
        let at = now + self.delay(rng);
        self.put(at, frame);
    }

    fn delay(&self, rng: &mut Prng) -> i64 {
        let (lo, hi) = self.faults.delay_ms;
        rng.range(lo, hi.max(lo)) as i64
    }

    fn put(&mut self, at: i64, frame: Frame) {
        self.seq += 1;
        self.flight.insert((at, self.seq), frame);
    }

    /// Frames due by `now`, in delivery order; those a partition now separates are lost.
    pub fn due(&mut self, now: i64) -> Vec<Frame> {
        let later = self.flight.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.flight, later);
        let mut out = Vec::with_capacity(due.len());
        for (_, f) in due {
            if self.connected(f.from, f.to) {
                out.push(f);
            } else {
                self.counters.1 += 1;
            }
        }
        out
    }

    /// Frames still in flight.
    pub fn in_flight(&self) -> usize {
        self.flight.len()
    }
}
