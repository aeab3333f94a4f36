//! What a bench run counts while it runs: messages and bytes acknowledged, failed and
//! consumed, and two latency histograms (produce acknowledgement, end-to-end delivery),
//! each kept for the whole run and for the interval the progress line shows.
//!
//! Latencies are recorded in microseconds in HDR histograms (3 significant digits, up to
//! an hour), so percentiles are exact to 0.1% whatever the spread.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The longest latency a histogram holds exactly (larger ones are clamped to it).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram for the run and one for the current progress interval.
#[derive(Debug)]
pub(super) struct Latency {
    run: Histogram<u64>,
    interval: Histogram<u64>,
}

impl Latency {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds");
        Latency {
            run: h(),
            interval: h(),
        }
    }

    fn record(&mut self, us: u64) {
        let us = us.clamp(1, MAX_LATENCY_US);
        self.run.saturating_record(us);
        self.interval.saturating_record(us);
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }

    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "p50": self.p50,
            "p99": self.p99,
            "p99_9": self.p999,
            "max": self.max,
            "mean": self.mean,
        })
    }
}

/// Counters of one direction (produce or consume).
#[derive(Debug, Default)]
pub(super) struct Counter {
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Counts at the end of the warm-up, subtracted from the totals.
    base_messages: AtomicU64,
    base_bytes: AtomicU64,
}

impl Counter {
    pub(super) fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// (messages, bytes) since the measurement began.
    pub(super) fn get(&self) -> (u64, u64) {
        (
            self.messages.load(Ordering::Relaxed) - self.base_messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed) - self.base_bytes.load(Ordering::Relaxed),
        )
    }

    fn rebase(&self) {
        self.base_messages
            .store(self.messages.load(Ordering::Relaxed), Ordering::Relaxed);
        self.base_bytes
            .store(self.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Everything the producers and consumers of one run report into.
#[derive(Debug)]
pub(super) struct Stats {
    /// When the run started; every instant below is kept relative to it.
    epoch: Instant,
    /// When the measurement began (the end of the warm-up), nanoseconds after `epoch`.
    measure_from: AtomicU64,
    /// Latest acknowledgement and latest consumed message, nanoseconds after `epoch`.
    last_ack: AtomicU64,
    last_consumed: AtomicU64,
    /// First consumed message, nanoseconds after `epoch` (u64::MAX until then).
    first_consumed: AtomicU64,
    pub acked: Counter,
    pub failed: Counter,
    pub consumed: Counter,
    ack_latency: Mutex<Latency>,
    e2e_latency: Mutex<Latency>,
    /// Distinct failure reasons and how many messages each failed.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Set when every producer finished (all its batches answered).
    pub producers_done: AtomicBool,
}

impl Stats {
    pub(super) fn new() -> Self {
        Stats {
            epoch: Instant::now(),
            measure_from: AtomicU64::new(0),
            last_ack: AtomicU64::new(0),
            last_consumed: AtomicU64::new(0),
            first_consumed: AtomicU64::new(u64::MAX),
            acked: Counter::default(),
            failed: Counter::default(),
            consumed: Counter::default(),
            ack_latency: Mutex::new(Latency::new()),
            e2e_latency: Mutex::new(Latency::new()),
            errors: Mutex::new(BTreeMap::new()),
            producers_done: AtomicBool::new(false),
        }
    }

    fn since_epoch(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Ends the warm-up: counts and latencies so far are dropped from the results.
    pub(super) fn begin_measurement(&self) {
        self.measure_from
            .store(self.since_epoch(Instant::now()), Ordering::Relaxed);
        for c in [&self.acked, &self.failed, &self.consumed] {
            c.rebase();
        }
        for l in [&self.ack_latency, &self.e2e_latency] {
            let mut l = l.lock().unwrap();
            l.run.reset();
            l.interval.reset();
        }
        self.first_consumed.store(u64::MAX, Ordering::Relaxed);
    }

    /// Batches answered at `at`: `latencies` holds each message's wait in microseconds.
    pub(super) fn record_acked(&self, at: Instant, bytes: u64, latencies: &[u64]) {
        self.acked.add(latencies.len() as u64, bytes);
        self.last_ack
            .fetch_max(self.since_epoch(at), Ordering::Relaxed);
        let mut l = self.ack_latency.lock().unwrap();
        for &us in latencies {
            l.record(us);
        }
    }

    pub(super) fn record_failed(&self, messages: u64, bytes: u64, reason: String) {
        self.failed.add(messages, bytes);
        *self.errors.lock().unwrap().entry(reason).or_default() += messages;
    }

    /// Messages consumed at `at`; `e2e` holds the end-to-end latency (µs) of those that
    /// carried a send time from this run.
    pub(super) fn record_consumed(&self, at: Instant, messages: u64, bytes: u64, e2e: &[u64]) {
        if messages == 0 {
            return;
        }
        let t = self.since_epoch(at);
        self.consumed.add(messages, bytes);
        self.first_consumed.fetch_min(t, Ordering::Relaxed);
        self.last_consumed.fetch_max(t, Ordering::Relaxed);
        if !e2e.is_empty() {
            let mut l = self.e2e_latency.lock().unwrap();
            for &us in e2e {
                l.record(us);
            }
        }
    }

    /// The measured produce window: from the start of the measurement to the last answer.
    pub(super) fn produce_window(&self) -> Duration {
        let from = self.measure_from.load(Ordering::Relaxed);
        Duration::from_nanos(self.last_ack.load(Ordering::Relaxed).saturating_sub(from))
    }

    /// The measured consume window: from the later of the start of the measurement and
    /// the first message consumed (a consumer that waits for producers does not count
    /// its wait), to the last message consumed.
    pub(super) fn consume_window(&self) -> Duration {
        let from = self.measure_from.load(Ordering::Relaxed);
        let first = self.first_consumed.load(Ordering::Relaxed);
        let start = if first == u64::MAX {
            from
        } else {
            from.max(first)
        };
        Duration::from_nanos(
            self.last_consumed
                .load(Ordering::Relaxed)
                .saturating_sub(start),
        )
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(super) fn ack_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.ack_latency.lock().unwrap().run)
    }

    pub(super) fn e2e_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.e2e_latency.lock().unwrap().run)
    }

    /// p99 of acknowledgement and end-to-end latency since the last call, in ms.
    pub(super) fn take_interval_p99(&self) -> (Option<f64>, Option<f64>) {
        let take = |l: &Mutex<Latency>| {
            let mut l = l.lock().unwrap();
            let p = (!l.interval.is_empty())
                .then(|| l.interval.value_at_quantile(0.99) as f64 / 1000.0);
            l.interval.reset();
            p
        };
        (take(&self.ack_latency), take(&self.e2e_latency))
    }

    pub(super) fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_recorded_latencies() {
        let s = Stats::new();
        let now = Instant::now();
        let lat: Vec<u64> = (1..=1000).collect();
        s.record_acked(now, 1000 * 10, &lat);
        let p = s.ack_percentiles();
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.5).abs() < 0.002, "{p:?}");
        assert!((p.p99 - 0.99).abs() < 0.002, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.002, "{p:?}");
        assert_eq!(s.acked.get(), (1000, 10_000));
        let (ack, e2e) = s.take_interval_p99();
        assert!(ack.is_some() && e2e.is_none());
        assert_eq!(s.take_interval_p99(), (None, None));
    }

    #[test]
    fn the_warm_up_is_not_counted() {
        let s = Stats::new();
        s.record_acked(Instant::now(), 100, &[5_000]);
        s.record_consumed(Instant::now(), 1, 100, &[7_000]);
        s.begin_measurement();
        assert_eq!(s.acked.get(), (0, 0));
        assert_eq!(s.consumed.get(), (0, 0));
        assert_eq!(s.ack_percentiles().count, 0);
        s.record_acked(Instant::now(), 100, &[1_000]);
        assert_eq!(s.acked.get(), (1, 100));
        assert!((s.ack_percentiles().max - 1.0).abs() < 0.01);
    }
}
