//! Strom's replication: every partition is a Raft group (raft-rs) whose Raft log is the
//! partition's segment log. One entry per record batch, Kafka offsets dense from 0;
//! each leader's empty entry takes no offset and is kept in the group's epochs; leader
//! epoch = term; high watermark = the offset after the committed entries
//! (docs/adr/0005-kafka-offsets.md).
//!
//! - [`entry`]: batches as entries.
//! - [`offsets`]: where each Raft index sits among Kafka offsets (epochs, anchors, walks).
//! - [`storage`]: raft's `Storage` over a `PartitionLog`; hard state and epochs in
//!   `raft-state`, walk anchors in `raft-anchors`.
//! - [`replica`]: one group's state handling (no I/O besides its log), driven by a node
//!   driver or by the deterministic simulation.
//! - [`node`]: the driver of all groups of a node (tick thread, group commit, listeners).
//! - [`transport`]: batched messages to peer nodes over TCP.

// raft's protobuf types are built field by field after `default()`.
#![allow(clippy::field_reassign_with_default)]

pub mod anchors;
pub mod entry;
pub mod error;
mod logger;
pub mod node;
pub mod offsets;
pub mod replica;
pub mod state_file;
pub mod storage;
pub mod transport;

pub use error::{RaftError, Result};
pub use node::{GroupListener, GroupStatus, RaftNode, Transport};
pub use raft;
pub use raft::eraftpb::Message;
pub use replica::{Outbox, Proposed, Replica, ReplicaConfig, Waiter};
pub use storage::{LogRef, LogStorage};
pub use transport::{PeerTransport, serve_peers};
