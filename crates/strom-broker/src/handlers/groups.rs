//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: translated 1:1 into the coordinator's
//! requests, answered when the coordinator answers (JoinGroup and SyncGroup often by
//! another member's call or by the ticker). Also the shared plumbing of every group API.

use std::net::SocketAddr;
use std::sync::Arc;

use strom_group::{
    Effects, GroupCoordinator, HeartbeatRequest, JoinGroupProtocol, JoinGroupRequest,
    LeaveGroupRequest, LeavingMember, RequestId, Response as GroupResponse, SyncGroupAssignment,
    SyncGroupRequest,
};
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use strom_wire::kafka_protocol::messages::leave_group_response::MemberResponse;
use strom_wire::kafka_protocol::messages::{
    HeartbeatRequest as WireHeartbeat, HeartbeatResponse, JoinGroupRequest as WireJoin,
    JoinGroupResponse, LeaveGroupRequest as WireLeave, LeaveGroupResponse, ResponseKind,
    SyncGroupRequest as WireSync, SyncGroupResponse,
};
use strom_wire::kafka_protocol::protocol::StrBytes;

use super::{Reply, Response, str_bytes};
use crate::broker::Broker;

/// Runs a coordinator call and answers with `to_wire` of its response: at once when the
/// response is already there, otherwise when it arrives. `None` means the coordinator
/// dropped the request (it never should); `to_wire` answers with an error then.
pub(super) fn call<F>(
    broker: &Arc<Broker>,
    f: impl FnOnce(&mut GroupCoordinator, RequestId, i64) -> Effects,
    to_wire: F,
) -> Reply
where
    F: FnOnce(Option<GroupResponse>) -> ResponseKind + Send + 'static,
{
    let mut rx = broker.groups().call(f);
    match rx.try_recv() {
        Ok(r) => Reply::now(Response::Kind(to_wire(Some(r)))),
        Err(_) => Reply::Later(Box::pin(
            async move { Response::Kind(to_wire(rx.await.ok())) },
        )),
    }
}

pub(super) fn string(s: &StrBytes) -> String {
    s.to_string()
}

fn opt_string(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

pub(super) fn opt_str_bytes(s: Option<String>) -> Option<StrBytes> {
    s.map(str_bytes)
}

/// Where the coordinator did not answer at all: clients look for it again.
pub(super) const LOST: ErrorCode = ErrorCode::CoordinatorNotAvailable;

pub(super) fn join_group(
    broker: &Arc<Broker>,
    r: WireJoin,
    version: i16,
    client_id: String,
    peer: SocketAddr,
) -> Reply {
    let req = JoinGroupRequest {
        api_version: version,
        group_id: string(&r.group_id.0),
        session_timeout_ms: r.session_timeout_ms,
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
        protocol_type: string(&r.protocol_type),
        protocols: r
            .protocols
            .into_iter()
            .map(|p| JoinGroupProtocol {
                name: string(&p.name),
                metadata: p.metadata,
            })
            .collect(),
        reason: opt_string(&r.reason),
        client_id,
        // Kafka shows hosts as InetAddress.toString() does.
        client_host: format!("/{}", peer.ip()),
    };
    call(
        broker,
        |c, id, now| c.join_group(id, req, now),
        move |resp| {
            let resp = match resp {
                Some(GroupResponse::JoinGroup(j)) => j,
                _ => {
                    return ResponseKind::JoinGroup(
                        JoinGroupResponse::default()
                            .with_error_code(LOST.code())
                            .with_generation_id(-1)
                            .with_protocol_name((version < 7).then(|| str_bytes(""))),
                    );
                }
            };
            // Before v7 the protocol name is not nullable.
            let protocol_name = match resp.protocol_name {
                None if version < 7 => Some(str_bytes("")),
                other => opt_str_bytes(other),
            };
            ResponseKind::JoinGroup(
                JoinGroupResponse::default()
                    .with_error_code(resp.error.code())
                    .with_generation_id(resp.generation_id)
                    .with_protocol_type(opt_str_bytes(resp.protocol_type))
                    .with_protocol_name(protocol_name)
                    .with_leader(str_bytes(resp.leader))
                    .with_skip_assignment(resp.skip_assignment)
                    .with_member_id(str_bytes(resp.member_id))
                    .with_members(
                        resp.members
                            .into_iter()
                            .map(|m| {
                                JoinGroupResponseMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(opt_str_bytes(m.group_instance_id))
                                    .with_metadata(m.metadata)
                            })
                            .collect(),
                    ),
            )
        },
    )
}

pub(super) fn sync_group(broker: &Arc<Broker>, r: WireSync) -> Reply {
    let req = SyncGroupRequest {
        group_id: string(&r.group_id.0),
        generation_id: r.generation_id,
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
        protocol_type: opt_string(&r.protocol_type),
        protocol_name: opt_string(&r.protocol_name),
        assignments: r
            .assignments
            .into_iter()
            .map(|a| SyncGroupAssignment {
                member_id: string(&a.member_id),
                assignment: a.assignment,
            })
            .collect(),
    };
    call(
        broker,
        |c, id, now| c.sync_group(id, req, now),
        |resp| {
            ResponseKind::SyncGroup(match resp {
                Some(GroupResponse::SyncGroup(s)) => SyncGroupResponse::default()
                    .with_error_code(s.error.code())
                    .with_protocol_type(opt_str_bytes(s.protocol_type))
                    .with_protocol_name(opt_str_bytes(s.protocol_name))
                    .with_assignment(s.assignment),
                _ => SyncGroupResponse::default().with_error_code(LOST.code()),
            })
        },
    )
}

pub(super) fn heartbeat(broker: &Arc<Broker>, r: WireHeartbeat) -> Reply {
    let req = HeartbeatRequest {
        group_id: string(&r.group_id.0),
        generation_id: r.generation_id,
        member_id: string(&r.member_id),
        group_instance_id: opt_string(&r.group_instance_id),
    };
    call(
        broker,
        |c, id, now| c.heartbeat(id, req, now),
        |resp| {
            let error = match resp {
                Some(GroupResponse::Heartbeat(h)) => h.error,
                _ => LOST,
            };
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(error.code()))
        },
    )
}

pub(super) fn leave_group(broker: &Arc<Broker>, r: WireLeave, version: i16) -> Reply {
    // v0-v2 name one member; v3+ a list (an admin may remove several static members).
    let members = if version < 3 {
        vec![LeavingMember {
            member_id: string(&r.member_id),
            group_instance_id: None,
            reason: None,
        }]
    } else {
        r.members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: string(&m.member_id),
                group_instance_id: opt_string(&m.group_instance_id),
                reason: opt_string(&m.reason),
            })
            .collect()
    };
    let req = LeaveGroupRequest {
        group_id: string(&r.group_id.0),
        members,
    };
    call(
        broker,
        |c, id, now| c.leave_group(id, req, now),
        move |resp| {
            let Some(GroupResponse::LeaveGroup(l)) = resp else {
                return ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default().with_error_code(LOST.code()),
                );
            };
            if version < 3 {
                return ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default().with_error_code(l.legacy_error().code()),
                );
            }
            ResponseKind::LeaveGroup(
                LeaveGroupResponse::default()
                    .with_error_code(l.error.code())
                    .with_members(
                        l.members
                            .into_iter()
                            .map(|m| {
                                MemberResponse::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(opt_str_bytes(m.group_instance_id))
                                    .with_error_code(m.error.code())
                            })
                            .collect(),
                    ),
            )
        },
    )
}
