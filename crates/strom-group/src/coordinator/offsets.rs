//! OffsetCommit, OffsetFetch and OffsetDelete.

use strom_codes::ErrorCode;

use super::{GroupCoordinator, tombstone_offset};
use crate::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use crate::context::Ctx;
use crate::effects::{Effects, RequestId};
use crate::group::Group;
use crate::offsets::CommittedOffset;
use crate::records::{MAX_STRING_LEN, RecordKey};
use crate::request::{
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchGroup, OffsetFetchRequest,
};
use crate::response::{
    OffsetCommitPartitionResponse, OffsetCommitResponse, OffsetCommitTopicResponse,
    OffsetDeletePartitionResponse, OffsetDeleteResponse, OffsetDeleteTopicResponse,
    OffsetFetchGroupResponse, OffsetFetchPartitionResponse, OffsetFetchResponse,
    OffsetFetchTopicResponse, Response,
};
use crate::state::GroupState;

impl GroupCoordinator {
    /// Handles an OffsetCommit. Accepted offsets come back as records in the same
    /// effects as the answer, so the answer goes out only once they are durable.
    pub fn offset_commit(&mut self, id: RequestId, req: OffsetCommitRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let partition = match self.status(&req.group_id, true) {
            Ok(p) => p,
            Err(e) => {
                fx.respond(id, Response::OffsetCommit(all_partitions(&req, e)));
                return fx;
            }
        };
        if !self.groups.contains_key(&req.group_id) {
            if req.generation_id_or_member_epoch >= 0 {
                // A generation of a group that is gone: the member is stale.
                let r = all_partitions(&req, ErrorCode::IllegalGeneration);
                fx.respond(id, Response::OffsetCommit(r));
                return fx;
            }
            // A consumer using assign() keeps its offsets in a group of its own.
            tracing::info!(group = %req.group_id, "group created by a simple offset commit");
            self.ensure_group(&req.group_id, partition, now);
        }
        let group_id = req.group_id.clone();
        self.run(&group_id, now, &mut fx, |g, ctx| commit(g, id, req, ctx));
        fx
    }

    /// Handles an OffsetFetch for one or more groups. Offsets are returned whatever the
    /// group's state, since groups that only commit have no members at all.
    ///
    /// Only committed offsets are returned, never pending transactional ones. With
    /// `require_stable` (v7+), a partition with a pending transactional offset is
    /// answered with UNSTABLE_OFFSET_COMMIT (and offset -1) instead, as Kafka does, so
    /// the consumer retries once the transaction has ended.
    pub fn offset_fetch(&mut self, id: RequestId, req: OffsetFetchRequest, _now: i64) -> Effects {
        let stable = req.require_stable;
        let groups = req
            .groups
            .into_iter()
            .map(|g| match self.status(&g.group_id, true) {
                Err(e) => OffsetFetchGroupResponse::error(g.group_id, e),
                Ok(_) => self.fetch_group(g, stable),
            })
            .collect();
        let mut fx = Effects::default();
        fx.respond(id, Response::OffsetFetch(OffsetFetchResponse { groups }));
        fx
    }

    /// Handles an OffsetDelete: removes a group's offsets for some partitions, unless the
    /// group's members still consume those topics.
    pub fn offset_delete(&mut self, id: RequestId, req: OffsetDeleteRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let reply = |fx: &mut Effects, error| {
            let r = OffsetDeleteResponse {
                error,
                topics: vec![],
            };
            fx.respond(id, Response::OffsetDelete(r));
        };
        if let Err(e) = self.status(&req.group_id, false) {
            reply(&mut fx, e);
            return fx;
        }
        let group_id = req.group_id.clone();
        let outcome = self.run(&group_id, now, &mut fx, |g, ctx| {
            delete_offsets(g, req, ctx)
        });
        match outcome {
            None => reply(&mut fx, ErrorCode::GroupIdNotFound),
            Some(Err(e)) => reply(&mut fx, e),
            Some(Ok(r)) => fx.respond(id, Response::OffsetDelete(r)),
        }
        fx
    }

    fn fetch_group(&self, req: OffsetFetchGroup, require_stable: bool) -> OffsetFetchGroupResponse {
        let group = self.groups.get(&req.group_id);
        let fetched = |topic: &str, partition: i32, offset: Option<&CommittedOffset>| {
            let unstable =
                require_stable && group.is_some_and(|g| g.has_pending_offset(topic, partition));
            if unstable {
                OffsetFetchPartitionResponse {
                    error: ErrorCode::UnstableOffsetCommit,
                    ..fetched(partition, None)
                }
            } else {
                fetched(partition, offset)
            }
        };
        let topics = match req.topics {
            // Everything the group committed, by topic (partitions with only a pending
            // transactional offset are not listed, as in Kafka).
            None => {
                let mut topics: Vec<OffsetFetchTopicResponse> = vec![];
                for ((topic, partition), o) in group.into_iter().flat_map(|g| &g.offsets) {
                    if topics.last().is_none_or(|t| &t.name != topic) {
                        topics.push(OffsetFetchTopicResponse {
                            name: topic.clone(),
                            partitions: vec![],
                        });
                    }
                    if let Some(t) = topics.last_mut() {
                        t.partitions.push(fetched(topic, *partition, Some(o)));
                    }
                }
                topics
            }
            Some(wanted) => wanted
                .into_iter()
                .map(|t| OffsetFetchTopicResponse {
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| fetched(&t.name, p, group.and_then(|g| g.offset(&t.name, p))))
                        .collect(),
                    name: t.name,
                })
                .collect(),
        };
        OffsetFetchGroupResponse {
            group_id: req.group_id,
            error: ErrorCode::None,
            topics,
        }
    }
}

/// One partition of an OffsetFetch answer; offset -1 and metadata "" when nothing was
/// committed, as Kafka answers.
fn fetched(partition: i32, offset: Option<&CommittedOffset>) -> OffsetFetchPartitionResponse {
    OffsetFetchPartitionResponse {
        partition_index: partition,
        committed_offset: offset.map_or(-1, |o| o.offset),
        committed_leader_epoch: offset.map_or(-1, |o| o.leader_epoch),
        metadata: Some(offset.map(|o| o.metadata.clone()).unwrap_or_default()),
        error: ErrorCode::None,
    }
}

/// The same error for every partition of the request.
fn all_partitions(req: &OffsetCommitRequest, error: ErrorCode) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartitionResponse {
                        partition_index: p.partition_index,
                        error,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Kafka's rules for who may commit: with generation -1 (and no member) anyone, while
/// the group is Empty; otherwise a current member of the current generation.
fn validate_commit(group: &Group, req: &OffsetCommitRequest) -> Result<(), ErrorCode> {
    let generation = req.generation_id_or_member_epoch;
    let instance = req.group_instance_id.as_deref();
    if generation < 0 && group.is(GroupState::Empty) {
        return Ok(());
    }
    if generation >= 0 || !req.member_id.is_empty() || instance.is_some() {
        group.validate_member(&req.member_id, instance)?;
        if generation != group.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        return Ok(());
    }
    // A simple commit while the group has members would overwrite their positions.
    Err(ErrorCode::UnknownMemberId)
}

fn commit(group: &mut Group, id: RequestId, req: OffsetCommitRequest, ctx: &mut Ctx<'_>) {
    let state = match group.state {
        // The member has its new generation from JoinGroup but not its assignment yet;
        // positions of the old assignment must not be committed under the new one.
        GroupState::CompletingRebalance => Err(ErrorCode::RebalanceInProgress),
        GroupState::Dead => Err(ErrorCode::CoordinatorNotAvailable),
        // Commits during PreparingRebalance are allowed: members learn about the
        // rebalance from their heartbeats and commit before rejoining.
        GroupState::Empty | GroupState::PreparingRebalance | GroupState::Stable => Ok(()),
    };
    let check = validate_commit(group, &req).and(state);
    if let Err(e) = check {
        ctx.fx
            .respond(id, Response::OffsetCommit(all_partitions(&req, e)));
        return;
    }
    if let Some(m) = group.members.get_mut(&req.member_id) {
        m.touch(ctx.now);
    }
    let expire_timestamp =
        (req.retention_time_ms != -1).then(|| ctx.now.saturating_add(req.retention_time_ms));
    let max_metadata = ctx.config.max_offset_metadata_bytes.min(MAX_STRING_LEN);
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
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata,
                    commit_timestamp: ctx.now,
                    expire_timestamp,
                };
                let record = offset.to_record();
                let key = RecordKey::OffsetCommit {
                    group: group.id.clone(),
                    topic: t.name.clone(),
                    partition: p.partition_index,
                };
                ctx.fx.record(
                    group.partition,
                    key.encode(),
                    Some(record.encode(record.preferred_version())),
                );
                group.put_offset((t.name.clone(), p.partition_index), offset);
                ErrorCode::None
            };
            partitions.push(OffsetCommitPartitionResponse {
                partition_index: p.partition_index,
                error,
            });
        }
        topics.push(OffsetCommitTopicResponse {
            name: t.name,
            partitions,
        });
    }
    ctx.fx
        .respond(id, Response::OffsetCommit(OffsetCommitResponse { topics }));
}

fn delete_offsets(
    group: &mut Group,
    req: OffsetDeleteRequest,
    ctx: &mut Ctx<'_>,
) -> Result<OffsetDeleteResponse, ErrorCode> {
    // Members of a consumer group may go on consuming topics they do not subscribe to
    // any more only through a rebalance, so offsets of other topics are fair game; for
    // other protocols the coordinator cannot tell, and refuses while there are members.
    let consumer = group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
    match group.state {
        GroupState::Empty => {}
        GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable
            if consumer => {}
        _ => return Err(ErrorCode::NonEmptyGroup),
    }
    let empty = group.is(GroupState::Empty);
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let subscribed = !empty && group.is_subscribed_to(&t.name);
        let partitions = t
            .partition_indexes
            .iter()
            .map(|&p| {
                let error = if subscribed {
                    ErrorCode::GroupSubscribedToTopic
                } else {
                    // As in Kafka, a pending transactional offset of the partition
                    // is deleted too, and its tombstone written even without a
                    // committed offset.
                    if group.delete_offset(&(t.name.clone(), p)) {
                        tombstone_offset(&group.id, group.partition, t.name.clone(), p, ctx.fx);
                    }
                    ErrorCode::None
                };
                OffsetDeletePartitionResponse {
                    partition_index: p,
                    error,
                }
            })
            .collect();
        topics.push(OffsetDeleteTopicResponse {
            name: t.name,
            partitions,
        });
    }
    Ok(OffsetDeleteResponse {
        error: ErrorCode::None,
        topics,
    })
}

#[cfg(test)]
mod tests {
    use strom_codes::ErrorCode;

    use super::super::harness::*;
    use crate::config::GroupConfig;
    use crate::records::{OffsetCommitValue, RecordKey};
    use crate::request::{
        JoinGroupRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetDeleteTopic,
        OffsetFetchGroup, OffsetFetchRequest, OffsetFetchTopic,
    };
    use crate::response::{OffsetDeleteResponse, Response};
    use crate::state::GroupState;

    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn delete(h: &mut Harness, group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteResponse {
        let req = OffsetDeleteRequest {
            group_id: group.into(),
            topics: topics
                .iter()
                .map(|(t, p)| OffsetDeleteTopic {
                    name: (*t).into(),
                    partition_indexes: p.to_vec(),
                })
                .collect(),
        };
        let id = h.send(|c, id, now| c.offset_delete(id, req, now));
        match &h.answers[&id] {
            Response::OffsetDelete(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn fetch_all(h: &mut Harness, group: &str) -> Vec<(String, i32, i64)> {
        let r = h.fetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.into(),
                topics: None,
            }],
            require_stable: true,
        });
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
            })
            .collect()
    }

    #[test]
    fn a_member_commits_and_the_commit_is_a_record_in_the_same_effects() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let r = h.commit(commit_req(
            "g",
            generation,
            &members[1],
            &[("t", 0, 42), ("t", 1, 7)],
        ));
        assert_eq!(commit_errors(&r), [ErrorCode::None, ErrorCode::None]);
        assert_eq!(h.last_effects.records.len(), 2);
        assert_eq!(h.last_effects.responses.len(), 1);
        let rec = &h.last_effects.records[0];
        assert_eq!(rec.partition, h.c.partition_for("g"));
        assert_eq!(
            RecordKey::decode(&rec.key).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            }
        );
        let (version, value) = OffsetCommitValue::decode(rec.value.as_ref().unwrap()).unwrap();
        assert_eq!(version, 3);
        assert_eq!(value.offset, 42);
        assert_eq!(value.leader_epoch, 3);
        assert_eq!(value.metadata, "m42");
        assert_eq!(value.commit_timestamp, h.now);
        assert_eq!(h.fetched_offset("g", "t", 0), 42);
        assert_eq!(h.fetched_offset("g", "t", 1), 7);
    }

    #[test]
    fn commits_from_outside_the_generation_are_refused() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let bad = [
            (
                generation + 1,
                members[0].as_str(),
                ErrorCode::IllegalGeneration,
            ),
            (generation, "ghost", ErrorCode::UnknownMemberId),
            // A simple commit while the group has members.
            (-1, "", ErrorCode::UnknownMemberId),
        ];
        for (generation, member, want) in bad {
            let r = h.commit(commit_req("g", generation, member, &[("t", 0, 1)]));
            assert_eq!(commit_errors(&r), [want], "{generation} {member}");
        }
        // A generation of a group that does not exist.
        let r = h.commit(commit_req("nothing", 3, "m", &[("t", 0, 1)]));
        assert_eq!(commit_errors(&r), [ErrorCode::IllegalGeneration]);
        assert!(h.c.group("nothing").is_none());
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
    }

    #[test]
    fn commits_during_a_rebalance() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        // PreparingRebalance: the old generation may still commit.
        h.join(JoinGroupRequest {
            member_id: members[0].clone(),
            ..join_req("g", "a")
        });
        let r = h.commit(commit_req("g", generation, &members[1], &[("t", 0, 5)]));
        assert_eq!(commit_errors(&r), [ErrorCode::None]);
        // CompletingRebalance: not before the new assignment.
        h.join(JoinGroupRequest {
            member_id: members[1].clone(),
            ..join_req("g", "b")
        });
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::CompletingRebalance
        );
        let r = h.commit(commit_req("g", generation + 1, &members[1], &[("t", 0, 6)]));
        assert_eq!(commit_errors(&r), [ErrorCode::RebalanceInProgress]);
        assert_eq!(h.fetched_offset("g", "t", 0), 5);
    }

    #[test]
    fn simple_commits_from_assign_consumers_create_a_group() {
        let mut h = Harness::new();
        let r = h.commit(commit_req("solo", -1, "", &[("t", 3, 100)]));
        assert_eq!(commit_errors(&r), [ErrorCode::None]);
        let g = h.c.group("solo").unwrap();
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.protocol_type(), None);
        assert_eq!(h.fetched_offset("solo", "t", 3), 100);
        // An Empty consumer group also accepts them (e.g. an admin resetting offsets).
        let (members, _) = h.stable_group("g", 1);
        h.leave("g", &[(&members[0], None)]);
        let r = h.commit(commit_req("g", -1, "", &[("t", 0, 9)]));
        assert_eq!(commit_errors(&r), [ErrorCode::None]);
        // Offset commits accept the empty group id, as Kafka does for old clients.
        let r = h.commit(commit_req("", -1, "", &[("t", 0, 1)]));
        assert_eq!(commit_errors(&r), [ErrorCode::None]);
    }

    #[test]
    fn oversized_metadata_is_refused_per_partition() {
        let mut h = Harness::with_config(GroupConfig {
            max_offset_metadata_bytes: 4,
            ..test_config()
        });
        let mut req = commit_req("g", -1, "", &[("t", 0, 1), ("t", 1, 2)]);
        req.topics[0].partitions[1].committed_metadata = Some("12345".into());
        let r = h.commit(req);
        assert_eq!(
            commit_errors(&r),
            [ErrorCode::None, ErrorCode::OffsetMetadataTooLarge]
        );
        assert_eq!(h.last_effects.records.len(), 1);
        assert_eq!(h.fetched_offset("g", "t", 1), -1);
        // Null metadata is stored as "".
        let mut req = commit_req("g", -1, "", &[("t", 2, 3)]);
        req.topics[0].partitions[0].committed_metadata = None;
        h.commit(req);
        let r = h.fetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: "g".into(),
                topics: Some(vec![OffsetFetchTopic {
                    name: "t".into(),
                    partition_indexes: vec![2],
                }]),
            }],
            require_stable: false,
        });
        assert_eq!(
            r.groups[0].topics[0].partitions[0].metadata.as_deref(),
            Some("")
        );
    }

    #[test]
    fn fetch_several_groups_all_partitions_and_missing_ones() {
        let mut h = Harness::new();
        h.commit(commit_req(
            "a",
            -1,
            "",
            &[("x", 1, 10), ("x", 0, 5), ("y", 0, 1)],
        ));
        h.commit(commit_req("b", -1, "", &[("x", 0, 99)]));
        assert_eq!(
            fetch_all(&mut h, "a"),
            [
                ("x".to_string(), 0, 5),
                ("x".to_string(), 1, 10),
                ("y".to_string(), 0, 1)
            ]
        );
        let r = h.fetch(OffsetFetchRequest {
            groups: vec![
                OffsetFetchGroup {
                    group_id: "a".into(),
                    topics: Some(vec![OffsetFetchTopic {
                        name: "x".into(),
                        partition_indexes: vec![1, 7],
                    }]),
                },
                OffsetFetchGroup {
                    group_id: "b".into(),
                    topics: None,
                },
                OffsetFetchGroup {
                    group_id: "unknown".into(),
                    topics: None,
                },
            ],
            require_stable: false,
        });
        assert_eq!(r.groups.len(), 3);
        let a = &r.groups[0].topics[0].partitions;
        assert_eq!(
            (a[0].committed_offset, a[0].committed_leader_epoch),
            (10, 3)
        );
        assert_eq!(a[0].metadata.as_deref(), Some("m10"));
        assert_eq!(
            (a[1].committed_offset, a[1].committed_leader_epoch),
            (-1, -1)
        );
        assert_eq!(a[1].metadata.as_deref(), Some(""));
        assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, 99);
        assert_eq!(r.groups[2].error, ErrorCode::None);
        assert!(r.groups[2].topics.is_empty());
    }

    #[test]
    fn explicit_retention_writes_v1_and_expires_then() {
        let mut h = Harness::new();
        let req = OffsetCommitRequest {
            retention_time_ms: 60_000,
            ..commit_req("g", -1, "", &[("t", 0, 1)])
        };
        h.commit(req);
        let rec = &h.last_effects.records[0];
        let (version, value) = OffsetCommitValue::decode(rec.value.as_ref().unwrap()).unwrap();
        assert_eq!(version, 1);
        assert_eq!(value.expire_timestamp, h.now + 60_000);
        h.advance(59_999);
        h.advance(600_000); // the next expiry check
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
    }

    #[test]
    fn offsets_of_an_empty_group_expire_after_the_retention_and_the_group_goes() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 1);
        h.commit(commit_req(
            "g",
            generation,
            &members[0],
            &[("t", 0, 42), ("u", 0, 1)],
        ));
        let left_at = h.now;
        let r = h.leave("g", &[(&members[0], None)]);
        assert_eq!(r.members[0].error, ErrorCode::None);
        assert_eq!(h.c.group("g").unwrap().state(), GroupState::Empty);
        h.advance(7 * DAY - 1_000_000);
        assert_eq!(
            h.fetched_offset("g", "t", 0),
            42,
            "retention counts from Empty"
        );
        let log_before = h.log.len();
        h.advance(2_000_000);
        assert!(h.now >= left_at + 7 * DAY);
        assert_eq!(h.fetched_offset("g", "t", 0), -1);
        assert!(h.c.group("g").is_none());
        // Tombstones: two offsets, then the group.
        let tombstones: Vec<_> = h.log[log_before..]
            .iter()
            .map(|r| (RecordKey::decode(&r.key).unwrap(), r.value.is_none()))
            .collect();
        assert_eq!(tombstones.len(), 3);
        assert!(tombstones.iter().all(|(_, t)| *t));
        assert_eq!(
            tombstones[2].0,
            RecordKey::GroupMetadata { group: "g".into() }
        );
    }

    #[test]
    fn a_stable_group_loses_only_offsets_of_topics_it_does_not_subscribe_to() {
        let mut h = Harness::with_config(GroupConfig {
            offsets_retention_ms: DAY,
            ..test_config()
        });
        let (members, generation) = h.stable_group("g", 1);
        h.commit(commit_req(
            "g",
            generation,
            &members[0],
            &[("t", 0, 1), ("old", 0, 2)],
        ));
        for _ in 0..((DAY + 600_000) / 3_000) {
            h.advance(3_000);
            assert_eq!(h.heartbeat("g", &members[0], generation), ErrorCode::None);
        }
        assert_eq!(h.fetched_offset("g", "t", 0), 1);
        assert_eq!(h.fetched_offset("g", "old", 0), -1);
    }

    #[test]
    fn offset_delete_rules() {
        let mut h = Harness::new();
        // Empty group: anything goes, with tombstones only for offsets that existed.
        h.commit(commit_req("e", -1, "", &[("t", 0, 1), ("t", 1, 2)]));
        let r = delete(&mut h, "e", &[("t", &[0, 5])]);
        assert_eq!(r.error, ErrorCode::None);
        assert!(
            r.topics[0]
                .partitions
                .iter()
                .all(|p| p.error == ErrorCode::None)
        );
        assert_eq!(h.last_effects.records.len(), 1);
        assert!(h.last_effects.records[0].value.is_none());
        assert_eq!(h.fetched_offset("e", "t", 0), -1);
        assert_eq!(h.fetched_offset("e", "t", 1), 2);

        // A consumer group subscribed to t keeps t's offsets.
        let (members, generation) = h.stable_group("g", 1);
        h.commit(commit_req(
            "g",
            generation,
            &members[0],
            &[("t", 0, 1), ("other", 0, 2)],
        ));
        let r = delete(&mut h, "g", &[("t", &[0]), ("other", &[0])]);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(
            r.topics[0].partitions[0].error,
            ErrorCode::GroupSubscribedToTopic
        );
        assert_eq!(r.topics[1].partitions[0].error, ErrorCode::None);
        assert_eq!(h.fetched_offset("g", "t", 0), 1);
        assert_eq!(h.fetched_offset("g", "other", 0), -1);

        let r = delete(&mut h, "nothing", &[("t", &[0])]);
        assert_eq!(r.error, ErrorCode::GroupIdNotFound);
        assert!(r.topics.is_empty());
    }

    #[test]
    fn offset_delete_refuses_non_consumer_groups_with_members() {
        let mut h = Harness::new();
        let (_, j) = h.join_new(JoinGroupRequest {
            protocol_type: "connect".into(),
            ..join_req("c", "a")
        });
        assert!(!h.answered(j));
        let r = delete(&mut h, "c", &[("t", &[0])]);
        assert_eq!(r.error, ErrorCode::NonEmptyGroup);
    }

    #[test]
    fn deleted_topics_lose_their_offsets() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("gone", 0, 1), ("kept", 0, 2)]));
        let fx = h.c.topics_deleted(&["gone".to_string()], h.now);
        assert_eq!(fx.records.len(), 1);
        h.absorb(fx);
        assert_eq!(h.fetched_offset("g", "gone", 0), -1);
        assert_eq!(h.fetched_offset("g", "kept", 0), 2);
    }
}
