//! JoinGroup: new members (with the MEMBER_ID_REQUIRED round trip from v4), rejoining
//! members, static members replacing their previous incarnation, and the group size and
//! protocol checks.

use strom_codes::ErrorCode;

use super::GroupCoordinator;
use crate::context::Ctx;
use crate::effects::{Effects, RequestId};
use crate::group::Group;
use crate::member::Member;
use crate::records::MAX_STRING_LEN;
use crate::request::JoinGroupRequest;
use crate::response::{JoinGroupResponse, Response};
use crate::state::GroupState;

impl GroupCoordinator {
    /// Handles a JoinGroup. The answer usually comes later (when the join phase of the
    /// rebalance ends, from another member's call or from `tick`); errors and
    /// MEMBER_ID_REQUIRED come at once.
    pub fn join_group(&mut self, id: RequestId, req: JoinGroupRequest, now: i64) -> Effects {
        let mut fx = Effects::default();
        let reply = |fx: &mut Effects, member_id: &str, error| {
            let r = JoinGroupResponse::error(member_id, error);
            fx.respond(id, Response::JoinGroup(r));
        };
        let partition = match self.status(&req.group_id, false) {
            Ok(p) => p,
            Err(e) => {
                reply(&mut fx, &req.member_id, e);
                return fx;
            }
        };
        if !strings_fit(&req) {
            reply(&mut fx, &req.member_id, ErrorCode::InvalidRequest);
            return fx;
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            reply(&mut fx, &req.member_id, ErrorCode::InvalidSessionTimeout);
            return fx;
        }
        if !self.groups.contains_key(&req.group_id) {
            // Only a first join creates a group; a known member id for a group that does
            // not exist is stale (the group was deleted or expired).
            if !req.member_id.is_empty() {
                reply(&mut fx, &req.member_id, ErrorCode::UnknownMemberId);
                return fx;
            }
            self.ensure_group(&req.group_id, partition, now);
        }
        let group_id = req.group_id.clone();
        self.run(&group_id, now, &mut fx, |g, ctx| join(g, id, req, ctx));
        fx
    }
}

/// Every string a JoinGroup brings must fit a record's `int16`-length string field.
fn strings_fit(req: &JoinGroupRequest) -> bool {
    let fits = |s: &str| s.len() <= MAX_STRING_LEN;
    fits(&req.member_id)
        && fits(&req.protocol_type)
        && fits(&req.client_id)
        && fits(&req.client_host)
        && req.group_instance_id.as_deref().is_none_or(fits)
        && req.protocols.iter().all(|p| fits(&p.name))
}

fn join(group: &mut Group, id: RequestId, req: JoinGroupRequest, ctx: &mut Ctx<'_>) {
    if !accepts_joining_member(group, &req.member_id, ctx.config.max_group_size) {
        // A known member that did not rejoin yet is shed when the group is full; it will
        // get UNKNOWN_MEMBER_ID on its next request.
        group.remove_member_and_update(&req.member_id, ctx, "group is over its maximum size");
        reply(ctx, id, "", ErrorCode::GroupMaxSizeReached);
    } else if req.member_id.is_empty() {
        join_new_member(group, id, req, ctx);
    } else {
        join_known_member(group, id, req, ctx);
    }
    group.try_complete_join(ctx);
}

fn reply(ctx: &mut Ctx<'_>, id: RequestId, member_id: &str, error: ErrorCode) {
    let r = JoinGroupResponse::error(member_id, error);
    ctx.fx.respond(id, Response::JoinGroup(r));
}

/// Kafka's group size rule: during the join phase the members that already rejoined
/// count (the group may be over the limit after the limit was lowered, and the last to
/// rejoin are the ones refused); otherwise the members.
fn accepts_joining_member(group: &Group, member_id: &str, max: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            group
                .member(member_id)
                .is_some_and(Member::is_awaiting_join)
                || group.num_awaiting_join() < max
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max
        }
    }
}

/// The rebalance timeout a JoinGroup asks for: v0 has none and uses the session timeout.
fn rebalance_timeout(req: &JoinGroupRequest) -> i32 {
    if req.api_version == 0 {
        req.session_timeout_ms
    } else {
        req.rebalance_timeout_ms
    }
}

fn protocol_names(req: &JoinGroupRequest) -> Vec<&str> {
    req.protocols.iter().map(|p| p.name.as_str()).collect()
}

/// A JoinGroup without a member id.
fn join_new_member(group: &mut Group, id: RequestId, req: JoinGroupRequest, ctx: &mut Ctx<'_>) {
    if !group.supports_protocols(&req.protocol_type, &protocol_names(&req)) {
        return reply(ctx, id, "", ErrorCode::InconsistentGroupProtocol);
    }
    let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
    let member_id = ctx.ids.next(prefix);
    match req.group_instance_id.as_deref() {
        Some(instance) => match group.static_member(instance).map(str::to_owned) {
            Some(old) => replace_static_member(group, &old, member_id, id, req, ctx),
            None => add_member_and_rebalance(group, member_id, id, req, ctx),
        },
        None if req.api_version >= 4 => {
            // Hand out the id first and count the member only when it comes back with
            // it: a client that times out and retries then cannot leave ghost members
            // behind for the rebalance to wait on.
            let lapses = ctx.after(i64::from(req.session_timeout_ms));
            group.pending_members.insert(member_id.clone(), lapses);
            reply(ctx, id, &member_id, ErrorCode::MemberIdRequired);
        }
        None => add_member_and_rebalance(group, member_id, id, req, ctx),
    }
}

/// A JoinGroup with a member id: a pending member completing its first join, or a
/// member rejoining.
fn join_known_member(group: &mut Group, id: RequestId, req: JoinGroupRequest, ctx: &mut Ctx<'_>) {
    let member_id = req.member_id.clone();
    if !group.supports_protocols(&req.protocol_type, &protocol_names(&req)) {
        return reply(ctx, id, &member_id, ErrorCode::InconsistentGroupProtocol);
    }
    if group.pending_members.contains_key(&member_id) {
        if req.group_instance_id.is_some() {
            // Pending ids are only handed to dynamic members; a static id here is a
            // confused client. Kafka fails the request; make it start over instead.
            group.remove_pending_member(&member_id, ctx);
            return reply(ctx, id, &member_id, ErrorCode::UnknownMemberId);
        }
        return add_member_and_rebalance(group, member_id, id, req, ctx);
    }
    if let Err(e) = group.validate_member(&member_id, req.group_instance_id.as_deref()) {
        return reply(ctx, id, &member_id, e);
    }
    let matches = group.members[&member_id].matches(&req.protocols);
    match group.state {
        GroupState::PreparingRebalance => update_member_and_rebalance(group, id, req, ctx),
        GroupState::CompletingRebalance if matches => {
            // The member missed its JoinGroup answer: resend the current generation.
            let is_leader = group.is_leader(&member_id);
            let members = if is_leader {
                group.member_list()
            } else {
                vec![]
            };
            let leader = group.leader_id.clone().unwrap_or_default();
            let r = group.join_response(&member_id, members, leader, false);
            ctx.fx.respond(id, Response::JoinGroup(r));
        }
        GroupState::Stable if matches && !group.is_leader(&member_id) => {
            // A follower with nothing new: it learns the current generation and syncs.
            let leader = group.leader_id.clone().unwrap_or_default();
            let r = group.join_response(&member_id, vec![], leader, false);
            ctx.fx.respond(id, Response::JoinGroup(r));
        }
        // Changed metadata, or the leader rejoining (its way to make the group reassign,
        // e.g. after topic metadata changed), means a rebalance.
        GroupState::CompletingRebalance | GroupState::Stable => {
            update_member_and_rebalance(group, id, req, ctx)
        }
        GroupState::Empty | GroupState::Dead => {
            reply(ctx, id, &member_id, ErrorCode::UnknownMemberId)
        }
    }
}

fn add_member_and_rebalance(
    group: &mut Group,
    member_id: String,
    id: RequestId,
    req: JoinGroupRequest,
    ctx: &mut Ctx<'_>,
) {
    tracing::info!(
        group = %group.id,
        member = %member_id,
        instance = ?req.group_instance_id,
        reason = ?req.reason,
        "member joins"
    );
    let rebalance = rebalance_timeout(&req);
    let member = Member {
        id: member_id,
        group_instance_id: req.group_instance_id,
        client_id: req.client_id,
        client_host: req.client_host,
        rebalance_timeout_ms: rebalance,
        session_timeout_ms: req.session_timeout_ms,
        protocols: req.protocols,
        assignment: None,
        awaiting_join: Some(id),
        awaiting_sync: None,
        is_new: true,
        heartbeat_deadline: ctx.after(ctx.config.new_member_join_timeout_ms),
        join_seq: 0,
    };
    if group.is(GroupState::PreparingRebalance) && group.generation_id == 0 {
        group.new_member_added = true;
    }
    group.add_member(member, &req.protocol_type);
    group.maybe_prepare_rebalance(ctx, "new member joined");
}

/// Takes the member's new protocols and timeouts and parks its JoinGroup for the
/// rebalance this starts (or joins).
fn update_member_and_rebalance(
    group: &mut Group,
    id: RequestId,
    req: JoinGroupRequest,
    ctx: &mut Ctx<'_>,
) {
    let rebalance = rebalance_timeout(&req);
    let Some(m) = group.members.get_mut(&req.member_id) else {
        return reply(ctx, id, &req.member_id, ErrorCode::UnknownMemberId);
    };
    m.protocols = req.protocols;
    m.rebalance_timeout_ms = rebalance;
    m.session_timeout_ms = req.session_timeout_ms;
    if let Some(old) = m.awaiting_join.replace(id) {
        // The member sent JoinGroup again while one was parked; only the newest gets the
        // result, the older one is told to retry.
        reply(ctx, old, &req.member_id, ErrorCode::RebalanceInProgress);
    }
    let reason = format!("member {} rejoined ({:?})", req.member_id, req.reason);
    group.maybe_prepare_rebalance(ctx, &reason);
}

/// A static member joined with an unknown member id while its instance id is held by
/// `old_id`: the new process takes the old one's place (and assignment) under a new
/// member id, and the old process is fenced. A Stable group does not rebalance unless
/// the new protocols would change the group's protocol.
fn replace_static_member(
    group: &mut Group,
    old_id: &str,
    new_id: String,
    id: RequestId,
    req: JoinGroupRequest,
    ctx: &mut Ctx<'_>,
) {
    let Some(mut member) = group.members.remove(old_id) else {
        return reply(ctx, id, "", ErrorCode::UnknownMemberId);
    };
    tracing::info!(
        group = %group.id,
        old = %old_id,
        new = %new_id,
        instance = ?req.group_instance_id,
        "static member replaced"
    );
    if let Some(r) = member.awaiting_join.take() {
        reply(ctx, r, old_id, ErrorCode::FencedInstanceId);
    }
    if let Some(r) = member.awaiting_sync.take() {
        let resp = crate::response::SyncGroupResponse::error(ErrorCode::FencedInstanceId);
        ctx.fx.respond(r, Response::SyncGroup(resp));
    }
    let previous_leader = group.leader_id.clone().unwrap_or_default();
    member.id = new_id.clone();
    member.protocols = req.protocols.clone();
    member.rebalance_timeout_ms = rebalance_timeout(&req);
    member.session_timeout_ms = req.session_timeout_ms;
    member.awaiting_join = Some(id);
    member.touch(ctx.now);
    group.members.insert(new_id.clone(), member);
    if group.is_leader(old_id) {
        group.leader_id = Some(new_id.clone());
    }
    if let Some(instance) = &req.group_instance_id {
        group
            .static_members
            .insert(instance.clone(), new_id.clone());
    }
    if group.pending_sync.remove(old_id) {
        group.pending_sync.insert(new_id.clone());
    }
    match group.state {
        GroupState::Stable => {
            if group.select_protocol() == group.protocol_name {
                group.store(ctx);
                let r = if req.api_version >= 9 {
                    // The leader may learn it leads but must not reassign: the group
                    // keeps its assignment while Stable.
                    let is_leader = group.is_leader(&new_id);
                    let members = if is_leader {
                        group.member_list()
                    } else {
                        vec![]
                    };
                    let leader = group.leader_id.clone().unwrap_or_default();
                    group.join_response(&new_id, members, leader, is_leader)
                } else {
                    // Older clients would run the assignor if told they lead, and a Stable
                    // group ignores that assignment; name the previous leader id so no
                    // member believes it leads.
                    group.join_response(&new_id, vec![], previous_leader, false)
                };
                group.answer_join(&new_id, r, ctx);
            } else {
                group.maybe_prepare_rebalance(ctx, "static member changed the protocol");
            }
        }
        // The leader may already have the old member id in the assignment it is about
        // to send; rebalance so the new id gets one.
        GroupState::CompletingRebalance => {
            group.prepare_rebalance(ctx, "static member replaced during sync")
        }
        GroupState::PreparingRebalance => {}
        GroupState::Empty | GroupState::Dead => {
            group.maybe_prepare_rebalance(ctx, "static member joined")
        }
    }
}

#[cfg(test)]
mod tests {
    use strom_codes::ErrorCode;

    use super::super::harness::*;
    use crate::config::GroupConfig;
    use crate::request::JoinGroupRequest;
    use crate::response::Response;
    use crate::state::GroupState;

    fn static_req(group: &str, instance: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group_instance_id: Some(instance.into()),
            ..join_req(group, "client")
        }
    }

    #[test]
    fn first_join_needs_the_member_id_round_trip() {
        let mut h = Harness::new();
        let first = h.join(join_req("g", "app"));
        let r = h.join_answer(first);
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        assert!(r.member_id.starts_with("app-"), "{}", r.member_id);
        assert_eq!(r.generation_id, -1);
        let g = h.c.group("g").unwrap();
        assert_eq!(
            g.pending_members().collect::<Vec<_>>(),
            [r.member_id.as_str()]
        );
        assert_eq!(g.members().len(), 0);

        let second = h.join(JoinGroupRequest {
            member_id: r.member_id.clone(),
            ..join_req("g", "app")
        });
        // Parked for the initial rebalance delay.
        assert!(!h.answered(second));
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
        h.advance(i64::from(INITIAL_DELAY));
        let j = h.join_answer(second);
        assert_eq!(j.error, ErrorCode::None);
        assert_eq!(j.generation_id, 1);
        assert_eq!(j.member_id, r.member_id);
        assert_eq!(j.leader, r.member_id);
        assert_eq!(j.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(j.protocol_name.as_deref(), Some("range"));
        assert_eq!(j.members.len(), 1);
        assert!(!j.skip_assignment);
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::CompletingRebalance
        );
    }

    #[test]
    fn before_v4_a_first_join_joins_at_once() {
        let mut h = Harness::new();
        let id = h.join(JoinGroupRequest {
            api_version: 3,
            ..join_req("g", "app")
        });
        assert!(!h.answered(id));
        assert_eq!(h.c.group("g").unwrap().members().len(), 1);
        h.advance(i64::from(INITIAL_DELAY));
        assert_eq!(h.join_answer(id).error, ErrorCode::None);
    }

    #[test]
    fn v0_uses_the_session_timeout_as_rebalance_timeout() {
        let mut h = Harness::new();
        let id = h.join(JoinGroupRequest {
            api_version: 0,
            rebalance_timeout_ms: -1,
            ..join_req("g", "app")
        });
        let g = h.c.group("g").unwrap();
        let m = g.members()[0];
        assert_eq!(m.rebalance_timeout_ms(), SESSION);
        assert!(!h.answered(id));
    }

    #[test]
    fn several_members_join_and_only_the_leader_gets_the_member_list() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        let (c, jc) = h.join_new(join_req("g", "c"));
        h.advance(i64::from(INITIAL_DELAY) * 3);
        let (ra, rb, rc) = (h.join_answer(ja), h.join_answer(jb), h.join_answer(jc));
        for r in [&ra, &rb, &rc] {
            assert_eq!(r.error, ErrorCode::None);
            assert_eq!(r.generation_id, 1);
            assert_eq!(r.leader, a, "the first joiner leads");
        }
        let listed: Vec<_> = ra.members.iter().map(|m| m.member_id.clone()).collect();
        assert_eq!(listed, [a.clone(), b.clone(), c.clone()], "join order");
        assert!(ra.members.iter().all(|m| !m.metadata.is_empty()));
        assert!(rb.members.is_empty() && rc.members.is_empty());
    }

    #[test]
    fn the_protocol_with_most_votes_is_chosen() {
        let mut h = Harness::new();
        let with = |client: &str, list: &[(&str, &[&str])]| JoinGroupRequest {
            protocols: protocols(list),
            ..join_req("g", client)
        };
        let (_, ja) = h.join_new(with("a", &[("range", &["t"]), ("roundrobin", &["t"])]));
        let (_, jb) = h.join_new(with("b", &[("roundrobin", &["t"]), ("range", &["t"])]));
        let (_, jc) = h.join_new(with("c", &[("roundrobin", &["t"]), ("range", &["t"])]));
        h.advance(i64::from(INITIAL_DELAY) * 3);
        for j in [ja, jb, jc] {
            assert_eq!(
                h.join_answer(j).protocol_name.as_deref(),
                Some("roundrobin")
            );
        }
        assert_eq!(h.c.group("g").unwrap().protocol_name(), Some("roundrobin"));
    }

    #[test]
    fn a_member_without_a_common_protocol_is_refused() {
        let mut h = Harness::new();
        h.stable_group("g", 2);
        let sticky = JoinGroupRequest {
            protocols: protocols(&[("sticky", &["t"])]),
            ..join_req("g", "x")
        };
        let r = h.join_now(sticky.clone());
        assert_eq!(r.error, ErrorCode::InconsistentGroupProtocol);
        assert_eq!(r.member_id, "");
        let other_type = JoinGroupRequest {
            protocol_type: "connect".into(),
            ..join_req("g", "x")
        };
        let r = h.join_now(other_type);
        assert_eq!(r.error, ErrorCode::InconsistentGroupProtocol);
        // A first member needs a protocol type and at least one protocol.
        let bare = JoinGroupRequest {
            protocols: vec![],
            ..join_req("fresh", "x")
        };
        let r = h.join_now(bare);
        assert_eq!(r.error, ErrorCode::InconsistentGroupProtocol);
        assert!(
            h.c.group("fresh").is_none(),
            "nothing is kept of a failed first join"
        );
    }

    #[test]
    fn a_new_member_makes_a_stable_group_rebalance() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let (d, jd) = h.join_new(join_req("g", "d"));
        assert!(!h.answered(jd));
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
        // Existing members learn it from their heartbeats and rejoin.
        assert_eq!(
            h.heartbeat("g", &members[0], generation),
            ErrorCode::RebalanceInProgress
        );
        let rejoin = |m: &str| JoinGroupRequest {
            member_id: m.into(),
            ..join_req("g", "x")
        };
        let j0 = h.join(rejoin(&members[0]));
        assert!(!h.answered(j0));
        let j1 = h.join(rejoin(&members[1]));
        // Everyone rejoined: no need to wait for the rebalance timeout.
        for j in [j0, j1, jd] {
            assert_eq!(h.join_answer(j).generation_id, generation + 1);
        }
        assert_eq!(h.join_answer(j0).members.len(), 3);
        assert_eq!(h.join_answer(jd).member_id, d);
    }

    #[test]
    fn a_follower_rejoining_unchanged_gets_the_current_generation() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let r = h.join_now(JoinGroupRequest {
            member_id: members[1].clone(),
            ..join_req("g", "b")
        });
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.generation_id, generation);
        assert_eq!(r.leader, members[0]);
        assert_eq!(h.c.group("g").unwrap().state(), GroupState::Stable);
        // Changed metadata means a rebalance.
        let changed = h.join(JoinGroupRequest {
            member_id: members[1].clone(),
            protocols: protocols(&[("range", &["t", "u"])]),
            ..join_req("g", "b")
        });
        assert!(!h.answered(changed));
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
    }

    #[test]
    fn the_leader_rejoining_forces_a_rebalance() {
        let mut h = Harness::new();
        let (members, _) = h.stable_group("g", 2);
        let j = h.join(JoinGroupRequest {
            member_id: members[0].clone(),
            ..join_req("g", "a")
        });
        assert!(!h.answered(j));
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
    }

    #[test]
    fn a_member_that_missed_its_join_answer_gets_it_again() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        h.advance(i64::from(INITIAL_DELAY));
        let first = h.join_answer(ja);
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::CompletingRebalance
        );
        let again = h.join_now(JoinGroupRequest {
            member_id: a,
            ..join_req("g", "a")
        });
        assert_eq!(again, first);
    }

    #[test]
    fn the_initial_delay_waits_and_is_extended_by_new_members() {
        let mut h = Harness::new();
        let (_, ja) = h.join_new(join_req("g", "a"));
        h.advance(1_000);
        let (_, jb) = h.join_new(join_req("g", "b"));
        h.advance(1_999);
        assert!(!h.answered(ja), "still inside the first delay");
        h.advance(1);
        // b arrived during the first delay, so there is another one.
        assert!(!h.answered(ja));
        h.advance(i64::from(INITIAL_DELAY) - 1);
        assert!(!h.answered(ja));
        h.advance(1);
        assert!(h.answered(ja) && h.answered(jb));
        assert_eq!(h.join_answer(jb).generation_id, 1);
    }

    #[test]
    fn the_initial_delay_is_bounded_by_the_rebalance_timeout() {
        let config = GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            ..test_config()
        };
        let mut h = Harness::with_config(config);
        let short = |client: &str| JoinGroupRequest {
            rebalance_timeout_ms: 5_000,
            ..join_req("g", client)
        };
        let (_, ja) = h.join_new(short("a"));
        // A new member every second would extend the delay forever without a bound.
        for i in 0..4 {
            h.advance(1_000);
            h.join_new(short(&format!("m{i}")));
        }
        assert!(!h.answered(ja));
        h.advance(1_000);
        assert!(
            h.answered(ja),
            "3 s delay + 2 s left of the 5 s rebalance timeout"
        );
    }

    #[test]
    fn invalid_session_timeouts_are_refused() {
        let mut h = Harness::new();
        for session in [5_999, 1_800_001] {
            let r = h.join_now(JoinGroupRequest {
                session_timeout_ms: session,
                ..join_req("g", "a")
            });
            assert_eq!(r.error, ErrorCode::InvalidSessionTimeout, "{session}");
        }
        assert!(h.c.group("g").is_none());
    }

    #[test]
    fn an_unknown_member_id_is_refused() {
        let mut h = Harness::new();
        let rejoin = |group: &str| JoinGroupRequest {
            member_id: "ghost".into(),
            ..join_req(group, "a")
        };
        let r = h.join_now(rejoin("nothing-here"));
        assert_eq!(r.error, ErrorCode::UnknownMemberId);
        assert_eq!(r.member_id, "ghost");
        h.stable_group("g", 1);
        let r = h.join_now(rejoin("g"));
        assert_eq!(r.error, ErrorCode::UnknownMemberId);
    }

    #[test]
    fn an_empty_group_id_is_invalid() {
        let mut h = Harness::new();
        let r = h.join_now(join_req("", "a"));
        assert_eq!(r.error, ErrorCode::InvalidGroupId);
    }

    #[test]
    fn the_group_size_is_capped() {
        let config = GroupConfig {
            max_group_size: 2,
            ..test_config()
        };
        let mut h = Harness::with_config(config);
        h.stable_group("g", 2);
        // Stable: the member count is checked, before and after the id round trip.
        let r = h.join_now(join_req("g", "c"));
        assert_eq!(r.error, ErrorCode::GroupMaxSizeReached);
        assert_eq!(r.member_id, "");

        // During the join phase, the members that already rejoined count.
        let mut h = Harness::with_config(GroupConfig {
            max_group_size: 2,
            ..test_config()
        });
        let (_, ja) = h.join_new(join_req("g2", "a"));
        let (_, jb) = h.join_new(join_req("g2", "b"));
        let third = h.join(JoinGroupRequest {
            api_version: 3,
            ..join_req("g2", "c")
        });
        assert_eq!(h.join_answer(third).error, ErrorCode::GroupMaxSizeReached);
        assert!(!h.answered(ja) && !h.answered(jb));
    }

    #[test]
    fn a_repeated_join_answers_the_older_request() {
        let mut h = Harness::new();
        let (a, first) = h.join_new(join_req("g", "a"));
        let second = h.join(JoinGroupRequest {
            member_id: a,
            ..join_req("g", "a")
        });
        assert_eq!(h.join_answer(first).error, ErrorCode::RebalanceInProgress);
        assert!(!h.answered(second));
        h.advance(i64::from(INITIAL_DELAY));
        assert_eq!(h.join_answer(second).error, ErrorCode::None);
    }

    #[test]
    fn static_members_join_without_the_round_trip() {
        let mut h = Harness::new();
        let id = h.join(static_req("g", "i1"));
        assert!(!h.answered(id), "parked, not MEMBER_ID_REQUIRED");
        h.advance(i64::from(INITIAL_DELAY));
        let r = h.join_answer(id);
        assert_eq!(r.error, ErrorCode::None);
        assert!(r.member_id.starts_with("i1-"));
        assert_eq!(r.members[0].group_instance_id.as_deref(), Some("i1"));
        assert_eq!(
            h.c.group("g").unwrap().static_member("i1"),
            Some(r.member_id.as_str())
        );
    }

    /// A Stable group of a static leader `i1` and a dynamic follower; returns their ids
    /// and the generation.
    fn static_stable_group(h: &mut Harness) -> (String, String, i32) {
        let ja = h.join(static_req("g", "i1"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 3);
        let (ra, rb) = (h.join_answer(ja), h.join_answer(jb));
        let generation = ra.generation_id;
        assert_eq!(rb.generation_id, generation);
        let a = ra.member_id;
        let s1 = h.sync(
            "g",
            &a,
            generation,
            &[(a.as_str(), b"A"), (b.as_str(), b"B")],
        );
        let s2 = h.sync("g", &b, generation, &[]);
        assert_eq!(&h.sync_answer(s1).assignment[..], b"A");
        assert_eq!(&h.sync_answer(s2).assignment[..], b"B");
        (a, b, generation)
    }

    #[test]
    fn a_restarted_static_member_replaces_the_old_one_without_a_rebalance() {
        let mut h = Harness::new();
        let (old, b, generation) = static_stable_group(&mut h);
        let before = h.log.len();
        let r = h.join_now(JoinGroupRequest {
            api_version: 5,
            ..static_req("g", "i1")
        });
        assert_eq!(r.error, ErrorCode::None);
        assert_ne!(r.member_id, old);
        assert_eq!(r.generation_id, generation, "no new generation");
        // Pre-v9: the old leader id, so the new process does not run the assignor.
        assert_eq!(r.leader, old);
        assert!(r.members.is_empty());
        let g = h.c.group("g").unwrap();
        assert_eq!(g.state(), GroupState::Stable);
        assert_eq!(g.static_member("i1"), Some(r.member_id.as_str()));
        assert_eq!(g.leader_id(), Some(r.member_id.as_str()));
        assert_eq!(
            &g.member(&r.member_id).unwrap().assignment().unwrap()[..],
            b"A"
        );
        assert_eq!(h.log.len(), before + 1, "the new member id is stored");
        // The new process syncs and gets the old one's assignment.
        let s = h.sync("g", &r.member_id, generation, &[]);
        assert_eq!(&h.sync_answer(s).assignment[..], b"A");
        // The follower is undisturbed; the old process is fenced.
        assert_eq!(h.heartbeat("g", &b, generation), ErrorCode::None);
        let fenced = crate::request::HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: old,
            group_instance_id: Some("i1".into()),
        };
        let id = h.send(|c, id, now| c.heartbeat(id, fenced, now));
        let Response::Heartbeat(hb) = &h.answers[&id] else {
            panic!()
        };
        assert_eq!(hb.error, ErrorCode::FencedInstanceId);
    }

    #[test]
    fn a_restarted_static_leader_on_v9_skips_the_assignment() {
        let mut h = Harness::new();
        let (_, _, generation) = static_stable_group(&mut h);
        let r = h.join_now(static_req("g", "i1"));
        assert_eq!(r.generation_id, generation);
        assert_eq!(r.leader, r.member_id, "v9 tells the leader it leads");
        assert!(r.skip_assignment);
        assert_eq!(r.members.len(), 2);
    }

    #[test]
    fn a_static_member_changing_its_subscription_only_does_not_rebalance() {
        let mut h = Harness::new();
        let (_, _, generation) = static_stable_group(&mut h);
        let r = h.join_now(JoinGroupRequest {
            protocols: protocols(&[("range", &["t", "other"])]),
            ..static_req("g", "i1")
        });
        // The group's protocol stays range, which is all Kafka looks at.
        assert_eq!(r.generation_id, generation);
        assert_eq!(h.c.group("g").unwrap().state(), GroupState::Stable);
    }

    #[test]
    fn a_static_member_changing_the_protocol_triggers_a_rebalance() {
        let mut h = Harness::new();
        let ja = h.join(JoinGroupRequest {
            protocols: protocols(&[("range", &["t"]), ("roundrobin", &["t"])]),
            ..static_req("g", "i1")
        });
        let jb = h.join(JoinGroupRequest {
            protocols: protocols(&[("range", &["t"]), ("roundrobin", &["t"])]),
            ..static_req("g", "i2")
        });
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let (ra, rb) = (h.join_answer(ja), h.join_answer(jb));
        assert_eq!(ra.protocol_name.as_deref(), Some("range"));
        let s1 = h.sync("g", &ra.member_id, ra.generation_id, &[]);
        let s2 = h.sync("g", &rb.member_id, rb.generation_id, &[]);
        assert_eq!(h.sync_answer(s1).error, ErrorCode::None);
        assert_eq!(h.sync_answer(s2).error, ErrorCode::None);
        // A tie between range and roundrobin goes to the earliest member's preference,
        // which is now roundrobin: the protocol would change, so the group rebalances.
        let changed = h.join(JoinGroupRequest {
            protocols: protocols(&[("roundrobin", &["t"]), ("range", &["t"])]),
            ..static_req("g", "i1")
        });
        assert!(!h.answered(changed), "{:?}", h.answers.get(&changed));
        assert_eq!(
            h.c.group("g").unwrap().state(),
            GroupState::PreparingRebalance
        );
        let again = h.join(JoinGroupRequest {
            member_id: rb.member_id.clone(),
            protocols: protocols(&[("range", &["t"]), ("roundrobin", &["t"])]),
            ..static_req("g", "i2")
        });
        let r = h.join_answer(changed);
        assert_eq!(r.generation_id, ra.generation_id + 1);
        assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
        assert_eq!(h.join_answer(again).generation_id, r.generation_id);
    }

    #[test]
    fn a_replaced_static_member_waiting_in_join_is_fenced() {
        let mut h = Harness::new();
        let old = h.join(static_req("g", "i1"));
        let new = h.join(static_req("g", "i1"));
        let r = h.join_answer(old);
        assert_eq!(r.error, ErrorCode::FencedInstanceId);
        assert!(!h.answered(new));
        h.advance(i64::from(INITIAL_DELAY));
        let r = h.join_answer(new);
        assert_eq!(r.error, ErrorCode::None);
        assert_eq!(r.members.len(), 1);
    }

    #[test]
    fn a_static_member_rejoining_with_a_stale_member_id_is_fenced() {
        let mut h = Harness::new();
        let (old, _, _) = static_stable_group(&mut h);
        let new = h.join_now(static_req("g", "i1"));
        let r = h.join_now(JoinGroupRequest {
            member_id: old,
            ..static_req("g", "i1")
        });
        assert_eq!(r.error, ErrorCode::FencedInstanceId);
        // An instance id the group does not know is UNKNOWN_MEMBER_ID.
        let r = h.join_now(JoinGroupRequest {
            member_id: new.member_id,
            ..static_req("g", "i2")
        });
        assert_eq!(r.error, ErrorCode::UnknownMemberId);
    }
}
