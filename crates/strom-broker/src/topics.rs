//! Topic metadata of a single-node broker: names, ids, partition counts and per-topic
//! config overrides, persisted atomically in `<data>/topics.json` so they survive a
//! restart. (The Raft controller will take this over in a cluster.)

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use strom_log::LogConfig;
use strom_wire::ErrorCode;

use crate::config::BrokerConfig;

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
}

/// A failed topic operation, with the Kafka error it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub code: ErrorCode,
    pub message: String,
}

impl TopicError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TopicError {
            code,
            message: message.into(),
        }
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
        doc: "record timestamps are the producer's create time",
        kind: ConfigKind::Choice(&["CreateTime"]),
    },
    TopicConfigDef {
        name: "compression.type",
        doc: "batches are stored compressed as the producer sent them; the broker never recompresses",
        kind: ConfigKind::Choice(&["producer"]),
    },
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

    /// The broker-wide default of this config.
    pub fn default_value(&self, broker: &BrokerConfig) -> String {
        let log = &broker.log;
        match self.name {
            "retention.ms" => log.retention_ms.unwrap_or(-1).to_string(),
            "retention.bytes" => log.retention_bytes.map_or(-1, |b| b as i64).to_string(),
            "segment.bytes" => log.segment_bytes.to_string(),
            "segment.ms" => log.segment_ms.unwrap_or(i64::MAX).to_string(),
            "max.message.bytes" => log.max_message_bytes.to_string(),
            "index.interval.bytes" => log.index_interval_bytes.to_string(),
            "cleanup.policy" => "delete".into(),
            "message.timestamp.type" => "CreateTime".into(),
            "compression.type" => "producer".into(),
            _ => String::new(),
        }
    }
}

/// Validates a whole set of topic configs.
pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), TopicError> {
    for (name, value) in configs {
        let def = TopicConfigDef::find(name).ok_or_else(|| {
            TopicError::new(
                ErrorCode::InvalidConfig,
                format!("unknown or unsupported topic config '{name}'"),
            )
        })?;
        def.validate(value)
            .map_err(|m| TopicError::new(ErrorCode::InvalidConfig, m))?;
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
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let bad = |why: &str| {
        Err(TopicError::new(
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
#[derive(Debug)]
pub struct TopicStore {
    path: PathBuf,
    topics: RwLock<BTreeMap<String, TopicMeta>>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    topics: Vec<TopicMeta>,
}

impl TopicStore {
    pub fn open(data_dir: &Path) -> std::io::Result<TopicStore> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(FILE);
        let topics = match std::fs::read(&path) {
            Ok(bytes) => {
                let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                disk.topics
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(TopicStore {
            path,
            topics: RwLock::new(topics),
        })
    }

    pub fn get(&self, name: &str) -> Option<TopicMeta> {
        self.topics.read().unwrap().get(name).cloned()
    }

    pub fn list(&self) -> Vec<TopicMeta> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    pub fn by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        self.topics
            .read()
            .unwrap()
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Applies `change` to the topic map and persists the result; nothing changes if
    /// the change fails or the write does.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, TopicMeta>) -> Result<R, TopicError>,
    ) -> Result<R, TopicError> {
        let mut topics = self.topics.write().unwrap();
        let mut next = topics.clone();
        let result = change(&mut next)?;
        self.persist(&next).map_err(|e| {
            TopicError::new(
                ErrorCode::KafkaStorageError,
                format!("writing {}: {e}", self.path.display()),
            )
        })?;
        *topics = next;
        Ok(result)
    }

    /// Writes the file atomically: temp file, fsync, rename, fsync of the directory.
    fn persist(&self, topics: &BTreeMap<String, TopicMeta>) -> std::io::Result<()> {
        let disk = OnDisk {
            version: 1,
            topics: topics.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&disk).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
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

    #[test]
    fn store_persists_across_reopen_and_failed_changes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path()).unwrap();
        let meta = TopicMeta {
            name: "a".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: BTreeMap::new(),
            internal: false,
        };
        store
            .update(|t| {
                t.insert("a".into(), meta.clone());
                Ok(())
            })
            .unwrap();
        let err = store.update::<()>(|t| {
            t.clear();
            Err(TopicError::new(ErrorCode::InvalidRequest, "no"))
        });
        assert!(err.is_err());
        let store = TopicStore::open(dir.path()).unwrap();
        assert_eq!(store.get("a"), Some(meta.clone()));
        assert_eq!(store.by_id(meta.id).unwrap().name, "a");
    }
}
