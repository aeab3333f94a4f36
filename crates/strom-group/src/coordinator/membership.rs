//! SyncGroup, Heartbeat and LeaveGroup: the requests of members that already joined.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_codes::ErrorCode;

use super::GroupCoordinator;
use crate::context::Ctx;
use crate::effects::{Effects, RequestId};
use crate::group::Group;
use crate::request::{HeartbeatRequest, LeaveGroupRequest, SyncGroupRequest};
use crate::response::{
    HeartbeatResponse, LeaveGroupMemberResponse, LeaveGroupResponse, Response, SyncGroupResponse,
};
use crate::state::GroupState;

impl GroupCoordinator {
    /// Handles a SyncGroup. In CompletingRebalance followers wait (the answer comes with
    /// the leader's SyncGroup, or REBALANCE_IN_PROGRESS if the group rebalances first);
    /// otherwise the answer is immediate.
    pub fn sync_group(&mut self, id: RequestId, req: SyncGroupRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let reply = |fx: &mut Effects, error| {
            fx.respond(id, Response::SyncGroup(SyncGroupResponse::error(error)))
        };
        match self.status(&req.group_id, false) {
            // The rebalance this SyncGroup belongs to was lost with the coordinator's
            // memory; REBALANCE_IN_PROGRESS makes the member rejoin, and old clients do
            // not know COORDINATOR_LOAD_IN_PROGRESS here.
            Err(ErrorCode::CoordinatorLoadInProgress) => {
                reply(&mut fx, ErrorCode::RebalanceInProgress)
            }
            Err(e) => reply(&mut fx, e),
            Ok(_) => {
                let group_id = req.group_id.clone();
                let found = self.run(&group_id, now, &mut fx, |g, ctx| sync(g, id, req, ctx));
                if found.is_none() {
                    reply(&mut fx, ErrorCode::UnknownMemberId);
                }
            }
        }
        fx
    }

    /// Handles a Heartbeat: keeps the member's session alive and tells it whether a
    /// rebalance is under way.
    pub fn heartbeat(&mut self, id: RequestId, req: HeartbeatRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let error = match self.status(&req.group_id, false) {
            // The group's state is not known yet; do not disturb the member.
            Err(ErrorCode::CoordinatorLoadInProgress) => ErrorCode::None,
            Err(e) => e,
            Ok(_) => self
                .run(&req.group_id.clone(), now, &mut fx, |g, ctx| {
                    heartbeat(g, &req, ctx)
                })
                .unwrap_or(ErrorCode::UnknownMemberId),
        };
        fx.respond(id, Response::Heartbeat(HeartbeatResponse { error }));
        fx
    }

    /// Handles a LeaveGroup: each named member (by member id, or by instance id alone for
    /// an admin removing a static member) is removed, and the group rebalances.
    pub fn leave_group(&mut self, id: RequestId, req: LeaveGroupRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let response = match self.status(&req.group_id, false) {
            Err(e) => LeaveGroupResponse {
                error: e,
                members: vec![],
            },
            Ok(_) => {
                let group_id = req.group_id.clone();
                let results = self
                    .run(&group_id, now, &mut fx, |g, ctx| {
                        req.members
                            .iter()
                            .map(|m| {
                                let error =
                                    leave(g, &m.member_id, m.group_instance_id.as_deref(), ctx);
                                if error == ErrorCode::None {
                                    tracing::info!(
                                        group = %g.id,
                                        member = %m.member_id,
                                        instance = ?m.group_instance_id,
                                        reason = ?m.reason,
                                        "member left"
                                    );
                                }
                                error
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_else(|| vec![ErrorCode::UnknownMemberId; req.members.len()]);
                LeaveGroupResponse {
                    error: ErrorCode::None,
                    members: req
                        .members
                        .into_iter()
                        .zip(results)
                        .map(|(m, error)| LeaveGroupMemberResponse {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            error,
                        })
                        .collect(),
                }
            }
        };
        fx.respond(id, Response::LeaveGroup(response));
        fx
    }
}

fn sync(group: &mut Group, id: RequestId, req: SyncGroupRequest, ctx: &mut Ctx<'_>) {
    let reply = |ctx: &mut Ctx<'_>, error| {
        ctx.fx
            .respond(id, Response::SyncGroup(SyncGroupResponse::error(error)))
    };
    let member_id = req.member_id.as_str();
    if let Err(e) = group.validate_member(member_id, req.group_instance_id.as_deref()) {
        return reply(ctx, e);
    }
    if req.generation_id != group.generation_id {
        return reply(ctx, ErrorCode::IllegalGeneration);
    }
    let type_differs = req
        .protocol_type
        .as_deref()
        .is_some_and(|t| group.protocol_type.as_deref() != Some(t));
    let name_differs = req
        .protocol_name
        .as_deref()
        .is_some_and(|n| group.protocol_name.as_deref() != Some(n));
    if type_differs || name_differs {
        return reply(ctx, ErrorCode::InconsistentGroupProtocol);
    }
    match group.state {
        GroupState::Empty => reply(ctx, ErrorCode::UnknownMemberId),
        GroupState::PreparingRebalance => reply(ctx, ErrorCode::RebalanceInProgress),
        GroupState::Dead => reply(ctx, ErrorCode::CoordinatorNotAvailable),
        GroupState::CompletingRebalance => {
            if let Some(m) = group.members.get_mut(member_id)
                && let Some(old) = m.awaiting_sync.replace(id)
            {
                // A repeated SyncGroup: the newest one gets the assignment, the older
                // one is told to retry.
                let r = SyncGroupResponse::error(ErrorCode::RebalanceInProgress);
                ctx.fx.respond(old, Response::SyncGroup(r));
            }
            group.remove_pending_sync(member_id);
            if group.is_leader(member_id) {
                // Later entries for the same member win, as in Kafka's map building.
                let assignments: BTreeMap<String, Bytes> = req
                    .assignments
                    .into_iter()
                    .map(|a| (a.member_id, a.assignment))
                    .collect();
                group.complete_sync(assignments, ctx);
            }
        }
        GroupState::Stable => {
            group.remove_pending_sync(member_id);
            let m = group.members.get_mut(member_id);
            let assignment = m.as_ref().and_then(|m| m.assignment.clone());
            if let Some(m) = m {
                m.touch(ctx.now);
            }
            let r = SyncGroupResponse {
                error: ErrorCode::None,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                assignment: assignment.unwrap_or_default(),
            };
            ctx.fx.respond(id, Response::SyncGroup(r));
        }
    }
}

fn heartbeat(group: &mut Group, req: &HeartbeatRequest, ctx: &mut Ctx<'_>) -> ErrorCode {
    if let Err(e) = group.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
        return e;
    }
    if req.generation_id != group.generation_id {
        return ErrorCode::IllegalGeneration;
    }
    let state = group.state;
    if let Some(m) = group.members.get_mut(&req.member_id) {
        m.touch(ctx.now);
    }
    match state {
        GroupState::Empty => ErrorCode::UnknownMemberId,
        GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
        GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
        GroupState::Dead => ErrorCode::CoordinatorNotAvailable,
    }
}

/// Removes one leaving member; its error code.
fn leave(
    group: &mut Group,
    member_id: &str,
    group_instance_id: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> ErrorCode {
    if member_id.is_empty() {
        // An admin removing a static member by instance id.
        let current = group_instance_id
            .and_then(|i| group.static_member(i))
            .map(str::to_owned);
        return match current {
            Some(current) => {
                group.remove_member_and_update(&current, ctx, "static member removed");
                ErrorCode::None
            }
            None => ErrorCode::UnknownMemberId,
        };
    }
    if group.pending_members.contains_key(member_id) {
        group.remove_pending_member(member_id, ctx);
        return ErrorCode::None;
    }
    match group.validate_member(member_id, group_instance_id) {
        Ok(()) => {
            group.remove_member_and_update(member_id, ctx, "member left");
            ErrorCode::None
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use strom_codes::ErrorCode;

    use super::super::harness::*;
    use crate::records::{GroupMetadataValue, RecordKey};
    use crate::request::{HeartbeatRequest, JoinGroupRequest, SyncGroupRequest};
    use crate::response::Response;
    use crate::state::GroupState;

    fn rejoin(member_id: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            member_id: member_id.into(),
            ..join_req("g", "x")
        }
    }

    #[test]
    fn followers_wait_for_the_leaders_assignment() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(ja).generation_id;
        assert_eq!(h.join_answer(jb).generation_id, generation);

        let follower = h.sync("g", &b, generation, &[]);
        assert!(!h.answered(follower), "parked until the leader syncs");
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::CompletingRebalance
        );
        // A heartbeat while waiting is fine.
        assert_eq!(h.heartbeat("g", &b, generation), ErrorCode::None);

        let log_before = h.log.len();
        let leader = h.sync(
            "g",
            &a,
            generation,
            &[(a.as_str(), b"for a"), (b.as_str(), b"for b")],
        );
        let (ra, rb) = (h.sync_answer(leader), h.sync_answer(follower));
        assert_eq!(
            (ra.error, &ra.assignment[..]),
            (ErrorCode::None, &b"for a"[..])
        );
        assert_eq!(
            (rb.error, &rb.assignment[..]),
            (ErrorCode::None, &b"for b"[..])
        );
        assert_eq!(rb.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(rb.protocol_name.as_deref(), Some("range"));
        assert_eq!(h.c.group("g").unwrap().state(), GroupState::Stable);

        // The assignment is stored in the same effects as the answers.
        assert_eq!(h.log.len(), log_before + 1);
        assert_eq!(h.last_effects.records.len(), 1);
        assert_eq!(h.last_effects.responses.len(), 2);
        let record = &h.log[log_before];
        assert_eq!(
            RecordKey::decode(&record.key).unwrap(),
            RecordKey::GroupMetadata { group: "g".into() }
        );
        assert_eq!(record.partition, h.c.partition_for("g"));
        let (version, stored) = GroupMetadataValue::decode(record.value.as_ref().unwrap()).unwrap();
        assert_eq!(version, 3);
        assert_eq!(stored.generation, generation);
        assert_eq!(stored.leader.as_deref(), Some(a.as_str()));
        assert_eq!(stored.protocol.as_deref(), Some("range"));
        assert_eq!(stored.members.len(), 2);
        assert_eq!(&stored.members[1].assignment[..], b"for b");

        // Syncing again in Stable returns the stored assignment at once.
        let again = h.sync("g", &b, generation, &[]);
        assert_eq!(&h.sync_answer(again).assignment[..], b"for b");
    }

    #[test]
    fn members_the_leader_leaves_out_get_an_empty_assignment() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 1);
        let (b, jb) = h.join_new(join_req("g", "b"));
        let ja = h.join(rejoin(&members[0]));
        assert_eq!(h.join_answer(jb).generation_id, generation + 1);
        assert_eq!(h.join_answer(ja).generation_id, generation + 1);
        let s = h.sync(
            "g",
            &members[0],
            generation + 1,
            &[(members[0].as_str(), b"x")],
        );
        let f = h.sync("g", &b, generation + 1, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::None);
        let rf = h.sync_answer(f);
        assert_eq!(rf.error, ErrorCode::None);
        assert!(rf.assignment.is_empty());
        assert!(
            h.c.group("g")
                .unwrap()
                .members()
                .iter()
                .all(|m| m.assignment().is_some())
        );
    }

    #[test]
    fn sync_errors() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let s = h.sync("g", &members[1], generation + 1, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::IllegalGeneration);
        let s = h.sync("g", "ghost", generation, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::UnknownMemberId);
        let s = h.sync("nothing", "ghost", 1, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::UnknownMemberId);
        let wrong_name = SyncGroupRequest {
            protocol_name: Some("roundrobin".into()),
            ..sync_req("g", &members[1], generation, &[])
        };
        let s = h.send(|c, id, now| c.sync_group(id, wrong_name, now));
        assert_eq!(h.sync_answer(s).error, ErrorCode::InconsistentGroupProtocol);
        let wrong_type = SyncGroupRequest {
            protocol_type: Some("connect".into()),
            ..sync_req("g", &members[1], generation, &[])
        };
        let s = h.send(|c, id, now| c.sync_group(id, wrong_type, now));
        assert_eq!(h.sync_answer(s).error, ErrorCode::InconsistentGroupProtocol);
        // During a rebalance.
        h.join(rejoin(&members[0]));
        let s = h.sync("g", &members[1], generation, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::RebalanceInProgress);
    }

    #[test]
    fn heartbeats_report_rebalances_and_fencing() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        assert_eq!(h.heartbeat("g", &members[1], generation), ErrorCode::None);
        assert_eq!(
            h.heartbeat("g", &members[1], generation - 1),
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            h.heartbeat("g", "ghost", generation),
            ErrorCode::UnknownMemberId
        );
        assert_eq!(
            h.heartbeat("nothing", "ghost", 1),
            ErrorCode::UnknownMemberId
        );
        h.join(rejoin(&members[0]));
        assert_eq!(
            h.heartbeat("g", &members[1], generation),
            ErrorCode::RebalanceInProgress
        );
    }

    #[test]
    fn a_heartbeat_with_a_foreign_instance_id_is_fenced() {
        let mut h = Harness::new();
        let j = h.join(JoinGroupRequest {
            group_instance_id: Some("i1".into()),
            ..join_req("g", "a")
        });
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(j).generation_id;
        assert_eq!(h.join_answer(jb).generation_id, generation);
        let req = HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: b,
            group_instance_id: Some("i1".into()),
        };
        let id = h.send(|c, id, now| c.heartbeat(id, req, now));
        let Response::Heartbeat(r) = &h.answers[&id] else {
            panic!()
        };
        assert_eq!(r.error, ErrorCode::FencedInstanceId);
    }

    #[test]
    fn a_member_leaving_makes_the_others_rebalance_without_it() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 3);
        let r = h.leave("g", &[(&members[2], None)]);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.legacy_error(), ErrorCode::None);
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
        assert_eq!(
            h.heartbeat("g", &members[0], generation),
            ErrorCode::RebalanceInProgress
        );
        let j0 = h.join(rejoin(&members[0]));
        let j1 = h.join(rejoin(&members[1]));
        let r0 = h.join_answer(j0);
        assert_eq!(r0.generation_id, generation + 1);
        assert_eq!(r0.members.len(), 2);
        assert!(h.answered(j1));
        // Leaving again is an unknown member.
        let r = h.leave("g", &[(&members[2], None)]);
        assert_eq!(r.members[0].error, ErrorCode::UnknownMemberId);
        assert_eq!(r.legacy_error(), ErrorCode::UnknownMemberId);
    }

    #[test]
    fn several_members_leave_at_once_with_their_own_results() {
        let mut h = Harness::new();
        let static_join = h.join(JoinGroupRequest {
            group_instance_id: Some("i1".into()),
            ..join_req("g", "s")
        });
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 3);
        for j in [static_join, ja, jb] {
            assert_eq!(h.join_answer(j).error, ErrorCode::None);
        }
        // An admin removes the static member by instance id alone, plus a, plus ghosts.
        let r = h.leave(
            "g",
            &[
                ("", Some("i1")),
                (&a, None),
                ("ghost", None),
                ("", Some("nope")),
            ],
        );
        let errors: Vec<_> = r.members.iter().map(|m| m.error).collect();
        assert_eq!(
            errors,
            [
                ErrorCode::None,
                ErrorCode::None,
                ErrorCode::UnknownMemberId,
                ErrorCode::UnknownMemberId
            ]
        );
        assert_eq!(r.members[0].group_instance_id.as_deref(), Some("i1"));
        let g = h.c.group("g").unwrap();
        assert_eq!(g.members().len(), 1);
        assert_eq!(g.members()[0].id(), b);
        assert_eq!(g.static_member("i1"), None);
        // Unknown group: NONE at the top, UNKNOWN_MEMBER_ID per member.
        let r = h.leave("nothing", &[("x", None)]);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.members[0].error, ErrorCode::UnknownMemberId);
    }

    #[test]
    fn the_last_member_leaving_empties_the_group_and_stores_that() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 1);
        h.leave("g", &[(&members[0], None)]);
        let g = h.c.group("g").unwrap();
        assert_eq!(g.state(), GroupState::Empty);
        assert_eq!(g.generation_id(), generation + 1);
        let last = h.log.last().unwrap();
        let (_, stored) = GroupMetadataValue::decode(last.value.as_ref().unwrap()).unwrap();
        assert!(stored.members.is_empty());
        assert_eq!(stored.generation, generation + 1);
        assert_eq!(stored.protocol, None);
    }

    #[test]
    fn a_pending_member_may_leave() {
        let mut h = Harness::new();
        let r = h.join_now(join_req("g", "a"));
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        let l = h.leave("g", &[(&r.member_id, None)]);
        assert_eq!(l.members[0].error, ErrorCode::None);
        assert!(h.c.group("g").is_none(), "nothing left of the group");
    }

    #[test]
    fn an_expired_session_removes_the_member_and_rebalances() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        // Only the leader heartbeats.
        for _ in 0..3 {
            h.advance(3_000);
            assert_eq!(h.heartbeat("g", &members[0], generation), ErrorCode::None);
        }
        h.advance(1_000);
        let g = h.c.group("g").unwrap();
        assert!(g.member(&members[1]).is_none(), "10 s session ran out");
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        assert_eq!(
            h.heartbeat("g", &members[0], generation),
            ErrorCode::RebalanceInProgress
        );
        let j = h.join(rejoin(&members[0]));
        let r = h.join_answer(j);
        assert_eq!(r.generation_id, generation + 1);
        assert_eq!(r.members.len(), 1);
        assert_eq!(
            h.heartbeat("g", &members[1], generation),
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn members_that_do_not_rejoin_in_time_are_removed() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 3);
        let j0 = h.join(rejoin(&members[0]));
        let j2 = h.join(rejoin(&members[2]));
        // members[1] keeps heartbeating but never rejoins.
        let mut waited = 0;
        while !h.answered(j0) {
            assert!(waited < REBALANCE, "the rebalance timeout bounds the wait");
            h.advance(2_000);
            waited += 2_000;
            if !h.answered(j0) {
                assert_eq!(
                    h.heartbeat("g", &members[1], generation),
                    ErrorCode::RebalanceInProgress
                );
            }
        }
        assert_eq!(waited, REBALANCE);
        let r0 = h.join_answer(j0);
        assert_eq!(r0.generation_id, generation + 1);
        let listed: Vec<_> = r0.members.iter().map(|m| m.member_id.clone()).collect();
        assert_eq!(listed, [members[0].clone(), members[2].clone()]);
        assert!(h.answered(j2));
        assert_eq!(
            h.heartbeat("g", &members[1], generation),
            ErrorCode::UnknownMemberId
        );
    }

    #[test]
    fn a_follower_that_never_syncs_is_removed() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(ja).generation_id;
        assert!(h.answered(jb));
        let s = h.sync("g", &a, generation, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::None);
        // b heartbeats (so its session lives) but never syncs.
        for _ in 0..(REBALANCE / 3_000) {
            h.advance(3_000);
            h.heartbeat("g", &a, generation);
            h.heartbeat("g", &b, generation);
        }
        let g = h.c.group("g").unwrap();
        assert!(g.member(&b).is_none());
        assert_eq!(g.state(), GroupState::PreparingRebalance);
    }

    #[test]
    fn followers_waiting_for_a_leader_that_never_syncs_are_released() {
        let mut h = Harness::new();
        let (_, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(ja).generation_id;
        assert!(h.answered(jb));
        let s = h.sync("g", &b, generation, &[]);
        h.advance(i64::from(REBALANCE));
        let r = h.sync_answer(s);
        assert_eq!(r.error, ErrorCode::RebalanceInProgress);
        let g = h.c.group("g").unwrap();
        assert_eq!(g.members().len(), 1, "the silent leader is gone");
        assert_eq!(g.leader_id(), Some(b.as_str()));
    }

    #[test]
    fn a_rebalance_cancels_waiting_syncs() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(ja).generation_id;
        assert!(h.answered(jb));
        let s = h.sync("g", &b, generation, &[]);
        // A new member arrives before the leader's assignment.
        h.join_new(join_req("g", "c"));
        assert_eq!(h.sync_answer(s).error, ErrorCode::RebalanceInProgress);
        let g = h.c.group("g").unwrap();
        assert_eq!(g.state(), GroupState::PreparingRebalance);
        assert!(g.member(&a).unwrap().assignment().is_none());
    }

    #[test]
    fn a_new_member_stuck_in_a_long_rebalance_times_out() {
        let mut h = Harness::new();
        let long = |client: &str| JoinGroupRequest {
            rebalance_timeout_ms: 600_000,
            ..join_req("g", client)
        };
        let (a, ja) = h.join_new(long("a"));
        h.advance(i64::from(INITIAL_DELAY));
        let generation = h.join_answer(ja).generation_id;
        let s = h.sync("g", &a, generation, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::None);
        // A new member joins; a keeps heartbeating but does not rejoin, so the rebalance
        // could wait 10 minutes. The new member's JoinGroup gives up after 5.
        let (_, jn) = h.join_new(long("n"));
        for _ in 0..(300_000 / 3_000) {
            assert!(!h.answered(jn));
            h.advance(3_000);
            h.heartbeat("g", &a, generation);
        }
        let r = h.join_answer(jn);
        assert_eq!(r.error, ErrorCode::UnknownMemberId);
        assert_eq!(r.member_id, "");
        assert_eq!(h.c.group("g").unwrap().members().len(), 1);
    }
}
