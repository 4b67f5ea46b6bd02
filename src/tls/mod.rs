//! TLS for client connections: the secure client port (`secureClientPort`) and TLS on a
//! unified plain port (`client.portUnification`), as ZooKeeper's
//! `NettyServerCnxnFactory` serves them, with rustls (ring backend) over glommio sockets.
//!
//! This module owns the server side of the handshake's configuration: the stores
//! ([`stores`], JKS/PKCS12/PEM), the client certificate checks ([`verify`], which also
//! accepts X.509 v1 certificates as Java does), the Java names of protocols and cipher
//! suites, reloading the stores when their files change (`client.certReload`), and the
//! `x509` identity of a client ([`dn`]). It never touches a socket: `shard::secure` does
//! the handshake and hands the stream to the connection code.
//!
//! Cost per connection: a rustls `ServerConnection` keeps its record buffers (about
//! 16 KiB each way once traffic has flowed, released as they drain) and the session
//! keys, some 30–40 KiB per TLS connection more than a plain one while busy.

pub mod dn;
mod jks;
pub mod stores;
mod verify;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ferrokeeper_net::records::Id;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::tls::{ClientAuth, TlsSettings};

/// The `x509` ACL scheme (`X509AuthenticationProvider`).
pub const X509: &str = "x509";

/// How long a TLS handshake may take before the connection is dropped: Netty's
/// `SslHandler` default, which ZooKeeper's Netty factory keeps.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up. Each names the configuration key to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    /// A store could not be opened or read.
    #[error("{key}: {reason}")]
    Store {
        /// The key (`ssl.keyStore.password`, ...).
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting cannot be honoured.
    #[error("{key}: {reason}")]
    Setting {
        /// The key (`ssl.ciphersuites`, ...).
        key: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// The rustls configuration in force, and the file times it was built from.
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
}

/// The TLS side of the server, shared by every shard.
pub struct TlsServer {
    settings: TlsSettings,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("settings", &self.settings)
            .finish()
    }
}

impl TlsServer {
    /// Opens the stores and builds the handshake configuration: any error here stops the
    /// server's start, naming the key to fix.
    pub fn new(settings: &TlsSettings) -> Result<TlsServer, TlsError> {
        let config = build_config(settings)?;
        Ok(TlsServer {
            current: RwLock::new(Loaded {
                config: Arc::new(config),
                stamps: stamps(settings),
            }),
            settings: settings.clone(),
        })
    }

    /// The configuration for the next handshake. With `client.certReload`, a store file
    /// that changed since the last build is read again first; a store that no longer
    /// opens keeps the previous configuration in force (and says so in the log).
    pub fn config(&self) -> Arc<ServerConfig> {
        if self.settings.cert_reload {
            let now = stamps(&self.settings);
            let changed = self
                .current
                .read()
                .map(|c| c.stamps != now)
                .unwrap_or(false);
            if changed {
                match build_config(&self.settings) {
                    Ok(config) => {
                        tracing::info!("TLS stores changed on disk; reloaded");
                        if let Ok(mut c) = self.current.write() {
                            *c = Loaded {
                                config: Arc::new(config),
                                stamps: now,
                            };
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS stores changed but do not load; keeping the previous ones");
                        if let Ok(mut c) = self.current.write() {
                            c.stamps = now;
                        }
                    }
                }
            }
        }
        match self.current.read() {
            Ok(c) => c.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        }
    }

    /// How long a unified port waits for a client's first byte.
    pub fn detection_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.handshake_timeout_ms)
    }

    /// The ids a client's certificate gives it (`X509AuthenticationProvider`):
    /// `x509:<subject DN>` and, when the DN is `X509AuthenticationProvider.superUser`,
    /// `super:<DN>`. None without a certificate (clientAuth none, or want and none sent).
    pub fn client_ids(
        &self,
        peer_certificates: Option<&[rustls::pki_types::CertificateDer<'_>]>,
    ) -> Vec<Id> {
        if self.settings.client_auth == ClientAuth::None {
            return Vec::new();
        }
        let Some(leaf) = peer_certificates.and_then(|c| c.first()) else {
            return Vec::new();
        };
        let Ok((_, cert)) =
            <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<
                '_,
                _,
            >>::from_der(leaf)
        else {
            return Vec::new();
        };
        let subject = dn::rfc2253(cert.subject());
        let mut ids = Vec::with_capacity(2);
        if self.settings.x509_super_user.as_deref() == Some(subject.as_str()) {
            ids.push(Id {
                scheme: crate::core::acl::SUPER.to_string(),
                id: subject.clone(),
            });
        }
        ids.push(Id {
            scheme: X509.to_string(),
            id: subject,
        });
        ids
    }
}

/// Modification times of the store files, to notice a change (`client.certReload`).
fn stamps(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    let files: [Option<&PathBuf>; 4] = [
        settings.key_store.location.as_ref(),
        settings.key_store.password_path.as_ref(),
        settings.trust_store.location.as_ref(),
        settings.trust_store.password_path.as_ref(),
    ];
    files
        .iter()
        .map(|f| f.and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()))
        .collect()
}

/// The protocol versions: `ssl.enabledProtocols`, else what `ssl.protocol` implies
/// (TLSv1.3 and TLSv1.2 for the default TLSv1.3, as ZooKeeper 3.9). Versions rustls does
/// not implement (TLSv1, TLSv1.1, SSLv3) are left out with a warning.
fn protocol_versions(
    settings: &TlsSettings,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let protocol = settings.protocol.as_deref().unwrap_or("TLSv1.3");
    let (key, names): (&'static str, Vec<String>) = match &settings.enabled_protocols {
        Some(list) => ("ssl.enabledProtocols", list.clone()),
        None => match protocol {
            "TLSv1.3" | "TLS" => ("ssl.protocol", vec!["TLSv1.3".into(), "TLSv1.2".into()]),
            other => ("ssl.protocol", vec![other.to_string()]),
        },
    };
    let mut versions = Vec::new();
    for name in &names {
        match name.as_str() {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => tracing::warn!(
                key,
                protocol = other,
                "TLS protocol not supported by ferrokeeper; left out"
            ),
        }
    }
    if versions.is_empty() {
        return Err(TlsError::Setting {
            key,
            reason: format!("none of {names:?} is supported (TLSv1.2, TLSv1.3)"),
        });
    }
    Ok(versions)
}

/// The ring provider, its cipher suites cut to `ssl.ciphersuites` when set. Java names
/// are the IANA names (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`);
/// rustls spells the TLS 1.3 ones `TLS13_…`. Names rustls does not implement are left
/// out with a warning, as long as one remains.
fn provider(settings: &TlsSettings) -> Result<rustls::crypto::CryptoProvider, TlsError> {
    // rustls deprecates its ring provider for lacking post-quantum key exchange; ring is
    // kept because aws-lc-rs needs a C/CMake build this project avoids.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &settings.cipher_suites {
        let java_name = |s: &rustls::SupportedCipherSuite| {
            let name = format!("{:?}", s.suite());
            match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name,
            }
        };
        let mut chosen = Vec::new();
        for name in wanted {
            match provider
                .cipher_suites
                .iter()
                .find(|s| java_name(s) == *name)
            {
                Some(s) => chosen.push(*s),
                None => {
                    tracing::warn!(suite = %name, "ssl.ciphersuites: not supported by ferrokeeper; left out")
                }
            }
        }
        if chosen.is_empty() {
            return Err(TlsError::Setting {
                key: "ssl.ciphersuites",
                reason: format!("none of {wanted:?} is supported"),
            });
        }
        provider.cipher_suites = chosen;
    }
    Ok(provider)
}

/// Builds the rustls server configuration from the settings and the stores.
fn build_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let (chain, key) = stores::load_key_store(&settings.key_store)?;
    let provider = Arc::new(provider(settings)?);
    let versions = protocol_versions(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Setting {
            key: "ssl.ciphersuites",
            reason: format!("no cipher suite for the enabled protocols: {e}"),
        })?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let anchors = stores::load_trust_store(&settings.trust_store)?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(anchors.iter().cloned());
            if added == 0 {
                return Err(TlsError::Store {
                    key: "ssl.trustStore.location".into(),
                    reason: "no certificate in the truststore can be a trust anchor".into(),
                });
            }
            let mut webpki =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if auth == ClientAuth::Want {
                webpki = webpki.allow_unauthenticated();
            }
            let webpki = webpki.build().map_err(|e| TlsError::Setting {
                key: "ssl.trustStore.location",
                reason: format!("cannot verify clients with it: {e}"),
            })?;
            builder.with_client_cert_verifier(Arc::new(verify::ClientVerifier {
                webpki,
                anchors,
                mandatory: auth == ClientAuth::Need,
                algorithms: provider.signature_verification_algorithms,
            }))
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Store {
            key: format!("{}.location", settings.key_store.key),
            reason: format!("its key and certificate cannot serve TLS: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_protocol_names() {
        let mut s = TlsSettings::default();
        assert_eq!(protocol_versions(&s).map(|v| v.len()), Ok(2));
        s.protocol = Some("TLSv1.2".into());
        assert_eq!(protocol_versions(&s).map(|v| v.len()), Ok(1));
        s.enabled_protocols = Some(vec!["TLSv1.1".into()]);
        assert!(matches!(
            protocol_versions(&s),
            Err(TlsError::Setting {
                key: "ssl.enabledProtocols",
                ..
            })
        ));
    }

    #[test]
    fn java_cipher_suite_names() {
        let s = TlsSettings {
            cipher_suites: Some(vec![
                "TLS_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_RSA_WITH_NULL_SHA".into(),
            ]),
            ..Default::default()
        };
        let p = provider(&s).expect("two of three are supported");
        assert_eq!(p.cipher_suites.len(), 2);
        let none = TlsSettings {
            cipher_suites: Some(vec!["TLS_RSA_WITH_NULL_SHA".into()]),
            ..Default::default()
        };
        assert!(provider(&none).is_err());
    }
}
