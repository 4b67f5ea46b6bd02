//! The append in halves (`LogWriter::stage`, the caller's own write and sync,
//! `LogWriter::finish_staged`), as the server's commit executor uses it: the log it leaves
//! is the one `append` leaves, and a failed write passed back stops the writer.

use std::os::unix::fs::FileExt;

use ferrokeeper_storage::log::format::{HEADER_BYTES, TXN_SEGMENTS};
use ferrokeeper_storage::log::{read, IoMode, LogError, LogOptions, LogStats, LogWriter, Record};

fn small() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        record_bytes_max: 512,
        batch_bytes_max: 2048,
        io: IoMode::IoUring,
        ..LogOptions::default()
    }
}

fn payload(zxid: i64) -> Vec<u8> {
    format!("txn-{zxid:#x}-")
        .repeat((zxid % 5) as usize + 1)
        .into_bytes()
}

/// Appends through the halves, writing with a file handle of the caller's own.
fn staged_append(w: &mut LogWriter, batch: &[Record<'_>]) -> Result<u64, LogError> {
    let staged = w.stage(batch)?.expect("a non-empty batch");
    let file = w.staged_file(&staged).expect("clone").expect("a real file");
    let written = file
        .write_all_at(w.staged_bytes(), staged.offset())
        .and_then(|()| file.sync_data());
    w.finish_staged(staged, written)
}

#[test]
fn staged_appends_leave_the_log_that_append_leaves() {
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let (mut wa, _) = LogWriter::open(a.path(), small()).expect("open a");
    let (mut wb, _) = LogWriter::open(b.path(), small()).expect("open b");
    let payloads: Vec<(i64, Vec<u8>)> = (1..=200).map(|z| (z, payload(z))).collect();
    // Batches of 1 to 7 records: enough bytes to roll the 4 KiB segments many times.
    let mut at = 0;
    let mut size = 1;
    while at < payloads.len() {
        let end = (at + size).min(payloads.len());
        let batch: Vec<Record<'_>> = payloads[at..end]
            .iter()
            .map(|(z, p)| Record { zxid: *z, bytes: p })
            .collect();
        let before = wb.tail().map(|(_, end)| end);
        wa.append(&batch).expect("append");
        let offset = staged_append(&mut wb, &batch).expect("staged append");
        assert!(
            before.is_none_or(|b| offset == b) || offset == HEADER_BYTES as u64,
            "a batch goes at the tail, or at the start of a new segment"
        );
        at = end;
        size = size % 7 + 1;
    }
    // Whether a roll found the spare ready (and so the syncs counted) is timing.
    let work = |s: LogStats| (s.appends, s.records, s.bytes, s.segments_created);
    assert_eq!(work(wa.stats()), work(wb.stats()));
    assert_eq!(
        wa.segment_names().collect::<Vec<_>>(),
        wb.segment_names().collect::<Vec<_>>()
    );
    drop((wa, wb));
    for name in std::fs::read_dir(a.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|name| *name != TXN_SEGMENTS.spare_name().as_str())
    {
        let bytes_a = std::fs::read(a.path().join(&name)).expect("read a");
        let bytes_b = std::fs::read(b.path().join(&name)).expect("read b");
        assert!(bytes_a == bytes_b, "{name:?} differs");
    }
    // Reopened (recovery scans and verifies every frame), the records are all there.
    let (_w, recovered) = LogWriter::open(b.path(), small()).expect("reopen");
    assert_eq!(recovered.last_zxid, Some(200));
    let back: Vec<i64> = read(b.path(), 0)
        .expect("read")
        .map(|r| r.expect("record").zxid)
        .collect();
    assert_eq!(back, (1..=200).collect::<Vec<_>>());
}

#[test]
fn a_failed_staged_write_stops_the_writer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut w, _) = LogWriter::open(tmp.path(), small()).expect("open");
    let one = payload(1);
    w.append(&[Record {
        zxid: 1,
        bytes: &one,
    }])
    .expect("append");
    let two = payload(2);
    let staged = w
        .stage(&[Record {
            zxid: 2,
            bytes: &two,
        }])
        .expect("stage")
        .expect("staged");
    let err = w
        .finish_staged(staged, Err(std::io::Error::from_raw_os_error(libc::EIO)))
        .expect_err("the failure is reported");
    assert!(matches!(err, LogError::Io { .. }), "{err:?}");
    assert!(w.stopped().is_some());
    let three = payload(3);
    assert!(matches!(
        w.stage(&[Record {
            zxid: 3,
            bytes: &three
        }]),
        Err(LogError::Stopped { .. })
    ));
    assert_eq!(
        w.last_zxid(),
        Some(1),
        "the failed batch is not part of the log"
    );
}

#[test]
fn a_batch_that_fails_validation_stages_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut w, _) = LogWriter::open(tmp.path(), small()).expect("open");
    let p = payload(5);
    w.append(&[Record { zxid: 5, bytes: &p }]).expect("append");
    assert!(matches!(
        w.stage(&[Record { zxid: 5, bytes: &p }]),
        Err(LogError::ZxidOrder { .. })
    ));
    // Still usable: the next valid batch stages and finishes.
    let q = payload(6);
    staged_append(&mut w, &[Record { zxid: 6, bytes: &q }]).expect("staged append");
    assert_eq!(w.last_zxid(), Some(6));
}
