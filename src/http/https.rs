//! HTTPS for the AdminServer, as ZooKeeper's `JettyAdminServer`: `admin.forceHttps`
//! (TLS only) or `admin.portUnification` (TLS or plain HTTP on the one port, by the first
//! byte, as `UnifiedConnectionFactory`), with the `ssl.quorum.*` key and trust stores.
//!
//! The stores are opened by `crate::tls` (the same loading and rustls configuration as
//! the secure client port); this module only decides what a connection speaks and runs
//! the handshake. As in Java:
//!
//! * Both stores must open, the trust store too, although it is used only when
//!   `admin.needClientAuth` (3.9) asks for client certificates. If one does not,
//!   ZooKeeper's constructor throws, `AdminServerFactory` logs it and runs no
//!   AdminServer, and the server carries on; so does ferrokeeper.
//! * A plain-text request on a `forceHttps` port gets what the JDK's TLS engine answers
//!   it (seen from ZooKeeper 3.8 with Jetty 9.4): one fatal `internal_error` alert
//!   record, then the connection closes. curl reports "Received HTTP/0.9 when not
//!   allowed".
//! * HTTPS replies carry `Strict-Transport-Security: max-age=86400; includeSubDomains`
//!   (Jetty's `SecureRequestCustomizer` with a one-day max age); plain ones do not.

use std::sync::Arc;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::config::admin::AdminServerConfig;
use crate::config::tls::{ClientAuth, TlsSettings};
use crate::tls::{stores, TlsError, TlsServer};

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the JDK's `SSLEngine` sends to a client whose first bytes are not a TLS record:
/// an alert record (type 0x15), version TLS 1.2 (0x0303), two bytes long, fatal (2),
/// `internal_error` (80).
pub const NOT_TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

/// The header Jetty's `SecureRequestCustomizer` adds to every HTTPS reply
/// (`JettyAdminServer.DEFAULT_STS_MAX_AGE`, one day, with subdomains).
pub const HSTS: (&str, &str) = (
    "strict-transport-security",
    "max-age=86400; includeSubDomains",
);

/// What the AdminServer's port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPort {
    /// Plain HTTP (the default).
    Plain,
    /// `admin.portUnification`: HTTPS when the first byte opens a TLS handshake.
    Unified,
    /// `admin.forceHttps`: HTTPS only (it wins over `portUnification`, as in Java).
    Https,
}

impl AdminPort {
    /// The kind of port `admin` asks for.
    pub fn of(admin: &AdminServerConfig) -> AdminPort {
        if admin.force_https {
            AdminPort::Https
        } else if admin.port_unification {
            AdminPort::Unified
        } else {
            AdminPort::Plain
        }
    }
}

/// The AdminServer's TLS configuration from the `ssl.quorum.*` settings: both stores
/// opened (as Java opens both), client certificates asked for only with
/// `admin.needClientAuth`.
pub fn admin_tls(quorum: &TlsSettings, need_client_auth: bool) -> Result<TlsServer, TlsError> {
    // Java loads the trust store whatever needClientAuth says; a missing or unreadable
    // one stops the AdminServer.
    stores::load_trust_store(&quorum.trust_store)?;
    let mut settings = quorum.clone();
    settings.client_auth = if need_client_auth {
        ClientAuth::Need
    } else {
        ClientAuth::None
    };
    // The AdminServer's stores are read once, when it starts (Jetty's SslContextFactory
    // gets loaded KeyStore objects, not paths).
    settings.cert_reload = false;
    TlsServer::new(&settings)
}

/// What one connection on the AdminServer's port turned out to be.
pub enum Accepted {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS, after the handshake.
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
    /// Nothing to serve: refused, or the handshake failed (logged here).
    Closed,
}

/// Sorts out one accepted connection: peeks its first byte where the port needs to
/// know, refuses plain text on an HTTPS-only port, and runs the TLS handshake.
/// `wait` bounds the peek and the handshake (the AdminServer's idle timeout, as Jetty's
/// idle timeout covers both).
pub async fn accept(
    stream: TcpStream,
    port: AdminPort,
    tls: Option<&Arc<TlsServer>>,
    wait: std::time::Duration,
) -> Accepted {
    let peer = stream.peer_addr().ok();
    let Some(tls) = tls.filter(|_| port != AdminPort::Plain) else {
        return Accepted::Plain(stream);
    };
    let mut first = [0u8; 1];
    let peeked = glommio::timer::timeout(wait, async { Ok(stream.peek(&mut first).await) }).await;
    let is_tls = match peeked {
        Ok(Ok(1)) => first[0] == TLS_HANDSHAKE_RECORD,
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
            tracing::debug!(?peer, "AdminServer connection sent nothing; closing");
            return Accepted::Closed;
        }
    };
    match (port, is_tls) {
        (AdminPort::Unified, false) => return Accepted::Plain(stream),
        (AdminPort::Https, false) => {
            tracing::info!(
                ?peer,
                "plain-text request on the HTTPS-only AdminServer port: refused"
            );
            let mut stream = stream;
            let _ = stream.write_all(&NOT_TLS_ALERT).await;
            let _ = stream.close().await;
            return Accepted::Closed;
        }
        _ => {}
    }
    let acceptor = futures_rustls::TlsAcceptor::from(tls.config());
    match glommio::timer::timeout(wait, async { Ok(acceptor.accept(stream).await) }).await {
        Ok(Ok(stream)) => Accepted::Tls(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::info!(?peer, error = %e, "AdminServer TLS handshake failed");
            Accepted::Closed
        }
        Err(_) => {
            tracing::info!(?peer, "AdminServer TLS handshake timed out");
            Accepted::Closed
        }
    }
}
