//! Request versions newer than kafka-protocol 0.18 knows, read by hand into the newest
//! message struct it has, as [`crate::legacy`] does for the older ones:
//!
//! | api              | version | request                                   | response        |
//! |------------------|---------|-------------------------------------------|-----------------|
//! | ApiVersions (18) | 5       | v4 + cluster_id, node_id (KIP-1242)       | v4 (same bytes) |
//!
//! franz-go and Kafka 4.4's own clients send ApiVersions v5 first; answering it with
//! UNSUPPORTED_VERSION costs them a round trip, and franz-go then decides on transaction
//! version 2 (KIP-890 part 2) before it has seen the features of the retried answer.
//!
//! A v5 request's `cluster_id` and `node_id` have no field in kafka-protocol's struct:
//! they ride in its unknown tagged fields under tags that cannot come from the wire
//! (Kafka's tags are never negative), [`CLUSTER_ID_TAG`] and [`NODE_ID_TAG`], and
//! [`api_versions_target`] reads them back.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::reader::Reader;

/// The unknown-tagged-field key holding a v5 request's cluster id (UTF-8).
pub const CLUSTER_ID_TAG: i32 = -1;
/// The unknown-tagged-field key holding a v5 request's node id (INT32, big-endian).
pub const NODE_ID_TAG: i32 = -2;

/// The apis with versions here.
#[cfg(test)]
pub(crate) const APIS: &[ApiKey] = &[ApiKey::ApiVersions];

/// True when this version of this api is newer than kafka-protocol can handle.
pub(crate) fn is_newer(key: ApiKey, version: i16) -> bool {
    version > key.valid_versions().max
}

/// Decodes the body of a newer request (see the table above).
pub(crate) fn decode(key: ApiKey, version: i16, body: &mut Bytes) -> Result<RequestKind, String> {
    match key {
        ApiKey::ApiVersions => {
            let mut r = Reader::new(body);
            let req = api_versions_request(&mut r).map_err(|e| e.to_string())?;
            let used = r.position();
            let _ = body.split_to(used);
            Ok(req.into())
        }
        other => Err(format!("{other:?} v{version} is not served")),
    }
}

fn api_versions_request(r: &mut Reader<'_>) -> Result<ApiVersionsRequest, strom_bytes::ReadError> {
    let name = r.compact_nullable_string()?.unwrap_or_default().to_owned();
    let version = r.compact_nullable_string()?.unwrap_or_default().to_owned();
    let cluster_id = r.compact_nullable_string()?.map(str::to_owned);
    let node_id = r.i32()?;
    r.skip_tagged_fields()?;
    let mut req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_string(name))
        .with_client_software_version(StrBytes::from_string(version))
        .with_unknown_tagged_field(NODE_ID_TAG, Bytes::copy_from_slice(&node_id.to_be_bytes()));
    if let Some(id) = cluster_id {
        req = req.with_unknown_tagged_field(CLUSTER_ID_TAG, Bytes::from(id.into_bytes()));
    }
    Ok(req)
}

/// The cluster and node a v5 ApiVersions request says it meant to reach: (cluster id,
/// node id), `(None, -1)` for older versions or a bootstrapping client.
pub fn api_versions_target(req: &ApiVersionsRequest) -> (Option<String>, i32) {
    let cluster = req
        .unknown_tagged_fields
        .get(&CLUSTER_ID_TAG)
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let node = req
        .unknown_tagged_fields
        .get(&NODE_ID_TAG)
        .and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok())
        .map_or(-1, i32::from_be_bytes);
    (cluster, node)
}

/// Encodes the response to a newer request version; `None` when kafka-protocol encodes
/// it.
pub(crate) fn encode(
    body: &ResponseKind,
    version: i16,
    out: &mut BytesMut,
) -> Option<Result<(), String>> {
    match body {
        ResponseKind::ApiVersions(r) if is_newer(ApiKey::ApiVersions, version) => {
            let max = ApiKey::ApiVersions.valid_versions().max;
            Some(r.encode(out, max).map_err(|e| format!("{e:#}")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;

    fn v5_body(cluster: Option<&str>, node: i32) -> Bytes {
        let mut w = strom_bytes::Writer::new();
        w.compact_string("franz-go");
        w.compact_string("1.22.3");
        w.compact_nullable_string(cluster);
        w.i32(node);
        w.uvarint(0);
        w.finish()
    }

    #[test]
    fn api_versions_v5_reads_the_target_and_answers_in_v4_bytes() {
        let mut body = v5_body(Some("strom-cluster"), 2);
        let RequestKind::ApiVersions(req) = decode(ApiKey::ApiVersions, 5, &mut body).unwrap()
        else {
            panic!("not ApiVersions")
        };
        assert!(body.is_empty());
        assert_eq!(req.client_software_name.as_str(), "franz-go");
        assert_eq!(req.client_software_version.as_str(), "1.22.3");
        assert_eq!(api_versions_target(&req), (Some("strom-cluster".into()), 2));

        let mut body = v5_body(None, -1);
        let RequestKind::ApiVersions(req) = decode(ApiKey::ApiVersions, 5, &mut body).unwrap()
        else {
            panic!("not ApiVersions")
        };
        assert_eq!(api_versions_target(&req), (None, -1));
        assert_eq!(
            api_versions_target(&ApiVersionsRequest::default()),
            (None, -1)
        );

        let response = crate::api_versions_response(crate::ErrorCode::None);
        let mut out = BytesMut::new();
        encode(&ResponseKind::ApiVersions(response.clone()), 5, &mut out)
            .unwrap()
            .unwrap();
        let back =
            kafka_protocol::messages::ApiVersionsResponse::decode(&mut out.freeze(), 4).unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn a_truncated_v5_request_is_refused() {
        let full = v5_body(Some("c"), 1);
        for cut in 0..full.len() {
            let mut body = full.slice(..cut);
            assert!(
                decode(ApiKey::ApiVersions, 5, &mut body).is_err(),
                "cut {cut}"
            );
        }
    }
}
