//! Marker work and time: a decided transaction's markers are handed to the broker, its
//! reports move the transaction to Complete, and `tick` retries what is overdue and
//! aborts transactions past their timeout.

use crate::effects::{Effects, MarkerWork, RequestId, TransactionResult};
use crate::metadata::{TopicPartition, Transit};
use crate::response::{InitProducerIdResponse, Response};
use crate::state::TransactionState;
use strom_codes::ErrorCode;

use super::{AfterWrite, TransactionCoordinator};

/// A transaction whose markers are being written.
#[derive(Debug)]
pub(super) struct MarkerState {
    /// The work, with only the partitions still without a marker.
    work: MarkerWork,
    /// The Complete transition, prepared (pending) when the markers were handed out, as
    /// Kafka prepares it.
    complete: Transit,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Markers handed out; sent again at `retry_at` unless reported first.
    Sending { retry_at: i64 },
    /// The Complete record is in flight.
    Writing,
    /// The Complete record failed; written again at `at`.
    RetryWrite { at: i64 },
}

impl TransactionCoordinator {
    /// The broker wrote the markers of `transactional_id`'s transaction (producer id and
    /// epoch of the [`MarkerWork`]) to `partitions` (all of them, or some: the rest stays
    /// due). Once every partition has its marker, the Complete record is written. Reports
    /// of other producers or epochs, or of unloaded partitions, are ignored.
    ///
    /// A partition that no longer exists (its topic deleted) counts as written, as Kafka
    /// drops it from the marker work.
    pub fn markers_written(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        _now: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(state) = self.markers.get_mut(transactional_id) else {
            return fx;
        };
        if state.work.producer_id != producer_id
            || state.work.producer_epoch != producer_epoch
            || !matches!(state.phase, Phase::Sending { .. })
        {
            return fx;
        }
        state.work.partitions.retain(|p| !partitions.contains(p));
        if state.work.partitions.is_empty() {
            state.phase = Phase::Writing;
            let complete = state.complete.clone();
            self.write(&mut fx, transactional_id, complete, AfterWrite::Complete);
        }
        fx
    }

    /// The broker could not write some of the markers (a leader moved, a timeout): they
    /// are handed out again after `marker_retry_backoff_ms`, by `tick`.
    pub fn markers_failed(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        now: i64,
    ) {
        let backoff = self.config.marker_retry_backoff_ms;
        if let Some(state) = self.markers.get_mut(transactional_id)
            && state.work.producer_id == producer_id
            && state.work.producer_epoch == producer_epoch
            && matches!(state.phase, Phase::Sending { .. })
        {
            state.phase = Phase::Sending {
                retry_at: now.saturating_add(backoff),
            };
        }
    }

    /// Does what is due at `now`: marker work not reported in time (or reported failed)
    /// is handed out again, failed Complete records are written again, and every Ongoing
    /// transaction past its timeout is aborted with a bumped epoch, which fences its
    /// producer (Kafka's `abortTimedOutTransactions`). Call it every ~100 ms, or at
    /// [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: i64) -> Effects {
        let mut fx = Effects::default();
        let timeout = self.config.marker_timeout_ms;
        let mut rewrite = Vec::new();
        for (id, state) in &mut self.markers {
            match state.phase {
                Phase::Sending { retry_at } if retry_at <= now => {
                    fx.markers.push(state.work.clone());
                    state.phase = Phase::Sending {
                        retry_at: now.saturating_add(timeout),
                    };
                }
                Phase::RetryWrite { at } if at <= now => {
                    state.phase = Phase::Writing;
                    rewrite.push((id.clone(), state.complete.clone()));
                }
                _ => {}
            }
        }
        for (id, complete) in rewrite {
            self.write(&mut fx, &id, complete, AfterWrite::Complete);
        }
        let expired: Vec<String> = self
            .transactions()
            .filter(|m| {
                m.state == TransactionState::Ongoing
                    && m.pending.is_none()
                    && m.start_timestamp.saturating_add(i64::from(m.timeout_ms)) < now
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            self.fence_and_abort(&id, now, None, &mut fx);
        }
        fx
    }

    /// The earliest time `tick` has something to do, if any.
    pub fn next_deadline(&self) -> Option<i64> {
        let markers = self.markers.values().filter_map(|s| match s.phase {
            Phase::Sending { retry_at } => Some(retry_at),
            Phase::RetryWrite { at } => Some(at),
            Phase::Writing => None,
        });
        let timeouts = self
            .transactions()
            .filter(|m| m.state == TransactionState::Ongoing && m.pending.is_none())
            .map(|m| {
                m.start_timestamp
                    .saturating_add(i64::from(m.timeout_ms))
                    .saturating_add(1)
            });
        markers.chain(timeouts).min()
    }

    /// Hands out the markers of a transaction whose Prepare record is durable, with its
    /// Complete transition pending; a transaction without partitions (a transaction
    /// version 2 abort of nothing) goes straight to its Complete record.
    pub(super) fn start_markers(&mut self, id: &str, now: i64, fx: &mut Effects) {
        let Ok(coordinator_epoch) = self.lookup(id) else {
            return;
        };
        let Some(meta) = self.txns.get_mut(id) else {
            return;
        };
        let result = if meta.state == TransactionState::PrepareCommit {
            TransactionResult::Commit
        } else {
            TransactionResult::Abort
        };
        let work = MarkerWork {
            transactional_id: id.to_string(),
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            result,
            coordinator_epoch,
            transaction_version: meta.client_transaction_version,
            partitions: meta.partitions.iter().cloned().collect(),
        };
        let Ok(complete) = meta.prepare_complete(now) else {
            return;
        };
        if work.partitions.is_empty() {
            self.markers.insert(
                id.to_string(),
                MarkerState {
                    work,
                    complete: complete.clone(),
                    phase: Phase::Writing,
                },
            );
            self.write(fx, id, complete, AfterWrite::Complete);
        } else {
            fx.markers.push(work.clone());
            let retry_at = now.saturating_add(self.config.marker_timeout_ms);
            self.markers.insert(
                id.to_string(),
                MarkerState {
                    work,
                    complete,
                    phase: Phase::Sending { retry_at },
                },
            );
        }
    }

    /// The Complete record of `id` failed: write it again after a backoff.
    pub(super) fn complete_write_failed(&mut self, id: &str, now: i64) {
        let at = now.saturating_add(self.config.marker_retry_backoff_ms);
        if let Some(state) = self.markers.get_mut(id) {
            state.phase = Phase::RetryWrite { at };
        }
    }

    /// Aborts `id`'s Ongoing transaction with a bumped epoch, fencing its producer: for an
    /// InitProducerId of a newer producer (`request`, answered CONCURRENT_TRANSACTIONS
    /// once the abort record is durable) or a timeout.
    pub(super) fn fence_and_abort(
        &mut self,
        id: &str,
        now: i64,
        request: Option<RequestId>,
        fx: &mut Effects,
    ) {
        let Some(meta) = self.txns.get_mut(id) else {
            return;
        };
        match meta.prepare_fence_and_abort(now) {
            Ok(transit) => self.write(fx, id, transit, AfterWrite::FenceAbort { request }),
            Err(_) => {
                if let Some(request) = request {
                    fx.respond(
                        request,
                        Response::InitProducerId(InitProducerIdResponse::error(
                            ErrorCode::UnknownServerError,
                        )),
                    );
                }
            }
        }
    }
}
