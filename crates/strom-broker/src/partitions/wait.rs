//! Waiting on a partition: for its commit (acks=all), for this node's copy to be on disk
//! (acks=1), and for any change a long-polling fetch may answer with.

use std::time::Duration;

use strom_log::TopicPartition;
use strom_raft::{RaftError, Waiter};
use strom_wire::ErrorCode;
use tokio::sync::{oneshot, watch};

use super::{PartitionStatus, Partitions};
use crate::errors::{Failure, not_leader, offline, partition_raft_failure, unknown_partition};

/// Where an append learns that it is committed: the Raft group's own commit
/// notification for the append's entries (the one strom-sim checks).
#[derive(Debug)]
pub struct Commit {
    rx: oneshot::Receiver<Result<i64, RaftError>>,
}

impl Commit {
    /// A commit notification: the waiter goes to the Raft group.
    pub(super) fn new() -> (Waiter, Commit) {
        let (tx, rx) = oneshot::channel();
        let waiter: Waiter = Box::new(move |r| {
            // The request may have timed out and gone: nothing to tell then.
            let _ = tx.send(r);
        });
        (waiter, Commit { rx })
    }
}

impl Partitions {
    /// Resolves once an append is committed (acks=all): its entries are on a majority,
    /// each copy fsynced, in the term they were appended in, as the partition's Raft
    /// group reports through the [`Commit`] its append returned. Fails with
    /// NOT_LEADER_OR_FOLLOWER when leadership moves on first (the records may be
    /// replaced; an idempotent producer's retry is deduplicated), KAFKA_STORAGE_ERROR
    /// when this replica went offline, and REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait_committed(
        &self,
        tp: &TopicPartition,
        commit: &mut Commit,
        timeout: Duration,
    ) -> Result<(), Failure> {
        match tokio::time::timeout(timeout, &mut commit.rx).await {
            Ok(Ok(Ok(_))) => Ok(()),
            // A storage failure fails its waiters as `Offline`: KAFKA_STORAGE_ERROR.
            Ok(Ok(Err(e))) => Err(partition_raft_failure(tp, e)),
            // The group stopped and dropped its waiters.
            Ok(Err(_)) => Err(not_leader(tp)),
            Err(_) => Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!("{} was not replicated to a majority in time", tp.dir_name()),
            )),
        }
    }

    /// Resolves once this node's copy of a partition is on disk below `offset` (acks=1):
    /// fsynced when the log fsyncs every append (the default), written otherwise (the
    /// operator chose to fsync later). A failed write or fsync answers
    /// KAFKA_STORAGE_ERROR, so acks=1 is never answered for data a failing disk may drop.
    pub async fn wait_local_durable(
        &self,
        tp: &TopicPartition,
        offset: i64,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let per_append = self
            .logs
            .with_log(tp, |l| {
                l.config().flush == strom_log::FlushPolicy::EveryAppend
            })
            .ok_or_else(|| unknown_partition(tp))?;
        if !per_append {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.logs.when_durable(
            tp,
            offset,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Failure::new(
                ErrorCode::KafkaStorageError,
                format!("{} could not be made durable: {e}", tp.dir_name()),
            )),
            Ok(Err(_)) => Err(offline(tp)),
            Err(_) => Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!("{} was not written to disk in time", tp.dir_name()),
            )),
        }
    }

    /// A receiver of a partition's status: it changes when the partition's high
    /// watermark moves, its leadership changes or it goes offline (long-polling fetches
    /// wait on the partitions they read). `None` for a partition not served here.
    pub fn subscribe(&self, tp: &TopicPartition) -> Option<watch::Receiver<PartitionStatus>> {
        self.get(tp).map(|p| p.status.subscribe())
    }
}
