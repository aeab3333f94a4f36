//! The Kafka error codes a broker sends, as a Rust enum with their wire values.
//!
//! The numbers are the protocol's, not ours: they were checked against the error table of
//! the Kafka protocol guide and `org.apache.kafka.common.protocol.Errors`. Only codes that
//! Strom's broker can produce are listed; a client may still send or expect others.

use std::fmt;

/// A Kafka error code. `code as i16` (or [`ErrorCode::code`]) gives the value written in
/// the `error_code` fields of responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    /// The server experienced an unexpected error when processing the request.
    UnknownServerError = -1,
    /// Success.
    None = 0,
    OffsetOutOfRange = 1,
    /// CRC mismatch, bad size, or otherwise corrupt record data.
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    InvalidFetchSize = 4,
    LeaderNotAvailable = 5,
    NotLeaderOrFollower = 6,
    RequestTimedOut = 7,
    MessageTooLarge = 10,
    OffsetMetadataTooLarge = 12,
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    NotEnoughReplicas = 19,
    InvalidRequiredAcks = 21,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    InvalidCommitOffsetSize = 28,
    TopicAuthorizationFailed = 29,
    InvalidTimestamp = 32,
    UnsupportedVersion = 35,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39,
    InvalidConfig = 40,
    /// The request was malformed or sent to an incompatible broker.
    InvalidRequest = 42,
    PolicyViolation = 44,
    OutOfOrderSequenceNumber = 45,
    DuplicateSequenceNumber = 46,
    InvalidProducerEpoch = 47,
    /// The request does not fit the transaction's state (a commit after an abort).
    InvalidTxnState = 48,
    /// The producer id is not the transactional id's current one.
    InvalidProducerIdMapping = 49,
    /// The transaction timeout is not in `1..=transaction.max.timeout.ms`.
    InvalidTransactionTimeout = 50,
    /// Another transition of the transaction is in progress; retried after a backoff.
    ConcurrentTransactions = 51,
    /// A transaction marker from a coordinator older than the last one seen.
    TransactionCoordinatorFenced = 52,
    /// A transactional batch without a transactional id to authorize it by.
    TransactionalIdAuthorizationFailed = 53,
    /// Not tried because another part of the same request failed.
    OperationNotAttempted = 55,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    NonEmptyGroup = 68,
    GroupIdNotFound = 69,
    FencedLeaderEpoch = 74,
    UnknownLeaderEpoch = 75,
    UnsupportedCompressionType = 76,
    OffsetNotAvailable = 78,
    MemberIdRequired = 79,
    GroupMaxSizeReached = 81,
    FencedInstanceId = 82,
    GroupSubscribedToTopic = 86,
    /// A record failed the broker's validation (wrong magic, inconsistent counts).
    InvalidRecord = 87,
    UnstableOffsetCommit = 88,
    ThrottlingQuotaExceeded = 89,
    ProducerFenced = 90,
    UnknownTopicId = 100,
    /// DescribeTransactions of an id the coordinator does not know.
    TransactionalIdNotFound = 105,
    /// KIP-890: the partition is not part of the ongoing transaction; the producer must
    /// abort it.
    TransactionAbortable = 120,
    /// KIP-1102/KIP-1242: the client reached a broker of another cluster, or another
    /// node than it meant (ApiVersions v5); it should bootstrap again.
    RebootstrapRequired = 129,
}

impl ErrorCode {
    /// Every variant, in ascending code order. Used to map codes back and by tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::UnknownServerError,
        ErrorCode::None,
        ErrorCode::OffsetOutOfRange,
        ErrorCode::CorruptMessage,
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::InvalidFetchSize,
        ErrorCode::LeaderNotAvailable,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::RequestTimedOut,
        ErrorCode::MessageTooLarge,
        ErrorCode::OffsetMetadataTooLarge,
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotCoordinator,
        ErrorCode::InvalidTopicException,
        ErrorCode::RecordListTooLarge,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::InvalidRequiredAcks,
        ErrorCode::IllegalGeneration,
        ErrorCode::InconsistentGroupProtocol,
        ErrorCode::InvalidGroupId,
        ErrorCode::UnknownMemberId,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::RebalanceInProgress,
        ErrorCode::InvalidCommitOffsetSize,
        ErrorCode::TopicAuthorizationFailed,
        ErrorCode::InvalidTimestamp,
        ErrorCode::UnsupportedVersion,
        ErrorCode::TopicAlreadyExists,
        ErrorCode::InvalidPartitions,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidReplicaAssignment,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidRequest,
        ErrorCode::PolicyViolation,
        ErrorCode::OutOfOrderSequenceNumber,
        ErrorCode::DuplicateSequenceNumber,
        ErrorCode::InvalidProducerEpoch,
        ErrorCode::InvalidTxnState,
        ErrorCode::InvalidProducerIdMapping,
        ErrorCode::InvalidTransactionTimeout,
        ErrorCode::ConcurrentTransactions,
        ErrorCode::TransactionCoordinatorFenced,
        ErrorCode::TransactionalIdAuthorizationFailed,
        ErrorCode::OperationNotAttempted,
        ErrorCode::KafkaStorageError,
        ErrorCode::UnknownProducerId,
        ErrorCode::NonEmptyGroup,
        ErrorCode::GroupIdNotFound,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::UnsupportedCompressionType,
        ErrorCode::OffsetNotAvailable,
        ErrorCode::MemberIdRequired,
        ErrorCode::GroupMaxSizeReached,
        ErrorCode::FencedInstanceId,
        ErrorCode::GroupSubscribedToTopic,
        ErrorCode::InvalidRecord,
        ErrorCode::UnstableOffsetCommit,
        ErrorCode::ThrottlingQuotaExceeded,
        ErrorCode::ProducerFenced,
        ErrorCode::UnknownTopicId,
        ErrorCode::TransactionalIdNotFound,
        ErrorCode::TransactionAbortable,
        ErrorCode::RebootstrapRequired,
    ];

    /// The value written on the wire.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// The variant for a wire value, if it is one Strom knows.
    pub fn from_code(code: i16) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// Kafka's own name for the code (`UNKNOWN_TOPIC_OR_PARTITION`), which is what client
    /// logs print, so broker logs should say the same.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            ErrorCode::None => "NONE",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorCode::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorCode::InvalidFetchSize => "INVALID_FETCH_SIZE",
            ErrorCode::LeaderNotAvailable => "LEADER_NOT_AVAILABLE",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::OffsetMetadataTooLarge => "OFFSET_METADATA_TOO_LARGE",
            ErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            ErrorCode::RecordListTooLarge => "RECORD_LIST_TOO_LARGE",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::InvalidRequiredAcks => "INVALID_REQUIRED_ACKS",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::InvalidCommitOffsetSize => "INVALID_COMMIT_OFFSET_SIZE",
            ErrorCode::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
            ErrorCode::InvalidTimestamp => "INVALID_TIMESTAMP",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorCode::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorCode::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            ErrorCode::InvalidReplicaAssignment => "INVALID_REPLICA_ASSIGNMENT",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::DuplicateSequenceNumber => "DUPLICATE_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::InvalidTxnState => "INVALID_TXN_STATE",
            ErrorCode::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            ErrorCode::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ErrorCode::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            ErrorCode::TransactionCoordinatorFenced => "TRANSACTION_COORDINATOR_FENCED",
            ErrorCode::OperationNotAttempted => "OPERATION_NOT_ATTEMPTED",
            ErrorCode::TransactionalIdAuthorizationFailed => {
                "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
            }
            ErrorCode::KafkaStorageError => "KAFKA_STORAGE_ERROR",
            ErrorCode::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            ErrorCode::NonEmptyGroup => "NON_EMPTY_GROUP",
            ErrorCode::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::UnsupportedCompressionType => "UNSUPPORTED_COMPRESSION_TYPE",
            ErrorCode::OffsetNotAvailable => "OFFSET_NOT_AVAILABLE",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::GroupMaxSizeReached => "GROUP_MAX_SIZE_REACHED",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC",
            ErrorCode::InvalidRecord => "INVALID_RECORD",
            ErrorCode::UnstableOffsetCommit => "UNSTABLE_OFFSET_COMMIT",
            ErrorCode::ThrottlingQuotaExceeded => "THROTTLING_QUOTA_EXCEEDED",
            ErrorCode::ProducerFenced => "PRODUCER_FENCED",
            ErrorCode::UnknownTopicId => "UNKNOWN_TOPIC_ID",
            ErrorCode::TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND",
            ErrorCode::TransactionAbortable => "TRANSACTION_ABORTABLE",
            ErrorCode::RebootstrapRequired => "REBOOTSTRAP_REQUIRED",
        }
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> i16 {
        code.code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    /// The values as listed in the protocol guide's error table (checked by hand against
    /// the Kafka 4.x `Errors` enum). Spelled out again here, independently of the enum, so
    /// a typo in either place fails the test.
    const GUIDE: &[(&str, i16)] = &[
        ("UNKNOWN_SERVER_ERROR", -1),
        ("NONE", 0),
        ("OFFSET_OUT_OF_RANGE", 1),
        ("CORRUPT_MESSAGE", 2),
        ("UNKNOWN_TOPIC_OR_PARTITION", 3),
        ("INVALID_FETCH_SIZE", 4),
        ("LEADER_NOT_AVAILABLE", 5),
        ("NOT_LEADER_OR_FOLLOWER", 6),
        ("REQUEST_TIMED_OUT", 7),
        ("MESSAGE_TOO_LARGE", 10),
        ("OFFSET_METADATA_TOO_LARGE", 12),
        ("COORDINATOR_LOAD_IN_PROGRESS", 14),
        ("COORDINATOR_NOT_AVAILABLE", 15),
        ("NOT_COORDINATOR", 16),
        ("INVALID_TOPIC_EXCEPTION", 17),
        ("RECORD_LIST_TOO_LARGE", 18),
        ("NOT_ENOUGH_REPLICAS", 19),
        ("INVALID_REQUIRED_ACKS", 21),
        ("ILLEGAL_GENERATION", 22),
        ("INCONSISTENT_GROUP_PROTOCOL", 23),
        ("INVALID_GROUP_ID", 24),
        ("UNKNOWN_MEMBER_ID", 25),
        ("INVALID_SESSION_TIMEOUT", 26),
        ("REBALANCE_IN_PROGRESS", 27),
        ("INVALID_COMMIT_OFFSET_SIZE", 28),
        ("TOPIC_AUTHORIZATION_FAILED", 29),
        ("INVALID_TIMESTAMP", 32),
        ("UNSUPPORTED_VERSION", 35),
        ("TOPIC_ALREADY_EXISTS", 36),
        ("INVALID_PARTITIONS", 37),
        ("INVALID_REPLICATION_FACTOR", 38),
        ("INVALID_REPLICA_ASSIGNMENT", 39),
        ("INVALID_CONFIG", 40),
        ("INVALID_REQUEST", 42),
        ("POLICY_VIOLATION", 44),
        ("OUT_OF_ORDER_SEQUENCE_NUMBER", 45),
        ("DUPLICATE_SEQUENCE_NUMBER", 46),
        ("INVALID_PRODUCER_EPOCH", 47),
        ("INVALID_TXN_STATE", 48),
        ("INVALID_PRODUCER_ID_MAPPING", 49),
        ("INVALID_TRANSACTION_TIMEOUT", 50),
        ("CONCURRENT_TRANSACTIONS", 51),
        ("TRANSACTION_COORDINATOR_FENCED", 52),
        ("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 53),
        ("OPERATION_NOT_ATTEMPTED", 55),
        ("KAFKA_STORAGE_ERROR", 56),
        ("UNKNOWN_PRODUCER_ID", 59),
        ("NON_EMPTY_GROUP", 68),
        ("GROUP_ID_NOT_FOUND", 69),
        ("FENCED_LEADER_EPOCH", 74),
        ("UNKNOWN_LEADER_EPOCH", 75),
        ("UNSUPPORTED_COMPRESSION_TYPE", 76),
        ("OFFSET_NOT_AVAILABLE", 78),
        ("MEMBER_ID_REQUIRED", 79),
        ("GROUP_MAX_SIZE_REACHED", 81),
        ("FENCED_INSTANCE_ID", 82),
        ("GROUP_SUBSCRIBED_TO_TOPIC", 86),
        ("INVALID_RECORD", 87),
        ("UNSTABLE_OFFSET_COMMIT", 88),
        ("THROTTLING_QUOTA_EXCEEDED", 89),
        ("PRODUCER_FENCED", 90),
        ("UNKNOWN_TOPIC_ID", 100),
        ("TRANSACTIONAL_ID_NOT_FOUND", 105),
        ("TRANSACTION_ABORTABLE", 120),
        ("REBOOTSTRAP_REQUIRED", 129),
    ];

    #[test]
    fn codes_match_the_protocol_guide() {
        assert_eq!(ErrorCode::ALL.len(), GUIDE.len());
        for (&code, &(name, value)) in ErrorCode::ALL.iter().zip(GUIDE) {
            assert_eq!(code.name(), name);
            assert_eq!(code as i16, value, "{name}");
            assert_eq!(i16::from(code), value, "{name}");
            assert_eq!(ErrorCode::from_code(value), Some(code));
        }
    }

    #[test]
    fn codes_agree_with_kafka_protocol_crate() {
        // A second, independent source: kafka-protocol's generated error table.
        for &code in ErrorCode::ALL {
            let theirs = ResponseError::try_from_code(code.code());
            if code == ErrorCode::None {
                assert!(theirs.is_none());
            } else {
                let theirs = theirs.unwrap_or_else(|| panic!("{code} unknown to kafka-protocol"));
                // Their Display is the variant name, which must be ours: same code, same meaning.
                assert_eq!(theirs.to_string(), format!("{code:?}"), "{code}");
            }
        }
    }

    #[test]
    fn unknown_codes_are_not_invented() {
        for value in [-2, 8, 9, 11, 13, 20, 30, 101, i16::MAX, i16::MIN] {
            assert_eq!(ErrorCode::from_code(value), None, "{value}");
        }
    }
}
