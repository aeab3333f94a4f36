//! The responses the coordinator produces, as plain structs mirroring the Kafka messages
//! (throttle times and authorized operations are the broker's to fill in).

use bytes::Bytes;
use strom_codes::ErrorCode;

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

impl Response {
    /// The same response with every error field set to `error`, for when the broker could
    /// not make the records of the same [`Effects`](crate::Effects) durable: the client
    /// must not be told its commit or assignment was stored. (Use NOT_COORDINATOR or
    /// COORDINATOR_NOT_AVAILABLE so clients look for the coordinator again.)
    pub fn into_error(self, error: ErrorCode) -> Response {
        match self {
            Response::JoinGroup(r) => {
                Response::JoinGroup(JoinGroupResponse::error(r.member_id, error))
            }
            Response::SyncGroup(_) => Response::SyncGroup(SyncGroupResponse::error(error)),
            Response::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse { error }),
            Response::LeaveGroup(r) => Response::LeaveGroup(LeaveGroupResponse {
                error,
                members: r
                    .members
                    .into_iter()
                    .map(|m| LeaveGroupMemberResponse { error, ..m })
                    .collect(),
            }),
            Response::OffsetCommit(mut r) => {
                for t in &mut r.topics {
                    for p in &mut t.partitions {
                        p.error = error;
                    }
                }
                Response::OffsetCommit(r)
            }
            Response::OffsetFetch(r) => Response::OffsetFetch(OffsetFetchResponse {
                groups: r
                    .groups
                    .into_iter()
                    .map(|g| OffsetFetchGroupResponse::error(g.group_id, error))
                    .collect(),
            }),
            Response::DescribeGroups(r) => Response::DescribeGroups(DescribeGroupsResponse {
                groups: r
                    .groups
                    .into_iter()
                    .map(|g| DescribedGroup::error(g.group_id, error))
                    .collect(),
            }),
            Response::ListGroups(_) => Response::ListGroups(ListGroupsResponse {
                error,
                groups: vec![],
            }),
            Response::DeleteGroups(mut r) => {
                for g in &mut r.results {
                    g.error = error;
                }
                Response::DeleteGroups(r)
            }
            Response::OffsetDelete(_) => Response::OffsetDelete(OffsetDeleteResponse {
                error,
                topics: vec![],
            }),
            Response::TxnOffsetCommit(mut r) => {
                for t in &mut r.topics {
                    for p in &mut t.partitions {
                        p.error = error;
                    }
                }
                Response::TxnOffsetCommit(r)
            }
        }
    }
}

/// JoinGroup's answer. Versions before 7 have a non-nullable `protocol_name`: send `""`
/// for `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    /// `-1` with an error.
    pub generation_id: i32,
    /// v7+.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// v9+: the (static) leader must not run the assignor; the group keeps its assignment.
    pub skip_assignment: bool,
    /// The member's id: the newly generated one on a first join (also with
    /// MEMBER_ID_REQUIRED), `""` when the member must start over.
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    pub(crate) fn error(member_id: impl Into<String>, error: ErrorCode) -> Self {
        JoinGroupResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: vec![],
        }
    }
}

/// One member as the leader sees it in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    pub member_id: String,
    /// v5+.
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// SyncGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    /// v5+.
    pub protocol_type: Option<String>,
    /// v5+.
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub(crate) fn error(error: ErrorCode) -> Self {
        SyncGroupResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Heartbeat's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error: ErrorCode,
}

/// LeaveGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error: ErrorCode,
    /// v3+: one entry per member in the request.
    pub members: Vec<LeaveGroupMemberResponse>,
}

impl LeaveGroupResponse {
    /// The single error code of LeaveGroup v0-v2: the group-level error, or else the one
    /// member's.
    pub fn legacy_error(&self) -> ErrorCode {
        if self.error != ErrorCode::None {
            return self.error;
        }
        self.members.first().map_or(ErrorCode::None, |m| m.error)
    }
}

/// One leaving member's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: ErrorCode,
}

/// OffsetCommit's answer, in the request's order. UNKNOWN_TOPIC_OR_PARTITION is the
/// broker's check: it leaves such partitions out of the request and adds them here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub topics: Vec<OffsetCommitTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error: ErrorCode,
}

/// OffsetFetch's answer, one entry per requested group. Versions 1-7 answer one group:
/// its topics, and its error at top level (v2+) or in every partition (v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub groups: Vec<OffsetFetchGroupResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroupResponse {
    pub group_id: String,
    pub error: ErrorCode,
    pub topics: Vec<OffsetFetchTopicResponse>,
}

impl OffsetFetchGroupResponse {
    pub(crate) fn error(group_id: String, error: ErrorCode) -> Self {
        OffsetFetchGroupResponse {
            group_id,
            error,
            topics: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

/// One partition's committed position; offset `-1` and metadata `""` when nothing was
/// committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v5+; `-1` when unknown.
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error: ErrorCode,
}

/// TxnOffsetCommit's answer, in the request's order. UNKNOWN_TOPIC_OR_PARTITION and
/// authorization errors are the broker's, as for OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitResponse {
    pub topics: Vec<TxnOffsetCommitTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopicResponse {
    pub name: String,
    pub partitions: Vec<TxnOffsetCommitPartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitPartitionResponse {
    pub partition_index: i32,
    pub error: ErrorCode,
}

/// DescribeGroups' answer, one entry per requested group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    pub groups: Vec<DescribedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub error: ErrorCode,
    pub group_id: String,
    /// A [`GroupState`](crate::GroupState) name; `""` with an error; `"Dead"` for an
    /// unknown group (with no error, as Kafka answers versions 0-5).
    pub group_state: String,
    pub protocol_type: String,
    /// The chosen protocol; only reported for Stable groups, as Kafka does.
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

impl DescribedGroup {
    pub(crate) fn error(group_id: String, error: ErrorCode) -> Self {
        DescribedGroup {
            error,
            group_id,
            group_state: String::new(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: vec![],
        }
    }
}

/// A member in DescribeGroups. Metadata and assignment are only filled in for Stable
/// groups (empty otherwise), as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    /// v4+.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

/// ListGroups' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// COORDINATOR_LOAD_IN_PROGRESS while any partition is loading (the list is then
    /// partial), as Kafka answers.
    pub error: ErrorCode,
    pub groups: Vec<ListedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// v4+.
    pub group_state: String,
}

/// DeleteGroups' answer, one entry per requested group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsResponse {
    pub results: Vec<DeletedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroup {
    pub group_id: String,
    pub error: ErrorCode,
}

/// OffsetDelete's answer. With a group-level error the topics are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    pub error: ErrorCode,
    pub topics: Vec<OffsetDeleteTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteTopicResponse {
    pub name: String,
    pub partitions: Vec<OffsetDeletePartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetDeletePartitionResponse {
    pub partition_index: i32,
    pub error: ErrorCode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_leave_error_prefers_the_group_error() {
        let member = |error| LeaveGroupMemberResponse {
            member_id: "m".into(),
            group_instance_id: None,
            error,
        };
        let r = LeaveGroupResponse {
            error: ErrorCode::None,
            members: vec![member(ErrorCode::UnknownMemberId)],
        };
        assert_eq!(r.legacy_error(), ErrorCode::UnknownMemberId);
        let r = LeaveGroupResponse {
            error: ErrorCode::NotCoordinator,
            members: vec![],
        };
        assert_eq!(r.legacy_error(), ErrorCode::NotCoordinator);
        let r = LeaveGroupResponse {
            error: ErrorCode::None,
            members: vec![member(ErrorCode::None)],
        };
        assert_eq!(r.legacy_error(), ErrorCode::None);
    }

    #[test]
    fn into_error_replaces_every_error_field() {
        let commit = Response::OffsetCommit(OffsetCommitResponse {
            topics: vec![OffsetCommitTopicResponse {
                name: "t".into(),
                partitions: vec![
                    OffsetCommitPartitionResponse {
                        partition_index: 0,
                        error: ErrorCode::None,
                    },
                    OffsetCommitPartitionResponse {
                        partition_index: 1,
                        error: ErrorCode::None,
                    },
                ],
            }],
        });
        let Response::OffsetCommit(r) = commit.into_error(ErrorCode::NotCoordinator) else {
            panic!("kind changed");
        };
        assert!(
            r.topics[0]
                .partitions
                .iter()
                .all(|p| p.error == ErrorCode::NotCoordinator)
        );

        let sync = Response::SyncGroup(SyncGroupResponse {
            error: ErrorCode::None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"a"),
        });
        assert_eq!(
            sync.into_error(ErrorCode::NotCoordinator),
            Response::SyncGroup(SyncGroupResponse::error(ErrorCode::NotCoordinator))
        );

        let join = Response::JoinGroup(JoinGroupResponse {
            generation_id: 3,
            leader: "m".into(),
            ..JoinGroupResponse::error("m", ErrorCode::None)
        });
        let Response::JoinGroup(j) = join.into_error(ErrorCode::NotCoordinator) else {
            panic!("kind changed");
        };
        assert_eq!(j.error, ErrorCode::NotCoordinator);
        assert_eq!(j.generation_id, -1);
        assert_eq!(j.member_id, "m");
    }
}
