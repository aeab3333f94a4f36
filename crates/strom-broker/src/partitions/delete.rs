//! DeleteRecords: moving a partition's log start forward on its leader.

use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use super::Partitions;
use crate::errors::{Failure, unknown_partition};

impl Partitions {
    /// Moves the log start of a partition this node leads to `before` (-1: the high
    /// watermark, as Kafka reads it), deleting the segments wholly below it; returns the
    /// new log start (Kafka's low watermark). An offset above the high watermark is
    /// OFFSET_OUT_OF_RANGE: records not yet committed are never deleted.
    pub fn delete_records(&self, tp: &TopicPartition, before: i64) -> Result<i64, Failure> {
        let status = self.status(tp).ok_or_else(|| unknown_partition(tp))?;
        status.check_leading(tp)?;
        let hw = status.high_watermark;
        let before = if before == -1 { hw } else { before };
        if before < 0 || before > hw {
            return Err(Failure::new(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "cannot delete records of {} before {before}: the high watermark is {hw}",
                    tp.dir_name()
                ),
            ));
        }
        self.logs
            .with_log(tp, |l| l.delete_records(before))
            .ok_or_else(|| unknown_partition(tp))?
            .map_err(Failure::from)
    }
}
