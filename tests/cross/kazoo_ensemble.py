#!/usr/bin/env python3
"""Ensemble checks with Python's kazoo client against a 3-member ensemble.

    python3 tests/cross/kazoo_ensemble.py LEADER_INDEX ADDR:PID ADDR:PID ADDR:PID

The members are given in order, each as its client address and process id; the
leader's index (0-based) says which ones are followers. Each check prints one line
(`ok` or `FAIL` with the reason); the script exits 1 if any failed.

Followers forward writes to the leader and serve reads from their own copy, so every
check here crosses servers: a write through one and a read, watch or sync on another.
The expected values follow the ZooKeeper Programmer's Guide ("Consistency
Guarantees": sequential consistency, single system image after sync; "ZooKeeper
Watches": a watch fires once, before the client sees the new data).
"""

import os
import signal
import sys
import threading
import traceback

from kazoo.client import KazooClient

WAIT_S = 10.0


class Mismatch(Exception):
    """The ensemble answered something other than what ZooKeeper answers."""


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")


def client(addr):
    c = KazooClient(hosts=addr, timeout=WAIT_S)
    c.start(timeout=WAIT_S)
    return c


def check_crud_through_followers(addrs, followers, _pids):
    a = client(addrs[followers[0]])
    b = client(addrs[followers[1]])
    try:
        a.create("/kz/crud", b"one", makepath=True)
        # A follower answers a write after applying it: read-your-writes on a.
        expect("read on the writer's follower", a.get("/kz/crud")[0], b"one")
        b.sync("/kz/crud")
        expect("read on the other follower", b.get("/kz/crud")[0], b"one")
        stat = b.set("/kz/crud", b"two", version=0)
        expect("version after set", stat.version, 1)
        a.sync("/kz/crud")
        expect("read back on the first", a.get("/kz/crud")[0], b"two")
        a.delete("/kz/crud", version=1)
        b.sync("/kz")
        expect("gone on the other", b.exists("/kz/crud"), None)
    finally:
        a.stop()
        b.stop()


def check_watch_across_servers(addrs, followers, _pids):
    watcher = client(addrs[followers[0]])
    writer = client(addrs[followers[1]])
    try:
        watcher.create("/kz/watch", b"0", makepath=True)
        fired = threading.Event()
        events = []

        def on_change(event):
            events.append((event.type, event.path))
            fired.set()

        writer.sync("/kz/watch")
        watcher.get("/kz/watch", watch=on_change)
        writer.set("/kz/watch", b"1")
        expect("watch fired", fired.wait(WAIT_S), True)
        expect("events", events, [("CHANGED", "/kz/watch")])
        # The watch fires before the watcher can read the new data (Programmer's Guide:
        # a client sees a watch event before it sees the new data).
        expect("data after the event", watcher.get("/kz/watch")[0], b"1")
    finally:
        watcher.stop()
        writer.stop()


def check_sequential_unique(addrs, _followers, _pids):
    clients = [client(a) for a in addrs]
    try:
        clients[0].ensure_path("/kz/seq")
        names = []
        lock = threading.Lock()

        def run(c):
            for _ in range(20):
                n = c.create("/kz/seq/n-", b"", sequence=True)
                with lock:
                    names.append(n)

        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect("sequential names are unique", len(set(names)), len(names))
        clients[0].sync("/kz/seq")
        expect(
            "children",
            sorted(clients[0].get_children("/kz/seq")),
            sorted(n.rsplit("/", 1)[1] for n in names),
        )
    finally:
        for c in clients:
            c.stop()


def check_ephemeral_goes_with_session(addrs, followers, _pids):
    owner = client(addrs[followers[0]])
    other = client(addrs[followers[1]])
    try:
        owner.create("/kz/eph", b"", ephemeral=True, makepath=True)
        other.sync("/kz")
        expect("ephemeral seen elsewhere", other.exists("/kz/eph") is not None, True)
        gone = threading.Event()
        other.exists("/kz/eph", watch=lambda e: gone.set())
        owner.stop()
        owner.close()
        expect("deletion notified", gone.wait(WAIT_S), True)
        expect("ephemeral gone", other.exists("/kz/eph"), None)
    finally:
        other.stop()


def check_sync_on_lagging_follower(addrs, followers, pids):
    # Freezes one follower so that it misses a write the others commit, then thaws it
    # and asks it at once: sync makes it catch up before the read (Programmer's Guide,
    # "sync").
    lagging = followers[1]
    reader = client(addrs[lagging])
    writer = client(addrs[followers[0]])
    try:
        reader.ensure_path("/kz/lag")
        writer.sync("/kz/lag")
        os.kill(pids[lagging], signal.SIGSTOP)
        try:
            writer.set("/kz/lag", b"written while frozen")
        finally:
            os.kill(pids[lagging], signal.SIGCONT)
        reader.sync("/kz/lag")
        expect("read after sync", reader.get("/kz/lag")[0], b"written while frozen")
    finally:
        reader.stop()
        writer.stop()


CHECKS = [
    check_crud_through_followers,
    check_watch_across_servers,
    check_sequential_unique,
    check_ephemeral_goes_with_session,
    check_sync_on_lagging_follower,
]


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    leader = int(sys.argv[1])
    addrs, pids = [], []
    for arg in sys.argv[2:]:
        addr, pid = arg.rsplit(":", 1)
        addrs.append(addr)
        pids.append(int(pid))
    followers = [i for i in range(3) if i != leader]
    failed = 0
    for check in CHECKS:
        try:
            check(addrs, followers, pids)
            print(f"ok   {check.__name__}")
        except Exception:  # noqa: BLE001 - every failure is reported, none stops the rest
            failed += 1
            print(f"FAIL {check.__name__}\n{traceback.format_exc()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
