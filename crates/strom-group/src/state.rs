//! The states of a classic consumer group, with the names Kafka shows in DescribeGroups
//! and ListGroups.

use std::fmt;

/// Where a group is in its life cycle.
///
/// ```text
///          join                 all joined / timeout        leader's SyncGroup
///  Empty ────────▶ PreparingRebalance ────────▶ CompletingRebalance ────────▶ Stable
///    ▲                 ▲   │ nobody left                 │                    │
///    └─────────────────┼───┘                             │ join / leave /     │
///                      └─────────────────────────────────┴── member expiry ───┘
/// ```
/// `Dead` is only reported, for groups that do not exist (DescribeGroups of an unknown
/// group); a group that dies is removed from the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members. Offsets may still be committed (consumers using `assign()`).
    Empty,
    /// Waiting for members to (re)join; JoinGroups are parked until all known members
    /// rejoined or the rebalance timeout passed.
    PreparingRebalance,
    /// The generation is formed; waiting for the leader's SyncGroup with the assignment.
    CompletingRebalance,
    /// Every member has its assignment; heartbeats keep sessions alive.
    Stable,
    /// The group does not exist (deleted or expired).
    Dead,
}

impl GroupState {
    /// Every state, for parsing and tests.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name for the state, as clients and tools print it.
    pub const fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The state with this name, ignoring case (ListGroups' states filter is
    /// case-insensitive in Kafka).
    pub fn parse(name: &str) -> Option<GroupState> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for s in GroupState::ALL {
            assert_eq!(GroupState::parse(s.name()), Some(s));
            assert_eq!(GroupState::parse(&s.name().to_uppercase()), Some(s));
        }
        assert_eq!(GroupState::parse("stable"), Some(GroupState::Stable));
        assert_eq!(GroupState::parse("AwaitingSync"), None);
        assert_eq!(
            GroupState::CompletingRebalance.to_string(),
            "CompletingRebalance"
        );
    }
}
