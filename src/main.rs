//! `ferrokeeper [zoo.cfg]`: runs the server with ZooKeeper's config file, or with the
//! embedded default (port 2181, data under ./data) when no file is given.
//!
//! `ferrokeeper import --zookeeper-data-dir DIR [--zookeeper-log-dir DIR] [--data-dir OUT]`:
//! imports an Apache ZooKeeper 3.5–3.9 data directory and writes it as a ferrokeeper
//! snapshot under OUT (default `./data`, the embedded default's data directory).

use std::path::PathBuf;

use ferrokeeper::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("import") {
        std::process::exit(import(&args[1..]));
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: ferrokeeper [path/to/zoo.cfg]\n       ferrokeeper import --zookeeper-data-dir DIR [--zookeeper-log-dir DIR] [--data-dir OUT]\n\nWith no argument: port 2181, data under ./data.");
        return;
    }
    let config = match args.first() {
        Some(p) => match Config::load(&PathBuf::from(p)) {
            Ok((c, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                c
            }
            Err(e) => {
                eprintln!("ferrokeeper: {e}");
                std::process::exit(2);
            }
        },
        None => Config::embedded_default(),
    };
    if let Err(e) = ferrokeeper::server::run(config) {
        eprintln!("ferrokeeper: {e}");
        std::process::exit(1);
    }
}

const IMPORT_USAGE: &str =
    "usage: ferrokeeper import --zookeeper-data-dir DIR [--zookeeper-log-dir DIR] [--data-dir OUT]";

/// `ferrokeeper import`: returns the exit code.
/// One line of the import's progress bar: bar, percent, bytes, phase, elapsed and the
/// time left at the rate so far.
fn progress_bar(
    percent: u64,
    p: &ferrokeeper::import::ImportProgress,
    elapsed: std::time::Duration,
) -> String {
    const WIDTH: u64 = 30;
    let filled = (percent * WIDTH / 100) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled)
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let left = if p.bytes_done > 0 && p.bytes_total > p.bytes_done {
        let secs =
            elapsed.as_secs_f64() * (p.bytes_total - p.bytes_done) as f64 / p.bytes_done as f64;
        format!(", ~{secs:.0} s left")
    } else {
        String::new()
    };
    format!(
        "importing [{bar}] {percent:3}% {:.1}/{:.1} MiB ({:?}, {:.1} s{left})   ",
        mib(p.bytes_done),
        mib(p.bytes_total),
        p.phase,
        elapsed.as_secs_f64()
    )
}

fn import(args: &[String]) -> i32 {
    let mut zk_data = None;
    let mut zk_log = None;
    let mut out = PathBuf::from("./data");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--zookeeper-data-dir" => &mut zk_data,
            "--zookeeper-log-dir" => &mut zk_log,
            "--data-dir" => {
                match it.next() {
                    Some(v) => out = PathBuf::from(v),
                    None => {
                        eprintln!("ferrokeeper import: --data-dir needs a value\n{IMPORT_USAGE}");
                        return 2;
                    }
                }
                continue;
            }
            "-h" | "--help" => {
                println!("{IMPORT_USAGE}");
                return 0;
            }
            other => {
                eprintln!("ferrokeeper import: unknown argument {other}\n{IMPORT_USAGE}");
                return 2;
            }
        };
        match it.next() {
            Some(v) => *slot = Some(PathBuf::from(v)),
            None => {
                eprintln!("ferrokeeper import: {a} needs a value\n{IMPORT_USAGE}");
                return 2;
            }
        }
    }
    let Some(zk_data) = zk_data else {
        eprintln!("ferrokeeper import: --zookeeper-data-dir is required\n{IMPORT_USAGE}");
        return 2;
    };
    let ours = out.join("ferrokeeper");
    let has_files =
        |d: &std::path::Path| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some());
    if has_files(&ferrokeeper::snapshot::snap_dir(&out))
        || has_files(&ferrokeeper::commit::log::log_dir(&out))
    {
        eprintln!(
            "ferrokeeper import: {} already holds ferrokeeper data; refusing to overwrite it",
            ours.display()
        );
        return 1;
    }
    let started = std::time::Instant::now();
    let mut last_percent = u64::MAX;
    let mut progress = |p: ferrokeeper::import::ImportProgress| {
        let percent = (p.bytes_done * 100)
            .checked_div(p.bytes_total)
            .unwrap_or(100)
            .min(100);
        if percent != last_percent {
            last_percent = percent;
            eprint!("\r{}", progress_bar(percent, &p, started.elapsed()));
        }
    };
    let imported =
        match ferrokeeper::import::import_zookeeper(&zk_data, zk_log.as_deref(), &mut progress) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("\nferrokeeper import: {e}");
                return 1;
            }
        };
    eprintln!();
    if let ferrokeeper::import::DigestCheck::Mismatch {
        zxid,
        expected,
        actual,
    } = imported.digest
    {
        eprintln!(
            "ferrokeeper import: the imported tree differs from ZooKeeper's at zxid 0x{zxid:x} (digest {actual:x}, ZooKeeper recorded {expected:x}); refusing to write it"
        );
        return 1;
    }
    let dir = ferrokeeper::snapshot::snap_dir(&out);
    let (file, bytes) = match ferrokeeper::snapshot::write_state(&dir, &imported.state) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("ferrokeeper import: {e}");
            return 1;
        }
    };
    eprintln!(
        "imported zxid 0x{:x}: {} znodes, {} sessions, {} txns replayed after ZooKeeper snapshot 0x{:x}, digest {:?}; wrote {} ({bytes} bytes) in {:?}",
        imported.last_zxid,
        imported.state.tree.len(),
        imported.state.sessions.len(),
        imported.txns_replayed,
        imported.snapshot_zxid,
        imported.digest,
        file.path.display(),
        started.elapsed()
    );
    0
}
