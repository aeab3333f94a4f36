//! Producer state of one partition, on its leader: the last five batches of every
//! idempotent producer, so a retried batch is answered with its original offsets instead
//! of being written twice, and sequence gaps or stale epochs get Kafka's errors; and the
//! transactions (`txn.rs`): which producers have one open here and from which offset,
//! where the last stable offset is, which transactions were aborted. A pure state
//! machine, rebuilt from the log when a node becomes the partition's leader.

mod txn;

pub use txn::ProducerView;

use std::collections::{BTreeSet, HashMap, VecDeque};

use strom_wire::ErrorCode;

/// How many batches per producer are remembered for deduplication (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub const BATCHES_KEPT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// The offset of this producer's first batch of its open transaction here.
    txn_first_offset: Option<i64>,
    /// The coordinator epoch of the newest marker written for this producer: a marker
    /// from an older coordinator is fenced.
    coordinator_epoch: i32,
    /// The max timestamp of the producer's newest batch here (DescribeProducers).
    last_timestamp: i64,
    /// KIP-890 part 1: the token of the coordinator's check, under way or done, that
    /// this producer's transaction includes this partition. A marker clears it, so a
    /// check made before a transaction ended cannot open the next one here.
    verification: Option<u64>,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            txn_first_offset: None,
            // No marker yet: Kafka's -1.
            coordinator_epoch: -1,
            last_timestamp: -1,
            verification: None,
        }
    }
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New, in sequence: append it.
    Append,
    /// Already written: answer with these offsets and write nothing.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// Refuse with this error.
    Reject(ErrorCode),
}

/// The producer states of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: (first offset, producer id).
    open: BTreeSet<(i64, i64)>,
    /// Ended transactions whose marker may not be committed yet: (first offset, marker
    /// offset). They hold the last stable offset back like open ones until the high
    /// watermark passes their marker.
    ending: BTreeSet<(i64, i64)>,
    /// Aborted transactions in marker order (so by `last_offset`).
    aborted: VecDeque<AbortedTxn>,
    /// The last verification token handed out.
    verifications: u64,
    /// Batches recorded so far.
    recorded: u64,
}

/// One aborted transaction of a partition: a read_committed consumer drops this
/// producer's records from `first_offset` up to the ABORT marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// `last + 1` with Kafka's wrap-around of sequence numbers at i32::MAX.
fn next_seq(last: i32) -> i32 {
    if last == i32::MAX { 0 } else { last + 1 }
}

fn last_seq_of(first_seq: i32, records: i32) -> i32 {
    ((first_seq as i64 + records as i64 - 1) % (i32::MAX as i64 + 1)) as i32
}

impl ProducerStates {
    /// Checks a batch of `records` records from producer `pid` at `epoch`, starting at
    /// sequence `first_seq`.
    pub fn check(&self, pid: i64, epoch: i16, first_seq: i32, records: i32) -> SequenceCheck {
        let last_seq = last_seq_of(first_seq, records);
        let Some(entry) = self.producers.get(&pid) else {
            // No state (new producer, or its state aged out): accept, as Kafka does
            // since KIP-360.
            return SequenceCheck::Append;
        };
        if epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return SequenceCheck::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            };
        }
        match entry.batches.back() {
            Some(last) if next_seq(last.last_seq) == first_seq => SequenceCheck::Append,
            None => SequenceCheck::Append,
            Some(_) => SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber),
        }
    }

    /// Records a batch that was appended (or found in the log at start-up).
    pub fn record(
        &mut self,
        pid: i64,
        epoch: i16,
        first_seq: i32,
        records: i32,
        base_offset: i64,
        last_offset: i64,
    ) {
        self.recorded += 1;
        let entry = self.producers.entry(pid).or_default();
        if epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = epoch;
        }
        if first_seq < 0 {
            // A coordinator's transactional batch (offset commits) carries no sequence.
            return;
        }
        entry.batches.push_back(BatchMeta {
            first_seq,
            last_seq: last_seq_of(first_seq, records),
            base_offset,
            last_offset,
        });
        while entry.batches.len() > BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// Notes the max timestamp of a producer's newest batch.
    pub fn set_last_timestamp(&mut self, pid: i64, timestamp: i64) {
        self.producers.entry(pid).or_default().last_timestamp = timestamp;
    }

    /// The current epoch of a producer, if known.
    pub fn epoch(&self, pid: i64) -> Option<i16> {
        self.producers.get(&pid).map(|e| e.epoch)
    }

    /// How many batches were recorded since the state was created.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Forgets producers whose newest batch here is older than `max_age_ms` at `now`
    /// (Kafka's `producer.id.expiration.ms`), unless a transaction of theirs is open or
    /// a KIP-890 check of theirs is under way: what bounds the state a partition keeps
    /// for producers long gone (a client that takes a new producer id per run). A retry
    /// of such a producer's old batch is then appended again, as in Kafka.
    pub fn expire(&mut self, now: i64, max_age_ms: i64) {
        let cutoff = now.saturating_sub(max_age_ms);
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || e.verification.is_some() || e.last_timestamp >= cutoff
        });
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_sequence_duplicates_and_gaps() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(1, 0, 0, 3), SequenceCheck::Append);
        s.record(1, 0, 0, 3, 100, 102);
        assert_eq!(s.check(1, 0, 3, 2), SequenceCheck::Append);
        s.record(1, 0, 3, 2, 103, 104);
        // A retry of either batch is a duplicate with the original offsets.
        assert_eq!(
            s.check(1, 0, 0, 3),
            SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 102
            }
        );
        assert_eq!(
            s.check(1, 0, 3, 2),
            SequenceCheck::Duplicate {
                base_offset: 103,
                last_offset: 104
            }
        );
        // A gap is out of order.
        assert_eq!(
            s.check(1, 0, 7, 1),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        // Other producers are independent.
        assert_eq!(s.check(2, 0, 0, 1), SequenceCheck::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(9, 0, i, 1, i as i64, i as i64);
        }
        assert_eq!(
            s.check(9, 0, 6, 1),
            SequenceCheck::Duplicate {
                base_offset: 6,
                last_offset: 6
            }
        );
        assert_eq!(
            s.check(9, 0, 2, 1),
            SequenceCheck::Duplicate {
                base_offset: 2,
                last_offset: 2
            }
        );
        assert_eq!(
            s.check(9, 0, 1, 1),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn epochs_fence_and_reset_sequences() {
        let mut s = ProducerStates::default();
        s.record(5, 3, 0, 1, 0, 0);
        assert_eq!(
            s.check(5, 2, 1, 1),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            s.check(5, 4, 5, 1),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.check(5, 4, 0, 1), SequenceCheck::Append);
        s.record(5, 4, 0, 1, 1, 1);
        assert_eq!(s.epoch(5), Some(4));
        assert_eq!(
            s.check(5, 4, 0, 1),
            SequenceCheck::Duplicate {
                base_offset: 1,
                last_offset: 1
            }
        );
    }

    #[test]
    fn producers_long_gone_expire_unless_a_transaction_is_open() {
        let mut s = ProducerStates::default();
        for pid in 0..3 {
            s.record(pid, 0, 0, 1, pid, pid);
            s.set_last_timestamp(pid, 1_000 * pid);
        }
        s.record_txn_data(0, 0);
        s.expire(2_500, 1_000);
        // 0: old but its transaction is open; 1: older than 1.5 s; 2: recent.
        let left: Vec<i64> = s.describe().iter().map(|p| p.producer_id).collect();
        assert_eq!(left, [0, 2]);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        s.record(1, 0, i32::MAX - 1, 2, 0, 1);
        assert_eq!(s.check(1, 0, 0, 1), SequenceCheck::Append);
    }
}
