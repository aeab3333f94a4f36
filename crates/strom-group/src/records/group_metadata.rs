//! The value of a group metadata record: a group's protocol, generation, leader and
//! members with their assignments, as of the end of its last rebalance.
//!
//! Layout of Kafka's `GroupMetadataValue` (primitives in `codec.rs`); fields exist from
//! the version in brackets on:
//! ```text
//! version: int16
//! protocol_type: string
//! generation: int32
//! protocol: nullable string
//! leader: nullable string
//! current_state_timestamp: int64            [v2+]
//! members: array of
//!     member_id: string
//!     group_instance_id: nullable string     [v3+]
//!     client_id: string
//!     client_host: string
//!     rebalance_timeout: int32               [v1+]
//!     session_timeout: int32
//!     subscription: bytes                     (the member's metadata for `protocol`)
//!     assignment: bytes
//! ```
//! v4 is the first flexible version: compact strings, bytes and arrays, and a tagged-field
//! section after each member and after the whole value. Strom writes v3, as Kafka 2.3+
//! does.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use crate::error::GroupError;

const RECORD: &str = "GroupMetadataValue";

/// The version Strom writes.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// `""` for a group that has only ever committed offsets.
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state (ms since the epoch); `-1` if unknown
    /// (v0-v1 do not store it).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadataValue>,
}

/// One member as stored in [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    /// Static membership (KIP-345); `None` for dynamic members and in v0-v2.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// v0 has no rebalance timeout; Kafka then uses the session timeout.
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

impl GroupMetadataValue {
    /// The value in `version`'s layout (0..=4; others are written as v3).
    pub fn encode(&self, version: i16) -> Bytes {
        let version = if (0..=4).contains(&version) {
            version
        } else {
            GROUP_METADATA_VALUE_VERSION
        };
        let flexible = version >= 4;
        let mut w = Writer::new();
        let string = |w: &mut Writer, s: &str| {
            if flexible {
                w.compact_string(s)
            } else {
                w.string(s)
            }
        };
        let nullable = |w: &mut Writer, s: Option<&str>| {
            if flexible {
                w.compact_nullable_string(s)
            } else {
                w.nullable_string(s)
            }
        };
        let bytes = |w: &mut Writer, b: &[u8]| {
            if flexible {
                w.compact_bytes(b)
            } else {
                w.bytes(b)
            }
        };
        w.i16(version);
        string(&mut w, &self.protocol_type);
        w.i32(self.generation);
        nullable(&mut w, self.protocol.as_deref());
        nullable(&mut w, self.leader.as_deref());
        if version >= 2 {
            w.i64(self.current_state_timestamp);
        }
        if flexible {
            w.compact_array_len(self.members.len());
        } else {
            w.array_len(self.members.len());
        }
        for m in &self.members {
            string(&mut w, &m.member_id);
            if version >= 3 {
                nullable(&mut w, m.group_instance_id.as_deref());
            }
            string(&mut w, &m.client_id);
            string(&mut w, &m.client_host);
            if version >= 1 {
                w.i32(m.rebalance_timeout);
            }
            w.i32(m.session_timeout);
            bytes(&mut w, &m.subscription);
            bytes(&mut w, &m.assignment);
            if flexible {
                w.no_tagged_fields();
            }
        }
        if flexible {
            w.no_tagged_fields();
        }
        w.finish()
    }

    /// The value and the version it was written in.
    pub fn decode(buf: &[u8]) -> Result<(i16, GroupMetadataValue), GroupError> {
        let mut r = Reader::new(buf, RECORD);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(GroupError::UnsupportedVersion {
                record: RECORD,
                version,
            });
        }
        let flexible = version >= 4;
        let string = |r: &mut Reader<'_>| {
            if flexible {
                r.compact_string()
            } else {
                r.string()
            }
        };
        let nullable = |r: &mut Reader<'_>| {
            if flexible {
                r.compact_nullable_string()
            } else {
                r.nullable_string()
            }
        };
        let bytes = |r: &mut Reader<'_>| {
            if flexible {
                r.compact_bytes()
            } else {
                r.bytes()
            }
        };
        let protocol_type = string(&mut r)?;
        let generation = r.i32()?;
        let protocol = nullable(&mut r)?;
        let leader = nullable(&mut r)?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        // The smallest possible member bounds the count: in v0 three empty strings (2
        // bytes each), a timeout (4) and two empty byte fields (4 each) make 18 bytes;
        // the compact form needs at least 9.
        let count = if flexible {
            r.compact_array_len(9)?
        } else {
            r.array_len(18)?
        };
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let member_id = string(&mut r)?;
            let group_instance_id = if version >= 3 {
                nullable(&mut r)?
            } else {
                None
            };
            let client_id = string(&mut r)?;
            let client_host = string(&mut r)?;
            let rebalance_timeout = if version >= 1 { Some(r.i32()?) } else { None };
            let session_timeout = r.i32()?;
            let subscription = bytes(&mut r)?;
            let assignment = bytes(&mut r)?;
            if flexible {
                r.skip_tagged_fields()?;
            }
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout: rebalance_timeout.unwrap_or(session_timeout),
                session_timeout,
                subscription,
                assignment,
            });
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok((
            version,
            GroupMetadataValue {
                protocol_type,
                generation,
                protocol,
                leader,
                current_state_timestamp,
                members,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, instance: Option<&str>) -> MemberMetadataValue {
        MemberMetadataValue {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout: 60_000,
            session_timeout: 10_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"\x00\x01asg"),
        }
    }

    fn sample() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 1_700_000_000_000,
            members: vec![member("m1", Some("i1")), member("m2", None)],
        }
    }

    /// What survives a round trip through `version`.
    fn kept_by(version: i16) -> GroupMetadataValue {
        let mut v = sample();
        if version < 2 {
            v.current_state_timestamp = -1;
        }
        for m in &mut v.members {
            if version < 3 {
                m.group_instance_id = None;
            }
            if version < 1 {
                m.rebalance_timeout = m.session_timeout;
            }
        }
        v
    }

    #[test]
    fn every_version_round_trips_the_fields_it_has() {
        for version in 0..=4 {
            let bytes = sample().encode(version);
            let (read_version, value) = GroupMetadataValue::decode(&bytes).unwrap();
            assert_eq!(read_version, version);
            assert_eq!(value, kept_by(version), "version {version}");
        }
    }

    #[test]
    fn empty_group_round_trips() {
        let v = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: None,
            leader: None,
            current_state_timestamp: 99,
            members: vec![],
        };
        for version in 0..=4 {
            let (_, back) = GroupMetadataValue::decode(&v.encode(version)).unwrap();
            assert_eq!(back.members, vec![]);
            assert_eq!(back.protocol, None);
            assert_eq!(back.leader, None);
            assert_eq!(back.generation, 3);
        }
    }

    #[test]
    fn v3_layout_is_kafkas() {
        let v = GroupMetadataValue {
            protocol_type: "c".into(),
            generation: 1,
            protocol: None,
            leader: Some("l".into()),
            current_state_timestamp: 2,
            members: vec![MemberMetadataValue {
                member_id: "m".into(),
                group_instance_id: None,
                client_id: "".into(),
                client_host: "h".into(),
                rebalance_timeout: 3,
                session_timeout: 4,
                subscription: Bytes::from_static(b"s"),
                assignment: Bytes::new(),
            }],
        };
        let mut want = vec![0, 3, 0, 1, b'c'];
        want.extend(1i32.to_be_bytes());
        want.extend([0xff, 0xff]); // null protocol
        want.extend([0, 1, b'l']);
        want.extend(2i64.to_be_bytes());
        want.extend(1i32.to_be_bytes()); // one member
        want.extend([0, 1, b'm']);
        want.extend([0xff, 0xff]); // null instance id
        want.extend([0, 0]); // empty client id
        want.extend([0, 1, b'h']);
        want.extend(3i32.to_be_bytes());
        want.extend(4i32.to_be_bytes());
        want.extend(1i32.to_be_bytes());
        want.push(b's');
        want.extend(0i32.to_be_bytes());
        assert_eq!(&v.encode(3)[..], &want[..]);
    }

    #[test]
    fn truncation_and_unknown_versions_are_errors() {
        let good = sample().encode(3);
        for cut in 0..good.len() {
            assert!(
                GroupMetadataValue::decode(&good[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = good.to_vec();
        bad[1] = 5;
        assert!(matches!(
            GroupMetadataValue::decode(&bad),
            Err(GroupError::UnsupportedVersion { version: 5, .. })
        ));
    }

    #[test]
    fn a_huge_member_count_is_refused_without_allocating() {
        let mut bytes = GroupMetadataValue {
            members: vec![],
            ..sample()
        }
        .encode(3)
        .to_vec();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            GroupMetadataValue::decode(&bytes),
            Err(GroupError::Corrupt { .. })
        ));
    }
}
