// Idempotent topic creation / description with the Kafka Admin client (kafka-clients only).
//
// Run by create-topics.sh, or directly (Java 17 single-file source launch):
//   java -Dlog4j2.configurationFile=kafka/config/log4j2-tools.properties -cp 'kafka/lib/*' \
//        kafka/CreateTopics.java --bootstrap 127.0.0.1:9092 wazuh-alerts:6 wazuh-misp-indicators:1:compact
//   java ... kafka/CreateTopics.java --bootstrap 127.0.0.1:9092 --describe [NAME ...]
//
// Spec: NAME:PARTITIONS[:POLICY], POLICY = compact | delete | compact,delete (default: broker default, delete).
// Replication factor is always 1 (single broker). An existing topic counts as success; a partition count or
// cleanup.policy that differs from the spec is reported as a warning (Kafka cannot shrink partitions).
// After creation it waits until every partition has a leader, so producers can use the topics at once.
//
// Exit codes: 0 ok, 1 a topic could not be created / broker unreachable, 2 usage error.

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;

public class CreateTopics {
    private record Spec(String name, int partitions, String policy) {}

    private static void usage(String msg) {
        if (msg != null) System.err.println("CreateTopics: " + msg);
        System.err.println("usage: CreateTopics [--bootstrap HOST:PORT[,...]] [--timeout-ms N] NAME:PARTITIONS[:compact|delete] ...");
        System.err.println("       CreateTopics [--bootstrap HOST:PORT[,...]] [--timeout-ms N] --describe [NAME ...]");
        System.exit(2);
    }

    private static Spec parseSpec(String arg) {
        String[] p = arg.split(":", -1);
        if (p.length < 2 || p.length > 3 || p[0].isEmpty()) usage("bad topic spec '" + arg + "' (want NAME:PARTITIONS[:compact])");
        if (!p[0].matches("[a-zA-Z0-9._-]{1,249}")) usage("bad topic name '" + p[0] + "'");
        int n = 0;
        try { n = Integer.parseInt(p[1]); } catch (NumberFormatException e) { usage("bad partition count in '" + arg + "'"); }
        if (n < 1) usage("partition count must be >= 1 in '" + arg + "'");
        String policy = null;
        if (p.length == 3) {
            policy = p[2];
            if (!policy.equals("compact") && !policy.equals("delete") && !policy.equals("compact,delete") && !policy.equals("delete,compact"))
                usage("bad cleanup policy '" + policy + "' in '" + arg + "' (compact, delete or compact,delete)");
        }
        return new Spec(p[0], n, policy);
    }

    private static Throwable root(Throwable t) {
        return (t instanceof ExecutionException && t.getCause() != null) ? t.getCause() : t;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = "127.0.0.1:9092";
        int timeoutMs = 30_000;
        boolean describe = false;
        Map<String, Spec> specs = new LinkedHashMap<>();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--bootstrap", "--bootstrap-server" -> { if (++i >= args.length) usage(a + " needs a value"); bootstrap = args[i]; }
                case "--timeout-ms" -> {
                    if (++i >= args.length) usage(a + " needs a value");
                    try { timeoutMs = Integer.parseInt(args[i]); } catch (NumberFormatException e) { usage("bad --timeout-ms"); }
                }
                case "--describe" -> describe = true;
                case "-h", "--help" -> usage(null);
                default -> {
                    if (a.startsWith("-")) usage("unknown option " + a);
                    if (describe) names.add(a.split(":", 2)[0]);
                    else { Spec s = parseSpec(a); specs.put(s.name(), s); } // later spec for the same name wins
                }
            }
        }
        if (!describe && specs.isEmpty()) usage("no topics given");

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "wazuh-misp-create-topics");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Math.min(timeoutMs, 10_000));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);

        try (Admin admin = Admin.create(props)) {
            if (describe) {
                Collection<String> which = names.isEmpty() ? new TreeSet<>(admin.listTopics().names().get()) : names;
                if (which.isEmpty()) { System.out.println("(no topics)"); return; }
                print(admin, which, null, null);
                return;
            }

            List<NewTopic> newTopics = new ArrayList<>();
            for (Spec s : specs.values()) {
                NewTopic t = new NewTopic(s.name(), s.partitions(), (short) 1);
                if (s.policy() != null) t.configs(Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, s.policy()));
                newTopics.add(t);
            }
            CreateTopicsResult res = admin.createTopics(newTopics);
            Map<String, String> status = new LinkedHashMap<>();
            boolean failed = false;
            for (Map.Entry<String, KafkaFuture<Void>> e : res.values().entrySet()) {
                try {
                    e.getValue().get();
                    status.put(e.getKey(), "created");
                } catch (ExecutionException ex) {
                    Throwable c = root(ex);
                    if (c instanceof TopicExistsException) {
                        status.put(e.getKey(), "exists");
                    } else {
                        System.err.println("CreateTopics: cannot create " + e.getKey() + ": " + c);
                        failed = true;
                    }
                }
            }
            if (failed) System.exit(1);

            // Wait until the new partitions have leaders (metadata propagates from controller to broker).
            Map<String, TopicDescription> desc;
            while (true) {
                desc = admin.describeTopics(specs.keySet()).allTopicNames().get();
                boolean ready = desc.values().stream()
                        .allMatch(d -> d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty()));
                if (ready) break;
                if (System.nanoTime() > deadline) {
                    System.err.println("CreateTopics: timed out waiting for partition leaders");
                    System.exit(1);
                }
                Thread.sleep(100);
            }
            print(admin, specs.keySet(), status, specs);
        } catch (ExecutionException e) {
            System.err.println("CreateTopics: " + root(e) + " (bootstrap " + bootstrap + ")");
            System.exit(1);
        }
    }

    private static void print(Admin admin, Collection<String> topics, Map<String, String> status, Map<String, Spec> specs)
            throws Exception {
        Map<String, TopicDescription> desc = admin.describeTopics(topics).allTopicNames().get();
        List<ConfigResource> res = new ArrayList<>();
        for (String t : topics) res.add(new ConfigResource(ConfigResource.Type.TOPIC, t));
        Map<ConfigResource, Config> cfg = admin.describeConfigs(res).all().get();
        int width = topics.stream().mapToInt(String::length).max().orElse(10);
        for (String t : topics) {
            TopicDescription d = desc.get(t);
            ConfigEntry pol = cfg.get(new ConfigResource(ConfigResource.Type.TOPIC, t)).get(TopicConfig.CLEANUP_POLICY_CONFIG);
            String policy = pol == null ? "?" : pol.value();
            int rf = d.partitions().isEmpty() ? 0 : d.partitions().get(0).replicas().size();
            StringBuilder line = new StringBuilder(String.format("%-" + width + "s  partitions=%d  replication=%d  cleanup.policy=%s",
                    t, d.partitions().size(), rf, policy));
            if (status != null) line.append("  (").append(status.get(t)).append(')');
            System.out.println(line);
            if (specs != null && "exists".equals(status.get(t))) {
                // Existing topic: compare with the requested spec (Kafka cannot shrink partitions).
                Spec s = specs.get(t);
                if (d.partitions().size() != s.partitions())
                    System.err.println("CreateTopics: WARNING " + t + " already exists with " + d.partitions().size()
                            + " partitions, spec asked for " + s.partitions());
                if (s.policy() != null && !s.policy().equals(policy))
                    System.err.println("CreateTopics: WARNING " + t + " already exists with cleanup.policy=" + policy
                            + ", spec asked for " + s.policy());
            }
        }
    }
}
