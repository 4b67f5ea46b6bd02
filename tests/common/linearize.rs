//! A linearizability checker for registers (Wing & Gong's search with Lowe's
//! memoization, as Knossos and Porcupine do it): given every operation's invocation and
//! completion time and what it observed, is there one order of the operations, each
//! taking effect at some instant between its invocation and its completion, in which
//! every read returns the latest write? Histories are checked per key: a register per
//! znode, so the search stays small.
//!
//! An operation whose outcome the client never learned (its connection was lost, the
//! server was killed) may or may not have taken effect: it has no completion (it may
//! take effect any time after its invocation) and may be left out.

use std::collections::HashSet;

/// What one operation did to or saw in the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Wrote this value.
    Write(u64),
    /// Read this value (`None`: the register was never written).
    Read(Option<u64>),
}

/// One operation of one client.
#[derive(Debug, Clone)]
pub struct Event {
    /// When the client sent it (any monotonic clock, shared by all clients).
    pub invoked: u64,
    /// When the answer came; `None` if it never did (outcome unknown).
    pub completed: Option<u64>,
    /// What it did.
    pub op: Op,
}

/// Checks one register's history. `Ok` or the longest prefix of the search that could
/// not be extended, for the failure message.
pub fn check(history: &[Event]) -> Result<(), String> {
    // Reads whose outcome is unknown constrain nothing.
    let events: Vec<&Event> = history
        .iter()
        .filter(|e| e.completed.is_some() || matches!(e.op, Op::Write(_)))
        .collect();
    let n = events.len();
    let words = n.div_ceil(64).max(1);
    let mut seen: HashSet<(Vec<u64>, Option<u64>)> = HashSet::new();
    // Depth-first over (set of linearized ops, register value).
    let mut stack: Vec<(Vec<u64>, Option<u64>)> = vec![(vec![0; words], None)];
    let mut best = 0usize;
    while let Some((done, value)) = stack.pop() {
        let count: usize = done.iter().map(|w| w.count_ones() as usize).sum();
        best = best.max(count);
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // Every op that must be linearized (it completed) is: success, the unknown ones
        // left may simply never have happened.
        if (0..n).all(|i| is_done(i) || events[i].completed.is_none()) {
            return Ok(());
        }
        // The next op to take effect must be invoked before every remaining completed
        // op has completed.
        let horizon = (0..n)
            .filter(|&i| !is_done(i))
            .filter_map(|i| events[i].completed)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..n {
            if is_done(i) || events[i].invoked > horizon {
                continue;
            }
            let next = match &events[i].op {
                Op::Write(v) => Some(Some(*v)),
                Op::Read(v) if *v == value => Some(value),
                Op::Read(_) => None,
            };
            if let Some(next) = next {
                let mut d = done.clone();
                d[i / 64] |= 1 << (i % 64);
                if seen.insert((d.clone(), next)) {
                    stack.push((d, next));
                }
            }
        }
    }
    Err(format!(
        "not linearizable: no order takes more than {best} of {n} operations"
    ))
}
