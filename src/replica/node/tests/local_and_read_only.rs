//! Local sessions (`localSessionsEnabled`) and read-only mode (`readonlymode.enabled`)
//! on the hand-driven cluster.

use super::*;

fn with_local(upgrading: bool) -> Cluster {
    Cluster::configured(3, 0, |cfg| {
        cfg.local_sessions = true;
        cfg.local_upgrading = upgrading;
    })
}

fn ask(c: &mut Cluster, node: u64, msg: CommitRequest) {
    let now = c.now;
    c.nodes.get_mut(&node).expect("node").client(msg, now);
    c.settle();
}

fn ephemeral(conn: u64, session_id: i64, xid: i32, path: &str) -> CommitRequest {
    let mut m = create(conn, session_id, xid, path);
    if let CommitRequest::Write {
        request: Request::Create(c),
        ..
    } = &mut m
    {
        c.flags = 1;
    }
    m
}

fn write_reply(c: &Cluster, node: u64, conn: u64, xid: i32) -> Option<Outcome> {
    c.replies
        .get(&node)?
        .iter()
        .rev()
        .find_map(|(o, r)| match r {
            ReplyMsg::Write {
                xid: x, outcome, ..
            } if o.0 == conn && *x == xid => Some(outcome.clone()),
            _ => None,
        })
}

fn read_only_connect(conn: u64, session_id: i64) -> CommitRequest {
    let mut m = connect(conn);
    if let CommitRequest::Connect { connect, .. } = &mut m {
        connect.read_only = true;
        connect.has_read_only = true;
        connect.request.session_id = session_id;
    }
    m
}

fn closed(c: &Cluster, node: u64, conn: u64) -> bool {
    c.replies.get(&node).is_some_and(|rs| {
        rs.iter()
            .any(|(o, r)| o.0 == conn && matches!(r, ReplyMsg::Close { .. }))
    })
}

#[test]
fn a_local_session_costs_no_txn_writes_through_the_leader_and_upgrades_for_an_ephemeral() {
    let mut c = with_local(true);
    c.tick(60);
    let leader = c.leader().expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let before = c.nodes[&leader].state().last_zxid;

    ask(&mut c, follower, connect(5));
    let sid = session_of(&c.replies[&follower], 5);
    assert_eq!(
        sid >> 56,
        follower as i64,
        "the follower's id in the top byte"
    );
    c.tick(2);
    for n in c.nodes.values() {
        assert!(
            !n.state().sessions.contains_key(&sid),
            "no CreateSession txn"
        );
        assert_eq!(n.state().last_zxid, before);
    }

    // A persistent create from the local session: the leader takes it unchecked.
    ask(&mut c, follower, create(5, sid, 1, "/p"));
    assert!(matches!(
        write_reply(&c, follower, 5, 1),
        Some(Outcome::Created { .. })
    ));
    assert!(!c.nodes[&leader].state().sessions.contains_key(&sid));

    // An ephemeral: the session becomes global first, with the same id.
    ask(&mut c, follower, ephemeral(5, sid, 2, "/e"));
    assert!(matches!(
        write_reply(&c, follower, 5, 2),
        Some(Outcome::Created { .. })
    ));
    c.tick(2);
    for n in c.nodes.values() {
        let s = n.state();
        assert!(s.sessions.contains_key(&sid), "upgraded everywhere");
        assert_eq!(
            s.tree.get("/e").map(|n| n.stat().ephemeral_owner),
            Some(sid)
        );
    }
}

#[test]
fn without_upgrading_an_ephemeral_on_a_local_session_fails_and_a_close_stays_local() {
    let mut c = with_local(false);
    c.tick(60);
    let leader = c.leader().expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    ask(&mut c, follower, connect(5));
    let sid = session_of(&c.replies[&follower], 5);
    ask(&mut c, follower, ephemeral(5, sid, 1, "/e"));
    assert_eq!(
        write_reply(&c, follower, 5, 1),
        Some(Outcome::Error(ErrorCode::EphemeralOnLocalSession))
    );
    let before = c.nodes[&leader].state().last_zxid;
    let mut close = create(5, sid, 2, "/x");
    if let CommitRequest::Write { request, .. } = &mut close {
        *request = Request::CloseSession;
    }
    ask(&mut c, follower, close);
    assert_eq!(
        write_reply(&c, follower, 5, 2),
        Some(Outcome::SessionClosed)
    );
    assert!(closed(&c, follower, 5));
    c.tick(2);
    assert_eq!(
        c.nodes[&leader].state().last_zxid,
        before,
        "no CloseSession txn"
    );

    // A local session expires on its own server's clock.
    ask(&mut c, follower, connect(6));
    let sid6 = session_of(&c.replies[&follower], 6);
    assert!(c.nodes[&follower].local.contains(sid6));
    c.tick(10_000 / 50 + 2);
    assert!(!c.nodes[&follower].local.contains(sid6));
    assert!(closed(&c, follower, 6));
}

#[test]
fn a_server_without_a_quorum_serves_read_only_clients_and_rejoins() {
    let mut c = Cluster::configured(3, 0, |cfg| {
        cfg.local_sessions = true;
        cfg.local_upgrading = true;
        cfg.read_only_after_ms = Some(2000);
    });
    c.tick(60);
    let leader = c.leader().expect("a leader");
    let alone = (1..=3).find(|id| *id != leader).expect("a follower");
    // A global session from before the partition (a local one, upgraded).
    ask(&mut c, leader, connect(4));
    let global = session_of(&c.replies[&leader], 4);
    ask(&mut c, leader, ephemeral(4, global, 1, "/g"));
    c.tick(4);
    assert!(c.nodes[&alone].state().sessions.contains_key(&global));
    let others: Vec<u64> = (1..=3).filter(|id| *id != alone).collect();
    c.down.extend(others.iter().copied());
    c.tick(2000 / 50 + 20);
    assert_eq!(c.nodes[&alone].role(), Role::ReadOnly);

    // A client that did not ask for read-only is closed; one that did gets a local
    // session and a connect response that says read-only.
    ask(&mut c, alone, connect(7));
    assert!(closed(&c, alone, 7));
    ask(&mut c, alone, read_only_connect(8, 0));
    let ro = c.replies[&alone]
        .iter()
        .find_map(|(o, r)| match r {
            ReplyMsg::Connected {
                session_id,
                read_only,
                valid: true,
                ..
            } if o.0 == 8 => Some((*session_id, *read_only)),
            _ => None,
        })
        .expect("connected");
    assert!(ro.1, "the connect response says read-only");
    // A global session cannot be renewed here.
    ask(&mut c, alone, read_only_connect(9, global));
    assert!(closed(&c, alone, 9));
    // Writes and syncs get NotReadOnly.
    ask(&mut c, alone, create(8, ro.0, 3, "/w"));
    assert_eq!(
        write_reply(&c, alone, 8, 3),
        Some(Outcome::Error(ErrorCode::NotReadOnly))
    );

    // The quorum returns: the server follows a leader again and its read-only
    // clients are closed, to find a read-write server.
    c.down.clear();
    c.tick(80);
    assert!(matches!(
        c.nodes[&alone].role(),
        Role::Follower | Role::Leader
    ));
    assert!(closed(&c, alone, 8));
    assert!(c.nodes[&alone].local.is_empty());
}
