//! The deterministic core: everything every replica must compute identically.
//!
//! Plain code with no IO, no clock and no randomness of its own: time and entropy are
//! passed in as values. A tidy test (`tests/tidy.rs`) fails if a module here imports
//! glommio, `std::fs`, `std::net`, `std::time`, `rand` or `std::process`.
//!
//! - Rules: [`path`] (ZooKeeper's path syntax), [`acl`] (schemes, permission checks).
//! - Data: [`tree`] (znodes in a persistent tree over a mapped snapshot, [`payload`]
//!   the snapshot's archived layout), [`state`] (tree + sessions + container/TTL indexes).
//! - Changes: [`txn`] (what a write decided), [`codec`] (txn ↔ jute bytes, the one codec
//!   the log, replay and import share), [`prep`] (request → txn, every check ZooKeeper
//!   makes), [`apply`] (txn → new state + watch-relevant changes).
//! - [`quota`]: quota registration, usage kept in place, enforcement checks (`apply`
//!   and `prep` call it).
//! - [`watch`]: the watch table a shard keeps for its connections.
//! - Two machines on top:
//!   - [`sequencer`] (leader side): requests, a clock value and entropy in; txn batches
//!     and leader-only effects (replies, closes) out. It holds the speculative head over
//!     the committed state, can roll back to it, and decides session expiry and
//!     container/TTL reaping as txns.
//!   - [`machine`] (every server): committed batches in, the new state and its watch
//!     changes out; asserts zxid order.

pub mod acl;
pub mod apply;
pub mod codec;
pub mod digest;
pub mod machine;
pub mod path;
pub mod payload;
pub mod prep;
pub mod quota;
pub mod sequencer;
pub mod state;
pub mod tree;
pub mod txn;
pub mod watch;

#[cfg(test)]
mod scenario_tests;
