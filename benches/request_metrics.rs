//! What the metrics cost a request: the accounting every request pays (`Metrics::start`
//! and `finish`: a counter and a histogram, relaxed atomics), the per-topic byte count
//! a Produce partition or Fetch answer pays (a read lock and a map lookup), and the
//! debug-level request span at the default `info` level (disabled: a callsite check).
//! Compare with a request's own cost: a small Produce is handled in tens of
//! microseconds (see docs/perf.md), so a few tens of nanoseconds are noise.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use strom_broker::metrics::{Metrics, Outcome};

fn request_accounting(c: &mut Criterion) {
    let metrics = Arc::new(Metrics::new());
    let mut g = c.benchmark_group("request_metrics");
    g.bench_function("start_finish", |b| {
        b.iter(|| {
            let t = metrics.start(black_box(0), Instant::now()).unwrap();
            black_box(metrics.finish(t, Outcome::Code(0)))
        })
    });
    g.bench_function("bytes_in_known_topic", |b| {
        metrics.bytes_in("events", 1);
        b.iter(|| metrics.bytes_in(black_box("events"), black_box(1024)))
    });
    // Two threads hammering the same counters: the contended case of a busy broker.
    g.bench_function("start_finish_contended", |b| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = {
            let (m, stop) = (metrics.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = m.start(0, Instant::now()).unwrap();
                    m.finish(t, Outcome::Code(0));
                    m.bytes_in("events", 1024);
                }
            })
        };
        b.iter(|| {
            let t = metrics.start(black_box(0), Instant::now()).unwrap();
            metrics.bytes_in(black_box("events"), black_box(1024));
            black_box(metrics.finish(t, Outcome::Code(0)))
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        other.join().unwrap();
    });
    g.bench_function("disabled_debug_span", |b| {
        // No subscriber here: like the default `info` filter, debug spans are off.
        b.iter(|| {
            let span = tracing::debug_span!(
                "request",
                api = black_box("Produce"),
                api_version = 9,
                correlation_id = 7,
                client_id = black_box("client"),
            );
            black_box(span)
        })
    });
    g.finish();
}

criterion_group!(benches, request_accounting);
criterion_main!(benches);
