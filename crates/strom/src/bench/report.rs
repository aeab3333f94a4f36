//! The progress line (once a second on stderr, when it is a terminal or --progress is
//! given) and the summary of a run, as text or one JSON object.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::args::Workload;
use super::stats::{Percentiles, Stats};
use crate::cli::print_json;

/// The running progress line; `finish` stops it and ends the line.
pub(super) struct Progress {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    pub(super) async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub(super) fn spawn_progress(stats: Arc<Stats>, work: Arc<Workload>) -> Progress {
    let tty = std::io::stderr().is_terminal();
    if !(tty || work.args.progress) {
        return Progress {
            stop: None,
            task: None,
        };
    }
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last = (0u64, 0u64, 0u64);
        let mut shown = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stopped => break,
            }
            let (acked, acked_bytes) = stats.acked.get();
            let (consumed, _) = stats.consumed.get();
            let (ack_p99, e2e_p99) = stats.take_interval_p99();
            if acked < last.0 || consumed < last.2 {
                // The warm-up ended: the totals started again from zero.
                last = (0, 0, 0);
            }
            let line = progress_line(
                stats.elapsed(),
                acked - last.0,
                acked_bytes.saturating_sub(last.1),
                consumed - last.2,
                acked,
                consumed,
                ack_p99,
                e2e_p99,
            );
            last = (acked, acked_bytes, consumed);
            let mut err = std::io::stderr().lock();
            if tty {
                let _ = write!(err, "\r\x1b[K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
            shown = true;
        }
        if tty && shown {
            eprintln!();
        }
    });
    Progress {
        stop: Some(stop),
        task: Some(task),
    }
}

/// One second's figures: rates over the last second, totals, and the last second's
/// p99 latencies.
#[allow(clippy::too_many_arguments)]
fn progress_line(
    elapsed: Duration,
    acked_1s: u64,
    acked_bytes_1s: u64,
    consumed_1s: u64,
    acked: u64,
    consumed: u64,
    ack_p99: Option<f64>,
    e2e_p99: Option<f64>,
) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
    format!(
        "{:>5.0}s  acked {acked_1s:>8} msg/s {:>8.1} MB/s  p99 {}  | consumed {consumed_1s:>8} msg/s  e2e p99 {}  | total acked {acked} consumed {consumed}",
        elapsed.as_secs_f64(),
        acked_bytes_1s as f64 / 1e6,
        ms(ack_p99),
        ms(e2e_p99),
    )
}

/// Throughput of `messages`/`bytes` over `window`.
fn rates(messages: u64, bytes: u64, window: Duration) -> (f64, f64) {
    let secs = window.as_secs_f64();
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    (messages as f64 / secs, bytes as f64 / 1e6 / secs)
}

pub(super) fn summary(work: &Workload, partitions: usize, stats: &Stats) {
    let a = &work.args;
    let (acked, acked_bytes) = stats.acked.get();
    let (failed, _) = stats.failed.get();
    let (consumed, consumed_bytes) = stats.consumed.get();
    let pw = stats.produce_window();
    let cw = stats.consume_window();
    let (p_msgs, p_mb) = rates(acked, acked_bytes, pw);
    let (c_msgs, c_mb) = rates(consumed, consumed_bytes, cw);
    let ack = stats.ack_percentiles();
    let e2e = stats.e2e_percentiles();
    let errors = stats.errors();
    if a.common.json() {
        print_json(&json!({
            "workload": {
                "topic": a.topic,
                "partitions": partitions,
                "producers": a.producers,
                "consumers": a.consumers,
                "message_size": a.message_size,
                "acks": a.acks,
                "partitioner": a.partitioner,
                "batch_size": a.batch_size,
                "linger_ms": a.linger_ms,
                "max_in_flight": a.max_in_flight,
                "compression": a.compression,
                "rate": a.rate,
                "count": a.count,
                "duration_s": a.duration.as_secs_f64(),
                "warmup_s": a.warmup.as_secs_f64(),
            },
            "produce": {
                "messages": acked,
                "bytes": acked_bytes,
                "failed": failed,
                "errors": errors,
                "seconds": pw.as_secs_f64(),
                "msgs_per_sec": p_msgs,
                "mb_per_sec": p_mb,
                "latency_ms": ack.json(),
            },
            "consume": {
                "messages": consumed,
                "bytes": consumed_bytes,
                "seconds": cw.as_secs_f64(),
                "msgs_per_sec": c_msgs,
                "mb_per_sec": c_mb,
                "end_to_end_latency_ms": e2e.json(),
            },
        }));
        return;
    }
    println!(
        "strom bench: topic {}, {partitions} partition(s), {} producer(s), {} consumer(s), {}-byte messages, acks={}, batch {} B, linger {} ms, compression {}",
        a.topic,
        a.producers,
        a.consumers,
        a.message_size,
        a.acks,
        a.batch_size,
        a.linger_ms,
        a.compression
    );
    if a.producers > 0 {
        println!(
            "produce  {acked} msgs in {:.2} s: {p_msgs:.0} msgs/s, {p_mb:.1} MB/s, {failed} failed",
            pw.as_secs_f64()
        );
        println!("  acknowledgement latency  {}", latency_text(&ack));
        for (reason, n) in &errors {
            println!("  failed: {n} messages: {reason}");
        }
    }
    if a.consumers > 0 {
        println!(
            "consume  {consumed} msgs in {:.2} s: {c_msgs:.0} msgs/s, {c_mb:.1} MB/s",
            cw.as_secs_f64()
        );
        if e2e.count > 0 {
            println!("  end-to-end latency       {}", latency_text(&e2e));
        }
    }
}

fn latency_text(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  mean {:.2} ms",
        p.p50, p.p99, p.p999, p.max, p.mean
    )
}
