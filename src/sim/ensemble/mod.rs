//! The ensemble simulator: 3 or 5 members ([`crate::replica::node::Node`]) in one
//! thread under one seed, with a simulated clock (steps of [`STEP_MS`], a Raft tick every
//! [`TICK_MS`]), each member's real Raft log on a simulated disk ([`member`]), a
//! simulated network that delays, loses, duplicates and reorders frames and partitions
//! members ([`net`]), crashes and restarts, disk faults, and seeded clients
//! ([`clients`]) that move between members with their sessions.
//!
//! Checked after every step, every failure message naming the seed:
//! 1. one txn per zxid across members ([`history`]);
//! 2. one tree digest per applied zxid across members, equal to a twin's that applies
//!    the history;
//! 4. a session's acknowledged writes have increasing zxids;
//! 5. an ephemeral disappears only through its session's close or a delete.
//!
//! Clients also change the membership now and then (`reconfig` as the super user: a
//! voter leaves, or one that left joins again, one server at a time), so elections,
//! crashes and partitions meet configuration changes in flight. In half the seeds
//! members have `readonlymode.enabled` with local sessions (upgraded by an ephemeral):
//! a member cut off from a leader serves read-only clients, and half the connects ask
//! for read-only; after healing no member may still be read-only.
//!
//! And at the end, after healing everything:
//! 6. a leader is elected and a write commits within [`LIVENESS_MS`] of simulated time;
//! 3. every acknowledged write is in the history at its zxid (same session and xid), and
//!    every member converges on the twin's state (so its effect is visible);
//! 7. after a client has brought every server back into the membership, each member's
//!    Raft configuration is the one `/zookeeper/config` names.
//!
//! `tests/sim_ensemble.rs` runs it (`FK_ENS_SEED`, `FK_ENS_SEEDS`, `FK_ENS_LONG`).

pub mod clients;
pub mod history;
pub mod member;
pub mod net;
mod run;

use std::fmt;

pub use run::run_seed;

/// Simulated time per step.
pub const STEP_MS: i64 = 10;
/// Simulated time per Raft tick (the server's default is 50 ms too).
pub const TICK_MS: i64 = 50;
/// After healing: how long a leader and a committed write may take.
pub const LIVENESS_MS: i64 = 60_000;

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Members: 3 or 5.
    pub nodes: u64,
    /// Steps with faults before healing.
    pub steps: u64,
    /// Print what happens to stderr.
    pub trace: bool,
}

/// Counters over one or more runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Runs.
    pub seeds: u64,
    /// Steps.
    pub steps: u64,
    /// Times a member became leader.
    pub elections: u64,
    /// Member crashes (chosen, or the log's fail-stop).
    pub crashes: u64,
    /// Of those, fail-stops after an injected disk fault.
    pub fail_stops: u64,
    /// Partitions.
    pub partitions: u64,
    /// Disk fault plans.
    pub disk_faults: u64,
    /// Frames sent, lost and duplicated.
    pub frames: (u64, u64, u64),
    /// Client writes sent.
    pub writes: u64,
    /// Acknowledged (Ok) writes checked.
    pub acks: u64,
    /// Txns in the histories.
    pub txns: u64,
    /// Client reconnections.
    pub connects: u64,
    /// Membership changes (`reconfig`) sent, and acknowledged.
    pub reconfigs: (u64, u64),
    /// Times a member started serving read-only.
    pub read_only: u64,
}

impl Summary {
    /// Adds `o`.
    pub fn add(&mut self, o: &Summary) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.elections += o.elections;
        self.crashes += o.crashes;
        self.fail_stops += o.fail_stops;
        self.partitions += o.partitions;
        self.disk_faults += o.disk_faults;
        self.frames.0 += o.frames.0;
        self.frames.1 += o.frames.1;
        self.frames.2 += o.frames.2;
        self.writes += o.writes;
        self.acks += o.acks;
        self.txns += o.txns;
        self.connects += o.connects;
        self.reconfigs.0 += o.reconfigs.0;
        self.reconfigs.1 += o.reconfigs.1;
        self.read_only += o.read_only;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds {} steps {} elections {} crashes {} (fail-stops {}) partitions {} disk fault plans {} frames sent {} lost {} duplicated {} connects {} writes {} acknowledged {} txns {} reconfigs sent {} acknowledged {} read-only entries {}",
            self.seeds,
            self.steps,
            self.elections,
            self.crashes,
            self.fail_stops,
            self.partitions,
            self.disk_faults,
            self.frames.0,
            self.frames.1,
            self.frames.2,
            self.connects,
            self.writes,
            self.acks,
            self.txns,
            self.reconfigs.0,
            self.reconfigs.1,
            self.read_only
        )
    }
}

/// A failed check.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that replays it.
    pub seed: u64,
    /// Members.
    pub nodes: u64,
    /// The step it failed in.
    pub step: u64,
    /// What failed.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} ({} members) step {}: {} (replay: FK_ENS_SEED={} FK_ENS_NODES={} cargo test --release --test sim_ensemble)",
            self.seed, self.nodes, self.step, self.message, self.seed, self.nodes
        )
    }
}
