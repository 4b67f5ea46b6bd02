//! Identities and ACL checks, as ZooKeeper 3.9 performs them.
//!
//! Sources: `server/ZooKeeperServer.java` (`checkACL`, the auth packet in
//! `processPacket`), `server/PrepRequestProcessor.java` (`fixupACL`, the per-operation
//! checks), `server/FinalRequestProcessor.java` (the read-side checks, getACL's
//! redaction), `server/auth/DigestAuthenticationProvider.java`,
//! `server/auth/IPAuthenticationProvider.java`, `server/auth/ProviderRegistry.java`,
//! `server/ServerCnxn.java` / `NIOServerCnxn.java` (a session's `authInfo`, watch
//! delivery filtered by READ since 3.9.2).
//!
//! # Authentication providers
//!
//! A stock ZooKeeper registers exactly two providers: `ip` and `digest`
//! (`ProviderRegistry.initialize`); `sasl`, `x509`, `key`, `ensemble` exist only when a
//! `zookeeper.authProvider.*` property loads them. This module implements those two,
//! and `sasl` when its provider is registered ([`SaslAcl`], carried by the session's
//! [`AuthIds`]); every other scheme behaves as in a stock server: addAuth fails
//! (AuthFailed), an ACL naming it is refused by create/setACL (InvalidACL), and an ACL
//! entry naming it (say, imported from a Java server that had x509) never matches.
//! The `sasl` ids themselves come from a SASL exchange (`crate::auth`), never from an
//! auth packet.
//!
//! `world` and `auth` are not providers: `world:anyone` is special-cased by `checkACL`
//! and `fixupACL`, `auth` is expanded by `fixupACL`. addAuth with either answers
//! AuthFailed, like any unknown scheme. A super-user is a session holding the id
//! `super:` (empty id), added by a digest auth that matches `superDigest`.
//!
//! All functions are pure: no IO, no clock, no globals. Configuration (`superDigest`,
//! `skipACL`) is passed in.

// Address values only (`core::net`), never sockets: the core does no IO.
use ::core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use ferrokeeper_net::codes::{perms, ErrorCode, OpCode};
use ferrokeeper_net::records::{Acl, ClientInfo, Id};
use sha1::{Digest as _, Sha1};

/// Scheme of the built-in "everyone" identity.
pub const WORLD: &str = "world";
/// The only id of [`WORLD`].
pub const ANYONE: &str = "anyone";
/// Pseudo-scheme expanded by [`fixup_acl`] to the session's authenticated ids.
pub const AUTH: &str = "auth";
/// The digest provider's scheme.
pub const DIGEST: &str = "digest";
/// The ip provider's scheme.
pub const IP: &str = "ip";
/// Scheme of ids from a SASL exchange.
pub const SASL: &str = "sasl";
/// Scheme of the super-user id (`Id("super", "")`).
pub const SUPER: &str = "super";
/// The x509 provider's scheme: a TLS client's certificate subject DN (RFC 2253).
pub const X509: &str = "x509";

/// The authentication providers registered beyond `ip` and `digest`: ZooKeeper loads
/// them from `zookeeper.authProvider.*`, and registers `x509` by itself when a secure
/// client port is configured (`QuorumPeerConfig.configureSSLAuth`). An ACL naming a
/// scheme with no provider is InvalidACL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `X509AuthenticationProvider`.
    pub x509: bool,
}

/// `user:base64(sha1("user:password"))`, as `DigestAuthenticationProvider.generateDigest`:
/// the user is the text before the first `:` (all of it when there is none) and the
/// hash covers the whole input, UTF-8 encoded. This is also the form `superDigest` is
/// configured in.
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash);
    let mut s = String::with_capacity(user.len() + 1 + b64.len());
    s.push_str(user);
    s.push(':');
    s.push_str(&b64);
    s
}

/// The id the `ip` scheme gives a client: `InetAddress.getHostAddress()` of the peer.
/// IPv4 is dotted decimal; an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, as a dual-stack
/// listener sees IPv4 clients) is reported as IPv4, as Java does; other IPv6 is Java's
/// uncompressed lowercase form (`0:0:0:0:0:0:0:1`) with `%scope` when the socket
/// address has a scope id.
pub fn ip_id(peer: &SocketAddr) -> String {
    match peer {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => {
            if let Some(v4) = a.ip().to_ipv4_mapped() {
                return v4.to_string();
            }
            let mut s = String::with_capacity(39);
            for (i, seg) in a.ip().segments().iter().enumerate() {
                if i > 0 {
                    s.push(':');
                }
                s.push_str(&format!("{seg:x}"));
            }
            if a.scope_id() != 0 {
                s.push_str(&format!("%{}", a.scope_id()));
            }
            s
        }
    }
}

/// A session's identities: ZooKeeper's `ServerCnxn.authInfo`.
///
/// Always holds `ip:<peer address>` (added when the connection is accepted), then one
/// `digest:user:hash` per distinct successful digest auth, and `super:` once a digest
/// auth matched `superDigest`. Duplicates are ignored (ZooKeeper keeps a set).
/// ZooKeeper's set iterates in hash order; this keeps insertion order, which only shows
/// in whoAmI's list order and in the order `auth` ACLs expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthIds {
    // Invariant: ids[0] is the ip id; no duplicates; is_super == ids contain super:"".
    ids: Vec<Id>,
    is_super: bool,
    /// The `sasl` scheme's provider, when the server registers it. It travels with the
    /// session's ids so that every ACL check and fixup sees it without a server-wide
    /// setting; a session decoded from an ensemble peer's forwarded write has `None`.
    sasl: Option<Arc<SaslAcl>>,
}

/// The `sasl` scheme's provider settings (`SASLAuthenticationProvider`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAcl {
    /// `zookeeper.letAnySaslUserDoX`: an ACL entry `sasl:<this>` matches every session
    /// holding a `sasl` id.
    pub let_any_user_do_x: Option<String>,
}

impl AuthIds {
    /// The identities of a fresh connection from `peer`: just its ip id.
    pub fn new(peer: &SocketAddr) -> Self {
        Self::from_ip_id(ip_id(peer))
    }

    /// Like [`AuthIds::new`], from an already formatted ip id.
    pub fn from_ip_id(ip: String) -> Self {
        AuthIds {
            ids: vec![Id {
                scheme: IP.to_owned(),
                id: ip,
            }],
            is_super: false,
            sasl: None,
        }
    }

    /// Registers the `sasl` scheme's provider for this session (see [`SaslAcl`]).
    pub fn with_sasl_acl(mut self, sasl: Option<Arc<SaslAcl>>) -> Self {
        self.sasl = sasl;
        self
    }

    /// All ids, the ip id first.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// Whether the session holds `super:` and so passes every ACL check.
    pub fn is_super(&self) -> bool {
        self.is_super
    }

    /// Adds an id unless present (`ServerCnxn.addAuthInfo`).
    pub fn add(&mut self, id: Id) {
        if self.ids.contains(&id) {
            return;
        }
        if id.scheme == SUPER {
            self.is_super = true;
        }
        self.ids.push(id);
    }

    /// Handles an auth packet (`AuthPacket{type, scheme, auth}`, xid −4) for this
    /// session. On `Err(AuthFailed)` ZooKeeper replies AuthFailed and then closes the
    /// connection; the caller must do the same.
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: &[u8],
        super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        let ip = self.ids[0].id.clone();
        for id in authenticate(scheme, auth, &ip, super_digest)? {
            self.add(id);
        }
        Ok(())
    }

    /// The whoAmI answer (`AuthUtil.getClientInfos`): per id, its scheme and the
    /// provider's user name — for ip the address, for digest the user (text before the
    /// first `:`), for schemes without a provider (`super`) the empty string.
    pub fn client_infos(&self) -> Vec<ClientInfo> {
        self.ids
            .iter()
            .map(|id| ClientInfo {
                auth_scheme: id.scheme.clone(),
                user: match id.scheme.as_str() {
                    IP => id.id.clone(),
                    DIGEST => id.id.split(':').next().unwrap_or("").to_owned(),
                    SASL if self.sasl.is_some() => id.id.clone(),
                    X509 => id.id.clone(),
                    _ => String::new(),
                },
            })
            .collect()
    }
}

/// What an auth packet yields (`AuthenticationProvider.handleAuthentication`), given the
/// session's ip id:
/// - `digest`: never fails. The bytes are read as UTF-8 (invalid sequences become
///   U+FFFD, as Java's `new String(bytes)` does), digested with [`digest`], and yield
///   `digest:<that>`, preceded by `super:` when it equals `super_digest` exactly.
/// - `ip`: ignores the bytes and yields the connection's own ip id (so it adds nothing).
/// - anything else, including `world`, `auth`, `super`, `sasl`: `Err(AuthFailed)`
///   (no provider registered).
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    ip_id: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, ErrorCode> {
    match scheme {
        DIGEST => {
            let text = String::from_utf8_lossy(auth);
            let d = digest(&text);
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(d.as_str()) {
                ids.push(Id {
                    scheme: SUPER.to_owned(),
                    id: String::new(),
                });
            }
            ids.push(Id {
                scheme: DIGEST.to_owned(),
                id: d,
            });
            Ok(ids)
        }
        IP => Ok(vec![Id {
            scheme: IP.to_owned(),
            id: ip_id.to_owned(),
        }]),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// `ZooKeeperServer.checkACL`: may a session holding `ids` do something needing any of
/// the bits in `perm` on a node whose ACL is `acl`?
///
/// In order: `skip_acl` allows; an empty ACL allows; a super session allows; otherwise
/// some entry must grant a bit of `perm` (`entry.perms & perm != 0`, so a request for
/// READ|ADMIN is satisfied by either) to `world:anyone`, or to an id of the session of
/// the same scheme that the scheme's provider matches: `digest` by exact string
/// equality, `ip` by address and optional `/bits` prefix (IPv4 and IPv6, see
/// [`ip_matches`]). Entries of other schemes never match.
pub fn check(acl: &[Acl], perm: i32, ids: &AuthIds, skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() || ids.is_super {
        return true;
    }
    acl.iter().any(|entry| {
        if entry.perms & perm == 0 {
            return false;
        }
        let want = &entry.id;
        if want.scheme == WORLD && want.id == ANYONE {
            return true;
        }
        let matches: &dyn Fn(&str, &str) -> bool = match want.scheme.as_str() {
            // x509 ids are only ever added by a TLS handshake, so a session holding one
            // implies the provider is registered.
            DIGEST | X509 => &|have, want| have == want,
            IP => &ip_matches,
            // SASLAuthenticationProvider.matches.
            SASL => match &ids.sasl {
                Some(sasl) => &|have: &str, want: &str| {
                    have == "super"
                        || have == want
                        || sasl.let_any_user_do_x.as_deref() == Some(want)
                },
                None => return false,
            },
            _ => return false,
        };
        ids.ids
            .iter()
            .any(|have| have.scheme == want.scheme && matches(&have.id, &want.id))
    })
}

/// `PrepRequestProcessor.fixupACL`: validates and expands the ACL of a create or
/// setACL.
///
/// 1. Exact duplicates (same perms, scheme and id) are dropped, first one kept
///    (ZOOKEEPER-1877). An empty list (a null jute vector decodes to empty) → InvalidACL.
/// 2. Each entry, in order:
///    - `world:anyone` is kept; `world` with any other id → InvalidACL.
///    - `auth:<anything>` is replaced, with its perms, by every id of the session whose
///      provider says `isAuthenticated()`: digest ids, and sasl ids when the `sasl`
///      provider is registered (ip is not; `super:` has no provider and is skipped).
///      None → InvalidACL. The entry's own id is ignored, and
///      the expansion is not deduplicated again (`auth:` and `auth:x` both expand).
///    - `digest:<id>` is kept when `<id>` splits on `:` into exactly two parts after
///      Java drops trailing empty parts (`user:hash`; `:hash` passes, `user:` does not).
///    - `ip:<addr>[/bits]` is kept when the address parses and bits is within range.
///    - `sasl:<id>` is kept when the provider is registered and `<id>` is a valid
///      Kerberos name.
///    - any other scheme → InvalidACL.
///
/// Perms are not validated (ZooKeeper does not; a perms of 0 is stored as is).
pub fn fixup_acl(acl: &[Acl], ids: &AuthIds) -> Result<Vec<Acl>, ErrorCode> {
    fixup_acl_with(acl, ids, Providers::default())
}

/// [`fixup_acl`] with more providers registered: with `x509`, an `x509:<DN>` entry is
/// valid when the DN is empty or has an `=` (a loose form of `new X500Principal(dn)`),
/// and `auth` expands to the session's x509 ids too (`isAuthenticated()` is true).
pub fn fixup_acl_with(
    acl: &[Acl],
    ids: &AuthIds,
    providers: Providers,
) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == WORLD && id.id == ANYONE {
            out.push(a.clone());
        } else if id.scheme == AUTH {
            let mut any = false;
            for have in &ids.ids {
                // Providers: digest, sasl and x509 are authenticated, ip is not; others
                // have none here.
                if have.scheme == DIGEST
                    || (have.scheme == SASL && ids.sasl.is_some())
                    || (providers.x509 && have.scheme == X509)
                {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: have.clone(),
                    });
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            let valid = match id.scheme.as_str() {
                DIGEST => digest_id_valid(&id.id),
                IP => ip_id_valid(&id.id),
                SASL => ids.sasl.is_some() && kerberos_name_valid(&id.id),
                X509 if providers.x509 => id.id.is_empty() || id.id.contains('='),
                _ => false,
            };
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":").length == 2`, where Java's
/// split drops trailing empty strings.
fn digest_id_valid(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// `SASLAuthenticationProvider.isValid`: the id parses as a `KerberosName`, i.e. it has
/// no `@`, or it is `service[/host]@realm` with one `@` and at most one `/`, before it.
fn kerberos_name_valid(id: &str) -> bool {
    match id.split_once('@') {
        None => true,
        Some((left, realm)) => !realm.contains(['@', '/']) && left.matches('/').count() <= 1,
    }
}

/// `IPAuthenticationProvider.isValid`.
fn ip_id_valid(id: &str) -> bool {
    let (addr, bits) = split_once_or_all(id, '/');
    let Some(addr) = addr_to_bytes(addr) else {
        return false;
    };
    match bits {
        None => true,
        Some(b) => {
            matches!(java_parse_int(b, 10), Some(n) if n >= 0 && n as usize <= addr.len() * 8)
        }
    }
}

/// `IPAuthenticationProvider.matches(id, aclExpr)`: `acl_expr` is `addr` or
/// `addr/bits`; both addresses are masked to `bits` and compared. Mixed families never
/// match; an unparsable address or prefix never matches. Parsing follows the Java
/// provider of 3.9.5, quirks included: a part containing `:` is IPv6 (`::` compression
/// allowed, no embedded IPv4, no `%scope`), otherwise one containing `.` is IPv4 (each
/// part an `Integer.parseInt` in 0..=255, so `+1` and `01` are accepted).
///
/// IPv6 ACLs exist since 3.9.4 (ZOOKEEPER-4240); older servers, Debian's 3.8.0
/// included, refuse `ip:::1` with InvalidACL.
pub fn ip_matches(id: &str, acl_expr: &str) -> bool {
    let (addr, bits) = split_once_or_all(acl_expr, '/');
    let Some(mut acl_addr) = addr_to_bytes(addr) else {
        return false;
    };
    let width = acl_addr.len() * 8;
    let bits = match bits {
        None => width,
        Some(b) => match java_parse_int(b, 10) {
            Some(n) if n >= 0 && n as usize <= width => n as usize,
            _ => return false,
        },
    };
    mask(&mut acl_addr, bits);
    let Some(mut remote) = addr_to_bytes(id) else {
        return false;
    };
    mask(&mut remote, bits);
    remote == acl_addr
}

fn split_once_or_all(s: &str, sep: char) -> (&str, Option<&str>) {
    match s.split_once(sep) {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// Keeps the first `bits` bits, zeroes the rest.
fn mask(b: &mut [u8], bits: usize) {
    let start = bits / 8;
    let keep = bits % 8;
    if start < b.len() {
        b[start] &= !(0xffu8.checked_shr(keep as u32).unwrap_or(0));
        for x in &mut b[start + 1..] {
            *x = 0;
        }
    }
}

/// `IPAuthenticationProvider.addr2Bytes`: IPv6 if the text has a `:`, else IPv4 if it
/// has a `.`, else nothing.
fn addr_to_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        parse_v6(addr).map(|a| a.to_vec())
    } else if addr.contains('.') {
        parse_v4(addr).map(|a| a.to_vec())
    } else {
        None
    }
}

fn parse_v4(addr: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in addr.split('.') {
        if n == 4 {
            return None;
        }
        let v = java_parse_int(part, 10)?;
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// `IPAuthenticationProvider.parseV6addr` (3.9.5).
fn parse_v6(addr: &str) -> Option<[u8; 16]> {
    let parts: Vec<&str> = addr.split("::").collect();
    let (head, tail): (Vec<&str>, Vec<&str>) = match parts.as_slice() {
        [full] => {
            let segs: Vec<&str> = full.split(':').collect();
            if segs.len() != 8 {
                return None;
            }
            (segs, Vec::new())
        }
        [a, b] => {
            let head = if a.is_empty() {
                Vec::new()
            } else {
                a.split(':').collect()
            };
            let tail = if b.is_empty() {
                Vec::new()
            } else {
                b.split(':').collect()
            };
            if head.len() + tail.len() >= 8 {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut out = [0u8; 16];
    let mut put = |at: usize, segs: &[&str]| -> Option<()> {
        for (k, seg) in segs.iter().enumerate() {
            // Java checks String.length(), in UTF-16 units.
            if seg.is_empty() || seg.encode_utf16().count() > 4 {
                return None;
            }
            let v = java_parse_int(seg, 16)?;
            out[at + 2 * k] = (v >> 8) as u8;
            out[at + 2 * k + 1] = v as u8;
        }
        Some(())
    };
    put(0, &head)?;
    put(16 - 2 * tail.len(), &tail)?;
    Some(out)
}

/// `Integer.parseInt(s, radix)` for ASCII input: optional `+`/`-`, at least one digit,
/// no overflow. (Java also accepts non-ASCII Unicode digits; nobody writes those in an
/// ACL, and refusing them only turns a match into a non-match.)
fn java_parse_int(s: &str, radix: u32) -> Option<i32> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.chars() {
        v = v * i64::from(radix) + i64::from(c.to_digit(radix)?);
        if v > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// Whether an [`IpAddr`] is matched by an `ip` ACL expression (convenience for callers
/// holding a parsed address).
pub fn ip_addr_matches(ip: IpAddr, acl_expr: &str) -> bool {
    ip_matches(&ip_id(&SocketAddr::new(ip, 0)), acl_expr)
}

/// The node whose ACL an operation checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The node named by the request.
    Node,
    /// The parent of the node named by the request.
    Parent,
    /// `/zookeeper/config` (reconfig).
    ConfigNode,
}

/// The ACL check ZooKeeper 3.9 makes for an operation: which node's ACL, and the
/// permission bits of which any one suffices. `None`: no ACL check at all.
///
/// | op | node | perm | notes |
/// |---|---|---|---|
/// | create, create2, createTTL, createContainer | parent | CREATE | after the `/`+NUL precheck and [`fixup_acl`]; a missing parent answers NoNode first; NodeExists is decided *after* the check |
/// | delete | parent | DELETE | a missing parent answers NoNode; a missing node under a parent without DELETE answers **NoAuth** |
/// | setData | node | WRITE | |
/// | setACL | node | ADMIN | [`fixup_acl`] (InvalidACL) is checked before the node lookup and ACL |
/// | check (in multi) | node | READ | |
/// | reconfig | `/zookeeper/config` | WRITE | only when reconfig is enabled; skipped with skipACL |
/// | exists | node | READ | only if the node exists (3.9.2+, ZOOKEEPER-2590); a missing node answers NoNode and still leaves the watch |
/// | getData, getChildren, getChildren2, getAllChildrenNumber | node | READ | NoNode first; no watch is left when the check fails |
/// | multiRead | node | READ | per sub-op (getData/getChildren), failures become per-op error results |
/// | getACL | node | READ \| ADMIN | either bit suffices; without ADMIN the digest ids are redacted ([`redact_for_get_acl`]) (3.8+, ZOOKEEPER-1392) |
/// | sync, getEphemerals, whoAmI, ping | — | — | |
/// | addWatch, setWatches, setWatches2, checkWatches, removeWatches | — | — | events are filtered at delivery by READ on the changed node instead ([`crate::core::watch`]) |
/// | auth, sasl, createSession, closeSession, deleteContainer | — | — | deleteContainer is server-internal |
/// | multi | per sub-op | | |
pub fn required_perm(op: OpCode) -> Option<(Target, i32)> {
    use OpCode::*;
    match op {
        Create | Create2 | CreateTtl | CreateContainer => Some((Target::Parent, perms::CREATE)),
        Delete => Some((Target::Parent, perms::DELETE)),
        SetData => Some((Target::Node, perms::WRITE)),
        SetAcl => Some((Target::Node, perms::ADMIN)),
        Check => Some((Target::Node, perms::READ)),
        Reconfig => Some((Target::ConfigNode, perms::WRITE)),
        Exists | GetData | GetChildren | GetChildren2 | GetAllChildrenNumber => {
            Some((Target::Node, perms::READ))
        }
        GetAcl => Some((Target::Node, perms::READ | perms::ADMIN)),
        Notification | Sync | Ping | Multi | MultiRead | CheckWatches | RemoveWatches
        | DeleteContainer | Auth | SetWatches | Sasl | GetEphemerals | SetWatches2 | AddWatch
        | WhoAmI | CreateSession | CloseSession | Error => None,
    }
}

/// The ACL getACL returns to a session that passed READ but not ADMIN
/// (`FinalRequestProcessor`): every `digest` id has everything from its first `:` up
/// to the end of the line replaced by `:x` (Java's `replaceAll(":.*", ":x")`, where
/// `.` stops at line terminators), so `user:hash` reads `user:x`. Other schemes are
/// returned unchanged.
pub fn redact_for_get_acl(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme != DIGEST {
                return a.clone();
            }
            Acl {
                perms: a.perms,
                id: Id {
                    scheme: a.id.scheme.clone(),
                    id: redact(&a.id.id),
                },
            }
        })
        .collect()
}

fn redact(id: &str) -> String {
    let is_terminator = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let mut out = String::with_capacity(id.len());
    let mut rest = id;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..i]);
        out.push_str(":x");
        let after = &rest[i + 1..];
        let end = after.find(is_terminator).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }
    fn session(ip: &str) -> AuthIds {
        AuthIds::from_ip_id(ip.into())
    }

    /// `SASLAuthenticationProvider`: matches, isValid, isAuthenticated (auth expansion)
    /// and getUserName (whoAmI); without the provider the scheme does nothing.
    #[test]
    fn sasl_scheme() {
        let provider = Some(Arc::new(SaslAcl::default()));
        let mut bob = session("10.0.0.5").with_sasl_acl(provider.clone());
        bob.add(id("sasl", "bob"));
        let bob_acl = [acl(perms::READ, "sasl", "bob")];
        assert!(check(&bob_acl, perms::READ, &bob, false));
        assert!(!check(
            &[acl(perms::READ, "sasl", "carol")],
            perms::READ,
            &bob,
            false
        ));
        let mut sup = session("10.0.0.5").with_sasl_acl(provider.clone());
        sup.add(id("sasl", "super"));
        assert!(check(
            &[acl(perms::READ, "sasl", "carol")],
            perms::READ,
            &sup,
            false
        ));
        assert!(!sup.is_super());
        let mut any = session("10.0.0.5").with_sasl_acl(Some(Arc::new(SaslAcl {
            let_any_user_do_x: Some("anyone-sasl".into()),
        })));
        any.add(id("sasl", "dave"));
        assert!(check(
            &[acl(perms::READ, "sasl", "anyone-sasl")],
            perms::READ,
            &any,
            false
        ));
        // Without a registered provider, a sasl id matches nothing.
        let mut unregistered = session("10.0.0.5");
        unregistered.add(id("sasl", "bob"));
        assert!(!check(&bob_acl, perms::READ, &unregistered, false));

        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "auth", "")], &bob),
            Ok(vec![acl(perms::ALL, "sasl", "bob")])
        );
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "auth", "")], &unregistered),
            Err(ErrorCode::InvalidAcl)
        );
        let anon = session("10.0.0.5").with_sasl_acl(provider);
        for ok in ["bob", "zk/host@EXAMPLE.COM", "client@EXAMPLE.COM", "@"] {
            assert!(
                fixup_acl(&[acl(perms::ALL, "sasl", ok)], &anon).is_ok(),
                "{ok}"
            );
        }
        for bad in ["a@b@c", "a/b/c@R", "a@R/x"] {
            assert_eq!(
                fixup_acl(&[acl(perms::ALL, "sasl", bad)], &anon),
                Err(ErrorCode::InvalidAcl)
            );
        }
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "sasl", "bob")], &session("1.2.3.4")),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            bob.client_infos()[1],
            ClientInfo {
                auth_scheme: "sasl".into(),
                user: "bob".into()
            }
        );
        assert_eq!(unregistered.client_infos()[1].user, "");
        // An auth packet cannot claim a sasl id.
        assert_eq!(
            bob.add_auth("sasl", b"bob", None),
            Err(ErrorCode::AuthFailed)
        );
    }

    // zookeeperProgrammers.md "Built in ACL Schemes": digest is
    // username:base64(SHA1(username:password)). Expected values printed by
    // `java org.apache.zookeeper.server.auth.DigestAuthenticationProvider <args>`
    // (ZooKeeper 3.8.0 jar).
    #[test]
    fn digest_known_values() {
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
        // No colon: the user is the whole string.
        assert_eq!(digest("alone"), "alone:GwXWN/BAnMmbTdC1Aj5CHFLZt2Q=");
        // Only the first colon splits; the hash covers everything.
        assert_eq!(digest("a:b:c"), "a:cLzgnoJ6mP5qz3w+mwvPE2vDgu0=");
        assert_eq!(digest(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    }

    #[test]
    fn ip_ids_like_java_get_host_address() {
        let v4: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert_eq!(ip_id(&v4), "10.1.2.3");
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(ip_id(&v6), "0:0:0:0:0:0:0:1");
        let mapped: SocketAddr = "[::ffff:192.168.0.9]:1".parse().unwrap();
        assert_eq!(ip_id(&mapped), "192.168.0.9");
        let scoped = SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse::<Ipv6Addr>().unwrap(),
            1,
            0,
            3,
        ));
        assert_eq!(ip_id(&scoped), "fe80:0:0:0:0:0:0:1%3");
        assert_eq!(AuthIds::new(&v4).ids(), &[id("ip", "10.1.2.3")]);
    }

    // ZooKeeperServer.processPacket (auth) + DigestAuthenticationProvider.
    #[test]
    fn add_auth() {
        let sup = digest("super:test");
        let mut s = session("127.0.0.1");
        assert_eq!(s.add_auth("digest", b"bob:pw", Some(&sup)), Ok(()));
        assert!(!s.is_super());
        assert_eq!(s.ids()[1], id("digest", &digest("bob:pw")));
        // Same credentials twice: a set, no duplicate.
        s.add_auth("digest", b"bob:pw", Some(&sup)).unwrap();
        assert_eq!(s.ids().len(), 2);
        // A digest matching superDigest adds super: as well.
        s.add_auth("digest", b"super:test", Some(&sup)).unwrap();
        assert!(s.is_super());
        assert!(s.ids().contains(&id("super", "")));
        assert!(s.ids().contains(&id("digest", &sup)));
        // ip: accepted, adds the connection's own address (already there).
        let before = s.ids().len();
        s.add_auth("ip", b"10.0.0.1", None).unwrap();
        assert_eq!(s.ids().len(), before);
        // No provider: AuthFailed.
        for scheme in ["world", "auth", "super", "sasl", "x509", "", "DIGEST"] {
            assert_eq!(
                s.add_auth(scheme, b"x", None),
                Err(ErrorCode::AuthFailed),
                "{scheme}"
            );
        }
        // Digest never fails, even without a colon or with invalid UTF-8.
        let mut t = session("127.0.0.1");
        t.add_auth("digest", b"nocolon", None).unwrap();
        t.add_auth("digest", &[0xff, b':', b'p'], None).unwrap();
        assert_eq!(t.ids()[2], id("digest", &digest("\u{fffd}:p")));
    }

    // ZOOKEEPER-3969 whoAmI: AuthUtil.getClientInfos.
    #[test]
    fn who_am_i() {
        let sup = digest("super:test");
        let mut s = session("127.0.0.1");
        s.add_auth("digest", b"super:test", Some(&sup)).unwrap();
        let infos: Vec<(String, String)> = s
            .client_infos()
            .into_iter()
            .map(|c| (c.auth_scheme, c.user))
            .collect();
        assert_eq!(
            infos,
            [
                ("ip".into(), "127.0.0.1".into()),
                ("super".into(), "".into()),
                ("digest".into(), "super".into())
            ]
        );
    }

    // ZooKeeperServer.checkACL.
    #[test]
    fn check_basics() {
        let anon = session("10.0.0.5");
        let mut bob = session("10.0.0.5");
        bob.add_auth("digest", b"bob:pw", None).unwrap();
        let bob_acl = acl(perms::ALL, "digest", &digest("bob:pw"));
        // Empty ACL allows everything.
        assert!(check(&[], perms::ADMIN, &anon, false));
        // world:anyone with the right bit.
        assert!(check(
            &[acl(perms::READ, "world", "anyone")],
            perms::READ,
            &anon,
            false
        ));
        assert!(!check(
            &[acl(perms::READ, "world", "anyone")],
            perms::WRITE,
            &anon,
            false
        ));
        // world with another id is not "anyone".
        assert!(!check(
            &[acl(perms::ALL, "world", "someone")],
            perms::READ,
            &anon,
            false
        ));
        // Digest: exact match only.
        assert!(check(
            std::slice::from_ref(&bob_acl),
            perms::DELETE,
            &bob,
            false
        ));
        assert!(!check(
            std::slice::from_ref(&bob_acl),
            perms::DELETE,
            &anon,
            false
        ));
        assert!(!check(
            &[acl(perms::ALL, "digest", "bob:x")],
            perms::READ,
            &bob,
            false
        ));
        // Any bit of a multi-bit request suffices (getACL asks READ|ADMIN).
        assert!(check(
            &[acl(perms::ADMIN, "world", "anyone")],
            perms::READ | perms::ADMIN,
            &anon,
            false
        ));
        // skipACL.
        assert!(check(
            std::slice::from_ref(&bob_acl),
            perms::ALL,
            &anon,
            true
        ));
        // Super bypasses.
        let sup = digest("super:test");
        let mut root = session("1.1.1.1");
        root.add_auth("digest", b"super:test", Some(&sup)).unwrap();
        assert!(check(
            std::slice::from_ref(&bob_acl),
            perms::ALL,
            &root,
            false
        ));
        // Perms 0 grants nothing.
        assert!(!check(
            &[acl(0, "world", "anyone")],
            perms::READ,
            &anon,
            false
        ));
        // Unknown schemes and "auth" never match.
        assert!(!check(
            &[acl(perms::ALL, "sasl", "bob")],
            perms::READ,
            &bob,
            false
        ));
        assert!(!check(
            &[acl(perms::ALL, "auth", "")],
            perms::READ,
            &bob,
            false
        ));
        // The session's ip id matches ip ACLs.
        assert!(check(
            &[acl(perms::READ, "ip", "10.0.0.0/8")],
            perms::READ,
            &anon,
            false
        ));
        assert!(!check(
            &[acl(perms::READ, "ip", "10.0.0.6")],
            perms::READ,
            &anon,
            false
        ));
    }

    // IPAuthenticationProvider.matches, IPv4 and IPv6, with prefixes.
    #[test]
    fn ip_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("10.1.2.3", "10.1.2.0/24", true),
            ("10.1.3.3", "10.1.2.0/24", false),
            ("10.1.2.3", "10.0.0.0/8", true),
            ("10.1.2.3", "12.0.0.0/7", false),
            ("10.1.2.3", "11.0.0.0/7", true),
            ("10.1.2.3", "10.0.0.0/7", true),
            ("10.1.2.3", "0.0.0.0/0", true),
            ("10.1.2.3", "10.1.2.3/32", true),
            ("10.1.2.3", "10.1.2.3/33", false),
            ("10.1.2.3", "10.1.2.3/-1", false),
            ("10.1.2.3", "10.1.2.3/x", false),
            ("10.1.2.3", "10.1.2.3/+32", true),
            ("10.1.2.3", "10.1.2.3/", false),
            ("10.1.2.3", "010.1.2.+3", true),
            ("10.1.2.3", "10.1.2.256", false),
            ("10.1.2.3", "10.1.2", false),
            ("10.1.2.3", "10.1.2.3.4", false),
            ("10.1.2.3", "localhost", false),
            ("10.1.2.3", "", false),
            ("0:0:0:0:0:0:0:1", "::1", true),
            ("0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:1", true),
            ("0:0:0:0:0:0:0:1", "::2", false),
            ("0:0:0:0:0:0:0:1", "::/0", true),
            ("0:0:0:0:0:0:0:1", "::/128", false),
            ("0:0:0:0:0:0:0:1", "::1/128", true),
            ("0:0:0:0:0:0:0:1", "::1/129", false),
            ("2001:db8:0:0:0:0:0:5", "2001:db8::/32", true),
            ("2001:db9:0:0:0:0:0:5", "2001:db8::/32", false),
            ("2001:db8:0:0:0:0:0:5", "2001:DB8::/32", true),
            ("2001:db8:0:0:0:0:0:5", "2001:db8::/31", true),
            ("2001:db8:0:0:0:0:0:5", "2001:db8::0:5", true),
            ("2001:db8:0:0:0:0:0:5", "2001:db8::0:0:0:0:0:0:5", false),
            ("2001:db8:0:0:0:0:0:5", "2001::db8::5", false),
            ("2001:db8:0:0:0:0:0:5", "2001:00db8::5", false),
            ("0:0:0:0:0:0:0:1", ":::1", false),
            ("0:0:0:0:0:0:0:0", "::", true),
            ("0:0:0:0:0:0:0:1", "::1%1", false),
            // Embedded IPv4 is not understood by the Java provider.
            ("0:0:0:0:0:ffff:a01:203", "::ffff:10.1.2.3", false),
            // Mixed families never match, even with /0.
            ("10.1.2.3", "::/0", false),
            ("0:0:0:0:0:0:0:1", "0.0.0.0/0", false),
            // Scoped client ids do not parse, so never match.
            ("fe80:0:0:0:0:0:0:1%3", "fe80::/10", false),
        ];
        for &(have, expr, want) in cases {
            assert_eq!(
                ip_matches(have, expr),
                want,
                "ip_matches({have:?}, {expr:?})"
            );
        }
        assert!(ip_addr_matches(
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            "10.0.0.0/8"
        ));
        assert!(ip_addr_matches(IpAddr::V6(Ipv6Addr::LOCALHOST), "::1"));
    }

    // PrepRequestProcessor.fixupACL and the providers' isValid.
    #[test]
    fn fixup() {
        let anon = session("10.0.0.5");
        let mut bob = session("10.0.0.5");
        bob.add_auth("digest", b"bob:pw", None).unwrap();
        let bob_id = digest("bob:pw");
        let open = acl(perms::ALL, "world", "anyone");

        assert_eq!(fixup_acl(&[], &anon), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup_acl(std::slice::from_ref(&open), &anon),
            Ok(vec![open.clone()])
        );
        // Duplicates removed, first kept; different perms are different entries.
        let read = acl(perms::READ, "world", "anyone");
        assert_eq!(
            fixup_acl(&[open.clone(), read.clone(), open.clone()], &anon),
            Ok(vec![open.clone(), read])
        );
        assert_eq!(
            fixup_acl(&[acl(31, "world", "other")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        // auth: expands to the digest ids; ip does not count as authenticated.
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "auth", "")], &anon),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "auth", "ignored")], &bob),
            Ok(vec![acl(perms::READ, "digest", &bob_id)])
        );
        // Two distinct auth entries both expand, and the result is not deduplicated.
        assert_eq!(
            fixup_acl(&[acl(31, "auth", ""), acl(31, "auth", "x")], &bob),
            Ok(vec![acl(31, "digest", &bob_id), acl(31, "digest", &bob_id)])
        );
        // A super session: `super:` has no provider and is skipped, its digest id
        // expands (checked against ZooKeeper 3.8.0: getACL shows only the digest id).
        let sup = digest("super:test");
        let mut root = session("1.1.1.1");
        root.add_auth("digest", b"super:test", Some(&sup)).unwrap();
        assert_eq!(
            fixup_acl(&[acl(31, "auth", "")], &root),
            Ok(vec![acl(31, "digest", &sup)])
        );
        // digest ids must be user:hash.
        for (i, ok) in [
            ("u:h", true),
            (":h", true),
            ("u:h:", true),
            ("u::", false),
            ("u:", false),
            ("u", false),
            ("", false),
            (":", false),
            ("a:b:c", false),
            ("a::b", false),
        ] {
            assert_eq!(
                fixup_acl(&[acl(31, "digest", i)], &anon).is_ok(),
                ok,
                "digest:{i:?}"
            );
        }
        for (i, ok) in [
            ("10.0.0.1", true),
            ("10.0.0.0/8", true),
            ("10.0.0.0/33", false),
            ("::1", true),
            ("::/128", true),
            ("::/129", false),
            ("host.example", false),
            ("1.2.3", false),
            ("", false),
        ] {
            assert_eq!(
                fixup_acl(&[acl(31, "ip", i)], &anon).is_ok(),
                ok,
                "ip:{i:?}"
            );
        }
        for scheme in ["sasl", "x509", "super", "key", "", "World"] {
            assert_eq!(
                fixup_acl(&[acl(31, scheme, "x")], &bob),
                Err(ErrorCode::InvalidAcl)
            );
        }
        // One bad entry fails the whole list.
        assert_eq!(
            fixup_acl(&[open, acl(31, "ip", "nope")], &bob),
            Err(ErrorCode::InvalidAcl)
        );
        // Perms are not validated.
        assert!(fixup_acl(&[acl(0, "world", "anyone")], &anon).is_ok());
        assert!(fixup_acl(&[acl(-1, "world", "anyone")], &anon).is_ok());
    }

    // FinalRequestProcessor getACL: digest ids shown as user:x without ADMIN.
    #[test]
    fn get_acl_redaction() {
        let list = [
            acl(31, "digest", "bob:abc="),
            acl(1, "world", "anyone"),
            acl(1, "ip", "10.0.0.1"),
            acl(1, "digest", "nocolon"),
            acl(1, "digest", "a:b:c"),
            acl(1, "digest", "a:b\nc:d"),
        ];
        let ids: Vec<String> = redact_for_get_acl(&list)
            .into_iter()
            .map(|a| a.id.id)
            .collect();
        assert_eq!(
            ids,
            ["bob:x", "anyone", "10.0.0.1", "nocolon", "a:x", "a:x\nc:x"]
        );
    }

    #[test]
    fn required_perms_table() {
        use OpCode::*;
        assert_eq!(required_perm(Create), Some((Target::Parent, perms::CREATE)));
        assert_eq!(
            required_perm(Create2),
            Some((Target::Parent, perms::CREATE))
        );
        assert_eq!(
            required_perm(CreateTtl),
            Some((Target::Parent, perms::CREATE))
        );
        assert_eq!(
            required_perm(CreateContainer),
            Some((Target::Parent, perms::CREATE))
        );
        assert_eq!(required_perm(Delete), Some((Target::Parent, perms::DELETE)));
        assert_eq!(required_perm(SetData), Some((Target::Node, perms::WRITE)));
        assert_eq!(required_perm(SetAcl), Some((Target::Node, perms::ADMIN)));
        assert_eq!(required_perm(Check), Some((Target::Node, perms::READ)));
        assert_eq!(
            required_perm(Reconfig),
            Some((Target::ConfigNode, perms::WRITE))
        );
        for op in [
            Exists,
            GetData,
            GetChildren,
            GetChildren2,
            GetAllChildrenNumber,
        ] {
            assert_eq!(
                required_perm(op),
                Some((Target::Node, perms::READ)),
                "{op:?}"
            );
        }
        assert_eq!(
            required_perm(GetAcl),
            Some((Target::Node, perms::READ | perms::ADMIN))
        );
        for op in [
            Sync,
            GetEphemerals,
            WhoAmI,
            AddWatch,
            SetWatches,
            SetWatches2,
            CheckWatches,
            RemoveWatches,
            Ping,
            Auth,
            Multi,
            MultiRead,
            CreateSession,
            CloseSession,
        ] {
            assert_eq!(required_perm(op), None, "{op:?}");
        }
    }

    /// `X509AuthenticationProvider`: ACLs by subject DN, valid only once the provider is
    /// registered (a secure port is set); `auth` expands to the session's DN.
    #[test]
    fn x509_acls_match_the_subject_dn() {
        let dn = "CN=client,O=Example Inc,C=US";
        let mut tls = AuthIds::new(&"10.0.0.5:1".parse().expect("addr"));
        tls.add(id(X509, dn));
        let x509 = Providers { x509: true };
        assert!(check(
            &[acl(perms::READ, X509, dn)],
            perms::READ,
            &tls,
            false
        ));
        assert!(!check(
            &[acl(perms::READ, X509, "CN=other")],
            perms::READ,
            &tls,
            false
        ));
        assert_eq!(
            fixup_acl(&[acl(31, X509, dn)], &tls),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl_with(&[acl(31, X509, dn)], &tls, x509),
            Ok(vec![acl(31, X509, dn)])
        );
        assert_eq!(
            fixup_acl_with(&[acl(31, AUTH, "")], &tls, x509),
            Ok(vec![acl(31, X509, dn)])
        );
        assert_eq!(
            fixup_acl_with(&[acl(31, X509, "no equals sign")], &tls, x509),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(tls.client_infos()[1].user, dn);
    }
}
