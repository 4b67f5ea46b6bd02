//! A whole-server simulator: one process, one seed.
//!
//! [`server::SimServer`] runs the real commit path — `core::sequencer::Sequencer`,
//! `core::machine::StateMachine`, the transaction log (`LogWriter` over a simulated
//! disk), snapshots (written, read back, rebased onto, retained and purged) — with a
//! clock the simulator owns; batches are pipelined (sealed, then made durable in
//! groups) as the real stage does. [`workload::Sim`] drives it with seeded clients
//! (every write kind, reads, watches, sessions that reattach, move, close or go silent
//! and expire), injects disk faults (failed writes and fsyncs, a process that dies
//! after N operations), power cuts, a damaged newest snapshot, faults during recovery
//! and a clock read afresh (possibly earlier) at restart, and checks after every step
//! and every restart:
//!
//! - nothing acknowledged is lost: the recovered zxid is at least the last acknowledged;
//! - the recovered state equals a crash-free twin's at that zxid, node by node
//!   ([`check::diff_states`]: path, data, stat, ACL, children; sessions; container and
//!   TTL indexes; ZooKeeper's tree digest, which must also equal the digest computed
//!   over the nodes, see [`check::digest`]);
//! - an independent model ([`model::Model`]), written only from acknowledged replies and
//!   the acknowledged txns no client asked for (expiry, reaping), predicts every reply
//!   and agrees with the committed and the recovered tree;
//! - apply equals adopt: the twin decodes each batch from the log's bytes
//!   (`core::codec::decode`) and applies it (`StateMachine::apply`); its state must equal
//!   the state the server adopted from its sequencer;
//! - the batch's watch changes are the model's, and the watch table fires only events
//!   that answer them, one-shot watches exactly once.
//!
//! Every failure message starts with the seed and the step; `FK_SIM_SEED=<n>` replays
//! that run (see `tests/sim.rs`). Nothing else in the crate depends on this module.
//!
//! For the ensemble: [`server::SimServer`] is a value stepped by messages
//! (`handle`, `tick`, `seal`, `sync`, `restart`) that knows clients only by the
//! [`crate::core::sequencer::Origin`] it hands back, so several of them can run under
//! one scheduler with a simulated network between them; the clients, the model and the
//! checks live in [`workload`], apart from it.
//!
//! [`ensemble`] is that scheduler for replication: 3 or 5 `replica::node::Node`s over
//! their Raft logs on simulated disks and a faulty simulated network (`tests/sim_ensemble.rs`).

pub mod check;
pub mod ensemble;
pub mod model;
pub mod server;
pub mod workload;

use std::fmt;

/// Counters over one or more seeds, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Seeds run to the end.
    pub seeds: u64,
    /// Steps run.
    pub steps: u64,
    /// Power cuts the simulator chose (not forced by a failure), the final one included.
    pub crashes: u64,
    /// Restarts (power cut + recovery), for any reason.
    pub restarts: u64,
    /// Fault plans injected on the disks.
    pub fault_plans: u64,
    /// Fail-stops: the log (or the dying process) refused a batch.
    pub fail_stops: u64,
    /// Client writes sent.
    pub writes_sent: u64,
    /// Client writes whose acknowledged reply was checked against the model.
    pub acked_writes_checked: u64,
    /// Recoveries checked against the twin.
    pub recovered_zxids: u64,
    /// Sessions expired.
    pub expiries: u64,
    /// Containers and TTL nodes reaped.
    pub reaped: u64,
    /// Reads checked.
    pub reads: u64,
    /// Watch events checked.
    pub events: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Recoveries that failed under an injected fault, then retried.
    pub failed_recoveries: u64,
    /// Snapshot files damaged before a recovery.
    pub flipped_snapshots: u64,
}

impl Summary {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &Summary) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        self.crashes += o.crashes;
        self.restarts += o.restarts;
        self.fault_plans += o.fault_plans;
        self.fail_stops += o.fail_stops;
        self.writes_sent += o.writes_sent;
        self.acked_writes_checked += o.acked_writes_checked;
        self.recovered_zxids += o.recovered_zxids;
        self.expiries += o.expiries;
        self.reaped += o.reaped;
        self.reads += o.reads;
        self.events += o.events;
        self.snapshots += o.snapshots;
        self.failed_recoveries += o.failed_recoveries;
        self.flipped_snapshots += o.flipped_snapshots;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeds {} steps {} crashes {} restarts {} fault plans {} fail-stops {} writes sent {} acknowledged writes checked {} snapshots {} (damaged {}) faulted recoveries {} expiries {} reaped {} reads {} watch events {}",
            self.seeds,
            self.steps,
            self.crashes,
            self.restarts,
            self.fault_plans,
            self.fail_stops,
            self.writes_sent,
            self.acked_writes_checked,
            self.snapshots,
            self.flipped_snapshots,
            self.failed_recoveries,
            self.expiries,
            self.reaped,
            self.reads,
            self.events
        )
    }
}

/// A failed check.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that replays it.
    pub seed: u64,
    /// The step it failed in.
    pub step: u64,
    /// What failed.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {}: {} (replay: FK_SIM_SEED={} cargo test --release --test sim)",
            self.seed, self.step, self.message, self.seed
        )
    }
}

/// Runs `seed` for `steps` steps. `step` is kept up to date so that a caller catching a
/// panic can name the step it happened in.
///
/// # Errors
/// The first failed check.
pub fn run_seed(seed: u64, steps: u64, step: &std::cell::Cell<u64>) -> Result<Summary, Failure> {
    let fail = |step: u64, message: String| Failure {
        seed,
        step,
        message,
    };
    let mut sim = workload::Sim::new(seed).map_err(|m| fail(0, m))?;
    let result = (|| {
        for _ in 0..steps {
            sim.one_step_public()?;
            step.set(sim.step());
        }
        sim.finish(steps)
    })();
    result.map_err(|m| fail(sim.step(), m))?;
    let mut s = sim.summary;
    let server = sim.server_stats();
    s.snapshots = server.snapshots;
    s.failed_recoveries = server.failed_recoveries;
    s.flipped_snapshots = server.flipped_snapshots;
    Ok(s)
}
