//! Snapshot files: an opaque payload (the server's serialized state) framed by a header
//! that names its zxid and seals it with a checksum.
//!
//! This module owns the *file*: its name (`fk-snap.<16 hex digits of the zxid>`), its
//! header, crash-safe writing (temp file, fsync, rename, directory fsync), listing,
//! verification (every error names the file and the byte offset) and retention. It does
//! not know what the payload means; the server encodes and decodes it.
//!
//! The byte layout is in `storage/FORMAT.md` (section "Snapshot"); the constants below
//! mirror it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"FKSNAPSH";
/// The format version this build writes, and the newest it reads.
pub const VERSION: u32 = 2;
/// Header size; the payload starts here. A multiple of 16, so a payload read into a
/// 16-byte aligned buffer (or mapped at a page boundary) is itself 16-byte aligned, as
/// the server's archive format needs.
pub const HEADER_BYTES: usize = 48;
/// Offset of the magic (8 bytes).
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the format version (u32).
pub const VERSION_OFFSET: usize = 8;
/// Offset of the flags (u32, 0 in version 1).
pub const FLAGS_OFFSET: usize = 12;
/// Offset of the zxid (i64) the snapshot's state is at.
pub const ZXID_OFFSET: usize = 16;
/// Offset of the payload length (u64).
pub const PAYLOAD_LEN_OFFSET: usize = 24;
/// Offset of the payload checksum (u64, XXH3-64 of the payload).
pub const PAYLOAD_CHECKSUM_OFFSET: usize = 32;
/// Offset of the header checksum (u64, XXH3-64 of bytes [0, 40)).
pub const HEADER_CHECKSUM_OFFSET: usize = 40;
/// Snapshot files are named this, then 16 lowercase hex digits of the zxid.
pub const NAME_PREFIX: &str = "fk-snap.";
/// A snapshot being written is named like the final file plus this suffix; a leftover
/// one (a crash mid-write) is removed by [`remove_temp_files`].
pub const TEMP_SUFFIX: &str = ".tmp";
/// Largest payload accepted when reading (a guard against a damaged length field
/// asking for an absurd allocation): 64 GiB.
pub const PAYLOAD_BYTES_MAX: u64 = 64 << 30;

/// Everything that can go wrong with snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A system call on a snapshot file or the directory failed.
    #[error("{op} failed on {}: {source}", file.display())]
    Io {
        /// The operation: "create", "write", "fsync", "rename", "read", ...
        op: &'static str,
        /// The file or directory.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file failed verification.
    #[error("snapshot corrupt: {} at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The snapshot file.
        file: PathBuf,
        /// Byte offset in that file of the bad field or region.
        offset: u64,
        /// What was wrong, in words.
        reason: String,
    },
    /// Written by a newer ferrokeeper in a format this build does not read.
    #[error("{}: snapshot format version {version} is newer than this build reads (up to {VERSION})", file.display())]
    UnsupportedVersion {
        /// The snapshot file.
        file: PathBuf,
        /// Its format version.
        version: u32,
    },
    /// A file whose name starts with `fk-snap.` but does not have the snapshot name's shape.
    #[error("unexpected file in the snapshot directory: {}", file.display())]
    UnexpectedFile {
        /// The file.
        file: PathBuf,
    },
}

/// A snapshot file found in a directory (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The zxid in its name.
    pub zxid: i64,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A verified snapshot, mapped into memory (read-only, shared with the page cache).
///
/// The mapping stays valid after the file is deleted (retention may remove it while a
/// server still serves from it); it goes when the last holder drops it.
#[derive(Debug)]
pub struct Snapshot {
    /// The file it came from.
    pub path: PathBuf,
    /// The zxid of the state it holds.
    pub zxid: i64,
    // The whole file. A mapping starts on a page boundary, so the payload (at offset
    // 48) is 16-byte aligned.
    map: memmap2::Mmap,
}

impl Snapshot {
    /// The payload, 16-byte aligned.
    pub fn payload(&self) -> &[u8] {
        &self.map[HEADER_BYTES..]
    }

    /// Size of the whole file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.map.len()
    }
}

/// The file name of the snapshot at `zxid`.
pub fn snapshot_name(zxid: i64) -> String {
    format!("{NAME_PREFIX}{zxid:016x}")
}

/// The zxid of a snapshot file name, or `None` if the name does not have the shape.
pub fn parse_snapshot_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix(NAME_PREFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// The 48-byte header for a payload.
pub fn encode_header(zxid: i64, payload: &[u8]) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[MAGIC_OFFSET..MAGIC_OFFSET + 8].copy_from_slice(&MAGIC);
    h[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&VERSION.to_le_bytes());
    h[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&0u32.to_le_bytes());
    h[ZXID_OFFSET..ZXID_OFFSET + 8].copy_from_slice(&zxid.to_le_bytes());
    h[PAYLOAD_LEN_OFFSET..PAYLOAD_LEN_OFFSET + 8]
        .copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[PAYLOAD_CHECKSUM_OFFSET..PAYLOAD_CHECKSUM_OFFSET + 8]
        .copy_from_slice(&xxh3_64(payload).to_le_bytes());
    let sum = xxh3_64(&h[..HEADER_CHECKSUM_OFFSET]);
    h[HEADER_CHECKSUM_OFFSET..].copy_from_slice(&sum.to_le_bytes());
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// What a verified header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    zxid: i64,
    payload_len: u64,
    payload_checksum: u64,
}

fn decode_header(file: &Path, h: &[u8]) -> Result<Header, SnapshotError> {
    let corrupt = |offset: usize, reason: String| SnapshotError::Corrupt {
        file: file.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if h.len() < HEADER_BYTES {
        return Err(corrupt(
            h.len(),
            format!("file ends inside the {HEADER_BYTES}-byte header"),
        ));
    }
    if h[MAGIC_OFFSET..MAGIC_OFFSET + 8] != MAGIC {
        return Err(corrupt(MAGIC_OFFSET, "bad magic".into()));
    }
    let sum = u64_at(h, HEADER_CHECKSUM_OFFSET);
    if sum != xxh3_64(&h[..HEADER_CHECKSUM_OFFSET]) {
        return Err(corrupt(
            HEADER_CHECKSUM_OFFSET,
            "header checksum mismatch".into(),
        ));
    }
    // The version is trusted only once the checksum has passed, so damage is reported
    // as damage, not as a newer version.
    let version = u32_at(h, VERSION_OFFSET);
    if version > VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            file: file.to_path_buf(),
            version,
        });
    }
    if version == 0 {
        return Err(corrupt(VERSION_OFFSET, "format version 0".into()));
    }
    let flags = u32_at(h, FLAGS_OFFSET);
    if flags != 0 {
        return Err(corrupt(FLAGS_OFFSET, format!("unknown flags 0x{flags:x}")));
    }
    Ok(Header {
        zxid: u64_at(h, ZXID_OFFSET) as i64,
        payload_len: u64_at(h, PAYLOAD_LEN_OFFSET),
        payload_checksum: u64_at(h, PAYLOAD_CHECKSUM_OFFSET),
    })
}

fn io_err<'a>(op: &'static str, file: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        file: file.to_path_buf(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Writes the snapshot at `zxid` into `dir` (created if missing) and makes it durable:
/// header and payload go to `fk-snap.<zxid>.tmp`, which is fsynced, renamed to its final
/// name, and the directory fsynced. A crash at any point leaves either no snapshot at
/// `zxid` or a whole one (plus perhaps a temp file, which [`remove_temp_files`] clears).
/// Returns the final path.
pub fn write(dir: &Path, zxid: i64, payload: &[u8]) -> Result<PathBuf, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let name = snapshot_name(zxid);
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let header = encode_header(zxid, payload);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(&header).map_err(io_err("write", &tmp))?;
        f.write_all(payload).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    sync_dir(dir)?;
    Ok(path)
}

/// The snapshot files in `dir`, oldest (smallest zxid) first. A missing directory has
/// none. Other files are ignored, temp files included; a name that starts with
/// `fk-snap.` but is neither a snapshot's nor a temp file's is refused.
pub fn list(dir: &Path) -> Result<Vec<SnapshotFile>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(NAME_PREFIX) || name.ends_with(TEMP_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let Some(zxid) = parse_snapshot_name(name) else {
            return Err(SnapshotError::UnexpectedFile { file: path });
        };
        let bytes = entry.metadata().map_err(io_err("stat", &path))?.len();
        out.push(SnapshotFile { zxid, path, bytes });
    }
    out.sort_by_key(|s| s.zxid);
    Ok(out)
}

/// Maps and verifies one snapshot file: header (magic, checksum, version, flags), the
/// zxid against the name's, the length against the file's, the payload checksum.
pub fn read(file: &SnapshotFile) -> Result<Snapshot, SnapshotError> {
    let path = &file.path;
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    let corrupt = |offset: u64, reason: String| SnapshotError::Corrupt {
        file: path.clone(),
        offset,
        reason,
    };
    if len < HEADER_BYTES as u64 {
        return Err(corrupt(
            len,
            format!("file of {len} bytes ends inside the {HEADER_BYTES}-byte header"),
        ));
    }
    let mut header = [0u8; HEADER_BYTES];
    f.read_exact(&mut header).map_err(io_err("read", path))?;
    let h = decode_header(path, &header)?;
    if h.zxid != file.zxid {
        return Err(corrupt(
            ZXID_OFFSET as u64,
            format!(
                "header zxid 0x{:x} differs from the name's 0x{:x}",
                h.zxid, file.zxid
            ),
        ));
    }
    if h.payload_len > PAYLOAD_BYTES_MAX || HEADER_BYTES as u64 + h.payload_len != len {
        return Err(corrupt(
            PAYLOAD_LEN_OFFSET as u64,
            format!(
                "payload length {} does not match the file's size {len} (header {HEADER_BYTES})",
                h.payload_len
            ),
        ));
    }
    // SAFETY: snapshot files are written once (temp file, fsync, rename) and never
    // modified afterwards; nothing in this process or in a well-behaved operator's hands
    // writes to one, which is what a read-only mapping's soundness rests on.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io_err("mmap", path))?;
    if map.len() as u64 != len {
        return Err(corrupt(
            map.len() as u64,
            format!(
                "file changed size while being mapped ({len} bytes before, {} after)",
                map.len()
            ),
        ));
    }
    // The checksum pass reads every page once, front to back.
    let _ = map.advise(memmap2::Advice::Sequential);
    let snap = Snapshot {
        path: path.clone(),
        zxid: h.zxid,
        map,
    };
    let checksum = xxh3_64(snap.payload());
    // Served from afterwards: lookups land anywhere.
    let _ = snap.map.advise(memmap2::Advice::Random);
    if checksum != h.payload_checksum {
        return Err(corrupt(
            HEADER_BYTES as u64,
            format!(
                "payload checksum mismatch over bytes [{HEADER_BYTES}, {len}) (header field at offset {PAYLOAD_CHECKSUM_OFFSET})"
            ),
        ));
    }
    Ok(snap)
}

/// Removes leftover temp files (snapshots a crash interrupted) from `dir`.
pub fn remove_temp_files(dir: &Path) -> Result<usize, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(NAME_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Retention: keeps the newest `keep` snapshots (at least 1) and removes the older ones,
/// oldest first, fsyncing the directory after each removal. Returns the snapshots kept,
/// oldest first; the caller may then drop log records at or below the oldest kept zxid.
pub fn retain(dir: &Path, keep: usize) -> Result<Vec<SnapshotFile>, SnapshotError> {
    let mut all = list(dir)?;
    let keep = keep.max(1);
    let drop = all.len().saturating_sub(keep);
    for old in all.drain(..drop) {
        std::fs::remove_file(&old.path).map_err(io_err("remove", &old.path))?;
        sync_dir(dir)?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(snapshot_name(0x1_0000_0002), "fk-snap.0000000100000002");
        assert_eq!(
            parse_snapshot_name("fk-snap.0000000100000002"),
            Some(0x1_0000_0002)
        );
        assert_eq!(parse_snapshot_name("fk-snap.0000000100000002.tmp"), None);
        assert_eq!(parse_snapshot_name("fk-snap.00000001000000AB"), None);
    }

    #[test]
    fn write_list_read_retain() {
        let d = tempfile::tempdir().expect("tempdir");
        for z in [5i64, 1, 9, 7] {
            write(d.path(), z, &vec![z as u8; 100 + z as usize]).expect("write");
        }
        std::fs::write(d.path().join("fk-snap.0000000000000010.tmp"), b"junk").expect("junk");
        std::fs::write(d.path().join("other"), b"x").expect("other");
        let l = list(d.path()).expect("list");
        assert_eq!(l.iter().map(|s| s.zxid).collect::<Vec<_>>(), [1, 5, 7, 9]);
        let s = read(&l[3]).expect("read");
        assert_eq!(s.zxid, 9);
        assert_eq!(s.payload(), &vec![9u8; 109][..]);
        assert_eq!(s.payload().as_ptr() as usize % 16, 0);
        assert_eq!(remove_temp_files(d.path()).expect("tmp"), 1);
        let kept = retain(d.path(), 2).expect("retain");
        assert_eq!(kept.iter().map(|s| s.zxid).collect::<Vec<_>>(), [7, 9]);
        assert_eq!(list(d.path()).expect("list").len(), 2);
    }

    #[test]
    fn damage_is_named_with_offset() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = write(d.path(), 3, b"hello world").expect("write");
        let file = || list(d.path()).expect("list").remove(0);
        let mut bytes = std::fs::read(&p).expect("read");
        bytes[HEADER_BYTES + 2] ^= 1;
        std::fs::write(&p, &bytes).expect("damage payload");
        match read(&file()) {
            Err(SnapshotError::Corrupt { offset, .. }) => assert_eq!(offset, 48),
            other => panic!("expected corruption, got {other:?}"),
        }
        bytes[HEADER_BYTES + 2] ^= 1;
        bytes[ZXID_OFFSET] ^= 1;
        std::fs::write(&p, &bytes).expect("damage header");
        match read(&file()) {
            Err(SnapshotError::Corrupt { offset, .. }) => {
                assert_eq!(offset, HEADER_CHECKSUM_OFFSET as u64)
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        bytes[ZXID_OFFSET] ^= 1;
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&p, &bytes).expect("truncate");
        match read(&file()) {
            Err(SnapshotError::Corrupt { offset, .. }) => {
                assert_eq!(offset, PAYLOAD_LEN_OFFSET as u64)
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        std::fs::write(&p, &bytes[..20]).expect("short");
        assert!(matches!(
            read(&file()),
            Err(SnapshotError::Corrupt { offset: 20, .. })
        ));
    }
}
