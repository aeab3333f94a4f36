//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (with their
//! defaults), and read-only broker configs (their table is in broker_configs.rs).

use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use strom_wire::kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
    alter_configs_response, incremental_alter_configs_request, incremental_alter_configs_response,
};

use super::admin::{SOURCE_DEFAULT, SOURCE_STATIC_BROKER, SOURCE_TOPIC};
use super::broker_configs::{
    KAFKA_BROKER_CONFIGS, TYPE_BOOLEAN, TYPE_DOUBLE, TYPE_INT, TYPE_LIST, TYPE_LONG, TYPE_STRING,
};
use super::{Reply, Response, str_bytes};
use crate::broker::Broker;
use crate::config::SETTINGS;
use crate::errors::Failure;
use crate::topics::TOPIC_CONFIGS;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub(super) fn describe_configs(
    broker: &Arc<Broker>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let wanted = |key: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match broker.topics().get(&name) {
                    None => base
                        .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(format!(
                            "topic '{name}' does not exist"
                        )))),
                    Some(meta) => {
                        let configs = TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .map(|d| {
                                let default =
                                    d.default_value(broker.config(), meta.replication_factor());
                                let (value, set) = meta.config_value(d, broker.config());
                                let source = if set { SOURCE_TOPIC } else { SOURCE_DEFAULT };
                                let mut synonyms = Vec::new();
                                if req.include_synonyms {
                                    if source == SOURCE_TOPIC {
                                        synonyms.push(
                                            DescribeConfigsSynonym::default()
                                                .with_name(str_bytes(d.name))
                                                .with_value(Some(str_bytes(value.clone())))
                                                .with_source(SOURCE_TOPIC),
                                        );
                                    }
                                    if let Some(broker_name) = broker_synonym(d.name) {
                                        synonyms.push(
                                            DescribeConfigsSynonym::default()
                                                .with_name(str_bytes(broker_name))
                                                .with_value(Some(str_bytes(default)))
                                                .with_source(SOURCE_DEFAULT),
                                        );
                                    }
                                }
                                DescribeConfigsResourceResult::default()
                                    .with_name(str_bytes(d.name))
                                    .with_value(Some(str_bytes(value)))
                                    .with_read_only(d.read_only())
                                    .with_config_source(source)
                                    .with_synonyms(synonyms)
                                    .with_config_type(topic_config_type(d.name))
                                    .with_documentation(
                                        req.include_documentation.then(|| str_bytes(d.doc)),
                                    )
                            })
                            .collect();
                        base.with_configs(configs)
                    }
                },
                RESOURCE_BROKER
                    if name.is_empty() || name == broker.config().node_id.to_string() =>
                {
                    base.with_configs(broker_configs(
                        broker,
                        req.include_synonyms,
                        req.include_documentation,
                        &wanted,
                    ))
                }
                other => base
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "resource type {other} named '{name}' is not described by this broker"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The broker config whose default a topic config takes, as Kafka names it in a
/// DEFAULT_CONFIG synonym. `None` where Kafka shows no default synonym: its broker-side
/// name has no default of its own (retention.ms's `log.retention.ms` defers to
/// `log.retention.hours`, segment.ms's `log.roll.ms` to `log.roll.hours`), or there is
/// no broker-side name.
fn broker_synonym(topic_config: &str) -> Option<&'static str> {
    Some(match topic_config {
        "cleanup.policy" => "log.cleanup.policy",
        "compression.type" => "compression.type",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "flush.messages" => "log.flush.interval.messages",
        "index.interval.bytes" => "log.index.interval.bytes",
        "local.retention.bytes" => "log.local.retention.bytes",
        "local.retention.ms" => "log.local.retention.ms",
        "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.type" => "log.message.timestamp.type",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
        "min.insync.replicas" => "min.insync.replicas",
        "preallocate" => "log.preallocate",
        "retention.bytes" => "log.retention.bytes",
        "segment.bytes" => "log.segment.bytes",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "unclean.leader.election.enable" => "unclean.leader.election.enable",
        _ => return None,
    })
}

/// Kafka's ConfigType of a topic config (DescribeConfigs v3+).
fn topic_config_type(name: &str) -> i8 {
    match name {
        "cleanup.policy"
        | "follower.replication.throttled.replicas"
        | "leader.replication.throttled.replicas" => TYPE_LIST,
        "message.timestamp.type" | "compression.type" => TYPE_STRING,
        "preallocate"
        | "remote.storage.enable"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "unclean.leader.election.enable"
        | "errors.deadletterqueue.group.enable" => TYPE_BOOLEAN,
        "min.cleanable.dirty.ratio" => TYPE_DOUBLE,
        "min.insync.replicas"
        | "max.message.bytes"
        | "segment.bytes"
        | "segment.index.bytes"
        | "index.interval.bytes"
        | "max.decompressed.message.bytes"
        | "compression.gzip.level"
        | "compression.lz4.level"
        | "compression.zstd.level" => TYPE_INT,
        _ => TYPE_LONG,
    }
}

/// The BROKER resource: Kafka's names where Strom has an equivalent, then every Strom
/// setting (see [`super::broker_configs`]). Read-only; the source says whether the value
/// was set or is the default.
fn broker_configs(
    broker: &Broker,
    include_synonyms: bool,
    include_documentation: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    let config = broker.config();
    let source_of = |key: &str| {
        let explicit = config.settings.iter().any(|s| s.key == key && s.explicit);
        if explicit {
            SOURCE_STATIC_BROKER
        } else {
            SOURCE_DEFAULT
        }
    };
    let entry = |name: &'static str, value: String, source: i8, ty: i8, doc: &'static str| {
        let synonyms = if include_synonyms {
            vec![
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name))
                    .with_value(Some(str_bytes(value.clone())))
                    .with_source(source),
            ]
        } else {
            Vec::new()
        };
        DescribeConfigsResourceResult::default()
            .with_name(str_bytes(name))
            .with_value(Some(str_bytes(value)))
            .with_read_only(true)
            .with_config_source(source)
            .with_synonyms(synonyms)
            .with_config_type(ty)
            .with_documentation(include_documentation.then(|| str_bytes(doc)))
    };
    let rf = broker.control().default_replication_factor();
    let kafka = KAFKA_BROKER_CONFIGS
        .iter()
        .filter(|c| wanted(c.name))
        .map(|c| {
            let source = c.from.map_or(SOURCE_DEFAULT, source_of);
            entry(c.name, (c.value)(config, rf), source, c.ty, c.doc)
        });
    let own = config.settings.iter().filter(|s| wanted(s.key)).map(|s| {
        let doc = SETTINGS
            .iter()
            .find(|d| d.key == s.key)
            .map_or("", |d| d.help);
        entry(s.key, s.value.clone(), source_of(s.key), TYPE_STRING, doc)
    });
    kafka.chain(own).collect()
}

fn refuse_non_topic(resource_type: i8) -> Failure {
    if resource_type == RESOURCE_BROKER {
        Failure::new(
            ErrorCode::InvalidRequest,
            "broker settings are static: set them in the config file, STROM_* environment or flags",
        )
    } else {
        Failure::new(
            ErrorCode::InvalidRequest,
            format!("resource type {resource_type} cannot be altered"),
        )
    }
}

pub(super) fn alter_configs(broker: &Arc<Broker>, req: AlterConfigsRequest) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut responses = Vec::with_capacity(req.resources.len());
        for r in req.resources {
            let name = r.resource_name.to_string();
            let result = if r.resource_type != RESOURCE_TOPIC {
                Err(refuse_non_topic(r.resource_type))
            } else {
                // AlterConfigs replaces the whole set: unnamed configs return to defaults.
                let configs = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                broker
                    .control()
                    .set_topic_configs(&name, configs, req.validate_only)
                    .await
            };
            let base = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            responses.push(match result {
                Ok(_) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            });
        }
        Response::Kind(ResponseKind::AlterConfigs(
            AlterConfigsResponse::default().with_responses(responses),
        ))
    }))
}

pub(super) fn incremental_alter_configs(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut responses = Vec::with_capacity(req.resources.len());
        for r in req.resources {
            let name = r.resource_name.to_string();
            let result = if r.resource_type != RESOURCE_TOPIC {
                Err(refuse_non_topic(r.resource_type))
            } else {
                match incremental(&broker, &name, &r.configs) {
                    Ok(configs) => {
                        broker
                            .control()
                            .set_topic_configs(&name, configs, req.validate_only)
                            .await
                    }
                    Err(e) => Err(e),
                }
            };
            let base = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            responses.push(match result {
                Ok(_) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(str_bytes(e.message))),
            });
        }
        Response::Kind(ResponseKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse::default().with_responses(responses),
        ))
    }))
}

/// A topic's configs after an incremental change (set and delete; list operations are
/// refused: Strom's topic configs are not lists).
fn incremental(
    broker: &Broker,
    name: &str,
    changes: &[incremental_alter_configs_request::AlterableConfig],
) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let meta = broker.topics().get(name).ok_or_else(|| {
        Failure::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let mut configs = meta.configs.clone();
    for c in changes {
        match (c.config_operation, &c.value) {
            (OP_SET, Some(v)) => {
                configs.insert(c.name.to_string(), v.to_string());
            }
            (OP_DELETE, _) => {
                configs.remove(c.name.as_str());
            }
            (op, _) => {
                return Err(Failure::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "operation {op} on '{}' is not supported (Strom's topic configs are not lists)",
                        c.name.as_str()
                    ),
                ));
            }
        }
    }
    Ok(configs)
}
