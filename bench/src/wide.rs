//! `children-wide`: getChildren of one parent with many children (100,000 in the quick
//! and full profiles), where `children` lists a parent of 1,000.
//!
//! The parent is `/bench/wide`, its children `n0 .. n{count-1}` with no data, created
//! through the client by [`preload`] on both servers alike. The names are kept short
//! on purpose: the reply lists every name (4-byte length + bytes), about 990 KB at
//! 100,000 children, just under ZooKeeper's default 1 MiB `jute.maxbuffer`, which Java
//! clients enforce on what they receive. Longer names at this width would make the
//! reply one no stock Java client accepts.
//!
//! Each reply is about a megabyte, so the run keeps fewer requests in flight than the
//! small-request workloads ([`SESSIONS_MAX`] × [`OUTSTANDING_MAX`]): enough to keep
//! both servers busy on 2 cores, without queueing hundreds of megabytes of replies.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::compare::Profile;
use crate::engine::{run_pipeline, PipelineSpec, RunError, Span};
use crate::ops::{per_node_templates, Mix, MixClass, OpKind, OpSource};
use crate::stats::RunStats;
use crate::workload::{count_children, create_children, create_parents, LoadShape, Target, ROOT};

/// The wide parent.
pub const WIDE_PARENT: &str = "/bench/wide";

/// Sessions of a `children-wide` run, at most.
pub const SESSIONS_MAX: usize = 8;
/// Requests in flight per session, at most.
pub const OUTSTANDING_MAX: usize = 2;

/// Children of [`WIDE_PARENT`] in `profile`.
pub fn children_of(profile: Profile) -> usize {
    match profile {
        Profile::Smoke => 1_000,
        Profile::Quick | Profile::Full => 100_000,
    }
}

/// The run's shape: `shape` with its window, fewer requests in flight.
pub fn shape_of(shape: &LoadShape) -> LoadShape {
    let mut s = shape.clone();
    s.sessions = s.sessions.min(SESSIONS_MAX);
    s.outstanding = s.outstanding.min(OUTSTANDING_MAX);
    s
}

/// Creates [`WIDE_PARENT`] and its `children` children, then checks the count as a
/// reader sees it.
pub fn preload(
    addr: SocketAddr,
    children: usize,
    threads: usize,
    session_timeout_ms: i32,
) -> Result<RunStats, RunError> {
    create_parents(addr, &[ROOT, WIDE_PARENT])?;
    let stats = create_children(
        addr,
        WIDE_PARENT,
        children,
        b"",
        threads,
        session_timeout_ms,
    )?;
    let counted = count_children(addr, WIDE_PARENT, session_timeout_ms)
        .map_err(|e| RunError::Worker(format!("checking the {WIDE_PARENT} preload: {e}")))?;
    if counted != children {
        return Err(RunError::Worker(format!(
            "preload made {counted} children of {WIDE_PARENT}, expected {children}"
        )));
    }
    Ok(stats)
}

/// One timed run of getChildren on [`WIDE_PARENT`].
pub fn run(target: &Target<'_>, shape: &LoadShape) -> Result<RunStats, RunError> {
    let shape = shape_of(shape);
    let mix = Arc::new(vec![MixClass {
        per_mille: 1000,
        kind: OpKind::GetChildren,
        templates: Arc::new(per_node_templates(
            &[WIDE_PARENT.to_string()],
            OpKind::GetChildren,
            b"",
        )),
    }]);
    let spec = PipelineSpec {
        addr: target.addr,
        sessions: shape.sessions,
        outstanding: shape.outstanding,
        threads: shape.threads,
        pace: shape.pace,
        span: Span::Timed {
            warmup_ns: shape.warmup_ns,
            measure_ns: shape.measure_ns,
        },
        session_timeout_ms: shape.session_timeout_ms,
        drain_ns: shape.drain_ns,
        server_pid: target.pid,
    };
    run_pipeline(&spec, &|w| {
        Box::new(Mix::new(Arc::clone(&mix), 1 + w as u64)) as Box<dyn OpSource>
    })
}

/// Bytes of the getChildren reply body listing `children` names `n0 ..`: the count,
/// then each name as a 4-byte length and its bytes.
pub fn reply_bytes(children: usize) -> usize {
    4 + (0..children)
        .map(|i| 4 + 1 + i.checked_ilog10().unwrap_or(0) as usize + 1)
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_reply_stays_under_the_default_jute_maxbuffer() {
        assert_eq!(reply_bytes(1), 4 + 4 + 2);
        assert_eq!(reply_bytes(11), 4 + 10 * 6 + 7);
        assert!(reply_bytes(children_of(Profile::Quick)) < 0xfffff);
    }
}
