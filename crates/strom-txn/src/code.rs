//! How the transaction coordinator chooses among Kafka's error codes (the codes
//! themselves are strom-codes' [`ErrorCode`]).

use strom_codes::ErrorCode;

/// The code a coordinator answers when appending its record failed with `error`, as
/// Kafka's `TransactionStateManager.appendTransactionToLog` maps it: replication trouble
/// is retriable on the same coordinator, a lost leadership sends the client looking for
/// the new one, and anything else is the server's fault.
pub fn from_append_error(error: ErrorCode) -> ErrorCode {
    match error {
        ErrorCode::None => ErrorCode::None,
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        _ => ErrorCode::UnknownServerError,
    }
}

/// Kafka's version rule for fencing (KIP-588): requests older than the version that
/// introduced PRODUCER_FENCED get INVALID_PRODUCER_EPOCH instead, which old clients
/// understand.
pub(crate) fn for_version(
    code: ErrorCode,
    api_version: i16,
    first_fenced_version: i16,
) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && api_version < first_fenced_version {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_errors_map_like_kafka() {
        use ErrorCode as E;
        assert_eq!(
            from_append_error(E::NotEnoughReplicas),
            E::CoordinatorNotAvailable
        );
        assert_eq!(
            from_append_error(E::RequestTimedOut),
            E::CoordinatorNotAvailable
        );
        assert_eq!(from_append_error(E::NotLeaderOrFollower), E::NotCoordinator);
        assert_eq!(from_append_error(E::KafkaStorageError), E::NotCoordinator);
        assert_eq!(from_append_error(E::MessageTooLarge), E::UnknownServerError);
    }

    #[test]
    fn old_versions_get_invalid_producer_epoch() {
        assert_eq!(
            for_version(ErrorCode::ProducerFenced, 1, 2),
            ErrorCode::InvalidProducerEpoch
        );
        assert_eq!(
            for_version(ErrorCode::ProducerFenced, 2, 2),
            ErrorCode::ProducerFenced
        );
        assert_eq!(for_version(ErrorCode::None, 0, 2), ErrorCode::None);
    }
}
