//! The few places that read the wire by hand (the request header, the array-length
//! guard, Produce v0-v2) read it through strom-bytes's bounds-checked [`Reader`]; this
//! module holds what is particular to strom-wire: a failed read is a [`Short`], and
//! unsigned varints are read with [`Reader::uvarint_lenient`], exactly as kafka-protocol's
//! decoder reads them, because the guard must consume the bytes that decoder will.

use strom_bytes::ReadError;
pub(crate) use strom_bytes::Reader;

/// The input ended before a read could complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    /// Offset where the read started.
    pub(crate) at: usize,
    pub(crate) needed: usize,
    pub(crate) available: usize,
}

impl From<ReadError> for Short {
    /// The reads strom-wire makes (fixed-width integers, byte runs, lenient unsigned
    /// varints) fail only by running out of input; anything else is reported as one
    /// more byte needed where the read started.
    fn from(e: ReadError) -> Short {
        match e {
            ReadError::Truncated {
                at,
                needed,
                available,
            } => Short {
                at,
                needed,
                available,
            },
            other => Short {
                at: other.at(),
                needed: 1,
                available: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortfalls_say_where_and_how_much() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 9]);
        assert_eq!(r.i16(), Ok(1));
        assert_eq!(r.i32(), Ok(2));
        let short = Short {
            at: 6,
            needed: 2,
            available: 1,
        };
        assert_eq!(r.i16().map_err(Short::from), Err(short));
        assert_eq!(r.take(1), Ok(&[9u8][..]));
        let short = Short {
            at: 7,
            needed: 4,
            available: 0,
        };
        assert_eq!(r.i32().map_err(Short::from), Err(short));
    }

    #[test]
    fn unsigned_varints_are_as_lenient_as_kafka_protocol() {
        // kafka-protocol's `UnsignedVarInt` decoder stops after five bytes whatever the
        // fifth says; the guard must stop there too.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(r.uvarint_lenient(), Ok(u32::MAX));
        assert_eq!(r.position(), 5);
    }
}
