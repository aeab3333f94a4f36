//! Tests of the reader: every read at every truncation, varint edge values and the
//! encodings Kafka refuses, against bytes written out by hand.

use super::*;

fn uvarint_bytes(v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, v);
    out
}

fn varint_bytes(v: i32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out
}

fn varlong_bytes(v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varlong(&mut out, v);
    out
}

#[test]
fn big_endian_integers_and_shortfalls() {
    let buf = [0x80, 0xff, 0xfe, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 9];
    let mut r = Reader::new(&buf);
    assert_eq!(r.i8(), Ok(-128));
    assert_eq!(r.i16(), Ok(-2));
    assert_eq!(r.i32(), Ok(2));
    assert_eq!(r.i64(), Ok(256));
    assert_eq!(r.position(), 15);
    let short = ReadError::Truncated {
        at: 15,
        needed: 2,
        available: 1,
    };
    assert_eq!(r.i16(), Err(short));
    assert_eq!(r.position(), 15, "a failed read moves nothing");
    assert_eq!(r.rest(), &[9]);
    assert_eq!(r.u8(), Ok(9));
    assert!(r.is_empty());
    let short = ReadError::Truncated {
        at: 16,
        needed: 4,
        available: 0,
    };
    assert_eq!(r.i32(), Err(short));
    assert_eq!(short.at(), 16);
    assert_eq!(r.take(0), Ok(&[][..]));
    assert!(r.take(usize::MAX).is_err());
}

#[test]
fn uvarint_edge_values() {
    let cases: &[(u32, &[u8])] = &[
        (0, &[0x00]),
        (1, &[0x01]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (300, &[0xac, 0x02]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (i32::MAX as u32, &[0xff, 0xff, 0xff, 0xff, 0x07]),
        (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for &(v, enc) in cases {
        assert_eq!(uvarint_bytes(v), enc, "{v}");
        let mut r = Reader::new(enc);
        assert_eq!(r.uvarint(), Ok(v), "{v}");
        assert!(r.is_empty());
        let mut r = Reader::new(enc);
        assert_eq!(r.uvarint_lenient(), Ok(v), "{v}");
        assert!(r.is_empty());
    }
}

#[test]
fn varint_edge_values() {
    let cases: &[(i32, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for &(v, enc) in cases {
        assert_eq!(varint_bytes(v), enc, "{v}");
        assert_eq!(varlong_bytes(i64::from(v)), enc, "{v} as a varlong");
        assert_eq!(varlong_len(i64::from(v)), enc.len(), "{v}");
        let mut r = Reader::new(enc);
        assert_eq!(r.varint(), Ok(v), "{v}");
        assert!(r.is_empty());
        let mut r = Reader::new(enc);
        assert_eq!(r.varlong(), Ok(i64::from(v)), "{v} as a varlong");
        assert!(r.is_empty());
    }
}

#[test]
fn varlong_edge_values() {
    let cases: &[(i64, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (i64::from(i32::MAX) + 1, &[0x80, 0x80, 0x80, 0x80, 0x10]),
        (
            i64::MAX,
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        (
            i64::MIN,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ];
    for &(v, enc) in cases {
        assert_eq!(varlong_bytes(v), enc, "{v}");
        assert_eq!(varlong_len(v), enc.len(), "{v}");
        let mut r = Reader::new(enc);
        assert_eq!(r.varlong(), Ok(v), "{v}");
        assert!(r.is_empty());
    }
    // A varlong beyond 32 bits is not a varint.
    let enc = varlong_bytes(i64::from(i32::MAX) + 1);
    assert_eq!(
        Reader::new(&enc).varint(),
        Err(ReadError::VarintOverflow { at: 0, bits: 32 })
    );
}

#[test]
fn overlong_and_overwide_varints_are_refused() {
    // Continuation bit on the fifth / tenth byte.
    let too_long = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    let e = ReadError::VarintTooLong {
        at: 0,
        max_bytes: 5,
    };
    assert_eq!(Reader::new(&too_long).uvarint(), Err(e));
    assert_eq!(Reader::new(&too_long).varint(), Err(e));
    let too_long = [0xff; 11];
    let e = ReadError::VarintTooLong {
        at: 0,
        max_bytes: 10,
    };
    assert_eq!(Reader::new(&too_long).varlong(), Err(e));
    // Bits past 32 / 64 in the last byte.
    let too_wide = [0xff, 0xff, 0xff, 0xff, 0x1f];
    let e = ReadError::VarintOverflow { at: 0, bits: 32 };
    assert_eq!(Reader::new(&too_wide).uvarint(), Err(e));
    assert_eq!(Reader::new(&too_wide).varint(), Err(e));
    let too_wide = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    let e = ReadError::VarintOverflow { at: 0, bits: 64 };
    assert_eq!(Reader::new(&too_wide).varlong(), Err(e));
    // Padded encodings of small values (zero groups with continuation bits) are valid
    // within the byte limit, as Kafka reads them.
    assert_eq!(
        Reader::new(&[0x81, 0x80, 0x80, 0x80, 0x00]).uvarint(),
        Ok(1)
    );
    // The error names where the varint began, not the byte that broke it.
    let mut r = Reader::new(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff]);
    r.u8().unwrap();
    assert_eq!(
        r.uvarint(),
        Err(ReadError::VarintTooLong {
            at: 1,
            max_bytes: 5
        })
    );
    assert_eq!(r.position(), 1);
}

#[test]
fn lenient_uvarint_reads_what_kafka_protocol_reads() {
    // (input, value, bytes consumed): stop after five bytes whatever the fifth says, and
    // drop bits past 32 (kafka-protocol's `UnsignedVarInt` decoder).
    let cases: &[(&[u8], u32, usize)] = &[
        (&[0x7f, 0xaa], 127, 1),
        (&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], u32::MAX, 5),
        (&[0x80, 0x80, 0x80, 0x80, 0x7f], 0xf000_0000, 5),
    ];
    for &(input, value, consumed) in cases {
        let mut r = Reader::new(input);
        assert_eq!(r.uvarint_lenient(), Ok(value), "{input:?}");
        assert_eq!(r.position(), consumed, "{input:?}");
    }
    assert!(Reader::new(&[0x80]).uvarint_lenient().is_err());
    assert!(Reader::new(&[]).uvarint_lenient().is_err());
}

#[test]
fn truncated_varints_error_at_every_length() {
    for enc in [
        uvarint_bytes(u32::MAX),
        varint_bytes(i32::MIN),
        varlong_bytes(i64::MIN),
    ] {
        for cut in 0..enc.len() {
            let mut r = Reader::new(&enc[..cut]);
            let e = ReadError::Truncated {
                at: cut,
                needed: 1,
                available: 0,
            };
            assert_eq!(r.clone().varlong(), Err(e), "cut {cut}");
            if cut < 5 {
                // The lenient reader stops after five bytes whatever they say.
                assert_eq!(r.clone().uvarint_lenient(), Err(e), "cut {cut}");
            }
            if enc.len() <= 5 {
                assert_eq!(r.clone().uvarint(), Err(e), "cut {cut}");
                assert_eq!(r.varint(), Err(e), "cut {cut}");
            }
            assert_eq!(r.position(), 0);
        }
    }
}

/// One of each encoding, hand-written: (bytes, a read of all of them).
fn every_field() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0x01]); // int8 1
    b.extend_from_slice(&[0x00, 0x02]); // int16 2
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x03]); // int32 3
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4]); // int64 4
    b.extend_from_slice(&[0xac, 0x02]); // unsigned_varint 300
    b.extend_from_slice(&[0x03]); // varint -2
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]); // varlong 2^31
    b.extend_from_slice(&[0x00, 0x03, b'a', b'b', b'c']); // string "abc"
    b.extend_from_slice(&[0xff, 0xff]); // null string
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x02, 0xde, 0xad]); // bytes
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null bytes
    b.extend_from_slice(&[0x03, b'h', b'i']); // compact string "hi"
    b.extend_from_slice(&[0x00]); // null compact string
    b.extend_from_slice(&[0x02, 0x07]); // compact bytes [7]
    b.extend_from_slice(&[0x00]); // null compact bytes
    b.extend_from_slice(&[0x04, b'k', b'e']); // record bytes "ke"
    b.extend_from_slice(&[0x01]); // null record bytes
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09]); // array [9]
    b.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x08]); // compact array [8]
    b.extend_from_slice(&[0x02, 0x00, 0x01, 0xaa, 0x05, 0x00]); // 2 tagged fields
    b
}

fn read_every_field(r: &mut Reader<'_>) -> Result<(), ReadError> {
    assert_eq!(r.i8()?, 1);
    assert_eq!(r.i16()?, 2);
    assert_eq!(r.i32()?, 3);
    assert_eq!(r.i64()?, 4);
    assert_eq!(r.uvarint()?, 300);
    assert_eq!(r.varint()?, -2);
    assert_eq!(r.varlong()?, 1 << 31);
    assert_eq!(r.nullable_string()?, Some("abc"));
    assert_eq!(r.nullable_string()?, None);
    assert_eq!(r.nullable_bytes()?, Some(&[0xde, 0xad][..]));
    assert_eq!(r.nullable_bytes()?, None);
    assert_eq!(r.compact_nullable_string()?, Some("hi"));
    assert_eq!(r.compact_nullable_string()?, None);
    assert_eq!(r.compact_nullable_bytes()?, Some(&[7][..]));
    assert_eq!(r.compact_nullable_bytes()?, None);
    assert_eq!(r.varint_bytes()?, Some(&b"ke"[..]));
    assert_eq!(r.varint_bytes()?, None);
    assert_eq!(r.array_len(4)?, Some(1));
    assert_eq!(r.i32()?, 9);
    assert_eq!(r.compact_array_len(4)?, Some(1));
    assert_eq!(r.i32()?, 8);
    r.skip_tagged_fields()?;
    Ok(())
}

#[test]
fn every_encoding_reads_back() {
    let buf = every_field();
    let mut r = Reader::new(&buf);
    read_every_field(&mut r).unwrap();
    assert!(r.is_empty());
}

#[test]
fn truncated_input_at_every_position_is_an_error() {
    let buf = every_field();
    for cut in 0..buf.len() {
        let mut r = Reader::new(&buf[..cut]);
        let e = read_every_field(&mut r).expect_err("a cut input cannot read whole");
        assert!(
            matches!(
                e,
                ReadError::Truncated { .. } | ReadError::ImpossibleCount { .. }
            ),
            "cut {cut}: {e:?}"
        );
        assert!(e.at() <= cut, "cut {cut}: {e:?}");
    }
}

#[test]
fn a_failed_field_read_leaves_the_position() {
    // A string whose length prefix reads but whose bytes are missing.
    let buf = [0x00, 0x05, b'a'];
    let mut r = Reader::new(&buf);
    assert_eq!(
        r.nullable_string(),
        Err(ReadError::Truncated {
            at: 2,
            needed: 5,
            available: 1
        })
    );
    assert_eq!(r.position(), 0);
    // Tagged fields whose second field is cut.
    let buf = [0x02, 0x00, 0x01, 0xaa, 0x05, 0x03];
    let mut r = Reader::new(&buf);
    assert!(r.skip_tagged_fields().is_err());
    assert_eq!(r.position(), 0);
}

#[test]
fn lying_lengths_and_counts_are_refused_before_anything_is_reserved() {
    let max = i32::MAX.to_be_bytes();
    assert_eq!(
        Reader::new(&max).array_len(1),
        Err(ReadError::ImpossibleCount {
            at: 0,
            count: i32::MAX as usize,
            remaining: 0
        })
    );
    assert!(Reader::new(&max).nullable_bytes().is_err());
    let huge = uvarint_bytes(u32::MAX);
    assert!(Reader::new(&huge).compact_array_len(0).is_err());
    assert!(Reader::new(&huge).compact_nullable_bytes().is_err());
    assert!(Reader::new(&varint_bytes(i32::MAX)).varint_bytes().is_err());
    // Four bytes left: four one-byte elements fit, five do not; one four-byte element
    // fits, two do not.
    let buf = [0, 0, 0, 4, 1, 2, 3, 4];
    assert_eq!(Reader::new(&buf).array_len(1), Ok(Some(4)));
    assert!(Reader::new(&[0, 0, 0, 5, 1, 2, 3, 4]).array_len(1).is_err());
    assert!(Reader::new(&[0, 0, 0, 2, 1, 2, 3, 4]).array_len(4).is_err());
    assert_eq!(
        Reader::new(&[0, 0, 0, 1, 1, 2, 3, 4]).array_len(4),
        Ok(Some(1))
    );
    // A size of 0 counts as 1: a count can never exceed the bytes left.
    assert!(Reader::new(&[0, 0, 0, 5, 1, 2, 3, 4]).array_len(0).is_err());
    // Negative counts and lengths are null.
    assert_eq!(
        Reader::new(&[0xff, 0xff, 0xff, 0xfe]).array_len(4),
        Ok(None)
    );
    assert_eq!(Reader::new(&[0x80, 0x00]).nullable_string(), Ok(None));
}

#[test]
fn invalid_utf8_is_an_error() {
    let buf = [0x00, 0x02, 0xc3, 0x28];
    assert_eq!(
        Reader::new(&buf).nullable_string(),
        Err(ReadError::NotUtf8 { at: 0 })
    );
    let buf = [0x03, 0xc3, 0x28];
    assert_eq!(
        Reader::new(&buf).compact_nullable_string(),
        Err(ReadError::NotUtf8 { at: 0 })
    );
}

#[test]
fn writers_append_to_bytes_mut_too() {
    let mut b = bytes::BytesMut::new();
    put_uvarint(&mut b, 300);
    put_varint(&mut b, -2);
    put_varlong(&mut b, i64::MIN);
    put_uvarlong(&mut b, u64::MAX);
    let mut r = Reader::new(&b);
    assert_eq!(r.uvarint(), Ok(300));
    assert_eq!(r.varint(), Ok(-2));
    assert_eq!(r.varlong(), Ok(i64::MIN));
    assert_eq!(
        r.rest(),
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
    );
}
