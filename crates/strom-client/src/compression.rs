//! The record-batch codecs: gzip, snappy, lz4 and zstd, as Kafka lays them out inside a
//! v2 batch (the bytes after the 61-byte header).
//!
//! - gzip: a gzip member (RFC 1952).
//! - snappy: raw snappy, as librdkafka writes it; reading also accepts the xerial framing
//!   that the Java client writes (`\x82SNAPPY\0`, two 4-byte versions, then blocks of
//!   a 4-byte big-endian length and a raw snappy block).
//! - lz4: the LZ4 frame format with independent blocks.
//! - zstd: a zstd frame.

use std::io::{Read, Write};
use std::str::FromStr;

use strom_batch::Compression;

use crate::error::ClientError;

/// The codecs a producer can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

impl FromStr for Codec {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            other => {
                return Err(ClientError::Invalid(format!(
                    "unknown compression {other:?} (none, gzip, snappy, lz4, zstd)"
                )));
            }
        })
    }
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// Compresses a batch's record bytes.
pub fn compress(codec: Codec, records: &[u8]) -> Result<Vec<u8>, ClientError> {
    let err =
        |e: &dyn std::fmt::Display| ClientError::Records(format!("{codec:?} compression: {e}"));
    match codec {
        Codec::None => Ok(records.to_vec()),
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(records).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))
        }
        Codec::Snappy => snap::raw::Encoder::new()
            .compress_vec(records)
            .map_err(|e| err(&e)),
        Codec::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(records).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))
        }
        Codec::Zstd => zstd::bulk::compress(records, 3).map_err(|e| err(&e)),
    }
}

/// Decompresses a batch's record bytes.
pub fn decompress(compression: Compression, data: &[u8]) -> Result<Vec<u8>, ClientError> {
    let err = |e: &dyn std::fmt::Display| {
        ClientError::Records(format!("{compression:?} decompression: {e}"))
    };
    let mut out = Vec::new();
    match compression {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| err(&e))?;
        }
        Compression::Snappy if data.starts_with(XERIAL_MAGIC) => {
            let mut rest = data.get(16..).ok_or_else(|| err(&"short xerial header"))?;
            while !rest.is_empty() {
                let len = rest
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| err(&"short xerial block length"))?;
                let block = rest
                    .get(4..4 + len)
                    .ok_or_else(|| err(&"short xerial block"))?;
                out.extend(
                    snap::raw::Decoder::new()
                        .decompress_vec(block)
                        .map_err(|e| err(&e))?,
                );
                rest = &rest[4 + len..];
            }
        }
        Compression::Snappy => {
            out = snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(|e| err(&e))?
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| err(&e))?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| err(&e))?;
        }
        Compression::Unknown(id) => {
            return Err(ClientError::Records(format!(
                "unknown compression codec {id}"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let c = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec.compression(), &c).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn xerial_snappy_is_read() {
        let data = b"hello hello hello hello".repeat(10);
        let block = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1u32.to_be_bytes());
        framed.extend_from_slice(&1u32.to_be_bytes());
        for _ in 0..2 {
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(
            decompress(Compression::Snappy, &framed).unwrap(),
            data.repeat(2)
        );
    }
}
