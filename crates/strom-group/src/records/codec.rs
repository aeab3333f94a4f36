//! The primitive types of Kafka's record schemas (big-endian integers, length-prefixed
//! strings and bytes, and the "compact" varint forms of flexible versions), read from a
//! byte slice (the writer is strom-bytes' [`Writer`]).
//!
//! Layouts, as in Kafka's protocol guide:
//! - `int16`/`int32`/`int64`: big-endian two's complement.
//! - `string`: `int16` byte length `N`, then `N` bytes of UTF-8. Nullable: `N = -1` is null.
//! - `bytes`: `int32` byte length `N`, then `N` bytes.
//! - `array`: `int32` element count, then the elements.
//! - compact forms (flexible versions): an unsigned varint holding `N + 1` (`0` is null)
//!   instead of the fixed-width length, and each struct ends with tagged fields: an
//!   unsigned varint count, then per field a varint tag, a varint size and `size` bytes.

use bytes::Bytes;
use strom_bytes::ReadError;
pub(crate) use strom_bytes::{MAX_STRING_LEN, Writer, truncate_str};

use crate::error::GroupError;

/// A cursor over one record's key or value: strom-bytes's bounds-checked reader, with
/// the record's name for errors and Kafka's non-nullable fields. A truncated or lying
/// record becomes an error, never a panic or a huge allocation.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    inner: strom_bytes::Reader<'a>,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the record being read, for error messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            inner: strom_bytes::Reader::new(buf),
            what,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.inner.remaining()
    }

    fn corrupt(&self, reason: impl Into<String>) -> GroupError {
        GroupError::Corrupt {
            record: self.what,
            position: self.inner.position(),
            reason: reason.into(),
        }
    }

    /// A failed read of the shared reader, as this crate's error.
    fn failed(&self, e: ReadError) -> GroupError {
        GroupError::Corrupt {
            record: self.what,
            position: e.at(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn i16(&mut self) -> Result<i16, GroupError> {
        self.inner.i16().map_err(|e| self.failed(e))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, GroupError> {
        self.inner.i32().map_err(|e| self.failed(e))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, GroupError> {
        self.inner.i64().map_err(|e| self.failed(e))
    }

    /// An unsigned varint of at most 5 bytes and 32 bits.
    #[cfg(test)]
    pub(crate) fn uvarint(&mut self) -> Result<u32, GroupError> {
        self.inner.uvarint().map_err(|e| self.failed(e))
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, GroupError> {
        let s = self.inner.nullable_string().map_err(|e| self.failed(e))?;
        Ok(s.map(str::to_owned))
    }

    pub(crate) fn string(&mut self) -> Result<String, GroupError> {
        self.nullable_string()?
            .ok_or_else(|| self.corrupt("null in a non-nullable string"))
    }

    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<Bytes>, GroupError> {
        let b = self.inner.nullable_bytes().map_err(|e| self.failed(e))?;
        Ok(b.map(Bytes::copy_from_slice))
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes, GroupError> {
        self.nullable_bytes()?
            .ok_or_else(|| self.corrupt("null in a non-nullable bytes field"))
    }

    /// An `int32` element count, checked against the bytes left so that a corrupt count
    /// cannot make the caller reserve gigabytes: every element takes at least
    /// `min_element_size` bytes.
    pub(crate) fn array_len(&mut self, min_element_size: usize) -> Result<usize, GroupError> {
        self.inner
            .array_len(min_element_size)
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| self.corrupt("null in a non-nullable array"))
    }

    pub(crate) fn compact_nullable_string(&mut self) -> Result<Option<String>, GroupError> {
        let s = self
            .inner
            .compact_nullable_string()
            .map_err(|e| self.failed(e))?;
        Ok(s.map(str::to_owned))
    }

    pub(crate) fn compact_string(&mut self) -> Result<String, GroupError> {
        self.compact_nullable_string()?
            .ok_or_else(|| self.corrupt("null in a non-nullable compact string"))
    }

    pub(crate) fn compact_bytes(&mut self) -> Result<Bytes, GroupError> {
        let b = self
            .inner
            .compact_nullable_bytes()
            .map_err(|e| self.failed(e))?;
        b.map(Bytes::copy_from_slice)
            .ok_or_else(|| self.corrupt("null in a non-nullable compact bytes field"))
    }

    /// A compact element count, checked like [`Reader::array_len`].
    pub(crate) fn compact_array_len(
        &mut self,
        min_element_size: usize,
    ) -> Result<usize, GroupError> {
        self.inner
            .compact_array_len(min_element_size)
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| self.corrupt("null in a non-nullable compact array"))
    }

    /// Skips a struct's tagged fields. Strom writes none; unknown ones written by a newer
    /// Kafka are ignorable by definition.
    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), GroupError> {
        self.inner.skip_tagged_fields().map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.i16(-2);
        w.i32(70_000);
        w.i64(-1 << 40);
        w.string("grüße");
        w.nullable_string(None);
        w.bytes(b"\x00\x01");
        w.array_len(0);
        w.uvarint(300);
        w.compact_string("x");
        w.compact_nullable_string(None);
        w.compact_bytes(b"ab");
        w.compact_array_len(0);
        w.no_tagged_fields();
        let buf = w.finish();

        let mut r = Reader::new(&buf, "test");
        assert_eq!(r.i16().unwrap(), -2);
        assert_eq!(r.i32().unwrap(), 70_000);
        assert_eq!(r.i64().unwrap(), -1 << 40);
        assert_eq!(r.string().unwrap(), "grüße");
        assert_eq!(r.nullable_string().unwrap(), None);
        assert_eq!(&r.bytes().unwrap()[..], b"\x00\x01");
        assert_eq!(r.array_len(1).unwrap(), 0);
        assert_eq!(r.uvarint().unwrap(), 300);
        assert_eq!(r.compact_string().unwrap(), "x");
        assert_eq!(r.compact_nullable_string().unwrap(), None);
        assert_eq!(&r.compact_bytes().unwrap()[..], b"ab");
        assert_eq!(r.compact_array_len(1).unwrap(), 0);
        r.skip_tagged_fields().unwrap();
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn varint_layout_matches_leb128() {
        let mut w = Writer::new();
        w.uvarint(0);
        w.uvarint(127);
        w.uvarint(128);
        w.uvarint(u32::MAX);
        assert_eq!(
            &w.finish()[..],
            &[0x00, 0x7f, 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut w = Writer::new();
        w.string("hello");
        let buf = w.finish();
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut], "test");
            assert!(r.string().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn lying_array_count_is_refused_before_allocating() {
        let buf = i32::MAX.to_be_bytes();
        let mut r = Reader::new(&buf, "test");
        assert!(matches!(
            r.array_len(4),
            Err(GroupError::Corrupt { record: "test", .. })
        ));
    }

    #[test]
    fn overlong_varint_is_refused() {
        let buf = [0xff; 6];
        assert!(Reader::new(&buf, "test").uvarint().is_err());
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        // Two tagged fields: tag 0 with 3 bytes, tag 7 with 1 byte, then an int16.
        let buf = [2, 0, 3, 9, 9, 9, 7, 1, 5, 0, 42];
        let mut r = Reader::new(&buf, "test");
        r.skip_tagged_fields().unwrap();
        assert_eq!(r.i16().unwrap(), 42);
    }

    #[test]
    fn overlong_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_STRING_LEN); // 2 bytes each
        let mut w = Writer::new();
        w.string(&long);
        let buf = w.finish();
        let s = Reader::new(&buf, "test").string().unwrap();
        assert_eq!(s.len(), MAX_STRING_LEN - 1);
        assert!(s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let buf = [0, 2, 0xc3, 0x28];
        assert!(Reader::new(&buf, "test").string().is_err());
    }
}
