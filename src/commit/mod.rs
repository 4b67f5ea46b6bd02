//! The commit stage's shell: the executor that runs the [`crate::core`] sequencer and
//! state machine in arrival order ([`stage`]), and the log executor that makes each
//! batch durable and replays the log at startup ([`log`]). Named after the request's
//! path, as ZooKeeper names its processors; the decisions themselves (prep, apply,
//! zxids, sessions, reaping) live in the core.

pub mod log;
pub mod report;
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
