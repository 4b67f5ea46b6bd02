//! The named workloads, the data they run on, and the preload that creates it.
//!
//! Every workload runs on the same tree, created by [`preload`] identically on each
//! server:
//!
//! ```text
//! /bench/data/n0 .. n{nodes-1}        `data_bytes` each: read, write, mixed, exists, multi
//! /bench/children/n0 .. n{children-1} empty: children (getChildren of the parent)
//! /bench/watch                        watch-fanout
//! /bench/cd                           create-delete makes and removes its nodes below
//! /bench/load-{tag}                   load creates its nodes below
//! /bench/wide/n0 ..                   children-wide, preloaded only when selected (`wide`)
//! ```
//!
//! `restart` runs on servers of its own, started from generated data (`restart`).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::engine::{run_pipeline, Pace, PipelineSpec, RunError, Span};
use crate::fanout::{run_fanout, FanoutSpec};
use crate::ops::{
    multi_templates, per_node_templates, CountedCreate, CreateDelete, Mix, MixClass, OpKind,
    OpSource, Template,
};
use crate::server::Pair;
use crate::sessions::{run_sessions, SessionsSpec};
use crate::setup::{count_children, create_children, create_parents, ROOT};
use crate::stats::{RunStats, Side};

/// Parent of the data nodes.
pub const DATA_PARENT: &str = "/bench/data";
/// Parent whose children `children` lists.
pub const CHILDREN_PARENT: &str = "/bench/children";
/// The node `watch-fanout` watches.
pub const WATCH_NODE: &str = "/bench/watch";
/// Parent of `create-delete`'s nodes.
pub const CREATE_DELETE_PARENT: &str = "/bench/cd";

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// getData of a random data node.
    Read,
    /// setData of a random data node.
    Write,
    /// 90 % read, 10 % write.
    Mixed,
    /// Each session creates a node and deletes it, over and over.
    CreateDelete,
    /// exists of a random data node.
    Exists,
    /// getChildren of a parent with `children` children.
    Children,
    /// getChildren of a parent with 100,000 children (`wide`).
    ChildrenWide,
    /// multi of 5 setData on random data nodes.
    Multi,
    /// Many sessions watch one node; time from setData to the last notification.
    WatchFanout,
    /// Session open + close rate.
    Sessions,
    /// Create `load_nodes` nodes as fast as possible; memory after.
    Load,
    /// Spawn to first getData with N znodes on disk, on servers of its own (`restart`).
    Restart,
    /// setData on servers of its own started with `forceSync=yes`: throughput, latency
    /// and fsyncs and log bytes per write (`crate::durability`).
    Durability,
}

impl Workload {
    /// Every workload, in the order `compare` runs them (`load` last of those on the
    /// shared servers: it grows the tree; `restart` and `durability` after, on servers of
    /// their own).
    pub const ALL: [Workload; 13] = [
        Workload::Read,
        Workload::Write,
        Workload::Mixed,
        Workload::CreateDelete,
        Workload::Exists,
        Workload::Children,
        Workload::ChildrenWide,
        Workload::Multi,
        Workload::WatchFanout,
        Workload::Sessions,
        Workload::Load,
        Workload::Restart,
        Workload::Durability,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Mixed => "mixed",
            Workload::CreateDelete => "create-delete",
            Workload::Exists => "exists",
            Workload::Children => "children",
            Workload::ChildrenWide => "children-wide",
            Workload::Multi => "multi",
            Workload::WatchFanout => "watch-fanout",
            Workload::Sessions => "sessions",
            Workload::Load => "load",
            Workload::Restart => "restart",
            Workload::Durability => "durability",
        }
    }

    /// The workload of a command-line name.
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// What one "op" of this workload is, for the report.
    pub fn op_unit(self) -> &'static str {
        match self {
            Workload::WatchFanout => "notification",
            Workload::Sessions => "session open+close",
            Workload::Multi => "multi (5 setData)",
            Workload::Load => "create",
            Workload::Restart => "getData, first pass after restart",
            Workload::Durability => "setData, forceSync=yes",
            _ => "request",
        }
    }

    /// Whether the workload writes (useful to read its numbers against fsync caveats).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Workload::Read
                | Workload::Exists
                | Workload::Children
                | Workload::ChildrenWide
                | Workload::Restart
        )
    }
}

/// A workload's result on both servers.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// The workload.
    pub workload: Workload,
    /// Per server.
    pub sides: Pair<Side>,
}

/// The data every workload runs on.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Data nodes.
    pub nodes: usize,
    /// Bytes of data per node (and per setData).
    pub data_bytes: usize,
    /// Children of [`CHILDREN_PARENT`].
    pub children: usize,
}

/// How a workload is driven.
#[derive(Debug, Clone)]
pub struct LoadShape {
    /// Sessions of the pipelined workloads.
    pub sessions: usize,
    /// Requests in flight per session.
    pub outstanding: usize,
    /// Client worker threads.
    pub threads: usize,
    /// Closed loop or fixed rate.
    pub pace: Pace,
    /// Warm-up, ns.
    pub warmup_ns: u64,
    /// Measured window, ns.
    pub measure_ns: u64,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// Time allowed for requests in flight to drain after the window, ns.
    pub drain_ns: u64,
    /// Watchers of `watch-fanout`.
    pub fanout_watchers: usize,
    /// Session lives in progress at once in `sessions`.
    pub session_concurrency: usize,
    /// Nodes `load` creates.
    pub load_nodes: u64,
    /// Whether each of `load`'s creates carries random bytes of its own rather than the
    /// dataset's repeated alphabet, which every compressor shrinks to almost nothing.
    pub load_random_data: bool,
}

/// The pre-encoded requests of a dataset, shared by every run against every server.
pub struct Templates {
    reads: Arc<Vec<Template>>,
    writes: Arc<Vec<Template>>,
    exists: Arc<Vec<Template>>,
    children: Arc<Vec<Template>>,
    multis: Arc<Vec<Template>>,
    data: Vec<u8>,
}

/// Operations in each `multi` request.
pub const MULTI_OPS: usize = 5;

/// Distinct pre-encoded multi requests (picked at random per send).
const MULTI_TEMPLATES: usize = 4096;

impl Templates {
    /// Encodes every request the workloads of `dataset` send.
    pub fn new(dataset: &Dataset) -> Templates {
        let paths = data_paths(dataset.nodes);
        let data = payload(dataset.data_bytes);
        Templates {
            reads: Arc::new(per_node_templates(&paths, OpKind::GetData, &data)),
            writes: Arc::new(per_node_templates(&paths, OpKind::SetData, &data)),
            exists: Arc::new(per_node_templates(&paths, OpKind::Exists, &data)),
            children: Arc::new(per_node_templates(
                &[CHILDREN_PARENT.to_string()],
                OpKind::GetChildren,
                &data,
            )),
            multis: Arc::new(multi_templates(
                &paths,
                &data,
                MULTI_OPS,
                MULTI_TEMPLATES.min(dataset.nodes.max(1) * 4),
                7,
            )),
            data,
        }
    }

    pub(crate) fn mix(&self, workload: Workload) -> Arc<Vec<MixClass>> {
        let class = |per_mille, kind, templates: &Arc<Vec<Template>>| MixClass {
            per_mille,
            kind,
            templates: Arc::clone(templates),
        };
        Arc::new(match workload {
            Workload::Read => vec![class(1000, OpKind::GetData, &self.reads)],
            Workload::Write | Workload::Durability => {
                vec![class(1000, OpKind::SetData, &self.writes)]
            }
            Workload::Mixed => vec![
                class(900, OpKind::GetData, &self.reads),
                class(100, OpKind::SetData, &self.writes),
            ],
            Workload::Exists => vec![class(1000, OpKind::Exists, &self.exists)],
            Workload::Children => vec![class(1000, OpKind::GetChildren, &self.children)],
            Workload::Multi => vec![class(1000, OpKind::Multi, &self.multis)],
            other => panic!("{} is not a request mix", other.name()),
        })
    }
}

/// The data node paths.
pub fn data_paths(nodes: usize) -> Vec<String> {
    (0..nodes).map(|i| format!("{DATA_PARENT}/n{i}")).collect()
}

/// `bytes` bytes of printable data.
pub fn payload(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Where and how to run, besides the workload.
pub struct Target<'a> {
    /// The server's client address.
    pub addr: SocketAddr,
    /// The server's pid, for CPU readings.
    pub pid: Option<u32>,
    /// The dataset's requests.
    pub templates: &'a Templates,
    /// A tag unique to this run (node names of create-delete and load).
    pub tag: &'a str,
}

/// Runs one workload once.
pub fn run_workload(
    workload: Workload,
    target: &Target<'_>,
    shape: &LoadShape,
) -> Result<RunStats, RunError> {
    let pipeline = |span| PipelineSpec {
        addr: target.addr,
        sessions: shape.sessions,
        outstanding: shape.outstanding,
        threads: shape.threads,
        pace: shape.pace,
        span,
        session_timeout_ms: shape.session_timeout_ms,
        drain_ns: shape.drain_ns,
        server_pid: target.pid,
        peers: Vec::new(),
        peer_pids: Vec::new(),
    };
    let timed = Span::Timed {
        warmup_ns: shape.warmup_ns,
        measure_ns: shape.measure_ns,
    };
    match workload {
        Workload::Read
        | Workload::Write
        | Workload::Durability
        | Workload::Mixed
        | Workload::Exists
        | Workload::Children
        | Workload::Multi => {
            let mix = target.templates.mix(workload);
            run_pipeline(&pipeline(timed), &|w| {
                Box::new(Mix::new(Arc::clone(&mix), 1 + w as u64)) as Box<dyn OpSource>
            })
        }
        Workload::CreateDelete => {
            let prefix = format!("{CREATE_DELETE_PARENT}/{}", target.tag);
            let data = target.templates.data.clone();
            run_pipeline(&pipeline(timed), &|_| {
                Box::new(CreateDelete::new(prefix.clone(), &data)) as Box<dyn OpSource>
            })
        }
        Workload::Load => {
            let parent = format!("{ROOT}/load-{}", target.tag);
            create_parents(target.addr, &[&parent])?;
            let prefix: Arc<str> = parent.into();
            let next = Arc::new(AtomicU64::new(0));
            let data = target.templates.data.clone();
            run_pipeline(&pipeline(Span::Count), &|_| {
                let create = CountedCreate::new(
                    Arc::clone(&prefix),
                    Arc::clone(&next),
                    shape.load_nodes,
                    &data,
                );
                Box::new(if shape.load_random_data {
                    create.with_random_data()
                } else {
                    create
                }) as Box<dyn OpSource>
            })
        }
        Workload::ChildrenWide => crate::wide::run(&pipeline(timed)),
        Workload::Restart => Err(RunError::Worker(
            "restart starts servers of its own: run it with `compare`".into(),
        )),
        Workload::WatchFanout => run_fanout(&FanoutSpec {
            addr: target.addr,
            watchers: shape.fanout_watchers,
            path: WATCH_NODE.to_string(),
            data: target.templates.data.clone(),
            warmup_ns: shape.warmup_ns,
            measure_ns: shape.measure_ns,
            session_timeout_ms: shape.session_timeout_ms,
            step_ns_max: shape.drain_ns,
            server_pid: target.pid,
        }),
        Workload::Sessions => run_sessions(&SessionsSpec {
            addr: target.addr,
            concurrency: shape.session_concurrency,
            warmup_ns: shape.warmup_ns,
            measure_ns: shape.measure_ns,
            session_timeout_ms: shape.session_timeout_ms,
            life_ns_max: shape.drain_ns,
            server_pid: target.pid,
        }),
    }
}

/// Creates the tree every workload needs. Returns how long the data took to create.
pub fn preload(
    addr: SocketAddr,
    dataset: &Dataset,
    threads: usize,
    session_timeout_ms: i32,
) -> Result<RunStats, RunError> {
    create_parents(
        addr,
        &[
            ROOT,
            DATA_PARENT,
            CHILDREN_PARENT,
            WATCH_NODE,
            CREATE_DELETE_PARENT,
        ],
    )?;
    let data = payload(dataset.data_bytes);
    let mut total = RunStats::empty();
    for (parent, count, bytes) in [
        (DATA_PARENT, dataset.nodes, &data[..]),
        (CHILDREN_PARENT, dataset.children, &[][..]),
    ] {
        let stats = create_children(addr, parent, count, bytes, threads, session_timeout_ms)?;
        total.merge_round(&stats);
    }
    // Check what was made, as a reader would see it.
    let children = count_children(addr, CHILDREN_PARENT, session_timeout_ms)
        .map_err(|e| RunError::Worker(format!("checking the preload: {e}")))?;
    if children != dataset.children {
        return Err(RunError::Worker(format!(
            "preload made {children} children of {CHILDREN_PARENT}, expected {}",
            dataset.children
        )));
    }
    Ok(total)
}
