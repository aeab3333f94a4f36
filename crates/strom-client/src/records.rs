//! Record batches on the client side: building one batch of records for a Produce
//! request (with compression), and reading the batches of a Fetch answer back into
//! records (decompressing, skipping control batches and a truncated tail).

use strom_batch::{
    BATCH_HEADER_LEN, LOG_OVERHEAD, Record, RecordBatchBuilder, RecordBatchHeader, RecordView,
    record_views,
};

use crate::compression::{Codec, compress, decompress};
use crate::error::ClientError;

/// One record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the epoch; `None` takes the time the batch is built.
    pub timestamp: Option<i64>,
}

/// Encodes `records` as one v2 batch (offsets 0.., no producer id) compressed with
/// `codec`.
pub fn build_batch(
    records: &[ProduceRecord],
    codec: Codec,
    now_ms: i64,
) -> Result<Vec<u8>, ClientError> {
    let mut b = RecordBatchBuilder::new();
    for r in records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.push(
            r.timestamp.unwrap_or(now_ms),
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
    }
    if codec == Codec::None {
        return Ok(b.build());
    }
    let compressed = compress(codec, b.records_bytes())?;
    Ok(b.build_compressed(codec.compression(), &compressed))
}

/// Every record in `buf` (the records field of a fetched partition) at or after
/// `from_offset`. A batch cut off at the end of `buf` (the fetch size limit) is dropped;
/// control batches (transaction markers) are skipped.
pub fn decode_batches(buf: &[u8], from_offset: i64) -> Result<Vec<Record>, ClientError> {
    let mut out = Vec::new();
    for_each_record(buf, from_offset, |r| out.push(r.to_record()))?;
    Ok(out)
}

/// Calls `each` with every record in `buf` at or after `from_offset`, read in place:
/// whole batches only (one cut off by the fetch size limit is left for the next fetch),
/// every CRC checked, control batches skipped, compressed batches decompressed. Returns
/// the offset after the last whole batch, if there was one.
pub fn for_each_record(
    buf: &[u8],
    from_offset: i64,
    mut each: impl FnMut(&RecordView<'_>),
) -> Result<Option<i64>, ClientError> {
    let bad = |e: strom_batch::BatchError| ClientError::Records(e.to_string());
    let mut next_offset = None;
    let mut at = 0;
    while buf.len() - at >= BATCH_HEADER_LEN {
        let size = RecordBatchHeader::frame_size(&buf[at..], at).map_err(bad)?;
        if size < LOG_OVERHEAD || buf.len() - at < size {
            break;
        }
        let batch = &buf[at..at + size];
        let header = RecordBatchHeader::validate(batch, 0).map_err(bad)?;
        at += size;
        next_offset = Some(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        let body = &batch[BATCH_HEADER_LEN..];
        let decompressed;
        let records = match header.compression() {
            strom_batch::Compression::None => body,
            c => {
                decompressed = decompress(c, body)?;
                &decompressed[..]
            }
        };
        for r in record_views(&header, records) {
            let r = r.map_err(bad)?;
            if r.offset >= from_offset {
                each(&r);
            }
        }
    }
    Ok(next_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_with_every_codec() {
        let records = vec![
            ProduceRecord {
                key: Some(b"k".to_vec()),
                value: Some(b"v1".to_vec()),
                headers: vec![("h".into(), Some(b"x".to_vec()))],
                timestamp: Some(1000),
            },
            ProduceRecord {
                value: Some(b"v2".to_vec()),
                ..Default::default()
            },
        ];
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let mut buf = build_batch(&records, codec, 2000).unwrap();
            // A second batch cut short, as a fetch limit leaves it.
            buf.extend_from_slice(&build_batch(&records, codec, 2000).unwrap()[..70]);
            let got = decode_batches(&buf, 1).unwrap();
            assert_eq!(got.len(), 1, "{codec:?}");
            assert_eq!(got[0].value.as_deref(), Some(&b"v2"[..]));
            assert_eq!(got[0].timestamp, 2000);
            let all = decode_batches(&buf, 0).unwrap();
            assert_eq!(all[0].headers, vec![("h".to_string(), Some(b"x".to_vec()))]);
        }
    }
}
