//! Encoding responses, and the answers Kafka gives to requests it will not serve.
//!
//! A response frame's message (what goes to [`crate::FrameCodec`], which adds the length):
//!
//! ```text
//! response header   v0: correlation_id INT32
//!                   v1: correlation_id INT32, TAG_BUFFER (empty: one 0 byte)
//! response body     the api's fields at the request's version, encoded by kafka-protocol
//! ```
//!
//! The header version follows the request's flexibility, except for ApiVersions, whose
//! response header is always v0 (see [`crate::response_header_version`]).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};

use crate::header::{decode_request_header, encode_response_header, peek_request_prefix};
use crate::versions::{api_versions_fallback, is_advertised, is_usable};
use crate::{WireError, legacy, newer};

/// Encodes `body` as the response to the request with `correlation_id`, at the request's
/// `api_version`. The result is the frame message, ready for [`crate::FrameCodec`].
pub fn encode_response(
    correlation_id: i32,
    api_version: i16,
    body: &ResponseKind,
) -> Result<Bytes, WireError> {
    let header_version = match body {
        ResponseKind::ApiVersions(_) => 0,
        other => other.header_version(api_version),
    };
    let mut buf = BytesMut::new();
    encode_response_header(&mut buf, correlation_id, header_version)?;
    let encoded = match legacy::encode(body, api_version, &mut buf)
        .or_else(|| newer::encode(body, api_version, &mut buf))
    {
        Some(done) => done,
        None => body
            .encode(&mut buf, api_version)
            .map_err(|e| format!("{e:#}")),
    };
    encoded.map_err(|reason| WireError::Encode {
        api_version,
        reason,
    })?;
    Ok(buf.freeze())
}

/// What to send back for a request that [`crate::decode_request`] refused with
/// [`WireError::UnsupportedVersion`], as Kafka does:
///
/// - ApiVersions at any version Strom does not serve: the v0-format UNSUPPORTED_VERSION
///   answer listing the supported versions ([`api_versions_fallback`]), so the client
///   retries at a version both know;
/// - Produce v0-v2 (advertised, not served): every partition answered with
///   UNSUPPORTED_VERSION, or `None` for acks=0;
/// - anything else: `None`, meaning close the connection.
///
/// `frame` is the whole request frame, header included.
pub fn unsupported_version_reply(frame: &Bytes) -> Result<Option<Bytes>, WireError> {
    let prefix = peek_request_prefix(frame)?;
    if prefix.api_key == ApiKey::ApiVersions as i16 {
        if is_usable(prefix.api_key, prefix.api_version) {
            return Ok(None);
        }
        return Ok(Some(api_versions_fallback(prefix.correlation_id)));
    }
    if prefix.api_key == ApiKey::Produce as i16
        && is_advertised(prefix.api_key, prefix.api_version)
        && !is_usable(prefix.api_key, prefix.api_version)
    {
        let mut body = frame.clone();
        // Produce v0-v2 requests carry header v1.
        decode_request_header(&mut body, 1)?;
        return legacy::produce::reject(&body, prefix.api_version, prefix.correlation_id);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::tests::frame;
    use crate::versions::{SUPPORTED_APIS, api_versions_response};
    use crate::{ErrorCode, decode_request};
    use bytes::{Buf, BufMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;

    fn default_response(key: ApiKey) -> ResponseKind {
        match key {
            ApiKey::Produce => ProduceResponse::default().into(),
            ApiKey::Fetch => FetchResponse::default().into(),
            ApiKey::ListOffsets => ListOffsetsResponse::default().into(),
            ApiKey::Metadata => MetadataResponse::default().into(),
            ApiKey::OffsetCommit => OffsetCommitResponse::default().into(),
            ApiKey::OffsetFetch => OffsetFetchResponse::default().into(),
            ApiKey::FindCoordinator => FindCoordinatorResponse::default().into(),
            ApiKey::JoinGroup => JoinGroupResponse::default().into(),
            ApiKey::Heartbeat => HeartbeatResponse::default().into(),
            ApiKey::LeaveGroup => LeaveGroupResponse::default().into(),
            ApiKey::SyncGroup => SyncGroupResponse::default().into(),
            ApiKey::DescribeGroups => DescribeGroupsResponse::default().into(),
            ApiKey::ListGroups => ListGroupsResponse::default().into(),
            ApiKey::ApiVersions => api_versions_response(ErrorCode::None).into(),
            ApiKey::CreateTopics => CreateTopicsResponse::default().into(),
            ApiKey::DeleteTopics => DeleteTopicsResponse::default().into(),
            ApiKey::DeleteRecords => DeleteRecordsResponse::default().into(),
            ApiKey::InitProducerId => InitProducerIdResponse::default().into(),
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochResponse::default().into(),
            ApiKey::DescribeConfigs => DescribeConfigsResponse::default().into(),
            ApiKey::AlterConfigs => AlterConfigsResponse::default().into(),
            ApiKey::CreatePartitions => CreatePartitionsResponse::default().into(),
            ApiKey::DeleteGroups => DeleteGroupsResponse::default().into(),
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsResponse::default().into(),
            ApiKey::OffsetDelete => OffsetDeleteResponse::default().into(),
            ApiKey::DescribeCluster => DescribeClusterResponse::default().into(),
            ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsResponse::default().into(),
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnResponse::default().into(),
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnResponse::default().into(),
            ApiKey::EndTxn => EndTxnResponse::default().into(),
            ApiKey::WriteTxnMarkers => WriteTxnMarkersResponse::default().into(),
            ApiKey::TxnOffsetCommit => TxnOffsetCommitResponse::default().into(),
            ApiKey::DescribeProducers => DescribeProducersResponse::default().into(),
            ApiKey::DescribeTransactions => DescribeTransactionsResponse::default().into(),
            ApiKey::ListTransactions => ListTransactionsResponse::default().into(),
            other => panic!("{other:?} is not served"),
        }
    }

    #[test]
    fn responses_round_trip_with_the_right_header() {
        for r in SUPPORTED_APIS {
            let min = if r.key == ApiKey::Produce { 3 } else { r.min };
            // The versions below kafka-protocol's are tested with crate::legacy.
            for version in (min..=r.max)
                .filter(|&v| !legacy::is_legacy(r.key, v) && !newer::is_newer(r.key, v))
            {
                let body = default_response(r.key);
                let bytes = encode_response(0x0a0b0c0d, version, &body)
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", r.key));
                let mut rest = bytes.clone();
                assert_eq!(rest.get_i32(), 0x0a0b0c0d);
                let flexible = r.key.response_header_version(version) == 1;
                if flexible && r.key != ApiKey::ApiVersions {
                    assert_eq!(rest.get_u8(), 0, "{:?} v{version}: empty tag buffer", r.key);
                }
                let back = ResponseKind::decode(r.key, &mut rest, version).unwrap();
                assert!(rest.is_empty(), "{:?} v{version}", r.key);
                assert_eq!(back, body, "{:?} v{version}", r.key);
            }
        }
    }

    #[test]
    fn api_versions_v3_header_has_no_tagged_fields() {
        let body: ResponseKind = api_versions_response(ErrorCode::None).into();
        let bytes = encode_response(1, 3, &body).unwrap();
        // Straight from correlation id to error_code (0), then the compact array length.
        assert_eq!(
            &bytes[..7],
            &[0, 0, 0, 1, 0, 0, SUPPORTED_APIS.len() as u8 + 1]
        );
        let back = ApiVersionsResponse::decode(&mut bytes.slice(4..), 3).unwrap();
        assert_eq!(back.api_keys.len(), SUPPORTED_APIS.len());
    }

    #[test]
    fn unencodable_version_is_an_error() {
        let body: ResponseKind = MetadataResponse::default().into();
        assert!(matches!(
            encode_response(1, 99, &body),
            Err(WireError::Encode {
                api_version: 99,
                ..
            })
        ));
    }

    #[test]
    fn api_versions_of_an_unknown_version_gets_the_v0_fallback() {
        // A future client: ApiVersions v7, flexible header, a body we cannot know.
        let mut f = BytesMut::new();
        f.put_i16(18);
        f.put_i16(7);
        f.put_i32(1234);
        f.put_slice(&[0, 0, 0xde, 0xad]);
        let f = f.freeze();
        assert!(matches!(
            decode_request(f.clone()),
            Err(WireError::UnsupportedVersion { .. })
        ));
        let reply = unsupported_version_reply(&f).unwrap().unwrap();
        assert_eq!(reply, api_versions_fallback(1234));
        // A served version needs no special reply.
        assert_eq!(
            unsupported_version_reply(&frame(ApiKey::ApiVersions, 3, 1, &[0, 0, 0])).unwrap(),
            None
        );
    }

    #[test]
    fn produce_v0_to_v2_gets_per_partition_errors() {
        let mut body = BytesMut::new();
        body.put_i16(1); // acks
        body.put_i32(1000);
        body.put_i32(1);
        body.put_i16(1);
        body.put_slice(b"t");
        body.put_i32(1);
        body.put_i32(0);
        body.put_i32(-1);
        for version in 0..=2 {
            let f = frame(ApiKey::Produce, version, 5, &body);
            assert!(matches!(
                decode_request(f.clone()),
                Err(WireError::UnsupportedVersion { .. })
            ));
            let reply = unsupported_version_reply(&f).unwrap().unwrap();
            let mut r = reply.clone();
            assert_eq!(r.get_i32(), 5); // correlation id
            assert_eq!(r.get_i32(), 1); // one topic
            assert_eq!(r.get_i16(), 1);
            assert_eq!(r.get_u8(), b't');
            assert_eq!(r.get_i32(), 1); // one partition
            assert_eq!(r.get_i32(), 0);
            assert_eq!(r.get_i16(), ErrorCode::UnsupportedVersion.code());
        }
    }

    #[test]
    fn other_unsupported_versions_close_the_connection() {
        let f = frame(ApiKey::Fetch, 3, 1, &[]);
        assert_eq!(unsupported_version_reply(&f).unwrap(), None);
        let f = frame(ApiKey::Produce, 11, 1, &[]);
        assert_eq!(unsupported_version_reply(&f).unwrap(), None);
        assert!(unsupported_version_reply(&Bytes::from_static(&[0])).is_err());
    }
}
