//! EndTxn: commit or abort, with Kafka's answers to retries, for transaction version 1 and
//! 2 (KIP-890 part 2: the epoch is bumped at every end).

use crate::effects::{Effects, RequestId};
use crate::metadata::{NO_PRODUCER_ID, TransactionMetadata, Transit, is_epoch_exhausted};
use crate::request::EndTxnRequest;
use crate::response::{EndTxnResponse, Response};
use crate::state::TransactionState::{self, *};
use strom_codes::ErrorCode;

use super::{AfterWrite, TransactionCoordinator, valid_transactional_id};

/// EndTxn v2 introduced PRODUCER_FENCED (KIP-588).
const FIRST_FENCED_VERSION: i16 = 2;

/// What the checks decided.
enum Decision {
    /// Write this Prepare record, then answer and hand out the markers.
    Prepare(Transit),
    /// Answer NONE at once (a retry of an end that completed), with the producer id and
    /// epoch to use (transaction version 2).
    AlreadyDone {
        producer_id: i64,
        producer_epoch: i16,
    },
}

impl TransactionCoordinator {
    /// EndTxn. A commit or abort of the ongoing transaction is answered once its
    /// PrepareCommit/PrepareAbort record is durable (the outcome is then decided), and its
    /// markers are handed out in the same call. A retry of an end whose markers are still
    /// being written gets CONCURRENT_TRANSACTIONS; a retry of a completed one NONE.
    ///
    /// `new_producer_id` is called only for transaction version 2 when the bumped epoch is
    /// the last one: the producer moves to the new id when the transaction completes.
    pub fn end_txn(
        &mut self,
        request: RequestId,
        req: &EndTxnRequest,
        now: i64,
        mut new_producer_id: impl FnMut() -> Result<i64, ErrorCode>,
    ) -> Effects {
        let mut fx = Effects::default();
        let tv = req.transaction_version();
        match self.decide_end(req, &mut new_producer_id, now) {
            Ok(Decision::Prepare(transit)) => {
                let then = AfterWrite::EndTxn {
                    request,
                    transaction_version: tv,
                };
                self.write(&mut fx, &req.transactional_id, transit, then);
            }
            Ok(Decision::AlreadyDone {
                producer_id,
                producer_epoch,
            }) => {
                let (producer_id, producer_epoch) = if tv >= 2 {
                    (producer_id, producer_epoch)
                } else {
                    (-1, -1)
                };
                fx.respond(
                    request,
                    Response::EndTxn(EndTxnResponse {
                        error: ErrorCode::None,
                        producer_id,
                        producer_epoch,
                    }),
                );
            }
            Err(error) => fx.respond(
                request,
                Response::EndTxn(EndTxnResponse::error(crate::code::for_version(
                    error,
                    req.api_version,
                    FIRST_FENCED_VERSION,
                ))),
            ),
        }
        fx
    }

    fn decide_end(
        &mut self,
        req: &EndTxnRequest,
        new_producer_id: &mut impl FnMut() -> Result<i64, ErrorCode>,
        now: i64,
    ) -> Result<Decision, ErrorCode> {
        let id = req.transactional_id.as_str();
        if !valid_transactional_id(id) {
            return Err(ErrorCode::InvalidRequest);
        }
        self.lookup(id)?;
        let Some(meta) = self.txns.get_mut(id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if req.transaction_version() >= 2 {
            decide_end_v2(meta, req, new_producer_id, now)
        } else {
            decide_end_v1(meta, req, now)
        }
    }
}

fn wanted(req: &EndTxnRequest) -> TransactionState {
    if req.committed {
        PrepareCommit
    } else {
        PrepareAbort
    }
}

/// Kafka's `endTransactionWithTV1` for a client: the epoch must be the current one.
fn decide_end_v1(
    meta: &mut TransactionMetadata,
    req: &EndTxnRequest,
    now: i64,
) -> Result<Decision, ErrorCode> {
    if meta.producer_id != req.producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != req.producer_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    if meta.pending.is_some() {
        return Err(ErrorCode::ConcurrentTransactions);
    }
    let done = Decision::AlreadyDone {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
    };
    match (meta.state, req.committed) {
        (Ongoing, _) => meta
            .prepare_end(wanted(req), 0, NO_PRODUCER_ID, now, false)
            .map(Decision::Prepare)
            .map_err(|_| ErrorCode::UnknownServerError),
        (CompleteCommit, true) | (CompleteAbort, false) => Ok(done),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(ErrorCode::ConcurrentTransactions),
        (Dead | PrepareEpochFence, _) => Err(ErrorCode::UnknownServerError),
        _ => Err(ErrorCode::InvalidTxnState),
    }
}

/// Kafka's `endTransaction` for transaction version 2. The epoch a client sends is the
/// current one for a new end, and one below it for a retry of an end that bumped it
/// (`retry_on_epoch_bump`), or the last epoch of the previous producer id when that end
/// also moved to a new id (`retry_on_overflow`):
///
/// ```text
///                   Abort            Commit
///                   retry  current   retry  current
/// Empty             FENCED bump      FENCED INVALID_TXN_STATE
/// CompleteAbort     NONE   bump      ITS    ITS
/// CompleteCommit    ITS    bump      NONE   ITS
/// ```
fn decide_end_v2(
    meta: &mut TransactionMetadata,
    req: &EndTxnRequest,
    new_producer_id: &mut impl FnMut() -> Result<i64, ErrorCode>,
    now: i64,
) -> Result<Decision, ErrorCode> {
    let epoch = req.producer_epoch;
    let retry_on_overflow = meta.previous_producer_id == req.producer_id
        && epoch == i16::MAX - 1
        && meta.producer_epoch == 0;
    let retry_on_epoch_bump = i32::from(meta.producer_epoch) == i32::from(epoch) + 1;
    let valid_epoch = match meta.state {
        Ongoing | Empty | Dead | PrepareEpochFence => epoch == meta.producer_epoch,
        PrepareCommit | PrepareAbort => retry_on_epoch_bump,
        CompleteCommit | CompleteAbort => {
            retry_on_epoch_bump || retry_on_overflow || epoch == meta.producer_epoch
        }
    };
    let is_retry = retry_on_epoch_bump || retry_on_overflow;
    if meta.producer_id != req.producer_id && !retry_on_overflow {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    if meta.pending.is_some() {
        return Err(ErrorCode::ConcurrentTransactions);
    }
    let done = Decision::AlreadyDone {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
    };
    let mut prepare = |meta: &mut TransactionMetadata, state, no_partition_added| {
        let next_producer_id = if is_epoch_exhausted(meta.producer_epoch) {
            new_producer_id()?
        } else {
            NO_PRODUCER_ID
        };
        meta.prepare_end(state, 2, next_producer_id, now, no_partition_added)
            .map(Decision::Prepare)
            .map_err(|_| ErrorCode::UnknownServerError)
    };
    match (meta.state, req.committed) {
        (Ongoing, _) => prepare(meta, wanted(req), false),
        (CompleteCommit, true) | (CompleteAbort, false) if is_retry => Ok(done),
        (CompleteCommit | CompleteAbort | Empty, false) if !is_retry => {
            prepare(meta, PrepareAbort, true)
        }
        (PrepareCommit, true) | (PrepareAbort, false) => Err(ErrorCode::ConcurrentTransactions),
        (Dead | PrepareEpochFence, _) => Err(ErrorCode::UnknownServerError),
        _ => Err(ErrorCode::InvalidTxnState),
    }
}
