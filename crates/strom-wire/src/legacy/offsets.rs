//! ListOffsets v0, OffsetCommit v0-v1 and OffsetForLeaderEpoch v0-v1 (the requests), and
//! the ListOffsets v0 and OffsetForLeaderEpoch v0-v1 responses.
//!
//! ```text
//! ListOffsets v0 request              ListOffsets v0 response
//!   replica_id       INT32              topics ARRAY of
//!   topics ARRAY of                       name STRING
//!     name           STRING               partitions ARRAY of
//!     partitions ARRAY of                   partition_index    INT32
//!       partition_index  INT32              error_code         INT16
//!       timestamp        INT64              old_style_offsets  ARRAY of INT64
//!       max_num_offsets  INT32
//!
//! OffsetCommit v0-v1 request          (the response is v2's: topics of partition_index,
//!   group_id           STRING          error_code; throttle_time_ms came in v3)
//!   generation_id      INT32   v1
//!   member_id          STRING  v1
//!   topics ARRAY of
//!     name             STRING
//!     partitions ARRAY of
//!       partition_index    INT32
//!       committed_offset   INT64
//!       commit_timestamp   INT64   v1
//!       committed_metadata NULLABLE_STRING
//!
//! OffsetForLeaderEpoch v0-v1 request  OffsetForLeaderEpoch v0-v1 response
//!   topics ARRAY of                     topics ARRAY of
//!     topic          STRING               topic STRING
//!     partitions ARRAY of                 partitions ARRAY of
//!       partition    INT32                  error_code    INT16
//!       leader_epoch INT32                  partition     INT32
//!                                           leader_epoch  INT32   v1
//!                                           end_offset    INT64
//! ```
//!
//! ListOffsets v0 asked for up to `max_num_offsets` offsets "before" a time, which Kafka
//! answered from its segment files' base offsets. Strom answers the one offset v1 would
//! (the high watermark for -1, the log start for -2, the first offset at or after a time),
//! as a list of one, or of none where v1 has no offset: the clients that still send v0 ask
//! for one offset, and want exactly that.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};

use super::{Bad, elements, nullable_string, put_len, put_str, string};
use crate::reader::Reader;

/// The smallest topic entry: an empty name (2) and an empty partition array (4).
const MIN_TOPIC: usize = 6;

pub(super) fn list_offsets_request(r: &mut Reader<'_>) -> Result<ListOffsetsRequest, Bad> {
    let replica_id = r.i32()?;
    let topics = elements(r, MIN_TOPIC, |r| {
        let name = string(r)?;
        let partitions = elements(r, 16, |r| {
            let partition_index = r.i32()?;
            let timestamp = r.i64()?;
            let _max_num_offsets = r.i32()?;
            Ok(ListOffsetsPartition::default()
                .with_partition_index(partition_index)
                .with_timestamp(timestamp))
        })?;
        Ok(ListOffsetsTopic::default()
            .with_name(TopicName(name))
            .with_partitions(partitions))
    })?;
    Ok(ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(topics))
}

pub(super) fn list_offsets_response(
    r: &ListOffsetsResponse,
    out: &mut BytesMut,
) -> Result<(), String> {
    put_len(out, r.topics.len())?;
    for t in &r.topics {
        put_str(out, &t.name.0)?;
        put_len(out, t.partitions.len())?;
        for p in &t.partitions {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            if p.error_code == 0 && p.offset >= 0 {
                out.put_i32(1);
                out.put_i64(p.offset);
            } else {
                out.put_i32(0);
            }
        }
    }
    Ok(())
}

pub(super) fn offset_commit_request(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<OffsetCommitRequest, Bad> {
    let group_id = string(r)?;
    // v0 commits stand alone, outside any generation (as a v2+ commit with generation -1).
    let (generation, member_id) = if version >= 1 {
        (r.i32()?, string(r)?)
    } else {
        (-1, Default::default())
    };
    let min_partition = if version >= 1 { 22 } else { 14 };
    let topics = elements(r, MIN_TOPIC, |r| {
        let name = string(r)?;
        let partitions = elements(r, min_partition, |r| {
            let partition_index = r.i32()?;
            let committed_offset = r.i64()?;
            if version >= 1 {
                // When the commit was made, by the client's clock; Kafka 3 counted the
                // offset's retention from it. Strom counts from when it stores the commit.
                let _commit_timestamp = r.i64()?;
            }
            let committed_metadata = nullable_string(r)?;
            Ok(OffsetCommitRequestPartition::default()
                .with_partition_index(partition_index)
                .with_committed_offset(committed_offset)
                .with_committed_metadata(committed_metadata))
        })?;
        Ok(OffsetCommitRequestTopic::default()
            .with_name(TopicName(name))
            .with_partitions(partitions))
    })?;
    Ok(OffsetCommitRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member_id)
        .with_topics(topics))
}

pub(super) fn offset_for_leader_epoch_request(
    r: &mut Reader<'_>,
) -> Result<OffsetForLeaderEpochRequest, Bad> {
    let topics = elements(r, MIN_TOPIC, |r| {
        let topic = string(r)?;
        let partitions = elements(r, 8, |r| {
            let partition = r.i32()?;
            let leader_epoch = r.i32()?;
            Ok(OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_leader_epoch(leader_epoch))
        })?;
        Ok(OffsetForLeaderTopic::default()
            .with_topic(TopicName(topic))
            .with_partitions(partitions))
    })?;
    Ok(OffsetForLeaderEpochRequest::default().with_topics(topics))
}

pub(super) fn offset_for_leader_epoch_response(
    r: &OffsetForLeaderEpochResponse,
    version: i16,
    out: &mut BytesMut,
) -> Result<(), String> {
    put_len(out, r.topics.len())?;
    for t in &r.topics {
        put_str(out, &t.topic.0)?;
        put_len(out, t.partitions.len())?;
        for p in &t.partitions {
            out.put_i16(p.error_code);
            out.put_i32(p.partition);
            if version >= 1 {
                out.put_i32(p.leader_epoch);
            }
            out.put_i64(p.end_offset);
        }
    }
    Ok(())
}
