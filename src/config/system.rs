//! Java system properties, as ZooKeeper's start scripts hand them to the JVM.
//!
//! `zkServer.sh` starts Java with `$JVMFLAGS`, after prepending `$SERVER_JVMFLAGS` to it,
//! so an installation configures ZooKeeper partly through `-Dkey=value` flags in those two
//! environment variables. ferrokeeper reads the same two variables, in the same order
//! (`SERVER_JVMFLAGS`, then `JVMFLAGS`), and then the `-Dkey=value` arguments given before
//! the config path on its own command line. As on a JVM command line, a later flag for the
//! same property replaces an earlier one. Flags that are not `-D` (`-Xmx512m`, ...) mean
//! nothing here and are skipped with a debug log line.
//!
//! Which property names mean what, and how they combine with `zoo.cfg`, is decided in
//! [`super`]: this module only collects them.

use std::fmt;

/// Where a system property came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyOrigin {
    /// An environment variable holding JVM flags (`SERVER_JVMFLAGS` or `JVMFLAGS`).
    Env(&'static str),
    /// A `-D` argument on ferrokeeper's command line.
    CommandLine,
}

impl fmt::Display for PropertyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyOrigin::Env(var) => write!(f, "${var}"),
            PropertyOrigin::CommandLine => f.write_str("the command line"),
        }
    }
}

/// One `-Dname=value` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name, as written after `-D`.
    pub name: String,
    /// Its value; `-Dname` without `=` sets the empty string, as the JVM does.
    pub value: String,
    /// Where the flag was found.
    pub origin: PropertyOrigin,
}

/// The environment variables `zkServer.sh` passes to the JVM, in the order it passes them.
pub const JVM_FLAG_VARIABLES: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// System properties in the order they were given; a later entry for a name wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProperties {
    entries: Vec<Property>,
}

impl SystemProperties {
    /// No properties at all.
    pub fn empty() -> SystemProperties {
        SystemProperties::default()
    }

    /// The properties of this process: `$SERVER_JVMFLAGS`, then `$JVMFLAGS`, then `flags`
    /// (the `-D` arguments of the command line, in order).
    pub fn from_env_and_args<'a>(flags: impl IntoIterator<Item = &'a str>) -> SystemProperties {
        SystemProperties::from_lookup(|var| std::env::var(var).ok(), flags)
    }

    /// As [`SystemProperties::from_env_and_args`], with the environment given as a
    /// function (tests pass a map).
    pub fn from_lookup<'a>(
        env: impl Fn(&str) -> Option<String>,
        flags: impl IntoIterator<Item = &'a str>,
    ) -> SystemProperties {
        let mut props = SystemProperties::empty();
        for var in JVM_FLAG_VARIABLES {
            if let Some(text) = env(var) {
                for word in shell_words(&text) {
                    props.push_flag(&word, PropertyOrigin::Env(var));
                }
            }
        }
        for flag in flags {
            props.push_flag(flag, PropertyOrigin::CommandLine);
        }
        props
    }

    /// Adds one JVM flag. Returns whether it was a `-D` flag (others are skipped).
    pub fn push_flag(&mut self, flag: &str, origin: PropertyOrigin) -> bool {
        let Some(definition) = flag.strip_prefix("-D") else {
            tracing::debug!(flag, %origin, "JVM flag without meaning for ferrokeeper; ignored");
            return false;
        };
        let (name, value) = definition.split_once('=').unwrap_or((definition, ""));
        if name.is_empty() {
            tracing::debug!(flag, %origin, "-D flag without a property name; ignored");
            return false;
        }
        self.entries.push(Property {
            name: name.to_string(),
            value: value.to_string(),
            origin,
        });
        true
    }

    /// Every property in the order given, later ones winning over earlier ones.
    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.entries.iter()
    }

    /// The effective value of `name`: the last one given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// Whether no property was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Splits a variable's text into words the way a POSIX shell would for a simple command:
/// at unquoted whitespace, with `'...'` taken literally, `"..."` taken literally except for
/// `\"`, `\\`, `\$` and `` \` ``, and a backslash outside quotes escaping the next
/// character. Quotes join with adjacent text (`-Dk='a b'` is one word, `-Dk=a b`).
/// No expansion is done: the text is already what the operator wrote.
pub fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word is under way: `''` is an empty word, not no word.
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                            None => word.push('\\'),
                        },
                        q => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_at_whitespace_and_honour_quotes() {
        assert_eq!(
            shell_words("  -Xmx1g\t-Da=b \n -Dc='x y'  -Dd=\"p q\" "),
            vec!["-Xmx1g", "-Da=b", "-Dc=x y", "-Dd=p q"]
        );
        assert_eq!(shell_words(""), Vec::<String>::new());
        assert_eq!(shell_words("''"), vec![""]);
        assert_eq!(
            shell_words(r#"-Da=\ b "c\"d" 'e\f'"#),
            vec!["-Da= b", "c\"d", "e\\f"]
        );
        // An unterminated quote runs to the end, as far as a shell would get.
        assert_eq!(shell_words("-Da='b c"), vec!["-Da=b c"]);
    }

    #[test]
    fn env_order_then_command_line_and_last_wins() {
        let env = |var: &str| match var {
            "SERVER_JVMFLAGS" => Some("-Xmx1g -Dk=server -Donly.server=1".to_string()),
            "JVMFLAGS" => Some("-Dk=jvm -Dflag".to_string()),
            _ => None,
        };
        let props = SystemProperties::from_lookup(env, ["-Dk=cli", "notaflag"]);
        assert_eq!(props.get("k"), Some("cli"));
        assert_eq!(props.get("only.server"), Some("1"));
        assert_eq!(props.get("flag"), Some(""));
        assert_eq!(props.get("absent"), None);
        let origins: Vec<_> = props.iter().map(|p| p.origin.clone()).collect();
        assert_eq!(
            origins,
            vec![
                PropertyOrigin::Env("SERVER_JVMFLAGS"),
                PropertyOrigin::Env("SERVER_JVMFLAGS"),
                PropertyOrigin::Env("JVMFLAGS"),
                PropertyOrigin::Env("JVMFLAGS"),
                PropertyOrigin::CommandLine,
            ]
        );
        let only_jvm =
            SystemProperties::from_lookup(|v| (v == "JVMFLAGS").then(|| "-Dk=jvm".to_string()), []);
        assert_eq!(only_jvm.get("k"), Some("jvm"));
    }

    #[test]
    fn values_may_hold_equals_signs() {
        let props = SystemProperties::from_lookup(
            |_| None,
            ["-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="],
        );
        assert_eq!(
            props.get("zookeeper.DigestAuthenticationProvider.superDigest"),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
    }
}
