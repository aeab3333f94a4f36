//! Transactions in the data plane: the markers a transaction coordinator writes (one
//! COMMIT or ABORT control batch per partition of a transaction, through the partition's
//! Raft group like any batch), the last stable offset, and the KIP-890 verification
//! tokens a Produce takes before it may open a transaction in a partition.

use strom_batch::{ControlType, marker_batch, now_ms};
use strom_log::TopicPartition;

use super::{Appended, Partitions};
use crate::errors::{Failure, unknown_partition};
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
        let now = now_ms();
        let batch = marker_batch(producer_id, producer_epoch, coordinator_epoch, kind, now);
        let len = batch.len() as u64;
        let (proposed, commit) = self.propose(tp, &partition, vec![batch], len)?;
        states.record_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            kind,
            proposed.base_offset,
            now,
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

    /// The last stable offset at `hw` if this leader's producer state is loaded (metrics:
    /// a scrape never reads the log to load it).
    pub fn loaded_last_stable_offset(&self, tp: &TopicPartition, hw: i64) -> Option<i64> {
        let partition = self.get(tp)?;
        let mut guard = partition.producers.lock().unwrap();
        guard.as_mut().map(|s| s.last_stable_offset(hw))
    }

    /// The producers a partition this node leads knows, by producer id.
    pub fn producers(&self, tp: &TopicPartition) -> Result<Vec<ProducerView>, Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        partition.status.borrow().check_leading(tp)?;
        let mut guard = partition.producers.lock().unwrap();
        Ok(self.producer_states(tp, &mut guard)?.describe())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use strom_batch::{ControlType, RecordBatchBuilder};
    use strom_log::TopicPartition;
    use strom_wire::ErrorCode;

    use crate::broker::Broker;
    use crate::partitions::Origin;

    fn txn_batch(pid: i64, seq: i32, values: &[&str]) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new()
            .producer(pid, 0, seq)
            .transactional();
        for v in values {
            b.push(strom_batch::now_ms(), None, Some(v.as_bytes()), &[]);
        }
        b.build()
    }

    /// Appends a transactional batch as a verified producer would, and waits for it.
    fn produce(
        rt: &tokio::runtime::Runtime,
        b: &Broker,
        tp: &TopicPartition,
        pid: i64,
        seq: i32,
        values: &[&str],
    ) -> i64 {
        let token = b.data().begin_verification(tp, pid).unwrap();
        let mut a = b
            .data()
            .append_from(
                tp,
                &txn_batch(pid, seq, values),
                Origin::Client { verified: token },
            )
            .unwrap();
        rt.block_on(
            b.data()
                .wait_committed(tp, &mut a.commit, Duration::from_secs(5)),
        )
        .unwrap();
        a.base_offset
    }

    fn marker(
        rt: &tokio::runtime::Runtime,
        b: &Broker,
        tp: &TopicPartition,
        pid: i64,
        kind: ControlType,
    ) -> i64 {
        let mut a = b.data().append_marker(tp, pid, 0, 0, kind).unwrap();
        rt.block_on(
            b.data()
                .wait_committed(tp, &mut a.commit, Duration::from_secs(5)),
        )
        .unwrap();
        a.base_offset
    }

    /// (high watermark, last stable offset, aborted (producer, first offset)) as a
    /// read_committed Fetch from offset 0 sees them.
    fn view(b: &Broker, tp: &TopicPartition) -> (i64, i64, Vec<(i64, i64)>) {
        let f = b.data().fetch(tp, 0, 1 << 20, -1, true).unwrap();
        let aborted = f
            .aborted
            .iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect();
        (f.high_watermark, f.last_stable_offset, aborted)
    }

    fn wait_leader(b: &Arc<Broker>, tp: &TopicPartition) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !b
            .data()
            .status(tp)
            .is_some_and(|s| s.is_leader && s.high_watermark >= 0)
        {
            assert!(std::time::Instant::now() < deadline, "no leader");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Open transactions hold the last stable offset, aborts are listed for
    /// read_committed fetches, and all of it is rebuilt from the log after a restart.
    #[test]
    fn transactions_hold_the_lso_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let settings = [("offsets_topic_partitions", "1")];
        let b = crate::test_broker::open(dir.path(), &settings);
        rt.block_on(
            b.control()
                .create_topic("t", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
        let tp = TopicPartition::new("t", 0);
        wait_leader(&b, &tp);
        // Producer 1 commits [0, 2) + marker 2; producer 2 aborts [3, 4) + marker 4;
        // producer 3 stays open from 5.
        assert_eq!(produce(&rt, &b, &tp, 1, 0, &["a", "b"]), 0);
        assert_eq!(produce(&rt, &b, &tp, 2, 0, &["x"]), 2);
        assert_eq!(marker(&rt, &b, &tp, 1, ControlType::Commit), 3);
        assert_eq!(marker(&rt, &b, &tp, 2, ControlType::Abort), 4);
        assert_eq!(produce(&rt, &b, &tp, 3, 0, &["open"]), 5);
        assert_eq!(view(&b, &tp), (6, 5, vec![(2, 2)]));
        // A plain batch of the open producer is refused until its transaction ends.
        let mut plain = RecordBatchBuilder::new().producer(3, 0, 1);
        plain.push(0, None, Some(b"p"), &[]);
        let refused = b.data().append(&tp, &plain.build()).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidTxnState);
        // A transactional batch that would open a transaction needs a verification.
        let unverified = b.data().append(&tp, &txn_batch(4, 0, &["u"])).unwrap_err();
        assert_eq!(unverified.code, ErrorCode::InvalidTxnState);
        b.close().unwrap();
        drop(b);

        let b = crate::test_broker::open(dir.path(), &settings);
        wait_leader(&b, &tp);
        assert_eq!(view(&b, &tp), (6, 5, vec![(2, 2)]), "rebuilt from the log");
        assert_eq!(marker(&rt, &b, &tp, 3, ControlType::Commit), 6);
        let (hw, lso, _) = view(&b, &tp);
        assert_eq!((hw, lso), (7, 7));
        let producers = b.data().producers(&tp).unwrap();
        let ids: Vec<_> = producers
            .iter()
            .map(|p| (p.producer_id, p.current_txn_start_offset))
            .collect();
        assert_eq!(ids, [(1, -1), (2, -1), (3, -1)]);
        b.close().unwrap();
    }
}
