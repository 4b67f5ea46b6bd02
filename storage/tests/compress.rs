//! Compressed segments on a real filesystem (`storage/FORMAT.md`, "Compressed segments"):
//! compression in the background, decompression of what a replay needs at open, the
//! leftovers of a crash, damage, and purges. The simulator's crash tests (`tests/sim.rs`)
//! crash at every step of both.

use std::fs;
use std::path::Path;

use ferrokeeper_storage::backend::sim::SimStorage;
use ferrokeeper_storage::log::{read, LogError, LogOptions, LogWriter, Record, Recovered};

fn small() -> LogOptions {
    LogOptions {
        segment_bytes: 16 * 1024,
        record_bytes_max: 1024,
        batch_bytes_max: 4096,
        ..LogOptions::default()
    }
}

/// A payload that compresses about as a txn does: a path-like prefix and some data.
fn payload(zxid: i64) -> Vec<u8> {
    format!(
        "/bench/restart/p{}/n{zxid:08}:{}",
        zxid % 7,
        "v".repeat(40 + (zxid % 50) as usize)
    )
    .into_bytes()
}

/// Appends zxids `from..from + n`, a few per batch, waiting for the background after each.
fn append(w: &mut LogWriter, from: i64, n: i64) {
    let mut z = from;
    while z < from + n {
        let payloads: Vec<(i64, Vec<u8>)> = (z..(z + 4).min(from + n))
            .map(|z| (z, payload(z)))
            .collect();
        let records: Vec<Record<'_>> = payloads
            .iter()
            .map(|(zxid, bytes)| Record { zxid: *zxid, bytes })
            .collect();
        w.append(&records).expect("append");
        w.wait_background().expect("background");
        z += payloads.len() as i64;
    }
}

fn all(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    read(dir, -1)
        .expect("read")
        .map(|r| r.map(|r| (r.zxid, r.bytes)).expect("record"))
        .collect()
}

/// The directory's `fk-log.` names, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.starts_with("fk-log."))
        .collect();
    n.sort();
    n
}

/// Opens replaying after `after`; returns the writer, the report and the zxids replayed.
fn open_after(dir: &Path, after: i64) -> Result<(LogWriter, Recovered, Vec<i64>), LogError> {
    let mut seen = Vec::new();
    let (w, r) = LogWriter::open_replaying(dir, small(), after, &mut |z, _| seen.push(z))?;
    Ok((w, r, seen))
}

/// A log of several sealed segments; the first `covered` compressed (through the last zxid
/// of segment `covered - 1`). Returns the plain segments' bytes before compression, and
/// the zxid compressed through.
fn compressed_log(dir: &Path, covered: usize) -> (Vec<(String, Vec<u8>)>, i64) {
    let (mut w, _) = LogWriter::open(dir, small()).expect("open");
    append(&mut w, 1, 800);
    let segments: Vec<String> = w.segment_names().map(str::to_string).collect();
    assert!(segments.len() >= covered + 2, "{segments:?}");
    let originals: Vec<(String, Vec<u8>)> = segments
        .iter()
        .map(|n| (n.clone(), fs::read(dir.join(n)).expect("segment")))
        .collect();
    // The last zxid of segment covered - 1 is one below the next segment's first.
    let next_first = i64::from_str_radix(&segments[covered][7..], 16).expect("hex");
    let through = next_first - 1;
    assert!(w.compress_through(through).expect("compress"));
    w.wait_background().expect("background");
    assert_eq!(w.stats().segments_compressed, covered as u64);
    let compressed: Vec<&str> = w.compressed_segment_names().collect();
    assert_eq!(
        compressed,
        segments[..covered]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    (originals, through)
}

#[test]
fn compressed_segments_read_and_decompress_to_the_same_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let before = {
        let (mut w, _) = LogWriter::open(dir, small()).expect("open");
        append(&mut w, 1, 800);
        drop(w);
        all(dir)
    };
    fs::remove_dir_all(dir).expect("clean");
    fs::create_dir(dir).expect("dir");
    let (originals, through) = compressed_log(dir, 3);
    let listed = names(dir);
    for (i, (name, bytes)) in originals.iter().enumerate() {
        let zst = format!("{name}.zst");
        if i < 3 {
            assert!(
                listed.contains(&zst) && !listed.contains(name),
                "{listed:?}"
            );
            let size = fs::metadata(dir.join(&zst)).expect("zst").len();
            assert!(
                size < bytes.len() as u64 / 3,
                "{zst}: {size} bytes of {}",
                bytes.len()
            );
        } else {
            assert!(
                listed.contains(name) && !listed.contains(&zst),
                "{listed:?}"
            );
        }
    }
    // The reader (the tools) reads compressed segments as plain ones.
    assert_eq!(all(dir), before);

    // A normal start (replay after the snapshot) reads no compressed segment.
    let (w, r, seen) = open_after(dir, through).expect("open");
    assert!(r.decompressed_segments.is_empty(), "{r:?}");
    assert_eq!(r.compressed_segments, 3);
    assert_eq!(
        seen.first(),
        Some(&(through + 1)),
        "replay starts at the first plain segment"
    );
    assert_eq!(seen.last(), Some(&800));
    drop(w);
    assert_eq!(names(dir).iter().filter(|n| n.ends_with(".zst")).count(), 3);

    // An older snapshot (in the second segment): the second and third are decompressed,
    // newest first, and the first, wholly before it, stays compressed.
    let second_first = i64::from_str_radix(&originals[1].0[7..], 16).expect("hex");
    let (w, r, seen) = open_after(dir, second_first + 1).expect("open");
    assert_eq!(
        r.decompressed_segments,
        vec![originals[2].0.clone(), originals[1].0.clone()]
    );
    assert_eq!(r.compressed_segments, 1);
    assert_eq!(seen.first(), Some(&second_first));
    drop(w);
    // No snapshot: everything is plain again, byte for byte what the writer wrote
    // (preallocated length included).
    let (w, r, seen) = open_after(dir, 0).expect("open");
    assert_eq!(r.decompressed_segments, vec![originals[0].0.clone()]);
    assert_eq!(seen, (1..=800).collect::<Vec<_>>());
    drop(w);
    for (name, bytes) in &originals[..3] {
        assert_eq!(
            &fs::read(dir.join(name)).expect("plain again"),
            bytes,
            "{name}"
        );
    }
    assert!(names(dir).iter().all(|n| !n.ends_with(".zst")));
    assert_eq!(all(dir), before);
}

#[test]
fn leftovers_of_an_interrupted_compression_are_removed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (originals, through) = compressed_log(dir, 2);
    // A compression and a decompression a crash cut short.
    let third = &originals[2].0;
    fs::copy(dir.join(third), dir.join(format!("{third}.zst.tmp"))).expect("tmp");
    fs::write(dir.join(format!("{}.tmp", originals[1].0)), b"partial").expect("tmp");
    let (w, r, _) = open_after(dir, through).expect("open");
    let mut removed = r.removed_leftovers.clone();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            format!("{}.tmp", originals[1].0),
            format!("{third}.zst.tmp")
        ]
    );
    assert!(r.decompressed_segments.is_empty());
    drop(w);
    assert!(
        names(dir).iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        names(dir)
    );
}

#[test]
fn a_segment_in_both_forms_keeps_the_plain_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (originals, through) = compressed_log(dir, 2);
    let before = all(dir);
    // A crash after the rename to `.zst` and before the plain file's removal.
    let (first, bytes) = &originals[0];
    fs::write(dir.join(first), bytes).expect("plain back");
    // The reader picks the plain one too.
    assert_eq!(all(dir), before);
    let (w, r, seen) = open_after(dir, through).expect("open");
    assert_eq!(r.removed_leftovers, vec![format!("{first}.zst")]);
    // The compressed second segment now follows a plain one: the compressed segments are
    // no longer a run before the plain ones, so it is decompressed too.
    assert_eq!(r.decompressed_segments, vec![originals[1].0.clone()]);
    let listed = names(dir);
    assert!(listed.contains(first), "{listed:?}");
    assert!(!listed.contains(&format!("{first}.zst")), "{listed:?}");
    assert_eq!(seen.first(), Some(&1));
    drop(w);
    assert_eq!(all(dir), before);
}

#[test]
fn a_damaged_compressed_segment_stops_recovery_only_when_needed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (originals, through) = compressed_log(dir, 2);
    let zst = dir.join(format!("{}.zst", originals[1].0));
    let mut bytes = fs::read(&zst).expect("zst");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    fs::write(&zst, &bytes).expect("damage");
    // Not needed: not read.
    let (w, r, _) = open_after(dir, through).expect("a normal start does not read it");
    assert_eq!(r.compressed_segments, 2);
    drop(w);
    // Needed: the start stops, naming the file.
    let err = open_after(dir, 1)
        .map(|_| ())
        .expect_err("damaged and needed");
    match &err {
        LogError::Corrupt { file, .. } => assert_eq!(file, &zst, "{err}"),
        e => panic!("expected corruption naming {}, got {e}", zst.display()),
    }
    // The tools report it too.
    let read_err = read(dir, -1)
        .expect("read")
        .find_map(Result::err)
        .expect("an error");
    assert!(read_err.to_string().contains(".zst"), "{read_err}");
    // A damaged header is named with its offset.
    bytes = fs::read(&zst).expect("zst");
    bytes[at] ^= 0x40;
    bytes[20] ^= 1;
    fs::write(&zst, &bytes).expect("damage");
    let err = open_after(dir, 1).map(|_| ()).expect_err("damaged header");
    assert!(
        matches!(&err, LogError::Corrupt { file, offset: 40, .. } if file == &zst),
        "{err}"
    );
}

#[test]
fn only_sealed_covered_segments_are_compressed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (mut w, _) = LogWriter::open(dir, small()).expect("open");
    append(&mut w, 1, 300);
    let segments: Vec<String> = w.segment_names().map(str::to_string).collect();
    assert!(segments.len() >= 3, "{segments:?}");
    // Through a zxid inside the second segment: only the first is covered.
    let second_first = i64::from_str_radix(&segments[1][7..], 16).expect("hex");
    assert!(w.compress_through(second_first).expect("compress"));
    w.wait_background().expect("background");
    assert_eq!(
        w.compressed_segment_names().collect::<Vec<_>>(),
        vec![segments[0].as_str()]
    );
    // Through everything: never the segment being appended to.
    assert!(w.compress_through(i64::MAX).expect("compress"));
    w.wait_background().expect("background");
    let (current, _) = w.tail().expect("tail");
    let current = current.to_string();
    assert!(!w.compressed_segment_names().any(|n| n == current));
    assert_eq!(w.compressed_segment_names().count(), segments.len() - 1);
    assert!(names(dir).contains(&current));
    drop(w);

    // force_sync off: the segment a roll just finished is not compressed before its seal.
    // On the simulator the seal runs only when the storage grants background steps, so
    // across seeds a compression is asked for while a seal is pending.
    let mut waited = 0;
    for seed in 0..40 {
        let sim = SimStorage::new(seed);
        let opts = LogOptions {
            force_sync: false,
            ..small()
        };
        let (mut w, _) = LogWriter::open_with(sim.clone(), opts).expect("open");
        for z in 1..400 {
            let p = payload(z);
            w.append(&[Record { zxid: z, bytes: &p }]).expect("append");
            let (current, _) = w.tail().expect("tail");
            let current = current.to_string();
            let listed: Vec<&str> = w.segment_names().collect();
            let previous = listed.iter().rev().nth(1).map(|s| s.to_string());
            let all_handed = w.compress_through(i64::MAX).expect("compress");
            let files = sim.names();
            assert!(
                !files
                    .iter()
                    .any(|f| f.starts_with(&current) && f != &current),
                "seed {seed}: the current segment {current} is being compressed: {files:?}"
            );
            if !all_handed {
                waited += 1;
                let previous = previous.expect("a segment waits for its seal");
                assert!(
                    !files
                        .iter()
                        .any(|f| f.starts_with(&previous) && f != &previous),
                    "seed {seed}: {previous} compressed before its seal: {files:?}"
                );
            }
        }
        w.wait_background().expect("background");
        assert!(w.stats().segments_compressed > 0);
    }
    assert!(
        waited > 0,
        "no compression was ever asked for while a seal was pending"
    );
}

#[test]
fn purges_remove_compressed_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (originals, through) = compressed_log(dir, 3);
    // A purge through the second segment: the first two go, compressed as they are.
    let third_first = i64::from_str_radix(&originals[2].0[7..], 16).expect("hex");
    let (mut w, r, _) = open_after(dir, through).expect("open");
    assert_eq!(r.compressed_segments, 3);
    w.purge_through(third_first - 1).expect("purge");
    w.wait_background().expect("background");
    let listed = names(dir);
    for (name, _) in &originals[..2] {
        assert!(
            !listed.iter().any(|n| n.starts_with(name.as_str())),
            "{listed:?}"
        );
    }
    assert!(
        listed.contains(&format!("{}.zst", originals[2].0)),
        "{listed:?}"
    );
    // And in the run that compressed them: a purge right behind a compression of the same
    // segment gives the compression up and removes every form.
    append(&mut w, 801, 400);
    let segments: Vec<String> = w.segment_names().map(str::to_string).collect();
    let last = w.last_zxid().expect("records");
    w.compress_through(last).expect("compress");
    w.purge_through(last).expect("purge");
    w.wait_background().expect("background");
    let listed = names(dir);
    let current = w.tail().expect("tail").0.to_string();
    assert_eq!(
        listed.iter().filter(|n| n.starts_with("fk-log.")).count(),
        1,
        "{listed:?}"
    );
    assert_eq!(listed, vec![current], "{segments:?}");
    drop(w);
    let (_, r, seen) = open_after(dir, last).expect("open");
    assert_eq!(r.compressed_segments, 0);
    assert!(seen.iter().all(|z| *z > last - 400));
}
