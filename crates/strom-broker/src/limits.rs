//! Bounds on topics and partitions, checked before anything is allocated for them.
//!
//! A partition count comes from the client as one INT32: CreateTopics and
//! CreatePartitions with 2^31-1 would otherwise make the broker build a replica list per
//! partition (51 GB) and abort. Kafka has no hard per-topic limit but real brokers refuse
//! what they cannot hold (Redpanda: `topic_partitions_per_shard`); every partition here
//! is a Raft group with its own log directory, so the node-wide bound is the one that
//! protects the node, and the per-topic bound keeps a single request's cost small enough
//! to check exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_wire::ErrorCode;

use crate::config::BrokerConfig;
use crate::errors::Failure;
use crate::topics::TopicMeta;

/// Refuses a topic of `partitions` partitions (in total, after the change) when it is
/// more than `max_partitions_per_topic`. Called before replicas are assigned, so the
/// assignment's size is bounded by the setting.
pub fn check_topic_partitions(
    config: &BrokerConfig,
    name: &str,
    partitions: i64,
) -> Result<(), Failure> {
    let max = config.max_partitions_per_topic;
    if partitions > i64::from(max) {
        return Err(Failure::new(
            ErrorCode::InvalidPartitions,
            format!(
                "topic '{name}' would have {partitions} partitions; this cluster allows at most \
                 {max} per topic (max_partitions_per_topic)"
            ),
        ));
    }
    Ok(())
}

/// Refuses `added` new partition replicas (per partition, the broker ids that would hold
/// it) when any node would then hold more than `max_partitions_per_node` replicas.
pub fn check_node_partitions(
    config: &BrokerConfig,
    existing: &[Arc<TopicMeta>],
    added: &[Vec<i32>],
) -> Result<(), Failure> {
    let mut adding: BTreeMap<i32, u64> = BTreeMap::new();
    for id in added.iter().flatten() {
        *adding.entry(*id).or_default() += 1;
    }
    if adding.is_empty() {
        return Ok(());
    }
    let mut held: BTreeMap<i32, u64> = BTreeMap::new();
    for t in existing {
        for id in t.replicas.iter().flatten() {
            if adding.contains_key(id) {
                *held.entry(*id).or_default() += 1;
            }
        }
    }
    let max = config.max_partitions_per_node;
    for (id, n) in adding {
        let now = held.get(&id).copied().unwrap_or(0);
        if now + n > max {
            return Err(Failure::new(
                ErrorCode::PolicyViolation,
                format!(
                    "broker {id} holds {now} partition replicas; {n} more would exceed its limit \
                     of {max} (max_partitions_per_node)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawSettings;

    fn config(per_topic: &str, per_node: &str) -> BrokerConfig {
        let mut raw = RawSettings::default();
        raw.set("max_partitions_per_topic", per_topic, "test")
            .unwrap();
        raw.set("max_partitions_per_node", per_node, "test")
            .unwrap();
        raw.build().unwrap()
    }

    fn topic(replicas: Vec<Vec<i32>>) -> Arc<TopicMeta> {
        Arc::new(TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: replicas.len() as i32,
            configs: BTreeMap::new(),
            internal: false,
            replicas,
            groups: Vec::new(),
        })
    }

    #[test]
    fn per_topic_bound_is_inclusive_and_names_the_setting() {
        let c = config("10", "100");
        assert!(check_topic_partitions(&c, "t", 10).is_ok());
        let e = check_topic_partitions(&c, "t", i64::from(i32::MAX)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPartitions);
        assert!(
            e.message.contains("max_partitions_per_topic"),
            "{}",
            e.message
        );
    }

    #[test]
    fn per_node_bound_counts_replicas_each_node_would_hold() {
        let c = config("100", "3");
        let existing = [topic(vec![vec![1, 2], vec![2, 1]])];
        // Node 1 holds 2; one more is fine, two more are not.
        assert!(check_node_partitions(&c, &existing, &[vec![1, 2]]).is_ok());
        let e = check_node_partitions(&c, &existing, &[vec![1], vec![1]]).unwrap_err();
        assert_eq!(e.code, ErrorCode::PolicyViolation);
        assert!(e.message.contains("broker 1"), "{}", e.message);
        // Node 3 holds none.
        assert!(check_node_partitions(&c, &existing, &[vec![3], vec![3], vec![3]]).is_ok());
    }
}
