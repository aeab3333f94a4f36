//! Strom's replication: every partition is a Raft group (raft-rs) whose Raft log is the
//! partition's segment log. Raft index = Kafka offset + 1, a batch of n records is n
//! entries of which only the first carries (and writes) bytes, leader epoch = term, high
//! watermark = commit index (docs/adr/0001-raft-offsets.md).
//!
//! - [`entry`]: batches as entries, raft's empty entry as a control batch.
//! - [`storage`]: raft's `Storage` over a `PartitionLog`, hard state in `raft-state`.
//! - [`replica`]: one group's state handling (no I/O besides its log), driven by a node
//!   driver or by the deterministic simulation.
//! - [`node`]: the driver of all groups of a node (tick thread, group commit, listeners).
//! - [`transport`]: batched messages to peer nodes over TCP.

// raft's protobuf types are built field by field after `default()`.
#![allow(clippy::field_reassign_with_default)]

pub mod entry;
pub mod error;
mod logger;
pub mod node;
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
