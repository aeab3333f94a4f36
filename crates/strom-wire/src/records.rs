//! The `records` field of a Produce partition, split into validated record batches that
//! still share the request's memory.
//!
//! The byte layout of a batch and its checks live in `strom-batch`; this module only cuts
//! the request's `Bytes` at batch boundaries (without copying) and turns `BatchError` into
//! a [`WireError`], whose [`WireError::error_code`] is the code Kafka answers with.

use bytes::Bytes;
use strom_batch::{RecordBatchHeader, split_batches};

use crate::WireError;

/// One record batch from a Produce request, checked (length, magic 2, CRC-32C, record
/// count consistent with the offset delta) and ready to be stamped and appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBatch {
    pub header: RecordBatchHeader,
    /// The whole batch, from `base_offset` to its last record: a slice of the request.
    pub bytes: Bytes,
}

/// Splits one partition's `records` into batches and validates each. The field must hold
/// whole batches only, at least one; anything else is refused, CRC failures and torn
/// batches as CORRUPT_MESSAGE, wrong magic or counts as INVALID_RECORD.
pub fn produced_batches(records: &Bytes) -> Result<Vec<ProducedBatch>, WireError> {
    Ok(split_batches(records)?
        .into_iter()
        .map(|(header, range)| ProducedBatch {
            header,
            bytes: records.slice(range),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// A batch as a real client library encodes it.
    fn batch(values: &[&'static [u8]]) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // kafka-protocol groups records into one batch only while offset -
                // sequence stays constant.
                sequence: i as i32,
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(Bytes::from_static(v)),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn splits_client_encoded_batches_without_copying() {
        let one = batch(&[b"a", b"bb", b"ccc"]);
        let two = batch(&[b"d"]);
        let mut both = BytesMut::new();
        both.extend_from_slice(&one);
        both.extend_from_slice(&two);
        let records = both.freeze();
        let batches = produced_batches(&records).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].header.records_count, 3);
        assert_eq!(batches[0].bytes, one);
        assert_eq!(batches[1].bytes, two);
        // Slices of the request buffer, not copies.
        assert_eq!(batches[1].bytes.as_ptr(), records[one.len()..].as_ptr());
    }

    /// Client-encoded batches validate. With `STROM_WIRE_SEED_DIR` set they are written
    /// there as a starting corpus for the `record_batch` and `record_decode` fuzz targets.
    #[test]
    fn client_batches_validate_and_seed_the_fuzzer() {
        let seeds = [batch(&[b"v"]), batch(&[b"a", b"", b"ccc"])];
        let mut two = BytesMut::from(&seeds[0][..]);
        two.extend_from_slice(&seeds[1]);
        let seeds = [seeds[0].clone(), seeds[1].clone(), two.freeze()];
        for seed in &seeds {
            assert!(produced_batches(seed).is_ok());
        }
        if let Some(dir) = std::env::var_os("STROM_WIRE_SEED_DIR").map(std::path::PathBuf::from) {
            for target in ["record_batch", "record_decode"] {
                std::fs::create_dir_all(dir.join(target)).unwrap();
                for (i, seed) in seeds.iter().enumerate() {
                    std::fs::write(dir.join(target).join(format!("client-{i}")), seed).unwrap();
                }
            }
        }
    }

    #[test]
    fn bad_batches_map_to_kafka_codes() {
        let good = batch(&[b"x"]);
        let mut flipped = BytesMut::from(&good[..]);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let err = produced_batches(&flipped.freeze()).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::CorruptMessage), "{err}");

        let torn = good.slice(..good.len() - 1);
        let err = produced_batches(&torn).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::CorruptMessage), "{err}");

        let mut magic1 = BytesMut::from(&good[..]);
        magic1[16] = 1;
        let err = produced_batches(&magic1.freeze()).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::InvalidRecord), "{err}");

        assert!(produced_batches(&Bytes::new()).is_err());
    }
}
