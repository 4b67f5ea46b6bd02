//! Differential test of the tree digest: the same operations go to Apache ZooKeeper 3.8
//! and to ferrokeeper, and after each step the digests both report through the `hash`
//! four-letter word are checked.
//!
//! ZooKeeper's digest covers ctime and mtime (`DigestCalculator`: path, data, czxid,
//! mzxid, pzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner), and the two
//! servers stamp txns with their own clocks, so their digests cannot be equal. What is
//! compared instead, after every step:
//!
//! 1. both servers are at the same zxid and print the same `hash` lines (zxids);
//! 2. Java's digest equals `ferrokeeper::core::digest` computed over Java's tree as a client
//!    reads it (getData's Stat carries every field the digest uses): the calculator is
//!    Java's;
//! 3. ferrokeeper's digest equals the same calculation over ferrokeeper's tree: the
//!    digest ferrokeeper keeps incrementally is the one its tree gives;
//! 4. the two trees give the same digest once times are set to 0 and session ids are
//!    replaced by the session's slot: everything else the digest covers is equal.
//!
//! ZooKeeper prints a digest only for zxids that are multiples of 128
//! (`DataTree.DIGEST_LOG_INTERVAL`), so each step ends by padding both servers with
//! deletes of a missing node (each an error txn with its own zxid, changing no node) up
//! to the next multiple of 128; the last `hash` line is then the digest right after the
//! step.
//!
//! Visible stats are turned back into what the digest hashes (`StatPersisted`): the
//! stored cversion counts creates, a client sees `2 × stored − numChildren`; containers
//! and TTL nodes show owner 0 where the digest uses their special owner, which the test
//! knows from the paths it created.

mod common;
mod raw;

use std::collections::BTreeMap;

use common::{Kind, Server};
use ferrokeeper::core::digest::node_digest;
use ferrokeeper::core::tree::NodeStat;
use ferrokeeper_net::records::{DeleteRequest, Stat};
use raw::{mode, op, Conn, MultiOp};

/// Both servers get this: containers and TTL nodes must not be reaped during the run
/// (the reaper's timing would differ between the two); fsync off keeps the padding fast.
const CONFIG: &[(&str, &str)] = &[
    ("znode.container.checkIntervalMs", "3600000"),
    ("forceSync", "no"),
    ("snapCount", "100"),
];

/// `ZooDefs.ZOOKEEPER_NODE_SUBTREE`'s parent: its children are not digested.
const SYSTEM: &str = "/zookeeper";
/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
const CONTAINER_OWNER: i64 = i64::MIN;
/// The TTL node's TTL, and its owner as `EphemeralType.TTL.toEphemeralOwner` stores it.
const TTL_MS: i64 = 600_000;
const TTL_OWNER: i64 = (0xff00_0000_0000_0000_u64 as i64) | TTL_MS;

/// One server under test and the sessions the steps use on it.
struct Side {
    name: &'static str,
    port: u16,
    conns: Vec<Conn>,
}

/// What a step does; run identically on both sides.
type Step = fn(&mut Vec<Conn>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;

fn open() -> Vec<ferrokeeper_net::records::Acl> {
    raw::open_acl()
}

fn steps() -> Vec<(&'static str, Step)> {
    vec![
        ("persistent creates", |c| {
            Box::pin(async move {
                c[0].create("/dg", b"top", open(), mode::PERSISTENT)
                    .await
                    .expect("create /dg");
                c[0].create("/dg/p", b"p-data", open(), mode::PERSISTENT)
                    .await
                    .expect("create /dg/p");
                c[0].create2("/dg/empty", b"", open(), mode::PERSISTENT)
                    .await
                    .expect("create2 /dg/empty");
            })
        }),
        ("sequential creates", |c| {
            Box::pin(async move {
                for _ in 0..3 {
                    c[0].create("/dg/s-", b"seq", open(), mode::PERSISTENT_SEQUENTIAL)
                        .await
                        .expect("create /dg/s-");
                }
            })
        }),
        ("ephemeral creates by session 1", |c| {
            Box::pin(async move {
                c[1].create("/dg/e", b"eph", open(), mode::EPHEMERAL)
                    .await
                    .expect("create /dg/e");
                c[1].create("/dg/p/es-", b"eseq", open(), mode::EPHEMERAL_SEQUENTIAL)
                    .await
                    .expect("create /dg/p/es-");
            })
        }),
        ("container and TTL creates", |c| {
            Box::pin(async move {
                c[0].create_container("/dg/c", b"box")
                    .await
                    .expect("create /dg/c");
                c[0].create("/dg/c/child", b"in-box", open(), mode::PERSISTENT)
                    .await
                    .expect("create /dg/c/child");
                c[0].create_ttl("/dg/t", b"ttl", mode::PERSISTENT_WITH_TTL, TTL_MS)
                    .await
                    .expect("create /dg/t");
            })
        }),
        ("setData, setACL, also on the root", |c| {
            Box::pin(async move {
                c[0].set_data("/dg/p", b"p-data-2", -1)
                    .await
                    .expect("set /dg/p");
                c[0].set_data("/dg/p", b"p-data-3", 1)
                    .await
                    .expect("set /dg/p again");
                c[0].set_acl("/dg/empty", vec![raw::world(raw::perms::ALL)], -1)
                    .await
                    .expect("setACL /dg/empty");
                // The root is digested under "" (ZooKeeper's alias); a change to it by
                // its "/" name must update the same entry.
                c[0].set_data("/", b"root-data", -1).await.expect("set /");
            })
        }),
        ("deletes", |c| {
            Box::pin(async move {
                c[0].delete("/dg/s-0000000003", -1)
                    .await
                    .expect("delete /dg/s-0000000003");
                c[0].delete("/dg/c/child", -1)
                    .await
                    .expect("delete /dg/c/child");
            })
        }),
        ("multi, applied and failed", |c| {
            Box::pin(async move {
                let create = |path: &str, data: &[u8], flags: i32| MultiOp::Create {
                    opcode: op::CREATE,
                    path: path.into(),
                    data: data.to_vec(),
                    acl: open(),
                    flags,
                    ttl: -1,
                };
                let (err, _) = c[0]
                    .multi(&[
                        create("/dg/m", b"m1", mode::PERSISTENT),
                        MultiOp::SetData {
                            path: "/dg/m".into(),
                            data: b"m2".to_vec(),
                            version: 0,
                        },
                        create("/dg/m/q-", b"q", mode::PERSISTENT_SEQUENTIAL),
                        MultiOp::Delete {
                            path: "/dg/s-0000000004".into(),
                            version: -1,
                        },
                        MultiOp::Check {
                            path: "/dg/p".into(),
                            version: 2,
                        },
                    ])
                    .await;
                assert_eq!(err, 0, "multi");
                let (_, results) = c[0]
                    .multi(&[
                        create("/dg/never", b"x", mode::PERSISTENT),
                        MultiOp::Delete {
                            path: "/dg/missing".into(),
                            version: -1,
                        },
                    ])
                    .await;
                // A failed multi still takes a zxid (an error txn) and changes nothing.
                assert!(
                    results.contains(&raw::OpResult::Error(raw::err::NO_NODE)),
                    "failing multi: {results:?}"
                );
            })
        }),
        ("close of session 1 deletes its ephemerals", |c| {
            Box::pin(async move {
                c[1].close().await;
            })
        }),
    ]
}

/// Deletes a missing node on `conn`: an error txn. Returns its zxid.
async fn error_txn(conn: &mut Conn) -> i64 {
    let r = conn
        .call(
            op::DELETE,
            &DeleteRequest {
                path: "/dg-missing".into(),
                version: -1,
            },
        )
        .await;
    assert_eq!(r.err, raw::err::NO_NODE, "padding delete");
    r.zxid
}

/// Pads with error txns until the last zxid is a multiple of 128; returns it.
async fn pad_to_digest_interval(conn: &mut Conn) -> i64 {
    let mut zxid = error_txn(conn).await;
    while zxid % 128 != 0 {
        zxid = error_txn(conn).await;
    }
    zxid
}

/// `hash`'s lines as (zxid, digest).
fn hash_lines(port: u16) -> Vec<(i64, i64)> {
    let text = common::four_letter_word(port, "hash").expect("hash");
    text.lines()
        .map(|l| {
            let (z, d) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("hash line {l:?}"));
            (
                i64::from_str_radix(z, 16).unwrap_or_else(|e| panic!("zxid in {l:?}: {e}")),
                d.parse().unwrap_or_else(|e| panic!("digest in {l:?}: {e}")),
            )
        })
        .collect()
}

/// Every node as a client reads it: path → (data, stat). The children of `/zookeeper`
/// are left out (not digested; `/zookeeper/config` differs between servers anyway).
async fn read_tree(conn: &mut Conn) -> BTreeMap<String, (Vec<u8>, Stat)> {
    let mut out = BTreeMap::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = conn
            .get_data(&path, false)
            .await
            .unwrap_or_else(|e| panic!("getData {path}: {e}"));
        if path != SYSTEM {
            for child in conn
                .get_children(&path, false)
                .await
                .unwrap_or_else(|e| panic!("getChildren {path}: {e}"))
            {
                todo.push(if path == "/" {
                    format!("/{child}")
                } else {
                    format!("{path}/{child}")
                });
            }
        }
        out.insert(path, (data, stat));
    }
    out
}

/// The tree digest of a tree read by a client. `owner_of` gives the stored owner for a
/// path and its visible owner; `times` false sets ctime and mtime to 0.
fn digest_of(
    tree: &BTreeMap<String, (Vec<u8>, Stat)>,
    owner_of: &dyn Fn(&str, i64) -> i64,
    times: bool,
) -> i64 {
    tree.iter().fold(0i64, |sum, (path, (data, s))| {
        let stat = NodeStat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: if times { s.ctime } else { 0 },
            mtime: if times { s.mtime } else { 0 },
            version: s.version,
            // DataNode.copyStat shows 2 × stored − numChildren.
            cversion: (s.cversion + s.num_children) / 2,
            aversion: s.aversion,
            ephemeral_owner: owner_of(path, s.ephemeral_owner),
            pzxid: s.pzxid,
        };
        sum.wrapping_add(node_digest(path, Some(data), &stat))
    })
}

/// The stored owner of the nodes whose visible owner is 0 but stored one is not.
fn stored_owner(path: &str, visible: i64) -> i64 {
    match path {
        "/dg/c" => CONTAINER_OWNER,
        "/dg/t" => TTL_OWNER,
        _ => visible,
    }
}

#[test]
fn digest_matches_java_after_every_step() {
    let java = Server::start(Kind::JavaZk, CONFIG);
    let mut fk = Server::start(Kind::Ferrokeeper, CONFIG);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut sides = Vec::new();
        for (name, server) in [("java", &java), ("ferrokeeper", &fk)] {
            let mut conns = Vec::new();
            for _ in 0..2 {
                conns.push(Conn::connect(&server.address()).await);
            }
            sides.push(Side {
                name,
                port: server.port,
                conns,
            });
        }
        // Session ids differ between the servers; slot numbers do not.
        let slots: Vec<BTreeMap<i64, i64>> = sides
            .iter()
            .map(|s| {
                s.conns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.session_id, i as i64 + 1))
                    .collect()
            })
            .collect();

        let mut all = vec![("start", None)];
        all.extend(steps().into_iter().map(|(n, s)| (n, Some(s))));
        for (name, step) in all {
            let mut zxids = Vec::new();
            let mut hashes = Vec::new();
            let mut normalized = Vec::new();
            for (i, side) in sides.iter_mut().enumerate() {
                if let Some(step) = step {
                    step(&mut side.conns).await;
                }
                let zxid = pad_to_digest_interval(&mut side.conns[0]).await;
                let lines = hash_lines(side.port);
                let (last_zxid, reported) = *lines
                    .last()
                    .unwrap_or_else(|| panic!("{}: no hash line after `{name}`", side.name));
                assert_eq!(
                    last_zxid, zxid,
                    "{}: last hash line is not the step's",
                    side.name
                );
                let tree = read_tree(&mut side.conns[0]).await;
                let computed = digest_of(&tree, &stored_owner, true);
                assert_eq!(
                    reported, computed,
                    "{}: after `{name}` (zxid 0x{zxid:x}) the reported digest is not the one \
                     its tree gives; tree: {tree:#?}",
                    side.name
                );
                let slot_of = |path: &str, visible: i64| match slots[i].get(&visible) {
                    Some(slot) => *slot,
                    None => stored_owner(path, visible),
                };
                normalized.push((digest_of(&tree, &slot_of, false), tree));
                zxids.push(zxid);
                hashes.push(lines);
            }
            assert_eq!(zxids[0], zxids[1], "zxids differ after `{name}`");
            assert_eq!(
                hashes[0].iter().map(|l| l.0).collect::<Vec<_>>(),
                hashes[1].iter().map(|l| l.0).collect::<Vec<_>>(),
                "hash zxids differ after `{name}`"
            );
            assert_eq!(
                normalized[0].0, normalized[1].0,
                "after `{name}` the trees differ in what the digest covers\n--- java\n{:#?}\n--- ferrokeeper\n{:#?}",
                normalized[0].1, normalized[1].1
            );
        }
    });

    // After a crash, ferrokeeper serves from its newest snapshot (which stores the
    // digest; `snapCount` made it take some) plus the log replayed after it: the digest
    // it reports must still be the one its tree gives.
    fk.kill9_and_restart();
    rt.block_on(async {
        let mut conn = Conn::connect(&fk.address()).await;
        let zxid = pad_to_digest_interval(&mut conn).await;
        let lines = hash_lines(fk.port);
        let (last_zxid, reported) = *lines.last().expect("hash lines after the restart");
        assert_eq!(last_zxid, zxid);
        let tree = read_tree(&mut conn).await;
        assert_eq!(
            reported,
            digest_of(&tree, &stored_owner, true),
            "after the restart the reported digest is not the one the tree gives"
        );
    });
}
