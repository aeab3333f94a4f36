//! Request headers (v0, v1, v2) and response headers (v0, v1), and which version applies
//! to which (api key, api version) pair.
//!
//! Request header layouts (integers big-endian):
//!
//! ```text
//! v0: request_api_key      INT16
//!     request_api_version  INT16
//!     correlation_id       INT32
//! v1: v0, then client_id   NULLABLE_STRING  INT16 length (-1 = null), then UTF-8 bytes
//! v2: v1, then TAG_BUFFER  UNSIGNED_VARINT count, then per field:
//!                          tag UNSIGNED_VARINT, size UNSIGNED_VARINT, size bytes
//! ```
//!
//! `client_id` stays a non-compact string in v2, although v2 belongs to flexible
//! versions, so that the first fields read the same whatever the version.
//!
//! Response header layouts:
//!
//! ```text
//! v0: correlation_id  INT32
//! v1: correlation_id  INT32, then TAG_BUFFER (Strom writes an empty one: a single 0 byte)
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use strom_bytes::{ReadError, put_uvarint};

use crate::WireError;
use crate::reader::{Reader, Short};

/// Bytes every request header starts with, whatever its version.
pub const REQUEST_PREFIX_LEN: usize = 8;

/// The first three fields of a request header. They sit at the same offsets in every
/// header version, so they can be read before the version (which depends on them) is
/// known, e.g. to answer a request whose version is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads [`RequestPrefix`] from the start of a request frame (after the length prefix).
pub fn peek_request_prefix(frame: &[u8]) -> Result<RequestPrefix, WireError> {
    let mut r = Reader::new(frame);
    let prefix = (|| {
        Ok::<_, ReadError>(RequestPrefix {
            api_key: r.i16()?,
            api_version: r.i16()?,
            correlation_id: r.i32()?,
        })
    })();
    prefix.map_err(|_| WireError::TruncatedHeader {
        needed: REQUEST_PREFIX_LEN,
        available: frame.len(),
    })
}

/// The request header version a client uses for this api at this version: 2 for flexible
/// versions, 1 otherwise (0 only for ControlledShutdown v0, which Strom does not serve).
/// The mapping is kafka-protocol's, generated from Kafka's message schemas.
pub fn request_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    api_key.request_header_version(api_version)
}

/// The response header version for this api at this version: 1 for flexible versions,
/// 0 otherwise, except that ApiVersions always answers with v0. Clients parse the
/// ApiVersions response before they know whether the broker speaks flexible versions, so
/// Kafka never puts tagged fields in that header, not even for ApiVersions v3+.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(api_version)
    }
}

/// Decodes a request header of `header_version` from the front of `buf`, leaving `buf` at
/// the start of the request body. The client id is taken without copying. Invalid UTF-8
/// in the client id is replaced rather than refused, as Kafka's own decoder does: it is a
/// label for logs and quotas, not worth dropping a client over.
pub fn decode_request_header(
    buf: &mut Bytes,
    header_version: i16,
) -> Result<RequestHeader, WireError> {
    if !(0..=2).contains(&header_version) {
        return Err(WireError::InvalidHeader {
            reason: format!("request header version {header_version} does not exist"),
        });
    }
    let frame = buf.clone();
    let mut r = Reader::new(&frame);
    let short = |e: ReadError| {
        let s = Short::from(e);
        WireError::TruncatedHeader {
            needed: s.at + s.needed,
            available: frame.len(),
        }
    };
    let mut header = RequestHeader::default()
        .with_request_api_key(r.i16().map_err(short)?)
        .with_request_api_version(r.i16().map_err(short)?)
        .with_correlation_id(r.i32().map_err(short)?);
    // Header v0 has no client id at all; say so rather than keep the default (empty).
    header.client_id = None;
    if header_version >= 1 {
        let len = r.i16().map_err(short)?;
        header.client_id = match len {
            -1 => None,
            n if n >= 0 => {
                let start = r.position();
                r.take(n as usize).map_err(short)?;
                Some(lenient_str(frame.slice(start..r.position())))
            }
            n => {
                return Err(WireError::InvalidHeader {
                    reason: format!("client_id length {n} is negative"),
                });
            }
        };
    }
    if header_version >= 2 {
        let count = r.uvarint_lenient().map_err(short)?;
        for _ in 0..count {
            let tag = r.uvarint_lenient().map_err(short)?;
            let size = r.uvarint_lenient().map_err(short)? as usize;
            let start = r.position();
            r.take(size).map_err(short)?;
            header
                .unknown_tagged_fields
                .insert(tag as i32, frame.slice(start..r.position()));
        }
    }
    *buf = frame.slice(r.position()..);
    Ok(header)
}

/// Encodes a request header at `header_version`, as a client would. Strom's broker never
/// sends requests; this exists for tests and for Strom's own command-line client.
pub fn encode_request_header(
    buf: &mut BytesMut,
    header: &RequestHeader,
    header_version: i16,
) -> Result<(), WireError> {
    if !(0..=2).contains(&header_version) {
        return Err(WireError::InvalidHeader {
            reason: format!("request header version {header_version} does not exist"),
        });
    }
    buf.put_i16(header.request_api_key);
    buf.put_i16(header.request_api_version);
    buf.put_i32(header.correlation_id);
    if header_version >= 1 {
        match &header.client_id {
            None => buf.put_i16(-1),
            Some(id) => {
                let len = i16::try_from(id.len()).map_err(|_| WireError::InvalidHeader {
                    reason: format!("client_id of {} bytes is too long", id.len()),
                })?;
                buf.put_i16(len);
                buf.put_slice(id.as_bytes());
            }
        }
    }
    if header_version >= 2 {
        put_uvarint(buf, header.unknown_tagged_fields.len() as u32);
        for (&tag, value) in &header.unknown_tagged_fields {
            put_uvarint(buf, tag as u32);
            put_uvarint(buf, value.len() as u32);
            buf.put_slice(value);
        }
    }
    Ok(())
}

/// Writes a response header: the correlation id, and for `header_version` 1 an empty
/// tagged-field section. Any version other than 0 or 1 is refused.
pub fn encode_response_header(
    buf: &mut BytesMut,
    correlation_id: i32,
    header_version: i16,
) -> Result<(), WireError> {
    match header_version {
        0 => buf.put_i32(correlation_id),
        1 => {
            buf.put_i32(correlation_id);
            put_uvarint(buf, 0);
        }
        v => {
            return Err(WireError::Encode {
                api_version: v,
                reason: format!("response header version {v} does not exist"),
            });
        }
    }
    Ok(())
}

fn lenient_str(bytes: Bytes) -> StrBytes {
    match StrBytes::from_utf8(bytes.clone()) {
        Ok(s) => s,
        Err(_) => StrBytes::from_string(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn header(client_id: Option<&'static str>) -> RequestHeader {
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(12)
            .with_correlation_id(-5)
            .with_client_id(client_id.map(StrBytes::from_static_str))
    }

    fn round_trip(h: &RequestHeader, version: i16) -> (RequestHeader, Bytes) {
        let mut buf = BytesMut::new();
        encode_request_header(&mut buf, h, version).unwrap();
        buf.put_slice(b"body");
        let mut frame = buf.freeze();
        let back = decode_request_header(&mut frame, version).unwrap();
        (back, frame)
    }

    #[test]
    fn v0_has_no_client_id() {
        let (back, rest) = round_trip(&header(Some("ignored")), 0);
        assert_eq!(back, header(None));
        assert_eq!(&rest[..], b"body");
    }

    #[test]
    fn v1_round_trips_null_empty_and_set_client_ids() {
        for id in [None, Some(""), Some("rdkafka")] {
            let (back, rest) = round_trip(&header(id), 1);
            assert_eq!(back, header(id));
            assert_eq!(&rest[..], b"body");
        }
    }

    #[test]
    fn v2_round_trips_tagged_fields() {
        let mut tags = BTreeMap::new();
        tags.insert(0, Bytes::from_static(b"x"));
        tags.insert(300, Bytes::from_static(b"yz"));
        let h = header(Some("c")).with_unknown_tagged_fields(tags);
        let (back, rest) = round_trip(&h, 2);
        assert_eq!(back, h);
        assert_eq!(&rest[..], b"body");
        let (back, _) = round_trip(&header(None), 2);
        assert_eq!(back, header(None));
    }

    #[test]
    fn agrees_with_kafka_protocol_encoder() {
        use kafka_protocol::protocol::Encodable;
        // kafka-protocol encodes header v1 and v2 (it has no v0); the bytes must match ours.
        for version in 1..=2 {
            let h = header(Some("client-1"));
            let mut theirs = BytesMut::new();
            h.encode(&mut theirs, version).unwrap();
            let mut ours = BytesMut::new();
            encode_request_header(&mut ours, &h, version).unwrap();
            assert_eq!(ours, theirs, "v{version}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in 0..=2 {
            let mut buf = BytesMut::new();
            let mut tags = BTreeMap::new();
            tags.insert(1, Bytes::from_static(b"abc"));
            encode_request_header(
                &mut buf,
                &header(Some("id")).with_unknown_tagged_fields(tags),
                version,
            )
            .unwrap();
            for cut in 0..buf.len() {
                let mut part = Bytes::copy_from_slice(&buf[..cut]);
                assert!(
                    decode_request_header(&mut part, version).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn bad_client_ids() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0, 3, 0, 1, 0, 0, 0, 9]);
        buf.put_i16(-2);
        let err = decode_request_header(&mut buf.clone().freeze(), 1).unwrap_err();
        assert!(matches!(err, WireError::InvalidHeader { .. }), "{err}");
        // Invalid UTF-8 is replaced, not refused.
        let mut buf = BytesMut::new();
        buf.put_slice(&[0, 3, 0, 1, 0, 0, 0, 9, 0, 2, 0xff, b'a']);
        let h = decode_request_header(&mut buf.freeze(), 1).unwrap();
        assert_eq!(h.client_id.as_deref(), Some("\u{fffd}a"));
    }

    #[test]
    fn prefix_is_readable_from_any_header_version() {
        let p = peek_request_prefix(&[0, 18, 0, 9, 0, 0, 1, 0, 0xff]).unwrap();
        assert_eq!(
            p,
            RequestPrefix {
                api_key: 18,
                api_version: 9,
                correlation_id: 256
            }
        );
        assert!(matches!(
            peek_request_prefix(&[0, 18, 0]),
            Err(WireError::TruncatedHeader {
                needed: 8,
                available: 3
            })
        ));
    }

    #[test]
    fn header_versions_follow_flexibility() {
        assert_eq!(request_header_version(ApiKey::Metadata, 8), 1);
        assert_eq!(request_header_version(ApiKey::Metadata, 9), 2);
        assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::Fetch, 12), 1);
        // The special case: ApiVersions answers with header v0 even when flexible.
        for v in 0..=4 {
            assert_eq!(response_header_version(ApiKey::ApiVersions, v), 0, "v{v}");
        }
    }

    #[test]
    fn response_headers() {
        let mut buf = BytesMut::new();
        encode_response_header(&mut buf, 0x01020304, 0).unwrap();
        assert_eq!(&buf[..], &[1, 2, 3, 4]);
        let mut buf = BytesMut::new();
        encode_response_header(&mut buf, -1, 1).unwrap();
        assert_eq!(&buf[..], &[0xff, 0xff, 0xff, 0xff, 0]);
        assert!(encode_response_header(&mut BytesMut::new(), 1, 2).is_err());
    }
}
