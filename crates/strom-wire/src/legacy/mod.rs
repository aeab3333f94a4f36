//! Request versions Kafka 4.0 removed (KIP-896) and Strom still serves, so that clients
//! written for Kafka 3 keep working: Sarama before 1.40 at its default version sends
//! DescribeConfigs v0 and OffsetCommit v1, and Kafka 4 closes the connection on them.
//!
//! kafka-protocol 0.18 follows Kafka 4 and cannot read or write these versions, so they are
//! read and written here, by hand, into and out of the same message structs the broker
//! handles for newer versions. The handlers see the real version number. Record batches
//! stay v2 only: Produce v0-v2 are advertised but refused ([`produce`]), Fetch starts at
//! v4.
//!
//! | api                       | versions here | request read as        | response written as     |
//! |---------------------------|---------------|------------------------|-------------------------|
//! | ListOffsets (2)           | 0             | by hand                | by hand (offset list)   |
//! | OffsetCommit (8)          | 0-1           | by hand                | v2 (the same bytes)     |
//! | OffsetFetch (9)           | 0             | v1 (the same bytes)    | v1 (the same bytes)     |
//! | CreateTopics (19)         | 0-1           | by hand                | by hand                 |
//! | DeleteTopics (20)         | 0             | v1 (the same bytes)    | by hand                 |
//! | OffsetForLeaderEpoch (23) | 0-1           | by hand                | by hand                 |
//! | DescribeConfigs (32)      | 0             | by hand                | by hand                 |
//!
//! Reads go through the bounds-checked [`Reader`]; every array count is checked against
//! the bytes left before anything is allocated for it (and the guard has already walked
//! the body with the schema of these versions).

mod admin;
mod offsets;
pub(crate) mod produce;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strom_bytes::ReadError;

use crate::reader::Reader;

/// The apis with versions here; each is served from v0 (checked against the table).
#[cfg(test)]
pub(crate) const APIS: &[ApiKey] = &[
    ApiKey::ListOffsets,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeConfigs,
];

/// True when this version of this api is older than kafka-protocol can handle, so that
/// requests and responses go through this module.
pub(crate) fn is_legacy(key: ApiKey, version: i16) -> bool {
    version < key.valid_versions().min
}

/// Decodes the body of a legacy request (see the table above). The error says what is
/// wrong with it, for a MalformedRequest.
pub(crate) fn decode(key: ApiKey, version: i16, body: &mut Bytes) -> Result<RequestKind, String> {
    match key {
        ApiKey::ListOffsets => read(body, offsets::list_offsets_request).map(Into::into),
        ApiKey::OffsetCommit => {
            read(body, |r| offsets::offset_commit_request(r, version)).map(Into::into)
        }
        ApiKey::OffsetFetch => {
            decode_as::<kafka_protocol::messages::OffsetFetchRequest>(body, 1).map(Into::into)
        }
        ApiKey::CreateTopics => {
            read(body, |r| admin::create_topics_request(r, version)).map(Into::into)
        }
        ApiKey::DeleteTopics => {
            decode_as::<kafka_protocol::messages::DeleteTopicsRequest>(body, 1).map(Into::into)
        }
        ApiKey::OffsetForLeaderEpoch => {
            read(body, offsets::offset_for_leader_epoch_request).map(Into::into)
        }
        ApiKey::DescribeConfigs => read(body, admin::describe_configs_request).map(Into::into),
        other => Err(format!("{other:?} v{version} is not served")),
    }
}

/// Encodes the body of the response to a request of `version` when that version is a
/// legacy one; `None` when kafka-protocol encodes it.
pub(crate) fn encode(
    body: &ResponseKind,
    version: i16,
    out: &mut BytesMut,
) -> Option<Result<(), String>> {
    let legacy = |key| is_legacy(key, version);
    Some(match body {
        ResponseKind::ListOffsets(r) if legacy(ApiKey::ListOffsets) => {
            offsets::list_offsets_response(r, out)
        }
        ResponseKind::OffsetCommit(r) if legacy(ApiKey::OffsetCommit) => encode_as(r, 2, out),
        ResponseKind::OffsetFetch(r) if legacy(ApiKey::OffsetFetch) => encode_as(r, 1, out),
        ResponseKind::CreateTopics(r) if legacy(ApiKey::CreateTopics) => {
            admin::create_topics_response(r, version, out)
        }
        ResponseKind::DeleteTopics(r) if legacy(ApiKey::DeleteTopics) => {
            admin::delete_topics_response(r, out)
        }
        ResponseKind::OffsetForLeaderEpoch(r) if legacy(ApiKey::OffsetForLeaderEpoch) => {
            offsets::offset_for_leader_epoch_response(r, version, out)
        }
        ResponseKind::DescribeConfigs(r) if legacy(ApiKey::DescribeConfigs) => {
            admin::describe_configs_response(r, out)
        }
        _ => return None,
    })
}

/// Why a legacy body does not decode.
#[derive(Debug)]
struct Bad(String);

impl From<ReadError> for Bad {
    fn from(e: ReadError) -> Bad {
        Bad(e.to_string())
    }
}

/// Runs a hand-written decoder over `body` and consumes what it read.
fn read<T>(
    body: &mut Bytes,
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T, Bad>,
) -> Result<T, String> {
    let mut r = Reader::new(body);
    let value = decode(&mut r).map_err(|e| e.0)?;
    let used = r.position();
    let _ = body.split_to(used);
    Ok(value)
}

/// Decodes with kafka-protocol at `alias`, a newer version with the same bytes.
fn decode_as<T: Decodable>(body: &mut Bytes, alias: i16) -> Result<T, String> {
    T::decode(body, alias).map_err(|e| format!("{e:#}"))
}

/// Encodes with kafka-protocol at `alias`, a newer version with the same bytes.
fn encode_as<T: Encodable>(body: &T, alias: i16, out: &mut BytesMut) -> Result<(), String> {
    body.encode(out, alias).map_err(|e| format!("{e:#}"))
}

/// A STRING that may not be null.
fn string(r: &mut Reader<'_>) -> Result<StrBytes, Bad> {
    let at = r.position();
    match r.nullable_string()? {
        Some(s) => Ok(StrBytes::from_string(s.to_owned())),
        None => Err(Bad(format!(
            "null string at byte {at} where one is required"
        ))),
    }
}

/// A NULLABLE_STRING.
fn nullable_string(r: &mut Reader<'_>) -> Result<Option<StrBytes>, Bad> {
    Ok(r.nullable_string()?
        .map(|s| StrBytes::from_string(s.to_owned())))
}

/// An ARRAY that may not be null: its element count, checked against the bytes left.
fn array(r: &mut Reader<'_>, min_element_size: usize) -> Result<usize, Bad> {
    let at = r.position();
    r.array_len(min_element_size)?
        .ok_or_else(|| Bad(format!("null array at byte {at} where one is required")))
}

/// Reads `n` elements with `element`, without reserving memory for `n` up front.
fn elements<T>(
    r: &mut Reader<'_>,
    min_element_size: usize,
    mut element: impl FnMut(&mut Reader<'_>) -> Result<T, Bad>,
) -> Result<Vec<T>, Bad> {
    let n = array(r, min_element_size)?;
    (0..n).map(|_| element(r)).collect()
}

fn put_str(out: &mut BytesMut, s: &str) -> Result<(), String> {
    let len = i16::try_from(s.len()).map_err(|_| format!("string of {} bytes", s.len()))?;
    out.put_i16(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_nullable_str(out: &mut BytesMut, s: Option<&str>) -> Result<(), String> {
    match s {
        Some(s) => put_str(out, s),
        None => {
            out.put_i16(-1);
            Ok(())
        }
    }
}

fn put_len(out: &mut BytesMut, n: usize) -> Result<(), String> {
    out.put_i32(i32::try_from(n).map_err(|_| format!("array of {n} elements"))?);
    Ok(())
}

#[cfg(test)]
mod tests;
