//! `strom txn list|describe|producers|abort`: what Kafka's `kafka-transactions.sh` does.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{Common, block_on, format_datetime, print_json, table};

#[derive(Debug, Subcommand)]
pub(crate) enum TxnCommand {
    /// List the transactional ids every broker coordinates, with their state
    List(ListArgs),
    /// Show a transactional id's producer, state, timeout and open partitions
    Describe(DescribeArgs),
    /// List the producers a partition's leader knows, with their open transactions
    Producers(PartitionArgs),
    /// Abort a transaction left open in a partition (a hanging transaction), by its
    /// first offset (see `strom txn producers`)
    Abort(AbortArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The transactional id
    pub transactional_id: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct PartitionArgs {
    /// The topic
    pub topic: String,
    /// The partition
    #[arg(long, short = 'p')]
    pub partition: i32,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    /// The topic
    pub topic: String,
    /// The partition
    #[arg(long, short = 'p')]
    pub partition: i32,
    /// The first offset of the open transaction to abort
    #[arg(long)]
    pub start_offset: i64,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(cmd: TxnCommand) -> anyhow::Result<()> {
    block_on(async move {
        match cmd {
            TxnCommand::List(a) => list(a).await,
            TxnCommand::Describe(a) => describe(a).await,
            TxnCommand::Producers(a) => producers(a).await,
            TxnCommand::Abort(a) => abort(a).await,
        }
    })
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let txns = client.list_transactions().await?;
    if a.common.json() {
        let v: Vec<_> = txns
            .iter()
            .map(|t| {
                json!({
                    "transactional_id": t.transactional_id,
                    "producer_id": t.producer_id,
                    "state": t.state,
                    "coordinator": t.coordinator,
                })
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = txns
            .iter()
            .map(|t| {
                vec![
                    t.transactional_id.clone(),
                    t.coordinator.to_string(),
                    t.producer_id.to_string(),
                    t.state.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["TRANSACTIONAL ID", "COORDINATOR", "PRODUCER ID", "STATE"],
                &rows
            )
        );
    }
    Ok(())
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let t = client.describe_transaction(&a.transactional_id).await?;
    let partitions: Vec<String> = t
        .partitions
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect();
    if a.common.json() {
        print_json(&json!({
            "transactional_id": t.transactional_id,
            "coordinator": t.coordinator,
            "state": t.state,
            "producer_id": t.producer_id,
            "producer_epoch": t.producer_epoch,
            "timeout_ms": t.timeout_ms,
            "start_time_ms": (t.start_time_ms >= 0).then_some(t.start_time_ms),
            "partitions": partitions,
        }));
        return Ok(());
    }
    println!("transactional id: {}", t.transactional_id);
    println!("coordinator:      {}", t.coordinator);
    println!("state:            {}", t.state);
    println!(
        "producer:         {} epoch {}",
        t.producer_id, t.producer_epoch
    );
    println!("timeout:          {} ms", t.timeout_ms);
    if t.start_time_ms >= 0 {
        println!("started:          {}", format_datetime(t.start_time_ms));
    }
    println!("partitions:       {}", partitions.join(" "));
    Ok(())
}

async fn producers(a: PartitionArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let producers = client.describe_producers(&a.topic, a.partition).await?;
    if a.common.json() {
        let v: Vec<_> = producers
            .iter()
            .map(|p| {
                json!({
                    "producer_id": p.producer_id,
                    "producer_epoch": p.producer_epoch,
                    "last_sequence": p.last_sequence,
                    "last_timestamp": p.last_timestamp,
                    "coordinator_epoch": p.coordinator_epoch,
                    "current_txn_start_offset":
                        (p.current_txn_start_offset >= 0).then_some(p.current_txn_start_offset),
                })
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = producers
        .iter()
        .map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                p.last_sequence.to_string(),
                if p.last_timestamp >= 0 {
                    format_datetime(p.last_timestamp)
                } else {
                    "-".into()
                },
                p.coordinator_epoch.to_string(),
                if p.current_txn_start_offset >= 0 {
                    p.current_txn_start_offset.to_string()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "PRODUCER ID",
                "EPOCH",
                "LAST SEQUENCE",
                "LAST TIMESTAMP",
                "COORDINATOR EPOCH",
                "OPEN TXN START",
            ],
            &rows
        )
    );
    Ok(())
}

async fn abort(a: AbortArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let pid = client
        .abort_transaction(&a.topic, a.partition, a.start_offset)
        .await?;
    if a.common.json() {
        print_json(&json!({"aborted_producer_id": pid}));
    } else {
        println!(
            "aborted the transaction of producer {pid} in {}-{} from offset {}",
            a.topic, a.partition, a.start_offset
        );
    }
    Ok(())
}
