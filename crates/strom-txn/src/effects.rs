//! What a coordinator call asks the outside world to do: records to append to
//! `__transaction_state`, responses to send, and transaction markers to write.

use bytes::Bytes;

use crate::metadata::TopicPartition;
use crate::response::Response;

/// The caller's name for a request, echoed with its response: a request that needs a
/// record is answered by a later call ([`write_completed`]), so the broker needs this to
/// route the answer back to the waiting connection.
///
/// [`write_completed`]: crate::TransactionCoordinator::write_completed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The coordinator's name for one record it asked to be written, to be reported back
/// with [`write_completed`](crate::TransactionCoordinator::write_completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// One record for `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogWrite {
    pub id: WriteId,
    /// The `__transaction_state` partition: the transactional id's.
    pub partition: i32,
    pub key: Bytes,
    /// `None` is a tombstone (this coordinator writes none yet).
    pub value: Option<Bytes>,
}

/// Commit or abort: what a transaction's markers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionResult {
    Abort,
    Commit,
}

impl TransactionResult {
    /// WriteTxnMarkers' `TransactionResult` field (false is abort) and the control
    /// record's type (0 abort, 1 commit).
    pub fn is_commit(self) -> bool {
        self == TransactionResult::Commit
    }
}

/// Write a COMMIT or ABORT marker for `producer_id` at `producer_epoch` to each of
/// `partitions` (a WriteTxnMarkers entry), then report with
/// [`markers_written`](crate::TransactionCoordinator::markers_written) or
/// [`markers_failed`](crate::TransactionCoordinator::markers_failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerWork {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub result: TransactionResult,
    /// The leader epoch of the coordinator's `__transaction_state` partition: a partition
    /// leader refuses markers of an older coordinator.
    pub coordinator_epoch: i32,
    /// WriteTxnMarkers v2's `TransactionVersion`: 2 when the epoch was bumped for this
    /// end (KIP-890).
    pub transaction_version: i16,
    /// The partitions still without the marker, in order.
    pub partitions: Vec<TopicPartition>,
}

/// The work one call produced.
///
/// The contract with the broker:
/// - **writes**: append each record to its partition; once it is durable (committed by
///   the partition's Raft group), or once the append failed, call
///   [`write_completed`](crate::TransactionCoordinator::write_completed) with its id. That
///   call returns the responses that waited for the record. If the outcome is unknown
///   (the leadership moved mid-append), unload and reload the partition instead.
/// - **responses**: send each to the connection waiting on its `RequestId`. Every one of
///   them is already safe to send: no response here depends on a record still in flight.
/// - **markers**: perform each, in-process or over WriteTxnMarkers, and report back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    pub writes: Vec<TxnLogWrite>,
    pub responses: Vec<(RequestId, Response)>,
    pub markers: Vec<MarkerWork>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.responses.is_empty() && self.markers.is_empty()
    }

    /// Appends `other`'s work after this one's.
    pub fn extend(&mut self, other: Effects) {
        self.writes.extend(other.writes);
        self.responses.extend(other.responses);
        self.markers.extend(other.markers);
    }

    pub(crate) fn respond(&mut self, id: RequestId, response: Response) {
        self.responses.push((id, response));
    }
}
