#!/usr/bin/env python3
"""Records golden ZooKeeper frames: a real client talks to a real Apache ZooKeeper
through a logging TCP proxy, and every frame of each direction is saved as one line of
hex. Not run in CI: the fixtures it writes are committed, and `net/tests/golden.rs`
checks ferrokeeper-net against them.

    python3 net/tests/golden/capture.py            # all sessions
    python3 net/tests/golden/capture.py java zkcli # some of them

It starts Java ZooKeeper (Debian's `zookeeper` package) on a free loopback port with a
throw-away data directory, runs each scripted session through the proxy, and stops the
server. Fixture format, one file per session and direction (`NAME.c2s.hex`,
`NAME.s2c.hex`):

    # comment lines start with '#'
    <label> <hex of the whole frame, length prefix included>

A client->server label is `connect` for a handshake (the first frame of each
connection; the java session is cut once and reconnects) and the opcode name otherwise
(`create`, `multi`, `ping`, ...). A server->client label is `connect_response`,
`notification`, or the opcode name of the request whose xid the reply carries, so a
reader knows which response record follows the ReplyHeader.

Session ids, zxids and times differ on every run, so a re-capture changes the fixture
bytes; the checks in golden.rs only compare our encoding with Java's for the same values.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ZooDefs.OpCode
OPNAMES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}

JARS = [
    "zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar",
    "netty-handler.jar", "netty-transport.jar", "netty-common.jar", "netty-buffer.jar",
    "netty-codec.jar", "netty-resolver.jar", "netty-transport-native-epoll.jar",
    "netty-transport-native-unix-common.jar",
]
CLASSPATH = ":".join("/usr/share/java/" + j for j in JARS)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    head = read_exact(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">i", head)
    body = read_exact(sock, length)
    if body is None:
        return None
    return head + body


class Recorder:
    """Writes the frames of one session; matches replies to requests by xid."""

    def __init__(self, name, comment, drop_after=None):
        # drop_after: the label of a reply after which the proxy cuts the connection
        # once, so the client reconnects (a handshake with a session id, then
        # setWatches re-registering its watches).
        self.drop_after = drop_after
        self.lock = threading.Lock()
        self.pending = {}  # xid -> [opname, ...] in send order
        self.c2s = open(os.path.join(HERE, name + ".c2s.hex"), "w")
        self.s2c = open(os.path.join(HERE, name + ".s2c.hex"), "w")
        for f, d in ((self.c2s, "client -> server"), (self.s2c, "server -> client")):
            f.write("# %s, %s: %s\n" % (name, d, comment))
            f.write("# written by capture.py; <label> <hex frame incl. length prefix>\n")

    def client_frame(self, index, frame):
        if index == 0:
            label = "connect"
        else:
            xid, opcode = struct.unpack(">ii", frame[4:12])
            label = OPNAMES.get(opcode, "op%d" % opcode)
            with self.lock:
                self.pending.setdefault(xid, []).append(label)
        self.c2s.write("%s %s\n" % (label, frame.hex()))
        self.c2s.flush()

    def server_frame(self, index, frame):
        if index == 0:
            label = "connect_response"
        else:
            (xid,) = struct.unpack(">i", frame[4:8])
            if xid == -1:
                label = "notification"
            else:
                with self.lock:
                    queue = self.pending.get(xid) or ["unmatched"]
                    label = queue.pop(0)
        self.s2c.write("%s %s\n" % (label, frame.hex()))
        self.s2c.flush()
        if label == self.drop_after:
            self.drop_after = None
            return True
        return False

    def close(self):
        self.c2s.close()
        self.s2c.close()


def pump(src, dst, record):
    index = 0
    try:
        while True:
            frame = read_frame(src)
            if frame is None:
                break
            drop = record(index, frame)
            index += 1
            dst.sendall(frame)
            if drop:
                time.sleep(0.2)  # let the client take the reply before the cut
                break
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Proxy:
    """Accepts connections on a free port and relays them to the server, recording
    every connection of the session into the same Recorder (in practice one)."""

    def __init__(self, target_port, recorder):
        self.recorder = recorder
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.threads = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for t in (
                threading.Thread(target=pump, args=(client, server, self.recorder.client_frame)),
                threading.Thread(target=pump, args=(server, client, self.recorder.server_frame)),
            ):
                t.start()
                self.threads.append(t)

    def finish(self):
        self.listener.close()
        for t in self.threads:
            t.join(timeout=10)
        self.recorder.close()


def start_zookeeper(workdir):
    port = free_port()
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    cfg = os.path.join(workdir, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(
            "tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n"
            % (data, port)
        )
    log = open(os.path.join(workdir, "server.log"), "w")
    proc = subprocess.Popen(
        ["java", "-Xmx256m", "-Dzookeeper.extendedTypesEnabled=true", "-cp", CLASSPATH,
         "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
        stdout=log, stderr=subprocess.STDOUT,
    )
    # `ruok` answers imok before the server takes sessions (a handshake in that window is
    # closed with "ZooKeeperServer not running"); `srvr` reports a Mode only once it does.
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"srvr")
                reply = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                if b"Mode:" in reply:
                    return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("ZooKeeper did not start; see " + log.name)


# ---- scripted sessions ----

# zkCli.sh reads commands from stdin when it is not a terminal.
ZKCLI_SCRIPT = """\
create /cli data1
create -s /cli/seq- s
create -e /cli/eph e
create -c /cli/container c
create -t 60000 /cli/ttl t
get -w /cli
set /cli data2
ls -s /cli
setAcl /cli/seq-0000000000 world:anyone:cdrwa
getAcl /cli/seq-0000000000
addauth digest user:secret
whoami
stat /cli/missing
sync /cli
getEphemerals /cli
getAllChildrenNumber /cli
addWatch -m PERSISTENT_RECURSIVE /cli
removewatches /cli -a
delete /cli/container
close
quit
"""


def session_zkcli(port):
    subprocess.run(
        ["/usr/share/zookeeper/bin/zkCli.sh", "-server", "127.0.0.1:%d" % port],
        input=ZKCLI_SCRIPT.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=120, check=False,
    )


def session_java(port):
    build = tempfile.mkdtemp(prefix="golden-java-")
    try:
        subprocess.run(
            ["javac", "-cp", CLASSPATH, "-d", build, os.path.join(HERE, "GoldenSession.java")],
            check=True,
        )
        subprocess.run(
            ["java", "-cp", CLASSPATH + ":" + build, "GoldenSession", "127.0.0.1:%d" % port],
            check=True, timeout=120,
        )
    finally:
        shutil.rmtree(build, ignore_errors=True)


def session_kazoo(port):
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError
    import kazoo.security as sec

    zk = KazooClient(hosts="127.0.0.1:%d" % port)
    zk.start()
    zk.create("/kz", b"k")
    zk.create("/kz/two", b"2", include_data=True)  # create2
    zk.create("/kz/nodata")
    zk.get("/kz", watch=lambda ev: None)
    zk.set("/kz", b"kk")
    zk.get_children("/kz", include_data=True)  # getChildren2
    zk.exists("/kz/missing")
    t = zk.transaction()
    t.create("/kz/t1", b"x")
    t.check("/kz", 1)
    t.set_data("/kz/t1", b"y")
    t.delete("/kz/t1")
    t.commit()
    t = zk.transaction()
    t.create("/kz/t2", b"x")
    t.delete("/kz/missing")
    t.commit()
    zk.set_acls("/kz/two", [sec.make_digest_acl("user", "secret", all=True), sec.OPEN_ACL_UNSAFE[0]])
    zk.get_acls("/kz/two")
    zk.add_auth("digest", "user:secret")
    zk.sync("/kz")
    try:
        zk.get("/kz/missing")
    except NoNodeError:
        pass
    zk.stop()
    zk.close()


CLI_MT_SCRIPT = [
    "create /cmt",
    "create2 +s /cmt/s-",
    "create +c /cmt/ct",
    "create2 +t=60000 /cmt/ttl",
    "get /cmt",
    "set /cmt newdata",
    "ls /cmt",
    "ls2 /cmt",
    "wexists /cmt/missing",
    "exists /cmt",
    "sync /cmt",
    "addauth digest user:secret",
    "config",
    "delete /cmt/ct",
    "quit",
]


def session_cli_mt(port):
    # -r: ask for a read-only capable session (the readOnly byte is 1).
    proc = subprocess.Popen(
        ["/usr/lib/zookeeper/bin/cli_mt", "-r", "-h", "127.0.0.1:%d" % port],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)  # the handshake
    for line in CLI_MT_SCRIPT:
        proc.stdin.write((line + "\n").encode())
        proc.stdin.flush()
        time.sleep(0.4)  # one command at a time, each answered before the next
    proc.stdin.close()
    proc.wait(timeout=30)


def jint(v):
    return struct.pack(">i", v)


def jlong(v):
    return struct.pack(">q", v)


def jbuf(b):
    return jint(len(b)) + b


OPEN_ACL = jint(1) + jint(31) + jbuf(b"world") + jbuf(b"anyone")


def session_raw(port):
    """Frames no client library sends, to see how the server answers them: a pre-3.3
    handshake (no readOnly byte), creates inside multi under every create type with
    flags that agree or disagree with it, and setWatches (type 101)."""
    s = socket.create_connection(("127.0.0.1", port))

    def send(payload):
        s.sendall(jint(len(payload)) + payload)
        return read_frame(s)

    # ConnectRequest without the readOnly byte: 44 bytes.
    send(jint(0) + jlong(0) + jint(4000) + jlong(0) + jbuf(bytes(16)))
    create = lambda path, flags: jbuf(path) + jbuf(b"d") + OPEN_ACL + jint(flags)
    header = lambda ty: jint(ty) + b"\x00" + jint(-1)
    done = jint(-1) + b"\x01" + jint(-1)
    ops = (
        header(15) + create(b"/r1", 0)  # create2, persistent
        + header(19) + create(b"/r2", 0)  # createContainer type, persistent flags
        + header(1) + create(b"/r3", 4)  # create type, container flags
        + header(15) + create(b"/r4", 4)  # create2 type, container flags
        + header(21) + create(b"/r5", 5) + jlong(60000)  # createTTL
        + header(1) + create(b"/r6", 2)  # create, sequential
    )
    send(jint(1) + jint(14) + ops + done)
    # setWatches (101): no persistent watches.
    watches = lambda paths: jint(len(paths)) + b"".join(jbuf(p) for p in paths)
    send(jint(2) + jint(101) + jlong(1) + watches([b"/r1"]) + watches([b"/none"]) + watches([]))
    send(jint(3) + jint(4) + jbuf(b"/r1") + b"\x00")
    send(jint(4) + jint(-11))
    s.close()


SESSIONS = {
    # name: (run, comment, label of the reply after which the proxy cuts the connection)
    "java": (session_java, "GoldenSession.java (ZooKeeper 3.8 Java client) to ZooKeeper 3.8",
             "addWatch"),
    "zkcli": (session_zkcli, "zkCli.sh (ZooKeeper 3.8) to ZooKeeper 3.8", None),
    "kazoo": (session_kazoo, "kazoo (Python) to ZooKeeper 3.8", None),
    "cli_mt": (session_cli_mt, "cli_mt -r (ZooKeeper 3.8 C client) to ZooKeeper 3.8", None),
    "raw": (session_raw, "hand-built frames (capture.py session_raw) to ZooKeeper 3.8", None),
}


def main():
    names = sys.argv[1:] or list(SESSIONS)
    workdir = tempfile.mkdtemp(prefix="golden-zk-")
    proc, port = start_zookeeper(workdir)
    try:
        for name in names:
            run, comment, drop_after = SESSIONS[name]
            proxy = Proxy(port, Recorder(name, comment, drop_after))
            run(proxy.port)
            time.sleep(0.5)
            proxy.finish()
            print("captured", name)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
