//! Compressed segments: a sealed segment whose records are all covered by a snapshot is
//! kept as `<segment name>.zst` (`storage/FORMAT.md`, "Compressed segments").
//!
//! Why: with autopurge off (ZooKeeper's default) the log is kept whole, and after 1M
//! creates it was most of the data directory (issue #13, `bench/results/datadir-2026-12-06.md`).
//! Segments before the newest snapshot are read only when that snapshot is rejected at
//! startup, or by an operator's tool; `zstd -1` keeps 9 % of such a segment.
//!
//! Three parts, each over any [`Storage`] so that the simulator crashes them at every step:
//! - [`Compression`]: one segment's compression, a step (one storage operation, or one
//!   chunk of input) at a time, run by the writer's helper thread when it has nothing else
//!   to do (`writer/background.rs`).
//! - [`restore`]: the first step of opening the log: leftovers of a crash removed, and every
//!   compressed segment that a replay from the loaded snapshot needs decompressed back to
//!   its plain name, so that recovery reads plain segments exactly as before.
//! - [`read_compressed`]: a compressed segment's bytes in memory, for the read-only reader
//!   (the tools).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::error::LogError;
use super::format::{
    decode_zst_header, encode_zst_header, SegmentForm, SegmentKind, ZstHeader, TXN_SEGMENTS,
    ZST_HEADER_BYTES,
};
use super::scan::{scan_segment_of, Position};
use super::segments::{self, SegmentBytes, SegmentFile};
use crate::backend::{FileId, Overwrite, Storage};

/// The zstd level segments are compressed with. Measured with zstd 1.5.4's own benchmark
/// (`zstd -b1`/`-b2`/`-b3`) on a 64 MiB segment of the bench's creates (`/bench/data/nN`,
/// 100 B of data; its 67,094,193 bytes of records): level 1 keeps 0.115 of it at
/// 1,165 MB/s, level 2 0.117 at 1,083 MB/s, level 3 0.118 at 771 MB/s (one core of the
/// 2-core development machine, under load). Level 1 is both the smallest and the fastest
/// there: ~60 ms of the helper thread's CPU per segment.
pub const ZSTD_LEVEL: i32 = 1;

/// Input bytes compressed per step: one step's CPU stays a few milliseconds, so that a
/// task handed to the helper thread (a seal, a rename, a spare) waits for at most that.
pub(crate) const COMPRESS_CHUNK_BYTES: usize = 1 << 20;

/// A compression the writer asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompressJob {
    /// The segment's plain name.
    pub name: String,
    /// Every record of the segment must be at or below this zxid (the newest snapshot's):
    /// checked again against the bytes before anything is written.
    pub through: i64,
}

/// How a compression ended, short of an error that stops the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Compressed {
    /// The segment is now `<name>.zst`; the plain file is gone.
    Done {
        /// Bytes of the plain segment compressed (its header and records).
        data_bytes: u64,
        /// Bytes of the `.zst` file.
        file_bytes: u64,
    },
    /// Left plain: the segment did not verify, or writing the `.zst.tmp` failed (its
    /// leftover was removed as far as possible). Nothing durable changed.
    Skipped(String),
    /// Given up for a purge of the same segment (the purge removes every form of it).
    Abandoned,
}

/// Where a compression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Verify,
    Create,
    Compress,
    Finish,
    Sync,
    // From here on a failure is a failure of a directory change, and stops the writer.
    Rename,
    SyncRenamed,
    RemovePlain,
    SyncRemoved,
}

/// One segment's compression, stepped by the helper (`storage/FORMAT.md`, "Compressed
/// segments", for the order of the steps and what a crash between them leaves).
pub(crate) struct Compression {
    job: CompressJob,
    stage: Stage,
    /// The plain segment: mapped on disk (shared with the page cache, no 64 MiB buffer on
    /// the helper), read in the simulator. Sound to map: a sealed segment is never written
    /// again, and a purge that removes it unlinks it, which leaves a mapping valid.
    input: SegmentBytes,
    header: ZstHeader,
    tmp: Option<FileId>,
    encoder: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    /// Input bytes handed to the encoder so far.
    read_bytes: usize,
    /// Bytes of the `.zst.tmp` written so far.
    written_bytes: u64,
}

/// A step that failed in a way that must stop the writer: the operation and the file.
pub(crate) type Fatal = (&'static str, String, std::io::Error);

impl Compression {
    pub(crate) fn new(job: CompressJob) -> Compression {
        Compression {
            job,
            stage: Stage::Verify,
            input: SegmentBytes::default(),
            header: ZstHeader {
                segment_bytes: 0,
                data_bytes: 0,
                last_zxid: -1,
            },
            tmp: None,
            encoder: None,
            read_bytes: 0,
            written_bytes: 0,
        }
    }

    /// The segment's plain name.
    pub(crate) fn name(&self) -> &str {
        &self.job.name
    }

    /// Runs the next step; `Ok(Some(_))` when the compression has ended.
    pub(crate) fn step<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
    ) -> Result<Option<Compressed>, Fatal> {
        if self.stage < Stage::Rename {
            // Until the rename nothing the log reads has changed: a failure leaves the
            // segment plain (and the `.zst.tmp` is removed), it does not stop the log.
            return match self.prepare(storage) {
                Ok(()) => Ok(None),
                Err(reason) => {
                    self.drop_tmp(storage);
                    tracing::warn!(segment = %storage.path(&self.job.name).display(), %reason,
                        "log segment left uncompressed");
                    Ok(Some(Compressed::Skipped(reason)))
                }
            };
        }
        let plain = self.job.name.clone();
        let zst = SegmentForm::Compressed.file_name(&plain);
        let fatal = |op, name: &str| {
            let name = name.to_string();
            move |e| (op, name, e)
        };
        match self.stage {
            Stage::Rename => {
                let tmp = SegmentForm::Compressing.file_name(&plain);
                storage
                    .rename(&tmp, &zst, Overwrite::Never)
                    .map_err(fatal("rename", &tmp))?;
            }
            Stage::SyncRenamed | Stage::SyncRemoved => {
                storage.sync_dir().map_err(fatal("fsync directory", &zst))?;
                if self.stage == Stage::SyncRemoved {
                    self.input = SegmentBytes::default();
                    return Ok(Some(Compressed::Done {
                        data_bytes: self.header.data_bytes,
                        file_bytes: self.written_bytes,
                    }));
                }
            }
            Stage::RemovePlain => storage.remove(&plain).map_err(fatal("remove", &plain))?,
            _ => unreachable!("stages before the rename are prepared"),
        }
        self.stage = next(self.stage);
        Ok(None)
    }

    /// Runs one step before the rename: verify, create, compress a chunk, finish, fsync.
    fn prepare<S: Storage + ?Sized>(&mut self, storage: &mut S) -> Result<(), String> {
        let tmp = SegmentForm::Compressing.file_name(&self.job.name);
        match self.stage {
            Stage::Verify => self.verify(storage)?,
            Stage::Create => {
                let file = storage
                    .create(&tmp)
                    .map_err(|e| format!("create {tmp}: {e}"))?;
                self.tmp = Some(file);
                let header = encode_zst_header(&self.header);
                storage
                    .write_at(file, 0, &header, false)
                    .map_err(|e| format!("write {tmp}: {e}"))?;
                self.written_bytes = ZST_HEADER_BYTES as u64;
                let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)
                    .map_err(|e| e.to_string())?;
                // The frame carries its content size and a checksum of the content: a
                // decompression checks both, before the segment's own checksums are.
                encoder
                    .include_checksum(true)
                    .and_then(|()| encoder.include_contentsize(true))
                    .and_then(|()| encoder.set_pledged_src_size(Some(self.header.data_bytes)))
                    .map_err(|e| e.to_string())?;
                self.encoder = Some(encoder);
            }
            Stage::Compress => {
                let end =
                    (self.read_bytes + COMPRESS_CHUNK_BYTES).min(self.header.data_bytes as usize);
                let encoder = self.encoder.as_mut().expect("created");
                encoder
                    .write_all(&self.input.bytes()[self.read_bytes..end])
                    .map_err(|e| e.to_string())?;
                self.read_bytes = end;
                let out = std::mem::take(encoder.get_mut());
                self.write_out(storage, &out)?;
                *self.encoder.as_mut().expect("created").get_mut() = clear(out);
                if self.read_bytes < self.header.data_bytes as usize {
                    return Ok(()); // The same stage again, for the next chunk.
                }
            }
            Stage::Finish => {
                let out = self
                    .encoder
                    .take()
                    .expect("created")
                    .finish()
                    .map_err(|e| e.to_string())?;
                self.write_out(storage, &out)?;
            }
            Stage::Sync => {
                // fsync, not fdatasync: the file's size must be durable before its name is.
                let file = self.tmp.take().expect("created");
                let synced = storage.sync_all(file);
                storage.close(file);
                synced.map_err(|e| format!("fsync {tmp}: {e}"))?;
            }
            _ => unreachable!("only stages before the rename are prepared"),
        }
        self.stage = next(self.stage);
        Ok(())
    }

    /// Reads the plain segment and verifies it as a sealed one (every frame, then only
    /// zeros): data is checked before it is written somewhere else.
    fn verify<S: Storage + ?Sized>(&mut self, storage: &mut S) -> Result<(), String> {
        let file = segments::load(storage, &self.job.name, &mut self.input, true)
            .map_err(|e| e.to_string())?;
        storage.close(file);
        let bytes = self.input.bytes();
        let scan = scan_segment_of(&TXN_SEGMENTS, bytes, Position::Sealed, |_, _| {})
            .map_err(|e| format!("does not verify: {e:?}"))?;
        let name_zxid = TXN_SEGMENTS.parse_segment_name(&self.job.name);
        if name_zxid != Some(scan.header.first_zxid) {
            return Err("header does not match the file name".into());
        }
        let Some(last_zxid) = scan.last_zxid else {
            return Err("holds no record".into());
        };
        if last_zxid > self.job.through {
            return Err(format!(
                "last zxid {last_zxid:#x} is past the snapshot's {:#x}",
                self.job.through
            ));
        }
        self.header = ZstHeader {
            segment_bytes: bytes.len() as u64,
            data_bytes: scan.valid_end as u64,
            last_zxid,
        };
        Ok(())
    }

    fn write_out<S: Storage + ?Sized>(
        &mut self,
        storage: &mut S,
        out: &[u8],
    ) -> Result<(), String> {
        if out.is_empty() {
            return Ok(());
        }
        let file = self.tmp.expect("created");
        storage
            .write_at(file, self.written_bytes, out, false)
            .map_err(|e| format!("write: {e}"))?;
        self.written_bytes += out.len() as u64;
        Ok(())
    }

    /// Closes and removes the `.zst.tmp` (best effort: a leftover is removed at the next
    /// open). No directory fsync: until the rename, no name the log reads has changed.
    fn drop_tmp<S: Storage + ?Sized>(&mut self, storage: &mut S) {
        self.encoder = None;
        self.input = SegmentBytes::default();
        if let Some(file) = self.tmp.take() {
            storage.close(file);
        }
        if self.stage > Stage::Verify {
            let _ = storage.remove(&SegmentForm::Compressing.file_name(&self.job.name));
        }
    }

    /// Gives the compression up for a purge of the same segment. Before the rename its
    /// `.zst.tmp` is removed; after it the purge removes both the plain file and the `.zst`.
    pub(crate) fn abandon<S: Storage + ?Sized>(mut self, storage: &mut S) -> Compressed {
        // At `Stage::Rename` the rename is the next step, not yet done (CI once found the
        // `.zst.tmp` left beside a purge when this said `<`).
        if self.stage <= Stage::Rename {
            self.drop_tmp(storage);
        }
        Compressed::Abandoned
    }

    /// Stops a compression for good without touching storage but to close its file (the
    /// writer is being dropped): the next open removes the `.zst.tmp`, or finds the plain
    /// segment beside its `.zst` and keeps the plain one.
    pub(crate) fn close<S: Storage + ?Sized>(mut self, storage: &mut S) {
        if let Some(file) = self.tmp.take() {
            storage.close(file);
        }
    }
}

fn next(stage: Stage) -> Stage {
    match stage {
        Stage::Verify => Stage::Create,
        Stage::Create => Stage::Compress,
        Stage::Compress => Stage::Finish,
        Stage::Finish => Stage::Sync,
        Stage::Sync => Stage::Rename,
        Stage::Rename => Stage::SyncRenamed,
        Stage::SyncRenamed => Stage::RemovePlain,
        Stage::RemovePlain | Stage::SyncRemoved => Stage::SyncRemoved,
    }
}

/// `out` emptied, its capacity kept for the encoder's next chunk.
fn clear(mut out: Vec<u8>) -> Vec<u8> {
    out.clear();
    out
}

/// Reads the compressed segment `file_name` and decompresses it into `out`: the plain
/// segment's first `data_bytes` bytes (header and records; the rest of the plain file is
/// zeros). Checks the header, that the file is one zstd frame and nothing else, the frame's
/// content checksum and size; the segment's own checksums are the caller's scan.
pub(crate) fn read_compressed<S: Storage + ?Sized>(
    storage: &mut S,
    file_name: &str,
    out: &mut Vec<u8>,
) -> Result<ZstHeader, LogError> {
    let corrupt = |storage: &S, offset: u64, reason: String| LogError::Corrupt {
        file: storage.path(file_name),
        offset,
        reason: format!("compressed segment: {reason}"),
    };
    let io = |op, storage: &S, source| LogError::Io {
        op,
        file: storage.path(file_name),
        source,
    };
    let file = storage
        .open(file_name)
        .map_err(|e| io("open", storage, e))?;
    let mut bytes = Vec::new();
    let read = (|| {
        let len = storage.len(file)?;
        bytes.resize(len as usize, 0);
        storage.read_at(file, 0, &mut bytes)
    })();
    storage.close(file);
    read.map_err(|e| io("read", storage, e))?;
    let header = decode_zst_header(&bytes).map_err(|(at, why)| corrupt(storage, at as u64, why))?;
    let frame = &bytes[ZST_HEADER_BYTES..];
    match zstd::zstd_safe::find_frame_compressed_size(frame) {
        Ok(n) if n == frame.len() => {}
        Ok(n) => {
            let at = (ZST_HEADER_BYTES + n) as u64;
            return Err(corrupt(storage, at, "bytes after the zstd frame".into()));
        }
        Err(code) => {
            let why = format!("bad zstd frame ({})", zstd::zstd_safe::get_error_name(code));
            return Err(corrupt(storage, ZST_HEADER_BYTES as u64, why));
        }
    }
    out.clear();
    out.reserve(header.data_bytes as usize);
    let decoded = zstd::stream::read::Decoder::with_buffer(frame).and_then(|d| {
        // One byte more than expected, so that a longer content is seen, not cut.
        d.take(header.data_bytes + 1).read_to_end(out)
    });
    match decoded {
        Ok(n) if n as u64 == header.data_bytes => Ok(header),
        Ok(n) => Err(corrupt(
            storage,
            ZST_HEADER_BYTES as u64,
            format!(
                "decompresses to {n} bytes, header says {}",
                header.data_bytes
            ),
        )),
        Err(e) => Err(corrupt(
            storage,
            ZST_HEADER_BYTES as u64,
            format!("does not decompress: {e}"),
        )),
    }
}

/// What [`restore`] did.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Compressed segments left compressed, oldest first (`name` is the plain name). Every
    /// record in them is at or below the zxid replay starts after.
    pub kept: Vec<SegmentFile>,
    /// Segments decompressed back to their plain names, newest first.
    pub decompressed: Vec<String>,
    /// Files removed: leftovers of an interrupted (de)compression, and the `.zst` of a
    /// segment whose plain file was still there.
    pub removed: Vec<String>,
}

/// The first step of opening the log (`storage/FORMAT.md`, "Compressed segments",
/// recovery): removes `.zst.tmp` and `.tmp` leftovers, keeps the plain file of a segment
/// found in both forms, and decompresses every compressed segment that may hold a record
/// above `after_zxid` (or that is not followed by a plain segment, or follows one),
/// newest first, so that the compressed segments left are an oldest-first run whose
/// records are all at or below `after_zxid`.
pub(crate) fn restore<S: Storage>(
    storage: &mut S,
    kind: &SegmentKind,
    after_zxid: i64,
) -> Result<Restored, LogError> {
    let io = |op, storage: &S, name: &str, source| LogError::Io {
        op,
        file: storage.path(name),
        source,
    };
    let mut restored = Restored::default();
    // For each first zxid: (plain name, plain file present, compressed file present).
    let mut found: BTreeMap<i64, (String, bool, bool)> = BTreeMap::new();
    for (file, form) in segments::list_all(storage, kind)? {
        let plain = kind.segment_name(file.first_zxid);
        let entry = found
            .entry(file.first_zxid)
            .or_insert((plain, false, false));
        match form {
            SegmentForm::Plain => entry.1 = true,
            SegmentForm::Compressed => entry.2 = true,
            SegmentForm::Compressing | SegmentForm::Decompressing => {
                tracing::info!(file = %storage.path(&file.name).display(),
                    "removing the leftover of a log segment (de)compression a crash cut short");
                storage
                    .remove(&file.name)
                    .map_err(|e| io("remove", storage, &file.name, e))?;
                restored.removed.push(file.name);
            }
        }
    }
    for (plain, has_plain, has_compressed) in found.values_mut() {
        if *has_plain && *has_compressed {
            // A crash between the rename that made one form and the removal of the other.
            // The plain name only ever holds a whole, synced segment (the original, or a
            // decompression renamed into place after its fsync), and it is what recovery
            // reads: it is kept, the `.zst` is redundant.
            let zst = SegmentForm::Compressed.file_name(plain);
            tracing::info!(file = %storage.path(&zst).display(),
                "removing a compressed log segment whose plain file is still there (a crash)");
            storage
                .remove(&zst)
                .map_err(|e| io("remove", storage, &zst, e))?;
            restored.removed.push(zst);
            *has_compressed = false;
        }
    }
    if !restored.removed.is_empty() {
        // Not needed for safety (each state a crash leaves is one this step handles), but
        // the removals then never have to be done again.
        storage
            .sync_dir()
            .map_err(|e| io("fsync directory", storage, "", e))?;
    }
    let mut entries: Vec<(i64, String, bool)> = found
        .into_iter()
        .map(|(zxid, (plain, _, compressed))| (zxid, plain, compressed))
        .collect();
    let mut first_plain = entries.iter().position(|e| !e.2);
    for i in (0..entries.len()).rev() {
        if !entries[i].2 {
            continue;
        }
        // Segment i holds zxids below the next segment's first: it is needed when that
        // first zxid is past after_zxid + 1, or when there is no next segment.
        let needed = first_plain.is_none_or(|p| p < i)
            || entries
                .get(i + 1)
                .is_none_or(|next| next.0 > after_zxid.saturating_add(1));
        if !needed {
            continue;
        }
        decompress(storage, kind, &entries[i].1)?;
        restored.decompressed.push(entries[i].1.clone());
        entries[i].2 = false;
        if first_plain.is_none_or(|p| i < p) {
            first_plain = Some(i);
        }
    }
    restored.kept = entries
        .into_iter()
        .filter(|e| e.2)
        .map(|(first_zxid, name, _)| SegmentFile { name, first_zxid })
        .collect();
    Ok(restored)
}

/// Decompresses `<plain>.zst` back to `plain`: decompressed and verified in memory, written
/// to `<plain>.tmp` at the plain file's length, fsynced, renamed into place, the directory
/// fsynced, the `.zst` removed, the directory fsynced.
pub(crate) fn decompress<S: Storage>(
    storage: &mut S,
    kind: &SegmentKind,
    plain: &str,
) -> Result<(), LogError> {
    let zst = SegmentForm::Compressed.file_name(plain);
    let tmp = SegmentForm::Decompressing.file_name(plain);
    let mut data = Vec::new();
    let header = read_compressed(storage, &zst, &mut data)?;
    let scan = scan_segment_of(kind, &data, Position::Sealed, |_, _| {}).map_err(|e| {
        let e = segments::scan_error(storage, &zst, e);
        LogError::Corrupt {
            file: storage.path(&zst),
            offset: ZST_HEADER_BYTES as u64,
            reason: format!("the segment it holds does not verify: {e}"),
        }
    })?;
    if scan.last_zxid != Some(header.last_zxid)
        || kind.parse_segment_name(plain) != Some(scan.header.first_zxid)
    {
        return Err(LogError::Corrupt {
            file: storage.path(&zst),
            offset: 0,
            reason: format!(
                "holds zxids {:#x}..={:?}, its name and header say {plain} and last {:#x}",
                scan.header.first_zxid, scan.last_zxid, header.last_zxid
            ),
        });
    }
    tracing::warn!(file = %storage.path(&zst).display(), last_zxid = format_args!("{:#x}", header.last_zxid),
        "decompressing a log segment: replay starts before its end (an older snapshot, or none, was loaded)");
    let io = |op, storage: &S, name: &str, source| LogError::Io {
        op,
        file: storage.path(name),
        source,
    };
    let file = storage
        .create(&tmp)
        .map_err(|e| io("create", storage, &tmp, e))?;
    let written = (|| {
        storage.write_at(file, 0, &data, false)?;
        storage.allocate(file, header.segment_bytes)?;
        storage.sync_all(file)
    })();
    storage.close(file);
    written.map_err(|e| io("write + fsync", storage, &tmp, e))?;
    storage
        .rename(&tmp, plain, Overwrite::Never)
        .map_err(|e| io("rename", storage, &tmp, e))?;
    storage
        .sync_dir()
        .map_err(|e| io("fsync directory", storage, plain, e))?;
    storage
        .remove(&zst)
        .map_err(|e| io("remove", storage, &zst, e))?;
    storage
        .sync_dir()
        .map_err(|e| io("fsync directory", storage, &zst, e))?;
    Ok(())
}
