// Apache Curator recipes against an ensemble while its leader is killed (driven by
// tests/ensemble.rs, curator_recipes_survive_a_leader_kill_*). Run as a single-file
// program: java -cp <curator, zookeeper, guava, slf4j jars> CuratorEnsemble.java
//   <connect string> <workers> <seconds> <root>
//
// Workers take an InterProcessMutex and increment a counter znode inside it with a
// versioned setData; each write carries the worker's tag, so an increment whose reply
// was lost (Curator retried it and got BadVersion) is recognised as the worker's own.
// At the end the counter must equal the increments the workers know they made, give or
// take those whose outcome stayed unknown, and a LeaderLatch per worker must have
// exactly one leader. Prints a summary line and exits non-zero on any violation.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorEnsemble {
    static final AtomicLong known = new AtomicLong();
    static final AtomicLong unknown = new AtomicLong();
    static final AtomicLong violations = new AtomicLong();

    static CuratorFramework client(String connect) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(15000)
            .connectionTimeoutMs(3000)
            .retryPolicy(new RetryNTimes(60, 100))
            .build();
        c.start();
        if (!c.blockUntilConnected(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected");
        }
        return c;
    }

    static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    static void increment(CuratorFramework c, String counter, String tag) throws Exception {
        Stat stat = new Stat();
        String before = text(c.getData().storingStatIn(stat).forPath(counter));
        long n = Long.parseLong(before.split(":")[0]);
        String after = (n + 1) + ":" + tag;
        try {
            c.setData().withVersion(stat.getVersion()).forPath(counter, after.getBytes(StandardCharsets.UTF_8));
            known.incrementAndGet();
        } catch (KeeperException.BadVersionException e) {
            // Under the lock nobody else writes: a BadVersion means an earlier attempt
            // of this very write succeeded and its reply was lost.
            String now = text(c.getData().forPath(counter));
            if (now.endsWith(":" + tag)) {
                known.incrementAndGet();
            } else {
                violations.incrementAndGet();
                System.out.println("VIOLATION: counter " + now + " while " + tag + " held the lock over " + before);
            }
        } catch (KeeperException.ConnectionLossException e) {
            unknown.incrementAndGet();
        }
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        int workers = Integer.parseInt(args[1]);
        long deadline = System.currentTimeMillis() + Long.parseLong(args[2]) * 1000;
        String root = args[3];
        CuratorFramework setup = client(connect);
        setup.create().creatingParentsIfNeeded().forPath(root + "/counter", "0:init".getBytes(StandardCharsets.UTF_8));
        List<Thread> threads = new ArrayList<>();
        List<LeaderLatch> latches = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            final int id = w;
            CuratorFramework c = client(connect);
            LeaderLatch latch = new LeaderLatch(c, root + "/latch", "w" + id);
            latch.start();
            latches.add(latch);
            Thread t = new Thread(() -> {
                InterProcessMutex lock = new InterProcessMutex(c, root + "/lock");
                long seq = 0;
                while (System.currentTimeMillis() < deadline) {
                    try {
                        if (!lock.acquire(2, TimeUnit.SECONDS)) {
                            continue;
                        }
                        try {
                            increment(c, root + "/counter", "w" + id + "." + (seq++));
                        } finally {
                            lock.release();
                        }
                    } catch (Exception e) {
                        // Connection loss past the retries, a lock lost with its
                        // connection: try again.
                        try { Thread.sleep(50); } catch (InterruptedException ie) { return; }
                    }
                }
            });
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join();
        }
        long leaders = 0;
        long waitUntil = System.currentTimeMillis() + 20000;
        while (System.currentTimeMillis() < waitUntil) {
            leaders = latches.stream().filter(LeaderLatch::hasLeadership).count();
            if (leaders == 1) {
                break;
            }
            Thread.sleep(100);
        }
        // The setup session may sit on a follower that has not yet applied the workers'
        // last writes (ZooKeeper promises a session only its own order): a sync first,
        // as a reader that must see every acknowledged write does.
        CountDownLatch synced = new CountDownLatch(1);
        setup.getZookeeperClient().getZooKeeper().sync(root + "/counter", (rc, path, ctx) -> synced.countDown(), null);
        if (!synced.await(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException("sync did not complete");
        }
        String last = text(setup.getData().forPath(root + "/counter"));
        long counter = Long.parseLong(last.split(":")[0]);
        boolean counted = counter >= known.get() && counter <= known.get() + unknown.get();
        System.out.println("counter=" + counter + " known=" + known.get() + " unknown=" + unknown.get()
            + " violations=" + violations.get() + " leaders=" + leaders);
        for (LeaderLatch l : latches) {
            l.close();
        }
        System.exit(counted && violations.get() == 0 && leaders == 1 && known.get() > 0 ? 0 : 1);
    }
}
