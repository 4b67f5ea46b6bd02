"""kazoo with SASL GSSAPI (pure-sasl over pykerberos) against a server whose JAAS `Server`
section logs in as zookeeper/localhost with Krb5LoginModule, with the `sasl` ACL scheme
registered. The client's Kerberos ticket comes from the credential cache KRB5CCNAME
(the test runs kinit with the client's keytab first).

Usage: kazoo_gssapi.py HOST:PORT ROOT EXPECTED_ID|refused

With EXPECTED_ID: the login succeeds, a node with the ACL sasl:EXPECTED_ID is readable
by this client and not by an anonymous one (so the server derived exactly that id).
With `refused`: the server refuses the exchange (AuthFailed, connection dropped).

Prints one line per check and exits non-zero if any failed. Waits on connection state
events, never on elapsed time; the wait limit only stops a hung run.
"""

import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id, Permissions

HOST = sys.argv[1]
ROOT = sys.argv[2]
EXPECTED = sys.argv[3]
# Only a hang guard: a check never passes or fails on time.
HANG_LIMIT_S = 120

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
    if not ok:
        failures.append(name)


def connect(gssapi):
    """Starts a client and waits for CONNECTED or LOST; returns (client, last state)."""
    options = {"mechanism": "GSSAPI"} if gssapi else None
    client = KazooClient(hosts=HOST, sasl_options=options, connection_retry={"max_tries": 0})
    settled = threading.Event()
    seen = []

    def listener(state):
        seen.append(state)
        if state in (KazooState.CONNECTED, KazooState.LOST):
            settled.set()

    client.add_listener(listener)
    client.start_async()
    if not settled.wait(HANG_LIMIT_S):
        raise SystemExit("hung: no CONNECTED or LOST from %s (states %r)" % (HOST, seen))
    return client, seen[-1]


if EXPECTED == "refused":
    client, state = connect(True)
    # kazoo reports CONNECTED when the session opens, then runs the exchange; a refused
    # exchange drops the connection. A read then fails instead of answering.
    try:
        client.get("/")
        check("refused login cannot read", False, "read succeeded")
    except Exception as e:  # ConnectionLoss, AuthFailed or SessionExpired: all refusals
        check("refused login cannot read", True)
        print("refusal: %s" % type(e).__name__)
    client.stop()
else:
    client, state = connect(True)
    check("GSSAPI login connects", state == KazooState.CONNECTED, repr(state))
    acl = [ACL(Permissions.ALL, Id("sasl", EXPECTED))]
    client.create(ROOT, b"kerberized", acl=acl)
    data, _ = client.get(ROOT)
    check("owner reads a sasl:%s node" % EXPECTED, data == b"kerberized", repr(data))
    got, _ = client.get_acls(ROOT)
    check(
        "ACL stored as sasl:%s" % EXPECTED,
        [(a.id.scheme, a.id.id, a.perms) for a in got] == [("sasl", EXPECTED, 31)],
        repr(got),
    )
    anon, state = connect(False)
    check("anonymous client connects", state == KazooState.CONNECTED, repr(state))
    try:
        anon.get(ROOT)
        check("anonymous client is refused", False, "read succeeded")
    except NoAuthError:
        check("anonymous client is refused", True)
    anon.stop()
    client.stop()

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
