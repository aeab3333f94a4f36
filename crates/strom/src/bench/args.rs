//! The flags of `strom bench` and the workload they describe.

use std::time::Duration;

use clap::{Args, Subcommand};
use strom_client::{Acks, Codec};

use crate::cli::Common;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Measure this machine's raw limits: buffered write, write + fdatasync per MiB,
    /// loopback TCP and sendfile (the baselines Strom's results are compared with)
    Baseline(super::baseline::BaselineArgs),
}

/// A produce/consume workload against a running broker or cluster.
#[derive(Debug, Clone, Args)]
pub(crate) struct WorkloadArgs {
    /// Topic to use; created with --partitions and --replication-factor if missing
    #[arg(long, short = 't', default_value = "strom-bench")]
    pub topic: String,
    /// Partitions of the topic when it is created
    #[arg(long, short = 'p', default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor of the topic when it is created [default: the broker's]
    #[arg(long, short = 'r', default_value_t = -1)]
    pub replication_factor: i16,
    /// Producers, each with its own connections, writing to every partition in turn
    #[arg(long, short = 'P', default_value_t = 1)]
    pub producers: usize,
    /// Consumers, each reading its share of the partitions
    #[arg(long, short = 'C', default_value_t = 0)]
    pub consumers: usize,
    /// Bytes per message value
    #[arg(long, short = 's', default_value = "1024", value_parser = parse_size)]
    pub message_size: u64,
    /// 0, 1 or all
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// How messages (which have no keys) pick partitions: sticky (Kafka's default: one
    /// partition until its batch is sent, then the next) or round-robin (each message
    /// to the next partition)
    #[arg(long, default_value = "sticky")]
    pub partitioner: String,
    /// Bytes per batch (per partition) at most
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub batch_size: u64,
    /// How long a batch may wait to fill before it is sent
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Bytes per Produce request at most (at least one batch)
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub max_request_size: u64,
    /// Produce requests per producer sent and not yet answered at most
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// Bytes a producer may hold in batches not yet answered before it waits
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub buffer_memory: u64,
    /// none, gzip, snappy, lz4 or zstd
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: String,
    /// How long to produce (e.g. 30s, 2m); ignored with --count
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Messages to produce in total (or, without producers, to consume)
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Messages per second over all producers [default: as fast as possible]
    #[arg(long)]
    pub rate: Option<f64>,
    /// Time at the start left out of the results
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Where consumers start: end or beginning [default: end with producers, else beginning]
    #[arg(long)]
    pub from: Option<String>,
    /// Bytes per partition per Fetch at most
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub fetch_size: u64,
    /// Runtime worker threads [default: one per CPU]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Show the progress line on stderr even when it is not a terminal
    #[arg(long)]
    pub progress: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Where consumers begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartAt {
    Beginning,
    End,
}

/// A checked workload.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub args: WorkloadArgs,
    pub acks: Acks,
    pub codec: Codec,
    pub start_at: StartAt,
    /// The sticky partitioner (else round-robin).
    pub sticky: bool,
}

impl WorkloadArgs {
    pub(crate) fn check(self) -> anyhow::Result<Workload> {
        let acks = self.acks.parse::<Acks>()?;
        let codec = self.compression.parse::<Codec>()?;
        let start_at = match self.from.as_deref() {
            None if self.producers > 0 => StartAt::End,
            None | Some("beginning") => StartAt::Beginning,
            Some("end") => StartAt::End,
            Some(other) => anyhow::bail!("--from must be end or beginning, not {other:?}"),
        };
        let sticky = match self.partitioner.as_str() {
            "sticky" => true,
            "round-robin" => false,
            other => anyhow::bail!("--partitioner must be sticky or round-robin, not {other:?}"),
        };
        anyhow::ensure!(
            self.producers + self.consumers > 0,
            "nothing to do: give --producers or --consumers"
        );
        anyhow::ensure!(self.partitions > 0, "--partitions must be at least 1");
        anyhow::ensure!(self.max_in_flight > 0, "--max-in-flight must be at least 1");
        anyhow::ensure!(
            self.rate.is_none_or(|r| r > 0.0 && r.is_finite()),
            "--rate must be a positive number of messages per second"
        );
        anyhow::ensure!(
            self.message_size <= 64 * 1024 * 1024,
            "--message-size is at most 64MiB"
        );
        Ok(Workload {
            args: self,
            acks,
            codec,
            start_at,
            sticky,
        })
    }
}

/// `1024`, `16KiB`, `1MiB`, `1MB`, `2GiB`.
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a size like 1024, 64KiB or 1MiB, got {s:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "KB" | "kB" => 1000,
        "M" | "MiB" => 1 << 20,
        "MB" => 1_000_000,
        "G" | "GiB" => 1 << 30,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    Ok((n * mult as f64) as u64)
}

/// `500ms`, `10s`, `2m`, `1h`, or seconds as a bare number.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("expected a duration like 500ms, 10s or 2m, got {s:?}");
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
    }
}
