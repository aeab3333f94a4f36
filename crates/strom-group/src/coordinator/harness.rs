//! A test driver for the coordinator: a fake clock, a request id counter, an in-memory
//! `__consumer_offsets` log that collects every record, and bookkeeping that checks each
//! request is answered exactly once.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use strom_codes::ErrorCode;

use super::GroupCoordinator;
use crate::config::GroupConfig;
use crate::consumer_protocol::encode;
use crate::effects::{Effects, OffsetsRecord, RequestId};
use crate::request::*;
use crate::response::*;

/// The fake clock's start: an ordinary wall-clock time in ms.
pub(crate) const T0: i64 = 1_700_000_000_000;
pub(crate) const SESSION: i32 = 10_000;
pub(crate) const REBALANCE: i32 = 30_000;

pub(crate) const INITIAL_DELAY: i32 = 3_000;

/// Settings for tests: Kafka's defaults with a few partitions and a fixed member id seed.
pub(crate) fn test_config() -> GroupConfig {
    GroupConfig {
        offsets_topic_partitions: 4,
        initial_rebalance_delay_ms: INITIAL_DELAY,
        member_id_seed: 7,
        ..GroupConfig::default()
    }
}

#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) c: GroupCoordinator,
    pub(crate) now: i64,
    next_id: u64,
    /// Every record ever emitted, in order: the `__consumer_offsets` log.
    pub(crate) log: Vec<OffsetsRecord>,
    /// The transaction markers appended to the log: each lies before `log[at]`.
    pub(crate) markers: Vec<Marker>,
    /// Every answer, by request.
    pub(crate) answers: BTreeMap<RequestId, Response>,
    /// Requests sent and not answered yet.
    pub(crate) outstanding: BTreeSet<RequestId>,
    /// Records per `Effects`, for tests of the durability contract.
    pub(crate) last_effects: Effects,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_config(test_config())
    }

    /// A coordinator serving every partition, loaded from nothing.
    pub(crate) fn with_config(config: GroupConfig) -> Self {
        let partitions = config.offsets_topic_partitions;
        let mut c = GroupCoordinator::new(config);
        for p in 0..partitions {
            assert!(c.begin_load(p).is_empty());
            c.finish_load(p, T0);
        }
        Harness {
            c,
            now: T0,
            next_id: 1,
            log: vec![],
            markers: vec![],
            answers: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            last_effects: Effects::default(),
        }
    }

    /// Takes in a call's effects: records go to the log, responses to `answers`. Panics if
    /// a request is answered twice or an unknown request is answered.
    pub(crate) fn absorb(&mut self, fx: Effects) {
        self.last_effects = fx.clone();
        self.log.extend(fx.records);
        for (id, response) in fx.responses {
            assert!(
                self.outstanding.remove(&id),
                "{id:?} answered but not outstanding: {response:?}"
            );
            assert!(self.answers.insert(id, response).is_none());
        }
    }

    /// Sends a request through `call` with a fresh id.
    pub(crate) fn send(
        &mut self,
        call: impl FnOnce(&mut GroupCoordinator, RequestId, i64) -> Effects,
    ) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.outstanding.insert(id);
        let fx = call(&mut self.c, id, self.now);
        self.absorb(fx);
        id
    }

    /// Moves the clock and ticks.
    pub(crate) fn advance(&mut self, ms: i64) {
        self.now += ms;
        let fx = self.c.tick(self.now);
        self.absorb(fx);
    }

    pub(crate) fn answered(&self, id: RequestId) -> bool {
        self.answers.contains_key(&id)
    }

    pub(crate) fn join_answer(&self, id: RequestId) -> JoinGroupResponse {
        match self.answers.get(&id) {
            Some(Response::JoinGroup(r)) => r.clone(),
            other => panic!("{id:?}: expected a JoinGroup answer, got {other:?}"),
        }
    }

    pub(crate) fn sync_answer(&self, id: RequestId) -> SyncGroupResponse {
        match self.answers.get(&id) {
            Some(Response::SyncGroup(r)) => r.clone(),
            other => panic!("{id:?}: expected a SyncGroup answer, got {other:?}"),
        }
    }

    pub(crate) fn join(&mut self, req: JoinGroupRequest) -> RequestId {
        self.send(|c, id, now| c.join_group(id, req, now))
    }

    /// A JoinGroup that must be answered at once; its answer.
    pub(crate) fn join_now(&mut self, req: JoinGroupRequest) -> JoinGroupResponse {
        let id = self.join(req);
        self.join_answer(id)
    }

    /// A first join with the MEMBER_ID_REQUIRED round trip (v4+): returns the member id
    /// and the parked (or answered) second JoinGroup.
    pub(crate) fn join_new(&mut self, req: JoinGroupRequest) -> (String, RequestId) {
        assert!(req.member_id.is_empty());
        let first = self.join(req.clone());
        let r = self.join_answer(first);
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        assert!(!r.member_id.is_empty());
        let second = self.join(JoinGroupRequest {
            member_id: r.member_id.clone(),
            ..req
        });
        (r.member_id, second)
    }

    pub(crate) fn sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &'static [u8])],
    ) -> RequestId {
        let req = sync_req(group, member_id, generation, assignments);
        self.send(|c, id, now| c.sync_group(id, req, now))
    }

    pub(crate) fn heartbeat(&mut self, group: &str, member_id: &str, generation: i32) -> ErrorCode {
        let req = HeartbeatRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
        };
        let id = self.send(|c, id, now| c.heartbeat(id, req, now));
        match &self.answers[&id] {
            Response::Heartbeat(r) => r.error,
            other => panic!("expected a Heartbeat answer, got {other:?}"),
        }
    }

    pub(crate) fn leave(
        &mut self,
        group: &str,
        members: &[(&str, Option<&str>)],
    ) -> LeaveGroupResponse {
        let req = LeaveGroupRequest {
            group_id: group.into(),
            members: members
                .iter()
                .map(|(m, i)| LeavingMember {
                    member_id: (*m).into(),
                    group_instance_id: i.map(Into::into),
                    reason: Some("test".into()),
                })
                .collect(),
        };
        let id = self.send(|c, id, now| c.leave_group(id, req, now));
        match &self.answers[&id] {
            Response::LeaveGroup(r) => r.clone(),
            other => panic!("expected a LeaveGroup answer, got {other:?}"),
        }
    }

    pub(crate) fn commit(&mut self, req: OffsetCommitRequest) -> OffsetCommitResponse {
        let id = self.send(|c, id, now| c.offset_commit(id, req, now));
        match &self.answers[&id] {
            Response::OffsetCommit(r) => r.clone(),
            other => panic!("expected an OffsetCommit answer, got {other:?}"),
        }
    }

    pub(crate) fn txn_commit(&mut self, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
        let id = self.send(|c, id, now| c.txn_offset_commit(id, req, now));
        match &self.answers[&id] {
            Response::TxnOffsetCommit(r) => r.clone(),
            other => panic!("expected a TxnOffsetCommit answer, got {other:?}"),
        }
    }

    /// Appends `producer_id`'s COMMIT (or ABORT) marker to `partition` and reports it to
    /// the coordinator, as the broker does for WriteTxnMarkers.
    pub(crate) fn marker(&mut self, partition: i32, producer_id: i64, commit: bool) {
        self.markers.push(Marker {
            at: self.log.len(),
            partition,
            producer_id,
            commit,
        });
        let fx = self
            .c
            .complete_transaction(partition, producer_id, commit, self.now);
        self.absorb(fx);
    }

    /// [`marker`](Self::marker) on the partition of `group`.
    pub(crate) fn end_txn(&mut self, group: &str, producer_id: i64, commit: bool) {
        let partition = self.c.partition_for(group);
        self.marker(partition, producer_id, commit);
    }

    pub(crate) fn fetch(&mut self, req: OffsetFetchRequest) -> OffsetFetchResponse {
        let id = self.send(|c, id, now| c.offset_fetch(id, req, now));
        match &self.answers[&id] {
            Response::OffsetFetch(r) => r.clone(),
            other => panic!("expected an OffsetFetch answer, got {other:?}"),
        }
    }

    /// The committed offset of one partition as OffsetFetch reports it.
    pub(crate) fn fetched_offset(&mut self, group: &str, topic: &str, partition: i32) -> i64 {
        let r = self.fetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.into(),
                topics: Some(vec![OffsetFetchTopic {
                    name: topic.into(),
                    partition_indexes: vec![partition],
                }]),
            }],
            require_stable: false,
        });
        assert_eq!(r.groups[0].error, ErrorCode::None);
        r.groups[0].topics[0].partitions[0].committed_offset
    }

    /// Forms a Stable group of `n` dynamic members through the whole protocol; returns
    /// the member ids in join order (the first is the leader) and the generation.
    pub(crate) fn stable_group(&mut self, group: &str, n: usize) -> (Vec<String>, i32) {
        let mut members = vec![];
        let mut joins = vec![];
        for i in 0..n {
            let (m, j) = self.join_new(join_req(group, &format!("client-{i}")));
            members.push(m);
            joins.push(j);
        }
        // The initial delay (extended while members arrive) ends the join phase.
        for _ in 0..100 {
            if joins.iter().all(|j| self.answered(*j)) {
                break;
            }
            self.advance(500);
        }
        let answers: Vec<_> = joins.iter().map(|j| self.join_answer(*j)).collect();
        let generation = answers[0].generation_id;
        assert!(answers.iter().all(|a| a.error == ErrorCode::None));
        assert_eq!(answers[0].leader, members[0]);
        let assignment: Vec<(&str, &'static [u8])> = members
            .iter()
            .map(|m| (m.as_str(), &b"assignment"[..]))
            .collect();
        let mut syncs = vec![self.sync(group, &members[0], generation, &assignment)];
        for m in &members[1..] {
            syncs.push(self.sync(group, m, generation, &[]));
        }
        for s in syncs {
            assert_eq!(self.sync_answer(s).error, ErrorCode::None);
        }
        (members, generation)
    }

    /// A fresh coordinator that replays this one's log, as at a restart.
    pub(crate) fn restart(&self, config: GroupConfig) -> Harness {
        let partitions = config.offsets_topic_partitions;
        let mut c = GroupCoordinator::new(config);
        for p in 0..partitions {
            assert!(c.begin_load(p).is_empty());
        }
        let mut markers = self.markers.iter().peekable();
        for (i, r) in self.log.iter().enumerate() {
            while let Some(m) = markers.next_if(|m| m.at <= i) {
                c.replay_marker(m.partition, m.producer_id, m.commit)
                    .unwrap();
            }
            match r.transaction {
                Some(p) => c.replay_transactional(&r.key, r.value.as_deref(), p),
                None => c.replay(&r.key, r.value.as_deref()),
            }
            .unwrap();
        }
        for m in markers {
            c.replay_marker(m.partition, m.producer_id, m.commit)
                .unwrap();
        }
        for p in 0..partitions {
            c.finish_load(p, self.now);
        }
        Harness {
            c,
            now: self.now,
            next_id: self.next_id,
            log: self.log.clone(),
            markers: self.markers.clone(),
            answers: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            last_effects: Effects::default(),
        }
    }
}

/// A transaction marker in the harness's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The number of records before it.
    pub(crate) at: usize,
    pub(crate) partition: i32,
    pub(crate) producer_id: i64,
    pub(crate) commit: bool,
}

/// A TxnOffsetCommit (v3+) of `(topic, partition, offset)`s by producer `producer_id`
/// (epoch 0).
pub(crate) fn txn_req(
    group: &str,
    producer_id: i64,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    let plain = commit_req(group, generation, member_id, offsets);
    TxnOffsetCommitRequest {
        transactional_id: format!("txn-{producer_id}"),
        group_id: group.into(),
        producer_id,
        producer_epoch: 0,
        generation_id: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        topics: plain
            .topics
            .into_iter()
            .map(|t| TxnOffsetCommitTopic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| TxnOffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: p.committed_metadata,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Every partition error of a TxnOffsetCommit answer.
pub(crate) fn txn_errors(r: &TxnOffsetCommitResponse) -> Vec<ErrorCode> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error))
        .collect()
}

/// A v9 JoinGroup of a new dynamic consumer subscribed to topic `t` with the range
/// assignor.
pub(crate) fn join_req(group: &str, client_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        api_version: 9,
        group_id: group.into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: protocols(&[("range", &["t"])]),
        reason: None,
        client_id: client_id.into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// Consumer protocols `(assignor, subscribed topics)`, in preference order.
pub(crate) fn protocols(list: &[(&str, &[&str])]) -> Vec<JoinGroupProtocol> {
    list.iter()
        .map(|(name, topics)| JoinGroupProtocol {
            name: (*name).into(),
            metadata: encode::subscription(topics),
        })
        .collect()
}

pub(crate) fn sync_req(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupAssignment {
                member_id: (*m).into(),
                assignment: Bytes::from_static(a),
            })
            .collect(),
    }
}

/// An OffsetCommit of `(topic, partition, offset)`s.
pub(crate) fn commit_req(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitTopic> = vec![];
    for (topic, partition, offset) in offsets {
        if topics.last().is_none_or(|t| t.name != *topic) {
            topics.push(OffsetCommitTopic {
                name: (*topic).into(),
                partitions: vec![],
            });
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(OffsetCommitPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: 3,
                committed_metadata: Some(format!("m{offset}")),
            });
        }
    }
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics,
    }
}

/// Every partition error of an OffsetCommit answer.
pub(crate) fn commit_errors(r: &OffsetCommitResponse) -> Vec<ErrorCode> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error))
        .collect()
}
