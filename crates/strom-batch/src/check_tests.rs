//! Tests of the record checks: every malformed-record case a producer (or an attacker
//! with a valid CRC) can send, and the maximum timestamp the checks compute.

use super::*;
use crate::codec::compress;
use crate::record::RecordBatchBuilder;

const NOW: i64 = 1_700_000_000_000;
const RULES: CheckRules = CheckRules {
    sequence_required: true,
    max_decompressed_bytes: 1 << 20,
    timestamps: None,
};

/// Zigzag varint of `v`, as a producer writes it.
fn zz(v: i64) -> Vec<u8> {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    out
}

fn bytes_field(b: Option<&[u8]>) -> Vec<u8> {
    match b {
        Some(b) => [zz(b.len() as i64), b.to_vec()].concat(),
        None => zz(-1),
    }
}

/// One encoded record (length prefix included).
fn record(ts_delta: i64, offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let body = [
        vec![0u8],
        zz(ts_delta),
        zz(offset_delta),
        bytes_field(key),
        bytes_field(value),
        zz(0),
    ]
    .concat();
    [zz(body.len() as i64), body].concat()
}

/// A record whose body is given raw, with the length prefix that fits it.
fn raw_record(body: &[u8]) -> Vec<u8> {
    [zz(body.len() as i64), body.to_vec()].concat()
}

/// A whole batch with a valid CRC around `records` (already compressed where
/// `attributes` says so), claiming `count` records.
fn batch(records: &[u8], count: i32, max_ts: i64, attributes: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((BATCH_HEADER_LEN - 12 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&NOW.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn check(b: &[u8]) -> Result<CheckedBatch, RecordError> {
    check_with(b, &RULES)
}

fn check_with(b: &[u8], rules: &CheckRules) -> Result<CheckedBatch, RecordError> {
    let header = RecordBatchHeader::validate_produced(b, 0).expect("a valid header and CRC");
    check_batch(b, &header, rules, &mut Vec::new())
}

fn two_records() -> Vec<u8> {
    [
        record(0, 0, Some(b"k"), Some(b"v")),
        record(5, 1, None, Some(b"w")),
    ]
    .concat()
}

#[test]
fn built_batches_pass_with_their_max_timestamp() {
    let mut builder = RecordBatchBuilder::new();
    builder.push(
        NOW,
        Some(b"k"),
        Some(b"v"),
        &[("h", Some(b"x")), ("n", None)],
    );
    builder.push(NOW + 9, None, None, &[]);
    builder.push(NOW + 3, None, Some(&[0u8; 300]), &[]);
    let b = builder.build();
    assert_eq!(check(&b).unwrap().max_timestamp, NOW + 9);
    assert_eq!(
        check(&batch(&two_records(), 2, NOW + 5, 0)).unwrap(),
        CheckedBatch {
            max_timestamp: NOW + 5
        }
    );
}

#[test]
fn a_2_pow_62_length_varint_is_refused() {
    let mut records = zz(1 << 62);
    records.extend_from_slice(&[0; 20]);
    let e = check(&batch(&records, 1, NOW, 0)).unwrap_err();
    assert!(
        matches!(&e, RecordError::Malformed { index: 0, reason } if reason.contains("longer than 5 bytes")),
        "{e}"
    );
}

#[test]
fn lengths_beyond_the_record_are_refused() {
    // A record claiming more bytes than the batch holds.
    let mut records = record(0, 0, None, Some(b"v"));
    records[0] = zz(100)[0];
    assert!(matches!(
        check(&batch(&records, 1, NOW, 0)),
        Err(RecordError::Malformed { index: 0, .. })
    ));
    // An impossible key length inside a well-sized record.
    let body = [vec![0u8], zz(0), zz(0), zz(1_000_000), vec![b'k'; 4], zz(0)].concat();
    let e = check(&batch(&raw_record(&body), 1, NOW, 0)).unwrap_err();
    assert!(
        matches!(&e, RecordError::Malformed { index: 0, reason } if reason.starts_with("key")),
        "{e}"
    );
    // A key length below -1.
    let body = [vec![0u8], zz(0), zz(0), zz(-2), zz(-1), zz(0)].concat();
    assert!(check(&batch(&raw_record(&body), 1, NOW, 0)).is_err());
    // A record shorter than its fields.
    let body = [vec![0u8], zz(0), zz(0), zz(-1)].concat();
    assert!(check(&batch(&raw_record(&body), 1, NOW, 0)).is_err());
}

#[test]
fn over_long_varints_are_refused() {
    // An 11-byte varlong timestamp delta.
    let body = [
        vec![0u8],
        vec![0xff; 10],
        vec![0x01],
        zz(0),
        zz(-1),
        zz(-1),
        zz(0),
    ]
    .concat();
    let e = check(&batch(&raw_record(&body), 1, NOW, 0)).unwrap_err();
    assert!(e.to_string().contains("longer than 10 bytes"), "{e}");
    // A 10-byte varlong carrying more than 64 bits.
    let body = [
        vec![0u8],
        vec![0xff; 9],
        vec![0x02],
        zz(0),
        zz(-1),
        zz(-1),
        zz(0),
    ]
    .concat();
    let e = check(&batch(&raw_record(&body), 1, NOW, 0)).unwrap_err();
    assert!(e.to_string().contains("exceeds 64 bits"), "{e}");
    // A 6-byte varint offset delta, and a 5-byte one carrying more than 32 bits.
    let body = [
        vec![0u8],
        zz(0),
        vec![0x80; 5],
        vec![0],
        zz(-1),
        zz(-1),
        zz(0),
    ]
    .concat();
    let e = check(&batch(&raw_record(&body), 1, NOW, 0)).unwrap_err();
    assert!(e.to_string().contains("longer than 5 bytes"), "{e}");
    let body = [
        vec![0u8],
        zz(0),
        vec![0x80; 4],
        vec![0x10],
        zz(-1),
        zz(-1),
        zz(0),
    ]
    .concat();
    let e = check(&batch(&raw_record(&body), 1, NOW, 0)).unwrap_err();
    assert!(e.to_string().contains("exceeds 32 bits"), "{e}");
}

#[test]
fn headers_are_walked() {
    let header = |count: i64, key_len: i64| {
        [
            vec![0u8],
            zz(0),
            zz(0),
            zz(-1),
            zz(-1),
            zz(count),
            zz(key_len),
            b"ab".to_vec(),
            zz(-1),
        ]
        .concat()
    };
    assert!(check(&batch(&raw_record(&header(1, 2)), 1, NOW, 0)).is_ok());
    for (count, key_len) in [(-1, 2), (2, 2), (1, -1), (1, 3), (1_000_000, 2)] {
        let e = check(&batch(&raw_record(&header(count, key_len)), 1, NOW, 0));
        assert!(
            matches!(e, Err(RecordError::Malformed { index: 0, .. })),
            "count {count} key length {key_len}: {e:?}"
        );
    }
}

#[test]
fn garbage_after_the_last_record_is_refused() {
    let records = [two_records(), b"garbage".to_vec()].concat();
    assert_eq!(
        check(&batch(&records, 2, NOW + 5, 0)),
        Err(RecordError::TrailingBytes { count: 2, bytes: 7 })
    );
}

#[test]
fn the_header_count_must_match_the_records() {
    let records = [
        record(0, 0, None, Some(&[1; 20])),
        record(0, 1, None, Some(&[2; 20])),
    ]
    .concat();
    // Three claimed, two present.
    assert_eq!(
        check(&batch(&records, 3, NOW, 0)),
        Err(RecordError::CountMismatch {
            claimed: 3,
            found: 2
        })
    );
    // Three claimed, two present and zeros after them: a third record of length 0.
    let with_zeros = [records.clone(), vec![0; 8]].concat();
    assert!(matches!(
        check(&batch(&with_zeros, 3, NOW, 0)),
        Err(RecordError::Malformed { index: 2, .. })
    ));
    // One claimed, two present.
    assert!(matches!(
        check(&batch(&records, 1, NOW, 0)),
        Err(RecordError::TrailingBytes { count: 1, .. })
    ));
}

/// The 117-byte Produce of issue 12: a count of 16M (or 2^31 - 1) on a handful of
/// bytes is refused by arithmetic before any record is read.
#[test]
fn a_huge_claimed_count_is_refused_before_walking() {
    for claimed in [16 << 20, i32::MAX] {
        let b = batch(&two_records(), claimed, NOW, 0);
        assert!(matches!(
            check(&b),
            Err(RecordError::ImpossibleCount { .. })
        ));
        // Compressed: refused against the decompression bound, before decompressing.
        let z = compress(Compression::Zstd, &two_records()).unwrap();
        let b = batch(&z, claimed, NOW, 4);
        assert!(matches!(
            check(&b),
            Err(RecordError::ImpossibleCount { .. })
        ));
    }
}

#[test]
fn offset_deltas_must_count_from_zero() {
    for deltas in [[0, 2], [1, 2], [1, 0], [0, 0], [0, -1]] {
        let records = [
            record(0, deltas[0], None, Some(b"a")),
            record(0, deltas[1], None, Some(b"b")),
        ]
        .concat();
        assert!(
            matches!(
                check(&batch(&records, 2, NOW, 0)),
                Err(RecordError::OffsetDelta { .. })
            ),
            "{deltas:?}"
        );
    }
}

#[test]
fn unassigned_codecs_are_unsupported() {
    for codec in [5i16, 6, 7] {
        assert_eq!(
            check(&batch(&two_records(), 2, NOW + 5, codec)),
            Err(RecordError::Codec(CodecError::Unsupported(codec as u8)))
        );
    }
}

#[test]
fn compressed_records_are_checked_too() {
    for (codec, id) in [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ] {
        let good = compress(codec, &two_records()).unwrap();
        assert_eq!(
            check(&batch(&good, 2, -1, id)).unwrap().max_timestamp,
            NOW + 5,
            "{codec:?}"
        );
        let bad = compress(codec, &[two_records(), vec![1, 2, 3]].concat()).unwrap();
        assert!(
            matches!(
                check(&batch(&bad, 2, NOW + 5, id)),
                Err(RecordError::TrailingBytes { .. })
            ),
            "{codec:?}"
        );
        let corrupt = b"\x01\x02\x03 not really compressed";
        assert!(
            matches!(
                check(&batch(corrupt, 2, NOW + 5, id)),
                Err(RecordError::Codec(CodecError::Corrupt { .. }))
            ),
            "{codec:?}"
        );
    }
}

/// A batch of a few kilobytes whose records decompress to 16 MiB is refused at the
/// bound, with the scratch buffer no larger than the bound.
#[test]
fn a_decompression_bomb_is_refused_at_the_bound() {
    let value = vec![0u8; 16 << 20];
    let bomb_records = record(0, 0, None, Some(&value));
    for (codec, id) in [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ] {
        let bomb = compress(codec, &bomb_records).unwrap();
        let b = batch(&bomb, 1, NOW, id);
        let header = RecordBatchHeader::validate_produced(&b, 0).unwrap();
        let mut scratch = Vec::new();
        let e = check_batch(&b, &header, &RULES, &mut scratch).unwrap_err();
        assert!(
            matches!(e, RecordError::Codec(CodecError::TooLarge { .. })),
            "{codec:?}: {e}"
        );
        assert!(scratch.capacity() <= RULES.max_decompressed_bytes + 1);
    }
}

/// The header's max timestamp is not trusted: -1 (Sarama 1.22) or a wrong value give
/// the records' real maximum.
#[test]
fn max_timestamp_comes_from_the_records() {
    for header_max in [-1, 5, i64::MAX, NOW] {
        let b = batch(&two_records(), 2, header_max, 0);
        assert_eq!(check(&b).unwrap().max_timestamp, NOW + 5, "{header_max}");
    }
    // No record has a timestamp: -1.
    let records = [record(-1 - NOW, 0, None, None)].concat();
    assert_eq!(check(&batch(&records, 1, 7, 0)).unwrap().max_timestamp, -1);
}

#[test]
fn timestamps_out_of_bounds_are_refused() {
    let rules = CheckRules {
        sequence_required: true,
        timestamps: Some((NOW - 10, NOW + 2)),
        ..RULES
    };
    assert_eq!(
        check_with(&batch(&two_records(), 2, NOW + 5, 0), &rules),
        Err(RecordError::Timestamp {
            index: 1,
            timestamp: NOW + 5,
            min: NOW - 10,
            max: NOW + 2
        })
    );
    let early = [record(-11, 0, None, None)].concat();
    assert!(matches!(
        check_with(&batch(&early, 1, NOW, 0), &rules),
        Err(RecordError::Timestamp { index: 0, .. })
    ));
    // -1 means "no timestamp" and is not bounded.
    let none = [record(-1 - NOW, 0, None, None)].concat();
    assert!(check_with(&batch(&none, 1, -1, 0), &rules).is_ok());
    let inside = [record(2, 0, None, None)].concat();
    assert!(check_with(&batch(&inside, 1, NOW + 2, 0), &rules).is_ok());
}

#[test]
fn producers_may_not_claim_log_append_time_or_a_negative_sequence() {
    assert_eq!(
        check(&batch(&two_records(), 2, NOW + 5, 0x08)),
        Err(RecordError::LogAppendTimeSet)
    );
    let mut b = RecordBatchBuilder::new().producer(7, 0, -5);
    b.push(NOW, None, Some(b"v"), &[]);
    assert!(matches!(
        check(&b.build()),
        Err(RecordError::InvalidSequence { .. })
    ));
}

/// Random byte mutations of a valid batch (CRC fixed up afterwards, as an attacker
/// would) are refused or accepted, never a panic; whatever is accepted walks again.
#[test]
fn mutated_batches_never_panic() {
    let mut builder = RecordBatchBuilder::new();
    for i in 0..4 {
        builder.push(NOW + i, Some(b"key"), Some(b"value"), &[("h", Some(b"x"))]);
    }
    let good = builder.build();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 3 {
            let at = BATCH_HEADER_LEN + (next() as usize) % (b.len() - BATCH_HEADER_LEN);
            b[at] = next() as u8;
        }
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let _ = check(&b);
    }
}

/// The broker reuses one scratch buffer per thread without zeroing it: bytes left over
/// from a larger batch must never be read as part of a smaller one.
#[test]
fn a_reused_scratch_buffer_leaves_nothing_stale() {
    let mut scratch = Vec::new();
    let big: Vec<u8> = (0..50)
        .flat_map(|i| record(0, i, None, Some(&[7; 100])))
        .collect();
    let small = record(0, 0, None, Some(&[1; 20]));
    for (codec, id) in [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ] {
        let b = batch(&compress(codec, &big).unwrap(), 50, NOW, id);
        let h = RecordBatchHeader::validate_produced(&b, 0).unwrap();
        assert!(
            check_batch(&b, &h, &RULES, &mut scratch).is_ok(),
            "{codec:?}"
        );
        // Claims two records but holds one: the stale second record of `big` must not
        // count.
        let b = batch(&compress(codec, &small).unwrap(), 2, NOW, id);
        let h = RecordBatchHeader::validate_produced(&b, 0).unwrap();
        assert_eq!(
            check_batch(&b, &h, &RULES, &mut scratch),
            Err(RecordError::CountMismatch {
                claimed: 2,
                found: 1
            }),
            "{codec:?}"
        );
    }
}
