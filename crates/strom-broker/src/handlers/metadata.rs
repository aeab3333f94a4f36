//! Metadata (with topic auto-creation) and DescribeCluster: who the broker is and which
//! topics and partitions it leads.

use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use strom_wire::kafka_protocol::messages::find_coordinator_response::Coordinator;
use strom_wire::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use strom_wire::kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse,
};

use super::{str_bytes, topic_name};
use crate::broker::{Broker, LEADER_EPOCH};
use crate::topics::{TopicMeta, validate_topic_name};

/// Authorized-operations fields when the client did not ask for them.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub fn metadata(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let (host, port) = broker.config.advertised();
    let node = BrokerId(broker.config.node_id);
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let wanted: Option<Vec<_>> = match req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    // Auto-creation: always allowed before v4, on request from v4.
    let may_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let topics = match wanted {
        None => broker
            .topics
            .list()
            .iter()
            .map(|t| describe_topic(broker, t))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|t| match t.name {
                Some(name) => {
                    let name = name.0.to_string();
                    match broker.topics.get(&name) {
                        Some(meta) => describe_topic(broker, &meta),
                        None => match validate_topic_name(&name) {
                            Err(_) => error_topic(&name, ErrorCode::InvalidTopicException),
                            Ok(()) if may_create => match broker.auto_create_topic(&name) {
                                Ok(meta) => describe_topic(broker, &meta),
                                Err(e) => error_topic(&name, e.code),
                            },
                            Ok(()) => error_topic(&name, ErrorCode::UnknownTopicOrPartition),
                        },
                    }
                }
                None => match broker.topics.by_id(t.topic_id) {
                    Some(meta) => describe_topic(broker, &meta),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ErrorCode::UnknownTopicId.code())
                        .with_topic_id(t.topic_id)
                        .with_topic_authorized_operations(OPERATIONS_OMITTED),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node)
                .with_host(str_bytes(host))
                .with_port(port as i32),
        ])
        .with_cluster_id(Some(str_bytes(broker.node.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(Some(topic_name(name)))
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

fn describe_topic(broker: &Broker, meta: &TopicMeta) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..meta.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(LEADER_EPOCH)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(meta.name.clone())))
        .with_topic_id(meta.id)
        .with_is_internal(meta.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

pub fn describe_cluster(
    broker: &Arc<Broker>,
    _req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let (host, port) = broker.config.advertised();
    let node = BrokerId(broker.config.node_id);
    DescribeClusterResponse::default()
        .with_endpoint_type(1)
        .with_cluster_id(str_bytes(broker.node.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(str_bytes(host))
                .with_port(port as i32),
        ])
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

/// Coordinator key types of FindCoordinator.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// FindCoordinator: this node coordinates every consumer group. Transactions are not
/// supported, so a transaction coordinator is COORDINATOR_NOT_AVAILABLE (which clients
/// retry) rather than a closed connection, which would fail whatever else that client has
/// in flight on it.
pub fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.config.advertised();
    let node = broker.config.node_id;
    let answer = |key_type: i8| -> (i32, String, i32, ErrorCode, Option<&'static str>) {
        match key_type {
            KEY_GROUP => (node, host.clone(), i32::from(port), ErrorCode::None, None),
            KEY_TRANSACTION => (
                -1,
                String::new(),
                -1,
                ErrorCode::CoordinatorNotAvailable,
                Some("transactions are not supported yet"),
            ),
            _ => (
                -1,
                String::new(),
                -1,
                ErrorCode::InvalidRequest,
                Some("unknown coordinator key type"),
            ),
        }
    };
    let (node_id, host, port, code, message) = answer(req.key_type);
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
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(node_id))
                        .with_host(str_bytes(host.clone()))
                        .with_port(port)
                        .with_error_code(code.code())
                        .with_error_message(message.map(str_bytes))
                })
                .collect(),
        )
    } else {
        // Before v4 the single coordinator's fields sit at the top level.
        resp.with_node_id(BrokerId(node_id))
            .with_host(str_bytes(host))
            .with_port(port)
            .with_error_code(code.code())
            .with_error_message(message.filter(|_| version >= 1).map(str_bytes))
    }
}
