"""kazoo with SASL DIGEST-MD5 (pure-sasl) against a server whose JAAS `Server` section
has user_bob="bobsecret" and user_carol="carolsecret", with the `sasl` ACL scheme
registered (authProvider.1=...SASLAuthenticationProvider).

Usage: kazoo_sasl.py HOST:PORT ROOT

Prints one line per check and exits non-zero if any failed. Waits on connection state
events, never on elapsed time; the generous wait limits only stop a hung run.
"""

import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.protocol.states import KazooState
from kazoo.security import ACL, Id, Permissions

HOST = sys.argv[1]
ROOT = sys.argv[2]
# Only a hang guard: a check never passes or fails on time.
HANG_LIMIT_S = 120

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail and not ok else ""))
    if not ok:
        failures.append(name)


def connect(user=None, password=None, until=KazooState.CONNECTED):
    """Starts a client and waits for the state `until` (kazoo reports CONNECTED once the
    session is open, before its SASL exchange, and LOST when the exchange fails);
    returns (client, last state seen)."""
    options = None
    if user is not None:
        options = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    client = KazooClient(hosts=HOST, sasl_options=options)
    settled = threading.Event()
    seen = []

    def listener(state):
        seen.append(state)
        if state in (until, KazooState.LOST):
            settled.set()

    client.add_listener(listener)
    client.start_async()
    if not settled.wait(HANG_LIMIT_S):
        raise SystemExit("hung: no %s or LOST from %s (states %r)" % (until, HOST, seen))
    return client, seen[-1]


bob, state = connect("bob", "bobsecret")
check("right password connects", state == KazooState.CONNECTED, repr(state))
sasl_bob = [ACL(Permissions.ALL, Id("sasl", "bob"))]
bob.create(ROOT, b"secret", acl=sasl_bob)
data, _ = bob.get(ROOT)
check("owner reads a sasl:bob node", data == b"secret", repr(data))
acl, _ = bob.get_acls(ROOT)
check("ACL stored as sasl:bob", [(a.id.scheme, a.id.id, a.perms) for a in acl] == [("sasl", "bob", 31)], repr(acl))

carol, state = connect("carol", "carolsecret")
check("second user connects", state == KazooState.CONNECTED, repr(state))
try:
    carol.get(ROOT)
    check("other sasl user is refused", False, "read succeeded")
except NoAuthError:
    check("other sasl user is refused", True)

anon, state = connect()
check("anonymous client connects", state == KazooState.CONNECTED, repr(state))
try:
    anon.get(ROOT)
    check("anonymous client is refused", False, "read succeeded")
except NoAuthError:
    check("anonymous client is refused", True)

wrong, state = connect("bob", "not-the-password", until=KazooState.LOST)
check("wrong password ends in LOST (AUTH_FAILED)", state == KazooState.LOST, repr(state))
wrong.stop()
wrong.close()

unknown, state = connect("mallory", "whatever", until=KazooState.LOST)
check("unknown user ends in LOST (AUTH_FAILED)", state == KazooState.LOST, repr(state))
unknown.stop()
unknown.close()

bob.delete(ROOT)
for c in (bob, carol, anon):
    c.stop()
    c.close()

if failures:
    print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
    sys.exit(1)
print("all checks passed")
