//! The records the coordinator writes to `__consumer_offsets`, in Kafka's own formats, so
//! the topic's contents mean the same to Strom and to Kafka tooling that reads them.
//!
//! Each record's key says what it is about ([`RecordKey`]); its value is the newest state
//! of that thing ([`OffsetCommitValue`], [`GroupMetadataValue`]), or null to delete it.
//! The topic is compacted by key, so the newest record per key is all that start-up
//! replay needs.

mod codec;
mod group_metadata;
mod key;
mod offset_commit;

pub(crate) use codec::{MAX_STRING_LEN, Reader, Writer, truncate_str};
pub use group_metadata::{GROUP_METADATA_VALUE_VERSION, GroupMetadataValue, MemberMetadataValue};
pub use key::{
    GROUP_METADATA_KEY_VERSION, LEGACY_OFFSET_COMMIT_KEY_VERSION, OFFSET_COMMIT_KEY_VERSION,
    RecordKey,
};
pub use offset_commit::OffsetCommitValue;
