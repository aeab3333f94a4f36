//! Carrying out the coordinator's marker work: a COMMIT or ABORT control batch appended
//! to every partition of an ended transaction through that partition's Raft group, each
//! awaited until committed, then reported back (the coordinator then writes the
//! transaction's Complete record). Partitions this node leads are written in-process;
//! the others get one WriteTxnMarkers request per leader, as Kafka's coordinator sends
//! them. A partition whose leader is unknown or whose write failed is reported failed,
//! and the coordinator hands its marker out again after a backoff.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_batch::{ControlType, now_ms};
use strom_log::TopicPartition;
use strom_txn::{ErrorCode, MarkerWork};
use strom_wire::kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use strom_wire::kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use strom_wire::kafka_protocol::protocol::StrBytes;

use super::{COMMIT_TIMEOUT, Txns};
use crate::errors::Failure;
use crate::groups::OFFSETS_TOPIC;
use crate::partitions::Appended;

/// How a partition's marker write ended, for the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Written and committed, or not needed (the topic is gone, or a newer epoch or
    /// coordinator has been there: this transaction's outcome is superseded, and Kafka
    /// gives up on such a marker too).
    Done,
    /// To be tried again.
    Retry,
}

fn outcome_of(code: ErrorCode) -> Outcome {
    match code {
        ErrorCode::None
        | ErrorCode::InvalidProducerEpoch
        | ErrorCode::TransactionCoordinatorFenced => Outcome::Done,
        _ => Outcome::Retry,
    }
}

impl Txns {
    /// Appends a marker to a partition this node leads; a group's `__consumer_offsets`
    /// partition applies it to its transactional offset commits in the same step.
    pub fn write_local_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        kind: ControlType,
    ) -> Result<Appended, Failure> {
        if tp.topic == OFFSETS_TOPIC {
            self.groups.write_marker(
                tp.partition,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                kind,
            )
        } else {
            self.partitions
                .append_marker(tp, producer_id, producer_epoch, coordinator_epoch, kind)
        }
    }

    /// Appends a marker here and waits until it is committed: the error code a
    /// WriteTxnMarkers answer gives for the partition.
    pub async fn write_marker_committed(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        kind: ControlType,
    ) -> ErrorCode {
        if !self.topics.has_partition(&tp.topic, tp.partition) {
            return ErrorCode::UnknownTopicOrPartition;
        }
        let appended =
            self.write_local_marker(tp, producer_id, producer_epoch, coordinator_epoch, kind);
        let mut a = match appended {
            Ok(a) => a,
            Err(f) => {
                tracing::debug!(partition = %tp.dir_name(), error = %f.message, "marker not written");
                return f.code;
            }
        };
        match self
            .partitions
            .wait_committed(tp, &mut a.commit, COMMIT_TIMEOUT)
            .await
        {
            Ok(()) => ErrorCode::None,
            Err(f) => {
                tracing::debug!(partition = %tp.dir_name(), error = %f.message, "marker not committed");
                f.code
            }
        }
    }

    /// Writes the markers of `work` in a task of their own and reports the outcome.
    pub(super) fn spawn_markers(self: &Arc<Self>, work: MarkerWork) {
        let txns = self.clone();
        self.runtime.spawn(async move {
            let kind = ControlType::of(work.result.is_commit());
            let mut written = Vec::new();
            let mut failed = false;
            let mut remote: BTreeMap<String, Vec<strom_txn::TopicPartition>> = BTreeMap::new();
            let mut local = Vec::new();
            for p in &work.partitions {
                let tp = TopicPartition::new(p.topic.clone(), p.partition);
                if !txns.topics.has_partition(&tp.topic, tp.partition) {
                    // The topic is gone: nothing to mark, as Kafka drops it.
                    written.push(p.clone());
                } else if let Some((_, addr)) = txns.links.remote_leader(&tp) {
                    remote.entry(addr).or_default().push(p.clone());
                } else {
                    local.push(p.clone());
                }
            }
            let locals = local.iter().map(|p| {
                let txns = &txns;
                let work = &work;
                async move {
                    let tp = TopicPartition::new(p.topic.clone(), p.partition);
                    let code = txns
                        .write_marker_committed(
                            &tp,
                            work.producer_id,
                            work.producer_epoch,
                            work.coordinator_epoch,
                            kind,
                        )
                        .await;
                    (p.clone(), code)
                }
            });
            let remotes = remote
                .iter()
                .map(|(addr, partitions)| txns.send_markers(addr, &work, partitions));
            let (locals, remotes) = futures_util::future::join(
                futures_util::future::join_all(locals),
                futures_util::future::join_all(remotes),
            )
            .await;
            for (p, code) in locals.into_iter().chain(remotes.into_iter().flatten()) {
                match outcome_of(code) {
                    Outcome::Done => {
                        if code != ErrorCode::None {
                            tracing::warn!(topic = %p.topic, partition = p.partition, transactional_id = %work.transactional_id, ?code, "marker superseded");
                        }
                        written.push(p)
                    }
                    Outcome::Retry => failed = true,
                }
            }
            let mut inner = txns.inner.lock().unwrap();
            let now = now_ms();
            let fx = inner.coordinator.markers_written(
                &work.transactional_id,
                work.producer_id,
                work.producer_epoch,
                &written,
                now,
            );
            if failed {
                inner.coordinator.markers_failed(
                    &work.transactional_id,
                    work.producer_id,
                    work.producer_epoch,
                    now,
                );
            }
            txns.apply(&mut inner, fx);
        });
    }

    /// One WriteTxnMarkers request to the leader at `addr` for `partitions`: each
    /// partition's error code (a failed request fails them all, to be retried).
    async fn send_markers(
        &self,
        addr: &str,
        work: &MarkerWork,
        partitions: &[strom_txn::TopicPartition],
    ) -> Vec<(strom_txn::TopicPartition, ErrorCode)> {
        let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
        for p in partitions {
            match topics.last_mut() {
                Some(t) if t.name.0.as_str() == p.topic => t.partition_indexes.push(p.partition),
                _ => topics.push(
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(p.topic.clone())))
                        .with_partition_indexes(vec![p.partition]),
                ),
            }
        }
        let req = WriteTxnMarkersRequest::default().with_markers(vec![
            WritableTxnMarker::default()
                .with_producer_id(ProducerId(work.producer_id))
                .with_producer_epoch(work.producer_epoch)
                .with_transaction_result(work.result.is_commit())
                .with_coordinator_epoch(work.coordinator_epoch)
                .with_topics(topics),
        ]);
        let answer = match self.links.send(addr, &req).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(addr, error = %e, "WriteTxnMarkers failed; will retry");
                return partitions
                    .iter()
                    .map(|p| (p.clone(), ErrorCode::RequestTimedOut))
                    .collect();
            }
        };
        partitions
            .iter()
            .map(|p| {
                let code = answer
                    .markers
                    .iter()
                    .flat_map(|m| &m.topics)
                    .filter(|t| t.name.0.as_str() == p.topic)
                    .flat_map(|t| &t.partitions)
                    .find(|r| r.partition_index == p.partition)
                    .map_or(ErrorCode::UnknownServerError, |r| {
                        ErrorCode::from_code(r.error_code).unwrap_or(ErrorCode::UnknownServerError)
                    });
                (p.clone(), code)
            })
            .collect()
    }
}
