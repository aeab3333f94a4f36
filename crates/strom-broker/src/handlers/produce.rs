//! Produce: validate and append each partition's batches; answer acks=1 once the
//! leader's copy is fsynced (written, under a flush policy that fsyncs later), acks=all
//! once committed on a majority, and acks=0 not at all.

use std::sync::Arc;

use strom_batch::RecordBatchHeader;
use strom_log::TopicPartition;
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use strom_wire::kafka_protocol::messages::{
    ProduceRequest, ProduceResponse, ResponseKind, TransactionalId,
};

use super::txn::{Ask, Check, TxnCheck, verify_in_txn};
use super::{Reply, Response, str_bytes};
use crate::broker::Broker;
use crate::errors::Failure;
use crate::partitions::{Appended, Origin};

struct PartitionResult {
    tp: TopicPartition,
    outcome: Result<Appended, Failure>,
    /// Records waiting for a remote transaction coordinator's KIP-890 answer; appended
    /// (and `outcome` set) by [`resolve_deferred`] before the commit waits.
    deferred: Option<Deferred>,
}

/// A transactional batch whose partition must be confirmed (or, for transaction version
/// 2, added) by the transaction coordinator before it is appended.
struct Deferred {
    records: bytes::Bytes,
    check: Ask,
}

pub(super) fn produce(broker: &Arc<Broker>, req: ProduceRequest, version: i16) -> Reply {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    let mut results: Results = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let known = broker.topics().get(&name);
        let mut parts = Vec::new();
        for p in topic.partition_data {
            let tp = TopicPartition::new(name.clone(), p.index);
            let mut deferred = None;
            let outcome = if !matches!(acks, -1..=1) {
                Err(Failure::new(
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks must be -1, 0 or 1, got {acks}"),
                ))
            } else if known
                .as_ref()
                .is_none_or(|t| p.index < 0 || p.index >= t.partitions)
            {
                Err(Failure::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("unknown partition {}", tp.dir_name()),
                ))
            } else if known.as_ref().is_some_and(|t| t.internal) {
                // Only the broker writes its internal topics (the group coordinator
                // appends to __consumer_offsets directly), as in Kafka.
                Err(Failure::new(
                    ErrorCode::InvalidTopicException,
                    format!("cannot produce to internal topic {name}"),
                ))
            } else {
                match p.records.as_ref() {
                    Some(records) if !records.is_empty() => {
                        match append(broker, &tp, records, req.transactional_id.as_ref(), version) {
                            Ok(Appending::Done(a)) => Ok(a),
                            Ok(Appending::Ask(check)) => {
                                deferred = Some(Deferred {
                                    records: records.clone(),
                                    check,
                                });
                                Err(Failure::new(
                                    ErrorCode::InvalidRequiredAcks,
                                    "transactional writes need acks=all",
                                ))
                            }
                            Err(f) => Err(f),
                        }
                    }
                    _ => Err(Failure::new(ErrorCode::CorruptMessage, "no records")),
                }
            };
            if let Err(f) = &outcome
                && deferred.is_none()
            {
                tracing::debug!(partition = %tp.dir_name(), code = ?f.code, message = %f.message, "produce refused");
            }
            parts.push(PartitionResult {
                tp,
                outcome,
                deferred,
            });
        }
        results.push((topic.name, parts));
    }
    if acks == 0 {
        if let Some(f) = results
            .iter()
            .flat_map(|(_, p)| p)
            .find_map(|r| r.outcome.as_ref().err())
        {
            return Reply::Close(format!("acks=0 produce failed: {}", f.message));
        }
        return Reply::Nothing;
    }
    let broker = broker.clone();
    // One deadline for the whole request, as Kafka's `timeout_ms` means: each
    // partition's wait gets what is left of it, so a request over N partitions whose
    // commits stall is answered after one timeout, not N.
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms.max(1) as u64);
    if results
        .iter()
        .flat_map(|(_, p)| p)
        .all(|r| r.deferred.is_none())
    {
        return wait_for_acks(broker, results, acks, deadline, version);
    }
    // Partitions a remote coordinator must confirm first (KIP-890): their appends happen
    // before the connection handles its next request, or a producer's next batch, sent
    // right behind this one, would be appended first and its sequence be out of order.
    // Kafka handles one request per connection at a time; this is the one place Strom
    // must do the same.
    Reply::First(Box::pin(async move {
        resolve_deferred(&broker, &mut results, version).await;
        wait_for_acks(broker, results, acks, deadline, version)
    }))
}

type Results = Vec<(
    strom_wire::kafka_protocol::messages::TopicName,
    Vec<PartitionResult>,
)>;

/// Answers once what was appended is durable as `acks` asks, by `deadline`.
fn wait_for_acks(
    broker: Arc<Broker>,
    mut results: Results,
    acks: i16,
    deadline: tokio::time::Instant,
    version: i16,
) -> Reply {
    let left = move || deadline.saturating_duration_since(tokio::time::Instant::now());
    if acks == 1 {
        // Answered once the leader's own copy is on disk (see `wait_local_durable`),
        // not at proposal: a write or fsync that fails must not have been acknowledged.
        return Reply::Later(Box::pin(async move {
            for (_, parts) in results.iter_mut() {
                for r in parts.iter_mut() {
                    if let Ok(a) = &r.outcome
                        && let Err(f) = broker
                            .data()
                            .wait_local_durable(&r.tp, a.last_offset + 1, left())
                            .await
                    {
                        tracing::info!(partition = %r.tp.dir_name(), error = %f.message, "acks=1 not durable");
                        r.outcome = Err(f);
                    }
                }
            }
            Response::Kind(ResponseKind::Produce(response(results, version)))
        }));
    }
    Reply::Later(Box::pin(async move {
        for (_, parts) in results.iter_mut() {
            for r in parts.iter_mut() {
                if let Ok(a) = &mut r.outcome
                    && let Err(f) = broker
                        .data()
                        .wait_committed(&r.tp, &mut a.commit, left())
                        .await
                {
                    tracing::info!(partition = %r.tp.dir_name(), error = %f.message, "acks=all not committed");
                    r.outcome = Err(f);
                }
            }
        }
        Response::Kind(ResponseKind::Produce(response(results, version)))
    }))
}

/// What appending one partition's records came to.
enum Appending {
    Done(Appended),
    /// First ask the transaction coordinator.
    Ask(Ask),
}

/// Appends one partition's records; a transactional batch that would open its
/// producer's transaction in this partition is first checked with the transaction
/// coordinator (KIP-890 part 1): the partition must have been added to the transaction.
fn append(
    broker: &Broker,
    tp: &TopicPartition,
    records: &[u8],
    transactional_id: Option<&TransactionalId>,
    version: i16,
) -> Result<Appending, Failure> {
    let verified = match RecordBatchHeader::parse(records, 0) {
        Ok(h) if h.is_transactional() && h.has_producer_id() => {
            let Some(id) = transactional_id else {
                return Err(Failure::new(
                    ErrorCode::TransactionalIdAuthorizationFailed,
                    "a transactional batch needs the request's transactional id",
                ));
            };
            // Produce v12 comes from transaction version 2 clients, which leave adding
            // the partition to the leader (KIP-890 part 2).
            let how = if version >= 12 {
                TxnCheck::Add
            } else {
                TxnCheck::Verify
            };
            match verify_in_txn(
                broker,
                tp,
                h.producer_id,
                h.producer_epoch,
                id.0.as_str(),
                how,
            )
            .map_err(|f| produce_failure(f, version))?
            {
                Check::Done(token) => token,
                Check::Ask(remote) => return Ok(Appending::Ask(remote)),
            }
        }
        _ => None,
    };
    broker
        .data()
        .append_from(tp, records, Origin::Client { verified })
        .map(Appending::Done)
}

/// Asks the remote coordinators of deferred partitions, then appends their records.
async fn resolve_deferred(broker: &Broker, results: &mut Results, version: i16) {
    for (_, parts) in results.iter_mut() {
        for r in parts.iter_mut() {
            let Some(d) = r.deferred.take() else { continue };
            r.outcome = match d
                .check
                .ask(broker)
                .await
                .map_err(|f| produce_failure(f, version))
            {
                Ok(token) => {
                    broker
                        .data()
                        .append_from(&r.tp, &d.records, Origin::Client { verified: token })
                }
                Err(f) => Err(f),
            };
            if let Err(f) = &r.outcome {
                tracing::debug!(partition = %r.tp.dir_name(), code = ?f.code, message = %f.message, "produce refused");
            }
        }
    }
}

/// A coordinator's refusal as Produce (of `version`) answers it.
fn produce_failure(f: Failure, version: i16) -> Failure {
    let code = match f.code {
        // Retriable: old clients retry NOT_ENOUGH_REPLICAS without a metadata refresh,
        // which is how Kafka translates these.
        ErrorCode::ConcurrentTransactions
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotCoordinator
        | ErrorCode::RequestTimedOut => ErrorCode::NotEnoughReplicas,
        // Produce up to v10 knows no TRANSACTION_ABORTABLE (KIP-890 added it in v11).
        ErrorCode::TransactionAbortable if version < 11 => ErrorCode::InvalidTxnState,
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        other => other,
    };
    Failure::new(code, f.message)
}

fn response(results: Results, version: i16) -> ProduceResponse {
    let responses = results
        .into_iter()
        .map(|(name, parts)| {
            let partition_responses = parts
                .into_iter()
                .map(|r| {
                    let base = PartitionProduceResponse::default()
                        .with_index(r.tp.partition)
                        .with_log_append_time_ms(-1);
                    match r.outcome {
                        Ok(a) => base
                            .with_base_offset(a.base_offset)
                            .with_log_append_time_ms(a.log_append_time)
                            .with_log_start_offset(a.log_start_offset),
                        Err(f) => {
                            let resp = base
                                .with_error_code(f.code.code())
                                .with_base_offset(-1)
                                .with_log_start_offset(-1);
                            if version >= 8 {
                                // Kafka names the record to blame as well as the batch.
                                let record_errors = f
                                    .record_index
                                    .map(|i| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(i)
                                            .with_batch_index_error_message(Some(str_bytes(
                                                f.message.clone(),
                                            )))
                                    })
                                    .into_iter()
                                    .collect();
                                resp.with_error_message(Some(str_bytes(f.message)))
                                    .with_record_errors(record_errors)
                            } else {
                                resp
                            }
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use strom_wire::kafka_protocol::messages::TopicName;

    use super::*;

    fn refused(version: i16) -> PartitionProduceResponse {
        let mut f = Failure::new(ErrorCode::InvalidRecord, "record 3 is malformed: x");
        f.record_index = Some(3);
        let results = vec![(
            TopicName(str_bytes("t")),
            vec![PartitionResult {
                tp: TopicPartition::new("t", 0),
                outcome: Err(f),
                deferred: None,
            }],
        )];
        response(results, version).responses[0].partition_responses[0].clone()
    }

    /// Kafka names the record to blame in `record_errors` from Produce v8 on.
    #[test]
    fn record_errors_name_the_record_from_v8() {
        let p = refused(8);
        assert_eq!(p.error_code, ErrorCode::InvalidRecord.code());
        assert_eq!(p.record_errors.len(), 1);
        assert_eq!(p.record_errors[0].batch_index, 3);
        assert_eq!(p.error_message.as_deref(), Some("record 3 is malformed: x"));
        let p = refused(7);
        assert_eq!(p.error_code, ErrorCode::InvalidRecord.code());
        assert!(p.record_errors.is_empty() && p.error_message.is_none());
    }
}
