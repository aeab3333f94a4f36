//! Length-prefixed framing of Kafka requests and responses, as a tokio-util codec.
//!
//! Every Kafka message on a connection, in both directions, is one frame:
//!
//! ```text
//! offset  size  field
//!      0     4  length   INT32, big-endian: bytes that follow, header and body
//!      4     n  message  request or response header, then body
//! ```

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::WireError;

/// Kafka's default `socket.request.max.bytes`: the largest request a broker accepts.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Bytes in the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// How far ahead the decoder reserves buffer space for a frame it has only started to
/// receive. Reserving a whole announced frame up front would let a client that sends
/// nothing but a 4-byte prefix claim up to `max_frame_size` of memory per connection;
/// beyond this much the buffer grows as bytes actually arrive.
const MAX_RESERVE_AHEAD: usize = 1024 * 1024;

/// Splits a byte stream into request frames and writes response frames.
///
/// Decoding yields each frame's message without its length prefix. A negative length or
/// one above `max_frame_size` is an error, after which the stream cannot be resynchronised:
/// the caller should log it and close the connection, as Kafka does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCodec {
    /// The largest request message (excluding the prefix) accepted. Applies to decoding
    /// only: responses, Fetch in particular, may legitimately be larger than any request.
    max_frame_size: usize,
}

impl FrameCodec {
    /// A codec refusing request frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        FrameCodec { max_frame_size }
    }

    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, WireError> {
        // An incomplete frame is the normal state between socket reads: not an error.
        let Some(prefix) = src.first_chunk::<LENGTH_PREFIX_LEN>() else {
            src.reserve(LENGTH_PREFIX_LEN - src.len());
            return Ok(None);
        };
        let length = i32::from_be_bytes(*prefix);
        if length < 0 {
            return Err(WireError::NegativeFrameLength { length });
        }
        let size = length as usize;
        if size > self.max_frame_size {
            return Err(WireError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        let total = LENGTH_PREFIX_LEN + size;
        if src.len() < total {
            src.reserve((total - src.len()).min(MAX_RESERVE_AHEAD));
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_LEN);
        Ok(Some(src.split_to(size)))
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for FrameCodec {
    type Error = WireError;

    /// Writes the length prefix and the message (header and body, as built by
    /// [`crate::encode_response`]).
    fn encode(&mut self, message: T, dst: &mut BytesMut) -> Result<(), WireError> {
        let message = message.as_ref();
        let length = i32::try_from(message.len()).map_err(|_| WireError::FrameTooLarge {
            size: message.len(),
            max: i32::MAX as usize,
        })?;
        dst.reserve(LENGTH_PREFIX_LEN + message.len());
        dst.put_i32(length);
        dst.put_slice(message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn framed(messages: &[&[u8]]) -> BytesMut {
        let mut codec = FrameCodec::default();
        let mut out = BytesMut::new();
        for m in messages {
            codec.encode(*m, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn encoder_writes_prefix_then_message() {
        let out = framed(&[b"abc", b""]);
        assert_eq!(&out[..], &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0]);
    }

    #[test]
    fn whole_frames_decode_in_order() {
        let mut codec = FrameCodec::default();
        let mut buf = framed(&[b"first", b"", b"third"]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"first"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b""[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"third"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn feeding_one_byte_at_a_time() {
        let messages: [&[u8]; 3] = [b"hello", b"", &[7; 300]];
        let wire = framed(&messages);
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &byte in wire.iter() {
            buf.put_u8(byte);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push(frame.freeze());
            }
        }
        let want: Vec<Bytes> = messages.iter().map(|m| Bytes::copy_from_slice(m)).collect();
        assert_eq!(got, want);
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_input_reserves_but_never_too_much() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        buf.put_i32(50 * 1024 * 1024);
        buf.put_u8(1);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 5, "nothing consumed");
        assert!(buf.capacity() >= 5 + 1024);
        assert!(
            buf.capacity() < 4 * MAX_RESERVE_AHEAD,
            "capacity {}",
            buf.capacity()
        );
    }

    #[test]
    fn oversized_frame_is_an_error() {
        let mut codec = FrameCodec::new(10);
        let mut ok = framed(&[&[0; 10]]);
        assert_eq!(codec.decode(&mut ok).unwrap().unwrap().len(), 10);
        let mut big = BytesMut::new();
        big.put_i32(11);
        assert!(matches!(
            codec.decode(&mut big),
            Err(WireError::FrameTooLarge { size: 11, max: 10 })
        ));
        let mut huge = BytesMut::new();
        huge.put_i32(i32::MAX);
        assert!(matches!(
            FrameCodec::default().decode(&mut huge),
            Err(WireError::FrameTooLarge { size, max: DEFAULT_MAX_FRAME_SIZE }) if size == i32::MAX as usize
        ));
    }

    #[test]
    fn negative_length_is_an_error() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        buf.put_i32(-1);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::NegativeFrameLength { length: -1 })
        ));
    }
}
