//! hyper's IO traits over a glommio socket.
//!
//! hyper 1.x reads and writes through its own `hyper::rt::Read`/`Write` traits; the
//! ready-made adapters (hyper-util's `TokioIo`) are for tokio's traits, and glommio's
//! sockets implement the futures-io ones, so this small adapter is written by hand (as
//! glommio's own hyper example does). It also notes when the connection last made
//! progress, for the idle timeout.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite};

/// Bytes read from the socket per poll. Admin requests are small; a larger request line
/// or header takes more polls, not more memory here.
const READ_CHUNK_BYTES: usize = 8 << 10;

/// A glommio stream as hyper's IO.
pub struct HyperIo<S> {
    stream: S,
    last_active: Rc<Cell<Instant>>,
}

impl<S> HyperIo<S> {
    /// Wraps `stream`; the returned cell holds the time of the last read or write.
    pub fn new(stream: S) -> (HyperIo<S>, Rc<Cell<Instant>>) {
        let last_active = Rc::new(Cell::new(Instant::now()));
        (
            HyperIo {
                stream,
                last_active: last_active.clone(),
            },
            last_active,
        )
    }
}

impl<S: AsyncRead + Unpin> hyper::rt::Read for HyperIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // Read into an initialised buffer and copy: safe code, and the copy is nothing
        // next to an admin command's work.
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let room = buf.remaining().min(READ_CHUNK_BYTES);
        match Pin::new(&mut self.stream).poll_read(cx, &mut chunk[..room]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&chunk[..n]);
                self.last_active.set(Instant::now());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = r {
            self.last_active.set(Instant::now());
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
