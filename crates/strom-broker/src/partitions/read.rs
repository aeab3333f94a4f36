//! Reading a partition: committed batches as file slices (Fetch), this node's whole copy
//! (the group coordinator's replay), offsets, and the leader-epoch search.

use strom_log::TopicPartition;

use super::Partitions;
use crate::errors::{Failure, not_leader, offline, unknown_partition};

/// What a read found.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// Whole batches as a view of the segment file; `None` when there is nothing yet.
    pub slice: Option<strom_log::FileSlice>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

impl PartitionRead {
    pub fn len(&self) -> usize {
        self.slice.as_ref().map_or(0, |s| s.len as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Partitions {
    /// Reads whole committed batches from `offset` of a partition this node leads, at
    /// most about `max_bytes` (at least one batch), as a slice of the segment file: the
    /// records are not copied. Nothing at or above the high watermark is returned.
    pub fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<PartitionRead, Failure> {
        let status = self.status(tp).ok_or_else(|| unknown_partition(tp))?;
        if status.offline {
            return Err(offline(tp));
        }
        if !status.is_leader {
            return Err(not_leader(tp));
        }
        let hw = status.high_watermark;
        self.logs
            .with_log(tp, |log| {
                let r = log.read(offset, max_bytes, Some(hw))?;
                Ok::<_, strom_log::LogError>(PartitionRead {
                    slice: r.slice,
                    high_watermark: hw,
                    log_start_offset: r.log_start_offset,
                })
            })
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }

    /// Reads this node's copy of a partition regardless of leadership and high
    /// watermark (a new coordinator replaying `__consumer_offsets`).
    pub fn read_local(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<PartitionRead, Failure> {
        self.logs
            .with_log(tp, |log| {
                let r = log.read(offset, max_bytes, None)?;
                Ok::<_, strom_log::LogError>(PartitionRead {
                    slice: r.slice,
                    high_watermark: r.log_end_offset,
                    log_start_offset: r.log_start_offset,
                })
            })
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }

    /// The log start offset and high watermark of a partition with a replica here.
    pub fn offsets(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        let hw = self.status(tp)?.high_watermark;
        self.logs
            .with_log(tp, |l| (l.log_start_offset(), hw.min(l.log_end_offset())))
    }

    /// The log start and end offsets of this node's copy.
    pub fn local_offsets(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        self.logs
            .with_log(tp, |l| (l.log_start_offset(), l.log_end_offset()))
    }

    /// OffsetForLeaderEpoch: the largest epoch at most `epoch` that this partition's log
    /// holds and the offset where it ends (where the next epoch starts, or the log end
    /// for the current one). `None` when the log holds nothing that old. Epochs only grow
    /// along the log, so a binary search over batch epochs finds the boundary.
    pub fn epoch_end_offset(
        &self,
        tp: &TopicPartition,
        epoch: i32,
    ) -> Result<Option<(i32, i64)>, Failure> {
        let current = self.status(tp).map_or(0, |s| s.leader_epoch());
        self.logs
            .with_log(tp, |l| -> Result<Option<(i32, i64)>, strom_log::LogError> {
                let (start, end) = (l.raft_start().0, l.log_end_offset());
                if epoch >= current {
                    return Ok(Some((current, end)));
                }
                // First offset whose epoch is above `epoch`.
                let (mut lo, mut hi) = (start, end);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match l.epoch_at(mid)? {
                        Some(e) if e > epoch => hi = mid,
                        _ => lo = mid + 1,
                    }
                }
                if lo == start {
                    return Ok(None);
                }
                Ok(l.epoch_at(lo - 1)?.map(|e| (e, lo)))
            })
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }
}
