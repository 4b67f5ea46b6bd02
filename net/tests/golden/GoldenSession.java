// A scripted session with the real ZooKeeper 3.8 Java client, run by capture.py through
// its logging proxy. Each call below produces one request frame (and its reply) in
// java.c2s.hex / java.s2c.hex, in this order. Not run in CI.

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class GoldenSession {
    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        Semaphore connected = new Semaphore(0);
        BlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();
        // A short session timeout (the server's minimum, 2 ticks) so that a pause below
        // makes the client send a ping.
        ZooKeeper zk = new ZooKeeper(args[0], 4000, e -> {
            if (e.getType() == Watcher.Event.EventType.None) {
                if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    connected.release();
                }
            } else {
                events.add(e);
            }
        });
        if (!connected.tryAcquire(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected");
        }
        List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        Stat stat = new Stat();

        // The four creates: create, create2 (create with a Stat), createContainer, createTTL.
        zk.create("/j", b("root"), open, CreateMode.PERSISTENT);
        zk.create("/j/c2", b("two"), open, CreateMode.PERSISTENT, stat);
        zk.create("/j/seq-", null, open, CreateMode.EPHEMERAL_SEQUENTIAL, stat);
        zk.create("/j/container", b("c"), open, CreateMode.CONTAINER);
        zk.create("/j/ttl", b("t"), open, CreateMode.PERSISTENT_WITH_TTL, stat, 60000);

        // Failures: errors come back as a bare ReplyHeader.
        try {
            zk.create("/j", b("again"), open, CreateMode.PERSISTENT); // NodeExists
        } catch (KeeperException expected) {
            // NodeExists
        }
        try {
            zk.create("/j/c2", b("again"), open, CreateMode.PERSISTENT, stat); // create2 NodeExists
        } catch (KeeperException expected) {
            // NodeExists
        }
        try {
            zk.setData("/j/c2", b("x"), 99); // BadVersion
        } catch (KeeperException expected) {
            // BadVersion
        }

        // Idle long enough for a ping (the client pings after a third of the timeout).
        Thread.sleep(3000);

        // getData with a watch, setData fires it: a notification frame.
        zk.getData("/j", true, stat);
        zk.setData("/j", b("root2"), -1);
        events.poll(10, TimeUnit.SECONDS);

        // A node created with null data reads back as null.
        zk.getData("/j/seq-0000000001", false, stat);

        zk.getChildren("/j", false, stat); // getChildren2
        zk.getChildren("/j", true); // getChildren with a watch
        zk.exists("/j/missing", true); // exists on a missing node, leaves an exist watch
        zk.create("/j/missing", b("now"), open, CreateMode.PERSISTENT); // two notifications
        events.poll(10, TimeUnit.SECONDS);
        events.poll(10, TimeUnit.SECONDS);

        // multi that succeeds: every write op kind, create results of each create opcode.
        zk.multi(Arrays.asList(
            Op.create("/j/m1", b("m"), open, CreateMode.PERSISTENT),
            Op.create("/j/m2", b("m"), open, CreateMode.CONTAINER),
            Op.create("/j/m3", b("m"), open, CreateMode.PERSISTENT_WITH_TTL, 60000),
            Op.create("/j/m4-", b("m"), open, CreateMode.PERSISTENT_SEQUENTIAL),
            Op.check("/j", 1),
            Op.setData("/j/m1", b("mm"), 0),
            Op.delete("/j/m1", -1)));
        // multi that fails on its second op.
        try {
            zk.multi(Arrays.asList(
                Op.create("/j/m5", b("m"), open, CreateMode.PERSISTENT),
                Op.delete("/j/nope", -1),
                Op.setData("/j", b("x"), -1)));
        } catch (KeeperException expected) {
            // NoNode
        }
        // multiRead, one op failing.
        zk.multi(Arrays.asList(Op.getChildren("/j/m2"), Op.getData("/j/c2"), Op.getData("/j/nope")));

        // ACLs and auth.
        String digest = DigestAuthenticationProvider.generateDigest("user:secret");
        zk.setACL("/j/c2", Arrays.asList(
            new ACL(ZooDefs.Perms.ALL, new Id("digest", digest)),
            new ACL(ZooDefs.Perms.READ, ZooDefs.Ids.ANYONE_ID_UNSAFE)), -1);
        zk.getACL("/j/c2", stat);
        zk.addAuthInfo("digest", b("user:secret"));
        zk.setData("/j/c2", b("authed"), -1);
        try {
            zk.setACL("/j/ttl", open, 7); // BadVersion
        } catch (KeeperException expected) {
            // BadVersion
        }

        CountDownLatch synced = new CountDownLatch(1);
        zk.sync("/j", (rc, path, ctx) -> synced.countDown(), null);
        synced.await(10, TimeUnit.SECONDS);

        zk.getEphemerals("/j");
        zk.getAllChildrenNumber("/j");

        // Persistent recursive watch, a change under it, then remove it.
        zk.exists("/j/later", true); // a one-shot watch still pending at the cut
        zk.addWatch("/j", AddWatchMode.PERSISTENT_RECURSIVE);
        // capture.py cuts the connection after this reply: the client reconnects with
        // its session id and re-registers both watches with setWatches2.
        if (!connected.tryAcquire(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not reconnected");
        }
        zk.setData("/j/ttl", b("t2"), -1);
        events.poll(10, TimeUnit.SECONDS);
        zk.removeAllWatches("/j", Watcher.WatcherType.Any, false);
        events.poll(2, TimeUnit.SECONDS);

        // removeWatches for one watcher goes out as checkWatches.
        Watcher w = e -> { };
        zk.getData("/j", w, stat);
        zk.removeWatches("/j", w, Watcher.WatcherType.Data, false);

        zk.whoAmI();
        zk.delete("/j/container", -1);
        try {
            zk.delete("/j", 0); // NotEmpty
        } catch (KeeperException expected) {
            // NotEmpty
        }
        zk.close();
    }
}
