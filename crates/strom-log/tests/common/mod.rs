//! Helpers shared by the strom-log integration tests: a seeded random generator, batches
//! whose bytes follow from their offset, appends through the log's one write path, and a
//! reader of segment files.

// Each test binary compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strom_batch::{RecordBatchBuilder, RecordBatchHeader};
use strom_log::{AppendInfo, LogManager, PartitionLog, TopicPartition};

mod stamp;

pub(crate) use stamp::stamp_batches;

/// Appends `batches` as a Raft replica does: stamped in place with the log's next
/// offsets and `epoch`, then written through `PartitionLog::append_replicated` (which
/// checks every CRC, like the old producer append did).
pub(crate) fn append(
    log: &mut PartitionLog,
    batches: &mut [u8],
    epoch: i32,
    now_ms: i64,
) -> strom_log::Result<AppendInfo> {
    stamp_batches(batches, log.log_end_offset(), epoch);
    log.append_replicated(batches, now_ms)
}

/// [`append`] to a partition of a `LogManager`, under its lock and open-file budget.
/// Flushes are left to the flush policy: the manager's background tick starts those an
/// interval or size policy asks for, as for every write Raft makes.
pub(crate) fn append_to(
    manager: &LogManager,
    tp: &TopicPartition,
    batches: &mut [u8],
    epoch: i32,
    now_ms: i64,
) -> strom_log::Result<AppendInfo> {
    manager
        .with_log(tp, |log| append(log, batches, epoch, now_ms))
        .unwrap_or_else(|| panic!("no log for {tp:?}"))
}

/// SplitMix64: tiny, deterministic, and good enough to pick positions and sizes.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `[0, n)`; `n` must not be 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
}

/// The SplitMix64 output function, also used to derive batch contents from an offset.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of a randomised test: `STROM_TEST_SEED` if set (to replay a failure),
/// otherwise the clock. Printed so that a failing run can be repeated.
pub(crate) fn seed(test: &str) -> u64 {
    let seed = std::env::var("STROM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: STROM_TEST_SEED={seed}");
    seed
}

/// The batch that belongs at `offset` in a log written with `seed`, exactly as the log
/// stores it (base offset and leader epoch stamped). Its record count, sizes, contents
/// and timestamp all follow from `(seed, offset)`, so whoever reads the log can tell
/// whether what it finds is what was written.
pub(crate) fn batch_at(seed: u64, offset: i64, epoch: i32) -> Vec<u8> {
    let h = mix(seed ^ (offset as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let records = 1 + (h % 4) as usize;
    let mut b = RecordBatchBuilder::new();
    for i in 0..records {
        let r = mix(h.wrapping_add(i as u64));
        let len = (r % 400) as usize;
        let value: Vec<u8> = (0..len).map(|j| (r >> (j % 56)) as u8).collect();
        b.push(
            timestamp_of(offset),
            Some(format!("{offset}-{i}").as_bytes()),
            Some(&value),
            &[],
        );
    }
    let mut bytes = b.build();
    RecordBatchHeader::stamp_base_offset(&mut bytes, offset);
    RecordBatchHeader::stamp_leader_epoch(&mut bytes, epoch);
    bytes
}

/// The timestamp of every record of the batch at `offset`: increasing with the offset.
pub(crate) fn timestamp_of(offset: i64) -> i64 {
    1_700_000_000_000 + offset * 10
}

/// Segment `.log` files of a log directory, by base offset (files being deleted are
/// renamed to `*.deleted` first and are not listed).
pub(crate) fn segment_files(dir: &Path) -> Vec<(i64, PathBuf)> {
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

/// The whole, valid batches at the start of a segment file's bytes, with their byte
/// positions; stops at the first one that does not frame or pass its CRC.
pub(crate) fn batches_in(bytes: &[u8]) -> Vec<(u64, RecordBatchHeader)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match RecordBatchHeader::validate(&bytes[pos..], pos) {
            Ok(h) => {
                out.push((pos as u64, h));
                pos += h.total_size();
            }
            Err(_) => break,
        }
    }
    out
}

/// Copies the files of one log directory into another (which must exist).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// Flips one bit of a file in place.
pub(crate) fn flip_bit(path: &Path, byte: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[byte as usize] ^= 1 << bit;
    std::fs::write(path, &bytes).unwrap();
}
