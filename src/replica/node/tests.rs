//! Three nodes in one thread, messages delivered by hand and every ready persisted at
//! once: elections, forwarded writes and replies, and leader failover.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokeeper_net::records::ConnectRequest;
use ferrokeeper_net::request::{Connect, CreateOp, Request};

use super::*;
use crate::core::acl::AuthIds;
use crate::core::apply::Outcome;
use crate::core::sequencer::SeededEntropy;

fn core_cfg(id: u64) -> CoreConfig {
    CoreConfig {
        tick_time_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        extended_types: false,
        skip_acl: false,
        enforce_quota: false,
        acl_providers: Default::default(),
        server_id: id as i64,
        container_check_interval_ms: 60_000,
        container_max_per_minute: 10_000,
        reconfig_enabled: false,
        stats: Default::default(),
        container_max_never_used_ms: 0,
    }
}

struct Cluster {
    nodes: BTreeMap<u64, Node>,
    down: Vec<u64>,
    /// Nodes whose log writes do not finish (a stalled disk): their persist jobs wait.
    stalled_disk: Vec<u64>,
    now: i64,
    /// Replies each node published, by node.
    replies: BTreeMap<u64, Vec<(Origin, ReplyMsg)>>,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        Cluster::with_learners(n, 0)
    }

    /// `n` voters (ids 1..=n) and `l` learners (ZooKeeper observers, the ids after).
    fn with_learners(n: u64, l: u64) -> Cluster {
        Cluster::configured(n, l, |_| {})
    }

    /// As [`Cluster::with_learners`], each node's config passed through `tweak`.
    fn configured(n: u64, l: u64, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let voters: Vec<u64> = (1..=n).collect();
        let learners: Vec<u64> = (n + 1..=n + l).collect();
        let mut nodes = BTreeMap::new();
        for id in 1..=n + l {
            let cfg = NodeConfig {
                id,
                voters: voters.clone(),
                learners: learners.clone(),
                election_tick: 10,
                max_election_tick: 0,
                heartbeat_tick: 2,
                core: core_cfg(id),
                incarnation: id as u8 + 10,
                local_sessions: false,
                local_upgrading: false,
                read_only_after_ms: None,
                multi_address: false,
                standalone_enabled: true,
            };
            let mut cfg = cfg;
            tweak(&mut cfg);
            let state = DataState::new(crate::core::sequencer::open_acl_unsafe(), false);
            let entropy: Box<dyn FnMut() -> Box<dyn Entropy + Send> + Send> =
                Box::new(move || Box::new(SeededEntropy(id)));
            let node = Node::new(cfg, Restored::fresh(state), entropy, &raft_logger())
                .expect("node starts");
            nodes.insert(id, node);
        }
        Cluster {
            nodes,
            down: Vec::new(),
            stalled_disk: Vec::new(),
            now: 1_000_000,
            replies: BTreeMap::new(),
        }
    }

    /// Runs every node's step and delivers its frames until nothing moves.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut frames = Vec::new();
            let mut busy = false;
            for (id, node) in self.nodes.iter_mut() {
                if self.down.contains(id) {
                    continue;
                }
                let out = node.step(self.now).expect("step");
                busy |= !out.persist.is_empty() || !out.publish.is_empty() || !out.send.is_empty();
                if !self.stalled_disk.contains(id) {
                    for p in out.persist {
                        node.persisted(p.number);
                    }
                }
                for p in out.publish {
                    self.replies.entry(*id).or_default().extend(p.replies);
                }
                for (to, kind, payload) in out.send {
                    frames.push((*id, to, kind, payload));
                }
            }
            // Persisting may release held messages: take them in the next round.
            let quiet = !busy;
            for (from, to, kind, payload) in frames {
                if self.down.contains(&to) || self.down.contains(&from) {
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&to) {
                    n.peer(from, kind, &payload, self.now);
                }
            }
            if quiet {
                return;
            }
        }
        panic!("cluster did not settle");
    }

    fn tick(&mut self, n: usize) {
        for _ in 0..n {
            self.now += 50;
            for (id, node) in self.nodes.iter_mut() {
                if !self.down.contains(id) {
                    node.tick(self.now, true);
                }
            }
            self.settle();
        }
    }

    /// Connects client connection `conn` to node `id` and returns its session id.
    fn session_on(&mut self, id: u64, conn: u64) -> i64 {
        let now = self.now;
        self.nodes
            .get_mut(&id)
            .expect("node")
            .client(connect(conn), now);
        self.settle();
        session_of(&self.replies[&id], conn)
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(id, n)| !self.down.contains(id) && n.role() == Role::Leader)
            .map(|(id, _)| *id)
    }
}

fn connect(conn: u64) -> CommitRequest {
    CommitRequest::Connect {
        conn: Origin(conn),
        connect: Connect {
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 10_000,
                session_id: 0,
                passwd: ferrokeeper_net::jute::Buffer(vec![0; 16]),
            },
            read_only: false,
            has_read_only: false,
        },
    }
}

fn create(conn: u64, session_id: i64, xid: i32, path: &str) -> CommitRequest {
    CommitRequest::Write {
        conn: Origin(conn),
        session_id,
        xid,
        request: Request::Create(CreateOp {
            opcode: Some(ferrokeeper_net::codes::OpCode::Create),
            path: path.into(),
            data: ferrokeeper_net::jute::NullableBuffer(Some(b"d".to_vec())),
            acl: crate::core::sequencer::open_acl_unsafe().to_vec(),
            flags: 0,
            ttl: -1,
        }),
        auth: Arc::new(AuthIds::from_ip_id("127.0.0.1".into())),
        local: false,
    }
}

fn session_of(replies: &[(Origin, ReplyMsg)], conn: u64) -> i64 {
    replies
        .iter()
        .find_map(|(o, r)| match r {
            ReplyMsg::Connected {
                session_id,
                valid: true,
                ..
            } if o.0 == conn => Some(*session_id),
            _ => None,
        })
        .expect("connected")
}

#[test]
fn three_nodes_elect_replicate_and_fail_over() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");

    // A client of the follower: its handshake and write travel to the leader and the
    // replies come back through the entry, once the follower has applied it.
    let sid = c.session_on(follower, 5);
    let now = c.now;
    c.nodes
        .get_mut(&follower)
        .expect("node")
        .client(create(5, sid, 1, "/a"), now);
    c.settle();
    let wrote = c.replies[&follower].iter().any(|(o, r)| {
        o.0 == 5
            && matches!(
                r,
                ReplyMsg::Write {
                    xid: 1,
                    outcome: Outcome::Created { .. },
                    ..
                }
            )
    });
    assert!(
        wrote,
        "the follower answered its client: {:?}",
        c.replies[&follower]
    );
    let node = &c.nodes[&follower];
    assert!(
        node.state().tree.get("/a").is_some(),
        "applied before replying"
    );

    // Every server applies the same txns.
    c.tick(5);
    let zxids: Vec<i64> = c.nodes.values().map(|n| n.state().last_zxid).collect();
    assert!(zxids.iter().all(|z| *z == zxids[0]), "{zxids:?}");

    // The leader dies: another one takes over, keeps the data and the session.
    c.down.push(leader);
    c.tick(80);
    let second = c.leader().expect("a new leader");
    assert_ne!(second, leader);
    let s = c.nodes[&second].state();
    assert!(s.tree.get("/a").is_some());
    assert!(s.sessions.contains_key(&sid));
    let before = s.last_zxid;
    let now = c.now;
    let other = (1..=3)
        .find(|id| *id != leader && *id != second)
        .expect("the last one");
    c.nodes
        .get_mut(&other)
        .expect("node")
        .client(connect(6), now);
    c.settle();
    let sid2 = session_of(&c.replies[&other], 6);
    let now = c.now;
    c.nodes
        .get_mut(&other)
        .expect("node")
        .client(create(6, sid2, 1, "/b"), now);
    c.settle();
    assert!(c.nodes[&other].state().tree.get("/b").is_some());
    assert!(
        c.nodes[&other].state().last_zxid > before,
        "zxids keep growing across leaders"
    );
}

/// A leader that loses its quorum steps down inside raft-rs's tick (check_quorum); a
/// client request that reaches it before the ready reporting the step-down has been
/// handled still lands in its sequencer, and the next `step` must not propose that batch
/// (raft-rs drops a proposal when no leader is known, and a dropped proposal stops the
/// server). Found by tests/ensemble.rs (30 kill -9 of leaders under load: a member
/// logged "stepped down to follower since quorum is not active", then fail-stopped with
/// "raft: proposal dropped").
#[test]
fn a_leader_that_lost_its_quorum_does_not_propose() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let old = c.leader().expect("a leader is elected");
    let node = c.nodes.get_mut(&old).expect("node");
    let mut now = c.now;
    // The followers are silent: after an election timeout the leader steps down.
    for _ in 0..25 {
        now += 50;
        node.tick(now, true);
    }
    assert_ne!(
        node.raw.raft.state,
        StateRole::Leader,
        "check_quorum stepped it down"
    );
    node.client(connect(7), now);
    let stepped = node.step(now);
    assert!(
        stepped.is_ok(),
        "the deposed leader failed: {:?}",
        stepped.err()
    );
    assert_ne!(node.role(), Role::Leader);
}

#[test]
fn an_observer_replicates_forwards_and_never_leads() {
    let mut c = Cluster::with_learners(3, 1);
    c.tick(60);
    assert_eq!(c.nodes[&4].role(), Role::Observer);
    // A client of the observer writes through the leader and reads its own write.
    let now = c.now;
    c.nodes.get_mut(&4).expect("node").client(connect(7), now);
    c.settle();
    let sid = session_of(&c.replies[&4], 7);
    let now = c.now;
    c.nodes
        .get_mut(&4)
        .expect("node")
        .client(create(7, sid, 1, "/o"), now);
    c.settle();
    assert!(c.nodes[&4].state().tree.get("/o").is_some());
    // Without two voters there is no quorum, whatever the observer does; with the
    // leader gone, a voter takes over and the observer follows it.
    let leader = c.leader().expect("a leader");
    c.down.push(leader);
    c.tick(80);
    let second = c.leader().expect("a new leader");
    assert!(second != 4 && second != leader, "{second}");
    assert_eq!(c.nodes[&4].role(), Role::Observer);
    assert_eq!(c.nodes[&4].leader(), second);
}

mod local_and_read_only;

/// The followers of a leader whose connections closed campaign within the randomized
/// part of the election timeout, before its minimum (10 ticks here) would let them.
/// (raft-rs draws the timeouts from its own random source: when both followers draw
/// the same tick the vote splits and the election takes another round, so what is
/// bounded is the first campaign, not the new leader.)
#[test]
fn a_leader_whose_connections_closed_is_replaced_before_the_timeout() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let old = c.leader().expect("a leader is elected");
    let term = c.nodes[&old].raw.raft.term;
    c.down.push(old);
    for (id, node) in c.nodes.iter_mut() {
        if *id != old {
            node.peer_lost(old);
        }
    }
    let campaigned = |c: &Cluster| {
        c.nodes
            .iter()
            .any(|(id, n)| *id != old && n.raw.raft.state != StateRole::Follower)
    };
    let mut ticks = 0;
    while !campaigned(&c) {
        assert!(
            ticks < 10,
            "no campaign within the election timeout's minimum"
        );
        c.tick(1);
        ticks += 1;
    }
    while c.leader().is_none() {
        assert!(ticks < 100, "no new leader after {ticks} ticks");
        c.tick(1);
        ticks += 1;
    }
    let new = c.leader().expect("elected");
    assert_ne!(new, old);
    assert!(c.nodes[&new].raw.raft.term > term);
}

/// One follower told its live leader's connection closed (a reset, say) cannot depose
/// it: the other follower still hears the leader and refuses the pre-vote.
#[test]
fn a_lost_connection_to_a_live_leader_deposes_no_one() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let term = c.nodes[&leader].raw.raft.term;
    let follower = *c
        .nodes
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    c.nodes.get_mut(&follower).expect("node").peer_lost(leader);
    // A peer that is not the leader: nothing changes at all.
    let other = *c
        .nodes
        .keys()
        .find(|id| **id != leader && **id != follower)
        .expect("another follower");
    c.nodes.get_mut(&other).expect("node").peer_lost(follower);
    c.tick(40);
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.nodes[&leader].raw.raft.term, term);
}

/// Followers whose disks stall (no log write finishes) still answer the leader's
/// heartbeats, so the leader keeps its quorum's lease and is not deposed for a slow
/// fdatasync, as a ZooKeeper follower's pings do not wait for its sync queue.
#[test]
fn followers_with_a_stalled_disk_keep_their_leader() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let term = c.nodes[&leader].raw.raft.term;
    c.stalled_disk = c.nodes.keys().copied().filter(|id| *id != leader).collect();
    let now = c.now;
    c.nodes
        .get_mut(&leader)
        .expect("node")
        .client(connect(7), now);
    c.settle();
    // Four election timeouts (10 ticks each here) with the followers' writes pending.
    c.tick(40);
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.nodes[&leader].raw.raft.term, term);
    for id in c.stalled_disk.clone() {
        assert_eq!(c.nodes[&id].leader(), leader, "follower {id}");
    }
}

/// Everything a reader sees of a tree, and the zxid, in a comparable form.
fn tree_view(s: &DataState) -> Vec<String> {
    let mut out = crate::snapshot::tests::tree_lines(&s.tree);
    out.push(format!("zxid {}", s.last_zxid));
    out
}

/// Issue #13: a member rebases its committed state (and the leader its sequencer's head)
/// onto a snapshot it wrote, as a standalone server does: the overlays keep only what
/// was written after the snapshot, and every member still shows the same tree, before
/// and after, and after more writes.
#[test]
fn members_rebase_on_their_snapshots_and_show_the_same_tree() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let sid = c.session_on(follower, 5);
    let mut xid = 0;
    let mut write = |c: &mut Cluster, path: String| {
        xid += 1;
        let now = c.now;
        c.nodes
            .get_mut(&follower)
            .expect("node")
            .client(create(5, sid, xid, &path), now);
        c.settle();
    };
    write(&mut c, "/p".into());
    for i in 0..60 {
        write(&mut c, format!("/p/c{i:03}"));
        write(&mut c, format!("/n{i:03}"));
    }
    c.tick(2);

    // Each member snapshots its committed state, as the driver does.
    let dir = std::env::temp_dir().join(format!("fk-node-rebase-{}", std::process::id()));
    let mut bases = BTreeMap::new();
    for (id, node) in c.nodes.iter_mut() {
        // Nothing in flight: the leader's head freezes with its committed state.
        let (state, _) = node.snapshot_state().expect("idle: a state at once");
        assert!(state.tree.is_frozen());
        let d = dir.join(id.to_string());
        let (file, _) = crate::snapshot::write_state(&d, &state).expect("snapshot written");
        let base = crate::core::tree::Base::open(
            ferrokeeper_storage::snapshot::read(&file).expect("snapshot maps"),
        )
        .expect("snapshot opens");
        bases.insert(*id, Arc::new(base));
    }
    // Writes go on while the snapshots are written.
    for i in 60..65 {
        write(&mut c, format!("/p/c{i:03}"));
    }
    c.tick(2);

    let reference = tree_view(c.nodes[&leader].state());
    for (id, node) in c.nodes.iter_mut() {
        let before = tree_view(node.state());
        assert_eq!(before, reference, "server {id} differs before the rebase");
        let head_before = node.sequencer().map(|s| tree_view(s.head()));
        let r = node
            .rebase(bases[id].clone())
            .expect("the member's own snapshot is its base");
        assert!(
            r.state_overlay.0 >= 120 && r.state_overlay.1 <= 10,
            "server {id}: overlay {:?}",
            r.state_overlay
        );
        assert_eq!(node.state().tree.overlay_len(), r.state_overlay.1);
        assert!(Arc::ptr_eq(
            node.state().tree.base().expect("a base"),
            &bases[id]
        ));
        assert_eq!(
            tree_view(node.state()),
            before,
            "server {id}: rebase changed the tree"
        );
        match (node.sequencer(), head_before) {
            (Some(seq), Some(head_before)) => {
                let (b, a, _) = r.head.expect("the leader's head is rebased");
                assert!(b >= 120 && a <= 10, "leader's head: overlay {b} -> {a}");
                assert_eq!(seq.head().tree.overlay_len(), a);
                assert_eq!(
                    tree_view(seq.head()),
                    head_before,
                    "rebase changed the head"
                );
            }
            (None, None) => assert!(r.head.is_none()),
            _ => unreachable!("a role changed"),
        }
        // Taken once: the same base again is not this member's pending snapshot.
        assert!(node.rebase(bases[id].clone()).is_none());
    }

    // Writes after the rebase land on every member alike.
    for i in 0..10 {
        write(&mut c, format!("/p/c{i:03}x"));
        write(&mut c, format!("/m{i:03}"));
    }
    c.tick(2);
    let reference = tree_view(c.nodes[&leader].state());
    assert!(c.nodes[&leader].state().tree.get("/m009").is_some());
    for (id, node) in &c.nodes {
        assert_eq!(tree_view(node.state()), reference, "server {id} diverged");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A snapshot started before a snapshot from the leader replaced the committed state is
/// of another tree: rebasing on it would lose or resurrect nodes, so it is refused.
#[test]
fn a_member_refuses_a_snapshot_of_a_state_since_replaced() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let dir = std::env::temp_dir().join(format!("fk-node-refuse-{}", std::process::id()));
    let node = c.nodes.get_mut(&follower).expect("node");
    let (state, _) = node.snapshot_state().expect("a follower's state at once");
    let (file, _) = crate::snapshot::write_state(&dir, &state).expect("snapshot written");
    let base = Arc::new(
        crate::core::tree::Base::open(
            ferrokeeper_storage::snapshot::read(&file).expect("snapshot maps"),
        )
        .expect("snapshot opens"),
    );
    node.installed((*state).clone()).expect("installed");
    assert!(node.rebase(base).is_none());
    let _ = std::fs::remove_dir_all(dir);
}

/// With a proposal in flight the leader's head is ahead of its committed state: it
/// freezes its head when it proposes the next batch and snapshots that batch's state
/// once committed, so that its head and its committed states, which are the head's,
/// drop the frozen layer whole on the rebase.
#[test]
fn a_busy_leader_snapshots_the_state_of_its_next_proposal() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let sid = c.session_on(leader, 6);
    for i in 0..30 {
        let now = c.now;
        c.nodes
            .get_mut(&leader)
            .expect("node")
            .client(create(6, sid, i + 1, &format!("/a{i:02}")), now);
        c.settle();
    }
    // A write the sequencer took and did not propose yet.
    let now = c.now;
    let node = c.nodes.get_mut(&leader).expect("node");
    node.client(create(6, sid, 100, "/in-flight"), now);
    assert!(node.snapshot_state().is_none(), "the head is ahead");
    assert!(node.snapshot_state().is_none(), "still waiting");
    c.settle();
    let node = c.nodes.get_mut(&leader).expect("node");
    let (state, at) = node.snapshot_state().expect("the proposal committed");
    assert!(state.tree.get("/in-flight").is_some());
    assert_eq!(at, node.applied_at());
    assert!(state.tree.is_frozen());
    let seq = node.sequencer().expect("leading");
    assert!(seq.head().tree.is_frozen());
    let dir = std::env::temp_dir().join(format!("fk-node-busy-{}", std::process::id()));
    let (file, _) = crate::snapshot::write_state(&dir, &state).expect("snapshot written");
    let base = Arc::new(
        crate::core::tree::Base::open(
            ferrokeeper_storage::snapshot::read(&file).expect("snapshot maps"),
        )
        .expect("snapshot opens"),
    );
    let now = c.now;
    let node = c.nodes.get_mut(&leader).expect("node");
    node.client(create(6, sid, 101, "/after"), now);
    c.settle();
    let node = c.nodes.get_mut(&leader).expect("node");
    let before = tree_view(node.state());
    let r = node.rebase(base).expect("its own snapshot");
    // The frozen layers went whole: only the write after the snapshot (the node and its
    // parent) stays, and no children list was merged.
    assert_eq!(r.state_overlay.1, 2, "{r:?}");
    assert_eq!(r.head.map(|h| h.1), Some(2), "{r:?}");
    assert_eq!(tree_view(node.state()), before);
    assert!(node.state().tree.get("/after").is_some());
    let _ = std::fs::remove_dir_all(dir);
}

/// A leader told a follower's connection closed stops streaming entries to it: the
/// follower's progress drops back to probing, so a member that comes back is probed
/// (and sent the snapshot if the log was compacted past it) instead of being fed what
/// piled up in the transport's queue meanwhile.
#[test]
fn a_leader_probes_a_follower_whose_connection_closed() {
    let mut c = Cluster::new(3);
    c.tick(60);
    let leader = c.leader().expect("a leader is elected");
    let follower = *c
        .nodes
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let state_of = |c: &Cluster| {
        c.nodes[&leader]
            .raw
            .raft
            .prs()
            .get(follower)
            .expect("progress")
            .state
    };
    assert_eq!(state_of(&c), raft::ProgressState::Replicate);
    c.nodes.get_mut(&leader).expect("node").peer_lost(follower);
    assert_eq!(state_of(&c), raft::ProgressState::Probe);
    assert_eq!(c.leader(), Some(leader), "it still leads");
}
