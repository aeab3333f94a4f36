//! Kafka's classic consumer-group coordinator as a deterministic state machine: JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups,
//! ListGroups, DeleteGroups, OffsetDelete and TxnOffsetCommit, with committed offsets and
//! group metadata kept as records of the compacted `__consumer_offsets` topic in Kafka's
//! own formats.
//!
//! **Architecture Invariant:** this crate does no I/O and reads no clock. Every call
//! takes the time (`now`, ms since the epoch) and returns [`Effects`]: records for the
//! broker to append to `__consumer_offsets`, and responses tagged with the
//! [`RequestId`]s they answer. JoinGroup and SyncGroup may be answered by a later call or
//! by [`GroupCoordinator::tick`]. At start-up the broker feeds the topic's records back
//! through [`GroupCoordinator::replay`].
//!
//! How the broker drives it:
//! 1. For each `__consumer_offsets` partition it leads: `begin_load(p)`, `replay` every
//!    record of the partition in offset order (records of transactional batches through
//!    `replay_transactional`, control batches through `replay_marker`),
//!    `finish_load(p, now)`.
//! 2. For each group request: translate it into this crate's request struct, call the
//!    handler with a fresh `RequestId`, and handle the returned `Effects`.
//! 3. Once it has appended a transaction's COMMIT or ABORT marker to a partition, call
//!    `complete_transaction` (TxnOffsetCommits wait for it: see `txn.rs`).
//! 4. Call `tick(now)` periodically (every ~100 ms, or at `next_deadline()`), and handle
//!    its `Effects` the same way.
//!
//! Handling `Effects`: append `records` to their partitions (those with a `transaction` in
//! transactional batches of that producer), wait until they are durable, then send each
//! response to the connection waiting on its `RequestId`. Responses of
//! later calls may rely on records of earlier calls (a follower's SyncGroup answered from
//! the assignment the leader's call recorded), so keep the order: never send a response
//! before the records of all earlier `Effects` are durable.

mod config;
mod consumer_protocol;
mod context;
mod coordinator;
mod effects;
mod error;
mod group;
mod lag;
mod member;
mod offsets;
mod partition;
mod protocol;
mod rebalance;
pub mod records;
mod request;
mod response;
mod state;
mod timers;
mod txn;

pub use config::GroupConfig;
pub use consumer_protocol::{
    Assignment, CONSUMER_PROTOCOL_TYPE, CONSUMER_PROTOCOL_VERSION, Subscription, TopicPartitions,
    assigned_partitions, subscribed_topics,
};
pub use coordinator::GroupCoordinator;
pub use effects::{Effects, OffsetsRecord, ProducerRef, RequestId};
pub use error::GroupError;
pub use group::Group;
pub use lag::{PartitionLag, group_lag};
pub use member::Member;
pub use offsets::CommittedOffset;
pub use partition::{java_string_hash, partition_for};
pub use request::*;
pub use response::*;
pub use state::GroupState;
