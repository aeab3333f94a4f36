//! TxnOffsetCommit and the end of transactions: offsets committed as part of a producer's
//! transaction are written as transactional records and kept *pending* per producer
//! (`txn.rs`) until the transaction's marker reaches the group's `__consumer_offsets`
//! partition.

use std::collections::BTreeSet;

use strom_codes::ErrorCode;

use super::GroupCoordinator;
use crate::context::Ctx;
use crate::effects::{Effects, ProducerRef, RequestId};
use crate::group::Group;
use crate::offsets::CommittedOffset;
use crate::records::{MAX_STRING_LEN, RecordKey};
use crate::request::TxnOffsetCommitRequest;
use crate::response::{
    Response, TxnOffsetCommitPartitionResponse, TxnOffsetCommitResponse,
    TxnOffsetCommitTopicResponse,
};
use crate::state::GroupState;

impl GroupCoordinator {
    /// Handles a TxnOffsetCommit. Accepted offsets come back as records with
    /// `transaction: Some(producer)` in the same effects as the answer, so the answer goes
    /// out only once they are durable; they are the group's *pending* offsets of that
    /// producer until [`complete_transaction`](Self::complete_transaction) (or, at load,
    /// [`replay_marker`](Self::replay_marker)) reports the producer's marker.
    ///
    /// Kafka's checks: INVALID_GROUP_ID for an empty (or unstorable) group id,
    /// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS; a group that does not exist is
    /// created (empty, without protocol) for generation -1 and refused with
    /// ILLEGAL_GENERATION otherwise; with a generation, member id or instance id
    /// (KIP-447, v3+) the member must be current (FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID)
    /// and of the group's generation (ILLEGAL_GENERATION). Unlike OffsetCommit, a commit
    /// without member is accepted while the group has members (v0-v2 carry none) and
    /// CompletingRebalance does not refuse it. Per partition: OFFSET_METADATA_TOO_LARGE.
    ///
    /// The producer id and epoch are not checked here: the broker checks them (and, with
    /// KIP-890, the partition's membership in the transaction) as for any transactional
    /// append to the partition, before calling this. If the append fails after all, it
    /// answers with [`Response::into_error`] and reloads the partition, per the contract
    /// of [`Effects`].
    pub fn txn_offset_commit(
        &mut self,
        id: RequestId,
        req: TxnOffsetCommitRequest,
        now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        let partition = match self.status(&req.group_id, false) {
            Ok(p) => p,
            Err(e) => {
                fx.respond(id, Response::TxnOffsetCommit(all_partitions(&req, e)));
                return fx;
            }
        };
        if !self.groups.contains_key(&req.group_id) {
            if req.generation_id >= 0 {
                let r = all_partitions(&req, ErrorCode::IllegalGeneration);
                fx.respond(id, Response::TxnOffsetCommit(r));
                return fx;
            }
            tracing::info!(group = %req.group_id, "group created by a transactional offset commit");
            self.ensure_group(&req.group_id, partition, now);
        }
        let count = req.topics.iter().map(|t| t.partitions.len()).sum();
        let first_order = self.take_pending_orders(count);
        let producer_id = req.producer_id;
        let group_id = req.group_id.clone();
        let accepted = self.run(&group_id, now, &mut fx, |g, ctx| {
            commit(g, id, req, first_order, ctx)
        });
        if accepted.unwrap_or(0) > 0 {
            self.open_txns
                .entry((partition, producer_id))
                .or_default()
                .insert(group_id);
        }
        fx
    }

    /// The broker appended a COMMIT (`commit`) or ABORT marker of `producer_id` to
    /// `__consumer_offsets` partition `partition` (as the transaction coordinator's
    /// WriteTxnMarkers asked): the producer's pending offsets in the partition's groups
    /// become their committed offsets, or are dropped. On commit, a pending offset
    /// replaces the committed one only if its record is later in the log (Kafka's rule:
    /// a plain OffsetCommit written after the transactional one wins; see `txn.rs`). Groups
    /// left with nothing (created by a transactional commit that aborted) are forgotten.
    /// A marker of a producer with nothing pending is a no-op.
    ///
    /// Call it once the marker is appended and before acknowledging it (WriteTxnMarkers).
    /// Between the append and this call, nothing may reach the partition that the marker
    /// must not apply to: no TxnOffsetCommit of the producer's *next* transaction, and no
    /// [`snapshot`](Self::snapshot) (it would re-open the transaction after its marker).
    /// Holding the coordinator's lock across the append and the call guarantees both;
    /// plain commits in between are harmless (they are ordered by the log either way). A
    /// partition that is not served ignores the call; one that is loading learns the
    /// marker from the log ([`replay_marker`](Self::replay_marker)), so its load must read
    /// up to the marker. Returns no records; the `Effects` are for the uniformity of the
    /// calls.
    pub fn complete_transaction(
        &mut self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        if !self.is_active(partition) {
            return fx;
        }
        for group_id in self.take_open_txn(partition, producer_id) {
            let committed = self.run(&group_id, now, &mut fx, |g, _| {
                g.complete_txn(producer_id, commit)
            });
            if let Some(n) = committed {
                tracing::debug!(group = %group_id, producer_id, commit, committed = n, "transaction ended");
            }
        }
        fx
    }

    /// The producer ids with pending transactional offsets in the groups of `partition`:
    /// transactions whose records are in the partition and whose marker has not been
    /// reported yet. [`snapshot`](Self::snapshot) re-states their records, so compaction
    /// need not wait for them; a broker whose partition state cannot keep a transaction
    /// open across a moved log start can use this to postpone compaction instead.
    pub fn open_transactions(&self, partition: i32) -> BTreeSet<i64> {
        if !self.is_active(partition) {
            return BTreeSet::new();
        }
        self.groups
            .values()
            .filter(|g| g.partition == partition)
            .flat_map(|g| g.open_transactions())
            .collect()
    }
}

/// The same error for every partition of the request.
fn all_partitions(req: &TxnOffsetCommitRequest, error: ErrorCode) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitPartitionResponse {
                        partition_index: p.partition_index,
                        error,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Kafka's rules for who may commit in a transaction: as for OffsetCommit, except that a
/// commit with neither generation nor member is accepted whatever the group's state
/// (TxnOffsetCommit v0-v2 cannot carry them).
fn validate(group: &Group, req: &TxnOffsetCommitRequest) -> Result<(), ErrorCode> {
    if group.is(GroupState::Dead) {
        return Err(ErrorCode::CoordinatorNotAvailable);
    }
    let generation = req.generation_id;
    let instance = req.group_instance_id.as_deref();
    if generation < 0 && group.is(GroupState::Empty) {
        return Ok(());
    }
    if generation >= 0 || !req.member_id.is_empty() || instance.is_some() {
        group.validate_member(&req.member_id, instance)?;
        if generation != group.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
    }
    Ok(())
}

/// Validates and records a TxnOffsetCommit; how many offsets became pending.
fn commit(
    group: &mut Group,
    id: RequestId,
    req: TxnOffsetCommitRequest,
    first_order: u64,
    ctx: &mut Ctx<'_>,
) -> usize {
    if let Err(e) = validate(group, &req) {
        ctx.fx
            .respond(id, Response::TxnOffsetCommit(all_partitions(&req, e)));
        return 0;
    }
    let producer = ProducerRef {
        producer_id: req.producer_id,
        producer_epoch: req.producer_epoch,
    };
    let max_metadata = ctx.config.max_offset_metadata_bytes.min(MAX_STRING_LEN);
    let mut order = first_order;
    let mut accepted = 0;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let metadata = p.committed_metadata.unwrap_or_default();
            let error = if t.name.len() > MAX_STRING_LEN {
                ErrorCode::InvalidTopicException
            } else if metadata.len() > max_metadata {
                ErrorCode::OffsetMetadataTooLarge
            } else {
                // No retention of its own: TxnOffsetCommit has no retention time.
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata,
                    commit_timestamp: ctx.now,
                    expire_timestamp: None,
                };
                let record = offset.to_record();
                let key = RecordKey::OffsetCommit {
                    group: group.id.clone(),
                    topic: t.name.clone(),
                    partition: p.partition_index,
                };
                ctx.fx.record_txn(
                    group.partition,
                    key.encode(),
                    record.encode(record.preferred_version()),
                    producer,
                );
                let key = (t.name.clone(), p.partition_index);
                group.pending.add(
                    producer.producer_id,
                    producer.producer_epoch,
                    key,
                    offset,
                    order,
                );
                order += 1;
                accepted += 1;
                ErrorCode::None
            };
            partitions.push(TxnOffsetCommitPartitionResponse {
                partition_index: p.partition_index,
                error,
            });
        }
        topics.push(TxnOffsetCommitTopicResponse {
            name: t.name,
            partitions,
        });
    }
    let r = TxnOffsetCommitResponse { topics };
    ctx.fx.respond(id, Response::TxnOffsetCommit(r));
    accepted
}

#[cfg(test)]
mod tests {
    use strom_codes::ErrorCode;

    use super::super::harness::*;
    use crate::effects::ProducerRef;
    use crate::records::{OffsetCommitValue, RecordKey};
    use crate::request::{
        DeleteGroupsRequest, JoinGroupRequest, OffsetDeleteRequest, OffsetDeleteTopic,
        OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic, TxnOffsetCommitRequest,
    };
    use crate::response::{OffsetFetchResponse, Response};
    use crate::state::GroupState;

    const P1: i64 = 1000;
    const P2: i64 = 2000;
    const DAY: i64 = 24 * 60 * 60 * 1000;

    /// OffsetFetch of some partitions of topic `t`.
    fn fetch_t(
        h: &mut Harness,
        group: &str,
        partitions: &[i32],
        stable: bool,
    ) -> OffsetFetchResponse {
        h.fetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.into(),
                topics: Some(vec![OffsetFetchTopic {
                    name: "t".into(),
                    partition_indexes: partitions.to_vec(),
                }]),
            }],
            require_stable: stable,
        })
    }

    /// `(partition, offset, error)` of each partition of the first topic.
    fn rows(r: &OffsetFetchResponse) -> Vec<(i32, i64, ErrorCode)> {
        r.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset, p.error))
            .collect()
    }

    fn pending(h: &Harness, group: &str, producer_id: i64, partition: i32) -> Option<i64> {
        h.c.group(group)?
            .pending_offset(producer_id, "t", partition)
            .map(|o| o.offset)
    }

    #[test]
    fn a_commit_marker_makes_pending_offsets_the_committed_ones() {
        let mut h = Harness::new();
        let r = h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 42), ("t", 1, 7)]));
        assert_eq!(txn_errors(&r), [ErrorCode::None, ErrorCode::None]);
        // Two transactional records, answered in the same effects.
        assert_eq!(h.last_effects.records.len(), 2);
        assert_eq!(h.last_effects.responses.len(), 1);
        let rec = &h.last_effects.records[0];
        assert_eq!(rec.partition, h.c.partition_for("g"));
        assert_eq!(
            rec.transaction,
            Some(ProducerRef {
                producer_id: P1,
                producer_epoch: 0
            })
        );
        assert_eq!(
            RecordKey::decode(&rec.key).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            }
        );
        let (version, value) = OffsetCommitValue::decode(rec.value.as_ref().unwrap()).unwrap();
        assert_eq!((version, value.offset, value.leader_epoch), (3, 42, 3));
        assert_eq!(value.metadata, "m42");
        assert_eq!(value.commit_timestamp, h.now);
        assert_eq!(value.expire_timestamp, -1);

        // Not visible before the marker: not to OffsetFetch, not to the lag report.
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
        assert!(h.c.group("g").unwrap().offsets().is_empty());
        assert!(h.c.lag("g", |_, _| Some(100)).unwrap().is_empty());
        assert_eq!(pending(&h, "g", P1, 0), Some(42));
        let p = h.c.partition_for("g");
        assert_eq!(h.c.open_transactions(p), [P1].into());

        h.end_txn("g", P1, true);
        assert!(h.last_effects.is_empty(), "the marker is the record");
        assert_eq!(h.fetched_offset("g", "t", 0), 42);
        assert_eq!(h.fetched_offset("g", "t", 1), 7);
        let o = h.c.group("g").unwrap().offset("t", 0).unwrap().clone();
        assert_eq!((o.leader_epoch, o.metadata.as_str()), (3, "m42"));
        assert_eq!(pending(&h, "g", P1, 0), None);
        assert!(h.c.open_transactions(p).is_empty());
        // A second marker of the producer changes nothing.
        h.end_txn("g", P1, false);
        assert_eq!(h.fetched_offset("g", "t", 0), 42);
    }

    #[test]
    fn an_abort_marker_discards_pending_offsets() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 5)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 9), ("t", 1, 9)]));
        h.end_txn("g", P1, false);
        assert_eq!(h.fetched_offset("g", "t", 0), 5);
        assert_eq!(h.fetched_offset("g", "t", 1), -1);
        assert_eq!(pending(&h, "g", P1, 0), None);

        // A group that only an aborted transaction committed to is gone with it.
        h.txn_commit(txn_req("fresh", P1, -1, "", &[("t", 0, 1)]));
        assert_eq!(h.c.group("fresh").unwrap().state(), GroupState::Empty);
        h.end_txn("fresh", P1, false);
        assert!(h.c.group("fresh").is_none());
        let h = h.restart(test_config());
        assert!(h.c.group("fresh").is_none());
    }

    #[test]
    fn markers_of_other_partitions_and_producers_do_not_decide() {
        let mut h = Harness::new();
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 1)]));
        let p = h.c.partition_for("g");
        h.marker((p + 1) % 4, P1, true);
        h.end_txn("g", P2, true);
        assert_eq!(pending(&h, "g", P1, 0), Some(1));
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
        // Not served: ignored (the new leader replays the marker from the log).
        h.c.unload(p);
        assert!(h.c.complete_transaction(p, P1, true, h.now).is_empty());
    }

    #[test]
    fn require_stable_answers_unstable_offset_commit_for_pending_partitions() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 1), ("t", 1, 2)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 1, 20), ("t", 2, 30)]));
        let r = fetch_t(&mut h, "g", &[0, 1, 2, 3], true);
        assert_eq!(
            rows(&r),
            [
                (0, 1, ErrorCode::None),
                (1, -1, ErrorCode::UnstableOffsetCommit),
                (2, -1, ErrorCode::UnstableOffsetCommit),
                (3, -1, ErrorCode::None),
            ]
        );
        assert_eq!(r.groups[0].error, ErrorCode::None);
        let unstable = &r.groups[0].topics[0].partitions[1];
        assert_eq!(unstable.committed_leader_epoch, -1);
        assert_eq!(unstable.metadata.as_deref(), Some(""));
        // Without require_stable: the committed offsets, pending ones unseen.
        let r = fetch_t(&mut h, "g", &[0, 1, 2], false);
        assert_eq!(
            rows(&r),
            [
                (0, 1, ErrorCode::None),
                (1, 2, ErrorCode::None),
                (2, -1, ErrorCode::None),
            ]
        );
        // All partitions: the committed ones are listed, the pending one flagged; a
        // partition with only a pending offset is not listed (as in Kafka).
        let all = |h: &mut Harness, stable| {
            h.fetch(OffsetFetchRequest {
                groups: vec![OffsetFetchGroup {
                    group_id: "g".into(),
                    topics: None,
                }],
                require_stable: stable,
            })
        };
        let r = all(&mut h, true);
        assert_eq!(
            rows(&r),
            [
                (0, 1, ErrorCode::None),
                (1, -1, ErrorCode::UnstableOffsetCommit)
            ]
        );
        let r = all(&mut h, false);
        assert_eq!(rows(&r), [(0, 1, ErrorCode::None), (1, 2, ErrorCode::None)]);
        // Stable again once the transaction ends.
        h.end_txn("g", P1, true);
        let r = fetch_t(&mut h, "g", &[1, 2], true);
        assert_eq!(
            rows(&r),
            [(1, 20, ErrorCode::None), (2, 30, ErrorCode::None)]
        );
    }

    #[test]
    fn kip_447_checks_the_member_and_generation() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let cases = [
            (
                generation + 1,
                members[0].as_str(),
                ErrorCode::IllegalGeneration,
            ),
            (
                generation - 1,
                members[0].as_str(),
                ErrorCode::IllegalGeneration,
            ),
            (generation, "ghost", ErrorCode::UnknownMemberId),
            (-1, "ghost", ErrorCode::UnknownMemberId),
            (generation, members[1].as_str(), ErrorCode::None),
            // Without generation and member (v0-v2, or a producer that does not pass the
            // group metadata), unlike OffsetCommit, even while the group has members.
            (-1, "", ErrorCode::None),
        ];
        for (generation, member, want) in cases {
            let r = h.txn_commit(txn_req("g", P1, generation, member, &[("t", 0, 1)]));
            assert_eq!(txn_errors(&r), [want], "{generation} {member}");
            if want != ErrorCode::None {
                assert!(h.last_effects.records.is_empty());
            }
        }
        // Member checks do not care whether the rebalance is complete (no
        // REBALANCE_IN_PROGRESS, unlike OffsetCommit).
        h.join(JoinGroupRequest {
            member_id: members[0].clone(),
            ..join_req("g", "a")
        });
        h.join(JoinGroupRequest {
            member_id: members[1].clone(),
            ..join_req("g", "b")
        });
        let g = h.c.group("g").unwrap();
        assert_eq!(g.state(), GroupState::CompletingRebalance);
        let next = g.generation_id();
        let r = h.txn_commit(txn_req("g", P2, next, &members[1], &[("t", 0, 2)]));
        assert_eq!(txn_errors(&r), [ErrorCode::None]);
        let r = h.txn_commit(txn_req("g", P2, generation, &members[1], &[("t", 0, 2)]));
        assert_eq!(txn_errors(&r), [ErrorCode::IllegalGeneration]);
    }

    #[test]
    fn kip_447_fences_a_replaced_static_member() {
        let mut h = Harness::new();
        let j = h.join(JoinGroupRequest {
            group_instance_id: Some("i".into()),
            ..join_req("g", "a")
        });
        h.advance(i64::from(INITIAL_DELAY));
        let old = h.join_answer(j);
        // The same instance rejoins from a new process: a new member id.
        let j = h.join(JoinGroupRequest {
            group_instance_id: Some("i".into()),
            ..join_req("g", "a")
        });
        let new = h.join_answer(j);
        assert_ne!(new.member_id, old.member_id);
        let generation = h.c.group("g").unwrap().generation_id();
        let req = |member: &str, instance: &str| TxnOffsetCommitRequest {
            group_instance_id: Some(instance.into()),
            ..txn_req("g", P1, generation, member, &[("t", 0, 1)])
        };
        let r = h.txn_commit(req(&old.member_id, "i"));
        assert_eq!(txn_errors(&r), [ErrorCode::FencedInstanceId]);
        let r = h.txn_commit(req(&new.member_id, "other"));
        assert_eq!(txn_errors(&r), [ErrorCode::UnknownMemberId]);
        let r = h.txn_commit(req(&new.member_id, "i"));
        assert_eq!(txn_errors(&r), [ErrorCode::None]);
    }

    #[test]
    fn group_id_coordinator_and_per_partition_errors() {
        let mut h = Harness::new();
        let r = h.txn_commit(txn_req("", P1, -1, "", &[("t", 0, 1), ("t", 1, 1)]));
        assert_eq!(txn_errors(&r), [ErrorCode::InvalidGroupId; 2]);
        let long = "g".repeat(40_000);
        let r = h.txn_commit(txn_req(&long, P1, -1, "", &[("t", 0, 1)]));
        assert_eq!(txn_errors(&r), [ErrorCode::InvalidGroupId]);

        // A generation of a group that does not exist: refused, and nothing created.
        let r = h.txn_commit(txn_req("nothing", P1, 3, "m", &[("t", 0, 1)]));
        assert_eq!(txn_errors(&r), [ErrorCode::IllegalGeneration]);
        assert!(h.c.group("nothing").is_none());

        let p = h.c.partition_for("g");
        h.c.begin_load(p);
        let r = h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 1)]));
        assert_eq!(txn_errors(&r), [ErrorCode::CoordinatorLoadInProgress]);
        h.c.unload(p);
        let r = h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 1)]));
        assert_eq!(txn_errors(&r), [ErrorCode::NotCoordinator]);
        h.c.begin_load(p);
        h.c.finish_load(p, h.now);

        let mut req = txn_req("g", P1, -1, "", &[("t", 0, 1), ("t", 1, 2)]);
        req.topics[0].partitions[1].committed_metadata = Some("x".repeat(5_000));
        let r = h.txn_commit(req);
        assert_eq!(
            txn_errors(&r),
            [ErrorCode::None, ErrorCode::OffsetMetadataTooLarge]
        );
        assert_eq!(h.last_effects.records.len(), 1);
        // Null metadata is stored as "".
        let mut req = txn_req("g", P1, -1, "", &[("t", 2, 3)]);
        req.topics[0].partitions[0].committed_metadata = None;
        h.txn_commit(req);
        h.end_txn("g", P1, true);
        assert_eq!(h.c.group("g").unwrap().offset("t", 2).unwrap().metadata, "");
        assert_eq!(h.fetched_offset("g", "t", 1), -1);
    }

    #[test]
    fn a_failed_append_turns_the_answer_into_an_error() {
        let mut h = Harness::new();
        let r = h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 1), ("u", 1, 1)]));
        let Response::TxnOffsetCommit(e) =
            Response::TxnOffsetCommit(r).into_error(ErrorCode::NotCoordinator)
        else {
            panic!("kind changed");
        };
        assert_eq!(txn_errors(&e), [ErrorCode::NotCoordinator; 2]);
        assert_eq!(e.topics[1].name, "u");
    }

    #[test]
    fn two_producers_the_later_record_wins() {
        let mut h = Harness::new();
        // P1's record, then P2's; P2 commits first: P1's older record must not replace it.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 10), ("t", 1, 10)]));
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 0, 20)]));
        let p = h.c.partition_for("g");
        assert_eq!(h.c.open_transactions(p), [P1, P2].into());
        h.end_txn("g", P2, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 20);
        let r = fetch_t(&mut h, "g", &[0, 1], true);
        assert_eq!(
            rows(&r),
            [
                (0, -1, ErrorCode::UnstableOffsetCommit),
                (1, -1, ErrorCode::UnstableOffsetCommit)
            ]
        );
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 20);
        assert_eq!(h.fetched_offset("g", "t", 1), 10);

        // The other way round: P1's older record commits first, then P2's replaces it.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 30)]));
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 0, 40)]));
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 30);
        h.end_txn("g", P2, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 40);

        // One aborts, the other commits.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 50)]));
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 0, 60)]));
        h.end_txn("g", P2, false);
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 50);
        let restarted = h.restart(test_config());
        assert_eq!(
            restarted.c.group("g").unwrap().offsets(),
            h.c.group("g").unwrap().offsets()
        );
    }

    #[test]
    fn plain_commits_interleave_by_log_order() {
        let mut h = Harness::new();
        // A plain commit after the transactional record wins over it.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 10), ("t", 1, 10)]));
        h.commit(commit_req("g", -1, "", &[("t", 0, 15)]));
        assert_eq!(h.fetched_offset("g", "t", 0), 15);
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 15);
        assert_eq!(h.fetched_offset("g", "t", 1), 10);

        // A plain commit before it loses to it.
        h.commit(commit_req("g", -1, "", &[("t", 0, 16)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 20)]));
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 20);

        // A plain commit after the marker is simply the newest.
        h.commit(commit_req("g", -1, "", &[("t", 0, 21)]));
        assert_eq!(h.fetched_offset("g", "t", 0), 21);

        // The same producer commits a partition twice in one transaction: the second
        // counts, and it is later than a plain commit between them.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 30)]));
        h.commit(commit_req("g", -1, "", &[("t", 0, 31)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 32)]));
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), 32);

        let mut restarted = h.restart(test_config());
        assert_eq!(restarted.fetched_offset("g", "t", 0), 32);
        assert_eq!(restarted.fetched_offset("g", "t", 1), 10);
    }

    #[test]
    fn replay_rebuilds_committed_and_pending_offsets() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 1);
        h.txn_commit(txn_req("g", P1, generation, &members[0], &[("t", 0, 1)]));
        h.end_txn("g", P1, true);
        h.txn_commit(txn_req("g", P1, generation, &members[0], &[("t", 0, 2)]));
        h.end_txn("g", P1, false);
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 1, 3)]));
        h.commit(commit_req("g", generation, &members[0], &[("t", 1, 4)]));
        // Still open at the restart: P1 on t-0, P2 on t-1 (older than the plain commit).
        h.txn_commit(txn_req("g", P1, generation, &members[0], &[("t", 0, 5)]));
        h.txn_commit(txn_req("only-pending", P1, -1, "", &[("t", 0, 6)]));

        let mut r = h.restart(test_config());
        let (a, b) = (r.c.group("g").unwrap(), h.c.group("g").unwrap());
        assert_eq!(a.offsets(), b.offsets());
        assert_eq!(a.pending, b.pending.clone());
        assert_eq!(r.fetched_offset("g", "t", 0), 1);
        assert_eq!(r.fetched_offset("g", "t", 1), 4);
        assert_eq!(pending(&r, "only-pending", P1, 0), Some(6));
        let p = r.c.partition_for("g");
        assert!(r.c.open_transactions(p).contains(&P1));

        // The markers after the restart decide them as they would have before.
        for h in [&mut h, &mut r] {
            h.end_txn("g", P1, true);
            h.end_txn("g", P2, true);
            h.end_txn("only-pending", P1, true);
            assert_eq!(h.fetched_offset("g", "t", 0), 5);
            assert_eq!(
                h.fetched_offset("g", "t", 1),
                4,
                "the plain commit was later"
            );
            assert_eq!(h.fetched_offset("only-pending", "t", 0), 6);
        }
    }

    #[test]
    fn replay_marker_needs_a_loading_partition() {
        let mut h = Harness::new();
        let p = h.c.partition_for("g");
        assert!(h.c.replay_marker(p, P1, true).is_err());
        h.c.begin_load(p);
        assert_eq!(h.c.replay_marker(p, P1, true), Ok(()));
    }

    #[test]
    fn deleting_offsets_deletes_pending_ones_too() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 1)]));
        h.txn_commit(txn_req(
            "g",
            P1,
            -1,
            "",
            &[("t", 0, 2), ("t", 1, 3), ("u", 0, 4)],
        ));
        // OffsetDelete: a tombstone for a partition with only a pending offset too.
        let req = OffsetDeleteRequest {
            group_id: "g".into(),
            topics: vec![OffsetDeleteTopic {
                name: "t".into(),
                partition_indexes: vec![0, 1, 2],
            }],
        };
        h.send(|c, id, now| c.offset_delete(id, req, now));
        let tombstones: Vec<_> = h
            .last_effects
            .records
            .iter()
            .map(|r| {
                assert!(r.value.is_none() && r.transaction.is_none());
                RecordKey::decode(&r.key).unwrap()
            })
            .collect();
        assert_eq!(tombstones.len(), 2, "t-0 and t-1, not t-2");
        assert_eq!(pending(&h, "g", P1, 1), None);
        // Deleted topics: u's pending offset goes.
        let fx = h.c.topics_deleted(&["u".to_string()], h.now);
        assert_eq!(fx.records.len(), 1);
        h.absorb(fx);
        assert!(
            h.c.group("g")
                .is_none_or(|g| g.open_transactions().is_empty())
        );
        h.end_txn("g", P1, true);
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
        assert_eq!(h.fetched_offset("g", "t", 1), -1);
        assert!(h.c.group("g").is_none());
        assert!(h.restart(test_config()).c.group("g").is_none());
    }

    #[test]
    fn deleting_a_group_with_an_open_transaction() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 1)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 2), ("t", 1, 3)]));
        // As in Kafka: an Empty group is deleted, with tombstones for its committed and
        // pending offsets.
        let req = DeleteGroupsRequest {
            groups_names: vec!["g".into()],
        };
        let id = h.send(|c, id, now| c.delete_groups(id, req, now));
        let Response::DeleteGroups(r) = &h.answers[&id] else {
            panic!()
        };
        assert_eq!(r.results[0].error, ErrorCode::None);
        let keys: Vec<_> = h
            .last_effects
            .records
            .iter()
            .map(|r| RecordKey::decode(&r.key).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                RecordKey::OffsetCommit {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0
                },
                RecordKey::OffsetCommit {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 1
                },
                RecordKey::GroupMetadata { group: "g".into() },
            ]
        );
        // The transaction's marker finds nothing to commit.
        h.end_txn("g", P1, true);
        assert!(h.c.group("g").is_none());
        let mut r = h.restart(test_config());
        assert!(r.c.group("g").is_none());
        assert_eq!(r.fetched_offset("g", "t", 1), -1);
    }

    #[test]
    fn open_transactions_hold_off_expiry() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 1), ("t", 1, 1)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 2)]));
        h.txn_commit(txn_req("only-pending", P1, -1, "", &[("t", 0, 2)]));
        h.advance(8 * DAY);
        // t-1 expired; t-0 waits for the transaction; both groups stay.
        assert_eq!(h.fetched_offset("g", "t", 1), -1);
        assert_eq!(h.fetched_offset("g", "t", 0), 1);
        assert!(h.c.group("only-pending").is_some());
        h.end_txn("g", P1, false);
        h.end_txn("only-pending", P1, false);
        assert!(h.c.group("only-pending").is_none());
        h.advance(600_000);
        assert!(
            h.c.group("g").is_none(),
            "expired once the transaction ended"
        );
    }

    /// Everything the snapshot must preserve of a group.
    fn state(h: &Harness, group: &str) -> String {
        let g = h.c.group(group).unwrap();
        format!("{:?} {:?}", g.offsets(), g.pending)
    }

    #[test]
    fn the_snapshot_restates_open_transactions_in_precedence_order() {
        let mut h = Harness::new();
        h.commit(commit_req(
            "g",
            -1,
            "",
            &[("t", 0, 1), ("t", 1, 1), ("t", 2, 1)],
        ));
        // t-0: pending newer than the committed offset.
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 0, 10)]));
        // t-1: pending older than a plain commit.
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 1, 20)]));
        h.commit(commit_req("g", -1, "", &[("t", 1, 21)]));
        // t-2: both producers, P2's record later than P1's.
        h.txn_commit(txn_req("g", P2, -1, "", &[("t", 2, 30)]));
        h.txn_commit(txn_req("g", P1, -1, "", &[("t", 2, 31)]));
        let p = h.c.partition_for("g");
        let snapshot = h.c.snapshot(p);
        let txn: Vec<_> = snapshot
            .iter()
            .filter_map(|r| {
                let RecordKey::OffsetCommit { partition, .. } = RecordKey::decode(&r.key).ok()?
                else {
                    return None;
                };
                Some((partition, r.transaction.map(|t| t.producer_id)))
            })
            .collect();
        assert_eq!(
            txn,
            [
                (1, Some(P2)),
                (0, None),
                (1, None),
                (2, None),
                (0, Some(P1)),
                (2, Some(P2)),
                (2, Some(P1)),
            ]
        );

        let history = h.log.clone();
        let markers = h.markers.clone();
        let mut compacted = h.restart(test_config());
        compacted.log = snapshot.clone();
        compacted.markers.clear();
        let mut compacted = compacted.restart(test_config());
        let mut both = h.restart(test_config());
        both.log = [history, snapshot.clone()].concat();
        both.markers = markers;
        let mut both = both.restart(test_config());
        for r in [&compacted, &both] {
            assert_eq!(
                format!("{:?}", r.c.group("g").unwrap().offsets()),
                format!("{:?}", h.c.group("g").unwrap().offsets())
            );
        }
        // A snapshot of the replayed snapshot is the same.
        assert_eq!(compacted.c.snapshot(p), snapshot);
        // The markers after the compaction decide as they would have on the original.
        for x in [&mut h, &mut compacted, &mut both] {
            x.end_txn("g", P2, true);
            x.end_txn("g", P1, true);
        }
        assert_eq!(state(&compacted, "g"), state(&h, "g"));
        assert_eq!(state(&both, "g"), state(&h, "g"));
        let got: Vec<i64> = (0..3).map(|p| h.fetched_offset("g", "t", p)).collect();
        assert_eq!(got, [10, 21, 31]);
    }
}
