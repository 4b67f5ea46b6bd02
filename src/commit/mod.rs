//! The commit stage's shell: the executor that runs the [`crate::core`] sequencer and
//! state machine in arrival order ([`stage`]), and the log executor that makes each
//! batch durable and replays the log at startup ([`log`]). Named after the request's
//! path, as ZooKeeper names its processors; the decisions themselves (prep, apply,
//! zxids, sessions, reaping) live in the core.

pub mod log;
pub mod report;
pub mod stage;
