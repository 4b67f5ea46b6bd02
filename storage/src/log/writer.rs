//! The log writer: recovery on open, group-committed appends, retention.

use std::path::{Path, PathBuf};

use super::compress::{self, CompressJob, Compressed};
use super::error::LogError;
use super::format::{
    encode_frame_with, frame_bytes, Frame, SegmentForm, SegmentHeader, SegmentKind,
    FLAG_PREV_UNSEALED, FRAME_HEADER_BYTES, HEADER_BYTES, TXN_SEGMENTS,
};
use super::scan::{scan_segment_of, Position, Scan, ScanError};
use super::segments::{self, Loaded, SegmentFile};
use super::{IoMode, LogOptions, LogStats, Payload, Record};
use crate::backend::disk::DiskStorage;
use crate::backend::{FileId, Overwrite, Storage};
use background::{Background, Failure, Task};

mod background;
mod truncate;

/// Called by [`LogWriter::open_kind`] for every record that recovery keeps: the segment's
/// name, its bytes, the frame's offset in them, and the frame. Records are visited in log
/// order (oldest segment first), each segment's as soon as it is read and verified, so
/// that recovery's one read of the log is also the replay's (issue #13: every segment was
/// read and checksummed twice at startup).
pub(crate) type RecordVisitor<'a> = &'a mut dyn FnMut(&str, &[u8], usize, &Frame);

/// Called by [`LogWriter::open_replaying`] for every record that recovery keeps, in log
/// order: the record's zxid and its payload, borrowed from the segment's bytes.
pub type ReplayVisitor<'a> = &'a mut dyn FnMut(i64, &[u8]);

/// What [`LogWriter::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Zxid of the last record in the log, `None` if the log is empty.
    pub last_zxid: Option<i64>,
    /// Zxid of the first record in the log (after earlier purges), `None` if empty.
    pub first_zxid: Option<i64>,
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Records in the log after recovery.
    pub records: u64,
    /// Bytes of torn data discarded (zeroed) after the last whole record.
    pub truncated_bytes: u64,
    /// Where the torn tail was cut, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Newest segments removed because they held no whole record (a crash during a roll).
    pub removed_segments: Vec<String>,
    /// The segment a spare holding a header was renamed back to (a crash kept a roll's
    /// records but not its rename; `storage/FORMAT.md`, "Roll").
    pub renamed_spare: Option<String>,
    /// The segment whose tail a crash cut before its seal finished (`force_sync` off: the
    /// seal runs on the helper thread after a roll); the segment after it, whose records
    /// followed the lost ones, is among `removed_segments`.
    pub unsealed_tail: Option<PathBuf>,
    /// Compressed segments decompressed back to their plain names before the scan, because
    /// replay starts before their end (`storage/FORMAT.md`, "Compressed segments").
    pub decompressed_segments: Vec<String>,
    /// Compressed segments left compressed: before every plain segment, holding only
    /// records at or below the zxid replay starts after; not read. Counted in `segments`,
    /// not in `records`, `first_zxid`, or what the visitor sees.
    pub compressed_segments: usize,
    /// Leftovers of a (de)compression a crash cut short, removed.
    pub removed_leftovers: Vec<String>,
}

/// Where recovery cut a torn tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// Offset of the first discarded byte: the end of the last whole record.
    pub offset: u64,
}

#[derive(Clone, Debug)]
struct Segment {
    /// The plain name (also of a compressed segment, whose file is `<name>.zst`).
    name: String,
    /// 0 for a segment found compressed at open (its file is not read; never the newest,
    /// the only one whose index is used).
    index: u64,
    /// `None` only for a segment created by a roll whose first append then failed. For a
    /// segment found compressed at open, one less than the next segment's first zxid: a
    /// bound, enough for purges (its file is not read).
    last_zxid: Option<i64>,
    /// Offset just past its last record (for the current segment, `Current::end`).
    end: u64,
    /// Kept as `<name>.zst` (`storage/FORMAT.md`, "Compressed segments").
    compressed: bool,
}

/// The segment being appended to.
#[derive(Clone, Copy, Debug)]
struct Current {
    file: FileId,
    /// Length of the (preallocated) file.
    file_bytes: u64,
    /// Where the next batch goes.
    end: u64,
    /// Offset up to which the segment is known durable.
    // Invariant: HEADER_BYTES <= synced_through <= end <= file_bytes.
    synced_through: u64,
}

/// Appends batches of records to the transaction log. Single-threaded and blocking: the
/// server runs it on its own thread and hands it one batch at a time (group commit).
pub struct LogWriter<S: Storage = DiskStorage> {
    storage: S,
    opts: LogOptions,
    /// Whose segments these are: the transaction log's or the Raft log's.
    kind: SegmentKind,
    /// Oldest first; the last one is `current`'s.
    segments: Vec<Segment>,
    current: Option<Current>,
    last_zxid: Option<i64>,
    /// Frames of the batch being appended; capacity `batch_bytes_max`, allocated once.
    buffer: Vec<u8>,
    buffer_capacity: usize,
    /// Set by the first failed write, sync or directory operation (fail-stop).
    stopped: Option<String>,
    /// Whether a batch is staged in `buffer` and not yet finished ([`LogWriter::stage`]).
    staged: bool,
    stats: LogStats,
    /// The spare segment, seals and purges, prepared and done off the commit path.
    background: Background,
    /// With `force_sync` off, the segment a roll finished and left unsealed: its seal is
    /// handed to the helper thread once the first batch of the new segment is written
    /// ([`Task::Seal`]), and the next spare after it.
    unsealed: Option<String>,
    /// Set once a segment was left uncompressed (it did not verify, or its `.zst.tmp`
    /// could not be written): no later one is compressed in this run, so that the
    /// compressed segments stay an oldest-first run.
    compression_stopped: bool,
}

/// A batch framed by [`LogWriter::stage`] and not yet written: where it goes.
#[derive(Debug)]
#[must_use = "a staged batch must be handed to LogWriter::finish_staged"]
pub struct Staged {
    file: FileId,
    offset: u64,
    framed: usize,
    /// The batch's last zxid.
    last: Option<i64>,
    records: u64,
}

impl Staged {
    /// The segment file the batch goes to (changes when a batch starts a new segment).
    pub fn file(&self) -> FileId {
        self.file
    }

    /// Byte offset in that segment of the batch's first frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// The directory of a log, opened for `opts` (checked first) and locked exclusively: the
/// first step of opening either log on disk.
pub(crate) fn open_locked(dir: &Path, opts: &LogOptions) -> Result<DiskStorage, LogError> {
    opts.validate()?;
    let mut storage = DiskStorage::open(dir, opts.io).map_err(|source| LogError::Io {
        op: "open directory",
        file: dir.to_path_buf(),
        source,
    })?;
    storage
        .lock_exclusive()
        .map_err(|source| LogError::Locked {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok(storage)
}

impl LogWriter<DiskStorage> {
    /// Opens (creating) the log in `dir`: scans the segments, verifies every record,
    /// truncates a torn tail at the last whole record (logged), and refuses — with an error
    /// naming the file and byte offset — a checksum failure before the tail, a missing
    /// segment, or a newer format version. Takes an exclusive lock on `dir`.
    pub fn open(
        dir: &Path,
        opts: LogOptions,
    ) -> Result<(LogWriter<DiskStorage>, Recovered), LogError> {
        LogWriter::open_with(open_locked(dir, &opts)?, opts)
    }

    /// [`LogWriter::open`] that also hands every record recovery keeps to `visit`, in log
    /// order: the recovery scan is the replay, and each segment is read and verified once.
    ///
    /// Replay starts after `after_zxid` (the loaded snapshot's zxid, 0 or less without
    /// one): every compressed segment that may hold a record above it is decompressed back
    /// to its plain name first, and the compressed segments left (all at or below it) are
    /// not read (`storage/FORMAT.md`, "Compressed segments").
    ///
    /// `visit` sees the records of a segment before the checks that span segments (name,
    /// link to the previous one) have passed for it; when they fail, `open` fails, so a
    /// caller acts on what it was handed only once `open` returned `Ok`.
    pub fn open_replaying(
        dir: &Path,
        opts: LogOptions,
        after_zxid: i64,
        visit: ReplayVisitor<'_>,
    ) -> Result<(LogWriter<DiskStorage>, Recovered), LogError> {
        LogWriter::open_replaying_with(open_locked(dir, &opts)?, opts, after_zxid, visit)
    }

    /// The write path in use (io_uring, or the `pwrite` fallback).
    pub fn io_mode(&self) -> IoMode {
        self.storage.io_mode()
    }
}

impl<S: Storage> LogWriter<S> {
    /// [`LogWriter::open`] over any [`Storage`] (the simulator in tests).
    ///
    /// Compressed segments are decompressed only where the log needs them to stay one run
    /// (`storage/FORMAT.md`, "Compressed segments"); a caller that replays from a snapshot
    /// opens with [`LogWriter::open_replaying_with`] and that snapshot's zxid.
    pub fn open_with(storage: S, opts: LogOptions) -> Result<(LogWriter<S>, Recovered), LogError> {
        LogWriter::open_kind(storage, opts, TXN_SEGMENTS, i64::MAX, &mut |_, _, _, _| {})
    }

    /// [`LogWriter::open_replaying`] over any [`Storage`] (the simulator).
    pub fn open_replaying_with(
        storage: S,
        opts: LogOptions,
        after_zxid: i64,
        visit: ReplayVisitor<'_>,
    ) -> Result<(LogWriter<S>, Recovered), LogError> {
        LogWriter::open_kind(
            storage,
            opts,
            TXN_SEGMENTS,
            after_zxid,
            &mut |_, bytes, offset, frame| {
                let start = offset + FRAME_HEADER_BYTES;
                visit(frame.zxid, &bytes[start..start + frame.payload_bytes]);
            },
        )
    }

    /// [`LogWriter::open_with`] for the segments of `kind`, calling `visit` for every record
    /// recovery keeps (the Raft log reads its entries in the same pass), compressed
    /// segments that may hold records above `after_zxid` decompressed first.
    // Long because recovery is one sequence (newest segment, older ones, repair) whose
    // steps share the segment list, the scan buffer and the report.
    pub(crate) fn open_kind(
        mut storage: S,
        opts: LogOptions,
        kind: SegmentKind,
        after_zxid: i64,
        visit: RecordVisitor<'_>,
    ) -> Result<(LogWriter<S>, Recovered), LogError> {
        opts.validate()?;
        let mut stats = LogStats::default();
        let spare = recover_spare(&mut storage, &kind, &mut stats)?;
        // Compressed segments the replay needs go back to plain ones first; the rest stay
        // out of the scan below, which reads plain segments exactly as before.
        let mut restored = compress::restore(&mut storage, &kind, after_zxid)?;
        let mut recovered = Recovered {
            renamed_spare: spare.renamed,
            decompressed_segments: restored.decompressed,
            compressed_segments: restored.kept.len(),
            removed_leftovers: restored.removed,
            ..Recovered::default()
        };
        let mut files = segments::list(&mut storage, &kind)?;
        let mut buf = segments::SegmentBytes::default();

        // The newest segment first: it alone may have a torn tail, or hold no record at all
        // (a crash during a roll), in which case it goes and the one before is the newest.
        // Its bytes and frames are kept (one segment, at most `segment_bytes`) and visited
        // after the older segments', so that records are visited in log order without
        // reading or verifying the newest segment twice.
        let mut newest: Option<(SegmentFile, Scan)> = None;
        let mut newest_buf = segments::SegmentBytes::default();
        let mut newest_frames: Vec<(usize, Frame)> = Vec::new();
        loop {
            while let Some(file) = files.pop() {
                let id = segments::load(&mut storage, &file.name, &mut newest_buf, true)?;
                storage.close(id);
                newest_frames.clear();
                let verdict = scan_segment_of(
                    &kind,
                    newest_buf.bytes(),
                    Position::Newest,
                    |offset, frame| newest_frames.push((offset, *frame)),
                );
                match verdict.clone() {
                    Ok(scan) if scan.records > 0 => {
                        segments::check_name(&storage, &file, &scan.header)?;
                        newest = Some((file, scan));
                        break;
                    }
                    Ok(_) | Err(ScanError::InterruptedCreation) => {
                        if let Ok(Scan {
                            valid_end,
                            torn_end: Some(torn_end),
                            ..
                        }) = verdict
                        {
                            // The segment's first batch was torn: report it like any torn tail.
                            recovered.truncated_bytes = (torn_end - valid_end) as u64;
                            recovered.torn_tail = Some(TornTail {
                                file: storage.path(&file.name),
                                offset: valid_end as u64,
                            });
                        }
                        tracing::warn!(file = %storage.path(&file.name).display(),
                            "removing the newest log segment: it holds no whole record (crash during a roll)");
                        remove_newest_on_open(&mut storage, file.name, &mut stats, &mut recovered)?;
                    }
                    Err(e) => return Err(segments::scan_error(&storage, &file.name, e)),
                }
            }

            // Every plain segment was removed above (with force_sync off, the records of the
            // segment after a compressed one may never have been synced: a roll whose
            // predecessor was already durable leaves no seal to sync them). The newest
            // compressed segment is then the newest segment: decompressed, and scanned as
            // such. It is whole: a segment is compressed only once sealed.
            if newest.is_none() {
                if let Some(file) = restored.kept.pop() {
                    compress::decompress(&mut storage, &kind, &file.name)?;
                    recovered.decompressed_segments.push(file.name.clone());
                    files.push(file);
                    continue;
                }
            }

            // The newest segment was started while its predecessor's seal was still running
            // on the helper thread (force_sync off), and no frame of it proves that seal
            // done (`synced_through` past the header). The predecessor may then have a torn
            // tail, a crash's doing: it is scanned like a newest segment, and if it turns out
            // torn or without a whole record, the newest segment's records follow lost ones
            // and it goes too; the predecessor is then the newest and repaired as such. Not
            // when a later segment was removed above (nor a second time): a roll starts a
            // segment only after the previous roll's seal finished, so whatever came before
            // a later segment's creation is whole.
            let unproven = newest.as_ref().is_some_and(|(_, scan)| {
                scan.header.flags & FLAG_PREV_UNSEALED != 0
                    && newest_frames
                        .iter()
                        .all(|(_, f)| f.synced_through as usize <= HEADER_BYTES)
            });
            let later_removed = !recovered.removed_segments.is_empty();
            let Some(prev) = files.last().filter(|_| unproven && !later_removed) else {
                break;
            };
            let expected_last = newest.as_ref().expect("unproven").1.header.prev_last_zxid;
            let id = segments::load(&mut storage, &prev.name, &mut buf, true)?;
            storage.close(id);
            let verdict = scan_segment_of(&kind, buf.bytes(), Position::Newest, |_, _| {});
            // Lost: torn, or cut at a frame boundary (unsynced frames that never reached the
            // disk read as zeros), or not even its header kept. Anything else is whole, or
            // corrupt, and the scan below reports it as such.
            let lost = match &verdict {
                Ok(scan) => scan.torn_end.is_some() || scan.last_zxid.unwrap_or(-1) < expected_last,
                Err(e) => *e == ScanError::InterruptedCreation,
            };
            if !lost {
                if verdict.is_ok() {
                    // Whole as read, but after a process crash before its seal finished
                    // that may be the page cache's copy: seal it now. The newest segment's
                    // sync below then makes every frame appended after recovery a witness
                    // that this one is whole, which must be true on the disk.
                    seal_on_open(&mut storage, &prev.name, &mut stats)?;
                }
                break;
            }
            let (file, _) = newest.take().expect("unproven means a newest segment");
            tracing::warn!(file = %storage.path(&file.name).display(), sealed = %storage.path(&prev.name).display(),
                "removing the newest log segment: the segment before it has a torn tail (a crash before its seal finished)");
            remove_newest_on_open(&mut storage, file.name, &mut stats, &mut recovered)?;
            recovered.unsealed_tail = Some(storage.path(&prev.name));
            newest_frames.clear();
        }

        // Every older segment must verify in full and link to the next.
        let mut log: Vec<Segment> = Vec::new();
        let mut prev: Option<Loaded> = None;
        for file in &files {
            let id = segments::load(&mut storage, &file.name, &mut buf, true)?;
            storage.close(id);
            let bytes = buf.bytes();
            let scan = scan_segment_of(&kind, bytes, Position::Sealed, |offset, frame| {
                visit(&file.name, bytes, offset, frame)
            })
            .map_err(|e| segments::scan_error(&storage, &file.name, e))?;
            segments::check_name(&storage, file, &scan.header)?;
            let loaded = Loaded {
                name: file.name.clone(),
                header: scan.header,
                last_zxid: scan.last_zxid,
            };
            if let Some(p) = &prev {
                segments::check_link(&storage, p, &loaded)?;
            }
            recovered.records += scan.records;
            recovered.first_zxid = recovered.first_zxid.or(Some(scan.header.first_zxid));
            log.push(Segment {
                name: file.name.clone(),
                index: scan.header.segment_index,
                last_zxid: scan.last_zxid,
                end: scan.valid_end as u64,
                compressed: false,
            });
            prev = Some(loaded);
        }

        let mut current = None;
        if let Some((file, scan)) = newest {
            let loaded = Loaded {
                name: file.name.clone(),
                header: scan.header,
                last_zxid: scan.last_zxid,
            };
            if let Some(p) = &prev {
                segments::check_link(&storage, p, &loaded)?;
            }
            // A segment without records (removed above) visits nothing, and one that turned
            // out corrupt failed the open, so every record visited is one that recovery keeps.
            for (offset, frame) in &newest_frames {
                visit(&file.name, newest_buf.bytes(), *offset, frame);
            }
            // Unmapped before the file is opened for writing (the torn tail's repair).
            newest_buf.unmap();
            let io = |op, storage: &S, source| LogError::Io {
                op,
                file: storage.path(&file.name),
                source,
            };
            let id = storage
                .open(&file.name)
                .map_err(|e| io("open", &storage, e))?;
            let repair = (|| {
                if let Some(torn_end) = scan.torn_end {
                    let bytes = (torn_end - scan.valid_end) as u64;
                    tracing::warn!(file = %storage.path(&file.name).display(), offset = scan.valid_end, bytes,
                        "transaction log: truncating a torn tail after the last whole record");
                    // Zero the torn bytes (the file keeps its preallocated length), so that no
                    // stale frame can ever be taken for data once later appends pass it.
                    let mut zeros = Vec::with_capacity((bytes as usize).min(ZEROS_BYTES_MAX));
                    write_zeros(
                        &mut storage,
                        id,
                        scan.valid_end as u64,
                        torn_end as u64,
                        &mut zeros,
                    )
                    .map_err(|e| io("write", &storage, e))?;
                    recovered.truncated_bytes = bytes;
                    recovered.torn_tail = Some(TornTail {
                        file: storage.path(&file.name),
                        offset: scan.valid_end as u64,
                    });
                }
                // What we verified may so far live only in the page cache (the process, not
                // the machine, crashed; or force_sync was off). Make it durable before anything
                // is appended after it: it becomes the `synced_through` of the next frames.
                storage
                    .sync_data(id)
                    .map_err(|e| io("fdatasync", &storage, e))?;
                stats.fdatasyncs += 1;
                storage.len(id).map_err(|e| io("stat", &storage, e))
            })();
            let file_bytes = match repair {
                Ok(len) => len,
                Err(e) => {
                    storage.close(id);
                    return Err(e);
                }
            };
            current = Some(Current {
                file: id,
                file_bytes,
                end: scan.valid_end as u64,
                synced_through: scan.valid_end as u64,
            });
            recovered.records += scan.records;
            recovered.first_zxid = recovered.first_zxid.or(Some(scan.header.first_zxid));
            log.push(Segment {
                name: file.name,
                index: scan.header.segment_index,
                last_zxid: scan.last_zxid,
                end: scan.valid_end as u64,
                compressed: false,
            });
        }
        // The compressed segments come before every plain one (`compress::restore`), and
        // at least one plain segment is left (above). Their records are not read, and none
        // is needed.
        recovered.compressed_segments = restored.kept.len();
        if let Some(newest) = restored.kept.last() {
            let Some(first_plain) = recovered.first_zxid else {
                return Err(LogError::Corrupt {
                    file: storage.path(&SegmentForm::Compressed.file_name(&newest.name)),
                    offset: 0,
                    reason: "compressed segment with no plain segment after it".into(),
                });
            };
            let nexts = restored.kept.iter().skip(1).map(|f| f.first_zxid);
            let compressed = restored.kept.iter().zip(nexts.chain([first_plain]));
            let compressed = compressed.map(|(file, next_first)| Segment {
                name: file.name.clone(),
                index: 0,
                last_zxid: Some(next_first - 1),
                end: 0,
                compressed: true,
            });
            log.splice(0..0, compressed.collect::<Vec<_>>());
        }
        let last_zxid = log.last().and_then(|s| s.last_zxid);
        recovered.last_zxid = last_zxid;
        recovered.segments = log.len();
        let buffer = Vec::with_capacity(opts.batch_bytes_max);
        let mut background = Background::new(
            &storage,
            kind.spare_name(),
            opts.segment_bytes,
            opts.segment_zero_fill,
        );
        if spare.stale {
            background.submit(Task::Remove(kind.spare_name()));
        }
        background.submit(Task::Spare);
        let writer = LogWriter {
            storage,
            opts,
            kind,
            segments: log,
            current,
            last_zxid,
            buffer_capacity: buffer.capacity(),
            buffer,
            stopped: None,
            staged: false,
            stats,
            background,
            unsealed: None,
            compression_stopped: false,
        };
        Ok((writer, recovered))
    }

    /// Appends one batch of records (zxid-ordered, each zxid greater than the last) and
    /// makes it durable — one write and, with `force_sync`, one linked fdatasync — before
    /// returning. A batch that fails validation writes nothing and leaves the writer usable;
    /// a failed write or sync stops the writer for good ([`LogError::Stopped`]).
    ///
    /// Allocation: none; frames are built in the buffer sized by `batch_bytes_max` at open.
    pub fn append(&mut self, batch: &[Record<'_>]) -> Result<(), LogError> {
        self.append_payloads(batch).map(|_| ())
    }

    /// [`LogWriter::append`] of any payloads. On `Ok`, returns the offset of the batch's first
    /// frame in the (possibly new) current segment, `None` for an empty batch.
    pub(crate) fn append_payloads<P: Payload>(
        &mut self,
        batch: &[P],
    ) -> Result<Option<u64>, LogError> {
        let Some(staged) = self.stage_payloads(batch)? else {
            return Ok(None);
        };
        let written = self.write_staged(&staged);
        self.finish_staged(staged, written).map(Some)
    }

    /// The first half of [`LogWriter::append`], for a caller that does the write itself
    /// (the server's commit executor, through its own io_uring, without blocking): validates
    /// the batch, starts a new segment if it does not fit (blocking), and frames it into the
    /// writer's buffer, [`LogWriter::staged_bytes`]. The caller then writes those bytes at
    /// [`Staged::offset`] of the segment ([`LogWriter::staged_file`]), fdatasyncs them when
    /// [`LogOptions::force_sync`](super::LogOptions::force_sync) is on, and hands the outcome
    /// to [`LogWriter::finish_staged`] — or lets the writer do both with
    /// [`LogWriter::write_staged`]. Until then the writer takes no other call (asserted).
    ///
    /// Errors and fail-stop are those of [`LogWriter::append`]: a batch that fails validation
    /// stages nothing and leaves the writer usable; `Ok(None)` for an empty batch.
    pub fn stage(&mut self, batch: &[Record<'_>]) -> Result<Option<Staged>, LogError> {
        self.stage_payloads(batch)
    }

    /// [`LogWriter::stage`] of any payloads.
    // Long because validation, roll and framing are one step whose asserts pin the
    // offsets between them.
    pub(crate) fn stage_payloads<P: Payload>(
        &mut self,
        batch: &[P],
    ) -> Result<Option<Staged>, LogError> {
        assert!(
            !self.staged,
            "a staged batch must be finished before the next is staged"
        );
        self.check_running()?;
        if batch.is_empty() {
            return Ok(None);
        }
        // Validate the whole batch before touching the disk.
        let mut last = self.last_zxid;
        let mut framed = 0usize;
        for r in batch {
            let (zxid, bytes) = (r.key(), r.payload_bytes());
            if zxid < 0 || last.is_some_and(|l| zxid <= l) {
                return Err(LogError::ZxidOrder {
                    zxid,
                    last_zxid: last,
                });
            }
            if bytes > self.opts.record_bytes_max {
                return Err(LogError::RecordTooLarge {
                    zxid,
                    bytes,
                    record_bytes_max: self.opts.record_bytes_max,
                });
            }
            framed += frame_bytes(bytes);
            last = Some(zxid);
        }
        if framed > self.opts.batch_bytes_max {
            return Err(LogError::BatchTooLarge {
                bytes: framed,
                batch_bytes_max: self.opts.batch_bytes_max,
            });
        }
        self.poll_background()?;
        let fits = self
            .current
            .is_some_and(|c| c.end + framed as u64 <= c.file_bytes);
        if !fits {
            self.roll(batch[0].key())?;
        }
        let cur = self.current.expect("a current segment after roll");
        assert!(
            HEADER_BYTES as u64 <= cur.synced_through
                && cur.synced_through <= cur.end
                && cur.end <= cur.file_bytes,
            "segment offsets out of order: {cur:?}"
        );
        assert!(
            cur.end + framed as u64 <= cur.file_bytes,
            "a batch of at most batch_bytes_max fits a new segment"
        );
        let synced_through = u32::try_from(cur.synced_through).expect("segment offsets fit in u32");
        self.buffer.clear();
        for r in batch {
            encode_frame_with(&mut self.buffer, r.key(), synced_through, |out| {
                r.write_payload(out)
            });
        }
        assert_eq!(self.buffer.len(), framed);
        debug_assert_eq!(
            self.buffer.capacity(),
            self.buffer_capacity,
            "no growth past the up-front buffer"
        );
        self.staged = true;
        Ok(Some(Staged {
            file: cur.file,
            offset: cur.end,
            framed,
            last,
            records: batch.len() as u64,
        }))
    }

    /// The framed bytes of the staged batch, to be written at [`Staged::offset`].
    pub fn staged_bytes(&self) -> &[u8] {
        assert!(self.staged, "staged_bytes without a staged batch");
        &self.buffer
    }

    /// A handle of its own on the segment `staged` goes to (for a caller that writes it
    /// through its own ring), or `None` when the storage has no real file to hand out (the
    /// simulator): then [`LogWriter::write_staged`] writes it.
    pub fn staged_file(&self, staged: &Staged) -> std::io::Result<Option<std::fs::File>> {
        self.storage.try_clone_file(staged.file)
    }

    /// Writes the staged batch through the storage (and fdatasyncs it with `force_sync`),
    /// blocking; the outcome goes to [`LogWriter::finish_staged`].
    /// With `force_sync` the time of the write and its sync together is recorded as the
    /// append's sync time (the write is a copy into the page cache; the sync is the cost).
    pub fn write_staged(&mut self, staged: &Staged) -> std::io::Result<()> {
        assert!(self.staged, "write_staged without a staged batch");
        let started = std::time::Instant::now();
        let written = self.storage.write_at(
            staged.file,
            staged.offset,
            &self.buffer,
            self.opts.force_sync,
        );
        if self.opts.force_sync && written.is_ok() {
            self.stats.append_syncs.record(started.elapsed());
        }
        written
    }

    /// Records the time of an append's sync made by the caller (one that writes the
    /// staged bytes through its own ring: [`LogWriter::staged_file`]).
    pub fn record_append_sync(&mut self, elapsed: std::time::Duration) {
        self.stats.append_syncs.record(elapsed);
    }

    /// The second half of [`LogWriter::append`]: `written` is the outcome of writing the
    /// staged bytes (and, with `force_sync`, of their fdatasync). On `Ok` the batch is part of
    /// the log (durable with `force_sync`), and the offset of its first frame is returned; an
    /// error stops the writer for good ([`LogError::Stopped`] from then on), as in `append`.
    pub fn finish_staged(
        &mut self,
        staged: Staged,
        written: std::io::Result<()>,
    ) -> Result<u64, LogError> {
        assert!(self.staged, "finish_staged without a staged batch");
        self.staged = false;
        let sync = self.opts.force_sync;
        if let Err(e) = written {
            return Err(self.stop(if sync { "write + fdatasync" } else { "write" }, e));
        }
        let cur = self.current.as_mut().expect("current segment");
        assert_eq!(
            (cur.file, cur.end),
            (staged.file, staged.offset),
            "the staged batch is the one at the tail"
        );
        let start = cur.end;
        cur.end += staged.framed as u64;
        if sync {
            cur.synced_through = cur.end;
            self.stats.fdatasyncs += 1;
        }
        let end = cur.end;
        self.last_zxid = staged.last;
        let segment = self.segments.last_mut().expect("current segment is listed");
        segment.last_zxid = staged.last;
        segment.end = end;
        self.hand_over_seal(end);
        self.stats.appends += 1;
        self.stats.records += staged.records;
        self.stats.bytes += staged.framed as u64;
        Ok(start)
    }

    /// Removes whole segments whose records all have zxid `<= zxid`, oldest first (retention:
    /// the caller decides when a snapshot makes them unneeded). The segment being appended
    /// to is never removed.
    pub fn purge_through(&mut self, zxid: i64) -> Result<(), LogError> {
        assert!(!self.staged, "no purge while a staged batch is unfinished");
        self.check_running()?;
        self.poll_background()?;
        // The removals (each followed by a directory fsync, oldest first) run in the
        // background; the segments leave the log now. A crash before they are done leaves
        // them in place, whole: the next open finds them and a later purge removes them.
        while self.segments.len() > 1 && self.segments[0].last_zxid.is_some_and(|last| last <= zxid)
        {
            let segment = self.segments.remove(0);
            self.background.submit(Task::Remove(segment.name));
        }
        Ok(())
    }

    /// Blocks until the background work handed over so far is done: purged segments
    /// removed, the spare prepared, a finished segment sealed. For tests and tools; the
    /// server never waits on it.
    pub fn wait_background(&mut self) -> Result<(), LogError> {
        assert!(!self.staged, "no wait while a staged batch is unfinished");
        self.check_running()?;
        let waited = self
            .background
            .wait_all(&mut self.storage, &mut self.stats, false);
        waited.map_err(|f| self.stop_background(f))?;
        self.take_sealed();
        self.take_compressed();
        Ok(())
    }

    /// [`LogWriter::purge_through`], returning only once the segments are removed (the Raft
    /// log, whose callers expect a purge to be durable when it returns).
    pub(crate) fn purge_through_now(&mut self, zxid: i64) -> Result<(), LogError> {
        self.purge_through(zxid)?;
        let waited = self
            .background
            .wait_all(&mut self.storage, &mut self.stats, true);
        waited.map_err(|f| self.stop_background(f))
    }

    /// Zxid of the last record appended (or recovered).
    pub fn last_zxid(&self) -> Option<i64> {
        self.last_zxid
    }

    /// The segment being appended to and the byte offset where the next batch goes.
    pub fn tail(&self) -> Option<(&str, u64)> {
        let cur = self.current.as_ref()?;
        let seg = self.segments.last()?;
        Some((seg.name.as_str(), cur.end))
    }

    /// Names of the segments in the log, oldest first.
    pub fn segment_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.name.as_str())
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// The options the writer runs with.
    pub fn options(&self) -> &LogOptions {
        &self.opts
    }

    /// `Some(cause)` once a failure has stopped the writer.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    pub(crate) fn check_running(&self) -> Result<(), LogError> {
        match &self.stopped {
            Some(cause) => Err(LogError::Stopped {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a fatal failure on the current segment and returns it as the error.
    fn stop(&mut self, op: &'static str, source: std::io::Error) -> LogError {
        let name = self
            .segments
            .last()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.stop_on(&name, op, source)
    }

    /// The storage, for files that live beside the segments (the Raft log's hard state).
    pub(crate) fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Records a fatal failure of `op` on `name` and returns it as the error (fail-stop).
    pub(crate) fn stop_on(
        &mut self,
        name: &str,
        op: &'static str,
        source: std::io::Error,
    ) -> LogError {
        let err = LogError::Io {
            op,
            file: self.storage.path(name),
            source,
        };
        tracing::error!(error = %err, "transaction log writer stopped (fail-stop)");
        if self.stopped.is_none() {
            self.stopped = Some(err.to_string());
        }
        err
    }

    /// Collects finished background work (or runs some, inline); a failure stops the writer.
    fn poll_background(&mut self) -> Result<(), LogError> {
        let polled = self.background.poll(&mut self.storage, &mut self.stats);
        polled.map_err(|f| self.stop_background(f))?;
        self.take_sealed();
        self.take_compressed();
        Ok(())
    }

    /// Applies the compressions that ended.
    fn take_compressed(&mut self) {
        for (name, done) in self.background.take_compressed() {
            match done {
                Compressed::Done {
                    data_bytes,
                    file_bytes,
                } => {
                    tracing::info!(segment = %self.storage.path(&name).display(), data_bytes, file_bytes,
                        "log segment covered by a snapshot compressed");
                    if let Some(s) = self.segments.iter_mut().find(|s| s.name == name) {
                        s.compressed = true;
                    }
                }
                Compressed::Skipped(_) => self.compression_stopped = true,
                Compressed::Abandoned => {}
            }
        }
    }

    /// Compresses, in the background, the sealed segments whose records all have zxid
    /// `<= zxid`, oldest first (`storage/FORMAT.md`, "Compressed segments"). The caller
    /// passes the zxid of the newest snapshot it has written and read back: those records
    /// are read again only if that snapshot is rejected at a later start.
    ///
    /// Never the segment being appended to, nor its predecessor while that one's seal
    /// (`force_sync` off) has not finished: a compression reads the segment once and keeps
    /// what it read, so the segment must be whole on the disk. (The segment after it may
    /// still lose every record in a power cut, with `force_sync` off; recovery then
    /// decompresses the compressed one as the newest segment.)
    ///
    /// `Ok(false)` when a covered segment had to wait for its seal: the caller asks again
    /// later (after its next batch).
    pub fn compress_through(&mut self, zxid: i64) -> Result<bool, LogError> {
        assert!(
            !self.staged,
            "no compression while a staged batch is unfinished"
        );
        self.check_running()?;
        self.poll_background()?;
        if self.compression_stopped {
            return Ok(true);
        }
        let older = self.segments.len().saturating_sub(1);
        for segment in &self.segments[..older] {
            if segment.compressed || self.background.compressing(&segment.name) {
                continue;
            }
            let sealed = self.unsealed.as_deref() != Some(segment.name.as_str())
                && !self.background.seal_pending(&segment.name);
            if segment.last_zxid.is_none_or(|last| last > zxid) {
                break; // Oldest first: the ones after it are not covered either.
            }
            if !sealed {
                return Ok(false);
            }
            self.background.compress(CompressJob {
                name: segment.name.clone(),
                through: zxid,
            });
        }
        Ok(true)
    }

    /// How many sealed segments are covered through `zxid` (all their records at or
    /// below it) and still plain: neither compressed nor handed over. The appender
    /// compresses them when writes pause, or at once when this many pile up
    /// (`commit::append`).
    pub fn plain_covered(&self, zxid: i64) -> usize {
        let older = self.segments.len().saturating_sub(1);
        self.segments[..older]
            .iter()
            .take_while(|s| s.last_zxid.is_some_and(|last| last <= zxid))
            .filter(|s| !s.compressed && !self.background.compressing(&s.name))
            .count()
    }

    /// Names of the segments kept compressed (`<name>.zst` on disk), oldest first.
    pub fn compressed_segment_names(&self) -> impl Iterator<Item = &str> {
        self.segments
            .iter()
            .filter(|s| s.compressed)
            .map(|s| s.name.as_str())
    }

    /// Applies a finished seal: the segment after the sealed one is durable through the
    /// offset the seal's second fdatasync covered, and the frames written from now on say
    /// so (the witness that the sealed segment is whole).
    fn take_sealed(&mut self) {
        let Some((next, through)) = self.background.take_sealed() else {
            return;
        };
        let is_current = self.segments.last().is_some_and(|s| s.name == next);
        if let (true, Some(cur)) = (is_current, self.current.as_mut()) {
            debug_assert!(through <= cur.end, "a seal covers written bytes only");
            cur.synced_through = cur.synced_through.max(through.min(cur.end));
        }
    }

    /// Hands the seal a roll left (if any) to the helper thread, the current segment being
    /// written through `through`, and after it the next spare.
    fn hand_over_seal(&mut self, through: u64) {
        let Some(sealed) = self.unsealed.take() else {
            return;
        };
        let next = self.segments.last().expect("listed").name.clone();
        self.background.submit(Task::Seal {
            sealed,
            next,
            through,
        });
        self.background.submit(Task::Spare);
    }

    /// Hands over the seal a roll left for the current segment's first batch, if that batch
    /// never came (a truncation or a roll before it), and waits for every seal to finish.
    pub(crate) fn finish_sealing(&mut self) -> Result<(), LogError> {
        if let Some(cur) = self.current {
            self.hand_over_seal(cur.end);
        }
        let waited = self
            .background
            .wait_for_seal(&mut self.storage, &mut self.stats);
        waited.map_err(|f| self.stop_background(f))?;
        self.take_sealed();
        Ok(())
    }

    fn stop_background(&mut self, f: Failure) -> LogError {
        self.stop_on(&f.name, f.op, f.source)
    }

    /// Starts a new segment whose first record will have `first_zxid`: the spare renamed
    /// into place when one is ready (a header write and a rename), else created inline.
    ///
    /// With `force_sync` off the finished segment holds unsynced bytes. It is not synced
    /// here but by the helper thread, after the new segment's first batch ([`Task::Seal`]);
    /// the new segment's header says so ([`FLAG_PREV_UNSEALED`]), which is what lets
    /// recovery take a torn tail in it for a crash's doing (`storage/FORMAT.md`, "Roll").
    /// A roll waits only when the previous roll's seal is still running: at most one
    /// segment, the newest one's predecessor, is ever unsealed.
    fn roll(&mut self, first_zxid: i64) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        self.finish_sealing()?;
        let mut flags = 0;
        if let Some(cur) = self.current.take() {
            if cur.synced_through < cur.end {
                flags = FLAG_PREV_UNSEALED;
                self.unsealed = self.segments.last().map(|s| s.name.clone());
            }
            self.storage.close(cur.file);
        }
        let name = self.kind.segment_name(first_zxid);
        let index = self.segments.last().map_or(0, |s| s.index + 1);
        let header = self.kind.encode_header(&SegmentHeader {
            // Version 2 only where its flag is needed: a log written with force_sync on
            // stays readable by version-1 code.
            version: if flags == 0 { 1 } else { 2 },
            flags,
            first_zxid,
            segment_index: index,
            prev_last_zxid: self.last_zxid.unwrap_or(-1),
        });
        // A purged segment of the same name may still be waiting for its removal (a Raft log
        // truncated back before a purge).
        let waited = self
            .background
            .wait_for_removal(&mut self.storage, &name, &mut self.stats);
        waited.map_err(|f| self.stop_background(f))?;
        let waited = started.elapsed();
        let file = if self.background.take_spare() {
            let file = self.use_spare(&header)?;
            self.background.submit(Task::Rename(name.clone()));
            if self.unsealed.is_none() {
                // Otherwise after the seal, which must not wait behind a zero fill.
                self.background.submit(Task::Spare);
            }
            file
        } else {
            self.stats.rolls_inline += 1;
            let waited = self
                .background
                .wait_for_renames(&mut self.storage, &mut self.stats);
            waited.map_err(|f| self.stop_background(f))?;
            self.create_segment(&name, &header)?
        };
        let total = started.elapsed();
        if total >= ROLL_SLOW {
            // Which part of a slow roll waited: the previous roll's seal still running on the
            // helper (with force_sync off) or a purge of the same name, or starting the new
            // segment (header and rename, or an inline creation).
            tracing::info!(?total, ?waited, new_segment = ?(total - waited), segment = %name,
                "slow log roll");
        }
        let segment_bytes = self.opts.segment_bytes;
        self.stats.segments_created += 1;
        self.segments.push(Segment {
            name,
            index,
            last_zxid: None,
            end: HEADER_BYTES as u64,
            compressed: false,
        });
        self.current = Some(Current {
            file,
            file_bytes: segment_bytes,
            end: HEADER_BYTES as u64,
            synced_through: HEADER_BYTES as u64,
        });
        Ok(())
    }

    /// Turns the ready spare into the current segment: writes `header` into it. The helper
    /// thread renames it to the segment's name next ([`Task::Rename`]), before it touches
    /// the segment by name (a seal) or prepares the next spare.
    ///
    /// The rename is not followed by a directory fsync: the records appended next are
    /// durable in the file under either name, and recovery renames a spare that holds a
    /// valid header into place ([`recover_spare`]). The directory fsync of the next spare's
    /// creation, in the background, makes the rename durable. The header is not synced
    /// here: with `force_sync` the first batch's fdatasync (same file) covers it, without
    /// it the seal's second fdatasync does; a crash that keeps frames but not the header
    /// loses only frames no sync covered (recovery, "a header never written").
    fn use_spare(&mut self, header: &[u8]) -> Result<FileId, LogError> {
        let spare = self.kind.spare_name();
        let file = match self.storage.open(&spare) {
            Ok(f) => f,
            Err(e) => return Err(self.stop_on(&spare, "open", e)),
        };
        let steps = (|| -> Result<(), (&'static str, std::io::Error)> {
            let len = self.storage.len(file).map_err(|e| ("stat", e))?;
            if len != self.opts.segment_bytes {
                let e = std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the spare is {len} bytes, not {}", self.opts.segment_bytes),
                );
                return Err(("stat", e));
            }
            self.storage
                .write_at(file, 0, header, false)
                .map_err(|e| ("write", e))
        })();
        if let Err((op, e)) = steps {
            self.storage.close(file);
            return Err(self.stop_on(&spare, op, e));
        }
        Ok(file)
    }

    /// Creates the segment `name` on the commit path (no spare was ready): create,
    /// `fallocate`, header, fsync, directory fsync.
    fn create_segment(&mut self, name: &str, header: &[u8]) -> Result<FileId, LogError> {
        let file = match self.storage.create(name) {
            Ok(f) => f,
            Err(e) => return Err(self.stop_on(name, "create", e)),
        };
        let segment_bytes = self.opts.segment_bytes;
        let steps = (|| -> Result<(), (&'static str, std::io::Error)> {
            self.storage
                .allocate(file, segment_bytes)
                .map_err(|e| ("fallocate", e))?;
            // No zero fill here even with `segment_zero_fill`: this is already the slow
            // path (no spare was ready), and zeros would make that stall 100-300 ms longer.
            self.storage
                .write_at(file, 0, header, false)
                .map_err(|e| ("write", e))?;
            // fsync, not fdatasync: the file's size and extents must be durable too.
            self.storage.sync_all(file).map_err(|e| ("fsync", e))?;
            self.storage.sync_dir().map_err(|e| ("fsync directory", e))
        })();
        if let Err((op, e)) = steps {
            self.storage.close(file);
            return Err(self.stop_on(name, op, e));
        }
        self.stats.fsyncs += 2;
        Ok(file)
    }
}

/// Removes the newest segment during recovery (it holds no whole record, or follows a torn
/// tail), durably, and reports it.
fn remove_newest_on_open<S: Storage>(
    storage: &mut S,
    name: String,
    stats: &mut LogStats,
    recovered: &mut Recovered,
) -> Result<(), LogError> {
    let io = |op, storage: &S, source| LogError::Io {
        op,
        file: storage.path(&name),
        source,
    };
    storage
        .remove(&name)
        .map_err(|e| io("remove", storage, e))?;
    storage
        .sync_dir()
        .map_err(|e| io("fsync directory", storage, e))?;
    stats.fsyncs += 1;
    stats.segments_removed += 1;
    recovered.removed_segments.push(name);
    Ok(())
}

/// Fdatasyncs the segment `name` during recovery.
fn seal_on_open<S: Storage>(
    storage: &mut S,
    name: &str,
    stats: &mut LogStats,
) -> Result<(), LogError> {
    let io = |op, storage: &S, source| LogError::Io {
        op,
        file: storage.path(name),
        source,
    };
    let id = storage.open(name).map_err(|e| io("open", storage, e))?;
    let synced = storage.sync_data(id);
    storage.close(id);
    synced.map_err(|e| io("fdatasync", storage, e))?;
    stats.fdatasyncs += 1;
    Ok(())
}

/// What recovery found under the spare's name.
#[derive(Debug, Default)]
struct SpareFound {
    /// A spare holding a valid header, renamed (durably) back to this segment name.
    renamed: Option<String>,
    /// A spare that holds nothing (zero header, or a preparation cut short): left for the
    /// helper to remove before it prepares the next one.
    stale: bool,
}

/// Recovery's first step: a spare left by the last run. One holding a valid header was
/// renamed from by a roll whose rename a crash did not keep: it is the newest segment, and
/// goes back under its name (then checked like any segment), durably. Any other spare (zero
/// header, or a preparation cut short) holds nothing: it is reported stale, and the helper
/// removes it first thing (issue #13: unlinking a zero-filled 64 MiB spare and the
/// directory fsync after it took ~70 ms of every open). Until then it is never used: a
/// roll takes only a spare the helper has prepared since.
fn recover_spare<S: Storage>(
    storage: &mut S,
    kind: &SegmentKind,
    stats: &mut LogStats,
) -> Result<SpareFound, LogError> {
    let spare = kind.spare_name();
    let io = |op, storage: &S, source| LogError::Io {
        op,
        file: storage.path(&spare),
        source,
    };
    let names = storage.list().map_err(|e| io("list", storage, e))?;
    if !names.contains(&spare) {
        return Ok(SpareFound::default());
    }
    let file = storage.open(&spare).map_err(|e| io("open", storage, e))?;
    let mut header = [0u8; HEADER_BYTES];
    let read = (|| {
        let len = storage.len(file)?;
        if len < HEADER_BYTES as u64 {
            return Ok(None);
        }
        storage.read_at(file, 0, &mut header)?;
        Ok(kind.decode_header(&header).ok())
    })();
    storage.close(file);
    match read.map_err(|e| io("read", storage, e))? {
        Some(h) if h.first_zxid >= 0 => {
            let name = kind.segment_name(h.first_zxid);
            tracing::warn!(file = %storage.path(&spare).display(), segment = %name,
                "log spare holds a segment header (a crash after a roll): renaming it into place");
            storage
                .rename(&spare, &name, Overwrite::Never)
                .map_err(|e| io("rename", storage, e))?;
            storage
                .sync_dir()
                .map_err(|e| io("fsync directory", storage, e))?;
            stats.fsyncs += 1;
            Ok(SpareFound {
                renamed: Some(name),
                stale: false,
            })
        }
        _ => {
            tracing::info!(file = %storage.path(&spare).display(), "an unused log spare is left for the helper to remove");
            Ok(SpareFound {
                renamed: None,
                stale: true,
            })
        }
    }
}

/// A roll that takes longer is logged with its parts.
const ROLL_SLOW: std::time::Duration = std::time::Duration::from_millis(5);

/// Largest buffer of zeros recovery writes a torn tail over with (in as many writes as the
/// tail needs).
const ZEROS_BYTES_MAX: usize = 1 << 20;

/// Writes zeros over `[from, to)` in chunks through `scratch` (whose capacity is reused).
fn write_zeros<S: Storage>(
    storage: &mut S,
    file: FileId,
    from: u64,
    to: u64,
    scratch: &mut Vec<u8>,
) -> std::io::Result<()> {
    // Chunks of the scratch buffer's capacity: no allocation (the writer's buffer is
    // `batch_bytes_max`, recovery's at most `ZEROS_BYTES_MAX`).
    let chunk = (scratch.capacity() as u64)
        .min(to.saturating_sub(from))
        .max(1) as usize;
    scratch.clear();
    scratch.resize(chunk, 0);
    let mut at = from;
    while at < to {
        let n = (to - at).min(chunk as u64) as usize;
        storage.write_at(file, at, &scratch[..n], false)?;
        at += n as u64;
    }
    Ok(())
}
