//! CreateTopics v0-v1, DeleteTopics v0 (the response) and DescribeConfigs v0.
//!
//! ```text
//! CreateTopics v0-v1 request            CreateTopics v0-v1 response
//!   topics ARRAY of                       topics ARRAY of
//!     name               STRING             name           STRING
//!     num_partitions     INT32              error_code     INT16
//!     replication_factor INT16              error_message  NULLABLE_STRING  v1
//!     assignments ARRAY of                (throttle_time_ms came in v2)
//!       partition_index  INT32
//!       broker_ids       ARRAY of INT32   DeleteTopics v0 response
//!     configs ARRAY of                      responses ARRAY of
//!       name             STRING               name        STRING
//!       value            NULLABLE_STRING      error_code  INT16
//!   timeout_ms           INT32            (throttle_time_ms came in v1)
//!   validate_only        BOOLEAN  v1
//!
//! DescribeConfigs v0 request            DescribeConfigs v0 response
//!   resources ARRAY of                    throttle_time_ms INT32
//!     resource_type      INT8             results ARRAY of
//!     resource_name      STRING             error_code     INT16
//!     configuration_keys NULLABLE ARRAY     error_message  NULLABLE_STRING
//!                        of STRING          resource_type  INT8
//!                                           resource_name  STRING
//!                                           configs ARRAY of
//!                                             name         STRING
//!                                             value        NULLABLE_STRING
//!                                             read_only    BOOLEAN
//!                                             is_default   BOOLEAN  (v1: config_source)
//!                                             is_sensitive BOOLEAN
//! ```

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, TopicName,
};

use super::{Bad, elements, nullable_string, put_len, put_nullable_str, put_str, string};
use crate::reader::Reader;

/// DescribeConfigs' config_source for a value nobody set (DEFAULT_CONFIG).
const DEFAULT_CONFIG: i8 = 5;

pub(super) fn create_topics_request(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<CreateTopicsRequest, Bad> {
    let topics = elements(r, 16, |r| {
        let name = string(r)?;
        let num_partitions = r.i32()?;
        let replication_factor = r.i16()?;
        let assignments = elements(r, 8, |r| {
            let partition_index = r.i32()?;
            let broker_ids = elements(r, 4, |r| Ok(BrokerId(r.i32()?)))?;
            Ok(CreatableReplicaAssignment::default()
                .with_partition_index(partition_index)
                .with_broker_ids(broker_ids))
        })?;
        let configs = elements(r, 4, |r| {
            let name = string(r)?;
            let value = nullable_string(r)?;
            Ok(CreatableTopicConfig::default()
                .with_name(name)
                .with_value(value))
        })?;
        Ok(CreatableTopic::default()
            .with_name(TopicName(name))
            .with_num_partitions(num_partitions)
            .with_replication_factor(replication_factor)
            .with_assignments(assignments)
            .with_configs(configs))
    })?;
    let timeout_ms = r.i32()?;
    let validate_only = version >= 1 && r.i8()? != 0;
    Ok(CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(timeout_ms)
        .with_validate_only(validate_only))
}

pub(super) fn create_topics_response(
    r: &CreateTopicsResponse,
    version: i16,
    out: &mut BytesMut,
) -> Result<(), String> {
    put_len(out, r.topics.len())?;
    for t in &r.topics {
        put_str(out, &t.name.0)?;
        out.put_i16(t.error_code);
        if version >= 1 {
            put_nullable_str(out, t.error_message.as_deref())?;
        }
    }
    Ok(())
}

pub(super) fn delete_topics_response(
    r: &DeleteTopicsResponse,
    out: &mut BytesMut,
) -> Result<(), String> {
    put_len(out, r.responses.len())?;
    for t in &r.responses {
        put_str(out, t.name.as_ref().map_or("", |n| &n.0))?;
        out.put_i16(t.error_code);
    }
    Ok(())
}

pub(super) fn describe_configs_request(r: &mut Reader<'_>) -> Result<DescribeConfigsRequest, Bad> {
    let resources = elements(r, 7, |r| {
        let resource_type = r.i8()?;
        let resource_name = string(r)?;
        let keys = match r.array_len(2)? {
            None => None,
            Some(n) => Some((0..n).map(|_| string(r)).collect::<Result<Vec<_>, _>>()?),
        };
        Ok(DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(resource_name)
            .with_configuration_keys(keys))
    })?;
    Ok(DescribeConfigsRequest::default().with_resources(resources))
}

pub(super) fn describe_configs_response(
    r: &DescribeConfigsResponse,
    out: &mut BytesMut,
) -> Result<(), String> {
    out.put_i32(r.throttle_time_ms);
    put_len(out, r.results.len())?;
    for res in &r.results {
        out.put_i16(res.error_code);
        put_nullable_str(out, res.error_message.as_deref())?;
        out.put_i8(res.resource_type);
        put_str(out, &res.resource_name)?;
        put_len(out, res.configs.len())?;
        for c in &res.configs {
            put_str(out, &c.name)?;
            put_nullable_str(out, c.value.as_deref())?;
            out.put_u8(u8::from(c.read_only));
            out.put_u8(u8::from(c.config_source == DEFAULT_CONFIG));
            out.put_u8(u8::from(c.is_sensitive));
        }
    }
    Ok(())
}
