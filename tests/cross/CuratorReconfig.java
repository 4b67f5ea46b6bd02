// Curator's reconfig builder against a 3-member ensemble with reconfigEnabled (driven by
// tests/reconfig.rs, kazoo_and_curator_reconfig_match_java). Run as a single-file program:
// java -cp <curator, zookeeper, guava, slf4j jars> CuratorReconfig.java HOSTS PASSWORD GONE
//
// The same steps as tests/cross/kazoo_reconfig.py, printed the same way (server lines
// without ids, `version=` by presence, errors by KeeperException code name): refused
// without the super user, a follower (GONE) leaves, a stale fromConfig, its line joins
// again, the whole membership as newMembers, and /zookeeper/config agrees.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.KeeperException;

public class CuratorReconfig {
    interface Call {
        byte[] run() throws Exception;
    }

    static String shape(byte[] data) {
        List<String> out = new ArrayList<>();
        for (String line : new String(data, StandardCharsets.UTF_8).split("\n")) {
            if (line.startsWith("server.")) {
                out.add(line.contains(":observer") ? "server:observer" : "server:participant");
            } else if (line.startsWith("version=")) {
                out.add("version");
            } else if (!line.isEmpty()) {
                out.add(line);
            }
        }
        return String.join(" ", out);
    }

    static byte[] step(String name, Call call) throws Exception {
        // A freshly formed ensemble may not count every member as synced yet.
        for (int i = 0; i < 100; i++) {
            try {
                byte[] data = call.run();
                System.out.println(name + ": " + shape(data));
                return data;
            } catch (KeeperException e) {
                if (e.code() == KeeperException.Code.NEWCONFIGNOQUORUM) {
                    Thread.sleep(200);
                    continue;
                }
                System.out.println(name + ": " + e.code());
                return null;
            }
        }
        System.out.println(name + ": NEWCONFIGNOQUORUM");
        return null;
    }

    static CuratorFramework client(String hosts, String password) throws Exception {
        CuratorFrameworkFactory.Builder b = CuratorFrameworkFactory.builder()
            .connectString(hosts)
            .sessionTimeoutMs(20000)
            .retryPolicy(new RetryOneTime(100));
        if (password != null) {
            b.authorization("digest", ("super:" + password).getBytes(StandardCharsets.UTF_8));
        }
        CuratorFramework c = b.build();
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected");
        }
        return c;
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String password = args[1];
        String gone = args[2];
        CuratorFramework anon = client(hosts, null);
        String config = new String(anon.getConfig().forEnsemble(), StandardCharsets.UTF_8);
        String line = null;
        for (String l : config.split("\n")) {
            if (l.startsWith("server." + gone + "=")) {
                line = l;
            }
        }
        step("anonymous remove", () -> anon.reconfig().leaving(gone).forEnsemble());
        anon.close();

        CuratorFramework su = client(hosts, password);
        byte[] removed = step("remove", () -> su.reconfig().leaving(gone).forEnsemble());
        final String joining = line;
        step("stale from_config", () -> su.reconfig().joining(joining).fromConfig(1).forEnsemble());
        step("add back", () -> su.reconfig().joining(joining).forEnsemble());
        List<String> members = new ArrayList<>();
        for (String l : new String(su.getData().forPath("/zookeeper/config"), StandardCharsets.UTF_8).split("\n")) {
            if (l.startsWith("server.")) {
                members.add(l);
            }
        }
        byte[] last = step("new members", () -> su.reconfig().withNewMembers(members).forEnsemble());
        su.sync().forPath("/zookeeper/config");
        byte[] now = su.getData().forPath("/zookeeper/config");
        System.out.println("config agrees: " + (last != null && shape(now).equals(shape(last)) ? "True" : "False"));
        boolean two = removed != null && shape(removed).split("server:", -1).length - 1 == 2;
        System.out.println("removed answer had 2 servers: " + (two ? "True" : "False"));
        su.close();
    }
}
