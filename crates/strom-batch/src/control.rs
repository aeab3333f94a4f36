//! Transaction markers: the control batches a transaction coordinator has written to
//! every partition of a transaction when it ends (COMMIT or ABORT). A control batch has
//! the transactional and control attribute bits, the producer's id and epoch, no
//! sequence, and one record whose key says what it is:
//!
//! ```text
//! key:   version int16 (0), type int16 (0 = ABORT, 1 = COMMIT)
//! value: version int16 (0), coordinator_epoch int32
//! ```
//!
//! Consumers skip control batches; read_committed consumers use the ABORT markers (and
//! the aborted-transactions list Fetch returns) to drop an aborted transaction's records.

use crate::header::{BATCH_HEADER_LEN, RecordBatchHeader};
use crate::record::{RecordBatchBuilder, record_views};

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    /// The marker of a transaction that committed (`true`) or aborted.
    pub fn of(committed: bool) -> ControlType {
        if committed {
            ControlType::Commit
        } else {
            ControlType::Abort
        }
    }

    pub fn is_commit(self) -> bool {
        self == ControlType::Commit
    }

    fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// The whole marker batch (base offset 0, to be stamped like any batch).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    kind: ControlType,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.code().to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = RecordBatchBuilder::new()
        .producer(producer_id, producer_epoch, -1)
        .transactional()
        .control();
    b.push(timestamp, Some(&key), Some(&value), &[]);
    b.finish()
}

/// What a marker batch says: its type and the coordinator epoch in its value (-1 when
/// the value is missing, as some writers leave it). `None` for a batch that is no
/// control batch or whose control record cannot be read (an unknown version or type:
/// Kafka's newer control records, which carry no transaction outcome).
pub fn read_marker(batch: &[u8]) -> Option<(ControlType, i32)> {
    let header = RecordBatchHeader::parse(batch, 0).ok()?;
    if !header.is_control() || batch.len() < header.total_size() {
        return None;
    }
    let records = batch.get(BATCH_HEADER_LEN..header.total_size())?;
    let record = record_views(&header, records).next()?.ok()?;
    let key = record.key?;
    if key.len() < 4 || key[..2] != [0, 0] {
        return None;
    }
    let kind = match i16::from_be_bytes([key[2], key[3]]) {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        _ => return None,
    };
    let epoch = record
        .value
        .filter(|v| v.len() >= 6)
        .map_or(-1, |v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
    Some((kind, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for kind in [ControlType::Abort, ControlType::Commit] {
            let b = marker_batch(7, 3, 11, kind, 1_000);
            let h = RecordBatchHeader::validate(&b, 0).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (7, 3, -1)
            );
            assert_eq!(h.records_count, 1);
            assert_eq!(read_marker(&b), Some((kind, 11)));
        }
    }

    #[test]
    fn data_batches_and_unknown_types_are_not_markers() {
        let mut b = RecordBatchBuilder::new();
        b.push(0, Some(&[0, 0, 0, 1]), None, &[]);
        assert_eq!(read_marker(&b.build()), None);
        let mut c = RecordBatchBuilder::new().transactional().control();
        c.push(0, Some(&[0, 0, 0, 5]), None, &[]);
        assert_eq!(read_marker(&c.build()), None);
        assert_eq!(read_marker(&[1, 2, 3]), None);
    }
}
