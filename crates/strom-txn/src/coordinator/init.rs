//! InitProducerId with a transactional id: a producer id and a fresh epoch, fencing every
//! older producer of the same transactional id.

use crate::effects::{Effects, RequestId};
use crate::metadata::{
    IncrementEpoch, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionMetadata, is_epoch_exhausted,
};
use crate::request::InitProducerIdRequest;
use crate::response::{InitProducerIdResponse, Response};
use crate::state::TransactionState;
use strom_codes::ErrorCode;

use super::{AfterWrite, TransactionCoordinator, valid_transactional_id};

/// InitProducerId v4 introduced PRODUCER_FENCED (KIP-588).
const FIRST_FENCED_VERSION: i16 = 4;

impl TransactionCoordinator {
    /// InitProducerId for a transactional id.
    ///
    /// `new_producer_id` is the broker's producer id allocator; it is called only when an
    /// id is needed (a transactional id seen for the first time, or one whose epoch ran
    /// out) and may fail with the error to answer (COORDINATOR_LOAD_IN_PROGRESS while no
    /// id block is available, say).
    ///
    /// Answered after the record is durable with the id and epoch; at once with an error.
    /// If the previous producer's transaction is still open, it is aborted first (its
    /// producer fenced by an epoch bump) and the request is answered
    /// CONCURRENT_TRANSACTIONS once that abort is durable, so the client retries, as Kafka
    /// does.
    pub fn init_producer_id(
        &mut self,
        request: RequestId,
        req: &InitProducerIdRequest,
        now: i64,
        mut new_producer_id: impl FnMut() -> Result<i64, ErrorCode>,
    ) -> Effects {
        let mut fx = Effects::default();
        if let Err(error) =
            self.try_init_producer_id(request, req, now, &mut new_producer_id, &mut fx)
        {
            let error = crate::code::for_version(error, req.api_version, FIRST_FENCED_VERSION);
            fx.respond(
                request,
                Response::InitProducerId(InitProducerIdResponse::error(error)),
            );
        }
        fx
    }

    fn try_init_producer_id(
        &mut self,
        request: RequestId,
        req: &InitProducerIdRequest,
        now: i64,
        new_producer_id: &mut impl FnMut() -> Result<i64, ErrorCode>,
        fx: &mut Effects,
    ) -> Result<(), ErrorCode> {
        let id = req.transactional_id.as_str();
        if !valid_transactional_id(id) {
            return Err(ErrorCode::InvalidRequest);
        }
        let expected = match (req.producer_id, req.producer_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => {
                return Err(ErrorCode::InvalidRequest);
            }
            (p, e) => Some((p, e)),
        };
        let timeout = req.transaction_timeout_ms;
        if timeout <= 0 || timeout > self.config.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        self.lookup(id)?;
        if !self.txns.contains_key(id) {
            let producer_id = new_producer_id()?;
            self.txns.insert(
                id.to_string(),
                TransactionMetadata::new(id.to_string(), producer_id, timeout, now),
            );
        }
        let Some(meta) = self.txns.get_mut(id) else {
            return Err(ErrorCode::UnknownServerError);
        };
        if meta.pending.is_some() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        if let Some((producer_id, epoch)) = expected {
            // KIP-360: a producer that lost its state may go on unless another producer
            // took over: the id is the current one (the epoch is checked below), or the
            // previous one with its epoch exhausted (a retry of the call that replaced it),
            // or the id was just created.
            let valid = meta.producer_epoch == NO_PRODUCER_EPOCH
                || producer_id == meta.producer_id
                || (producer_id == meta.previous_producer_id && is_epoch_exhausted(epoch));
            if !valid {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match meta.state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                Err(ErrorCode::ConcurrentTransactions)
            }
            TransactionState::Empty
            | TransactionState::CompleteCommit
            | TransactionState::CompleteAbort => {
                let rotate = is_epoch_exhausted(meta.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == meta.producer_epoch);
                let transit = if rotate {
                    let new_id = new_producer_id()?;
                    let Some(meta) = self.txns.get_mut(id) else {
                        return Err(ErrorCode::UnknownServerError);
                    };
                    meta.prepare_producer_id_rotation(new_id, timeout, now, expected.is_some())
                } else {
                    match meta.prepare_increment_epoch(timeout, expected.map(|(_, e)| e), now) {
                        Ok(IncrementEpoch::Prepared(t)) => Ok(t),
                        Ok(IncrementEpoch::Fenced) => return Err(ErrorCode::ProducerFenced),
                        Err(e) => Err(e),
                    }
                }
                .map_err(|_| ErrorCode::UnknownServerError)?;
                self.write(fx, id, transit, AfterWrite::InitProducerId { request });
                Ok(())
            }
            TransactionState::Ongoing => {
                self.fence_and_abort(id, now, Some(request), fx);
                Ok(())
            }
            TransactionState::Dead | TransactionState::PrepareEpochFence => {
                Err(ErrorCode::UnknownServerError)
            }
        }
    }
}
