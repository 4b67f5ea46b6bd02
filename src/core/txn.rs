//! Transactions: the deterministic outcome of a write request, decided by `prep` against
//! the head state and applied identically everywhere (live commit, log replay, and
//! later every replica). A txn carries final values (sequential paths, versions, owner
//! ids), never a request to re-evaluate.

use std::sync::Arc;

use ferrokeeper_net::codes::ErrorCode;
use ferrokeeper_net::records::Acl;

/// A txn with its header (jute `TxnHeader`).
#[derive(Debug, Clone)]
pub struct Txn {
    /// The txn's zxid.
    pub zxid: i64,
    /// Wall-clock time of prep, ms since the epoch (becomes ctime/mtime).
    pub time_ms: i64,
    /// The session that asked (0 for server-initiated txns).
    pub session_id: i64,
    /// The request's xid.
    pub cxid: i32,
    /// What changes.
    pub op: TxnOp,
}

/// What a txn changes.
#[derive(Debug, Clone)]
pub enum TxnOp {
    /// A session is created.
    CreateSession {
        /// The new session's id.
        session_id: i64,
        /// Negotiated timeout.
        timeout_ms: i32,
        /// Its password.
        passwd: [u8; 16],
    },
    /// A session ends; its ephemerals are deleted.
    CloseSession {
        /// The session.
        session_id: i64,
    },
    /// A node is created.
    Create {
        /// Final path (with any sequence suffix).
        path: Arc<str>,
        /// Data (`None`: null).
        data: Option<Arc<[u8]>>,
        /// ACL after fixup.
        acl: Arc<[Acl]>,
        /// Final ephemeralOwner (session, container or TTL encoding, or 0).
        ephemeral_owner: i64,
        /// The parent's new cversion.
        parent_cversion: i32,
    },
    /// A node is deleted.
    Delete {
        /// The path.
        path: Arc<str>,
    },
    /// A node's data is replaced.
    SetData {
        /// The path.
        path: Arc<str>,
        /// New data (`None`: null).
        data: Option<Arc<[u8]>>,
        /// New version.
        version: i32,
    },
    /// A node's ACL is replaced.
    SetAcl {
        /// The path.
        path: Arc<str>,
        /// New ACL.
        acl: Arc<[Acl]>,
        /// New aversion.
        aversion: i32,
    },
    /// A version check passed (inside multi).
    Check {
        /// The path.
        path: Arc<str>,
    },
    /// The request failed; nothing changes but the zxid is used, as in ZooKeeper.
    Error {
        /// Why.
        err: ErrorCode,
    },
    /// An atomic group. If any op failed, every op is an `Error` (earlier ones with
    /// `Ok`, the failing one with its code, later ones with `RuntimeInconsistency`).
    Multi(Vec<TxnOp>),
}

impl TxnOp {
    /// Whether this is a failed multi or an error.
    pub fn is_error(&self) -> bool {
        match self {
            TxnOp::Error { .. } => true,
            TxnOp::Multi(ops) => ops.iter().any(|o| o.is_error()),
            _ => false,
        }
    }
}
