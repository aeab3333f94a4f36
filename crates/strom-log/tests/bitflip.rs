//! Single-bit damage to segment and index files: the log must never serve a damaged
//! batch as if it were fine. Damage is cut off as a torn tail only when nothing valid
//! follows it, reported as `LogError::Corrupt` (naming the file and the damaged batch)
//! when it sits inside the log, caught by `verify()` in trusted segments, and damaged
//! indexes are rebuilt so that reads and time lookups stay right.
//!
//! Positions are random; a failure prints `STROM_TEST_SEED=...` to replay it.

mod common;

use std::path::{Path, PathBuf};

use common::{Rng, batch_at, batches_in, copy_dir, flip_bit, segment_files, timestamp_of};
use strom_log::{Deleter, LogConfig, LogError, PartitionLog, RecoveryReport};

const EPOCH: i32 = 9;
/// Damaged copies opened per scenario.
const TRIALS: usize = 30;
/// Bytes 12..16 of a batch hold the partition leader epoch, which the broker stamps
/// after the producer computed the CRC: by Kafka's format nothing covers it, so a flip
/// there cannot be told from a real epoch. Every other byte is checked.
const EPOCH_FIELD: std::ops::Range<u64> = 12..16;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_ms: None,
        index_interval_bytes: 256,
        max_index_bytes: 4096,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// One stored batch of a template log.
#[derive(Debug, Clone)]
struct Stored {
    base: i64,
    last: i64,
    /// Name of the segment file holding it, and its position there.
    file: String,
    pos: u64,
    bytes: Vec<u8>,
}

/// A log left on disk the way a test wants it, to be copied and damaged once per trial.
struct Template {
    dir: tempfile::TempDir,
    seed: u64,
    batches: Vec<Stored>,
    /// Segments below this base offset are trusted by the next open (fsynced before the
    /// last checkpoint); from it on, recovery validates every batch. `i64::MAX` after a
    /// clean shutdown, when everything is trusted.
    recovery_from: i64,
}

/// How a template log was left.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// Closed cleanly: everything fsynced, a clean checkpoint.
    Clean,
    /// As a crashed process leaves it: nothing fsynced or checkpointed after the flush.
    Crash,
    /// Like `Crash`, but after a DeleteRecords, which writes (and fsyncs) a checkpoint
    /// while the segments rolled since the flush are still not fsynced.
    CrashAfterDeleteRecords,
}

/// Writes 40 batches, flushes, writes 25 more (rolling several segments), then ends
/// the log as `end` says.
fn template(seed: u64, end: End) -> Template {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), config(), Deleter::start()).unwrap();
    let mut next = 0;
    let mut append = |log: &mut PartitionLog, n: usize| {
        for _ in 0..n {
            let mut b = batch_at(seed, next, EPOCH);
            next = common::append(log, &mut b, EPOCH, 0).unwrap().last_offset + 1;
        }
    };
    append(&mut log, 40);
    log.flush().unwrap();
    // The segment active at the flush is where the checkpoint points.
    let durable_segment = segment_files(dir.path()).last().unwrap().0;
    append(&mut log, 25);
    match end {
        End::Clean => {
            log.close().unwrap();
            drop(log);
        }
        End::Crash => std::mem::forget(log),
        End::CrashAfterDeleteRecords => {
            log.delete_records(3).unwrap();
            std::mem::forget(log);
        }
    }
    let mut batches = Vec::new();
    for (_, path) in segment_files(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        let found = batches_in(&bytes);
        let end = found
            .last()
            .map_or(0, |(p, h)| *p as usize + h.total_size());
        assert_eq!(end, bytes.len(), "template segment {path:?} is not whole");
        for (pos, h) in found {
            batches.push(Stored {
                base: h.base_offset,
                last: h.last_offset(),
                file: path.file_name().unwrap().to_str().unwrap().to_string(),
                pos,
                bytes: bytes[pos as usize..pos as usize + h.total_size()].to_vec(),
            });
        }
    }
    assert!(segment_files(dir.path()).len() >= 8, "too few segments");
    Template {
        dir,
        seed,
        batches,
        recovery_from: if end == End::Clean {
            i64::MAX
        } else {
            durable_segment
        },
    }
}

impl Template {
    /// A fresh copy of the template to damage.
    fn copy(&self) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), to.path());
        to
    }

    fn base_of(&self, file: &str) -> i64 {
        file.strip_suffix(".log").unwrap().parse().unwrap()
    }

    /// Batches whose segment recovery validates, and those in trusted segments.
    fn in_recovery(&self, b: &Stored) -> bool {
        self.base_of(&b.file) >= self.recovery_from
    }
}

fn open(dir: &Path) -> Result<(PartitionLog, RecoveryReport), LogError> {
    PartitionLog::open(dir, config(), Deleter::start())
}

/// A byte of the batch to damage: a third of the time (or always, with `header`) in its
/// 61-byte header, where the framing is; never in the unprotected epoch field.
fn pick_byte(rng: &mut Rng, b: &Stored, header: bool) -> u64 {
    loop {
        let off = if header || rng.below(3) == 0 {
            rng.below(61)
        } else {
            rng.below(b.bytes.len() as u64)
        };
        if !EPOCH_FIELD.contains(&off) {
            return b.pos + off;
        }
    }
}

/// Asserts that `err` is `Corrupt`, naming the segment file of `b` and `b`'s position:
/// every batch before it is intact, so that is the first damaged byte's batch.
fn assert_names_batch(err: &LogError, dir: &Path, b: &Stored, flipped: u64, what: &str) {
    match err {
        LogError::Corrupt { path, position, .. } => {
            assert_eq!(path, &dir.join(&b.file), "{what}: {err}");
            assert!(
                *position <= flipped,
                "{what}: {err} (flipped byte {flipped})"
            );
            assert_eq!(*position, b.pos, "{what}: {err} (flipped byte {flipped})");
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

/// Every batch reads back byte for byte at each of its offsets, a large read from each
/// batch returns it and the batches after it in its segment, and time lookups find
/// each batch.
fn assert_serves(log: &mut PartitionLog, batches: &[Stored], what: &str) {
    assert_eq!(
        log.log_end_offset(),
        batches.last().map_or(0, |b| b.last + 1),
        "{what}"
    );
    for (i, b) in batches.iter().enumerate() {
        for o in b.base..=b.last {
            let s = log.read(o, 1, None).unwrap().slice.unwrap();
            assert_eq!(s.first_offset, b.base, "{what}: read at {o}");
            assert!(s.read_to_vec().unwrap() == b.bytes, "{what}: read at {o}");
        }
        let rest: Vec<u8> = batches[i..]
            .iter()
            .take_while(|c| c.file == b.file)
            .flat_map(|c| c.bytes.iter().copied())
            .collect();
        let s = log.read(b.base, 1 << 20, None).unwrap().slice.unwrap();
        assert!(
            s.read_to_vec().unwrap() == rest,
            "{what}: large read at {}",
            b.base
        );
        let ts = timestamp_of(b.base);
        for probe in [ts - 1, ts] {
            let found = log.offset_for_timestamp(probe).unwrap().unwrap();
            assert_eq!(
                (found.offset, found.timestamp),
                (b.base, ts),
                "{what}: {probe}"
            );
        }
    }
    log.verify().unwrap();
}

#[test]
fn flipped_bit_in_unflushed_last_batch_is_cut_as_a_torn_tail() {
    let seed = common::seed("torn tail");
    let mut rng = Rng::new(seed);
    let t = template(seed, End::Crash);
    let (last, kept) = t.batches.split_last().unwrap();
    assert!(t.in_recovery(last));
    for trial in 0..TRIALS {
        let dir = t.copy();
        let byte = pick_byte(&mut rng, last, false);
        flip_bit(&dir.path().join(&last.file), byte, rng.below(8) as u8);
        let what = format!("trial {trial}: byte {byte} of {}", last.file);
        let (mut log, report) = open(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(report.bytes_truncated, last.bytes.len() as u64, "{what}");
        assert_serves(&mut log, kept, &what);
        // The log goes on from where the cut left it.
        let mut b = batch_at(t.seed, last.base, EPOCH);
        assert_eq!(
            common::append(&mut log, &mut b, EPOCH, 0)
                .unwrap()
                .base_offset,
            last.base
        );
    }
}

/// Damage anywhere in data that was not known durable (or in the durable part of the
/// segment the checkpoint points into), with valid batches after it: the log must not
/// open, and must name the damaged batch.
fn recovery_region_damage_is_reported(end: End) {
    let seed = common::seed(&format!("recovery region after {end:?}"));
    let mut rng = Rng::new(seed);
    let t = template(seed, end);
    // Every batch that recovery reads and that has valid batches after it, including the
    // last ones of non-final segments (the valid data is then in the next segment).
    let candidates: Vec<&Stored> = t.batches[..t.batches.len() - 1]
        .iter()
        .filter(|b| t.in_recovery(b))
        .collect();
    assert!(candidates.len() >= 20);
    for trial in 0..TRIALS {
        let dir = t.copy();
        // Every fourth trial damages the last batch of a segment.
        let b = if trial % 4 == 0 {
            let ends: Vec<&&Stored> = candidates
                .iter()
                .filter(|b| {
                    let i = t.batches.iter().position(|c| c.base == b.base).unwrap();
                    t.batches[i + 1].file != b.file
                })
                .collect();
            *ends[rng.below(ends.len() as u64) as usize]
        } else {
            candidates[rng.below(candidates.len() as u64) as usize]
        };
        let byte = pick_byte(&mut rng, b, false);
        flip_bit(&dir.path().join(&b.file), byte, rng.below(8) as u8);
        let what = format!(
            "trial {trial}: byte {byte} of {} (batch {})",
            b.file, b.base
        );
        match open(dir.path()) {
            Ok((log, report)) => panic!(
                "{what}: opened with end {} after {report:?}",
                log.log_end_offset()
            ),
            Err(e) => assert_names_batch(&e, dir.path(), b, byte, &what),
        }
    }
}

#[test]
fn flipped_bit_inside_the_recovery_region_is_reported() {
    recovery_region_damage_is_reported(End::Crash);
}

/// Segments rolled after the last flush were never fsynced: a checkpoint written later
/// must not make the next open trust them.
#[test]
fn flipped_bit_in_unflushed_segments_is_reported_after_delete_records() {
    recovery_region_damage_is_reported(End::CrashAfterDeleteRecords);
}

/// Damage in segments that the next open trusts without reading: opening may not notice
/// it, but `verify()` must, and must name the batch.
fn trusted_damage_is_found(end: End) {
    let seed = common::seed(&format!("trusted after {end:?}"));
    let mut rng = Rng::new(seed);
    let t = template(seed, end);
    let trusted: Vec<&Stored> = t.batches.iter().filter(|b| !t.in_recovery(b)).collect();
    assert!(trusted.len() >= 20);
    for trial in 0..TRIALS {
        let dir = t.copy();
        // Every fourth trial damages the header of the last trusted batch: a wrong
        // last offset there makes the next segment look misplaced, and that segment may
        // be the first one recovery reads.
        let (b, header) = if trial % 4 == 0 {
            (*trusted.last().unwrap(), true)
        } else {
            (trusted[rng.below(trusted.len() as u64) as usize], false)
        };
        let byte = pick_byte(&mut rng, b, header);
        flip_bit(&dir.path().join(&b.file), byte, rng.below(8) as u8);
        let what = format!(
            "trial {trial}: byte {byte} of {} (batch {})",
            b.file, b.base
        );
        let err = match open(dir.path()) {
            Ok((mut log, report)) => {
                // The recovery region is intact: nothing may be cut or dropped because
                // of damage in front of it.
                assert_eq!(
                    (report.bytes_truncated, report.segments_dropped),
                    (0, 0),
                    "{what}"
                );
                log.verify().expect_err(&format!("{what}: verify passed"))
            }
            Err(e) => e,
        };
        assert_names_batch(&err, dir.path(), b, byte, &what);
    }
}

#[test]
fn flipped_bit_in_trusted_segment_after_clean_shutdown_is_found_by_verify() {
    trusted_damage_is_found(End::Clean);
}

#[test]
fn flipped_bit_in_trusted_segment_after_crash_is_found_by_verify() {
    trusted_damage_is_found(End::Crash);
}

/// Damage to `.index` and `.timeindex` files: the log opens, repairs what it needs, and
/// serves exactly the right batches, before and after a restart.
fn index_damage_is_repaired(end: End) {
    let seed = common::seed(&format!("index after {end:?}"));
    let mut rng = Rng::new(seed);
    let t = template(seed, end);
    let mut index_files: Vec<PathBuf> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
                && std::fs::metadata(p).unwrap().len() > 0
        })
        .collect();
    index_files.sort();
    for trial in 0..TRIALS {
        let dir = t.copy();
        let name = index_files[rng.below(index_files.len() as u64) as usize]
            .file_name()
            .unwrap()
            .to_owned();
        let path = dir.path().join(&name);
        let len = std::fs::metadata(&path).unwrap().len();
        // Half the time damage the first entries, which lookups use most.
        let span = if rng.below(2) == 0 { len.min(24) } else { len };
        let byte = rng.below(span);
        flip_bit(&path, byte, rng.below(8) as u8);
        let what = format!("trial {trial}: byte {byte} of {name:?}");
        let (mut log, _) = open(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_serves(&mut log, &t.batches, &what);
        log.close().unwrap();
        drop(log);
        let (mut log, _) = open(dir.path()).unwrap_or_else(|e| panic!("{what}, reopened: {e}"));
        assert_serves(&mut log, &t.batches, &format!("{what}, reopened"));
    }
}

#[test]
fn flipped_bit_in_index_after_clean_shutdown_is_repaired() {
    index_damage_is_repaired(End::Clean);
}

#[test]
fn flipped_bit_in_index_after_crash_is_repaired() {
    index_damage_is_repaired(End::Crash);
}
