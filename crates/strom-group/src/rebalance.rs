//! The rebalance protocol's transitions: preparing a rebalance, completing the join phase
//! (new generation, protocol choice, JoinGroup answers), completing the sync phase
//! (assignments stored and handed out), removing members, and what happens when timers
//! run out. Each transition answers the parked requests it settles and emits the records
//! it needs.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_codes::ErrorCode;

use crate::context::Ctx;
use crate::group::{Group, InitialDelay, JoinTimer};
use crate::member::Member;
use crate::records::{GROUP_METADATA_VALUE_VERSION, RecordKey};
use crate::response::{JoinGroupMember, JoinGroupResponse, Response, SyncGroupResponse};
use crate::state::GroupState;

impl Group {
    /// Answers the member's parked JoinGroup, if any, and restarts its session: from now
    /// on it is expected to heartbeat.
    pub(crate) fn answer_join(
        &mut self,
        member_id: &str,
        response: JoinGroupResponse,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if let Some(id) = m.awaiting_join.take() {
            m.touch(ctx.now);
            ctx.fx.respond(id, Response::JoinGroup(response));
        }
    }

    /// Answers the member's parked SyncGroup, if any, and restarts its session.
    pub(crate) fn answer_sync(
        &mut self,
        member_id: &str,
        response: SyncGroupResponse,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if let Some(id) = m.awaiting_sync.take() {
            m.touch(ctx.now);
            ctx.fx.respond(id, Response::SyncGroup(response));
        }
    }

    /// Answers whatever a member that was just removed still waits for: it is no longer
    /// a member, so it must join again.
    pub(crate) fn answer_removed(member: Member, ctx: &mut Ctx<'_>) {
        if let Some(id) = member.awaiting_join {
            let r = JoinGroupResponse::error("", ErrorCode::UnknownMemberId);
            ctx.fx.respond(id, Response::JoinGroup(r));
        }
        if let Some(id) = member.awaiting_sync {
            let r = SyncGroupResponse::error(ErrorCode::UnknownMemberId);
            ctx.fx.respond(id, Response::SyncGroup(r));
        }
    }

    /// A successful JoinGroup answer for the current generation.
    pub(crate) fn join_response(
        &self,
        member_id: &str,
        members: Vec<JoinGroupMember>,
        leader: String,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse {
            error: ErrorCode::None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            skip_assignment,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// What the leader gets in its JoinGroup answer: every member with its metadata for
    /// the chosen protocol, in join order.
    pub(crate) fn member_list(&self) -> Vec<JoinGroupMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members()
            .into_iter()
            .map(|m| JoinGroupMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Emits the group metadata record for the group as it is now.
    pub(crate) fn store(&mut self, ctx: &mut Ctx<'_>) {
        let key = RecordKey::GroupMetadata {
            group: self.id.clone(),
        };
        let value = self.to_record().encode(GROUP_METADATA_VALUE_VERSION);
        self.metadata_record = Some(value.clone());
        ctx.fx.record(self.partition, key.encode(), Some(value));
    }

    /// Starts a rebalance unless one is already under way.
    pub(crate) fn maybe_prepare_rebalance(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(ctx, reason);
        }
    }

    /// Enters PreparingRebalance: cancels a sync phase under way (its parked SyncGroups get
    /// REBALANCE_IN_PROGRESS, so those members rejoin) and sets the end of the join phase:
    /// the initial delay for an Empty group, the rebalance timeout otherwise.
    pub(crate) fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        if self.is(GroupState::CompletingRebalance) {
            let ids: Vec<String> = self.members.keys().cloned().collect();
            for id in ids {
                if let Some(m) = self.members.get_mut(&id) {
                    m.assignment = None;
                }
                let r = SyncGroupResponse::error(ErrorCode::RebalanceInProgress);
                self.answer_sync(&id, r, ctx);
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.is(GroupState::Empty) {
            let delay = i64::from(ctx.config.initial_rebalance_delay_ms.max(0));
            JoinTimer {
                deadline: ctx.after(delay),
                initial: Some(InitialDelay {
                    delay,
                    remaining: (timeout - delay).max(0),
                }),
            }
        } else {
            JoinTimer {
                deadline: ctx.after(timeout),
                initial: None,
            }
        });
        tracing::info!(
            group = %self.id,
            from = %self.state,
            generation = self.generation_id,
            partition = self.partition,
            reason,
            "preparing to rebalance"
        );
        self.transition(GroupState::PreparingRebalance, ctx.now);
        self.try_complete_join(ctx);
    }

    /// Ends the join phase if it may end now: when every known member has rejoined, or at
    /// its deadline. The initial delay only ends at its deadline, and is extended (within
    /// the rebalance timeout) if a new member arrived during it.
    pub(crate) fn try_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if !self.is(GroupState::PreparingRebalance) {
            return;
        }
        let Some(timer) = self.join_timer else {
            return;
        };
        match timer.initial {
            Some(initial) => {
                if ctx.now < timer.deadline {
                    return;
                }
                if self.new_member_added && initial.remaining != 0 {
                    // The extension counts from the end of the previous delay, not from
                    // when the tick noticed it, so a late tick does not stretch it.
                    self.new_member_added = false;
                    let configured = i64::from(ctx.config.initial_rebalance_delay_ms.max(0));
                    let delay = configured.min(initial.remaining);
                    let deadline = timer.deadline.saturating_add(delay);
                    self.join_timer = Some(JoinTimer {
                        deadline,
                        initial: Some(InitialDelay {
                            delay,
                            remaining: (initial.remaining - initial.delay).max(0),
                        }),
                    });
                    if ctx.now < deadline {
                        return;
                    }
                }
                self.complete_join(ctx);
            }
            None => {
                if self.has_all_members_joined() || ctx.now >= timer.deadline {
                    self.complete_join(ctx);
                }
            }
        }
    }

    /// The end of the join phase (Kafka's `onCompleteJoin`): dynamic members that did not
    /// rejoin are dropped, the next generation is formed, and every waiting JoinGroup is
    /// answered: the leader with the member list, followers without.
    fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_static())
            .map(|m| m.id.clone())
            .collect();
        if !gone.is_empty() {
            tracing::info!(group = %self.id, members = ?gone, "removing members that did not rejoin");
        }
        for id in gone {
            if let Some(m) = self.remove_member(&id) {
                Self::answer_removed(m, ctx);
            }
        }
        if !self.elect_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left. They keep their place
            // until their sessions run out; wait another rebalance timeout for them.
            tracing::warn!(group = %self.id, "no member rejoined; waiting for static members");
            self.join_timer = Some(JoinTimer {
                deadline: ctx.after(self.rebalance_timeout_ms()),
                initial: None,
            });
            return;
        }
        self.init_next_generation(ctx);
    }

    /// Makes sure the leader is a member that rejoined (the leader must get the member
    /// list to compute the assignment). False when nobody rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        let joined = self
            .members
            .values()
            .filter(|m| m.is_awaiting_join())
            .min_by_key(|m| m.join_seq)
            .map(|m| m.id.clone());
        match joined {
            Some(id) => {
                tracing::info!(group = %self.id, leader = %id, "new leader");
                self.leader_id = Some(id);
                true
            }
            None => false,
        }
    }

    /// Bumps the generation. With members: chooses the protocol, answers the JoinGroups
    /// and waits for SyncGroups (CompletingRebalance). Without: the group is Empty, and
    /// that is stored.
    fn init_next_generation(&mut self, ctx: &mut Ctx<'_>) {
        self.generation_id = self.generation_id.saturating_add(1);
        self.new_member_added = false;
        self.pending_sync.clear();
        self.sync_deadline = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, ctx.now);
            tracing::info!(group = %self.id, generation = self.generation_id, "group is empty");
            self.store(ctx);
            return;
        }
        // Every joiner was checked to share a protocol with all members, so `select`
        // finds one; the fallback only keeps a broken invariant from stalling the group.
        self.protocol_name = self.select_protocol().or_else(|| {
            self.members()
                .first()
                .and_then(|m| m.protocols.first())
                .map(|p| p.name.clone())
        });
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, ctx.now);
        tracing::info!(
            group = %self.id,
            generation = self.generation_id,
            protocol = ?self.protocol_name,
            members = self.members.len(),
            "rebalance joined"
        );
        let leader = self.leader_id.clone().unwrap_or_default();
        let list = self.member_list();
        let ids: Vec<String> = self.members().into_iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let members = if id == leader { list.clone() } else { vec![] };
            let response = self.join_response(&id, members, leader.clone(), false);
            self.answer_join(&id, response, ctx);
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = None;
                m.is_new = false;
                // Static members that did not rejoin get a fresh session too, as in Kafka.
                m.touch(ctx.now);
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline = Some(ctx.after(self.rebalance_timeout_ms()));
    }

    /// The leader's assignment arrived: every member gets its part (members the leader
    /// left out get an empty one), the group is stored, becomes Stable, and every parked
    /// SyncGroup is answered. The records come before the answers in the same effects, so
    /// no member acts on an assignment that is not durable.
    pub(crate) fn complete_sync(
        &mut self,
        assignments: BTreeMap<String, Bytes>,
        ctx: &mut Ctx<'_>,
    ) {
        for m in self.members.values_mut() {
            m.assignment = Some(assignments.get(&m.id).cloned().unwrap_or_default());
        }
        self.transition(GroupState::Stable, ctx.now);
        self.store(ctx);
        tracing::info!(group = %self.id, generation = self.generation_id, "group is stable");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let assignment = self.members[&id].assignment.clone().unwrap_or_default();
            let response = SyncGroupResponse {
                error: ErrorCode::None,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                assignment,
            };
            self.answer_sync(&id, response, ctx);
        }
    }

    /// Removes a member (left, expired, fenced out) and lets the group react: a Stable or
    /// CompletingRebalance group rebalances, a PreparingRebalance group may now be
    /// complete.
    pub(crate) fn remove_member_and_update(
        &mut self,
        member_id: &str,
        ctx: &mut Ctx<'_>,
        reason: &str,
    ) {
        let Some(member) = self.remove_member(member_id) else {
            return;
        };
        Self::answer_removed(member, ctx);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(ctx, reason)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Forgets a member id handed out with MEMBER_ID_REQUIRED; a rebalance waiting for it
    /// may now complete.
    pub(crate) fn remove_pending_member(&mut self, member_id: &str, ctx: &mut Ctx<'_>) {
        self.pending_members.remove(member_id);
        self.try_complete_join(ctx);
    }

    /// The sync deadline passed: members that never sent SyncGroup are removed and the
    /// group rebalances without them.
    fn expire_pending_sync(&mut self, ctx: &mut Ctx<'_>) {
        self.sync_deadline = None;
        if !matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || self.pending_sync.is_empty()
        {
            return;
        }
        let missing = std::mem::take(&mut self.pending_sync);
        tracing::info!(group = %self.id, members = ?missing, "removing members that did not sync");
        for id in &missing {
            if let Some(m) = self.remove_member(id) {
                Self::answer_removed(m, ctx);
            }
        }
        self.prepare_rebalance(ctx, "members did not send SyncGroup in time");
    }

    /// Runs what is due at `ctx.now`: lapsed pending member ids, expired sessions, the end
    /// of the join phase and the sync deadline.
    pub(crate) fn on_timers(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let lapsed: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| now >= **deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lapsed {
            self.remove_pending_member(&id, ctx);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            // An earlier removal may have changed this member's situation (it may now be
            // answered and waiting on a fresh session), so check again.
            if self
                .members
                .get(&id)
                .is_some_and(|m| m.session_expired(now))
            {
                tracing::info!(group = %self.id, member = %id, "session expired");
                self.remove_member_and_update(&id, ctx, "session expired");
            }
        }
        if self.join_timer.is_some_and(|t| now >= t.deadline) {
            self.try_complete_join(ctx);
        }
        if self.sync_deadline.is_some_and(|d| now >= d) {
            self.expire_pending_sync(ctx);
        }
    }
}
