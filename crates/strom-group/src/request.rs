//! The requests the coordinator handles, as plain structs. They mirror the Kafka messages
//! field by field (names as in the Kafka schemas and the `kafka-protocol` crate) so the
//! broker translates 1:1, while this crate stays independent of any codec.
//!
//! Strings that are nullable on the wire in some versions but mean "none" when empty
//! (member ids) are plain `String`s; ones whose null differs from empty are `Option`s.

use bytes::Bytes;

/// JoinGroup, versions 0-9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    /// The request's version. It changes behaviour, not just layout: v0 has no rebalance
    /// timeout (the session timeout is used), v4+ gets MEMBER_ID_REQUIRED on a first join
    /// so the member id is known before the member is counted, v9+ lets a restarted static
    /// leader skip running the assignor.
    pub api_version: i16,
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v1+; ignored for v0.
    pub rebalance_timeout_ms: i32,
    /// Empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id` of a static member (v5+).
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    /// Why the member (re)joins (v8+), for logs.
    pub reason: Option<String>,
    /// `client.id` from the request header: shown by DescribeGroups and used as the
    /// prefix of generated member ids.
    pub client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
}

/// One protocol a member supports, with its protocol-specific metadata (for consumers,
/// the serialized subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub metadata: Bytes,
}

/// SyncGroup, versions 0-5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_name: Option<String>,
    /// The leader's assignment for every member; empty from followers.
    pub assignments: Vec<SyncGroupAssignment>,
}

/// The leader's assignment for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

/// Heartbeat, versions 0-4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
}

/// LeaveGroup, versions 0-5. Versions 0-2 carry one `member_id`: pass it as a single
/// [`LeavingMember`] and answer with [`LeaveGroupResponse::legacy_error`](crate::LeaveGroupResponse::legacy_error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// v3+: several members at once (an admin can remove static members by instance id).
    pub members: Vec<LeavingMember>,
}

/// One member leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// May be empty when `group_instance_id` names a static member (admin removal).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+, for logs.
    pub reason: Option<String>,
}

/// OffsetCommit, versions 2-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// The member's generation; `-1` for "simple" commits by consumers that use
    /// `assign()` (no group membership), which only an empty group accepts.
    pub generation_id_or_member_epoch: i32,
    /// Empty for simple commits.
    pub member_id: String,
    /// v7+.
    pub group_instance_id: Option<String>,
    /// v2-v4: how long to keep these offsets, `-1` for the broker's retention. Pass `-1`
    /// for v5+, which dropped the field.
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

/// The partitions of one topic in an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v6+; `-1` when unknown.
    pub committed_leader_epoch: i32,
    /// Stored as `""` when null, as Kafka does.
    pub committed_metadata: Option<String>,
}

/// OffsetFetch, versions 1-8. Versions 1-7 name one group: pass it as a single
/// [`OffsetFetchGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchRequest {
    /// v8+: several groups at once.
    pub groups: Vec<OffsetFetchGroup>,
    /// v7+: answer UNSTABLE_OFFSET_COMMIT for partitions with a pending transactional
    /// offset (a TxnOffsetCommit whose transaction has not ended) instead of the offset.
    pub require_stable: bool,
}

/// One group's part of an OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    /// `None` (v2+) asks for every partition the group has committed.
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

/// The partitions of one topic in an OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

/// TxnOffsetCommit, versions 0-5: a transactional producer commits a group's offsets as
/// part of its transaction (`sendOffsetsToTransaction`). The broker checks first what the
/// partition leader checks of a transactional append (the producer id and epoch against
/// the `__consumer_offsets` partition's producer state, and with KIP-890 that the
/// partition is part of the transaction), and topic authorization and existence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// v3+ (KIP-447): the consumer's generation, checked like OffsetCommit's; `-1` for
    /// v0-v2 and for producers that do not pass the consumer's group metadata.
    pub generation_id: i32,
    /// v3+; `""` for v0-v2.
    pub member_id: String,
    /// v3+.
    pub group_instance_id: Option<String>,
    pub topics: Vec<TxnOffsetCommitTopic>,
}

/// The partitions of one topic in a TxnOffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

/// One position committed in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v2+; `-1` when unknown.
    pub committed_leader_epoch: i32,
    /// Stored as `""` when null, as Kafka does.
    pub committed_metadata: Option<String>,
}

/// DescribeGroups, versions 0-5. `include_authorized_operations` is the broker's to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
}

/// ListGroups, versions 0-4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsRequest {
    /// v4+: only groups in these states (case-insensitive); empty means all.
    pub states_filter: Vec<String>,
}

/// DeleteGroups, versions 0-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

/// OffsetDelete, version 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<OffsetDeleteTopic>,
}

/// The partitions of one topic in an OffsetDelete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}
