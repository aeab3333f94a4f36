//! strom-client against an in-process broker: produce and consume back, acks, long
//! polling woken per partition, committed offsets and records across a restart, and a
//! topic deleted and created again. Every test asserts exact offsets, values and error
//! codes; the broker's own answers are read with raw requests where the client would
//! refuse before sending (an unknown partition, a deleted topic).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_client::{
    Acks, Client, ClientError, Codec, FetchOptions, FetchedPartition, GroupConfig, GroupConsumer,
    NewTopic, OffsetSpec, ProduceOptions, ProduceRecord, Record, build_batch, now_ms,
};
use strom_e2e::TestBroker;
use strom_wire::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use strom_wire::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use strom_wire::kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
use strom_wire::kafka_protocol::protocol::StrBytes;

/// Kafka's wire values, written out rather than taken from strom-codes, so that a wrong
/// table there fails here.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;

// ---------------------------------------------------------------------------------
// Produce and consume
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_records_come_back_with_dense_offsets() {
    let mut server = TestBroker::start(&[]).await;
    let client = server.client().await;

    // Metadata names the port the listener really has, not the configured default.
    let meta = client.metadata(Some(&[]), false).await.unwrap();
    assert_eq!(meta.brokers.len(), 1);
    assert_eq!(meta.brokers[0].host, "127.0.0.1");
    assert_eq!(meta.brokers[0].port, i32::from(server.addr().port()));

    create(&client, "orders", 1).await;
    // 50 records in batches of 10: each batch starts where the previous one ended.
    for batch in 0..5 {
        let records: Vec<ProduceRecord> = (batch * 10..batch * 10 + 10).map(record).collect();
        let produced = client
            .produce("orders", 0, &records, acks(Acks::All))
            .await
            .unwrap();
        assert_eq!(produced.base_offset, Some(i64::from(batch) * 10));
    }

    let (records, high_watermark) = read_partition(&client, "orders", 0).await;
    assert_eq!(high_watermark, 50);
    assert_eq!(records.len(), 50);
    for (i, r) in records.iter().enumerate() {
        let expected = record(i as u32);
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key, expected.key, "key at offset {i}");
        assert_eq!(r.value, expected.value, "value at offset {i}");
    }
    // A fetch from the middle starts at the offset asked for, even inside a batch.
    let middle = fetch_one(&client, "orders", 0, 25, Duration::from_millis(100)).await;
    assert_eq!(middle.records.first().map(|r| r.offset), Some(25));
    assert_eq!(middle.records.last().map(|r| r.offset), Some(49));

    let earliest = client
        .list_offsets("orders", &[0], OffsetSpec::Earliest)
        .await
        .unwrap();
    let latest = client
        .list_offsets("orders", &[0], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(earliest, BTreeMap::from([(0, 0)]));
    assert_eq!(latest, BTreeMap::from([(0, 50)]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_and_acks_1_answer_base_offsets_and_unknown_partitions_are_refused() {
    let mut server = TestBroker::start(&[]).await;
    let client = server.client().await;
    create(&client, "acks", 2).await;

    let batch = |from: u32, n: u32| (from..from + n).map(record).collect::<Vec<_>>();
    let mut bases = Vec::new();
    for (records, mode) in [
        (batch(0, 3), Acks::All),
        (batch(3, 2), Acks::Leader),
        (batch(5, 4), Acks::Leader),
        (batch(9, 1), Acks::All),
    ] {
        let produced = client.produce("acks", 0, &records, acks(mode)).await;
        bases.push(produced.unwrap().base_offset);
    }
    assert_eq!(bases, [Some(0), Some(3), Some(5), Some(9)]);
    // The other partition numbers its records from 0 on its own.
    let other = client
        .produce("acks", 1, &batch(100, 2), acks(Acks::Leader))
        .await
        .unwrap();
    assert_eq!(other.base_offset, Some(0));

    let (records, high_watermark) = read_partition(&client, "acks", 0).await;
    assert_eq!(high_watermark, 10);
    let values: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
    let expected: Vec<_> = (0..10).map(|i| record(i).value).collect();
    assert_eq!(values, expected);

    // The client knows the topic has two partitions and does not send this one.
    match client
        .produce("acks", 2, &batch(0, 1), acks(Acks::All))
        .await
    {
        Err(ClientError::UnknownPartition { topic, partition }) => {
            assert_eq!((topic.as_str(), partition), ("acks", 2));
        }
        other => panic!("expected an unknown partition, got {other:?}"),
    }
    // The broker's own answer, for a partition past the end, a negative one, and a
    // topic that never existed.
    assert_eq!(
        raw_produce(&client, "acks", 2).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        raw_produce(&client, "acks", -1).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        raw_produce(&client, "never-created", 0).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    // Nothing was written by the refused requests.
    let latest = client
        .list_offsets("acks", &[0, 1], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(latest, BTreeMap::from([(0, 10), (1, 2)]));
    server.stop().await;
}

// ---------------------------------------------------------------------------------
// Long polling
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_its_own_partition_only() {
    let mut server = TestBroker::start(&[]).await;
    let client = server.client().await;
    // The writer has a connection of its own, as a producer beside a consumer does: a
    // connection's answers come back in request order, so a produce sent behind a
    // waiting fetch on the same connection would be answered only after it.
    let writer = server.client().await;
    create(&client, "polled", 2).await;

    // A fetch on empty partition 0 that may wait 10 s is answered once a record arrives.
    let waiting = spawn_fetch(&client, "polled", 0, 0, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "an empty partition was answered early"
    );
    let produced_at = Instant::now();
    writer
        .produce("polled", 0, &[record(7)], acks(Acks::All))
        .await
        .unwrap();
    let answer = waiting.await.unwrap();
    let waited = produced_at.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "the fetch was answered {waited:?} after the produce"
    );
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.high_watermark, 1);
    assert_eq!(answer.records.len(), 1);
    assert_eq!(answer.records[0].offset, 0);
    assert_eq!(answer.records[0].value, record(7).value);

    // A fetch waiting on partition 0 is not answered by writes to partition 1: it
    // returns at its max wait, empty.
    let started = Instant::now();
    let waiting = spawn_fetch(&client, "polled", 0, 1, Duration::from_secs(1));
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let produced = writer
            .produce("polled", 1, &[record(i)], acks(Acks::All))
            .await
            .unwrap();
        assert_eq!(produced.base_offset, Some(i64::from(i)));
    }
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "the writes took too long to tell anything ({:?})",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "writes to partition 1 answered a fetch of partition 0"
    );
    let answer = waiting.await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "the fetch returned after {waited:?}, not at its max wait of 1 s"
    );
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.high_watermark, 1);
    assert_eq!(answer.records, []);
    server.stop().await;
}

// ---------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_records_survive_a_restart() {
    let mut server = TestBroker::start(&[]).await;
    let client = server.client().await;
    create(&client, "events", 2).await;
    let p0: Vec<ProduceRecord> = (0..5).map(record).collect();
    let p1: Vec<ProduceRecord> = (10..13).map(record).collect();
    client
        .produce("events", 0, &p0, acks(Acks::All))
        .await
        .unwrap();
    client
        .produce("events", 1, &p1, acks(Acks::All))
        .await
        .unwrap();

    let consumer = GroupConsumer::join(
        client.clone(),
        "keepers",
        vec!["events".to_owned()],
        GroupConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        consumer.assignment(),
        &BTreeMap::from([("events".to_owned(), vec![0, 1])])
    );
    let committed = BTreeMap::from([("events".to_owned(), BTreeMap::from([(0, 5), (1, 2)]))]);
    consumer.commit(&committed).await.unwrap();
    assert_eq!(consumer.committed().await.unwrap(), committed);
    consumer.leave().await.unwrap();
    drop(client);

    let old_port = server.addr().port();
    server.restart().await;
    let client = server.client().await;
    // The node registered its new address: Metadata sends clients to the new port.
    let meta = client.metadata(Some(&[]), false).await.unwrap();
    let ports: Vec<i32> = meta.brokers.iter().map(|b| b.port).collect();
    assert_eq!(ports, [i32::from(server.addr().port())]);
    assert_ne!(server.addr().port(), old_port);

    assert_eq!(
        client.committed_offsets("keepers").await.unwrap(),
        committed
    );
    let (records, high_watermark) = read_partition(&client, "events", 0).await;
    assert_eq!(high_watermark, 5);
    let values: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
    let expected: Vec<_> = p0.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values, expected);
    let (records, high_watermark) = read_partition(&client, "events", 1).await;
    assert_eq!(high_watermark, 3);
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(records[2].key, record(12).key);
    // New records continue the offsets.
    let produced = client
        .produce("events", 0, &[record(5)], acks(Acks::All))
        .await
        .unwrap();
    assert_eq!(produced.base_offset, Some(5));
    server.stop().await;
}

// ---------------------------------------------------------------------------------
// Topic deletion
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_is_unknown_and_starts_again_at_zero() {
    let mut server = TestBroker::start(&[]).await;
    let client = server.client().await;
    create(&client, "doomed", 1).await;
    let old: Vec<ProduceRecord> = (0..3).map(record).collect();
    let produced = client
        .produce("doomed", 0, &old, acks(Acks::All))
        .await
        .unwrap();
    assert_eq!(produced.base_offset, Some(0));
    let (_, old_id) = client.topic_info("doomed").await.unwrap();

    client.delete_topic("doomed").await.unwrap();
    match client
        .fetch("doomed", &[(0, 0)], FetchOptions::default())
        .await
    {
        Err(ClientError::UnknownTopic(t)) => assert_eq!(t, "doomed"),
        other => panic!("expected an unknown topic, got {other:?}"),
    }
    match client.produce("doomed", 0, &old, acks(Acks::All)).await {
        Err(ClientError::UnknownTopic(t)) => assert_eq!(t, "doomed"),
        other => panic!("expected an unknown topic, got {other:?}"),
    }
    // What the broker answers a client that still has the topic in its metadata: by
    // name, and by the old topic id (Fetch v13 and later name topics by id).
    assert_eq!(
        raw_produce(&client, "doomed", 0).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        raw_fetch(&client, "doomed", old_id, 12).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        raw_fetch(&client, "doomed", old_id, 16).await,
        UNKNOWN_TOPIC_ID
    );
    // Deleting it again is refused the same way.
    match client.delete_topic("doomed").await {
        Err(ClientError::UnknownTopic(t)) => assert_eq!(t, "doomed"),
        other => panic!("expected an unknown topic, got {other:?}"),
    }

    // Created again, it is a new topic whose offsets start at 0, without the old records.
    create(&client, "doomed", 1).await;
    let (_, new_id) = client.topic_info("doomed").await.unwrap();
    assert_ne!(new_id, old_id);
    let new: Vec<ProduceRecord> = (100..102).map(record).collect();
    let produced = client
        .produce("doomed", 0, &new, acks(Acks::All))
        .await
        .unwrap();
    assert_eq!(produced.base_offset, Some(0));
    let (records, high_watermark) = read_partition(&client, "doomed", 0).await;
    assert_eq!(high_watermark, 2);
    let values: Vec<_> = records.iter().map(|r| r.value.clone()).collect();
    let expected: Vec<_> = new.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values, expected);
    // A fetch by the old id still finds nothing: the name came back, the id did not.
    assert_eq!(
        raw_fetch(&client, "doomed", old_id, 16).await,
        UNKNOWN_TOPIC_ID
    );
    server.stop().await;
}

/// A client that read a topic before another client deleted it and created it again
/// finds the new topic (its cached topic id answers UNKNOWN_TOPIC_ID once, then the
/// client looks the topic up again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_a_topic_created_again_elsewhere() {
    let mut server = TestBroker::start(&[]).await;
    let admin = server.client().await;
    let reader = server.client().await;
    create(&admin, "again", 1).await;
    admin
        .produce("again", 0, &[record(1)], acks(Acks::All))
        .await
        .unwrap();
    assert_eq!(read_partition(&reader, "again", 0).await.1, 1);

    admin.delete_topic("again").await.unwrap();
    create(&admin, "again", 1).await;
    let new: Vec<ProduceRecord> = (7..9).map(record).collect();
    admin
        .produce("again", 0, &new, acks(Acks::All))
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..5 {
        let p = fetch_one(&reader, "again", 0, 0, Duration::from_millis(100)).await;
        codes.push(p.error_code);
        if p.error_code == 0 {
            let values: Vec<_> = p.records.iter().map(|r| r.value.clone()).collect();
            let expected: Vec<_> = new.iter().map(|r| r.value.clone()).collect();
            assert_eq!(values, expected);
            assert!(
                codes.len() <= 2,
                "codes before the new topic was found: {codes:?}"
            );
            server.stop().await;
            return;
        }
        assert_eq!(p.error_code, UNKNOWN_TOPIC_ID, "{codes:?}");
    }
    panic!("the reader never found the new topic: {codes:?}");
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Record `i`: key `key-i` (none for every fifth, so null keys are checked too) and
/// value `value-i`.
fn record(i: u32) -> ProduceRecord {
    ProduceRecord {
        key: (i % 5 != 4).then(|| format!("key-{i}").into_bytes()),
        value: Some(format!("value-{i}").into_bytes()),
        ..ProduceRecord::default()
    }
}

fn acks(acks: Acks) -> ProduceOptions {
    ProduceOptions {
        acks,
        timeout: Duration::from_secs(5),
        ..ProduceOptions::default()
    }
}

async fn create(client: &Client, topic: &str, partitions: i32) {
    client
        .create_topic(&NewTopic {
            name: topic.to_owned(),
            partitions,
            replication_factor: 1,
            configs: Vec::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// One partition's answer to a fetch from `offset`.
async fn fetch_one(
    client: &Client,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
) -> FetchedPartition {
    let opts = FetchOptions {
        max_wait,
        ..FetchOptions::default()
    };
    let mut answer = client
        .fetch(topic, &[(partition, offset)], opts)
        .await
        .unwrap_or_else(|e| panic!("fetch {topic}/{partition} at {offset}: {e}"));
    assert_eq!(answer.len(), 1, "one answer per partition asked for");
    let p = answer.pop().unwrap();
    assert_eq!(p.partition, partition);
    p
}

/// [`fetch_one`] in a task of its own, to be answered while the test writes.
fn spawn_fetch(
    client: &Client,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
) -> tokio::task::JoinHandle<FetchedPartition> {
    let (client, topic) = (client.clone(), topic.to_owned());
    tokio::spawn(async move { fetch_one(&client, &topic, partition, offset, max_wait).await })
}

/// Every record of a partition, fetched from offset 0 up to its high watermark, and the
/// high watermark.
async fn read_partition(client: &Client, topic: &str, partition: i32) -> (Vec<Record>, i64) {
    let mut records = Vec::new();
    let mut next = 0;
    for _ in 0..100 {
        let p = fetch_one(client, topic, partition, next, Duration::from_millis(100)).await;
        assert_eq!(p.error_code, 0, "fetch {topic}/{partition} at {next}");
        if let Some(last) = p.records.last() {
            next = last.offset + 1;
        }
        records.extend(p.records);
        if next >= p.high_watermark {
            return (records, p.high_watermark);
        }
    }
    panic!("{topic}/{partition} was not read to its end in 100 fetches");
}

/// The error code of a one-record Produce (acks=all) to `topic`/`partition`, sent as
/// is: the client would refuse an unknown partition before sending.
async fn raw_produce(client: &Client, topic: &str, partition: i32) -> i16 {
    let conn = client.any_broker().await.unwrap();
    let version = conn.version::<ProduceRequest>().unwrap();
    let batch = build_batch(&[record(0)], Codec::None, now_ms()).unwrap();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(batch))),
                ]),
        ]);
    let resp = conn.send(&req, version).await.unwrap();
    assert_eq!(resp.responses.len(), 1);
    let answers = &resp.responses[0].partition_responses;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].index, partition);
    answers[0].error_code
}

/// The error code of a Fetch of partition 0 at `version`: by `topic`'s name before v13,
/// by `topic_id` from v13 on.
async fn raw_fetch(client: &Client, topic: &str, topic_id: uuid::Uuid, version: i16) -> i16 {
    let conn = client.any_broker().await.unwrap();
    assert!(conn.version::<FetchRequest>().unwrap() >= version);
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let resp = conn.send(&req, version).await.unwrap();
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.responses.len(), 1);
    let partitions = &resp.responses[0].partitions;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].partition_index, 0);
    partitions[0].error_code
}
