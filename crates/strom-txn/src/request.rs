//! The requests the coordinator handles, as plain structs mirroring the Kafka messages
//! (names as in the Kafka schemas) so the broker translates 1:1 while this crate stays
//! independent of any codec.

use crate::metadata::TopicPartition;

/// InitProducerId with a transactional id (versions 0-5). Without one the broker hands
/// out a producer id itself; the coordinator is not involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// Versions below 4 get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
    pub api_version: i16,
    pub transactional_id: String,
    pub transaction_timeout_ms: i32,
    /// v3+ (KIP-360): the id and epoch the producer has, when it re-initialises after an
    /// error; both -1 for a fresh producer. One without the other is INVALID_REQUEST.
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// AddPartitionsToTxn for one transaction (the client's form, v0-3, or one entry of the
/// broker's batched form, v4+, with `verify_only` false; verification goes to
/// [`verify_partitions`](crate::TransactionCoordinator::verify_partitions)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// Versions below 2 get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
    pub api_version: i16,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partitions: Vec<TopicPartition>,
    /// The producer's transaction version: 2 when a partition leader adds the partition
    /// on behalf of a transaction-version-2 producer (KIP-890 part 2), else 0.
    pub transaction_version: i16,
}

/// AddOffsetsToTxn (versions 0-4): adds the group's `__consumer_offsets` partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    /// Versions below 2 get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
    pub api_version: i16,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

/// EndTxn (versions 0-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    /// Versions below 2 get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED;
    /// version 5+ is transaction version 2 (the epoch is bumped at every end, and the
    /// response carries the producer id and epoch to use next), as in Kafka.
    pub api_version: i16,
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub committed: bool,
}

impl EndTxnRequest {
    /// The client's transaction version, by Kafka's rule: EndTxn v5+ is version 2.
    pub fn transaction_version(&self) -> i16 {
        if self.api_version >= 5 { 2 } else { 0 }
    }
}

/// ListTransactions (versions 0-1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTransactionsRequest {
    /// State names (`Ongoing`); empty lists every state. Unknown names are echoed back.
    pub state_filters: Vec<String>,
    /// Empty lists every producer.
    pub producer_id_filters: Vec<i64>,
    /// v1 (KIP-994): only transactions running longer than this many ms; -1 for all.
    pub duration_filter_ms: i64,
}
