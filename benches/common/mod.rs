//! Helpers shared by the strom-log benches: the scratch directory, 1 KiB-record batches,
//! the log settings the benches use, appends through the log's one write path and a tiny
//! deterministic random number generator.

// Each bench binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use strom_batch::RecordBatchBuilder;
use strom_log::{AppendInfo, FlushPolicy, LogConfig, PartitionLog};
use tempfile::TempDir;

#[path = "../../crates/strom-log/tests/common/stamp.rs"]
mod stamp;

/// Appends `batch` as a Raft replica does: stamped in place with the log's next offsets
/// (epoch 0), then written through `PartitionLog::append_replicated`, which checks its
/// CRC like every write that has not been checked on these bytes before.
pub(crate) fn append(
    log: &mut PartitionLog,
    batch: &mut [u8],
    now_ms: i64,
) -> strom_log::Result<AppendInfo> {
    stamp::stamp_batches(batch, log.log_end_offset(), 0);
    log.append_replicated(batch, now_ms)
}

/// Value length that makes each record encode to 1 KiB (1,023 or 1,024 bytes, depending
/// on how many bytes its offset delta's varint takes).
pub(crate) const RECORD_VALUE_LEN: usize = 1014;

/// Nominal record size: batches of `n` KiB hold `n` records.
pub(crate) const RECORD_BYTES: usize = 1024;

/// Human-readable size, used in group names ("16KiB", "1MiB"); sizes are whole KiB, and
/// whole MiB from 1 MiB on.
pub(crate) fn size_name(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{}KiB", bytes >> 10)
    }
}

/// A directory for bench files on the disk being measured, not a tmpfs: `STROM_BENCH_DIR`,
/// else `$CARGO_TARGET_DIR/bench-scratch`, else the workspace's `target/bench-scratch`.
/// Removed when the returned guard drops.
pub(crate) fn scratch_dir() -> TempDir {
    let base = std::env::var_os("STROM_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("bench-scratch"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-scratch")
        });
    std::fs::create_dir_all(&base).expect("create bench scratch directory");
    tempfile::tempdir_in(&base).expect("create bench temp directory")
}

/// One uncompressed v2 batch of `batch_bytes / 1 KiB` records of 1 KiB each, with
/// timestamps from `first_ts` on (one millisecond apart) and pseudo-random values.
pub(crate) fn record_batch(batch_bytes: usize, first_ts: i64, rng: &mut Rng) -> Vec<u8> {
    let records = (batch_bytes / RECORD_BYTES).max(1);
    let mut value = vec![0u8; RECORD_VALUE_LEN];
    let mut builder = RecordBatchBuilder::new();
    for i in 0..records {
        rng.fill(&mut value);
        builder.push(first_ts + i as i64, None, Some(&value), &[]);
    }
    builder.build()
}

/// The settings every bench log uses: Kafka's defaults, except that batches up to 2 MiB
/// are accepted (a "1 MiB batch" of 1 KiB records is 61 bytes over Kafka's default
/// `max.message.bytes`) and nothing is fsynced behind the bench's back.
pub(crate) fn log_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        max_message_bytes: 2 << 20,
        flush: FlushPolicy::Os,
        ..LogConfig::default()
    }
}

/// Wall-clock milliseconds, as the broker passes to `append`.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// xorshift64*: reproducible "random" offsets and payloads without a dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, n)` (n > 0; the modulo bias is irrelevant here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// True when the binary runs as a benchmark (`cargo bench`), false under `cargo test`,
/// where benches only need to show they still work.
pub(crate) fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}
