//! SASL GSSAPI (Kerberos V5, RFC 4752) on the server side, as a ZooKeeper server runs it
//! when its JAAS `Server` section logs in with `Krb5LoginModule`.
//!
//! - [`KerberosLogin`]: the section's options as Java's `Krb5LoginModule` reads them for
//!   an acceptor (`useKeyTab`, `keyTab`, `principal`, `storeKey`). Always compiled, so a
//!   build without the `gssapi` feature can still say precisely what it cannot do.
//! - [`Acceptor`] and [`GssapiServer`] (feature `gssapi`): the acceptor credentials,
//!   acquired once at startup from the keytab, and one connection's exchange.
//!
//! The exchange is what `com.sun.security.sasl.gsskerb.GssKrb5Server` answers:
//! 1. Context tokens go through `gss_accept_sec_context` until the context is
//!    established; the acceptor's last token (the AP-REP of mutual authentication) is
//!    sent, and the client answers it with an empty token.
//! 2. The server then sends the security-layer offer, four bytes wrapped without
//!    confidentiality: a bit mask of the layers it supports and its largest receive
//!    buffer. ZooKeeper creates its SASL server without properties, so the offer is
//!    qop `auth` only (0x01) and 65536 bytes: `01 01 00 00`.
//! 3. The client answers with a wrapped four bytes (its chosen layer and buffer size)
//!    followed by the authorization id it asks for. The server unwraps it; the exchange
//!    is complete and its last answer is a null token.
//!
//! The security layer is written here by hand: it is the four bytes above around
//! `gss_wrap`/`gss_unwrap`. rsasl has a GSSAPI server, but on an older libgssapi and
//! inside its own session framework, which would put two libgssapi versions and a
//! second SASL abstraction beside the hand-written DIGEST-MD5 for these few lines.
//!
//! Blocking: accepting a context reads the keytab (a small local file, normally in the
//! page cache) and never talks to the KDC, so it runs inline on the shard.

use std::path::PathBuf;

use super::jaas::LoginModule;

/// How the server logs in with Kerberos: one `Krb5LoginModule` entry of its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    /// `principal`: whose keys the server accepts tickets for (`zookeeper/host@REALM`),
    /// or `*` for any principal of the keytab (Java's acceptor wildcard).
    pub principal: String,
    /// `keyTab`; `None` means the Kerberos library's default keytab
    /// (`KRB5_KTNAME`, else `/etc/krb5.keytab`), as in Java with `useKeyTab=true` alone.
    pub keytab: Option<PathBuf>,
}

/// Why a `Krb5LoginModule` entry cannot give the server its keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The server's keys can come only from a keytab.
    #[error(
        "useKeyTab=true is required: a server takes its keys from a keytab (Java's login \
         would prompt for a password, which a server cannot answer)"
    )]
    NoKeytab,
    /// Without `storeKey=true` Java's login keeps no keys in the subject, and its
    /// acceptor then refuses every client.
    #[error(
        "storeKey=true is required: without it the server keeps no keys to accept tickets with"
    )]
    NoStoreKey,
    /// No `principal` option: Java's login would prompt for one.
    #[error("principal=\"<service>/<host>@<REALM>\" is required")]
    NoPrincipal,
}

fn option<'a>(module: &'a LoginModule, key: &str) -> Option<&'a str> {
    // Krb5LoginModule reads its options by exact name; the last one given wins, as in
    // a Java Map built from the file.
    module
        .options
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn flag(module: &LoginModule, key: &str) -> bool {
    option(module, key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl KerberosLogin {
    /// Reads the acceptor's login from a `Krb5LoginModule` entry.
    pub fn from_module(module: &LoginModule) -> Result<KerberosLogin, LoginError> {
        if !flag(module, "useKeyTab") {
            return Err(LoginError::NoKeytab);
        }
        if !flag(module, "storeKey") {
            return Err(LoginError::NoStoreKey);
        }
        let principal = option(module, "principal")
            .filter(|p| !p.is_empty())
            .ok_or(LoginError::NoPrincipal)?;
        Ok(KerberosLogin {
            principal: principal.to_string(),
            keytab: option(module, "keyTab").map(PathBuf::from),
        })
    }

    /// Whether a context accepted for `target` (the service principal the client's
    /// ticket names) is one this login accepts: the configured principal, compared
    /// with its realm when it names one.
    pub fn accepts_target(&self, target: &str) -> bool {
        if self.principal == "*" {
            return true;
        }
        if self.principal.contains('@') {
            return target == self.principal;
        }
        target.split_once('@').map_or(target, |(name, _)| name) == self.principal
    }
}

/// The security layers of RFC 4752 §3.3, as bits of the first octet.
pub const LAYER_NONE: u8 = 0x01;
/// The largest buffer Java's GSSAPI server says it receives (`javax.security.sasl.maxbuffer`
/// default), the three octets after the layer mask.
pub const MAX_BUFFER_BYTES: u32 = 65536;

/// The server's security-layer offer before wrapping: `auth` only and 65536 bytes.
pub fn layer_offer() -> [u8; 4] {
    let size = MAX_BUFFER_BYTES.to_be_bytes();
    [LAYER_NONE, size[1], size[2], size[3]]
}

/// The client's unwrapped answer to the offer: its chosen layer and the authorization
/// id it asks for. `Err` says why the answer is refused.
pub fn parse_layer_choice(answer: &[u8]) -> Result<Option<String>, String> {
    let Some((&[chosen, _, _, _], authzid)) = answer.split_first_chunk::<4>() else {
        return Err(format!(
            "the security-layer answer has {} bytes, fewer than 4",
            answer.len()
        ));
    };
    // GssKrb5Server refuses a choice that shares no bit with its offer, and takes any
    // other (ZooKeeper never wraps its traffic whatever was chosen).
    if chosen & LAYER_NONE == 0 {
        return Err(format!(
            "the client chose an unoffered security layer {chosen:#04x}"
        ));
    }
    if authzid.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(authzid).into_owned()))
}

#[cfg(feature = "gssapi")]
pub use acceptor::{Acceptor, GssapiServer};

#[cfg(feature = "gssapi")]
mod acceptor {
    use std::ffi::CString;
    use std::ptr;

    use libgssapi::context::{SecurityContext as _, ServerCtx};
    use libgssapi::credential::Cred;
    use libgssapi::error::{Error as GssError, MajorFlags};
    use libgssapi_sys as sys;

    use super::{layer_offer, parse_layer_choice, KerberosLogin};
    use crate::auth::MechStep;

    /// The server's acceptor credentials, acquired once at startup.
    pub struct Acceptor {
        /// The login they come from.
        pub login: KerberosLogin,
        cred: Cred,
    }

    impl std::fmt::Debug for Acceptor {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Acceptor")
                .field("login", &self.login)
                .finish_non_exhaustive()
        }
    }

    impl Acceptor {
        /// Acquires acceptor credentials from the login's keytab.
        ///
        /// libgssapi has no safe wrapper of `gss_acquire_cred_from`, the one call that
        /// names a keytab for this process alone (the alternative, setting
        /// `KRB5_KTNAME`, changes the environment under running threads), so it is
        /// called through libgssapi-sys. The credentials name no principal: the
        /// acceptor takes any key of the keytab, and [`GssapiServer`] then checks the
        /// ticket's service principal against the login's.
        pub fn acquire(login: KerberosLogin) -> Result<Acceptor, String> {
            let keytab = match &login.keytab {
                Some(path) => {
                    // The library reads a keytab lazily; a missing file would only show
                    // at the first client. Java's login fails at startup: do the same.
                    std::fs::metadata(path)
                        .map_err(|e| format!("keyTab {}: {e}", path.display()))?;
                    Some(
                        CString::new(path.to_string_lossy().as_bytes())
                            .map_err(|_| "keyTab holds a NUL byte".to_string())?,
                    )
                }
                None => None,
            };
            let key = c"keytab";
            let mut elements = keytab
                .as_ref()
                .map(|value| sys::gss_key_value_element_desc {
                    key: key.as_ptr(),
                    value: value.as_ptr(),
                });
            let store = sys::gss_key_value_set_desc {
                count: u32::from(elements.is_some()),
                elements: elements.as_mut().map_or(ptr::null_mut(), |e| {
                    e as *mut sys::gss_key_value_element_desc
                }),
            };
            let mut minor: sys::OM_uint32 = 0;
            let mut cred: sys::gss_cred_id_t = ptr::null_mut();
            // SAFETY: every pointer is valid for the call: `store` and the strings it
            // points to live until the end of this function, the name and mechanism set
            // are the documented "none" values, and `cred` receives a credential the
            // library allocated, whose ownership passes to `Cred::from_c` below.
            let major = unsafe {
                sys::gss_acquire_cred_from(
                    &mut minor,
                    ptr::null_mut(),
                    sys::_GSS_C_INDEFINITE,
                    ptr::null_mut(),
                    sys::GSS_C_ACCEPT as sys::gss_cred_usage_t,
                    &store,
                    &mut cred,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            if major != sys::GSS_S_COMPLETE {
                let e = GssError {
                    major: MajorFlags::from_bits_retain(major),
                    minor,
                };
                return Err(format!("acquiring acceptor credentials: {e}"));
            }
            // SAFETY: the call succeeded, so `cred` is a credential this code owns.
            let cred = unsafe { Cred::from_c(cred) };
            Ok(Acceptor { login, cred })
        }
    }

    enum Stage {
        /// Context tokens until the context is established.
        Accepting,
        /// The AP-REP was sent; the client answers with an empty token.
        AwaitEmpty,
        /// The layer offer was sent; the client answers with its choice.
        AwaitChoice,
        /// Complete or failed: nothing more is accepted.
        Over,
    }

    /// One connection's GSSAPI exchange.
    pub struct GssapiServer {
        ctx: ServerCtx,
        stage: Stage,
        /// The client's principal, once the context is established.
        peer: String,
    }

    impl GssapiServer {
        /// A fresh exchange with the server's credentials.
        pub fn new(acceptor: &Acceptor) -> GssapiServer {
            GssapiServer {
                ctx: ServerCtx::new(Some(acceptor.cred.clone())),
                stage: Stage::Accepting,
                peer: String::new(),
            }
        }

        /// One client token: what to answer, or why the exchange fails.
        pub fn step(&mut self, acceptor: &Acceptor, token: &[u8]) -> Result<MechStep, String> {
            let stage = std::mem::replace(&mut self.stage, Stage::Over);
            match stage {
                Stage::Accepting => {
                    // Java's acceptSecContext refuses an empty token (a defective
                    // token); MIT's mechanism glue would answer it with a token of its
                    // own, so refuse it here (checked against ZooKeeper 3.8 in
                    // tests/gssapi.rs).
                    if token.is_empty() {
                        return Err("an empty context token".to_string());
                    }
                    let out = self
                        .ctx
                        .step(token, None)
                        .map_err(|e| format!("accepting the security context: {e}"))?;
                    if !self.ctx.is_complete() {
                        self.stage = Stage::Accepting;
                        return Ok(MechStep::Challenge(out.map(|b| b.to_vec())));
                    }
                    let target = self
                        .ctx
                        .target_name()
                        .map_err(|e| format!("reading the service principal: {e}"))?
                        .to_string();
                    if !acceptor.login.accepts_target(&target) {
                        return Err(format!(
                            "the client's ticket is for {target}, not {}",
                            acceptor.login.principal
                        ));
                    }
                    self.peer = self
                        .ctx
                        .source_name()
                        .map_err(|e| format!("reading the client principal: {e}"))?
                        .to_string();
                    match out {
                        Some(reply) => {
                            self.stage = Stage::AwaitEmpty;
                            Ok(MechStep::Challenge(Some(reply.to_vec())))
                        }
                        None => self.offer_layers(),
                    }
                }
                Stage::AwaitEmpty => {
                    if !token.is_empty() {
                        return Err(
                            "expected an empty token after the context was established".to_string()
                        );
                    }
                    self.offer_layers()
                }
                Stage::AwaitChoice => {
                    let answer = self
                        .ctx
                        .unwrap(token)
                        .map_err(|e| format!("unwrapping the security-layer answer: {e}"))?;
                    let authzid = parse_layer_choice(&answer)?;
                    Ok(MechStep::Complete {
                        token: None,
                        authentication_id: std::mem::take(&mut self.peer),
                        authzid,
                    })
                }
                Stage::Over => Err("a token after the exchange was over".to_string()),
            }
        }

        fn offer_layers(&mut self) -> Result<MechStep, String> {
            let offer = self
                .ctx
                .wrap(false, &layer_offer())
                .map_err(|e| format!("wrapping the security-layer offer: {e}"))?;
            self.stage = Stage::AwaitChoice;
            Ok(MechStep::Challenge(Some(offer.to_vec())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(options: &[(&str, &str)]) -> LoginModule {
        LoginModule {
            class: "com.sun.security.auth.module.Krb5LoginModule".into(),
            flag: "required".into(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn login_options_as_krb5_login_module_reads_them() {
        let m = module(&[
            ("useKeyTab", "true"),
            ("keyTab", "/etc/zk.keytab"),
            ("storeKey", "TRUE"),
            ("principal", "zookeeper/localhost@EXAMPLE.COM"),
        ]);
        let login = KerberosLogin::from_module(&m).unwrap();
        assert_eq!(login.keytab, Some(PathBuf::from("/etc/zk.keytab")));
        assert!(login.accepts_target("zookeeper/localhost@EXAMPLE.COM"));
        assert!(!login.accepts_target("zookeeper/other@EXAMPLE.COM"));
        assert!(!login.accepts_target("zookeeper/localhost@OTHER.ORG"));
        let m = module(&[
            ("useKeyTab", "true"),
            ("storeKey", "true"),
            ("principal", "zookeeper/localhost"),
        ]);
        let login = KerberosLogin::from_module(&m).unwrap();
        assert_eq!(login.keytab, None);
        assert!(login.accepts_target("zookeeper/localhost@ANY.REALM"));
        assert_eq!(
            KerberosLogin::from_module(&module(&[("storeKey", "true")])),
            Err(LoginError::NoKeytab)
        );
        assert_eq!(
            KerberosLogin::from_module(&module(&[("useKeyTab", "true")])),
            Err(LoginError::NoStoreKey)
        );
        assert_eq!(
            KerberosLogin::from_module(&module(&[("useKeyTab", "true"), ("storeKey", "true")])),
            Err(LoginError::NoPrincipal)
        );
    }

    /// RFC 4752 §3.1: the offer is the layer mask then the buffer size in three octets.
    #[test]
    fn security_layer_offer_and_choice() {
        assert_eq!(layer_offer(), [0x01, 0x01, 0x00, 0x00]);
        assert_eq!(parse_layer_choice(&[1, 0, 0, 0]), Ok(None));
        assert_eq!(
            parse_layer_choice(b"\x01\x00\xff\xffclient@EXAMPLE.COM"),
            Ok(Some("client@EXAMPLE.COM".to_string()))
        );
        // Java takes any choice that shares a bit with its offer.
        assert_eq!(parse_layer_choice(&[7, 0, 0, 0]), Ok(None));
        assert!(parse_layer_choice(&[4, 0, 0, 0]).is_err());
        assert!(parse_layer_choice(&[1, 0]).is_err());
    }
}
