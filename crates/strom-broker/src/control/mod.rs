//! The control plane: the cluster's metadata (topics, their partitions and settings, the
//! registered brokers) as commands in the metadata Raft group, applied on every node,
//! and what follows from them here: which partition replicas this node starts and
//! stops (through the data plane, `partitions/`), and topic and config admin.
//!
//! - `apply.rs`: committed metadata commands → topics and local replicas.
//! - `admin.rs`: CreateTopics, DeleteTopics, CreatePartitions, config changes.
//! - `leaders.rs`: leadership reports between nodes (who leads what elsewhere).
//! - `bootstrap.rs`: a node registers itself and creates `__consumer_offsets`.

mod admin;
mod apply;
pub(crate) mod bootstrap;
pub(crate) mod leaders;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use strom_batch::now_ms;
use strom_log::{LogConfig, TopicPartition};
use strom_raft::{GroupListener, PeerTransport, RaftNode};
use tokio::sync::watch;

use crate::cluster::{
    BrokerAddr, Command, METADATA_GROUP, METADATA_LOG, MetaState, encode_command,
};
use crate::config::BrokerConfig;
use crate::errors::{Failure, storage};
use crate::groups::Groups;
use crate::partition_dirs;
use crate::partitions::Partitions;
use crate::topics::{TopicMeta, TopicStore};
use crate::txns::Txns;
use leaders::RemoteLeaders;

/// How long a metadata change that has not shown up applied waits before it is proposed
/// again (a proposal made while no leader was known is dropped).
const PROPOSAL_RETRY: Duration = Duration::from_secs(2);

/// The cluster's metadata as this node has applied it, and the changes to it.
pub struct ControlPlane {
    config: Arc<BrokerConfig>,
    /// This node's cluster id until the metadata log agrees on one.
    own_cluster_id: String,
    raft: Arc<RaftNode>,
    partitions: Arc<Partitions>,
    groups: Arc<Groups>,
    /// Told the partition counts of `__transaction_state` and `__consumer_offsets`.
    txns: Arc<Txns>,
    /// This node's view of the topics (applied from the metadata log).
    topics: Arc<TopicStore>,
    meta: RwLock<MetaState>,
    /// Held while metadata commands are applied (one applier at a time, whatever thread
    /// Raft calls from); true while the metadata log is replayed at start-up, when
    /// commands only rebuild the state and the partitions are started from the end
    /// result (`finish_replay`).
    replaying: Mutex<bool>,
    /// Bumped after every applied metadata command.
    meta_version: watch::Sender<u64>,
    /// The connections to the other nodes (`None` on a single node).
    peer_transport: Option<Arc<PeerTransport>>,
    /// Leaders of partitions this node holds no replica of, as their leaders report.
    remote_leaders: RemoteLeaders,
    /// Set once the node is registered and `__consumer_offsets` exists.
    ready: AtomicBool,
    /// When this node last proposed to create `__transaction_state`.
    txn_topic_proposed: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("topics", &self.topics.list().len())
            .finish_non_exhaustive()
    }
}

/// What the control plane is built from (`Broker::open` wires it).
pub(crate) struct Parts {
    pub config: Arc<BrokerConfig>,
    pub own_cluster_id: String,
    pub raft: Arc<RaftNode>,
    pub partitions: Arc<Partitions>,
    pub groups: Arc<Groups>,
    pub txns: Arc<Txns>,
    pub topics: Arc<TopicStore>,
    pub peer_transport: Option<Arc<PeerTransport>>,
}

impl ControlPlane {
    /// Starts the metadata group, whose log is replayed to rebuild the topics and start
    /// this node's partition replicas.
    pub(crate) fn start(parts: Parts) -> Result<Arc<ControlPlane>, Failure> {
        let control = Arc::new(ControlPlane {
            config: parts.config,
            own_cluster_id: parts.own_cluster_id,
            raft: parts.raft,
            partitions: parts.partitions,
            groups: parts.groups,
            txns: parts.txns,
            topics: parts.topics,
            meta: RwLock::new(MetaState::default()),
            replaying: Mutex::new(true),
            meta_version: watch::channel(0).0,
            peer_transport: parts.peer_transport,
            remote_leaders: RemoteLeaders::default(),
            ready: AtomicBool::new(false),
            txn_topic_proposed: Mutex::new(None),
        });
        control.start_metadata_group()?;
        Ok(control)
    }

    /// Proposes a metadata command to the metadata group (a follower forwards it to the
    /// leader). Proposals are dropped while no leader is known: callers propose again
    /// every [`PROPOSAL_RETRY`] until they see the effect applied. A command applied
    /// twice is harmless (see cluster.rs).
    fn propose(&self, cmd: &Command) {
        let batch = encode_command(cmd, now_ms());
        if let Err(e) = self.raft.propose_command(METADATA_GROUP, batch) {
            tracing::debug!(error = %e, "metadata proposal not accepted yet (no leader?)");
        }
    }

    /// The topics as applied here.
    pub fn topics(&self) -> &Arc<TopicStore> {
        &self.topics
    }

    fn start_metadata_group(self: &Arc<Self>) -> Result<(), Failure> {
        let tp = TopicPartition::new(METADATA_LOG, 0);
        if !self.partitions.logs().contains(&tp) {
            let config = LogConfig {
                retention_ms: None,
                retention_bytes: None,
                segment_bytes: 64 << 20,
                ..self.config.log.clone()
            };
            self.partitions.logs().create(&tp, Some(config))?;
        }
        let voters: Vec<u64> = self.config.peers.keys().map(|&id| id as u64).collect();
        let listener = Arc::new(MetadataListener {
            control: Arc::downgrade(self),
        });
        // Raft hands the replica every committed entry of the log before `add_group`
        // returns (they are durable here, and applying starts from the log's start):
        // that is the replay. Entries committed later are applied as they come.
        self.raft
            .add_group(METADATA_GROUP, tp, &voters, true, Some(listener))?;
        self.finish_replay()
    }

    /// Ends the start-up replay of the metadata log: the partition directories of
    /// topics deleted in it are removed, and the local replicas of the topics that
    /// exist at its end are started, once each, with their settings at its end.
    ///
    /// Starting replicas while replaying, as commands came, started every partition of
    /// every topic ever created, and replaying "delete" then deleted the directory of a
    /// topic created again later under the same name: acknowledged records were lost
    /// and a cluster node panicked on a log that no longer held what it had promised.
    fn finish_replay(self: &Arc<Self>) -> Result<(), Failure> {
        let mut replaying = self.replaying.lock().unwrap();
        let mut stale = Vec::new();
        {
            let meta = self.meta.read().unwrap();
            for tp in self.partitions.logs().partitions() {
                if tp.topic == METADATA_LOG {
                    continue;
                }
                let dir = self.partitions.logs().data_dir().join(tp.dir_name());
                // A directory of an older partition format stops the node: serving the
                // others would leave that partition silently unavailable.
                strom_raft::state_file::check_format(&dir).map_err(storage)?;
                if partition_dirs::read(&dir).is_some_and(|id| meta.was_deleted(id)) {
                    stale.push(tp);
                }
            }
        }
        for tp in &stale {
            match self.partitions.logs().delete(tp) {
                Ok(_) => {
                    tracing::info!(partition = %tp.dir_name(), "removed the log of a deleted topic")
                }
                Err(e) => {
                    tracing::error!(partition = %tp.dir_name(), error = %e, "cannot remove the log of a deleted topic")
                }
            }
        }
        let topics = self.topics.list();
        let me = self.config.node_id;
        let local: Vec<(&TopicMeta, i32)> = topics
            .iter()
            .flat_map(|t| {
                (0..t.partitions)
                    .filter(move |&p| t.group(p).is_some() && t.replicas_of(p).contains(&me))
                    .map(move |p| (t.as_ref(), p))
            })
            .collect();
        let started = std::time::Instant::now();
        // Failures are logged per partition; the node serves the others.
        let _ = self.start_local_partitions(&local);
        tracing::info!(
            topics = topics.len(),
            partitions = local.len(),
            removed = stale.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "metadata replayed; local replicas started"
        );
        *replaying = false;
        Ok(())
    }

    /// The node ids of the cluster (from `--peers`; just this node when single).
    pub fn node_ids(&self) -> Vec<i32> {
        self.config.peers.keys().copied().collect()
    }

    /// The brokers that registered their Kafka address, by id.
    pub fn brokers(&self) -> BTreeMap<i32, BrokerAddr> {
        self.meta.read().unwrap().brokers.clone()
    }

    /// The cluster id (agreed through the metadata log; this node's until then).
    pub fn cluster_id(&self) -> String {
        self.meta
            .read()
            .unwrap()
            .cluster_id
            .clone()
            .unwrap_or_else(|| self.own_cluster_id.clone())
    }

    /// The node leading the metadata group, which Kafka clients are told is the
    /// controller.
    pub fn controller(&self) -> Option<i32> {
        self.raft
            .status(METADATA_GROUP)
            .and_then(|s| s.leader)
            .map(|l| l as i32)
    }

    /// Whether the node is registered and `__consumer_offsets` exists.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
}

/// Feeds committed metadata commands to the control plane.
struct MetadataListener {
    control: Weak<ControlPlane>,
}

impl GroupListener for MetadataListener {
    fn apply(&self, _group: u64, entries: Vec<strom_raft::raft::eraftpb::Entry>) {
        if let Some(c) = self.control.upgrade() {
            c.apply_metadata(entries);
        }
    }
}
