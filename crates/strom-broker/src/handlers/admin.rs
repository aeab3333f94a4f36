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

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::topics::{TOPIC_CONFIGS, TopicError, TopicMeta};

/// Config source codes of Kafka's DescribeConfigs/CreateTopics responses.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// Replica assignments may only name this node: there is no other.
fn check_replicas(broker: &Broker, ids: impl IntoIterator<Item = i32>) -> Result<(), TopicError> {
    let node = broker.config.node_id;
    for id in ids {
        if id != node {
            return Err(TopicError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "broker {id} does not exist; this single-node cluster has only broker {node}"
                ),
            ));
        }
    }
    Ok(())
}

pub fn create_topics(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = (|| {
                if t.replication_factor != -1 && t.replication_factor != 1 {
                    return Err(TopicError::new(ErrorCode::InvalidReplicationFactor, format!("replication factor {} is larger than the 1 available broker", t.replication_factor)));
                }
                let mut partitions = t.num_partitions;
                if !t.assignments.is_empty() {
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return Err(TopicError::new(ErrorCode::InvalidRequest, "give either assignments or partitions and replication factor, not both"));
                    }
                    check_replicas(broker, t.assignments.iter().flat_map(|a| a.broker_ids.iter().map(|b| b.0)))?;
                    partitions = t.assignments.len() as i32;
                }
                let mut configs = BTreeMap::new();
                for c in &t.configs {
                    let value = c.value.as_ref().ok_or_else(|| TopicError::new(ErrorCode::InvalidConfig, format!("config '{}' has no value", c.name.as_str())))?;
                    configs.insert(c.name.to_string(), value.to_string());
                }
                broker.create_topic(&name, partitions, configs, req.validate_only)
            })();
            let base = CreatableTopicResult::default().with_name(topic_name(name.clone()));
            match result {
                Ok(meta) => base
                    .with_topic_id(meta.id)
                    .with_num_partitions(meta.partitions)
                    .with_replication_factor(1)
                    .with_configs((version >= 5).then(|| topic_configs(broker, &meta))),
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn topic_configs(broker: &Broker, meta: &TopicMeta) -> Vec<CreatableTopicConfigs> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let (value, source) = match meta.configs.get(d.name) {
                Some(v) => (v.clone(), SOURCE_TOPIC),
                None => (d.default_value(&broker.config), SOURCE_DEFAULT),
            };
            CreatableTopicConfigs::default()
                .with_name(str_bytes(d.name))
                .with_value(Some(str_bytes(value)))
                .with_config_source(source)
        })
        .collect()
}

pub fn delete_topics(broker: &Arc<Broker>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
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
    let mut deleted = Vec::new();
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| broker.topics.by_id(id).map(|m| m.name));
            let base = DeletableTopicResult::default().with_topic_id(id);
            let Some(name) = name else {
                return base
                    .with_error_code(ErrorCode::UnknownTopicId.code())
                    .with_error_message(Some(str_bytes(format!("no topic with id {id}"))));
            };
            let base = base.with_name(Some(topic_name(name.clone())));
            match broker.delete_topic(&name) {
                Ok(meta) => {
                    deleted.push(name);
                    base.with_topic_id(meta.id)
                }
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    // As Kafka does: committed offsets of a deleted topic are forgotten, so a topic
    // created again under the name starts without stale positions.
    if !deleted.is_empty() {
        broker.groups.topics_deleted(broker, &deleted);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = (|| {
                if let Some(assignments) = &t.assignments {
                    check_replicas(
                        broker,
                        assignments
                            .iter()
                            .flat_map(|a| a.broker_ids.iter().map(|b| b.0)),
                    )?;
                }
                broker.create_partitions(&name, t.count, req.validate_only)
            })();
            let base = CreatePartitionsTopicResult::default().with_name(t.name);
            match result {
                Ok(_) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
