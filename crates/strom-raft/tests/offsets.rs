//! Kafka's offsets through a real `RaftNode` (docs/adr/0005-kafka-offsets.md): a group's
//! proposals get offsets dense from 0 across segments, restarts, leader changes and
//! retention, and a failed fsync of the group's anchors file stops the group and lets it
//! recover without losing or renumbering anything acknowledged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strom_batch::{RecordBatchBuilder, RecordBatchHeader};
use strom_log::disk::{self, Op, faults::Rule};
use strom_log::{LogConfig, LogManager, ManagerConfig, TopicPartition};
use strom_raft::{PeerTransport, RaftNode, ReplicaConfig};

fn tp() -> TopicPartition {
    TopicPartition::new("offsets", 0)
}

fn start_node(dir: &Path) -> (Arc<RaftNode>, Arc<LogManager>) {
    let mut config = ManagerConfig::new(dir);
    config.default_log = LogConfig {
        segment_bytes: 4 * 1024,
        retention_ms: None,
        ..LogConfig::default()
    };
    config.retention_check_interval = Duration::from_secs(86_400);
    let manager = LogManager::open(config).unwrap();
    if !manager.contains(&tp()) {
        manager.create(&tp(), None).unwrap();
    }
    let transport = PeerTransport::start(1, &HashMap::new());
    let node = RaftNode::start(
        1,
        manager.clone(),
        transport,
        ReplicaConfig::default(),
        Duration::from_millis(10),
    );
    node.add_group(1, tp(), &[1], false, None).unwrap();
    wait(|| node.status(1).is_some_and(|s| s.is_leader), "a leader");
    (node, manager)
}

fn wait(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn batch(first: u64, records: u64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for i in first..first + records {
        b.push(
            1_000,
            None,
            Some(format!("value-{i:06}-{}", "x".repeat(40)).as_bytes()),
            &[],
        );
    }
    b.build()
}

/// Proposes one batch and waits for its commit: `Ok((base, last))` or the error.
fn produce(node: &RaftNode, first: u64, records: u64) -> Result<(i64, i64), String> {
    let (tx, rx) = mpsc::channel();
    let proposed = node
        .propose(
            1,
            vec![batch(first, records)],
            Some(Box::new(move |r| {
                let _ = tx.send(r.map_err(|e| e.to_string()));
            })),
        )
        .map_err(|e| e.to_string())?;
    let last = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())??;
    assert_eq!(last, proposed.last_offset);
    Ok((proposed.base_offset, last))
}

/// Every batch header from the log start: (base offset, last offset).
fn stored(manager: &LogManager) -> Vec<(i64, i64)> {
    manager
        .with_log(&tp(), |l| {
            let start = l.log_start_offset();
            let first = l
                .batch_containing(start)
                .unwrap()
                .map_or(start, |h| h.base_offset);
            l.headers_from(first, usize::MAX)
                .unwrap()
                .iter()
                .map(|h: &RecordBatchHeader| (h.base_offset, h.last_offset()))
                .collect()
        })
        .unwrap()
}

fn assert_dense(batches: &[(i64, i64)], from: i64) {
    let mut next = from;
    for &(base, last) in batches {
        assert_eq!(base, next, "batches {batches:?}");
        next = last + 1;
    }
}

#[test]
fn offsets_are_dense_from_zero_across_segments_restarts_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, mut manager) = start_node(dir.path());
    let mut next_value = 0;
    let mut expected_end = 0;
    for round in 0..3 {
        for i in 0..60u64 {
            let records = 1 + (i % 5);
            let (base, last) = produce(&node, next_value, records).unwrap();
            assert_eq!(
                (base, last),
                (expected_end, expected_end + records as i64 - 1),
                "round {round}"
            );
            next_value += records;
            expected_end += records as i64;
        }
        let status = node.status(1).unwrap();
        assert_eq!(status.high_watermark, expected_end);
        assert!(manager.with_log(&tp(), |l| l.segment_count()).unwrap() > 3);
        // Retention removes whole old segments; what stays is still numbered right.
        manager
            .with_log(&tp(), |l| {
                let mut c = l.config().clone();
                c.retention_bytes = Some(6 * 1024);
                l.set_config(c);
                assert!(l.apply_retention(2_000).unwrap().segments_deleted > 0);
            })
            .unwrap();
        let start = manager.with_log(&tp(), |l| l.log_start_offset()).unwrap();
        assert!(start > 0);
        assert_dense(&stored(&manager), start);
        // A restart, with a new term: the empty entry takes no offset.
        node.shutdown();
        drop(node);
        manager.close().unwrap();
        drop(manager);
        let (n, m) = start_node(dir.path());
        (node, manager) = (n, m);
        assert_eq!(
            node.status(1).unwrap().high_watermark,
            expected_end,
            "round {round}"
        );
    }
    let (base, _) = produce(&node, next_value, 1).unwrap();
    assert_eq!(base, expected_end);
    node.shutdown();
}

#[test]
fn a_failed_fsync_of_the_anchors_stops_the_group_which_recovers_with_its_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (node, manager) = start_node(dir.path());
    let marker = dir.path().to_str().unwrap().to_string();
    disk::faults::inject(
        Rule::new(Op::Sync, format!("{marker}/offsets-0/raft-anchors"), 5).times(1),
    );
    let mut acked = Vec::new();
    let mut next_value = 0;
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.len() < 150 {
        assert!(Instant::now() < deadline, "acknowledged {}", acked.len());
        match produce(&node, next_value, 2) {
            Ok(r) => {
                acked.push(r);
                next_value += 2;
            }
            Err(_) => {
                failures += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    disk::faults::clear(&marker);
    assert!(failures > 0, "the anchors' fsync never failed");
    assert!(node.storage_failures() > 0);
    // Every acknowledged batch is where it was acknowledged, and offsets are dense.
    let batches = stored(&manager);
    assert_dense(&batches, 0);
    for a in &acked {
        assert!(batches.contains(a), "acknowledged {a:?} is not in the log");
    }
    node.shutdown();
}

/// A peer's entry must be exactly one batch: one holding two would be written whole
/// while the offsets counted only its first batch, and the replica's numbering would
/// drift from the log's.
#[test]
fn an_entry_of_two_batches_from_a_peer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ManagerConfig::new(dir.path());
    config.retention_check_interval = Duration::from_secs(86_400);
    let manager = LogManager::open(config).unwrap();
    manager.create(&tp(), None).unwrap();
    let log = strom_raft::LogRef {
        manager: manager.clone(),
        tp: tp(),
    };
    let mut storage = strom_raft::LogStorage::open(log, &[1, 2], false).unwrap();
    let entry = |index: u64, data: Vec<u8>| strom_raft::raft::eraftpb::Entry {
        index,
        term: 1,
        data: data.into(),
        ..Default::default()
    };
    // The leader's empty entry, then one batch: fine.
    storage
        .append(&[entry(1, Vec::new()), entry(2, batch(0, 2))], 0)
        .unwrap();
    let mut two = batch(2, 3);
    two.extend(batch(5, 1));
    match storage.append(&[entry(3, two)], 0) {
        Err(strom_raft::RaftError::BadEntry { index: 3, reason }) => {
            assert!(reason.contains("holding a batch of"), "{reason}")
        }
        other => panic!("an entry of two batches was not refused: {other:?}"),
    }
    assert_eq!(stored(&manager), vec![(0, 1)], "nothing of it was written");
}
