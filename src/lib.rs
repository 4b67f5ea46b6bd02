//! # ferrokeeper — a ZooKeeper-compatible coordination server
//!
//! ## The map: a deterministic core and the shell around it
//!
//! ```text
//!   main.rs ──▶ server (wiring, recovery)
//!                 │
//!                 ├──▶ http (AdminServer, /metrics: hyper on an executor of its own)
//!                 │      └──▶ shard 0 (stats), admin (JSON, Prometheus text), snapshot
//!                 ├──▶ shard (connections, reads, watches, replies)
//!                 │      ├──▶ admin (four-letter-word text) ──▶ config (zoo.cfg)
//!                 │      └──▶ commit (stage executor and its log appends, report rounds)
//!                 │             └──▶ snapshot (snapshot files: load, write, policy)
//!                 ▼                        │
//!   core: path, acl, tree (+ payload), state, txn, codec, prep, apply, watch,
//!         sequencer (leader: requests → txn batches), machine (all: batches → state)
//!   import (ZooKeeper data directories → a snapshot) ──▶ core
//!   tools (offline: dump, verify, export to ZooKeeper) ──▶ commit, snapshot, import, core
//!   embedded (a server inside a test process) ──▶ server, config
//!   service (systemd readiness notifications) ──▶ nothing
//!   sim (the whole-server simulator) ──▶ everything above; nothing depends on it
//!   auth (SASL DIGEST-MD5, JAAS, sasl ids, enforced auth) ──▶ core, config; shard ──▶ auth
//!   peer (frames between ensemble servers, on the caller's executor) ──▶ nothing
//!   replica (ensemble: raft-rs node beside sequencer and machine; its driver on the
//!            commit executor) ──▶ commit, peer, core; server ──▶ replica
//! ```
//! (every shell module may also use `core` and `config`; `core` uses nothing above it).
//!
//! Arrows point one way (`tests/tidy.rs` fails on a cycle between these modules):
//!
//! - [`core`]: everything every replica must compute identically, with no IO, no clock
//!   and no randomness of its own (the tidy test checks its imports). Its two machines
//!   are the [`core::sequencer`] (leader side: requests, a clock value and entropy in;
//!   txn batches and leader-only effects out; a speculative head it can roll back) and
//!   the [`core::machine`] (every server: committed batches in, state and watch changes
//!   out, zxid order asserted).
//! - The shell: [`commit`] runs the sequencer and the state machine on one executor and
//!   makes each batch durable on that executor's own io_uring before replies leave
//!   (two thread crossings per standalone write; an ensemble's Raft log keeps its log
//!   executor); [`shard`]
//!   owns connections (thread-per-core glommio executors), serves reads from its
//!   published state, fires watches and writes replies; [`snapshot`] writes, loads and
//!   trims snapshot files; [`server`] wires it all from a [`config::Config`] and
//!   recovers the state at startup; [`admin`] formats four-letter-word replies from
//!   values the shard gathers.
//! - [`peer`]: the transport between ensemble servers: opaque kind-tagged frames over
//!   one TCP connection per direction and pair, as tasks on the caller's executor, with
//!   a seeded fault-injecting layer for tests.
//! - [`sim`]: the whole-server simulator: the real sequencer, state machine, log and
//!   snapshots on simulated disks, driven by seeded clients (`tests/sim.rs`).
//! - All file IO goes through `ferrokeeper_storage`'s `Storage` seam, so the same log
//!   and snapshot code runs on a real directory or on the simulated disk.
//!
//! Must never: mutate state outside the commit stage, block a shard, panic on anything a
//! client sends, or exit the process from library code (fail-stop goes through
//! [`commit::FailStop`] to `main`).
#![warn(missing_docs)]
// What a client, a file or the network can make fail is never unwrapped (STYLE.md);
// unit tests may (clippy.toml).
#![deny(clippy::unwrap_used)]

pub mod admin;
pub mod auth;
pub mod commit;
pub mod config;
pub mod core;
pub mod embedded;
pub mod http;
pub mod import;
pub mod peer;
pub mod replica;
pub mod server;
pub mod service;
pub mod shard;
pub mod sim;
pub mod snapshot;
pub mod tls;
pub mod tools;
