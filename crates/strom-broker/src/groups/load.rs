//! Rebuilding the coordinator's state of one `__consumer_offsets` partition by replaying
//! its records in offset order.

use strom_group::{GroupCoordinator, ProducerRef};
use strom_log::TopicPartition;

use super::OFFSETS_TOPIC;
use crate::errors::Failure;
use crate::partitions::{Partitions, Replayed};

/// Replays every record of the partition into a coordinator that `begin_load`ed it.
/// Records the coordinator cannot decode are skipped with a warning (a newer Kafka
/// format, say); a log that cannot be read is an error.
pub(super) fn replay_partition(
    partitions: &Partitions,
    coordinator: &mut GroupCoordinator,
    partition: i32,
) -> Result<(), Failure> {
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
    let replayed = partitions.replay_local(&tp, |item| {
        let (offset, result) = match item {
            Replayed::Record {
                offset,
                transaction: None,
                key,
                value,
            } => (offset, coordinator.replay(key, value)),
            // A TxnOffsetCommit: pending until its transaction's marker.
            Replayed::Record {
                offset,
                transaction: Some((producer_id, producer_epoch)),
                key,
                value,
            } => (
                offset,
                coordinator.replay_transactional(
                    key,
                    value,
                    ProducerRef {
                        producer_id,
                        producer_epoch,
                    },
                ),
            ),
            Replayed::Marker {
                offset,
                producer_id,
                commit,
            } => (
                offset,
                coordinator.replay_marker(partition, producer_id, commit),
            ),
        };
        if let Err(e) = result {
            tracing::warn!(partition = %tp.dir_name(), offset, error = %e, "skipping a record the coordinator cannot read");
        }
    })?;
    tracing::debug!(partition = %tp.dir_name(), replayed, "loaded consumer groups");
    Ok(())
}
