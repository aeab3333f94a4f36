//! `ClientError`: every way a client operation fails, with Kafka's error name when the
//! broker answered with an error code.

use std::fmt;

use kafka_protocol::error::ParseResponseErrorCode;
use strom_wire::{ErrorCode, WireError};
use thiserror::Error;

/// Why a client operation failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Connecting to or talking with a broker failed at the socket level.
    #[error("cannot reach broker {addr}: {cause}")]
    Connect {
        addr: String,
        /// Not `source`: the message already says it, and `{:#}` would repeat it.
        cause: std::io::Error,
    },

    /// The connection broke while requests were in flight.
    #[error("connection to {addr} closed: {reason}")]
    Disconnected { addr: String, reason: String },

    /// A request or response could not be encoded or decoded.
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),

    /// The broker answered with a Kafka error code.
    #[error("{context}: {}{}", KafkaName(*code), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// What was being done ("create topic orders").
        context: String,
        code: i16,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },

    /// The broker does not serve an api (or no version both sides understand).
    #[error("the broker does not support {api} (versions {broker_min}..={broker_max})")]
    UnsupportedApi {
        api: &'static str,
        broker_min: i16,
        broker_max: i16,
    },

    /// A topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),

    /// A partition does not exist.
    #[error("unknown partition {topic}/{partition}")]
    UnknownPartition { topic: String, partition: i32 },

    /// The operation did not finish in time.
    #[error("timed out after {0:?} {1}")]
    Timeout(std::time::Duration, String),

    /// A record batch could not be built or read back (compression, corrupt records).
    #[error("records: {0}")]
    Records(String),

    /// The answer did not make sense (a missing partition, a malformed assignment).
    #[error("unexpected answer: {0}")]
    Protocol(String),

    /// The caller asked for something invalid (an empty bootstrap list, a bad argument).
    #[error("{0}")]
    Invalid(String),
}

/// One failure can be the answer of many partitions (a broken connection fails every
/// batch it carried), so errors are cloned; an io error keeps its kind and message,
/// a wire error its message.
impl Clone for ClientError {
    fn clone(&self) -> Self {
        match self {
            ClientError::Connect { addr, cause } => ClientError::Connect {
                addr: addr.clone(),
                cause: std::io::Error::new(cause.kind(), cause.to_string()),
            },
            ClientError::Disconnected { addr, reason } => ClientError::Disconnected {
                addr: addr.clone(),
                reason: reason.clone(),
            },
            ClientError::Wire(e) => ClientError::Protocol(e.to_string()),
            ClientError::Kafka {
                context,
                code,
                message,
            } => ClientError::Kafka {
                context: context.clone(),
                code: *code,
                message: message.clone(),
            },
            ClientError::UnsupportedApi {
                api,
                broker_min,
                broker_max,
            } => ClientError::UnsupportedApi {
                api,
                broker_min: *broker_min,
                broker_max: *broker_max,
            },
            ClientError::UnknownTopic(t) => ClientError::UnknownTopic(t.clone()),
            ClientError::UnknownPartition { topic, partition } => ClientError::UnknownPartition {
                topic: topic.clone(),
                partition: *partition,
            },
            ClientError::Timeout(d, what) => ClientError::Timeout(*d, what.clone()),
            ClientError::Records(m) => ClientError::Records(m.clone()),
            ClientError::Protocol(m) => ClientError::Protocol(m.clone()),
            ClientError::Invalid(m) => ClientError::Invalid(m.clone()),
        }
    }
}

impl ClientError {
    /// A Kafka error for a non-zero `code`, `None` for 0.
    pub fn check(
        code: i16,
        message: Option<&str>,
        context: impl FnOnce() -> String,
    ) -> Result<(), ClientError> {
        if code == 0 {
            return Ok(());
        }
        Err(ClientError::Kafka {
            context: context(),
            code,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        })
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether a metadata refresh and a retry can help: the leader or coordinator moved
    /// or is being elected, or a connection broke.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_retriable_code(*code),
            ClientError::Disconnected { .. } => true,
            _ => false,
        }
    }
}

/// Codes after which the client refreshes metadata (or finds the coordinator again) and
/// retries: leadership and coordination move between brokers of a cluster.
pub fn is_retriable_code(code: i16) -> bool {
    [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::LeaderNotAvailable,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotCoordinator,
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::RequestTimedOut,
    ]
    .iter()
    .any(|c| c.code() == code)
}

/// Kafka's name of an error code (`NOT_LEADER_OR_FOLLOWER`), for codes Strom's broker
/// knows and for every other code kafka-protocol knows.
pub fn error_name(code: i16) -> String {
    if let Some(e) = ErrorCode::from_code(code) {
        return e.name().to_owned();
    }
    match code.err() {
        Some(e) => screaming_snake(&format!("{e:?}")),
        None => "NONE".to_owned(),
    }
}

struct KafkaName(i16);

impl fmt::Display for KafkaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", error_name(self.0))
    }
}

fn screaming_snake(camel: &str) -> String {
    // `Unknown(1000)` for codes nobody knows.
    if let Some(n) = camel.strip_prefix("Unknown(") {
        return format!("UNKNOWN_ERROR_CODE_{}", n.trim_end_matches(')'));
    }
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(58), "SASL_AUTHENTICATION_FAILED");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        let e = ClientError::check(36, Some("exists"), || "create topic a".into()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "create topic a: TOPIC_ALREADY_EXISTS (exists)"
        );
        assert!(
            ClientError::check(15, None, String::new)
                .unwrap_err()
                .is_retriable()
        );
    }
}
