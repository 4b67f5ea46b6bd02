//! This shard's part of a report round ([`crate::commit::report`]).

use super::Shard;
use crate::commit::report::ShardReport;

impl Shard {
    /// This shard's part of a report round.
    pub fn report(&self) -> ShardReport {
        let conns = self.conns.borrow();
        let watches = self.watches.borrow();
        let _ = &watches;
        let mut connections = Vec::with_capacity(conns.len());
        let mut watches_by_session = Vec::new();
        for (id, c) in conns.iter() {
            let r = c.report();
            let paths: Vec<String> = watches.data_paths_of(*id).map(str::to_string).collect();
            if !paths.is_empty() {
                watches_by_session.push((r.session_id, paths));
            }
            connections.push(r);
        }
        ShardReport {
            connections,
            watches_by_session,
            watch_count: watches.watch_count() as u64,
        }
    }
}
