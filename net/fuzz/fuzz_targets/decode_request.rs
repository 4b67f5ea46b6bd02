//! Arbitrary bytes into everything that decodes what a peer sends: framing, the
//! handshake both ways, requests (multi included) and replies (multi results included).
//!
//! Checked: no decoder panics, and whatever decodes re-encodes to bytes that decode to
//! the same value (so the encoders agree with the decoders on every accepted input,
//! not only on the values our generators think of).
#![no_main]

use ferrokeeper_net::client::encode_connect;
use ferrokeeper_net::frame::{check_frame, JUTE_MAXBUFFER_DEFAULT};
use ferrokeeper_net::request::{Connect, Request};
use ferrokeeper_net::response::{
    decode_multi_response, encode_connect_response, encode_multi_response, ConnectReply, Reply,
};
use ferrokeeper_net::Reader;
use libfuzzer_sys::fuzz_target;

fn connect(payload: &[u8]) {
    if let Ok(c) = Connect::decode(payload) {
        let mut out = Vec::new();
        encode_connect(&c, &mut out);
        assert_eq!(Connect::decode(&out[4..]), Ok(c));
    }
}

fn connect_reply(payload: &[u8]) {
    if let Ok(c) = ConnectReply::decode(payload) {
        let mut out = Vec::new();
        encode_connect_response(&c.response, c.read_only, &mut out);
        assert_eq!(ConnectReply::decode(&out[4..]), Ok(c));
    }
}

fn request(payload: &[u8]) {
    if let Ok((header, Ok(req))) = Request::decode(payload) {
        let mut out = Vec::new();
        req.encode_frame(header.xid, &mut out);
        let (again, body) = Request::decode(&out[4..]).expect("our own header");
        assert_eq!(again.xid, header.xid);
        assert_eq!(body, Ok(req));
    }
}

fn reply(payload: &[u8]) {
    if let Ok(r) = Reply::decode(payload) {
        let _ = r.is_notification();
        if let Ok(results) = decode_multi_response(&mut Reader::new(r.body)) {
            let mut out = Vec::new();
            encode_multi_response(&results, &mut out);
            assert_eq!(decode_multi_response(&mut Reader::new(&out)), Ok(results));
        }
    }
}

fn everything(payload: &[u8]) {
    connect(payload);
    connect_reply(payload);
    request(payload);
    reply(payload);
}

fuzz_target!(|data: &[u8]| {
    // As a stream: frames one after another, each checked before it is decoded.
    let mut rest = data;
    for max in [JUTE_MAXBUFFER_DEFAULT, 64] {
        let _ = check_frame(rest, max);
    }
    while let Ok(Some(n)) = check_frame(rest, JUTE_MAXBUFFER_DEFAULT) {
        everything(&rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
    // And the whole input as one unframed payload.
    everything(data);
});
