//! # ferrokeeper — a ZooKeeper-wire-compatible coordination server
//!
//! This branch carries the pure, deterministic pieces of the server's logic:
//! [`path`] (znode path rules), [`acl`] (identities, ACL checks and fixups) and
//! [`watch`] (the per-shard watch table). None of them does IO, spawns threads or
//! reads a clock; the shard and the commit stage drive them.
#![warn(missing_docs)]

pub mod acl;
pub mod path;
pub mod watch;
