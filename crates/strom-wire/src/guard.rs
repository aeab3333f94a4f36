//! A cheap walk over a request body, before decoding it, that refuses arrays declaring
//! more elements than the rest of the frame can hold.
//!
//! Why this exists: kafka-protocol 0.18 reads an array's length from the wire and calls
//! `Vec::with_capacity(length)` before decoding a single element. Eight bytes declaring
//! 2^31 topics make it request hundreds of gigabytes; the allocation fails and Rust
//! aborts the whole broker (not a panic, nothing to catch). Upstream has open pull
//! requests for this, none released. Until one is, every body passes through [`check`]:
//! it follows the same fields the decoder will read (see [`crate::schema`]) and requires
//! `length * smallest_possible_element <= bytes_remaining` for every array. With that,
//! what the decoder reserves is bounded by what fully decoding the frame would allocate
//! anyway, which the frame size limit bounds.
//!
//! The walk reads the body once, without allocating, and skips over string and record
//! bytes without looking at them.

use kafka_protocol::messages::ApiKey;
use strom_bytes::ReadError;

use crate::reader::{Reader, Short};
use crate::schema::{self, Struct, Ty};

/// Why a body was refused. Converted to [`crate::WireError`] by the caller, which knows the
/// correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GuardError {
    /// An array declares more elements than could fit in the bytes that remain.
    ImpossibleLength {
        structure: &'static str,
        field: &'static str,
        length: u64,
        min_element_size: usize,
        at: usize,
        remaining: usize,
    },
    /// The body is malformed in a way the decoder would refuse too (truncated, a negative
    /// length, a tagged field the version does not allow).
    Malformed {
        structure: &'static str,
        field: &'static str,
        reason: String,
    },
}

/// Walks `body` as a request of `key` at `version`. Apis without a schema (none of
/// Strom's) pass unchecked.
pub(crate) fn check(key: ApiKey, version: i16, body: &[u8]) -> Result<(), GuardError> {
    count(key, version, body).map(drop)
}

/// How many array elements a body holds, by kind: what decoding it will allocate
/// beyond the frame itself (strings and byte fields are views into the frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Elements {
    /// Elements of arrays of structures: one decoded struct each.
    pub structs: u64,
    /// Strings in arrays of strings.
    pub strings: u64,
    /// INT32s in arrays of them.
    pub ints: u64,
    /// INT64s in arrays of them.
    pub longs: u64,
    /// Tagged fields the decoder does not know: each an entry in a map of them.
    pub unknown_tags: u64,
}

/// [`check`], counting the array elements on the way.
pub(crate) fn count(key: ApiKey, version: i16, body: &[u8]) -> Result<Elements, GuardError> {
    let Some(message) = schema::message(key) else {
        return Ok(Elements::default());
    };
    let mut walk = Walk {
        r: Reader::new(body),
        version,
        flexible: version >= message.flexible_from,
        elements: Elements::default(),
    };
    walk.structure(message.body)?;
    Ok(walk.elements)
}

/// The fewest bytes a value of `ty` can occupy at this version.
pub(crate) fn min_size(ty: Ty, version: i16, flexible: bool) -> usize {
    match ty {
        Ty::I8 => 1,
        Ty::I16 => 2,
        Ty::I32 => 4,
        Ty::I64 => 8,
        Ty::Uuid => 16,
        // Compact forms: one varint byte (null, or empty). Otherwise an INT16 length for
        // strings, INT32 for bytes and arrays.
        Ty::Str => {
            if flexible {
                1
            } else {
                2
            }
        }
        Ty::Bytes | Ty::Structs(_) | Ty::Int32s | Ty::Int64s | Ty::Strs => {
            if flexible {
                1
            } else {
                4
            }
        }
        Ty::Inline(s) => min_struct_size(s, version, flexible),
        // Null: the marker alone.
        Ty::Optional(_) => 1,
    }
}

/// The fewest bytes one element of `s` can occupy: its fields at their smallest, plus the
/// tagged-field count in flexible versions. Tagged fields themselves are optional.
pub(crate) fn min_struct_size(s: &Struct, version: i16, flexible: bool) -> usize {
    let fields: usize = s
        .fields
        .iter()
        .filter(|f| f.present(version))
        .map(|f| min_size(f.ty, version, flexible))
        .sum();
    fields + usize::from(flexible)
}

struct Walk<'a> {
    r: Reader<'a>,
    version: i16,
    flexible: bool,
    elements: Elements,
}

impl Walk<'_> {
    fn structure(&mut self, s: &'static Struct) -> Result<(), GuardError> {
        let version = self.version;
        for field in s.fields.iter().filter(|f| f.present(version)) {
            self.value(s, field.name, field.ty)?;
        }
        if self.flexible {
            self.tagged_fields(s)?;
        }
        Ok(())
    }

    /// The tagged-field section: a count, then (tag, size, value) per field. Tags the
    /// decoder knows are walked by type, exactly as it reads them (it ignores `size` for
    /// those); unknown ones are skipped by `size`.
    fn tagged_fields(&mut self, s: &'static Struct) -> Result<(), GuardError> {
        let short = |e| truncated(s, "tagged fields", e);
        let count = self.r.uvarint_lenient().map_err(short)?;
        // Each pass consumes at least two bytes or fails, so a huge count ends quickly.
        for _ in 0..count {
            let tag = self.r.uvarint_lenient().map_err(short)?;
            let size = self.r.uvarint_lenient().map_err(short)?;
            match s.tagged.iter().find(|t| t.tag == tag) {
                Some(t) if t.present(self.version) => self.value(s, t.name, t.ty)?,
                Some(t) => {
                    return Err(GuardError::Malformed {
                        structure: s.name,
                        field: t.name,
                        reason: format!("tag {tag} is not valid in version {}", self.version),
                    });
                }
                None => {
                    self.r.take(size as usize).map_err(short)?;
                    self.elements.unknown_tags += 1;
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, s: &'static Struct, name: &'static str, ty: Ty) -> Result<(), GuardError> {
        let short = |e| truncated(s, name, e);
        match ty {
            Ty::I8 => self.r.take(1).map(drop).map_err(short),
            Ty::I16 => self.r.take(2).map(drop).map_err(short),
            Ty::I32 => self.r.take(4).map(drop).map_err(short),
            Ty::I64 => self.r.take(8).map(drop).map_err(short),
            Ty::Uuid => self.r.take(16).map(drop).map_err(short),
            Ty::Str => {
                let len = if self.flexible {
                    compact_len(self.r.uvarint_lenient().map_err(short)?)
                } else {
                    self.r.i16().map_err(short).map(i64::from)?
                };
                self.skip_bytes(s, name, len)
            }
            Ty::Bytes => {
                let len = if self.flexible {
                    compact_len(self.r.uvarint_lenient().map_err(short)?)
                } else {
                    self.r.i32().map_err(short).map(i64::from)?
                };
                self.skip_bytes(s, name, len)
            }
            Ty::Structs(element) => {
                let min = min_struct_size(element, self.version, self.flexible);
                let n = self.array_len(s, name, min)?;
                self.elements.structs += n;
                for _ in 0..n {
                    self.structure(element)?;
                }
                Ok(())
            }
            Ty::Int32s => {
                let n = self.array_len(s, name, 4)?;
                self.elements.ints += n;
                // array_len has checked that n * 4 bytes are there.
                self.r.take(n as usize * 4).map(drop).map_err(short)
            }
            Ty::Int64s => {
                let n = self.array_len(s, name, 8)?;
                self.elements.longs += n;
                self.r.take(n as usize * 8).map(drop).map_err(short)
            }
            Ty::Strs => {
                let n = self.array_len(s, name, min_size(Ty::Str, self.version, self.flexible))?;
                self.elements.strings += n;
                for _ in 0..n {
                    self.value(s, name, Ty::Str)?;
                }
                Ok(())
            }
            Ty::Inline(inner) => self.structure(inner),
            Ty::Optional(inner) => {
                if self.r.i8().map_err(short)? >= 0 {
                    self.elements.structs += 1;
                    self.structure(inner)?;
                }
                Ok(())
            }
        }
    }

    /// Skips a string or byte payload of `len` bytes; -1 is null.
    fn skip_bytes(
        &mut self,
        s: &'static Struct,
        name: &'static str,
        len: i64,
    ) -> Result<(), GuardError> {
        match len {
            -1 => Ok(()),
            n if n >= 0 => self
                .r
                .take(n as usize)
                .map(drop)
                .map_err(|e| truncated(s, name, e)),
            n => Err(GuardError::Malformed {
                structure: s.name,
                field: name,
                reason: format!("length {n} is negative"),
            }),
        }
    }

    /// Reads an array length (INT32, or compact UNSIGNED_VARINT + 1; null counts as
    /// empty) and checks that `length` elements of at least `min_element` bytes fit in
    /// what remains.
    fn array_len(
        &mut self,
        s: &'static Struct,
        name: &'static str,
        min_element: usize,
    ) -> Result<u64, GuardError> {
        let short = |e| truncated(s, name, e);
        let length = if self.flexible {
            compact_len(self.r.uvarint_lenient().map_err(short)?)
        } else {
            i64::from(self.r.i32().map_err(short)?)
        };
        let length = match length {
            -1 => return Ok(0),
            n if n >= 0 => n as u64,
            n => {
                return Err(GuardError::Malformed {
                    structure: s.name,
                    field: name,
                    reason: format!("array length {n} is negative"),
                });
            }
        };
        // Every element occupies at least one byte even if the schema says less, so an
        // element kind that could be empty still cannot make the decoder loop or reserve
        // without bound.
        let min_element = min_element.max(1);
        let remaining = self.r.remaining();
        if u128::from(length) * min_element as u128 > remaining as u128 {
            return Err(GuardError::ImpossibleLength {
                structure: s.name,
                field: name,
                length,
                min_element_size: min_element,
                at: self.r.position(),
                remaining,
            });
        }
        Ok(length)
    }
}

/// A compact length on the wire is the length plus one, with 0 for null.
fn compact_len(raw: u32) -> i64 {
    i64::from(raw) - 1
}

fn truncated(s: &'static Struct, name: &'static str, e: ReadError) -> GuardError {
    let e = Short::from(e);
    GuardError::Malformed {
        structure: s.name,
        field: name,
        reason: format!(
            "truncated at body byte {}: need {} bytes, have {}",
            e.at, e.needed, e.available
        ),
    }
}

/// Builds populated request bodies from the schema, for tests: every array has two
/// elements, every string and byte field a short distinct value. Used to check the schema
/// against kafka-protocol and to feed realistic frames to the decoder.
#[cfg(test)]
pub(crate) mod sample {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::ApiKey;

    use crate::schema::{self, Struct, Ty};

    pub(crate) fn body(key: ApiKey, version: i16) -> BytesMut {
        let message = schema::message(key).expect("schema for every supported api");
        let mut out = Sample {
            buf: BytesMut::new(),
            version,
            flexible: version >= message.flexible_from,
            counter: 0,
        };
        out.structure(message.body);
        out.buf
    }

    struct Sample {
        buf: BytesMut,
        version: i16,
        flexible: bool,
        counter: u8,
    }

    impl Sample {
        fn next(&mut self) -> u8 {
            self.counter = self.counter.wrapping_add(1);
            self.counter
        }

        fn structure(&mut self, s: &Struct) {
            let version = self.version;
            for field in s.fields.iter().filter(|f| f.present(version)) {
                self.value(field.ty);
            }
            if self.flexible {
                self.buf.put_u8(0); // no tagged fields
            }
        }

        fn len(&mut self, n: usize, wide: bool) {
            match (self.flexible, wide) {
                (true, _) => self.buf.put_u8(n as u8 + 1),
                (false, false) => self.buf.put_i16(n as i16),
                (false, true) => self.buf.put_i32(n as i32),
            }
        }

        fn value(&mut self, ty: Ty) {
            let n = self.next();
            match ty {
                // 1 reads back as `true` for booleans and re-encodes as 1.
                Ty::I8 => self.buf.put_i8(1),
                Ty::I16 => self.buf.put_i16(i16::from(n)),
                Ty::I32 => self.buf.put_i32(i32::from(n) * 1000),
                Ty::I64 => self.buf.put_i64(i64::from(n) << 33),
                Ty::Uuid => self.buf.put_slice(&[n; 16]),
                Ty::Str => {
                    let text = format!("s{n}");
                    self.len(text.len(), false);
                    self.buf.put_slice(text.as_bytes());
                }
                Ty::Bytes => {
                    self.len(3, true);
                    self.buf.put_slice(&[n, 0, n]);
                }
                Ty::Structs(element) => {
                    self.len(2, true);
                    self.structure(element);
                    self.structure(element);
                }
                Ty::Int32s => {
                    self.len(2, true);
                    self.buf.put_i32(i32::from(n));
                    self.buf.put_i32(-i32::from(n));
                }
                Ty::Int64s => {
                    self.len(2, true);
                    self.buf.put_i64(i64::from(n));
                    self.buf.put_i64(-i64::from(n));
                }
                Ty::Strs => {
                    self.len(2, true);
                    self.value(Ty::Str);
                    self.value(Ty::Str);
                }
                Ty::Inline(inner) => self.structure(inner),
                Ty::Optional(inner) => {
                    self.buf.put_i8(1);
                    self.structure(inner);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::{PRODUCE_MIN_USABLE_VERSION, SUPPORTED_APIS};
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::RequestKind;

    /// Every usable (api, version) pair Strom serves.
    fn usable_versions() -> impl Iterator<Item = (ApiKey, i16)> {
        SUPPORTED_APIS.iter().flat_map(|r| {
            let min = if r.key == ApiKey::Produce {
                PRODUCE_MIN_USABLE_VERSION
            } else {
                r.min
            };
            (min..=r.max).map(move |v| (r.key, v))
        })
    }

    #[test]
    fn every_supported_api_has_a_schema() {
        for r in SUPPORTED_APIS {
            assert!(schema::message(r.key).is_some(), "{:?}", r.key);
        }
        // Schemas of the consumer-group APIs are kept ready for when they are served.
        assert!(schema::MESSAGES.len() >= SUPPORTED_APIS.len());
    }

    #[test]
    fn flexible_versions_agree_with_kafka_protocol() {
        for (key, version) in usable_versions() {
            let flexible = version >= schema::message(key).unwrap().flexible_from;
            let header = key.request_header_version(version);
            assert_eq!(flexible, header == 2, "{key:?} v{version}");
        }
    }

    /// The schema is transcribed by hand, so check it against the decoder it mirrors: a
    /// body built from the schema must decode completely and re-encode to the same bytes.
    /// A missing field, a wrong version bound or a wrong type shifts every later byte and
    /// fails here.
    #[test]
    fn schema_matches_kafka_protocol() {
        for (key, version) in usable_versions() {
            let body = sample::body(key, version).freeze();
            check(key, version, &body).unwrap_or_else(|e| panic!("{key:?} v{version}: {e:?}"));
            let mut rest = body.clone();
            if crate::legacy::is_legacy(key, version) || crate::newer::is_newer(key, version) {
                // kafka-protocol cannot read these; the hand-written reader must read the
                // same bytes the schema lays out (crate::legacy's and crate::newer's tests
                // check the values).
                if crate::newer::is_newer(key, version) {
                    crate::newer::decode(key, version, &mut rest)
                } else {
                    crate::legacy::decode(key, version, &mut rest)
                }
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
                assert!(rest.is_empty(), "{key:?} v{version}: {} left", rest.len());
                continue;
            }
            let decoded = RequestKind::decode(key, &mut rest, version)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e:#}"));
            assert!(
                rest.is_empty(),
                "{key:?} v{version}: {} bytes left over",
                rest.len()
            );
            let mut again = BytesMut::new();
            decoded.encode(&mut again, version).unwrap();
            assert_eq!(again.freeze(), body, "{key:?} v{version}");
        }
    }

    #[test]
    fn every_array_element_occupies_at_least_one_byte() {
        fn visit(s: &Struct, version: i16, flexible: bool) {
            for f in s.fields.iter().filter(|f| f.present(version)) {
                if let Ty::Structs(e) = f.ty {
                    assert!(
                        min_struct_size(e, version, flexible) >= 1,
                        "{}.{}",
                        s.name,
                        f.name
                    );
                    visit(e, version, flexible);
                }
            }
        }
        for (key, version) in usable_versions() {
            let m = schema::message(key).unwrap();
            visit(m.body, version, version >= m.flexible_from);
        }
    }

    #[test]
    fn huge_array_lengths_are_refused_before_decoding() {
        // Metadata v0: topics is the first field, an INT32 array of strings (>= 2 bytes).
        let mut body = BytesMut::new();
        body.put_i32(i32::MAX);
        body.put_slice(&[0, 1, b'a']);
        assert_eq!(
            check(ApiKey::Metadata, 0, &body),
            Err(GuardError::ImpossibleLength {
                structure: "MetadataRequest",
                field: "topics",
                length: i32::MAX as u64,
                min_element_size: 2,
                at: 4,
                remaining: 3,
            })
        );
        // Metadata v12: compact array, varint 0xffffffff; element = uuid + string + tags.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert!(matches!(
            check(ApiKey::Metadata, 12, &body),
            Err(GuardError::ImpossibleLength {
                length: 0xffff_fffe,
                min_element_size: 18,
                ..
            })
        ));
        // An array exactly as long as the bytes allow passes the guard.
        let mut body = BytesMut::new();
        body.put_i32(1);
        body.put_i16(0);
        assert_eq!(check(ApiKey::Metadata, 0, &body), Ok(()));
    }

    #[test]
    fn elements_are_counted_at_every_depth() {
        // Fetch v4: two topics, of one and two partitions.
        let mut body = BytesMut::new();
        body.put_i32(-1);
        body.put_i32(500);
        body.put_i32(1);
        body.put_i32(1 << 20);
        body.put_i8(0);
        body.put_i32(2);
        for partitions in [1, 2] {
            body.put_i16(1);
            body.put_u8(b't');
            body.put_i32(partitions);
            body.put_bytes(0, 16 * partitions as usize);
        }
        let e = count(ApiKey::Fetch, 4, &body).unwrap();
        assert_eq!(
            e,
            Elements {
                structs: 5,
                ..Elements::default()
            }
        );
    }

    #[test]
    fn nested_arrays_are_checked_too() {
        // Fetch v4, one topic whose partitions array claims a billion entries.
        let mut body = BytesMut::new();
        body.put_i32(-1); // replica_id
        body.put_i32(500); // max_wait_ms
        body.put_i32(1); // min_bytes
        body.put_i32(1 << 20); // max_bytes
        body.put_i8(0); // isolation_level
        body.put_i32(1); // topics: one
        body.put_i16(1);
        body.put_u8(b't');
        body.put_i32(1_000_000_000); // partitions
        body.put_bytes(0, 28);
        assert!(matches!(
            check(ApiKey::Fetch, 4, &body),
            Err(GuardError::ImpossibleLength {
                structure: "FetchTopic",
                field: "partitions",
                ..
            })
        ));
    }

    #[test]
    fn negative_lengths_and_truncation_are_malformed() {
        let mut body = BytesMut::new();
        body.put_i32(-2);
        assert!(matches!(
            check(ApiKey::Metadata, 0, &body),
            Err(GuardError::Malformed { .. })
        ));
        assert!(matches!(
            check(ApiKey::Metadata, 0, &[0, 0]),
            Err(GuardError::Malformed { .. })
        ));
    }

    #[test]
    fn tagged_fields_are_walked_like_the_decoder_reads_them() {
        use kafka_protocol::messages::fetch_request::{FetchRequest, ReplicaState};
        use kafka_protocol::protocol::{Encodable, StrBytes};
        // Fetch v15+ carries cluster_id (tag 0) and replica_state (tag 1).
        let request = FetchRequest::default()
            .with_cluster_id(Some(StrBytes::from_static_str("cluster")))
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(3.into())
                    .with_replica_epoch(9),
            );
        for version in [15, 16] {
            let mut body = BytesMut::new();
            request.encode(&mut body, version).unwrap();
            assert_eq!(check(ApiKey::Fetch, version, &body), Ok(()), "v{version}");
        }
        // Tag 1 does not exist before v15: the decoder refuses it, so does the guard.
        let mut body = BytesMut::new();
        FetchRequest::default().encode(&mut body, 12).unwrap();
        let end = body.len() - 1;
        body.truncate(end);
        body.put_slice(&[1, 1, 12]); // one tagged field: tag 1, size 12
        body.put_bytes(0, 12);
        assert!(matches!(
            check(ApiKey::Fetch, 12, &body),
            Err(GuardError::Malformed {
                field: "replica_state",
                ..
            })
        ));
        // Unknown tags are skipped by size.
        let mut body = BytesMut::new();
        FetchRequest::default().encode(&mut body, 12).unwrap();
        body.truncate(end);
        body.put_slice(&[1, 7, 2, 0xaa, 0xbb]);
        assert_eq!(check(ApiKey::Fetch, 12, &body), Ok(()));
        let decoded = RequestKind::decode(ApiKey::Fetch, &mut Bytes::from(body.clone()), 12);
        assert!(decoded.is_ok());
    }
}
