//! The transactional producer's APIs: InitProducerId with a transactional id,
//! AddPartitionsToTxn (the client's form, v0-3, and the brokers' batched form, v4, whose
//! verify-only entries are KIP-890's check), AddOffsetsToTxn and EndTxn, translated 1:1
//! into the transaction coordinator's requests and answered when it answers (after its
//! record is committed).

use std::sync::Arc;

use strom_log::TopicPartition;
use strom_txn::TopicPartition as TxnPartition;
use strom_txn::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, Effects,
    EndTxnRequest, ErrorCode, InitProducerIdRequest, RequestId, Response as TxnResponse,
    TransactionCoordinator,
};
use strom_wire::kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use strom_wire::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use strom_wire::kafka_protocol::messages::{
    AddOffsetsToTxnRequest as WireAddOffsets, AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest as WireAddPartitions, AddPartitionsToTxnResponse as WireAddResponse,
    EndTxnRequest as WireEndTxn, EndTxnResponse, InitProducerIdRequest as WireInit,
    InitProducerIdResponse, ProducerId, ResponseKind, TransactionalId,
};

use super::{Reply, Response, topic_name};
use crate::broker::Broker;
use crate::errors::Failure;
use crate::txns::TXN_TOPIC;

type Allocator<'a> = &'a dyn Fn() -> Result<i64, ErrorCode>;

/// How long a request refused with CONCURRENT_TRANSACTIONS is retried inside the broker.
const CONCURRENT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A coordinator call, repeatable (it is made again on CONCURRENT_TRANSACTIONS).
type CoordinatorCall =
    dyn Fn(&mut TransactionCoordinator, RequestId, i64, Allocator<'_>) -> Effects + Send + Sync;

/// Runs a coordinator call and answers with `to_wire` of its response, at once or when
/// it arrives; `None` (the coordinator dropped the request: shutdown) answers
/// COORDINATOR_NOT_AVAILABLE through `to_wire`.
fn call<F>(
    broker: &Arc<Broker>,
    f: impl Fn(&mut TransactionCoordinator, RequestId, i64, Allocator<'_>) -> Effects
    + Send
    + Sync
    + 'static,
    to_wire: F,
) -> Reply
where
    F: FnOnce(Option<TxnResponse>) -> ResponseKind + Send + 'static,
{
    let mut progress = broker.txns().subscribe_progress();
    let mut rx = broker.txns().call(&f);
    let first = match rx.try_recv() {
        Ok(r) if !busy(&r) => return Reply::now(Response::Kind(to_wire(Some(r)))),
        Ok(r) => Some(r),
        Err(_) => None,
    };
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let answer = match first {
            Some(r) => Some(r),
            None => rx.await.ok(),
        };
        let answer = settle(&broker, &mut progress, answer, &f).await;
        Response::Kind(to_wire(answer))
    }))
}

fn busy(r: &TxnResponse) -> bool {
    r.error() == ErrorCode::ConcurrentTransactions
}

/// Makes a coordinator call and waits for its answer (see [`settle`]).
async fn call_async(broker: &Broker, f: &CoordinatorCall) -> Option<TxnResponse> {
    let mut progress = broker.txns().subscribe_progress();
    let answer = broker.txns().call(f).await.ok();
    settle(broker, &mut progress, answer, f).await
}

/// CONCURRENT_TRANSACTIONS (the previous transaction's markers are still being written,
/// usually for a few ms) is retried each time the coordinator makes progress, for up to
/// [`CONCURRENT_WAIT`], before it is answered: clients back off 20 ms or more on it,
/// which would cap a producer of small transactions far below what the broker can do.
/// The answer is the same a client's own retry would get, only sooner.
async fn settle(
    broker: &Broker,
    progress: &mut tokio::sync::watch::Receiver<u64>,
    mut answer: Option<TxnResponse>,
    f: &CoordinatorCall,
) -> Option<TxnResponse> {
    let deadline = tokio::time::Instant::now() + CONCURRENT_WAIT;
    while answer.as_ref().is_some_and(busy) {
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep_until(deadline) => break,
        }
        answer = broker.txns().call(f).await.ok();
    }
    answer
}

/// InitProducerId with a transactional id (without one, `producer_id.rs` answers).
pub(super) fn init_producer_id(
    broker: &Arc<Broker>,
    r: WireInit,
    transactional_id: String,
    version: i16,
) -> Reply {
    let req = InitProducerIdRequest {
        api_version: version,
        transactional_id,
        transaction_timeout_ms: r.transaction_timeout_ms,
        producer_id: r.producer_id.0,
        producer_epoch: r.producer_epoch,
    };
    call(
        broker,
        move |c, id, now, alloc| c.init_producer_id(id, &req, now, alloc),
        |r| {
            let (error, pid, epoch) = match r {
                Some(TxnResponse::InitProducerId(r)) => (r.error, r.producer_id, r.producer_epoch),
                _ => (ErrorCode::CoordinatorNotAvailable, -1, -1),
            };
            ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(error.code())
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
            )
        },
    )
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<TxnPartition> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TxnPartition::new(t.name.0.to_string(), p))
        })
        .collect()
}

/// One transaction's results grouped by topic, in the request's order.
fn topic_results(results: &[(TxnPartition, ErrorCode)]) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (tp, error) in results {
        let p = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(tp.partition)
            .with_partition_error_code(error.code());
        match out.last_mut() {
            Some(t) if t.name.0.as_str() == tp.topic => t.results_by_partition.push(p),
            _ => out.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic_name(tp.topic.clone()))
                    .with_results_by_partition(vec![p]),
            ),
        }
    }
    out
}

/// Partitions that do not exist are UNKNOWN_TOPIC_OR_PARTITION and the others
/// OPERATION_NOT_ATTEMPTED, as Kafka answers before asking its coordinator.
fn unknown_partitions(
    broker: &Broker,
    partitions: &[TxnPartition],
) -> Option<Vec<(TxnPartition, ErrorCode)>> {
    let exists = |p: &TxnPartition| broker.topics().has_partition(&p.topic, p.partition);
    if partitions.iter().all(exists) {
        return None;
    }
    Some(
        partitions
            .iter()
            .map(|p| {
                let e = if exists(p) {
                    ErrorCode::OperationNotAttempted
                } else {
                    ErrorCode::UnknownTopicOrPartition
                };
                (p.clone(), e)
            })
            .collect(),
    )
}

pub(super) fn add_partitions_to_txn(
    broker: &Arc<Broker>,
    r: WireAddPartitions,
    version: i16,
) -> Reply {
    if version <= 3 {
        let partitions = partitions_of(&r.v3_and_below_topics);
        let to_wire = |results: Vec<(TxnPartition, ErrorCode)>| {
            ResponseKind::AddPartitionsToTxn(
                WireAddResponse::default()
                    .with_results_by_topic_v3_and_below(topic_results(&results)),
            )
        };
        if let Some(results) = unknown_partitions(broker, &partitions) {
            return Reply::now(Response::Kind(to_wire(results)));
        }
        let req = AddPartitionsToTxnRequest {
            api_version: version,
            transactional_id: r.v3_and_below_transactional_id.0.to_string(),
            producer_id: r.v3_and_below_producer_id.0,
            producer_epoch: r.v3_and_below_producer_epoch,
            partitions: partitions.clone(),
            transaction_version: 0,
        };
        return call(
            broker,
            move |c, id, now, _| c.add_partitions_to_txn(id, &req, now),
            move |resp| {
                to_wire(match resp {
                    Some(TxnResponse::AddPartitionsToTxn(a)) => a.results,
                    _ => partitions
                        .iter()
                        .map(|p| (p.clone(), ErrorCode::CoordinatorNotAvailable))
                        .collect(),
                })
            },
        );
    }
    // v4+: a partition leader's batch of transactions. Verify-only entries (KIP-890 part
    // 1) are answered from the coordinator's state; the others add partitions on behalf
    // of a transaction version 2 client whose Produce or TxnOffsetCommit reached that
    // leader, as Kafka's coordinator does for brokers.
    let entries: Vec<Entry> = r
        .transactions
        .iter()
        .map(|t| Entry {
            transactional_id: t.transactional_id.0.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            verify_only: t.verify_only,
            partitions: partitions_of(&t.topics),
        })
        .collect();
    let answer = |results: Vec<AddPartitionsToTxnResponse>| {
        let results = results
            .into_iter()
            .map(|r| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(super::str_bytes(r.transactional_id)))
                    .with_topic_results(topic_results(&r.results))
            })
            .collect();
        Response::Kind(ResponseKind::AddPartitionsToTxn(
            WireAddResponse::default().with_results_by_transaction(results),
        ))
    };
    if entries.iter().all(|e| e.verify_only) {
        return Reply::now(answer(entries.iter().map(|e| e.verify(broker)).collect()));
    }
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(entries.len());
        for e in &entries {
            results.push(if e.verify_only {
                e.verify(&broker)
            } else {
                e.add(&broker, version).await
            });
        }
        answer(results)
    }))
}

/// One transaction of a partition leader's AddPartitionsToTxn (v4+).
struct Entry {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    partitions: Vec<TxnPartition>,
}

impl Entry {
    fn verify(&self, broker: &Broker) -> AddPartitionsToTxnResponse {
        broker.txns().read(|c, _| {
            c.verify_partitions(
                &self.transactional_id,
                self.producer_id,
                self.producer_epoch,
                &self.partitions,
            )
        })
    }

    /// Adds the partitions to the transaction, as transaction version 2 does.
    async fn add(&self, broker: &Broker, version: i16) -> AddPartitionsToTxnResponse {
        if let Some(results) = unknown_partitions(broker, &self.partitions) {
            return AddPartitionsToTxnResponse {
                transactional_id: self.transactional_id.clone(),
                results,
            };
        }
        let code = add_here(
            broker,
            version2_add(
                version,
                &self.transactional_id,
                self.producer_id,
                self.producer_epoch,
                self.partitions.clone(),
            ),
        )
        .await;
        match code {
            Ok(r) => r,
            Err(code) => AddPartitionsToTxnResponse {
                transactional_id: self.transactional_id.clone(),
                results: self.partitions.iter().map(|p| (p.clone(), code)).collect(),
            },
        }
    }
}

/// The coordinator's request that adds `partitions` to a transaction on behalf of a
/// transaction version 2 client (a partition leader asks, not the client).
fn version2_add(
    api_version: i16,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: Vec<TxnPartition>,
) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest {
        api_version,
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        partitions,
        transaction_version: 2,
    }
}

/// Adds partitions to a transaction with this node's coordinator; `Err` when it gave no
/// answer (it stopped).
async fn add_here(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, ErrorCode> {
    let f = move |c: &mut TransactionCoordinator, id, now, _: Allocator<'_>| {
        c.add_partitions_to_txn(id, &req, now)
    };
    match call_async(broker, &f).await {
        Some(TxnResponse::AddPartitionsToTxn(a)) => Ok(a),
        _ => Err(ErrorCode::CoordinatorNotAvailable),
    }
}

pub(super) fn add_offsets_to_txn(broker: &Arc<Broker>, r: WireAddOffsets, version: i16) -> Reply {
    let req = AddOffsetsToTxnRequest {
        api_version: version,
        transactional_id: r.transactional_id.0.to_string(),
        producer_id: r.producer_id.0,
        producer_epoch: r.producer_epoch,
        group_id: r.group_id.0.to_string(),
    };
    call(
        broker,
        move |c, id, now, _| c.add_offsets_to_txn(id, &req, now),
        |resp| {
            let error = match resp {
                Some(TxnResponse::AddOffsetsToTxn(a)) => a.error,
                _ => ErrorCode::CoordinatorNotAvailable,
            };
            ResponseKind::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(error.code()),
            )
        },
    )
}

pub(super) fn end_txn(broker: &Arc<Broker>, r: WireEndTxn, version: i16) -> Reply {
    let req = EndTxnRequest {
        api_version: version,
        transactional_id: r.transactional_id.0.to_string(),
        producer_id: r.producer_id.0,
        producer_epoch: r.producer_epoch,
        committed: r.committed,
    };
    call(
        broker,
        move |c, id, now, alloc| c.end_txn(id, &req, now, alloc),
        |resp| {
            let (error, pid, epoch) = match resp {
                Some(TxnResponse::EndTxn(e)) => (e.error, e.producer_id, e.producer_epoch),
                _ => (ErrorCode::CoordinatorNotAvailable, -1, -1),
            };
            ResponseKind::EndTxn(
                EndTxnResponse::default()
                    .with_error_code(error.code())
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
            )
        },
    )
}

/// What a KIP-890 check came to.
pub(super) enum Check {
    /// Go ahead with this token (`None`: the transaction is open there already).
    Done(Option<u64>),
    /// Ask the transaction coordinator first.
    Ask(Ask),
}

/// How a partition leader makes sure a transactional write belongs to the producer's
/// open transaction, by the version of the request that carries it (as Kafka decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxnCheck {
    /// KIP-890 part 1: the client added the partition itself; verify that it did
    /// (Produce up to v11, TxnOffsetCommit up to v4).
    Verify,
    /// Transaction version 2 (KIP-890 part 2): add the partition on the client's behalf
    /// (Produce v12+, TxnOffsetCommit v5+, sent only by clients that saw the
    /// `transaction.version` feature finalized at 2).
    Add,
}

/// A question for the transaction coordinator, asked before appending.
pub(super) struct Ask {
    /// The coordinator's address, or `None` for this node's own.
    addr: Option<String>,
    how: TxnCheck,
    tp: TopicPartition,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    token: u64,
}

impl Ask {
    /// Asks the coordinator (AddPartitionsToTxn v4+ to another node, as Kafka's partition
    /// leaders do: verify-only for [`TxnCheck::Verify`]): the token to append with once
    /// it confirmed or added the partition.
    pub(super) async fn ask(&self, broker: &Broker) -> Result<Option<u64>, Failure> {
        let code = match &self.addr {
            Some(addr) => self.send(broker, addr).await?,
            // Only an add is asked of this node's coordinator (a local verify is answered
            // at once by `verify_in_txn`).
            None => match add_here(
                broker,
                version2_add(
                    5,
                    &self.transactional_id,
                    self.producer_id,
                    self.producer_epoch,
                    vec![TxnPartition::new(self.tp.topic.clone(), self.tp.partition)],
                ),
            )
            .await
            {
                Ok(a) => a
                    .results
                    .first()
                    .map_or(ErrorCode::UnknownServerError, |r| r.1),
                Err(code) => code,
            },
        };
        match code {
            ErrorCode::None => Ok(Some(self.token)),
            code => Err(Failure::new(
                code,
                format!(
                    "{} is not in the open transaction of {} (producer {} epoch {})",
                    self.tp.dir_name(),
                    self.transactional_id,
                    self.producer_id,
                    self.producer_epoch
                ),
            )),
        }
    }

    async fn send(&self, broker: &Broker, addr: &str) -> Result<ErrorCode, Failure> {
        let req = WireAddPartitions::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(super::str_bytes(
                    self.transactional_id.clone(),
                )))
                .with_producer_id(ProducerId(self.producer_id))
                .with_producer_epoch(self.producer_epoch)
                .with_verify_only(self.how == TxnCheck::Verify)
                .with_topics(vec![
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(self.tp.topic.clone()))
                        .with_partitions(vec![self.tp.partition]),
                ]),
        ]);
        let answer = broker.links().send(addr, &req).await.map_err(|e| {
            Failure::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("cannot reach the transaction coordinator at {addr}: {e}"),
            )
        })?;
        let code = if answer.error_code != 0 {
            answer.error_code
        } else {
            answer
                .results_by_transaction
                .iter()
                .flat_map(|t| &t.topic_results)
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.partition_error_code)
                .next()
                .unwrap_or(ErrorCode::UnknownServerError.code())
        };
        Ok(ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError))
    }
}

/// The check before producer `producer_id` opens its transaction in `tp` (a Produce, or
/// a TxnOffsetCommit in the group's `__consumer_offsets` partition): the token to append
/// with (`None` when its transaction is open there already), or the coordinator to ask.
/// A refusal carries the coordinator's code (TRANSACTION_ABORTABLE: not in the
/// transaction), which each caller translates for its API.
pub(super) fn verify_in_txn(
    broker: &Broker,
    tp: &TopicPartition,
    producer_id: i64,
    producer_epoch: i16,
    transactional_id: &str,
    how: TxnCheck,
) -> Result<Check, Failure> {
    let Some(token) = broker.data().begin_verification(tp, producer_id)? else {
        return Ok(Check::Done(None));
    };
    let txns = broker.txns();
    let coordinator = TopicPartition::new(TXN_TOPIC, txns.partition_for(transactional_id));
    let here = broker
        .data()
        .status(&coordinator)
        .is_some_and(|s| s.is_leader);
    let ask = |addr| {
        Check::Ask(Ask {
            addr,
            how,
            tp: tp.clone(),
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            token,
        })
    };
    if !here {
        let Some((_, addr)) = broker.links().remote_leader(&coordinator) else {
            return Err(Failure::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("no leader known for {}", coordinator.dir_name()),
            ));
        };
        return Ok(ask(Some(addr)));
    }
    if how == TxnCheck::Add {
        // Adding writes the coordinator's record: answered when it is committed.
        return Ok(ask(None));
    }
    let wanted = [TxnPartition::new(tp.topic.clone(), tp.partition)];
    let answer = txns
        .read(|c, _| c.verify_partitions(transactional_id, producer_id, producer_epoch, &wanted));
    match answer
        .results
        .first()
        .map_or(ErrorCode::UnknownServerError, |r| r.1)
    {
        ErrorCode::None => Ok(Check::Done(Some(token))),
        code => Err(Failure::new(
            code,
            format!(
                "{} is not in the open transaction of {transactional_id} (producer {producer_id} epoch {producer_epoch})",
                tp.dir_name()
            ),
        )),
    }
}
