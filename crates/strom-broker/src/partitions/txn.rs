//! Transactions in the data plane: the markers a transaction coordinator writes (one
//! COMMIT or ABORT control batch per partition of a transaction, through the partition's
//! Raft group like any batch), the last stable offset, and the KIP-890 verification
//! tokens a Produce takes before it may open a transaction in a partition.

use strom_batch::{ControlType, marker_batch, now_ms};
use strom_log::TopicPartition;

use super::{Appended, Commit, Partitions};
use crate::errors::{Failure, partition_raft_failure, unknown_partition};
use crate::producers::{AbortedTxn, ProducerView};

impl Partitions {
    /// Appends a transaction marker for `producer_id` to a partition this node leads.
    /// Refused with INVALID_PRODUCER_EPOCH for an epoch older than the producer's here
    /// and TRANSACTION_COORDINATOR_FENCED for an older coordinator. Commitment is
    /// awaited with [`wait_committed`](Self::wait_committed), as for data.
    pub fn append_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        kind: ControlType,
    ) -> Result<Appended, Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        let status = *partition.status.borrow();
        status.check_leading(tp)?;
        let log_start_offset = self
            .logs
            .with_log(tp, |l| l.log_start_offset())
            .ok_or_else(|| unknown_partition(tp))?;
        let mut guard = partition.producers.lock().unwrap();
        let states = self.producer_states(tp, &mut guard)?;
        states
            .check_marker(producer_id, producer_epoch, coordinator_epoch)
            .map_err(|code| {
                Failure::new(
                    code,
                    format!(
                        "marker for producer {producer_id} epoch {producer_epoch} (coordinator epoch {coordinator_epoch}) refused by {}",
                        tp.dir_name()
                    ),
                )
            })?;
        let batch = marker_batch(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            kind,
            now_ms(),
        );
        let len = batch.len() as u64;
        let (waiter, commit) = Commit::new();
        let proposed = self
            .raft
            .propose(partition.group, vec![batch], Some(waiter))
            .map_err(|e| partition_raft_failure(tp, e))?;
        {
            let mut u = partition.uncommitted.lock().unwrap();
            u.0.push_back((proposed.last_offset + 1, len));
            u.1 += len;
        }
        states.record_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            kind,
            proposed.base_offset,
        );
        Ok(Appended {
            base_offset: proposed.base_offset,
            last_offset: proposed.last_offset,
            log_start_offset,
            duplicate: false,
            commit,
            log_append_time: -1,
        })
    }

    /// Starts a KIP-890 check before `producer_id`'s first transactional batch in a
    /// partition this node leads: `Ok(None)` when its transaction is open here already,
    /// else the token to append with once the coordinator confirmed the partition.
    pub fn begin_verification(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
    ) -> Result<Option<u64>, Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        partition.status.borrow().check_leading(tp)?;
        let mut guard = partition.producers.lock().unwrap();
        Ok(self
            .producer_states(tp, &mut guard)?
            .begin_verification(producer_id))
    }

    /// The last stable offset of a partition this node leads at high watermark `hw`,
    /// and the aborted transactions with records in `[from, lso)`.
    pub(super) fn stable_view(
        &self,
        tp: &TopicPartition,
        hw: i64,
        from: i64,
    ) -> Result<(i64, Vec<AbortedTxn>), Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        let mut guard = partition.producers.lock().unwrap();
        let states = self.producer_states(tp, &mut guard)?;
        let lso = states.last_stable_offset(hw);
        let aborted = if from < lso {
            states.aborted_in(from, lso)
        } else {
            Vec::new()
        };
        Ok((lso, aborted))
    }

    /// The log start and last stable offsets of a partition this node leads (ListOffsets
    /// with read_committed).
    pub fn stable_offsets(&self, tp: &TopicPartition) -> Result<Option<(i64, i64)>, Failure> {
        let Some((start, hw)) = self.offsets(tp) else {
            return Ok(None);
        };
        let (lso, _) = self.stable_view(tp, hw, hw)?;
        Ok(Some((start, lso)))
    }

    /// The producers a partition this node leads knows, by producer id.
    pub fn producers(&self, tp: &TopicPartition) -> Result<Vec<ProducerView>, Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        partition.status.borrow().check_leading(tp)?;
        let mut guard = partition.producers.lock().unwrap();
        Ok(self.producer_states(tp, &mut guard)?.describe())
    }
}
