//! End-to-end delivery latency per consumer group: how long after a record was produced
//! the group consumed it, as the group's commits tell.
//!
//! Definition: when a group's OffsetCommit of offset `N` for a partition succeeds (is
//! durable) and `N` is above the offset the group had committed there before, the broker
//! reads the header of the batch holding offset `N - 1` (the last record the commit
//! covers) and observes `now - max_timestamp` of that batch, `now` being the broker's
//! clock when the commit is answered. Strom stores batches as producers sent them
//! (CreateTime), so `max_timestamp` is the producer's clock when it built the batch.
//!
//! Limits (also in docs/metrics.md): a commit says the group is done with a record, not
//! when it read it, so the commit interval of the consumer is included (auto-commit every
//! 5 s makes values up to ~5 s higher); only the last record of each commit is measured;
//! the producer's and broker's clocks must agree (skew shows up as-is; a negative
//! difference is observed as 0); a group reading a backlog measures the backlog's age,
//! which is exactly its delivery latency; a commit of a record already deleted by
//! retention is not observed.

//!
//! The observation itself is made by the OffsetCommit handler (`handlers/delivery.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::histogram::{DELIVERY_BUCKETS, Histogram};

/// The per-group delivery latency histograms.
#[derive(Debug, Default)]
pub struct Delivery {
    groups: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl Delivery {
    /// Snapshots of every group's histogram, by group id; groups for which `keep` is
    /// false (deleted or moved away) are forgotten.
    pub fn snapshot(
        &self,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Vec<(String, super::histogram::HistogramSnapshot)> {
        let mut groups = self.groups.lock().unwrap();
        groups.retain(|g, _| keep(g));
        groups
            .iter()
            .map(|(g, h)| (g.clone(), h.snapshot()))
            .collect()
    }

    pub(crate) fn histogram(&self, group: &str) -> Arc<Histogram> {
        let mut groups = self.groups.lock().unwrap();
        if let Some(h) = groups.get(group) {
            return h.clone();
        }
        let h = Arc::new(Histogram::new(DELIVERY_BUCKETS));
        groups.insert(group.to_string(), h.clone());
        h
    }
}
