//! `strom group list|describe|reset-offsets|delete`.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use strom_client::{Client, GroupDescription, OffsetSpec};

use crate::cli::{Common, block_on, parse_datetime, print_json, table};

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups
    List(ListArgs),
    /// Show a group's state, members and, per partition, committed offset, end offset and lag
    Describe(NameArgs),
    /// Move a group's committed offsets (prints the plan unless --execute)
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets (only when it has no members)
    Delete(NameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The group id
    pub group: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])))]
pub(crate) struct ResetArgs {
    /// The group whose offsets move
    #[arg(long, short = 'g')]
    pub group: String,
    /// The topic whose partitions move
    #[arg(long, short = 't')]
    pub topic: String,
    /// Only these partitions (repeatable) [default: all]
    #[arg(long, short = 'p')]
    pub partition: Vec<i32>,
    /// To each partition's first offset
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's end (nothing left to consume)
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after this RFC 3339 datetime
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// To this offset (clamped to the partition's range)
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to the partition's range
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (the group must have no members: Empty or Dead)
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(cmd: GroupCommand) -> anyhow::Result<()> {
    block_on(async move {
        match cmd {
            GroupCommand::List(a) => list(a).await,
            GroupCommand::Describe(a) => describe(a).await,
            GroupCommand::ResetOffsets(a) => reset(a).await,
            GroupCommand::Delete(a) => delete(a).await,
        }
    })
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let groups = client.list_groups().await?;
    if a.common.json() {
        let v: Vec<_> = groups
            .iter()
            .map(|g| json!({"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state}))
            .collect();
        print_json(&json!(v));
    } else {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| vec![g.group_id.clone(), g.state.clone(), g.protocol_type.clone()])
            .collect();
        print!("{}", table(&["GROUP", "STATE", "PROTOCOL TYPE"], &rows));
    }
    Ok(())
}

/// One partition's line of a group description.
struct Lag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    end: i64,
    owner: Option<String>,
}

async fn lags(client: &Client, group: &GroupDescription) -> anyhow::Result<Vec<Lag>> {
    let committed = client.committed_offsets(&group.group_id).await?;
    let mut topics: BTreeMap<String, ()> = committed.keys().map(|t| (t.clone(), ())).collect();
    for m in &group.members {
        topics.extend(m.assignment.keys().map(|t| (t.clone(), ())));
    }
    let mut out = Vec::new();
    for topic in topics.keys() {
        let partitions = match client.partitions(topic).await {
            Ok(ps) => ps,
            // Offsets of a deleted topic: nothing to measure against.
            Err(strom_client::ClientError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let ends = client
            .list_offsets(topic, &partitions, OffsetSpec::Latest)
            .await?;
        let assigned_or_committed: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| {
                committed.get(topic).is_some_and(|c| c.contains_key(p))
                    || group
                        .members
                        .iter()
                        .any(|m| m.assignment.get(topic).is_some_and(|a| a.contains(p)))
            })
            .collect();
        for p in assigned_or_committed {
            out.push(Lag {
                topic: topic.clone(),
                partition: p,
                committed: committed.get(topic).and_then(|c| c.get(&p)).copied(),
                end: ends.get(&p).copied().unwrap_or(0),
                owner: group
                    .members
                    .iter()
                    .find(|m| m.assignment.get(topic).is_some_and(|a| a.contains(&p)))
                    .map(|m| m.member_id.clone()),
            });
        }
    }
    Ok(out)
}

fn lag_of(l: &Lag) -> i64 {
    // Without a commit the group would start per its reset policy; count it all.
    (l.end - l.committed.unwrap_or(0)).max(0)
}

async fn describe(a: NameArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let g = client.describe_group(&a.group).await?;
    let lags = lags(&client, &g).await?;
    if a.common.json() {
        let members: Vec<_> = g
            .members
            .iter()
            .map(|m| {
                json!({
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.client_host,
                    "assignment": m.assignment,
                })
            })
            .collect();
        let offsets: Vec<_> = lags
            .iter()
            .map(|l| {
                json!({
                    "topic": l.topic,
                    "partition": l.partition,
                    "committed_offset": l.committed,
                    "end_offset": l.end,
                    "lag": lag_of(l),
                    "member_id": l.owner,
                })
            })
            .collect();
        print_json(&json!({
            "group": g.group_id,
            "state": g.state,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol,
            "members": members,
            "offsets": offsets,
            "total_lag": lags.iter().map(lag_of).sum::<i64>(),
        }));
        return Ok(());
    }
    println!("group:     {}", g.group_id);
    println!("state:     {}", g.state);
    if !g.protocol.is_empty() {
        println!("assignor:  {}", g.protocol);
    }
    println!("members:   {}", g.members.len());
    println!("total lag: {}", lags.iter().map(lag_of).sum::<i64>());
    if !g.members.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = g
            .members
            .iter()
            .map(|m| {
                let assignment = m
                    .assignment
                    .iter()
                    .map(|(t, ps)| format!("{t}:{}", crate::cli::ids(ps)))
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    assignment,
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["MEMBER", "CLIENT ID", "HOST", "ASSIGNMENT"], &rows)
        );
    }
    if !lags.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = lags
            .iter()
            .map(|l| {
                vec![
                    l.topic.clone(),
                    l.partition.to_string(),
                    l.committed.map_or("-".into(), |c| c.to_string()),
                    l.end.to_string(),
                    lag_of(l).to_string(),
                    l.owner.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"],
                &rows
            )
        );
    }
    Ok(())
}

async fn reset(a: ResetArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    let all = client.partitions(&a.topic).await?;
    let partitions = if a.partition.is_empty() {
        all.clone()
    } else {
        a.partition.clone()
    };
    for p in &partitions {
        if !all.contains(p) {
            bail!(
                "topic {} has no partition {p} (it has {})",
                a.topic,
                all.len()
            );
        }
    }
    let group = client.describe_group(&a.group).await?;
    let committed = client
        .committed_offsets(&a.group)
        .await?
        .remove(&a.topic)
        .unwrap_or_default();
    let earliest = client
        .list_offsets(&a.topic, &partitions, OffsetSpec::Earliest)
        .await?;
    let latest = client
        .list_offsets(&a.topic, &partitions, OffsetSpec::Latest)
        .await?;
    let targets: BTreeMap<i32, i64> = if a.to_earliest {
        earliest.clone()
    } else if a.to_latest {
        latest.clone()
    } else if let Some(ts) = a.to_datetime {
        client
            .list_offsets(&a.topic, &partitions, OffsetSpec::Timestamp(ts))
            .await?
    } else if let Some(o) = a.to_offset {
        partitions.iter().map(|&p| (p, o)).collect()
    } else {
        let n = a.shift_by.unwrap_or(0);
        partitions
            .iter()
            .map(|&p| {
                let from = committed.get(&p).copied().unwrap_or(earliest[&p]);
                (p, from.saturating_add(n))
            })
            .collect()
    };
    let plan: BTreeMap<i32, i64> = targets
        .into_iter()
        .map(|(p, o)| (p, o.clamp(earliest[&p], latest[&p])))
        .collect();

    if a.execute {
        if !matches!(group.state.as_str(), "Empty" | "Dead") {
            bail!(
                "group {} is {} with {} member(s): offsets can only be reset while it has none (stop its consumers first)",
                a.group,
                group.state,
                group.members.len()
            );
        }
        let offsets = [(a.topic.clone(), plan.clone())].into_iter().collect();
        client.commit_offsets(&a.group, -1, "", &offsets).await?;
    }
    if a.common.json() {
        let rows: Vec<_> = plan
            .iter()
            .map(|(p, o)| {
                json!({"topic": a.topic, "partition": p, "current_offset": committed.get(p), "new_offset": o})
            })
            .collect();
        print_json(&json!({"group": a.group, "executed": a.execute, "offsets": rows}));
    } else {
        let rows: Vec<Vec<String>> = plan
            .iter()
            .map(|(p, o)| {
                vec![
                    a.topic.clone(),
                    p.to_string(),
                    committed.get(p).map_or("-".into(), i64::to_string),
                    o.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["TOPIC", "PARTITION", "CURRENT", "NEW"], &rows)
        );
        if a.execute {
            println!("committed the new offsets of group {}", a.group);
        } else {
            println!("dry run: nothing changed; add --execute to commit the new offsets");
        }
    }
    Ok(())
}

async fn delete(a: NameArgs) -> anyhow::Result<()> {
    let client = a.common.connect().await?;
    client.delete_group(&a.group).await?;
    if a.common.json() {
        print_json(&json!({"group": a.group, "deleted": true}));
    } else {
        println!("deleted group {}", a.group);
    }
    Ok(())
}
