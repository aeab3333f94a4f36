//! The transaction admin APIs, as `kafka-transactions.sh` and the admin clients use them:
//! DescribeTransactions and ListTransactions (answered from the coordinator's state for
//! the `__transaction_state` partitions this node leads; admin clients ask every broker)
//! and DescribeProducers (answered by each partition's leader from its producer state).

use std::sync::Arc;

use strom_log::TopicPartition;
use strom_txn::ListTransactionsRequest as TxnList;
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use strom_wire::kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use strom_wire::kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use strom_wire::kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TransactionalId,
};

use super::{str_bytes, topic_name};
use crate::broker::Broker;

pub(super) fn describe_transactions(
    broker: &Arc<Broker>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids: Vec<String> = req
        .transactional_ids
        .iter()
        .map(|i| i.0.to_string())
        .collect();
    let described = broker.txns().read(|c, _| c.describe_transactions(&ids));
    DescribeTransactionsResponse::default().with_transaction_states(
        described
            .into_iter()
            .map(|d| {
                DescribedState::default()
                    .with_error_code(d.error.code())
                    .with_transactional_id(TransactionalId(str_bytes(d.transactional_id)))
                    .with_transaction_state(str_bytes(d.transaction_state))
                    .with_transaction_timeout_ms(d.transaction_timeout_ms)
                    .with_transaction_start_time_ms(d.transaction_start_time_ms)
                    .with_producer_id(ProducerId(d.producer_id))
                    .with_producer_epoch(d.producer_epoch)
                    .with_topics(
                        d.topics
                            .into_iter()
                            .map(|(t, partitions)| {
                                TopicData::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

pub(super) fn list_transactions(
    broker: &Arc<Broker>,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let request = TxnList {
        state_filters: req.state_filters.iter().map(|s| s.to_string()).collect(),
        producer_id_filters: req.producer_id_filters.iter().map(|p| p.0).collect(),
        // v1 (KIP-994) has the duration filter; before it, every transaction.
        duration_filter_ms: if version >= 1 {
            req.duration_filter
        } else {
            -1
        },
    };
    let listed = broker
        .txns()
        .read(|c, now| c.list_transactions(&request, now));
    ListTransactionsResponse::default()
        .with_error_code(listed.error.code())
        .with_unknown_state_filters(
            listed
                .unknown_state_filters
                .into_iter()
                .map(str_bytes)
                .collect(),
        )
        .with_transaction_states(
            listed
                .transaction_states
                .into_iter()
                .map(|t| {
                    ListedState::default()
                        .with_transactional_id(TransactionalId(str_bytes(t.transactional_id)))
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_transaction_state(str_bytes(t.transaction_state.name()))
                })
                .collect(),
        )
}

pub(super) fn describe_producers(
    broker: &Arc<Broker>,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    DescribeProducersResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let known = broker.topics().get(&name);
                TopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                let exists =
                                    known.as_ref().is_some_and(|m| p >= 0 && p < m.partitions);
                                let found = if exists {
                                    broker
                                        .data()
                                        .producers(&TopicPartition::new(name.clone(), p))
                                } else {
                                    Err(crate::errors::Failure::new(
                                        ErrorCode::UnknownTopicOrPartition,
                                        format!("unknown partition {name}-{p}"),
                                    ))
                                };
                                let r = PartitionResponse::default().with_partition_index(p);
                                match found {
                                    Ok(producers) => r.with_active_producers(
                                        producers
                                            .into_iter()
                                            .map(|v| {
                                                ProducerState::default()
                                                    .with_producer_id(ProducerId(v.producer_id))
                                                    .with_producer_epoch(i32::from(
                                                        v.producer_epoch,
                                                    ))
                                                    .with_last_sequence(v.last_sequence)
                                                    .with_last_timestamp(v.last_timestamp)
                                                    .with_coordinator_epoch(v.coordinator_epoch)
                                                    .with_current_txn_start_offset(
                                                        v.current_txn_start_offset,
                                                    )
                                            })
                                            .collect(),
                                    ),
                                    Err(f) => r
                                        .with_error_code(f.code.code())
                                        .with_error_message(Some(str_bytes(f.message))),
                                }
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
