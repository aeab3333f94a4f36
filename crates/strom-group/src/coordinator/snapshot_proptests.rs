//! Property test of `GroupCoordinator::snapshot`: after random commits (with and without
//! their own retention), transactional commits of two producers and their COMMIT and
//! ABORT markers, groups forming and emptying, member commits, group and offset
//! deletions and time passing (sessions and offsets expiring), replaying only the
//! snapshots, or the whole history followed by them (a crash between appending a
//! snapshot and moving the log start), gives the same groups and offsets as replaying
//! the whole history, as seen through the public API; and so do the markers of the
//! transactions still open, appended after the snapshot.

use proptest::prelude::*;

use super::GroupCoordinator;
use super::harness::*;
use crate::config::GroupConfig;
use crate::request::{
    DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest, OffsetDeleteRequest,
    OffsetDeleteTopic, OffsetFetchGroup, OffsetFetchRequest,
};

const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];
const TOPICS: [&str; 2] = ["t", "u"];
const PRODUCERS: [i64; 2] = [100, 200];
/// Short enough that random ticks expire offsets and groups.
const RETENTION: i64 = 120_000;

fn config() -> GroupConfig {
    GroupConfig {
        offsets_retention_ms: RETENTION,
        offsets_retention_check_interval_ms: 1_000,
        ..test_config()
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A simple (member-less) commit, possibly with its own retention (OffsetCommit v2-v4).
    Commit {
        group: usize,
        topic: usize,
        partition: i32,
        offset: i64,
        retention: bool,
    },
    /// A commit by the group's first member in its generation, if it has members.
    MemberCommit {
        group: usize,
        partition: i32,
        offset: i64,
    },
    /// Forms a Stable group of `members` if the group is Empty or new.
    Form {
        group: usize,
        members: usize,
    },
    /// Every member the test knows of leaves.
    LeaveAll {
        group: usize,
    },
    Delete {
        group: usize,
    },
    DeleteOffset {
        group: usize,
        topic: usize,
        partition: i32,
    },
    Tick {
        ms: i64,
    },
    /// A transactional commit (generation -1) of one of the producers.
    TxnCommit {
        group: usize,
        producer: usize,
        topic: usize,
        partition: i32,
        offset: i64,
    },
    /// A producer's COMMIT or ABORT marker on a group's partition.
    Marker {
        group: usize,
        producer: usize,
        commit: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let group = 0..GROUPS.len();
    prop_oneof![
        6 => (group.clone(), 0..TOPICS.len(), 0..3i32, 0..1_000i64, prop::bool::weighted(0.2))
            .prop_map(|(group, topic, partition, offset, retention)| Op::Commit {
                group, topic, partition, offset, retention
            }),
        3 => (group.clone(), 0..3i32, 0..1_000i64)
            .prop_map(|(group, partition, offset)| Op::MemberCommit { group, partition, offset }),
        2 => (group.clone(), 1..3usize).prop_map(|(group, members)| Op::Form { group, members }),
        1 => group.clone().prop_map(|group| Op::LeaveAll { group }),
        1 => group.clone().prop_map(|group| Op::Delete { group }),
        1 => (group.clone(), 0..TOPICS.len(), 0..3i32)
            .prop_map(|(group, topic, partition)| Op::DeleteOffset { group, topic, partition }),
        4 => (group.clone(), 0..PRODUCERS.len(), 0..TOPICS.len(), 0..3i32, 0..1_000i64)
            .prop_map(|(group, producer, topic, partition, offset)| Op::TxnCommit {
                group, producer, topic, partition, offset
            }),
        2 => (group, 0..PRODUCERS.len(), prop::bool::weighted(0.7))
            .prop_map(|(group, producer, commit)| Op::Marker { group, producer, commit }),
        3 => (0..5_000i64).prop_map(|ms| Op::Tick { ms }),
        1 => (0..200_000i64).prop_map(|ms| Op::Tick { ms }),
    ]
}

struct Model {
    h: Harness,
    /// Per group: the members the test formed it with, and their generation.
    members: Vec<(Vec<String>, i32)>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Commit {
                group,
                topic,
                partition,
                offset,
                retention,
            } => {
                let mut req =
                    commit_req(GROUPS[group], -1, "", &[(TOPICS[topic], partition, offset)]);
                if retention {
                    req.retention_time_ms = 60_000;
                }
                self.h.commit(req);
            }
            Op::MemberCommit {
                group,
                partition,
                offset,
            } => {
                let (members, generation) = &self.members[group];
                if let Some(m) = members.first() {
                    let req =
                        commit_req(GROUPS[group], *generation, m, &[("t", partition, offset)]);
                    self.h.commit(req);
                }
            }
            Op::Form { group, members } => {
                let empty = self.h.c.group(GROUPS[group]).is_none_or(|g| {
                    g.state() == crate::state::GroupState::Empty && g.members().is_empty()
                });
                if empty {
                    self.members[group] = self.h.stable_group(GROUPS[group], members);
                }
            }
            Op::LeaveAll { group } => {
                let (members, _) = std::mem::take(&mut self.members[group]);
                if !members.is_empty() {
                    let leaving: Vec<(&str, Option<&str>)> =
                        members.iter().map(|m| (m.as_str(), None)).collect();
                    self.h.leave(GROUPS[group], &leaving);
                }
            }
            Op::Delete { group } => {
                let req = DeleteGroupsRequest {
                    groups_names: vec![GROUPS[group].into()],
                };
                self.h.send(|c, id, now| c.delete_groups(id, req, now));
            }
            Op::DeleteOffset {
                group,
                topic,
                partition,
            } => {
                let req = OffsetDeleteRequest {
                    group_id: GROUPS[group].into(),
                    topics: vec![OffsetDeleteTopic {
                        name: TOPICS[topic].into(),
                        partition_indexes: vec![partition],
                    }],
                };
                self.h.send(|c, id, now| c.offset_delete(id, req, now));
            }
            Op::Tick { ms } => self.h.advance(ms),
            Op::TxnCommit {
                group,
                producer,
                topic,
                partition,
                offset,
            } => {
                let req = txn_req(
                    GROUPS[group],
                    PRODUCERS[producer],
                    -1,
                    "",
                    &[(TOPICS[topic], partition, offset)],
                );
                self.h.txn_commit(req);
            }
            Op::Marker {
                group,
                producer,
                commit,
            } => self.h.end_txn(GROUPS[group], PRODUCERS[producer], commit),
        }
    }
}

/// Everything a client or operator can see of the groups: OffsetFetch of every group,
/// DescribeGroups, ListGroups and the lag report, plus when each group counts as Empty
/// from (it decides when its offsets expire).
fn observe(h: &mut Harness) -> Vec<String> {
    let mut seen = vec![];
    let req = OffsetFetchRequest {
        groups: GROUPS
            .iter()
            .map(|g| OffsetFetchGroup {
                group_id: (*g).into(),
                topics: None,
            })
            .collect(),
        require_stable: false,
    };
    seen.push(format!("{:?}", h.fetch(req.clone())));
    let stable = OffsetFetchRequest {
        require_stable: true,
        ..req
    };
    seen.push(format!("{:?}", h.fetch(stable)));
    let req = DescribeGroupsRequest {
        groups: GROUPS.iter().map(|g| (*g).into()).collect(),
    };
    let id = h.send(|c, id, now| c.describe_groups(id, req, now));
    seen.push(format!("{:?}", h.answers[&id]));
    let req = ListGroupsRequest {
        states_filter: vec![],
    };
    let id = h.send(|c, id, now| c.list_groups(id, req, now));
    seen.push(format!("{:?}", h.answers[&id]));
    for g in GROUPS {
        seen.push(format!(
            "{g}: {:?}",
            h.c.lag(g, |_, p| Some(1_000 + i64::from(p)))
        ));
        seen.push(format!(
            "{g}: {:?}",
            h.c.group(g).map(|g| g.state_timestamp())
        ));
        for p in PRODUCERS {
            for t in TOPICS {
                for tp in 0..3 {
                    let pending = h.c.group(g).and_then(|g| g.pending_offset(p, t, tp));
                    if let Some(o) = pending {
                        seen.push(format!("{g} {p} {t}-{tp}: {o:?}"));
                    }
                }
            }
        }
    }
    for p in 0..h.c.config().offsets_topic_partitions {
        seen.push(format!("{p}: {:?}", h.c.open_transactions(p)));
    }
    seen
}

/// Every producer's marker on every partition: the open transactions end.
fn end_all(h: &mut Harness, commit: bool) {
    for p in 0..h.c.config().offsets_topic_partitions {
        for producer in PRODUCERS {
            h.marker(p, producer, commit);
        }
    }
}

/// A coordinator that replays exactly `log` and `markers`, as a broker does at start-up.
fn replayed(
    from: &Harness,
    log: Vec<crate::effects::OffsetsRecord>,
    markers: Vec<Marker>,
) -> Harness {
    let mut h = from.restart(config());
    h.log = log;
    h.markers = markers;
    h.restart(config())
}

fn snapshots(c: &GroupCoordinator) -> Vec<crate::effects::OffsetsRecord> {
    (0..c.config().offsets_topic_partitions)
        .flat_map(|p| {
            let records = c.snapshot(p);
            assert!(
                records
                    .iter()
                    .all(|r| r.partition == p && r.value.is_some())
            );
            records
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_snapshot_gives_the_state_of_the_whole_history(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        let mut model = Model {
            h: Harness::with_config(config()),
            members: vec![Default::default(); GROUPS.len()],
        };
        for op in &ops {
            model.apply(op);
        }
        let history = model.h.log.clone();
        let markers = model.h.markers.clone();
        let snapshot = snapshots(&model.h.c);
        let mut full = replayed(&model.h, history.clone(), markers.clone());
        let mut compacted = replayed(&model.h, snapshot.clone(), vec![]);
        let mut both = replayed(&model.h, [history, snapshot.clone()].concat(), markers);
        let expected = observe(&mut full);
        prop_assert_eq!(&observe(&mut compacted), &expected);
        prop_assert_eq!(&observe(&mut both), &expected);
        // A snapshot of the replayed snapshot is the same snapshot: nothing is lost or
        // invented by compacting twice.
        prop_assert_eq!(&snapshots(&compacted.c), &snapshot);
        // And they keep agreeing as time passes: offsets expire at the same moments.
        for h in [&mut full, &mut compacted, &mut both] {
            h.advance(RETENTION / 2);
        }
        let expected = observe(&mut full);
        prop_assert_eq!(&observe(&mut compacted), &expected);
        prop_assert_eq!(&observe(&mut both), &expected);
        // The markers of the transactions still open decide them the same way. Here they
        // come after time passed, so also after any expiry it held off.
        let mut aborted = [full.restart(config()), compacted.restart(config()), both.restart(config())];
        for h in [&mut full, &mut compacted, &mut both] {
            end_all(h, true);
        }
        let expected = observe(&mut full);
        prop_assert_eq!(&observe(&mut compacted), &expected);
        prop_assert_eq!(&observe(&mut both), &expected);
        for h in &mut aborted {
            end_all(h, false);
        }
        let [a_full, a_compacted, a_both] = &mut aborted;
        let expected = observe(a_full);
        prop_assert_eq!(&observe(a_compacted), &expected);
        prop_assert_eq!(&observe(a_both), &expected);
        for h in [&mut full, &mut compacted, &mut both] {
            h.advance(RETENTION);
        }
        let expected = observe(&mut full);
        prop_assert_eq!(&observe(&mut compacted), &expected);
        prop_assert_eq!(&observe(&mut both), &expected);
    }
}
