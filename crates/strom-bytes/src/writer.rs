//! Writing Kafka's schema primitives: what [`crate::Reader`] reads back.

use bytes::{BufMut, Bytes, BytesMut};

use crate::put_uvarint;

/// The longest a `string` field can be (its length is an INT16).
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// Appends schema primitives to a buffer. Writing never fails: lengths beyond what a
/// field can describe are cut (strings at a character boundary), which the coordinator
/// prevents by validating requests first, so a record always stays decodable.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn uvarint(&mut self, v: u32) {
        put_uvarint(&mut self.buf, v);
    }

    pub fn string(&mut self, s: &str) {
        let s = truncate_str(s, MAX_STRING_LEN);
        self.i16(s.len() as i16);
        self.buf.put_slice(s.as_bytes());
    }

    pub fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }

    pub fn bytes(&mut self, b: &[u8]) {
        let b = &b[..b.len().min(i32::MAX as usize)];
        self.i32(b.len() as i32);
        self.buf.put_slice(b);
    }

    pub fn array_len(&mut self, n: usize) {
        self.i32(n.min(i32::MAX as usize) as i32);
    }

    pub fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.compact_string(s),
            None => self.uvarint(0),
        }
    }

    pub fn compact_string(&mut self, s: &str) {
        let s = truncate_str(s, u32::MAX as usize - 1);
        self.uvarint(s.len() as u32 + 1);
        self.buf.put_slice(s.as_bytes());
    }

    pub fn compact_bytes(&mut self, b: &[u8]) {
        let b = &b[..b.len().min(u32::MAX as usize - 1)];
        self.uvarint(b.len() as u32 + 1);
        self.buf.put_slice(b);
    }

    pub fn compact_array_len(&mut self, n: usize) {
        self.uvarint(n.min(u32::MAX as usize - 1) as u32 + 1);
    }

    /// An empty tagged-field section.
    pub fn no_tagged_fields(&mut self) {
        self.uvarint(0);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reader;

    #[test]
    fn primitives_are_written_in_kafkas_layout() {
        let mut w = Writer::new();
        w.i8(-1);
        w.i16(-2);
        w.i32(70_000);
        w.i64(-1 << 40);
        w.string("grüße");
        w.nullable_string(None);
        w.bytes(b"\x00\x01");
        w.array_len(3);
        w.compact_string("x");
        w.compact_nullable_string(None);
        w.compact_bytes(b"ab");
        w.compact_array_len(0);
        w.no_tagged_fields();
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        assert_eq!(r.i8(), Ok(-1));
        assert_eq!(r.i16(), Ok(-2));
        assert_eq!(r.i32(), Ok(70_000));
        assert_eq!(r.i64(), Ok(-1 << 40));
        assert_eq!(r.nullable_string(), Ok(Some("grüße")));
        assert_eq!(r.nullable_string(), Ok(None));
        assert_eq!(r.nullable_bytes(), Ok(Some(&b"\x00\x01"[..])));
        assert_eq!(r.i32(), Ok(3));
        assert_eq!(r.compact_nullable_string(), Ok(Some("x")));
        assert_eq!(r.compact_nullable_string(), Ok(None));
        assert_eq!(r.compact_nullable_bytes(), Ok(Some(&b"ab"[..])));
        assert_eq!(r.uvarint(), Ok(1));
        assert_eq!(r.uvarint(), Ok(0));
        assert!(r.is_empty());
    }

    #[test]
    fn overlong_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_STRING_LEN);
        let mut w = Writer::new();
        w.string(&long);
        let buf = w.finish();
        let mut r = Reader::new(&buf);
        let s = r.nullable_string().unwrap().unwrap();
        assert!(s.len() <= MAX_STRING_LEN && s.chars().all(|c| c == 'é'));
        assert_eq!(truncate_str("abc", 2), "ab");
        assert_eq!(truncate_str("aé", 2), "a");
    }
}
