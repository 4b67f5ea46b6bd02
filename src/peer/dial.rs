//! The outgoing side: one dialer task per peer, which keeps a connection to it and
//! writes whatever its queue holds.

use std::rc::Rc;
use std::time::Instant;

use ferrokeeper_net::peer::Handshake;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;

use super::{Inner, Outgoing, BACKOFF_MAX, BACKOFF_MIN, CONNECT_TIMEOUT};

/// Dials `to` until the transport shuts down (which cancels this task): connects,
/// writes, and after a connection fails waits with a capped exponential backoff.
pub(super) async fn dial(inner: Rc<Inner>, to: u64, out: Rc<Outgoing>) {
    let out = &*out;
    let Some(wake) = out.wake_rx.borrow_mut().take() else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    let mut established_before = false;
    // The write buffer, kept across connections so steady writing does not allocate.
    let mut buf = Vec::new();
    // Which of the peer's addresses to dial next.
    let mut at = 0;
    loop {
        let addr = out.addrs[at % out.addrs.len()];
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
            Ok(stream) => {
                // Frames are coalesced by the queue; Nagle would only add latency.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(me = inner.my_id, to, error = %e, "TCP_NODELAY not set");
                }
                if established_before {
                    inner.count(|s| s.reconnects += 1);
                }
                established_before = true;
                out.connected.set(true);
                tracing::info!(me = inner.my_id, to, %addr, "peer connection established");
                let began = Instant::now();
                let reason = run(&inner, out, to, stream, &wake, &mut buf).await;
                out.connected.set(false);
                tracing::info!(me = inner.my_id, to, %reason, "peer connection lost");
                if began.elapsed() >= BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(e) => {
                // A peer that is down fails every dial; once a second at most, quietly.
                tracing::debug!(me = inner.my_id, to, %addr, error = %e, "peer dial failed");
                at += 1;
            }
        }
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Runs one established connection: the handshake, then every queued frame, until a
/// write fails or the peer closes its end. Returns why it ended.
async fn run(
    inner: &Inner,
    out: &Outgoing,
    to: u64,
    stream: TcpStream,
    wake: &LocalReceiver<()>,
    buf: &mut Vec<u8>,
) -> String {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    buf.clear();
    Handshake::new(inner.my_id, to).encode(buf);
    let write = async {
        // Frames in `buf`, counted as sent once the write completes.
        let mut frames = 0u64;
        loop {
            let next_due = {
                let mut q = out.queue.borrow_mut();
                let next_due = q.release_due(Instant::now());
                if buf.is_empty() {
                    // Swapping keeps both buffers' capacity: no copy, no allocation.
                    std::mem::swap(buf, &mut q.bytes);
                } else {
                    buf.extend_from_slice(&q.bytes);
                    q.bytes.clear();
                }
                frames += q.frames;
                q.frames = 0;
                next_due
            };
            if buf.is_empty() {
                wait_for_work(wake, next_due).await;
                continue;
            }
            if let Err(e) = wr.write_all(buf).await {
                return format!("write failed: {e}");
            }
            if let Err(e) = wr.flush().await {
                return format!("flush failed: {e}");
            }
            let bytes = buf.len() as u64;
            inner.count(|s| {
                s.frames_sent += frames;
                s.bytes_sent += bytes;
            });
            frames = 0;
            buf.clear();
        }
    };
    // The acceptor never writes: any read result means the connection is over. Watching
    // for it finds a refused handshake or a restarted peer before the next write does.
    let watch = async {
        let mut byte = [0u8; 1];
        match rd.read(&mut byte).await {
            Ok(0) => "closed by the peer".to_string(),
            Ok(_) => "the peer wrote on a one-way connection".to_string(),
            Err(e) => format!("read failed: {e}"),
        }
    };
    futures_lite::future::or(write, watch).await
}

/// Waits until a sender wakes the dialer or the next delayed frame is due.
async fn wait_for_work(wake: &LocalReceiver<()>, next_due: Option<Instant>) {
    let woken = async {
        // The sender lives as long as the transport, so `None` never comes.
        let _ = wake.recv().await;
    };
    match next_due {
        Some(due) => {
            let wait = due.saturating_duration_since(Instant::now());
            futures_lite::future::or(woken, glommio::timer::sleep(wait)).await
        }
        None => woken.await,
    }
}
