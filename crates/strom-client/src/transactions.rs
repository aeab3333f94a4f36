//! Transaction administration, as Kafka's `kafka-transactions.sh` does it: list the
//! transactions every broker coordinates, describe one (at its coordinator), list the
//! producers a partition's leader knows, and abort a transaction left open in a
//! partition (WriteTxnMarkers to the partition's leader with the producer's epoch and
//! coordinator epoch, as Kafka's Admin `abortTransaction` sends it).

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::Client;
use crate::error::ClientError;

/// A transaction as ListTransactions names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    /// Kafka's state name (`Ongoing`, `CompleteCommit`, ...).
    pub state: String,
    /// The broker that coordinates it.
    pub coordinator: i32,
}

/// A transaction as DescribeTransactions describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// -1 when no transaction is open.
    pub start_time_ms: i64,
    /// (topic, partition) of the open transaction.
    pub partitions: Vec<(String, i32)>,
}

/// A producer as a partition's leader knows it (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction in the partition, -1 when none.
    pub current_txn_start_offset: i64,
}

impl Client {
    /// Every transaction every broker coordinates, sorted by id.
    pub async fn list_transactions(&self) -> Result<Vec<TransactionListing>, ClientError> {
        let meta = self.metadata(Some(&[]), false).await?;
        let mut out = Vec::new();
        for b in &meta.brokers {
            let conn = self.broker(b.node_id).await?;
            let version = conn.version::<ListTransactionsRequest>()?;
            let resp = conn
                .send(&ListTransactionsRequest::default(), version)
                .await?;
            ClientError::check(resp.error_code, None, || {
                format!("list transactions on broker {}", b.node_id)
            })?;
            out.extend(
                resp.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                        coordinator: b.node_id,
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// Describes the transaction of `transactional_id` at its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        self.with_txn_coordinator(transactional_id, |conn| async move {
            let version = conn.version::<DescribeTransactionsRequest>()?;
            let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_string(transactional_id.to_owned())),
            ]);
            let resp = conn.send(&req, version).await?;
            let t = resp.transaction_states.into_iter().next().ok_or_else(|| {
                ClientError::Protocol(format!("no description of {transactional_id}"))
            })?;
            ClientError::check(t.error_code, None, || {
                format!("describe transaction {transactional_id}")
            })?;
            let coordinator = self
                .metadata(Some(&[]), false)
                .await?
                .brokers
                .iter()
                .find(|b| format!("{}:{}", b.host, b.port) == conn.addr())
                .map_or(-1, |b| b.node_id);
            Ok(TransactionDescription {
                transactional_id: transactional_id.to_owned(),
                coordinator,
                state: t.transaction_state.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                timeout_ms: t.transaction_timeout_ms,
                start_time_ms: t.transaction_start_time_ms,
                partitions: t
                    .topics
                    .iter()
                    .flat_map(|d| d.partitions.iter().map(|&p| (d.topic.0.to_string(), p)))
                    .collect(),
            })
        })
        .await
    }

    /// The producers the leader of `topic`/`partition` knows, by producer id.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>, ClientError> {
        self.with_leader(topic, partition, |conn| async move {
            let version = conn.version::<DescribeProducersRequest>()?;
            let req = DescribeProducersRequest::default().with_topics(vec![
                TopicRequest::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_indexes(vec![partition]),
            ]);
            let resp = conn.send(&req, version).await?;
            let p = resp
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| {
                    ClientError::Protocol(format!("no answer for {topic}-{partition}"))
                })?;
            ClientError::check(p.error_code, p.error_message.as_deref(), || {
                format!("describe producers of {topic}-{partition}")
            })?;
            Ok(p.active_producers
                .iter()
                .map(|s| ProducerDescription {
                    producer_id: s.producer_id.0,
                    producer_epoch: s.producer_epoch,
                    last_sequence: s.last_sequence,
                    last_timestamp: s.last_timestamp,
                    coordinator_epoch: s.coordinator_epoch,
                    current_txn_start_offset: s.current_txn_start_offset,
                })
                .collect())
        })
        .await
    }

    /// Aborts the transaction open in `topic`/`partition` that started at `start_offset`
    /// (see `describe_producers`): an ABORT marker with the producer's epoch and
    /// coordinator epoch, written by the partition's leader. For a transaction whose
    /// coordinator lost track of it (a hanging transaction); the producer id it aborted.
    pub async fn abort_transaction(
        &self,
        topic: &str,
        partition: i32,
        start_offset: i64,
    ) -> Result<i64, ClientError> {
        let producers = self.describe_producers(topic, partition).await?;
        let p = producers
            .iter()
            .find(|p| p.current_txn_start_offset == start_offset)
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "no transaction of {topic}-{partition} starts at offset {start_offset}"
                ))
            })?
            .clone();
        let epoch = i16::try_from(p.producer_epoch)
            .map_err(|_| ClientError::Protocol(format!("epoch {}", p.producer_epoch)))?;
        self.with_leader(topic, partition, |conn| async move {
            let version = conn.version::<WriteTxnMarkersRequest>()?;
            let req = WriteTxnMarkersRequest::default().with_markers(vec![
                WritableTxnMarker::default()
                    .with_producer_id(ProducerId(p.producer_id))
                    .with_producer_epoch(epoch)
                    .with_transaction_result(false)
                    .with_coordinator_epoch(p.coordinator_epoch)
                    .with_topics(vec![
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_partition_indexes(vec![partition]),
                    ]),
            ]);
            let resp = conn.send(&req, version).await?;
            let code = resp
                .markers
                .iter()
                .flat_map(|m| &m.topics)
                .flat_map(|t| &t.partitions)
                .map(|r| r.error_code)
                .next()
                .unwrap_or(0);
            ClientError::check(code, None, || {
                format!("abort the transaction at {topic}-{partition} offset {start_offset}")
            })
        })
        .await?;
        Ok(p.producer_id)
    }
}
