//! Round trips: for every record of zookeeper.jute, every request type, multi requests
//! and responses, the handshake both ways and notifications, encoding then decoding
//! gives back the value, and the frame checks out whole.

#[path = "support/gen.rs"]
mod gen;

use ferrokeeper_net::client::{encode_connect, encode_request, encode_request_raw};
use ferrokeeper_net::codes::xid;
use ferrokeeper_net::frame::{check_frame, write_reply, JUTE_MAXBUFFER_DEFAULT};
use ferrokeeper_net::records::{ReplyHeader, WatcherEvent};
use ferrokeeper_net::request::{Connect, Request};
use ferrokeeper_net::response::{
    decode_multi_response, encode_connect_response, encode_multi_response, write_notification,
    ConnectReply, MultiResult, Reply,
};
use ferrokeeper_net::{Decode, Encode, OpCode, Reader};
use gen::{Gen, RecordVisitor, Src};
use proptest::prelude::*;

fn steering() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..400)
}

/// The payload of the one whole frame in `buf`.
fn whole_frame(buf: &[u8]) -> &[u8] {
    let n = check_frame(buf, JUTE_MAXBUFFER_DEFAULT)
        .expect("frame length")
        .expect("frame complete");
    assert_eq!(n + 4, buf.len(), "one frame exactly");
    &buf[4..]
}

struct RoundTrip<'a>(&'a [u8]);

impl RecordVisitor for RoundTrip<'_> {
    fn visit<T>(&mut self, name: &str)
    where
        T: Gen + Encode + Decode + PartialEq + std::fmt::Debug + Default,
    {
        let value = T::gen(&mut Src::new(self.0));
        let bytes = value.to_bytes();
        assert!(
            bytes.len() >= T::ENCODED_BYTES_MIN,
            "{name}: shorter than its minimum"
        );
        let back = T::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, value, "{name}");
    }
}

proptest! {
    /// zookeeper.jute: every record decodes from its own encoding to the same value.
    #[test]
    fn every_record_round_trips(bytes in steering()) {
        gen::for_each_record(&mut RoundTrip(&bytes));
    }

    /// Every request type (`ZooDefs.OpCode`), framed by the client encoder and read by
    /// the server decoder.
    #[test]
    fn every_request_round_trips(bytes in steering()) {
        let mut s = Src::new(&bytes);
        let req = Request::gen(&mut s);
        let xid = i32::gen(&mut s);
        let mut frame = Vec::new();
        req.encode_frame(xid, &mut frame);
        let (header, body) = Request::decode(whole_frame(&frame)).expect("header");
        prop_assert_eq!(header.xid, xid);
        prop_assert_eq!(header.r#type, req.header_type());
        prop_assert_eq!(body.expect("body"), req.clone());

        // encode_request writes the same frame from a header type and a body.
        let mut body = Vec::new();
        req.encode_body(&mut body);
        let mut again = Vec::new();
        match OpCode::from_i32(req.header_type()) {
            Some(op) => encode_request(xid, op, Some(&Raw(body)), &mut again),
            None => encode_request_raw(xid, req.header_type(), Some(&Raw(body)), &mut again),
        }
        prop_assert_eq!(again, frame);
    }

    /// `MultiResponse`: results in order, terminated, read back the same.
    #[test]
    fn multi_response_round_trips(bytes in steering()) {
        let mut s = Src::new(&bytes);
        let results = Vec::<MultiResult>::gen(&mut s);
        let mut body = Vec::new();
        encode_multi_response(&results, &mut body);
        let mut r = Reader::new(&body);
        prop_assert_eq!(decode_multi_response(&mut r).expect("decode"), results.clone());
        prop_assert_eq!(r.remaining(), 0);

        // And inside a reply frame.
        let mut frame = Vec::new();
        write_reply(&mut frame, 7, 42, 0, Some(&Raw(body)));
        let reply = Reply::decode(whole_frame(&frame)).expect("reply");
        prop_assert_eq!(reply.header, ReplyHeader { xid: 7, zxid: 42, err: 0 });
        prop_assert_eq!(reply.multi().expect("multi"), results);
    }

    /// The handshake request, with and without the readOnly byte.
    #[test]
    fn connect_round_trips(bytes in steering()) {
        let connect = Connect::gen(&mut Src::new(&bytes));
        let mut frame = Vec::new();
        encode_connect(&connect, &mut frame);
        let payload = whole_frame(&frame);
        let base = 4 + 8 + 4 + 8 + 4 + connect.request.passwd.len();
        prop_assert_eq!(payload.len(), base + usize::from(connect.has_read_only));
        prop_assert_eq!(Connect::decode(payload).expect("decode"), connect);
    }

    /// The handshake answer, with and without the readOnly byte.
    #[test]
    fn connect_reply_round_trips(bytes in steering()) {
        let reply = ConnectReply::gen(&mut Src::new(&bytes));
        let mut frame = Vec::new();
        encode_connect_response(&reply.response, reply.read_only, &mut frame);
        prop_assert_eq!(ConnectReply::decode(whole_frame(&frame)).expect("decode"), reply);
    }

    /// Notifications: xid −1, err 0, the zxid given, the event.
    #[test]
    fn notification_round_trips(bytes in steering()) {
        let mut s = Src::new(&bytes);
        let event = WatcherEvent::gen(&mut s);
        let zxid = i64::gen(&mut s);
        let mut frame = Vec::new();
        write_notification(&mut frame, zxid, &event);
        let reply = Reply::decode(whole_frame(&frame)).expect("reply");
        prop_assert!(reply.is_notification());
        prop_assert_eq!(reply.header, ReplyHeader { xid: xid::NOTIFICATION, zxid, err: 0 });
        prop_assert_eq!(reply.record::<WatcherEvent>().expect("event"), event);
    }
}

/// Already-encoded bytes passed as a body.
struct Raw(Vec<u8>);
impl Encode for Raw {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

struct MinBytes;

impl RecordVisitor for MinBytes {
    fn visit<T>(&mut self, name: &str)
    where
        T: Gen + Encode + Decode + PartialEq + std::fmt::Debug + Default,
    {
        // The default record has empty strings, buffers and vectors: the shortest encoding.
        assert_eq!(
            T::default().to_bytes().len(),
            T::ENCODED_BYTES_MIN,
            "{name}: ENCODED_BYTES_MIN"
        );
    }
}

#[test]
fn encoded_bytes_min_is_the_shortest_encoding() {
    gen::for_each_record(&mut MinBytes);
}

/// The generator lists every record of records.rs, so the round trip covers them all.
#[test]
fn every_record_in_records_rs_has_a_generator() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/records.rs"))
        .expect("read records.rs");
    let mut declared: Vec<&str> = src
        .split("pub struct ")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("")
        })
        .collect();
    declared.sort_unstable();
    let mut generated = gen::RECORD_NAMES.to_vec();
    generated.sort_unstable();
    assert_eq!(declared, generated);
}

/// The request generator reaches every request type the decoder knows.
#[test]
fn request_generator_covers_every_opcode() {
    let mut seen = std::collections::BTreeSet::new();
    for first in 0..=255u8 {
        for second in [0u8, 1, 2, 3] {
            let req = Request::gen(&mut Src::new(&[first, second]));
            seen.insert(req.header_type());
        }
    }
    let known = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101,
        102, 103, 104, 106, 107, -10, -11, -1,
    ];
    for op in known {
        assert!(seen.contains(&op), "opcode {op} never generated");
    }
}
