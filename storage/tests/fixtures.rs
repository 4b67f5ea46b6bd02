//! Format fixtures: small logs made by this code and checked into git
//! (`storage/tests/fixtures/log-{valid,torn,corrupt}/`), so that a change of the format —
//! in what is written or in how it is read — fails a test instead of passing silently.
//!
//! Regenerate (only for a deliberate format change, with a FORMAT.md update and a new
//! format version): `FK_WRITE_FIXTURES=1 cargo test -p ferrokeeper-storage --test fixtures`.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferrokeeper_storage::log::format::{frame_bytes, FRAME_HEADER_BYTES, TXN_SEGMENTS};
use ferrokeeper_storage::log::{read, IoMode, LogError, LogOptions, LogWriter, Record};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn options() -> LogOptions {
    LogOptions {
        segment_bytes: 1024,
        force_sync: true,
        record_bytes_max: 256,
        batch_bytes_max: 512,
        segment_zero_fill: false,
        io: IoMode::Pwrite,
    }
}

/// The fixture's batches: zxids 1..=12 in epoch 0, then two in epoch 1.
fn batches() -> Vec<Vec<(i64, Vec<u8>)>> {
    let rec = |z: i64| {
        (
            z,
            format!("txn {z:#x}: {}", "set /a ".repeat((z % 5) as usize * 4)).into_bytes(),
        )
    };
    vec![
        vec![rec(1)],
        (2..=4).map(rec).collect(),
        (5..=8).map(rec).collect(),
        (9..=10).map(rec).collect(),
        (11..=12).map(rec).collect(),
        vec![rec(0x1_0000_0001), rec(0x1_0000_0002)],
    ]
}

/// The batch the torn fixture was writing when it "crashed".
fn torn_batch() -> Vec<(i64, Vec<u8>)> {
    vec![
        (0x1_0000_0003, b"whole record of a torn batch".to_vec()),
        (0x1_0000_0004, vec![0xAB; 40]),
    ]
}

fn append(w: &mut LogWriter, batch: &[(i64, Vec<u8>)]) {
    let records: Vec<Record<'_>> = batch
        .iter()
        .map(|(z, b)| Record { zxid: *z, bytes: b })
        .collect();
    w.append(&records).expect("append");
}

/// Bytes zeroed at the end of the torn batch (its second record loses its last 20 bytes).
const TORN_LOST_BYTES: u64 = 20;

/// Writes the three fixtures under `root`.
fn generate(root: &Path) {
    let valid = root.join("log-valid");
    let (mut w, _) = LogWriter::open(&valid, options()).expect("open");
    for b in batches() {
        append(&mut w, &b);
    }
    drop(w);

    let torn = root.join("log-torn");
    copy_dir(&valid, &torn);
    let (mut w, _) = LogWriter::open(&torn, options()).expect("open");
    append(&mut w, &torn_batch());
    let (name, end) = w.tail().map(|(n, e)| (n.to_string(), e)).expect("tail");
    drop(w);
    write_at(
        &torn.join(name),
        end - TORN_LOST_BYTES,
        &[0; TORN_LOST_BYTES as usize],
    );

    let corrupt = root.join("log-corrupt");
    copy_dir(&valid, &corrupt);
    // One flipped bit in the payload of zxid 3, in the first segment.
    let off = corrupt_offset() + FRAME_HEADER_BYTES as u64 + 1;
    let path = corrupt.join("fk-log.0000000000000001");
    let mut byte = [0u8; 1];
    fs::File::open(&path)
        .expect("open")
        .read_exact_at(&mut byte, off)
        .expect("read");
    write_at(&path, off, &[byte[0] ^ 0x04]);
}

/// Offset of zxid 3's frame in the first segment: header, then frames of zxids 1 and 2.
fn corrupt_offset() -> u64 {
    let b = batches();
    (48 + frame_bytes(b[0][0].1.len()) + frame_bytes(b[1][0].1.len())) as u64
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(bytes, offset).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        // The spare segment is made in the background and holds only zeros: whether a
        // writer dropped early left one (whole, or cut short) is timing, not format.
        .filter(|e| {
            e.as_ref().map_or(true, |e| {
                e.file_name() != TXN_SEGMENTS.spare_name().as_str()
            })
        })
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().to_string(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn fixtures_are_what_this_code_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate(tmp.path());
    if std::env::var("FK_WRITE_FIXTURES").is_ok() {
        for name in ["log-valid", "log-torn", "log-corrupt"] {
            let _ = fs::remove_dir_all(fixtures().join(name));
            copy_dir(&tmp.path().join(name), &fixtures().join(name));
        }
    }
    for name in ["log-valid", "log-torn", "log-corrupt"] {
        let want = files(&fixtures().join(name));
        let got = files(&tmp.path().join(name));
        assert_eq!(
            want.iter().map(|f| &f.0).collect::<Vec<_>>(),
            got.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "{name}: file names"
        );
        for ((file, w), (_, g)) in want.iter().zip(&got) {
            let first_diff = w.iter().zip(g).position(|(a, b)| a != b);
            assert!(w == g, "{name}/{file}: the format changed (first differing byte {first_diff:?}, lengths {} vs {})", w.len(), g.len());
        }
    }
}

#[test]
fn valid_fixture_reads_and_recovers() {
    let names: Vec<String> = files(&fixtures().join("log-valid"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        names,
        ["fk-log.0000000000000001", "fk-log.000000000000000b"]
    );
    let want: Vec<(i64, Vec<u8>)> = batches().into_iter().flatten().collect();
    let got: Vec<(i64, Vec<u8>)> = read(&fixtures().join("log-valid"), -1)
        .expect("read")
        .map(|r| r.map(|r| (r.zxid, r.bytes)).expect("record"))
        .collect();
    assert_eq!(got, want);
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("log-valid"), tmp.path());
    let (_, rec) = LogWriter::open(tmp.path(), options()).expect("open");
    assert_eq!(
        (rec.records, rec.last_zxid, rec.truncated_bytes),
        (14, Some(0x1_0000_0002), 0)
    );
}

#[test]
fn torn_fixture_recovers_a_whole_record_prefix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("log-torn"), tmp.path());
    // Replay without repair stops before the torn record.
    let replay: Vec<i64> = read(tmp.path(), 0x1_0000_0000)
        .expect("read")
        .map(|r| r.expect("record").zxid)
        .collect();
    assert_eq!(replay, [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003]);
    let (_, rec) = LogWriter::open(tmp.path(), options()).expect("a torn tail is not fatal");
    // The torn batch's first record is whole and kept; the second, torn, is cut.
    assert_eq!(rec.last_zxid, Some(0x1_0000_0003));
    assert_eq!(rec.records, 15);
    let torn = rec.torn_tail.expect("torn tail");
    assert!(torn.file.ends_with("fk-log.000000000000000b"));
    let lost = frame_bytes(torn_batch()[1].1.len()) as u64 - TORN_LOST_BYTES;
    assert_eq!(rec.truncated_bytes, lost);
    assert_eq!(
        torn.offset, 472,
        "pinned: the second torn record's frame offset"
    );
}

#[test]
fn corrupt_fixture_is_refused_with_file_and_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixtures().join("log-corrupt"), tmp.path());
    match LogWriter::open(tmp.path(), options()) {
        Err(LogError::Corrupt { file, offset, .. }) => {
            assert!(file.ends_with("fk-log.0000000000000001"));
            assert_eq!(offset, corrupt_offset());
            assert_eq!(offset, 198, "pinned: zxid 3's frame offset");
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("corrupt fixture accepted"),
    }
}
