//! A varied tree written through [`Conn`], read back whole and compared: the round trips
//! of `tests/export.rs` (ZooKeeper → import → ferrokeeper → export → ZooKeeper) and
//! `tests/restore.rs` (AdminServer snapshot → restore) check that every znode comes
//! back with the same data, Stat and ACL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokeeper_net::records::{Acl, Stat};

use super::{digest_id, mode, open_acl, perms, world, Conn};

/// What a client sees of one znode.
pub type Seen = (Vec<u8>, Stat, Vec<Acl>);

/// A session; Java answers `ruok` before it serves sessions, and an ensemble member
/// without a leader yet refuses one (session id 0), so this retries.
pub async fn connect(addr: &str) -> Conn {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = Conn::connect(addr).await;
        if c.session_id != 0 {
            return c;
        }
        assert!(Instant::now() < deadline, "no session from {addr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Under `root`: persistent znodes with data of several sizes (`n00`…`n39`, some set
/// again, every seventh deleted), three sequential ones, `secret` under a digest ACL
/// (bob:secret), `ro` made read-only by setACL, ephemerals `eph0`…`eph4`; beside it a
/// container `<root>-cont` with a child and a TTL node `<root>-ttl`. Returns the session
/// that owns the ephemerals, open.
pub async fn write_varied(addr: &str, root: &str) -> Conn {
    let mut c = connect(addr).await;
    let bob = vec![Acl {
        perms: perms::ALL,
        id: digest_id("bob", "secret"),
    }];
    c.create(root, b"root", open_acl(), mode::PERSISTENT)
        .await
        .expect("root");
    for i in 0..40 {
        let p = format!("{root}/n{i:02}");
        c.create(&p, &vec![i as u8; i * 37], open_acl(), mode::PERSISTENT)
            .await
            .expect("create");
        if i % 3 == 0 {
            c.set_data(&p, format!("v{i}").as_bytes(), -1)
                .await
                .expect("set");
        }
        if i % 7 == 0 {
            c.delete(&p, -1).await.expect("delete");
        }
    }
    for _ in 0..3 {
        c.create(
            &format!("{root}/seq-"),
            b"s",
            open_acl(),
            mode::PERSISTENT_SEQUENTIAL,
        )
        .await
        .expect("sequential");
    }
    c.create(&format!("{root}/secret"), b"hidden", bob, mode::PERSISTENT)
        .await
        .expect("digest acl");
    c.create(&format!("{root}/ro"), b"r", open_acl(), mode::PERSISTENT)
        .await
        .expect("ro");
    c.set_acl(&format!("{root}/ro"), vec![world(perms::READ)], -1)
        .await
        .expect("set acl");
    for i in 0..5 {
        c.create(&format!("{root}/eph{i}"), b"e", open_acl(), mode::EPHEMERAL)
            .await
            .expect("ephemeral");
    }
    c.create_container(&format!("{root}-cont"), b"")
        .await
        .expect("container");
    c.create(
        &format!("{root}-cont/kid"),
        b"k",
        open_acl(),
        mode::PERSISTENT,
    )
    .await
    .expect("container child");
    c.create_ttl(
        &format!("{root}-ttl"),
        b"t",
        mode::PERSISTENT_WITH_TTL,
        3_600_000,
    )
    .await
    .expect("ttl");
    c
}

/// Every znode, read through a client authenticated as bob (who may read `secret`).
pub async fn read_tree(addr: &str) -> BTreeMap<String, Seen> {
    let mut c = connect(addr).await;
    assert_eq!(c.add_auth("digest", b"bob:secret").await, 0);
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let (data, stat) = c.get_data(&p, false).await.expect("get_data");
        let (acl, _) = c.get_acl(&p).await.expect("get_acl");
        for child in c.get_children(&p, false).await.expect("get_children") {
            stack.push(if p == "/" {
                format!("/{child}")
            } else {
                format!("{p}/{child}")
            });
        }
        out.insert(p, (data, stat, acl));
    }
    c.close().await;
    out
}

/// The two trees hold the same znodes with the same data, Stat and ACL, but for
/// `/zookeeper/config`, which holds each server's own ensemble text.
pub fn assert_same_tree(what: &str, want: &BTreeMap<String, Seen>, got: &BTreeMap<String, Seen>) {
    let comparable = |m: &BTreeMap<String, Seen>| -> BTreeMap<String, Seen> {
        m.iter()
            .filter(|(p, _)| p.as_str() != "/zookeeper/config")
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect()
    };
    let (want, got) = (comparable(want), comparable(got));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: paths"
    );
    for (p, seen) in &want {
        assert_eq!(Some(seen), got.get(p), "{what}: {p}");
    }
}
