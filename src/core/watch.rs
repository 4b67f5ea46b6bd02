//! The per-shard watch table: which connection watches which path in which mode, and
//! which notifications a committed change fires.
//!
//! It reproduces ZooKeeper 3.9's `DataTree` + `WatchManager` pair exactly
//! (`server/DataTree.java`, `server/watch/WatchManager.java`, `WatchStats.java`,
//! `WatcherMode.java`, `PathParentIterator.java`, release-3.9.5). ZooKeeper keeps two
//! managers, *data* watches and *child* watches; a (connection, path) pair holds a set
//! of modes in each (since 3.9.0, ZOOKEEPER-4466: modes combine instead of replacing
//! one another). Here both live in one map, with one byte of mode bits per pair.
//!
//! | request | data table | child table |
//! |---|---|---|
//! | exists / getData with watch | STANDARD | |
//! | getChildren with watch | | STANDARD |
//! | addWatch PERSISTENT | PERSISTENT | PERSISTENT |
//! | addWatch PERSISTENT_RECURSIVE | PERSISTENT_RECURSIVE | (none, since 3.9.0) |
//!
//! | change | fires, in this order |
//! |---|---|
//! | create `p` | data table: NodeCreated `p`; then child table: NodeChildrenChanged `parent(p)` |
//! | delete `p` | data table: NodeDeleted `p`; child table: NodeDeleted `p`, skipping connections the data table already notified; child table: NodeChildrenChanged `parent(p)` |
//! | setData `p` | data table: NodeDataChanged `p` |
//!
//! A "trigger" of one table for one path notifies every connection with any mode on
//! the path itself, plus — only in the data table — every connection with
//! PERSISTENT_RECURSIVE on a strict ancestor. Each connection is notified at most once
//! per trigger. STANDARD (one-shot) modes on the path itself are removed by the
//! trigger; persistent modes stay, and survive the node's deletion. Because recursive
//! watches live only in the data table, they never see NodeChildrenChanged.
//!
//! Delivery is filtered by ACL (3.9.2+, ZOOKEEPER-4799): the server sends a triggered
//! event only if the session may READ the node the event names — the changed node for
//! NodeCreated/NodeDeleted/NodeDataChanged (for a delete: its ACL before deletion), the
//! parent for NodeChildrenChanged. The table cannot see ACLs, so each [`Notification`]
//! says which one applies ([`AclOf`]) and the shard checks it with
//! [`crate::core::acl::check`]. A one-shot watch is consumed even when its event is filtered
//! out. Events produced by [`WatchTable::set_watches`] are not filtered (ZooKeeper
//! delivers them through `process(event)` with a null ACL).
//!
//! The notification's reply header carries the zxid of the txn that fired it (3.9;
//! `WatchedEvent.getZxid`), or −1 for events from setWatches.
//!
//! Memory: one hash entry per watched path (shared `Arc<str>` key) holding the watchers
//! inline when there is one, and per connection a set of the paths it watches, for
//! cleanup on disconnect and for the `wchc` report.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferrokeeper_net::codes::{AddWatchMode, EventType, KeeperState, WatcherType};
use ferrokeeper_net::records::{SetWatches, SetWatches2, WatcherEvent};

use crate::core::path;

/// A connection on this shard.
pub type ConnId = u64;

/// What a request registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// exists / getData with `watch`: one-shot, data table.
    Data,
    /// getChildren with `watch`: one-shot, child table.
    Child,
    /// addWatch PERSISTENT: both tables, not removed on trigger.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: data table only, fires for the whole subtree.
    PersistentRecursive,
}

impl From<AddWatchMode> for WatchKind {
    fn from(mode: AddWatchMode) -> Self {
        match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        }
    }
}

impl WatchKind {
    fn bits(self) -> Modes {
        match self {
            WatchKind::Data => DATA_STANDARD,
            WatchKind::Child => CHILD_STANDARD,
            WatchKind::Persistent => DATA_PERSISTENT | CHILD_PERSISTENT,
            WatchKind::PersistentRecursive => DATA_RECURSIVE,
        }
    }
}

/// Which node's ACL decides delivery of a notification (READ required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclOf {
    /// The node named by the event's path, i.e. the changed node (for NodeDeleted: the
    /// ACL it had before the delete).
    Node,
    /// The changed node's parent, which is the node named by the event's path
    /// (NodeChildrenChanged).
    Parent,
    /// Deliver unconditionally (events answering setWatches).
    Unchecked,
}

/// One event for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The connection to notify.
    pub conn: ConnId,
    /// The event; `state` is always SyncConnected.
    pub event: WatcherEvent,
    /// The zxid for the notification's reply header: the firing txn's, or −1.
    pub zxid: i64,
    /// Whose ACL must grant the session READ for the event to be sent.
    pub acl: AclOf,
}

/// The current state of a node as [`WatchTable::set_watches`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeZxids {
    /// Last data change.
    pub mzxid: i64,
    /// Last child-list change.
    pub pzxid: i64,
}

/// The watch lists of a SetWatches / SetWatches2 request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetWatchLists<'a> {
    /// The zxid the client last saw.
    pub relative_zxid: i64,
    /// getData watches.
    pub data: &'a [String],
    /// exists watches on nodes the client saw missing.
    pub exist: &'a [String],
    /// getChildren watches.
    pub child: &'a [String],
    /// addWatch PERSISTENT (SetWatches2 only).
    pub persistent: &'a [String],
    /// addWatch PERSISTENT_RECURSIVE (SetWatches2 only).
    pub persistent_recursive: &'a [String],
}

impl<'a> From<&'a SetWatches> for SetWatchLists<'a> {
    fn from(r: &'a SetWatches) -> Self {
        SetWatchLists {
            relative_zxid: r.relative_zxid,
            data: &r.data_watches,
            exist: &r.exist_watches,
            child: &r.child_watches,
            persistent: &[],
            persistent_recursive: &[],
        }
    }
}

impl<'a> From<&'a SetWatches2> for SetWatchLists<'a> {
    fn from(r: &'a SetWatches2) -> Self {
        SetWatchLists {
            relative_zxid: r.relative_zxid,
            data: &r.data_watches,
            exist: &r.exist_watches,
            child: &r.child_watches,
            persistent: &r.persistent_watches,
            persistent_recursive: &r.persistent_recursive_watches,
        }
    }
}

/// `wchs`: ZooKeeper reports the data table only (`DataTree.dumpWatchesSummary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Connections with at least one data-table watch.
    pub connections: usize,
    /// Paths with at least one data-table watch.
    pub paths: usize,
    /// (connection, path) pairs in the data table.
    pub watches: usize,
}

/// Mode bits of one (connection, path) pair. Data table: bits 0–2; child table: 3–4.
type Modes = u8;
const DATA_STANDARD: Modes = 1 << 0;
const DATA_PERSISTENT: Modes = 1 << 1;
const DATA_RECURSIVE: Modes = 1 << 2;
const CHILD_STANDARD: Modes = 1 << 3;
const CHILD_PERSISTENT: Modes = 1 << 4;
const DATA_ANY: Modes = DATA_STANDARD | DATA_PERSISTENT | DATA_RECURSIVE;
const CHILD_ANY: Modes = CHILD_STANDARD | CHILD_PERSISTENT;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watcher {
    conn: ConnId,
    // Invariant: modes != 0.
    modes: Modes,
}

/// The watchers of one path: inline when there is one (the common case), else a vector.
#[derive(Debug)]
enum Watchers {
    One(Watcher),
    // Invariant: len >= 2.
    Many(Vec<Watcher>),
}

impl Watchers {
    fn as_slice(&self) -> &[Watcher] {
        match self {
            Watchers::One(w) => std::slice::from_ref(w),
            Watchers::Many(v) => v,
        }
    }
    fn as_mut_slice(&mut self) -> &mut [Watcher] {
        match self {
            Watchers::One(w) => std::slice::from_mut(w),
            Watchers::Many(v) => v,
        }
    }
    fn push(&mut self, w: Watcher) {
        match self {
            Watchers::One(first) => *self = Watchers::Many(vec![*first, w]),
            Watchers::Many(v) => v.push(w),
        }
    }
    /// Drops pairs whose modes became 0, calling `gone` for each; false if none remain.
    fn retain_nonzero(&mut self, mut gone: impl FnMut(ConnId)) -> bool {
        match self {
            Watchers::One(w) => {
                if w.modes == 0 {
                    gone(w.conn);
                    return false;
                }
                true
            }
            Watchers::Many(v) => {
                v.retain(|w| {
                    if w.modes == 0 {
                        gone(w.conn);
                    }
                    w.modes != 0
                });
                match v.len() {
                    0 => false,
                    1 => {
                        *self = Watchers::One(v[0]);
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

/// The watches of one shard's connections.
#[derive(Debug, Default)]
pub struct WatchTable {
    // Invariant: every path's Watchers is non-empty, every Watcher has modes != 0.
    by_path: HashMap<Arc<str>, Watchers>,
    // Invariant: conn's set holds exactly the paths where conn has a Watcher; no set
    // is empty.
    by_conn: HashMap<ConnId, HashSet<Arc<str>>>,
    // Invariant: number of Watchers with DATA_RECURSIVE. While 0, a trigger does not
    // walk ancestors (ZooKeeper's recursiveWatchQty optimisation).
    recursive: usize,
    // Scratch for one change's triggers; empty between calls.
    notified: HashSet<ConnId>,
    // Watchers per trigger, by event type (statistics only).
    triggered: TriggerSizes,
}

/// Count, sum, minimum and maximum of the watchers one trigger found: one sample per
/// `WatchManager.triggerWatch` call that found at least one (ZooKeeper records none
/// for a trigger without watchers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TriggerSize {
    /// Triggers that found watchers.
    pub count: u64,
    /// Watchers they found.
    pub sum: u64,
    /// Fewest in one trigger (meaningful when `count > 0`).
    pub min: u64,
    /// Most in one trigger.
    pub max: u64,
}

impl TriggerSize {
    fn record(&mut self, watchers: usize) {
        let n = watchers as u64;
        self.min = if self.count == 0 { n } else { self.min.min(n) };
        self.max = self.max.max(n);
        self.count += 1;
        self.sum = self.sum.saturating_add(n);
    }
}

/// ZooKeeper's watch-trigger summaries, by the event a trigger sends:
/// `node_created_watch_count`, `node_deleted_watch_count`, `node_changed_watch_count`
/// and `node_children_watch_count` (`WatchManager.triggerWatch`). As in ZooKeeper, the
/// data table and the child table are separate triggers: a delete samples
/// `node_deleted` once for the node's data watchers (with recursive ancestors) and once
/// for its child watchers, and a watcher the child trigger does not notify (it had the
/// data event) still counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TriggerSizes {
    /// NodeCreated.
    pub created: TriggerSize,
    /// NodeDeleted.
    pub deleted: TriggerSize,
    /// NodeDataChanged.
    pub changed: TriggerSize,
    /// NodeChildrenChanged.
    pub children: TriggerSize,
}

impl TriggerSizes {
    fn record(&mut self, ty: EventType, watchers: usize) {
        if watchers == 0 {
            return;
        }
        match ty {
            EventType::NodeCreated => self.created.record(watchers),
            EventType::NodeDeleted => self.deleted.record(watchers),
            EventType::NodeDataChanged => self.changed.record(watchers),
            EventType::NodeChildrenChanged => self.children.record(watchers),
            _ => {}
        }
    }
}

impl WatchTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watchers per trigger so far, by event type.
    pub fn triggered(&self) -> TriggerSizes {
        self.triggered
    }

    /// Registers a watch (`DataTree.getData/statNode/getChildren/addWatch`). Adding a mode
    /// the pair already has changes nothing; other modes combine (3.9 `WatchStats`): a
    /// connection may hold a one-shot and a persistent watch on one path, and gets one
    /// event per change. Returns whether anything was added.
    ///
    /// The caller must not register for a connection that is closing (ZooKeeper ignores
    /// watches from stale connections), and registers an exists watch even when the node
    /// is missing, but a getData/getChildren watch only when the read succeeded.
    pub fn add(&mut self, path: &str, conn: ConnId, kind: WatchKind) -> bool {
        self.add_bits(path, conn, kind.bits())
    }

    fn add_bits(&mut self, path: &str, conn: ConnId, bits: Modes) -> bool {
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        let watchers = self.by_path.entry(key.clone());
        let added;
        match watchers {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Watchers::One(Watcher { conn, modes: bits }));
                added = bits;
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let ws = o.get_mut();
                match ws.as_mut_slice().iter_mut().find(|w| w.conn == conn) {
                    Some(w) => {
                        added = bits & !w.modes;
                        w.modes |= bits;
                    }
                    None => {
                        ws.push(Watcher { conn, modes: bits });
                        added = bits;
                    }
                }
            }
        }
        if added & DATA_RECURSIVE != 0 {
            self.recursive += 1;
        }
        self.by_conn.entry(conn).or_default().insert(key);
        added != 0
    }

    /// NodeCreated for `path` (data table, with recursive ancestors), then
    /// NodeChildrenChanged for its parent (child table). `DataTree.createNode`.
    pub fn node_created(&mut self, path: &str, zxid: i64, out: &mut Vec<Notification>) {
        self.trigger_data(path, EventType::NodeCreated, zxid, out);
        self.notified.clear();
        self.trigger_child(
            path::parent(path),
            EventType::NodeChildrenChanged,
            zxid,
            false,
            out,
        );
    }

    /// NodeDeleted for `path` from the data table (with recursive ancestors), then from
    /// the child table to connections not yet notified, then NodeChildrenChanged for the
    /// parent. `DataTree.deleteNode`. One-shot data and child watches on `path` are both
    /// consumed; persistent ones stay.
    pub fn node_deleted(&mut self, path: &str, zxid: i64, out: &mut Vec<Notification>) {
        self.trigger_data(path, EventType::NodeDeleted, zxid, out);
        self.trigger_child(path, EventType::NodeDeleted, zxid, true, out);
        self.notified.clear();
        self.trigger_child(
            path::parent(path),
            EventType::NodeChildrenChanged,
            zxid,
            false,
            out,
        );
    }

    /// NodeDataChanged for `path` (data table, with recursive ancestors).
    /// `DataTree.setData`. setACL fires nothing.
    pub fn data_changed(&mut self, path: &str, zxid: i64, out: &mut Vec<Notification>) {
        self.trigger_data(path, EventType::NodeDataChanged, zxid, out);
        self.notified.clear();
    }

    /// Data-table trigger. Leaves the notified connections in `self.notified`.
    fn trigger_data(&mut self, path: &str, ty: EventType, zxid: i64, out: &mut Vec<Notification>) {
        debug_assert!(self.notified.is_empty());
        let mut emptied = false;
        if let Some(ws) = self.by_path.get_mut(path) {
            for w in ws.as_mut_slice() {
                if w.modes & DATA_ANY != 0 {
                    self.notified.insert(w.conn);
                    out.push(notification(w.conn, ty, path, zxid, AclOf::Node));
                    w.modes &= !DATA_STANDARD;
                }
            }
            let by_conn = &mut self.by_conn;
            emptied = !ws.retain_nonzero(|conn| forget(by_conn, conn, path));
        }
        if emptied {
            self.by_path.remove(path);
        }
        if self.recursive == 0 {
            self.triggered.record(ty, self.notified.len());
            return;
        }
        for ancestor in path::ancestors(path) {
            let Some(ws) = self.by_path.get(ancestor) else {
                continue;
            };
            for w in ws.as_slice() {
                if w.modes & DATA_RECURSIVE != 0 && self.notified.insert(w.conn) {
                    out.push(notification(w.conn, ty, path, zxid, AclOf::Node));
                }
            }
        }
        self.triggered.record(ty, self.notified.len());
    }

    /// Child-table trigger on `path` only (the child table never holds recursive
    /// watches). With `suppress`, connections in `self.notified` are not sent the event,
    /// but their one-shot watch is still consumed (`WatchManager.triggerWatch`).
    fn trigger_child(
        &mut self,
        path: &str,
        ty: EventType,
        zxid: i64,
        suppress: bool,
        out: &mut Vec<Notification>,
    ) {
        let acl = if ty == EventType::NodeChildrenChanged {
            AclOf::Parent
        } else {
            AclOf::Node
        };
        let Some(ws) = self.by_path.get_mut(path) else {
            return;
        };
        let mut watchers = 0;
        for w in ws.as_mut_slice() {
            if w.modes & CHILD_ANY != 0 {
                watchers += 1;
                if !(suppress && self.notified.contains(&w.conn)) {
                    out.push(notification(w.conn, ty, path, zxid, acl));
                }
                w.modes &= !CHILD_STANDARD;
            }
        }
        self.triggered.record(ty, watchers);
        let by_conn = &mut self.by_conn;
        if !ws.retain_nonzero(|conn| forget(by_conn, conn, path)) {
            self.by_path.remove(path);
        }
    }

    /// checkWatches (`DataTree.containsWatcher`): Children and Data ask for the one-shot
    /// watch of that table; Persistent for a PERSISTENT watch; PersistentRecursive for a
    /// recursive one; Any for any mode in either table. The caller answers NoWatcher on
    /// false.
    pub fn contains(&self, path: &str, conn: ConnId, ty: WatcherType) -> bool {
        self.modes(path, conn) & type_bits(ty) != 0
    }

    /// removeWatches (`DataTree.removeWatch`): removes the modes [`WatchTable::contains`]
    /// would test — Children: the one-shot child watch; Data: the one-shot data watch
    /// (an exists watch is one); Persistent: the persistent watch from both tables;
    /// PersistentRecursive: the recursive watch; Any: everything the connection has on
    /// the path. Returns false (→ NoWatcher) when nothing was removed. The server sends no
    /// event for a removal; DataWatchRemoved etc. are made by the client library.
    pub fn remove(&mut self, path: &str, conn: ConnId, ty: WatcherType) -> bool {
        let bits = type_bits(ty);
        let Some(ws) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(w) = ws.as_mut_slice().iter_mut().find(|w| w.conn == conn) else {
            return false;
        };
        let removed = w.modes & bits;
        w.modes &= !bits;
        if removed & DATA_RECURSIVE != 0 {
            self.recursive -= 1;
        }
        let by_conn = &mut self.by_conn;
        if !ws.retain_nonzero(|conn| forget(by_conn, conn, path)) {
            self.by_path.remove(path);
        }
        removed != 0
    }

    /// Drops every watch of a closed connection (`DataTree.removeCnxn`).
    pub fn remove_connection(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for p in paths {
            let Some(ws) = self.by_path.get_mut(&*p) else {
                continue;
            };
            for w in ws.as_mut_slice() {
                if w.conn == conn {
                    if w.modes & DATA_RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                    w.modes = 0;
                }
            }
            if !ws.retain_nonzero(|_| {}) {
                self.by_path.remove(&*p);
            }
        }
    }

    /// Re-registers a reconnecting client's watches (`DataTree.setWatches`), firing at
    /// once what it missed since `relative_zxid`, in this order:
    /// - data watches: node gone → NodeDeleted; `mzxid > relative_zxid` →
    ///   NodeDataChanged; else the one-shot data watch is registered;
    /// - exist watches: node present → NodeCreated; else a one-shot data watch;
    /// - child watches: node gone → NodeDeleted; `pzxid > relative_zxid` →
    ///   NodeChildrenChanged; else the one-shot child watch;
    /// - persistent and recursive watches: registered, never fired.
    ///
    /// `node` answers for the tree the request is served against. Events fired here
    /// carry zxid −1 and are not ACL-filtered. Paths are not validated (ZooKeeper does
    /// not either).
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        lists: SetWatchLists<'_>,
        node: impl Fn(&str) -> Option<NodeZxids>,
        out: &mut Vec<Notification>,
    ) {
        let rel = lists.relative_zxid;
        let mut fire = |ty, p: &str| out.push(notification(conn, ty, p, -1, AclOf::Unchecked));
        for p in lists.data {
            match node(p) {
                None => fire(EventType::NodeDeleted, p),
                Some(n) if n.mzxid > rel => fire(EventType::NodeDataChanged, p),
                Some(_) => {
                    self.add(p, conn, WatchKind::Data);
                }
            }
        }
        for p in lists.exist {
            match node(p) {
                Some(_) => fire(EventType::NodeCreated, p),
                None => {
                    self.add(p, conn, WatchKind::Data);
                }
            }
        }
        for p in lists.child {
            match node(p) {
                None => fire(EventType::NodeDeleted, p),
                Some(n) if n.pzxid > rel => fire(EventType::NodeChildrenChanged, p),
                Some(_) => {
                    self.add(p, conn, WatchKind::Child);
                }
            }
        }
        for p in lists.persistent {
            self.add(p, conn, WatchKind::Persistent);
        }
        for p in lists.persistent_recursive {
            self.add(p, conn, WatchKind::PersistentRecursive);
        }
    }

    /// `zk_watch_count` (`DataTree.getWatchCount`): (connection, path) pairs in the data
    /// table plus pairs in the child table. A persistent watch counts twice.
    pub fn watch_count(&self) -> usize {
        self.by_path
            .values()
            .flat_map(Watchers::as_slice)
            .map(|w| usize::from(w.modes & DATA_ANY != 0) + usize::from(w.modes & CHILD_ANY != 0))
            .sum()
    }

    /// `wchs` (`dumpWatchesSummary`), data table only.
    ///
    /// One known difference: ZooKeeper keeps a connection in its per-watcher map after
    /// its last data watch *fired* (only an explicit removal or a disconnect drops the
    /// entry), so its "connections" count and `wchc` include such connections with no
    /// paths. Here a connection counts only while it has a data-table watch.
    pub fn summary(&self) -> WatchSummary {
        let mut s = WatchSummary::default();
        for ws in self.by_path.values() {
            let n = ws
                .as_slice()
                .iter()
                .filter(|w| w.modes & DATA_ANY != 0)
                .count();
            if n > 0 {
                s.paths += 1;
                s.watches += n;
            }
        }
        s.connections = self
            .by_conn
            .keys()
            .filter(|c| self.data_paths_of(**c).next().is_some())
            .count();
        s
    }

    /// `wchc`: the paths one connection watches in the data table (unordered).
    pub fn data_paths_of(&self, conn: ConnId) -> impl Iterator<Item = &str> + '_ {
        self.by_conn
            .get(&conn)
            .into_iter()
            .flatten()
            .filter(move |p| self.modes(p, conn) & DATA_ANY != 0)
            .map(|p| &**p)
    }

    /// The connections that have any watch (unordered).
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_conn.keys().copied()
    }

    /// `wchp`: every path with data-table watchers and those connections (unordered).
    pub fn data_watchers_by_path(&self) -> impl Iterator<Item = (&str, Vec<ConnId>)> + '_ {
        self.by_path.iter().filter_map(|(p, ws)| {
            let conns: Vec<ConnId> = ws
                .as_slice()
                .iter()
                .filter(|w| w.modes & DATA_ANY != 0)
                .map(|w| w.conn)
                .collect();
            (!conns.is_empty()).then_some((&**p, conns))
        })
    }

    /// Whether the table holds no watch at all.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    fn modes(&self, path: &str, conn: ConnId) -> Modes {
        self.by_path
            .get(path)
            .and_then(|ws| ws.as_slice().iter().find(|w| w.conn == conn))
            .map_or(0, |w| w.modes)
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        let mut recursive = 0;
        for (p, ws) in &self.by_path {
            if let Watchers::Many(v) = ws {
                assert!(v.len() >= 2, "Many with {} entries at {p}", v.len());
            }
            let mut seen = HashSet::new();
            for w in ws.as_slice() {
                assert!(w.modes != 0, "zero modes at {p}");
                assert!(seen.insert(w.conn), "duplicate conn at {p}");
                assert!(self.by_conn[&w.conn].contains(&**p), "by_conn misses {p}");
                if w.modes & DATA_RECURSIVE != 0 {
                    recursive += 1;
                }
            }
        }
        for (c, paths) in &self.by_conn {
            assert!(!paths.is_empty());
            for p in paths {
                assert!(self.modes(p, *c) != 0, "by_conn has stale {p} for {c}");
            }
        }
        assert_eq!(recursive, self.recursive);
        assert!(self.notified.is_empty());
    }
}

/// Removes `path` from `conn`'s path set after the pair's last mode went away.
fn forget(by_conn: &mut HashMap<ConnId, HashSet<Arc<str>>>, conn: ConnId, path: &str) {
    if let Some(set) = by_conn.get_mut(&conn) {
        set.remove(path);
        if set.is_empty() {
            by_conn.remove(&conn);
        }
    }
}

fn type_bits(ty: WatcherType) -> Modes {
    match ty {
        WatcherType::Children => CHILD_STANDARD,
        WatcherType::Data => DATA_STANDARD,
        WatcherType::Persistent => DATA_PERSISTENT | CHILD_PERSISTENT,
        WatcherType::PersistentRecursive => DATA_RECURSIVE,
        WatcherType::Any => DATA_ANY | CHILD_ANY,
    }
}

fn notification(conn: ConnId, ty: EventType, path: &str, zxid: i64, acl: AclOf) -> Notification {
    Notification {
        conn,
        event: WatcherEvent {
            r#type: ty.code(),
            state: KeeperState::SyncConnected.code(),
            path: path.to_owned(),
        },
        zxid,
        acl,
    }
}

#[cfg(test)]
mod tests;
