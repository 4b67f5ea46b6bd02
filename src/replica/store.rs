//! raft-rs's view of the log: its in-memory `MemStorage` (every entry since the last
//! compaction, as the log executor also wrote them to disk), plus the snapshot this
//! server can send a follower that is behind the log's start. raft-rs's own
//! `MemStorage::snapshot` only describes its commit index and carries no data; this
//! wrapper offers the newest snapshot file instead, loaded when raft-rs asks for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// Loads the bytes a follower installs (the snapshot file, behind its zxid).
pub type SnapshotLoader = Arc<dyn Fn() -> Option<Vec<u8>> + Send + Sync>;

/// The snapshot on offer: the Raft position it covers and how to load it.
#[derive(Clone)]
pub struct Offer {
    /// Index of the last entry the snapshot reflects.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// Loads the data.
    pub load: SnapshotLoader,
}

/// The storage raft-rs reads.
#[derive(Clone)]
pub struct Store {
    /// Entries and hard state.
    pub mem: MemStorage,
    offer: Arc<Mutex<Option<Offer>>>,
    /// The configuration snapshots describe: the last one applied (a reconfig changes
    /// it). A snapshot offered from before a change carries the newer configuration;
    /// the member that installs it sees the change again and refuses it harmlessly
    /// (see `Node::apply_conf_change`).
    conf: Arc<Mutex<ConfState>>,
    /// (index, bytes) of each entry `mem` holds, oldest first: what compaction keeps below
    /// a snapshot is bounded in bytes as well as in entries ([`Store::compact_point`]).
    sizes: Arc<Mutex<VecDeque<(u64, u64)>>>,
}

/// What one entry costs in memory, roughly: its payloads and the `Entry` around them.
fn entry_bytes(e: &Entry) -> u64 {
    (e.data.len() + e.context.len() + std::mem::size_of::<Entry>()) as u64
}

impl Store {
    /// A store for the voters in `conf`.
    pub fn new(conf: ConfState) -> Store {
        Store {
            mem: MemStorage::new_with_conf_state(conf.clone()),
            offer: Arc::default(),
            conf: Arc::new(Mutex::new(conf)),
            sizes: Arc::default(),
        }
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        self.sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `entries` (replacing any the store holds from the first one's index on).
    pub fn append(&self, entries: &[Entry]) -> raft::Result<()> {
        self.mem.wl().append(entries)?;
        if let Some(first) = entries.first() {
            let mut sizes = self.sizes();
            while sizes.back().is_some_and(|&(i, _)| i >= first.index) {
                sizes.pop_back();
            }
            sizes.extend(entries.iter().map(|e| (e.index, entry_bytes(e))));
        }
        Ok(())
    }

    /// Starts the store at `snap`'s position, holding no entries.
    pub fn apply_snapshot(&self, snap: Snapshot) -> raft::Result<()> {
        self.mem.wl().apply_snapshot(snap)?;
        self.sizes().clear();
        Ok(())
    }

    /// Where to compact for a snapshot at `index`: the highest index at or below it such
    /// that the entries kept below the snapshot number at most `max_entries` and take
    /// at most `max_bytes`. A bound in entries alone let a busy member keep tens of
    /// megabytes: under pipelined load an entry is a whole batch of txns.
    pub fn compact_point(&self, index: u64, max_entries: u64, max_bytes: u64) -> u64 {
        let sizes = self.sizes();
        let Some(&(front, _)) = sizes.front() else {
            return index.saturating_sub(max_entries);
        };
        let mut through = index;
        let mut bytes = 0u64;
        let top = index.saturating_sub(front) as usize;
        for &(i, b) in sizes.range(..(top + 1).min(sizes.len())).rev() {
            if i > index {
                continue;
            }
            if index - i + 1 > max_entries || bytes + b > max_bytes {
                break;
            }
            bytes += b;
            through = i - 1;
        }
        through
    }

    /// The configuration after a change was applied.
    pub fn set_conf(&self, conf: ConfState) {
        self.mem.wl().set_conf_state(conf.clone());
        *self.conf.lock().unwrap_or_else(|p| p.into_inner()) = conf;
    }

    fn conf(&self) -> ConfState {
        self.conf.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `offer` the snapshot sent to followers that need one.
    pub fn set_offer(&self, offer: Offer) {
        if let Ok(mut o) = self.offer.lock() {
            *o = Some(offer);
        }
    }

    /// Starts the log after (`index`, `term`): entries up to it are covered by a
    /// snapshot. Entries after it that the store holds are kept; the hard state too.
    pub fn compact_to(&self, index: u64, term: u64) -> raft::Result<()> {
        let first = raft::Storage::first_index(&self.mem)?;
        let last = raft::Storage::last_index(&self.mem)?;
        if index < first {
            return Ok(());
        }
        let keep = if index < last {
            self.mem
                .entries(index + 1, last + 1, None, GetEntriesContext::empty(false))?
        } else {
            Vec::new()
        };
        let mut w = self.mem.wl();
        let hs: HardState = w.hard_state().clone();
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = index;
        snap.mut_metadata().term = term;
        snap.mut_metadata().set_conf_state(self.conf());
        w.apply_snapshot(snap)?;
        w.append(&keep)?;
        w.set_hardstate(hs);
        drop(w);
        let mut sizes = self.sizes();
        while sizes.front().is_some_and(|&(i, _)| i <= index) {
            sizes.pop_front();
        }
        Ok(())
    }
}

impl Storage for Store {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let offer = self.offer.lock().ok().and_then(|o| o.clone());
        let Some(offer) = offer.filter(|o| o.index >= request_index) else {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let Some(data) = (offer.load)() else {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = offer.index;
        meta.term = offer.term;
        meta.set_conf_state(self.conf());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            index,
            term: 1,
            data: vec![0u8; bytes].into(),
            ..Default::default()
        }
    }

    fn overhead() -> u64 {
        std::mem::size_of::<Entry>() as u64
    }

    #[test]
    fn compaction_keeps_what_fits_both_bounds_below_the_snapshot() {
        let store = Store::new(ConfState::from((vec![1], vec![])));
        let entries: Vec<Entry> = (1..=100).map(|i| entry(i, 1000)).collect();
        store.append(&entries).unwrap();
        let each = 1000 + overhead();
        // The entry bound alone: 10 kept below index 80.
        assert_eq!(store.compact_point(80, 10, u64::MAX), 70);
        // The byte bound alone: room for 3 entries.
        assert_eq!(store.compact_point(80, 10_000, 3 * each + 1), 77);
        // Both: the tighter one wins; nothing kept when not even one fits.
        assert_eq!(store.compact_point(80, 2, 3 * each), 78);
        assert_eq!(store.compact_point(80, 10, each - 1), 80);
        // A rewrite from index 50 on replaces the sizes from there.
        store.append(&[entry(50, 10)]).unwrap();
        assert_eq!(store.compact_point(50, 10_000, 10 + overhead() + each), 48);
        // After compacting, the store's remaining entries still count.
        store.compact_to(45, 1).unwrap();
        assert_eq!(store.compact_point(50, 10_000, u64::MAX), 45);
    }
}
