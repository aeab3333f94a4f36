//! Transactional offset commits (TxnOffsetCommit, KIP-98 and KIP-447) waiting for their
//! transaction to end: a group's *pending* offsets, per producer id, and the rules by
//! which a COMMIT marker turns them into committed offsets.
//!
//! **Precedence.** When a transaction commits, each of its pending offsets becomes the
//! committed offset of its partition only if its record is *later in the log* than the
//! record of the committed offset it would replace, as Kafka decides (by comparing the
//! records' log offsets): a plain OffsetCommit written after the transactional one wins,
//! whenever the marker comes. Strom does not compare log offsets (the coordinator does not
//! know them when it emits a record); it keeps the same information as a flag: a pending
//! offset is *superseded* once a record later in the log set the committed offset of its
//! partition, which is either a plain commit (written after every pending record that
//! exists at that time) or the materialization of another producer's pending offset with
//! a later record. Pending offsets carry their position among pending records (`order`:
//! the order the coordinator emitted or replayed them, which is their log order because
//! the broker appends records in the order of the calls and replays them in log order),
//! which decides between two producers' offsets for the same partition.
//!
//! Invariant, per group and partition: the superseded pending offsets are exactly those
//! whose record lies before the committed offset's record; every other pending offset lies
//! after it. `GroupCoordinator::snapshot` relies on it to re-state pending offsets in an
//! order that gives the same state on replay.

use std::collections::BTreeMap;

use crate::offsets::CommittedOffset;

/// One transactional offset commit that waits for its transaction's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingOffset {
    pub(crate) offset: CommittedOffset,
    /// Position of its record among the pending records (increasing in log order).
    pub(crate) order: u64,
    /// A record later in the log set the committed offset of this partition: on COMMIT
    /// this one is dropped instead of materialized.
    pub(crate) superseded: bool,
}

/// What one producer's open transaction committed for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingTxn {
    /// The epoch of its newest TxnOffsetCommit: the epoch its records are (re)written with.
    pub(crate) producer_epoch: i16,
    pub(crate) offsets: BTreeMap<(String, i32), PendingOffset>,
}

/// The pending transactional offsets of a group, by producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PendingOffsets {
    by_producer: BTreeMap<i64, PendingTxn>,
}

impl PendingOffsets {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// The producers with pending offsets.
    pub(crate) fn producers(&self) -> impl Iterator<Item = (i64, &PendingTxn)> {
        self.by_producer.iter().map(|(p, t)| (*p, t))
    }

    pub(crate) fn get(&self, producer_id: i64, key: &(String, i32)) -> Option<&PendingOffset> {
        self.by_producer.get(&producer_id)?.offsets.get(key)
    }

    /// Whether any producer has a pending offset for `key`.
    pub(crate) fn has(&self, key: &(String, i32)) -> bool {
        self.by_producer
            .values()
            .any(|t| t.offsets.contains_key(key))
    }

    /// Every partition some producer has a pending offset for.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &(String, i32)> {
        self.by_producer.values().flat_map(|t| t.offsets.keys())
    }

    /// A new transactional offset commit (its record is the newest pending one). A
    /// producer's second commit of the same partition in one transaction replaces the first.
    pub(crate) fn add(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        key: (String, i32),
        offset: CommittedOffset,
        order: u64,
    ) {
        let txn = self
            .by_producer
            .entry(producer_id)
            .or_insert_with(|| PendingTxn {
                producer_epoch,
                offsets: BTreeMap::new(),
            });
        txn.producer_epoch = producer_epoch;
        let pending = PendingOffset {
            offset,
            order,
            superseded: false,
        };
        txn.offsets.insert(key, pending);
    }

    /// A plain (non-transactional) commit of `key` was written: it is later in the log
    /// than every pending offset of `key`, so none of them may replace it.
    pub(crate) fn supersede(&mut self, key: &(String, i32)) {
        for txn in self.by_producer.values_mut() {
            if let Some(p) = txn.offsets.get_mut(key) {
                p.superseded = true;
            }
        }
    }

    /// A tombstone of `key` was written: as in Kafka it deletes the pending offsets of
    /// that partition too (of every producer). Producers left with nothing pending for
    /// the group are forgotten.
    pub(crate) fn remove_key(&mut self, key: &(String, i32)) -> bool {
        let mut removed = false;
        self.by_producer.retain(|_, txn| {
            removed |= txn.offsets.remove(key).is_some();
            !txn.offsets.is_empty()
        });
        removed
    }

    /// The producer's transaction ended. On commit, returns the offsets to materialize
    /// (those not superseded), and marks the other producers' pending offsets of the same
    /// partitions whose records are older than the materialized one as superseded.
    pub(crate) fn complete(
        &mut self,
        producer_id: i64,
        commit: bool,
    ) -> Vec<((String, i32), CommittedOffset)> {
        let Some(txn) = self.by_producer.remove(&producer_id) else {
            return Vec::new();
        };
        if !commit {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, p) in txn.offsets {
            if p.superseded {
                continue;
            }
            for other in self.by_producer.values_mut() {
                if let Some(o) = other.offsets.get_mut(&key)
                    && o.order < p.order
                {
                    o.superseded = true;
                }
            }
            out.push((key, p.offset));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(o: i64) -> CommittedOffset {
        CommittedOffset {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: None,
        }
    }

    fn key() -> (String, i32) {
        ("t".to_string(), 0)
    }

    fn committed(v: Vec<((String, i32), CommittedOffset)>) -> Vec<i64> {
        v.into_iter().map(|(_, o)| o.offset).collect()
    }

    #[test]
    fn abort_drops_and_commit_materializes() {
        let mut p = PendingOffsets::default();
        p.add(1, 0, key(), offset(5), 0);
        assert!(p.has(&key()));
        assert!(committed(p.complete(1, false)).is_empty());
        assert!(p.is_empty());
        p.add(1, 0, key(), offset(6), 1);
        assert_eq!(committed(p.complete(1, true)), [6]);
        // A marker of a producer with nothing pending changes nothing.
        assert!(p.complete(1, true).is_empty());
    }

    #[test]
    fn the_later_record_wins_between_producers() {
        let mut p = PendingOffsets::default();
        p.add(1, 0, key(), offset(10), 0);
        p.add(2, 0, key(), offset(20), 1);
        // The later record commits first: the earlier one must not replace it.
        assert_eq!(committed(p.complete(2, true)), [20]);
        assert!(p.get(1, &key()).unwrap().superseded);
        assert!(committed(p.complete(1, true)).is_empty());

        // The earlier record commits first: the later one still replaces it.
        p.add(1, 0, key(), offset(10), 2);
        p.add(2, 0, key(), offset(20), 3);
        assert_eq!(committed(p.complete(1, true)), [10]);
        assert_eq!(committed(p.complete(2, true)), [20]);
    }

    #[test]
    fn a_plain_commit_supersedes_and_a_tombstone_removes() {
        let mut p = PendingOffsets::default();
        p.add(1, 0, key(), offset(10), 0);
        p.supersede(&key());
        p.add(2, 0, key(), offset(20), 1);
        assert!(committed(p.complete(1, true)).is_empty());
        assert_eq!(committed(p.complete(2, true)), [20]);

        p.add(1, 0, key(), offset(10), 2);
        p.add(1, 0, ("u".to_string(), 0), offset(11), 3);
        assert!(p.remove_key(&key()));
        assert!(!p.remove_key(&key()));
        assert!(!p.is_empty(), "the producer still has u-0 pending");
        assert_eq!(committed(p.complete(1, true)), [11]);
    }
}
