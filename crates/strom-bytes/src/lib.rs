//! Kafka's byte encodings, read through one bounds-checked [`Reader`] and written by the
//! varint writers ([`put_uvarint`], [`put_varint`], [`put_varlong`]).
//!
//! Every codec of Strom that reads bytes by hand reads them here: the record checks and
//! record views of `strom-batch`, the request header and guard of `strom-wire`, the
//! `__consumer_offsets` records and the consumer protocol of `strom-group`. A leaf crate
//! (no I/O, no framing), so the pure crates may all depend on it.
//!
//! Encodings, as in Kafka's protocol guide and record format:
//!
//! ```text
//! int8/16/32/64       big-endian two's complement
//! unsigned_varint     7 bits a byte, least significant group first, high bit set on
//!                     every byte but the last; at most 5 bytes for 32 bits
//! varint / varlong    zigzag ((n << 1) ^ (n >> 31|63)) then as above; at most 5 / 10 bytes
//! string              int16 length N, N bytes of UTF-8; nullable: N < 0 is null
//! bytes               int32 length N, N bytes; nullable: N < 0 is null
//! compact_string/bytes unsigned_varint N + 1, N bytes; 0 is null
//! array               int32 count N (N < 0 is null), then N elements
//! compact_array       unsigned_varint N + 1 (0 is null), then N elements
//! tagged fields       unsigned_varint count, then per field: unsigned_varint tag,
//!                     unsigned_varint size, size bytes
//! record bytes        varint length N, N bytes; N < 0 is null (record keys, values,
//!                     header values)
//! ```
//!
//! Every read checks the bytes left before it looks at them and returns a [`ReadError`]
//! instead of panicking; no read allocates, and lengths and counts from the input are
//! checked against the bytes left before a caller could reserve memory for them. A failed
//! read leaves the position where it was.

use bytes::BufMut;
use thiserror::Error;

mod writer;
pub use writer::{MAX_STRING_LEN, Writer, truncate_str};

/// Why a read failed. Each variant says where, as the offset from the start of the
/// reader's slice of the field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReadError {
    /// The input ended before the read could complete.
    #[error("needs {needed} bytes at byte {at}, {available} remain")]
    Truncated {
        at: usize,
        needed: usize,
        available: usize,
    },
    /// The continuation bit is set on the last byte the type allows (5 for 32 bits, 10
    /// for 64).
    #[error("varint at byte {at} is longer than {max_bytes} bytes")]
    VarintTooLong { at: usize, max_bytes: usize },
    /// The last byte carries bits beyond the type's width.
    #[error("varint at byte {at} exceeds {bits} bits")]
    VarintOverflow { at: usize, bits: u32 },
    /// An element count that the bytes left cannot hold, even at each element's
    /// smallest size.
    #[error("array of {count} elements at byte {at} cannot fit in the {remaining} bytes left")]
    ImpossibleCount {
        at: usize,
        count: usize,
        remaining: usize,
    },
    /// A string's bytes are not UTF-8.
    #[error("string at byte {at} is not UTF-8")]
    NotUtf8 { at: usize },
}

impl ReadError {
    /// Where the failed read started (the offset in the reader's slice).
    pub fn at(&self) -> usize {
        match *self {
            ReadError::Truncated { at, .. }
            | ReadError::VarintTooLong { at, .. }
            | ReadError::VarintOverflow { at, .. }
            | ReadError::ImpossibleCount { at, .. }
            | ReadError::NotUtf8 { at } => at,
        }
    }
}

/// A position in a byte slice. Every read is bounds-checked; on an error the position is
/// unchanged.
///
/// The reads that record walks make per field are `#[inline(always)]`: the record check
/// runs on every produced record, and where a read stayed a call, the position went
/// through memory on every field and the check took half again as long (see
/// `cargo bench -p strom-batch`).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    #[inline(always)]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte was read.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The bytes not read yet, without consuming them.
    #[inline(always)]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    #[inline]
    fn truncated(&self, at: usize, needed: usize) -> ReadError {
        ReadError::Truncated {
            at,
            needed,
            available: self.buf.len() - at,
        }
    }

    /// Takes the next `n` bytes.
    #[inline(always)]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(self.truncated(self.pos, n));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips the next `n` bytes.
    #[inline(always)]
    pub fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        self.take(n).map(drop)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        match self.buf.get(self.pos..self.pos + N) {
            Some(b) => {
                self.pos += N;
                let mut out = [0u8; N];
                out.copy_from_slice(b);
                Ok(out)
            }
            None => Err(self.truncated(self.pos, N)),
        }
    }

    #[inline(always)]
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(self.pos, 1)),
        }
    }

    #[inline(always)]
    pub fn i8(&mut self) -> Result<i8, ReadError> {
        self.u8().map(|b| b as i8)
    }

    #[inline(always)]
    pub fn i16(&mut self) -> Result<i16, ReadError> {
        self.array().map(i16::from_be_bytes)
    }

    #[inline(always)]
    pub fn i32(&mut self) -> Result<i32, ReadError> {
        self.array().map(i32::from_be_bytes)
    }

    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, ReadError> {
        self.array().map(i64::from_be_bytes)
    }

    /// An `unsigned_varint` of at most 5 bytes whose value fits 32 bits; longer or wider
    /// encodings are refused.
    #[inline(always)]
    pub fn uvarint(&mut self) -> Result<u32, ReadError> {
        // One or two bytes are by far the most common cases (lengths and deltas below
        // 2^14), and worth a path without the loop.
        if let Some(&b0) = self.buf.get(self.pos) {
            if b0 < 0x80 {
                self.pos += 1;
                return Ok(u32::from(b0));
            }
            if let Some(&b1) = self.buf.get(self.pos + 1)
                && b1 < 0x80
            {
                self.pos += 2;
                return Ok(u32::from(b0 & 0x7f) | (u32::from(b1) << 7));
            }
        }
        self.uvarint_long()
    }

    #[inline]
    fn uvarint_long(&mut self) -> Result<u32, ReadError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let Some(&b) = self.buf.get(at + i) else {
                return Err(self.truncated(at + i, 1));
            };
            if i == 4 {
                if b & 0x80 != 0 {
                    return Err(ReadError::VarintTooLong { at, max_bytes: 5 });
                }
                if b > 0x0f {
                    return Err(ReadError::VarintOverflow { at, bits: 32 });
                }
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos = at + i + 1;
                return Ok(value);
            }
        }
        unreachable!("the fifth byte returns or fails")
    }

    /// An `unsigned_varint` read the way kafka-protocol's decoder reads it: at most 5
    /// bytes even if the fifth still has its continuation bit set, and bits beyond 32
    /// dropped. Only for code that must consume exactly the bytes that decoder will (the
    /// request guard of `strom-wire`); everything else uses [`Reader::uvarint`].
    pub fn uvarint_lenient(&mut self) -> Result<u32, ReadError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let Some(&b) = self.buf.get(at + i) else {
                return Err(self.truncated(at + i, 1));
            };
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 || i == 4 {
                self.pos = at + i + 1;
                break;
            }
        }
        Ok(value)
    }

    /// A zigzag `varint` of at most 5 bytes whose value fits 32 bits.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<i32, ReadError> {
        let z = self.uvarint()?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    /// A zigzag `varlong` of at most 10 bytes whose value fits 64 bits.
    #[inline(always)]
    pub fn varlong(&mut self) -> Result<i64, ReadError> {
        let z = match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                u64::from(b)
            }
            _ => self.uvarlong_long()?,
        };
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    #[inline]
    fn uvarlong_long(&mut self) -> Result<u64, ReadError> {
        let at = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(at + i) else {
                return Err(self.truncated(at + i, 1));
            };
            if i == 9 {
                if b & 0x80 != 0 {
                    return Err(ReadError::VarintTooLong { at, max_bytes: 10 });
                }
                if b > 0x01 {
                    return Err(ReadError::VarintOverflow { at, bits: 64 });
                }
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos = at + i + 1;
                return Ok(value);
            }
        }
        unreachable!("the tenth byte returns or fails")
    }

    /// `n` bytes of UTF-8, the position restored to `at` on failure.
    fn utf8(&mut self, at: usize, n: usize) -> Result<&'a str, ReadError> {
        let raw = self.take(n).inspect_err(|_| self.pos = at)?;
        std::str::from_utf8(raw).map_err(|_| {
            self.pos = at;
            ReadError::NotUtf8 { at }
        })
    }

    /// `n` bytes, the position restored to `at` on failure.
    #[inline(always)]
    fn bytes_at(&mut self, at: usize, n: usize) -> Result<&'a [u8], ReadError> {
        self.take(n).inspect_err(|_| self.pos = at)
    }

    /// A `string`, or null (`None`) when its length is negative. Non-nullable fields turn
    /// `None` into the caller's error.
    pub fn nullable_string(&mut self) -> Result<Option<&'a str>, ReadError> {
        let at = self.pos;
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        self.utf8(at, n as usize).map(Some)
    }

    /// A `bytes` field, or null (`None`) when its length is negative.
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let at = self.pos;
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        self.bytes_at(at, n as usize).map(Some)
    }

    /// A `compact_string`, or null (`None`) when its length field is 0.
    pub fn compact_nullable_string(&mut self) -> Result<Option<&'a str>, ReadError> {
        let at = self.pos;
        match self.uvarint()? {
            0 => Ok(None),
            n => self.utf8(at, (n - 1) as usize).map(Some),
        }
    }

    /// A `compact_bytes` field, or null (`None`) when its length field is 0.
    pub fn compact_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let at = self.pos;
        match self.uvarint()? {
            0 => Ok(None),
            n => self.bytes_at(at, (n - 1) as usize).map(Some),
        }
    }

    /// A record's key, value or header value: a zigzag `varint` length, then that many
    /// bytes; null (`None`) when the length is negative, as Kafka's record reader has it.
    /// Callers stricter than that (the produce checks) read the length themselves.
    #[inline(always)]
    pub fn varint_bytes(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let at = self.pos;
        let n = self.varint()?;
        if n < 0 {
            return Ok(None);
        }
        self.bytes_at(at, n as usize).map(Some)
    }

    /// An `array`'s element count, or null (`None`) when negative. A count that the
    /// bytes left cannot hold, with every element taking at least `min_element_size`
    /// bytes, is refused, so a lying count cannot make the caller reserve gigabytes.
    pub fn array_len(&mut self, min_element_size: usize) -> Result<Option<usize>, ReadError> {
        let at = self.pos;
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        self.check_count(at, n as usize, min_element_size).map(Some)
    }

    /// A `compact_array`'s element count, or null (`None`) when its field is 0; checked
    /// like [`Reader::array_len`].
    pub fn compact_array_len(
        &mut self,
        min_element_size: usize,
    ) -> Result<Option<usize>, ReadError> {
        let at = self.pos;
        match self.uvarint()? {
            0 => Ok(None),
            n => self
                .check_count(at, (n - 1) as usize, min_element_size)
                .map(Some),
        }
    }

    fn check_count(
        &mut self,
        at: usize,
        count: usize,
        min_element_size: usize,
    ) -> Result<usize, ReadError> {
        let remaining = self.remaining();
        if count.saturating_mul(min_element_size.max(1)) > remaining {
            self.pos = at;
            return Err(ReadError::ImpossibleCount {
                at,
                count,
                remaining,
            });
        }
        Ok(count)
    }

    /// Skips a flexible struct's tagged fields (the section is read whole or not at all).
    pub fn skip_tagged_fields(&mut self) -> Result<(), ReadError> {
        let at = self.pos;
        let mut skip = || {
            let count = self.uvarint()?;
            for _ in 0..count {
                let _tag = self.uvarint()?;
                let size = self.uvarint()?;
                self.skip(size as usize)?;
            }
            Ok(())
        };
        let result = skip();
        result.inspect_err(|_| self.pos = at)
    }
}

/// Appends `v` as an `unsigned_varint`.
#[inline]
pub fn put_uvarint(out: &mut impl BufMut, v: u32) {
    put_uvarlong(out, u64::from(v));
}

/// Appends `v` in the `unsigned_varint` encoding, up to 10 bytes for 64 bits.
#[inline]
pub fn put_uvarlong(out: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Appends `v` as a zigzag `varint`.
#[inline]
pub fn put_varint(out: &mut impl BufMut, v: i32) {
    put_uvarint(out, ((v << 1) ^ (v >> 31)) as u32);
}

/// Appends `v` as a zigzag `varlong` (for values that fit 32 bits, the same bytes as
/// [`put_varint`]).
#[inline]
pub fn put_varlong(out: &mut impl BufMut, v: i64) {
    put_uvarlong(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Bytes [`put_varlong`] (and, for values that fit 32 bits, [`put_varint`]) writes for `v`.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - z.max(1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests;
