//! Consuming: assign and seek, seeks to either end, offsetsForTimes, groups with commits and a resuming consumer.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static strom.clients.Records.assertDense;
import static strom.clients.Records.bytes;
import static strom.clients.Records.createTopic;
import static strom.clients.Records.poll;
import static strom.clients.Records.sendAll;
import static strom.clients.Records.text;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

@ExtendWith(Brokers.class)
class ConsumeTest {
  static Stream<Broker> brokers() {
    return Brokers.all();
  }

  /** A new topic of `partitions` with `perPartition` records in each, value "p<partition>-<i>". */
  static String topicWith(Broker broker, String name, int partitions, int perPartition, long t0)
      throws Exception {
    String topic = Broker.unique(name);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, partitions);
    }
    produce(broker, topic, partitions, 0, perPartition, t0);
    return topic;
  }

  /** Records `from`..`to`-1 into every partition, record i stamped t0 + 1000 * i. */
  static void produce(Broker broker, String topic, int partitions, int from, int to, long t0)
      throws Exception {
    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
    for (int i = from; i < to; i++) {
      for (int p = 0; p < partitions; p++) {
        records.add(new ProducerRecord<>(topic, p, t0 + 1000L * i, null, bytes("p" + p + "-" + i)));
      }
    }
    try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
      sendAll(p, records);
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void assign_seek_and_seeks_to_either_end(Broker broker) throws Exception {
    String topic = topicWith(broker, "seek", 1, 20, System.currentTimeMillis());
    TopicPartition tp = new TopicPartition(topic, 0);
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      c.assign(List.of(tp));
      assertEquals(Set.of(tp), c.assignment());
      assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp), Broker.TIMEOUT));
      assertEquals(Map.of(tp, 20L), c.endOffsets(List.of(tp), Broker.TIMEOUT));

      c.seek(tp, 12);
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, 8);
      assertDense(got.stream().map(ConsumerRecord::offset).toList(), 12);
      assertEquals("p0-12", text(got.get(0).value()));
      assertEquals(20L, c.position(tp, Broker.TIMEOUT));

      c.seekToBeginning(List.of(tp));
      assertEquals(0L, c.position(tp, Broker.TIMEOUT));
      got = poll(c, 20);
      assertDense(got.stream().map(ConsumerRecord::offset).toList(), 0);
      assertEquals("p0-19", text(got.get(19).value()));

      c.seekToEnd(List.of(tp));
      assertEquals(20L, c.position(tp, Broker.TIMEOUT));
      assertTrue(c.poll(Duration.ofMillis(300)).isEmpty(), "nothing after the end");
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void offsets_for_times_finds_the_first_record_at_or_after_a_time(Broker broker) throws Exception {
    long t0 = System.currentTimeMillis() - 60_000;
    String topic = topicWith(broker, "times", 2, 10, t0);
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      Map<TopicPartition, OffsetAndTimestamp> found =
          c.offsetsForTimes(Map.of(p0, t0 + 3500, p1, t0), Broker.TIMEOUT);
      assertEquals(List.of(4L, t0 + 4000), found(found.get(p0)));
      assertEquals(List.of(0L, t0), found(found.get(p1)));

      found = c.offsetsForTimes(Map.of(p0, t0 + 9000, p1, t0 + 9001), Broker.TIMEOUT);
      assertEquals(List.of(9L, t0 + 9000), found(found.get(p0)));
      assertNull(found.get(p1), "no record at or after the last one's time");
    }
  }

  /** Offset and timestamp; the leader epoch is each broker's own count (Raft term on Strom). */
  static List<Long> found(OffsetAndTimestamp o) {
    return o == null ? null : List.of(o.offset(), o.timestamp());
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void a_classic_group_commits_and_a_restarted_member_resumes(Broker broker) throws Exception {
    String topic = topicWith(broker, "group", 4, 10, System.currentTimeMillis());
    String group = Broker.unique("g");
    List<TopicPartition> tps =
        IntStream.range(0, 4).mapToObj(p -> new TopicPartition(topic, p)).toList();
    String[] settings = {
      ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic"
    };
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer(settings)) {
      c.subscribe(List.of(topic));
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, 40);
      assertEquals(40, got.size(), "every record of the 4 partitions");
      assertEquals(Set.copyOf(tps), c.assignment());
      for (TopicPartition tp : tps) {
        List<Long> offsets =
            got.stream().filter(r -> r.partition() == tp.partition()).map(ConsumerRecord::offset).toList();
        assertDense(offsets, 0);
      }
      c.commitSync(Broker.TIMEOUT);
      Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.copyOf(tps), Broker.TIMEOUT);
      for (TopicPartition tp : tps) {
        assertEquals(10L, committed.get(tp).offset(), "committed offset of " + tp);
      }
    }

    produce(broker, topic, 4, 10, 13, System.currentTimeMillis());
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer(settings)) {
      c.subscribe(List.of(topic));
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, 12);
      got.addAll(poll(c, 0)); // nothing more may come
      Map<Integer, List<Long>> byPartition = new TreeMap<>();
      for (ConsumerRecord<byte[], byte[]> r : got) {
        byPartition.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
      }
      Map<Integer, List<Long>> want = new TreeMap<>();
      for (int p = 0; p < 4; p++) {
        want.put(p, List.of(10L, 11L, 12L));
      }
      assertEquals(want, byPartition, "the restarted member resumes at the committed offsets");
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void explicit_commits_with_metadata_are_where_an_assigned_consumer_starts(Broker broker)
      throws Exception {
    String topic = topicWith(broker, "commit", 2, 10, System.currentTimeMillis());
    String group = Broker.unique("g");
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer(ConsumerConfig.GROUP_ID_CONFIG, group)) {
      c.assign(List.of(p0, p1));
      c.commitSync(Map.of(p0, new OffsetAndMetadata(7, "seven"), p1, new OffsetAndMetadata(3)), Broker.TIMEOUT);
      Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(p0, p1), Broker.TIMEOUT);
      assertEquals(new OffsetAndMetadata(7, "seven"), committed.get(p0));
      assertEquals(new OffsetAndMetadata(3, ""), committed.get(p1));
    }
    try (KafkaConsumer<byte[], byte[]> c =
        broker.consumer(ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none")) {
      c.assign(List.of(p0, p1));
      assertEquals(7L, c.position(p0, Broker.TIMEOUT));
      assertEquals(3L, c.position(p1, Broker.TIMEOUT));
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, 10);
      Map<Integer, List<String>> values = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> r : got) {
        values.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(text(r.value()));
      }
      assertEquals(List.of("p0-7", "p0-8", "p0-9"), values.get(0));
      assertEquals(
          IntStream.range(3, 10).mapToObj(i -> "p1-" + i).collect(Collectors.toList()), values.get(1));
    }
  }

  /**
   * KIP-848's `consumer` group protocol (ConsumerGroupHeartbeat). Known difference: Strom
   * does not offer the API yet (docs/kafka-ref.md, "Fail with UnsupportedVersionException"),
   * so on Strom this asserts the clear failure the client reports instead of a hang.
   */
  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void the_consumer_group_protocol_works_on_kafka_and_strom_refuses_it_clearly(Broker broker)
      throws Exception {
    String topic = topicWith(broker, "kip848", 2, 5, System.currentTimeMillis());
    try (KafkaConsumer<byte[], byte[]> c =
        broker.consumer(
            ConsumerConfig.GROUP_ID_CONFIG, Broker.unique("g"),
            ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer")) {
      c.subscribe(List.of(topic));
      if (!broker.isStrom()) {
        assertEquals(10, poll(c, 10).size());
        c.commitSync(Broker.TIMEOUT);
        return;
      }
      KafkaException e = assertThrows(KafkaException.class, () -> poll(c, 10));
      assertTrue(e instanceof UnsupportedVersionException, "got " + e);
      assertTrue(
          e.getMessage().contains("does not support the new CONSUMER group protocol"),
          e.getMessage());
    }
  }
}
