"""kazoo over TLS (or plain TCP) for tests/tls.rs.

Usage: kazoo_tls.py HOST:PORT CA CERT KEY VERB [ARGS...]
CA "-" connects without TLS; CERT/KEY "-" sends no client certificate.
Verbs, each printing one line:
  roundtrip PATH       create PATH (open ACL), read it back, delete it: "ok"
  create_x509 PATH DN  create PATH readable only by x509:DN: "created" or the error name
  get PATH             the data, or the error name (NoAuthError, ...)
A failure to connect prints "connect-failed: <reason>" and exits 2.
"""

import sys

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import ACL, Id, Permissions


def main():
    hostport, ca, cert, key, verb, *args = sys.argv[1:]
    tls = {}
    if ca != "-":
        tls = dict(use_ssl=True, ca=ca, verify_certs=True, check_hostname=False)
        if cert != "-":
            tls.update(certfile=cert, keyfile=key)
    zk = KazooClient(hosts=hostport, timeout=10, connection_retry={"max_tries": 0}, **tls)
    try:
        zk.start(timeout=15)
    except Exception as e:  # noqa: BLE001 - the reason is the test's output
        print(f"connect-failed: {type(e).__name__}: {e}")
        sys.exit(2)
    try:
        if verb == "roundtrip":
            (path,) = args
            zk.create(path, b"tls")
            data, _ = zk.get(path)
            assert data == b"tls", data
            zk.delete(path)
            print("ok")
        elif verb == "create_x509":
            path, dn = args
            acl = [ACL(Permissions.ALL, Id("x509", dn))]
            try:
                zk.create(path, b"secret", acl=acl)
                print("created")
            except KazooException as e:
                print(type(e).__name__)
        elif verb == "get":
            (path,) = args
            try:
                data, _ = zk.get(path)
                print(data.decode())
            except KazooException as e:
                print(type(e).__name__)
        else:
            raise SystemExit(f"unknown verb {verb}")
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()
