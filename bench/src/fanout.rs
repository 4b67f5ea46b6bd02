//! The `watch-fanout` workload: `watchers` sessions each leave a data watch on one node,
//! one more session sets the node's data, and the time from that setData's send to the
//! *last* watcher's notification is one sample. Then the watchers re-arm (getData with
//! watch) and it goes again. Throughput is counted in notifications delivered per second.

use std::net::SocketAddr;
use std::time::Duration;

use ferrokeeper_net::jute::NullableBuffer;
use ferrokeeper_net::records::{GetDataRequest, SetDataRequest};
use ferrokeeper_net::request::Request;
use mio::{Events, Poll};

use crate::clock::now_ns;
use crate::conn::ConnError;
use crate::engine::{connect_all, error_name, RunError};
use crate::ops::Template;
use crate::stats::{process_cpu_ns, self_cpu_ns, RunStats};

/// A watch fan-out run.
#[derive(Debug, Clone)]
pub struct FanoutSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Sessions that watch the node.
    pub watchers: usize,
    /// The watched node (it must exist).
    pub path: String,
    /// Data the writer sets.
    pub data: Vec<u8>,
    /// Warm-up, ns.
    pub warmup_ns: u64,
    /// Measured window, ns.
    pub measure_ns: u64,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// How long one arm or fire step may take before the run calls it a stall, ns.
    pub step_ns_max: u64,
    /// Server process to read CPU time from, if any.
    pub server_pid: Option<u32>,
}

/// Runs the fan-out.
pub fn run_fanout(spec: &FanoutSpec) -> Result<RunStats, RunError> {
    let mut poll = Poll::new().map_err(|e| RunError::Worker(format!("epoll: {e}")))?;
    let writer = spec.watchers;
    let mut conns = connect_all(
        &mut poll,
        spec.addr,
        spec.watchers + 1,
        spec.session_timeout_ms,
    )?;
    let arm = Template::new(&Request::GetData(GetDataRequest {
        path: spec.path.clone(),
        watch: true,
    }));
    let set = Template::new(&Request::SetData(SetDataRequest {
        path: spec.path.clone(),
        data: NullableBuffer(Some(spec.data.clone())),
        version: -1,
    }));
    let mut stats = RunStats::empty();
    let t0 = now_ns();
    let window_start = t0 + spec.warmup_ns;
    let window_end = window_start + spec.measure_ns;
    let server_cpu = || spec.server_pid.and_then(|p| process_cpu_ns(p).ok());
    let mut cpu0 = None;
    let mut events = Events::with_capacity(1024);
    let mut last_completion = window_start;
    loop {
        let now = now_ns();
        if cpu0.is_none() && now >= window_start {
            cpu0 = Some((self_cpu_ns(), server_cpu()));
        }
        if now >= window_end {
            break;
        }
        // Arm: every watcher reads the node with a watch.
        for c in conns.iter_mut().take(spec.watchers) {
            let xid = c.next_xid();
            arm.append(xid, c.out());
            c.flush().map_err(|e| RunError::Conn {
                session: 0,
                source: e,
            })?;
        }
        let mut armed = 0;
        wait(
            &mut poll,
            &mut events,
            &mut conns,
            spec.step_ns_max,
            |i, xid, err, _| {
                if i < writer && xid > 0 {
                    armed += 1;
                    if err != 0 {
                        return Err(format!("getData(watch) answered {}", error_name(err)));
                    }
                }
                Ok(armed == spec.watchers)
            },
        )
        .map_err(|e| stall(&mut stats, e, "arming the watches"))?;
        // Fire: set the data; wait for every notification and the writer's answer.
        let xid = conns[writer].next_xid();
        set.append(xid, conns[writer].out());
        let fired = now_ns();
        conns[writer].flush().map_err(|e| RunError::Conn {
            session: writer,
            source: e,
        })?;
        let mut notified = 0;
        let mut answered = false;
        let mut last_notification = fired;
        wait(
            &mut poll,
            &mut events,
            &mut conns,
            spec.step_ns_max,
            |i, xid, err, at| {
                if i == writer && xid > 0 {
                    answered = true;
                    if err != 0 {
                        return Err(format!("setData answered {}", error_name(err)));
                    }
                } else if i < writer && xid == -1 {
                    notified += 1;
                    last_notification = last_notification.max(at);
                }
                Ok(answered && notified == spec.watchers)
            },
        )
        .map_err(|e| stall(&mut stats, e, "waiting for the notifications"))?;
        if fired >= window_start && last_notification < window_end {
            stats.ops += spec.watchers as u64;
            stats
                .latency
                .saturating_record((last_notification - fired).max(1));
            stats.max_gap_ns = stats.max_gap_ns.max(last_notification - last_completion);
            last_completion = last_notification;
        }
    }
    let cpu1 = (self_cpu_ns(), server_cpu());
    if let Some(cpu0) = cpu0 {
        stats.client_cpu_ns = cpu1.0.saturating_sub(cpu0.0);
        stats.server_cpu_ns = cpu0.1.zip(cpu1.1).map(|(a, b)| b.saturating_sub(a));
    }
    stats.window_ns = spec.measure_ns;
    crate::engine::close_all(&mut poll, &mut conns);
    Ok(stats)
}

/// Why a wait ended early.
enum WaitError {
    /// The step took longer than allowed.
    Timeout,
    /// An unexpected answer.
    Reply(String),
    /// A connection failed.
    Conn(usize, ConnError),
}

fn stall(stats: &mut RunStats, e: WaitError, what: &str) -> RunError {
    match e {
        WaitError::Timeout => {
            stats.unanswered += 1;
            RunError::Worker(format!("stalled {what}"))
        }
        WaitError::Reply(m) => RunError::Worker(m),
        WaitError::Conn(session, source) => RunError::Conn { session, source },
    }
}

/// Reads replies from every connection, handing each to `seen(session, xid, err,
/// arrival_ns)`, until `seen` says done.
fn wait(
    poll: &mut Poll,
    events: &mut Events,
    conns: &mut [crate::conn::Conn],
    limit_ns: u64,
    mut seen: impl FnMut(usize, i32, i32, u64) -> Result<bool, String>,
) -> Result<(), WaitError> {
    let deadline = now_ns() + limit_ns;
    loop {
        if now_ns() > deadline {
            return Err(WaitError::Timeout);
        }
        poll.poll(events, Some(Duration::from_millis(50)))
            .map_err(|e| WaitError::Conn(0, e.into()))?;
        let mut done = false;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() {
                c.flush().map_err(|e| WaitError::Conn(i, e))?;
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let open = c.fill().map_err(|e| WaitError::Conn(i, e))?;
            let at = now_ns();
            while let Some(frame) = c.next_frame().map_err(|e| WaitError::Conn(i, e))? {
                let h = c.reply_header(frame).map_err(|e| WaitError::Conn(i, e))?;
                done = seen(i, h.xid, h.err, at).map_err(WaitError::Reply)?;
            }
            if !open {
                return Err(WaitError::Conn(i, ConnError::Closed));
            }
        }
        if done {
            return Ok(());
        }
    }
}
