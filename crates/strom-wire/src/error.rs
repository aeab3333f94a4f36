//! `WireError`: every way a frame, header or message can fail to decode or encode.

use std::fmt;

use kafka_protocol::messages::ApiKey;
use strom_batch::BatchError;
use thiserror::Error;

use crate::ErrorCode;

/// Why the codec refused input or could not produce output. Every variant carries what a
/// broker needs to log the reason and, where Kafka would answer at all, to answer: the api
/// key, version and correlation id once they are known.
#[derive(Debug, Error)]
pub enum WireError {
    /// The transport under a `FramedRead`/`FramedWrite` failed. The codec itself does no
    /// I/O; this variant exists because tokio-util's codec traits require
    /// `From<std::io::Error>` so the framed stream can report socket errors through the
    /// same type.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),

    /// The 4-byte length prefix of a frame is negative.
    #[error("negative frame length {length}")]
    NegativeFrameLength { length: i32 },

    /// The length prefix announces more bytes than the broker accepts in one request.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },

    /// The frame ends inside the request header.
    #[error("request header truncated: need {needed} bytes, frame has {available}")]
    TruncatedHeader { needed: usize, available: usize },

    /// The request header is present but not valid (a negative string length, an unknown
    /// header version).
    #[error("invalid request header: {reason}")]
    InvalidHeader { reason: String },

    /// The api key is not one Strom serves (it may or may not exist in Kafka).
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },

    /// The api is served, but not at this version. For ApiVersions and for Produce v0-v2
    /// Kafka still answers; see [`crate::unsupported_version_reply`].
    #[error(
        "unsupported version {api_version} of {} (correlation id {correlation_id})",
        ApiLabel(*api_key)
    )]
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },

    /// An array in the request body declares more elements than the rest of the frame
    /// could possibly hold. Caught before decoding, because the decoder would otherwise
    /// reserve memory for all of them up front.
    #[error(
        "{} v{api_version} (correlation id {correlation_id}): {structure}.{field} declares \
         {length} elements of at least {min_element_size} bytes at body byte {at}, \
         but only {remaining} bytes remain",
        ApiLabel(*api_key)
    )]
    ImpossibleArrayLength {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        /// The struct (as kafka-protocol names it) and field holding the array.
        structure: &'static str,
        field: &'static str,
        length: u64,
        min_element_size: usize,
        /// Offset in the request body (after the header) where the elements start.
        at: usize,
        remaining: usize,
    },

    /// The request body does not decode at the version its header names.
    #[error(
        "malformed {} v{api_version} request (correlation id {correlation_id}): {reason}",
        ApiLabel(*api_key)
    )]
    MalformedRequest {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },

    /// A response could not be encoded at the requested version (a field set that the
    /// version cannot carry, or a version kafka-protocol does not know).
    #[error("cannot encode response v{api_version}: {reason}")]
    Encode { api_version: i16, reason: String },

    /// A record batch in a Produce request is invalid.
    #[error("invalid record batch: {0}")]
    Records(#[from] BatchError),
}

impl WireError {
    /// The Kafka error code that names this failure, where one exists.
    ///
    /// Connection-level failures (transport, framing, unknown api keys) have none: Kafka
    /// closes the connection for them instead of answering. Whether a response is sent for
    /// the others is the broker's decision; [`crate::unsupported_version_reply`] builds the
    /// answers Kafka sends for unsupported versions.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            WireError::Io(_)
            | WireError::NegativeFrameLength { .. }
            | WireError::FrameTooLarge { .. }
            | WireError::UnknownApiKey { .. }
            | WireError::Encode { .. } => None,
            WireError::TruncatedHeader { .. }
            | WireError::InvalidHeader { .. }
            | WireError::ImpossibleArrayLength { .. }
            | WireError::MalformedRequest { .. } => Some(ErrorCode::InvalidRequest),
            WireError::UnsupportedVersion { .. } => Some(ErrorCode::UnsupportedVersion),
            // Kafka's log validator answers CORRUPT_MESSAGE for bytes that do not add up
            // (lengths, CRC) and INVALID_RECORD for well-formed batches it will not accept;
            // a batch whose records the broker would have to decompress to check is one.
            WireError::Records(e) => Some(match e {
                BatchError::Truncated { .. }
                | BatchError::InvalidLength { .. }
                | BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
                BatchError::UnsupportedMagic { .. }
                | BatchError::InvalidRecordCount { .. }
                | BatchError::Compressed { .. } => ErrorCode::InvalidRecord,
            }),
        }
    }
}

/// Displays an api key by name when kafka-protocol knows it (`Fetch(1)`), by number
/// otherwise, so error messages read well in logs.
pub(crate) struct ApiLabel(pub(crate) i16);

impl fmt::Display for ApiLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ApiKey::try_from(self.0) {
            Ok(key) => write!(f, "{key:?}({})", self.0),
            Err(()) => write!(f, "api key {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_api_and_correlation_id() {
        let e = WireError::UnsupportedVersion {
            api_key: 1,
            api_version: 99,
            correlation_id: 7,
        };
        assert_eq!(
            e.to_string(),
            "unsupported version 99 of Fetch(1) (correlation id 7)"
        );
        let e = WireError::MalformedRequest {
            api_key: 999,
            api_version: 0,
            correlation_id: 1,
            reason: "x".into(),
        };
        assert_eq!(
            e.to_string(),
            "malformed api key 999 v0 request (correlation id 1): x"
        );
    }

    #[test]
    fn error_codes_follow_kafka() {
        let frame = WireError::FrameTooLarge { size: 10, max: 5 };
        assert_eq!(frame.error_code(), None);
        let version = WireError::UnsupportedVersion {
            api_key: 0,
            api_version: 1,
            correlation_id: 0,
        };
        assert_eq!(version.error_code(), Some(ErrorCode::UnsupportedVersion));
        let crc = WireError::from(BatchError::CrcMismatch {
            at: 0,
            stored: 1,
            computed: 2,
        });
        assert_eq!(crc.error_code(), Some(ErrorCode::CorruptMessage));
        let magic = WireError::from(BatchError::UnsupportedMagic { at: 0, magic: 1 });
        assert_eq!(magic.error_code(), Some(ErrorCode::InvalidRecord));
    }
}
