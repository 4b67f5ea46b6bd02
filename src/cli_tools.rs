//! The offline tools' subcommands (`export`, `dump-log`, `dump-snapshot`, `verify`,
//! `digest`): argument handling, progress bars and exit codes around the library's
//! `ferrokeeper::tools`. Part of the binary, not the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferrokeeper::tools::{datadir, export, inspect};

/// Where a ferrokeeper server keeps its data: what every tool reads.
#[derive(Debug, clap::Args)]
pub struct DataDirArgs {
    /// The server's dataDir (holding ferrokeeper/snap and, unless dataLogDir is set,
    /// ferrokeeper/log).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The server's dataLogDir, when its log is kept apart.
    #[arg(long, value_name = "DIR")]
    pub data_log_dir: Option<PathBuf>,
    /// Read TTL owners as session ids (the server ran with extendedTypesEnabled=false).
    #[arg(long)]
    pub no_extended_types: bool,
}

/// `ferrokeeper export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// The Apache ZooKeeper dataDir to write `version-2/snapshot.<zxid>` into (created if
    /// missing; refused if it already holds snapshots or logs).
    #[arg(long, value_name = "OUT")]
    pub zookeeper_data_dir: PathBuf,
}

/// A spinner or bar on a terminal; nothing on a pipe or file, where the final line says
/// what was done.
fn bar(len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            "[{bar:20}] {percent:>3}% {pos}/{len} {msg} {elapsed}, ~{eta} left",
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            "{spinner} {pos} {msg} {elapsed}",
        ),
    };
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("#>-");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

fn load(args: &DataDirArgs) -> Result<datadir::Recovered, String> {
    let spinner = bar(None, "txns replayed");
    let r = datadir::load(
        &args.data_dir,
        args.data_log_dir.as_deref(),
        !args.no_extended_types,
        &mut |n| spinner.set_position(n),
    );
    spinner.finish_and_clear();
    let r = r.map_err(|e| e.to_string())?;
    for rejected in &r.rejected {
        eprintln!("snapshot rejected: {}", rejected.reason);
    }
    Ok(r)
}

/// `ferrokeeper export`: returns the exit code.
pub fn export(args: &ExportArgs) -> i32 {
    match try_export(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferrokeeper export: {e}");
            1
        }
    }
}

fn try_export(args: &ExportArgs) -> Result<(), String> {
    let started = Instant::now();
    let out_dir = args.zookeeper_data_dir.join("version-2");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| format!("{}: {e}", p.display())
    };
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    // Java starts from its newest snapshot and replays every later log: anything already
    // there would be mixed with the export.
    for entry in std::fs::read_dir(&out_dir).map_err(io(&out_dir))? {
        let name = entry.map_err(io(&out_dir))?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snapshot.") || name.starts_with("log.") {
            return Err(format!(
                "{} already holds ZooKeeper data ({name}); refusing to mix the export with it",
                out_dir.display()
            ));
        }
    }
    let r = load(&args.data)?;
    let name = export::snapshot_file_name(r.state.last_zxid);
    let target = out_dir.join(&name);
    // A name ZooKeeper does not take for a snapshot, so that an interrupted export is
    // never loaded.
    let temp = out_dir.join(format!(".ferrokeeper-export.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&temp).map_err(io(&temp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let progress = bar(Some(r.state.tree.len() as u64), "znodes written");
    let written = export::write_zookeeper_snapshot_with(&r.state, &mut w, &mut |done, _| {
        progress.set_position(done)
    });
    progress.finish_and_clear();
    let summary = written.map_err(io(&temp))?;
    let file = w
        .into_inner()
        .map_err(|e| format!("{}: {}", temp.display(), e.error()))?;
    file.sync_all().map_err(io(&temp))?;
    std::fs::rename(&temp, &target).map_err(io(&target))?;
    std::fs::File::open(&out_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&out_dir))?;
    eprintln!(
        "exported zxid 0x{:x} ({} txns replayed after snapshot 0x{:x}): {} znodes, {} sessions, {} ACL lists, digest {}; wrote {} ({} bytes) in {:?}",
        summary.zxid,
        r.txns_replayed,
        r.snapshot_zxid,
        summary.nodes,
        summary.sessions,
        summary.acl_lists,
        summary.digest,
        target.display(),
        summary.bytes,
        started.elapsed()
    );
    Ok(())
}

/// `ferrokeeper dump-log DIR`: returns the exit code.
pub fn dump_log(dir: &Path) -> i32 {
    let log_dir = inspect::resolve_log_dir(dir);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let spinner = bar(None, "txns");
    let r = inspect::dump_log(&log_dir, &mut out, &mut |n| spinner.set_position(n));
    spinner.finish_and_clear();
    let flushed = out.flush();
    match (r, flushed) {
        (Ok(_), Ok(())) => 0,
        (Err(e), _) => {
            eprintln!("ferrokeeper dump-log: {e}");
            1
        }
        (_, Err(e)) => {
            eprintln!("ferrokeeper dump-log: writing the output: {e}");
            1
        }
    }
}

/// `ferrokeeper dump-snapshot PATH`: a snapshot file, or a data directory (its
/// recovered state: newest snapshot plus log). Returns the exit code.
pub fn dump_snapshot(path: &Path, no_extended_types: bool) -> i32 {
    let state = if path.is_dir() {
        load(&DataDirArgs {
            data_dir: path.to_path_buf(),
            data_log_dir: None,
            no_extended_types,
        })
        .map(|r| r.state)
    } else {
        inspect::open_snapshot_file(path, !no_extended_types).map_err(|e| e.to_string())
    };
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferrokeeper dump-snapshot: {e}");
            return 1;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match inspect::dump_state(&state, &mut out).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ferrokeeper dump-snapshot: writing the output: {e}");
            1
        }
    }
}

/// `ferrokeeper verify`: prints one line per check; exit code 1 if any failed.
pub fn verify(args: &DataDirArgs) -> i32 {
    let spinner = bar(None, "log records checked");
    let v = inspect::verify(
        &args.data_dir,
        args.data_log_dir.as_deref(),
        !args.no_extended_types,
        &mut |n| spinner.set_position(n),
    );
    spinner.finish_and_clear();
    for line in &v.lines {
        println!("{line}");
    }
    if v.ok {
        0
    } else {
        1
    }
}

/// `ferrokeeper digest`: the tree digest at the last zxid, computed over every node.
pub fn digest(args: &DataDirArgs) -> i32 {
    match load(args) {
        Ok(r) => {
            let computed = ferrokeeper::core::digest::of_tree(&r.state.tree);
            println!(
                "zxid 0x{:x} digest {computed} (digest version {}, {} znodes)",
                r.state.last_zxid,
                ferrokeeper::core::digest::DIGEST_VERSION,
                r.state.tree.len()
            );
            if computed != r.state.digest {
                eprintln!(
                    "ferrokeeper digest: replay kept {} but the tree gives {computed}",
                    r.state.digest
                );
                return 1;
            }
            0
        }
        Err(e) => {
            eprintln!("ferrokeeper digest: {e}");
            1
        }
    }
}
