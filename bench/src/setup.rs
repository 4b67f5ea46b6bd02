//! The tree's root and the plain client sessions that build and check it: creating
//! parents, pipelined creation of many children, counting children as a reader sees them,
//! and [`SetupClient`], the blocking one-request-at-a-time session behind them.
//!
//! The preloads of every workload ([`crate::workload`], [`crate::wide`]) and the server
//! start-up check ([`crate::server`]) use these, so they sit below all three.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ferrokeeper_net::frame::check_frame;
use ferrokeeper_net::jute::{Buffer, NullableBuffer};
use ferrokeeper_net::records::{GetChildrenRequest, ReplyHeader};
use ferrokeeper_net::request::Request;
use ferrokeeper_net::ErrorCode;

use crate::engine::{error_name, run_pipeline, Pace, PipelineSpec, RunError, Span};
use crate::ops::{open_acl, CountedCreate, OpSource};
use crate::stats::RunStats;

/// The benchmark's root node.
pub const ROOT: &str = "/bench";

/// Creates `count` children of `parent` (named by [`CountedCreate`]), each with `bytes`
/// of data, pipelined over 8 sessions × 32 outstanding.
pub fn create_children(
    addr: SocketAddr,
    parent: &str,
    count: usize,
    bytes: &[u8],
    threads: usize,
    session_timeout_ms: i32,
) -> Result<RunStats, RunError> {
    let prefix: Arc<str> = parent.into();
    let next = Arc::new(AtomicU64::new(0));
    let spec = PipelineSpec {
        addr,
        sessions: 8,
        outstanding: 32,
        threads,
        pace: Pace::Closed,
        span: Span::Count,
        session_timeout_ms,
        drain_ns: 30_000_000_000,
        server_pid: None,
        peers: Vec::new(),
        peer_pids: Vec::new(),
    };
    run_pipeline(&spec, &|_| {
        Box::new(CountedCreate::new(
            Arc::clone(&prefix),
            Arc::clone(&next),
            count as u64,
            bytes,
        )) as Box<dyn OpSource>
    })
}

/// The number of children of `parent`, as a reader sees it.
pub fn count_children(
    addr: SocketAddr,
    parent: &str,
    session_timeout_ms: i32,
) -> io::Result<usize> {
    let mut c = SetupClient::connect(addr, session_timeout_ms)?;
    let (h, body) = c.call(&Request::GetChildren(GetChildrenRequest {
        path: parent.into(),
        watch: false,
    }))?;
    c.close();
    if h.err != 0 {
        return Err(io::Error::other(error_name(h.err)));
    }
    let head: [u8; 4] = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| io::Error::other("short getChildren reply"))?;
    Ok(i32::from_be_bytes(head).max(0) as usize)
}

/// Creates each of `paths` (in order, parents first), accepting ones that exist.
pub fn create_parents(addr: SocketAddr, paths: &[&str]) -> Result<(), RunError> {
    let setup = |e: io::Error| RunError::Worker(format!("setup: {e}"));
    let mut c = SetupClient::connect(addr, 30_000).map_err(setup)?;
    for path in paths {
        let (h, _) = c
            .call(&Request::Create(ferrokeeper_net::request::CreateOp {
                opcode: Some(ferrokeeper_net::OpCode::Create),
                path: path.to_string(),
                data: NullableBuffer(Some(Vec::new())),
                acl: open_acl(),
                flags: 0,
                ttl: -1,
            }))
            .map_err(setup)?;
        if h.err != 0 && h.err != ErrorCode::NodeExists.code() {
            return Err(RunError::Worker(format!(
                "create {path}: {}",
                error_name(h.err)
            )));
        }
    }
    c.close();
    Ok(())
}

/// A blocking one-request-at-a-time session for setup and checks.
pub struct SetupClient {
    stream: TcpStream,
    buf: Vec<u8>,
    xid: i32,
}

impl SetupClient {
    /// Connects and completes the handshake.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> io::Result<SetupClient> {
        SetupClient::connect_waiting(addr, timeout_ms, Duration::from_secs(30))
    }

    /// [`SetupClient::connect`], waiting at most `wait` for each reply (the handshake's
    /// included): an ensemble member without a leader may hold a handshake unanswered.
    pub fn connect_waiting(
        addr: SocketAddr,
        timeout_ms: i32,
        wait: Duration,
    ) -> io::Result<SetupClient> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(wait))?;
        stream.set_nodelay(true)?;
        let mut out = Vec::new();
        let connect = ferrokeeper_net::request::Connect {
            request: ferrokeeper_net::records::ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: timeout_ms,
                session_id: 0,
                passwd: Buffer(vec![0; 16]),
            },
            read_only: false,
            has_read_only: true,
        };
        ferrokeeper_net::client::encode_connect(&connect, &mut out);
        stream.write_all(&out)?;
        let mut c = SetupClient {
            stream,
            buf: Vec::new(),
            xid: 0,
        };
        let payload = c.read_frame()?;
        let reply = ferrokeeper_net::response::ConnectReply::decode(&payload)
            .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
        if reply.response.session_id == 0 {
            return Err(io::Error::other("session refused"));
        }
        Ok(c)
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(len) =
                check_frame(&self.buf, crate::conn::REPLY_BYTES_MAX).map_err(io::Error::other)?
            {
                let payload = self.buf[4..4 + len].to_vec();
                self.buf.drain(..4 + len);
                return Ok(payload);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `request` and returns the reply's header and body (notifications skipped).
    pub fn call(&mut self, request: &Request) -> io::Result<(ReplyHeader, Vec<u8>)> {
        self.xid += 1;
        let mut out = Vec::new();
        request.encode_frame(self.xid, &mut out);
        self.stream.write_all(&out)?;
        loop {
            let payload = self.read_frame()?;
            let reply = ferrokeeper_net::response::Reply::decode(&payload)
                .map_err(|e| io::Error::other(format!("reply: {e}")))?;
            if reply.header.xid == self.xid {
                return Ok((reply.header, reply.body.to_vec()));
            }
        }
    }

    /// How long [`SetupClient::call`] waits for a reply before failing with a timeout
    /// (30 s from [`SetupClient::connect`]).
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Closes the session (best effort).
    pub fn close(mut self) {
        let _ = self.call(&Request::CloseSession);
    }
}
