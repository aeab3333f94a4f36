//! Strom's own async Kafka client, on strom-wire's codec and tokio.
//!
//! Layers, bottom up:
//! - [`Connection`] (`connection.rs`): one socket to one broker; requests framed with
//!   correlation ids, pipelined, versions negotiated with ApiVersions.
//! - [`Client`] (`client.rs`): bootstrap, one connection per broker, the metadata cache
//!   (partition leaders, group coordinators) and retries after a refresh when
//!   leadership or coordination moves.
//! - Operations as `Client` methods, one file per API group: `admin.rs` (topics and
//!   configs), `produce.rs`, `fetch.rs`, `offsets.rs` (ListOffsets), `groups.rs`
//!   (list, describe, committed offsets, commit, delete), and `consumer.rs`, a member of
//!   a consumer group with the range assignor (`consumer_protocol.rs`).
//! - `records.rs` and `compression.rs`: record batches built with strom-batch's
//!   `RecordBatchBuilder`, compressed with gzip, snappy, lz4 or zstd (strom-batch's codecs).
//!
//! Every failure is a [`ClientError`]; a broker's error code is reported with Kafka's
//! name for it (`UNKNOWN_TOPIC_OR_PARTITION`).
//!
//! **Architecture Invariant:** the client never assumes a single broker: every
//! partition operation goes to that partition's leader and every group operation to the
//! group's coordinator, as the metadata says.

mod admin;
mod client;
mod compression;
mod connection;
mod consumer;
mod consumer_protocol;
mod error;
mod fetch;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod records;
mod transactions;

pub use admin::{ConfigChange, ConfigEntry, NewTopic};
pub use client::{Client, ClientConfig};
pub use compression::{Codec, compress, decompress};
pub use connection::Connection;
pub use consumer::{GroupConfig, GroupConsumer, RANGE_ASSIGNOR};
pub use consumer_protocol::{
    CONSUMER_PROTOCOL_TYPE, decode_assignment, decode_subscription, encode_assignment,
    encode_subscription, range_assign,
};
pub use error::{ClientError, error_name, is_retriable_code};
pub use fetch::{FetchOptions, FetchedBatches, FetchedPartition};
pub use groups::{GroupDescription, GroupListing, GroupMember};
pub use metadata::{BrokerInfo, Metadata, PartitionInfo, TopicInfo};
pub use offsets::OffsetSpec;
pub use produce::{Acks, ProduceOptions, Produced, now_ms};
pub use records::{ProduceRecord, build_batch, decode_batches, for_each_record};
pub use strom_batch::Record;
pub use transactions::{ProducerDescription, TransactionDescription, TransactionListing};
