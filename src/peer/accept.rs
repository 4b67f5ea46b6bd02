//! The incoming side: the quorum port's listener, and one task per accepted connection
//! that checks the handshake and hands frames to the caller.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::time::Duration;

use ferrokeeper_net::peer::{frame_bytes, Decoder, Event, HandshakeRefusal, PeerWireError};
use futures_lite::AsyncReadExt;
use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use super::{Incoming, Inner, HANDSHAKE_TIMEOUT, READ_CHUNK_BYTES};

/// The quorum port's `listen(2)` backlog: a handful of peers, each with one connection.
const LISTEN_BACKLOG: i32 = 64;

/// Binds the quorum port with `SO_REUSEADDR`, so a restarted server is not refused its
/// port while its old connections wait out `TIME_WAIT` (see `shard::listener`). Unlike
/// the client port it does not set `SO_REUSEPORT`: one listener per server, and a second
/// server started on the same port by mistake must fail rather than share its peers'
/// connections.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // socket2 opens it close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that nothing else owns (the Socket
    // gave it up above); glommio's listener takes ownership and closes it on drop.
    Ok(unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Accepts connections until the transport shuts down (which cancels this task).
pub(super) async fn accept_loop(inner: Rc<Inner>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let serial = inner.next_serial();
                // The task cannot run before it is registered: spawning only queues it.
                let task = glommio::spawn_local(serve(inner.clone(), serial, stream)).detach();
                inner.conns.borrow_mut().insert(serial, task);
            }
            Err(e) => {
                // Out of file descriptors, most likely; retrying at once would spin.
                tracing::warn!(me = inner.my_id, error = %e, "peer accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Why an accepted connection ended.
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("the peer closed the connection")]
    ByPeer,
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("malformed stream: {0}")]
    Wire(#[from] PeerWireError),
    #[error("handshake refused: {0}")]
    Refused(#[from] HandshakeRefusal),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of the transport's reserved kind {0}")]
    ReservedKind(u8),
    #[error("the transport shut down or its receiver was dropped")]
    CallerGone,
}

impl Closed {
    /// Whether the peer broke the protocol (logged louder and counted).
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            Closed::HandshakeTimeout(_)
                | Closed::Wire(_)
                | Closed::Refused(_)
                | Closed::ReservedKind(_)
        )
    }

    /// Whether the peer ended the connection (its process is gone, or the connection
    /// was reset): what [`super::KIND_LOST`] reports.
    fn is_peer_gone(&self) -> bool {
        matches!(self, Closed::ByPeer | Closed::Io(_))
    }
}

/// Unregisters an accepted connection when its task ends or is cancelled.
struct Registration {
    inner: Rc<Inner>,
    serial: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // `shutdown` takes the maps before cancelling; a borrow held elsewhere means the
        // entries are being torn down anyway.
        if let Ok(mut conns) = self.inner.conns.try_borrow_mut() {
            conns.remove(&self.serial);
        }
        if let Ok(mut from) = self.inner.incoming_from.try_borrow_mut() {
            from.retain(|_, serial| *serial != self.serial);
        }
    }
}

/// Serves one accepted connection until it ends, and logs why.
async fn serve(inner: Rc<Inner>, serial: u64, stream: TcpStream) {
    let _registration = Registration {
        inner: inner.clone(),
        serial,
    };
    let remote = stream.peer_addr().ok();
    let mut from = None;
    let closed = read_frames(&inner, serial, stream, &mut from).await;
    if closed.is_refusal() {
        inner.count(|s| s.connections_refused += 1);
        tracing::warn!(me = inner.my_id, ?remote, ?from, reason = %closed, "peer connection closed");
    } else {
        tracing::info!(me = inner.my_id, ?remote, ?from, reason = %closed, "peer connection closed");
    }
    if let Some(from) = from.filter(|_| closed.is_peer_gone()) {
        let to_caller = inner.to_caller.borrow().clone();
        if let Some(to_caller) = to_caller {
            let lost = Incoming {
                from,
                kind: super::KIND_LOST,
                payload: Vec::new(),
            };
            let _ = to_caller.send(lost).await;
        }
    }
}

/// Reads the handshake, then frames, until the connection ends; returns why.
async fn read_frames(
    inner: &Rc<Inner>,
    serial: u64,
    mut stream: TcpStream,
    from_out: &mut Option<u64>,
) -> Closed {
    let mut decoder = Decoder::new(inner.max_frame);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let handshake = futures_lite::future::or(
        async {
            loop {
                if let Some(Event::Handshake(h)) = decoder.next_event()? {
                    return Ok(h);
                }
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(Closed::ByPeer);
                }
                decoder.push(&chunk[..n]);
            }
        },
        async {
            glommio::timer::sleep(HANDSHAKE_TIMEOUT).await;
            Err(Closed::HandshakeTimeout(HANDSHAKE_TIMEOUT))
        },
    )
    .await;
    let handshake = match handshake {
        Ok(h) => h,
        Err(closed) => return closed,
    };
    if let Err(refusal) = handshake.check(inner.my_id, |id| inner.is_peer(id)) {
        return refusal.into();
    }
    let from = handshake.from;
    *from_out = Some(from);
    let Some(to_caller) = inner.to_caller.borrow().clone() else {
        return Closed::CallerGone;
    };
    replace_earlier_connection(inner, from, serial);
    tracing::info!(me = inner.my_id, from, "peer connection accepted");

    loop {
        loop {
            let frame = match decoder.next_event() {
                Ok(Some(Event::Frame(f))) => f,
                // The decoder yields the handshake once only.
                Ok(Some(Event::Handshake(_))) | Ok(None) => break,
                Err(e) => return e.into(),
            };
            if frame.kind == super::KIND_LOST {
                return Closed::ReservedKind(frame.kind);
            }
            let bytes = frame_bytes(frame.payload.len()) as u64;
            let incoming = Incoming {
                from,
                kind: frame.kind,
                payload: frame.payload,
            };
            if to_caller.send(incoming).await.is_err() {
                return Closed::CallerGone;
            }
            inner.count(|s| {
                s.frames_received += 1;
                s.bytes_received += bytes;
            });
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Closed::ByPeer,
            Ok(n) => decoder.push(&chunk[..n]),
            Err(e) => return e.into(),
        }
    }
}

/// Makes `serial` the connection `from` sends on, ending the one it used before: a peer
/// that dials again (after a restart, or after losing its side of the connection
/// first) must not have two streams of frames interleaving.
fn replace_earlier_connection(inner: &Inner, from: u64, serial: u64) {
    let earlier = inner.incoming_from.borrow_mut().insert(from, serial);
    if let Some(earlier) = earlier.filter(|s| *s != serial) {
        // Cancelling drops the task at the executor's next turn, closing its socket; it
        // is never polled again, so none of its frames can follow this connection's.
        if let Some(task) = inner.conns.borrow_mut().remove(&earlier) {
            task.cancel();
        }
        tracing::info!(
            me = inner.my_id,
            from,
            "peer reconnected: its earlier connection is closed"
        );
    }
}
