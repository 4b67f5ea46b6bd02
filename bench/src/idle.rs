//! `idle-conns`: what an idle client connection costs a server in memory, for Apache
//! ZooKeeper and ferrokeeper in one run.
//!
//! For each connection count N, each server in turn (the order alternates with N): start
//! it, read its RSS, open N sessions, ping every session once after its handshake and then
//! every third of its timeout (so the sessions stay alive however long the opening takes,
//! and every connection has carried a request and its reply before it is measured), wait
//! until every first ping is answered and then `settle`, read the RSS again. The figure is
//! the difference over N. Java's live heap (`jcmd GC.run`, `GC.heap_info`) is read too,
//! after the RSS, since a full GC changes what is resident.
//!
//! Linux gives a connection from one source address to one server address about 28,000
//! ephemeral ports (`ip_local_port_range`), so the sessions come from many loopback source
//! addresses, 127.0.0.2 and up, each bound with `IP_BIND_ADDRESS_NO_PORT` so that the port
//! is chosen per destination at `connect`. The harness raises its own `RLIMIT_NOFILE`
//! (soft and hard, as root) and the servers inherit it.
//!
//! The client keeps a few dozen bytes per session: the point is the server's memory.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use ferrokeeper_net::client::{encode_connect, encode_request};
use ferrokeeper_net::frame::check_frame;
use ferrokeeper_net::jute::Buffer;
use ferrokeeper_net::records::ConnectRequest;
use ferrokeeper_net::request::Connect;
use ferrokeeper_net::response::{ConnectReply, Reply};
use ferrokeeper_net::OpCode;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::clock::now_ns;
use crate::server::{round_order, Server, ServerKind, ServerSettings};

/// Sessions one loopback source address opens at most (the ephemeral range is 28,232
/// ports by default; some stay free for everything else on the machine).
const SESSIONS_PER_SOURCE_MAX: usize = 20_000;
/// The `xid` ZooKeeper clients put on pings.
const PING_XID: i32 = -2;
/// Largest frame the idle client expects (connect answer, ping reply).
const FRAME_BYTES_MAX: usize = 4096;

/// What one `idle-conns` run does.
#[derive(Debug, Clone)]
pub struct IdleSpec {
    /// Connection counts, each measured on a fresh server of each kind.
    pub connections: Vec<usize>,
    /// Handshakes in flight at once while opening.
    pub handshakes_in_flight: usize,
    /// Session timeout asked for, ms (servers clamp it to 20 ticks).
    pub session_timeout_ms: i32,
    /// How long to wait after the last first ping is answered before reading RSS, ns.
    pub settle_ns: u64,
    /// How long opening N sessions may take before the run gives up, ns.
    pub open_ns_max: u64,
    /// Which servers (both unless restricted).
    pub kinds: Vec<ServerKind>,
}

/// One server at one connection count.
#[derive(Debug, Clone)]
pub struct IdlePoint {
    /// Which server.
    pub kind: ServerKind,
    /// Sessions held open.
    pub connections: usize,
    /// RSS before opening them, bytes.
    pub rss_before: u64,
    /// RSS with all of them open and idle, bytes.
    pub rss_after: u64,
    /// Java's live heap before and after (None for ferrokeeper or without jcmd).
    pub heap_before: Option<u64>,
    /// See `heap_before`.
    pub heap_after: Option<u64>,
    /// Seconds from the first connect to the last first-ping reply.
    pub open_s: f64,
}

impl IdlePoint {
    /// RSS growth per connection, bytes.
    pub fn rss_per_conn(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.connections.max(1) as f64
    }

    /// Live-heap growth per connection, bytes (Java).
    pub fn heap_per_conn(&self) -> Option<f64> {
        Some((self.heap_after? as f64 - self.heap_before? as f64) / self.connections.max(1) as f64)
    }
}

/// Raises this process's `RLIMIT_NOFILE` (soft and hard) to at least `want` descriptors,
/// which children inherit. Raising the hard limit needs root (`CAP_SYS_RESOURCE`); the
/// kernel caps it at `fs.nr_open`.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let target = want.min(nr_open);
    let new = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max.max(target),
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        // Without root: as far as the hard limit goes.
        let soft = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(lim.rlim_max);
    }
    Ok(target)
}

/// One idle session as the client keeps it.
struct Session {
    stream: TcpStream,
    /// Bytes received and not yet a whole frame.
    read: Vec<u8>,
    /// Bytes not yet sent.
    write: Vec<u8>,
    established: bool,
    /// Pings sent and not answered.
    pings_out: u32,
    pings_answered: u32,
}

impl Session {
    fn flush(&mut self) -> io::Result<()> {
        while !self.write.is_empty() {
            match self.stream.write(&self.write) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.write.drain(..n);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::NotConnected =>
                {
                    break
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the socket holds; `Ok(false)` when the server closed it.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 512];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::NotConnected =>
                {
                    return Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens a non-blocking connection to `server` from `source` (port chosen at connect).
fn connect_from(source: Ipv4Addr, server: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    // Without it, bind picks a port for every destination alike and the source address
    // would give no more ports than it has.
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `on` for its size; the descriptor is ours.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    match socket.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(socket)))
}

/// The `k`-th loopback source address: 127.0.0.2, 127.0.0.3, ...
fn source_address(k: usize) -> Ipv4Addr {
    let n = 2 + k as u32;
    Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

// Long because it is the harness's one event loop: opening, handshakes, pings and the
// settle wait share the poll and the sessions.
/// Opens `count` sessions to `addr`, pings each once, and keeps them alive until every
/// first ping is answered and `spec.settle_ns` has passed; then calls `measure` with the
/// sessions still open and idle, and closes them. Returns the seconds the opening took.
fn hold_idle_sessions(
    addr: SocketAddr,
    count: usize,
    spec: &IdleSpec,
    measure: &mut dyn FnMut(),
) -> Result<f64, String> {
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut events = Events::with_capacity(4096);
    let mut sessions: Vec<Session> = Vec::with_capacity(count);
    let sources = count.div_ceil(SESSIONS_PER_SOURCE_MAX).max(1);
    let ping_every_ns = (spec.session_timeout_ms.max(3) as u64 / 3) * 1_000_000;
    // Sessions by when their next ping is due; pushed in time order, so already sorted.
    let mut ping_due: VecDeque<(u64, usize)> = VecDeque::new();
    let mut handshaking = 0usize;
    let mut first_pings_answered = 0usize;
    let t0 = now_ns();
    let mut opened_at: Option<u64> = None;
    let mut ping = Vec::new();
    encode_request(PING_XID, OpCode::Ping, None, &mut ping);
    let mut handshake = Vec::new();
    encode_connect(
        &Connect {
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: spec.session_timeout_ms,
                session_id: 0,
                passwd: Buffer(vec![0; 16]),
            },
            read_only: false,
            has_read_only: true,
        },
        &mut handshake,
    );
    loop {
        let now = now_ns();
        while sessions.len() < count && handshaking < spec.handshakes_in_flight {
            let i = sessions.len();
            let mut stream = connect_from(source_address(i % sources), addr)
                .map_err(|e| format!("connect #{i}: {e}"))?;
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| format!("register: {e}"))?;
            sessions.push(Session {
                stream,
                read: Vec::new(),
                write: handshake.clone(),
                established: false,
                pings_out: 0,
                pings_answered: 0,
            });
            handshaking += 1;
        }
        while let Some(&(due, i)) = ping_due.front() {
            if due > now {
                break;
            }
            ping_due.pop_front();
            let s = &mut sessions[i];
            s.write.extend_from_slice(&ping);
            s.pings_out += 1;
            s.flush().map_err(|e| format!("session #{i}: ping: {e}"))?;
            ping_due.push_back((now + ping_every_ns, i));
        }
        if first_pings_answered == count {
            let at = *opened_at.get_or_insert(now);
            if now >= at + spec.settle_ns {
                measure();
                return Ok((at - t0) as f64 / 1e9);
            }
        } else if now > t0 + spec.open_ns_max {
            return Err(format!(
                "{} of {count} sessions open and pinged after {} s",
                first_pings_answered,
                spec.open_ns_max / 1_000_000_000
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for event in events.iter() {
            let i = event.token().0;
            let s = &mut sessions[i];
            if event.is_writable() {
                s.flush().map_err(|e| format!("session #{i}: write: {e}"))?;
            }
            if !event.is_readable() {
                continue;
            }
            if !s.fill().map_err(|e| format!("session #{i}: read: {e}"))? {
                return Err(format!(
                    "session #{i}: the server closed it ({})",
                    if s.established {
                        "after the handshake"
                    } else {
                        "during the handshake"
                    }
                ));
            }
            while let Some(len) = check_frame(&s.read, FRAME_BYTES_MAX)
                .map_err(|e| format!("session #{i}: bad frame: {e}"))?
            {
                let payload = &s.read[4..4 + len];
                if !s.established {
                    let reply = ConnectReply::decode(payload)
                        .map_err(|e| format!("session #{i}: bad handshake answer: {e}"))?;
                    if reply.response.session_id == 0 {
                        return Err(format!("session #{i}: refused by the server"));
                    }
                    s.established = true;
                    handshaking -= 1;
                    // The first ping goes at once.
                    ping_due.push_front((0, i));
                } else {
                    let reply = Reply::decode(payload)
                        .map_err(|e| format!("session #{i}: bad reply: {e}"))?;
                    if reply.header.xid != PING_XID || reply.header.err != 0 {
                        return Err(format!(
                            "session #{i}: unexpected reply xid {} err {}",
                            reply.header.xid, reply.header.err
                        ));
                    }
                    s.pings_out = s.pings_out.saturating_sub(1);
                    s.pings_answered += 1;
                    if s.pings_answered == 1 {
                        first_pings_answered += 1;
                    }
                }
                s.read.drain(..4 + len);
            }
            // An idle session keeps no buffer.
            if s.read.is_empty() {
                s.read = Vec::new();
            }
        }
    }
}

/// Reads one `kB` field of `/proc/<pid>/status` (`VmRSS`, `RssAnon`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Runs every connection count on every server kind, alternating which goes first.
/// Errors are collected, one per failed point.
pub fn run(settings: &ServerSettings, spec: &IdleSpec) -> (Vec<IdlePoint>, Vec<String>) {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    for (round, &count) in spec.connections.iter().enumerate() {
        for kind in round_order(round) {
            if !spec.kinds.contains(&kind) {
                continue;
            }
            eprintln!("idle-conns: {} with {count} connections", kind.name());
            match measure_one(settings, spec, kind, count) {
                Ok(p) => {
                    eprintln!(
                        "idle-conns: {} {count}: RSS {:.1} → {:.1} MiB, {:.0} B per connection (opened in {:.1} s)",
                        kind.name(),
                        p.rss_before as f64 / 1048576.0,
                        p.rss_after as f64 / 1048576.0,
                        p.rss_per_conn(),
                        p.open_s
                    );
                    points.push(p)
                }
                Err(e) => {
                    eprintln!("idle-conns: {} {count}: {e}", kind.name());
                    errors.push(format!("{} with {count} connections: {e}", kind.name()))
                }
            }
        }
    }
    (points, errors)
}

fn measure_one(
    settings: &ServerSettings,
    spec: &IdleSpec,
    kind: ServerKind,
    count: usize,
) -> Result<IdlePoint, String> {
    let _ = std::fs::remove_dir_all(settings.base_dir.join(kind.tag()));
    let server = Server::start(kind, settings).map_err(|e| e.to_string())?;
    // Let the JVM's start-up work (JIT, class loading) finish before the first reading.
    std::thread::sleep(Duration::from_secs(2));
    let pid = server.pid();
    let rss = || status_bytes(pid, "VmRSS").map_err(|e| format!("RSS: {e}"));
    let rss_before = rss()?;
    let heap_before = server.java_live_heap_bytes();
    let mut rss_after = Err("not measured".to_string());
    let mut heap_after = None;
    let open_s = hold_idle_sessions(server.addr(), count, spec, &mut || {
        rss_after = rss();
        heap_after = server.java_live_heap_bytes();
    })?;
    Ok(IdlePoint {
        kind,
        connections: count,
        rss_before,
        rss_after: rss_after?,
        heap_before,
        heap_after,
        open_s,
    })
}

/// The markdown table of a run.
pub fn table(points: &[IdlePoint]) -> String {
    let mut md = String::from(
        "| server | idle connections | RSS before | RSS after | RSS per connection | live heap per connection | opened in |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        md.push_str(&format!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} KB | {} | {:.1} s |\n",
            p.kind.name(),
            p.connections,
            p.rss_before as f64 / 1048576.0,
            p.rss_after as f64 / 1048576.0,
            p.rss_per_conn() / 1000.0,
            p.heap_per_conn()
                .map_or("–".to_string(), |h| format!("{:.1} KB", h / 1000.0)),
            p.open_s
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_count_up_from_127_0_0_2() {
        assert_eq!(source_address(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_address(254), Ipv4Addr::new(127, 0, 1, 0));
    }
}
