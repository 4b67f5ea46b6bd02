//! Reading a data directory for people: the log one txn per line, a snapshot node by
//! node, the tree digest, and a verification of every file.
//!
//! The line shapes follow ZooKeeper's own tools, so that scripts and habits carry over:
//! a log line is `TxnLogToolkit`'s (`<time> session 0x<id> cxid 0x<cxid> zxid 0x<zxid>
//! <op> <fields>`, ending with `EOF reached after <n> txns.`), and a snapshot is printed
//! as `SnapshotFormatter` prints one (`ZNode Details`, one block per node, then
//! `Session Details`). Times are printed in UTC with milliseconds rather than in the
//! JVM's locale, so that a dump reads the same on every machine.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use ferrokeeper_net::records::{Acl, TxnHeader};
use ferrokeeper_storage::backend::disk::DiskStorage;
use ferrokeeper_storage::snapshot as snapfile;

use super::ToolError;
use crate::commit::log::ReplayError;
use crate::core::codec::{decode_record, CreateKind, TxnDecodeError, TxnRecord};
use crate::core::state::DataState;

/// The log directory for a path an operator gives: ferrokeeper's own log directory, or a
/// `dataLogDir` (or `dataDir`) holding `ferrokeeper/log`.
pub fn resolve_log_dir(path: &Path) -> PathBuf {
    let inner = crate::commit::log::log_dir(path);
    if inner.is_dir() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// Prints every record of the log in `log_dir` (see [`resolve_log_dir`]) to `out`, one
/// txn per line, and returns how many. A damaged record ends the dump with an error that
/// names the file and byte offset, after the lines before it were printed.
/// `progress(txns)` is called every few thousand txns.
pub fn dump_log(
    log_dir: &Path,
    out: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ToolError> {
    let log_err = |source| {
        ToolError::Log(ReplayError::Log {
            dir: log_dir.to_path_buf(),
            source,
        })
    };
    let io_err = |source| ToolError::Io {
        path: PathBuf::from("<output>"),
        source,
    };
    let records = ferrokeeper_storage::log::read(log_dir, -1).map_err(log_err)?;
    writeln!(out, "ferrokeeper transaction log {}", log_dir.display()).map_err(io_err)?;
    let mut n = 0u64;
    for rec in records {
        let rec = rec.map_err(log_err)?;
        let logged = decode_record(&rec.bytes).map_err(|e| {
            ToolError::Log(ReplayError::Txn {
                dir: log_dir.to_path_buf(),
                zxid: rec.zxid,
                source: TxnDecodeError::Record(e),
            })
        })?;
        writeln!(out, "{}", txn_line(&logged.header, &logged.record)).map_err(io_err)?;
        n += 1;
        if n.is_multiple_of(PROGRESS_STEP) {
            progress(n);
        }
    }
    writeln!(out, "EOF reached after {n} txns.").map_err(io_err)?;
    progress(n);
    Ok(n)
}

/// How often, in txns or nodes, the tools report progress.
const PROGRESS_STEP: u64 = 4096;

/// One txn as `TxnLogToolkit` prints it.
pub fn txn_line(h: &TxnHeader, record: &TxnRecord) -> String {
    format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
        utc_time(h.time),
        h.client_id,
        h.cxid,
        h.zxid,
        op_name(h.r#type),
        record_fields(record)
    )
}

/// ZooKeeper's name for a txn type (`Request.op2String`).
pub fn op_name(op: i32) -> String {
    match op {
        1 => "create".into(),
        2 => "delete".into(),
        5 => "setData".into(),
        7 => "setACL".into(),
        13 => "check".into(),
        14 => "multi".into(),
        15 => "create2".into(),
        16 => "reconfig".into(),
        19 => "createContainer".into(),
        20 => "deleteContainer".into(),
        21 => "createTtl".into(),
        -10 => "createSession".into(),
        -11 => "closeSession".into(),
        -1 => "error".into(),
        other => format!("unknown {other}"),
    }
}

/// A record's fields, comma separated, in `TxnLogToolkit`'s order.
fn record_fields(record: &TxnRecord) -> String {
    match record {
        TxnRecord::CreateSession { timeout_ms, .. } => timeout_ms.to_string(),
        TxnRecord::CloseSession { paths } => match paths {
            Some(p) => format!("[{}]", p.join(", ")),
            None => String::new(),
        },
        TxnRecord::Create {
            kind,
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        } => {
            let ttl = match kind {
                CreateKind::Ttl(ttl) => format!(",{ttl}"),
                _ => String::new(),
            };
            format!(
                "{path},{},{},{ephemeral},{parent_cversion}{ttl}",
                text(data.as_deref()),
                acl_text(acl)
            )
        }
        TxnRecord::Delete { path } | TxnRecord::Check { path } => path.clone(),
        TxnRecord::SetData {
            path,
            data,
            version,
        } => format!("{path},{},{version}", text(data.as_deref())),
        TxnRecord::SetAcl { path, acl, version } => {
            format!("{path},{},{version}", acl_text(acl))
        }
        TxnRecord::Error { err } => err.to_string(),
        TxnRecord::Multi(subs) => subs
            .iter()
            .map(|s| format!("{}:{}", sub_name(s), record_fields(s)))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn sub_name(r: &TxnRecord) -> &'static str {
    match r {
        TxnRecord::CreateSession { .. } => "createSession",
        TxnRecord::CloseSession { .. } => "closeSession",
        TxnRecord::Create { .. } => "create",
        TxnRecord::Delete { .. } => "delete",
        TxnRecord::SetData { .. } => "setData",
        TxnRecord::SetAcl { .. } => "setACL",
        TxnRecord::Check { .. } => "check",
        TxnRecord::Error { .. } => "error",
        TxnRecord::Multi(_) => "multi",
    }
}

/// Data as `TxnLogToolkit` shows it: the bytes as UTF-8 (invalid sequences replaced),
/// empty for null.
fn text(data: Option<&[u8]>) -> String {
    data.map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default()
}

/// An ACL list as `perms,scheme:id` entries in brackets.
pub fn acl_text(acl: &[Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| format!("{},{}:{}", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("[{}]", items.join(", "))
}

/// `ms` since the epoch as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01), by Howard
/// Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Opens one ferrokeeper snapshot file, plain or compressed (`fk-snap.<hex>.zst`,
/// decompressed into memory), checksums verified, as a state.
pub fn open_snapshot_file(path: &Path, extended_types: bool) -> Result<DataState, ToolError> {
    let not_ours = || ToolError::NotASnapshot {
        path: path.to_path_buf(),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_ours)?;
    // A compressed (superseded) snapshot is decompressed into memory by the read.
    let (zxid, _) = snapfile::parse_any_snapshot_name(name).ok_or_else(not_ours)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let bytes = std::fs::metadata(path)
        .map_err(|source| ToolError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut storage = DiskStorage::open_read_only(&dir).map_err(|source| ToolError::Io {
        path: dir.clone(),
        source,
    })?;
    let file = snapfile::SnapshotFile {
        zxid,
        name: name.to_string(),
        path: path.to_path_buf(),
        bytes,
    };
    super::datadir::open_snapshot(&mut storage, &file, extended_types).map_err(|reason| {
        ToolError::Snapshot(snapfile::SnapshotError::Corrupt {
            file: path.to_path_buf(),
            offset: 0,
            reason,
        })
    })
}

/// Prints `state` as `SnapshotFormatter` prints a snapshot: every znode with its stat,
/// ACL and data (base64, as `SnapshotFormatter -d` does), then the sessions with their
/// timeouts and ephemeral counts, then the zxid and the tree digest.
pub fn dump_state(state: &DataState, out: &mut impl Write) -> io::Result<()> {
    let nodes = state.tree.sorted_nodes();
    writeln!(out, "ZNode Details (count={}):", nodes.len())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (path, node) in &nodes {
        let s = node.stat();
        writeln!(out, "----")?;
        writeln!(out, "{path}")?;
        writeln!(out, "  cZxid = 0x{:014x}", { s.czxid })?;
        writeln!(out, "  ctime = {}", utc_time(s.ctime))?;
        writeln!(out, "  mZxid = 0x{:014x}", { s.mzxid })?;
        writeln!(out, "  mtime = {}", utc_time(s.mtime))?;
        writeln!(out, "  pZxid = 0x{:014x}", { s.pzxid })?;
        writeln!(out, "  cversion = {}", s.cversion)?;
        writeln!(out, "  dataVersion = {}", s.version)?;
        writeln!(out, "  aclVersion = {}", s.aversion)?;
        writeln!(out, "  ephemeralOwner = 0x{:014x}", { s.ephemeral_owner })?;
        writeln!(out, "  acl = {}", acl_text(node.acl()))?;
        match node.data() {
            Some(d) => {
                writeln!(out, "  dataLength = {}", d.len())?;
                writeln!(out, "  data = {}", b64.encode(d))?;
            }
            None => writeln!(out, "  dataLength = 0 (null)")?,
        }
    }
    writeln!(out, "----")?;
    let mut sessions: Vec<_> = state.sessions.iter().collect();
    sessions.sort_unstable_by_key(|(id, _)| **id);
    writeln!(
        out,
        "Session Details (sid, timeout, ephemeralCount): (count={})",
        sessions.len()
    )?;
    for (id, s) in sessions {
        writeln!(out, "0x{id:x}, {}, {}", s.timeout_ms, s.ephemerals.len())?;
    }
    writeln!(out, "----")?;
    writeln!(out, "Last zxid: 0x{:x}", state.last_zxid)?;
    writeln!(
        out,
        "Digest: {} (version {})",
        state.digest,
        crate::core::digest::DIGEST_VERSION
    )?;
    Ok(())
}

/// The outcome of [`verify`]: one line per finding, and whether all is well.
#[derive(Debug, Default)]
pub struct Verification {
    /// One line per file or check: `ok ...` or `BAD ...` (with file and offset).
    pub lines: Vec<String>,
    /// Whether every check passed.
    pub ok: bool,
}

impl Verification {
    fn pass(&mut self, line: String) {
        self.lines.push(format!("ok   {line}"));
    }
    fn fail(&mut self, line: String) {
        self.ok = false;
        self.lines.push(format!("BAD  {line}"));
    }
}

// Long because it runs the checks in order (every snapshot, every log record, the
// recovered state), each reporting into the same list.
/// Verifies a data directory without changing it: every snapshot (header and payload
/// checksums, the whole archive and its stored tree digest against the nodes; formats
/// 2 and 3 as converted to 4, the digest of format 2 computed), every log record (checksums, zxids consecutive within an epoch, each txn
/// decodes), and the recovered state (the digest replay kept equals one computed over
/// the tree). `progress(records)` is called every few thousand log records.
pub fn verify(
    data_dir: &Path,
    data_log_dir: Option<&Path>,
    extended_types: bool,
    progress: &mut dyn FnMut(u64),
) -> Verification {
    let mut v = Verification {
        ok: true,
        ..Default::default()
    };
    // Snapshots.
    let snap_dir = crate::snapshot::snap_dir(data_dir);
    if let Ok(mut storage) = DiskStorage::open_read_only(&snap_dir) {
        match snapfile::list_with(&mut storage) {
            Err(e) => v.fail(e.to_string()),
            Ok(files) => {
                for f in &files {
                    match snapfile::read_with(&mut storage, f) {
                        Err(e) => v.fail(e.to_string()),
                        Ok(snap) => match crate::core::payload::validated_v5(
                            &f.path,
                            snap.version,
                            snap.payload(),
                        ) {
                            Ok(converted) => v.pass(format!(
                                "{}: checksums, archive and tree digest (zxid 0x{:x}{})",
                                f.path.display(),
                                f.zxid,
                                if converted.is_some() {
                                    format!("; format {}, checked as converted to 5", snap.version)
                                } else {
                                    String::new()
                                }
                            )),
                            Err(e) => v.fail(e.to_string()),
                        },
                    }
                }
            }
        }
    } else {
        v.pass(format!("{}: no snapshots", snap_dir.display()));
    }
    // Log records.
    let log_dir = crate::commit::log::log_dir(data_log_dir.unwrap_or(data_dir));
    if log_dir.is_dir() {
        match ferrokeeper_storage::log::read(&log_dir, -1) {
            Err(e) => v.fail(e.to_string()),
            Ok(records) => {
                let (mut n, mut prev, mut first) = (0u64, None::<i64>, None);
                let mut good = true;
                for rec in records {
                    let rec = match rec {
                        Ok(r) => r,
                        Err(e) => {
                            v.fail(e.to_string());
                            good = false;
                            break;
                        }
                    };
                    if let Some(p) = prev {
                        if !follows(p, rec.zxid) {
                            v.fail(format!(
                                "{}: zxid 0x{:x} follows 0x{p:x}; the txns between are missing",
                                log_dir.display(),
                                rec.zxid
                            ));
                            good = false;
                        }
                    }
                    if let Err(e) = crate::core::codec::decode(&rec.bytes) {
                        v.fail(format!(
                            "{}: record with zxid 0x{:x} does not decode: {e}",
                            log_dir.display(),
                            rec.zxid
                        ));
                        good = false;
                    }
                    first.get_or_insert(rec.zxid);
                    prev = Some(rec.zxid);
                    n += 1;
                    if n.is_multiple_of(PROGRESS_STEP) {
                        progress(n);
                    }
                }
                progress(n);
                if good {
                    v.pass(format!(
                        "{}: {n} records, checksums and zxids 0x{:x}..0x{:x} consecutive",
                        log_dir.display(),
                        first.unwrap_or(0),
                        prev.unwrap_or(0)
                    ));
                }
            }
        }
    } else {
        v.pass(format!("{}: no transaction log", log_dir.display()));
    }
    // The recovered state.
    match super::datadir::load(data_dir, data_log_dir, extended_types, &mut |_| {}) {
        Err(e) => v.fail(format!("recovery: {e}")),
        Ok(r) => {
            let computed = crate::core::digest::of_tree(&r.state.tree);
            if computed == r.state.digest {
                v.pass(format!(
                    "recovered zxid 0x{:x}: {} znodes, {} sessions, tree digest {computed}",
                    r.state.last_zxid,
                    r.state.tree.len(),
                    r.state.sessions.len()
                ));
            } else {
                v.fail(format!(
                    "recovered zxid 0x{:x}: the tree gives digest {computed}, replay kept {}",
                    r.state.last_zxid, r.state.digest
                ));
            }
        }
    }
    v
}

/// Whether `zxid` may follow `previous` with nothing lost: the next counter in the same
/// epoch (high 32 bits), or anything in a later epoch.
fn follows(previous: i64, zxid: i64) -> bool {
    let epoch = |z: i64| z >> 32;
    zxid > previous && (epoch(zxid) > epoch(previous) || zxid == previous + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_of_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc_time(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        assert_eq!(utc_time(1_796_437_616_000), "2026-12-05 02:26:56.000 UTC");
        assert_eq!(utc_time(-1), "1969-12-31 23:59:59.999 UTC");
    }

    #[test]
    fn zxid_continuity() {
        assert!(follows(1, 2));
        assert!(!follows(1, 3));
        assert!(follows(0x1_0000_0005, 0x2_0000_0001));
        assert!(!follows(5, 5));
    }
}
