//! Records inside a batch: building a batch from records (the CLI
//! producer, tests, benchmarks) and reading them back (the CLI consumer). The broker's
//! produce and fetch paths never use this: they move whole batches.
//!
//! Record layout (varints are zigzag-encoded, as in protobuf):
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused, 0
//! timestamp_delta varlong  from the batch's base_timestamp
//! offset_delta    varint   from the batch's base_offset
//! key_length      varint   -1 for a null key
//! key             bytes
//! value_length    varint   -1 for a null value
//! value           bytes
//! header_count    varint
//!   header_key_length varint, header_key bytes, header_value_length varint, value bytes
//! ```

use strom_bytes::{ReadError, Reader, put_varlong, varlong_len};

use crate::header::{BATCH_HEADER_LEN, BatchError, Compression, LOG_OVERHEAD, RecordBatchHeader};

/// One record, borrowed or owned by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Set when read back from a batch: base offset + offset delta.
    pub offset: i64,
}

/// Builds an uncompressed v2 batch.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    /// Room for the batch header (filled in by `finish`), then the encoded records.
    buf: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes `put_bytes` writes for `b`.
fn bytes_len(b: Option<&[u8]>) -> usize {
    b.map_or(1, |b| varlong_len(b.len() as i64) + b.len())
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varlong(out, -1),
    }
}

impl RecordBatchBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A builder whose buffer holds a batch of `bytes` without growing.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(BATCH_HEADER_LEN));
        buf.resize(BATCH_HEADER_LEN, 0);
        RecordBatchBuilder {
            buf,
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
        }
    }

    /// Marks the batch as an idempotent producer's.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional (attribute bit 4).
    pub fn transactional(mut self) -> Self {
        self.attributes |= 0x10;
        self
    }

    /// Marks the batch as a control batch (attribute bit 5): clients skip it.
    pub fn control(mut self) -> Self {
        self.attributes |= 0x20;
        self
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch would occupy if built now.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Adds a record; its offset is the next in the batch.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let base = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let ts_delta = timestamp.wrapping_sub(base);
        let headers_len: usize = headers
            .iter()
            .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(*v))
            .sum();
        let body_len = 1
            + varlong_len(ts_delta)
            + varlong_len(self.count as i64)
            + bytes_len(key)
            + bytes_len(value)
            + varlong_len(headers.len() as i64)
            + headers_len;
        let out = &mut self.buf;
        out.reserve(varlong_len(body_len as i64) + body_len);
        // Varints and varlongs of the same value are the same bytes.
        put_varlong(out, body_len as i64);
        out.push(0);
        put_varlong(out, ts_delta);
        put_varlong(out, self.count as i64);
        put_bytes(out, key);
        put_bytes(out, value);
        put_varlong(out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(out, Some(k.as_bytes()));
            put_bytes(out, *v);
        }
        self.count += 1;
    }

    /// Encodes the batch with base offset 0 and a valid CRC-32C.
    pub fn build(&self) -> Vec<u8> {
        self.encode(self.attributes, self.records_bytes())
    }

    /// Like [`RecordBatchBuilder::build`], but in the builder's own buffer: the records
    /// are not copied.
    pub fn finish(mut self) -> Vec<u8> {
        let header = self.header(self.attributes, self.buf.len());
        self.buf[..BATCH_HEADER_LEN].copy_from_slice(&header);
        let crc = crc32c::crc32c(&self.buf[21..]);
        self.buf[17..21].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }

    /// The encoded records, uncompressed: what a codec compresses for
    /// [`RecordBatchBuilder::build_compressed`].
    pub fn records_bytes(&self) -> &[u8] {
        &self.buf[BATCH_HEADER_LEN..]
    }

    /// Encodes the batch with `compressed_records` (the output of `codec` over
    /// [`RecordBatchBuilder::records_bytes`]) in place of the records, and the codec in
    /// the attributes. This crate carries no codecs: the caller compresses.
    pub fn build_compressed(&self, codec: Compression, compressed_records: &[u8]) -> Vec<u8> {
        let id = match codec {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(id) => i16::from(id & 0x07),
        };
        self.encode((self.attributes & !0x07) | id, compressed_records)
    }

    fn encode(&self, attributes: i16, records: &[u8]) -> Vec<u8> {
        let total = BATCH_HEADER_LEN + records.len();
        let mut b = Vec::with_capacity(total);
        b.extend_from_slice(&self.header(attributes, total));
        b.extend_from_slice(records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// The header of a batch of `total` bytes, its CRC left 0.
    fn header(&self, attributes: i16, total: usize) -> [u8; BATCH_HEADER_LEN] {
        let mut b = Vec::with_capacity(BATCH_HEADER_LEN);
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&(self.count - 1).max(0).to_be_bytes());
        let base_ts = self.base_timestamp.unwrap_or(-1);
        b.extend_from_slice(&base_ts.to_be_bytes());
        b.extend_from_slice(&self.max_timestamp.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        b.try_into().expect("the header is 61 bytes")
    }
}

/// A record field the reader refused, as a [`BatchError`] at its position in the batch
/// (`records` start after the header). Over-long and over-wide varints are reported as
/// truncation, as before the shared reader: `BatchError` has no variant for a malformed
/// record, and adding one would change every exhaustive match on it.
fn malformed(e: ReadError) -> BatchError {
    match e {
        ReadError::Truncated {
            at,
            needed,
            available,
        } => BatchError::Truncated {
            at: BATCH_HEADER_LEN + at,
            needed,
            available,
        },
        other => BatchError::Truncated {
            at: BATCH_HEADER_LEN + other.at(),
            needed: 1,
            available: 0,
        },
    }
}

/// One record read in place from a batch's record bytes: nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The batch's base offset + the record's offset delta.
    pub offset: i64,
    /// The batch's base timestamp + the record's timestamp delta.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: i32,
    /// The encoded headers (key/value pairs as on the wire).
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers, decoded (keys are UTF-8 on the wire; invalid bytes are
    /// replaced).
    pub fn headers(&self) -> Vec<(String, Option<&'a [u8]>)> {
        let mut r = Reader::new(self.headers);
        // Already walked once by the iterator, so these reads cannot fail.
        (0..self.header_count)
            .map_while(|_| {
                let k = r.varint_bytes().ok()?.unwrap_or_default();
                let v = r.varint_bytes().ok()?;
                Some((String::from_utf8_lossy(k).into_owned(), v))
            })
            .collect()
    }

    /// The record as an owned [`Record`].
    pub fn to_record(&self) -> Record {
        Record {
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers()
                .into_iter()
                .map(|(k, v)| (k, v.map(<[u8]>::to_vec)))
                .collect(),
            offset: self.offset,
        }
    }
}

/// The records of a batch read in place, in order; see [`record_views`].
#[derive(Debug, Clone)]
pub struct RecordViews<'a> {
    header: RecordBatchHeader,
    reader: Reader<'a>,
    left: i32,
}

/// Reads the records of a batch in place from its record bytes: the bytes after the
/// header of an uncompressed batch, or a compressed batch's records once the caller
/// decompressed them. Offsets and timestamps are taken relative to `header`. A
/// malformed record ends the iteration with an error.
pub fn record_views<'a>(header: &RecordBatchHeader, records: &'a [u8]) -> RecordViews<'a> {
    RecordViews {
        header: *header,
        reader: Reader::new(records),
        left: header.records_count.max(0),
    }
}

impl<'a> RecordViews<'a> {
    fn read_one(&mut self) -> Result<RecordView<'a>, BatchError> {
        let header = &self.header;
        let r = &mut self.reader;
        let len = r.varint().map_err(malformed)?;
        let start = r.position();
        let _attributes = r.u8().map_err(malformed)?;
        let ts_delta = r.varlong().map_err(malformed)?;
        let offset_delta = r.varint().map_err(malformed)?;
        let key = r.varint_bytes().map_err(malformed)?;
        let value = r.varint_bytes().map_err(malformed)?;
        let header_count = r.varint().map_err(malformed)?;
        let headers = r.rest();
        let headers_start = r.position();
        for _ in 0..header_count.max(0) {
            r.varint_bytes().map_err(malformed)?;
            r.varint_bytes().map_err(malformed)?;
        }
        let headers = &headers[..r.position() - headers_start];
        if r.position() - start != len as usize {
            return Err(BatchError::Truncated {
                at: BATCH_HEADER_LEN + start,
                needed: len as usize,
                available: r.position() - start,
            });
        }
        let overflow = || BatchError::InvalidRecordCount {
            at: BATCH_HEADER_LEN + start,
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        };
        Ok(RecordView {
            offset: header
                .base_offset
                .checked_add(i64::from(offset_delta))
                .ok_or_else(overflow)?,
            timestamp: header
                .base_timestamp
                .checked_add(ts_delta)
                .ok_or_else(overflow)?,
            key,
            value,
            header_count: header_count.max(0),
            headers,
        })
    }
}

impl<'a> Iterator for RecordViews<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let r = self.read_one();
        // After an error the rest of the batch cannot be found.
        self.left = if r.is_ok() { self.left - 1 } else { 0 };
        Some(r)
    }
}

/// Decodes the records of one uncompressed batch at the start of `buf`. Compressed
/// batches are refused: decompress them with [`crate::codec`] and use
/// [`decode_record_bytes`].
pub fn decode_records(buf: &[u8]) -> Result<(RecordBatchHeader, Vec<Record>), BatchError> {
    let header = RecordBatchHeader::validate(buf, 0)?;
    if header.attributes & 0x07 != 0 {
        return Err(BatchError::Compressed {
            codec: (header.attributes & 0x07) as u8,
        });
    }
    let records = decode_record_bytes(&header, &buf[BATCH_HEADER_LEN..header.total_size()])?;
    Ok((header, records))
}

/// Decodes the records of a batch from its record bytes: the bytes after the header of
/// an uncompressed batch, or a compressed batch's records once the caller decompressed
/// them. Offsets and timestamps are taken relative to `header`.
pub fn decode_record_bytes(
    header: &RecordBatchHeader,
    records: &[u8],
) -> Result<Vec<Record>, BatchError> {
    // The count comes from the input: never reserve more than the bytes could hold (a
    // record takes at least 7 bytes).
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(records.len() / 7));
    for view in record_views(header, records) {
        out.push(view?.to_record());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_decode() {
        let mut b = RecordBatchBuilder::new().producer(7, 1, 10);
        b.push(1000, Some(b"k1"), Some(b"v1"), &[("h", Some(b"x"))]);
        b.push(1005, None, Some(&[0u8; 300]), &[]);
        b.push(999, Some(b""), None, &[("n", None)]);
        let bytes = b.build();
        assert_eq!(bytes.len(), b.size());
        let (h, recs) = decode_records(&bytes).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.max_timestamp, 1005);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 1, 10)
        );
        assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(
            recs[0].headers,
            vec![("h".to_string(), Some(b"x".to_vec()))]
        );
        assert_eq!(recs[1].value.as_ref().unwrap().len(), 300);
        assert_eq!(recs[1].timestamp, 1005);
        assert_eq!(recs[2].offset, 2);
        assert_eq!(recs[2].value, None);
        RecordBatchHeader::validate_produced(&bytes, 0).unwrap();
    }

    #[test]
    fn compressed_batches_carry_the_codec_and_decode_from_record_bytes() {
        let mut b = RecordBatchBuilder::new();
        b.push(5, Some(b"k"), Some(b"v"), &[]);
        // A stand-in "codec": the records reversed.
        let packed: Vec<u8> = b.records_bytes().iter().rev().copied().collect();
        let bytes = b.build_compressed(Compression::Gzip, &packed);
        let h = RecordBatchHeader::validate(&bytes, 0).unwrap();
        assert_eq!(h.compression(), Compression::Gzip);
        assert_eq!(h.records_count, 1);
        assert!(matches!(
            decode_records(&bytes),
            Err(BatchError::Compressed { codec: 1 })
        ));
        let unpacked: Vec<u8> = bytes[BATCH_HEADER_LEN..].iter().rev().copied().collect();
        let recs = decode_record_bytes(&h, &unpacked).unwrap();
        assert_eq!(recs[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(recs[0].timestamp, 5);
    }

    #[test]
    fn record_views_borrow_the_batch_and_stop_at_a_malformed_record() {
        let mut b = RecordBatchBuilder::new();
        b.push(
            10,
            Some(b"k"),
            Some(b"value"),
            &[("h", Some(b"x")), ("n", None)],
        );
        b.push(12, None, None, &[]);
        let bytes = b.build();
        let h = RecordBatchHeader::validate(&bytes, 0).unwrap();
        let body = &bytes[BATCH_HEADER_LEN..];
        let views: Vec<RecordView<'_>> = record_views(&h, body).map(Result::unwrap).collect();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].value, Some(&b"value"[..]));
        assert_eq!(views[0].key, Some(&b"k"[..]));
        assert_eq!(
            views[0].headers(),
            vec![("h".to_string(), Some(&b"x"[..])), ("n".to_string(), None)]
        );
        assert_eq!((views[1].offset, views[1].timestamp), (1, 12));
        assert_eq!(views[1].value, None);
        // Cut inside the first record: one error, then nothing.
        let mut it = record_views(&h, &body[..9]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn finish_builds_the_same_batch_in_place() {
        let mut b = RecordBatchBuilder::with_capacity(4096);
        b.push(
            1000,
            Some(b"k1"),
            Some(&[7u8; 300]),
            &[("h", Some(b"x")), ("n", None)],
        );
        b.push(1001, None, None, &[]);
        let built = b.build();
        assert_eq!(b.finish(), built);
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(varlong_len(v), out.len(), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varlong().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn hostile_counts_and_deltas_are_errors() {
        // A header claiming 2^31-1 records must not reserve memory for them.
        let mut b = RecordBatchBuilder::new();
        b.push(1, None, Some(b"v"), &[]);
        let mut bytes = b.build();
        bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        bytes[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_records(&bytes).is_err());
        // A timestamp delta that overflows the base timestamp.
        let mut b = RecordBatchBuilder::new();
        b.push(0, None, Some(b"v"), &[]);
        b.push(10, None, Some(b"w"), &[]);
        let mut bytes = b.build();
        bytes[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_records(&bytes).is_err());
    }

    #[test]
    fn damaged_records_do_not_panic() {
        let mut b = RecordBatchBuilder::new();
        b.push(1, Some(b"key"), Some(b"value"), &[("a", Some(b"b"))]);
        let bytes = b.build();
        for i in BATCH_HEADER_LEN..bytes.len() {
            let mut c = bytes.clone();
            c[i] = 0xff;
            let crc = crc32c::crc32c(&c[21..]);
            c[17..21].copy_from_slice(&crc.to_be_bytes());
            let _ = decode_records(&c);
        }
    }
}
