//! DescribeGroups, ListGroups and DeleteGroups: what the admin tools show and remove.

use std::sync::Arc;

use strom_group::{
    DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest, Response as GroupResponse,
};
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use strom_wire::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use strom_wire::kafka_protocol::messages::list_groups_response::ListedGroup;
use strom_wire::kafka_protocol::messages::{
    DeleteGroupsRequest as WireDelete, DeleteGroupsResponse, DescribeGroupsRequest as WireDescribe,
    DescribeGroupsResponse, GroupId, ListGroupsRequest as WireList, ListGroupsResponse,
    ResponseKind,
};

use super::groups::{LOST, call, opt_str_bytes, string};
use super::{Reply, Response, str_bytes};
use crate::broker::Broker;

/// Authorized operations are not computed (there is no ACL support): Kafka's "omitted".
const OPERATIONS_OMITTED: i32 = i32::MIN;

/// A group no one has used (or whose last offsets expired) is described as Dead. From v6
/// Kafka answers it with GROUP_ID_NOT_FOUND and a message instead (KIP-1043), which
/// `kafka-consumer-groups --describe` reports as such.
const DEAD: &str = "Dead";

pub(super) fn describe_groups(broker: &Arc<Broker>, r: WireDescribe, version: i16) -> Reply {
    let names: Vec<String> = r.groups.iter().map(|g| string(&g.0)).collect();
    let req = DescribeGroupsRequest {
        groups: names.clone(),
    };
    call(
        broker,
        |c, id, now| c.describe_groups(id, req, now),
        move |resp| {
            let groups = match resp {
                Some(GroupResponse::DescribeGroups(d)) => d
                    .groups
                    .into_iter()
                    .map(|g| {
                        let unknown = version >= 6
                            && g.error == ErrorCode::None
                            && g.group_state == DEAD
                            && g.members.is_empty();
                        let (error, message) = if unknown {
                            let message = format!("Group {} not found.", g.group_id);
                            (ErrorCode::GroupIdNotFound, Some(str_bytes(message)))
                        } else {
                            (g.error, None)
                        };
                        DescribedGroup::default()
                            .with_error_code(error.code())
                            .with_error_message(message)
                            .with_group_id(GroupId(str_bytes(g.group_id)))
                            .with_group_state(str_bytes(g.group_state))
                            .with_protocol_type(str_bytes(g.protocol_type))
                            .with_protocol_data(str_bytes(g.protocol_data))
                            .with_authorized_operations(OPERATIONS_OMITTED)
                            .with_members(
                                g.members
                                    .into_iter()
                                    .map(|m| {
                                        DescribedGroupMember::default()
                                            .with_member_id(str_bytes(m.member_id))
                                            .with_group_instance_id(opt_str_bytes(
                                                m.group_instance_id,
                                            ))
                                            .with_client_id(str_bytes(m.client_id))
                                            .with_client_host(str_bytes(m.client_host))
                                            .with_member_metadata(m.member_metadata)
                                            .with_member_assignment(m.member_assignment)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
                _ => names
                    .into_iter()
                    .map(|n| {
                        DescribedGroup::default()
                            .with_error_code(LOST.code())
                            .with_group_id(GroupId(str_bytes(n)))
                    })
                    .collect(),
            };
            ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups))
        },
    )
}

/// Every group Strom has is a classic one (KIP-848's `consumer`, share and streams groups
/// do not exist here), so v5's types filter either keeps them all or none. Kafka matches
/// type names without regard to case, and an unknown name matches no group.
const GROUP_TYPE: &str = "classic";

pub(super) fn list_groups(broker: &Arc<Broker>, r: WireList) -> Reply {
    let wants_classic = r.types_filter.is_empty()
        || r.types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE));
    if !wants_classic {
        return Reply::now(Response::Kind(ResponseKind::ListGroups(
            ListGroupsResponse::default(),
        )));
    }
    let req = ListGroupsRequest {
        states_filter: r.states_filter.iter().map(string).collect(),
    };
    call(
        broker,
        |c, id, now| c.list_groups(id, req, now),
        |resp| {
            let Some(GroupResponse::ListGroups(l)) = resp else {
                return ResponseKind::ListGroups(
                    ListGroupsResponse::default().with_error_code(LOST.code()),
                );
            };
            ResponseKind::ListGroups(
                ListGroupsResponse::default()
                    .with_error_code(l.error.code())
                    .with_groups(
                        l.groups
                            .into_iter()
                            .map(|g| {
                                ListedGroup::default()
                                    .with_group_id(GroupId(str_bytes(g.group_id)))
                                    .with_protocol_type(str_bytes(g.protocol_type))
                                    .with_group_state(str_bytes(g.group_state))
                                    .with_group_type(str_bytes(GROUP_TYPE))
                            })
                            .collect(),
                    ),
            )
        },
    )
}

pub(super) fn delete_groups(broker: &Arc<Broker>, r: WireDelete) -> Reply {
    let names: Vec<String> = r.groups_names.iter().map(|g| string(&g.0)).collect();
    let req = DeleteGroupsRequest {
        groups_names: names.clone(),
    };
    call(
        broker,
        |c, id, now| c.delete_groups(id, req, now),
        move |resp| {
            let results: Vec<(String, i16)> = match resp {
                Some(GroupResponse::DeleteGroups(d)) => d
                    .results
                    .into_iter()
                    .map(|g| (g.group_id, g.error.code()))
                    .collect(),
                _ => names.into_iter().map(|n| (n, LOST.code())).collect(),
            };
            ResponseKind::DeleteGroups(
                DeleteGroupsResponse::default().with_results(
                    results
                        .into_iter()
                        .map(|(g, e)| {
                            DeletableGroupResult::default()
                                .with_group_id(GroupId(str_bytes(g)))
                                .with_error_code(e)
                        })
                        .collect(),
                ),
            )
        },
    )
}
