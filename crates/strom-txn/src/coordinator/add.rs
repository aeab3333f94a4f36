//! AddPartitionsToTxn (add, and the verify-only form of KIP-890 part 1) and
//! AddOffsetsToTxn: the partitions a transaction writes to.

use crate::effects::{Effects, RequestId};
use crate::metadata::{TopicPartition, Transit};
use crate::request::{AddOffsetsToTxnRequest, AddPartitionsToTxnRequest};
use crate::response::{AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, Response};
use crate::state::TransactionState;
use strom_codes::ErrorCode;

use super::{AfterWrite, TransactionCoordinator, valid_transactional_id};

/// AddPartitionsToTxn and AddOffsetsToTxn v2 introduced PRODUCER_FENCED (KIP-588).
const FIRST_FENCED_VERSION: i16 = 2;

/// The name of the group coordinator's topic, whose partition AddOffsetsToTxn adds.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

impl TransactionCoordinator {
    /// AddPartitionsToTxn: answered after the record is durable, or at once when every
    /// partition is already in the ongoing transaction, or with an error for all
    /// partitions.
    pub fn add_partitions_to_txn(
        &mut self,
        request: RequestId,
        req: &AddPartitionsToTxnRequest,
        now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        let id = req.transactional_id.as_str();
        let result = self.prepare_add(
            id,
            req.producer_id,
            req.producer_epoch,
            &req.partitions,
            req.transaction_version,
            now,
        );
        match result {
            Ok(Some(transit)) => {
                let then = AfterWrite::AddPartitions {
                    request,
                    partitions: req.partitions.clone(),
                };
                self.write(&mut fx, id, transit, then);
            }
            Ok(None) => fx.respond(
                request,
                Response::AddPartitionsToTxn(AddPartitionsToTxnResponse::all(
                    id,
                    &req.partitions,
                    ErrorCode::None,
                )),
            ),
            Err(error) => fx.respond(
                request,
                Response::AddPartitionsToTxn(AddPartitionsToTxnResponse::all(
                    id,
                    &req.partitions,
                    crate::code::for_version(error, req.api_version, FIRST_FENCED_VERSION),
                )),
            ),
        }
        fx
    }

    /// AddOffsetsToTxn: adds `__consumer_offsets`'s partition of the group, so the
    /// transaction's offset commits get its markers.
    pub fn add_offsets_to_txn(
        &mut self,
        request: RequestId,
        req: &AddOffsetsToTxnRequest,
        now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        let id = req.transactional_id.as_str();
        let partition = TopicPartition::new(
            CONSUMER_OFFSETS_TOPIC,
            strom_group::partition_for(&req.group_id, self.config.offsets_topic_partitions),
        );
        // Only transaction version 1 clients send AddOffsetsToTxn (version 2 ones commit
        // offsets directly and the group coordinator adds the partition).
        match self.prepare_add(
            id,
            req.producer_id,
            req.producer_epoch,
            &[partition],
            0,
            now,
        ) {
            Ok(Some(transit)) => {
                self.write(&mut fx, id, transit, AfterWrite::AddOffsets { request });
            }
            Ok(None) => fx.respond(
                request,
                Response::AddOffsetsToTxn(AddOffsetsToTxnResponse {
                    error: ErrorCode::None,
                }),
            ),
            Err(error) => fx.respond(
                request,
                Response::AddOffsetsToTxn(AddOffsetsToTxnResponse {
                    error: crate::code::for_version(error, req.api_version, FIRST_FENCED_VERSION),
                }),
            ),
        }
        fx
    }

    /// AddPartitionsToTxn with `verify_only` (KIP-890 part 1), which a partition leader
    /// sends before appending a transactional batch: whether each partition is in the
    /// producer's ongoing transaction (NONE) or not (TRANSACTION_ABORTABLE: the producer
    /// must abort). Writes nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> AddPartitionsToTxnResponse {
        let all = |error| AddPartitionsToTxnResponse::all(transactional_id, partitions, error);
        if !valid_transactional_id(transactional_id) {
            return all(ErrorCode::InvalidRequest);
        }
        if let Err(error) = self.lookup(transactional_id) {
            return all(error);
        }
        let Some(meta) = self.txns.get(transactional_id) else {
            return all(ErrorCode::InvalidProducerIdMapping);
        };
        // Pending transitions are not checked: the partition's own append is the final
        // check, and partitions only leave a transaction once its marker is written.
        if meta.producer_id != producer_id {
            all(ErrorCode::InvalidProducerIdMapping)
        } else if meta.producer_epoch != producer_epoch {
            all(ErrorCode::ProducerFenced)
        } else if meta.state.is_prepare() {
            all(ErrorCode::ConcurrentTransactions)
        } else {
            AddPartitionsToTxnResponse {
                transactional_id: transactional_id.to_string(),
                results: partitions
                    .iter()
                    .map(|p| {
                        let error = if meta.partitions.contains(p) {
                            ErrorCode::None
                        } else {
                            ErrorCode::TransactionAbortable
                        };
                        (p.clone(), error)
                    })
                    .collect(),
            }
        }
    }

    /// The checks of Kafka's `handleAddPartitionsToTransaction`; `Ok(None)` when there is
    /// nothing to write (every partition already in the ongoing transaction).
    fn prepare_add(
        &mut self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        transaction_version: i16,
        now: i64,
    ) -> Result<Option<Transit>, ErrorCode> {
        if !valid_transactional_id(id) {
            return Err(ErrorCode::InvalidRequest);
        }
        self.lookup(id)?;
        let Some(meta) = self.txns.get_mut(id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if meta.producer_id != producer_id {
            Err(ErrorCode::InvalidProducerIdMapping)
        } else if meta.producer_epoch != producer_epoch {
            Err(ErrorCode::ProducerFenced)
        } else if meta.pending.is_some() || meta.state.is_prepare() {
            Err(ErrorCode::ConcurrentTransactions)
        } else if meta.state == TransactionState::Ongoing
            && partitions.iter().all(|p| meta.partitions.contains(p))
        {
            Ok(None)
        } else {
            meta.prepare_add_partitions(partitions.iter().cloned(), now, transaction_version)
                .map(Some)
                .map_err(|_| ErrorCode::UnknownServerError)
        }
    }
}
