//! Local sessions (`localSessionsEnabled`): sessions one server keeps to itself.
//!
//! ZooKeeper 3.5+ can keep a session on the server the client connected to, without a
//! txn in the log: creating and closing it costs no quorum round, which matters for
//! the many short-lived clients that only read. Such a session
//!
//! - gets an id from this server's own counter (the server id in the top byte, as every
//!   session id), and a timeout negotiated as for any session;
//! - expires on this server's clock alone; its touches never reach the leader;
//! - is known nowhere else: reattaching on another server finds no such session
//!   (SessionExpired), and the leader accepts its writes without a session check;
//! - cannot own ephemerals. A create of one either upgrades the session to a global one
//!   first (`localSessionsUpgradingEnabled`: a CreateSession txn with the same id and
//!   password, ahead of the create) or fails with EphemeralOnLocalSession (-120);
//! - is lost when this server's leader changes, as ZooKeeper loses them when its
//!   server object is rebuilt after an election (the connections close at the same time).
//!
//! The table is plain data: the node consults it before a request goes the global way.

use std::collections::HashMap;

use crate::core::sequencer::{Entropy, Origin};
use crate::core::state::DataState;

/// One local session.
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The password the client must present to reattach.
    pub passwd: [u8; 16],
    /// When it expires unless heard from.
    pub expires_at_ms: i64,
    /// The connection it is attached to.
    pub owner: Option<Origin>,
}

/// What a reattach found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reattach {
    /// The session is not local to this server.
    Unknown,
    /// Wrong password: refused. Carries the connection that held it (now dropped).
    Refused(Option<Origin>),
    /// Reattached with this timeout; carries the connection that held it before.
    Done(i32, Option<Origin>),
}

/// This server's local sessions.
pub struct LocalSessions {
    server_id: i64,
    /// The next id; drawn from the clock at the first session (0 until then).
    next_id: i64,
    /// Ids below this belong to sessions of this server found in the state.
    floor: i64,
    sessions: HashMap<i64, LocalSession>,
    entropy: Box<dyn Entropy + Send>,
}

impl LocalSessions {
    /// An empty table for server `server_id`. Ids continue past every session of this
    /// server in `state`, so an upgraded session never takes the id of a global one.
    pub fn new(
        server_id: i64,
        state: &DataState,
        entropy: Box<dyn Entropy + Send>,
    ) -> LocalSessions {
        let own = server_id & 0xff;
        let floor = state
            .sessions
            .keys()
            .filter(|id| (**id >> 56) & 0xff == own)
            .max()
            .map_or(0, |newest| newest + 1);
        LocalSessions {
            server_id,
            next_id: 0,
            floor,
            sessions: HashMap::new(),
            entropy,
        }
    }

    /// A new session for `conn` with timeout `timeout_ms`: its id and password.
    pub fn create(&mut self, timeout_ms: i32, conn: Origin, now_ms: i64) -> (i64, [u8; 16]) {
        if self.next_id == 0 {
            // SessionTrackerImpl.initializeNextSessionId, as the sequencer starts its own.
            let from_clock = (((now_ms << 24) as u64) >> 8) as i64 | (self.server_id << 56);
            self.next_id = from_clock.max(self.floor);
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut passwd = [0u8; 16];
        self.entropy.fill(&mut passwd);
        self.sessions.insert(
            id,
            LocalSession {
                timeout_ms,
                passwd,
                expires_at_ms: now_ms + i64::from(timeout_ms),
                owner: Some(conn),
            },
        );
        (id, passwd)
    }

    /// Whether `id` is a local session of this server.
    pub fn contains(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// How many there are (`mntr`'s `zk_local_sessions`).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// A client asks to reattach session `id` with `passwd` on `conn`.
    pub fn reattach(&mut self, id: i64, passwd: &[u8], conn: Origin, now_ms: i64) -> Reattach {
        let Some(s) = self.sessions.get_mut(&id) else {
            return Reattach::Unknown;
        };
        // As for global sessions, the live connection goes even when the password is
        // wrong (ZooKeeper closes it before it checks).
        let old = s.owner.take().filter(|o| *o != conn);
        if s.passwd[..] != *passwd {
            return Reattach::Refused(old);
        }
        s.owner = Some(conn);
        s.expires_at_ms = now_ms + i64::from(s.timeout_ms);
        Reattach::Done(s.timeout_ms, old)
    }

    /// The client of `id` was heard from: returns whether `id` is local.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) => {
                s.expires_at_ms = now_ms + i64::from(s.timeout_ms);
                true
            }
            None => false,
        }
    }

    /// Connection `conn` of session `id` went away (the session lives on until it
    /// expires, as a global one does).
    pub fn conn_closed(&mut self, id: i64, conn: Origin) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if s.owner == Some(conn) {
                s.owner = None;
            }
        }
    }

    /// Takes session `id` out of the table (closed, or upgraded to a global session).
    pub fn remove(&mut self, id: i64) -> Option<LocalSession> {
        self.sessions.remove(&id)
    }

    /// Removes the sessions whose time is up at `now_ms`: (id, attached connection).
    pub fn expire(&mut self, now_ms: i64) -> Vec<(i64, Option<Origin>)> {
        let mut gone: Vec<(i64, Option<Origin>)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at_ms <= now_ms)
            .map(|(id, s)| (*id, s.owner))
            .collect();
        gone.sort_unstable_by_key(|(id, _)| *id);
        for (id, _) in &gone {
            self.sessions.remove(id);
        }
        gone
    }

    /// Forgets every session (the leader changed).
    pub fn clear(&mut self) {
        self.sessions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sequencer::{open_acl_unsafe, SeededEntropy};

    fn table() -> LocalSessions {
        let state = DataState::new(open_acl_unsafe(), false);
        LocalSessions::new(3, &state, Box::new(SeededEntropy(7)))
    }

    #[test]
    fn ids_carry_the_server_id_and_do_not_repeat() {
        let mut t = table();
        let (a, _) = t.create(4000, Origin(1), 0);
        let (b, _) = t.create(4000, Origin(2), 0);
        assert_eq!(a >> 56, 3);
        assert_eq!(b, a + 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn reattach_checks_the_password_and_drops_the_old_connection() {
        let mut t = table();
        let (id, passwd) = t.create(4000, Origin(1), 0);
        assert_eq!(
            t.reattach(id, &[0; 16], Origin(2), 10),
            Reattach::Refused(Some(Origin(1)))
        );
        assert_eq!(
            t.reattach(id, &passwd, Origin(3), 10),
            Reattach::Done(4000, None)
        );
        assert_eq!(
            t.reattach(id, &passwd, Origin(4), 10),
            Reattach::Done(4000, Some(Origin(3)))
        );
        assert_eq!(
            t.reattach(id + 1, &passwd, Origin(4), 10),
            Reattach::Unknown
        );
    }

    #[test]
    fn sessions_expire_unless_touched() {
        let mut t = table();
        let (a, _) = t.create(100, Origin(1), 0);
        let (b, _) = t.create(100, Origin(2), 0);
        assert!(t.touch(b, 80));
        assert!(!t.touch(b + 1, 80));
        assert_eq!(t.expire(100), vec![(a, Some(Origin(1)))]);
        t.conn_closed(b, Origin(2));
        assert_eq!(t.expire(180), vec![(b, None)]);
        assert!(t.is_empty());
    }
}
