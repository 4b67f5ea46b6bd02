//! Cross-client smoke tests: ZooKeeper's own client tools and a third-party client
//! library, each in its language, against a server started by the harness.
//!
//! - Python's kazoo with its recipes (lock, election, barriers, queues, counter) and
//!   the basics under them: `tests/cross/kazoo_recipes.py`, which checks itself.
//! - The Java shell `zkCli.sh`, fed one session's commands on stdin:
//!   `tests/cross/zkcli.txt`.
//! - The C shell `cli_mt`, one process (so one session) per command:
//!   `tests/cross/cli_mt.txt`.
//!
//! Every check runs against Apache ZooKeeper (`*_java`: the reference, these must
//! always pass, so a failure there is a bug in the test) and against ferrokeeper
//! (`*_ferrokeeper`). The clients come from Debian's `zookeeper`, `zookeeper-bin` and
//! PyPI's `kazoo`; `tests/run.sh` installs them.
//!
//! ## Transcripts
//!
//! A transcript is a text file of commands and the output each must print:
//!
//! ```text
//! # A comment.
//! > create /a data        a command; `{server}` is replaced by host:port
//! Created /a              its output lines, in order, after dropping client noise
//! > ls /
//! ~ a                     lines marked `~ ` match the same count of lines in any order
//! ~ zookeeper               (for child lists the server returns unsorted)
//! cZxid = 0x*             `*` matches any run of characters
//! ```
//!
//! Lines are compared with their whitespace trimmed and inner runs of whitespace
//! collapsed to one space, so the C shell's tabs need not be written.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Kind, Server};

/// The Java shell, from Debian's `zookeeper` package.
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// The C shell (multi-threaded C client), from Debian's `zookeeper-bin` package.
const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
/// How long one client process may run before the test gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one `cli_mt -c` command may run (it is one round trip).
const CLI_MT_COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

fn cross_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cross")
}

// ------------------------------------------------------------------ tests

#[test]
fn kazoo_recipes_java() {
    kazoo_recipes(Kind::JavaZk);
}

#[test]
fn kazoo_recipes_ferrokeeper() {
    kazoo_recipes(Kind::Ferrokeeper);
}

#[test]
fn zkcli_java() {
    zkcli(Kind::JavaZk);
}

#[test]
fn zkcli_ferrokeeper() {
    zkcli(Kind::Ferrokeeper);
}

#[test]
fn cli_mt_java() {
    cli_mt(Kind::JavaZk);
}

#[test]
fn cli_mt_ferrokeeper() {
    cli_mt(Kind::Ferrokeeper);
}

// ------------------------------------------------------------------ drivers

/// Runs the kazoo script against a fresh server of `kind`; the script prints one
/// line per check and exits non-zero if any failed.
fn kazoo_recipes(kind: Kind) {
    let server = Server::start(kind, &[]);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = Command::new(&python);
    command
        .arg("-u")
        .arg(cross_dir().join("kazoo_recipes.py"))
        .arg(server.address());
    let run = run_client(&server, "kazoo", command, "", CLIENT_TIMEOUT);
    assert!(
        run.success,
        "kazoo checks against {kind:?} failed ({python}):\n{}\n--- server log ---\n{}",
        run.output,
        server_log_tail(&server)
    );
    print!("{}", run.output);
}

/// Feeds every command of `zkcli.txt` to one `zkCli.sh` session on stdin.
///
/// The shell prints nothing between commands, and its stdout and stderr are separate
/// streams, so each command is followed by `version`, which prints a known line
/// without asking the server: the output splits into one block per command there.
fn zkcli(kind: Kind) {
    let server = Server::start(kind, &[]);
    let steps = load_transcript("zkcli.txt", &server.address());
    let mut input = String::new();
    for step in &steps {
        input.push_str(&step.command);
        input.push_str("\nversion\n");
    }
    input.push_str("quit\n");
    let mut command = Command::new(ZKCLI);
    command.arg("-server").arg(server.address());
    let run = run_client(&server, "zkcli", command, &input, CLIENT_TIMEOUT);

    let mut blocks = vec![Vec::new()];
    let output = without_connection_events(&run.output);
    for line in output.lines().filter(|l| !is_zkcli_noise(l)) {
        if line.starts_with("ZooKeeper CLI version:") {
            blocks.push(Vec::new());
        } else {
            blocks
                .last_mut()
                .expect("never empty")
                .push(normalize(line));
        }
    }
    // After the last `version` comes only `quit`, which prints nothing of its own.
    let trailing = blocks.pop().expect("never empty");
    let mut report = compare("zkcli.txt", &steps, &blocks);
    if !trailing.is_empty() {
        report.push_str(&format!(
            "unexpected output after the last command: {trailing:?}\n"
        ));
    }
    assert!(
        report.is_empty(),
        "zkCli.sh against {kind:?}:\n{report}\n--- zkCli output ---\n{}\n--- server log ---\n{}",
        run.output,
        server_log_tail(&server)
    );
}

/// zkCli.sh's output without what its default watcher printed for connection-state
/// events. The watcher runs on the client's event thread and prints "\nWATCHER::" and
/// "\nWatchedEvent ..." each as one line; after `connect` that can land between the
/// "[" and the names of an `ls` answer, which zkCli.sh writes in pieces (CI, session 13).
fn without_connection_events(output: &str) -> String {
    let mut rest = output;
    let mut kept = String::with_capacity(output.len());
    loop {
        let watcher = rest
            .find("\nWATCHER::\n")
            .map(|at| (at, "\nWATCHER::\n".len()));
        let event = rest.find("\nWatchedEvent state:").and_then(|at| {
            let line = &rest[at + 1..];
            let end = line.find('\n')?;
            line[..end].contains("type:None").then_some((at, end + 2))
        });
        let next = match (watcher, event) {
            (Some(w), Some(e)) => Some(w.min(e)),
            (w, e) => w.or(e),
        };
        let Some((at, len)) = next else {
            kept.push_str(rest);
            return kept;
        };
        kept.push_str(&rest[..at]);
        rest = &rest[at + len..];
    }
}

/// Lines zkCli.sh prints whatever the server does: logging, banners, and the
/// connection-state events of its default watcher.
fn is_zkcli_noise(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || line.starts_with("SLF4J:")
        || line.starts_with("Connecting to ")
        || line == "Welcome to ZooKeeper!"
        || line.starts_with("JLine support is")
        || line == "WATCHER::"
        || (line.starts_with("WatchedEvent state:") && line.contains("type:None"))
}

/// Runs each command of `cli_mt.txt` as its own `cli_mt -c` process, so each is its
/// own session: an ephemeral node lives exactly as long as the command that made it.
///
/// `cli_mt -c` waits for the reply and exits 0 whatever the reply was (it prints the
/// error code instead), and it writes everything to stderr. Its interactive mode is
/// no use for a test: it sends requests without waiting, and stdin's end closes the
/// session before the replies come.
fn cli_mt(kind: Kind) {
    let server = Server::start(kind, &[]);
    let steps = load_transcript("cli_mt.txt", &server.address());
    let mut blocks = Vec::new();
    let mut outputs = String::new();
    for step in &steps {
        let mut command = Command::new(CLI_MT);
        command
            .arg("-h")
            .arg(server.address())
            .arg("-c")
            .arg(&step.command);
        let run = run_client(&server, "cli_mt", command, "", CLI_MT_COMMAND_TIMEOUT);
        outputs.push_str(&format!("$ cli_mt -c '{}'\n{}", step.command, run.output));
        blocks.push(
            run.output
                .lines()
                .filter(|l| !is_cli_mt_noise(l))
                .map(normalize)
                .collect(),
        );
    }
    let report = compare("cli_mt.txt", &steps, &blocks);
    assert!(
        report.is_empty(),
        "cli_mt against {kind:?}:\n{report}\n--- cli_mt output ---\n{outputs}\n--- server log ---\n{}",
        server_log_tail(&server)
    );
}

/// Lines cli_mt prints whatever the server does. `time = N msec` is a latency (and in
/// `-c` mode often garbage, measured from an unset start time).
fn is_cli_mt_noise(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || line.starts_with("Batch mode:")
        || line.starts_with("Watcher SESSION_EVENT")
        || line.starts_with("Got a new session id:")
        || (line.starts_with("time = ") && line.ends_with(" msec"))
}

// ------------------------------------------------------------------ processes

struct ClientRun {
    success: bool,
    /// stdout and stderr interleaved as written (both go to one file).
    output: String,
}

/// Runs a client process with `input` on stdin and its stdout and stderr in one file
/// under the server's temp dir; kills it and fails the test after `limit`.
fn run_client(
    server: &Server,
    name: &str,
    mut command: Command,
    input: &str,
    limit: Duration,
) -> ClientRun {
    let out_path = server.dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&out_path).expect("create client output file");
    let err = out.try_clone().expect("clone client output file");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {command:?}: {e} (tests/run.sh installs the clients)")
        });
    {
        // Dropping stdin at the end of this block is the client's end of input.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(input.as_bytes())
            .expect("write client stdin");
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {limit:?}; output so far:\n{}\n--- server log ---\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                server_log_tail(server)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ClientRun {
        success: status.success(),
        output: std::fs::read_to_string(&out_path).expect("read client output"),
    }
}

/// The end of the server's log, enough to see what it made of the last requests
/// (Java ZooKeeper's start-up alone logs some hundred lines).
fn server_log_tail(server: &Server) -> String {
    const LINES_MAX: usize = 60;
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    let skipped = lines.len().saturating_sub(LINES_MAX);
    let mut tail = String::new();
    if skipped > 0 {
        tail.push_str(&format!(
            "({skipped} earlier lines in {})\n",
            server.dir.join("server.log").display()
        ));
    }
    for line in &lines[skipped..] {
        tail.push_str(line);
        tail.push('\n');
    }
    tail
}

// ------------------------------------------------------------------ transcripts

/// One command of a transcript and the output it must print.
struct Step {
    /// 1-based line of the command in its file, for failure reports.
    line_no: usize,
    command: String,
    expected: Vec<String>,
}

fn load_transcript(file: &str, address: &str) -> Vec<Step> {
    let path = cross_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut steps: Vec<Step> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(command) = line.strip_prefix("> ") {
            steps.push(Step {
                line_no: i + 1,
                command: command.replace("{server}", address),
                expected: Vec::new(),
            });
        } else {
            let step = steps.last_mut().unwrap_or_else(|| {
                panic!("{file}:{}: output line before the first command", i + 1)
            });
            step.expected.push(normalize(line));
        }
    }
    assert!(!steps.is_empty(), "{file} has no commands");
    steps
}

/// Trims and collapses runs of whitespace to one space.
fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Compares each step's expected lines with the block its command printed; returns a
/// report of every mismatch (empty when all match).
fn compare(file: &str, steps: &[Step], blocks: &[Vec<String>]) -> String {
    let mut report = String::new();
    if blocks.len() != steps.len() {
        report.push_str(&format!(
            "{file}: {} commands but {} output blocks (a command's output was lost or split)\n",
            steps.len(),
            blocks.len()
        ));
    }
    for (step, actual) in steps.iter().zip(blocks) {
        if !block_matches(&step.expected, actual) {
            report.push_str(&format!(
                "{file}:{}: `{}`\n  expected:\n{}  actual:\n{}",
                step.line_no,
                step.command,
                indent(&step.expected),
                indent(actual)
            ));
        }
    }
    report
}

fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return "    (nothing)\n".into();
    }
    lines.iter().map(|l| format!("    {l}\n")).collect()
}

/// Expected lines match actual lines one for one, in order, except that a run of
/// `~ ` lines matches the same number of actual lines as a multiset (literally, no
/// `*`).
fn block_matches(expected: &[String], actual: &[String]) -> bool {
    let mut e = 0;
    let mut a = 0;
    while e < expected.len() {
        if expected[e].starts_with("~ ") {
            let run = expected[e..]
                .iter()
                .take_while(|l| l.starts_with("~ "))
                .count();
            if a + run > actual.len() {
                return false;
            }
            let mut want: Vec<&str> = expected[e..e + run].iter().map(|l| &l[2..]).collect();
            let mut got: Vec<&str> = actual[a..a + run].iter().map(String::as_str).collect();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                return false;
            }
            e += run;
            a += run;
        } else {
            if a >= actual.len() || !glob_matches(&expected[e], &actual[a]) {
                return false;
            }
            e += 1;
            a += 1;
        }
    }
    a == actual.len()
}

/// `*` in `pattern` matches any run of characters (including none); everything else
/// matches itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // No `*` at all: exact match.
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[test]
fn glob_and_block_matching() {
    assert!(glob_matches("abc", "abc"));
    assert!(!glob_matches("abc", "abcd"));
    assert!(glob_matches("cZxid = 0x*", "cZxid = 0x1f"));
    assert!(glob_matches("a*c*e", "abcde"));
    assert!(glob_matches("a*", "a"));
    assert!(!glob_matches("a*b*b", "ab"));
    assert!(!glob_matches("*x", "y"));
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(block_matches(
        &lines(&["rc = 0", "~ b", "~ a", "end"]),
        &lines(&["rc = 0", "a", "b", "end"])
    ));
    assert!(!block_matches(&lines(&["~ a", "~ a"]), &lines(&["a", "b"])));
    assert!(!block_matches(&lines(&["x"]), &lines(&["x", "extra"])));
    assert!(!block_matches(&lines(&["x", "y"]), &lines(&["x"])));
}

#[test]
fn connection_events_are_cut_out_even_mid_line() {
    let event = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n";
    assert_eq!(
        without_connection_events(&format!("[{event}a, b]\nnext\n")),
        "[a, b]\nnext\n"
    );
    assert_eq!(
        without_connection_events(&format!("Created /x\n{event}one\n")),
        "Created /x\none\n"
    );
    let data = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/x\n";
    assert_eq!(
        without_connection_events(&format!("a{data}b")),
        "a\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/x\nb"
    );
}
