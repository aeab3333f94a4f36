//! Fetch: records of one topic's partitions from given offsets, one request per leader.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_batch::Record;

use crate::Client;
use crate::error::ClientError;
use crate::records::decode_batches;

/// Settings of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// How long the broker may wait for `min_bytes` to arrive.
    pub max_wait: Duration,
    pub min_bytes: i32,
    /// Per partition; the broker still sends at least one whole batch.
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            partition_max_bytes: 1024 * 1024,
        }
    }
}

/// What one partition returned, its record batches as the broker sent them (see
/// [`Client::fetch_raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBatches {
    pub partition: i32,
    /// 0, or the Kafka error code for this partition.
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The offset asked for: batches may start before it.
    pub fetch_offset: i64,
    /// Whole record batches, the last one possibly cut off by the size limit.
    pub batches: bytes::Bytes,
}

/// What one partition returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub partition: i32,
    /// 0, or the Kafka error code for this partition (OFFSET_OUT_OF_RANGE, ...).
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<Record>,
}

impl Client {
    /// Fetches `topic`'s `positions` (partition, next offset). Partition-level errors
    /// come back in [`FetchedPartition::error_code`]; a partition whose leader moved is
    /// reported with that error and its leader is looked up again on the next call.
    pub async fn fetch(
        &self,
        topic: &str,
        positions: &[(i32, i64)],
        opts: FetchOptions,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        let mut out = Vec::new();
        for p in self.fetch_raw(topic, positions, opts).await? {
            let records = match p.error_code {
                0 => decode_batches(&p.batches, p.fetch_offset)?,
                _ => Vec::new(),
            };
            out.push(FetchedPartition {
                partition: p.partition,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
                records,
            });
        }
        Ok(out)
    }

    /// Like [`Client::fetch`], but hands back the record batches undecoded, for a
    /// caller that reads them in place (`strom bench`).
    pub async fn fetch_raw(
        &self,
        topic: &str,
        positions: &[(i32, i64)],
        opts: FetchOptions,
    ) -> Result<Vec<FetchedBatches>, ClientError> {
        let (_, topic_id) = self.topic_info(topic).await?;
        let partitions: Vec<i32> = positions.iter().map(|(p, _)| *p).collect();
        let offsets: HashMap<i32, i64> = positions.iter().copied().collect();
        let mut by_leader: HashMap<i32, Vec<(i32, i64)>> = HashMap::new();
        for (leader, ps) in self.partitions_by_leader(topic, &partitions).await? {
            by_leader.insert(leader, ps.iter().map(|p| (*p, offsets[p])).collect());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (leader, ps) in by_leader {
            let client = self.clone();
            let topic = topic.to_owned();
            tasks
                .spawn(async move { client.fetch_from(leader, &topic, topic_id, &ps, opts).await });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            let r = r.map_err(|e| ClientError::Protocol(format!("fetch task: {e}")))?;
            match r {
                Ok(parts) => out.extend(parts),
                Err(e) if e.is_retriable() => self.invalidate_topic(topic),
                Err(e) => return Err(e),
            }
        }
        // UNKNOWN_TOPIC_ID is not retriable as it is, but the topic may have been
        // deleted and created again under its name: the next call looks its id up anew.
        if out.iter().any(|p| {
            crate::error::is_retriable_code(p.error_code)
                || p.error_code == strom_wire::ErrorCode::UnknownTopicId.code()
        }) {
            self.invalidate_topic(topic);
        }
        out.sort_by_key(|p| p.partition);
        Ok(out)
    }

    async fn fetch_from(
        &self,
        leader: i32,
        topic: &str,
        topic_id: uuid::Uuid,
        positions: &[(i32, i64)],
        opts: FetchOptions,
    ) -> Result<Vec<FetchedBatches>, ClientError> {
        let conn = self.broker(leader).await?;
        let version = conn.version::<FetchRequest>()?;
        let req = FetchRequest::default()
            .with_max_wait_ms(opts.max_wait.as_millis() as i32)
            .with_min_bytes(opts.min_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_topic_id(topic_id)
                    .with_partitions(
                        positions
                            .iter()
                            .map(|&(p, o)| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(o)
                                    .with_partition_max_bytes(opts.partition_max_bytes)
                            })
                            .collect(),
                    ),
            ]);
        let resp = conn.send(&req, version).await?;
        ClientError::check(resp.error_code, None, || format!("fetch from {topic}"))?;
        let offsets: HashMap<i32, i64> = positions.iter().copied().collect();
        let mut out = Vec::new();
        for t in resp.responses {
            for p in t.partitions {
                let fetch_offset = offsets.get(&p.partition_index).copied().unwrap_or(0);
                out.push(FetchedBatches {
                    partition: p.partition_index,
                    error_code: p.error_code,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                    fetch_offset,
                    batches: p.records.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}
