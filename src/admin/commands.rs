//! The AdminServer's commands (`/commands/<name>`): ZooKeeper 3.9's set, by primary name
//! and alias, answered as the JSON objects ZooKeeper's `Commands` build.
//!
//! # Shape of a reply (`CommandResponse.toMap`)
//!
//! The command's data fields in the order the command puts them, then `command` (the
//! **primary** name, whichever alias was asked for), then `error` (null, or the text).
//! ZooKeeper keeps them in a `LinkedHashMap`, so a command that puts `error` among its
//! data (`leader` on a standalone server, `set_trace_mask` without an argument) gets
//! `error` before `command`. An unknown name answers `{"command": <name as asked>,
//! "error": "Unknown command: <name>"}`, with HTTP 200.
//!
//! The shapes were captured from Apache ZooKeeper 3.8.0's AdminServer (Debian's package)
//! and the 3.9 additions (`snapshot`, `restore`) read from its `Commands.java`; see
//! `tests/admin_http.rs`, which compares both servers key by key.
//!
//! This module only formats: the server gathers a [`ServerStats`] (the parts
//! [`Command::needs`] asks for) and an [`AdminContext`], and carries out
//! [`Command::effect`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::fourlw::{SideEffect, StatsNeeds, NOT_SERVING};
use super::json::{Json, JsonMap};
use super::mntr::{mntr_entries, MntrValue};
use super::stats::{BufferStats, ConnectionStats, ServerMode, ServerStats};

/// A command of the AdminServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `connection_stat_reset`, `crst`.
    ConnectionStatReset,
    /// `configuration`, `conf`, `config`.
    Configuration,
    /// `connections`, `cons`.
    Connections,
    /// `hash`.
    Hash,
    /// `dirs`.
    Dirs,
    /// `dump`.
    Dump,
    /// `environment`, `env`, `envi`.
    Environment,
    /// `get_trace_mask`, `gtmk`.
    GetTraceMask,
    /// `initial_configuration`, `icfg`.
    InitialConfiguration,
    /// `is_read_only`, `isro`.
    IsReadOnly,
    /// `last_snapshot`, `lsnp`.
    LastSnapshot,
    /// `leader`, `lead`.
    Leader,
    /// `monitor`, `mntr`.
    Monitor,
    /// `observer_connection_stat_reset`, `orst`.
    ObserverConnectionStatReset,
    /// `restore`, `rest` (POST).
    Restore,
    /// `ruok`.
    Ruok,
    /// `set_trace_mask`, `stmk`.
    SetTraceMask,
    /// `snapshot`, `snap`.
    Snapshot,
    /// `server_stats`, `srvr`.
    ServerStats,
    /// `stats`, `stat`.
    Stats,
    /// `stat_reset`, `srst`.
    StatReset,
    /// `observers`, `obsr`.
    Observers,
    /// `system_properties`, `sysp`.
    SystemProperties,
    /// `voting_view`.
    VotingView,
    /// `watches`, `wchc`.
    Watches,
    /// `watches_by_path`, `wchp`.
    WatchesByPath,
    /// `watch_summary`, `wchs`.
    WatchSummary,
    /// `zabstate`.
    ZabState,
}

/// Every command with its names, the primary name first (`Commands.java`).
pub const COMMANDS: &[(Command, &[&str])] = &[
    (
        Command::ConnectionStatReset,
        &["connection_stat_reset", "crst"],
    ),
    (Command::Configuration, &["configuration", "conf", "config"]),
    (Command::Connections, &["connections", "cons"]),
    (Command::Hash, &["hash"]),
    (Command::Dirs, &["dirs"]),
    (Command::Dump, &["dump"]),
    (Command::Environment, &["environment", "env", "envi"]),
    (Command::GetTraceMask, &["get_trace_mask", "gtmk"]),
    (
        Command::InitialConfiguration,
        &["initial_configuration", "icfg"],
    ),
    (Command::IsReadOnly, &["is_read_only", "isro"]),
    (Command::LastSnapshot, &["last_snapshot", "lsnp"]),
    (Command::Leader, &["leader", "lead"]),
    (Command::Monitor, &["monitor", "mntr"]),
    (
        Command::ObserverConnectionStatReset,
        &["observer_connection_stat_reset", "orst"],
    ),
    (Command::Restore, &["restore", "rest"]),
    (Command::Ruok, &["ruok"]),
    (Command::SetTraceMask, &["set_trace_mask", "stmk"]),
    (Command::Snapshot, &["snapshot", "snap"]),
    (Command::ServerStats, &["server_stats", "srvr"]),
    (Command::Stats, &["stats", "stat"]),
    (Command::StatReset, &["stat_reset", "srst"]),
    (Command::Observers, &["observers", "obsr"]),
    (Command::SystemProperties, &["system_properties", "sysp"]),
    (Command::VotingView, &["voting_view"]),
    (Command::Watches, &["watches", "wchc"]),
    (Command::WatchesByPath, &["watches_by_path", "wchp"]),
    (Command::WatchSummary, &["watch_summary", "wchs"]),
    (Command::ZabState, &["zabstate"]),
];

/// What `restore` answers on an ensemble member (with HTTP 500, ZooKeeper's status for
/// a restore that fails). ZooKeeper swaps the database of the one member asked, which
/// leaves it disagreeing with the others; ferrokeeper refuses instead.
pub const RESTORE_ON_ENSEMBLE: &str = "restore is not supported on an ensemble member: \
     replacing one member's state would split it from the quorum; stop the ensemble and \
     import the snapshot into every member (`ferrokeeper import`)";

/// `restore`'s answer once the state is replaced: the zxid it is at.
pub fn restored(zxid: i64) -> Json {
    let mut m = JsonMap::new();
    m.put("last_zxid", zxid);
    finish(m, Command::Restore.primary_name(), None)
}

impl Command {
    /// The command a name (primary or alias) stands for.
    pub fn from_name(name: &str) -> Option<Command> {
        COMMANDS
            .iter()
            .find(|(_, names)| names.contains(&name))
            .map(|(c, _)| *c)
    }

    /// The primary name, which replies carry in `command`.
    pub fn primary_name(self) -> &'static str {
        COMMANDS
            .iter()
            .find(|(c, _)| *c == self)
            .and_then(|(_, names)| names.first().copied())
            .unwrap_or("")
    }

    /// The primary names, sorted, as `/commands` lists them.
    pub fn primary_names() -> Vec<&'static str> {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .filter_map(|(_, n)| n.first().copied())
            .collect();
        names.sort_unstable();
        names
    }

    /// Whether ZooKeeper answers "not currently serving" for it while the server does not
    /// serve (`CommandBase.serverRequired`).
    pub fn server_required(self) -> bool {
        !matches!(
            self,
            Command::Environment
                | Command::GetTraceMask
                | Command::Monitor
                | Command::SetTraceMask
                | Command::SystemProperties
                | Command::ZabState
        )
    }

    /// Whether it needs the `Authorization` header to pass `ALL` on `/` (ZooKeeper 3.9:
    /// `snapshot`, `restore`).
    pub fn needs_auth(self) -> bool {
        matches!(self, Command::Snapshot | Command::Restore)
    }

    /// Whether it is only run by POST (`restore`).
    pub fn is_post(self) -> bool {
        self == Command::Restore
    }

    /// The expensive parts of [`ServerStats`] its reply reads.
    pub fn needs(self) -> StatsNeeds {
        let none = StatsNeeds::default();
        match self {
            Command::Connections | Command::Stats => StatsNeeds {
                connections: true,
                dir_sizes: true,
                ..none
            },
            Command::Watches | Command::WatchesByPath | Command::WatchSummary => StatsNeeds {
                watches: true,
                ..none
            },
            Command::Dump => StatsNeeds {
                session_dump: true,
                ..none
            },
            Command::Environment | Command::SystemProperties => StatsNeeds {
                environment: true,
                ..none
            },
            Command::Dirs | Command::ServerStats => StatsNeeds {
                dir_sizes: true,
                ..none
            },
            Command::Monitor => StatsNeeds {
                file_descriptors: true,
                ..none
            },
            _ => none,
        }
    }

    /// State the server changes when running it.
    pub fn effect(self, args: &[(String, String)]) -> Option<SideEffect> {
        match self {
            Command::StatReset => Some(SideEffect::ResetServerStats),
            Command::ConnectionStatReset => Some(SideEffect::ResetConnectionStats),
            Command::SetTraceMask => trace_mask_arg(args).map(SideEffect::SetTraceMask),
            _ => None,
        }
    }
}

fn trace_mask_arg(args: &[(String, String)]) -> Option<i64> {
    args.iter()
        .find(|(k, _)| k == "traceMask")
        .and_then(|(_, v)| v.parse::<i64>().ok())
}

/// What the replies read beyond [`ServerStats`]: facts the server has outside the stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminContext {
    /// The configuration file's text (`initial_configuration`).
    pub initial_configuration: String,
    /// The newest snapshot: its zxid and its modification time in seconds since the Unix
    /// epoch (`last_snapshot`); `None` when there is none.
    pub last_snapshot: Option<(i64, i64)>,
    /// In an ensemble: what `leader`, `zabstate` and `voting_view` read.
    pub quorum: Option<QuorumView>,
    /// `system_properties`' entries, in order.
    pub system_properties: Vec<(String, String)>,
}

/// An ensemble member's view of its ensemble.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuorumView {
    /// This server's id.
    pub my_id: u64,
    /// This server leads.
    pub is_leader: bool,
    /// The leader's id (-1 when none is known, as Java's `getLeaderId`).
    pub leader_id: i64,
    /// The leader's host ("" when none is known).
    pub leader_ip: String,
    /// This server votes (a participant, not an observer).
    pub voting: bool,
    /// This server's quorum, election and client addresses, `host:port`.
    pub addresses: (String, String, String),
    /// The voting members by id (`voting_view`).
    pub voting_view: BTreeMap<u64, VoterView>,
}

/// A voting member as `voting_view` shows it (`QuorumServerView`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoterView {
    /// Quorum addresses, `host:port`.
    pub server_addresses: Vec<String>,
    /// Election addresses, `host:port`.
    pub election_addresses: Vec<String>,
    /// The client address, `host:port`, or "".
    pub client_address: String,
    /// `participant` or `observer`.
    pub learner_type: String,
}

/// A finished reply: the data fields with `command` and `error` put last.
fn finish(mut data: JsonMap, primary: &str, error: Option<&str>) -> Json {
    data.put("command", primary);
    // A command that put its own `error` among its data keeps it (and its place).
    if error.is_some() || data.get("error").is_none() {
        data.put("error", error.map_or(Json::Null, Json::from));
    }
    Json::Object(data)
}

/// The reply to an unknown name: `command` is the name as asked.
pub fn unknown(name: &str) -> Json {
    finish(
        JsonMap::new(),
        name,
        Some(&format!("Unknown command: {name}")),
    )
}

/// The reply with no data and no error: `command` is `primary`.
pub fn respond_empty(primary: &str) -> Json {
    finish(JsonMap::new(), primary, None)
}

/// The reply carrying only an error (auth failures, a server that is not serving):
/// `command` is `name` as given, as ZooKeeper builds these.
pub fn error_reply(name: &str, error: &str) -> Json {
    finish(JsonMap::new(), name, Some(error))
}

// Long because it is the one table of every command's fields, in ZooKeeper's order;
// splitting it would scatter the order a reader compares against Commands.java.
/// The reply of `cmd` (asked for as `name`) from `s`, `ctx` and the query `args`.
pub fn respond(
    cmd: Command,
    name: &str,
    s: &ServerStats,
    ctx: &AdminContext,
    args: &[(String, String)],
) -> Json {
    if cmd.server_required() && !s.serving {
        return error_reply(name, NOT_SERVING);
    }
    let primary = cmd.primary_name();
    let mut m = JsonMap::new();
    match cmd {
        Command::ConnectionStatReset
        | Command::Ruok
        | Command::StatReset
        | Command::ObserverConnectionStatReset => {}
        Command::Configuration => {
            let c = &s.conf;
            m.put("client_port", u64::from(c.client_port));
            m.put("data_dir", c.data_dir.display().to_string());
            m.put("data_log_dir", c.data_log_dir.display().to_string());
            m.put("tick_time", c.tick_time_ms);
            m.put("max_client_cnxns", c.max_client_cnxns);
            m.put("min_session_timeout", c.min_session_timeout_ms);
            m.put("max_session_timeout", c.max_session_timeout_ms);
            m.put("server_id", c.server_id);
            m.put("client_port_listen_backlog", c.client_port_listen_backlog);
        }
        Command::Connections => {
            m.put("connections", connections(s, false));
            m.put("secure_connections", Vec::<Json>::new());
        }
        Command::Hash => {
            let digests: Vec<Json> = s
                .digest_log
                .iter()
                .map(|(zxid, digest)| {
                    let mut d = JsonMap::new();
                    d.put("zxid", *zxid);
                    d.put("digestVersion", 2i64);
                    d.put("digest", *digest);
                    Json::Object(d)
                })
                .collect();
            m.put("digests", digests);
        }
        Command::Dirs => {
            m.put("datadir_size", s.dir_sizes.data_dir_bytes);
            m.put("logdir_size", s.dir_sizes.data_log_dir_bytes);
        }
        Command::Dump => {
            let mut expiry = JsonMap::new();
            for (at, ids) in &s.session_expiry {
                expiry.put(
                    at.to_string(),
                    ids.iter().map(|id| Json::Int(*id)).collect::<Vec<_>>(),
                );
            }
            let mut eph = JsonMap::new();
            for (id, paths) in &s.ephemerals {
                eph.put(
                    id.to_string(),
                    paths
                        .iter()
                        .map(|p| Json::from(p.as_str()))
                        .collect::<Vec<_>>(),
                );
            }
            m.put("expiry_time_to_session_ids", expiry);
            m.put("session_id_to_ephemeral_paths", eph);
        }
        Command::Environment => {
            for (k, v) in &s.environment {
                m.put(k.as_str(), v.as_str());
            }
        }
        Command::GetTraceMask => m.put("tracemask", s.trace_mask),
        Command::InitialConfiguration => {
            m.put("initial_configuration", ctx.initial_configuration.as_str())
        }
        Command::IsReadOnly => m.put("read_only", s.mode == ServerMode::ReadOnly),
        Command::LastSnapshot => {
            let (zxid, ts) = ctx.last_snapshot.unwrap_or((-1, -1));
            // Long.toHexString: the two's-complement digits of a negative value.
            m.put("zxid", format!("{:x}", zxid as u64));
            m.put("timestamp", ts);
        }
        Command::Leader => match &ctx.quorum {
            Some(q) => {
                m.put("is_leader", q.is_leader);
                m.put("leader_id", q.leader_id);
                m.put("leader_ip", q.leader_ip.as_str());
            }
            None => m.put("error", "server is not initialized"),
        },
        Command::Monitor => {
            for (k, v) in mntr_entries(s) {
                m.put(
                    k,
                    match v {
                        MntrValue::Int(n) => Json::Int(n),
                        MntrValue::Float(x) => Json::Float(x),
                        MntrValue::Text(t) => Json::Str(t),
                    },
                );
            }
        }
        // Answered by the HTTP side (a file stream, status codes); here only their shape.
        Command::Restore | Command::Snapshot => {}
        Command::SetTraceMask => match args.iter().find(|(k, _)| k == "traceMask") {
            None => m.put("error", "setTraceMask requires long traceMask argument"),
            Some((_, v)) => match v.parse::<i64>() {
                Ok(mask) => m.put("tracemask", mask),
                Err(_) => m.put(
                    "error",
                    format!("setTraceMask requires long traceMask argument, got {v}"),
                ),
            },
        },
        Command::ServerStats | Command::Stats => {
            server_stats(&mut m, s);
            if cmd == Command::Stats {
                m.put("connections", connections(s, true));
                m.put("secure_connections", Vec::<Json>::new());
            }
        }
        Command::Observers => {
            let synced = s
                .quorum
                .as_ref()
                .and_then(|q| q.leader.as_ref())
                .map_or(0, |l| l.synced_observers);
            m.put("synced_observers", synced);
            m.put("observers", Vec::<Json>::new());
        }
        Command::SystemProperties => {
            for (k, v) in &ctx.system_properties {
                m.put(k.as_str(), v.as_str());
            }
        }
        Command::VotingView => {
            let mut view = JsonMap::new();
            if let Some(q) = &ctx.quorum {
                let strings =
                    |v: &[String]| v.iter().map(|a| Json::from(a.as_str())).collect::<Vec<_>>();
                for (id, voter) in &q.voting_view {
                    let mut v = JsonMap::new();
                    // Jackson's names under the AdminServer's SNAKE_CASE strategy
                    // (`QuorumServerView`'s fields are camelCase in Java).
                    v.put("server_addresses", strings(&voter.server_addresses));
                    v.put("election_addresses", strings(&voter.election_addresses));
                    v.put("client_address", voter.client_address.as_str());
                    v.put("learner_type", voter.learner_type.as_str());
                    view.put(id.to_string(), v);
                }
            }
            m.put("current_config", view);
        }
        Command::Watches => {
            let mut by_session: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
            for (path, sessions) in &s.data_watches {
                for id in sessions {
                    by_session.entry(*id).or_default().push(path);
                }
            }
            let mut w = JsonMap::new();
            for (id, paths) in by_session {
                w.put(
                    id.to_string(),
                    paths.into_iter().map(Json::from).collect::<Vec<_>>(),
                );
            }
            m.put("session_id_to_watched_paths", w);
        }
        Command::WatchesByPath => {
            let mut w = JsonMap::new();
            for (path, sessions) in &s.data_watches {
                w.put(
                    path.as_str(),
                    sessions.iter().map(|id| Json::Int(*id)).collect::<Vec<_>>(),
                );
            }
            m.put("path_to_session_ids", w);
        }
        Command::WatchSummary => {
            let sessions: std::collections::BTreeSet<i64> =
                s.data_watches.values().flatten().copied().collect();
            let total: usize = s.data_watches.values().map(|v| v.len()).sum();
            m.put("num_connections", sessions.len() as u64);
            m.put("num_paths", s.data_watches.len() as u64);
            m.put("num_total_watches", total as u64);
        }
        Command::ZabState => match &ctx.quorum {
            None => {
                m.put("voting", false);
                m.put("zabstate", "");
            }
            Some(q) => {
                let zxid = s.last_processed_zxid;
                m.put("myid", q.my_id);
                m.put("is_leader", q.is_leader);
                m.put("quorum_address", multiple_addresses(&q.addresses.0));
                m.put("election_address", multiple_addresses(&q.addresses.1));
                m.put("client_address", q.addresses.2.as_str());
                m.put("voting", q.voting);
                m.put("last_zxid", format!("0x{zxid:x}"));
                m.put("zab_epoch", zxid >> 32);
                m.put("zab_counter", zxid & 0xffff_ffff);
                // Raft has no Zab phases: a member with a leader is broadcasting, one
                // without is electing.
                m.put("zabstate", if s.serving { "broadcast" } else { "election" });
            }
        },
    }
    finish(m, primary, None)
}

/// A quorum or election address as `zabstate` prints it: ZooKeeper puts its
/// `MultipleAddresses` object in the reply and Jackson writes every getter of the bean
/// (snake_case), so a one-address member answers this object, not a string.
/// `reachable_address` and `reachable_or_one` are the address itself: ZooKeeper probes
/// reachability (an ICMP echo or TCP 7), which a one-address list answers the same.
fn multiple_addresses(host_port: &str) -> JsonMap {
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "0"));
    let port: u16 = port.parse().unwrap_or(0);
    // Jackson's InetSocketAddress serializer brackets an IPv6 literal.
    let address = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let one = || vec![Json::from(address.as_str())];
    let mut m = JsonMap::new();
    m.put("empty", false);
    m.put("all_addresses", one());
    m.put("all_reachable_addresses", one());
    m.put("one", address.as_str());
    m.put("reachable_address", address.as_str());
    // `getWildcardAddresses`: `new InetSocketAddress(port)`, IPv4's any address.
    m.put(
        "wildcard_addresses",
        vec![Json::from(format!("0.0.0.0:{port}").as_str())],
    );
    m.put("all_ports", vec![Json::from(u64::from(port))]);
    m.put(
        "all_host_strings",
        vec![Json::from(
            host.trim_start_matches('[').trim_end_matches(']'),
        )],
    );
    m.put("all_reachable_addresses_or_all", one());
    m.put("reachable_or_one", address.as_str());
    m
}

fn buffer_stats(b: &BufferStats) -> JsonMap {
    let mut m = JsonMap::new();
    m.put("last_buffer_size", b.last);
    m.put("min_buffer_size", b.min);
    m.put("max_buffer_size", b.max);
    m
}

/// `srvr`'s fields (`SrvrCommand`): version, read-only flag, `ServerStats` as Jackson
/// sees its getters, the response sizes, the leader's proposal sizes, the node count.
fn server_stats(m: &mut JsonMap, s: &ServerStats) {
    m.put("version", s.version.as_str());
    m.put("read_only", s.mode == ServerMode::ReadOnly);
    let mut st = JsonMap::new();
    st.put("packets_sent", s.packets_sent);
    st.put("packets_received", s.packets_received);
    st.put("fsync_threshold_exceed_count", 0u64);
    st.put(
        "client_response_stats",
        buffer_stats(&s.client_response_size),
    );
    st.put("data_dir_size", s.dir_sizes.data_dir_bytes);
    st.put("log_dir_size", s.dir_sizes.data_log_dir_bytes);
    st.put("provider_null", false);
    st.put("server_state", s.mode.as_str());
    st.put("last_processed_zxid", s.last_processed_zxid);
    st.put("outstanding_requests", s.outstanding_requests);
    st.put("avg_latency", s.latency.avg());
    st.put("max_latency", s.latency.max_or_zero());
    st.put("min_latency", s.latency.min_or_zero());
    st.put("num_alive_client_connections", s.alive_connections);
    st.put("uptime", s.uptime_ms);
    st.put("auth_failed_count", s.auth_failed_count);
    st.put("non_mtlsremote_conn_count", 0u64);
    st.put("non_mtlslocal_conn_count", 0u64);
    m.put("server_stats", st);
    m.put("client_response", buffer_stats(&s.client_response_size));
    if let Some(l) = s.quorum.as_ref().and_then(|q| q.leader.as_ref()) {
        let none = l.proposals == 0;
        let shown = |v: u64| if none { -1 } else { v as i64 };
        m.put(
            "proposal_stats",
            buffer_stats(&BufferStats {
                last: shown(l.proposal_sizes.0),
                min: shown(l.proposal_sizes.2),
                max: shown(l.proposal_sizes.1),
            }),
        );
    }
    m.put("node_count", s.node_count);
}

/// `host:port` as Java's `InetAddress.getHostAddress` and the port print it.
fn host_port(addr: &SocketAddr) -> String {
    format!("{}:{}", crate::core::acl::ip_id(addr), addr.port())
}

/// The connections' info maps (`ServerCnxn.getConnectionInfo(brief)`).
fn connections(s: &ServerStats, brief: bool) -> Vec<Json> {
    let mut list: Vec<&ConnectionStats> = s.connections.iter().collect();
    list.sort_by_key(|c| c.remote);
    list.into_iter()
        .map(|c| {
            let mut m = JsonMap::new();
            m.put("remote_socket_address", host_port(&c.remote));
            m.put("interest_ops", c.interest_ops);
            m.put("outstanding_requests", c.outstanding_requests);
            m.put("packets_received", c.packets_received);
            m.put("packets_sent", c.packets_sent);
            if !brief {
                let session = c.session.as_ref();
                m.put("session_id", session.map_or(0, |x| x.session_id));
                m.put("last_operation", session.map_or("NA", |x| x.last_operation));
                m.put("established", session.map_or(0, |x| x.established_ms));
                m.put(
                    "session_timeout",
                    session.map_or(0, |x| x.session_timeout_ms),
                );
                m.put(
                    "last_cxid",
                    session.and_then(|x| x.last_cxid).map_or(-1, i64::from),
                );
                m.put("last_zxid", session.map_or(-1, |x| x.last_zxid));
                m.put(
                    "last_response_time",
                    session.map_or(0, |x| x.last_response_ms),
                );
                m.put("last_latency", session.map_or(0, |x| x.last_latency_ms));
                let lat = session.map(|x| x.latency).unwrap_or_default();
                m.put("min_latency", lat.min_or_zero());
                // Java's connection average is an integer division.
                m.put("avg_latency", lat.sum.checked_div(lat.count).unwrap_or(0));
                m.put("max_latency", lat.max_or_zero());
            }
            Json::Object(m)
        })
        .collect()
}

/// The `/commands` page: one link per primary name, as ZooKeeper's `CommandServlet`
/// lists them.
pub fn listing(command_url: &str) -> String {
    let base = command_url.trim_end_matches('/');
    let mut out = String::new();
    for name in Command::primary_names() {
        out.push_str(&format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(name: &str) -> String {
        let s = ServerStats::default();
        match Command::from_name(name) {
            Some(c) => respond(c, name, &s, &AdminContext::default(), &[]).pretty(),
            None => unknown(name).pretty(),
        }
    }

    /// ZooKeeper 3.8.0's `/commands/isro` and `/commands/nosuch`, byte for byte.
    #[test]
    fn replies_match_captured_java() {
        assert_eq!(
            reply("isro"),
            "{\n  \"read_only\" : false,\n  \"command\" : \"is_read_only\",\n  \"error\" : null\n}"
        );
        assert_eq!(
            reply("nosuch"),
            "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
        );
        assert_eq!(
            reply("lead"),
            "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}"
        );
        assert_eq!(
            reply("stmk"),
            "{\n  \"error\" : \"setTraceMask requires long traceMask argument\",\n  \
             \"command\" : \"set_trace_mask\"\n}"
        );
        assert_eq!(
            reply("lsnp"),
            "{\n  \"zxid\" : \"ffffffffffffffff\",\n  \"timestamp\" : -1,\n  \
             \"command\" : \"last_snapshot\",\n  \"error\" : null\n}"
        );
    }

    /// A Java 3.8 ensemble leader's `/commands/zabstate` and `/commands/voting_view`
    /// (member 3 of three on loopback, after 13 txns; `testdata/zk-3.8.0-ensemble/admin`),
    /// byte for byte, from the same view of the ensemble.
    #[test]
    fn ensemble_replies_match_captured_java() {
        let voter = |id: u16, client: &str| VoterView {
            server_addresses: vec![format!("127.0.0.1:{}", 12888 + 3 * id)],
            election_addresses: vec![format!("127.0.0.1:{}", 12889 + 3 * id)],
            client_address: client.to_string(),
            learner_type: "participant".to_string(),
        };
        let ctx = AdminContext {
            quorum: Some(QuorumView {
                my_id: 3,
                is_leader: true,
                leader_id: 3,
                leader_ip: "127.0.0.1".to_string(),
                voting: true,
                addresses: (
                    "127.0.0.1:12897".to_string(),
                    "127.0.0.1:12898".to_string(),
                    "127.0.0.1:12896".to_string(),
                ),
                voting_view: [
                    (1, voter(1, "")),
                    (2, voter(2, "")),
                    (3, voter(3, "127.0.0.1:12896")),
                ]
                .into_iter()
                .collect(),
            }),
            ..AdminContext::default()
        };
        let s = ServerStats {
            serving: true,
            last_processed_zxid: 0x1_0000_000d,
            ..ServerStats::default()
        };
        let reply = |c: Command| respond(c, c.primary_name(), &s, &ctx, &[]).pretty();
        // The captures end with a newline the reply does not have.
        assert_eq!(reply(Command::ZabState), ZABSTATE_JAVA.trim_end());
        assert_eq!(reply(Command::VotingView), VOTING_VIEW_JAVA.trim_end());
    }

    const ZABSTATE_JAVA: &str =
        include_str!("testdata/zk-3.8.0-ensemble/admin/leader-zabstate.json");

    const VOTING_VIEW_JAVA: &str =
        include_str!("testdata/zk-3.8.0-ensemble/admin/leader-voting_view.json");

    #[test]
    fn every_name_resolves_to_its_primary() {
        for (cmd, names) in COMMANDS {
            for n in *names {
                assert_eq!(Command::from_name(n), Some(*cmd));
            }
            assert_eq!(cmd.primary_name(), names[0]);
        }
        assert_eq!(Command::primary_names().len(), COMMANDS.len());
    }

    #[test]
    fn listing_links_each_primary_name() {
        let page = listing("/commands");
        assert!(page.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"));
        assert!(page.contains("<a href=\"/commands/snapshot\">snapshot</a>"));
    }
}
