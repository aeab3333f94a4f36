//! Reading back an internal topic's partition (`__consumer_offsets`,
//! `__transaction_state`) record by record, in offset order: how a coordinator rebuilds
//! its state when this node becomes the partition's leader.

use strom_batch::{BatchIter, decode_records, read_marker};
use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use super::Partitions;
use crate::errors::Failure;

/// How much of the log is read at once.
const READ_BYTES: usize = 1 << 20;

/// One item of a replay.
#[derive(Debug)]
pub enum Replayed<'a> {
    /// A record of a data batch; `transaction` is the producer (id, epoch) of a
    /// transactional batch.
    Record {
        offset: i64,
        transaction: Option<(i64, i16)>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// A transaction marker.
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

impl Partitions {
    /// Hands every keyed record and every transaction marker of this node's whole copy of
    /// a partition to `visit`, in offset order (as its leader, everything in it will be
    /// committed). Returns how many records were visited; a log that cannot be read is
    /// an error.
    pub fn replay_local(
        &self,
        tp: &TopicPartition,
        mut visit: impl FnMut(Replayed<'_>),
    ) -> Result<u64, Failure> {
        let Some((start, end)) = self.local_offsets(tp) else {
            return Ok(0);
        };
        let corrupt = |what: String| Failure::new(ErrorCode::CorruptMessage, what);
        let mut offset = start;
        let mut replayed = 0u64;
        while offset < end {
            let Some(slice) = self.read_local(tp, offset, READ_BYTES)? else {
                break;
            };
            let bytes = slice.read_to_vec().map_err(|e| Failure::from(&e))?;
            let before = offset;
            for batch in BatchIter::new(&bytes) {
                let (_, range) = batch.map_err(|e| corrupt(format!("{}: {e}", tp.dir_name())))?;
                let (header, records) = decode_records(&bytes[range.clone()])
                    .map_err(|e| corrupt(format!("{}: {e}", tp.dir_name())))?;
                if header.is_control() {
                    if header.base_offset >= offset
                        && let Some((kind, _)) = read_marker(&bytes[range])
                    {
                        visit(Replayed::Marker {
                            offset: header.base_offset,
                            producer_id: header.producer_id,
                            commit: kind.is_commit(),
                        });
                    }
                    offset = offset.max(header.last_offset() + 1);
                    continue;
                }
                let transaction = header
                    .is_transactional()
                    .then_some((header.producer_id, header.producer_epoch));
                for r in &records {
                    // A read starts at the batch holding `offset`: skip what was replayed.
                    if r.offset < offset {
                        continue;
                    }
                    let Some(key) = r.key.as_deref() else {
                        continue;
                    };
                    visit(Replayed::Record {
                        offset: r.offset,
                        transaction,
                        key,
                        value: r.value.as_deref(),
                    });
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
        Ok(replayed)
    }
}
