//! Produce: one batch of records to one partition per call, built with strom-batch's
//! `RecordBatchBuilder` and compressed on the client. Each call is its own future, so a
//! producer (or a benchmark) can keep many batches in flight on one connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::Client;
use crate::compression::Codec;
use crate::error::ClientError;
use crate::records::{ProduceRecord, build_batch};

/// How many replicas must have a batch before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// No answer at all; the call returns once the request is written.
    None,
    /// The leader appended it.
    Leader,
    /// Every in-sync replica has it (on Strom: it is fsynced).
    #[default]
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0" | "none" => Ok(Acks::None),
            "1" | "leader" => Ok(Acks::Leader),
            "-1" | "all" => Ok(Acks::All),
            other => Err(ClientError::Invalid(format!(
                "unknown acks {other:?} (0, 1, all)"
            ))),
        }
    }
}

/// Settings of a produce call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOptions {
    pub acks: Acks,
    pub codec: Codec,
    /// How long the broker may wait for replication before answering.
    pub timeout: Duration,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        ProduceOptions {
            acks: Acks::All,
            codec: Codec::None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a produced batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    /// Offset of the batch's first record; `None` with acks=0 (nobody answers).
    pub base_offset: Option<i64>,
    /// The broker's append time when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Client {
    /// Writes `records` as one batch to `topic`/`partition` on its leader, retrying on a
    /// new leader when leadership moved.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[ProduceRecord],
        opts: ProduceOptions,
    ) -> Result<Produced, ClientError> {
        if records.is_empty() {
            return Err(ClientError::Invalid(
                "an empty batch cannot be produced".into(),
            ));
        }
        let batch = Bytes::from(build_batch(records, opts.codec, now_ms())?);
        let (_, topic_id) = self.topic_info(topic).await?;
        self.with_leader(topic, partition, |conn| {
            let batch = batch.clone();
            async move {
                let version = conn.version::<ProduceRequest>()?;
                let req = ProduceRequest::default()
                    .with_acks(opts.acks.wire())
                    .with_timeout_ms(opts.timeout.as_millis() as i32)
                    .with_topic_data(vec![
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_topic_id(topic_id)
                            .with_partition_data(vec![
                                PartitionProduceData::default()
                                    .with_index(partition)
                                    .with_records(Some(batch)),
                            ]),
                    ]);
                if opts.acks == Acks::None {
                    conn.send_no_response(&req, version).await?;
                    return Ok(Produced {
                        base_offset: None,
                        log_append_time: -1,
                    });
                }
                let resp = conn.send(&req, version).await?;
                let p = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|p| p.index == partition)
                    .ok_or_else(|| {
                        ClientError::Protocol(format!("no produce result for {topic}/{partition}"))
                    })?;
                ClientError::check(p.error_code, p.error_message.as_deref(), || {
                    format!("produce to {topic}/{partition}")
                })?;
                Ok(Produced {
                    base_offset: Some(p.base_offset),
                    log_append_time: p.log_append_time_ms,
                })
            }
        })
        .await
    }
}
