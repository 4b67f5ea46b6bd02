//! The AdminServer's and the metrics provider's settings.
//!
//! * `admin.*`: ZooKeeper's `JettyAdminServer` reads these as system properties
//!   (`zookeeper.admin.enableServer`, ...), which a `zoo.cfg` key `admin.<x>` also sets
//!   (see the parent module on that copy). Defaults as in ZooKeeper 3.9: on, 0.0.0.0,
//!   port 8080, `/commands`, 30 s idle timeout.
//! * `metricsProvider.*`: `QuorumPeerConfig` keys, from `zoo.cfg` only. Setting
//!   `metricsProvider.className` to ZooKeeper's Prometheus provider turns on the
//!   `/metrics` listener (`httpHost`, `httpPort` 7000).

use std::net::IpAddr;

/// ZooKeeper's Prometheus metrics provider class, the one `className` ferrokeeper serves.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// ZooKeeper's default metrics provider, which exports nothing.
pub const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// `admin.*`: the AdminServer's HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerConfig {
    /// `admin.enableServer` (default true). Java compares the text with `true`, so any
    /// other value turns the server off; ferrokeeper reads it the same way.
    pub enabled: bool,
    /// `admin.serverAddress` (default 0.0.0.0).
    pub address: IpAddr,
    /// `admin.serverPort` (default 8080). 0 asks the kernel for a free port.
    pub port: u16,
    /// `admin.commandURL` (default `/commands`): the path under which commands live.
    pub command_url: String,
    /// `admin.idleTimeout` (default 30000): a connection silent this long is closed.
    pub idle_timeout_ms: u64,
    /// `admin.snapshot.enabled` (default true): whether `snapshot` may run at all.
    pub snapshot_enabled: bool,
    /// `admin.restore.enabled` (default true): whether `restore` may run at all.
    pub restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS` (default 300000): `restore` runs at most once per
    /// interval, `snapshot` once per interval read as *microseconds* (ZooKeeper 3.9
    /// builds that limiter with `TimeUnit.MICROSECONDS`; followed as written).
    pub rate_limiter_interval_ms: u64,
    /// `admin.portUnification` (default false): the port takes HTTPS and plain HTTP
    /// alike, by the first byte (0x16, a TLS handshake record, means HTTPS), as
    /// ZooKeeper's `UnifiedConnectionFactory`.
    pub port_unification: bool,
    /// `admin.forceHttps` (default false): the port speaks HTTPS only. Either this or
    /// `port_unification` makes the AdminServer load the `ssl.quorum.*` stores.
    pub force_https: bool,
    /// `admin.needClientAuth` (ZooKeeper 3.9, default false): HTTPS clients must show a
    /// certificate the `ssl.quorum.trustStore` trusts. 3.8 never asks for one.
    pub need_client_auth: bool,
}

impl AdminServerConfig {
    /// Whether the AdminServer speaks HTTPS (only, or beside HTTP).
    pub fn https(&self) -> bool {
        self.force_https || self.port_unification
    }
}

impl Default for AdminServerConfig {
    fn default() -> Self {
        AdminServerConfig {
            enabled: true,
            address: IpAddr::from([0, 0, 0, 0]),
            port: 8080,
            command_url: "/commands".to_string(),
            idle_timeout_ms: 30_000,
            snapshot_enabled: true,
            restore_enabled: true,
            rate_limiter_interval_ms: 300_000,
            port_unification: false,
            force_https: false,
            need_client_auth: false,
        }
    }
}

/// `metricsProvider.*`: the Prometheus `/metrics` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metricsProvider.className` is ZooKeeper's Prometheus provider.
    pub prometheus: bool,
    /// `metricsProvider.httpHost` (default 0.0.0.0).
    pub host: IpAddr,
    /// `metricsProvider.httpPort` (default 7000).
    pub port: u16,
    /// `metricsProvider.exportJvmInfo` (default true). There is no JVM: read, not used.
    pub export_jvm_info: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            prometheus: false,
            host: IpAddr::from([0, 0, 0, 0]),
            port: 7000,
            export_jvm_info: true,
        }
    }
}

/// The setting names (after the `zookeeper.` prefix of a property) that ZooKeeper reads as
/// system properties, so `-Dzookeeper.admin.serverPort=...` works.
pub const ADMIN_PROPERTIES: &[&str] = &[
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "admin.idleTimeout",
    "admin.snapshot.enabled",
    "admin.restore.enabled",
    "admin.rateLimiterIntervalInMS",
    "admin.portUnification",
    "admin.forceHttps",
    "admin.needClientAuth",
];

/// Applies one `admin.*` or `metricsProvider.*` setting. Returns `Ok(false)` for a name
/// that is none of these (or one ferrokeeper does not use), `Err(reason)` for a value
/// that does not parse.
pub fn apply(
    admin: &mut AdminServerConfig,
    metrics: &mut MetricsConfig,
    name: &str,
    value: &str,
) -> Result<bool, String> {
    let port = |v: &str| {
        v.parse::<u16>()
            .map_err(|_| format!("{v:?} is not a port number (0-65535)"))
    };
    let addr = |v: &str| {
        v.parse::<IpAddr>()
            .map_err(|_| format!("{v:?} is not an IP address"))
    };
    match name {
        // Java compares with "true", so any other text turns the server off.
        "admin.enableServer" => admin.enabled = value == "true",
        "admin.serverAddress" => admin.address = addr(value)?,
        "admin.serverPort" => admin.port = port(value)?,
        "admin.commandURL" => {
            if !value.starts_with('/') {
                return Err(format!("{value:?} must start with /"));
            }
            admin.command_url = value.trim_end_matches('/').to_string();
            if admin.command_url.is_empty() {
                admin.command_url = "/".to_string();
            }
        }
        "admin.idleTimeout" => {
            admin.idle_timeout_ms = value
                .parse::<u64>()
                .map_err(|_| format!("{value:?} is not a number of milliseconds"))?;
        }
        "admin.snapshot.enabled" => admin.snapshot_enabled = value == "true",
        "admin.restore.enabled" => admin.restore_enabled = value == "true",
        "admin.rateLimiterIntervalInMS" => {
            // Integer.parseInt in Java: a negative interval never resets the limiter.
            admin.rate_limiter_interval_ms = value
                .parse::<i32>()
                .map_err(|_| format!("{value:?} is not a number of milliseconds"))?
                .max(0) as u64;
        }
        // `Boolean.getBoolean`: true only for "true", any case.
        "admin.portUnification" => admin.port_unification = value.eq_ignore_ascii_case("true"),
        "admin.forceHttps" => admin.force_https = value.eq_ignore_ascii_case("true"),
        "admin.needClientAuth" => admin.need_client_auth = value.eq_ignore_ascii_case("true"),
        "metricsProvider.className" => {
            // Another provider class cannot be loaded here (there is no JVM): such a
            // setting exports nothing, as the default provider does.
            metrics.prometheus = value == PROMETHEUS_PROVIDER;
            if value != PROMETHEUS_PROVIDER && value != DEFAULT_PROVIDER {
                return Ok(false);
            }
        }
        "metricsProvider.httpHost" => metrics.host = addr(value)?,
        "metricsProvider.httpPort" => metrics.port = port(value)?,
        "metricsProvider.exportJvmInfo" => metrics.export_jvm_info = value == "true",
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zookeepers() {
        let a = AdminServerConfig::default();
        assert!(a.enabled);
        assert_eq!(a.port, 8080);
        assert_eq!(a.command_url, "/commands");
        assert_eq!(a.idle_timeout_ms, 30_000);
        let m = MetricsConfig::default();
        assert!(!m.prometheus);
        assert_eq!(m.port, 7000);
    }

    #[test]
    fn settings_apply() {
        let mut a = AdminServerConfig::default();
        let mut m = MetricsConfig::default();
        assert_eq!(apply(&mut a, &mut m, "admin.enableServer", "yes"), Ok(true));
        assert!(!a.enabled, "only exactly `true` enables, as in Java");
        apply(&mut a, &mut m, "admin.serverPort", "9090").expect("port");
        apply(&mut a, &mut m, "admin.commandURL", "/cmds/").expect("url");
        apply(
            &mut a,
            &mut m,
            "metricsProvider.className",
            PROMETHEUS_PROVIDER,
        )
        .expect("class");
        apply(&mut a, &mut m, "metricsProvider.httpPort", "7001").expect("port");
        assert_eq!((a.port, a.command_url.as_str()), (9090, "/cmds"));
        assert!(m.prometheus);
        assert_eq!(m.port, 7001);
        assert!(apply(&mut a, &mut m, "admin.serverPort", "x").is_err());
        assert_eq!(
            apply(&mut a, &mut m, "metricsProvider.className", "com.Foo"),
            Ok(false)
        );
        assert!(!m.prometheus);
        assert_eq!(
            apply(&mut a, &mut m, "admin.portUnification", "TRUE"),
            Ok(true)
        );
        assert!(a.port_unification && a.https() && !a.force_https);
    }
}
