//! Topic and config admin: each change is a metadata command, proposed to the metadata
//! group and awaited until this node has applied it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strom_log::TopicPartition;
use strom_raft::state_file::MAX_VOTERS;
use strom_wire::ErrorCode;

use super::{ControlPlane, PROPOSAL_RETRY};
use crate::cluster::{Command, assign_replicas};
use crate::errors::{Failure, no_such_topic};
use crate::groups::OFFSETS_TOPIC;
use crate::topics::{TopicMeta, validate_configs, validate_topic_name};
use crate::txns::TXN_TOPIC;

/// How long a metadata change may take to be committed and applied.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Extra time a metadata change may take per partition it starts on a node: applying a
/// topic creates each local partition's files and Raft group (about 2 ms each on a
/// small VM), so a 10,000-partition topic legitimately takes longer than a small one.
const METADATA_TIMEOUT_PER_PARTITION: Duration = Duration::from_millis(5);

impl ControlPlane {
    /// Proposes a metadata command and waits until `done` finds its effect applied on
    /// this node (`Some(result)`), or times out.
    async fn change_metadata<T>(
        &self,
        cmd: Command,
        mut done: impl FnMut(&ControlPlane) -> Option<Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let mut rx = self.meta_version.subscribe();
        let new_partitions = match &cmd {
            Command::CreateTopic { meta } => meta.replicas.len(),
            Command::AddPartitions { replicas, .. } => replicas.len(),
            _ => 0,
        };
        let deadline = tokio::time::Instant::now()
            + METADATA_TIMEOUT
            + METADATA_TIMEOUT_PER_PARTITION * new_partitions as u32;
        let mut next_try = tokio::time::Instant::now();
        loop {
            if let Some(r) = done(self) {
                return r;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Failure::new(
                    ErrorCode::RequestTimedOut,
                    "the metadata change was not committed in time (is a majority of nodes up?)",
                ));
            }
            if now >= next_try {
                self.propose(&cmd);
                next_try = now + PROPOSAL_RETRY;
            }
            let _ = tokio::time::timeout_at(next_try.min(deadline), rx.changed()).await;
        }
    }

    /// Creates a topic: `partitions` and `replication_factor` of -1 mean the defaults;
    /// `assignments` (per partition, broker ids) replaces both. With `validate_only`
    /// nothing changes but every check runs.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>, Failure> {
        validate_topic_name(name)?;
        validate_configs(&configs)?;
        let nodes = self.node_ids();
        let replicas = match assignments {
            Some(a) => {
                for id in a.iter().flatten() {
                    if !nodes.contains(id) {
                        return Err(Failure::new(
                            ErrorCode::InvalidReplicaAssignment,
                            format!("broker {id} is not in this cluster ({nodes:?})"),
                        ));
                    }
                }
                if a.iter().any(|r| {
                    r.is_empty()
                        || r.len() > MAX_VOTERS
                        || r.iter().collect::<BTreeSet<_>>().len() != r.len()
                }) {
                    return Err(Failure::new(
                        ErrorCode::InvalidReplicaAssignment,
                        "each partition needs 1 to 8 distinct brokers",
                    ));
                }
                crate::limits::check_topic_partitions(&self.config, name, a.len() as i64)?;
                a
            }
            None => {
                let partitions = if partitions == -1 {
                    self.config.default_partitions
                } else {
                    partitions
                };
                if partitions < 1 {
                    return Err(Failure::new(
                        ErrorCode::InvalidPartitions,
                        format!("number of partitions must be at least 1, got {partitions}"),
                    ));
                }
                // Before the assignment below, whose size is the partition count.
                crate::limits::check_topic_partitions(&self.config, name, partitions.into())?;
                let rf = match replication_factor {
                    -1 => self.default_replication_factor(),
                    rf => rf,
                };
                if rf < 1 || rf as usize > nodes.len() || rf as usize > MAX_VOTERS {
                    return Err(Failure::new(
                        ErrorCode::InvalidReplicationFactor,
                        format!(
                            "replication factor {rf} is not between 1 and the {} available brokers",
                            nodes.len()
                        ),
                    ));
                }
                let seed = name.bytes().map(usize::from).sum::<usize>();
                assign_replicas(&nodes, 0, partitions, rf as usize, seed)
            }
        };
        crate::limits::check_node_partitions(&self.config, &self.topics.list(), &replicas)?;
        let meta = TopicMeta {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions: replicas.len() as i32,
            configs,
            internal: name.starts_with("__"),
            replicas,
            groups: Vec::new(),
        };
        if self.topics.contains(name) {
            return Err(Failure::new(
                ErrorCode::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if validate_only {
            return Ok(Arc::new(meta));
        }
        let id = meta.id;
        let created = self
            .change_metadata(Command::CreateTopic { meta }, |b| {
                b.topics.get(name).map(|t| match t.id == id {
                    true => Ok(t),
                    false => Err(Failure::new(
                        ErrorCode::TopicAlreadyExists,
                        format!("Topic '{name}' already exists."),
                    )),
                })
            })
            .await?;
        self.await_local_leaders(&created, Duration::from_secs(5))
            .await;
        tracing::info!(
            topic = name,
            partitions = created.partitions,
            "created topic"
        );
        Ok(created)
    }

    /// Waits (at most `timeout`) until every partition of `meta` with a replica here
    /// knows its leader, so a Metadata request right after CreateTopics finds leaders.
    /// Leaders are elected in milliseconds on a healthy cluster; a topic without a
    /// majority up is still created, and clients see LEADER_NOT_AVAILABLE meanwhile.
    async fn await_local_leaders(&self, meta: &TopicMeta, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // Partitions found with a leader are not looked at again: a topic of thousands
        // of partitions is checked once over, not once per wait.
        let mut next = 0;
        loop {
            while next < meta.partitions
                && self
                    .partitions
                    .status(&TopicPartition::new(meta.name.clone(), next))
                    .is_none_or(|s| s.leader.is_some())
            {
                next += 1;
            }
            if next == meta.partitions || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many partitions `__consumer_offsets` has: the topic's own count once it
    /// exists (a changed setting does not move groups), the setting before.
    pub fn offsets_topic_partitions(&self) -> i32 {
        self.topics
            .get(OFFSETS_TOPIC)
            .map_or(self.config.group.offsets_topic_partitions, |t| t.partitions)
    }

    /// Whether `__transaction_state` exists; if not, proposes to create it (at most
    /// every [`PROPOSAL_RETRY`]) and answers false: the caller answers
    /// COORDINATOR_NOT_AVAILABLE and the client asks again.
    pub fn ensure_transaction_topic(&self) -> bool {
        if self.topics.contains(TXN_TOPIC) {
            return true;
        }
        let mut last = self.txn_topic_proposed.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() >= PROPOSAL_RETRY) {
            *last = Some(std::time::Instant::now());
            tracing::info!("creating __transaction_state for the first transactional producer");
            self.propose(&Command::CreateTopic {
                meta: super::bootstrap::transaction_topic(self),
            });
        }
        false
    }

    /// Replicas of a topic created without a replication factor.
    pub fn default_replication_factor(&self) -> i32 {
        self.config
            .default_replication_factor
            .unwrap_or_else(|| self.node_ids().len().min(3) as i32)
    }

    /// Auto-creation on Metadata: the default partition count and broker defaults.
    pub async fn auto_create_topic(&self, name: &str) -> Result<Arc<TopicMeta>, Failure> {
        match self
            .create_topic(name, -1, -1, None, BTreeMap::new(), false)
            .await
        {
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => self.topics.get(name).ok_or(e),
            other => other,
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, Failure> {
        if name == OFFSETS_TOPIC || name == TXN_TOPIC {
            return Err(Failure::new(
                ErrorCode::InvalidTopicException,
                format!("the internal topic '{name}' cannot be deleted"),
            ));
        }
        let meta = self.topics.get(name).ok_or_else(|| no_such_topic(name))?;
        let id = meta.id;
        self.change_metadata(
            Command::DeleteTopic {
                name: name.to_string(),
                id: Some(id),
            },
            |b| match b.topics.get(name) {
                Some(t) if t.id == id => None,
                _ => Some(Ok(())),
            },
        )
        .await?;
        Ok(meta)
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>, Failure> {
        let current = self.topics.get(name).ok_or_else(|| no_such_topic(name))?;
        if name == OFFSETS_TOPIC || name == TXN_TOPIC {
            // Its partition count decides which partition holds each group's (or
            // transactional id's) records.
            return Err(Failure::new(
                ErrorCode::InvalidRequest,
                format!("the partition count of the internal topic '{name}' cannot change"),
            ));
        }
        // Kafka's messages, word for word: tools and tests print and match them.
        if count < current.partitions {
            return Err(Failure::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "The topic {name} currently has {} partition(s); {count} would not be an increase.",
                    current.partitions
                ),
            ));
        }
        if count == current.partitions {
            return Err(Failure::new(
                ErrorCode::InvalidPartitions,
                format!("Topic already has {count} partition(s)."),
            ));
        }
        // Before the assignment below, whose size is the partition count.
        crate::limits::check_topic_partitions(&self.config, name, count.into())?;
        let rf = current.replicas.first().map_or(1, |r| r.len());
        let seed = name.bytes().map(usize::from).sum::<usize>();
        let replicas = assign_replicas(
            &self.node_ids(),
            current.partitions,
            count - current.partitions,
            rf,
            seed,
        );
        crate::limits::check_node_partitions(&self.config, &self.topics.list(), &replicas)?;
        if validate_only {
            return Ok(Arc::new(TopicMeta {
                partitions: count,
                ..(*current).clone()
            }));
        }
        self.change_metadata(
            Command::AddPartitions {
                name: name.to_string(),
                replicas,
            },
            |b| match b.topics.get(name) {
                None => Some(Err(no_such_topic(name))),
                Some(t) if t.partitions >= count => Some(Ok(t)),
                Some(_) => None,
            },
        )
        .await
    }

    /// Replaces a topic's config overrides (applied to its logs on every node).
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>, Failure> {
        validate_configs(&configs)?;
        let current = self.topics.get(name).ok_or_else(|| no_such_topic(name))?;
        if validate_only {
            return Ok(Arc::new(TopicMeta {
                configs,
                ..(*current).clone()
            }));
        }
        let want = configs.clone();
        self.change_metadata(
            Command::SetConfigs {
                name: name.to_string(),
                configs,
            },
            |b| match b.topics.get(name) {
                None => Some(Err(no_such_topic(name))),
                Some(t) if t.configs == want => Some(Ok(t)),
                Some(_) => None,
            },
        )
        .await
    }
}
