//! Comparing two states node by node: tree (path, data, stat, ACL, children), sessions
//! (timeout, password, ephemerals), the container and TTL indexes, and the zxid. The
//! two may be laid out differently (one over a mapped snapshot, one all in memory);
//! only what they hold counts.

use crate::core::state::DataState;

/// The first difference between `a` and `b`, described, or `None` if they are equal.
pub fn diff_states(a: &DataState, b: &DataState) -> Option<String> {
    if a.last_zxid != b.last_zxid {
        return Some(format!("zxid 0x{:x} vs 0x{:x}", a.last_zxid, b.last_zxid));
    }
    let na = a.tree.sorted_nodes();
    let nb = b.tree.sorted_nodes();
    if na.len() != nb.len() || a.tree.len() != b.tree.len() {
        let pa: std::collections::BTreeSet<&str> = na.iter().map(|(p, _)| *p).collect();
        let pb: std::collections::BTreeSet<&str> = nb.iter().map(|(p, _)| *p).collect();
        return Some(format!(
            "node count {} (len {}) vs {} (len {}); only in first: {:?}; only in second: {:?}",
            na.len(),
            a.tree.len(),
            nb.len(),
            b.tree.len(),
            pa.difference(&pb).take(5).collect::<Vec<_>>(),
            pb.difference(&pa).take(5).collect::<Vec<_>>()
        ));
    }
    for ((pa, x), (pb, y)) in na.iter().zip(nb.iter()) {
        if pa != pb {
            return Some(format!("paths differ: {pa} vs {pb}"));
        }
        if x.stat() != y.stat() {
            return Some(format!("{pa}: stat {:?} vs {:?}", x.stat(), y.stat()));
        }
        if x.data() != y.data() {
            return Some(format!("{pa}: data {:?} vs {:?}", x.data(), y.data()));
        }
        if x.acl()[..] != y.acl()[..] {
            return Some(format!("{pa}: acl {:?} vs {:?}", x.acl(), y.acl()));
        }
        let ca: Vec<&str> = x.children().collect();
        let cb: Vec<&str> = y.children().collect();
        if ca != cb || x.num_children() != ca.len() || y.num_children() != cb.len() {
            return Some(format!("{pa}: children {ca:?} vs {cb:?}"));
        }
        // The client-visible stat is derived (cversion, numChildren): compare it too.
        if a.stat(x) != b.stat(y) {
            return Some(format!(
                "{pa}: client stat {:?} vs {:?}",
                a.stat(x),
                b.stat(y)
            ));
        }
    }
    if a.sessions.len() != b.sessions.len() {
        return Some(format!(
            "{} sessions vs {}",
            a.sessions.len(),
            b.sessions.len()
        ));
    }
    let mut ids: Vec<i64> = a.sessions.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let sa = &a.sessions[&id];
        let Some(sb) = b.sessions.get(&id) else {
            return Some(format!("session 0x{id:x} only in the first"));
        };
        if sa.timeout_ms != sb.timeout_ms || sa.passwd != sb.passwd {
            return Some(format!("session 0x{id:x}: timeout or password differ"));
        }
        if sa.ephemerals != sb.ephemerals {
            return Some(format!(
                "session 0x{id:x}: ephemerals {:?} vs {:?}",
                sa.ephemerals, sb.ephemerals
            ));
        }
    }
    if a.containers != b.containers {
        return Some(format!(
            "containers {:?} vs {:?}",
            a.containers, b.containers
        ));
    }
    if a.ttls != b.ttls {
        return Some(format!("ttl nodes {:?} vs {:?}", a.ttls, b.ttls));
    }
    if let (Some(da), Some(db)) = (digest(a), digest(b)) {
        if da != db {
            return Some(format!("tree digest {da:x} vs {db:x}"));
        }
    }
    None
}

/// ZooKeeper's tree digest of `state`, as the state keeps it up to date
/// ([`crate::core::digest`]). [`diff_states`] compares it; [`check_indexes`] checks it
/// against a digest computed over every node.
pub fn digest(state: &DataState) -> Option<i64> {
    Some(state.digest)
}

/// The indexes a state keeps beside its tree must agree with the tree: every session's
/// ephemerals are nodes it owns, every node owned by a session is listed, containers and
/// TTL nodes are indexed, each node's children exist, and the kept tree digest is the
/// digest of the tree.
pub fn check_indexes(s: &DataState) -> Option<String> {
    use crate::core::state::{owner_kind, OwnerKind};
    let mut owned = 0usize;
    for (path, n) in s.tree.sorted_nodes() {
        let owner = n.stat().ephemeral_owner;
        match owner_kind(owner, s.extended_types) {
            OwnerKind::Normal => {
                owned += 1;
                let listed = s
                    .sessions
                    .get(&owner)
                    .is_some_and(|sess| sess.ephemerals.contains(path));
                if !listed {
                    return Some(format!(
                        "ephemeral {path} of 0x{owner:x} is not in its session's list"
                    ));
                }
            }
            OwnerKind::Container if !s.containers.contains(path) => {
                return Some(format!("container {path} not indexed"));
            }
            OwnerKind::Ttl if !s.ttls.contains(path) => {
                return Some(format!("ttl node {path} not indexed"));
            }
            _ => {}
        }
        for c in n.children() {
            let child = crate::core::path::join(path, c);
            if !s.tree.contains(&child) {
                return Some(format!("{path} lists missing child {c}"));
            }
        }
    }
    let computed = crate::core::digest::of_tree(&s.tree);
    if computed != s.digest {
        return Some(format!(
            "kept tree digest {:x} differs from the computed {computed:x}",
            s.digest
        ));
    }
    if owned != s.ephemeral_count() {
        return Some(format!(
            "{owned} ephemeral nodes, sessions list {}",
            s.ephemeral_count()
        ));
    }
    for p in s.containers.iter().chain(s.ttls.iter()) {
        if !s.tree.contains(p) {
            return Some(format!("index names missing node {p}"));
        }
    }
    None
}
