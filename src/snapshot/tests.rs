use std::sync::Arc;

use ferrokeeper_net::records::{Acl, Id};

use super::*;

use crate::core::payload::{
    ArchivedAclData, ArchivedNodeData, ArchivedSessionData, ArchivedSnapshotData,
    ArchivedSnapshotRoot, SnapshotData, SnapshotRoot, HAS_OWNER, NULL_DATA, PATH_LEN_MASK,
    PZXID_DIFFERS,
};
use crate::core::state::{CONTAINER_OWNER, EXTENDED_MASK};
use crate::core::tree::{Node, NodeStat};

fn digest_acl() -> Arc<[Acl]> {
    Arc::from(vec![
        Acl {
            perms: 31,
            id: Id {
                scheme: "digest".into(),
                id: "u:hash=".into(),
            },
        },
        Acl {
            perms: 1,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        },
    ])
}

/// Path, data, ACL, owner.
type SampleNode = (&'static str, Option<&'static [u8]>, Arc<[Acl]>, i64);

/// A session with no ephemerals yet, `timeout_ms` long, its password `passwd` 16 times.
fn session(timeout_ms: i32, passwd: u8) -> Session {
    Session {
        timeout_ms,
        passwd: [passwd; 16],
        ephemerals: Default::default(),
    }
}

/// A small state with every kind of node: null and empty data, container, TTL,
/// ephemerals of a live session, an ephemeral whose session is gone, shared and
/// content-equal (but separately allocated) ACLs.
fn sample() -> DataState {
    let open = crate::core::sequencer::open_acl_unsafe();
    let mut s = DataState::new(open.clone(), true);
    s.last_zxid = 0x1_0000_0042;
    let sid = 0x0123_4567_89ab_cdef_i64;
    s.sessions.insert(sid, session(30_000, 7));
    s.sessions.insert(5, session(4_000, 1));
    let ttl_owner = EXTENDED_MASK | 60_000;
    let nodes: Vec<SampleNode> = vec![
        ("/a", None, open.clone(), 0),
        ("/a/empty", Some(b""), open.clone(), 0),
        ("/a/data", Some(&[0, 1, 2, 255]), digest_acl(), 0),
        ("/a/same-acl", Some(b"x"), digest_acl(), 0),
        ("/c", Some(b"container"), open.clone(), CONTAINER_OWNER),
        ("/c/e", None, open.clone(), sid),
        ("/t", Some(b"ttl"), open.clone(), ttl_owner),
        ("/orphan", Some(b"o"), open.clone(), 99),
    ];
    for (i, (path, data, acl, owner)) in nodes.into_iter().enumerate() {
        let path: Arc<str> = Arc::from(path);
        let i = i as i64;
        s.add_node(
            path.clone(),
            Node {
                data: data.map(Arc::from),
                acl,
                stat: NodeStat {
                    czxid: 0x1_0000_0000 + i,
                    mzxid: 0x1_0000_0010 + i,
                    ctime: 1_700_000_000_000 + i,
                    mtime: 1_700_000_000_500 + i,
                    version: i as i32,
                    cversion: 2 * i as i32,
                    aversion: 3 * i as i32,
                    ephemeral_owner: owner,
                    pzxid: 0x1_0000_0020 + i,
                },
                children: Default::default(),
                digest: 0,
            },
            0,
        );
        let parent = crate::core::path::parent(&path);
        let name: Arc<str> = Arc::from(crate::core::path::name(&path));
        s.update_node(parent, 0, |p| {
            p.children.insert(name);
        });
        index_owner(&mut s, &path, owner, true);
    }
    s
}

/// Every node (path, data, ACL, stat, children) and the tree's size, in a comparable
/// form; also what the replica tests compare members by.
pub(crate) fn tree_lines(tree: &crate::core::tree::Tree) -> Vec<String> {
    let mut out: Vec<String> = tree
        .sorted_nodes()
        .into_iter()
        .map(|(p, n)| {
            format!(
                "{p} {:?} {:?} {:?} {:?}",
                n.data(),
                n.acl(),
                n.stat(),
                n.children().collect::<Vec<_>>()
            )
        })
        .collect();
    out.push(format!("len {} bytes {}", tree.len(), tree.data_bytes()));
    out
}

/// Everything observable, in a comparable form.
fn view(s: &DataState) -> Vec<String> {
    let mut out = tree_lines(&s.tree);
    let mut sessions: Vec<_> = s
        .sessions
        .iter()
        .map(|(id, x)| {
            format!(
                "session {id} {} {:?} {:?}",
                x.timeout_ms, x.passwd, x.ephemerals
            )
        })
        .collect();
    sessions.sort();
    out.extend(sessions);
    out.push(format!("containers {:?}", s.containers));
    out.push(format!("ttls {:?}", s.ttls));
    out.push(format!("zxid {} ext {}", s.last_zxid, s.extended_types));
    // Every state a test looks at must keep the digest invariant.
    assert_eq!(
        s.digest,
        crate::core::digest::of_tree(&s.tree),
        "incremental digest differs from a recomputation"
    );
    out.push(format!("digest {}", s.digest));
    out
}

/// `s` written as a snapshot and served from the mapped file.
fn round_trip(s: &DataState) -> DataState {
    let dir = tempfile_dir();
    write_state(&dir, s).expect("write");
    let loaded = load_newest(&dir, s.extended_types).expect("load");
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    let _ = std::fs::remove_dir_all(dir);
    loaded.state.expect("state")
}

fn validate_data(d: &SnapshotData) -> Result<(), payload::InvalidPayload> {
    let root = SnapshotRoot {
        digest: owned_digest(d),
        data: d.clone(),
    };
    payload::validate(Path::new("mem"), &root.to_bytes()).map(|_| ())
}

/// The tree digest of `d`'s nodes.
fn owned_digest(d: &SnapshotData) -> i64 {
    let mut start = 0usize;
    let side = |nodes: &[u32], values: &[i64], i: usize| {
        let k = nodes.iter().position(|&x| x as usize == i)?;
        values.get(k).copied()
    };
    d.nodes.iter().enumerate().fold(0i64, |sum, (i, n)| {
        // Tolerant of the damage the tests below make: it only has to give the digest.
        let end = n.heap_end as usize;
        let path_end = start + (n.path_len & PATH_LEN_MASK) as usize;
        let path = String::from_utf8_lossy(d.heap.get(start..path_end).unwrap_or_default());
        let data =
            (n.path_len & NULL_DATA == 0).then(|| d.heap.get(path_end..end).unwrap_or_default());
        start = end;
        let stat = NodeStat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            ephemeral_owner: side(&d.owner_nodes, &d.owners, i).unwrap_or(0),
            pzxid: side(&d.pzxid_nodes, &d.pzxids, i).unwrap_or(n.czxid),
        };
        sum.wrapping_add(crate::core::digest::node_digest(&path, data, &stat))
    })
}

#[test]
fn payload_round_trips_every_kind_of_node_and_session() {
    let s = sample();
    let back = round_trip(&s);
    assert!(back.tree.base().is_some(), "served from the mapped file");
    assert_eq!(back.tree.overlay_len(), 0);
    assert_eq!(view(&s), view(&back));
    // Null stays null, empty stays empty.
    assert!(back.tree.get("/a").expect("/a").data().is_none());
    assert_eq!(
        back.tree.get("/a/empty").expect("empty").data(),
        Some(&b""[..])
    );
    assert!(back.containers.contains("/c"));
    assert!(back.ttls.contains("/t"));
    let sess = back.sessions.get(&0x0123_4567_89ab_cdef).expect("session");
    assert!(sess.ephemerals.contains("/c/e"));
    assert_eq!(sess.passwd, [7; 16]);
    // Equal ACLs are stored once and shared again after loading.
    let data = SnapshotData::from_state(&s);
    assert_eq!(data.acls.len(), 3, "open, digest+world, read-only config");
    let a = back.tree.get("/a/data").expect("n").acl();
    let b = back.tree.get("/a/same-acl").expect("n").acl();
    assert!(Arc::ptr_eq(a, b));
    assert!(back.tree.get("/a").expect("/a").has_child("data"));
    assert!(!back.tree.get("/a").expect("/a").has_child("dat"));
    assert!(back.tree.get("/nope").is_none());
    assert_eq!(
        back.tree.get("").expect("root").stat(),
        s.tree.get("/").expect("root").stat()
    );
}

#[test]
fn extended_owners_follow_the_serving_config() {
    // Written with extended types on, served with them off: the TTL node's owner is then
    // a session id like any other (no such session here), and no TTL index exists.
    let s = sample();
    let dir = tempfile_dir();
    write_state(&dir, &s).expect("write");
    let off = load_newest(&dir, false)
        .expect("load")
        .state
        .expect("state");
    assert!(off.ttls.is_empty());
    assert!(off.containers.contains("/c"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fresh_state_round_trips() {
    let s = DataState::new(crate::core::sequencer::open_acl_unsafe(), false);
    assert_eq!(view(&s), view(&round_trip(&s)));
}

#[test]
fn damaged_archive_is_refused_not_panicked() {
    let bytes = SnapshotRoot::from_state(&sample()).to_bytes();
    for cut in [0, 1, 8, bytes.len() / 2, bytes.len() - 1] {
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(&bytes[..cut]);
        assert!(payload::validate(Path::new("mem"), &aligned).is_err());
    }
}

#[test]
fn inconsistent_payload_is_refused() {
    let good = SnapshotData::from_state(&sample());
    validate_data(&good).expect("valid");
    let mut d = good.clone();
    d.nodes.swap(1, 2);
    assert!(validate_data(&d).is_err(), "order");
    let mut d = good.clone();
    d.nodes[1].acl = 99;
    assert!(validate_data(&d).is_err(), "acl");
    // The root's last child taken out of its list: an orphan.
    let mut d = good.clone();
    d.children.remove(d.nodes[0].children_end as usize - 1);
    d.nodes.iter_mut().for_each(|n| n.children_end -= 1);
    assert!(validate_data(&d).is_err(), "orphan");
    let mut d = good.clone();
    d.nodes[2].heap_end = d.heap.len() as u64 + 1;
    assert!(validate_data(&d).is_err(), "heap stretch");
    let mut d = good.clone();
    d.nodes[2].path_len |= NULL_DATA;
    assert!(validate_data(&d).is_err(), "null data with bytes");
    let mut d = good.clone();
    d.nodes[1].children_end = d.children.len() as u32 + 1;
    assert!(validate_data(&d).is_err(), "children stretch");
    let mut d = good.clone();
    d.heap[1] = 0xff;
    assert!(validate_data(&d).is_err(), "path not UTF-8");
    let mut d = good.clone();
    d.index.iter_mut().for_each(|i| *i = 0);
    assert!(validate_data(&d).is_err(), "index");
    let mut d = good.clone();
    d.index.truncate(d.index.len() / 2);
    assert!(validate_data(&d).is_err(), "index size");
    let mut d = good.clone();
    d.sessions[0].ephemerals.push(999);
    assert!(validate_data(&d).is_err(), "ephemeral index");
    let mut d = good.clone();
    d.nodes.remove(0);
    assert!(validate_data(&d).is_err(), "root");
    // The side tables must list exactly the nodes their flags mark.
    let side_table_refused = |d: &SnapshotData| match validate_data(d) {
        Err(e) => e.reason.contains("flagged") || e.reason.contains("side table"),
        Ok(()) => false,
    };
    let mut d = good.clone();
    let owned = d.owner_nodes[0] as usize;
    d.nodes[owned].path_len &= !HAS_OWNER;
    assert!(side_table_refused(&d), "owner listed but not flagged");
    let mut d = good.clone();
    let unowned = d.nodes.iter().position(|n| n.path_len & HAS_OWNER == 0);
    d.nodes[unowned.expect("an unowned node")].path_len |= HAS_OWNER;
    assert!(side_table_refused(&d), "owner flagged but not listed");
    let mut d = good.clone();
    d.owners[0] = 0;
    assert!(side_table_refused(&d), "owner listed as 0");
    let mut d = good.clone();
    d.pzxid_nodes.swap(0, 1);
    assert!(side_table_refused(&d), "pzxid list out of order");
    let mut d = good.clone();
    d.pzxids.pop();
    assert!(side_table_refused(&d), "pzxid table shorter than its list");
    let mut d = good.clone();
    d.pzxids[0] = d.nodes[d.pzxid_nodes[0] as usize].czxid;
    assert!(side_table_refused(&d), "pzxid listed equal to czxid");
    let mut d = good.clone();
    d.nodes[0].path_len |= PZXID_DIFFERS;
    assert!(side_table_refused(&d), "pzxid flagged but not listed");
    let mut d = good.clone();
    d.records_pad[3] = 1;
    assert!(validate_data(&d).is_err(), "padding");
    // A digest that is not the nodes' (a drift in keeping it) is refused too.
    let root = SnapshotRoot {
        digest: owned_digest(&good) + 1,
        data: good,
    };
    assert!(
        payload::validate(Path::new("mem"), &root.to_bytes()).is_err(),
        "digest"
    );
}

/// The snapshot stores the digest, and loading takes it from there.
#[test]
fn digest_is_stored_and_loaded_not_recomputed() {
    let s = sample();
    let back = round_trip(&s);
    assert_eq!(back.digest, s.digest);
    let base = back.tree.base().expect("base");
    assert_eq!(base.format_version(), 5);
    assert_eq!(base.upgraded_from(), None);
    assert_eq!(base.digest(), s.digest);
}

const FIXTURE_V2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/storage/tests/fixtures/v2/fk-snap.0000000100000042"
);
const FIXTURE_V3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/storage/tests/fixtures/v3/fk-snap.0000000100000042"
);
const FIXTURE_V4: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/storage/tests/fixtures/v4/fk-snap.0000000100000042"
);

/// An older snapshot (the sample state's file in format `version`) loads, converted to
/// version 5 in memory, and is written back as version 5 by `write_back_upgraded`.
fn older_snapshot_loads_and_is_written_back(fixture: &str, version: u32) {
    let dir = tempfile_dir();
    let name = dir.join("fk-snap.0000000100000042");
    std::fs::copy(fixture, &name).expect("copy");
    let loaded = load_newest(&dir, true).expect("load");
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    let mut state = loaded.state.expect("state");
    let base = state
        .tree
        .base()
        .expect("served from the converted archive");
    assert_eq!(base.format_version(), 5);
    assert_eq!(base.upgraded_from(), Some(version));
    assert_eq!(base.digest(), sample().digest);
    assert_eq!(view(&sample()), view(&state));
    write_back_upgraded(&dir, &mut state);
    let base = state.tree.base().expect("served from the rewritten file");
    assert_eq!(base.upgraded_from(), None);
    assert_eq!(view(&sample()), view(&state));
    // The file is now this build's, byte for byte what a fresh write gives.
    let fresh = tempfile_dir();
    write_state(&fresh, &sample()).expect("write");
    assert_eq!(
        std::fs::read(&name).expect("rewritten"),
        std::fs::read(fresh.join("fk-snap.0000000100000042")).expect("fresh")
    );
    let again = load_newest(&dir, true).expect("load").state.expect("state");
    assert_eq!(again.tree.base().map(|b| b.upgraded_from()), Some(None));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(fresh);
}

/// A version 2 snapshot (written before digests were stored) still loads; its digest is
/// computed during the conversion.
#[test]
fn version_2_snapshot_loads_with_a_computed_digest() {
    older_snapshot_loads_and_is_written_back(FIXTURE_V2, 2);
}

/// A version 3 snapshot (nodes as rkyv structs, before the node records and the heap)
/// still loads.
#[test]
fn version_3_snapshot_loads_and_is_written_back_as_version_5() {
    older_snapshot_loads_and_is_written_back(FIXTURE_V3, 3);
}

/// A version 4 snapshot (80 B node records with every stat field inline; what every
/// data directory of the release before this one holds) still loads.
#[test]
fn version_4_snapshot_loads_and_is_written_back_as_version_5() {
    older_snapshot_loads_and_is_written_back(FIXTURE_V4, 4);
}

/// A toy writer over a tree that keeps ZooKeeper's invariants (children lists, cversion,
/// pzxid), for rebasing tests.
struct Ops {
    s: DataState,
    zxid: i64,
}

impl Ops {
    fn create(&mut self, path: &str, data: &[u8]) {
        self.create_owned(path, data, 0);
    }

    /// A create whose node has `owner` as its `ephemeral_owner` (a session, the
    /// container marker or a TTL encoding), filed under it as the apply files it.
    fn create_owned(&mut self, path: &str, data: &[u8], owner: i64) {
        self.zxid += 1;
        let z = self.zxid;
        let parent = crate::core::path::parent(path);
        if self.s.tree.contains(path) || !self.s.tree.contains(parent) {
            return;
        }
        let name: Arc<str> = Arc::from(crate::core::path::name(path));
        self.s.update_node(parent, z, |p| {
            p.children.insert(name);
            p.stat.cversion += 1;
            p.stat.pzxid = z;
        });
        let node = Node {
            data: Some(Arc::from(data)),
            acl: crate::core::sequencer::open_acl_unsafe(),
            stat: NodeStat {
                czxid: z,
                mzxid: z,
                pzxid: z,
                ctime: 1_700_000_000_000 + z,
                mtime: 1_700_000_000_000 + z,
                ephemeral_owner: owner,
                ..NodeStat::default()
            },
            children: Default::default(),
            digest: 0,
        };
        let path: Arc<str> = Arc::from(path);
        self.s.add_node(path.clone(), node, z);
        let extended = self.s.extended_types;
        index_owner(&mut self.s, &path, owner, extended);
        self.s.last_zxid = z;
    }

    fn delete(&mut self, path: &str) {
        self.zxid += 1;
        let z = self.zxid;
        match self.s.tree.get(path) {
            Some(n) if !n.has_children() && path != "/" => {}
            _ => return,
        }
        let name = crate::core::path::name(path).to_string();
        self.s.update_node(crate::core::path::parent(path), z, |p| {
            p.children.remove(name.as_str());
            p.stat.pzxid = z;
        });
        self.s.remove_node(&Arc::from(path), z);
        self.s.last_zxid = z;
    }

    fn set(&mut self, path: &str, data: &[u8]) {
        self.zxid += 1;
        let z = self.zxid;
        if !self.s.tree.contains(path) {
            return;
        }
        self.s.update_node(path, z, |n| {
            n.data = Some(Arc::from(data));
            n.stat.version += 1;
            n.stat.mzxid = z;
        });
        self.s.last_zxid = z;
    }

    fn random(&mut self, rng: &mut impl rand::Rng) {
        let a = rng.random_range(0..6);
        let b = rng.random_range(0..6);
        let path = match rng.random_range(0..3) {
            0 => format!("/n{a}"),
            1 => format!("/n{a}/c{b}"),
            _ => format!("/n{a}/c{b}/g{}", rng.random_range(0..3)),
        };
        let data = vec![b'x'; rng.random_range(0..20)];
        match rng.random_range(0..3) {
            0 => self.create(&path, &data),
            1 => self.delete(&path),
            _ => self.set(&path, &data),
        }
    }
}

/// The stat fields version 5 moved out of the node record (`ephemeral_owner`, `pzxid`)
/// come back exact after a snapshot write and load, for each kind of node that has one
/// (ZooKeeper Programmer's Guide, "ZooKeeper Stat Structure"): an ephemeral, a
/// container, a TTL node, a parent whose child was deleted (pzxid past its czxid);
/// and nodes without one stay out of the side tables.
#[test]
fn owners_and_pzxids_keep_their_exact_stat_across_a_snapshot() {
    let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
    let mut a = Ops { s: fresh, zxid: 0 };
    let sid = 0x0123_4567_89ab_cdef_i64;
    a.s.sessions.insert(sid, session(30_000, 7));
    a.create("/app", b"");
    a.create_owned("/app/eph", b"e", sid);
    a.create_owned("/app/box", b"", CONTAINER_OWNER);
    a.create("/app/box/item", b"i");
    a.create_owned("/app/ttl", b"t", EXTENDED_MASK | 60_000);
    a.create("/app/gone", b"g");
    a.delete("/app/gone");
    a.create("/leaf", b"l");
    let back = round_trip(&a.s);
    let stat = |s: &DataState, p: &str| s.tree.get(p).expect(p).stat();
    for path in [
        "/",
        "/app",
        "/app/eph",
        "/app/box",
        "/app/box/item",
        "/app/ttl",
        "/leaf",
    ] {
        assert_eq!(stat(&a.s, path), stat(&back, path), "{path}");
    }
    assert_eq!({ stat(&back, "/app/eph").ephemeral_owner }, sid);
    assert_eq!({ stat(&back, "/app/box").ephemeral_owner }, CONTAINER_OWNER);
    assert_eq!(
        { stat(&back, "/app/ttl").ephemeral_owner },
        EXTENDED_MASK | 60_000
    );
    let app = stat(&back, "/app");
    assert!(app.pzxid > app.czxid, "the delete moved /app's pzxid");
    assert_eq!({ app.pzxid }, a.zxid - 1, "the delete's zxid");
    assert!(back.sessions[&sid].ephemerals.contains("/app/eph"));
    assert!(back.containers.contains("/app/box"));
    assert!(back.ttls.contains("/app/ttl"));
    // Only the nodes that differ from the defaults are in the side tables.
    let base = back.tree.base().expect("served from the snapshot");
    let archive = base.archive();
    let flagged = |table: &[rkyv::rend::u32_le]| -> Vec<&str> {
        table
            .iter()
            .map(|i| archive.path(i.to_native() as usize))
            .collect()
    };
    assert_eq!(
        flagged(&archive.owner_nodes),
        ["/app/box", "/app/eph", "/app/ttl"]
    );
    assert_eq!(flagged(&archive.pzxid_nodes), ["/", "/app", "/app/box"]);
    let leaf = base.find("/leaf").expect("/leaf");
    let flags = archive.nodes[leaf as usize].path_len.to_native();
    assert_eq!(flags & (HAS_OWNER | PZXID_DIFFERS), 0);
}

/// The node records start 64-byte aligned in the mapped file (48 B header, 16 B of
/// padding), so each 64 B record is one cache line.
#[test]
fn node_records_are_cache_line_aligned_in_the_mapping() {
    let dir = tempfile_dir();
    let (file, _) = write_state(&dir, &sample()).expect("write");
    let base = Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open");
    assert_eq!(base.archive().nodes.as_ptr() as usize % 64, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A base whose owner and pzxid tables are large enough to be ranked
/// ([`crate::core::payload::SIDE_RANK_ENTRIES_MIN`]) serves every node's stat as the state
/// held it: ephemerals of a live session and of a gone one, every other leaf plain, and
/// parents whose pzxid moved.
#[test]
fn ranked_side_tables_serve_the_stats_the_state_held() {
    let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
    let mut a = Ops { s: fresh, zxid: 0 };
    let sid = 0x77;
    a.s.sessions.insert(sid, session(30_000, 3));
    let parents = crate::core::payload::SIDE_RANK_ENTRIES_MIN + 100;
    for p in 0..parents {
        a.create(&format!("/p{p:05}"), b"p");
        for l in 0..3 {
            let owner = match (p + l) % 3 {
                0 => sid,
                1 => 0x99,
                _ => 0,
            };
            a.create_owned(&format!("/p{p:05}/l{l}"), b"leaf", owner);
        }
    }
    let dir = tempfile_dir();
    write_state(&dir, &a.s).expect("write");
    let back = load_newest(&dir, true).expect("load").state.expect("state");
    let archive = back
        .tree
        .base()
        .expect("served from the snapshot")
        .archive();
    assert!(archive.owner_nodes.len() >= crate::core::payload::SIDE_RANK_ENTRIES_MIN);
    assert!(archive.pzxid_nodes.len() >= crate::core::payload::SIDE_RANK_ENTRIES_MIN);
    assert_eq!(view(&a.s), view(&back));
    let _ = std::fs::remove_dir_all(dir);
}

/// The CPU time of the calling thread, ns: the machine is shared, so wall time would
/// measure the neighbours too.
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Micro-benchmark of a base node's stat (bench/results/memory/2026-12-06-snapv5.md):
/// 1M leaves under 1,000 parents, all, 1 in 10, 1 in 100 or none of them ephemerals,
/// written and mapped; random stats of leaves (the ephemeral ones where there are any),
/// through a binary search of the side table and through its rank, alternating, CPU
/// time per stat. Run with
/// `cargo test --release --lib bench_base_stat -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_base_stat_by_search_and_by_rank() {
    use rand::{Rng, SeedableRng};

    use crate::core::payload::SideRanks;
    let (parents, leaves, stats, runs) = (1000, 1000, 2_000_000, 7);
    for every in [1, 10, 100, 0] {
        let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
        let mut a = Ops { s: fresh, zxid: 0 };
        for p in 0..parents {
            a.create(&format!("/p{p:04}"), b"p");
            for l in 0..leaves {
                let owner = if every != 0 && l % every == 0 {
                    0x42
                } else {
                    0
                };
                a.create_owned(&format!("/p{p:04}/l{l:04}"), &[7; 100], owner);
            }
        }
        let dir = tempfile_dir();
        let (file, _) = write_state(&dir, &a.s).expect("write");
        drop(a);
        // Dropping the state leaves a million small chunks in malloc's free lists; the
        // next large allocation consolidates them (~300 ms here), and would charge that
        // to `Base::open` (its ranks) if it came first.
        drop(std::hint::black_box(vec![1u8; 1 << 20]));
        let t = thread_cpu_ns();
        let snap = ferrokeeper_storage::snapshot::read(&file).expect("map");
        let read_ns = thread_cpu_ns() - t;
        let t = thread_cpu_ns();
        let base = Arc::new(Base::open(snap).expect("open"));
        let open_ns = thread_cpu_ns() - t;
        let archive = base.archive();
        let t = thread_cpu_ns();
        let ranks = SideRanks::new(archive);
        let ranks_ns = thread_cpu_ns() - t;
        let mut rng = rand::rngs::StdRng::seed_from_u64(every as u64);
        let picks: Vec<u32> = (0..stats)
            .map(|_| {
                let p = rng.random_range(0..parents);
                let l = if every == 0 {
                    rng.random_range(0..leaves)
                } else {
                    rng.random_range(0..leaves / every) * every
                };
                base.find(&format!("/p{p:04}/l{l:04}")).expect("leaf")
            })
            .collect();
        let none = SideRanks::default();
        // Per run: by search, by rank (the same call, only the ranks differ), and as a
        // base serves it (`BaseNode::stat`, with the base's own ranks).
        let mut ns: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            for (way, times) in ns.iter_mut().enumerate() {
                let t = thread_cpu_ns();
                for &i in &picks {
                    let n = &archive.nodes[i as usize];
                    std::hint::black_box(match way {
                        0 => archive.stat(i, n, &none),
                        1 => archive.stat(i, n, &ranks),
                        _ => base.node(i).stat(),
                    });
                }
                times.push((thread_cpu_ns() - t) as f64 / stats as f64);
            }
        }
        let [search, rank, served] = ns.map(|mut v| {
            v.sort_by(f64::total_cmp);
            format!("{:.0} ({:.0}-{:.0})", v[runs / 2], v[0], v[runs - 1])
        });
        println!(
            "1 in {every} ephemeral: owner table {} entries, pzxid table {}; read {:.1} ms, \
             Base::open {:.2} ms (ranks {:.2} ms, {} B); ns/stat median (min-max): \
             search {search}, rank {rank}, BaseNode::stat {served}",
            archive.owner_nodes.len(),
            archive.pzxid_nodes.len(),
            read_ns as f64 / 1e6,
            open_ns as f64 / 1e6,
            ranks_ns as f64 / 1e6,
            ranks.heap_bytes(),
        );
        drop(base);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Random writes, a snapshot in the middle, more writes, then a rebase on that
/// snapshot: the rebased tree shows exactly what the tree showed, keeps only what was
/// written after the snapshot, and goes on like a tree that was never rebased.
#[test]
fn rebase_on_a_mid_stream_snapshot_changes_nothing_visible() {
    use rand::{Rng, SeedableRng};
    for seed in 0..40u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
        let mut a = Ops { s: fresh, zxid: 0 };
        for _ in 0..rng.random_range(0..200) {
            a.random(&mut rng);
        }
        let dir = tempfile_dir();
        // Some seeds start from a base already, as after a restart.
        if seed % 2 == 0 {
            write_state(&dir, &a.s).expect("write");
            a.s = load_newest(&dir, true).expect("load").state.expect("state");
        }
        for _ in 0..rng.random_range(0..200) {
            a.random(&mut rng);
        }
        // As the commit stage does it: freeze the overlay at the snapshot's zxid, so
        // that the rebase drops the frozen layer whole. Some seeds take the other path.
        if seed % 3 != 0 {
            let z = a.s.last_zxid;
            a.s.tree.freeze(z);
        }
        let at = a.s.clone();
        let (file, _) = write_state(&dir, &at).expect("write");
        let base = Arc::new(
            Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
        );
        let writes_after = rng.random_range(0..100);
        for _ in 0..writes_after {
            a.random(&mut rng);
        }
        if seed % 5 == 1 {
            // A second freeze before the first snapshot became the base: the first
            // frozen layer is folded back, and the rebase takes the slow path.
            let z = a.s.last_zxid;
            a.s.tree.freeze(z);
            a.random(&mut rng);
        }
        let mut b = Ops {
            s: a.s.clone(),
            zxid: a.zxid,
        };
        let before = view(&a.s);
        b.s.tree.rebase(base);
        assert_eq!(before, view(&b.s), "seed {seed}: rebase changed the view");
        assert!(
            b.s.tree.overlay_len() <= 3 * writes_after,
            "seed {seed}: overlay {} after {writes_after} writes",
            b.s.tree.overlay_len()
        );
        for _ in 0..200 {
            let mut r2 = rng.clone();
            a.random(&mut rng);
            b.random(&mut r2);
        }
        assert_eq!(
            view(&a.s),
            view(&b.s),
            "seed {seed}: diverged after the rebase"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The commit stage's rebase after writes to leaves only (the `write` benchmark's
/// setData): no node needs its children list moved, and the old base is let go of.
/// Leaves copied from the old base or from the frozen layer used to be moved one by one
/// on the commit executor (issue #13: 75 ms for 10k of them).
#[test]
fn rebase_after_leaf_writes_moves_no_list_and_drops_the_old_base() {
    let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
    let mut a = Ops { s: fresh, zxid: 0 };
    for i in 0..20 {
        a.create(&format!("/n{i}"), b"p");
        for j in 0..5 {
            a.create(&format!("/n{i}/c{j}"), b"leaf");
        }
    }
    let dir = tempfile_dir();
    write_state(&dir, &a.s).expect("write");
    a.s = load_newest(&dir, true).expect("load").state.expect("state");
    let old_base = a.s.tree.base().expect("served from the snapshot").clone();
    // Leaves copied from the old base before the freeze, into the frozen layer.
    for i in 0..10 {
        a.set(&format!("/n{i}/c0"), b"before");
    }
    let z = a.s.last_zxid;
    a.s.tree.freeze(z);
    let (file, _) = write_state(&dir, &a.s).expect("write");
    let base = Arc::new(
        Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
    );
    // Since the freeze: leaves copied from the frozen layer and from the old base.
    for i in 0..20 {
        a.set(&format!("/n{i}/c0"), b"after");
        a.set(&format!("/n{i}/c1"), b"after");
    }
    let before = view(&a.s);
    let mut b = a.s.clone();
    let zxid = a.zxid;
    drop(a);
    assert_eq!(b.tree.rebase(base), 0, "a leaf's list was moved");
    assert_eq!(before, view(&b), "rebase changed the view");
    assert_eq!(
        Arc::strong_count(&old_base),
        1,
        "the rebased tree still holds the old base"
    );
    // A parent written since the freeze is moved, and only it.
    let mut c = Ops { s: b, zxid };
    let z2 = c.s.last_zxid;
    c.s.tree.freeze(z2);
    let (file, _) = write_state(&dir, &c.s).expect("write");
    let base = Arc::new(
        Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
    );
    c.create("/n3/c9", b"new");
    c.set("/n4/c2", b"again");
    let before = view(&c.s);
    assert_eq!(c.s.tree.rebase(base), 1, "only /n3's list moves");
    assert_eq!(before, view(&c.s), "second rebase changed the view");
    let _ = std::fs::remove_dir_all(dir);
}

/// The fold rule (`Fold::due`): quiet for `FOLD_QUIET`, an overlay of at least
/// `FOLD_OVERLAY_MIN` and 1/`FOLD_OVERLAY_SHARE` of the base, one fold per
/// `FOLD_INTERVAL_MIN`; and nothing to fold once the fold's snapshot is the base.
#[test]
fn a_quiet_large_overlay_is_due_for_a_fold_and_then_not_again() {
    let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
    let mut a = Ops { s: fresh, zxid: 0 };
    let t0 = Instant::now();
    let mut fold = Fold::new(t0);
    let quiet = FOLD_QUIET;
    for i in 0..FOLD_OVERLAY_MIN - 10 {
        a.create(&format!("/n{i}"), b"p");
    }
    let z = a.s.last_zxid;
    assert!(
        !fold.due(t0, z, &a.s.tree),
        "the first turn starts the clock"
    );
    assert!(
        !fold.due(t0 + quiet, z, &a.s.tree),
        "overlay below the minimum"
    );
    for i in 0..10 {
        a.create(&format!("/m{i}"), b"p");
    }
    let z = a.s.last_zxid;
    let t1 = t0 + quiet;
    assert!(!fold.due(t1, z, &a.s.tree), "a new zxid restarts the clock");
    assert!(
        !fold.due(t1 + quiet / 2, z, &a.s.tree),
        "not quiet long enough"
    );
    assert!(fold.due(t1 + quiet, z, &a.s.tree));

    // The fold: freeze, snapshot, rebase; the overlay is empty after it.
    fold.started(t1 + quiet);
    a.s.tree.freeze(z);
    let dir = tempfile_dir();
    let (file, _) = write_state(&dir, &a.s).expect("write");
    let base = Arc::new(
        Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
    );
    a.s.tree.rebase(base);
    assert_eq!(a.s.tree.overlay_len(), 0);
    let later = t1 + FOLD_INTERVAL_MIN * 2;
    assert!(
        !fold.due(later, z, &a.s.tree),
        "nothing changed, nothing to fold"
    );

    // Writes again, quiet again: a fold, but not within FOLD_INTERVAL_MIN of the last.
    for i in 0..FOLD_OVERLAY_MIN {
        a.create(&format!("/k{i}"), b"p");
    }
    let z = a.s.last_zxid;
    let mut fold = Fold::new(t0);
    fold.started(t0);
    assert!(!fold.due(t0, z, &a.s.tree));
    assert!(
        !fold.due(t0 + quiet, z, &a.s.tree),
        "within FOLD_INTERVAL_MIN"
    );
    assert!(fold.due(t0 + FOLD_INTERVAL_MIN, z, &a.s.tree));

    // Over a large base, the overlay must be 1/FOLD_OVERLAY_SHARE of it.
    for i in 0..FOLD_OVERLAY_MIN * FOLD_OVERLAY_SHARE {
        a.create(&format!("/b{i}"), b"p");
    }
    let z = a.s.last_zxid;
    a.s.tree.freeze(z);
    let (file, _) = write_state(&dir, &a.s).expect("write");
    let base = Arc::new(
        Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
    );
    let share = base.len() / FOLD_OVERLAY_SHARE;
    a.s.tree.rebase(base);
    for i in 0..share - 2 {
        a.create(&format!("/c{i}"), b"p");
    }
    // The creates and the root they all changed.
    assert_eq!(a.s.tree.overlay_len(), share - 1);
    let mut fold = Fold::new(t0);
    let z = a.s.last_zxid;
    assert!(!fold.due(t0, z, &a.s.tree));
    assert!(!fold.due(t0 + quiet, z, &a.s.tree), "under 1/8 of the base");
    a.create("/c-last", b"p");
    let z = a.s.last_zxid;
    assert!(!fold.due(t0 + quiet, z, &a.s.tree));
    assert!(fold.due(t0 + quiet * 2, z, &a.s.tree), "1/8 of the base");
    let _ = std::fs::remove_dir_all(dir);
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/storage/tests/fixtures/fk-snap.0000000100000042"
);

/// The file the sample state gives, byte for byte: a change to the payload layout, the
/// header or rkyv's format shows up here. After a deliberate change (with a new format
/// version and FORMAT.md updated), regenerate with `FK_BLESS=1`.
#[test]
fn fixture_file_is_stable_and_loads() {
    let s = sample();
    let dir = tempfile_dir();
    let (file, _) = write_state(&dir, &s).expect("write");
    let written = std::fs::read(&file.path).expect("read back");
    if std::env::var_os("FK_BLESS").is_some() {
        std::fs::write(FIXTURE, &written).expect("bless");
    }
    let fixture = std::fs::read(FIXTURE).expect("fixture present (FK_BLESS=1 writes it)");
    assert_eq!(written, fixture, "snapshot bytes changed: {FIXTURE}");
    // And the committed fixture loads into the same state.
    let fixture_dir = tempfile_dir();
    std::fs::copy(FIXTURE, fixture_dir.join("fk-snap.0000000100000042")).expect("copy");
    let loaded = load_newest(&fixture_dir, true).expect("load");
    assert!(loaded.rejected.is_empty());
    assert_eq!(view(&s), view(&loaded.state.expect("state")));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(fixture_dir);
}

#[test]
fn newest_corrupt_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile_dir();
    let mut s = sample();
    write_state(&dir, &s).expect("old");
    s.last_zxid += 10;
    let (newest, _) = write_state(&dir, &s).expect("new");
    let newest = newest.path;
    let mut bytes = std::fs::read(&newest).expect("read");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&newest, bytes).expect("damage");
    let loaded = load_newest(&dir, true).expect("load");
    assert_eq!(loaded.rejected.len(), 1);
    assert!(
        loaded.rejected[0].reason.contains("byte offset 48"),
        "{}",
        loaded.rejected[0].reason
    );
    assert_eq!(loaded.state.expect("older").last_zxid, 0x1_0000_0042);
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> PathBuf {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "fk-snap-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The archived sizes FORMAT.md states (rkyv 0.8: little-endian, 64-bit
/// relative pointers, aligned).
#[test]
fn archived_layout_matches_format_md() {
    use std::mem::{align_of, size_of};
    let sizes = [
        (
            size_of::<ArchivedSnapshotRoot>(),
            align_of::<ArchivedSnapshotRoot>(),
        ),
        (
            size_of::<ArchivedSnapshotData>(),
            align_of::<ArchivedSnapshotData>(),
        ),
        (
            size_of::<ArchivedNodeData>(),
            align_of::<ArchivedNodeData>(),
        ),
        (
            size_of::<ArchivedSessionData>(),
            align_of::<ArchivedSessionData>(),
        ),
        (size_of::<ArchivedAclData>(), align_of::<ArchivedAclData>()),
    ];
    assert_eq!(sizes, [(240, 8), (232, 8), (64, 8), (48, 8), (40, 8)]);
    // Versions 2 to 4, read for conversion.
    use crate::core::payload::legacy::{
        ArchivedNodeDataV3, ArchivedNodeDataV4, ArchivedSnapshotDataV3, ArchivedSnapshotDataV4,
        ArchivedSnapshotRootV3, ArchivedSnapshotRootV4, ArchivedStatData,
    };
    let legacy = [
        size_of::<ArchivedSnapshotRootV3>(),
        size_of::<ArchivedSnapshotDataV3>(),
        size_of::<ArchivedNodeDataV3>(),
        size_of::<ArchivedStatData>(),
        size_of::<ArchivedSnapshotRootV4>(),
        size_of::<ArchivedSnapshotDataV4>(),
        size_of::<ArchivedNodeDataV4>(),
    ];
    assert_eq!(legacy, [128, 120, 128, 64, 160, 152, 80]);
}

/// The streaming writer's constants against rkyv's own types (sizes and field offsets).
#[test]
fn streaming_writer_constants_match_rkyv() {
    use crate::core::payload::stream as st;
    use std::mem::{offset_of, size_of};
    assert_eq!(size_of::<ArchivedSnapshotRoot>(), st::ROOT_BYTES);
    assert_eq!(size_of::<ArchivedSnapshotData>(), st::DATA_BYTES);
    assert_eq!(size_of::<ArchivedNodeData>(), st::NODE_BYTES);
    assert_eq!(size_of::<ArchivedSessionData>(), st::SESSION_BYTES);
    assert_eq!(size_of::<ArchivedAclData>(), st::ACL_BYTES);
    assert_eq!(offset_of!(ArchivedSnapshotRoot, digest), st::ROOT_DIGEST_AT);
    assert_eq!(offset_of!(ArchivedAclData, scheme), st::ACL_SCHEME_AT);
    assert_eq!(offset_of!(ArchivedAclData, id), st::ACL_ID_AT);
    assert_eq!(
        offset_of!(ArchivedSessionData, passwd),
        st::SESSION_PASSWD_AT
    );
    assert_eq!(
        offset_of!(ArchivedSessionData, ephemerals),
        st::SESSION_EPHEMERALS_AT
    );
    assert_eq!(
        offset_of!(ArchivedSnapshotData, extended_types),
        st::DATA_EXTENDED_TYPES_AT
    );
    assert_eq!(
        offset_of!(ArchivedSnapshotData, data_bytes),
        st::DATA_DATA_BYTES_AT
    );
    assert_eq!(offset_of!(ArchivedNodeData, version), st::NODE_FIELDS4_AT);
    assert_eq!(
        offset_of!(ArchivedNodeData, children_end) + 4,
        st::NODE_BYTES
    );
    let vecs = [
        offset_of!(ArchivedSnapshotData, records_pad),
        offset_of!(ArchivedSnapshotData, nodes),
        offset_of!(ArchivedSnapshotData, acls),
        offset_of!(ArchivedSnapshotData, heap),
        offset_of!(ArchivedSnapshotData, children),
        offset_of!(ArchivedSnapshotData, index),
        offset_of!(ArchivedSnapshotData, sessions),
        offset_of!(ArchivedSnapshotData, containers),
        offset_of!(ArchivedSnapshotData, extended_owners),
        offset_of!(ArchivedSnapshotData, owner_nodes),
        offset_of!(ArchivedSnapshotData, owners),
        offset_of!(ArchivedSnapshotData, pzxid_nodes),
        offset_of!(ArchivedSnapshotData, pzxids),
    ];
    assert_eq!(vecs, st::DATA_VECS_AT);
}

/// The oracle: the streamed payload of `s` is byte for byte rkyv's archive of
/// `SnapshotRoot::from_state(s)`, and passes the full validation.
pub(crate) fn assert_streams_as_rkyv(s: &DataState, what: &str) {
    let want = SnapshotRoot::from_state(s).to_bytes();
    let mut got = Vec::new();
    let len = match crate::core::payload::stream::write(s, &mut got) {
        Ok(len) => len,
        Err(e) => panic!("{what}: streaming writer refused: {e:?}"),
    };
    assert_eq!(len as usize, got.len(), "{what}: length");
    assert_eq!(got.len(), want.len(), "{what}: length against rkyv");
    if let Some(i) = got.iter().zip(want.iter()).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at byte {i} of {}: {:?} against rkyv's {:?}",
            got.len(),
            &got[i..(i + 16).min(got.len())],
            &want[i..(i + 16).min(want.len())]
        );
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&got);
    payload::validate(Path::new(what), &aligned).expect("streamed payload validates");
}

/// An ACL whose scheme and id are longer than rkyv's inline strings.
fn long_acl() -> Arc<[Acl]> {
    Arc::from(vec![
        Acl {
            perms: 5,
            id: Id {
                scheme: "a-scheme-longer-than-16".into(),
                id: "user:with-a-rather-long-digest-hash=".into(),
            },
        },
        Acl {
            perms: 1,
            id: Id {
                scheme: "ip".into(),
                id: "exactly-16-bytes".into(),
            },
        },
        Acl {
            perms: 2,
            id: Id {
                scheme: "".into(),
                id: "seventeen-bytes!!".into(),
            },
        },
    ])
}

/// A random state: nodes with null, empty or some data, shared, content-equal and
/// long-stringed ACLs, sessions with ephemerals, orphan ephemerals, containers and TTL
/// nodes, paths long and short (and with bytes sorting before `/`).
fn random_state(rng: &mut impl rand::Rng, extended: bool) -> DataState {
    let open = crate::core::sequencer::open_acl_unsafe();
    let mut s = DataState::new(open.clone(), extended);
    let shared_long = long_acl();
    let sids: Vec<i64> = (0..rng.random_range(0..4)).map(|k| 1000 + k).collect();
    for &sid in &sids {
        s.sessions
            .insert(sid, session(4000 + sid as i32, sid as u8));
    }
    let names = [
        "a",
        "a!",
        "b",
        "a-very-long-component-name-over-16",
        "z",
        "0",
    ];
    for k in 0..rng.random_range(0..60) {
        let depth = rng.random_range(1..4);
        let path: String = (0..depth)
            .map(|_| format!("/{}", names[rng.random_range(0..names.len())]))
            .collect();
        let parent = crate::core::path::parent(&path).to_string();
        if s.tree.contains(&path) || !s.tree.contains(&parent) {
            continue;
        }
        let acl = match rng.random_range(0..4) {
            0 => open.clone(),
            1 => shared_long.clone(),
            2 => long_acl(),
            _ => digest_acl(),
        };
        let data: Option<Vec<u8>> = match rng.random_range(0..3) {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(vec![k as u8; rng.random_range(1..40)]),
        };
        let owner = match rng.random_range(0..6) {
            0 if !sids.is_empty() => sids[rng.random_range(0..sids.len())],
            1 => CONTAINER_OWNER,
            2 => EXTENDED_MASK | 1000,
            3 => 77,
            _ => 0,
        };
        let z = k as i64 + 1;
        let path: Arc<str> = Arc::from(path);
        s.add_node(
            path.clone(),
            Node {
                data: data.map(Arc::from),
                acl,
                stat: NodeStat {
                    czxid: z,
                    mzxid: z,
                    pzxid: z,
                    ctime: 10 * z,
                    mtime: 10 * z,
                    ephemeral_owner: owner,
                    ..NodeStat::default()
                },
                children: Default::default(),
                digest: 0,
            },
            z,
        );
        let name: Arc<str> = Arc::from(crate::core::path::name(&path));
        s.update_node(&parent, z, |p| {
            p.children.insert(name);
            p.stat.cversion += 1;
        });
        s.last_zxid = z;
        index_owner(&mut s, &path, owner, extended);
    }
    s
}

#[test]
fn streamed_payload_is_rkyvs_for_the_sample_and_the_empty_tree() {
    assert_streams_as_rkyv(&sample(), "sample");
    let fresh = DataState::new(crate::core::sequencer::open_acl_unsafe(), true);
    assert_streams_as_rkyv(&fresh, "fresh");
    let mut no_ext = sample();
    no_ext.extended_types = false;
    assert_streams_as_rkyv(&no_ext, "sample without extended types");
    // Served from its own snapshot (all base), and with writes on top (base + overlay).
    let mut loaded = round_trip(&sample());
    assert_streams_as_rkyv(&loaded, "sample from its snapshot");
    let mut ops = Ops {
        s: loaded.clone(),
        zxid: loaded.last_zxid,
    };
    ops.create("/a/new", b"n");
    ops.set("/a/data", b"changed");
    ops.delete("/a/empty");
    loaded = ops.s;
    assert_streams_as_rkyv(&loaded, "sample with an overlay");
}

#[test]
fn streamed_payload_is_rkyvs_for_random_states_with_and_without_a_base() {
    use rand::{Rng, SeedableRng};
    for seed in 0..60u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = random_state(&mut rng, seed % 4 != 3);
        assert_streams_as_rkyv(&s, &format!("seed {seed}"));
        // On a base, with an overlay of random writes, frozen or not, then rebased.
        let dir = tempfile_dir();
        write_state(&dir, &s).expect("write");
        let loaded = load_newest(&dir, s.extended_types)
            .expect("load")
            .state
            .expect("state");
        let mut ops = Ops {
            zxid: loaded.last_zxid,
            s: loaded,
        };
        for _ in 0..rng.random_range(0..80) {
            ops.random(&mut rng);
        }
        assert_streams_as_rkyv(&ops.s, &format!("seed {seed} with an overlay"));
        if seed % 2 == 0 {
            let z = ops.s.last_zxid;
            ops.s.tree.freeze(z);
        }
        let (file, _) = write_state(&dir, &ops.s).expect("write");
        let base = Arc::new(
            Base::open(ferrokeeper_storage::snapshot::read(&file).expect("map")).expect("open"),
        );
        for _ in 0..rng.random_range(0..40) {
            ops.random(&mut rng);
        }
        ops.s.tree.rebase(base);
        assert_streams_as_rkyv(&ops.s, &format!("seed {seed} rebased"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn streaming_writer_refuses_a_drifted_digest_and_leaves_no_snapshot() {
    let mut s = sample();
    s.digest = s.digest.wrapping_add(1);
    let mut sink = Vec::new();
    match crate::core::payload::stream::write(&s, &mut sink) {
        Err(crate::core::payload::stream::StreamError::Invalid(e)) => {
            assert!(e.reason.contains("digest"), "{e}")
        }
        other => panic!("drifted digest written: {other:?}"),
    }
    let dir = tempfile_dir();
    let refused = write_state(&dir, &s);
    assert!(
        matches!(refused, Err(WriteError::Invalid(_))),
        "{refused:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert!(left.is_empty(), "a refused snapshot left {left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Files a node under its owner, as the apply of its create would: a container or TTL
/// node in its index, an ephemeral in its session's list (if the session exists).
fn index_owner(s: &mut DataState, path: &Arc<str>, owner: i64, extended: bool) {
    match owner_kind(owner, extended) {
        OwnerKind::Container => {
            s.containers.insert(path.clone());
        }
        OwnerKind::Ttl => {
            s.ttls.insert(path.clone());
        }
        OwnerKind::Normal => {
            if let Some(sess) = s.sessions.get_mut(&owner) {
                sess.ephemerals.insert(path.clone());
            }
        }
        OwnerKind::Void => {}
    }
}
