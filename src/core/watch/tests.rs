//! Tests of the watch table: text scenarios under `src/core/watch/testdata/` (one verb per line,
//! each file citing the ZooKeeper behaviour it pins), and a randomized comparison with
//! a literal model of ZooKeeper 3.9's `DataTree` + two `WatchManager`s.

use super::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------
// Scenario runner
//
// Verbs (one per line, `#` starts a comment):
//   watch <conn> data|child|persistent|recursive <path> [-> true|false]
//   create <path> [zxid]      delete <path> [zxid]      set <path> [zxid]
//   setwatches <conn> <relzxid> [data=<p>,<p>] [exist=..] [child=..] [persistent=..] [recursive=..]
//   node <path> <mzxid> <pzxid>     nonode <path>        (the tree setwatches sees)
//   check <conn> children|data|any|persistent|recursive <path> -> true|false
//   remove <conn> children|data|any|persistent|recursive <path> -> true|false
//   close <conn>
//   count <n>                                  (zk_watch_count)
//   summary <connections> <paths> <watches>    (wchs, data table only)
//   wchc <conn> [<path> ...]                   (data-table paths of a connection)
//   empty                                      (the table holds nothing)
// Every create/delete/set/setwatches must be followed by its expected notifications:
//   > <conn> <EventType> <path> node|parent|unchecked      or      > none
// Order is compared per connection (ZooKeeper orders events per session only).
// ---------------------------------------------------------------------------------

fn kind(s: &str) -> WatchKind {
    match s {
        "data" => WatchKind::Data,
        "child" => WatchKind::Child,
        "persistent" => WatchKind::Persistent,
        "recursive" => WatchKind::PersistentRecursive,
        _ => panic!("unknown watch kind {s}"),
    }
}

fn wtype(s: &str) -> WatcherType {
    match s {
        "children" => WatcherType::Children,
        "data" => WatcherType::Data,
        "any" => WatcherType::Any,
        "persistent" => WatcherType::Persistent,
        "recursive" => WatcherType::PersistentRecursive,
        _ => panic!("unknown watcher type {s}"),
    }
}

fn render(n: &Notification) -> String {
    let ty = EventType::from_i32(n.event.r#type).map_or("?", EventType::name);
    let acl = match n.acl {
        AclOf::Node => "node",
        AclOf::Parent => "parent",
        AclOf::Unchecked => "unchecked",
    };
    assert_eq!(n.event.state, KeeperState::SyncConnected.code());
    format!("{} {} {} {}", n.conn, ty, n.event.path, acl)
}

/// Stable sort by connection: keeps each connection's own order.
fn per_conn(mut v: Vec<(ConnId, String)>) -> Vec<String> {
    v.sort_by_key(|(c, _)| *c);
    v.into_iter().map(|(_, s)| s).collect()
}

fn arrow(parts: &[&str], at: &str) -> bool {
    match parts {
        [.., "->", "true"] => true,
        [.., "->", "false"] => false,
        _ => panic!("{at}: expected `-> true|false`"),
    }
}

fn run_scenario(name: &str, text: &str) {
    let mut t = WatchTable::new();
    let mut tree: HashMap<String, NodeZxids> = HashMap::new();
    let mut zxid = 100;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut i = 0;
    while i < lines.len() {
        let (lineno, line) = lines[i];
        let at = format!("{name}:{lineno}: `{line}`");
        let parts: Vec<&str> = line.split_whitespace().collect();
        i += 1;
        let mut out = Vec::new();
        let mut expect_zxid = None;
        match parts[0] {
            "watch" => {
                let added = t.add(parts[3], parts[1].parse().unwrap(), kind(parts[2]));
                if parts.len() > 4 {
                    assert_eq!(added, arrow(&parts, &at), "{at}");
                }
            }
            "create" | "delete" | "set" => {
                zxid = parts.get(2).map_or(zxid + 1, |z| z.parse().unwrap());
                expect_zxid = Some(zxid);
                match parts[0] {
                    "create" => t.node_created(parts[1], zxid, &mut out),
                    "delete" => t.node_deleted(parts[1], zxid, &mut out),
                    _ => t.data_changed(parts[1], zxid, &mut out),
                }
            }
            "setwatches" => {
                let conn: ConnId = parts[1].parse().unwrap();
                let rel: i64 = parts[2].parse().unwrap();
                let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for p in &parts[3..] {
                    let (k, v) = p.split_once('=').expect("key=value");
                    lists.insert(k, v.split(',').map(str::to_owned).collect());
                }
                let get = |k: &str| lists.get(k).map_or(&[][..], |v| &v[..]);
                let l = SetWatchLists {
                    relative_zxid: rel,
                    data: get("data"),
                    exist: get("exist"),
                    child: get("child"),
                    persistent: get("persistent"),
                    persistent_recursive: get("recursive"),
                };
                t.set_watches(conn, l, |p| tree.get(p).copied(), &mut out);
                expect_zxid = Some(-1);
            }
            "node" => {
                let n = NodeZxids {
                    mzxid: parts[2].parse().unwrap(),
                    pzxid: parts[3].parse().unwrap(),
                };
                tree.insert(parts[1].to_owned(), n);
            }
            "nonode" => {
                tree.remove(parts[1]);
            }
            "check" => {
                let got = t.contains(parts[3], parts[1].parse().unwrap(), wtype(parts[2]));
                assert_eq!(got, arrow(&parts, &at), "{at}");
            }
            "remove" => {
                let got = t.remove(parts[3], parts[1].parse().unwrap(), wtype(parts[2]));
                assert_eq!(got, arrow(&parts, &at), "{at}");
            }
            "close" => t.remove_connection(parts[1].parse().unwrap()),
            "count" => assert_eq!(t.watch_count(), parts[1].parse::<usize>().unwrap(), "{at}"),
            "summary" => {
                let want = WatchSummary {
                    connections: parts[1].parse().unwrap(),
                    paths: parts[2].parse().unwrap(),
                    watches: parts[3].parse().unwrap(),
                };
                assert_eq!(t.summary(), want, "{at}");
            }
            "wchc" => {
                let mut got: Vec<&str> = t.data_paths_of(parts[1].parse().unwrap()).collect();
                got.sort_unstable();
                let mut want = parts[2..].to_vec();
                want.sort_unstable();
                assert_eq!(got, want, "{at}");
            }
            "empty" => assert!(t.is_empty() && t.connections().next().is_none(), "{at}"),
            verb => panic!("{at}: unknown verb {verb}"),
        }
        t.check_invariants();
        let Some(z) = expect_zxid else {
            assert!(
                i >= lines.len() || !lines[i].1.starts_with('>'),
                "{name}:{}: stray `>`",
                lines[i].1
            );
            continue;
        };
        let mut want = Vec::new();
        let mut explicit_none = false;
        while i < lines.len() && lines[i].1.starts_with('>') {
            let body = lines[i].1[1..].trim();
            if body == "none" {
                explicit_none = true;
            } else {
                let conn: ConnId = body.split_whitespace().next().unwrap().parse().unwrap();
                want.push((conn, body.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            i += 1;
        }
        assert!(
            explicit_none || !want.is_empty(),
            "{at}: expectations (`> ...` or `> none`) required"
        );
        for n in &out {
            assert_eq!(n.zxid, z, "{at}: zxid of {}", render(n));
        }
        let got = per_conn(out.iter().map(|n| (n.conn, render(n))).collect());
        let want = per_conn(want);
        if got != want {
            let mut msg = String::new();
            let _ = writeln!(msg, "{at}\n  expected:");
            for w in &want {
                let _ = writeln!(msg, "    > {w}");
            }
            let _ = writeln!(msg, "  got:");
            for g in &got {
                let _ = writeln!(msg, "    > {g}");
            }
            panic!("{msg}");
        }
    }
}

#[test]
fn scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/watch/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "scenario files missing in {}",
        dir.display()
    );
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        run_scenario(&f.file_name().unwrap().to_string_lossy(), &text);
    }
}

#[test]
fn watchers_stay_small() {
    // One entry per watched path; the single-watcher case is inline.
    assert!(
        std::mem::size_of::<Watchers>() <= 32,
        "{}",
        std::mem::size_of::<Watchers>()
    );
    assert_eq!(std::mem::size_of::<Watcher>(), 16);
}

#[test]
fn add_watch_mode_mapping() {
    assert_eq!(
        WatchKind::from(AddWatchMode::Persistent),
        WatchKind::Persistent
    );
    assert_eq!(
        WatchKind::from(AddWatchMode::PersistentRecursive),
        WatchKind::PersistentRecursive
    );
}

#[test]
fn set_watches_from_records() {
    let r = SetWatches2 {
        relative_zxid: 5,
        data_watches: vec!["/d".into()],
        exist_watches: vec!["/e".into()],
        child_watches: vec!["/c".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/r".into()],
    };
    let l = SetWatchLists::from(&r);
    assert_eq!(
        (
            l.relative_zxid,
            l.data.len(),
            l.persistent_recursive[0].as_str()
        ),
        (5, 1, "/r")
    );
    let v1 = SetWatches {
        relative_zxid: 9,
        data_watches: vec![],
        exist_watches: vec![],
        child_watches: vec!["/c".into()],
    };
    let l = SetWatchLists::from(&v1);
    assert_eq!(
        (l.relative_zxid, l.child.len(), l.persistent.len()),
        (9, 1, 0)
    );
}

// ---------------------------------------------------------------------------------
// Model check: the table against a transcription of ZooKeeper 3.9.5's WatchManager
// (watchTable + watch2Paths + WatchStats flags + recursiveWatchQty) and DataTree's use
// of two of them. Random operations on a small path universe; every notification,
// every contains/remove answer and the counts must agree.
// ---------------------------------------------------------------------------------

mod model {
    use std::collections::{HashMap, HashSet};

    pub const STANDARD: u8 = 1;
    pub const PERSISTENT: u8 = 2;
    pub const RECURSIVE: u8 = 4;

    /// `WatchManager`, field for field.
    #[derive(Default)]
    pub struct Manager {
        watch_table: HashMap<String, HashSet<u64>>,
        watch2paths: HashMap<u64, HashMap<String, u8>>,
        recursive_qty: usize,
    }

    fn parents(path: &str, all: bool) -> Vec<String> {
        // PathParentIterator.forAll / forPathOnly.
        let mut v = vec![path.to_owned()];
        if all {
            let mut p = path.to_owned();
            while p != "/" {
                p = match p.rfind('/') {
                    Some(0) => "/".to_owned(),
                    Some(i) => p[..i].to_owned(),
                    None => break,
                };
                v.push(p.clone());
            }
        }
        v
    }

    impl Manager {
        pub fn size(&self) -> usize {
            self.watch_table.values().map(HashSet::len).sum()
        }
        pub fn size_paths(&self) -> usize {
            self.watch_table.len()
        }
        pub fn add(&mut self, path: &str, w: u64, mode: u8) {
            self.watch_table
                .entry(path.to_owned())
                .or_default()
                .insert(w);
            let paths = self.watch2paths.entry(w).or_default();
            let stats = paths.get(path).copied().unwrap_or(0);
            let new = stats | mode;
            if new != stats {
                paths.insert(path.to_owned(), new);
                if mode == RECURSIVE {
                    self.recursive_qty += 1;
                }
            }
        }
        pub fn remove_watcher(&mut self, w: u64) {
            let Some(paths) = self.watch2paths.remove(&w) else {
                return;
            };
            for (p, stats) in paths {
                if let Some(list) = self.watch_table.get_mut(&p) {
                    list.remove(&w);
                    if list.is_empty() {
                        self.watch_table.remove(&p);
                    }
                }
                if stats & RECURSIVE != 0 {
                    self.recursive_qty -= 1;
                }
            }
        }
        /// Returns (all watchers found, those delivered).
        pub fn trigger(
            &mut self,
            path: &str,
            suppress: Option<&HashSet<u64>>,
        ) -> (HashSet<u64>, Vec<u64>) {
            let mut watchers = HashSet::new();
            let all = self.recursive_qty != 0;
            for (level, local) in parents(path, all).into_iter().enumerate() {
                let Some(this) = self.watch_table.get_mut(&local) else {
                    continue;
                };
                let mut drop = Vec::new();
                for &w in this.iter() {
                    let paths = self.watch2paths.get_mut(&w).unwrap();
                    let stats = *paths.get(&local).expect("consistent");
                    if level == 0 {
                        watchers.insert(w);
                        let new = stats & !STANDARD;
                        if new == 0 {
                            drop.push(w);
                            paths.remove(&local);
                        } else {
                            paths.insert(local.clone(), new);
                        }
                    } else if stats & RECURSIVE != 0 {
                        watchers.insert(w);
                    }
                }
                for w in drop {
                    this.remove(&w);
                }
                if this.is_empty() {
                    self.watch_table.remove(&local);
                }
            }
            // Note: ZooKeeper leaves an emptied watch2Paths entry in place here; it is
            // harmless (and invisible to every report but the connection count, which
            // a later add or removeWatcher fixes). The model mirrors it.
            let delivered = watchers
                .iter()
                .copied()
                .filter(|w| suppress.is_none_or(|s| !s.contains(w)))
                .collect();
            (watchers, delivered)
        }
        pub fn contains(&self, path: &str, w: u64, mode: Option<u8>) -> bool {
            let Some(paths) = self.watch2paths.get(&w) else {
                return false;
            };
            paths
                .get(path)
                .is_some_and(|s| mode.is_none_or(|m| s & m != 0))
        }
        pub fn remove(&mut self, path: &str, w: u64, mode: Option<u8>) -> bool {
            if !self.watch2paths.contains_key(&w) || !self.watch_table.contains_key(path) {
                return false;
            }
            let old = self.watch2paths[&w].get(path).copied().unwrap_or(0);
            let new = match mode {
                Some(m) => old & !m,
                None => 0,
            };
            if new != 0 {
                if new != old {
                    self.watch2paths
                        .get_mut(&w)
                        .unwrap()
                        .insert(path.to_owned(), new);
                }
            } else if old != 0 {
                let paths = self.watch2paths.get_mut(&w).unwrap();
                paths.remove(path);
                if paths.is_empty() {
                    self.watch2paths.remove(&w);
                }
                let set = self.watch_table.get_mut(path).unwrap();
                set.remove(&w);
                if set.is_empty() {
                    self.watch_table.remove(path);
                }
            }
            if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
                self.recursive_qty -= 1;
            }
            old != new
        }
    }

    /// The watch-related parts of `DataTree`.
    #[derive(Default)]
    pub struct Tree {
        pub data: Manager,
        pub child: Manager,
    }

    fn parent(path: &str) -> &str {
        match path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &path[..i],
        }
    }

    impl Tree {
        pub fn created(&mut self, path: &str) -> Vec<(u64, &'static str, String)> {
            let mut out = Vec::new();
            for w in self.data.trigger(path, None).1 {
                out.push((w, "NodeCreated", path.to_owned()));
            }
            for w in self.child.trigger(parent(path), None).1 {
                out.push((w, "NodeChildrenChanged", parent(path).to_owned()));
            }
            out
        }
        pub fn deleted(&mut self, path: &str) -> Vec<(u64, &'static str, String)> {
            let mut out = Vec::new();
            let (processed, delivered) = self.data.trigger(path, None);
            for w in delivered {
                out.push((w, "NodeDeleted", path.to_owned()));
            }
            for w in self.child.trigger(path, Some(&processed)).1 {
                out.push((w, "NodeDeleted", path.to_owned()));
            }
            for w in self.child.trigger(parent(path), None).1 {
                out.push((w, "NodeChildrenChanged", parent(path).to_owned()));
            }
            out
        }
        pub fn changed(&mut self, path: &str) -> Vec<(u64, &'static str, String)> {
            self.data
                .trigger(path, None)
                .1
                .into_iter()
                .map(|w| (w, "NodeDataChanged", path.to_owned()))
                .collect()
        }
        pub fn add_watch(&mut self, path: &str, w: u64, kind: u8) {
            match kind {
                0 => self.data.add(path, w, STANDARD),
                1 => self.child.add(path, w, STANDARD),
                2 => {
                    self.data.add(path, w, PERSISTENT);
                    self.child.add(path, w, PERSISTENT);
                }
                _ => self.data.add(path, w, RECURSIVE),
            }
        }
        /// containsWatcher; ty: 1 Children, 2 Data, 3 Any, 4 Persistent, 5 Recursive.
        pub fn contains(&self, path: &str, w: u64, ty: i32) -> bool {
            match ty {
                1 => self.child.contains(path, w, Some(STANDARD)),
                2 => self.data.contains(path, w, Some(STANDARD)),
                4 => self.data.contains(path, w, Some(PERSISTENT)),
                5 => self.data.contains(path, w, Some(RECURSIVE)),
                _ => self.child.contains(path, w, None) || self.data.contains(path, w, None),
            }
        }
        pub fn remove(&mut self, path: &str, w: u64, ty: i32) -> bool {
            match ty {
                1 => self.child.remove(path, w, Some(STANDARD)),
                2 => self.data.remove(path, w, Some(STANDARD)),
                4 => {
                    let a = self.child.remove(path, w, Some(PERSISTENT));
                    let b = self.data.remove(path, w, Some(PERSISTENT));
                    a || b
                }
                5 => self.data.remove(path, w, Some(RECURSIVE)),
                _ => {
                    let a = self.child.remove(path, w, None);
                    let b = self.data.remove(path, w, None);
                    a || b
                }
            }
        }
        pub fn remove_cnxn(&mut self, w: u64) {
            self.data.remove_watcher(w);
            self.child.remove_watcher(w);
        }
    }
}

#[test]
fn agrees_with_zookeeper_model() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const PATHS: [&str; 8] = ["/", "/a", "/a/b", "/a/b/c", "/a/d", "/ab", "/ab/c", "/x"];
    #[derive(Debug, Clone)]
    enum Op {
        Watch(u64, u8, usize),
        Create(usize),
        Delete(usize),
        Set(usize),
        Check(u64, i32, usize),
        Remove(u64, i32, usize),
        Close(u64),
    }
    let conn = 1u64..5;
    let path = 0usize..PATHS.len();
    let op = prop_oneof![
        6 => (conn.clone(), 0u8..4, path.clone()).prop_map(|(c, k, p)| Op::Watch(c, k, p)),
        2 => (1usize..PATHS.len()).prop_map(Op::Create),
        2 => (1usize..PATHS.len()).prop_map(Op::Delete),
        2 => path.clone().prop_map(Op::Set),
        2 => (conn.clone(), 1i32..6, path.clone()).prop_map(|(c, t, p)| Op::Check(c, t, p)),
        2 => (conn.clone(), 1i32..6, path).prop_map(|(c, t, p)| Op::Remove(c, t, p)),
        1 => conn.prop_map(Op::Close),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op, 1..80), |ops| {
            let mut t = WatchTable::new();
            let mut m = model::Tree::default();
            for op in &ops {
                let mut out = Vec::new();
                let want = match *op {
                    Op::Watch(c, k, p) => {
                        let kind = [
                            WatchKind::Data,
                            WatchKind::Child,
                            WatchKind::Persistent,
                            WatchKind::PersistentRecursive,
                        ][k as usize];
                        t.add(PATHS[p], c, kind);
                        m.add_watch(PATHS[p], c, k);
                        Vec::new()
                    }
                    Op::Create(p) => {
                        t.node_created(PATHS[p], 7, &mut out);
                        m.created(PATHS[p])
                    }
                    Op::Delete(p) => {
                        t.node_deleted(PATHS[p], 7, &mut out);
                        m.deleted(PATHS[p])
                    }
                    Op::Set(p) => {
                        t.data_changed(PATHS[p], 7, &mut out);
                        m.changed(PATHS[p])
                    }
                    Op::Check(c, ty, p) => {
                        let wt = WatcherType::from_i32(ty).unwrap();
                        prop_assert_eq!(
                            t.contains(PATHS[p], c, wt),
                            m.contains(PATHS[p], c, ty),
                            "{:?}",
                            op
                        );
                        Vec::new()
                    }
                    Op::Remove(c, ty, p) => {
                        let wt = WatcherType::from_i32(ty).unwrap();
                        prop_assert_eq!(
                            t.remove(PATHS[p], c, wt),
                            m.remove(PATHS[p], c, ty),
                            "{:?}",
                            op
                        );
                        Vec::new()
                    }
                    Op::Close(c) => {
                        t.remove_connection(c);
                        m.remove_cnxn(c);
                        Vec::new()
                    }
                };
                t.check_invariants();
                // Same multiset of events, and the same order per connection (the model's
                // order across triggers is fixed; within a trigger each conn appears once).
                let got = per_conn(
                    out.iter()
                        .map(|n| {
                            let ty = EventType::from_i32(n.event.r#type).unwrap().name();
                            (n.conn, format!("{} {}", ty, n.event.path))
                        })
                        .collect(),
                );
                let want = per_conn(
                    want.into_iter()
                        .map(|(c, ty, p)| (c, format!("{ty} {p}")))
                        .collect(),
                );
                prop_assert_eq!(got, want, "after {:?}", op);
                prop_assert_eq!(t.watch_count(), m.data.size() + m.child.size());
                prop_assert_eq!(t.summary().paths, m.data.size_paths());
                prop_assert_eq!(t.summary().watches, m.data.size());
            }
            Ok(())
        })
        .unwrap();
}
