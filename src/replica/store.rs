//! raft-rs's view of the log: its in-memory `MemStorage` (every entry since the last
//! compaction, as the log executor also wrote them to disk), plus the snapshot this
//! server can send a follower that is behind the log's start. raft-rs's own
//! `MemStorage::snapshot` only describes its commit index and carries no data; this
//! wrapper offers the newest snapshot file instead, loaded when raft-rs asks for it.

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
}

impl Store {
    /// A store for the voters in `conf`.
    pub fn new(conf: ConfState) -> Store {
        Store {
            mem: MemStorage::new_with_conf_state(conf.clone()),
            offer: Arc::default(),
            conf: Arc::new(Mutex::new(conf)),
        }
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
