//! Where the default partitioner puts a key: murmur2 over the topic's partition count, the same on both brokers.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static strom.clients.Records.bytes;
import static strom.clients.Records.sendAll;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

@ExtendWith(Brokers.class)
class PartitionerTest {
  static Stream<Broker> brokers() {
    return Brokers.all();
  }

  /**
   * Produces 100 keyed records to a topic that does not exist yet (auto-created with the
   * default 4 partitions on both brokers) and returns key → partition.
   */
  static Map<String, Integer> placement(Broker broker) throws Exception {
    String topic = Broker.unique("placement");
    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      records.add(new ProducerRecord<>(topic, bytes("user-" + i), bytes("v" + i)));
    }
    List<RecordMetadata> meta;
    try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
      meta = sendAll(p, records);
      assertEquals(4, p.partitionsFor(topic).size(), "an auto-created topic's partitions");
    }
    Map<String, Integer> out = new TreeMap<>();
    for (int i = 0; i < records.size(); i++) {
      out.put(Records.text(records.get(i).key()), meta.get(i).partition());
    }
    return out;
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void a_key_goes_to_murmur2_of_the_key_modulo_the_partitions(Broker broker) throws Exception {
    Map<String, Integer> got = placement(broker);
    Map<String, Integer> want = new TreeMap<>();
    for (String key : got.keySet()) {
      want.put(key, Utils.toPositive(Utils.murmur2(bytes(key))) % 4);
    }
    assertEquals(want, got);
  }

  @Test
  void both_brokers_place_every_key_alike() throws Exception {
    List<Broker> both = Brokers.both();
    assertEquals(placement(both.get(0)), placement(both.get(1)));
  }
}
