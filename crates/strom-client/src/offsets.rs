//! ListOffsets: a partition's earliest offset, its end (the next offset to be written),
//! or the first offset whose timestamp is at or after a given time.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::Client;
use crate::error::ClientError;

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    /// The end of the log: the offset the next record will get.
    Latest,
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

impl Client {
    /// The offset `spec` names for each of `partitions` of `topic`. For a timestamp after
    /// every record the broker finds none; the end offset is given then, which is where
    /// a consumer starting at that time would begin.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, i64>, ClientError> {
        let by_leader = self.partitions_by_leader(topic, partitions).await?;
        let mut out = BTreeMap::new();
        for ps in by_leader.values() {
            for (p, offset) in self.list_offsets_on_leader(topic, ps, spec).await? {
                out.insert(p, offset);
            }
        }
        if let OffsetSpec::Timestamp(_) = spec {
            let missing: Vec<i32> = out
                .iter()
                .filter(|(_, o)| **o < 0)
                .map(|(p, _)| *p)
                .collect();
            if !missing.is_empty() {
                let ends = Box::pin(self.list_offsets(topic, &missing, OffsetSpec::Latest)).await?;
                out.extend(ends);
            }
        }
        Ok(out)
    }

    async fn list_offsets_on_leader(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<Vec<(i32, i64)>, ClientError> {
        let first = partitions[0];
        self.with_leader(topic, first, |conn| async move {
            let version = conn.version::<ListOffsetsRequest>()?;
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(spec.wire())
                                })
                                .collect(),
                        ),
                ]);
            let resp = conn.send(&req, version).await?;
            let mut out = Vec::new();
            for p in resp.topics.iter().flat_map(|t| t.partitions.iter()) {
                ClientError::check(p.error_code, None, || {
                    format!("list offsets of {topic}/{}", p.partition_index)
                })?;
                out.push((p.partition_index, p.offset));
            }
            Ok(out)
        })
        .await
    }
}
