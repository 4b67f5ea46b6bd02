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

use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use socket2::{Domain, Protocol, Socket, Type};

/// The `listen(2)` backlog when zoo.cfg sets no `clientPortListenBacklog`: what glommio's
/// own `bind` used, so the default is unchanged. The kernel caps it at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG_DEFAULT: u32 = 1024;

/// Binds one shard's listener on `addr` (with `SO_REUSEADDR` and `SO_REUSEPORT`) and
/// hands it to the current glommio executor. Must run on the shard's executor: the
/// listener belongs to that executor's reactor.
pub fn bind(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<glommio::net::TcpListener> {
    let fd = listening_socket(addr, backlog)?.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that nothing else owns (the Socket
    // gave it up above); glommio's listener takes ownership and closes it on drop.
    Ok(unsafe { <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Which shard's listener takes the client port's next connection: shard 0 while the
/// server has no client connection, else the kernel's `SO_REUSEPORT` hash.
///
/// Shard 0 is where the commit stage runs when no core is spare
/// (`server::commit_on_shard`): there a write crosses no thread, while from another
/// shard it crosses to shard 0 and back (at one setData in flight on 2 cores, 20–41 µs of
/// server CPU per write against 87–102 µs: bench/results/commit-on-shard-2026-12-06.md).
/// Left to the hash, a lone client lands on either shard at random; so the first
/// connection goes to shard 0, and the rest are spread by the hash as before. Steering
/// more than the first would need the choice made per SYN from live counts, which the
/// kernel cannot see: a program re-pointed at each accept sent a whole burst of connects
/// (all sessions reconnecting after a restart) to one shard, so it is not done.
///
/// The choice is a classic BPF program attached to the port's group
/// (`SO_ATTACH_REUSEPORT_CBPF`), one instruction returning the index of shard 0's socket
/// in the group — the order the listeners joined it, which [`Steering::bind`] records by
/// binding them one at a time — detached (`SO_DETACH_REUSEPORT_BPF`) at the first accept
/// and attached again when the last connection closes. A kernel that refuses either
/// leaves the hash in place.
#[derive(Debug)]
pub struct Steering {
    /// Shard indexes in the order their client-port listeners joined the group.
    order: Mutex<Vec<usize>>,
    /// Shards whose listeners the group is to hold.
    shards: usize,
    /// Live connections accepted on the client port, all shards together.
    live: AtomicU32,
}

impl Steering {
    /// Steering for `shards` shards, no listener bound yet.
    pub fn new(shards: usize) -> Steering {
        Steering {
            order: Mutex::new(Vec::with_capacity(shards)),
            shards,
            live: AtomicU32::new(0),
        }
    }

    /// Binds `shard`'s client-port listener as [`bind`] does, recording its place in the
    /// port's group; returns it with its descriptor (owned by the listener). The last
    /// shard to bind points the group at shard 0.
    pub fn bind(
        &self,
        shard: usize,
        addr: SocketAddr,
        backlog: Option<u32>,
    ) -> std::io::Result<(glommio::net::TcpListener, RawFd)> {
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let fd = listening_socket(addr, backlog)?.into_raw_fd();
        order.push(shard);
        if order.len() == self.shards && self.live.load(Ordering::Relaxed) == 0 {
            steer(fd, first_shard_index(&order));
        }
        // SAFETY: as in `bind`.
        let listener =
            unsafe { <glommio::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok((listener, fd))
    }

    /// Counts a connection accepted on the client port (`opened`) or closed, and through
    /// `fd` (any listener of the group; `None` once the shard's own is gone) hands the
    /// choice to the hash at the first connection and back to shard 0 after the last.
    pub fn count(&self, opened: bool, fd: Option<RawFd>) {
        // The lock orders the program changes as the counts change.
        let order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.live.load(Ordering::Relaxed);
        let after = if opened {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        self.live.store(after, Ordering::Relaxed);
        let (Some(fd), true) = (fd, order.len() == self.shards) else {
            return;
        };
        match (before, after) {
            (0, 1) => unsteer(fd),
            (1, 0) => steer(fd, first_shard_index(&order)),
            _ => {}
        }
    }
}

/// The index of shard 0's listener in the group.
fn first_shard_index(order: &[usize]) -> u32 {
    order.iter().position(|&s| s == 0).unwrap_or(0) as u32
}

/// Attaches `ret #index` as the group's selection program through `fd`.
fn steer(fd: RawFd, index: u32) {
    if let Err(e) = attach_return(fd, index) {
        tracing::debug!(error = %e, "cannot steer the first connection to shard 0");
    }
}

/// Detaches the group's selection program through `fd`: the kernel's hash again.
fn unsteer(fd: RawFd) {
    // The option's value is ignored, but the kernel refuses one shorter than an int.
    if let Err(e) = set_socket_option(fd, libc::SO_DETACH_REUSEPORT_BPF, &0 as &libc::c_int) {
        tracing::debug!(error = %e, "cannot detach the steering program");
    }
}

/// Attaches `ret #index` as the `SO_REUSEPORT` group's selection program through `fd`.
fn attach_return(fd: RawFd, index: u32) -> std::io::Result<()> {
    let mut program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: index,
    }];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // `fprog` points at `program`, which outlives the call; the kernel copies it.
    set_socket_option(fd, libc::SO_ATTACH_REUSEPORT_CBPF, &fprog)
}

/// `setsockopt(fd, SOL_SOCKET, name, value)`.
fn set_socket_option<T>(fd: RawFd, name: libc::c_int, value: &T) -> std::io::Result<()> {
    // SAFETY: `value` is a live `T` for the call, passed with its size; the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The listening socket itself, bound to `addr` with both options.
fn listening_socket(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<Socket> {
    // socket2 opens it close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
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

    /// Two listeners on one loopback port, as two shards bind it (the second with
    /// `backlog`), and the port.
    fn two_listeners(backlog: Option<u32>) -> (Socket, Socket, SocketAddr) {
        let first = listening_socket("127.0.0.1:0".parse().expect("addr"), None).expect("bind");
        let addr = first
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("an inet address");
        let second = listening_socket(addr, backlog).expect("a second shard binds the port");
        (first, second, addr)
    }

    /// Two listeners on one port (two shards), each with both options set.
    #[test]
    fn shards_share_the_port_with_both_options() {
        let (first, second, _) = two_listeners(Some(16));
        for s in [&first, &second] {
            assert!(s.reuse_address().expect("SO_REUSEADDR"));
            assert!(s.reuse_port().expect("SO_REUSEPORT"));
        }
    }

    /// The attached program decides which listener of the group accepts: every
    /// connection goes to the socket it names, and to the other once it is replaced;
    /// detached, the hash spreads them again.
    #[test]
    fn the_attached_program_picks_the_listener() {
        use std::os::fd::AsRawFd;
        let (first, second, addr) = two_listeners(None);
        for s in [&first, &second] {
            s.set_nonblocking(true).expect("nonblocking");
        }
        for (target, other) in [(1, 0), (0, 1)] {
            attach_return(first.as_raw_fd(), target).expect("attach");
            let socks = [&first, &second];
            let clients: Vec<_> = (0..8)
                .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
                .collect();
            let mut accepted = 0;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while accepted < clients.len() && std::time::Instant::now() < deadline {
                if socks[target as usize].accept().is_ok() {
                    accepted += 1;
                }
            }
            assert_eq!(
                accepted,
                clients.len(),
                "every connection reached socket {target}"
            );
            assert!(socks[other].accept().is_err(), "socket {other} got none");
        }
        unsteer(first.as_raw_fd());
        let clients: Vec<_> = (0..64)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        let mut on = [0, 0];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while on[0] + on[1] < clients.len() && std::time::Instant::now() < deadline {
            for (i, s) in [&first, &second].into_iter().enumerate() {
                if s.accept().is_ok() {
                    on[i] += 1;
                }
            }
        }
        assert!(
            on[0] > 0 && on[1] > 0,
            "the hash spreads 64 connections: {on:?}"
        );
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
