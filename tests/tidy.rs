//! Tidy: rules about the code's shape that a reviewer would otherwise have to remember.
//!
//! - The deterministic core (`src/core/`) does no IO and has no clock or randomness of
//!   its own: it imports no glommio, `std::fs`, `std::net`, `std::time`, `std::thread`,
//!   `std::process`, `std::env`, `rand`, `libc`, `memmap2`, io_uring or tokio.
//! - The top-level modules of each crate's `src/` form no dependency cycle (an edge
//!   `X -> Y` is a `crate::Y` path used in `X` outside test code).
//! - `process::exit` appears only in a `main.rs`: library code fails through its callers.
//! - No mutable process-global state: no `static mut`, no `static` of an atomic, lock,
//!   cell or lazily initialised type.
//! - A function in `src/` longer than [`LONG_FN_LINES`] lines says why in a comment that
//!   starts with `Long because` (in its docs or its body).
//!
//! Each rule's checker is tested on a small input that breaks it, so a rule that stopped
//! seeing anything would fail here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines from `fn` to its closing brace above which a function must say why it is long.
const LONG_FN_LINES: usize = 100;

const CRATE_SRC_DIRS: [&str; 5] = ["src", "bench/src", "storage/src", "net/src", "tuning/src"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether a file holds only tests (by the project's naming).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// `text` without `//` comments, string literals' contents, and `#[cfg(test)]` items
/// (a module or function, found by brace matching). Line structure is kept, so line
/// numbers still point into the original.
fn code_only(text: &str) -> String {
    let without_comments = strip_comments_and_strings(text);
    let mut out = String::with_capacity(without_comments.len());
    let bytes = without_comments.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if without_comments[i..].starts_with("#[cfg(test)]") {
            // Skip to the item's opening brace (or `;` for a `mod x;` declaration), then
            // to its matching closing brace, keeping newlines.
            let mut j = i;
            while j < bytes.len() && bytes[j] != b'{' && bytes[j] != b';' {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'{' {
                let mut depth = 0usize;
                while j < bytes.len() {
                    match bytes[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            for &b in &bytes[i..j.min(bytes.len())] {
                if b == b'\n' {
                    out.push('\n');
                }
            }
            i = j + 1;
            continue;
        }
        let ch = without_comments[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Blanks `//` and `/* */` comments and the insides of string literals (keeping
/// newlines), so that words in prose or messages never count as code.
fn strip_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        if c == '/' && next == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '"' {
            // A raw string's hashes were already copied; its body ends at the first
            // quote, which is close enough for code that puts no quotes in raw strings.
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                } else if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
            continue;
        }
        if c == '\'' && next != '\0' && chars.get(i + 2) == Some(&'\'') {
            // A char literal such as '"' or '{'.
            out.push_str("' '");
            i += 3;
            continue;
        }
        if c == '\'' && next == '\\' {
            out.push_str("' '");
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether `word` occurs in `line` as a whole path segment or identifier.
fn has_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// What the core must not name, with why.
const CORE_FORBIDDEN: [(&str, &str); 13] = [
    ("glommio", "an executor"),
    ("std::fs", "file IO"),
    ("std::net", "sockets (address values come from core::net)"),
    ("std::time", "a clock (time is passed in)"),
    ("std::thread", "threads"),
    ("std::process", "the process"),
    ("std::env", "the environment"),
    ("rand", "randomness (entropy is passed in)"),
    ("libc", "system calls"),
    ("memmap2", "mappings"),
    ("io_uring", "IO"),
    ("tokio", "an executor"),
    ("Instant", "a clock (time is passed in)"),
];

/// Lines of `text` (a core file) that name something the core must not use.
fn core_violations(text: &str) -> Vec<(usize, String)> {
    let code = code_only(text);
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for (word, why) in CORE_FORBIDDEN {
            if has_word(line, word) {
                out.push((n + 1, format!("`{word}` ({why}): {}", line.trim())));
            }
        }
    }
    out
}

#[test]
fn the_core_does_no_io_and_has_no_clock_or_randomness() {
    let mut found = Vec::new();
    for file in rust_files(&repo().join("src/core")) {
        if is_test_file(&file) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (line, what) in core_violations(&text) {
            found.push(format!("{}:{line}: {what}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "the deterministic core must not use:\n{}",
        found.join("\n")
    );
}

#[test]
fn core_checker_sees_an_io_import() {
    let text = "use std::fs::File;\nfn f() { let _ = rand::random::<u8>(); }\n// std::net in a comment is fine\nlet s = \"glommio in a string is fine\";\n#[cfg(test)]\nmod tests { use std::time::Instant; }\n";
    let v = core_violations(text);
    assert_eq!(
        v.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![1, 2],
        "{v:?}"
    );
}

/// The top-level module graph of a crate's `src/`: module -> modules it names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files_of: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        if first == "main.rs" || first == "lib.rs" || is_test_file(rel) {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_string();
        files_of.entry(module).or_default().push(file);
    }
    let modules: BTreeSet<String> = files_of.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, files) in &files_of {
        let mut uses = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(f).expect("read a source file");
            uses.extend(crate_paths(&code_only(&text)));
        }
        uses.retain(|m: &String| m != module && modules.contains(m));
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The first segments of every `crate::x` path in `code`, including `crate::{x, y::z}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut found = Vec::new();
    for dir in CRATE_SRC_DIRS {
        let graph = module_graph(&repo().join(dir));
        for c in cycles(&graph) {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| {
                    graph[m]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(move |t| format!("{m}->{t}"))
                })
                .collect();
            found.push(format!("{dir}: {} ({})", c.join(", "), edges.join("; ")));
        }
    }
    assert!(
        found.is_empty(),
        "module dependency cycles (arrows should point one way):\n{}",
        found.join("\n")
    );
}

#[test]
fn cycle_checker_sees_a_cycle() {
    let code = "use crate::{b, c::D};\nfn f() { crate::a::g(); }\n#[cfg(test)]\nmod tests { use crate::z; }";
    assert_eq!(
        crate_paths(&code_only(code))
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["a", "b", "c"]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |g: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "server", "shard");
    edge(&mut g, "shard", "core");
    assert!(cycles(&g).is_empty());
    edge(&mut g, "core", "server");
    assert_eq!(cycles(&g), vec![vec!["core", "server", "shard"]]);
}

/// Files of every crate's `src/` with their text, test files left out.
fn library_sources() -> Vec<(PathBuf, String)> {
    CRATE_SRC_DIRS
        .iter()
        .flat_map(|d| rust_files(&repo().join(d)))
        .filter(|f| !is_test_file(f))
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read a source file");
            (f, text)
        })
        .collect()
}

#[test]
fn process_exit_only_in_main() {
    let mut found = Vec::new();
    for (file, text) in library_sources() {
        if file.file_name().is_some_and(|n| n == "main.rs") {
            continue;
        }
        for (n, line) in code_only(&text).lines().enumerate() {
            if line.contains("process::exit") {
                found.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "process::exit outside main.rs (fail through the caller instead):\n{}",
        found.join("\n")
    );
}

/// Types whose `static` is mutable process-global state.
const MUTABLE_STATIC_TYPES: [&str; 10] = [
    "Atomic",
    "Mutex",
    "RwLock",
    "OnceLock",
    "OnceCell",
    "LazyLock",
    "Lazy",
    "Cell",
    "RefCell",
    "UnsafeCell",
];

fn mutable_statics(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (n, line) in code_only(text).lines().enumerate() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        let Some(decl) = t.strip_prefix("static ") else {
            continue;
        };
        let ty = decl.split_once(':').map(|(_, ty)| ty).unwrap_or("");
        if decl.starts_with("mut ")
            || MUTABLE_STATIC_TYPES.iter().any(|m| {
                ty.split(|c: char| !c.is_alphanumeric())
                    .any(|w| w.starts_with(m))
            })
        {
            out.push(n + 1);
        }
    }
    out
}

#[test]
fn no_mutable_process_globals() {
    let mut found = Vec::new();
    for (file, text) in library_sources() {
        for n in mutable_statics(&text) {
            found.push(format!("{}:{n}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "mutable process-global statics (pass state in instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn mutable_static_checker_sees_one() {
    let text = "static A: AtomicU64 = AtomicU64::new(0);\nstatic B: &str = \"x\";\npub static mut C: u8 = 0;\nstatic D: std::sync::OnceLock<u8> = OnceLock::new();\n#[cfg(test)]\nmod t { static E: AtomicU8 = AtomicU8::new(0); }";
    assert_eq!(mutable_statics(text), vec![1, 3, 4]);
}

/// Functions longer than [`LONG_FN_LINES`] whose docs and body have no `Long because`
/// comment: (first line, length).
fn long_functions(text: &str) -> Vec<(usize, usize)> {
    let code = code_only(text);
    let code_lines: Vec<&str> = code.lines().collect();
    let raw_lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in code_lines.iter().enumerate() {
        let t = line.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
        if !is_fn {
            continue;
        }
        // The body: from the first `{` after the signature to its matching `}`.
        let mut depth = 0usize;
        let mut opened = false;
        let mut end = None;
        'lines: for (k, l) in code_lines.iter().enumerate().skip(start) {
            for c in l.chars() {
                match c {
                    ';' if !opened && depth == 0 => break 'lines,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if opened && depth == 0 {
                            end = Some(k);
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
        }
        let Some(end) = end else { continue };
        let len = end - start + 1;
        if len <= LONG_FN_LINES {
            continue;
        }
        // Docs and attributes right above, then the body.
        let mut first = start;
        while first > 0 {
            let above = raw_lines
                .get(first - 1)
                .map(|l| l.trim_start())
                .unwrap_or("");
            if above.starts_with("///") || above.starts_with("//") || above.starts_with("#[") {
                first -= 1;
            } else {
                break;
            }
        }
        let says_why = raw_lines[first..=end.min(raw_lines.len() - 1)]
            .iter()
            .any(|l| l.contains("Long because"));
        if !says_why {
            out.push((start + 1, len));
        }
    }
    out
}

#[test]
fn long_functions_say_why() {
    let mut found = Vec::new();
    for (file, text) in library_sources() {
        if !file.starts_with(repo().join("src")) {
            continue;
        }
        for (line, len) in long_functions(&text) {
            found.push(format!("{}:{line}: {len} lines", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "functions over {LONG_FN_LINES} lines without a `Long because` comment saying why:\n{}",
        found.join("\n")
    );
}

#[test]
fn long_function_checker_sees_one() {
    let body: String = (0..LONG_FN_LINES)
        .map(|i| format!("    let x{i} = {i};\n"))
        .collect();
    let text = format!("fn short() {{}}\nfn long() {{\n{body}}}\n/// Long because it is a table.\nfn excused() {{\n{body}}}\n");
    assert_eq!(long_functions(&text), vec![(2, LONG_FN_LINES + 2)]);
}
