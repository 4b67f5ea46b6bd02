//! Four-letter words over a real socket, ferrokeeper beside Apache ZooKeeper 3.8:
//! the same commands must answer with the same lines in the same order (values differ:
//! versions, times, ids). Formats are pinned byte for byte by `src/admin` unit tests
//! against captured Java replies; this checks the wiring end to end.
//!
//! The version is one of the values allowed to differ: ferrokeeper reports the ZooKeeper
//! release whose semantics it follows (3.9.x, `3.9.4-ferrokeeper-<crate version>`) while
//! the reference server here is Debian's 3.8, so `srvr`/`stat`'s `Zookeeper version:`
//! line, `envi`'s `zookeeper.version` and `mntr`'s `zk_version` are compared by key only,
//! and [`version_is_zookeeper_3_9_with_ferrokeeper_revision`] checks their values.

mod common;
mod raw;

use common::{Kind, Server};

fn keys(text: &str, sep: char) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(sep).next().unwrap_or("").trim().to_string())
        .collect()
}

fn both(extra: &[(&str, &str)]) -> (Server, Server) {
    (
        Server::start(Kind::JavaZk, extra),
        Server::start(Kind::Ferrokeeper, extra),
    )
}

#[test]
fn srvr_conf_and_mntr_have_zookeepers_lines() {
    let (java, fk) = both(&[]);
    for cmd in ["srvr", "conf"] {
        let (j, f) = (java.four_letter(cmd), fk.four_letter(cmd));
        let sep = if cmd == "conf" { '=' } else { ':' };
        assert_eq!(
            keys(&f, sep),
            keys(&j, sep),
            "{cmd}:\n--- java\n{j}--- ferrokeeper\n{f}"
        );
    }
    // mntr: every key ferrokeeper prints is one Java prints, in Java's order (JVM and
    // ensemble metrics are Java's alone), except ferrokeeper's own `zk_fk_*` keys (its
    // transaction log's counters, which the benchmark reads); clients skip keys they
    // do not know.
    let (j, f) = (java.four_letter("mntr"), fk.four_letter("mntr"));
    let (jk, all_fk_keys) = (keys(&j, '\t'), keys(&f, '\t'));
    let (own, fk_keys): (Vec<String>, Vec<String>) = all_fk_keys
        .into_iter()
        .partition(|k| k.starts_with("zk_fk_"));
    assert!(
        own.iter().any(|k| k == "zk_fk_log_fdatasyncs"),
        "mntr lacks the log counters: {own:?}"
    );
    let positions: Vec<usize> = fk_keys
        .iter()
        .map(|k| {
            jk.iter()
                .position(|x| x == k)
                .unwrap_or_else(|| panic!("mntr key {k} unknown to Java"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "mntr keys out of Java's order: {fk_keys:?}"
    );
    for must in [
        "zk_version",
        "zk_server_state",
        "zk_znode_count",
        "zk_watch_count",
        "zk_num_alive_connections",
    ] {
        assert!(fk_keys.iter().any(|k| k == must), "mntr lacks {must}");
    }
    assert_eq!(java.four_letter("ruok"), fk.four_letter("ruok"));
    assert_eq!(fk.four_letter("isro"), "rw");
}

/// The version every command that reports one prints, read over a real socket: the
/// ZooKeeper release ferrokeeper follows, then `ferrokeeper-` and this crate's version
/// (ZooKeeper's `<version>-<revision>, built on <date>` shape, `Version.getFullVersion`).
#[test]
fn version_is_zookeeper_3_9_with_ferrokeeper_revision() {
    let fk = Server::ferrokeeper();
    let version = format!("3.9.4-ferrokeeper-{}, built on ", env!("CARGO_PKG_VERSION"));
    for cmd in ["srvr", "stat"] {
        let reply = fk.four_letter(cmd);
        let first = reply.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("Zookeeper version: {version}")),
            "{cmd}:\n{reply}"
        );
    }
    let envi = fk.four_letter("envi");
    assert!(
        envi.lines()
            .any(|l| l.starts_with(&format!("zookeeper.version={version}"))),
        "envi:\n{envi}"
    );
    let mntr = fk.four_letter("mntr");
    assert!(
        mntr.lines()
            .any(|l| l.starts_with(&format!("zk_version\t{version}"))),
        "mntr:\n{mntr}"
    );
    assert_eq!(env!("CARGO_PKG_VERSION"), "0.2.0");
}

#[test]
fn whitelist_refuses_like_zookeeper() {
    let (java, fk) = both(&[("4lw.commands.whitelist", "srvr, ruok")]);
    for cmd in ["stat", "mntr", "cons", "wchs", "dump", "conf"] {
        assert_eq!(fk.four_letter(cmd), java.four_letter(cmd), "{cmd}");
    }
    assert_eq!(fk.four_letter("ruok"), "imok");
    assert!(fk.four_letter("srvr").starts_with("Zookeeper version: "));
}

#[tokio::test]
async fn connections_and_watches_are_listed() {
    let fk = Server::ferrokeeper();
    let mut c = raw::Conn::connect(&fk.address()).await;
    c.create("/w", b"x", raw::open_acl(), 0)
        .await
        .expect("create");
    let _ = c.get_data("/w", true).await.expect("getData");
    let session = format!("0x{:x}", c.session_id);
    let cons = fk.four_letter("cons");
    assert!(
        cons.contains(&format!("sid={session}")),
        "cons lacks the session:\n{cons}"
    );
    let wchc = fk.four_letter("wchc");
    assert!(
        wchc.contains(&session) && wchc.contains("\t/w"),
        "wchc:\n{wchc}"
    );
    let wchp = fk.four_letter("wchp");
    assert!(
        wchp.starts_with("/w\n") && wchp.contains(&session),
        "wchp:\n{wchp}"
    );
    let wchs = fk.four_letter("wchs");
    assert!(
        wchs.contains("1 connections watching 1 paths"),
        "wchs:\n{wchs}"
    );
    let stat = fk.four_letter("stat");
    assert!(stat.contains("Node count: 6"), "stat:\n{stat}");
    c.close().await;
}
