//! One broker under test, by name ("kafka" or "strom"), and the clients made for it.
package strom.clients;

import java.time.Duration;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A running broker: its name shows in every test's display name, so a failure says which
 * broker it was on. Clients are made with short timeouts: both brokers are local, and a
 * hang should fail a test in seconds, not minutes.
 */
public record Broker(String name, String bootstrap) {
  /** How long any single client call may take before the test fails. */
  public static final Duration TIMEOUT = Duration.ofSeconds(30);

  @Override
  public String toString() {
    return name;
  }

  public boolean isStrom() {
    return name.equals("strom");
  }

  /** A name unique to this run, so that tests never share a topic or group. */
  public static String unique(String what) {
    return "java." + what + "." + UUID.randomUUID().toString().substring(0, 8);
  }

  public Properties common() {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    return p;
  }

  public Admin admin() {
    return Admin.create(common());
  }

  /** A producer of byte arrays with linger 0; `extra` holds key, value pairs of settings. */
  public KafkaProducer<byte[], byte[]> producer(String... extra) {
    Properties p = common();
    p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    put(p, extra);
    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /** A consumer of byte arrays, no auto commit, from the earliest offset unless overridden. */
  public KafkaConsumer<byte[], byte[]> consumer(String... extra) {
    Properties p = common();
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    put(p, extra);
    if ("consumer".equalsIgnoreCase(p.getProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG))) {
      // KIP-848: the broker decides these; the client refuses them.
      p.remove(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG);
      p.remove(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG);
    }
    return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  private static void put(Properties p, String... extra) {
    if (extra.length % 2 != 0) {
      throw new IllegalArgumentException("settings come in key, value pairs");
    }
    for (int i = 0; i < extra.length; i += 2) {
      p.put(extra[i], extra[i + 1]);
    }
  }
}
