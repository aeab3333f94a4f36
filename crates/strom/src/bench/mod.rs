//! `strom bench`: a load generator that measures Strom (or any Kafka broker) the way
//! users judge a broker: throughput and latency percentiles of produce
//! acknowledgements and of end-to-end delivery, for a workload given on the command
//! line; and `strom bench baseline`, the machine's raw limits to compare them with.
//!
//! - `args.rs`: the flags and the checked [`args::Workload`];
//! - `producer.rs` / `consumer.rs`: one task each, with its own client connections;
//! - `stats.rs`: counters and HDR latency histograms all tasks report into;
//! - `report.rs`: the progress line and the summary (text or JSON);
//! - `baseline.rs`: raw write, write + fdatasync, loopback TCP and sendfile.

mod args;
mod baseline;
mod consumer;
mod producer;
mod report;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use strom_client::{Client, ClientConfig, ClientError, NewTopic, OffsetSpec};
use tokio::task::JoinSet;

pub(crate) use args::{BenchArgs, BenchCommand};
use args::{StartAt, Workload};
use stats::Stats;

pub(crate) fn run(a: BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchCommand::Baseline(b)) = a.command {
        return baseline::run(b);
    }
    let work = Arc::new(a.workload.check()?);
    let threads = work
        .args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(bench(work))
}

async fn bench(work: Arc<Workload>) -> anyhow::Result<()> {
    let a = &work.args;
    let client = a.common.connect().await?;
    let partitions = ensure_topic(&client, &work).await?;
    let stats = Arc::new(Stats::new());
    let run_started_us = producer::wall_micros();
    let start = Instant::now();
    let deadline = a.count.is_none().then(|| start + a.warmup + a.duration);

    // Consumers first, positioned before any message of this run is written.
    let mut consumers = JoinSet::new();
    if a.consumers > 0 {
        let spec = match work.start_at {
            StartAt::Beginning => OffsetSpec::Earliest,
            StartAt::End => OffsetSpec::Latest,
        };
        let starts = client.list_offsets(&a.topic, &partitions, spec).await?;
        let replay = a.producers == 0;
        let ends = if replay {
            Some(
                client
                    .list_offsets(&a.topic, &partitions, OffsetSpec::Latest)
                    .await?,
            )
        } else {
            None
        };
        for i in 0..a.consumers {
            let mine: Vec<i32> = partitions
                .iter()
                .copied()
                .skip(i)
                .step_by(a.consumers)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let pick = |m: &BTreeMap<i32, i64>| -> BTreeMap<i32, i64> {
                mine.iter()
                    .filter_map(|p| m.get(p).map(|o| (*p, *o)))
                    .collect()
            };
            let plan = consumer::Plan {
                positions: pick(&starts),
                end: ends.as_ref().map(pick),
                count: if replay { a.count } else { None },
                deadline: if replay { deadline } else { None },
                run_started_us,
            };
            let c = own_client(a).await?;
            consumers.spawn(consumer::run(c, work.clone(), stats.clone(), plan));
        }
    }

    let mut producers = JoinSet::new();
    let rate_each = a.rate.map(|r| r / a.producers.max(1) as f64);
    for i in 0..a.producers {
        let quota = a.count.map(|c| {
            let n = a.producers as u64;
            c / n + u64::from((i as u64) < c % n)
        });
        let plan = producer::Plan {
            index: i,
            partitions: partitions.clone(),
            quota,
            rate: rate_each,
            deadline,
        };
        let c = own_client(a).await?;
        producers.spawn(producer::run(c, work.clone(), stats.clone(), plan));
    }

    let progress = report::spawn_progress(stats.clone(), work.clone());
    if !a.warmup.is_zero() {
        tokio::time::sleep(a.warmup).await;
        stats.begin_measurement();
    }
    while let Some(r) = producers.join_next().await {
        r.context("a producer failed")?;
    }
    stats.producers_done.store(true, Ordering::Relaxed);
    let mut consumer_error = None;
    while let Some(r) = consumers.join_next().await {
        if let Err(e) = r.context("a consumer failed").and_then(|r| r) {
            consumer_error.get_or_insert(e);
        }
    }
    progress.finish().await;
    report::summary(&work, partitions.len(), &stats);
    if let Some(e) = consumer_error {
        return Err(e);
    }
    let (acked, _) = stats.acked.get();
    let (failed, _) = stats.failed.get();
    if a.producers > 0 && acked == 0 && failed > 0 {
        anyhow::bail!("every message failed");
    }
    Ok(())
}

/// How long creating a topic of `partitions` may take: 30 s, and 10 ms per partition.
fn creation_time(partitions: i32) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(10) * partitions.max(0) as u32
}

/// A client of its own for a producer or consumer, as separate applications have.
async fn own_client(a: &args::WorkloadArgs) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(&a.common.bootstrap);
    config.client_id = "strom-bench".to_owned();
    Ok(Client::connect(config).await?)
}

/// The topic's partitions, creating it first when it does not exist, and waiting
/// until every partition has a leader.
async fn ensure_topic(client: &Client, work: &Workload) -> anyhow::Result<Vec<i32>> {
    let a = &work.args;
    match client.topic_info(&a.topic).await {
        Ok(_) => {}
        Err(ClientError::UnknownTopic(_)) => {
            let topic = NewTopic {
                name: a.topic.clone(),
                partitions: a.partitions,
                replication_factor: a.replication_factor,
                configs: Vec::new(),
            };
            // A broker creates thousands of partitions in tens of seconds: the request
            // may wait that long, and the wait below covers a slower one.
            let mut config = ClientConfig::new(&a.common.bootstrap);
            config.request_timeout = creation_time(a.partitions);
            let creator = Client::connect(config).await?;
            let code = |e: &ClientError| e.kafka_code();
            match creator.create_topic(&topic).await {
                Ok(_) => {}
                // Another bench created it at the same moment.
                Err(e) if code(&e) == Some(strom_wire::ErrorCode::TopicAlreadyExists.code()) => {}
                // Still being created: the wait for leaders below tells.
                Err(ClientError::Timeout(..)) => {}
                Err(e) if code(&e) == Some(strom_wire::ErrorCode::RequestTimedOut.code()) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create topic {}", a.topic));
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    let give_up = Instant::now() + creation_time(a.partitions) * 2;
    loop {
        client.invalidate_topic(&a.topic);
        let partitions = match client.partitions(&a.topic).await {
            Ok(p) if !p.is_empty() => p,
            Ok(_) | Err(ClientError::UnknownTopic(_)) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            other => other?,
        };
        match client.partitions_by_leader(&a.topic, &partitions).await {
            Ok(_) => return Ok(partitions),
            Err(e) if e.is_retriable() && Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).context("partition leaders"),
        }
    }
}
