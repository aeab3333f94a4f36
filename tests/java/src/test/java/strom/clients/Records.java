//! Producing and reading back records, the steps most tests share.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;

/** Static helpers; every wait is bounded by {@link Broker#TIMEOUT}. */
final class Records {
  private Records() {}

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  /** The value of a future, within the timeout; a failure is rethrown as its cause. */
  static <T> T get(Future<T> f) throws Exception {
    try {
      return f.get(Broker.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception cause) {
        throw cause;
      }
      throw e;
    }
  }

  static <T> T get(KafkaFuture<T> f) throws Exception {
    return get((Future<T>) f);
  }

  static void createTopic(Admin admin, String topic, int partitions) throws Exception {
    get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all());
  }

  /** Sends every record, flushes, and returns the metadata of each in order. */
  static List<RecordMetadata> sendAll(
      KafkaProducer<byte[], byte[]> producer, List<ProducerRecord<byte[], byte[]>> records)
      throws Exception {
    List<Future<RecordMetadata>> futures = new ArrayList<>();
    for (ProducerRecord<byte[], byte[]> r : records) {
      futures.add(producer.send(r));
    }
    producer.flush();
    List<RecordMetadata> out = new ArrayList<>();
    for (Future<RecordMetadata> f : futures) {
      out.add(get(f));
    }
    return out;
  }

  /**
   * Reads `tp` from `from` with an assigned consumer until `count` records came or the
   * timeout passed; returns what came (more than `count` if the log had more).
   */
  static List<ConsumerRecord<byte[], byte[]>> read(
      Broker broker, TopicPartition tp, long from, int count) {
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      c.assign(List.of(tp));
      c.seek(tp, from);
      return poll(c, count);
    }
  }

  /** Polls until `count` records came or the timeout passed. */
  static List<ConsumerRecord<byte[], byte[]>> poll(KafkaConsumer<byte[], byte[]> c, int count) {
    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
    long deadline = System.nanoTime() + Broker.TIMEOUT.toNanos();
    while (got.size() < count && System.nanoTime() < deadline) {
      for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
        got.add(r);
      }
    }
    return got;
  }

  /** Offsets `from`, `from`+1, ... in order: nothing lost, nothing repeated. */
  static void assertDense(Collection<Long> offsets, long from) {
    List<Long> want = new ArrayList<>();
    for (int i = 0; i < offsets.size(); i++) {
      want.add(from + i);
    }
    assertEquals(want, new ArrayList<>(offsets), "offsets are dense from " + from);
  }

  /** Waits for `condition`, polling, within the timeout. */
  static void waitUntil(String what, Check condition) throws Exception {
    long deadline = System.nanoTime() + Broker.TIMEOUT.toNanos();
    while (!condition.holds()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting until " + what);
      }
      Thread.sleep(100);
    }
  }

  interface Check {
    boolean holds() throws Exception;
  }

  /** The end offsets of `tps`, read with a fresh consumer. */
  static Map<TopicPartition, Long> endOffsets(Broker broker, Collection<TopicPartition> tps) {
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      return c.endOffsets(tps, Broker.TIMEOUT);
    }
  }

}
