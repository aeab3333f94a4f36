//! `strom cluster info`: brokers, controller, cluster id, partition leadership per
//! broker and under-replicated partitions.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::{Common, block_on, ids, print_json, table};

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Brokers, controller, cluster id, leadership per broker, under-replicated partitions
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Info(a) => block_on(info(a)),
    }
}

async fn info(a: InfoArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let meta = client.metadata(None, false).await?;
    // Partitions led per broker, and partitions with replicas out of the ISR.
    let mut led: BTreeMap<i32, Vec<String>> = meta
        .brokers
        .iter()
        .map(|b| (b.node_id, Vec::new()))
        .collect();
    let mut under = Vec::new();
    for t in &meta.topics {
        for p in &t.partitions {
            led.entry(p.leader)
                .or_default()
                .push(format!("{}/{}", t.name, p.partition));
            let missing = p.out_of_sync();
            if !missing.is_empty() {
                under.push((t.name.clone(), p.clone(), missing));
            }
        }
    }
    if a.common.json() {
        let brokers: Vec<_> = meta
            .brokers
            .iter()
            .map(|b| {
                json!({
                    "node_id": b.node_id,
                    "host": b.host,
                    "port": b.port,
                    "rack": b.rack,
                    "controller": b.node_id == meta.controller_id,
                    "leader_partitions": led.get(&b.node_id).map_or(0, Vec::len),
                })
            })
            .collect();
        let under: Vec<_> = under
            .iter()
            .map(|(t, p, missing)| {
                json!({"topic": t, "partition": p.partition, "leader": p.leader, "replicas": p.replicas, "isr": p.isr, "out_of_sync": missing})
            })
            .collect();
        print_json(&json!({
            "cluster_id": meta.cluster_id,
            "controller_id": meta.controller_id,
            "brokers": brokers,
            "topics": meta.topics.len(),
            "partitions": meta.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
            "under_replicated": under,
        }));
        return Ok(());
    }
    println!(
        "cluster id:    {}",
        meta.cluster_id.as_deref().unwrap_or("-")
    );
    println!("controller id: {}", meta.controller_id);
    println!(
        "topics:        {} ({} partitions)",
        meta.topics.len(),
        meta.topics
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>()
    );
    println!();
    let rows: Vec<Vec<String>> = meta
        .brokers
        .iter()
        .map(|b| {
            vec![
                b.node_id.to_string(),
                b.addr(),
                b.rack.clone().unwrap_or_else(|| "-".into()),
                if b.node_id == meta.controller_id {
                    "yes".into()
                } else {
                    String::new()
                },
                led.get(&b.node_id).map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["BROKER", "ADDRESS", "RACK", "CONTROLLER", "LEADER OF"],
            &rows
        )
    );
    if let Some(orphans) = led.get(&-1).filter(|v| !v.is_empty()) {
        println!("\npartitions without a leader: {}", orphans.join(" "));
    }
    println!();
    if under.is_empty() {
        println!("under-replicated partitions: none");
    } else {
        let rows: Vec<Vec<String>> = under
            .iter()
            .map(|(t, p, missing)| {
                vec![
                    t.clone(),
                    p.partition.to_string(),
                    p.leader.to_string(),
                    ids(&p.replicas),
                    ids(&p.isr),
                    ids(missing),
                ]
            })
            .collect();
        println!("under-replicated partitions:");
        print!(
            "{}",
            table(
                &[
                    "TOPIC",
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "ISR",
                    "OUT OF SYNC"
                ],
                &rows
            )
        );
    }
    Ok(())
}
