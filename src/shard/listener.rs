//! The client port's listening socket, one per shard.
//!
//! ferrokeeper creates the socket itself instead of calling glommio's
//! `TcpListener::bind`, which sets `SO_REUSEPORT` but not `SO_REUSEADDR`. Without
//! `SO_REUSEADDR`, Linux refuses to bind a port while connections that last used it
//! wait out `TIME_WAIT` (60 s): after Apache ZooKeeper is stopped on 2181, the side that
//! closed each of its client connections (the server, for a `closeSession`) keeps such
//! sockets, and ferrokeeper started at once on 2181 got `EADDRINUSE` for up to a minute.
//! `SO_REUSEADDR` allows that bind; on Linux it still refuses a port another socket is
//! listening on, so a server that is still running is never shadowed by it.
//! `SO_REUSEPORT` stays: every shard binds the same address, and the kernel spreads new
//! connections over their listeners.
//! `TCP_NODELAY` is set on the listener, not on each connection: Linux copies a
//! listener's socket options to the connections it accepts, which saves a
//! `setsockopt` per connection (a client that opens a session per request pays for
//! every system call of its connection's life).

use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// The `listen(2)` backlog when zoo.cfg sets no `clientPortListenBacklog`: what glommio's
/// own `bind` used, so the default is unchanged. The kernel caps it at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG_DEFAULT: u32 = 1024;

/// One shard's listener. Dropping it stops it listening at once (`shutdown(2)`), before
/// glommio closes its descriptor.
///
/// Closing alone is not enough: the accept glommio has pending on the shard's io_uring
/// holds the socket open until the ring is torn down, which the kernel finishes in the
/// background, after the thread and even the process have ended. Until then the socket
/// stays in the port's `SO_REUSEPORT` group and takes its share of new connections,
/// which it resets when it finally closes. That is the likely cause of a "connection
/// reset" that a client got once in CI when it connected to a server restarted at once
/// on the same port (`tests/service.rs`; not reproduced in 60 stop-and-restart rounds
/// here, with and without CPU hogs). `shutdown` on a listening socket unhashes it there
/// and then, so a stopped shard takes no connection it will not serve.
pub struct Listener {
    accept: glommio::net::TcpListener,
    fd: RawFd,
}

impl std::ops::Deref for Listener {
    type Target = glommio::net::TcpListener;

    fn deref(&self) -> &glommio::net::TcpListener {
        &self.accept
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // SAFETY: `fd` is the listening socket `accept` owns and closes only after this
        // (fields drop after `drop`); shutdown passes no memory.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}

/// Binds one shard's listener on `addr` (with `SO_REUSEADDR` and `SO_REUSEPORT`) and
/// hands it to the current glommio executor. Must run on the shard's executor: the
/// listener belongs to that executor's reactor.
pub fn bind(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<Listener> {
    let fd = listening_socket(addr, backlog)?.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that nothing else owns (the Socket
    // gave it up above); glommio's listener takes ownership and closes it on drop.
    let accept = unsafe { <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(Listener { accept, fd })
}

/// The listening socket itself, bound to `addr` with both options, and `TCP_NODELAY`
/// for the connections it accepts (replies are small and must not wait for Nagle).
fn listening_socket(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<Socket> {
    // socket2 opens it close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    let backlog = backlog
        .unwrap_or(LISTEN_BACKLOG_DEFAULT)
        .min(i32::MAX as u32) as i32;
    socket.listen(backlog)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener on a free loopback port, and its address.
    fn on_loopback() -> (Socket, SocketAddr) {
        let socket = listening_socket("127.0.0.1:0".parse().expect("addr"), None).expect("bind");
        let addr = socket
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("an inet address");
        (socket, addr)
    }

    /// Two listeners on one port (two shards), each with both options set.
    #[test]
    fn shards_share_the_port_with_both_options() {
        let (first, addr) = on_loopback();
        let second = listening_socket(addr, Some(16)).expect("a second shard binds the port");
        for s in [&first, &second] {
            assert!(s.reuse_address().expect("SO_REUSEADDR"));
            assert!(s.reuse_port().expect("SO_REUSEPORT"));
        }
    }

    /// A connection the listener accepts has `TCP_NODELAY` without setting it: the
    /// kernel copies it from the listener (nothing else sets it per connection).
    #[test]
    fn accepted_connections_inherit_nodelay() {
        let (listener, addr) = on_loopback();
        let _client = std::net::TcpStream::connect(addr).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        assert!(accepted.tcp_nodelay().expect("TCP_NODELAY"));
    }

    /// `SO_REUSEADDR` does not let a listener take a port another process's listener
    /// (without `SO_REUSEPORT`, as Java's) still holds: a running server is never shadowed.
    #[test]
    fn a_port_still_listened_on_is_refused() {
        let java_like = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = java_like.local_addr().expect("local addr");
        let err = listening_socket(addr, None).expect_err("the port is taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    }
}
