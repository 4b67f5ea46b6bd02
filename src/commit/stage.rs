//! The commit stage's executor: one glommio executor (its own thread) that receives
//! requests from every shard, runs them through [`CommitCore`] in arrival order,
//! and after each batch publishes the new state and sends each shard its completion.
//!
//! Batching falls out of the structure: while a batch is being made durable, the
//! receiving tasks keep prepping the next one. Until the storage crate lands there is
//! no log: a batch is "durable" as soon as it is built, and nothing survives a restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::local_channel;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};

use super::core::{CommitCore, CommitRequest};
use crate::shard::Completion;

/// Milliseconds since the Unix epoch (ZooKeeper's `Time.currentWallTime`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the commit stage until every shard has gone.
pub async fn run(
    core: CommitCore,
    from_shards: Vec<SharedReceiver<CommitRequest>>,
    to_shards: Vec<SharedSender<Completion>>,
    tick: Duration,
    batch_max: usize,
    published_zxid: Arc<std::sync::atomic::AtomicI64>,
) {
    let core = Rc::new(RefCell::new(core));
    let (kick, kicked) = local_channel::new_bounded::<()>(1);
    let kick = Rc::new(kick);

    for rx in from_shards {
        let core = core.clone();
        let kick = kick.clone();
        glommio::spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                core.borrow_mut().handle(msg, now_ms());
                let _ = kick.try_send(());
                if core.borrow().batch_len() >= batch_max {
                    // Let the flusher take a full batch before prepping more.
                    glommio::executor().yield_task_queue_now().await;
                }
            }
        })
        .detach();
    }

    {
        let core = core.clone();
        let kick = kick.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(tick).await;
                core.borrow_mut().tick(now_ms());
                let _ = kick.try_send(());
            }
        })
        .detach();
    }

    // Connected after the receivers are spawned: each shard connects both of its
    // channels at once, so neither side waits for the other.
    let mut senders = Vec::with_capacity(to_shards.len());
    for s in to_shards {
        senders.push(s.connect().await);
    }

    while kicked.recv().await.is_some() {
        let (batch, state) = {
            let mut c = core.borrow_mut();
            let batch = c.take_batch();
            // No await between taking the batch and cloning the head: the state
            // published is exactly the one the batch produced.
            (batch, Arc::new(c.head().clone()))
        };
        if batch.is_empty() {
            continue;
        }
        // Published before any shard can release a reply from this batch.
        published_zxid.store(state.last_zxid, std::sync::atomic::Ordering::Release);
        let changes: Arc<[_]> = Arc::from(batch.changes);
        let mut per_shard: Vec<Vec<(u64, _)>> = (0..senders.len()).map(|_| Vec::new()).collect();
        for (conn, reply) in batch.replies {
            per_shard[conn.shard].push((conn.conn, reply));
        }
        for (i, replies) in per_shard.into_iter().enumerate() {
            let c = Completion {
                state: state.clone(),
                changes: changes.clone(),
                replies,
                reports: batch.reports.clone(),
            };
            if senders[i].send(c).await.is_err() {
                tracing::error!(shard = i, "shard gone; stopping the commit stage");
                return;
            }
        }
    }
}
