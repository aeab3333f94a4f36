package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static strom.clients.Records.get;
import static strom.clients.Records.poll;
import static strom.clients.Records.sendAll;
import static strom.clients.Records.text;
import static strom.clients.Records.waitUntil;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Transaction version 2 (KIP-890 part 2) across a three-node Strom cluster: the Java
 * client's Produce v12 and TxnOffsetCommit v5 reach partition leaders on every node, most
 * of them away from the transaction coordinator, which add the partition with the
 * coordinator themselves (AddPartitionsToTxn v5 between brokers); every EndTxn bumps the
 * epoch. TransactionTest runs the same client against the single-node reference Kafka and
 * Strom; the reference here is what the scenario must produce.
 */
class TransactionClusterTest {
  private static List<StromProcess> nodes = List.of();
  private static Broker cluster;

  @BeforeAll
  static void start() throws Exception {
    String bin = System.getenv("STROM_BIN");
    Path repo = Path.of(System.getProperty("strom.repo", "../..")).toAbsolutePath().normalize();
    Path binary = bin == null || bin.isEmpty() ? repo.resolve("target/release/strom") : Path.of(bin);
    Path dir = Path.of(System.getProperty("strom.work", "target/brokers")).toAbsolutePath()
        .resolve("strom-cluster-" + System.nanoTime());
    nodes = StromProcess.startCluster(binary.toAbsolutePath(), dir, 3);
    cluster = new Broker("strom-cluster",
        String.join(",", nodes.stream().map(StromProcess::bootstrap).toList()));
  }

  @AfterAll
  static void stop() throws Exception {
    for (StromProcess n : nodes) {
      n.stop();
    }
  }

  @Test
  void transactions_across_three_leaders_commit_and_abort_with_an_epoch_per_transaction()
      throws Exception {
    int partitions = 6;
    String input = Broker.unique("txc.in");
    String output = Broker.unique("txc.out");
    String group = Broker.unique("txc.g");
    String id = Broker.unique("txc.tx");
    try (Admin admin = cluster.admin()) {
      get(admin.createTopics(List.of(
          new NewTopic(input, 1, (short) 3), new NewTopic(output, partitions, (short) 3))).all());
      // Leaders on every node, so most partitions are led away from the coordinator.
      waitUntil("the output's leaders are on all three nodes", () -> {
        TopicDescription d = get(admin.describeTopics(List.of(output)).allTopicNames()).get(output);
        Set<Integer> leaders = new HashSet<>();
        for (var p : d.partitions()) {
          if (p.leader() == null || p.leader().id() < 0) {
            return false;
          }
          leaders.add(p.leader().id());
        }
        return leaders.size() == 3;
      });
    }
    TopicPartition in = new TopicPartition(input, 0);
    try (KafkaProducer<byte[], byte[]> plain = cluster.producer()) {
      List<ProducerRecord<byte[], byte[]>> inputs = new ArrayList<>();
      for (int i = 0; i < 12; i++) {
        inputs.add(new ProducerRecord<>(input, 0, null, Records.bytes("in" + i)));
      }
      sendAll(plain, inputs);
    }

    Map<Integer, List<String>> committed = new HashMap<>();
    List<Integer> epochs = new ArrayList<>();
    long lastCommittedInput = -1;
    try (Admin admin = cluster.admin();
        KafkaProducer<byte[], byte[]> p =
            cluster.producer(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id)) {
      p.initTransactions();
      for (int t = 0; t < 12; t++) {
        boolean commit = t % 3 != 2;
        p.beginTransaction();
        List<ProducerRecord<byte[], byte[]>> batch = new ArrayList<>();
        for (int k = 0; k < partitions; k++) {
          batch.add(new ProducerRecord<>(output, k, null, Records.bytes("t" + t + "-" + k)));
        }
        sendAll(p, batch);
        p.sendOffsetsToTransaction(
            Map.of(in, new OffsetAndMetadata(t + 1)), new ConsumerGroupMetadata(group));
        if (commit) {
          p.commitTransaction();
          lastCommittedInput = t + 1;
          for (int k = 0; k < partitions; k++) {
            committed.computeIfAbsent(k, x -> new ArrayList<>()).add("t" + t + "-" + k);
          }
        } else {
          p.abortTransaction();
        }
        TransactionState done = commit ? TransactionState.COMPLETE_COMMIT : TransactionState.COMPLETE_ABORT;
        waitUntil("transaction " + t + " is " + done, () -> describe(admin, id).state() == done);
        epochs.add(describe(admin, id).producerEpoch());
      }
      // Transaction version 2: every EndTxn bumped the epoch by one.
      List<Integer> expected = IntStream.range(0, epochs.size())
          .mapToObj(i -> epochs.get(0) + i).toList();
      assertEquals(expected, epochs, "epochs after each transaction");

      long wantOffset = lastCommittedInput;
      waitUntil("the group's offset is the last committed transaction's", () -> {
        OffsetAndMetadata o = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).get(in);
        return o != null && o.offset() == wantOffset;
      });
    }

    int total = committed.values().stream().mapToInt(List::size).sum();
    try (KafkaConsumer<byte[], byte[]> c =
        cluster.consumer(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")) {
      List<TopicPartition> tps = IntStream.range(0, partitions)
          .mapToObj(k -> new TopicPartition(output, k)).toList();
      c.assign(tps);
      c.seekToBeginning(tps);
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, total);
      for (ConsumerRecord<byte[], byte[]> r : c.poll(java.time.Duration.ofMillis(500))) {
        got.add(r);
      }
      Map<Integer, List<String>> read = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> r : got) {
        read.computeIfAbsent(r.partition(), x -> new ArrayList<>()).add(text(r.value()));
      }
      assertEquals(committed, read, "read_committed sees exactly the committed transactions, in order");
    }
  }

  private static TransactionDescription describe(Admin admin, String id) throws Exception {
    return get(admin.describeTransactions(List.of(id)).description(id));
  }
}
