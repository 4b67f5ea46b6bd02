//! The peer wire format between ensemble servers, sans-IO.
//!
//! Servers of one ensemble talk over TCP on ZooKeeper's quorum port. Each connection
//! carries frames one way only (the dialer sends, the acceptor receives), so the format
//! is a handshake followed by frames, and nothing ever comes back.
//!
//! ## The handshake (28 bytes, integers little-endian)
//!
//! | offset | bytes | field                                              |
//! |-------:|------:|----------------------------------------------------|
//! |      0 |     8 | magic, ASCII `FKPEER01`                            |
//! |      8 |     4 | format version (`u32`), [`VERSION`]                 |
//! |     12 |     8 | sender's server id (`u64`, the N of `server.N`)     |
//! |     20 |     8 | receiver's server id (`u64`) the sender meant to reach |
//!
//! The magic and the version (the first 12 bytes) keep their place in every future
//! version, so a server refuses a peer of another version before reading further.
//!
//! ## A frame (5 bytes of header, then the payload)
//!
//! | offset | bytes | field                                            |
//! |-------:|------:|--------------------------------------------------|
//! |      0 |     4 | payload length in bytes (`u32`), kind excluded   |
//! |      4 |     1 | kind: what the payload is (the caller's numbering) |
//! |      5 |   len | payload, opaque here                             |
//!
//! The [`Decoder`] refuses a length above its maximum before any payload byte arrives,
//! so a connection never buffers more than one maximal frame plus one read.
//!
//! It must never: panic on any input, or allocate more than a frame's header allows.

/// The first eight bytes of every peer connection.
pub const MAGIC: [u8; 8] = *b"FKPEER01";

/// The format version this build speaks.
pub const VERSION: u32 = 1;

/// Where the magic starts in the handshake.
pub const HANDSHAKE_MAGIC_OFFSET: usize = 0;
/// Where the version starts in the handshake.
pub const HANDSHAKE_VERSION_OFFSET: usize = 8;
/// Where the sender's id starts in the handshake.
pub const HANDSHAKE_FROM_OFFSET: usize = 12;
/// Where the receiver's id starts in the handshake.
pub const HANDSHAKE_TO_OFFSET: usize = 20;
/// Bytes of a whole handshake.
pub const HANDSHAKE_BYTES: usize = 28;

/// Where the payload length starts in a frame.
pub const FRAME_LEN_OFFSET: usize = 0;
/// Where the kind byte is in a frame.
pub const FRAME_KIND_OFFSET: usize = 4;
/// Bytes of a frame's header (length and kind); the payload follows.
pub const FRAME_HEADER_BYTES: usize = 5;

/// What a connection opens with: who is speaking, and to whom it meant to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The format version the sender speaks.
    pub version: u32,
    /// The sender's server id.
    pub from: u64,
    /// The server id the sender meant to reach (a stale address book shows up here).
    pub to: u64,
}

impl Handshake {
    /// This build's handshake from `from` to `to`.
    pub fn new(from: u64, to: u64) -> Self {
        Handshake {
            version: VERSION,
            from,
            to,
        }
    }

    /// Appends the handshake's 28 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.from.to_le_bytes());
        out.extend_from_slice(&self.to.to_le_bytes());
    }

    /// Whether the receiver `me`, which knows the peers `is_peer` accepts, should take
    /// this connection. The version was already checked by the [`Decoder`].
    pub fn check(&self, me: u64, is_peer: impl Fn(u64) -> bool) -> Result<(), HandshakeRefusal> {
        if self.to != me {
            return Err(HandshakeRefusal::WrongReceiver { meant: self.to, me });
        }
        if self.from == me || !is_peer(self.from) {
            return Err(HandshakeRefusal::UnknownPeer { from: self.from });
        }
        Ok(())
    }
}

/// Why an acceptor refuses a well-formed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRefusal {
    /// The sender meant another server: its configuration names this address for a
    /// different id than ours.
    #[error("the peer meant to reach server {meant}, this is server {me}")]
    WrongReceiver {
        /// The id the sender meant to reach.
        meant: u64,
        /// This server's id.
        me: u64,
    },
    /// The sender's id is not a configured peer (or is our own).
    #[error("server {from} is not a configured peer")]
    UnknownPeer {
        /// The id the sender claimed.
        from: u64,
    },
}

/// One frame: a kind byte the caller assigns and an opaque payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is.
    pub kind: u8,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Appends this frame's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_frame(out, self.kind, &self.payload);
    }
}

/// Appends one frame to `out`.
///
/// # Panics
/// If the payload is longer than `u32::MAX` bytes: the caller bounds payloads by a
/// maximum frame size far below that.
pub fn encode_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a peer frame's payload fits in u32");
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Bytes one frame with `payload_bytes` of payload takes on the wire.
pub fn frame_bytes(payload_bytes: usize) -> usize {
    FRAME_HEADER_BYTES.saturating_add(payload_bytes)
}

/// Why a peer's byte stream is refused. The connection is closed on any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerWireError {
    /// The connection did not open with [`MAGIC`]: not a ferrokeeper peer (or a
    /// ZooKeeper server's quorum protocol).
    #[error("bad magic {found:02x?}")]
    BadMagic {
        /// The eight bytes found instead.
        found: [u8; 8],
    },
    /// The peer speaks another format version.
    #[error("unsupported peer format version {found} (this server speaks {VERSION})")]
    UnsupportedVersion {
        /// The version the peer sent.
        found: u32,
    },
    /// A frame's payload length exceeds the maximum.
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The length as read.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
}

/// What the [`Decoder`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The connection's handshake (always first, exactly once).
    Handshake(Handshake),
    /// One frame.
    Frame(Frame),
}

/// An incremental decoder for one connection: bytes in (in any pieces), the handshake
/// and then frames out.
///
/// Invariant: `start <= buf.len()`; bytes before `start` were consumed.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_frame_bytes: usize,
    handshake_seen: bool,
    /// Set on the first error; every later call returns it again.
    failed: Option<PeerWireError>,
}

impl Decoder {
    /// A decoder that expects a handshake, then frames of at most `max_frame_bytes` of
    /// payload each.
    pub fn new(max_frame_bytes: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_frame_bytes,
            handshake_seen: false,
            failed: None,
        }
    }

    /// A decoder for a stream without a handshake: frames only.
    pub fn frames_only(max_frame_bytes: usize) -> Self {
        Decoder {
            handshake_seen: true,
            ..Decoder::new(max_frame_bytes)
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next handshake or frame, `Ok(None)` when more bytes are needed, or the reason
    /// the stream is refused (sticky: later calls return it again).
    pub fn next_event(&mut self) -> Result<Option<Event>, PeerWireError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.decode();
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Event>, PeerWireError> {
        let rest = &self.buf[self.start..];
        if !self.handshake_seen {
            let Some(h) = decode_handshake(rest)? else {
                return Ok(None);
            };
            self.start += HANDSHAKE_BYTES;
            self.handshake_seen = true;
            return Ok(Some(Event::Handshake(h)));
        }
        let Some(len) = check_frame(rest, self.max_frame_bytes)? else {
            return Ok(None);
        };
        let kind = rest[FRAME_KIND_OFFSET];
        let payload = rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len].to_vec();
        self.start += FRAME_HEADER_BYTES + len;
        Ok(Some(Event::Frame(Frame { kind, payload })))
    }

    /// Drops consumed bytes once they are worth moving, so the buffer stays about one
    /// frame plus one read long.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// The handshake at the start of `buf`, `Ok(None)` if incomplete. The magic and version
/// are checked as soon as their bytes are present.
pub fn decode_handshake(buf: &[u8]) -> Result<Option<Handshake>, PeerWireError> {
    let magic_len = buf.len().min(MAGIC.len());
    if buf[..magic_len] != MAGIC[..magic_len] {
        let mut found = [0u8; 8];
        found[..magic_len].copy_from_slice(&buf[..magic_len]);
        return Err(PeerWireError::BadMagic { found });
    }
    let Some(version) = le_u32(buf, HANDSHAKE_VERSION_OFFSET) else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(PeerWireError::UnsupportedVersion { found: version });
    }
    let (Some(from), Some(to)) = (
        le_u64(buf, HANDSHAKE_FROM_OFFSET),
        le_u64(buf, HANDSHAKE_TO_OFFSET),
    ) else {
        return Ok(None);
    };
    Ok(Some(Handshake { version, from, to }))
}

/// The payload length of the whole frame at the start of `buf`, `Ok(None)` if more bytes
/// are needed. An oversized length is refused from its header alone.
pub fn check_frame(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, PeerWireError> {
    let Some(len) = le_u32(buf, FRAME_LEN_OFFSET) else {
        return Ok(None);
    };
    let too_large = PeerWireError::FrameTooLarge {
        len: u64::from(len),
        max: max_frame_bytes,
    };
    let len = usize::try_from(len).map_err(|_| too_large)?;
    if len > max_frame_bytes {
        return Err(too_large);
    }
    let have = buf.len().saturating_sub(FRAME_HEADER_BYTES);
    Ok((buf.len() >= FRAME_HEADER_BYTES && have >= len).then_some(len))
}

fn le_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at + 4)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    Some(u32::from_le_bytes(b))
}

fn le_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at + 8)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Some(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `bytes` in pieces of `piece` bytes and collects every event until the first
    /// error (if any).
    fn decode_all(bytes: &[u8], piece: usize, max: usize) -> (Vec<Event>, Option<PeerWireError>) {
        let mut d = Decoder::new(max);
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            d.push(chunk);
            loop {
                match d.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        (events, None)
    }

    fn stream(h: Handshake, frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        h.encode(&mut out);
        for f in frames {
            f.encode(&mut out);
        }
        out
    }

    #[test]
    fn the_handshake_is_laid_out_as_documented() {
        let mut out = Vec::new();
        Handshake::new(3, 0x0102_0304_0506_0708).encode(&mut out);
        assert_eq!(out.len(), HANDSHAKE_BYTES);
        assert_eq!(&out[HANDSHAKE_MAGIC_OFFSET..8], b"FKPEER01");
        assert_eq!(&out[HANDSHAKE_VERSION_OFFSET..12], &[1, 0, 0, 0]);
        assert_eq!(&out[HANDSHAKE_FROM_OFFSET..20], &[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[HANDSHAKE_TO_OFFSET..28], &[8, 7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn a_frame_is_laid_out_as_documented() {
        let mut out = Vec::new();
        encode_frame(&mut out, 9, b"abc");
        assert_eq!(out, [3, 0, 0, 0, 9, b'a', b'b', b'c']);
        assert_eq!(out.len(), frame_bytes(3));
    }

    #[test]
    fn byte_by_byte_decoding_yields_the_handshake_then_frames() {
        let frames = vec![
            Frame {
                kind: 1,
                payload: vec![],
            },
            Frame {
                kind: 2,
                payload: b"hello".to_vec(),
            },
        ];
        let bytes = stream(Handshake::new(1, 2), &frames);
        let (events, err) = decode_all(&bytes, 1, 16);
        assert_eq!(err, None);
        assert_eq!(events[0], Event::Handshake(Handshake::new(1, 2)));
        assert_eq!(
            events[1..],
            frames.into_iter().map(Event::Frame).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_wrong_magic_is_refused_at_its_first_byte() {
        let (events, err) = decode_all(b"G", 1, 16);
        assert!(events.is_empty());
        let mut found = [0u8; 8];
        found[0] = b'G';
        assert_eq!(err, Some(PeerWireError::BadMagic { found }));
    }

    #[test]
    fn another_version_is_refused_before_the_ids() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        let (_, err) = decode_all(&bytes, 3, 16);
        assert_eq!(err, Some(PeerWireError::UnsupportedVersion { found: 2 }));
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header_and_the_error_sticks() {
        let mut bytes = stream(Handshake::new(1, 2), &[]);
        bytes.extend_from_slice(&17u32.to_le_bytes());
        let mut d = Decoder::new(16);
        d.push(&bytes);
        assert!(matches!(d.next_event(), Ok(Some(Event::Handshake(_)))));
        let want = PeerWireError::FrameTooLarge { len: 17, max: 16 };
        assert_eq!(d.next_event(), Err(want));
        d.push(&[0; 40]);
        assert_eq!(d.next_event(), Err(want));
    }

    #[test]
    fn a_frame_of_exactly_the_maximum_is_accepted() {
        let f = Frame {
            kind: 7,
            payload: vec![0xab; 16],
        };
        let (events, err) = decode_all(
            &stream(Handshake::new(1, 2), std::slice::from_ref(&f)),
            5,
            16,
        );
        assert_eq!(err, None);
        assert_eq!(events[1], Event::Frame(f));
    }

    #[test]
    fn handshake_checks_name_the_receiver_and_known_peers() {
        let known = |id| id == 1 || id == 3;
        assert_eq!(Handshake::new(1, 2).check(2, known), Ok(()));
        assert_eq!(
            Handshake::new(1, 3).check(2, known),
            Err(HandshakeRefusal::WrongReceiver { meant: 3, me: 2 })
        );
        assert_eq!(
            Handshake::new(5, 2).check(2, known),
            Err(HandshakeRefusal::UnknownPeer { from: 5 })
        );
        assert_eq!(
            Handshake::new(2, 2).check(2, |_| true),
            Err(HandshakeRefusal::UnknownPeer { from: 2 })
        );
    }

    #[test]
    fn frames_only_skips_the_handshake() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 4, b"x");
        let mut d = Decoder::frames_only(8);
        d.push(&bytes);
        assert_eq!(
            d.next_event(),
            Ok(Some(Event::Frame(Frame {
                kind: 4,
                payload: b"x".to_vec()
            })))
        );
        assert_eq!(d.next_event(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(kind, payload)| Frame { kind, payload })
    }

    proptest! {
        /// decode(encode(x)) == x, whatever pieces the bytes arrive in.
        #[test]
        fn decode_inverts_encode(
            from in any::<u64>(),
            to in any::<u64>(),
            frames in proptest::collection::vec(arb_frame(), 0..20),
            piece in 1usize..400,
        ) {
            let h = Handshake::new(from, to);
            let (events, err) = decode_all(&stream(h, &frames), piece, 300);
            prop_assert_eq!(err, None);
            prop_assert_eq!(&events[0], &Event::Handshake(h));
            let got: Vec<Event> = events[1..].to_vec();
            let want: Vec<Event> = frames.into_iter().map(Event::Frame).collect();
            prop_assert_eq!(got, want);
        }

        /// Any prefix of a valid stream decodes, without error, to a prefix of its events:
        /// a connection cut mid-frame loses only the frames it had not finished.
        #[test]
        fn a_truncated_stream_yields_a_prefix(
            frames in proptest::collection::vec(arb_frame(), 0..10),
            cut in any::<proptest::sample::Index>(),
            piece in 1usize..100,
        ) {
            let h = Handshake::new(4, 5);
            let bytes = stream(h, &frames);
            let cut = cut.index(bytes.len() + 1);
            let (events, err) = decode_all(&bytes[..cut], piece, 300);
            prop_assert_eq!(err, None);
            let mut want = vec![Event::Handshake(h)];
            want.extend(frames.into_iter().map(Event::Frame));
            prop_assert!(events.len() <= want.len());
            prop_assert_eq!(&events[..], &want[..events.len()]);
        }

        /// One corrupted byte in a valid stream never panics, and never yields a frame
        /// above the maximum (a shortened length may split a frame into several).
        #[test]
        fn a_corrupted_byte_never_panics(
            frames in proptest::collection::vec(arb_frame(), 1..10),
            at in any::<proptest::sample::Index>(),
            xor in 1u8..=255,
            piece in 1usize..100,
        ) {
            let mut bytes = stream(Handshake::new(4, 5), &frames);
            let at = at.index(bytes.len());
            bytes[at] ^= xor;
            let (events, _) = decode_all(&bytes, piece, 300);
            for e in events {
                if let Event::Frame(f) = e {
                    prop_assert!(f.payload.len() <= 300);
                }
            }
        }

        /// Arbitrary bytes, with or without a valid handshake before them, never panic and
        /// never yield a frame above the maximum.
        #[test]
        fn arbitrary_bytes_never_panic(
            valid_start in any::<bool>(),
            junk in proptest::collection::vec(any::<u8>(), 0..2000),
            piece in 1usize..300,
            max in 0usize..600,
        ) {
            let mut bytes = Vec::new();
            if valid_start {
                Handshake::new(1, 2).encode(&mut bytes);
            }
            bytes.extend_from_slice(&junk);
            let (events, _) = decode_all(&bytes, piece, max);
            for e in events {
                if let Event::Frame(f) = e {
                    prop_assert!(f.payload.len() <= max);
                }
            }
        }
    }
}
