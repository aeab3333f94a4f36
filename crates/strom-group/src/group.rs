//! A group's state and its bookkeeping: members, static members, the leader, pending
//! members, the protocol, the generation and the committed offsets. The transitions that
//! answer requests and write records live in `rebalance.rs`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use strom_codes::ErrorCode;

use crate::consumer_protocol::{CONSUMER_PROTOCOL_TYPE, subscribed_topics};
use crate::member::Member;
use crate::offsets::{CommittedOffset, ExpiryView};
use crate::protocol;
use crate::records::GroupMetadataValue;
use crate::state::GroupState;
use crate::txn::PendingOffsets;

/// A classic consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    pub(crate) id: String,
    /// Its `__consumer_offsets` partition.
    pub(crate) partition: i32,
    pub(crate) state: GroupState,
    /// When the group entered `state` (ms since the epoch); `None` when unknown (loaded
    /// from a record that predates the field). Offsets of an Empty group expire counting
    /// from here.
    pub(crate) state_timestamp: Option<i64>,
    /// Set by the first member; `None` for groups that only commit offsets.
    pub(crate) protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation_id: i32,
    pub(crate) leader_id: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// `group.instance.id` -> the member id currently holding it.
    pub(crate) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they lapse unless the
    /// member joins with them. A rebalance waits for them: they are about to join.
    pub(crate) pending_members: BTreeMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet. Those still
    /// missing when `sync_deadline` passes are removed, so a group never waits forever
    /// on a member that vanished after JoinGroup.
    pub(crate) pending_sync: BTreeSet<String>,
    pub(crate) sync_deadline: Option<i64>,
    /// When the PreparingRebalance phase ends, if not earlier.
    pub(crate) join_timer: Option<JoinTimer>,
    /// A member joined during the initial delay, so the delay is extended once more.
    pub(crate) new_member_added: bool,
    /// For consumer groups: the topics the members of the current generation subscribe
    /// to; `None` when unknown (other protocols, unreadable metadata, no generation yet).
    pub(crate) subscribed_topics: Option<BTreeSet<String>>,
    pub(crate) offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Transactional offset commits whose transaction has not ended: not committed
    /// offsets yet, and invisible to everything that reads committed offsets.
    pub(crate) pending: PendingOffsets,
    pub(crate) next_join_seq: u64,
    /// Replay saw members in the newest metadata record; they are dropped when loading
    /// ends, and the group counts as Empty from then.
    pub(crate) loaded_with_members: bool,
    /// The value of the newest group metadata record written (or replayed) for this
    /// group, byte for byte: what keep-latest-per-key compaction would keep of that key,
    /// so [`GroupCoordinator::snapshot`](crate::GroupCoordinator::snapshot) re-states it
    /// exactly. `None` when the group has none (offsets only) or its newest is a tombstone.
    pub(crate) metadata_record: Option<Bytes>,
}

/// The end of a PreparingRebalance phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JoinTimer {
    pub(crate) deadline: i64,
    /// Set for the initial delay of an Empty group's first rebalance (Kafka's
    /// `InitialDelayedJoin`): it ends only at its deadline, never early, and may be
    /// extended while new members arrive.
    pub(crate) initial: Option<InitialDelay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitialDelay {
    /// This round's delay.
    pub(crate) delay: i64,
    /// How much of the rebalance timeout is left for further extensions.
    pub(crate) remaining: i64,
}

impl Group {
    pub(crate) fn new(id: String, partition: i32, now: i64) -> Self {
        Group {
            id,
            partition,
            state: GroupState::Empty,
            state_timestamp: Some(now),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
            join_timer: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending: PendingOffsets::default(),
            next_join_seq: 0,
            loaded_with_members: false,
            metadata_record: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group's `__consumer_offsets` partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// When the group entered its state (ms since the epoch), if known.
    pub fn state_timestamp(&self) -> Option<i64> {
        self.state_timestamp
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    /// The members in the order they joined.
    pub fn members(&self) -> Vec<&Member> {
        let mut out: Vec<&Member> = self.members.values().collect();
        out.sort_by_key(|m| m.join_seq);
        out
    }

    /// The member id holding `group_instance_id`.
    pub fn static_member(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    /// Member ids handed out with MEMBER_ID_REQUIRED and not yet used.
    pub fn pending_members(&self) -> impl Iterator<Item = &str> {
        self.pending_members.keys().map(String::as_str)
    }

    /// Committed offsets by `(topic, partition)`.
    pub fn offsets(&self) -> &BTreeMap<(String, i32), CommittedOffset> {
        &self.offsets
    }

    pub fn offset(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(&(topic.to_string(), partition))
    }

    /// The offset `producer_id`'s open transaction committed for a partition (a
    /// TxnOffsetCommit waiting for its COMMIT or ABORT marker); not a committed offset.
    pub fn pending_offset(
        &self,
        producer_id: i64,
        topic: &str,
        partition: i32,
    ) -> Option<&CommittedOffset> {
        let key = (topic.to_string(), partition);
        self.pending.get(producer_id, &key).map(|p| &p.offset)
    }

    /// Whether an open transaction committed an offset of the partition (OffsetFetch
    /// with `require_stable` then answers UNSTABLE_OFFSET_COMMIT for it).
    pub fn has_pending_offset(&self, topic: &str, partition: i32) -> bool {
        self.pending.has(&(topic.to_string(), partition))
    }

    /// The producer ids whose open transactions committed offsets of this group.
    pub fn open_transactions(&self) -> Vec<i64> {
        self.pending.producers().map(|(p, _)| p).collect()
    }

    /// For consumer groups, the topics the current generation subscribes to, when known.
    pub fn subscribed_topics(&self) -> Option<&BTreeSet<String>> {
        self.subscribed_topics.as_ref()
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn transition(&mut self, state: GroupState, now: i64) {
        tracing::debug!(group = %self.id, from = %self.state, to = %state, "group state");
        self.state = state;
        self.state_timestamp = Some(now);
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// Every known member has rejoined and no member id handed out is still unused.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.is_awaiting_join())
    }

    /// The longest rebalance timeout of the members: how long a rebalance may wait.
    pub(crate) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0)
    }

    /// Adds a member that joined with `protocol_type`: the first member sets the group's
    /// protocol type, and a group without a leader gets this member as leader.
    pub(crate) fn add_member(&mut self, mut member: Member, protocol_type: &str) {
        if self.members.is_empty() {
            self.protocol_type = Some(protocol_type.to_string());
        }
        member.join_seq = self.next_join_seq;
        self.next_join_seq += 1;
        if self.leader_id.is_none() {
            self.leader_id = Some(member.id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member from every book. A removed leader is succeeded by the earliest
    /// remaining member. Parked requests are the caller's to answer.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader_id = self
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .map(|m| m.id.clone());
        }
        self.remove_pending_sync(member_id);
        Some(member)
    }

    /// The member no longer owes a SyncGroup; once nobody does, the sync deadline ends.
    pub(crate) fn remove_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// Kafka's check of a request's member id and group instance id: a static member's
    /// instance id must map to this member id (else FENCED_INSTANCE_ID: another process
    /// took over the instance), and the member must exist (else UNKNOWN_MEMBER_ID).
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                Some(current) if current != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
                None => return Err(ErrorCode::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(())
    }

    /// Whether a member joining with these protocols can be in the group.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[&str]) -> bool {
        protocol::compatible(
            self.protocol_type.as_deref(),
            &self.members(),
            protocol_type,
            protocols,
        )
    }

    pub(crate) fn select_protocol(&self) -> Option<String> {
        protocol::select(&self.members())
    }

    /// For a consumer group with a chosen protocol, the union of the members'
    /// subscriptions; `None` if any is unreadable, as Kafka does.
    pub(crate) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(subscribed_topics(m.metadata(protocol)?).ok()?);
        }
        Some(topics)
    }

    /// Whether the group's members consume `topic` (only known for consumer groups).
    pub(crate) fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_some_and(|t| t.contains(topic))
    }

    pub(crate) fn expiry_view(&self) -> ExpiryView<'_> {
        ExpiryView {
            state: self.state,
            protocol_type: self.protocol_type.as_deref(),
            state_timestamp: self.state_timestamp,
            subscribed_topics: self.subscribed_topics.as_ref(),
        }
    }

    /// The group as stored in a group metadata record.
    pub(crate) fn to_record(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: self
                .members()
                .into_iter()
                .map(|m| m.to_record(protocol))
                .collect(),
        }
    }

    /// The earliest time something of this group is due: a session or a pending member
    /// id lapsing, the end of a rebalance phase, or the sync deadline.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        let sessions = self.members.values().filter_map(Member::session_deadline);
        let pending = self.pending_members.values().copied();
        let timers = self
            .join_timer
            .map(|t| t.deadline)
            .into_iter()
            .chain(self.sync_deadline);
        sessions.chain(pending).chain(timers).min()
    }

    /// A group with nothing in it that was never written to `__consumer_offsets` (no
    /// completed generation, no offsets) can simply be forgotten; it exists only because
    /// a request named it (a JoinGroup that failed, a MEMBER_ID_REQUIRED that lapsed).
    pub(crate) fn is_disposable(&self) -> bool {
        self.is(GroupState::Empty)
            && self.generation_id == 0
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
            && self.pending.is_empty()
    }

    /// A plain (non-transactional) commit of a partition's offset: it is later in the
    /// log than every pending transactional offset of the partition, which therefore
    /// cannot replace it any more (see `txn.rs`).
    pub(crate) fn put_offset(&mut self, key: (String, i32), offset: CommittedOffset) {
        self.pending.supersede(&key);
        self.offsets.insert(key, offset);
    }

    /// `producer_id`'s transaction ended with a COMMIT (`commit`) or ABORT marker: its
    /// pending offsets become committed offsets, except those a later record superseded,
    /// or are dropped. How many became committed offsets.
    pub(crate) fn complete_txn(&mut self, producer_id: i64, commit: bool) -> usize {
        let committed = self.pending.complete(producer_id, commit);
        let n = committed.len();
        self.offsets.extend(committed);
        n
    }

    /// A tombstone of a partition's offset: deletes the committed offset and, as in
    /// Kafka, the pending transactional offsets of that partition. Whether there was
    /// anything to delete.
    pub(crate) fn delete_offset(&mut self, key: &(String, i32)) -> bool {
        let pending = self.pending.remove_key(key);
        self.offsets.remove(key).is_some() || pending
    }
}
