//! What DescribeConfigs reports for a BROKER resource: Kafka's names for the settings
//! Strom has an equivalent of, with the values Strom runs with, then Strom's own settings
//! under their own names. Kafka's tools (`kafka-configs --describe --broker N --all`) and
//! clients that read a broker setting before acting (Kafka Streams and Connect read
//! `default.replication.factor`, `min.insync.replicas`, `auto.create.topics.enable`) see
//! Kafka's names; an operator sees every Strom setting too. All are read-only: Strom has
//! no dynamic broker configs.

use strom_log::FlushPolicy;

use crate::config::BrokerConfig;

/// Kafka's ConfigType codes (DescribeConfigs v3+).
pub(super) const TYPE_BOOLEAN: i8 = 1;
pub(super) const TYPE_STRING: i8 = 2;
pub(super) const TYPE_INT: i8 = 3;
pub(super) const TYPE_LONG: i8 = 5;
pub(super) const TYPE_DOUBLE: i8 = 6;
pub(super) const TYPE_LIST: i8 = 7;

/// A Kafka broker config Strom answers for.
pub(super) struct KafkaBrokerConfig {
    pub(super) name: &'static str,
    /// The Strom setting it comes from (its source is that setting's: the default, or set),
    /// or `None` for what Strom fixes (always the default).
    pub(super) from: Option<&'static str>,
    pub(super) ty: i8,
    pub(super) value: fn(&BrokerConfig, i32) -> String,
    pub(super) doc: &'static str,
}

const fn k(
    name: &'static str,
    from: Option<&'static str>,
    ty: i8,
    value: fn(&BrokerConfig, i32) -> String,
    doc: &'static str,
) -> KafkaBrokerConfig {
    KafkaBrokerConfig {
        name,
        from,
        ty,
        value,
        doc,
    }
}

fn ms(d: std::time::Duration) -> String {
    d.as_millis().to_string()
}

/// Kafka's "no limit" for the flush settings.
const NEVER: &str = "9223372036854775807";

/// Sorted by name, as Kafka lists them. The second argument of `value` is the default
/// replication factor (which depends on the cluster's size).
pub(super) const KAFKA_BROKER_CONFIGS: &[KafkaBrokerConfig] = &[
    k(
        "advertised.listeners",
        Some("advertised_listener"),
        TYPE_STRING,
        |c, _| {
            let (host, port) = c.advertised();
            format!("PLAINTEXT://{host}:{port}")
        },
        "Listeners given to clients in Metadata",
    ),
    k(
        "auto.create.topics.enable",
        Some("auto_create_topics"),
        TYPE_BOOLEAN,
        |c, _| c.auto_create_topics.to_string(),
        "Create a topic when a client asks Metadata for one that does not exist",
    ),
    k(
        "broker.id",
        Some("node_id"),
        TYPE_INT,
        |c, _| c.node_id.to_string(),
        "This node's id",
    ),
    k(
        "compression.type",
        None,
        TYPE_STRING,
        |_, _| "producer".into(),
        "Batches are stored as the producer compressed them",
    ),
    k(
        "connections.max.idle.ms",
        Some("connections_max_idle_ms"),
        TYPE_LONG,
        |c, _| ms(c.connections_max_idle),
        "Idle connections are closed after this long",
    ),
    k(
        "default.replication.factor",
        Some("default_replication_factor"),
        TYPE_INT,
        |_, rf| rf.to_string(),
        "Replicas of a topic created without a replication factor",
    ),
    k(
        "delete.topic.enable",
        None,
        TYPE_BOOLEAN,
        |_, _| "true".into(),
        "Topics can be deleted",
    ),
    k(
        "group.initial.rebalance.delay.ms",
        Some("group_initial_rebalance_delay_ms"),
        TYPE_INT,
        |c, _| c.group.initial_rebalance_delay_ms.to_string(),
        "How long an empty group's first rebalance waits for more members",
    ),
    k(
        "group.max.session.timeout.ms",
        Some("group_max_session_timeout_ms"),
        TYPE_INT,
        |c, _| c.group.max_session_timeout_ms.to_string(),
        "Longest session timeout a consumer may ask for",
    ),
    k(
        "group.min.session.timeout.ms",
        Some("group_min_session_timeout_ms"),
        TYPE_INT,
        |c, _| c.group.min_session_timeout_ms.to_string(),
        "Shortest session timeout a consumer may ask for",
    ),
    k(
        "listeners",
        Some("listen"),
        TYPE_STRING,
        |c, _| format!("PLAINTEXT://{}", c.listen),
        "Address the Kafka listener binds",
    ),
    k(
        "log.dirs",
        Some("data_dir"),
        TYPE_STRING,
        |c, _| c.data_dir.display().to_string(),
        "Directory holding partition logs and metadata",
    ),
    k(
        "log.flush.interval.messages",
        Some("flush"),
        TYPE_LONG,
        |c, _| match c.log.flush {
            FlushPolicy::EveryAppend => "1".into(),
            _ => NEVER.into(),
        },
        "1: every acknowledged write is fsynced first (Strom's flush=group-commit)",
    ),
    k(
        "log.flush.interval.ms",
        Some("flush"),
        TYPE_LONG,
        |c, _| match c.log.flush {
            FlushPolicy::Interval(d) => ms(d),
            _ => NEVER.into(),
        },
        "fsync at most this long after an append (Strom's flush=interval:<ms>)",
    ),
    k(
        "log.index.interval.bytes",
        Some("index_interval_bytes"),
        TYPE_INT,
        |c, _| c.log.index_interval_bytes.to_string(),
        "Bytes of log between two offset-index entries",
    ),
    k(
        "log.message.timestamp.after.max.ms",
        Some("message_timestamp_after_max_ms"),
        TYPE_LONG,
        |c, _| c.records.after_max_ms.to_string(),
        "How far after the broker's clock a create time may be",
    ),
    k(
        "log.message.timestamp.before.max.ms",
        Some("message_timestamp_before_max_ms"),
        TYPE_LONG,
        |c, _| c.records.before_max_ms.to_string(),
        "How far before the broker's clock a create time may be",
    ),
    k(
        "log.message.timestamp.type",
        Some("message_timestamp_type"),
        TYPE_STRING,
        |c, _| {
            if c.records.log_append_time {
                "LogAppendTime".into()
            } else {
                "CreateTime".into()
            }
        },
        "Whose clock stamps records",
    ),
    k(
        "log.retention.bytes",
        Some("retention_bytes"),
        TYPE_LONG,
        |c, _| c.log.retention_bytes.map_or(-1, |b| b as i64).to_string(),
        "Delete the oldest segments while a partition is larger than this (-1: no limit)",
    ),
    k(
        "log.retention.check.interval.ms",
        Some("retention_check_ms"),
        TYPE_LONG,
        |c, _| ms(c.retention_check),
        "How often retention is enforced",
    ),
    k(
        "log.retention.ms",
        Some("retention_ms"),
        TYPE_LONG,
        |c, _| c.log.retention_ms.unwrap_or(-1).to_string(),
        "Delete segments whose newest record is older than this (-1: keep forever)",
    ),
    k(
        "log.roll.ms",
        Some("segment_ms"),
        TYPE_LONG,
        |c, _| c.log.segment_ms.unwrap_or(-1).to_string(),
        "Roll to a new segment once the active one is this old",
    ),
    k(
        "log.segment.bytes",
        Some("segment_bytes"),
        TYPE_INT,
        |c, _| c.log.segment_bytes.to_string(),
        "Roll to a new segment at this size",
    ),
    k(
        "max.connections",
        Some("max_connections"),
        TYPE_INT,
        |c, _| c.max_connections.to_string(),
        "Connections accepted at once",
    ),
    k(
        "max.connections.per.ip",
        Some("max_connections_per_ip"),
        TYPE_INT,
        |c, _| c.max_connections_per_ip.to_string(),
        "Connections accepted at once from one address",
    ),
    k(
        "message.max.bytes",
        Some("max_message_bytes"),
        TYPE_INT,
        |c, _| c.log.max_message_bytes.to_string(),
        "The largest record batch accepted",
    ),
    k(
        "min.insync.replicas",
        None,
        TYPE_INT,
        |_, rf| (rf / 2 + 1).to_string(),
        "acks=all waits for a majority of the replicas (a Raft quorum) to fsync",
    ),
    k(
        "num.partitions",
        Some("default_partitions"),
        TYPE_INT,
        |c, _| c.default_partitions.to_string(),
        "Partitions of an auto-created topic, or one created without a count",
    ),
    k(
        "offset.metadata.max.bytes",
        None,
        TYPE_INT,
        |c, _| c.group.max_offset_metadata_bytes.to_string(),
        "Longest metadata string an offset commit may carry",
    ),
    k(
        "offsets.retention.minutes",
        Some("offsets_retention_ms"),
        TYPE_INT,
        |c, _| (c.group.offsets_retention_ms / 60_000).to_string(),
        "Offsets of an empty group are deleted this long after it became empty",
    ),
    k(
        "offsets.topic.num.partitions",
        Some("offsets_topic_partitions"),
        TYPE_INT,
        |c, _| c.group.offsets_topic_partitions.to_string(),
        "Partitions of __consumer_offsets",
    ),
    k(
        "queued.max.request.bytes",
        Some("queued_max_request_bytes"),
        TYPE_LONG,
        |c, _| c.queued_max_request_bytes.to_string(),
        "Bytes of requests read and not yet answered, all connections together",
    ),
    k(
        "socket.request.max.bytes",
        Some("max_frame_bytes"),
        TYPE_INT,
        |c, _| c.max_frame_bytes.to_string(),
        "The largest request accepted",
    ),
    k(
        "transaction.max.timeout.ms",
        Some("transaction_max_timeout_ms"),
        TYPE_INT,
        |c, _| c.txn.max_timeout_ms.to_string(),
        "The longest transaction timeout a producer may ask for",
    ),
    k(
        "transaction.state.log.num.partitions",
        Some("transaction_state_partitions"),
        TYPE_INT,
        |c, _| c.txn.transaction_state_partitions.to_string(),
        "Partitions of __transaction_state",
    ),
    k(
        "unclean.leader.election.enable",
        None,
        TYPE_BOOLEAN,
        |_, _| "false".into(),
        "Only a replica with every committed record can lead (Raft)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SETTINGS;

    #[test]
    fn names_are_sorted_and_sources_are_real_settings() {
        assert!(
            KAFKA_BROKER_CONFIGS
                .windows(2)
                .all(|w| w[0].name < w[1].name)
        );
        for c in KAFKA_BROKER_CONFIGS {
            if let Some(from) = c.from {
                assert!(SETTINGS.iter().any(|s| s.key == from), "{}: {from}", c.name);
            }
        }
    }

    #[test]
    fn values_follow_the_settings() {
        let config = BrokerConfig::defaults();
        let value = |name: &str| {
            let c = KAFKA_BROKER_CONFIGS
                .iter()
                .find(|c| c.name == name)
                .unwrap();
            (c.value)(&config, 3)
        };
        assert_eq!(value("listeners"), "PLAINTEXT://127.0.0.1:9092");
        assert_eq!(value("log.flush.interval.messages"), "1");
        assert_eq!(value("min.insync.replicas"), "2");
        assert_eq!(value("log.retention.ms"), "604800000");
        assert_eq!(value("offsets.retention.minutes"), "10080");
    }
}
