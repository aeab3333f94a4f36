//! One bench producer: it makes messages (at a fixed rate or as fast as it may),
//! spreads them over the topic's partitions in turn (each message to the next
//! partition, or with the sticky partitioner each batch), collects them into one batch per
//! partition, and sends the batches that are full or have waited `linger` in Produce
//! requests of at most `max_request_size`, with at most `max_in_flight` requests
//! unanswered, as a Kafka producer does.
//!
//! Every message's latency is counted from the moment it was made, or, with a rate,
//! from the moment it was due, so a stalled broker shows as latency instead of as
//! fewer messages sent (no coordinated omission).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strom_batch::RecordBatchBuilder;
use strom_client::{Client, Codec, ProduceOptions, compress, now_ms};
use tokio::task::JoinSet;

use super::args::Workload;
use super::stats::Stats;

/// Messages made at most before the producer looks for batches to send.
const MAKE_CHUNK: u64 = 1024;

/// Microseconds since the Unix epoch: the send time a message carries in its first 8
/// bytes, so a consumer (in this process or another) can tell its end-to-end latency.
pub(super) fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The batch a partition is filling.
#[derive(Default)]
struct Open {
    builder: Option<RecordBatchBuilder>,
    /// When each message in it was made (or due).
    born: Vec<Instant>,
    /// Bumped whenever the batch is taken, so stale queue entries are recognized.
    generation: u64,
}

/// The time, read once for a chunk of messages.
struct Clock {
    now: Instant,
    /// Microseconds since the Unix epoch at `now`.
    wall_us: u64,
    /// Milliseconds since the Unix epoch at `now`: the records' timestamp.
    ms: i64,
}

/// A batch taken from its partition: (partition index, records, when each was made).
type Taken = (usize, RecordBatchBuilder, Vec<Instant>);

/// What this producer must do.
pub(super) struct Plan {
    pub index: usize,
    pub partitions: Vec<i32>,
    /// Messages to make at most.
    pub quota: Option<u64>,
    /// Messages per second for this producer.
    pub rate: Option<f64>,
    /// Stop making messages at this instant.
    pub deadline: Option<Instant>,
}

struct Producer {
    client: Client,
    work: Arc<Workload>,
    stats: Arc<Stats>,
    topic: Arc<str>,
    payload: Vec<u8>,
    /// The partitions written to, and the batch each is filling.
    partitions: Vec<i32>,
    open: Vec<Open>,
    /// Partitions (as indexes into `open`) in the order their batches were started.
    started: VecDeque<(usize, u64)>,
    /// Batches that are full, taken from their partitions, in the order they filled.
    full: VecDeque<Taken>,
    in_flight: JoinSet<()>,
    /// Bytes in open batches and unanswered requests.
    buffered: Arc<std::sync::atomic::AtomicU64>,
    next_partition: usize,
    /// With the sticky partitioner: the partition being filled and its batch's generation.
    stuck: Option<(usize, u64)>,
    sticky: bool,
    opts: ProduceOptions,
    /// Bytes a new batch reserves: a whole batch, unless the partitions' batches
    /// together would then exceed the buffer memory.
    batch_capacity: usize,
}

pub(super) async fn run(client: Client, work: Arc<Workload>, stats: Arc<Stats>, plan: Plan) {
    let n = plan.partitions.len();
    let mut p = Producer {
        client,
        topic: Arc::from(work.args.topic.as_str()),
        payload: payload(work.args.message_size as usize, plan.index),
        open: (0..n).map(|_| Open::default()).collect(),
        partitions: plan.partitions.clone(),
        started: VecDeque::new(),
        full: VecDeque::new(),
        in_flight: JoinSet::new(),
        buffered: Arc::default(),
        // Producers start at different partitions so they do not move in step.
        next_partition: plan.index * n / work.args.producers.max(1) % n.max(1),
        stuck: None,
        sticky: work.sticky,
        batch_capacity: work
            .args
            .batch_size
            .min(work.args.buffer_memory / n.max(1) as u64) as usize,
        opts: ProduceOptions {
            acks: work.acks,
            codec: work.codec,
            timeout: Duration::from_secs(30),
        },
        work,
        stats,
    };
    p.produce(&plan).await;
}

/// A message value: uppercase letters (compressible like text, as Kafka's own
/// producer benchmark uses), different per producer.
fn payload(size: usize, seed: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64 + 1);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

impl Producer {
    async fn produce(&mut self, plan: &Plan) {
        let start = Instant::now();
        let mut made: u64 = 0;
        let linger = Duration::from_millis(self.work.args.linger_ms);
        loop {
            let now = Instant::now();
            let done =
                plan.quota.is_some_and(|q| made >= q) || plan.deadline.is_some_and(|d| now >= d);
            if done {
                break;
            }
            // How many messages are due now, and when the next one is.
            let left = plan.quota.map_or(u64::MAX, |q| q - made);
            let (due, next_due) = match plan.rate {
                Some(rate) => {
                    let should = (now.duration_since(start).as_secs_f64() * rate) as u64 + 1;
                    let due = should.saturating_sub(made).min(left).min(MAKE_CHUNK);
                    let next = start + Duration::from_secs_f64((made + due) as f64 / rate);
                    (due, Some(next))
                }
                None => (left.min(MAKE_CHUNK), None),
            };
            let room = self.buffered.load(std::sync::atomic::Ordering::Relaxed)
                < self.work.args.buffer_memory;
            if due > 0 && room {
                // The clocks are read once per chunk, not per message.
                let clock = Clock {
                    now,
                    wall_us: wall_micros(),
                    ms: now_ms(),
                };
                for k in 0..due {
                    let born = match plan.rate {
                        Some(rate) => start + Duration::from_secs_f64((made + k) as f64 / rate),
                        None => now,
                    };
                    self.add_message(born, &clock);
                }
                made += due;
            }
            self.send_ready(Instant::now(), linger, false);
            if due > 0 && room && plan.rate.is_none() {
                tokio::task::yield_now().await;
                continue;
            }
            // Wait for whatever comes first: an answer, a message falling due, a batch's
            // linger running out, the deadline.
            // A batch past its linger waits for a free request slot, not for a timer.
            let slot_free = self.in_flight.len() < self.work.args.max_in_flight;
            let linger_end = if slot_free {
                self.oldest_linger_end(linger)
            } else {
                None
            };
            let mut wake = [next_due, linger_end, plan.deadline]
                .into_iter()
                .flatten()
                .min();
            if !room && self.in_flight.is_empty() {
                // Nothing in flight frees memory: open batches must go out.
                self.send_ready(Instant::now(), linger, true);
                wake = None;
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.in_flight.join_next(), if !self.in_flight.is_empty() => {}
                () = sleep, if wake.is_some() => {}
                else => {}
            }
        }
        // Flush: every open batch goes, then every answer is awaited.
        loop {
            self.send_ready(Instant::now(), linger, true);
            if self.in_flight.join_next().await.is_none() {
                break;
            }
        }
    }

    /// Adds one message, made at `born`, to the next partition's batch.
    fn add_message(&mut self, born: Instant, clock: &Clock) {
        let i = self.pick_partition();
        if self.payload.len() >= 8 {
            let waited = clock.now.saturating_duration_since(born).as_micros() as u64;
            let sent = clock.wall_us.saturating_sub(waited);
            self.payload[..8].copy_from_slice(&sent.to_le_bytes());
        }
        let size = self.payload.len() as u64;
        let batch_size = self.work.args.batch_size as usize;
        let capacity = self.batch_capacity;
        let o = &mut self.open[i];
        let b = o.builder.get_or_insert_with(|| {
            self.started.push_back((i, o.generation));
            RecordBatchBuilder::with_capacity(capacity)
        });
        b.push(clock.ms, None, Some(&self.payload), &[]);
        o.born.push(born);
        let full = b.size() + self.payload.len() + 16 > batch_size;
        self.buffered
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        if full {
            let generation = o.generation;
            let taken = self.take(i, generation).expect("the batch just filled");
            self.full.push_back(taken);
        }
    }

    /// The partition of the next message. Round-robin: the next one for every message.
    /// Sticky (Kafka's default for keyless messages): the same one until its batch is
    /// sent (full or lingered), then the next.
    fn pick_partition(&mut self) -> usize {
        if let Some((i, generation)) = self.stuck
            && self.open[i].generation == generation
        {
            return i;
        }
        let i = self.next_partition;
        self.next_partition = (i + 1) % self.open.len();
        if self.sticky {
            self.stuck = Some((i, self.open[i].generation));
        }
        i
    }

    /// When the oldest open batch has waited `linger`.
    fn oldest_linger_end(&mut self, linger: Duration) -> Option<Instant> {
        while let Some(&(i, generation)) = self.started.front() {
            let o = &self.open[i];
            if o.generation == generation && o.builder.is_some() {
                return o.born.first().map(|b| *b + linger);
            }
            self.started.pop_front();
        }
        None
    }

    /// Takes partition `i`'s batch if `generation` is still the open one.
    fn take(
        &mut self,
        i: usize,
        generation: u64,
    ) -> Option<(usize, RecordBatchBuilder, Vec<Instant>)> {
        let o = &mut self.open[i];
        if o.generation != generation {
            return None;
        }
        let b = o.builder.take()?;
        o.generation += 1;
        Some((i, b, std::mem::take(&mut o.born)))
    }

    /// Sends requests while there is room in flight: full batches first, then those
    /// that have waited `linger` (every open batch when `flush`).
    fn send_ready(&mut self, now: Instant, linger: Duration, flush: bool) {
        let max_request = self.work.args.max_request_size as usize;
        while self.in_flight.len() < self.work.args.max_in_flight {
            let mut request: Vec<Taken> = Vec::new();
            let mut bytes = 0;
            // One batch per partition per request, as in Kafka: a second one waits.
            let mut in_request = std::collections::HashSet::new();
            while bytes < max_request {
                let next = if let Some(taken) = self.full.pop_front() {
                    if in_request.contains(&taken.0) {
                        self.full.push_front(taken);
                        break;
                    }
                    Some(taken)
                } else {
                    let Some(end) = self.oldest_linger_end(linger) else {
                        break;
                    };
                    let &(i, g) = self.started.front().expect("an open batch");
                    if (!flush && end > now) || in_request.contains(&i) {
                        break;
                    }
                    self.started.pop_front();
                    self.take(i, g)
                };
                if let Some((i, b, born)) = next {
                    bytes += b.size();
                    in_request.insert(i);
                    request.push((i, b, born));
                }
            }
            if request.is_empty() {
                return;
            }
            self.spawn_request(request);
        }
    }

    fn spawn_request(&mut self, request: Vec<Taken>) {
        let client = self.client.clone();
        let stats = self.stats.clone();
        let topic = self.topic.clone();
        let opts = self.opts;
        let buffered = self.buffered.clone();
        let size = self.payload.len() as u64;
        let partition_ids: Vec<i32> = request
            .iter()
            .map(|(i, _, _)| self.partitions[*i])
            .collect();
        self.in_flight.spawn(async move {
            // Encoding (CRC-32C, compression) runs here, beside the producer's loop.
            let mut born = std::collections::HashMap::new();
            let mut batches = Vec::with_capacity(request.len());
            for ((_, b, times), &partition) in request.into_iter().zip(&partition_ids) {
                let encoded = match opts.codec {
                    Codec::None => Ok(b.finish()),
                    codec => compress(codec, b.records_bytes())
                        .map(|c| b.build_compressed(codec.compression(), &c)),
                };
                match encoded {
                    Ok(bytes) => {
                        batches.push((partition, Bytes::from(bytes)));
                        born.insert(partition, times);
                    }
                    Err(e) => {
                        let n = times.len() as u64;
                        stats.record_failed(n, n * size, e.to_string());
                    }
                }
            }
            let results = client.produce_batches(&topic, batches, opts).await;
            let at = Instant::now();
            for (partition, result) in results {
                let times = born.remove(&partition).unwrap_or_default();
                let n = times.len() as u64;
                buffered.fetch_sub(n * size, std::sync::atomic::Ordering::Relaxed);
                match result {
                    Ok(_) => {
                        let lat: Vec<u64> = times
                            .iter()
                            .map(|b| at.saturating_duration_since(*b).as_micros() as u64)
                            .collect();
                        stats.record_acked(at, n * size, &lat);
                    }
                    Err(e) => stats.record_failed(n, n * size, error_kind(&e)),
                }
            }
            for times in born.into_values() {
                let n = times.len() as u64;
                buffered.fetch_sub(n * size, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
}

/// A failure reason without the partition, so equal failures are counted together.
fn error_kind(e: &strom_client::ClientError) -> String {
    match e.kafka_code() {
        Some(code) => strom_client::error_name(code),
        None => e.to_string(),
    }
}
