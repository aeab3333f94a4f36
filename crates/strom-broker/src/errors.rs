//! The broker's one error type, [`Failure`]: a Kafka error code with the message that
//! explains it. The errors of the crates below (storage, batches, Raft) become Kafka
//! codes here and nowhere else, through `From` and [`partition_raft_failure`]; so do the
//! partition-level answers every path gives (unknown, not the leader, offline) and the
//! leader-epoch check. A check of the Kafka protocol itself (acks out of range, a batch
//! above max.message.bytes) names its code where it is made: the code is what the check
//! means, and Kafka's clients act on it.

use strom_batch::BatchError;
use strom_log::{LogError, TopicPartition};
use strom_wire::ErrorCode;

/// The Kafka error a client gets for a storage error, and a message for logs and for
/// responses that carry one.
pub fn log_error_code(e: &LogError) -> ErrorCode {
    match e {
        LogError::InvalidBatch(b) => batch_error_code(b),
        LogError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::NonContiguous { .. } => ErrorCode::UnknownServerError,
        LogError::Corrupt { .. } | LogError::Io { .. } | LogError::Offline { .. } => {
            ErrorCode::KafkaStorageError
        }
        LogError::Closed { .. } => ErrorCode::UnknownTopicOrPartition,
    }
}

/// CRC and framing damage is CORRUPT_MESSAGE; well-formed batches Kafka would not accept
/// (old magic, inconsistent counts) are INVALID_RECORD.
pub fn batch_error_code(e: &BatchError) -> ErrorCode {
    match e {
        BatchError::Truncated { .. }
        | BatchError::InvalidLength { .. }
        | BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
        BatchError::UnsupportedMagic { .. }
        | BatchError::InvalidRecordCount { .. }
        | BatchError::Compressed { .. } => ErrorCode::InvalidRecord,
    }
}

/// An error code with the message that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
    /// The index within its batch of the record to blame, for Produce's `record_errors`.
    pub record_index: Option<i32>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            record_index: None,
        }
    }
}

impl From<&LogError> for Failure {
    fn from(e: &LogError) -> Self {
        Failure::new(log_error_code(e), e.to_string())
    }
}

impl From<LogError> for Failure {
    fn from(e: LogError) -> Self {
        Failure::from(&e)
    }
}

impl From<BatchError> for Failure {
    fn from(e: BatchError) -> Self {
        Failure::new(batch_error_code(&e), e.to_string())
    }
}

/// A partition's Raft group refused or failed an operation on `tp`: the partition-level
/// answers (not the leader, offline, too much not yet replicated).
pub fn partition_raft_failure(tp: &TopicPartition, e: strom_raft::RaftError) -> Failure {
    use strom_raft::RaftError;
    match e {
        RaftError::NotLeader { .. } => not_leader(tp),
        RaftError::Offline { .. } => offline(tp),
        RaftError::Dropped => Failure::new(
            ErrorCode::RequestTimedOut,
            format!(
                "{} has too much data not yet replicated; retry",
                tp.dir_name()
            ),
        ),
        other => Failure::from(other),
    }
}

impl From<strom_raft::RaftError> for Failure {
    fn from(e: strom_raft::RaftError) -> Self {
        use strom_raft::RaftError;
        match e {
            RaftError::NotLeader { .. } => {
                Failure::new(ErrorCode::NotLeaderOrFollower, e.to_string())
            }
            RaftError::Log(l) => Failure::from(&l),
            other => Failure::new(ErrorCode::KafkaStorageError, other.to_string()),
        }
    }
}

/// A storage error outside a log (node identity, partition directories).
pub fn storage(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::KafkaStorageError, e.to_string())
}

pub fn no_such_topic(name: &str) -> Failure {
    Failure::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

pub fn unknown_partition(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("unknown partition {}", tp.dir_name()),
    )
}

pub fn not_leader(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::NotLeaderOrFollower,
        format!("this broker is not the leader of {}", tp.dir_name()),
    )
}

pub fn offline(tp: &TopicPartition) -> Failure {
    Failure::new(
        ErrorCode::KafkaStorageError,
        format!(
            "the replica of {} on this broker is offline after a storage error and is being recovered",
            tp.dir_name()
        ),
    )
}

/// Checks a client's view of the leader epoch against ours (the Raft term): -1 means
/// "not checked".
pub fn check_leader_epoch(current: i32, ours: i32) -> ErrorCode {
    if current == -1 || current == ours {
        ErrorCode::None
    } else if current > ours {
        ErrorCode::UnknownLeaderEpoch
    } else {
        ErrorCode::FencedLeaderEpoch
    }
}
