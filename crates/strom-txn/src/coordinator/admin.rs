//! DescribeTransactions and ListTransactions: read-only views for admin tools.

use std::collections::BTreeSet;

use crate::request::ListTransactionsRequest;
use crate::response::{DescribedTransaction, ListTransactionsResponse, ListedTransaction};
use crate::state::TransactionState;
use strom_codes::ErrorCode;

use super::{PartitionState, TransactionCoordinator};

impl TransactionCoordinator {
    /// DescribeTransactions: one answer per id, in the request's order.
    pub fn describe_transactions(&self, transactional_ids: &[String]) -> Vec<DescribedTransaction> {
        transactional_ids
            .iter()
            .map(|id| self.describe(id))
            .collect()
    }

    fn describe(&self, id: &str) -> DescribedTransaction {
        if id.is_empty() {
            return DescribedTransaction::error(id, ErrorCode::InvalidRequest);
        }
        if let Err(error) = self.lookup(id) {
            return DescribedTransaction::error(id, error);
        }
        let Some(meta) = self
            .txns
            .get(id)
            .filter(|m| m.state != TransactionState::Dead)
        else {
            return DescribedTransaction::error(id, ErrorCode::TransactionalIdNotFound);
        };
        let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
        for tp in &meta.partitions {
            match topics.last_mut() {
                Some((topic, partitions)) if *topic == tp.topic => partitions.push(tp.partition),
                _ => topics.push((tp.topic.clone(), vec![tp.partition])),
            }
        }
        DescribedTransaction {
            error: ErrorCode::None,
            transactional_id: id.to_string(),
            transaction_state: meta.state.name().to_string(),
            transaction_timeout_ms: meta.timeout_ms,
            transaction_start_time_ms: meta.start_timestamp,
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            topics,
        }
    }

    /// ListTransactions of the served partitions; COORDINATOR_LOAD_IN_PROGRESS while any
    /// partition loads, as Kafka answers. The duration filter (KIP-994) keeps transactions
    /// that started more than `duration_filter_ms` before `now`.
    pub fn list_transactions(
        &self,
        req: &ListTransactionsRequest,
        now: i64,
    ) -> ListTransactionsResponse {
        let mut response = ListTransactionsResponse {
            error: ErrorCode::None,
            unknown_state_filters: Vec::new(),
            transaction_states: Vec::new(),
        };
        if self
            .partitions
            .values()
            .any(|p| matches!(p, PartitionState::Loading { .. }))
        {
            response.error = ErrorCode::CoordinatorLoadInProgress;
            return response;
        }
        let mut states = BTreeSet::new();
        for name in &req.state_filters {
            match TransactionState::from_name(name) {
                Some(state) => {
                    states.insert(state);
                }
                None => response.unknown_state_filters.push(name.clone()),
            }
        }
        response.transaction_states = self
            .transactions()
            .filter(|m| {
                m.state != TransactionState::Dead
                    && (req.producer_id_filters.is_empty()
                        || req.producer_id_filters.contains(&m.producer_id))
                    && (req.state_filters.is_empty() || states.contains(&m.state))
                    && (req.duration_filter_ms < 0
                        || now.saturating_sub(m.start_timestamp) > req.duration_filter_ms)
            })
            .map(|m| ListedTransaction {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.producer_id,
                transaction_state: m.state,
            })
            .collect();
        response
    }
}
