//! Decoding one request frame into its header and typed body.
//!
//! A request frame (what [`crate::FrameCodec`] yields, without the length prefix):
//!
//! ```text
//! request header   v1 or v2, chosen by (api key, api version); see crate::header
//! request body     the api's fields at that version, decoded by kafka-protocol (or,
//!                  for versions Kafka 4 removed, by crate::legacy)
//! ```
//!
//! The decoder never panics on any input. Before kafka-protocol sees a body, the body
//! passes [`crate::guard`], which refuses array lengths that could make it reserve more
//! memory than the frame could fill.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};

use crate::guard::{self, GuardError};
use crate::header::{decode_request_header, peek_request_prefix, request_header_version};
use crate::versions::{advertised_range, is_usable};
use crate::{WireError, header, legacy, newer};

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The api, already checked to be one in [`crate::SUPPORTED_APIS`].
    pub api_key: ApiKey,
    pub header: RequestHeader,
    /// The body as kafka-protocol's enum; its variant always matches `api_key`. Byte
    /// fields (Produce records, group metadata) share the frame's memory.
    pub body: RequestKind,
}

impl Request {
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// The response header version the answer to this request must use.
    pub fn response_header_version(&self) -> i16 {
        header::response_header_version(self.api_key, self.api_version())
    }
}

/// Decodes a request frame (header and body, without the length prefix).
///
/// Errors, in the order they are checked:
/// - [`WireError::TruncatedHeader`] if the frame cannot hold the fixed header fields;
/// - [`WireError::UnknownApiKey`] if Strom does not serve the api;
/// - [`WireError::UnsupportedVersion`] if it does, but not at this version (including
///   Produce v0-v2, which are advertised but never served). ApiVersions and Produce still
///   deserve an answer then: see [`crate::unsupported_version_reply`];
/// - [`WireError::InvalidHeader`] / [`WireError::TruncatedHeader`] for a bad header;
/// - [`WireError::ImpossibleArrayLength`] or [`WireError::MalformedRequest`] for a body
///   that does not decode.
///
/// Bytes after the body are ignored, as Kafka ignores them.
pub fn decode_request(frame: Bytes) -> Result<Request, WireError> {
    let prefix = peek_request_prefix(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key)
        .ok()
        .filter(|_| advertised_range(prefix.api_key).is_some())
        .ok_or(WireError::UnknownApiKey {
            api_key: prefix.api_key,
            correlation_id: prefix.correlation_id,
        })?;
    if !is_usable(prefix.api_key, prefix.api_version) {
        return Err(WireError::UnsupportedVersion {
            api_key: prefix.api_key,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        });
    }
    let version = prefix.api_version;
    let mut body = frame;
    let header = decode_request_header(&mut body, request_header_version(api_key, version))?;

    guard::check(api_key, version, &body).map_err(|e| match e {
        GuardError::ImpossibleLength {
            structure,
            field,
            length,
            min_element_size,
            at,
            remaining,
        } => WireError::ImpossibleArrayLength {
            api_key: prefix.api_key,
            api_version: version,
            correlation_id: prefix.correlation_id,
            structure,
            field,
            length,
            min_element_size,
            at,
            remaining,
        },
        GuardError::Malformed {
            structure,
            field,
            reason,
        } => WireError::MalformedRequest {
            api_key: prefix.api_key,
            api_version: version,
            correlation_id: prefix.correlation_id,
            reason: format!("{structure}.{field}: {reason}"),
        },
    })?;

    let decoded = if legacy::is_legacy(api_key, version) {
        legacy::decode(api_key, version, &mut body)
    } else if newer::is_newer(api_key, version) {
        newer::decode(api_key, version, &mut body)
    } else {
        // `{:#}` prints anyhow's whole context chain on one line.
        RequestKind::decode(api_key, &mut body, version).map_err(|e| format!("{e:#}"))
    };
    let body = decoded.map_err(|reason| WireError::MalformedRequest {
        api_key: prefix.api_key,
        api_version: version,
        correlation_id: prefix.correlation_id,
        reason,
    })?;
    Ok(Request {
        api_key,
        header,
        body,
    })
}

/// Bytes a decoded element is reckoned to cost: kafka-protocol's structs are 50 to 150
/// bytes (a `StrBytes` alone is 32, a `Vec` 24, the unknown-tagged-fields map 24), and
/// the answer usually holds one structure per element asked about. One 3-byte topic name
/// in Metadata decodes to a 72-byte struct: this is where large frames of small elements
/// cost tens of times their size.
pub const DECODED_BYTES_PER_STRUCT: usize = 256;
/// The same for an element of an array of strings (a `StrBytes` and its answer), and for
/// an unknown tagged field (an entry of a map of them, kept to re-encode).
pub const DECODED_BYTES_PER_STRING: usize = 64;

/// What decoding and answering `frame` will hold in memory beyond the frame itself, by
/// the array elements its body declares, without decoding it. `None` when the frame
/// would not decode (then [`decode_request`] says why).
pub fn decoded_cost(frame: &Bytes) -> Option<usize> {
    let prefix = peek_request_prefix(frame).ok()?;
    let api_key = ApiKey::try_from(prefix.api_key).ok()?;
    if !is_usable(prefix.api_key, prefix.api_version) {
        return None;
    }
    let version = prefix.api_version;
    let mut body = frame.clone();
    decode_request_header(&mut body, request_header_version(api_key, version)).ok()?;
    let e = guard::count(api_key, version, &body).ok()?;
    let cost = e.structs as u128 * DECODED_BYTES_PER_STRUCT as u128
        + e.strings as u128 * DECODED_BYTES_PER_STRING as u128
        + e.ints as u128 * 4
        + e.longs as u128 * 8
        + e.unknown_tags as u128 * DECODED_BYTES_PER_STRING as u128;
    Some(usize::try_from(cost).unwrap_or(usize::MAX))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::guard::sample;
    use crate::header::encode_request_header;
    use crate::versions::{PRODUCE_MIN_USABLE_VERSION, SUPPORTED_APIS};
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    /// Every usable (api, version) pair at the bottom and top of its range.
    fn range_ends() -> impl Iterator<Item = (ApiKey, i16)> {
        SUPPORTED_APIS.iter().flat_map(|r| {
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            [(r.key, min), (r.key, r.max)]
        })
    }

    /// A frame as a client would send it: header at the right version, then `body`.
    pub(crate) fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strom-test")));
        let mut buf = BytesMut::new();
        encode_request_header(&mut buf, &header, request_header_version(key, version)).unwrap();
        buf.put_slice(body);
        buf.freeze()
    }

    /// The body kafka-protocol produces for a default request: arrays empty, strings
    /// empty, numbers at their defaults.
    pub(crate) fn default_body(key: ApiKey) -> RequestKind {
        match key {
            ApiKey::Produce => ProduceRequest::default().into(),
            ApiKey::Fetch => FetchRequest::default().into(),
            ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
            ApiKey::Metadata => MetadataRequest::default().into(),
            ApiKey::OffsetCommit => OffsetCommitRequest::default().into(),
            ApiKey::OffsetFetch => OffsetFetchRequest::default().into(),
            ApiKey::FindCoordinator => FindCoordinatorRequest::default().into(),
            ApiKey::JoinGroup => JoinGroupRequest::default().into(),
            ApiKey::Heartbeat => HeartbeatRequest::default().into(),
            ApiKey::LeaveGroup => LeaveGroupRequest::default().into(),
            ApiKey::SyncGroup => SyncGroupRequest::default().into(),
            ApiKey::DescribeGroups => DescribeGroupsRequest::default().into(),
            ApiKey::ListGroups => ListGroupsRequest::default().into(),
            ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
            ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
            ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
            ApiKey::DeleteRecords => DeleteRecordsRequest::default().into(),
            ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default().into(),
            ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
            ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
            ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
            ApiKey::DeleteGroups => DeleteGroupsRequest::default().into(),
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
            ApiKey::OffsetDelete => OffsetDeleteRequest::default().into(),
            ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
            ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::default().into(),
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::default().into(),
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().into(),
            ApiKey::EndTxn => EndTxnRequest::default().into(),
            ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::default().into(),
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default().into(),
            ApiKey::DescribeProducers => DescribeProducersRequest::default().into(),
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::default().into(),
            ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
            other => panic!("{other:?} is not served"),
        }
    }

    #[test]
    fn default_requests_decode_at_both_ends_of_every_range() {
        // The versions below kafka-protocol's are tested with crate::legacy.
        for (key, version) in
            range_ends().filter(|&(k, v)| !legacy::is_legacy(k, v) && !newer::is_newer(k, v))
        {
            let want = default_body(key);
            let mut body = BytesMut::new();
            want.encode(&mut body, version)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e:#}"));
            let request = decode_request(frame(key, version, 42, &body))
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            assert_eq!(request.api_key, key);
            assert_eq!(request.api_version(), version);
            assert_eq!(request.correlation_id(), 42);
            assert_eq!(request.header.client_id.as_deref(), Some("strom-test"));
            // Decode then re-encode: fields the version does not carry come back as defaults.
            let mut again = BytesMut::new();
            request.body.encode(&mut again, version).unwrap();
            assert_eq!(again, body, "{key:?} v{version}");
        }
    }

    #[test]
    fn populated_requests_decode_at_every_version() {
        for r in SUPPORTED_APIS {
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            for version in min..=r.max {
                let body = sample::body(r.key, version);
                let request = decode_request(frame(r.key, version, 7, &body))
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", r.key));
                let direct = if legacy::is_legacy(r.key, version) {
                    legacy::decode(r.key, version, &mut body.freeze()).unwrap()
                } else if newer::is_newer(r.key, version) {
                    newer::decode(r.key, version, &mut body.freeze()).unwrap()
                } else {
                    RequestKind::decode(r.key, &mut body.freeze(), version).unwrap()
                };
                assert_eq!(request.body, direct, "{:?} v{version}", r.key);
            }
        }
    }

    /// Every sample frame decodes. With `STROM_WIRE_SEED_DIR` set, they are also written
    /// there as a starting corpus for the `request` and `frame` fuzz targets (see
    /// docs/fuzzing.md), so the fuzzer starts from well-formed requests of every api.
    #[test]
    fn sample_frames_decode_and_seed_the_fuzzer() {
        let dir = std::env::var_os("STROM_WIRE_SEED_DIR").map(std::path::PathBuf::from);
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir.join("request")).unwrap();
            std::fs::create_dir_all(dir.join("frame")).unwrap();
        }
        for r in SUPPORTED_APIS {
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            for version in min..=r.max {
                let f = frame(r.key, version, 1, &sample::body(r.key, version));
                assert!(decode_request(f.clone()).is_ok(), "{:?} v{version}", r.key);
                if let Some(dir) = &dir {
                    let name = format!("{:?}-v{version}", r.key);
                    std::fs::write(dir.join("request").join(&name), &f).unwrap();
                    // The frame target's first byte picks a chunk size.
                    let mut framed = vec![3u8];
                    framed.extend_from_slice(&(f.len() as i32).to_be_bytes());
                    framed.extend_from_slice(&f);
                    std::fs::write(dir.join("frame").join(&name), framed).unwrap();
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for r in SUPPORTED_APIS {
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            for version in min..=r.max {
                let whole = frame(r.key, version, 1, &sample::body(r.key, version));
                for cut in 0..whole.len() {
                    let result = decode_request(whole.slice(..cut));
                    assert!(
                        result.is_err(),
                        "{:?} v{version} cut at {cut} of {}",
                        r.key,
                        whole.len()
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_and_unserved_api_keys() {
        for key in [
            -1i16,
            93,
            1000,
            ApiKey::SaslHandshake as i16,
            ApiKey::CreateAcls as i16,
        ] {
            let mut buf = BytesMut::new();
            buf.put_i16(key);
            buf.put_i16(0);
            buf.put_i32(5);
            buf.put_i16(-1);
            assert!(
                matches!(
                    decode_request(buf.freeze()),
                    Err(WireError::UnknownApiKey { api_key, correlation_id: 5 }) if api_key == key
                ),
                "{key}"
            );
        }
    }

    #[test]
    fn versions_outside_the_table_are_unsupported() {
        let cases = [
            (ApiKey::Fetch, 3),
            (ApiKey::Fetch, 17),
            (ApiKey::Metadata, 13),
            (ApiKey::Produce, 2),
        ];
        for (key, version) in cases {
            // Whatever follows the prefix is not even looked at.
            let mut buf = BytesMut::new();
            buf.put_i16(key as i16);
            buf.put_i16(version);
            buf.put_i32(99);
            assert!(
                matches!(
                    decode_request(buf.freeze()),
                    Err(WireError::UnsupportedVersion { correlation_id: 99, api_version, .. }) if api_version == version
                ),
                "{key:?} v{version}"
            );
        }
    }

    #[test]
    fn short_frames_and_bad_bodies() {
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 3, 0])),
            Err(WireError::TruncatedHeader { .. })
        ));
        // Metadata v1 whose topic array claims two billion entries.
        let mut body = BytesMut::new();
        body.put_i32(2_000_000_000);
        assert!(matches!(
            decode_request(frame(ApiKey::Metadata, 1, 3, &body)),
            Err(WireError::ImpossibleArrayLength {
                correlation_id: 3,
                field: "topics",
                ..
            })
        ));
        // Metadata v1 with a topic name that is not UTF-8: the guard lets it through, the
        // decoder refuses it.
        let mut body = BytesMut::new();
        body.put_i32(1);
        body.put_i16(2);
        body.put_slice(&[0xff, 0xfe]);
        let err = decode_request(frame(ApiKey::Metadata, 1, 3, &body)).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::MalformedRequest {
                    api_key: 3,
                    api_version: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Found by the `request` fuzz target with the guard switched off: 15 bytes that made
    /// kafka-protocol reserve 8.5 GB (118 million Metadata topics) and abort.
    #[test]
    fn fuzz_regression_metadata_v8_huge_topic_count() {
        let frame = Bytes::from_static(&[
            0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x07, 0x0b, 0x01, 0x01,
            0x01,
        ]);
        assert!(matches!(
            decode_request(frame),
            Err(WireError::ImpossibleArrayLength {
                length: 0x070b_0101,
                remaining: 1,
                ..
            })
        ));
    }

    #[test]
    fn decoded_cost_counts_elements_not_bytes() {
        // Metadata v1 naming "a" 1000 times: 3 bytes each on the wire.
        let mut body = BytesMut::new();
        body.put_i32(1000);
        for _ in 0..1000 {
            body.put_i16(1);
            body.put_u8(b'a');
        }
        let f = frame(ApiKey::Metadata, 1, 7, &body);
        assert_eq!(decoded_cost(&f), Some(1000 * DECODED_BYTES_PER_STRUCT));
        // ApiVersions v3 (flexible): two strings, then 1000 unknown tagged fields of 0 bytes.
        let mut body = BytesMut::new();
        body.put_slice(&[1, 1]); // client software name and version: empty
        body.put_slice(&[0xe8, 0x07]); // 1000 tagged fields
        for tag in 0..1000u32 {
            let tag = tag + 100;
            body.put_slice(&[0x80 | (tag & 0x7f) as u8, (tag >> 7) as u8, 0]);
        }
        let f = frame(ApiKey::ApiVersions, 3, 7, &body);
        assert_eq!(decoded_cost(&f), Some(1000 * DECODED_BYTES_PER_STRING));
        assert_eq!(decoded_cost(&f.slice(..f.len() - 1)), None, "truncated");
        assert_eq!(
            decoded_cost(&frame(ApiKey::ApiVersions, 0, 1, &[])),
            Some(0)
        );
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut body = BytesMut::new();
        default_body(ApiKey::DescribeCluster)
            .encode(&mut body, 1)
            .unwrap();
        body.put_slice(b"extra");
        let request = decode_request(frame(ApiKey::DescribeCluster, 1, 2, &body)).unwrap();
        assert!(matches!(request.body, RequestKind::DescribeCluster(_)));
    }

    #[test]
    fn response_header_version_follows_the_request() {
        let mut body = BytesMut::new();
        default_body(ApiKey::ApiVersions)
            .encode(&mut body, 3)
            .unwrap();
        let request = decode_request(frame(ApiKey::ApiVersions, 3, 1, &body)).unwrap();
        assert_eq!(request.response_header_version(), 0);
        let mut body = BytesMut::new();
        default_body(ApiKey::Metadata)
            .encode(&mut body, 12)
            .unwrap();
        let request = decode_request(frame(ApiKey::Metadata, 12, 1, &body)).unwrap();
        assert_eq!(request.response_header_version(), 1);
    }
}
