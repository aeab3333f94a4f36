//! The per-record costs of strom-batch: `check_batch`, which the leader runs on every
//! record of every produced batch (docs/adr/0003-record-validation.md), and
//! `record_views`, which reads fetched records in place. Both are varint parsing in a
//! loop; the byte reader they share must stay as fast as the hand-written loops it
//! replaced.
//!
//! Uncompressed 64 KiB batches of small records (16-byte values, a key and a header,
//! where parsing dominates) and of 1 KiB records (where it is amortised); throughput in
//! records.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom_batch::{CheckRules, RecordBatchBuilder, RecordBatchHeader, check_batch, record_views};

const BATCH_BYTES: usize = 64 << 10;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// A batch of about `BATCH_BYTES` of records with `value_len`-byte values.
fn batch(value_len: usize) -> (Vec<u8>, u64) {
    let mut b = RecordBatchBuilder::with_capacity(BATCH_BYTES + 4096);
    let value = vec![0x5a; value_len];
    let mut n = 0u64;
    while b.build().len() < BATCH_BYTES {
        let key = n.to_be_bytes();
        b.push(
            BASE_TIMESTAMP + n as i64,
            Some(&key),
            Some(&value),
            &[("trace", Some(b"0123456789abcdef"))],
        );
        n += 1;
    }
    (b.finish(), n)
}

fn bench(c: &mut Criterion) {
    let rules = CheckRules {
        sequence_required: true,
        max_decompressed_bytes: 1 << 20,
        timestamps: Some((0, i64::MAX)),
    };
    let mut g = c.benchmark_group("record_check");
    for value_len in [16, 1000] {
        let (bytes, records) = batch(value_len);
        let header = RecordBatchHeader::validate_produced(&bytes, 0).unwrap();
        let name = format!("value{value_len}");
        g.throughput(Throughput::Elements(records));
        let mut scratch = Vec::new();
        g.bench_with_input(
            BenchmarkId::new("check_batch", &name),
            &bytes,
            |b, bytes| b.iter(|| check_batch(bytes, &header, &rules, &mut scratch).unwrap()),
        );
        let body = &bytes[strom_batch::BATCH_HEADER_LEN..];
        g.bench_with_input(BenchmarkId::new("record_views", &name), &body, |b, body| {
            b.iter(|| {
                record_views(&header, body)
                    .map(|v| v.unwrap().value.map_or(0, <[u8]>::len))
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
