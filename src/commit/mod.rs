//! The commit stage: the only place state changes. Named after the request's path
//! through it, as ZooKeeper names its processors: [`prep`] (request → txn, every check),
//! [`apply`] (txn → new state + watch changes), [`codec`] (txn ↔ log bytes), [`core`] (zxids, sessions, batching,
//! reaping; no IO), [`log`] (replay and the log executor) and [`stage`] (the executor
//! that runs the core, has batches made durable and hands completions to the shards).

pub mod apply;
pub mod codec;
pub mod core;
pub mod log;
pub mod prep;
pub mod stage;
pub mod txn;

#[cfg(test)]
mod scenario;
