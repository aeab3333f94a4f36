//! Consumer-group administration: list, describe, committed offsets, commits from
//! outside the group (generation -1, empty member id, as Kafka's reset tool does) and
//! deletion. Requests about a group go to its coordinator.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::Client;
use crate::consumer_protocol::{CONSUMER_PROTOCOL_TYPE, decode_assignment};
use crate::error::ClientError;
use strom_wire::ErrorCode;

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker's ListGroups version does not carry states.
    pub state: String,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    /// Partitions per topic, decoded when the group uses the consumer protocol.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// A group as DescribeGroups describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    pub state: String,
    pub protocol_type: String,
    /// The assignor the members agreed on ("range").
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

impl Client {
    /// Every group on every broker of the cluster, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        let meta = self.metadata(Some(&[]), false).await?;
        let mut out = Vec::new();
        for b in &meta.brokers {
            let conn = self.broker(b.node_id).await?;
            let version = conn.version::<ListGroupsRequest>()?;
            let resp = conn.send(&ListGroupsRequest::default(), version).await?;
            ClientError::check(resp.error_code, None, || {
                format!("list groups on broker {}", b.node_id)
            })?;
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// Describes `group`. A group nobody knows is described as Dead with no members, as
    /// Kafka does before DescribeGroups v6 (from v6 it answers GROUP_ID_NOT_FOUND, which
    /// is turned into the same description here).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        let resp = self
            .with_coordinator(group, |conn| async move {
                let version = conn.version::<DescribeGroupsRequest>()?;
                let resp = conn
                    .send(
                        &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
                        version,
                    )
                    .await?;
                let g = resp.groups.into_iter().next().ok_or_else(|| {
                    ClientError::Protocol(format!("no description of group {group}"))
                })?;
                if g.error_code == ErrorCode::GroupIdNotFound.code() {
                    return Ok(g
                        .with_error_code(0)
                        .with_group_state(StrBytes::from_static_str("Dead"))
                        .with_members(Vec::new()));
                }
                ClientError::check(g.error_code, g.error_message.as_deref(), || {
                    format!("describe group {group}")
                })?;
                Ok(g)
            })
            .await?;
        let consumer = resp.protocol_type.as_str() == CONSUMER_PROTOCOL_TYPE;
        let mut members = Vec::new();
        for m in resp.members {
            let assignment = if consumer {
                decode_assignment(&m.member_assignment).unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            });
        }
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: resp.group_state.to_string(),
            protocol_type: resp.protocol_type.to_string(),
            protocol: resp.protocol_data.to_string(),
            members,
        })
    }

    /// The committed offset of every partition the group has one for: topic ->
    /// partition -> offset.
    pub async fn committed_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version::<OffsetFetchRequest>()?;
            let mut req = OffsetFetchRequest::default();
            if version >= 8 {
                req.groups = vec![
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(group))
                        .with_topics(None),
                ];
            } else {
                req.group_id = group_id(group);
                req.topics = None;
            }
            let resp = conn.send(&req, version).await?;
            let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
            let mut add = |t: &TopicName, p: i32, offset: i64, code: i16| {
                ClientError::check(code, None, || format!("committed offset of {}/{p}", t.0))?;
                if offset >= 0 {
                    out.entry(t.0.to_string()).or_default().insert(p, offset);
                }
                Ok::<(), ClientError>(())
            };
            if version >= 8 {
                let g = resp
                    .groups
                    .first()
                    .ok_or_else(|| ClientError::Protocol(format!("no offsets of group {group}")))?;
                ClientError::check(g.error_code, None, || {
                    format!("committed offsets of group {group}")
                })?;
                for t in &g.topics {
                    for p in &t.partitions {
                        add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                    }
                }
            } else {
                ClientError::check(resp.error_code, None, || {
                    format!("committed offsets of group {group}")
                })?;
                for t in &resp.topics {
                    for p in &t.partitions {
                        add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Commits `offsets` (topic -> partition -> offset) for `group` as a member of
    /// `generation` (-1 and an empty member id: a commit from outside the group, which
    /// the coordinator accepts only while the group has no members).
    pub async fn commit_offsets(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &BTreeMap<String, BTreeMap<i32, i64>>,
    ) -> Result<(), ClientError> {
        let topics: Vec<OffsetCommitRequestTopic> = offsets
            .iter()
            .map(|(t, ps)| {
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(
                        ps.iter()
                            .map(|(&p, &o)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                            })
                            .collect(),
                    )
            })
            .collect();
        self.with_coordinator(group, |conn| {
            let topics = topics.clone();
            async move {
                let version = conn.version::<OffsetCommitRequest>()?;
                let req = OffsetCommitRequest::default()
                    .with_group_id(group_id(group))
                    .with_generation_id_or_member_epoch(generation)
                    .with_member_id(StrBytes::from_string(member_id.to_owned()))
                    .with_topics(topics);
                let resp = conn.send(&req, version).await?;
                for t in &resp.topics {
                    for p in &t.partitions {
                        ClientError::check(p.error_code, None, || {
                            format!(
                                "commit offset of {}/{} for group {group}",
                                t.name.0, p.partition_index
                            )
                        })?;
                    }
                }
                Ok(())
            }
        })
        .await
    }

    /// Deletes `group` (its committed offsets too); refused with NON_EMPTY_GROUP while it
    /// has members.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        self.with_coordinator(group, |conn| async move {
            let version = conn.version::<DeleteGroupsRequest>()?;
            let resp = conn
                .send(
                    &DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
                    version,
                )
                .await?;
            let r = resp
                .results
                .first()
                .ok_or_else(|| ClientError::Protocol(format!("no result for group {group}")))?;
            ClientError::check(r.error_code, None, || format!("delete group {group}"))
        })
        .await
    }
}
