//! Framing: every packet is a big-endian `int` length followed by that many bytes.
//!
//! [`check_frame`] says whether a buffer holds a whole frame before anything is decoded,
//! so a decoder never sees a partial record and a connection never buffers more than
//! one frame of at most `max_frame_bytes` plus what it already read.

use crate::jute::Encode;
use crate::records::ReplyHeader;

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const JUTE_MAXBUFFER_DEFAULT: usize = 0xfffff;

/// Why a length prefix is refused. ZooKeeper closes the connection in both cases
/// ("Len error"), and so does ferrokeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix was negative.
    #[error("negative frame length {len}")]
    Negative {
        /// The length as read.
        len: i32,
    },
    /// The length prefix exceeded `jute.maxbuffer`.
    #[error("frame length {len} exceeds jute.maxbuffer {max}")]
    TooLarge {
        /// The length as read.
        len: usize,
        /// The configured limit.
        max: usize,
    },
}

/// Checks the start of `buf` for a whole frame: `Ok(Some(n))` when the length prefix and
/// `n` payload bytes are all present, `Ok(None)` when more bytes are needed.
pub fn check_frame(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < LENGTH_BYTES {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 {
        return Err(FrameError::Negative { len });
    }
    let len = len as usize;
    if len > max_frame_bytes {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame_bytes,
        });
    }
    Ok((buf.len() - LENGTH_BYTES >= len).then_some(len))
}

/// Starts a frame in `out`: reserves the length prefix and returns where it is.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; LENGTH_BYTES]);
    at
}

/// Ends the frame begun at `at` by writing its length.
pub fn end_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - LENGTH_BYTES) as i32;
    out[at..at + LENGTH_BYTES].copy_from_slice(&len.to_be_bytes());
}

/// Appends one whole reply frame: `ReplyHeader` then the body, if any.
pub fn write_reply(out: &mut Vec<u8>, xid: i32, zxid: i64, err: i32, body: Option<&dyn EncodeDyn>) {
    let at = begin_frame(out);
    ReplyHeader { xid, zxid, err }.encode(out);
    if let Some(b) = body {
        b.encode_dyn(out);
    }
    end_frame(out, at);
}

/// Object-safe form of [`Encode`], so replies can carry any record.
pub trait EncodeDyn {
    /// Appends this value's jute bytes.
    fn encode_dyn(&self, out: &mut Vec<u8>);
}

impl<T: Encode> EncodeDyn for T {
    fn encode_dyn(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
}
