//! Linearizability of a 3-node ferrokeeper ensemble, checked on histories recorded from
//! several clients (the checker: `common::linearize`), and the checker's own tests.

mod common;

use common::linearize::{check, Event, Op};

fn ev(invoked: u64, completed: Option<u64>, op: Op) -> Event {
    Event {
        invoked,
        completed,
        op,
    }
}

#[test]
fn checker_accepts_concurrent_writes_read_in_either_order() {
    // Two overlapping writes; a later read may see either, but then the other is gone.
    let h = vec![
        ev(0, Some(10), Op::Write(1)),
        ev(1, Some(9), Op::Write(2)),
        ev(11, Some(12), Op::Read(Some(1))),
        ev(13, Some(14), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_ok());
}

#[test]
fn checker_refuses_a_stale_read() {
    // write 1 completes, then write 2 completes, then a read returns 1: stale.
    let h = vec![
        ev(0, Some(1), Op::Write(1)),
        ev(2, Some(3), Op::Write(2)),
        ev(4, Some(5), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_err());
}

#[test]
fn checker_refuses_a_value_going_back() {
    // Two reads after both writes completed may not flip between the values.
    let h = vec![
        ev(0, Some(5), Op::Write(1)),
        ev(0, Some(5), Op::Write(2)),
        ev(6, Some(7), Op::Read(Some(2))),
        ev(8, Some(9), Op::Read(Some(1))),
    ];
    assert!(check(&h).is_err());
}

#[test]
fn checker_lets_an_unknown_write_take_effect_late_or_never() {
    let late = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(None)),
        ev(3, Some(4), Op::Read(Some(7))),
    ];
    assert!(check(&late).is_ok());
    let never = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(None)),
        ev(30, Some(40), Op::Read(None)),
    ];
    assert!(check(&never).is_ok());
    // But it cannot be un-done once seen.
    let undone = vec![
        ev(0, None, Op::Write(7)),
        ev(1, Some(2), Op::Read(Some(7))),
        ev(3, Some(4), Op::Read(None)),
    ];
    assert!(check(&undone).is_err());
}

#[test]
fn checker_handles_hundreds_of_operations() {
    // Five clients, each writing its own values and reading back, sequential per client
    // but overlapping across clients: linearizable by construction (a single register
    // simulated with a global order).
    let mut h = Vec::new();
    let mut value = None;
    let mut t = 0u64;
    for round in 0..60u64 {
        for c in 0..5u64 {
            let v = round * 10 + c;
            h.push(ev(t, Some(t + 3), Op::Write(v)));
            value = Some(v);
            t += 1;
        }
        t += 3;
        h.push(ev(t, Some(t + 1), Op::Read(value)));
        t += 2;
    }
    assert!(check(&h).is_ok());
}
