//! Append throughput of `PartitionLog` against plain `File::write` on the same bytes:
//! batches of 16 KiB, 64 KiB and 1 MiB made of 1 KiB records, with no fsync and with
//! the data made durable every 1 MiB: `fdatasync` on the appending thread (raw) against
//! `flush()` (log), and `fdatasync` on a helper thread (raw) against group commit (log),
//! whose fsync also runs on another thread.
//!
//! Both sides write the same batch buffer to a fresh file on the same disk and start a
//! new file (outside the timed region) before one would pass `FILE_CAP`, so the disk
//! never fills and both pay the same file-growth costs.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, Throughput, criterion_group, criterion_main};
use strom_log::{Deleter, GroupCommit, PartitionLog};

use common::{Rng, log_config, now_ms, record_batch, scratch_dir, size_name};

/// Batch sizes measured (each made of 1 KiB records).
const BATCH_SIZES: [usize; 3] = [16 << 10, 64 << 10, 1 << 20];

/// A file (or log) is replaced by a fresh one before it would grow past this.
const FILE_CAP: u64 = 256 << 20;

/// Durable modes sync once this many bytes were written since the last sync.
const SYNC_EVERY: u64 = 1 << 20;

/// Something batches are appended to: a raw file or a partition log.
trait Sink {
    fn append(&mut self, batch: &mut [u8]);
    /// Bytes in the current file.
    fn written(&self) -> u64;
    /// Replaces the current file with an empty one.
    fn reset(&mut self);
}

/// How the durable variants make appended bytes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Leave it to the page cache.
    None,
    /// `fdatasync` on the raw file / `PartitionLog::flush`, on the appending thread.
    SyncPerMiB,
    /// fsync on another thread while the appender waits: `GroupCommit::wait_durable`
    /// (the broker's path) for the log, a long-lived helper thread for the raw file.
    /// On this machine an fdatasync issued by a thread other than the one that wrote the
    /// data is much faster, so the raw baseline is measured both ways.
    OtherThreadPerMiB,
}

/// A request to the raw baseline's fsync thread: the file, and whom to tell when done.
type SyncRequest = (Arc<File>, std::sync::mpsc::Sender<()>);

/// The baseline: `File::write` of the same bytes, optionally `fdatasync` every 1 MiB.
struct RawFile {
    path: PathBuf,
    file: Arc<File>,
    written: u64,
    unsynced: u64,
    durability: Durability,
    /// The fsync thread of `OtherThreadPerMiB`; it exits when this sender drops.
    syncer: Option<std::sync::mpsc::Sender<SyncRequest>>,
}

impl RawFile {
    fn new(dir: &Path, durability: Durability) -> RawFile {
        let path = dir.join("raw.log");
        let file = Self::create(&path);
        let syncer = (durability == Durability::OtherThreadPerMiB).then(|| {
            let (tx, rx) = std::sync::mpsc::channel::<SyncRequest>();
            std::thread::spawn(move || {
                for (file, done) in rx {
                    file.sync_data().expect("fdatasync");
                    let _ = done.send(());
                }
            });
            tx
        });
        RawFile {
            path,
            file,
            written: 0,
            unsynced: 0,
            durability,
            syncer,
        }
    }

    fn create(path: &Path) -> Arc<File> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .expect("create raw file");
        Arc::new(file)
    }
}

impl Sink for RawFile {
    fn append(&mut self, batch: &mut [u8]) {
        (&*self.file).write_all(batch).expect("raw write");
        self.written += batch.len() as u64;
        if self.durability == Durability::None {
            return;
        }
        self.unsynced += batch.len() as u64;
        if self.unsynced < SYNC_EVERY {
            return;
        }
        self.unsynced = 0;
        match &self.syncer {
            Some(syncer) => {
                let (done, wait) = std::sync::mpsc::channel();
                syncer
                    .send((self.file.clone(), done))
                    .expect("fsync thread");
                wait.recv().expect("fsync thread");
            }
            None => self.file.sync_data().expect("fdatasync"),
        }
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn reset(&mut self) {
        std::fs::remove_file(&self.path).expect("remove raw file");
        self.file = Self::create(&self.path);
        self.written = 0;
        self.unsynced = 0;
    }
}

/// Strom: `PartitionLog::append_replicated` of the same bytes (offsets stamped first), optionally made durable every 1 MiB.
struct StromLog {
    root: PathBuf,
    generation: u32,
    log: Arc<Mutex<PartitionLog>>,
    deleter: Deleter,
    group_commit: GroupCommit,
    durability: Durability,
    written: u64,
    unsynced: u64,
    now_ms: i64,
}

impl StromLog {
    fn new(root: &Path, durability: Durability) -> StromLog {
        let deleter = Deleter::start();
        let log = Self::open(root, 0, &deleter);
        StromLog {
            root: root.to_path_buf(),
            generation: 0,
            log,
            deleter,
            group_commit: GroupCommit::start(1),
            durability,
            written: 0,
            unsynced: 0,
            now_ms: now_ms(),
        }
    }

    fn open(root: &Path, generation: u32, deleter: &Deleter) -> Arc<Mutex<PartitionLog>> {
        let dir = root.join(format!("bench-{generation}"));
        let (log, _) =
            PartitionLog::open(&dir, log_config(1 << 30), deleter.clone()).expect("open log");
        Arc::new(Mutex::new(log))
    }

    /// Deletes the current log without the fsync a clean close would do (the raw side
    /// does not sync its file before deleting it either), and waits for the unlink.
    fn discard(&mut self) {
        self.log.lock().unwrap().delete().expect("delete log");
        self.deleter.wait_idle();
    }
}

impl Sink for StromLog {
    fn append(&mut self, batch: &mut [u8]) {
        let info =
            common::append(&mut self.log.lock().unwrap(), batch, self.now_ms).expect("append");
        self.written += info.bytes as u64;
        if self.durability == Durability::None {
            return;
        }
        self.unsynced += info.bytes as u64;
        if self.unsynced < SYNC_EVERY {
            return;
        }
        self.unsynced = 0;
        let end = info.last_offset + 1;
        match self.durability {
            Durability::OtherThreadPerMiB => {
                self.group_commit
                    .wait_durable(&self.log, end)
                    .expect("group commit");
            }
            _ => {
                self.log.lock().unwrap().flush().expect("flush");
            }
        }
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn reset(&mut self) {
        self.discard();
        self.generation += 1;
        self.log = Self::open(&self.root, self.generation, &self.deleter);
        self.written = 0;
        self.unsynced = 0;
    }
}

impl Drop for StromLog {
    fn drop(&mut self) {
        self.discard();
        self.group_commit.shutdown();
        self.deleter.shutdown();
    }
}

/// Appends one batch per iteration; the time spent replacing a full file is not counted.
fn run(b: &mut Bencher<'_>, sink: &mut dyn Sink, batch: &mut [u8]) {
    b.iter_custom(|iters| {
        let mut elapsed = Duration::ZERO;
        let mut start = Instant::now();
        for _ in 0..iters {
            if sink.written() + batch.len() as u64 > FILE_CAP {
                elapsed += start.elapsed();
                sink.reset();
                start = Instant::now();
            }
            sink.append(batch);
        }
        elapsed + start.elapsed()
    });
}

fn append(c: &mut Criterion) {
    let scratch = scratch_dir();
    let mut rng = Rng::new(0x5eed);
    for size in BATCH_SIZES {
        let mut batch = record_batch(size, now_ms(), &mut rng);
        let mut group = c.benchmark_group(format!("append_{}", size_name(size)));
        group.throughput(Throughput::Bytes(batch.len() as u64));
        // (name, raw file or log, durability), in the order criterion reports them.
        let cases = [
            ("raw_write", true, Durability::None),
            ("strom_append_no_fsync", false, Durability::None),
            ("raw_write_fdatasync_per_MiB", true, Durability::SyncPerMiB),
            ("strom_append_flush_per_MiB", false, Durability::SyncPerMiB),
            (
                "raw_write_fdatasync_other_thread_per_MiB",
                true,
                Durability::OtherThreadPerMiB,
            ),
            (
                "strom_append_group_commit_per_MiB",
                false,
                Durability::OtherThreadPerMiB,
            ),
        ];
        for (name, raw, durability) in cases {
            let dir = scratch.path().join(name);
            std::fs::create_dir_all(&dir).expect("create bench dir");
            let mut sink: Box<dyn Sink> = if raw {
                Box::new(RawFile::new(&dir, durability))
            } else {
                Box::new(StromLog::new(&dir, durability))
            };
            group.bench_function(name, |b| run(b, sink.as_mut(), &mut batch));
            drop(sink);
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = append
}
criterion_main!(benches);
