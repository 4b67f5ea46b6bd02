#!/usr/bin/env python3
"""Cross-client smoke test: Python's kazoo client and its recipes against a
ZooKeeper-compatible server.

    python3 tests/cross/kazoo_recipes.py HOST:PORT [CHECK...]

Runs every check (or the named ones) against the server at HOST:PORT. Each check
works under its own subtree /kazoo/<check> with its own client sessions, prints
one line (`ok` or `FAIL` with the reason) and never stops the others. Exits 1 if
any check failed, 2 on bad usage.

The expected values are what Apache ZooKeeper 3.8 answers; where a value follows
from a rule of the ZooKeeper Programmer's Guide the comment names the rule.
"""

import logging
import sys
import threading
import time
import traceback
from contextlib import contextmanager

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl

# How long any single wait for the server (a watch, a lock, a session close) may take.
WAIT_S = 10.0

HOSTS = ""


class Mismatch(Exception):
    """The server answered something other than what ZooKeeper answers."""


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")


def expect_raises(what, exc_type, fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except exc_type:
        return
    except Exception as e:  # noqa: BLE001 - the type is the thing under test
        raise Mismatch(f"{what}: raised {type(e).__name__}, want {exc_type.__name__}") from e
    raise Mismatch(f"{what}: returned {result!r}, want {exc_type.__name__}")


def wait_for(what, predicate, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise Mismatch(f"timed out after {timeout_s} s waiting for {what}")


def wait_event(what, event, timeout_s=WAIT_S):
    if not event.wait(timeout_s):
        raise Mismatch(f"timed out after {timeout_s} s waiting for {what}")


def new_client():
    client = KazooClient(hosts=HOSTS, timeout=10.0)
    client.start(timeout=WAIT_S)
    return client


def close_client(client):
    """Closes the session (its ephemerals go at once) and frees the client."""
    try:
        client.stop()
        client.close()
    except Exception:  # noqa: BLE001 - best effort at teardown
        pass


@contextmanager
def clients(n):
    started = []
    try:
        for _ in range(n):
            started.append(new_client())
        yield started
    finally:
        for c in started:
            close_client(c)


def start_thread(fn, *args):
    """Runs fn in a daemon thread; returns (thread, box) where box holds its outcome."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def join(what, thread, box):
    thread.join(WAIT_S)
    if thread.is_alive():
        raise Mismatch(f"timed out after {WAIT_S} s waiting for {what}")
    if "error" in box:
        raise Mismatch(f"{what} failed: {box['error']!r}") from box["error"]
    return box.get("result")


# ---------------------------------------------------------------- checks


def check_crud():
    root = "/kazoo/crud"
    with clients(1) as (zk,):
        zk.ensure_path(root)
        expect("create returns the path", zk.create(f"{root}/a", b"one"), f"{root}/a")
        data, stat = zk.get(f"{root}/a")
        expect("data after create", data, b"one")
        expect("version after create", stat.version, 0)
        expect("dataLength", stat.dataLength, 3)
        expect("ephemeralOwner of a persistent node", stat.ephemeralOwner, 0)
        expect("czxid == mzxid after create", stat.czxid, stat.mzxid)

        stat = zk.set(f"{root}/a", b"two", version=0)
        expect("version after set", stat.version, 1)
        expect_raises("set with a stale version", BadVersionError, zk.set, f"{root}/a", b"x", version=0)
        expect("data after set", zk.get(f"{root}/a")[0], b"two")
        expect_raises("create over an existing node", NodeExistsError, zk.create, f"{root}/a")

        zk.create(f"{root}/a/child", b"")
        expect_raises("delete a node with children", NotEmptyError, zk.delete, f"{root}/a")
        expect("children", zk.get_children(f"{root}/a"), ["child"])
        stat = zk.exists(f"{root}/a")
        expect("numChildren", stat.numChildren, 1)
        expect("cversion after one child create", stat.cversion, 1)
        expect("data of an empty node", zk.get(f"{root}/a/child")[0], b"")

        expect("exists on a missing node", zk.exists(f"{root}/missing"), None)
        expect_raises("get a missing node", NoNodeError, zk.get, f"{root}/missing")
        expect_raises("create under a missing parent", NoNodeError, zk.create, f"{root}/missing/x")
        expect_raises("delete with a wrong version", BadVersionError, zk.delete, f"{root}/a/child", version=5)

        zk.delete(f"{root}/a/child")
        expect("cversion counts deletes too", zk.exists(f"{root}/a").cversion, 2)
        zk.delete(f"{root}/a", version=1)
        expect("exists after delete", zk.exists(f"{root}/a"), None)

        # Binary data round-trips byte for byte, up to large values.
        binary = bytes(range(256)) * 4
        zk.create(f"{root}/bin", binary)
        expect("binary data", zk.get(f"{root}/bin")[0], binary)
        big = b"z" * (512 * 1024)
        zk.set(f"{root}/bin", big)
        expect("512 KiB value", zk.get(f"{root}/bin")[0], big)

        # create2 answers the new node's stat with the path.
        path, stat = zk.create(f"{root}/c2", b"abc", include_data=True)
        expect("create2 path", path, f"{root}/c2")
        expect("create2 stat dataLength", stat.dataLength, 3)

        zk.ensure_path(f"{root}/deep/er/path")
        expect("ensure_path made the chain", zk.get_children(f"{root}/deep/er"), ["path"])


def check_ephemeral_sequential():
    root = "/kazoo/ephemeral"
    with clients(2) as (zk, other):
        zk.ensure_path(root)
        other.create(f"{root}/e", b"mine", ephemeral=True)
        stat = zk.exists(f"{root}/e")
        if stat is None:
            raise Mismatch("another session's ephemeral is not visible")
        expect("ephemeralOwner is the creating session", stat.ephemeralOwner, other.client_id[0])
        expect_raises(
            "child of an ephemeral",
            NoChildrenForEphemeralsError,
            zk.create,
            f"{root}/e/kid",
        )

        # Programmer's Guide, "Sequence Nodes": the counter is the parent's, ten digits,
        # zero padded; it counts every child created so far (here /e was the first).
        seqs = [zk.create(f"{root}/seq-", b"", sequence=True) for _ in range(3)]
        expect("sequential names", seqs, [f"{root}/seq-{n:010d}" for n in (1, 2, 3)])
        es = other.create(f"{root}/es-", b"", ephemeral=True, sequence=True)
        expect("ephemeral sequential name", es, f"{root}/es-{4:010d}")

        close_client(other)
        # A closed session's ephemerals are gone by the time the close is answered.
        expect("ephemeral after its session closed", zk.exists(f"{root}/e"), None)
        expect("ephemeral sequential after its session closed", zk.exists(es), None)
        expect("persistent sequentials stay", sorted(zk.get_children(root)), [s.rsplit("/", 1)[1] for s in seqs])

        # The suffix counts child creates (5 so far), not deletes; the cversion a stat
        # shows counts both: now 6 creates + 2 deletes.
        expect("sequential name after deletes", zk.create(f"{root}/seq-", sequence=True), f"{root}/seq-{5:010d}")
        expect("cversion counts creates and deletes", zk.exists(root).cversion, 8)


def check_data_watch():
    root = "/kazoo/datawatch"
    with clients(2) as (zk, other):
        zk.create(f"{root}/n", b"0", makepath=True)

        events = []
        fired = threading.Event()

        def on_event(event):
            events.append(event)
            fired.set()

        # A data watch fires once, on the next change, with the node's path.
        zk.get(f"{root}/n", watch=on_event)
        other.set(f"{root}/n", b"1")
        wait_event("the data watch (NodeDataChanged)", fired)
        expect("event type", events[0].type, EventType.CHANGED)
        expect("event path", events[0].path, f"{root}/n")
        fired.clear()
        other.set(f"{root}/n", b"2")
        time.sleep(0.3)
        expect("a data watch is one-shot", len(events), 1)

        # An exists watch on a missing node fires on its creation.
        zk.exists(f"{root}/later", watch=on_event)
        other.create(f"{root}/later", b"")
        wait_event("the exists watch (NodeCreated)", fired)
        expect("event type", events[1].type, EventType.CREATED)
        fired.clear()

        zk.get(f"{root}/later", watch=on_event)
        other.delete(f"{root}/later")
        wait_event("the data watch (NodeDeleted)", fired)
        expect("event type", events[2].type, EventType.DELETED)

        # The DataWatch recipe re-registers after each event and sees every value.
        seen = []
        zk.DataWatch(f"{root}/n", lambda data, stat: seen.append(data))
        for value in (b"3", b"4"):
            other.set(f"{root}/n", value)
            wait_for(f"DataWatch to see {value!r}", lambda v=value: seen and seen[-1] == v)


def check_children_watch():
    root = "/kazoo/childwatch"
    with clients(2) as (zk, other):
        zk.ensure_path(root)
        events = []
        fired = threading.Event()

        def on_event(event):
            events.append(event)
            fired.set()

        zk.get_children(root, watch=on_event)
        other.create(f"{root}/a", b"")
        wait_event("the children watch on create", fired)
        expect("event type", events[0].type, EventType.CHILD)
        expect("event path", events[0].path, root)
        fired.clear()

        # Changing a child's data is not a change of the parent's child list.
        zk.get_children(root, watch=on_event)
        other.set(f"{root}/a", b"data")
        time.sleep(0.3)
        expect("set on a child fires no children watch", len(events), 1)
        other.delete(f"{root}/a")
        wait_event("the children watch on delete", fired)
        expect("event type", events[1].type, EventType.CHILD)

        seen = []
        zk.ChildrenWatch(root, lambda children: seen.append(sorted(children)))
        other.create(f"{root}/x", b"")
        other.create(f"{root}/y", b"")
        wait_for("ChildrenWatch to see x and y", lambda: seen and seen[-1] == ["x", "y"])


def check_transaction():
    root = "/kazoo/multi"
    with clients(1) as (zk,):
        zk.ensure_path(root)
        t = zk.transaction()
        t.create(f"{root}/a", b"x")
        t.create(f"{root}/b")
        t.set_data(root, b"new")
        t.check(root, 1)
        t.delete(f"{root}/b")
        results = t.commit()
        expect("result count", len(results), 5)
        expect("create results", results[:2], [f"{root}/a", f"{root}/b"])
        # Later ops see earlier ops of the same multi: the parent already has a and b.
        expect("setData stat numChildren", results[2].numChildren, 2)
        expect("setData stat version", results[2].version, 1)
        expect("check and delete results", results[3:], [True, True])
        expect("children after the multi", zk.get_children(root), ["a"])
        stat_a = zk.exists(f"{root}/a")
        expect("one multi is one zxid", stat_a.czxid, zk.exists(root).mzxid)

        # A failed op fails the whole multi: ops before it are rolled back, ops after it
        # report RuntimeInconsistency, and nothing is applied.
        t = zk.transaction()
        t.create(f"{root}/c")
        t.check(root, 99)
        t.create(f"{root}/d")
        results = t.commit()
        expect(
            "failed multi (bad version) results",
            [type(r) for r in results],
            [RolledBackError, BadVersionError, RuntimeInconsistency],
        )
        t = zk.transaction()
        t.set_data(root, b"lost")
        t.create(f"{root}/a")
        t.delete(f"{root}/missing")
        results = t.commit()
        expect(
            "failed multi (node exists) results",
            [type(r) for r in results],
            [RolledBackError, NodeExistsError, RuntimeInconsistency],
        )
        expect("children after failed multis", zk.get_children(root), ["a"])
        data, stat = zk.get(root)
        expect("data after failed multis", data, b"new")
        expect("version after failed multis", stat.version, 1)


def check_acl():
    root = "/kazoo/acl"
    with clients(2) as (zk, other):
        zk.ensure_path(root)
        zk.add_auth("digest", "alice:secret")
        acl = make_digest_acl("alice", "secret", all=True)
        zk.create(f"{root}/private", b"hidden", acl=[acl])
        expect_raises("read without auth", NoAuthError, other.get, f"{root}/private")
        acls, _ = zk.get_acls(f"{root}/private")
        expect("acl read back", acls, [acl])
        other.add_auth("digest", "alice:secret")
        expect("read with auth", other.get(f"{root}/private")[0], b"hidden")


def check_lock():
    root = "/kazoo/lock"
    with clients(3) as (c1, c2, c3):
        lock1 = c1.Lock(root, "one")
        lock2 = c2.Lock(root, "two")
        expect("first acquire", lock1.acquire(timeout=WAIT_S), True)
        expect("second contender, non-blocking", lock2.acquire(blocking=False), False)
        expect("contenders", lock1.contenders(), ["one"])

        thread, box = start_thread(lock2.acquire)
        time.sleep(0.3)
        expect("second contender still waiting while the lock is held", thread.is_alive(), True)
        expect("contenders while one waits", lock1.contenders(), ["one", "two"])
        lock1.release()
        expect("second contender after release", join("lock2.acquire", thread, box), True)
        lock2.release()

        # Mutual exclusion: threads on two sessions, never two inside at once.
        inside = [0]
        most_inside = [0]
        passes = [0]

        def worker(client, name):
            lock = client.Lock(root, name)
            for _ in range(5):
                with lock:
                    inside[0] += 1
                    most_inside[0] = max(most_inside[0], inside[0])
                    time.sleep(0.005)
                    inside[0] -= 1
                    passes[0] += 1

        workers = [start_thread(worker, c, f"w{i}") for i, c in enumerate((c1, c2, c1, c2))]
        for i, (t, b) in enumerate(workers):
            join(f"lock worker {i}", t, b)
        expect("passes through the lock", passes[0], 20)
        expect("most holders at once", most_inside[0], 1)

        # A holder's session closing frees the lock (its node is ephemeral).
        lock3 = c3.Lock(root, "three")
        expect("acquire by the session about to close", lock3.acquire(timeout=WAIT_S), True)
        thread, box = start_thread(lock1.acquire)
        time.sleep(0.2)
        close_client(c3)
        expect("acquire after the holder's session closed", join("lock1.acquire", thread, box), True)
        lock1.release()


def check_election():
    root = "/kazoo/election"
    with clients(2) as (c1, c2):
        leaders = []
        done = threading.Event()

        def lead(name):
            leaders.append(name)
            done.wait(WAIT_S * 3)

        e1 = c1.Election(root, "one")
        e2 = c2.Election(root, "two")
        t1, _ = start_thread(e1.run, lead, "one")
        wait_for("a first leader", lambda: leaders == ["one"])
        t2, _ = start_thread(e2.run, lead, "two")
        wait_for("both contenders", lambda: len(e1.contenders()) == 2)
        expect("contenders, leader first", e1.contenders(), ["one", "two"])
        time.sleep(0.2)
        expect("only one leader", leaders, ["one"])

        # The leader's session ends: the other contender is elected.
        close_client(c1)
        wait_for("re-election after the leader's session closed", lambda: leaders == ["one", "two"])
        expect("contenders after re-election", e2.contenders(), ["two"])
        done.set()
        t2.join(WAIT_S)
        t1.join(WAIT_S)


def check_barrier():
    root = "/kazoo/barrier"
    with clients(2) as (c1, c2):
        barrier = c1.Barrier(f"{root}/single")
        barrier.create()
        waiter = c2.Barrier(f"{root}/single")
        expect("wait on a raised barrier times out", waiter.wait(timeout=0.3), False)
        thread, box = start_thread(waiter.wait, WAIT_S)
        time.sleep(0.1)
        barrier.remove()
        expect("wait returns once the barrier is removed", join("Barrier.wait", thread, box), True)

        # DoubleBarrier: nobody enters until both are there, nobody leaves until both go.
        d1 = c1.DoubleBarrier(f"{root}/double", 2)
        d2 = c2.DoubleBarrier(f"{root}/double", 2)
        thread1, box1 = start_thread(d1.enter)
        time.sleep(0.3)
        expect("first party waits for the second", thread1.is_alive(), True)
        thread2, box2 = start_thread(d2.enter)
        join("DoubleBarrier enter (first)", thread1, box1)
        join("DoubleBarrier enter (second)", thread2, box2)
        expect("both inside", (d1.participating, d2.participating), (True, True))
        thread1, box1 = start_thread(d1.leave)
        thread2, box2 = start_thread(d2.leave)
        join("DoubleBarrier leave (first)", thread1, box1)
        join("DoubleBarrier leave (second)", thread2, box2)
        expect("both left", (d1.participating, d2.participating), (False, False))


def check_queue():
    root = "/kazoo/queue"
    with clients(2) as (producer, consumer):
        q_in = producer.Queue(f"{root}/fifo")
        q_out = consumer.Queue(f"{root}/fifo")
        for item in (b"a", b"b", b"c"):
            q_in.put(item)
        expect("queue length", len(q_out), 3)
        expect("fifo order", [q_out.get() for _ in range(3)], [b"a", b"b", b"c"])
        expect("get on an empty queue", q_out.get(), None)

        # Lower priority numbers come out first; equal priorities keep put order.
        q_in.put(b"low", priority=200)
        q_in.put(b"high", priority=10)
        q_in.put(b"high2", priority=10)
        expect("priority order", [q_out.get() for _ in range(3)], [b"high", b"high2", b"low"])

        # LockingQueue: an item stays until the consumer that took it says it is done.
        lq_in = producer.LockingQueue(f"{root}/locking")
        lq_out = consumer.LockingQueue(f"{root}/locking")
        lq_in.put_all([b"x", b"y"])
        expect("locking get", lq_out.get(timeout=WAIT_S), b"x")
        expect("item still counted while held", len(lq_in), 2)
        expect("consume", lq_out.consume(), True)
        expect("locking get after consume", lq_out.get(timeout=WAIT_S), b"y")
        expect("consume", lq_out.consume(), True)
        expect("locking queue empty", len(lq_in), 0)


def check_counter():
    root = "/kazoo/counter"
    with clients(2) as (c1, c2):
        # The Counter recipe is a compare-and-set loop on the node's version: racing
        # increments from two sessions must all land.
        def bump(client):
            counter = client.Counter(root)
            for _ in range(20):
                counter += 1

        workers = [start_thread(bump, c) for c in (c1, c2)]
        for i, (t, b) in enumerate(workers):
            join(f"counter worker {i}", t, b)
        expect("counter value", c1.Counter(root).value, 40)


CHECKS = {
    "crud": check_crud,
    "ephemeral_sequential": check_ephemeral_sequential,
    "data_watch": check_data_watch,
    "children_watch": check_children_watch,
    "transaction": check_transaction,
    "acl": check_acl,
    "lock": check_lock,
    "election": check_election,
    "barrier": check_barrier,
    "queue": check_queue,
    "counter": check_counter,
}


def main(argv):
    global HOSTS
    if len(argv) < 2 or any(name not in CHECKS for name in argv[2:]):
        print(f"usage: {argv[0]} HOST:PORT [{'|'.join(CHECKS)}]...", file=sys.stderr)
        return 2
    HOSTS = argv[1]
    logging.basicConfig(level=logging.WARNING, format="kazoo log: %(levelname)s %(name)s: %(message)s")
    names = argv[2:] or list(CHECKS)
    # Start from an empty /kazoo so the script can run twice against one server.
    # The acl check leaves a node only alice may read.
    try:
        with clients(1) as (zk,):
            zk.add_auth("digest", "alice:secret")
            zk.delete("/kazoo", recursive=True)
    except Exception as e:  # noqa: BLE001 - nothing else can run
        print(f"FAIL setup: cannot connect to {HOSTS} and clear /kazoo: {e!r}")
        return 1
    failed = []
    for name in names:
        start = time.monotonic()
        try:
            CHECKS[name]()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            failed.append(name)
            print(f"FAIL {name}: {e}", flush=True)
            if not isinstance(e, Mismatch):
                traceback.print_exc()
            continue
        print(f"ok   {name} ({time.monotonic() - start:.2f} s)", flush=True)
    if failed:
        print(f"kazoo against {HOSTS}: {len(failed)} of {len(names)} checks failed: {', '.join(failed)}")
        return 1
    print(f"kazoo against {HOSTS}: all {len(names)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
