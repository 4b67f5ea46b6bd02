//! JAAS login configuration files (`java.security.auth.login.config`), as far as a
//! ZooKeeper server reads them: named sections of login modules with options.
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! The grammar is that of Java's `ConfigFile`: `Name { Module Flag key=value ... ; ... };`
//! with `//` and `/* */` comments, values quoted with `"` or bare words. Two sections
//! with the same name are merged, in file order, as Java merges them. `${name}`
//! expansion of system properties inside values is not done (Java does it only when
//! `policy.expandProperties` is set, its default; ZooKeeper files rarely use it).

use std::collections::BTreeMap;

/// One login module entry of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Its options, in file order.
    pub options: Vec<(String, String)>,
}

/// A parsed JAAS file: section name → its login modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JaasFile {
    sections: BTreeMap<String, Vec<LoginModule>>,
}

/// Why a JAAS file does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JAAS configuration, line {line}: {message}")]
pub struct JaasError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

impl JaasFile {
    /// Parses a file's text.
    pub fn parse(text: &str) -> Result<JaasFile, JaasError> {
        let tokens = tokenize(text)?;
        let mut it = tokens.into_iter().peekable();
        let mut file = JaasFile::default();
        let err = |line, message: &str| JaasError {
            line,
            message: message.to_string(),
        };
        while let Some((line, tok)) = it.next() {
            let Token::Word(name) = tok else {
                return Err(err(line, "expected a section name"));
            };
            match it.next() {
                Some((_, Token::Punct('{'))) => {}
                _ => return Err(err(line, "expected { after the section name")),
            }
            let modules = file.sections.entry(name).or_default();
            loop {
                match it.next() {
                    Some((_, Token::Punct('}'))) => break,
                    Some((line, Token::Word(class))) => {
                        let flag = match it.next() {
                            Some((_, Token::Word(f))) => f,
                            _ => return Err(err(line, "expected a control flag after the module")),
                        };
                        if !["required", "requisite", "sufficient", "optional"]
                            .contains(&flag.to_ascii_lowercase().as_str())
                        {
                            return Err(err(line, &format!("invalid control flag {flag:?}")));
                        }
                        let mut options = Vec::new();
                        loop {
                            match it.next() {
                                Some((_, Token::Punct(';'))) => break,
                                Some((line, Token::Word(key))) => {
                                    match it.next() {
                                        Some((_, Token::Punct('='))) => {}
                                        _ => {
                                            return Err(err(
                                                line,
                                                "expected = after an option name",
                                            ))
                                        }
                                    }
                                    let value = match it.next() {
                                        Some((_, Token::Word(v) | Token::Quoted(v))) => v,
                                        _ => return Err(err(line, "expected an option value")),
                                    };
                                    options.push((key, value));
                                }
                                Some((line, _)) => {
                                    return Err(err(line, "expected an option or ;"))
                                }
                                None => return Err(err(line, "unterminated module entry")),
                            }
                        }
                        modules.push(LoginModule {
                            class,
                            flag,
                            options,
                        });
                    }
                    Some((line, _)) => return Err(err(line, "expected a login module or }")),
                    None => return Err(err(line, "unterminated section")),
                }
            }
            match it.next() {
                Some((_, Token::Punct(';'))) => {}
                _ => return Err(err(line, "expected ; after the section's }")),
            }
        }
        Ok(file)
    }

    /// The login modules of section `name`, if it exists.
    pub fn section(&self, name: &str) -> Option<&[LoginModule]> {
        self.sections.get(name).map(Vec::as_slice)
    }
}

/// `ServerCnxnFactory.getDigestMd5Credentials`: every option named `user_<name>` of any
/// module of the section is the password of `<name>`; a later one wins.
pub fn digest_credentials(modules: &[LoginModule]) -> BTreeMap<String, String> {
    let mut users = BTreeMap::new();
    for m in modules {
        for (key, value) in &m.options {
            if let Some(user) = key.strip_prefix("user_") {
                users.insert(user.to_string(), value.clone());
            }
        }
    }
    users
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || "$_-.*:/\\@+~%,!?#&'()[]^`|<>".contains(c)
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, JaasError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                        None => {
                            return Err(JaasError {
                                line: start,
                                message: "unterminated comment".into(),
                            })
                        }
                    }
                }
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(e) => s.push(e),
                            None => break,
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                        None => {
                            return Err(JaasError {
                                line: start,
                                message: "unterminated quoted value".into(),
                            })
                        }
                    }
                }
                out.push((start, Token::Quoted(s)));
            }
            '{' | '}' | ';' | '=' => out.push((line, Token::Punct(c))),
            c if is_word_char(c) => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !is_word_char(n) || (n == '/' && s.ends_with('/')) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((line, Token::Word(s)));
            }
            c => {
                return Err(JaasError {
                    line,
                    message: format!("unexpected character {c:?}"),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_admin_guide_example() {
        let text = r#"
            // The server's users.
            Server {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_super="adminsecret"
                   user_bob="bob secret";
            };
            /* The client's login,
               for zkCli. */
            Client {
                   org.apache.zookeeper.server.auth.DigestLoginModule required
                   username="bob"
                   password=bobsecret;
            };
            Server { other.Module optional user_carol="c"; };
        "#;
        let f = JaasFile::parse(text).unwrap();
        let server = f.section("Server").unwrap();
        assert_eq!(server.len(), 2);
        assert_eq!(server[0].flag, "required");
        let users = digest_credentials(server);
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob secret"));
        assert_eq!(users.get("carol").map(String::as_str), Some("c"));
        let client = f.section("Client").unwrap();
        assert_eq!(
            client[0].options[1],
            ("password".into(), "bobsecret".into())
        );
        assert!(f.section("server").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = JaasFile::parse("Server {\n  M required\n  user_a=\"x\"\n").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e}");
        let e = JaasFile::parse("Server {\n M sometimes;\n};").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(JaasFile::parse("Server { M required a=; };").is_err());
        assert!(JaasFile::parse("Server { M required a=\"b\" }").is_err());
        assert_eq!(JaasFile::parse("").unwrap(), JaasFile::default());
    }
}
