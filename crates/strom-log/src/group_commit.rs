//! Group commit: appends ask for durability, and one coordinator thread makes all
//! waiting logs durable in rounds, running their fsyncs in parallel and outside the logs'
//! locks, so many partitions' appends share one fsync round and appends keep flowing
//! while a round is on disk.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::LogError;
use crate::log::PartitionLog;

/// Called once the log is durable up to at least the requested offset (with the
/// durable offset), or with the error that stopped it.
pub type DurableCallback = Box<dyn FnOnce(Result<i64, Arc<LogError>>) + Send>;

/// Told how long each log's fsyncs took in a group-commit round (the time of one
/// [`FlushPlan::execute`](crate::FlushPlan::execute)), for a latency histogram. Runs on
/// the fsync thread: it must be quick and must not block.
pub type FsyncObserver = Box<dyn Fn(Duration) + Send + Sync>;

type SharedLog = Arc<Mutex<PartitionLog>>;

/// The group-commit coordinator. Clones share it.
#[derive(Clone)]
pub struct GroupCommit {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// fsyncs run on up to this many threads in one round.
    parallelism: usize,
    /// Set at most once, by whoever keeps fsync metrics (the broker).
    observer: OnceLock<FsyncObserver>,
}

#[derive(Default)]
struct State {
    /// Waiters per log, keyed by the log's address.
    pending: HashMap<usize, (SharedLog, Vec<(i64, DurableCallback)>)>,
    shutdown: bool,
    rounds: u64,
}

impl GroupCommit {
    /// Starts the coordinator thread; `parallelism` bounds concurrent fsyncs in a round.
    pub fn start(parallelism: usize) -> GroupCommit {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            thread: Mutex::new(None),
            parallelism: parallelism.max(1),
            observer: OnceLock::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("strom-group-commit".into())
            .spawn(move || coordinator(&s))
            .expect("spawn group commit thread");
        *shared.thread.lock().unwrap() = Some(thread);
        GroupCommit { shared }
    }

    /// Asks for `log` to become durable up to `offset` (exclusive: every offset below it).
    pub fn request(&self, log: &SharedLog, offset: i64, done: DurableCallback) {
        let mut state = self.shared.state.lock().unwrap();
        if state.shutdown {
            drop(state);
            let result = log.lock().unwrap().flush().map_err(Arc::new);
            done(result);
            return;
        }
        let key = Arc::as_ptr(log) as usize;
        state
            .pending
            .entry(key)
            .or_insert_with(|| (log.clone(), Vec::new()))
            .1
            .push((offset, done));
        self.shared.wake.notify_one();
    }

    /// Blocks until `log` is durable up to `offset`.
    pub fn wait_durable(&self, log: &SharedLog, offset: i64) -> Result<i64, Arc<LogError>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.request(
            log,
            offset,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().expect("group commit answers every request")
    }

    /// Has `observer` told the duration of every log flush that group commit runs from
    /// now on. Only one observer can be set; `false` when one already was.
    pub fn observe_fsyncs(&self, observer: FsyncObserver) -> bool {
        self.shared.observer.set(observer).is_ok()
    }

    /// How many fsync rounds have run (for metrics and tests).
    pub fn rounds(&self) -> u64 {
        self.shared.state.lock().unwrap().rounds
    }

    /// Completes what is pending and stops the thread.
    pub fn shutdown(&self) {
        self.shared.state.lock().unwrap().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.shared.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

fn coordinator(shared: &Shared) {
    loop {
        let batch = {
            let mut state = shared.state.lock().unwrap();
            while state.pending.is_empty() && !state.shutdown {
                state = shared.wake.wait(state).unwrap();
            }
            if state.pending.is_empty() && state.shutdown {
                return;
            }
            state.rounds += 1;
            std::mem::take(&mut state.pending)
        };
        let leftovers = run_round(batch, shared.parallelism, shared.observer.get());
        if !leftovers.is_empty() {
            let mut state = shared.state.lock().unwrap();
            for (key, (log, waiters)) in leftovers {
                state
                    .pending
                    .entry(key)
                    .or_insert_with(|| (log, Vec::new()))
                    .1
                    .extend(waiters);
            }
        }
    }
}

/// Where a worker thread leaves the outcome of one plan's fsyncs.
type SyncSlot = Mutex<Option<Result<(), Arc<LogError>>>>;

type Pending = HashMap<usize, (SharedLog, Vec<(i64, DurableCallback)>)>;

/// Logs flushed at once within a round. Each plan holds its segment file open until it
/// is finished, so a round over 10,000 logs is run in parts: it would otherwise need
/// 10,000 descriptors at one moment, beyond a common open-file limit.
const LOGS_PER_PART: usize = 256;

/// One round, in parts of at most [`LOGS_PER_PART`] logs. Waiters whose offset the
/// round did not reach are handed back.
fn run_round(batch: Pending, parallelism: usize, observer: Option<&FsyncObserver>) -> Pending {
    let mut batch: Vec<_> = batch.into_iter().collect();
    let mut leftovers = Pending::new();
    while !batch.is_empty() {
        let rest = batch.split_off(batch.len().min(LOGS_PER_PART));
        leftovers.extend(run_part(batch, parallelism, observer));
        batch = rest;
    }
    leftovers
}

type Part = Vec<(usize, (SharedLog, Vec<(i64, DurableCallback)>))>;

/// Part of a round: plan under each log's lock, fsync without locks in parallel, then
/// finish and answer.
fn run_part(batch: Part, parallelism: usize, observer: Option<&FsyncObserver>) -> Pending {
    let mut work = Vec::with_capacity(batch.len());
    for (key, (log, waiters)) in batch {
        let plan = log.lock().unwrap().begin_flush().map_err(Arc::new);
        work.push((key, log, waiters, plan));
    }
    let plans: Vec<_> = work
        .iter()
        .map(|(_, _, _, p)| p.as_ref().ok().and_then(|p| p.as_ref()))
        .collect();
    let results: Vec<SyncSlot> = plans.iter().map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = parallelism
        .min(plans.iter().filter(|p| p.is_some()).count())
        .max(1);
    let worker = || {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= plans.len() {
                break;
            }
            if let Some(plan) = plans[i] {
                let started = Instant::now();
                let result = plan.execute().map_err(Arc::new);
                if let Some(observe) = observer {
                    observe(started.elapsed());
                }
                *results[i].lock().unwrap() = Some(result);
            }
        }
    };
    if threads == 1 {
        // Spawning a thread costs about as much as a fast fsync (~50 us on a small VM);
        // one worker runs right here.
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(worker);
            }
        });
    }
    let mut leftovers = Pending::new();
    for ((key, log, waiters, plan), result) in work.into_iter().zip(results) {
        let outcome: Result<i64, Arc<LogError>> = match (plan, result.into_inner().unwrap()) {
            (Err(e), _) => Err(e),
            (Ok(None), _) => Ok(log.lock().unwrap().durable_offset()),
            (Ok(Some(_)), Some(Err(e))) => {
                // Never retried: the log goes offline, so no later round can move its
                // durable offset past data this fsync may have lost.
                log.lock().unwrap().fail_flush(&e);
                Err(e)
            }
            (Ok(Some(plan)), _) => log.lock().unwrap().finish_flush(plan).map_err(Arc::new),
        };
        match outcome {
            Err(e) => waiters
                .into_iter()
                .for_each(|(_, done)| done(Err(e.clone()))),
            Ok(durable) => {
                let (start, end) = {
                    let l = log.lock().unwrap();
                    (l.log_start_offset(), l.log_end_offset())
                };
                let mut rest = Vec::new();
                for (offset, done) in waiters {
                    if offset <= durable {
                        done(Ok(durable));
                    } else if offset > end {
                        // Truncated away (or never appended): it can never become durable.
                        done(Err(Arc::new(LogError::OffsetOutOfRange {
                            requested: offset,
                            start,
                            end,
                        })));
                    } else {
                        rest.push((offset, done));
                    }
                }
                if !rest.is_empty() {
                    leftovers.insert(key, (log, rest));
                }
            }
        }
    }
    leftovers
}
