//! `zoo.cfg`: ZooKeeper's configuration file, read the way Apache ZooKeeper 3.8 reads it.
//!
//! The file is a Java `.properties` file. [`Config::parse`] first splits it exactly as
//! `java.util.Properties.load` does (`key=value`, `key:value` or `key value`; `#` and `!`
//! comment lines; a line ending in an odd number of backslashes continues on the next line;
//! `\t`, `\n`, `\uXXXX` escapes), then trims keys and values as `QuorumPeerConfig` does, and
//! then gives each key its meaning and ZooKeeper's default.
//!
//! # Which key names are read, and system properties
//!
//! ZooKeeper reads some settings from `zoo.cfg` (`QuorumPeerConfig`) and others from Java
//! system properties, which `zoo.cfg` sets by copying every key it does not know into the
//! system property `zookeeper.<key>` (`QuorumPeerConfig.parseProperties`). ferrokeeper
//! takes system properties too ([`system`]: `$SERVER_JVMFLAGS`, `$JVMFLAGS`, then `-D`
//! arguments) and combines them the way that copy does:
//!
//! * A property ZooKeeper reads as `zookeeper.<name>` (`zookeeper.maxCnxns`,
//!   `zookeeper.snapCount`, ... see `ZOOKEEPER_PROPERTIES`) sets the setting `<name>`; a
//!   `zoo.cfg` key `<name>` sets the same setting and wins, since Java overwrites the
//!   property when it reads the file, after the JVM has started with the `-D` flags.
//!   (`ZKConfig`, which holds ZooKeeper's client and TLS settings, has the same order: it
//!   starts from the system properties and lets the file's entries replace them.)
//! * A property ZooKeeper reads under its bare name (`jute.maxbuffer`, `znode.container.*`,
//!   `readonlymode.enabled`) sets the setting of that name. Java ignores these in `zoo.cfg`
//!   (the copy makes them `zookeeper.jute.maxbuffer`, which nothing reads); ferrokeeper
//!   honours them there too, since a user who writes them expects them to work, and the
//!   file wins here as well.
//! * `QuorumPeerConfig`'s own keys (`tickTime`, `clientPort`, `maxClientCnxns`, ...) come
//!   only from `zoo.cfg`: no property sets them, in Java either. `ferrokeeper.*` settings
//!   can be given either way.
//! * Any other property is none of ferrokeeper's business: a debug log line, never an
//!   error.
//!
//! Operators also write `zookeeper.snapCount=...` in `zoo.cfg`; Java then sets the unread
//! `zookeeper.zookeeper.snapCount`, but ferrokeeper strips a leading `zookeeper.` from
//! every `zoo.cfg` key before looking it up, so both spellings work.
//!
//! # What is an error and what is a warning
//!
//! * A value `QuorumPeerConfig` refuses (not a number, port out of range,
//!   `minSessionTimeout` larger than `maxSessionTimeout`, no `dataDir`, a boolean other than
//!   true/false) is a [`ConfigError`] naming the key and the value: ZooKeeper does not
//!   start, and neither does ferrokeeper.
//! * A setting ZooKeeper reads from a system property gets, for a value that does not
//!   parse or is out of range, what Java's `Integer.getInteger`, `Long.getLong` and
//!   `Boolean.getBoolean` give: the default. Whether it came from `-D` or from `zoo.cfg`,
//!   ferrokeeper does the same and adds a warning (Java is silent). The `yes`/`no`
//!   switches are read as Java reads them: `skipACL` is on only for exactly `yes`,
//!   `forceSync` off only for exactly `no`, anything else is the default.
//! * A number ZooKeeper accepts but corrects (`snapCount` below 2, `autopurge.snapRetainCount`
//!   below 3, a negative `maxClientCnxns`) is corrected the same way, with a warning, so that
//!   every `zoo.cfg` Apache ZooKeeper starts with also starts ferrokeeper.
//! * A key ZooKeeper knows but ferrokeeper does not use (quorum, TLS, SASL, AdminServer,
//!   metrics provider, throttling tunables) is accepted with a `tracing::debug!` note; the
//!   few whose absence changes what the user gets (`readonlymode.enabled`) are warnings. The TLS keys are read in [`tls`]. A key neither knows is a warning (most likely a
//!   typo).
//! * The ensemble keys (`server.N`, `myid`, `initLimit`, `syncLimit`, `peerType`,
//!   `dynamicConfigFile`, ...) are read and checked together as ZooKeeper checks them:
//!   see [`ensemble`].
//!
//! Every bound is gathered in one validated [`Limits`].
//!
//! Warnings are returned to the caller, which logs them; parsing never logs warnings itself.

#![warn(missing_docs)]

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use ferrokeeper_net::fourlw::FourLetterWhitelist;

pub mod admin;
pub mod ensemble;
mod limits;
pub mod system;
pub mod tls;

pub use ensemble::{ClientAddr, Ensemble, EnsembleError, PeerRole, ServerSpec};

pub use limits::{
    Limits, DEFAULT_COMMIT_BATCH_MAX, DEFAULT_COMMIT_QUEUE_DEPTH, DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
    DEFAULT_JUTE_MAX_BUFFER_BYTES, DEFAULT_MAX_CLIENT_CNXNS, DEFAULT_SESSION_QUEUED_REQUESTS_MAX,
};
pub use system::{Property, PropertyOrigin, SystemProperties};

/// ZooKeeper 3.8's `tickTime` when `zoo.cfg` does not set it
/// (`ZooKeeperServer.DEFAULT_TICK_TIME`). The sample `zoo.cfg` and the admin guide use 2000,
/// but a file without the key gets 3000 from Apache ZooKeeper, and so it does here.
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;
/// The client port of the embedded default configuration and of a `zoo.cfg` without one.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// `znode.container.checkIntervalMs`.
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u64 = 60_000;
/// `znode.container.maxPerMinute`.
pub const DEFAULT_CONTAINER_MAX_PER_MINUTE: u32 = 10_000;
/// `snapCount`: transactions between snapshots.
pub const DEFAULT_SNAP_COUNT: u32 = 100_000;
/// ZooKeeper resets a `snapCount` below this to this (`ZooKeeperServer.getSnapCount`).
pub const SNAP_COUNT_MIN: u32 = 2;
/// `preAllocSize`: transaction log preallocation step, in KiB (64 MiB).
pub const DEFAULT_PRE_ALLOC_SIZE_KB: u64 = 65_536;
/// `autopurge.snapRetainCount`: default, and the minimum ZooKeeper enforces.
pub const AUTOPURGE_SNAP_RETAIN_COUNT_MIN: u32 = 3;
/// The smallest `ferrokeeper.commitQueueDepth`: the server has always run its queues at
/// least this deep, and shallower ones only add thread wake-ups.
pub const COMMIT_QUEUE_DEPTH_MIN: usize = 16;
/// The largest server id usable with `extendedTypesEnabled` (TTL nodes keep the server id in
/// one byte of `ephemeralOwner`, and 0xff marks TTL; `EphemeralType.validateServerId`).
pub const EXTENDED_TYPES_SERVER_ID_MAX: u64 = 254;

/// Everything that can make a configuration unusable. Each message names the key and the
/// value at fault (and the line, when it came from a file).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file (or `dataDir/myid`) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A `\uXXXX` escape is not followed by four hexadecimal digits. Java's
    /// `Properties.load` rejects the whole file for this, and so do we.
    #[error("line {line}: malformed \\uxxxx escape")]
    MalformedEscape {
        /// The line (1-based) where the logical line containing the escape starts.
        line: usize,
    },
    /// A value is not of the key's type, or is outside the range the key allows.
    #[error("line {line}: invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The line (1-based) where the entry starts.
        line: usize,
        /// The key as written in the file.
        key: String,
        /// The value as written in the file (after trimming).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `ferrokeeper.*` system property has a value of the wrong type or range.
    #[error("invalid value {value:?} for system property {name}: {reason}")]
    InvalidProperty {
        /// The property's name.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key that ZooKeeper requires is absent (`dataDir`).
    #[error("{key} is not set")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// `clientPortAddress` is set but `clientPort` is not: ZooKeeper refuses this.
    #[error("line {line}: clientPortAddress is set ({address:?}) but clientPort is not set")]
    AddressWithoutPort {
        /// The line of the `clientPortAddress` entry.
        line: usize,
        /// The configured address.
        address: String,
    },
    /// The effective `minSessionTimeout` is larger than the effective `maxSessionTimeout`
    /// (either may come from the `tickTime` defaults of 2 and 20 ticks).
    #[error(
        "minSessionTimeout ({min_ms} ms) must not be larger than maxSessionTimeout ({max_ms} ms)"
    )]
    SessionTimeoutRange {
        /// The effective minimum, in milliseconds.
        min_ms: u32,
        /// The effective maximum, in milliseconds.
        max_ms: u32,
    },
    /// `dataDir/myid` exists but does not hold a server id.
    #[error("{path}: invalid server id {content:?}: {reason}")]
    InvalidMyid {
        /// The `myid` file.
        path: PathBuf,
        /// Its first line.
        content: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A limit that must be positive is 0 (only limits built by hand can be: the parser
    /// refuses or corrects such values).
    #[error("{key} must be at least 1")]
    ZeroLimit {
        /// The setting the limit comes from.
        key: &'static str,
    },
    /// The ensemble (`server.N` lines, `myid`, `dynamicConfigFile`) cannot run.
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
    /// An error inside a configuration file: wraps the error with the file's path.
    #[error("{path}: {source}")]
    InFile {
        /// The configuration file.
        path: PathBuf,
        /// The error found in it.
        source: Box<ConfigError>,
    },
}

/// The server's configuration: every `zoo.cfg` setting ferrokeeper uses, with ZooKeeper's
/// defaults, plus ferrokeeper's own `ferrokeeper.*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tickTime`: ZooKeeper's unit of time; session timeouts default to multiples of it and
    /// session expiry is checked once per tick. Invariant: > 0.
    pub tick_time_ms: u32,
    /// `clientPort`: the TCP port clients connect to. Invariant: != 0.
    pub client_port: u16,
    /// `clientPortAddress`: the address to listen on; `None` listens on all addresses.
    pub client_port_address: Option<IpAddr>,
    /// `clientPortListenBacklog`: the `listen(2)` backlog; `None` (ZooKeeper's -1) uses the
    /// server's default, `shard::listener::LISTEN_BACKLOG_DEFAULT` (the kernel caps both
    /// at `net.core.somaxconn`).
    pub client_port_listen_backlog: Option<u32>,
    /// The `zoo.cfg` this came from (`None` when parsed from text): a reconfig writes
    /// the dynamic configuration file beside it and points it there, as ZooKeeper does.
    pub config_file: Option<PathBuf>,
    /// `dataDir`: where snapshots (and `myid`) live. Required.
    pub data_dir: PathBuf,
    /// `dataLogDir`: where the transaction log lives; defaults to `data_dir`.
    pub data_log_dir: PathBuf,
    /// `4lw.commands.whitelist`: the four-letter words the server answers (default: `srvr`).
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `extendedTypesEnabled`: allow TTL nodes (and limit server ids to 254).
    pub extended_types_enabled: bool,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`; a client that
    /// authenticates as it passes every ACL check.
    pub super_digest: Option<String>,
    /// `skipACL`: do not check ACLs at all.
    pub skip_acl: bool,
    /// `enforceQuota`: creates and setData beyond a hard quota limit fail with
    /// QuotaExceeded (`crate::core::quota`).
    pub enforce_quota: bool,
    /// `readonlymode.enabled`: an ensemble member cut off from a quorum for
    /// max(2000 ms, tickTime) serves read-only clients. A standalone server never enters
    /// read-only mode, in ZooKeeper either.
    pub read_only_mode_enabled: bool,
    /// `znode.container.checkIntervalMs`: how often empty containers and expired TTL nodes
    /// are looked for. Invariant: > 0.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute`: deletions of containers per minute at most.
    /// Invariant: > 0.
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs`: a container that never had a child is
    /// deleted after this long; 0 = never.
    pub container_max_never_used_interval_ms: u64,
    /// `snapCount`: transactions logged between snapshots. Invariant: >= 2.
    pub snap_count: u32,
    /// `preAllocSize`: the step by which log files are preallocated, in KiB. Invariant: > 0.
    pub pre_alloc_size_kb: u64,
    /// `forceSync`: fsync the log before acknowledging writes.
    pub force_sync: bool,
    /// `autopurge.snapRetainCount`: snapshots (and their logs) kept by autopurge.
    /// Invariant: >= 3.
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval`: hours between purges; 0 = autopurge off.
    pub autopurge_purge_interval_hours: u32,
    /// `standaloneEnabled`: a single configured server runs standalone.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`: allow the `reconfig` operation.
    pub reconfig_enabled: bool,
    /// The server id: `dataDir/myid` when present (read by [`Config::load`]), else 0.
    pub server_id: u64,
    /// The ensemble, when ZooKeeper would run this configuration in quorum mode (more than
    /// one participant, or `standaloneEnabled=false`); `None` for a standalone server,
    /// including one with a single `server.N` line ([`ensemble`] has the rules).
    pub ensemble: Option<Ensemble>,
    /// `ferrokeeper.shards`: thread-per-core shards (default: what `ferrokeeper-tune`
    /// recommends for the available cores, `ferrokeeper_tuning::recommend::shards_for_cpus`).
    /// Invariant: > 0.
    pub shards: usize,
    /// `ferrokeeper.pinShards`: each shard's executor is pinned to a core (on by
    /// default). Off, the scheduler places them: on cores shared with other busy
    /// processes a pinned shard that is runnable waits for its own core, and its
    /// connections stall meanwhile (`server::shard_placement`).
    pub pin_shards: bool,
    /// `ferrokeeper.commitOnShard`: a standalone server runs its commit stage on shard
    /// 0's executor instead of a thread of its own. Unset, it does when no core is left
    /// for the commit stage (`shards` ≥ the cores: `server::commit_on_shard`).
    pub commit_on_shard: Option<bool>,
    /// `ferrokeeper.quorumReads`: in an ensemble, every read first goes through the
    /// leader as a sync, so reads are linearizable (ClickHouse Keeper's `quorum_reads`;
    /// ZooKeeper has no such setting). Off by default: reads are served locally, with
    /// ZooKeeper's sequential consistency.
    pub quorum_reads: bool,
    /// `ferrokeeper.log.compressSuperseded`: log segments whose txns are all covered by the
    /// newest snapshot are compressed in the background (`<segment>.zst`; on by default).
    /// They are read again only when that snapshot is rejected at startup, and are then
    /// decompressed first (`storage/FORMAT.md`, "Compressed segments").
    pub log_compress_superseded: bool,
    /// `ferrokeeper.snapshot.compressSuperseded`: a snapshot superseded by a newer one is
    /// stored zstd-compressed (`fk-snap.<zxid>.zst`, `storage/FORMAT.md`), on by default.
    /// Off, superseded snapshots stay plain files, for operators whose own tools copy
    /// them (ZooKeeper's own snapshots are never compressed unless
    /// `zookeeper.snapshot.compression.method` says so).
    pub compress_superseded_snapshots: bool,
    /// `localSessionsEnabled`: in an ensemble, new sessions stay on the server the
    /// client reached, with no txn in the log (`replica::local`). A standalone server
    /// ignores it, as ZooKeeper's does.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an ephemeral
    /// becomes a global one; when off, the create fails with EphemeralOnLocalSession.
    /// QuorumPeerConfig's default is off.
    pub local_sessions_upgrading_enabled: bool,
    /// Every bound the server enforces (connections, outstanding requests, frame size,
    /// session timeouts, commit queues), validated together.
    pub limits: Limits,
    /// Every `(key, value)` entry of the file in file order, trimmed, duplicates included.
    pub raw: Vec<(String, String)>,
    /// The system properties the configuration was read with, for settings read
    /// straight from properties elsewhere (SASL and enforced auth, `crate::auth`).
    pub system_properties: SystemProperties,
    /// `admin.*`: the AdminServer's HTTP listener.
    pub admin: admin::AdminServerConfig,
    /// `metricsProvider.*`: the Prometheus listener.
    pub metrics: admin::MetricsConfig,
    /// TLS on the client ports (`secureClientPort`, `ssl.*`, ...).
    pub tls: tls::TlsSettings,
    /// The `ssl.quorum.*` stores, which the AdminServer's HTTPS uses.
    pub quorum_tls: tls::TlsSettings,
}

impl Config {
    /// The configuration ferrokeeper runs with when given no `zoo.cfg`: ZooKeeper's defaults
    /// everywhere (including `tickTime` 3000 and a four-letter-word whitelist of `srvr`
    /// alone), with `dataDir=./data` and `clientPort=2181`, which ZooKeeper has no default for.
    pub fn embedded_default() -> Config {
        Config::defaults_with_data_dir(PathBuf::from("./data"))
    }

    fn defaults_with_data_dir(data_dir: PathBuf) -> Config {
        Config {
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            client_port: DEFAULT_CLIENT_PORT,
            client_port_address: None,
            client_port_listen_backlog: None,
            config_file: None,
            data_log_dir: data_dir.clone(),
            data_dir,
            four_letter_whitelist: FourLetterWhitelist::zookeeper_default(),
            extended_types_enabled: false,
            super_digest: None,
            skip_acl: false,
            enforce_quota: false,
            read_only_mode_enabled: false,
            container_check_interval_ms: DEFAULT_CONTAINER_CHECK_INTERVAL_MS,
            container_max_per_minute: DEFAULT_CONTAINER_MAX_PER_MINUTE,
            container_max_never_used_interval_ms: 0,
            snap_count: DEFAULT_SNAP_COUNT,
            pre_alloc_size_kb: DEFAULT_PRE_ALLOC_SIZE_KB,
            force_sync: true,
            autopurge_snap_retain_count: AUTOPURGE_SNAP_RETAIN_COUNT_MIN,
            autopurge_purge_interval_hours: 0,
            standalone_enabled: true,
            reconfig_enabled: false,
            server_id: 0,
            ensemble: None,
            shards: ferrokeeper_tuning::recommend::shards_for_cpus(available_cores()),
            pin_shards: true,
            commit_on_shard: None,
            quorum_reads: false,
            log_compress_superseded: true,
            compress_superseded_snapshots: true,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            limits: Limits::defaults(DEFAULT_TICK_TIME_MS),
            raw: Vec::new(),
            system_properties: SystemProperties::empty(),
            admin: admin::AdminServerConfig::default(),
            metrics: admin::MetricsConfig::default(),
            tls: tls::TlsSettings::default(),
            quorum_tls: tls::TlsSettings::quorum(),
        }
    }

    /// Parses the text of a `zoo.cfg`. Returns the configuration and the warnings to log.
    ///
    /// Touches no file but a `dynamicConfigFile` (`myid` is read by [`Config::load`], so an
    /// ensemble configuration fails here as it would in ZooKeeper without `myid`: use
    /// [`Config::parse_as_server`]); a `clientPortAddress` that is a host name rather than
    /// an IP address is resolved, as ZooKeeper does.
    pub fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse_with(text, &SystemProperties::empty())
    }

    /// Parses the text of a `zoo.cfg` together with system properties: a `zoo.cfg` key
    /// overrides the property it stands for (see the module documentation).
    pub fn parse_with(
        text: &str,
        props: &SystemProperties,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let parsed = Config::parse_parts(text, props, Myid::Unknown)?;
        let mut warnings = parsed.property_warnings;
        warnings.extend(parsed.file_warnings);
        Ok((parsed.config, warnings))
    }

    /// [`Config::parse_with`] for the server whose `dataDir/myid` holds `my_id`, without
    /// reading that file: what a test or a simulator builds each member of an ensemble with.
    pub fn parse_as_server(
        text: &str,
        props: &SystemProperties,
        my_id: u64,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let parsed = Config::parse_parts(text, props, Myid::Given(my_id))?;
        let mut warnings = parsed.property_warnings;
        warnings.extend(parsed.file_warnings);
        Ok((parsed.config, warnings))
    }

    /// Parses the file's text, sets the server id, reads the dynamic configuration file if
    /// there is one, and settles the ensemble (`QuorumPeerConfig.parse`'s order).
    fn parse_parts(
        text: &str,
        props: &SystemProperties,
        myid: Myid,
    ) -> Result<Parsed, ConfigError> {
        let entries = properties::parse(text)?;
        let mut parser = Parser::default();
        for property in props.iter() {
            parser.add_property(property);
        }
        for entry in &entries {
            parser.add_entry(entry);
        }
        let mut parsed = parser.finish()?;
        parsed.config.system_properties = props.clone();
        let my_id = match myid {
            Myid::Unknown => None,
            Myid::Given(id) => {
                parsed.config.set_server_id(id, &id.to_string(), None)?;
                Some(id)
            }
            Myid::FromDataDir => parsed.config.read_myid()?,
        };
        parsed.finish_ensemble(my_id)?;
        Ok(parsed)
    }

    /// The embedded default (see [`Config::embedded_default`]) with system properties
    /// applied: what `ferrokeeper -Dk=v` runs with when given no `zoo.cfg`.
    pub fn from_properties(props: &SystemProperties) -> Result<(Config, Vec<String>), ConfigError> {
        let default = Config::embedded_default();
        let text = format!(
            "dataDir={}\nclientPort={}\n",
            default.data_dir.display(),
            default.client_port
        );
        let (mut config, warnings) = Config::parse_with(&text, props)?;
        config.raw.clear();
        Ok((config, warnings))
    }

    /// Reads and parses a `zoo.cfg`, then reads the server id from `dataDir/myid` if that
    /// file exists. Every error names the file. Warnings are prefixed with the file's path.
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        Config::load_with(path, &SystemProperties::empty())
    }

    /// [`Config::load`] with system properties; warnings about the file are prefixed with
    /// its path, warnings about properties name the property.
    ///
    /// Java reads properties files as ISO-8859-1; a file that is not UTF-8 is read that way.
    pub fn load_with(
        path: &Path,
        props: &SystemProperties,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(not_utf8) => not_utf8
                .into_bytes()
                .iter()
                .map(|&b| char::from(b))
                .collect(),
        };
        let in_file = |source: ConfigError| match source {
            // A bad property is not the file's fault; myid and dynamic-file errors name
            // their own file.
            e @ (ConfigError::InvalidProperty { .. }
            | ConfigError::InvalidMyid { .. }
            | ConfigError::Read { .. }
            | ConfigError::InFile { .. }) => e,
            source => ConfigError::InFile {
                path: path.to_path_buf(),
                source: Box::new(source),
            },
        };
        let parsed = Config::parse_parts(&text, props, Myid::FromDataDir).map_err(in_file)?;
        let mut config = parsed.config;
        config.config_file = Some(path.to_path_buf());
        let mut warnings = parsed.property_warnings;
        warnings.extend(
            parsed
                .file_warnings
                .into_iter()
                .map(|w| format!("{}: {w}", path.display())),
        );
        Ok((config, warnings))
    }

    /// Sets `server_id` from `data_dir/myid` when that file exists (ZooKeeper reads it even
    /// for a standalone server) and returns it. The first line must be a non-negative
    /// integer.
    fn read_myid(&mut self) -> Result<Option<u64>, ConfigError> {
        let path = self.data_dir.join("myid");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let first = text.lines().next().unwrap_or("").trim().to_string();
        let id = first.parse::<u64>().map_err(|e| ConfigError::InvalidMyid {
            path: path.clone(),
            content: first.clone(),
            reason: format!("not a non-negative integer ({e})"),
        })?;
        self.set_server_id(id, &first, Some(path))?;
        Ok(Some(id))
    }

    /// Sets `server_id`, refusing ids that do not fit TTL nodes' `ephemeralOwner` when
    /// extended types are on. `path` is the `myid` file the id came from, if any.
    fn set_server_id(
        &mut self,
        id: u64,
        content: &str,
        path: Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        if self.extended_types_enabled && id > EXTENDED_TYPES_SERVER_ID_MAX {
            return Err(ConfigError::InvalidMyid {
                path: path.unwrap_or_else(|| self.data_dir.join("myid")),
                content: content.to_string(),
                reason: format!(
                    "extendedTypesEnabled is true, so the server id must not be larger \
                     than {EXTENDED_TYPES_SERVER_ID_MAX}"
                ),
            });
        }
        self.server_id = id;
        Ok(())
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One `(key, value)` entry of the file being applied, for error messages.
struct At<'a> {
    origin: &'a Origin,
    key: &'a str,
    value: &'a str,
}

impl At<'_> {
    fn invalid(&self, reason: impl fmt::Display) -> ConfigError {
        ConfigError::InvalidValue {
            line: self.origin.line(),
            key: self.key.to_string(),
            value: self.value.to_string(),
            reason: reason.to_string(),
        }
    }

    /// `Integer.parseInt`: optional sign, decimal digits, 32-bit range.
    fn int(&self) -> Result<i32, ConfigError> {
        self.value
            .parse::<i32>()
            .map_err(|e| self.invalid(int_reason(&e)))
    }

    /// `Integer.decode` (what `Integer.getInteger` uses): also `0x`/`#` hex and `0` octal.
    fn decoded_int(&self) -> Result<i32, ConfigError> {
        let wide = self.decoded_long()?;
        i32::try_from(wide).map_err(|_| self.invalid("out of range for a 32-bit integer"))
    }

    /// `Long.decode` (what `Long.getLong` uses).
    fn decoded_long(&self) -> Result<i64, ConfigError> {
        java_decode(self.value).ok_or_else(|| self.invalid("not an integer"))
    }

    /// `Long.parseLong`.
    fn long(&self) -> Result<i64, ConfigError> {
        self.value
            .parse::<i64>()
            .map_err(|e| self.invalid(int_reason(&e)))
    }

    fn int_at_least(&self, min: i32) -> Result<u32, ConfigError> {
        let n = self.int()?;
        if n < min {
            return Err(self.invalid(format_args!("must be at least {min}")));
        }
        Ok(n.unsigned_abs())
    }

    fn decoded_int_at_least(&self, min: i32) -> Result<u32, ConfigError> {
        let n = self.decoded_int()?;
        if n < min {
            return Err(self.invalid(format_args!("must be at least {min}")));
        }
        Ok(n.unsigned_abs())
    }

    /// `QuorumPeerConfig.parseBoolean`: `true` or `false`, any case.
    fn strict_bool(&self) -> Result<bool, ConfigError> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid("choose 'true' or 'false'")),
        }
    }

    /// ZooKeeper's `yes`/`no` switches: `skipACL` is on only for exactly `yes`, `forceSync`
    /// is off only for exactly `no` (`String.equals`, so case matters), and any other value
    /// leaves the default. Returns whether the value is `flip` (the word that changes the
    /// default); a value that is neither `flip` nor `keep` is an error, which the caller
    /// turns into a warning and the default, as Java's outcome is.
    fn java_switch(&self, flip: &str, keep: &str) -> Result<bool, ConfigError> {
        if self.value == flip {
            Ok(true)
        } else if self.value == keep {
            Ok(false)
        } else {
            Err(self.invalid(format_args!(
                "ZooKeeper only knows {flip:?} and {keep:?} (lower case)"
            )))
        }
    }

    fn count(&self) -> Result<usize, ConfigError> {
        match self.value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            Ok(_) => Err(self.invalid("must be at least 1")),
            Err(e) => Err(self.invalid(int_reason(&e))),
        }
    }

    fn dir(&self, warnings: &mut Vec<String>) -> Result<PathBuf, ConfigError> {
        if self.value.is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        let path = PathBuf::from(self.value);
        // ZooKeeper's VerifyingFileFactory warns about relative paths unless they start with
        // "./", which says the relativity is intended.
        if path.is_relative() && !self.value.starts_with("./") {
            warnings.push(format!(
                "{}: {} is relative ({:?}); prepend ./ to say that is intended",
                self.origin, self.key, self.value
            ));
        }
        Ok(path)
    }
}

fn int_reason(e: &std::num::ParseIntError) -> &'static str {
    use std::num::IntErrorKind;
    match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "out of range",
        _ => "not an integer",
    }
}

/// Java's `Long.decode`: optional sign, then `0x`, `0X` or `#` for hexadecimal, a leading
/// `0` for octal, else decimal.
fn java_decode(value: &str) -> Option<i64> {
    let (negative, rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let (radix, digits) = if let Some(hex) = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))
        .or_else(|| rest.strip_prefix('#'))
    {
        (16, hex)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Keys ZooKeeper 3.8 knows (in `QuorumPeerConfig` or as `zookeeper.*` system properties)
/// that ferrokeeper accepts and does not use. Compared after stripping `zookeeper.`.
const KNOWN_IGNORED_KEYS: &[&str] = &[
    "connectToLearnerMasterLimit",
    "syncEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "observerMasterPort",
    "oraclePath",
    "leaderServes",
    "tcpKeepAlive",
    "clientTcpKeepAlive",
    "serverCnxnFactory",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "commitLogCount",
    "fsync.warningthresholdms",
    "snapshot.compression.method",
    "snapshot.trust.empty",
    "digest.enabled",
    "serializeLastProcessedZxid.enabled",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "requestThrottleLimit",
    "requestThrottleStallTime",
    "requestThrottleDropStale",
    "requestStaleLatencyCheck",
    "requestStaleConnectionCheck",
    "throttledOpWaitTime",
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "connectionMaxTokens",
    "connectionTokenFillTime",
    "connectionTokenFillCount",
    "connectionFreezeTime",
    "connectionDropIncrease",
    "connectionDropDecrease",
    "connectionDecreaseRatio",
    "watchManagerName",
    "audit.enable",
    "auditLogger",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "enableEagerACLCheck",
    "superUser",
    "X509AuthenticationProvider.superUser",
    "DigestAuthenticationProvider.digestAlg",
    "IPAuthenticationProvider.usexforwardedfor",
    "flushDelay",
    "maxWriteQueuePollTime",
    "maxBatchSize",
    "intBufferStartingSizeBytes",
    "closeSessionTxn.enabled",
    "emulate353TTLNodes",
    "jute.maxbuffer.extrasize",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "metricsProvider.className",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.warn-threshold.ms",
    "jvm.pause.sleep.time.ms",
    "jvm.pause.monitor",
];

/// Prefixes of known-and-ignored key families (quorum, TLS, AdminServer, metrics, ...).
const KNOWN_IGNORED_PREFIXES: &[&str] = &[
    "group.",
    "weight.",
    "quorum.",
    "multiAddress.",
    "metricsProvider.",
    "admin.",
    "ssl.",
    "client.",
    "authProvider.",
    "nio.",
    "netty.",
    "learner.",
    "leader.",
    "follower.",
    "observer.",
    "zookeeper.",
];

fn is_known_ignored(key: &str) -> bool {
    KNOWN_IGNORED_KEYS.contains(&key) || KNOWN_IGNORED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Properties ZooKeeper reads as `zookeeper.<name>`, which a `zoo.cfg` key `<name>` also
/// sets (`QuorumPeerConfig.parseProperties` copies every key it does not know into
/// `zookeeper.<key>`). The names are the setting names of [`Parser::apply_one`].
const ZOOKEEPER_PROPERTIES: &[&str] = &[
    "maxCnxns",
    "nio.sessionlessCnxnTimeout",
    "multiAddress.enabled",
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "globalOutstandingLimit",
    "DigestAuthenticationProvider.superDigest",
    "skipACL",
    "snapCount",
    "preAllocSize",
    "forceSync",
    "enforceQuota",
];

/// Properties ZooKeeper reads under their bare name, which `zoo.cfg` cannot set in Java
/// (there a key `jute.maxbuffer` becomes the unread `zookeeper.jute.maxbuffer`).
/// ferrokeeper honours them in `zoo.cfg` too: a user who writes them expects them to work.
const BARE_PROPERTIES: &[&str] = &[
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "readonlymode.enabled",
];

/// Whether ZooKeeper reads setting `name` from a system property. For these, a value that
/// does not parse (or is out of range) is what Java's `Integer.getInteger`, `Long.getLong`
/// and `Boolean.getBoolean` make of it: the default. ferrokeeper does the same, and says so
/// in a warning, where Java is silent.
fn is_property_setting(name: &str) -> bool {
    ZOOKEEPER_PROPERTIES.contains(&name)
        || BARE_PROPERTIES.contains(&name)
        || admin::ADMIN_PROPERTIES.contains(&name)
}

/// The setting a system property sets, if ferrokeeper reads it.
fn setting_for_property(property: &str) -> Option<&str> {
    if let Some(rest) = property.strip_prefix("zookeeper.") {
        if ZOOKEEPER_PROPERTIES.contains(&rest)
            || admin::ADMIN_PROPERTIES.contains(&rest)
            || tls::is_tls_property(rest)
        {
            return Some(rest);
        }
    }
    if BARE_PROPERTIES.contains(&property) || property.starts_with("ferrokeeper.") {
        return Some(property);
    }
    None
}

/// Where a setting's value came from.
#[derive(Debug, Clone)]
enum Origin {
    /// A `zoo.cfg` entry starting on this line (1-based).
    Line(usize),
    /// A `-D` system property.
    Property {
        /// The property's name as given.
        name: String,
        /// Where it was given.
        origin: PropertyOrigin,
    },
}

impl Origin {
    fn line(&self) -> usize {
        match self {
            Origin::Line(line) => *line,
            Origin::Property { .. } => 0,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(line) => write!(f, "line {line}"),
            Origin::Property { name, origin } => write!(f, "system property {name} ({origin})"),
        }
    }
}

/// The value a setting ends up with: the last one given for its name.
struct Setting {
    /// The setting's name (`zoo.cfg` key without a `zookeeper.` prefix).
    name: String,
    /// The key or property name as written.
    key: String,
    value: String,
    origin: Origin,
}

/// Collects settings (system properties first, then `zoo.cfg` entries in file order), keeps
/// the last value for each name, then applies each once. That is ZooKeeper's order: the JVM
/// holds the `-D` properties from its start, and `QuorumPeerConfig` overwrites
/// `zookeeper.<key>` with the `zoo.cfg` value when it reads the file, so `zoo.cfg` wins.
struct Parser {
    config: Config,
    /// Warnings about `zoo.cfg` lines (the caller prefixes them with the file's path).
    warnings: Vec<String>,
    /// Warnings about system properties.
    property_warnings: Vec<String>,
    settings: Vec<Setting>,
    /// Position in `settings` of each name.
    by_name: std::collections::HashMap<String, usize>,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    client_port: Option<u16>,
    /// `(line, value)` of `clientPortAddress`, resolved once the port is known.
    client_port_address: Option<(usize, String)>,
    /// `None` is ZooKeeper's -1: 2 ticks (min) or 20 ticks (max).
    min_session_timeout_ms: Option<u32>,
    max_session_timeout_ms: Option<u32>,
    /// `server.N` lines and the other quorum keys, settled in [`Parsed::finish_ensemble`].
    quorum: ensemble::QuorumKeys,
    /// Names set by a `zoo.cfg` line so far, for the duplicate-key warning.
    seen: std::collections::HashSet<String>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            config: Config::defaults_with_data_dir(PathBuf::new()),
            warnings: Vec::new(),
            property_warnings: Vec::new(),
            settings: Vec::new(),
            by_name: std::collections::HashMap::new(),
            data_dir: None,
            data_log_dir: None,
            client_port: None,
            client_port_address: None,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            quorum: ensemble::QuorumKeys::default(),
            seen: std::collections::HashSet::new(),
        }
    }
}

impl Parser {
    fn warn(&mut self, origin: &Origin, message: impl fmt::Display) {
        match origin {
            Origin::Line(_) => self.warnings.push(format!("{origin}: {message}")),
            Origin::Property { .. } => self.property_warnings.push(format!("{origin}: {message}")),
        }
    }

    fn set(&mut self, setting: Setting) {
        match self.by_name.get(&setting.name) {
            Some(&i) => {
                if let (Origin::Property { name, origin }, Origin::Line(line)) =
                    (&self.settings[i].origin, &setting.origin)
                {
                    tracing::debug!(
                        property = %name, %origin, line,
                        "zoo.cfg sets {} too: the zoo.cfg value wins, as in ZooKeeper",
                        setting.name
                    );
                }
                self.settings[i] = setting;
            }
            None => {
                self.by_name
                    .insert(setting.name.clone(), self.settings.len());
                self.settings.push(setting);
            }
        }
    }

    /// Takes one system property; one ferrokeeper does not read is noted at debug level.
    fn add_property(&mut self, property: &Property) {
        let Some(name) = setting_for_property(&property.name) else {
            tracing::debug!(
                property = %property.name, origin = %property.origin,
                "system property not read by ferrokeeper; ignored"
            );
            return;
        };
        self.set(Setting {
            name: name.to_string(),
            key: property.name.clone(),
            value: property.value.clone(),
            origin: Origin::Property {
                name: property.name.clone(),
                origin: property.origin.clone(),
            },
        });
    }

    fn add_entry(&mut self, entry: &properties::Entry) {
        // ZooKeeper trims both sides (String.trim: every char <= ' ').
        let key = java_trim(&entry.key);
        let value = java_trim(&entry.value);
        self.config.raw.push((key.to_string(), value.to_string()));
        let name = key.strip_prefix("zookeeper.").unwrap_or(key);
        let origin = Origin::Line(entry.line);
        if !self.seen.insert(name.to_string()) {
            self.warn(
                &origin,
                format_args!("{key} is set more than once; the last value wins"),
            );
        }
        self.set(Setting {
            name: name.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            origin,
        });
    }

    /// Applies one setting. A value ZooKeeper would read from a system property and that
    /// does not parse falls back to the default with a warning, as in Java; any other bad
    /// value is an error.
    fn apply(&mut self, setting: &Setting) -> Result<(), ConfigError> {
        let at = At {
            origin: &setting.origin,
            key: &setting.key,
            value: &setting.value,
        };
        match self.apply_one(&setting.name, &at) {
            Err(ConfigError::InvalidValue { reason, .. }) if is_property_setting(&setting.name) => {
                self.warn(
                    &setting.origin,
                    format_args!(
                        "invalid value {:?} for {}: {reason}; ZooKeeper uses the default for \
                         such a value, and so does ferrokeeper",
                        setting.value, setting.key
                    ),
                );
                Ok(())
            }
            Err(ConfigError::InvalidValue { reason, .. })
                if matches!(setting.origin, Origin::Property { .. }) =>
            {
                Err(ConfigError::InvalidProperty {
                    name: setting.key.clone(),
                    value: setting.value.clone(),
                    reason,
                })
            }
            other => other,
        }
    }

    // Long because it is one match with an arm per setting, each a line or two.
    fn apply_one(&mut self, name: &str, at: &At<'_>) -> Result<(), ConfigError> {
        if self.quorum.apply(name, at, &mut self.warnings)? {
            return Ok(());
        }
        if tls::apply(&mut self.config.tls, name, at)?
            || tls::apply_quorum(&mut self.config.quorum_tls, name, at)?
        {
            return Ok(());
        }
        let key = at.key;
        let value = at.value;
        let c = &mut self.config;
        match name {
            "dataDir" => self.data_dir = Some(at.dir(&mut self.warnings)?),
            "dataLogDir" => self.data_log_dir = Some(at.dir(&mut self.warnings)?),
            "clientPort" => {
                let port = at.int()?;
                let port = u16::try_from(port)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| at.invalid("port must be between 1 and 65535"))?;
                self.client_port = Some(port);
            }
            "clientPortAddress" => {
                self.client_port_address = Some((at.origin.line(), value.to_string()));
            }
            "clientPortListenBacklog" => {
                // ZooKeeper hands any value to bind(); Java treats <= 0 as "default".
                let backlog = at.int()?;
                c.client_port_listen_backlog = u32::try_from(backlog).ok().filter(|&b| b > 0);
            }
            "tickTime" => c.tick_time_ms = at.int_at_least(1)?,
            "maxClientCnxns" => {
                let n = at.int()?;
                if n < 0 {
                    // NIOServerCnxnFactory only limits when the value is > 0.
                    self.warn(at.origin, "maxClientCnxns is negative; using 0 (no limit)");
                }
                self.config.limits.client_cnxns_per_ip_max = n.max(0).unsigned_abs();
            }
            "maxCnxns" => {
                let n = at.decoded_int()?;
                if n < 0 {
                    // ServerCnxnFactory.initMaxCnxns resets a negative value to 0.
                    self.warn(at.origin, "maxCnxns is negative; using 0 (no limit)");
                }
                self.config.limits.cnxns_max = n.max(0).unsigned_abs();
            }
            "minSessionTimeout" => self.min_session_timeout_ms = session_timeout(at)?,
            "maxSessionTimeout" => self.max_session_timeout_ms = session_timeout(at)?,
            "4lw.commands.whitelist" => {
                let (whitelist, unknown) = FourLetterWhitelist::parse(value);
                c.four_letter_whitelist = whitelist;
                for word in unknown {
                    self.warn(
                        at.origin,
                        format_args!("{key}: {word:?} is not a four-letter word; ignored"),
                    );
                }
            }
            "jute.maxbuffer" => c.limits.jute_max_buffer_bytes = at.decoded_int_at_least(1)?,
            "extendedTypesEnabled" => c.extended_types_enabled = at.strict_bool()?,
            "nio.sessionlessCnxnTimeout" => {
                c.limits.sessionless_cnxn_timeout_ms = at.decoded_int_at_least(1)?;
            }
            "globalOutstandingLimit" => {
                c.limits.global_outstanding_requests_max = at.decoded_int_at_least(1)?;
            }
            "DigestAuthenticationProvider.superDigest" => {
                if value.is_empty() {
                    c.super_digest = None;
                } else {
                    if !value.contains(':') {
                        self.warn(
                            at.origin,
                            format_args!(
                                "{key} should look like super:<base64 sha1>; \
                                 no client can match {value:?}"
                            ),
                        );
                    }
                    self.config.super_digest = Some(value.to_string());
                }
            }
            "skipACL" => c.skip_acl = at.java_switch("yes", "no")?,
            "znode.container.checkIntervalMs" => {
                c.container_check_interval_ms = u64::from(at.decoded_int_at_least(1)?);
            }
            "znode.container.maxPerMinute" => {
                c.container_max_per_minute = at.decoded_int_at_least(1)?;
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                let ms = at.decoded_long()?;
                c.container_max_never_used_interval_ms =
                    u64::try_from(ms).map_err(|_| at.invalid("must not be negative"))?;
            }
            "snapCount" => {
                let n = at.decoded_int()?;
                if n < SNAP_COUNT_MIN as i32 {
                    self.warn(
                        at.origin,
                        format_args!(
                            "snapCount must be {SNAP_COUNT_MIN} or more; using {SNAP_COUNT_MIN}"
                        ),
                    );
                }
                self.config.snap_count = n.max(SNAP_COUNT_MIN as i32).unsigned_abs();
            }
            "preAllocSize" => {
                let kb = at.long()?;
                c.pre_alloc_size_kb = u64::try_from(kb)
                    .ok()
                    .filter(|&kb| kb > 0)
                    .ok_or_else(|| at.invalid("must be at least 1 (KiB)"))?;
            }
            "forceSync" => c.force_sync = !at.java_switch("no", "yes")?,
            "autopurge.snapRetainCount" => {
                let n = at.int()?;
                if n < AUTOPURGE_SNAP_RETAIN_COUNT_MIN as i32 {
                    self.warn(
                        at.origin,
                        format_args!(
                            "autopurge.snapRetainCount must be {AUTOPURGE_SNAP_RETAIN_COUNT_MIN} \
                             or more; using {AUTOPURGE_SNAP_RETAIN_COUNT_MIN}"
                        ),
                    );
                }
                self.config.autopurge_snap_retain_count =
                    n.max(AUTOPURGE_SNAP_RETAIN_COUNT_MIN as i32).unsigned_abs();
            }
            "autopurge.purgeInterval" => {
                // ZooKeeper schedules no purge task for any value <= 0.
                c.autopurge_purge_interval_hours = at.int()?.max(0).unsigned_abs();
            }
            "standaloneEnabled" => c.standalone_enabled = at.strict_bool()?,
            "reconfigEnabled" => c.reconfig_enabled = at.strict_bool()?,
            "ferrokeeper.shards" => c.shards = at.count()?,
            "ferrokeeper.quorumReads" => c.quorum_reads = at.strict_bool()?,
            "ferrokeeper.pinShards" => c.pin_shards = at.strict_bool()?,
            "ferrokeeper.snapshot.compressSuperseded" => {
                c.compress_superseded_snapshots = at.strict_bool()?
            }
            "ferrokeeper.commitOnShard" => c.commit_on_shard = Some(at.strict_bool()?),
            "ferrokeeper.log.compressSuperseded" => c.log_compress_superseded = at.strict_bool()?,
            "localSessionsEnabled" => c.local_sessions_enabled = at.strict_bool()?,
            "localSessionsUpgradingEnabled" => {
                c.local_sessions_upgrading_enabled = at.strict_bool()?
            }
            "ferrokeeper.commitQueueDepth" => {
                let depth = at.count()?;
                if depth < COMMIT_QUEUE_DEPTH_MIN {
                    return Err(
                        at.invalid(format_args!("must be at least {COMMIT_QUEUE_DEPTH_MIN}"))
                    );
                }
                c.limits.commit_queue_depth_requests = depth;
            }
            "ferrokeeper.commitBatchMax" => c.limits.commit_batch_requests_max = at.count()?,
            "ferrokeeper.sessionQueuedRequestsMax" => {
                c.limits.session_queued_requests_max = u32::try_from(at.count()?)
                    .map_err(|_| at.invalid("out of range for a 32-bit integer"))?;
            }
            "enforceQuota" => c.enforce_quota = at.strict_bool()?,
            "readonlymode.enabled" => c.read_only_mode_enabled = at.strict_bool()?,
            _ if name.starts_with("admin.") || name.starts_with("metricsProvider.") => {
                let handled = admin::apply(&mut c.admin, &mut c.metrics, name, value)
                    .map_err(|reason| at.invalid(reason))?;
                if !handled {
                    tracing::debug!(
                        key,
                        value,
                        "AdminServer or metrics key not used by ferrokeeper"
                    );
                }
            }
            _ if name.starts_with("ferrokeeper.") => {
                self.warn(
                    at.origin,
                    format_args!("unknown ferrokeeper setting {key}; ignored"),
                );
            }
            _ if is_known_ignored(name) => {
                tracing::debug!(
                    key,
                    value,
                    "zoo.cfg key known to ZooKeeper, not used by ferrokeeper"
                );
            }
            _ => self.warn(at.origin, format_args!("unknown key {key}; ignored")),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Parsed, ConfigError> {
        for setting in std::mem::take(&mut self.settings) {
            self.apply(&setting)?;
        }
        let data_dir = self
            .data_dir
            .take()
            .ok_or(ConfigError::Missing { key: "dataDir" })?;
        self.config.data_log_dir = self.data_log_dir.take().unwrap_or_else(|| data_dir.clone());
        self.config.data_dir = data_dir;

        match (self.client_port, self.client_port_address.take()) {
            (None, Some((line, address))) => {
                return Err(ConfigError::AddressWithoutPort { line, address });
            }
            // This server's line may still give the port (`Parsed::finish_ensemble`).
            (None, None) => {}
            (Some(port), address) => {
                self.config.client_port = port;
                if let Some((line, address)) = address {
                    self.config.client_port_address = Some(resolve(line, &address, port)?);
                }
            }
        }

        let tick = self.config.tick_time_ms;
        let min_ms = self
            .min_session_timeout_ms
            .unwrap_or(tick.saturating_mul(2));
        let max_ms = self
            .max_session_timeout_ms
            .unwrap_or(tick.saturating_mul(20));
        self.config.limits.session_timeout_ms_min = min_ms;
        self.config.limits.session_timeout_ms_max = max_ms;
        self.config.limits.validate()?;

        Ok(Parsed {
            client_port_set: self.client_port.is_some(),
            config: self.config,
            file_warnings: self.warnings,
            property_warnings: self.property_warnings,
            quorum: self.quorum,
        })
    }
}

/// Where the server id comes from.
enum Myid {
    /// Not known (`Config::parse`): fine standalone, an error for an ensemble.
    Unknown,
    /// Given by the caller.
    Given(u64),
    /// `dataDir/myid`, if the file exists.
    FromDataDir,
}

/// What [`Parser::finish`] hands back.
struct Parsed {
    config: Config,
    /// Warnings about `zoo.cfg` lines, each starting with `line N:` (or about the file).
    file_warnings: Vec<String>,
    /// Warnings about system properties, each naming the property and where it was given.
    property_warnings: Vec<String>,
    /// The quorum keys, for [`Parsed::finish_ensemble`].
    quorum: ensemble::QuorumKeys,
    /// Whether `zoo.cfg` set `clientPort`.
    client_port_set: bool,
}

impl Parsed {
    /// Reads the dynamic configuration file, settles the ensemble, and takes this server's
    /// client address from its server line when the line has one
    /// (`QuorumPeerConfig.setupClientPort`).
    fn finish_ensemble(&mut self, my_id: Option<u64>) -> Result<(), ConfigError> {
        let dynamic = match &self.quorum.dynamic_config_file {
            Some((_, path)) => {
                let path = PathBuf::from(path);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(ensemble::DynamicFile { path, text })
            }
            None => None,
        };
        let context = ensemble::Context {
            standalone_enabled: self.config.standalone_enabled,
            my_id,
            myid_path: self.config.data_dir.join("myid"),
            dynamic: dynamic.as_ref(),
        };
        let outcome = ensemble::build(&self.quorum, &context, &mut self.file_warnings)?;
        if let Some(client) = outcome.my_line.as_ref().and_then(|s| s.client.as_ref()) {
            self.take_client_address(my_id.unwrap_or(0), client)?;
        } else if !self.client_port_set {
            self.file_warnings.push(format!(
                "clientPort is not set; listening on {DEFAULT_CLIENT_PORT}"
            ));
        }
        self.config.ensemble = outcome.ensemble;
        Ok(())
    }

    /// This server's line gives its client address. ZooKeeper refuses a `zoo.cfg`
    /// `clientPortAddress:clientPort` that differs from it, except that a wildcard
    /// `clientPortAddress` (or none) only has to match the port.
    fn take_client_address(&mut self, my_id: u64, client: &ClientAddr) -> Result<(), ConfigError> {
        let unresolvable = |reason: String| EnsembleError::UnresolvableClientHost {
            my_id,
            host: client.host.clone(),
            reason,
        };
        let ip = match client.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (client.host.as_str(), client.port)
                .to_socket_addrs()
                .map_err(|e| unresolvable(e.to_string()))?
                .next()
                .ok_or_else(|| unresolvable("no address".to_string()))?
                .ip(),
        };
        if self.client_port_set {
            let port = self.config.client_port;
            let differs = match self.config.client_port_address {
                Some(address) if !address.is_unspecified() => address != ip || port != client.port,
                _ => port != client.port,
            };
            if differs {
                let host = self
                    .config
                    .client_port_address
                    .map_or_else(|| "0.0.0.0".to_string(), |a| a.to_string());
                return Err(EnsembleError::ClientAddressMismatch {
                    my_id,
                    static_addr: format!("{host}:{port}"),
                    line_addr: format!("{}:{}", client.host, client.port),
                }
                .into());
            }
        }
        self.config.client_port = client.port;
        self.config.client_port_address = (!ip.is_unspecified()).then_some(ip);
        Ok(())
    }
}

/// `minSessionTimeout` / `maxSessionTimeout`: -1 means "derive from tickTime".
fn session_timeout(at: &At<'_>) -> Result<Option<u32>, ConfigError> {
    match at.int()? {
        -1 => Ok(None),
        n if n < 0 => Err(at.invalid("must be -1 (default) or a non-negative number of ms")),
        n => Ok(Some(n.unsigned_abs())),
    }
}

/// `clientPortAddress` is an IP literal or a host name (`InetAddress.getByName`).
fn resolve(line: usize, address: &str, port: u16) -> Result<IpAddr, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidValue {
        line,
        key: "clientPortAddress".to_string(),
        value: address.to_string(),
        reason,
    };
    if address.is_empty() {
        return Err(invalid("must not be empty".to_string()));
    }
    let literal = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(ip);
    }
    let mut addrs = (address, port)
        .to_socket_addrs()
        .map_err(|e| invalid(format!("cannot resolve host: {e}")))?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| invalid("host resolves to no address".to_string()))
}

/// Java's `String.trim`: strips every char at or below U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// The `java.util.Properties.load` grammar.
mod properties {
    use super::ConfigError;

    /// One logical `key value` line, unescaped but not trimmed.
    #[derive(Debug, PartialEq)]
    pub(super) struct Entry {
        pub key: String,
        pub value: String,
        /// 1-based line number where the logical line starts.
        pub line: usize,
    }

    /// Properties whitespace: space, tab, form feed.
    fn is_ws(c: char) -> bool {
        c == ' ' || c == '\t' || c == '\x0c'
    }

    /// Natural lines, split at `\n`, `\r\n` or `\r`, numbered from 1.
    fn natural_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
        let mut rest = text;
        let mut number = 0;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            number += 1;
            let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
            let line = &rest[..end];
            let after = &rest[end..];
            rest = if let Some(r) = after.strip_prefix("\r\n") {
                r
            } else if after.is_empty() {
                after
            } else {
                &after[1..]
            };
            Some((number, line))
        })
    }

    pub(super) fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
        let mut entries = Vec::new();
        let mut logical = String::new();
        let mut start_line = 0;
        let mut continuing = false;
        for (number, raw) in natural_lines(text) {
            // Leading whitespace is skipped on every natural line, continuations included.
            let line = raw.trim_start_matches(is_ws);
            if !continuing {
                // Only the first natural line of a logical line can be blank or a comment;
                // a continuation line starting with '#' is content.
                if line.is_empty() || line.starts_with(['#', '!']) {
                    continue;
                }
                start_line = number;
                logical.clear();
            }
            let backslashes = line.chars().rev().take_while(|&c| c == '\\').count();
            if backslashes % 2 == 1 {
                logical.push_str(&line[..line.len() - 1]);
                continuing = true;
            } else {
                logical.push_str(line);
                continuing = false;
                entries.push(split(&logical, start_line)?);
            }
        }
        if continuing {
            // A continuation at the end of the text ends the logical line.
            entries.push(split(&logical, start_line)?);
        }
        Ok(entries)
    }

    /// Splits a logical line into key and value (`Properties.load0`): the key ends at the
    /// first unescaped `=`, `:` or whitespace; whitespace and at most one `=`/`:` follow.
    fn split(line: &str, number: usize) -> Result<Entry, ConfigError> {
        let chars: Vec<char> = line.chars().collect();
        let mut key_len = 0;
        let mut value_start = chars.len();
        let mut has_separator = false;
        let mut preceding_backslash = false;
        while key_len < chars.len() {
            let c = chars[key_len];
            if (c == '=' || c == ':') && !preceding_backslash {
                value_start = key_len + 1;
                has_separator = true;
                break;
            }
            if is_ws(c) && !preceding_backslash {
                value_start = key_len + 1;
                break;
            }
            preceding_backslash = c == '\\' && !preceding_backslash;
            key_len += 1;
        }
        while value_start < chars.len() {
            let c = chars[value_start];
            if !is_ws(c) {
                if !has_separator && (c == '=' || c == ':') {
                    has_separator = true;
                } else {
                    break;
                }
            }
            value_start += 1;
        }
        Ok(Entry {
            key: unescape(&chars[..key_len], number)?,
            value: unescape(&chars[value_start..], number)?,
            line: number,
        })
    }

    /// `Properties.loadConvert`: `\t \n \r \f`, `\uXXXX` (UTF-16 units, so surrogate pairs
    /// combine), and `\x` for any other x is x.
    fn unescape(s: &[char], number: usize) -> Result<String, ConfigError> {
        let mut units: Vec<u16> = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            let c = s[i];
            i += 1;
            if c != '\\' {
                let mut buf = [0u16; 2];
                units.extend_from_slice(c.encode_utf16(&mut buf));
                continue;
            }
            let Some(&escaped) = s.get(i) else {
                break;
            };
            i += 1;
            let plain = match escaped {
                'u' => {
                    let hex: String = s.get(i..i + 4).unwrap_or_default().iter().collect();
                    let unit = u16::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .ok_or(ConfigError::MalformedEscape { line: number })?;
                    units.push(unit);
                    i += 4;
                    continue;
                }
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\x0c',
                other => other,
            };
            let mut buf = [0u16; 2];
            units.extend_from_slice(plain.encode_utf16(&mut buf));
        }
        Ok(String::from_utf16_lossy(&units))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn pairs(text: &str) -> Vec<(String, String)> {
            parse(text)
                .expect("valid properties")
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect()
        }

        fn p(k: &str, v: &str) -> (String, String) {
            (k.to_string(), v.to_string())
        }

        #[test]
        fn separators_equals_colon_and_whitespace() {
            assert_eq!(
                pairs("a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf  =  6  \n"),
                vec![
                    p("a", "1"),
                    p("b", "2"),
                    p("c", "3"),
                    p("d", "4"),
                    p("e", "5"),
                    p("f", "6  ")
                ]
            );
        }

        #[test]
        fn only_one_separator_is_eaten() {
            assert_eq!(pairs("a==1\nb = :2\n"), vec![p("a", "=1"), p("b", ":2")]);
        }

        #[test]
        fn key_without_value() {
            assert_eq!(
                pairs("alone\nempty=\n"),
                vec![p("alone", ""), p("empty", "")]
            );
        }

        #[test]
        fn comments_and_blank_lines_are_skipped() {
            let text = "# hash comment\n! bang comment\n   # indented comment\n\n \t \nk=v\n";
            assert_eq!(pairs(text), vec![p("k", "v")]);
        }

        #[test]
        fn a_hash_after_a_value_is_part_of_the_value() {
            // Properties has no trailing comments; ZooKeeper then fails to parse the number.
            assert_eq!(
                pairs("clientPort=2181 # port\n"),
                vec![p("clientPort", "2181 # port")]
            );
        }

        #[test]
        fn continuation_lines_join_and_skip_leading_whitespace() {
            assert_eq!(pairs("a b\\\n   c\n"), vec![p("a", "bc")]);
            assert_eq!(
                pairs("list=x,\\\n    y,\\\n    z\n"),
                vec![p("list", "x,y,z")]
            );
        }

        #[test]
        fn even_backslashes_do_not_continue() {
            assert_eq!(
                pairs("cont=a\\\\\nnext=b\n"),
                vec![p("cont", "a\\"), p("next", "b")]
            );
        }

        #[test]
        fn continuation_at_end_of_text_and_before_blank_line() {
            assert_eq!(pairs("last=x\\"), vec![p("last", "x")]);
            assert_eq!(pairs("a=x\\\n\nb=y\n"), vec![p("a", "x"), p("b", "y")]);
        }

        #[test]
        fn continued_line_starting_with_hash_is_content() {
            assert_eq!(pairs("a=x\\\n#y\n"), vec![p("a", "x#y")]);
        }

        #[test]
        fn comment_lines_do_not_continue() {
            assert_eq!(pairs("# comment \\\nk=v\n"), vec![p("k", "v")]);
        }

        #[test]
        fn escapes() {
            assert_eq!(
                pairs("k\\=1:v=2\nd\\ e f\n\\u0041x=1\nt=a\\tb\\nc\\rd\\fe\\qf\n"),
                vec![
                    p("k=1", "v=2"),
                    p("d e", "f"),
                    p("Ax", "1"),
                    p("t", "a\tb\nc\rd\x0ceqf"),
                ]
            );
        }

        #[test]
        fn edge_cases_agree_with_java_properties() {
            // Expected values printed by OpenJDK 17's Properties.load on the same text.
            for (text, expected) in [
                ("=value\n", vec![p("", "value")]),
                (":\n", vec![p("", "")]),
                ("k\\\\ x=y\n", vec![p("k\\", "x=y")]),
                ("a\\\n \\\n b=c\n", vec![p("ab", "c")]),
                ("a=1\\\n   # not comment\n", vec![p("a", "1# not comment")]),
                ("\\#notcomment=1\n", vec![p("#notcomment", "1")]),
                ("k\\\n=v\n", vec![p("k", "v")]),
                ("k \\\n  = v\n", vec![p("k", "v")]),
                (" \x0c k\x0c=\x0cv\n", vec![p("k", "v")]),
                ("a=\\\n\\\n\n", vec![p("a", "")]),
                ("x=a\\u0020\n", vec![p("x", "a ")]),
                ("tab\tsep\tval\n", vec![p("tab", "sep\tval")]),
                ("e=\\\\u0041\n", vec![p("e", "\\u0041")]),
            ] {
                assert_eq!(pairs(text), expected, "{text:?}");
            }
        }

        #[test]
        fn surrogate_pairs_combine() {
            assert_eq!(pairs("s=\\uD83D\\uDE00\n"), vec![p("s", "\u{1F600}")]);
            assert_eq!(pairs("s=\\uD83D\n"), vec![p("s", "\u{FFFD}")]);
        }

        #[test]
        fn malformed_unicode_escape_is_an_error() {
            for text in ["a=\\u00zz\n", "a=\\u12", "\n\nb=\\u"] {
                match parse(text) {
                    Err(ConfigError::MalformedEscape { line }) => {
                        assert_eq!(line, if text.starts_with('\n') { 3 } else { 1 })
                    }
                    other => panic!("{text:?}: expected MalformedEscape, got {other:?}"),
                }
            }
        }

        #[test]
        fn line_endings_crlf_and_cr() {
            assert_eq!(
                pairs("a=1\r\nb=2\rc=3"),
                vec![p("a", "1"), p("b", "2"), p("c", "3")]
            );
            assert_eq!(pairs("a=x\\\r\n  y\r\n"), vec![p("a", "xy")]);
        }

        #[test]
        fn line_numbers_point_at_the_start_of_the_logical_line() {
            let entries = parse("# c\n\na=1\\\n 2\nb=3\n").expect("valid");
            assert_eq!(entries[0].line, 3);
            assert_eq!(entries[1].line, 5);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokeeper_net::fourlw::FourLetterWord;

    fn parse_ok(text: &str) -> (Config, Vec<String>) {
        match Config::parse(text) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{text:?}: unexpected error {e}"),
        }
    }

    fn parse_err(text: &str) -> ConfigError {
        match Config::parse(text) {
            Ok((config, _)) => panic!("{text:?}: expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    /// Asserts an `InvalidValue` error for `key` and `value`, and that the message names both.
    fn assert_invalid(text: &str, key: &str, value: &str) {
        let err = parse_err(text);
        let message = err.to_string();
        match &err {
            ConfigError::InvalidValue {
                key: k, value: v, ..
            } => {
                assert_eq!((k.as_str(), v.as_str()), (key, value), "{text:?}");
            }
            other => panic!("{text:?}: expected InvalidValue, got {other:?}"),
        }
        assert!(
            message.contains(key) && message.contains(value),
            "{message}"
        );
    }

    const MINIMAL: &str = "dataDir=/var/lib/zk\nclientPort=2181\n";

    #[test]
    fn minimal_file_gets_zookeeper_defaults() {
        let (c, warnings) = parse_ok(MINIMAL);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.client_port_address, None);
        assert_eq!(c.client_port_listen_backlog, None);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/zk"));
        assert_eq!(c.data_log_dir, PathBuf::from("/var/lib/zk"));
        assert_eq!(c.limits.client_cnxns_per_ip_max, 60);
        assert_eq!(c.limits.cnxns_max, 0);
        assert_eq!(c.limits.session_timeout_ms_min, 6000);
        assert_eq!(c.limits.session_timeout_ms_max, 60000);
        assert_eq!(
            c.four_letter_whitelist,
            FourLetterWhitelist::zookeeper_default()
        );
        assert_eq!(c.limits.jute_max_buffer_bytes, 0xfffff);
        assert!(!c.extended_types_enabled);
        assert_eq!(c.limits.global_outstanding_requests_max, 1000);
        assert_eq!(c.super_digest, None);
        assert!(!c.skip_acl);
        assert_eq!(c.container_check_interval_ms, 60_000);
        assert_eq!(c.container_max_per_minute, 10_000);
        assert_eq!(c.container_max_never_used_interval_ms, 0);
        assert_eq!(c.snap_count, 100_000);
        assert_eq!(c.pre_alloc_size_kb, 65_536);
        assert!(c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert!(c.log_compress_superseded);
        assert!(c.standalone_enabled);
        assert!(!c.reconfig_enabled);
        assert_eq!(c.server_id, 0);
        assert_eq!(
            c.shards,
            ferrokeeper_tuning::recommend::shards_for_cpus(available_cores())
        );
        assert!(c.pin_shards);
        assert_eq!(c.commit_on_shard, None);
        assert_eq!(c.limits.commit_queue_depth_requests, 4096);
        assert_eq!(c.limits.commit_batch_requests_max, 1024);
        assert_eq!(
            c.raw,
            vec![
                ("dataDir".to_string(), "/var/lib/zk".to_string()),
                ("clientPort".to_string(), "2181".to_string())
            ]
        );
    }

    #[test]
    fn embedded_default() {
        let c = Config::embedded_default();
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.data_log_dir, PathBuf::from("./data"));
        assert_eq!(c.tick_time_ms, DEFAULT_TICK_TIME_MS);
        assert_eq!(c.limits.session_timeout_ms_min, 2 * DEFAULT_TICK_TIME_MS);
        assert_eq!(c.limits.session_timeout_ms_max, 20 * DEFAULT_TICK_TIME_MS);
        assert!(c.four_letter_whitelist.contains(FourLetterWord::Srvr));
        assert!(!c.four_letter_whitelist.contains(FourLetterWord::Ruok));
        assert!(c.raw.is_empty());
        // The embedded default is what an equivalent zoo.cfg parses to.
        let (parsed, _) = parse_ok("dataDir=./data\nclientPort=2181\n");
        assert_eq!(
            Config {
                raw: Vec::new(),
                ..parsed
            },
            c
        );
    }

    #[test]
    fn the_sample_zoo_cfg_parses() {
        let text = "# The number of milliseconds of each tick\ntickTime=2000\n\
                    # The number of ticks that the initial\n# synchronization phase can take\n\
                    initLimit=10\nsyncLimit=5\ndataDir=/tmp/zookeeper\nclientPort=2181\n\
                    #maxClientCnxns=60\n#autopurge.snapRetainCount=3\n#autopurge.purgeInterval=1\n\
                    ## Metrics Providers\n#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
                    #metricsProvider.httpPort=7000\n#metricsProvider.exportJvmInfo=true\n";
        let (c, warnings) = parse_ok(text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.limits.session_timeout_ms_min, 4000);
        assert_eq!(c.limits.session_timeout_ms_max, 40000);
    }

    #[test]
    fn every_supported_key() {
        let text = "\
tickTime=1000
clientPort=2999
clientPortAddress=127.0.0.1
clientPortListenBacklog=128
dataDir=/d
dataLogDir=/l
maxClientCnxns=0
maxCnxns=5000
minSessionTimeout=1500
maxSessionTimeout=90000
4lw.commands.whitelist=ruok, mntr ,srvr
jute.maxbuffer=4194304
extendedTypesEnabled=true
globalOutstandingLimit=2000
DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
skipACL=yes
znode.container.checkIntervalMs=1000
znode.container.maxPerMinute=100
znode.container.maxNeverUsedIntervalMs=30000
snapCount=50000
preAllocSize=131072
forceSync=no
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
standaloneEnabled=false
reconfigEnabled=true
ferrokeeper.shards=2
ferrokeeper.pinShards=false
ferrokeeper.commitOnShard=false
ferrokeeper.log.compressSuperseded=false
ferrokeeper.commitQueueDepth=512
ferrokeeper.commitBatchMax=64
initLimit=10
syncLimit=5
server.1=127.0.0.1:2888:3888;127.0.0.1:2999
";
        // standaloneEnabled=false needs a server line (and then myid) in ZooKeeper too.
        let (c, warnings) =
            Config::parse_as_server(text, &SystemProperties::empty(), 1).expect("valid");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("tolerates no server failure"),
            "{warnings:?}"
        );
        assert!(!c.pin_shards);
        assert_eq!(c.commit_on_shard, Some(false));
        assert!(!c.log_compress_superseded);
        assert_eq!(c.tick_time_ms, 1000);
        assert_eq!(c.client_port, 2999);
        assert_eq!(
            c.client_port_address,
            Some("127.0.0.1".parse().expect("ip"))
        );
        assert_eq!(c.client_port_listen_backlog, Some(128));
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.data_log_dir, PathBuf::from("/l"));
        assert_eq!(c.limits.client_cnxns_per_ip_max, 0);
        assert_eq!(c.limits.cnxns_max, 5000);
        assert_eq!(c.limits.session_timeout_ms_min, 1500);
        assert_eq!(c.limits.session_timeout_ms_max, 90000);
        let wl = &c.four_letter_whitelist;
        assert!(wl.contains(FourLetterWord::Ruok));
        assert!(wl.contains(FourLetterWord::Mntr));
        assert!(wl.contains(FourLetterWord::Srvr));
        assert!(!wl.contains(FourLetterWord::Dump));
        assert_eq!(c.limits.jute_max_buffer_bytes, 4_194_304);
        assert!(c.extended_types_enabled);
        assert_eq!(c.limits.global_outstanding_requests_max, 2000);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert!(c.skip_acl);
        assert_eq!(c.container_check_interval_ms, 1000);
        assert_eq!(c.container_max_per_minute, 100);
        assert_eq!(c.container_max_never_used_interval_ms, 30000);
        assert_eq!(c.snap_count, 50000);
        assert_eq!(c.pre_alloc_size_kb, 131_072);
        assert!(!c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 5);
        assert_eq!(c.autopurge_purge_interval_hours, 24);
        assert!(!c.standalone_enabled);
        assert_eq!(c.ensemble.map(|e| e.servers.len()), Some(1));
        assert!(c.reconfig_enabled);
        assert_eq!(c.shards, 2);
        assert_eq!(c.limits.commit_queue_depth_requests, 512);
        assert_eq!(c.limits.commit_batch_requests_max, 64);
        assert_eq!(c.raw.len(), 35);
        assert_eq!(
            c.raw[10],
            (
                "4lw.commands.whitelist".to_string(),
                "ruok, mntr ,srvr".to_string()
            )
        );
    }

    #[test]
    fn zookeeper_prefix_is_accepted_for_every_key() {
        let text = "dataDir=/d\nclientPort=1\nzookeeper.extendedTypesEnabled=true\n\
                    zookeeper.DigestAuthenticationProvider.superDigest=super:x\n\
                    zookeeper.4lw.commands.whitelist=*\nzookeeper.snapCount=10\n\
                    zookeeper.jute.maxbuffer=0x100000\nzookeeper.skipACL=no\n";
        let (c, warnings) = parse_ok(text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(c.extended_types_enabled);
        assert_eq!(c.super_digest.as_deref(), Some("super:x"));
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::all());
        assert_eq!(c.snap_count, 10);
        assert_eq!(c.limits.jute_max_buffer_bytes, 0x100000);
        assert!(!c.skip_acl);
    }

    #[test]
    fn system_property_style_numbers_decode_like_java() {
        // Integer.decode: hex with 0x, 0X or #, octal with a leading 0.
        for (value, expected) in [
            ("0xfffff", 0xfffff),
            ("0X10", 16),
            ("#20", 32),
            ("010", 8),
            ("+7", 7),
        ] {
            let (c, _) = parse_ok(&format!("{MINIMAL}jute.maxbuffer={value}\n"));
            assert_eq!(c.limits.jute_max_buffer_bytes, expected, "{value}");
        }
        assert_eq!(java_decode("-0x10"), Some(-16));
        assert_eq!(java_decode("0"), Some(0));
        assert_eq!(java_decode("0x"), None);
        assert_eq!(java_decode("--1"), None);
        assert_eq!(java_decode("0x-1"), None);
        assert_eq!(java_decode("09"), None);
        assert_eq!(java_decode(""), None);
    }

    #[test]
    fn values_and_keys_are_trimmed_like_java() {
        let (c, _) = parse_ok("  dataDir = /d \t\n clientPort\t2181\x0b\n");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.client_port, 2181);
    }

    #[test]
    fn yes_no_switches_read_like_zookeeper() {
        // ZooKeeper: skipACL is on only for "yes", forceSync off only for "no" (exact case);
        // anything else is the default, with a warning here.
        for (value, skip_acl, force_sync, warned) in [
            ("yes", true, true, false),
            ("no", false, false, false),
            ("YES", false, true, true),
            ("true", false, true, true),
            ("false", false, true, true),
        ] {
            let (c, w) = parse_ok(&format!("{MINIMAL}forceSync={value}\nskipACL={value}\n"));
            assert_eq!(
                (c.skip_acl, c.force_sync),
                (skip_acl, force_sync),
                "{value}"
            );
            assert_eq!(w.len(), if warned { 2 } else { 0 }, "{value}: {w:?}");
        }
    }

    #[test]
    fn whitelist_rules() {
        let wl = |v: &str| parse_ok(&format!("{MINIMAL}4lw.commands.whitelist={v}\n"));
        // srvr is always enabled (zkServer.sh depends on it).
        let (c, w) = wl("ruok");
        assert!(w.is_empty());
        assert!(c.four_letter_whitelist.contains(FourLetterWord::Srvr));
        assert!(c.four_letter_whitelist.contains(FourLetterWord::Ruok));
        assert!(!c.four_letter_whitelist.contains(FourLetterWord::Stat));
        // '*' anywhere enables everything, including the telnet close sequence.
        let (c, _) = wl("ruok, * ,bogus");
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::all());
        assert!(c
            .four_letter_whitelist
            .contains(FourLetterWord::TelnetClose));
        // Empty entries are skipped; unknown words (and wrong case) are warned about.
        let (c, w) = wl(",, stat ,RUOK, nope,");
        assert!(c.four_letter_whitelist.contains(FourLetterWord::Stat));
        assert!(!c.four_letter_whitelist.contains(FourLetterWord::Ruok));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("\"RUOK\"") && w[1].contains("\"nope\""),
            "{w:?}"
        );
        // An empty whitelist leaves srvr alone.
        let (c, w) = wl("");
        assert!(w.is_empty());
        assert_eq!(
            c.four_letter_whitelist,
            FourLetterWhitelist::zookeeper_default()
        );
    }

    #[test]
    fn session_timeouts_follow_tick_time_unless_set() {
        let (c, _) = parse_ok(&format!("{MINIMAL}tickTime=100\n"));
        assert_eq!(
            (
                c.limits.session_timeout_ms_min,
                c.limits.session_timeout_ms_max
            ),
            (200, 2000)
        );
        let (c, _) = parse_ok(&format!(
            "{MINIMAL}tickTime=100\nminSessionTimeout=-1\nmaxSessionTimeout=500\n"
        ));
        assert_eq!(
            (
                c.limits.session_timeout_ms_min,
                c.limits.session_timeout_ms_max
            ),
            (200, 500)
        );
        let (c, _) = parse_ok(&format!("{MINIMAL}minSessionTimeout=0\n"));
        assert_eq!(c.limits.session_timeout_ms_min, 0);
    }

    #[test]
    fn corrections_zookeeper_makes_are_warnings() {
        let (c, w) = parse_ok(&format!(
            "{MINIMAL}snapCount=1\nautopurge.snapRetainCount=1\nmaxClientCnxns=-1\nmaxCnxns=-3\n\
             autopurge.purgeInterval=-1\nclientPortListenBacklog=-1\n"
        ));
        assert_eq!(c.snap_count, 2);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.limits.client_cnxns_per_ip_max, 0);
        assert_eq!(c.limits.cnxns_max, 0);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert_eq!(c.client_port_listen_backlog, None);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("line 3: snapCount"), "{w:?}");
    }

    #[test]
    fn known_ignored_keys_are_quiet_unknown_keys_warn() {
        let (_, w) = parse_ok(&format!(
            "{MINIMAL}initLimit=10\nsyncLimit=5\nadmin.enableServer=false\nadmin.serverPort=8080\n\
             metricsProvider.className=x\nmetricsProvider.httpPort=7000\nlocalSessionsEnabled=true\n\
             snapshot.compression.method=gz\nssl.keyStore.location=/k\n\
             group.1=1:2:3\nweight.1=1\nquorum.auth.enableSasl=false\n"
        ));
        assert!(w.is_empty(), "{w:?}");
        let (_, w) = parse_ok(&format!("{MINIMAL}tickTme=2000\nferrokeeper.shard=2\n"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("unknown key tickTme"), "{w:?}");
        assert!(
            w[1].contains("unknown ferrokeeper setting ferrokeeper.shard"),
            "{w:?}"
        );
    }

    #[test]
    fn features_that_change_behaviour_warn() {
        let (c, w) = parse_ok(&format!(
            "{MINIMAL}secureClientPort=2281\nserver.1=a:2888:3888\n"
        ));
        assert_eq!(c.tls.secure_client_port, Some(2281));
        assert_eq!(w.len(), 1, "{w:?}");
        // One server line runs standalone, as in ZooKeeper (ensemble_tests has the rest).
        assert!(w[0].contains("only one server line"), "{w:?}");
    }

    /// The `ssl.*` keys come from `zoo.cfg` or from `zookeeper.`-prefixed properties
    /// (`ClientX509Util`); `zoo.cfg` wins, as for every other property.
    #[test]
    fn tls_keys_from_the_file_and_properties() {
        let props = SystemProperties::from_lookup(
            |_| None,
            [
                "-Dzookeeper.ssl.clientAuth=none",
                "-Dzookeeper.ssl.keyStore.location=/p/k.jks",
                "-Dzookeeper.client.portUnification=true",
                "-Dzookeeper.X509AuthenticationProvider.superUser=CN=admin",
            ],
        );
        let text = format!(
            "{MINIMAL}secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
             ssl.clientAuth=want\nssl.keyStore.password=secret\n\
             ssl.ciphersuites=TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384\n"
        );
        let (c, w) = Config::parse_with(&text, &props).expect("parses");
        assert!(w.is_empty(), "{w:?}");
        let t = &c.tls;
        assert_eq!(t.secure_client_port, Some(2281));
        assert_eq!(t.client_auth, tls::ClientAuth::Want);
        assert!(t.port_unification);
        assert_eq!(t.key_store.location.as_deref(), Some(Path::new("/p/k.jks")));
        assert_eq!(t.key_store.password.as_deref(), Some("secret"));
        assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
        assert_eq!(t.cipher_suites.as_ref().map(Vec::len), Some(2));
        assert_invalid(
            &format!("{MINIMAL}ssl.clientAuth=maybe\n"),
            "ssl.clientAuth",
            "maybe",
        );
    }

    #[test]
    fn duplicate_keys_last_wins_with_warning() {
        let (c, w) = parse_ok(&format!(
            "{MINIMAL}tickTime=1000\nzookeeper.tickTime=1500\n"
        ));
        assert_eq!(c.tick_time_ms, 1500);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(c.raw.len(), 4);
    }

    #[test]
    fn relative_data_dir_warns_unless_dot_slash() {
        let (_, w) = parse_ok("dataDir=data\nclientPort=1\n");
        assert_eq!(w.len(), 1, "{w:?}");
        let (_, w) = parse_ok("dataDir=./data\ndataLogDir=./log\nclientPort=1\n");
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn missing_client_port_defaults_with_warning() {
        let (c, w) = parse_ok("dataDir=/d\n");
        assert_eq!(c.client_port, 2181);
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn client_port_address_forms() {
        let (c, _) = parse_ok(&format!("{MINIMAL}clientPortAddress=::1\n"));
        assert_eq!(c.client_port_address, Some("::1".parse().expect("ip")));
        let (c, _) = parse_ok(&format!("{MINIMAL}clientPortAddress=[::1]\n"));
        assert_eq!(c.client_port_address, Some("::1".parse().expect("ip")));
        let (c, _) = parse_ok(&format!("{MINIMAL}clientPortAddress=0.0.0.0\n"));
        assert_eq!(c.client_port_address, Some("0.0.0.0".parse().expect("ip")));
        let (c, _) = parse_ok(&format!("{MINIMAL}clientPortAddress=localhost\n"));
        assert!(c.client_port_address.is_some_and(|ip| ip.is_loopback()));
    }

    // ---- system properties ----

    fn props(flags: &[&str]) -> SystemProperties {
        SystemProperties::from_lookup(|_| None, flags.iter().copied())
    }

    #[test]
    fn every_property_zookeeper_reads_is_honoured() {
        let p = props(&[
            "-Dreadonlymode.enabled=true",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:x",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Djute.maxbuffer=0x200000",
            "-Dzookeeper.enforceQuota=true",
            "-Dzookeeper.skipACL=yes",
            "-Dzookeeper.maxCnxns=7",
            "-Dzookeeper.globalOutstandingLimit=9",
            "-Dzookeeper.snapCount=11",
            "-Dzookeeper.preAllocSize=1024",
            "-Dzookeeper.forceSync=no",
            "-Dznode.container.checkIntervalMs=100",
            "-Dznode.container.maxPerMinute=5",
            "-Dznode.container.maxNeverUsedIntervalMs=300",
            "-Dzookeeper.4lw.commands.whitelist=ruok",
            "-Dferrokeeper.sessionQueuedRequestsMax=3",
        ]);
        let (c, w) = Config::parse_with(MINIMAL, &p).expect("parse");
        assert!(c.read_only_mode_enabled && c.enforce_quota, "{c:?}");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.super_digest.as_deref(), Some("super:x"));
        assert!(c.extended_types_enabled && c.skip_acl && !c.force_sync);
        assert_eq!(c.limits.jute_max_buffer_bytes, 0x200000);
        assert_eq!(c.limits.cnxns_max, 7);
        assert_eq!(c.limits.global_outstanding_requests_max, 9);
        assert_eq!(c.limits.session_queued_requests_max, 3);
        assert_eq!(c.snap_count, 11);
        assert_eq!(c.pre_alloc_size_kb, 1024);
        assert_eq!(c.container_check_interval_ms, 100);
        assert_eq!(c.container_max_per_minute, 5);
        assert_eq!(c.container_max_never_used_interval_ms, 300);
        assert!(c.four_letter_whitelist.contains(FourLetterWord::Ruok));
        assert!(!c.four_letter_whitelist.contains(FourLetterWord::Mntr));
        assert!(c.raw.len() == 2, "properties are not zoo.cfg entries");
    }

    #[test]
    fn zoo_cfg_wins_over_a_property_as_in_zookeeper() {
        // QuorumPeerConfig.parseProperties overwrites zookeeper.<key> with the file's value.
        let p = props(&["-Dzookeeper.snapCount=11", "-Dzookeeper.maxCnxns=3"]);
        let (c, w) = Config::parse_with(&format!("{MINIMAL}snapCount=500\n"), &p).expect("parse");
        assert_eq!(c.snap_count, 500);
        assert_eq!(c.limits.cnxns_max, 3);
        assert!(w.is_empty(), "{w:?}");
        // A malformed file value is the default, not the property's value (Java overwrites
        // the property, then Integer.getInteger falls back to its default).
        let (c, w) = Config::parse_with(&format!("{MINIMAL}snapCount=lots\n"), &p).expect("parse");
        assert_eq!(c.snap_count, DEFAULT_SNAP_COUNT);
        assert_eq!(w.len(), 1, "{w:?}");
        // The last of several properties wins, as on a JVM command line.
        let p = props(&["-Dzookeeper.snapCount=11", "-Dzookeeper.snapCount=12"]);
        let (c, _) = Config::parse_with(MINIMAL, &p).expect("parse");
        assert_eq!(c.snap_count, 12);
    }

    #[test]
    fn properties_zookeeper_does_not_read_are_ignored() {
        // tickTime is a QuorumPeerConfig key: no system property sets it, in Java either;
        // bare names of prefixed properties and unknown names are ignored quietly.
        let p = props(&[
            "-DtickTime=100",
            "-Dzookeeper.tickTime=100",
            "-DsnapCount=5",
            "-Dzookeeper.jute.maxbuffer=5",
            "-Dsome.thing=1",
            "-Xmx1g",
        ]);
        let (c, w) = Config::parse_with(MINIMAL, &p).expect("parse");
        assert!(w.is_empty(), "{w:?}");
        let (d, _) = parse_ok(MINIMAL);
        let c = Config {
            system_properties: SystemProperties::empty(),
            ..c
        };
        assert_eq!(c, d);
    }

    #[test]
    fn malformed_properties_are_the_default_with_a_warning() {
        let p = props(&[
            "-Dzookeeper.globalOutstandingLimit=many",
            "-Djute.maxbuffer=0",
        ]);
        let (c, w) = Config::parse_with(MINIMAL, &p).expect("parse");
        assert_eq!(c.limits, Limits::defaults(DEFAULT_TICK_TIME_MS));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with(
                "system property zookeeper.globalOutstandingLimit (the command line): \
                 invalid value \"many\""
            ),
            "{w:?}"
        );
        // ferrokeeper's own settings are strict, whatever their source.
        let err = Config::parse_with(MINIMAL, &props(&["-Dferrokeeper.shards=none"]))
            .expect_err("bad ferrokeeper property");
        assert!(
            matches!(err, ConfigError::InvalidProperty { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("ferrokeeper.shards"), "{err}");
    }

    #[test]
    fn properties_without_zoo_cfg_start_from_the_embedded_default() {
        let (c, w) = Config::from_properties(&props(&["-Dzookeeper.maxCnxns=2"])).expect("ok");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.limits.cnxns_max, 2);
        assert_eq!(
            Config {
                limits: Config::embedded_default().limits,
                system_properties: SystemProperties::empty(),
                ..c
            },
            Config::embedded_default()
        );
    }

    #[test]
    fn load_with_properties_prefixes_only_file_warnings() {
        let dir = temp_dir("loadprops");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("dataDir={}\nclientPort=2181\nbogus=1\n", dir.display()),
        )
        .expect("write");
        let p = SystemProperties::from_lookup(
            |v| (v == "JVMFLAGS").then(|| "-Dzookeeper.snapCount=x".to_string()),
            [],
        );
        let (_, w) = Config::load_with(&cfg, &p).expect("load");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("system property zookeeper.snapCount ($JVMFLAGS)"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with(&format!("{}: line 3:", cfg.display())),
            "{w:?}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    // ---- every error path ----

    #[test]
    fn error_missing_data_dir() {
        let err = parse_err("clientPort=2181\n");
        assert!(
            matches!(err, ConfigError::Missing { key: "dataDir" }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "dataDir is not set");
    }

    #[test]
    fn error_empty_data_dirs() {
        assert_invalid("dataDir=\n", "dataDir", "");
        assert_invalid("dataDir=/d\ndataLogDir=  \n", "dataLogDir", "");
    }

    #[test]
    fn error_non_numbers() {
        // Keys QuorumPeerConfig parses with Integer.parseInt: ZooKeeper refuses to start.
        for key in [
            "clientPort",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "autopurge.snapRetainCount",
            "autopurge.purgeInterval",
            "clientPortListenBacklog",
            "ferrokeeper.shards",
            "ferrokeeper.commitQueueDepth",
            "ferrokeeper.commitBatchMax",
            "ferrokeeper.sessionQueuedRequestsMax",
        ] {
            assert_invalid(&format!("dataDir=/d\n{key}=12x\n"), key, "12x");
        }
    }

    #[test]
    fn bad_property_numbers_are_the_default_with_a_warning() {
        // Keys ZooKeeper reads with Integer.getInteger / Long.getLong (or parses and
        // catches, preAllocSize): a value that does not parse is the default.
        let text = format!(
            "{MINIMAL}maxCnxns=12x\njute.maxbuffer=12x\nglobalOutstandingLimit=12x\n\
             znode.container.checkIntervalMs=12x\nznode.container.maxPerMinute=12x\n\
             znode.container.maxNeverUsedIntervalMs=12x\nsnapCount=12x\npreAllocSize=12x\n"
        );
        let (c, w) = parse_ok(&text);
        let (d, _) = parse_ok(MINIMAL);
        assert_eq!(
            Config {
                raw: Vec::new(),
                ..c
            },
            Config {
                raw: Vec::new(),
                ..d.clone()
            }
        );
        assert_eq!(w.len(), 8, "{w:?}");
        assert!(w.iter().all(|w| w.contains("\"12x\"")), "{w:?}");
        // Out of range is the default as well.
        let (c, w) = parse_ok(&format!(
            "{MINIMAL}jute.maxbuffer=0\nglobalOutstandingLimit=0\npreAllocSize=0\n\
             znode.container.checkIntervalMs=0\nznode.container.maxPerMinute=-1\n\
             znode.container.maxNeverUsedIntervalMs=-1\njute.maxbuffer=0x80000000\n"
        ));
        assert_eq!(c.limits, d.limits);
        assert_eq!(c.pre_alloc_size_kb, d.pre_alloc_size_kb);
        assert_eq!(c.container_check_interval_ms, d.container_check_interval_ms);
        assert_eq!(w.len(), 7, "{w:?}");
    }

    #[test]
    fn error_trailing_comment_makes_a_number_invalid() {
        assert_invalid(
            "dataDir=/d\nclientPort=2181 # the port\n",
            "clientPort",
            "2181 # the port",
        );
    }

    #[test]
    fn error_numbers_out_of_range() {
        assert_invalid("dataDir=/d\nclientPort=0\n", "clientPort", "0");
        assert_invalid("dataDir=/d\nclientPort=65536\n", "clientPort", "65536");
        assert_invalid("dataDir=/d\nclientPort=70000\n", "clientPort", "70000");
        assert_invalid("dataDir=/d\nclientPort=-5\n", "clientPort", "-5");
        assert_invalid("dataDir=/d\ntickTime=0\n", "tickTime", "0");
        assert_invalid("dataDir=/d\ntickTime=-10\n", "tickTime", "-10");
        assert_invalid(
            "dataDir=/d\ntickTime=2147483648\n",
            "tickTime",
            "2147483648",
        );
        assert_invalid(
            "dataDir=/d\nminSessionTimeout=-2\n",
            "minSessionTimeout",
            "-2",
        );
        assert_invalid(
            "dataDir=/d\nferrokeeper.shards=0\n",
            "ferrokeeper.shards",
            "0",
        );
        assert_invalid(
            "dataDir=/d\nferrokeeper.commitQueueDepth=-1\n",
            "ferrokeeper.commitQueueDepth",
            "-1",
        );
        assert_invalid(
            "dataDir=/d\nferrokeeper.commitQueueDepth=15\n",
            "ferrokeeper.commitQueueDepth",
            "15",
        );
        assert_invalid(
            "dataDir=/d\nferrokeeper.commitBatchMax=0\n",
            "ferrokeeper.commitBatchMax",
            "0",
        );
        assert_invalid(
            "dataDir=/d\nferrokeeper.sessionQueuedRequestsMax=0\n",
            "ferrokeeper.sessionQueuedRequestsMax",
            "0",
        );
    }

    #[test]
    fn error_messages_name_line_key_and_value() {
        let err = parse_err("# comment\ndataDir=/d\nclientPort=abc\n");
        assert_eq!(
            err.to_string(),
            "line 3: invalid value \"abc\" for clientPort: not an integer"
        );
        let err = parse_err("dataDir=/d\nclientPort=99999999999\n");
        assert!(err.to_string().ends_with("out of range"), "{err}");
    }

    #[test]
    fn error_bad_booleans() {
        // QuorumPeerConfig.parseBoolean refuses anything but true/false for its own keys.
        for key in ["standaloneEnabled", "reconfigEnabled"] {
            assert_invalid(&format!("dataDir=/d\n{key}=yes\n"), key, "yes");
        }
    }

    #[test]
    fn bad_property_booleans_are_the_default_with_a_warning() {
        // Boolean.getBoolean / parseBoolean: only "true" (any case) is true.
        let (c, w) = parse_ok(&format!(
            "{MINIMAL}extendedTypesEnabled=yes\nenforceQuota=on\nreadonlymode.enabled=1\n\
             forceSync=maybe\nskipACL=maybe\n"
        ));
        assert!(!c.extended_types_enabled && !c.enforce_quota && !c.read_only_mode_enabled);
        assert!(c.force_sync && !c.skip_acl);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(
            w[0].starts_with("line 3: invalid value \"yes\" for extendedTypesEnabled"),
            "{w:?}"
        );
        assert!(w[0].contains("default"), "{w:?}");
        let (c, _) = parse_ok(&format!("{MINIMAL}extendedTypesEnabled=TRUE\n"));
        assert!(c.extended_types_enabled);
    }

    #[test]
    fn error_min_session_timeout_above_max() {
        let err = parse_err("dataDir=/d\nminSessionTimeout=50000\nmaxSessionTimeout=40000\n");
        assert!(
            matches!(
                err,
                ConfigError::SessionTimeoutRange {
                    min_ms: 50000,
                    max_ms: 40000
                }
            ),
            "{err:?}"
        );
        // The maximum may come from the tickTime default (20 ticks of 3000 ms).
        let err = parse_err("dataDir=/d\nminSessionTimeout=60001\n");
        assert!(
            matches!(
                err,
                ConfigError::SessionTimeoutRange {
                    min_ms: 60001,
                    max_ms: 60000
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("minSessionTimeout"));
    }

    #[test]
    fn error_address_without_port() {
        let err = parse_err("dataDir=/d\nclientPortAddress=127.0.0.1\n");
        assert!(
            matches!(err, ConfigError::AddressWithoutPort { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("127.0.0.1"));
    }

    #[test]
    fn error_unresolvable_or_empty_address() {
        assert_invalid(
            "dataDir=/d\nclientPort=1\nclientPortAddress=no.such.host.invalid\n",
            "clientPortAddress",
            "no.such.host.invalid",
        );
        assert_invalid(
            "dataDir=/d\nclientPort=1\nclientPortAddress=\n",
            "clientPortAddress",
            "",
        );
    }

    #[test]
    fn error_malformed_escape() {
        let err = parse_err("dataDir=/d\nbad=\\u00zz\n");
        assert!(
            matches!(err, ConfigError::MalformedEscape { line: 2 }),
            "{err:?}"
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferrokeeper-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    #[test]
    fn load_reads_myid_and_prefixes_warnings() {
        let dir = temp_dir("myid");
        std::fs::write(dir.join("myid"), "7\n").expect("write myid");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("dataDir={}\nclientPort=2181\nbogus=1\n", dir.display()),
        )
        .expect("write cfg");
        let (c, w) = Config::load(&cfg).expect("load");
        assert_eq!(c.server_id, 7);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with(&format!("{}: line 3:", cfg.display())),
            "{w:?}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn load_without_myid_keeps_server_id_zero() {
        let dir = temp_dir("nomyid");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("dataDir={}\nclientPort=2181\n", dir.display()),
        )
        .expect("write");
        let (c, _) = Config::load(&cfg).expect("load");
        assert_eq!(c.server_id, 0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn load_reads_latin1_files() {
        let dir = temp_dir("latin1");
        let cfg = dir.join("zoo.cfg");
        let mut bytes = format!("dataDir={}\nclientPort=2181\n", dir.display()).into_bytes();
        bytes.extend_from_slice(b"DigestAuthenticationProvider.superDigest=super:\xe9\n");
        std::fs::write(&cfg, bytes).expect("write");
        let (c, _) = Config::load(&cfg).expect("load");
        assert_eq!(c.super_digest.as_deref(), Some("super:\u{e9}"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn error_load_missing_file_names_it() {
        let path = Path::new("/nonexistent/ferrokeeper/zoo.cfg");
        let err = Config::load(path).expect_err("missing file");
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/ferrokeeper/zoo.cfg"),
            "{err}"
        );
    }

    #[test]
    fn error_load_invalid_value_names_the_file() {
        let dir = temp_dir("badvalue");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, "dataDir=/d\nclientPort=x\n").expect("write");
        let err = Config::load(&cfg).expect_err("bad value");
        assert!(matches!(err, ConfigError::InFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with(&cfg.display().to_string()), "{message}");
        assert!(
            message.contains("clientPort") && message.contains("\"x\""),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn error_bad_myid() {
        let dir = temp_dir("badmyid");
        std::fs::write(dir.join("myid"), "one\n").expect("write myid");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!("dataDir={}\nclientPort=2181\n", dir.display()),
        )
        .expect("write");
        let err = Config::load(&cfg).expect_err("bad myid");
        assert!(matches!(err, ConfigError::InvalidMyid { .. }), "{err:?}");
        assert!(
            err.to_string().contains("myid") && err.to_string().contains("\"one\""),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn error_server_id_too_large_for_extended_types() {
        let dir = temp_dir("bigid");
        std::fs::write(dir.join("myid"), "255").expect("write myid");
        let cfg = dir.join("zoo.cfg");
        let text = format!(
            "dataDir={}\nclientPort=2181\nextendedTypesEnabled=true\n",
            dir.display()
        );
        std::fs::write(&cfg, &text).expect("write");
        let err = Config::load(&cfg).expect_err("id too large");
        assert!(matches!(err, ConfigError::InvalidMyid { .. }), "{err:?}");
        assert!(err.to_string().contains("254"), "{err}");
        // Without extended types the same id is fine.
        std::fs::write(&cfg, text.replace("true", "false")).expect("write");
        let (c, _) = Config::load(&cfg).expect("load");
        assert_eq!(c.server_id, 255);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
