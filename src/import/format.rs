//! The byte layout of ZooKeeper's data directory, as named constants, and the file-level
//! helpers: file names, compression, checksums. See the module map in `import/mod.rs`
//! for the layout itself.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::ImportError;

/// The subdirectory ZooKeeper keeps its files in (`FileTxnSnapLog.version` + 2).
pub const VERSION_DIR: &str = "version-2";
/// File name prefix of snapshots (`FileSnap.SNAPSHOT_FILE_PREFIX`).
pub const SNAP_PREFIX: &str = "snapshot";
/// File name prefix of transaction logs (`FileTxnLog.LOG_FILE_PREFIX`).
pub const LOG_PREFIX: &str = "log";

/// `FileSnap.SNAP_MAGIC`: "ZKSN" as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG" as a big-endian int.
pub const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// The only `FileHeader.version` ZooKeeper 3.5–3.9 write.
pub const FORMAT_VERSION: i32 = 2;
/// `FileHeader` is magic (int), version (int), dbid (long).
pub const FILE_HEADER_LEN: usize = 16;
/// Offset of `FileHeader.version`.
pub const FILE_HEADER_VERSION_AT: u64 = 4;

/// A log record starts with its Adler32 checksum (long) and its length (int).
pub const LOG_RECORD_PREFIX_LEN: usize = 12;
/// Each log record ends with this byte (`'B'`); anything else means the record is partial.
pub const LOG_RECORD_END: u8 = b'B';

/// A snapshot seal: Adler32 of every byte before it (long), then the string "/".
pub const SEAL_PATH: &str = "/";
/// The seal's trailing string as bytes: length 1 (int) and '/'. An uncompressed snapshot
/// must end with them (`SnapStream.isValidCheckedStream`).
pub const SEAL_TAIL: [u8; 5] = [0, 0, 0, 1, b'/'];
/// A whole seal: checksum (8) + "/" (5).
pub const SEAL_LEN: usize = 13;
/// The node-list terminator in a snapshot: the path "/" (the root itself is stored as "").
pub const END_OF_NODES: &str = "/";

/// ACL id meaning `OPEN_ACL_UNSAFE` without a cache entry (`ReferenceCountedACLCache`).
pub const OPEN_ACL_REF: i64 = -1;

/// gzip's first two bytes (`GZIPInputStream.GZIP_MAGIC`, little-endian 0x8b1f).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// snappy-java's stream header magic (`SnappyCodec.MAGIC_HEADER`).
pub const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// snappy-java's stream header: magic, then version and compatible version (ints).
pub const SNAPPY_HEADER_LEN: usize = 16;

/// How a snapshot file is encoded, from its last name extension (`SnapStream.StreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain jute bytes (`snapshot.<zxid>`; ZooKeeper's default, "CHECKED").
    None,
    /// `snapshot.<zxid>.gz`: one or more gzip members.
    Gzip,
    /// `snapshot.<zxid>.snappy`: snappy-java's stream framing.
    Snappy,
}

impl Compression {
    /// The mode ZooKeeper infers from a file name: the text after the last dot, compared
    /// without case; anything unknown (and no extension) is uncompressed.
    pub fn of_name(name: &str) -> Compression {
        match name.rsplit_once('.') {
            Some((_, ext)) if ext.eq_ignore_ascii_case("gz") => Compression::Gzip,
            Some((_, ext)) if ext.eq_ignore_ascii_case("snappy") => Compression::Snappy,
            _ => Compression::None,
        }
    }
}

/// The zxid in a file name `<prefix>.<hex zxid>[.anything]`, as `Util.getZxidFromName`.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    // Java's Long.parseLong(hex, 16) takes a sign but no "0x"; so does from_str_radix.
    i64::from_str_radix(hex, 16).ok()
}

/// One snapshot or log file found in a `version-2` directory.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Full path.
    pub path: PathBuf,
    /// The zxid in its name.
    pub zxid: i64,
    /// Size on disk.
    pub bytes: u64,
}

/// `<dir>/version-2`, or `dir` itself when it is already a `version-2` directory.
pub fn version_dir(dir: &Path) -> Result<PathBuf, ImportError> {
    let inner = dir.join(VERSION_DIR);
    if inner.is_dir() {
        return Ok(inner);
    }
    if dir.file_name().is_some_and(|n| n == VERSION_DIR) && dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    Err(ImportError::NoVersionDir {
        dir: dir.to_path_buf(),
    })
}

/// The files in `dir` named `<prefix>.<hex zxid>...`, sorted by zxid ascending.
pub fn list_files(dir: &Path, prefix: &str) -> Result<Vec<DataFile>, ImportError> {
    let io = |source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(zxid) = name.to_str().and_then(|n| zxid_from_name(n, prefix)) else {
            continue;
        };
        let meta = entry.metadata().map_err(|source| ImportError::Io {
            path: entry.path(),
            source,
        })?;
        if !meta.is_file() {
            continue;
        }
        out.push(DataFile {
            path: entry.path(),
            zxid,
            bytes: meta.len(),
        });
    }
    // Equal zxids (snapshot.1a and snapshot.1a.gz) keep a stable, name-ordered tie-break.
    out.sort_by(|a, b| a.zxid.cmp(&b.zxid).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

/// `SnapStream.isValidSnapshot`: the cheap check ZooKeeper makes before it tries a
/// snapshot. Uncompressed files must be at least 10 bytes and end with the seal's "/";
/// compressed ones must start with their format's magic.
pub fn precheck_snapshot(path: &Path, compression: Compression) -> Result<(), ImportError> {
    use std::io::{Seek, SeekFrom};
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    match compression {
        Compression::None => {
            let mut tail = [0u8; SEAL_TAIL.len()];
            if len >= 10 {
                f.seek(SeekFrom::End(-(SEAL_TAIL.len() as i64)))
                    .and_then(|_| f.read_exact(&mut tail))
                    .map_err(io)?;
            }
            if tail != SEAL_TAIL {
                // Most likely ZooKeeper stopped while writing it.
                return Err(ImportError::Truncated {
                    file: path.to_path_buf(),
                    offset: len.saturating_sub(SEAL_TAIL.len() as u64),
                    what: "the closing seal",
                });
            }
        }
        Compression::Gzip | Compression::Snappy => {
            let (magic, format): (&[u8], _) = if compression == Compression::Gzip {
                (&GZIP_MAGIC, "gzip")
            } else {
                (&SNAPPY_MAGIC, "snappy")
            };
            let mut head = vec![0u8; magic.len()];
            let ok = f.read_exact(&mut head).is_ok() && head == magic;
            if !ok {
                return Err(ImportError::Decompress {
                    file: path.to_path_buf(),
                    format,
                    detail: format!("the file does not start with the {format} magic"),
                });
            }
        }
    }
    Ok(())
}

/// The decompressed bytes of a snapshot file.
pub fn snapshot_bytes(path: &Path, compression: Compression) -> Result<Vec<u8>, ImportError> {
    let raw = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match compression {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            // The compressed size is a lower bound; read_to_end grows from there.
            let mut out = Vec::with_capacity(raw.len());
            // GZIPInputStream reads concatenated members as one stream; so does this.
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| ImportError::Decompress {
                    file: path.to_path_buf(),
                    format: "gzip",
                    detail: e.to_string(),
                })?;
            Ok(out)
        }
        Compression::Snappy => unsnappy(&raw).map_err(|detail| ImportError::Decompress {
            file: path.to_path_buf(),
            format: "snappy",
            detail,
        }),
    }
}

/// Read buffer for an uncompressed snapshot or the compressed bytes of a gzip one.
const SNAPSHOT_READ_BUFFER_BYTES: usize = 1 << 20;

/// Where a snapshot's decompressed bytes come from, read front to back once: a file
/// (plain or gzip, decompressed as it is read), or bytes already in memory (a snappy
/// file, decompressed whole; an AdminServer `restore` body).
pub trait SnapshotSource {
    /// Reads decompressed bytes into `buf`; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ImportError>;
    /// How far the reading is: (bytes done, bytes in all), in the file's own units (a
    /// compressed file counts its compressed bytes), for progress reports.
    fn progress(&self) -> (u64, u64);
}

/// Snapshot bytes held in memory.
pub struct InMemory<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> InMemory<'a> {
    /// A source over `bytes`, from their start.
    pub fn new(bytes: &'a [u8]) -> InMemory<'a> {
        InMemory { bytes, at: 0 }
    }
}

impl SnapshotSource for InMemory<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ImportError> {
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    fn progress(&self) -> (u64, u64) {
        (self.at as u64, self.bytes.len() as u64)
    }
}

/// A snapshot file, read (and, for gzip, decompressed) as the parser asks for bytes, so
/// the decompressed snapshot is never held whole (issue #13). A snappy file is
/// decompressed whole first, as before: `snap` has no snappy-java stream reader.
pub struct SnapshotFile {
    path: PathBuf,
    compression: Compression,
    reader: FileReader,
    /// Shared with the counter under the reader: file bytes read so far.
    file_read: std::rc::Rc<std::cell::Cell<u64>>,
    file_bytes: u64,
}

enum FileReader {
    Plain(std::io::BufReader<Counted>),
    Gzip(Box<flate2::read::MultiGzDecoder<std::io::BufReader<Counted>>>),
    Unsnappied(Vec<u8>, usize),
}

/// A file that counts the bytes read from it.
struct Counted {
    file: std::fs::File,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

impl SnapshotFile {
    /// Opens `path` for reading as `compression` says.
    pub fn open(path: &Path, compression: Compression) -> Result<SnapshotFile, ImportError> {
        let io = |source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let file_read = std::rc::Rc::new(std::cell::Cell::new(0));
        let counted = Counted {
            file,
            read: file_read.clone(),
        };
        let buffered = std::io::BufReader::with_capacity(SNAPSHOT_READ_BUFFER_BYTES, counted);
        let reader = match compression {
            Compression::None => FileReader::Plain(buffered),
            // GZIPInputStream reads concatenated members as one stream; so does this.
            Compression::Gzip => {
                FileReader::Gzip(Box::new(flate2::read::MultiGzDecoder::new(buffered)))
            }
            Compression::Snappy => {
                let bytes = snapshot_bytes(path, compression)?;
                file_read.set(file_bytes);
                FileReader::Unsnappied(bytes, 0)
            }
        };
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            compression,
            reader,
            file_read,
            file_bytes,
        })
    }
}

impl SnapshotSource for SnapshotFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ImportError> {
        loop {
            let got = match &mut self.reader {
                FileReader::Plain(r) => r.read(buf),
                FileReader::Gzip(r) => r.read(buf),
                FileReader::Unsnappied(bytes, at) => {
                    let n = buf.len().min(bytes.len() - *at);
                    buf[..n].copy_from_slice(&bytes[*at..*at + n]);
                    *at += n;
                    Ok(n)
                }
            };
            return match got {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // What the decompressor refuses (bad data, a cut stream) is a decompression
                // error, as when the file was decompressed whole; the rest is the disk's.
                Err(e)
                    if self.compression == Compression::Gzip
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::InvalidData
                                | std::io::ErrorKind::InvalidInput
                                | std::io::ErrorKind::UnexpectedEof
                        ) =>
                {
                    Err(ImportError::Decompress {
                        file: self.path.clone(),
                        format: "gzip",
                        detail: e.to_string(),
                    })
                }
                Err(source) => Err(ImportError::Io {
                    path: self.path.clone(),
                    source,
                }),
            };
        }
    }

    fn progress(&self) -> (u64, u64) {
        match &self.reader {
            FileReader::Unsnappied(bytes, at) => (*at as u64, bytes.len() as u64),
            _ => (self.file_read.get(), self.file_bytes),
        }
    }
}

/// Decodes snappy-java's stream format (`SnappyOutputStream`, which ZooKeeper uses, not
/// the snappy "framing format"): a 16-byte header (magic, version, compatible version),
/// then blocks of a big-endian int length followed by that many bytes of raw snappy.
/// A header may appear again between blocks where streams were concatenated.
pub fn unsnappy(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.len() < SNAPPY_HEADER_LEN || raw[..SNAPPY_MAGIC.len()] != SNAPPY_MAGIC {
        return Err("missing snappy-java stream header".into());
    }
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    let mut at = SNAPPY_HEADER_LEN;
    while at < raw.len() {
        if raw[at..].starts_with(&SNAPPY_MAGIC) {
            at += SNAPPY_HEADER_LEN;
            continue;
        }
        let Some(len_bytes) = raw.get(at..at + 4) else {
            return Err(format!("byte {at}: block length truncated"));
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let Some(block) = usize::try_from(len)
            .ok()
            .and_then(|n| raw.get(at + 4..at + 4 + n))
        else {
            return Err(format!("byte {at}: block of {len} bytes does not fit"));
        };
        let n = snap::raw::decompress_len(block).map_err(|e| format!("byte {at}: {e}"))?;
        let start = out.len();
        out.resize(start + n, 0);
        decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| format!("byte {at}: {e}"))?;
        at += 4 + block.len();
    }
    Ok(out)
}

/// Adler32 as `java.util.zip.Adler32.getValue()` returns it (0 ..= u32::MAX in a long).
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut a = adler2::Adler32::new();
    a.write_slice(bytes);
    i64::from(a.checksum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_like_util_get_zxid_from_name() {
        assert_eq!(zxid_from_name("snapshot.1a", SNAP_PREFIX), Some(0x1a));
        assert_eq!(zxid_from_name("snapshot.1a.gz", SNAP_PREFIX), Some(0x1a));
        assert_eq!(
            zxid_from_name("log.100000001", LOG_PREFIX),
            Some(0x1_0000_0001)
        );
        assert_eq!(zxid_from_name("log.zz", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("log", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("snapshot.1", LOG_PREFIX), None);
        assert_eq!(Compression::of_name("snapshot.1.GZ"), Compression::Gzip);
        assert_eq!(
            Compression::of_name("snapshot.1.snappy"),
            Compression::Snappy
        );
        assert_eq!(Compression::of_name("snapshot.1"), Compression::None);
        assert_eq!(Compression::of_name("snapshot.1.tmp"), Compression::None);
    }

    #[test]
    fn magics_spell_their_names() {
        assert_eq!(SNAP_MAGIC, 0x5a4b_534e);
        assert_eq!(LOG_MAGIC, 0x5a4b_4c47);
    }

    #[test]
    fn adler32_of_wikipedia() {
        // The classic example: Adler32("Wikipedia") = 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn snappy_java_stream_round_trip() {
        let payload: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        let mut raw = SNAPPY_MAGIC.to_vec();
        raw.extend_from_slice(&1i32.to_be_bytes());
        raw.extend_from_slice(&1i32.to_be_bytes());
        let mut enc = snap::raw::Encoder::new();
        for (i, chunk) in payload.chunks(32 * 1024).enumerate() {
            if i == 3 {
                // A concatenated stream repeats the header.
                raw.extend_from_slice(&SNAPPY_MAGIC);
                raw.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
            }
            let block = enc.compress_vec(chunk).expect("compress");
            raw.extend_from_slice(&(block.len() as i32).to_be_bytes());
            raw.extend_from_slice(&block);
        }
        assert_eq!(unsnappy(&raw).expect("decode"), payload);
        assert!(unsnappy(&raw[..raw.len() - 1]).is_err());
        assert!(unsnappy(&raw[4..]).is_err());
    }
}
