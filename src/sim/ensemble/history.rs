//! The committed history as every member reports it, and the invariants over it:
//!
//! 1. state-machine safety: one txn per zxid, whoever applied it (compared by the txn's
//!    log encoding, `core::codec::encode`);
//! 2. replicas at one applied zxid have one tree digest (`DataState::digest`), which is
//!    also the digest of a twin that applies the history in zxid order;
//! 5. an ephemeral disappears only through its owner's closeSession (explicit or by
//!    expiry) or an explicit delete (checked on the twin, txn by txn).

use std::collections::{BTreeMap, BTreeSet};

use crate::core::apply::apply;
use crate::core::codec;
use crate::core::state::DataState;
use crate::core::txn::{Txn, TxnOp};

/// One zxid's txn as first reported.
#[derive(Debug, Clone)]
pub struct Committed {
    /// `core::codec::encode` of the txn.
    pub bytes: Vec<u8>,
    /// The session that asked (0: the server).
    pub session_id: i64,
    /// The request's xid.
    pub cxid: i32,
    /// Whether it failed (an `Error` txn or a failed multi).
    pub error: bool,
    /// The member that reported it first.
    pub by: u64,
}

/// The history and the twin that replays it.
pub struct History {
    /// zxid → txn.
    pub txns: BTreeMap<i64, Committed>,
    /// The decoded txns the twin has not applied yet.
    queued: BTreeMap<i64, Txn>,
    /// zxid → (digest, member) as first reported at that applied zxid.
    digests: BTreeMap<i64, (i64, u64)>,
    /// The twin's digest after each zxid it applied.
    twin_digests: BTreeMap<i64, i64>,
    /// The history applied in zxid order to a fresh state.
    pub twin: DataState,
}

impl History {
    /// An empty history; `fresh` is the state every member starts from.
    pub fn new(fresh: DataState) -> History {
        let mut twin_digests = BTreeMap::new();
        twin_digests.insert(fresh.last_zxid, fresh.digest);
        History {
            txns: BTreeMap::new(),
            queued: BTreeMap::new(),
            digests: BTreeMap::new(),
            twin_digests,
            twin: fresh,
        }
    }

    /// Member `by` applied `txn` (invariant 1).
    pub fn applied(&mut self, by: u64, txn: &Txn) -> Result<(), String> {
        let mut bytes = Vec::new();
        codec::encode(txn, &mut bytes);
        if let Some(c) = self.txns.get(&txn.zxid) {
            if c.bytes != bytes {
                return Err(format!(
                    "state-machine safety: member {by} applied at zxid 0x{:x} a txn ({:?}) other than member {}'s (session 0x{:x} cxid {})",
                    txn.zxid, txn, c.by, c.session_id, c.cxid
                ));
            }
            return Ok(());
        }
        self.txns.insert(
            txn.zxid,
            Committed {
                bytes,
                session_id: txn.session_id,
                cxid: txn.cxid,
                error: txn.op.is_error(),
                by,
            },
        );
        self.queued.insert(txn.zxid, txn.clone());
        self.advance_twin()
    }

    /// Member `by` reached `zxid` with tree digest `digest` (invariant 2).
    pub fn reached(&mut self, by: u64, zxid: i64, digest: i64) -> Result<(), String> {
        match self.digests.get(&zxid) {
            Some((d, first)) if *d != digest => Err(format!(
                "replica divergence: at zxid 0x{zxid:x} member {by} has tree digest {digest:x}, member {first} had {d:x}"
            )),
            Some(_) => Ok(()),
            None => {
                self.digests.insert(zxid, (digest, by));
                self.check_twin(zxid)
            }
        }
    }

    fn check_twin(&self, zxid: i64) -> Result<(), String> {
        if let (Some((d, by)), Some(t)) = (self.digests.get(&zxid), self.twin_digests.get(&zxid)) {
            if d != t {
                return Err(format!(
                    "replica divergence: at zxid 0x{zxid:x} member {by} has tree digest {d:x}, the twin that applies the history has {t:x}"
                ));
            }
        }
        Ok(())
    }

    /// Applies the queued txns that follow the twin's zxid, checking invariant 5.
    fn advance_twin(&mut self) -> Result<(), String> {
        while let Some(txn) = self.queued.remove(&(self.twin.last_zxid + 1)) {
            let before = ephemerals(&self.twin);
            let extended = self.twin.extended_types;
            let mut changes = Vec::new();
            apply(&mut self.twin, &txn, extended, &mut changes);
            for (path, owner) in before {
                let still = self
                    .twin
                    .tree
                    .get(&path)
                    .is_some_and(|n| n.stat().ephemeral_owner == owner);
                if !still && !explains(&txn.op, &path, owner) {
                    return Err(format!(
                        "ephemeral {path} of session 0x{owner:x} disappeared at zxid 0x{:x} through {:?}, neither its session's close nor a delete",
                        txn.zxid, txn.op
                    ));
                }
            }
            self.twin_digests
                .insert(self.twin.last_zxid, self.twin.digest);
            self.check_twin(self.twin.last_zxid)?;
        }
        Ok(())
    }

    /// The zxid up to which the history has no gap.
    pub fn contiguous(&self) -> i64 {
        self.twin.last_zxid
    }
}

/// Every ephemeral of a session, as (path, owner).
fn ephemerals(s: &DataState) -> BTreeSet<(String, i64)> {
    let mut out = BTreeSet::new();
    for (id, sess) in s.sessions.iter() {
        for p in sess.ephemerals.iter() {
            out.insert((p.to_string(), *id));
        }
    }
    out
}

/// Whether `op` deletes `path` or closes session `owner`.
fn explains(op: &TxnOp, path: &str, owner: i64) -> bool {
    match op {
        TxnOp::Delete { path: p } => &**p == path,
        TxnOp::CloseSession { session_id } => *session_id == owner,
        TxnOp::Multi(ops) => ops.iter().any(|o| explains(o, path, owner)),
        _ => false,
    }
}
