//! Dynamic reconfiguration (issue #10 item 2): the same scenario against a ferrokeeper
//! ensemble and a Java ZooKeeper 3.8 ensemble, through Java's `zkCli.sh` (`reconfig
//! -add/-remove`, `config`) and the Rust `zookeeper-client` crate, on loopback.
//!
//! 1. Refusals, compared line by line with Java's zkCli output: no super user
//!    (Insufficient permission), a stale `-v` (BadVersion), a joiner without its client
//!    port and a membership left with one voter (BadArguments).
//! 2. A fourth server, started from a config that lists the ensemble and itself, is
//!    added as a participant under a client write load; it follows and serves the tree.
//! 3. The leader is removed; a new leader is elected among the rest.
//! 4. A participant becomes an observer (a joint change in Raft terms when combined
//!    with another change; here with the removal of a second server in one request).
//! 5. No acknowledged write of the load is lost; `/zookeeper/config` lists the same
//!    servers on every member (its `version=` is the reconfig's zxid, which differs
//!    between the two servers' zxid schemes, so versions are compared by presence);
//!    each member's zoo.cfg points at a `zoo.cfg.dynamic.<version>` holding the lines.
//! 6. ferrokeeper only: a restarted member comes back with the new membership.
//! 7. kazoo's and Curator's reconfig calls give the same transcripts on both servers
//!    (`tests/cross/kazoo_reconfig.py`, `tests/cross/CuratorReconfig.java`).
//!
//! Skipped, with a message, where java or Debian's ZooKeeper is missing (Java half).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{
    java_available, member_command, range_ports, Ensemble, EnsembleOptions, FORM_LIMIT,
};
use common::Kind;
use zookeeper_client::{Acls, Client, CreateMode};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// `super:secret`, digested as ZooKeeper's DigestAuthenticationProvider does.
const SUPER_DIGEST: &str = "super:lK75jTNcA+U9vtVEw5vB51mj/w4=";

fn options() -> EnsembleOptions {
    EnsembleOptions::config(&[
        ("reconfigEnabled", "true"),
        ("tickTime", "500"),
        ("DigestAuthenticationProvider.superDigest", SUPER_DIGEST),
    ])
}

/// Runs `commands` in one zkCli.sh session against `server` and returns the lines the
/// commands printed (banners, log lines and watcher events left out).
fn zkcli(server: &str, commands: &[&str]) -> Vec<String> {
    let mut input = String::new();
    for c in commands {
        input.push_str(c);
        input.push('\n');
    }
    input.push_str("quit\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let in_path = dir.path().join("in");
    std::fs::write(&in_path, input).expect("write input");
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("clone output");
    let status = Command::new(ZKCLI)
        .arg("-server")
        .arg(server)
        .stdin(std::fs::File::open(&in_path).expect("open input"))
        .stdout(out)
        .stderr(err)
        .status()
        .expect("run zkCli.sh");
    assert!(
        status.success() || status.code().is_some(),
        "zkCli.sh: {status}"
    );
    let text = std::fs::read_to_string(&out_path).expect("read output");
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('[')
                && !l.contains("INFO")
                && !l.contains("WARN")
                && !l.starts_with("WATCHER::")
                && !l.starts_with("WatchedEvent")
                && !l.starts_with("Connecting to")
                && !l.starts_with("Welcome to ZooKeeper")
                && !l.starts_with("JLine")
                && !l.contains("SLF4J")
        })
        .map(str::to_string)
        .collect()
}

/// The `server.N=` lines of a configuration text, sorted.
fn server_lines(text: &[String]) -> Vec<String> {
    let mut v: Vec<String> = text
        .iter()
        .filter(|l| l.starts_with("server."))
        .cloned()
        .collect();
    v.sort();
    v
}

/// Starts a fourth member whose zoo.cfg lists the ensemble's servers and itself as a
/// participant (what ZooKeeper's documentation asks of a joining server).
fn start_joiner(ensemble: &mut Ensemble, kind: Kind) -> (String, u16) {
    let ports = range_ports(3);
    let first = std::fs::read_to_string(ensemble.members[0].dir.join("zoo.cfg")).expect("cfg");
    // The members may have moved their server lines into a dynamic file already.
    let mut servers = String::new();
    for line in first.lines() {
        if line.starts_with("server.") {
            servers.push_str(line);
            servers.push('\n');
        } else if let Some(file) = line.strip_prefix("dynamicConfigFile=") {
            servers.push_str(&std::fs::read_to_string(file).expect("dynamic file"));
            servers.push('\n');
        }
    }
    let spec = format!(
        "127.0.0.1:{}:{}:participant;127.0.0.1:{}",
        ports[1], ports[2], ports[0]
    );
    servers.push_str(&format!("server.4={spec}\n"));
    let mdir = ensemble.dir.join("m4");
    let data = mdir.join("data");
    std::fs::create_dir_all(&data).expect("m4 data");
    std::fs::write(data.join("myid"), "4\n").expect("myid");
    let mut lines: Vec<(String, String)> = vec![
        ("tickTime".into(), "500".into()),
        ("initLimit".into(), "10".into()),
        ("syncLimit".into(), "5".into()),
        ("4lw.commands.whitelist".into(), "*".into()),
        ("admin.enableServer".into(), "false".into()),
        ("reconfigEnabled".into(), "true".into()),
    ];
    lines.push((
        "DigestAuthenticationProvider.superDigest".into(),
        SUPER_DIGEST.into(),
    ));
    let mut cfg = String::new();
    for (k, v) in &lines {
        cfg.push_str(&format!("{k}={v}\n"));
    }
    cfg.push_str(&format!("dataDir={}\n{servers}", data.display()));
    let cfg_path = mdir.join("zoo.cfg");
    std::fs::write(&cfg_path, cfg).expect("m4 zoo.cfg");
    let mut member = member_command(
        kind,
        4,
        ports[0],
        &mdir,
        &cfg_path,
        &lines,
        &EnsembleOptions::default(),
    );
    member.spawn();
    ensemble.members.push(member);
    (spec, ports[0])
}

/// Creates `/load/<n>` one after another through `connect` until told to stop, and
/// records each acknowledged path.
fn write_load(
    connect: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let open = CreateMode::Persistent.with_acls(Acls::anyone_all());
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(zk) = Client::connector()
                    .with_session_timeout(Duration::from_secs(10))
                    .with_connection_timeout(Duration::from_secs(2))
                    .connect(&connect)
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = zk.create("/load", b"", &open).await;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/load/n{n:06}");
                    n += 1;
                    match zk.create(&path, b"x", &open).await {
                        Ok(_) => acked.lock().expect("acked").push(path),
                        // Unknown outcome (connection lost): not acknowledged.
                        Err(_) => break,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
    })
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + FORM_LIMIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one run printed, for comparing the two servers.
struct Transcript {
    refusals: Vec<String>,
    added: Vec<String>,
    removed_leader: Vec<String>,
    demoted: Vec<String>,
}

fn scenario(kind: Kind) -> Transcript {
    let mut ensemble = Ensemble::start_with(kind, 3, &options());
    let a0 = ensemble.address(0);
    let refusals = zkcli(
        &a0,
        &[
            "reconfig -remove 3",
            "addauth digest super:secret",
            "reconfig -remove 3 -v 1",
            "reconfig -add server.5=127.0.0.1:1:2",
            "reconfig -remove 1,2",
        ],
    );

    // 2. A joiner, added under load.
    let (spec4, _) = start_joiner(&mut ensemble, kind);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load = write_load(ensemble.connect_string(), stop.clone(), acked.clone());
    std::thread::sleep(Duration::from_secs(1));
    let add = format!("reconfig -add server.4={spec4}");
    // Java answers NewConfigNoQuorum until the joiner has connected and synced; ask
    // again a few times, as for the removal below.
    let mut added = Vec::new();
    for _ in 0..10 {
        added = zkcli(&a0, &["addauth digest super:secret", &add]);
        if !added
            .iter()
            .any(|l| l.starts_with("No quorum of new config"))
        {
            break;
        }
        eprintln!("{kind:?}: add answered {added:?}; again");
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + FORM_LIMIT;
    while ensemble.mode(3).as_deref() != Some("follower") {
        // CI saw this time out once (session 8, under load, not reproduced): say what
        // the add answered and what the members logged.
        assert!(
            Instant::now() < deadline,
            "{kind:?}: timed out waiting for member 4 to follow; the add answered {added:?}\n{}",
            ensemble.logs_tail(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let on4 = zkcli(&ensemble.address(3), &["config"]);
    assert_eq!(
        server_lines(&on4).len(),
        4,
        "{kind:?}: member 4 serves the new config: {on4:?}"
    );

    // 3. Remove the leader, through a member that stays.
    let leader = ensemble.leader();
    let via = (0..4).find(|i| *i != leader).expect("another member");
    let remove = format!("reconfig -remove {}", leader + 1);
    // Right after the add, the joiner may not count as synced yet (NewConfigNoQuorum)
    // or the change may still be pending (ReconfigInProgress): ask again a few times.
    let mut removed_leader = Vec::new();
    for _ in 0..10 {
        removed_leader = zkcli(
            &ensemble.address(via),
            &["addauth digest super:secret", &remove],
        );
        if removed_leader.first().map(String::as_str) == Some("Committed new configuration:")
            || removed_leader.iter().any(|l| l.contains("ConnectionLoss"))
        {
            break;
        }
        eprintln!("{kind:?}: remove answered {removed_leader:?}; again");
        std::thread::sleep(Duration::from_millis(500));
    }
    let rest: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    wait_for("a leader among the rest", || {
        rest.iter()
            .any(|i| ensemble.mode(*i).as_deref() == Some("leader"))
    });

    // 4. Member 4 becomes an observer (and another voter stays).
    let demote = format!(
        "reconfig -add server.4={}",
        spec4.replace(":participant;", ":observer;")
    );
    // A leader elected a moment ago answers ReconfigInProgress until it has applied
    // what its predecessor committed (raft-rs), as Java's may answer ConnectionLoss
    // while its leader settles: ask again, a few times.
    let mut demoted = Vec::new();
    for _ in 0..10 {
        let via = rest
            .iter()
            .copied()
            .find(|i| ensemble.mode(*i).as_deref() == Some("leader"))
            .unwrap_or(rest[0]);
        demoted = zkcli(
            &ensemble.address(via),
            &["addauth digest super:secret", &demote],
        );
        if demoted.first().map(String::as_str) == Some("Committed new configuration:") {
            break;
        }
        eprintln!("{kind:?}: demote answered {demoted:?}; again");
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_for("member 4 to observe", || {
        ensemble.mode(3).as_deref() == Some("observer")
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");

    // 5. Nothing acknowledged is lost; every member left shows the same membership,
    // and its zoo.cfg points at the dynamic file.
    let acked = acked.lock().expect("acked").clone();
    assert!(!acked.is_empty(), "{kind:?}: the load wrote nothing");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let survivor = ensemble.address(rest[0]);
    let present: std::collections::BTreeSet<String> = rt.block_on(async {
        let zk = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&survivor)
            .await
            .expect("connect");
        zk.sync("/").await.expect("sync");
        let (children, _) = zk.get_children("/load").await.expect("children");
        children.into_iter().map(|c| format!("/load/{c}")).collect()
    });
    let lost: Vec<&String> = acked.iter().filter(|p| !present.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{kind:?}: acknowledged writes lost: {lost:?}"
    );
    let mut configs = Vec::new();
    for i in &rest {
        let lines = zkcli(&ensemble.address(*i), &["config"]);
        assert!(
            lines.iter().any(|l| l.starts_with("version=")),
            "{kind:?}: {lines:?}"
        );
        configs.push(server_lines(&lines));
        let cfg =
            std::fs::read_to_string(ensemble.members[*i].dir.join("zoo.cfg")).expect("zoo.cfg");
        let dynamic = cfg
            .lines()
            .find_map(|l| l.strip_prefix("dynamicConfigFile="))
            .unwrap_or_else(|| panic!("{kind:?}: member {} zoo.cfg: {cfg}", i + 1));
        let file = std::fs::read_to_string(dynamic).expect("dynamic file");
        let mut file_lines: Vec<String> = file.lines().map(str::to_string).collect();
        file_lines.sort();
        assert_eq!(file_lines, configs[0], "{kind:?}: {dynamic}");
        assert!(
            Path::new(dynamic)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zoo.cfg.dynamic.")),
            "{dynamic}"
        );
    }
    assert!(
        configs.windows(2).all(|w| w[0] == w[1]),
        "{kind:?}: {configs:?}"
    );
    assert_eq!(configs[0].len(), 3, "{kind:?}: {:?}", configs[0]);

    // 6. A restarted member keeps the new membership.
    if kind == Kind::Ferrokeeper {
        let i = rest[1];
        ensemble.restart(i);
        wait_for("the restarted member to rejoin", || {
            matches!(ensemble.mode(i).as_deref(), Some("leader" | "follower"))
        });
        // The restart costs the two voters their quorum for a moment: clients that
        // connect during the election are closed, so ask until one is served.
        let address = ensemble.address(i);
        let mut last = Vec::new();
        wait_for("the restarted member's config", || {
            last = server_lines(&zkcli(&address, &["config"]));
            last == configs[0]
        });
        assert_eq!(last, configs[0], "after restart");
    }
    Transcript {
        refusals,
        added,
        removed_leader,
        demoted,
    }
}

/// Keeps the parts of a reconfig's answer that both servers print the same way: the
/// outcome line and the server lines' count (ports differ between the runs).
fn shape(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            if l.starts_with("server.") {
                "server line".to_string()
            } else if l.starts_with("version=") {
                "version".to_string()
            } else {
                l.clone()
            }
        })
        .collect()
}

#[test]
fn reconfig_matches_java() {
    let fk = scenario(Kind::Ferrokeeper);
    assert_eq!(
        fk.refusals,
        vec![
            "Insufficient permission :",
            "version No is not valid :",
            "Arguments are not valid :",
            "Arguments are not valid :",
        ],
        "ferrokeeper's refusals"
    );
    assert_eq!(
        fk.added.first().map(String::as_str),
        Some("Committed new configuration:")
    );
    if !java_available() {
        eprintln!(
            "SKIPPED the Java half: java or Debian's ZooKeeper is missing (tests/run.sh installs them)"
        );
        return;
    }
    let java = scenario(Kind::JavaZk);
    assert_eq!(fk.refusals, java.refusals, "refusals");
    assert_eq!(shape(&fk.added), shape(&java.added), "add");
    // Removing the leader: Java may answer before or after its leader steps down (a
    // lost connection); both must not report an error other than that.
    for t in [&fk.removed_leader, &java.removed_leader] {
        assert!(
            t.first().is_some_and(
                |l| l == "Committed new configuration:" || l.contains("ConnectionLoss")
            ),
            "{t:?}"
        );
    }
    assert_eq!(shape(&fk.demoted), shape(&java.demoted), "demote");
}

/// A reconfig client program's transcript against a fresh 3-member `kind` ensemble:
/// kazoo (`tests/cross/kazoo_reconfig.py`) or Curator (`tests/cross/CuratorReconfig.java`,
/// `curator_cp` its classpath). A follower leaves (a leader leaving drops its clients on
/// Java mid-answer); the program talks to the two others.
fn reconfig_transcript(kind: Kind, curator_cp: Option<&str>) -> String {
    let ensemble = Ensemble::start_with(kind, 3, &options());
    let leader = ensemble.leader();
    let gone = (0..3).rev().find(|&i| i != leader).expect("a follower");
    let stay: Vec<usize> = (0..3).filter(|&i| i != gone).collect();
    let cross = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross");
    let mut command = match curator_cp {
        Some(cp) => {
            let mut c = Command::new("java");
            c.args(["-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", cp])
                .arg(cross.join("CuratorReconfig.java"));
            c
        }
        None => {
            let mut c = Command::new("python3");
            c.arg(cross.join("kazoo_reconfig.py"));
            c
        }
    };
    let out = command
        .arg(format!(
            "{},{}",
            ensemble.address(stay[0]),
            ensemble.address(stay[1])
        ))
        .arg("secret")
        .arg((gone + 1).to_string())
        .output()
        .expect("run the reconfig client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{kind:?}: the reconfig client failed:\n{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ensemble.logs_tail(30)
    );
    text
}

/// kazoo's and Curator's `reconfig`: refused without the super user, incremental remove
/// of a follower, a stale `from_config`, its line added back (BadArguments from Java
/// 3.8 too), the whole membership as new members, `/zookeeper/config` agreeing; each
/// client's transcript from a ferrokeeper ensemble equals its transcript from a Java one.
#[test]
fn kazoo_and_curator_reconfig_match_java() {
    let has_kazoo = Command::new("python3")
        .args(["-c", "import kazoo"])
        .status()
        .is_ok_and(|s| s.success());
    let curator = common::curator_classpath();
    let shape = |errors: [&str; 3]| -> Vec<String> {
        vec![
            format!("anonymous remove: {}", errors[0]),
            "remove: server:participant server:participant version".into(),
            format!("stale from_config: {}", errors[1]),
            format!("add back: {}", errors[2]),
            "new members: server:participant server:participant version".into(),
            "config agrees: True".into(),
            "removed answer had 2 servers: True".into(),
        ]
    };
    let mut clients: Vec<(&str, Option<&str>, Vec<String>)> = Vec::new();
    if has_kazoo {
        let want = shape(["NoAuthError", "BadVersionError", "BadArgumentsError"]);
        clients.push(("kazoo", None, want));
    } else {
        eprintln!("SKIPPED the kazoo part: python3 has no kazoo (tests/run.sh installs it)");
    }
    match &curator {
        Ok(cp) => clients.push((
            "Curator",
            Some(cp.as_str()),
            shape(["NOAUTH", "BADVERSION", "BADARGUMENTS"]),
        )),
        Err(why) => eprintln!("SKIPPED the Curator part: {why}"),
    }
    for (name, cp, want) in clients {
        let fk = reconfig_transcript(Kind::Ferrokeeper, cp);
        if java_available() {
            let java = reconfig_transcript(Kind::JavaZk, cp);
            assert_eq!(fk, java, "{name}: ferrokeeper's transcript against Java's");
        } else {
            eprintln!("SKIPPED the Java half: java or Debian's ZooKeeper is missing");
        }
        assert_eq!(
            fk.lines().collect::<Vec<_>>(),
            want,
            "{name} against ferrokeeper"
        );
    }
}
