//! JSON as ZooKeeper's AdminServer writes it: Jackson's `DefaultPrettyPrinter`.
//!
//! Objects put each field on its own line, indented two spaces per level of object
//! nesting, as `"key" : value`; arrays stay on one line as `[ a, b ]` (an object inside
//! one still breaks its fields onto lines); empty ones print as `{ }` and `[ ]`. Numbers
//! are Java's: integers as they are, doubles as `Double.toString` prints them.
//!
//! A hand-written printer rather than serde_json: the layout must match Jackson's byte
//! for byte, and field order is the order ZooKeeper's `LinkedHashMap` keeps, including
//! its rule that putting an existing key again keeps the key's first position.

use std::fmt::Write as _;

use super::java_fmt::java_double;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A Java `int` or `long`.
    Int(i64),
    /// A Java `double`.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in insertion order.
    Object(JsonMap),
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        // Counters never reach 2^63; saturate rather than wrap if one did.
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(i64::from(v))
    }
}
impl From<u32> for Json {
    fn from(v: u32) -> Json {
        Json::Int(i64::from(v))
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}
impl From<JsonMap> for Json {
    fn from(v: JsonMap) -> Json {
        Json::Object(v)
    }
}
impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Json {
        Json::Array(v)
    }
}

/// An object's fields in insertion order, with Java `LinkedHashMap.put` semantics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonMap {
    fields: Vec<(String, Json)>,
}

impl JsonMap {
    /// An empty object.
    pub fn new() -> JsonMap {
        JsonMap::default()
    }

    /// Sets `key`: a new key goes last, an existing one keeps its place.
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Json>) {
        let key = key.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.fields.push((key, value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl Json {
    /// The value as Jackson's default pretty printer writes it.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, 0);
        out
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, v: &Json, level: usize) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Json::Float(x) => out.push_str(&java_double(*x)),
        Json::Str(s) => write_string(out, s),
        Json::Array(items) => {
            if items.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, level);
            }
            out.push_str(" ]");
        }
        Json::Object(map) => {
            if map.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                indent(out, level + 1);
                write_string(out, k);
                out.push_str(" : ");
                write_value(out, v, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
    }
}

/// A JSON string with Jackson's escapes: quote, backslash and control characters; other
/// characters (including `/` and non-ASCII) as they are.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of ZooKeeper 3.8.0's `/commands/connections` with one client
    /// (captured from the Debian package's AdminServer).
    #[test]
    fn nested_objects_in_arrays_indent_like_jackson() {
        let mut conn = JsonMap::new();
        conn.put("remote_socket_address", "127.0.0.1:52016");
        conn.put("interest_ops", 1i64);
        let mut root = JsonMap::new();
        root.put("connections", vec![Json::Object(conn)]);
        root.put("secure_connections", Vec::<Json>::new());
        root.put("command", "connections");
        root.put("error", Json::Null);
        assert_eq!(
            Json::Object(root).pretty(),
            "{\n  \"connections\" : [ {\n    \"remote_socket_address\" : \"127.0.0.1:52016\",\n    \
             \"interest_ops\" : 1\n  } ],\n  \"secure_connections\" : [ ],\n  \"command\" : \
             \"connections\",\n  \"error\" : null\n}"
        );
    }

    #[test]
    fn put_keeps_the_first_position_and_maps_print_empty() {
        let mut m = JsonMap::new();
        m.put("error", "server is not initialized");
        m.put("command", "leader");
        m.put("error", "server is not initialized");
        m.put("empty", JsonMap::new());
        m.put("avg", 0.0);
        m.put("list", vec![Json::Int(1), Json::Int(2)]);
        m.put("text", "a\"b\\c\nd\u{1}/é");
        assert_eq!(
            Json::Object(m).pretty(),
            "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\",\n  \
             \"empty\" : { },\n  \"avg\" : 0.0,\n  \"list\" : [ 1, 2 ],\n  \
             \"text\" : \"a\\\"b\\\\c\\nd\\u0001/é\"\n}"
        );
    }
}
