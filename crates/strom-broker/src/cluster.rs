//! The cluster's metadata as a replicated state machine: the commands written to the
//! metadata Raft group (group 0, log `__cluster_metadata-0`, voters: every node in
//! `--peers`) and the state every node rebuilds by applying them in log order —
//! brokers and their Kafka addresses, topics with partition replica assignments, Raft
//! group ids and configs.
//!
//! A command is one record (JSON value) in one record batch. Any node may propose one
//! (a follower's proposal is forwarded to the leader by raft); proposals are written so
//! that applying one twice or late is harmless (creating an existing topic is a no-op).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use strom_batch::RecordBatchBuilder;
use uuid::Uuid;

use crate::topics::TopicMeta;

/// The metadata group's Raft group id; partition groups start above it.
pub const METADATA_GROUP: u64 = 0;
/// The directory name (topic part) of the metadata log; not a Kafka topic.
pub const METADATA_LOG: &str = "__cluster_metadata";

/// The high half of the ids derived for topics created without one (ASCII "STROMLGY").
const LEGACY_ID_PREFIX: u64 = 0x5354_524f_4d4c_4759;

/// A broker's Kafka listener as clients should reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerAddr {
    pub host: String,
    pub port: i32,
}

/// A change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Command {
    /// A node announces its Kafka address (and, first of all, proposes a cluster id).
    RegisterBroker {
        id: i32,
        addr: BrokerAddr,
        cluster_id: String,
    },
    /// A new topic; `groups` is filled in when it is applied.
    CreateTopic { meta: TopicMeta },
    /// Deletes the topic `name` if it is still the creation with id `id` (absent in
    /// commands written before topic ids): a delete retried after the topic was deleted
    /// and created again must not delete the new one.
    DeleteTopic {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Uuid>,
    },
    /// More partitions (their assignments appended to `replicas`).
    AddPartitions {
        name: String,
        replicas: Vec<Vec<i32>>,
    },
    SetConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
}

/// What applying a command changed, for the node to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    Broker(i32),
    TopicCreated(TopicMeta),
    TopicDeleted(TopicMeta),
    TopicChanged(TopicMeta),
}

/// The metadata state machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaState {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerAddr>,
    pub topics: BTreeMap<String, TopicMeta>,
    pub next_group: u64,
    /// Every topic id ever created (live and deleted; 16 bytes each): an id is never
    /// given to a second topic, even by a creation retried after its topic was deleted,
    /// and a partition directory carrying a deleted topic's id is known to be garbage.
    used_ids: BTreeSet<Uuid>,
}

impl MetaState {
    /// Applies one command (every node does the same, in the same order).
    pub fn apply(&mut self, cmd: Command) -> Applied {
        match cmd {
            Command::RegisterBroker {
                id,
                addr,
                cluster_id,
            } => {
                if self.cluster_id.is_none() && !cluster_id.is_empty() {
                    self.cluster_id = Some(cluster_id);
                }
                if self.brokers.get(&id) == Some(&addr) {
                    return Applied::Nothing;
                }
                self.brokers.insert(id, addr);
                Applied::Broker(id)
            }
            Command::CreateTopic { mut meta } => {
                if self.topics.contains_key(&meta.name)
                    || meta.replicas.len() != meta.partitions as usize
                    || self.used_ids.contains(&meta.id)
                {
                    return Applied::Nothing;
                }
                if meta.id.is_nil() {
                    // Written without an id (a pre-Raft topics.json): derived from the
                    // first group id, which no other creation ever gets, so every node
                    // derives the same unique id.
                    meta.id = Uuid::from_u64_pair(LEGACY_ID_PREFIX, self.next_group.max(1));
                }
                meta.groups = self.allocate_groups(meta.partitions as usize);
                self.used_ids.insert(meta.id);
                self.topics.insert(meta.name.clone(), meta.clone());
                Applied::TopicCreated(meta)
            }
            Command::DeleteTopic { name, id } => match self.topics.get(&name) {
                Some(meta) if id.is_none_or(|id| id == meta.id) => {
                    let meta = self.topics.remove(&name).expect("just found");
                    Applied::TopicDeleted(meta)
                }
                _ => Applied::Nothing,
            },
            Command::AddPartitions { name, replicas } => {
                let Some(mut meta) = self.topics.get(&name).cloned() else {
                    return Applied::Nothing;
                };
                let groups = self.allocate_groups(replicas.len());
                meta.partitions += replicas.len() as i32;
                meta.replicas.extend(replicas);
                meta.groups.extend(groups);
                self.topics.insert(name, meta.clone());
                Applied::TopicChanged(meta)
            }
            Command::SetConfigs { name, configs } => match self.topics.get_mut(&name) {
                Some(meta) => {
                    meta.configs = configs;
                    Applied::TopicChanged(meta.clone())
                }
                None => Applied::Nothing,
            },
        }
    }

    /// Whether `id` is the id of a topic that was created and is gone.
    pub fn was_deleted(&self, id: Uuid) -> bool {
        self.used_ids.contains(&id) && !self.topics.values().any(|t| t.id == id)
    }

    fn allocate_groups(&mut self, n: usize) -> Vec<u64> {
        let first = self.next_group.max(METADATA_GROUP + 1);
        self.next_group = first + n as u64;
        (first..first + n as u64).collect()
    }
}

/// Encodes a command as the record batch that carries it through the metadata log.
pub fn encode_command(cmd: &Command, now_ms: i64) -> Vec<u8> {
    let value = serde_json::to_vec(cmd).expect("commands serialize");
    let mut b = RecordBatchBuilder::new();
    b.push(now_ms, None, Some(&value), &[]);
    b.build()
}

/// The commands in a committed entry's batch (none for raft's own entries).
pub fn decode_commands(batch: &[u8]) -> Vec<Command> {
    let Ok((header, records)) = strom_batch::decode_records(batch) else {
        return Vec::new();
    };
    if header.is_control() {
        return Vec::new();
    }
    records
        .into_iter()
        .filter_map(|r| r.value)
        .filter_map(|v| match serde_json::from_slice(&v) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "skipping a metadata command this version does not understand");
                None
            }
        })
        .collect()
}

/// Replica assignment for `partitions` new partitions at replication factor `rf` over
/// `brokers` (sorted), starting at partition index `first`: replicas rotate so that
/// leaders (the first replica is the preferred leader) and copies spread evenly.
pub fn assign_replicas(
    brokers: &[i32],
    first: i32,
    partitions: i32,
    rf: usize,
    seed: usize,
) -> Vec<Vec<i32>> {
    let n = brokers.len();
    (first..first + partitions)
        .map(|p| {
            (0..rf.min(n))
                .map(|i| brokers[(seed + p as usize + i) % n])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: uuid::Uuid::nil(),
            partitions,
            configs: BTreeMap::new(),
            internal: false,
            replicas: assign_replicas(&[1, 2, 3], 0, partitions, 3, 0),
            groups: Vec::new(),
        }
    }

    #[test]
    fn applying_is_deterministic_and_idempotent() {
        let cmds = vec![
            Command::CreateTopic {
                meta: topic("a", 2),
            },
            Command::CreateTopic {
                meta: topic("b", 1),
            },
            Command::CreateTopic {
                meta: topic("a", 5),
            },
            Command::AddPartitions {
                name: "b".into(),
                replicas: vec![vec![2, 3, 1]],
            },
            Command::DeleteTopic {
                name: "b".into(),
                id: Some(Uuid::new_v4()),
            },
            Command::DeleteTopic {
                name: "a".into(),
                id: None,
            },
        ];
        let mut x = MetaState::default();
        let mut y = MetaState::default();
        for c in &cmds {
            let batch = encode_command(c, 1);
            for d in decode_commands(&batch) {
                x.apply(d);
            }
            y.apply(c.clone());
        }
        assert_eq!(x, y);
        let b = &x.topics["b"];
        assert_eq!(
            b.groups,
            vec![3, 4],
            "a took 1 and 2; the duplicate took none"
        );
        assert_eq!(b.replicas.len(), 2);
        assert!(!x.topics.contains_key("a"));
        assert!(
            x.topics.contains_key("b"),
            "a delete of another id is no delete"
        );
        assert!(
            !b.id.is_nil(),
            "an id is derived for a creation without one"
        );
    }

    /// A topic deleted and created again under its name is another topic: a new id and
    /// new Raft groups. A creation retried with the old id (a proposal that arrives after
    /// the delete) and a delete retried after the re-creation change nothing.
    #[test]
    fn a_recreated_topic_is_a_new_topic_and_stale_retries_do_nothing() {
        let mut m = MetaState::default();
        let mut first = topic("t", 2);
        first.id = Uuid::new_v4();
        let Applied::TopicCreated(old) = m.apply(Command::CreateTopic {
            meta: first.clone(),
        }) else {
            panic!("not created")
        };
        let delete_old = Command::DeleteTopic {
            name: "t".into(),
            id: Some(old.id),
        };
        assert!(matches!(
            m.apply(delete_old.clone()),
            Applied::TopicDeleted(_)
        ));
        assert!(m.was_deleted(old.id));
        assert_eq!(
            m.apply(Command::CreateTopic { meta: first }),
            Applied::Nothing,
            "the deleted id is not given out again"
        );
        let mut second = topic("t", 2);
        second.id = Uuid::new_v4();
        let Applied::TopicCreated(new) = m.apply(Command::CreateTopic { meta: second }) else {
            panic!("not created")
        };
        assert_ne!(new.id, old.id);
        assert!(new.groups.iter().all(|g| !old.groups.contains(g)));
        assert_eq!(m.apply(delete_old), Applied::Nothing);
        assert_eq!(m.topics["t"].id, new.id);
        assert!(!m.was_deleted(new.id));
        // Creations without an id get distinct ids that every node derives alike.
        let mut a = MetaState::default();
        a.apply(Command::CreateTopic {
            meta: topic("x", 1),
        });
        a.apply(Command::CreateTopic {
            meta: topic("y", 1),
        });
        let (x, y) = (a.topics["x"].id, a.topics["y"].id);
        assert!(!x.is_nil() && !y.is_nil() && x != y);
        let mut b = MetaState::default();
        b.apply(Command::CreateTopic {
            meta: topic("x", 1),
        });
        assert_eq!(b.topics["x"].id, x);
    }

    #[test]
    fn assignments_spread_leaders() {
        let a = assign_replicas(&[1, 2, 3], 0, 6, 3, 0);
        let leaders: Vec<i32> = a.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        assert!(a.iter().all(|r| r.len() == 3));
        assert_eq!(
            assign_replicas(&[1, 2, 3], 0, 2, 5, 1),
            vec![vec![2, 3, 1], vec![3, 1, 2]]
        );
    }
}
