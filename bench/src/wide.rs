//! `children-wide`: getChildren of one parent with many children (100,000 in the quick
//! and full profiles: the plan's `wide_children`), where `children` lists a parent of
//! 1,000.
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

use crate::engine::{run_pipeline, PipelineSpec, RunError};
use crate::ops::{per_node_templates, Mix, MixClass, OpKind, OpSource};
use crate::setup::{count_children, create_children, create_parents, ROOT};
use crate::stats::RunStats;

/// The wide parent.
pub const WIDE_PARENT: &str = "/bench/wide";

/// Sessions of a `children-wide` run, at most.
pub const SESSIONS_MAX: usize = 8;
/// Requests in flight per session, at most.
pub const OUTSTANDING_MAX: usize = 2;

/// Sessions and requests in flight per session of a run asked for with `sessions` ×
/// `outstanding`: fewer, at most [`SESSIONS_MAX`] × [`OUTSTANDING_MAX`].
pub fn in_flight(sessions: usize, outstanding: usize) -> (usize, usize) {
    (sessions.min(SESSIONS_MAX), outstanding.min(OUTSTANDING_MAX))
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

/// One run of getChildren on [`WIDE_PARENT`]: `spec` as asked, with fewer requests in
/// flight ([`in_flight`]).
pub fn run(spec: &PipelineSpec) -> Result<RunStats, RunError> {
    let (sessions, outstanding) = in_flight(spec.sessions, spec.outstanding);
    let spec = PipelineSpec {
        sessions,
        outstanding,
        ..spec.clone()
    };
    let mix = Arc::new(vec![MixClass {
        per_mille: 1000,
        kind: OpKind::GetChildren,
        templates: Arc::new(per_node_templates(
            &[WIDE_PARENT.to_string()],
            OpKind::GetChildren,
            b"",
        )),
    }]);
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
        let quick = crate::plan::Plan::of(crate::plan::Profile::Quick);
        assert!(reply_bytes(quick.wide_children) < 0xfffff);
    }
}
