//! The transactions of one partition, as its leader sees them: each producer's open
//! transaction (from its first transactional batch here to its marker), the last stable
//! offset (LSO: below it every transaction has ended and its marker is committed), and
//! the aborted transactions a read_committed Fetch reports.

use strom_batch::ControlType;
use strom_wire::ErrorCode;

use super::{AbortedTxn, ProducerStates};

/// One producer as a partition leader knows it (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction here, -1 when none.
    pub current_txn_start_offset: i64,
}

impl ProducerStates {
    /// Whether a data batch of `pid` may be appended as (`transactional`) or outside a
    /// transaction: a producer with a transaction open here writes only transactional
    /// batches until its marker, as Kafka requires.
    pub fn check_txn(&self, pid: i64, transactional: bool) -> Result<(), ErrorCode> {
        if !transactional && self.has_open_txn(pid) {
            return Err(ErrorCode::InvalidTxnState);
        }
        Ok(())
    }

    /// Whether `pid` has a transaction open in this partition.
    pub fn has_open_txn(&self, pid: i64) -> bool {
        self.producers
            .get(&pid)
            .is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// Starts a KIP-890 check that `pid`'s transaction includes this partition, before
    /// its first transactional batch here: the token to append with once the
    /// coordinator said yes. `None` when no check is needed (the transaction is open
    /// here already).
    pub fn begin_verification(&mut self, pid: i64) -> Option<u64> {
        if self.has_open_txn(pid) {
            return None;
        }
        // Concurrent checks (several batches of the producer in flight) share the token:
        // each one's confirmation lets its own batch open the transaction.
        let next = self.verifications + 1;
        let token = *self
            .producers
            .entry(pid)
            .or_default()
            .verification
            .get_or_insert(next);
        self.verifications = self.verifications.max(token);
        Some(token)
    }

    /// Whether a transactional batch of `pid` may open its transaction here with
    /// `token` (see [`begin_verification`](Self::begin_verification)): the check must be
    /// the producer's newest and no marker may have come since.
    pub fn verified(&self, pid: i64, token: Option<u64>) -> bool {
        self.has_open_txn(pid)
            || token
                .is_some_and(|t| self.producers.get(&pid).and_then(|e| e.verification) == Some(t))
    }

    /// A transactional batch of `pid` was appended at `base_offset`: the first one opens
    /// the producer's transaction here.
    pub fn record_txn_data(&mut self, pid: i64, base_offset: i64) {
        let entry = self.producers.entry(pid).or_default();
        if entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(base_offset);
            self.open.insert((base_offset, pid));
        }
    }

    /// Whether a marker for `pid` at `epoch` from a coordinator at `coordinator_epoch` may
    /// be written: an older producer epoch is INVALID_PRODUCER_EPOCH (a zombie's
    /// coordinator), an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
    pub fn check_marker(
        &self,
        pid: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ErrorCode> {
        let Some(entry) = self.producers.get(&pid) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ErrorCode::TransactionCoordinatorFenced);
        }
        Ok(())
    }

    /// A marker for `pid` was appended at `marker_offset` with `timestamp`: its open
    /// transaction here (if any) ends, holding the LSO back until the marker is
    /// committed; an ABORT is remembered for read_committed fetches. A newer epoch in the
    /// marker (transaction version 2, or a coordinator's abort that fenced the producer)
    /// becomes the producer's epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn record_marker(
        &mut self,
        pid: i64,
        epoch: i16,
        coordinator_epoch: i32,
        kind: ControlType,
        marker_offset: i64,
        timestamp: i64,
    ) {
        let entry = self.producers.entry(pid).or_default();
        entry.last_timestamp = timestamp;
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        entry.verification = None;
        let Some(first) = entry.txn_first_offset.take() else {
            return;
        };
        self.open.remove(&(first, pid));
        self.ending.insert((first, marker_offset));
        if kind == ControlType::Abort {
            self.aborted.push_back(AbortedTxn {
                producer_id: pid,
                first_offset: first,
                last_offset: marker_offset,
            });
        }
    }

    /// The last stable offset at high watermark `hw`: the first offset of the oldest
    /// transaction that is open, or ended by a marker not yet committed; `hw` when there
    /// is none.
    pub fn last_stable_offset(&mut self, hw: i64) -> i64 {
        self.ending.retain(|&(_, marker)| marker >= hw);
        let open = self.open.first().map(|&(first, _)| first);
        let ending = self.ending.first().map(|&(first, _)| first);
        [Some(hw), open, ending]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(hw)
    }

    /// The aborted transactions with records in `[from, to)`, for a read_committed
    /// Fetch that returns batches in that range.
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        // Markers come in offset order: skip those before `from` by binary search.
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted
            .iter()
            .skip(start)
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets aborted transactions wholly below `log_start` (retention removed them).
    pub fn forget_below(&mut self, log_start: i64) {
        while self
            .aborted
            .front()
            .is_some_and(|a| a.last_offset < log_start)
        {
            self.aborted.pop_front();
        }
    }

    /// The open transactions here: (producer id, epoch, first offset), oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.open
            .iter()
            .map(|&(first, pid)| (pid, self.producers.get(&pid).map_or(-1, |e| e.epoch), first))
            .collect()
    }

    /// Every producer known here, by producer id (DescribeProducers).
    pub fn describe(&self) -> Vec<ProducerView> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(&pid, e)| ProducerView {
                producer_id: pid,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_unstable_by_key(|p| p.producer_id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_transaction_holds_the_lso_until_its_marker_commits() {
        let mut s = ProducerStates::default();
        assert_eq!(s.last_stable_offset(10), 10);
        s.record(1, 0, 0, 2, 10, 11);
        s.record_txn_data(1, 10);
        s.record(1, 0, 2, 1, 12, 12);
        s.record_txn_data(1, 12);
        assert!(s.has_open_txn(1));
        assert_eq!(s.last_stable_offset(13), 10);
        assert_eq!(s.check_txn(1, false), Err(ErrorCode::InvalidTxnState));
        s.record_marker(1, 0, 0, ControlType::Commit, 13, 0);
        assert!(!s.has_open_txn(1));
        // Not committed yet: still held.
        assert_eq!(s.last_stable_offset(13), 10);
        assert_eq!(s.last_stable_offset(14), 14);
        assert!(s.aborted_in(0, 100).is_empty(), "a commit is no abort");
        assert_eq!(s.check_txn(1, false), Ok(()));
    }

    #[test]
    fn the_oldest_open_transaction_decides_and_aborts_are_listed_by_range() {
        let mut s = ProducerStates::default();
        s.record_txn_data(1, 5);
        s.record_txn_data(2, 7);
        assert_eq!(s.last_stable_offset(20), 5);
        s.record_marker(1, 0, 0, ControlType::Abort, 9, 0);
        assert_eq!(s.last_stable_offset(20), 7);
        s.record_marker(2, 0, 0, ControlType::Abort, 12, 0);
        assert_eq!(s.last_stable_offset(20), 20);
        let a = |p, f, l| AbortedTxn {
            producer_id: p,
            first_offset: f,
            last_offset: l,
        };
        assert_eq!(s.aborted_in(0, 6), [a(1, 5, 9)]);
        assert_eq!(s.aborted_in(10, 20), [a(2, 7, 12)]);
        assert_eq!(s.aborted_in(0, 20), [a(1, 5, 9), a(2, 7, 12)]);
        assert!(s.aborted_in(13, 20).is_empty());
        s.forget_below(10);
        assert_eq!(s.aborted_in(0, 20), [a(2, 7, 12)]);
    }

    #[test]
    fn markers_of_older_epochs_and_coordinators_are_fenced() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check_marker(1, 0, 0), Ok(()), "unknown producer");
        s.record(1, 3, 0, 1, 0, 0);
        s.record_txn_data(1, 0);
        assert_eq!(
            s.check_marker(1, 2, 0),
            Err(ErrorCode::InvalidProducerEpoch)
        );
        s.record_marker(1, 4, 5, ControlType::Abort, 1, 0);
        assert_eq!(
            s.epoch(1),
            Some(4),
            "the marker's bumped epoch fences the old one"
        );
        assert_eq!(
            s.check_marker(1, 4, 4),
            Err(ErrorCode::TransactionCoordinatorFenced)
        );
        assert_eq!(s.check_marker(1, 4, 5), Ok(()));
        // A second marker without an open transaction ends nothing.
        s.record_marker(1, 4, 5, ControlType::Abort, 2, 0);
        assert_eq!(s.aborted_in(0, 10).len(), 1);
        let d = s.describe();
        assert_eq!(
            (
                d[0].producer_epoch,
                d[0].last_sequence,
                d[0].coordinator_epoch
            ),
            (4, -1, 5),
            "the marker's epoch cleared the sequences"
        );
        assert_eq!(d[0].current_txn_start_offset, -1);
        assert_eq!(ProducerStates::default().describe().len(), 0);
        let mut fresh = ProducerStates::default();
        fresh.record(2, 0, 0, 1, 0, 0);
        assert_eq!(
            fresh.describe()[0].coordinator_epoch,
            -1,
            "no marker yet: Kafka's -1"
        );
    }

    #[test]
    fn a_coordinators_batch_without_sequence_opens_a_transaction() {
        let mut s = ProducerStates::default();
        s.record(8, 1, -1, 1, 40, 40);
        s.record_txn_data(8, 40);
        assert_eq!(s.open_transactions(), [(8, 1, 40)]);
        assert_eq!(s.check(8, 1, 0, 1), SequenceCheck::Append);
    }

    #[test]
    fn a_verification_opens_one_transaction_and_a_marker_voids_it() {
        let mut s = ProducerStates::default();
        assert!(!s.verified(1, None));
        let t = s.begin_verification(1).unwrap();
        assert!(s.verified(1, Some(t)));
        assert!(!s.verified(1, Some(t + 1)));
        // A second check in flight for the same producer shares the token.
        assert_eq!(s.begin_verification(1), Some(t));
        // The transaction ended (aborted by a timeout) while the check was under way.
        s.record_marker(1, 1, 0, ControlType::Abort, 0, 0);
        assert!(!s.verified(1, Some(t)));
        let t2 = s.begin_verification(1).unwrap();
        assert_ne!(t2, t, "a check after the marker is a new one");
        let t = t2;
        s.record_txn_data(1, 1);
        assert_eq!(s.begin_verification(1), None, "open here: no check");
        assert!(s.verified(1, None));
        let _ = t;
    }

    use super::super::SequenceCheck;
}
