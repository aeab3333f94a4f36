//! InitProducerId for idempotent producers: a fresh producer id, or the same id with a
//! bumped epoch when the client asks to continue (KIP-360). With a transactional id the
//! transaction coordinator answers (`txn.rs`).

use std::sync::Arc;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};

use crate::broker::Broker;

pub(super) fn init_producer_id(
    broker: &Arc<Broker>,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let existing = req.producer_id.0;
    if existing >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return InitProducerIdResponse::default()
            .with_producer_id(ProducerId(existing))
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match broker.new_producer_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(f) => {
            tracing::error!(error = %f.message, "could not allocate a producer id");
            failed(f.code)
        }
    }
}
