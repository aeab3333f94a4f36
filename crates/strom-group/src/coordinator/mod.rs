//! `GroupCoordinator`: every group of the `__consumer_offsets` partitions this node
//! leads, the loading of those partitions from their records, and the timers. The
//! request handlers are in the submodules, one per family of APIs.

mod admin;
mod join;
mod membership;
mod offsets;
mod txn;

#[cfg(test)]
pub(crate) mod harness;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod snapshot_proptests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use strom_codes::ErrorCode;

use crate::config::GroupConfig;
use crate::context::{Ctx, MemberIds};
use crate::effects::{Effects, OffsetsRecord, ProducerRef};
use crate::error::GroupError;
use crate::group::Group;
use crate::offsets::{CommittedOffset, is_expired};
use crate::partition::partition_for;
use crate::records::{GroupMetadataValue, MAX_STRING_LEN, OffsetCommitValue, RecordKey};
use crate::response::{JoinGroupResponse, Response, SyncGroupResponse};
use crate::state::GroupState;

/// The classic group coordinator of one node: a deterministic state machine. It does no
/// I/O and reads no clock; every call takes the time and returns [`Effects`].
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    /// The `__consumer_offsets` partitions this coordinator serves. Groups of other
    /// partitions get NOT_COORDINATOR; of loading ones COORDINATOR_LOAD_IN_PROGRESS.
    partitions: BTreeMap<i32, PartitionState>,
    /// Groups whose newest replayed group record is a value (not a tombstone), while
    /// their partition loads: those exist even without offsets.
    replayed_metadata: BTreeSet<String>,
    timers: crate::timers::Timers,
    ids: MemberIds,
    /// When `tick` next looks for expired offsets.
    next_expiry_check: i64,
    /// The groups where a producer's open transaction has pending offsets, by
    /// `__consumer_offsets` partition and producer id: where its marker must look. May
    /// name groups that have none any more (deleted, or emptied by tombstones); those
    /// are skipped.
    open_txns: BTreeMap<(i32, i64), BTreeSet<String>>,
    /// The position of the next pending transactional offset among all of them, in the
    /// order their records are emitted or replayed (see `txn.rs`).
    next_pending_order: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionState {
    Loading,
    Active,
}

impl GroupCoordinator {
    /// A coordinator serving no partition yet: load each `__consumer_offsets` partition
    /// this node leads with [`begin_load`](Self::begin_load), [`replay`](Self::replay)
    /// and [`finish_load`](Self::finish_load).
    pub fn new(config: GroupConfig) -> Self {
        let ids = MemberIds::new(config.member_id_seed);
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            partitions: BTreeMap::new(),
            replayed_metadata: BTreeSet::new(),
            timers: Default::default(),
            ids,
            next_expiry_check: i64::MIN,
            open_txns: BTreeMap::new(),
            next_pending_order: 0,
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Sets how many partitions `__consumer_offsets` really has, which decides where
    /// every group lives: once the topic exists its count counts, not the configured
    /// one (a changed setting must not move groups away from their records). Call it
    /// before any partition is loaded.
    pub fn set_offsets_topic_partitions(&mut self, partitions: i32) {
        self.config.offsets_topic_partitions = partitions.max(1);
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_topic_partitions)
    }

    /// Whether the partition is being loaded.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.partitions.get(&partition) == Some(&PartitionState::Loading)
    }

    /// Whether the partition is loaded and served.
    pub fn is_active(&self, partition: i32) -> bool {
        self.partitions.get(&partition) == Some(&PartitionState::Active)
    }

    /// A group of a served partition.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups
            .get(group_id)
            .filter(|g| self.is_active(g.partition))
    }

    /// Every group of the served partitions, by id.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().filter(|g| self.is_active(g.partition))
    }

    /// The lag report of a group (see [`group_lag`](crate::group_lag)).
    pub fn lag(
        &self,
        group_id: &str,
        end_offset: impl FnMut(&str, i32) -> Option<i64>,
    ) -> Option<Vec<crate::lag::PartitionLag>> {
        self.group(group_id)
            .map(|g| crate::lag::group_lag(g, end_offset))
    }

    /// Starts loading a partition (this node became its leader): its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS until [`finish_load`](Self::finish_load). A partition
    /// that was served is dropped first (see [`unload`](Self::unload)).
    pub fn begin_load(&mut self, partition: i32) -> Effects {
        let fx = self.unload(partition);
        self.partitions.insert(partition, PartitionState::Loading);
        fx
    }

    /// Applies one record read back from `__consumer_offsets` (at start-up or after
    /// becoming leader), in log order. A null `value` is a tombstone. Records of types
    /// this coordinator does not manage are skipped.
    ///
    /// This is for records of non-transactional batches. Records of transactional batches
    /// go through [`replay_transactional`](Self::replay_transactional), and control
    /// batches (transaction markers) through [`replay_marker`](Self::replay_marker), each
    /// in its place in the log: the order of all three decides which offset wins.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), GroupError> {
        self.replay_record(key, value, None)
    }

    /// Applies one record of a *transactional* batch (attribute bit 4) of `producer` (the
    /// batch header's producer id and epoch), in log order. An offset commit becomes a
    /// pending offset of that producer's transaction, which a later
    /// [`replay_marker`](Self::replay_marker) of the same producer commits or aborts;
    /// other records (and tombstones) apply as in [`replay`](Self::replay), as Kafka
    /// replays them.
    pub fn replay_transactional(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        producer: ProducerRef,
    ) -> Result<(), GroupError> {
        self.replay_record(key, value, Some(producer))
    }

    /// Applies a transaction marker (a control batch: COMMIT if `commit`, else ABORT) of
    /// `producer_id` read back from `__consumer_offsets` partition `partition`, in its
    /// place in the log: the producer's pending offsets in the partition's groups become
    /// committed offsets (by the precedence rule of `txn.rs`) or are dropped. A marker of
    /// a producer with nothing pending is a no-op.
    pub fn replay_marker(
        &mut self,
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), GroupError> {
        if !self.is_loading(partition) {
            return Err(GroupError::PartitionNotLoading { partition });
        }
        for id in self.take_open_txn(partition, producer_id) {
            if let Some(g) = self.groups.get_mut(&id) {
                g.complete_txn(producer_id, commit);
            }
        }
        Ok(())
    }

    fn replay_record(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        producer: Option<ProducerRef>,
    ) -> Result<(), GroupError> {
        let key = RecordKey::decode(key)?;
        let Some(group_id) = key.group() else {
            return Ok(());
        };
        let partition = self.partition_for(group_id);
        if !self.is_loading(partition) {
            return Err(GroupError::NotLoading {
                group: group_id.to_string(),
                partition,
            });
        }
        match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition: p,
            } => match (value, producer) {
                (Some(v), None) => {
                    let (_, v) = OffsetCommitValue::decode(v)?;
                    self.loading_group(&group, partition)
                        .put_offset((topic, p), CommittedOffset::from_record(v));
                }
                (Some(v), Some(producer)) => {
                    let (_, v) = OffsetCommitValue::decode(v)?;
                    let order = self.take_pending_orders(1);
                    let offset = CommittedOffset::from_record(v);
                    self.loading_group(&group, partition).pending.add(
                        producer.producer_id,
                        producer.producer_epoch,
                        (topic, p),
                        offset,
                        order,
                    );
                    self.open_txns
                        .entry((partition, producer.producer_id))
                        .or_default()
                        .insert(group);
                }
                (None, _) => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.delete_offset(&(topic, p));
                    }
                }
            },
            RecordKey::GroupMetadata { group } => match value {
                Some(v) => {
                    let (_, decoded) = GroupMetadataValue::decode(v)?;
                    let g = self.loading_group(&group, partition);
                    apply_group_record(g, decoded);
                    g.metadata_record = Some(Bytes::copy_from_slice(v));
                    self.replayed_metadata.insert(group);
                }
                None => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        *g = Group {
                            offsets: std::mem::take(&mut g.offsets),
                            pending: std::mem::take(&mut g.pending),
                            ..Group::new(group.clone(), partition, 0)
                        };
                        g.state_timestamp = None;
                    }
                    self.replayed_metadata.remove(&group);
                }
            },
            RecordKey::Other { .. } => {}
        }
        Ok(())
    }

    /// The records that recreate, on replay, the durable state of every group of
    /// `__consumer_offsets` partition `partition`: per group its newest group metadata
    /// record (byte for byte), then one offset-commit record per committed offset with
    /// the values of that key's newest record. Deleted and expired keys have no record
    /// (their tombstones are not needed: nothing older than the snapshot is replayed once
    /// the log start moved past it), and groups with no durable state (only pending
    /// members) have none either, just as replaying the whole log would not create them.
    ///
    /// This is exactly what keep-latest-per-key compaction leaves of the partition, with
    /// tombstones dropped, so replaying it alone gives the same groups and offsets as
    /// replaying the whole history. Replaying the history *followed by* the snapshot does
    /// too: each record re-states the value its key already has. Empty for a partition
    /// that is not served (or still loading): its state is not known yet, so a caller
    /// must check [`is_active`](Self::is_active) before trusting an empty answer.
    ///
    /// **Open transactions.** Moving the log start past the snapshot would lose the
    /// transactional records of transactions that have not ended yet, so the snapshot
    /// re-states every pending transactional offset too, as a record with
    /// `transaction: Some(producer)` (the broker writes it in a transactional batch of that
    /// producer, which stays open until the producer's marker comes after the snapshot).
    /// Their place keeps the precedence of `txn.rs`: a pending offset whose record was
    /// older than its partition's committed offset comes before the committed offset's
    /// record, every other one after all committed offsets, in their original order. So
    /// replaying the snapshot (alone, or after the history) gives the same committed and
    /// pending offsets, and the producer's marker, appended after the snapshot, then
    /// decides them as it would have decided the originals. Compaction therefore needs
    /// no wait for transactions to end; the one rule for the broker is that a marker it
    /// appended to the partition must have been reported through
    /// [`complete_transaction`](Self::complete_transaction) before it takes a snapshot
    /// (else the snapshot re-opens a transaction whose marker lies before it). See
    /// [`open_transactions`](Self::open_transactions) for a broker that prefers not to
    /// compact while transactions are open.
    pub fn snapshot(&self, partition: i32) -> Vec<OffsetsRecord> {
        if !self.is_active(partition) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // Pending offsets newer than their partition's committed offset, to be written
        // after every committed offset, in their original order.
        let mut newer: Vec<(u64, OffsetsRecord)> = Vec::new();
        for g in self.groups.values().filter(|g| g.partition == partition) {
            if let Some(value) = &g.metadata_record {
                let key = RecordKey::GroupMetadata {
                    group: g.id.clone(),
                };
                out.push(OffsetsRecord {
                    partition,
                    key: key.encode(),
                    value: Some(value.clone()),
                    transaction: None,
                });
            }
            let mut older: Vec<(u64, OffsetsRecord)> = Vec::new();
            for (producer_id, txn) in g.pending.producers() {
                let producer = ProducerRef {
                    producer_id,
                    producer_epoch: txn.producer_epoch,
                };
                for ((topic, p), pending) in &txn.offsets {
                    let record = offset_record(g, partition, topic, *p, &pending.offset);
                    let record = OffsetsRecord {
                        transaction: Some(producer),
                        ..record
                    };
                    let list = if pending.superseded {
                        &mut older
                    } else {
                        &mut newer
                    };
                    list.push((pending.order, record));
                }
            }
            older.sort_by_key(|(order, _)| *order);
            out.extend(older.into_iter().map(|(_, r)| r));
            for ((topic, p), offset) in &g.offsets {
                out.push(offset_record(g, partition, topic, *p, offset));
            }
        }
        newer.sort_by_key(|(order, _)| *order);
        out.extend(newer.into_iter().map(|(_, r)| r));
        out
    }

    /// Ends loading a partition: its groups are served from now on. Groups that had
    /// members come back Empty (the members must rejoin; their sessions did not survive)
    /// with their generation and offsets, counting as Empty from `now` for offset expiry.
    pub fn finish_load(&mut self, partition: i32, now: i64) {
        self.partitions.insert(partition, PartitionState::Active);
        let ids: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.partition == partition)
            .map(|g| g.id.clone())
            .collect();
        let mut loaded = 0usize;
        for id in ids {
            let had_metadata = self.replayed_metadata.remove(&id);
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            if !had_metadata && g.offsets.is_empty() && g.pending.is_empty() {
                self.groups.remove(&id);
                continue;
            }
            if g.loaded_with_members {
                g.state_timestamp = Some(now);
                g.loaded_with_members = false;
            }
            loaded += 1;
        }
        tracing::info!(partition, groups = loaded, "loaded consumer groups");
    }

    /// Stops serving a partition (leadership lost, or its log must be re-read): its groups
    /// are dropped, and their parked JoinGroups and SyncGroups are answered with
    /// NOT_COORDINATOR so the clients look for the new coordinator.
    pub fn unload(&mut self, partition: i32) -> Effects {
        let mut fx = Effects::default();
        self.partitions.remove(&partition);
        self.open_txns.retain(|(p, _), _| *p != partition);
        let ids: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.partition == partition)
            .map(|g| g.id.clone())
            .collect();
        for id in ids {
            let Some(g) = self.groups.remove(&id) else {
                continue;
            };
            self.timers.schedule(&id, None);
            self.replayed_metadata.remove(&id);
            for m in g.members.into_values() {
                if let Some(r) = m.awaiting_join {
                    let resp = JoinGroupResponse::error(m.id.clone(), ErrorCode::NotCoordinator);
                    fx.respond(r, Response::JoinGroup(resp));
                }
                if let Some(r) = m.awaiting_sync {
                    let resp = SyncGroupResponse::error(ErrorCode::NotCoordinator);
                    fx.respond(r, Response::SyncGroup(resp));
                }
            }
        }
        fx
    }

    /// Advances time: expires sessions and unused member ids, ends join phases and sync
    /// phases that ran out (answering the requests parked in them), and every
    /// `offsets_retention_check_interval_ms` deletes expired offsets (tombstones) and
    /// groups left with nothing.
    pub fn tick(&mut self, now: i64) -> Effects {
        let mut fx = Effects::default();
        for id in self.timers.pop_due(now) {
            self.run(&id, now, &mut fx, |g, ctx| g.on_timers(ctx));
        }
        if now >= self.next_expiry_check {
            self.expire_offsets(now, &mut fx);
            self.next_expiry_check =
                now.saturating_add(self.config.offsets_retention_check_interval_ms.max(1));
        }
        fx
    }

    /// When `tick` next has something to do (ms since the epoch; before the first tick,
    /// `i64::MIN`: at once). The broker may sleep until then, but calls move deadlines, so
    /// it must look again after each call; a fixed cadence (~100 ms) is simpler.
    pub fn next_deadline(&self) -> i64 {
        self.timers
            .next()
            .map_or(self.next_expiry_check, |t| t.min(self.next_expiry_check))
    }

    /// Forgets the committed offsets of deleted topics in every group (tombstones), as
    /// Kafka does when topics are deleted.
    pub fn topics_deleted(&mut self, topics: &[String], now: i64) -> Effects {
        let mut fx = Effects::default();
        let ids: Vec<String> = self.groups().map(|g| g.id.clone()).collect();
        for id in ids {
            self.run(&id, now, &mut fx, |g, ctx| {
                // Pending transactional offsets of those topics go too, as in Kafka.
                let gone: BTreeSet<(String, i32)> = g
                    .offsets
                    .keys()
                    .chain(g.pending.keys())
                    .filter(|(t, _)| topics.contains(t))
                    .cloned()
                    .collect();
                for (topic, partition) in gone {
                    g.delete_offset(&(topic.clone(), partition));
                    tombstone_offset(&g.id, g.partition, topic, partition, ctx.fx);
                }
            });
        }
        fx
    }

    /// Checks that a request may touch `group_id` here, returning its partition: Kafka's
    /// INVALID_GROUP_ID (empty ids only where Kafka allows them, too long to store),
    /// NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS.
    fn status(&self, group_id: &str, allow_empty: bool) -> Result<i32, ErrorCode> {
        if (group_id.is_empty() && !allow_empty) || group_id.len() > MAX_STRING_LEN {
            return Err(ErrorCode::InvalidGroupId);
        }
        let partition = self.partition_for(group_id);
        match self.partitions.get(&partition) {
            None => Err(ErrorCode::NotCoordinator),
            Some(PartitionState::Loading) => Err(ErrorCode::CoordinatorLoadInProgress),
            Some(PartitionState::Active) => Ok(partition),
        }
    }

    /// Reserves the positions of `n` new pending transactional offsets; the first one.
    fn take_pending_orders(&mut self, n: usize) -> u64 {
        let first = self.next_pending_order;
        self.next_pending_order = first.saturating_add(n as u64);
        first
    }

    /// The groups of `partition` where `producer_id` may have pending offsets, which its
    /// marker now decides.
    fn take_open_txn(&mut self, partition: i32, producer_id: i64) -> BTreeSet<String> {
        self.open_txns
            .remove(&(partition, producer_id))
            .unwrap_or_default()
    }

    /// Creates an Empty group of a served partition if it does not exist.
    fn ensure_group(&mut self, group_id: &str, partition: i32, now: i64) {
        if !self.groups.contains_key(group_id) {
            self.groups.insert(
                group_id.to_string(),
                Group::new(group_id.to_string(), partition, now),
            );
        }
    }

    /// A group being replayed, created Empty (with an unknown state time) if new.
    fn loading_group(&mut self, group_id: &str, partition: i32) -> &mut Group {
        self.groups.entry(group_id.to_string()).or_insert_with(|| {
            let mut g = Group::new(group_id.to_string(), partition, 0);
            g.state_timestamp = None;
            g
        })
    }

    /// Runs `f` on a group with a fresh context, then files the group's next deadline, or
    /// forgets the group if nothing is left of it. `None` if the group does not exist.
    fn run<R>(
        &mut self,
        group_id: &str,
        now: i64,
        fx: &mut Effects,
        f: impl FnOnce(&mut Group, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let group = self.groups.get_mut(group_id)?;
        let mut ctx = Ctx {
            config: &self.config,
            now,
            fx,
            ids: &mut self.ids,
        };
        let out = f(group, &mut ctx);
        let next = if group.is_disposable() {
            self.groups.remove(group_id);
            None
        } else {
            group.next_deadline()
        };
        self.timers.schedule(group_id, next);
        Some(out)
    }

    /// Deletes expired offsets of served groups (tombstones), and Empty groups left
    /// without offsets (a group tombstone too), as Kafka's periodic cleanup does.
    fn expire_offsets(&mut self, now: i64, fx: &mut Effects) {
        let retention = self.config.offsets_retention_ms;
        let ids: Vec<String> = self.groups().map(|g| g.id.clone()).collect();
        let (mut offsets, mut groups) = (0usize, 0usize);
        for id in ids {
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            let view = g.expiry_view();
            // As in Kafka, an offset with a pending transactional offset of the same
            // partition does not expire yet, and a group with open transactions stays.
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(k, o)| is_expired(view, &k.0, o, now, retention) && !g.pending.has(k))
                .map(|(k, _)| k.clone())
                .collect();
            for (topic, partition) in expired {
                g.offsets.remove(&(topic.clone(), partition));
                tombstone_offset(&g.id, g.partition, topic, partition, fx);
                offsets += 1;
            }
            let dead = g.is(GroupState::Empty)
                && g.offsets.is_empty()
                && g.pending.is_empty()
                && g.pending_members.is_empty();
            if dead {
                let key = RecordKey::GroupMetadata { group: id.clone() };
                fx.record(g.partition, key.encode(), None);
                self.groups.remove(&id);
                self.timers.schedule(&id, None);
                groups += 1;
            }
        }
        if offsets + groups > 0 {
            tracing::info!(offsets, groups, "expired offsets and groups");
        }
    }
}

/// The record of a group's offset of `topic`-`topic_partition` with `offset`'s values.
fn offset_record(
    g: &Group,
    partition: i32,
    topic: &str,
    topic_partition: i32,
    offset: &CommittedOffset,
) -> OffsetsRecord {
    let key = RecordKey::OffsetCommit {
        group: g.id.clone(),
        topic: topic.to_string(),
        partition: topic_partition,
    };
    let record = offset.to_record();
    OffsetsRecord {
        partition,
        key: key.encode(),
        value: Some(record.encode(record.preferred_version())),
        transaction: None,
    }
}

/// Rebuilds a replayed group's durable part from its newest metadata record. Members are
/// not kept (they must rejoin after a restart), so the group is Empty; the protocol of a
/// generation without members is meaningless and dropped.
fn apply_group_record(g: &mut Group, v: GroupMetadataValue) {
    g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
    g.generation_id = v.generation;
    g.protocol_name = None;
    g.leader_id = None;
    g.state = GroupState::Empty;
    g.state_timestamp = (v.current_state_timestamp >= 0).then_some(v.current_state_timestamp);
    g.loaded_with_members = !v.members.is_empty();
}

/// Emits the tombstone deleting a committed offset.
pub(crate) fn tombstone_offset(
    group: &str,
    partition: i32,
    topic: String,
    topic_partition: i32,
    fx: &mut Effects,
) {
    let key = RecordKey::OffsetCommit {
        group: group.to_string(),
        topic,
        partition: topic_partition,
    };
    fx.record(partition, key.encode(), None);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use strom_codes::ErrorCode;

    use super::harness::*;
    use super::*;
    use crate::effects::OffsetsRecord;
    use crate::records::{GroupMetadataValue, OffsetCommitValue};
    use crate::request::{
        HeartbeatRequest, JoinGroupRequest, OffsetDeleteRequest, OffsetDeleteTopic,
        OffsetFetchGroup, OffsetFetchRequest,
    };
    use crate::response::Response;

    /// What compaction leaves of a log: the newest record per key, tombstones dropped.
    fn compacted(log: &[OffsetsRecord]) -> Vec<OffsetsRecord> {
        let mut last: HashMap<&[u8], usize> = HashMap::new();
        for (i, r) in log.iter().enumerate() {
            last.insert(&r.key, i);
        }
        log.iter()
            .enumerate()
            .filter(|(i, r)| last[&r.key[..]] == *i && r.value.is_some())
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The durable part of every group: offsets, generation, protocol type.
    fn durable_state(c: &GroupCoordinator) -> Vec<(String, i32, Option<String>, Vec<String>)> {
        c.groups()
            .map(|g| {
                let offsets = g
                    .offsets()
                    .iter()
                    .map(|((t, p), o)| {
                        format!("{t}/{p}={}:{}:{}", o.offset, o.leader_epoch, o.metadata)
                    })
                    .collect();
                (
                    g.id().to_string(),
                    g.generation_id(),
                    g.protocol_type().map(str::to_owned),
                    offsets,
                )
            })
            .collect()
    }

    /// A coordinator with some history: a Stable group with offsets, a simple-commit
    /// group with overwritten and deleted offsets, a group that emptied, a deleted group.
    fn history() -> (Harness, i32) {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("stable", 2);
        h.commit(commit_req(
            "stable",
            generation,
            &members[0],
            &[("t", 0, 10), ("t", 1, 11)],
        ));
        h.commit(commit_req(
            "stable",
            generation,
            &members[1],
            &[("t", 1, 12)],
        ));
        h.commit(commit_req("simple", -1, "", &[("a", 0, 1), ("b", 0, 2)]));
        h.commit(commit_req("simple", -1, "", &[("a", 0, 3)]));
        let req = OffsetDeleteRequest {
            group_id: "simple".into(),
            topics: vec![OffsetDeleteTopic {
                name: "b".into(),
                partition_indexes: vec![0],
            }],
        };
        h.send(|c, id, now| c.offset_delete(id, req, now));
        let (left, g2) = h.stable_group("emptied", 1);
        h.commit(commit_req("emptied", g2, &left[0], &[("t", 0, 5)]));
        h.leave("emptied", &[(&left[0], None)]);
        h.commit(commit_req("deleted", -1, "", &[("t", 0, 1)]));
        let req = crate::request::DeleteGroupsRequest {
            groups_names: vec!["deleted".into()],
        };
        h.send(|c, id, now| c.delete_groups(id, req, now));
        (h, generation)
    }

    #[test]
    fn replay_rebuilds_the_same_offsets_and_groups() {
        let (h, generation) = history();
        let mut restarted = h.restart(test_config());
        assert_eq!(durable_state(&restarted.c), durable_state(&h.c));
        assert!(restarted.c.group("deleted").is_none());
        let g = restarted.c.group("stable").unwrap();
        assert_eq!(g.generation_id(), generation);
        assert_eq!(
            g.state(),
            GroupState::Empty,
            "members must rejoin after a restart"
        );
        assert!(g.members().is_empty());
        assert_eq!(g.state_timestamp(), Some(h.now));
        assert_eq!(restarted.fetched_offset("stable", "t", 1), 12);
        let offset = restarted
            .c
            .group("stable")
            .unwrap()
            .offset("t", 1)
            .unwrap()
            .clone();
        assert_eq!(
            offset,
            h.c.group("stable").unwrap().offset("t", 1).unwrap().clone()
        );
        assert_eq!(restarted.fetched_offset("simple", "b", 0), -1);
        let e = restarted.c.group("emptied").unwrap();
        assert_eq!(
            e.state_timestamp(),
            h.c.group("emptied").unwrap().state_timestamp()
        );
    }

    #[test]
    fn replay_of_the_compacted_log_gives_the_same_state() {
        let (mut h, _) = history();
        let full = h.restart(test_config());
        h.log = compacted(&h.log);
        let small = h.restart(test_config());
        assert_eq!(durable_state(&small.c), durable_state(&full.c));
        assert_eq!(durable_state(&small.c), durable_state(&h.c));
    }

    #[test]
    fn after_a_restart_members_rejoin_and_the_generation_continues() {
        let mut h = Harness::new();
        let (members, generation) = h.stable_group("g", 2);
        let mut h = h.restart(test_config());
        assert_eq!(
            h.heartbeat("g", &members[0], generation),
            ErrorCode::UnknownMemberId
        );
        let r = h.commit(commit_req("g", generation, &members[0], &[("t", 0, 1)]));
        assert_eq!(commit_errors(&r), [ErrorCode::UnknownMemberId]);
        let r = h.join_now(JoinGroupRequest {
            member_id: members[0].clone(),
            ..join_req("g", "a")
        });
        assert_eq!(r.error, ErrorCode::UnknownMemberId);
        let (_, generation2) = h.stable_group("g", 2);
        assert_eq!(generation2, generation + 1);
    }

    #[test]
    fn member_ids_differ_across_restarts_with_different_seeds() {
        let mut h = Harness::new();
        let first = h.join_now(join_req("g", "a")).member_id;
        let mut h2 = h.restart(GroupConfig {
            member_id_seed: 8,
            ..test_config()
        });
        let second = h2.join_now(join_req("g", "a")).member_id;
        assert_ne!(first, second);
    }

    #[test]
    fn unserved_and_loading_partitions_answer_with_coordinator_errors() {
        let mut h = Harness::new();
        let p = h.c.partition_for("g");
        h.c.unload(p);
        let r = h.join_now(join_req("g", "a"));
        assert_eq!(r.error, ErrorCode::NotCoordinator);

        assert!(h.c.begin_load(p).is_empty());
        assert!(h.c.is_loading(p));
        let r = h.join_now(join_req("g", "a"));
        assert_eq!(r.error, ErrorCode::CoordinatorLoadInProgress);
        // Heartbeats are left alone, SyncGroups are sent back to JoinGroup.
        assert_eq!(h.heartbeat("g", "m", 1), ErrorCode::None);
        let s = h.sync("g", "m", 1, &[]);
        assert_eq!(h.sync_answer(s).error, ErrorCode::RebalanceInProgress);
        let r = h.commit(commit_req("g", -1, "", &[("t", 0, 1)]));
        assert_eq!(commit_errors(&r), [ErrorCode::CoordinatorLoadInProgress]);
        let r = h.fetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: "g".into(),
                topics: None,
            }],
            require_stable: false,
        });
        assert_eq!(r.groups[0].error, ErrorCode::CoordinatorLoadInProgress);
        let l = h.leave("g", &[("m", None)]);
        assert_eq!(l.error, ErrorCode::CoordinatorLoadInProgress);

        h.c.finish_load(p, h.now);
        assert!(h.c.is_active(p));
        let r = h.join_now(join_req("g", "a"));
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
    }

    #[test]
    fn unloading_answers_parked_requests() {
        let mut h = Harness::new();
        let (_, j) = h.join_new(join_req("g", "a"));
        assert!(!h.answered(j));
        let p = h.c.partition_for("g");
        let fx = h.c.unload(p);
        h.absorb(fx);
        assert_eq!(h.join_answer(j).error, ErrorCode::NotCoordinator);
        assert!(h.c.group("g").is_none());
        assert!(h.outstanding.is_empty());
        // Nothing of it is left to time out.
        h.advance(3_600_000);
    }

    #[test]
    fn the_offsets_topics_real_partition_count_places_groups() {
        let mut c = GroupCoordinator::new(test_config());
        let configured = c.config().offsets_topic_partitions;
        let group = (0..100)
            .map(|i| format!("g{i}"))
            .find(|g| partition_for(g, 3) != partition_for(g, configured))
            .expect("some group moves");
        c.set_offsets_topic_partitions(3);
        assert_eq!(c.partition_for(&group), partition_for(&group, 3));
        c.set_offsets_topic_partitions(0);
        assert_eq!(c.partition_for(&group), 0, "at least one partition");
    }

    #[test]
    fn replay_refuses_partitions_that_are_not_loading_and_bad_records() {
        let mut c = GroupCoordinator::new(test_config());
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        }
        .encode();
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: -1,
        }
        .encode(3);
        assert!(matches!(
            c.replay(&key, Some(&value)),
            Err(GroupError::NotLoading { .. })
        ));
        let p = c.partition_for("g");
        c.begin_load(p);
        assert!(matches!(
            c.replay(&key, Some(&value[..5])),
            Err(GroupError::Corrupt { .. })
        ));
        assert!(c.replay(&[0, 1, 0], Some(&value)).is_err());
        // Record types of newer Kafka versions are skipped.
        assert_eq!(c.replay(&[0, 5, 0, 1, b'g'], Some(b"whatever")), Ok(()));
        c.replay(&key, Some(&value)).unwrap();
        c.finish_load(p, T0);
        assert_eq!(c.group("g").unwrap().offset("t", 0).unwrap().offset, 1);
    }

    #[test]
    fn a_group_tombstone_in_the_log_removes_the_group() {
        let mut c = GroupCoordinator::new(test_config());
        let p = c.partition_for("g");
        c.begin_load(p);
        let key = RecordKey::GroupMetadata { group: "g".into() }.encode();
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: None,
            leader: None,
            current_state_timestamp: 5,
            members: vec![],
        }
        .encode(3);
        c.replay(&key, Some(&value)).unwrap();
        c.replay(&key, None).unwrap();
        c.finish_load(p, T0);
        assert!(c.group("g").is_none());

        // Without the tombstone the Empty group is back, generation and all.
        let mut c = GroupCoordinator::new(test_config());
        c.begin_load(p);
        c.replay(&key, Some(&value)).unwrap();
        c.finish_load(p, T0);
        let g = c.group("g").unwrap();
        assert_eq!(g.generation_id(), 4);
        assert_eq!(g.state_timestamp(), Some(5));
        assert_eq!(g.protocol_type(), Some("consumer"));
    }

    #[test]
    fn next_deadline_tells_when_to_tick() {
        let mut h = Harness::new();
        let fresh = GroupCoordinator::new(test_config());
        assert_eq!(
            fresh.next_deadline(),
            i64::MIN,
            "the first tick is due at once"
        );
        h.advance(0); // the first expiry check
        assert_eq!(h.c.next_deadline(), h.now + 600_000);
        let (_, _) = h.join_new(join_req("g", "a"));
        assert_eq!(h.c.next_deadline(), h.now + i64::from(INITIAL_DELAY));
        h.advance(i64::from(INITIAL_DELAY));
        // Now the sync deadline (the rebalance timeout) or the session.
        let next = h.c.next_deadline();
        assert!(next > h.now && next <= h.now + i64::from(REBALANCE));
    }

    #[test]
    fn static_member_heartbeat_checks_the_instance_id() {
        let mut h = Harness::new();
        let j = h.join(JoinGroupRequest {
            group_instance_id: Some("i".into()),
            ..join_req("g", "a")
        });
        h.advance(i64::from(INITIAL_DELAY));
        let r = h.join_answer(j);
        let req = HeartbeatRequest {
            group_id: "g".into(),
            generation_id: r.generation_id,
            member_id: r.member_id,
            group_instance_id: Some("i".into()),
        };
        let id = h.send(|c, id, now| c.heartbeat(id, req, now));
        assert_eq!(
            h.answers[&id],
            Response::Heartbeat(crate::response::HeartbeatResponse {
                error: ErrorCode::None
            })
        );
    }
}
