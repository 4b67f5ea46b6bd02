//! `ferrokeeper [-Dkey=value ...] [zoo.cfg]`: runs the server with ZooKeeper's config file,
//! or with the embedded default (port 2181, data under ./data) when no file is given. `-D`
//! flags, and those in `$SERVER_JVMFLAGS` and `$JVMFLAGS`, are Java system properties as
//! `zkServer.sh` passes them to ZooKeeper (see `ferrokeeper::config`).
//!
//! `ferrokeeper import --zookeeper-data-dir DIR [--zookeeper-log-dir DIR] [--data-dir OUT]`:
//! imports an Apache ZooKeeper 3.5–3.9 data directory and writes it as a ferrokeeper
//! snapshot under OUT (default `./data`, the embedded default's data directory).
//!
//! SIGTERM and SIGINT stop the server cleanly (exit code 0, the log synced); under systemd
//! it reports readiness (`Type=notify`, see `tuning/systemd/ferrokeeper.service`).
//!
//! Offline tools on a ferrokeeper data directory (read only; `cli_tools`): `export`
//! (an Apache ZooKeeper 3.8/3.9 snapshot, the way back), `dump-log`, `dump-snapshot`,
//! `verify`, `digest`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod cli_tools;

use clap::{Parser, Subcommand};
use ferrokeeper::config::{Config, SystemProperties};
use ferrokeeper::import::ImportProgress;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the heap in 4 KiB pages. mimalloc 3 asks for transparent huge pages on its
/// arenas (`allow_thp`), so every 2 MiB region it touches becomes resident whole: an idle
/// server held 59 MiB of heap in huge pages where 4 KiB pages hold 34 MiB (measured with
/// `MIMALLOC_ALLOW_THP=0`, /proc/PID/smaps_rollup `AnonHugePages`, issue #13). The flag is
/// the kernel's, checked at each fault, so calling it first thing in `main` covers the
/// heap from then on; the pages mimalloc touched before `main` were still two huge pages
/// (4 MiB of an idle server's 12 MiB of anonymous memory), so mimalloc is also built
/// without its huge-page advice (`no_thp` in Cargo.toml). A failure (an old kernel)
/// changes nothing but the footprint.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "ferrokeeper: cannot disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A ZooKeeper-compatible coordination server.
#[derive(Debug, Parser)]
#[command(
    name = "ferrokeeper",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "With no zoo.cfg: port 2181, data under ./data.\n\
                  System properties are also read from $SERVER_JVMFLAGS and $JVMFLAGS \
                  (in that order, before the command line's), as zkServer.sh passes them \
                  to ZooKeeper; a zoo.cfg key wins over the property it stands for."
)]
struct Cli {
    /// A Java system property, as ZooKeeper takes it (`-Dzookeeper.maxCnxns=100`).
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// ZooKeeper's configuration file.
    #[arg(value_name = "zoo.cfg")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Imports an Apache ZooKeeper 3.5–3.9 data directory as a ferrokeeper snapshot.
    Import(ImportArgs),
    /// Writes a ferrokeeper data directory as an Apache ZooKeeper 3.8/3.9 snapshot
    /// (`version-2/snapshot.<zxid>`) that Java ZooKeeper starts from.
    Export(cli_tools::ExportArgs),
    /// Prints a ferrokeeper transaction log one txn per line, as ZooKeeper's
    /// TxnLogToolkit prints its logs.
    DumpLog {
        /// The log directory, or the dataDir/dataLogDir holding ferrokeeper/log.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Prints a snapshot (an fk-snap.* file, compressed .zst ones too, or a data
    /// directory's recovered state): every
    /// znode with its stat, ACL and data, then the sessions.
    DumpSnapshot {
        /// The snapshot file or data directory.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Read TTL owners as session ids (extendedTypesEnabled=false).
        #[arg(long)]
        no_extended_types: bool,
    },
    /// Verifies every snapshot and log record of a data directory (checksums, zxid
    /// continuity, digests); exits with 1 if anything is wrong.
    Verify(cli_tools::DataDirArgs),
    /// Prints the tree digest of a data directory's state at its last zxid.
    Digest(cli_tools::DataDirArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// ZooKeeper's dataDir (holding version-2/ with snapshot.* files).
    #[arg(long, value_name = "DIR")]
    zookeeper_data_dir: PathBuf,
    /// ZooKeeper's dataLogDir, when its log.* files are not under the dataDir.
    #[arg(long, value_name = "DIR")]
    zookeeper_log_dir: Option<PathBuf>,
    /// Where to write ferrokeeper's data (the dataDir it will be started with).
    #[arg(long, value_name = "OUT", default_value = "./data")]
    data_dir: PathBuf,
}

fn main() {
    disable_transparent_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(command) = cli.command {
        std::process::exit(match command {
            Command::Import(args) => import(&args),
            Command::Export(args) => cli_tools::export(&args),
            Command::DumpLog { dir } => cli_tools::dump_log(&dir),
            Command::DumpSnapshot {
                path,
                no_extended_types,
            } => cli_tools::dump_snapshot(&path, no_extended_types),
            Command::Verify(args) => cli_tools::verify(&args),
            Command::Digest(args) => cli_tools::digest(&args),
        });
    }
    let flags: Vec<String> = cli.properties.iter().map(|p| format!("-D{p}")).collect();
    let props = SystemProperties::from_env_and_args(flags.iter().map(String::as_str));
    let loaded = match &cli.config {
        Some(path) => Config::load_with(path, &props),
        None => Config::from_properties(&props),
    };
    let config = match loaded {
        Ok((config, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            config
        }
        Err(e) => {
            eprintln!("ferrokeeper: {e}");
            std::process::exit(2);
        }
    };
    raise_open_files_limit();
    if let Err(e) = serve(config) {
        eprintln!("ferrokeeper: {e}");
        std::process::exit(1);
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as the JVM does for Apache
/// ZooKeeper (`-XX:+MaxFDLimit`, on by default on Linux): every client connection is a
/// descriptor, and a soft limit of 1024 (a common default) would refuse connections long
/// before memory runs out.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    tracing::info!(
        open_files_max = lim.rlim_cur,
        "open files limit (RLIMIT_NOFILE)"
    );
}

/// Runs the server until SIGTERM or SIGINT stops it cleanly (then returns `Ok`: exit
/// code 0, every acknowledged write synced) or a part of it fails. Under systemd
/// (`Type=notify`, tuning/systemd/ferrokeeper.service) it reports READY=1 once the
/// client port accepts connections, and STOPPING=1 on the signal.
// The signal thread ends the process on a second signal; only the binary may exit.
#[allow(clippy::exit)]
fn serve(config: Config) -> std::io::Result<()> {
    let running = ferrokeeper::server::start(config)?;
    let stop = running.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    // A second signal while the clean stop is still going: the operator
                    // wants out now. Acknowledged writes are durable already (forceSync).
                    eprintln!("ferrokeeper: signal {signal} again; exiting without waiting");
                    std::process::exit(1);
                }
                tracing::info!(signal, "signal received: stopping cleanly");
                notify("STOPPING=1");
                stop.stop();
            }
        })?;
    if std::env::var_os(ferrokeeper::service::NOTIFY_SOCKET_ENV).is_some() {
        let addr = running.listen_addr();
        std::thread::Builder::new()
            .name("readiness".into())
            .spawn(move || {
                // Bounded by systemd's TimeoutStartSec, which fails the unit if READY
                // never comes; a shard that cannot bind fails the server sooner.
                if ferrokeeper::server::wait_until_serving(addr, Duration::from_secs(3600)) {
                    notify(&format!(
                        "READY=1\nSTATUS=serving on {addr}\nMAINPID={}",
                        std::process::id()
                    ));
                }
            })?;
    }
    running.wait()
}

/// Tells systemd `state`; a failure is logged, never fatal.
fn notify(state: &str) {
    if let Err(e) = ferrokeeper::service::notify(state) {
        tracing::warn!(error = %e, "sd_notify to $NOTIFY_SOCKET failed");
    }
}

/// Shows the import's progress: an `indicatif` bar on a terminal, plain lines (one per
/// 10 % and per phase) when stderr is a file or a pipe, where a redrawn bar would be noise.
enum Progress {
    Bar {
        bar: indicatif::ProgressBar,
        started: Instant,
        /// The last report, for the line left when the bar is cleared.
        last: Option<ImportProgress>,
    },
    Lines {
        started: Instant,
        /// The last percentage step and phase printed.
        last: Option<(u64, String)>,
    },
}

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                started: Instant::now(),
                last: None,
            };
        }
        let bar = indicatif::ProgressBar::new(0);
        // Bar, percent, MiB done and in all, phase, elapsed and time left, in 80 columns
        // (a wrapped line breaks the redraw).
        let style = indicatif::ProgressStyle::with_template(
            "[{bar:20}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg} {elapsed}, \
             ~{eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("#>-");
        bar.set_style(style);
        Progress::Bar {
            bar,
            started: Instant::now(),
            last: None,
        }
    }

    fn update(&mut self, p: &ImportProgress) {
        let phase = format!("{:?}", p.phase);
        match self {
            Progress::Bar { bar, last, .. } => {
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
                bar.set_message(phase);
                *last = Some(*p);
            }
            Progress::Lines { started, last } => {
                let percent = percent(p);
                let step = (percent / 10, phase);
                if last.as_ref() != Some(&step) {
                    eprintln!("{}", plain_line(percent, p, started.elapsed()));
                    *last = Some(step);
                }
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar { bar, started, last } = self {
            // indicatif rate-limits redraws, so a short import can end with a stale frame
            // on screen: clear it and leave the final state as a plain line instead.
            bar.finish_and_clear();
            if let Some(p) = last {
                eprintln!("{}", plain_line(percent(p), p, started.elapsed()));
            }
        }
    }
}

fn percent(p: &ImportProgress) -> u64 {
    (p.bytes_done * 100)
        .checked_div(p.bytes_total)
        .unwrap_or(100)
        .min(100)
}

/// One plain progress line: percent, MiB, phase, elapsed and the time left at the rate so
/// far (the bar's information without the bar).
fn plain_line(percent: u64, p: &ImportProgress, elapsed: Duration) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let left = if p.bytes_done > 0 && p.bytes_total > p.bytes_done {
        let secs =
            elapsed.as_secs_f64() * (p.bytes_total - p.bytes_done) as f64 / p.bytes_done as f64;
        format!(", ~{secs:.0} s left")
    } else {
        String::new()
    };
    format!(
        "importing {percent:3}% {:.1}/{:.1} MiB ({:?}, {:.1} s{left})",
        mib(p.bytes_done),
        mib(p.bytes_total),
        p.phase,
        elapsed.as_secs_f64()
    )
}

/// `ferrokeeper import`: returns the exit code.
fn import(args: &ImportArgs) -> i32 {
    let out = &args.data_dir;
    let ours = out.join("ferrokeeper");
    let has_files = |d: &Path| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some());
    if has_files(&ferrokeeper::snapshot::snap_dir(out))
        || has_files(&ferrokeeper::commit::log::log_dir(out))
    {
        eprintln!(
            "ferrokeeper import: {} already holds ferrokeeper data; refusing to overwrite it",
            ours.display()
        );
        return 1;
    }
    let started = Instant::now();
    let mut shown = Progress::new();
    let mut progress = |p: ImportProgress| shown.update(&p);
    // The snapshot is written from ZooKeeper's records without building the tree on the
    // heap, the logs replayed onto it mapped (issue #13: peak memory of an import).
    let result = ferrokeeper::import::import_zookeeper_to(
        &args.zookeeper_data_dir,
        args.zookeeper_log_dir.as_deref(),
        &ferrokeeper::import::ImportOptions::default(),
        out,
        &mut progress,
    );
    shown.finish();
    let (imported, file) = match result {
        Ok(ferrokeeper::import::ImportedTo {
            imported,
            file: Some(file),
        }) => (imported, file),
        Ok(ferrokeeper::import::ImportedTo {
            imported,
            file: None,
        }) => {
            if let ferrokeeper::import::DigestCheck::Mismatch {
                zxid,
                expected,
                actual,
            } = imported.digest
            {
                eprintln!(
                    "ferrokeeper import: the imported tree differs from ZooKeeper's at zxid 0x{zxid:x} (digest {actual:x}, ZooKeeper recorded {expected:x}); refusing to write it"
                );
            }
            return 1;
        }
        Err(e) => {
            eprintln!("ferrokeeper import: {e}");
            return 1;
        }
    };
    let bytes = file.bytes;
    ferrokeeper::import::log_memory("snapshot written");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_forms() {
        let cli = Cli::try_parse_from([
            "ferrokeeper",
            "-Dzookeeper.maxCnxns=5",
            "-D",
            "a=b",
            "zoo.cfg",
        ])
        .expect("server form");
        assert_eq!(cli.properties, vec!["zookeeper.maxCnxns=5", "a=b"]);
        assert_eq!(cli.config, Some(PathBuf::from("zoo.cfg")));
        let cli = Cli::try_parse_from(["ferrokeeper"]).expect("no arguments");
        assert!(cli.config.is_none() && cli.command.is_none());
        let cli = Cli::try_parse_from(["ferrokeeper", "import", "--zookeeper-data-dir", "/zk"])
            .expect("import form");
        match cli.command {
            Some(Command::Import(a)) => {
                assert_eq!(a.zookeeper_data_dir, PathBuf::from("/zk"));
                assert_eq!(a.data_dir, PathBuf::from("./data"));
                assert!(a.zookeeper_log_dir.is_none());
            }
            _ => panic!("not the import subcommand"),
        }
        assert!(Cli::try_parse_from(["ferrokeeper", "import"]).is_err());
        assert!(Cli::try_parse_from(["ferrokeeper", "a.cfg", "b.cfg"]).is_err());
    }

    #[test]
    fn plain_progress_line_has_the_bar_information() {
        let p = ImportProgress {
            bytes_done: 1 << 20,
            bytes_total: 4 << 20,
            phase: ferrokeeper::import::ImportPhase::Snapshot,
        };
        let line = plain_line(25, &p, Duration::from_secs(2));
        assert_eq!(
            line,
            "importing  25% 1.0/4.0 MiB (Snapshot, 2.0 s, ~6 s left)"
        );
    }
}
