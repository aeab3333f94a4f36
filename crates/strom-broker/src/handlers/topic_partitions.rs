//! DescribeTopicPartitions (KIP-966): the partitions of named topics, or of all, in pages.
//! Kafka 4's Admin client and `kafka-topics --describe` use it instead of Metadata.
//!
//! Topics are answered in name order from the cursor's topic and partition, at most
//! `response_partition_limit` partitions per answer (and never more than
//! [`MAX_PARTITIONS`], Kafka's `max.request.partition.size.limit`); when partitions are
//! left, `next_cursor` names the first of them. A requested topic that does not exist is
//! answered with UNKNOWN_TOPIC_OR_PARTITION and is never created.
//!
//! Strom's replicas are Raft voters: a partition has no eligible leader replicas beyond
//! its in-sync ones (KIP-966's ELR), so both ELR lists are empty, as Kafka's are for a
//! healthy partition.

use std::collections::BTreeSet;
use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use strom_wire::kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};

use super::metadata::{OPERATIONS_OMITTED, partition_view};
use super::topic_name;
use crate::broker::Broker;

/// The most partitions one answer holds, whatever the request asks for.
pub(super) const MAX_PARTITIONS: i32 = 2000;

pub(super) fn describe_topic_partitions(
    broker: &Arc<Broker>,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = req.topics.is_empty();
    let names: BTreeSet<String> = if all {
        broker
            .topics()
            .list()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    let (from_topic, from_partition) = match &req.cursor {
        Some(c) => (c.topic_name.0.to_string(), c.partition_index.max(0)),
        None => (String::new(), 0),
    };
    if req.cursor.is_some() && !all && !names.contains(&from_topic) {
        return DescribeTopicPartitionsResponse::default().with_topics(vec![
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_name(Some(topic_name(from_topic)))
                .with_topic_authorized_operations(OPERATIONS_OMITTED),
        ]);
    }
    let limit = match req.response_partition_limit {
        n if n > 0 => n.min(MAX_PARTITIONS),
        _ => MAX_PARTITIONS,
    };
    let mut left = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.range(from_topic.clone()..) {
        let Some(meta) = broker.topics().get(name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                    .with_name(Some(topic_name(name.clone())))
                    .with_topic_authorized_operations(OPERATIONS_OMITTED),
            );
            continue;
        };
        let first = if *name == from_topic {
            from_partition
        } else {
            0
        };
        if first >= meta.partitions {
            continue;
        }
        if left == 0 {
            next_cursor = Some(cursor(name, first));
            break;
        }
        let end = meta.partitions.min(first.saturating_add(left));
        let partitions = (first..end)
            .map(|p| {
                let v = partition_view(broker, &meta, p);
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(v.error.code())
                    .with_partition_index(v.index)
                    .with_leader_id(BrokerId(v.leader))
                    .with_leader_epoch(v.leader_epoch)
                    .with_replica_nodes(v.replicas)
                    .with_isr_nodes(v.isr)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        left -= end - first;
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name.clone())))
                .with_topic_id(meta.id)
                .with_is_internal(meta.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(OPERATIONS_OMITTED),
        );
        if end < meta.partitions {
            next_cursor = Some(cursor(name, end));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(topic_name(topic.to_string()))
        .with_partition_index(partition)
}
