//! The ensemble: `server.N` lines, `myid`, `initLimit`/`syncLimit`, `peerType` and a
//! `dynamicConfigFile`, read and checked the way ZooKeeper 3.8 (`QuorumPeerConfig`,
//! `QuorumPeer.QuorumServer`, `QuorumMaj`) reads and checks them.
//!
//! # What makes a quorum
//!
//! ZooKeeper runs replicated when there is more than one participant among the server
//! lines, or when `standaloneEnabled=false` (then even one participant is an ensemble of
//! one). A single participant with `standaloneEnabled=true` (the default) runs standalone:
//! HBase writes such a line and ZooKeeper tolerates it with a log line. [`Config::ensemble`]
//! is `Some` exactly when ZooKeeper would run in quorum mode.
//!
//! # The server line
//!
//! `server.<id>=<host>:<quorumPort>:<electionPort>[:participant|:observer][;[<clientHost>:]<clientPort>]`,
//! with an IPv6 host in brackets (`[::1]:2888:3888`). `;<clientPort>` alone means the
//! wildcard address, as ZooKeeper writes it (`0.0.0.0`). Host names are kept as written
//! and resolved when used ([`Ensemble::quorum_addrs`]): ZooKeeper does not refuse an
//! unresolvable name at startup either (it keeps an unresolved address and retries).
//!
//! # What is refused (each one refused by ZooKeeper as well, unless said otherwise)
//!
//! * a malformed server line, a bad port, an unknown role, the same quorum and election
//!   port on one line, several `|`-separated addresses unless `multiAddress.enabled`
//!   (`zookeeper.multiAddress.enabled`) is true, and with it addresses of different roles;
//! * `server.N` lines in `zoo.cfg` next to a `dynamicConfigFile`, and in the dynamic file a
//!   `version` key or any key other than `server.N`;
//! * observers without participants, observers next to a single (standalone) participant,
//!   and `standaloneEnabled=false` with no participant;
//! * in quorum mode, a missing `initLimit`, `syncLimit` or `myid`, and a `myid` that is not
//!   among the server lines (ZooKeeper fails on that when the peer starts);
//! * this server's client address in `zoo.cfg` (`clientPort`/`clientPortAddress`)
//!   disagreeing with the one on its server line;
//! * `electionAlg` other than 3 (the only election ZooKeeper 3.8 has), a `peerType` other
//!   than `participant`/`observer`.
//!
//! ferrokeeper refuses four things ZooKeeper lets through to fail later or behave
//! oddly: two spellings of one id (`server.1` and `server.01`, where Java keeps whichever
//! its hash map yields last), two servers using the same host and port (Java checks this
//! only on `reconfig`, and not for loopback addresses; a static ensemble with such a clash
//! cannot bind), port 0, and hierarchical quorums (`group.`/`weight.` keys), which Raft's
//! majority cannot express.
//!
//! A `peerType` that disagrees with this server's own line is a warning, and the line wins,
//! as in ZooKeeper. `cnxTimeout` and `electionPortBindRetry` tune ZooKeeper's leader
//! election, which ferrokeeper does not run: they are accepted and ignored with a warning.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::{At, ConfigError};

/// The only `electionAlg` ZooKeeper 3.8 and 3.9 accept (fast leader election over TCP).
pub const ELECTION_ALG: u32 = 3;

/// What a server does in the ensemble (`QuorumPeer.LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Votes in elections and on proposals.
    Participant,
    /// Follows the leader's commits without voting.
    Observer,
}

impl PeerRole {
    /// The name in a server line and in `peerType`.
    pub fn name(self) -> &'static str {
        match self {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        }
    }

    /// The number `conf` prints as `peerType` (the Java enum's ordinal).
    pub fn ordinal(self) -> u8 {
        match self {
            PeerRole::Participant => 0,
            PeerRole::Observer => 1,
        }
    }

    /// `participant` or `observer`, any case, surrounding blanks ignored.
    fn parse(text: &str) -> Option<PeerRole> {
        match text.trim().to_ascii_lowercase().as_str() {
            "participant" => Some(PeerRole::Participant),
            "observer" => Some(PeerRole::Observer),
            _ => None,
        }
    }
}

impl fmt::Display for PeerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The client address given on a server line, after `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr {
    /// The host as ZooKeeper prints it: an IP literal in Java's form (`0.0.0.0` for the
    /// wildcard that `;<port>` means, IPv6 uncompressed), a host name as written.
    pub host: String,
    /// The client port. Invariant: != 0.
    pub port: u16,
}

impl ClientAddr {
    /// Whether the host is the wildcard address (listen on every interface).
    pub fn is_wildcard(&self) -> bool {
        is_wildcard(&self.host)
    }
}

/// One more quorum address of a server (ZooKeeper 3.6's multi-address lines,
/// `host1:2888:3888|host2:2889:3889`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The host, as ZooKeeper prints it (see [`ServerSpec::host`]).
    pub host: String,
    /// The quorum port. Invariant: != 0, != `election_port`.
    pub quorum_port: u16,
    /// The election port (unused by ferrokeeper). Invariant: != 0.
    pub election_port: u16,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server id, `N`.
    pub id: u64,
    /// The host of the quorum and election ports, as ZooKeeper prints it (see
    /// [`ClientAddr::host`]); never empty.
    pub host: String,
    /// The port replication traffic goes to. Invariant: != 0, != `election_port`.
    pub quorum_port: u16,
    /// ZooKeeper's leader-election port: parsed and checked, unused by ferrokeeper (Raft
    /// elects over the quorum port). Invariant: != 0.
    pub election_port: u16,
    /// Participant (the default) or observer.
    pub role: PeerRole,
    /// The client address given on the line, if any.
    pub client: Option<ClientAddr>,
    /// The addresses after the first (`host`, `quorum_port`, `election_port`) on a
    /// multi-address line, in the line's order; empty for a line with one.
    pub other_addresses: Vec<PeerAddress>,
}

impl ServerSpec {
    /// Parses the value of a `server.<id>` line (`QuorumServer`'s grammar). The error is
    /// the reason, for the caller to attach the line and key to.
    pub fn parse(id: u64, value: &str, multi_address: bool) -> Result<ServerSpec, String> {
        let wrong_form = || {
            format!(
                "expected host:quorumPort:electionPort[:participant|:observer] optionally \
                 followed by ;clientPort or ;clientHost:clientPort (in {value:?})"
            )
        };
        let parts = java_split(value, ';');
        if parts.len() > 2 || parts.is_empty() {
            return Err(wrong_form());
        }
        let client = match parts.get(1) {
            Some(client) => {
                let pieces = host_and_port(client)?;
                let (host, port) = match pieces.as_slice() {
                    [port] => ("0.0.0.0", port.as_str()),
                    [host, port] => (host.as_str(), port.as_str()),
                    _ => return Err(wrong_form()),
                };
                Some(ClientAddr {
                    host: host_string(host)?,
                    port: port_number(port, "client")?,
                })
            }
            None => None,
        };
        let groups: Vec<&str> = parts[0].split('|').collect();
        if groups.len() > 1 && !multi_address {
            return Err(format!(
                "several addresses for server {id} (separated by '|'), but the multiple \
                 address feature is disabled (set multiAddress.enabled=true, as ZooKeeper \
                 3.6+ needs zookeeper.multiAddress.enabled)"
            ));
        }
        let mut addresses = Vec::with_capacity(groups.len());
        let mut role = None;
        for group in groups {
            let pieces = host_and_port(group)?;
            if !(3..=4).contains(&pieces.len()) {
                return Err(wrong_form());
            }
            let quorum_port = port_number(&pieces[1], "quorum")?;
            let election_port = port_number(&pieces[2], "election")?;
            if quorum_port == election_port {
                return Err(format!(
                    "the quorum port and the election port of server.{id} are both \
                     {quorum_port}; they must differ"
                ));
            }
            let this_role = match pieces.get(3) {
                Some(r) => PeerRole::parse(r)
                    .ok_or_else(|| format!("unknown peer type {r:?} (participant or observer)"))?,
                None => PeerRole::Participant,
            };
            if role.is_some_and(|r| r != this_role) {
                return Err(format!(
                    "the addresses of server.{id} have different roles; they must all be \
                     participant or all observer"
                ));
            }
            role = Some(this_role);
            addresses.push(PeerAddress {
                host: host_string(&pieces[0])?,
                quorum_port,
                election_port,
            });
        }
        let role = role.unwrap_or(PeerRole::Participant);
        let first = addresses.remove(0);
        let (host, quorum_port, election_port) =
            (first.host, first.quorum_port, first.election_port);
        Ok(ServerSpec {
            id,
            host,
            quorum_port,
            election_port,
            role,
            client,
            other_addresses: addresses,
        })
    }

    /// The value of this server's line as ZooKeeper writes it into `/zookeeper/config`
    /// (`QuorumServer.toString`): every address (`|`-separated), the role once, the
    /// client address only when the line gave one.
    pub fn zookeeper_value(&self) -> String {
        let mut value = format!(
            "{}:{}:{}",
            bracketed(&self.host),
            self.quorum_port,
            self.election_port
        );
        for a in &self.other_addresses {
            value.push_str(&format!(
                "|{}:{}:{}",
                bracketed(&a.host),
                a.quorum_port,
                a.election_port
            ));
        }
        value.push_str(&format!(":{}", self.role));
        if let Some(client) = &self.client {
            value.push_str(&format!(";{}:{}", bracketed(&client.host), client.port));
        }
        value
    }

    fn addresses(&self) -> impl Iterator<Item = (&'static str, &str, u16)> {
        let others = self.other_addresses.iter().flat_map(|a| {
            [
                ("quorum", a.host.as_str(), a.quorum_port),
                ("election", a.host.as_str(), a.election_port),
            ]
        });
        [
            Some(("quorum", self.host.as_str(), self.quorum_port)),
            Some(("election", self.host.as_str(), self.election_port)),
            self.client
                .as_ref()
                .map(|c| ("client", c.host.as_str(), c.port)),
        ]
        .into_iter()
        .flatten()
        .chain(others)
    }

    /// Every (host, quorum port) of the line, first address first.
    pub fn quorum_addresses(&self) -> impl Iterator<Item = (&str, u16)> {
        std::iter::once((self.host.as_str(), self.quorum_port)).chain(
            self.other_addresses
                .iter()
                .map(|a| (a.host.as_str(), a.quorum_port)),
        )
    }
}

/// A replicated configuration: every server of the ensemble and this server's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    /// This server's id (`dataDir/myid`). Invariant: a key of `servers`.
    pub my_id: u64,
    /// Every server line, by id. Invariant: at least one participant.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// `initLimit`: ticks a follower may take to connect and sync to a leader. Invariant: > 0.
    pub init_limit: u32,
    /// `syncLimit`: ticks a follower may lag behind the leader. Invariant: > 0.
    pub sync_limit: u32,
    /// The configuration's version: from the dynamic file's name suffix
    /// (`zoo.cfg.dynamic.100000000` is 0x100000000), or a `version` key in `zoo.cfg`;
    /// 0 if neither.
    pub version: u64,
    /// `quorumListenOnAllIPs`: listen on the wildcard address for quorum traffic instead
    /// of this server's host.
    pub quorum_listen_on_all_ips: bool,
    /// `dynamicConfigFile`, when the server lines came from one.
    pub dynamic_config_file: Option<PathBuf>,
    /// `multiAddress.enabled`: server lines may give several addresses.
    pub multi_address: bool,
}

impl Ensemble {
    /// This server's line.
    pub fn me(&self) -> &ServerSpec {
        // The invariant on `my_id` is established by `build` and the fields are only
        // changed by code that keeps it; a broken invariant is a bug, hence the panic.
        self.servers
            .get(&self.my_id)
            .expect("invariant: my_id is among the server lines")
    }

    /// This server's role, from its own line (which wins over `peerType`, as in ZooKeeper).
    pub fn role(&self) -> PeerRole {
        self.me().role
    }

    /// The voting members, by id.
    pub fn participants(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers
            .values()
            .filter(|s| s.role == PeerRole::Participant)
    }

    /// The non-voting members, by id.
    pub fn observers(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers
            .values()
            .filter(|s| s.role == PeerRole::Observer)
    }

    /// The text ZooKeeper keeps in `/zookeeper/config` and prints after `membership:` in
    /// `conf` (`QuorumMaj.toString`): one `server.N=...` line per server in id order, then
    /// `version=<hex>` without a final newline.
    ///
    /// Java iterates a `HashMap<Long, _>`, which yields ids in ascending order as long as
    /// they are below its table size (16 for up to 12 servers): the ensembles anyone runs.
    pub fn zookeeper_config_text(&self) -> String {
        let mut text = String::new();
        for server in self.servers.values() {
            text.push_str(&format!(
                "server.{}={}\n",
                server.id,
                server.zookeeper_value()
            ));
        }
        text.push_str(&format!("version={:x}", self.version));
        text
    }

    /// The resolved address of a server's quorum port (the first address its host
    /// resolves to).
    pub fn quorum_addr(&self, id: u64) -> std::io::Result<SocketAddr> {
        let server = self.servers.get(&id).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no server.{id} in the ensemble"),
            )
        })?;
        resolve(&server.host, server.quorum_port)
    }

    /// Every resolved quorum address of a server, in its line's order: a peer is dialled
    /// at each in turn until one answers, as ZooKeeper's multi-address learners do.
    pub fn quorum_addrs(&self, id: u64) -> std::io::Result<Vec<SocketAddr>> {
        let server = self.servers.get(&id).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no server.{id} in the ensemble"),
            )
        })?;
        server
            .quorum_addresses()
            .map(|(host, port)| resolve(host, port))
            .collect()
    }

    /// Where this server listens for quorum traffic: each of its own quorum addresses, or
    /// the wildcard address on each of its quorum ports with `quorumListenOnAllIPs=true`.
    pub fn quorum_listen_addrs(&self) -> std::io::Result<Vec<SocketAddr>> {
        let me = self.me();
        let mut out: Vec<SocketAddr> = Vec::new();
        for (host, port) in me.quorum_addresses() {
            let addr = if self.quorum_listen_on_all_ips {
                let any = if host.contains(':') {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                SocketAddr::new(any, port)
            } else {
                resolve(host, port)?
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        Ok(out)
    }
}

/// The first address `host` resolves to, with `port`.
pub(crate) fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    })
}

/// Ensemble configurations that cannot run. Server-line syntax errors are
/// [`ConfigError::InvalidValue`] instead, naming the line.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    /// `zoo.cfg` has `server.N` (or `group.`/`weight.`) lines and a `dynamicConfigFile`.
    #[error(
        "line {line}: {key} must be in the dynamic configuration file, since \
         dynamicConfigFile is set"
    )]
    ServerLineWithDynamicFile {
        /// The line of the offending key.
        line: usize,
        /// The key.
        key: String,
    },
    /// The dynamic configuration file has a `version` key (the version is the file name's
    /// suffix).
    #[error(
        "line {line}: a dynamic configuration file must not hold a version; it is the \
         suffix of the file's name"
    )]
    VersionInDynamicFile {
        /// The line of the `version` key.
        line: usize,
    },
    /// The dynamic configuration file has a key other than `server.N`.
    #[error("line {line}: {key} does not belong in a dynamic configuration file (only server.N)")]
    UnknownDynamicKey {
        /// The line of the key.
        line: usize,
        /// The key.
        key: String,
    },
    /// Two lines name the same server id (`server.1` and `server.01`).
    #[error("server id {id} is given twice ({first} and {second})")]
    DuplicateId {
        /// The id.
        id: u64,
        /// The first key that names it.
        first: String,
        /// The second.
        second: String,
    },
    /// Two servers use the same host and port.
    #[error(
        "{host}:{port} is the {first_use} address of server.{first_id} and the {second_use} \
         address of server.{second_id}"
    )]
    DuplicateAddress {
        /// The host, as written.
        host: String,
        /// The port.
        port: u16,
        /// The first server using it.
        first_id: u64,
        /// How it uses it (`quorum`, `election`, `client`).
        first_use: &'static str,
        /// The second server using it.
        second_id: u64,
        /// How that one uses it.
        second_use: &'static str,
    },
    /// Observers are configured but no participant.
    #[error("observers without participants cannot form an ensemble")]
    ObserversWithoutParticipants,
    /// One participant runs standalone (`standaloneEnabled=true`), so observers have no
    /// quorum to follow.
    #[error(
        "observers need a quorum: with one participant and standaloneEnabled=true the \
         server runs standalone"
    )]
    ObserversWithoutQuorum,
    /// `standaloneEnabled=false` asks for quorum mode, but there is no participant.
    #[error("standaloneEnabled=false needs at least one participant server.N line")]
    NoParticipants,
    /// Quorum mode without `dataDir/myid`.
    #[error("myid file is missing: in an ensemble, {path} must hold this server's id")]
    MyidMissing {
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// `myid` names no server line.
    #[error("myid is {my_id}, but there is no server.{my_id} line (servers: {ids})")]
    NotInPeerList {
        /// This server's id.
        my_id: u64,
        /// The ids that are configured, comma-separated.
        ids: String,
    },
    /// `clientPort`/`clientPortAddress` disagree with this server's line.
    #[error(
        "the client address of this server (id {my_id}) is {static_addr} in zoo.cfg but \
         {line_addr} on its server line"
    )]
    ClientAddressMismatch {
        /// This server's id.
        my_id: u64,
        /// `clientPortAddress:clientPort`.
        static_addr: String,
        /// The server line's client address.
        line_addr: String,
    },
    /// This server's client host on its server line does not resolve.
    #[error("server.{my_id}: cannot resolve the client host {host:?}: {reason}")]
    UnresolvableClientHost {
        /// This server's id.
        my_id: u64,
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// `group.`/`weight.` keys (hierarchical quorums) with an ensemble.
    #[error(
        "line {line}: {key}: hierarchical quorums (group./weight.) are not supported; \
         ferrokeeper's quorum is a majority of the participants"
    )]
    Hierarchical {
        /// The line of the first such key.
        line: usize,
        /// The key.
        key: String,
    },
}

/// One `server.N` entry as read, before checking.
#[derive(Debug, Clone)]
pub(super) struct ServerLine {
    /// The line it is on (in `zoo.cfg` or the dynamic file).
    pub line: usize,
    /// The key as written.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
}

/// The quorum keys of `zoo.cfg`, collected by the parser and checked together once
/// `myid` and the dynamic file are known.
#[derive(Debug, Default)]
pub(super) struct QuorumKeys {
    pub server_lines: Vec<ServerLine>,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub peer_type: Option<PeerRole>,
    /// `(line, path)` of `dynamicConfigFile`.
    pub dynamic_config_file: Option<(usize, String)>,
    pub quorum_listen_on_all_ips: bool,
    /// A `version` key in `zoo.cfg` (hexadecimal, as ZooKeeper reads it).
    pub version: Option<u64>,
    /// `(line, key)` of the first `group.`/`weight.` key.
    pub hierarchical: Option<(usize, String)>,
    /// `multiAddress.enabled` (`zookeeper.multiAddress.enabled`): server lines may give
    /// several `|`-separated addresses.
    pub multi_address: bool,
}

impl QuorumKeys {
    /// Applies a quorum key; returns whether `name` was one. `warnings` gets the notes
    /// about keys ferrokeeper accepts and ignores.
    pub(super) fn apply(
        &mut self,
        name: &str,
        at: &At<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<bool, ConfigError> {
        match name {
            // Integer.parseInt, then QuorumPeerConfig only checks `== 0` ("not set");
            // a negative limit makes no sense and is refused here.
            "initLimit" => self.init_limit = Some(at.int_at_least(1)?),
            "syncLimit" => self.sync_limit = Some(at.int_at_least(1)?),
            "electionAlg" => {
                let alg = at.int()?;
                if alg != ELECTION_ALG as i32 {
                    return Err(at.invalid(format_args!(
                        "only electionAlg {ELECTION_ALG} exists in ZooKeeper 3.8 and later"
                    )));
                }
            }
            "peerType" => {
                let role = PeerRole::parse(at.value).ok_or_else(|| {
                    at.invalid("unknown peer type (choose participant or observer)")
                })?;
                self.peer_type = Some(role);
            }
            "quorumListenOnAllIPs" => self.quorum_listen_on_all_ips = at.strict_bool()?,
            // Boolean.parseBoolean of the system property: "true" in any case, else false.
            "multiAddress.enabled" => {
                self.multi_address = at.value.eq_ignore_ascii_case("true");
            }
            "dynamicConfigFile" => {
                if at.value.is_empty() {
                    return Err(at.invalid("must not be empty"));
                }
                self.dynamic_config_file = Some((at.origin.line(), at.value.to_string()));
            }
            "version" => {
                let version = u64::from_str_radix(at.value, 16)
                    .map_err(|_| at.invalid("not a hexadecimal number"))?;
                self.version = Some(version);
            }
            "cnxTimeout" | "electionPortBindRetry" => warnings.push(format!(
                "{}: {} is ignored: it tunes ZooKeeper's leader election, and ferrokeeper \
                 elects its leader with Raft over the quorum port",
                at.origin, at.key
            )),
            _ if name.starts_with("server.") => self.server_lines.push(ServerLine {
                line: at.origin.line(),
                key: at.key.to_string(),
                value: at.value.to_string(),
            }),
            _ if name.starts_with("group.") || name.starts_with("weight.") => {
                if self.hierarchical.is_none() {
                    self.hierarchical = Some((at.origin.line(), at.key.to_string()));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The dynamic configuration file, read by the caller.
pub(super) struct DynamicFile {
    pub path: PathBuf,
    pub text: String,
}

/// The inputs to [`build`] besides the quorum keys.
pub(super) struct Context<'a> {
    /// `standaloneEnabled`.
    pub standalone_enabled: bool,
    /// `dataDir/myid`'s id, if known.
    pub my_id: Option<u64>,
    /// Where `myid` was looked for, for the error message.
    pub myid_path: PathBuf,
    /// The dynamic file, when `dynamicConfigFile` is set.
    pub dynamic: Option<&'a DynamicFile>,
}

/// What [`build`] decides.
#[derive(Debug)]
pub(super) struct Outcome {
    /// `Some` in quorum mode.
    pub ensemble: Option<Ensemble>,
    /// This server's line when there is one (standalone with one line, or quorum mode).
    pub my_line: Option<ServerSpec>,
}

/// Checks the quorum keys together, as `QuorumPeerConfig.setupQuorumPeerConfig` does.
/// Warnings about `zoo.cfg` go to `warnings` (`line N: ...` or unprefixed).
pub(super) fn build(
    keys: &QuorumKeys,
    cx: &Context<'_>,
    warnings: &mut Vec<String>,
) -> Result<Outcome, ConfigError> {
    let (lines, version) = match (cx.dynamic, &keys.dynamic_config_file) {
        (Some(dynamic), _) => {
            if let Some(line) = keys.server_lines.first() {
                return Err(EnsembleError::ServerLineWithDynamicFile {
                    line: line.line,
                    key: line.key.clone(),
                }
                .into());
            }
            let lines = dynamic_lines(dynamic).map_err(|source| ConfigError::InFile {
                path: dynamic.path.clone(),
                source: Box::new(source),
            })?;
            (lines, version_from_file_name(&dynamic.path))
        }
        (None, _) => (keys.server_lines.clone(), keys.version),
    };
    let servers = parse_servers(&lines, keys.multi_address).map_err(|e| match cx.dynamic {
        Some(dynamic) => ConfigError::InFile {
            path: dynamic.path.clone(),
            source: Box::new(e),
        },
        None => e,
    })?;

    let participants = servers
        .values()
        .filter(|s| s.role == PeerRole::Participant)
        .count();
    let observers = servers.len() - participants;
    let quorum_mode = participants > 1 || !cx.standalone_enabled;
    if participants == 0 {
        if !cx.standalone_enabled {
            return Err(EnsembleError::NoParticipants.into());
        }
        if observers > 0 {
            return Err(EnsembleError::ObserversWithoutParticipants.into());
        }
    } else if participants == 1 && cx.standalone_enabled {
        if observers > 0 {
            return Err(EnsembleError::ObserversWithoutQuorum.into());
        }
        warnings.push(
            "only one server line: running standalone, as ZooKeeper does \
             (set standaloneEnabled=false for an ensemble of one)"
                .to_string(),
        );
    } else if participants <= 2 {
        warnings.push(format!(
            "{participants} participant(s): the ensemble tolerates no server failure; \
             3 or more are needed for that"
        ));
    } else if participants % 2 == 0 {
        warnings.push(format!(
            "{participants} participants: an even number tolerates no more failures than \
             one fewer; consider an odd number"
        ));
    }
    if let (true, Some((line, key))) = (quorum_mode, &keys.hierarchical) {
        return Err(EnsembleError::Hierarchical {
            line: *line,
            key: key.clone(),
        }
        .into());
    }

    let my_line = cx.my_id.and_then(|id| servers.get(&id).cloned());
    if !quorum_mode {
        return Ok(Outcome {
            ensemble: None,
            my_line,
        });
    }
    let init_limit = keys
        .init_limit
        .ok_or(ConfigError::Missing { key: "initLimit" })?;
    let sync_limit = keys
        .sync_limit
        .ok_or(ConfigError::Missing { key: "syncLimit" })?;
    let my_id = cx.my_id.ok_or_else(|| EnsembleError::MyidMissing {
        path: cx.myid_path.clone(),
    })?;
    let Some(me) = servers.get(&my_id) else {
        let ids: Vec<String> = servers.keys().map(u64::to_string).collect();
        return Err(EnsembleError::NotInPeerList {
            my_id,
            ids: ids.join(","),
        }
        .into());
    };
    if let Some(peer_type) = keys.peer_type {
        if peer_type != me.role {
            warnings.push(format!(
                "peerType is {peer_type} but server.{my_id} says {}; using {}, as ZooKeeper does",
                me.role, me.role
            ));
        }
    }
    Ok(Outcome {
        my_line: Some(me.clone()),
        ensemble: Some(Ensemble {
            my_id,
            servers,
            init_limit,
            sync_limit,
            version: version.unwrap_or(0),
            quorum_listen_on_all_ips: keys.quorum_listen_on_all_ips,
            multi_address: keys.multi_address,
            dynamic_config_file: keys
                .dynamic_config_file
                .as_ref()
                .map(|(_, path)| PathBuf::from(path)),
        }),
    })
}

/// The server lines of a dynamic configuration file (`QuorumPeerConfig.parseDynamicConfig`
/// without backward compatibility: nothing but `server.N`).
fn dynamic_lines(dynamic: &DynamicFile) -> Result<Vec<ServerLine>, ConfigError> {
    let mut lines: Vec<ServerLine> = Vec::new();
    for entry in super::properties::parse(&dynamic.text)? {
        let key = super::java_trim(&entry.key);
        let value = super::java_trim(&entry.value);
        if key == "version" {
            return Err(EnsembleError::VersionInDynamicFile { line: entry.line }.into());
        }
        if !key.starts_with("server.") {
            let error = if key.starts_with("group") || key.starts_with("weight") {
                EnsembleError::Hierarchical {
                    line: entry.line,
                    key: key.to_string(),
                }
            } else {
                EnsembleError::UnknownDynamicKey {
                    line: entry.line,
                    key: key.to_string(),
                }
            };
            return Err(error.into());
        }
        // A properties file keeps the last value of a repeated key.
        lines.retain(|l| l.key != key);
        lines.push(ServerLine {
            line: entry.line,
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(lines)
}

/// `QuorumPeerConfig.getVersionFromFilename`: the text after the path's last `.`, read as
/// hexadecimal; none when it is not a hexadecimal number (`zoo.cfg.dynamic`).
fn version_from_file_name(path: &Path) -> Option<u64> {
    let text = path.to_string_lossy();
    let (_, suffix) = text.rsplit_once('.')?;
    u64::from_str_radix(suffix, 16).ok()
}

fn parse_servers(
    lines: &[ServerLine],
    multi_address: bool,
) -> Result<BTreeMap<u64, ServerSpec>, ConfigError> {
    let mut servers: BTreeMap<u64, ServerSpec> = BTreeMap::new();
    let mut keys: BTreeMap<u64, &str> = BTreeMap::new();
    for line in lines {
        let invalid = |reason: String| ConfigError::InvalidValue {
            line: line.line,
            key: line.key.clone(),
            value: line.value.clone(),
            reason,
        };
        let id_text = line.key.strip_prefix("server.").unwrap_or(&line.key);
        let id = id_text.parse::<u64>().map_err(|_| {
            invalid(format!(
                "the server id {id_text:?} is not a non-negative integer"
            ))
        })?;
        let spec = ServerSpec::parse(id, &line.value, multi_address).map_err(invalid)?;
        if let Some(first) = keys.insert(id, &line.key) {
            return Err(EnsembleError::DuplicateId {
                id,
                first: first.to_string(),
                second: line.key.clone(),
            }
            .into());
        }
        servers.insert(id, spec);
    }
    check_addresses(&servers)?;
    Ok(servers)
}

/// Two servers must not share a host and port. Hosts are compared as written (case
/// aside); the wildcard address is skipped, since servers on different machines may all
/// listen on it.
pub(crate) fn check_addresses(servers: &BTreeMap<u64, ServerSpec>) -> Result<(), EnsembleError> {
    let mut seen: BTreeMap<(String, u16), (u64, &'static str)> = BTreeMap::new();
    for server in servers.values() {
        for (usage, host, port) in server.addresses() {
            if is_wildcard(host) {
                continue;
            }
            let key = (host.to_ascii_lowercase(), port);
            match seen.get(&key) {
                Some(&(first_id, first_use)) if first_id != server.id => {
                    return Err(EnsembleError::DuplicateAddress {
                        host: host.to_string(),
                        port,
                        first_id,
                        first_use,
                        second_id: server.id,
                        second_use: usage,
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(key, (server.id, usage));
                }
            }
        }
    }
    Ok(())
}

fn is_wildcard(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// Java's `String.split(regex)` for a one-character separator: trailing empty pieces are
/// dropped.
fn java_split(text: &str, separator: char) -> Vec<String> {
    let mut pieces: Vec<String> = text.split(separator).map(str::to_string).collect();
    while pieces.last().is_some_and(String::is_empty) {
        pieces.pop();
    }
    pieces
}

/// `ConfigUtils.getHostAndPort`: `host:port:...`, or `[ipv6]:port:...`.
fn host_and_port(text: &str) -> Result<Vec<String>, String> {
    let Some(rest) = text.strip_prefix('[') else {
        return Ok(java_split(text, ':'));
    };
    let close = rest
        .find(']')
        .ok_or_else(|| format!("{text:?} starts with '[' but has no matching ']'"))?;
    let host = &rest[..close];
    let after = &rest[close + 1..];
    let Some(ports) = after.strip_prefix(':').filter(|p| !p.is_empty()) else {
        return Err(format!("{text:?} has no port after the bracketed address"));
    };
    let mut pieces = vec![host.to_string()];
    pieces.extend(java_split(ports, ':'));
    Ok(pieces)
}

fn port_number(text: &str, what: &str) -> Result<u16, String> {
    // Integer.parseInt: no blanks allowed around the digits.
    match text.parse::<i64>() {
        Ok(port) if (1..=65535).contains(&port) => Ok(port as u16),
        Ok(port) => Err(format!("{what} port {port} is out of range (1-65535)")),
        Err(_) => Err(format!("{what} port {text:?} is not a number")),
    }
}

/// The host as Java's `InetSocketAddress.getHostString` gives it: IP literals in Java's
/// form (IPv6 as eight uncompressed groups, an IPv4-mapped IPv6 address as IPv4), names
/// as written.
fn host_string(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
                groups.join(":")
            }
        },
        Err(_) => host.to_string(),
    })
}

/// `QuorumServer.delimitedHostString`: IPv6 hosts in brackets.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
#[path = "ensemble_tests.rs"]
mod tests;
