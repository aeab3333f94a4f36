//! Rebuilding the coordinator's state of one `__transaction_state` partition by replaying
//! its records in offset order.

use strom_log::TopicPartition;
use strom_txn::TransactionCoordinator;

use super::TXN_TOPIC;
use crate::errors::Failure;
use crate::partitions::{Partitions, Replayed};

/// Replays every record of the partition into a coordinator that `begin_load`ed it;
/// records it cannot read are skipped with a warning, a log that cannot be read is an
/// error.
pub(super) fn replay_partition(
    partitions: &Partitions,
    coordinator: &mut TransactionCoordinator,
    partition: i32,
) -> Result<(), Failure> {
    let tp = TopicPartition::new(TXN_TOPIC, partition);
    let replayed = partitions.replay_local(&tp, |item| {
        if let Replayed::Record {
            offset, key, value, ..
        } = item
            && let Err(e) = coordinator.replay(key, value)
        {
            tracing::warn!(partition = %tp.dir_name(), offset, error = %e, "skipping a record the transaction coordinator cannot read");
        }
    })?;
    tracing::debug!(partition = %tp.dir_name(), replayed, "loaded transactions");
    Ok(())
}
