//! One member of a group: what it joined with, its assignment, its session deadline and
//! the JoinGroup/SyncGroup it is waiting on.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::effects::RequestId;
use crate::records::MemberMetadataValue;
use crate::request::JoinGroupProtocol;

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub(crate) id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    /// In the member's order of preference, as it joined.
    pub(crate) protocols: Vec<JoinGroupProtocol>,
    /// `None` until the leader's SyncGroup of the current generation.
    pub(crate) assignment: Option<Bytes>,
    /// The parked JoinGroup, while the group prepares a rebalance.
    pub(crate) awaiting_join: Option<RequestId>,
    /// The parked SyncGroup, while the group waits for the leader's assignment.
    pub(crate) awaiting_sync: Option<RequestId>,
    /// Joined in the current rebalance for the first time. Such a member cannot heartbeat
    /// yet (it has no generation), so its parked JoinGroup is bounded by the coordinator's
    /// new-member timeout instead of being exempt from expiry.
    pub(crate) is_new: bool,
    /// When the session ends without another heartbeat (ms since the epoch).
    pub(crate) heartbeat_deadline: i64,
    /// Order of arrival in the group: the first joiner leads, and the leader sees the
    /// members in this order.
    pub(crate) join_seq: u64,
}

impl Member {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn client_host(&self) -> &str {
        &self.client_host
    }

    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.rebalance_timeout_ms
    }

    pub fn session_timeout_ms(&self) -> i32 {
        self.session_timeout_ms
    }

    pub fn protocols(&self) -> &[JoinGroupProtocol] {
        &self.protocols
    }

    /// The assignment of the current generation, once the leader sent it.
    pub fn assignment(&self) -> Option<&Bytes> {
        self.assignment.as_ref()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| &p.metadata)
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// Whether a JoinGroup carries exactly what the member joined with (same protocols,
    /// same order, same metadata). A rejoin that matches changes nothing, so a Stable
    /// group answers it without a rebalance.
    pub(crate) fn matches(&self, protocols: &[JoinGroupProtocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's vote among `candidates`: its most preferred candidate.
    pub(crate) fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// Restarts the session: the next heartbeat is due within the session timeout.
    pub(crate) fn touch(&mut self, now: i64) {
        self.heartbeat_deadline = now.saturating_add(i64::from(self.session_timeout_ms));
    }

    /// A member waiting in a JoinGroup (unless new) or a SyncGroup cannot heartbeat on that
    /// connection, so its session does not run out while it waits; the session restarts
    /// when the parked request is answered. Returns when the session ends otherwise.
    pub(crate) fn session_deadline(&self) -> Option<i64> {
        let waiting =
            (self.awaiting_join.is_some() && !self.is_new) || self.awaiting_sync.is_some();
        (!waiting).then_some(self.heartbeat_deadline)
    }

    pub(crate) fn session_expired(&self, now: i64) -> bool {
        self.session_deadline().is_some_and(|d| now >= d)
    }

    /// The member as stored in a group metadata record: its metadata for the group's
    /// protocol and its assignment.
    pub(crate) fn to_record(&self, protocol: Option<&str>) -> MemberMetadataValue {
        MemberMetadataValue {
            member_id: self.id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout: self.rebalance_timeout_ms,
            session_timeout: self.session_timeout_ms,
            subscription: protocol
                .and_then(|p| self.metadata(p))
                .cloned()
                .unwrap_or_default(),
            assignment: self.assignment.clone().unwrap_or_default(),
        }
    }
}

/// A member id as Kafka makes them, `{client id or instance id}-{uuid}`, except that the
/// "uuid" is the 128-bit number `seed << 64 | counter` in UUID notation: deterministic for
/// a given seed, and unique across restarts when the seed differs per start.
pub(crate) fn generate_member_id(prefix: &str, seed: u64, counter: u64) -> String {
    // Long client ids would make long member ids, which every record and response
    // carries; Kafka clients keep them short anyway.
    let prefix = crate::records::truncate_str(prefix, 255);
    let n = (u128::from(seed) << 64) | u128::from(counter);
    format!(
        "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (n >> 96) as u32,
        (n >> 80) as u16,
        (n >> 64) as u16,
        (n >> 48) as u16,
        n & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(name: &str, metadata: &'static [u8]) -> JoinGroupProtocol {
        JoinGroupProtocol {
            name: name.into(),
            metadata: Bytes::from_static(metadata),
        }
    }

    fn member() -> Member {
        Member {
            id: "m".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 100,
            protocols: vec![protocol("range", b"r"), protocol("roundrobin", b"rr")],
            assignment: None,
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline: 50,
            join_seq: 0,
        }
    }

    #[test]
    fn votes_for_its_most_preferred_candidate() {
        let m = member();
        let both: BTreeSet<&str> = ["roundrobin", "range"].into();
        assert_eq!(m.vote(&both), Some("range"));
        let rr: BTreeSet<&str> = ["roundrobin"].into();
        assert_eq!(m.vote(&rr), Some("roundrobin"));
        let none: BTreeSet<&str> = ["sticky"].into();
        assert_eq!(m.vote(&none), None);
    }

    #[test]
    fn matches_needs_same_order_and_metadata() {
        let m = member();
        assert!(m.matches(&[protocol("range", b"r"), protocol("roundrobin", b"rr")]));
        assert!(!m.matches(&[protocol("roundrobin", b"rr"), protocol("range", b"r")]));
        assert!(!m.matches(&[protocol("range", b"X"), protocol("roundrobin", b"rr")]));
        assert!(!m.matches(&[protocol("range", b"r")]));
        assert_eq!(&m.metadata("roundrobin").unwrap()[..], b"rr");
    }

    #[test]
    fn waiting_members_do_not_expire() {
        let mut m = member();
        assert!(m.session_expired(50));
        assert!(!m.session_expired(49));
        m.awaiting_sync = Some(RequestId(1));
        assert!(!m.session_expired(1_000));
        m.awaiting_sync = None;
        m.awaiting_join = Some(RequestId(2));
        assert!(!m.session_expired(1_000));
        // A new member's join is bounded by its deadline.
        m.is_new = true;
        assert!(m.session_expired(1_000));
        m.touch(1_000);
        assert_eq!(m.heartbeat_deadline, 1_100);
    }

    #[test]
    fn member_ids_are_unique_per_seed_and_counter() {
        let a = generate_member_id("client", 0xabcd, 1);
        assert_eq!(a, "client-00000000-0000-abcd-0000-000000000001");
        assert_ne!(a, generate_member_id("client", 0xabcd, 2));
        assert_ne!(a, generate_member_id("client", 0xabce, 1));
        let long = generate_member_id(&"x".repeat(1000), 1, 1);
        assert_eq!(long.len(), 255 + 37);
    }
}
