//! CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use strom_wire::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use strom_wire::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use strom_wire::kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};

use strom_wire::kafka_protocol::messages::ResponseKind;
use strom_wire::kafka_protocol::messages::create_topics_request::CreatableTopic;

use super::{Reply, Response, str_bytes, topic_name};
use crate::broker::Broker;
use crate::errors::Failure;
use crate::topics::{TOPIC_CONFIGS, TopicMeta};

/// Config source codes of Kafka's DescribeConfigs/CreateTopics responses.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// CreateTopics: each topic is a command in the metadata log, answered once applied.
pub(super) fn create_topics(broker: &Arc<Broker>, req: CreateTopicsRequest, version: i16) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in req.topics {
            let name = t.name.0.to_string();
            let result = create_one(&broker, &t, req.validate_only).await;
            let base = CreatableTopicResult::default().with_name(topic_name(name.clone()));
            topics.push(match result {
                Ok(meta) => base
                    .with_topic_id(meta.id)
                    .with_num_partitions(meta.partitions)
                    .with_replication_factor(meta.replicas.first().map_or(1, |r| r.len() as i16))
                    .with_configs((version >= 5).then(|| topic_configs(&broker, &meta))),
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            });
        }
        Response::Kind(ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(topics),
        ))
    }))
}

async fn create_one(
    broker: &Broker,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<Arc<TopicMeta>, Failure> {
    let assignments = if t.assignments.is_empty() {
        None
    } else {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(Failure::new(
                ErrorCode::InvalidRequest,
                "give either assignments or partitions and replication factor, not both",
            ));
        }
        let mut a: Vec<_> = t.assignments.iter().collect();
        a.sort_by_key(|x| x.partition_index);
        if a.iter()
            .enumerate()
            .any(|(i, x)| x.partition_index != i as i32)
        {
            return Err(Failure::new(
                ErrorCode::InvalidReplicaAssignment,
                "assignments must cover partitions 0..n once each",
            ));
        }
        Some(
            a.iter()
                .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
        )
    };
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            Failure::new(
                ErrorCode::InvalidConfig,
                format!("config '{}' has no value", c.name.as_str()),
            )
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    broker
        .control()
        .create_topic(
            t.name.0.as_str(),
            t.num_partitions,
            i32::from(t.replication_factor),
            assignments,
            configs,
            validate_only,
        )
        .await
}

fn topic_configs(broker: &Broker, meta: &TopicMeta) -> Vec<CreatableTopicConfigs> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let (value, set) = meta.config_value(d, broker.config());
            CreatableTopicConfigs::default()
                .with_name(str_bytes(d.name))
                .with_value(Some(str_bytes(value)))
                .with_read_only(d.read_only())
                .with_config_source(if set { SOURCE_TOPIC } else { SOURCE_DEFAULT })
        })
        .collect()
}

pub(super) fn delete_topics(broker: &Arc<Broker>, req: DeleteTopicsRequest) -> Reply {
    // v0-v5 name topics in `topic_names`; v6 in `topics`, by name or id.
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id)),
    );
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut responses = Vec::with_capacity(targets.len());
        for (name, id) in targets {
            let name = name.or_else(|| broker.topics().by_id(id).map(|m| m.name.clone()));
            let base = DeletableTopicResult::default().with_topic_id(id);
            let Some(name) = name else {
                responses.push(
                    base.with_error_code(ErrorCode::UnknownTopicId.code())
                        .with_error_message(Some(str_bytes(format!("no topic with id {id}")))),
                );
                continue;
            };
            let base = base.with_name(Some(topic_name(name.clone())));
            // Committed offsets of a deleted topic are forgotten (as Kafka does) when
            // the deletion is applied, on every node.
            responses.push(match broker.control().delete_topic(&name).await {
                Ok(meta) => base.with_topic_id(meta.id),
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            });
        }
        Response::Kind(ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(responses),
        ))
    }))
}

pub(super) fn create_partitions(broker: &Arc<Broker>, req: CreatePartitionsRequest) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(req.topics.len());
        for t in req.topics {
            let name = t.name.0.to_string();
            let result = if t.assignments.is_some() {
                Err(Failure::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "explicit assignments for new partitions are not supported; Strom spreads them",
                ))
            } else {
                broker
                    .control()
                    .create_partitions(&name, t.count, req.validate_only)
                    .await
            };
            let base = CreatePartitionsTopicResult::default().with_name(t.name);
            results.push(match result {
                Ok(_) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            });
        }
        Response::Kind(ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(results),
        ))
    }))
}
