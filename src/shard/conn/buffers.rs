//! A connection's byte buffers, sized for what it is doing now, so that an idle
//! connection holds almost none.
//!
//! Large deployments hold tens of thousands of mostly idle client connections per
//! server. Each connection used to own a 64 KiB read chunk and a 64 KiB frame buffer for
//! its whole life (136 KB of RSS per idle connection, against Apache ZooKeeper's ~11 KB);
//! now:
//! - the socket is read through one 64 KiB scratch buffer per shard ([`ReadScratch`], in
//!   `Shard`). It is borrowed only inside one `poll_read` call, never across an `await`,
//!   so every connection of the shard can use it in turn;
//! - what was read is appended to the connection's own frame buffer, which therefore
//!   holds only bytes not yet taken as requests. When the socket has nothing more and that
//!   buffer is empty, its memory goes back to the allocator (a partial frame keeps the
//!   buffer, trimmed when most of it is spent);
//! - the writer keeps a small output buffer between replies (no allocation per small
//!   reply) and gives back one that a large reply grew.
//!
//! The copy from the scratch buffer into the frame buffer is the copy the connection made
//! before from its own chunk: a busy connection costs what it did, and a
//! `jute.maxbuffer`-sized request still grows its frame buffer to the frame's size. The
//! price: a connection that drains its socket between requests (one in flight) allocates
//! its frame buffer again for each one, one small allocation against the read's syscall
//! (no slower in `ferrokeeper-bench run --workload read`: 4.0–4.1 µs of server CPU per
//! getData against 4.2–5.0 before, alternating runs).

use std::cell::RefCell;
use std::pin::Pin;
use std::task::Poll;

use futures_lite::AsyncRead;

/// Bytes read from a socket at a time (the per-shard scratch buffer's size).
pub const READ_CHUNK_BYTES: usize = 64 << 10;
/// An output buffer up to this capacity is kept between writes; a larger one (grown by a
/// large reply or a burst of notifications) is freed once written.
pub const OUTPUT_KEPT_BYTES_MAX: usize = 4 << 10;
/// A frame buffer holding a partial frame is trimmed when its capacity passes this and
/// more than three quarters of it are free (so a stalled client keeps what it sent, not
/// what an earlier large request grew).
const FRAME_BUFFER_TRIM_BYTES_MIN: usize = READ_CHUNK_BYTES;

/// The shard's read scratch buffer: every connection of the shard reads its socket
/// through it.
pub struct ReadScratch {
    buf: RefCell<Box<[u8]>>,
}

impl ReadScratch {
    /// A scratch buffer of [`READ_CHUNK_BYTES`].
    pub fn new() -> ReadScratch {
        ReadScratch {
            buf: RefCell::new(vec![0u8; READ_CHUNK_BYTES].into_boxed_slice()),
        }
    }
}

impl Default for ReadScratch {
    fn default() -> Self {
        ReadScratch::new()
    }
}

/// Reads what the socket has into `frames` (bytes not yet taken as frames). `Ok(false)`
/// at the end of the stream. While it waits for the socket, `frames` holds no more memory
/// than its unread bytes need.
pub async fn read_more<R: AsyncRead + Unpin>(
    rd: &mut R,
    frames: &mut Vec<u8>,
    scratch: &ReadScratch,
    stats: &crate::shard::shared::ShardStats,
) -> Result<bool, String> {
    std::future::poll_fn(|cx| {
        // Invariant: no borrow outlives this closure (nothing here awaits, and a shard is
        // one thread), so the borrow never fails.
        let mut scratch = scratch.buf.borrow_mut();
        match Pin::new(&mut *rd).poll_read(cx, &mut scratch[..]) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(false)),
            Poll::Ready(Ok(n)) => {
                stats
                    .bytes_received
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                frames.extend_from_slice(&scratch[..n]);
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(format!("read failed: {e}"))),
            Poll::Pending => {
                release_idle(frames);
                Poll::Pending
            }
        }
    })
    .await
}

/// Gives back the memory of a frame buffer whose connection waits for its socket.
fn release_idle(frames: &mut Vec<u8>) {
    if frames.is_empty() {
        if frames.capacity() > 0 {
            *frames = Vec::new();
        }
    } else if frames.capacity() > FRAME_BUFFER_TRIM_BYTES_MIN
        && frames.len() < frames.capacity() / 4
    {
        frames.shrink_to(frames.len());
    }
}

/// After a write: keeps a small output buffer for the next replies, frees a large one.
pub fn release_written(out: &mut Vec<u8>) {
    out.clear();
    if out.capacity() > OUTPUT_KEPT_BYTES_MAX {
        *out = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_frame_buffer_is_freed_when_idle() {
        let mut b = Vec::with_capacity(READ_CHUNK_BYTES);
        release_idle(&mut b);
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn a_partial_frame_keeps_its_bytes_and_sheds_spent_capacity() {
        let mut b = Vec::with_capacity(1 << 20);
        b.extend_from_slice(&[7u8; 100]);
        release_idle(&mut b);
        assert_eq!(b, vec![7u8; 100]);
        assert!(b.capacity() < READ_CHUNK_BYTES);
        // A buffer mostly full (a large frame arriving) is left alone.
        let mut big = Vec::with_capacity(1 << 20);
        big.resize(600 << 10, 1u8);
        let cap = big.capacity();
        release_idle(&mut big);
        assert_eq!(big.capacity(), cap);
    }

    #[test]
    fn small_output_buffers_are_kept_large_ones_freed() {
        let mut small = Vec::with_capacity(256);
        small.extend_from_slice(b"reply");
        release_written(&mut small);
        assert!(small.is_empty() && small.capacity() >= 256);
        let mut large = vec![0u8; 1 << 20];
        release_written(&mut large);
        assert_eq!(large.capacity(), 0);
    }
}
