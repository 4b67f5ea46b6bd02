//! Where the bytes of a freshly written znode go (issue #13, memory row).
//!
//! A counting global allocator measures the heap that `apply` leaves live per create,
//! the way the commit stage runs it: creates under a few parents, the state published
//! (cloned) after every batch so that copy-on-write happens as it does in the server,
//! and only the newest publication kept. The figures are printed (`--nocapture`) and
//! bounded, so that a change which makes the overlay fatter fails here instead of in
//! the next benchmark run. Allocation counts are deterministic: no timing is involved.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use ferrokeeper::core::apply::{apply, Change};
use ferrokeeper::core::state::DataState;
use ferrokeeper::core::tree::{ChildSet, Node, NodeStat};
use ferrokeeper::core::txn::{Txn, TxnOp};
use ferrokeeper_net::records::{Acl, Id};

/// Counts live heap bytes as requested (not as the allocator rounds them), plus a
/// 16-byte estimate of an allocator's per-block cost where noted in the report.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: as allocated above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's pointer and layout, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (isize, isize) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

const ZNODES: usize = 100_000;
const DATA_BYTES: usize = 100;
const PARENTS: usize = 8;
/// Txns per published batch (the commit stage publishes after each durable batch).
const BATCH: usize = 64;

fn open_acl() -> Arc<[Acl]> {
    Arc::from(vec![Acl {
        perms: 31,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }])
}

/// Applies `count` creates of `DATA_BYTES` under `PARENTS` parents of `/load`, one
/// fresh data allocation per create as a decoded request has, publishing a clone after
/// every `BATCH`.
fn load(state: &mut DataState, published: &mut Option<DataState>, zxid: &mut i64, count: usize) {
    let acl = open_acl();
    let mut changes: Vec<Change> = Vec::new();
    let mut run = |state: &mut DataState, path: String, zxid: i64, cversion: i32| {
        let txn = Txn {
            zxid,
            time_ms: 1_700_000_000_000 + zxid,
            session_id: 0x100,
            cxid: zxid as i32,
            op: TxnOp::Create {
                path: Arc::from(path),
                data: Some(Arc::from(vec![7u8; DATA_BYTES])),
                acl: acl.clone(),
                ephemeral_owner: 0,
                parent_cversion: cversion,
            },
        };
        apply(state, &txn, false, &mut changes);
        changes.clear();
    };
    if !state.tree.contains("/load") {
        *zxid += 1;
        run(state, "/load".into(), *zxid, 2);
        for p in 0..PARENTS {
            *zxid += 1;
            run(state, format!("/load/p{p}"), *zxid, p as i32 + 1);
        }
    }
    let start = state.tree.len();
    for i in 0..count {
        *zxid += 1;
        let k = start + i;
        let parent = k % PARENTS;
        run(
            state,
            format!("/load/p{parent}/n{k:07}"),
            *zxid,
            (k / PARENTS) as i32 + 1,
        );
        if (i + 1) % BATCH == 0 {
            *published = Some(state.clone());
        }
    }
    *published = Some(state.clone());
}

#[test]
fn bytes_per_fresh_znode() {
    println!(
        "size_of: Node {} (NodeStat {}, ChildSet {})",
        std::mem::size_of::<Node>(),
        std::mem::size_of::<NodeStat>(),
        std::mem::size_of::<ChildSet>(),
    );
    let mut state = DataState::new(open_acl(), false);
    let mut published = None;
    let mut zxid = 0;
    // A first load, so that the figure below is the steady cost of one more znode and
    // not the first parents' and maps' setup.
    load(&mut state, &mut published, &mut zxid, 1_000);
    let (bytes0, blocks0) = live();
    load(&mut state, &mut published, &mut zxid, ZNODES);
    let (bytes1, blocks1) = live();
    let per_znode = (bytes1 - bytes0) as f64 / ZNODES as f64;
    let blocks_per_znode = (blocks1 - blocks0) as f64 / ZNODES as f64;
    // Of which the path (an `Arc<str>` shared by the txn, the overlay key and the
    // node's entry), the data (`Arc<[u8]>`), and the child name in the parent's set.
    let path_bytes = "/load/p0/n0000000".len() + 16;
    println!(
        "fresh znodes ({ZNODES} creates of {DATA_BYTES} B, published every {BATCH}): \
         {per_znode:.0} B live per znode in {blocks_per_znode:.2} blocks \
         (data {} B and path {path_bytes} B of it; add ~8-16 B per block of allocator \
         rounding for RSS)",
        DATA_BYTES + 16
    );
    assert_eq!(state.tree.len(), 4 + 1 + PARENTS + 1_000 + ZNODES);
    // The bound is the figure measured when it was set, with a little room: see the
    // README's "Memory:" paragraph.
    assert!(
        per_znode < PER_FRESH_ZNODE_BYTES_MAX as f64,
        "{per_znode:.0} B per fresh znode, more than {PER_FRESH_ZNODE_BYTES_MAX}"
    );
}

/// Live heap per fresh znode of 100 B that `bytes_per_fresh_znode` accepts.
const PER_FRESH_ZNODE_BYTES_MAX: usize = 440;
