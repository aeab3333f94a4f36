//! Record-level checks of a produced batch, the ones Kafka's LogValidator makes on the
//! leader before it appends: every record is parsed in place (no allocation per record),
//! a compressed batch is first decompressed under a hard bound, and the header's record
//! count must be what the bytes hold. The result is the batch's real maximum timestamp,
//! which the caller writes into the header when it differs
//! ([`RecordBatchHeader::set_max_timestamp`]).
//!
//! Record layout (varints zigzag-encoded, at most 5 bytes; varlongs at most 10):
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8
//! timestamp_delta varlong  from the batch's base_timestamp
//! offset_delta    varint   must be the record's index in the batch
//! key_length      varint   -1 for a null key, else the key's bytes follow
//! value_length    varint   -1 for a null value, else the value's bytes follow
//! header_count    varint   >= 0
//!   header_key_length varint >= 0, key bytes, header_value_length varint (-1 = null),
//!   value bytes
//! ```

use strom_bytes::{ReadError, Reader};
use thiserror::Error;

use crate::codec::{CodecError, decompress_into};
use crate::header::{BATCH_HEADER_LEN, Compression, RecordBatchHeader, TimestampType};

/// The fewest bytes one record can take: a one-byte length and six one-byte fields.
pub const MIN_RECORD_BYTES: usize = 7;
/// The fewest bytes after a record's length field.
const MIN_RECORD_BODY: i32 = 6;
/// Kafka's "no timestamp", exempt from the timestamp bounds.
const NO_TIMESTAMP: i64 = -1;

/// What the caller's topic allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRules {
    /// Largest records section a compressed batch may decompress to.
    pub max_decompressed_bytes: usize,
    /// Inclusive bounds on every record's timestamp (`message.timestamp.before.max.ms` /
    /// `after.max.ms` around now); `None` where they do not apply (LogAppendTime topics).
    pub timestamps: Option<(i64, i64)>,
    /// A batch with a producer id must carry a sequence number: true for producers'
    /// batches; false for a group coordinator's transactional offset commits, which Kafka
    /// writes without one.
    pub sequence_required: bool,
}

/// What checking found out about a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedBatch {
    /// The largest record timestamp (-1 when no record has one).
    pub max_timestamp: i64,
}

/// Why a batch's records were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("record {index} is malformed: {reason}")]
    Malformed { index: i32, reason: String },
    #[error(
        "the batch header claims {claimed} records, more than {bytes} bytes of records can hold"
    )]
    ImpossibleCount { claimed: i32, bytes: usize },
    #[error("the batch header claims {claimed} records but the batch holds {found}")]
    CountMismatch { claimed: i32, found: i32 },
    #[error("{bytes} bytes follow the last of the batch's {count} records")]
    TrailingBytes { count: i32, bytes: usize },
    #[error("record {index} has offset delta {delta}; the deltas of a batch must be 0, 1, 2, ...")]
    OffsetDelta { index: i32, delta: i32 },
    #[error(
        "record {index} has timestamp {timestamp}, out of range: it must lie within [{min}, {max}]"
    )]
    Timestamp {
        index: i32,
        timestamp: i64,
        min: i64,
        max: i64,
    },
    #[error("producers may not set the LogAppendTime timestamp type")]
    LogAppendTimeSet,
    #[error("invalid sequence number {base_sequence} in a batch of producer id {producer_id}")]
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl RecordError {
    /// The index of the offending record within its batch, where one record is to blame
    /// (Produce v8+ reports it in `record_errors`).
    pub fn record_index(&self) -> Option<i32> {
        match self {
            RecordError::Malformed { index, .. }
            | RecordError::OffsetDelta { index, .. }
            | RecordError::Timestamp { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// Checks the records of `batch`, a whole batch whose header (`header`) and CRC were
/// already validated. A compressed batch is decompressed into `scratch` (overwritten,
/// and reusable across calls).
pub fn check_batch(
    batch: &[u8],
    header: &RecordBatchHeader,
    rules: &CheckRules,
    scratch: &mut Vec<u8>,
) -> Result<CheckedBatch, RecordError> {
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Err(RecordError::LogAppendTimeSet);
    }
    if header.has_producer_id() && header.base_sequence < 0 && rules.sequence_required {
        return Err(RecordError::InvalidSequence {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    let body = batch
        .get(BATCH_HEADER_LEN..header.total_size())
        .unwrap_or_default();
    let records = match header.compression() {
        Compression::None => body,
        Compression::Unknown(id) => return Err(CodecError::Unsupported(id).into()),
        codec => {
            // Refused before a byte is decompressed when even the bound cannot hold it.
            check_count(header.records_count, rules.max_decompressed_bytes)?;
            let n = decompress_into(codec, body, rules.max_decompressed_bytes, scratch)?;
            &scratch[..n]
        }
    };
    check_count(header.records_count, records.len())?;
    walk(header, records, rules)
}

/// Refuses a claimed record count that `bytes` bytes of records cannot hold.
fn check_count(claimed: i32, bytes: usize) -> Result<(), RecordError> {
    if claimed < 0 || claimed as usize > bytes / MIN_RECORD_BYTES {
        return Err(RecordError::ImpossibleCount { claimed, bytes });
    }
    Ok(())
}

fn walk(
    header: &RecordBatchHeader,
    records: &[u8],
    rules: &CheckRules,
) -> Result<CheckedBatch, RecordError> {
    let claimed = header.records_count;
    let mut max_timestamp = NO_TIMESTAMP;
    let mut rest = Reader::new(records);
    for index in 0..claimed {
        if rest.is_empty() {
            return Err(RecordError::CountMismatch {
                claimed,
                found: index,
            });
        }
        let malformed = |reason: String| RecordError::Malformed { index, reason };
        let len = rest
            .varint()
            .map_err(|e| malformed(format!("length: {}", reason(e))))?;
        let left = rest.remaining();
        // The record's own bytes: no field may read past them. (A negative length, as
        // usize, is more than any input holds.)
        let mut r = match rest.take(len as usize) {
            Ok(body) if len >= MIN_RECORD_BODY => Reader::new(body),
            _ => {
                return Err(malformed(format!(
                    "length {len}, but {left} bytes are left and a record takes at least {MIN_RECORD_BODY}"
                )));
            }
        };
        let ts_delta = r
            .u8()
            .and_then(|_attributes| r.varlong())
            .map_err(|e| malformed(format!("timestamp delta: {}", reason(e))))?;
        let delta = r
            .varint()
            .map_err(|e| malformed(format!("offset delta: {}", reason(e))))?;
        if delta != index {
            return Err(RecordError::OffsetDelta { index, delta });
        }
        skip_bytes(&mut r, true).map_err(|e| malformed(format!("key: {e}")))?;
        skip_bytes(&mut r, true).map_err(|e| malformed(format!("value: {e}")))?;
        let headers = r
            .varint()
            .map_err(|e| malformed(format!("header count: {}", reason(e))))?;
        // A header takes at least two bytes (two empty lengths).
        if headers < 0 || headers as usize > r.remaining() / 2 {
            return Err(malformed(format!(
                "header count {headers} does not fit the record"
            )));
        }
        for h in 0..headers {
            skip_bytes(&mut r, false)
                .and_then(|()| skip_bytes(&mut r, true))
                .map_err(|e| malformed(format!("header {h}: {e}")))?;
        }
        if !r.is_empty() {
            return Err(malformed(format!(
                "length {len}, but its fields end {} bytes before that",
                r.remaining()
            )));
        }
        let timestamp = header.base_timestamp.wrapping_add(ts_delta);
        if let Some((min, max)) = rules.timestamps
            && timestamp != NO_TIMESTAMP
            && !(min..=max).contains(&timestamp)
        {
            return Err(RecordError::Timestamp {
                index,
                timestamp,
                min,
                max,
            });
        }
        max_timestamp = max_timestamp.max(timestamp);
    }
    if !rest.is_empty() {
        return Err(RecordError::TrailingBytes {
            count: claimed,
            bytes: rest.remaining(),
        });
    }
    Ok(CheckedBatch { max_timestamp })
}

/// What a record's field got wrong, in the words of the checks (the position is the
/// record index the caller reports).
fn reason(e: ReadError) -> &'static str {
    match e {
        ReadError::VarintTooLong { max_bytes: 5, .. } => "varint longer than 5 bytes",
        ReadError::VarintTooLong { .. } => "varlong longer than 10 bytes",
        ReadError::VarintOverflow { bits: 32, .. } => "varint exceeds 32 bits",
        ReadError::VarintOverflow { .. } => "varlong exceeds 64 bits",
        ReadError::Truncated { .. }
        | ReadError::ImpossibleCount { .. }
        | ReadError::NotUtf8 { .. } => "runs past the end of the record",
    }
}

/// A key, value or header field of a record: a varint length, then -1 (null, where
/// allowed) or that many bytes. Stricter than [`Reader::varint_bytes`], which takes every
/// negative length for null as Kafka's record reader does: a producer must write -1.
// Inlined: called four times a record, and a call puts the reader's position through
// memory on every field.
#[inline(always)]
fn skip_bytes(r: &mut Reader<'_>, nullable: bool) -> Result<(), &'static str> {
    let len = r.varint().map_err(reason)?;
    if len == -1 && nullable {
        return Ok(());
    }
    if len < 0 {
        return Err("negative length");
    }
    r.skip(len as usize)
        .map_err(|_| "length runs past the end of the record")
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
