//! Committed offsets of a group and the rules for when they expire (KIP-211).

use std::collections::BTreeSet;

use crate::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use crate::records::OffsetCommitValue;
use crate::state::GroupState;

/// One partition's committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// `-1` when unknown.
    pub leader_epoch: i32,
    /// The client's string; `""` when it sent none.
    pub metadata: String,
    /// When the commit was made (ms since the epoch).
    pub commit_timestamp: i64,
    /// Set only by commits that asked for their own retention (OffsetCommit v2-v4):
    /// they expire at this time whatever the group does, as in Kafka.
    pub expire_timestamp: Option<i64>,
}

impl CommittedOffset {
    pub(crate) fn to_record(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp,
            expire_timestamp: self.expire_timestamp.unwrap_or(-1),
        }
    }

    pub(crate) fn from_record(v: OffsetCommitValue) -> Self {
        CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp: v.commit_timestamp,
            expire_timestamp: (v.expire_timestamp >= 0).then_some(v.expire_timestamp),
        }
    }
}

/// What offset expiry needs to know about a group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExpiryView<'a> {
    pub state: GroupState,
    pub protocol_type: Option<&'a str>,
    /// When the group became Empty, if known.
    pub state_timestamp: Option<i64>,
    /// The topics the members of a consumer group subscribe to, if known.
    pub subscribed_topics: Option<&'a BTreeSet<String>>,
}

/// Whether a committed offset of a group expires at `now`, by Kafka's rules:
/// - in an Empty group, offsets expire `retention_ms` after the group became Empty (or,
///   if that time is unknown, after their commit): a group that is gone for a while
///   loses its positions all at once, never piecemeal while consumers are away briefly;
/// - in a Stable consumer group that knows its subscriptions, offsets of topics no member
///   subscribes to expire `retention_ms` after their commit;
/// - a group that only ever committed (no protocol type) expires offsets by commit time;
/// - otherwise (rebalancing, or members of another protocol) nothing expires.
///
/// Where offsets may expire at all, one committed with its own retention (OffsetCommit
/// v2-v4) expires at its expire timestamp instead.
pub(crate) fn is_expired(
    group: ExpiryView<'_>,
    topic: &str,
    offset: &CommittedOffset,
    now: i64,
    retention_ms: i64,
) -> bool {
    let base = match (group.state, group.protocol_type) {
        (GroupState::Empty, Some(_)) => group.state_timestamp.unwrap_or(offset.commit_timestamp),
        (GroupState::Stable, Some(CONSUMER_PROTOCOL_TYPE)) => match group.subscribed_topics {
            Some(topics) if topics.contains(topic) => return false,
            Some(_) => offset.commit_timestamp,
            None => return false,
        },
        (_, None) => offset.commit_timestamp,
        _ => return false,
    };
    match offset.expire_timestamp {
        Some(at) => now >= at,
        None => now.saturating_sub(base) >= retention_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn offset(commit: i64, expire: Option<i64>) -> CommittedOffset {
        CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: commit,
            expire_timestamp: expire,
        }
    }

    fn view<'a>(
        state: GroupState,
        protocol_type: Option<&'a str>,
        state_timestamp: Option<i64>,
        subscribed: Option<&'a BTreeSet<String>>,
    ) -> ExpiryView<'a> {
        ExpiryView {
            state,
            protocol_type,
            state_timestamp,
            subscribed_topics: subscribed,
        }
    }

    #[test]
    fn empty_group_expires_from_when_it_became_empty() {
        let g = view(GroupState::Empty, Some("consumer"), Some(10 * DAY), None);
        let o = offset(0, None);
        assert!(!is_expired(g, "t", &o, 16 * DAY, 7 * DAY));
        assert!(is_expired(g, "t", &o, 17 * DAY, 7 * DAY));
        // Unknown state time: by commit time.
        let g = view(GroupState::Empty, Some("consumer"), None, None);
        assert!(is_expired(g, "t", &o, 7 * DAY, 7 * DAY));
    }

    #[test]
    fn simple_commit_groups_expire_by_commit_time() {
        let g = view(GroupState::Empty, None, Some(100 * DAY), None);
        assert!(is_expired(g, "t", &offset(DAY, None), 8 * DAY, 7 * DAY));
        assert!(!is_expired(
            g,
            "t",
            &offset(2 * DAY, None),
            8 * DAY,
            7 * DAY
        ));
    }

    #[test]
    fn stable_consumer_group_keeps_subscribed_topics() {
        let topics: BTreeSet<String> = ["kept".to_string()].into();
        let g = view(GroupState::Stable, Some("consumer"), Some(0), Some(&topics));
        let old = offset(0, None);
        assert!(!is_expired(g, "kept", &old, 100 * DAY, 7 * DAY));
        assert!(is_expired(g, "dropped", &old, 100 * DAY, 7 * DAY));
        // Without known subscriptions nothing expires.
        let g = view(GroupState::Stable, Some("consumer"), Some(0), None);
        assert!(!is_expired(g, "dropped", &old, 100 * DAY, 7 * DAY));
    }

    #[test]
    fn rebalancing_and_other_protocols_keep_offsets() {
        let old = offset(0, None);
        for state in [
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
        ] {
            let g = view(state, Some("consumer"), Some(0), None);
            assert!(!is_expired(g, "t", &old, 100 * DAY, 7 * DAY));
        }
        let g = view(GroupState::Stable, Some("connect"), Some(0), None);
        assert!(!is_expired(g, "t", &old, 100 * DAY, 7 * DAY));
    }

    #[test]
    fn explicit_expire_timestamp_wins() {
        let o = offset(0, Some(DAY));
        let g = view(GroupState::Empty, Some("consumer"), Some(0), None);
        assert!(!is_expired(g, "t", &o, DAY - 1, 7 * DAY));
        assert!(is_expired(g, "t", &o, DAY, 7 * DAY));
        // But not for a topic a live consumer group reads.
        let topics: BTreeSet<String> = ["t".to_string()].into();
        let g = view(GroupState::Stable, Some("consumer"), Some(0), Some(&topics));
        assert!(!is_expired(g, "t", &o, 2 * DAY, 7 * DAY));
    }

    #[test]
    fn record_conversion_round_trips() {
        for expire in [None, Some(5)] {
            let o = CommittedOffset {
                offset: 9,
                leader_epoch: 2,
                metadata: "m".into(),
                commit_timestamp: 3,
                expire_timestamp: expire,
            };
            assert_eq!(CommittedOffset::from_record(o.to_record()), o);
        }
    }
}
