//! `TransactionCoordinator`: every transactional id of the `__transaction_state`
//! partitions this node leads, the loading of those partitions from their records, and
//! the records in flight. The request handlers are in the submodules, one per family of
//! APIs; marker work and timers in `markers`.

mod add;
pub use add::CONSUMER_OFFSETS_TOPIC;
mod admin;
mod end;
mod init;
mod markers;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod scenario_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use strom_codes::ErrorCode;

use crate::config::TxnConfig;
use crate::effects::{Effects, RequestId, TxnLogWrite, WriteId};
use crate::error::TxnError;
use crate::metadata::{TopicPartition, TransactionMetadata, Transit};
use crate::records::{TRANSACTION_LOG_VALUE_VERSION, TransactionLogKey, TransactionLogValue};
use crate::response::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, EndTxnResponse, InitProducerIdResponse,
    Response,
};

use markers::MarkerState;

/// The longest transactional id a `__transaction_state` key can hold (an `int16`-length
/// string); longer ones are INVALID_REQUEST.
const MAX_TRANSACTIONAL_ID_LEN: usize = i16::MAX as usize;

/// The transaction coordinator of one node: a deterministic state machine. It does no
/// I/O, reads no clock and makes up no ids; every call takes the time and returns
/// [`Effects`].
#[derive(Debug)]
pub struct TransactionCoordinator {
    config: TxnConfig,
    /// The `__transaction_state` partitions this coordinator serves, with their leader
    /// epochs (the coordinator epoch of markers). Ids of other partitions get
    /// NOT_COORDINATOR; of loading ones COORDINATOR_LOAD_IN_PROGRESS.
    partitions: BTreeMap<i32, PartitionState>,
    /// Every transactional id of the served and loading partitions.
    txns: BTreeMap<String, TransactionMetadata>,
    /// Records handed out and not yet reported, with what to do once they are durable.
    writes: BTreeMap<WriteId, PendingWrite>,
    next_write_id: u64,
    /// Transactions whose markers are being written (PrepareCommit/PrepareAbort with a
    /// pending Complete*), by transactional id.
    markers: BTreeMap<String, MarkerState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionState {
    Loading { coordinator_epoch: i32 },
    Active { coordinator_epoch: i32 },
}

/// A record in flight: the transition it makes durable and what then follows.
#[derive(Debug)]
struct PendingWrite {
    transactional_id: String,
    partition: i32,
    transit: Transit,
    then: AfterWrite,
}

/// What follows a record once it is durable (or failed).
#[derive(Debug)]
enum AfterWrite {
    InitProducerId {
        request: RequestId,
    },
    AddPartitions {
        request: RequestId,
        partitions: Vec<TopicPartition>,
    },
    AddOffsets {
        request: RequestId,
    },
    EndTxn {
        request: RequestId,
        transaction_version: i16,
    },
    /// The abort that fences an older producer: for an InitProducerId (answered
    /// CONCURRENT_TRANSACTIONS, so the client retries once the abort completed) or a
    /// timeout (nobody to answer).
    FenceAbort {
        request: Option<RequestId>,
    },
    /// The Complete record after the markers.
    Complete,
}

impl TransactionCoordinator {
    /// A coordinator serving no partition yet: load each `__transaction_state` partition
    /// this node leads with [`begin_load`](Self::begin_load), [`replay`](Self::replay) and
    /// [`finish_load`](Self::finish_load).
    pub fn new(config: TxnConfig) -> Self {
        TransactionCoordinator {
            config,
            partitions: BTreeMap::new(),
            txns: BTreeMap::new(),
            writes: BTreeMap::new(),
            next_write_id: 1,
            markers: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Sets how many partitions `__transaction_state` really has, which decides where
    /// every transactional id lives: once the topic exists its count counts, not the
    /// configured one. Call it before any partition is loaded.
    pub fn set_transaction_state_partitions(&mut self, partitions: i32) {
        self.config.transaction_state_partitions = partitions.max(1);
    }

    /// Sets how many partitions `__consumer_offsets` has (for AddOffsetsToTxn).
    pub fn set_offsets_topic_partitions(&mut self, partitions: i32) {
        self.config.offsets_topic_partitions = partitions.max(1);
    }

    /// The `__transaction_state` partition of a transactional id: Kafka's
    /// `abs(hashCode) % partitions`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        strom_group::partition_for(transactional_id, self.config.transaction_state_partitions)
    }

    pub fn is_loading(&self, partition: i32) -> bool {
        matches!(
            self.partitions.get(&partition),
            Some(PartitionState::Loading { .. })
        )
    }

    pub fn is_active(&self, partition: i32) -> bool {
        matches!(
            self.partitions.get(&partition),
            Some(PartitionState::Active { .. })
        )
    }

    /// A transactional id's state, if its partition is served.
    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.txns
            .get(transactional_id)
            .filter(|m| self.is_active(self.partition_for(&m.transactional_id)))
    }

    /// Every transactional id of the served partitions, in id order.
    pub fn transactions(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.txns
            .values()
            .filter(|m| self.is_active(self.partition_for(&m.transactional_id)))
    }

    /// Starts loading a partition (this node became its leader at `coordinator_epoch`,
    /// the partition's leader epoch): its ids answer COORDINATOR_LOAD_IN_PROGRESS until
    /// [`finish_load`](Self::finish_load). A partition that was served is dropped first
    /// (see [`unload`](Self::unload)).
    pub fn begin_load(&mut self, partition: i32, coordinator_epoch: i32) -> Effects {
        let fx = self.unload(partition);
        self.partitions
            .insert(partition, PartitionState::Loading { coordinator_epoch });
        fx
    }

    /// Applies one record read back from `__transaction_state`, in log order. A null
    /// `value` is a tombstone. Keys of versions this coordinator does not know are skipped,
    /// as Kafka skips them.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), TxnError> {
        let Some(key) = TransactionLogKey::decode(key)? else {
            return Ok(());
        };
        let id = key.transactional_id;
        let partition = self.partition_for(&id);
        if !self.is_loading(partition) {
            return Err(TxnError::NotLoading {
                transactional_id: id,
                partition,
            });
        }
        match value {
            None => {
                self.txns.remove(&id);
            }
            Some(v) => {
                let (_, value) = TransactionLogValue::decode(v)?;
                let meta =
                    TransactionMetadata::from_record(id.clone(), &value).ok_or_else(|| {
                        TxnError::Corrupt {
                            record: "transaction log value",
                            position: 16,
                            reason: format!(
                                "unknown transaction status {}",
                                value.transaction_status
                            ),
                        }
                    })?;
                self.txns.insert(id, meta);
            }
        }
        Ok(())
    }

    /// Ends the load of a partition: its ids are served from now on, and the markers of
    /// every transaction that was left in PrepareCommit or PrepareAbort are written again
    /// (their Complete record follows), as Kafka does after a coordinator move.
    pub fn finish_load(&mut self, partition: i32, now: i64) -> Effects {
        let mut fx = Effects::default();
        let Some(&PartitionState::Loading { coordinator_epoch }) = self.partitions.get(&partition)
        else {
            return fx;
        };
        self.partitions
            .insert(partition, PartitionState::Active { coordinator_epoch });
        let prepared: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                m.state.is_prepare() && self.partition_for(&m.transactional_id) == partition
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in prepared {
            self.start_markers(&id, now, &mut fx);
        }
        fx
    }

    /// Stops serving a partition (leadership lost, or a failed append left memory ahead of
    /// the log): its ids, marker work and records in flight are forgotten. Requests
    /// waiting for those records are answered NOT_COORDINATOR so their clients look for
    /// the new coordinator; later reports of those records or markers are ignored.
    pub fn unload(&mut self, partition: i32) -> Effects {
        let mut fx = Effects::default();
        self.partitions.remove(&partition);
        let ids: Vec<String> = self
            .txns
            .keys()
            .filter(|id| self.partition_for(id) == partition)
            .cloned()
            .collect();
        for id in ids {
            self.txns.remove(&id);
            self.markers.remove(&id);
        }
        let dropped: Vec<WriteId> = self
            .writes
            .iter()
            .filter(|(_, w)| w.partition == partition)
            .map(|(id, _)| *id)
            .collect();
        for id in dropped {
            if let Some(w) = self.writes.remove(&id) {
                respond_error(
                    &mut fx,
                    &w.transactional_id,
                    w.then,
                    ErrorCode::NotCoordinator,
                );
            }
        }
        fx
    }

    /// Reports the outcome of a record of [`Effects::writes`]: `Ok` once it is durable,
    /// else the append's error. Returns the responses that waited for it, and the work
    /// that follows (markers after a Prepare record). Unknown ids (of an unloaded
    /// partition) are ignored.
    pub fn write_completed(
        &mut self,
        id: WriteId,
        result: Result<(), ErrorCode>,
        now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(w) = self.writes.remove(&id) else {
            return fx;
        };
        let served = self.is_active(w.partition);
        let Some(meta) = self.txns.get_mut(&w.transactional_id).filter(|_| served) else {
            respond_error(
                &mut fx,
                &w.transactional_id,
                w.then,
                ErrorCode::NotCoordinator,
            );
            return fx;
        };
        match result {
            Ok(()) => {
                meta.complete(w.transit);
                self.after_write(&w.transactional_id, w.then, now, &mut fx);
            }
            Err(e) => {
                let code = match crate::code::from_append_error(e) {
                    ErrorCode::None => ErrorCode::UnknownServerError,
                    code => code,
                };
                match w.then {
                    // The markers are written; only the record is missing. Keep the
                    // pending Complete and write it again after a backoff.
                    AfterWrite::Complete => {
                        self.complete_write_failed(&w.transactional_id, now);
                    }
                    then => {
                        meta.abandon();
                        if matches!(then, AfterWrite::FenceAbort { .. }) {
                            meta.has_failed_epoch_fence = true;
                        }
                        respond_error(&mut fx, &w.transactional_id, then, code);
                    }
                }
            }
        }
        fx
    }

    /// What follows a durable record.
    fn after_write(&mut self, id: &str, then: AfterWrite, now: i64, fx: &mut Effects) {
        let Some(meta) = self.txns.get(id) else {
            return;
        };
        match then {
            AfterWrite::InitProducerId { request } => fx.respond(
                request,
                Response::InitProducerId(InitProducerIdResponse {
                    error: ErrorCode::None,
                    producer_id: meta.producer_id,
                    producer_epoch: meta.producer_epoch,
                }),
            ),
            AfterWrite::AddPartitions {
                request,
                partitions,
            } => fx.respond(
                request,
                Response::AddPartitionsToTxn(AddPartitionsToTxnResponse::all(
                    id,
                    &partitions,
                    ErrorCode::None,
                )),
            ),
            AfterWrite::AddOffsets { request } => fx.respond(
                request,
                Response::AddOffsetsToTxn(AddOffsetsToTxnResponse {
                    error: ErrorCode::None,
                }),
            ),
            AfterWrite::EndTxn {
                request,
                transaction_version,
            } => {
                // With transaction version 2 the answer carries what the producer uses
                // next: the bumped epoch, or the new id at epoch 0 when the epoch ran out.
                let (producer_id, producer_epoch) = if transaction_version < 2 {
                    (-1, -1)
                } else if meta.next_producer_id != -1 {
                    (meta.next_producer_id, 0)
                } else {
                    (meta.producer_id, meta.producer_epoch)
                };
                fx.respond(
                    request,
                    Response::EndTxn(EndTxnResponse {
                        error: ErrorCode::None,
                        producer_id,
                        producer_epoch,
                    }),
                );
                self.start_markers(id, now, fx);
            }
            AfterWrite::FenceAbort { request } => {
                if let Some(request) = request {
                    fx.respond(
                        request,
                        Response::InitProducerId(InitProducerIdResponse::error(
                            ErrorCode::ConcurrentTransactions,
                        )),
                    );
                }
                self.start_markers(id, now, fx);
            }
            AfterWrite::Complete => {
                self.markers.remove(id);
            }
        }
    }

    /// The newest state of every transactional id of a served partition as
    /// `__transaction_state` records (key, value), for compacting the partition by
    /// snapshot: appended at its end, they stand in for everything before them. `None`
    /// while a record of that partition is in flight (memory is then behind the log's
    /// end) or when the partition is not served.
    pub fn snapshot(&self, partition: i32) -> Option<Vec<(bytes::Bytes, bytes::Bytes)>> {
        if !self.is_active(partition) || self.writes.values().any(|w| w.partition == partition) {
            return None;
        }
        Some(
            self.txns
                .iter()
                .filter(|(id, _)| self.partition_for(id) == partition)
                .map(|(id, m)| {
                    (
                        TransactionLogKey::new(id).encode(),
                        m.snapshot_record().encode(TRANSACTION_LOG_VALUE_VERSION),
                    )
                })
                .collect(),
        )
    }

    /// Checks that the coordinator serves `transactional_id`'s partition; its epoch.
    fn lookup(&self, transactional_id: &str) -> Result<i32, ErrorCode> {
        match self.partitions.get(&self.partition_for(transactional_id)) {
            Some(PartitionState::Active { coordinator_epoch }) => Ok(*coordinator_epoch),
            Some(PartitionState::Loading { .. }) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    /// Hands out the record of a prepared transition.
    fn write(
        &mut self,
        fx: &mut Effects,
        transactional_id: &str,
        transit: Transit,
        then: AfterWrite,
    ) {
        let id = WriteId(self.next_write_id);
        self.next_write_id += 1;
        let partition = self.partition_for(transactional_id);
        fx.writes.push(TxnLogWrite {
            id,
            partition,
            key: TransactionLogKey::new(transactional_id).encode(),
            value: Some(transit.to_record().encode(TRANSACTION_LOG_VALUE_VERSION)),
        });
        self.writes.insert(
            id,
            PendingWrite {
                transactional_id: transactional_id.to_string(),
                partition,
                transit,
                then,
            },
        );
    }
}

/// Whether a transactional id can be a `__transaction_state` key.
fn valid_transactional_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TRANSACTIONAL_ID_LEN
}

/// Answers whoever waits on `then` with `error`.
fn respond_error(fx: &mut Effects, transactional_id: &str, then: AfterWrite, error: ErrorCode) {
    match then {
        AfterWrite::InitProducerId { request }
        | AfterWrite::FenceAbort {
            request: Some(request),
        } => fx.respond(
            request,
            Response::InitProducerId(InitProducerIdResponse::error(error)),
        ),
        AfterWrite::AddPartitions {
            request,
            partitions,
        } => fx.respond(
            request,
            Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                transactional_id: transactional_id.to_string(),
                results: partitions.into_iter().map(|p| (p, error)).collect(),
            }),
        ),
        AfterWrite::AddOffsets { request } => fx.respond(
            request,
            Response::AddOffsetsToTxn(AddOffsetsToTxnResponse { error }),
        ),
        AfterWrite::EndTxn { request, .. } => {
            fx.respond(request, Response::EndTxn(EndTxnResponse::error(error)))
        }
        AfterWrite::FenceAbort { request: None } | AfterWrite::Complete => {}
    }
}
