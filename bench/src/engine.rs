//! The pipelined load generator: `sessions` sessions spread over `threads` worker
//! threads, each session keeping up to `outstanding` requests in flight.
//!
//! Each worker owns its sessions and one epoll instance (mio, edge-triggered): it reads
//! every reply a wake-up brought, refills that session's window, and writes the new
//! requests with one `write` per session per wake-up. No locks or channels on the path;
//! workers meet only at barriers (connected, go, done) and merge their histograms at the
//! end.
//!
//! Two paces:
//! * closed loop: a reply frees a slot and the next request goes out at once; latency is
//!   measured from the send;
//! * fixed rate: each worker has a schedule of intended send times (its share of the
//!   rate, round-robin over its sessions) and wakes on a timerfd at each; a request that
//!   cannot go out because its session's window is full waits in that session's
//!   backlog, and its latency is measured from its *intended* time, so a server stall
//!   shows up in full instead of being hidden by the client waiting with it
//!   (coordinated omission).
//!
//! Two spans: timed (warm-up, then a measured window; ops completing in the window are
//! counted), or counted (until the source runs dry, every op measured: `load`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ferrokeeper_net::request::Request;
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::clock::{now_ns, sleep_until, tighten_timer_slack, Timer};
use crate::conn::{Conn, ConnError};
use crate::ops::{OpKind, OpSource};
use crate::stats::{process_cpu_ns, self_cpu_ns, RunStats};

/// How long connecting all sessions may take.
pub const CONNECT_NS_MAX: u64 = 15_000_000_000;

/// How long a worker waits for closeSession answers before dropping its connections.
const CLOSE_NS_MAX: u64 = 3_000_000_000;

/// The timer's token; sessions use their index.
const TIMER: Token = Token(usize::MAX);

/// When requests go out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As soon as a slot in the session's window is free.
    Closed,
    /// At a fixed total rate, whatever the replies do.
    Rate {
        /// Requests per second over all sessions.
        ops_per_sec: f64,
    },
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// A warm-up, then a measured window.
    Timed {
        /// Warm-up, ns (sent, not counted).
        warmup_ns: u64,
        /// Measured window, ns.
        measure_ns: u64,
    },
    /// Until the source has nothing more; everything is measured.
    Count,
}

/// A pipelined run.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Sessions in all.
    pub sessions: usize,
    /// Requests in flight per session at most.
    pub outstanding: usize,
    /// Worker threads (each gets a contiguous share of the sessions).
    pub threads: usize,
    /// Closed loop or fixed rate.
    pub pace: Pace,
    /// Timed or counted.
    pub span: Span,
    /// Session timeout asked for in the handshake, ms.
    pub session_timeout_ms: i32,
    /// How long to wait for requests in flight after the window closes before calling
    /// them unanswered (a stall), ns.
    pub drain_ns: u64,
    /// Server process to read CPU time from, if any.
    pub server_pid: Option<u32>,
    /// The other members of an ensemble, empty for one server: session `i` connects to
    /// `[addr, peers..][i % (1 + peers.len())]`, so clients spread over every member.
    pub peers: Vec<SocketAddr>,
    /// The other members' pids: the server CPU time is then summed over `server_pid` and
    /// these, the cost of a replicated op being paid on every member.
    pub peer_pids: Vec<u32>,
}

impl PipelineSpec {
    /// The address session `index` connects to.
    pub fn addr_of(&self, index: usize) -> SocketAddr {
        match index % (1 + self.peers.len()) {
            0 => self.addr,
            k => self.peers[k - 1],
        }
    }

    /// The server CPU time so far, summed over every process of the run; `None` when
    /// there is no pid or one could not be read.
    pub fn server_cpu_ns(&self) -> Option<u64> {
        let first = process_cpu_ns(self.server_pid?).ok()?;
        self.peer_pids
            .iter()
            .try_fold(first, |sum, &pid| process_cpu_ns(pid).ok().map(|c| sum + c))
    }
}

/// Why a run could not be carried out at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A session failed to connect or its connection broke.
    #[error("session {session}: {source}")]
    Conn {
        /// Index of the session.
        session: usize,
        /// What happened.
        source: ConnError,
    },
    /// Sessions did not all connect in time.
    #[error("{pending} of {total} sessions not connected after {seconds} s")]
    ConnectTimeout {
        /// Still not connected.
        pending: usize,
        /// Sessions of the worker.
        total: usize,
        /// The limit.
        seconds: u64,
    },
    /// A worker thread panicked or a poll failed.
    #[error("worker: {0}")]
    Worker(String),
}

struct Inflight {
    xid: i32,
    start_ns: u64,
    kind: OpKind,
}

struct Session {
    conn: Conn,
    /// Index over all workers.
    index: usize,
    inflight: VecDeque<Inflight>,
    /// Fixed rate: intended send times not yet sent.
    backlog: VecDeque<u64>,
}

/// Shared timing of a run, set by the coordinator between the barriers.
struct Clock {
    t0_ns: AtomicU64,
    ready: Barrier,
    go: Barrier,
    done: Barrier,
}

/// Runs a pipelined workload; `make_source(worker)` builds each worker's request source.
pub fn run_pipeline(
    spec: &PipelineSpec,
    make_source: &(dyn Fn(usize) -> Box<dyn OpSource> + Sync),
) -> Result<RunStats, RunError> {
    let threads = spec.threads.clamp(1, spec.sessions.max(1));
    let clock = Arc::new(Clock {
        t0_ns: AtomicU64::new(0),
        ready: Barrier::new(threads + 1),
        go: Barrier::new(threads + 1),
        done: Barrier::new(threads + 1),
    });
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for w in 0..threads {
            // Contiguous shares: worker w gets sessions [lo, hi).
            let lo = spec.sessions * w / threads;
            let hi = spec.sessions * (w + 1) / threads;
            let clock = Arc::clone(&clock);
            let source = make_source(w);
            handles.push(scope.spawn(move || {
                let worker = Worker::connect(spec, lo..hi);
                clock.ready.wait();
                clock.go.wait();
                let t0 = clock.t0_ns.load(Ordering::Acquire);
                let mut worker = match worker {
                    Ok(worker) => worker,
                    Err(e) => {
                        clock.done.wait();
                        return Err(e);
                    }
                };
                let stats = worker.drive(spec, source, t0);
                clock.done.wait();
                worker.close();
                stats
            }));
        }
        clock.ready.wait();
        let t0 = now_ns();
        clock.t0_ns.store(t0, Ordering::Release);
        let server_cpu = || spec.server_cpu_ns();
        let (window_ns, client_cpu_ns, server_cpu_ns);
        match spec.span {
            Span::Timed {
                warmup_ns,
                measure_ns,
            } => {
                clock.go.wait();
                sleep_until(t0 + warmup_ns);
                let (c0, s0) = (self_cpu_ns(), server_cpu());
                sleep_until(t0 + warmup_ns + measure_ns);
                let (c1, s1) = (self_cpu_ns(), server_cpu());
                clock.done.wait();
                window_ns = measure_ns;
                client_cpu_ns = c1.saturating_sub(c0);
                server_cpu_ns = s0.zip(s1).map(|(a, b)| b.saturating_sub(a));
            }
            Span::Count => {
                let (c0, s0) = (self_cpu_ns(), server_cpu());
                clock.go.wait();
                clock.done.wait();
                let end = now_ns();
                let (c1, s1) = (self_cpu_ns(), server_cpu());
                window_ns = end - t0;
                client_cpu_ns = c1.saturating_sub(c0);
                server_cpu_ns = s0.zip(s1).map(|(a, b)| b.saturating_sub(a));
            }
        }
        let mut total = RunStats::empty();
        total.window_ns = window_ns;
        total.client_cpu_ns = client_cpu_ns;
        total.server_cpu_ns = server_cpu_ns;
        for h in handles {
            match h.join() {
                Ok(Ok(stats)) => total.merge_worker(&stats),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(RunError::Worker("worker thread panicked".into())),
            }
        }
        Ok(total)
    })
}

struct Worker {
    poll: Poll,
    sessions: Vec<Session>,
    /// Requests in flight per session at most.
    outstanding: usize,
    /// The run's pace.
    pace: Pace,
    /// Start of the measured window (send lag is recorded from there).
    window_start: u64,
    /// This worker's share of the total rate, for fixed-rate runs.
    share: f64,
}

impl Worker {
    /// Opens this worker's sessions and waits for every handshake.
    fn connect(spec: &PipelineSpec, range: std::ops::Range<usize>) -> Result<Worker, RunError> {
        let mut poll = Poll::new().map_err(|e| RunError::Worker(format!("epoll: {e}")))?;
        let share = range.len() as f64 / spec.sessions.max(1) as f64;
        let first = range.start;
        let addrs: Vec<SocketAddr> = range.clone().map(|i| spec.addr_of(i)).collect();
        let conns = connect_all_to(&mut poll, &addrs, spec.session_timeout_ms)
            .map_err(|e| e.offset_session(first))?;
        let sessions = conns
            .into_iter()
            .enumerate()
            .map(|(i, conn)| Session {
                conn,
                index: first + i,
                inflight: VecDeque::new(),
                backlog: VecDeque::new(),
            })
            .collect();
        Ok(Worker {
            poll,
            sessions,
            outstanding: spec.outstanding.max(1),
            pace: spec.pace,
            window_start: 0,
            share,
        })
    }

    /// Sends and receives until the window closes and the requests in flight drain.
    fn drive(
        &mut self,
        spec: &PipelineSpec,
        mut source: Box<dyn OpSource>,
        t0: u64,
    ) -> Result<RunStats, RunError> {
        let mut stats = RunStats::empty();
        let (window_start, window_end) = match spec.span {
            Span::Timed {
                warmup_ns,
                measure_ns,
            } => (t0 + warmup_ns, t0 + warmup_ns + measure_ns),
            Span::Count => (t0, u64::MAX),
        };
        self.window_start = window_start;
        let timer = match spec.pace {
            Pace::Rate { .. } => {
                tighten_timer_slack();
                let timer = Timer::new().map_err(|e| RunError::Worker(format!("timerfd: {e}")))?;
                self.poll
                    .registry()
                    .register(&mut SourceFd(&timer.raw_fd()), TIMER, Interest::READABLE)
                    .map_err(|e| RunError::Worker(format!("register timer: {e}")))?;
                Some(timer)
            }
            Pace::Closed => None,
        };
        // Fixed rate: this worker's arrivals are t0 + k * interval for k = 0, 1, ...
        let interval_ns = match spec.pace {
            Pace::Rate { ops_per_sec } => 1e9 / (ops_per_sec * self.share).max(1e-9),
            Pace::Closed => 0.0,
        };
        let mut arrivals: u64 = 0;
        let mut next_arrival = t0;
        let mut exhausted = false;
        let mut last_completion = window_start;
        let mut events = Events::with_capacity(1024);
        let n = self.sessions.len();

        // Closed loop: fill every window once; replies keep them full.
        if spec.pace == Pace::Closed {
            let now = now_ns();
            for i in 0..n {
                exhausted |= self.issue(i, now, &mut *source, &mut stats.send_lag)?;
            }
        }
        let mut stop_at: Option<u64> = None;
        loop {
            let now = now_ns();
            if stop_at.is_none() && (now >= window_end || exhausted) {
                stop_at = Some(now);
            }
            if let Some(stopped) = stop_at {
                let inflight: usize = self.sessions.iter().map(|s| s.inflight.len()).sum();
                if inflight == 0 {
                    break;
                }
                if now > stopped + spec.drain_ns {
                    stats.unanswered = inflight as u64;
                    stats.error(|| {
                        format!(
                            "{inflight} requests unanswered {} ms after the window closed",
                            spec.drain_ns / 1_000_000
                        )
                    });
                    break;
                }
            } else if let Pace::Rate { .. } = spec.pace {
                // Hand every arrival that is due to its session, round-robin.
                let first = arrivals;
                while next_arrival <= now {
                    let k = arrivals as usize % n;
                    self.sessions[k].backlog.push_back(next_arrival);
                    arrivals += 1;
                    next_arrival = t0 + (arrivals as f64 * interval_ns) as u64;
                }
                let touched = ((arrivals - first) as usize).min(n);
                for j in 0..touched {
                    let i = (first as usize + j) % n;
                    self.issue(i, now, &mut *source, &mut stats.send_lag)?;
                }
            }
            let timeout = match (&timer, stop_at) {
                (_, Some(_)) => Duration::from_millis(5),
                (Some(timer), None) => {
                    timer
                        .arm_at(next_arrival.min(window_end))
                        .map_err(|e| RunError::Worker(format!("timerfd: {e}")))?;
                    Duration::from_millis(200)
                }
                (None, None) => {
                    Duration::from_nanos(window_end.saturating_sub(now).min(50_000_000))
                }
            };
            self.poll
                .poll(&mut events, Some(timeout))
                .map_err(|e| RunError::Worker(format!("poll: {e}")))?;
            let stopping = stop_at.is_some() || now_ns() >= window_end;
            for ev in events.iter() {
                if ev.token() == TIMER {
                    if let Some(t) = &timer {
                        t.clear();
                    }
                    continue;
                }
                let i = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    let s = &mut self.sessions[i];
                    let open = s.conn.fill().map_err(|e| RunError::Conn {
                        session: s.index,
                        source: e,
                    })?;
                    let done_ns = now_ns();
                    while let Some(frame) = s.conn.next_frame().map_err(|e| RunError::Conn {
                        session: s.index,
                        source: e,
                    })? {
                        let header = s.conn.reply_header(frame).map_err(|e| RunError::Conn {
                            session: s.index,
                            source: e,
                        })?;
                        if header.xid < 0 {
                            // A notification (-1) or a ping answer (-2): not a request of ours.
                            continue;
                        }
                        let Some(op) = s.inflight.pop_front() else {
                            return Err(RunError::Conn {
                                session: s.index,
                                source: ConnError::Unsolicited(header.xid),
                            });
                        };
                        if op.xid != header.xid {
                            return Err(RunError::Conn {
                                session: s.index,
                                source: ConnError::XidOrder {
                                    got: header.xid,
                                    want: op.xid,
                                },
                            });
                        }
                        if header.err != 0 {
                            let (kind, err) = (op.kind, header.err);
                            stats.error(|| {
                                format!("{} answered error {}", kind.name(), error_name(err))
                            });
                        }
                        if done_ns >= window_start && done_ns < window_end {
                            stats.ops += 1;
                            stats
                                .latency
                                .saturating_record(done_ns.saturating_sub(op.start_ns).max(1));
                            stats.max_gap_ns = stats.max_gap_ns.max(done_ns - last_completion);
                            last_completion = done_ns;
                        }
                    }
                    if !(open || stopping && s.inflight.is_empty()) {
                        return Err(RunError::Conn {
                            session: s.index,
                            source: ConnError::Closed,
                        });
                    }
                    if !stopping {
                        exhausted |= self.issue(i, done_ns, &mut *source, &mut stats.send_lag)?;
                    }
                }
                if ev.is_writable() {
                    let s = &mut self.sessions[i];
                    s.conn.flush().map_err(|e| RunError::Conn {
                        session: s.index,
                        source: e,
                    })?;
                }
            }
        }
        if let Span::Timed { .. } = spec.span {
            // A worker whose last completion came long before the window's end stalled.
            if last_completion < window_end && stats.ops > 0 {
                stats.max_gap_ns = stats.max_gap_ns.max(window_end - last_completion);
            }
        }
        Ok(stats)
    }

    /// Fills session `i`'s window and writes. Returns whether the source ran dry.
    fn issue(
        &mut self,
        i: usize,
        now: u64,
        source: &mut dyn OpSource,
        lag: &mut Histogram<u64>,
    ) -> Result<bool, RunError> {
        let (outstanding, pace, window_start) = (self.outstanding, self.pace, self.window_start);
        let s = &mut self.sessions[i];
        let mut exhausted = false;
        while s.inflight.len() < outstanding {
            let start_ns = match pace {
                Pace::Closed => now,
                Pace::Rate { .. } => match s.backlog.front() {
                    Some(&t) => t,
                    None => break,
                },
            };
            let xid = s.conn.next_xid();
            let Some(kind) = source.next(s.index, xid, s.conn.out()) else {
                exhausted = true;
                break;
            };
            if let Pace::Rate { .. } = pace {
                s.backlog.pop_front();
                if start_ns >= window_start {
                    lag.saturating_record(now.saturating_sub(start_ns).max(1));
                }
            }
            s.inflight.push_back(Inflight {
                xid,
                start_ns,
                kind,
            });
        }
        s.conn.flush().map_err(|e| RunError::Conn {
            session: s.index,
            source: e,
        })?;
        Ok(exhausted)
    }

    /// Closes every session (see [`close_all`]).
    fn close(&mut self) {
        let mut conns: Vec<Conn> = self.sessions.drain(..).map(|s| s.conn).collect();
        close_all(&mut self.poll, &mut conns);
    }
}

impl RunError {
    /// The same error with session indexes counted from `first`.
    fn offset_session(self, first: usize) -> RunError {
        match self {
            RunError::Conn { session, source } => RunError::Conn {
                session: session + first,
                source,
            },
            other => other,
        }
    }
}

/// Opens one session to `addr` (its handshake queued, not yet answered) and registers it
/// in `poll` under token `i`.
pub fn open_registered(
    poll: &Poll,
    addr: SocketAddr,
    session_timeout_ms: i32,
    i: usize,
) -> Result<Conn, RunError> {
    let mut conn = Conn::open(addr, session_timeout_ms).map_err(|e| RunError::Conn {
        session: i,
        source: e.into(),
    })?;
    poll.registry()
        .register(
            conn.stream(),
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| RunError::Worker(format!("register: {e}")))?;
    Ok(conn)
}

/// Opens `count` sessions to `addr`, registered in `poll` under tokens 0..count, and
/// waits until every handshake is answered.
pub fn connect_all(
    poll: &mut Poll,
    addr: SocketAddr,
    count: usize,
    session_timeout_ms: i32,
) -> Result<Vec<Conn>, RunError> {
    connect_all_to(poll, &vec![addr; count], session_timeout_ms)
}

/// [`connect_all`] with session `i` opened to `addrs[i]` (an ensemble's members).
pub fn connect_all_to(
    poll: &mut Poll,
    addrs: &[SocketAddr],
    session_timeout_ms: i32,
) -> Result<Vec<Conn>, RunError> {
    let count = addrs.len();
    let mut conns = Vec::with_capacity(count);
    for (i, &addr) in addrs.iter().enumerate() {
        let mut conn = open_registered(poll, addr, session_timeout_ms, i)?;
        conn.flush().map_err(|e| RunError::Conn {
            session: i,
            source: e,
        })?;
        conns.push(conn);
    }
    let deadline = now_ns() + CONNECT_NS_MAX;
    let mut events = Events::with_capacity(1024);
    let mut pending = count;
    while pending > 0 {
        if now_ns() > deadline {
            return Err(RunError::ConnectTimeout {
                pending,
                total: count,
                seconds: CONNECT_NS_MAX / 1_000_000_000,
            });
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| RunError::Worker(format!("poll: {e}")))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = conns.get_mut(i) else { continue };
            let fail = |source| RunError::Conn { session: i, source };
            if ev.is_writable() {
                c.flush().map_err(fail)?;
            }
            if c.is_ready() || !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let open = c.fill().map_err(fail)?;
            if let Some(frame) = c.next_frame().map_err(fail)? {
                c.accept_handshake(frame).map_err(fail)?;
                pending -= 1;
            } else if !open {
                return Err(fail(ConnError::Closed));
            }
        }
    }
    Ok(conns)
}

/// Closes sessions whose requests have all been answered: sends closeSession on each
/// and waits for the answers (or the server's close) for at most [`CLOSE_NS_MAX`], so
/// the server does not carry them until they expire. `conns[i]` must be registered under
/// token `i`.
pub fn close_all(poll: &mut Poll, conns: &mut [Conn]) {
    let mut done = vec![false; conns.len()];
    let mut left = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        let xid = c.next_xid();
        Request::CloseSession.encode_frame(xid, c.out());
        if c.flush().is_ok() {
            left += 1;
        } else {
            done[i] = true;
        }
    }
    let deadline = now_ns() + CLOSE_NS_MAX;
    let mut events = Events::with_capacity(1024);
    while left > 0 && now_ns() < deadline {
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            return;
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if i >= conns.len() || done[i] {
                continue;
            }
            let c = &mut conns[i];
            let mut closed = ev.is_writable() && c.flush().is_err();
            closed |= !c.fill().unwrap_or(false);
            while let Ok(Some(frame)) = c.next_frame() {
                // Every request was answered before closeSession went out: the only
                // request reply left to come is closeSession's.
                if matches!(c.reply_header(frame), Ok(h) if h.xid > 0) {
                    closed = true;
                }
            }
            if closed {
                done[i] = true;
                left -= 1;
            }
        }
    }
}

/// A ZooKeeper error code by name, for messages.
pub fn error_name(err: i32) -> String {
    match ferrokeeper_net::ErrorCode::from_i32(err) {
        Some(code) => format!("{} ({err})", code.name()),
        None => format!("{err}"),
    }
}
