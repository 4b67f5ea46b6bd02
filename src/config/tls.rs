//! The TLS settings of the client ports: `secureClientPort`, `client.portUnification`,
//! `client.certReload`, the `ssl.*` keys and `X509AuthenticationProvider.superUser`.
//!
//! ZooKeeper reads the `ssl.*`, `client.*` and `X509AuthenticationProvider.*` settings as
//! system properties named `zookeeper.<key>` (`ClientX509Util`, `X509Util`): a `zoo.cfg`
//! key it does not know becomes such a property (`QuorumPeerConfig.parseProperties`), so
//! both `ssl.clientAuth=want` in `zoo.cfg` and `-Dzookeeper.ssl.clientAuth=want` set it.
//! `secureClientPort` and `secureClientPortAddress` are `zoo.cfg` keys only. The settings
//! are only collected here; `crate::tls` opens the stores when the server starts, so a
//! wrong password stops the start with an error naming the key.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{At, ConfigError};

/// `ssl.clientAuth` (`X509Util.ClientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    None,
    /// Ask; a client without one is served without an x509 id.
    Want,
    /// Ask and refuse a client without one: ZooKeeper's default.
    #[default]
    Need,
}

/// One store as configured: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreSpec {
    /// The config key prefix, for messages (`ssl.keyStore`).
    pub key: &'static str,
    /// `.location`.
    pub location: Option<PathBuf>,
    /// `.password`.
    pub password: Option<String>,
    /// `.passwordPath`: a file holding the password (it wins over `.password`).
    pub password_path: Option<PathBuf>,
    /// `.type`: JKS, PKCS12 or PEM, any case.
    pub store_type: Option<String>,
}

impl std::fmt::Debug for StoreSpec {
    // The password stays out of logs and `conf`-style dumps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSpec")
            .field("key", &self.key)
            .field("location", &self.location)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("password_path", &self.password_path)
            .field("store_type", &self.store_type)
            .finish()
    }
}

/// The TLS settings. `secure_client_port == None` and `!port_unification` means no TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `secureClientPort`: a port that speaks only TLS.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`: its address (default: `clientPortAddress`, else all).
    pub secure_client_port_address: Option<IpAddr>,
    /// `client.portUnification`: `clientPort` accepts TLS too (first byte 0x16).
    pub port_unification: bool,
    /// `client.certReload`: reread the stores when their files change.
    pub cert_reload: bool,
    /// `ssl.keyStore.*`.
    pub key_store: StoreSpec,
    /// `ssl.trustStore.*`.
    pub trust_store: StoreSpec,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (default TLSv1.3).
    pub protocol: Option<String>,
    /// `ssl.enabledProtocols`, comma-separated Java names.
    pub enabled_protocols: Option<Vec<String>>,
    /// `ssl.ciphersuites`, comma-separated Java (IANA) names.
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.handshakeDetectionTimeoutMillis`: how long a unified port waits for a first
    /// byte, and (ferrokeeper) how long a TLS handshake may take.
    pub handshake_timeout_ms: u64,
    /// `X509AuthenticationProvider.superUser`: the DN that gets `super`.
    pub x509_super_user: Option<String>,
}

/// `ssl.handshakeDetectionTimeoutMillis`'s default in `X509Util`.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 5000;

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            secure_client_port: None,
            secure_client_port_address: None,
            port_unification: false,
            cert_reload: false,
            key_store: StoreSpec {
                key: "ssl.keyStore",
                ..Default::default()
            },
            trust_store: StoreSpec {
                key: "ssl.trustStore",
                ..Default::default()
            },
            client_auth: ClientAuth::Need,
            protocol: None,
            enabled_protocols: None,
            cipher_suites: None,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            x509_super_user: None,
        }
    }
}

impl TlsSettings {
    /// Whether any client connection may be TLS (and so `authProvider.x509` is
    /// registered, as `QuorumPeerConfig.configureSSLAuth` does for a secure port).
    pub fn enabled(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }
}

impl TlsSettings {
    /// The `ssl.quorum.*` settings before any key is read: ZooKeeper's quorum stores,
    /// which its AdminServer's HTTPS uses (`JettyAdminServer` with `QuorumX509Util`).
    pub fn quorum() -> TlsSettings {
        TlsSettings {
            key_store: StoreSpec {
                key: "ssl.quorum.keyStore",
                ..Default::default()
            },
            trust_store: StoreSpec {
                key: "ssl.quorum.trustStore",
                ..Default::default()
            },
            ..TlsSettings::default()
        }
    }
}

/// Whether `name` (a setting name, without `zookeeper.`) is one of the TLS system
/// properties ZooKeeper reads as `zookeeper.<name>` (`ssl.quorum.*` included).
pub(super) fn is_tls_property(name: &str) -> bool {
    name.starts_with("ssl.")
        || name == "client.portUnification"
        || name == "client.certReload"
        || name == "X509AuthenticationProvider.superUser"
}

/// A value that is empty or blank counts as unset, as `X509Util` trims and ignores it.
fn opt(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn list(value: &str) -> Option<Vec<String>> {
    let items: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!items.is_empty()).then_some(items)
}

/// Applies `name` if it is one of the `ssl.quorum.*` keys the AdminServer's HTTPS reads
/// (ZooKeeper 3.9's `JettyAdminServer`: the two stores, `enabledProtocols` and
/// `ciphersuites`; 3.8 reads the stores only). `Ok(false)` for any other name: the
/// other `ssl.quorum.*` keys are for TLS between members, which ferrokeeper lacks.
pub(super) fn apply_quorum(
    quorum: &mut TlsSettings,
    name: &str,
    at: &At<'_>,
) -> Result<bool, ConfigError> {
    let Some(rest) = name.strip_prefix("ssl.quorum.") else {
        return Ok(false);
    };
    let value = at.value;
    match rest {
        "enabledProtocols" => quorum.enabled_protocols = list(value),
        "ciphersuites" => quorum.cipher_suites = list(value),
        _ => return Ok(apply_store(quorum, rest, value)),
    }
    Ok(true)
}

/// Applies `keyStore.<field>` or `trustStore.<field>` (the part after `ssl.` or
/// `ssl.quorum.`); false when `name` is neither.
fn apply_store(tls: &mut TlsSettings, name: &str, value: &str) -> bool {
    let Some((store, field)) = name
        .strip_prefix("keyStore.")
        .map(|f| (&mut tls.key_store, f))
        .or_else(|| {
            name.strip_prefix("trustStore.")
                .map(|f| (&mut tls.trust_store, f))
        })
    else {
        return false;
    };
    match field {
        "location" => store.location = opt(value).map(PathBuf::from),
        "password" => store.password = Some(value.to_string()),
        "passwordPath" => store.password_path = opt(value).map(PathBuf::from),
        "type" => store.store_type = opt(value),
        _ => return false,
    }
    true
}

/// Applies `name` if it is a TLS setting of the client ports; `Ok(false)` when it is
/// not one.
pub(super) fn apply(tls: &mut TlsSettings, name: &str, at: &At<'_>) -> Result<bool, ConfigError> {
    let value = at.value;
    match name {
        "secureClientPort" => {
            let port = at.int()?;
            let port = u16::try_from(port)
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| at.invalid("port must be between 1 and 65535"))?;
            tls.secure_client_port = Some(port);
        }
        "secureClientPortAddress" => {
            let literal = value.trim_start_matches('[').trim_end_matches(']');
            let ip = literal
                .parse::<IpAddr>()
                .map_err(|_| at.invalid("must be an IP address"))?;
            tls.secure_client_port_address = Some(ip);
        }
        // `Boolean.getBoolean`: true only for "true", any case.
        "client.portUnification" => tls.port_unification = value.eq_ignore_ascii_case("true"),
        "client.certReload" => tls.cert_reload = value.eq_ignore_ascii_case("true"),
        "ssl.clientAuth" => {
            tls.client_auth = match value.trim().to_ascii_uppercase().as_str() {
                // `ClientAuth.fromPropertyValue`: unset or empty is NEED.
                "" | "NEED" => ClientAuth::Need,
                "WANT" => ClientAuth::Want,
                "NONE" => ClientAuth::None,
                _ => return Err(at.invalid("choose none, want or need")),
            }
        }
        "ssl.protocol" => tls.protocol = opt(value),
        "ssl.enabledProtocols" => tls.enabled_protocols = list(value),
        "ssl.ciphersuites" => tls.cipher_suites = list(value),
        "ssl.handshakeDetectionTimeoutMillis" => {
            tls.handshake_timeout_ms = u64::from(at.int_at_least(1)?);
        }
        "X509AuthenticationProvider.superUser" => tls.x509_super_user = opt(value),
        _ => {
            return Ok(name
                .strip_prefix("ssl.")
                .is_some_and(|rest| apply_store(tls, rest, value)));
        }
    }
    Ok(true)
}
