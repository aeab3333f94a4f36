//! Property test of `PartitionLog` against an in-memory model: random appends, reads,
//! time lookups, truncations, retention, record deletion, flushes, clean restarts and
//! crashes, with the log's answers and its segment files checked batch for batch.
//!
//! By default 64 cases of up to 60 operations run (well under a minute in debug builds).
//! Run more with `PROPTEST_CASES=2000 cargo test -p strom-log --release --test model`.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use strom_batch::{RecordBatchBuilder, RecordBatchHeader};
use strom_log::{Deleter, LogConfig, LogError, PartitionLog, TimestampOffset};

const LEADER_EPOCH: i32 = 3;
/// Timestamps start here so that clock steps backwards never make them negative.
const CLOCK_START: i64 = 1_000_000;

/// One batch as the model knows it: where it sits in the offset space and its exact
/// stored bytes (stamped with base offset and leader epoch).
#[derive(Debug, Clone)]
struct Batch {
    base: i64,
    last: i64,
    max_ts: i64,
    bytes: Vec<u8>,
}

/// The model: every batch still physically stored, in order, plus the offset bounds.
/// Batches below `start` stay here as long as their segment exists, because the segment
/// files must still hold them.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<Batch>,
    start: i64,
    end: i64,
}

/// A segment as seen from outside: its base offset (from the file name) and, from the
/// model, the offsets it covers, its size and its newest timestamp.
#[derive(Debug, Clone, PartialEq)]
struct Seg {
    base: i64,
    next: i64,
    size: u64,
    max_ts: i64,
}

#[derive(Debug, Clone)]
struct BatchSpec {
    /// How far the producer clock moves before this batch; may go backwards so that
    /// timestamps are not monotonic.
    clock_step: i64,
    /// Value length and timestamp jitter of each record (1-5 records).
    records: Vec<(usize, i64)>,
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<BatchSpec>),
    Read {
        from: Index,
        out_of_range: bool,
        max_bytes: usize,
        bound: Option<Index>,
    },
    OffsetForTimestamp {
        near: Index,
        delta: i64,
        far: Option<bool>,
    },
    Truncate(Index),
    DeleteRecords {
        before: Index,
        beyond_end: bool,
    },
    RetainBytes(u64),
    RetainAge {
        ttl: i64,
        ahead: i64,
    },
    Flush,
    Reopen,
    Crash,
}

#[derive(Debug, Clone)]
struct Params {
    segment_bytes: u64,
    index_interval_bytes: u32,
    max_index_bytes: u32,
    segment_ms: Option<i64>,
}

fn params() -> impl Strategy<Value = Params> {
    (
        2048u64..8192,
        64u32..1024,
        // 48 bytes hold 6 offset entries and 4 time entries: segments roll because
        // their indexes fill up, not only by size.
        prop_oneof![Just(48u32), Just(120), Just(4096)],
        proptest::option::of(500i64..5000),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, max_index_bytes, segment_ms)| Params {
                segment_bytes,
                index_interval_bytes,
                max_index_bytes,
                segment_ms,
            },
        )
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    // Mostly small values, sometimes one larger than a whole segment.
    let value_len = prop_oneof![20 => 0usize..200, 1 => 2000usize..9000];
    (
        -100i64..400,
        prop::collection::vec((value_len, -30i64..30), 1..=5),
    )
        .prop_map(|(clock_step, records)| BatchSpec {
            clock_step,
            records,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => prop::collection::vec(batch_spec(), 1..=2).prop_map(Op::Append),
        20 => (
            any::<Index>(),
            prop::bool::weighted(0.1),
            prop_oneof![1usize..100, 100usize..4000, 4000usize..100_000],
            proptest::option::weighted(0.3, any::<Index>()),
        )
            .prop_map(|(from, out_of_range, max_bytes, bound)| Op::Read {
                from,
                out_of_range,
                max_bytes,
                bound,
            }),
        8 => (any::<Index>(), -2i64..=2, proptest::option::weighted(0.2, any::<bool>()))
            .prop_map(|(near, delta, far)| Op::OffsetForTimestamp { near, delta, far }),
        4 => any::<Index>().prop_map(Op::Truncate),
        4 => (any::<Index>(), prop::bool::weighted(0.1))
            .prop_map(|(before, beyond_end)| Op::DeleteRecords { before, beyond_end }),
        3 => (0u64..30_000).prop_map(Op::RetainBytes),
        3 => (0i64..3000, 0i64..3000).prop_map(|(ttl, ahead)| Op::RetainAge { ttl, ahead }),
        5 => Just(Op::Flush),
        3 => Just(Op::Reopen),
        4 => Just(Op::Crash),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Every case does real file I/O; shrinking a failure still finishes in minutes.
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(params in params(), ops in prop::collection::vec(op(), 1..=60)) {
        run(&params, &ops);
    }
}

fn config(p: &Params) -> LogConfig {
    LogConfig {
        segment_bytes: p.segment_bytes,
        segment_ms: p.segment_ms,
        index_interval_bytes: p.index_interval_bytes,
        max_index_bytes: p.max_index_bytes,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

/// Runs one sequence of operations, checking the log against the model after each.
fn run(p: &Params, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let deleter = Deleter::start();
    let open = |expect_clean: Option<bool>| {
        let (log, report) = PartitionLog::open(dir.path(), config(p), deleter.clone()).unwrap();
        if let Some(clean) = expect_clean {
            assert_eq!(report.clean, clean, "{report:?}");
            if clean {
                assert_eq!(report.segments_scanned, 0, "{report:?}");
            }
        }
        log
    };
    let mut log = open(None);
    let mut model = Model::default();
    // The producer's clock (timestamps) and the broker's wall clock, which never goes back.
    let mut clock = CLOCK_START;
    let mut now = CLOCK_START;
    let mut seq = 0u64;
    check(&mut log, &model, dir.path());
    for op in ops {
        let before = layout(dir.path(), &model);
        match op {
            Op::Append(specs) => {
                let mut buf = Vec::new();
                let mut next = model.end;
                let mut expected = Vec::new();
                for spec in specs {
                    clock += spec.clock_step;
                    seq += 1;
                    let raw = build_batch(spec, clock, seq);
                    let h = RecordBatchHeader::validate(&raw, 0).unwrap();
                    let mut stored = raw.clone();
                    RecordBatchHeader::stamp_base_offset(&mut stored, next);
                    RecordBatchHeader::stamp_leader_epoch(&mut stored, LEADER_EPOCH);
                    expected.push(Batch {
                        base: next,
                        last: next + h.last_offset_delta as i64,
                        max_ts: h.max_timestamp,
                        bytes: stored,
                    });
                    next += h.offset_count();
                    buf.extend_from_slice(&raw);
                }
                now = now.max(clock);
                let info = common::append(&mut log, &mut buf, LEADER_EPOCH, now).unwrap();
                assert_eq!(
                    (info.base_offset, info.last_offset, info.batches, info.bytes),
                    (model.end, next - 1, specs.len(), buf.len())
                );
                assert_eq!(
                    info.max_timestamp,
                    expected.iter().map(|b| b.max_ts).max().unwrap()
                );
                // The caller's buffer is stamped in place with what was stored.
                let stamped: Vec<u8> = expected.iter().flat_map(|b| b.bytes.clone()).collect();
                assert_eq!(buf, stamped);
                model.batches.extend(expected);
                model.end = next;
            }
            Op::Read {
                from,
                out_of_range,
                max_bytes,
                bound,
            } => {
                let from = if *out_of_range {
                    if model.start > 0 && from.index(2) == 0 {
                        model.start - 1
                    } else {
                        model.end + 1
                    }
                } else {
                    pick(from, model.start, model.end)
                };
                let bound = bound.as_ref().map(|b| pick(b, model.start, model.end));
                check_read(&mut log, &model, &before, from, *max_bytes, bound);
            }
            Op::OffsetForTimestamp { near, delta, far } => {
                let ts = match far {
                    Some(true) => i64::MAX,
                    Some(false) => 0,
                    None if model.batches.is_empty() => clock,
                    None => model.batches[near.index(model.batches.len())].max_ts + delta,
                };
                let expected = model
                    .batches
                    .iter()
                    .find(|b| b.last >= model.start && b.max_ts >= ts)
                    .map(|b| TimestampOffset {
                        offset: b.base.max(model.start),
                        timestamp: b.max_ts,
                    });
                assert_eq!(log.offset_for_timestamp(ts).unwrap(), expected, "ts {ts}");
            }
            Op::Truncate(at) => {
                // Mostly inside the log; the top of the range is the no-op "truncate to
                // the end", and one below the start must be refused.
                let offset = pick(at, model.start.saturating_sub(1), model.end);
                let result = log.truncate_to(offset);
                if offset < model.start {
                    assert!(
                        matches!(result, Err(LogError::OffsetOutOfRange { .. })),
                        "{result:?}"
                    );
                } else {
                    result.unwrap();
                    if offset < model.end {
                        model.batches.retain(|b| b.last < offset);
                        model.end = model.batches.last().map_or(before[0].base, |b| b.last + 1);
                        model.start = model.start.min(model.end);
                    }
                }
            }
            Op::DeleteRecords {
                before: at,
                beyond_end,
            } => {
                let target = if *beyond_end {
                    model.end + 1
                } else {
                    pick(at, 0, model.end)
                };
                let result = log.delete_records(target);
                if *beyond_end {
                    assert!(
                        matches!(result, Err(LogError::OffsetOutOfRange { .. })),
                        "{result:?}"
                    );
                } else {
                    let mut segs = before.clone();
                    if target > model.start {
                        model.start = target;
                        delete_below_start(&mut segs, &model);
                    }
                    assert_eq!(result.unwrap(), model.start);
                    apply_layout(&mut model, &segs);
                }
            }
            Op::RetainBytes(limit) => {
                let mut segs = before.clone();
                let size: u64 = segs.iter().map(|s| s.size).sum();
                let mut expected_bytes = 0;
                let mut total = size;
                while segs.len() > 1 && total - segs[0].size >= *limit && total > *limit {
                    total -= segs[0].size;
                    expected_bytes += segs[0].size;
                    segs.remove(0);
                }
                log.set_config(LogConfig {
                    retention_bytes: Some(*limit),
                    ..config(p)
                });
                let out = log.apply_retention(now).unwrap();
                log.set_config(config(p));
                expected_bytes += delete_below_start(&mut segs, &model);
                assert_eq!(
                    out.bytes_deleted, expected_bytes,
                    "limit {limit}, {before:?}"
                );
                model.start = model.start.max(segs[0].base);
                apply_layout(&mut model, &segs);
            }
            Op::RetainAge { ttl, ahead } => {
                let at = now + ahead;
                let expired = |s: &Seg| s.size > 0 && s.max_ts >= 0 && s.max_ts < at - ttl;
                let mut segs = before.clone();
                // When everything has expired the active segment is rolled so that the
                // whole log can go.
                if segs.iter().all(|s| expired(s) || s.size == 0) && segs.last().unwrap().size > 0 {
                    segs.push(Seg {
                        base: model.end,
                        next: model.end,
                        size: 0,
                        max_ts: -1,
                    });
                }
                let mut expected_bytes = 0;
                while segs.len() > 1 && expired(&segs[0]) {
                    expected_bytes += segs[0].size;
                    segs.remove(0);
                }
                log.set_config(LogConfig {
                    retention_ms: Some(*ttl),
                    ..config(p)
                });
                let out = log.apply_retention(at).unwrap();
                log.set_config(config(p));
                expected_bytes += delete_below_start(&mut segs, &model);
                assert_eq!(
                    out.bytes_deleted, expected_bytes,
                    "ttl {ttl} at {at}, {before:?}"
                );
                model.start = model.start.max(segs[0].base);
                apply_layout(&mut model, &segs);
            }
            Op::Flush => {
                assert_eq!(log.flush().unwrap(), model.end);
                assert_eq!(log.durable_offset(), model.end);
                assert_eq!(log.unflushed(), (0, None));
            }
            Op::Reopen => {
                log.close().unwrap();
                drop(log);
                log = open(Some(true));
            }
            Op::Crash => {
                // Nothing is flushed, checkpointed or trimmed; the page cache keeps every
                // completed write, so reopening must find exactly what was there.
                std::mem::forget(log);
                log = open(Some(false));
                assert_eq!(log.durable_offset(), model.end);
            }
        }
        check(&mut log, &model, dir.path());
    }
    // Every offset reads back, and a scrub finds nothing wrong.
    for offset in model.start..model.end {
        check_read(
            &mut log,
            &model,
            &layout(dir.path(), &model),
            offset,
            1,
            None,
        );
    }
    log.verify().unwrap();
    log.close().unwrap();
    drop(log);
    deleter.shutdown();
}

/// An offset in `[lo, hi]`.
fn pick(i: &Index, lo: i64, hi: i64) -> i64 {
    lo + i.index((hi - lo + 1) as usize) as i64
}

/// A batch whose bytes depend on `seq`, so no two batches are alike.
fn build_batch(spec: &BatchSpec, clock: i64, seq: u64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for (i, &(len, jitter)) in spec.records.iter().enumerate() {
        let value: Vec<u8> = (0..len)
            .map(|j| (seq as usize * 131 + i * 17 + j) as u8)
            .collect();
        b.push(
            clock + jitter,
            Some(format!("key-{seq}-{i}").as_bytes()),
            Some(&value),
            &[],
        );
    }
    b.build()
}

/// Segment base offsets in the directory (files being deleted are renamed away first).
fn segment_files(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, p))
        })
        .collect();
    v.sort();
    v
}

/// The segments on disk, described with the model's batches.
fn layout(dir: &Path, model: &Model) -> Vec<Seg> {
    let files = segment_files(dir);
    files
        .iter()
        .enumerate()
        .map(|(i, (base, _))| {
            let next = files.get(i + 1).map_or(model.end, |(b, _)| *b);
            let inside = model
                .batches
                .iter()
                .filter(|b| b.base >= *base && b.base < next);
            Seg {
                base: *base,
                next,
                size: inside.clone().map(|b| b.bytes.len() as u64).sum(),
                max_ts: inside.map(|b| b.max_ts).max().unwrap_or(-1),
            }
        })
        .collect()
}

/// The log deletes whole segments below the log start offset, rolling the active one
/// first if all of it is below. Returns the bytes deleted.
fn delete_below_start(segs: &mut Vec<Seg>, model: &Model) -> u64 {
    let last = segs.last().unwrap().clone();
    if last.next <= model.start && last.size > 0 {
        segs.push(Seg {
            base: model.end,
            next: model.end,
            size: 0,
            max_ts: -1,
        });
    }
    let mut bytes = 0;
    while segs.len() > 1 && segs[0].next <= model.start {
        bytes += segs.remove(0).size;
    }
    bytes
}

/// Forgets the model's batches of deleted segments.
fn apply_layout(model: &mut Model, segs: &[Seg]) {
    let first = segs[0].base;
    model.batches.retain(|b| b.base >= first);
}

/// The log agrees with the model on its bounds, and its segment files hold exactly the
/// model's batches, back to back, each in the segment its base offset falls in.
fn check(log: &mut PartitionLog, model: &Model, dir: &Path) {
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (model.start, model.end)
    );
    assert!(log.durable_offset() <= model.end);
    let files = segment_files(dir);
    assert_eq!(log.segment_count(), files.len());
    assert!(!files.is_empty());
    let first = files[0].0;
    assert!(first <= model.start, "first segment {first} above start");
    assert!(model.batches.iter().all(|b| b.base >= first));
    let mut total = 0;
    for (i, (base, path)) in files.iter().enumerate() {
        let next = files.get(i + 1).map_or(model.end, |(b, _)| *b);
        let expected: Vec<u8> = model
            .batches
            .iter()
            .filter(|b| b.base >= *base && b.base < next)
            .flat_map(|b| b.bytes.iter().copied())
            .collect();
        let actual = std::fs::read(path).unwrap();
        assert!(
            actual == expected,
            "segment {base} holds {} bytes, the model {}",
            actual.len(),
            expected.len()
        );
        total += actual.len() as u64;
    }
    assert_eq!(log.size_bytes(), total);
}

/// Reads at `from` and checks the answer: the batch holding `from` first, then as many
/// whole batches of the same segment as fit in `max_bytes` (at least one), none at or
/// above the bound, bytes equal to the model's.
fn check_read(
    log: &mut PartitionLog,
    model: &Model,
    segs: &[Seg],
    from: i64,
    max_bytes: usize,
    bound: Option<i64>,
) {
    let result = log.read(from, max_bytes, bound);
    if from < model.start || from > model.end {
        assert!(
            matches!(result, Err(LogError::OffsetOutOfRange { requested, start, end })
                if requested == from && start == model.start && end == model.end),
            "read at {from}: {result:?}"
        );
        return;
    }
    let read = result.unwrap();
    assert_eq!(
        (read.log_start_offset, read.log_end_offset),
        (model.start, model.end)
    );
    let bound = bound.unwrap_or(model.end).min(model.end);
    if from >= bound {
        assert!(read.slice.is_none(), "read at {from} bound {bound}");
        return;
    }
    let k = model
        .batches
        .iter()
        .position(|b| b.base <= from && from <= b.last)
        .expect("model holds the offset");
    let seg = segs
        .iter()
        .find(|s| s.base <= model.batches[k].base && model.batches[k].base < s.next)
        .unwrap();
    let mut expected = model.batches[k].bytes.clone();
    let mut last = model.batches[k].last;
    for b in &model.batches[k + 1..] {
        if b.base >= seg.next || b.base >= bound || expected.len() + b.bytes.len() > max_bytes {
            break;
        }
        expected.extend_from_slice(&b.bytes);
        last = b.last;
    }
    let slice = read
        .slice
        .unwrap_or_else(|| panic!("read at {from}: no slice"));
    assert_eq!(
        (slice.first_offset, slice.last_offset),
        (model.batches[k].base, last.min(bound - 1)),
        "read at {from} max {max_bytes} bound {bound}"
    );
    assert_eq!(slice.len, expected.len() as u64);
    assert!(
        slice.read_to_vec().unwrap() == expected,
        "read at {from}: bytes differ"
    );
}
