//! This server's part in an ensemble as the four-letter words report it. The ensemble
//! driver stores it after every step; the shards read it for `srvr`, `stat` and `mntr`
//! without a round through the commit executor (relaxed atomics: a reader may see the
//! role a step before the follower counts, which are statistics).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Role codes in [`EnsembleStatus::role`].
pub mod roles {
    /// No leader known: an election is under way.
    pub const LOOKING: u8 = 0;
    /// Leading.
    pub const LEADER: u8 = 1;
    /// Following.
    pub const FOLLOWER: u8 = 2;
    /// Observing (replicating without a vote).
    pub const OBSERVER: u8 = 3;
    /// No leader for a while, serving read-only clients (`readonlymode.enabled`).
    pub const READ_ONLY: u8 = 4;
}

/// Ensemble-wide facts for the admin commands.
#[derive(Debug, Default)]
pub struct EnsembleStatus {
    role: AtomicU8,
    leader: AtomicU64,
    learners: AtomicU64,
    synced_followers: AtomicU64,
    synced_observers: AtomicU64,
    pending_syncs: AtomicU64,
    quorum_size: AtomicU64,
    leader_since_ms: AtomicU64,
    last_proposal_size: AtomicU64,
    max_proposal_size: AtomicU64,
    min_proposal_size: AtomicU64,
    proposals: AtomicU64,
    /// Snapshots this server began sending to a follower (ZooKeeper's `snap_count`):
    /// counted by the snapshot transfer itself, not stored with the view.
    snapshots_sent: AtomicU64,
}

/// A copy of [`EnsembleStatus`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EnsembleView {
    /// One of [`roles`].
    pub role: u8,
    /// The leader's id (0: none known).
    pub leader: u64,
    /// On the leader: followers (and later observers) it replicates to.
    pub learners: u64,
    /// On the leader: followers whose log has everything committed.
    pub synced_followers: u64,
    /// On the leader: observers whose log has everything committed.
    pub synced_observers: u64,
    /// On the leader: syncs waiting for their batch to commit.
    pub pending_syncs: u64,
    /// Voting members.
    pub quorum_size: u64,
    /// When this server became leader (ms since the server started), if leading.
    pub leader_since_ms: u64,
    /// Bytes of the last entry proposed, on the leader.
    pub last_proposal_size: u64,
    /// Largest entry proposed, on the leader.
    pub max_proposal_size: u64,
    /// Smallest entry proposed, on the leader (0 before the first).
    pub min_proposal_size: u64,
    /// Entries proposed since this server became leader.
    pub proposals: u64,
}

impl EnsembleStatus {
    /// Counts a snapshot sent to a follower: ZooKeeper's `LearnerHandler` counts
    /// `snap_count` once per learner it syncs by snapshot.
    pub fn count_snapshot_sent(&self) {
        self.snapshots_sent.fetch_add(1, Relaxed);
    }

    /// Snapshots sent to followers since this server started (`snap_count`).
    pub fn snapshots_sent(&self) -> u64 {
        self.snapshots_sent.load(Relaxed)
    }

    /// Stores `v`.
    pub fn store(&self, v: &EnsembleView) {
        self.role.store(v.role, Relaxed);
        self.leader.store(v.leader, Relaxed);
        self.learners.store(v.learners, Relaxed);
        self.synced_followers.store(v.synced_followers, Relaxed);
        self.synced_observers.store(v.synced_observers, Relaxed);
        self.pending_syncs.store(v.pending_syncs, Relaxed);
        self.quorum_size.store(v.quorum_size, Relaxed);
        self.leader_since_ms.store(v.leader_since_ms, Relaxed);
        self.last_proposal_size.store(v.last_proposal_size, Relaxed);
        self.max_proposal_size.store(v.max_proposal_size, Relaxed);
        self.min_proposal_size.store(v.min_proposal_size, Relaxed);
        self.proposals.store(v.proposals, Relaxed);
    }

    /// The values now.
    pub fn read(&self) -> EnsembleView {
        EnsembleView {
            role: self.role.load(Relaxed),
            leader: self.leader.load(Relaxed),
            learners: self.learners.load(Relaxed),
            synced_followers: self.synced_followers.load(Relaxed),
            synced_observers: self.synced_observers.load(Relaxed),
            pending_syncs: self.pending_syncs.load(Relaxed),
            quorum_size: self.quorum_size.load(Relaxed),
            leader_since_ms: self.leader_since_ms.load(Relaxed),
            last_proposal_size: self.last_proposal_size.load(Relaxed),
            max_proposal_size: self.max_proposal_size.load(Relaxed),
            min_proposal_size: self.min_proposal_size.load(Relaxed),
            proposals: self.proposals.load(Relaxed),
        }
    }
}
