//! The one error type of the transaction coordinator: what can go wrong when reading
//! `__transaction_state` records back. Requests never fail with it; they are answered with
//! Kafka error codes inside their responses.

use thiserror::Error;

/// A record of `__transaction_state` that cannot be used, or one offered at the wrong time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxnError {
    /// The bytes do not follow the record's schema (truncated, bad lengths, not UTF-8,
    /// trailing bytes, a status number Kafka does not define).
    #[error("corrupt {record} at byte {position}: {reason}")]
    Corrupt {
        record: &'static str,
        position: usize,
        reason: String,
    },
    /// A value version this coordinator cannot read (written by a newer Kafka).
    #[error("{record} version {version} is not supported")]
    UnsupportedVersion { record: &'static str, version: i16 },
    /// `replay` was called for a transactional id whose partition is not being loaded:
    /// the broker must call `begin_load` first.
    #[error(
        "transactional id {transactional_id:?} belongs to partition {partition}, which is not loading"
    )]
    NotLoading {
        transactional_id: String,
        partition: i32,
    },
}
