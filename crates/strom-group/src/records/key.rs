//! Record keys of `__consumer_offsets`. The key's leading `int16` says which kind of
//! record it is (Kafka calls it the key version; since KIP-848 it is the record type).
//!
//! Layouts (non-flexible, see `codec.rs` for the primitives):
//! ```text
//! OffsetCommitKey   (version 0 and 1, same fields):
//!     version: int16 = 1 | group: string | topic: string | partition: int32
//! GroupMetadataKey  (version 2):
//!     version: int16 = 2 | group: string
//! ```
//! Compaction keeps the newest record per key, so one key per committed partition and one
//! per group is exactly the state to keep: the latest offset of each partition and the
//! latest metadata of each group. A tombstone (null value) deletes the key.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use crate::error::GroupError;

/// Key version Kafka (0.10+) writes for offset commits.
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of the pre-0.10 offset commit key, same layout; read, never written.
pub const LEGACY_OFFSET_COMMIT_KEY_VERSION: i16 = 0;
/// Key version of group metadata.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// The committed offset of one partition for one group.
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    /// The membership and assignment of one group.
    GroupMetadata { group: String },
    /// A record type this coordinator does not manage (KIP-848 consumer groups, share
    /// groups, transactions markers of newer Kafka versions). Replay skips it.
    Other { version: i16 },
}

impl RecordKey {
    /// The group the record belongs to, if it is one of ours.
    pub fn group(&self) -> Option<&str> {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => {
                Some(group)
            }
            RecordKey::Other { .. } => None,
        }
    }

    /// The key bytes. `Other` keys are written as their bare version.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                w.i16(OFFSET_COMMIT_KEY_VERSION);
                w.string(group);
                w.string(topic);
                w.i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                w.i16(GROUP_METADATA_KEY_VERSION);
                w.string(group);
            }
            RecordKey::Other { version } => w.i16(*version),
        }
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<RecordKey, GroupError> {
        let mut r = Reader::new(buf, "record key");
        let version = r.i16()?;
        let key = match version {
            LEGACY_OFFSET_COMMIT_KEY_VERSION | OFFSET_COMMIT_KEY_VERSION => {
                RecordKey::OffsetCommit {
                    group: r.string()?,
                    topic: r.string()?,
                    partition: r.i32()?,
                }
            }
            GROUP_METADATA_KEY_VERSION => RecordKey::GroupMetadata { group: r.string()? },
            other => return Ok(RecordKey::Other { version: other }),
        };
        if r.remaining() != 0 {
            return Err(GroupError::Corrupt {
                record: "record key",
                position: buf.len() - r.remaining(),
                reason: format!("{} trailing bytes", r.remaining()),
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_key_layout() {
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        let bytes = key.encode();
        assert_eq!(&bytes[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert_eq!(RecordKey::decode(&bytes).unwrap(), key);
    }

    #[test]
    fn legacy_offset_commit_key_is_read() {
        let bytes = [0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7];
        assert_eq!(
            RecordKey::decode(&bytes).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 7
            }
        );
    }

    #[test]
    fn group_metadata_key_layout() {
        let key = RecordKey::GroupMetadata {
            group: "group-1".into(),
        };
        let bytes = key.encode();
        assert_eq!(&bytes[..4], &[0, 2, 0, 7]);
        assert_eq!(&bytes[4..], b"group-1");
        assert_eq!(RecordKey::decode(&bytes).unwrap(), key);
        assert_eq!(key.group(), Some("group-1"));
    }

    #[test]
    fn other_record_types_are_recognised_not_rejected() {
        // A KIP-848 ConsumerGroupMetadataKey (type 3) followed by its fields.
        let bytes = [0, 3, 0, 1, b'g'];
        assert_eq!(
            RecordKey::decode(&bytes).unwrap(),
            RecordKey::Other { version: 3 }
        );
        assert_eq!(RecordKey::Other { version: 3 }.group(), None);
    }

    #[test]
    fn truncated_and_padded_keys_are_corrupt() {
        let bytes = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(RecordKey::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(RecordKey::decode(&padded).is_err());
    }
}
