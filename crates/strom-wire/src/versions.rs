//! Strom's own table of the APIs and versions it serves, and the ApiVersions answers
//! built from it.
//!
//! The table is written out by hand on purpose. kafka-protocol's `valid_versions()` lists
//! what the crate can parse, which is more than Strom implements (and for OffsetCommit,
//! OffsetFetch and InitProducerId more than the broker's semantics support); advertising
//! it would make clients use features the broker does not have.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::protocol::Encodable;

use crate::ErrorCode;
use crate::header::encode_response_header;

/// One API Strom advertises, with the inclusive range of versions it advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Every API Strom answers, in api key order, with the versions it advertises in
/// ApiVersions. A version outside its range is refused with UNSUPPORTED_VERSION.
///
/// Old versions are deliberately kept at the bottom of several ranges: librdkafka <= 2.11
/// (kcat on Debian among them) turns features on only when the advertised ranges include
/// them, e.g. compression needs Produce v0.
///
/// The consumer-group APIs start at v0 (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// FindCoordinator): the balanced consumer of old librdkafka needs v0 in range, and it
/// enables LZ4 only when FindCoordinator v0 is advertised.
///
/// The offset, group and admin APIs start where Kafka 3.9's did, below Kafka 4's floor
/// (KIP-896), so that clients written for Kafka 3 keep working: Sarama before 1.40 sends
/// DescribeConfigs v0 and OffsetCommit v1 at its defaults. [`crate::legacy`] reads and
/// writes the versions kafka-protocol no longer knows. Record batches stay v2 only.
///
/// Only APIs the broker implements are listed: advertising one it cannot serve would make
/// clients use it.
pub const SUPPORTED_APIS: &[ApiRange] = &[
    api(ApiKey::Produce, 0, 12),
    api(ApiKey::Fetch, 4, 16),
    api(ApiKey::ListOffsets, 0, 8),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::OffsetCommit, 0, 8),
    api(ApiKey::OffsetFetch, 0, 8),
    api(ApiKey::FindCoordinator, 0, 4),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::ApiVersions, 0, 5),
    api(ApiKey::CreateTopics, 0, 7),
    api(ApiKey::DeleteTopics, 0, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 0, 4),
    // Transactions (docs/transactions.md): the client's forms at transaction versions 1
    // and 2 (Produce v12, EndTxn v5 and TxnOffsetCommit v5 are KIP-890 part 2's, used by
    // clients that see the `transaction.version` feature finalized at 2), the partition
    // leaders' AddPartitionsToTxn v4+ (verify-only for part 1, adding for part 2), and
    // WriteTxnMarkers for a coordinator's markers to partitions this node leads.
    api(ApiKey::AddPartitionsToTxn, 0, 5),
    api(ApiKey::AddOffsetsToTxn, 0, 4),
    api(ApiKey::EndTxn, 0, 5),
    api(ApiKey::WriteTxnMarkers, 1, 1),
    api(ApiKey::TxnOffsetCommit, 0, 5),
    api(ApiKey::DescribeConfigs, 0, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
];

/// Produce v0-v2 (the pre-0.11 message-set formats) are advertised, like Kafka 4.0 does,
/// only so that old librdkafka enables compression; a request that actually uses them is
/// answered with UNSUPPORTED_VERSION. This is the first Produce version that is served.
pub const PRODUCE_MIN_USABLE_VERSION: i16 = 3;

/// The advertised range for an api key, if Strom serves that api at all.
pub fn advertised_range(api_key: i16) -> Option<ApiRange> {
    SUPPORTED_APIS
        .iter()
        .copied()
        .find(|r| r.key as i16 == api_key)
}

/// True when ApiVersions lists this version of this api.
pub fn is_advertised(api_key: i16, version: i16) -> bool {
    advertised_range(api_key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

/// True when a request of this api and version is decoded and served. Differs from
/// [`is_advertised`] only for Produce v0-v2 (see [`PRODUCE_MIN_USABLE_VERSION`]).
pub fn is_usable(api_key: i16, version: i16) -> bool {
    is_advertised(api_key, version)
        && !(api_key == ApiKey::Produce as i16 && version < PRODUCE_MIN_USABLE_VERSION)
}

/// The ApiVersions response body listing [`SUPPORTED_APIS`], with `error_code` set (NONE
/// for a normal answer). Encode it at the request's version; no throttling, no features.
pub fn api_versions_response(error_code: ErrorCode) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code.code())
        .with_api_keys(api_keys)
}

/// The frame body (ready for [`crate::FrameCodec`]) answering an ApiVersions request of a
/// version Strom does not serve: what Kafka sends, so a client retries at a version both
/// sides know. It is always in the v0 format, because a client that sent a version we do
/// not know can still parse v0:
///
/// ```text
/// offset  size  field
///      0     4  correlation_id    response header v0: no tagged fields
///      4     2  error_code        35 = UNSUPPORTED_VERSION
///      6     4  api_keys count    INT32 array length
///     10   6*n  api_keys          per api: api_key INT16, min_version INT16, max_version INT16
/// ```
pub fn api_versions_fallback(correlation_id: i32) -> Bytes {
    let body = api_versions_response(ErrorCode::UnsupportedVersion);
    let mut buf = BytesMut::with_capacity(10 + 6 * SUPPORTED_APIS.len());
    // Header v0 and a v0 body built from our own constant table always encode; a failure
    // here would be a bug in this crate or in kafka-protocol, not bad input.
    encode_response_header(&mut buf, correlation_id, 0).expect("response header v0 encodes");
    body.encode(&mut buf, 0)
        .expect("ApiVersionsResponse v0 encodes");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;

    /// The ranges Strom's broker implements, restated independently of the table above.
    const EXPECTED: &[(&str, i16, i16)] = &[
        ("ApiVersions", 0, 5),
        ("Metadata", 0, 12),
        ("Produce", 0, 12),
        ("Fetch", 4, 16),
        ("ListOffsets", 0, 8),
        ("CreateTopics", 0, 7),
        ("DeleteTopics", 0, 6),
        ("CreatePartitions", 0, 3),
        ("DescribeConfigs", 0, 4),
        ("AlterConfigs", 0, 2),
        ("IncrementalAlterConfigs", 0, 1),
        ("DeleteRecords", 0, 2),
        ("InitProducerId", 0, 5),
        ("OffsetForLeaderEpoch", 0, 4),
        ("DescribeCluster", 0, 1),
        ("FindCoordinator", 0, 4),
        ("JoinGroup", 0, 9),
        ("SyncGroup", 0, 5),
        ("Heartbeat", 0, 4),
        ("LeaveGroup", 0, 5),
        ("OffsetCommit", 0, 8),
        ("OffsetFetch", 0, 8),
        ("DescribeGroups", 0, 6),
        ("ListGroups", 0, 5),
        ("DeleteGroups", 0, 2),
        ("OffsetDelete", 0, 0),
        ("DescribeTopicPartitions", 0, 0),
        ("AddPartitionsToTxn", 0, 5),
        ("AddOffsetsToTxn", 0, 4),
        ("EndTxn", 0, 5),
        ("TxnOffsetCommit", 0, 5),
        ("WriteTxnMarkers", 1, 1),
        ("DescribeTransactions", 0, 0),
        ("ListTransactions", 0, 1),
        ("DescribeProducers", 0, 0),
    ];

    #[test]
    fn table_is_the_agreed_one() {
        assert_eq!(SUPPORTED_APIS.len(), EXPECTED.len());
        for &(name, min, max) in EXPECTED {
            let range = SUPPORTED_APIS
                .iter()
                .find(|r| format!("{:?}", r.key) == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((range.min, range.max), (min, max), "{name}");
        }
        let keys: Vec<i16> = SUPPORTED_APIS.iter().map(|r| r.key as i16).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "sorted and unique: {keys:?}"
        );
    }

    #[test]
    fn every_usable_version_is_one_kafka_protocol_can_decode() {
        for r in SUPPORTED_APIS {
            let theirs = r.key.valid_versions();
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            // Above kafka-protocol's ceiling, crate::newer must serve every version.
            assert!(
                r.max <= theirs.max || crate::newer::APIS.contains(&r.key),
                "{:?}: {theirs}",
                r.key
            );
            // Below kafka-protocol's floor, crate::legacy must serve every version.
            assert!(
                theirs.min <= min || crate::legacy::APIS.contains(&r.key),
                "{:?}: {theirs}",
                r.key
            );
        }
    }

    #[test]
    fn produce_v0_to_v2_advertised_not_usable() {
        let produce = ApiKey::Produce as i16;
        for v in 0..=2 {
            assert!(is_advertised(produce, v) && !is_usable(produce, v), "v{v}");
        }
        for v in 3..=12 {
            assert!(is_usable(produce, v), "v{v}");
        }
        assert!(!is_advertised(produce, 13) && !is_usable(produce, -1));
        let fetch = ApiKey::Fetch as i16;
        assert!(!is_advertised(fetch, 3) && is_usable(fetch, 4) && is_usable(fetch, 16));
        assert!(!is_usable(fetch, 17));
        // SaslHandshake exists in Kafka but not in Strom.
        assert_eq!(advertised_range(ApiKey::SaslHandshake as i16), None);
        assert_eq!(advertised_range(-1), None);
    }

    #[test]
    fn api_versions_response_round_trips_at_every_version() {
        let body = api_versions_response(ErrorCode::None);
        for version in 0..=4 {
            let mut buf = BytesMut::new();
            body.encode(&mut buf, version).unwrap();
            let back = ApiVersionsResponse::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(back.error_code, 0);
            let listed: Vec<(i16, i16, i16)> = back
                .api_keys
                .iter()
                .map(|a| (a.api_key, a.min_version, a.max_version))
                .collect();
            let table: Vec<(i16, i16, i16)> = SUPPORTED_APIS
                .iter()
                .map(|r| (r.key as i16, r.min, r.max))
                .collect();
            assert_eq!(listed, table, "v{version}");
        }
    }

    #[test]
    fn fallback_is_v0_with_unsupported_version() {
        let bytes = api_versions_fallback(0x0102_0304);
        // Header v0 and the start of the body, byte for byte.
        assert_eq!(&bytes[..4], &[1, 2, 3, 4]);
        assert_eq!(&bytes[4..6], &35i16.to_be_bytes());
        assert_eq!(&bytes[6..10], &(SUPPORTED_APIS.len() as i32).to_be_bytes());
        // Produce (key 0) is first: 0..12.
        assert_eq!(&bytes[10..16], &[0, 0, 0, 0, 0, 12]);
        assert_eq!(bytes.len(), 10 + 6 * SUPPORTED_APIS.len());
        // And a v0 parser reads it whole.
        let mut body = bytes.slice(4..);
        let back = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert!(body.is_empty());
        assert_eq!(back.error_code, ErrorCode::UnsupportedVersion.code());
        assert_eq!(back.api_keys.len(), SUPPORTED_APIS.len());
        let fetch = back.api_keys.iter().find(|a| a.api_key == 1).unwrap();
        assert_eq!((fetch.min_version, fetch.max_version), (4, 16));
    }
}
