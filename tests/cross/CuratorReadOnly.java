// Apache Curator with canBeReadOnly(true) against the one member left of a 3-member
// ensemble (driven by tests/read_only.rs, read_only_mode_*). Run as a single-file
// program: java -cp <curator, zookeeper, guava, slf4j jars> CuratorReadOnly.java <addr>
//
// The harness sends one phase per line on stdin and reads stdout; each check prints one
// line (`ok ...` or `FAIL ...`) and each phase ends with `DONE`:
// - `ro`: the member serves read-only. A Curator client that may be read-only starts,
//   its connection state listener reports READ_ONLY, it reads what was written before,
//   and a create and a setData fail with NotReadOnlyException.
// - `rejoined`: the quorum is back. The same client's listener reports SUSPENDED, then
//   CONNECTED (the ZooKeeper client found a read-write server by its own probe), and a
//   write goes through and reads back.
// Exits 1 if any check failed.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.KeeperException;

public class CuratorReadOnly {
    static final long WAIT_MS = 60_000;
    static final List<ConnectionState> states = new CopyOnWriteArrayList<>();
    static boolean failed = false;
    static CuratorFramework client;

    static void report(boolean ok, String what) {
        if (!ok) {
            failed = true;
        }
        System.out.println((ok ? "ok " : "FAIL ") + what);
        System.out.flush();
    }

    static boolean waitFor(ConnectionState s) throws InterruptedException {
        long end = System.currentTimeMillis() + WAIT_MS;
        while (System.currentTimeMillis() < end) {
            if (states.contains(s)) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    static void expectNotReadOnly(String name, Op op) {
        try {
            op.run();
            report(false, name + " on a read-only server succeeded");
        } catch (KeeperException.NotReadOnlyException e) {
            report(true, name + " gets NotReadOnlyException");
        } catch (Exception e) {
            report(false, name + " threw " + e);
        }
    }

    interface Op {
        void run() throws Exception;
    }

    static void phaseRo(String addr) throws Exception {
        client = CuratorFrameworkFactory.builder()
            .connectString(addr)
            .sessionTimeoutMs(20000)
            .connectionTimeoutMs(5000)
            .canBeReadOnly(true)
            .retryPolicy(new RetryOneTime(100))
            .build();
        client.getConnectionStateListenable().addListener((c, s) -> states.add(s));
        client.start();
        report(waitFor(ConnectionState.READ_ONLY), "the listener reports READ_ONLY " + states);
        byte[] data = client.getData().forPath("/ro/data");
        String text = new String(data, StandardCharsets.UTF_8);
        report(text.equals("before"), "read of what was written before: " + text);
        report(client.getChildren().forPath("/ro").equals(List.of("data")), "children of /ro");
        expectNotReadOnly("create", () -> client.create().forPath("/ro/curator", new byte[0]));
        expectNotReadOnly("setData", () -> client.setData().forPath("/ro/data", new byte[1]));
    }

    static void phaseRejoined() throws Exception {
        // Curator's first read-write connection is CONNECTED even after READ_ONLY (Java
        // ZooKeeper 3.8 gives this sequence too: the read-only session was local).
        boolean connected = waitFor(ConnectionState.CONNECTED);
        List<ConnectionState> want =
            List.of(ConnectionState.READ_ONLY, ConnectionState.SUSPENDED, ConnectionState.CONNECTED);
        report(connected && states.equals(want), "the listener reports " + want + ": " + states);
        long end = System.currentTimeMillis() + WAIT_MS;
        Exception last = null;
        while (System.currentTimeMillis() < end) {
            try {
                client.create().forPath("/ro/curator", "rw".getBytes(StandardCharsets.UTF_8));
                last = null;
                break;
            } catch (KeeperException.NotReadOnlyException | KeeperException.ConnectionLossException e) {
                last = e;
                Thread.sleep(200);
            }
        }
        report(last == null, "a write goes through once the quorum is back (last: " + last + ")");
        byte[] back = client.getData().forPath("/ro/curator");
        report("rw".equals(new String(back, StandardCharsets.UTF_8)), "it reads its write back");
        client.close();
    }

    public static void main(String[] args) throws Exception {
        String addr = args[0];
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String phase = line.trim();
            try {
                if (phase.equals("ro")) {
                    phaseRo(addr);
                } else if (phase.equals("rejoined")) {
                    phaseRejoined();
                } else if (!phase.isEmpty()) {
                    report(false, "unknown phase " + phase);
                }
            } catch (Exception e) {
                report(false, "phase " + phase + " threw " + e);
            }
            System.out.println("DONE");
            System.out.flush();
        }
        System.exit(failed ? 1 : 0);
    }
}
