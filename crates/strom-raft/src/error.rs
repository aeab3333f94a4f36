//! Errors of the replication layer.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RaftError {
    #[error("{path}: {source}{}", strom_log::out_of_files_hint(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] strom_log::LogError),
    #[error(transparent)]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Batch(#[from] strom_batch::BatchError),
    #[error("a group has at most 8 voters, not {0}")]
    TooManyVoters(usize),
    #[error("this replica is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the proposal was dropped (too much uncommitted data or a leader change)")]
    Dropped,
    #[error("the log of {0} is closed or deleted")]
    LogGone(String),
    #[error("entry {index} does not fit the log: {reason}")]
    BadEntry { index: u64, reason: String },
    /// The group's replica on this node stopped after a storage error and is being
    /// recovered (its log cut back to what was durable and the group restarted).
    #[error("the replica of {tp} is offline after a storage error: {cause}")]
    Offline { tp: String, cause: String },
    /// A partition directory written by an older, incompatible Strom.
    #[error(
        "{} was written by an older Strom (partition format {version}: offsets from 1, one Raft \
         entry per offset, docs/adr/0001-raft-offsets.md); this version numbers offsets from 0 \
         as Kafka does (format 2, docs/adr/0005-kafka-offsets.md) and cannot read it. Start \
         `strom serve` with an empty data directory (move this one aside); to keep its data, \
         consume it with the older version and produce it again",
        dir.display()
    )]
    OldFormat { dir: PathBuf, version: u16 },
}

impl RaftError {
    pub fn io(path: &Path, source: std::io::Error) -> RaftError {
        RaftError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = RaftError> = std::result::Result<T, E>;
