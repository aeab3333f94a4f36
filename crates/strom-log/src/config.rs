//! Per-log settings: segment size and age, index density, retention and durability.

use std::time::Duration;

/// How appended bytes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is made durable before it counts: callers ask the group commit for
    /// durability and many appends share one fsync round.
    EveryAppend,
    /// fsync at most this long after an append.
    Interval(Duration),
    /// fsync once this many bytes are unflushed.
    Bytes(u64),
    /// Leave it to the operating system; only clean shutdown and segment roll fsync.
    Os,
}

/// Settings of one partition log. Defaults follow Kafka's broker defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this many bytes
    /// (Kafka `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll once the active segment's first append is this old (Kafka `segment.ms`).
    pub segment_ms: Option<i64>,
    /// Bytes of log between two offset-index entries (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Size each index file is preallocated to (Kafka `segment.index.bytes`).
    pub max_index_bytes: u32,
    /// Delete segments whose newest record is older than this (Kafka `retention.ms`);
    /// `None` keeps data forever.
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments while the log is larger than this (Kafka
    /// `retention.bytes`); `None` for no size limit.
    pub retention_bytes: Option<u64>,
    /// The largest batch accepted (Kafka `max.message.bytes`).
    pub max_message_bytes: usize,
    /// When appended bytes are fsynced.
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            index_interval_bytes: 4096,
            max_index_bytes: 10 * 1024 * 1024,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            max_message_bytes: 1024 * 1024 + 12,
            flush: FlushPolicy::EveryAppend,
        }
    }
}
