//! One ZooKeeper session over a non-blocking socket: the handshake, a write buffer that
//! requests are encoded straight into, and a read buffer that frames are cut from with
//! [`check_frame`] before anything is decoded.
//!
//! The connection does no scheduling and knows no workload: a driver appends framed
//! requests to [`Conn::out`], calls [`Conn::flush`], and takes replies with
//! [`Conn::next_frame`] after [`Conn::fill`]. Replies to one session come back in the
//! order the requests went out (ZooKeeper's FIFO client order), so drivers match them
//! with a queue, not a map.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;

use ferrokeeper_net::client::encode_connect;
use ferrokeeper_net::frame::{check_frame, FrameError};
use ferrokeeper_net::jute::Buffer;
use ferrokeeper_net::records::{ConnectRequest, ReplyHeader};
use ferrokeeper_net::request::Connect;
use ferrokeeper_net::response::{ConnectReply, Reply};
use ferrokeeper_net::DecodeError;
use mio::net::TcpStream;

/// Largest reply frame the client accepts: well above ZooKeeper's 1 MiB `jute.maxbuffer`.
pub const REPLY_BYTES_MAX: usize = 16 << 20;

/// Bytes the read buffer starts with; it doubles when a frame needs more.
const READ_BUFFER_BYTES_INITIAL: usize = 64 << 10;

/// Free bytes below which the read buffer is compacted (or grown) before a read.
const READ_FREE_BYTES_MIN: usize = 16 << 10;

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// A socket call failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection.
    #[error("server closed the connection")]
    Closed,
    /// A length prefix the client refuses.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A reply that does not decode.
    #[error("bad reply: {0}")]
    Decode(#[from] DecodeError),
    /// The server refused the session (session id 0 in the handshake answer).
    #[error("session refused by the server")]
    Refused,
    /// A reply whose xid is not the oldest request in flight.
    #[error("reply xid {got} where {want} was expected (replies out of order)")]
    XidOrder {
        /// The xid in the reply.
        got: i32,
        /// The oldest xid in flight.
        want: i32,
    },
    /// A reply with no request in flight.
    #[error("reply xid {0} with no request in flight")]
    Unsolicited(i32),
}

/// A session's connection.
pub struct Conn {
    stream: TcpStream,
    /// Received bytes; frames not yet taken are `read[start..end]`.
    read: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes to send; `write[sent..]` is not yet on the socket.
    write: Vec<u8>,
    sent: usize,
    /// The session id once the handshake is answered; 0 before.
    pub session_id: i64,
    xid: i32,
}

impl Conn {
    /// Starts a connection to `addr` and queues the handshake (`ConnectRequest` with the
    /// `readOnly` byte, as every client since 3.3 sends it) asking for `timeout_ms`.
    pub fn open(addr: SocketAddr, timeout_ms: i32) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        // Requests are pipelined and written in batches: Nagle would only add delay.
        stream.set_nodelay(true)?;
        let mut write = Vec::with_capacity(4096);
        let connect = Connect {
            request: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: timeout_ms,
                session_id: 0,
                passwd: Buffer(vec![0; 16]),
            },
            read_only: false,
            has_read_only: true,
        };
        encode_connect(&connect, &mut write);
        Ok(Conn {
            stream,
            read: vec![0; READ_BUFFER_BYTES_INITIAL],
            start: 0,
            end: 0,
            write,
            sent: 0,
            session_id: 0,
            xid: 0,
        })
    }

    /// The socket, to register with a poll.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The socket's descriptor (for socket options mio does not offer).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.as_raw_fd()
    }

    /// Whether the handshake has been answered.
    pub fn is_ready(&self) -> bool {
        self.session_id != 0
    }

    /// The next request xid: 1, 2, ... (positive: negative xids are special).
    pub fn next_xid(&mut self) -> i32 {
        self.xid = if self.xid == i32::MAX {
            1
        } else {
            self.xid + 1
        };
        self.xid
    }

    /// The buffer requests are appended to; call [`Conn::flush`] after.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.write
    }

    /// Whether bytes are waiting to be sent.
    pub fn wants_write(&self) -> bool {
        self.sent < self.write.len()
    }

    /// Writes what the socket takes now. A socket that is still connecting or full
    /// keeps the rest for the next writable event.
    pub fn flush(&mut self) -> Result<(), ConnError> {
        while self.sent < self.write.len() {
            match self.stream.write(&self.write[self.sent..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => self.sent += n,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::NotConnected =>
                {
                    break
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if self.sent == self.write.len() {
            self.write.clear();
            self.sent = 0;
        }
        Ok(())
    }

    /// Reads what the socket holds. `Ok(false)` when the server has closed the
    /// connection (after the bytes before the close were read).
    pub fn fill(&mut self) -> Result<bool, ConnError> {
        loop {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if self.read.len() - self.end < READ_FREE_BYTES_MIN {
                if self.start > 0 {
                    self.read.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                if self.read.len() - self.end < READ_FREE_BYTES_MIN {
                    let len = self.read.len() * 2;
                    self.read.resize(len, 0);
                }
            }
            let free = self.read.len() - self.end;
            match self.stream.read(&mut self.read[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    // A short read drained the socket: edge-triggered polling reports
                    // the next arrival, so the extra read that would say EAGAIN is saved.
                    if n < free {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Cuts the next whole frame from what was read: the payload's range, valid for
    /// [`Conn::frame`] until the next [`Conn::fill`].
    pub fn next_frame(&mut self) -> Result<Option<Range<usize>>, ConnError> {
        let buffered = &self.read[self.start..self.end];
        match check_frame(buffered, REPLY_BYTES_MAX)? {
            None => Ok(None),
            Some(len) => {
                let at = self.start + 4;
                self.start = at + len;
                Ok(Some(at..at + len))
            }
        }
    }

    /// A frame's payload by the range [`Conn::next_frame`] gave.
    pub fn frame(&self, range: Range<usize>) -> &[u8] {
        &self.read[range]
    }

    /// Handles the first frame of a connection, the handshake answer.
    pub fn accept_handshake(&mut self, payload: Range<usize>) -> Result<(), ConnError> {
        let reply = ConnectReply::decode(&self.read[payload])?;
        if reply.response.session_id == 0 {
            return Err(ConnError::Refused);
        }
        self.session_id = reply.response.session_id;
        Ok(())
    }

    /// Decodes a reply frame's header (the body is not looked at).
    pub fn reply_header(&self, payload: Range<usize>) -> Result<ReplyHeader, ConnError> {
        Ok(Reply::decode(&self.read[payload])?.header)
    }
}
