//! # ferrokeeper — a ZooKeeper-compatible coordination server
//!
//! The request's way through the server names the modules:
//!
//! - [`shard`]: thread-per-core glommio executors; connections, framing, reads from
//!   the shard's published root, watch firing, replies.
//! - [`commit`]: the one ordered stage that changes state: `prep` (request → txn with
//!   every check ZooKeeper makes), `apply` (txn → new state), `core` (zxids, sessions,
//!   batching, reaping) and `stage` (its executor).
//! - [`state`] and [`tree`]: the replicated state in persistent (structurally shared)
//!   maps, so a published root is an immutable snapshot readers hold without locks.
//! - [`watch`], [`acl`], [`path`]: ZooKeeper's watch, ACL and path rules, pure.
//! - [`snapshot`]: the snapshot payload (an rkyv archive of the state), loading the
//!   newest valid one at startup, and the policy that takes and trims them.
//! - [`config`] (zoo.cfg) and [`admin`] (four-letter words).
//! - [`sim`]: the whole-server simulator (tests only drive it; nothing depends on it).
//!
//! Must never: mutate state outside the commit stage, block a shard, or panic on
//! anything a client sends.
#![warn(missing_docs)]

pub mod admin;
pub mod commit;
pub mod config;
pub mod core;
pub mod import;
pub mod server;
pub mod shard;
pub mod sim;
pub mod snapshot;
