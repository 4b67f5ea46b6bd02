//! The on-disk format of the transaction log, mirroring `storage/FORMAT.md` byte by byte.
//!
//! Everything here is pure: bytes in, values out. All integers are **little-endian**.
//! Nothing in this module touches a file.

use xxhash_rust::xxh3::xxh3_64;

/// Prefix of every segment file name; the rest is the first zxid in 16 lowercase hex digits.
pub const SEGMENT_NAME_PREFIX: &str = "fk-log.";
/// Number of hex digits after [`SEGMENT_NAME_PREFIX`].
pub const SEGMENT_NAME_HEX_DIGITS: usize = 16;

/// Magic at byte 0 of every segment: "ferrokeeper txn log".
pub const SEGMENT_MAGIC: [u8; 8] = *b"FKTXNLOG";

/// Prefix of every Raft log segment file name (`storage/FORMAT.md`, "Raft log").
pub const RAFT_SEGMENT_NAME_PREFIX: &str = "fk-raft.";
/// Magic at byte 0 of every Raft log segment: "ferrokeeper raft log".
pub const RAFT_SEGMENT_MAGIC: [u8; 8] = *b"FKRAFTLG";

/// Which log a segment belongs to. The transaction log and the Raft log share the segment
/// format; a distinct magic and file-name prefix keep one's segments from ever being read
/// as the other's (a wrong magic is a bad header, a wrong prefix is not listed at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentKind {
    /// Bytes 0..8 of every segment header.
    pub magic: [u8; 8],
    /// File names are this prefix and 16 lowercase hex digits of the first key.
    pub name_prefix: &'static str,
}

/// The transaction log's segments, keyed by zxid.
pub const TXN_SEGMENTS: SegmentKind = SegmentKind {
    magic: SEGMENT_MAGIC,
    name_prefix: SEGMENT_NAME_PREFIX,
};
/// The Raft log's segments, keyed by Raft index.
pub const RAFT_SEGMENTS: SegmentKind = SegmentKind {
    magic: RAFT_SEGMENT_MAGIC,
    name_prefix: RAFT_SEGMENT_NAME_PREFIX,
};
/// The file a segment is kept in (`storage/FORMAT.md`, "Compressed segments").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentForm {
    /// `fk-log.<16 hex>`: the segment as the writer wrote it.
    Plain,
    /// `fk-log.<16 hex>.zst`: compressed, whole.
    Compressed,
    /// `fk-log.<16 hex>.zst.tmp`: a compression under way (or cut short by a crash).
    Compressing,
    /// `fk-log.<16 hex>.tmp`: a decompression under way (or cut short by a crash).
    Decompressing,
}

impl SegmentForm {
    /// The file name of the segment `plain` (its plain name) in this form.
    pub fn file_name(self, plain: &str) -> String {
        match self {
            SegmentForm::Plain => plain.to_string(),
            SegmentForm::Compressed => format!("{plain}{COMPRESSED_SUFFIX}"),
            SegmentForm::Compressing => format!("{plain}{COMPRESSING_SUFFIX}"),
            SegmentForm::Decompressing => format!("{plain}{DECOMPRESSING_SUFFIX}"),
        }
    }
}

/// The newest format version this code reads. It writes version 1 for a header without
/// flags and version 2 for one with [`FLAG_PREV_UNSEALED`], so that a log written with
/// `force_sync` on stays readable by version-1 code (`storage/FORMAT.md`, "Versions").
pub const FORMAT_VERSION: u32 = 2;

/// Header flag (version 2): when this segment was started, the previous segment's seal (its
/// fdatasync, with `force_sync` off) was still running on the log's helper thread. Until a
/// frame of this segment carries a `synced_through` past the header (the helper synced this
/// segment after that seal), a torn tail in the previous segment is a crash's doing, not
/// corruption (`storage/FORMAT.md`, "Roll" and "Recovery").
pub const FLAG_PREV_UNSEALED: u32 = 1;

/// The flags a version-2 header may carry.
const FLAGS_KNOWN: u32 = FLAG_PREV_UNSEALED;

// Segment header: one per file, at byte 0.
/// Offset of the magic (8 bytes).
pub const HEADER_MAGIC_OFFSET: usize = 0;
/// Offset of the format version (u32).
pub const HEADER_VERSION_OFFSET: usize = 8;
/// Offset of the flags (u32, must be zero in version 1; [`FLAG_PREV_UNSEALED`] in version 2).
pub const HEADER_FLAGS_OFFSET: usize = 12;
/// Offset of the first zxid (i64): the zxid of the segment's first record, also in the file name.
pub const HEADER_FIRST_ZXID_OFFSET: usize = 16;
/// Offset of the segment index (u64): 0 for the first segment a log ever had, +1 per roll.
pub const HEADER_SEGMENT_INDEX_OFFSET: usize = 24;
/// Offset of the previous segment's last zxid (i64), or -1 if the writer knew of none.
pub const HEADER_PREV_LAST_ZXID_OFFSET: usize = 32;
/// Offset of the header checksum (u64): xxh3-64 of bytes `[0, HEADER_CHECKSUM_OFFSET)`.
pub const HEADER_CHECKSUM_OFFSET: usize = 40;
/// Size of the segment header; the first record frame starts here.
pub const HEADER_BYTES: usize = 48;

// Record frame: repeated after the header, back to back, no padding.
/// Offset of the frame checksum (u64): xxh3-64 of bytes `[FRAME_LEN_OFFSET, FRAME_HEADER_BYTES + payload_len)`.
pub const FRAME_CHECKSUM_OFFSET: usize = 0;
/// Offset of the payload length (u32).
pub const FRAME_LEN_OFFSET: usize = 8;
/// Offset of `synced_through` (u32): the segment offset up to which the writer knew the
/// segment to be durable when it wrote this frame. Always `<=` the frame's own offset.
pub const FRAME_SYNCED_THROUGH_OFFSET: usize = 12;
/// Offset of the zxid (i64).
pub const FRAME_ZXID_OFFSET: usize = 16;
/// Size of the frame header; the payload follows.
pub const FRAME_HEADER_BYTES: usize = 24;

/// The largest segment a frame can address: `synced_through` and offsets are u32.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

// A compressed segment (`storage/FORMAT.md`, "Compressed segments"): a segment whose
// records are all covered by a snapshot, kept as `<segment name>.zst`.
/// Suffix of a compressed segment's name: `fk-log.<16 hex>.zst`.
pub const COMPRESSED_SUFFIX: &str = ".zst";
/// Suffix of a compressed segment being written: `fk-log.<16 hex>.zst.tmp`.
pub const COMPRESSING_SUFFIX: &str = ".zst.tmp";
/// Suffix of a segment being decompressed back to its plain name: `fk-log.<16 hex>.tmp`.
pub const DECOMPRESSING_SUFFIX: &str = ".tmp";
/// Magic at byte 0 of a compressed segment: "ferrokeeper log, zstd".
pub const ZST_MAGIC: [u8; 8] = *b"FKLOGZST";
/// The compressed segment's format version.
pub const ZST_VERSION: u32 = 1;
/// Offset of the magic (8 bytes).
pub const ZST_MAGIC_OFFSET: usize = 0;
/// Offset of the version (u32).
pub const ZST_VERSION_OFFSET: usize = 8;
/// Offset of the flags (u32, 0).
pub const ZST_FLAGS_OFFSET: usize = 12;
/// Offset of the plain segment's file length (u64): what it is restored to.
pub const ZST_SEGMENT_BYTES_OFFSET: usize = 16;
/// Offset of the number of bytes compressed (u64): the plain segment from offset 0 to
/// the end of its last record; every byte after it, to the file length, is zero.
pub const ZST_DATA_BYTES_OFFSET: usize = 24;
/// Offset of the zxid of the segment's last record (i64).
pub const ZST_LAST_ZXID_OFFSET: usize = 32;
/// Offset of the header checksum (u64): xxh3-64 of bytes `[0, ZST_CHECKSUM_OFFSET)`.
pub const ZST_CHECKSUM_OFFSET: usize = 40;
/// Size of the compressed segment's header; one zstd frame follows, to the end of the file.
pub const ZST_HEADER_BYTES: usize = 48;

/// A decoded, checksum-verified compressed segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZstHeader {
    /// Length of the plain segment file.
    pub segment_bytes: u64,
    /// Bytes of the plain segment that the zstd frame holds (from offset 0).
    pub data_bytes: u64,
    /// Zxid of the segment's last record.
    pub last_zxid: i64,
}

/// Encodes a compressed segment's header.
pub fn encode_zst_header(header: &ZstHeader) -> [u8; ZST_HEADER_BYTES] {
    let mut b = [0u8; ZST_HEADER_BYTES];
    b[ZST_MAGIC_OFFSET..ZST_MAGIC_OFFSET + 8].copy_from_slice(&ZST_MAGIC);
    put_u32(&mut b, ZST_VERSION_OFFSET, ZST_VERSION);
    put_u32(&mut b, ZST_FLAGS_OFFSET, 0);
    put_u64(&mut b, ZST_SEGMENT_BYTES_OFFSET, header.segment_bytes);
    put_u64(&mut b, ZST_DATA_BYTES_OFFSET, header.data_bytes);
    put_u64(&mut b, ZST_LAST_ZXID_OFFSET, header.last_zxid as u64);
    let checksum = xxh3_64(&b[..ZST_CHECKSUM_OFFSET]);
    put_u64(&mut b, ZST_CHECKSUM_OFFSET, checksum);
    b
}

/// Decodes and verifies a compressed segment's header; `Err((offset, reason))` names the
/// first bad field.
pub fn decode_zst_header(bytes: &[u8]) -> Result<ZstHeader, (usize, String)> {
    let Some(b) = bytes.get(..ZST_HEADER_BYTES) else {
        return Err((
            bytes.len(),
            "shorter than the compressed segment header".into(),
        ));
    };
    if b[ZST_MAGIC_OFFSET..ZST_MAGIC_OFFSET + 8] != ZST_MAGIC[..] {
        return Err((ZST_MAGIC_OFFSET, "bad magic".into()));
    }
    if get_u64(b, ZST_CHECKSUM_OFFSET) != xxh3_64(&b[..ZST_CHECKSUM_OFFSET]) {
        return Err((ZST_CHECKSUM_OFFSET, "header checksum mismatch".into()));
    }
    let version = get_u32(b, ZST_VERSION_OFFSET);
    if version != ZST_VERSION {
        return Err((
            ZST_VERSION_OFFSET,
            format!("version {version}, this build reads {ZST_VERSION}"),
        ));
    }
    if get_u32(b, ZST_FLAGS_OFFSET) != 0 {
        return Err((ZST_FLAGS_OFFSET, "unknown flags".into()));
    }
    let header = ZstHeader {
        segment_bytes: get_u64(b, ZST_SEGMENT_BYTES_OFFSET),
        data_bytes: get_u64(b, ZST_DATA_BYTES_OFFSET),
        last_zxid: get_u64(b, ZST_LAST_ZXID_OFFSET) as i64,
    };
    if header.segment_bytes > SEGMENT_BYTES_MAX
        || header.data_bytes < HEADER_BYTES as u64
        || header.data_bytes > header.segment_bytes
    {
        return Err((
            ZST_DATA_BYTES_OFFSET,
            format!(
                "{} bytes of data in a segment of {}",
                header.data_bytes, header.segment_bytes
            ),
        ));
    }
    Ok(header)
}

/// A decoded, checksum-verified segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version (`<= FORMAT_VERSION` once verified).
    pub version: u32,
    /// Flags: 0 in version 1; [`FLAG_PREV_UNSEALED`] or 0 in version 2.
    pub flags: u32,
    /// Zxid of the segment's first record.
    pub first_zxid: i64,
    /// 0 for the first segment of a log, +1 per roll.
    pub segment_index: u64,
    /// Last zxid of the previous segment when this one was created, or -1.
    pub prev_last_zxid: i64,
}

/// Why a header did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_BYTES`] bytes.
    Short,
    /// All [`HEADER_BYTES`] bytes are zero (a segment whose creation was interrupted).
    Zero,
    /// Magic does not match.
    Magic,
    /// Checksum does not match.
    Checksum,
    /// Checksum matches but flags are not zero (version 1) or not known (version 2).
    Flags,
    /// Checksum matches but the version is newer than this code reads.
    Version(u32),
}

/// Name of the segment whose first record has `first_zxid`.
pub fn segment_name(first_zxid: i64) -> String {
    TXN_SEGMENTS.segment_name(first_zxid)
}

/// Parses a segment file name. `None` if the name is not exactly `fk-log.<16 lowercase hex>`.
pub fn parse_segment_name(name: &str) -> Option<i64> {
    TXN_SEGMENTS.parse_segment_name(name)
}

/// Encodes a segment header.
pub fn encode_header(header: &SegmentHeader) -> [u8; HEADER_BYTES] {
    TXN_SEGMENTS.encode_header(header)
}

/// Decodes and verifies a segment header from the start of `bytes`.
pub fn decode_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    TXN_SEGMENTS.decode_header(bytes)
}

impl SegmentKind {
    /// Name of the segment whose first record has `first_key`.
    pub fn segment_name(&self, first_key: i64) -> String {
        assert!(first_key >= 0, "log keys are non-negative");
        format!("{}{:016x}", self.name_prefix, first_key as u64)
    }

    /// Name of the spare segment, prepared ahead of need (`storage/FORMAT.md`, "Roll"): the
    /// prefix without its dot and `-spare`, so that it is never listed as a segment.
    pub fn spare_name(&self) -> String {
        format!("{}-spare", self.name_prefix.trim_end_matches('.'))
    }

    /// Parses a segment file name. `None` if the name is not exactly the prefix and 16
    /// lowercase hex digits of a non-negative i64.
    pub fn parse_segment_name(&self, name: &str) -> Option<i64> {
        parse_hex_name(name, self.name_prefix)
    }

    /// Parses the name of a segment in any of its forms (plain, compressed, or one of the
    /// two temporary files of compression and decompression).
    pub fn parse_segment_file(&self, name: &str) -> Option<(i64, SegmentForm)> {
        for (suffix, form) in [
            (COMPRESSING_SUFFIX, SegmentForm::Compressing),
            (COMPRESSED_SUFFIX, SegmentForm::Compressed),
            (DECOMPRESSING_SUFFIX, SegmentForm::Decompressing),
        ] {
            if let Some(plain) = name.strip_suffix(suffix) {
                return self.parse_segment_name(plain).map(|z| (z, form));
            }
        }
        self.parse_segment_name(name)
            .map(|z| (z, SegmentForm::Plain))
    }

    /// Encodes a segment header.
    pub fn encode_header(&self, header: &SegmentHeader) -> [u8; HEADER_BYTES] {
        encode_header_with(&self.magic, header)
    }

    /// Decodes and verifies a segment header from the start of `bytes`.
    pub fn decode_header(&self, bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        decode_header_with(&self.magic, bytes)
    }
}

fn parse_hex_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.len() != SEGMENT_NAME_HEX_DIGITS
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let zxid = u64::from_str_radix(hex, 16).ok()?;
    i64::try_from(zxid).ok()
}

fn encode_header_with(magic: &[u8; 8], header: &SegmentHeader) -> [u8; HEADER_BYTES] {
    let mut b = [0u8; HEADER_BYTES];
    b[HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 8].copy_from_slice(magic);
    put_u32(&mut b, HEADER_VERSION_OFFSET, header.version);
    put_u32(&mut b, HEADER_FLAGS_OFFSET, header.flags);
    put_u64(&mut b, HEADER_FIRST_ZXID_OFFSET, header.first_zxid as u64);
    put_u64(&mut b, HEADER_SEGMENT_INDEX_OFFSET, header.segment_index);
    put_u64(
        &mut b,
        HEADER_PREV_LAST_ZXID_OFFSET,
        header.prev_last_zxid as u64,
    );
    let checksum = xxh3_64(&b[..HEADER_CHECKSUM_OFFSET]);
    put_u64(&mut b, HEADER_CHECKSUM_OFFSET, checksum);
    b
}

fn decode_header_with(magic: &[u8; 8], bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    let Some(b) = bytes.get(..HEADER_BYTES) else {
        return Err(HeaderError::Short);
    };
    if b.iter().all(|&x| x == 0) {
        return Err(HeaderError::Zero);
    }
    if b[HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 8] != magic[..] {
        return Err(HeaderError::Magic);
    }
    if get_u64(b, HEADER_CHECKSUM_OFFSET) != xxh3_64(&b[..HEADER_CHECKSUM_OFFSET]) {
        return Err(HeaderError::Checksum);
    }
    let version = get_u32(b, HEADER_VERSION_OFFSET);
    if version > FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    let flags = get_u32(b, HEADER_FLAGS_OFFSET);
    let known = if version >= 2 { FLAGS_KNOWN } else { 0 };
    if flags & !known != 0 {
        return Err(HeaderError::Flags);
    }
    Ok(SegmentHeader {
        version,
        flags,
        first_zxid: get_u64(b, HEADER_FIRST_ZXID_OFFSET) as i64,
        segment_index: get_u64(b, HEADER_SEGMENT_INDEX_OFFSET),
        prev_last_zxid: get_u64(b, HEADER_PREV_LAST_ZXID_OFFSET) as i64,
    })
}

/// Size of the frame that carries a payload of `payload_bytes`.
pub const fn frame_bytes(payload_bytes: usize) -> usize {
    FRAME_HEADER_BYTES + payload_bytes
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, zxid: i64, synced_through: u32, payload: &[u8]) {
    encode_frame_with(out, zxid, synced_through, |out| {
        out.extend_from_slice(payload)
    });
}

/// Appends one frame to `out` whose payload `write_payload` appends (so that a payload made
/// of parts, such as a Raft entry's term, kind and borrowed data, is never copied twice).
pub fn encode_frame_with(
    out: &mut Vec<u8>,
    zxid: i64,
    synced_through: u32,
    write_payload: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    write_payload(out);
    let len = u32::try_from(out.len() - start - FRAME_HEADER_BYTES)
        .expect("payload length is bounded by record_bytes_max");
    let frame = &mut out[start..];
    put_u32(frame, FRAME_LEN_OFFSET, len);
    put_u32(frame, FRAME_SYNCED_THROUGH_OFFSET, synced_through);
    put_u64(frame, FRAME_ZXID_OFFSET, zxid as u64);
    let checksum = xxh3_64(&frame[FRAME_LEN_OFFSET..]);
    put_u64(frame, FRAME_CHECKSUM_OFFSET, checksum);
}

/// A frame that passed its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The record's zxid.
    pub zxid: i64,
    /// See [`FRAME_SYNCED_THROUGH_OFFSET`].
    pub synced_through: u32,
    /// Payload length in bytes.
    pub payload_bytes: usize,
}

impl Frame {
    /// Total size of the frame on disk.
    pub fn bytes(&self) -> usize {
        frame_bytes(self.payload_bytes)
    }
}

/// Decodes the frame at `segment[offset..]`, verifying its length against the segment's end
/// and its checksum. `None` if no valid frame starts there.
pub fn decode_frame(segment: &[u8], offset: usize) -> Option<Frame> {
    let header = segment.get(offset..offset.checked_add(FRAME_HEADER_BYTES)?)?;
    let payload_bytes = get_u32(header, FRAME_LEN_OFFSET) as usize;
    let end = offset.checked_add(frame_bytes(payload_bytes))?;
    let frame = segment.get(offset..end)?;
    if get_u64(frame, FRAME_CHECKSUM_OFFSET) != xxh3_64(&frame[FRAME_LEN_OFFSET..]) {
        return None;
    }
    Some(Frame {
        zxid: get_u64(frame, FRAME_ZXID_OFFSET) as i64,
        synced_through: get_u32(frame, FRAME_SYNCED_THROUGH_OFFSET),
        payload_bytes,
    })
}

/// The payload length and `synced_through` fields of an (unverified) frame header, the
/// first [`FRAME_HEADER_BYTES`] bytes of `frame`.
pub fn peek_frame_header(frame: &[u8; FRAME_HEADER_BYTES]) -> (usize, u32) {
    (
        get_u32(frame, FRAME_LEN_OFFSET) as usize,
        get_u32(frame, FRAME_SYNCED_THROUGH_OFFSET),
    )
}

/// The `synced_through` field of the (unverified) frame at `offset`, if the header fits.
/// A cheap filter before [`decode_frame`] when searching for frames past a bad one.
pub fn peek_synced_through(segment: &[u8], offset: usize) -> Option<u32> {
    let header = segment.get(offset..offset.checked_add(FRAME_HEADER_BYTES)?)?;
    Some(get_u32(header, FRAME_SYNCED_THROUGH_OFFSET))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_layout() {
        let h = SegmentHeader {
            version: 1,
            flags: 0,
            first_zxid: 0x1_0000_0001,
            segment_index: 7,
            prev_last_zxid: 42,
        };
        let b = encode_header(&h);
        assert_eq!(&b[0..8], b"FKTXNLOG");
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[16..24], &0x1_0000_0001i64.to_le_bytes());
        assert_eq!(decode_header(&b), Ok(h));
        let mut bad = b;
        bad[20] ^= 1;
        assert_eq!(decode_header(&bad), Err(HeaderError::Checksum));
        assert_eq!(decode_header(&[0u8; HEADER_BYTES]), Err(HeaderError::Zero));
        assert_eq!(decode_header(&b[..47]), Err(HeaderError::Short));
    }

    #[test]
    fn frame_round_trip_and_checksum_scope() {
        let mut out = vec![0xAA; 3];
        encode_frame(&mut out, 5, 48, b"hello");
        assert_eq!(out.len(), 3 + 24 + 5);
        let f = decode_frame(&out, 3).expect("valid frame");
        assert_eq!(
            f,
            Frame {
                zxid: 5,
                synced_through: 48,
                payload_bytes: 5
            }
        );
        // Every byte of the frame is covered: the checksum by itself, the rest by xxh3.
        for i in 3..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            assert_eq!(decode_frame(&bad, 3), None, "flip at {i} must be caught");
        }
        // A frame that runs past the end of the segment is not a frame.
        assert_eq!(decode_frame(&out[..out.len() - 1], 3), None);
    }

    #[test]
    fn zeroes_are_never_a_frame() {
        // The end of data in a preallocated segment is found by this property.
        assert_ne!(xxh3_64(&[0u8; FRAME_HEADER_BYTES - 8]), 0);
        assert_eq!(decode_frame(&[0u8; 4096], 0), None);
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(0x1_0000_0001), "fk-log.0000000100000001");
        assert_eq!(
            parse_segment_name("fk-log.0000000100000001"),
            Some(0x1_0000_0001)
        );
        assert_eq!(parse_segment_name("fk-log.0000000100000001.tmp"), None);
        assert_eq!(parse_segment_name("fk-log.00000001000000AB"), None);
        assert_eq!(parse_segment_name("log.0000000100000001"), None);
        assert_eq!(parse_segment_name("fk-log.8000000000000000"), None);
        assert_eq!(RAFT_SEGMENTS.segment_name(7), "fk-raft.0000000000000007");
        assert_eq!(
            RAFT_SEGMENTS.parse_segment_name("fk-raft.0000000000000007"),
            Some(7)
        );
        assert_eq!(
            RAFT_SEGMENTS.parse_segment_name("fk-log.0000000000000007"),
            None
        );
        assert_eq!(
            TXN_SEGMENTS.parse_segment_name("fk-raft.0000000000000007"),
            None
        );
    }

    #[test]
    fn a_raft_header_is_not_a_txn_header() {
        let h = SegmentHeader {
            version: 1,
            flags: 0,
            first_zxid: 3,
            segment_index: 0,
            prev_last_zxid: -1,
        };
        let raft = RAFT_SEGMENTS.encode_header(&h);
        assert_eq!(&raft[0..8], b"FKRAFTLG");
        assert_eq!(RAFT_SEGMENTS.decode_header(&raft), Ok(h));
        assert_eq!(decode_header(&raft), Err(HeaderError::Magic));
        assert_eq!(
            RAFT_SEGMENTS.decode_header(&encode_header(&h)),
            Err(HeaderError::Magic)
        );
    }
}
