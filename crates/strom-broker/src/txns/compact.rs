//! Compaction of `__transaction_state` by snapshot, as `groups/compact.rs` does for
//! `__consumer_offsets`: the coordinator re-states the newest record of every
//! transactional id of a partition at its end, in a fresh segment, and once that is
//! committed and flushed the log start moves to it, deleting every older segment. A
//! snapshot is only taken while none of the partition's records is in flight (strom-txn
//! refuses otherwise), under the coordinator lock, so its records land after every
//! earlier record and before every later one. A crash before the log start moves leaves
//! history + snapshot, which replays to the same state.

use std::sync::Arc;
use std::time::Instant;

use strom_batch::now_ms;
use strom_log::TopicPartition;

use super::{COMMIT_TIMEOUT, Inner, TXN_TOPIC, Txns};
use crate::internal_batches::{self, KeyedRecord};

impl Txns {
    /// Starts compacting each served partition that holds more than the policy's
    /// minimum and more than twice its snapshot, at most once per check interval.
    pub(super) fn maybe_compact(self: &Arc<Self>, inner: &mut Inner) {
        let now = Instant::now();
        if inner.next_compaction_check.is_some_and(|at| now < at) {
            return;
        }
        inner.next_compaction_check = Some(now + self.compaction.check);
        let Some(partitions) = self.topics.get(TXN_TOPIC).map(|t| t.partitions) else {
            return;
        };
        for partition in 0..partitions {
            if inner.reload.contains(&partition) || inner.compacting.contains(&partition) {
                continue;
            }
            let tp = TopicPartition::new(TXN_TOPIC, partition);
            let Some(size) = self.partitions.logs().with_log(&tp, |l| l.size_bytes()) else {
                continue;
            };
            if size <= self.compaction.min_bytes {
                continue;
            }
            let Some(snapshot) = inner.coordinator.snapshot(partition) else {
                continue;
            };
            let batches = internal_batches::batches(
                snapshot.iter().map(|(k, v)| KeyedRecord {
                    key: k,
                    value: Some(v),
                    producer: None,
                }),
                now_ms(),
            );
            let snapshot_bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
            if size
                <= self
                    .compaction
                    .min_bytes
                    .max(snapshot_bytes.saturating_mul(2))
            {
                continue;
            }
            let start = self.partitions.logs().with_log(&tp, |l| {
                l.roll()?;
                Ok::<_, strom_log::LogError>(l.log_end_offset())
            });
            let Some(Ok(snapshot_start)) = start else {
                tracing::warn!(partition = %tp.dir_name(), "cannot roll __transaction_state for compaction");
                continue;
            };
            let mut last = None;
            for b in &batches {
                match self.partitions.append(&tp, b) {
                    Ok(a) => last = Some(a.commit),
                    Err(f) => {
                        tracing::warn!(partition = %tp.dir_name(), error = %f.message, "appending a __transaction_state snapshot failed");
                        last = None;
                        break;
                    }
                }
            }
            let Some(mut commit) = last else { continue };
            tracing::info!(partition = %tp.dir_name(), bytes = size, snapshot_records = snapshot.len(), snapshot_bytes, "compacting __transaction_state");
            inner.compacting.insert(partition);
            let txns = self.clone();
            self.runtime.spawn(async move {
                let committed = txns
                    .partitions
                    .wait_committed(&tp, &mut commit, COMMIT_TIMEOUT)
                    .await;
                let mut inner = txns.inner.lock().unwrap();
                inner.compacting.remove(&partition);
                if committed.is_err() {
                    return;
                }
                // The history below the snapshot goes only once the snapshot is on disk
                // (a flush policy may not have fsynced it at commit).
                let moved = txns.partitions.logs().with_log(&tp, |l| {
                    l.flush()?;
                    l.delete_records(snapshot_start)
                });
                match moved {
                    Some(Ok(start)) => {
                        tracing::info!(partition = %tp.dir_name(), log_start = start, "compacted __transaction_state")
                    }
                    Some(Err(e)) => {
                        tracing::warn!(partition = %tp.dir_name(), error = %e, "moving the __transaction_state log start failed; compaction will be retried")
                    }
                    None => {}
                }
                drop(inner);
            });
        }
    }
}
