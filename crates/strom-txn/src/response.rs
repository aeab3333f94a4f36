//! The responses the coordinator produces, as plain structs mirroring the Kafka messages
//! (throttle times are the broker's to fill in).

use crate::metadata::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TopicPartition};
use crate::state::TransactionState;
use strom_codes::ErrorCode;

/// The answer to one request that may wait for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
}

impl Response {
    /// The error of the response (the first partition's for AddPartitionsToTxn).
    pub fn error(&self) -> ErrorCode {
        match self {
            Response::InitProducerId(r) => r.error,
            Response::AddPartitionsToTxn(r) => {
                r.results.first().map_or(ErrorCode::None, |(_, e)| *e)
            }
            Response::AddOffsetsToTxn(r) => r.error,
            Response::EndTxn(r) => r.error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    pub error: ErrorCode,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl InitProducerIdResponse {
    pub(crate) fn error(error: ErrorCode) -> Self {
        InitProducerIdResponse {
            error,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        }
    }
}

/// The result of one transaction's AddPartitionsToTxn (or of its verification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnResponse {
    pub transactional_id: String,
    /// One entry per requested partition, in the request's order.
    pub results: Vec<(TopicPartition, ErrorCode)>,
}

impl AddPartitionsToTxnResponse {
    pub(crate) fn all(
        transactional_id: &str,
        partitions: &[TopicPartition],
        error: ErrorCode,
    ) -> Self {
        AddPartitionsToTxnResponse {
            transactional_id: transactional_id.to_string(),
            results: partitions.iter().map(|p| (p.clone(), error)).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnResponse {
    pub error: ErrorCode,
}

/// EndTxn's answer; `producer_id`/`producer_epoch` (v5+) are what a transaction version 2
/// producer uses next, -1 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnResponse {
    pub error: ErrorCode,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl EndTxnResponse {
    pub(crate) fn error(error: ErrorCode) -> Self {
        EndTxnResponse {
            error,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        }
    }
}

/// One transaction of DescribeTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedTransaction {
    pub error: ErrorCode,
    pub transactional_id: String,
    /// Kafka's state name; empty on error.
    pub transaction_state: String,
    pub transaction_timeout_ms: i32,
    /// -1 when no transaction is open.
    pub transaction_start_time_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Topics in name order, each with its partitions in order.
    pub topics: Vec<(String, Vec<i32>)>,
}

impl DescribedTransaction {
    pub(crate) fn error(transactional_id: &str, error: ErrorCode) -> Self {
        DescribedTransaction {
            error,
            transactional_id: transactional_id.to_string(),
            transaction_state: String::new(),
            transaction_timeout_ms: 0,
            transaction_start_time_ms: -1,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            topics: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTransactionsResponse {
    pub error: ErrorCode,
    /// State filters that name no state, echoed back as Kafka does.
    pub unknown_state_filters: Vec<String>,
    /// In transactional id order.
    pub transaction_states: Vec<ListedTransaction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    pub producer_id: i64,
    pub transaction_state: TransactionState,
}
