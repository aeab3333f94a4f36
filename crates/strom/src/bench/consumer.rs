//! One bench consumer: it fetches its share of the partitions from their leaders, one
//! Fetch at a time, checks every batch's CRC as a Kafka consumer does by default, and
//! counts the messages it reads in place (no copies). A message that carries a send
//! time from this run (see `producer::wall_micros`) gives an end-to-end latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use strom_batch::BatchIter;
use strom_client::{
    Client, ClientError, FetchOptions, FetchedBatches, for_each_record, is_retriable_code,
};
use strom_wire::ErrorCode;

use super::args::Workload;
use super::producer::wall_micros;
use super::stats::Stats;

/// When a consumer stops.
pub(super) struct Plan {
    /// Partition → next offset to read.
    pub positions: BTreeMap<i32, i64>,
    /// Partition → offset at which this consumer has read everything it should
    /// (replaying existing data); `None` while producers are writing.
    pub end: Option<BTreeMap<i32, i64>>,
    /// Messages to read in total over all consumers.
    pub count: Option<u64>,
    pub deadline: Option<Instant>,
    /// Messages with a send time before this (µs since the epoch) are not from this run.
    pub run_started_us: u64,
}

/// After the producers finish, how long consumers may take to read what they wrote.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(
    client: Client,
    work: Arc<Workload>,
    stats: Arc<Stats>,
    mut plan: Plan,
) -> anyhow::Result<()> {
    let topic = work.args.topic.as_str();
    let opts = FetchOptions {
        max_wait: Duration::from_millis(100),
        min_bytes: 1,
        partition_max_bytes: work.args.fetch_size.min(i32::MAX as u64) as i32,
    };
    let mut drain_deadline = None;
    let mut e2e = Vec::new();
    // One fetch is always in flight while the previous answer is read: the next
    // positions come from the batch headers alone, before the records are checked.
    let mut next = spawn_fetch(&client, topic, &plan.positions, opts);
    loop {
        if finished(&plan, &stats, &work, &mut drain_deadline) {
            next.abort();
            return Ok(());
        }
        let answer = (&mut next).await.context("fetch task")?;
        let fetched = match answer {
            Ok(f) => f,
            Err(e) if e.is_retriable() => {
                next = spawn_fetch(&client, topic, &plan.positions, opts);
                continue;
            }
            Err(e) => return Err(e).context("fetch"),
        };
        for part in &fetched {
            if part.error_code == ErrorCode::OffsetOutOfRange.code() {
                plan.positions.insert(part.partition, part.log_start_offset);
            } else if part.error_code == 0
                && let Some(after) = end_of_whole_batches(&part.batches)
            {
                plan.positions.insert(part.partition, after);
            }
        }
        next = spawn_fetch(&client, topic, &plan.positions, opts);
        let at = Instant::now();
        let now_us = wall_micros();
        let (mut messages, mut bytes) = (0u64, 0u64);
        e2e.clear();
        for part in fetched {
            if part.error_code == ErrorCode::OffsetOutOfRange.code()
                || is_retriable_code(part.error_code)
            {
                continue;
            }
            ClientError::check(part.error_code, None, || {
                format!("fetch {topic}/{}", part.partition)
            })?;
            let read = read_batches(
                &part.batches,
                part.fetch_offset,
                plan.run_started_us,
                now_us,
                &mut e2e,
            )
            .with_context(|| format!("records of {topic}/{}", part.partition))?;
            messages += read.messages;
            bytes += read.bytes;
        }
        stats.record_consumed(at, messages, bytes, &e2e);
    }
}

type FetchTask = tokio::task::JoinHandle<Result<Vec<FetchedBatches>, ClientError>>;

/// Starts a fetch of `positions` (partition → next offset).
fn spawn_fetch(
    client: &Client,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    opts: FetchOptions,
) -> FetchTask {
    let client = client.clone();
    let topic = topic.to_owned();
    let positions: Vec<(i32, i64)> = positions.iter().map(|(p, o)| (*p, *o)).collect();
    tokio::spawn(async move { client.fetch_raw(&topic, &positions, opts).await })
}

/// The offset after the last whole batch in `buf`, from the headers alone (the CRCs
/// are checked when the records are read; a batch cut off at the end is not whole).
fn end_of_whole_batches(buf: &[u8]) -> Option<i64> {
    BatchIter::new(buf)
        .map_while(Result::ok)
        .last()
        .map(|(h, _)| h.last_offset() + 1)
}

fn finished(
    plan: &Plan,
    stats: &Stats,
    work: &Workload,
    drain_deadline: &mut Option<Instant>,
) -> bool {
    let now = Instant::now();
    let (consumed, _) = stats.consumed.get();
    if plan.count.is_some_and(|c| consumed >= c) || plan.deadline.is_some_and(|d| now >= d) {
        return true;
    }
    if let Some(end) = &plan.end {
        return end
            .iter()
            .all(|(p, e)| plan.positions.get(p).is_some_and(|o| o >= e));
    }
    if work.args.producers > 0 && stats.producers_done.load(Ordering::Relaxed) {
        let (acked, _) = stats.acked.get();
        let deadline = *drain_deadline.get_or_insert(now + DRAIN_TIMEOUT);
        return consumed >= acked || now >= deadline;
    }
    false
}

/// What one partition's fetched bytes held.
#[derive(Debug, Default, PartialEq, Eq)]
struct Read {
    messages: u64,
    /// Key and value bytes.
    bytes: u64,
}

/// Counts the records of `buf` (a fetched partition's records) at or after `from`.
/// Messages whose first 8 bytes hold a send time at or after `run_started_us` add their
/// latency to `e2e`.
fn read_batches(
    buf: &[u8],
    from: i64,
    run_started_us: u64,
    now_us: u64,
    e2e: &mut Vec<u64>,
) -> anyhow::Result<Read> {
    let mut read = Read::default();
    for_each_record(buf, from, |r| {
        read.messages += 1;
        let value = r.value.unwrap_or_default();
        read.bytes += (r.key.map_or(0, <[u8]>::len) + value.len()) as u64;
        if let Some(stamp) = value.get(..8) {
            let sent = u64::from_le_bytes(stamp.try_into().expect("8 bytes"));
            if sent >= run_started_us && sent <= now_us {
                e2e.push(now_us - sent);
            }
        }
    })?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_batch::{RecordBatchBuilder, RecordBatchHeader};

    #[test]
    fn batches_are_counted_from_the_fetch_offset_and_a_cut_batch_waits() {
        let sent = 1_000_000u64;
        let mut value = sent.to_le_bytes().to_vec();
        value.extend_from_slice(&[b'x'; 24]);
        let mut b = RecordBatchBuilder::new();
        for _ in 0..3 {
            b.push(1, None, Some(&value), &[]);
        }
        let mut buf = b.build();
        let mut second = b.build();
        RecordBatchHeader::stamp_base_offset(&mut second, 3);
        buf.extend_from_slice(&second[..70]);
        let mut e2e = Vec::new();
        let read = read_batches(&buf, 1, sent, sent + 2_500, &mut e2e).unwrap();
        assert_eq!(
            read,
            Read {
                messages: 2,
                bytes: 64
            }
        );
        assert_eq!(end_of_whole_batches(&buf), Some(3));
        assert_eq!(e2e, vec![2_500, 2_500]);
        // Sent before the run: no latency.
        e2e.clear();
        read_batches(&buf, 0, sent + 1, sent + 2_500, &mut e2e).unwrap();
        assert!(e2e.is_empty());
    }
}
