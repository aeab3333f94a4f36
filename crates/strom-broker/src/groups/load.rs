//! Rebuilding the coordinator's state of one `__consumer_offsets` partition by replaying
//! its records in offset order.

use strom_batch::{BatchIter, decode_records};
use strom_group::GroupCoordinator;
use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use super::OFFSETS_TOPIC;
use crate::errors::Failure;
use crate::partitions::Partitions;

/// How much of the log is read at once.
const READ_BYTES: usize = 1 << 20;

/// Replays every record of the partition into a coordinator that `begin_load`ed it.
/// Records the coordinator cannot decode are skipped with a warning (a newer Kafka
/// format, say); a log that cannot be read is an error.
pub(super) fn replay_partition(
    partitions: &Partitions,
    coordinator: &mut GroupCoordinator,
    partition: i32,
) -> Result<(), Failure> {
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
    let Some((start, end)) = partitions.local_offsets(&tp) else {
        return Ok(());
    };
    let corrupt = |what: String| Failure::new(ErrorCode::CorruptMessage, what);
    let mut offset = start;
    let mut replayed = 0u64;
    while offset < end {
        let Some(slice) = partitions.read_local(&tp, offset, READ_BYTES)? else {
            break;
        };
        let bytes = slice.read_to_vec().map_err(|e| Failure::from(&e))?;
        let before = offset;
        for batch in BatchIter::new(&bytes) {
            let (_, range) = batch.map_err(|e| corrupt(format!("{}: {e}", tp.dir_name())))?;
            let (header, records) = decode_records(&bytes[range])
                .map_err(|e| corrupt(format!("{}: {e}", tp.dir_name())))?;
            if header.is_control() {
                // Control batches (transaction markers) carry no group records.
                offset = offset.max(header.last_offset() + 1);
                continue;
            }
            for r in records {
                // A read starts at the batch holding `offset`: skip what was replayed.
                if r.offset < offset {
                    continue;
                }
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                if let Err(e) = coordinator.replay(key, r.value.as_deref()) {
                    tracing::warn!(partition = %tp.dir_name(), offset = r.offset, error = %e, "skipping a record the coordinator cannot read");
                }
                replayed += 1;
            }
            offset = offset.max(header.last_offset() + 1);
        }
        if offset == before {
            return Err(corrupt(format!(
                "{}: no progress reading at offset {offset}",
                tp.dir_name()
            )));
        }
    }
    tracing::debug!(partition = %tp.dir_name(), replayed, "loaded consumer groups");
    Ok(())
}
