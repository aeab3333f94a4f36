//! Topic metadata: names, ids, partition counts, replica assignments, Raft group ids
//! and per-topic config overrides. The source of truth is the metadata Raft group
//! (`cluster.rs`); `TopicStore` is this node's view of it, rebuilt by applying that
//! log. (`<data>/topics.json`, written by single-node versions before Raft, is read once
//! to carry its topics over.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use strom_log::{FlushPolicy, LogConfig};
use strom_wire::ErrorCode;

use crate::config::BrokerConfig;
use crate::errors::Failure;

const FILE: &str = "topics.json";

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// The topic id clients see in Metadata v10+ and Fetch v13+.
    pub id: uuid::Uuid,
    pub partitions: i32,
    /// Only the settings explicitly set on the topic; the rest come from the broker.
    pub configs: BTreeMap<String, String>,
    /// Internal topics (`__consumer_offsets`) are marked so in Metadata.
    #[serde(default)]
    pub internal: bool,
    /// Per partition, the node ids holding a replica; the first is the preferred leader.
    #[serde(default)]
    pub replicas: Vec<Vec<i32>>,
    /// Per partition, its Raft group id (assigned when the creation is applied).
    #[serde(default)]
    pub groups: Vec<u64>,
}

impl TopicMeta {
    /// Replicas per partition (the first partition's count: every partition has as many).
    pub fn replication_factor(&self) -> usize {
        self.replicas.first().map_or(1, Vec::len)
    }

    /// A config's value for this topic, and whether the topic sets it (otherwise it is
    /// the broker's default).
    pub fn config_value(&self, def: &TopicConfigDef, broker: &BrokerConfig) -> (String, bool) {
        match self.configs.get(def.name) {
            Some(v) => (v.clone(), true),
            None => (def.default_value(broker, self.replication_factor()), false),
        }
    }

    /// The Raft group of partition `p`.
    pub fn group(&self, p: i32) -> Option<u64> {
        self.groups.get(usize::try_from(p).ok()?).copied()
    }

    /// The replicas of partition `p`.
    pub fn replicas_of(&self, p: i32) -> &[i32] {
        usize::try_from(p)
            .ok()
            .and_then(|i| self.replicas.get(i))
            .map_or(&[], |r| r.as_slice())
    }
}

/// A topic-level config Strom honours.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub doc: &'static str,
    /// Whether the value is a number of bytes/ms that may be -1 for "unlimited".
    kind: ConfigKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigKind {
    /// A non-negative integer, or -1 where `allow_unlimited`.
    Long { min: i64, allow_unlimited: bool },
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// Decided for every topic by the broker (the text says how); described, never set
    /// per topic.
    Broker(&'static str),
}

/// A Kafka topic config whose feature Strom does not have (or has one way only): it is
/// described with Kafka's default, which is what Strom does, and only that value may be
/// set, so a client that sets it explicitly to the default still works.
const fn fixed(
    name: &'static str,
    doc: &'static str,
    value: &'static [&'static str],
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        doc,
        kind: ConfigKind::Choice(value),
    }
}

/// Every topic config Strom accepts; anything else is refused with INVALID_CONFIG.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "retention.ms",
        doc: "delete segments whose newest record is older than this (-1: forever)",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: true,
        },
    },
    TopicConfigDef {
        name: "retention.bytes",
        doc: "delete oldest segments while a partition is larger (-1: no limit)",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: true,
        },
    },
    TopicConfigDef {
        name: "segment.bytes",
        doc: "segment file size at which a new segment starts",
        kind: ConfigKind::Long {
            min: 14,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "segment.ms",
        doc: "segment age at which a new segment starts",
        kind: ConfigKind::Long {
            min: 1,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "max.message.bytes",
        doc: "largest record batch accepted",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        doc: "bytes between offset-index entries",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "cleanup.policy",
        doc: "what retention does: delete old segments",
        kind: ConfigKind::Choice(&["delete"]),
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        doc: "CreateTime: the producer's timestamps; LogAppendTime: the broker's clock when the batch is appended",
        kind: ConfigKind::Choice(&["CreateTime", "LogAppendTime"]),
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        doc: "how far before the broker's clock a create time may be (else INVALID_TIMESTAMP)",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        doc: "how far after the broker's clock a create time may be (else INVALID_TIMESTAMP)",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "message.timestamp.difference.max.ms",
        doc: "deprecated by Kafka: bounds a create time's distance from the broker's clock both ways",
        kind: ConfigKind::Long {
            min: 0,
            allow_unlimited: false,
        },
    },
    TopicConfigDef {
        name: "compression.type",
        doc: "batches are stored compressed as the producer sent them; the broker never recompresses",
        kind: ConfigKind::Choice(&["producer"]),
    },
    TopicConfigDef {
        name: "flush.messages",
        doc: "set for every topic by the broker's flush setting: 1 when every acknowledged write is fsynced first (flush=group-commit)",
        kind: ConfigKind::Broker("the broker's flush setting"),
    },
    TopicConfigDef {
        name: "flush.ms",
        doc: "set for every topic by the broker's flush setting (flush=interval:<ms>)",
        kind: ConfigKind::Broker("the broker's flush setting"),
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        doc: "acks=all waits until a majority of the partition's replicas (a Raft quorum) has fsynced the batch",
        kind: ConfigKind::Broker("Raft: acks=all waits for a majority of the replicas"),
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        doc: "size each offset-index file is preallocated to",
        kind: ConfigKind::Broker("the broker"),
    },
    TopicConfigDef {
        name: "max.decompressed.message.bytes",
        doc: "largest size a compressed batch may decompress to when its records are checked",
        kind: ConfigKind::Broker("the broker's max_decompressed_batch_bytes"),
    },
    fixed(
        "compression.gzip.level",
        "unused: the broker never recompresses",
        &["-1"],
    ),
    fixed(
        "compression.lz4.level",
        "unused: the broker never recompresses",
        &["9"],
    ),
    fixed(
        "compression.zstd.level",
        "unused: the broker never recompresses",
        &["3"],
    ),
    fixed(
        "delete.retention.ms",
        "unused until compaction: tombstones are kept like other records",
        &["86400000"],
    ),
    fixed("min.compaction.lag.ms", "unused until compaction", &["0"]),
    fixed(
        "max.compaction.lag.ms",
        "unused until compaction",
        &["9223372036854775807"],
    ),
    fixed(
        "min.cleanable.dirty.ratio",
        "unused until compaction",
        &["0.5"],
    ),
    fixed(
        "errors.deadletterqueue.group.enable",
        "share groups' dead-letter topics are not served yet",
        &["false"],
    ),
    fixed(
        "file.delete.delay.ms",
        "segments are deleted at once when retention or a topic's deletion removes them",
        &["60000"],
    ),
    fixed(
        "follower.replication.throttled.replicas",
        "replication is not throttled",
        &[""],
    ),
    fixed(
        "leader.replication.throttled.replicas",
        "replication is not throttled",
        &[""],
    ),
    fixed(
        "local.retention.bytes",
        "no tiered storage: everything is local (-2: as retention.bytes)",
        &["-2"],
    ),
    fixed(
        "local.retention.ms",
        "no tiered storage: everything is local (-2: as retention.ms)",
        &["-2"],
    ),
    fixed("remote.storage.enable", "no tiered storage", &["false"]),
    fixed("remote.copy.lag.bytes", "no tiered storage", &["-1"]),
    fixed("remote.copy.lag.ms", "no tiered storage", &["0"]),
    fixed("remote.log.copy.disable", "no tiered storage", &["false"]),
    fixed(
        "remote.log.delete.on.disable",
        "no tiered storage",
        &["false"],
    ),
    fixed("preallocate", "segment files grow as written", &["false"]),
    fixed(
        "segment.jitter.ms",
        "segments roll at segment.ms exactly",
        &["0"],
    ),
    fixed(
        "unclean.leader.election.enable",
        "only a replica holding every committed record can lead (Raft)",
        &["false"],
    ),
];

impl TopicConfigDef {
    pub fn find(name: &str) -> Option<&'static TopicConfigDef> {
        TOPIC_CONFIGS.iter().find(|d| d.name == name)
    }

    /// Checks a value; the error text goes back to the client.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        match self.kind {
            ConfigKind::Long {
                min,
                allow_unlimited,
            } => {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{} must be an integer, got '{value}'", self.name))?;
                if (allow_unlimited && v == -1) || v >= min {
                    Ok(())
                } else {
                    Err(format!(
                        "{} must be >= {min}{}",
                        self.name,
                        if allow_unlimited { " or -1" } else { "" }
                    ))
                }
            }
            ConfigKind::Broker(by) => Err(format!(
                "{} cannot be set per topic in Strom: it is decided by {by}",
                self.name
            )),
            ConfigKind::Choice(options) => {
                if options.contains(&value) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} must be one of {options:?} in Strom, got '{value}'",
                        self.name
                    ))
                }
            }
        }
    }

    /// Whether a topic may set it at all.
    pub fn read_only(&self) -> bool {
        matches!(self.kind, ConfigKind::Broker(_))
    }

    /// The broker-wide default of this config, for a topic of `replication_factor`.
    pub fn default_value(&self, broker: &BrokerConfig, replication_factor: usize) -> String {
        let log = &broker.log;
        // A config with one allowed value (cleanup.policy, compression.type, the fixed
        // ones) has it as its default.
        if let ConfigKind::Choice([only]) = self.kind {
            return (*only).to_string();
        }
        match self.name {
            "retention.ms" => log.retention_ms.unwrap_or(-1).to_string(),
            "retention.bytes" => log.retention_bytes.map_or(-1, |b| b as i64).to_string(),
            "segment.bytes" => log.segment_bytes.to_string(),
            "segment.ms" => log.segment_ms.unwrap_or(i64::MAX).to_string(),
            "max.message.bytes" => log.max_message_bytes.to_string(),
            "index.interval.bytes" => log.index_interval_bytes.to_string(),
            "message.timestamp.type" => if broker.records.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .into(),
            "message.timestamp.before.max.ms" => broker.records.before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => broker.records.after_max_ms.to_string(),
            "message.timestamp.difference.max.ms" => broker.records.difference_max_ms.to_string(),
            "flush.messages" => match log.flush {
                FlushPolicy::EveryAppend => "1".into(),
                _ => i64::MAX.to_string(),
            },
            "flush.ms" => match log.flush {
                FlushPolicy::Interval(d) => d.as_millis().to_string(),
                _ => i64::MAX.to_string(),
            },
            "min.insync.replicas" => (replication_factor / 2 + 1).to_string(),
            "segment.index.bytes" => log.max_index_bytes.to_string(),
            "max.decompressed.message.bytes" => {
                broker.records.max_decompressed_batch_bytes.to_string()
            }
            _ => String::new(),
        }
    }
}

/// Validates a whole set of topic configs.
pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), Failure> {
    for (name, value) in configs {
        let def = TopicConfigDef::find(name).ok_or_else(|| {
            Failure::new(
                ErrorCode::InvalidConfig,
                format!("unknown or unsupported topic config '{name}'"),
            )
        })?;
        def.validate(value)
            .map_err(|m| Failure::new(ErrorCode::InvalidConfig, m))?;
    }
    Ok(())
}

/// The log settings of a topic: broker defaults overridden by the topic's configs
/// (which were validated when set).
pub fn log_config(broker: &BrokerConfig, configs: &BTreeMap<String, String>) -> LogConfig {
    let mut c = broker.log.clone();
    let long = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = long("retention.ms") {
        c.retention_ms = (v >= 0).then_some(v);
    }
    if let Some(v) = long("retention.bytes") {
        c.retention_bytes = (v >= 0).then_some(v as u64);
    }
    if let Some(v) = long("segment.bytes") {
        c.segment_bytes = v as u64;
    }
    if let Some(v) = long("segment.ms") {
        c.segment_ms = Some(v);
    }
    if let Some(v) = long("max.message.bytes") {
        c.max_message_bytes = v as usize;
    }
    if let Some(v) = long("index.interval.bytes") {
        c.index_interval_bytes = v.min(u32::MAX as i64) as u32;
    }
    c
}

/// Kafka's topic-name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), Failure> {
    let bad = |why: &str| {
        Err(Failure::new(
            ErrorCode::InvalidTopicException,
            format!("invalid topic name '{name}': {why}"),
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// The persisted set of topics.
/// This node's view of the topics, kept by applying the metadata log.
#[derive(Debug, Default)]
pub struct TopicStore {
    /// Shared, not copied, with every request that looks a topic up: a topic of 10,000
    /// partitions carries 10,000 replica lists, and copying them per Produce or per
    /// partition of a Metadata answer made those linear (or quadratic) in its size.
    topics: RwLock<BTreeMap<String, Arc<TopicMeta>>>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    topics: Vec<TopicMeta>,
}

/// The topics a single-node version before Raft kept in `<data>/topics.json` (empty
/// when there is no such file).
pub fn read_legacy_topics(data_dir: &Path) -> std::io::Result<Vec<TopicMeta>> {
    let path = data_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<OnDisk>(&bytes)
            .map(|d| d.topics)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Renames the legacy file once its topics are in the metadata log.
pub fn retire_legacy_topics(data_dir: &Path) -> std::io::Result<()> {
    let path = data_dir.join(FILE);
    match std::fs::rename(&path, path.with_extension("json.migrated")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl TopicStore {
    pub fn get(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.topics.read().unwrap().get(name).cloned()
    }

    pub fn by_id(&self, id: uuid::Uuid) -> Option<Arc<TopicMeta>> {
        self.topics
            .read()
            .unwrap()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<TopicMeta>> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.topics.read().unwrap().contains_key(name)
    }

    /// Whether `topic` exists with a partition `partition`.
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        self.get(topic)
            .is_some_and(|t| partition >= 0 && partition < t.partitions)
    }

    /// Sets (inserts or replaces) a topic as the metadata log says it now is.
    pub fn set(&self, meta: TopicMeta) {
        self.topics
            .write()
            .unwrap()
            .insert(meta.name.clone(), Arc::new(meta));
    }

    pub fn remove(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.topics.write().unwrap().remove(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_EU-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert_eq!(
                validate_topic_name(bad).unwrap_err().code,
                ErrorCode::InvalidTopicException,
                "{bad}"
            );
        }
    }

    #[test]
    fn configs_are_validated_and_applied() {
        let broker = BrokerConfig::defaults();
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "60000".to_string());
        c.insert("retention.bytes".to_string(), "-1".to_string());
        c.insert("segment.bytes".to_string(), "1048576".to_string());
        validate_configs(&c).unwrap();
        let log = log_config(&broker, &c);
        assert_eq!(log.retention_ms, Some(60000));
        assert_eq!(log.retention_bytes, None);
        assert_eq!(log.segment_bytes, 1 << 20);
        c.insert("cleanup.policy".into(), "compact".into());
        assert_eq!(
            validate_configs(&c).unwrap_err().code,
            ErrorCode::InvalidConfig
        );
        let mut d = BTreeMap::new();
        d.insert("no.such".to_string(), "1".to_string());
        assert_eq!(
            validate_configs(&d).unwrap_err().code,
            ErrorCode::InvalidConfig
        );
        d.clear();
        d.insert("segment.bytes".into(), "-1".into());
        assert!(validate_configs(&d).is_err());
    }
}
