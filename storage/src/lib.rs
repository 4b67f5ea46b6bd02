//! # ferrokeeper-storage — the transaction log (snapshots and import: later)
#![warn(missing_docs)]

pub mod backend;
pub mod log;
