//! The value of an offset commit record: the committed position of one partition.
//!
//! Layouts of the five versions of Kafka's `OffsetCommitValue` (primitives in `codec.rs`):
//! ```text
//! v0: version: int16 | offset: int64 | metadata: string | commit_timestamp: int64
//! v1: version: int16 | offset: int64 | metadata: string | commit_timestamp: int64
//!     | expire_timestamp: int64
//! v2: same fields as v0
//! v3: version: int16 | offset: int64 | leader_epoch: int32 | metadata: string
//!     | commit_timestamp: int64
//! v4: version: int16 | offset: int64 | leader_epoch: int32 | metadata: compact string
//!     | commit_timestamp: int64 | tagged fields          (first flexible version)
//! ```
//! Like Kafka (2.1+), Strom writes v1 when the commit carried an explicit retention time
//! (OffsetCommit v2-v4 `retention_time_ms`), because only v1 has `expire_timestamp`, and
//! v3 otherwise, which keeps the leader epoch.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use crate::error::GroupError;

const RECORD: &str = "OffsetCommitValue";

/// Sentinel for "no leader epoch" and "no expire timestamp", as in Kafka.
pub(super) const NO_VALUE: i64 = -1;

/// One committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// `-1` when unknown (v0-v2 and v1 do not store it).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// `-1` unless the commit asked for its own retention (only v1 stores it).
    pub expire_timestamp: i64,
}

impl OffsetCommitValue {
    /// The version Kafka writes for this value: 1 if it has an expire timestamp, else 3.
    pub fn preferred_version(&self) -> i16 {
        if self.expire_timestamp >= 0 { 1 } else { 3 }
    }

    /// The value in `version`'s layout. Fields the version lacks are left out; versions
    /// outside 0..=4 are written as the preferred version.
    pub fn encode(&self, version: i16) -> Bytes {
        let version = if (0..=4).contains(&version) {
            version
        } else {
            self.preferred_version()
        };
        let mut w = Writer::new();
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        if version >= 4 {
            w.compact_string(&self.metadata);
        } else {
            w.string(&self.metadata);
        }
        w.i64(self.commit_timestamp);
        if version == 1 {
            w.i64(self.expire_timestamp);
        }
        if version >= 4 {
            w.no_tagged_fields();
        }
        w.finish()
    }

    /// The value and the version it was written in.
    pub fn decode(buf: &[u8]) -> Result<(i16, OffsetCommitValue), GroupError> {
        let mut r = Reader::new(buf, RECORD);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(GroupError::UnsupportedVersion {
                record: RECORD,
                version,
            });
        }
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = if version >= 4 {
            r.compact_string()?
        } else {
            r.string()?
        };
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { r.i64()? } else { NO_VALUE };
        if version >= 4 {
            r.skip_tagged_fields()?;
        }
        // Older Kafka versions may append fields a later schema drops; ignorable bytes at
        // the end are tolerated, as Kafka's own reader does.
        Ok((
            version,
            OffsetCommitValue {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
                expire_timestamp,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 1234,
            leader_epoch: 5,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: 1_700_000_600_000,
        }
    }

    /// What survives a round trip through `version`.
    fn kept_by(version: i16) -> OffsetCommitValue {
        let mut v = sample();
        if version < 3 {
            v.leader_epoch = -1;
        }
        if version != 1 {
            v.expire_timestamp = -1;
        }
        v
    }

    #[test]
    fn every_version_round_trips_the_fields_it_has() {
        for version in 0..=4 {
            let bytes = sample().encode(version);
            let (read_version, value) = OffsetCommitValue::decode(&bytes).unwrap();
            assert_eq!(read_version, version);
            assert_eq!(value, kept_by(version), "version {version}");
        }
    }

    #[test]
    fn v3_layout_is_kafkas() {
        let v = OffsetCommitValue {
            offset: 1,
            leader_epoch: 2,
            metadata: "m".into(),
            commit_timestamp: 3,
            expire_timestamp: -1,
        };
        let mut want = vec![0, 3];
        want.extend(1i64.to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend([0, 1, b'm']);
        want.extend(3i64.to_be_bytes());
        assert_eq!(&v.encode(3)[..], &want[..]);
    }

    #[test]
    fn v1_layout_is_kafkas() {
        let v = sample();
        let mut want = vec![0, 1];
        want.extend(1234i64.to_be_bytes());
        want.extend([0, 4]);
        want.extend(b"meta");
        want.extend(1_700_000_000_000i64.to_be_bytes());
        want.extend(1_700_000_600_000i64.to_be_bytes());
        assert_eq!(&v.encode(1)[..], &want[..]);
    }

    #[test]
    fn v4_uses_compact_strings_and_tagged_fields() {
        let bytes = sample().encode(4);
        // version, offset, epoch, then the compact length (4 + 1).
        assert_eq!(bytes[2 + 8 + 4], 5);
        assert_eq!(*bytes.last().unwrap(), 0, "empty tagged fields");
    }

    #[test]
    fn preferred_version_follows_the_expire_timestamp() {
        assert_eq!(sample().preferred_version(), 1);
        let v = OffsetCommitValue {
            expire_timestamp: -1,
            ..sample()
        };
        assert_eq!(v.preferred_version(), 3);
    }

    #[test]
    fn unknown_versions_and_truncation_are_errors() {
        let mut bytes = sample().encode(3).to_vec();
        bytes[1] = 9;
        assert_eq!(
            OffsetCommitValue::decode(&bytes),
            Err(GroupError::UnsupportedVersion {
                record: RECORD,
                version: 9
            })
        );
        let good = sample().encode(3);
        for cut in 0..good.len() {
            assert!(
                OffsetCommitValue::decode(&good[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }
}
