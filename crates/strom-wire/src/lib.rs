//! The Kafka wire protocol as Strom speaks it: framing, request and response headers,
//! message bodies, the table of supported API versions, and record batches in Produce
//! requests.
//!
//! **Architecture Invariant:** this crate does no I/O. It turns bytes into typed requests
//! and typed responses into bytes; sockets, files and the tokio runtime belong to
//! `strom-broker`. (tokio-util's codec traits are used for [`FrameCodec`] so that a caller
//! can wrap a socket in `Framed`, but nothing here reads or writes one. The broker reads
//! frames itself, to take a frame's length from its memory budget before the body, and
//! asks [`decoded_cost`] what decoding a frame will hold before decoding it.)
//!
//! **Architecture Invariant:** no input makes it panic or abort. Message bodies are decoded
//! by the `kafka-protocol` crate, and each body is first walked by an internal guard that
//! refuses array lengths the frame cannot back (kafka-protocol 0.18 would otherwise reserve
//! memory for them before reading, and an allocation failure aborts the process).
//!
//! The path of one request through a broker:
//!
//! ```text
//! socket bytes --FrameCodec--> frame --decode_request--> Request { header, body: RequestKind }
//!   broker work
//! ResponseKind --encode_response(correlation id, version)--> message --FrameCodec--> socket
//! ```
//!
//! When `decode_request` fails with [`WireError::UnsupportedVersion`],
//! [`unsupported_version_reply`] gives the answer Kafka sends (ApiVersions and Produce
//! v0-v2), or says to close the connection.
//!
//! Message types come from `kafka_protocol::messages`, re-exported here as
//! [`kafka_protocol`] so that the broker uses the same version.

mod error;
mod fetch_response;
mod frame;
mod guard;
mod header;
mod legacy;
mod newer;
mod reader;
mod records;
mod request;
mod response;
mod schema;
mod versions;

pub use error::WireError;
pub use fetch_response::{
    FetchPart, FetchPartitionOut, FetchResponseParts, FetchTopicOut, encode_fetch_response,
};
pub use frame::{DEFAULT_MAX_FRAME_SIZE, FrameCodec, LENGTH_PREFIX_LEN};
pub use header::{
    REQUEST_PREFIX_LEN, RequestPrefix, decode_request_header, encode_request_header,
    encode_response_header, peek_request_prefix, request_header_version, response_header_version,
};
pub use newer::{
    CLUSTER_ID_TAG as API_VERSIONS_CLUSTER_ID_TAG, NODE_ID_TAG as API_VERSIONS_NODE_ID_TAG,
    api_versions_target,
};
pub use records::{ProducedBatch, produced_batches};
pub use request::{
    DECODED_BYTES_PER_STRING, DECODED_BYTES_PER_STRUCT, Request, decode_request, decoded_cost,
};
pub use response::{encode_response, unsupported_version_reply};
pub use strom_codes::ErrorCode;
pub use versions::{
    ApiRange, PRODUCE_MIN_USABLE_VERSION, SUPPORTED_APIS, advertised_range, api_versions_fallback,
    api_versions_response, is_advertised, is_usable,
};

pub use kafka_protocol;
