//! Observing a consumer group's end-to-end delivery latency when its OffsetCommit is
//! answered (the definition and its limits: `metrics/delivery.rs`).

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use strom_batch::{BATCH_HEADER_LEN, RecordBatchHeader, now_ms};
use strom_group::OffsetCommitRequest;
use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use crate::broker::Broker;

/// A commit on its way to the coordinator, remembered with the offsets it replaces so its
/// latencies can be observed once it is answered.
#[derive(Debug)]
pub(super) struct PendingCommit {
    broker: Arc<Broker>,
    group: String,
    /// `(topic, partition, new offset, offset committed before)`.
    offsets: Vec<(String, i32, i64, Option<i64>)>,
}

impl PendingCommit {
    /// Remembers what `req` commits and what the group had committed before.
    pub(super) fn new(broker: &Arc<Broker>, req: &OffsetCommitRequest) -> PendingCommit {
        let wanted: Vec<(String, i32)> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect();
        let before = broker.groups().committed_offsets(&req.group_id, &wanted);
        let offsets = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
            })
            .zip(before)
            .map(|((t, p, o), b)| (t, p, o, b))
            .collect();
        PendingCommit {
            broker: broker.clone(),
            group: req.group_id.clone(),
            offsets,
        }
    }

    /// Observes the delivery latency of every partition whose commit succeeded and moved
    /// the group forward. `errors` holds the coordinator's answer per partition.
    pub(super) fn answered(self, errors: &HashMap<(String, i32), ErrorCode>) {
        let now = now_ms();
        let mut histogram = None;
        for (topic, partition, offset, before) in self.offsets {
            let ok = errors.get(&(topic.clone(), partition)) == Some(&ErrorCode::None);
            if !ok || offset <= 0 || before.is_some_and(|b| offset <= b) {
                continue;
            }
            let tp = TopicPartition::new(topic, partition);
            let Some(timestamp) = batch_max_timestamp(&self.broker, &tp, offset - 1) else {
                continue;
            };
            let h = histogram
                .get_or_insert_with(|| self.broker.metrics().delivery.histogram(&self.group));
            let millis = u64::try_from(now.saturating_sub(timestamp)).unwrap_or(0);
            h.observe(Duration::from_millis(millis));
        }
    }
}

/// The `max_timestamp` of the batch holding `offset`, if it is still in the log and
/// carries a timestamp.
fn batch_max_timestamp(broker: &Broker, tp: &TopicPartition, offset: i64) -> Option<i64> {
    let (start, end) = broker.data().local_offsets(tp)?;
    if offset < start || offset >= end {
        return None;
    }
    let slice = broker.data().read_local(tp, offset, 1).ok()??;
    if slice.len < BATCH_HEADER_LEN as u64 {
        return None;
    }
    let mut header = [0u8; BATCH_HEADER_LEN];
    slice.file.read_exact_at(&mut header, slice.position).ok()?;
    let h = RecordBatchHeader::parse(&header, 0).ok()?;
    (h.base_offset <= offset && offset <= h.last_offset() && h.max_timestamp >= 0)
        .then_some(h.max_timestamp)
}

#[cfg(test)]
mod tests {
    use strom_batch::RecordBatchBuilder;
    use strom_group::{OffsetCommitPartition, OffsetCommitTopic, Response};

    use super::*;

    fn commit_req(group: &str, offsets: &[(i32, i64)]) -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: group.into(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: "t".into(),
                partitions: offsets
                    .iter()
                    .map(|&(p, o)| OffsetCommitPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    })
                    .collect(),
            }],
        }
    }

    /// Commits through the coordinator, then tells the delivery metric as the
    /// OffsetCommit handler does.
    fn commit(broker: &Arc<Broker>, group: &str, offsets: &[(i32, i64)]) {
        let req = commit_req(group, offsets);
        let pending = PendingCommit::new(broker, &req);
        let rx = broker
            .groups()
            .call(|c, id, now| c.offset_commit(id, req, now));
        let Response::OffsetCommit(r) = rx.blocking_recv().unwrap() else {
            panic!("not a commit answer");
        };
        let errors = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.clone(), p.partition_index), p.error))
            })
            .collect();
        pending.answered(&errors);
    }

    fn count(broker: &Broker, group: &str) -> (u64, f64) {
        let all = broker.metrics().delivery.snapshot(|_| true);
        all.iter()
            .find(|(g, _)| g == group)
            .map_or((0, 0.0), |(_, h)| (h.count, h.sum_seconds))
    }

    #[test]
    fn commits_that_move_forward_observe_the_age_of_their_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[("offsets_topic_partitions", "1")]);
        rt.block_on(
            broker
                .control()
                .create_topic("t", 2, -1, None, Default::default(), false),
        )
        .unwrap();
        // Offsets 0-2 produced 60 s ago, 3-4 produced 5 s ago.
        let now = now_ms();
        for (age, n) in [(60_000, 3), (5_000, 2)] {
            let mut b = RecordBatchBuilder::new();
            for _ in 0..n {
                b.push(now - age, None, Some(b"v"), &[]);
            }
            broker
                .data()
                .append(&TopicPartition::new("t", 0), &b.build())
                .unwrap();
        }

        commit(&broker, "g", &[(0, 5)]);
        let (n, sum) = count(&broker, "g");
        assert_eq!(n, 1);
        assert!((5.0..6.0).contains(&sum), "offset 4 is 5 s old: {sum}");

        // The same offset again, offset 0, and an earlier offset: nothing moves forward.
        commit(&broker, "g", &[(0, 5), (1, 0)]);
        commit(&broker, "g", &[(0, 2)]);
        assert_eq!(count(&broker, "g").0, 1);

        // From 2 to 3: the record at offset 2 is a minute old.
        commit(&broker, "g", &[(0, 3)]);
        let (n, sum) = count(&broker, "g");
        assert_eq!(n, 2);
        assert!((65.0..67.0).contains(&sum), "{sum}");

        // A group that no longer exists leaves the metric.
        assert!(broker.metrics().delivery.snapshot(|g| g != "g").is_empty());
        broker.close().unwrap();
    }
}
