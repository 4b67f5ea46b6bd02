//! The differential harness (rules and normalisation: see `tests/differential.rs`):
//! a seeded generator of operations, one side per server under test, and the
//! comparison of their normalised outcomes. Each side's sessions are spread over the
//! addresses it is given (slot i on address i mod n), so one run compares two
//! standalone servers or two ensembles with clients on different members.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::raw::{self, err, op, perms, Conn, Event, MultiOp, OpResult, Reply};
use ferrokeeper_net::jute::Encode;
use ferrokeeper_net::records::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sessions per run. Slot 0 authenticates as digest u0, slot 1 as u1, slot 2 not at all
/// and is the only one that sets persistent watches.
const SLOTS: usize = 3;
const PERSISTENT_WATCH_SLOT: usize = 2;

/// Steps of history printed with a divergence.
const HISTORY: usize = 40;

// ---------------------------------------------------------------------------------------
// operations

/// Which ACL a create or setACL uses.
#[derive(Debug, Clone, Copy)]
enum AclChoice {
    Open,
    WorldRead,
    DigestU0,
    AuthAll,
    WorldReadPlusU1,
    Empty,
    Ip,
    NoWrite,
}

impl AclChoice {
    fn acl(self) -> Vec<Acl> {
        let id = |scheme: &str, id: &str| Id {
            scheme: scheme.into(),
            id: id.into(),
        };
        match self {
            AclChoice::Open => raw::open_acl(),
            AclChoice::WorldRead => vec![raw::world(perms::READ)],
            AclChoice::DigestU0 => vec![Acl {
                perms: perms::ALL,
                id: raw::digest_id("u0", "p0"),
            }],
            AclChoice::AuthAll => vec![Acl {
                perms: perms::ALL,
                id: id("auth", ""),
            }],
            AclChoice::WorldReadPlusU1 => {
                vec![
                    raw::world(perms::READ),
                    Acl {
                        perms: perms::ALL,
                        id: raw::digest_id("u1", "p1"),
                    },
                ]
            }
            AclChoice::Empty => vec![],
            AclChoice::Ip => vec![Acl {
                perms: perms::ALL,
                id: id("ip", "127.0.0.1"),
            }],
            AclChoice::NoWrite => vec![raw::world(perms::READ | perms::CREATE | perms::DELETE)],
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        s: usize,
        opcode: i32,
        path: String,
        data: Vec<u8>,
        acl: AclChoice,
        flags: i32,
        ttl: i64,
    },
    Delete {
        s: usize,
        path: String,
        version: i32,
    },
    SetData {
        s: usize,
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Exists {
        s: usize,
        path: String,
        watch: bool,
    },
    GetData {
        s: usize,
        path: String,
        watch: bool,
    },
    GetChildren {
        s: usize,
        path: String,
        watch: bool,
        two: bool,
    },
    GetAcl {
        s: usize,
        path: String,
    },
    SetAcl {
        s: usize,
        path: String,
        acl: AclChoice,
        version: i32,
    },
    Multi {
        s: usize,
        ops: Vec<MultiOp>,
    },
    MultiRead {
        s: usize,
        ops: Vec<MultiOp>,
    },
    Sync {
        s: usize,
        path: String,
    },
    GetEphemerals {
        s: usize,
        prefix: String,
    },
    GetAllChildrenNumber {
        s: usize,
        path: String,
    },
    AddWatch {
        s: usize,
        path: String,
        mode: i32,
    },
    RemoveWatches {
        s: usize,
        path: String,
        watcher_type: i32,
    },
    CheckWatches {
        s: usize,
        path: String,
        watcher_type: i32,
    },
    WhoAmI {
        s: usize,
    },
    Reconnect {
        s: usize,
    },
}

impl Op {
    fn slot(&self) -> usize {
        match self {
            Op::Create { s, .. }
            | Op::Delete { s, .. }
            | Op::SetData { s, .. }
            | Op::Exists { s, .. }
            | Op::GetData { s, .. }
            | Op::GetChildren { s, .. }
            | Op::GetAcl { s, .. }
            | Op::SetAcl { s, .. }
            | Op::Multi { s, .. }
            | Op::MultiRead { s, .. }
            | Op::Sync { s, .. }
            | Op::GetEphemerals { s, .. }
            | Op::GetAllChildrenNumber { s, .. }
            | Op::AddWatch { s, .. }
            | Op::RemoveWatches { s, .. }
            | Op::CheckWatches { s, .. }
            | Op::WhoAmI { s }
            | Op::Reconnect { s } => *s,
        }
    }

    /// Whether the op may change state (and so fire watches): the harness settles every
    /// session after it.
    fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. }
                | Op::Delete { .. }
                | Op::SetData { .. }
                | Op::SetAcl { .. }
                | Op::Multi { .. }
                | Op::Reconnect { .. }
        )
    }
}

/// Generates operations. Only sequential names depend on replies: they are learnt from
/// the reference server's successful creates (the candidate gave the same, or the run
/// has already stopped).
struct Generator {
    rng: StdRng,
    root: String,
    /// The fixed path space by depth below the root: [root], [a, b, c], [a/a, ...], ...
    fixed: Vec<Vec<String>>,
    sequential: Vec<String>,
}

impl Generator {
    fn new(seed: u64, root: &str) -> Generator {
        let mut fixed = vec![vec![root.to_string()]];
        for depth in 0..3 {
            let mut next = Vec::new();
            for p in &fixed[depth] {
                for name in ["a", "b"] {
                    next.push(format!("{p}/{name}"));
                }
            }
            fixed.push(next);
        }
        fixed[1].push(format!("{root}/c"));
        Generator {
            rng: StdRng::seed_from_u64(seed),
            root: root.to_string(),
            fixed,
            sequential: Vec::new(),
        }
    }

    fn learn(&mut self, path: &str) {
        if path.len() > 10 && path[path.len() - 10..].bytes().all(|b| b.is_ascii_digit()) {
            self.sequential.push(path.to_string());
            if self.sequential.len() > 16 {
                self.sequential.remove(0);
            }
        }
    }

    fn path(&mut self) -> String {
        let roll = self.rng.random_range(0..100);
        if roll < 12 && !self.sequential.is_empty() {
            let i = self.rng.random_range(0..self.sequential.len());
            self.sequential[i].clone()
        } else if roll < 15 {
            // Odd paths: missing parents, trailing slash, empty component.
            match self.rng.random_range(0..4) {
                0 => format!("{}/zz/a", self.root),
                1 => format!("{}/a/", self.root),
                2 => format!("{}//a", self.root),
                _ => format!("{}/a/a/a/a", self.root),
            }
        } else {
            // Shallow paths more often, so parents exist and children collide.
            let depth = match self.rng.random_range(0..100) {
                0..=4 => 0,
                5..=49 => 1,
                50..=84 => 2,
                _ => 3,
            };
            let level = &self.fixed[depth];
            level[self.rng.random_range(0..level.len())].clone()
        }
    }

    /// A path other than the root (so the root's ACL stays open).
    fn non_root_path(&mut self) -> String {
        loop {
            let p = self.path();
            if p != self.root {
                return p;
            }
        }
    }

    fn data(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..4) {
            0 => Vec::new(),
            1 => b"x".to_vec(),
            2 => b"hello".to_vec(),
            _ => {
                let n = self.rng.random_range(0..24);
                (0..n).map(|_| self.rng.random()).collect()
            }
        }
    }

    fn version(&mut self) -> i32 {
        match self.rng.random_range(0..10) {
            0..=4 => -1,
            5..=6 => 0,
            7 | 8 => 1,
            _ => self.rng.random_range(2..5),
        }
    }

    fn acl(&mut self) -> AclChoice {
        match self.rng.random_range(0..100) {
            0..=59 => AclChoice::Open,
            60..=67 => AclChoice::WorldRead,
            68..=75 => AclChoice::DigestU0,
            76..=83 => AclChoice::AuthAll,
            84..=89 => AclChoice::WorldReadPlusU1,
            90..=92 => AclChoice::Empty,
            93..=96 => AclChoice::Ip,
            _ => AclChoice::NoWrite,
        }
    }

    /// (opcode, flags, ttl) for a create.
    fn create_kind(&mut self, in_multi: bool) -> (i32, i32, i64) {
        let plain = |g: &mut Generator, flags: i32| {
            // create2 only outside multi (see the module docs).
            let opcode = if !in_multi && g.rng.random_bool(0.5) {
                op::CREATE2
            } else {
                op::CREATE
            };
            (opcode, flags, 0)
        };
        match self.rng.random_range(0..100) {
            0..=29 => plain(self, raw::mode::PERSISTENT),
            30..=49 => plain(self, raw::mode::EPHEMERAL),
            50..=59 => plain(self, raw::mode::PERSISTENT_SEQUENTIAL),
            60..=69 => plain(self, raw::mode::EPHEMERAL_SEQUENTIAL),
            70..=79 => (op::CREATE_CONTAINER, raw::mode::CONTAINER, 0),
            80..=88 => (op::CREATE_TTL, raw::mode::PERSISTENT_WITH_TTL, 3_600_000),
            89..=95 => (
                op::CREATE_TTL,
                raw::mode::PERSISTENT_SEQUENTIAL_WITH_TTL,
                3_600_000,
            ),
            // Invalid TTLs.
            96 | 97 => (op::CREATE_TTL, raw::mode::PERSISTENT_WITH_TTL, 0),
            _ => (op::CREATE_TTL, raw::mode::PERSISTENT, 1000),
        }
    }

    fn multi_op(&mut self) -> MultiOp {
        match self.rng.random_range(0..4) {
            0 => {
                let (opcode, flags, ttl) = self.create_kind(true);
                let acl = self.acl().acl();
                MultiOp::Create {
                    opcode,
                    path: self.path(),
                    data: self.data(),
                    acl,
                    flags,
                    ttl,
                }
            }
            1 => MultiOp::Delete {
                path: self.non_root_path(),
                version: self.version(),
            },
            2 => MultiOp::SetData {
                path: self.path(),
                data: self.data(),
                version: self.version(),
            },
            _ => MultiOp::Check {
                path: self.path(),
                version: self.version(),
            },
        }
    }

    fn next(&mut self) -> Op {
        let s = self.rng.random_range(0..SLOTS);
        // One-shot watches only from the slots that never set persistent ones.
        let watch = s != PERSISTENT_WATCH_SLOT && self.rng.random_bool(0.7);
        match self.rng.random_range(0..1000) {
            0..=219 => {
                let (opcode, flags, ttl) = self.create_kind(false);
                Op::Create {
                    s,
                    opcode,
                    path: self.path(),
                    data: self.data(),
                    acl: self.acl(),
                    flags,
                    ttl,
                }
            }
            // The root is never deleted nor given a restrictive ACL, so the run stays lively.
            220..=339 => Op::Delete {
                s,
                path: self.non_root_path(),
                version: self.version(),
            },
            340..=459 => Op::SetData {
                s,
                path: self.path(),
                data: self.data(),
                version: self.version(),
            },
            460..=539 => Op::Exists {
                s,
                path: self.path(),
                watch,
            },
            540..=619 => Op::GetData {
                s,
                path: self.path(),
                watch,
            },
            620..=699 => Op::GetChildren {
                s,
                path: self.path(),
                watch,
                two: self.rng.random_bool(0.5),
            },
            700..=729 => Op::GetAcl {
                s,
                path: self.path(),
            },
            730..=759 => Op::SetAcl {
                s,
                path: self.non_root_path(),
                acl: self.acl(),
                version: self.version(),
            },
            760..=829 => {
                let n = match self.rng.random_range(0..10) {
                    0..=4 => 1,
                    5..=7 => 2,
                    _ => self.rng.random_range(3..=4),
                };
                Op::Multi {
                    s,
                    ops: (0..n).map(|_| self.multi_op()).collect(),
                }
            }
            830..=859 => {
                let n = self.rng.random_range(1..=3);
                let ops = (0..n)
                    .map(|_| {
                        if self.rng.random_bool(0.5) {
                            MultiOp::GetData { path: self.path() }
                        } else {
                            MultiOp::GetChildren { path: self.path() }
                        }
                    })
                    .collect();
                Op::MultiRead { s, ops }
            }
            860..=874 => Op::Sync {
                s,
                path: self.path(),
            },
            875..=899 => {
                let prefix = match self.rng.random_range(0..4) {
                    0 => "/".to_string(),
                    1 => self.root.clone(),
                    _ => self.path(),
                };
                Op::GetEphemerals { s, prefix }
            }
            900..=924 => Op::GetAllChildrenNumber {
                s,
                path: self.path(),
            },
            925..=949 => {
                // Session 2's persistent watches: recursive on the root, plain elsewhere,
                // so one path never has both modes in one session.
                let path = if self.rng.random_bool(0.3) {
                    self.root.clone()
                } else {
                    self.path()
                };
                let mode = if path == self.root { 1 } else { 0 };
                Op::AddWatch {
                    s: PERSISTENT_WATCH_SLOT,
                    path,
                    mode,
                }
            }
            950..=969 => {
                let watcher_type = if s == PERSISTENT_WATCH_SLOT {
                    3
                } else {
                    self.rng.random_range(1..=3)
                };
                Op::RemoveWatches {
                    s,
                    path: self.path(),
                    watcher_type,
                }
            }
            970..=979 => {
                let watcher_type = if s == PERSISTENT_WATCH_SLOT {
                    3
                } else {
                    self.rng.random_range(1..=3)
                };
                Op::CheckWatches {
                    s,
                    path: self.path(),
                    watcher_type,
                }
            }
            980..=989 => Op::WhoAmI { s },
            _ => Op::Reconnect { s },
        }
    }
}

// ---------------------------------------------------------------------------------------
// one server's side of the run

struct Side {
    /// The servers; slot i's session is on `addrs[i % addrs.len()]`.
    addrs: Vec<String>,
    sessions: Vec<Conn>,
    generation: Vec<usize>,
    labels: HashMap<i64, String>,
    ranks: HashMap<i64, usize>,
}

impl Side {
    async fn open(addrs: &[String]) -> Side {
        let mut side = Side {
            addrs: addrs.to_vec(),
            sessions: Vec::new(),
            generation: vec![0; SLOTS],
            labels: HashMap::new(),
            ranks: HashMap::new(),
        };
        for slot in 0..SLOTS {
            let c = side.connect(slot).await;
            side.sessions.push(c);
        }
        side
    }

    async fn connect(&mut self, slot: usize) -> Conn {
        let addr = &self.addrs[slot % self.addrs.len()];
        let mut c = Conn::connect(addr).await;
        assert_ne!(c.session_id, 0, "session refused by {addr}");
        self.labels
            .insert(c.session_id, format!("s{slot}g{}", self.generation[slot]));
        if slot < 2 {
            let auth = format!("u{slot}:p{slot}");
            assert_eq!(c.add_auth("digest", auth.as_bytes()).await, 0);
        }
        c
    }

    async fn close_all(&mut self) {
        for c in &mut self.sessions {
            if !c.is_closed() {
                c.close().await;
            }
        }
    }

    /// A zxid as its rank of first appearance on this server; values ≤ 0 as they are.
    fn zx(&mut self, zxid: i64) -> String {
        if zxid <= 0 {
            return zxid.to_string();
        }
        let next = self.ranks.len();
        format!("#{}", self.ranks.entry(zxid).or_insert(next))
    }

    fn owner(&self, owner: i64) -> String {
        match self.labels.get(&owner) {
            Some(l) => l.clone(),
            None if owner == 0 => "0".into(),
            None => format!("{owner:#x}"),
        }
    }

    fn stat(&mut self, s: &Stat) -> String {
        format!(
            "{{cz{} mz{} pz{} v{} cv{} av{} own:{} len{} nc{}}}",
            self.zx(s.czxid),
            self.zx(s.mzxid),
            self.zx(s.pzxid),
            s.version,
            s.cversion,
            s.aversion,
            self.owner(s.ephemeral_owner),
            s.data_length,
            s.num_children
        )
    }

    fn events(events: Vec<Event>, sort: bool) -> String {
        let mut v: Vec<String> = events
            .into_iter()
            .map(|e| format!("{}:{}:{}", e.kind, e.state, e.path))
            .collect();
        if sort {
            v.sort();
        }
        format!("[{}]", v.join(" "))
    }

    /// Runs one op and returns everything observable about it, normalised.
    async fn exec(&mut self, op: &Op) -> String {
        let slot = op.slot();
        let mut out = String::new();
        let reply = match op {
            Op::Reconnect { s } => {
                let r = if self.sessions[*s].is_closed() {
                    Reply {
                        xid: 0,
                        zxid: 0,
                        err: err::CLOSED,
                        body: vec![],
                    }
                } else {
                    self.sessions[*s].close().await
                };
                let z = self.zx(r.zxid);
                let own = Side::events(self.sessions[*s].take_events(), true);
                let _ = write!(
                    out,
                    "close err={} z={z} body={:?} own-events:{own}",
                    r.err, r.body
                );
                self.generation[*s] += 1;
                let c = self.connect(*s).await;
                self.sessions[*s] = c;
                None
            }
            _ => Some(self.call(op).await),
        };
        if let Some(r) = reply {
            let z = self.zx(r.zxid);
            let _ = write!(out, "err={} z={} ", r.err, z);
            if r.err == 0 {
                out.push_str(&self.describe(op, &r));
            } else if !r.body.is_empty() {
                let _ = write!(out, "body={:?}", r.body);
            }
        }
        // Notifications that arrived before the reply, on the acting session.
        let pre = self.sessions[slot].take_events();
        let _ = write!(out, " | pre{slot}:{}", Side::events(pre, false));
        if op.is_write() {
            // Settle: one sync per session, all in flight together.
            let body = SyncRequest { path: "/".into() }.to_bytes();
            let mut xids = Vec::new();
            for c in &mut self.sessions {
                xids.push(c.start_call(op::SYNC, &body).await);
            }
            for (c, xid) in self.sessions.iter_mut().zip(xids) {
                let r = c.wait_reply(xid).await;
                assert_eq!(r.err, 0, "settling sync failed on {:?}", self.addrs);
            }
            // A closeSession deletes its ephemerals in hash-set order: sort its events.
            let sort = matches!(op, Op::Reconnect { .. });
            for (i, c) in self.sessions.iter_mut().enumerate() {
                let _ = write!(out, " s{i}:{}", Side::events(c.take_events(), sort));
            }
        }
        for c in &mut self.sessions {
            c.take_log();
        }
        out
    }

    async fn call(&mut self, op: &Op) -> Reply {
        let c = &mut self.sessions[op.slot()];
        match op {
            Op::Create {
                opcode,
                path,
                data,
                acl,
                flags,
                ttl,
                ..
            } => {
                if *opcode == op::CREATE_TTL {
                    let req = CreateTtlRequest {
                        path: path.clone(),
                        data: data.clone().into(),
                        acl: acl.acl(),
                        flags: *flags,
                        ttl: *ttl,
                    };
                    c.call(*opcode, &req).await
                } else {
                    let req = CreateRequest {
                        path: path.clone(),
                        data: data.clone().into(),
                        acl: acl.acl(),
                        flags: *flags,
                    };
                    c.call(*opcode, &req).await
                }
            }
            Op::Delete { path, version, .. } => {
                c.call(
                    op::DELETE,
                    &DeleteRequest {
                        path: path.clone(),
                        version: *version,
                    },
                )
                .await
            }
            Op::SetData {
                path,
                data,
                version,
                ..
            } => {
                c.call(
                    op::SET_DATA,
                    &SetDataRequest {
                        path: path.clone(),
                        data: data.clone().into(),
                        version: *version,
                    },
                )
                .await
            }
            Op::Exists { path, watch, .. } => {
                c.call(
                    op::EXISTS,
                    &ExistsRequest {
                        path: path.clone(),
                        watch: *watch,
                    },
                )
                .await
            }
            Op::GetData { path, watch, .. } => {
                c.call(
                    op::GET_DATA,
                    &GetDataRequest {
                        path: path.clone(),
                        watch: *watch,
                    },
                )
                .await
            }
            Op::GetChildren {
                path, watch, two, ..
            } => {
                if *two {
                    c.call(
                        op::GET_CHILDREN2,
                        &GetChildren2Request {
                            path: path.clone(),
                            watch: *watch,
                        },
                    )
                    .await
                } else {
                    c.call(
                        op::GET_CHILDREN,
                        &GetChildrenRequest {
                            path: path.clone(),
                            watch: *watch,
                        },
                    )
                    .await
                }
            }
            Op::GetAcl { path, .. } => {
                c.call(op::GET_ACL, &GetAclRequest { path: path.clone() })
                    .await
            }
            Op::SetAcl {
                path, acl, version, ..
            } => {
                c.call(
                    op::SET_ACL,
                    &SetAclRequest {
                        path: path.clone(),
                        acl: acl.acl(),
                        version: *version,
                    },
                )
                .await
            }
            Op::Multi { ops, .. } => c.call_raw(op::MULTI, &raw::encode_multi(ops)).await,
            Op::MultiRead { ops, .. } => c.call_raw(op::MULTI_READ, &raw::encode_multi(ops)).await,
            Op::Sync { path, .. } => c.call(op::SYNC, &SyncRequest { path: path.clone() }).await,
            Op::GetEphemerals { prefix, .. } => {
                c.call(
                    op::GET_EPHEMERALS,
                    &GetEphemeralsRequest {
                        prefix_path: prefix.clone(),
                    },
                )
                .await
            }
            Op::GetAllChildrenNumber { path, .. } => {
                c.call(
                    op::GET_ALL_CHILDREN_NUMBER,
                    &GetAllChildrenNumberRequest { path: path.clone() },
                )
                .await
            }
            Op::AddWatch { path, mode, .. } => {
                c.call(
                    op::ADD_WATCH,
                    &AddWatchRequest {
                        path: path.clone(),
                        mode: *mode,
                    },
                )
                .await
            }
            Op::RemoveWatches {
                path, watcher_type, ..
            } => {
                c.call(
                    op::REMOVE_WATCHES,
                    &RemoveWatchesRequest {
                        path: path.clone(),
                        r#type: *watcher_type,
                    },
                )
                .await
            }
            Op::CheckWatches {
                path, watcher_type, ..
            } => {
                c.call(
                    op::CHECK_WATCHES,
                    &CheckWatchesRequest {
                        path: path.clone(),
                        r#type: *watcher_type,
                    },
                )
                .await
            }
            Op::WhoAmI { .. } => c.call_raw(op::WHO_AM_I, &[]).await,
            Op::Reconnect { .. } => unreachable!("handled by exec"),
        }
    }

    /// The body of a successful reply, normalised.
    fn describe(&mut self, op: &Op, r: &Reply) -> String {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        match op {
            Op::Create { opcode, .. } => {
                if *opcode == op::CREATE {
                    format!("path={}", r.decode::<CreateResponse>().path)
                } else {
                    let c = r.decode::<Create2Response>();
                    format!("path={} stat={}", c.path, self.stat(&c.stat))
                }
            }
            Op::Delete { .. } | Op::RemoveWatches { .. } | Op::CheckWatches { .. } => {
                format!("body={:?}", r.body)
            }
            Op::SetData { .. } => {
                let s = r.decode::<SetDataResponse>().stat;
                format!("stat={}", self.stat(&s))
            }
            Op::Exists { .. } => {
                let s = r.decode::<ExistsResponse>().stat;
                format!("stat={}", self.stat(&s))
            }
            Op::GetData { .. } => {
                let g = r.decode::<GetDataResponse>();
                format!("data={:?} stat={}", g.data.0, self.stat(&g.stat))
            }
            Op::GetChildren { two: false, .. } => format!(
                "children={:?}",
                sorted(r.decode::<GetChildrenResponse>().children)
            ),
            Op::GetChildren { two: true, .. } => {
                let g = r.decode::<GetChildren2Response>();
                format!(
                    "children={:?} stat={}",
                    sorted(g.children),
                    self.stat(&g.stat)
                )
            }
            Op::GetAcl { .. } => {
                let g = r.decode::<GetAclResponse>();
                let acl: Vec<String> = g
                    .acl
                    .iter()
                    .map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id))
                    .collect();
                format!("acl={acl:?} stat={}", self.stat(&g.stat))
            }
            Op::SetAcl { .. } => {
                let s = r.decode::<SetAclResponse>().stat;
                format!("stat={}", self.stat(&s))
            }
            Op::Multi { .. } | Op::MultiRead { .. } => {
                let results = raw::decode_multi_response(&r.body);
                let mut parts = Vec::new();
                for res in results {
                    parts.push(match res {
                        OpResult::Create(p) => format!("create({p})"),
                        OpResult::Create2(p, s) => format!("create2({p},{})", self.stat(&s)),
                        OpResult::Delete => "delete".into(),
                        OpResult::SetData(s) => format!("setData({})", self.stat(&s)),
                        OpResult::Check => "check".into(),
                        OpResult::GetData(d, s) => format!("getData({d:?},{})", self.stat(&s)),
                        OpResult::GetChildren(c) => format!("getChildren({:?})", sorted(c)),
                        OpResult::Error(e) => format!("error({e})"),
                    });
                }
                format!("results=[{}]", parts.join(", "))
            }
            Op::Sync { .. } => format!("path={}", r.decode::<SyncResponse>().path),
            Op::GetEphemerals { .. } => format!(
                "ephemerals={:?}",
                sorted(r.decode::<GetEphemeralsResponse>().ephemerals)
            ),
            Op::GetAllChildrenNumber { .. } => format!(
                "n={}",
                r.decode::<GetAllChildrenNumberResponse>().total_number
            ),
            Op::AddWatch { .. } => format!("body={:?}", r.body),
            Op::WhoAmI { .. } => {
                let who: Vec<String> = r
                    .decode::<WhoAmIResponse>()
                    .client_info
                    .into_iter()
                    .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                    .collect();
                format!("who={:?}", sorted(who))
            }
            Op::Reconnect { .. } => unreachable!("handled by exec"),
        }
    }
}

/// Paths a reply created, for the generator to reuse (sequential names).
fn created_paths(op: &Op, r: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Op::Create { .. } | Op::Multi { .. } = op {
        for part in r.split(['=', '(', ',', ' ', ')']) {
            if part.starts_with('/') {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// Runs `ops` generated operations of `seed` against both sides and panics at the first
/// divergence. Each side is one server or an ensemble's members (see [`Side`]).
pub async fn run_seed(seed: u64, ops: usize, reference_addr: &[String], candidate_addr: &[String]) {
    let root = format!("/d{seed}");
    let mut gen = Generator::new(seed, &root);
    let (mut a, mut b) = tokio::join!(Side::open(reference_addr), Side::open(candidate_addr));
    let setup = Op::Create {
        s: 0,
        opcode: op::CREATE,
        path: root.clone(),
        data: vec![],
        acl: AclChoice::Open,
        flags: 0,
        ttl: 0,
    };
    let mut history: Vec<(usize, Op, String)> = Vec::new();
    let (ra, rb) = tokio::join!(a.exec(&setup), b.exec(&setup));
    check_same(seed, ops, "setup", &setup, &ra, &rb, &history);
    assert!(
        ra.starts_with("err=0"),
        "creating {root} on the reference: {ra}"
    );
    let mut events_seen = 0usize;
    // op name → reply err → count, printed at the end to show the mix stays varied.
    let mut counts: std::collections::BTreeMap<
        &'static str,
        std::collections::BTreeMap<String, usize>,
    > = Default::default();
    for step in 0..ops {
        let op = gen.next();
        let (ra, rb) = tokio::join!(a.exec(&op), b.exec(&op));
        check_same(seed, ops, &step.to_string(), &op, &ra, &rb, &history);
        if let Op::Exists {
            s,
            path,
            watch: true,
        } = &op
        {
            if ra != rb {
                // A tolerated 3.9 NoAuth (exists_acl_3_9): 3.8 registered the watch, 3.9
                // refused before registering. Drop the session's data watch on the path
                // on both servers so their watch state stays the same.
                let _ = tokio::join!(
                    a.sessions[*s].remove_watches(path, 2),
                    b.sessions[*s].remove_watches(path, 2)
                );
            }
        }
        let code = ra.split_whitespace().next().unwrap_or("").to_string();
        let code = if let (Op::Multi { .. }, true) = (&op, ra.contains("error(")) {
            "err=0 (failed)".to_string()
        } else {
            code
        };
        *counts
            .entry(op_name(&op))
            .or_default()
            .entry(code)
            .or_default() += 1;
        events_seen += ra.matches(":3:/").count();
        for p in created_paths(&op, &ra) {
            gen.learn(&p);
        }
        history.push((step, op, ra));
        if history.len() > HISTORY {
            history.remove(0);
        }
    }
    tokio::join!(a.close_all(), b.close_all());
    eprintln!("differential: seed {seed}: {events_seen} watch notifications compared; replies by op and err: {counts:?}");
}

/// ZooKeeper 3.8's `WatchManager.containsWatcher` answers "yes" when *any* connection
/// watches the path ("at the leaf node, all watcher types match"); 3.9 asks about the
/// requesting connection only, and ferrokeeper follows 3.9. So where 3.8 says Ok, a
/// NoWatcher (−121) from the candidate is accepted; every other difference is not.
fn check_watches_3_8_quirk(op: &Op, reference: &str, candidate: &str) -> bool {
    if !matches!(op, Op::CheckWatches { .. }) {
        return false;
    }
    let squash = |s: &str| {
        s.split_whitespace()
            .filter(|w| *w != "body=[]")
            .collect::<Vec<_>>()
            .join(" ")
    };
    reference.starts_with("err=0 ")
        && candidate.starts_with("err=-121 ")
        && squash(&reference.replacen("err=0 ", "err=-121 ", 1)) == squash(candidate)
}

/// ZooKeeper 3.9.2 made `exists` check READ on an existing node; 3.8 has no check.
/// Where 3.8 returns a stat (the node exists), a NoAuth (−102) from the candidate is
/// accepted if nothing else differs (watch registration is not compared here: 3.9
/// registers the watch only after the check passes).
fn exists_acl_3_9(op: &Op, reference: &str, candidate: &str) -> bool {
    if !matches!(op, Op::Exists { .. })
        || !reference.starts_with("err=0 ")
        || !candidate.starts_with("err=-102 ")
    {
        return false;
    }
    let tail = |s: &str| {
        s.split_once(" | ")
            .map(|(_, t)| t.to_string())
            .unwrap_or_default()
    };
    let zxid = |s: &str| s.split_whitespace().nth(1).map(str::to_string);
    tail(reference) == tail(candidate) && zxid(reference) == zxid(candidate)
}

/// Panics with the seed, the step, both outcomes and the recent history if the two
/// servers' outcomes differ.
fn check_same(
    seed: u64,
    ops: usize,
    step: &str,
    op: &Op,
    ra: &str,
    rb: &str,
    history: &[(usize, Op, String)],
) {
    if ra == rb || check_watches_3_8_quirk(op, ra, rb) || exists_acl_3_9(op, ra, rb) {
        return;
    }
    let mut msg = format!(
        "DIVERGENCE at seed {seed} step {step} (replay: FK_DIFF_SEED={seed} FK_DIFF_OPS={ops})\n  op:        {op:?}\n  reference: {ra}\n  candidate: {rb}\nlast {} steps (op → reference outcome):\n",
        history.len()
    );
    for (i, o, r) in history {
        let _ = writeln!(msg, "  #{i} {o:?}\n      → {r}");
    }
    panic!("{msg}");
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Create { .. } => "create",
        Op::Delete { .. } => "delete",
        Op::SetData { .. } => "setData",
        Op::Exists { .. } => "exists",
        Op::GetData { .. } => "getData",
        Op::GetChildren { .. } => "getChildren",
        Op::GetAcl { .. } => "getACL",
        Op::SetAcl { .. } => "setACL",
        Op::Multi { .. } => "multi",
        Op::MultiRead { .. } => "multiRead",
        Op::Sync { .. } => "sync",
        Op::GetEphemerals { .. } => "getEphemerals",
        Op::GetAllChildrenNumber { .. } => "getAllChildrenNumber",
        Op::AddWatch { .. } => "addWatch",
        Op::RemoveWatches { .. } => "removeWatches",
        Op::CheckWatches { .. } => "checkWatches",
        Op::WhoAmI { .. } => "whoAmI",
        Op::Reconnect { .. } => "reconnect",
    }
}
