//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets as part
//! of its transaction. The group's `__consumer_offsets` partition must be in the
//! transaction (AddOffsetsToTxn; checked with the coordinator as KIP-890 does); the
//! group coordinator writes the commit as a transactional batch of the producer, and the
//! offsets become the group's committed offsets only when the COMMIT marker reaches that
//! partition.

use std::sync::Arc;

use strom_group::{
    Response as GroupResponse, TxnOffsetCommitPartition, TxnOffsetCommitRequest,
    TxnOffsetCommitTopic,
};
use strom_log::TopicPartition;
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use strom_wire::kafka_protocol::messages::{
    ResponseKind, TxnOffsetCommitRequest as WireTxnCommit, TxnOffsetCommitResponse,
};

use super::groups::{LOST, call};
use super::txn::{Check, TxnCheck, verify_in_txn};
use super::{Reply, Response, topic_name};
use crate::broker::Broker;
use crate::errors::Failure;
use crate::groups::OFFSETS_TOPIC;

pub(super) fn txn_offset_commit(broker: &Arc<Broker>, r: WireTxnCommit, version: i16) -> Reply {
    let req = TxnOffsetCommitRequest {
        transactional_id: r.transactional_id.0.to_string(),
        group_id: r.group_id.0.to_string(),
        producer_id: r.producer_id.0,
        producer_epoch: r.producer_epoch,
        generation_id: r.generation_id,
        member_id: r.member_id.to_string(),
        group_instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        topics: r
            .topics
            .iter()
            .map(|t| TxnOffsetCommitTopic {
                name: t.name.0.to_string(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        committed_metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    })
                    .collect(),
            })
            .collect(),
    };
    // Every partition gets this code when the commit is refused as a whole.
    let topics = r.topics;
    let all = move |code: ErrorCode| {
        ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(
                topics
                    .iter()
                    .map(|t| {
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code.code())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        )
    };
    let refuse = move |f: Failure| {
        let code = match f.code {
            ErrorCode::ConcurrentTransactions
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator
            | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorLoadInProgress,
            // v4 added TRANSACTION_ABORTABLE (KIP-890).
            ErrorCode::TransactionAbortable if version < 4 => ErrorCode::InvalidTxnState,
            ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
            other => other,
        };
        tracing::debug!(error = %f.message, "TxnOffsetCommit refused");
        code
    };
    let mut ask = None;
    if !req.group_id.is_empty() {
        let partitions = broker.control().offsets_topic_partitions();
        let tp = TopicPartition::new(
            OFFSETS_TOPIC,
            strom_group::partition_for(&req.group_id, partitions),
        );
        // Not the group's coordinator: the coordinator call answers NOT_COORDINATOR.
        if broker.data().status(&tp).is_some_and(|s| s.is_leader) {
            match verify_in_txn(
                broker,
                &tp,
                req.producer_id,
                req.producer_epoch,
                &req.transactional_id,
                // v5 comes from transaction version 2 clients, which send no
                // AddOffsetsToTxn: the partition is added here (KIP-890 part 2).
                if version >= 5 {
                    TxnCheck::Add
                } else {
                    TxnCheck::Verify
                },
            ) {
                Ok(Check::Done(_)) => {}
                Ok(Check::Ask(a)) => ask = Some(a),
                Err(f) => return Reply::now(Response::Kind(all(refuse(f)))),
            }
        }
    }
    let commit =
        move |c: &mut strom_group::GroupCoordinator, id, now| c.txn_offset_commit(id, req, now);
    let Some(ask) = ask else {
        return call(broker, commit, move |resp| to_wire(resp, all));
    };
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        if let Err(f) = ask.ask(&broker).await {
            return Response::Kind(all(refuse(f)));
        }
        let rx = broker.groups().call(commit);
        Response::Kind(to_wire(rx.await.ok(), all))
    }))
}

/// The coordinator's answer on the wire; without one (shutdown), every partition gets
/// COORDINATOR_NOT_AVAILABLE through `all`.
fn to_wire(
    resp: Option<GroupResponse>,
    all: impl FnOnce(ErrorCode) -> ResponseKind,
) -> ResponseKind {
    match resp {
        Some(GroupResponse::TxnOffsetCommit(t)) => ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(
                t.topics
                    .into_iter()
                    .map(|t| {
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(topic_name(t.name))
                            .with_partitions(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(p.error.code())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        _ => all(LOST),
    }
}
