//! Turning the coordinator's records into RecordBatch v2 batches and appending them to
//! `__consumer_offsets` through the same write path as any partition.

use std::collections::{BTreeMap, BTreeSet};

use strom_group::OffsetsRecord;
use strom_log::TopicPartition;

use super::OFFSETS_TOPIC;
use strom_batch::now_ms;

use crate::internal_batches::{self, KeyedRecord};
use crate::partitions::{Commit, Origin, Partitions};

/// What an append of one call's records did.
#[derive(Debug, Default)]
pub(super) struct Appended {
    /// Per written partition, where its last batch's commit is told (the batches of a
    /// partition commit in order).
    pub durable: Vec<(TopicPartition, Commit)>,
    /// Partitions where an append failed.
    pub failed: BTreeSet<i32>,
}

/// Appends `records` grouped by partition, keeping their order within each partition
/// (the only order that matters: a later record for the same key wins).
pub(super) fn append_records(partitions: &Partitions, records: Vec<OffsetsRecord>) -> Appended {
    let mut by_partition: BTreeMap<i32, Vec<OffsetsRecord>> = BTreeMap::new();
    for r in records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut out = Appended::default();
    let now = now_ms();
    for (partition, records) in by_partition {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let mut end = None;
        for batch in batches(&records, now) {
            match partitions.append_from(&tp, &batch, Origin::Coordinator) {
                Ok(a) => end = Some(a.commit),
                Err(f) => {
                    tracing::error!(partition = %tp.dir_name(), error = %f.message, "appending to __consumer_offsets failed");
                    out.failed.insert(partition);
                    break;
                }
            }
        }
        if !out.failed.contains(&partition)
            && let Some(commit) = end
        {
            out.durable.push((tp, commit));
        }
    }
    out
}

/// The bytes `records` take in the log, batch headers included (compaction weighs a
/// partition against its snapshot's size).
pub(super) fn encoded_size(records: &[OffsetsRecord]) -> u64 {
    batches(records, 0).iter().map(|b| b.len() as u64).sum()
}

/// The records as batches, in order (see `internal_batches`).
fn batches(records: &[OffsetsRecord], now: i64) -> Vec<Vec<u8>> {
    internal_batches::batches(
        records.iter().map(|r| KeyedRecord {
            key: &r.key,
            value: r.value.as_deref(),
            producer: r.transaction.map(|p| (p.producer_id, p.producer_epoch)),
        }),
        now,
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use strom_group::ProducerRef;

    use super::*;

    #[test]
    fn tombstones_keep_null_values_and_big_sets_split() {
        let rec = |k: &str, v: Option<Vec<u8>>| OffsetsRecord {
            partition: 0,
            key: Bytes::from(k.as_bytes().to_vec()),
            value: v.map(Bytes::from),
            transaction: None,
        };
        let small = batches(&[rec("a", Some(vec![1])), rec("a", None)], 7);
        assert_eq!(small.len(), 1);
        let (_, recs) = strom_batch::decode_records(&small[0]).unwrap();
        assert_eq!(recs[0].value, Some(vec![1]));
        assert_eq!(recs[1].key.as_deref(), Some(&b"a"[..]));
        assert_eq!(recs[1].value, None);

        let big: Vec<_> = (0..10)
            .map(|i| rec(&format!("k{i}"), Some(vec![0; 200 * 1024])))
            .collect();
        let split = batches(&big, 7);
        let txn = |p: i64| {
            let mut r = rec("t", Some(vec![2]));
            r.transaction = Some(ProducerRef {
                producer_id: p,
                producer_epoch: 3,
            });
            r
        };
        let mixed = batches(
            &[
                rec("a", Some(vec![1])),
                txn(9),
                txn(9),
                txn(8),
                rec("b", None),
            ],
            7,
        );
        let headers: Vec<_> = mixed
            .iter()
            .map(|b| {
                let (h, recs) = strom_batch::decode_records(b).unwrap();
                (
                    h.is_transactional(),
                    h.producer_id,
                    h.base_sequence,
                    recs.len(),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                (false, -1, -1, 1),
                (true, 9, -1, 2),
                (true, 8, -1, 1),
                (false, -1, -1, 1)
            ]
        );
        assert!(split.len() >= 4, "{} batches", split.len());
        let total: usize = split
            .iter()
            .map(|b| strom_batch::decode_records(b).unwrap().1.len())
            .sum();
        assert_eq!(total, 10);
    }
}
