//! One client connection: a reader task (frames → requests) and a writer task (output
//! buffer → socket), sharing the connection's state through `Rc<Conn>`.
//!
//! Per-session order: replies leave in request order. A write is queued as pending
//! until its completion arrives; a read that arrives while writes are pending waits
//! behind them and is served, from the newer root, when they complete.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::frame::{check_frame, LENGTH_BYTES};
use ferrokeeper_net::records::{ConnectResponse, WatcherEvent};
use ferrokeeper_net::request::{Connect, Request};
use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use super::read::{self, ReadCtx};
use super::reply::{header_only, notification, write_reply};
use super::secure::ClientStream;
use super::Shard;
use crate::commit::stage::{origin, StageMsg};
use crate::core::acl::{self, AuthIds};
use crate::core::sequencer::{CommitRequest, ReplyMsg};

mod buffers;
mod sasl;

pub use buffers::ReadScratch;

/// Bytes of replies and notifications a connection may have waiting for the client
/// before the server gives up on it (a client that never reads its replies).
const OUTPUT_BYTES_MAX: usize = 64 << 20;
/// A reader stops reading requests while this many bytes wait for the client.
const OUTPUT_BYTES_PAUSE: usize = 4 << 20;
/// A reply that waited this long for the connection's writer is logged ("slow reply
/// write"); writes answered this long after they were read are logged by the shard
/// (`Shard::complete`, "slow requests answered").
pub(super) const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_millis(50);

enum Pending {
    Write {
        received: Instant,
    },
    /// A sync sent through the leader ahead of a read (`ferrokeeper.quorumReads`): its
    /// reply is not the client's; the read queued behind it is served when it comes.
    Barrier,
    Read {
        xid: i32,
        req: Request,
        received: Instant,
    },
    Error {
        xid: i32,
        err: ErrorCode,
    },
    /// An error after which ZooKeeper closes the connection (unknown opcodes).
    Fatal {
        xid: i32,
        err: ErrorCode,
    },
}

struct ConnState {
    remote: Option<SocketAddr>,
    established_ms: i64,
    session_timeout_ms: i32,
    packets_received: u64,
    packets_sent: u64,
    last_op: &'static str,
    last_cxid: i32,
    last_zxid: i64,
    last_response_ms: u64,
    last_latency_ms: u64,
    latency: (u64, u64, u64, u64),
    session_id: i64,
    auth: Arc<AuthIds>,
    pending: VecDeque<Pending>,
    out: Vec<u8>,
    /// When `out` last went from empty to holding a reply.
    out_since: Option<Instant>,
    closing: Option<&'static str>,
    /// The session's closeSession committed: the sequencer has forgotten it.
    session_closed: bool,
    has_read_only: bool,
    /// The SASL exchange, once the client started one.
    sasl: Option<crate::auth::SaslConn>,
}

/// A connection as the shard sees it.
pub struct Conn {
    id: u64,
    stats: Arc<crate::shard::shared::ShardStats>,
    /// The origin of `lresp`'s monotonic clock: when the server started.
    clock_origin: Instant,
    fd: RawFd,
    st: RefCell<ConnState>,
    wake_writer: LocalSender<()>,
    connect_result: LocalSender<bool>,
    wake_reader: LocalSender<()>,
}

impl Conn {
    fn wake(&self) {
        let _ = self.wake_writer.try_send(());
    }

    /// Marks the connection for closing after what is buffered has been written.
    pub fn close(&self, reason: &'static str) {
        let mut st = self.st.borrow_mut();
        if st.closing.is_none() {
            tracing::debug!(
                conn = self.id,
                session = format_args!("0x{:x}", st.session_id),
                reason,
                "closing connection"
            );
            st.closing = Some(reason);
        }
        drop(st);
        self.wake();
        let _ = self.wake_reader.try_send(());
        let _ = self.connect_result.try_send(false);
    }

    /// Queues one frame with a reply header (a reply, a ping's, a watch event) and
    /// records its size as ZooKeeper's `client_response_size`.
    fn push_reply(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut size = 0;
        self.push_output(|out| {
            let before = out.len();
            f(out);
            size = out.len().saturating_sub(before + LENGTH_BYTES);
        });
        if size > 0 {
            self.stats.responses.record(size as i64);
        }
    }

    fn push_output(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.st.borrow_mut();
        // Once closing, nothing more is queued: what was queued before still goes out.
        if st.closing.is_some() {
            return;
        }
        if st.out.is_empty() {
            st.out_since = Some(Instant::now());
        }
        f(&mut st.out);
        st.packets_sent += 1;
        self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        let over = st.out.len() > OUTPUT_BYTES_MAX;
        drop(st);
        if over {
            tracing::warn!(conn = self.id, "client is not reading its replies; closing");
            self.close("output backlog over limit");
        }
        self.wake();
    }

    /// This connection's counters for the admin commands.
    pub fn report(&self) -> crate::commit::report::ConnReport {
        let st = self.st.borrow();
        crate::commit::report::ConnReport {
            remote: st.remote,
            session_id: st.session_id,
            session_timeout_ms: st.session_timeout_ms,
            outstanding: st
                .pending
                .iter()
                .filter(|p| matches!(p, Pending::Write { .. }))
                .count() as u64,
            packets_received: st.packets_received,
            packets_sent: st.packets_sent,
            established_ms: st.established_ms,
            last_op: st.last_op,
            last_cxid: st.last_cxid,
            last_zxid: st.last_zxid,
            last_response_ms: st.last_response_ms,
            last_latency_ms: st.last_latency_ms,
            latency: st.latency,
        }
    }

    /// `crst`: forgets this connection's counters.
    pub fn reset_counters(&self) {
        let mut st = self.st.borrow_mut();
        st.packets_received = 0;
        st.packets_sent = 0;
        st.last_op = "NA";
        st.last_cxid = -1;
        st.last_zxid = -1;
        st.last_response_ms = 0;
        st.last_latency_ms = 0;
        st.latency = (0, 0, 0, 0);
    }

    /// Counts one answered request.
    fn record(&self, op: &'static str, xid: i32, zxid: i64, received: Instant, write: bool) {
        // One clock read for both figures below: a read is ~2 µs of CPU, and the two
        // `clock_gettime`s here were ~2 % of it (bench/results/read-fold-2026-12-06.md).
        let now = Instant::now();
        let ms = now.duration_since(received).as_millis() as u64;
        self.stats.record_latency(ms);
        if write {
            self.stats.update_latency.record(ms);
        } else {
            self.stats.read_latency.record(ms);
        }
        let mut st = self.st.borrow_mut();
        st.last_op = op;
        st.last_cxid = xid;
        st.last_zxid = zxid;
        // ZooKeeper prints `System.nanoTime() / 1e6`, a monotonic clock with an
        // arbitrary origin: the server's start is ours.
        st.last_response_ms = now.duration_since(self.clock_origin).as_millis() as u64;
        st.last_latency_ms = ms;
        let (min, max, sum, count) = st.latency;
        st.latency = (
            if count == 0 { ms } else { min.min(ms) },
            max.max(ms),
            sum + ms,
            count + 1,
        );
    }

    /// Whether this connection's identities grant READ on a node with `acl`.
    pub fn may_read(&self, acl: &[ferrokeeper_net::records::Acl], skip_acl: bool) -> bool {
        acl::check(
            acl,
            ferrokeeper_net::codes::perms::READ,
            &self.st.borrow().auth,
            skip_acl,
        )
    }

    /// Queues a watch notification.
    pub fn notify(&self, event: &WatcherEvent, zxid: i64) {
        self.push_reply(|out| notification(out, zxid, event));
    }

    /// Handles a reply from the commit stage; for a write's reply, returns when the
    /// write was read.
    pub fn on_reply(&self, shard: &Rc<Shard>, reply: ReplyMsg) -> Option<Instant> {
        match reply {
            ReplyMsg::Connected {
                session_id,
                timeout_ms,
                passwd,
                valid,
                read_only,
            } => {
                let has_read_only = self.st.borrow().has_read_only;
                let response = ConnectResponse {
                    protocol_version: 0,
                    time_out: timeout_ms,
                    session_id,
                    passwd: passwd.to_vec().into(),
                };
                // Answer in the form the client asked in: with the readOnly byte only
                // if its request had one.
                let read_only = has_read_only.then_some(read_only);
                self.push_output(|out| {
                    ferrokeeper_net::response::encode_connect_response(&response, read_only, out)
                });
                if valid {
                    let mut st = self.st.borrow_mut();
                    st.session_id = session_id;
                    st.session_timeout_ms = timeout_ms;
                    st.last_op = "SESS";
                    drop(st);
                    shard.touched.borrow_mut().insert(session_id);
                    tracing::debug!(
                        conn = self.id,
                        session = format_args!("0x{session_id:x}"),
                        timeout_ms,
                        "session established"
                    );
                } else {
                    self.close("invalid session: expired or wrong password");
                }
                let _ = self.connect_result.try_send(valid);
            }
            ReplyMsg::Write {
                xid,
                zxid,
                opcode,
                outcome,
            } => {
                let front = self.st.borrow_mut().pending.pop_front();
                let received = match front {
                    Some(Pending::Write { received }) => received,
                    Some(Pending::Barrier) => {
                        self.drain_reads(shard);
                        return None;
                    }
                    _ => panic!("write reply without a pending write on conn {}", self.id),
                };
                self.push_reply(|out| write_reply(out, xid, zxid, opcode, &outcome));
                self.record(write_op_name(opcode), xid, zxid, received, true);
                self.drain_reads(shard);
                return Some(received);
            }
            ReplyMsg::Close { reason } => {
                if reason == crate::core::sequencer::CLOSED_BY_CLIENT {
                    self.st.borrow_mut().session_closed = true;
                }
                self.close(reason)
            }
        }
        None
    }

    /// Whether the reader must stop reading requests for now:
    /// - replies pile up unread by the client (more than `OUTPUT_BYTES_PAUSE`);
    /// - `sessionQueuedRequestsMax` requests of this connection wait (writes in flight and
    ///   the reads ordered behind them), so one client cannot queue unbounded memory;
    /// - `globalOutstandingLimit` writes wait for the commit stage across the server and
    ///   this connection has one of them: ZooKeeper's `shouldThrottle` rule, which holds
    ///   back only connections with something outstanding, so every connection can still
    ///   make progress. No request is refused: the client just waits, as with ZooKeeper.
    ///
    /// Returns the counter of the limit that holds it back (in
    /// `ServerShared::limit_counters`), if any.
    fn must_pause_reading<'s>(
        &self,
        shared: &'s crate::shard::shared::ServerShared,
    ) -> Option<&'s std::sync::atomic::AtomicU64> {
        let counters = &shared.limit_counters;
        let st = self.st.borrow();
        if st.closing.is_some() {
            return None;
        }
        if st.out.len() > OUTPUT_BYTES_PAUSE {
            return Some(&counters.reads_paused_output);
        }
        if st.pending.len() >= shared.limits.session_queued_requests_max as usize {
            return Some(&counters.reads_paused_session_queue);
        }
        // Reads only queue behind a write and are served as soon as the writes ahead of
        // them are answered, so the front of a non-empty queue is a write in flight.
        let write_in_flight = matches!(
            st.pending.front(),
            Some(Pending::Write { .. } | Pending::Barrier)
        );
        let at_limit = shared.outstanding_requests.load(Ordering::Relaxed)
            >= shared.limits.global_outstanding_requests_max;
        (write_in_flight && at_limit).then_some(&counters.reads_paused_global_outstanding)
    }

    /// Serves the reads queued behind completed writes.
    fn drain_reads(&self, shard: &Rc<Shard>) {
        loop {
            let next = {
                let mut st = self.st.borrow_mut();
                match st.pending.front() {
                    Some(Pending::Read { .. } | Pending::Error { .. } | Pending::Fatal { .. }) => {
                        st.pending.pop_front()
                    }
                    _ => None,
                }
            };
            match next {
                Some(Pending::Read { xid, req, received }) => {
                    self.serve_read(shard, xid, &req, received)
                }
                Some(Pending::Error { xid, err }) => {
                    let zxid = shard.root.borrow().last_zxid;
                    self.push_reply(|out| header_only(out, xid, zxid, err));
                }
                Some(Pending::Fatal { xid, err }) => {
                    // UnimplementedRequestProcessor replies with the request's zxid,
                    // which is never set for an unknown opcode: −1.
                    self.push_reply(|out| header_only(out, xid, -1, err));
                    self.close("unknown opcode");
                    break;
                }
                _ => break,
            }
        }
        let _ = self.wake_reader.try_send(());
    }

    fn serve_read(&self, shard: &Rc<Shard>, xid: i32, req: &Request, received: Instant) {
        // Borrowed, not cloned: every shard holds the same `Arc`, and a clone and drop
        // per read bounced its count between the shards' cores. Nothing here awaits,
        // so no completion can replace the root meanwhile.
        let root = shard.root.borrow();
        let (session_id, auth) = {
            let st = self.st.borrow();
            (st.session_id, st.auth.clone())
        };
        let ctx = ReadCtx {
            conn: self.id,
            session_id,
            auth: &auth,
            skip_acl: shard.shared.skip_acl,
        };
        {
            let mut w = shard.watches.borrow_mut();
            self.push_reply(|out| read::serve(&root, &mut w, &ctx, xid, req, out));
            shard.note_watches(&w);
        }
        self.record(read_op_name(req), xid, root.last_zxid, received, false);
    }
}

/// Serves one accepted connection until it closes: plain TCP or TLS (`shard::secure`),
/// whose client certificate gave it `tls_ids` (x509) on top of its ip id.
pub async fn serve<S: ClientStream>(
    shard: Rc<Shard>,
    id: u64,
    stream: S,
    peer: Option<SocketAddr>,
    tls_ids: Vec<ferrokeeper_net::records::Id>,
) {
    let fd = stream.raw_fd();
    let peer_addr = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (rd, wr) = futures_lite::io::split(stream);
    let (wake_writer, writer_rx) = local_channel::new_bounded(1);
    let (connect_result, connect_rx) = local_channel::new_bounded(1);
    let (wake_reader, reader_rx) = local_channel::new_bounded(1);
    let conn = Rc::new(Conn {
        id,
        stats: shard.stats.clone(),
        clock_origin: shard.shared.started,
        fd,
        st: RefCell::new(ConnState {
            remote: peer,
            established_ms: crate::commit::stage::now_ms(),
            session_timeout_ms: 0,
            packets_received: 0,
            packets_sent: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency: (0, 0, 0, 0),
            session_id: 0,
            auth: Arc::new({
                let mut ids =
                    AuthIds::new(&peer_addr).with_sasl_acl(shard.shared.security.sasl_acl.clone());
                tls_ids.into_iter().for_each(|i| ids.add(i));
                ids
            }),
            pending: VecDeque::new(),
            out: Vec::new(),
            out_since: None,
            closing: None,
            session_closed: false,
            has_read_only: false,
            sasl: None,
        }),
        wake_writer,
        connect_result,
        wake_reader,
    });
    shard.conns.borrow_mut().insert(id, conn.clone());
    shard.stats.connections.fetch_add(1, Ordering::Relaxed);

    let writer = glommio::spawn_local(write_loop(shard.clone(), conn.clone(), wr, writer_rx));
    let outcome = read_loop(&shard, &conn, rd, connect_rx, reader_rx).await;
    if let Err(reason) = outcome {
        log_reader_failure(shard.index, &conn, peer, &reason);
    }
    conn.close("reader finished");
    writer.await;

    shard.conns.borrow_mut().remove(&id);
    // Writes still waiting for their reply leave the global count with the connection
    // (`Shard::complete` no longer counts replies for it).
    let unanswered = conn
        .st
        .borrow()
        .pending
        .iter()
        .filter(|p| matches!(p, Pending::Write { .. } | Pending::Barrier))
        .count() as u32;
    if unanswered > 0 {
        shard
            .shared
            .outstanding_requests
            .fetch_sub(unanswered, Ordering::Relaxed);
    }
    shard.forget_watches(id);
    shard.stats.connections.fetch_sub(1, Ordering::Relaxed);
    let (session_id, session_closed) = {
        let st = conn.st.borrow();
        (st.session_id, st.session_closed)
    };
    // Standalone, a session its client closed is gone from the sequencer, and telling it
    // the connection went would only wake the commit stage (one crossing of a session's
    // life in the `sessions` benchmark). An ensemble member's replication layer keeps
    // per-connection state of its own (`replica::node`), so it always hears.
    let sequencer_knows = !(session_closed && shard.shared.ensemble.is_none());
    if session_id != 0 && sequencer_knows {
        let _ = shard
            .to_commit
            .send(StageMsg::Core(CommitRequest::ConnClosed {
                conn: origin(shard.index, id),
                session_id,
            }))
            .await;
    }
}

/// Logs why connection `conn`'s reader stopped. Once the client's closeSession is
/// answered, its socket failing (most clients reset it, or close it before the server
/// does) is how a connection normally ends: logged at INFO it would be a formatted line
/// and a write to the log for every session a client opens.
fn log_reader_failure(shard: usize, conn: &Conn, peer: Option<SocketAddr>, reason: &str) {
    let id = conn.id;
    if conn.st.borrow().session_closed {
        tracing::debug!(shard, conn = id, peer = ?peer, %reason, "closing connection");
    } else {
        tracing::info!(shard, conn = id, peer = ?peer, %reason, "closing connection");
    }
}

async fn write_loop<S: ClientStream>(
    shard: Rc<Shard>,
    conn: Rc<Conn>,
    mut wr: futures_lite::io::WriteHalf<S>,
    wake: LocalReceiver<()>,
) {
    let mut buf = Vec::new();
    loop {
        let (closing, since) = {
            let mut st = conn.st.borrow_mut();
            std::mem::swap(&mut buf, &mut st.out);
            (st.closing.is_some(), st.out_since.take())
        };
        if buf.is_empty() {
            if closing {
                break;
            }
            if wake.recv().await.is_none() {
                break;
            }
            continue;
        }
        let taken = Instant::now();
        if let Err(e) = wr.write_all(&buf).await {
            tracing::debug!(conn = conn.id, error = %e, "write failed");
            conn.close("write failed");
            break;
        }
        if let Some(since) = since {
            if since.elapsed() >= SLOW_REQUEST {
                tracing::info!(
                    conn = conn.id,
                    to_writer = ?taken.saturating_duration_since(since),
                    to_socket = ?taken.elapsed(),
                    bytes = buf.len(),
                    "slow reply write"
                );
            }
        }
        shard
            .stats
            .bytes_sent
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        buffers::release_written(&mut buf);
        let _ = conn.wake_reader.try_send(());
    }
    let _ = wr.flush().await;
    // On TLS this sends close_notify, so a client reading a four-letter word's reply
    // sees a clean end rather than a truncation. On plain TCP it would only shut the
    // write side, which the `SHUT_RDWR` below does too (the same FIN), one system call
    // fewer per connection.
    if S::SENDS_ON_CLOSE {
        let _ = wr.close().await;
    }
    // Sends the FIN and wakes a reader blocked on the socket so the connection's tasks
    // end together.
    // SAFETY: `fd` belongs to the stream, which both halves keep alive until they drop.
    unsafe {
        libc::shutdown(conn.fd, libc::SHUT_RDWR);
    }
}

type ReadResult = Result<(), String>;

// Long because it is the connection's one reading state machine: handshake, 4lw
// sniffing, framing, and dispatch of reads and writes in arrival order.
async fn read_loop<S: ClientStream>(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    mut rd: futures_lite::io::ReadHalf<S>,
    connect_rx: LocalReceiver<bool>,
    reader_rx: LocalReceiver<()>,
) -> ReadResult {
    let max_frame = shard.shared.limits.jute_max_buffer_bytes as usize;
    // Bytes read and not yet taken as frames (`buffers`: empty while the connection idles).
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut connected = false;

    // A four-letter word replaces the first length prefix.
    while buf.len() < LENGTH_BYTES {
        if !read_sessionless(shard, &mut rd, &mut buf).await? {
            return Ok(());
        }
    }
    if let Some(word) = crate::admin::classify([buf[0], buf[1], buf[2], buf[3]]) {
        let whitelist = &shard.shared.config.four_letter_whitelist;
        let need = LENGTH_BYTES + crate::admin::argument_needed(word, whitelist);
        while buf.len() < need {
            if !read_sessionless(shard, &mut rd, &mut buf).await? {
                break;
            }
        }
        let argument = &buf[LENGTH_BYTES..buf.len().min(need)];
        // Boxed, as the handshake below: a state only a few connections pass through
        // stays out of every connection's task.
        let stats = Box::pin(shard.gather_stats(crate::admin::needs(word))).await;
        match crate::admin::respond(word, whitelist, &stats, argument) {
            crate::admin::WireAction::WriteAndClose { reply, effect } => {
                conn.push_output(|out| out.extend_from_slice(&reply));
                if let Some(effect) = effect {
                    shard.apply_admin_effect(effect);
                }
            }
            crate::admin::WireAction::Close => {}
        }
        conn.close("four-letter word answered");
        return Ok(());
    }

    // When the bytes of the frames being decoded arrived: taken once per read from the
    // socket, not per frame (a pipelining client sends several per read, and each
    // `clock_gettime` was ~1 % of a read's CPU, bench/results/read-fold-2026-12-06.md).
    let mut received = Instant::now();
    loop {
        if conn.st.borrow().closing.is_some() {
            return Ok(());
        }
        let frame = check_frame(&buf[start..], max_frame).map_err(|e| format!("bad frame: {e}"))?;
        let Some(len) = frame else {
            if start > 0 {
                buf.drain(..start);
                start = 0;
            }
            let more = if connected {
                buffers::read_more(&mut rd, &mut buf, &shard.read_scratch, &shard.stats).await?
            } else {
                read_sessionless(shard, &mut rd, &mut buf).await?
            };
            if !more {
                return Ok(());
            }
            received = Instant::now();
            continue;
        };
        let payload = &buf[start + LENGTH_BYTES..start + LENGTH_BYTES + len];
        shard.stats.packets_received.fetch_add(1, Ordering::Relaxed);
        conn.st.borrow_mut().packets_received += 1;
        if !connected {
            let connect =
                Connect::decode(payload).map_err(|e| format!("malformed connect request: {e}"))?;
            conn.st.borrow_mut().has_read_only = connect.has_read_only;
            start += LENGTH_BYTES + len;
            shard
                .stats
                .connection_requests
                .fetch_add(1, Ordering::Relaxed);
            Box::pin(shard.to_commit.send(StageMsg::Core(CommitRequest::Connect {
                conn: origin(shard.index, conn.id),
                connect,
            })))
            .await
            .map_err(|_| "commit stage gone".to_string())?;
            if connect_rx.recv().await != Some(true) {
                return Ok(());
            }
            connected = true;
            continue;
        }
        let (header, body) = ferrokeeper_net::request::Request::decode(payload)
            .map_err(|e| format!("malformed request header: {e}"))?;
        start += LENGTH_BYTES + len;
        let session_id = conn.st.borrow().session_id;
        shard.touched.borrow_mut().insert(session_id);
        let req = match body {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(conn = conn.id, xid = header.xid, op = header.r#type, error = %e, "malformed request body");
                conn.st.borrow_mut().pending.push_back(Pending::Error {
                    xid: header.xid,
                    err: ErrorCode::MarshallingError,
                });
                conn.drain_reads(shard);
                continue;
            }
        };
        dispatch(shard, conn, header.xid, req, received).await?;
        // Backpressure: stop reading while a limit holds this connection back. Whatever
        // releases it (a reply leaving, a write answered) wakes `reader_rx`.
        if let Some(counter) = conn.must_pause_reading(&shard.shared) {
            counter.fetch_add(1, Ordering::Relaxed);
            while conn.must_pause_reading(&shard.shared).is_some() {
                let _ = reader_rx.recv().await;
            }
        }
    }
}

/// [`buffers::read_more`] on a connection without a session yet: a connection silent
/// for `nio.sessionlessCnxnTimeout` before its ConnectRequest (or a four-letter word's
/// argument) is complete is expired, as ZooKeeper's `NIOServerCnxnFactory` expires it
/// (counted as `sessionless_connections_expired`). The wait restarts with every read, as
/// Java touches the connection on every I/O. Java's expiry queue rounds the deadline up
/// to its next tick of the timeout, so Java closes such a connection one to two timeouts
/// after it went silent; ferrokeeper closes it at the timeout. A four-letter word whose
/// reply is being written and a connection waiting for its session are not reading, so
/// they are not hit. A TLS handshake has its own limit (`shard::secure`) and this one
/// starts after it; Java's Netty factory (the one that serves TLS) expires no sessionless
/// connection at all, ferrokeeper applies the same limit on every port.
async fn read_sessionless<R: futures_lite::AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    rd: &mut R,
    buf: &mut Vec<u8>,
) -> Result<bool, String> {
    let timeout_ms = shard.shared.limits.sessionless_cnxn_timeout_ms;
    let wait = std::time::Duration::from_millis(u64::from(timeout_ms));
    let read = glommio::timer::timeout(wait, async {
        Ok(buffers::read_more(rd, buf, &shard.read_scratch, &shard.stats).await)
    })
    .await;
    match read {
        Ok(more) => more,
        Err(_) => {
            shard
                .stats
                .sessionless_expired
                .fetch_add(1, Ordering::Relaxed);
            Err(format!(
                "no ConnectRequest within nio.sessionlessCnxnTimeout ({timeout_ms} ms): expired"
            ))
        }
    }
}

// Long because it is one match over the kinds of request (auth, SASL, unknown, writes,
// reads), each arm short; the longer paths live in their own functions.
async fn dispatch(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    xid: i32,
    req: Request,
    received: Instant,
) -> ReadResult {
    if !matches!(req, Request::Auth(_) | Request::Sasl(_)) && !sasl::may_proceed(shard, conn, xid) {
        return Ok(());
    }
    match req {
        Request::Auth(a) => {
            // ZooKeeper handles auth packets as they arrive, ahead of queued requests,
            // and answers with the request's own xid (−4 from most clients, but not all)
            // and zxid 0.
            let result = {
                let mut st = conn.st.borrow_mut();
                let mut ids = (*st.auth).clone();
                let r = ids.add_auth(&a.scheme, &a.auth, shard.shared.super_digest.as_deref());
                st.auth = Arc::new(ids);
                r
            };
            match result {
                Ok(()) => {
                    conn.push_reply(|out| header_only(out, xid, 0, ErrorCode::Ok));
                }
                Err(_) => {
                    // ZooKeeper answers AuthFailed and closes; the client raises the
                    // AuthFailed state itself.
                    conn.push_reply(|out| header_only(out, xid, 0, ErrorCode::AuthFailed));
                    conn.close("authentication failed");
                }
            }
            Ok(())
        }
        Request::Sasl(s) => {
            sasl::on_token(shard, conn, xid, &s.token);
            Ok(())
        }
        Request::Unknown(op) => {
            // UnimplementedRequestProcessor: answer, then close the connection.
            tracing::info!(conn = conn.id, op, "unknown opcode");
            conn.st.borrow_mut().pending.push_back(Pending::Fatal {
                xid,
                err: ErrorCode::Unimplemented,
            });
            conn.drain_reads(shard);
            Ok(())
        }
        // In an ensemble a sync goes to the leader and comes back once this server has
        // applied everything committed before it (ZooKeeper's sync); standalone, the
        // published state already is the committed one, and it is served as a read.
        w if w.is_write() || (matches!(w, Request::Sync(_)) && shard.shared.ensemble.is_some()) => {
            to_commit(shard, conn, xid, w, [Pending::Write { received }]).await
        }
        r => {
            shard.catch_up().await;
            if shard.shared.ensemble.is_some()
                && shard.shared.config.quorum_reads
                && is_data_read(&r)
            {
                return quorum_read(shard, conn, xid, r, received).await;
            }
            let queued = !conn.st.borrow().pending.is_empty();
            if queued {
                conn.st.borrow_mut().pending.push_back(Pending::Read {
                    xid,
                    req: r,
                    received,
                });
            } else {
                conn.serve_read(shard, xid, &r, received);
            }
            Ok(())
        }
    }
}

/// Linearizable reads (`ferrokeeper.quorumReads`): a sync through the leader first; the
/// read is served once this server has applied everything committed before the sync.
async fn quorum_read(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    xid: i32,
    r: Request,
    received: Instant,
) -> ReadResult {
    let sync = Request::Sync(ferrokeeper_net::records::SyncRequest { path: "/".into() });
    let queued = [
        Pending::Barrier,
        Pending::Read {
            xid,
            req: r,
            received,
        },
    ];
    to_commit(shard, conn, xid, sync, queued).await
}

/// Sends `request` (a write, or a sync in an ensemble) to the commit stage after queueing
/// `queued` on the connection, its first entry the one the reply answers.
async fn to_commit(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    xid: i32,
    request: Request,
    queued: impl IntoIterator<Item = Pending>,
) -> ReadResult {
    let (session_id, auth) = {
        let mut st = conn.st.borrow_mut();
        st.pending.extend(queued);
        (st.session_id, st.auth.clone())
    };
    // Counted off when its reply comes back (`Shard::complete`).
    shard
        .shared
        .outstanding_requests
        .fetch_add(1, Ordering::Relaxed);
    shard
        .to_commit
        .send(StageMsg::Core(CommitRequest::Write {
            conn: origin(shard.index, conn.id),
            session_id,
            xid,
            request,
            auth,
            // Whether the session is local is for the commit side to know.
            local: false,
        }))
        .await
        .map_err(|_| "commit stage gone".to_string())
}

/// Reads of the tree, which `ferrokeeper.quorumReads` makes linearizable (not pings,
/// watch bookkeeping or `whoAmI`).
fn is_data_read(r: &Request) -> bool {
    matches!(
        r,
        Request::Exists(_)
            | Request::GetData(_)
            | Request::GetChildren(_)
            | Request::GetChildren2(_)
            | Request::GetAcl(_)
            | Request::GetEphemerals(_)
            | Request::GetAllChildrenNumber(_)
            | Request::MultiRead(_)
    )
}

/// ZooKeeper's short names for operations (`lastOp` in `cons`).
fn read_op_name(r: &Request) -> &'static str {
    match r {
        Request::Ping => "PING",
        Request::Exists(_) => "EXIS",
        Request::GetData(_) => "GETD",
        Request::GetChildren(_) | Request::GetChildren2(_) => "GETC",
        Request::GetAcl(_) => "GETA",
        Request::Sync(_) => "SYNC",
        Request::SetWatches(_) => "SETW",
        Request::AddWatch(_) => "ADDW",
        Request::CheckWatches(_) => "CHKW",
        Request::RemoveWatches(_) => "REMW",
        Request::MultiRead(_) => "MLTR",
        Request::GetEphemerals(_) => "GETE",
        Request::GetAllChildrenNumber(_) => "GETACN",
        Request::WhoAmI => "HOMI",
        _ => "NA",
    }
}

fn write_op_name(op: ferrokeeper_net::OpCode) -> &'static str {
    use ferrokeeper_net::OpCode;
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete => "DELE",
        OpCode::SetData => "SETD",
        OpCode::SetAcl => "SETA",
        OpCode::Check => "CHEC",
        OpCode::Multi => "MULT",
        OpCode::CloseSession => "CLOS",
        OpCode::Reconfig => "RECO",
        OpCode::Sync => "SYNC",
        _ => "NA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an `async fn` of five arguments returns.
    fn future_size5<A, B, C, D, E, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// The size of the future an `async fn` of four arguments returns.
    fn future_size4<A, B, C, D, F: std::future::Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle connection's memory is mostly its two tasks' futures (an async fn's
    /// future is as large as its largest state, for the connection's whole life): the
    /// rare large states (TLS handshake, four-letter words, the handshake's send) are
    /// boxed. Issue 13's target is 8 KB of RSS per idle connection in all; this keeps the
    /// futures' share in check.
    #[test]
    fn connection_tasks_stay_small() {
        type Tcp = glommio::net::TcpStream;
        let accepted = future_size5(super::super::secure::serve);
        let writer = future_size4(write_loop::<Tcp>);
        eprintln!(
            "secure::serve {accepted} B, conn::serve {} B, write_loop {writer} B, Conn {} B",
            future_size5(serve::<Tcp>),
            std::mem::size_of::<Conn>()
        );
        assert!(
            accepted <= 3 << 10,
            "a connection's task is {accepted} bytes"
        );
        assert!(
            writer <= 512,
            "a connection's writer task is {writer} bytes"
        );
    }
}
