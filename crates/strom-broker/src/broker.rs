//! `Broker`: the composition root. It opens the node's parts and wires them; every
//! connection shares it and reaches the parts through it:
//!
//! - the data plane (`partitions/`): partition logs and Raft groups, append, read,
//!   commit waits, offsets;
//! - the control plane (`control/`): metadata, topic and config admin, which partition
//!   replicas run here;
//! - the group coordinator (`groups/`), which writes `__consumer_offsets` through the
//!   data plane and follows its leadership by subscription;
//! - node identity, metrics and the shutdown signal.
//!
//! It knows nothing of sockets or of the wire format.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strom_log::{LogManager, ManagerConfig, TopicPartition};
use strom_raft::{PeerTransport, RaftNode, ReplicaConfig, Transport};
use strom_wire::ErrorCode;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::control::{self, ControlPlane};
use crate::errors::{Failure, storage};
use crate::groups::{Groups, OFFSETS_TOPIC};
use crate::links::{BrokerLinks, Directory};
use crate::metrics::{Metrics, PartitionGauges, StateSnapshot};
use crate::node::NodeState;
use crate::partitions::Partitions;
use crate::topics::TopicStore;
use crate::txns::{TXN_TOPIC, Txns};

pub use strom_batch::now_ms;

/// The broker's parts, wired.
#[derive(Debug)]
pub struct Broker {
    config: Arc<BrokerConfig>,
    node: Arc<NodeState>,
    partitions: Arc<Partitions>,
    control: Arc<ControlPlane>,
    groups: Arc<Groups>,
    txns: Arc<Txns>,
    links: Arc<BrokerLinks>,
    metrics: Arc<Metrics>,
    /// Every Raft group of this node: the metadata group and one per local replica.
    raft: Arc<RaftNode>,
    /// Set when the server starts shutting down, so long polls answer at once.
    stopping: watch::Sender<bool>,
}

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
        let config = Arc::new(config);
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
        let metrics = Arc::new(Metrics::new());
        logs.group_commit().observe_fsyncs(metrics.fsync_observer());
        let topics = Arc::new(TopicStore::default());
        let partitions = Arc::new(Partitions::new(
            logs,
            raft.clone(),
            topics.clone(),
            config.records,
            metrics.clone(),
        ));
        let stopping = watch::channel(false).0;
        let groups = Groups::new(
            config.group.clone(),
            crate::groups::CompactionPolicy::of(&config),
            runtime.clone(),
            partitions.clone(),
            topics.clone(),
        );
        let node = Arc::new(node);
        let (ids, node_id) = (node.clone(), config.node_id);
        let links = Arc::new(BrokerLinks::default());
        let txns = Txns::new(crate::txns::Parts {
            config: config.txn.clone(),
            runtime,
            partitions: partitions.clone(),
            topics: topics.clone(),
            groups: groups.clone(),
            links: links.clone(),
            compaction: crate::groups::CompactionPolicy::of(&config),
            new_producer_id: Box::new(move || {
                ids.cluster_producer_id(node_id).map_err(|e| {
                    tracing::error!(error = %e, "could not allocate a producer id");
                    ErrorCode::CoordinatorNotAvailable
                })
            }),
        });
        // The coordinators follow the leadership of their topics' partitions.
        let (weak_groups, weak_txns) = (Arc::downgrade(&groups), Arc::downgrade(&txns));
        partitions.observe_leadership(Box::new(move |tp, is_leader| {
            if tp.topic == OFFSETS_TOPIC
                && let Some(groups) = weak_groups.upgrade()
            {
                groups.partition_leadership(tp.partition, is_leader);
            } else if tp.topic == TXN_TOPIC
                && let Some(txns) = weak_txns.upgrade()
            {
                txns.partition_leadership(tp.partition, is_leader);
            }
        }));
        let control = ControlPlane::start(control::Parts {
            config: config.clone(),
            own_cluster_id: node.cluster_id.clone(),
            raft: raft.clone(),
            partitions: partitions.clone(),
            groups: groups.clone(),
            txns: txns.clone(),
            topics,
            peer_transport,
        })?;
        links.set_directory(Box::new(LeaderDirectory {
            control: Arc::downgrade(&control),
            node_id: config.node_id,
        }));
        control::bootstrap::start(&control, stopping.subscribe());
        Ok(Arc::new(Broker {
            config,
            node,
            partitions,
            control,
            groups,
            txns,
            links,
            metrics,
            raft,
            stopping,
        }))
    }

    /// The settings this node runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The data plane: this node's partitions.
    pub fn data(&self) -> &Arc<Partitions> {
        &self.partitions
    }

    /// The control plane: metadata and admin.
    pub fn control(&self) -> &Arc<ControlPlane> {
        &self.control
    }

    /// The topics as this node has applied them.
    pub fn topics(&self) -> &TopicStore {
        self.control.topics()
    }

    /// The consumer-group coordinator.
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// Counters and histograms the request path and storage record (`metrics/`).
    /// Requests to the other brokers' Kafka listeners.
    pub fn links(&self) -> &Arc<BrokerLinks> {
        &self.links
    }

    pub fn txns(&self) -> &Arc<Txns> {
        &self.txns
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether the node is registered and `__consumer_offsets` exists.
    pub fn is_ready(&self) -> bool {
        self.control.is_ready()
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

    /// Per partition of a consumer group: committed offset, log end offset and lag.
    /// `None` for a group this node does not coordinate.
    pub fn group_lag(&self, group_id: &str) -> Option<Vec<strom_group::PartitionLag>> {
        self.groups.lag(group_id)
    }

    /// The Prometheus scrape: the counters the request path and storage recorded, and
    /// the state of topics, partitions and groups at this moment.
    pub fn render_metrics(&self) -> String {
        let mut topics = self.topics().list();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut state = StateSnapshot {
            topics: topics.iter().map(|t| t.name.clone()).collect(),
            ..StateSnapshot::default()
        };
        // Partitions with a replica on this node, as this replica sees them.
        let mut ends = HashMap::new();
        for t in &topics {
            for p in 0..t.partitions {
                let tp = TopicPartition::new(t.name.clone(), p);
                let (Some((start, end)), Some(status)) = (
                    self.partitions.local_offsets(&tp),
                    self.partitions.status(&tp),
                ) else {
                    continue;
                };
                if status.is_leader
                    && self
                        .control
                        .in_sync_replicas(&tp)
                        .is_some_and(|isr| isr.len() < t.replicas_of(p).len())
                {
                    state.under_replicated += 1;
                }
                ends.insert((t.name.clone(), p), status.high_watermark);
                state.partitions.push(PartitionGauges {
                    topic: t.name.clone(),
                    partition: p,
                    log_start_offset: start,
                    log_end_offset: end,
                    high_watermark: status.high_watermark,
                    is_leader: status.is_leader,
                    leader_epoch: status.term,
                    last_stable_offset: status
                        .is_leader
                        .then(|| {
                            self.partitions
                                .loaded_last_stable_offset(&tp, status.high_watermark)
                        })
                        .flatten(),
                });
            }
        }
        // A lookup, not I/O, under the coordinator's lock.
        state.groups = self
            .groups
            .all_lag(|t, p| ends.get(&(t.to_string(), p)).copied());
        (state.storage_errors, state.offline_partitions) = self.partitions.storage_health();
        state.transactions = self.txns.gauges();
        self.metrics.render(&state)
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
        self.node
            .cluster_producer_id(self.config.node_id)
            .map_err(storage)
    }

    /// A message from a peer node: a leadership report, or a Raft message for one of
    /// this node's groups.
    pub fn peer_message(&self, group: u64, msg: strom_raft::Message) {
        if group == crate::control::leaders::GOSSIP_GROUP {
            self.control.leadership_reported(&msg);
        } else {
            self.raft.step(group, msg);
        }
    }

    /// Clean shutdown: stops the Raft groups, then flushes and checkpoints every log.
    pub fn close(&self) -> Result<(), Failure> {
        self.raft.shutdown();
        self.partitions.logs().close().map_err(Failure::from)
    }
}

/// The control plane as the inter-broker links see it: who leads a partition, where
/// that broker listens.
struct LeaderDirectory {
    control: std::sync::Weak<ControlPlane>,
    node_id: i32,
}

impl Directory for LeaderDirectory {
    fn leader(&self, tp: &TopicPartition) -> Option<(i32, String)> {
        let control = self.control.upgrade()?;
        let (leader, _) = control.leader_of(tp)?;
        let addr = control.brokers().get(&leader)?.clone();
        Some((leader, format!("{}:{}", addr.host, addr.port)))
    }

    fn node_id(&self) -> i32 {
        self.node_id
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
