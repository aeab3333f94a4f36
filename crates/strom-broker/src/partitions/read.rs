//! Reading a partition: committed batches as file slices (Fetch), this node's whole copy
//! (the group coordinator's replay), offsets, and the leader-epoch search.

use strom_log::TopicPartition;

use super::Partitions;
use strom_wire::ErrorCode;

use crate::errors::{Failure, check_leader_epoch, not_leader, unknown_partition};
use crate::producers::AbortedTxn;

/// What Fetch found in one partition.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub high_watermark: i64,
    /// Below it every transaction has ended and its marker is committed.
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed: the aborted transactions with records in what was read.
    pub aborted: Vec<AbortedTxn>,
    /// The fetch offset is below the log start or above the log end (the offsets
    /// above are still filled in, as Kafka answers OFFSET_OUT_OF_RANGE).
    pub out_of_range: bool,
    /// Whole committed batches from the fetch offset; `None` when there is nothing to
    /// send (at the high watermark, or no bytes left in the response).
    pub slice: Option<strom_log::FileSlice>,
}

impl Partitions {
    /// Fetch's one look at a partition: this node must lead it in the client's leader
    /// epoch (-1: unchecked); the offset must lie between the log start and the log end
    /// (between the high watermark and the log end is in range: a new leader may not
    /// yet know how far its predecessor had committed); with `max_bytes` > 0, whole
    /// committed batches from `offset` (at least one) come back as a file slice,
    /// `read_committed` ones only below the last stable offset, with the aborted
    /// transactions among them.
    pub fn fetch(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
        leader_epoch: i32,
        read_committed: bool,
    ) -> Result<Fetched, Failure> {
        // Not a replica here: not the leader (the handler checked the topic exists).
        let status = self.status(tp).ok_or_else(|| not_leader(tp))?;
        status.check_leading(tp)?;
        let epoch = check_leader_epoch(leader_epoch, status.leader_epoch());
        if epoch != ErrorCode::None {
            return Err(Failure::new(
                epoch,
                format!(
                    "leader epoch {leader_epoch} of {} is not the current {}",
                    tp.dir_name(),
                    status.leader_epoch()
                ),
            ));
        }
        // No log: the topic was deleted after the request was resolved (a long poll
        // outlives it). Reported unknown, as Kafka does, not "offset out of range",
        // which would make the client reset its position.
        let end = self
            .logs
            .with_log(tp, |log| log.log_end_offset())
            .ok_or_else(|| unknown_partition(tp))?;
        let hw = status.high_watermark.min(end);
        let (lso, aborted) = self.stable_view(tp, hw, offset)?;
        let (limit, aborted) = if read_committed {
            (lso, aborted)
        } else {
            (hw, Vec::new())
        };
        self.logs
            .with_log(tp, |log| {
                let (start, end) = (log.log_start_offset(), log.log_end_offset());
                let mut fetched = Fetched {
                    high_watermark: hw,
                    last_stable_offset: lso,
                    log_start_offset: start,
                    aborted,
                    out_of_range: offset < start || offset > end,
                    slice: None,
                };
                if !fetched.out_of_range && offset < limit && max_bytes > 0 {
                    let r = log.read(offset, max_bytes, Some(limit))?;
                    fetched.slice = r.slice;
                    fetched.log_start_offset = r.log_start_offset;
                }
                if fetched.slice.is_none() {
                    fetched.aborted.clear();
                }
                Ok::<_, Failure>(fetched)
            })
            .ok_or_else(|| unknown_partition(tp))?
    }

    /// Reads whole batches from `offset` of this node's copy of a partition, regardless
    /// of leadership and high watermark (a new coordinator replaying
    /// `__consumer_offsets`), as a view of the segment file; `None` when there is
    /// nothing there.
    pub fn read_local(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<strom_log::FileSlice>, Failure> {
        self.logs
            .with_log(tp, |log| log.read(offset, max_bytes, None).map(|r| r.slice))
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
