//! Broker settings: one table of settings drives the TOML file keys, the `STROM_*`
//! environment variables and the command-line flags, so they cannot drift apart.
//! Precedence: flags over environment over file over defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strom_log::{FlushPolicy, LogConfig};
use thiserror::Error;

/// A broker setting: its file key, environment variable, flag and default.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key in the TOML file; the flag is `--` + key with `_` as `-`, the environment
    /// variable `STROM_` + key in upper case.
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every setting the broker reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        default: "127.0.0.1:9092",
        help: "address the Kafka listener binds",
    },
    Setting {
        key: "metrics_listen",
        default: "127.0.0.1:9644",
        help: "address of the HTTP endpoint serving /metrics (Prometheus), /healthz and /readyz; empty disables it",
    },
    Setting {
        key: "advertised_listener",
        default: "",
        help: "host:port given to clients in Metadata (default: the listen address)",
    },
    Setting {
        key: "data_dir",
        default: "./strom-data",
        help: "directory holding partition logs and metadata",
    },
    Setting {
        key: "node_id",
        default: "1",
        help: "this broker's id",
    },
    Setting {
        key: "peer_listen",
        default: "",
        help: "address the Raft peer listener binds (cluster mode; default: this node's entry in --peers)",
    },
    Setting {
        key: "peers",
        default: "",
        help: "every node's peer address, id=host:port,... (empty: a single node)",
    },
    Setting {
        key: "default_replication_factor",
        default: "-1",
        help: "replicas of an auto-created topic or a CreateTopics request with -1 (-1: min(3, nodes))",
    },
    Setting {
        key: "raft_tick_ms",
        default: "100",
        help: "length of one Raft tick",
    },
    Setting {
        key: "raft_election_ticks",
        default: "10",
        help: "ticks without a leader before a follower stands for election (randomised up to twice this)",
    },
    Setting {
        key: "raft_heartbeat_ticks",
        default: "2",
        help: "ticks between a leader's heartbeats",
    },
    Setting {
        key: "default_partitions",
        default: "1",
        help: "partitions of an auto-created topic or a CreateTopics request with -1",
    },
    Setting {
        key: "auto_create_topics",
        default: "true",
        help: "create unknown topics on Metadata/Produce requests",
    },
    Setting {
        key: "max_connections",
        default: "4096",
        help: "client connections open at once; a new one past it closes the longest-idle connection (idle at least 1 s), or waits in the accept queue when none is",
    },
    Setting {
        key: "max_frame_bytes",
        default: "104857600",
        help: "largest request frame; a larger one closes the connection",
    },
    Setting {
        key: "queued_max_request_bytes",
        default: "536870912",
        help: "memory budget for requests in flight on all connections together: a frame's bytes are taken from it before its body is read, and what decoding it is reckoned to hold before it is decoded, and given back once its answer is written (a request that alone needs more closes its connection); a connection whose next frame does not fit waits, unread (Kafka: queued.max.request.bytes); at least max_frame_bytes",
    },
    Setting {
        key: "max_request_bytes_per_connection",
        default: "104857600",
        help: "bytes of requests one connection may have read but not yet answered; beyond this the broker stops reading from it until answers are written (a single frame up to max_frame_bytes always fits)",
    },
    Setting {
        key: "connections_max_idle_ms",
        default: "600000",
        help: "close a connection that has sent no request and has no answer pending for this long, or whose answer could not be written for this long (Kafka: connections.max.idle.ms)",
    },
    Setting {
        key: "request_read_timeout_ms",
        default: "30000",
        help: "close a connection whose request frame has not arrived whole this long after its first byte",
    },
    Setting {
        key: "max_connections_per_ip",
        default: "2147483647",
        help: "client connections accepted at once from one address; more are closed right away (Kafka: max.connections.per.ip)",
    },
    Setting {
        key: "max_connections_per_ip_overrides",
        default: "",
        help: "per-address exceptions to max_connections_per_ip, as ip:count,... (Kafka: max.connections.per.ip.overrides)",
    },
    Setting {
        key: "max_partitions_per_topic",
        default: "10000",
        help: "largest partition count of one topic; CreateTopics and CreatePartitions asking for more get INVALID_PARTITIONS",
    },
    Setting {
        key: "max_partitions_per_node",
        default: "20000",
        help: "partition replicas one node may hold; topic changes that would exceed it get POLICY_VIOLATION",
    },
    Setting {
        key: "max_open_logs",
        default: "0",
        help: "partition logs that keep files open at once (least recently used ones are closed); 0: as many as the open-file limit allows beside max_connections",
    },
    Setting {
        key: "segment_bytes",
        default: "1073741824",
        help: "default segment.bytes: roll a segment at this size",
    },
    Setting {
        key: "segment_ms",
        default: "604800000",
        help: "default segment.ms: roll a segment at this age",
    },
    Setting {
        key: "retention_ms",
        default: "604800000",
        help: "default retention.ms (-1 = keep forever): the TTL of records",
    },
    Setting {
        key: "retention_bytes",
        default: "-1",
        help: "default retention.bytes per partition (-1 = no limit)",
    },
    Setting {
        key: "max_message_bytes",
        default: "1048588",
        help: "default max.message.bytes: largest record batch accepted",
    },
    Setting {
        key: "message_timestamp_type",
        default: "CreateTime",
        help: "default message.timestamp.type: CreateTime keeps the producer's timestamps, LogAppendTime stamps each batch with the broker's clock (Kafka: log.message.timestamp.type)",
    },
    Setting {
        key: "message_timestamp_before_max_ms",
        default: "9223372036854775807",
        help: "default message.timestamp.before.max.ms: how far in the past a create time may lie, else INVALID_TIMESTAMP (Kafka: log.message.timestamp.before.max.ms)",
    },
    Setting {
        key: "message_timestamp_after_max_ms",
        default: "3600000",
        help: "default message.timestamp.after.max.ms: how far in the future a create time may lie, else INVALID_TIMESTAMP; one hour, as in Kafka 4 (Kafka: log.message.timestamp.after.max.ms)",
    },
    Setting {
        key: "message_timestamp_difference_max_ms",
        default: "9223372036854775807",
        help: "default message.timestamp.difference.max.ms, deprecated by Kafka: bounds both directions at once",
    },
    Setting {
        key: "max_decompressed_batch_bytes",
        default: "67108864",
        help: "largest size a compressed batch may decompress to when its records are checked; a larger one is refused with MESSAGE_TOO_LARGE",
    },
    Setting {
        key: "index_interval_bytes",
        default: "4096",
        help: "bytes between offset-index entries",
    },
    Setting {
        key: "flush",
        default: "group-commit",
        help: "when appends are fsynced: group-commit (acks=all waits for fsync), interval:<ms>, bytes:<n>, or os",
    },
    Setting {
        key: "retention_check_ms",
        default: "30000",
        help: "how often retention runs",
    },
    Setting {
        key: "shutdown_timeout_ms",
        default: "10000",
        help: "how long a graceful shutdown waits for connections to finish",
    },
    Setting {
        key: "offsets_topic_partitions",
        default: "8",
        help: "partitions of __consumer_offsets, which holds group metadata and committed offsets (Kafka: offsets.topic.num.partitions, default 50); only used when the topic is created",
    },
    Setting {
        key: "transaction_state_partitions",
        default: "8",
        help: "partitions of __transaction_state, which holds the transaction coordinator's state; created at the first transactional producer (Kafka: transaction.state.log.num.partitions, default 50); only used when the topic is created",
    },
    Setting {
        key: "transaction_max_timeout_ms",
        default: "900000",
        help: "longest transaction.timeout.ms a transactional producer may ask for (Kafka: transaction.max.timeout.ms)",
    },
    Setting {
        key: "transaction_version",
        default: "2",
        help: "the transaction.version feature finalized in ApiVersions: 2 lets clients that know it (Kafka's Java client 4.x) use KIP-890 part 2 (a new producer epoch per transaction, partitions added by their leaders); 0 keeps them at the original protocol (Kafka: kafka-features.sh upgrade --feature transaction.version=2)",
    },
    Setting {
        key: "group_initial_rebalance_delay_ms",
        default: "3000",
        help: "how long the first rebalance of an empty consumer group waits for more members (Kafka: group.initial.rebalance.delay.ms)",
    },
    Setting {
        key: "group_min_session_timeout_ms",
        default: "6000",
        help: "shortest session.timeout.ms a consumer may ask for (Kafka: group.min.session.timeout.ms)",
    },
    Setting {
        key: "group_max_session_timeout_ms",
        default: "1800000",
        help: "longest session.timeout.ms a consumer may ask for (Kafka: group.max.session.timeout.ms)",
    },
    Setting {
        key: "offsets_retention_ms",
        default: "604800000",
        help: "how long committed offsets of a group without members are kept (Kafka: offsets.retention.minutes, in ms here)",
    },
    Setting {
        key: "offsets_compaction_check_ms",
        default: "60000",
        help: "how often __consumer_offsets and __transaction_state partitions are checked for compaction by snapshot",
    },
    Setting {
        key: "offsets_compaction_min_bytes",
        default: "1048576",
        help: "a __consumer_offsets or __transaction_state partition is compacted once it holds more than this and twice its live state",
    },
];

/// The parsed settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every setting as given (or defaulted), in [`SETTINGS`] order: what DescribeConfigs
    /// on the broker reports.
    pub settings: Vec<SettingValue>,
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` when disabled.
    pub metrics_listen: Option<SocketAddr>,
    pub advertised_listener: Option<(String, u16)>,
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub default_partitions: i32,
    pub auto_create_topics: bool,
    pub max_connections: usize,
    pub max_frame_bytes: usize,
    /// Bytes of request frames read and not yet answered, all connections together.
    pub queued_max_request_bytes: usize,
    /// The same, per connection (a single frame of up to `max_frame_bytes` always fits).
    pub max_request_bytes_per_connection: usize,
    /// A connection with nothing pending and no request for this long is closed.
    pub connections_max_idle: Duration,
    /// A request frame must arrive whole within this long of its first byte.
    pub request_read_timeout: Duration,
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: BTreeMap<std::net::IpAddr, usize>,
    pub max_partitions_per_topic: i32,
    pub max_partitions_per_node: u64,
    pub max_open_logs: usize,
    pub log: LogConfig,
    /// Record checks: timestamp type and bounds, the decompression bound.
    pub records: crate::record_check::RecordDefaults,
    pub retention_check: Duration,
    pub shutdown_timeout: Duration,
    /// The consumer-group coordinator's settings (its `member_id_seed` is set per start
    /// by the broker, not here).
    pub group: strom_group::GroupConfig,
    /// The transaction coordinator's settings.
    pub txn: strom_txn::TxnConfig,
    /// The `transaction.version` feature level ApiVersions finalizes (0 to 2).
    pub transaction_version: i16,
    /// How often `__consumer_offsets` partitions are checked for compaction.
    pub offsets_compaction_check: Duration,
    /// A `__consumer_offsets` partition smaller than this is never compacted: below it a
    /// snapshot would save too little to be worth its writes.
    pub offsets_compaction_min_bytes: u64,
    /// The cluster: every node's id and peer address (just this node when single).
    pub peers: BTreeMap<i32, String>,
    /// Where this node listens for its peers (`None` when single).
    pub peer_listen: Option<SocketAddr>,
    /// Replicas of topics created with -1 (`None`: min(3, nodes)).
    pub default_replication_factor: Option<i32>,
    pub raft_tick: Duration,
    pub raft_election_ticks: usize,
    pub raft_heartbeat_ticks: usize,
}

/// One setting's text as the broker started with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingValue {
    pub key: &'static str,
    pub value: String,
    /// Given by a flag, the environment or the config file, rather than the default.
    pub explicit: bool,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown setting '{key}' (from {origin})")]
    Unknown { key: String, origin: String },
    #[error("invalid value '{value}' for {key} (from {origin}): {reason}")]
    Invalid {
        key: String,
        value: String,
        origin: String,
        reason: String,
    },
}

/// Raw `key -> (value, origin)` pairs before parsing.
#[derive(Debug, Default, Clone)]
pub struct RawSettings(BTreeMap<String, (String, String)>);

impl RawSettings {
    pub fn set(
        &mut self,
        key: &str,
        value: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<(), ConfigError> {
        let origin = origin.into();
        if !SETTINGS.iter().any(|s| s.key == key) {
            return Err(ConfigError::Unknown {
                key: key.to_string(),
                origin,
            });
        }
        self.0.insert(key.to_string(), (value.into(), origin));
        Ok(())
    }

    /// Reads a TOML file of `key = value` lines (strings, integers or booleans).
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::Invalid {
                        key,
                        value: other.to_string(),
                        origin: path.display().to_string(),
                        reason: "expected a string, integer or boolean".into(),
                    });
                }
            };
            self.set(&key, value, path.display().to_string())?;
        }
        Ok(())
    }

    /// Takes `STROM_<KEY>` variables from `vars`.
    pub fn merge_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("STROM_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            if SETTINGS.iter().any(|s| s.key == key) {
                self.set(&key, value, format!("environment {name}"))?;
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> (String, String) {
        match self.0.get(key) {
            Some((v, o)) => (v.clone(), o.clone()),
            None => {
                let s = SETTINGS
                    .iter()
                    .find(|s| s.key == key)
                    .expect("known setting");
                (s.default.to_string(), "default".to_string())
            }
        }
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let (value, origin) = self.get(key);
        value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                key: key.into(),
                value,
                origin,
                reason: e.to_string(),
            })
    }

    fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        let (value, origin) = self.get(key);
        ConfigError::Invalid {
            key: key.into(),
            value,
            origin,
            reason: reason.into(),
        }
    }

    /// Parses every setting.
    pub fn build(&self) -> Result<BrokerConfig, ConfigError> {
        let optional_ms = |key: &str| -> Result<Option<i64>, ConfigError> {
            let v: i64 = self.parse(key)?;
            Ok((v >= 0).then_some(v))
        };
        let advertised = {
            let (v, _) = self.get("advertised_listener");
            if v.is_empty() {
                None
            } else {
                let (host, port) = v
                    .rsplit_once(':')
                    .ok_or_else(|| self.invalid("advertised_listener", "expected host:port"))?;
                let port = port
                    .parse()
                    .map_err(|_| self.invalid("advertised_listener", "bad port"))?;
                Some((host.to_string(), port))
            }
        };
        let flush = {
            let (v, _) = self.get("flush");
            match v.as_str() {
                "group-commit" | "every-append" => FlushPolicy::EveryAppend,
                "os" => FlushPolicy::Os,
                other => match other.split_once(':') {
                    Some(("interval", ms)) => FlushPolicy::Interval(Duration::from_millis(
                        ms.parse()
                            .map_err(|_| self.invalid("flush", "interval:<ms>"))?,
                    )),
                    Some(("bytes", n)) => FlushPolicy::Bytes(
                        n.parse().map_err(|_| self.invalid("flush", "bytes:<n>"))?,
                    ),
                    _ => {
                        return Err(self.invalid(
                            "flush",
                            "expected group-commit, interval:<ms>, bytes:<n> or os",
                        ));
                    }
                },
            }
        };
        let metrics_listen = if self.get("metrics_listen").0.trim().is_empty() {
            None
        } else {
            Some(self.parse("metrics_listen")?)
        };
        let default_partitions: i32 = self.parse("default_partitions")?;
        if default_partitions < 1 {
            return Err(self.invalid("default_partitions", "must be at least 1"));
        }
        let retention_bytes: i64 = self.parse("retention_bytes")?;
        let group = self.group_config()?;
        let node_id: i32 = self.parse("node_id")?;
        let (peers, peer_listen) = self.cluster(node_id)?;
        let rf: i32 = self.parse("default_replication_factor")?;
        if rf == 0 || rf < -1 {
            return Err(self.invalid("default_replication_factor", "must be -1 or at least 1"));
        }
        let max_frame_bytes: usize = self.parse("max_frame_bytes")?;
        let queued_max_request_bytes: usize = self.parse("queued_max_request_bytes")?;
        if queued_max_request_bytes < max_frame_bytes {
            return Err(self.invalid(
                "queued_max_request_bytes",
                "must be at least max_frame_bytes, or the largest frame could never be read",
            ));
        }
        let max_partitions_per_topic: i32 = self.parse("max_partitions_per_topic")?;
        if max_partitions_per_topic < 1 {
            return Err(self.invalid("max_partitions_per_topic", "must be at least 1"));
        }
        if self.parse::<i32>("transaction_state_partitions")? > max_partitions_per_topic {
            return Err(self.invalid(
                "transaction_state_partitions",
                "must not exceed max_partitions_per_topic",
            ));
        }
        if group.offsets_topic_partitions > max_partitions_per_topic {
            return Err(self.invalid(
                "offsets_topic_partitions",
                "must not exceed max_partitions_per_topic",
            ));
        }
        let election: usize = self.parse("raft_election_ticks")?;
        let heartbeat: usize = self.parse("raft_heartbeat_ticks")?;
        if heartbeat < 1 || election <= heartbeat {
            return Err(self.invalid(
                "raft_election_ticks",
                "must exceed raft_heartbeat_ticks, which must be at least 1",
            ));
        }
        let settings = SETTINGS
            .iter()
            .map(|s| {
                let (value, origin) = self.get(s.key);
                SettingValue {
                    key: s.key,
                    value,
                    explicit: origin != "default",
                }
            })
            .collect();
        Ok(BrokerConfig {
            settings,
            listen: self.parse("listen")?,
            metrics_listen,
            advertised_listener: advertised,
            data_dir: PathBuf::from(self.get("data_dir").0),
            node_id,
            default_partitions,
            auto_create_topics: self.parse("auto_create_topics")?,
            max_connections: self.parse("max_connections")?,
            max_frame_bytes,
            queued_max_request_bytes,
            max_request_bytes_per_connection: self.parse("max_request_bytes_per_connection")?,
            connections_max_idle: Duration::from_millis(self.parse("connections_max_idle_ms")?),
            request_read_timeout: Duration::from_millis(self.parse("request_read_timeout_ms")?),
            max_connections_per_ip: self.parse("max_connections_per_ip")?,
            max_connections_per_ip_overrides: self.per_ip_overrides()?,
            max_partitions_per_topic,
            max_partitions_per_node: self.parse("max_partitions_per_node")?,
            max_open_logs: self.parse("max_open_logs")?,
            log: LogConfig {
                segment_bytes: self.parse("segment_bytes")?,
                segment_ms: optional_ms("segment_ms")?,
                index_interval_bytes: self.parse("index_interval_bytes")?,
                retention_ms: optional_ms("retention_ms")?,
                retention_bytes: (retention_bytes >= 0).then_some(retention_bytes as u64),
                max_message_bytes: self.parse("max_message_bytes")?,
                flush,
                ..LogConfig::default()
            },
            records: self.record_defaults()?,
            retention_check: Duration::from_millis(self.parse("retention_check_ms")?),
            shutdown_timeout: Duration::from_millis(self.parse("shutdown_timeout_ms")?),
            txn: self.txn_config(group.offsets_topic_partitions)?,
            transaction_version: {
                let level: i16 = self.parse("transaction_version")?;
                if !(0..=2).contains(&level) {
                    return Err(self.invalid("transaction_version", "must be 0, 1 or 2"));
                }
                level
            },
            group,
            offsets_compaction_check: Duration::from_millis(
                self.parse("offsets_compaction_check_ms")?,
            ),
            offsets_compaction_min_bytes: self.parse("offsets_compaction_min_bytes")?,
            peers,
            peer_listen,
            default_replication_factor: (rf > 0).then_some(rf),
            raft_tick: Duration::from_millis(self.parse::<u64>("raft_tick_ms")?.max(1)),
            raft_election_ticks: election,
            raft_heartbeat_ticks: heartbeat,
        })
    }

    /// The `message_timestamp_*` settings and the decompression bound.
    fn record_defaults(&self) -> Result<crate::record_check::RecordDefaults, ConfigError> {
        let log_append_time = match self.get("message_timestamp_type").0.trim() {
            "CreateTime" => false,
            "LogAppendTime" => true,
            _ => {
                return Err(self.invalid(
                    "message_timestamp_type",
                    "expected CreateTime or LogAppendTime",
                ));
            }
        };
        let ms = |key: &str| -> Result<i64, ConfigError> {
            let v: i64 = self.parse(key)?;
            if v < 0 {
                return Err(self.invalid(key, "must be at least 0"));
            }
            Ok(v)
        };
        Ok(crate::record_check::RecordDefaults {
            log_append_time,
            before_max_ms: ms("message_timestamp_before_max_ms")?,
            after_max_ms: ms("message_timestamp_after_max_ms")?,
            difference_max_ms: ms("message_timestamp_difference_max_ms")?,
            max_decompressed_batch_bytes: self.parse("max_decompressed_batch_bytes")?,
        })
    }

    /// `peers` and `peer_listen`: a single node when `peers` is empty; otherwise this
    /// node must be in it, and listens on its own entry unless told otherwise.
    #[allow(clippy::type_complexity)]
    fn cluster(
        &self,
        node_id: i32,
    ) -> Result<(BTreeMap<i32, String>, Option<SocketAddr>), ConfigError> {
        let (v, _) = self.get("peers");
        let mut peers = BTreeMap::new();
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| self.invalid("peers", "expected id=host:port,..."))?;
            let id: i32 = id
                .trim()
                .parse()
                .map_err(|_| self.invalid("peers", "node ids are integers"))?;
            if id < 0 || peers.insert(id, addr.trim().to_string()).is_some() {
                return Err(self.invalid("peers", "node ids must be distinct and >= 0"));
            }
        }
        if peers.is_empty() {
            return Ok((BTreeMap::from([(node_id, String::new())]), None));
        }
        let Some(own) = peers.get(&node_id).cloned() else {
            return Err(self.invalid("peers", "must list this node's --node-id"));
        };
        let (listen, origin) = self.get("peer_listen");
        let addr = if listen.is_empty() { own } else { listen };
        let parsed = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError::Invalid {
                key: "peer_listen".into(),
                value: addr.clone(),
                origin,
                reason: "expected host:port".into(),
            })?;
        Ok((peers, Some(parsed)))
    }

    /// `max_connections_per_ip_overrides`: `ip:count,...` (an IPv6 address may be
    /// bracketed; the count is after the last colon).
    fn per_ip_overrides(&self) -> Result<BTreeMap<std::net::IpAddr, usize>, ConfigError> {
        let key = "max_connections_per_ip_overrides";
        let (v, _) = self.get(key);
        let mut out = BTreeMap::new();
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (ip, n) = part
                .rsplit_once(':')
                .ok_or_else(|| self.invalid(key, "expected ip:count,..."))?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let ip = ip
                .parse()
                .map_err(|_| self.invalid(key, "not an IP address"))?;
            let n = n
                .trim()
                .parse()
                .map_err(|_| self.invalid(key, "the count is a number"))?;
            out.insert(ip, n);
        }
        Ok(out)
    }

    fn txn_config(
        &self,
        offsets_topic_partitions: i32,
    ) -> Result<strom_txn::TxnConfig, ConfigError> {
        let partitions: i32 = self.parse("transaction_state_partitions")?;
        if partitions < 1 {
            return Err(self.invalid("transaction_state_partitions", "must be at least 1"));
        }
        let max_timeout: i32 = self.parse("transaction_max_timeout_ms")?;
        if max_timeout < 1 {
            return Err(self.invalid("transaction_max_timeout_ms", "must be at least 1"));
        }
        Ok(strom_txn::TxnConfig {
            transaction_state_partitions: partitions,
            offsets_topic_partitions,
            max_timeout_ms: max_timeout,
            ..strom_txn::TxnConfig::default()
        })
    }

    fn group_config(&self) -> Result<strom_group::GroupConfig, ConfigError> {
        let partitions: i32 = self.parse("offsets_topic_partitions")?;
        if partitions < 1 {
            return Err(self.invalid("offsets_topic_partitions", "must be at least 1"));
        }
        let delay: i32 = self.parse("group_initial_rebalance_delay_ms")?;
        if delay < 0 {
            return Err(self.invalid("group_initial_rebalance_delay_ms", "must be >= 0"));
        }
        let min: i32 = self.parse("group_min_session_timeout_ms")?;
        let max: i32 = self.parse("group_max_session_timeout_ms")?;
        if min < 1 {
            return Err(self.invalid("group_min_session_timeout_ms", "must be at least 1"));
        }
        if max < min {
            return Err(self.invalid(
                "group_max_session_timeout_ms",
                "must not be below group_min_session_timeout_ms",
            ));
        }
        let retention: i64 = self.parse("offsets_retention_ms")?;
        if retention < 1 {
            return Err(self.invalid("offsets_retention_ms", "must be at least 1"));
        }
        Ok(strom_group::GroupConfig {
            offsets_topic_partitions: partitions,
            min_session_timeout_ms: min,
            max_session_timeout_ms: max,
            initial_rebalance_delay_ms: delay,
            offsets_retention_ms: retention,
            ..strom_group::GroupConfig::default()
        })
    }
}

/// The configuration reference, docs/configuration.md, as generated from [`SETTINGS`]
/// (a test fails when the file differs, so the two cannot drift apart).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from SETTINGS in crates/strom-broker/src/config.rs; do not edit. \
         Regenerate with: STROM_BLESS=1 cargo test -p strom-broker configuration_reference -->\n\n\
         Every setting of `strom serve` can be given three ways. Precedence: flag over \
         environment variable over config file over the default.\n\n\
         - in a TOML file passed with `--config FILE`, as `key = value` (strings, integers \
           or booleans: `retention_ms = 60000`);\n\
         - as an environment variable `STROM_` + the key in upper case \
           (`STROM_RETENTION_MS=60000`);\n\
         - as a flag `--` + the key with `-` for `_` (`--retention-ms 60000`).\n\n\
         Two flags are not settings: `--config FILE` (the TOML file) and \
         `--log-format text|json` (log line format; the level comes from `STROM_LOG`, \
         e.g. `STROM_LOG=info,strom_broker=debug`, and defaults to `info`).\n\n\
         | file key | flag | environment variable | default | meaning |\n\
         |---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", s.default)
        };
        out.push_str(&format!(
            "| `{}` | `--{}` | `STROM_{}` | {} | {} |\n",
            s.key,
            s.key.replace('_', "-"),
            s.key.to_ascii_uppercase(),
            default,
            s.help.replace('|', "\\|")
        ));
    }
    out
}

impl BrokerConfig {
    /// The defaults, as `strom serve` with no file, environment or flags.
    pub fn defaults() -> BrokerConfig {
        RawSettings::default().build().expect("defaults parse")
    }

    /// The host and port clients are told to connect to.
    pub fn advertised(&self) -> (String, u16) {
        self.advertised_listener
            .clone()
            .unwrap_or_else(|| (self.listen.ip().to_string(), self.listen.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_and_simple() {
        let c = BrokerConfig::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.data_dir, PathBuf::from("./strom-data"));
        assert_eq!(c.default_partitions, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.log.flush, FlushPolicy::EveryAppend);
        assert_eq!(c.log.retention_bytes, None);
        assert_eq!(c.group.offsets_topic_partitions, 8);
        assert_eq!(c.group.initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group.min_session_timeout_ms, 6000);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9644".parse().unwrap()));
    }

    #[test]
    fn an_empty_metrics_listen_disables_the_endpoint() {
        let mut raw = RawSettings::default();
        raw.merge_env([("STROM_METRICS_LISTEN".to_string(), String::new())])
            .unwrap();
        assert_eq!(raw.build().unwrap().metrics_listen, None);
        raw.set("metrics_listen", "0.0.0.0:9100", "flag").unwrap();
        assert_eq!(raw.build().unwrap().metrics_listen.unwrap().port(), 9100);
        raw.set("metrics_listen", "nowhere", "flag").unwrap();
        assert!(raw.build().is_err());
    }

    #[test]
    fn group_settings_are_parsed_and_checked() {
        let mut raw = RawSettings::default();
        raw.merge_env([
            (
                "STROM_GROUP_INITIAL_REBALANCE_DELAY_MS".to_string(),
                "100".to_string(),
            ),
            ("STROM_OFFSETS_RETENTION_MS".into(), "60000".into()),
        ])
        .unwrap();
        raw.set("group_max_session_timeout_ms", "7000", "flag")
            .unwrap();
        let c = raw.build().unwrap();
        assert_eq!(c.group.initial_rebalance_delay_ms, 100);
        assert_eq!(c.group.offsets_retention_ms, 60000);
        assert_eq!(c.group.max_session_timeout_ms, 7000);
        raw.set("group_max_session_timeout_ms", "5000", "flag")
            .unwrap();
        assert!(raw.build().is_err(), "max below min is refused");
        raw = RawSettings::default();
        raw.set("offsets_topic_partitions", "0", "flag").unwrap();
        assert!(raw.build().is_err());
    }

    /// docs/configuration.md is generated from SETTINGS; this fails when they differ.
    #[test]
    fn configuration_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let expected = reference_markdown();
        if std::env::var_os("STROM_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/configuration.md is out of date with SETTINGS; regenerate it with\n  \
             STROM_BLESS=1 cargo test -p strom-broker configuration_reference"
        );
    }

    #[test]
    fn request_bounds_are_parsed_and_checked() {
        let c = BrokerConfig::defaults();
        assert_eq!(c.connections_max_idle, Duration::from_secs(600));
        assert!(c.queued_max_request_bytes >= c.max_frame_bytes);
        let mut raw = RawSettings::default();
        raw.set(
            "max_connections_per_ip_overrides",
            "127.0.0.1:5, [::1]:7",
            "flag",
        )
        .unwrap();
        let c = raw.build().unwrap();
        assert_eq!(
            c.max_connections_per_ip_overrides[&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()],
            5
        );
        assert_eq!(
            c.max_connections_per_ip_overrides[&"::1".parse::<std::net::IpAddr>().unwrap()],
            7
        );
        raw.set("max_connections_per_ip_overrides", "localhost:5", "flag")
            .unwrap();
        assert!(raw.build().is_err());
        raw = RawSettings::default();
        raw.set("queued_max_request_bytes", "1000", "flag").unwrap();
        assert!(raw.build().is_err(), "a budget below max_frame_bytes");
        raw.set("max_frame_bytes", "1000", "flag").unwrap();
        assert!(raw.build().is_ok());
        raw.set("max_partitions_per_topic", "4", "flag").unwrap();
        assert!(raw.build().is_err(), "__consumer_offsets would not fit");
    }

    #[test]
    fn flags_override_env_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("strom.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\ndefault_partitions = 3\nretention_ms = 5000\n",
        )
        .unwrap();
        let mut raw = RawSettings::default();
        raw.merge_file(&file).unwrap();
        raw.merge_env([
            ("STROM_LISTEN".to_string(), "127.0.0.1:2000".to_string()),
            ("STROM_DEFAULT_PARTITIONS".into(), "4".into()),
            ("OTHER".into(), "x".into()),
        ])
        .unwrap();
        raw.set("listen", "127.0.0.1:3000", "flag --listen")
            .unwrap();
        let c = raw.build().unwrap();
        assert_eq!(c.listen.port(), 3000);
        assert_eq!(c.default_partitions, 4);
        assert_eq!(c.log.retention_ms, Some(5000));
    }

    #[test]
    fn bad_values_say_where_they_came_from() {
        let mut raw = RawSettings::default();
        raw.merge_env([("STROM_DEFAULT_PARTITIONS".to_string(), "zero".to_string())])
            .unwrap();
        let err = raw.build().unwrap_err().to_string();
        assert!(
            err.contains("STROM_DEFAULT_PARTITIONS") && err.contains("zero"),
            "{err}"
        );
        assert!(matches!(
            raw.set("no_such", "1", "flag"),
            Err(ConfigError::Unknown { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listen = [1]\n").unwrap();
        assert!(RawSettings::default().merge_file(&file).is_err());
        raw = RawSettings::default();
        raw.set("flush", "interval:250", "test").unwrap();
        assert_eq!(
            raw.build().unwrap().log.flush,
            FlushPolicy::Interval(Duration::from_millis(250))
        );
    }
}
