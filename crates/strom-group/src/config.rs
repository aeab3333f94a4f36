//! The coordinator's settings, named after the Kafka broker settings they imitate, with
//! Kafka's defaults.

/// Settings of a [`GroupCoordinator`](crate::GroupCoordinator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: how many partitions `__consumer_offsets` has. Decides
    /// which partition holds a group ([`partition_for`](crate::partition_for)), so it must
    /// not change once the topic exists. Kafka's default is 50.
    pub offsets_topic_partitions: i32,
    /// `group.min.session.timeout.ms`: shorter session timeouts are refused with
    /// INVALID_SESSION_TIMEOUT, so a client cannot make the coordinator expire it in a
    /// busy loop.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: longer session timeouts are refused, so a crashed
    /// consumer's partitions are not held forever.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, so a fleet starting together gets one rebalance instead of
    /// one per member. Extended by the same amount (up to the rebalance timeout) while new
    /// members keep arriving.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: members beyond this are refused with GROUP_MAX_SIZE_REACHED.
    pub max_group_size: usize,
    /// `offsets.retention.minutes` in milliseconds: committed offsets of a group without
    /// members are deleted this long after the group became empty (or after their commit,
    /// for groups that only commit). Kafka's default is 7 days.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often `tick` looks for expired offsets.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`: longer commit metadata strings are refused with
    /// OFFSET_METADATA_TOO_LARGE. Values above 32767 act as 32767, the most a record's
    /// string field can hold.
    pub max_offset_metadata_bytes: usize,
    /// How long a new member's first JoinGroup may wait for the rebalance before the member
    /// is dropped (Kafka's fixed 5 minutes): a client that gave up on a long rebalance and
    /// retried must not leave a ghost that the rebalance then waits for.
    pub new_member_join_timeout_ms: i64,
    /// Mixed into generated member ids, which must not repeat after a restart: an old
    /// client still holding an id must not be mistaken for a new member. The broker passes
    /// something unique per start (random bits or the start time in nanoseconds); tests
    /// pass a constant to stay deterministic.
    pub member_id_seed: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_topic_partitions: 50,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_group_size: i32::MAX as usize,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            max_offset_metadata_bytes: 4096,
            new_member_join_timeout_ms: 300_000,
            member_id_seed: 0,
        }
    }
}
