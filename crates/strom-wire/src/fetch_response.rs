//! Encoding a Fetch response whose record bytes are not in memory: the response is cut
//! into byte parts and "records go here" parts, so the broker can write the bytes and
//! hand each records region to `sendfile` straight from the segment file. Everything but
//! the records is encoded here; kafka-protocol is used only in the tests, to check that
//! the result decodes exactly like its own encoding.
//!
//! Fetch response, v4-v16 (flexible from v12: compact arrays/strings/bytes, tagged fields):
//!
//! ```text
//! header            correlation_id INT32 [v12+: TAG_BUFFER]
//! throttle_time_ms  INT32
//! error_code        INT16          v7+
//! session_id        INT32          v7+
//! responses         ARRAY of
//!   topic           STRING         v4-v12
//!   topic_id        UUID           v13+
//!   partitions      ARRAY of
//!     partition_index       INT32
//!     error_code            INT16
//!     high_watermark        INT64
//!     last_stable_offset    INT64
//!     log_start_offset      INT64    v5+
//!     aborted_transactions  nullable ARRAY of (producer_id INT64, first_offset INT64)
//!     preferred_read_replica INT32   v11+
//!     records               nullable BYTES   ← a records part
//!     [v12+: TAG_BUFFER]
//!   [v12+: TAG_BUFFER]
//! [v12+: TAG_BUFFER]
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use strom_bytes::put_uvarlong;

/// One partition of the response. `records_len` bytes of records are supplied by the
/// caller at the matching [`FetchPart::Records`] position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `None` is a null array (read_uncommitted); each entry is (producer id, first offset).
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    pub preferred_read_replica: i32,
    /// Length of the records; 0 is an empty (not null) records field.
    pub records_len: usize,
}

/// One topic of the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopicOut {
    pub name: String,
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartitionOut>,
}

/// A piece of the encoded response, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchPart {
    Bytes(Bytes),
    /// The records of the `n`th partition (counting across topics, in order), of the
    /// length given in its [`FetchPartitionOut::records_len`]. Never emitted for empty
    /// records.
    Records(usize),
}

/// The encoded response: its parts and the total length (the frame's length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponseParts {
    pub parts: Vec<FetchPart>,
    pub len: usize,
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_uvarlong(buf, len as u64 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

/// Encodes a Fetch response (header included) at `version` (4..=16). The caller writes
/// the parts in order, substituting each `Records(n)` with partition n's bytes.
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    error_code: i16,
    session_id: i32,
    topics: &[FetchTopicOut],
) -> FetchResponseParts {
    let flexible = version >= 12;
    let mut parts = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    let mut len = 0;
    buf.put_i32(correlation_id);
    if flexible {
        buf.put_u8(0);
    }
    buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        buf.put_i16(error_code);
        buf.put_i32(session_id);
    }
    put_array_len(&mut buf, flexible, topics.len());
    let mut index = 0;
    for topic in topics {
        if version >= 13 {
            buf.put_slice(&topic.topic_id);
        } else if flexible {
            put_uvarlong(&mut buf, topic.name.len() as u64 + 1);
            buf.put_slice(topic.name.as_bytes());
        } else {
            buf.put_i16(topic.name.len() as i16);
            buf.put_slice(topic.name.as_bytes());
        }
        put_array_len(&mut buf, flexible, topic.partitions.len());
        for p in &topic.partitions {
            buf.put_i32(p.partition_index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.high_watermark);
            buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                buf.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                None if flexible => put_uvarlong(&mut buf, 0),
                None => buf.put_i32(-1),
                Some(list) => {
                    put_array_len(&mut buf, flexible, list.len());
                    for (producer_id, first_offset) in list {
                        buf.put_i64(*producer_id);
                        buf.put_i64(*first_offset);
                        if flexible {
                            buf.put_u8(0);
                        }
                    }
                }
            }
            if version >= 11 {
                buf.put_i32(p.preferred_read_replica);
            }
            if flexible {
                put_uvarlong(&mut buf, p.records_len as u64 + 1);
            } else {
                buf.put_i32(p.records_len as i32);
            }
            if p.records_len > 0 {
                len += buf.len() + p.records_len;
                parts.push(FetchPart::Bytes(buf.split().freeze()));
                parts.push(FetchPart::Records(index));
            }
            if flexible {
                buf.put_u8(0); // partition tagged fields
            }
            index += 1;
        }
        if flexible {
            buf.put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        buf.put_u8(0); // response tagged fields
    }
    len += buf.len();
    parts.push(FetchPart::Bytes(buf.freeze()));
    FetchResponseParts { parts, len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    fn sample(records: &[Vec<u8>]) -> Vec<FetchTopicOut> {
        let part = |i: usize, aborted: Option<Vec<(i64, i64)>>| FetchPartitionOut {
            partition_index: i as i32,
            error_code: if i == 2 { 1 } else { 0 },
            high_watermark: 100 + i as i64,
            last_stable_offset: 90 + i as i64,
            log_start_offset: 7,
            aborted_transactions: aborted,
            preferred_read_replica: -1,
            records_len: records[i].len(),
        };
        vec![
            FetchTopicOut {
                name: "orders".into(),
                topic_id: [7; 16],
                partitions: vec![part(0, None), part(1, Some(vec![(5, 6)]))],
            },
            FetchTopicOut {
                name: "t2".into(),
                topic_id: [9; 16],
                partitions: vec![part(2, Some(vec![]))],
            },
        ]
    }

    #[test]
    fn decodes_like_kafka_protocol_at_every_version() {
        let records = vec![b"first-records".to_vec(), Vec::new(), b"third".to_vec()];
        for version in 4..=16i16 {
            let topics = sample(&records);
            let out = encode_fetch_response(42, version, 0, 0, &topics);
            let mut frame = BytesMut::new();
            for part in &out.parts {
                match part {
                    FetchPart::Bytes(b) => frame.put_slice(b),
                    FetchPart::Records(n) => frame.put_slice(&records[*n]),
                }
            }
            assert_eq!(frame.len(), out.len, "v{version}");
            let mut buf = frame.freeze();
            let header =
                ResponseHeader::decode(&mut buf, if version >= 12 { 1 } else { 0 }).unwrap();
            assert_eq!(header.correlation_id, 42);
            let resp = FetchResponse::decode(&mut buf, version).unwrap();
            assert_eq!(buf.remaining(), 0, "v{version}: trailing bytes");
            assert_eq!(resp.responses.len(), 2);
            let p = &resp.responses[0].partitions;
            assert_eq!(
                p[0].records.as_deref(),
                Some(&b"first-records"[..]),
                "v{version}"
            );
            assert_eq!(p[1].records.as_deref(), Some(&b""[..]));
            assert_eq!(p[1].high_watermark, 101);
            assert_eq!(p[1].last_stable_offset, 91);
            if version >= 5 {
                assert_eq!(p[1].log_start_offset, 7);
            }
            assert!(p[0].aborted_transactions.is_none());
            assert_eq!(
                p[1].aborted_transactions.as_ref().unwrap()[0].first_offset,
                6
            );
            let t2 = &resp.responses[1];
            if version >= 13 {
                assert_eq!(t2.topic_id.as_bytes(), &[9; 16]);
            } else {
                assert_eq!(t2.topic.0.as_str(), "t2");
            }
            assert_eq!(t2.partitions[0].error_code, 1);
            assert_eq!(t2.partitions[0].records.as_deref(), Some(&b"third"[..]));
        }
    }
}
