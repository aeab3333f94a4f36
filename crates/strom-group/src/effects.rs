//! What a coordinator call asks the outside world to do: records to append to
//! `__consumer_offsets` and responses to send, each tagged with the request it answers.

use bytes::Bytes;

use crate::response::Response;

/// The caller's name for a request, echoed with its response. A JoinGroup or SyncGroup
/// may be answered by a later call (another member's request, or `tick`), so the broker
/// needs this to route the answer back to the waiting connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A transactional producer: its id and epoch, as in a RecordBatch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerRef {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// One record for `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord {
    /// The `__consumer_offsets` partition: the group's, by
    /// [`partition_for`](crate::partition_for).
    pub partition: i32,
    pub key: Bytes,
    /// `None` is a tombstone: compaction then deletes the key.
    pub value: Option<Bytes>,
    /// `Some` for an offset commit that belongs to a transaction (TxnOffsetCommit): the
    /// broker writes it in a *transactional* batch of that producer id and epoch
    /// (attribute bit 4, base sequence -1), and it takes effect only once that producer's
    /// COMMIT marker follows it in the partition. Records of different `transaction`s
    /// never share a batch. `None` for every other record.
    pub transaction: Option<ProducerRef>,
}

/// The work one call produced.
///
/// The contract with the broker: **the records are appended and made durable before any
/// of the responses is sent**, so a commit or an assignment is acknowledged only once it
/// survives a crash. If the append fails, send each response through
/// [`Response::into_error`] instead, and reload the partition (see
/// [`GroupCoordinator::unload`](crate::GroupCoordinator::unload)), because the
/// coordinator's memory is then ahead of the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// In the order they must be appended (per partition).
    pub records: Vec<OffsetsRecord>,
    pub responses: Vec<(RequestId, Response)>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.responses.is_empty()
    }

    /// Appends `other`'s work after this one's.
    pub fn extend(&mut self, other: Effects) {
        self.records.extend(other.records);
        self.responses.extend(other.responses);
    }

    pub(crate) fn respond(&mut self, id: RequestId, response: Response) {
        self.responses.push((id, response));
    }

    pub(crate) fn record(&mut self, partition: i32, key: Bytes, value: Option<Bytes>) {
        self.records.push(OffsetsRecord {
            partition,
            key,
            value,
            transaction: None,
        });
    }

    /// A record of `producer`'s open transaction.
    pub(crate) fn record_txn(
        &mut self,
        partition: i32,
        key: Bytes,
        value: Bytes,
        producer: ProducerRef,
    ) {
        self.records.push(OffsetsRecord {
            partition,
            key,
            value: Some(value),
            transaction: Some(producer),
        });
    }
}
