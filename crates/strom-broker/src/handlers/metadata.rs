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

/// FindCoordinator while there is no group or transaction coordinator yet: every key gets
/// COORDINATOR_NOT_AVAILABLE, which clients retry. librdkafka looks a coordinator up for
/// any consumer with a group.id, even one that only uses assign(); closing the connection
/// instead would fail whatever else that client has in flight on it.
pub fn find_coordinator(req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let code = ErrorCode::CoordinatorNotAvailable.code();
    let message = "consumer groups and transactions are not supported yet";
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
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect(),
        )
    } else {
        // Before v4 the single coordinator's fields sit at the top level.
        resp.with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(code)
            .with_error_message((version >= 1).then(|| str_bytes(message)))
    }
}
