//! The AdminServer of an ensemble member (issue #12): every command `/commands` lists,
//! asked of the leader and of a follower of a three-member ferrokeeper ensemble and of a
//! three-member Apache ZooKeeper 3.8 ensemble (Debian's package, with its Jetty and
//! Jackson jars), after the same small workload, compared key by key at every depth and,
//! where the value is the ensemble's shape rather than a reading (roles, ids, addresses,
//! counts of members), value by value.
//!
//! What differs on purpose is pinned in the constants below, each with its reason; a key
//! or value that changes on either side fails the test until they say why.
//! `tests/ensemble_ops.rs` compares `mntr`'s keys in detail; `monitor` is checked here
//! only for keys Java lacks.
//!
//! Ports: client, quorum and election ports and the AdminServer's come from
//! `common::ensemble::range_ports`.

mod common;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::ensemble::{java_available, range_ports, Ensemble, EnsembleOptions};
use common::Kind;
use raw::{mode, open_acl, Conn};
use serde_json::Value;

/// Commands ferrokeeper lists that Java 3.8 does not: ZooKeeper 3.9's, which need the
/// `Authorization` header (401 without it, as on a standalone server).
const FK_ONLY_COMMANDS: &[&str] = &["restore", "snapshot"];

/// Commands whose keys name data, not fields: the JVM's properties and environment, and
/// the metrics (`monitor`: checked for keys Java lacks; `tests/ensemble_ops.rs` pins the
/// rest).
const DATA_KEYED: &[&str] = &["environment", "system_properties", "monitor"];

/// Commands whose nested keys are data (session ids, expiry times, paths): compared by
/// their top-level keys. Java's leader keeps a closed session's expiry bucket until it
/// passes, so even the closed workload session shows there.
const DATA_NESTED: &[&str] = &["dump", "watches", "watches_by_path"];

/// Values that differ on purpose, as (command, key path, why).
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "initial_configuration",
        "initial_configuration",
        "Java's QuorumPeerMain never calls QuorumPeer.setInitialConfig, so every Java \
         ensemble member answers null (3.8.0 to master); ferrokeeper answers the file's \
         text, as a standalone ZooKeeper does",
    ),
    (
        "last_snapshot",
        "zxid",
        "ZooKeeper snapshots when it starts and when a new epoch begins (zxid 0 or \
         0x100000000); ferrokeeper does not, so a \
         fresh member has no snapshot (-1, printed as ffffffffffffffff)",
    ),
    (
        "zabstate",
        "last_zxid, zab_epoch",
        "ferrokeeper's zxids are one counter across leaders with epoch 0 (Raft's term \
         plays the epoch's part; README, Ensembles): the counter agrees, the epoch does not",
    ),
    (
        "configuration",
        "data_dir, data_log_dir",
        "ZooKeeper prints <dataDir>/version-2; ferrokeeper the directory its own \
         snapshots live in (src/admin/stats.rs ConfStats)",
    ),
    (
        "server_stats",
        "version",
        "ferrokeeper's version string names itself after the ZooKeeper version it answers as",
    ),
];

fn get(url: &str) -> (u16, String) {
    let r = match ureq::get(url).timeout(Duration::from_secs(30)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    (r.status(), r.into_string().unwrap_or_default())
}

/// A three-member ensemble of `kind`, each member with its AdminServer on its own port.
fn start(kind: Kind) -> (Ensemble, Vec<u16>) {
    let admin = range_ports(3);
    let mut options = EnsembleOptions::config(&[
        ("forceSync", "no"),
        ("admin.enableServer", "true"),
        ("admin.serverAddress", "127.0.0.1"),
    ]);
    options.member_config = admin
        .iter()
        .map(|p| vec![("admin.serverPort".to_string(), p.to_string())])
        .collect();
    (Ensemble::start_with(kind, 3, &options), admin)
}

/// One session on the leader: a create, ten setData and a watch, then its close.
fn workload(ens: &Ensemble, leader: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // A member that has just been elected may still refuse sessions: retried until
        // the deadline (for a broken setup, not a timing assertion).
        let addr = ens.address(leader);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut c = loop {
            let c = Conn::connect(&addr).await;
            if c.session_id != 0 {
                break c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no session from {addr}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        c.create("/ops", b"x", open_acl(), mode::PERSISTENT)
            .await
            .expect("create");
        for i in 0..10 {
            c.set_data("/ops", format!("value {i}").as_bytes(), -1)
                .await
                .expect("set");
        }
        c.close().await;
    });
    ens.wait_converged();
}

/// The primary names `/commands` lists.
fn listed(base: &str) -> BTreeSet<String> {
    let (status, page) = get(base);
    assert_eq!(status, 200, "{page}");
    page.lines()
        .filter_map(|l| l.strip_prefix("<a href=\"/commands/"))
        .filter_map(|l| l.split_once('"'))
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Every command's reply from one member, by primary name.
fn replies(base: &str, names: &BTreeSet<String>) -> BTreeMap<String, (u16, Value)> {
    names
        .iter()
        .map(|n| {
            let (status, body) = get(&format!("{base}/{n}"));
            let json = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{base}/{n}: not JSON ({e}):\n{body}"));
            (n.clone(), (status, json))
        })
        .collect()
}

/// Every key path of `v` ("a.b.c"), objects only (array elements are not walked: their
/// keys are those of their first element, compared where it matters below).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            key_paths(child, &path, out);
            out.insert(path);
        }
    }
}

/// `v` at `path` ("a.b").
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// Replaces a member's port numbers and ids in `v` by names relative to the leader
/// (`<m0.client>` is the leader's client port, `m1` the follower asked), so that two
/// ensembles on different ports, led by different ids, compare. `id_field` says that
/// `v` is a server id.
fn normalize(v: &Value, side: &Side, id_field: bool) -> Value {
    match v {
        Value::String(s) => {
            let mut s = s.clone();
            for (p, label) in &side.ports {
                s = s.replace(&format!(":{p}"), &format!(":{label}"));
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| normalize(x, side, false)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    // voting_view is keyed by server id.
                    let key = k
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| side.ids.get(&id))
                        .cloned()
                        .unwrap_or_else(|| k.clone());
                    (key, normalize(x, side, false))
                })
                .collect(),
        ),
        Value::Number(n) => {
            let id = n
                .as_i64()
                .filter(|_| id_field)
                .and_then(|id| side.ids.get(&id));
            let port = n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .and_then(|p| side.ports.iter().find(|(x, _)| *x == p));
            match (id, port) {
                (Some(label), _) => Value::String(label.clone()),
                (None, Some((_, label))) => Value::String(label.clone()),
                _ => v.clone(),
            }
        }
        _ => v.clone(),
    }
}

/// One ensemble's view: the replies of its leader and of a follower, and the names of
/// its members' ports and ids relative to the leader.
struct Side {
    leader: BTreeMap<String, (u16, Value)>,
    follower: BTreeMap<String, (u16, Value)>,
    listed: BTreeSet<String>,
    /// Every port of the ensemble (client, quorum, election per member) with its name.
    ports: Vec<(u16, String)>,
    /// Every member's id with its name.
    ids: BTreeMap<i64, String>,
}

fn side(kind: Kind) -> Side {
    let (ens, admin) = start(kind);
    let leader = ens.leader();
    workload(&ens, leader);
    let follower = (leader + 1) % 3;
    let base = |i: usize| format!("http://127.0.0.1:{}/commands", admin[i]);
    let names = listed(&base(leader));
    assert_eq!(names, listed(&base(follower)), "{kind:?}: listings differ");
    let rel = |i: usize| format!("m{}", (i + 3 - leader) % 3);
    let cfg = std::fs::read_to_string(ens.members[0].dir.join("zoo.cfg")).expect("zoo.cfg");
    let mut ports = Vec::new();
    let mut ids = BTreeMap::new();
    for (i, m) in ens.members.iter().enumerate() {
        ids.insert(m.id as i64, rel(i));
        ports.push((m.client_port, format!("<{}.client>", rel(i))));
        // `server.N=host:quorum:election`.
        let line = cfg
            .lines()
            .find_map(|l| l.strip_prefix(&format!("server.{}=", m.id)))
            .expect("server line");
        for (p, what) in line.split(':').skip(1).zip(["quorum", "election"]) {
            if let Ok(p) = p.parse() {
                ports.push((p, format!("<{}.{what}>", rel(i))));
            }
        }
    }
    ports.push((admin[leader], "<m0.admin>".into()));
    Side {
        leader: replies(&base(leader), &names),
        follower: replies(&base(follower), &names),
        listed: names,
        ports,
        ids,
    }
}

/// Key paths of the reply whose values are the ensemble's shape and must be equal
/// (after [`normalize`]), by command.
const SAME_VALUES: &[(&str, &[&str])] = &[
    ("leader", &["is_leader", "leader_id", "leader_ip", "error"]),
    ("voting_view", &["current_config"]),
    (
        "zabstate",
        &[
            "myid",
            "is_leader",
            "voting",
            "zabstate",
            "quorum_address",
            "election_address",
            "client_address",
        ],
    ),
    ("observers", &["synced_observers", "observers"]),
    (
        "configuration",
        &[
            "client_port",
            "tick_time",
            "max_client_cnxns",
            "min_session_timeout",
            "max_session_timeout",
            "server_id",
            "client_port_listen_backlog",
        ],
    ),
    ("is_read_only", &["read_only"]),
    (
        "server_stats",
        &["read_only", "server_stats.server_state", "node_count"],
    ),
    (
        "stats",
        &["read_only", "server_stats.server_state", "node_count"],
    ),
    ("hash", &["digests"]),
    ("ruok", &["error"]),
    ("observer_connection_stat_reset", &["error"]),
    ("connection_stat_reset", &["error"]),
    ("stat_reset", &["error"]),
    ("dirs", &["error"]),
    ("watch_summary", &["num_paths", "num_total_watches"]),
];

/// Compares one role's replies; returns the differences found.
fn compare(role: &str, java: &Side, fk: &Side) -> Vec<String> {
    let (j, f) = match role {
        "leader" => (&java.leader, &fk.leader),
        _ => (&java.follower, &fk.follower),
    };
    let mut diffs = Vec::new();
    for (name, (jstatus, jv)) in j {
        let Some((fstatus, fv)) = f.get(name) else {
            diffs.push(format!("{role} {name}: ferrokeeper does not list it"));
            continue;
        };
        if jstatus != fstatus {
            diffs.push(format!("{role} {name}: status {jstatus} vs {fstatus}"));
        }
        let (mut jk, mut fk_keys) = (BTreeSet::new(), BTreeSet::new());
        key_paths(jv, "", &mut jk);
        key_paths(fv, "", &mut fk_keys);
        if DATA_NESTED.contains(&name.as_str()) {
            jk.retain(|k| !k.contains('.'));
            fk_keys.retain(|k| !k.contains('.'));
        }
        if DATA_KEYED.contains(&name.as_str()) {
            if name == "monitor" {
                let extra: Vec<&String> = fk_keys
                    .difference(&jk)
                    .filter(|k| !k.starts_with("fk_"))
                    .collect();
                if !extra.is_empty() {
                    diffs.push(format!("{role} monitor: keys Java lacks {extra:?}"));
                }
            }
            continue;
        }
        if jk != fk_keys {
            diffs.push(format!(
                "{role} {name}: keys only Java {:?}, only ferrokeeper {:?}",
                jk.difference(&fk_keys).collect::<Vec<_>>(),
                fk_keys.difference(&jk).collect::<Vec<_>>()
            ));
        }
        for (cmd, paths) in SAME_VALUES {
            if cmd != name {
                continue;
            }
            for path in *paths {
                let id = matches!(*path, "leader_id" | "myid" | "server_id");
                let (a, b) = (
                    normalize(at(jv, path), java, id),
                    normalize(at(fv, path), fk, id),
                );
                if a != b {
                    diffs.push(format!("{role} {name}.{path}: Java {a} ferrokeeper {b}"));
                }
            }
        }
    }
    for name in f.keys().filter(|n| !j.contains_key(*n)) {
        if !FK_ONLY_COMMANDS.contains(&name.as_str()) {
            diffs.push(format!("{role} {name}: Java does not list it"));
        }
    }
    diffs
}

/// Values that must agree within one side: what a leader and a follower say of each
/// other and of the quorum.
fn check_roles(kind: &str, s: &Side) {
    let (l, f) = (&s.leader, &s.follower);
    let v = |m: &BTreeMap<String, (u16, Value)>, cmd: &str, path: &str| at(&m[cmd].1, path).clone();
    assert_eq!(v(l, "leader", "is_leader"), Value::Bool(true), "{kind}");
    assert_eq!(v(f, "leader", "is_leader"), Value::Bool(false), "{kind}");
    assert_eq!(
        v(l, "leader", "leader_id"),
        v(f, "leader", "leader_id"),
        "{kind}: both name one leader"
    );
    assert_eq!(
        v(l, "leader", "leader_id"),
        v(l, "zabstate", "myid"),
        "{kind}"
    );
    assert_eq!(
        v(l, "server_stats", "server_stats.server_state"),
        "leader",
        "{kind}"
    );
    assert_eq!(
        v(f, "server_stats", "server_stats.server_state"),
        "follower",
        "{kind}"
    );
    for m in [l, f] {
        assert_eq!(v(m, "zabstate", "zabstate"), "broadcast", "{kind}");
        assert_eq!(v(m, "zabstate", "voting"), Value::Bool(true), "{kind}");
        let view = v(m, "voting_view", "current_config");
        assert_eq!(view.as_object().map(|o| o.len()), Some(3), "{kind}: {view}");
        // The counter part of the zxid agrees with the one srvr shows.
        let counter = v(m, "zabstate", "zab_counter");
        let zxid = v(m, "server_stats", "server_stats.last_processed_zxid");
        assert_eq!(
            counter.as_i64(),
            zxid.as_i64().map(|z| z & 0xffff_ffff),
            "{kind}"
        );
    }
    // The leader prints its proposal sizes; a follower has none to print.
    assert!(
        l["server_stats"].1.get("proposal_stats").is_some(),
        "{kind}"
    );
    assert!(
        f["server_stats"].1.get("proposal_stats").is_none(),
        "{kind}"
    );
}

#[test]
fn ensemble_admin_commands_match_java() {
    if !java_available() {
        eprintln!("SKIPPED: java or /usr/share/java/zookeeper.jar is missing");
        return;
    }
    if let Some(missing) = common::missing_java_admin_jar() {
        eprintln!("SKIPPED: {missing} is missing (apt-get install libjetty9-java libjackson2-databind-java)");
        return;
    }
    let java = side(Kind::JavaZk);
    let fk = side(Kind::Ferrokeeper);
    check_roles("Java", &java);
    check_roles("ferrokeeper", &fk);
    let fk_only: Vec<&String> = fk.listed.difference(&java.listed).collect();
    assert_eq!(fk_only, FK_ONLY_COMMANDS, "commands only ferrokeeper lists");
    for name in FK_ONLY_COMMANDS {
        for m in [&fk.leader, &fk.follower] {
            assert_eq!(m[*name].0, 401, "{name} without Authorization");
        }
    }
    let mut diffs = compare("leader", &java, &fk);
    diffs.extend(compare("follower", &java, &fk));
    // The deliberate differences are still there (a fix on either side shows here).
    for (l, f) in [(&java.leader, &fk.leader), (&java.follower, &fk.follower)] {
        let v =
            |m: &BTreeMap<String, (u16, Value)>, cmd: &str, path: &str| at(&m[cmd].1, path).clone();
        assert_eq!(
            v(l, "initial_configuration", "initial_configuration"),
            Value::Null
        );
        assert!(v(f, "initial_configuration", "initial_configuration")
            .as_str()
            .is_some_and(|t| t.contains("server.1=")));
        assert_ne!(v(l, "last_snapshot", "zxid"), "ffffffffffffffff");
        assert_eq!(v(f, "last_snapshot", "zxid"), "ffffffffffffffff");
        assert_eq!(v(l, "zabstate", "zab_epoch"), 1);
        assert_eq!(v(f, "zabstate", "zab_epoch"), 0);
        assert!(v(l, "configuration", "data_dir")
            .as_str()
            .is_some_and(|d| d.ends_with("/version-2")));
    }
    for (cmd, path, why) in DELIBERATE {
        eprintln!("deliberate: {cmd} {path}: {why}");
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
