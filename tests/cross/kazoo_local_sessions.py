#!/usr/bin/env python3
"""Local sessions with Python's kazoo against a 3-member ensemble.

    python3 tests/cross/kazoo_local_sessions.py UPGRADING ADDR_A ADDR_B

ADDR_A and ADDR_B are two different members; UPGRADING is `true` when the members run
with localSessionsUpgradingEnabled. Each check prints one line (`ok` or `FAIL` with the
reason); the script exits 1 if any failed.

With localSessionsEnabled a session lives on the member it was made on: it reads and
writes persistent nodes as any session does, but another member does not know it, so
resuming it there gives a new session. Creating an ephemeral node upgrades it to a
global session (the ensemble commits a session create first), after which it resumes
anywhere; without upgrading, the ephemeral create fails with EphemeralOnLocalSession
(-120).
"""

import sys

from kazoo.client import KazooClient
from kazoo.exceptions import EphemeralOnLocalSessionError

WAIT_S = 10.0
failed = False


def report(ok, what):
    global failed
    if not ok:
        failed = True
    print(("ok " if ok else "FAIL ") + what, flush=True)


def client(addr, client_id=None):
    c = KazooClient(hosts=addr, timeout=WAIT_S, client_id=client_id)
    c.start(timeout=WAIT_S)
    return c


def resumed_on(addr, client_id):
    """Whether the session `client_id` resumes on `addr` (kazoo starts a new session
    when the server answers the resumption as expired)."""
    other = client(addr, client_id)
    try:
        return other.client_id[0] == client_id[0]
    finally:
        other.stop()
        other.close()


def main():
    upgrading = sys.argv[1] == "true"
    a_addr, b_addr = sys.argv[2], sys.argv[3]
    a = client(a_addr)
    sid = a.client_id
    a.create("/ls/persistent", b"from a local session", makepath=True)
    b = client(b_addr)
    b.sync("/ls")
    report(b.get("/ls/persistent")[0] == b"from a local session",
           "a local session's persistent write is seen on another member")
    report(not resumed_on(b_addr, sid), "another member does not know the local session")
    report(a.exists("/ls/persistent") is not None,
           "the local session still works on its own member")
    try:
        a.create("/ls/ephemeral", b"", ephemeral=True)
        report(upgrading, "ephemeral create on a local session "
                          + ("upgrades it" if upgrading else "succeeded without upgrading"))
    except EphemeralOnLocalSessionError:
        report(not upgrading, "ephemeral create on a local session gets EphemeralOnLocalSession")
    if upgrading:
        report(a.client_id == sid, "the upgraded session keeps its id")
        b.sync("/ls")
        stat = b.exists("/ls/ephemeral")
        report(stat is not None and stat.ephemeralOwner == sid[0],
               "the ephemeral is owned by the upgraded session")
        # Resuming it on b moves the session there, and closing it there ends it.
        report(resumed_on(b_addr, sid), "the upgraded (global) session resumes on another member")
        b.sync("/ls")
        report(b.exists("/ls/ephemeral") is None,
               "closing the upgraded session deletes its ephemeral")
    try:
        a.stop()
    finally:
        a.close()
    b.stop()
    b.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
