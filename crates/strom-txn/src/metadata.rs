//! One transactional id's state ([`TransactionMetadata`]) and Kafka's transitions of it.
//!
//! A transition is two steps, as in Kafka: `prepare_*` checks it is legal, marks the
//! metadata with a pending state (so no other transition can start) and returns the new
//! state as a [`Transit`]; once the record saying so is durable, `complete` applies it.
//! If the append fails, `abandon` drops the pending state and the metadata is unchanged.

use std::collections::BTreeSet;

use crate::records::{PartitionsSchema, TransactionLogValue};
use crate::state::TransactionState;

/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Whether the epoch leaves no room for another bump: Kafka keeps `i16::MAX` for fencing,
/// so a producer can never be handed it.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// The state of one transactional id, as Kafka's `TransactionMetadata` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last transition (it differs from `producer_id` only
    /// after a new id replaced an exhausted one), so a retried InitProducerId or EndTxn
    /// of the old id is recognised.
    pub previous_producer_id: i64,
    /// The id the producer moves to when this transaction completes (transaction
    /// version 2, when the epoch ran out); -1 otherwise.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId (KIP-360) or EndTxn
    /// (transaction version 2) is answered instead of fenced. Not in the log: -1 after a
    /// load, as in Kafka.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TransactionState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added (-1 when none).
    pub start_timestamp: i64,
    pub last_update_timestamp: i64,
    /// The transaction version the client used (0-2); 2 bumps the epoch at every end.
    pub client_transaction_version: i16,
    /// The state a transition in flight moves to, while its record is being written (and,
    /// for Complete*, while its markers are).
    pub pending: Option<TransactionState>,
    /// A fencing bump whose record failed: the next fence reuses the epoch instead of
    /// bumping again (it was never shown to a client).
    pub(crate) has_failed_epoch_fence: bool,
}

/// The state a transition leads to: everything of [`TransactionMetadata`] that the log
/// records, and so exactly what a `__transaction_state` value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transit {
    pub(crate) producer_id: i64,
    pub(crate) previous_producer_id: i64,
    pub(crate) next_producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) last_producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TransactionState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) start_timestamp: i64,
    pub(crate) last_update_timestamp: i64,
    pub(crate) client_transaction_version: i16,
}

/// A transition that is not legal from the current state, or one attempted while another
/// is pending: a bug in the coordinator, answered with UNKNOWN_SERVER_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IllegalTransition;

impl TransactionMetadata {
    /// A transactional id seen for the first time: Kafka's metadata before the first
    /// InitProducerId completes (epoch -1, Empty).
    pub(crate) fn new(
        transactional_id: String,
        producer_id: i64,
        timeout_ms: i32,
        now: i64,
    ) -> Self {
        TransactionMetadata {
            transactional_id,
            producer_id,
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TransactionState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp: -1,
            last_update_timestamp: now,
            client_transaction_version: 0,
            pending: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The metadata a `__transaction_state` value describes, or `None` if its status is
    /// not a state Kafka defines.
    pub(crate) fn from_record(
        transactional_id: String,
        v: &TransactionLogValue,
    ) -> Option<TransactionMetadata> {
        let state = TransactionState::from_id(v.transaction_status)?;
        let mut partitions = BTreeSet::new();
        if state != TransactionState::Empty {
            for t in v.transaction_partitions.iter().flatten() {
                for &p in &t.partition_ids {
                    partitions.insert(TopicPartition::new(t.topic.clone(), p));
                }
            }
        }
        Some(TransactionMetadata {
            transactional_id,
            producer_id: v.producer_id,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: v.transaction_timeout_ms,
            state,
            partitions,
            start_timestamp: v.transaction_start_timestamp_ms,
            last_update_timestamp: v.transaction_last_update_timestamp_ms,
            client_transaction_version: v.client_transaction_version,
            pending: None,
            has_failed_epoch_fence: false,
        })
    }

    /// The record that states this metadata as it is (compaction by snapshot): replaying
    /// it gives the same metadata as replaying the history that led here.
    pub(crate) fn snapshot_record(&self) -> TransactionLogValue {
        Transit {
            previous_producer_id: self.previous_producer_id,
            ..self.base(self.state)
        }
        .to_record()
    }

    /// What a new transition starts from: the current state, all fields unchanged.
    fn base(&self, state: TransactionState) -> Transit {
        Transit {
            producer_id: self.producer_id,
            previous_producer_id: self.producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state,
            partitions: self.partitions.clone(),
            start_timestamp: self.start_timestamp,
            last_update_timestamp: self.last_update_timestamp,
            client_transaction_version: self.client_transaction_version,
        }
    }

    /// Kafka's `prepareTransitionTo`: the transition must be legal from the current state,
    /// no other may be pending, and ids and epochs must be valid.
    fn prepare(&mut self, t: Transit) -> Result<Transit, IllegalTransition> {
        let legal = self.pending.is_none()
            && t.state.can_follow(self.state)
            && t.producer_id >= 0
            && (t.state == TransactionState::Dead || t.producer_epoch >= 0);
        debug_assert!(legal, "illegal transition of {self:?} to {t:?}");
        if !legal {
            return Err(IllegalTransition);
        }
        self.pending = Some(t.state);
        Ok(t)
    }

    /// InitProducerId: the next epoch, or the same one for a retry (KIP-360), back to
    /// Empty with the new timeout. `None` from [`IncrementEpoch::Fenced`] is Kafka's
    /// PRODUCER_FENCED: the expected epoch is neither the current nor the last one.
    pub(crate) fn prepare_increment_epoch(
        &mut self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now: i64,
    ) -> Result<IncrementEpoch, IllegalTransition> {
        let mut t = self.base(TransactionState::Empty);
        let bumped = self.producer_epoch.wrapping_add(1);
        match expected_epoch {
            None => {
                t.producer_epoch = bumped;
                t.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            Some(e) if self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch => {
                t.producer_epoch = bumped;
                t.last_producer_epoch = self.producer_epoch;
            }
            Some(e) if e == self.last_producer_epoch => {
                // A retry of a bump whose answer the producer lost: answer the same.
            }
            Some(_) => return Ok(IncrementEpoch::Fenced),
        }
        t.timeout_ms = timeout_ms;
        t.partitions.clear();
        t.start_timestamp = -1;
        t.last_update_timestamp = now;
        self.prepare(t).map(IncrementEpoch::Prepared)
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0.
    pub(crate) fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now: i64,
        record_last_epoch: bool,
    ) -> Result<Transit, IllegalTransition> {
        let mut t = self.base(TransactionState::Empty);
        t.producer_id = new_producer_id;
        t.producer_epoch = 0;
        t.last_producer_epoch = if record_last_epoch {
            self.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        t.timeout_ms = timeout_ms;
        t.partitions.clear();
        t.start_timestamp = -1;
        t.last_update_timestamp = now;
        self.prepare(t)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: Ongoing with the union of the partitions; a
    /// transaction starting now gets `now` as its start time.
    pub(crate) fn prepare_add_partitions(
        &mut self,
        added: impl IntoIterator<Item = TopicPartition>,
        now: i64,
        client_transaction_version: i16,
    ) -> Result<Transit, IllegalTransition> {
        let mut t = self.base(TransactionState::Ongoing);
        if self.state.is_idle() {
            t.start_timestamp = now;
        }
        t.partitions.extend(added);
        t.last_update_timestamp = now;
        t.client_transaction_version = client_transaction_version;
        self.prepare(t)
    }

    /// Kafka's `prepareFenceProducerEpoch` followed at once by the abort it starts: the
    /// epoch is bumped in memory now (so the old producer is fenced even if the record
    /// fails; a failed fence is not bumped twice, nor past `i16::MAX`) and the returned
    /// transition is PrepareAbort at that epoch, as Kafka's transaction version 1 abort.
    pub(crate) fn prepare_fence_and_abort(
        &mut self,
        now: i64,
    ) -> Result<Transit, IllegalTransition> {
        if self.state != TransactionState::Ongoing || self.pending.is_some() {
            debug_assert!(false, "fence of {self:?}");
            return Err(IllegalTransition);
        }
        if !self.has_failed_epoch_fence && self.producer_epoch != i16::MAX {
            self.producer_epoch += 1;
        }
        self.last_producer_epoch = NO_PRODUCER_EPOCH;
        self.prepare_end(
            TransactionState::PrepareAbort,
            0,
            NO_PRODUCER_ID,
            now,
            false,
        )
    }

    /// EndTxn: PrepareCommit or PrepareAbort. Transaction version 2 bumps the epoch
    /// (keeping the old one as the last epoch); `next_producer_id` is the id to move to
    /// when the bumped epoch is the last one. An abort with no partition added takes
    /// `now` as its start time.
    pub(crate) fn prepare_end(
        &mut self,
        state: TransactionState,
        client_transaction_version: i16,
        next_producer_id: i64,
        now: i64,
        no_partition_added: bool,
    ) -> Result<Transit, IllegalTransition> {
        let mut t = self.base(state);
        if client_transaction_version >= 2 {
            if self.producer_epoch == i16::MAX && state == TransactionState::PrepareAbort {
                // Already at the fencing epoch: let the abort through without overflow.
            } else {
                t.producer_epoch = self
                    .producer_epoch
                    .checked_add(1)
                    .ok_or(IllegalTransition)?;
            }
            t.last_producer_epoch = self.producer_epoch;
        }
        if no_partition_added {
            t.start_timestamp = now;
        }
        t.next_producer_id = next_producer_id;
        t.last_update_timestamp = now;
        t.client_transaction_version = client_transaction_version;
        self.prepare(t)
    }

    /// Markers written: CompleteCommit or CompleteAbort, no partitions. With transaction
    /// version 2 and a next producer id, the producer moves to it at epoch 0.
    pub(crate) fn prepare_complete(&mut self, now: i64) -> Result<Transit, IllegalTransition> {
        self.has_failed_epoch_fence = false;
        let state = if self.state == TransactionState::PrepareCommit {
            TransactionState::CompleteCommit
        } else {
            TransactionState::CompleteAbort
        };
        let mut t = self.base(state);
        if self.client_transaction_version >= 2 && self.next_producer_id != NO_PRODUCER_ID {
            t.producer_id = self.next_producer_id;
            t.producer_epoch = 0;
        }
        t.next_producer_id = NO_PRODUCER_ID;
        t.partitions.clear();
        t.last_update_timestamp = now;
        self.prepare(t)
    }

    /// Applies a prepared transition whose record is durable.
    pub(crate) fn complete(&mut self, t: Transit) {
        debug_assert_eq!(self.pending, Some(t.state), "{self:?} completing {t:?}");
        self.producer_id = t.producer_id;
        self.previous_producer_id = t.previous_producer_id;
        self.next_producer_id = t.next_producer_id;
        self.producer_epoch = t.producer_epoch;
        self.last_producer_epoch = t.last_producer_epoch;
        self.timeout_ms = t.timeout_ms;
        self.state = t.state;
        self.partitions = t.partitions;
        self.start_timestamp = t.start_timestamp;
        self.last_update_timestamp = t.last_update_timestamp;
        self.client_transaction_version = t.client_transaction_version;
        self.pending = None;
    }

    /// Drops a prepared transition whose record could not be written.
    pub(crate) fn abandon(&mut self) {
        self.pending = None;
    }
}

/// What [`TransactionMetadata::prepare_increment_epoch`] decided.
#[derive(Debug)]
pub(crate) enum IncrementEpoch {
    Prepared(Transit),
    Fenced,
}

impl Transit {
    /// The `__transaction_state` value recording this state. Empty transactions have a
    /// null partition list, as Kafka writes them.
    pub(crate) fn to_record(&self) -> TransactionLogValue {
        let transaction_partitions = (self.state != TransactionState::Empty).then(|| {
            let mut topics: Vec<PartitionsSchema> = Vec::new();
            for tp in &self.partitions {
                match topics.last_mut() {
                    Some(t) if t.topic == tp.topic => t.partition_ids.push(tp.partition),
                    _ => topics.push(PartitionsSchema {
                        topic: tp.topic.clone(),
                        partition_ids: vec![tp.partition],
                    }),
                }
            }
            topics
        });
        TransactionLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            transaction_timeout_ms: self.timeout_ms,
            transaction_status: self.state.id(),
            transaction_partitions,
            transaction_last_update_timestamp_ms: self.last_update_timestamp,
            transaction_start_timestamp_ms: self.start_timestamp,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionState::*;

    fn fresh() -> TransactionMetadata {
        TransactionMetadata::new("tx".into(), 7, 1000, 10)
    }

    fn apply(m: &mut TransactionMetadata, t: Transit) {
        m.complete(t);
    }

    #[test]
    fn first_init_bumps_to_epoch_zero() {
        let mut m = fresh();
        let IncrementEpoch::Prepared(t) = m.prepare_increment_epoch(500, None, 20).unwrap() else {
            panic!()
        };
        assert_eq!(m.pending, Some(Empty));
        apply(&mut m, t);
        assert_eq!(
            (m.producer_epoch, m.last_producer_epoch, m.timeout_ms),
            (0, -1, 500)
        );
        assert_eq!(m.last_update_timestamp, 20);
    }

    #[test]
    fn kip_360_retries_and_fencing() {
        let mut m = fresh();
        m.producer_epoch = 4;
        // Expected = current: bump, remember the old epoch.
        let IncrementEpoch::Prepared(t) = m.prepare_increment_epoch(500, Some(4), 20).unwrap()
        else {
            panic!()
        };
        apply(&mut m, t);
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (5, 4));
        // A retry with the old epoch gets the same answer.
        let IncrementEpoch::Prepared(t) = m.prepare_increment_epoch(500, Some(4), 30).unwrap()
        else {
            panic!()
        };
        apply(&mut m, t);
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (5, 4));
        // Anything else is fenced, and leaves nothing pending.
        assert!(matches!(
            m.prepare_increment_epoch(500, Some(2), 40).unwrap(),
            IncrementEpoch::Fenced
        ));
        assert_eq!(m.pending, None);
    }

    #[test]
    fn add_partitions_starts_the_clock_once() {
        let mut m = fresh();
        m.producer_epoch = 0;
        let t = m
            .prepare_add_partitions([TopicPartition::new("a", 0)], 100, 0)
            .unwrap();
        apply(&mut m, t);
        let t = m
            .prepare_add_partitions([TopicPartition::new("b", 1)], 200, 0)
            .unwrap();
        apply(&mut m, t);
        assert_eq!(m.state, Ongoing);
        assert_eq!(m.start_timestamp, 100);
        assert_eq!(m.last_update_timestamp, 200);
        assert_eq!(m.partitions.len(), 2);
    }

    #[test]
    fn a_second_transition_while_one_is_pending_is_illegal() {
        let mut m = fresh();
        m.producer_epoch = 0;
        let _t = m
            .prepare_add_partitions([TopicPartition::new("a", 0)], 100, 0)
            .unwrap();
        let second = std::panic::catch_unwind(move || {
            m.prepare_add_partitions([TopicPartition::new("a", 1)], 100, 0)
        });
        // debug_assert fires in tests; in release builds it is an error.
        assert!(second.is_err() || second.unwrap().is_err());
    }

    #[test]
    fn v2_end_bumps_and_complete_rotates_when_exhausted() {
        let mut m = fresh();
        m.producer_epoch = i16::MAX - 2;
        m.client_transaction_version = 2;
        let t = m
            .prepare_add_partitions([TopicPartition::new("a", 0)], 100, 2)
            .unwrap();
        apply(&mut m, t);
        let t = m
            .prepare_end(PrepareCommit, 2, NO_PRODUCER_ID, 200, false)
            .unwrap();
        apply(&mut m, t);
        assert_eq!(
            (m.producer_epoch, m.last_producer_epoch),
            (i16::MAX - 1, i16::MAX - 2)
        );
        let t = m.prepare_complete(300).unwrap();
        apply(&mut m, t);
        assert_eq!(m.state, CompleteCommit);
        assert!(m.partitions.is_empty());

        // The next transaction's end exhausts the epoch and carries a new id.
        let t = m
            .prepare_add_partitions([TopicPartition::new("a", 0)], 400, 2)
            .unwrap();
        apply(&mut m, t);
        let t = m.prepare_end(PrepareAbort, 2, 99, 500, false).unwrap();
        apply(&mut m, t);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.next_producer_id),
            (7, i16::MAX, 99)
        );
        let t = m.prepare_complete(600).unwrap();
        apply(&mut m, t);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.previous_producer_id),
            (99, 0, 7)
        );
        assert_eq!(m.last_producer_epoch, i16::MAX - 1);
    }

    #[test]
    fn fence_bumps_once_even_after_a_failed_fence() {
        let mut m = fresh();
        m.producer_epoch = 3;
        let t = m
            .prepare_add_partitions([TopicPartition::new("a", 0)], 100, 0)
            .unwrap();
        apply(&mut m, t);
        let t = m.prepare_fence_and_abort(200).unwrap();
        assert_eq!((t.producer_epoch, t.state), (4, PrepareAbort));
        // The record failed.
        m.abandon();
        m.has_failed_epoch_fence = true;
        let t = m.prepare_fence_and_abort(300).unwrap();
        assert_eq!(t.producer_epoch, 4);
    }

    #[test]
    fn record_round_trip_keeps_everything_but_the_last_epoch() {
        let mut m = fresh();
        m.producer_epoch = 2;
        m.last_producer_epoch = 1;
        let t = m
            .prepare_add_partitions(
                [
                    TopicPartition::new("b", 1),
                    TopicPartition::new("a", 0),
                    TopicPartition::new("a", 3),
                ],
                100,
                2,
            )
            .unwrap();
        let record = t.to_record();
        assert_eq!(
            record.transaction_partitions,
            Some(vec![
                PartitionsSchema {
                    topic: "a".into(),
                    partition_ids: vec![0, 3]
                },
                PartitionsSchema {
                    topic: "b".into(),
                    partition_ids: vec![1]
                },
            ])
        );
        apply(&mut m, t);
        let back = TransactionMetadata::from_record("tx".into(), &record).unwrap();
        assert_eq!(
            back,
            TransactionMetadata {
                last_producer_epoch: -1,
                ..m
            }
        );
    }
}
