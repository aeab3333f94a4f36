//! The coordinator's settings, with Kafka's defaults.

/// Settings of the transaction coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`: where each transactional id lives. Once
    /// `__transaction_state` exists its real count must be used (see
    /// [`TransactionCoordinator::set_transaction_state_partitions`](crate::TransactionCoordinator::set_transaction_state_partitions)).
    pub transaction_state_partitions: i32,
    /// `offsets.topic.num.partitions`: AddOffsetsToTxn adds the group's
    /// `__consumer_offsets` partition to the transaction.
    pub offsets_topic_partitions: i32,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask
    /// for (Kafka: 15 minutes).
    pub max_timeout_ms: i32,
    /// How long to wait before sending marker work again after the broker reported it
    /// failed (Kafka's `retry.backoff.ms`, 100 ms).
    pub marker_retry_backoff_ms: i64,
    /// How long marker work may stay unreported before it is sent again, in case the
    /// broker lost it (Kafka's `request.timeout.ms`, 30 s).
    pub marker_timeout_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            transaction_state_partitions: 50,
            offsets_topic_partitions: 50,
            max_timeout_ms: 15 * 60 * 1000,
            marker_retry_backoff_ms: 100,
            marker_timeout_ms: 30_000,
        }
    }
}
