//! Raw edge cases of the jute encoding and of framing, byte by byte.
//!
//! - `BinaryInputArchive`: a `ustring`/`buffer` length of −1 is null, any other negative
//!   length is an error; a `vector` count of −1 is null. ferrokeeper-net reads null as
//!   empty, and refuses every other negative length or count.
//! - `NIOServerCnxn.readLength`: a frame length below 0 or above `jute.maxbuffer` closes
//!   the connection; exactly `jute.maxbuffer` is accepted.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/gen.rs"]
mod gen;

use ferrokeeper_net::frame::{check_frame, FrameError, JUTE_MAXBUFFER_DEFAULT};
use ferrokeeper_net::records::*;
use ferrokeeper_net::request::{Connect, CreateOp, Request};
use ferrokeeper_net::response::{ConnectReply, Reply};
use ferrokeeper_net::{Buffer, Decode, DecodeError, OpCode};
use fixtures::{fixture, SESSIONS};
use gen::{Gen, Src};
use proptest::prelude::*;

fn int(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- null and negative lengths ----

#[test]
fn null_string_buffer_and_vector_read_as_empty() {
    // CreateRequest{path=null, data=null, acl=null, flags=0}
    let b = cat(&[&int(-1), &int(-1), &int(-1), &int(0)]);
    assert_eq!(CreateRequest::from_bytes(&b), Ok(CreateRequest::default()));

    // GetDataRequest{path=null, watch=true}
    let b = cat(&[&int(-1), &[1]]);
    assert_eq!(
        GetDataRequest::from_bytes(&b),
        Ok(GetDataRequest {
            path: String::new(),
            watch: true
        })
    );

    // SetWatches with every list null.
    let b = cat(&[&7i64.to_be_bytes(), &int(-1), &int(-1), &int(-1)]);
    assert_eq!(
        SetWatches::from_bytes(&b),
        Ok(SetWatches {
            relative_zxid: 7,
            ..SetWatches::default()
        })
    );

    // GetDataResponse with null data, as ZooKeeper sends for a node created with null data.
    let b = cat(&[&int(-1), &[0; 68]]);
    assert_eq!(
        GetDataResponse::from_bytes(&b),
        Ok(GetDataResponse::default())
    );
}

#[test]
fn negative_lengths_other_than_null_are_refused() {
    for len in [-2, -3, -100, i32::MIN] {
        let b = cat(&[&int(len), b"abcdefgh"]);
        let bad = DecodeError::BadLength { at: 0, len };
        assert_eq!(String::from_bytes(&b), Err(bad.clone()), "ustring {len}");
        assert_eq!(Buffer::from_bytes(&b), Err(bad.clone()), "buffer {len}");
        assert_eq!(Vec::<i32>::from_bytes(&b), Err(bad), "vector {len}");
    }
    // The offset reported is the length field's, inside a record.
    let b = cat(&[&int(2), b"/a", &int(-5)]);
    assert_eq!(
        SetDataRequest::from_bytes(&b),
        Err(DecodeError::BadLength { at: 6, len: -5 })
    );
}

#[test]
fn lengths_past_the_end_are_refused() {
    let b = cat(&[&int(5), b"abcd"]);
    assert_eq!(
        String::from_bytes(&b),
        Err(DecodeError::BadLength { at: 0, len: 5 })
    );
    // A vector of 3 ints needs 12 bytes.
    let b = cat(&[&int(3), &[0; 11]]);
    assert_eq!(
        Vec::<i32>::from_bytes(&b),
        Err(DecodeError::BadLength { at: 0, len: 3 })
    );
    let b = cat(&[&int(3), &[0; 12]]);
    assert_eq!(Vec::<i32>::from_bytes(&b), Ok(vec![0, 0, 0]));
}

#[test]
fn booleans_read_any_nonzero_byte_as_true() {
    // DataInput.readBoolean: any non-zero byte is true.
    for (byte, want) in [(0u8, false), (1, true), (2, true), (0xff, true)] {
        assert_eq!(bool::from_bytes(&[byte]), Ok(want));
    }
}

#[test]
fn invalid_utf8_is_replaced_not_refused() {
    // Java decodes with `new String(bytes, UTF_8)`, which replaces malformed input.
    let b = cat(&[&int(3), &[b'a', 0xff, b'b']]);
    assert_eq!(String::from_bytes(&b), Ok("a\u{fffd}b".to_string()));
}

// ---- requests ----

#[test]
fn request_bodies_that_fail_keep_their_header() {
    // getData with a truncated path: the header is good, so the server can answer the
    // xid with MarshallingError.
    let b = cat(&[&int(9), &int(4), &int(10), b"/ab"]);
    let (h, body) = Request::decode(&b).expect("header");
    assert_eq!((h.xid, h.r#type), (9, 4));
    assert!(body.is_err());
    // A header alone that is short is an error with no header.
    assert!(Request::decode(&[0, 0, 0, 1, 0, 0]).is_err());
}

#[test]
fn trailing_bytes_after_a_request_are_ignored() {
    // Clients of later versions may append fields; ZooKeeper reads what it knows.
    let b = cat(&[&int(1), &int(3), &int(2), b"/a", &[0], b"extra"]);
    let (_, body) = Request::decode(&b).expect("header");
    assert_eq!(
        body,
        Ok(Request::Exists(ExistsRequest {
            path: "/a".into(),
            watch: false
        }))
    );
}

#[test]
fn unknown_and_server_only_types_decode_as_unknown() {
    for ty in [10, 23, 99, 108, -2, i32::MAX, 0, 20, -10, -1] {
        let b = cat(&[&int(1), &int(ty)]);
        assert_eq!(
            Request::decode(&b).expect("header").1,
            Ok(Request::Unknown(ty))
        );
    }
}

#[test]
fn create_ttl_reads_the_ttl_and_other_creates_do_not() {
    let body = cat(&[
        &int(2),
        b"/t",
        &int(0),
        &int(0),
        &int(5),
        &60_000i64.to_be_bytes(),
    ]);
    let ttl = Request::decode(&cat(&[&int(1), &int(21), &body]))
        .unwrap()
        .1;
    let Ok(Request::Create(CreateOp { opcode, ttl, .. })) = ttl else {
        panic!("{ttl:?}")
    };
    assert_eq!((opcode, ttl), (Some(OpCode::CreateTtl), 60_000));
    // The same bytes as a plain create: the ttl is trailing, ignored, and the op carries
    // -1, as PrepRequestProcessor.pRequest2TxnCreate sets it for every other create.
    let plain = Request::decode(&cat(&[&int(1), &int(1), &body])).unwrap().1;
    let Ok(Request::Create(CreateOp { opcode, ttl, .. })) = plain else {
        panic!("{plain:?}")
    };
    assert_eq!((opcode, ttl), (Some(OpCode::Create), -1));
}

// ---- the handshake ----

#[test]
fn connect_with_and_without_the_read_only_byte() {
    let base = cat(&[
        &int(0),
        &0i64.to_be_bytes(),
        &int(30_000),
        &0i64.to_be_bytes(),
        &int(16),
        &[0; 16],
    ]);
    assert_eq!(base.len(), 44);
    let c = Connect::decode(&base).expect("3.2 client");
    assert!(!c.has_read_only && !c.read_only);
    let c = Connect::decode(&cat(&[&base, &[1]])).expect("read-only client");
    assert!(c.has_read_only && c.read_only);
    // Bytes after the readOnly byte are ignored, as ZooKeeper ignores them.
    let c = Connect::decode(&cat(&[&base, &[0, 9, 9]])).expect("longer");
    assert!(c.has_read_only && !c.read_only);
    for n in 0..44 {
        assert!(Connect::decode(&base[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn connect_reply_with_and_without_the_read_only_byte() {
    let base = cat(&[&int(0), &int(4000), &5i64.to_be_bytes(), &int(16), &[7; 16]]);
    assert_eq!(base.len(), 36);
    assert_eq!(ConnectReply::decode(&base).unwrap().read_only, None);
    assert_eq!(
        ConnectReply::decode(&cat(&[&base, &[0]]))
            .unwrap()
            .read_only,
        Some(false)
    );
    assert_eq!(
        ConnectReply::decode(&cat(&[&base, &[1]]))
            .unwrap()
            .read_only,
        Some(true)
    );
    for n in 0..36 {
        assert!(ConnectReply::decode(&base[..n]).is_err(), "prefix {n}");
    }
}

// ---- truncation ----

/// Every proper prefix of a request payload fails to decode, and none panics.
fn assert_every_prefix_fails(payload: &[u8], what: &str) {
    for n in 0..payload.len() {
        match Request::decode(&payload[..n]) {
            Err(_) | Ok((_, Err(_))) => {}
            Ok((_, Ok(r))) => panic!("{what}: prefix of {n} bytes decoded as {r:?}"),
        }
    }
}

#[test]
fn golden_requests_truncated_anywhere_fail() {
    for session in SESSIONS {
        for (i, f) in fixture(session, "c2s").iter().enumerate() {
            let payload = &f.bytes[4..];
            let what = format!("{session} #{i} {}", f.label);
            if f.label == "connect" {
                // 44 bytes is a whole pre-3.3 handshake; anything shorter is not.
                for n in 0..44 {
                    assert!(Connect::decode(&payload[..n]).is_err(), "{what}: {n}");
                }
            } else {
                assert_every_prefix_fails(payload, &what);
            }
        }
    }
}

#[test]
fn golden_replies_truncated_anywhere_fail() {
    for session in SESSIONS {
        for (i, f) in fixture(session, "s2c").iter().enumerate() {
            let payload = &f.bytes[4..];
            let what = format!("{session} #{i} {}", f.label);
            if f.label == "connect_response" {
                for n in 0..36 {
                    assert!(ConnectReply::decode(&payload[..n]).is_err(), "{what}: {n}");
                }
                continue;
            }
            for n in 0..16 {
                assert!(Reply::decode(&payload[..n]).is_err(), "{what}: {n}");
            }
            if f.label == "multi" || f.label == "multiRead" {
                for n in 16..payload.len() {
                    let r = Reply::decode(&payload[..n]).expect("header");
                    assert!(r.multi().is_err(), "{what}: {n}");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn generated_requests_truncated_anywhere_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let req = Request::gen(&mut Src::new(&bytes));
        let mut frame = Vec::new();
        req.encode_frame(3, &mut frame);
        assert_every_prefix_fails(&frame[4..], &format!("{req:?}"));
        // And as a stream: the frame is incomplete until its last byte.
        for n in 0..frame.len() {
            prop_assert_eq!(check_frame(&frame[..n], JUTE_MAXBUFFER_DEFAULT), Ok(None));
        }
    }
}

// ---- framing ----

#[test]
fn check_frame_needs_the_whole_length_prefix() {
    for n in 0..4 {
        assert_eq!(check_frame(&[0xff; 3][..n], 100), Ok(None));
    }
    assert_eq!(check_frame(&int(0), 100), Ok(Some(0)));
}

#[test]
fn check_frame_at_jute_maxbuffer() {
    let max = JUTE_MAXBUFFER_DEFAULT;
    assert_eq!(max, 0xfffff);
    // Exactly jute.maxbuffer: accepted, complete once every byte is there.
    let mut buf = int(max as i32).to_vec();
    buf.resize(4 + max - 1, 0);
    assert_eq!(check_frame(&buf, max), Ok(None));
    buf.push(0);
    assert_eq!(check_frame(&buf, max), Ok(Some(max)));
    // A following frame's bytes do not matter.
    buf.extend_from_slice(&int(-1));
    assert_eq!(check_frame(&buf, max), Ok(Some(max)));
    // One more: refused from the prefix alone, before any payload arrives.
    assert_eq!(
        check_frame(&int(max as i32 + 1), max),
        Err(FrameError::TooLarge { len: max + 1, max })
    );
    // Negative: refused.
    for len in [-1, -2, i32::MIN] {
        assert_eq!(
            check_frame(&int(len), max),
            Err(FrameError::Negative { len })
        );
    }
}
