//! Listing, loading and linking segment files: shared by the writer's recovery and the reader.

use super::error::LogError;
use super::format::{
    SegmentForm, SegmentHeader, SegmentKind, FORMAT_VERSION, HEADER_FIRST_ZXID_OFFSET,
    HEADER_PREV_LAST_ZXID_OFFSET,
};
use super::scan::ScanError;
use crate::backend::{FileId, Storage};

/// A segment file found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub name: String,
    /// The zxid encoded in the name.
    pub first_zxid: i64,
}

/// The plain segment files of the directory of `kind`, oldest first. Compressed segments
/// and the temporary files of (de)compression are left out: recovery and the writer read
/// plain segments only (`storage/FORMAT.md`, "Compressed segments").
pub(crate) fn list<S: Storage>(
    storage: &mut S,
    kind: &SegmentKind,
) -> Result<Vec<SegmentFile>, LogError> {
    Ok(list_all(storage, kind)?
        .into_iter()
        .filter(|(_, form)| *form == SegmentForm::Plain)
        .map(|(file, _)| file)
        .collect())
}

/// Every segment file of the directory of `kind` in any of its forms, ordered by first
/// zxid, then form (plain first). `name` is the file's own name.
pub(crate) fn list_all<S: Storage>(
    storage: &mut S,
    kind: &SegmentKind,
) -> Result<Vec<(SegmentFile, SegmentForm)>, LogError> {
    let names = storage.list().map_err(|source| LogError::Io {
        op: "list",
        file: storage.path(""),
        source,
    })?;
    let mut segments = Vec::new();
    for name in names {
        if !name.starts_with(kind.name_prefix) {
            continue; // Not ours: snapshots and other files may share the directory.
        }
        let Some((first_zxid, form)) = kind.parse_segment_file(&name) else {
            return Err(LogError::UnexpectedFile {
                file: storage.path(&name),
                prefix: kind.name_prefix,
            });
        };
        segments.push((SegmentFile { name, first_zxid }, form));
    }
    segments.sort_by_key(|(s, form)| (s.first_zxid, *form));
    Ok(segments)
}

/// A loaded segment's bytes: mapped from the file where the storage can map, else read
/// into a buffer kept for the next load.
///
/// Why a mapping: recovery reads every segment whole, and reading a 64 MiB segment into a
/// heap buffer cost more than verifying it (issue #13, a replay's `strace`: ~70 ms of
/// page faults zeroing each fresh buffer and ~25–45 ms of kernel copy per segment, against
/// ~40 ms of checksumming). A mapping shares the page cache's pages: no zeroing, no copy.
#[derive(Debug, Default)]
pub(crate) struct SegmentBytes {
    /// The bytes of the last segment loaded by reading; its capacity is reused.
    buf: Vec<u8>,
    /// The last segment loaded, when it was mapped.
    map: Option<memmap2::Mmap>,
}

impl SegmentBytes {
    /// The loaded segment's bytes (empty before the first load).
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(map) => map,
            None => &self.buf,
        }
    }

    /// Drops the mapping, if any: done before the file is written (a torn tail repaired),
    /// so that no borrowed byte can change underneath.
    pub fn unmap(&mut self) {
        self.map = None;
    }
}

/// Opens `name` and loads the whole file into `out` (see [`SegmentBytes`]); with `map`,
/// mapped where the storage can.
///
/// Mapping is only for a caller that holds the directory's exclusive lock (the writer's
/// recovery) and writes nothing to the file while the mapping lives: what a read-only
/// mapping's soundness rests on. The reader, which may run beside a live writer, reads.
pub(crate) fn load<S: Storage + ?Sized>(
    storage: &mut S,
    name: &str,
    out: &mut SegmentBytes,
    map: bool,
) -> Result<FileId, LogError> {
    let io = |op, storage: &S, source| LogError::Io {
        op,
        file: storage.path(name),
        source,
    };
    out.map = None;
    let file = storage.open(name).map_err(|e| io("open", storage, e))?;
    let result = (|| {
        let len = storage.len(file).map_err(|e| io("stat", storage, e))?;
        // An empty file is read: a mapping cannot be empty.
        if map && len > 0 {
            // A file the system cannot map (some filesystems) is read instead.
            if let Ok(Some(mapped)) = storage.map(file) {
                out.map = Some(mapped);
                return Ok(());
            }
        }
        let len = usize::try_from(len).map_err(|_| LogError::Corrupt {
            file: storage.path(name),
            offset: 0,
            reason: format!("segment of {len} bytes does not fit in memory"),
        })?;
        // No clear: the read overwrites every byte, so only growth is zeroed (a memset of the
        // whole segment per load was 4% of a replay's profile).
        out.buf.resize(len, 0);
        storage
            .read_at(file, 0, &mut out.buf)
            .map_err(|e| io("read", storage, e))
    })();
    match result {
        Ok(()) => Ok(file),
        Err(e) => {
            storage.close(file);
            Err(e)
        }
    }
}

/// Loads the segment in file `name` of `form` into `out`, read only (the reader's load):
/// a plain segment is read as [`load`] does; a compressed one is decompressed in memory
/// (its data, without the zeros after the last record, which a scan does not need).
pub(crate) fn load_form<S: Storage>(
    storage: &mut S,
    name: &str,
    form: SegmentForm,
    out: &mut SegmentBytes,
) -> Result<(), LogError> {
    if form == SegmentForm::Compressed {
        out.map = None;
        super::compress::read_compressed(storage, name, &mut out.buf)?;
        return Ok(());
    }
    let id = load(storage, name, out, false)?;
    storage.close(id);
    Ok(())
}

/// Turns a scan verdict on `name` into a [`LogError`] (never called for `InterruptedCreation`
/// by the writer, which removes such a segment).
pub(crate) fn scan_error<S: Storage + ?Sized>(storage: &S, name: &str, e: ScanError) -> LogError {
    match e {
        ScanError::Corrupt { offset, reason } => LogError::Corrupt {
            file: storage.path(name),
            offset: offset as u64,
            reason,
        },
        ScanError::Version(version) => LogError::UnsupportedVersion {
            file: storage.path(name),
            version,
            supported: FORMAT_VERSION,
        },
        ScanError::InterruptedCreation => LogError::Corrupt {
            file: storage.path(name),
            offset: 0,
            reason: "segment header missing (interrupted creation) before the newest segment"
                .into(),
        },
    }
}

/// A verified segment, as the next one is linked against it.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub name: String,
    pub header: SegmentHeader,
    pub last_zxid: Option<i64>,
}

/// Checks that the header agrees with the file name.
pub(crate) fn check_name<S: Storage>(
    storage: &S,
    file: &SegmentFile,
    header: &SegmentHeader,
) -> Result<(), LogError> {
    if header.first_zxid != file.first_zxid {
        return Err(LogError::Corrupt {
            file: storage.path(&file.name),
            offset: HEADER_FIRST_ZXID_OFFSET as u64,
            reason: format!(
                "header first zxid {:#x} does not match the file name",
                header.first_zxid
            ),
        });
    }
    Ok(())
}

/// Checks that `next` directly follows `prev`: consecutive indexes, and `next` was created
/// right after `prev`'s last record.
pub(crate) fn check_link<S: Storage>(
    storage: &S,
    prev: &Loaded,
    next: &Loaded,
) -> Result<(), LogError> {
    let expected = prev.header.segment_index + 1;
    if next.header.segment_index > expected {
        return Err(LogError::MissingSegment {
            before: storage.path(&prev.name),
            before_index: prev.header.segment_index,
            after: storage.path(&next.name),
            after_index: next.header.segment_index,
        });
    }
    if next.header.segment_index < expected {
        return Err(LogError::Corrupt {
            file: storage.path(&next.name),
            offset: super::format::HEADER_SEGMENT_INDEX_OFFSET as u64,
            reason: format!(
                "segment index {} does not follow {} of {}",
                next.header.segment_index, prev.header.segment_index, prev.name
            ),
        });
    }
    if Some(next.header.prev_last_zxid) != prev.last_zxid {
        return Err(LogError::Corrupt {
            file: storage.path(&next.name),
            offset: HEADER_PREV_LAST_ZXID_OFFSET as u64,
            reason: format!(
                "header says the previous segment ended at zxid {:#x}, but {} ends at {:?}",
                next.header.prev_last_zxid, prev.name, prev.last_zxid
            ),
        });
    }
    Ok(())
}
