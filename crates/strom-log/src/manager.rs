//! The `LogManager`: every partition log of a node under one data directory
//! (`<data>/<topic>-<partition>/`), with group commit, background retention and
//! flushing, and a budget of open files so 10,000 partitions fit in the process's
//! file-descriptor and memory-map limits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{FlushPolicy, LogConfig};
use crate::deleter::{DELETED_SUFFIX, Deleter};
use crate::error::{IoContext, LogError, Result};
use crate::group_commit::{DurableCallback, GroupCommit};
use crate::log::{PartitionLog, RetentionOutcome};

/// A partition's name. Its directory is `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses `<topic>-<partition>`; the topic itself may contain dashes.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition = partition.parse().ok()?;
        (!topic.is_empty()).then(|| TopicPartition::new(topic, partition))
    }
}

/// Settings of the manager.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub data_dir: PathBuf,
    /// Settings for logs created without their own.
    pub default_log: LogConfig,
    /// Logs allowed to keep files open at once; the least recently used beyond this have
    /// their files closed (they reopen on use). Each open log holds about 1-2
    /// descriptors and two small mappings.
    pub max_open_logs: usize,
    /// Concurrent fsyncs in one group-commit round.
    pub flush_parallelism: usize,
    /// How often the background thread checks retention.
    pub retention_check_interval: Duration,
}

impl ManagerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ManagerConfig {
            data_dir: data_dir.into(),
            default_log: LogConfig::default(),
            max_open_logs: 4096,
            flush_parallelism: 4,
            retention_check_interval: Duration::from_secs(30),
        }
    }
}

/// One managed log with the bookkeeping for the open-file budget.
#[derive(Debug)]
struct Entry {
    log: Arc<Mutex<PartitionLog>>,
    /// Logical time of the last use, for choosing whom to close.
    last_used: AtomicU64,
    /// Whether the log is counted as holding open files.
    counted_open: AtomicBool,
}

/// All partition logs of a node.
#[derive(Debug)]
pub struct LogManager {
    config: ManagerConfig,
    logs: RwLock<HashMap<TopicPartition, Arc<Entry>>>,
    deleter: Deleter,
    group_commit: GroupCommit,
    clock: AtomicU64,
    /// Logs counted as holding open files; shared with the flush callbacks, which count
    /// the logs a flush reopened.
    open_logs: Arc<AtomicUsize>,
    background: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// Logs a flush nobody waited for (interval and size policies) took offline, for
    /// the owner to stop and recover (see [`take_background_failures`](Self::take_background_failures)).
    background_failures: Arc<Mutex<Vec<TopicPartition>>>,
}

impl LogManager {
    /// Opens every log under the data directory (recovering any left by a crash) and
    /// starts the background threads (deletion, group commit, retention and flushing).
    pub fn open(config: ManagerConfig) -> Result<Arc<LogManager>> {
        crate::disk::create_dir_all(&config.data_dir).at(&config.data_dir)?;
        let deleter = Deleter::start();
        let mut logs = HashMap::new();
        for entry in std::fs::read_dir(&config.data_dir).at(&config.data_dir)? {
            let path = entry.at(&config.data_dir)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(DELETED_SUFFIX) {
                deleter.delete_dir(path.clone());
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            let Some(tp) = TopicPartition::from_dir_name(name) else {
                continue;
            };
            let (mut log, report) =
                PartitionLog::open(&path, config.default_log.clone(), deleter.clone())?;
            if !report.clean {
                tracing::info!(partition = %name, ?report, "recovered log after unclean shutdown");
            }
            log.release_handles();
            logs.insert(
                tp,
                Arc::new(Entry {
                    log: Arc::new(Mutex::new(log)),
                    last_used: AtomicU64::new(0),
                    counted_open: AtomicBool::new(false),
                }),
            );
        }
        let manager = Arc::new(LogManager {
            group_commit: GroupCommit::start(config.flush_parallelism),
            config,
            logs: RwLock::new(logs),
            deleter,
            clock: AtomicU64::new(1),
            open_logs: Arc::new(AtomicUsize::new(0)),
            background: Mutex::new(None),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            background_failures: Arc::new(Mutex::new(Vec::new())),
        });
        let weak = Arc::downgrade(&manager);
        let stop = manager.stop.clone();
        let thread = std::thread::Builder::new()
            .name("strom-log-background".into())
            .spawn(move || background_loop(weak, stop))
            .expect("spawn log background thread");
        *manager.background.lock().unwrap() = Some(thread);
        Ok(manager)
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    pub fn group_commit(&self) -> &GroupCommit {
        &self.group_commit
    }

    /// The partitions this node stores.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut v: Vec<_> = self.logs.read().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.logs.read().unwrap().contains_key(tp)
    }

    /// Creates the log of a partition (or returns the existing one) with `config`, or
    /// the default settings.
    pub fn create(&self, tp: &TopicPartition, config: Option<LogConfig>) -> Result<()> {
        let mut logs = self.logs.write().unwrap();
        if logs.contains_key(tp) {
            return Ok(());
        }
        let dir = self.config.data_dir.join(tp.dir_name());
        let config = config.unwrap_or_else(|| self.config.default_log.clone());
        let (mut log, _) = PartitionLog::open(&dir, config, self.deleter.clone())?;
        // Like the logs found at start-up, a new log holds no files until it is used:
        // only then is it counted against `max_open_logs`, so creating thousands of
        // partitions at once must not keep thousands of descriptors open.
        log.release_handles();
        logs.insert(
            tp.clone(),
            Arc::new(Entry {
                log: Arc::new(Mutex::new(log)),
                last_used: AtomicU64::new(0),
                counted_open: AtomicBool::new(false),
            }),
        );
        drop(logs);
        Ok(())
    }

    /// Deletes a partition's log; its files go off-thread.
    pub fn delete(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(entry) = self.logs.write().unwrap().remove(tp) else {
            return Ok(false);
        };
        if entry.counted_open.swap(false, Ordering::Relaxed) {
            self.open_logs.fetch_sub(1, Ordering::Relaxed);
        }
        entry.log.lock().unwrap().delete()?;
        Ok(true)
    }

    /// Runs `f` on a partition's log under its lock, keeping the open-file budget.
    pub fn with_log<R>(
        &self,
        tp: &TopicPartition,
        f: impl FnOnce(&mut PartitionLog) -> R,
    ) -> Option<R> {
        let entry = self.logs.read().unwrap().get(tp)?.clone();
        let result = {
            let mut log = entry.log.lock().unwrap();
            let r = f(&mut log);
            if log.has_open_handles() && !entry.counted_open.swap(true, Ordering::Relaxed) {
                self.open_logs.fetch_add(1, Ordering::Relaxed);
            }
            r
        };
        entry.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if self.open_logs.load(Ordering::Relaxed) > self.config.max_open_logs {
            self.close_idle_logs();
        }
        Some(result)
    }

    /// The shared handle of a log, for callers that manage locking themselves (the
    /// group commit, Raft). Prefer [`with_log`](Self::with_log).
    pub fn log(&self, tp: &TopicPartition) -> Option<Arc<Mutex<PartitionLog>>> {
        self.logs.read().unwrap().get(tp).map(|e| e.log.clone())
    }

    /// Calls `done` once the partition is durable below `offset` (group commit).
    pub fn when_durable(&self, tp: &TopicPartition, offset: i64, done: DurableCallback) {
        match self.entry(tp) {
            Some(entry) => self.request_flush(&entry, offset, done),
            None => done(Err(Arc::new(LogError::Closed {
                path: self.config.data_dir.join(tp.dir_name()),
            }))),
        }
    }

    fn entry(&self, tp: &TopicPartition) -> Option<Arc<Entry>> {
        self.logs.read().unwrap().get(tp).cloned()
    }

    /// Asks the group commit to flush a log. A flush reopens the files of a log whose
    /// files the budget closed since it was written, outside `with_log`: it is counted
    /// as open afterwards, or the budget would never close those files again and a node
    /// of thousands of partitions would run out of descriptors.
    fn request_flush(&self, entry: &Arc<Entry>, offset: i64, done: DurableCallback) {
        let counted = entry.clone();
        let open_logs = self.open_logs.clone();
        self.group_commit.request(
            &entry.log,
            offset,
            Box::new(move |r| {
                let open = counted.log.lock().unwrap().has_open_handles();
                if open && !counted.counted_open.swap(true, Ordering::Relaxed) {
                    open_logs.fetch_add(1, Ordering::Relaxed);
                }
                done(r)
            }),
        );
    }

    /// Brings a log that went offline after a storage error back (see
    /// [`PartitionLog::recover_after_fault`]). `Ok(false)` when it was not offline.
    pub fn recover(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(entry) = self.entry(tp) else {
            return Err(LogError::Closed {
                path: self.config.data_dir.join(tp.dir_name()),
            });
        };
        let mut log = entry.log.lock().unwrap();
        if log.offline_cause().is_none() {
            return Ok(false);
        }
        log.recover_after_fault()?;
        // The reopened log holds no counted files yet.
        if !log.has_open_handles() && entry.counted_open.swap(false, Ordering::Relaxed) {
            self.open_logs.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Logs that background flushes took offline since the last call: their owner stops
    /// and recovers them as after any storage error of its own.
    pub fn take_background_failures(&self) -> Vec<TopicPartition> {
        std::mem::take(&mut *self.background_failures.lock().unwrap())
    }

    /// The callback of a flush nobody waits for: its failure has taken the log offline;
    /// say so, since no request will, and hand the log to whoever recovers it.
    fn report_flush_error(&self, tp: TopicPartition) -> DurableCallback {
        let failures = self.background_failures.clone();
        Box::new(move |r| {
            if let Err(e) = r {
                tracing::error!(partition = %tp.dir_name(), error = %e, "background flush failed; the log is offline");
                failures.lock().unwrap().push(tp);
            }
        })
    }

    /// The partitions whose logs are offline after a storage error, with the cause.
    pub fn offline(&self) -> Vec<(TopicPartition, String)> {
        let entries: Vec<_> = self
            .logs
            .read()
            .unwrap()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.clone()))
            .collect();
        entries
            .into_iter()
            .filter_map(|(tp, e)| {
                let cause = e.log.lock().unwrap().offline_cause().map(str::to_string);
                cause.map(|c| (tp, c))
            })
            .collect()
    }

    /// Applies retention to every log now.
    pub fn run_retention(&self, now_ms: i64) -> RetentionOutcome {
        let mut total = RetentionOutcome::default();
        for tp in self.partitions() {
            match self.with_log(&tp, |log| log.apply_retention(now_ms)) {
                Some(Ok(out)) => {
                    total.segments_deleted += out.segments_deleted;
                    total.bytes_deleted += out.bytes_deleted;
                }
                Some(Err(e)) => {
                    tracing::error!(partition = %tp.dir_name(), error = %e, "retention failed")
                }
                None => {}
            }
        }
        total
    }

    /// Starts flushes for logs whose interval or size policy is due.
    fn flush_due_logs(&self, now_ms: i64) {
        let entries: Vec<_> = self
            .logs
            .read()
            .unwrap()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.clone()))
            .collect();
        for (tp, entry) in entries {
            let due = {
                let log = entry.log.lock().unwrap();
                if log.offline_cause().is_some() {
                    // Reported once when it failed; flushing again would only fail again.
                    continue;
                }
                match (log.config().flush, log.unflushed()) {
                    (FlushPolicy::Interval(d), (_, Some(first))) => {
                        now_ms - first >= d.as_millis() as i64
                    }
                    // Appends (Raft's, through `with_log`/`log`) do not pass through the
                    // manager: the size policy is checked here, at most one tick late.
                    (FlushPolicy::Bytes(n), (unflushed, _)) => unflushed >= n,
                    _ => false,
                }
            };
            if due {
                let end = entry.log.lock().unwrap().log_end_offset();
                let report = self.report_flush_error(tp);
                self.request_flush(&entry, end, report);
            }
        }
    }

    /// Closes the files of the least recently used logs until a tenth of the budget is
    /// free again.
    fn close_idle_logs(&self) {
        let target = self.config.max_open_logs - self.config.max_open_logs / 10;
        let mut open: Vec<_> = self
            .logs
            .read()
            .unwrap()
            .values()
            .filter(|e| e.counted_open.load(Ordering::Relaxed))
            .map(|e| (e.last_used.load(Ordering::Relaxed), e.clone()))
            .collect();
        open.sort_by_key(|(t, _)| *t);
        let excess = open.len().saturating_sub(target);
        for (_, entry) in open.into_iter().take(excess) {
            let Ok(mut log) = entry.log.try_lock() else {
                continue;
            };
            log.release_handles();
            if entry.counted_open.swap(false, Ordering::Relaxed) {
                self.open_logs.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// How many logs hold open files right now.
    pub fn open_log_count(&self) -> usize {
        self.open_logs.load(Ordering::Relaxed)
    }

    /// Clean shutdown: stops the background threads and closes every log (fsync, trim,
    /// clean checkpoint).
    pub fn close(&self) -> Result<()> {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        if let Some(t) = self.background.lock().unwrap().take() {
            let _ = t.join();
        }
        self.group_commit.shutdown();
        let mut first_error = None;
        for entry in self.logs.read().unwrap().values() {
            if let Err(e) = entry.log.lock().unwrap().close() {
                tracing::error!(error = %e, "closing log failed");
                first_error.get_or_insert(e);
            }
        }
        self.deleter.shutdown();
        first_error.map_or(Ok(()), Err)
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }
}

use strom_batch::now_ms;

/// Wakes every 100 ms for interval flushes, and every `retention_check_interval` for
/// retention, until the manager closes or is dropped.
fn background_loop(manager: std::sync::Weak<LogManager>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let tick = Duration::from_millis(100);
    let mut last_retention = std::time::Instant::now();
    loop {
        {
            let (lock, cv) = &*stop;
            let stopped = lock.lock().unwrap();
            let (stopped, _) = cv.wait_timeout(stopped, tick).unwrap();
            if *stopped {
                return;
            }
        }
        let Some(m) = manager.upgrade() else { return };
        m.flush_due_logs(now_ms());
        if last_retention.elapsed() >= m.config.retention_check_interval {
            last_retention = std::time::Instant::now();
            m.run_retention(now_ms());
        }
    }
}
