//! The transaction log on a real filesystem, through io_uring and through the pwrite
//! fallback: the same scenarios run on both write paths.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferrokeeper_storage::log::format::{
    decode_header, encode_header, SegmentHeader, FLAG_PREV_UNSEALED, FRAME_HEADER_BYTES,
    FRAME_ZXID_OFFSET, HEADER_BYTES, HEADER_VERSION_OFFSET,
};
use ferrokeeper_storage::log::scan::{scan_segment, Position};
use ferrokeeper_storage::log::{
    read, IoMode, LogError, LogOptions, LogWriter, OwnedRecord, Record,
};

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

fn payload(zxid: i64) -> Vec<u8> {
    format!("txn-{zxid:#x}-")
        .repeat((zxid % 7) as usize + 1)
        .into_bytes()
}

/// Appends zxids `from..from+n` in batches of `per_batch`.
fn append_range(w: &mut LogWriter, from: i64, n: i64, per_batch: usize) {
    let payloads: Vec<(i64, Vec<u8>)> = (from..from + n).map(|z| (z, payload(z))).collect();
    for chunk in payloads.chunks(per_batch) {
        let batch: Vec<Record<'_>> = chunk
            .iter()
            .map(|(z, b)| Record { zxid: *z, bytes: b })
            .collect();
        w.append(&batch).expect("append");
    }
}

fn read_all(dir: &Path, after: i64) -> Vec<OwnedRecord> {
    read(dir, after)
        .expect("read")
        .collect::<Result<Vec<_>, _>>()
        .expect("records")
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("fk-log."))
        })
        .collect();
    v.sort();
    v
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for patch");
    f.write_all_at(bytes, offset).expect("patch");
    f.sync_all().expect("sync");
}

#[test]
fn append_reopen_read_and_roll() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("log");
        let (mut w, rec) = LogWriter::open(&dir, small(io)).expect("open creates");
        assert_eq!(w.io_mode(), io);
        assert_eq!(rec, Default::default());
        append_range(&mut w, 1, 200, 7);
        let stats = w.stats();
        assert_eq!((stats.appends, stats.records), (29, 200));
        assert_eq!(
            stats.fdatasyncs, 29,
            "one fdatasync per append (no roll needed one)"
        );
        assert!(stats.segments_created > 3, "small segments roll");
        drop(w);

        let (mut w, rec) = LogWriter::open(&dir, small(io)).expect("reopen");
        assert_eq!(
            (
                rec.first_zxid,
                rec.last_zxid,
                rec.records,
                rec.truncated_bytes
            ),
            (Some(1), Some(200), 200, 0)
        );
        assert_eq!(rec.segments, segments(&dir).len());
        let all = read_all(&dir, -1);
        assert_eq!(all.len(), 200);
        for (i, r) in all.iter().enumerate() {
            assert_eq!((r.zxid, &r.bytes), (i as i64 + 1, &payload(i as i64 + 1)));
        }
        assert_eq!(read_all(&dir, 150).first().map(|r| r.zxid), Some(151));
        assert_eq!(read_all(&dir, 200).len(), 0);
        // Segment files are preallocated, named by their first zxid.
        for p in segments(&dir) {
            assert_eq!(fs::metadata(&p).expect("meta").len(), 4096);
        }
        assert!(segments(&dir)[0].ends_with("fk-log.0000000000000001"));

        // Appends continue after the recovered tail; an epoch change jumps the zxid.
        append_range(&mut w, 1 << 32, 3, 3);
        drop(w);
        assert_eq!(
            read_all(&dir, 200)
                .iter()
                .map(|r| r.zxid)
                .collect::<Vec<_>>(),
            vec![1 << 32, (1 << 32) + 1, (1 << 32) + 2]
        );
    }
}

#[test]
fn purge_removes_whole_old_segments_only() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_range(&mut w, 1, 300, 10);
        let before = segments(tmp.path()).len();
        w.purge_through(150).expect("purge");
        w.wait_background().expect("removals done");
        let after = segments(tmp.path()).len();
        assert!(after < before, "something purged");
        let first = read_all(tmp.path(), -1)[0].zxid;
        assert!(
            first <= 151,
            "records above the purge point stay: first is {first}"
        );
        w.purge_through(i64::MAX).expect("purge all");
        w.wait_background().expect("removals done");
        assert_eq!(
            segments(tmp.path()).len(),
            1,
            "the segment being appended to stays"
        );
        append_range(&mut w, 301, 5, 5);
        drop(w);
        let (_, rec) = LogWriter::open(tmp.path(), small(io)).expect("reopen");
        assert_eq!(rec.last_zxid, Some(305));
    }
}

#[test]
fn torn_tail_is_truncated_and_logged_position_reported() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_range(&mut w, 1, 5, 5);
        let (name, end) = w.tail().map(|(n, e)| (n.to_string(), e)).expect("tail");
        drop(w);
        // A torn batch: a frame header promising more bytes than landed.
        let path = tmp.path().join(&name);
        patch(&path, end, &[0xEE; 30]);
        let (mut w, rec) = LogWriter::open(tmp.path(), small(io)).expect("torn tail is not fatal");
        assert_eq!((rec.last_zxid, rec.truncated_bytes), (Some(5), 30));
        assert_eq!(rec.torn_tail.expect("torn").offset, end);
        let bytes = fs::read(&path).expect("read");
        assert!(
            bytes[end as usize..].iter().all(|&b| b == 0),
            "torn bytes zeroed"
        );
        append_range(&mut w, 6, 2, 2);
        drop(w);
        assert_eq!(read_all(tmp.path(), -1).len(), 7);
    }
}

#[test]
fn corruption_before_the_tail_names_file_and_offset() {
    for io in MODES {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), small(io)).expect("open");
        append_range(&mut w, 1, 40, 4);
        drop(w);
        let first = segments(tmp.path())[0].clone();
        // Damage the payload of the second record of the first segment.
        let second = HEADER_BYTES + FRAME_HEADER_BYTES + payload(1).len();
        patch(&first, (second + FRAME_HEADER_BYTES + 2) as u64, b"X");
        let err = LogWriter::open(tmp.path(), small(io))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(
            matches!(&err, LogError::Corrupt { file, offset, .. } if *file == first && *offset == second as u64),
            "{text}"
        );
        assert!(
            text.contains(&first.display().to_string())
                && text.contains(&format!("byte offset {second}")),
            "{text}"
        );
        // Replay refuses it too, at the same place.
        let replay_err = read(tmp.path(), -1)
            .expect("read")
            .find_map(Result::err)
            .expect("error");
        assert!(matches!(replay_err, LogError::Corrupt { offset, .. } if offset == second as u64));
    }
}

#[test]
fn missing_segment_newer_version_foreign_name_and_lock_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = small(IoMode::Auto);
    let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
    append_range(&mut w, 1, 300, 5);
    assert!(
        matches!(
            LogWriter::open(tmp.path(), opts),
            Err(LogError::Locked { .. })
        ),
        "second writer locked out"
    );
    drop(w);
    let segs = segments(tmp.path());
    assert!(segs.len() >= 3);

    // A newer format version (this code reads 1 and 2), with a valid header checksum.
    let newest = segs.last().expect("newest").clone();
    let original = fs::read(&newest).expect("read");
    let name = newest
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let zxid = i64::from_str_radix(name.trim_start_matches("fk-log."), 16).expect("hex");
    let mut h = encode_header(&SegmentHeader {
        version: 1,
        flags: 0,
        first_zxid: zxid,
        segment_index: 0,
        prev_last_zxid: -1,
    });
    h[HEADER_VERSION_OFFSET..HEADER_VERSION_OFFSET + 4].copy_from_slice(&3u32.to_le_bytes());
    let checksum = xxhash_rust::xxh3::xxh3_64(&h[..40]);
    h[40..48].copy_from_slice(&checksum.to_le_bytes());
    patch(&newest, 0, &h);
    let err = LogWriter::open(tmp.path(), opts).err().expect("refused");
    assert!(
        matches!(err, LogError::UnsupportedVersion { version: 3, .. }),
        "{err}"
    );
    patch(&newest, 0, &original[..HEADER_BYTES]);

    // A file that claims to be a segment but is misnamed.
    fs::write(tmp.path().join("fk-log.xyz"), b"").expect("write");
    assert!(matches!(
        LogWriter::open(tmp.path(), opts),
        Err(LogError::UnexpectedFile { .. })
    ));
    fs::remove_file(tmp.path().join("fk-log.xyz")).expect("rm");
    // Other files are not ours and are left alone.
    fs::write(tmp.path().join("snapshot.123"), b"not a log").expect("write");

    // A missing middle segment.
    fs::remove_file(&segs[1]).expect("rm");
    let err = LogWriter::open(tmp.path(), opts).err().expect("refused");
    assert!(matches!(err, LogError::MissingSegment { .. }), "{err}");
}

#[test]
fn invalid_batches_write_nothing_and_leave_the_writer_usable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = small(IoMode::Auto);
    let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
    w.append(&[Record {
        zxid: 10,
        bytes: b"a",
    }])
    .expect("append");
    let big = vec![0u8; 513];
    let cases: Vec<(Vec<Record<'_>>, &str)> = vec![
        (
            vec![Record {
                zxid: 10,
                bytes: b"b",
            }],
            "zxid not increasing",
        ),
        (
            vec![
                Record {
                    zxid: 12,
                    bytes: b"b",
                },
                Record {
                    zxid: 11,
                    bytes: b"c",
                },
            ],
            "zxid order inside the batch",
        ),
        (
            vec![Record {
                zxid: 11,
                bytes: &big,
            }],
            "record too large",
        ),
        (
            (11..=20)
                .map(|z| Record {
                    zxid: z,
                    bytes: &big[..500],
                })
                .collect(),
            "batch too large",
        ),
    ];
    for (batch, what) in cases {
        let err = w.append(&batch).expect_err(what);
        assert!(
            matches!(
                err,
                LogError::ZxidOrder { .. }
                    | LogError::RecordTooLarge { .. }
                    | LogError::BatchTooLarge { .. }
            ),
            "{what}: {err}"
        );
    }
    assert!(w.stopped().is_none());
    w.append(&[]).expect("an empty batch is a no-op");
    w.append(&[Record {
        zxid: 11,
        bytes: b"b",
    }])
    .expect("still usable");
    assert_eq!(w.stats().appends, 2);
    assert!(matches!(
        LogWriter::open(
            tmp.path().join("x").as_path(),
            LogOptions {
                batch_bytes_max: 10,
                ..opts
            }
        ),
        Err(LogError::InvalidOptions(_))
    ));
}

#[test]
fn force_sync_off_issues_no_fdatasync_per_append() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        force_sync: false,
        ..small(IoMode::IoUring)
    };
    let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
    append_range(&mut w, 1, 10, 1);
    assert_eq!(w.stats().fdatasyncs, 0);
    drop(w);
    assert_eq!(read_all(tmp.path(), -1).len(), 10);
}

/// Appends one batch at a time until a batch starts a new segment; returns the next zxid.
fn append_until_roll(w: &mut LogWriter, mut zxid: i64) -> i64 {
    let before = w.tail().map(|(name, _)| name.to_string());
    loop {
        append_range(w, zxid, 3, 3);
        zxid += 3;
        if w.tail().map(|(name, _)| name.to_string()) != before {
            return zxid;
        }
    }
}

/// The start offsets of the records in a segment file.
fn frame_starts(path: &Path) -> Vec<usize> {
    let bytes = fs::read(path).expect("read segment");
    let mut starts = Vec::new();
    scan_segment(&bytes, Position::Newest, |offset, _| starts.push(offset)).expect("scan");
    starts
}

/// With force_sync off a roll leaves the finished segment's fdatasync to the helper thread
/// (`storage/FORMAT.md`, "Roll"): the appending thread never syncs, the new segment's header
/// says its predecessor was unsealed, and recovery tells a tail the crash cut before the
/// seal finished (the segment after it goes) from one cut after (corruption, refused).
#[test]
fn force_sync_off_seals_off_the_append_path() {
    for io in MODES {
        let opts = LogOptions {
            force_sync: false,
            ..small(io)
        };
        // Several rolls; every fdatasync is a seal's (two each), none an append's.
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
        append_range(&mut w, 1, 240, 3);
        w.wait_background().expect("background");
        let stats = w.stats();
        let rolls = segments(tmp.path()).len() as u64 - 1;
        assert!(rolls >= 2, "{stats:?}");
        assert_eq!(stats.seals_deferred, rolls, "{stats:?}");
        assert_eq!(stats.fdatasyncs, 2 * rolls, "{stats:?}");
        drop(w);
        for seg in &segments(tmp.path())[1..] {
            let header = decode_header(&fs::read(seg).expect("read")).expect("header");
            assert_eq!((header.version, header.flags), (2, FLAG_PREV_UNSEALED));
        }
        assert_eq!(read_all(tmp.path(), -1).len(), 240);

        // A crash before the seal finished: the new segment has one batch, written before
        // the seal's syncs, and the finished segment lost its last batch (never written
        // back: zeros). The new segment's records follow lost ones and go.
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
        let next = append_until_roll(&mut w, 1);
        append_until_roll(&mut w, next);
        drop(w);
        let segs = segments(tmp.path());
        let (sealed, newest) = (&segs[segs.len() - 2], &segs[segs.len() - 1]);
        let starts = frame_starts(sealed);
        let last = *starts.last().expect("records");
        let lost_from = frame_zxid(sealed, last);
        let kept = read_all(tmp.path(), -1)
            .iter()
            .take_while(|r| r.zxid < lost_from)
            .count();
        patch(sealed, last as u64, &[0u8; 64]);
        // A tool reading before recovery stops where recovery will cut.
        assert_eq!(read_all(tmp.path(), -1).len(), kept);
        let (_, rec) = LogWriter::open(tmp.path(), opts).expect("recovers");
        assert_eq!(rec.unsealed_tail.as_deref(), Some(sealed.as_path()));
        let newest_name = newest.file_name().expect("name").to_string_lossy();
        assert_eq!(rec.removed_segments, vec![newest_name.to_string()]);
        assert!(!newest.exists());
        assert_eq!(read_all(tmp.path(), -1).len(), kept);

        // The same loss after the seal finished and a later frame said so: corruption.
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = LogWriter::open(tmp.path(), opts).expect("open");
        let next = append_until_roll(&mut w, 1);
        let next = append_until_roll(&mut w, next);
        w.wait_background().expect("seal done");
        append_range(&mut w, next, 3, 3);
        drop(w);
        let segs = segments(tmp.path());
        let sealed = &segs[segs.len() - 2];
        let last = *frame_starts(sealed).last().expect("records");
        patch(sealed, last as u64, &[0u8; 64]);
        let err = LogWriter::open(tmp.path(), opts).err().expect("refused");
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    }
}

/// The zxid of the frame at `offset` of a segment file.
fn frame_zxid(path: &Path, offset: usize) -> i64 {
    let bytes = fs::read(path).expect("read segment");
    let at = offset + FRAME_ZXID_OFFSET;
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}
