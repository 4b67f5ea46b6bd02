//! # import — an Apache ZooKeeper 3.5–3.9 data directory into ferrokeeper's state
//!
//! [`import_zookeeper`] reads `dataDir/version-2` (and `dataLogDir/version-2` when the
//! logs live apart) the way ZooKeeper's own startup does (`FileTxnSnapLog.restore`):
//!
//! 1. **Snapshot.** The newest `snapshot.<hex zxid>[.gz|.snappy]` that passes ZooKeeper's
//!    quick check (`SnapStream.isValidSnapshot`) and parses with matching Adler32 seals;
//!    a bad one is reported and the next older one tried, up to 100 (`FileSnap`).
//!    [`snapshot`] parses; [`replay::Loader`] builds the [`DataState`]: every znode with
//!    its stat, data and ACL, children rebuilt from the paths, the ephemeral, container
//!    and TTL indexes, and the sessions with their timeouts.
//! 2. **Log replay.** Every txn of `log.<hex zxid>` with a zxid above the snapshot's, in
//!    order across files (`FileTxnLog.getLogFiles` picks the files), checksums verified
//!    ([`txnlog`]), converted to a ferrokeeper [`TxnOp`](crate::core::txn::TxnOp) and
//!    applied with [`apply`](crate::core::apply::apply), with ZooKeeper's replay
//!    tolerance for a fuzzy snapshot ([`replay`] lists the rules).
//! 3. **Checks.** The tree digest ZooKeeper logs with each txn (3.6+) is compared with
//!    the imported tree's ([`DigestCheck`]); ephemerals of sessions that no longer exist
//!    are deleted, as `ZooKeeperServer.loadData` does.
//!
//! The byte layouts are documented, with named constants, in [`mod@format`], [`snapshot`]
//! and [`txnlog`]. [`stream`] reads one snapshot held in memory (the AdminServer's
//! `restore` body) the same way.
//!
//! ## Decisions
//!
//! - **Session passwords.** ZooKeeper stores none: it derives each one from the session
//!   id with `java.util.Random` and a secret that is a constant in the source
//!   (`ZooKeeperServer.generatePasswd`). [`password`] reproduces it, so every imported
//!   session carries the password its client already holds, and a client can reattach
//!   to ferrokeeper after the switch if it does so within its session timeout.
//! - **Errors and ZooKeeper's leniency.** A torn final record ends a log file (ZooKeeper
//!   does the same, for any file); a complete record with a bad checksum is an error. A
//!   zxid that goes backwards, or skips within an epoch, is an error ([`ImportError::LogGap`]):
//!   ZooKeeper would replay on and lose txns silently, an import should not.
//! - **Digest mismatch** is reported, not raised, as ZooKeeper only logs it: the caller
//!   decides (a migration should stop on [`DigestCheck::Mismatch`]).
//! - **Stats are stored as ZooKeeper persists them** (`StatPersisted`), which is what
//!   prep and the reaper read: `cversion` counts child creates (it numbers sequential
//!   children) and containers and TTL nodes keep their special `ephemeralOwner`. A client
//!   of ZooKeeper sees them translated (`DataNode.copyStat`: cversion × 2 − children,
//!   owner 0 for containers and TTL nodes); that translation belongs where ferrokeeper
//!   builds a client `Stat`.
//! - **Sessions** keep their timeouts; whoever starts a server from the imported state
//!   must start each session's expiry clock, as ZooKeeper's session tracker does for
//!   the sessions it loads.
//! - **System nodes.** `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config` come
//!   from the snapshot (with ZooKeeper's stats and ACLs); ferrokeeper's defaults fill in
//!   only where a snapshot lacks one.
//! - **TTL nodes** are recognised as ZooKeeper does with `extendedTypesEnabled`
//!   ([`ImportOptions::extended_types`], on by default); `emulate353TTLNodes` is not.
//! - **Memory.** A snapshot is parsed as it is read (and, for gzip, decompressed), one
//!   node record at a time, so only the [`DataState`] grows with it; a snappy snapshot
//!   is decompressed whole first (no stream reader for snappy-java's framing). Logs are
//!   streamed record by record. [`import_zookeeper_to`] (what `ferrokeeper import` runs)
//!   does not build the state on the heap at all: the snapshot's nodes become a compact
//!   [`table::Table`] written straight to a ferrokeeper snapshot, which is then mapped
//!   and replayed onto (bench/results/memory/2026-12-06-import-v4.md).
//!
//! Must never: write into the ZooKeeper directory (ZooKeeper deletes an empty trailing
//! log at startup; the import leaves it), or panic on any file content.

pub mod error;
pub mod format;
pub mod password;
pub mod replay;
pub mod snapshot;
pub mod stream;
pub mod table;
pub mod txnlog;

use std::io::BufReader;
use std::path::{Path, PathBuf};

pub use error::ImportError;
pub use format::Compression;
pub use password::zookeeper_session_passwd;
pub use txnlog::LogEnd;

use crate::core::digest::DIGEST_VERSION;
use format::{DataFile, LOG_PREFIX, SNAP_PREFIX};
use replay::Loader;
use txnlog::{LogItem, LogReader};

use crate::core::state::DataState;

/// `FileSnap.deserialize` tries at most this many snapshots (`findNValidSnapshots(100)`).
pub const SNAPSHOTS_TRIED_MAX: usize = 100;
/// How often (in log bytes) replay reports progress.
const PROGRESS_STEP_BYTES: u64 = 1 << 20;
/// Read buffer for log files.
const LOG_READ_BUFFER_BYTES: usize = 1 << 20;

/// Settings of the ZooKeeper that wrote the data.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `zookeeper.extendedTypesEnabled`: whether an `ephemeralOwner` with the top byte
    /// 0xff is a TTL node (true) or a session id (false). Default true, as ferrokeeper's
    /// and TTL-using ZooKeepers run; it must match the ferrokeeper config that will
    /// serve the imported state.
    pub extended_types: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            extended_types: true,
        }
    }
}

/// What the import is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPhase {
    /// Reading and parsing a snapshot.
    Snapshot,
    /// Replaying transaction logs.
    Log,
    /// Finished.
    Done,
}

/// A progress report. `bytes_total` is the chosen snapshot's file size plus the sizes
/// of the log files to replay after it (preallocated logs count whole, padding and
/// all). If a snapshot is rejected, reporting starts again for the next one, with its
/// own total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProgress {
    /// Bytes handled so far.
    pub bytes_done: u64,
    /// Bytes to handle in all.
    pub bytes_total: u64,
    /// What is being done.
    pub phase: ImportPhase,
}

/// How the imported tree compares with the digest ZooKeeper recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// No usable digest: ZooKeeper 3.5, digests disabled, another digest version, or a
    /// last txn without one.
    Unavailable,
    /// The imported tree's digest equals ZooKeeper's at `zxid` (the last txn, or the
    /// snapshot when no txn followed it).
    Matched {
        /// Where it was compared.
        zxid: i64,
    },
    /// The imported tree differs from ZooKeeper's tree at `zxid`.
    Mismatch {
        /// Where it was compared.
        zxid: i64,
        /// ZooKeeper's digest.
        expected: i64,
        /// The imported tree's.
        actual: i64,
    },
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileUse {
    /// The snapshot the state was built from.
    Snapshot {
        /// Its zxid.
        zxid: i64,
        /// Its encoding.
        compression: Compression,
        /// Nodes it held (the root included).
        nodes: usize,
        /// Sessions it held.
        sessions: usize,
        /// `lastProcessedZxid` from its tail (3.9.3+).
        last_processed_zxid: Option<i64>,
    },
    /// A newer snapshot that was rejected, and why.
    RejectedSnapshot {
        /// Its zxid.
        zxid: i64,
        /// The error that rejected it.
        reason: String,
    },
    /// A log file that was read.
    Log {
        /// The zxid in its name (its first txn).
        zxid: i64,
        /// Txns applied from it.
        txns_replayed: usize,
        /// Txns skipped because the snapshot already covers their zxid.
        txns_skipped: usize,
        /// How its data ended; [`LogEnd::Torn`] marks a partial final record.
        end: LogEnd,
    },
}

/// One file the import looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
    /// What became of it.
    pub used: FileUse,
}

/// An imported ZooKeeper database.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The state: tree, sessions, indexes; `state.last_zxid == last_zxid`.
    pub state: DataState,
    /// zxid of the last txn applied (the snapshot's, if none followed).
    pub last_zxid: i64,
    /// zxid of the snapshot the state was built from.
    pub snapshot_zxid: i64,
    /// ZooKeeper's `dbid` from the snapshot header.
    pub dbid: i64,
    /// Txns applied from the logs.
    pub txns_replayed: usize,
    /// Every snapshot tried and every log read, in that order.
    pub files: Vec<FileReport>,
    /// The digest comparison.
    pub digest: DigestCheck,
    /// Ephemeral nodes deleted because their session no longer exists.
    pub dead_session_ephemerals: usize,
}

/// Imports a ZooKeeper data directory with [`ImportOptions::default`]. `data_dir` is
/// ZooKeeper's `dataDir` (or its `version-2`); `log_dir` its `dataLogDir`, when the logs
/// are kept apart. `progress` is called now and then, and once at the end.
pub fn import_zookeeper(
    data_dir: &Path,
    log_dir: Option<&Path>,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<Imported, ImportError> {
    import_zookeeper_with(data_dir, log_dir, &ImportOptions::default(), progress)
}

/// [`import_zookeeper`] with explicit options.
pub fn import_zookeeper_with(
    data_dir: &Path,
    log_dir: Option<&Path>,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<Imported, ImportError> {
    let extended_types = opts.extended_types;
    import_from(
        data_dir,
        log_dir,
        progress,
        &mut |snap, compression, progress| {
            let mut src = format::SnapshotFile::open(&snap.path, compression)?;
            Loader::from_source(&snap.path, &mut src, extended_types, progress)
        },
    )
}

/// Loads one snapshot into a [`Loader`], reporting (done, total) source progress.
type LoadSnapshot<'a> = dyn FnMut(
        &DataFile,
        Compression,
        &mut dyn FnMut(u64, u64),
    ) -> Result<(Loader, replay::SnapshotSummary), ImportError>
    + 'a;

// Long because it is the import's pipeline in order (find, load, replay, check),
// each step a call with its progress and error context.
/// The import with the snapshot loaded by `load`.
fn import_from(
    data_dir: &Path,
    log_dir: Option<&Path>,
    progress: &mut dyn FnMut(ImportProgress),
    load: &mut LoadSnapshot<'_>,
) -> Result<Imported, ImportError> {
    let snap_dir = format::version_dir(data_dir)?;
    let log_dir = match log_dir {
        Some(d) => format::version_dir(d)?,
        None => snap_dir.clone(),
    };
    let snapshots = format::list_files(&snap_dir, SNAP_PREFIX)?;
    let logs = format::list_files(&log_dir, LOG_PREFIX)?;
    if snapshots.is_empty() {
        return Err(ImportError::NoSnapshot { dir: snap_dir });
    }

    // 1. The newest snapshot that loads.
    let mut files = Vec::new();
    let mut newest_error = None;
    let mut tried = 0;
    let mut chosen = None;
    for snap in snapshots.iter().rev() {
        if tried == SNAPSHOTS_TRIED_MAX {
            break;
        }
        let name = snap.path.file_name().unwrap_or_default().to_string_lossy();
        let compression = Compression::of_name(&name);
        let replay_logs = logs_after(&logs, snap.zxid);
        let bytes_total = snap.bytes + replay_logs.iter().map(|l| l.bytes).sum::<u64>();
        let attempt = format::precheck_snapshot(&snap.path, compression).and_then(|()| {
            tried += 1;
            progress(ImportProgress {
                bytes_done: 0,
                bytes_total,
                phase: ImportPhase::Snapshot,
            });
            load(snap, compression, &mut |done, len| {
                progress(ImportProgress {
                    bytes_done: scale(snap.bytes, done, len),
                    bytes_total,
                    phase: ImportPhase::Snapshot,
                })
            })
        });
        match attempt {
            Ok((loader, summary)) => {
                log_memory("snapshot loaded");
                chosen = Some((snap, compression, loader, summary, replay_logs, bytes_total));
                break;
            }
            Err(e) => {
                tracing::warn!(file = %snap.path.display(), "snapshot rejected: {e}");
                files.push(FileReport {
                    path: snap.path.clone(),
                    bytes: snap.bytes,
                    used: FileUse::RejectedSnapshot {
                        zxid: snap.zxid,
                        reason: e.to_string(),
                    },
                });
                newest_error.get_or_insert(e);
            }
        }
    }
    let Some((snap, compression, mut loader, summary, replay_logs, bytes_total)) = chosen else {
        return Err(ImportError::NoValidSnapshot {
            dir: snap_dir,
            tried: files.len(),
            newest: Box::new(newest_error.expect("at least one snapshot was rejected")),
        });
    };
    loader.state.last_zxid = snap.zxid;
    files.push(FileReport {
        path: snap.path.clone(),
        bytes: snap.bytes,
        used: FileUse::Snapshot {
            zxid: snap.zxid,
            compression,
            nodes: summary.nodes,
            sessions: summary.sessions,
            last_processed_zxid: summary.tail.last_processed_zxid,
        },
    });

    // The snapshot's digest is for the zxid at which its writing ended: at the snapshot's
    // own zxid, or later while replay closes the fuzzy range (DataTree.ZxidDigest). One
    // older than the snapshot cannot be checked (FileSnap ignores it too).
    let mut snapshot_digest = summary
        .tail
        .digest
        .filter(|d| d.version == DIGEST_VERSION && d.zxid >= snap.zxid);
    let mut snapshot_check = DigestCheck::Unavailable;
    if let Some(d) = snapshot_digest.filter(|d| d.zxid == snap.zxid) {
        snapshot_check = compare_digest(&loader.state, d.zxid, d.digest);
        snapshot_digest = None;
    }

    // 2. Replay.
    let mut previous = snap.zxid;
    let mut txns_replayed = 0;
    let mut last_txn_digest = None;
    let mut bytes_before = snap.bytes;
    for log in replay_logs {
        let f = std::fs::File::open(&log.path).map_err(|source| ImportError::Io {
            path: log.path.clone(),
            source,
        })?;
        let src = BufReader::with_capacity(LOG_READ_BUFFER_BYTES, f);
        let (mut replayed, mut skipped) = (0, 0);
        let end = match LogReader::open(&log.path, src)? {
            None => LogEnd::EndOfFile { offset: 0 },
            Some(mut reader) => {
                let mut next_report = PROGRESS_STEP_BYTES;
                loop {
                    let t = match reader.next_item()? {
                        LogItem::End(end) => break end,
                        LogItem::Txn(t) => t,
                    };
                    let zxid = t.header.zxid;
                    if zxid <= snap.zxid {
                        skipped += 1;
                        continue;
                    }
                    if !follows(previous, zxid) {
                        return Err(ImportError::LogGap {
                            file: log.path.clone(),
                            offset: t.offset,
                            previous,
                            found: zxid,
                        });
                    }
                    loader.replay(&log.path, &t)?;
                    previous = zxid;
                    replayed += 1;
                    last_txn_digest = t
                        .digest
                        .filter(|d| d.version == DIGEST_VERSION)
                        .map(|d| (zxid, d.tree_digest));
                    if let Some(d) = snapshot_digest.filter(|d| d.zxid == zxid) {
                        snapshot_check = compare_digest(&loader.state, zxid, d.digest);
                        snapshot_digest = None;
                    }
                    if reader.position() >= next_report {
                        next_report = reader.position() + PROGRESS_STEP_BYTES;
                        progress(ImportProgress {
                            bytes_done: bytes_before + reader.position(),
                            bytes_total,
                            phase: ImportPhase::Log,
                        });
                    }
                }
            }
        };
        if let LogEnd::Torn { offset } = end {
            tracing::warn!(file = %log.path.display(), offset, "partial txn at the end of a log file ignored, as ZooKeeper does");
        }
        txns_replayed += replayed;
        bytes_before += log.bytes;
        files.push(FileReport {
            path: log.path.clone(),
            bytes: log.bytes,
            used: FileUse::Log {
                zxid: log.zxid,
                txns_replayed: replayed,
                txns_skipped: skipped,
                end,
            },
        });
        progress(ImportProgress {
            bytes_done: bytes_before,
            bytes_total,
            phase: ImportPhase::Log,
        });
    }

    // 3. Checks: the digest of the last txn describes the tree right after it, before
    // ZooKeeper's startup cleanup.
    let final_check = match last_txn_digest {
        Some((zxid, expected)) if txns_replayed > 0 => {
            compare_digest(&loader.state, zxid, expected)
        }
        _ => DigestCheck::Unavailable,
    };
    // The last txn's digest decides when there is one: it describes the tree that is
    // kept. A fuzzy snapshot's own digest can disagree with the nodes it holds when a txn
    // was being applied while it was written (seen with a Java 3.8 snapshot whose trailer
    // names its own zxid); ZooKeeper only logs such a difference, and replay then meets
    // the logged digests again.
    let digest = match (snapshot_check, final_check) {
        (DigestCheck::Mismatch { zxid, .. }, m @ DigestCheck::Matched { .. }) => {
            tracing::warn!(
                zxid = format_args!("{zxid:#x}"),
                "the snapshot's own digest differs (a fuzzy snapshot); the tree after replay matches ZooKeeper's"
            );
            m
        }
        (_, m @ DigestCheck::Mismatch { .. }) => m,
        (_, m @ DigestCheck::Matched { .. }) => m,
        (s, DigestCheck::Unavailable) => s,
    };
    if let DigestCheck::Mismatch {
        zxid,
        expected,
        actual,
    } = digest
    {
        tracing::warn!(
            zxid = format_args!("{zxid:#x}"),
            expected,
            actual,
            "imported tree differs from ZooKeeper's digest"
        );
    }
    log_memory("logs replayed");
    let dead_session_ephemerals = loader.remove_dead_session_ephemerals()?;
    let state = loader.into_state()?;
    log_memory("state ready");
    progress(ImportProgress {
        bytes_done: bytes_total,
        bytes_total,
        phase: ImportPhase::Done,
    });
    Ok(Imported {
        last_zxid: state.last_zxid,
        snapshot_zxid: snap.zxid,
        dbid: summary.dbid,
        txns_replayed,
        files,
        digest,
        dead_session_ephemerals,
        state,
    })
}

/// An import written as ferrokeeper's snapshot ([`import_zookeeper_to`]).
#[derive(Debug)]
pub struct ImportedTo {
    /// The import; its state is served from the written snapshot (mapped) plus what
    /// replay changed.
    pub imported: Imported,
    /// The snapshot written; `None` when the digest check failed (nothing is kept).
    pub file: Option<ferrokeeper_storage::snapshot::SnapshotFile>,
}

// Long because it is the import's write path in order (table, write, map, replay,
// rewrite or keep), with the cleanup of the intermediate file on every exit.
/// Imports a ZooKeeper data directory into ferrokeeper's data directory `out` (its
/// `ferrokeeper/snap`), without holding the snapshot's znodes on the heap (issue #13):
/// ZooKeeper's snapshot is parsed into a compact [`table::Table`] and written as a
/// version 5 snapshot, which is then mapped as the tree's base; the logs are replayed
/// onto it as the overlay, the checks run as in [`import_zookeeper_with`], and when
/// replay changed anything the final state is written again (the intermediate file is
/// removed). A compressed snapshot is decompressed into a temp file under `out` first.
/// The resulting state is the one [`import_zookeeper_with`] builds.
pub fn import_zookeeper_to(
    data_dir: &Path,
    log_dir: Option<&Path>,
    opts: &ImportOptions,
    out: &Path,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportedTo, ImportError> {
    let snap_dir = crate::snapshot::snap_dir(out);
    std::fs::create_dir_all(&snap_dir).map_err(|source| ImportError::Io {
        path: snap_dir.clone(),
        source,
    })?;
    let temp = out.join("ferrokeeper").join("import-snapshot.decompressed");
    let write_err = |e: &dyn std::fmt::Display| ImportError::Write {
        detail: e.to_string(),
    };
    let extended_types = opts.extended_types;
    let mut intermediate: Option<PathBuf> = None;
    let result = import_from(
        data_dir,
        log_dir,
        progress,
        &mut |snap, compression, progress| {
            let (table, summary) = table::Table::load(
                &snap.path,
                compression,
                snap.zxid,
                &temp,
                extended_types,
                progress,
            )?;
            tracing::debug!(heap_bytes = table.heap_bytes(), "snapshot table built");
            log_memory("snapshot table built");
            let (file, _) =
                crate::snapshot::write_source(&snap_dir, &table).map_err(|e| write_err(&e))?;
            let table::Table {
                ref orphans,
                ref pending_acl,
                ..
            } = table;
            let (orphans, pending_acl) = (orphans.clone(), pending_acl.clone());
            drop(table);
            // The table's pages go back to the system before the snapshot is mapped
            // (its checksum pass makes all of it resident): mimalloc keeps freed ones.
            // SAFETY: mi_collect only frees this thread's unused pages.
            unsafe { libmimalloc_sys::mi_collect(true) };
            log_memory("intermediate snapshot written");
            intermediate = Some(file.path.clone());
            let base = ferrokeeper_storage::snapshot::read(&file)
                .map_err(|e| e.to_string())
                .and_then(crate::core::tree::Base::open)
                .map_err(|e| write_err(&e))?;
            let state = crate::snapshot::state_from_base(std::sync::Arc::new(base), extended_types);
            Ok((
                Loader::on_state(&snap.path, state, orphans, pending_acl),
                summary,
            ))
        },
    );
    let remove = |p: &Option<PathBuf>| {
        if let Some(p) = p {
            // Only disk space is lost if this fails; the import's outcome stands.
            let _ = std::fs::remove_file(p);
        }
    };
    let imported = match result {
        Ok(i) => i,
        Err(e) => {
            remove(&intermediate);
            return Err(e);
        }
    };
    if matches!(imported.digest, DigestCheck::Mismatch { .. }) {
        remove(&intermediate);
        return Ok(ImportedTo {
            imported,
            file: None,
        });
    }
    let changed = imported.txns_replayed > 0
        || imported.dead_session_ephemerals > 0
        || imported.state.tree.overlay_len() > 0;
    let Some(first) = intermediate.clone() else {
        return Err(write_err(&"no snapshot was written"));
    };
    let file = if changed {
        let written = crate::snapshot::write_state(&snap_dir, &imported.state);
        match written {
            Ok((file, _)) => {
                if file.path != first {
                    remove(&intermediate);
                }
                file
            }
            Err(e) => {
                remove(&intermediate);
                return Err(write_err(&e));
            }
        }
    } else {
        let bytes = std::fs::metadata(&first).map_or(0, |m| m.len());
        ferrokeeper_storage::snapshot::SnapshotFile {
            zxid: imported.snapshot_zxid,
            name: ferrokeeper_storage::snapshot::snapshot_name(imported.snapshot_zxid),
            path: first,
            bytes,
        }
    };
    Ok(ImportedTo {
        imported,
        file: Some(file),
    })
}

/// `FileTxnLog.getLogFiles`: the newest log starting at or before the snapshot's zxid
/// (it holds the txns right after the snapshot) and every later one.
fn logs_after(logs: &[DataFile], snapshot_zxid: i64) -> Vec<DataFile> {
    let start = logs
        .iter()
        .map(|l| l.zxid)
        .filter(|z| *z <= snapshot_zxid)
        .max()
        .unwrap_or(0);
    logs.iter().filter(|l| l.zxid >= start).cloned().collect()
}

/// Whether `zxid` may follow `previous` with nothing lost: the next counter in the same
/// epoch (high 32 bits), or anything in a later epoch.
fn follows(previous: i64, zxid: i64) -> bool {
    let epoch = |z: i64| z >> 32;
    zxid > previous && (epoch(zxid) > epoch(previous) || zxid == previous + 1)
}

pub(crate) fn compare_digest(state: &DataState, zxid: i64, expected: i64) -> DigestCheck {
    // The digest replay kept incrementally, as the server will serve it.
    let actual = state.digest;
    if actual == expected {
        DigestCheck::Matched { zxid }
    } else {
        DigestCheck::Mismatch {
            zxid,
            expected,
            actual,
        }
    }
}

/// Logs, at debug level, the process's resident memory now and its peak since the
/// previous call (`VmRSS`, `VmHWM` of Linux's `/proc/self/status`), then resets the peak
/// (`clear_refs` 5), so a run with `RUST_LOG=ferrokeeper=debug` breaks the import's
/// memory down by phase (issue #13). Does nothing when debug is off or off Linux.
pub fn log_memory(phase: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?", str::trim)
            .to_string()
    };
    tracing::debug!(
        phase,
        rss = %field("VmRSS:"),
        peak = %field("VmHWM:"),
        "import memory"
    );
    // A failure only leaves the peak running on into the next phase.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `whole * part / of` without overflow.
fn scale(whole: u64, part: u64, of: u64) -> u64 {
    if of == 0 {
        return whole;
    }
    (u128::from(whole) * u128::from(part) / u128::from(of)) as u64
}

#[cfg(test)]
mod tests;
