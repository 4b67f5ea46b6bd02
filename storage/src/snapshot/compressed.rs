//! Superseded snapshots, stored zstd-compressed (`fk-snap.<16 hex>.zst`).
//!
//! Only the newest snapshot is mapped and served; an older one is a fallback for a
//! startup whose newest snapshot fails verification, and a source for operators'
//! tools. Kept plain, superseded snapshots dominated the data directory (issue #13:
//! 822 MiB of snapshots of which the newest was 196 MiB); zstd at a fast level keeps a
//! bench snapshot at about 7% of its size.
//!
//! A compressed file is one standard zstd frame (content size and content checksum
//! included) of the *whole* plain file, header and all, so `zstd -d` gives back the
//! plain file byte for byte. Nothing is served from a compressed file: loading restores
//! it to its plain name first ([`restore_with`]), as does an ensemble member asked for
//! it by a follower, and the tools decompress it into memory ([`super::read_with`]).
//! Whoever runs several of these at once keeps them off each other's files with the
//! claims the `_claimed` functions take ([`compress_superseded_claimed_with`],
//! [`super::retain_claimed_with`]).
//!
//! Both directions check the data before they give it a final name: compression hashes
//! the plain file as it reads it against its header's payload checksum, and then
//! decompresses what it wrote and checks it the same way; restoring checks the
//! decompressed bytes before the rename. So no final name ever holds bytes that were
//! not verified on the way there. The byte layout and the crash rules are in
//! `storage/FORMAT.md` ("Compressed superseded snapshots").

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{
    compressed_name, decode_header, io_err, list_with, snapshot_name, Header, SnapshotError,
    SnapshotFile, HEADER_BYTES, PAYLOAD_BYTES_MAX, PAYLOAD_LEN_OFFSET, TEMP_SUFFIX, ZXID_OFFSET,
};
use crate::backend::{FileId, Overwrite, Storage};

/// The zstd level superseded snapshots are compressed at. Level 1 is zstd's fastest
/// regular level. Measured on the 205 KB snapshot of 1,500 znodes that
/// `tests/snapshot_compression.rs` writes (one run, 2-core machine): level 1 at 391 MB/s
/// to 12.4% of the size, level 3 at 243 MB/s to 12.6%; bench/results/datadir-2026-12-06.md
/// measured `zstd -1` at 7.1% on the bench's snapshots. Level 3 buys nothing here for
/// 60% more CPU, on a machine whose cores also serve.
pub const LEVEL: i32 = 1;

/// Bytes read or written per step when streaming a snapshot through zstd.
const CHUNK_BYTES: usize = 1 << 20;

/// The storage shared by the zstd reader and the writer of one (de)compression, which
/// both need it mutably (one reads the source file, the other writes the temp file),
/// never at the same instant.
struct Io<'s, S: Storage> {
    storage: &'s mut S,
    /// Bytes of the compressed file handed to the decoder so far: where it was when it
    /// failed, as near as zstd lets us say.
    compressed_read: u64,
    /// The reader's own failure (a real I/O error, not damage).
    read_failed: Option<io::Error>,
}

/// A file of the storage read from the start, as a [`Read`].
struct FileReader<'a, 's, S: Storage> {
    io: &'a RefCell<Io<'s, S>>,
    file: FileId,
    at: u64,
    len: u64,
}

impl<S: Storage> Read for FileReader<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len - self.at).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let mut io = self.io.borrow_mut();
        if let Err(e) = io.storage.read_at(self.file, self.at, &mut buf[..n]) {
            io.read_failed = Some(io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        self.at += n as u64;
        io.compressed_read = self.at;
        Ok(n)
    }
}

/// A file of the storage written from the start, as a [`Write`]; nothing is synced.
struct FileWriter<'a, 's, S: Storage> {
    io: &'a RefCell<Io<'s, S>>,
    file: FileId,
    at: u64,
}

impl<S: Storage> Write for FileWriter<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .borrow_mut()
            .storage
            .write_at(self.file, self.at, buf, false)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks a plain snapshot file's bytes as they stream past: the header first (as
/// [`super::read_with`] does, against the name's zxid), then the payload's length and
/// checksum at the end. Errors name `file`; offsets are in the plain file.
struct Checker<'p> {
    file: &'p Path,
    zxid: i64,
    head: Vec<u8>,
    header: Option<Header>,
    payload_seen: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
    /// Appended to every reason: where the offsets point (the decompressed stream).
    context: &'static str,
}

impl<'p> Checker<'p> {
    fn new(file: &'p Path, zxid: i64, context: &'static str) -> Checker<'p> {
        Checker {
            file,
            zxid,
            head: Vec::with_capacity(HEADER_BYTES),
            header: None,
            payload_seen: 0,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            context,
        }
    }

    fn corrupt(&self, offset: u64, reason: String) -> SnapshotError {
        SnapshotError::Corrupt {
            file: self.file.to_path_buf(),
            offset,
            reason: format!("{reason}{}", self.context),
        }
    }

    /// Takes the next bytes of the file.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), SnapshotError> {
        if self.header.is_none() {
            let take = (HEADER_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.head.len() < HEADER_BYTES {
                return Ok(());
            }
            let h = decode_header(self.file, &self.head).map_err(|e| match e {
                SnapshotError::Corrupt {
                    file,
                    offset,
                    reason,
                } => SnapshotError::Corrupt {
                    file,
                    offset,
                    reason: format!("{reason}{}", self.context),
                },
                other => other,
            })?;
            if h.zxid != self.zxid {
                return Err(self.corrupt(
                    ZXID_OFFSET as u64,
                    format!(
                        "header zxid 0x{:x} differs from the name's 0x{:x}",
                        h.zxid, self.zxid
                    ),
                ));
            }
            if h.payload_len > PAYLOAD_BYTES_MAX {
                return Err(self.corrupt(
                    PAYLOAD_LEN_OFFSET as u64,
                    format!("payload length {} is beyond any snapshot's", h.payload_len),
                ));
            }
            self.header = Some(h);
        }
        let Some(h) = self.header else {
            unreachable!("the header was decoded above");
        };
        self.payload_seen += bytes.len() as u64;
        if self.payload_seen > h.payload_len {
            return Err(self.corrupt(
                PAYLOAD_LEN_OFFSET as u64,
                format!(
                    "more than the header's payload length {} follows the header",
                    h.payload_len
                ),
            ));
        }
        self.hasher.update(bytes);
        Ok(())
    }

    /// The end of the file: the header whole, the payload's length and checksum right.
    fn finish(&self) -> Result<Header, SnapshotError> {
        let Some(h) = self.header else {
            let len = self.head.len();
            return Err(self.corrupt(
                len as u64,
                format!("file of {len} bytes ends inside the {HEADER_BYTES}-byte header"),
            ));
        };
        if self.payload_seen != h.payload_len {
            return Err(self.corrupt(
                PAYLOAD_LEN_OFFSET as u64,
                format!(
                    "payload length {} does not match the {} bytes after the header",
                    h.payload_len, self.payload_seen
                ),
            ));
        }
        if self.hasher.digest() != h.payload_checksum {
            return Err(self.corrupt(
                HEADER_BYTES as u64,
                format!(
                    "payload checksum mismatch over bytes [{HEADER_BYTES}, {})",
                    HEADER_BYTES as u64 + h.payload_len
                ),
            ));
        }
        Ok(h)
    }
}

/// Where [`decompress`] hands each piece of the plain file: the shared storage, the
/// plain file's header, the piece's offset in the plain file, the bytes.
type PieceSink<'f, 's, S> =
    dyn FnMut(&RefCell<Io<'s, S>>, &Header, u64, &[u8]) -> Result<(), SnapshotError> + 'f;

/// Decompresses `src` (a compressed snapshot of `file_len` bytes at `zxid`, named by
/// `path` in errors), checks the plain bytes as they come ([`Checker`]) and hands each
/// piece to `out` with its offset in the plain file. zstd's own failures (a damaged or
/// cut frame, its content checksum) are reported at the offset the decoder had read up
/// to in the compressed file; the plain file's checks at their offset in the plain
/// file; the reason says which.
fn decompress<'s, S: Storage>(
    io: &RefCell<Io<'s, S>>,
    src: FileId,
    file_len: u64,
    path: &Path,
    zxid: i64,
    out: &mut PieceSink<'_, 's, S>,
) -> Result<Header, SnapshotError> {
    let reader = FileReader {
        io,
        file: src,
        at: 0,
        len: file_len,
    };
    let zstd_failed = |e: io::Error| {
        let mut io = io.borrow_mut();
        if let Some(source) = io.read_failed.take() {
            return SnapshotError::Io {
                op: "read",
                file: path.to_path_buf(),
                source,
            };
        }
        SnapshotError::Corrupt {
            file: path.to_path_buf(),
            offset: io.compressed_read,
            reason: format!(
                "zstd: {e} (offset: compressed bytes read when it failed, of {file_len})"
            ),
        }
    };
    let mut decoder = zstd::stream::read::Decoder::new(reader)
        .map_err(io_err("start decompressing", path.to_path_buf()))?;
    let mut check = Checker::new(path, zxid, " (offset in the decompressed snapshot)");
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut at = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(zstd_failed(e)),
        };
        check.feed(&buf[..n])?;
        let h = check.header.as_ref();
        if let Some(h) = h {
            // Whatever came before the header was complete is in `check.head`.
            let piece = &buf[..n];
            if at < HEADER_BYTES as u64 {
                let head_end = (HEADER_BYTES as u64 - at) as usize;
                let head_end = head_end.min(n);
                out(io, h, 0, &check.head)?;
                out(io, h, HEADER_BYTES as u64, &piece[head_end..])?;
            } else {
                out(io, h, at, piece)?;
            }
        }
        at += n as u64;
    }
    check.finish()
}

/// Compresses the plain snapshot `file` into `fk-snap.<zxid>.zst` and removes the plain
/// file. The steps, each one a crash may stop before: create `<name>.zst.tmp`
/// (replacing a leftover), stream the plain file through zstd into it while checking
/// the plain file's checksum, decompress the temp file and check it again, fsync it,
/// rename it to `.zst`, fsync the directory, remove the plain file, fsync the
/// directory. A crash leaves the plain file, perhaps with a temp file (removed at
/// startup), or both final names (the plain one wins, see [`super::remove_temp_files`]),
/// or the compressed file alone. A plain file that fails its checks is left as it is
/// (`Corrupt`). Returns the compressed file.
pub fn compress_with<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
    level: i32,
) -> Result<SnapshotFile, SnapshotError> {
    assert!(!file.is_compressed(), "{} is compressed already", file.name);
    convert(
        storage,
        file,
        compressed_name(file.zxid),
        |storage, src, dst, tmp_path| compress_into(storage, file, src, dst, tmp_path, level),
    )
}

/// Writes `file` in its other form under `name`, the steps a compression and a restore
/// share: `fill` writes `<name>.tmp` from `file` and fsyncs it, returning its length (on
/// failure the temp file is removed, best effort: a leftover one is removed at startup
/// anyway); then rename it to `name`, fsync the directory, remove `file`, fsync the
/// directory. Returns the file now under `name`.
fn convert<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
    name: String,
    fill: impl FnOnce(&mut S, FileId, FileId, &Path) -> Result<u64, SnapshotError>,
) -> Result<SnapshotFile, SnapshotError> {
    let tmp = format!("{name}{TEMP_SUFFIX}");
    let tmp_path = storage.path(&tmp);
    let src = storage
        .open(&file.name)
        .map_err(io_err("open", file.path.clone()))?;
    let dst = match create_replacing(storage, &tmp) {
        Ok(f) => f,
        Err(e) => {
            storage.close(src);
            return Err(e);
        }
    };
    let written = fill(storage, src, dst, &tmp_path);
    storage.close(src);
    storage.close(dst);
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = storage.remove(&tmp);
            return Err(e);
        }
    };
    storage
        .rename(&tmp, &name, Overwrite::Allow)
        .map_err(io_err("rename", tmp_path))?;
    sync_dir(storage)?;
    storage
        .remove(&file.name)
        .map_err(io_err("remove", file.path.clone()))?;
    sync_dir(storage)?;
    Ok(SnapshotFile {
        zxid: file.zxid,
        path: storage.path(&name),
        name,
        bytes,
    })
}

/// The middle of [`compress_with`]: compress `src` into `dst`, check `dst` by
/// decompressing it, fsync it. Returns the compressed length.
fn compress_into<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
    src: FileId,
    dst: FileId,
    tmp_path: &Path,
    level: i32,
) -> Result<u64, SnapshotError> {
    let src_len = storage
        .len(src)
        .map_err(io_err("stat", file.path.clone()))?;
    let io = RefCell::new(Io {
        storage,
        compressed_read: 0,
        read_failed: None,
    });
    let writer = io::BufWriter::with_capacity(
        CHUNK_BYTES,
        FileWriter {
            io: &io,
            file: dst,
            at: 0,
        },
    );
    let mut encoder = zstd::stream::write::Encoder::new(writer, level)
        .map_err(io_err("start compressing", tmp_path.to_path_buf()))?;
    // Content size and checksum in the frame: `zstd -d` and the decoder check the
    // length and every byte on their own, besides the snapshot's checksums.
    let frame = encoder
        .include_checksum(true)
        .and_then(|()| encoder.include_contentsize(true))
        .and_then(|()| encoder.set_pledged_src_size(Some(src_len)));
    frame.map_err(io_err("start compressing", tmp_path.to_path_buf()))?;
    let mut check = Checker::new(&file.path, file.zxid, "");
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut at = 0u64;
    while at < src_len {
        let n = (src_len - at).min(CHUNK_BYTES as u64) as usize;
        io.borrow_mut()
            .storage
            .read_at(src, at, &mut buf[..n])
            .map_err(io_err("read", file.path.clone()))?;
        check.feed(&buf[..n])?;
        encoder
            .write_all(&buf[..n])
            .map_err(io_err("write", tmp_path.to_path_buf()))?;
        at += n as u64;
    }
    check.finish()?;
    let writer = encoder
        .finish()
        .map_err(io_err("write", tmp_path.to_path_buf()))?;
    writer
        .into_inner()
        .map_err(|e| io_err("write", tmp_path.to_path_buf())(e.into_error()))?;
    // Read back what was written, through the decoder the loader uses.
    let compressed_len = io
        .borrow_mut()
        .storage
        .len(dst)
        .map_err(io_err("stat", tmp_path.to_path_buf()))?;
    decompress(
        &io,
        dst,
        compressed_len,
        tmp_path,
        file.zxid,
        &mut |_, _, _, _| Ok(()),
    )?;
    io.borrow_mut()
        .storage
        .sync_all(dst)
        .map_err(io_err("fsync", tmp_path.to_path_buf()))?;
    Ok(compressed_len)
}

/// Restores the compressed snapshot `file` to its plain name, so that it can be mapped
/// and served: decompress into `fk-snap.<zxid>.tmp` (replacing a leftover), checking
/// the plain bytes as they come; fsync; rename to `fk-snap.<zxid>`; fsync the directory;
/// remove the `.zst`; fsync the directory. A file that fails to decompress or whose
/// plain bytes fail the checks is `Corrupt`, named by the `.zst` path, and left where
/// it is (its temp file removed). Returns the plain file.
pub fn restore_with<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
) -> Result<SnapshotFile, SnapshotError> {
    assert!(file.is_compressed(), "{} is not compressed", file.name);
    convert(
        storage,
        file,
        snapshot_name(file.zxid),
        |storage, src, dst, tmp_path| {
            let len = storage
                .len(src)
                .map_err(io_err("stat", file.path.clone()))?;
            let io = RefCell::new(Io {
                storage: &mut *storage,
                compressed_read: 0,
                read_failed: None,
            });
            let h = decompress(
                &io,
                src,
                len,
                &file.path,
                file.zxid,
                &mut |io, _, at, bytes| {
                    io.borrow_mut()
                        .storage
                        .write_at(dst, at, bytes, false)
                        .map_err(io_err("write", tmp_path.to_path_buf()))
                },
            )?;
            storage
                .sync_all(dst)
                .map_err(io_err("fsync", tmp_path.to_path_buf()))?;
            Ok(HEADER_BYTES as u64 + h.payload_len)
        },
    )
}

/// The whole plain file of the compressed snapshot `file`, decompressed into 16-byte
/// units (so the payload at offset 48 is 16-byte aligned) and checked as
/// [`restore_with`] checks it, without writing anything. Returns the buffer and the
/// plain file's length.
pub(super) fn read_whole<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
) -> Result<(Vec<u128>, usize, Header), SnapshotError> {
    let src = storage
        .open(&file.name)
        .map_err(io_err("open", file.path.clone()))?;
    let result = (|| {
        let len = storage
            .len(src)
            .map_err(io_err("stat", file.path.clone()))?;
        let io = RefCell::new(Io {
            storage: &mut *storage,
            compressed_read: 0,
            read_failed: None,
        });
        let mut buf: Vec<u128> = Vec::new();
        let h = decompress(
            &io,
            src,
            len,
            &file.path,
            file.zxid,
            &mut |_, h, at, bytes| {
                let total = (HEADER_BYTES as u64 + h.payload_len) as usize;
                if buf.is_empty() {
                    buf = vec![0u128; total.div_ceil(16)];
                }
                // SAFETY: `buf` owns `buf.len() * 16` initialised bytes, at least `total`;
                // u8 has no alignment requirement; `buf` is borrowed exclusively here.
                let whole =
                    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), total) };
                // The checker refused any byte past the header's length before this call.
                let at = at as usize;
                whole[at..at + bytes.len()].copy_from_slice(bytes);
                Ok(())
            },
        )?;
        let total = (HEADER_BYTES as u64 + h.payload_len) as usize;
        if buf.is_empty() {
            buf = vec![0u128; total.div_ceil(16)];
        }
        Ok((buf, total, h))
    })();
    storage.close(src);
    result
}

/// Compresses every plain snapshot older than the newest snapshot in the directory
/// ([`compress_with`] at `level`), oldest first. A plain file that fails its checks is
/// left plain and reported in the second list (it stays a fallback as good as it
/// was); an I/O error stops the pass. Returns the files compressed and the refusals.
pub fn compress_superseded_with<S: Storage>(
    storage: &mut S,
    level: i32,
) -> Result<(Vec<SnapshotFile>, Vec<SnapshotError>), SnapshotError> {
    compress_superseded_claimed_with(storage, level, |_| Some(()))
}

/// [`compress_superseded_with`], asking `claim` for each file just before compressing
/// it (a file removed since the listing is passed over): `None` leaves the file plain (an ensemble member pins a snapshot a follower is
/// fetching, see the server's `snapshot::transfer`); `Some(claim)` is held while the
/// file is compressed and dropped after, so that whoever hands out claims can keep a
/// second worker (a restore, a removal) off the same file meanwhile.
pub fn compress_superseded_claimed_with<S: Storage, C>(
    storage: &mut S,
    level: i32,
    mut claim: impl FnMut(&SnapshotFile) -> Option<C>,
) -> Result<(Vec<SnapshotFile>, Vec<SnapshotError>), SnapshotError> {
    let all = list_with(storage)?;
    let Some(newest) = all.last().map(|f| f.zxid) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut done = Vec::new();
    let mut refused = Vec::new();
    for f in all.iter().filter(|f| !f.is_compressed() && f.zxid < newest) {
        let Some(held) = claim(f) else {
            continue;
        };
        let compressed = compress_with(storage, f, level);
        drop(held);
        match compressed {
            Ok(c) => done.push(c),
            Err(e @ SnapshotError::Corrupt { .. }) => refused.push(e),
            // Removed since the listing (retention, under a claim of its own).
            Err(SnapshotError::Io {
                op: "open", source, ..
            }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((done, refused))
}

/// The length of `file`'s plain form: its own length for a plain file; for a
/// compressed one, the content size its zstd frame header records (every frame this
/// module writes records it), read from the first bytes without decompressing. A
/// restore checks the decompressed length against it and against the plain header's
/// payload length, so a damaged frame header is caught there; this is for describing
/// the snapshot (an ensemble member offers one by name and length) before restoring it.
pub fn plain_bytes_with<S: Storage>(
    storage: &mut S,
    file: &SnapshotFile,
) -> Result<u64, SnapshotError> {
    let id = storage
        .open(&file.name)
        .map_err(io_err("open", file.path.clone()))?;
    let result = (|| {
        let len = storage.len(id).map_err(io_err("stat", file.path.clone()))?;
        if !file.is_compressed() {
            return Ok(len);
        }
        let mut head = [0u8; FRAME_HEADER_BYTES_MAX];
        let n = (len as usize).min(head.len());
        storage
            .read_at(id, 0, &mut head[..n])
            .map_err(io_err("read", file.path.clone()))?;
        match zstd::zstd_safe::get_frame_content_size(&head[..n]) {
            Ok(Some(size)) => Ok(size),
            Ok(None) | Err(_) => Err(SnapshotError::Corrupt {
                file: file.path.clone(),
                offset: 0,
                reason: "zstd frame header holds no content size".into(),
            }),
        }
    })();
    storage.close(id);
    result
}

/// The longest zstd frame header (RFC 8878 §3.1.1.1: magic 4, descriptor 1, window 1,
/// dictionary id up to 4, content size up to 8).
const FRAME_HEADER_BYTES_MAX: usize = 18;

/// Creates `name`, removing a leftover of an earlier failed attempt first.
fn create_replacing<S: Storage>(storage: &mut S, name: &str) -> Result<FileId, SnapshotError> {
    match storage.create(name) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            storage
                .remove(name)
                .map_err(io_err("remove", storage.path(name)))?;
            storage
                .create(name)
                .map_err(io_err("create", storage.path(name)))
        }
        Err(e) => Err(io_err("create", storage.path(name))(e)),
    }
}

fn sync_dir<S: Storage>(storage: &mut S) -> Result<(), SnapshotError> {
    storage
        .sync_dir()
        .map_err(io_err("fsync directory", storage.path("")))
}

#[cfg(test)]
mod tests {
    use super::super::{
        list, list_with, load_with, read, read_with, remove_temp_files, retain, write, write_with,
        COMPRESSED_SUFFIX,
    };
    use super::*;
    use crate::backend::disk::DiskStorage;
    use crate::backend::sim::{Prng, SimStorage};

    /// A payload that compresses somewhat, as a snapshot does: runs of repeated
    /// records with random bytes among them; `len` may exceed [`CHUNK_BYTES`].
    /// A temp directory holding one snapshot per zxid of `zxids`, each of `len(zxid)`
    /// bytes of [`payload`] drawn in order from a generator seeded with `seed`; the
    /// generator is returned for what a test writes after.
    fn snapshots(
        seed: u64,
        zxids: impl IntoIterator<Item = i64>,
        len: impl Fn(i64) -> usize,
    ) -> (tempfile::TempDir, Prng) {
        let d = tempfile::tempdir().expect("tempdir");
        let mut rng = Prng::new(seed);
        for z in zxids {
            write(d.path(), z, &payload(&mut rng, len(z))).expect("write");
        }
        (d, rng)
    }

    fn payload(rng: &mut Prng, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(len);
        while p.len() < len {
            let mut record = [0u8; 32];
            rng.fill(&mut record[..8]);
            record[8..].copy_from_slice(b"/bench/restart/p1/n00042");
            p.extend_from_slice(&record);
        }
        p.truncate(len);
        p
    }

    fn disk(dir: &Path) -> DiskStorage {
        DiskStorage::open_read_only(dir).expect("open")
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        n.sort();
        n
    }

    /// Compressing the superseded snapshots leaves the newest plain and every older one
    /// as a `.zst` that zstd itself decompresses to the plain file byte for byte; the
    /// tools' read decompresses it in memory; a restore gives back the plain file byte
    /// for byte and removes the `.zst`.
    #[test]
    fn compress_and_restore_round_trip_byte_identical() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut rng = Prng::new(7);
        let sizes = [
            (0x10i64, 0usize),
            (0x20, 1000),
            (0x30, 3 * CHUNK_BYTES + 17),
            (0x40, 5000),
        ];
        let mut plain = Vec::new();
        for &(z, len) in &sizes {
            let p = payload(&mut rng, len);
            let path = write(d.path(), z, &p).expect("write");
            plain.push(std::fs::read(path).expect("read plain"));
        }
        let mut s = disk(d.path());
        let listed_before = list(d.path()).expect("list");
        let (done, refused) = compress_superseded_with(&mut s, LEVEL).expect("compress");
        assert!(refused.is_empty(), "{refused:?}");
        // A tool that listed the plain file before it was compressed still reads it.
        let stale = read(&listed_before[2]).expect("read the compressed twin");
        assert_eq!(stale.payload(), &plain[2][HEADER_BYTES..]);
        assert_eq!(
            done.iter().map(|f| f.zxid).collect::<Vec<_>>(),
            [0x10, 0x20, 0x30]
        );
        assert_eq!(
            names(d.path()),
            [
                compressed_name(0x10),
                compressed_name(0x20),
                compressed_name(0x30),
                snapshot_name(0x40)
            ]
        );
        let listed = list(d.path()).expect("list");
        assert_eq!(
            listed.iter().map(|f| f.is_compressed()).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        for (i, f) in listed.iter().enumerate().take(3) {
            let zst = std::fs::read(&f.path).expect("read zst");
            assert_eq!(f.bytes, zst.len() as u64);
            assert_eq!(
                zstd::decode_all(&zst[..]).expect("zstd -d"),
                plain[i],
                "{}",
                f.name
            );
            let snap = read(f).expect("read in memory");
            assert_eq!(snap.payload(), &plain[i][HEADER_BYTES..]);
            assert_eq!(snap.payload().as_ptr() as usize % 16, 0);
        }
        // The big one shrank (the small ones may not: zstd's frame costs bytes).
        assert!(
            listed[2].bytes * 2 < plain[2].len() as u64,
            "{:?}",
            listed[2]
        );
        // A second pass finds nothing to do.
        assert!(compress_superseded_with(&mut s, LEVEL)
            .expect("again")
            .0
            .is_empty());
        let back = restore_with(&mut s, &listed[2]).expect("restore");
        assert_eq!(back.name, snapshot_name(0x30));
        assert_eq!(back.bytes, plain[2].len() as u64);
        assert_eq!(std::fs::read(&back.path).expect("restored"), plain[2]);
        assert!(!d.path().join(compressed_name(0x30)).exists());
        // The loader's path: restore, then map.
        let f = &list(d.path()).expect("list")[1];
        assert!(f.is_compressed());
        let snap = load_with(&mut s, f).expect("load");
        assert_eq!(snap.path, d.path().join(snapshot_name(0x20)));
        assert_eq!(snap.payload(), &plain[1][HEADER_BYTES..]);
        assert!(names(d.path()).iter().all(|n| !n.ends_with(TEMP_SUFFIX)));
    }

    /// The same through the simulator's storage (the seam the server's simulator
    /// loads through): the code reads and writes only via `Storage`.
    #[test]
    fn compress_and_restore_through_the_simulator() {
        let mut sim = SimStorage::new(3);
        let mut rng = Prng::new(3);
        let payloads: Vec<Vec<u8>> = (0..3).map(|i| payload(&mut rng, 2000 + i * 700)).collect();
        for (i, p) in payloads.iter().enumerate() {
            write_with(&mut sim, 0x100 * (i as i64 + 1), p).expect("write");
        }
        let (done, _) = compress_superseded_with(&mut sim, LEVEL).expect("compress");
        assert_eq!(done.len(), 2);
        let files = list_with(&mut sim).expect("list");
        assert_eq!(files.len(), 3);
        assert_eq!(
            read_with(&mut sim, &files[0]).expect("read").payload(),
            &payloads[0][..]
        );
        let snap = load_with(&mut sim, &files[1]).expect("load");
        assert_eq!(snap.payload(), &payloads[1][..]);
        let mut names = sim.names();
        names.sort();
        assert_eq!(
            names,
            [
                compressed_name(0x100),
                snapshot_name(0x200),
                snapshot_name(0x300)
            ]
        );
    }

    /// What a crash leaves in the middle of a compression or a restore: temp files of
    /// either (`X.zst.tmp`, `X.tmp`) are removed at startup, and of `X` and `X.zst` both
    /// present the plain `X` is kept (see `remove_temp_files`) and is all `list` shows.
    #[test]
    fn leftovers_of_compression_are_removed_and_the_plain_twin_wins() {
        let (d, _) = snapshots(11, [0x10, 0x20, 0x30], |_| 3000);
        let plain_20 = std::fs::read(d.path().join(snapshot_name(0x20))).expect("plain");
        let mut s = disk(d.path());
        compress_superseded_with(&mut s, LEVEL).expect("compress");
        // A crash after the rename of 0x20's compression, before the removal.
        std::fs::write(d.path().join(snapshot_name(0x20)), &plain_20).expect("twin");
        // A compression and a restore cut short.
        std::fs::write(
            d.path()
                .join(format!("{}{TEMP_SUFFIX}", compressed_name(0x30))),
            b"half",
        )
        .expect("zst tmp");
        std::fs::write(
            d.path()
                .join(format!("{}{TEMP_SUFFIX}", snapshot_name(0x10))),
            b"half",
        )
        .expect("restore tmp");
        let listed = list(d.path()).expect("list");
        assert_eq!(
            listed.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            [
                compressed_name(0x10),
                snapshot_name(0x20),
                snapshot_name(0x30)
            ]
        );
        assert_eq!(remove_temp_files(d.path()).expect("remove"), 3);
        assert_eq!(
            names(d.path()),
            [
                compressed_name(0x10),
                snapshot_name(0x20),
                snapshot_name(0x30)
            ]
        );
        assert_eq!(
            read(&listed[1]).expect("read").payload(),
            &plain_20[HEADER_BYTES..]
        );
        // A compression over a leftover temp file of its own replaces it.
        std::fs::write(
            d.path()
                .join(format!("{}{TEMP_SUFFIX}", compressed_name(0x20))),
            b"old",
        )
        .expect("stale tmp");
        let c = compress_with(&mut s, &listed[1], LEVEL).expect("compress over a stale temp");
        assert_eq!(
            zstd::decode_all(&std::fs::read(&c.path).expect("zst")[..]).expect("d"),
            plain_20
        );
    }

    /// A truncated or bit-flipped `.zst` is refused with an error naming it (and an
    /// offset), it is left where it is with no temp file beside it, and the next older
    /// snapshot loads, as for a damaged plain snapshot. Every byte of the compressed file
    /// is damaged at many places: zstd's frame checks and the snapshot's own checksums
    /// together leave no damage that changes a decompressed byte unnoticed (a few bits
    /// zstd ignores decode to the original bytes, and then the load succeeds).
    #[test]
    fn damaged_compressed_snapshots_are_rejected_and_the_next_older_loads() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut rng = Prng::new(5);
        let p10 = payload(&mut rng, 4000);
        write(d.path(), 0x10, &p10).expect("write");
        let p20 = payload(&mut rng, 4000);
        write(d.path(), 0x20, &p20).expect("write");
        write(d.path(), 0x30, &payload(&mut rng, 10)).expect("write");
        let mut s = disk(d.path());
        compress_superseded_with(&mut s, LEVEL).expect("compress");
        let zst = d.path().join(compressed_name(0x20));
        let good = std::fs::read(&zst).expect("zst");
        let mut damages: Vec<(String, Vec<u8>)> = Vec::new();
        for keep in [0, 3, good.len() / 2, good.len() - 1] {
            damages.push((format!("cut to {keep}"), good[..keep].to_vec()));
        }
        // The frame header, the end (last block and zstd's checksum), and every 13th byte
        // between (every byte took 28 s, each one a restore and a compression with fsyncs).
        let picked = (0..good.len()).filter(|&at| at < 16 || at + 16 >= good.len() || at % 13 == 0);
        for at in picked {
            let mut b = good.clone();
            b[at] ^= 1 << (at % 8);
            damages.push((format!("bit flipped at {at}"), b));
        }
        let mut appended = good.clone();
        appended.extend_from_slice(b"junk");
        damages.push(("junk appended".into(), appended));
        let (mut refused, mut harmless) = (0, Vec::new());
        for (what, bytes) in damages {
            std::fs::write(&zst, &bytes).expect("damage");
            // As the loader does once it has rejected the newest, 0x30.
            let files = list(d.path()).expect("list");
            let err = match load_with(&mut s, &files[1]) {
                Err(e) => e,
                Ok(snap) => {
                    // zstd ignores a few bits (the frame descriptor's unused bit): the
                    // bytes that come out are the original ones, as the snapshot's own
                    // checksums, checked before the restore's rename, prove.
                    assert_eq!(snap.payload(), &p20[..], "{what}");
                    harmless.push(what);
                    let plain = &list(d.path()).expect("l")[1];
                    compress_with(&mut s, plain, LEVEL).expect("recompress");
                    continue;
                }
            };
            match &err {
                SnapshotError::Corrupt { file, .. } => assert_eq!(file, &zst, "{what}: {err}"),
                other => panic!("{what}: expected Corrupt, got {other}"),
            }
            assert!(
                err.to_string().contains(&compressed_name(0x20)),
                "{what}: {err}"
            );
            assert_eq!(
                names(d.path()),
                [
                    compressed_name(0x10),
                    compressed_name(0x20),
                    snapshot_name(0x30)
                ],
                "{what}"
            );
            // The next older one loads (and the damaged one is still there to look at).
            let older = load_with(&mut s, &files[0]).expect("older loads");
            assert_eq!(older.payload(), &p10[..]);
            // Back to the state before: 0x10 compressed again.
            compress_with(&mut s, &list(d.path()).expect("l")[0], LEVEL).expect("recompress");
            refused += 1;
        }
        eprintln!("refused {refused}; decoded to the original bytes: {harmless:?}");
        assert!(refused > harmless.len() * 10, "{refused} {harmless:?}");
        assert!(names(d.path()).iter().all(|n| !n.ends_with(TEMP_SUFFIX)));
    }

    /// A snapshot its claim is refused for stays plain through a compression pass and on
    /// disk through retention (not counted among the kept); a claim granted is held
    /// while its file is worked on and released after. A compressed snapshot's plain
    /// length is read from its zstd frame header without decompressing it.
    #[test]
    fn refused_claims_keep_snapshots_plain_and_on_disk() {
        let (d, _) = snapshots(13, 1..=5, |z| 3000 + z as usize);
        let mut s = disk(d.path());
        let held = RefCell::new(Vec::new());
        let (done, _) = compress_superseded_claimed_with(&mut s, LEVEL, |f| {
            (f.zxid != 2).then(|| {
                held.borrow_mut().push(f.zxid);
                Held(&held, f.zxid)
            })
        })
        .expect("compress");
        assert_eq!(done.iter().map(|f| f.zxid).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(held.borrow().is_empty(), "every claim released");
        let kept = super::super::retain_claimed_with(&mut s, 2, |f| (f.zxid != 2).then_some(()))
            .expect("retain");
        assert_eq!(kept.iter().map(|f| f.zxid).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(
            names(d.path()),
            [snapshot_name(2), compressed_name(4), snapshot_name(5)]
        );
        let zst = &list(d.path()).expect("list")[1];
        let plain_len = std::fs::metadata(d.path().join(snapshot_name(5)))
            .expect("stat")
            .len();
        assert_eq!(
            super::super::plain_bytes(zst).expect("plain bytes"),
            HEADER_BYTES as u64 + 3004
        );
        assert_eq!(
            plain_bytes_with(&mut s, &list(d.path()).expect("list")[2]).expect("plain"),
            plain_len
        );
    }

    /// A snapshot removed between the pass's listing and its turn (by retention, under
    /// a claim of its own) is passed over, not an error that ends the pass.
    #[test]
    fn a_snapshot_removed_during_a_pass_is_passed_over() {
        let (d, _) = snapshots(17, 1..=3, |_| 2000);
        let mut s = disk(d.path());
        let (done, refused) = compress_superseded_claimed_with(&mut s, LEVEL, |f| {
            if f.zxid == 1 {
                std::fs::remove_file(&f.path).expect("remove");
            }
            Some(())
        })
        .expect("compress");
        assert_eq!(done.iter().map(|f| f.zxid).collect::<Vec<_>>(), [2]);
        assert!(refused.is_empty());
        assert_eq!(names(d.path()), [compressed_name(2), snapshot_name(3)]);
    }

    /// A plain snapshot compressed by another thread between retention's listing and
    /// its claim: retention removes the `.zst` that took its place, not an error.
    #[test]
    fn retention_removes_a_snapshot_compressed_since_its_listing() {
        let (d, _) = snapshots(19, 1..=4, |_| 2000);
        let mut s = disk(d.path());
        let mut other = disk(d.path());
        let kept = super::super::retain_claimed_with(&mut s, 2, |f| {
            if f.zxid == 1 {
                compress_with(&mut other, f, LEVEL).expect("compress");
            }
            Some(())
        })
        .expect("retain");
        assert_eq!(kept.iter().map(|f| f.zxid).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(names(d.path()), [snapshot_name(3), snapshot_name(4)]);
    }

    /// A claim that records itself as released when dropped.
    struct Held<'a>(&'a RefCell<Vec<i64>>, i64);

    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().retain(|z| *z != self.1);
        }
    }

    /// Retention counts compressed snapshots like plain ones, deletes them the same
    /// way, and takes a zxid's compressed twin with it.
    #[test]
    fn retention_counts_and_deletes_compressed_snapshots() {
        let (d, mut rng) = snapshots(9, 1..=6, |_| 500);
        let mut s = disk(d.path());
        compress_superseded_with(&mut s, LEVEL).expect("compress");
        // A crash left snapshot 1's plain twin beside its .zst.
        write(d.path(), 1, &payload(&mut rng, 500)).expect("twin");
        let kept = retain(d.path(), 3).expect("retain");
        assert_eq!(kept.iter().map(|f| f.zxid).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(
            names(d.path()),
            [compressed_name(4), compressed_name(5), snapshot_name(6)]
        );
        assert!(
            names(d.path())
                .iter()
                .filter(|n| n.ends_with(COMPRESSED_SUFFIX))
                .count()
                == 2
        );
    }
}
