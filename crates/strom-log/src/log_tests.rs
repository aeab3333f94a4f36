//! Unit tests of `PartitionLog` against real files in a temporary directory.

use super::*;
use strom_batch::RecordBatchBuilder;

#[path = "../tests/common/stamp.rs"]
mod stamp;

/// Appends as a Raft replica does, through the log's one write path: `batches` are
/// stamped in place with the log's next offsets and `epoch`, then go through
/// [`PartitionLog::append_replicated`].
fn append(
    log: &mut PartitionLog,
    batches: &mut [u8],
    epoch: i32,
    now_ms: i64,
) -> Result<AppendInfo> {
    stamp::stamp_batches(batches, log.log_end_offset(), epoch);
    log.append_replicated(batches, now_ms)
}

fn batch(records: usize, value_len: usize, ts: i64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for i in 0..records {
        b.push(
            ts,
            Some(format!("k{i}").as_bytes()),
            Some(&vec![b'v'; value_len]),
            &[],
        );
    }
    b.build()
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        max_index_bytes: 4096,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, config, Deleter::start()).unwrap()
}

/// Leaves the log as a crash would: no flush, no checkpoint, no trimming.
fn crash(log: PartitionLog) {
    std::mem::forget(log);
}

#[test]
fn appended_batches_continue_the_log_and_read_back_as_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, report) = open(dir.path(), small_config());
    assert!(!report.clean);
    let mut b = batch(3, 10, 1000);
    let info = append(&mut log, &mut b, 7, 0).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.batches),
        (0, 2, 1)
    );
    let mut b = batch(2, 10, 1001);
    let info = append(&mut log, &mut b, 7, 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    let read = log.read(4, 1 << 20, None).unwrap();
    let slice = read.slice.unwrap();
    assert_eq!(slice.first_offset, 3);
    assert_eq!(slice.last_offset, 4);
    let bytes = slice.read_to_vec().unwrap();
    let h = RecordBatchHeader::validate(&bytes, 0).unwrap();
    assert_eq!((h.base_offset, h.partition_leader_epoch), (3, 7));
    assert_eq!(bytes, b);
}

#[test]
fn corrupt_or_oversized_batches_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 500,
            ..small_config()
        },
    );
    let mut good = batch(1, 10, 1);
    let mut bad = batch(1, 10, 1);
    let n = bad.len();
    bad[n - 1] ^= 1;
    let mut both = good.clone();
    both.extend_from_slice(&bad);
    assert!(matches!(
        append(&mut log, &mut both, 0, 0),
        Err(LogError::InvalidBatch(_))
    ));
    let mut big = batch(1, 600, 1);
    assert!(matches!(
        append(&mut log, &mut big, 0, 0),
        Err(LogError::MessageTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    append(&mut log, &mut good, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn reads_respect_max_bytes_but_return_one_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    let mut sizes = Vec::new();
    for i in 0..20 {
        let mut b = batch(2, 50 + i, 10);
        sizes.push(b.len() as u64);
        append(&mut log, &mut b, 0, 0).unwrap();
    }
    // Tiny max_bytes: still the whole first batch.
    let s = log.read(0, 1, None).unwrap().slice.unwrap();
    assert_eq!((s.len, s.first_offset, s.last_offset), (sizes[0], 0, 1));
    // Room for exactly three batches.
    let s = log
        .read(0, (sizes[0] + sizes[1] + sizes[2] + 5) as usize, None)
        .unwrap()
        .slice
        .unwrap();
    assert_eq!((s.len, s.last_offset), (sizes[0] + sizes[1] + sizes[2], 5));
    // An upper bound (high watermark) cuts at a batch boundary.
    let s = log.read(3, 1 << 20, Some(8)).unwrap().slice.unwrap();
    assert_eq!((s.first_offset, s.last_offset), (2, 7));
    assert!(log.read(8, 1 << 20, Some(8)).unwrap().slice.is_none());
    // The end is empty, beyond it is out of range, and so is below the start.
    assert!(log.read(40, 100, None).unwrap().slice.is_none());
    assert!(matches!(
        log.read(41, 100, None),
        Err(LogError::OffsetOutOfRange {
            start: 0,
            end: 40,
            ..
        })
    ));
    assert!(matches!(
        log.read(-1, 100, None),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn rolls_segments_and_reopens_cleanly_without_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for i in 0..100 {
        let mut b = batch(1, 100, 1000 + i);
        append(&mut log, &mut b, 1, 0).unwrap();
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let all: Vec<Vec<u8>> = (0..100)
        .map(|o| {
            log.read(o, 1, None)
                .unwrap()
                .slice
                .unwrap()
                .read_to_vec()
                .unwrap()
        })
        .collect();
    log.close().unwrap();
    drop(log);
    let (mut log, report) = open(dir.path(), small_config());
    assert!(report.clean);
    assert_eq!(report.segments_scanned, 0);
    assert_eq!(log.log_end_offset(), 100);
    for (o, expect) in all.iter().enumerate() {
        assert_eq!(
            &log.read(o as i64, 1, None)
                .unwrap()
                .slice
                .unwrap()
                .read_to_vec()
                .unwrap(),
            expect
        );
    }
    let mut b = batch(1, 10, 5000);
    assert_eq!(append(&mut log, &mut b, 1, 0).unwrap().base_offset, 100);
}

#[test]
fn rolls_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(
        dir.path(),
        LogConfig {
            segment_ms: Some(1000),
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    append(&mut log, &mut batch(1, 10, 0), 0, 10_000).unwrap();
    append(&mut log, &mut batch(1, 10, 0), 0, 10_500).unwrap();
    assert_eq!(log.segment_count(), 1);
    append(&mut log, &mut batch(1, 10, 0), 0, 11_000).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn finds_offsets_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for i in 0..60i64 {
        append(&mut log, &mut batch(2, 40, 1000 + i * 10), 0, 0).unwrap();
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 0);
    assert_eq!(log.offset_for_timestamp(1000).unwrap().unwrap().offset, 0);
    assert_eq!(
        log.offset_for_timestamp(1001).unwrap().unwrap(),
        TimestampOffset {
            offset: 2,
            timestamp: 1010
        }
    );
    assert_eq!(log.offset_for_timestamp(1300).unwrap().unwrap().offset, 60);
    assert_eq!(log.offset_for_timestamp(1590).unwrap().unwrap().offset, 118);
    assert_eq!(log.offset_for_timestamp(1591).unwrap(), None);
    assert_eq!(
        log.max_timestamp_offset().unwrap(),
        Some(TimestampOffset {
            offset: 119,
            timestamp: 1590
        })
    );
    log.close().unwrap();
    drop(log);
    let (mut log, _) = open(dir.path(), small_config());
    assert_eq!(log.offset_for_timestamp(1300).unwrap().unwrap().offset, 60);
}

#[test]
fn truncate_to_removes_the_tail_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for _ in 0..50 {
        append(&mut log, &mut batch(2, 100, 5), 0, 0).unwrap();
    }
    let segments = log.segment_count();
    log.truncate_to(30).unwrap();
    assert_eq!(log.log_end_offset(), 30);
    assert!(log.segment_count() < segments);
    // Truncating inside a batch removes the whole batch.
    log.truncate_to(27).unwrap();
    assert_eq!(log.log_end_offset(), 26);
    assert_eq!(
        append(&mut log, &mut batch(1, 10, 5), 2, 0)
            .unwrap()
            .base_offset,
        26
    );
    assert!(log.read(26, 1, None).unwrap().slice.is_some());
    drop(log);
    let (log, _) = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 27);
}

#[test]
fn retention_by_size_and_age_and_delete_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(8192),
        ..small_config()
    };
    let (mut log, _) = open(dir.path(), config);
    for i in 0..100 {
        append(&mut log, &mut batch(1, 200, 1000 + i), 0, 0).unwrap();
    }
    let out = log.apply_retention(0).unwrap();
    assert!(out.segments_deleted > 0);
    assert!(log.size_bytes() <= 8192 + 4096, "{}", log.size_bytes());
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(matches!(
        log.read(start - 1, 10, None),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(start, 10, None).unwrap().slice.is_some());

    // DeleteRecords moves the start inside a segment.
    assert_eq!(log.delete_records(start + 3).unwrap(), start + 3);
    assert!(log.read(start + 2, 10, None).is_err());
    assert!(log.delete_records(101).is_err());

    // Age: everything is older than the TTL, so everything goes, the end stays.
    let mut config = log.config().clone();
    config.retention_ms = Some(1000);
    log.set_config(config);
    log.apply_retention(1099 + 1001).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    assert_eq!(log.log_end_offset(), 100);
    assert_eq!(log.size_bytes(), 0);
    log.close().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
}

#[test]
fn flush_advances_durable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for _ in 0..30 {
        append(&mut log, &mut batch(1, 200, 1), 0, 0).unwrap();
    }
    assert_eq!(log.durable_offset(), 0);
    assert_eq!(log.flush().unwrap(), 30);
    assert_eq!(log.durable_offset(), 30);
    assert_eq!(log.unflushed(), (0, None));
}

#[test]
fn a_segment_rolled_while_a_flush_runs_is_synced_by_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    append(&mut log, &mut batch(1, 100, 1), 0, 0).unwrap();
    let plan = log.begin_flush().unwrap().unwrap();
    // Group commit runs the plan without the log's lock: appends go on meanwhile, into
    // the segment being synced and then into a new one once it rolls.
    append(&mut log, &mut batch(1, 100, 1), 0, 0).unwrap();
    append(&mut log, &mut batch(1, 4000, 1), 0, 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    plan.execute().unwrap();
    assert_eq!(log.finish_flush(plan).unwrap(), 1);
    // The first segment's second batch was not covered by that plan.
    let next = log.begin_flush().unwrap().unwrap();
    let first = dir.path().join(format!("{:020}.log", 0));
    assert!(
        next.files.iter().any(|(_, p)| *p == first),
        "{:?}",
        next.files
    );
}

#[test]
fn unclean_shutdown_recovers_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    for _ in 0..20 {
        append(&mut log, &mut batch(1, 100, 1), 0, 0).unwrap();
    }
    log.flush().unwrap();
    for _ in 0..5 {
        append(&mut log, &mut batch(1, 100, 1), 0, 0).unwrap();
    }
    crash(log);
    // A torn write: half a batch at the end.
    let seg = dir.path().join(format!("{:020}.log", 0));
    let half = &batch(1, 100, 1)[..70];
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(half);
    std::fs::write(&seg, &bytes).unwrap();
    let (log, report) = open(dir.path(), small_config());
    assert!(!report.clean);
    assert_eq!(report.bytes_truncated, 70);
    assert_eq!(log.log_end_offset(), 25);
}

#[test]
fn damage_with_valid_data_after_it_is_reported_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            ..small_config()
        },
    );
    let mut positions = Vec::new();
    for _ in 0..10 {
        positions.push(log.size_bytes());
        append(&mut log, &mut batch(1, 100, 1), 0, 0).unwrap();
    }
    crash(log);
    let seg = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let flip = positions[4] as usize + 80;
    bytes[flip] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    match PartitionLog::open(dir.path(), small_config(), Deleter::start()) {
        Err(LogError::Corrupt { path, position, .. }) => {
            assert_eq!(path, seg);
            assert_eq!(position, positions[4]);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn verify_finds_damage_in_trusted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for _ in 0..40 {
        append(&mut log, &mut batch(1, 200, 1), 0, 0).unwrap();
    }
    log.close().unwrap();
    drop(log);
    let seg = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[300] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let (mut log, report) = open(dir.path(), small_config());
    assert!(report.clean);
    assert!(matches!(log.verify(), Err(LogError::Corrupt { position, .. }) if position < 300));
}

#[test]
fn lost_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for i in 0..60 {
        append(&mut log, &mut batch(1, 150, 100 + i), 0, 0).unwrap();
    }
    log.flush().unwrap();
    crash(log);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "index") {
            std::fs::write(&p, [0xffu8; 24]).unwrap();
        }
    }
    let (mut log, _) = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 60);
    for o in 0..60 {
        assert_eq!(log.read(o, 1, None).unwrap().slice.unwrap().first_offset, o);
    }
    assert_eq!(log.offset_for_timestamp(130).unwrap().unwrap().offset, 30);
}

#[test]
fn prevalidated_appends_skip_only_the_crc() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    let mut b = batch(3, 10, 1);
    RecordBatchHeader::stamp_base_offset(&mut b, 0);
    // A flipped bit inside the CRC's range: append_replicated refuses it; the caller of
    // append_prevalidated vouches for the CRC, so only the framing is checked.
    let mut corrupt = b.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(
        log.append_replicated(&corrupt, 0),
        Err(LogError::InvalidBatch(
            strom_batch::BatchError::CrcMismatch { .. }
        ))
    ));
    assert!(matches!(
        log.append_prevalidated(&b[..b.len() - 1], 0),
        Err(LogError::InvalidBatch(
            strom_batch::BatchError::Truncated { .. }
        ))
    ));
    let mut later = b.clone();
    RecordBatchHeader::stamp_base_offset(&mut later, 5);
    assert!(matches!(
        log.append_prevalidated(&later, 0),
        Err(LogError::NonContiguous {
            expected: 0,
            got: 5
        })
    ));
    let info = log.append_prevalidated(&b, 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(
        log.read(0, 1 << 20, None)
            .unwrap()
            .slice
            .unwrap()
            .read_to_vec()
            .unwrap(),
        b
    );
}

#[test]
fn replicated_appends_must_be_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let (mut leader, _) = open(&dir.path().join("a"), small_config());
    let (mut follower, _) = open(&dir.path().join("b"), small_config());
    append(&mut leader, &mut batch(3, 10, 1), 4, 0).unwrap();
    append(&mut leader, &mut batch(2, 10, 1), 4, 0).unwrap();
    let first = leader
        .read(0, 1, None)
        .unwrap()
        .slice
        .unwrap()
        .read_to_vec()
        .unwrap();
    let second = leader
        .read(3, 1, None)
        .unwrap()
        .slice
        .unwrap()
        .read_to_vec()
        .unwrap();
    assert!(matches!(
        follower.append_replicated(&second, 0),
        Err(LogError::NonContiguous {
            expected: 0,
            got: 3
        })
    ));
    follower.append_replicated(&first, 0).unwrap();
    follower.append_replicated(&second, 0).unwrap();
    assert_eq!(
        follower
            .read(0, 1 << 20, None)
            .unwrap()
            .slice
            .unwrap()
            .read_to_vec()
            .unwrap(),
        [first, second].concat()
    );
}

#[test]
fn retention_without_producer_timestamps_uses_the_file_age() {
    // librdkafka sends max timestamp 0 when the application gives none: such fresh data
    // must not count as written in 1970 and be deleted at the next retention pass.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(60_000),
        ..small_config()
    };
    let (mut log, _) = open(dir.path(), config);
    for _ in 0..30 {
        append(&mut log, &mut batch(1, 200, 0), 0, 0).unwrap();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(log.apply_retention(now).unwrap().segments_deleted, 0);
    assert_eq!(log.log_start_offset(), 0);
    // An hour later by the clock, the files are older than the TTL: everything goes.
    log.apply_retention(now + 3_600_000).unwrap();
    assert_eq!(log.log_start_offset(), 30);
}

#[test]
fn retention_records_the_epoch_before_the_first_segment_and_stops_at_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(1),
        ..small_config()
    };
    let (mut log, _) = open(dir.path(), config.clone());
    assert_eq!(log.raft_start(), (0, 0));
    for epoch in 1..=12 {
        let mut b = batch(5, 200, 1000);
        append(&mut log, &mut b, epoch, 0).unwrap();
    }
    assert!(log.segment_count() > 3);
    assert_eq!(log.epoch_at(0).unwrap(), Some(1));
    assert_eq!(log.epoch_at(59).unwrap(), Some(12));
    assert_eq!(log.epoch_at(60).unwrap(), None);

    // Nothing at or above the ceiling may go, whatever the size limit says.
    log.set_retention_ceiling(Some(0));
    log.apply_retention(0).unwrap();
    assert_eq!(log.raft_start(), (0, 0));

    log.set_retention_ceiling(Some(30));
    log.apply_retention(0).unwrap();
    let (start, epoch) = log.raft_start();
    assert!(start > 0 && start <= 30, "start {start}");
    assert_eq!(epoch, log_epoch_of_offset(start - 1));
    log.close().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), config);
    assert_eq!(log.raft_start(), (start, epoch), "kept across a restart");
}

/// The test above appends 5 records per batch with epochs 1, 2, 3, ...
fn log_epoch_of_offset(offset: i64) -> i32 {
    (offset / 5 + 1) as i32
}

#[test]
fn reset_to_restarts_the_log_at_an_offset_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for _ in 0..10 {
        let mut b = batch(3, 300, 1000);
        append(&mut log, &mut b, 2, 0).unwrap();
    }
    log.reset_to(100, 4).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.raft_start(), (100, 4));
    let mut b = batch(2, 10, 1000);
    b[..8].copy_from_slice(&100i64.to_be_bytes());
    log.append_replicated(&b, 0).unwrap();
    assert_eq!(log.log_end_offset(), 102);
    log.flush().unwrap();
    crash(log);
    let (log, _) = open(dir.path(), small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 102));
    assert_eq!(log.raft_start(), (100, 4));

    // A crash right after the reset's checkpoint: the old segments are still there.
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small_config());
    for _ in 0..4 {
        let mut b = batch(3, 300, 1000);
        append(&mut log, &mut b, 2, 0).unwrap();
    }
    log.flush().unwrap();
    log.checkpoint
        .write(
            &Checkpoint {
                clean: false,
                log_start_offset: 50,
                durable_offset: 50,
                durable_segment_base: 50,
                durable_segment_bytes: 0,
                start_epoch: 3,
            },
            true,
        )
        .unwrap();
    crash(log);
    let (log, _) = open(dir.path(), small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
    assert_eq!(log.raft_start(), (50, 3));
}

#[test]
fn a_released_active_segment_is_still_trimmed_at_close() {
    let dir = tempfile::tempdir().unwrap();
    for data in [false, true] {
        let sub = dir.path().join(format!("data-{data}"));
        let (mut log, _) = open(&sub, small_config());
        if data {
            append(&mut log, &mut batch(3, 10, 1_000), 0, 1_000).unwrap();
        }
        // The open-file budget closes an idle log's files.
        log.release_handles();
        log.close().unwrap();
        let index = std::fs::metadata(sub.join("00000000000000000000.index"))
            .unwrap()
            .len();
        let time_index = std::fs::metadata(sub.join("00000000000000000000.timeindex"))
            .unwrap()
            .len();
        assert!(
            index <= 8 && time_index <= 12,
            "data {data}: index files of {index} and {time_index} bytes"
        );
        let (mut log, report) = open(&sub, small_config());
        assert!(
            report.clean && report.segments_scanned == 0,
            "data {data}: {report:?}"
        );
        assert_eq!(log.log_end_offset(), if data { 3 } else { 0 });
        log.close().unwrap();
    }
}

/// A header scan sees every batch of every segment in order, small and large (large
/// ones are read header by header), and hands over transaction markers whole.
#[test]
fn header_scan_covers_all_segments_and_hands_over_markers() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        ..small_config()
    };
    let (mut log, _) = open(dir.path(), config);
    let mut expected = Vec::new();
    for i in 0..40 {
        // Alternately small batches and ones above the scan's large-batch threshold.
        let mut b = if i % 3 == 0 {
            strom_batch::marker_batch(9, 1, 4, strom_batch::ControlType::of(i % 2 == 0), 5)
        } else if i % 2 == 0 {
            batch(2, 10, 5)
        } else {
            batch(1, 20_000, 5)
        };
        let info = append(&mut log, &mut b, 1, 0).unwrap();
        expected.push((info.base_offset, i % 3 == 0));
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let mut seen = Vec::new();
    let mut markers = Vec::new();
    log.scan_recent_headers(usize::MAX, |h, control| {
        seen.push((h.base_offset, h.is_control()));
        if let Some(bytes) = control {
            markers.push(strom_batch::read_marker(bytes).map(|(k, e)| (k.is_commit(), e)));
        }
    })
    .unwrap();
    assert_eq!(seen, expected);
    let want: Vec<_> = (0..40)
        .filter(|i| i % 3 == 0)
        .map(|i| Some((i % 2 == 0, 4)))
        .collect();
    assert_eq!(markers, want);
}
