//! Record batches for Produce requests: valid ones built with strom-batch's builder, and
//! header mutations that keep the CRC-32C valid, so a mutated batch gets past the broker's
//! CRC check and into whatever trusts the header after it.

use strom_batch::{BATCH_HEADER_LEN, LOG_OVERHEAD, RecordBatchBuilder};

use crate::rng::Rng;

use strom_batch::header::fields::{
    ATTRIBUTES, BASE_SEQUENCE, BASE_TIMESTAMP, BATCH_LENGTH, CRC, LAST_OFFSET_DELTA, MAGIC,
    MAX_TIMESTAMP, PRODUCER_EPOCH, PRODUCER_ID, RECORDS_COUNT,
};

/// A fixed clock: generation must not read the wall clock, or a seed would not mean one
/// sequence. 2026-05-28, recent enough that retention keeps the records for a run.
pub const BASE_TIME_MS: i64 = 1_780_000_000_000;

/// A valid uncompressed batch of 1-5 small records, idempotent when `producer` is given
/// (id, epoch, first sequence).
pub fn valid_batch(rng: &mut Rng, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    if let Some((id, epoch, seq)) = producer {
        b = b.producer(id, epoch, seq);
    }
    let n = rng.range(1, 5);
    for i in 0..n {
        let key = format!("k{}", rng.below(100));
        let value = vec![b'v'; rng.below(64)];
        let headers: &[(&str, Option<&[u8]>)] = if rng.chance(20) {
            &[("h", Some(b"x"))]
        } else {
            &[]
        };
        b.push(
            BASE_TIME_MS + i * 10,
            Some(key.as_bytes()),
            Some(&value),
            headers,
        );
    }
    b.finish()
}

/// True when `b` is one whole v2 batch (what a Produce request's records field holds).
pub fn looks_like_batch(b: &[u8]) -> bool {
    b.len() >= BATCH_HEADER_LEN
        && b[MAGIC] == 2
        && i32::from_be_bytes(b[BATCH_LENGTH..BATCH_LENGTH + 4].try_into().unwrap()) as i64
            == (b.len() - LOG_OVERHEAD) as i64
}

/// Recomputes the CRC-32C over attributes..end, as a producer would have.
pub fn fix_crc(b: &mut [u8]) {
    let crc = crc32c(&b[ATTRIBUTES..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Record counts a hostile producer would claim: each makes any per-offset cost of the
/// broker visible, from "one more" to 2^31-1.
const COUNTS: &[i32] = &[0, 2, 1000, 1 << 16, 1 << 20, 1 << 24, 1 << 30, i32::MAX];

/// Changes one header field of the batch in `b` and fixes the CRC. `b` must satisfy
/// [`looks_like_batch`]. Returns what was done, for the finding's description.
pub fn mutate_header(b: &mut [u8], rng: &mut Rng) -> String {
    let what = match rng.weighted(&[30, 8, 8, 8, 10, 8, 8, 6]) {
        0 => {
            // The record count and the last offset delta together, the way a producer's
            // batch always has them (count = delta + 1): a batch that merely disagreed with
            // itself would be refused before anything trusted the count.
            let count = *rng.pick(COUNTS);
            put_i32(b, RECORDS_COUNT, count);
            put_i32(b, LAST_OFFSET_DELTA, count.saturating_sub(1));
            format!("record count {count}")
        }
        1 => {
            let v = *rng.pick(&[-1, 0, i32::MAX, i32::MIN]);
            if rng.chance(50) {
                put_i32(b, RECORDS_COUNT, v);
                format!("records_count {v}")
            } else {
                put_i32(b, LAST_OFFSET_DELTA, v);
                format!("last_offset_delta {v}")
            }
        }
        2 => {
            let v = *rng.pick(&[-1, 0, 5, i64::MAX, i64::MIN]);
            let at = *rng.pick(&[BASE_TIMESTAMP, MAX_TIMESTAMP]);
            put_i64(b, at, v);
            format!("timestamp field @{at} = {v}")
        }
        3 => {
            // Codecs 1-4 with uncompressed bytes, 5-7 unassigned; timestamp type,
            // transactional and control bits.
            let v = *rng.pick(&[1i16, 2, 3, 4, 5, 6, 7, 0x08, 0x10, 0x20, 0x30, -1]);
            put_i16(b, ATTRIBUTES, v);
            format!("attributes {v:#x}")
        }
        4 => {
            let v = *rng.pick(&[-1i64, 0, 1, i64::MAX, 1 << 40]);
            put_i64(b, PRODUCER_ID, v);
            format!("producer_id {v}")
        }
        5 => {
            let e = *rng.pick(&[-1i16, 0, i16::MAX]);
            put_i16(b, PRODUCER_EPOCH, e);
            let s = *rng.pick(&[-1, 0, i32::MAX - 1, i32::MAX]);
            put_i32(b, BASE_SEQUENCE, s);
            format!("producer_epoch {e} base_sequence {s}")
        }
        6 => {
            // Garbage inside the records (varint lengths, key lengths) with a valid CRC:
            // only a record-level validator notices.
            let n = b.len() - BATCH_HEADER_LEN;
            if n > 0 {
                let at = BATCH_HEADER_LEN + rng.below(n);
                b[at] = *rng.pick(&[0xff, 0x80, 0x7f, 0x00, 0x01]);
                format!("record byte @{at} = {:#04x}", b[at])
            } else {
                "nothing (no record bytes)".to_string()
            }
        }
        _ => {
            let v = *rng.pick(&[0u8, 1, 3]);
            b[MAGIC] = v;
            format!("magic {v}")
        }
    };
    fix_crc(b);
    what
}

fn put_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// CRC-32C (Castagnoli), bit by bit: the fuzzer checks strom-batch's CRC rather than
/// sharing its implementation, and speed does not matter for a few hundred bytes.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_batch::RecordBatchHeader;

    #[test]
    fn built_batches_are_valid_and_recognised() {
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let b = valid_batch(&mut rng, Some((3, 0, 0)));
            assert!(looks_like_batch(&b));
            RecordBatchHeader::validate_produced(&b, 0).unwrap();
            strom_batch::decode_records(&b).unwrap();
        }
    }

    #[test]
    fn header_mutations_keep_the_crc_valid() {
        let mut rng = Rng::new(2);
        let mut magic_changes = 0;
        for _ in 0..500 {
            let mut b = valid_batch(&mut rng, None);
            let what = mutate_header(&mut b, &mut rng);
            let stored = u32::from_be_bytes(b[CRC..CRC + 4].try_into().unwrap());
            assert_eq!(stored, crc32c(&b[ATTRIBUTES..]), "{what}");
            if b[MAGIC] == 2 {
                // strom-batch's own CRC check accepts it: only the contents are hostile.
                match RecordBatchHeader::validate(&b, 0) {
                    Ok(_) | Err(strom_batch::BatchError::InvalidRecordCount { .. }) => {}
                    Err(e) => panic!("{what}: {e}"),
                }
            } else {
                magic_changes += 1;
            }
        }
        assert!(magic_changes > 0);
    }

    #[test]
    fn a_claimed_count_is_consistent_and_passes_validate_produced() {
        let mut rng = Rng::new(3);
        let mut seen_max = false;
        for _ in 0..2000 {
            let mut b = valid_batch(&mut rng, None);
            let what = mutate_header(&mut b, &mut rng);
            if what == format!("record count {}", i32::MAX) {
                let h = RecordBatchHeader::validate_produced(&b, 0).unwrap();
                assert_eq!(h.records_count, i32::MAX);
                assert_eq!(h.offset_count(), i32::MAX as i64);
                seen_max = true;
            }
        }
        assert!(seen_max);
    }

    #[test]
    fn crc32c_matches_the_known_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
