//! SASL authentication and enforced authentication, as a ZooKeeper 3.9 server does them
//! (ZOOKEEPER-SECURITY-OPS.md §1).
//!
//! - [`digest_md5`]: the DIGEST-MD5 server mechanism, a sans-IO state machine.
//! - [`gssapi`]: the GSSAPI (Kerberos) server mechanism, behind the `gssapi` feature;
//!   its JAAS options are read in every build so that one without the feature can say
//!   what it lacks.
//! - [`jaas`]: the JAAS file the users and passwords come from.
//! - [`kerberos_name`]: how an authenticated name becomes the id of the `sasl` scheme.
//! - This module: [`Security`], every SASL and enforcement setting read once at
//!   startup, and [`SaslConn`], one connection's exchange (what `ZooKeeperServer.processSasl`
//!   does with a token).
//!
//! The ACL side (the `sasl` scheme's matching and validation) lives in
//! [`crate::core::acl`], which gets what it needs through [`crate::core::acl::SaslAcl`].
//! Must never: block (the JAAS file is read once, before the shards start), or accept a
//! client whose exchange failed unless `zookeeper.allowSaslFailedClients` says so.

pub mod digest_md5;
pub mod gssapi;
pub mod jaas;
pub mod kerberos_name;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::records::Id;

use crate::config::Config;
use crate::core::acl::SaslAcl;
use digest_md5::{DigestMd5Server, Step};
use kerberos_name::IdRules;

/// The class name `authProvider.N` registers the `sasl` scheme with.
pub const SASL_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
/// The JAAS section a server reads by default (`zookeeper.sasl.serverconfig` renames it).
pub const DEFAULT_JAAS_SECTION: &str = "Server";

/// Why the SASL settings cannot be used: the server does not start, as Java's does not.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The JAAS file cannot be read.
    #[error(
        "cannot read the JAAS configuration {path} (java.security.auth.login.config): {source}"
    )]
    ReadJaas {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JAAS file does not parse.
    #[error("{path}: {source}")]
    ParseJaas {
        /// The file.
        path: PathBuf,
        /// Why.
        source: jaas::JaasError,
    },
    /// `zookeeper.security.auth_to_local` does not parse.
    #[error(transparent)]
    Rules(#[from] kerberos_name::RuleError),
    /// The server's JAAS section logs in with Kerberos: a Java server would then offer
    /// GSSAPI only, which this build cannot (it lacks the `gssapi` feature).
    #[error(
        "{path}: section {section} uses {class}: SASL GSSAPI (Kerberos) needs a ferrokeeper \
         built with the `gssapi` feature (cargo build --release --features gssapi), which \
         this one is not; without it only DIGEST-MD5 (user_<name>=\"<password>\" options) \
         is supported"
    )]
    Gssapi {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// The Kerberos login module.
        class: String,
    },
    /// The section's `Krb5LoginModule` options cannot give the server its keys.
    #[error("{path}: section {section}: {source}")]
    KerberosLogin {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// What is wrong.
        source: gssapi::LoginError,
    },
    /// The Kerberos library could not give the acceptor credentials of the login.
    #[error("{path}: section {section}: {reason}")]
    KerberosCredentials {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// The library's reason.
        reason: String,
    },
    /// Enforcement names no scheme, or one without a provider
    /// (`AuthenticationHelper.validateConfiguredProperties`).
    #[error("{0}")]
    Enforcement(String),
}

/// Every SASL and enforcement setting, read once at startup.
#[derive(Debug, Default)]
pub struct Security {
    /// The DIGEST-MD5 users and passwords, when the JAAS file has the server's section:
    /// without it a SASL request is answered with an empty success, as by a Java server
    /// without a login.
    pub digest_users: Option<BTreeMap<String, String>>,
    /// The GSSAPI acceptor, when the server's section logs in with Kerberos (then a
    /// client can only use GSSAPI, as with Java's `SecurityUtils.createSaslServer`).
    #[cfg(feature = "gssapi")]
    pub gssapi: Option<Arc<gssapi::Acceptor>>,
    /// How an authenticated name becomes the `sasl` id.
    pub id_rules: IdRules,
    /// `zookeeper.superUser` and every `zookeeper.superUser.<suffix>`: these `sasl` ids
    /// get `super:` too.
    pub super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_failed_clients: bool,
    /// `zookeeper.sessionRequireClientSASLAuth`.
    pub require_sasl: bool,
    /// The enforced schemes (`enforce.auth.enabled` with `enforce.auth.schemes`, or
    /// `sasl` under `sessionRequireClientSASLAuth`); empty when nothing is enforced.
    pub enforced_schemes: Vec<String>,
    /// The `sasl` ACL scheme, when `authProvider.N` registers it.
    pub sasl_acl: Option<Arc<SaslAcl>>,
}

/// A Java system property as a ZooKeeper server sees it: a `zoo.cfg` key `<k>` (or
/// `zookeeper.<k>`) stands for the property `zookeeper.<k>` and wins over `-D`.
fn property(config: &Config, name: &str) -> Option<String> {
    if let Some(bare) = name.strip_prefix("zookeeper.") {
        if let Some((_, v)) = config
            .raw
            .iter()
            .rev()
            .find(|(k, _)| k == bare || k == name)
        {
            return Some(v.clone());
        }
    }
    config.system_properties.get(name).map(str::to_string)
}

/// Every property (zoo.cfg stand-ins included) whose name starts with `prefix`, each
/// name once with its winning value.
fn properties_with_prefix(config: &Config, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in config.system_properties.iter() {
        if p.name.starts_with(prefix) {
            out.insert(p.name.clone(), p.value.clone());
        }
    }
    for (k, v) in &config.raw {
        let name = if k.starts_with("zookeeper.") {
            k.clone()
        } else {
            format!("zookeeper.{k}")
        };
        if name.starts_with(prefix) {
            out.insert(name, v.clone());
        }
    }
    out
}

/// Java's `Boolean.parseBoolean`: true only for `true`, in any case.
fn java_bool(v: Option<String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The Kerberos default realm: `java.security.krb5.realm`, else `default_realm` of the
/// krb5 configuration (`$KRB5_CONFIG` or `/etc/krb5.conf`), else "" (Java's fallback).
fn default_realm(config: &Config) -> String {
    if let Some(r) = property(config, "java.security.krb5.realm") {
        return r;
    }
    let path = property(config, "java.security.krb5.conf")
        .or_else(|| std::env::var("KRB5_CONFIG").ok())
        .unwrap_or_else(|| "/etc/krb5.conf".to_string());
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("default_realm"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .map(|v| v.trim().to_string())
        .next()
        .unwrap_or_default()
}

impl Security {
    /// Reads the settings from the configuration and its system properties, and the
    /// JAAS file they name.
    pub fn from_config(config: &Config) -> Result<Security, SecurityError> {
        let mut s = Security {
            id_rules: IdRules {
                rules: match property(config, "zookeeper.security.auth_to_local") {
                    Some(text) => kerberos_name::parse_rules(&text)?,
                    None => vec![kerberos_name::Rule::Default],
                },
                default_realm: default_realm(config),
                remove_host: java_bool(property(
                    config,
                    "zookeeper.kerberos.removeHostFromPrincipal",
                )),
                remove_realm: java_bool(property(
                    config,
                    "zookeeper.kerberos.removeRealmFromPrincipal",
                )),
            },
            allow_failed_clients: java_bool(property(config, "zookeeper.allowSaslFailedClients")),
            require_sasl: java_bool(property(config, "zookeeper.sessionRequireClientSASLAuth")),
            ..Security::default()
        };
        for (name, value) in properties_with_prefix(config, "zookeeper.superUser") {
            let suffix = &name["zookeeper.superUser".len()..];
            if (suffix.is_empty() || suffix.starts_with('.')) && !value.is_empty() {
                s.super_users.push(value);
            }
        }
        let registered = properties_with_prefix(config, "zookeeper.authProvider.")
            .values()
            .any(|class| class.trim() == SASL_PROVIDER_CLASS);
        if registered {
            s.sasl_acl = Some(Arc::new(SaslAcl {
                let_any_user_do_x: property(config, "zookeeper.letAnySaslUserDoX"),
            }));
        }
        match load_login(config)? {
            Login::None => {}
            Login::Digest(users) => s.digest_users = Some(users),
            #[cfg(feature = "gssapi")]
            Login::Kerberos(acceptor) => s.gssapi = Some(Arc::new(acceptor)),
        }
        s.enforced_schemes = enforced_schemes(config, s.require_sasl, registered)?;
        Ok(s)
    }

    /// Whether a SASL exchange can authenticate anyone here.
    pub fn sasl_enabled(&self) -> bool {
        #[cfg(feature = "gssapi")]
        if self.gssapi.is_some() {
            return true;
        }
        self.digest_users.is_some()
    }

    /// Whether a connection holding `ids` may send ordinary requests
    /// (`AuthenticationHelper.enforceAuthentication`).
    pub fn allows<'a>(&self, mut ids: impl Iterator<Item = &'a Id>) -> bool {
        self.enforced_schemes.is_empty() || ids.any(|id| self.enforced_schemes.contains(&id.scheme))
    }

    /// The error a connection gets when its exchange fails and it is closed: -124 when
    /// SASL is required, else AuthFailed. `None` when it may stay
    /// (`allowSaslFailedClients`, and SASL not required).
    pub fn failure_error(&self) -> Option<ErrorCode> {
        if self.require_sasl {
            Some(ErrorCode::SessionClosedRequireSaslAuth)
        } else if self.allow_failed_clients {
            None
        } else {
            Some(ErrorCode::AuthFailed)
        }
    }
}

/// How the server's JAAS section logs in.
enum Login {
    /// No JAAS file, or no section for the server.
    None,
    /// DIGEST-MD5 with these users and passwords.
    Digest(BTreeMap<String, String>),
    /// Kerberos: GSSAPI only.
    #[cfg(feature = "gssapi")]
    Kerberos(gssapi::Acceptor),
}

fn load_login(config: &Config) -> Result<Login, SecurityError> {
    let Some(path) = property(config, "java.security.auth.login.config") else {
        return Ok(Login::None);
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|source| SecurityError::ReadJaas {
        path: path.clone(),
        source,
    })?;
    let file = jaas::JaasFile::parse(&text).map_err(|source| SecurityError::ParseJaas {
        path: path.clone(),
        source,
    })?;
    let section = property(config, "zookeeper.sasl.serverconfig")
        .unwrap_or_else(|| DEFAULT_JAAS_SECTION.to_string());
    let Some(modules) = file.section(&section) else {
        // Java starts without a SASL login here, silently; say it at least.
        tracing::warn!(
            path = %path.display(), %section,
            "the JAAS file has no section for the server: SASL clients are not authenticated"
        );
        return Ok(Login::None);
    };
    // SecurityUtils.createSaslServer: a Kerberos principal in the login subject means
    // GSSAPI only. Without the feature, starting with DIGEST-MD5 instead would accept
    // other clients than the Java server would, so refuse to start.
    if let Some(m) = modules
        .iter()
        .find(|m| m.class.ends_with("Krb5LoginModule"))
    {
        let login = gssapi::KerberosLogin::from_module(m).map_err(|source| {
            SecurityError::KerberosLogin {
                path: path.clone(),
                section: section.clone(),
                source,
            }
        })?;
        #[cfg(feature = "gssapi")]
        {
            let acceptor = gssapi::Acceptor::acquire(login).map_err(|reason| {
                SecurityError::KerberosCredentials {
                    path,
                    section,
                    reason,
                }
            })?;
            tracing::info!(principal = %acceptor.login.principal, "SASL GSSAPI acceptor ready");
            return Ok(Login::Kerberos(acceptor));
        }
        #[cfg(not(feature = "gssapi"))]
        {
            let _ = login;
            return Err(SecurityError::Gssapi {
                path,
                section,
                class: m.class.clone(),
            });
        }
    }
    let mut users = jaas::digest_credentials(modules);
    // SaslServerCallbackHandler: superPassword replaces the password of a `super` user
    // the file declares (a file without `user_super` still has no `super`).
    if let Some(pw) = property(config, "zookeeper.SASLAuthenticationProvider.superPassword") {
        if let Some(p) = users.get_mut("super") {
            *p = pw;
        }
    }
    Ok(Login::Digest(users))
}

fn enforced_schemes(
    config: &Config,
    require_sasl: bool,
    sasl_registered: bool,
) -> Result<Vec<String>, SecurityError> {
    let schemes: Vec<String> = if require_sasl {
        vec!["sasl".to_string()]
    } else if java_bool(property(config, "zookeeper.enforce.auth.enabled")) {
        property(config, "zookeeper.enforce.auth.schemes")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        return Ok(Vec::new());
    };
    if schemes.is_empty() {
        return Err(SecurityError::Enforcement(
            "zookeeper.enforce.auth.enabled is true: zookeeper.enforce.auth.schemes must be configured"
                .into(),
        ));
    }
    for s in &schemes {
        let provided = matches!(s.as_str(), "digest" | "ip") || (s == "sasl" && sasl_registered);
        if !provided {
            return Err(SecurityError::Enforcement(format!(
                "authentication scheme {s} is enforced but not available (register its \
                 provider with authProvider.N)"
            )));
        }
    }
    Ok(schemes)
}

/// What the connection does after a SASL token.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Answer Ok with this token (`None`: a null token).
    Reply(Option<Vec<u8>>),
    /// Answer Ok with this token and add these ids to the connection.
    Authenticated {
        /// The final token (`None`: a null token, GSSAPI's last answer).
        token: Option<Vec<u8>>,
        /// `sasl:<id>`, then `super:` for a `zookeeper.superUser`.
        ids: Vec<Id>,
    },
    /// Answer this error with a null token, then close the connection.
    Fail(ErrorCode),
}

/// What a mechanism answers to one client token.
#[derive(Debug, PartialEq, Eq)]
pub enum MechStep {
    /// Send this token (`None`: a null token); the exchange goes on.
    Challenge(Option<Vec<u8>>),
    /// Send this token; the client is authenticated.
    Complete {
        /// The last token (`None`: a null token).
        token: Option<Vec<u8>>,
        /// Who the client proved to be: a DIGEST-MD5 user or a Kerberos principal.
        authentication_id: String,
        /// The authorization id the client asked for, if any.
        authzid: Option<String>,
    },
}

enum Mech {
    Digest(DigestMd5Server),
    #[cfg(feature = "gssapi")]
    Gssapi(gssapi::GssapiServer),
}

/// One connection's SASL exchange.
pub struct SaslConn {
    mech: Mech,
}

impl SaslConn {
    /// A fresh DIGEST-MD5 exchange challenging with `nonce`.
    pub fn new(nonce: String) -> Self {
        SaslConn {
            mech: Mech::Digest(DigestMd5Server::new(nonce)),
        }
    }

    /// A fresh exchange with the mechanism the server's login offers.
    pub fn start(security: &Security) -> Self {
        #[cfg(feature = "gssapi")]
        if let Some(acceptor) = &security.gssapi {
            return SaslConn {
                mech: Mech::Gssapi(gssapi::GssapiServer::new(acceptor)),
            };
        }
        let _ = security;
        SaslConn::new(SaslConn::random_nonce())
    }

    /// A fresh nonce: 30 random bytes in base64, 40 characters like Java's.
    pub fn random_nonce() -> String {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; 30];
        rand::rng().fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// `ZooKeeperServer.processSasl` for one client token.
    pub fn evaluate(&mut self, security: &Security, token: &[u8], peer: &str) -> SaslOutcome {
        if !security.sasl_enabled() {
            return SaslOutcome::Reply(None);
        }
        let failed = |why: &dyn std::fmt::Display| {
            tracing::warn!(client = peer, "client failed to SASL authenticate: {why}");
            match security.failure_error() {
                Some(err) => SaslOutcome::Fail(err),
                None => {
                    tracing::warn!(
                        "keeping the connection despite the failure (allowSaslFailedClients)"
                    );
                    SaslOutcome::Reply(None)
                }
            }
        };
        let step = match &mut self.mech {
            Mech::Digest(mech) => {
                let users = security.digest_users.as_ref();
                mech.step(token, |user| users.and_then(|u| u.get(user)).cloned())
                    .map(|step| match step {
                        Step::Challenge(c) => MechStep::Challenge(Some(c)),
                        Step::Complete {
                            token,
                            authentication_id,
                            authzid,
                        } => MechStep::Complete {
                            token: Some(token),
                            authentication_id,
                            authzid,
                        },
                    })
                    .map_err(|e| e.to_string())
            }
            #[cfg(feature = "gssapi")]
            Mech::Gssapi(mech) => match &security.gssapi {
                Some(acceptor) => mech.step(acceptor, token),
                None => Err("no GSSAPI login".to_string()),
            },
        };
        match step {
            Ok(MechStep::Challenge(c)) => SaslOutcome::Reply(c),
            Ok(MechStep::Complete {
                token,
                authentication_id,
                authzid,
            }) => {
                let Some(id) = security
                    .id_rules
                    .derive(&authentication_id, authzid.as_deref())
                else {
                    return failed(&format_args!("malformed name {authentication_id:?}"));
                };
                tracing::info!(client = peer, id, "SASL authenticated");
                let mut ids = vec![Id {
                    scheme: "sasl".into(),
                    id: id.clone(),
                }];
                if security.super_users.contains(&id) {
                    ids.push(Id {
                        scheme: "super".into(),
                        id: String::new(),
                    });
                }
                SaslOutcome::Authenticated { token, ids }
            }
            Err(e) => failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemProperties;

    fn config(cfg: &str, flags: &[&str]) -> Config {
        let props = SystemProperties::from_lookup(|_| None, flags.iter().copied());
        Config::parse_with(&format!("dataDir=/tmp/x\nclientPort=2181\n{cfg}"), &props)
            .expect("config")
            .0
    }

    #[test]
    fn settings_come_from_properties_and_zoo_cfg() {
        let dir = std::env::temp_dir().join(format!("fk-sasl-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jaas = dir.join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required \
             user_super=\"s\" user_bob=\"b\"; };",
        )
        .unwrap();
        let login = format!("-Djava.security.auth.login.config={}", jaas.display());
        let c = config(
            &format!("authProvider.1={SASL_PROVIDER_CLASS}\nsuperUser=bob\n"),
            &[
                &login,
                "-Dzookeeper.SASLAuthenticationProvider.superPassword=top",
                "-Dzookeeper.superUser.ops=carol",
                "-Dzookeeper.superUserX=nobody",
                "-Dzookeeper.sessionRequireClientSASLAuth=true",
            ],
        );
        let s = Security::from_config(&c).unwrap();
        let users = s.digest_users.as_ref().unwrap();
        assert_eq!(users.get("super").map(String::as_str), Some("top"));
        assert_eq!(users.get("bob").map(String::as_str), Some("b"));
        assert_eq!(s.super_users, vec!["bob".to_string(), "carol".to_string()]);
        assert!(s.sasl_acl.is_some() && s.require_sasl);
        assert_eq!(s.enforced_schemes, vec!["sasl".to_string()]);
        assert_eq!(
            s.failure_error(),
            Some(ErrorCode::SessionClosedRequireSaslAuth)
        );

        // Requiring SASL without the provider fails, as in Java.
        let c = config("", &["-Dzookeeper.sessionRequireClientSASLAuth=true"]);
        assert!(matches!(
            Security::from_config(&c),
            Err(SecurityError::Enforcement(_))
        ));
        let c = config("enforce.auth.enabled=true\n", &[]);
        assert!(matches!(
            Security::from_config(&c),
            Err(SecurityError::Enforcement(_))
        ));
        let c = config(
            "enforce.auth.enabled=true\nenforce.auth.schemes=digest, ip\n",
            &[],
        );
        assert_eq!(
            Security::from_config(&c).unwrap().enforced_schemes,
            ["digest", "ip"]
        );
        let c = config("", &["-Djava.security.auth.login.config=/nonexistent/jaas"]);
        assert!(matches!(
            Security::from_config(&c),
            Err(SecurityError::ReadJaas { .. })
        ));
        std::fs::write(
            &jaas,
            "Server { com.sun.security.auth.module.Krb5LoginModule required \
             useKeyTab=true storeKey=true keyTab=\"/k\" principal=\"zookeeper/h@R\"; };",
        )
        .unwrap();
        let c = config("", &[&login]);
        // Without the feature the server refuses to start, naming it; with it, the
        // missing keytab stops it.
        #[cfg(not(feature = "gssapi"))]
        assert!(matches!(
            Security::from_config(&c),
            Err(SecurityError::Gssapi { .. })
        ));
        #[cfg(feature = "gssapi")]
        assert!(matches!(
            Security::from_config(&c),
            Err(SecurityError::KerberosCredentials { .. })
        ));
        std::fs::write(
            &jaas,
            "Server { com.sun.security.auth.module.Krb5LoginModule required \
             useKeyTab=true keyTab=\"/k\" principal=\"zookeeper/h@R\"; };",
        )
        .unwrap();
        assert!(matches!(
            Security::from_config(&config("", &[&login])),
            Err(SecurityError::KerberosLogin { .. })
        ));
        let s = Security::from_config(&config("allowSaslFailedClients=true\n", &[])).unwrap();
        assert!(!s.sasl_enabled() && s.failure_error().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exchange_adds_sasl_and_super_ids() {
        let s = Security {
            digest_users: Some([("jaasuser".to_string(), "jaas_password".to_string())].into()),
            super_users: vec!["jaasuser".into()],
            ..Security::default()
        };
        let nonce = "WGClc7T1JR+LbKdCknLY9uc0VFDGT1/T89GCqKUH";
        let mut c = SaslConn::new(nonce.into());
        assert!(matches!(
            c.evaluate(&s, b"", "t"),
            SaslOutcome::Reply(Some(_))
        ));
        let response = format!(
            "qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"{nonce}\",\
             cnonce=\"3511867546966293\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",\
             response=383f36b80bd7b422c45c31f6eed1c78f"
        );
        match c.evaluate(&s, response.as_bytes(), "t") {
            SaslOutcome::Authenticated { ids, .. } => {
                assert_eq!(ids[0].scheme, "sasl");
                assert_eq!(ids[0].id, "jaasuser");
                assert_eq!(ids[1].scheme, "super");
            }
            other => panic!("{other:?}"),
        }
        let mut c = SaslConn::new(nonce.into());
        assert!(matches!(
            c.evaluate(&s, b"", "t"),
            SaslOutcome::Reply(Some(_))
        ));
        assert_eq!(
            c.evaluate(&s, b"garbage\xff", "t"),
            SaslOutcome::Fail(ErrorCode::AuthFailed)
        );
        assert_eq!(SaslConn::random_nonce().len(), 40);
        assert_eq!(
            SaslConn::new("n".into()).evaluate(&Security::default(), b"", "t"),
            SaslOutcome::Reply(None)
        );
    }
}
