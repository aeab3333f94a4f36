//! The transaction coordinator wired into the broker (docs/adr/0006-transactions.md):
//! one `TransactionCoordinator` behind a mutex, serving the `__transaction_state`
//! partitions this node leads, its records appended through the data plane like any
//! partition's, its markers written to each partition of a transaction (`markers.rs`),
//! and its answers routed to the connections waiting on them.
//!
//! Unlike the group coordinator's, its answers need no ordering across calls: strom-txn
//! keeps a pending transition per transactional id (concurrent requests get
//! CONCURRENT_TRANSACTIONS) and releases each answer from `write_completed`, once its
//! record is committed.

mod compact;
mod load;
mod markers;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strom_batch::now_ms;
use strom_log::TopicPartition;
use strom_txn::{
    Effects, ErrorCode, RequestId, Response, TransactionCoordinator, TxnConfig, TxnLogWrite,
};
use tokio::sync::{oneshot, watch};

use crate::groups::{CompactionPolicy, Groups};
use crate::internal_batches::{self, KeyedRecord};
use crate::links::BrokerLinks;
use crate::metrics::TxnGauges;
use crate::partitions::Partitions;
use crate::topics::TopicStore;

/// The internal topic holding the transaction coordinator's state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// How long a coordinator's record may take to commit before it counts as failed.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The coordinator and the connections waiting for its answers.
pub struct Txns {
    inner: Mutex<Inner>,
    waiters: Mutex<HashMap<RequestId, oneshot::Sender<Response>>>,
    next_id: AtomicU64,
    /// The runtime the tasks that wait for commits run on (the coordinator is also
    /// called from Raft's listener threads, which are not tokio's).
    runtime: tokio::runtime::Handle,
    partitions: Arc<Partitions>,
    topics: Arc<TopicStore>,
    /// Told when a marker reached a `__consumer_offsets` partition: transactional offset
    /// commits become visible (or are dropped) there.
    groups: Arc<Groups>,
    /// Requests to the other brokers (markers for partitions they lead).
    links: Arc<BrokerLinks>,
    /// When `__transaction_state` partitions are compacted (the same policy as
    /// `__consumer_offsets`).
    compaction: CompactionPolicy,
    /// The producer id allocator (the node's blocks).
    new_producer_id: Box<dyn Fn() -> Result<i64, ErrorCode> + Send + Sync>,
    /// Bumped whenever the coordinator made progress (a record or markers reported):
    /// what a request refused with CONCURRENT_TRANSACTIONS waits on before it tries
    /// again (`handlers/txn.rs`).
    progress: watch::Sender<u64>,
}

impl std::fmt::Debug for Txns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txns").finish_non_exhaustive()
    }
}

/// What the transaction coordinator is built from (`Broker::open` wires it).
pub struct Parts {
    pub config: TxnConfig,
    /// Where the tasks that wait for commits run.
    pub runtime: tokio::runtime::Handle,
    pub partitions: Arc<Partitions>,
    pub topics: Arc<TopicStore>,
    pub groups: Arc<Groups>,
    pub links: Arc<BrokerLinks>,
    pub compaction: CompactionPolicy,
    /// The producer id allocator (the node's blocks).
    pub new_producer_id: Box<dyn Fn() -> Result<i64, ErrorCode> + Send + Sync>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    coordinator: TransactionCoordinator,
    /// Partitions to replay from the log again (a failed load, or a record whose outcome
    /// is unknown); the ticker retries them.
    reload: BTreeSet<i32>,
    /// When the ticker next looks for partitions to compact (`None`: at its next tick).
    next_compaction_check: Option<std::time::Instant>,
    /// Partitions whose snapshot is being committed, before their log start moves.
    compacting: BTreeSet<i32>,
}

impl Txns {
    pub fn new(parts: Parts) -> Arc<Txns> {
        let Parts {
            config,
            runtime,
            partitions,
            topics,
            groups,
            links,
            compaction,
            new_producer_id,
        } = parts;
        Arc::new(Txns {
            inner: Mutex::new(Inner {
                coordinator: TransactionCoordinator::new(config),
                reload: BTreeSet::new(),
                next_compaction_check: None,
                compacting: BTreeSet::new(),
            }),
            waiters: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            runtime,
            partitions,
            topics,
            groups,
            links,
            compaction,
            new_producer_id,
            progress: watch::channel(0).0,
        })
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        self.inner
            .lock()
            .unwrap()
            .coordinator
            .partition_for(transactional_id)
    }

    /// `__transaction_state` exists with `partitions` partitions: ids are placed by that
    /// count, whatever `transaction_state_partitions` says now.
    pub fn topic_exists(&self, partitions: i32) {
        let mut inner = self.inner.lock().unwrap();
        if inner.coordinator.config().transaction_state_partitions != partitions {
            tracing::warn!(
                actual = partitions,
                "transaction_state_partitions is ignored: __transaction_state already exists with another partition count"
            );
            inner
                .coordinator
                .set_transaction_state_partitions(partitions);
        }
    }

    /// `__consumer_offsets` exists with `partitions` partitions (AddOffsetsToTxn adds a
    /// group's partition by that count).
    pub fn offsets_topic_exists(&self, partitions: i32) {
        self.inner
            .lock()
            .unwrap()
            .coordinator
            .set_offsets_topic_partitions(partitions);
    }

    /// This node became (or stopped being) the leader of a `__transaction_state`
    /// partition: load its transactional ids from the log (requests for them answer
    /// COORDINATOR_LOAD_IN_PROGRESS meanwhile), or drop them (NOT_COORDINATOR).
    pub fn partition_leadership(self: &Arc<Self>, partition: i32, is_leader: bool) {
        let mut inner = self.inner.lock().unwrap();
        if is_leader {
            self.load_partition(&mut inner, partition);
        } else {
            inner.reload.remove(&partition);
            let fx = inner.coordinator.unload(partition);
            self.apply(&mut inner, fx);
        }
    }

    fn load_partition(self: &Arc<Self>, inner: &mut Inner, p: i32) {
        let tp = TopicPartition::new(TXN_TOPIC, p);
        let Some(status) = self.partitions.status(&tp).filter(|s| s.is_leader) else {
            let fx = inner.coordinator.unload(p);
            self.apply(inner, fx);
            return;
        };
        let fx = inner.coordinator.begin_load(p, status.leader_epoch());
        self.apply(inner, fx);
        match load::replay_partition(&self.partitions, &mut inner.coordinator, p) {
            Ok(()) => {
                let fx = inner.coordinator.finish_load(p, now_ms());
                self.apply(inner, fx);
                tracing::info!(
                    partition = p,
                    "coordinating the transactions of __transaction_state partition"
                );
            }
            Err(f) => {
                tracing::error!(partition = p, error = %f.message, "loading __transaction_state failed; retrying");
                inner.compacting.remove(&p);
                inner.reload.insert(p);
            }
        }
    }

    /// Runs one coordinator call and returns where its answer will arrive.
    pub fn call(
        self: &Arc<Self>,
        f: impl FnOnce(
            &mut TransactionCoordinator,
            RequestId,
            i64,
            &dyn Fn() -> Result<i64, ErrorCode>,
        ) -> Effects,
    ) -> oneshot::Receiver<Response> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        let mut inner = self.inner.lock().unwrap();
        let fx = f(&mut inner.coordinator, id, now_ms(), &*self.new_producer_id);
        self.apply(&mut inner, fx);
        rx
    }

    /// A receiver that changes whenever the coordinator makes progress.
    pub fn subscribe_progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// Reads the coordinator's state (the admin APIs and the verification of KIP-890).
    pub fn read<T>(&self, f: impl FnOnce(&TransactionCoordinator, i64) -> T) -> T {
        let inner = self.inner.lock().unwrap();
        f(&inner.coordinator, now_ms())
    }

    /// Transactional ids by state and the age of the oldest open transaction (metrics).
    pub fn gauges(&self) -> TxnGauges {
        let inner = self.inner.lock().unwrap();
        let now = now_ms();
        let mut by_state: std::collections::BTreeMap<&'static str, i64> = Default::default();
        let mut oldest = 0;
        for m in inner.coordinator.transactions() {
            *by_state.entry(m.state.name()).or_default() += 1;
            if m.state == strom_txn::TransactionState::Ongoing {
                oldest = oldest.max(now.saturating_sub(m.start_timestamp));
            }
        }
        TxnGauges {
            by_state: by_state.into_iter().collect(),
            oldest_open_ms: oldest,
        }
    }

    /// Advances timers (transaction timeouts, marker retries) and retries reloads.
    pub fn tick(self: &Arc<Self>) {
        let mut inner = self.inner.lock().unwrap();
        let pending: Vec<i32> = std::mem::take(&mut inner.reload).into_iter().collect();
        for p in pending {
            self.load_partition(&mut inner, p);
        }
        let fx = inner.coordinator.tick(now_ms());
        self.apply(&mut inner, fx);
        self.maybe_compact(&mut inner);
    }

    /// Releases every waiting connection (the server is shutting down).
    pub fn shutdown(&self) {
        self.waiters.lock().unwrap().clear();
    }

    /// Carries out one call's effects: appends its records (each reported back once
    /// committed), sends its responses, and starts its marker work.
    fn apply(self: &Arc<Self>, inner: &mut Inner, fx: Effects) {
        if fx.is_empty() {
            return;
        }
        let Effects {
            writes,
            responses,
            markers,
        } = fx;
        self.deliver(responses);
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
        for w in writes {
            self.write(inner, w);
        }
        for work in markers {
            self.spawn_markers(work);
        }
    }

    /// Appends one record to its `__transaction_state` partition and reports it back to
    /// the coordinator once committed (or failed).
    fn write(self: &Arc<Self>, inner: &mut Inner, w: TxnLogWrite) {
        let tp = TopicPartition::new(TXN_TOPIC, w.partition);
        let batch = internal_batches::batches(
            [KeyedRecord {
                key: &w.key,
                value: w.value.as_deref(),
                producer: None,
            }],
            now_ms(),
        );
        match self.partitions.append(&tp, &batch[0]) {
            Err(f) => {
                tracing::warn!(partition = %tp.dir_name(), error = %f.message, "appending to __transaction_state failed");
                // Nothing was written: the transition is abandoned and the client retries.
                let code = match f.code {
                    ErrorCode::NotLeaderOrFollower | ErrorCode::UnknownTopicOrPartition => {
                        ErrorCode::NotCoordinator
                    }
                    _ => ErrorCode::CoordinatorNotAvailable,
                };
                let fx = inner.coordinator.write_completed(w.id, Err(code), now_ms());
                self.apply(inner, fx);
            }
            Ok(mut appended) => {
                let txns = self.clone();
                self.runtime.spawn(async move {
                    let committed = txns
                        .partitions
                        .wait_committed(&tp, &mut appended.commit, COMMIT_TIMEOUT)
                        .await;
                    let mut inner = txns.inner.lock().unwrap();
                    let fx = match committed {
                        Ok(()) => inner.coordinator.write_completed(w.id, Ok(()), now_ms()),
                        Err(f) => {
                            // The record may or may not be in the log: the log decides.
                            tracing::warn!(partition = %tp.dir_name(), error = %f.message, "a __transaction_state record did not commit; reloading the partition");
                            let mut fx = inner.coordinator.write_completed(w.id, Err(ErrorCode::NotCoordinator), now_ms());
                            fx.extend(inner.coordinator.unload(w.partition));
                            inner.reload.insert(w.partition);
                            fx
                        }
                    };
                    txns.apply(&mut inner, fx);
                });
            }
        }
    }

    fn deliver(&self, responses: Vec<(RequestId, Response)>) {
        if responses.is_empty() {
            return;
        }
        let mut waiters = self.waiters.lock().unwrap();
        for (id, response) in responses {
            if let Some(tx) = waiters.remove(&id) {
                let _ = tx.send(response);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Broker;

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        crate::test_broker::open(
            dir,
            &[
                ("offsets_topic_partitions", "1"),
                ("transaction_state_partitions", "1"),
                ("offsets_compaction_check_ms", "0"),
                ("offsets_compaction_min_bytes", "16384"),
            ],
        )
    }

    /// InitProducerId for `id` as a client would, once its coordinator is loaded:
    /// (producer id, epoch).
    fn init(broker: &Arc<Broker>, id: &str) -> (i64, i16) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let req = strom_txn::InitProducerIdRequest {
                api_version: 4,
                transactional_id: id.into(),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
            };
            let rx = broker
                .txns()
                .call(|c, rid, now, alloc| c.init_producer_id(rid, &req, now, alloc));
            let Ok(Response::InitProducerId(r)) = rx.blocking_recv() else {
                panic!("no answer");
            };
            if r.error == ErrorCode::None {
                return (r.producer_id, r.producer_epoch);
            }
            assert!(std::time::Instant::now() < deadline, "{:?}", r.error);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `__transaction_state` is compacted by snapshot once it grows, and the compacted
    /// partition replays to the same state after a restart.
    #[test]
    fn transaction_state_is_compacted_and_replays_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = open(dir.path());
        while !broker.control().ensure_transaction_topic() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tp = TopicPartition::new(TXN_TOPIC, 0);
        let (pid, first) = init(&broker, "a");
        let mut epoch = first;
        for _ in 0..400 {
            let (p, e) = init(&broker, "a");
            assert_eq!(p, pid);
            assert_eq!(e, epoch + 1);
            epoch = e;
        }
        let (other, _) = init(&broker, "b");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while broker.data().local_offsets(&tp).unwrap().0 == 0 {
            assert!(std::time::Instant::now() < deadline, "never compacted");
            broker.txns().tick();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (start, end) = broker.data().local_offsets(&tp).unwrap();
        assert!(
            end - start < 50,
            "compacted to a few records: {start}..{end}"
        );
        broker.close().unwrap();
        drop(broker);

        let broker = open(dir.path());
        assert_eq!(
            init(&broker, "a"),
            (pid, epoch + 1),
            "the epoch carried over"
        );
        assert_eq!(init(&broker, "b").0, other);
        broker.close().unwrap();
    }
}
