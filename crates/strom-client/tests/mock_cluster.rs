//! strom-client against a scripted two-broker cluster: a partition's leadership and a
//! group's coordination move from node 1 to node 2 mid-operation, and answers come back
//! out of order on one connection. The mock brokers decode requests with strom-wire and
//! answer from a small shared state, so the client's routing, retries and correlation
//! are tested on real sockets without a Raft cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strom_client::{Client, ClientConfig, OffsetSpec, ProduceOptions, ProduceRecord};
use strom_wire::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use strom_wire::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use strom_wire::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use strom_wire::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use strom_wire::kafka_protocol::messages::{
    BrokerId, DescribeGroupsResponse, FindCoordinatorResponse, ListOffsetsResponse,
    MetadataResponse, ProduceResponse, RequestKind, ResponseKind, TopicName,
    find_coordinator_response::Coordinator,
};
use strom_wire::kafka_protocol::protocol::StrBytes;
use strom_wire::{ErrorCode, api_versions_response, decode_request, encode_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOPIC: &str = "moving";
const GROUP: &str = "wanderers";

/// What both mock brokers agree on.
#[derive(Debug, Default)]
struct Cluster {
    ports: [AtomicI32; 2],
    leader: AtomicI32,
    coordinator: AtomicI32,
    /// Produce requests each node received.
    produces: [AtomicUsize; 2],
    describes: [AtomicUsize; 2],
    /// Metadata answers still to give without a leader (an election in progress).
    electing: AtomicUsize,
}

async fn start_cluster() -> Arc<Cluster> {
    let cluster = Arc::new(Cluster::default());
    cluster.leader.store(1, Ordering::SeqCst);
    cluster.coordinator.store(1, Ordering::SeqCst);
    for node in 1..=2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        cluster.ports[node as usize - 1].store(
            listener.local_addr().unwrap().port() as i32,
            Ordering::SeqCst,
        );
        let cluster = cluster.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(node, socket, cluster.clone()));
            }
        });
    }
    cluster
}

/// One connection: every request is answered by its own task (ListOffsets after a delay
/// that makes later requests overtake earlier ones), through one writer.
async fn serve(node: i32, socket: tokio::net::TcpStream, cluster: Arc<Cluster>) {
    let (mut read, mut write) = socket.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let mut frame = (msg.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&msg);
            if write.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    loop {
        let Ok(len) = read.read_i32().await else {
            return;
        };
        let mut frame = vec![0; len as usize];
        if read.read_exact(&mut frame).await.is_err() {
            return;
        }
        let req = decode_request(Bytes::from(frame)).unwrap();
        let (tx, cluster) = (tx.clone(), cluster.clone());
        tokio::spawn(async move {
            let version = req.header.request_api_version;
            let correlation_id = req.header.correlation_id;
            let body = answer(node, req.body, &cluster).await;
            let _ = tx.send(encode_response(correlation_id, version, &body).unwrap());
        });
    }
}

async fn answer(node: i32, body: RequestKind, cluster: &Cluster) -> ResponseKind {
    let i = node as usize - 1;
    match body {
        RequestKind::ApiVersions(_) => {
            ResponseKind::ApiVersions(api_versions_response(ErrorCode::None))
        }
        RequestKind::Metadata(_) => {
            let brokers = (1..=2)
                .map(|n| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(n))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(cluster.ports[n as usize - 1].load(Ordering::SeqCst))
                })
                .collect();
            let electing = cluster
                .electing
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let leader = if electing {
                -1
            } else {
                cluster.leader.load(Ordering::SeqCst)
            };
            let partition = MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(leader))
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(leader)]);
            ResponseKind::Metadata(
                MetadataResponse::default()
                    .with_brokers(brokers)
                    .with_controller_id(BrokerId(1))
                    .with_topics(vec![
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
                            .with_partitions(vec![partition]),
                    ]),
            )
        }
        RequestKind::Produce(_) => {
            let n = cluster.produces[i].fetch_add(1, Ordering::SeqCst);
            let code = if cluster.leader.load(Ordering::SeqCst) != node {
                ErrorCode::NotLeaderOrFollower
            } else if node == 1 && n == 0 {
                // Leadership moves to node 2 while this request is handled.
                cluster.leader.store(2, Ordering::SeqCst);
                ErrorCode::NotLeaderOrFollower
            } else {
                ErrorCode::None
            };
            ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
                TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partition_responses(vec![
                        PartitionProduceResponse::default()
                            .with_index(0)
                            .with_error_code(code.code())
                            .with_base_offset(if code == ErrorCode::None { 42 } else { -1 }),
                    ]),
            ]))
        }
        RequestKind::FindCoordinator(_) => {
            let c = cluster.coordinator.load(Ordering::SeqCst);
            let port = cluster.ports[c as usize - 1].load(Ordering::SeqCst);
            ResponseKind::FindCoordinator(FindCoordinatorResponse::default().with_coordinators(
                vec![
                    Coordinator::default()
                        .with_key(StrBytes::from_static_str(GROUP))
                        .with_node_id(BrokerId(c))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(port),
                ],
            ))
        }
        RequestKind::DescribeGroups(_) => {
            let n = cluster.describes[i].fetch_add(1, Ordering::SeqCst);
            let code = if cluster.coordinator.load(Ordering::SeqCst) != node {
                ErrorCode::NotCoordinator
            } else if node == 1 && n == 0 {
                cluster.coordinator.store(2, Ordering::SeqCst);
                ErrorCode::NotCoordinator
            } else {
                ErrorCode::None
            };
            ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(vec![
                    DescribedGroup::default()
                        .with_error_code(code.code())
                        .with_group_id(strom_wire::kafka_protocol::messages::GroupId(
                            StrBytes::from_static_str(GROUP),
                        ))
                        .with_group_state(StrBytes::from_string(format!("Empty@{node}"))),
                ]))
        }
        RequestKind::ListOffsets(r) => {
            let ts = r.topics[0].partitions[0].timestamp;
            // Later requests (higher timestamps) are answered sooner.
            tokio::time::sleep(Duration::from_millis(200u64.saturating_sub(ts as u64 * 4))).await;
            ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(vec![
                ListOffsetsTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(vec![
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(0)
                            .with_offset(ts * 10),
                    ]),
            ]))
        }
        other => panic!("the mock does not answer {other:?}"),
    }
}

async fn client(cluster: &Cluster) -> Client {
    let port = cluster.ports[0].load(Ordering::SeqCst);
    let mut config = ClientConfig::new(&format!("127.0.0.1:{port}"));
    config.retry_backoff = Duration::from_millis(5);
    Client::connect(config).await.unwrap()
}

#[tokio::test]
async fn produce_follows_the_leader_to_another_broker() {
    let cluster = start_cluster().await;
    let client = client(&cluster).await;
    let record = ProduceRecord {
        value: Some(b"v".to_vec()),
        ..ProduceRecord::default()
    };
    let produced = client
        .produce(TOPIC, 0, &[record], ProduceOptions::default())
        .await
        .unwrap();
    assert_eq!(produced.base_offset, Some(42));
    // Refused once by node 1, then sent to node 2 after a metadata refresh.
    assert_eq!(cluster.produces[0].load(Ordering::SeqCst), 1);
    assert_eq!(cluster.produces[1].load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn group_requests_follow_the_coordinator() {
    let cluster = start_cluster().await;
    let client = client(&cluster).await;
    let g = client.describe_group(GROUP).await.unwrap();
    assert_eq!(g.state, "Empty@2");
    assert_eq!(cluster.describes[0].load(Ordering::SeqCst), 1);
    assert_eq!(cluster.describes[1].load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn pipelined_answers_out_of_order_reach_their_requests() {
    let cluster = start_cluster().await;
    let client = client(&cluster).await;
    let mut tasks = tokio::task::JoinSet::new();
    for ts in 1..=40i64 {
        let client = client.clone();
        tasks.spawn(async move {
            let got = client
                .list_offsets(TOPIC, &[0], OffsetSpec::Timestamp(ts))
                .await
                .unwrap();
            (ts, got[&0])
        });
    }
    let mut seen = 0;
    while let Some(r) = tasks.join_next().await {
        let (ts, offset) = r.unwrap();
        assert_eq!(offset, ts * 10);
        seen += 1;
    }
    assert_eq!(seen, 40);
}

#[tokio::test]
async fn a_partition_without_a_leader_is_waited_for() {
    let cluster = start_cluster().await;
    let client = client(&cluster).await;
    client.invalidate_topic(TOPIC);
    cluster.electing.store(2, Ordering::SeqCst);
    let got = client
        .list_offsets(TOPIC, &[0], OffsetSpec::Timestamp(50))
        .await
        .unwrap();
    assert_eq!(got[&0], 500);
    assert_eq!(cluster.electing.load(Ordering::SeqCst), 0);
}
