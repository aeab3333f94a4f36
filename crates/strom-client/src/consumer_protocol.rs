//! Kafka's ConsumerProtocol: the subscription a consumer sends in JoinGroup's metadata
//! and the assignment the leader hands out in SyncGroup, each an INT16 version followed
//! by the message body at that version (kafka-protocol's `ConsumerProtocolSubscription`
//! and `ConsumerProtocolAssignment`). Strom writes version 0, which every client reads.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

use crate::error::ClientError;

/// The version Strom writes.
const WRITE_VERSION: i16 = 0;

/// The protocol type of Kafka's consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Encodes a subscription to `topics`.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(WRITE_VERSION);
    sub.encode(&mut buf, WRITE_VERSION)
        .expect("a v0 subscription always encodes");
    buf.freeze()
}

/// The topics of a subscription.
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>, ClientError> {
    let (version, mut body) = split_version(bytes, "subscription")?;
    let sub = ConsumerProtocolSubscription::decode(&mut body, version)
        .map_err(|e| ClientError::Protocol(format!("malformed subscription: {e}")))?;
    Ok(sub.topics.iter().map(|t| t.to_string()).collect())
}

/// Encodes an assignment of partitions per topic.
pub fn encode_assignment(assignment: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(WRITE_VERSION);
    a.encode(&mut buf, WRITE_VERSION)
        .expect("a v0 assignment always encodes");
    buf.freeze()
}

/// The partitions per topic of an assignment; empty bytes are an empty assignment.
pub fn decode_assignment(bytes: &[u8]) -> Result<BTreeMap<String, Vec<i32>>, ClientError> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (version, mut body) = split_version(bytes, "assignment")?;
    let a = ConsumerProtocolAssignment::decode(&mut body, version)
        .map_err(|e| ClientError::Protocol(format!("malformed assignment: {e}")))?;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in a.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    Ok(out)
}

/// Reads the version prefix. Newer versions than kafka-protocol knows only add fields at
/// the end, so they are read as the newest it knows.
fn split_version(bytes: &[u8], what: &str) -> Result<(i16, Bytes), ClientError> {
    let mut b = Bytes::copy_from_slice(bytes);
    if b.len() < 2 {
        return Err(ClientError::Protocol(format!(
            "{what} shorter than its version"
        )));
    }
    let v = b.get_i16();
    if v < 0 {
        return Err(ClientError::Protocol(format!("{what} version {v}")));
    }
    Ok((v.min(ConsumerProtocolAssignment::VERSIONS.max), b))
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
