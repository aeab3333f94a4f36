//! Recovery of a 1 GiB segment after an unclean shutdown: how long `PartitionLog::open`
//! takes, against reading the same file raw (and reading it while checking every batch's
//! CRC-32C, the floor for a recovery that trusts nothing).
//!
//! Not a criterion bench (one open takes a second; criterion would want minutes): it
//! writes the segment once, fsyncs it, then alternates raw reads and recoveries and prints
//! the medians. The file stays in the page cache throughout (dropping caches needs root),
//! so every figure is a cached one. Under `cargo test` it runs once on 16 MiB.
//!
//! `STROM_RECOVERY_BYTES` changes the segment size, `STROM_RECOVERY_RUNS` the repeats.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use strom_batch::RecordBatchHeader;
use strom_log::{Deleter, PartitionLog};

use common::{Rng, bench_mode, log_config, now_ms, record_batch};

/// Batches are the common producer size: 16 KiB of 1 KiB records.
const BATCH_BYTES: usize = 16 << 10;

/// Read size of the raw baselines, the same as the recovery scan's chunk.
const READ_CHUNK: usize = 1 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads the file sequentially; with `check`, also walks and CRC-checks every batch.
fn raw_read(path: &Path, check: bool) -> (Duration, u64) {
    let start = Instant::now();
    let mut file = File::open(path).expect("open segment");
    let mut buf = vec![0u8; READ_CHUNK + (2 << 20)];
    let (mut filled, mut total, mut batches) = (0usize, 0u64, 0u64);
    loop {
        let n = file
            .read(&mut buf[filled..filled + READ_CHUNK])
            .expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
        filled += n;
        if !check {
            filled = 0;
            continue;
        }
        let mut pos = 0;
        while let Ok(total_size) = RecordBatchHeader::frame_size(&buf[pos..filled], 0) {
            if pos + total_size > filled {
                break;
            }
            RecordBatchHeader::validate(&buf[pos..pos + total_size], 0).expect("valid batch");
            batches += 1;
            pos += total_size;
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
    assert_eq!(filled, 0, "trailing partial batch");
    std::hint::black_box(batches);
    (start.elapsed(), total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = bench_mode();
    let target = env_or(
        "STROM_RECOVERY_BYTES",
        if full { 1 << 30 } else { 16 << 20 },
    );
    let runs = env_or("STROM_RECOVERY_RUNS", if full { 5 } else { 1 }) as usize;

    let scratch = common::scratch_dir();
    let dir = scratch.path().join("recovery-0");
    let deleter = Deleter::start();
    // Segments may reach 2 GiB, so everything lands in one segment.
    let config = log_config(2 << 30);
    let (mut log, _) = PartitionLog::open(&dir, config.clone(), deleter.clone()).expect("open");
    let mut batch = record_batch(BATCH_BYTES, now_ms(), &mut Rng::new(3));
    while log.size_bytes() + batch.len() as u64 <= target {
        common::append(&mut log, &mut batch, now_ms()).expect("append");
    }
    // Everything is durable (as after a group commit), but the shutdown is unclean: the
    // log is never closed, so its checkpoint does not say "clean" and open must rescan.
    log.flush().expect("flush");
    let size = log.size_bytes();
    let segment = dir.join("00000000000000000000.log");
    std::mem::forget(log);

    let (mut raw, mut raw_crc, mut recover) = (Vec::new(), Vec::new(), Vec::new());
    // One untimed pass so the first measured read does not pay for reading from disk
    // what the writes may already have evicted.
    raw_read(&segment, false);
    for _ in 0..runs {
        let (t, bytes) = raw_read(&segment, false);
        assert_eq!(bytes, size);
        raw.push(t);
        raw_crc.push(raw_read(&segment, true).0);
        let start = Instant::now();
        let (log, report) =
            PartitionLog::open(&dir, config.clone(), deleter.clone()).expect("recover");
        recover.push(start.elapsed());
        assert!(!report.clean, "the shutdown was meant to be unclean");
        assert_eq!(
            report.bytes_scanned, size,
            "recovery must scan the whole segment"
        );
        assert_eq!(log.size_bytes(), size);
        // Crash again, so the next open recovers too.
        std::mem::forget(log);
    }
    drop(scratch);
    deleter.shutdown();

    let (raw, raw_crc, recover) = (median(raw), median(raw_crc), median(recover));
    let gbps = |t: Duration| size as f64 / t.as_secs_f64() / 1e9;
    println!(
        "recovery of one {:.2} GiB segment of {} KiB batches, page cache warm, median of {runs}:",
        size as f64 / (1u64 << 30) as f64,
        BATCH_BYTES >> 10
    );
    println!(
        "  raw_read            {:>9.1} ms  {:>5.2} GB/s",
        raw.as_secs_f64() * 1e3,
        gbps(raw)
    );
    println!(
        "  raw_read_crc32c     {:>9.1} ms  {:>5.2} GB/s",
        raw_crc.as_secs_f64() * 1e3,
        gbps(raw_crc)
    );
    println!(
        "  strom_recover_open  {:>9.1} ms  {:>5.2} GB/s",
        recover.as_secs_f64() * 1e3,
        gbps(recover)
    );
    println!(
        "  ratio raw_read/strom = {:.2}   raw_read_crc32c/strom = {:.2}",
        raw.as_secs_f64() / recover.as_secs_f64(),
        raw_crc.as_secs_f64() / recover.as_secs_f64()
    );
}
