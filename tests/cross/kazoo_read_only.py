#!/usr/bin/env python3
"""Read-only mode with Python's kazoo against the one member left of a 3-member ensemble.

    python3 tests/cross/kazoo_read_only.py ADDR

The harness drives it through stdin, one phase per line, and reads its stdout; each
check prints one line (`ok ...` or `FAIL ...`) and each phase ends with `DONE`:

- `ro`: the member has had no quorum long enough to serve read-only. A client that asks
  for read-only (`read_only=True`) connects and is told it is on a read-only server
  (state CONNECTED_RO); it reads what was written before; a write and a `sync` get
  NotReadOnly (-119). A client that did not ask for read-only cannot connect.
- `rejoined`: the quorum is back. The same read-only client is moved back to a
  read-write server by its own reconnect (the member closes every connection when it
  leaves read-only mode) and its write goes through.

The script exits 1 if any check failed. The expected behaviour is the ZooKeeper
Administrator's Guide's (readonlymode.enabled) and Java ZooKeeper's.
"""

import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionLoss,
    NotReadOnlyCallError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState

WAIT_S = 10.0
REJOIN_WAIT_S = 60.0

failed = False


def report(ok, what):
    global failed
    if not ok:
        failed = True
    print(("ok " if ok else "FAIL ") + what, flush=True)


def phase_ro(addr, state):
    ro = KazooClient(hosts=addr, timeout=WAIT_S, read_only=True)
    ro.start(timeout=WAIT_S)
    # kazoo's listener states say only CONNECTED; `client_state` is the keeper state,
    # CONNECTED_RO when the connect response said read-only.
    report(
        ro.client_state == KeeperState.CONNECTED_RO,
        f"the read-only client is told it is on a read-only server "
        f"(client_state {ro.client_state})",
    )
    data, stat = ro.get("/ro/data")
    report(data == b"before", f"read of what was written before: {data!r}")
    children = sorted(ro.get_children("/ro"))
    report(children == ["data"], f"children: {children}")
    for name, call in [
        ("create", lambda: ro.create("/ro/new", b"x")),
        ("setData", lambda: ro.set("/ro/data", b"after")),
        ("delete", lambda: ro.delete("/ro/data")),
        ("sync", lambda: ro.sync("/ro")),
    ]:
        try:
            call()
            report(False, f"{name} on a read-only server succeeded")
        except NotReadOnlyCallError:
            report(True, f"{name} gets NotReadOnly")
        except Exception as e:  # noqa: BLE001 - any other answer is the failure
            report(False, f"{name} raised {type(e).__name__}: {e}")
    rw = KazooClient(hosts=addr, timeout=2.0)
    try:
        rw.start(timeout=4.0)
        report(False, "a client that did not ask for read-only connected")
        rw.stop()
    except KazooTimeoutError:
        report(True, "a client that did not ask for read-only cannot connect")
    finally:
        rw.close()
    state["ro"] = ro


def phase_rejoined(state):
    ro = state["ro"]
    deadline = time.monotonic() + REJOIN_WAIT_S
    last = None
    while time.monotonic() < deadline:
        try:
            ro.create("/ro/after", b"rw again")
            break
        except (NotReadOnlyCallError, ConnectionLoss, SessionExpiredError) as e:
            last = e
            time.sleep(0.2)
    else:
        report(False, f"no write went through after the quorum returned (last: {last!r})")
        return
    report(True, f"the read-only client writes again once the quorum is back "
                 f"(after {type(last).__name__ if last else 'nothing'})")
    report(
        ro.client_state == KeeperState.CONNECTED,
        f"the client is on a read-write server (client_state {ro.client_state})",
    )
    report(ro.get("/ro/after")[0] == b"rw again", "it reads its write back")
    ro.stop()
    ro.close()


def main():
    addr = sys.argv[1]
    state = {}
    for line in sys.stdin:
        phase = line.strip()
        try:
            if phase == "ro":
                phase_ro(addr, state)
            elif phase == "rejoined":
                phase_rejoined(state)
            elif phase:
                report(False, f"unknown phase {phase!r}")
        except Exception as e:  # noqa: BLE001 - reported, then the phase ends
            report(False, f"phase {phase} raised {type(e).__name__}: {e}")
        print("DONE", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
