//! Data-driven tests of the commit logic: `testdata/*.txt` scenarios run against
//! [`Sequencer`] directly, with a controlled clock and no IO.
//!
//! A scenario is blocks of one command line, a `----` line and the expected output,
//! separated by blank lines; `#` lines are comments (cite the ZooKeeper rule a block
//! pins). Run with `REWRITE=1` to regenerate expected output, then review the diff.
//!
//! Commands: `connect NAME [timeout=MS]`, `reattach NAME [badpass]`, `close NAME`,
//! `create NAME PATH [DATA] [data=TEXT] [mode=N] [op=create|create2|container|ttl] [ttl=MS]
//! [acl=SCHEME:ID:PERMS,...]`, `delete NAME PATH [v=N]`, `set NAME PATH DATA|data=TEXT [v=N]`,
//! `setacl NAME PATH ACL [v=N]`, `check NAME PATH v=N`, `multi NAME | OP | OP ...`
//! (ops as the commands without NAME), `advance MS`, `tick`, `get PATH`, `ls PATH`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use ferrokeeper_net::codes::OpCode;
use ferrokeeper_net::records::{
    Acl, CheckVersionRequest, ConnectRequest, DeleteRequest, Id, SetAclRequest, SetDataRequest,
    Stat,
};
use ferrokeeper_net::request::{Connect, CreateOp, MultiOp, Request};

use super::apply::Outcome;
use super::sequencer::{CommitRequest, CoreConfig, Origin, ReplyMsg, SeededEntropy, Sequencer};
use crate::core::acl::AuthIds;

const START_MS: i64 = 1_000_000;

struct Runner {
    core: Sequencer,
    now: i64,
    sessions: BTreeMap<String, (i64, [u8; 16], u64)>,
    next_conn: u64,
}

/// The settings every core test runs with (the sequencer's unit tests share them).
pub(super) fn cfg() -> CoreConfig {
    CoreConfig {
        tick_time_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        extended_types: true,
        skip_acl: false,
        enforce_quota: false,
        acl_providers: Default::default(),
        server_id: 1,
        container_check_interval_ms: 1000,
        container_max_per_minute: 10000,
        reconfig_enabled: false,
        stats: Default::default(),
        container_max_never_used_ms: 0,
    }
}

fn parse_acl(s: &str) -> Vec<Acl> {
    s.split(',')
        .map(|e| {
            let (rest, perms) = e.rsplit_once(':').expect("acl entry SCHEME:ID:PERMS");
            let (scheme, id) = rest.split_once(':').expect("acl entry SCHEME:ID:PERMS");
            Acl {
                perms: perms.parse().expect("perms"),
                id: Id {
                    scheme: scheme.into(),
                    id: id.into(),
                },
            }
        })
        .collect()
}

fn kv<'a>(args: &'a [&'a str], key: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The data of a create or set: `data=TEXT` (for text holding `=`) or the second
/// positional word.
fn data_arg(args: &[&str], pos: &[&str]) -> ferrokeeper_net::jute::NullableBuffer {
    kv(args, "data")
        .or(pos.get(1).copied())
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default()
        .into()
}

fn positional<'a>(args: &'a [&'a str]) -> Vec<&'a str> {
    args.iter().copied().filter(|a| !a.contains('=')).collect()
}

impl Runner {
    fn new(cfg: CoreConfig) -> Runner {
        Runner {
            core: Sequencer::new(cfg, START_MS, Box::new(SeededEntropy(7))),
            now: START_MS,
            sessions: BTreeMap::new(),
            next_conn: 1,
        }
    }

    fn owner_name(&self, owner: i64) -> String {
        match owner {
            0 => "0".into(),
            i64::MIN => "container".into(),
            o if (o >> 56) & 0xff == 0xff => format!("ttl:{}", o & 0xff_ffff_ffff),
            o => self
                .sessions
                .iter()
                .find(|(_, (id, _, _))| *id == o)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("0x{o:x}")),
        }
    }

    fn stat(&self, s: &Stat) -> String {
        format!(
            "czxid={} mzxid={} pzxid={} ctime=+{} mtime=+{} version={} cversion={} aversion={} owner={} len={} children={}",
            s.czxid,
            s.mzxid,
            s.pzxid,
            s.ctime - START_MS,
            s.mtime - START_MS,
            s.version,
            s.cversion,
            s.aversion,
            self.owner_name(s.ephemeral_owner),
            s.data_length,
            s.num_children
        )
    }

    fn outcome(&self, o: &Outcome) -> String {
        match o {
            Outcome::Created { path, stat } => format!("created {path} {}", self.stat(stat)),
            Outcome::CreatedPlain(path) => format!("created {path}"),
            Outcome::Deleted => "deleted".into(),
            Outcome::DataSet(s) => format!("set {}", self.stat(s)),
            Outcome::AclSet(s) => format!("acl set {}", self.stat(s)),
            Outcome::Checked => "checked".into(),
            Outcome::SessionCreated => "session created".into(),
            Outcome::SessionClosed => "session closed".into(),
            Outcome::Synced(path) => format!("synced {path}"),
            Outcome::Reconfigured { data, stat } => format!(
                "reconfigured {} {}",
                String::from_utf8_lossy(data),
                self.stat(stat)
            ),
            Outcome::Error(e) => format!("error {}", e.name()),
            Outcome::Multi(rs) => {
                let parts: Vec<String> = rs.iter().map(|r| self.outcome(r)).collect();
                format!("multi [\n  {}\n]", parts.join("\n  "))
            }
        }
    }

    fn op(&self, words: &[&str]) -> Request {
        let (verb, args) = (words[0], &words[1..]);
        let pos = positional(args);
        let version = kv(args, "v").map(|v| v.parse().expect("v")).unwrap_or(-1);
        match verb {
            "create" => {
                let op = match kv(args, "op").unwrap_or("create") {
                    "create" => OpCode::Create,
                    "create2" => OpCode::Create2,
                    "container" => OpCode::CreateContainer,
                    "ttl" => OpCode::CreateTtl,
                    other => panic!("unknown create op {other}"),
                };
                let flags = kv(args, "mode")
                    .map(|m| m.parse().expect("mode"))
                    .unwrap_or(if op == OpCode::CreateContainer { 4 } else { 0 });
                Request::Create(CreateOp {
                    opcode: Some(op),
                    path: pos[0].into(),
                    data: data_arg(args, &pos),
                    acl: kv(args, "acl")
                        .map(parse_acl)
                        .unwrap_or_else(|| parse_acl("world:anyone:31")),
                    flags,
                    ttl: kv(args, "ttl")
                        .map(|t| t.parse().expect("ttl"))
                        .unwrap_or(-1),
                })
            }
            "delete" => Request::Delete(DeleteRequest {
                path: pos[0].into(),
                version,
            }),
            "set" => Request::SetData(SetDataRequest {
                path: pos[0].into(),
                data: data_arg(args, &pos),
                version,
            }),
            "setacl" => Request::SetAcl(SetAclRequest {
                path: pos[0].into(),
                acl: parse_acl(pos[1]),
                version,
            }),
            "check" => Request::Check(CheckVersionRequest {
                path: pos[0].into(),
                version,
            }),
            other => panic!("unknown op {other}"),
        }
    }

    fn flush(&mut self, out: &mut String) {
        let batch = self.core.take_batch();
        for (conn, reply) in batch.replies {
            let who = self
                .sessions
                .iter()
                .find(|(_, (_, _, c))| *c == conn.0)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| format!("conn{}", conn.0));
            match reply {
                ReplyMsg::Write { zxid, outcome, .. } => {
                    let _ = writeln!(out, "{who}: zxid={zxid} {}", self.outcome(&outcome));
                }
                ReplyMsg::Close { reason } => {
                    let _ = writeln!(out, "{who}: close ({reason})");
                }
                ReplyMsg::Connected {
                    timeout_ms, valid, ..
                } => {
                    let _ = writeln!(out, "{who}: connected valid={valid} timeout={timeout_ms}");
                }
            }
        }
        for c in batch.changes {
            let _ = writeln!(out, "change {:?} {} zxid={}", c.kind, c.path, c.zxid);
        }
    }

    fn run(&mut self, line: &str) -> String {
        let mut out = String::new();
        let words: Vec<&str> = line.split_whitespace().collect();
        let (verb, args) = (words[0], &words[1..]);
        match verb {
            "connect" | "reattach" => {
                let name = args[0].to_string();
                let conn = self.next_conn;
                self.next_conn += 1;
                let (session_id, passwd) = match (verb, self.sessions.get(&name)) {
                    ("reattach", Some((id, pw, _))) => {
                        let mut pw = *pw;
                        if args.contains(&"badpass") {
                            pw[0] ^= 1;
                        }
                        (*id, pw)
                    }
                    ("reattach", None) => panic!("unknown session {name}"),
                    _ => (0, [0; 16]),
                };
                let timeout = kv(args, "timeout")
                    .map(|t| t.parse().expect("timeout"))
                    .unwrap_or(10000);
                self.core.handle(
                    CommitRequest::Connect {
                        conn: Origin(conn),
                        connect: Connect {
                            request: ConnectRequest {
                                protocol_version: 0,
                                last_zxid_seen: 0,
                                time_out: timeout,
                                session_id,
                                passwd: passwd.to_vec().into(),
                            },
                            read_only: false,
                            has_read_only: true,
                        },
                    },
                    self.now,
                );
                // Learn the session before printing, so replies name it.
                let batch = self.core.take_batch();
                for (c, r) in &batch.replies {
                    if let ReplyMsg::Connected {
                        session_id,
                        passwd,
                        valid: true,
                        ..
                    } = r
                    {
                        if c.0 == conn {
                            self.sessions
                                .insert(name.clone(), (*session_id, *passwd, conn));
                        }
                    }
                }
                let mut rebuilt = batch;
                let mut tmp = std::mem::take(&mut rebuilt.replies);
                for (c, r) in tmp.drain(..) {
                    let who = if c.0 == conn {
                        name.clone()
                    } else {
                        self.sessions
                            .iter()
                            .find(|(_, (_, _, k))| *k == c.0)
                            .map(|(n, _)| format!("{n}(old conn)"))
                            .unwrap_or_else(|| format!("conn{}", c.0))
                    };
                    match r {
                        ReplyMsg::Connected {
                            timeout_ms, valid, ..
                        } => {
                            let _ = writeln!(
                                out,
                                "{who}: connected valid={valid} timeout={timeout_ms}"
                            );
                        }
                        ReplyMsg::Close { reason } => {
                            let _ = writeln!(out, "{who}: close ({reason})");
                        }
                        ReplyMsg::Write { .. } => unreachable!("a connect makes no write reply"),
                    }
                }
            }
            "close" | "create" | "delete" | "set" | "setacl" | "check" | "multi" => {
                let name = args[0];
                let (session_id, _, conn) = *self
                    .sessions
                    .get(name)
                    .unwrap_or_else(|| panic!("unknown session {name}"));
                let request = match verb {
                    "close" => Request::CloseSession,
                    "multi" => {
                        let ops: Vec<MultiOp> = line
                            .split('|')
                            .skip(1)
                            .map(|part| {
                                let w: Vec<&str> = part.split_whitespace().collect();
                                match self.op(&[&[w[0]], &w[1..]].concat()) {
                                    Request::Create(c) => MultiOp::Create(c),
                                    Request::Delete(d) => MultiOp::Delete(d),
                                    Request::SetData(s) => MultiOp::SetData(s),
                                    Request::Check(c) => MultiOp::Check(c),
                                    other => panic!("{other:?} cannot go in a multi"),
                                }
                            })
                            .collect();
                        Request::Multi(ops)
                    }
                    _ => self.op(&[&[verb], &args[1..]].concat()),
                };
                let auth = Arc::new(AuthIds::from_ip_id("127.0.0.1".into()));
                self.core.handle(
                    CommitRequest::Write {
                        conn: Origin(conn),
                        session_id,
                        xid: 1,
                        request,
                        auth,
                        local: false,
                    },
                    self.now,
                );
                self.flush(&mut out);
            }
            "advance" => {
                self.now += args[0].parse::<i64>().expect("ms");
                let _ = writeln!(out, "now=+{}", self.now - START_MS);
            }
            "tick" => {
                self.core.tick(self.now);
                self.flush(&mut out);
                if out.is_empty() {
                    out.push_str("nothing\n");
                }
            }
            "get" => match self.core.head().tree.get(args[0]) {
                Some(n) => {
                    let _ = writeln!(
                        out,
                        "data={:?} {}",
                        String::from_utf8_lossy(n.data().unwrap_or(b"")),
                        self.stat(&n.client_stat(true))
                    );
                }
                None => out.push_str("no node\n"),
            },
            "ls" => match self.core.head().tree.get(args[0]) {
                Some(n) => {
                    let names: Vec<&str> = n.children().collect();
                    let _ = writeln!(out, "[{}]", names.join(", "));
                }
                None => out.push_str("no node\n"),
            },
            other => panic!("unknown command {other}"),
        }
        out
    }
}

fn run_file(name: &str) {
    run_file_with(name, cfg());
}

fn run_file_with(name: &str, cfg: CoreConfig) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/core/testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut runner = Runner::new(cfg);
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        let command = line;
        assert_eq!(
            lines.next(),
            Some("----"),
            "{name}: expected ---- after `{command}`"
        );
        let mut expected = String::new();
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
            lines.next();
        }
        let actual = runner.run(command);
        // Whatever the command did (creates, deletes, multi, session close or expiry,
        // reaping), the digest kept along the way is the one the tree gives.
        let head = runner.core.head();
        assert_eq!(
            head.digest,
            crate::core::digest::of_tree(&head.tree),
            "{name}: digest drifted after `{command}`"
        );
        if actual != expected {
            failures.push(format!(
                "`{command}`\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
        rewritten.push_str(command);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&actual);
    }
    if std::env::var_os("REWRITE").is_some() {
        std::fs::write(&path, rewritten).expect("rewrite scenario");
        return;
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[test]
fn sessions() {
    run_file("sessions.txt");
}

#[test]
fn nodes() {
    run_file("nodes.txt");
}

#[test]
fn multi() {
    run_file("multi.txt");
}

#[test]
fn reaping() {
    run_file("reaping.txt");
}

#[test]
fn quota() {
    let enforcing = CoreConfig {
        enforce_quota: true,
        ..cfg()
    };
    run_file_with("quota.txt", enforcing);
}

/// A random command of every kind a txn can come from: creates of every mode, setData,
/// setACL, deletes, multis (some failing), session closes and reconnects, and time
/// passing (session expiry, container and TTL reaping).
fn random_command(rng: &mut impl rand::Rng) -> String {
    let who = format!("s{}", rng.random_range(0..3));
    let path = match rng.random_range(0..3) {
        0 => format!("/n{}", rng.random_range(0..4)),
        1 => format!("/n{}/c{}", rng.random_range(0..4), rng.random_range(0..3)),
        _ => format!(
            "/n{}/c{}/g{}",
            rng.random_range(0..4),
            rng.random_range(0..3),
            rng.random_range(0..2)
        ),
    };
    let data = format!("d{}", rng.random_range(0..1000));
    let create = |rng: &mut dyn rand::RngCore| match rng.next_u32() % 7 {
        0 => format!("create {path} {data} mode=1"),
        1 => format!("create {path} {data} mode=2"),
        2 => format!("create {path} {data} mode=3 op=create2"),
        3 => format!("create {path} {data} op=container"),
        4 => format!("create {path} {data} op=ttl mode=5 ttl=3000"),
        _ => format!("create {path} {data}"),
    };
    match rng.random_range(0..20) {
        0..=5 => {
            let c = create(rng);
            format!("create {who} {}", &c["create ".len()..])
        }
        6..=8 => format!("set {who} {path} {data}"),
        9 => format!("setacl {who} {path} world:anyone:31"),
        10..=12 => format!("delete {who} {path}"),
        13 | 14 => {
            let first = create(rng);
            let second = match rng.random_range(0..3) {
                0 => format!("set {path} {data}"),
                1 => format!("delete {path}"),
                _ => format!("check {path} v={}", rng.random_range(-1..2)),
            };
            format!("multi {who} | {first} | {second}")
        }
        15 => format!("close {who}"),
        16 => format!("connect {who}"),
        17 => format!("advance {}", rng.random_range(500..6000)),
        _ => "tick".into(),
    }
}

/// The digest kept through random txns equals a full recomputation after every one; a
/// snapshot of the head stores that digest and loads with it; and txns applied on a tree
/// rebased on the snapshot (served partly from the mapped file) keep it too.
#[test]
fn random_txns_keep_the_digest() {
    use rand::SeedableRng;
    let dir = std::env::temp_dir().join(format!("fk-digest-random-{}", std::process::id()));
    for seed in 0..6u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut r = Runner::new(cfg());
        for who in ["s0", "s1", "s2"] {
            r.run(&format!("connect {who}"));
        }
        for step in 0..600 {
            let cmd = random_command(&mut rng);
            r.run(&cmd);
            let head = r.core.head();
            assert_eq!(
                head.digest,
                crate::core::digest::of_tree(&head.tree),
                "seed {seed} step {step}: digest drifted after `{cmd}`"
            );
            if step % 150 == 149 {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("temp dir");
                r.core.freeze();
                let (file, _) = crate::snapshot::write_state(&dir, r.core.head())
                    .expect("write snapshot (its validation checks the digest)");
                let loaded = crate::snapshot::load_newest(&dir, true)
                    .expect("load")
                    .state
                    .expect("state");
                assert_eq!(loaded.digest, r.core.head().digest, "seed {seed}");
                assert_eq!(loaded.digest, crate::core::digest::of_tree(&loaded.tree));
                let base = ferrokeeper_storage::snapshot::read(&file)
                    .map_err(|e| e.to_string())
                    .and_then(crate::core::tree::Base::open)
                    .expect("map");
                r.core.rebase(Arc::new(base));
            }
        }
        assert!(
            r.core.head().tree.len() > 4,
            "seed {seed}: the run should leave nodes"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
