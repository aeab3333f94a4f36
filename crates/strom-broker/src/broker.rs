//! `Broker`: the state every connection shares — topics, partition logs, producer
//! state, node identity — and the partition-level operations the request handlers are
//! built from. Knows nothing of sockets or of the wire format.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use strom_batch::{RecordBatchHeader, split_batches};
use strom_log::{LogManager, ManagerConfig, TopicPartition};
use strom_wire::ErrorCode;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::errors::{Failure, batch_error_code};
use crate::groups::{Groups, OFFSETS_TOPIC};
use crate::metrics::Metrics;
use crate::node::NodeState;
use crate::producers::{ProducerStates, SequenceCheck};
use crate::topics::{
    TopicError, TopicMeta, TopicStore, log_config, validate_configs, validate_topic_name,
};

/// The leader epoch a single node reports and stamps: it is always the leader.
pub const LEADER_EPOCH: i32 = 0;

/// How many of a partition's newest segments are scanned to rebuild idempotent producer
/// state the first time a producer writes after a restart.
const PRODUCER_STATE_SEGMENTS: usize = 2;

/// Per-partition state that lives beside the log.
#[derive(Debug)]
struct Partition {
    /// `None` until the first idempotent produce after start-up rebuilds it from the log.
    producers: Mutex<Option<ProducerStates>>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; nothing new was appended.
    pub duplicate: bool,
}

/// What a read found.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// Whole batches as a view of the segment file; `None` when there is nothing yet.
    pub slice: Option<strom_log::FileSlice>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl PartitionRead {
    pub fn len(&self) -> usize {
        self.slice.as_ref().map_or(0, |s| s.len as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The broker's shared state.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: Arc<LogManager>,
    pub topics: TopicStore,
    pub node: NodeState,
    /// The consumer-group coordinator.
    pub groups: Groups,
    /// Counters and histograms the request path and storage record (`metrics/`).
    pub metrics: Arc<Metrics>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped after every append so long-polling fetches re-check.
    appended: watch::Sender<u64>,
    /// Set when the server starts shutting down, so long polls answer at once.
    stopping: watch::Sender<bool>,
}

fn no_such_topic(name: &str) -> TopicError {
    TopicError::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Broker {
    /// Opens the data directory: node identity, topics, and every partition log
    /// (recovering from a crash), and reconciles logs with topics.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, Failure> {
        let storage = |e: std::io::Error| Failure::new(ErrorCode::KafkaStorageError, e.to_string());
        let node = NodeState::open(&config.data_dir).map_err(storage)?;
        let topics = TopicStore::open(&config.data_dir).map_err(storage)?;
        let mut manager = ManagerConfig::new(&config.data_dir);
        manager.default_log = config.log.clone();
        manager.max_open_logs = config.max_open_logs;
        manager.retention_check_interval = config.retention_check;
        let logs = LogManager::open(manager)?;
        let groups = Groups::new(config.group.clone());
        let metrics = Arc::new(Metrics::new());
        logs.group_commit().observe_fsyncs(metrics.fsync_observer());
        let broker = Broker {
            config,
            logs,
            topics,
            node,
            groups,
            metrics,
            partitions: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
            stopping: watch::channel(false).0,
        };
        broker.reconcile()?;
        let offsets_partitions = broker.ensure_offsets_topic()?;
        broker.groups.load_all(&broker, offsets_partitions)?;
        Ok(Arc::new(broker))
    }

    /// Creates `__consumer_offsets` if missing and returns its partition count (that of
    /// an existing topic wins over the setting: a group's partition is derived from it).
    ///
    /// The topic is marked `cleanup.policy=compact` with retention off, so no commit is
    /// ever deleted by time or size; it is compacted by snapshot instead (the newest
    /// record per key written again, then the log start moved past the history: see
    /// `groups/compact.rs` and docs/consumer-groups.md).
    fn ensure_offsets_topic(&self) -> Result<i32, Failure> {
        if let Some(t) = self.topics.get(OFFSETS_TOPIC) {
            if t.partitions != self.config.group.offsets_topic_partitions {
                tracing::warn!(
                    existing = t.partitions,
                    setting = self.config.group.offsets_topic_partitions,
                    "__consumer_offsets exists with another partition count; keeping it"
                );
            }
            return Ok(t.partitions);
        }
        let configs: BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "104857600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let partitions = self.config.group.offsets_topic_partitions;
        let meta = TopicMeta {
            name: OFFSETS_TOPIC.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs,
            internal: true,
        };
        self.topics
            .update(|t| {
                t.insert(OFFSETS_TOPIC.to_string(), meta.clone());
                Ok(())
            })
            .map_err(|e| Failure::new(e.code, e.message))?;
        self.ensure_partitions(&meta)?;
        tracing::info!(partitions, "created {OFFSETS_TOPIC}");
        Ok(partitions)
    }

    /// Per partition of a consumer group: committed offset, log end offset and lag.
    /// `None` for a group this node does not know.
    pub fn group_lag(&self, group_id: &str) -> Option<Vec<strom_group::PartitionLag>> {
        self.groups.lag(self, group_id)
    }

    /// Makes the logs match the topics: every partition of every topic has a log with
    /// the topic's settings; logs of topics that no longer exist (a crash during a
    /// delete) are removed.
    fn reconcile(&self) -> Result<(), Failure> {
        let topics = self.topics.list();
        for t in &topics {
            self.ensure_partitions(t)?;
        }
        for tp in self.logs.partitions() {
            let known = topics
                .iter()
                .any(|t| t.name == tp.topic && tp.partition < t.partitions);
            if !known {
                tracing::warn!(partition = %tp.dir_name(), "removing log of a deleted topic");
                self.logs.delete(&tp)?;
            }
        }
        Ok(())
    }

    fn ensure_partitions(&self, topic: &TopicMeta) -> Result<(), Failure> {
        let config = log_config(&self.config, &topic.configs);
        let mut parts = self.partitions.write().unwrap();
        for p in 0..topic.partitions {
            let tp = TopicPartition::new(topic.name.clone(), p);
            self.logs.create(&tp, Some(config.clone()))?;
            self.logs
                .with_log(&tp, |log| log.set_config(config.clone()));
            parts.entry(tp).or_insert_with(|| {
                Arc::new(Partition {
                    producers: Mutex::new(None),
                })
            });
        }
        Ok(())
    }

    fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap().get(tp).cloned()
    }

    /// Creates a topic; `partitions` of -1 means the default. With `validate_only`
    /// nothing changes but every check runs.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 {
            self.config.default_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicError::new(
                ErrorCode::InvalidPartitions,
                format!("number of partitions must be at least 1, got {partitions}"),
            ));
        }
        validate_configs(&configs)?;
        let meta = TopicMeta {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs,
            internal: name.starts_with("__"),
        };
        if validate_only {
            if self.topics.get(name).is_some() {
                return Err(TopicError::new(
                    ErrorCode::TopicAlreadyExists,
                    format!("topic '{name}' already exists"),
                ));
            }
            return Ok(meta);
        }
        self.topics.update(|t| {
            if t.contains_key(name) {
                return Err(TopicError::new(
                    ErrorCode::TopicAlreadyExists,
                    format!("topic '{name}' already exists"),
                ));
            }
            t.insert(name.to_string(), meta.clone());
            Ok(())
        })?;
        self.ensure_partitions(&meta)
            .map_err(|f| TopicError::new(f.code, f.message))?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(meta)
    }

    /// Auto-creation on Metadata: the default partition count and broker defaults.
    pub fn auto_create_topic(&self, name: &str) -> Result<TopicMeta, TopicError> {
        match self.create_topic(name, -1, BTreeMap::new(), false) {
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => self.topics.get(name).ok_or(e),
            other => other,
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, TopicError> {
        if name == OFFSETS_TOPIC {
            return Err(TopicError::new(
                ErrorCode::InvalidTopicException,
                format!("the internal topic '{name}' cannot be deleted"),
            ));
        }
        let meta = self
            .topics
            .update(|t| t.remove(name).ok_or_else(|| no_such_topic(name)))?;
        let mut parts = self.partitions.write().unwrap();
        for p in 0..meta.partitions {
            let tp = TopicPartition::new(name, p);
            parts.remove(&tp);
            if let Err(e) = self.logs.delete(&tp) {
                tracing::error!(partition = %tp.dir_name(), error = %e, "deleting log failed");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(meta)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        let current = self.topics.get(name).ok_or_else(|| no_such_topic(name))?;
        if count <= current.partitions {
            return Err(TopicError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic '{name}' has {} partitions; the new count {count} must be larger",
                    current.partitions
                ),
            ));
        }
        if validate_only {
            return Ok(TopicMeta {
                partitions: count,
                ..current
            });
        }
        self.change_topic(name, |m| m.partitions = count)
    }

    /// Replaces a topic's config overrides and applies them to its logs.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, TopicError> {
        validate_configs(&configs)?;
        let current = self.topics.get(name).ok_or_else(|| no_such_topic(name))?;
        if validate_only {
            return Ok(TopicMeta { configs, ..current });
        }
        self.change_topic(name, |m| m.configs = configs)
    }

    /// Changes a topic's persisted metadata, then brings its logs in line (new
    /// partitions, new settings).
    fn change_topic(
        &self,
        name: &str,
        change: impl FnOnce(&mut TopicMeta),
    ) -> Result<TopicMeta, TopicError> {
        let meta = self.topics.update(|t| {
            let m = t.get_mut(name).ok_or_else(|| no_such_topic(name))?;
            change(m);
            Ok(m.clone())
        })?;
        self.ensure_partitions(&meta)
            .map_err(|f| TopicError::new(f.code, f.message))?;
        Ok(meta)
    }

    /// Appends a Produce request's records for one partition: validates every batch,
    /// deduplicates idempotent retries, stamps offsets and writes. Does not wait for
    /// durability (see [`wait_durable`](Self::wait_durable)).
    pub fn append(&self, tp: &TopicPartition, records: &[u8]) -> Result<Appended, Failure> {
        let partition = self.partition(tp).ok_or_else(|| {
            Failure::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown partition {}", tp.dir_name()),
            )
        })?;
        let batches = split_batches(records)
            .map_err(|e| Failure::new(batch_error_code(&e), e.to_string()))?;
        let first = batches[0].0;
        if batches
            .iter()
            .any(|(h, _)| h.is_transactional() || h.is_control())
        {
            return Err(Failure::new(
                ErrorCode::InvalidRecord,
                "transactional batches are not supported yet",
            ));
        }
        let idempotent = first.has_producer_id();
        if idempotent && batches.len() > 1 {
            return Err(Failure::new(
                ErrorCode::InvalidRecord,
                "an idempotent producer sends one batch per partition",
            ));
        }
        let mut guard = partition.producers.lock().unwrap();
        if idempotent {
            if guard.is_none() {
                *guard = Some(self.rebuild_producer_state(tp)?);
            }
            let states = guard.as_ref().unwrap();
            match states.check(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.records_count,
            ) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                } => {
                    let log_start_offset = self
                        .logs
                        .with_log(tp, |l| l.log_start_offset())
                        .unwrap_or(0);
                    return Ok(Appended {
                        base_offset,
                        last_offset,
                        log_start_offset,
                        duplicate: true,
                    });
                }
                SequenceCheck::Reject(code) => {
                    return Err(Failure::new(
                        code,
                        format!(
                            "producer {} epoch {} sequence {} refused",
                            first.producer_id, first.producer_epoch, first.base_sequence
                        ),
                    ));
                }
            }
        }
        let mut buf = records.to_vec();
        let (info, start) = self
            .logs
            .with_log(tp, |log| {
                log.append(&mut buf, LEADER_EPOCH, now_ms())
                    .map(|i| (i, log.log_start_offset()))
            })
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("unknown partition {}", tp.dir_name()),
                )
            })??;
        if idempotent && let Some(states) = guard.as_mut() {
            states.record(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.records_count,
                info.base_offset,
                info.last_offset,
            );
        }
        drop(guard);
        self.metrics.bytes_in(&tp.topic, records.len());
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Appended {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_start_offset: start,
            duplicate: false,
        })
    }

    fn rebuild_producer_state(&self, tp: &TopicPartition) -> Result<ProducerStates, Failure> {
        let mut states = ProducerStates::default();
        let mut record = |h: &RecordBatchHeader| {
            if h.has_producer_id() {
                states.record(
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence,
                    h.records_count,
                    h.base_offset,
                    h.last_offset(),
                );
            }
        };
        self.logs
            .with_log(tp, |log| {
                log.scan_recent_headers(PRODUCER_STATE_SEGMENTS, &mut record)
            })
            .unwrap_or(Ok(()))?;
        Ok(states)
    }

    /// Resolves once `tp` is durable below `offset` (group commit), or at once when the
    /// log is not flushed per append.
    pub async fn wait_durable(&self, tp: &TopicPartition, offset: i64) -> Result<(), Failure> {
        let per_append = self
            .logs
            .with_log(tp, |l| {
                l.config().flush == strom_log::FlushPolicy::EveryAppend
            })
            .unwrap_or(false);
        if !per_append {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.logs.when_durable(
            tp,
            offset,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match rx.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Failure::from(&*e)),
            Err(_) => Err(Failure::new(
                ErrorCode::KafkaStorageError,
                "group commit stopped",
            )),
        }
    }

    /// Reads whole batches from `offset`, at most about `max_bytes` (at least one batch),
    /// as a slice of the segment file: the records are not copied.
    pub fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<PartitionRead, Failure> {
        self.logs
            .with_log(tp, |log| {
                let r = log.read(offset, max_bytes, None)?;
                Ok::<_, strom_log::LogError>(PartitionRead {
                    slice: r.slice,
                    high_watermark: r.log_end_offset,
                    log_start_offset: r.log_start_offset,
                })
            })
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("unknown partition {}", tp.dir_name()),
                )
            })?
            .map_err(Failure::from)
    }

    /// The log start and end (high watermark) of a partition.
    pub fn offsets(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        self.logs
            .with_log(tp, |l| (l.log_start_offset(), l.log_end_offset()))
    }

    /// A receiver that changes after every append, for long polling.
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// A receiver that turns true when the server begins to shut down.
    pub fn subscribe_stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells long-polling requests to answer now: the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Allocates an idempotent producer id.
    pub fn new_producer_id(&self) -> Result<i64, Failure> {
        self.node
            .next_producer_id()
            .map_err(|e| Failure::new(ErrorCode::KafkaStorageError, e.to_string()))
    }

    /// Clean shutdown of the storage: flush and checkpoint every log.
    pub fn close(&self) -> Result<(), Failure> {
        self.logs.close().map_err(Failure::from)
    }
}
