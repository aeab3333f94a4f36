//! Compaction of `__consumer_offsets` by snapshot, so the topic does not grow without
//! bound and start-up does not replay every commit ever made.
//!
//! Kafka compacts the topic by rewriting old segments to keep the newest record per key.
//! Strom gets the same result without rewriting segment files: the coordinator already
//! holds the newest value of every live key, so it writes them all again
//! ([`GroupCoordinator::snapshot`](strom_group::GroupCoordinator::snapshot)) at the end
//! of the partition, in a fresh segment, and once they are durable the log start moves to
//! the snapshot's first offset (DeleteRecords), which deletes every older segment.
//! Replaying from the new log start reads the snapshot and what came after it: for each
//! key its newest value, as after Kafka's compaction. Deleted and expired keys are not in
//! the snapshot, so their tombstones (all below the new log start) need not be kept.
//!
//! Crash safety: until the log start moves, the partition holds its whole history
//! followed by the snapshot. Every snapshot record re-states the value its key already
//! has at that point of the log, so replaying history + snapshot gives the same state as
//! the history alone; a crash between the append and the DeleteRecords loses nothing
//! (the next check simply compacts again). The log start is only moved once the snapshot
//! is durable, so it never points past records that a crash could lose.

use std::sync::Arc;
use std::time::Instant;

use strom_group::Effects;
use strom_log::TopicPartition;

use super::{Groups, Inner, OFFSETS_TOPIC, append};

/// A compaction whose snapshot is being appended: once durable, the log start of
/// `partition` moves to `snapshot_start`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Compaction {
    pub partition: i32,
    pub snapshot_start: i64,
}

impl Groups {
    /// Starts compacting each served partition that holds more than
    /// `offsets_compaction_min_bytes` and more than twice its snapshot, at most once per
    /// `offsets_compaction_check`. Runs under the coordinator lock, so the snapshot is
    /// the state after every earlier call and before every later one, and its records
    /// take their place in the log in that order, through the same path as any call's.
    pub(super) fn maybe_compact(self: &Arc<Self>, inner: &mut Inner) {
        let now = Instant::now();
        if inner.next_compaction_check.is_some_and(|at| now < at) {
            return;
        }
        inner.next_compaction_check = Some(now + self.compaction.check);
        let Some(partitions) = self.topics.get(OFFSETS_TOPIC).map(|t| t.partitions) else {
            return;
        };
        let min_bytes = self.compaction.min_bytes;
        for partition in 0..partitions {
            // A partition being reloaded has no trustworthy state; one being compacted
            // would only get a second, redundant snapshot.
            if !inner.coordinator.is_active(partition)
                || inner.reload.contains(&partition)
                || inner.compacting.contains(&partition)
            {
                continue;
            }
            let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
            // Every compaction starts its snapshot in a fresh segment and then deletes
            // all segments below it, so the segments held are the bytes above the log
            // start (before the first compaction, the whole log from offset 0).
            let Some(size) = self.partitions.logs().with_log(&tp, |l| l.size_bytes()) else {
                continue;
            };
            if size <= min_bytes {
                continue;
            }
            let snapshot = inner.coordinator.snapshot(partition);
            let snapshot_bytes = append::encoded_size(&snapshot);
            if size <= min_bytes.max(snapshot_bytes.saturating_mul(2)) {
                continue;
            }
            let start = self.partitions.logs().with_log(&tp, |l| {
                l.roll()?;
                Ok::<_, strom_log::LogError>(l.log_end_offset())
            });
            let snapshot_start = match start {
                Some(Ok(start)) => start,
                Some(Err(e)) => {
                    tracing::warn!(partition = %tp.dir_name(), error = %e, "cannot roll __consumer_offsets for compaction");
                    continue;
                }
                None => continue,
            };
            tracing::info!(
                partition = %tp.dir_name(),
                bytes = size,
                snapshot_records = snapshot.len(),
                snapshot_bytes,
                "compacting __consumer_offsets"
            );
            inner.compacting.insert(partition);
            let fx = Effects {
                records: snapshot,
                responses: vec![],
            };
            self.apply_then(
                inner,
                fx,
                Some(Compaction {
                    partition,
                    snapshot_start,
                }),
            );
        }
    }

    /// The snapshot of `c` is durable (or could not be written, `ok` false): moves the
    /// log start to it, deleting every older segment.
    pub(super) fn finish_compaction(&self, c: Compaction, ok: bool) {
        // Under the coordinator lock, so no reload replays the partition meanwhile.
        let mut inner = self.inner.lock().unwrap();
        inner.compacting.remove(&c.partition);
        if !ok {
            return;
        }
        let tp = TopicPartition::new(OFFSETS_TOPIC, c.partition);
        // `wait_durable` does not wait under flush policies other than per append (the
        // commits themselves then are not durable on acknowledgement), but the history
        // below the snapshot must never be deleted before the snapshot is on disk.
        let moved = self.partitions.logs().with_log(&tp, |l| {
            l.flush()?;
            l.delete_records(c.snapshot_start)
        });
        match moved {
            Some(Ok(start)) => {
                let bytes = self.partitions.logs().with_log(&tp, |l| l.size_bytes());
                tracing::info!(partition = %tp.dir_name(), log_start = start, bytes, "compacted __consumer_offsets");
            }
            Some(Err(e)) => {
                tracing::warn!(partition = %tp.dir_name(), error = %e, "moving the __consumer_offsets log start failed; compaction will be retried");
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::broker::Broker;
    use std::time::Duration;

    use strom_group::{OffsetFetchGroup, OffsetFetchRequest, Response};
    use strom_wire::ErrorCode;

    use super::*;

    const PARTITIONS: i32 = 2;

    /// A broker whose `__consumer_offsets` partitions are compacted at every tick once
    /// they pass 16 KiB.
    fn open(dir: &std::path::Path) -> Arc<Broker> {
        let partitions = PARTITIONS.to_string();
        crate::test_broker::open(
            dir,
            &[
                ("offsets_topic_partitions", &partitions),
                ("offsets_compaction_check_ms", "0"),
                ("offsets_compaction_min_bytes", "16384"),
            ],
        )
    }

    fn commit(broker: &Arc<Broker>, group: &str, offsets: &[(i32, i64)]) {
        super::super::tests::commit_with(broker, group, "t", offsets, |o| Some(format!("at {o}")));
    }

    /// Every committed (partition, offset, metadata) of a group, through OffsetFetch.
    fn fetch(broker: &Arc<Broker>, group: &str) -> Vec<(i32, i64, Option<String>)> {
        let req = OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.into(),
                topics: None,
            }],
            require_stable: false,
        };
        let rx = broker
            .groups()
            .call(|c, id, now| c.offset_fetch(id, req, now));
        let Response::OffsetFetch(r) = rx.blocking_recv().unwrap() else {
            panic!("not a fetch answer");
        };
        assert_eq!(r.groups[0].error, ErrorCode::None);
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset, p.metadata.clone()))
            })
            .collect()
    }

    fn log_state(broker: &Broker, partition: i32) -> (i64, i64, u64) {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        broker
            .data()
            .logs()
            .with_log(&tp, |l| {
                (l.log_start_offset(), l.log_end_offset(), l.size_bytes())
            })
            .unwrap()
    }

    #[test]
    fn compaction_moves_the_log_start_and_a_restart_keeps_the_latest_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = open(dir.path());
        let groups = ["alpha", "beta", "gamma", "delta"];
        let mut expected = std::collections::BTreeMap::new();
        for round in 0..150i64 {
            for (i, g) in groups.iter().enumerate() {
                let offsets: Vec<(i32, i64)> = (0..4)
                    .map(|p| (p, round * 10 + i as i64 + i64::from(p)))
                    .collect();
                commit(&broker, g, &offsets);
                expected.insert(*g, offsets);
            }
        }
        // A deleted offset must stay deleted after compaction and restart.
        let req = strom_group::OffsetDeleteRequest {
            group_id: "delta".into(),
            topics: vec![strom_group::OffsetDeleteTopic {
                name: "t".into(),
                partition_indexes: vec![3],
            }],
        };
        let _ = broker
            .groups()
            .call(|c, id, now| c.offset_delete(id, req, now))
            .blocking_recv()
            .unwrap();
        expected.get_mut("delta").unwrap().retain(|&(p, _)| p != 3);

        let before: Vec<_> = (0..PARTITIONS).map(|p| log_state(&broker, p)).collect();
        assert!(
            before
                .iter()
                .all(|&(start, _, size)| start == 0 && size > 16384)
        );
        broker.groups().tick();
        // The log start moves once the snapshot is durable, in a background task.
        let deadline = Instant::now() + Duration::from_secs(10);
        let after = loop {
            let after: Vec<_> = (0..PARTITIONS).map(|p| log_state(&broker, p)).collect();
            if after.iter().zip(&before).all(|(a, b)| a.0 >= b.1) {
                break after;
            }
            assert!(
                Instant::now() < deadline,
                "no compaction: {before:?} -> {after:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        for (p, (a, b)) in after.iter().zip(&before).enumerate() {
            assert_eq!(a.0, b.1, "partition {p}: the log starts at the snapshot");
            assert!(
                a.2 * 10 < b.2,
                "partition {p} did not shrink: {b:?} -> {a:?}"
            );
        }
        // Small now: a further check leaves it alone.
        broker.groups().tick();
        std::thread::sleep(Duration::from_millis(100));
        let again: Vec<_> = (0..PARTITIONS).map(|p| log_state(&broker, p)).collect();
        assert_eq!(again, after);

        let want = |g: &str| -> Vec<(i32, i64, Option<String>)> {
            expected[g]
                .iter()
                .map(|&(p, o)| (p, o, Some(format!("at {o}"))))
                .collect()
        };
        for g in groups {
            assert_eq!(fetch(&broker, g), want(g), "{g} before the restart");
        }
        broker.close().unwrap();
        drop(broker);

        let broker = open(dir.path());
        for (p, a) in after.iter().enumerate() {
            assert_eq!(log_state(&broker, p as i32).0, a.0, "the log start is kept");
        }
        for g in groups {
            assert_eq!(fetch(&broker, g), want(g), "{g} replayed from the snapshot");
        }
        // Commits after compaction land after the snapshot and win on replay.
        commit(&broker, "alpha", &[(0, 99_999)]);
        broker.close().unwrap();
        drop(broker);
        let broker = open(dir.path());
        assert_eq!(
            fetch(&broker, "alpha")[0],
            (0, 99_999, Some("at 99999".into()))
        );
        broker.close().unwrap();
    }
}
