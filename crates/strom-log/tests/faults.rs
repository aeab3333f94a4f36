//! Storage faults injected under a real `PartitionLog` and `LogManager` (strom-log's
//! `disk` layer): a failed fsync or write takes the log offline and is never followed by
//! a durable offset that covers it; recovery cuts back to what was durable; and the
//! image a power loss would leave (unsynced data and unsynced directory entries gone)
//! still holds everything a flush reported durable.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::batch_at;
use strom_log::disk::{self, Op, faults::Rule};
use strom_log::{
    Deleter, FlushPolicy, LogConfig, LogError, LogManager, ManagerConfig, PartitionLog,
    TopicPartition,
};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        segment_ms: None,
        retention_ms: None,
        flush: FlushPolicy::EveryAppend,
        ..LogConfig::default()
    }
}

/// Appends the batch for the log's end offset; returns its last offset.
fn append_next(log: &mut PartitionLog, seed: u64) -> Result<i64, LogError> {
    let end = log.log_end_offset();
    let mut b = batch_at(seed, end, 1);
    common::append(log, &mut b, 1, 1_000).map(|i| i.last_offset)
}

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, config(), Deleter::start())
        .unwrap()
        .0
}

/// Reads every record batch header of a log from `from`, checking offsets are dense.
fn read_all(log: &mut PartitionLog) -> i64 {
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20, None).unwrap();
        let bytes = r.slice.expect("data at offset").read_to_vec().unwrap();
        let batches = common::batches_in(&bytes);
        assert!(!batches.is_empty(), "nothing readable at {next}");
        for (_, h) in batches {
            if h.last_offset() < next {
                continue;
            }
            assert!(h.base_offset <= next);
            next = h.last_offset() + 1;
        }
    }
    next
}

#[test]
fn a_failed_fsync_takes_the_log_offline_and_a_later_fsync_cannot_cover_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fsyncgate-0");
    let mut log = open(&dir);
    for _ in 0..3 {
        append_next(&mut log, 7).unwrap();
    }
    let durable = log.flush().unwrap();
    assert_eq!(durable, log.log_end_offset());
    append_next(&mut log, 7).unwrap();
    disk::faults::inject(Rule::new(Op::Sync, "fsyncgate-0", EIO).times(1));
    let err = log.flush().unwrap_err();
    assert!(matches!(err, LogError::Io { .. }), "{err}");
    // The fault fired once only: a second fsync would succeed, and must not be tried.
    let again = log.flush().unwrap_err();
    assert!(matches!(again, LogError::Offline { .. }), "{again}");
    assert_eq!(log.durable_offset(), durable);
    assert!(matches!(
        append_next(&mut log, 7).unwrap_err(),
        LogError::Offline { .. }
    ));
    assert!(
        log.read(0, 1024, None).is_err(),
        "an offline log serves no reads"
    );

    // Recovery cuts back to the last successful fsync, durably, and the log goes on.
    log.recover_after_fault().unwrap();
    assert_eq!(log.log_end_offset(), durable);
    assert!(log.offline_cause().is_none());
    let last = append_next(&mut log, 7).unwrap();
    assert_eq!(log.flush().unwrap(), last + 1);
    assert_eq!(read_all(&mut log), last + 1);
    drop(log);
    let mut reopened = open(&dir);
    assert_eq!(reopened.log_end_offset(), last + 1);
    assert_eq!(read_all(&mut reopened), last + 1);
    disk::faults::clear("fsyncgate-0");
}

#[test]
fn a_full_disk_fails_the_append_and_recovery_resumes_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("enospc-0");
    let mut log = open(&dir);
    append_next(&mut log, 3).unwrap();
    log.flush().unwrap();
    disk::faults::inject(Rule::new(Op::Write, "enospc-0", ENOSPC));
    let err = append_next(&mut log, 3).unwrap_err();
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(matches!(
        append_next(&mut log, 3).unwrap_err(),
        LogError::Offline { .. }
    ));
    // Still full: recovery fails (its checkpoint write fails) and the log stays offline.
    assert!(log.recover_after_fault().is_err());
    assert!(log.offline_cause().is_some());
    disk::faults::clear("enospc-0");
    log.recover_after_fault().unwrap();
    let last = append_next(&mut log, 3).unwrap();
    log.flush().unwrap();
    assert_eq!(read_all(&mut log), last + 1);
}

#[test]
fn the_manager_recovers_an_offline_log_and_reports_it_until_then() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mgr-faults");
    let manager = LogManager::open(ManagerConfig {
        default_log: config(),
        ..ManagerConfig::new(&data)
    })
    .unwrap();
    let tp = TopicPartition::new("mgrfault", 0);
    manager.create(&tp, None).unwrap();
    let log = manager.log(&tp).unwrap();
    append_next(&mut log.lock().unwrap(), 5).unwrap();
    let durable = manager.group_commit().wait_durable(&log, 1).unwrap();
    append_next(&mut log.lock().unwrap(), 5).unwrap();
    disk::faults::inject(Rule::new(Op::Sync, "mgrfault-0", EIO).times(1));
    let end = log.lock().unwrap().log_end_offset();
    assert!(manager.group_commit().wait_durable(&log, end).is_err());
    // The next round would succeed, but the log is offline: it cannot be acknowledged.
    assert!(manager.group_commit().wait_durable(&log, end).is_err());
    assert_eq!(manager.offline().len(), 1);
    assert!(manager.recover(&tp).unwrap());
    assert!(manager.offline().is_empty());
    assert_eq!(log.lock().unwrap().log_end_offset(), durable);
    append_next(&mut log.lock().unwrap(), 5).unwrap();
    let end = log.lock().unwrap().log_end_offset();
    assert_eq!(manager.group_commit().wait_durable(&log, end).unwrap(), end);
    manager.close().unwrap();
    disk::faults::clear("mgrfault-0");
}

#[test]
fn interval_flush_failures_take_the_log_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("interval-faults");
    let manager = LogManager::open(ManagerConfig {
        default_log: LogConfig {
            flush: FlushPolicy::Interval(std::time::Duration::from_millis(10)),
            ..config()
        },
        ..ManagerConfig::new(&data)
    })
    .unwrap();
    let tp = TopicPartition::new("intfault", 0);
    manager.create(&tp, None).unwrap();
    disk::faults::inject(Rule::new(Op::Sync, "intfault-0", EIO));
    let log = manager.log(&tp).unwrap();
    append_next(&mut log.lock().unwrap(), 9).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while manager.offline().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "interval flush failure ignored"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(log.lock().unwrap().durable_offset(), 0);
    // Reported once, for the owner to recover; not retried every tick meanwhile.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(manager.take_background_failures(), vec![tp.clone()]);
    assert!(manager.take_background_failures().is_empty());
    disk::faults::clear("intfault-0");
    assert!(manager.recover(&tp).unwrap());
    assert_eq!(log.lock().unwrap().log_end_offset(), 0);
    manager.close().unwrap();
}

/// What a power loss leaves: only directory entries whose directory was fsynced, and
/// each file as of its last fsync. Everything a flush reported durable must be in it:
/// the partition directory itself, segments created by rolls, their data.
#[test]
fn a_power_loss_keeps_everything_flushed_including_new_directories_and_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("journal-root");
    std::fs::create_dir_all(&root).unwrap();
    disk::journal::start(&root).unwrap();
    let manager = LogManager::open(ManagerConfig {
        default_log: config(),
        ..ManagerConfig::new(root.join("data"))
    })
    .unwrap();
    let tp = TopicPartition::new("powerloss", 0);
    manager.create(&tp, None).unwrap();
    let log = manager.log(&tp).unwrap();
    // Enough to roll several 16 KiB segments.
    for _ in 0..120 {
        append_next(&mut log.lock().unwrap(), 11).unwrap();
    }
    let end = log.lock().unwrap().log_end_offset();
    assert!(log.lock().unwrap().segment_count() > 2);
    let durable = manager.group_commit().wait_durable(&log, end).unwrap();
    assert_eq!(durable, end);
    // Unsynced: written after the last flush.
    for _ in 0..5 {
        append_next(&mut log.lock().unwrap(), 11).unwrap();
    }
    let image = tmp.path().join("after-power-loss");
    disk::journal::crash_image(&root, &image).unwrap();
    disk::journal::stop(&root);
    std::mem::forget(manager); // the "machine" died: no clean shutdown

    let recovered = LogManager::open(ManagerConfig {
        default_log: config(),
        ..ManagerConfig::new(image.join("data"))
    })
    .unwrap();
    let log = recovered
        .log(&tp)
        .expect("the partition directory survived the power loss");
    let mut log = log.lock().unwrap();
    assert!(
        log.log_end_offset() >= durable,
        "durable offsets lost: end {} < durable {durable}",
        log.log_end_offset()
    );
    assert_eq!(read_all(&mut log), log.log_end_offset());
    drop(log);
    let _ = Arc::new(recovered).close();
}

#[test]
fn fault_specs_parse() {
    let rules =
        disk::faults::parse("sync:EIO:path=orders-0:skip=3:times=1; write:ENOSPC:every=7").unwrap();
    assert_eq!(rules[1].every, 7);
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].op, Op::Sync);
    assert_eq!(
        (rules[0].skip, rules[0].times, rules[0].errno),
        (3, Some(1), EIO)
    );
    assert_eq!(rules[1].path_contains, "");
    assert!(disk::faults::parse("fsync:EIO").is_err());
    assert!(disk::faults::parse("sync:EIO:color=red").is_err());
}

#[test]
fn recovery_attempts_that_fail_leave_nothing_behind_for_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("retryrecover-0");
    let mut log = open(&dir);
    for _ in 0..4 {
        append_next(&mut log, 13).unwrap();
    }
    let durable = log.flush().unwrap();
    for _ in 0..4 {
        append_next(&mut log, 13).unwrap();
    }
    // The flush fails, and so do the fsyncs of the next two recovery attempts (each
    // cuts the file, then cannot make the cut durable).
    disk::faults::inject(Rule::new(Op::Sync, "retryrecover-0", EIO).times(3));
    assert!(log.flush().is_err());
    assert!(log.recover_after_fault().is_err());
    assert!(log.recover_after_fault().is_err());
    log.recover_after_fault().unwrap();
    assert_eq!(log.log_end_offset(), durable);
    let last = append_next(&mut log, 13).unwrap();
    assert_eq!(log.flush().unwrap(), last + 1);
    assert_eq!(read_all(&mut log), last + 1);
    disk::faults::clear("retryrecover-0");
}

/// A failed fsync may drop a batch's pages while later writes reach the disk: the file
/// then reads zeros where the dropped batch was, with valid batches after it. Past the
/// durable point that is lost, unacknowledged data; recovery must cut it there rather
/// than refuse to open the log.
#[test]
fn zeros_from_dropped_writes_past_the_durable_point_are_cut_not_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("droppedpages-0");
    let mut log = open(&dir);
    for _ in 0..3 {
        append_next(&mut log, 17).unwrap();
    }
    let durable = log.flush().unwrap();
    let size_durable = log.size_bytes();
    for _ in 0..3 {
        append_next(&mut log, 17).unwrap();
    }
    let end = log.log_end_offset();
    std::mem::forget(log); // a crash: no clean checkpoint
    let seg = common::segment_files(&dir).pop().unwrap().1;
    let mut bytes = std::fs::read(&seg).unwrap();
    let first_unsynced = common::batches_in(&bytes)
        .into_iter()
        .find(|(pos, _)| *pos == size_durable)
        .expect("a batch right after the durable point");
    let len = first_unsynced.1.total_size();
    bytes[size_durable as usize..size_durable as usize + len].fill(0);
    std::fs::write(&seg, &bytes).unwrap();

    let (mut log, report) = PartitionLog::open(&dir, config(), Deleter::start()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        durable,
        "cut at the lost batch (end was {end})"
    );
    assert!(report.bytes_truncated > 0);
    assert_eq!(read_all(&mut log), durable);
}

#[test]
fn every_nth_operation_fails_after_the_skipped_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("everynth-0");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f");
    let f = disk::create_empty(&path).unwrap();
    disk::faults::inject(
        Rule::new(Op::Sync, "everynth-0", EIO)
            .skip(2)
            .every(3)
            .times(2),
    );
    let outcomes: Vec<bool> = (0..12)
        .map(|_| disk::sync_data(&f, &path).is_ok())
        .collect();
    // Matches 1-2 skipped; then every third (5, 8) fails, twice at most.
    let failed: Vec<usize> = (0..12).filter(|&i| !outcomes[i]).map(|i| i + 1).collect();
    assert_eq!(failed, vec![5, 8]);
    disk::faults::clear("everynth-0");
}
