//! Producing with every acks setting, idempotence and every compression, then reading back exactly what was sent.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static strom.clients.Records.assertDense;
import static strom.clients.Records.bytes;
import static strom.clients.Records.createTopic;
import static strom.clients.Records.read;
import static strom.clients.Records.sendAll;
import static strom.clients.Records.text;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

@ExtendWith(Brokers.class)
class ProduceTest {
  static Stream<Arguments> acks() {
    return Brokers.cross("0", "1", "all");
  }

  static Stream<Arguments> compressions() {
    return Brokers.cross("none", "gzip", "snappy", "lz4", "zstd");
  }

  static Stream<Broker> brokers() {
    return Brokers.all();
  }

  /** `n` records for partition 0 with keys, values (some null), headers and timestamps. */
  static List<ProducerRecord<byte[], byte[]>> records(String topic, int n) {
    List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>();
    long t0 = System.currentTimeMillis();
    for (int i = 0; i < n; i++) {
      RecordHeaders headers = new RecordHeaders();
      headers.add(new RecordHeader("i", bytes(Integer.toString(i))));
      byte[] value = i % 17 == 5 ? null : bytes("value " + i + " " + "x".repeat(i % 50));
      out.add(new ProducerRecord<>(topic, 0, t0 + i, bytes("key" + (i % 7)), value, headers));
    }
    return out;
  }

  /** Reads partition 0 from offset 0 and checks it holds exactly `sent`, in order, at dense offsets. */
  static void assertReadBack(Broker broker, String topic, List<ProducerRecord<byte[], byte[]>> sent) {
    List<ConsumerRecord<byte[], byte[]>> got = read(broker, new TopicPartition(topic, 0), 0, sent.size());
    assertEquals(sent.size(), got.size(), "records read back");
    assertDense(got.stream().map(ConsumerRecord::offset).toList(), 0);
    for (int i = 0; i < sent.size(); i++) {
      ProducerRecord<byte[], byte[]> s = sent.get(i);
      ConsumerRecord<byte[], byte[]> g = got.get(i);
      assertEquals(text(s.key()), text(g.key()), "key of record " + i);
      assertEquals(text(s.value()), text(g.value()), "value of record " + i);
      assertEquals((long) s.timestamp(), g.timestamp(), "timestamp of record " + i);
      assertArrayEquals(s.headers().toArray(), g.headers().toArray(), "headers of record " + i);
    }
  }

  @ParameterizedTest(name = "[{0}] acks={1}")
  @MethodSource("acks")
  void produces_with_acks_and_reads_back_what_was_sent(Broker broker, String acks) throws Exception {
    String topic = Broker.unique("acks" + acks);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 2);
    }
    List<ProducerRecord<byte[], byte[]>> sent = records(topic, 60);
    List<RecordMetadata> meta;
    try (KafkaProducer<byte[], byte[]> p =
        broker.producer(ProducerConfig.ACKS_CONFIG, acks, ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false")) {
      meta = sendAll(p, sent);
    }
    if (acks.equals("0")) {
      // No answer, so the client does not know the offsets.
      assertEquals(List.of(-1L), meta.stream().map(RecordMetadata::offset).distinct().toList());
    } else {
      assertDense(meta.stream().map(RecordMetadata::offset).toList(), 0);
    }
    assertReadBack(broker, topic, sent);
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void an_idempotent_producer_writes_each_record_once(Broker broker) throws Exception {
    String topic = Broker.unique("idempotent");
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 1);
    }
    List<ProducerRecord<byte[], byte[]>> sent = records(topic, 300);
    try (KafkaProducer<byte[], byte[]> p =
        broker.producer(
            ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true",
            ProducerConfig.ACKS_CONFIG, "all",
            ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5",
            ProducerConfig.BATCH_SIZE_CONFIG, "2048")) {
      List<RecordMetadata> meta = sendAll(p, sent.subList(0, 150));
      assertDense(meta.stream().map(RecordMetadata::offset).toList(), 0);
      meta = sendAll(p, sent.subList(150, 300));
      assertDense(meta.stream().map(RecordMetadata::offset).toList(), 150);
    }
    assertReadBack(broker, topic, sent);
  }

  @ParameterizedTest(name = "[{0}] compression={1}")
  @MethodSource("compressions")
  void compressed_batches_read_back_exactly(Broker broker, String compression) throws Exception {
    String topic = Broker.unique("compression-" + compression);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 1);
    }
    List<ProducerRecord<byte[], byte[]>> sent = records(topic, 200);
    try (KafkaProducer<byte[], byte[]> p =
        broker.producer(
            ProducerConfig.COMPRESSION_TYPE_CONFIG, compression,
            // Many records to a batch, so that compression has something to do.
            ProducerConfig.LINGER_MS_CONFIG, "50",
            ProducerConfig.BATCH_SIZE_CONFIG, "65536")) {
      List<RecordMetadata> meta = sendAll(p, sent);
      assertDense(meta.stream().map(RecordMetadata::offset).toList(), 0);
    }
    assertReadBack(broker, topic, sent);
  }
}
