//! Consumer lag: how far each partition's committed offset is behind the end of the log.
//! The coordinator knows the committed offsets (and, for consumer groups, who is assigned
//! what); the caller knows the log end offsets.

use std::collections::BTreeMap;

use crate::consumer_protocol::{CONSUMER_PROTOCOL_TYPE, assigned_partitions};
use crate::group::Group;
use crate::state::GroupState;

/// One partition of a group's lag report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The member a Stable consumer group assigned the partition to.
    pub member_id: Option<String>,
    /// `None` when the group has not committed this partition (it is assigned but was
    /// never committed).
    pub committed_offset: Option<i64>,
    /// `None` when the caller does not know the partition (deleted topic).
    pub end_offset: Option<i64>,
    /// `end_offset - committed_offset`, never negative (after truncation or retention the
    /// commit may lie past the end); `None` when either is unknown.
    pub lag: Option<i64>,
}

/// The lag of every partition the group committed or, for a Stable consumer group, has
/// assigned, by topic and partition. `end_offset(topic, partition)` gives the log end
/// offset (the high watermark: what a consumer can reach).
pub fn group_lag(
    group: &Group,
    mut end_offset: impl FnMut(&str, i32) -> Option<i64>,
) -> Vec<PartitionLag> {
    let mut rows: BTreeMap<(String, i32), (Option<String>, Option<i64>)> = group
        .offsets()
        .iter()
        .map(|(k, o)| (k.clone(), (None, Some(o.offset))))
        .collect();
    let consumer = group.protocol_type() == Some(CONSUMER_PROTOCOL_TYPE);
    if consumer && group.state() == GroupState::Stable {
        for m in group.members() {
            // An assignment a custom assignor wrote in another format is simply not shown.
            let Some(parts) = m.assignment().and_then(|a| assigned_partitions(a).ok()) else {
                continue;
            };
            for key in parts {
                rows.entry(key).or_insert((None, None)).0 = Some(m.id().to_string());
            }
        }
    }
    rows.into_iter()
        .map(|((topic, partition), (member_id, committed))| {
            let end = end_offset(&topic, partition);
            let lag = match (committed, end) {
                (Some(c), Some(e)) => Some(e.saturating_sub(c).max(0)),
                _ => None,
            };
            PartitionLag {
                topic,
                partition,
                member_id,
                committed_offset: committed,
                end_offset: end,
                lag,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use strom_codes::ErrorCode;

    use crate::consumer_protocol::encode;
    use crate::coordinator::harness::*;
    use crate::request::SyncGroupAssignment;

    #[test]
    fn lag_per_partition_with_assignments_and_commits() {
        let mut h = Harness::new();
        let (a, ja) = h.join_new(join_req("g", "a"));
        let (b, jb) = h.join_new(join_req("g", "b"));
        h.advance(i64::from(INITIAL_DELAY) * 2);
        let generation = h.join_answer(ja).generation_id;
        assert!(h.answered(jb));
        let mut req = sync_req("g", &a, generation, &[]);
        req.assignments = vec![
            SyncGroupAssignment {
                member_id: a.clone(),
                assignment: encode::assignment(&[("t", &[0, 1])]),
            },
            SyncGroupAssignment {
                member_id: b.clone(),
                assignment: encode::assignment(&[("t", &[2])]),
            },
        ];
        let s = h.send(|c, id, now| c.sync_group(id, req, now));
        assert_eq!(h.sync_answer(s).error, ErrorCode::None);
        h.commit(commit_req(
            "g",
            generation,
            &a,
            &[("t", 0, 90), ("t", 1, 120)],
        ));
        // A partition committed once but no longer assigned.
        h.commit(commit_req("g", generation, &a, &[("old", 0, 5)]));

        let ends: HashMap<(&str, i32), i64> =
            [(("t", 0), 100), (("t", 1), 110), (("t", 2), 50)].into();
        let rows = h.c.lag("g", |t, p| ends.get(&(t, p)).copied()).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.topic.as_str(),
                    r.partition,
                    r.member_id.as_deref(),
                    r.committed_offset,
                    r.end_offset,
                    r.lag,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("old", 0, None, Some(5), None, None),
                ("t", 0, Some(a.as_str()), Some(90), Some(100), Some(10)),
                // Committed past the end (the log was truncated): no negative lag.
                ("t", 1, Some(a.as_str()), Some(120), Some(110), Some(0)),
                // Assigned, never committed.
                ("t", 2, Some(b.as_str()), None, Some(50), None),
            ]
        );
        assert!(h.c.lag("unknown", |_, _| None).is_none());
    }

    #[test]
    fn lag_of_a_group_that_only_commits() {
        let mut h = Harness::new();
        h.commit(commit_req("s", -1, "", &[("t", 0, 7)]));
        let rows = h.c.lag("s", |_, _| Some(10)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].lag, Some(3));
        assert_eq!(rows[0].member_id, None);
    }
}
