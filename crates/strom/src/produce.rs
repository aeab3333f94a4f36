//! `strom produce TOPIC`: one record per input line (stdin or `--file`), optionally
//! split into key and value, batched per partition with several batches in flight.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use strom_client::{Acks, Client, Codec, ProduceOptions, ProduceRecord};
use tokio::task::JoinSet;

use crate::cli::{Common, block_on, parse_key_value, print_json};

/// Records per batch at most.
const BATCH_RECORDS: usize = 1000;
/// Bytes of keys and values per batch at most.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches sent and not yet answered at most.
const MAX_IN_FLIGHT: usize = 16;
/// Lines the reader thread hands over at a time.
const READ_CHUNK: usize = 1000;

#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// The topic to write to (created on first use if the broker auto-creates topics)
    pub topic: String,
    /// Read lines from this file instead of stdin
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value (lines without SEP have no key)
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header added to every record (repeatable)
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// 0 (no answer), 1 (leader appended) or all (fsynced on every in-sync replica)
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: String,
    /// Write every record to this partition [default: by key hash, keyless round-robin]
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Show a progress line on stderr even when it is not a terminal
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(a: ProduceArgs) -> anyhow::Result<()> {
    block_on(produce(a))
}

/// Totals of a run.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    failed: u64,
    /// The distinct reasons of failed batches, reported once at the end.
    errors: Vec<String>,
    bytes: u64,
}

async fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    let opts = ProduceOptions {
        acks: a.acks.parse::<Acks>()?,
        codec: a.compression.parse::<Codec>()?,
        ..ProduceOptions::default()
    };
    let input: Box<dyn BufRead + Send> = match &a.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let client = a.common.connect().await?;
    // The broker creates a missing topic on first use, as it does for other producers.
    let meta = client.metadata(Some(&[&a.topic]), true).await?;
    let partitions = match meta.topic(&a.topic) {
        Some(t) if t.error_code == 0 && !t.partitions.is_empty() => t.partitions.len() as i32,
        Some(t) if t.error_code != 0 => {
            strom_client::ClientError::check(t.error_code, None, || {
                format!("metadata of topic {}", a.topic)
            })?;
            unreachable!("check fails for a non-zero code")
        }
        _ => bail!("unknown topic {}", a.topic),
    };
    if let Some(p) = a.partition
        && !(0..partitions).contains(&p)
    {
        bail!(
            "topic {} has no partition {p} (it has {partitions})",
            a.topic
        );
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<String>>>(4);
    std::thread::spawn(move || read_lines(input, tx));

    let show_progress = a.progress || std::io::stderr().is_terminal();
    let headers: Vec<(String, Option<Vec<u8>>)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.as_bytes().to_vec())))
        .collect();
    let mut pending: Vec<(Vec<ProduceRecord>, usize)> =
        (0..partitions).map(|_| (Vec::new(), 0)).collect();
    let mut in_flight: JoinSet<(usize, u64, Result<(), String>)> = JoinSet::new();
    let mut tally = Tally::default();
    let mut round_robin = 0i32;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut progress_shown = false;

    while let Some(chunk) = rx.recv().await {
        let lines = chunk.context("cannot read the input")?;
        for line in lines {
            let (key, value) = match &a.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(k.as_bytes().to_vec()), v.as_bytes().to_vec()),
                    None => (None, line.into_bytes()),
                },
                None => (None, line.into_bytes()),
            };
            let partition = match (a.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => (murmur2(k) & 0x7fff_ffff) as i32 % partitions,
                (None, None) => round_robin,
            };
            let size = key.as_ref().map_or(0, Vec::len) + value.len();
            let slot = &mut pending[partition as usize];
            slot.0.push(ProduceRecord {
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp: None,
            });
            slot.1 += size;
            if slot.0.len() >= BATCH_RECORDS || slot.1 >= BATCH_BYTES {
                let (batch, bytes) = std::mem::take(slot);
                // Keyless records move to the next partition once a batch is full.
                round_robin = (round_robin + 1) % partitions;
                send(
                    &client,
                    &a.topic,
                    partition,
                    batch,
                    bytes,
                    opts,
                    &mut in_flight,
                    &mut tally,
                )
                .await;
            }
        }
        if show_progress && last_progress.elapsed() >= Duration::from_secs(1) {
            progress(&tally, started);
            last_progress = Instant::now();
            progress_shown = true;
        }
    }
    for partition in 0..partitions {
        let (batch, bytes) = std::mem::take(&mut pending[partition as usize]);
        if !batch.is_empty() {
            send(
                &client,
                &a.topic,
                partition,
                batch,
                bytes,
                opts,
                &mut in_flight,
                &mut tally,
            )
            .await;
        }
    }
    while let Some(done) = in_flight.join_next().await {
        record(done, &mut tally);
    }
    if progress_shown {
        progress(&tally, started);
        eprintln!();
    }
    if a.common.json() {
        print_json(&json!({
            "topic": a.topic,
            "produced": tally.sent,
            "failed": tally.failed,
            "bytes": tally.bytes,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    } else {
        let noun = if tally.sent == 1 {
            "message"
        } else {
            "messages"
        };
        println!("produced {} {noun} to topic {}", tally.sent, a.topic);
    }
    if tally.failed > 0 {
        bail!(
            "{} of {} messages were not produced: {}",
            tally.failed,
            tally.failed + tally.sent,
            tally.errors.join("; ")
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send(
    client: &Client,
    topic: &str,
    partition: i32,
    batch: Vec<ProduceRecord>,
    bytes: usize,
    opts: ProduceOptions,
    in_flight: &mut JoinSet<(usize, u64, Result<(), String>)>,
    tally: &mut Tally,
) {
    while in_flight.len() >= MAX_IN_FLIGHT {
        if let Some(done) = in_flight.join_next().await {
            record(done, tally);
        }
    }
    let client = client.clone();
    let topic = topic.to_owned();
    in_flight.spawn(async move {
        let n = batch.len();
        let r = client.produce(&topic, partition, &batch, opts).await;
        (n, bytes as u64, r.map(|_| ()).map_err(|e| e.to_string()))
    });
}

fn record(
    done: Result<(usize, u64, Result<(), String>), tokio::task::JoinError>,
    tally: &mut Tally,
) {
    match done {
        Ok((n, bytes, Ok(()))) => {
            tally.sent += n as u64;
            tally.bytes += bytes;
        }
        Ok((n, _, Err(e))) => {
            if !tally.errors.contains(&e) {
                tally.errors.push(e);
            }
            tally.failed += n as u64;
        }
        Err(e) => {
            tally.errors.push(format!("produce task failed: {e}"));
        }
    }
}

fn progress(t: &Tally, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r{} messages, {:.0} msg/s, {:.1} MB/s{}",
        t.sent,
        t.sent as f64 / secs,
        t.bytes as f64 / secs / 1e6,
        if t.failed > 0 {
            format!(", {} failed", t.failed)
        } else {
            String::new()
        }
    );
    let _ = err.flush();
}

/// Reads lines (without their `\n` or `\r\n`) and hands them over in chunks.
fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<String>>>,
) {
    let mut chunk = Vec::with_capacity(READ_CHUNK);
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                chunk.push(line);
                if chunk.len() >= READ_CHUNK
                    && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
}

/// Kafka's default partitioner hash (murmur2 with seed 0x9747b28c, as the Java client
/// computes it), so that a key lands on the same partition as with Java producers.
pub(crate) fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if rest.len() >= 3 {
            h ^= u32::from(rest[2]) << 16;
        }
        if rest.len() >= 2 {
            h ^= u32::from(rest[1]) << 8;
        }
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest (murmur2 as a signed int).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
    }
}
