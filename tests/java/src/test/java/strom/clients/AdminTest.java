//! The Admin client: topics, partitions, topic configs, the cluster, consumer groups and their offsets, DeleteRecords, ListOffsets.
package strom.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static strom.clients.Records.bytes;
import static strom.clients.Records.createTopic;
import static strom.clients.Records.get;
import static strom.clients.Records.poll;
import static strom.clients.Records.sendAll;
import static strom.clients.Records.waitUntil;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

@ExtendWith(Brokers.class)
@SuppressWarnings("deprecation") // listConsumerGroups: the brief names it; listGroups is its successor
class AdminTest {
  static Stream<Broker> brokers() {
    return Brokers.all();
  }

  /** Each record in its own batch, partition 0, record i stamped t0 + 1000 * seconds[i]. */
  static void produceAt(Broker broker, String topic, long t0, int... seconds) throws Exception {
    try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
      for (int i = 0; i < seconds.length; i++) {
        sendAll(p, List.of(new ProducerRecord<>(topic, 0, t0 + 1000L * seconds[i], null, bytes("r" + i))));
      }
    }
  }

  static Set<String> topics(Admin admin) throws Exception {
    return get(admin.listTopics().names());
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void topics_are_created_listed_described_and_deleted(Broker broker) throws Exception {
    String topic = Broker.unique("topic");
    try (Admin admin = broker.admin()) {
      NewTopic spec = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000"));
      get(admin.createTopics(List.of(spec)).all());
      assertThrows(TopicExistsException.class, () -> get(admin.createTopics(List.of(spec)).all()));
      waitUntil("the topic is listed", () -> topics(admin).contains(topic));

      int nodeId = get(admin.describeCluster().nodes()).iterator().next().id();
      TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
      assertEquals(topic, d.name());
      assertFalse(d.isInternal());
      assertNotEquals(Uuid.ZERO_UUID, d.topicId(), "a topic id");
      assertEquals(List.of(0, 1, 2), d.partitions().stream().map(TopicPartitionInfo::partition).toList());
      for (TopicPartitionInfo p : d.partitions()) {
        assertEquals(nodeId, p.leader().id(), "leader of " + p.partition());
        assertEquals(List.of(nodeId), p.replicas().stream().map(Node::id).toList());
        assertEquals(List.of(nodeId), p.isr().stream().map(Node::id).toList());
      }

      get(admin.deleteTopics(List.of(topic)).all());
      waitUntil("the topic is gone from the list", () -> !topics(admin).contains(topic));
      assertThrows(
          UnknownTopicOrPartitionException.class,
          () -> get(admin.describeTopics(List.of(topic)).allTopicNames()));
      assertThrows(
          UnknownTopicOrPartitionException.class, () -> get(admin.deleteTopics(List.of(topic)).all()));
    }
  }

  /** Metadata v12+ by topic id (the Admin client's describeTopics of a TopicIdCollection). */
  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void describe_topics_by_id_names_the_topic(Broker broker) throws Exception {
    String topic = Broker.unique("byid");
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 2);
      Uuid id = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).topicId();
      TopicDescription byId =
          get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds()).get(id);
      assertEquals(topic, byId.name());
      assertEquals(2, byId.partitions().size());
      assertThrows(
          UnknownTopicIdException.class,
          () -> get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds()));
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void create_partitions_grows_a_topic_and_refuses_to_shrink_it(Broker broker) throws Exception {
    String topic = Broker.unique("grow");
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 2);
      get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
      waitUntil(
          "5 partitions are described",
          () -> get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size() == 5);
      assertThrows(
          InvalidPartitionsException.class,
          () -> get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all()));
      assertThrows(
          InvalidPartitionsException.class,
          () -> get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all()));
      assertThrows(
          UnknownTopicOrPartitionException.class,
          () -> get(admin.createPartitions(Map.of(Broker.unique("none"), NewPartitions.increaseTo(5))).all()));
    }
    // A record can go to the new partition and be read there.
    try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
      assertEquals(0L, sendAll(p, List.of(new ProducerRecord<>(topic, 4, null, bytes("x")))).get(0).offset());
    }
  }

  static ConfigEntry entry(Admin admin, ConfigResource r, String name) throws Exception {
    Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
    ConfigEntry e = c.get(name);
    assertNotNull(e, name + " is described");
    return e;
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void topic_configs_are_described_and_altered_incrementally(Broker broker) throws Exception {
    String topic = Broker.unique("configs");
    ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 1);
      ConfigEntry retention = entry(admin, r, "retention.ms");
      assertEquals("604800000", retention.value());
      assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, retention.source());
      assertEquals("delete", entry(admin, r, "cleanup.policy").value());

      get(
          admin
              .incrementalAlterConfigs(
                  Map.of(
                      r,
                      List.of(
                          new AlterConfigOp(new ConfigEntry("retention.ms", "12345"), AlterConfigOp.OpType.SET),
                          new AlterConfigOp(
                              new ConfigEntry("segment.bytes", "1048576"), AlterConfigOp.OpType.SET))))
              .all());
      retention = entry(admin, r, "retention.ms");
      assertEquals("12345", retention.value());
      assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
      assertEquals("1048576", entry(admin, r, "segment.bytes").value());

      get(
          admin
              .incrementalAlterConfigs(
                  Map.of(r, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
              .all());
      retention = entry(admin, r, "retention.ms");
      assertEquals("604800000", retention.value());
      assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, retention.source());
      assertEquals("1048576", entry(admin, r, "segment.bytes").value(), "the other change stays");

      assertThrows(
          InvalidConfigurationException.class,
          () ->
              get(
                  admin
                      .incrementalAlterConfigs(
                          Map.of(
                              r,
                              List.of(
                                  new AlterConfigOp(
                                      new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET))))
                      .all()));
      assertThrows(
          InvalidConfigurationException.class,
          () ->
              get(
                  admin
                      .incrementalAlterConfigs(
                          Map.of(
                              r,
                              List.of(
                                  new AlterConfigOp(
                                      new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                      .all()));
    }
  }

  /** Every topic config Kafka 4.4 describes for a new topic, Strom describes too, with the same default. */
  @org.junit.jupiter.api.Test
  void both_brokers_describe_the_same_topic_configs_and_defaults() throws Exception {
    List<Map<String, String>> described = new java.util.ArrayList<>();
    for (Broker broker : Brokers.both()) {
      String topic = Broker.unique("allconfigs");
      ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      try (Admin admin = broker.admin()) {
        createTopic(admin, topic, 1);
        Map<String, String> values = new java.util.TreeMap<>();
        for (ConfigEntry e : get(admin.describeConfigs(List.of(r)).all()).get(r).entries()) {
          values.put(e.name(), e.value());
        }
        described.add(values);
      }
    }
    Map<String, String> kafka = described.get(0);
    Map<String, String> strom = described.get(1);
    Map<String, String> missing = new java.util.TreeMap<>(kafka);
    missing.keySet().removeAll(strom.keySet());
    // Deliberate differences, listed in docs/compatibility.md ("Configs"): Strom fsyncs
    // every acknowledged write by default, and bounds what checking a compressed batch may
    // allocate. Strom's value is held to exactly what the document says.
    Map<String, String> documented =
        Map.of("flush.messages", "1", "max.decompressed.message.bytes", "67108864");
    Map<String, String> differing = new java.util.TreeMap<>();
    for (String name : kafka.keySet()) {
      if (documented.containsKey(name)) {
        assertEquals(documented.get(name), strom.get(name), name + " on Strom");
        continue;
      }
      if (strom.containsKey(name) && !java.util.Objects.equals(kafka.get(name), strom.get(name))) {
        differing.put(name, "kafka=" + kafka.get(name) + " strom=" + strom.get(name));
      }
    }
    assertEquals(Map.of(), differing, "topic config defaults that differ");
    assertEquals(Map.of(), missing, "topic configs Kafka describes and Strom does not");
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void describe_cluster_names_the_one_node_and_the_controller(Broker broker) throws Exception {
    try (Admin admin = broker.admin()) {
      DescribeClusterResult c = admin.describeCluster();
      String clusterId = get(c.clusterId());
      assertNotNull(clusterId);
      assertFalse(clusterId.isEmpty());
      Collection<Node> nodes = get(c.nodes());
      assertEquals(1, nodes.size());
      Node node = nodes.iterator().next();
      assertEquals(broker.bootstrap(), node.host() + ":" + node.port());
      Node controller = get(c.controller());
      assertNotNull(controller);
      // A KRaft cluster hides its controllers from clients: DescribeCluster names a broker.
      assertEquals(node.id(), controller.id());
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void consumer_groups_are_listed_described_altered_and_deleted(Broker broker) throws Exception {
    String topic = Broker.unique("groups");
    String group = Broker.unique("g");
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 2);
      try (KafkaProducer<byte[], byte[]> p = broker.producer()) {
        for (int i = 0; i < 10; i++) {
          sendAll(p, List.of(new ProducerRecord<>(topic, i % 2, null, bytes("v" + i))));
        }
      }
      try (KafkaConsumer<byte[], byte[]> c =
          broker.consumer(ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
        c.subscribe(List.of(topic));
        assertEquals(10, poll(c, 10).size());
        c.commitSync(Broker.TIMEOUT);

        Collection<ConsumerGroupListing> listed = get(admin.listConsumerGroups().all());
        ConsumerGroupListing listing =
            listed.stream().filter(l -> l.groupId().equals(group)).findFirst().orElse(null);
        assertNotNull(listing, "the group is listed: " + listed);
        assertFalse(listing.isSimpleConsumerGroup());
        assertEquals(GroupState.STABLE, listing.groupState().orElse(null), "the listed group's state");

        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
        assertEquals(GroupState.STABLE, d.groupState());
        assertEquals(GroupType.CLASSIC, d.type());
        assertEquals("range", d.partitionAssignor(), "the first assignor both clients name");
        assertEquals(1, d.members().size());
        MemberDescription m = d.members().iterator().next();
        assertEquals(Set.of(p0, p1), m.assignment().topicPartitions());
        assertNotNull(d.coordinator());

        assertThrows(
            GroupNotEmptyException.class, () -> get(admin.deleteConsumerGroups(List.of(group)).all()));
      }

      ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
      assertEquals(GroupState.EMPTY, d.groupState());
      assertTrue(d.members().isEmpty());

      assertEquals(Map.of(p0, 5L, p1, 5L), offsets(admin, group));
      get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(2))).all());
      assertEquals(Map.of(p0, 2L, p1, 5L), offsets(admin, group));
      get(admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
      assertEquals(Map.of(p0, 2L), offsets(admin, group));

      get(admin.deleteConsumerGroups(List.of(group)).all());
      Collection<ConsumerGroupListing> listed = get(admin.listConsumerGroups().all());
      assertTrue(listed.stream().noneMatch(l -> l.groupId().equals(group)), "deleted: " + listed);
      assertEquals(Map.of(), offsets(admin, group));
    }
  }

  /** ListGroups v5 (KIP-848) added each group's type; the Admin client shows it in its listing. */
  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void a_listed_group_carries_its_type(Broker broker) throws Exception {
    String topic = Broker.unique("grouptype");
    String group = Broker.unique("g");
    try (Admin admin = broker.admin();
        KafkaConsumer<byte[], byte[]> c =
            broker.consumer(ConsumerConfig.GROUP_ID_CONFIG, group, ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic")) {
      createTopic(admin, topic, 1);
      c.subscribe(List.of(topic));
      waitUntil("the member has its assignment", () -> {
        c.poll(java.time.Duration.ofMillis(100));
        return !c.assignment().isEmpty();
      });
      ConsumerGroupListing listing =
          get(admin.listConsumerGroups().all()).stream()
              .filter(l -> l.groupId().equals(group))
              .findFirst()
              .orElseThrow();
      assertEquals(GroupType.CLASSIC, listing.type().orElse(null), "the listed group's type");
    }
  }

  /** The group's committed offsets; partitions without one are left out. */
  static Map<TopicPartition, Long> offsets(Admin admin, String group) throws Exception {
    return get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()).entrySet().stream()
        .filter(e -> e.getValue() != null)
        .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void delete_records_moves_the_start_and_refuses_beyond_the_end(Broker broker) throws Exception {
    String topic = Broker.unique("delete");
    TopicPartition tp = new TopicPartition(topic, 0);
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 1);
      produceAt(broker, topic, System.currentTimeMillis(), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
      long low =
          get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp)).lowWatermark();
      assertEquals(4, low);
      assertEquals(4, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
      assertEquals(10, get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());
      assertThrows(
          OffsetOutOfRangeException.class,
          () -> get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all()));
      // -1 means "up to the high watermark".
      low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp)).lowWatermark();
      assertEquals(10, low);
    }
    try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
      c.assign(List.of(tp));
      c.seekToBeginning(List.of(tp));
      assertEquals(10L, c.position(tp, Broker.TIMEOUT), "the start moved to the end");
      assertTrue(c.poll(java.time.Duration.ofMillis(500)).isEmpty(), "nothing left to read");
    }
  }

  @ParameterizedTest(name = "[{0}]")
  @MethodSource("brokers")
  void list_offsets_earliest_latest_max_timestamp_and_for_a_time(Broker broker) throws Exception {
    String topic = Broker.unique("offsets");
    TopicPartition tp = new TopicPartition(topic, 0);
    long t0 = System.currentTimeMillis() - 60_000;
    try (Admin admin = broker.admin()) {
      createTopic(admin, topic, 1);
      assertEquals(List.of(0L, -1L), offsetAndTime(admin, tp, OffsetSpec.latest()), "an empty partition");
      assertEquals(List.of(-1L, -1L), offsetAndTime(admin, tp, OffsetSpec.maxTimestamp()), "an empty partition");
      produceAt(broker, topic, t0, 5, 1, 9, 3, 2, 7);
      assertEquals(List.of(0L, -1L), offsetAndTime(admin, tp, OffsetSpec.earliest()));
      assertEquals(List.of(6L, -1L), offsetAndTime(admin, tp, OffsetSpec.latest()));
      assertEquals(List.of(2L, t0 + 9000), offsetAndTime(admin, tp, OffsetSpec.maxTimestamp()));
      assertEquals(List.of(0L, t0 + 5000), offsetAndTime(admin, tp, OffsetSpec.forTimestamp(t0 + 4000)));
      assertEquals(List.of(2L, t0 + 9000), offsetAndTime(admin, tp, OffsetSpec.forTimestamp(t0 + 6000)));
      assertEquals(List.of(-1L, -1L), offsetAndTime(admin, tp, OffsetSpec.forTimestamp(t0 + 10000)));
    }
  }

  static List<Long> offsetAndTime(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
    ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(tp, spec)).partitionResult(tp));
    return List.of(info.offset(), info.timestamp());
  }
}
