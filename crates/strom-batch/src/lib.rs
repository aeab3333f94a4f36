//! Kafka RecordBatch v2 as bytes: a zero-copy view of the batch header, CRC-32C
//! validation, stamping of the fields that lie outside the CRC, the record-level checks
//! the broker makes on every produced batch (`check`), and the codecs (`codec`).
//!
//! This crate does no I/O. The broker stores batches as producers sent them, except for
//! the base offset and leader epoch (outside the CRC) and, where the records say
//! otherwise or the topic stamps append time, the timestamp type and max timestamp
//! (docs/adr/0003-record-validation.md).
//!
//! Byte layout of one batch (all integers big-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset            stamped by the broker (outside the CRC)
//!      8     4  batch_length           bytes that follow this field
//!     12     4  partition_leader_epoch stamped by the broker (outside the CRC)
//!     16     1  magic                  must be 2
//!     17     4  crc                    CRC-32C of bytes 21..end
//!     21     2  attributes             compression(0-2) timestamp_type(3)
//!                                      transactional(4) control(5)
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     …  records
//! ```

mod check;
pub mod codec;
mod control;
pub mod header;
mod iter;
mod record;

pub use check::{CheckRules, CheckedBatch, MIN_RECORD_BYTES, RecordError, check_batch};
pub use codec::CodecError;
pub use control::{ControlType, marker_batch, read_marker};

pub use header::{
    BATCH_HEADER_LEN, BatchError, Compression, LOG_OVERHEAD, RecordBatchHeader, TimestampType,
};
pub use iter::{BatchIter, split_batches};
pub use record::{
    Record, RecordBatchBuilder, RecordView, RecordViews, decode_record_bytes, decode_records,
    record_views,
};

/// The wall clock in milliseconds since the Unix epoch, as record timestamps count (0
/// before the epoch). The one definition every crate uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
