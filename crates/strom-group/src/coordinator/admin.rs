//! DescribeGroups, ListGroups and DeleteGroups: the operator's view of the groups.

use std::collections::BTreeSet;

use strom_codes::ErrorCode;

use super::{GroupCoordinator, PartitionState, tombstone_offset};
use crate::effects::{Effects, RequestId};
use crate::group::Group;
use crate::records::RecordKey;
use crate::request::{DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest};
use crate::response::{
    DeleteGroupsResponse, DeletedGroup, DescribeGroupsResponse, DescribedGroup, DescribedMember,
    ListGroupsResponse, ListedGroup, Response,
};
use crate::state::GroupState;

impl GroupCoordinator {
    /// Handles a DescribeGroups. An unknown group is reported as `Dead` without error,
    /// as Kafka answers versions 0-5.
    pub fn describe_groups(
        &mut self,
        id: RequestId,
        req: DescribeGroupsRequest,
        _now: i64,
    ) -> Effects {
        let groups = req
            .groups
            .into_iter()
            .map(|group_id| match self.status(&group_id, true) {
                Err(e) => DescribedGroup::error(group_id, e),
                Ok(_) => match self.groups.get(&group_id) {
                    Some(g) => describe(g),
                    None => DescribedGroup {
                        group_state: GroupState::Dead.name().to_string(),
                        ..DescribedGroup::error(group_id, ErrorCode::None)
                    },
                },
            })
            .collect();
        let mut fx = Effects::default();
        fx.respond(
            id,
            Response::DescribeGroups(DescribeGroupsResponse { groups }),
        );
        fx
    }

    /// Handles a ListGroups: the groups of the served partitions, optionally only those in
    /// some states.
    pub fn list_groups(&mut self, id: RequestId, req: ListGroupsRequest, _now: i64) -> Effects {
        let loading = self
            .partitions
            .values()
            .any(|s| *s == PartitionState::Loading);
        // Unknown state names match nothing, as in Kafka.
        let wanted: Vec<Option<GroupState>> = req
            .states_filter
            .iter()
            .map(|s| GroupState::parse(s))
            .collect();
        let groups = self
            .groups()
            .filter(|g| wanted.is_empty() || wanted.contains(&Some(g.state)))
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.name().to_string(),
            })
            .collect();
        let error = if loading {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            ErrorCode::None
        };
        let mut fx = Effects::default();
        fx.respond(
            id,
            Response::ListGroups(ListGroupsResponse { error, groups }),
        );
        fx
    }

    /// Handles a DeleteGroups: Empty groups are deleted with all their offsets
    /// (tombstones for each offset and for the group); groups with members are refused
    /// with NON_EMPTY_GROUP.
    pub fn delete_groups(&mut self, id: RequestId, req: DeleteGroupsRequest, _now: i64) -> Effects {
        let mut fx = Effects::default();
        let mut results = Vec::with_capacity(req.groups_names.len());
        for group_id in req.groups_names {
            let error = match self.status(&group_id, true) {
                Err(e) => e,
                Ok(_) => match self.groups.get(&group_id) {
                    None => ErrorCode::GroupIdNotFound,
                    Some(g) if !g.is(GroupState::Empty) => ErrorCode::NonEmptyGroup,
                    Some(_) => {
                        if let Some(g) = self.groups.remove(&group_id) {
                            self.timers.schedule(&group_id, None);
                            delete_group(g, &mut fx);
                        }
                        ErrorCode::None
                    }
                },
            };
            results.push(DeletedGroup { group_id, error });
        }
        fx.respond(id, Response::DeleteGroups(DeleteGroupsResponse { results }));
        fx
    }
}

/// A group as DescribeGroups shows it: protocol, member metadata and assignments only
/// when Stable, as Kafka does.
fn describe(g: &Group) -> DescribedGroup {
    let stable = g.is(GroupState::Stable);
    let protocol = if stable {
        g.protocol_name.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let members = g
        .members()
        .into_iter()
        .map(|m| DescribedMember {
            member_id: m.id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            member_metadata: if stable {
                m.metadata(&protocol).cloned().unwrap_or_default()
            } else {
                Default::default()
            },
            member_assignment: if stable {
                m.assignment.clone().unwrap_or_default()
            } else {
                Default::default()
            },
        })
        .collect();
    DescribedGroup {
        error: ErrorCode::None,
        group_id: g.id.clone(),
        group_state: g.state.name().to_string(),
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        protocol_data: protocol,
        members,
    }
}

/// Tombstones for every offset of a deleted group, committed or pending in an open
/// transaction (as Kafka deletes both), and for the group itself.
fn delete_group(g: Group, fx: &mut Effects) {
    tracing::info!(group = %g.id, offsets = g.offsets.len(), "group deleted");
    let keys: BTreeSet<(String, i32)> = g.offsets.keys().chain(g.pending.keys()).cloned().collect();
    for (topic, partition) in keys {
        tombstone_offset(&g.id, g.partition, topic, partition, fx);
    }
    let key = RecordKey::GroupMetadata { group: g.id };
    fx.record(g.partition, key.encode(), None);
}

#[cfg(test)]
mod tests {
    use strom_codes::ErrorCode;

    use super::super::harness::*;
    use crate::records::RecordKey;
    use crate::request::{
        DeleteGroupsRequest, DescribeGroupsRequest, JoinGroupRequest, ListGroupsRequest,
    };
    use crate::response::{
        DeleteGroupsResponse, DescribeGroupsResponse, ListGroupsResponse, Response,
    };

    fn describe(h: &mut Harness, groups: &[&str]) -> DescribeGroupsResponse {
        let req = DescribeGroupsRequest {
            groups: groups.iter().map(|g| (*g).into()).collect(),
        };
        let id = h.send(|c, id, now| c.describe_groups(id, req, now));
        match &h.answers[&id] {
            Response::DescribeGroups(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn list(h: &mut Harness, states: &[&str]) -> ListGroupsResponse {
        let req = ListGroupsRequest {
            states_filter: states.iter().map(|s| (*s).into()).collect(),
        };
        let id = h.send(|c, id, now| c.list_groups(id, req, now));
        match &h.answers[&id] {
            Response::ListGroups(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn delete(h: &mut Harness, groups: &[&str]) -> DeleteGroupsResponse {
        let req = DeleteGroupsRequest {
            groups_names: groups.iter().map(|g| (*g).into()).collect(),
        };
        let id = h.send(|c, id, now| c.delete_groups(id, req, now));
        match &h.answers[&id] {
            Response::DeleteGroups(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn describe_shows_stable_groups_in_full() {
        let mut h = Harness::new();
        let (members, _) = h.stable_group("g", 2);
        let r = describe(&mut h, &["g", "unknown"]);
        let g = &r.groups[0];
        assert_eq!(g.error, ErrorCode::None);
        assert_eq!(g.group_state, "Stable");
        assert_eq!(g.protocol_type, "consumer");
        assert_eq!(g.protocol_data, "range");
        let ids: Vec<_> = g.members.iter().map(|m| m.member_id.clone()).collect();
        assert_eq!(ids, members);
        assert_eq!(g.members[0].client_id, "client-0");
        assert_eq!(g.members[0].client_host, "/127.0.0.1");
        assert_eq!(&g.members[0].member_assignment[..], b"assignment");
        assert!(!g.members[0].member_metadata.is_empty());
        let unknown = &r.groups[1];
        assert_eq!(unknown.error, ErrorCode::None);
        assert_eq!(unknown.group_state, "Dead");
        assert!(unknown.members.is_empty());
    }

    #[test]
    fn describe_hides_protocol_and_metadata_while_rebalancing() {
        let mut h = Harness::new();
        let (members, _) = h.stable_group("g", 2);
        h.join(JoinGroupRequest {
            member_id: members[0].clone(),
            ..join_req("g", "a")
        });
        let r = describe(&mut h, &["g"]);
        let g = &r.groups[0];
        assert_eq!(g.group_state, "PreparingRebalance");
        assert_eq!(g.protocol_data, "");
        assert_eq!(g.members.len(), 2);
        assert!(g.members.iter().all(|m| m.member_metadata.is_empty()));
        assert!(g.members.iter().all(|m| m.member_assignment.is_empty()));
    }

    #[test]
    fn list_filters_by_state_ignoring_case() {
        let mut h = Harness::new();
        h.stable_group("stable", 1);
        h.commit(commit_req("simple", -1, "", &[("t", 0, 1)]));
        let (_, _) = h.join_new(join_req("joining", "a"));
        let all = list(&mut h, &[]);
        assert_eq!(all.error, ErrorCode::None);
        let names: Vec<_> = all
            .groups
            .iter()
            .map(|g| {
                (
                    g.group_id.as_str(),
                    g.protocol_type.as_str(),
                    g.group_state.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("joining", "consumer", "PreparingRebalance"),
                ("simple", "", "Empty"),
                ("stable", "consumer", "Stable")
            ]
        );
        let some = list(&mut h, &["stable", "EMPTY"]);
        let ids: Vec<_> = some.groups.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, ["simple", "stable"]);
        assert!(list(&mut h, &["NoSuchState"]).groups.is_empty());
    }

    #[test]
    fn list_reports_loading_partitions() {
        let mut h = Harness::new();
        h.commit(commit_req("g", -1, "", &[("t", 0, 1)]));
        let p = h.c.partition_for("g");
        let other = (p + 1) % 4;
        assert!(h.c.begin_load(other).is_empty());
        let r = list(&mut h, &[]);
        assert_eq!(r.error, ErrorCode::CoordinatorLoadInProgress);
        assert_eq!(r.groups.len(), 1, "the loaded partitions are still listed");
    }

    #[test]
    fn delete_removes_empty_groups_with_their_offsets() {
        let mut h = Harness::new();
        h.commit(commit_req("e", -1, "", &[("t", 0, 1), ("u", 2, 3)]));
        h.stable_group("busy", 1);
        let r = delete(&mut h, &["e", "busy", "unknown"]);
        let errors: Vec<_> = r
            .results
            .iter()
            .map(|g| (g.group_id.as_str(), g.error))
            .collect();
        assert_eq!(
            errors,
            [
                ("e", ErrorCode::None),
                ("busy", ErrorCode::NonEmptyGroup),
                ("unknown", ErrorCode::GroupIdNotFound)
            ]
        );
        assert!(h.c.group("e").is_none());
        assert!(h.c.group("busy").is_some());
        let keys: Vec<_> = h
            .last_effects
            .records
            .iter()
            .map(|r| {
                assert!(r.value.is_none(), "tombstones only");
                RecordKey::decode(&r.key).unwrap()
            })
            .collect();
        assert_eq!(
            keys,
            [
                RecordKey::OffsetCommit {
                    group: "e".into(),
                    topic: "t".into(),
                    partition: 0
                },
                RecordKey::OffsetCommit {
                    group: "e".into(),
                    topic: "u".into(),
                    partition: 2
                },
                RecordKey::GroupMetadata { group: "e".into() },
            ]
        );
        assert_eq!(h.fetched_offset("e", "t", 0), -1);
    }
}
