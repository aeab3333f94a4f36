//! The record-batch codecs: gzip, snappy, lz4 and zstd, as Kafka lays them out inside a
//! v2 batch (the bytes after the 61-byte header). One implementation for the client,
//! which compresses what it produces and decompresses what it fetches, and the broker,
//! which decompresses what it is sent to check every record.
//!
//! - gzip: a gzip member (RFC 1952).
//! - snappy: raw snappy, as librdkafka writes it; reading also accepts the xerial framing
//!   that the Java client writes (`\x82SNAPPY\0`, two 4-byte versions, then blocks of
//!   a 4-byte big-endian length and a raw snappy block).
//! - lz4: the LZ4 frame format with independent blocks.
//! - zstd: a zstd frame.
//!
//! Decompression takes a hard bound on its output: a few kilobytes of zstd or gzip can
//! claim gigabytes, so output beyond the bound is never produced, let alone allocated.
//! It writes into a caller's buffer that may be reused across batches without being
//! zeroed again (the broker keeps one per thread).

use std::io::{Read, Write};

use thiserror::Error;

use crate::header::Compression;

/// Why a codec failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Codec ids 5..=7 are not assigned by Kafka.
    #[error("unsupported compression codec {0}")]
    Unsupported(u8),
    /// The decompressed records would exceed the caller's bound.
    #[error("{codec:?} records decompress to more than {limit} bytes")]
    TooLarge { codec: Compression, limit: usize },
    /// The compressed bytes are not valid for the codec.
    #[error("{codec:?} data is corrupt: {message}")]
    Corrupt { codec: Compression, message: String },
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// Bytes of the xerial header: magic (8), version (4), compatible version (4).
const XERIAL_HEADER: usize = 16;
/// The smallest and largest zstd window this side accepts (zstd's own limits are 10 and
/// 27 by default); a frame may not ask for a window larger than the output bound.
const ZSTD_MIN_WINDOW_LOG: u32 = 10;
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Compresses a batch's record bytes.
pub fn compress(codec: Compression, records: &[u8]) -> Result<Vec<u8>, CodecError> {
    let err = |e: &dyn std::fmt::Display| CodecError::Corrupt {
        codec,
        message: e.to_string(),
    };
    match codec {
        Compression::None => Ok(records.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(records).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(records)
            .map_err(|e| err(&e)),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(records).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))
        }
        Compression::Zstd => zstd::bulk::compress(records, 3).map_err(|e| err(&e)),
        Compression::Unknown(id) => Err(CodecError::Unsupported(id)),
    }
}

/// Decompresses a batch's record bytes into `out`, overwriting it from its start, and
/// returns their length: `out[..n]` are the records. `out` may be left longer than
/// that (stale bytes past `n`): a buffer reused across batches is written over, not
/// zeroed again. Output past `limit` bytes is [`CodecError::TooLarge`], and `out` never
/// grows to more than `limit` + 1 bytes unless it already was.
pub fn decompress_into(
    compression: Compression,
    data: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<usize, CodecError> {
    let err = |e: &dyn std::fmt::Display| CodecError::Corrupt {
        codec: compression,
        message: e.to_string(),
    };
    match compression {
        Compression::None => {
            if data.len() > limit {
                return Err(CodecError::TooLarge {
                    codec: compression,
                    limit,
                });
            }
            out.clear();
            out.extend_from_slice(data);
            Ok(data.len())
        }
        Compression::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(data),
            compression,
            limit,
            out,
        ),
        Compression::Snappy if data.starts_with(XERIAL_MAGIC) => {
            let mut rest = data
                .get(XERIAL_HEADER..)
                .ok_or_else(|| err(&"short xerial header"))?;
            let mut filled = 0;
            while !rest.is_empty() {
                let (len, tail) = rest
                    .split_first_chunk::<4>()
                    .ok_or_else(|| err(&"short xerial block length"))?;
                let len = u32::from_be_bytes(*len) as usize;
                let block = tail.get(..len).ok_or_else(|| err(&"short xerial block"))?;
                filled = snappy_block(block, compression, limit, out, filled)?;
                rest = &tail[len..];
            }
            Ok(filled)
        }
        Compression::Snappy => snappy_block(data, compression, limit, out, 0),
        Compression::Lz4 => read_bounded(
            lz4_flex::frame::FrameDecoder::new(data),
            compression,
            limit,
            out,
        ),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(data).map_err(|e| err(&e))?;
            // The window is memory the decoder allocates up front, sized by the frame.
            let bits = usize::BITS - limit.leading_zeros();
            d.window_log_max(bits.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG))
                .map_err(|e| err(&e))?;
            read_bounded(d, compression, limit, out)
        }
        Compression::Unknown(id) => Err(CodecError::Unsupported(id)),
    }
}

/// [`decompress_into`] a new buffer.
pub fn decompress(
    compression: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let n = decompress_into(compression, data, limit, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Makes `out[..len]` writable, growing `out` (by exactly what is missing) only when it
/// is shorter.
fn ensure_len(out: &mut Vec<u8>, len: usize) {
    if out.len() < len {
        out.reserve_exact(len - out.len());
        out.resize(len, 0);
    }
}

/// One raw snappy block written at `out[filled..]`: its header states the decompressed
/// length, which is checked against what is left of the bound before anything is
/// allocated. Returns the new end.
fn snappy_block(
    block: &[u8],
    codec: Compression,
    limit: usize,
    out: &mut Vec<u8>,
    filled: usize,
) -> Result<usize, CodecError> {
    let err = |e: &dyn std::fmt::Display| CodecError::Corrupt {
        codec,
        message: e.to_string(),
    };
    let len = snap::raw::decompress_len(block).map_err(|e| err(&e))?;
    if len > limit - filled {
        return Err(CodecError::TooLarge { codec, limit });
    }
    ensure_len(out, filled + len);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[filled..filled + len])
        .map_err(|e| err(&e))?;
    Ok(filled + n)
}

/// Reads a streaming decoder to its end into `out` from its start, growing `out` by
/// exact steps (doubling from 64 KiB) so its capacity never passes the bound + 1.
/// Returns the decompressed length.
fn read_bounded(
    mut reader: impl Read,
    codec: Compression,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<usize, CodecError> {
    const STEP: usize = 64 * 1024;
    let mut filled = 0;
    loop {
        if filled == out.len() {
            // One byte past the bound tells a stream that ends exactly at it from a
            // longer one.
            let room = (limit.saturating_add(1) - filled).min(filled.max(STEP));
            ensure_len(out, filled + room);
        }
        let n = loop {
            match reader.read(&mut out[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(CodecError::Corrupt {
                        codec,
                        message: e.to_string(),
                    });
                }
            }
        };
        if n == 0 {
            return Ok(filled);
        }
        filled += n;
        if filled > limit {
            return Err(CodecError::TooLarge { codec, limit });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in ALL {
            let c = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &c, data.len()).unwrap(),
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
            decompress(Compression::Snappy, &framed, 1 << 20).unwrap(),
            data.repeat(2)
        );
        // The bound covers all blocks together, not each one.
        assert!(matches!(
            decompress(Compression::Snappy, &framed, data.len() + 1),
            Err(CodecError::TooLarge { .. })
        ));
    }

    /// 16 MiB of zeros compress to a few kilobytes; with a 1 MiB bound no codec may
    /// produce (or allocate room for) much more than the bound.
    #[test]
    fn a_decompression_bomb_costs_bounded_memory() {
        let zeros = vec![0u8; 16 << 20];
        let limit = 1 << 20;
        for codec in ALL {
            let bomb = compress(codec, &zeros).unwrap();
            let mut out = Vec::new();
            let r = decompress_into(codec, &bomb, limit, &mut out);
            assert!(
                matches!(r, Err(CodecError::TooLarge { .. })),
                "{codec:?}: {r:?}"
            );
            assert!(out.capacity() <= limit + 1, "{codec:?}: {}", out.capacity());
        }
    }

    #[test]
    fn output_exactly_at_the_bound_is_accepted() {
        let data = vec![7u8; 100_000];
        for codec in ALL {
            let c = compress(codec, &data).unwrap();
            assert_eq!(decompress(codec, &c, data.len()).unwrap().len(), data.len());
            assert!(decompress(codec, &c, data.len() - 1).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn unassigned_codecs_and_garbage_are_errors() {
        for id in 5..=7 {
            assert_eq!(
                decompress(Compression::Unknown(id), b"x", 10),
                Err(CodecError::Unsupported(id))
            );
        }
        for codec in &ALL[1..] {
            assert!(
                matches!(
                    decompress(*codec, b"\x01not compressed at all", 1 << 20),
                    Err(CodecError::Corrupt { .. })
                ),
                "{codec:?}"
            );
        }
    }
}
