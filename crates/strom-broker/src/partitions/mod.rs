//! The data plane: the partitions with a replica on this node — their logs, their Raft
//! groups, and the operations the Produce, Fetch and offset handlers (and the group
//! coordinator) are built from: append, wait for commit, read, offsets and epochs.
//!
//! Every partition is a Raft group (a group of one on a single node): appends go to the
//! leader's group, acks=all waits for the commit, reads stop at the high watermark (the
//! commit index). The control plane (`control/`) decides which partitions exist here and
//! starts and stops them; this module never changes metadata.
//!
//! Each partition's state lives in one `watch` channel ([`PartitionStatus`]): commit
//! waits and long-polling fetches subscribe to the partitions they wait on, so a commit
//! wakes only the requests waiting on that partition.

mod append;
mod delete;
mod listener;
mod read;
mod replay;
mod txn;
mod wait;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use strom_log::{LogConfig, LogManager, TopicPartition};
use strom_raft::RaftNode;
use tokio::sync::watch;

use crate::errors::{Failure, not_leader, offline};
use crate::metrics::Metrics;
use crate::producers::ProducerStates;
use crate::record_check::RecordDefaults;
use crate::topics::TopicStore;

pub use append::{Appended, Origin};
pub use read::Fetched;
pub use replay::Replayed;
pub use wait::Commit;

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

    /// Whether this node may serve `tp` as its leader now: an offline replica answers
    /// KAFKA_STORAGE_ERROR, a follower NOT_LEADER_OR_FOLLOWER.
    fn check_leading(&self, tp: &TopicPartition) -> Result<(), Failure> {
        if self.offline {
            return Err(offline(tp));
        }
        if !self.is_leader {
            return Err(not_leader(tp));
        }
        Ok(())
    }
}

/// Told when this node starts or stops leading a partition (the group coordinator
/// follows `__consumer_offsets` leadership this way).
pub type LeadershipObserver = Box<dyn Fn(&TopicPartition, bool) + Send + Sync>;

/// Per-partition state that lives beside the log, for partitions with a replica here.
#[derive(Debug)]
struct Partition {
    group: u64,
    /// `None` until the first idempotent produce after start-up or a leader change
    /// rebuilds it from the log.
    producers: Mutex<Option<ProducerStates>>,
    status: watch::Sender<PartitionStatus>,
    /// Appended but not yet committed: (end offset, bytes) per append, and their sum.
    uncommitted: Mutex<(VecDeque<(i64, u64)>, u64)>,
}

/// The partitions with a replica on this node.
pub struct Partitions {
    logs: Arc<LogManager>,
    raft: Arc<RaftNode>,
    /// The topics, read for the settings an append checks records against.
    topics: Arc<TopicStore>,
    records: RecordDefaults,
    metrics: Arc<Metrics>,
    map: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    leadership: OnceLock<LeadershipObserver>,
}

impl std::fmt::Debug for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitions")
            .field("partitions", &self.map.read().unwrap().len())
            .finish_non_exhaustive()
    }
}

impl Partitions {
    pub fn new(
        logs: Arc<LogManager>,
        raft: Arc<RaftNode>,
        topics: Arc<TopicStore>,
        records: RecordDefaults,
        metrics: Arc<Metrics>,
    ) -> Partitions {
        Partitions {
            logs,
            raft,
            topics,
            records,
            metrics,
            map: RwLock::new(HashMap::new()),
            leadership: OnceLock::new(),
        }
    }

    /// Registers the one observer of leadership changes (set once, at wiring).
    pub fn observe_leadership(&self, observer: LeadershipObserver) {
        if self.leadership.set(observer).is_err() {
            panic!("a leadership observer is already set");
        }
    }

    /// The partition logs of this node.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// Starts serving a partition whose log exists (the control plane created it): its
    /// Raft group with `voters` joins this node's, and its commits and leadership flow
    /// into its status. A new group's preferred leader (`campaign`) stands at once.
    pub fn start(
        self: &Arc<Self>,
        tp: TopicPartition,
        group: u64,
        voters: &[u64],
        config: LogConfig,
        campaign: bool,
    ) -> Result<(), Failure> {
        self.logs.with_log(&tp, |log| log.set_config(config));
        self.map.write().unwrap().insert(
            tp.clone(),
            Arc::new(Partition {
                group,
                producers: Mutex::new(None),
                status: watch::channel(PartitionStatus::default()).0,
                uncommitted: Mutex::new((VecDeque::new(), 0)),
            }),
        );
        let listener = Arc::new(listener::PartitionListener::new(
            Arc::downgrade(self),
            tp.clone(),
        ));
        self.raft
            .add_group(group, tp, voters, false, Some(listener))?;
        if campaign && self.raft.status(group).is_some_and(|s| s.term == 0) {
            let _ = self.raft.campaign(group);
        }
        Ok(())
    }

    /// Whether a partition's Raft group runs here.
    pub fn is_started(&self, group: u64) -> bool {
        self.raft.has_group(group)
    }

    /// Applies changed settings to a running partition's log.
    pub fn set_config(&self, tp: &TopicPartition, config: LogConfig) {
        self.logs.with_log(tp, |log| log.set_config(config));
    }

    /// Stops serving a partition (its topic was deleted): its Raft group leaves. The
    /// control plane removes its files.
    pub fn stop(&self, tp: &TopicPartition) {
        if let Some(part) = self.map.write().unwrap().remove(tp) {
            self.raft.remove_group(part.group);
        }
    }

    /// The partitions this node leads, by Raft group: (group, term, in-sync replicas).
    pub fn led(&self) -> Vec<(u64, u64, Vec<i32>)> {
        let groups: Vec<u64> = self.map.read().unwrap().values().map(|p| p.group).collect();
        groups
            .into_iter()
            .filter_map(|g| {
                let s = self.raft.status(g)?;
                s.is_leader.then(|| {
                    let isr = s.in_sync.iter().map(|&n| n as i32).collect();
                    (g, s.term, isr)
                })
            })
            .collect()
    }

    fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.map.read().unwrap().get(tp).cloned()
    }

    /// The replication state of a partition with a replica on this node.
    pub fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        self.get(tp).map(|p| *p.status.borrow())
    }

    /// The in-sync replicas of a group this node leads (`None` when it does not).
    pub fn in_sync_if_leader(&self, group: u64) -> Option<Vec<i32>> {
        let s = self.raft.status(group)?;
        s.is_leader
            .then(|| s.in_sync.iter().map(|&n| n as i32).collect())
    }

    /// Storage failures of partition replicas since start, and replicas offline now.
    pub fn storage_health(&self) -> (u64, usize) {
        (
            self.raft.storage_failures(),
            self.raft.offline_groups().len(),
        )
    }
}
