//! Requests and connections that must not make the broker allocate without bound or
//! lock clients out: huge partition counts, a topic named 100k times, idle sockets,
//! frames that never complete, too many connections from one address.

mod common;

use std::time::Duration;

use common::{answers, call, closed_within, start};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const INVALID_PARTITIONS: i16 = 37;
const POLICY_VIOLATION: i16 = 44;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(topic: &str, partitions: i32, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(-1),
        ])
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
}

async fn create_topics(s: &mut TcpStream, req: &CreateTopicsRequest) -> (i16, Option<String>) {
    let r: CreateTopicsResponse = call(s, ApiKey::CreateTopics, 4, req).await;
    let t = &r.topics[0];
    (
        t.error_code,
        t.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// A 51-byte CreateTopics asking for 2^31-1 partitions aborted the broker on a 51 GB
/// allocation (validate_only or not). Refused now, before anything is allocated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_with_2_pow_31_partitions_is_refused() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let req = create("x", i32::MAX, true);
    let wire = common::frame(ApiKey::CreateTopics, 4, 1, &req);
    assert!(wire.len() <= 64, "a tiny request: {} bytes", wire.len());
    for validate_only in [true, false] {
        let (code, message) = create_topics(&mut s, &create("x", i32::MAX, validate_only)).await;
        assert_eq!(code, INVALID_PARTITIONS, "{message:?}");
        assert!(message.unwrap().contains("max_partitions_per_topic"));
    }
    // 16.7M partitions cost 0.9 GB before any check; refused the same way.
    let (code, _) = create_topics(&mut s, &create("x", 1 << 24, false)).await;
    assert_eq!(code, INVALID_PARTITIONS);
    // At the limit is fine (validate only: nothing is created).
    let (code, message) = create_topics(&mut s, &create("x", 10_000, true)).await;
    assert_eq!(code, 0, "{message:?}");
    assert!(answers(server.addr).await);
    server.stop().await;
}

/// The same through CreatePartitions (a 45-byte request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_to_2_pow_31_is_refused() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(create_topics(&mut s, &create("grow", 1, false)).await.0, 0);
    for validate_only in [true, false] {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("grow"))
                    .with_count(i32::MAX)
                    .with_assignments(None),
            ])
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only);
        let wire = common::frame(ApiKey::CreatePartitions, 1, 1, &req);
        assert!(wire.len() <= 64, "a tiny request: {} bytes", wire.len());
        let r: CreatePartitionsResponse = call(&mut s, ApiKey::CreatePartitions, 1, &req).await;
        assert_eq!(r.results[0].error_code, INVALID_PARTITIONS);
    }
    assert_eq!(server.broker.topics().get("grow").unwrap().partitions, 1);
    assert!(answers(server.addr).await);
    server.stop().await;
}

/// The node-wide bound counts every partition replica the node holds
/// (`__consumer_offsets` has 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_per_node_are_bounded() {
    let server = start(&[("max_partitions_per_node", "30")]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(create_topics(&mut s, &create("a", 12, false)).await.0, 0);
    let (code, message) = create_topics(&mut s, &create("b", 12, false)).await;
    assert_eq!(code, POLICY_VIOLATION, "{message:?}");
    assert!(message.unwrap().contains("max_partitions_per_node"));
    assert!(server.broker.topics().get("b").is_none());
    assert_eq!(create_topics(&mut s, &create("b", 10, false)).await.0, 0);
    server.stop().await;
}

/// One topic named 100k times in a 0.3 MB Metadata request made a 261 MB answer. Kafka
/// describes each topic once; so does Strom now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_describes_a_repeated_topic_once() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(create_topics(&mut s, &create("t", 3, false)).await.0, 0);
    let topics = vec![MetadataRequestTopic::default().with_name(Some(name("t"))); 100_000];
    let req = MetadataRequest::default().with_topics(Some(topics));
    let wire = common::frame(ApiKey::Metadata, 1, 1, &req);
    assert!(wire.len() < 400_000, "{} bytes", wire.len());
    s.write_all(&wire).await.unwrap();
    let mut body = common::read_response(&mut s, ApiKey::Metadata, 1).await;
    assert!(body.len() < 4096, "an answer of {} bytes", body.len());
    let r =
        <MetadataResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 1).unwrap();
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].partitions.len(), 3);
    server.stop().await;
}

/// Kafka's connections.max.idle.ms: a connection with no request for that long is closed;
/// one that keeps sending requests is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let server = start(&[("connections_max_idle_ms", "300")]).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _: kafka_protocol::messages::ApiVersionsResponse = call(
            &mut busy,
            ApiKey::ApiVersions,
            0,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        )
        .await;
    }
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await);
    assert!(!closed_within(&mut busy, Duration::from_millis(100)).await);
    let metrics = server.broker.render_metrics();
    assert!(
        metrics.contains("strom_connections_closed_total{reason=\"idle\"} 1\n"),
        "{metrics}"
    );
    server.stop().await;
}

/// A frame that was started and never completed used to hold its connection (and what
/// it had sent) forever. It is closed after the request read timeout now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_frame_is_closed_after_the_read_timeout() {
    let server = start(&[("request_read_timeout_ms", "300")]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // Promises 100 bytes, sends 10 and waits.
    s.write_all(&100i32.to_be_bytes()).await.unwrap();
    s.write_all(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0]).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    // A prefix cut short counts too.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    let metrics = server.broker.render_metrics();
    assert!(
        metrics.contains("strom_connections_closed_total{reason=\"request_timeout\"} 2\n"),
        "{metrics}"
    );
    assert!(answers(server.addr).await);
    server.stop().await;
}

/// 300 idle sockets held every connection slot and locked kcat out. At the limit, the
/// longest-idle connection is closed to admit the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_do_not_lock_out_a_new_client() {
    let server = start(&[("max_connections", "300")]).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    assert!(answers(server.addr).await, "a new client is served");
    assert!(answers(server.addr).await, "and another");
    let metrics = server.broker.render_metrics();
    assert!(
        !metrics.contains("strom_connections_closed_total{reason=\"evicted\"} 0\n"),
        "{metrics}"
    );
    drop(idle);
    server.stop().await;
}

/// Kafka's max.connections.per.ip and its overrides: the connection over the limit is
/// closed right away; the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_limited() {
    let server = start(&[("max_connections_per_ip", "3")]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut fourth, Duration::from_secs(3)).await);
    let _: kafka_protocol::messages::ApiVersionsResponse = call(
        &mut open[0],
        ApiKey::ApiVersions,
        0,
        &kafka_protocol::messages::ApiVersionsRequest::default(),
    )
    .await;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(answers(server.addr).await, "a slot freed by a close");
    let metrics = server.broker.render_metrics();
    assert!(
        metrics.contains("strom_connections_closed_total{reason=\"per_ip_limit\"} 1\n"),
        "{metrics}"
    );
    server.stop().await;

    let server = start(&[
        ("max_connections_per_ip", "1"),
        ("max_connections_per_ip_overrides", "127.0.0.1:4"),
    ])
    .await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for s in &mut open {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    let mut fifth = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut fifth, Duration::from_secs(3)).await);
    drop(open);
    server.stop().await;
}

/// A client that pipelines requests and never reads its answers: once an answer cannot
/// be written for connections_max_idle_ms, the connection is closed and its requests'
/// share of the budget given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_after_the_idle_time() {
    let server = start(&[
        ("connections_max_idle_ms", "500"),
        ("auto_create_topics", "false"),
    ])
    .await;
    let names: Vec<MetadataRequestTopic> = (0..50_000)
        .map(|i| MetadataRequestTopic::default().with_name(Some(name(&format!("none-{i:08}")))))
        .collect();
    let req = MetadataRequest::default()
        .with_topics(Some(names))
        .with_allow_auto_topic_creation(false);
    let wire = common::frame(ApiKey::Metadata, 4, 1, &req);
    let s = TcpStream::connect(server.addr).await.unwrap();
    let (_rd, mut wr) = s.into_split();
    // Each answer is about 1.5 MB; 30 of them fill every socket buffer on the way.
    let send = tokio::spawn(async move {
        for _ in 0..30 {
            if wr.write_all(&wire).await.is_err() {
                break;
            }
        }
        wr
    });
    let mut closed = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let m = server.broker.render_metrics();
        if m.contains("strom_connections_closed_total{reason=\"idle\"} 1\n") {
            closed = true;
            break;
        }
    }
    assert!(closed, "the stalled connection was closed");
    let mut released = false;
    for _ in 0..100 {
        let m = server.broker.render_metrics();
        if m.contains("strom_request_bytes_in_flight 0\n") {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(released, "its requests gave their budget back");
    drop(send);
    assert!(answers(server.addr).await);
    server.stop().await;
}
