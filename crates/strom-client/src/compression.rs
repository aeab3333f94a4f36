//! The codec a producer chooses, by name; the codecs themselves are strom-batch's
//! (`strom_batch::codec`), shared with the broker, which decompresses to check records.

use std::str::FromStr;

use strom_batch::Compression;
use strom_batch::codec;

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

/// The most a fetched batch may decompress to: far above what any broker accepts, but a
/// bound, so a hostile or broken broker cannot make the client allocate without limit.
pub(crate) const MAX_DECOMPRESSED_BATCH: usize = 1 << 30;

/// Compresses a batch's record bytes.
pub fn compress(codec: Codec, records: &[u8]) -> Result<Vec<u8>, ClientError> {
    codec::compress(codec.compression(), records).map_err(|e| ClientError::Records(e.to_string()))
}

/// Decompresses a fetched batch's record bytes.
pub fn decompress(compression: Compression, data: &[u8]) -> Result<Vec<u8>, ClientError> {
    codec::decompress(compression, data, MAX_DECOMPRESSED_BATCH)
        .map_err(|e| ClientError::Records(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_are_named_like_kafkas() {
        for (name, codec) in [
            ("none", Codec::None),
            ("gzip", Codec::Gzip),
            ("snappy", Codec::Snappy),
            ("lz4", Codec::Lz4),
            ("zstd", Codec::Zstd),
        ] {
            assert_eq!(name.parse::<Codec>().unwrap(), codec);
            let c = compress(codec, name.as_bytes()).unwrap();
            assert_eq!(
                decompress(codec.compression(), &c).unwrap(),
                name.as_bytes()
            );
        }
        assert!("brotli".parse::<Codec>().is_err());
    }
}
