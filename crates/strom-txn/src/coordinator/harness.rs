//! A broker stand-in for the coordinator tests: it keeps `__transaction_state` as a list
//! of records per partition, completes writes at once (or holds them, to test what
//! happens while a record is in flight), collects responses and marker work, and hands
//! out producer ids.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_codes::ErrorCode;

use crate::config::TxnConfig;
use crate::effects::{Effects, MarkerWork, RequestId, TxnLogWrite};
use crate::metadata::{TopicPartition, TransactionMetadata};
use crate::request::*;
use crate::response::*;

use super::TransactionCoordinator;

/// The leader epoch the harness loads every partition with.
pub(crate) const COORDINATOR_EPOCH: i32 = 3;

#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) c: TransactionCoordinator,
    pub(crate) now: i64,
    /// Durable records, per `__transaction_state` partition, in log order.
    pub(crate) log: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>>,
    /// When false, writes wait in `in_flight` until `complete_writes`/`fail_write`.
    pub(crate) auto_complete: bool,
    pub(crate) in_flight: Vec<TxnLogWrite>,
    pub(crate) responses: Vec<(RequestId, Response)>,
    pub(crate) markers: Vec<MarkerWork>,
    next_request: u64,
    pub(crate) next_producer_id: i64,
}

impl Harness {
    /// A coordinator serving every partition.
    pub(crate) fn new() -> Self {
        Self::with_config(TxnConfig::default())
    }

    pub(crate) fn with_config(config: TxnConfig) -> Self {
        let partitions = config.transaction_state_partitions;
        let mut h = Harness {
            c: TransactionCoordinator::new(config),
            now: 1_000,
            log: BTreeMap::new(),
            auto_complete: true,
            in_flight: Vec::new(),
            responses: Vec::new(),
            markers: Vec::new(),
            next_request: 1,
            next_producer_id: 1000,
        };
        for p in 0..partitions {
            let fx = h.c.begin_load(p, COORDINATOR_EPOCH);
            h.handle(fx);
            let fx = h.c.finish_load(p, h.now);
            h.handle(fx);
        }
        h
    }

    pub(crate) fn handle(&mut self, fx: Effects) {
        self.responses.extend(fx.responses);
        self.markers.extend(fx.markers);
        for w in fx.writes {
            if self.auto_complete {
                self.append(&w);
                let fx = self.c.write_completed(w.id, Ok(()), self.now);
                self.handle(fx);
            } else {
                self.in_flight.push(w);
            }
        }
    }

    fn append(&mut self, w: &TxnLogWrite) {
        self.log
            .entry(w.partition)
            .or_default()
            .push((w.key.clone(), w.value.clone()));
    }

    /// Makes every held write durable.
    pub(crate) fn complete_writes(&mut self) {
        for w in std::mem::take(&mut self.in_flight) {
            self.append(&w);
            let fx = self.c.write_completed(w.id, Ok(()), self.now);
            self.handle(fx);
        }
    }

    /// Fails the oldest held write.
    pub(crate) fn fail_write(&mut self, error: ErrorCode) {
        let w = self.in_flight.remove(0);
        let fx = self.c.write_completed(w.id, Err(error), self.now);
        self.handle(fx);
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// The response to `id`, if it was sent.
    pub(crate) fn answer(&mut self, id: RequestId) -> Option<Response> {
        let i = self.responses.iter().position(|(r, _)| *r == id)?;
        Some(self.responses.remove(i).1)
    }

    fn allocator(next: &mut i64) -> impl FnMut() -> Result<i64, ErrorCode> + '_ {
        move || {
            let id = *next;
            *next += 1;
            Ok(id)
        }
    }

    pub(crate) fn send_init(&mut self, req: InitProducerIdRequest) -> RequestId {
        let id = self.request_id();
        let now = self.now;
        let fx =
            self.c
                .init_producer_id(id, &req, now, Self::allocator(&mut self.next_producer_id));
        self.handle(fx);
        id
    }

    pub(crate) fn init_with(
        &mut self,
        txn: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> InitProducerIdResponse {
        let (producer_id, producer_epoch) = expected.unwrap_or((-1, -1));
        let id = self.send_init(InitProducerIdRequest {
            api_version: 4,
            transactional_id: txn.into(),
            transaction_timeout_ms: timeout_ms,
            producer_id,
            producer_epoch,
        });
        match self.answer(id) {
            Some(Response::InitProducerId(r)) => r,
            other => panic!("InitProducerId answered {other:?}"),
        }
    }

    pub(crate) fn init(&mut self, txn: &str) -> InitProducerIdResponse {
        self.init_with(txn, 60_000, None)
    }

    pub(crate) fn send_add(
        &mut self,
        txn: &str,
        pid: i64,
        epoch: i16,
        parts: &[(&str, i32)],
        tv: i16,
    ) -> RequestId {
        let id = self.request_id();
        let req = AddPartitionsToTxnRequest {
            api_version: 3,
            transactional_id: txn.into(),
            producer_id: pid,
            producer_epoch: epoch,
            partitions: parts
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            transaction_version: tv,
        };
        let fx = self.c.add_partitions_to_txn(id, &req, self.now);
        self.handle(fx);
        id
    }

    /// AddPartitionsToTxn; the error of the first partition (all share it).
    pub(crate) fn add(
        &mut self,
        txn: &str,
        pid: i64,
        epoch: i16,
        parts: &[(&str, i32)],
    ) -> ErrorCode {
        let id = self.send_add(txn, pid, epoch, parts, 0);
        self.answer(id)
            .expect("AddPartitionsToTxn answered")
            .error()
    }

    pub(crate) fn add_offsets(
        &mut self,
        txn: &str,
        pid: i64,
        epoch: i16,
        group: &str,
    ) -> ErrorCode {
        let id = self.request_id();
        let req = AddOffsetsToTxnRequest {
            api_version: 3,
            transactional_id: txn.into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: group.into(),
        };
        let fx = self.c.add_offsets_to_txn(id, &req, self.now);
        self.handle(fx);
        self.answer(id).expect("AddOffsetsToTxn answered").error()
    }

    pub(crate) fn send_end(
        &mut self,
        txn: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        api_version: i16,
    ) -> RequestId {
        let id = self.request_id();
        let req = EndTxnRequest {
            api_version,
            transactional_id: txn.into(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: commit,
        };
        let now = self.now;
        let fx = self
            .c
            .end_txn(id, &req, now, Self::allocator(&mut self.next_producer_id));
        self.handle(fx);
        id
    }

    pub(crate) fn end_with(
        &mut self,
        txn: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
        api_version: i16,
    ) -> EndTxnResponse {
        let id = self.send_end(txn, pid, epoch, commit, api_version);
        match self.answer(id) {
            Some(Response::EndTxn(r)) => r,
            other => panic!("EndTxn answered {other:?}"),
        }
    }

    pub(crate) fn end(&mut self, txn: &str, pid: i64, epoch: i16, commit: bool) -> ErrorCode {
        self.end_with(txn, pid, epoch, commit, 3).error
    }

    /// Writes every handed-out marker and reports it.
    pub(crate) fn write_markers(&mut self) -> Vec<MarkerWork> {
        let work = std::mem::take(&mut self.markers);
        for m in &work {
            let fx = self.c.markers_written(
                &m.transactional_id,
                m.producer_id,
                m.producer_epoch,
                &m.partitions,
                self.now,
            );
            self.handle(fx);
        }
        work
    }

    pub(crate) fn tick(&mut self) {
        let fx = self.c.tick(self.now);
        self.handle(fx);
    }

    pub(crate) fn meta(&self, txn: &str) -> TransactionMetadata {
        self.c.transaction(txn).cloned().expect("transaction known")
    }

    /// A new coordinator loaded from this one's log, as after a restart.
    pub(crate) fn reloaded(&self) -> Harness {
        let mut h = Harness {
            c: TransactionCoordinator::new(self.c.config().clone()),
            now: self.now,
            log: self.log.clone(),
            auto_complete: true,
            in_flight: Vec::new(),
            responses: Vec::new(),
            markers: Vec::new(),
            next_request: 1,
            next_producer_id: self.next_producer_id,
        };
        for p in 0..self.c.config().transaction_state_partitions {
            let fx = h.c.begin_load(p, COORDINATOR_EPOCH + 1);
            h.handle(fx);
            for (k, v) in self.log.get(&p).into_iter().flatten() {
                h.c.replay(k, v.as_deref()).expect("replay");
            }
            let fx = h.c.finish_load(p, h.now);
            h.handle(fx);
        }
        h
    }
}
