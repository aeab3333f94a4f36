//! Record batches for the coordinators' internal topics (`__consumer_offsets`,
//! `__transaction_state`): keyed records, uncompressed, split to stay well below the
//! default max.message.bytes; records of a transaction go in transactional batches of
//! their producer without sequence numbers, as Kafka's coordinators write them.

use strom_batch::RecordBatchBuilder;

/// Batches are kept well below the default max.message.bytes (a huge set splits).
pub(crate) const MAX_BATCH_BYTES: usize = 512 * 1024;

/// One record of an internal topic: key, value (`None`: a tombstone) and, for a
/// transactional offset commit, its producer (id, epoch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedRecord<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) producer: Option<(i64, i16)>,
}

/// The records in order, as batches of at most about [`MAX_BATCH_BYTES`] each; a batch
/// holds records of one producer (or of none) only.
pub(crate) fn batches<'a>(
    records: impl IntoIterator<Item = KeyedRecord<'a>>,
    now: i64,
) -> Vec<Vec<u8>> {
    let builder = |p: Option<(i64, i16)>| match p {
        Some((id, epoch)) => RecordBatchBuilder::new()
            .producer(id, epoch, -1)
            .transactional(),
        None => RecordBatchBuilder::new(),
    };
    let mut out = Vec::new();
    let mut current = None;
    let mut b = builder(current);
    for r in records {
        let full = !b.is_empty()
            && (r.producer != current
                || b.size() + r.key.len() + r.value.map_or(0, |v| v.len()) > MAX_BATCH_BYTES);
        if full {
            out.push(b.build());
        }
        if full || b.is_empty() {
            current = r.producer;
            b = builder(current);
        }
        b.push(now, Some(r.key), r.value, &[]);
    }
    if !b.is_empty() {
        out.push(b.build());
    }
    out
}
