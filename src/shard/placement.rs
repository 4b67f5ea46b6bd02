//! Which shard serves a new client connection.
//!
//! The kernel spreads connections over the shards' `SO_REUSEPORT` listeners by a hash of
//! the addresses. That is fair for many clients, but when the commit stage runs on shard
//! 0's executor (`server::commit_on_shard`), a write from a connection on another shard
//! crosses to shard 0 and its reply crosses back: two executor wakes per write, which at
//! one request in flight cost as much server CPU as the write itself (the one-in-flight
//! runs in `bench/results/one-in-flight/`). So a shard other than 0 that accepts a
//! connection hands it to shard 0 whenever shard 0 serves no more connections than it
//! does: a lone client (the latency-sensitive case) is always served where its writes
//! commit, and many clients stay balanced, shard 0 taking the ties.
//!
//! The kernel chooses a listener when the SYN arrives, before anyone can count, so the
//! choice is made here, after the accept, by passing the socket. (Choosing in the kernel
//! with a reuseport BPF program was tried and removed after a client's connect was once
//! reset in CI following a restart. A later reset of that kind was traced to the tests,
//! not the server: a test restarting its server on a fixed, unclaimed port, which another
//! test's server could bind beside it; see issue #13's notes.)

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::secure::PortKind;

/// Connections waiting to reach shard 0 at most; past that a shard serves its own.
const HANDED_MAX: usize = 1024;

/// An accepted connection on its way to shard 0. The socket is owned: dropped on the
/// way (the server stopping), it is closed.
pub struct Handed {
    /// The connection's socket.
    pub socket: socket2::Socket,
    /// The client's address, read once at accept.
    pub peer: Option<SocketAddr>,
    /// What the listener that accepted it speaks.
    pub kind: PortKind,
}

/// Where a shard serves a connection it accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// On the shard that accepted it.
    Here,
    /// On shard 0: send it there.
    First,
}

/// The shards' connection counts and the way to shard 0.
pub struct Placement {
    /// Connections each shard serves or is about to serve. Counted when placed, not when
    /// the connection's task first runs: a shard accepting a burst sees its own earlier
    /// accepts, and a connection in the channel counts for shard 0 already.
    placed: Vec<AtomicU64>,
    /// Connections handed to shard 0; `None` when shard 0 is no better a place than any
    /// other (the commit stage has its own executor).
    to_first: Option<(
        async_channel::Sender<Handed>,
        async_channel::Receiver<Handed>,
    )>,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("placed", &self.placed)
            .field("prefer_first", &self.to_first.is_some())
            .finish()
    }
}

impl Placement {
    /// Counts for `shards` shards; `prefer_first` when shard 0 runs the commit stage.
    pub fn new(shards: usize, prefer_first: bool) -> Placement {
        Placement {
            placed: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            to_first: prefer_first.then(|| async_channel::bounded(HANDED_MAX)),
        }
    }

    /// Places a connection that shard `index` accepted, and counts it there.
    pub fn choose(&self, index: usize) -> Place {
        // Two shards may read the counts at once and both hand theirs over: shard 0 is
        // then ahead by one until a later accept evens it out. A balance, not a bound.
        let first = self.placed[0].load(Ordering::Relaxed);
        let here = self.placed[index].load(Ordering::Relaxed);
        let place = if index != 0 && self.to_first.is_some() && first <= here {
            Place::First
        } else {
            Place::Here
        };
        let to = if place == Place::First { 0 } else { index };
        self.placed[to].fetch_add(1, Ordering::Relaxed);
        place
    }

    /// Sends a connection `choose` placed on shard 0 (from shard `index`). If it cannot
    /// go (too many waiting, or shard 0 gone), it comes back, counted on shard `index`.
    pub fn hand_to_first(&self, index: usize, handed: Handed) -> Result<(), Handed> {
        let Some((tx, _)) = &self.to_first else {
            return Err(handed);
        };
        tx.try_send(handed).map_err(|e| {
            self.placed[0].fetch_sub(1, Ordering::Relaxed);
            self.placed[index].fetch_add(1, Ordering::Relaxed);
            e.into_inner()
        })
    }

    /// Shard 0's end of the way, when there is one.
    pub fn handed(&self) -> Option<async_channel::Receiver<Handed>> {
        self.to_first.as_ref().map(|(_, rx)| rx.clone())
    }

    /// A connection of shard `index` has ended.
    pub fn ended(&self, index: usize) {
        self.placed[index].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes ownership of an accepted socket's descriptor.
pub fn own(accepted: glommio::net::AcceptedTcpStream) -> socket2::Socket {
    // SAFETY: `shared_accept` just returned this descriptor and nothing else holds it
    // (`AcceptedTcpStream` is a bare copy of it, consumed here).
    socket2::Socket::from(unsafe { OwnedFd::from_raw_fd(accepted.into_raw_fd()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(p: &Placement) -> Vec<u64> {
        p.placed.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// A lone client goes to shard 0 from any shard; many stay balanced, shard 0 taking
    /// the ties.
    #[test]
    fn shard_zero_takes_the_ties() {
        let p = Placement::new(3, true);
        assert_eq!(p.choose(2), Place::First);
        assert_eq!(counts(&p), [1, 0, 0]);
        assert_eq!(p.choose(1), Place::Here);
        assert_eq!(p.choose(1), Place::First);
        assert_eq!(p.choose(0), Place::Here);
        assert_eq!(counts(&p), [3, 1, 0]);
        p.ended(0);
        p.ended(0);
        assert_eq!(p.choose(1), Place::First);
        assert_eq!(counts(&p), [2, 1, 0]);
    }

    /// Without a commit stage on shard 0, every shard serves what it accepts.
    #[test]
    fn no_preference_without_the_commit_stage_on_shard_zero() {
        let p = Placement::new(2, false);
        assert_eq!(p.choose(1), Place::Here);
        assert_eq!(p.choose(1), Place::Here);
        assert_eq!(counts(&p), [0, 2]);
    }

    fn handed() -> Handed {
        Handed {
            socket: socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("a socket"),
            peer: None,
            kind: PortKind::Plain,
        }
    }

    /// A connection that cannot reach shard 0 comes back and is counted where it is.
    #[test]
    fn a_full_way_gives_the_connection_back() {
        let p = Placement::new(2, true);
        for _ in 0..HANDED_MAX {
            assert_eq!(p.choose(1), Place::First);
            assert!(p.hand_to_first(1, handed()).is_ok());
            // As if shard 0 had served and closed it, so that the next goes there too.
            p.ended(0);
        }
        assert_eq!(p.choose(1), Place::First);
        assert!(p.hand_to_first(1, handed()).is_err(), "the way is full");
        assert_eq!(counts(&p), [0, 1], "counted back on shard 1");
    }
}
