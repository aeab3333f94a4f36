//! `LogManager` at scale: 10,000 partitions kept within the open-file budget (file
//! descriptors and mappings) through creation, appends, shutdown and restart; and group
//! commit answering many concurrent writers' durability waits in few fsync rounds.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::batch_at;
use strom_log::{FlushPolicy, LogConfig, LogManager, ManagerConfig, TopicPartition};

const EPOCH: i32 = 2;

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Memory mappings of this process (each open log maps its two index files).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// The soft limit on open files, from `/proc/self/limits`.
fn soft_nofile_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn small_log() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        segment_ms: None,
        index_interval_bytes: 4096,
        max_index_bytes: 4096,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::Os,
        ..LogConfig::default()
    }
}

/// Tracks the highest descriptor and mapping counts seen, and the open-log count
/// against the budget.
struct Peaks {
    fds: usize,
    maps: usize,
}

impl Peaks {
    fn sample(&mut self, manager: &LogManager, max_open_logs: usize, what: &str) {
        let open = manager.open_log_count();
        assert!(
            open <= max_open_logs,
            "{what}: {open} logs hold open files, budget {max_open_logs}"
        );
        self.fds = self.fds.max(open_fds());
        self.maps = self.maps.max(mappings());
    }
}

#[test]
fn ten_thousand_partitions_stay_within_the_open_file_budget() {
    const PARTITIONS: i32 = 10_000;
    const MAX_OPEN_LOGS: usize = 1000;
    let limit = soft_nofile_limit();
    // The point is the descriptor budget, not the disk: on tmpfs the ~40,000 fsyncs of a
    // clean shutdown of 10,000 logs cost nothing.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let config = ManagerConfig {
        default_log: small_log(),
        max_open_logs: MAX_OPEN_LOGS,
        flush_parallelism: 2,
        retention_check_interval: Duration::from_secs(3600),
        ..ManagerConfig::new(dir.path())
    };
    let seed = common::seed("10k partitions");
    let tp = |p: i32| TopicPartition::new("scale", p);

    let base_fds = open_fds();
    let base_maps = mappings();
    let mut peaks = Peaks { fds: 0, maps: 0 };
    let manager = LogManager::open(config.clone()).unwrap();
    // All partitions first, as a topic with 10,000 partitions is created, then data.
    for p in 0..PARTITIONS {
        manager.create(&tp(p), None).unwrap();
        if p % 250 == 0 {
            peaks.sample(&manager, MAX_OPEN_LOGS, &format!("creating {p}"));
        }
    }
    peaks.sample(&manager, MAX_OPEN_LOGS, "created");
    for p in 0..PARTITIONS {
        let mut batch = batch_at(seed, p as i64, EPOCH);
        let info = common::append_to(&manager, &tp(p), &mut batch, EPOCH, 0).unwrap();
        assert_eq!(info.base_offset, 0);
        if p % 250 == 0 {
            peaks.sample(&manager, MAX_OPEN_LOGS, &format!("appending to {p}"));
        }
    }
    peaks.sample(&manager, MAX_OPEN_LOGS, "appended");
    manager.close().unwrap();
    drop(manager);
    // Nothing is left open by a closed manager.
    assert!(
        open_fds() <= base_fds + 8,
        "{} descriptors open after close, {base_fds} before",
        open_fds()
    );

    let manager = LogManager::open(config).unwrap();
    assert_eq!(manager.partitions().len(), PARTITIONS as usize);
    peaks.sample(&manager, MAX_OPEN_LOGS, "reopened");
    for p in 0..PARTITIONS {
        // Offset 0 of partition p holds the batch generated for "offset" p.
        let mut expected = batch_at(seed, p as i64, EPOCH);
        strom_batch::RecordBatchHeader::stamp_base_offset(&mut expected, 0);
        let records = strom_batch::RecordBatchHeader::validate(&expected, 0)
            .unwrap()
            .offset_count();
        let bytes = manager
            .with_log(&tp(p), |log| {
                assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, records));
                log.read(0, 1 << 20, None)
                    .unwrap()
                    .slice
                    .unwrap()
                    .read_to_vec()
                    .unwrap()
            })
            .unwrap();
        assert!(bytes == expected, "partition {p} reads back differently");
        if p % 250 == 0 {
            peaks.sample(&manager, MAX_OPEN_LOGS, &format!("reading {p}"));
        }
    }
    peaks.sample(&manager, MAX_OPEN_LOGS, "read back");
    manager.close().unwrap();
    drop(manager);

    // An open log holds three descriptors (its active segment's log and two index
    // files) and two mappings; allow one more of each per log for slack.
    eprintln!(
        "peak {} fds (base {base_fds}, soft limit {limit}), peak {} mappings (base {base_maps})",
        peaks.fds, peaks.maps
    );
    assert!(
        peaks.fds < limit / 2,
        "{} descriptors at peak, soft limit {limit}",
        peaks.fds
    );
    assert!(
        peaks.fds <= base_fds + 4 * MAX_OPEN_LOGS,
        "{} descriptors at peak for a budget of {MAX_OPEN_LOGS} logs",
        peaks.fds
    );
    assert!(
        peaks.maps <= base_maps + 3 * MAX_OPEN_LOGS,
        "{} mappings at peak for a budget of {MAX_OPEN_LOGS} logs",
        peaks.maps
    );
}

#[test]
fn group_commit_answers_every_waiter_in_few_rounds() {
    const PARTITIONS: i32 = 32;
    const THREADS: usize = 16;
    const APPENDS_PER_THREAD: usize = 60;
    // A real disk, so that fsyncs take the time during which requests pile up.
    let dir = tempfile::tempdir().unwrap();
    let config = ManagerConfig {
        default_log: LogConfig {
            flush: FlushPolicy::EveryAppend,
            ..small_log()
        },
        flush_parallelism: 4,
        retention_check_interval: Duration::from_secs(3600),
        ..ManagerConfig::new(dir.path())
    };
    let seed = common::seed("group commit");
    let manager = LogManager::open(config).unwrap();
    let tp = |p: i32| TopicPartition::new("gc", p);
    for p in 0..PARTITIONS {
        manager.create(&tp(p), None).unwrap();
    }
    let rounds_before = manager.group_commit().rounds();
    // Every answer: (partition, requested offset, result).
    let (answers, answered) = mpsc::channel();
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let manager = manager.clone();
            let answers = answers.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..APPENDS_PER_THREAD {
                    let p = ((t * 7 + i * 3) % PARTITIONS as usize) as i32;
                    let mut batch = batch_at(seed, (t * 1000 + i) as i64, EPOCH);
                    let info = common::append_to(&manager, &tp(p), &mut batch, EPOCH, 0).unwrap();
                    let want = info.last_offset + 1;
                    if t % 2 == 0 {
                        // Blocking waiters: one outstanding request each.
                        let log = manager.log(&tp(p)).unwrap();
                        let result = manager.group_commit().wait_durable(&log, want);
                        answers.send((p, want, result)).unwrap();
                    } else {
                        // Callback waiters: keep appending while earlier requests wait.
                        let answers = answers.clone();
                        manager.when_durable(
                            &tp(p),
                            want,
                            Box::new(move |result| {
                                let _ = answers.send((p, want, result));
                            }),
                        );
                    }
                }
            })
        })
        .collect();
    drop(answers);
    for t in threads {
        t.join().unwrap();
    }
    let requests = THREADS * APPENDS_PER_THREAD;
    for n in 0..requests {
        let (p, want, result) = answered
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("only {n} of {requests} waiters were answered"));
        let durable = result.unwrap_or_else(|e| panic!("partition {p} at {want}: {e}"));
        assert!(durable >= want, "partition {p}: durable {durable} < {want}");
        // The answer is true: the log agrees that this much is durable.
        let log_durable = manager
            .with_log(&tp(p), |log| log.durable_offset())
            .unwrap();
        assert!(log_durable >= durable, "partition {p}");
    }
    let rounds = manager.group_commit().rounds() - rounds_before;
    eprintln!("{requests} durability requests took {rounds} group-commit rounds");
    assert!(
        rounds * 4 <= requests as u64,
        "{rounds} rounds for {requests} requests: appends are not sharing fsyncs"
    );
    manager.close().unwrap();
}

#[test]
fn group_commit_tells_the_fsync_observer_each_flush() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let config = ManagerConfig {
        default_log: LogConfig {
            flush: FlushPolicy::EveryAppend,
            ..small_log()
        },
        retention_check_interval: Duration::from_secs(3600),
        ..ManagerConfig::new(dir.path())
    };
    let manager = LogManager::open(config).unwrap();
    let tp = TopicPartition::new("obs", 0);
    manager.create(&tp, None).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    assert!(manager.group_commit().observe_fsyncs(Box::new(move |took| {
        assert!(took < Duration::from_secs(60));
        counter.fetch_add(1, Ordering::Relaxed);
    })));
    assert!(
        !manager.group_commit().observe_fsyncs(Box::new(|_| {})),
        "a second observer is refused"
    );
    let seed = common::seed("fsync observer");
    for i in 0..3 {
        let mut batch = batch_at(seed, i, EPOCH);
        let info = common::append_to(&manager, &tp, &mut batch, EPOCH, 0).unwrap();
        let log = manager.log(&tp).unwrap();
        manager
            .group_commit()
            .wait_durable(&log, info.last_offset + 1)
            .unwrap();
    }
    // One flush per append here: each wait found the log not yet durable.
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    manager.close().unwrap();
}

/// A partition deleted, created again and deleted again before the deletion thread got
/// to the first directory (a topic re-created under its name, then deleted): every
/// deletion moves its own directory aside, none fails on the one before, and a new log of
/// the name starts empty.
#[test]
fn a_partition_deleted_twice_in_quick_succession_is_gone_both_times() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(ManagerConfig::new(dir.path())).unwrap();
    let tp = TopicPartition::new("again", 0);
    for round in 0..3 {
        manager.create(&tp, Some(small_log())).unwrap();
        let mut batch = batch_at(round, 0, 0);
        let info = common::append_to(&manager, &tp, &mut batch, 0, 0).unwrap();
        assert_eq!(info.base_offset, 0, "round {round}: a new log starts empty");
        assert!(manager.delete(&tp).unwrap(), "round {round}");
        assert!(!dir.path().join(tp.dir_name()).exists(), "round {round}");
    }
    manager.close().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The size flush policy (`flush.bytes`): appends reach a log through Raft, never
/// through the manager, so it is the manager's background tick that sees enough
/// unflushed bytes and starts the flush. Below the threshold nothing is fsynced; past
/// it the log becomes durable within a few ticks without anyone asking.
#[test]
fn the_size_flush_policy_flushes_from_the_background_tick() {
    const THRESHOLD: u64 = 8 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let config = ManagerConfig {
        default_log: LogConfig {
            flush: FlushPolicy::Bytes(THRESHOLD),
            ..small_log()
        },
        retention_check_interval: Duration::from_secs(3600),
        ..ManagerConfig::new(dir.path())
    };
    let manager = LogManager::open(config).unwrap();
    let tp = TopicPartition::new("by-size", 0);
    manager.create(&tp, None).unwrap();
    let seed = common::seed("size flush");
    let state = || {
        manager
            .with_log(&tp, |log| {
                (
                    log.log_end_offset(),
                    log.durable_offset(),
                    log.unflushed().0,
                )
            })
            .unwrap()
    };

    // Under the threshold: several ticks go by and nothing is fsynced.
    let mut end = 0;
    loop {
        let mut batch = batch_at(seed, end, EPOCH);
        if state().2 + batch.len() as u64 >= THRESHOLD {
            break;
        }
        end = common::append_to(&manager, &tp, &mut batch, EPOCH, 0)
            .unwrap()
            .last_offset
            + 1;
    }
    assert!(end > 0, "no batch fits under the threshold");
    std::thread::sleep(Duration::from_millis(350));
    let (_, durable, unflushed) = state();
    assert_eq!(durable, 0, "flushed with {unflushed} of {THRESHOLD} bytes");

    // Past it: the next ticks flush everything appended.
    while state().2 < THRESHOLD {
        let mut batch = batch_at(seed, end, EPOCH);
        end = common::append_to(&manager, &tp, &mut batch, EPOCH, 0)
            .unwrap()
            .last_offset
            + 1;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (log_end, durable, unflushed) = state();
        if durable == log_end {
            assert_eq!((log_end, unflushed), (end, 0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not flushed: durable {durable} of {log_end}, {unflushed} bytes unflushed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(manager.take_background_failures().is_empty());
    manager.close().unwrap();
}
