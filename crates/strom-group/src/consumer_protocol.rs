//! Kafka's consumer protocol (`protocol_type = "consumer"`): the subscription a consumer
//! sends in JoinGroup's metadata and the assignment the leader hands out in SyncGroup,
//! each an `int16` version followed by the message at that version. The one codec of
//! Strom for them: the coordinator reads which topics a member subscribes to (so
//! OffsetDelete can refuse to delete offsets a group still consumes, and offset expiry
//! can spare them) and which partitions it was assigned (for lag reports); strom-client's
//! consumer writes and reads both.
//!
//! Layouts (Kafka's `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`,
//! versions 0-3, non-flexible in every version):
//!
//! ```text
//! Subscription:
//!     version           int16
//!     topics            array of string
//!     user_data         nullable bytes
//!     owned_partitions  array of TopicPartitions   v1+
//!     generation_id     int32 (-1: none)           v2+
//!     rack_id           nullable string            v3+
//! Assignment (the same in every version):
//!     version           int16
//!     assigned          array of TopicPartitions
//!     user_data         nullable bytes
//! TopicPartitions:
//!     topic             string
//!     partitions        array of int32
//! ```
//!
//! Later versions only append fields, so a version newer than 3 is read as version 3 and
//! what follows is ignored, as Kafka's own clients do. Bytes after the known fields are
//! ignored in every version for the same reason.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::error::GroupError;
use crate::records::{Reader, Writer};

/// The protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The newest version of the consumer protocol this codec knows.
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

const SUBSCRIPTION: &str = "ConsumerProtocolSubscription";
const ASSIGNMENT: &str = "ConsumerProtocolAssignment";

/// A topic and partitions of it (an assignment's entries, a subscription's owned
/// partitions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// What a consumer sends in JoinGroup's protocol metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Opaque to everyone but the assignor.
    pub user_data: Option<Bytes>,
    /// The partitions the member holds now (v1+; cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartitions>,
    /// The generation the member last joined (v2+; -1 when none or not sent).
    pub generation_id: i32,
    /// The member's rack (v3+; rack-aware assignors).
    pub rack_id: Option<String>,
}

/// What the group leader hands each member in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Per topic, in the leader's order.
    pub partitions: Vec<TopicPartitions>,
    /// Opaque to everyone but the assignor.
    pub user_data: Option<Bytes>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// Reads a serialized subscription. Fields its version does not have keep their
    /// defaults.
    pub fn decode(bytes: &[u8]) -> Result<Subscription, GroupError> {
        let mut r = Reader::new(bytes, SUBSCRIPTION);
        let version = read_version(&mut r, SUBSCRIPTION)?;
        let n = r.array_len(2)?;
        let mut sub = Subscription {
            topics: (0..n).map(|_| r.string()).collect::<Result<_, _>>()?,
            user_data: r.nullable_bytes()?,
            ..Subscription::default()
        };
        if version >= 1 {
            sub.owned_partitions = read_topic_partitions(&mut r)?;
        }
        if version >= 2 {
            sub.generation_id = r.i32()?;
        }
        if version >= 3 {
            sub.rack_id = r.nullable_string()?;
        }
        Ok(sub)
    }

    /// Writes the subscription at `version` (clamped to 0..=3): the fields the version
    /// does not have are left out.
    pub fn encode(&self, version: i16) -> Bytes {
        let version = version.clamp(0, CONSUMER_PROTOCOL_VERSION);
        let mut w = Writer::new();
        w.i16(version);
        w.array_len(self.topics.len());
        for t in &self.topics {
            w.string(t);
        }
        write_nullable_bytes(&mut w, self.user_data.as_deref());
        if version >= 1 {
            write_topic_partitions(&mut w, &self.owned_partitions);
        }
        if version >= 2 {
            w.i32(self.generation_id);
        }
        if version >= 3 {
            w.nullable_string(self.rack_id.as_deref());
        }
        w.finish()
    }
}

impl Assignment {
    /// Reads a serialized assignment. Empty bytes are the empty assignment: Kafka's
    /// coordinator hands them to members the leader assigned nothing.
    pub fn decode(bytes: &[u8]) -> Result<Assignment, GroupError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = Reader::new(bytes, ASSIGNMENT);
        read_version(&mut r, ASSIGNMENT)?;
        Ok(Assignment {
            partitions: read_topic_partitions(&mut r)?,
            user_data: r.nullable_bytes()?,
        })
    }

    /// Writes the assignment at `version` (clamped to 0..=3; all have the same layout).
    pub fn encode(&self, version: i16) -> Bytes {
        let mut w = Writer::new();
        w.i16(version.clamp(0, CONSUMER_PROTOCOL_VERSION));
        write_topic_partitions(&mut w, &self.partitions);
        write_nullable_bytes(&mut w, self.user_data.as_deref());
        w.finish()
    }
}

/// The topics of a serialized consumer subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Result<BTreeSet<String>, GroupError> {
    Ok(Subscription::decode(metadata)?.topics.into_iter().collect())
}

/// The `(topic, partition)`s of a serialized consumer assignment, in their order.
pub fn assigned_partitions(assignment: &[u8]) -> Result<Vec<(String, i32)>, GroupError> {
    let a = Assignment::decode(assignment)?;
    Ok(a.partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic;
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect())
}

fn read_version(r: &mut Reader<'_>, record: &'static str) -> Result<i16, GroupError> {
    let version = r.i16()?;
    if version < 0 {
        return Err(GroupError::UnsupportedVersion { record, version });
    }
    Ok(version)
}

fn read_topic_partitions(r: &mut Reader<'_>) -> Result<Vec<TopicPartitions>, GroupError> {
    // A topic takes at least its string length and its partition count.
    let n = r.array_len(6)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string()?;
        let count = r.array_len(4)?;
        let partitions = (0..count).map(|_| r.i32()).collect::<Result<_, _>>()?;
        out.push(TopicPartitions { topic, partitions });
    }
    Ok(out)
}

fn write_topic_partitions(w: &mut Writer, tps: &[TopicPartitions]) {
    w.array_len(tps.len());
    for tp in tps {
        w.string(&tp.topic);
        w.array_len(tp.partitions.len());
        for &p in &tp.partitions {
            w.i32(p);
        }
    }
}

fn write_nullable_bytes(w: &mut Writer, b: Option<&[u8]>) {
    match b {
        Some(b) => w.bytes(b),
        None => w.i32(-1),
    }
}

#[cfg(test)]
pub(crate) mod encode {
    //! Shorthands for tests: what a Kafka consumer sends, at version 0.
    use bytes::Bytes;

    use super::{Assignment, Subscription, TopicPartitions};

    /// A v0 subscription to `topics`.
    pub(crate) fn subscription(topics: &[&str]) -> Bytes {
        Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Subscription::default()
        }
        .encode(0)
    }

    /// A v0 assignment of `(topic, partitions)`.
    pub(crate) fn assignment(topics: &[(&str, &[i32])]) -> Bytes {
        Assignment {
            partitions: topics
                .iter()
                .map(|(t, ps)| TopicPartitions {
                    topic: t.to_string(),
                    partitions: ps.to_vec(),
                })
                .collect(),
            user_data: None,
        }
        .encode(0)
    }
}

#[cfg(test)]
#[path = "consumer_protocol_tests.rs"]
mod tests;
