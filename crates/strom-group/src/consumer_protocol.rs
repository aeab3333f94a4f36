//! Reading the parts of Kafka's consumer protocol (`protocol_type = "consumer"`) the
//! coordinator needs: which topics a member subscribes to (so OffsetDelete can refuse to
//! delete offsets a group still consumes, and offset expiry can spare them) and which
//! partitions it was assigned (for lag reports).
//!
//! Layouts (non-flexible in every version; later versions only append fields, so the
//! parts read here sit at the same place in all of them):
//! ```text
//! ConsumerProtocolSubscription:
//!     version: int16 | topics: array of string | user_data: nullable bytes
//!     | owned_partitions: array of {topic: string, partitions: array of int32}  [v1+]
//!     | generation_id: int32 [v2+] | rack_id: nullable string [v3+]
//! ConsumerProtocolAssignment:
//!     version: int16 | assigned_partitions: array of {topic: string,
//!     partitions: array of int32} | user_data: nullable bytes
//! ```

use std::collections::BTreeSet;

use crate::error::GroupError;
use crate::records::Reader;

/// The protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The topics of a serialized consumer subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Result<BTreeSet<String>, GroupError> {
    let mut r = Reader::new(metadata, "ConsumerProtocolSubscription");
    read_version(&mut r, "ConsumerProtocolSubscription")?;
    let n = r.array_len(2)?;
    let mut topics = BTreeSet::new();
    for _ in 0..n {
        topics.insert(r.string()?);
    }
    Ok(topics)
}

/// The `(topic, partition)`s of a serialized consumer assignment, in their order.
pub fn assigned_partitions(assignment: &[u8]) -> Result<Vec<(String, i32)>, GroupError> {
    let mut r = Reader::new(assignment, "ConsumerProtocolAssignment");
    read_version(&mut r, "ConsumerProtocolAssignment")?;
    let topics = r.array_len(6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let partitions = r.array_len(4)?;
        for _ in 0..partitions {
            out.push((topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

fn read_version(r: &mut Reader<'_>, record: &'static str) -> Result<i16, GroupError> {
    let version = r.i16()?;
    if version < 0 {
        return Err(GroupError::UnsupportedVersion { record, version });
    }
    Ok(version)
}

#[cfg(test)]
pub(crate) mod encode {
    //! Encoders for tests: what a Kafka consumer sends.
    use bytes::Bytes;

    use crate::records::Writer;

    /// A v0 subscription to `topics`.
    pub(crate) fn subscription(topics: &[&str]) -> Bytes {
        let mut w = Writer::new();
        w.i16(0);
        w.array_len(topics.len());
        for t in topics {
            w.string(t);
        }
        w.i32(-1); // null user data
        w.finish()
    }

    /// A v0 assignment of `(topic, partitions)`.
    pub(crate) fn assignment(topics: &[(&str, &[i32])]) -> Bytes {
        let mut w = Writer::new();
        w.i16(0);
        w.array_len(topics.len());
        for (t, parts) in topics {
            w.string(t);
            w.array_len(parts.len());
            for p in *parts {
                w.i32(*p);
            }
        }
        w.i32(-1);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Writer;

    #[test]
    fn reads_topics_of_a_v0_subscription() {
        let bytes = encode::subscription(&["b", "a"]);
        let topics: Vec<_> = subscribed_topics(&bytes).unwrap().into_iter().collect();
        assert_eq!(topics, ["a", "b"]);
    }

    #[test]
    fn reads_topics_of_a_v3_subscription() {
        // v3: topics, user data, owned partitions, generation, rack.
        let mut w = Writer::new();
        w.i16(3);
        w.array_len(1);
        w.string("orders");
        w.bytes(b"ud");
        w.array_len(1);
        w.string("orders");
        w.array_len(1);
        w.i32(0);
        w.i32(5);
        w.nullable_string(Some("rack-a"));
        let bytes = w.finish();
        let topics: Vec<_> = subscribed_topics(&bytes).unwrap().into_iter().collect();
        assert_eq!(topics, ["orders"]);
    }

    #[test]
    fn reads_an_assignment() {
        let bytes = encode::assignment(&[("a", &[0, 2]), ("b", &[1])]);
        assert_eq!(
            assigned_partitions(&bytes).unwrap(),
            [("a".into(), 0), ("a".into(), 2), ("b".into(), 1)]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(subscribed_topics(b"").is_err());
        assert!(subscribed_topics(&[0xff, 0xff]).is_err());
        assert!(subscribed_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
        assert!(assigned_partitions(&[0, 0, 0, 0, 0, 1, 0, 1]).is_err());
    }
}
