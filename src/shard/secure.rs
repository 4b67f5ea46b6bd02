//! Which client connections speak TLS, and their handshake: `secureClientPort` (TLS
//! only) and `client.portUnification` on `clientPort` (TLS when the first byte is 0x16,
//! a TLS handshake record; a jute frame starts with the top byte of a length, 0x00, and
//! a four-letter word with a letter), as `NettyServerCnxnFactory.DualModeSslHandler`.
//!
//! Each connection runs in its own task, so a client that stalls mid-handshake holds only
//! its own task, and only until the handshake timeout drops it.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use super::{conn, Shard};

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a listener's port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// `clientPort` without port unification: plaintext only.
    Plain,
    /// `clientPort` with `client.portUnification`: plaintext or TLS, by the first byte.
    Unified,
    /// `secureClientPort`: TLS only.
    Secure,
}

/// A client connection's byte stream: plain TCP or TLS over TCP.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The socket's descriptor, to shut it down when the connection ends.
    fn raw_fd(&self) -> RawFd;
    /// Whether closing the stream sends something of its own before the socket is shut
    /// down (TLS: close_notify); plain TCP has nothing to send.
    const SENDS_ON_CLOSE: bool;
}

impl ClientStream for TcpStream {
    const SENDS_ON_CLOSE: bool = false;
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl ClientStream for futures_rustls::server::TlsStream<TcpStream> {
    const SENDS_ON_CLOSE: bool = true;
    fn raw_fd(&self) -> RawFd {
        self.get_ref().0.as_raw_fd()
    }
}

/// Serves one accepted connection on a port of `kind` until it closes.
pub async fn serve(
    shard: Rc<Shard>,
    id: u64,
    stream: TcpStream,
    peer: Option<SocketAddr>,
    kind: PortKind,
) {
    let tls = match (kind, shard.shared.tls.clone()) {
        (PortKind::Plain, _) | (_, None) => None,
        (PortKind::Secure, Some(tls)) => Some(tls),
        (PortKind::Unified, Some(tls)) => {
            let mut first = [0u8; 1];
            let peeked = glommio::timer::timeout(tls.detection_timeout(), async {
                Ok(stream.peek(&mut first).await)
            })
            .await;
            match peeked {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => Some(tls),
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    tracing::debug!(conn = id, error = %e, "peek failed");
                    return;
                }
                Err(_) => {
                    // Java closes a unified-port connection that sends nothing in time.
                    tracing::debug!(conn = id, ?peer, "no first byte in time; closing");
                    return;
                }
            }
        }
    };
    match tls {
        None => conn::serve(shard, id, stream, peer, Vec::new()).await,
        // Boxed: the handshake's state (a rustls connection mid-handshake, ~5 KB) and a
        // TLS connection's task would otherwise be part of every connection's task, idle
        // plain ones included (an async fn's future is as large as its largest state).
        Some(tls) => Box::pin(serve_tls(shard, id, stream, peer, tls)).await,
    }
}

/// Serves one connection over TLS: handshake, then the connection.
async fn serve_tls(
    shard: Rc<Shard>,
    id: u64,
    stream: TcpStream,
    peer: Option<SocketAddr>,
    tls: std::sync::Arc<crate::tls::TlsServer>,
) {
    let acceptor = futures_rustls::TlsAcceptor::from(tls.config());
    let handshake = glommio::timer::timeout(crate::tls::HANDSHAKE_TIMEOUT, async {
        Ok(acceptor.accept(stream).await)
    })
    .await;
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(shard = shard.index, conn = id, ?peer, error = %e, "TLS handshake failed");
            shard
                .stats
                .unsuccessful_handshakes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        Err(_) => {
            shard
                .stats
                .unsuccessful_handshakes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                shard = shard.index,
                conn = id,
                ?peer,
                "TLS handshake timed out"
            );
            return;
        }
    };
    let ids = tls.client_ids(stream.get_ref().1.peer_certificates());
    tracing::debug!(conn = id, ?peer, ids = ?ids, "TLS handshake done");
    conn::serve(shard, id, stream, peer, ids).await;
}
