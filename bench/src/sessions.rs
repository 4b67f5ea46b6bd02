//! The `sessions` workload: how fast sessions are opened and closed. Each of
//! `concurrency` slots runs connect → handshake → closeSession → answer → reset, over
//! and over, on one thread; an op is one whole session life, its latency from the
//! `connect` call to the closeSession answer.
//!
//! The client resets each connection (SO_LINGER 0) once closeSession is answered, so
//! thousands of short connections per second do not fill the loopback port range with
//! TIME_WAIT sockets.

use std::net::SocketAddr;
use std::time::Duration;

use ferrokeeper_net::request::Request;
use mio::{Events, Poll};

use crate::clock::now_ns;
use crate::conn::{Conn, ConnError};
use crate::engine::{error_name, open_registered, RunError};
use crate::stats::{process_cpu_ns, self_cpu_ns, RunStats};

/// A session-churn run.
#[derive(Debug, Clone)]
pub struct SessionsSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Session lives in progress at once.
    pub concurrency: usize,
    /// Warm-up, ns.
    pub warmup_ns: u64,
    /// Measured window, ns.
    pub measure_ns: u64,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// How long one session life may take before the run calls it a stall, ns.
    pub life_ns_max: u64,
    /// Server process to read CPU time from, if any.
    pub server_pid: Option<u32>,
}

struct Life {
    conn: Conn,
    started_ns: u64,
    close_xid: Option<i32>,
}

/// Runs the session churn.
pub fn run_sessions(spec: &SessionsSpec) -> Result<RunStats, RunError> {
    let mut poll = Poll::new().map_err(|e| RunError::Worker(format!("epoll: {e}")))?;
    let mut slots: Vec<Option<Life>> = (0..spec.concurrency).map(|_| None).collect();
    let mut stats = RunStats::empty();
    let t0 = now_ns();
    let window_start = t0 + spec.warmup_ns;
    let window_end = window_start + spec.measure_ns;
    let mut events = Events::with_capacity(1024);
    let mut cpu0 = None;
    let mut cpu1 = None;
    let server_cpu = || spec.server_pid.and_then(|p| process_cpu_ns(p).ok());
    let mut last_completion = window_start;
    loop {
        let now = now_ns();
        if cpu0.is_none() && now >= window_start {
            cpu0 = Some((self_cpu_ns(), server_cpu()));
        }
        let stopping = now >= window_end;
        if stopping && cpu1.is_none() {
            cpu1 = Some((self_cpu_ns(), server_cpu()));
        }
        let mut live = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_none() && !stopping {
                let conn = open_registered(&poll, spec.addr, spec.session_timeout_ms, i)?;
                *slot = Some(Life {
                    conn,
                    started_ns: now,
                    close_xid: None,
                });
            }
            if let Some(life) = slot {
                live += 1;
                if now.saturating_sub(life.started_ns) > spec.life_ns_max {
                    stats.unanswered += 1;
                    let ms = (now - life.started_ns) / 1_000_000;
                    stats.error(|| format!("a session open/close took over {ms} ms"));
                    let _ = poll.registry().deregister(life.conn.stream());
                    *slot = None;
                }
            }
        }
        if stopping && live == 0 {
            break;
        }
        if stopping && now > window_end + spec.life_ns_max {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| RunError::Worker(format!("poll: {e}")))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(life) = slots[i].as_mut() else {
                continue;
            };
            let fail = |source| RunError::Conn { session: i, source };
            if ev.is_writable() {
                life.conn.flush().map_err(fail)?;
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let open = life.conn.fill().map_err(fail)?;
            let mut finished = false;
            while let Some(frame) = life.conn.next_frame().map_err(fail)? {
                if !life.conn.is_ready() {
                    life.conn.accept_handshake(frame).map_err(fail)?;
                    let xid = life.conn.next_xid();
                    Request::CloseSession.encode_frame(xid, life.conn.out());
                    life.conn.flush().map_err(fail)?;
                    life.close_xid = Some(xid);
                    continue;
                }
                let header = life.conn.reply_header(frame).map_err(fail)?;
                if Some(header.xid) == life.close_xid {
                    if header.err != 0 {
                        stats.error(|| format!("closeSession answered {}", error_name(header.err)));
                    }
                    finished = true;
                }
            }
            if !finished && !open {
                return Err(fail(ConnError::Closed));
            }
            if finished {
                let done = now_ns();
                if done >= window_start && done < window_end {
                    stats.ops += 1;
                    stats
                        .latency
                        .saturating_record((done - life.started_ns).max(1));
                    stats.max_gap_ns = stats.max_gap_ns.max(done - last_completion);
                    last_completion = done;
                }
                reset(&life.conn);
                let _ = poll.registry().deregister(life.conn.stream());
                slots[i] = None;
            }
        }
    }
    if let (Some(cpu0), Some(cpu1)) = (cpu0, cpu1) {
        stats.client_cpu_ns = cpu1.0.saturating_sub(cpu0.0);
        stats.server_cpu_ns = cpu0.1.zip(cpu1.1).map(|(a, b)| b.saturating_sub(a));
    }
    stats.window_ns = spec.measure_ns;
    Ok(stats)
}

/// Sets SO_LINGER 0 so the close that follows resets the connection.
fn reset(conn: &Conn) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            conn.raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
