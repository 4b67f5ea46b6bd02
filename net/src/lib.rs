//! # ferrokeeper-net — the ZooKeeper wire protocol, sans-IO
//!
//! Bytes in, values out. This crate owns the jute encoding ([`jute`]), every record of
//! `zookeeper.jute` ([`records`]), the protocol's numeric constants ([`codes`]), framing
//! with a completeness check before any decode ([`frame`]), request decoding by opcode
//! ([`request`]), the responses a server writes and a client reads ([`response`]), the
//! client's encoders for the load generator and raw tests ([`client`]), and the wire
//! format between ensemble servers ([`peer`]: a handshake, then kind-tagged opaque
//! frames). Four-letter words are the server's business (`ferrokeeper::admin`).
//!
//! It must never: do IO, allocate more than its input can describe, or panic on any
//! input. The server (`src/`) and the load generator (`bench/`) both build on it.
#![warn(missing_docs)]
// What a client, a file or the network can make fail is never unwrapped (STYLE.md);
// unit tests may (clippy.toml).
#![deny(clippy::unwrap_used)]

pub mod client;
pub mod codes;
pub mod fourlw;
pub mod frame;
pub mod jute;
pub mod peer;
pub mod records;
pub mod request;
pub mod response;

pub use codes::{ErrorCode, EventType, KeeperState, OpCode};
pub use jute::{Buffer, Decode, DecodeError, Encode, NullableBuffer, Reader};
