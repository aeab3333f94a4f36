//! OffsetCommit, OffsetFetch and OffsetDelete: committed positions of consumer groups,
//! stored by the coordinator in `__consumer_offsets`.

use std::collections::HashMap;
use std::sync::Arc;

use strom_group::{
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic, OffsetDeleteRequest,
    OffsetDeleteTopic, OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic,
    OffsetFetchTopicResponse, Response as GroupResponse,
};
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use strom_wire::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use strom_wire::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use strom_wire::kafka_protocol::messages::{
    GroupId, OffsetCommitRequest as WireCommit, OffsetCommitResponse,
    OffsetDeleteRequest as WireOffsetDelete, OffsetDeleteResponse, OffsetFetchRequest as WireFetch,
    OffsetFetchResponse, ResponseKind,
};

use super::groups::{LOST, call, opt_str_bytes, string};
use super::{Reply, str_bytes, topic_name};
use crate::broker::Broker;

pub(super) fn offset_commit(broker: &Arc<Broker>, r: WireCommit, version: i16) -> Reply {
    // The request's order, which the answer keeps; unknown partitions are answered here
    // and never reach the coordinator.
    let order: Vec<(String, Vec<(i32, bool)>)> = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        broker.topics().has_partition(&name, p.partition_index),
                    )
                })
                .collect();
            (name, parts)
        })
        .collect();
    let topics = r
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .filter(|p| broker.topics().has_partition(&name, p.partition_index))
                .map(|p| OffsetCommitPartition {
                    partition_index: p.partition_index,
                    committed_offset: p.committed_offset,
                    committed_leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    committed_metadata: p.committed_metadata.map(|m| m.to_string()),
                })
                .collect();
            OffsetCommitTopic { name, partitions }
        })
        .filter(|t| !t.partitions.is_empty())
        .collect();
    let req = OffsetCommitRequest {
        group_id: string(&r.group_id.0),
        generation_id_or_member_epoch: r.generation_id_or_member_epoch,
        member_id: string(&r.member_id),
        group_instance_id: r.group_instance_id.map(|s| s.to_string()),
        retention_time_ms: if version <= 4 {
            r.retention_time_ms
        } else {
            -1
        },
        topics,
    };
    let delivery = super::delivery::PendingCommit::new(broker, &req);
    call(
        broker,
        |c, id, now| c.offset_commit(id, req, now),
        move |resp| {
            let errors: HashMap<(String, i32), ErrorCode> = match resp {
                Some(GroupResponse::OffsetCommit(c)) => c
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        t.partitions
                            .into_iter()
                            .map(move |p| ((t.name.clone(), p.partition_index), p.error))
                    })
                    .collect(),
                _ => HashMap::new(),
            };
            delivery.answered(&errors);
            let topics = order
                .into_iter()
                .map(|(name, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(p, known)| {
                            let error = if known {
                                errors.get(&(name.clone(), p)).copied().unwrap_or(LOST)
                            } else {
                                ErrorCode::UnknownTopicOrPartition
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(error.code())
                        })
                        .collect();
                    OffsetCommitResponseTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect();
            ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
        },
    )
}

pub(super) fn offset_fetch(broker: &Arc<Broker>, r: WireFetch, version: i16) -> Reply {
    let groups: Vec<OffsetFetchGroup> = if version >= 8 {
        r.groups
            .into_iter()
            .map(|g| OffsetFetchGroup {
                group_id: string(&g.group_id.0),
                topics: g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| OffsetFetchTopic {
                            name: t.name.0.to_string(),
                            partition_indexes: t.partition_indexes,
                        })
                        .collect()
                }),
            })
            .collect()
    } else {
        vec![OffsetFetchGroup {
            group_id: string(&r.group_id.0),
            topics: r.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| OffsetFetchTopic {
                        name: t.name.0.to_string(),
                        partition_indexes: t.partition_indexes,
                    })
                    .collect()
            }),
        }]
    };
    // v1 has no group-level error: it is reported in every requested partition.
    let requested = groups.first().and_then(|g| g.topics.clone());
    let req = OffsetFetchRequest {
        groups,
        require_stable: version >= 7 && r.require_stable,
    };
    call(
        broker,
        |c, id, now| c.offset_fetch(id, req, now),
        move |resp| {
            let groups = match resp {
                Some(GroupResponse::OffsetFetch(f)) => f.groups,
                _ => vec![],
            };
            let epoch = |e: i32| if version >= 5 { e } else { -1 };
            if version >= 8 {
                let groups = groups
                    .into_iter()
                    .map(|g| {
                        OffsetFetchResponseGroup::default()
                            .with_group_id(GroupId(str_bytes(g.group_id)))
                            .with_error_code(g.error.code())
                            .with_topics(
                                g.topics
                                    .into_iter()
                                    .map(|t| {
                                        OffsetFetchResponseTopics::default()
                                            .with_name(topic_name(t.name))
                                            .with_partitions(
                                                t.partitions
                                                    .into_iter()
                                                    .map(|p| {
                                                        OffsetFetchResponsePartitions::default()
                                                            .with_partition_index(p.partition_index)
                                                            .with_committed_offset(
                                                                p.committed_offset,
                                                            )
                                                            .with_committed_leader_epoch(epoch(
                                                                p.committed_leader_epoch,
                                                            ))
                                                            .with_metadata(opt_str_bytes(
                                                                p.metadata,
                                                            ))
                                                            .with_error_code(p.error.code())
                                                    })
                                                    .collect(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                return ResponseKind::OffsetFetch(
                    OffsetFetchResponse::default().with_groups(groups),
                );
            }
            let (error, mut topics) = match groups.into_iter().next() {
                Some(g) => (g.error, g.topics),
                None => (LOST, vec![]),
            };
            if version < 2 && error != ErrorCode::None {
                topics = legacy_error_topics(requested.unwrap_or_default(), error);
            }
            let topics = topics
                .into_iter()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(t.name))
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_committed_offset(p.committed_offset)
                                        .with_committed_leader_epoch(epoch(
                                            p.committed_leader_epoch,
                                        ))
                                        .with_metadata(opt_str_bytes(p.metadata))
                                        .with_error_code(p.error.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            ResponseKind::OffsetFetch(
                OffsetFetchResponse::default()
                    .with_error_code(if version >= 2 { error.code() } else { 0 })
                    .with_topics(topics),
            )
        },
    )
}

/// OffsetFetch v1's way of reporting a group error: in each requested partition.
fn legacy_error_topics(
    requested: Vec<OffsetFetchTopic>,
    error: ErrorCode,
) -> Vec<OffsetFetchTopicResponse> {
    requested
        .into_iter()
        .map(|t| OffsetFetchTopicResponse {
            name: t.name,
            partitions: t
                .partition_indexes
                .into_iter()
                .map(|p| strom_group::OffsetFetchPartitionResponse {
                    partition_index: p,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error,
                })
                .collect(),
        })
        .collect()
}

pub(super) fn offset_delete(broker: &Arc<Broker>, r: WireOffsetDelete) -> Reply {
    let req = OffsetDeleteRequest {
        group_id: string(&r.group_id.0),
        topics: r
            .topics
            .into_iter()
            .map(|t| OffsetDeleteTopic {
                name: t.name.0.to_string(),
                partition_indexes: t.partitions.iter().map(|p| p.partition_index).collect(),
            })
            .collect(),
    };
    call(
        broker,
        |c, id, now| c.offset_delete(id, req, now),
        |resp| {
            let Some(GroupResponse::OffsetDelete(d)) = resp else {
                return ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(LOST.code()),
                );
            };
            ResponseKind::OffsetDelete(
                OffsetDeleteResponse::default()
                    .with_error_code(d.error.code())
                    .with_topics(
                        d.topics
                            .into_iter()
                            .map(|t| {
                                OffsetDeleteResponseTopic::default()
                                    .with_name(topic_name(t.name))
                                    .with_partitions(
                                        t.partitions
                                            .into_iter()
                                            .map(|p| {
                                                OffsetDeleteResponsePartition::default()
                                                    .with_partition_index(p.partition_index)
                                                    .with_error_code(p.error.code())
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            )
        },
    )
}
