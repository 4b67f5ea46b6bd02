//! Replication: an ensemble of servers that agree on one sequence of commit batches
//! through Raft (the `raft` crate, tikv/raft-rs, driven sans-IO).
//!
//! - [`wire`]: the bytes servers exchange and log (one entry per batch; forwarded
//!   requests).
//! - [`node`]: one member's logic without IO: raft-rs's `RawNode`, the sequencer while
//!   leading, the state machine always.
//! - [`recover`]: a member's starting point from its Raft log (server and simulator).
//!
//! Depends on [`crate::core`] only; the glommio driver that runs a node on the commit
//! executor lives in [`crate::server`]'s ensemble wiring.

pub mod driver;
pub mod dynamic;
pub mod local;
pub mod membership;
pub mod node;
pub mod recover;
pub mod store;
pub mod wire;
