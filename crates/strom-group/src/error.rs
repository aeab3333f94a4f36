//! The one error type of the group coordinator: what can go wrong when reading
//! `__consumer_offsets` records back. Requests never fail with it; they are answered with
//! Kafka error codes inside their responses.

use thiserror::Error;

/// A record of `__consumer_offsets` that cannot be used, or one offered at the wrong time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    /// The bytes do not follow the record's schema (truncated, bad lengths, not UTF-8).
    #[error("corrupt {record} at byte {position}: {reason}")]
    Corrupt {
        record: &'static str,
        position: usize,
        reason: String,
    },
    /// A value version this coordinator cannot read (written by a newer Kafka).
    #[error("{record} version {version} is not supported")]
    UnsupportedVersion { record: &'static str, version: i16 },
    /// `replay` was called for a group whose `__consumer_offsets` partition is not being
    /// loaded: the broker must call `begin_load` first.
    #[error("group {group:?} belongs to partition {partition}, which is not loading")]
    NotLoading { group: String, partition: i32 },
    /// `replay_marker` was called for a partition that is not being loaded.
    #[error("partition {partition} is not loading")]
    PartitionNotLoading { partition: i32 },
}
