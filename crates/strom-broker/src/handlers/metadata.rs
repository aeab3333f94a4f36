//! Metadata (with topic auto-creation), DescribeCluster and FindCoordinator: the
//! cluster's brokers, and which of them leads each partition and coordinates each group.

use std::collections::HashSet;
use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use strom_wire::kafka_protocol::messages::find_coordinator_response::Coordinator;
use strom_wire::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use strom_wire::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use strom_wire::kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};

use strom_log::TopicPartition;
use strom_wire::kafka_protocol::messages::ResponseKind;

use super::{Reply, Response, str_bytes, topic_name};
use crate::broker::Broker;
use crate::groups::OFFSETS_TOPIC;
use crate::topics::{TopicMeta, validate_topic_name};
use crate::txns::TXN_TOPIC;

/// Authorized-operations fields when the client did not ask for them.
pub(super) const OPERATIONS_OMITTED: i32 = i32::MIN;

/// Metadata: the registered brokers, the controller (the metadata group's leader) and
/// the topics asked for, created first when auto-creation applies (which waits for the
/// metadata log, hence an answer that comes later).
pub(super) fn metadata(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        Response::Kind(ResponseKind::Metadata(
            metadata_response(&broker, req, version).await,
        ))
    }))
}

async fn metadata_response(
    broker: &Arc<Broker>,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let wanted: Option<Vec<_>> = match req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    // Auto-creation: always allowed before v4, on request from v4.
    let may_create =
        broker.config().auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let topics = match wanted {
        None => broker
            .topics()
            .list()
            .iter()
            .map(|t| describe_topic(broker, t))
            .collect(),
        Some(mut list) => {
            // A topic named twice is described once, as Kafka does (it reads the names
            // into a set): otherwise one name repeated 100k times in a 0.3 MB request
            // makes a 261 MB answer.
            //
            // A topic is asked for by id when the id is set (v10+; the Java client then
            // sends the name as its default, "", not null), by name otherwise, as Kafka
            // does.
            let by_id = |t: &MetadataRequestTopic| !t.topic_id.is_nil();
            let mut names = HashSet::new();
            let mut ids = HashSet::new();
            list.retain(|t| {
                if by_id(t) {
                    ids.insert(t.topic_id)
                } else {
                    names.insert(t.name.as_ref().map(|n| n.0.clone()))
                }
            });
            drop((names, ids));
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let name = if by_id(&t) { None } else { t.name };
                out.push(match (name, t.topic_id.is_nil()) {
                    (None, true) => MetadataResponseTopic::default()
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                    (Some(name), _) => {
                        let name = name.0.to_string();
                        match broker.topics().get(&name) {
                            Some(meta) => describe_topic(broker, &meta),
                            None => match validate_topic_name(&name) {
                                Err(_) => error_topic(&name, ErrorCode::InvalidTopicException),
                                Ok(()) if may_create => {
                                    match broker.control().auto_create_topic(&name).await {
                                        Ok(meta) => describe_topic(broker, &meta),
                                        Err(e) => error_topic(&name, e.code),
                                    }
                                }
                                Ok(()) => error_topic(&name, ErrorCode::UnknownTopicOrPartition),
                            },
                        }
                    }
                    (None, false) => match broker.topics().by_id(t.topic_id) {
                        Some(meta) => describe_topic(broker, &meta),
                        None => MetadataResponseTopic::default()
                            .with_error_code(ErrorCode::UnknownTopicId.code())
                            .with_topic_id(t.topic_id)
                            .with_topic_authorized_operations(OPERATIONS_OMITTED),
                    },
                });
            }
            out
        }
    };
    let brokers = known_brokers(broker)
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(str_bytes(host))
                .with_port(port)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(broker.control().cluster_id())))
        .with_controller_id(BrokerId(controller(broker)))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// The brokers clients may connect to: every registered one (this one too, even before
/// its registration is committed).
fn known_brokers(broker: &Broker) -> Vec<(i32, String, i32)> {
    let mut all: Vec<(i32, String, i32)> = broker
        .control()
        .brokers()
        .into_iter()
        .map(|(id, a)| (id, a.host, a.port))
        .collect();
    if !all.iter().any(|b| b.0 == broker.config().node_id) {
        let (host, port) = broker.config().advertised();
        all.push((broker.config().node_id, host, i32::from(port)));
        all.sort();
    }
    all
}

/// The controller clients are told about: the metadata group's leader (any broker
/// accepts admin requests and forwards them; this one while no leader is known).
fn controller(broker: &Broker) -> i32 {
    broker
        .control()
        .controller()
        .unwrap_or(broker.config().node_id)
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(Some(topic_name(name)))
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// What Metadata and DescribeTopicPartitions say about one partition.
pub(super) struct PartitionView {
    pub(super) index: i32,
    /// NONE, or LEADER_NOT_AVAILABLE while no leader is known.
    pub(super) error: ErrorCode,
    /// -1 (and epoch -1) while no leader is known.
    pub(super) leader: i32,
    pub(super) leader_epoch: i32,
    pub(super) replicas: Vec<BrokerId>,
    pub(super) isr: Vec<BrokerId>,
}

pub(super) fn partition_view(broker: &Broker, meta: &TopicMeta, p: i32) -> PartitionView {
    let tp = TopicPartition::new(meta.name.clone(), p);
    let replicas: Vec<BrokerId> = meta.replicas_of(p).iter().map(|&r| BrokerId(r)).collect();
    let isr: Vec<BrokerId> = broker
        .control()
        .in_sync_replicas(&tp)
        .map(|v| v.into_iter().map(BrokerId).collect())
        .unwrap_or_else(|| replicas.clone());
    // Neither the local replica nor a fresh report from a leader (leaders.rs) may know
    // one: an election is under way or no majority is up.
    let (error, leader, leader_epoch) = match broker.control().leader_of(&tp) {
        Some((leader, epoch)) => (ErrorCode::None, leader, epoch),
        None => (ErrorCode::LeaderNotAvailable, -1, -1),
    };
    PartitionView {
        index: p,
        error,
        leader,
        leader_epoch,
        replicas,
        isr,
    }
}

fn describe_topic(broker: &Broker, meta: &TopicMeta) -> MetadataResponseTopic {
    let partitions = (0..meta.partitions)
        .map(|p| {
            let v = partition_view(broker, meta, p);
            MetadataResponsePartition::default()
                .with_error_code(v.error.code())
                .with_partition_index(v.index)
                .with_leader_id(BrokerId(v.leader))
                .with_leader_epoch(v.leader_epoch)
                .with_replica_nodes(v.replicas)
                .with_isr_nodes(v.isr)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(meta.name.clone())))
        .with_topic_id(meta.id)
        .with_is_internal(meta.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

pub(super) fn describe_cluster(
    broker: &Arc<Broker>,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_endpoint_type(1)
        .with_cluster_id(str_bytes(broker.control().cluster_id()))
        .with_controller_id(BrokerId(controller(broker)))
        .with_brokers(
            known_brokers(broker)
                .into_iter()
                .map(|(id, host, port)| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(id))
                        .with_host(str_bytes(host))
                        .with_port(port)
                })
                .collect(),
        )
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// Coordinator key types of FindCoordinator.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets`
/// partition (COORDINATOR_NOT_AVAILABLE, which clients retry, while there is none or
/// the topic does not exist yet). Transactions are not
/// supported, so a transaction coordinator is COORDINATOR_NOT_AVAILABLE (which clients
/// retry) rather than a closed connection, which would fail whatever else that client has
/// in flight on it.
pub(super) fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let brokers = known_brokers(broker);
    let partitions = broker.control().offsets_topic_partitions();
    let leader_of = |tp: &TopicPartition, electing: &'static str| {
        let leader = broker.control().leader_of(tp).map(|(l, _)| l);
        match leader.and_then(|l| brokers.iter().find(|b| b.0 == l)) {
            Some((id, host, port)) => (*id, host.clone(), *port, ErrorCode::None, None),
            None => (
                -1,
                String::new(),
                -1,
                ErrorCode::CoordinatorNotAvailable,
                Some(electing),
            ),
        }
    };
    let answer = |key_type: i8, key: &str| -> (i32, String, i32, ErrorCode, Option<&'static str>) {
        match key_type {
            KEY_GROUP => {
                let tp =
                    TopicPartition::new(OFFSETS_TOPIC, strom_group::partition_for(key, partitions));
                leader_of(&tp, "the group's coordinator is being elected")
            }
            KEY_TRANSACTION if key.is_empty() => (
                -1,
                String::new(),
                -1,
                ErrorCode::InvalidRequest,
                Some("an empty transactional id has no coordinator"),
            ),
            KEY_TRANSACTION => {
                // Created by the first transactional producer, as Kafka does.
                if !broker.control().ensure_transaction_topic() {
                    return (
                        -1,
                        String::new(),
                        -1,
                        ErrorCode::CoordinatorNotAvailable,
                        Some("__transaction_state is being created"),
                    );
                }
                let tp = TopicPartition::new(TXN_TOPIC, broker.txns().partition_for(key));
                leader_of(&tp, "the transaction coordinator is being elected")
            }
            _ => (
                -1,
                String::new(),
                -1,
                ErrorCode::InvalidRequest,
                Some("unknown coordinator key type"),
            ),
        }
    };
    let resp = FindCoordinatorResponse::default();
    if version >= 4 {
        let keys = if req.coordinator_keys.is_empty() {
            vec![req.key]
        } else {
            req.coordinator_keys
        };
        resp.with_coordinators(
            keys.into_iter()
                .map(|key| {
                    let (node_id, host, port, code, message) = answer(req.key_type, key.as_str());
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(node_id))
                        .with_host(str_bytes(host))
                        .with_port(port)
                        .with_error_code(code.code())
                        .with_error_message(message.map(str_bytes))
                })
                .collect(),
        )
    } else {
        // Before v4 the single coordinator's fields sit at the top level.
        let (node_id, host, port, code, message) = answer(req.key_type, req.key.as_str());
        resp.with_node_id(BrokerId(node_id))
            .with_host(str_bytes(host))
            .with_port(port)
            .with_error_code(code.code())
            .with_error_message(message.filter(|_| version >= 1).map(str_bytes))
    }
}
