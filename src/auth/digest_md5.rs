//! The server side of SASL DIGEST-MD5 (RFC 2831), as Java's `DigestMD5Server` answers a
//! ZooKeeper client: sans-IO, one call per client token.
//!
//! The exchange (ZOOKEEPER-SECURITY-OPS.md §1, captured from a Java 3.8 server):
//!
//! 1. The client sends an empty token; the server challenges with
//!    `realm="zk-sasl-md5",nonce="<nonce>",charset=utf-8,algorithm=md5-sess`. No `qop`
//!    directive is sent, so only `auth` (authentication, no security layer) is offered.
//! 2. The client answers with its directives (`username`, `realm`, `nonce`, `cnonce`,
//!    `nc`, `qop`, `digest-uri`, `response`, and from the Java client also `charset`,
//!    `maxbuf`, `authzid`). The server checks them, recomputes `response` from the
//!    user's password and answers `rspauth=<hex>`, which proves to the client that the
//!    server knows the password too. The exchange is then complete.
//!
//! Anything else — a non-empty first token, a directive list that does not parse, a
//! wrong nonce, an unknown user, a wrong response, a token after completion — is a
//! [`DigestError`], after which the exchange is over for good.
//!
//! The nonce comes from the caller (the shell draws it from a random source), so this
//! module has no randomness and tests replay captured exchanges byte for byte.

use md5::{Digest as _, Md5};

/// The SASL protocol (service) name ZooKeeper's server is created with.
pub const PROTOCOL: &str = "zookeeper";
/// The server name (and so the realm) ZooKeeper's DIGEST-MD5 server is created with.
pub const SERVER_NAME: &str = "zk-sasl-md5";
/// Java's `DigestMD5Server` refuses client responses longer than this.
pub const RESPONSE_BYTES_MAX: usize = 4096;

/// Why an exchange failed. Each is final: the mechanism accepts no further token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The client's response exceeds [`RESPONSE_BYTES_MAX`].
    #[error("client response of {0} bytes is too long")]
    TooLong(usize),
    /// The response is not a well-formed directive list.
    #[error("malformed digest response: {0}")]
    Malformed(&'static str),
    /// A required directive is missing.
    #[error("digest response lacks {0}")]
    Missing(&'static str),
    /// A directive has a value the server did not offer or cannot accept.
    #[error("digest response has an unacceptable {0}")]
    Unacceptable(&'static str),
    /// The user is not in the server's credentials.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The client's `response` does not match the password the server holds.
    #[error("wrong password for user {0:?}")]
    WrongResponse(String),
    /// A token arrived after the exchange had completed or failed.
    #[error("DIGEST-MD5 exchange is already over")]
    Over,
}

/// What one step of the exchange yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Send this final token (`rspauth=...`); the client is authenticated.
    Complete {
        /// The token for the client.
        token: Vec<u8>,
        /// The authentication id: the `username` the password was checked for.
        authentication_id: String,
        /// The authorization id the client asked for, if any (ZooKeeper ignores it).
        authzid: Option<String>,
    },
}

enum State {
    Start,
    Challenged,
    Over,
}

/// One DIGEST-MD5 exchange on the server side.
pub struct DigestMd5Server {
    nonce: String,
    state: State,
}

impl DigestMd5Server {
    /// A new exchange that will challenge with `nonce` (Java uses 40 base64 characters
    /// of fresh randomness; the caller must not reuse one).
    pub fn new(nonce: String) -> Self {
        DigestMd5Server {
            nonce,
            state: State::Start,
        }
    }

    /// Whether the exchange has ended (completed or failed).
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// Takes the client's next token. `password` looks a user's password up (`None`:
    /// no such user).
    pub fn step(
        &mut self,
        token: &[u8],
        password: impl Fn(&str) -> Option<String>,
    ) -> Result<Step, DigestError> {
        if token.len() > RESPONSE_BYTES_MAX {
            self.state = State::Over;
            return Err(DigestError::TooLong(token.len()));
        }
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => {
                // DIGEST-MD5 has no initial response, yet a Java 3.8 server on JDK 17
                // answers a non-empty first token with the challenge all the same
                // (checked with a raw client): so the first token is not looked at.
                self.state = State::Challenged;
                Ok(Step::Challenge(
                    format!(
                        "realm=\"{SERVER_NAME}\",nonce=\"{}\",charset=utf-8,algorithm=md5-sess",
                        self.nonce
                    )
                    .into_bytes(),
                ))
            }
            State::Challenged => self.check_response(token, password),
            State::Over => Err(DigestError::Over),
        }
    }

    fn check_response(
        &self,
        token: &[u8],
        password: impl Fn(&str) -> Option<String>,
    ) -> Result<Step, DigestError> {
        let d = Directives::parse(token)?;
        // We offered charset=utf-8; without it the client's strings are ISO 8859-1.
        let utf8 = match d.charset {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(DigestError::Unacceptable("charset")),
        };
        let text = |b: &[u8]| -> Result<String, DigestError> {
            if utf8 {
                String::from_utf8(b.to_vec()).map_err(|_| DigestError::Malformed("not UTF-8"))
            } else {
                Ok(b.iter().map(|&c| char::from(c)).collect())
            }
        };
        let username = text(d.username.ok_or(DigestError::Missing("username"))?)?;
        let realm = match d.realm {
            Some(r) => text(r)?,
            None => String::new(),
        };
        if !realm.is_empty() && realm != SERVER_NAME {
            return Err(DigestError::Unacceptable("realm"));
        }
        let nonce = d.nonce.ok_or(DigestError::Missing("nonce"))?;
        if nonce != self.nonce.as_bytes() {
            return Err(DigestError::Unacceptable("nonce"));
        }
        let cnonce = d.cnonce.ok_or(DigestError::Missing("cnonce"))?;
        // The first (and only) response of an exchange counts 1.
        if d.nc.ok_or(DigestError::Missing("nc"))? != b"00000001" {
            return Err(DigestError::Unacceptable("nc"));
        }
        let qop = d.qop.unwrap_or(b"auth");
        if qop != b"auth" {
            return Err(DigestError::Unacceptable("qop"));
        }
        let uri = d.digest_uri.ok_or(DigestError::Missing("digest-uri"))?;
        if !uri_names_this_server(uri) {
            return Err(DigestError::Unacceptable("digest-uri"));
        }
        let response = d.response.ok_or(DigestError::Missing("response"))?;
        let authzid = d.authzid.map(text).transpose()?;
        let Some(pass) = password(&username) else {
            return Err(DigestError::UnknownUser(username));
        };
        let inputs = Inputs {
            username: &username,
            realm: &realm,
            password: &pass,
            nonce,
            cnonce,
            nc: b"00000001",
            authzid: d.authzid,
            digest_uri: uri,
        };
        let expected = inputs.response(b"AUTHENTICATE:");
        if !response.eq_ignore_ascii_case(expected.as_bytes()) {
            return Err(DigestError::WrongResponse(username));
        }
        let rspauth = inputs.response(b":");
        Ok(Step::Complete {
            token: format!("rspauth={rspauth}").into_bytes(),
            authentication_id: username,
            authzid,
        })
    }
}

/// `digest-uri` is `serv-type "/" host [ "/" serv-name ]`; Java's server checks the
/// service type and host against its own, ignoring case.
fn uri_names_this_server(uri: &[u8]) -> bool {
    let mut parts = uri.split(|&b| b == b'/');
    let service = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    service.eq_ignore_ascii_case(PROTOCOL.as_bytes())
        && host.eq_ignore_ascii_case(SERVER_NAME.as_bytes())
}

/// What RFC 2831 §2.1.2.1 computes the response from.
struct Inputs<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a [u8],
    cnonce: &'a [u8],
    nc: &'a [u8],
    authzid: Option<&'a [u8]>,
    digest_uri: &'a [u8],
}

impl Inputs<'_> {
    /// `HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))))` with `A2 = a2_prefix
    /// digest-uri`: `AUTHENTICATE:` for the client's response, `:` for `rspauth`.
    fn response(&self, a2_prefix: &[u8]) -> String {
        let mut inner = Md5::new();
        for (i, s) in [self.username, self.realm, self.password]
            .iter()
            .enumerate()
        {
            if i > 0 {
                inner.update(b":");
            }
            inner.update(java_8859_1_or_utf8(s));
        }
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(b":");
        a1.update(self.nonce);
        a1.update(b":");
        a1.update(self.cnonce);
        if let Some(z) = self.authzid {
            a1.update(b":");
            a1.update(z);
        }
        let ha1 = hex(&a1.finalize());
        let mut a2 = Md5::new();
        a2.update(a2_prefix);
        a2.update(self.digest_uri);
        let ha2 = hex(&a2.finalize());
        let mut kd = Md5::new();
        for (i, part) in [
            ha1.as_bytes(),
            self.nonce,
            self.nc,
            self.cnonce,
            b"auth",
            ha2.as_bytes(),
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                kd.update(b":");
            }
            kd.update(part);
        }
        hex(&kd.finalize())
    }
}

/// RFC 2831 §2.1.2.1: with charset=utf-8, a string whose every character fits in
/// ISO 8859-1 is hashed in ISO 8859-1, any other in UTF-8 (Java's
/// `stringToByte_8859_1`). Without the charset the client's bytes were read as
/// ISO 8859-1 already, so the same rule gives them back unchanged.
fn java_8859_1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| u32::from(c) <= 0xff) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The directives of a digest-response (RFC 2831 §2.1.2), values unquoted. Unknown
/// directives are ignored, as the RFC asks; a known one given twice is an error.
#[derive(Default)]
struct Directives<'a> {
    username: Option<&'a [u8]>,
    realm: Option<&'a [u8]>,
    nonce: Option<&'a [u8]>,
    cnonce: Option<&'a [u8]>,
    nc: Option<&'a [u8]>,
    qop: Option<&'a [u8]>,
    digest_uri: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    charset: Option<&'a [u8]>,
    authzid: Option<&'a [u8]>,
}

impl<'a> Directives<'a> {
    fn parse(token: &'a [u8]) -> Result<Self, DigestError> {
        let mut d = Directives::default();
        let mut rest = token;
        loop {
            rest = skip_lws_and_commas(rest);
            if rest.is_empty() {
                break;
            }
            let eq = rest
                .iter()
                .position(|&b| b == b'=')
                .ok_or(DigestError::Malformed("directive without ="))?;
            let name = trim(&rest[..eq]);
            if name.is_empty() || name.iter().any(|b| !is_token_char(*b)) {
                return Err(DigestError::Malformed("bad directive name"));
            }
            rest = skip_lws(&rest[eq + 1..]);
            let value;
            if rest.first() == Some(&b'"') {
                let (v, after) = quoted(&rest[1..])?;
                value = v;
                rest = after;
            } else {
                let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
                value = trim(&rest[..end]);
                rest = &rest[end..];
            }
            rest = skip_lws(rest);
            if !rest.is_empty() && rest[0] != b',' {
                return Err(DigestError::Malformed("text after a value"));
            }
            let slot = match name.to_ascii_lowercase().as_slice() {
                b"username" => &mut d.username,
                b"realm" => &mut d.realm,
                b"nonce" => &mut d.nonce,
                b"cnonce" => &mut d.cnonce,
                b"nc" => &mut d.nc,
                b"qop" => &mut d.qop,
                b"digest-uri" => &mut d.digest_uri,
                b"response" => &mut d.response,
                b"charset" => &mut d.charset,
                b"authzid" => &mut d.authzid,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(DigestError::Malformed("directive given twice"));
            }
        }
        Ok(d)
    }
}

/// A quoted-string's content up to its closing quote, and what follows. Escaped
/// characters (`\"`) are refused rather than unescaped: the values a ZooKeeper client
/// quotes (user names, realms, nonces, URIs) never need one, and refusing keeps the
/// values borrowed from the token.
fn quoted(s: &[u8]) -> Result<(&[u8], &[u8]), DigestError> {
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => return Ok((&s[..i], &s[i + 1..])),
            b'\\' => return Err(DigestError::Malformed("escape in quoted string")),
            _ => {}
        }
    }
    Err(DigestError::Malformed("unterminated quoted string"))
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

fn skip_lws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_lws(b)).count();
    &s[n..]
}

fn skip_lws_and_commas(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_lws(b) || b == b',').count();
    &s[n..]
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|&&b| is_lws(b)).count();
    let end = s.len() - s[start..].iter().rev().take_while(|&&b| is_lws(b)).count();
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "WGClc7T1JR+LbKdCknLY9uc0VFDGT1/T89GCqKUH";

    fn users(name: &str) -> Option<String> {
        (name == "jaasuser").then(|| "jaas_password".to_string())
    }

    fn challenged() -> DigestMd5Server {
        let mut s = DigestMd5Server::new(NONCE.into());
        let step = s.step(b"", users).unwrap();
        assert_eq!(
            step,
            Step::Challenge(
                format!("realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",charset=utf-8,algorithm=md5-sess")
                    .into_bytes()
            )
        );
        s
    }

    /// Vector (a) of ZOOKEEPER-SECURITY-OPS.md §1: pure-sasl's response, no authzid,
    /// captured from a Java 3.8 server.
    #[test]
    fn vector_a_pure_sasl_without_authzid() {
        let mut s = challenged();
        let response = format!(
            "qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"{NONCE}\",\
             cnonce=\"3511867546966293\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",\
             response=383f36b80bd7b422c45c31f6eed1c78f"
        );
        let step = s.step(response.as_bytes(), users).unwrap();
        assert_eq!(
            step,
            Step::Complete {
                token: b"rspauth=1edd24c83c94a35a9cf5465c6d3a9b8c".to_vec(),
                authentication_id: "jaasuser".into(),
                authzid: None,
            }
        );
        assert!(s.is_over());
        assert_eq!(s.step(b"", users), Err(DigestError::Over));
    }

    /// Vector (b): the Java client's response, with charset, maxbuf and an authzid.
    #[test]
    fn vector_b_java_client_with_authzid() {
        let mut s = challenged();
        let response = format!(
            "charset=utf-8,username=\"jaasuser\",realm=\"zk-sasl-md5\",nonce=\"{NONCE}\",\
             nc=00000001,cnonce=\"bK+6to/yU89u5b6IsGKOD9bJxo/E+/Wy5R0uj4PP\",\
             digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
             response=b4b4c2d1939234a73e2dc3fa7d00414b,qop=auth,authzid=\"jaasuser\""
        );
        match s.step(response.as_bytes(), users).unwrap() {
            Step::Complete {
                authentication_id,
                authzid,
                token,
            } => {
                assert_eq!(authentication_id, "jaasuser");
                assert_eq!(authzid.as_deref(), Some("jaasuser"));
                assert!(token.starts_with(b"rspauth=") && token.len() == 8 + 32);
            }
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn wrong_password_unknown_user_and_garbage_fail() {
        let good = format!(
            "qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"{NONCE}\",\
             cnonce=\"3511867546966293\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",\
             response=383f36b80bd7b422c45c31f6eed1c78f"
        );
        let wrong = good.replace("383f36b8", "383f36b9");
        assert_eq!(
            challenged().step(wrong.as_bytes(), users),
            Err(DigestError::WrongResponse("jaasuser".into()))
        );
        assert_eq!(
            challenged().step(good.as_bytes(), |_| None),
            Err(DigestError::UnknownUser("jaasuser".into()))
        );
        let other_nonce = good.replace("WGClc7", "XGClc7");
        assert_eq!(
            challenged().step(other_nonce.as_bytes(), users),
            Err(DigestError::Unacceptable("nonce"))
        );
        let other_uri = good.replace("zookeeper/zk", "ldap/zk");
        assert_eq!(
            challenged().step(other_uri.as_bytes(), users),
            Err(DigestError::Unacceptable("digest-uri"))
        );
        for garbage in [
            &b"\x00\x01\x02\xff"[..],
            b"username",
            b"username=\"unterminated",
            b"=x",
            b"username=\"a\"junk",
        ] {
            let mut s = challenged();
            assert!(
                matches!(s.step(garbage, users), Err(DigestError::Malformed(_))),
                "{garbage:?}"
            );
            assert!(s.is_over());
        }
        let mut s = DigestMd5Server::new(NONCE.into());
        // A non-empty first token is ignored, as by the Java server.
        assert!(matches!(s.step(b"x", users), Ok(Step::Challenge(_))));
        let long = vec![b'a'; RESPONSE_BYTES_MAX + 1];
        assert_eq!(
            challenged().step(&long, users),
            Err(DigestError::TooLong(RESPONSE_BYTES_MAX + 1))
        );
    }
}
