//! The records of `__transaction_state`, in Kafka's byte layout: a [`TransactionLogKey`]
//! (version 0, the transactional id) and a [`TransactionLogValue`] (version 0, or the
//! flexible version 1 that this coordinator writes). Key and value each start with their
//! `int16` version, as all of Kafka's coordinator records do; a null value is a tombstone.

mod codec;
mod key;
mod value;

pub use key::{TRANSACTION_LOG_KEY_VERSION, TransactionLogKey};
pub use value::{PartitionsSchema, TRANSACTION_LOG_VALUE_VERSION, TransactionLogValue};
