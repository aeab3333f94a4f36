//! The mutators. Structure-aware ones work on the fields recorded while a request was
//! encoded (integers to boundary values, strings lengthened with their prefix fixed,
//! Produce batch headers changed with the CRC recomputed); byte-level ones flip, cut,
//! repeat and splice bytes without regard for the structure. Every choice comes from the
//! caller's seeded [`Rng`], so a seed names one mutated request.

use strom_wire::advertised_range;

use crate::batch;
use crate::message::{Field, FieldKind, Message, Prefix, put_uvarint};
use crate::rng::Rng;

/// Boundary values for an integer of `width` bytes: the limits, one off them, 0, -1, 1,
/// and the powers of two where size computations overflow or allocations get large.
pub fn boundary(width: u8, rng: &mut Rng) -> i64 {
    match width {
        1 => *rng.pick(&[0, -1, 1, i8::MAX as i64, i8::MIN as i64, 2]),
        2 => *rng.pick(&[
            0,
            -1,
            1,
            i16::MAX as i64,
            i16::MIN as i64,
            i16::MAX as i64 - 1,
            255,
            256,
            1 << 14,
        ]),
        4 => *rng.pick(&[
            0,
            -1,
            1,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 - 1,
            1 << 16,
            1 << 20,
            1 << 24,
            1 << 30,
            -2,
        ]),
        _ => *rng.pick(&[
            0,
            -1,
            1,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i32::MAX as i64,
            1 << 32,
            1 << 62,
        ]),
    }
}

fn write_int(bytes: &mut [u8], f: &Field, v: i64) {
    let be = v.to_be_bytes();
    let w = f.len;
    bytes[f.pos..f.pos + w].copy_from_slice(&be[8 - w..]);
}

/// Applies 1-3 mutations to `msg`; returns a description of each. `donor` is another
/// request of the sequence, for splicing.
pub fn mutate(msg: &mut Message, rng: &mut Rng, donor: &[u8]) -> Vec<String> {
    let n = *rng.pick(&[1, 1, 1, 2, 3]);
    (0..n).map(|_| mutate_once(msg, rng, donor)).collect()
}

/// One mutation, chosen by weight: structure-aware ones are most of them, because byte
/// noise mostly hits the decoder, which the codec fuzz targets already cover.
pub fn mutate_once(msg: &mut Message, rng: &mut Rng, donor: &[u8]) -> String {
    const WEIGHTS: &[u32] = &[40, 20, 8, 4, 8, 6, 6, 4, 4];
    for _ in 0..8 {
        let done = match rng.weighted(WEIGHTS) {
            0 => int_field(msg, rng),
            1 => batch_header(msg, rng),
            2 => long_string(msg, rng),
            3 => api_version(msg, rng),
            4 => bit_flip(msg, rng),
            5 => truncate(msg, rng),
            6 => repeat_range(msg, rng),
            7 => delete_range(msg, rng),
            _ => splice(msg, rng, donor),
        };
        if let Some(what) = done {
            return what;
        }
    }
    bit_flip(msg, rng).unwrap_or_else(|| "nothing".to_string())
}

/// An integer field of the body (header fields one time in ten) set to a boundary value.
/// Half of the time the field is one holding a small positive value: those are mostly
/// counts, partition numbers, indexes and array lengths, the numbers a broker sizes
/// allocations and loops by, rather than timeouts, offsets or ids.
pub fn int_field(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    let in_header = rng.chance(10);
    let mut ints: Vec<Field> = msg
        .fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Int(_)) && (f.pos < msg.body_start) == in_header)
        .copied()
        .collect();
    if ints.is_empty() {
        return None;
    }
    if rng.chance(50) {
        let small: Vec<Field> = ints
            .iter()
            .filter(|f| f.len >= 2 && (1..=1024).contains(&read_int(&msg.bytes, f)))
            .copied()
            .collect();
        if !small.is_empty() {
            ints = small;
        }
    }
    let f = *rng.pick(&ints);
    let FieldKind::Int(w) = f.kind else {
        unreachable!()
    };
    let v = boundary(w, rng);
    write_int(&mut msg.bytes, &f, v);
    Some(format!("int{} @{} = {v}", w as u32 * 8, f.pos))
}

fn read_int(bytes: &[u8], f: &Field) -> i64 {
    let b = &bytes[f.pos..f.pos + f.len];
    match f.len {
        1 => b[0] as i8 as i64,
        2 => i16::from_be_bytes([b[0], b[1]]) as i64,
        4 => i32::from_be_bytes(b.try_into().unwrap()) as i64,
        _ => i64::from_be_bytes(b.try_into().unwrap()),
    }
}

/// A record batch inside the request (a Produce's records) with one header field changed
/// and the CRC fixed.
pub fn batch_header(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    let batches: Vec<Field> = msg
        .fields
        .iter()
        .filter(|f| {
            matches!(f.kind, FieldKind::Bytes(_))
                && batch::looks_like_batch(&msg.bytes[f.pos..f.pos + f.len])
        })
        .copied()
        .collect();
    if batches.is_empty() {
        return None;
    }
    let f = *rng.pick(&batches);
    let what = batch::mutate_header(&mut msg.bytes[f.pos..f.pos + f.len], rng);
    Some(format!("batch @{}: {what}", f.pos))
}

/// A length-prefixed string replaced by a long (or empty, or non-UTF-8) one, the prefix
/// rewritten to match.
pub fn long_string(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    let strings: Vec<Field> = msg
        .fields
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FieldKind::Bytes(Prefix::I16 | Prefix::I32 | Prefix::Compact(_))
            )
        })
        .copied()
        .collect();
    if strings.is_empty() {
        return None;
    }
    let f = *rng.pick(&strings);
    let FieldKind::Bytes(prefix) = f.kind else {
        unreachable!()
    };
    // An earlier byte-level mutation may have cut or moved the prefix away from its bytes.
    if !prefix_intact(&msg.bytes, &f, prefix) {
        return None;
    }
    let len = *rng.pick(&[0usize, 250, 256, 1000, 32_767]);
    let fill = *rng.pick(&[b'a', b'.', 0xff, 0]);
    let new = vec![fill; len];
    let (prefix_pos, prefix_bytes) = match prefix {
        Prefix::I16 => (f.pos - 2, (len as i16).to_be_bytes().to_vec()),
        Prefix::I32 => (f.pos - 4, (len as i32).to_be_bytes().to_vec()),
        Prefix::Compact(n) => {
            let mut v = Vec::new();
            put_uvarint(&mut v, len as u64 + 1);
            (f.pos - n as usize, v)
        }
        Prefix::None => unreachable!(),
    };
    let mut replacement = prefix_bytes;
    replacement.extend_from_slice(&new);
    msg.splice(prefix_pos, f.pos + f.len - prefix_pos, &replacement);
    Some(format!("string @{} = {len} x {fill:#04x}", f.pos))
}

/// Whether the length prefix in front of `f` still says `f.len`.
fn prefix_intact(bytes: &[u8], f: &Field, prefix: Prefix) -> bool {
    match prefix {
        Prefix::I16 => {
            f.pos >= 2 && i16::from_be_bytes([bytes[f.pos - 2], bytes[f.pos - 1]]) as usize == f.len
        }
        Prefix::I32 => {
            f.pos >= 4
                && i32::from_be_bytes(bytes[f.pos - 4..f.pos].try_into().unwrap()) as usize == f.len
        }
        Prefix::Compact(n) => {
            let n = n as usize;
            f.pos >= n
                && crate::message::read_uvarint(&bytes[f.pos - n..f.pos])
                    == Some((f.len as u64 + 1, n))
        }
        Prefix::None => false,
    }
}

/// The header's api version set to another one: just outside the advertised range, or
/// another one inside it (the body then no longer matches the version).
pub fn api_version(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    let range = advertised_range(msg.api_key)?;
    if msg.bytes.len() < 4 {
        return None;
    }
    let v = *rng.pick(&[
        range.min - 1,
        range.max + 1,
        range.min,
        range.max,
        i16::MAX,
        -1,
    ]);
    msg.bytes[2..4].copy_from_slice(&v.to_be_bytes());
    Some(format!("api_version = {v}"))
}

pub fn bit_flip(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    if msg.bytes.is_empty() {
        return None;
    }
    let at = rng.below(msg.bytes.len());
    let bit = rng.below(8);
    msg.bytes[at] ^= 1 << bit;
    Some(format!("bit {bit} of byte {at} flipped"))
}

pub fn truncate(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    if msg.bytes.len() < 2 {
        return None;
    }
    let at = rng.below(msg.bytes.len());
    let cut = msg.bytes.len() - at;
    msg.splice(at, cut, &[]);
    Some(format!("truncated to {at} bytes"))
}

/// A range of bytes repeated in place (up to 64 times), which duplicates whatever array
/// entries happen to be in it without adjusting any count.
pub fn repeat_range(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    if msg.bytes.len() < 2 {
        return None;
    }
    let at = rng.below(msg.bytes.len());
    let len = 1 + rng.below((msg.bytes.len() - at).min(64));
    let times = *rng.pick(&[1usize, 2, 16, 64]);
    let chunk = msg.bytes[at..at + len].repeat(times + 1);
    msg.splice(at, len, &chunk);
    Some(format!("{len} bytes at {at} repeated {times} times"))
}

pub fn delete_range(msg: &mut Message, rng: &mut Rng) -> Option<String> {
    if msg.bytes.len() < 2 {
        return None;
    }
    let at = rng.below(msg.bytes.len());
    let len = 1 + rng.below((msg.bytes.len() - at).min(16));
    msg.splice(at, len, &[]);
    Some(format!("{len} bytes at {at} deleted"))
}

/// Bytes of another request of the sequence inserted at a random place.
pub fn splice(msg: &mut Message, rng: &mut Rng, donor: &[u8]) -> Option<String> {
    if donor.is_empty() || msg.bytes.is_empty() {
        return None;
    }
    let from = rng.below(donor.len());
    let len = 1 + rng.below((donor.len() - from).min(128));
    let at = rng.below(msg.bytes.len());
    let chunk = donor[from..from + len].to_vec();
    msg.splice(at, 0, &chunk);
    Some(format!("{len} donor bytes inserted at {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{self, Ctx};
    use kafka_protocol::messages::ApiKey;

    fn produce(rng: &mut Rng) -> Message {
        let ctx = Ctx::new(rng, 2);
        corpus::build(ApiKey::Produce, 9, 1, &ctx, rng).unwrap()
    }

    #[test]
    fn same_seed_same_mutations() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut msg = produce(&mut rng);
            let donor = msg.bytes.clone();
            let what = mutate(&mut msg, &mut rng, &donor);
            (msg.bytes, what)
        };
        for seed in 0..200 {
            assert_eq!(run(seed), run(seed));
        }
        assert!(
            (0..50)
                .map(run)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 40
        );
    }

    /// Mutations stacked on mutations, on every api: whatever earlier ones did to the bytes
    /// and the field map, later ones must not panic.
    #[test]
    fn stacked_mutations_never_panic() {
        let mut rng = Rng::new(14);
        for range in strom_wire::SUPPORTED_APIS {
            let ctx = Ctx::new(&mut rng, 4);
            for version in corpus::buildable_versions(range) {
                for _ in 0..30 {
                    let mut msg = corpus::build(range.key, version, 1, &ctx, &mut rng).unwrap();
                    let donor = msg.bytes.clone();
                    for _ in 0..40 {
                        mutate_once(&mut msg, &mut rng, &donor);
                        for f in &msg.fields {
                            assert!(f.pos + f.len <= msg.bytes.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn int_mutation_writes_a_boundary_value_in_place() {
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let mut msg = produce(&mut rng);
            let before = msg.clone();
            let what = int_field(&mut msg, &mut rng).unwrap();
            assert_eq!(msg.bytes.len(), before.bytes.len(), "{what}");
            let changed: Vec<usize> = (0..msg.bytes.len())
                .filter(|&i| msg.bytes[i] != before.bytes[i])
                .collect();
            if let (Some(&first), Some(&last)) = (changed.first(), changed.last()) {
                // All changed bytes lie inside one recorded integer field.
                assert!(
                    before
                        .fields
                        .iter()
                        .any(|f| matches!(f.kind, FieldKind::Int(_))
                            && f.pos <= first
                            && last < f.pos + f.len),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn batch_mutation_leaves_a_batch_with_a_valid_crc() {
        let mut rng = Rng::new(12);
        for _ in 0..200 {
            let mut msg = produce(&mut rng);
            let what = batch_header(&mut msg, &mut rng).unwrap();
            let req = strom_wire::decode_request(msg.bytes.clone().into()).unwrap();
            let kafka_protocol::messages::RequestKind::Produce(p) = req.body else {
                panic!("not a produce");
            };
            let records = p.topic_data[0].partition_data[0].records.clone().unwrap();
            let stored = u32::from_be_bytes(records[17..21].try_into().unwrap());
            assert_eq!(stored, batch::crc32c(&records[21..]), "{what}");
        }
    }

    #[test]
    fn long_string_keeps_the_request_decodable() {
        let mut rng = Rng::new(13);
        let ctx = Ctx::new(&mut rng, 3);
        let mut decoded = 0;
        for version in [2i16, 4, 5, 7] {
            for _ in 0..50 {
                let mut msg =
                    corpus::build(ApiKey::CreateTopics, version, 1, &ctx, &mut rng).unwrap();
                let what = long_string(&mut msg, &mut rng).unwrap();
                // A string's new length prefix matches its new bytes, so the request still
                // decodes unless the new contents are not UTF-8 (or too long for a name).
                if strom_wire::decode_request(msg.bytes.clone().into()).is_ok() {
                    decoded += 1;
                } else {
                    assert!(what.contains("0xff"), "{what}");
                }
            }
        }
        assert!(decoded > 50);
    }
}
