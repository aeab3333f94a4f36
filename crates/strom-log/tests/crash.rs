//! SIGKILL test: a child process appends batches through the `LogManager` and reports
//! every offset that group commit made durable; the parent kills it at random moments,
//! sometimes tears or garbles the unflushed end of the active segment as a power loss
//! would, reopens the log and checks that every reported-durable batch is there, byte
//! for byte, with contiguous offsets, and that the log takes appends again.
//!
//! The child is this very test binary, re-run as `<exe> --exact writer_child
//! --nocapture` with `STROM_CRASH_WRITER_DIR` set. A failure prints
//! `STROM_TEST_SEED=...` to replay it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Rng, batch_at, batches_in, segment_files};
use strom_log::{
    Deleter, FlushPolicy, LogConfig, LogManager, ManagerConfig, PartitionLog, TopicPartition,
};

/// Set in the child's environment: the data directory to write to.
const DIR_ENV: &str = "STROM_CRASH_WRITER_DIR";
/// Set in the child's environment: the seed its batches derive from.
const SEED_ENV: &str = "STROM_CRASH_WRITER_SEED";
/// Marks the child's report lines among whatever else the test harness prints.
const PREFIX: &str = "STROM-CRASH ";
const EPOCH: i32 = 4;
/// A child that is not killed gives up after this long, so a broken parent cannot leave
/// it running forever.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

fn partition() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

/// Small segments so that kills also land around segment rolls.
fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        segment_ms: None,
        index_interval_bytes: 1024,
        max_index_bytes: 4096,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::EveryAppend,
        ..LogConfig::default()
    }
}

/// One report line, written whole with a single `write` so that a kill cannot leave
/// half of it behind looking like a complete, smaller number.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{PREFIX}{line}\n").as_bytes())
        .unwrap();
    out.flush().unwrap();
}

/// The child: opens the log (recovering it), says `ready <end>`, then appends 1-4
/// batches at a time, says `flushing <end>` before asking group commit for durability
/// and `durable <offset>` once it has it. Returns at once in a normal test run.
#[test]
fn writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let mut config = ManagerConfig::new(&dir);
    config.default_log = log_config();
    let manager = LogManager::open(config).unwrap();
    let tp = partition();
    manager.create(&tp, None).unwrap();
    let log = manager.log(&tp).unwrap();
    let mut end = log.lock().unwrap().log_end_offset();
    say(&format!("ready {end}"));
    let mut rng = Rng::new(seed ^ u64::from(std::process::id()));
    let started = Instant::now();
    while started.elapsed() < CHILD_LIFETIME {
        for _ in 0..rng.range(1, 5) {
            let mut batch = batch_at(seed, end, EPOCH);
            let info = common::append_to(&manager, &tp, &mut batch, EPOCH, 0).unwrap();
            assert_eq!(info.base_offset, end);
            end = info.last_offset + 1;
        }
        say(&format!("flushing {end}"));
        let durable = manager.group_commit().wait_durable(&log, end).unwrap();
        assert!(durable >= end, "durable {durable} below {end}");
        say(&format!("durable {durable}"));
    }
    std::process::exit(3);
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    /// A random moment after the child reported `ready`: mid-append or mid-fsync.
    AfterReady,
    /// A random moment right after the start: often while the log is being recovered.
    Early,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    None,
    /// Cut the active segment somewhere after what may have been fsynced.
    Torn,
    /// Overwrite the end of the active segment, after what may have been fsynced, with
    /// random bytes.
    Garbled,
}

/// What the child reported before it died.
#[derive(Debug, Default)]
struct Reports {
    ready: Option<i64>,
    flushing: Option<i64>,
    durable: Option<i64>,
    durable_reports: usize,
}

#[test]
fn sigkill_never_loses_a_durable_batch() {
    let seed = common::seed("sigkill");
    let mut rng = Rng::new(seed);
    let root = tempfile::tempdir().unwrap();
    let log_dir = root.path().join(partition().dir_name());
    let plan = [
        (Kill::AfterReady, Damage::None),
        (Kill::AfterReady, Damage::Torn),
        (Kill::Early, Damage::None),
        (Kill::AfterReady, Damage::Garbled),
        (Kill::AfterReady, Damage::Torn),
        (Kill::Early, Damage::Garbled),
        (Kill::AfterReady, Damage::Garbled),
        (Kill::AfterReady, Damage::None),
    ];
    // Every offset below this was reported durable, by a child or by our own flush.
    let mut durable = 0;
    let mut reports = 0;
    for (round, &(kill, damage)) in plan.iter().enumerate() {
        let delay = match kill {
            Kill::AfterReady => Duration::from_millis(rng.range(5, 400)),
            Kill::Early => Duration::from_millis(rng.range(0, 60)),
        };
        let what = format!("round {round} ({kill:?}, {damage:?}, {delay:?})");
        let r = run_and_kill(root.path(), seed, kill, delay, &what);
        if let Some(d) = r.durable {
            assert!(d >= durable, "{what}: child reported {d} below {durable}");
            durable = d;
        }
        reports += r.durable_reports;
        if damage != Damage::None {
            // Nothing at or after this offset can be covered by an fsync: the child had
            // not asked for more when it died, and opening synced only what it found.
            let unsynced_from = match (r.ready, r.flushing) {
                (None, _) => i64::MAX,
                (Some(ready), flushing) => flushing.map_or(ready, |f| f.max(ready)),
            };
            damage_tail(&log_dir, unsynced_from, damage, seed, &mut rng);
        }
        durable = check_recovered(&log_dir, seed, durable, &what);
    }
    assert!(reports >= 5, "the children reported only {reports} flushes");
}

/// Runs one child, kills it with SIGKILL after `delay`, and collects its reports.
fn run_and_kill(root: &Path, seed: u64, kill: Kill, delay: Duration, what: &str) -> Reports {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, root)
        .env(SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut lines = Vec::new();
    if let Kill::AfterReady = kill {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let ready = report_in(&line).is_some_and(|r| r.starts_with("ready "));
                    lines.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{what}: the child never got ready; stderr:\n{}",
                        errors.join().unwrap()
                    );
                }
            }
        }
    }
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        panic!(
            "{what}: the child exited by itself ({status}); stderr:\n{}",
            errors.join().unwrap()
        );
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no checkpoint runs.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status}");
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let _ = errors.join();
    parse_reports(&lines, what)
}

/// The report in a line of the child's output. The harness prints `test writer_child
/// ... ` without a newline before the test's own output, so a report need not start
/// the line.
fn report_in(line: &str) -> Option<&str> {
    line.find(PREFIX)
        .map(|i| line[i + PREFIX.len()..].trim_end())
}

fn parse_reports(lines: &[String], what: &str) -> Reports {
    let mut r = Reports::default();
    for line in lines {
        // A line cut short by the kill has no newline; it is not a report.
        let Some(report) = line.strip_suffix('\n').and_then(report_in) else {
            continue;
        };
        let (kind, value) = report.split_once(' ').unwrap();
        let value: i64 = value.parse().unwrap();
        match kind {
            "ready" => r.ready = Some(value),
            "flushing" => r.flushing = Some(value),
            "durable" => {
                assert!(
                    r.durable.is_none_or(|d| value >= d),
                    "{what}: durable went back"
                );
                r.durable = Some(value);
                r.durable_reports += 1;
            }
            other => panic!("{what}: unknown report {other}"),
        }
    }
    r
}

/// Tears or garbles the active segment after the first batch at or above
/// `unsynced_from`, or, when there is no such batch, adds a torn or garbled piece after
/// its end (the write the kill interrupted, as a power loss could leave it).
fn damage_tail(log_dir: &Path, unsynced_from: i64, damage: Damage, seed: u64, rng: &mut Rng) {
    let (base, path) = segment_files(log_dir).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    let batches = batches_in(&bytes);
    let next_offset = batches.last().map_or(base, |(_, h)| h.last_offset() + 1);
    let from = batches
        .into_iter()
        .find(|(_, h)| h.base_offset >= unsynced_from)
        .map_or(len, |(pos, _)| pos as usize);
    if from < len {
        let at = rng.range(from as u64, len as u64) as usize;
        match damage {
            Damage::Torn => bytes.truncate(at),
            _ => {
                // At least a few bytes, so that the garbage surely differs.
                let at = at.min(len.saturating_sub(16)).max(from);
                bytes[at..]
                    .iter_mut()
                    .for_each(|b| *b = rng.next_u64() as u8);
            }
        }
    } else {
        let tail: Vec<u8> = match damage {
            Damage::Torn => {
                let next = batch_at(seed, next_offset, EPOCH);
                let n = rng.range(1, next.len() as u64) as usize;
                next[..n].to_vec()
            }
            _ => (0..rng.range(1, 300))
                .map(|_| rng.next_u64() as u8)
                .collect(),
        };
        bytes.extend_from_slice(&tail);
    }
    std::fs::write(&path, &bytes).unwrap();
}

/// Opens the log as a restarted broker would and checks it: every batch from the start
/// is the one written at its offset, offsets are contiguous, nothing reported durable is
/// missing, and appending works. Returns the new durable end.
fn check_recovered(log_dir: &Path, seed: u64, durable: i64, what: &str) -> i64 {
    let deleter = Deleter::start();
    let (mut log, report) = PartitionLog::open(log_dir, log_config(), deleter.clone())
        .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
    let end = log.log_end_offset();
    eprintln!("{what}: reopened at end {end}, reported durable {durable}, {report:?}");
    assert!(
        end >= durable,
        "{what}: end {end} below the reported durable {durable} ({report:?})"
    );
    assert_eq!(log.log_start_offset(), 0, "{what}");
    let mut offset = 0;
    while offset < end {
        let slice = log
            .read(offset, 64 * 1024, None)
            .unwrap()
            .slice
            .unwrap_or_else(|| panic!("{what}: nothing at {offset} below end {end}"));
        assert_eq!(slice.first_offset, offset, "{what}");
        let bytes = slice.read_to_vec().unwrap();
        let mut covered = 0;
        for (pos, h) in batches_in(&bytes) {
            assert_eq!(h.base_offset, offset, "{what}: offsets are not contiguous");
            let stored = &bytes[pos as usize..pos as usize + h.total_size()];
            assert!(
                stored == batch_at(seed, offset, EPOCH).as_slice(),
                "{what}: batch at {offset} differs from what was written"
            );
            offset = h.last_offset() + 1;
            covered = pos as usize + h.total_size();
        }
        assert_eq!(
            covered,
            bytes.len(),
            "{what}: a read returned a damaged batch"
        );
    }
    assert_eq!(offset, end, "{what}");
    log.verify().unwrap();
    let mut batch = batch_at(seed, end, EPOCH);
    let info = common::append(&mut log, &mut batch, EPOCH, 0).unwrap();
    assert_eq!(info.base_offset, end, "{what}");
    let durable = log.flush().unwrap();
    assert_eq!(durable, info.last_offset + 1, "{what}");
    log.close().unwrap();
    drop(log);
    deleter.shutdown();
    durable
}
