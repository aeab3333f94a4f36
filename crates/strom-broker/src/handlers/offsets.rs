//! ListOffsets (earliest, latest, by timestamp, max timestamp), OffsetForLeaderEpoch and
//! DeleteRecords.

use std::sync::Arc;

use strom_log::TopicPartition;
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use strom_wire::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use strom_wire::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use strom_wire::kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use crate::broker::Broker;
use crate::errors::Failure;
use crate::errors::check_leader_epoch;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

fn known(broker: &Broker, topic: &str, partition: i32) -> bool {
    broker
        .topics()
        .get(topic)
        .is_some_and(|t| partition >= 0 && partition < t.partitions)
}

/// The checks every partition-level request makes: the partition exists, this node leads
/// it, and the client's leader epoch (if it sent one) is current. Returns the epoch.
fn check_partition(
    broker: &Broker,
    topic: &str,
    partition: i32,
    client_epoch: i32,
) -> Result<i32, ErrorCode> {
    if !known(broker, topic, partition) {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    let status = broker
        .data()
        .status(&TopicPartition::new(topic, partition))
        .filter(|s| s.is_leader)
        .ok_or(ErrorCode::NotLeaderOrFollower)?;
    match check_leader_epoch(client_epoch, status.leader_epoch()) {
        ErrorCode::None => Ok(status.leader_epoch()),
        e => Err(e),
    }
}

pub(super) fn list_offsets(
    broker: &Arc<Broker>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // The leader epoch field exists from v4 on; older encodings refuse a set value.
    let epoch_for = |offset: i64, epoch: i32| {
        if offset >= 0 && version >= 4 {
            epoch
        } else {
            -1
        }
    };
    // read_committed (v2+): nothing at or past the last stable offset.
    let read_committed = req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let epoch = match check_partition(
                        broker,
                        &name,
                        p.partition_index,
                        p.current_leader_epoch,
                    ) {
                        Ok(e) => e,
                        Err(code) => return resp.with_error_code(code.code()),
                    };
                    match lookup(
                        broker,
                        &TopicPartition::new(name.clone(), p.partition_index),
                        p.timestamp,
                        read_committed,
                    ) {
                        Ok((offset, timestamp)) => resp
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(epoch_for(offset, epoch)),
                        Err(f) => resp.with_error_code(f.code.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The offset (and its timestamp, -1 when not by time) for a ListOffsets timestamp.
fn lookup(
    broker: &Broker,
    tp: &TopicPartition,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64), Failure> {
    let offsets = if read_committed {
        broker.data().stable_offsets(tp)?
    } else {
        broker.data().offsets(tp)
    };
    let (start, end) = offsets
        .ok_or_else(|| Failure::new(ErrorCode::UnknownTopicOrPartition, "unknown partition"))?;
    match timestamp {
        LATEST | LATEST_TIERED => Ok((end, -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((start, -1)),
        MAX_TIMESTAMP => {
            let found = broker
                .data()
                .logs()
                .with_log(tp, |l| l.max_timestamp_offset())
                .transpose()?
                .flatten();
            Ok(found.map_or((-1, -1), |t| {
                first_record_at_or_after(broker, tp, t.offset, t.timestamp, start)
                    .unwrap_or((t.offset, t.timestamp))
            }))
        }
        ts if ts >= 0 => {
            let found = broker
                .data()
                .logs()
                .with_log(tp, |l| l.offset_for_timestamp(ts))
                .transpose()?
                .flatten();
            Ok(found.filter(|t| t.offset < end).map_or((-1, -1), |t| {
                first_record_at_or_after(broker, tp, t.offset, ts, start)
                    .unwrap_or((t.offset, t.timestamp))
            }))
        }
        other => Err(Failure::new(
            ErrorCode::InvalidRequest,
            format!("unknown special timestamp {other}"),
        )),
    }
}

/// The log answers timestamp lookups per batch; Kafka answers per record. Looks inside
/// the batch holding `offset` (decompressing it, under the same bound as a produced
/// batch) for the first record at or after the log start whose timestamp is
/// `>= target`: its offset and timestamp. `None` when the batch cannot be read.
fn first_record_at_or_after(
    broker: &Broker,
    tp: &TopicPartition,
    offset: i64,
    target: i64,
    start: i64,
) -> Option<(i64, i64)> {
    let fetched = broker.data().fetch(tp, offset, 1, -1, false).ok()?;
    let bytes = fetched.slice?.read_to_vec().ok()?;
    let header = strom_batch::RecordBatchHeader::validate(&bytes, 0).ok()?;
    let body = bytes.get(strom_batch::BATCH_HEADER_LEN..header.total_size())?;
    let decompressed;
    let records = match header.compression() {
        strom_batch::Compression::None => body,
        codec => {
            let limit = broker.config().records.max_decompressed_batch_bytes;
            decompressed = strom_batch::codec::decompress(codec, body, limit).ok()?;
            &decompressed[..]
        }
    };
    strom_batch::record_views(&header, records)
        .map_while(Result::ok)
        .find(|r| r.offset >= start && r.timestamp >= target)
        .map(|r| (r.offset, r.timestamp))
}

pub(super) fn offset_for_leader_epoch(
    broker: &Arc<Broker>,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if let Err(code) =
                        check_partition(broker, &name, p.partition, p.current_leader_epoch)
                    {
                        return resp.with_error_code(code.code());
                    }
                    let tp = TopicPartition::new(name.clone(), p.partition);
                    match broker.data().epoch_end_offset(&tp, p.leader_epoch) {
                        Ok(Some((epoch, end))) => {
                            resp.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        // Older than anything in the log: the undefined answer.
                        Ok(None) => resp,
                        Err(f) => resp.with_error_code(f.code.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

pub(super) fn delete_records(
    broker: &Arc<Broker>,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let resp = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if let Err(code) = check_partition(broker, &name, p.partition_index, -1) {
                        return resp.with_error_code(code.code());
                    }
                    let tp = TopicPartition::new(name.clone(), p.partition_index);
                    match broker.data().delete_records(&tp, p.offset) {
                        Ok(low) => resp.with_low_watermark(low),
                        Err(f) => resp.with_error_code(f.code.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
