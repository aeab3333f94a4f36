//! Read paths of `PartitionLog` against plain `pread` on the same bytes: cached
//! sequential reads (a consumer fetching 16 KiB, 64 KiB or 1 MiB at a time), and index
//! lookups at random offsets and timestamps in a log of many segments.
//!
//! The data is written and fsynced once before measuring, so every read is served from
//! the page cache and no writeback runs underneath.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strom_batch::{BATCH_HEADER_LEN, RecordBatchHeader};
use strom_log::{Deleter, PartitionLog};

use common::{Rng, bench_mode, log_config, now_ms, record_batch, scratch_dir, size_name};

/// Producer batch size of the log that the sequential reads walk.
const READ_BATCH: usize = 16 << 10;

/// Size of that log: far below RAM, so it stays cached.
const READ_LOG_BYTES: u64 = 64 << 20;

/// Fetch sizes (`max_bytes`) measured.
const FETCH_SIZES: [usize; 3] = [16 << 10, 64 << 10, 1 << 20];

/// The index-lookup log: small batches in small segments, so there are many of both.
const LOOKUP_BATCH: usize = 4 << 10;
const LOOKUP_SEGMENT_BYTES: u64 = 4 << 20;
const LOOKUP_LOG_BYTES: u64 = 128 << 20;

/// Every batch of the lookup log, as an in-memory index would hold it.
#[derive(Debug, Clone, Copy)]
struct BatchEntry {
    base_offset: i64,
    segment: usize,
    position: u64,
}

fn open_log(dir: &Path, segment_bytes: u64, deleter: &Deleter) -> PartitionLog {
    PartitionLog::open(dir, log_config(segment_bytes), deleter.clone())
        .expect("open log")
        .0
}

/// Sequential reads of whole batches, `max_bytes` at a time, from the start of the log:
/// the log's `read` + `FileSlice::read_into` against `pread` of the very same ranges.
fn cached_read(c: &mut Criterion) {
    let scratch = scratch_dir();
    let deleter = Deleter::start();
    let mut log = open_log(&scratch.path().join("read-0"), 1 << 30, &deleter);
    let mut batch = record_batch(READ_BATCH, now_ms(), &mut Rng::new(7));
    let target = if bench_mode() {
        READ_LOG_BYTES
    } else {
        4 << 20
    };
    while log.size_bytes() < target {
        common::append(&mut log, &mut batch, now_ms()).expect("append");
    }
    log.flush().expect("flush");

    for max_bytes in FETCH_SIZES {
        // The ranges a consumer reading from offset 0 gets, minus a shorter last one.
        let mut chunks: Vec<(i64, u64, u64)> = Vec::new();
        let mut from = 0;
        let mut path = PathBuf::new();
        while from < log.log_end_offset() {
            let slice = log
                .read(from, max_bytes, None)
                .expect("read")
                .slice
                .expect("data");
            path = slice.path.clone();
            chunks.push((from, slice.position, slice.len));
            from = slice.last_offset + 1;
        }
        let len = chunks[0].2;
        chunks.retain(|c| c.2 == len);
        let raw = File::open(&path).expect("open segment");
        let mut buf = vec![0u8; len as usize];

        let mut group = c.benchmark_group(format!("read_cached_{}", size_name(max_bytes)));
        group.throughput(Throughput::Bytes(len));
        let mut i = 0;
        group.bench_function("raw_pread", |b| {
            b.iter(|| {
                let (_, position, len) = chunks[i % chunks.len()];
                i += 1;
                raw.read_exact_at(&mut buf[..len as usize], position)
                    .expect("pread");
                black_box(&buf);
            })
        });
        let mut i = 0;
        group.bench_function("strom_read", |b| {
            b.iter(|| {
                let (offset, _, _) = chunks[i % chunks.len()];
                i += 1;
                let slice = log
                    .read(offset, max_bytes, None)
                    .expect("read")
                    .slice
                    .expect("data");
                slice
                    .read_into(&mut buf[..slice.len as usize])
                    .expect("read_into");
                black_box(&buf);
            })
        });
        group.finish();
    }
    log.delete().expect("delete log");
    deleter.shutdown();
}

/// Random lookups in a log of many segments: `read` (locating the batch, no data copied)
/// and `offset_for_timestamp`, against a binary search of an in-memory index of every
/// batch plus a `pread` of the batch header from an already open file.
fn index_lookup(c: &mut Criterion) {
    let scratch = scratch_dir();
    let deleter = Deleter::start();
    let dir = scratch.path().join("lookup-0");
    let mut log = open_log(&dir, LOOKUP_SEGMENT_BYTES, &deleter);
    let mut rng = Rng::new(11);
    let first_ts = now_ms();
    let records_per_batch = (LOOKUP_BATCH / common::RECORD_BYTES) as i64;
    let target = if bench_mode() {
        LOOKUP_LOG_BYTES
    } else {
        16 << 20
    };
    let mut entries: Vec<BatchEntry> = Vec::new();
    let mut segment_bases: Vec<i64> = Vec::new();
    let mut position = 0u64;
    let mut n = 0i64;
    while log.size_bytes() < target {
        let mut batch = record_batch(LOOKUP_BATCH, first_ts + n * records_per_batch, &mut rng);
        let segments_before = log.segment_count();
        let info = common::append(&mut log, &mut batch, now_ms()).expect("append");
        if log.segment_count() != segments_before || segment_bases.is_empty() {
            segment_bases.push(info.base_offset);
            position = 0;
        }
        entries.push(BatchEntry {
            base_offset: info.base_offset,
            segment: segment_bases.len() - 1,
            position,
        });
        position += info.bytes as u64;
        n += 1;
    }
    log.flush().expect("flush");
    let end = log.log_end_offset();
    let last_ts = first_ts + n * records_per_batch;
    let files: Vec<File> = segment_bases
        .iter()
        .map(|b| File::open(dir.join(format!("{b:020}.log"))).expect("open segment"))
        .collect();
    let first_segment_end = segment_bases.get(1).copied().unwrap_or(end);

    eprintln!(
        "index_lookup: {} segments, {} batches of {} KiB",
        segment_bases.len(),
        entries.len(),
        LOOKUP_BATCH >> 10
    );
    let mut group = c.benchmark_group("index_lookup");
    group.throughput(Throughput::Elements(1));
    let mut rng = Rng::new(99);
    let mut header = [0u8; BATCH_HEADER_LEN];
    group.bench_function("raw_in_memory_index_pread_header", |b| {
        b.iter(|| {
            let offset = rng.below(end as u64) as i64;
            let i = entries.partition_point(|e| e.base_offset <= offset) - 1;
            let e = entries[i];
            files[e.segment]
                .read_exact_at(&mut header, e.position)
                .expect("pread");
            black_box(RecordBatchHeader::parse(&header, 0).expect("header"));
        })
    });
    let mut rng = Rng::new(99);
    group.bench_function("strom_read_random_offset", |b| {
        b.iter(|| {
            let offset = rng.below(end as u64) as i64;
            let r = log.read(offset, 1, None).expect("read");
            black_box(r.slice.expect("data").position);
        })
    });
    let mut rng = Rng::new(99);
    group.bench_function("strom_read_random_offset_one_segment", |b| {
        b.iter(|| {
            let offset = rng.below(first_segment_end as u64) as i64;
            let r = log.read(offset, 1, None).expect("read");
            black_box(r.slice.expect("data").position);
        })
    });
    let mut rng = Rng::new(99);
    group.bench_function("strom_offset_for_timestamp", |b| {
        b.iter(|| {
            let ts = first_ts + rng.below((last_ts - first_ts) as u64) as i64;
            black_box(
                log.offset_for_timestamp(ts)
                    .expect("lookup")
                    .expect("found"),
            );
        })
    });
    group.finish();
    drop(files);
    log.delete().expect("delete log");
    deleter.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = cached_read, index_lookup
}
criterion_main!(benches);
