//! Replaying the log: records after a zxid, verified again on the way.

use std::path::Path;

use super::error::LogError;
use super::format::{Frame, SegmentForm, FLAG_PREV_UNSEALED, FRAME_HEADER_BYTES, HEADER_BYTES};
use super::scan::{scan_segment, Position, ScanError};
use super::segments::{self, Loaded, SegmentFile};
use super::OwnedRecord;
use crate::backend::disk::DiskStorage;
use crate::backend::Storage;

/// Reads the records of the log in `dir` whose zxid is greater than `after_zxid`, in zxid
/// order (for replay on startup, after [`super::LogWriter::open`] has recovered the log).
///
/// Read-only: every record is verified again, and the rules of recovery apply, except that
/// a torn tail is not repaired, only not read. Segments whose records are all
/// `<= after_zxid` are not read at all. Errors are yielded where they are met; the iterator
/// ends after the first.
///
/// Compressed segments (`<name>.zst`, `storage/FORMAT.md`, "Compressed segments") are
/// decompressed in memory and read as if they were plain; where a crash left a segment in
/// both forms, the plain one is read, as recovery keeps it.
pub fn read(dir: &Path, after_zxid: i64) -> Result<LogReader<DiskStorage>, LogError> {
    let storage = DiskStorage::open_read_only(dir).map_err(|source| LogError::Io {
        op: "open directory",
        file: dir.to_path_buf(),
        source,
    })?;
    read_with(storage, after_zxid)
}

/// [`read`] over any [`Storage`].
pub fn read_with<S: Storage>(mut storage: S, after_zxid: i64) -> Result<LogReader<S>, LogError> {
    let mut files: Vec<(SegmentFile, SegmentForm)> = Vec::new();
    for (file, form) in segments::list_all(&mut storage, &super::format::TXN_SEGMENTS)? {
        let known = files
            .last()
            .is_some_and(|(f, _)| f.first_zxid == file.first_zxid);
        // Listed plain first: the compressed copy of a segment also found plain is left.
        if matches!(form, SegmentForm::Plain | SegmentForm::Compressed) && !known {
            files.push((file, form));
        }
    }
    // Segment i holds zxids in [first_i, first_{i+1}): skip it when first_{i+1} <= after + 1.
    let skip = files
        .windows(2)
        .take_while(|w| w[1].0.first_zxid <= after_zxid.saturating_add(1))
        .count();
    let files = files.into_iter().skip(skip).collect::<Vec<_>>();
    let relaxed_prev = if files.len() >= 2 {
        newest_unproven(&mut storage, &files)?
    } else {
        None
    };
    Ok(LogReader {
        storage,
        files,
        relaxed_prev,
        next_file: 0,
        after_zxid,
        buf: Default::default(),
        frames: Vec::new(),
        next_frame: 0,
        prev: None,
        done: false,
    })
}

/// Iterator returned by [`read`].
pub struct LogReader<S: Storage> {
    storage: S,
    /// The segments to read and the form each was listed in.
    files: Vec<(SegmentFile, SegmentForm)>,
    next_file: usize,
    /// `Some(last zxid the newest segment expects before it)` when the newest segment's
    /// predecessor is read like a newest segment, and the newest not at all if the
    /// predecessor turns out short of that (`newest_unproven`).
    relaxed_prev: Option<i64>,
    after_zxid: i64,
    /// The loaded segment's bytes.
    buf: segments::SegmentBytes,
    /// Offsets and frames of the loaded segment's records with zxid > after_zxid.
    frames: Vec<(usize, Frame)>,
    next_frame: usize,
    prev: Option<Loaded>,
    done: bool,
}

impl<S: Storage> LogReader<S> {
    /// Loads and verifies the next segment; `Ok(false)` at the end of the log.
    fn load_next(&mut self) -> Result<bool, LogError> {
        let Some((file, form)) = self.files.get(self.next_file).cloned() else {
            return Ok(false);
        };
        self.next_file += 1;
        let relaxed = self
            .relaxed_prev
            .filter(|_| self.next_file + 1 == self.files.len());
        let position = if self.next_file == self.files.len() || relaxed.is_some() {
            Position::Newest
        } else {
            Position::Sealed
        };
        let file = load_listed(&mut self.storage, file, form, &mut self.buf)?;
        self.frames.clear();
        self.next_frame = 0;
        let after = self.after_zxid;
        let frames = &mut self.frames;
        let scan = match scan_segment(self.buf.bytes(), position, |offset, frame| {
            if frame.zxid > after {
                frames.push((offset, *frame));
            }
        }) {
            Ok(scan) => scan,
            // A crash during a roll: the newest segment holds nothing (the writer removes it).
            Err(ScanError::InterruptedCreation) => {
                self.frames.clear();
                return Ok(false);
            }
            Err(e) => {
                self.frames.clear();
                return Err(segments::scan_error(&self.storage, &file.name, e));
            }
        };
        if scan.records == 0 && position == Position::Newest {
            return Ok(false);
        }
        let short = |expected| scan.torn_end.is_some() || scan.last_zxid.unwrap_or(-1) < expected;
        if relaxed.is_some_and(short) {
            // A crash before this segment's seal finished: what follows the tear is lost,
            // and the newest segment's records after it are not part of the log.
            self.files.truncate(self.next_file);
        }
        let checked = segments::check_name(&self.storage, &file, &scan.header).and_then(|()| {
            let loaded = Loaded {
                name: file.name.clone(),
                header: scan.header,
                last_zxid: scan.last_zxid,
            };
            if let Some(prev) = &self.prev {
                segments::check_link(&self.storage, prev, &loaded)?;
            }
            self.prev = Some(loaded);
            Ok(())
        });
        if let Err(e) = checked {
            self.frames.clear();
            return Err(e);
        }
        Ok(true)
    }
}

/// Whether the predecessor of the newest of `files` may have a torn tail, as recovery
/// (`storage/FORMAT.md`, "Recovery") allows, and if so the last zxid the newest expects
/// before it: the newest holds no record (a crash during a roll: the predecessor is the
/// newest; `i64::MIN`, nothing to compare), or it was started while its predecessor's seal
/// was running and has no frame proving that seal done. Reads the newest segment once
/// more; only tools read a log this way.
fn newest_unproven<S: Storage>(
    storage: &mut S,
    files: &[(SegmentFile, SegmentForm)],
) -> Result<Option<i64>, LogError> {
    let (newest, form) = files.last().cloned().expect("at least one file");
    let mut buf = segments::SegmentBytes::default();
    load_listed(storage, newest, form, &mut buf)?;
    let mut proven = false;
    let scan = scan_segment(buf.bytes(), Position::Newest, |_, frame| {
        proven |= frame.synced_through as usize > HEADER_BYTES;
    });
    Ok(match scan {
        Ok(scan) if scan.records == 0 => Some(i64::MIN),
        Err(ScanError::InterruptedCreation) => Some(i64::MIN),
        Ok(scan) if scan.header.flags & FLAG_PREV_UNSEALED != 0 && !proven => {
            Some(scan.header.prev_last_zxid)
        }
        // Read as usual: the reader reports it when it gets there.
        Ok(_) | Err(_) => None,
    })
}

/// Loads a listed segment into `out`; returns it as loaded. A plain segment that is gone
/// when it is read was compressed in the meantime (a tool reading beside a live server):
/// its `.zst` is read instead.
fn load_listed<S: Storage>(
    storage: &mut S,
    mut file: SegmentFile,
    form: SegmentForm,
    out: &mut segments::SegmentBytes,
) -> Result<SegmentFile, LogError> {
    match segments::load_form(storage, &file.name, form, out) {
        Err(LogError::Io { source, .. })
            if form == SegmentForm::Plain && source.kind() == std::io::ErrorKind::NotFound =>
        {
            file.name = SegmentForm::Compressed.file_name(&file.name);
            segments::load_form(storage, &file.name, SegmentForm::Compressed, out)?;
            Ok(file)
        }
        loaded => loaded.map(|()| file),
    }
}

impl<S: Storage> Iterator for LogReader<S> {
    type Item = Result<OwnedRecord, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some(&(offset, frame)) = self.frames.get(self.next_frame) {
                self.next_frame += 1;
                let start = offset + FRAME_HEADER_BYTES;
                let bytes = self.buf.bytes()[start..start + frame.payload_bytes].to_vec();
                return Some(Ok(OwnedRecord {
                    zxid: frame.zxid,
                    bytes,
                }));
            }
            match self.load_next() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
