//! Transactions: the transactional producer, read_committed consumers, sendOffsetsToTransaction, fencing, and the Admin calls on transactions.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static strom.clients.Records.bytes;
import static strom.clients.Records.createTopic;
import static strom.clients.Records.get;
import static strom.clients.Records.poll;
import static strom.clients.Records.sendAll;
import static strom.clients.Records.text;
import static strom.clients.Records.waitUntil;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every case on Kafka, then on Strom, asserted alike. Both finalize `transaction.version` 2
 * (KIP-890 part 2: an epoch bump at every EndTxn, partitions added by the Produce request
 * itself), so the client runs transaction version 2 on both (checked by
 * {@link #the_client_runs_transaction_version_2_on_both}).
 */
@ExtendWith(Brokers.class)
class TransactionTest {
  static Stream<Broker> brokers() {
    return Brokers.all();
  }

  static KafkaProducer<byte[], byte[]> transactional(Broker broker, String transactionalId) {
    return broker.producer(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
  }

  static KafkaConsumer<byte[], byte[]> readCommitted(Broker broker, String... extra) {
    List<String> settings = new ArrayList<>(List.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
    settings.addAll(List.of(extra));
    return broker.consumer(settings.toArray(String[]::new));
  }

  static TransactionDescription describe(Admin admin, String id) throws Exception {
    return get(admin.describeTransactions(List.of(id)).description(id));
  }

  static String newTopic(Broker broker, String what, int partitions) throws Exception {
    String topic = Broker.unique(what);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, partitions);
    }
    return topic;
  }

  static ProducerRecord<byte[], byte[]> record(TopicPartition tp, String value) {
    return new ProducerRecord<>(tp.topic(), tp.partition(), null, bytes(value));
  }

  static List<ProducerRecord<byte[], byte[]>> records(TopicPartition tp, String prefix, int n) {
    List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(record(tp, prefix + i));
    }
    return out;
  }

  /** Reads `tps` from their beginning until `count` records came; then polls once more for strays. */
  static List<ConsumerRecord<byte[], byte[]>> readAll(
      KafkaConsumer<byte[], byte[]> c, Collection<TopicPartition> tps, int count) {
    c.assign(tps);
    c.seekToBeginning(tps);
    List<ConsumerRecord<byte[], byte[]>> got = poll(c, count);
    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
      got.add(r);
    }
    return got;
  }

  /** "offset=value" of each record of one partition, in order. */
  static List<String> offsetsAndValues(List<ConsumerRecord<byte[], byte[]>> got, int partition) {
    return got.stream()
        .filter(r -> r.partition() == partition)
        .map(r -> r.offset() + "=" + text(r.value()))
        .toList();
  }

  /** Waits until the consumer's position in `tp` is `want` (it moves past control batches as it polls). */
  static void awaitPosition(KafkaConsumer<byte[], byte[]> c, TopicPartition tp, long want) throws Exception {
    waitUntil(
        "the position of " + tp + " is " + want,
        () -> {
          c.poll(Duration.ofMillis(100));
          return c.position(tp, Broker.TIMEOUT) == want;
        });
  }

  static long latest(Admin admin, TopicPartition tp, IsolationLevel level) throws Exception {
    return get(admin.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(level)).partitionResult(tp))
        .offset();
  }

  /** True if `e` or one of its causes is a ProducerFencedException. */
  static boolean fenced(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof ProducerFencedException) {
        return true;
      }
    }
    return false;
  }

  interface Action {
    void run() throws Exception;
  }

  /** What `action` threw, or null. */
  static Throwable attempt(Action action) {
    try {
      action.run();
      return null;
    } catch (Exception e) {
      return e;
    }
  }

  static Map<TopicPartition, OffsetAndMetadata> stableOffsets(Admin admin, String group) throws Exception {
    return get(
        admin
            .listConsumerGroupOffsets(group, new ListConsumerGroupOffsetsOptions().requireStable(true))
            .partitionsToOffsetAndMetadata());
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void a_committed_transaction_is_visible_to_read_committed(Broker broker) throws Exception {
    String topic = newTopic(broker, "txcommit", 2);
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (KafkaProducer<byte[], byte[]> p = transactional(broker, Broker.unique("tx"))) {
      p.initTransactions();
      p.beginTransaction();
      List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>(records(p0, "a", 5));
      out.addAll(records(p1, "b", 5));
      sendAll(p, out);
      p.commitTransaction();
    }
    try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
      List<ConsumerRecord<byte[], byte[]>> got = readAll(c, List.of(p0, p1), 10);
      assertEquals(List.of("0=a0", "1=a1", "2=a2", "3=a3", "4=a4"), offsetsAndValues(got, 0));
      assertEquals(List.of("0=b0", "1=b1", "2=b2", "3=b3", "4=b4"), offsetsAndValues(got, 1));
      // The COMMIT marker takes offset 5; the consumer steps over it.
      awaitPosition(c, p0, 6);
      awaitPosition(c, p1, 6);
      assertEquals(Map.of(p0, 6L, p1, 6L), c.endOffsets(List.of(p0, p1), Broker.TIMEOUT));
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void an_aborted_transaction_is_invisible_to_read_committed_and_visible_to_read_uncommitted(Broker broker)
      throws Exception {
    String topic = newTopic(broker, "txabort", 1);
    TopicPartition tp = new TopicPartition(topic, 0);
    try (KafkaProducer<byte[], byte[]> p = transactional(broker, Broker.unique("tx"))) {
      p.initTransactions();
      p.beginTransaction();
      sendAll(p, records(tp, "aborted", 3));
      p.abortTransaction();
      p.beginTransaction();
      sendAll(p, records(tp, "committed", 2));
      p.commitTransaction();
    }
    // aborted0-2 at 0-2, ABORT marker at 3, committed0-1 at 4-5, COMMIT marker at 6.
    try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
      List<ConsumerRecord<byte[], byte[]>> got = readAll(c, List.of(tp), 2);
      assertEquals(List.of("4=committed0", "5=committed1"), offsetsAndValues(got, 0));
      awaitPosition(c, tp, 7);
    }
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      List<ConsumerRecord<byte[], byte[]>> got = readAll(c, List.of(tp), 5);
      assertEquals(
          List.of("0=aborted0", "1=aborted1", "2=aborted2", "4=committed0", "5=committed1"),
          offsetsAndValues(got, 0));
      awaitPosition(c, tp, 7);
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void send_offsets_to_transaction_commits_the_groups_offsets_only_on_commit(Broker broker) throws Exception {
    String in = newTopic(broker, "txin", 1);
    String outTopic = newTopic(broker, "txout", 1);
    TopicPartition in0 = new TopicPartition(in, 0);
    TopicPartition out0 = new TopicPartition(outTopic, 0);
    try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
      sendAll(p, records(in0, "in", 10));
    }
    String group = Broker.unique("g");
    try (Admin admin = broker.admin();
        KafkaConsumer<byte[], byte[]> c =
            readCommitted(
                broker,
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        KafkaProducer<byte[], byte[]> p = transactional(broker, Broker.unique("tx"))) {
      c.subscribe(List.of(in));
      List<ConsumerRecord<byte[], byte[]>> input = poll(c, 10);
      assertEquals(10, input.size(), "the whole input");
      Map<TopicPartition, OffsetAndMetadata> next = Map.of(in0, new OffsetAndMetadata(10));
      p.initTransactions();

      // First attempt: output and offsets in one transaction, aborted.
      p.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : input) {
        p.send(record(out0, "out-" + text(r.value())));
      }
      p.sendOffsetsToTransaction(next, c.groupMetadata());
      // While the transaction is open its offset commit is pending: OffsetFetch shows no
      // offset, plain or with requireStable (KIP-447: UNSTABLE_OFFSET_COMMIT for the
      // partition, which the Admin client leaves out of its answer).
      assertNull(
          get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).get(in0),
          "a pending offset is not shown");
      assertNull(stableOffsets(admin, group).get(in0), "a pending offset is not stable");
      p.abortTransaction();
      // requireStable: the broker answers only once no transactional commit is pending.
      assertNull(stableOffsets(admin, group).get(in0), "no offset after the abort");

      // Second attempt, committed: the offsets come with the output.
      p.beginTransaction();
      for (ConsumerRecord<byte[], byte[]> r : input) {
        p.send(record(out0, "out-" + text(r.value())));
      }
      p.sendOffsetsToTransaction(next, c.groupMetadata());
      p.commitTransaction();
      waitUntil(
          "the group's offset is 10",
          () -> {
            OffsetAndMetadata o = stableOffsets(admin, group).get(in0);
            return o != null && o.offset() == 10;
          });
      assertEquals(10L, c.committed(Set.of(in0), Broker.TIMEOUT).get(in0).offset());
    }
    List<String> want = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      want.add((11 + i) + "=out-in" + i); // the aborted 10 at 0-9, ABORT at 10
    }
    try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
      assertEquals(want, offsetsAndValues(readAll(c, List.of(out0), 10), 0));
    }
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      assertEquals(20, readAll(c, List.of(out0), 20).size(), "read_uncommitted sees both attempts");
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void a_second_producer_with_the_same_transactional_id_fences_the_first(Broker broker) throws Exception {
    String topic = newTopic(broker, "txfence", 2);
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    String id = Broker.unique("tx");
    try (KafkaProducer<byte[], byte[]> zombie = transactional(broker, id)) {
      zombie.initTransactions();
      zombie.beginTransaction();
      sendAll(zombie, List.of(record(p0, "zombie-0")));
      try (KafkaProducer<byte[], byte[]> fresh = transactional(broker, id)) {
        // Fences the zombie and aborts its open transaction.
        fresh.initTransactions();

        // The zombie's next send, to a partition not yet in its transaction, its commit, and
        // its abort: the abort goes to the coordinator, which says PRODUCER_FENCED on both.
        Throwable onSend = attempt(() -> get(zombie.send(record(p1, "zombie-1"))));
        Throwable onCommit = attempt(zombie::commitTransaction);
        Throwable onAbort = attempt(zombie::abortTransaction);
        assertTrue(fenced(onAbort), "abort after the fence: ProducerFencedException, got " + onAbort);
        // Transaction version 2: the Produce request adds the partition itself and the
        // leader answers INVALID_PRODUCER_EPOCH, an abortable error that commitTransaction
        // rethrows; the fence shows at the abort.
        assertTrue(onSend instanceof InvalidProducerEpochException, "send after the fence: " + onSend);
        assertTrue(onCommit instanceof InvalidProducerEpochException, "commit after the fence: " + onCommit);

        fresh.beginTransaction();
        sendAll(fresh, List.of(record(p0, "fresh-0"), record(p1, "fresh-1")));
        fresh.commitTransaction();
      }
    } catch (ProducerFencedException e) {
      // close() of a fenced producer may say so again; the assertions above are what counts.
    }
    try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
      List<ConsumerRecord<byte[], byte[]>> got = readAll(c, List.of(p0, p1), 2);
      assertEquals(List.of("fresh-0", "fresh-1"), got.stream().map(r -> text(r.value())).sorted().toList());
    }
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      List<ConsumerRecord<byte[], byte[]>> got = readAll(c, List.of(p0, p1), 3);
      assertTrue(
          got.stream().anyMatch(r -> text(r.value()).equals("zombie-0")),
          "read_uncommitted sees the zombie's aborted record");
      assertFalse(got.stream().anyMatch(r -> text(r.value()).equals("zombie-1")), "the fenced send");
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void read_committed_stops_at_an_open_transaction_until_it_commits(Broker broker) throws Exception {
    String topic = newTopic(broker, "txlso", 1);
    TopicPartition tp = new TopicPartition(topic, 0);
    try (KafkaProducer<byte[], byte[]> plain = broker.producer()) {
      sendAll(plain, records(tp, "before", 2)); // offsets 0, 1
    }
    try (KafkaProducer<byte[], byte[]> p = transactional(broker, Broker.unique("tx"));
        KafkaConsumer<byte[], byte[]> c = readCommitted(broker);
        KafkaConsumer<byte[], byte[]> dirty = broker.consumer()) {
      p.initTransactions();
      p.beginTransaction();
      sendAll(p, records(tp, "open", 3)); // offsets 2-4, not committed
      try (KafkaProducer<byte[], byte[]> plain = broker.producer()) {
        sendAll(plain, records(tp, "after", 1)); // offset 5, behind the open transaction
      }

      c.assign(List.of(tp));
      c.seekToBeginning(List.of(tp));
      List<ConsumerRecord<byte[], byte[]>> got = poll(c, 2);
      for (int i = 0; i < 5; i++) {
        got.addAll(c.poll(Duration.ofMillis(200)).records(tp));
      }
      assertEquals(List.of("0=before0", "1=before1"), offsetsAndValues(got, 0));
      assertEquals(2L, c.position(tp, Broker.TIMEOUT), "the position stays at the LSO");
      assertEquals(Map.of(tp, 2L), c.endOffsets(List.of(tp), Broker.TIMEOUT), "read_committed end = LSO");

      dirty.assign(List.of(tp));
      assertEquals(Map.of(tp, 6L), dirty.endOffsets(List.of(tp), Broker.TIMEOUT), "read_uncommitted end = HW");
      dirty.seekToBeginning(List.of(tp));
      assertEquals(6, poll(dirty, 6).size(), "read_uncommitted reads the open transaction");

      p.commitTransaction(); // COMMIT marker at 6
      got = poll(c, 4);
      assertEquals(List.of("2=open0", "3=open1", "4=open2", "5=after0"), offsetsAndValues(got, 0));
      awaitPosition(c, tp, 7);
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void admin_lists_describes_and_aborts_an_open_transaction(Broker broker) throws Exception {
    String topic = newTopic(broker, "txadmin", 1);
    TopicPartition tp = new TopicPartition(topic, 0);
    String id = Broker.unique("tx");
    try (KafkaProducer<byte[], byte[]> plain = broker.producer()) {
      sendAll(plain, records(tp, "plain", 2)); // offsets 0, 1
    }
    try (Admin admin = broker.admin();
        KafkaProducer<byte[], byte[]> p = transactional(broker, id)) {
      p.initTransactions();
      p.beginTransaction();
      sendAll(p, records(tp, "open", 3)); // offsets 2-4, left open

      // ListOffsets: read_committed stops at the LSO, read_uncommitted at the high watermark.
      assertEquals(2L, latest(admin, tp, IsolationLevel.READ_COMMITTED));
      assertEquals(5L, latest(admin, tp, IsolationLevel.READ_UNCOMMITTED));

      // DescribeProducers: the idempotent plain producer and ours, whose transaction starts at 2.
      List<ProducerState> producers = get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
      List<ProducerState> open =
          producers.stream().filter(s -> s.currentTransactionStartOffset().isPresent()).toList();
      assertEquals(1, open.size(), "one producer with an open transaction: " + producers);
      ProducerState txn = open.get(0);
      assertEquals(2L, txn.currentTransactionStartOffset().getAsLong());
      assertEquals(2, txn.lastSequence(), "three records, sequences 0-2");
      assertTrue(
          producers.stream().allMatch(s -> s.coordinatorEpoch().isEmpty()),
          "no coordinator epoch before any marker: " + producers);

      // ListTransactions and DescribeTransactions name the same producer.
      Collection<TransactionListing> listed =
          get(admin.listTransactions(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING))).all());
      TransactionListing mine =
          listed.stream().filter(l -> l.transactionalId().equals(id)).findFirst().orElse(null);
      assertNotNull(mine, id + " among the ongoing transactions " + listed);
      assertEquals(txn.producerId(), mine.producerId());
      assertEquals(TransactionState.ONGOING, mine.state());
      Collection<TransactionListing> all = get(admin.listTransactions().all());
      assertTrue(all.stream().anyMatch(l -> l.transactionalId().equals(id)), "unfiltered list: " + all);

      TransactionDescription d = get(admin.describeTransactions(List.of(id)).description(id));
      assertEquals(TransactionState.ONGOING, d.state());
      assertEquals(txn.producerId(), d.producerId());
      assertEquals(txn.producerEpoch(), d.producerEpoch());
      assertEquals(Set.of(tp), d.topicPartitions());
      assertEquals(60_000L, d.transactionTimeoutMs(), "the producer's default transaction.timeout.ms");
      assertTrue(d.transactionStartTimeMs().isPresent(), "a start time");

      // abortTransaction, as kafka-transactions.sh abort does: markers from DescribeProducers' state.
      get(
          admin
              .abortTransaction(
                  new AbortTransactionSpec(
                      tp, txn.producerId(), (short) txn.producerEpoch(), txn.coordinatorEpoch().orElse(0)))
              .all());
      // The ABORT marker at 5 ends the transaction on the partition: the LSO moves past it.
      waitUntil("the LSO passes the ABORT marker", () -> latest(admin, tp, IsolationLevel.READ_COMMITTED) == 6L);
      assertEquals(6L, latest(admin, tp, IsolationLevel.READ_UNCOMMITTED));
      List<ProducerState> after = get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
      assertTrue(
          after.stream().noneMatch(s -> s.currentTransactionStartOffset().isPresent()),
          "no open transaction after the abort: " + after);
      ProducerState aborted =
          after.stream().filter(s -> s.producerId() == txn.producerId()).findFirst().orElseThrow();
      assertEquals(OptionalInt.of(0), aborted.coordinatorEpoch(), "the marker's coordinator epoch");
      assertTrue(
          aborted.lastTimestamp() > txn.lastTimestamp(),
          "the marker's timestamp " + aborted.lastTimestamp() + " after " + txn.lastTimestamp());
      try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
        assertEquals(List.of("0=plain0", "1=plain1"), offsetsAndValues(readAll(c, List.of(tp), 2), 0));
      }
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void the_client_runs_transaction_version_2_on_both(Broker broker) throws Exception {
    String topic = newTopic(broker, "txversion", 1);
    TopicPartition tp = new TopicPartition(topic, 0);
    String id = Broker.unique("tx");
    try (Admin admin = broker.admin();
        KafkaProducer<byte[], byte[]> p = transactional(broker, id)) {
      Map<String, FinalizedVersionRange> finalized =
          get(admin.describeFeatures().featureMetadata()).finalizedFeatures();
      p.initTransactions();
      List<Integer> epochs = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        p.beginTransaction();
        sendAll(p, List.of(record(tp, "v" + i)));
        p.commitTransaction();
        // EndTxn is answered once PrepareCommit is written; the markers follow.
        waitUntil(
            "the transaction is CompleteCommit",
            () -> describe(admin, id).state() == TransactionState.COMPLETE_COMMIT);
        epochs.add(describe(admin, id).producerEpoch());
      }
      int e = epochs.get(0);
      // Transaction version 2: EndTxn bumps the epoch every time.
      assertNotNull(finalized.get("transaction.version"), "finalized features " + finalized);
      assertEquals(2, finalized.get("transaction.version").maxVersionLevel());
      assertEquals(List.of(e, e + 1, e + 2), epochs);
    }
    try (KafkaConsumer<byte[], byte[]> c = readCommitted(broker)) {
      assertEquals(
          List.of("0=v0", "2=v1", "4=v2"), offsetsAndValues(readAll(c, List.of(tp), 3), 0));
    }
  }
}
