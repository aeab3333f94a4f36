//! `TransactionLogValue`, the state of one transactional id.
//!
//! ```text
//! version                         int16   0 or 1 (1 is flexible)
//! ProducerId                      int64
//! ProducerEpoch                   int16
//! TransactionTimeoutMs            int32
//! TransactionStatus               int8    TransactionState::id
//! TransactionPartitions           nullable array (v0: int32 count, -1 null;
//!                                  v1: uvarint count+1, 0 null) of
//!   Topic                         string (v1: compact)
//!   PartitionIds                  array of int32 (v1: compact)
//!   (v1) tagged fields            none defined
//! TransactionLastUpdateTimestampMs int64
//! TransactionStartTimestampMs     int64
//! (v1) tagged fields, each written only when it differs from its default:
//!   tag 0 PreviousProducerId      int64, default -1
//!   tag 1 NextProducerId          int64, default -1
//!   tag 2 ClientTransactionVersion int16, default 0
//! ```
//! Kafka writes null partitions for an Empty transaction. The last producer epoch is not
//! part of the record: a loaded transaction has none (-1), as in Kafka.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use crate::error::TxnError;

/// The version this coordinator writes: the flexible one, which carries the previous and
/// next producer ids and the client's transaction version (KIP-890).
pub const TRANSACTION_LOG_VALUE_VERSION: i16 = 1;

const WHAT: &str = "transaction log value";

/// The topic and partitions of one topic in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionsSchema {
    pub topic: String,
    pub partition_ids: Vec<i32>,
}

/// One transactional id's state, field by field as in Kafka's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    /// v1 only (tag 0); -1 when absent.
    pub previous_producer_id: i64,
    /// v1 only (tag 1); -1 when absent.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    /// A [`TransactionState`](crate::TransactionState) number.
    pub transaction_status: i8,
    /// `None` is written as a null array (Kafka's choice for Empty transactions).
    pub transaction_partitions: Option<Vec<PartitionsSchema>>,
    pub transaction_last_update_timestamp_ms: i64,
    pub transaction_start_timestamp_ms: i64,
    /// v1 only (tag 2); 0 when absent.
    pub client_transaction_version: i16,
}

impl TransactionLogValue {
    /// The value in `version` (0 or 1), prefixed with the version. Version 0 has no room
    /// for the tagged fields, which are then dropped.
    pub fn encode(&self, version: i16) -> Bytes {
        let flexible = version >= 1;
        let mut w = Writer::default();
        w.i16(version);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.i32(self.transaction_timeout_ms);
        w.i8(self.transaction_status);
        match (&self.transaction_partitions, flexible) {
            (None, false) => w.i32(-1),
            (None, true) => w.uvarint(0),
            (Some(topics), false) => {
                w.i32(topics.len() as i32);
                for t in topics {
                    w.string(&t.topic);
                    w.i32(t.partition_ids.len() as i32);
                    t.partition_ids.iter().for_each(|&p| w.i32(p));
                }
            }
            (Some(topics), true) => {
                w.uvarint(topics.len() as u32 + 1);
                for t in topics {
                    w.compact_string(&t.topic);
                    w.uvarint(t.partition_ids.len() as u32 + 1);
                    t.partition_ids.iter().for_each(|&p| w.i32(p));
                    w.uvarint(0);
                }
            }
        }
        w.i64(self.transaction_last_update_timestamp_ms);
        w.i64(self.transaction_start_timestamp_ms);
        if flexible {
            let previous = self.previous_producer_id != -1;
            let next = self.next_producer_id != -1;
            let version = self.client_transaction_version != 0;
            w.uvarint(u32::from(previous) + u32::from(next) + u32::from(version));
            if previous {
                w.uvarint(0);
                w.uvarint(8);
                w.i64(self.previous_producer_id);
            }
            if next {
                w.uvarint(1);
                w.uvarint(8);
                w.i64(self.next_producer_id);
            }
            if version {
                w.uvarint(2);
                w.uvarint(2);
                w.i16(self.client_transaction_version);
            }
        }
        w.finish()
    }

    /// The version and the value. Versions other than 0 and 1 are
    /// [`TxnError::UnsupportedVersion`]; unknown tagged fields are skipped.
    pub fn decode(buf: &[u8]) -> Result<(i16, TransactionLogValue), TxnError> {
        let mut r = Reader::new(buf, WHAT);
        let version = r.i16()?;
        if !(0..=1).contains(&version) {
            return Err(TxnError::UnsupportedVersion {
                record: WHAT,
                version,
            });
        }
        let flexible = version == 1;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let transaction_timeout_ms = r.i32()?;
        let transaction_status = r.i8()?;
        let count = if flexible {
            r.compact_nullable_array_len(3)?
        } else {
            r.nullable_array_len(6)?
        };
        let transaction_partitions = match count {
            None => None,
            Some(n) => {
                let mut topics = Vec::with_capacity(n);
                for _ in 0..n {
                    topics.push(read_partitions(&mut r, flexible)?);
                }
                Some(topics)
            }
        };
        let mut value = TransactionLogValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            transaction_timeout_ms,
            transaction_status,
            transaction_partitions,
            transaction_last_update_timestamp_ms: r.i64()?,
            transaction_start_timestamp_ms: r.i64()?,
            client_transaction_version: 0,
        };
        if flexible {
            read_tagged_fields(&mut r, &mut value)?;
        }
        r.finish()?;
        Ok((version, value))
    }
}

fn read_partitions(r: &mut Reader<'_>, flexible: bool) -> Result<PartitionsSchema, TxnError> {
    let topic = if flexible {
        r.compact_string()?
    } else {
        r.string()?
    };
    let n = if flexible {
        r.compact_array_len(4)?
    } else {
        r.array_len(4)?
    };
    let mut partition_ids = Vec::with_capacity(n);
    for _ in 0..n {
        partition_ids.push(r.i32()?);
    }
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(PartitionsSchema {
        topic,
        partition_ids,
    })
}

/// The top-level tagged fields of version 1: the three Kafka defines are read (their
/// sizes checked), any other is skipped.
fn read_tagged_fields(r: &mut Reader<'_>, value: &mut TransactionLogValue) -> Result<(), TxnError> {
    let count = r.uvarint()?;
    for _ in 0..count {
        let tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        let data = r.take(size)?;
        let expected = match tag {
            0 | 1 => 8,
            2 => 2,
            _ => continue,
        };
        if size != expected {
            return Err(r.corrupt(format!(
                "tagged field {tag} has {size} bytes, not {expected}"
            )));
        }
        let mut field = Reader::new(data, WHAT);
        match tag {
            0 => value.previous_producer_id = field.i64()?,
            1 => value.next_producer_id = field.i64()?,
            _ => value.client_transaction_version = field.i16()?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TransactionLogValue {
        TransactionLogValue {
            producer_id: 1000,
            previous_producer_id: 1000,
            next_producer_id: -1,
            producer_epoch: 5,
            transaction_timeout_ms: 60_000,
            transaction_status: 1,
            transaction_partitions: Some(vec![PartitionsSchema {
                topic: "t".into(),
                partition_ids: vec![0, 2],
            }]),
            transaction_last_update_timestamp_ms: 2000,
            transaction_start_timestamp_ms: 1500,
            client_transaction_version: 2,
        }
    }

    /// Derived by hand from TransactionLogValue.json: v1 is flexible, so the partitions
    /// array and its strings are compact, the nested struct ends with an empty tagged
    /// section, and only the non-default tagged fields (0 and 2, not 1) are written, in
    /// tag order.
    const SAMPLE_V1: &[u8] = &[
        0x00, 0x01, // version 1
        0, 0, 0, 0, 0, 0, 0x03, 0xE8, // ProducerId 1000
        0x00, 0x05, // ProducerEpoch 5
        0x00, 0x00, 0xEA, 0x60, // TransactionTimeoutMs 60000
        0x01, // TransactionStatus Ongoing
        0x02, // one topic (count + 1)
        0x02, b't', // Topic "t" (length + 1)
        0x03, 0, 0, 0, 0, 0, 0, 0, 2,    // PartitionIds [0, 2] (count + 1)
        0x00, // no tagged fields in PartitionsSchema
        0, 0, 0, 0, 0, 0, 0x07, 0xD0, // LastUpdate 2000
        0, 0, 0, 0, 0, 0, 0x05, 0xDC, // Start 1500
        0x02, // two tagged fields
        0x00, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xE8, // tag 0 PreviousProducerId 1000
        0x02, 0x02, 0x00, 0x02, // tag 2 ClientTransactionVersion 2
    ];

    /// Version 0: fixed-width lengths, no tagged fields.
    const SAMPLE_V0: &[u8] = &[
        0x00, 0x00, // version 0
        0, 0, 0, 0, 0, 0, 0x03, 0xE8, // ProducerId
        0x00, 0x05, // ProducerEpoch
        0x00, 0x00, 0xEA, 0x60, // TransactionTimeoutMs
        0x01, // TransactionStatus
        0, 0, 0, 1, // one topic
        0, 1, b't', // Topic
        0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // PartitionIds
        0, 0, 0, 0, 0, 0, 0x07, 0xD0, // LastUpdate
        0, 0, 0, 0, 0, 0, 0x05, 0xDC, // Start
    ];

    #[test]
    fn v1_layout_is_byte_exact() {
        assert_eq!(&sample().encode(1)[..], SAMPLE_V1);
        assert_eq!(
            TransactionLogValue::decode(SAMPLE_V1).unwrap(),
            (1, sample())
        );
    }

    #[test]
    fn v0_layout_is_byte_exact_and_drops_tagged_fields() {
        assert_eq!(&sample().encode(0)[..], SAMPLE_V0);
        let (version, v) = TransactionLogValue::decode(SAMPLE_V0).unwrap();
        assert_eq!(version, 0);
        assert_eq!(
            v,
            TransactionLogValue {
                previous_producer_id: -1,
                client_transaction_version: 0,
                ..sample()
            }
        );
    }

    #[test]
    fn null_partitions_and_defaults_round_trip() {
        let empty = TransactionLogValue {
            previous_producer_id: -1,
            next_producer_id: 77,
            transaction_status: 0,
            transaction_partitions: None,
            client_transaction_version: 0,
            ..sample()
        };
        for version in [0, 1] {
            let bytes = empty.encode(version);
            let (_, back) = TransactionLogValue::decode(&bytes).unwrap();
            let expected = if version == 0 {
                TransactionLogValue {
                    next_producer_id: -1,
                    ..empty.clone()
                }
            } else {
                empty.clone()
            };
            assert_eq!(back, expected, "v{version}");
        }
        // Null array: 0 in v1, -1 in v0.
        assert_eq!(empty.encode(1)[17], 0);
        assert_eq!(&empty.encode(0)[17..21], &[0xff; 4]);
    }

    #[test]
    fn many_topics_round_trip() {
        let v = TransactionLogValue {
            transaction_partitions: Some(
                (0..40)
                    .map(|i| PartitionsSchema {
                        topic: format!("topic-{i}"),
                        partition_ids: (0..i).collect(),
                    })
                    .collect(),
            ),
            next_producer_id: 9,
            ..sample()
        };
        for version in [0, 1] {
            let (_, back) = TransactionLogValue::decode(&v.encode(version)).unwrap();
            assert_eq!(back.transaction_partitions, v.transaction_partitions);
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for bytes in [SAMPLE_V0, SAMPLE_V1] {
            for cut in 0..bytes.len() {
                assert!(
                    TransactionLogValue::decode(&bytes[..cut]).is_err(),
                    "cut {cut}"
                );
            }
            let mut padded = bytes.to_vec();
            padded.push(0);
            assert!(TransactionLogValue::decode(&padded).is_err());
        }
    }

    #[test]
    fn unknown_versions_and_impossible_counts_are_refused() {
        let mut v2 = SAMPLE_V1.to_vec();
        v2[1] = 2;
        assert_eq!(
            TransactionLogValue::decode(&v2),
            Err(TxnError::UnsupportedVersion {
                record: WHAT,
                version: 2
            })
        );
        // A v0 topic count of i32::MAX with a few bytes left.
        let mut lying = SAMPLE_V0[..17].to_vec();
        lying.extend_from_slice(&i32::MAX.to_be_bytes());
        lying.extend_from_slice(&[0; 16]);
        assert!(matches!(
            TransactionLogValue::decode(&lying),
            Err(TxnError::Corrupt { .. })
        ));
        // A v1 partition count far beyond the bytes left.
        let mut lying = SAMPLE_V1.to_vec();
        lying[20] = 0x7f;
        assert!(TransactionLogValue::decode(&lying).is_err());
    }

    #[test]
    fn unknown_tags_are_skipped_and_known_tags_checked() {
        let mut with_unknown = SAMPLE_V1[..SAMPLE_V1.len() - 15].to_vec();
        with_unknown.extend_from_slice(&[0x01, 0x05, 0x01, 0xAA]);
        let (_, v) = TransactionLogValue::decode(&with_unknown).unwrap();
        assert_eq!(v.previous_producer_id, -1);
        let mut bad_size = SAMPLE_V1[..SAMPLE_V1.len() - 15].to_vec();
        bad_size.extend_from_slice(&[0x01, 0x02, 0x01, 0xAA]);
        assert!(TransactionLogValue::decode(&bad_size).is_err());
    }
}
