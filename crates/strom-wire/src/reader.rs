//! A bounds-checked cursor over request bytes, for the few places that read the wire by
//! hand (the request header, the array-length guard, Produce v0-v2).
//!
//! Every read checks the length first and reports where it ran out; nothing here can
//! panic on any input.

/// The input ended before a read could complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// Offset where the read started.
    pub(crate) at: usize,
    pub(crate) needed: usize,
    pub(crate) available: usize,
}

/// A position in a byte slice. Integers are big-endian, as everywhere in Kafka.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if self.remaining() < n {
            return Err(Short {
                at: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Short> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Short> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// An UNSIGNED_VARINT: 7 bits per byte, least significant group first, high bit set on
    /// every byte but the last.
    ///
    /// This reproduces kafka-protocol's decoder exactly, including its leniency: it stops
    /// after 5 bytes even if the fifth still has the high bit set, and bits beyond 32 are
    /// dropped. The array-length guard must consume the same bytes the real decoder will,
    /// or it would check the wrong fields.
    pub(crate) fn uvarint(&mut self) -> Result<u32, Short> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = u32::from(self.array::<1>()?[0]);
            value |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_shortfalls() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 9]);
        assert_eq!(r.i16(), Ok(1));
        assert_eq!(r.i32(), Ok(2));
        let short = Short {
            at: 6,
            needed: 2,
            available: 1,
        };
        assert_eq!(r.i16(), Err(short));
        assert_eq!(r.take(1), Ok(&[9u8][..]));
        assert_eq!(r.remaining(), 0);
        let short = Short {
            at: 7,
            needed: 4,
            available: 0,
        };
        assert_eq!(r.i32(), Err(short));
    }

    #[test]
    fn uvarint_is_as_lenient_as_kafka_protocol() {
        // (input, value, bytes consumed). The last two cases are the lenient ones that
        // kafka-protocol's decoder (types.rs, `UnsignedVarInt`) accepts: stop after five
        // bytes whatever the fifth says, and drop bits past 32.
        let cases: &[(&[u8], u32, usize)] = &[
            (&[0x00], 0, 1),
            (&[0x7f, 0xaa], 127, 1),
            (&[0x80, 0x01], 128, 2),
            (&[0xff, 0xff, 0xff, 0xff, 0x0f], u32::MAX, 5),
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], u32::MAX, 5),
            (&[0x80, 0x80, 0x80, 0x80, 0x7f], 0xf000_0000, 5),
        ];
        for &(input, value, consumed) in cases {
            let mut r = Reader::new(input);
            assert_eq!(r.uvarint(), Ok(value), "{input:?}");
            assert_eq!(r.position(), consumed, "{input:?}");
        }
        assert!(Reader::new(&[0x80]).uvarint().is_err());
        assert!(Reader::new(&[]).uvarint().is_err());
    }
}
