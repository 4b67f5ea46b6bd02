#!/usr/bin/env python3
"""kazoo's reconfig call against a 3-member ensemble with reconfigEnabled.

    python3 tests/cross/kazoo_reconfig.py HOSTS SUPER_PASSWORD GONE

GONE is the id of a follower that leaves and comes back; HOSTS are the two other
members (the leaving one closes its clients). Server lines are printed without ids.

Prints one normalised line per step (server lines by id and role, `version=` by
presence, errors by class name), for the harness to compare between ferrokeeper and
Java ZooKeeper:

1. without the super user: reconfig is refused (NoAuthError);
2. as super: server GONE leaves (incremental), the answer lists two servers;
3. a stale from_config is refused (BadVersionError);
4. server GONE joins again with its line from /zookeeper/config: Java 3.8 answers
   BadArgumentsError (and so does ferrokeeper);
5. the same membership given whole (non-incremental new_members);
6. `get /zookeeper/config` agrees with the last answer.
"""

import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NewConfigNoQuorumError


def shape(data):
    lines = []
    for line in data.decode().splitlines():
        if line.startswith("server."):
            _sid, rest = line.split("=", 1)
            role = "observer" if ":observer" in rest else "participant"
            lines.append(f"server:{role}")
        elif line.startswith("version="):
            lines.append("version")
        else:
            lines.append(line)
    return " ".join(lines)


def step(name, call):
    # A freshly formed ensemble may not count every member as synced yet: the
    # NewConfigNoQuorum answer then is asked again (a wait, not a check).
    for _ in range(100):
        try:
            data, _stat = call()
            print(f"{name}: {shape(data)}", flush=True)
            return data
        except NewConfigNoQuorumError:
            time.sleep(0.2)
        except KazooException as e:
            print(f"{name}: {type(e).__name__}", flush=True)
            return None
    print(f"{name}: NewConfigNoQuorumError", flush=True)
    return None


def main():
    hosts, password, gone = sys.argv[1], sys.argv[2], sys.argv[3]
    anon = KazooClient(hosts=hosts, timeout=20)
    anon.start(timeout=30)
    config, _ = anon.get("/zookeeper/config")
    line3 = next(
        l for l in config.decode().splitlines() if l.startswith(f"server.{gone}=")
    )
    step("anonymous remove", lambda: anon.reconfig(joining=None, leaving=gone, new_members=None))
    anon.stop()

    su = KazooClient(hosts=hosts, timeout=20, auth_data=[("digest", f"super:{password}")])
    su.start(timeout=30)
    removed = step("remove", lambda: su.reconfig(joining=None, leaving=gone, new_members=None))
    step(
        "stale from_config",
        lambda: su.reconfig(joining=line3, leaving=None, new_members=None, from_config=1),
    )
    step("add back", lambda: su.reconfig(joining=line3, leaving=None, new_members=None))
    whole, _ = su.get("/zookeeper/config")
    members = ",".join(l for l in whole.decode().splitlines() if l.startswith("server."))
    last = step("new members", lambda: su.reconfig(joining=None, leaving=None, new_members=members))
    # A member may lag the leader by a moment: sync first.
    su.sync("/zookeeper/config")
    now, _ = su.get("/zookeeper/config")
    print(f"config agrees: {last is not None and shape(now) == shape(last)}", flush=True)
    print(f"removed answer had 2 servers: {removed is not None and shape(removed).count('server:') == 2}", flush=True)
    su.stop()


if __name__ == "__main__":
    main()
