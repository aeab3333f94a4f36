//! Topic administration: create and delete topics, describe and incrementally alter
//! their configs. Topic changes go to the controller named by the metadata.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::Client;
use crate::connection::Connection;
use crate::error::ClientError;

/// Kafka's NOT_CONTROLLER: the controller moved; ask the metadata again.
const NOT_CONTROLLER: i16 = 41;
/// ConfigResource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 lets the broker choose.
    pub partitions: i32,
    /// -1 lets the broker choose.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// One config entry of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Whether the value was set for this resource rather than inherited.
    pub is_default: bool,
    pub sensitive: bool,
    /// Kafka's config source: 1 topic, 4 static broker, 5 default, ...
    pub source: i8,
}

/// One change of an incremental config alteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set(String, String),
    /// Back to the inherited default.
    Delete(String),
}

impl Client {
    async fn controller(&self) -> Result<Arc<Connection>, ClientError> {
        let meta = self.metadata(Some(&[]), false).await?;
        if meta.controller_id >= 0 {
            self.broker(meta.controller_id).await
        } else {
            self.any_broker().await
        }
    }

    /// Creates one topic. The broker's refusal (exists, bad replication factor, bad
    /// config) comes back as the Kafka error it sent.
    /// Creates a topic and returns its partition count as the controller created it
    /// (CreateTopics v5+ answers it, so no Metadata request has to find a topic that
    /// Kafka's other brokers may not know yet); `None` from an older broker.
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<Option<i32>, ClientError> {
        let req_topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
            .with_num_partitions(topic.partitions)
            .with_replication_factor(topic.replication_factor)
            .with_configs(
                topic
                    .configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            );
        let req = CreateTopicsRequest::default()
            .with_topics(vec![req_topic])
            .with_timeout_ms(self.config().request_timeout.as_millis() as i32);
        let mut attempt = 0;
        loop {
            let conn = self.controller().await?;
            let version = conn.version::<CreateTopicsRequest>()?;
            let resp = conn.send(&req, version).await?;
            let r = resp
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == topic.name)
                .ok_or_else(|| {
                    ClientError::Protocol(format!("no result for topic {}", topic.name))
                })?;
            if r.error_code == NOT_CONTROLLER && attempt < 3 {
                attempt += 1;
                continue;
            }
            ClientError::check(r.error_code, r.error_message.as_deref(), || {
                format!("create topic {}", topic.name)
            })?;
            self.invalidate_topic(&topic.name);
            return Ok((version >= 5 && r.num_partitions > 0).then_some(r.num_partitions));
        }
    }

    /// Deletes one topic.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), ClientError> {
        let name = TopicName(StrBytes::from_string(topic.to_owned()));
        for attempt in 0.. {
            let conn = self.controller().await?;
            let version = conn.version::<DeleteTopicsRequest>()?;
            let mut req = DeleteTopicsRequest::default()
                .with_timeout_ms(self.config().request_timeout.as_millis() as i32);
            if version >= 6 {
                req.topics = vec![DeleteTopicState::default().with_name(Some(name.clone()))];
            } else {
                req.topic_names = vec![name.clone()];
            }
            let resp = conn.send(&req, version).await?;
            let r = resp
                .responses
                .iter()
                .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
                .ok_or_else(|| ClientError::Protocol(format!("no result for topic {topic}")))?;
            if r.error_code == NOT_CONTROLLER && attempt < 3 {
                continue;
            }
            if r.error_code == strom_wire::ErrorCode::UnknownTopicOrPartition.code() {
                return Err(ClientError::UnknownTopic(topic.to_owned()));
            }
            ClientError::check(r.error_code, r.error_message.as_deref(), || {
                format!("delete topic {topic}")
            })?;
            break;
        }
        self.invalidate_topic(topic);
        Ok(())
    }

    /// Every config of `topic`, sorted by name.
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let conn = self.any_broker().await?;
        let version = conn.version::<DescribeConfigsRequest>()?;
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                // None asks for every key (the default is an empty list: none).
                .with_configuration_keys(None),
        ]);
        let resp = conn.send(&req, version).await?;
        let r =
            resp.results.into_iter().next().ok_or_else(|| {
                ClientError::Protocol(format!("no config result for topic {topic}"))
            })?;
        if r.error_code == strom_wire::ErrorCode::UnknownTopicOrPartition.code() {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        ClientError::check(r.error_code, r.error_message.as_deref(), || {
            format!("describe configs of topic {topic}")
        })?;
        let mut out: Vec<ConfigEntry> = r
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                read_only: c.read_only,
                // Source 1 is DYNAMIC_TOPIC_CONFIG: set on this topic.
                is_default: c.config_source != 1,
                sensitive: c.is_sensitive,
                source: c.config_source,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Applies `changes` to `topic`'s configs with IncrementalAlterConfigs; keys not
    /// named keep their values.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        changes: &[ConfigChange],
    ) -> Result<(), ClientError> {
        let configs = changes
            .iter()
            .map(|c| match c {
                ConfigChange::Set(k, v) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(v.clone()))),
                ConfigChange::Delete(k) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(1),
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(configs),
        ]);
        let conn = self.controller().await?;
        let version = conn.version::<IncrementalAlterConfigsRequest>()?;
        let resp = conn.send(&req, version).await?;
        let r = resp.responses.first().ok_or_else(|| {
            ClientError::Protocol(format!("no alter-configs result for topic {topic}"))
        })?;
        if r.error_code == strom_wire::ErrorCode::UnknownTopicOrPartition.code() {
            return Err(ClientError::UnknownTopic(topic.to_owned()));
        }
        ClientError::check(r.error_code, r.error_message.as_deref(), || {
            format!("alter configs of topic {topic}")
        })
    }
}
