//! What a partition's Raft group tells the data plane: commits move the high watermark,
//! leadership changes reset the leader's in-memory state, storage failures take the
//! replica offline. Each lands in the partition's status, waking whoever waits on it.

use std::collections::VecDeque;
use std::sync::Weak;

use strom_log::TopicPartition;
use strom_raft::GroupListener;

use super::{PartitionStatus, Partitions};

/// Feeds one partition replica's Raft events to the data plane.
pub(super) struct PartitionListener {
    partitions: Weak<Partitions>,
    tp: TopicPartition,
}

impl PartitionListener {
    pub(super) fn new(partitions: Weak<Partitions>, tp: TopicPartition) -> Self {
        PartitionListener { partitions, tp }
    }
}

impl GroupListener for PartitionListener {
    fn committed(&self, _group: u64, high_watermark: i64) {
        if let Some(p) = self.partitions.upgrade() {
            p.committed(&self.tp, high_watermark);
        }
    }

    fn leadership(&self, _group: u64, leader: Option<u64>, term: u64, is_leader: bool) {
        if let Some(p) = self.partitions.upgrade() {
            p.leadership_changed(&self.tp, leader.map(|l| l as i32), term, is_leader);
        }
    }

    fn storage_failed(&self, _group: u64, _cause: &str) {
        if let Some(p) = self.partitions.upgrade() {
            p.went_offline(&self.tp);
        }
    }
}

impl Partitions {
    /// A partition's leadership changed: forget producer state (the next leader
    /// rebuilds it from its log, which holds everything the old leader committed) and
    /// tell the leadership observer.
    fn leadership_changed(
        &self,
        tp: &TopicPartition,
        leader: Option<i32>,
        term: u64,
        is_leader: bool,
    ) {
        let Some(p) = self.get(tp) else { return };
        let was_leader = p.status.borrow().is_leader;
        p.status.send_modify(|s: &mut PartitionStatus| {
            s.term = term;
            s.leader = leader;
            s.is_leader = is_leader;
            // Only a running replica reports leadership: a recovered one is back.
            s.offline = false;
        });
        if is_leader != was_leader {
            self.metrics.leader_changed();
            *p.producers.lock().unwrap() = None;
            *p.uncommitted.lock().unwrap() = (VecDeque::new(), 0);
            if let Some(observe) = self.leadership.get() {
                observe(tp, is_leader);
            }
            tracing::info!(partition = %tp.dir_name(), term, ?leader, "leadership changed");
        }
    }

    /// This node's replica of a partition stopped after a storage error (see
    /// `RaftNode::fail_group`): it leads nothing until it is recovered.
    fn went_offline(&self, tp: &TopicPartition) {
        let Some(p) = self.get(tp) else { return };
        let was_leader = p.status.borrow().is_leader;
        p.status.send_modify(|s| {
            s.offline = true;
            s.is_leader = false;
            s.leader = None;
        });
        // Producer state and the uncommitted count are reset when the recovered replica
        // reports leadership again (`leadership_changed`).
        if was_leader {
            self.metrics.leader_changed();
            if let Some(observe) = self.leadership.get() {
                observe(tp, false);
            }
        }
    }

    fn committed(&self, tp: &TopicPartition, hw: i64) {
        let Some(p) = self.get(tp) else { return };
        p.status
            .send_modify(|s| s.high_watermark = s.high_watermark.max(hw));
        let mut u = p.uncommitted.lock().unwrap();
        while u.0.front().is_some_and(|&(end, _)| end <= hw) {
            let (_, bytes) = u.0.pop_front().unwrap();
            u.1 -= bytes;
        }
    }
}
