//! Kafka's transaction coordinator as a deterministic state machine: InitProducerId (with
//! a transactional id), AddPartitionsToTxn (and its verify-only form, KIP-890 part 1),
//! AddOffsetsToTxn, EndTxn (transaction versions 1 and 2), DescribeTransactions and
//! ListTransactions, with each transactional id's state kept as records of the compacted
//! `__transaction_state` topic in Kafka's own formats (docs/adr/0006-transactions.md).
//!
//! **Architecture Invariant:** this crate does no I/O, reads no clock and allocates no
//! producer ids. Every call takes the time (`now`, ms since the epoch); handlers that may
//! need a producer id take the broker's allocator as a closure, called only when an id is
//! needed. Every call returns [`Effects`]: records for `__transaction_state`, responses
//! tagged with the [`RequestId`]s they answer, and [`MarkerWork`].
//!
//! How the broker drives it:
//! 1. For each `__transaction_state` partition it leads: `begin_load(p, leader_epoch)`,
//!    `replay` every record of the partition in offset order, `finish_load(p, now)`. On
//!    losing the leadership: `unload(p)`.
//! 2. For each request: translate it into this crate's request struct, call the handler
//!    with a fresh `RequestId`, and handle the returned `Effects`.
//! 3. Call `tick(now)` periodically (every ~100 ms, or at `next_deadline()`), and handle
//!    its `Effects` the same way.
//!
//! Handling `Effects`:
//! - `writes`: append each record to its partition through Raft. When it is committed
//!   call `write_completed(id, Ok(()), now)`; when the append fails,
//!   `write_completed(id, Err(code), now)`. The responses that waited for the record come
//!   back from that call. Until then the transactional id has a pending transition and
//!   concurrent requests get CONCURRENT_TRANSACTIONS, as in Kafka.
//! - `responses`: send each to the connection waiting on its `RequestId`.
//! - `markers`: write a COMMIT or ABORT control batch for the producer id and epoch to
//!   each partition (in-process or by WriteTxnMarkers to its leader), then report with
//!   `markers_written` (for the partitions done) or `markers_failed`; the coordinator
//!   hands out unreported work again after `marker_timeout_ms`. Once every partition has
//!   its marker the Complete record is written (another write).
//!
//! DescribeTransactions, ListTransactions and the verify-only AddPartitionsToTxn write
//! nothing and return their answer directly.

mod code;
mod config;
mod coordinator;
mod effects;
mod error;
mod metadata;
pub mod records;
mod request;
mod response;
mod state;

pub use code::from_append_error;
pub use config::TxnConfig;
pub use coordinator::{CONSUMER_OFFSETS_TOPIC, TransactionCoordinator};
pub use effects::{Effects, MarkerWork, RequestId, TransactionResult, TxnLogWrite, WriteId};
pub use error::TxnError;
pub use metadata::{
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TopicPartition, TransactionMetadata, is_epoch_exhausted,
};
pub use request::*;
pub use response::*;
pub use state::TransactionState;
pub use strom_codes::ErrorCode;
