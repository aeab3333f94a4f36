//! Strom's storage engine: a crash-safe, segmented log of Kafka RecordBatch v2 bytes.
//!
//! A [`PartitionLog`] is a directory of segments (`{base_offset:020}.log`) with sparse,
//! memory-mapped offset and time indexes beside each. Batches are stored exactly as
//! producers sent them, stamped with their base offset and leader epoch (fields outside
//! the CRC), and read back as [`FileSlice`]s: views of the files, not copies. The
//! [`LogManager`] owns the logs of a node, runs group commit (many logs' appends share one
//! fsync round), retention and file deletion off the caller's thread, and keeps thousands
//! of partitions within file-descriptor limits.
//!
//! Synchronous by design: no async runtime. The broker calls it from its own threads.

mod checkpoint;
mod config;
mod deleter;
pub mod disk;
mod error;
mod group_commit;
mod index;
mod log;
mod manager;
mod segment;
mod slice;
pub mod slot_file;

pub use config::{FlushPolicy, LogConfig};
pub use deleter::Deleter;
pub use error::{LogError, Result, out_of_files_hint};
pub use group_commit::{DurableCallback, FsyncObserver, GroupCommit};
pub use log::{
    AppendInfo, FlushPlan, PartitionLog, RecoveryReport, RetentionOutcome, TimestampOffset,
};
pub use manager::{LogManager, ManagerConfig, TopicPartition};
pub use slice::{FileSlice, ReadResult};
