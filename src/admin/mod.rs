//! Administration: ZooKeeper's four-letter words, answered byte for byte as ZooKeeper 3.8.
//!
//! * [`stats`]: [`ServerStats`], the plain data the server gathers for a reply, and
//!   helpers that gather its host-level parts.
//! * [`fourlw`]: the words, the whitelist, what happens on the wire ([`respond`]) and the
//!   reply text ([`render`], [`reply`]).
//! * `mntr`: the `mntr` reply and ZooKeeper's key order.
//! * `java_fmt`: Java's `toString` of the values the replies contain.
//! * [`commands`]: the AdminServer's commands and their JSON replies ([`json`]).
//! * [`prometheus`]: the `/metrics` text with ZooKeeper's metric names.
//!
//! This module formats; it never reads server state by itself and never touches a
//! socket. The connection code sniffs the first four bytes with [`classify`], gathers a
//! [`ServerStats`] (only the parts [`FourLetterWord::needs`] asks for), and carries out the
//! returned [`WireAction`].

#![warn(missing_docs)]

pub mod commands;
pub mod fourlw;
pub mod java_fmt;
pub mod json;
mod mntr;
pub mod prometheus;
pub mod stats;

pub use fourlw::{
    argument_needed, classify, needs, not_whitelisted, render, reply, respond, FourLetterWhitelist,
    FourLetterWord, SideEffect, StatsNeeds, WireAction, NOT_SERVING, TELNET_CLOSE_CODE,
};
pub use mntr::{
    mntr_entries, quota_order, MntrEntries, MntrValue, JAVA_METRIC_ORDER, OMITTED_GAUGES,
    QUOTA_GAUGE_SETS,
};
pub use stats::{
    dir_size_bytes, environment, file_descriptors, full_version, last_operation_name, BufferStats,
    ConfStats, ConnectionSession, ConnectionStats, DirSizes, ExpiringConnection, LeaderStats,
    LimitStats, Metric, PercentileSummary, QuorumConf, QuorumStats, ServerMode, ServerStats,
    StartupStats, Summary, DEFAULT_TRACE_MASK, ZOOKEEPER_VERSION,
};
