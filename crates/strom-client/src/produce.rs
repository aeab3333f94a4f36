//! Produce: one batch of records to one partition per call, built with strom-batch's
//! `RecordBatchBuilder` and compressed on the client. Each call is its own future, so a
//! producer (or a benchmark) can keep many batches in flight on one connection.

use std::collections::HashMap;
use std::time::Duration;

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
pub use strom_batch::now_ms;

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
        let mut results = self
            .produce_batches(topic, vec![(partition, batch)], opts)
            .await;
        results
            .pop()
            .map(|(_, r)| r)
            .unwrap_or_else(|| Err(ClientError::Protocol("no produce result".into())))
    }

    /// Writes encoded batches (`(partition, batch)`, one per partition, built with
    /// [`build_batch`](crate::build_batch) or strom-batch's builder) to `topic`: one
    /// Produce request per leader, all leaders at once. Partitions whose leader moved
    /// are retried on the new leader after a metadata refresh, with backoff. Returns
    /// each partition's own result, in no particular order.
    pub async fn produce_batches(
        &self,
        topic: &str,
        batches: Vec<(i32, Bytes)>,
        opts: ProduceOptions,
    ) -> Vec<(i32, Result<Produced, ClientError>)> {
        let mut done = Vec::with_capacity(batches.len());
        let mut pending = batches;
        let mut attempt = 0;
        while !pending.is_empty() {
            let round = self.produce_round(topic, &pending, opts).await;
            let mut retry = Vec::new();
            for ((partition, batch), result) in pending.into_iter().zip(round) {
                match result {
                    Err(e) if e.is_retriable() && attempt < self.config().retries => {
                        tracing::debug!(topic, partition, error = %e, attempt, "retrying on a new leader");
                        retry.push((partition, batch));
                    }
                    r => done.push((partition, r)),
                }
            }
            if !retry.is_empty() {
                self.invalidate_topic(topic);
                self.backoff(attempt).await;
                attempt += 1;
            }
            pending = retry;
        }
        done
    }

    /// One attempt for every batch: results in the order of `batches`.
    async fn produce_round(
        &self,
        topic: &str,
        batches: &[(i32, Bytes)],
        opts: ProduceOptions,
    ) -> Vec<Result<Produced, ClientError>> {
        let all_fail = |e: ClientError| batches.iter().map(|_| Err(e.clone())).collect();
        let topic_id = match self.topic_info(topic).await {
            Ok((_, id)) => id,
            Err(e) => return all_fail(e),
        };
        let partitions: Vec<i32> = batches.iter().map(|(p, _)| *p).collect();
        let by_leader = match self.partitions_by_leader(topic, &partitions).await {
            Ok(m) => m,
            Err(e) => return all_fail(e),
        };
        let leader_of: HashMap<i32, i32> = by_leader
            .iter()
            .flat_map(|(leader, ps)| ps.iter().map(move |p| (*p, *leader)))
            .collect();
        let mut per_leader: HashMap<i32, Vec<(i32, Bytes)>> = HashMap::new();
        for (p, batch) in batches {
            if let Some(leader) = leader_of.get(p) {
                per_leader
                    .entry(*leader)
                    .or_default()
                    .push((*p, batch.clone()));
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (leader, data) in per_leader {
            let client = self.clone();
            let topic = topic.to_owned();
            tasks.spawn(async move {
                let result = client
                    .produce_to(leader, &topic, topic_id, &data, opts)
                    .await;
                (data, result)
            });
        }
        let mut by_partition = HashMap::new();
        while let Some(joined) = tasks.join_next().await {
            let (data, result) = match joined {
                Ok(x) => x,
                Err(e) => return all_fail(ClientError::Protocol(format!("produce task: {e}"))),
            };
            match result {
                Ok(answers) => by_partition.extend(answers),
                Err(e) => by_partition.extend(data.iter().map(|(p, _)| (*p, Err(e.clone())))),
            }
        }
        batches
            .iter()
            .map(|(p, _)| {
                by_partition.remove(p).unwrap_or_else(|| {
                    Err(ClientError::Protocol(format!(
                        "no produce result for {topic}/{p}"
                    )))
                })
            })
            .collect()
    }

    /// One Produce request to `leader` carrying `data`; each partition's answer.
    async fn produce_to(
        &self,
        leader: i32,
        topic: &str,
        topic_id: uuid::Uuid,
        data: &[(i32, Bytes)],
        opts: ProduceOptions,
    ) -> Result<Vec<(i32, Result<Produced, ClientError>)>, ClientError> {
        let conn = self.broker(leader).await?;
        let version = conn.version::<ProduceRequest>()?;
        let req = ProduceRequest::default()
            .with_acks(opts.acks.wire())
            .with_timeout_ms(opts.timeout.as_millis() as i32)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_topic_id(topic_id)
                    .with_partition_data(
                        data.iter()
                            .map(|(p, batch)| {
                                PartitionProduceData::default()
                                    .with_index(*p)
                                    .with_records(Some(batch.clone()))
                            })
                            .collect(),
                    ),
            ]);
        if opts.acks == Acks::None {
            conn.send_no_response(&req, version).await?;
            let unanswered = Produced {
                base_offset: None,
                log_append_time: -1,
            };
            return Ok(data.iter().map(|(p, _)| (*p, Ok(unanswered))).collect());
        }
        let resp = conn.send(&req, version).await?;
        Ok(resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .map(|p| {
                let partition = p.index;
                let result = ClientError::check(p.error_code, p.error_message.as_deref(), || {
                    format!("produce to {topic}/{partition}")
                })
                .map(|()| Produced {
                    base_offset: Some(p.base_offset),
                    log_append_time: p.log_append_time_ms,
                });
                (partition, result)
            })
            .collect())
    }
}
