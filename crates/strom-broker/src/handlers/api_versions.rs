//! ApiVersions: the APIs and versions Strom serves (strom-wire's table) and, from v3, the
//! features: `transaction.version`, supported 0 to 2 and finalized at the
//! `transaction_version` setting, which Kafka's clients read to choose KIP-890 part 2.
//! From v5 (KIP-1242) a client may name the cluster and node it meant to reach: another
//! one answers REBOOTSTRAP_REQUIRED, as Kafka does.

use std::sync::OnceLock;

use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::api_versions_response::{
    FinalizedFeatureKey, SupportedFeatureKey,
};
use strom_wire::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::str_bytes;

/// The feature Kafka's transactional clients look for.
pub(crate) const TRANSACTION_VERSION: &str = "transaction.version";

/// The highest `transaction.version` Strom implements.
pub(crate) const MAX_TRANSACTION_VERSION: i16 = 2;

/// The epoch of the finalized features: when this process first answered. A client
/// adopts finalized features only from an epoch above the one it has seen, so a node
/// restarted with another `transaction_version` is believed by clients that reconnect.
fn features_epoch() -> i64 {
    static EPOCH: OnceLock<i64> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Kafka's rule for v3+'s `client_software_name` and `client_software_version`
/// (KIP-511): `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() && b.iter().all(inner)
        }
        _ => false,
    }
}

/// Answers an ApiVersions request of `version` to node `node_id` of cluster
/// `cluster_id`.
pub(crate) fn answer(
    req: &ApiVersionsRequest,
    version: i16,
    level: i16,
    cluster_id: &str,
    node_id: i32,
) -> ApiVersionsResponse {
    if version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        // As Kafka answers it: the error alone, no api list.
        tracing::debug!(
            name = %req.client_software_name.as_str(),
            version = %req.client_software_version.as_str(),
            "ApiVersions with an invalid client software name or version"
        );
        return ApiVersionsResponse::default().with_error_code(ErrorCode::InvalidRequest.code());
    }
    match strom_wire::api_versions_target(req) {
        (None, -1) => api_versions(level),
        (Some(c), n) if n >= 0 => {
            if c == cluster_id && n == node_id {
                api_versions(level)
            } else {
                tracing::info!(
                    cluster = %c, node = n, "ApiVersions meant for another cluster or node"
                );
                ApiVersionsResponse::default()
                    .with_error_code(ErrorCode::RebootstrapRequired.code())
            }
        }
        // Both or neither, says KIP-1242.
        _ => ApiVersionsResponse::default().with_error_code(ErrorCode::InvalidRequest.code()),
    }
}

/// The ApiVersions answer with `transaction.version` finalized at `level` (0 is not
/// listed as finalized, as Kafka leaves out features at level 0).
pub(crate) fn api_versions(level: i16) -> ApiVersionsResponse {
    let finalized = (level > 0)
        .then(|| {
            FinalizedFeatureKey::default()
                .with_name(str_bytes(TRANSACTION_VERSION))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .into_iter()
        .collect();
    strom_wire::api_versions_response(ErrorCode::None)
        .with_supported_features(vec![
            SupportedFeatureKey::default()
                .with_name(str_bytes(TRANSACTION_VERSION))
                .with_min_version(0)
                .with_max_version(MAX_TRANSACTION_VERSION),
        ])
        .with_finalized_features_epoch(features_epoch())
        .with_finalized_features(finalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use strom_wire::kafka_protocol::protocol::{Decodable, Encodable};

    fn v5(cluster: Option<&str>, node: i32) -> ApiVersionsRequest {
        let mut req = named().with_unknown_tagged_field(
            strom_wire::API_VERSIONS_NODE_ID_TAG,
            bytes::Bytes::copy_from_slice(&node.to_be_bytes()),
        );
        if let Some(c) = cluster {
            req = req.with_unknown_tagged_field(
                strom_wire::API_VERSIONS_CLUSTER_ID_TAG,
                bytes::Bytes::from(c.to_string()),
            );
        }
        req
    }

    /// KIP-1242: the right cluster and node, or none named, get the answer; another
    /// cluster or node REBOOTSTRAP_REQUIRED; a cluster without a node INVALID_REQUEST.
    #[test]
    fn a_v5_request_for_another_cluster_or_node_is_told_to_rebootstrap() {
        let ok = |r: ApiVersionsResponse| r.error_code == 0 && !r.api_keys.is_empty();
        assert!(ok(answer(&ApiVersionsRequest::default(), 2, 2, "c1", 1)));
        assert!(ok(answer(&v5(None, -1), 5, 2, "c1", 1)));
        assert!(ok(answer(&v5(Some("c1"), 1), 5, 2, "c1", 1)));
        let code = |r: ApiVersionsResponse| r.error_code;
        assert_eq!(
            code(answer(&v5(Some("c2"), 1), 5, 2, "c1", 1)),
            ErrorCode::RebootstrapRequired.code()
        );
        assert_eq!(
            code(answer(&v5(Some("c1"), 2), 5, 2, "c1", 1)),
            ErrorCode::RebootstrapRequired.code()
        );
        assert_eq!(
            code(answer(&v5(Some("c1"), -1), 5, 2, "c1", 1)),
            ErrorCode::InvalidRequest.code()
        );
        assert_eq!(
            code(answer(&v5(None, 3), 5, 2, "c1", 1)),
            ErrorCode::InvalidRequest.code()
        );
    }

    fn named() -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(str_bytes("librdkafka"))
            .with_client_software_version(str_bytes("2.12.1"))
    }

    /// KIP-511: from v3 the client's software name and version must match Kafka's
    /// pattern, or the answer is INVALID_REQUEST (v0-2 carry neither).
    #[test]
    fn v3_software_names_follow_kafkas_pattern() {
        for good in [
            "librdkafka",
            "apache-kafka-java",
            "2.16.1-rdkafka-2.16.0",
            "v1.22.3",
            "a",
        ] {
            assert!(valid_software_field(good), "{good}");
        }
        for bad in ["", "-x", "x-", "x y", "(devel)", "x_y", ".x", "é"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
        assert_eq!(answer(&named(), 3, 2, "c1", 1).error_code, 0);
        let unnamed = ApiVersionsRequest::default();
        assert_eq!(answer(&unnamed, 2, 2, "c1", 1).error_code, 0);
        assert_eq!(
            answer(&unnamed, 3, 2, "c1", 1).error_code,
            ErrorCode::InvalidRequest.code()
        );
    }

    /// v3+ carries the features (tagged fields); v0-2 never did, and still encode.
    #[test]
    fn features_are_listed_from_v3_and_level_0_is_not_finalized() {
        for version in 0..=4 {
            let mut buf = BytesMut::new();
            api_versions(2).encode(&mut buf, version).unwrap();
            let back = ApiVersionsResponse::decode(&mut buf.freeze(), version).unwrap();
            if version < 3 {
                assert!(back.supported_features.is_empty());
                continue;
            }
            assert_eq!(back.supported_features.len(), 1);
            assert_eq!(
                back.supported_features[0].name.as_str(),
                TRANSACTION_VERSION
            );
            assert_eq!(back.supported_features[0].max_version, 2);
            assert_eq!(back.finalized_features.len(), 1);
            assert_eq!(back.finalized_features[0].max_version_level, 2);
            assert!(back.finalized_features_epoch > 0);
        }
        assert!(api_versions(0).finalized_features.is_empty());
        assert_eq!(api_versions(1).finalized_features[0].max_version_level, 1);
    }
}
