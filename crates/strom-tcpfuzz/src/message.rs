//! One request as bytes plus a map of where its fields lie, recorded while kafka-protocol
//! encodes it. The map is what makes the mutators structure-aware without a hand-written
//! schema per API: every fixed-width integer and every byte string the encoder wrote is
//! listed with its position, so a mutator can replace a partition count or a length with a
//! boundary value, or lengthen a string and fix its length prefix.

use bytes::BufMut;
use bytes::buf::UninitSlice;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};

/// How a byte string's length is written in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// int16 length (classic strings).
    I16,
    /// int32 length (classic bytes, records).
    I32,
    /// unsigned varint of length + 1 (flexible versions), `n` bytes long.
    Compact(u8),
    /// No length in front (a UUID, or a prefix we could not recognise).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A big-endian integer of this many bytes (1, 2, 4 or 8).
    Int(u8),
    /// A byte string and its length prefix.
    Bytes(Prefix),
}

/// One field the encoder wrote: `len` bytes at `pos` of [`Message::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub pos: usize,
    pub len: usize,
    pub kind: FieldKind,
}

/// A request frame body (request header + message body, without the 4-byte length prefix)
/// and the fields recorded in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub api_key: i16,
    pub version: i16,
    pub bytes: Vec<u8>,
    pub fields: Vec<Field>,
    /// Where the message body starts: fields before it belong to the request header.
    pub body_start: usize,
}

/// The client id every request of the fuzzer carries.
pub const CLIENT_ID: &str = "strom-tcpfuzz";

/// Encodes `req` at `version` behind a request header, recording its fields.
pub fn encode<R: Request>(req: &R, version: i16, correlation_id: i32) -> anyhow::Result<Message> {
    let key =
        ApiKey::try_from(R::KEY).map_err(|_| anyhow::anyhow!("unknown api key {}", R::KEY))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut rec = Recorder::default();
    header.encode(&mut rec, key.request_header_version(version))?;
    let body_start = rec.buf.len();
    req.encode(&mut rec, version)?;
    Ok(Message {
        api_key: R::KEY,
        version,
        bytes: rec.buf,
        fields: rec.fields,
        body_start,
    })
}

impl Message {
    /// Replaces `bytes[at..at + old_len]` with `new`, moving the fields behind it and
    /// forgetting the ones the change cut into.
    pub fn splice(&mut self, at: usize, old_len: usize, new: &[u8]) {
        let end = at + old_len;
        self.bytes.splice(at..end, new.iter().copied());
        let delta = new.len() as isize - old_len as isize;
        self.fields.retain(|f| f.pos + f.len <= at || f.pos >= end);
        for f in &mut self.fields {
            if f.pos >= end {
                f.pos = (f.pos as isize + delta) as usize;
            }
        }
        if self.body_start >= end {
            self.body_start = (self.body_start as isize + delta) as usize;
        }
    }

    /// The api's name, for files and reports.
    pub fn api_name(&self) -> String {
        api_name(self.api_key)
    }
}

pub fn api_name(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| format!("Api{api_key}"), |k| format!("{k:?}"))
}

/// A `ByteBufMut` that remembers what was written where. kafka-protocol writes every
/// fixed-width integer with one `put_iN` call and every string's bytes with one
/// `put_slice`, so overriding those methods sees each field exactly once.
#[derive(Debug, Default)]
struct Recorder {
    buf: Vec<u8>,
    fields: Vec<Field>,
}

impl Recorder {
    fn int(&mut self, be: &[u8]) {
        self.fields.push(Field {
            pos: self.buf.len(),
            len: be.len(),
            kind: FieldKind::Int(be.len() as u8),
        });
        self.buf.extend_from_slice(be);
    }

    /// What stands in front of a byte string of `len` bytes about to be written.
    fn prefix_of(&self, len: usize) -> Prefix {
        let pos = self.buf.len();
        if let Some(last) = self.fields.last()
            && last.pos + last.len == pos
            && last.kind == FieldKind::Int(last.len as u8)
        {
            let be = &self.buf[last.pos..pos];
            let value = match be.len() {
                2 => i16::from_be_bytes([be[0], be[1]]) as i64,
                4 => i32::from_be_bytes([be[0], be[1], be[2], be[3]]) as i64,
                _ => -2,
            };
            if value == len as i64 {
                return if be.len() == 2 {
                    Prefix::I16
                } else {
                    Prefix::I32
                };
            }
        }
        for n in 1..=5usize.min(pos) {
            if read_uvarint(&self.buf[pos - n..pos]) == Some((len as u64 + 1, n)) {
                return Prefix::Compact(n as u8);
            }
        }
        Prefix::None
    }
}

/// Decodes an unsigned varint at the start of `b`: (value, bytes used).
pub fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

// SAFETY: every method forwards to `Vec<u8>`'s own `BufMut` implementation.
#[allow(unsafe_code)] // audited: see the SAFETY notes below
unsafe impl BufMut for Recorder {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise about `cnt` is passed on unchanged.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let prefix = self.prefix_of(src.len());
        self.fields.push(Field {
            pos: self.buf.len(),
            len: src.len(),
            kind: FieldKind::Bytes(prefix),
        });
        self.buf.extend_from_slice(src);
    }

    // Single bytes are varint pieces and booleans: written, not recorded as fields.
    fn put_u8(&mut self, n: u8) {
        self.buf.push(n);
    }

    fn put_i8(&mut self, n: i8) {
        self.int(&n.to_be_bytes());
    }

    fn put_i16(&mut self, n: i16) {
        self.int(&n.to_be_bytes());
    }

    fn put_u16(&mut self, n: u16) {
        self.int(&n.to_be_bytes());
    }

    fn put_i32(&mut self, n: i32) {
        self.int(&n.to_be_bytes());
    }

    fn put_u32(&mut self, n: u32) {
        self.int(&n.to_be_bytes());
    }

    fn put_i64(&mut self, n: i64) {
        self.int(&n.to_be_bytes());
    }

    fn put_f64(&mut self, n: f64) {
        self.int(&n.to_be_bytes());
    }
}

impl ByteBufMut for Recorder {
    fn offset(&self) -> usize {
        self.buf.len()
    }

    fn seek(&mut self, offset: usize) {
        self.buf.resize(offset, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        &mut self.buf[r]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};

    fn create_topics() -> CreateTopicsRequest {
        CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_num_partitions(3)
                .with_replication_factor(1),
        ])
    }

    #[test]
    fn recorded_bytes_equal_plain_encoding_and_fields_point_at_values() {
        for version in [2i16, 5, 7] {
            let msg = encode(&create_topics(), version, 9).unwrap();
            let mut plain = BytesMut::new();
            create_topics().encode(&mut plain, version).unwrap();
            assert_eq!(&msg.bytes[msg.body_start..], &plain[..], "v{version}");
            // The partition count is a recorded 4-byte field holding 3.
            let count = msg.fields.iter().filter(|f| {
                f.pos >= msg.body_start
                    && f.kind == FieldKind::Int(4)
                    && msg.bytes[f.pos..f.pos + 4] == 3i32.to_be_bytes()
            });
            assert_eq!(count.count(), 1, "v{version}");
            // The topic name is a string whose prefix was recognised.
            let name = msg
                .fields
                .iter()
                .find(|f| &msg.bytes[f.pos..f.pos + f.len] == b"orders")
                .unwrap();
            let want = if version >= 5 {
                Prefix::Compact(1)
            } else {
                Prefix::I16
            };
            assert_eq!(name.kind, FieldKind::Bytes(want), "v{version}");
        }
    }

    #[test]
    fn splice_moves_later_fields_and_drops_cut_ones() {
        let mut msg = encode(&create_topics(), 2, 1).unwrap();
        let before = msg.fields.clone();
        let name = *before
            .iter()
            .find(|f| &msg.bytes[f.pos..f.pos + f.len] == b"orders")
            .unwrap();
        msg.splice(name.pos, name.len, b"orders-and-more");
        for f in &before {
            if f.pos >= name.pos + name.len {
                assert!(msg.fields.contains(&Field {
                    pos: f.pos + 9,
                    ..*f
                }));
            } else if f.pos + f.len <= name.pos {
                assert!(msg.fields.contains(f));
            }
        }
        assert!(!msg.fields.contains(&name));
    }
}
