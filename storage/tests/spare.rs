//! The spare segment (`storage/FORMAT.md`, "Roll"): prepared in the background, renamed
//! into place by a roll, and recovered after a crash on a real filesystem, on both write
//! paths. The simulator's crash tests (`tests/sim.rs`) crash at random points around it.

use std::fs;
use std::path::Path;

use ferrokeeper_storage::log::format::TXN_SEGMENTS;
use ferrokeeper_storage::log::{read, IoMode, LogOptions, LogWriter, Record};

const MODES: [IoMode; 2] = [IoMode::IoUring, IoMode::Pwrite];

fn small(io: IoMode) -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        io,
        ..LogOptions::default()
    }
}

/// Appends zxids `from..from+n`, one per batch, letting the background finish after each
/// (so that every roll after the first finds the spare ready).
fn append_settled(w: &mut LogWriter, from: i64, n: i64) {
    for z in from..from + n {
        let bytes = vec![z as u8; 200];
        w.append(&[Record {
            zxid: z,
            bytes: &bytes,
        }])
        .expect("append");
        w.wait_background().expect("background");
    }
}

fn zxids(dir: &Path) -> Vec<i64> {
    read(dir, -1)
        .expect("read")
        .map(|r| r.expect("record").zxid)
        .collect()
}

#[test]
fn rolls_take_the_spare_prepared_in_the_background() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_settled(&mut w, 1, 100);
        let s = w.stats();
        assert!(s.segments_created > 3, "rolls happened: {s:?}");
        // The first roll of a fresh log comes before any spare is ready; every later one
        // found it.
        assert_eq!(s.rolls_inline, 1, "{s:?}");
        assert_eq!(s.spares_prepared, s.segments_created, "{s:?}");
        let spare = tmp.path().join(TXN_SEGMENTS.spare_name());
        let bytes = fs::read(&spare).expect("a spare is ready");
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|&b| b == 0), "the spare holds only zeros");
        drop(w);
        assert_eq!(zxids(tmp.path()), (1..=100).collect::<Vec<_>>());
    }
}

#[test]
fn a_spare_holding_a_header_is_renamed_back_at_recovery() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_settled(&mut w, 1, 60);
        let (newest, _) = w.tail().expect("tail");
        let newest = newest.to_string();
        drop(w);
        // What a crash leaves when it kept a roll's records but not its rename: the newest
        // segment under the spare's name (and no other spare).
        let spare = tmp.path().join(TXN_SEGMENTS.spare_name());
        fs::remove_file(&spare).expect("remove the unused spare");
        fs::rename(tmp.path().join(&newest), &spare).expect("rename");
        let (mut w, rec) = LogWriter::open(tmp.path(), small(io)).expect("reopen");
        assert_eq!(rec.renamed_spare.as_deref(), Some(newest.as_str()));
        assert_eq!(rec.last_zxid, Some(60));
        assert!(tmp.path().join(&newest).exists());
        append_settled(&mut w, 61, 20);
        drop(w);
        assert_eq!(zxids(tmp.path()), (1..=80).collect::<Vec<_>>());
    }
}

#[test]
fn an_unused_or_half_made_spare_is_replaced_after_recovery() {
    for io in MODES {
        for spare_bytes in [0usize, 100, 4096] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
            append_settled(&mut w, 1, 30);
            drop(w);
            // A preparation cut short (empty, short) or finished: zeros, no header. A byte
            // that is not zero past the header marks this file apart from a new spare.
            let spare = tmp.path().join(TXN_SEGMENTS.spare_name());
            let mut stale = vec![0u8; spare_bytes];
            if let Some(b) = stale.get_mut(100) {
                *b = 1;
            }
            fs::write(&spare, &stale).expect("write spare");
            let (mut w, rec) = LogWriter::open(tmp.path(), small(io)).expect("reopen");
            assert_eq!(rec.renamed_spare, None);
            assert_eq!(rec.last_zxid, Some(30));
            let removed = w.stats().segments_removed;
            // The helper removes it (no segment: not counted) and prepares a new one.
            w.wait_background().expect("background");
            assert_eq!(w.stats().segments_removed, removed);
            let fresh = fs::read(&spare).expect("a new spare");
            assert_eq!(fresh.len(), 4096);
            assert!(
                fresh.iter().all(|&b| b == 0),
                "the new spare holds only zeros"
            );
            // Appends and rolls go on, the new spare taken by the next roll.
            append_settled(&mut w, 31, 30);
            drop(w);
            assert_eq!(zxids(tmp.path()), (1..=60).collect::<Vec<_>>());
            // Dropped before the helper's turn, the stale spare waits for the next open.
            fs::write(&spare, &stale).expect("write spare");
            let (w, _) = LogWriter::open(tmp.path(), small(io)).expect("reopen");
            drop(w);
            let (w, rec) = LogWriter::open(tmp.path(), small(io)).expect("reopen again");
            assert_eq!(rec.last_zxid, Some(60));
            drop(w);
        }
    }
}

#[test]
fn purged_segments_go_in_the_background() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_settled(&mut w, 1, 100);
        let before = w.stats().segments_removed;
        w.purge_through(50).expect("purge");
        let listed = w.segment_names().count();
        w.wait_background().expect("removals done");
        assert!(w.stats().segments_removed > before);
        let on_disk = fs::read_dir(tmp.path())
            .expect("dir")
            .filter(|e| {
                let name = e.as_ref().expect("entry").file_name();
                TXN_SEGMENTS
                    .parse_segment_name(&name.to_string_lossy())
                    .is_some()
            })
            .count();
        assert_eq!(on_disk, listed);
        let first = zxids(tmp.path())[0];
        assert!(first <= 51, "records above the purge point stay: {first}");
    }
}
