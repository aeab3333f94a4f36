//! Carrying out the coordinator's marker work: a COMMIT or ABORT control batch appended
//! to every partition of an ended transaction through that partition's Raft group, each
//! awaited until committed, then reported back (the coordinator then writes the
//! transaction's Complete record). A partition this node does not lead is reported
//! failed, and the coordinator hands its marker out again after a backoff, by which time
//! the leadership reports may name this node or the partition's leader has moved here.

use std::sync::Arc;

use strom_batch::{ControlType, now_ms};
use strom_log::TopicPartition;
use strom_txn::{ErrorCode, MarkerWork};

use super::{COMMIT_TIMEOUT, Txns};
use crate::groups::OFFSETS_TOPIC;

impl Txns {
    /// Writes the markers of `work` in a task of their own and reports the outcome.
    pub(super) fn spawn_markers(self: &Arc<Self>, work: MarkerWork) {
        let txns = self.clone();
        self.runtime.spawn(async move {
            let kind = ControlType::of(work.result.is_commit());
            let mut written = Vec::new();
            let mut failed = false;
            let mut waits = Vec::new();
            for p in &work.partitions {
                let tp = TopicPartition::new(p.topic.clone(), p.partition);
                if !txns.topics.get(&tp.topic).is_some_and(|t| tp.partition < t.partitions) {
                    // The topic is gone: nothing to mark, as Kafka drops it.
                    written.push(p.clone());
                    continue;
                }
                // A group's partition applies the marker to its offset commits too.
                let appended = if tp.topic == OFFSETS_TOPIC {
                    txns.groups.write_marker(
                        tp.partition,
                        work.producer_id,
                        work.producer_epoch,
                        work.coordinator_epoch,
                        kind,
                    )
                } else {
                    txns.partitions.append_marker(
                        &tp,
                        work.producer_id,
                        work.producer_epoch,
                        work.coordinator_epoch,
                        kind,
                    )
                };
                match appended {
                    Ok(a) => waits.push((p.clone(), tp, a.commit)),
                    Err(f)
                        if matches!(
                            f.code,
                            ErrorCode::InvalidProducerEpoch
                                | ErrorCode::TransactionCoordinatorFenced
                        ) =>
                    {
                        // A newer epoch or coordinator has been here: this transaction's
                        // outcome is superseded in that partition, as Kafka gives up on it.
                        tracing::warn!(partition = %tp.dir_name(), transactional_id = %work.transactional_id, error = %f.message, "marker superseded");
                        written.push(p.clone());
                    }
                    Err(f) => {
                        tracing::debug!(partition = %tp.dir_name(), transactional_id = %work.transactional_id, error = %f.message, "marker not written; will retry");
                        failed = true;
                    }
                }
            }
            for (p, tp, mut commit) in waits {
                match txns
                    .partitions
                    .wait_committed(&tp, &mut commit, COMMIT_TIMEOUT)
                    .await
                {
                    Ok(()) => written.push(p),
                    Err(f) => {
                        tracing::debug!(partition = %tp.dir_name(), error = %f.message, "marker not committed; will retry");
                        failed = true;
                    }
                }
            }
            let mut inner = txns.inner.lock().unwrap();
            let now = now_ms();
            let fx = inner.coordinator.markers_written(
                &work.transactional_id,
                work.producer_id,
                work.producer_epoch,
                &written,
                now,
            );
            if failed {
                inner.coordinator.markers_failed(
                    &work.transactional_id,
                    work.producer_id,
                    work.producer_epoch,
                    now,
                );
            }
            txns.apply(&mut inner, fx);
        });
    }
}
