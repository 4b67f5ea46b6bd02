//! ferrokeeper-tuning: checks a host for ferrokeeper, measures the data directory's disk,
//! and recommends settings, in the manner of Redpanda's `rpk redpanda tune` and Scylla's
//! `perftune` / `iotune`.
//!
//! # Map
//!
//! The flow is facts → judgement → advice → (optionally) action:
//!
//! - [`parse`]: pure parsers for `/proc` and `/sys` text (tested on fixture strings);
//!   `sysfs` reads those files (a missing one is `None`), for `host` and `probe` alike.
//! - [`host`]: [`HostReport`], the facts, and [`HostReport::gather`], which reads them.
//! - [`probe`]: the disk probe of the data directory (sync latency, group-commit
//!   throughput, filesystem, fallocate). The only part that writes files, and only its own.
//! - [`check`]: [`check::evaluate`], a pure function from facts to ok / unknown / warn /
//!   fail, each with what was found, why it matters for ferrokeeper, and the fix.
//! - [`mod@recommend`]: [`recommend::recommend`], a pure function from facts to `zoo.cfg`
//!   settings with their reasons.
//! - [`apply`]: the few runtime kernel settings `--apply` changes, and the manual steps.
//! - [`report`]: all of the above as one value (the `--json` output) and its text form.
//!
//! # What this crate must never do
//!
//! Depend on another workspace crate (the server may depend on it, not the reverse); change
//! anything on the host without `--apply` and root; change anything that a reboot would not
//! undo; touch the CPU governor, limits or any security setting.
//!
//! # For the server: sharing the defaults
//!
//! The recommendation rules are meant to be the server's defaults too. Depend on this crate
//! with `default-features = false` (no clap) and, in `src/config.rs`, replace
//! `shards: available_cores()` with
//! `ferrokeeper_tuning::recommend::shards_for_cpus(available_cores())`. That leaves one core
//! free from 4 cores up, so the commit stage should then be pinned to it
//! (`Placement::Fixed(shards)` in `src/server.rs`, where it is `Unbound` today, and the shards
//! stay on cores `0..shards`). `ferrokeeper.commitBatchMax` and `preAllocSize` need the disk
//! probe, which takes seconds: keep them as configured defaults and let operators paste the
//! tuner's snippet.

#![warn(missing_docs)]
// What a client, a file or the network can make fail is never unwrapped (STYLE.md);
// unit tests may (clippy.toml).
#![deny(clippy::unwrap_used)]

pub mod apply;
pub mod check;
pub mod host;
pub mod parse;
pub mod probe;
pub mod recommend;
pub mod report;
mod sysfs;

#[cfg(test)]
mod fixtures;

pub use check::{Check, Status};
pub use host::HostReport;
pub use recommend::{recommend, Recommendations, Targets};
pub use report::Report;
