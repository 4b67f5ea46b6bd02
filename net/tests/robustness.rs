//! The decoders never panic and never allocate beyond a small multiple of their input,
//! whatever the bytes: random bytes, valid frames with lengths and counts overwritten
//! (huge, negative, null), truncated, or with a multi nested in a multi.
//!
//! Allocation is measured with a counting global allocator, per thread, around each
//! decode call.

#[path = "support/gen.rs"]
mod gen;

use ferrokeeper_net::frame::{check_frame, FrameError, JUTE_MAXBUFFER_DEFAULT};
use ferrokeeper_net::request::{decode_multi, Connect, Request};
use ferrokeeper_net::response::{decode_multi_response, ConnectReply, MultiResult, Reply};
use ferrokeeper_net::{Decode, DecodeError, Encode, Reader};
use gen::{Gen, RecordVisitor, Src};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|l| {
        let now = l.get().saturating_add(n);
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// plain thread-local cells with const initialisers, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: forwarded unchanged; `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // While moving, the old and the new block both exist.
        grow(new_size);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        shrink(layout.size());
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the most bytes it held allocated at once (beyond what was live
/// before it started).
fn peak_bytes(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(Cell::get) - base
}

/// What a decode may allocate for `input` bytes: decoded values own their strings and
/// vectors, and a Rust value is larger than its shortest wire form (an empty `String`
/// is 24 bytes for 4 on the wire, a `MultiOp` about 100 for a 17-byte delete), and a
/// growing vector briefly holds its old and new blocks.
fn allowed(input: usize) -> usize {
    32 * input + 4096
}

/// Feeds `bytes` to every decoder, asserting only that none panics and none
/// over-allocates; errors are expected.
fn decode_everything(bytes: &[u8]) {
    let check = |what: &str, f: &mut dyn FnMut()| {
        let peak = peak_bytes(f);
        assert!(
            peak <= allowed(bytes.len()),
            "{what}: {peak} bytes allocated for {} bytes of input",
            bytes.len()
        );
    };
    check("check_frame", &mut || {
        for max in [0, 16, JUTE_MAXBUFFER_DEFAULT, usize::MAX] {
            let _ = check_frame(bytes, max);
        }
    });
    check("Connect::decode", &mut || {
        let _ = Connect::decode(bytes);
    });
    check("Request::decode", &mut || {
        let _ = Request::decode(bytes);
    });
    check("decode_multi", &mut || {
        let _ = decode_multi(&mut Reader::new(bytes));
    });
    check("decode_multi_response", &mut || {
        let _ = decode_multi_response(&mut Reader::new(bytes));
    });
    check("ConnectReply::decode", &mut || {
        let _ = ConnectReply::decode(bytes);
    });
    check("Reply::decode", &mut || {
        if let Ok(r) = Reply::decode(bytes) {
            let _ = r.multi();
        }
    });
    // Every record, and the payload after a frame's length prefix.
    gen::for_each_record(&mut DecodeOnly(bytes));
    if bytes.len() >= 4 {
        let _ = Request::decode(&bytes[4..]);
    }
}

struct DecodeOnly<'a>(&'a [u8]);

impl RecordVisitor for DecodeOnly<'_> {
    fn visit<T>(&mut self, name: &str)
    where
        T: Gen + Encode + Decode + PartialEq + std::fmt::Debug + Default,
    {
        let bytes = self.0;
        let peak = peak_bytes(|| {
            let _ = T::from_bytes(bytes);
        });
        assert!(
            peak <= allowed(bytes.len()),
            "{name}: {peak} bytes allocated"
        );
    }
}

/// Lengths and counts that break decoders: null, negative, huge, just past the end.
const HOSTILE_INTS: [i32; 8] = [
    -1,
    -2,
    i32::MIN,
    i32::MAX,
    0x00ff_ffff,
    0x000f_ffff,
    65536,
    7,
];

/// A valid request or multi response, then damaged: int fields overwritten with hostile
/// values, truncated, bytes flipped.
fn damaged(bytes: &[u8]) -> Vec<u8> {
    let mut s = Src::new(bytes);
    let mut out = Vec::new();
    match s.below(3) {
        0 => Request::gen(&mut s).encode_body(&mut out),
        1 => {
            let results = Vec::<MultiResult>::gen(&mut s);
            ferrokeeper_net::response::encode_multi_response(&results, &mut out);
        }
        _ => {
            let req = Request::gen(&mut s);
            req.encode_frame(1, &mut out);
        }
    }
    for _ in 0..s.below(4) + 1 {
        if out.is_empty() {
            break;
        }
        let at = s.below(256) * out.len() / 256;
        match s.below(3) {
            0 => {
                let v = HOSTILE_INTS[s.below(HOSTILE_INTS.len())].to_be_bytes();
                for (i, b) in v.iter().enumerate() {
                    if let Some(x) = out.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            1 => out.truncate(at),
            _ => out[at] ^= s.byte() | 1,
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_or_overallocate(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        decode_everything(&bytes);
    }

    #[test]
    fn damaged_frames_never_panic_or_overallocate(seed in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_everything(&damaged(&seed));
    }
}

fn int(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

/// A multi header: type, done, err.
fn multi_header(out: &mut Vec<u8>, ty: i32, done: bool) {
    out.extend_from_slice(&int(ty));
    out.push(u8::from(done));
    out.extend_from_slice(&int(-1));
}

#[test]
fn nested_multi_is_refused_without_recursion() {
    // multi { multi { ... } }: ZooKeeper's MultiOperationRecord has no nested multi, and
    // neither do we; the inner header is an unknown op type, not a recursion.
    let mut body = Vec::new();
    for _ in 0..10_000 {
        multi_header(&mut body, 14, false);
    }
    multi_header(&mut body, -1, true);
    let mut payload = Vec::new();
    payload.extend_from_slice(&int(1)); // xid
    payload.extend_from_slice(&int(14)); // multi
    payload.extend_from_slice(&body);
    let (_, req) = Request::decode(&payload).expect("header");
    assert_eq!(
        req,
        Err(DecodeError::Unknown {
            what: "multi op type",
            value: 14
        })
    );
    // The same for every type a multi may not hold, and in a multi response.
    for ty in [
        0,
        3,
        6,
        7,
        9,
        11,
        12,
        14,
        16,
        22,
        100,
        101,
        107,
        -10,
        -11,
        i32::MAX,
    ] {
        let mut b = Vec::new();
        multi_header(&mut b, ty, false);
        assert!(decode_multi(&mut Reader::new(&b)).is_err(), "type {ty}");
    }
    for ty in [
        0,
        3,
        6,
        7,
        9,
        11,
        12,
        14,
        16,
        19,
        21,
        22,
        100,
        -10,
        i32::MAX,
    ] {
        let mut b = Vec::new();
        multi_header(&mut b, ty, false);
        assert!(
            decode_multi_response(&mut Reader::new(&b)).is_err(),
            "type {ty}"
        );
    }
}

#[test]
fn many_small_multi_ops_allocate_in_proportion() {
    // 60,000 `check` ops fill a 1 MiB frame; the decoded ops may cost more than their
    // bytes but only by the constant factor.
    let mut body = Vec::new();
    while body.len() < JUTE_MAXBUFFER_DEFAULT - 32 {
        multi_header(&mut body, 13, false);
        body.extend_from_slice(&int(0)); // empty path
        body.extend_from_slice(&int(1)); // version
    }
    multi_header(&mut body, -1, true);
    let mut ops = 0;
    let peak = peak_bytes(|| {
        ops = decode_multi(&mut Reader::new(&body)).expect("decode").len();
    });
    assert!(ops > 50_000);
    assert!(
        peak <= allowed(body.len()),
        "{peak} bytes for {}",
        body.len()
    );
    eprintln!(
        "{ops} check ops: {peak} bytes peak for {} bytes of input",
        body.len()
    );
}

#[test]
fn huge_counts_in_small_input_reserve_nothing() {
    // A vector count of i32::MAX with 8 bytes behind it: refused before any reservation.
    for count in [i32::MAX, 0x0100_0000, 1000, 3] {
        let mut b = Vec::new();
        b.extend_from_slice(&int(count));
        b.extend_from_slice(&[0; 8]);
        let peak = peak_bytes(|| {
            let r = Vec::<ferrokeeper_net::records::Acl>::from_bytes(&b);
            assert!(
                matches!(r, Err(DecodeError::BadLength { at: 0, .. })),
                "{count}: {r:?}"
            );
        });
        assert_eq!(peak, 0, "count {count}");
    }
    // A buffer length of i32::MAX: refused, nothing copied.
    let mut b = int(i32::MAX).to_vec();
    b.extend_from_slice(b"abc");
    let peak = peak_bytes(|| {
        assert!(ferrokeeper_net::Buffer::from_bytes(&b).is_err());
    });
    assert_eq!(peak, 0);
}

#[test]
fn check_frame_refuses_before_buffering() {
    assert_eq!(
        check_frame(&int(-1), 100),
        Err(FrameError::Negative { len: -1 })
    );
    assert_eq!(
        check_frame(&int(i32::MIN), 100),
        Err(FrameError::Negative { len: i32::MIN })
    );
    assert_eq!(
        check_frame(&int(i32::MAX), JUTE_MAXBUFFER_DEFAULT),
        Err(FrameError::TooLarge {
            len: i32::MAX as usize,
            max: JUTE_MAXBUFFER_DEFAULT
        })
    );
}

#[test]
fn the_allocation_counter_counts() {
    let peak = peak_bytes(|| {
        let v = vec![0u8; 10_000];
        std::hint::black_box(&v);
    });
    assert!(peak >= 10_000, "{peak}");
}
