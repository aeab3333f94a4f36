//! The one error type of the storage engine.

use std::path::PathBuf;

use strom_batch::BatchError;
use thiserror::Error;

/// Everything that can go wrong in `strom-log`. Variants carry enough structure for the
/// broker to pick the Kafka error code (see the broker's error mapping) and for an
/// operator to find the damaged file.
#[derive(Debug, Error)]
pub enum LogError {
    /// A batch offered to `append` is malformed or fails its CRC; nothing was written.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A batch is larger than the log's `max_message_bytes`.
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// A replicated batch does not start where the log ends.
    #[error("batch base offset {got} does not follow the log end offset {expected}")]
    NonContiguous { expected: i64, got: i64 },
    /// A read or truncate asked for an offset outside the log.
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        requested: i64,
        start: i64,
        end: i64,
    },
    /// Stored data is damaged at a place that was known to be durable, or damaged in the
    /// middle of the log with valid data after it. Never served; needs an operator.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// An underlying file operation failed (full disk, permissions, no descriptors
    /// left, ...).
    #[error("i/o error on {path}: {source}{}", out_of_files_hint(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The log was closed or deleted while a caller still held it.
    #[error("log {path} is closed")]
    Closed { path: PathBuf },
    /// An earlier write or fsync of this log failed: nothing more is written, flushed
    /// or read until it is recovered (cut back to what was durable and reopened), so no
    /// acknowledgement can cover data the disk may have dropped.
    #[error("log {path} is offline after a storage error: {cause}")]
    Offline { path: PathBuf, cause: String },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error comes from the disk rather than from the caller's input.
    pub fn is_storage_error(&self) -> bool {
        matches!(
            self,
            LogError::Io { .. }
                | LogError::Corrupt { .. }
                | LogError::Closed { .. }
                | LogError::Offline { .. }
        )
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// What an operator should do when a file could not be opened because the process (or
/// the system) has no descriptors left; empty for any other error. A node with many
/// partitions meets this first when its open-file limit is low.
pub fn out_of_files_hint(e: &std::io::Error) -> &'static str {
    // EMFILE and ENFILE, the same on every Linux architecture.
    match e.raw_os_error() {
        Some(24) | Some(23) => {
            " (out of file descriptors: raise the open-file limit, `ulimit -n`, \
             or lower max_open_logs)"
        }
        _ => "",
    }
}

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| LogError::io(path, e))
    }
}
