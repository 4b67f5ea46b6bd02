//! The HTTP listeners: ZooKeeper's AdminServer (`admin.*`, `/commands/<name>`) and the
//! Prometheus metrics provider (`metricsProvider.*`, `/metrics`).
//!
//! Both run on one unpinned glommio executor of their own ("http"), so a slow scrape or
//! a snapshot download never takes time from a shard. HTTP/1 itself is hyper's; this
//! module only adapts glommio's sockets to hyper ([`io::HyperIo`]) and routes requests.
//! The replies are formatted by `crate::admin` (commands, JSON, Prometheus text) from
//! stats that shard 0 gathers: the executor asks it over `ServerShared::admin_calls`
//! ([`crate::shard::admin::AdminCall`]), the same gathering the four-letter words use.
//!
//! * [`admin`]: routing, auth (`Authorization: <scheme> <cred>`), `snapshot`, `restore`.
//! * [`https`]: `admin.forceHttps` and `admin.portUnification` with the `ssl.quorum.*`
//!   stores.
//! * [`io`]: the hyper IO adapter with the idle timeout.
//!
//! As ZooKeeper's `JettyAdminServer`, an AdminServer that cannot bind is logged and the
//! server goes on without it; a Prometheus port that cannot bind fails the start, as a
//! metrics provider that fails to start stops ZooKeeper.

pub mod admin;
pub mod https;
pub mod io;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::shard::shared::ServerShared;

/// The bound listeners, before the executor serving them starts.
#[derive(Debug)]
struct Listeners {
    admin: Option<TcpListener>,
    /// The AdminServer's TLS, when its port speaks HTTPS.
    admin_tls: Option<Arc<crate::tls::TlsServer>>,
    metrics: Option<TcpListener>,
}

/// Binds the AdminServer and Prometheus listeners the config asks for and serves them on
/// an executor of their own. Returns once both are bound (so a test that sees the client
/// port answer may connect to them); the executor runs until the process ends.
pub fn start(
    shared: &Arc<ServerShared>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    let config = &shared.config;
    let admin_tls = match config.admin.https() && config.admin.enabled {
        false => Ok(None),
        true => https::admin_tls(&config.quorum_tls, config.admin.need_client_auth)
            .map(|t| Some(Arc::new(t))),
    };
    let admin = if let Err(e) = &admin_tls {
        // JettyAdminServer's constructor throws when a store does not load;
        // AdminServerFactory logs "Unable to start JettyAdminServer" and ZooKeeper runs
        // without one.
        tracing::warn!(error = %e, "cannot load the AdminServer's HTTPS stores: not serving it");
        None
    } else if config.admin.enabled {
        let addr = SocketAddr::new(config.admin.address, config.admin.port);
        match TcpListener::bind(addr) {
            Ok(l) => {
                tracing::info!(%addr, url = %config.admin.command_url, "AdminServer listening");
                Some(l)
            }
            Err(e) => {
                // JettyAdminServer logs "Problem starting AdminServer" and the server
                // carries on: the client port matters more than the admin port.
                tracing::warn!(%addr, error = %e, "problem starting AdminServer: not serving it");
                None
            }
        }
    } else {
        None
    };
    let metrics = if config.metrics.prometheus {
        let addr = SocketAddr::new(config.metrics.host, config.metrics.port);
        let l = TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start the Prometheus metrics provider on {addr}: {e}"),
            )
        })?;
        tracing::info!(%addr, "Prometheus metrics provider listening on /metrics");
        Some(l)
    } else {
        None
    };
    if admin.is_none() && metrics.is_none() {
        return Ok(());
    }
    let listeners = Listeners {
        admin,
        admin_tls: admin_tls.ok().flatten(),
        metrics,
    };
    let shared = shared.clone();
    let stop = stop.clone();
    // The handle is dropped: the executor ends, closing its listeners, when the server
    // stops taking requests (the same flag as the shards').
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("http")
        .spawn(move || crate::service::until_stopped(stop, serve(shared, listeners)))
        .map_err(|e| std::io::Error::other(format!("cannot start the HTTP executor: {e}")))?;
    Ok(())
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The AdminServer (`admin.serverPort`).
    Admin,
    /// The Prometheus metrics provider (`metricsProvider.httpPort`).
    Metrics,
}

async fn serve(shared: Arc<ServerShared>, listeners: Listeners) {
    let handler = Rc::new(admin::Handler::new(shared.clone()));
    let idle = Duration::from_millis(shared.config.admin.idle_timeout_ms.max(1));
    let mut tasks = Vec::new();
    for (listener, endpoint) in [
        (listeners.admin, Endpoint::Admin),
        (listeners.metrics, Endpoint::Metrics),
    ] {
        let Some(listener) = listener else { continue };
        // SAFETY: the descriptor comes from `into_raw_fd` of a listening socket this
        // function owns; nothing else holds or closes it.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) };
        let handler = handler.clone();
        let (port, tls) = match endpoint {
            Endpoint::Admin => (
                https::AdminPort::of(&shared.config.admin),
                listeners.admin_tls.clone(),
            ),
            Endpoint::Metrics => (https::AdminPort::Plain, None),
        };
        tasks.push(glommio::spawn_local(accept_loop(
            listener,
            endpoint,
            handler,
            idle,
            (port, tls),
        )));
    }
    for t in tasks {
        t.await;
    }
}

async fn accept_loop(
    listener: glommio::net::TcpListener,
    endpoint: Endpoint,
    handler: Rc<admin::Handler>,
    idle: Duration,
    (port, tls): (https::AdminPort, Option<Arc<crate::tls::TlsServer>>),
) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::warn!(?endpoint, error = %e, "HTTP accept failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let tls = tls.clone();
        glommio::spawn_local(async move {
            let peer = stream.peer_addr().ok();
            match https::accept(stream, port, tls.as_ref(), idle).await {
                https::Accepted::Plain(s) => {
                    serve_connection(s, peer, endpoint, handler, idle, false).await
                }
                https::Accepted::Tls(s) => {
                    serve_connection(s, peer, endpoint, handler, idle, true).await
                }
                https::Accepted::Closed => {}
            }
        })
        .detach();
    }
}

/// Serves HTTP/1 on one connection (plain or TLS) until it closes or idles out.
async fn serve_connection<S>(
    stream: S,
    peer: Option<SocketAddr>,
    endpoint: Endpoint,
    handler: Rc<admin::Handler>,
    idle: Duration,
    secure: bool,
) where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + 'static,
{
    let (io, last_active) = io::HyperIo::new(stream);
    let service = hyper::service::service_fn(move |req| {
        let handler = handler.clone();
        async move {
            let mut response = handler.handle(endpoint, peer, req).await;
            if secure {
                let (name, value) = https::HSTS;
                response.headers_mut().insert(
                    hyper::header::HeaderName::from_static(name),
                    hyper::header::HeaderValue::from_static(value),
                );
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    // A connection silent for `admin.idleTimeout` is dropped (Jetty's idle
    // timeout): the watchdog wins the race and the connection future is dropped,
    // which closes the socket.
    let watchdog = async {
        loop {
            let since = last_active.get().elapsed();
            if since >= idle {
                break;
            }
            glommio::timer::sleep(idle - since).await;
        }
    };
    let done = futures_lite::future::or(async { conn.await.map_err(Some) }, async {
        watchdog.await;
        Err(None)
    })
    .await;
    match done {
        Ok(()) => {}
        Err(Some(e)) => tracing::debug!(?peer, error = %e, "HTTP connection closed"),
        Err(None) => tracing::debug!(?peer, "HTTP connection idle: closed"),
    }
}
