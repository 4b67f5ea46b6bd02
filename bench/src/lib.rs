//! # ferrokeeper-bench — load generator and side-by-side runs against Apache ZooKeeper
//!
//! A ZooKeeper client of its own, built on `ferrokeeper-net` (never a third-party client,
//! so the client's cost is known and small): raw TCP sessions, pipelined requests,
//! pre-encoded templates.
//!
//! * [`clock`]: one monotonic ns clock, a timerfd for exact fixed-rate wake-ups.
//! * [`conn`]: one session over a non-blocking socket (handshake, framing, buffers).
//! * [`ops`]: what is sent: pre-encoded request templates and request sources.
//! * [`engine`]: the pipelined generator (N sessions × K outstanding, worker threads,
//!   closed loop or fixed rate with coordinated-omission correction).
//! * [`sessions`], [`fanout`]: the two workloads that are not request/response pipelines.
//! * [`workload`]: the named workloads, the data they need, and the preload.
//! * [`server`]: starting Apache ZooKeeper and ferrokeeper with equivalent settings.
//! * [`stats`]: run results and `/proc` readings (CPU time, RSS).
//! * [`compare`]: the `compare` command: profiles, alternation, results.
//! * [`durability`]: the `durability` workload: writes on `forceSync=yes` servers, with
//!   syncs and log bytes per write.
//! * [`report`], [`svg`]: the markdown report and its charts.
//! * [`wide`]: `children-wide`, getChildren of a parent with 100,000 children.
//! * [`restart`], [`zk_snapshot`], [`restart_report`]: `restart`, spawn to first read
//!   with millions of znodes on disk, from a ZooKeeper snapshot written from scratch;
//!   its report section and charts.
//!
//! It must never depend on the server crate: it sees ferrokeeper only over a socket and
//! through `/proc`, exactly as it sees Apache ZooKeeper.
#![warn(missing_docs)]

pub mod clock;
pub mod compare;
pub mod conn;
pub mod durability;
pub mod engine;
pub mod fanout;
pub mod ops;
pub mod report;
pub mod restart;
pub mod restart_report;
pub mod server;
pub mod sessions;
pub mod stats;
pub mod svg;
pub mod wide;
pub mod workload;
pub mod zk_snapshot;
