//! Choosing a group's protocol (for consumers, the partition assignor) from what its
//! members support, the way Kafka does: only protocols every member supports are
//! candidates, each member votes for its most preferred candidate, most votes win.

use std::collections::{BTreeMap, BTreeSet};

use crate::member::Member;

/// The protocols every member supports. Empty for no members.
pub(crate) fn candidates<'a>(members: &[&'a Member]) -> BTreeSet<&'a str> {
    let Some((first, rest)) = members.split_first() else {
        return BTreeSet::new();
    };
    first
        .protocols
        .iter()
        .map(|p| p.name.as_str())
        .filter(|name| rest.iter().all(|m| m.supports(name)))
        .collect()
}

/// The protocol for the next generation of `members` (given in join order), or `None`
/// when they have no protocol in common.
///
/// Kafka breaks ties between equally voted protocols arbitrarily (hash order); Strom
/// takes the tied protocol the earliest member prefers, so the choice is deterministic.
pub(crate) fn select(members: &[&Member]) -> Option<String> {
    let candidates = candidates(members);
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in members {
        if let Some(vote) = m.vote(&candidates) {
            *votes.entry(vote).or_default() += 1;
        }
    }
    let most = *votes.values().max()?;
    members
        .iter()
        .flat_map(|m| m.protocols.iter())
        .map(|p| p.name.as_str())
        .find(|name| votes.get(name) == Some(&most))
        .map(str::to_owned)
}

/// Whether a member joining with `protocol_type` and `protocols` can be in a group whose
/// current members are `members` (of type `group_type`): a first member needs a type and
/// at least one protocol; later ones need the group's type and one protocol that every
/// current member supports, so a protocol can still be chosen.
pub(crate) fn compatible(
    group_type: Option<&str>,
    members: &[&Member],
    protocol_type: &str,
    protocols: &[&str],
) -> bool {
    if members.is_empty() {
        return !protocol_type.is_empty() && !protocols.is_empty();
    }
    let common = candidates(members);
    group_type == Some(protocol_type) && protocols.iter().any(|p| common.contains(p))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::request::JoinGroupProtocol;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            session_timeout_ms: 0,
            protocols: protocols
                .iter()
                .map(|p| JoinGroupProtocol {
                    name: (*p).into(),
                    metadata: Bytes::new(),
                })
                .collect(),
            assignment: None,
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline: 0,
            join_seq: 0,
        }
    }

    #[test]
    fn only_common_protocols_are_candidates() {
        let a = member("a", &["range", "roundrobin", "sticky"]);
        let b = member("b", &["sticky", "range"]);
        let got: Vec<_> = candidates(&[&a, &b]).into_iter().collect();
        assert_eq!(got, ["range", "sticky"]);
        assert!(candidates(&[]).is_empty());
    }

    #[test]
    fn majority_of_preferences_wins() {
        // a prefers range, b and c prefer sticky: sticky has two votes.
        let a = member("a", &["range", "sticky"]);
        let b = member("b", &["sticky", "range"]);
        let c = member("c", &["sticky", "range"]);
        assert_eq!(select(&[&a, &b, &c]).as_deref(), Some("sticky"));
    }

    #[test]
    fn a_preferred_but_unsupported_protocol_gets_no_vote() {
        // a prefers roundrobin, which b lacks, so a votes for range.
        let a = member("a", &["roundrobin", "range"]);
        let b = member("b", &["range"]);
        assert_eq!(select(&[&a, &b]).as_deref(), Some("range"));
    }

    #[test]
    fn ties_go_to_the_earliest_members_preference() {
        let a = member("a", &["range", "sticky"]);
        let b = member("b", &["sticky", "range"]);
        assert_eq!(select(&[&a, &b]).as_deref(), Some("range"));
        assert_eq!(select(&[&b, &a]).as_deref(), Some("sticky"));
    }

    #[test]
    fn no_common_protocol_selects_nothing() {
        let a = member("a", &["range"]);
        let b = member("b", &["sticky"]);
        assert_eq!(select(&[&a, &b]), None);
        assert_eq!(select(&[]), None);
    }

    #[test]
    fn compatibility_rules() {
        // A first member needs a type and a protocol.
        assert!(compatible(None, &[], "consumer", &["range"]));
        assert!(!compatible(None, &[], "", &["range"]));
        assert!(!compatible(None, &[], "consumer", &[]));
        let a = member("a", &["range", "sticky"]);
        let b = member("b", &["sticky"]);
        let group = Some("consumer");
        assert!(compatible(group, &[&a, &b], "consumer", &["sticky"]));
        // range is not supported by b, so it cannot be chosen.
        assert!(!compatible(group, &[&a, &b], "consumer", &["range"]));
        assert!(!compatible(group, &[&a, &b], "connect", &["sticky"]));
    }
}
