//! How ZooKeeper turns a SASL authentication id into the id of its `sasl` ACL scheme:
//! `KerberosName` and the `auth_to_local` rules (`zookeeper.security.auth_to_local`),
//! then `SaslServerCallbackHandler.handleAuthorizeCallback`.
//!
//! A name is `service[/host]@REALM`, or a bare name without `@` (every DIGEST-MD5 user).
//! A bare name stays as it is. Otherwise the rules give a short name: `DEFAULT` maps a
//! principal of the default realm to its service part; `RULE:[n:fmt](regex)s/a/b/g`
//! (Hadoop's syntax) formats principals of `n` components with `$0` realm, `$1`
//! service, `$2` host, keeps the result if it fully matches `regex`, then substitutes.
//! The first rule that yields a name wins. Then `/host` is appended again unless
//! `zookeeper.kerberos.removeHostFromPrincipal=true`, and `@REALM` unless
//! `zookeeper.kerberos.removeRealmFromPrincipal=true`. So by default the id is the whole
//! principal (`client@EXAMPLE.COM`) and a DIGEST user `bob` is `bob`.
//!
//! When no rule matches, Java logs the error and leaves the authorized id at what the
//! client asked for: its authzid, else its authentication id. [`IdRules::derive`] does
//! the same.

use regex::Regex;

/// A parsed principal (`KerberosName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosName {
    /// The first component.
    pub service: String,
    /// The component after `/`, if any.
    pub host: Option<String>,
    /// The component after `@`, if any.
    pub realm: Option<String>,
}

impl KerberosName {
    /// Parses `name` with Java's pattern `([^/@]*)(/([^/@]*))?@([^/@]*)`; a name without
    /// `@` is all service. `None` for a name with `@` that does not fit the pattern
    /// (Java throws "Malformed Kerberos name").
    pub fn parse(name: &str) -> Option<KerberosName> {
        let Some((left, realm)) = name.split_once('@') else {
            return Some(KerberosName {
                service: name.to_string(),
                host: None,
                realm: None,
            });
        };
        if realm.contains(['@', '/']) {
            return None;
        }
        let (service, host) = match left.split_once('/') {
            Some((s, h)) if !h.contains('/') => (s, Some(h.to_string())),
            Some(_) => return None,
            None => (left, None),
        };
        Some(KerberosName {
            service: service.to_string(),
            host,
            realm: Some(realm.to_string()),
        })
    }
}

/// One `auth_to_local` rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `DEFAULT`: a principal of the default realm maps to its service component.
    Default,
    /// `RULE:[n:fmt](match)s/from/to/g`.
    Rule {
        /// Components the principal must have (1 or 2).
        components: usize,
        /// The format, with `$0`, `$1`, `$2`.
        format: String,
        /// What the formatted name must fully match, if given.
        matches: Option<Regex>,
        /// The substitution, if given: pattern, replacement, whether global.
        substitute: Option<(Regex, String, bool)>,
    },
}

/// Why `auth_to_local` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid zookeeper.security.auth_to_local rule at {at:?}: {reason}")]
pub struct RuleError {
    /// The text from where parsing stopped.
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `auth_to_local`: rules separated by whitespace (Java's `parseRules`).
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    let mut rest = text.trim_start();
    let err = |at: &str, reason: &str| RuleError {
        at: at.chars().take(40).collect(),
        reason: reason.to_string(),
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("DEFAULT") {
            rules.push(Rule::Default);
            rest = r.trim_start();
            continue;
        }
        let Some(r) = rest.strip_prefix("RULE:[") else {
            return Err(err(rest, "expected DEFAULT or RULE:["));
        };
        let (n, r) = r
            .split_once(':')
            .ok_or_else(|| err(rest, "expected [n:format]"))?;
        let components: usize = n.parse().map_err(|_| err(rest, "bad component count"))?;
        let (format, mut r) = r.split_once(']').ok_or_else(|| err(rest, "expected ]"))?;
        let mut matches = None;
        if let Some(after) = r.strip_prefix('(') {
            let (m, after) = after
                .split_once(')')
                .ok_or_else(|| err(rest, "expected )"))?;
            matches = Some(full_match(m).map_err(|e| err(rest, &e.to_string()))?);
            r = after;
        }
        let mut substitute = None;
        if let Some(after) = r.strip_prefix("s/") {
            let (from, after) = after.split_once('/').ok_or_else(|| err(rest, "bad s///"))?;
            let (to, after) = after.split_once('/').ok_or_else(|| err(rest, "bad s///"))?;
            let (global, after) = match after.strip_prefix('g') {
                Some(a) => (true, a),
                None => (false, after),
            };
            let from = Regex::new(from).map_err(|e| err(rest, &e.to_string()))?;
            substitute = Some((from, java_replacement(to), global));
            r = after;
        }
        if !r.is_empty() && !r.starts_with(char::is_whitespace) {
            return Err(err(r, "unexpected text after a rule"));
        }
        rules.push(Rule::Rule {
            components,
            format: format.to_string(),
            matches,
            substitute,
        });
        rest = r.trim_start();
    }
    Ok(rules)
}

fn full_match(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Java's `$1` in a replacement is a group number; Rust's `$1a` would be a group name,
/// so numbers are braced.
fn java_replacement(to: &str) -> String {
    let mut out = String::new();
    let mut chars = to.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push_str("${");
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                out.push(d);
                chars.next();
            }
            out.push('}');
        } else if c == '\\' {
            if let Some(n) = chars.next() {
                if n == '$' {
                    out.push_str("$$");
                } else {
                    out.push(n);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A rule that matched but left `@` or `/` in the name: Java's `Rule.apply` throws
/// `NoMatchingRule` there, so the later rules are not tried.
struct NonSimple;

impl Rule {
    /// The short name this rule gives, `Ok(None)` when it does not apply.
    fn apply(&self, params: &[&str], default_realm: &str) -> Result<Option<String>, NonSimple> {
        let Some(result) = self.apply_unchecked(params, default_realm) else {
            return Ok(None);
        };
        if result.contains(['@', '/']) {
            return Err(NonSimple);
        }
        Ok(Some(result))
    }

    fn apply_unchecked(&self, params: &[&str], default_realm: &str) -> Option<String> {
        let result = match self {
            Rule::Default => (params[0] == default_realm).then(|| params[1].to_string())?,
            Rule::Rule {
                components,
                format,
                matches,
                substitute,
            } => {
                if *components != params.len() - 1 {
                    return None;
                }
                let mut base = String::new();
                let mut chars = format.chars().peekable();
                while let Some(c) = chars.next() {
                    match (c, chars.peek().and_then(|d| d.to_digit(10))) {
                        ('$', Some(i)) => {
                            chars.next();
                            base.push_str(params.get(i as usize)?);
                        }
                        _ => base.push(c),
                    }
                }
                if matches.as_ref().is_some_and(|m| !m.is_match(&base)) {
                    return None;
                }
                match substitute {
                    None => base,
                    Some((from, to, true)) => from.replace_all(&base, to.as_str()).into_owned(),
                    Some((from, to, false)) => from.replace(&base, to.as_str()).into_owned(),
                }
            }
        };
        Some(result)
    }
}

/// Everything id derivation depends on.
#[derive(Debug, Clone)]
pub struct IdRules {
    /// `zookeeper.security.auth_to_local` (default `DEFAULT`).
    pub rules: Vec<Rule>,
    /// The Kerberos default realm ("" when none is configured, as in Java).
    pub default_realm: String,
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
}

impl Default for IdRules {
    fn default() -> Self {
        IdRules {
            rules: vec![Rule::Default],
            default_realm: String::new(),
            remove_host: false,
            remove_realm: false,
        }
    }
}

impl IdRules {
    /// The `sasl` id of a client that authenticated as `authentication_id` and asked
    /// to act as `authzid`. `None` when the name is malformed (Java fails the exchange).
    pub fn derive(&self, authentication_id: &str, authzid: Option<&str>) -> Option<String> {
        let name = KerberosName::parse(authentication_id)?;
        let short = match (&name.realm, &name.host) {
            (None, _) => Some(name.service.clone()),
            (Some(realm), None) => self.short_name(&[realm, &name.service]),
            (Some(realm), Some(host)) => self.short_name(&[realm, &name.service, host]),
        };
        let Some(mut id) = short else {
            return Some(authzid.unwrap_or(authentication_id).to_string());
        };
        if let (Some(host), false) = (&name.host, self.remove_host) {
            id.push('/');
            id.push_str(host);
        }
        if let (Some(realm), false) = (&name.realm, self.remove_realm) {
            id.push('@');
            id.push_str(realm);
        }
        Some(id)
    }

    /// `KerberosName.getShortName`: the first rule that applies gives the name; `None`
    /// when none applies or the first that applies leaves a non-simple name.
    fn short_name(&self, params: &[&str]) -> Option<String> {
        for rule in &self.rules {
            match rule.apply(params, &self.default_realm) {
                Ok(Some(name)) => return Some(name),
                Ok(None) => continue,
                Err(NonSimple) => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            KerberosName::parse("zookeeper/host.example.com@EXAMPLE.COM"),
            Some(KerberosName {
                service: "zookeeper".into(),
                host: Some("host.example.com".into()),
                realm: Some("EXAMPLE.COM".into()),
            })
        );
        assert_eq!(KerberosName::parse("bob").map(|n| n.realm), Some(None));
        assert_eq!(KerberosName::parse("a@b@c"), None);
        assert_eq!(KerberosName::parse("a/b/c@R"), None);
    }

    #[test]
    fn default_rules_keep_the_whole_principal() {
        let r = IdRules {
            default_realm: "EXAMPLE.COM".into(),
            ..IdRules::default()
        };
        assert_eq!(r.derive("bob", Some("other")).as_deref(), Some("bob"));
        assert_eq!(
            r.derive("client@EXAMPLE.COM", None).as_deref(),
            Some("client@EXAMPLE.COM")
        );
        assert_eq!(
            r.derive("zk/h.example.com@EXAMPLE.COM", None).as_deref(),
            Some("zk/h.example.com@EXAMPLE.COM")
        );
        // Another realm: DEFAULT does not match and the requested id stays.
        assert_eq!(
            r.derive("client@OTHER.ORG", Some("client@OTHER.ORG"))
                .as_deref(),
            Some("client@OTHER.ORG")
        );
        let strip = IdRules {
            remove_host: true,
            remove_realm: true,
            ..r
        };
        assert_eq!(
            strip
                .derive("zk/h.example.com@EXAMPLE.COM", None)
                .as_deref(),
            Some("zk")
        );
        assert_eq!(
            strip.derive("bob@EXAMPLE.COM", None).as_deref(),
            Some("bob")
        );
        assert_eq!(strip.derive("a@b@c", None), None);
    }

    #[test]
    fn hadoop_rules() {
        let rules = parse_rules(
            "RULE:[2:$1@$0](hb-.*@EXAMPLE\\.COM)s/.*/hbase/ RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*// DEFAULT",
        )
        .unwrap();
        assert_eq!(rules.len(), 3);
        let r = IdRules {
            rules,
            default_realm: "EXAMPLE.COM".into(),
            remove_host: true,
            remove_realm: true,
        };
        assert_eq!(
            r.derive("hb-1/h@EXAMPLE.COM", None).as_deref(),
            Some("hbase")
        );
        assert_eq!(r.derive("joe@OTHER.ORG", None).as_deref(), Some("joe"));
        assert_eq!(r.derive("ann@EXAMPLE.COM", None).as_deref(), Some("ann"));
        // A rule that applies but leaves `@` stops the search (Java throws
        // NoMatchingRule "Non-simple name"): the requested id stays, DEFAULT is not
        // tried. Checked against ZooKeeper 3.8 in tests/gssapi.rs.
        let r = IdRules {
            rules: parse_rules("RULE:[1:$1@$0](client@EXAMPLE\\.COM)s/client/ops/ DEFAULT")
                .unwrap(),
            default_realm: "EXAMPLE.COM".into(),
            remove_host: false,
            remove_realm: true,
        };
        assert_eq!(
            r.derive("client@EXAMPLE.COM", Some("client@EXAMPLE.COM"))
                .as_deref(),
            Some("client@EXAMPLE.COM")
        );
        assert!(parse_rules("RULE:[1:$1](x").is_err());
        assert!(parse_rules("NOPE").is_err());
        assert_eq!(java_replacement("$1a\\$"), "${1}a$$");
    }
}
