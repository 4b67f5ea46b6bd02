//! Suffix truncation: removing every record from one frame on (the Raft log's conflict
//! truncation). `storage/FORMAT.md`, "Raft log", "Truncation", is the specification.
//!
//! A truncated segment keeps its preallocated length: the cut bytes are overwritten with
//! zeros rather than the file shortened, so the format's rule "valid data ends where zeros
//! begin" holds, appends never have to commit a size change, and the storage seam needs no
//! new operation.
//!
//! The order of the steps is what makes a crash at any point leave a valid log that holds
//! a prefix of the old one:
//! 1. Segments after the cut go, newest first, the directory fsynced after each: a crash
//!    leaves an oldest-first run of segments, never a gap.
//! 2. Only then (the cut segment is now the newest, the only one allowed a torn tail) are
//!    its frames zeroed, newest first, in *groups* each followed by an fdatasync. A group
//!    is a run of frames whose `synced_through` values all lie at or before the group's
//!    start, so however a crash tears the zeroing of one group, no frame left in it can
//!    witness that an earlier bad frame was once durable: recovery sees an ordinary torn
//!    tail and cuts it, never "corruption". (With `force_sync` on, a group is one batch.)
//!
//! A truncation and a later append are never merged into one write: if they were, a torn
//! write could leave an old frame standing right after new ones, and recovery would
//! surface an entry that the truncation had removed after ones that replaced it.

use super::{write_zeros, Current, LogWriter};
use crate::backend::Storage;
use crate::log::error::LogError;
use crate::log::format::{peek_frame_header, FRAME_HEADER_BYTES, HEADER_BYTES};

impl<S: Storage> LogWriter<S> {
    /// Removes the record whose frame starts at `offset` in segment number `segment`
    /// (0 = oldest) and every record after it, durably. `last_zxid` is the key of the record
    /// before the cut, which becomes the last one (`None` if none is left).
    ///
    /// The caller (the Raft log) knows where its records are; a cut at a segment's first
    /// frame removes the whole segment. Any failure stops the writer (fail-stop).
    pub(crate) fn truncate_at(
        &mut self,
        segment: usize,
        offset: u64,
        last_zxid: Option<i64>,
    ) -> Result<(), LogError> {
        self.check_running()?;
        let target = self
            .segments
            .get(segment)
            .expect("truncation inside a listed segment");
        assert!(
            HEADER_BYTES as u64 <= offset && offset < target.end,
            "truncation offset {offset} outside the records of {} (end {})",
            target.name,
            target.end
        );
        // With force_sync off the segment before the current one may still be unsealed
        // (its seal runs on the helper thread): every segment but the newest must be whole
        // and durable before segments are removed or zeroed below. And the current segment
        // may not have its name yet (its rename is the helper's): wait for all of it.
        self.finish_sealing()?;
        self.wait_background()?;
        // With force_sync off the current segment may hold unsynced frames. Make them
        // durable first, so that the zeroing below is the only unsynced write in the file.
        if let Some(cur) = self.current {
            if cur.synced_through < cur.end {
                if let Err(e) = self.storage.sync_data(cur.file) {
                    return Err(self.stop("fdatasync", e));
                }
                self.stats.fdatasyncs += 1;
                self.current = Some(Current {
                    synced_through: cur.end,
                    ..cur
                });
            }
        }
        let whole = offset == HEADER_BYTES as u64;
        let keep = if whole { segment } else { segment + 1 };
        self.remove_newest(keep)?;
        if whole {
            // The segment before the cut (if any) is whole, durable, and now the newest.
            assert_eq!(
                self.segments.last().and_then(|s| s.last_zxid),
                last_zxid,
                "the record before a cut at a segment's start ends the previous segment"
            );
            self.reopen_newest()?;
            self.last_zxid = last_zxid;
            return Ok(());
        }
        self.reopen_newest()?;
        self.zero_suffix(offset)?;
        let cur = self.current.as_mut().expect("the cut segment is current");
        cur.end = offset;
        cur.synced_through = offset;
        let seg = self.segments.last_mut().expect("the cut segment is listed");
        seg.end = offset;
        seg.last_zxid = last_zxid;
        self.last_zxid = last_zxid;
        Ok(())
    }

    /// Removes segments, newest first, until `keep` are left, fsyncing the directory after
    /// each removal.
    fn remove_newest(&mut self, keep: usize) -> Result<(), LogError> {
        while self.segments.len() > keep {
            let name = self
                .segments
                .last()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            // The current segment is always the newest one.
            if let Some(cur) = self.current.take() {
                self.storage.close(cur.file);
            }
            if let Err(e) = self.storage.remove(&name) {
                return Err(self.stop_on(&name, "remove", e));
            }
            if let Err(e) = self.storage.sync_dir() {
                return Err(self.stop_on("", "fsync directory", e));
            }
            self.stats.fsyncs += 1;
            self.stats.segments_removed += 1;
            self.segments.pop();
        }
        Ok(())
    }

    /// Makes the newest segment the current one again if removals closed it (its end is
    /// known and everything in it is durable: sealed segments are synced before a roll).
    fn reopen_newest(&mut self) -> Result<(), LogError> {
        if self.current.is_some() {
            return Ok(());
        }
        let Some(seg) = self.segments.last() else {
            return Ok(());
        };
        let (name, end) = (seg.name.clone(), seg.end);
        let file = match self.storage.open(&name) {
            Ok(f) => f,
            Err(e) => return Err(self.stop_on(&name, "open", e)),
        };
        let file_bytes = match self.storage.len(file) {
            Ok(n) => n,
            Err(e) => {
                self.storage.close(file);
                return Err(self.stop_on(&name, "stat", e));
            }
        };
        self.current = Some(Current {
            file,
            file_bytes,
            end,
            synced_through: end,
        });
        Ok(())
    }

    /// Zeroes the current segment from `offset` to its end, newest group first, one
    /// fdatasync per group (see the module documentation).
    fn zero_suffix(&mut self, offset: u64) -> Result<(), LogError> {
        let cur = self.current.expect("a current segment to cut");
        // (offset, synced_through) of every frame in [offset, end), read header by header.
        let mut frames: Vec<(u64, u64)> = Vec::new();
        let mut at = offset;
        while at < cur.end {
            let mut header = [0u8; FRAME_HEADER_BYTES];
            if let Err(e) = self.storage.read_at(cur.file, at, &mut header) {
                return Err(self.stop("read", e));
            }
            let (payload_bytes, synced_through) = peek_frame_header(&header);
            assert!(
                u64::from(synced_through) <= at,
                "frame at {at} claims synced_through {synced_through}: truncation offset {offset} \
                 is not a frame boundary"
            );
            frames.push((at, u64::from(synced_through)));
            at += (FRAME_HEADER_BYTES + payload_bytes) as u64;
        }
        assert_eq!(
            at, cur.end,
            "frames from the cut end exactly at the segment's end"
        );
        let mut end = cur.end;
        let mut i = frames.len();
        while i > 0 {
            // Grow the group backwards while every synced_through in it stays at or before
            // its start. A single frame always qualifies (synced_through <= own offset).
            let mut j = i - 1;
            let mut synced_max = frames[j].1;
            while j > 0 && synced_max.max(frames[j - 1].1) <= frames[j - 1].0 {
                j -= 1;
                synced_max = synced_max.max(frames[j].1);
            }
            let start = frames[j].0;
            if let Err(e) = write_zeros(&mut self.storage, cur.file, start, end, &mut self.buffer) {
                return Err(self.stop("write", e));
            }
            if let Err(e) = self.storage.sync_data(cur.file) {
                return Err(self.stop("fdatasync", e));
            }
            self.stats.fdatasyncs += 1;
            end = start;
            i = j;
        }
        Ok(())
    }
}
