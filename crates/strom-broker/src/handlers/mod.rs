//! Request handlers: one module per group of APIs, each turning a decoded request into
//! a response using the [`Broker`]'s operations. `dispatch` is the only entry point.

mod admin;
mod api_versions;
mod broker_configs;
mod configs;
mod delivery;
mod fetch;
mod group_admin;
mod group_offsets;
mod groups;
mod metadata;
mod offsets;
mod produce;
mod producer_id;
mod topic_partitions;
mod txn;
mod txn_admin;
mod txn_markers;
mod txn_offsets;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use strom_wire::Request;
use strom_wire::kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use strom_wire::kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

use crate::fetch_out::FetchOut;

/// An answer: a message body kafka-protocol encodes, or a Fetch answer whose records
/// the connection sends straight from the segment files.
#[derive(Debug)]
pub(crate) enum Response {
    Kind(ResponseKind),
    Fetch(FetchOut),
}

/// A response still being worked on (waiting for durability or new data).
pub(crate) type Pending = Pin<Box<dyn Future<Output = Response> + Send>>;

/// What the connection does with a request once it was handled.
pub(crate) enum Reply {
    /// Answer with this (boxed: responses are large, the other variants small).
    Now(Box<Response>),
    /// Answer with this when it completes; later requests' answers wait behind it.
    Later(Pending),
    /// Run this to its end before the connection handles its next request (its effects
    /// are ordered before the next request's), then go on with the reply it gives.
    First(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Close the connection (Produce with acks=0 that failed, as Kafka does, so the
    /// client notices).
    Close(String),
}

impl Reply {
    pub(crate) fn now(response: Response) -> Reply {
        Reply::Now(Box::new(response))
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(_) => f.write_str("Reply::Now"),
            Reply::Later(_) => f.write_str("Reply::Later"),
            Reply::First(_) => f.write_str("Reply::First"),
            Reply::Nothing => f.write_str("Reply::Nothing"),
            Reply::Close(why) => write!(f, "Reply::Close({why})"),
        }
    }
}

/// Handles one decoded request from the client at `peer`.
pub(crate) fn dispatch(broker: &Arc<Broker>, request: Request, peer: SocketAddr) -> Reply {
    let version = request.api_version();
    let client_id = || {
        request
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    };
    match request.body {
        RequestKind::ApiVersions(r) => Reply::now(Response::Kind(ResponseKind::ApiVersions(
            api_versions::answer(
                &r,
                version,
                broker.config().transaction_version,
                &broker.control().cluster_id(),
                broker.config().node_id,
            ),
        ))),
        RequestKind::Metadata(r) => metadata::metadata(broker, r, version),
        RequestKind::DescribeCluster(r) => Reply::now(Response::Kind(
            ResponseKind::DescribeCluster(metadata::describe_cluster(broker, r)),
        )),
        RequestKind::DescribeTopicPartitions(r) => {
            Reply::now(Response::Kind(ResponseKind::DescribeTopicPartitions(
                topic_partitions::describe_topic_partitions(broker, r),
            )))
        }
        RequestKind::Produce(r) => produce::produce(broker, r, version),
        RequestKind::Fetch(r) => fetch::fetch(broker, r, version),
        RequestKind::ListOffsets(r) => Reply::now(Response::Kind(ResponseKind::ListOffsets(
            offsets::list_offsets(broker, r, version),
        ))),
        RequestKind::OffsetForLeaderEpoch(r) => Reply::now(Response::Kind(
            ResponseKind::OffsetForLeaderEpoch(offsets::offset_for_leader_epoch(broker, r)),
        )),
        RequestKind::DeleteRecords(r) => Reply::now(Response::Kind(ResponseKind::DeleteRecords(
            offsets::delete_records(broker, r),
        ))),
        RequestKind::CreateTopics(r) => admin::create_topics(broker, r, version),
        RequestKind::DeleteTopics(r) => admin::delete_topics(broker, r),
        RequestKind::CreatePartitions(r) => admin::create_partitions(broker, r),
        RequestKind::DescribeConfigs(r) => Reply::now(Response::Kind(
            ResponseKind::DescribeConfigs(configs::describe_configs(broker, r)),
        )),
        RequestKind::AlterConfigs(r) => configs::alter_configs(broker, r),
        RequestKind::IncrementalAlterConfigs(r) => configs::incremental_alter_configs(broker, r),
        RequestKind::InitProducerId(r) => match r.transactional_id.as_ref() {
            Some(id) => txn::init_producer_id(broker, r.clone(), id.0.to_string(), version),
            None => Reply::now(Response::Kind(ResponseKind::InitProducerId(
                producer_id::init_producer_id(broker, r),
            ))),
        },
        RequestKind::AddPartitionsToTxn(r) => txn::add_partitions_to_txn(broker, r, version),
        RequestKind::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(broker, r, version),
        RequestKind::EndTxn(r) => txn::end_txn(broker, r, version),
        RequestKind::TxnOffsetCommit(r) => txn_offsets::txn_offset_commit(broker, r, version),
        RequestKind::WriteTxnMarkers(r) => txn_markers::write_txn_markers(broker, r),
        RequestKind::DescribeTransactions(r) => Reply::now(Response::Kind(
            ResponseKind::DescribeTransactions(txn_admin::describe_transactions(broker, r)),
        )),
        RequestKind::ListTransactions(r) => Reply::now(Response::Kind(
            ResponseKind::ListTransactions(txn_admin::list_transactions(broker, r, version)),
        )),
        RequestKind::DescribeProducers(r) => Reply::now(Response::Kind(
            ResponseKind::DescribeProducers(txn_admin::describe_producers(broker, r)),
        )),
        RequestKind::FindCoordinator(r) => Reply::now(Response::Kind(
            ResponseKind::FindCoordinator(metadata::find_coordinator(broker, r, version)),
        )),
        RequestKind::JoinGroup(r) => groups::join_group(broker, r, version, client_id(), peer),
        RequestKind::SyncGroup(r) => groups::sync_group(broker, r),
        RequestKind::Heartbeat(r) => groups::heartbeat(broker, r),
        RequestKind::LeaveGroup(r) => groups::leave_group(broker, r, version),
        RequestKind::OffsetCommit(r) => group_offsets::offset_commit(broker, r, version),
        RequestKind::OffsetFetch(r) => group_offsets::offset_fetch(broker, r, version),
        RequestKind::OffsetDelete(r) => group_offsets::offset_delete(broker, r),
        RequestKind::DescribeGroups(r) => group_admin::describe_groups(broker, r, version),
        RequestKind::ListGroups(r) => group_admin::list_groups(broker, r),
        RequestKind::DeleteGroups(r) => group_admin::delete_groups(broker, r),
        _ => Reply::Close(format!("no handler for {:?}", request.api_key)),
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_wire::kafka_protocol::messages::*;

    fn default_request(key: ApiKey) -> RequestKind {
        match key {
            ApiKey::Produce => RequestKind::Produce(Default::default()),
            ApiKey::Fetch => RequestKind::Fetch(Default::default()),
            ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
            ApiKey::Metadata => RequestKind::Metadata(Default::default()),
            ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
            ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
            ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
            ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
            ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
            ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
            ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
            ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
            ApiKey::IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(Default::default())
            }
            ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
            ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
            ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
            ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
            ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
            ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
            ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
            ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
            ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
            ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
            ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(Default::default()),
            ApiKey::EndTxn => RequestKind::EndTxn(Default::default()),
            ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
            ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(Default::default()),
            ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
            ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
            ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
            ApiKey::DescribeTopicPartitions => {
                RequestKind::DescribeTopicPartitions(Default::default())
            }
            other => panic!("{other:?} is advertised but this test cannot build it: add it here"),
        }
    }

    /// An API in the advertised table without a handler would make clients use something
    /// the broker then refuses by closing the connection: a defect.
    #[test]
    fn every_advertised_api_has_a_handler() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The broker's tasks (group commits) run on the runtime it opens in.
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[]);
        for range in strom_wire::SUPPORTED_APIS {
            // The lowest version served (Produce v0-v2 are advertised, never served) and
            // the highest: the legacy encodings of strom-wire are exercised too.
            let lowest = if range.key == ApiKey::Produce {
                strom_wire::PRODUCE_MIN_USABLE_VERSION
            } else {
                range.min
            };
            for version in [lowest, range.max] {
                let request = strom_wire::Request {
                    api_key: range.key,
                    header: RequestHeader::default()
                        .with_request_api_key(range.key as i16)
                        .with_request_api_version(version),
                    body: default_request(range.key),
                };
                let peer = "127.0.0.1:1".parse().unwrap();
                let mut reply = rt.block_on(async { dispatch(&broker, request, peer) });
                while let Reply::First(first) = reply {
                    reply = rt.block_on(first);
                }
                let response = match reply {
                    Reply::Close(why) => {
                        panic!("{:?} v{version} closes the connection: {why}", range.key)
                    }
                    Reply::Nothing => continue,
                    Reply::Now(r) => *r,
                    Reply::Later(f) => rt.block_on(f),
                    Reply::First(_) => unreachable!("run above"),
                };
                if let Response::Kind(kind) = response {
                    strom_wire::encode_response(1, version, &kind)
                        .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", range.key));
                }
            }
        }
        broker.close().unwrap();
    }
}
