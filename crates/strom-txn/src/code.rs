//! The Kafka error codes the transaction coordinator answers with.
//!
//! strom-codes lists only the codes the broker produced before transactions, and this
//! crate may not change it; so the transaction codes are here, together with the older
//! codes the coordinator also answers, with the same wire values. When the transaction
//! path is wired into the broker, the seven codes marked *new* belong in strom-codes and
//! this enum can become a re-export.

use std::fmt;

use strom_codes::ErrorCode;

/// An error code of a transaction coordinator response; `code()` is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum TxnErrorCode {
    UnknownServerError = -1,
    None = 0,
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    InvalidRequest = 42,
    InvalidProducerEpoch = 47,
    /// *New.* The request does not fit the transaction's state (commit after abort).
    InvalidTxnState = 48,
    /// *New.* The producer id is not the transactional id's current one.
    InvalidProducerIdMapping = 49,
    /// *New.* The timeout is not in `1..=transaction.max.timeout.ms`.
    InvalidTransactionTimeout = 50,
    /// *New.* Another transition is in progress; the client retries after a backoff.
    ConcurrentTransactions = 51,
    ProducerFenced = 90,
    /// *New.* DescribeTransactions of an id the coordinator does not know.
    TransactionalIdNotFound = 105,
    /// *New.* KIP-890: the partition is not part of the ongoing transaction; the producer
    /// must abort.
    TransactionAbortable = 120,
}

impl TxnErrorCode {
    /// Every variant, in ascending code order.
    pub const ALL: &'static [TxnErrorCode] = &[
        TxnErrorCode::UnknownServerError,
        TxnErrorCode::None,
        TxnErrorCode::CoordinatorLoadInProgress,
        TxnErrorCode::CoordinatorNotAvailable,
        TxnErrorCode::NotCoordinator,
        TxnErrorCode::InvalidRequest,
        TxnErrorCode::InvalidProducerEpoch,
        TxnErrorCode::InvalidTxnState,
        TxnErrorCode::InvalidProducerIdMapping,
        TxnErrorCode::InvalidTransactionTimeout,
        TxnErrorCode::ConcurrentTransactions,
        TxnErrorCode::ProducerFenced,
        TxnErrorCode::TransactionalIdNotFound,
        TxnErrorCode::TransactionAbortable,
    ];

    /// The value written in `error_code` fields.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// Kafka's name for the code, as client logs print it.
    pub const fn name(self) -> &'static str {
        match self {
            TxnErrorCode::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            TxnErrorCode::None => "NONE",
            TxnErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            TxnErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            TxnErrorCode::NotCoordinator => "NOT_COORDINATOR",
            TxnErrorCode::InvalidRequest => "INVALID_REQUEST",
            TxnErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            TxnErrorCode::InvalidTxnState => "INVALID_TXN_STATE",
            TxnErrorCode::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            TxnErrorCode::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            TxnErrorCode::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            TxnErrorCode::ProducerFenced => "PRODUCER_FENCED",
            TxnErrorCode::TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND",
            TxnErrorCode::TransactionAbortable => "TRANSACTION_ABORTABLE",
        }
    }

    /// The code a coordinator answers when appending its record failed with `error`, as
    /// Kafka's `TransactionStateManager.appendTransactionToLog` maps it: replication
    /// trouble is retriable on the same coordinator, a lost leadership sends the client
    /// looking for the new one, and anything else is the server's fault.
    pub fn from_append_error(error: ErrorCode) -> TxnErrorCode {
        match error {
            ErrorCode::None => TxnErrorCode::None,
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::RequestTimedOut => TxnErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
                TxnErrorCode::NotCoordinator
            }
            _ => TxnErrorCode::UnknownServerError,
        }
    }

    /// Kafka's version rule for fencing (KIP-588): requests older than the version that
    /// introduced PRODUCER_FENCED get INVALID_PRODUCER_EPOCH instead, which old clients
    /// understand.
    pub(crate) fn for_version(self, api_version: i16, first_fenced_version: i16) -> TxnErrorCode {
        if self == TxnErrorCode::ProducerFenced && api_version < first_fenced_version {
            TxnErrorCode::InvalidProducerEpoch
        } else {
            self
        }
    }
}

impl From<TxnErrorCode> for i16 {
    fn from(code: TxnErrorCode) -> i16 {
        code.code()
    }
}

impl fmt::Display for TxnErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    #[test]
    fn codes_agree_with_kafka_protocol_crate() {
        for &code in TxnErrorCode::ALL {
            if code == TxnErrorCode::None {
                continue;
            }
            let theirs = ResponseError::try_from_code(code.code())
                .unwrap_or_else(|| panic!("{code} unknown to kafka-protocol"));
            assert_eq!(theirs.to_string(), format!("{code:?}"), "{code}");
        }
    }

    #[test]
    fn codes_shared_with_strom_codes_have_the_same_values() {
        for &code in TxnErrorCode::ALL {
            if let Some(theirs) = ErrorCode::from_code(code.code()) {
                assert_eq!(theirs.name(), code.name());
            }
        }
    }

    #[test]
    fn append_errors_map_like_kafka() {
        use TxnErrorCode as T;
        assert_eq!(
            T::from_append_error(ErrorCode::NotEnoughReplicas),
            T::CoordinatorNotAvailable
        );
        assert_eq!(
            T::from_append_error(ErrorCode::RequestTimedOut),
            T::CoordinatorNotAvailable
        );
        assert_eq!(
            T::from_append_error(ErrorCode::NotLeaderOrFollower),
            T::NotCoordinator
        );
        assert_eq!(
            T::from_append_error(ErrorCode::KafkaStorageError),
            T::NotCoordinator
        );
        assert_eq!(
            T::from_append_error(ErrorCode::MessageTooLarge),
            T::UnknownServerError
        );
    }

    #[test]
    fn old_versions_get_invalid_producer_epoch() {
        assert_eq!(
            TxnErrorCode::ProducerFenced.for_version(1, 2),
            TxnErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            TxnErrorCode::ProducerFenced.for_version(2, 2),
            TxnErrorCode::ProducerFenced
        );
        assert_eq!(TxnErrorCode::None.for_version(0, 2), TxnErrorCode::None);
    }
}
