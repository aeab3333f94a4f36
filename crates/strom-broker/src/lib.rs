//! The Strom broker: a tokio server that speaks the Kafka protocol over the storage
//! engine, with every partition replicated by Raft (`strom-raft`). `server::run` is the
//! entry point for `strom serve` and for tests.
//!
//! **Architecture Invariant:** only this crate knows sockets; the layers below it
//! (`strom-wire`, `strom-log`) are called with bytes and return bytes or file slices.

pub mod broker;
mod budget;
pub mod cluster;
pub mod config;
mod connection;
mod control;
pub mod errors;
mod fetch_out;
mod frames;
pub mod groups;
mod handlers;
pub mod http;
mod internal_batches;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod node;
mod partition_dirs;
pub mod partitions;
pub mod producers;
pub mod record_check;
mod registry;
mod sendfile;
pub mod server;
#[cfg(test)]
mod test_broker;
mod ticker;
pub mod topics;
pub mod txns;

pub use broker::Broker;
pub use config::{BrokerConfig, RawSettings, SETTINGS};
pub use server::{run, run_with_metrics};
