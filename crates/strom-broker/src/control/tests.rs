//! Start-up and topic lifecycle of the control plane, through a whole broker.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_batch::{RecordBatchBuilder, now_ms};
use strom_log::TopicPartition;

use crate::broker::Broker;
use crate::partition_dirs;

/// A topic of hundreds of partitions is started by several threads (see
/// `ensure_local_partitions`); every partition leads at once and takes writes, even
/// though the tick thread skips groups of one (`Replica::needs_ticks`).
#[test]
fn a_topic_of_many_partitions_starts_in_parallel_and_takes_writes() {
    const PARTITIONS: i32 = 300;
    let dir = tempfile::tempdir().unwrap();
    let rt = crate::test_broker::runtime();
    let _guard = rt.enter();
    let broker = crate::test_broker::open(dir.path(), &[("offsets_topic_partitions", "1")]);
    let meta = rt
        .block_on(broker.control().create_topic(
            "many",
            PARTITIONS,
            -1,
            None,
            BTreeMap::new(),
            false,
        ))
        .unwrap();
    assert_eq!(meta.partitions, PARTITIONS);
    for p in 0..PARTITIONS {
        let tp = TopicPartition::new("many", p);
        assert_eq!(
            broker.control().leader_of(&tp).map(|(l, _)| l),
            Some(1),
            "{p}"
        );
        assert_eq!(broker.control().in_sync_replicas(&tp), Some(vec![1]), "{p}");
    }
    for p in [0, PARTITIONS / 2, PARTITIONS - 1] {
        let tp = TopicPartition::new("many", p);
        let mut b = RecordBatchBuilder::new();
        b.push(now_ms(), None, Some(b"v"), &[]);
        let mut appended = broker.data().append(&tp, &b.build()).unwrap();
        rt.block_on(broker.data().wait_committed(
            &tp,
            &mut appended.commit,
            Duration::from_secs(5),
        ))
        .unwrap();
    }
    // Only the logs in use hold files, within the budget.
    let open_logs = broker.data().logs().open_log_count();
    assert!(
        open_logs <= broker.data().logs().config().max_open_logs,
        "{open_logs}"
    );
    broker.close().unwrap();
}

fn produce(rt: &tokio::runtime::Runtime, broker: &Broker, tp: &TopicPartition, n: u8) -> i64 {
    let mut b = RecordBatchBuilder::new();
    for i in 0..n {
        b.push(now_ms(), None, Some(&[i]), &[]);
    }
    let mut a = broker.data().append(tp, &b.build()).unwrap();
    rt.block_on(
        broker
            .data()
            .wait_committed(tp, &mut a.commit, Duration::from_secs(5)),
    )
    .unwrap();
    a.last_offset + 1
}

/// Waits until the local log of `tp` is led here and its high watermark reaches its
/// end (after a restart the new leader's empty entry commits shortly).
fn settled_end(broker: &Broker, tp: &TopicPartition) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, end) = broker.data().local_offsets(tp).unwrap();
        let hw = broker.data().status(tp).map_or(-1, |s| s.high_watermark);
        if hw == end || std::time::Instant::now() > deadline {
            return hw;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Delete + re-create under the same name, then restarts: replaying the metadata log
/// must not apply the old topic's creation and deletion to the new topic's directory
/// (it did: the new topic's records were gone after a restart).
#[test]
fn a_recreated_topic_keeps_its_records_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let rt = crate::test_broker::runtime();
    let _guard = rt.enter();
    let settings = [("offsets_topic_partitions", "1")];
    let broker = crate::test_broker::open(dir.path(), &settings);
    let tp = TopicPartition::new("t", 0);
    let old = rt
        .block_on(
            broker
                .control()
                .create_topic("t", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
    produce(&rt, &broker, &tp, 3);
    rt.block_on(broker.control().delete_topic("t")).unwrap();
    let new = rt
        .block_on(
            broker
                .control()
                .create_topic("t", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
    assert_ne!(new.id, old.id);
    let end = produce(&rt, &broker, &tp, 5);
    assert_eq!(end, 5, "the new log: 5 records from offset 0");
    assert_eq!(
        partition_dirs::read(&dir.path().join("t-0")),
        Some(new.id),
        "the directory carries the topic id"
    );
    broker.close().unwrap();
    drop(broker);
    for round in 0..2 {
        let broker = crate::test_broker::open(dir.path(), &settings);
        assert_eq!(
            broker.topics().get("t").unwrap().id,
            new.id,
            "round {round}"
        );
        let (start, _) = broker.data().local_offsets(&tp).unwrap();
        assert_eq!(start, 0);
        // A leader change takes no offset; nothing is lost.
        assert_eq!(settled_end(&broker, &tp), 5, "round {round}");
        broker.close().unwrap();
    }
}

/// Partition directories written before topic ids carry none: the live topic of
/// their name adopts them (and records its id); a directory a deleted topic left
/// behind (a crash before its removal) is removed at start-up, never reused.
#[test]
fn legacy_directories_are_adopted_and_deleted_topics_leftovers_removed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = crate::test_broker::runtime();
    let _guard = rt.enter();
    let settings = [("offsets_topic_partitions", "1")];
    let broker = crate::test_broker::open(dir.path(), &settings);
    let legacy = TopicPartition::new("legacy", 0);
    let meta = rt
        .block_on(
            broker
                .control()
                .create_topic("legacy", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
    produce(&rt, &broker, &legacy, 4);
    let gone = rt
        .block_on(
            broker
                .control()
                .create_topic("gone", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
    broker.close().unwrap();
    drop(broker);
    // A copy of "gone"'s directory survives its deletion, as after a crash between
    // committing the delete and renaming the directory.
    let saved = dir.path().join("saved-gone");
    std::fs::rename(dir.path().join("gone-0"), &saved).unwrap();
    std::fs::create_dir(dir.path().join("gone-0")).unwrap();
    std::fs::remove_file(dir.path().join("legacy-0").join(partition_dirs::FILE)).unwrap();
    let broker = crate::test_broker::open(dir.path(), &settings);
    rt.block_on(broker.control().delete_topic("gone")).unwrap();
    broker.close().unwrap();
    drop(broker);
    std::fs::rename(&saved, dir.path().join("gone-0")).unwrap();

    let broker = crate::test_broker::open(dir.path(), &settings);
    assert!(broker.topics().get("gone").is_none());
    assert!(
        !broker
            .data()
            .logs()
            .contains(&TopicPartition::new("gone", 0))
    );
    assert!(
        !dir.path().join("gone-0").exists(),
        "the leftover is removed"
    );
    // Three starts took no offsets: the 4 records.
    assert_eq!(settled_end(&broker, &legacy), 4, "adopted with its records");
    assert_eq!(
        partition_dirs::read(&dir.path().join("legacy-0")),
        Some(meta.id)
    );
    assert!(broker.control().meta.read().unwrap().was_deleted(gone.id));
    broker.close().unwrap();
}
