//! The consumer-group coordinator wired into the broker: one `GroupCoordinator` behind a
//! mutex, its records appended to `__consumer_offsets` like any partition's, and its
//! answers routed to the connections waiting on them once those records are durable.
//!
//! Ordering rule (from strom-group): a response may depend on records of an earlier
//! call (a follower's SyncGroup answered from the assignment the leader's call
//! recorded), so responses are released strictly in the order of the calls that
//! produced them, each only after its own records and all earlier ones are durable.

mod append;
mod compact;
mod load;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strom_group::{Effects, GroupConfig, GroupCoordinator, PartitionLag, RequestId, Response};
use strom_log::TopicPartition;
use strom_wire::ErrorCode;
use tokio::sync::{oneshot, watch};

use strom_batch::{ControlType, now_ms};

use crate::config::BrokerConfig;
use crate::errors::Failure;
use crate::partitions::{Appended, Partitions};
use crate::topics::TopicStore;

/// How long a coordinator's records may take to commit before its answer fails.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The coordinator and the connections waiting for its answers.
#[derive(Debug)]
pub struct Groups {
    inner: Mutex<Inner>,
    waiters: Mutex<HashMap<RequestId, oneshot::Sender<Response>>>,
    next_id: AtomicU64,
    /// The runtime the tasks that wait for durability run on. Captured when the broker
    /// opens: the coordinator is also called from threads that are not tokio's (Raft's
    /// listeners on the group-commit, tick and peer threads: a deleted topic's offsets,
    /// a partition's leadership), where `tokio::spawn` aborts the process.
    runtime: tokio::runtime::Handle,
    /// Where the coordinator's records go and its partitions' leadership comes from.
    partitions: Arc<Partitions>,
    topics: Arc<TopicStore>,
    compaction: CompactionPolicy,
}

/// When `__consumer_offsets` partitions are compacted (see `compact.rs`).
#[derive(Debug, Clone, Copy)]
pub struct CompactionPolicy {
    /// How often served partitions are looked at.
    pub check: std::time::Duration,
    /// Partitions smaller than this are left alone.
    pub min_bytes: u64,
}

impl CompactionPolicy {
    pub fn of(config: &BrokerConfig) -> CompactionPolicy {
        CompactionPolicy {
            check: config.offsets_compaction_check,
            min_bytes: config.offsets_compaction_min_bytes,
        }
    }
}

#[derive(Debug)]
struct Inner {
    coordinator: GroupCoordinator,
    /// Turns true once the responses of the newest call with unsent responses were sent:
    /// the next call's responses wait for it.
    last_sent: Option<watch::Receiver<bool>>,
    /// Partitions whose log must be re-read because an append or fsync failed (the
    /// coordinator's memory is then ahead of the log); the ticker replays them.
    reload: BTreeSet<i32>,
    /// When the ticker next looks for partitions to compact (`None`: at its next tick).
    next_compaction_check: Option<std::time::Instant>,
    /// Partitions whose snapshot is being appended and awaits its log start move.
    compacting: BTreeSet<i32>,
}

impl Groups {
    /// A coordinator serving nothing yet, whose tasks run on `runtime`.
    pub fn new(
        mut config: GroupConfig,
        compaction: CompactionPolicy,
        runtime: tokio::runtime::Handle,
        partitions: Arc<Partitions>,
        topics: Arc<TopicStore>,
    ) -> Arc<Groups> {
        // Member ids must not repeat across starts: mix in this start's time.
        config.member_id_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Arc::new(Groups {
            inner: Mutex::new(Inner {
                coordinator: GroupCoordinator::new(config),
                last_sent: None,
                reload: BTreeSet::new(),
                next_compaction_check: None,
                compacting: BTreeSet::new(),
            }),
            waiters: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            runtime,
            partitions,
            topics,
            compaction,
        })
    }

    /// This node became (or stopped being) the leader of `__consumer_offsets`
    /// partition `partition`: it starts coordinating that partition's groups (the
    /// ticker replays the partition from the log, meanwhile they answer
    /// COORDINATOR_LOAD_IN_PROGRESS) or stops at once (NOT_COORDINATOR, parked requests
    /// answered so clients look for the new coordinator).
    pub fn partition_leadership(self: &Arc<Self>, partition: i32, is_leader: bool) {
        let mut inner = self.inner.lock().unwrap();
        if is_leader {
            self.load_partition(&mut inner, partition);
        } else {
            inner.reload.remove(&partition);
            inner.compacting.remove(&partition);
            let fx = inner.coordinator.unload(partition);
            debug_assert!(fx.records.is_empty());
            self.deliver(fx.responses);
        }
    }

    /// Replays a partition this node leads into the coordinator (after unloading what
    /// it had); on failure it is retried by the ticker. Its whole local log is read:
    /// as leader, everything in it will be committed.
    fn load_partition(self: &Arc<Self>, inner: &mut Inner, p: i32) {
        let tp = TopicPartition::new(OFFSETS_TOPIC, p);
        if !self.partitions.status(&tp).is_some_and(|s| s.is_leader) {
            // Leadership moved on before the replay: another node coordinates.
            let fx = inner.coordinator.unload(p);
            self.deliver(fx.responses);
            return;
        }
        let fx = inner.coordinator.begin_load(p);
        self.apply(inner, fx);
        match load::replay_partition(&self.partitions, &mut inner.coordinator, p) {
            Ok(()) => {
                inner.coordinator.finish_load(p, now_ms());
                tracing::info!(
                    partition = p,
                    "coordinating the groups of __consumer_offsets partition"
                );
            }
            Err(f) => {
                tracing::error!(partition = p, error = %f.message, "loading __consumer_offsets failed; retrying");
                inner.reload.insert(p);
            }
        }
    }

    /// Runs one coordinator call and returns where its answer will arrive. The records
    /// it produced are appended before this returns; the answer is sent once they (and
    /// every earlier call's records) are durable.
    pub fn call(
        self: &Arc<Self>,
        f: impl FnOnce(&mut GroupCoordinator, RequestId, i64) -> Effects,
    ) -> oneshot::Receiver<Response> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        // Registered before the call: the answer may come in the call's own Effects.
        self.waiters.lock().unwrap().insert(id, tx);
        let mut inner = self.inner.lock().unwrap();
        let fx = f(&mut inner.coordinator, id, now_ms());
        self.apply(&mut inner, fx);
        rx
    }

    /// Advances the coordinator's timers and retries pending reloads (the ticker).
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

    /// Answers every parked request (JoinGroup and SyncGroup may wait minutes) with
    /// COORDINATOR_NOT_AVAILABLE, so connections can finish their answers and close:
    /// the server is shutting down and the ticker that would answer them has stopped.
    pub fn shutdown(&self) {
        // A dropped sender is what the handlers answer with that error.
        self.waiters.lock().unwrap().clear();
    }

    /// `__consumer_offsets` exists with `partitions` partitions (applied from the
    /// metadata log, before any of its partitions is loaded): groups are placed by that
    /// count, as Kafka does, whatever `offsets_topic_partitions` says now.
    pub fn offsets_topic_exists(&self, partitions: i32) {
        let mut inner = self.inner.lock().unwrap();
        let configured = inner.coordinator.config().offsets_topic_partitions;
        if configured != partitions {
            tracing::warn!(
                configured,
                actual = partitions,
                "offsets_topic_partitions is ignored: __consumer_offsets already exists \
                 with another partition count, which decides where groups are stored"
            );
            inner.coordinator.set_offsets_topic_partitions(partitions);
        }
    }

    /// Forgets committed offsets of deleted topics.
    pub fn topics_deleted(self: &Arc<Self>, topics: &[String]) {
        let mut inner = self.inner.lock().unwrap();
        let fx = inner.coordinator.topics_deleted(topics, now_ms());
        self.apply(&mut inner, fx);
    }

    /// Writes a transaction marker to `__consumer_offsets` partition `partition` and
    /// applies it to the coordinator in the same step, under its lock, so no commit of
    /// the producer's next transaction can come between: its transactional offset commits
    /// there become the committed offsets (COMMIT) or vanish (ABORT).
    pub fn write_marker(
        self: &Arc<Self>,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        kind: ControlType,
    ) -> Result<Appended, Failure> {
        let mut inner = self.inner.lock().unwrap();
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let appended = self.partitions.append_marker(
            &tp,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            kind,
        )?;
        let fx = inner.coordinator.complete_transaction(
            partition,
            producer_id,
            kind.is_commit(),
            now_ms(),
        );
        self.apply(&mut inner, fx);
        Ok(appended)
    }

    /// The lag report of a group: committed offset, log end offset and lag per partition.
    pub fn lag(&self, group_id: &str) -> Option<Vec<PartitionLag>> {
        let inner = self.inner.lock().unwrap();
        inner.coordinator.lag(group_id, |topic, p| {
            self.partitions
                .offsets(&TopicPartition::new(topic, p))
                .map(|(_, end)| end)
        })
    }

    /// The lag report of every group this node coordinates, by group id (for metrics).
    /// `end_offset` gives a partition's log end offset; it is called under the
    /// coordinator's lock, so it should be a lookup, not I/O.
    pub fn all_lag(
        &self,
        mut end_offset: impl FnMut(&str, i32) -> Option<i64>,
    ) -> Vec<(String, Vec<PartitionLag>)> {
        let inner = self.inner.lock().unwrap();
        inner
            .coordinator
            .groups()
            .map(|g| {
                (
                    g.id().to_string(),
                    strom_group::group_lag(g, &mut end_offset),
                )
            })
            .collect()
    }

    /// The offsets `group_id` has committed for these partitions now (`None`: none).
    pub fn committed_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Vec<Option<i64>> {
        let inner = self.inner.lock().unwrap();
        let group = inner.coordinator.group(group_id);
        partitions
            .iter()
            .map(|(t, p)| group.and_then(|g| g.offset(t, *p)).map(|o| o.offset))
            .collect()
    }

    /// Appends the records of `fx` (in order, under the coordinator's lock, so the log
    /// order is the call order) and schedules its responses behind every earlier call's.
    fn apply(self: &Arc<Self>, inner: &mut Inner, fx: Effects) {
        self.apply_then(inner, fx, None);
    }

    /// [`apply`](Self::apply), then, with `compaction`, finishes it once the snapshot in
    /// `fx` is durable (after every earlier call's records, like any response).
    fn apply_then(
        self: &Arc<Self>,
        inner: &mut Inner,
        fx: Effects,
        compaction: Option<compact::Compaction>,
    ) {
        if fx.is_empty() && compaction.is_none() {
            return;
        }
        let Effects { records, responses } = fx;
        let mut appended = append::append_records(&self.partitions, records);
        let mut responses = responses;
        if !appended.failed.is_empty() {
            for p in &appended.failed {
                self.schedule_reload(inner, *p);
            }
            responses = fail(responses);
        }
        let previous_done = inner.last_sent.as_ref().is_none_or(|rx| *rx.borrow());
        if appended.durable.is_empty() && previous_done && compaction.is_none() {
            self.deliver(responses);
            return;
        }
        let (done_tx, done_rx) = watch::channel(false);
        let previous = inner.last_sent.replace(done_rx);
        let groups = self.clone();
        self.runtime.spawn(async move {
            if let Some(mut prev) = previous {
                // An error means the earlier task ended without signalling: it is gone
                // either way.
                let _ = prev.wait_for(|sent| *sent).await;
            }
            let mut failed = BTreeSet::new();
            for (tp, commit) in &mut appended.durable {
                if let Err(f) = groups.partitions.wait_committed(tp, commit, COMMIT_TIMEOUT).await {
                    // Usually a lost leadership, not a fault of this node (a storage error
                    // is logged where it happens): as the transaction coordinator logs it.
                    tracing::warn!(partition = %tp.dir_name(), error = %f.message, "a __consumer_offsets record did not commit; reloading the partition");
                    failed.insert(tp.partition);
                }
            }
            if !failed.is_empty() {
                {
                    let mut inner = groups.inner.lock().unwrap();
                    for &p in &failed {
                        groups.schedule_reload(&mut inner, p);
                    }
                }
                responses = fail(responses);
            }
            groups.deliver(responses);
            if let Some(c) = compaction {
                // Only a snapshot that was wholly appended and made durable may stand in
                // for the history below it.
                let ok = !appended.failed.contains(&c.partition) && !failed.contains(&c.partition);
                groups.finish_compaction(c, ok);
            }
            let _ = done_tx.send(true);
        });
    }

    /// Stops serving a partition at once (its groups answer COORDINATOR_LOAD_IN_PROGRESS)
    /// and has the ticker replay it from the log.
    fn schedule_reload(&self, inner: &mut Inner, partition: i32) {
        let fx = inner.coordinator.begin_load(partition);
        inner.reload.insert(partition);
        // Unloading only answers parked requests with errors; it writes no records.
        // Those error answers depend on no record, so they need not wait for earlier ones.
        debug_assert!(fx.records.is_empty());
        self.deliver(fx.responses);
    }

    fn deliver(&self, responses: Vec<(RequestId, Response)>) {
        let mut waiters = self.waiters.lock().unwrap();
        for (id, response) in responses {
            if let Some(tx) = waiters.remove(&id) {
                // The connection may have closed meanwhile; nothing to do then.
                let _ = tx.send(response);
            }
        }
    }
}

/// The responses of a call whose records could not be made durable: the clients must
/// not believe their commit or assignment was stored, and should look for the
/// coordinator again.
fn fail(responses: Vec<(RequestId, Response)>) -> Vec<(RequestId, Response)> {
    responses
        .into_iter()
        .map(|(id, r)| (id, r.into_error(ErrorCode::NotCoordinator)))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::broker::Broker;
    use strom_batch::RecordBatchBuilder;
    use strom_group::{OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic};

    use super::*;

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        crate::test_broker::open(dir, &[("offsets_topic_partitions", "3")])
    }

    fn commit(broker: &Arc<Broker>, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        commit_with(broker, group, topic, offsets, |_| None);
    }

    /// Commits offsets as an assign()-only consumer would (generation -1), and checks
    /// every partition was accepted. Shared by the coordinator's tests.
    pub(super) fn commit_with(
        broker: &Arc<Broker>,
        group: &str,
        topic: &str,
        offsets: &[(i32, i64)],
        metadata: fn(i64) -> Option<String>,
    ) {
        let req = OffsetCommitRequest {
            group_id: group.into(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: topic.into(),
                partitions: offsets
                    .iter()
                    .map(|&(p, o)| OffsetCommitPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        committed_metadata: metadata(o),
                    })
                    .collect(),
            }],
        };
        let rx = broker
            .groups()
            .call(|c, id, now| c.offset_commit(id, req, now));
        let Response::OffsetCommit(r) = rx.blocking_recv().unwrap() else {
            panic!("not a commit answer");
        };
        assert!(
            r.topics[0]
                .partitions
                .iter()
                .all(|p| p.error == ErrorCode::None)
        );
    }

    #[test]
    fn shutdown_answers_parked_joins() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let broker = open(dir.path());
        let join = |member_id: &str| strom_group::JoinGroupRequest {
            api_version: 5,
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 60_000,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![strom_group::JoinGroupProtocol {
                name: "range".into(),
                metadata: Default::default(),
            }],
            reason: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        };
        // v4+: the first join only hands out a member id.
        let first = join("");
        let rx = broker
            .groups()
            .call(|c, id, now| c.join_group(id, first, now));
        let Ok(Response::JoinGroup(j)) = rx.blocking_recv() else {
            panic!("no member id");
        };
        assert_eq!(j.error, ErrorCode::MemberIdRequired);
        let second = join(&j.member_id);
        let mut rx = broker
            .groups()
            .call(|c, id, now| c.join_group(id, second, now));
        // Parked for the initial rebalance delay.
        assert!(rx.try_recv().is_err());
        broker.groups().shutdown();
        assert!(rx.blocking_recv().is_err(), "the waiter was released");
        broker.close().unwrap();
    }

    /// Deleting a topic forgets its committed offsets by appending tombstones; the
    /// delete is applied by Raft's listener on the group-commit thread, which is no tokio
    /// thread (a `tokio::spawn` there aborted the broker). Afterwards the node still
    /// commits: the group-commit thread is alive.
    #[test]
    fn deleting_a_topic_with_committed_offsets_forgets_them_and_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = open(dir.path());
        for t in ["gone", "kept"] {
            rt.block_on(
                broker
                    .control()
                    .create_topic(t, 2, -1, None, Default::default(), false),
            )
            .unwrap();
        }
        commit(&broker, "g", "gone", &[(0, 3), (1, 4)]);
        commit(&broker, "g", "kept", &[(0, 5)]);
        rt.block_on(broker.control().delete_topic("gone")).unwrap();
        let offsets = |topic: &str| {
            broker
                .groups()
                .committed_offsets("g", &[(topic.to_string(), 0), (topic.to_string(), 1)])
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while offsets("gone") != [None, None] && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(offsets("gone"), [None, None]);
        assert_eq!(offsets("kept"), [Some(5), None]);
        // Commits still become durable (and are answered) after the delete.
        commit(&broker, "g", "kept", &[(1, 7)]);
        assert_eq!(offsets("kept"), [Some(5), Some(7)]);
        broker.close().unwrap();
    }

    #[test]
    fn lag_reports_committed_end_and_lag_and_commits_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = open(dir.path());
        assert_eq!(broker.topics().get(OFFSETS_TOPIC).unwrap().partitions, 3);
        rt.block_on(
            broker
                .control()
                .create_topic("t", 2, -1, None, Default::default(), false),
        )
        .unwrap();
        let mut b = RecordBatchBuilder::new();
        for i in 0..10u8 {
            b.push(0, None, Some(&[i]), &[]);
        }
        let tp = TopicPartition::new("t", 0);
        let mut a = broker.data().append(&tp, &b.build()).unwrap();
        assert_eq!(
            (a.base_offset, a.last_offset),
            (0, 9),
            "Kafka's offsets, from 0"
        );
        rt.block_on(broker.data().wait_committed(
            &tp,
            &mut a.commit,
            std::time::Duration::from_secs(5),
        ))
        .unwrap();
        commit(&broker, "g", "t", &[(0, 4), (1, 0)]);
        commit(&broker, "g", "t", &[(0, 6)]);

        let rows = broker.group_lag("g").unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.partition, r.committed_offset, r.end_offset, r.lag))
            .collect();
        assert_eq!(
            got,
            [
                (0, Some(6), Some(10), Some(4)),
                (1, Some(0), Some(0), Some(0))
            ]
        );
        assert!(broker.group_lag("unknown").is_none());

        broker.close().unwrap();
        drop(broker);
        let broker = open(dir.path());
        // The restarted leader's empty entry commits shortly, and takes no offset.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let rows = loop {
            let rows = broker.group_lag("g").unwrap();
            if rows[0].end_offset == Some(10) || std::time::Instant::now() > deadline {
                break rows;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(rows[0].committed_offset, Some(6), "replayed from the log");
        assert_eq!((rows[0].end_offset, rows[0].lag), (Some(10), Some(4)));
        broker.close().unwrap();
    }
}
