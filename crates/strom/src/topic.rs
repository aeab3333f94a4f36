//! `strom topic create|list|describe|delete|alter-config`.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;
use strom_client::{Client, ConfigChange, NewTopic, OffsetSpec};

use crate::cli::{Common, block_on, ids, parse_key_value, print_json, table};

#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic
    Create(CreateArgs),
    /// List topics with their partition counts
    List(ListArgs),
    /// Show a topic's partitions (leader, replicas, ISR, offsets) and configs
    Describe(NameArgs),
    /// Delete a topic and its data
    Delete(NameArgs),
    /// Change a topic's configs (incrementally: configs not named keep their values)
    AlterConfig(AlterArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The topic
    pub topic: String,
    /// Number of partitions [default: the broker's default_partitions]
    #[arg(long, short = 'p')]
    pub partitions: Option<i32>,
    /// Copies of each partition [default: the broker's choice]
    #[arg(long, short = 'r')]
    pub replication_factor: Option<i16>,
    /// A topic config, e.g. retention.ms=60000 (repeatable)
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Include internal topics (__consumer_offsets)
    #[arg(long)]
    pub internal: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The topic
    pub topic: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct AlterArgs {
    /// The topic
    pub topic: String,
    /// Set a config, e.g. retention.ms=60000 (repeatable)
    #[arg(long = "config", short = 'c', alias = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove a config so the broker default applies again (repeatable)
    #[arg(long = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(cmd: TopicCommand) -> anyhow::Result<()> {
    block_on(async move {
        match cmd {
            TopicCommand::Create(a) => create(a).await,
            TopicCommand::List(a) => list(a).await,
            TopicCommand::Describe(a) => describe(a).await,
            TopicCommand::Delete(a) => delete(a).await,
            TopicCommand::AlterConfig(a) => alter(a).await,
        }
    })
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let topic = NewTopic {
        name: a.topic.clone(),
        partitions: a.partitions.unwrap_or(-1),
        replication_factor: a.replication_factor.unwrap_or(-1),
        configs: a.configs,
    };
    let partitions = match client.create_topic(&topic).await? {
        Some(n) => n as usize,
        None => client.partitions(&a.topic).await?.len(),
    };
    if a.common.json() {
        print_json(&json!({"topic": a.topic, "created": true, "partitions": partitions}));
    } else {
        println!("created topic {} with {partitions} partitions", a.topic);
    }
    Ok(())
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let meta = client.metadata(None, false).await?;
    let topics: Vec<_> = meta
        .topics
        .iter()
        .filter(|t| a.internal || !t.internal)
        .collect();
    if a.common.json() {
        let v: Vec<_> = topics
            .iter()
            .map(|t| {
                json!({
                    "topic": t.name,
                    "topic_id": t.topic_id.to_string(),
                    "partitions": t.partitions.len(),
                    "replication_factor": t.partitions.first().map_or(0, |p| p.replicas.len()),
                    "internal": t.internal,
                })
            })
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = topics
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.partitions.len().to_string(),
                    t.partitions
                        .first()
                        .map_or(0, |p| p.replicas.len())
                        .to_string(),
                ]
            })
            .collect();
        print!("{}", table(&["TOPIC", "PARTITIONS", "REPLICAS"], &rows));
    }
    Ok(())
}

async fn describe(a: NameArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let (partitions, start, end, configs, info) = describe_data(&client, &a.topic).await?;
    if a.common.json() {
        let ps: Vec<_> = info
            .partitions
            .iter()
            .map(|p| {
                json!({
                    "partition": p.partition,
                    "leader": p.leader,
                    "leader_epoch": p.leader_epoch,
                    "replicas": p.replicas,
                    "isr": p.isr,
                    "earliest_offset": start.get(&p.partition),
                    "latest_offset": end.get(&p.partition),
                })
            })
            .collect();
        let cs: serde_json::Map<String, serde_json::Value> = configs
            .iter()
            .map(|c| (c.name.clone(), json!(c.value)))
            .collect();
        print_json(&json!({
            "topic": a.topic,
            "topic_id": info.topic_id.to_string(),
            "internal": info.internal,
            "partitions": ps,
            "configs": cs,
        }));
        return Ok(());
    }
    println!("topic:      {}", a.topic);
    println!("topic id:   {}", info.topic_id);
    println!("partitions: {}", partitions.len());
    println!();
    let rows: Vec<Vec<String>> = info
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.leader.to_string(),
                p.leader_epoch.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                start.get(&p.partition).map_or("-".into(), i64::to_string),
                end.get(&p.partition).map_or("-".into(), i64::to_string),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "EARLIEST",
                "LATEST"
            ],
            &rows
        )
    );
    println!();
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                if c.sensitive {
                    "(sensitive)".into()
                } else {
                    c.value.clone().unwrap_or_else(|| "-".into())
                },
                if c.is_default {
                    "default".into()
                } else {
                    "topic".into()
                },
            ]
        })
        .collect();
    print!("{}", table(&["CONFIG", "VALUE", "SOURCE"], &rows));
    Ok(())
}

type Describe = (
    Vec<i32>,
    std::collections::BTreeMap<i32, i64>,
    std::collections::BTreeMap<i32, i64>,
    Vec<strom_client::ConfigEntry>,
    strom_client::TopicInfo,
);

async fn describe_data(client: &Client, topic: &str) -> anyhow::Result<Describe> {
    let meta = client.metadata(Some(&[topic]), false).await?;
    let info = match meta.topic(topic) {
        Some(t) if t.error_code == 0 => t.clone(),
        _ => return Err(strom_client::ClientError::UnknownTopic(topic.to_owned()).into()),
    };
    let partitions: Vec<i32> = info.partitions.iter().map(|p| p.partition).collect();
    let start = client
        .list_offsets(topic, &partitions, OffsetSpec::Earliest)
        .await?;
    let end = client
        .list_offsets(topic, &partitions, OffsetSpec::Latest)
        .await?;
    let configs = client.describe_topic_configs(topic).await?;
    Ok((partitions, start, end, configs, info))
}

async fn delete(a: NameArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    client.delete_topic(&a.topic).await?;
    if a.common.json() {
        print_json(&json!({"topic": a.topic, "deleted": true}));
    } else {
        println!("deleted topic {}", a.topic);
    }
    Ok(())
}

async fn alter(a: AlterArgs) -> anyhow::Result<()> {
    if a.set.is_empty() && a.delete.is_empty() {
        bail!("nothing to change: give --config KEY=VALUE or --delete KEY");
    }
    let client = a.common.connect().await?;
    let mut changes: Vec<ConfigChange> = a
        .set
        .iter()
        .map(|(k, v)| ConfigChange::Set(k.clone(), v.clone()))
        .collect();
    changes.extend(a.delete.iter().map(|k| ConfigChange::Delete(k.clone())));
    client.alter_topic_configs(&a.topic, &changes).await?;
    if a.common.json() {
        let set: serde_json::Map<String, serde_json::Value> =
            a.set.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        print_json(&json!({"topic": a.topic, "set": set, "deleted": a.delete}));
    } else {
        for (k, v) in &a.set {
            println!("set {k}={v} on topic {}", a.topic);
        }
        for k in &a.delete {
            println!("removed {k} from topic {}", a.topic);
        }
    }
    Ok(())
}
