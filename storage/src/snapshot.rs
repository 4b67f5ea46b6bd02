//! Snapshot files: an opaque payload (the server's serialized state) framed by a header
//! that names its zxid and seals it with a checksum.
//!
//! This module owns the *file*: its name (`fk-snap.<16 hex digits of the zxid>`), its
//! header, crash-safe writing (temp file, fsync, rename, directory fsync), listing,
//! verification (every error names the file and the byte offset) and retention. It does
//! not know what the payload means; the server encodes and decodes it.
//!
//! Every operation goes through the [`Storage`] seam, like the log's: the functions taking a
//! directory run on the real disk ([`DiskStorage`]); their `_with` twins take any storage,
//! so that the tests run them on the simulator and crash it at every step of a write.
//!
//! The byte layout is in `storage/FORMAT.md` (section "Snapshot"); the constants below
//! mirror it.

use std::io;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::backend::disk::{DiskStorage, IoMode};
use crate::backend::{Overwrite, Storage};

mod compressed;
pub use compressed::{
    compress_superseded_claimed_with, compress_superseded_with, compress_with, plain_bytes_with,
    restore_with, LEVEL,
};

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"FKSNAPSH";
/// The format version this build writes, and the newest it reads.
pub const VERSION: u32 = 5;
/// The oldest format version this build reads. The header is the same in all; the
/// payload's layout is the server's business, so [`Snapshot::version`] tells it which
/// one it has.
pub const VERSION_OLDEST: u32 = 2;
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
/// A superseded snapshot stored zstd-compressed is named like the plain file plus this
/// suffix (see [`compress_with`]); its temp file adds [`TEMP_SUFFIX`] after it.
pub const COMPRESSED_SUFFIX: &str = ".zst";
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

/// A snapshot file found in a directory (not yet verified): plain, or compressed (its
/// name ends in [`COMPRESSED_SUFFIX`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The zxid in its name.
    pub zxid: i64,
    /// Its name in the directory.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes (of the compressed file, for a compressed one).
    pub bytes: u64,
}

impl SnapshotFile {
    /// Whether this is a compressed superseded snapshot (`fk-snap.<16 hex>.zst`), which
    /// [`read_with`] decompresses into memory and [`load_with`] restores to its plain
    /// name first.
    pub fn is_compressed(&self) -> bool {
        self.name.ends_with(COMPRESSED_SUFFIX)
    }
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
    /// The format version in its header (from [`VERSION_OLDEST`] to [`VERSION`]): which
    /// payload layout the file holds.
    pub version: u32,
    bytes: Backing,
}

/// The whole file: mapped (the disk), or read into memory (storages that cannot map,
/// such as the simulator). Either way the payload, at offset 48, is 16-byte aligned: a
/// mapping starts on a page boundary, and the buffer is made of 16-byte units.
#[derive(Debug)]
enum Backing {
    Map(memmap2::Mmap),
    // Invariant: `len` <= buf.len() * 16.
    Heap { buf: Vec<u128>, len: usize },
}

impl Snapshot {
    /// The payload, 16-byte aligned.
    pub fn payload(&self) -> &[u8] {
        &self.bytes()[HEADER_BYTES..]
    }

    /// Size of the whole file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.bytes().len()
    }

    /// A snapshot of the current [`VERSION`] held in memory, not read from a file: the
    /// header for `payload` followed by it (copied into 16-byte units, so the payload
    /// stays 16-byte aligned). For a payload converted from an older version on load;
    /// `path` names the file it came from.
    pub fn in_memory(path: PathBuf, zxid: i64, payload: &[u8]) -> Snapshot {
        let header = encode_header(zxid, payload);
        let total = HEADER_BYTES + payload.len();
        let mut buf = vec![0u128; total.div_ceil(16)];
        // SAFETY: as in `Snapshot::bytes`, and `buf` is borrowed exclusively.
        let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), total) };
        bytes[..HEADER_BYTES].copy_from_slice(&header);
        bytes[HEADER_BYTES..].copy_from_slice(payload);
        Snapshot {
            path,
            zxid,
            version: VERSION,
            bytes: Backing::Heap { buf, len: total },
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Backing::Map(m) => m,
            // SAFETY: `buf` owns `buf.len() * 16` initialised bytes and `len` is at most
            // that (invariant above); u8 has no alignment requirement.
            Backing::Heap { buf, len } => unsafe {
                std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), *len)
            },
        }
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

/// The file name of the compressed snapshot at `zxid`.
pub fn compressed_name(zxid: i64) -> String {
    format!("{NAME_PREFIX}{zxid:016x}{COMPRESSED_SUFFIX}")
}

/// The zxid of a snapshot file name, plain or compressed, and whether it is compressed;
/// `None` if the name has neither shape.
pub fn parse_any_snapshot_name(name: &str) -> Option<(i64, bool)> {
    match name.strip_suffix(COMPRESSED_SUFFIX) {
        Some(plain) => parse_snapshot_name(plain).map(|z| (z, true)),
        None => parse_snapshot_name(name).map(|z| (z, false)),
    }
}

/// The 48-byte header for a payload.
pub fn encode_header(zxid: i64, payload: &[u8]) -> [u8; HEADER_BYTES] {
    encode_header_parts(zxid, payload.len() as u64, xxh3_64(payload))
}

/// The header of a payload of `payload_len` bytes whose XXH3-64 is `payload_checksum`.
pub fn encode_header_parts(
    zxid: i64,
    payload_len: u64,
    payload_checksum: u64,
) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[MAGIC_OFFSET..MAGIC_OFFSET + 8].copy_from_slice(&MAGIC);
    h[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&VERSION.to_le_bytes());
    h[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&0u32.to_le_bytes());
    h[ZXID_OFFSET..ZXID_OFFSET + 8].copy_from_slice(&zxid.to_le_bytes());
    h[PAYLOAD_LEN_OFFSET..PAYLOAD_LEN_OFFSET + 8].copy_from_slice(&payload_len.to_le_bytes());
    h[PAYLOAD_CHECKSUM_OFFSET..PAYLOAD_CHECKSUM_OFFSET + 8]
        .copy_from_slice(&payload_checksum.to_le_bytes());
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
    version: u32,
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
    if version < VERSION_OLDEST {
        return Err(corrupt(
            VERSION_OFFSET,
            format!("format version {version} is older than this build reads ({VERSION_OLDEST})"),
        ));
    }
    let flags = u32_at(h, FLAGS_OFFSET);
    if flags != 0 {
        return Err(corrupt(FLAGS_OFFSET, format!("unknown flags 0x{flags:x}")));
    }
    Ok(Header {
        version,
        zxid: u64_at(h, ZXID_OFFSET) as i64,
        payload_len: u64_at(h, PAYLOAD_LEN_OFFSET),
        payload_checksum: u64_at(h, PAYLOAD_CHECKSUM_OFFSET),
    })
}

fn io_err(op: &'static str, file: PathBuf) -> impl FnOnce(io::Error) -> SnapshotError {
    move |source| SnapshotError::Io { op, file, source }
}

/// The storage of an existing directory for reading or trimming, `None` if it is missing.
fn existing(dir: &Path) -> Result<Option<DiskStorage>, SnapshotError> {
    match DiskStorage::open_read_only(dir) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("open directory", dir.to_path_buf())(e)),
    }
}

/// Writes the snapshot at `zxid` into `dir` (created if missing, its entry made durable)
/// and makes it durable: header and payload go to `fk-snap.<zxid>.tmp`, which is fsynced,
/// renamed to its final name, and the directory fsynced. A crash at any point leaves either
/// no snapshot at `zxid` or a whole one (plus perhaps a temp file, which
/// [`remove_temp_files`] clears). Returns the final path.
pub fn write(dir: &Path, zxid: i64, payload: &[u8]) -> Result<PathBuf, SnapshotError> {
    let mut storage = DiskStorage::open(dir, IoMode::Pwrite)
        .map_err(io_err("create directory", dir.to_path_buf()))?;
    write_with(&mut storage, zxid, payload)
}

/// [`write`] on any [`Storage`]: [`write_streamed_with`] with the payload written whole.
pub fn write_with<S: Storage>(
    storage: &mut S,
    zxid: i64,
    payload: &[u8],
) -> Result<PathBuf, SnapshotError> {
    write_streamed_with(storage, zxid, |sink| sink.write(payload)).map(|(path, _)| path)
}

/// Bytes the payload sink gathers before writing them to the file.
pub const SINK_BUFFER_BYTES: usize = 1 << 20;

/// Where [`write_streamed_with`]'s producer writes the payload, in order: buffered
/// writes to the temp file after the header's slot, hashed as they pass.
pub struct PayloadSink<'s, S: Storage> {
    storage: &'s mut S,
    file: crate::backend::FileId,
    tmp_path: PathBuf,
    /// Payload bytes handed over so far (written or buffered).
    len: u64,
    buf: Vec<u8>,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<S: Storage> PayloadSink<'_, S> {
    /// Appends `bytes` to the payload.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.hasher.update(bytes);
        if self.buf.len() + bytes.len() > SINK_BUFFER_BYTES {
            self.flush()?;
        }
        if bytes.len() >= SINK_BUFFER_BYTES {
            // Large enough to go straight to the file.
            let at = HEADER_BYTES as u64 + self.len;
            self.storage
                .write_at(self.file, at, bytes, false)
                .map_err(io_err("write", self.tmp_path.clone()))?;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Payload bytes written so far: the position of the next byte in the payload.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn flush(&mut self) -> Result<(), SnapshotError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = HEADER_BYTES as u64 + self.len - self.buf.len() as u64;
        self.storage
            .write_at(self.file, at, &self.buf, false)
            .map_err(io_err("write", self.tmp_path.clone()))?;
        self.buf.clear();
        Ok(())
    }
}

/// Writes the snapshot at `zxid` whose payload `produce` writes into the sink, in order,
/// without the payload ever being whole in memory. The steps, each an operation a crash
/// can stop before: create the temp file (replacing a leftover of an earlier failed
/// attempt at this zxid), write the payload after the header's slot (buffered), write
/// the header (length and checksum known only now), fsync, rename over the final name,
/// fsync the directory. When `produce` fails (its error, or the sink's), the temp file
/// is removed and nothing gets the final name. Returns the final path and the payload
/// length.
pub fn write_streamed_with<S, E, F>(
    storage: &mut S,
    zxid: i64,
    produce: F,
) -> Result<(PathBuf, u64), E>
where
    S: Storage,
    E: From<SnapshotError>,
    F: FnOnce(&mut PayloadSink<'_, S>) -> Result<(), E>,
{
    let name = snapshot_name(zxid);
    let tmp = format!("{name}{TEMP_SUFFIX}");
    let tmp_path = storage.path(&tmp);
    let file = match storage.create(&tmp) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // An earlier attempt at this zxid failed (a crash's leftovers go at startup).
            storage
                .remove(&tmp)
                .map_err(io_err("remove", tmp_path.clone()))?;
            storage
                .create(&tmp)
                .map_err(io_err("create", tmp_path.clone()))?
        }
        Err(e) => return Err(io_err("create", tmp_path)(e).into()),
    };
    let mut sink = PayloadSink {
        storage: &mut *storage,
        file,
        tmp_path: tmp_path.clone(),
        len: 0,
        buf: Vec::with_capacity(SINK_BUFFER_BYTES),
        hasher: xxhash_rust::xxh3::Xxh3::new(),
    };
    let produced = produce(&mut sink).and_then(|()| sink.flush().map_err(E::from));
    let (len, checksum) = (sink.len, sink.hasher.digest());
    drop(sink);
    let written = produced.and_then(|()| {
        let header = encode_header_parts(zxid, len, checksum);
        storage
            .write_at(file, 0, &header, false)
            .map_err(io_err("write", tmp_path.clone()))?;
        // Whole and durable before it gets its final name: a final name never shows a
        // partial file, whatever a crash keeps of the directory.
        storage
            .sync_all(file)
            .map_err(io_err("fsync", tmp_path.clone()))?;
        Ok(())
    });
    storage.close(file);
    if let Err(e) = written {
        // Best effort: a leftover temp file is removed at startup anyway.
        let _ = storage.remove(&tmp);
        return Err(e);
    }
    storage
        .rename(&tmp, &name, Overwrite::Allow)
        .map_err(io_err("rename", tmp_path))?;
    storage
        .sync_dir()
        .map_err(io_err("fsync directory", storage.path("")))?;
    Ok((storage.path(&name), len))
}

/// The snapshot files in `dir`, plain and compressed, oldest (smallest zxid) first, one
/// per zxid: where a crash left both `X` and `X.zst`, only the plain `X` is listed (see
/// [`remove_temp_files`]). A missing directory has none. Other files are ignored, temp
/// files included; a name that starts with `fk-snap.` but is neither a snapshot's nor a
/// temp file's is refused.
pub fn list(dir: &Path) -> Result<Vec<SnapshotFile>, SnapshotError> {
    match existing(dir)? {
        Some(mut storage) => list_with(&mut storage),
        None => Ok(Vec::new()),
    }
}

/// [`list`] on any [`Storage`].
pub fn list_with<S: Storage>(storage: &mut S) -> Result<Vec<SnapshotFile>, SnapshotError> {
    let names = storage.list().map_err(io_err("list", storage.path("")))?;
    let mut out = Vec::new();
    for name in names {
        if !name.starts_with(NAME_PREFIX) || name.ends_with(TEMP_SUFFIX) {
            continue;
        }
        let path = storage.path(&name);
        let Some((zxid, _)) = parse_any_snapshot_name(&name) else {
            return Err(SnapshotError::UnexpectedFile { file: path });
        };
        let file = storage.open(&name).map_err(io_err("open", path.clone()))?;
        let len = storage.len(file);
        storage.close(file);
        let bytes = len.map_err(io_err("stat", path.clone()))?;
        out.push(SnapshotFile {
            zxid,
            name,
            path,
            bytes,
        });
    }
    // Plain before compressed at one zxid, and only the first kept.
    out.sort_by_key(|s| (s.zxid, s.is_compressed()));
    out.dedup_by_key(|s| s.zxid);
    Ok(out)
}

/// Maps and verifies one snapshot file: header (magic, checksum, version, flags), the
/// zxid against the name's, the length against the file's, the payload checksum.
pub fn read(file: &SnapshotFile) -> Result<Snapshot, SnapshotError> {
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let mut storage =
        DiskStorage::open_read_only(dir).map_err(io_err("open", file.path.clone()))?;
    read_with(&mut storage, file)
}

/// [`read`] on any [`Storage`] (`file` from [`list_with`] on the same storage).
///
/// A compressed file is decompressed into memory and verified the same way (its
/// offsets are then in the decompressed file, or, for a zstd failure, the compressed
/// one; the reason says which); nothing is written. The server never serves one so:
/// it restores it to a plain, mapped file first ([`load_with`]).
pub fn read_with<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
) -> Result<Snapshot, SnapshotError> {
    if file.is_compressed() {
        let (buf, len, h) = compressed::read_whole(storage, file)?;
        return Ok(Snapshot {
            path: file.path.clone(),
            zxid: h.zxid,
            version: h.version,
            bytes: Backing::Heap { buf, len },
        });
    }
    let path = &file.path;
    let id = match storage.open(&file.name) {
        Ok(id) => id,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Compressed since it was listed: a tool runs beside a live server, which
            // compresses superseded snapshots in the background.
            let name = compressed_name(file.zxid);
            let twin = SnapshotFile {
                path: storage.path(&name),
                name,
                ..file.clone()
            };
            return match read_with(storage, &twin) {
                Err(SnapshotError::Io { op: "open", .. }) => Err(io_err("open", path.clone())(e)),
                other => other,
            };
        }
        Err(e) => return Err(io_err("open", path.clone())(e)),
    };
    let result = read_open(storage, id, file);
    storage.close(id);
    result
}

/// Reads `file` to serve it: a plain one as [`read_with`] does; a compressed one is
/// first restored to its plain name ([`restore_with`]), so that the server maps it as
/// it maps any snapshot. Errors name `file` (the `.zst` when that is what failed).
pub fn load_with<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
) -> Result<Snapshot, SnapshotError> {
    if file.is_compressed() {
        let plain = restore_with(storage, file)?;
        return read_with(storage, &plain);
    }
    read_with(storage, file)
}

/// [`plain_bytes_with`] on the real disk.
pub fn plain_bytes(file: &SnapshotFile) -> Result<u64, SnapshotError> {
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let mut storage =
        DiskStorage::open_read_only(dir).map_err(io_err("open", file.path.clone()))?;
    plain_bytes_with(&mut storage, file)
}

/// [`load_with`] on the real disk.
pub fn load(file: &SnapshotFile) -> Result<Snapshot, SnapshotError> {
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let mut storage =
        DiskStorage::open_read_only(dir).map_err(io_err("open", file.path.clone()))?;
    load_with(&mut storage, file)
}

fn read_open<S: Storage>(
    storage: &mut S,
    id: crate::backend::FileId,
    file: &SnapshotFile,
) -> Result<Snapshot, SnapshotError> {
    let path = &file.path;
    let len = storage.len(id).map_err(io_err("stat", path.clone()))?;
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
    storage
        .read_at(id, 0, &mut header)
        .map_err(io_err("read", path.clone()))?;
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
    let bytes = match storage.map(id).map_err(io_err("mmap", path.clone()))? {
        Some(map) => {
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
            Backing::Map(map)
        }
        None => {
            let total = len as usize;
            let mut buf = vec![0u128; total.div_ceil(16)];
            // SAFETY: as in `Snapshot::bytes`, and `buf` is borrowed exclusively.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), total) };
            storage
                .read_at(id, 0, bytes)
                .map_err(io_err("read", path.clone()))?;
            Backing::Heap { buf, len: total }
        }
    };
    let snap = Snapshot {
        path: path.clone(),
        zxid: h.zxid,
        version: h.version,
        bytes,
    };
    let checksum = xxh3_64(snap.payload());
    if let Backing::Map(m) = &snap.bytes {
        // The checksum pass made every page resident; drop them from this process so
        // its RSS holds only what is served (a restart's reads bring back the pages
        // they touch; the children and ACL tables of a getData-only load stay out).
        // SAFETY: a read-only mapping of a file nobody writes while it is mapped
        // (snapshots are immutable once renamed into place): a dropped page reads the
        // same bytes back from the page cache or the file on its next access.
        let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        // Served from afterwards: lookups land anywhere.
        let _ = m.advise(memmap2::Advice::Random);
    }
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

/// Removes what a crash may leave behind from `dir`, then fsyncs it: temp files of
/// snapshots being written, compressed or restored (`fk-snap.<16 hex>.tmp`,
/// `fk-snap.<16 hex>.zst.tmp`), and the compressed twin `X.zst` of a plain snapshot `X`
/// (a crash between the rename and the removal of a compression or a restore). Returns
/// how many files it removed.
///
/// Of such twins the plain one is kept: both are whole (each was fsynced under its
/// temp name and verified before its rename, and neither is written after), so either
/// would do, and the plain one is what the server maps and serves: keeping it needs no
/// decompression at startup, and it is the one a restore meant to leave. A compression
/// the crash cut short is simply done again after the next snapshot.
pub fn remove_temp_files(dir: &Path) -> Result<usize, SnapshotError> {
    match existing(dir)? {
        Some(mut storage) => remove_temp_files_with(&mut storage),
        None => Ok(0),
    }
}

/// [`remove_temp_files`] on any [`Storage`].
pub fn remove_temp_files_with<S: Storage>(storage: &mut S) -> Result<usize, SnapshotError> {
    let names = storage.list().map_err(io_err("list", storage.path("")))?;
    let mut removed = 0;
    for name in &names {
        let twin_of_plain = name.strip_suffix(COMPRESSED_SUFFIX).is_some_and(|plain| {
            parse_snapshot_name(plain).is_some() && names.iter().any(|n| n == plain)
        });
        if (name.starts_with(NAME_PREFIX) && name.ends_with(TEMP_SUFFIX)) || twin_of_plain {
            storage
                .remove(name)
                .map_err(io_err("remove", storage.path(name)))?;
            removed += 1;
        }
    }
    if removed > 0 {
        storage
            .sync_dir()
            .map_err(io_err("fsync directory", storage.path("")))?;
    }
    Ok(removed)
}

/// Retention: keeps the newest `keep` snapshots (at least 1) and removes the older ones,
/// oldest first, fsyncing the directory after each removal (a crash then leaves an
/// oldest-first prefix removed). Returns the snapshots kept, oldest first; the caller may
/// then drop log records at or below the oldest kept zxid.
///
/// It goes by the names alone and reads no file: a damaged snapshot among the newest
/// `keep` counts as kept (see FORMAT.md, "Taking snapshots, retention, recovery").
/// Compressed snapshots count like plain ones; a zxid's compressed twin (a crash's
/// leftover, see [`remove_temp_files`]) goes with it.
pub fn retain(dir: &Path, keep: usize) -> Result<Vec<SnapshotFile>, SnapshotError> {
    match existing(dir)? {
        Some(mut storage) => retain_with(&mut storage, keep),
        None => Ok(Vec::new()),
    }
}

/// [`retain`] on any [`Storage`].
pub fn retain_with<S: Storage>(
    storage: &mut S,
    keep: usize,
) -> Result<Vec<SnapshotFile>, SnapshotError> {
    retain_claimed_with(storage, keep, |_| Some(()))
}

/// [`retain`], asking `claim` for each snapshot just before removing it: `None` keeps
/// it on disk for now (an ensemble member pins a snapshot a follower is fetching; a
/// later retention removes it once the pin has expired), and it is not among the
/// snapshots returned, which are still the newest `keep`; `Some(claim)` is held while
/// the files are removed (see [`compress_superseded_claimed_with`]).
pub fn retain_claimed<C>(
    dir: &Path,
    keep: usize,
    claim: impl FnMut(&SnapshotFile) -> Option<C>,
) -> Result<Vec<SnapshotFile>, SnapshotError> {
    match existing(dir)? {
        Some(mut storage) => retain_claimed_with(&mut storage, keep, claim),
        None => Ok(Vec::new()),
    }
}

/// [`retain_claimed`] on any [`Storage`].
pub fn retain_claimed_with<S: Storage, C>(
    storage: &mut S,
    keep: usize,
    mut claim: impl FnMut(&SnapshotFile) -> Option<C>,
) -> Result<Vec<SnapshotFile>, SnapshotError> {
    let mut all = list_with(storage)?;
    let keep = keep.max(1);
    let drop = all.len().saturating_sub(keep);
    for old in all.drain(..drop) {
        let Some(_held) = claim(&old) else {
            continue;
        };
        match storage.remove(&old.name) {
            // Compressed (or removed) by another thread between the listing and the
            // claim: its `.zst`, if any, goes below.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !old.is_compressed() => {}
            r => r.map_err(io_err("remove", old.path.clone()))?,
        }
        if !old.is_compressed() {
            match storage.remove(&compressed_name(old.zxid)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove", storage.path(&compressed_name(old.zxid)))(
                        e,
                    ));
                }
                _ => {}
            }
        }
        storage
            .sync_dir()
            .map_err(io_err("fsync directory", storage.path("")))?;
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

    use crate::backend::sim::{Prng, SimFaults, SimStorage};
    use std::collections::BTreeMap;

    /// Seeds for the simulator tests: `FK_SEED=<n>` replays one, `FK_SEEDS=<n>` runs more.
    fn seeds(default_count: u64) -> Vec<u64> {
        if let Ok(s) = std::env::var("FK_SEED") {
            return vec![s.trim().parse().expect("FK_SEED is a u64")];
        }
        let n = std::env::var("FK_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_count);
        (0..n).collect()
    }

    fn for_each_seed(name: &str, default_count: u64, mut run: impl FnMut(u64)) {
        for seed in seeds(default_count) {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)));
            if let Err(panic) = outcome {
                eprintln!("{name} failed for seed {seed}; replay: FK_SEED={seed} cargo test -p ferrokeeper-storage --lib {name}");
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// A payload of a random size (empty, inside one 512-byte sector, or several), random
    /// bytes, sometimes ending in zeros.
    fn payload(rng: &mut Prng, zxid: i64) -> Vec<u8> {
        let len = match rng.below(4) {
            0 => 0,
            1 => rng.range(1, 400),
            _ => rng.range(400, 3000),
        } as usize;
        let mut p = vec![0u8; len];
        rng.fill(&mut p);
        if len > 8 && rng.below(3) == 0 {
            p[len - 8..].fill(0);
        }
        if len > 0 {
            p[0] = zxid as u8;
        }
        p
    }

    /// What the server does with the snapshot directory at startup (src/snapshot.rs,
    /// `load_newest`, less the payload's decoding): remove temp files, list, and read
    /// newest first until one verifies. Returns the one chosen and the rejections, newest
    /// first.
    fn next_start(sim: &mut SimStorage) -> (Option<Snapshot>, Vec<SnapshotError>) {
        remove_temp_files_with(sim).expect("remove temp files");
        let mut rejected = Vec::new();
        for f in list_with(sim).expect("list").iter().rev() {
            match read_with(sim, f) {
                Ok(snap) => return (Some(snap), rejected),
                Err(e) => rejected.push(e),
            }
        }
        (None, rejected)
    }

    /// The step of `write_with` / `retain_with` the process died in.
    fn crash_point(died_at: &(&'static str, String), write_done: bool) -> &'static str {
        let tmp = died_at.1.ends_with(TEMP_SUFFIX);
        match died_at.0 {
            "create" if tmp => "write: create the temp file",
            "write" if tmp => "write: header or payload",
            "sync_all" if tmp => "write: fsync the temp file",
            "rename" if tmp => "write: rename to the final name",
            "sync_dir" if !write_done => "write: fsync the directory",
            "list" => "retain: list",
            "open" | "len" => "retain: size the files",
            "remove" => "retain: remove an old snapshot",
            "sync_dir" => "retain: fsync the directory after a removal",
            _ => panic!("unexpected crash point {died_at:?}"),
        }
    }

    /// A crash at every step of writing a snapshot and of the retention after it, each
    /// followed by a power cut (the simulator keeps any mix of unsynced bytes and a prefix
    /// of the unsynced directory changes). At the next start: temp leftovers are removed,
    /// every file with a final name is complete and verifies (a temp file is fsynced before
    /// its rename), the newest one is the new snapshot if `write` returned (or may be, if
    /// not), retention has removed an oldest-first prefix only, and retention then keeps the
    /// newest three.
    #[test]
    fn a_crash_at_every_step_of_writing_a_snapshot_keeps_the_newest_complete_one() {
        let mut points: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
        for_each_seed(
            "a_crash_at_every_step_of_writing_a_snapshot_keeps_the_newest_complete_one",
            300,
            |seed| {
                let mut rng = Prng::new(seed);
                let old: Vec<(i64, Vec<u8>)> = [0x10i64, 0x20, 0x30]
                    .iter()
                    .map(|&z| (z, payload(&mut rng, z)))
                    .collect();
                let new = (0x40i64, payload(&mut rng, 0x40));
                // The operations do not depend on the simulator's seed (no faults but the
                // death), so each crash point gets a seed of its own: the crash's choices
                // (which bytes and directory changes survive) then vary across them.
                let setup = |k: u64| {
                    let mut sim = SimStorage::new(seed ^ 0xABCD ^ (k << 32));
                    for (z, p) in &old {
                        write_with(&mut sim, *z, p).expect("write without faults");
                    }
                    sim
                };
                // A run that may die: the write, then retention as the server runs it.
                let attempt = |sim: &mut SimStorage| -> (bool, bool) {
                    let written = write_with(sim, new.0, &new.1).is_ok();
                    let retained = written && retain_with(sim, 3).is_ok();
                    (written, retained)
                };
                let mut sim = setup(u64::MAX);
                sim.set_faults(SimFaults::default());
                assert_eq!(attempt(&mut sim), (true, true));
                let total_ops = sim.ops();
                for k in 0..total_ops {
                    let mut sim = setup(k);
                    sim.set_faults(SimFaults {
                        crash_after_ops: Some(k),
                        ..SimFaults::default()
                    });
                    let (written, _) = attempt(&mut sim);
                    let report = sim.crash();
                    let died_at = report.died_at.clone().expect("the process died");
                    *points.entry(crash_point(&died_at, written)).or_default() += 1;
                    let ctx = format!("seed {seed}, k {k}: {report:?}");

                    // What a crash leaves on disk, before the next start cleans up.
                    let tmp = format!("{}{TEMP_SUFFIX}", snapshot_name(new.0));
                    let whole = [&encode_header(new.0, &new.1)[..], &new.1[..]].concat();
                    let state = match (sim.file_bytes(&tmp), sim.file_bytes(&snapshot_name(new.0)))
                    {
                        (None, None) => "no trace of the new snapshot",
                        (Some(b), None) if b == whole => "temp file whole, not renamed",
                        (Some(b), None) if b.len() < whole.len() => "temp file partly written",
                        (Some(_), None) => "temp file full size, holes not landed",
                        (None, Some(_)) => "renamed",
                        (Some(_), Some(_)) => panic!("both names survived: {ctx}"),
                    };
                    *states.entry(state).or_default() += 1;

                    let (chosen, rejected) = next_start(&mut sim);
                    assert!(
                        sim.names().iter().all(|n| !n.ends_with(TEMP_SUFFIX)),
                        "temp file left: {ctx}"
                    );
                    assert!(
                        rejected.is_empty(),
                        "a crash left a damaged snapshot: {rejected:?} {ctx}"
                    );
                    let chosen = chosen.expect("a snapshot");
                    if written {
                        assert_eq!(chosen.zxid, new.0, "acknowledged snapshot lost: {ctx}");
                    }
                    let want = if chosen.zxid == new.0 {
                        &new.1
                    } else {
                        &old[2].1
                    };
                    assert!(
                        chosen.zxid == new.0 || chosen.zxid == old[2].0,
                        "chose 0x{:x}: {ctx}",
                        chosen.zxid
                    );
                    assert_eq!(chosen.payload(), &want[..], "{ctx}");
                    // An oldest-first prefix removed, never a gap; the newest three always there.
                    let zxids: Vec<i64> = list_with(&mut sim)
                        .expect("list")
                        .iter()
                        .map(|f| f.zxid)
                        .collect();
                    let all = [0x10, 0x20, 0x30, 0x40];
                    let newest = all.iter().position(|&z| z == chosen.zxid).expect("known");
                    assert!(zxids.len() >= 3, "{zxids:x?}: {ctx}");
                    assert_eq!(zxids[..], all[newest + 1 - zxids.len()..=newest], "{ctx}");
                    // Retention at the next start keeps the newest three, the chosen one last.
                    let kept = retain_with(&mut sim, 3).expect("retain");
                    assert_eq!(
                        kept.iter().map(|f| f.zxid).collect::<Vec<_>>(),
                        all[newest - 2..=newest],
                        "{ctx}"
                    );
                }
            },
        );
        eprintln!("crash points: {points:#?}\nstates on disk: {states:#?}");
        if std::env::var("FK_SEED").is_err() {
            for point in [
                "write: create the temp file",
                "write: header or payload",
                "write: fsync the temp file",
                "write: rename to the final name",
                "write: fsync the directory",
                "retain: list",
                "retain: size the files",
                "retain: remove an old snapshot",
                "retain: fsync the directory after a removal",
            ] {
                assert!(
                    points.contains_key(point),
                    "never crashed at {point}: {points:?}"
                );
            }
            for state in [
                "no trace of the new snapshot",
                "temp file whole, not renamed",
                "temp file partly written",
                "temp file full size, holes not landed",
                "renamed",
            ] {
                assert!(states.contains_key(state), "never left {state}: {states:?}");
            }
        }
    }

    /// Where verification must place damage: the field a check reads (FORMAT.md, snapshot
    /// "Verification order").
    fn expected_offset(flipped_at: usize) -> u64 {
        match flipped_at {
            0..8 => MAGIC_OFFSET as u64,
            // Version, flags, zxid, length, payload checksum, the header checksum itself:
            // the header checksum catches them all first.
            8..48 => HEADER_CHECKSUM_OFFSET as u64,
            _ => HEADER_BYTES as u64,
        }
    }

    /// Damaged complete files — a flipped bit anywhere, a truncation, bytes appended, a
    /// file renamed to another zxid — are reported with the file's name and the byte offset
    /// of the check that failed, and the next start falls back to the newest snapshot that
    /// verifies.
    #[test]
    fn damaged_complete_snapshots_are_reported_with_file_and_offset() {
        let mut kinds: BTreeMap<u64, u64> = BTreeMap::new();
        for_each_seed(
            "damaged_complete_snapshots_are_reported_with_file_and_offset",
            300,
            |seed| {
                let mut rng = Prng::new(seed);
                let mut sim = SimStorage::new(seed);
                let zxids = [0x100i64, 0x200, 0x300, 0x400];
                let payloads: Vec<Vec<u8>> = zxids.iter().map(|&z| payload(&mut rng, z)).collect();
                for (z, p) in zxids.iter().zip(&payloads) {
                    write_with(&mut sim, *z, p).expect("write");
                }
                // Damage the newest `n` files (the oldest stays whole), one way each.
                let n = rng.range(1, 3) as usize;
                let mut expected: Vec<(String, u64)> = Vec::new();
                for i in (zxids.len() - n..zxids.len()).rev() {
                    let name = snapshot_name(zxids[i]);
                    let len = HEADER_BYTES + payloads[i].len();
                    let offset = match rng.below(5) {
                        0 | 1 => {
                            let at = rng.below(len as u64) as usize;
                            sim.flip_bit(&name, at, rng.below(8) as u8);
                            expected_offset(at)
                        }
                        2 => {
                            let keep = rng.below(len as u64);
                            truncate(&mut sim, &name, keep);
                            if keep < HEADER_BYTES as u64 {
                                keep
                            } else {
                                PAYLOAD_LEN_OFFSET as u64
                            }
                        }
                        3 => {
                            let f = sim.open(&name).expect("open");
                            sim.write_at(f, len as u64, b"more", true).expect("append");
                            sim.close(f);
                            PAYLOAD_LEN_OFFSET as u64
                        }
                        _ => {
                            // Another snapshot's whole file under this name.
                            let other = sim.file_bytes(&snapshot_name(zxids[0])).expect("oldest");
                            sim.remove(&name).expect("remove");
                            let f = sim.create(&name).expect("create");
                            sim.write_at(f, 0, &other, true).expect("write");
                            sim.close(f);
                            sim.sync_dir().expect("sync");
                            ZXID_OFFSET as u64
                        }
                    };
                    *kinds.entry(offset).or_default() += 1;
                    expected.push((name, offset));
                }
                let (chosen, rejected) = next_start(&mut sim);
                let chosen = chosen.unwrap_or_else(|| {
                    panic!("seed {seed}: the oldest is intact, yet: {rejected:?}")
                });
                assert_eq!(chosen.zxid, zxids[zxids.len() - n - 1], "seed {seed}");
                assert_eq!(chosen.payload(), &payloads[zxids.len() - n - 1][..]);
                assert_eq!(rejected.len(), n);
                for (err, (name, offset)) in rejected.iter().zip(&expected) {
                    match err {
                        SnapshotError::Corrupt {
                            file, offset: o, ..
                        } => {
                            assert!(file.ends_with(name), "{err}");
                            assert_eq!(o, offset, "{err}");
                            let text = err.to_string();
                            assert!(
                                text.contains(name.as_str())
                                    && text.contains(&format!("byte offset {offset}")),
                                "{text}"
                            );
                        }
                        other => panic!("expected Corrupt for {name}, got {other}"),
                    }
                }
            },
        );
        eprintln!("offsets reported: {kinds:?}");
        if std::env::var("FK_SEED").is_err() {
            for offset in [0, 16, 24, 40, 48] {
                assert!(
                    kinds.contains_key(&offset),
                    "no damage found at {offset}: {kinds:?}"
                );
            }
            assert!(
                kinds.keys().any(|&o| o < HEADER_BYTES as u64
                    && o != 0
                    && o != 16
                    && o != 24
                    && o != 40),
                "no file cut inside its header: {kinds:?}"
            );
        }
    }

    /// Rewrites `name` to its first `keep` bytes, durably.
    fn truncate(sim: &mut SimStorage, name: &str, keep: u64) {
        let bytes = sim.file_bytes(name).expect("file");
        sim.remove(name).expect("remove");
        let f = sim.create(name).expect("create");
        sim.write_at(f, 0, &bytes[..keep as usize], true)
            .expect("write");
        sim.close(f);
        sim.sync_dir().expect("sync");
    }

    /// The same crash states built on a real directory (the simulator's model is only
    /// as good as its match with the disk code): leftovers of every kind are removed or
    /// skipped, and the newest complete snapshot is read.
    #[test]
    fn crash_states_on_the_real_disk() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), 0x10, b"old").expect("write");
        write(d.path(), 0x20, b"newest complete").expect("write");
        let whole = [&encode_header(0x30, b"never renamed")[..], b"never renamed"].concat();
        let tmp = |z: i64| d.path().join(format!("{}{TEMP_SUFFIX}", snapshot_name(z)));
        std::fs::write(tmp(0x30), &whole).expect("whole temp");
        std::fs::write(tmp(0x40), &whole[..30]).expect("partial temp");
        std::fs::write(tmp(0x50), b"").expect("empty temp");
        // A snapshot write whose temp file exists already (an earlier failed attempt).
        std::fs::write(tmp(0x20), b"stale").expect("stale temp");
        write(d.path(), 0x20, b"newest complete").expect("write over a stale temp");
        assert!(!tmp(0x20).exists());
        let l = list(d.path()).expect("list");
        assert_eq!(l.iter().map(|f| f.zxid).collect::<Vec<_>>(), [0x10, 0x20]);
        assert_eq!(remove_temp_files(d.path()).expect("remove"), 3);
        let mut names: Vec<String> = std::fs::read_dir(d.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [snapshot_name(0x10), snapshot_name(0x20)]);
        let newest = read(&list(d.path()).expect("list")[1]).expect("read");
        assert_eq!(newest.payload(), b"newest complete");
        // A missing directory: nothing listed, nothing removed, nothing kept.
        let missing = d.path().join("missing");
        assert!(list(&missing).expect("list").is_empty());
        assert_eq!(remove_temp_files(&missing).expect("remove"), 0);
        assert!(retain(&missing, 3).expect("retain").is_empty());
        // Writing creates it, parents included.
        write(&missing.join("deeper"), 1, b"x").expect("write creates the directories");
        assert_eq!(list(&missing.join("deeper")).expect("list").len(), 1);
    }
}
