//! The broker's metrics: what the request path, the connections and the storage record
//! (relaxed atomic counters and fixed-bucket histograms; finding a topic's byte counters
//! takes a read lock), and the scrape that turns
//! them, together with gauges read from the broker's state at that moment, into the
//! Prometheus text format. docs/metrics.md lists every metric; `http.rs` serves them.
//!
//! Nothing is stored twice: offsets, lag and open partitions are read from the logs and
//! the group coordinator when scraped, not mirrored here.

pub mod delivery;
pub mod exposition;
pub mod histogram;
pub mod outcome;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use strom_wire::kafka_protocol::messages::ApiKey;
use strom_wire::{ErrorCode, SUPPORTED_APIS};

use crate::fetch_out::FetchOut;
use delivery::Delivery;
use exposition::{Exposition, Kind};
use histogram::{FSYNC_BUCKETS, Histogram, REQUEST_BUCKETS};

/// How a request ended, for `strom_requests_total`'s `error` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (or, acks=0, accepted) with this error code (see `outcome.rs` for which
    /// code a response with many is counted under).
    Code(i16),
    /// The broker closed the connection instead of answering.
    Closed,
}

/// Why the broker closed or refused a client connection, for
/// `strom_connections_closed_total`'s `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request for `connections_max_idle_ms`.
    Idle,
    /// A request frame did not arrive whole within `request_read_timeout_ms`.
    RequestTimeout,
    /// The longest-idle connection, closed to admit a new one at `max_connections`.
    Evicted,
    /// Refused at accept: its address had `max_connections_per_ip` open.
    PerIpLimit,
}

impl Closed {
    const ALL: [Closed; 4] = [
        Closed::Idle,
        Closed::RequestTimeout,
        Closed::Evicted,
        Closed::PerIpLimit,
    ];

    fn label(self) -> &'static str {
        match self {
            Closed::Idle => "idle",
            Closed::RequestTimeout => "request_timeout",
            Closed::Evicted => "evicted",
            Closed::PerIpLimit => "per_ip_limit",
        }
    }
}

/// A request being handled: started by [`Metrics::start`], ended by
/// [`Metrics::finish`] once its answer is written.
#[derive(Debug)]
pub struct RequestTimer {
    /// Index into `Metrics::apis`.
    api: usize,
    started: Instant,
}

/// Label value of outcomes beyond the known error codes.
const OTHER_CODE: &str = "OTHER";
/// Label value of [`Outcome::Closed`].
const CLOSED: &str = "CONNECTION_CLOSED";

/// What a scrape reads from the broker's state at that moment, gathered by the broker
/// (`Broker::render_metrics`): metrics know nothing of where it comes from.
#[derive(Debug, Default)]
pub struct StateSnapshot {
    /// Every topic's name (traffic of deleted topics leaves the exposition).
    pub topics: Vec<String>,
    /// Partitions with a replica on this node, by topic name and partition.
    pub partitions: Vec<PartitionGauges>,
    /// Partitions this node leads with fewer replicas in sync than assigned.
    pub under_replicated: i64,
    /// The lag report of every group this node coordinates.
    pub groups: Vec<(String, Vec<strom_group::PartitionLag>)>,
    /// Storage failures of Raft groups since start, and replicas offline now.
    pub storage_errors: u64,
    pub offline_partitions: usize,
    pub transactions: TxnGauges,
}

/// One local partition replica's offsets and leadership as it sees them.
#[derive(Debug, Clone)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub is_leader: bool,
    pub leader_epoch: u64,
    /// On the leader, once its producer state is loaded (a scrape never loads it).
    pub last_stable_offset: Option<i64>,
}

/// The transactions coordinated by this node.
#[derive(Debug, Clone, Default)]
pub struct TxnGauges {
    /// Transactional ids by Kafka's state name.
    pub by_state: Vec<(&'static str, i64)>,
    /// How long the oldest Ongoing transaction has been open, in ms (0: none).
    pub oldest_open_ms: i64,
}

/// Every metric the broker records itself (the rest is read at scrape time).
#[derive(Debug)]
pub struct Metrics {
    /// One entry per API in `SUPPORTED_APIS`, in that order.
    apis: Box<[ApiMetrics]>,
    /// API key -> index into `apis` (`u8::MAX`: not served).
    api_index: Box<[u8]>,
    /// Produce and fetch traffic per topic. A read lock and a map lookup per partition
    /// of a request; the write lock only for a topic's first bytes.
    topics: RwLock<HashMap<String, Arc<TopicTraffic>>>,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    /// By [`Closed`], in `Closed::ALL` order.
    connections_closed: [AtomicU64; 4],
    /// The request memory budget, once the server runs.
    budget: std::sync::OnceLock<crate::budget::Budget>,
    leader_changes: AtomicU64,
    /// Duration of each partition log's fsyncs in a group-commit round.
    fsync: Arc<Histogram>,
    /// End-to-end delivery latency per consumer group.
    pub delivery: Delivery,
}

#[derive(Debug)]
struct ApiMetrics {
    key: ApiKey,
    latency: Histogram,
    /// Requests by outcome: one slot per `ErrorCode::ALL` entry, then OTHER, then CLOSED.
    outcomes: Box<[AtomicU64]>,
}

#[derive(Debug, Default)]
struct TopicTraffic {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Counts a partition replica's leadership change.
    pub fn leader_changed(&self) {
        self.leader_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn new() -> Metrics {
        let max_key = SUPPORTED_APIS
            .iter()
            .map(|r| r.key as usize)
            .max()
            .unwrap_or(0);
        let mut api_index = vec![u8::MAX; max_key + 1].into_boxed_slice();
        for (i, r) in SUPPORTED_APIS.iter().enumerate() {
            api_index[r.key as usize] = i as u8;
        }
        let apis = SUPPORTED_APIS
            .iter()
            .map(|r| ApiMetrics {
                key: r.key,
                latency: Histogram::new(REQUEST_BUCKETS),
                outcomes: (0..ErrorCode::ALL.len() + 2)
                    .map(|_| AtomicU64::new(0))
                    .collect(),
            })
            .collect();
        Metrics {
            apis,
            api_index,
            topics: RwLock::new(HashMap::new()),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_closed: Default::default(),
            budget: std::sync::OnceLock::new(),
            leader_changes: AtomicU64::new(0),
            fsync: Arc::new(Histogram::new(FSYNC_BUCKETS)),
            delivery: Delivery::default(),
        }
    }

    /// Starts timing a request of `api_key` that arrived at `started`; `None` for an API
    /// the broker does not serve (it is not counted).
    pub fn start(&self, api_key: i16, started: Instant) -> Option<RequestTimer> {
        let i = *self.api_index.get(usize::try_from(api_key).ok()?)?;
        (i != u8::MAX).then_some(RequestTimer {
            api: usize::from(i),
            started,
        })
    }

    /// Counts a request and records its latency: from the moment its frame was read to
    /// now (its answer was just written to the connection's buffer). Returns the latency.
    pub fn finish(&self, timer: RequestTimer, outcome: Outcome) -> Duration {
        let took = timer.started.elapsed();
        let api = &self.apis[timer.api];
        api.latency.observe(took);
        api.outcomes[outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
        took
    }

    /// `n` bytes of record batches were appended to a partition of `topic`.
    pub fn bytes_in(&self, topic: &str, n: usize) {
        self.traffic(topic)
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` bytes of record batches of `topic` were sent to a consumer.
    pub fn bytes_out(&self, topic: &str, n: u64) {
        self.traffic(topic)
            .bytes_out
            .fetch_add(n, Ordering::Relaxed);
    }

    fn traffic(&self, topic: &str) -> Arc<TopicTraffic> {
        if let Some(t) = self.topics.read().unwrap().get(topic) {
            return t.clone();
        }
        self.topics
            .write()
            .unwrap()
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// A connection was accepted; the guard counts it open until dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            metrics: self.clone(),
        }
    }

    /// The server's request budget, reported as gauges.
    pub(crate) fn set_budget(&self, budget: crate::budget::Budget) {
        let _ = self.budget.set(budget);
    }

    /// The broker closed (or refused) a connection for `why`.
    pub fn connection_closed(&self, why: Closed) {
        let i = Closed::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.connections_closed[i].fetch_add(1, Ordering::Relaxed);
    }

    /// What the storage engine calls after each log's fsyncs in a group-commit round.
    pub fn fsync_observer(&self) -> strom_log::FsyncObserver {
        let h = self.fsync.clone();
        Box::new(move |took| h.observe(took))
    }

    /// The scrape: every metric, in the Prometheus text format.
    pub fn render(&self, state: &StateSnapshot) -> String {
        let mut e = Exposition::new();
        self.render_requests(&mut e);
        self.render_connections(&mut e);
        self.render_topics(&mut e, state);
        self.render_groups(&mut e, state);
        e.family(
            "strom_log_fsync_duration_seconds",
            Kind::Histogram,
            "Time one partition log's fsyncs took in a group-commit round (interval and size flush policies included).",
        );
        e.histogram(
            "strom_log_fsync_duration_seconds",
            &[],
            &self.fsync.snapshot(),
        );
        e.family(
            "strom_storage_errors_total",
            Kind::Counter,
            "Failed writes or fsyncs that took a partition replica offline (each is then recovered by cutting its log back to what was durable).",
        );
        e.sample(
            "strom_storage_errors_total",
            &[],
            state.storage_errors as i64,
        );
        e.family(
            "strom_offline_partitions",
            Kind::Gauge,
            "Partition replicas on this node offline after a storage error, not yet recovered.",
        );
        e.sample(
            "strom_offline_partitions",
            &[],
            state.offline_partitions as i64,
        );
        e.finish()
    }

    fn render_requests(&self, e: &mut Exposition) {
        e.family(
            "strom_requests_total",
            Kind::Counter,
            "Kafka requests handled, by API and by the error code they were answered with (top-level code, else the first per-topic/partition/group error, else NONE).",
        );
        for api in self.apis.iter() {
            let name = api_name(api.key);
            for (i, count) in api.outcomes.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                // NONE is always shown, so rates start from zero; others once they occur.
                if count > 0 || i == NONE_INDEX {
                    e.sample(
                        "strom_requests_total",
                        &[("api", name), ("error", outcome_label(i))],
                        count as i64,
                    );
                }
            }
        }
        e.family(
            "strom_request_duration_seconds",
            Kind::Histogram,
            "Time from reading a request's frame to writing its answer, by API (includes waiting for acks=all durability, long polls and earlier answers on the same connection).",
        );
        for api in self.apis.iter() {
            if api.latency.count() > 0 {
                e.histogram(
                    "strom_request_duration_seconds",
                    &[("api", api_name(api.key))],
                    &api.latency.snapshot(),
                );
            }
        }
    }

    fn render_connections(&self, e: &mut Exposition) {
        e.family(
            "strom_connections_open",
            Kind::Gauge,
            "Kafka client connections open now.",
        );
        e.sample(
            "strom_connections_open",
            &[],
            self.connections_open.load(Ordering::Relaxed),
        );
        e.family(
            "strom_connections_accepted_total",
            Kind::Counter,
            "Kafka client connections accepted since the broker started.",
        );
        e.sample(
            "strom_connections_accepted_total",
            &[],
            self.connections_accepted.load(Ordering::Relaxed) as i64,
        );
        e.family(
            "strom_connections_closed_total",
            Kind::Counter,
            "Kafka client connections the broker closed or refused, by reason: idle (connections_max_idle_ms), request_timeout (a frame not complete within request_read_timeout_ms), evicted (longest-idle, closed at max_connections to admit a new one), per_ip_limit (refused at max_connections_per_ip).",
        );
        for (c, n) in Closed::ALL.iter().zip(&self.connections_closed) {
            e.sample(
                "strom_connections_closed_total",
                &[("reason", c.label())],
                n.load(Ordering::Relaxed) as i64,
            );
        }
        if let Some(b) = self.budget.get() {
            e.family(
                "strom_request_bytes_in_flight",
                Kind::Gauge,
                "Bytes of request frames read and not yet answered (the memory budget in use).",
            );
            e.sample("strom_request_bytes_in_flight", &[], b.in_use() as i64);
            e.family(
                "strom_request_bytes_budget",
                Kind::Gauge,
                "The memory budget for requests in flight (queued_max_request_bytes).",
            );
            e.sample("strom_request_bytes_budget", &[], b.total() as i64);
        }
    }

    /// Traffic per topic and offsets per partition. Returns every partition's log end
    /// offset, for the lag report.
    /// Traffic per topic and offsets per partition.
    fn render_topics(&self, e: &mut Exposition, state: &StateSnapshot) {
        let traffic: Vec<(String, Arc<TopicTraffic>)> = {
            let mut map = self.topics.write().unwrap();
            // Deleted topics leave the exposition (a re-created one starts from zero).
            map.retain(|name, _| state.topics.iter().any(|t| t == name));
            let mut v: Vec<_> = map.iter().map(|(n, t)| (n.clone(), t.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        e.family(
            "strom_topic_bytes_in_total",
            Kind::Counter,
            "Bytes of record batches appended to the topic's partitions (producers' batches and the broker's own __consumer_offsets records; idempotent retries are not counted again).",
        );
        for (name, t) in &traffic {
            let v = t.bytes_in.load(Ordering::Relaxed);
            e.sample("strom_topic_bytes_in_total", &[("topic", name)], v as i64);
        }
        e.family(
            "strom_topic_bytes_out_total",
            Kind::Counter,
            "Bytes of record batches of the topic sent to Fetch clients.",
        );
        for (name, t) in &traffic {
            let v = t.bytes_out.load(Ordering::Relaxed);
            e.sample("strom_topic_bytes_out_total", &[("topic", name)], v as i64);
        }

        let families: [(&str, &str, Kind); 5] = [
            (
                "strom_partition_log_start_offset",
                "First offset still in this replica's log (moves with retention and DeleteRecords).",
                Kind::Gauge,
            ),
            (
                "strom_partition_log_end_offset",
                "Offset this replica's next record will get.",
                Kind::Gauge,
            ),
            (
                "strom_partition_high_watermark",
                "Offset below which records are committed (on a majority of replicas) and consumers may read: the Raft commit index as this replica knows it.",
                Kind::Gauge,
            ),
            (
                "strom_partition_leader",
                "1 when this node leads the partition, else 0.",
                Kind::Gauge,
            ),
            (
                "strom_partition_leader_epoch",
                "The partition's leader epoch (Raft term) as this replica knows it.",
                Kind::Gauge,
            ),
        ];
        for (i, (name, help, kind)) in families.into_iter().enumerate() {
            e.family(name, kind, help);
            for g in &state.partitions {
                let partition = g.partition.to_string();
                let v = match i {
                    0 => g.log_start_offset,
                    1 => g.log_end_offset,
                    2 => g.high_watermark.min(g.log_end_offset),
                    3 => i64::from(g.is_leader),
                    _ => g.leader_epoch as i64,
                };
                e.sample(name, &[("topic", &g.topic), ("partition", &partition)], v);
            }
        }
        e.family(
            "strom_partition_last_stable_offset",
            Kind::Gauge,
            "Offset below which every transaction has ended and its marker is committed: where read_committed consumers stop. On the partition's leader, once a produce or fetch loaded its producer state; the distance to the high watermark is what open transactions hold back.",
        );
        for g in &state.partitions {
            if let Some(lso) = g.last_stable_offset {
                let partition = g.partition.to_string();
                e.sample(
                    "strom_partition_last_stable_offset",
                    &[("topic", &g.topic), ("partition", &partition)],
                    lso,
                );
            }
        }
        e.family(
            "strom_transactions",
            Kind::Gauge,
            "Transactional ids this node coordinates, by transaction state (Ongoing: a transaction is open).",
        );
        for (s, n) in &state.transactions.by_state {
            e.sample("strom_transactions", &[("state", s)], *n);
        }
        e.family(
            "strom_transaction_oldest_open_seconds",
            Kind::Gauge,
            "How long the oldest open transaction this node coordinates has been open (0 when none): a hanging producer holds read_committed consumers back until its transaction times out.",
        );
        e.sample_f64(
            "strom_transaction_oldest_open_seconds",
            &[],
            state.transactions.oldest_open_ms as f64 / 1000.0,
        );
        e.family(
            "strom_partitions_under_replicated",
            Kind::Gauge,
            "Partitions this node leads with fewer replicas in sync than assigned.",
        );
        e.sample(
            "strom_partitions_under_replicated",
            &[],
            state.under_replicated,
        );
        e.family(
            "strom_raft_leader_changes_total",
            Kind::Counter,
            "Leadership changes seen by this node's partition replicas since it started.",
        );
        e.sample(
            "strom_raft_leader_changes_total",
            &[],
            self.leader_changes.load(Ordering::Relaxed) as i64,
        );
    }

    fn render_groups(&self, e: &mut Exposition, state: &StateSnapshot) {
        let groups = &state.groups;
        e.family(
            "strom_consumer_group_committed_offset",
            Kind::Gauge,
            "Offset the consumer group last committed for the partition.",
        );
        for (group, rows) in groups {
            for r in rows {
                if let Some(c) = r.committed_offset {
                    let partition = r.partition.to_string();
                    e.sample(
                        "strom_consumer_group_committed_offset",
                        &[
                            ("group", group),
                            ("topic", &r.topic),
                            ("partition", &partition),
                        ],
                        c,
                    );
                }
            }
        }
        e.family(
            "strom_consumer_group_lag",
            Kind::Gauge,
            "Records between the consumer group's committed offset and the partition's high watermark (never negative).",
        );
        for (group, rows) in groups {
            for r in rows {
                if let Some(lag) = r.lag {
                    let partition = r.partition.to_string();
                    e.sample(
                        "strom_consumer_group_lag",
                        &[
                            ("group", group),
                            ("topic", &r.topic),
                            ("partition", &partition),
                        ],
                        lag,
                    );
                }
            }
        }
        let delivery = self
            .delivery
            .snapshot(|g| groups.iter().any(|(id, _)| id == g));
        e.family(
            "strom_consumer_group_delivery_latency_seconds",
            Kind::Histogram,
            "When the group commits offset N, broker time minus the max timestamp of the batch holding N-1 (see docs/metrics.md for the definition and its limits).",
        );
        for (group, h) in &delivery {
            e.histogram(
                "strom_consumer_group_delivery_latency_seconds",
                &[("group", group)],
                h,
            );
        }
    }
}

/// The record bytes a Fetch answer carries, per topic; empty (no allocation) when it
/// carries none, as most long-poll answers do.
pub fn fetched_bytes(out: &FetchOut) -> Vec<(String, u64)> {
    let mut sent: Vec<(String, u64)> = Vec::new();
    // `records` has one entry per partition, in the order of the topics' partitions.
    let mut records = out.records.iter();
    for t in &out.topics {
        for _ in &t.partitions {
            let Some(Some(slice)) = records.next() else {
                continue;
            };
            match sent.last_mut() {
                Some((name, bytes)) if *name == t.name => *bytes += slice.len,
                _ => sent.push((t.name.clone(), slice.len)),
            }
        }
    }
    sent
}

/// Keeps a connection counted in `strom_connections_open`.
#[derive(Debug)]
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

const NONE_INDEX: usize = 1;

fn outcome_index(outcome: Outcome) -> usize {
    debug_assert_eq!(ErrorCode::ALL[NONE_INDEX], ErrorCode::None);
    match outcome {
        Outcome::Code(0) => NONE_INDEX,
        Outcome::Code(code) => ErrorCode::ALL
            .iter()
            .position(|e| e.code() == code)
            .unwrap_or(ErrorCode::ALL.len()),
        Outcome::Closed => ErrorCode::ALL.len() + 1,
    }
}

fn outcome_label(index: usize) -> &'static str {
    match ErrorCode::ALL.get(index) {
        Some(code) => code.name(),
        None if index == ErrorCode::ALL.len() => OTHER_CODE,
        None => CLOSED,
    }
}

/// The label an API key gets: Kafka's name for it (`Produce`, `OffsetCommit`).
pub fn api_name(key: ApiKey) -> &'static str {
    // kafka-protocol's Debug output is the variant name, which is Kafka's API name; the
    // set is small and fixed, so leak each name once.
    static NAMES: std::sync::OnceLock<HashMap<i16, &'static str>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            SUPPORTED_APIS
                .iter()
                .map(|r| {
                    let name: &'static str = Box::leak(format!("{:?}", r.key).into_boxed_str());
                    (r.key as i16, name)
                })
                .collect()
        })
        .get(&(key as i16))
        .copied()
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_kafka_names() {
        assert_eq!(outcome_label(outcome_index(Outcome::Code(0))), "NONE");
        assert_eq!(
            outcome_label(outcome_index(Outcome::Code(3))),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            outcome_label(outcome_index(Outcome::Code(-1))),
            "UNKNOWN_SERVER_ERROR"
        );
        assert_eq!(outcome_label(outcome_index(Outcome::Code(999))), OTHER_CODE);
        assert_eq!(outcome_label(outcome_index(Outcome::Closed)), CLOSED);
        assert_eq!(api_name(ApiKey::OffsetCommit), "OffsetCommit");
    }

    #[test]
    fn requests_are_counted_and_timed_per_api() {
        let m = Metrics::new();
        let t = m.start(ApiKey::Produce as i16, Instant::now()).unwrap();
        m.finish(t, Outcome::Code(0));
        let t = m.start(ApiKey::Produce as i16, Instant::now()).unwrap();
        m.finish(t, Outcome::Code(ErrorCode::CorruptMessage.code()));
        assert!(m.start(9999, Instant::now()).is_none());
        assert!(m.start(-3, Instant::now()).is_none());
        let mut e = Exposition::new();
        m.render_requests(&mut e);
        let text = e.finish();
        assert!(text.contains("strom_requests_total{api=\"Produce\",error=\"NONE\"} 1\n"));
        assert!(
            text.contains("strom_requests_total{api=\"Produce\",error=\"CORRUPT_MESSAGE\"} 1\n")
        );
        assert!(text.contains("strom_requests_total{api=\"Fetch\",error=\"NONE\"} 0\n"));
        assert!(text.contains("strom_request_duration_seconds_count{api=\"Produce\"} 2\n"));
        assert!(!text.contains("strom_request_duration_seconds_count{api=\"Fetch\"}"));
    }

    #[test]
    fn open_connections_follow_their_guards() {
        let m = Arc::new(Metrics::new());
        let a = m.connection_opened();
        let b = m.connection_opened();
        drop(a);
        assert_eq!(m.connections_open.load(Ordering::Relaxed), 1);
        assert_eq!(m.connections_accepted.load(Ordering::Relaxed), 2);
        drop(b);
        assert_eq!(m.connections_open.load(Ordering::Relaxed), 0);
    }
}
