//! The Raft log: the transaction log's segments and frames, keyed by Raft index, plus a
//! hard-state file. Raft-agnostic: plain types in, plain types out; the server wraps it in
//! raft-rs's `Storage` trait.
//!
//! - Entries are frames of the segment format (`storage/FORMAT.md`, "Raft log"): the
//!   frame's i64 key is the Raft index, the payload starts with the term (u64 LE) and the
//!   kind (u8), then the entry's data. Segments are `fk-raft.<16 hex digits of the first
//!   index>` with magic `FKRAFTLG`, so they are never mistaken for the transaction log's.
//! - [`RaftLog::append`] is [`crate::log::LogWriter`]'s group commit (one write, one
//!   fdatasync); an append that overlaps the stored tail first cuts the stored suffix
//!   ([`RaftLog::truncate_from`], durable on its own), then appends.
//! - [`RaftLog::save_hard_state`] writes term, vote and commit into one of two
//!   checksummed slots and fdatasyncs before returning, so a vote never leaves before it is
//!   durable, and a crash leaves the old value or the new one.
//! - [`RaftLog::open`] recovers both and returns every entry, verified.
//!
//! Every failed write, sync or directory operation stops the log for good (fail-stop), as
//! the transaction log does; the process must restart and recover.

mod hardstate;

use std::path::Path;

pub use hardstate::{
    HARD_STATE_FILE_BYTES, HARD_STATE_FILE_NAME, HARD_STATE_MAGIC, HARD_STATE_SLOT_OFFSETS,
    HARD_STATE_VERSION, SLOT_BYTES, SLOT_CHECKSUM_OFFSET, SLOT_COMMIT_OFFSET, SLOT_FLAGS_OFFSET,
    SLOT_MAGIC_OFFSET, SLOT_SEQUENCE_OFFSET, SLOT_TERM_OFFSET, SLOT_VERSION_OFFSET,
    SLOT_VOTE_OFFSET,
};

use crate::backend::disk::DiskStorage;
use crate::backend::{FileId, Storage};
use crate::log::format::{frame_bytes, FRAME_HEADER_BYTES, HEADER_BYTES, RAFT_SEGMENTS};
use crate::log::{LogError, LogOptions, LogStats, LogWriter, Payload, TornTail};

/// Bytes of an entry's frame payload before its data: the term (u64 LE), then the kind (u8).
pub const ENTRY_HEAD_BYTES: usize = 9;

/// One Raft entry as stored. `kind` and `data` are opaque to storage (the caller maps
/// raft's `EntryType` to `kind`: 0 normal, 1 conf change, 2 conf change v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The Raft index.
    pub index: u64,
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's type, as the caller numbers it.
    pub kind: u8,
    /// The entry's data.
    pub data: Vec<u8>,
}

/// An entry to append, borrowing its data so that a batch is framed without copying it
/// first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The Raft index; a batch's indexes are consecutive.
    pub index: u64,
    /// The term.
    pub term: u64,
    /// The entry's type, as the caller numbers it.
    pub kind: u8,
    /// The entry's data: at most `record_bytes_max - ENTRY_HEAD_BYTES` bytes.
    pub data: &'a [u8],
}

impl Entry {
    /// This entry as an [`EntryRef`].
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            index: self.index,
            term: self.term,
            kind: self.kind,
            data: &self.data,
        }
    }
}

/// Raft's hard state: what a node must not forget across a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The current term.
    pub term: u64,
    /// The node voted for in `term`, 0 for none.
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
}

/// What [`RaftLog::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Every entry in the log, in index order (indexes consecutive).
    pub entries: Vec<Entry>,
    /// The last hard state saved, `None` if none ever was.
    pub hard_state: Option<HardState>,
    /// Where recovery cut a torn tail of the log (the end of the last whole entry), if it did.
    pub torn_tail: Option<TornTail>,
}

impl Payload for EntryRef<'_> {
    fn key(&self) -> i64 {
        // RaftLog::append checks every index against i64::MAX before framing.
        i64::try_from(self.index).expect("raft index checked to fit the log's i64 key")
    }
    fn payload_bytes(&self) -> usize {
        ENTRY_HEAD_BYTES + self.data.len()
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.term.to_le_bytes());
        out.push(self.kind);
        out.extend_from_slice(self.data);
    }
}

/// Where one segment's entries are.
#[derive(Clone, Debug)]
struct SegmentIndex {
    /// Index of its first entry (also in its name).
    first: u64,
    /// Offset of each entry's frame, in index order.
    // Invariant: non-empty, and offsets[0] == HEADER_BYTES.
    offsets: Vec<u32>,
}

/// The Raft log of one node. Single-threaded and blocking, like [`LogWriter`].
pub struct RaftLog<S: Storage = DiskStorage> {
    writer: LogWriter<S>,
    /// One per writer segment, oldest first.
    // Invariant: segment i + 1 starts right after segment i ends (indexes consecutive), and
    // the list mirrors the writer's segments except after a failure (then only errors).
    segments: Vec<SegmentIndex>,
    hard_state_file: FileId,
    /// Sequence of the newest hard-state save (0 = none).
    hard_state_sequence: u64,
}

impl RaftLog<DiskStorage> {
    /// Opens (creating) the Raft log in `dir`: recovers the segments as the transaction
    /// log does (a torn tail cut, corruption refused naming file and offset), checks that
    /// the entries' indexes are consecutive, and reads the hard state. Takes an exclusive
    /// lock on `dir`.
    pub fn open(dir: &Path, opts: LogOptions) -> Result<(Self, Recovered), LogError> {
        RaftLog::open_with(crate::log::open_locked(dir, &opts)?, opts)
    }
}

/// Entries of one segment as recovery visits them: (frame offset, index, payload head
/// if the payload is long enough for one, data).
type Visited = (String, Vec<(usize, i64, Option<(u64, u8)>, Vec<u8>)>);

impl<S: Storage> RaftLog<S> {
    /// [`RaftLog::open`] over any [`Storage`] (the simulator in tests).
    pub fn open_with(storage: S, opts: LogOptions) -> Result<(Self, Recovered), LogError> {
        let mut visited: Vec<Visited> = Vec::new();
        let (mut writer, rec) = LogWriter::open_kind(
            storage,
            opts,
            RAFT_SEGMENTS,
            // The Raft log has no compressed segments (`storage/FORMAT.md`).
            i64::MAX,
            &mut |name, bytes, offset, frame| {
                if visited.last().is_none_or(|(n, _)| n != name) {
                    visited.push((name.to_string(), Vec::new()));
                }
                let start = offset + FRAME_HEADER_BYTES;
                let payload = &bytes[start..start + frame.payload_bytes];
                let (head, data) = match payload.split_at_checked(ENTRY_HEAD_BYTES) {
                    Some((head, data)) => {
                        let mut term = [0u8; 8];
                        term.copy_from_slice(&head[..8]);
                        (Some((u64::from_le_bytes(term), head[8])), data.to_vec())
                    }
                    None => (None, Vec::new()),
                };
                if let Some((_, entries)) = visited.last_mut() {
                    entries.push((offset, frame.zxid, head, data));
                }
            },
        )?;
        let (segments, entries) = index_entries(&mut writer, visited)?;
        let (hard_state_file, hard_state_sequence, hard_state) =
            hardstate::open(writer.storage_mut())?;
        let log = RaftLog {
            writer,
            segments,
            hard_state_file,
            hard_state_sequence,
        };
        Ok((
            log,
            Recovered {
                entries,
                hard_state,
                torn_tail: rec.torn_tail,
            },
        ))
    }

    /// Appends `entries` (consecutive indexes) durably: one write and one fdatasync (per
    /// `opts.force_sync`) when it returns `Ok`. If the first index is `<= last_index()`,
    /// the stored suffix from that index on is removed first (Raft's conflict
    /// truncation), durably and on its own, which costs its own syncs.
    ///
    /// On a non-empty log the first index must be in `first_index()..=last_index() + 1`;
    /// an empty log (new, or emptied by [`RaftLog::truncate_from`]) takes any start. A
    /// batch that breaks a rule or a limit writes nothing (not even the truncation).
    pub fn append(&mut self, entries: &[EntryRef<'_>]) -> Result<(), LogError> {
        self.writer.check_running()?;
        let Some(head) = entries.first() else {
            return Ok(());
        };
        self.check_batch(entries)?;
        if let (Some(first), Some(last)) = (self.first_index(), self.last_index()) {
            if head.index > last + 1 {
                return Err(LogError::RaftIndex {
                    index: head.index,
                    reason: format!(
                        "the log ends at {last}: an append must start by {}",
                        last + 1
                    ),
                });
            }
            if head.index < first {
                return Err(LogError::RaftIndex {
                    index: head.index,
                    reason: format!("the log starts at {first}: earlier entries were purged"),
                });
            }
            if head.index <= last {
                self.truncate_from(head.index)?;
            }
        }
        let before = self.writer.segment_names().count();
        let start = self
            .writer
            .append_payloads(entries)?
            .expect("a non-empty batch has a first frame");
        if self.writer.segment_names().count() > before {
            self.segments.push(SegmentIndex {
                first: head.index,
                offsets: Vec::new(),
            });
        }
        let seg = self
            .segments
            .last_mut()
            .expect("an append leaves a current segment");
        let mut at = start;
        for e in entries {
            seg.offsets
                .push(u32::try_from(at).expect("segment offsets fit in u32"));
            at += frame_bytes(ENTRY_HEAD_BYTES + e.data.len()) as u64;
        }
        debug_assert_eq!(self.writer.tail().map(|t| t.1), Some(at));
        Ok(())
    }

    /// Removes every entry with index `>= index`, durably (a no-op past the last entry;
    /// everything at or before the first entry empties the log).
    pub fn truncate_from(&mut self, index: u64) -> Result<(), LogError> {
        self.writer.check_running()?;
        let (Some(first), Some(last)) = (self.first_index(), self.last_index()) else {
            return Ok(());
        };
        if index > last {
            return Ok(());
        }
        let index = index.max(first);
        let k = self.segments.partition_point(|s| s.first <= index) - 1;
        let pos = usize::try_from(index - self.segments[k].first)
            .expect("a segment's entries fit in memory");
        let offset = self.segments[k].offsets[pos];
        let before = (index > first).then_some((index - 1) as i64);
        self.writer.truncate_at(k, u64::from(offset), before)?;
        self.segments.truncate(k + 1);
        if pos == 0 {
            self.segments.pop();
        } else {
            self.segments[k].offsets.truncate(pos);
        }
        Ok(())
    }

    /// Drops whole segments whose entries are all `<= index` (after a snapshot), oldest
    /// first. The segment being appended to is never dropped, so entries `<= index` may
    /// remain: [`RaftLog::first_index`] says where the log now starts.
    pub fn purge_through(&mut self, index: u64) -> Result<(), LogError> {
        let key = i64::try_from(index).unwrap_or(i64::MAX);
        let result = self.writer.purge_through_now(key);
        // Whatever the writer removed before a failure is gone: mirror it either way.
        let left = self.writer.segment_names().count();
        let drop = self.segments.len().saturating_sub(left);
        self.segments.drain(..drop);
        result
    }

    /// Writes the hard state durably (fdatasync before return), so a vote never leaves
    /// before it is on disk. It goes into the slot that does not hold the newest value: a
    /// crash mid-write leaves the old value or the new one, never garbage.
    pub fn save_hard_state(&mut self, hs: &HardState) -> Result<(), LogError> {
        self.writer.check_running()?;
        let sequence = self.hard_state_sequence + 1;
        let slot = hardstate::encode_slot(sequence, hs);
        let at = HARD_STATE_SLOT_OFFSETS[(sequence % 2) as usize];
        let file = self.hard_state_file;
        if let Err(e) = self.writer.storage_mut().write_at(file, at, &slot, true) {
            return Err(self
                .writer
                .stop_on(HARD_STATE_FILE_NAME, "write + fdatasync", e));
        }
        self.hard_state_sequence = sequence;
        Ok(())
    }

    /// Index of the first entry, `None` if the log is empty.
    pub fn first_index(&self) -> Option<u64> {
        self.segments.first().map(|s| s.first)
    }

    /// Index of the last entry, `None` if the log is empty.
    pub fn last_index(&self) -> Option<u64> {
        self.segments
            .last()
            .map(|s| s.first + s.offsets.len() as u64 - 1)
    }

    /// The options the log was opened with (callers split appends by `batch_bytes_max`).
    pub fn options(&self) -> &LogOptions {
        self.writer.options()
    }

    /// Counters since open (the segment writer's).
    pub fn stats(&self) -> LogStats {
        self.writer.stats()
    }

    /// `Some(cause)` once a failure has stopped the log.
    pub fn stopped(&self) -> Option<&str> {
        self.writer.stopped()
    }

    /// Names of the segment files, oldest first.
    pub fn segment_names(&self) -> impl Iterator<Item = &str> {
        self.writer.segment_names()
    }

    /// Checks a batch before anything is written: consecutive indexes that fit the log's
    /// i64 keys, and the writer's size limits (checked here too, because a conflicting
    /// append truncates before the writer sees the batch).
    fn check_batch(&self, entries: &[EntryRef<'_>]) -> Result<(), LogError> {
        let opts = self.writer.options();
        let first = entries[0].index;
        let mut framed = 0usize;
        for (i, e) in entries.iter().enumerate() {
            if i64::try_from(e.index).is_err() {
                return Err(LogError::RaftIndex {
                    index: e.index,
                    reason: "above i64::MAX, the largest the log's frames carry".into(),
                });
            }
            if Some(e.index) != first.checked_add(i as u64) {
                return Err(LogError::RaftIndex {
                    index: e.index,
                    reason: format!(
                        "a batch's indexes are consecutive: expected {}",
                        first.saturating_add(i as u64)
                    ),
                });
            }
            let bytes = ENTRY_HEAD_BYTES + e.data.len();
            if bytes > opts.record_bytes_max {
                return Err(LogError::RecordTooLarge {
                    zxid: e.index as i64,
                    bytes,
                    record_bytes_max: opts.record_bytes_max,
                });
            }
            framed += frame_bytes(bytes);
        }
        if framed > opts.batch_bytes_max {
            return Err(LogError::BatchTooLarge {
                bytes: framed,
                batch_bytes_max: opts.batch_bytes_max,
            });
        }
        Ok(())
    }
}

/// Orders what recovery visited by segment, checks the Raft rules the segment format does
/// not know (a payload holds at least the term and kind; indexes are consecutive across
/// the whole log; no segment is empty), and builds the index and the entries.
fn index_entries<S: Storage>(
    writer: &mut LogWriter<S>,
    visited: Vec<Visited>,
) -> Result<(Vec<SegmentIndex>, Vec<Entry>), LogError> {
    // Recovery visits segments in log order, but the writer's list is what names them all.
    let names: Vec<String> = writer.segment_names().map(str::to_string).collect();
    let storage = writer.storage_mut();
    let corrupt = |name: &str, offset: usize, reason: String| LogError::Corrupt {
        file: storage.path(name),
        offset: offset as u64,
        reason,
    };
    let mut by_name: std::collections::HashMap<String, Vec<_>> = visited.into_iter().collect();
    let mut segments = Vec::with_capacity(names.len());
    let mut entries = Vec::new();
    let mut prev: Option<u64> = None;
    for name in &names {
        let records = by_name.remove(name).unwrap_or_default();
        let Some(&(_, first, _, _)) = records.first() else {
            return Err(corrupt(
                name,
                HEADER_BYTES,
                "raft log segment holds no entry before a newer segment".into(),
            ));
        };
        let mut offsets = Vec::with_capacity(records.len());
        for (offset, key, head, data) in records {
            // Keys are non-negative (the segment scan checks that they increase from the
            // header's first key, which names the file and is never negative).
            let index = key as u64;
            if prev.is_some_and(|p| p + 1 != index) {
                return Err(corrupt(
                    name,
                    offset,
                    format!("raft index {index} does not follow {prev:?}"),
                ));
            }
            let Some((term, kind)) = head else {
                return Err(corrupt(
                    name,
                    offset,
                    format!("raft entry {index} is shorter than its term and kind ({ENTRY_HEAD_BYTES} bytes)"),
                ));
            };
            offsets.push(u32::try_from(offset).expect("segment offsets fit in u32"));
            entries.push(Entry {
                index,
                term,
                kind,
                data,
            });
            prev = Some(index);
        }
        segments.push(SegmentIndex {
            first: first as u64,
            offsets,
        });
    }
    Ok((segments, entries))
}
