//! Whole-directory scenarios on crafted files: each pins one rule of ZooKeeper's restore
//! (`FileTxnSnapLog.restore`, `DataTree.processTxn`, `ZooKeeperServer.loadData`).

use std::io::Write;
use std::path::{Path, PathBuf};

use ferrokeeper_net::codes::OpCode;
use ferrokeeper_net::jute::{Buffer, Encode, NullableBuffer};
use ferrokeeper_net::records::{
    Acl, CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, ErrorTxn, Id, MultiTxn,
    SetDataTxn, StatPersisted, Txn, TxnDigest, TxnHeader,
};

use super::snapshot::tests::{open_acl, stat, SnapWriter};
use super::txnlog::tests::{LogWriter, Nothing};
use super::*;

/// A scratch `dataDir` with a `version-2` inside, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "ferrokeeper-import-unit-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("version-2")).expect("mkdir");
        Dir(d)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join("version-2").join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }
    /// Imports with both paths (a [`DataState`] built on the heap, and the table
    /// written as a snapshot then replayed onto it mapped, which `ferrokeeper import`
    /// uses) and checks that they agree: the same error, or the same report and the same
    /// state, byte for byte as a snapshot payload.
    fn import(&self) -> Result<Imported, ImportError> {
        let heap = import_zookeeper(&self.0, None, &mut |_| {});
        let out = self.0.with_extension("out");
        let _ = std::fs::remove_dir_all(&out);
        let to = import_zookeeper_to(&self.0, None, &ImportOptions::default(), &out, &mut |_| {});
        agree(&heap, to.as_ref().map(|t| &t.imported));
        if let Ok(to) = &to {
            let snaps = crate::snapshot::snap_dir(&out);
            let names: Vec<_> = std::fs::read_dir(&snaps).expect("snap dir").collect();
            assert_eq!(names.len(), usize::from(to.file.is_some()), "{names:?}");
            let left = std::fs::read_dir(out.join("ferrokeeper"))
                .expect("out")
                .count();
            assert_eq!(left, 1, "only the snap directory is left");
        }
        let _ = std::fs::remove_dir_all(&out);
        heap
    }
}

/// The two import paths' results are the same (see [`Dir::import`]).
fn agree(heap: &Result<Imported, ImportError>, to: Result<&Imported, &ImportError>) {
    match (heap, to) {
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (Ok(a), Ok(b)) => {
            assert_eq!(
                (a.last_zxid, a.snapshot_zxid, a.dbid, a.txns_replayed),
                (b.last_zxid, b.snapshot_zxid, b.dbid, b.txns_replayed)
            );
            assert_eq!(a.files, b.files);
            assert_eq!(a.digest, b.digest);
            assert_eq!(a.dead_session_ephemerals, b.dead_session_ephemerals);
            assert_eq!(a.state.ttls, b.state.ttls);
            assert_eq!(a.state.quota_paths, b.state.quota_paths);
            let bytes = |s: &crate::core::state::DataState| {
                let mut v = Vec::new();
                crate::core::payload::stream::write(s, &mut v).expect("payload");
                v
            };
            assert!(bytes(&a.state) == bytes(&b.state), "states differ");
        }
        (a, b) => panic!("the paths disagree: {a:?} against {b:?}"),
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn digest_acl() -> Vec<Acl> {
    vec![Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: "bob:x/ZbAZCCaQvt63xqvHzfMs0HsSU=".into(),
        },
    }]
}

/// A snapshot with the system nodes, `sessions`, ACL 1 = a digest ACL, and
/// `nodes` (path, acl id, stat), all with data "d"; its digest block is the empty one
/// (zxid 0) ZooKeeper writes when it has recorded no digest.
fn snapshot(sessions: &[(i64, i32)], nodes: &[(&str, i64, StatPersisted)]) -> Vec<u8> {
    let mut w = SnapWriter::new(2);
    let mut root = stat(0);
    root.cversion = 1;
    w.sessions(sessions)
        .acls(&[(1, digest_acl())])
        .node("", b"", -1, root)
        .node("/zookeeper", b"", -1, stat(0))
        .node("/zookeeper/quota", b"", -1, stat(0))
        .node("/zookeeper/config", b"", -1, stat(0));
    for (path, acl, st) in nodes {
        w.node(path, b"d", *acl, *st);
    }
    w.end_nodes().seal().digest(0, 0);
    w.out
}

fn rec(zxid: i64, client: i64, op: OpCode, record: &impl Encode) -> Vec<u8> {
    let mut b = TxnHeader {
        client_id: client,
        cxid: 7,
        zxid,
        time: 10_000 + zxid,
        r#type: op.code(),
    }
    .to_bytes();
    record.encode(&mut b);
    b
}

fn create(path: &str, parent_cversion: i32, ephemeral: bool) -> CreateTxn {
    CreateTxn {
        path: path.into(),
        data: NullableBuffer(Some(b"new".to_vec())),
        acl: open_acl(),
        ephemeral,
        parent_c_version: parent_cversion,
    }
}

fn log(records: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let mut w = LogWriter::new();
    let offsets = records.iter().map(|r| w.record(r)).collect();
    w.pad(1024);
    (w.out, offsets)
}

/// DataTree.processTxn: replaying a create the fuzzy snapshot already holds is a
/// NodeExists that only moves the parent's cversion/pzxid forward, and only for
/// `OpCode.create`; a delete of a node already gone still moves the parent's pzxid.
#[test]
fn fuzzy_snapshot_replay_mirrors_zookeeper() {
    let dir = Dir::new("fuzzy");
    // Snapshot "taken at" zxid 5 but already holding /a (zxid 6) and /b (zxid 7).
    dir.write(
        "snapshot.5",
        &snapshot(&[], &[("/a", -1, stat(6)), ("/b", 1, stat(7))]),
    );
    let create2 = rec(7, 0x77, OpCode::Create2, &create("/b", 3, false));
    let (bytes, _) = log(&[
        rec(5, 0x77, OpCode::Create, &create("/old", 1, false)), // covered by the snapshot
        rec(6, 0x77, OpCode::Create, &create("/a", 2, false)),
        create2,
        rec(
            8,
            0x77,
            OpCode::Delete,
            &DeleteTxn {
                path: "/gone".into(),
            },
        ),
        rec(
            9,
            0x77,
            OpCode::SetData,
            &SetDataTxn {
                path: "/a".into(),
                data: NullableBuffer(Some(b"v2".to_vec())),
                version: 1,
            },
        ),
        rec(10, 0x77, OpCode::Create, &create("/c", 4, false)),
    ]);
    dir.write("log.1", &bytes);
    let imp = dir.import().expect("import");
    assert_eq!((imp.snapshot_zxid, imp.last_zxid), (5, 10));
    assert_eq!(imp.txns_replayed, 5);
    assert_eq!(imp.state.last_zxid, 10);
    let root = imp.state.tree.get("/").expect("root");
    // create /a (OpCode.create, NodeExists) raised cversion 1 → 2 with pzxid 6; create2
    // /b (NodeExists) did nothing; delete of the missing /gone moved pzxid to 8; create
    // /c applied normally.
    assert_eq!(root.stat().cversion, 4);
    assert_eq!({ root.stat().pzxid }, 10);
    let names: Vec<&str> = root.children().collect();
    assert_eq!(names, ["a", "b", "c", "zookeeper"]);
    let a = imp.state.tree.get("/a").expect("/a");
    assert_eq!(
        (a.data(), a.stat().version, a.stat().mzxid),
        (Some(&b"v2"[..]), 1, 9)
    );
    assert_eq!({ a.stat().czxid }, 6);
    let b = imp.state.tree.get("/b").expect("/b");
    assert_eq!(&**b.acl(), &digest_acl()[..]);
    assert_eq!(
        b.data().unwrap_or_default(),
        b"d",
        "create2 on an existing node changes nothing"
    );
    assert!(imp.state.tree.get("/old").is_none());
    match &imp.files[..] {
        [FileReport {
            used: FileUse::Snapshot { nodes: 6, .. },
            ..
        }, FileReport {
            used:
                FileUse::Log {
                    txns_replayed: 5,
                    txns_skipped: 1,
                    end: LogEnd::Padding { .. },
                    ..
                },
            ..
        }] => {}
        other => panic!("unexpected file report {other:#?}"),
    }
}

/// The parts of the fix-up, one at a time: NodeExists on `create` moves the parent
/// forward; a missing-node delete bumps pzxid only forward.
#[test]
fn node_exists_fixup_and_pzxid_only_move_forward() {
    let dir = Dir::new("forward");
    let mut root_later = stat(0);
    root_later.cversion = 9;
    root_later.pzxid = 50;
    let mut w = SnapWriter::new(2);
    w.sessions(&[])
        .acls(&[])
        .node("", b"", -1, root_later)
        .node("/a", b"", -1, stat(6))
        .end_nodes()
        .seal();
    dir.write("snapshot.5", &w.out);
    let (bytes, _) = log(&[
        rec(6, 1, OpCode::Create, &create("/a", 2, false)),
        rec(7, 1, OpCode::Delete, &DeleteTxn { path: "/x".into() }),
    ]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    let root = imp.state.tree.get("/").expect("root");
    assert_eq!((root.stat().cversion, root.stat().pzxid), (9, 50));
    // The snapshot lacked /zookeeper: ferrokeeper's system nodes fill in.
    assert!(imp.state.tree.get("/zookeeper/config").is_some());
    assert!(root.has_child("zookeeper"));
}

/// Sessions: ZooKeeper's derived passwords; ephemerals of a session the snapshot does
/// not list are held until its createSession is replayed; closeSession deletes them;
/// ephemerals whose session never appears are deleted at the end (`loadData`).
#[test]
fn sessions_orphans_and_dead_sessions() {
    let dir = Dir::new("sessions");
    let mut e1 = stat(6);
    e1.ephemeral_owner = 0x98; // session created after the snapshot's session list
    let mut e2 = stat(7);
    e2.ephemeral_owner = 0x99; // a session that is gone
    let mut e3 = stat(4);
    e3.ephemeral_owner = 0x42;
    dir.write(
        "snapshot.5",
        &snapshot(
            &[(0x42, 30_000)],
            &[("/e1", -1, e1), ("/e2", -1, e2), ("/e3", -1, e3)],
        ),
    );
    let (bytes, _) = log(&[
        rec(
            6,
            0x98,
            OpCode::CreateSession,
            &CreateSessionTxn { time_out: 6000 },
        ),
        rec(7, 0x98, OpCode::Create, &create("/e4", 5, true)),
        rec(
            8,
            0x42,
            OpCode::CloseSession,
            &CloseSessionTxn {
                paths2_delete: vec!["/e3".into()],
            },
        ),
    ]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    let s = &imp.state.sessions;
    assert!(!s.contains_key(&0x42), "closed");
    let s98 = s.get(&0x98).expect("session 0x98");
    assert_eq!(s98.timeout_ms, 6000);
    assert_eq!(s98.passwd, zookeeper_session_passwd(0x98));
    let eph: Vec<&str> = s98.ephemerals.iter().map(|p| &**p).collect();
    assert_eq!(eph, ["/e1", "/e4"]);
    assert!(imp.state.tree.get("/e3").is_none());
    assert!(
        imp.state.tree.get("/e2").is_none(),
        "dead session's node deleted"
    );
    assert_eq!(imp.dead_session_ephemerals, 1);
    // The dead session's delete happened at the last zxid.
    assert_eq!({ imp.state.tree.get("/").expect("root").stat().pzxid }, 8);
    assert_eq!(imp.last_zxid, 8);
}

/// 3.5 closeSession (no record) deletes the session's ephemerals from the index.
#[test]
fn close_session_without_record() {
    let dir = Dir::new("close35");
    let mut e = stat(4);
    e.ephemeral_owner = 0x42;
    dir.write("snapshot.5", &snapshot(&[(0x42, 30_000)], &[("/e", -1, e)]));
    let (bytes, _) = log(&[rec(6, 0x42, OpCode::CloseSession, &Nothing)]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert!(imp.state.tree.get("/e").is_none());
    assert!(imp.state.sessions.is_empty());
}

/// A failed multi changes nothing; a successful one applies each op with one zxid.
#[test]
fn multi_all_or_nothing() {
    let dir = Dir::new("multi");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let sub = |op: OpCode, r: &dyn Fn(&mut Vec<u8>)| {
        let mut data = Vec::new();
        r(&mut data);
        Txn {
            r#type: op.code(),
            data: Buffer(data),
        }
    };
    let ok = MultiTxn {
        txns: vec![
            sub(OpCode::Create, &|o| create("/m", 2, false).encode(o)),
            sub(OpCode::Create2, &|o| create("/m/n", 1, false).encode(o)),
        ],
    };
    let failed = MultiTxn {
        txns: vec![
            sub(OpCode::Create, &|o| create("/f", 3, false).encode(o)),
            sub(OpCode::Error, &|o| ErrorTxn { err: -101 }.encode(o)),
        ],
    };
    let (bytes, _) = log(&[
        rec(6, 1, OpCode::Multi, &ok),
        rec(7, 1, OpCode::Multi, &failed),
    ]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert_eq!(
        { imp.state.tree.get("/m/n").expect("/m/n").stat().czxid },
        6
    );
    assert!(imp.state.tree.get("/f").is_none());
    assert_eq!(imp.last_zxid, 7);
}

/// FileTxnIterator: a torn last record ends the newest log; the txns before it count.
#[test]
fn torn_tail_in_newest_log_is_tolerated() {
    let dir = Dir::new("torn");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let (first, _) = log(&[rec(6, 1, OpCode::Create, &create("/a", 2, false))]);
    dir.write("log.6", &first);
    let mut w = LogWriter::new();
    w.record(&rec(7, 1, OpCode::Create, &create("/b", 3, false)));
    let torn = w.record(&rec(8, 1, OpCode::Create, &create("/c", 4, false)));
    w.out.truncate(w.out.len() - 3);
    dir.write("log.7", &w.out);
    let imp = dir.import().expect("import");
    assert_eq!(imp.last_zxid, 7);
    assert!(imp.state.tree.get("/c").is_none());
    let ends: Vec<LogEnd> = imp
        .files
        .iter()
        .filter_map(|f| match f.used {
            FileUse::Log { end, .. } => Some(end),
            _ => None,
        })
        .collect();
    assert!(matches!(ends[0], LogEnd::Padding { .. }));
    assert_eq!(
        ends[1],
        LogEnd::Torn {
            offset: torn as u64
        }
    );
}

/// "CRC check failed": corruption before the tail is an error naming file and offset.
#[test]
fn bad_checksum_mid_log_names_file_and_offset() {
    let dir = Dir::new("crc");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let (mut bytes, offsets) = log(&[
        rec(6, 1, OpCode::Create, &create("/a", 2, false)),
        rec(7, 1, OpCode::Create, &create("/b", 3, false)),
        rec(8, 1, OpCode::Create, &create("/c", 4, false)),
    ]);
    bytes[offsets[1] + 40] ^= 0xff;
    let file = dir.write("log.6", &bytes);
    match dir.import() {
        Err(ImportError::LogChecksum {
            file: f, offset, ..
        }) => {
            assert_eq!((f, offset), (file, offsets[1] as u64))
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

/// Missing txns (a purged log) are an error, not a silently shorter history.
#[test]
fn zxid_gap_is_an_error() {
    let dir = Dir::new("gap");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let (bytes, _) = log(&[rec(7, 1, OpCode::Create, &create("/a", 2, false))]);
    dir.write("log.7", &bytes);
    assert!(matches!(
        dir.import(),
        Err(ImportError::LogGap {
            previous: 5,
            found: 7,
            ..
        })
    ));
    // A new epoch may start anywhere.
    let dir = Dir::new("epoch");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let (bytes, _) = log(&[rec(1 << 32 | 1, 1, OpCode::Create, &create("/a", 2, false))]);
    dir.write("log.100000001", &bytes);
    assert_eq!(dir.import().expect("import").last_zxid, 1 << 32 | 1);
}

/// FileSnap.deserialize: a snapshot whose seal fails is skipped for the next older one,
/// and the logs are replayed from the older one's zxid.
#[test]
fn falls_back_to_an_older_snapshot() {
    let dir = Dir::new("fallback");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let mut newer = snapshot(&[], &[("/a", -1, stat(6))]);
    let at = newer.len() / 2;
    newer[at] ^= 0x10;
    dir.write("snapshot.6", &newer);
    dir.write("snapshot.7", b"ZKSN not finished"); // fails the quick tail check
    let (bytes, _) = log(&[rec(6, 1, OpCode::Create, &create("/a", 2, false))]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert_eq!((imp.snapshot_zxid, imp.last_zxid), (5, 6));
    assert!(imp.state.tree.get("/a").is_some());
    let rejected: Vec<i64> = imp
        .files
        .iter()
        .filter_map(|f| match f.used {
            FileUse::RejectedSnapshot { zxid, .. } => Some(zxid),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, [7, 6]);

    let dir = Dir::new("nosnap");
    dir.write("snapshot.7", b"ZKSN not finished");
    assert!(matches!(
        dir.import(),
        Err(ImportError::NoValidSnapshot { .. })
    ));
    std::fs::remove_file(dir.0.join("version-2/snapshot.7")).expect("rm");
    assert!(matches!(dir.import(), Err(ImportError::NoSnapshot { .. })));
    assert!(matches!(
        import_zookeeper(&dir.0.join("nowhere"), None, &mut |_| {}),
        Err(ImportError::NoVersionDir { .. })
    ));
}

/// A node whose ACL id the snapshot cache lacks takes the ACL of the replayed create;
/// unresolved, it is an error naming the node.
#[test]
fn unknown_acl_ref() {
    let dir = Dir::new("acl");
    dir.write("snapshot.5", &snapshot(&[], &[("/a", 77, stat(6))]));
    let (bytes, _) = log(&[rec(6, 1, OpCode::Create, &create("/a", 2, false))]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert_eq!(
        &**imp.state.tree.get("/a").expect("/a").acl(),
        &open_acl()[..]
    );

    let dir = Dir::new("acl-missing");
    dir.write("snapshot.5", &snapshot(&[], &[("/a", 77, stat(6))]));
    match dir.import() {
        Err(ImportError::UnknownAcl { path, acl_ref, .. }) => {
            assert_eq!((&*path, acl_ref), ("/a", 77))
        }
        other => panic!("expected an ACL error, got {other:?}"),
    }
}

/// The digest check reports (does not raise) a tree that differs from ZooKeeper's.
#[test]
fn digest_mismatch_is_reported() {
    let dir = Dir::new("digest");
    dir.write("snapshot.5", &snapshot(&[], &[]));
    let mut r = rec(6, 1, OpCode::Create, &create("/a", 2, false));
    TxnDigest {
        version: 2,
        tree_digest: 12345,
    }
    .encode(&mut r);
    let (bytes, _) = log(&[r]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert!(matches!(
        imp.digest,
        DigestCheck::Mismatch {
            zxid: 6,
            expected: 12345,
            ..
        }
    ));
}

/// Containers and TTL nodes land in their indexes, from the snapshot and from replay.
#[test]
fn container_and_ttl_indexes() {
    let dir = Dir::new("indexes");
    let mut c = stat(3);
    c.ephemeral_owner = crate::core::state::CONTAINER_OWNER;
    let mut t = stat(4);
    t.ephemeral_owner = crate::core::state::EXTENDED_MASK | 5000;
    dir.write(
        "snapshot.5",
        &snapshot(&[], &[("/c", -1, c), ("/t", -1, t)]),
    );
    let ttl = ferrokeeper_net::records::CreateTtlTxn {
        path: "/t2".into(),
        data: NullableBuffer(Some(Vec::new())),
        acl: open_acl(),
        parent_c_version: 4,
        ttl: 100,
    };
    let (bytes, _) = log(&[
        rec(6, 1, OpCode::CreateTtl, &ttl),
        rec(7, 1, OpCode::Delete, &DeleteTxn { path: "/c".into() }),
    ]);
    dir.write("log.6", &bytes);
    let imp = dir.import().expect("import");
    assert!(imp.state.containers.is_empty());
    let ttls: Vec<&str> = imp.state.ttls.iter().map(|p| &**p).collect();
    assert_eq!(ttls, ["/t", "/t2"]);
    assert_eq!(
        {
            imp.state
                .tree
                .get("/t2")
                .expect("/t2")
                .stat()
                .ephemeral_owner
        },
        crate::core::state::EXTENDED_MASK | 100
    );
}

/// `snapshot.<zxid>.gz` and `.snappy` read like plain ones; progress ends at its total.
#[test]
fn compressed_snapshots() {
    let plain = snapshot(&[], &[("/a", 1, stat(4))]);
    let dir = Dir::new("gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).expect("gzip");
    dir.write("snapshot.5.gz", &gz.finish().expect("gzip"));
    let mut last = None;
    let imp = import_zookeeper(&dir.0, None, &mut |p| last = Some(p)).expect("import gz");
    dir.import().expect("import gz both ways");
    assert_eq!(
        &**imp.state.tree.get("/a").expect("/a").acl(),
        &digest_acl()[..]
    );
    let last = last.expect("progress");
    assert_eq!(last.phase, ImportPhase::Done);
    assert_eq!(last.bytes_done, last.bytes_total);

    let dir = Dir::new("snappy");
    let mut raw = super::format::SNAPPY_MAGIC.to_vec();
    raw.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    let block = snap::raw::Encoder::new()
        .compress_vec(&plain)
        .expect("snappy");
    raw.extend_from_slice(&(block.len() as i32).to_be_bytes());
    raw.extend_from_slice(&block);
    dir.write("snapshot.5.snappy", &raw);
    let imp = dir.import().expect("import snappy");
    assert!(imp.state.tree.get("/a").is_some());
    assert!(matches!(
        imp.files[0].used,
        FileUse::Snapshot {
            compression: Compression::Snappy,
            ..
        }
    ));
}

/// The separate `dataLogDir`, and `version-2` given directly.
#[test]
fn separate_log_dir() {
    let data = Dir::new("sep-data");
    let logs = Dir::new("sep-logs");
    data.write("snapshot.5", &snapshot(&[], &[]));
    let (bytes, _) = log(&[rec(6, 1, OpCode::Create, &create("/a", 2, false))]);
    logs.write("log.6", &bytes);
    let imp =
        import_zookeeper(&data.0.join("version-2"), Some(&logs.0), &mut |_| {}).expect("import");
    assert_eq!(imp.last_zxid, 6);
}

/// No byte of a snapshot, flipped, makes the loader panic: it loads or it fails.
#[test]
fn corrupt_snapshot_bytes_never_panic() {
    let mut e = stat(4);
    e.ephemeral_owner = 0x42;
    let good = snapshot(&[(0x42, 30_000)], &[("/a", 1, stat(3)), ("/a/e", -1, e)]);
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            let _ = replay::Loader::from_snapshot(Path::new("s"), &bad, true, &mut |_, _| {});
        }
    }
}

/// Every byte of a snapshot flipped: the table path (`ferrokeeper import`) fails with
/// the same error as the heap path, or loads the same state ([`Dir::import`] compares).
#[test]
fn corrupt_snapshot_bytes_import_alike_both_ways() {
    let mut e = stat(4);
    e.ephemeral_owner = 0x42;
    let good = snapshot(
        &[(0x42, 30_000)],
        &[("/a", 1, stat(3)), ("/a/e", -1, e), ("/b", -1, stat(5))],
    );
    let dir = Dir::new("flips");
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            dir.write("snapshot.5", &bad);
            let _ = dir.import();
        }
    }
}

/// Random txn streams, replayed on a fuzzy snapshot, never reach `apply` with a txn that
/// breaks its invariants (it would panic), and leave the tree and its indexes coherent:
/// every node's parent lists it, every listed child exists, every indexed ephemeral,
/// container and TTL node exists with the owner its index claims.
#[test]
fn replay_keeps_the_state_coherent() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::txnlog::LogTxn;
    use crate::core::codec::{CreateKind, TxnRecord};
    use crate::core::state::{owner_kind, OwnerKind};

    const PATHS: [&str; 6] = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/a/e"];
    let path = (0..PATHS.len()).prop_map(|i| PATHS[i].to_string());
    let kind = prop_oneof![
        Just(CreateKind::Create),
        Just(CreateKind::Create2),
        Just(CreateKind::Ttl(1000)),
        Just(CreateKind::Container),
    ];
    let simple = prop_oneof![
        4 => (kind, path.clone(), any::<bool>(), -1i32..6).prop_map(|(kind, path, ephemeral, pcv)| {
            TxnRecord::Create {
                kind,
                path,
                data: Some(b"x".to_vec()),
                acl: open_acl(),
                ephemeral,
                parent_cversion: pcv,
            }
        }),
        3 => path.clone().prop_map(|path| TxnRecord::Delete { path }),
        1 => path.clone().prop_map(|path| TxnRecord::SetData { path, data: Some(b"y".to_vec()), version: 3 }),
        1 => path.clone().prop_map(|path| TxnRecord::SetAcl { path, acl: digest_acl(), version: 2 }),
        1 => path.clone().prop_map(|path| TxnRecord::Check { path }),
    ];
    let op = prop_oneof![
        6 => simple.clone(),
        1 => (-101i32..0).prop_map(|err| TxnRecord::Error { err }),
        1 => Just(TxnRecord::CreateSession { timeout_ms: 5000, passwd: None }),
        1 => proptest::option::of(proptest::collection::vec(path, 0..3))
            .prop_map(|paths| TxnRecord::CloseSession { paths }),
        1 => proptest::collection::vec(simple, 1..4).prop_map(TxnRecord::Multi),
    ];
    let txn = (op, 1i64..4);

    // A fuzzy start: /a/b owned by session 2, which the snapshot does not list yet.
    let mut eph = stat(4);
    eph.ephemeral_owner = 2;
    let start = snapshot(
        &[(1, 30_000)],
        &[("/a", -1, stat(2)), ("/a/b", 1, eph), ("/d", -1, stat(3))],
    );

    fn coherent(s: &crate::core::state::DataState, cleaned: bool) -> Result<(), TestCaseError> {
        for p in s.tree.paths() {
            let node = s.tree.get(p).expect("listed path");
            for c in node.children() {
                let child = crate::core::path::join(p, c);
                prop_assert!(s.tree.get(&child).is_some(), "{child} listed, missing");
            }
            if p != "/" {
                let parent = s.tree.get(crate::core::path::parent(p));
                prop_assert!(
                    parent.is_some_and(|n| n.has_child(crate::core::path::name(p))),
                    "{p} not listed by its parent"
                );
            }
            // After the dead-session cleanup, every ephemeral is indexed under a live
            // session, as after ZooKeeper's loadData.
            let o = node.stat().ephemeral_owner;
            if cleaned && owner_kind(o, true) == OwnerKind::Normal {
                prop_assert!(
                    s.sessions.get(&o).is_some_and(|x| x.ephemerals.contains(p)),
                    "{} owned by {} is not indexed",
                    p,
                    o
                );
            }
        }
        for (id, session) in s.sessions.iter() {
            for p in session.ephemerals.iter() {
                let owner = s.tree.get(p).map(|n| n.stat().ephemeral_owner);
                prop_assert_eq!(owner, Some(*id), "{} indexed under {}", p, id);
            }
        }
        for p in s.containers.iter() {
            let owner = s.tree.get(p).map(|n| n.stat().ephemeral_owner);
            prop_assert_eq!(
                owner.map(|o| owner_kind(o, true)),
                Some(OwnerKind::Container)
            );
        }
        for p in s.ttls.iter() {
            let owner = s.tree.get(p).map(|n| n.stat().ephemeral_owner);
            prop_assert_eq!(owner.map(|o| owner_kind(o, true)), Some(OwnerKind::Ttl));
        }
        Ok(())
    }

    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(txn, 1..60), |txns| {
            let (mut loader, _) =
                replay::Loader::from_snapshot(Path::new("s"), &start, true, &mut |_, _| {})
                    .expect("snapshot");
            for (i, (op, client)) in txns.into_iter().enumerate() {
                let t = LogTxn {
                    offset: 0,
                    header: TxnHeader {
                        client_id: client,
                        cxid: i as i32,
                        zxid: 10 + i as i64,
                        time: 0,
                        r#type: 0,
                    },
                    op,
                    digest: None,
                };
                // A conflict (deleting a node with children, which this generator can
                // make under an ephemeral) is a clean error that ends the import.
                if loader.replay(Path::new("log"), &t).is_err() {
                    return Ok(());
                }
                coherent(&loader.state, false)?;
            }
            if loader.remove_dead_session_ephemerals().is_ok() {
                coherent(&loader.state, true)?;
            }
            Ok(())
        })
        .expect("replay stays coherent");
}

/// The oracle for the table source: the payload written from ZooKeeper's records
/// (`table::Table`, what `ferrokeeper import` writes) is byte for byte the one written
/// from the state the heap loader builds of the same snapshot, over sessions,
/// ephemerals (one orphaned), a container, a TTL node, two ACLs, null data and a path
/// the snapshot holds twice.
#[test]
fn table_source_writes_the_states_bytes() {
    use crate::core::payload::stream::{write, write_from};
    let (mut eph, mut orphan, mut container, mut ttl) = (stat(4), stat(5), stat(6), stat(7));
    eph.ephemeral_owner = 0x42;
    orphan.ephemeral_owner = 0x43;
    container.ephemeral_owner = crate::core::state::CONTAINER_OWNER;
    ttl.ephemeral_owner = crate::core::state::EXTENDED_MASK | 1000;
    let mut w = SnapWriter::new(2);
    w.sessions(&[(0x42, 30_000)])
        .acls(&[(1, digest_acl()), (2, open_acl())])
        .node("", b"", -1, stat(0))
        .node("/zookeeper", b"", -1, stat(0))
        .node("/a", b"x", 1, stat(3))
        .node("/a/e", b"", 2, eph)
        .node("/a/o", &[7u8; 3000], 1, orphan)
        .node("/c", b"c", -1, container)
        .node("/c/t", b"t", -1, ttl)
        .node("/a", b"again", 2, stat(8))
        .end_nodes()
        .seal();
    let bytes = w.out.clone();
    // A null-data node: the jute buffer of length -1.
    let mut with_null = bytes[..bytes.len() - super::format::SEAL_LEN - 5].to_vec();
    "/n".to_string().encode(&mut with_null);
    (-1i32).encode(&mut with_null);
    (-1i64).encode(&mut with_null);
    stat(9).encode(&mut with_null);
    "/".to_string().encode(&mut with_null);
    let sum = super::format::adler32(&with_null);
    sum.encode(&mut with_null);
    "/".to_string().encode(&mut with_null);
    for (name, snap) in [("plain", &bytes), ("null data", &with_null)] {
        let dir = Dir::new(&format!("oracle-{}", name.len()));
        let file = dir.write("snapshot.9", snap);
        let (loader, _) =
            replay::Loader::from_snapshot(&file, snap, true, &mut |_, _| {}).expect("heap");
        let mut state = loader.state;
        state.last_zxid = 9;
        let temp = dir.0.join("decompressed");
        let (table, _) =
            table::Table::load(&file, Compression::None, 9, &temp, true, &mut |_, _| {})
                .expect("table");
        let (mut want, mut got) = (Vec::new(), Vec::new());
        write(&state, &mut want).expect("from the state");
        write_from(&table, &mut got).expect("from the table");
        assert!(want == got, "{name}: payloads differ");
        assert_eq!(table.orphans.len(), 1, "{name}");
    }
}
