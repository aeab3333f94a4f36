//! Kafka's ConsumerProtocol for the consumer: the subscription it sends in JoinGroup's
//! metadata and the assignment the leader hands out in SyncGroup, encoded and decoded by
//! strom-group's codec (the one the coordinator reads them with), and the range assignor.
//! Strom writes version 0, which every client reads.

use std::collections::BTreeMap;

use bytes::Bytes;
pub use strom_group::CONSUMER_PROTOCOL_TYPE;
use strom_group::{Assignment, Subscription, TopicPartitions};

use crate::error::ClientError;

/// The version Strom writes.
const WRITE_VERSION: i16 = 0;

/// Encodes a subscription to `topics`.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    Subscription {
        topics: topics.to_vec(),
        ..Subscription::default()
    }
    .encode(WRITE_VERSION)
}

/// The topics of a subscription.
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>, ClientError> {
    Subscription::decode(bytes)
        .map(|s| s.topics)
        .map_err(|e| ClientError::Protocol(format!("malformed subscription: {e}")))
}

/// Encodes an assignment of partitions per topic.
pub fn encode_assignment(assignment: &BTreeMap<String, Vec<i32>>) -> Bytes {
    Assignment {
        partitions: assignment
            .iter()
            .map(|(topic, partitions)| TopicPartitions {
                topic: topic.clone(),
                partitions: partitions.clone(),
            })
            .collect(),
        user_data: None,
    }
    .encode(WRITE_VERSION)
}

/// The partitions per topic of an assignment; empty bytes are an empty assignment.
pub fn decode_assignment(bytes: &[u8]) -> Result<BTreeMap<String, Vec<i32>>, ClientError> {
    let a = Assignment::decode(bytes)
        .map_err(|e| ClientError::Protocol(format!("malformed assignment: {e}")))?;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in a.partitions {
        out.entry(tp.topic).or_default().extend(tp.partitions);
    }
    Ok(out)
}

/// The range assignor: for each topic, its partitions in order are split into
/// contiguous ranges over the members subscribed to it, sorted by member id; the first
/// `partitions % members` members get one extra.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = count / members.len() as i32;
        let extra = count % members.len() as i32;
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let n = per + i32::from((i as i32) < extra);
            if n > 0 {
                let ps: Vec<i32> = (next..next + n).collect();
                out.get_mut(*m)
                    .expect("member listed")
                    .insert(topic.clone(), ps);
            }
            next += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            decode_subscription(&encode_subscription(&topics)).unwrap(),
            topics
        );
        let a: BTreeMap<String, Vec<i32>> = [("a".to_string(), vec![0, 2])].into_iter().collect();
        assert_eq!(decode_assignment(&encode_assignment(&a)).unwrap(), a);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0]).is_err());
    }

    #[test]
    fn range_assignor_splits_contiguously() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("m1".to_string(), vec!["t".to_string()]),
            ("m2".to_string(), vec!["t".to_string(), "u".to_string()]),
        ]
        .into_iter()
        .collect();
        let counts: BTreeMap<String, i32> = [("t".to_string(), 5), ("u".to_string(), 1)]
            .into_iter()
            .collect();
        let a = range_assign(&subs, &counts);
        assert_eq!(a["m1"]["t"], vec![0, 1, 2]);
        assert_eq!(a["m2"]["t"], vec![3, 4]);
        assert_eq!(a["m2"]["u"], vec![0]);
        assert!(!a["m1"].contains_key("u"));
    }
}
