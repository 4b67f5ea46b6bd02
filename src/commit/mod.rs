//! The commit stage's shell: the executor that runs the [`crate::core`] sequencer and
//! state machine in arrival order ([`stage`]), makes each batch durable on its own
//! io_uring ([`append`]), and the log's encoding, replay and counters ([`log`]). Named
//! after the request's path, as ZooKeeper names its processors; the decisions themselves
//! (prep, apply, zxids, sessions, reaping) live in the core.
//!
//! ## Thread crossings per write (standalone)
//!
//! Two: the shard hands the request to the commit executor (a `shared_channel`), and the
//! commit executor hands the completion back (another). In between, the commit executor
//! preps the txn, writes and fdatasyncs its batch through glommio's ring and sleeps in
//! that ring until the disk completes it, so the sync's completion wakes it directly, not
//! through a third thread. (The kernel runs the fdatasync on an io_uring worker, as it
//! did before; that is the kernel's thread, not a handoff between ours.) Until this
//! change a write crossed four times: shard → commit → log executor → commit → shard.
//! Measured side by side with ZooKeeper 3.8, setData with `forceSync=yes` on the 2-core
//! development VM: see `bench/results/lean-write-path.md`.
//!
//! An ensemble member keeps its log executor (`replica::driver::run_log`): Raft's log
//! writes and the hard state go there.

pub mod append;
pub mod log;
pub mod report;
pub mod restore;
pub mod role;
pub mod stage;

/// Fail-stop: a part of the server that can no longer do its job safely (the log
/// cannot write, a shard cannot listen) stops the whole process through this handle.
/// `server::run` waits on the other end and returns the reason, and `main` exits with
/// it; library code never calls `process::exit` itself.
#[derive(Debug, Clone)]
pub struct FailStop(std::sync::mpsc::Sender<String>);

impl FailStop {
    /// A handle and the receiver `server::run` waits on.
    pub fn new() -> (FailStop, std::sync::mpsc::Receiver<String>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (FailStop(tx), rx)
    }

    /// Stops the server for `reason` (logged here, returned by `server::run`).
    pub fn stop(&self, reason: String) {
        tracing::error!("{reason}; stopping (fail-stop)");
        let _ = self.0.send(reason);
    }
}
