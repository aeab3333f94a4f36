//! The one error code a request is counted under: its response's top-level error code
//! when that is not NONE, otherwise the first error code other than NONE found in the
//! response's per-topic, per-partition, per-group or per-resource results (in response
//! order), otherwise NONE. So `strom_requests_total` counts every request exactly once,
//! and a request that failed for one of its partitions is not counted as a success.

use strom_wire::kafka_protocol::messages::ResponseKind;

use crate::fetch_out::FetchOut;

/// The code a Fetch answer is counted under (see the module documentation).
pub fn fetch_error(out: &FetchOut) -> i16 {
    first_error(
        out.error_code,
        out.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
    )
}

/// The code a response is counted under (see the module documentation).
pub fn response_error(kind: &ResponseKind) -> i16 {
    use ResponseKind as K;
    match kind {
        K::Produce(r) => first_error(
            0,
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        ),
        K::Fetch(r) => first_error(
            r.error_code,
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::ListOffsets(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::Metadata(r) => first_error(
            r.error_code,
            r.topics.iter().flat_map(|t| {
                std::iter::once(t.error_code).chain(t.partitions.iter().map(|p| p.error_code))
            }),
        ),
        K::OffsetCommit(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::OffsetFetch(r) => first_error(
            r.error_code,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .chain(r.groups.iter().flat_map(|g| {
                    std::iter::once(g.error_code).chain(
                        g.topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    )
                })),
        ),
        K::FindCoordinator(r) => {
            first_error(r.error_code, r.coordinators.iter().map(|c| c.error_code))
        }
        K::JoinGroup(r) => r.error_code,
        K::Heartbeat(r) => r.error_code,
        K::LeaveGroup(r) => first_error(r.error_code, r.members.iter().map(|m| m.error_code)),
        K::SyncGroup(r) => r.error_code,
        K::DescribeGroups(r) => first_error(0, r.groups.iter().map(|g| g.error_code)),
        K::ListGroups(r) => r.error_code,
        K::ApiVersions(r) => r.error_code,
        K::CreateTopics(r) => first_error(0, r.topics.iter().map(|t| t.error_code)),
        K::DeleteTopics(r) => first_error(0, r.responses.iter().map(|t| t.error_code)),
        K::DeleteRecords(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::InitProducerId(r) => r.error_code,
        K::OffsetForLeaderEpoch(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::DescribeConfigs(r) => first_error(0, r.results.iter().map(|x| x.error_code)),
        K::AlterConfigs(r) => first_error(0, r.responses.iter().map(|x| x.error_code)),
        K::CreatePartitions(r) => first_error(0, r.results.iter().map(|x| x.error_code)),
        K::DeleteGroups(r) => first_error(0, r.results.iter().map(|x| x.error_code)),
        K::IncrementalAlterConfigs(r) => first_error(0, r.responses.iter().map(|x| x.error_code)),
        K::OffsetDelete(r) => first_error(
            r.error_code,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::DescribeCluster(r) => r.error_code,
        K::DescribeTopicPartitions(r) => first_error(0, r.topics.iter().map(|t| t.error_code)),
        K::AddPartitionsToTxn(r) => first_error(
            r.error_code,
            r.results_by_topic_v3_and_below
                .iter()
                .chain(
                    r.results_by_transaction
                        .iter()
                        .flat_map(|t| &t.topic_results),
                )
                .flat_map(|t| {
                    t.results_by_partition
                        .iter()
                        .map(|p| p.partition_error_code)
                }),
        ),
        K::AddOffsetsToTxn(r) => r.error_code,
        K::EndTxn(r) => r.error_code,
        K::TxnOffsetCommit(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        K::WriteTxnMarkers(r) => first_error(
            0,
            r.markers.iter().flat_map(|m| {
                m.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            }),
        ),
        K::DescribeTransactions(r) => {
            first_error(0, r.transaction_states.iter().map(|t| t.error_code))
        }
        K::ListTransactions(r) => r.error_code,
        K::DescribeProducers(r) => first_error(
            0,
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        // Strom answers no other API (handlers::dispatch closes the connection instead);
        // `apis_with_a_top_level_error_code_report_it` keeps this list whole.
        _ => 0,
    }
}

fn first_error(top: i16, nested: impl IntoIterator<Item = i16>) -> i16 {
    if top != 0 {
        return top;
    }
    nested.into_iter().find(|&c| c != 0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use strom_wire::ErrorCode;
    use strom_wire::kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use strom_wire::kafka_protocol::messages::{
        EndTxnResponse, HeartbeatResponse, ProduceResponse,
    };

    use super::*;

    #[test]
    fn top_level_first_then_the_first_nested_error() {
        let part =
            |code: ErrorCode| PartitionProduceResponse::default().with_error_code(code.code());
        let produce = |parts: Vec<PartitionProduceResponse>| {
            ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
                TopicProduceResponse::default().with_partition_responses(parts),
            ]))
        };
        assert_eq!(
            response_error(&produce(vec![part(ErrorCode::None), part(ErrorCode::None)])),
            0
        );
        assert_eq!(
            response_error(&produce(vec![
                part(ErrorCode::None),
                part(ErrorCode::NotLeaderOrFollower),
                part(ErrorCode::CorruptMessage),
            ])),
            ErrorCode::NotLeaderOrFollower.code()
        );
        let hb =
            HeartbeatResponse::default().with_error_code(ErrorCode::RebalanceInProgress.code());
        assert_eq!(
            response_error(&ResponseKind::Heartbeat(hb)),
            ErrorCode::RebalanceInProgress.code()
        );
        assert_eq!(first_error(5, [3]), 5);
    }

    /// Every served API with a top-level error code reports it when it is set:
    /// a served API missing from `response_error` would log and count failures as NONE.
    #[test]
    fn apis_with_a_top_level_error_code_report_it() {
        assert_eq!(
            response_error(&ResponseKind::EndTxn(
                EndTxnResponse::default().with_error_code(ErrorCode::ProducerFenced.code())
            )),
            ErrorCode::ProducerFenced.code()
        );
        // APIs whose errors sit only in nested arrays answer NONE for an empty response;
        // the ones with a top-level code must report it.
        use strom_wire::kafka_protocol::messages as m;
        let top_level: Vec<ResponseKind> = vec![
            m::ApiVersionsResponse::default().with_error_code(42).into(),
            m::FindCoordinatorResponse::default()
                .with_error_code(42)
                .into(),
            m::JoinGroupResponse::default().with_error_code(42).into(),
            m::HeartbeatResponse::default().with_error_code(42).into(),
            m::LeaveGroupResponse::default().with_error_code(42).into(),
            m::SyncGroupResponse::default().with_error_code(42).into(),
            m::ListGroupsResponse::default().with_error_code(42).into(),
            m::InitProducerIdResponse::default()
                .with_error_code(42)
                .into(),
            m::DescribeClusterResponse::default()
                .with_error_code(42)
                .into(),
            m::AddPartitionsToTxnResponse::default()
                .with_error_code(42)
                .into(),
            m::AddOffsetsToTxnResponse::default()
                .with_error_code(42)
                .into(),
            m::EndTxnResponse::default().with_error_code(42).into(),
            m::ListTransactionsResponse::default()
                .with_error_code(42)
                .into(),
            m::OffsetFetchResponse::default().with_error_code(42).into(),
            m::OffsetDeleteResponse::default()
                .with_error_code(42)
                .into(),
            m::MetadataResponse::default().with_error_code(42).into(),
            m::FetchResponse::default().with_error_code(42).into(),
        ];
        for kind in &top_level {
            assert_eq!(response_error(kind), 42, "{kind:?}");
        }
    }
}
