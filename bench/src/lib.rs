//! # ferrokeeper-bench — load generator and side-by-side runs against Apache ZooKeeper
//!
//! A ZooKeeper client of its own, built on `ferrokeeper-net` (never a third-party client,
//! so the client's cost is known and small): raw TCP sessions, pipelined requests,
//! pre-encoded templates.
//!
//! The modules, lowest first; each uses only those above it in this list, so the
//! dependencies run one way (`compare`, the orchestrator, on top):
//!
//! * [`clock`]: one monotonic ns clock, a timerfd for exact fixed-rate wake-ups.
//! * [`units`]: how latencies and CPU per op are written.
//! * [`stats`]: run results ([`stats::RunStats`], one server's [`stats::Side`]) and
//!   `/proc` readings (CPU time, RSS).
//! * [`datadir`]: a data directory's bytes by kind (snapshots, logs, the rest),
//!   apparent and allocated.
//! * [`conn`]: one session over a non-blocking socket (handshake, framing, buffers).
//! * [`ops`]: what is sent: pre-encoded request templates and request sources.
//! * [`engine`]: the pipelined generator (N sessions × K outstanding, worker threads,
//!   closed loop or fixed rate with coordinated-omission correction).
//! * [`sessions`], [`fanout`]: the two workloads that are not request/response pipelines.
//! * [`setup`]: the tree's root and the blocking client sessions that build and check it.
//! * [`server`]: starting Apache ZooKeeper and ferrokeeper with equivalent settings;
//!   [`server::Pair`], a value per server, and the order rounds alternate in.
//! * [`idle`]: `idle-conns`, server memory per idle connection (10k–100k sessions).
//! * [`wide`]: `children-wide`, getChildren of a parent with 100,000 children.
//! * [`workload`]: the named workloads, the data they need, the preload, and a
//!   workload's result on both servers.
//! * [`plan`]: what `compare` runs: profiles, their plans, the command line's options.
//! * [`durability`]: the `durability` workload: writes on `forceSync=yes` servers, with
//!   syncs and log bytes per write; its report section.
//! * [`zk_snapshot`], [`restart`]: `restart`, spawn to first read with millions of
//!   znodes on disk, from a ZooKeeper snapshot written from scratch.
//! * [`ensemble`]: `compare --ensemble`, three servers of each kind as replicated
//!   ensembles, one after the other: reads, writes, mixed, and failover time after
//!   killing the leader.
//! * [`results`]: everything a comparison found, as records.
//! * [`svg`], [`restart_report`], [`report`], [`ensemble_report`]: the charts (drawn
//!   with `plotters`), the restart section, the markdown report and the ensemble's, which
//!   read the results and never the reverse.
//! * [`compare`]: the `compare` command: runs it all, alternating, into the results.
//!
//! It must never depend on the server crate: it sees ferrokeeper only over a socket and
//! through `/proc`, exactly as it sees Apache ZooKeeper.
#![warn(missing_docs)]
// What a client, a file or the network can make fail is never unwrapped (STYLE.md);
// unit tests may (clippy.toml).
#![deny(clippy::unwrap_used)]

pub mod clock;
pub mod compare;
pub mod conn;
pub mod datadir;
pub mod durability;
pub mod engine;
pub mod ensemble;
pub mod ensemble_report;
pub mod fanout;
pub mod idle;
pub mod ops;
pub mod plan;
pub mod report;
pub mod restart;
pub mod restart_report;
pub mod results;
pub mod server;
pub mod sessions;
pub mod setup;
pub mod stats;
pub mod svg;
pub mod units;
pub mod wide;
pub mod workload;
pub mod zk_snapshot;
