//! Produce v0-v2: advertised so that old librdkafka enables compression, refused when used.
//!
//! Kafka 4.0 does the same: it parses such a request and answers every partition with
//! UNSUPPORTED_VERSION, rather than dropping the connection, so a client sees a clear
//! error. kafka-protocol cannot read or write these versions (it starts at v3), so the
//! few fields needed are read here by hand.
//!
//! Request body, v0-v2 (non-flexible; header v1):
//!
//! ```text
//! acks         INT16
//! timeout_ms   INT32
//! topic_data   ARRAY of
//!   name            STRING
//!   partition_data  ARRAY of
//!     index         INT32
//!     records       NULLABLE_BYTES   (a v0/v1 message set; skipped)
//! ```
//!
//! Response (header v0: correlation_id INT32), then:
//!
//! ```text
//! responses    ARRAY of
//!   name                 STRING
//!   partition_responses  ARRAY of
//!     index              INT32
//!     error_code         INT16
//!     base_offset        INT64   (-1)
//!     log_append_time_ms INT64   (-1; v2 only)
//! throttle_time_ms       INT32   (0; v1 and v2 only)
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use strom_bytes::ReadError;

use crate::ErrorCode;
use crate::WireError;
use crate::header::encode_response_header;
use crate::reader::{Reader, Short};

/// Builds the UNSUPPORTED_VERSION answer to a Produce v0-v2 request whose body (after the
/// header) is `body`. Returns `None` for acks=0: the client expects no response, and Kafka
/// closes the connection to signal a failed acks=0 produce.
pub(crate) fn reject(
    body: &[u8],
    version: i16,
    correlation_id: i32,
) -> Result<Option<Bytes>, WireError> {
    let malformed = |reason: String| WireError::MalformedRequest {
        api_key: 0,
        api_version: version,
        correlation_id,
        reason,
    };
    let short = |e: ReadError| {
        let s = Short::from(e);
        malformed(format!(
            "truncated at body byte {}: need {} bytes, have {}",
            s.at, s.needed, s.available
        ))
    };
    let mut r = Reader::new(body);
    let acks = r.i16().map_err(short)?;
    let _timeout_ms = r.i32().map_err(short)?;

    // The response mirrors the request's topics and partitions one for one, so it is
    // written while reading; nothing is allocated per element from a count on the wire.
    let mut out = BytesMut::new();
    encode_response_header(&mut out, correlation_id, 0)?;
    let topics = r.i32().map_err(short)?;
    if topics < 0 {
        return Err(malformed(format!("topic_data length {topics} is negative")));
    }
    out.put_i32(topics);
    for _ in 0..topics {
        let name_len = r.i16().map_err(short)?;
        if name_len < 0 {
            return Err(malformed(format!(
                "topic name length {name_len} is negative"
            )));
        }
        let name = r.take(name_len as usize).map_err(short)?;
        out.put_i16(name_len);
        out.put_slice(name);
        let partitions = r.i32().map_err(short)?;
        if partitions < 0 {
            return Err(malformed(format!(
                "partition_data length {partitions} is negative"
            )));
        }
        out.put_i32(partitions);
        for _ in 0..partitions {
            let index = r.i32().map_err(short)?;
            let records = r.i32().map_err(short)?;
            if records < -1 {
                return Err(malformed(format!("records length {records} is negative")));
            }
            r.take(records.max(0) as usize).map_err(short)?;
            out.put_i32(index);
            out.put_i16(ErrorCode::UnsupportedVersion.code());
            out.put_i64(-1); // base_offset
            if version >= 2 {
                out.put_i64(-1); // log_append_time_ms
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle_time_ms
    }
    Ok((acks != 0).then(|| out.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(acks: i16) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_i16(acks);
        b.put_i32(1500);
        b.put_i32(2); // two topics
        b.put_i16(1);
        b.put_slice(b"a");
        b.put_i32(1);
        b.put_i32(4); // partition 4
        b.put_i32(3);
        b.put_slice(b"xyz");
        b.put_i16(2);
        b.put_slice(b"bc");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(-1); // null records
        b.put_i32(1);
        b.put_i32(0); // empty records
        b
    }

    #[test]
    fn every_partition_gets_unsupported_version() {
        for version in 0..=2 {
            let reply = reject(&request(1), version, 77).unwrap().unwrap();
            let mut want = BytesMut::new();
            want.put_i32(77);
            want.put_i32(2);
            let partitions: [(&[u8], &[i32]); 2] = [(b"a", &[4]), (b"bc", &[0, 1])];
            for (name, indexes) in partitions {
                want.put_i16(name.len() as i16);
                want.put_slice(name);
                want.put_i32(indexes.len() as i32);
                for &i in indexes {
                    want.put_i32(i);
                    want.put_i16(35);
                    want.put_i64(-1);
                    if version == 2 {
                        want.put_i64(-1);
                    }
                }
            }
            if version >= 1 {
                want.put_i32(0);
            }
            assert_eq!(reply, want.freeze(), "v{version}");
        }
    }

    #[test]
    fn acks_zero_gets_no_response() {
        assert_eq!(reject(&request(0), 2, 1).unwrap(), None);
    }

    #[test]
    fn malformed_bodies_are_errors_at_every_cut() {
        let whole = request(-1);
        for cut in 0..whole.len() {
            assert!(reject(&whole[..cut], 1, 1).is_err(), "cut {cut}");
        }
        let mut huge = BytesMut::new();
        huge.put_i16(1);
        huge.put_i32(0);
        huge.put_i32(i32::MAX); // claims 2^31 topics, has none
        assert!(reject(&huge, 0, 1).is_err());
    }
}
