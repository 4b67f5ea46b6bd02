//! The Raft log (`ferrokeeper_storage::raftlog`): round trips on a real directory, crash
//! tests over the storage simulator, and a property test against a `Vec` model.
//!
//! Crash rules checked (storage/FORMAT.md, "Raft log"):
//! 1. Every entry whose `append` returned `Ok` is there after recovery, unless a later
//!    `truncate_from` (or a conflicting append) that returned `Ok` removed it.
//! 2. No entry appears that was never appended, and never one that an acknowledged
//!    truncation removed; indexes are consecutive.
//! 3. An operation in flight at the crash leaves one of the states it passes through: a
//!    truncation keeps a prefix of the old suffix; an append keeps its truncation's
//!    prefix and then a prefix of its batch; a purge drops an oldest-first run of segments.
//! 4. The hard state is the last saved one, or, with a save in flight, the old or the new.
//!
//! A failure prints its seed; `FK_SEED=<seed> cargo test -p ferrokeeper-storage --test raftlog`
//! replays it alone. `FK_SEEDS=<n>` runs more seeds.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ferrokeeper_storage::backend::sim::{Prng, SimFaults, SimStorage};
use ferrokeeper_storage::backend::Storage;
use ferrokeeper_storage::log::format::HEADER_BYTES;
use ferrokeeper_storage::log::{IoMode, LogError, LogOptions, LogWriter};
use ferrokeeper_storage::raftlog::{Entry, EntryRef, HardState, RaftLog, HARD_STATE_FILE_NAME};
use proptest::prelude::*;

fn small(io: IoMode) -> LogOptions {
    LogOptions {
        segment_bytes: (HEADER_BYTES + 1024) as u64,
        record_bytes_max: 256,
        batch_bytes_max: 1024,
        io,
        ..LogOptions::default()
    }
}

fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        index,
        term,
        kind: (index % 3) as u8,
        data: (0..len).map(|i| (index as usize * 31 + i) as u8).collect(),
    }
}

fn entries(from: u64, to_inclusive: u64, term: u64) -> Vec<Entry> {
    (from..=to_inclusive)
        .map(|i| entry(i, term, (i % 50) as usize))
        .collect()
}

fn refs(es: &[Entry]) -> Vec<EntryRef<'_>> {
    es.iter().map(Entry::as_ref).collect()
}

fn append_in_batches(log: &mut RaftLog<impl Storage>, es: &[Entry], per_batch: usize) {
    for chunk in es.chunks(per_batch) {
        log.append(&refs(chunk)).expect("append");
    }
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

#[test]
fn append_reopen_round_trip_on_disk() {
    for io in [IoMode::IoUring, IoMode::Pwrite] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let want = entries(1, 120, 1);
        {
            let (mut log, rec) = RaftLog::open(tmp.path(), small(io)).expect("open");
            assert_eq!(rec.entries, Vec::new());
            assert_eq!(rec.hard_state, None);
            append_in_batches(&mut log, &want, 7);
            assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(120)));
            assert!(log.segment_names().count() > 3, "small segments roll");
            assert!(log
                .segment_names()
                .all(|n| n.starts_with("fk-raft.") && n.len() == 8 + 16));
            // One fdatasync per append.
            assert_eq!(log.stats().appends, 18);
        }
        let (mut log, rec) = RaftLog::open(tmp.path(), small(io)).expect("reopen");
        assert_eq!(rec.entries, want);
        assert_eq!(rec.torn_tail, None);
        assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(120)));
        // A conflict on the real disk: the suffix from 50 is replaced.
        let newer = entries(50, 64, 2);
        append_in_batches(&mut log, &newer, 4);
        drop(log);
        let (log, rec) = RaftLog::open(tmp.path(), small(io)).expect("reopen");
        let mut want = want[..49].to_vec();
        want.extend(newer);
        assert_eq!(rec.entries, want);
        // The transaction log in the same directory sees none of it.
        drop(log);
        let (_w, txn) = LogWriter::open(tmp.path(), small(io)).expect("txn log");
        assert_eq!(txn.records, 0);
    }
}

#[test]
fn truncate_from_then_append() {
    let sim = SimStorage::new(1);
    let (mut log, _) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("open");
    let mut model = entries(1, 60, 1);
    append_in_batches(&mut log, &model, 5);
    let segments = log.segment_names().count();
    // A cut in an older segment removes the newer segments.
    log.truncate_from(9).expect("truncate");
    model.truncate(8);
    assert_eq!(log.last_index(), Some(8));
    assert!(log.segment_names().count() < segments);
    // Past the end: nothing to do.
    log.truncate_from(100).expect("no-op");
    let more = entries(9, 30, 2);
    append_in_batches(&mut log, &more, 4);
    model.extend(more);
    drop(log);
    let (log, rec) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.entries, model);
    assert_eq!(log.last_index(), Some(30));
    // Everything: the log is empty and takes any start.
    let mut log = log;
    log.truncate_from(0).expect("truncate all");
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    log.append(&refs(&entries(40, 41, 3))).expect("append");
    drop(log);
    let (_, rec) = RaftLog::open_with(sim, small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.entries, entries(40, 41, 3));
}

#[test]
fn a_cut_at_a_segment_start_removes_that_segment() {
    let sim = SimStorage::new(2);
    let (mut log, _) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("open");
    let model = entries(1, 60, 1);
    append_in_batches(&mut log, &model, 5);
    let names: Vec<String> = log.segment_names().map(str::to_string).collect();
    let second: u64 = u64::from_str_radix(&names[1]["fk-raft.".len()..], 16).expect("hex");
    log.truncate_from(second).expect("truncate");
    assert_eq!(log.segment_names().count(), 1);
    assert_eq!(log.last_index(), Some(second - 1));
    log.append(&refs(&entries(second, second + 3, 2)))
        .expect("append");
    drop(log);
    let (_, rec) = RaftLog::open_with(sim, small(IoMode::Auto)).expect("reopen");
    let mut want = model[..second as usize - 1].to_vec();
    want.extend(entries(second, second + 3, 2));
    assert_eq!(rec.entries, want);
}

#[test]
fn an_append_overlapping_the_tail_replaces_the_suffix() {
    let sim = SimStorage::new(3);
    let (mut log, _) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("open");
    append_in_batches(&mut log, &entries(1, 10, 1), 10);
    log.append(&refs(&entries(5, 7, 2))).expect("conflict");
    assert_eq!(log.last_index(), Some(7));
    // The same entries again (a retransmission) are a conflict with themselves: harmless.
    log.append(&refs(&entries(6, 7, 2))).expect("again");
    drop(log);
    let (_, rec) = RaftLog::open_with(sim, small(IoMode::Auto)).expect("reopen");
    let mut want = entries(1, 4, 1);
    want.extend(entries(5, 7, 2));
    assert_eq!(rec.entries, want);
}

#[test]
fn appends_that_break_the_index_rules_write_nothing() {
    let sim = SimStorage::new(4);
    let (mut log, _) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("open");
    append_in_batches(&mut log, &entries(1, 10, 1), 10);
    let ops = sim.ops();
    let gap = entries(12, 12, 1);
    assert!(matches!(
        log.append(&refs(&gap)),
        Err(LogError::RaftIndex { index: 12, .. })
    ));
    let mut holey = entries(5, 6, 2);
    holey[1].index = 7;
    assert!(matches!(
        log.append(&refs(&holey)),
        Err(LogError::RaftIndex { index: 7, .. })
    ));
    let big = vec![entry(5, 2, 300)];
    assert!(matches!(
        log.append(&refs(&big)),
        Err(LogError::RecordTooLarge { .. })
    ));
    assert_eq!(sim.ops(), ops, "a refused batch touches no file");
    assert_eq!(log.last_index(), Some(10), "nor truncates");
    assert_eq!(log.stopped(), None);
}

#[test]
fn purge_through_drops_whole_old_segments() {
    let sim = SimStorage::new(5);
    let (mut log, _) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("open");
    let model = entries(1, 80, 1);
    append_in_batches(&mut log, &model, 6);
    let before = log.segment_names().count();
    log.purge_through(30).expect("purge");
    let first = log.first_index().expect("not empty");
    assert!(first > 1 && first <= 31, "first {first}");
    assert!(log.segment_names().count() < before);
    log.purge_through(u64::MAX)
        .expect("purge all but the newest");
    assert_eq!(log.segment_names().count(), 1);
    let first = log.first_index().expect("the newest segment stays");
    drop(log);
    let (mut log, rec) = RaftLog::open_with(sim.clone(), small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.entries, model[first as usize - 1..].to_vec());
    // Entries before the first are gone: an append there is refused.
    assert!(matches!(
        log.append(&refs(&entries(first - 1, first - 1, 2))),
        Err(LogError::RaftIndex { .. })
    ));
}

#[test]
fn hard_state_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, rec) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("open");
        assert_eq!(rec.hard_state, None);
        for t in 1..=5 {
            log.save_hard_state(&hs(t, t % 3, t * 10)).expect("save");
        }
    }
    let (mut log, rec) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.hard_state, Some(hs(5, 2, 50)));
    log.save_hard_state(&hs(6, 1, 60)).expect("save");
    drop(log);
    let (_, rec) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.hard_state, Some(hs(6, 1, 60)));
    assert_eq!(
        std::fs::metadata(tmp.path().join(HARD_STATE_FILE_NAME))
            .expect("file")
            .len(),
        8192
    );
}

#[test]
fn a_damaged_hard_state_slot_falls_back_and_two_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("open");
        log.save_hard_state(&hs(1, 1, 0)).expect("save 1"); // slot 1
        log.save_hard_state(&hs(2, 3, 5)).expect("save 2"); // slot 0
    }
    let path = tmp.path().join(HARD_STATE_FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[30] ^= 0x40; // Save 2's term: indistinguishable from a torn save 2.
    std::fs::write(&path, &bytes).expect("write");
    let (_, rec) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("reopen");
    assert_eq!(rec.hard_state, Some(hs(1, 1, 0)));
    bytes[4096 + 30] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    match RaftLog::open(tmp.path(), small(IoMode::Auto)) {
        Err(LogError::Corrupt { file, offset, .. }) => assert_eq!((file, offset), (path, 0)),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("two damaged slots accepted"),
    }
}

#[test]
fn corruption_before_the_tail_is_refused_with_file_and_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first_segment;
    {
        let (mut log, _) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("open");
        append_in_batches(&mut log, &entries(1, 60, 1), 5);
        first_segment = log.segment_names().next().expect("segment").to_string();
    }
    let path = tmp.path().join(&first_segment);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[HEADER_BYTES + 30] ^= 1; // The payload of the first entry.
    std::fs::write(&path, &bytes).expect("write");
    match RaftLog::open(tmp.path(), small(IoMode::Auto)) {
        Err(LogError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, path);
            assert_eq!(offset, HEADER_BYTES as u64);
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("corruption accepted"),
    }
}

#[test]
fn raft_and_txn_segments_are_never_confused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = RaftLog::open(tmp.path(), small(IoMode::Auto)).expect("open");
        append_in_batches(&mut log, &entries(1, 3, 1), 3);
    }
    // A raft segment under a transaction log name has the wrong magic: corruption at 0.
    std::fs::rename(
        tmp.path().join("fk-raft.0000000000000001"),
        tmp.path().join("fk-log.0000000000000001"),
    )
    .expect("rename");
    assert!(matches!(
        LogWriter::open(tmp.path(), small(IoMode::Auto)),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
    // And a transaction log segment under a raft name, likewise.
    let other = tempfile::tempdir().expect("tempdir");
    {
        let (mut w, _) = LogWriter::open(other.path(), small(IoMode::Auto)).expect("open");
        let payload = [0u8; 20];
        w.append(&[ferrokeeper_storage::log::Record {
            zxid: 1,
            bytes: &payload,
        }])
        .expect("append");
    }
    std::fs::rename(
        other.path().join("fk-log.0000000000000001"),
        other.path().join("fk-raft.0000000000000001"),
    )
    .expect("rename");
    assert!(matches!(
        RaftLog::open(other.path(), small(IoMode::Auto)),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
}

// ---- Crashes over the simulator ----

fn seeds(default_count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("FK_SEED") {
        return vec![s.trim().parse().expect("FK_SEED is a u64")];
    }
    let n = std::env::var("FK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_count);
    (0..n).collect()
}

fn for_each_seed(name: &str, default_count: u64, mut run: impl FnMut(u64)) {
    for seed in seeds(default_count) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(seed))) {
            eprintln!("{name} failed for seed {seed}; replay: FK_SEED={seed} cargo test -p ferrokeeper-storage --test raftlog {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// The operation whose outcome a crash (or a failure) left open.
#[derive(Clone, Debug)]
enum InFlight {
    None,
    Append(Vec<Entry>),
    Truncate(u64),
    Purge(u64),
    SaveHardState(HardState),
}

/// What the test knows was acknowledged: the log's entries and the last hard state.
#[derive(Clone, Debug, Default)]
struct Model {
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
}

impl Model {
    /// Entries with index `< index`.
    fn before(&self, index: u64) -> &[Entry] {
        let n = self.entries.partition_point(|e| e.index < index);
        &self.entries[..n]
    }
}

fn is_prefix(short: &[Entry], long: &[Entry]) -> bool {
    short.len() <= long.len() && short == &long[..short.len()]
}

/// Rules 1–4: `found` is a state that `model` with `in_flight` may leave after a crash.
/// Without `force_sync` a power cut may also lose acknowledged entries at the end (never
/// at the front, never in the middle): `found` is then checked as a prefix.
fn check(
    model: &Model,
    in_flight: &InFlight,
    found: &[Entry],
    hard_state: Option<HardState>,
    force_sync: bool,
) {
    let ctx = || {
        let idx =
            |es: &[Entry]| -> Vec<(u64, u64)> { es.iter().map(|e| (e.index, e.term)).collect() };
        format!(
            "found {:?}\nmodel {:?}\nin flight {:?}",
            idx(found),
            idx(&model.entries),
            match in_flight {
                InFlight::Append(b) => format!("append {:?}", idx(b)),
                other => format!("{other:?}"),
            }
        )
    };
    for w in found.windows(2) {
        assert_eq!(w[0].index + 1, w[1].index, "indexes consecutive\n{}", ctx());
    }
    let old = &model.entries;
    let ok = match in_flight {
        InFlight::None | InFlight::SaveHardState(_) => {
            is_prefix(found, old) && (!force_sync || found.len() == old.len())
        }
        InFlight::Truncate(index) => {
            let keep = model.before(*index);
            is_prefix(found, old) && (!force_sync || found.len() >= keep.len())
        }
        InFlight::Append(batch) => {
            let start = batch[0].index;
            let keep = model.before(start);
            let partly_cut = is_prefix(found, old) && (!force_sync || found.len() >= keep.len());
            let appended = found.len() >= keep.len()
                && found[..keep.len()] == *keep
                && is_prefix(&found[keep.len()..], batch);
            partly_cut || appended
        }
        InFlight::Purge(index) => {
            // A run of the old log from where the purge got to, holding every entry above
            // the purge's index (with force_sync, through the end).
            let from = found
                .first()
                .map_or(old.len(), |f| model.before(f.index).len());
            let run = found.len() <= old.len() - from.min(old.len())
                && *found == old[from..from + found.len()];
            run && found.first().is_none_or(|f| f.index <= index + 1)
                && (!force_sync || from + found.len() == old.len())
        }
    };
    assert!(
        ok,
        "recovered log is not a state the operations allow\n{}",
        ctx()
    );
    let hs_ok = match in_flight {
        InFlight::SaveHardState(new) => hard_state == model.hard_state || hard_state == Some(*new),
        _ => hard_state == model.hard_state,
    };
    assert!(
        hs_ok,
        "hard state {hard_state:?}, acknowledged {:?}, in flight {in_flight:?}",
        model.hard_state
    );
}

/// Picks the next operation on a log whose entries are `model`.
fn next_op(rng: &mut Prng, model: &Model, next_term: &mut u64) -> InFlight {
    let (first, last) = match (model.entries.first(), model.entries.last()) {
        (Some(f), Some(l)) => (f.index, l.index),
        _ => (1, 0),
    };
    match rng.below(10) {
        0 | 1 if last >= first => InFlight::Truncate(rng.range(first, last + 1)),
        2 if last >= first => InFlight::Purge(rng.range(first, last)),
        3 => {
            *next_term += 1;
            InFlight::SaveHardState(hs(*next_term, rng.range(0, 5), last))
        }
        _ => {
            // Mostly at the end; sometimes overlapping the tail (a conflict).
            let start = if last >= first && rng.below(4) == 0 {
                rng.range(first, last)
            } else {
                last + 1
            };
            if rng.below(3) == 0 {
                *next_term += 1;
            }
            let n = rng.range(1, 8);
            let batch = (start..start + n)
                .map(|i| entry(i, *next_term, rng.range(0, 100) as usize))
                .collect();
            InFlight::Append(batch)
        }
    }
}

/// Runs `op`; `Ok` means it was acknowledged.
fn run(log: &mut RaftLog<SimStorage>, op: &InFlight) -> Result<(), LogError> {
    match op {
        InFlight::None => Ok(()),
        InFlight::Append(batch) => log.append(&refs(batch)),
        InFlight::Truncate(index) => log.truncate_from(*index),
        InFlight::Purge(index) => log.purge_through(*index),
        InFlight::SaveHardState(h) => log.save_hard_state(h),
    }
}

/// Applies an acknowledged `op` to the model; `log` says where a purge left the start.
fn apply(model: &mut Model, op: &InFlight, log: &RaftLog<SimStorage>) {
    match op {
        InFlight::None => {}
        InFlight::Append(batch) => {
            let keep = model.before(batch[0].index).len();
            model.entries.truncate(keep);
            model.entries.extend(batch.iter().cloned());
        }
        InFlight::Truncate(index) => {
            let keep = model.before(*index).len();
            model.entries.truncate(keep);
        }
        InFlight::Purge(_) => {
            let first = log.first_index().expect("a purge keeps the newest segment");
            let drop = model.before(first).len();
            model.entries.drain(..drop);
        }
        InFlight::SaveHardState(h) => model.hard_state = Some(*h),
    }
}

fn sim_options(rng: &mut Prng, force_sync: bool) -> LogOptions {
    let batch_bytes_max = 1024;
    LogOptions {
        force_sync,
        segment_bytes: rng.range((HEADER_BYTES + batch_bytes_max) as u64, 4000),
        record_bytes_max: 256,
        batch_bytes_max,
        segment_zero_fill: rng.below(2) == 0,
        ..LogOptions::default()
    }
}

thread_local! {
    /// Torn tails that recovery cut, counted by [`recover`] for the coverage marks.
    static TORN_TAILS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Reopens after a crash and checks the recovered state; returns the log and the new model.
fn recover(
    sim: &SimStorage,
    opts: LogOptions,
    model: &Model,
    in_flight: &InFlight,
) -> (RaftLog<SimStorage>, Model) {
    let (log, rec) = match RaftLog::open_with(sim.clone(), opts) {
        Ok(x) if x.1.torn_tail.is_some() => {
            TORN_TAILS.with(|n| n.set(n.get() + 1));
            x
        }
        Ok(x) => x,
        Err(e) => panic!("reopen failed: {e}\nin flight {in_flight:?}"),
    };
    check(
        model,
        in_flight,
        &rec.entries,
        rec.hard_state,
        opts.force_sync,
    );
    assert_eq!(log.first_index(), rec.entries.first().map(|e| e.index));
    assert_eq!(log.last_index(), rec.entries.last().map(|e| e.index));
    let model = Model {
        entries: rec.entries,
        hard_state: rec.hard_state,
    };
    (log, model)
}

/// Random operations with failing writes and syncs and a process death after a random
/// number of storage operations, then a power cut and a reopen, several times per seed.
#[test]
fn crashes_at_random_points_keep_acknowledged_state() {
    random_crashes("crashes_at_random_points_keep_acknowledged_state", true);
}

/// The same without `force_sync`: a power cut may lose acknowledged entries at the end,
/// but what survives is still a prefix of the log, whole entries, indexes consecutive.
#[test]
fn crashes_without_force_sync_keep_a_prefix() {
    random_crashes("crashes_without_force_sync_keep_a_prefix", false);
}

// Long because one seeded run is a loop of cycles (recover, check, operate under faults,
// crash) whose state the coverage marks follow.
fn random_crashes(name: &str, force_sync: bool) {
    // Coverage marks: a simulator or a generator that stopped reaching a path is noticed.
    let (mut torn, mut stops, mut acked, mut torn_tails) = (0u64, 0u64, [0u64; 4], 0u64);
    for_each_seed(name, 300, |seed| {
        let mut rng = Prng::new(seed);
        let sim = SimStorage::new(seed ^ 0x5EED_0FC0_FFEE);
        let opts = sim_options(&mut rng, force_sync);
        let mut model = Model::default();
        let mut in_flight = InFlight::None;
        let mut term = 1;
        for _cycle in 0..rng.range(2, 7) {
            // Sometimes the process dies during recovery itself.
            if rng.below(3) == 0 {
                sim.set_faults(SimFaults {
                    crash_after_ops: Some(rng.range(0, 30)),
                    ..SimFaults::default()
                });
                if RaftLog::open_with(sim.clone(), opts).is_err() {
                    sim.crash();
                }
            }
            sim.set_faults(SimFaults::default());
            let (mut log, found) = recover(&sim, opts, &model, &in_flight);
            model = found;
            in_flight = InFlight::None;
            sim.set_faults(SimFaults {
                write_fail_per_million: if rng.below(2) == 0 { 0 } else { 20_000 },
                sync_fail_per_million: if rng.below(2) == 0 { 0 } else { 40_000 },
                crash_after_ops: if rng.below(4) == 0 {
                    None
                } else {
                    Some(rng.range(0, 150))
                },
            });
            for _ in 0..rng.range(0, 40) {
                let op = next_op(&mut rng, &model, &mut term);
                match run(&mut log, &op) {
                    Ok(()) => {
                        let kind = match op {
                            InFlight::Append(ref b)
                                if model.before(b[0].index).len() < model.entries.len() =>
                            {
                                0
                            }
                            InFlight::Truncate(_) => 1,
                            InFlight::Purge(_) => 2,
                            InFlight::SaveHardState(_) => 3,
                            _ => 4,
                        };
                        if let Some(n) = acked.get_mut(kind) {
                            *n += 1;
                        }
                        apply(&mut model, &op, &log)
                    }
                    Err(e) => {
                        stops += 1;
                        assert!(matches!(e, LogError::Io { .. }), "unexpected {e}");
                        // Fail-stop: every later call fails without touching storage.
                        let ops = sim.ops();
                        assert!(matches!(
                            log.truncate_from(0),
                            Err(LogError::Stopped { .. })
                        ));
                        assert!(matches!(
                            log.save_hard_state(&hs(0, 0, 0)),
                            Err(LogError::Stopped { .. })
                        ));
                        assert_eq!(sim.ops(), ops, "a stopped log touches no file");
                        in_flight = op;
                        break;
                    }
                }
            }
            drop(log);
            let report = sim.crash();
            torn += u64::from(report.files.iter().any(|f| f.1 > 0));
        }
        sim.set_faults(SimFaults::default());
        recover(&sim, opts, &model, &in_flight);
    });
    torn_tails += TORN_TAILS.with(|n| n.get());
    eprintln!("crashes losing writes {torn}, fail-stops {stops}, torn tails {torn_tails}, acknowledged conflicts/truncations/purges/saves {acked:?}");
    if std::env::var("FK_SEED").is_err() {
        assert!(torn > 0 && stops > 0 && torn_tails > 0, "paths not reached");
        assert!(
            acked.iter().all(|&n| n > 0),
            "operations not reached: {acked:?}"
        );
    }
}

/// A fixed log, then one operation crashed at each of its storage operations in turn
/// (the process dies there, then a power cut tears or drops what was not synced).
fn crash_at_every_step(
    name: &str,
    seeds_per_step: u64,
    setup: fn(&mut Prng) -> Vec<InFlight>,
    op: fn(&Model) -> InFlight,
) {
    for_each_seed(name, seeds_per_step, |seed| {
        let build = |crash_after: Option<u64>| {
            let mut rng = Prng::new(seed);
            let sim = SimStorage::new(seed.wrapping_mul(7919));
            let opts = small(IoMode::Auto);
            let (mut log, _) = RaftLog::open_with(sim.clone(), opts).expect("open");
            let mut model = Model::default();
            for step in setup(&mut rng) {
                run(&mut log, &step).expect("setup");
                apply(&mut model, &step, &log);
            }
            let op = op(&model);
            sim.set_faults(SimFaults {
                crash_after_ops: crash_after,
                ..SimFaults::default()
            });
            let result = run(&mut log, &op);
            (sim, opts, model, op, result, log)
        };
        let (sim, _, _, _, result, _) = build(None);
        result.expect("the operation succeeds without faults");
        let steps = sim.ops();
        assert!(steps > 0);
        for n in 0..=steps {
            let (sim, opts, model, op, result, log) = build(Some(n));
            assert_eq!(result.is_ok(), n >= steps, "crash after {n} of {steps} ops");
            let in_flight = if result.is_ok() {
                let mut m = model.clone();
                apply(&mut m, &op, &log);
                drop(log);
                sim.crash();
                recover(&sim, opts, &m, &InFlight::None);
                continue;
            } else {
                op
            };
            drop(log);
            sim.crash();
            sim.set_faults(SimFaults::default());
            recover(&sim, opts, &model, &in_flight);
        }
    });
}

fn a_few_segments(_: &mut Prng) -> Vec<InFlight> {
    let mut steps: Vec<InFlight> = entries(1, 60, 1)
        .chunks(5)
        .map(|c| InFlight::Append(c.to_vec()))
        .collect();
    steps.push(InFlight::SaveHardState(hs(1, 1, 60)));
    steps
}

#[test]
fn crash_at_every_step_of_an_append() {
    crash_at_every_step(
        "crash_at_every_step_of_an_append",
        12,
        a_few_segments,
        |m| {
            let last = m.entries.last().map_or(0, |e| e.index);
            InFlight::Append(entries(last + 1, last + 9, 2))
        },
    );
}

#[test]
fn crash_at_every_step_of_a_conflicting_append() {
    crash_at_every_step(
        "crash_at_every_step_of_a_conflicting_append",
        12,
        a_few_segments,
        |_| InFlight::Append(entries(12, 17, 2)),
    );
}

#[test]
fn crash_at_every_step_of_a_truncation() {
    crash_at_every_step(
        "crash_at_every_step_of_a_truncation",
        12,
        a_few_segments,
        |_| InFlight::Truncate(7),
    );
}

#[test]
fn crash_at_every_step_of_a_hard_state_save() {
    crash_at_every_step(
        "crash_at_every_step_of_a_hard_state_save",
        40,
        a_few_segments,
        |_| InFlight::SaveHardState(hs(2, 3, 60)),
    );
}

#[test]
fn crash_at_every_step_of_a_purge() {
    crash_at_every_step("crash_at_every_step_of_a_purge", 12, a_few_segments, |_| {
        InFlight::Purge(50)
    });
}

// ---- A property test against a Vec model ----

#[derive(Clone, Debug)]
enum Op {
    /// Append `len` entries starting `back` entries before the end (0 = right after it).
    Append {
        back: u8,
        len: u8,
        new_term: bool,
        bytes: u8,
    },
    Truncate {
        back: u8,
    },
    Purge {
        back: u8,
    },
    SaveHardState {
        vote: u8,
    },
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 1u8..10, any::<bool>(), any::<u8>()).prop_map(|(back, len, new_term, bytes)| {
            Op::Append { back, len, new_term, bytes }
        }),
        2 => (0u8..30).prop_map(|back| Op::Truncate { back }),
        1 => (0u8..60).prop_map(|back| Op::Purge { back }),
        1 => any::<u8>().prop_map(|vote| Op::SaveHardState { vote }),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_a_vec_model(
        ops in prop::collection::vec(op_strategy(), 1..60),
        force_sync in any::<bool>(),
    ) {
        let sim = SimStorage::new(9);
        let opts = LogOptions { force_sync, ..small(IoMode::Auto) };
        let (mut log, _) = RaftLog::open_with(sim.clone(), opts).expect("open");
        let mut model: Vec<Entry> = Vec::new();
        let mut hard_state = None;
        let mut term = 1;
        for op in ops {
            let last = model.last().map_or(0, |e| e.index);
            let first = model.first().map_or(1, |e| e.index);
            match op {
                Op::Append { back, len, new_term, bytes } => {
                    // back = 0 appends after the end; more overlaps the tail (a conflict).
                    let start = if model.is_empty() {
                        last + 1
                    } else {
                        (last + 1).saturating_sub(u64::from(back)).max(first)
                    };
                    term += u64::from(new_term);
                    let batch: Vec<Entry> = (start..start + u64::from(len))
                        .map(|i| entry(i, term, usize::from(bytes) % 80))
                        .collect();
                    log.append(&refs(&batch)).expect("append");
                    model.retain(|e| e.index < start);
                    model.extend(batch);
                }
                Op::Truncate { back } => {
                    let index = last.saturating_sub(u64::from(back));
                    log.truncate_from(index).expect("truncate");
                    model.retain(|e| e.index < index);
                }
                Op::Purge { back } => {
                    let index = last.saturating_sub(u64::from(back));
                    log.purge_through(index).expect("purge");
                    let now = log.first_index();
                    // Only whole segments at or below the index go, and never the newest.
                    prop_assert_eq!(now.is_some(), !model.is_empty());
                    if let Some(f) = now {
                        prop_assert!(f >= first && f <= index.max(first) + 1);
                        model.retain(|e| e.index >= f);
                    }
                }
                Op::SaveHardState { vote } => {
                    let h = hs(term, u64::from(vote), last);
                    log.save_hard_state(&h).expect("save");
                    hard_state = Some(h);
                }
                Op::Reopen => {
                    drop(log);
                    let (reopened, rec) = RaftLog::open_with(sim.clone(), opts).expect("reopen");
                    log = reopened;
                    prop_assert_eq!(&rec.entries, &model);
                    prop_assert_eq!(rec.hard_state, hard_state);
                    prop_assert_eq!(rec.torn_tail, None);
                }
            }
            prop_assert_eq!(log.first_index(), model.first().map(|e| e.index));
            prop_assert_eq!(log.last_index(), model.last().map(|e| e.index));
        }
        drop(log);
        let (_, rec) = RaftLog::open_with(sim, opts).expect("final reopen");
        prop_assert_eq!(rec.entries, model);
        prop_assert_eq!(rec.hard_state, hard_state);
    }
}
