//! The RecordBatch v2 header: parsing, validation and stamping.

use thiserror::Error;

/// Bytes before `batch_length` counts: `base_offset` (8) and `batch_length` (4).
pub const LOG_OVERHEAD: usize = 12;
/// The fixed part of a v2 batch, up to and including `records_count`.
pub const BATCH_HEADER_LEN: usize = 61;

/// Byte offsets of the RecordBatch v2 header's fields (the layout in lib.rs), for code
/// that reads or edits a header in place (tests and fuzzers mutate them with the CRC fixed).
pub mod fields {
    pub const BASE_OFFSET: usize = 0;
    pub const BATCH_LENGTH: usize = 8;
    pub const LEADER_EPOCH: usize = 12;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    pub const RECORDS_COUNT: usize = 57;
}
use fields::*;

/// Why a batch was refused. Every variant says where in the input the problem is, so a
/// caller can report it and, for stored data, name the file position.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or than `batch_length` announces.
    #[error("truncated batch at byte {at}: need {needed} bytes, have {available}")]
    Truncated {
        at: usize,
        needed: usize,
        available: usize,
    },
    /// `batch_length` is smaller than the fixed header can be.
    #[error("invalid batch length {length} at byte {at}")]
    InvalidLength { at: usize, length: i32 },
    /// Only magic 2 (Kafka 0.11+) batches are stored.
    #[error("unsupported magic {magic} at byte {at}")]
    UnsupportedMagic { at: usize, magic: i8 },
    /// The CRC-32C over attributes..end does not match.
    #[error("crc mismatch at byte {at}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        at: usize,
        stored: u32,
        computed: u32,
    },
    /// Records of a compressed batch were asked for from a reader that takes only
    /// uncompressed ones (decompress first, see `codec`).
    #[error("batch is compressed with codec {codec}")]
    Compressed { codec: u8 },
    /// `records_count` and `last_offset_delta` disagree, or are negative.
    #[error(
        "invalid record count {records_count} (last offset delta {last_offset_delta}) at byte {at}"
    )]
    InvalidRecordCount {
        at: usize,
        records_count: i32,
        last_offset_delta: i32,
    },
}

/// The compression codec named in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Codec ids 5..=7 are not assigned by Kafka.
    Unknown(u8),
}

/// Whether `max_timestamp` is the producer's create time or the broker's append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A parsed copy of the 61-byte header of one batch. Cheap to copy; records stay where
/// they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

impl RecordBatchHeader {
    /// Reads the length prefix of the batch starting at `buf[0]` and returns the batch's
    /// total size in bytes (`LOG_OVERHEAD + batch_length`), without further checks beyond
    /// the length being plausible. `at` is only used in errors.
    pub fn frame_size(buf: &[u8], at: usize) -> Result<usize, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated {
                at,
                needed: LOG_OVERHEAD,
                available: buf.len(),
            });
        }
        let length = be_i32(buf, BATCH_LENGTH);
        if length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength { at, length });
        }
        Ok(LOG_OVERHEAD + length as usize)
    }

    /// Parses the header of the batch at the start of `buf`, checking the length prefix
    /// and magic but not the CRC. `buf` may extend past the batch.
    pub fn parse(buf: &[u8], at: usize) -> Result<Self, BatchError> {
        let total = Self::frame_size(buf, at)?;
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                at,
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic { at, magic });
        }
        let header = RecordBatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET),
            batch_length: (total - LOG_OVERHEAD) as i32,
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH),
            magic,
            crc: be_u32(buf, CRC),
            attributes: be_i16(buf, ATTRIBUTES),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP),
            producer_id: be_i64(buf, PRODUCER_ID),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH),
            base_sequence: be_i32(buf, BASE_SEQUENCE),
            records_count: be_i32(buf, RECORDS_COUNT),
        };
        if header.last_offset_delta < 0 || header.records_count < 0 {
            return Err(BatchError::InvalidRecordCount {
                at,
                records_count: header.records_count,
                last_offset_delta: header.last_offset_delta,
            });
        }
        Ok(header)
    }

    /// Parses and fully validates the batch at the start of `buf`: the whole batch must be
    /// present and its CRC-32C must match. Returns the header; the batch occupies
    /// `header.total_size()` bytes of `buf`.
    pub fn validate(buf: &[u8], at: usize) -> Result<Self, BatchError> {
        let header = Self::parse(buf, at)?;
        let total = header.total_size();
        if buf.len() < total {
            return Err(BatchError::Truncated {
                at,
                needed: total,
                available: buf.len(),
            });
        }
        let computed = crc32c::crc32c(&buf[ATTRIBUTES..total]);
        if computed != header.crc {
            return Err(BatchError::CrcMismatch {
                at,
                stored: header.crc,
                computed,
            });
        }
        Ok(header)
    }

    /// Like [`validate`](Self::validate), and additionally requires what a producer's
    /// batch always satisfies: at least one record and exactly `last_offset_delta + 1`
    /// of them. (Compacted or replicated batches may legitimately break this.)
    pub fn validate_produced(buf: &[u8], at: usize) -> Result<Self, BatchError> {
        let header = Self::validate(buf, at)?;
        if header.records_count < 1 || header.records_count != header.last_offset_delta + 1 {
            return Err(BatchError::InvalidRecordCount {
                at,
                records_count: header.records_count,
                last_offset_delta: header.last_offset_delta,
            });
        }
        Ok(header)
    }

    /// Total bytes of the batch including the 12-byte log overhead.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        self.last_offset_delta as i64 + 1
    }

    pub fn compression(&self) -> Compression {
        match self.attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other as u8),
        }
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & 0x08 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// True when the batch carries an idempotent producer's id and sequence.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Writes the broker-assigned base offset into a batch in place. The field lies
    /// outside the CRC, so the CRC stays valid.
    pub fn stamp_base_offset(buf: &mut [u8], base_offset: i64) {
        buf[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Writes the partition leader epoch into a batch in place (outside the CRC).
    pub fn stamp_leader_epoch(buf: &mut [u8], epoch: i32) {
        buf[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
    }

    /// Sets the timestamp type bit and `max_timestamp` of the whole batch `buf` and
    /// recomputes its CRC, as Kafka does when the records disagree with the header or the
    /// topic stamps append time. Both fields lie inside the CRC, hence the new one.
    /// Returns false, leaving the batch untouched, when both already hold.
    pub fn set_max_timestamp(
        buf: &mut [u8],
        timestamp_type: TimestampType,
        max_timestamp: i64,
    ) -> bool {
        let old_attributes = be_i16(buf, ATTRIBUTES);
        let attributes = match timestamp_type {
            TimestampType::CreateTime => old_attributes & !0x08,
            TimestampType::LogAppendTime => old_attributes | 0x08,
        };
        if attributes == old_attributes && be_i64(buf, MAX_TIMESTAMP) == max_timestamp {
            return false;
        }
        buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        buf[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
        buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a syntactically valid batch with `records` fake records of `record_len`
    /// bytes each (the record bytes are opaque to this crate).
    pub(crate) fn make_batch(records: i32, record_len: usize, timestamp: i64) -> Vec<u8> {
        let body_len = records as usize * record_len;
        let total = BATCH_HEADER_LEN + body_len;
        let mut b = vec![0u8; total];
        b[BATCH_LENGTH..BATCH_LENGTH + 4]
            .copy_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
        b[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[MAGIC] = 2;
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(records - 1).to_be_bytes());
        b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&(-1i64).to_be_bytes());
        b[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&(-1i16).to_be_bytes());
        b[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&records.to_be_bytes());
        for (i, byte) in b[BATCH_HEADER_LEN..].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn round_trip_header() {
        let b = make_batch(3, 10, 1_700_000_000_000);
        let h = RecordBatchHeader::validate_produced(&b, 0).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.max_timestamp, 1_700_000_000_000);
        assert_eq!(h.compression(), Compression::None);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.has_producer_id());
    }

    #[test]
    fn stamping_keeps_crc_valid() {
        let mut b = make_batch(2, 5, 1);
        RecordBatchHeader::stamp_base_offset(&mut b, 42);
        RecordBatchHeader::stamp_leader_epoch(&mut b, 7);
        let h = RecordBatchHeader::validate(&b, 0).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(h.last_offset(), 43);
    }

    #[test]
    fn every_flipped_bit_inside_crc_is_detected() {
        let b = make_batch(2, 8, 5);
        for byte in ATTRIBUTES..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[byte] ^= 1 << bit;
                assert!(
                    RecordBatchHeader::validate(&c, 0).is_err(),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_and_bad_lengths_are_refused() {
        let b = make_batch(1, 10, 0);
        for cut in 0..b.len() {
            assert!(
                RecordBatchHeader::validate(&b[..cut], 0).is_err(),
                "cut at {cut}"
            );
        }
        let mut c = b.clone();
        c[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(
            RecordBatchHeader::parse(&c, 0),
            Err(BatchError::InvalidLength { length: 3, .. })
        ));
        let mut d = b.clone();
        d[MAGIC] = 1;
        assert!(matches!(
            RecordBatchHeader::parse(&d, 0),
            Err(BatchError::UnsupportedMagic { magic: 1, .. })
        ));
    }

    #[test]
    fn set_max_timestamp_rewrites_the_crc() {
        let mut b = make_batch(2, 5, 100);
        assert!(!RecordBatchHeader::set_max_timestamp(
            &mut b,
            TimestampType::CreateTime,
            100
        ));
        assert!(RecordBatchHeader::set_max_timestamp(
            &mut b,
            TimestampType::LogAppendTime,
            777
        ));
        let h = RecordBatchHeader::validate(&b, 0).unwrap();
        assert_eq!(h.max_timestamp, 777);
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert!(RecordBatchHeader::set_max_timestamp(
            &mut b,
            TimestampType::CreateTime,
            -1
        ));
        let h = RecordBatchHeader::validate(&b, 0).unwrap();
        assert_eq!(
            (h.max_timestamp, h.timestamp_type()),
            (-1, TimestampType::CreateTime)
        );
    }

    #[test]
    fn produced_batch_needs_consistent_count() {
        let mut b = make_batch(3, 4, 0);
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(RecordBatchHeader::validate(&b, 0).is_ok());
        assert!(matches!(
            RecordBatchHeader::validate_produced(&b, 0),
            Err(BatchError::InvalidRecordCount { .. })
        ));
    }
}
