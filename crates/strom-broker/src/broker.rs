//! `Broker`: the state every connection shares — topics, partition logs and their Raft
//! groups, producer state, node identity — and the partition-level operations the
//! request handlers are built from. Knows nothing of sockets or of the wire format.
//!
//! Every partition is a Raft group (a group of one on a single node): appends go to the
//! leader's group, acks=all waits for the commit, reads stop at the high watermark (the
//! commit index). Topic changes are commands in the metadata group (`cluster.rs`),
//! applied on every node.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use strom_batch::{RecordBatchHeader, split_batches};
use strom_log::{LogConfig, LogManager, ManagerConfig, TopicPartition};
use strom_raft::state_file::MAX_VOTERS;
use strom_raft::{GroupListener, PeerTransport, RaftError, RaftNode, ReplicaConfig, Transport};
use strom_wire::ErrorCode;
use tokio::sync::watch;

use crate::bootstrap;
use crate::cluster::{
    Applied, BrokerAddr, Command, METADATA_GROUP, METADATA_LOG, MetaState, assign_replicas,
    decode_commands, encode_command,
};
use crate::config::BrokerConfig;
use crate::errors::{Failure, batch_error_code};
use crate::groups::{Groups, OFFSETS_TOPIC};
use crate::leaders::{self, GOSSIP_GROUP, Led, RemoteLeaders};
use crate::metrics::Metrics;
use crate::node::NodeState;
use crate::partition_dirs;
use crate::producers::{ProducerStates, SequenceCheck};
use crate::record_check;
use crate::topics::{TopicMeta, TopicStore, log_config, validate_configs, validate_topic_name};

/// How many of a partition's newest segments are scanned to rebuild idempotent producer
/// state when this node becomes a partition's leader (or first writes after a restart).
const PRODUCER_STATE_SEGMENTS: usize = 2;

/// Bytes a partition's leader accepts beyond its high watermark before it answers
/// produce requests with a retriable error: a leader whose followers (or disk) cannot
/// keep up says so instead of queueing without bound.
const MAX_UNCOMMITTED_BYTES: u64 = 256 << 20;

/// Threads that start a topic's local partitions (logs and Raft groups) at once.
const PARTITION_START_THREADS: usize = 8;

/// How long a metadata change may take to be committed and applied.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Extra time a metadata change may take per partition it starts on a node: applying a
/// topic creates each local partition's files and Raft group (about 2 ms each on a
/// small VM), so a 10,000-partition topic legitimately takes longer than a small one.
const METADATA_TIMEOUT_PER_PARTITION: Duration = Duration::from_millis(5);

/// A partition's replication state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionStatus {
    /// Offsets below it are committed (the Raft commit index).
    pub high_watermark: i64,
    /// The Raft term = Kafka leader epoch.
    pub term: u64,
    pub leader: Option<i32>,
    pub is_leader: bool,
    /// This node's replica stopped after a storage error and is being recovered:
    /// requests for it answer KAFKA_STORAGE_ERROR.
    pub offline: bool,
}

impl PartitionStatus {
    pub fn leader_epoch(&self) -> i32 {
        self.term as i32
    }
}

/// Per-partition state that lives beside the log, for partitions with a replica here.
#[derive(Debug)]
pub(crate) struct Partition {
    pub group: u64,
    /// `None` until the first idempotent produce after start-up or a leader change
    /// rebuilds it from the log.
    producers: Mutex<Option<ProducerStates>>,
    status: watch::Sender<PartitionStatus>,
    /// Appended but not yet committed: (end offset, bytes) per append, and their sum.
    uncommitted: Mutex<(VecDeque<(i64, u64)>, u64)>,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; nothing new was appended.
    pub duplicate: bool,
    /// The term it was appended in (commit waits fail if leadership moves on).
    pub term: u64,
    /// The broker's clock stamped on the batches (LogAppendTime topics), else -1.
    pub log_append_time: i64,
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
    /// This node's view of the topics (applied from the metadata log).
    pub topics: TopicStore,
    pub node: NodeState,
    /// The consumer-group coordinator.
    pub groups: Groups,
    /// Every Raft group of this node: the metadata group and one per local replica.
    pub raft: Arc<RaftNode>,
    meta: RwLock<MetaState>,
    /// Held while metadata commands are applied (one applier at a time, whatever thread
    /// Raft calls from); true while the metadata log is replayed at start-up, when
    /// commands only rebuild the state and the partitions are started from the end
    /// result (`finish_replay`).
    replaying: Mutex<bool>,
    /// Bumped after every applied metadata command.
    meta_version: watch::Sender<u64>,
    /// Counters and histograms the request path and storage record (`metrics/`).
    pub metrics: Arc<Metrics>,
    /// The connections to the other nodes (`None` on a single node).
    peer_transport: Option<Arc<PeerTransport>>,
    /// Leaders of partitions this node holds no replica of, as their leaders report.
    remote_leaders: RemoteLeaders,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped whenever a high watermark moves, so long-polling fetches re-check.
    appended: watch::Sender<u64>,
    /// Set when the server starts shutting down, so long polls answer at once.
    stopping: watch::Sender<bool>,
    /// Set once the node is registered and `__consumer_offsets` exists.
    ready: AtomicBool,
}

fn no_such_topic(name: &str) -> Failure {
    Failure::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

fn not_leader(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::NotLeaderOrFollower,
        format!("this broker is not the leader of {}", tp.dir_name()),
    )
}

fn offline(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::KafkaStorageError,
        format!(
            "the replica of {} on this broker is offline after a storage error and is being recovered",
            tp.dir_name()
        ),
    )
}

fn unknown_partition(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("unknown partition {}", tp.dir_name()),
    )
}

pub use strom_batch::now_ms;

/// No peers: a single node's groups are groups of one.
#[derive(Debug)]
struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, _to: u64, _group: u64, _msg: strom_raft::Message) {}
}

impl Broker {
    /// Opens the data directory: node identity, every partition log (recovering from a
    /// crash), the Raft node and the metadata group, whose log is replayed to rebuild
    /// the topics and start this node's partition replicas. Registration of this node
    /// and the creation of `__consumer_offsets` continue in the background.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, Failure> {
        // Raft's listeners run on threads of their own and hand the group coordinator
        // work that ends in tasks: those go to the runtime that opened the broker.
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Failure::new(
                ErrorCode::UnknownServerError,
                "Broker::open must be called inside a tokio runtime",
            )
        })?;
        let storage = |e: std::io::Error| Failure::new(ErrorCode::KafkaStorageError, e.to_string());
        let node = NodeState::open(&config.data_dir).map_err(storage)?;
        let mut manager = ManagerConfig::new(&config.data_dir);
        manager.default_log = config.log.clone();
        manager.max_open_logs = open_log_budget(config.max_open_logs, config.max_connections);
        manager.retention_check_interval = config.retention_check;
        let logs = LogManager::open(manager)?;
        let peer_transport = (config.peers.len() > 1).then(|| {
            let peers: HashMap<u64, String> = config
                .peers
                .iter()
                .map(|(id, a)| (*id as u64, a.clone()))
                .collect();
            PeerTransport::start(config.node_id as u64, &peers)
        });
        let transport: Arc<dyn Transport> = match &peer_transport {
            Some(t) => t.clone(),
            None => Arc::new(NoPeers),
        };
        let raft_config = ReplicaConfig {
            election_tick: config.raft_election_ticks,
            heartbeat_tick: config.raft_heartbeat_ticks,
            ..ReplicaConfig::default()
        };
        let raft = RaftNode::start(
            config.node_id as u64,
            logs.clone(),
            transport,
            raft_config,
            config.raft_tick,
        );
        if let Some(t) = &peer_transport {
            let weak = Arc::downgrade(&raft);
            t.on_unreachable(Arc::new(move |peer| {
                if let Some(raft) = weak.upgrade() {
                    raft.report_unreachable(peer);
                }
            }));
        }
        let groups = Groups::new(config.group.clone(), runtime);
        let metrics = Arc::new(Metrics::new());
        logs.group_commit().observe_fsyncs(metrics.fsync_observer());
        let broker = Arc::new(Broker {
            config,
            logs,
            topics: TopicStore::default(),
            node,
            groups,
            raft,
            meta: RwLock::new(MetaState::default()),
            replaying: Mutex::new(true),
            meta_version: watch::channel(0).0,
            metrics,
            peer_transport,
            remote_leaders: RemoteLeaders::default(),
            partitions: RwLock::new(HashMap::new()),
            appended: watch::channel(0).0,
            stopping: watch::channel(false).0,
            ready: AtomicBool::new(false),
        });
        broker.start_metadata_group()?;
        bootstrap::start(&broker);
        Ok(broker)
    }

    fn start_metadata_group(self: &Arc<Self>) -> Result<(), Failure> {
        let tp = TopicPartition::new(METADATA_LOG, 0);
        if !self.logs.contains(&tp) {
            let config = LogConfig {
                retention_ms: None,
                retention_bytes: None,
                segment_bytes: 64 << 20,
                ..self.config.log.clone()
            };
            self.logs.create(&tp, Some(config))?;
        }
        let voters: Vec<u64> = self.config.peers.keys().map(|&id| id as u64).collect();
        let listener = Arc::new(MetadataListener {
            broker: Arc::downgrade(self),
        });
        // Raft hands the replica every committed entry of the log before `add_group`
        // returns (they are durable here, and applying starts from the log's start):
        // that is the replay. Entries committed later are applied as they come.
        self.raft
            .add_group(METADATA_GROUP, tp, &voters, true, Some(listener))
            .map_err(raft_failure)?;
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
            for tp in self.logs.partitions() {
                if tp.topic == METADATA_LOG {
                    continue;
                }
                let dir = self.logs.data_dir().join(tp.dir_name());
                // A directory of an older partition format stops the node: serving the
                // others would leave that partition silently unavailable.
                strom_raft::state_file::check_format(&dir)
                    .map_err(|e| Failure::new(ErrorCode::KafkaStorageError, e.to_string()))?;
                if partition_dirs::read(&dir).is_some_and(|id| meta.was_deleted(id)) {
                    stale.push(tp);
                }
            }
        }
        for tp in &stale {
            match self.logs.delete(tp) {
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
            .unwrap_or_else(|| self.node.cluster_id.clone())
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

    /// Blocks until the node is ready or `timeout` passes (tests and tools).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !self.is_ready() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Per partition of a consumer group: committed offset, log end offset and lag.
    /// `None` for a group this node does not coordinate.
    pub fn group_lag(&self, group_id: &str) -> Option<Vec<strom_group::PartitionLag>> {
        self.groups.lag(self, group_id)
    }

    /// Applies committed metadata commands (the metadata group's listener).
    fn apply_metadata(self: &Arc<Self>, entries: Vec<strom_raft::raft::eraftpb::Entry>) {
        let replaying = self.replaying.lock().unwrap();
        for e in entries {
            if e.data.is_empty() {
                continue;
            }
            for cmd in decode_commands(&e.data) {
                let applied = self.meta.write().unwrap().apply(cmd);
                match applied {
                    Applied::Nothing | Applied::Broker(_) => {}
                    Applied::TopicCreated(meta) | Applied::TopicChanged(meta) => {
                        if meta.name == OFFSETS_TOPIC {
                            self.groups.offsets_topic_exists(meta.partitions);
                        }
                        // Replicas first: whoever sees the topic finds its partitions.
                        if !*replaying {
                            // Failures are logged per partition.
                            let _ = self.ensure_local_partitions(&meta);
                        }
                        self.topics.set(meta);
                    }
                    Applied::TopicDeleted(meta) => {
                        self.topics.remove(&meta.name);
                        if *replaying {
                            // Its files were removed when the delete was first applied
                            // (what a crash left is removed by `finish_replay`), and its
                            // offsets' tombstones are in `__consumer_offsets`.
                            continue;
                        }
                        self.remove_local_partitions(&meta);
                        self.groups
                            .topics_deleted(self, std::slice::from_ref(&meta.name));
                        tracing::info!(topic = %meta.name, id = %meta.id, "deleted topic");
                    }
                }
            }
        }
        drop(replaying);
        self.meta_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Opens (creating) the log and starts the Raft group of every partition of `meta`
    /// with a replica on this node, and applies the topic's settings to them.
    fn ensure_local_partitions(self: &Arc<Self>, meta: &TopicMeta) -> Result<(), Failure> {
        let me = self.config.node_id;
        let local: Vec<(&TopicMeta, i32)> = (0..meta.partitions)
            .filter(|&p| meta.group(p).is_some() && meta.replicas_of(p).contains(&me))
            .map(|p| (meta, p))
            .collect();
        self.start_local_partitions(&local)
    }

    /// Opens (creating) the log and starts the Raft group of each partition, and applies
    /// its topic's settings to it. Starting a group waits for the disk (its first term
    /// is fsynced before it leads), so many partitions are started by several threads
    /// at once: the disk takes concurrent fsyncs of different files about as fast as
    /// one, and a 10,000-partition topic is then created (or restarted) in seconds
    /// rather than minutes.
    fn start_local_partitions(
        self: &Arc<Self>,
        local: &[(&TopicMeta, i32)],
    ) -> Result<(), Failure> {
        let threads = PARTITION_START_THREADS.min(local.len().div_ceil(64)).max(1);
        // One partition that cannot start (its disk, a foreign directory) must not keep
        // the others from starting: each failure is logged, the first returned.
        let start = |meta: &TopicMeta, p: i32| {
            let r = self.ensure_local_partition(meta, p);
            if let Err(f) = &r {
                tracing::error!(topic = %meta.name, partition = p, error = %f.message, "cannot start a local replica");
            }
            r
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<(), Failure> {
            let mut first = Ok(());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(meta, p)) = local.get(i) else {
                    return first;
                };
                if let Err(f) = start(meta, p) {
                    first = first.and(Err(f));
                }
            }
        };
        if threads == 1 {
            return work();
        }
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a partition start thread panicked"))
                .fold(Ok(()), Result::and)
        })
    }

    /// Opens (creating) one partition's log and starts its Raft group. The directory
    /// `<topic>-<p>` is this topic's only if its `partition.metadata` says so (or says
    /// nothing: a legacy directory, adopted); one left by a deleted topic of the same
    /// name is removed first, and one of a topic id this node does not know is left
    /// alone and the partition not started here.
    fn ensure_local_partition(self: &Arc<Self>, meta: &TopicMeta, p: i32) -> Result<(), Failure> {
        let replicas = meta.replicas_of(p);
        let Some(group) = meta.group(p) else {
            return Ok(());
        };
        let config = log_config(&self.config, &meta.configs);
        let me = self.config.node_id;
        let tp = TopicPartition::new(meta.name.clone(), p);
        if self.raft.has_group(group) {
            self.logs.with_log(&tp, |log| log.set_config(config));
            return Ok(());
        }
        let dir = self.logs.data_dir().join(tp.dir_name());
        let storage = |e: std::io::Error| {
            Failure::new(
                ErrorCode::KafkaStorageError,
                format!("{}: {e}", dir.display()),
            )
        };
        if self.logs.contains(&tp) {
            match partition_dirs::read(&dir) {
                Some(id) if id == meta.id => {}
                None => partition_dirs::write(&dir, meta.id).map_err(storage)?,
                Some(other) if self.meta.read().unwrap().was_deleted(other) => {
                    tracing::info!(partition = %tp.dir_name(), old_id = %other, "removing the log a deleted topic of this name left");
                    self.logs.delete(&tp)?;
                }
                Some(other) => {
                    return Err(Failure::new(
                        ErrorCode::KafkaStorageError,
                        format!(
                            "{} holds topic id {other}, not {}, and that topic is unknown here: left untouched",
                            dir.display(),
                            meta.id
                        ),
                    ));
                }
            }
        }
        if !self.logs.contains(&tp) {
            // The id first: a log's files never exist without it (but after a crash).
            partition_dirs::write(&dir, meta.id).map_err(storage)?;
            self.logs.create(&tp, Some(config.clone()))?;
        }
        self.logs.with_log(&tp, |log| log.set_config(config));
        self.partitions.write().unwrap().insert(
            tp.clone(),
            Arc::new(Partition {
                group,
                producers: Mutex::new(None),
                status: watch::channel(PartitionStatus::default()).0,
                uncommitted: Mutex::new((VecDeque::new(), 0)),
            }),
        );
        let voters: Vec<u64> = replicas.iter().map(|&r| r as u64).collect();
        let listener = Arc::new(PartitionListener {
            broker: Arc::downgrade(self),
            tp: tp.clone(),
        });
        self.raft
            .add_group(group, tp, &voters, false, Some(listener))
            .map_err(raft_failure)?;
        // A new group's preferred leader stands at once rather than after an
        // election timeout, so the topic is usable sooner and leaders spread.
        if replicas.len() > 1
            && replicas[0] == me
            && self.raft.status(group).is_some_and(|s| s.term == 0)
        {
            let _ = self.raft.campaign(group);
        }
        Ok(())
    }

    /// Stops the local replicas of a deleted topic and removes their logs, unless a
    /// directory carries another topic's id (never this topic's files, then).
    fn remove_local_partitions(&self, meta: &TopicMeta) {
        for p in 0..meta.partitions {
            let tp = TopicPartition::new(meta.name.clone(), p);
            if let Some(part) = self.partitions.write().unwrap().remove(&tp) {
                self.raft.remove_group(part.group);
            }
            if !self.logs.contains(&tp) {
                continue;
            }
            let dir = self.logs.data_dir().join(tp.dir_name());
            match partition_dirs::read(&dir) {
                Some(id) if id != meta.id => {
                    tracing::warn!(partition = %tp.dir_name(), id = %id, deleted = %meta.id, "not removing a log of another topic id");
                    continue;
                }
                _ => {}
            }
            if let Err(e) = self.logs.delete(&tp) {
                tracing::error!(partition = %tp.dir_name(), error = %e, "deleting log failed");
            }
        }
    }

    pub(crate) fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap().get(tp).cloned()
    }

    /// The replication state of a partition with a replica on this node.
    pub fn partition_status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        self.partition(tp).map(|p| *p.status.borrow())
    }

    /// The leader of any partition of the cluster as this node knows it: from the local
    /// replica, else `None`.
    pub fn leader_of(&self, tp: &TopicPartition) -> Option<(i32, i32)> {
        match self.partition_status(tp) {
            // An offline replica knows no leader of its own; the leader's reports do.
            Some(s) if !s.offline => s.leader.map(|l| (l, s.leader_epoch())),
            _ => {
                let group = self.topics.get(&tp.topic)?.group(tp.partition)?;
                let (leader, term, _) = self.remote_leaders.get(group)?;
                Some((leader, term as i32))
            }
        }
    }

    /// The replicas in sync with the leader: from the local group when this node leads
    /// the partition, else from the leader's last report.
    pub fn in_sync_replicas(&self, tp: &TopicPartition) -> Option<Vec<i32>> {
        let group = self.topics.get(&tp.topic)?.group(tp.partition)?;
        if let Some(s) = self.raft.status(group)
            && s.is_leader
        {
            return Some(s.in_sync.iter().map(|&n| n as i32).collect());
        }
        self.remote_leaders.get(group).map(|(_, _, isr)| isr)
    }

    /// Tells every peer which partitions this node leads (`leaders.rs`).
    pub fn report_leadership(&self) {
        let Some(t) = &self.peer_transport else {
            return;
        };
        let groups: Vec<u64> = self
            .partitions
            .read()
            .unwrap()
            .values()
            .map(|p| p.group)
            .collect();
        let led: Vec<Led> = groups
            .into_iter()
            .filter_map(|g| {
                let s = self.raft.status(g)?;
                s.is_leader.then(|| Led {
                    group: g,
                    term: s.term,
                    in_sync: s.in_sync.iter().map(|&n| n as i32).collect(),
                })
            })
            .collect();
        let me = self.config.node_id;
        for &peer in self.config.peers.keys().filter(|&&p| p != me) {
            t.send(peer as u64, GOSSIP_GROUP, leaders::encode(me as u64, &led));
        }
    }

    /// A peer's leadership report arrived.
    pub fn leadership_reported(&self, msg: &strom_raft::Message) {
        if let Some(led) = leaders::decode(msg) {
            self.remote_leaders.record(msg.from as i32, led);
        }
    }

    /// OffsetForLeaderEpoch: the largest epoch at most `epoch` that this partition's log
    /// holds and the offset where it ends (where the next epoch starts, or the log end
    /// for the current one). `None` when the log holds nothing that old. Epochs only grow
    /// along the log, so a binary search over batch epochs finds the boundary.
    pub fn epoch_end_offset(
        &self,
        tp: &TopicPartition,
        epoch: i32,
    ) -> Result<Option<(i32, i64)>, Failure> {
        let current = self.partition_status(tp).map_or(0, |s| s.leader_epoch());
        self.logs
            .with_log(tp, |l| -> Result<Option<(i32, i64)>, strom_log::LogError> {
                let (start, end) = (l.raft_start().0, l.log_end_offset());
                if epoch >= current {
                    return Ok(Some((current, end)));
                }
                // First offset whose epoch is above `epoch`.
                let (mut lo, mut hi) = (start, end);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match l.epoch_at(mid)? {
                        Some(e) if e > epoch => hi = mid,
                        _ => lo = mid + 1,
                    }
                }
                if lo == start {
                    return Ok(None);
                }
                Ok(l.epoch_at(lo - 1)?.map(|e| (e, lo)))
            })
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }

    /// Proposes a metadata command and waits until `done` finds its effect applied on
    /// this node (`Some(result)`), or times out.
    async fn change_metadata<T>(
        &self,
        cmd: Command,
        mut done: impl FnMut(&Broker) -> Option<Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let mut rx = self.meta_version.subscribe();
        let new_partitions = match &cmd {
            Command::CreateTopic { meta } => meta.replicas.len(),
            Command::AddPartitions { replicas, .. } => replicas.len(),
            _ => 0,
        };
        let batch = encode_command(&cmd, now_ms());
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
                // Dropped while no leader is known: retried until the deadline. A
                // command applied twice is harmless (see cluster.rs).
                if let Err(e) = self.raft.propose_command(METADATA_GROUP, batch.clone()) {
                    tracing::debug!(error = %e, "metadata proposal not accepted yet");
                }
                next_try = now + Duration::from_secs(2);
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
                format!("topic '{name}' already exists"),
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
                        format!("topic '{name}' already exists"),
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
                    .partition_status(&TopicPartition::new(meta.name.clone(), next))
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
        if name == OFFSETS_TOPIC {
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
        if name == OFFSETS_TOPIC {
            // Its partition count decides which partition holds each group's records.
            return Err(Failure::new(
                ErrorCode::InvalidRequest,
                format!("the partition count of the internal topic '{name}' cannot change"),
            ));
        }
        if count <= current.partitions {
            return Err(Failure::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic '{name}' has {} partitions; the new count {count} must be larger",
                    current.partitions
                ),
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

    /// Appends a Produce request's records for one partition this node leads: validates
    /// every batch, deduplicates idempotent retries, and proposes the batches to the
    /// partition's Raft group, which stamps offsets and epoch and writes them locally
    /// before this returns. Commitment is awaited with
    /// [`wait_committed`](Self::wait_committed).
    pub fn append(&self, tp: &TopicPartition, records: &[u8]) -> Result<Appended, Failure> {
        let partition = self.partition(tp).ok_or_else(|| unknown_partition(tp))?;
        let status = *partition.status.borrow();
        if status.offline {
            return Err(offline(tp));
        }
        if !status.is_leader {
            return Err(not_leader(tp));
        }
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
        let (max_bytes, log_start_offset) = self
            .logs
            .with_log(tp, |l| (l.config().max_message_bytes, l.log_start_offset()))
            .ok_or_else(|| unknown_partition(tp))?;
        if let Some((h, _)) = batches.iter().find(|(h, _)| h.total_size() > max_bytes) {
            return Err(Failure::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "a batch of {} bytes exceeds max.message.bytes {max_bytes}",
                    h.total_size()
                ),
            ));
        }
        // Every record is checked before anything is proposed: a count the bytes cannot
        // hold would otherwise become that many Raft entries (docs/adr/0002).
        let topic = self.topics.get(&tp.topic);
        let no_configs = BTreeMap::new();
        let policy = record_check::TimestampPolicy::for_topic(
            &self.config.records,
            topic.as_deref().map_or(&no_configs, |t| &t.configs),
        );
        let now = now_ms();
        let stamps = record_check::with_scratch(|scratch| {
            batches
                .iter()
                .map(|(h, range)| {
                    record_check::check(
                        &records[range.clone()],
                        h,
                        &policy,
                        now,
                        self.config.records.max_decompressed_batch_bytes,
                        scratch,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let log_append_time = if policy.log_append_time { now } else { -1 };
        let pending = partition.uncommitted.lock().unwrap().1;
        if pending > MAX_UNCOMMITTED_BYTES {
            return Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!(
                    "{} has {pending} bytes not yet replicated to a majority; retry",
                    tp.dir_name()
                ),
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
                    return Ok(Appended {
                        base_offset,
                        last_offset,
                        log_start_offset,
                        duplicate: true,
                        term: status.term,
                        log_append_time: -1,
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
        let copies: Vec<Vec<u8>> = batches
            .iter()
            .zip(stamps)
            .map(|((_, range), stamp)| {
                let mut copy = records[range.clone()].to_vec();
                record_check::stamp(&mut copy, stamp);
                copy
            })
            .collect();
        let proposed = self
            .raft
            .propose(partition.group, copies, None)
            .map_err(|e| match e {
                RaftError::NotLeader { .. } => not_leader(tp),
                RaftError::Dropped => Failure::new(
                    ErrorCode::RequestTimedOut,
                    "the partition has too much data not yet replicated; retry",
                ),
                other => raft_failure(other),
            })?;
        {
            let mut u = partition.uncommitted.lock().unwrap();
            u.0.push_back((proposed.last_offset + 1, records.len() as u64));
            u.1 += records.len() as u64;
        }
        if idempotent && let Some(states) = guard.as_mut() {
            states.record(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.records_count,
                proposed.base_offset,
                proposed.last_offset,
            );
        }
        drop(guard);
        self.metrics.bytes_in(&tp.topic, records.len());
        Ok(Appended {
            base_offset: proposed.base_offset,
            last_offset: proposed.last_offset,
            log_start_offset,
            duplicate: false,
            term: proposed.term,
            log_append_time,
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

    /// A partition's leadership changed (its listener): forget producer state (the next
    /// leader rebuilds it from its log, which holds everything the old leader
    /// committed), wake long polls, and move `__consumer_offsets` coordination.
    fn partition_leadership(self: &Arc<Self>, tp: &TopicPartition, status: PartitionStatus) {
        let Some(p) = self.partition(tp) else { return };
        let was_leader = p.status.borrow().is_leader;
        p.status.send_modify(|s| {
            s.term = status.term;
            s.leader = status.leader;
            s.is_leader = status.is_leader;
            // Only a running replica reports leadership: a recovered one is back.
            s.offline = false;
        });
        if status.is_leader != was_leader {
            self.metrics.leader_changed();
            *p.producers.lock().unwrap() = None;
            *p.uncommitted.lock().unwrap() = (VecDeque::new(), 0);
            if tp.topic == OFFSETS_TOPIC {
                self.groups
                    .partition_leadership(self, tp.partition, status.is_leader);
            }
            tracing::info!(partition = %tp.dir_name(), term = status.term, leader = ?status.leader, "leadership changed");
        }
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// This node's replica of a partition stopped after a storage error (see
    /// `RaftNode::fail_group`): it leads nothing until it is recovered.
    fn partition_offline(self: &Arc<Self>, tp: &TopicPartition) {
        let Some(p) = self.partition(tp) else { return };
        let was_leader = p.status.borrow().is_leader;
        p.status.send_modify(|s| {
            s.offline = true;
            s.is_leader = false;
            s.leader = None;
        });
        // Producer state and the uncommitted count are reset when the recovered replica
        // reports leadership again (`partition_leadership`).
        if was_leader {
            self.metrics.leader_changed();
            if tp.topic == OFFSETS_TOPIC {
                self.groups.partition_leadership(self, tp.partition, false);
            }
        }
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn partition_committed(&self, tp: &TopicPartition, hw: i64) {
        if let Some(p) = self.partition(tp) {
            p.status
                .send_modify(|s| s.high_watermark = s.high_watermark.max(hw));
            let mut u = p.uncommitted.lock().unwrap();
            while u.0.front().is_some_and(|&(end, _)| end <= hw) {
                let (_, bytes) = u.0.pop_front().unwrap();
                u.1 -= bytes;
            }
        }
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Resolves once the partition's high watermark reaches `offset` in the same term
    /// the records were appended in (acks=all): committed on a majority, each copy
    /// fsynced. Fails with NOT_LEADER_OR_FOLLOWER when leadership moves on first (the
    /// records may be replaced; an idempotent producer's retry is deduplicated), and
    /// REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait_committed(
        &self,
        tp: &TopicPartition,
        offset: i64,
        term: u64,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let partition = self.partition(tp).ok_or_else(|| unknown_partition(tp))?;
        let mut rx = partition.status.subscribe();
        drop(partition);
        let wait = async {
            loop {
                let s = *rx.borrow_and_update();
                if s.offline {
                    return Err(offline(tp));
                }
                if s.term != term || !s.is_leader {
                    return Err(not_leader(tp));
                }
                if s.high_watermark >= offset {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(not_leader(tp));
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!("{} was not replicated to a majority in time", tp.dir_name()),
            )),
        }
    }

    /// Resolves once this node's copy of a partition is on disk below `offset` (acks=1):
    /// fsynced when the log fsyncs every append (the default), written otherwise (the
    /// operator chose to fsync later). A failed write or fsync answers
    /// KAFKA_STORAGE_ERROR, so acks=1 is never answered for data a failing disk may drop.
    pub async fn wait_local_durable(
        &self,
        tp: &TopicPartition,
        offset: i64,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let per_append = self
            .logs
            .with_log(tp, |l| {
                l.config().flush == strom_log::FlushPolicy::EveryAppend
            })
            .ok_or_else(|| unknown_partition(tp))?;
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
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Failure::new(
                ErrorCode::KafkaStorageError,
                format!("{} could not be made durable: {e}", tp.dir_name()),
            )),
            Ok(Err(_)) => Err(offline(tp)),
            Err(_) => Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!("{} was not written to disk in time", tp.dir_name()),
            )),
        }
    }

    /// Reads whole committed batches from `offset` of a partition this node leads, at
    /// most about `max_bytes` (at least one batch), as a slice of the segment file: the
    /// records are not copied. Nothing at or above the high watermark is returned.
    pub fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<PartitionRead, Failure> {
        let status = self
            .partition_status(tp)
            .ok_or_else(|| unknown_partition(tp))?;
        if status.offline {
            return Err(offline(tp));
        }
        if !status.is_leader {
            return Err(not_leader(tp));
        }
        let hw = status.high_watermark;
        self.logs
            .with_log(tp, |log| {
                let r = log.read(offset, max_bytes, Some(hw))?;
                Ok::<_, strom_log::LogError>(PartitionRead {
                    slice: r.slice,
                    high_watermark: hw,
                    log_start_offset: r.log_start_offset,
                })
            })
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }

    /// Reads this node's copy of a partition regardless of leadership and high
    /// watermark (a new coordinator replaying `__consumer_offsets`).
    pub fn read_local(
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
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }

    /// The log start offset and high watermark of a partition with a replica here.
    pub fn offsets(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        let hw = self.partition_status(tp)?.high_watermark;
        self.logs
            .with_log(tp, |l| (l.log_start_offset(), hw.min(l.log_end_offset())))
    }

    /// The log start and end offsets of this node's copy.
    pub fn local_offsets(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        self.logs
            .with_log(tp, |l| (l.log_start_offset(), l.log_end_offset()))
    }

    /// A receiver that changes whenever a high watermark moves, for long polling.
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

    /// Allocates an idempotent producer id, unique in the cluster: this node's id in
    /// the high bits, its own persisted counter below.
    pub fn new_producer_id(&self) -> Result<i64, Failure> {
        let local = self
            .node
            .next_producer_id()
            .map_err(|e| Failure::new(ErrorCode::KafkaStorageError, e.to_string()))?;
        Ok((i64::from(self.config.node_id) << 40) | (local & ((1 << 40) - 1)))
    }

    /// Clean shutdown: stops the Raft groups, then flushes and checkpoints every log.
    pub fn close(&self) -> Result<(), Failure> {
        self.raft.shutdown();
        self.logs.close().map_err(Failure::from)
    }
}

/// Descriptors a log with open files may hold: its active segment, and a sealed one
/// being read.
const FDS_PER_OPEN_LOG: usize = 2;

/// The number of logs allowed to hold open files: `configured`, lowered if the process's
/// open-file limit could not hold that many beside `max_connections` client sockets (and
/// some for peers, listeners and files opened in passing). A log that would go beyond
/// the limit fails with "Too many open files"; a budget keeps the least recently used
/// logs closed instead.
/// Logs that may keep their files open: `configured`, or with 0 as many as the
/// open-file limit holds beside `max_connections` connections (4,096 without a limit).
#[allow(unsafe_code)] // audited: see the SAFETY notes below
fn open_log_budget(configured: usize, max_connections: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return if configured == 0 { 4096 } else { configured };
    }
    let limit = lim.rlim_cur as usize;
    let reserved = 64 + max_connections.min(limit / 2);
    let fit = (limit.saturating_sub(reserved) / FDS_PER_OPEN_LOG).max(16);
    if configured == 0 {
        // Logs that close and reopen their files on every use are slow: with many
        // partitions written in turn, every append would reopen one.
        tracing::info!(open_logs = fit, open_file_limit = limit, "open-log budget");
        return fit;
    }
    if fit < configured {
        tracing::warn!(
            max_open_logs = configured,
            open_file_limit = limit,
            max_connections,
            budget = fit,
            "the open-file limit cannot hold max_open_logs open logs beside max_connections \
             connections; fewer logs keep their files open (raise `ulimit -n` to avoid reopening)"
        );
        return fit;
    }
    configured
}

fn raft_failure(e: RaftError) -> Failure {
    match e {
        RaftError::NotLeader { .. } => Failure::new(ErrorCode::NotLeaderOrFollower, e.to_string()),
        RaftError::Log(l) => Failure::from(&l),
        other => Failure::new(ErrorCode::KafkaStorageError, other.to_string()),
    }
}

/// Feeds committed metadata commands to the broker.
struct MetadataListener {
    broker: Weak<Broker>,
}

impl GroupListener for MetadataListener {
    fn apply(&self, _group: u64, entries: Vec<strom_raft::raft::eraftpb::Entry>) {
        if let Some(b) = self.broker.upgrade() {
            b.apply_metadata(entries);
        }
    }
}

/// Tells the broker about a partition replica's commits and leadership.
struct PartitionListener {
    broker: Weak<Broker>,
    tp: TopicPartition,
}

impl GroupListener for PartitionListener {
    fn committed(&self, _group: u64, high_watermark: i64) {
        if let Some(b) = self.broker.upgrade() {
            b.partition_committed(&self.tp, high_watermark);
        }
    }

    fn leadership(&self, _group: u64, leader: Option<u64>, term: u64, is_leader: bool) {
        if let Some(b) = self.broker.upgrade() {
            let status = PartitionStatus {
                high_watermark: 0,
                term,
                leader: leader.map(|l| l as i32),
                is_leader,
                offline: false,
            };
            b.partition_leadership(&self.tp, status);
        }
    }

    fn storage_failed(&self, _group: u64, _cause: &str) {
        if let Some(b) = self.broker.upgrade() {
            b.partition_offline(&self.tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_batch::RecordBatchBuilder;

    /// A topic of hundreds of partitions is started by several threads (see
    /// `ensure_local_partitions`); every partition leads at once and takes writes, even
    /// though the tick thread skips groups of one (`Replica::needs_ticks`).
    #[test]
    fn a_topic_of_many_partitions_starts_in_parallel_and_takes_writes() {
        const PARTITIONS: i32 = 300;
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[("offsets_topic_partitions", "1")]);
        let meta = rt
            .block_on(broker.create_topic("many", PARTITIONS, -1, None, BTreeMap::new(), false))
            .unwrap();
        assert_eq!(meta.partitions, PARTITIONS);
        for p in 0..PARTITIONS {
            let tp = TopicPartition::new("many", p);
            assert_eq!(broker.leader_of(&tp).map(|(l, _)| l), Some(1), "{p}");
            assert_eq!(broker.in_sync_replicas(&tp), Some(vec![1]), "{p}");
        }
        for p in [0, PARTITIONS / 2, PARTITIONS - 1] {
            let tp = TopicPartition::new("many", p);
            let mut b = RecordBatchBuilder::new();
            b.push(now_ms(), None, Some(b"v"), &[]);
            let appended = broker.append(&tp, &b.build()).unwrap();
            rt.block_on(broker.wait_committed(
                &tp,
                appended.last_offset + 1,
                appended.term,
                Duration::from_secs(5),
            ))
            .unwrap();
        }
        // Only the logs in use hold files, within the budget.
        let open_logs = broker.logs.open_log_count();
        assert!(
            open_logs <= broker.logs.config().max_open_logs,
            "{open_logs}"
        );
        broker.close().unwrap();
    }

    fn produce(rt: &tokio::runtime::Runtime, broker: &Broker, tp: &TopicPartition, n: u8) -> i64 {
        let mut b = RecordBatchBuilder::new();
        for i in 0..n {
            b.push(now_ms(), None, Some(&[i]), &[]);
        }
        let a = broker.append(tp, &b.build()).unwrap();
        rt.block_on(broker.wait_committed(tp, a.last_offset + 1, a.term, Duration::from_secs(5)))
            .unwrap();
        a.last_offset + 1
    }

    /// Waits until the local log of `tp` is led here and its high watermark reaches its
    /// end (after a restart the new leader's empty entry commits shortly).
    fn settled_end(broker: &Broker, tp: &TopicPartition) -> i64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, end) = broker.local_offsets(tp).unwrap();
            let hw = broker.partition_status(tp).map_or(-1, |s| s.high_watermark);
            if hw == end || std::time::Instant::now() > deadline {
                return hw;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Delete + re-create under the same name, then restarts: replaying the metadata log
    /// must not apply the old topic's creation and deletion to the new topic's directory
    /// (it did: the new topic's records were gone after a restart).
    #[test]
    fn a_recreated_topic_keeps_its_records_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let settings = [("offsets_topic_partitions", "1")];
        let broker = crate::test_broker::open(dir.path(), &settings);
        let tp = TopicPartition::new("t", 0);
        let old = rt
            .block_on(broker.create_topic("t", 1, -1, None, BTreeMap::new(), false))
            .unwrap();
        produce(&rt, &broker, &tp, 3);
        rt.block_on(broker.delete_topic("t")).unwrap();
        let new = rt
            .block_on(broker.create_topic("t", 1, -1, None, BTreeMap::new(), false))
            .unwrap();
        assert_ne!(new.id, old.id);
        let end = produce(&rt, &broker, &tp, 5);
        assert_eq!(end, 5, "the new log: 5 records from offset 0");
        assert_eq!(
            partition_dirs::read(&dir.path().join("t-0")),
            Some(new.id),
            "the directory carries the topic id"
        );
        broker.close().unwrap();
        drop(broker);
        for round in 0..2 {
            let broker = crate::test_broker::open(dir.path(), &settings);
            assert_eq!(broker.topics.get("t").unwrap().id, new.id, "round {round}");
            let (start, _) = broker.local_offsets(&tp).unwrap();
            assert_eq!(start, 0);
            // A leader change takes no offset; nothing is lost.
            assert_eq!(settled_end(&broker, &tp), 5, "round {round}");
            broker.close().unwrap();
        }
    }

    /// Partition directories written before topic ids carry none: the live topic of
    /// their name adopts them (and records its id); a directory a deleted topic left
    /// behind (a crash before its removal) is removed at start-up, never reused.
    #[test]
    fn legacy_directories_are_adopted_and_deleted_topics_leftovers_removed() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let settings = [("offsets_topic_partitions", "1")];
        let broker = crate::test_broker::open(dir.path(), &settings);
        let legacy = TopicPartition::new("legacy", 0);
        let meta = rt
            .block_on(broker.create_topic("legacy", 1, -1, None, BTreeMap::new(), false))
            .unwrap();
        produce(&rt, &broker, &legacy, 4);
        let gone = rt
            .block_on(broker.create_topic("gone", 1, -1, None, BTreeMap::new(), false))
            .unwrap();
        broker.close().unwrap();
        drop(broker);
        // A copy of "gone"'s directory survives its deletion, as after a crash between
        // committing the delete and renaming the directory.
        let saved = dir.path().join("saved-gone");
        std::fs::rename(dir.path().join("gone-0"), &saved).unwrap();
        std::fs::create_dir(dir.path().join("gone-0")).unwrap();
        std::fs::remove_file(dir.path().join("legacy-0").join(partition_dirs::FILE)).unwrap();
        let broker = crate::test_broker::open(dir.path(), &settings);
        rt.block_on(broker.delete_topic("gone")).unwrap();
        broker.close().unwrap();
        drop(broker);
        std::fs::rename(&saved, dir.path().join("gone-0")).unwrap();

        let broker = crate::test_broker::open(dir.path(), &settings);
        assert!(broker.topics.get("gone").is_none());
        assert!(!broker.logs.contains(&TopicPartition::new("gone", 0)));
        assert!(
            !dir.path().join("gone-0").exists(),
            "the leftover is removed"
        );
        // Three starts took no offsets: the 4 records.
        assert_eq!(settled_end(&broker, &legacy), 4, "adopted with its records");
        assert_eq!(
            partition_dirs::read(&dir.path().join("legacy-0")),
            Some(meta.id)
        );
        assert!(broker.meta.read().unwrap().was_deleted(gone.id));
        broker.close().unwrap();
    }
}
