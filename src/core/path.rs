//! Znode paths: validation exactly as ZooKeeper performs it, and the small string
//! operations the tree, the commit stage and the watch table need (parent, name,
//! ancestors, join).
//!
//! Everything here is pure and allocation-free except [`join`] and [`sequential`].
//!
//! # Where ZooKeeper validates, and where it does not
//!
//! ZooKeeper 3.9 (`server/PrepRequestProcessor.java`, `server/FinalRequestProcessor.java`)
//! validates paths on the server only in these places; a compatible server must do the
//! same and nothing more, because error codes differ otherwise:
//!
//! | operation | server-side check | helper here |
//! |---|---|---|
//! | create, create2, createTTL, createContainer | first only "has a `/`, no NUL"; the parent is looked up (NoNode) and its ACL checked; *then* the final path, with the sequence suffix already appended, goes through `PathUtils.validatePath` | [`create_parent`], then [`validate`]`(final, false)` |
//! | delete (and deleteContainer) | "has a `/`, no NUL, not a special path", then lookups | [`delete_parent`] |
//! | setData, setACL, check (in multi) | `PathUtils.validatePath` | [`validate`]`(path, false)` |
//! | exists | NUL in the path → BadArguments; nothing else | [`has_nul`] |
//! | every other read (getData, getChildren, getACL, …), addWatch, removeWatches, checkWatches, setWatches | none: a malformed path is simply not found (NoNode) or never fires | — |
//!
//! Consequences worth knowing (pinned by tests below, and each checked over a raw
//! socket against Apache ZooKeeper 3.8.0, whose prep code is the same here):
//! - `create("/a//b")` answers **NoNode** (the parent `/a/` does not exist), not BadArguments.
//! - `create("/a/", sequential)` is **valid**: the server appends the suffix first and
//!   creates `/a/0000000007`. This is why the client-side check appends "1" for
//!   sequential creates (`PathUtils.validatePath(path, isSequential)`).
//! - `create("/")` answers **NodeExists** (the parent of `/` is the root itself).
//! - `delete("/")`, `delete("/zookeeper")`, `delete("/zookeeper/quota")` and
//!   `delete("/zookeeper/config")` answer **BadArguments** ([`is_special`]).
//! - Nothing forbids *creating* under `/zookeeper`: `/zookeeper` and `/zookeeper/quota`
//!   carry OPEN_ACL_UNSAFE (`ReferenceCountedACLCache` maps the ACL id −1 to it), so
//!   `create("/zookeeper/x")` succeeds; `/zookeeper/config` carries READ_ACL_UNSAFE
//!   (ZOOKEEPER-2014), so creating under it or setting its data answers NoAuth unless
//!   the session is super or `skipACL` is set. Those are ACL outcomes, not path rules;
//!   see [`ZOOKEEPER`], [`QUOTA`], [`CONFIG`].

use ferrokeeper_net::codes::ErrorCode;

/// The root znode.
pub const ROOT: &str = "/";
/// ZooKeeper's own subtree (`Quotas.procZookeeper`). ACL: OPEN_ACL_UNSAFE.
pub const ZOOKEEPER: &str = "/zookeeper";
/// Quota definitions (`Quotas.quotaZookeeper`). ACL: OPEN_ACL_UNSAFE.
pub const QUOTA: &str = "/zookeeper/quota";
/// The ensemble configuration (`ZooDefs.CONFIG_NODE`). ACL: READ_ACL_UNSAFE.
pub const CONFIG: &str = "/zookeeper/config";

/// Validates `path` exactly as `PathUtils.validatePath(path, isSequential)`: with
/// `sequential` the check runs on `path + "1"`, so a trailing `/` is allowed because the
/// server will append the sequence number.
///
/// Rejected (all → [`ErrorCode::BadArguments`]): empty; not starting with `/`; ending
/// with `/` (except the root itself); an empty component (`//`); a `.` or `..`
/// component; NUL; control characters U+0001–U+001F and U+007F–U+009F; U+E000–U+F8FF
/// (private use); U+FFF0–U+FFFF (specials, including U+FFFD, which is what invalid
/// UTF-8 on the wire decodes to); and every character outside the Basic Multilingual
/// Plane. Java scans UTF-16 code units and rejects the surrogate range U+D800–U+DFFF,
/// so any supplementary character (an emoji, say) is refused.
pub fn validate(path: &str, sequential: bool) -> Result<(), ErrorCode> {
    if validate_java(path, sequential) {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

fn validate_java(path: &str, sequential: bool) -> bool {
    let bytes = path.as_bytes();
    // With the "1" appended, the path is never empty and never ends with '/'.
    if bytes.is_empty() {
        return false;
    }
    if bytes[0] != b'/' {
        return false;
    }
    if bytes.len() == 1 {
        return true;
    }
    if !sequential && bytes[bytes.len() - 1] == b'/' {
        return false;
    }
    // Component rules: none empty, none "." or "..". The appended "1" can only turn a
    // trailing empty component into "1", which is valid; the last component otherwise
    // gains a '1' and can no longer be "." or "..". Split as bytes: '/' is never part of
    // a longer UTF-8 sequence, and a `char` split ran a `memcmp` per '/' found (~3 % of
    // the commit thread in the `multi` workload, which validates every setData's path).
    let mut components = bytes[1..].split(|b| *b == b'/').peekable();
    while let Some(component) = components.next() {
        let is_last = components.peek().is_none();
        if component.is_empty() {
            if is_last && sequential {
                continue;
            }
            return false;
        }
        if (component == b"." || component == b"..") && !(is_last && sequential) {
            return false;
        }
    }
    // Printable ASCII (nearly every path) holds no character the rule excludes: no
    // decoding needed.
    bytes[1..].iter().all(|b| (0x20..0x7f).contains(b)) || path.chars().skip(1).all(char_allowed)
}

/// Whether `PathUtils.validatePath` accepts a character (after the leading `/`).
fn char_allowed(c: char) -> bool {
    !matches!(c as u32,
        0x0000..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..)
}

/// Whether the path contains NUL. `exists` answers BadArguments for such a path
/// (`FinalRequestProcessor`), the only validation a read gets.
pub fn has_nul(path: &str) -> bool {
    path.as_bytes().contains(&0)
}

/// The first check of a create (`PrepRequestProcessor.validatePathForCreate`): the path
/// must contain a `/` and no NUL. Returns the parent path to look up next ([`parent`]).
/// The full validation comes later, on the final (suffixed) path.
pub fn create_parent(path: &str) -> Result<&str, ErrorCode> {
    if !path.contains('/') || has_nul(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(parent(path))
}

/// The first check of a delete (`PrepRequestProcessor.getParentPathAndValidate`): the
/// path must contain a `/`, no NUL, and must not be one of the special nodes
/// ([`is_special`]). Returns the parent path. Note that there is no full validation:
/// `delete("/a//b")` looks up the parent `/a/` and answers NoNode.
pub fn delete_parent(path: &str) -> Result<&str, ErrorCode> {
    if !path.contains('/') || has_nul(path) || is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(parent(path))
}

/// The nodes ZooKeeper refuses to delete (`DataTree.isSpecialPath`): `/`, `/zookeeper`,
/// `/zookeeper/quota`, `/zookeeper/config`.
pub fn is_special(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// Whether the path is `/zookeeper` or below it: ZooKeeper's system subtree, which
/// `DigestCalculator` excludes from the tree digest and which snapshots of a Java
/// server carry. Creating below it is allowed (see the module documentation).
pub fn is_in_zookeeper_subtree(path: &str) -> bool {
    path == ZOOKEEPER || path.starts_with("/zookeeper/")
}

/// The parent path: everything before the last `/`, with `/` for a top-level node and
/// for the root itself (ZooKeeper's `substring(0, lastSlash)` yields `""`, which its
/// node map also resolves to the root). A path without any `/` has no parent; this
/// returns `""` for it, which names no node. Callers validate first.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => ROOT,
        Some(i) => &path[..i],
        None => "",
    }
}

/// The last component: everything after the last `/` (`""` for the root).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` + `/` + `child`, without doubling the root's slash.
pub fn join(parent: &str, child: &str) -> String {
    let mut s = String::with_capacity(parent.len() + 1 + child.len());
    s.push_str(parent);
    if !parent.ends_with('/') {
        s.push('/');
    }
    s.push_str(child);
    s
}

/// The path a sequential create produces: `path` followed by the parent's cversion as
/// `%010d` (`PrepRequestProcessor.pRequest2TxnCreate`). A negative cversion (after
/// 2^31 creates) formats as Java does, `-000000001` style: the width includes the sign.
pub fn sequential(path: &str, parent_cversion: i32) -> String {
    format!("{path}{parent_cversion:010}")
}

/// The strict ancestors of a path, nearest first, ending with `/`. The root has none.
/// This is `PathParentIterator.forAll` without its first element (the path itself).
pub fn ancestors(path: &str) -> Ancestors<'_> {
    Ancestors {
        rest: if path == ROOT { "" } else { path },
    }
}

/// Iterator returned by [`ancestors`]; borrows the path, never allocates.
#[derive(Debug, Clone)]
pub struct Ancestors<'a> {
    // Invariant: `rest` is the last path yielded (or the start path), "" when done.
    rest: &'a str,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() || self.rest == ROOT {
            return None;
        }
        let p = match self.rest.rfind('/') {
            Some(0) => ROOT,
            Some(i) => &self.rest[..i],
            None => {
                self.rest = "";
                return None;
            }
        };
        self.rest = p;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PathUtils.validatePath, case by case (zookeeper-server common/PathUtils.java; the
    // same cases as ZooKeeper's PathUtilsTest where they exist).
    #[test]
    fn validate_table() {
        let cases: &[(&str, bool, bool)] = &[
            // (path, sequential, valid)
            ("/", false, true),
            ("/", true, true),
            ("/a", false, true),
            ("/a/b/c", false, true),
            ("/a b", false, true),
            ("/...", false, true),
            ("/a.", false, true),
            ("/.a", false, true),
            ("/a..b", false, true),
            ("/..a", false, true),
            ("/a/.../b", false, true),
            ("/é", false, true),
            ("/\u{ffef}", false, true),
            ("/\u{d7ff}", false, true),
            ("/\u{f900}", false, true),
            ("", false, false),
            ("", true, false),
            ("a", false, false),
            ("a/b", false, false),
            ("/a/", false, false),
            ("/a/", true, true),
            ("//", false, false),
            ("//", true, false),
            ("/a//b", false, false),
            ("/a//b", true, false),
            ("/.", false, false),
            ("/..", false, false),
            ("/a/.", false, false),
            ("/a/..", false, false),
            ("/./a", false, false),
            ("/../a", false, false),
            ("/a/./b", false, false),
            ("/a/../b", false, false),
            // With the "1" appended, "." becomes ".1": allowed.
            ("/a/.", true, true),
            ("/a/..", true, true),
            ("/./a", true, false),
            ("/a\0b", false, false),
            ("/a\0b", true, false),
            ("/a\u{1}", false, false),
            ("/a\u{1f}", false, false),
            ("/a\u{7f}", false, false),
            ("/a\u{9f}", false, false),
            ("/a\u{a0}", false, true),
            ("/a\u{e000}", false, false),
            ("/a\u{f8ff}", false, false),
            ("/a\u{fff0}", false, false),
            ("/a\u{fffd}", false, false),
            ("/a\u{ffff}", false, false),
            ("/a\u{1f600}", false, false),
            ("/a\u{10000}", false, false),
        ];
        for &(path, seq, ok) in cases {
            assert_eq!(validate(path, seq).is_ok(), ok, "validate({path:?}, {seq})");
            if !ok {
                assert_eq!(validate(path, seq), Err(ErrorCode::BadArguments));
            }
        }
    }

    // Cross-check the component-based implementation against a literal transcription of
    // the Java character loop over many generated paths.
    #[test]
    fn validate_matches_java_loop() {
        fn java(path: &str, seq: bool) -> bool {
            let owned;
            let path = if seq {
                owned = format!("{path}1");
                owned.as_str()
            } else {
                path
            };
            let chars: Vec<u16> = path.encode_utf16().collect();
            if chars.is_empty() || chars[0] != u16::from(b'/') {
                return false;
            }
            if chars.len() == 1 {
                return true;
            }
            if chars[chars.len() - 1] == u16::from(b'/') {
                return false;
            }
            let (slash, dot) = (u16::from(b'/'), u16::from(b'.'));
            let mut lastc = slash;
            for i in 1..chars.len() {
                let c = chars[i];
                if c == 0 || (c == slash && lastc == slash) {
                    return false;
                } else if c == dot && lastc == dot {
                    if chars[i - 2] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                        return false;
                    }
                } else if c == dot {
                    if chars[i - 1] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                        return false;
                    }
                } else if (c > 0 && c <= 0x1f)
                    || (0x7f..=0x9f).contains(&c)
                    || (0xd800..=0xf8ff).contains(&c)
                    || c >= 0xfff0
                {
                    return false;
                }
                lastc = c;
            }
            true
        }
        let alphabet = ["/", ".", "a", "\0", "\u{1}", "\u{e000}", "é", "\u{1f600}"];
        let mut n = 0u64;
        // Every string of length <= 5 over the alphabet, with and without a leading '/'.
        let mut stack: Vec<String> = vec![String::new()];
        while let Some(s) = stack.pop() {
            for seq in [false, true] {
                assert_eq!(validate(&s, seq).is_ok(), java(&s, seq), "{s:?} seq={seq}");
                n += 1;
            }
            if s.chars().count() < 5 {
                for a in alphabet {
                    stack.push(format!("{s}{a}"));
                }
            }
        }
        assert!(n > 10_000);
    }

    #[test]
    fn parent_name_join() {
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(parent("/a/"), "/a");
        assert_eq!(parent("a"), "");
        assert_eq!(name("/"), "");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        for p in ["/a", "/a/b", "/x/y/z"] {
            assert_eq!(join(parent(p), name(p)), p);
        }
    }

    #[test]
    fn ancestors_nearest_first() {
        let v: Vec<&str> = ancestors("/a/b/c").collect();
        assert_eq!(v, ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("").count(), 0);
        assert_eq!(ancestors("a").count(), 0);
    }

    // PrepRequestProcessor.validatePathForCreate / getParentPathAndValidate.
    #[test]
    fn create_and_delete_prechecks() {
        assert_eq!(create_parent("/a"), Ok("/"));
        assert_eq!(create_parent("/a/b"), Ok("/a"));
        // Not fully validated here: the parent lookup of "/a/" then answers NoNode.
        assert_eq!(create_parent("/a//b"), Ok("/a/"));
        assert_eq!(create_parent("/a/"), Ok("/a"));
        assert_eq!(create_parent("/"), Ok("/"));
        assert_eq!(create_parent("a"), Err(ErrorCode::BadArguments));
        assert_eq!(create_parent(""), Err(ErrorCode::BadArguments));
        assert_eq!(create_parent("/a\0"), Err(ErrorCode::BadArguments));
        assert_eq!(delete_parent("/a/b"), Ok("/a"));
        assert_eq!(delete_parent("/zookeeper/x"), Ok("/zookeeper"));
        for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            assert_eq!(
                delete_parent(special),
                Err(ErrorCode::BadArguments),
                "{special}"
            );
        }
        assert_eq!(delete_parent("a"), Err(ErrorCode::BadArguments));
        assert_eq!(delete_parent("/a\0b"), Err(ErrorCode::BadArguments));
        assert!(!is_special("/zookeeper/"));
        assert!(is_in_zookeeper_subtree("/zookeeper"));
        assert!(is_in_zookeeper_subtree("/zookeeper/x"));
        assert!(!is_in_zookeeper_subtree("/zookeeperx"));
        // A sequential create of "/a/" is validated only after the suffix is appended.
        let final_path = sequential("/a/", 7);
        assert_eq!(final_path, "/a/0000000007");
        assert_eq!(validate(&final_path, false), Ok(()));
    }

    // zookeeperProgrammers.md: the counter is a signed int formatted %010d.
    #[test]
    fn sequential_suffix() {
        assert_eq!(sequential("/n-", 0), "/n-0000000000");
        assert_eq!(sequential("/n-", 2_147_483_647), "/n-2147483647");
        assert_eq!(sequential("/n-", i32::MIN), "/n--2147483648");
        assert_eq!(sequential("/n-", -1), "/n--000000001");
    }
}
