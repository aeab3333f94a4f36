//! A fixed-bucket latency histogram updated with two relaxed atomic additions, so the
//! request path can record into it from every connection without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (inclusive, in seconds) of the request latency buckets: 100 us to 10 s in
/// 1-2.5-5 steps, the range between a pipelined metadata answer and a stuck fsync.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the fsync latency buckets: 50 us (a fast NVMe) to 10 s.
pub const FSYNC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Upper bounds of the end-to-end delivery latency buckets: 1 ms to 10 minutes, since a
/// consumer that commits every few seconds adds its commit interval to what is measured.
pub const DELIVERY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Counts of observations per bucket (not cumulative: each observation increments exactly
/// one bucket, the last one being +Inf) and the sum of all observations.
#[derive(Debug)]
pub struct Histogram {
    /// Bucket upper bounds in seconds, for the exposition.
    bounds: &'static [f64],
    /// The same bounds in nanoseconds, for a comparison without floating point.
    bounds_ns: Box<[u64]>,
    /// One more than `bounds`: the last counts observations above every bound.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// A copy of a histogram's state, with cumulative bucket counts as the exposition wants.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations <= bound)`, ascending; +Inf not included.
    pub buckets: Vec<(f64, u64)>,
    /// All observations (the +Inf bucket).
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// `bounds` must be ascending.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            bounds_ns: bounds.iter().map(|b| (b * 1e9).round() as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // A linear scan: at most ~18 comparisons of integers in one cache line or two,
        // and the common (fast) cases stop early.
        let i = self
            .bounds_ns
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(self.bounds_ns.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far (cheap: no snapshot).
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The state now. Concurrent observations may make `sum` and the counts disagree by
    /// the few observations in flight; the counts themselves are always consistent
    /// (cumulative and ending in `count`).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(self.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(REQUEST_BUCKETS);
        h.observe(Duration::from_micros(100)); // on the first bound: inclusive
        h.observe(Duration::from_micros(101));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(11)); // above every bound: +Inf only
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.0001, 1));
        assert_eq!(s.buckets[1], (0.00025, 2));
        let at = |bound: f64| s.buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(at(0.0025), 2);
        assert_eq!(at(0.005), 3);
        assert_eq!(at(10.0), 3);
        assert!(
            (s.sum_seconds - 11.003201).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
        assert!(s.buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn bucket_tables_ascend() {
        for table in [REQUEST_BUCKETS, FSYNC_BUCKETS, DELIVERY_BUCKETS] {
            assert!(table.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(REQUEST_BUCKETS.first(), Some(&0.0001));
        assert_eq!(REQUEST_BUCKETS.last(), Some(&10.0));
    }
}
