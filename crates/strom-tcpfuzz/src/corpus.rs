//! The real requests the fuzzer starts from: one well-formed request of every API Strom
//! advertises (strom-wire's `SUPPORTED_APIS`), built with kafka-protocol's types about the
//! topic, group and producer of one sequence, so that a sequence's requests refer to each
//! other the way a client's do (create a topic, produce to it, fetch it, commit offsets of
//! it, delete it).

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};

use crate::batch;
use crate::message::{self, Message};
use crate::rng::Rng;

/// What the requests of one sequence are about.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub member: String,
    pub producer_id: i64,
    /// How often top-level array entries are repeated (1: as a client would send them).
    /// Larger values are the "array duplicated" mutation: the same topic named many
    /// times in one Metadata request, the same partition produced twice, ...
    pub repeat: usize,
    /// The request sets the sequence up (its opening CreateTopics): it really creates,
    /// never only validates.
    pub setup: bool,
}

impl Ctx {
    pub fn new(rng: &mut Rng, tag: u64) -> Self {
        Ctx {
            topic: format!("fz-{tag:08x}"),
            partitions: rng.range(1, 4) as i32,
            group: format!("fzg-{:x}", tag & 0xff),
            member: String::new(),
            producer_id: rng.range(-1, 3),
            repeat: 1,
            setup: false,
        }
    }
}

fn s(v: impl AsRef<str>) -> StrBytes {
    StrBytes::from_string(v.as_ref().to_string())
}

fn topic(ctx: &Ctx) -> TopicName {
    TopicName(s(&ctx.topic))
}

fn group(ctx: &Ctx) -> GroupId {
    GroupId(s(&ctx.group))
}

/// The sequence's transactional id.
fn txn_id(ctx: &Ctx) -> TransactionalId {
    TransactionalId(s(format!("{}-txn", ctx.group)))
}

fn rep<T: Clone>(ctx: &Ctx, item: T) -> Vec<T> {
    vec![item; ctx.repeat.max(1)]
}

/// The versions of an advertised api that [`build`] can write: kafka-protocol's, which
/// start above Strom's floor for Produce v0-v2 (message sets, refused anyway) and for the
/// versions Kafka 4 removed that strom-wire reads by hand. Sequences reach those through
/// the api_version mutation, with the bodies of neighbouring versions.
pub fn buildable_versions(range: &strom_wire::ApiRange) -> std::ops::RangeInclusive<i16> {
    let floor = range
        .key
        .valid_versions()
        .min
        .max(if range.key == ApiKey::Produce {
            strom_wire::PRODUCE_MIN_USABLE_VERSION
        } else {
            0
        });
    // Versions above kafka-protocol's (ApiVersions v5, read by strom-wire's `newer`) are
    // not built here: kafka-protocol cannot encode them.
    range.min.max(floor)..=range.max.min(range.key.valid_versions().max)
}

fn enc<R: Request>(req: R, version: i16, corr: i32) -> anyhow::Result<Message> {
    message::encode(&req, version, corr)
}

/// Builds a valid request of `api` at `version` about `ctx`.
pub fn build(
    api: ApiKey,
    version: i16,
    corr: i32,
    ctx: &Ctx,
    rng: &mut Rng,
) -> anyhow::Result<Message> {
    let part = rng.range(0, (ctx.partitions - 1).max(0) as i64) as i32;
    match api {
        ApiKey::Produce => {
            let producer = (ctx.producer_id >= 0 && rng.chance(50))
                .then(|| (ctx.producer_id, 0i16, rng.range(0, 3) as i32));
            let records = batch::valid_batch(rng, producer);
            let data = produce_request::PartitionProduceData::default()
                .with_index(part)
                .with_records(Some(records.into()));
            let req = ProduceRequest::default()
                .with_acks(*rng.pick(&[1, -1, -1]))
                .with_timeout_ms(2000)
                .with_topic_data(vec![
                    produce_request::TopicProduceData::default()
                        .with_name(topic(ctx))
                        .with_partition_data(rep(ctx, data)),
                ]);
            enc(req, version, corr)
        }
        ApiKey::Fetch => {
            let p = fetch_request::FetchPartition::default()
                .with_partition(part)
                .with_fetch_offset(rng.range(0, 3))
                .with_partition_max_bytes(1 << 20);
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(50)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(rep(
                    ctx,
                    fetch_request::FetchTopic::default()
                        .with_topic(topic(ctx))
                        .with_partitions(vec![p]),
                ));
            enc(req, version, corr)
        }
        ApiKey::ListOffsets => {
            let p = list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(part)
                .with_timestamp(*rng.pick(&[-1, -2, batch::BASE_TIME_MS]));
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(rep(
                    ctx,
                    list_offsets_request::ListOffsetsTopic::default()
                        .with_name(topic(ctx))
                        .with_partitions(vec![p]),
                ));
            enc(req, version, corr)
        }
        ApiKey::Metadata => {
            let t = metadata_request::MetadataRequestTopic::default().with_name(Some(topic(ctx)));
            let topics = if rng.chance(20) {
                None
            } else {
                Some(rep(ctx, t))
            };
            let req = MetadataRequest::default()
                .with_topics(topics)
                .with_allow_auto_topic_creation(version < 4 || rng.chance(50));
            enc(req, version, corr)
        }
        ApiKey::OffsetCommit => {
            let p = offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(part)
                .with_committed_offset(rng.range(0, 5))
                .with_committed_metadata(Some(s("")));
            let req = OffsetCommitRequest::default()
                .with_group_id(group(ctx))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(s(&ctx.member))
                .with_retention_time_ms(-1)
                .with_topics(rep(
                    ctx,
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic(ctx))
                        .with_partitions(vec![p]),
                ));
            enc(req, version, corr)
        }
        ApiKey::OffsetFetch => {
            let req = if version >= 8 {
                OffsetFetchRequest::default().with_groups(rep(
                    ctx,
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(group(ctx))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(topic(ctx))
                                .with_partition_indexes(vec![part]),
                        ])),
                ))
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(group(ctx))
                    .with_topics(Some(rep(
                        ctx,
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(topic(ctx))
                            .with_partition_indexes(vec![part]),
                    )))
            };
            enc(req, version, corr)
        }
        ApiKey::FindCoordinator => {
            let req = if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(rep(ctx, s(&ctx.group)))
            } else {
                FindCoordinatorRequest::default().with_key(s(&ctx.group))
            };
            enc(req, version, corr)
        }
        ApiKey::JoinGroup => {
            let proto = join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(consumer_subscription(&ctx.topic).into());
            let req = JoinGroupRequest::default()
                .with_group_id(group(ctx))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(s(&ctx.member))
                .with_protocol_type(s("consumer"))
                .with_protocols(rep(ctx, proto));
            enc(req, version, corr)
        }
        ApiKey::Heartbeat => {
            let req = HeartbeatRequest::default()
                .with_group_id(group(ctx))
                .with_generation_id(1)
                .with_member_id(s(&ctx.member));
            enc(req, version, corr)
        }
        ApiKey::LeaveGroup => {
            let req = if version >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(group(ctx))
                    .with_members(rep(
                        ctx,
                        leave_group_request::MemberIdentity::default()
                            .with_member_id(s(&ctx.member)),
                    ))
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(group(ctx))
                    .with_member_id(s(&ctx.member))
            };
            enc(req, version, corr)
        }
        ApiKey::SyncGroup => {
            let a = sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(&ctx.member))
                .with_assignment(consumer_assignment(&ctx.topic, ctx.partitions).into());
            let req = SyncGroupRequest::default()
                .with_group_id(group(ctx))
                .with_generation_id(1)
                .with_member_id(s(&ctx.member))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(rep(ctx, a));
            enc(req, version, corr)
        }
        ApiKey::DescribeGroups => enc(
            DescribeGroupsRequest::default().with_groups(rep(ctx, group(ctx))),
            version,
            corr,
        ),
        ApiKey::ListGroups => enc(ListGroupsRequest::default(), version, corr),
        ApiKey::ApiVersions => enc(
            ApiVersionsRequest::default()
                .with_client_software_name(s("strom-tcpfuzz"))
                .with_client_software_version(s("0.1")),
            version,
            corr,
        ),
        ApiKey::CreateTopics => {
            let mut t = create_topics_request::CreatableTopic::default()
                .with_name(topic(ctx))
                .with_num_partitions(ctx.partitions)
                .with_replication_factor(*rng.pick(&[1, -1]));
            if rng.chance(30) {
                t = t.with_configs(vec![
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(s(rng.pick(&[
                            "retention.ms",
                            "segment.bytes",
                            "cleanup.policy",
                        ])))
                        .with_value(Some(s(rng.pick(&["60000", "1048576", "delete"])))),
                ]);
            }
            let req = CreateTopicsRequest::default()
                .with_topics(rep(ctx, t))
                .with_timeout_ms(5000)
                .with_validate_only(!ctx.setup && rng.chance(20));
            enc(req, version, corr)
        }
        ApiKey::DeleteTopics => {
            let req = if version >= 6 {
                DeleteTopicsRequest::default().with_topics(rep(
                    ctx,
                    delete_topics_request::DeleteTopicState::default().with_name(Some(topic(ctx))),
                ))
            } else {
                DeleteTopicsRequest::default().with_topic_names(rep(ctx, topic(ctx)))
            }
            .with_timeout_ms(5000);
            enc(req, version, corr)
        }
        ApiKey::DeleteRecords => {
            let p = delete_records_request::DeleteRecordsPartition::default()
                .with_partition_index(part)
                .with_offset(*rng.pick(&[0, 1, -1]));
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(rep(
                    ctx,
                    delete_records_request::DeleteRecordsTopic::default()
                        .with_name(topic(ctx))
                        .with_partitions(vec![p]),
                ));
            enc(req, version, corr)
        }
        ApiKey::InitProducerId => {
            // Half of them transactional: the transaction coordinator's path.
            let txn = rng.chance(50).then(|| txn_id(ctx));
            enc(
                InitProducerIdRequest::default()
                    .with_transactional_id(txn)
                    .with_transaction_timeout_ms(*rng.pick(&[60_000, 1, i32::MAX]))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                version,
                corr,
            )
        }
        ApiKey::AddPartitionsToTxn => {
            use add_partitions_to_txn_request::{
                AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
            };
            let t = AddPartitionsToTxnTopic::default()
                .with_name(topic(ctx))
                .with_partitions(vec![part]);
            let req = if version <= 3 {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id(ctx))
                    .with_v3_and_below_producer_id(ProducerId(ctx.producer_id))
                    .with_v3_and_below_producer_epoch(0)
                    .with_v3_and_below_topics(rep(ctx, t))
            } else {
                AddPartitionsToTxnRequest::default().with_transactions(rep(
                    ctx,
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(txn_id(ctx))
                        .with_producer_id(ProducerId(ctx.producer_id))
                        .with_producer_epoch(0)
                        .with_verify_only(rng.chance(70))
                        .with_topics(vec![t]),
                ))
            };
            enc(req, version, corr)
        }
        ApiKey::AddOffsetsToTxn => enc(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(ctx))
                .with_producer_id(ProducerId(ctx.producer_id))
                .with_producer_epoch(0)
                .with_group_id(group(ctx)),
            version,
            corr,
        ),
        ApiKey::EndTxn => enc(
            EndTxnRequest::default()
                .with_transactional_id(txn_id(ctx))
                .with_producer_id(ProducerId(ctx.producer_id))
                .with_producer_epoch(0)
                .with_committed(rng.chance(50)),
            version,
            corr,
        ),
        ApiKey::TxnOffsetCommit => {
            use txn_offset_commit_request::{
                TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
            };
            let t = TxnOffsetCommitRequestTopic::default()
                .with_name(topic(ctx))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(part)
                        .with_committed_offset(rng.range(0, 5))
                        .with_committed_leader_epoch(-1),
                ]);
            enc(
                TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn_id(ctx))
                    .with_group_id(group(ctx))
                    .with_producer_id(ProducerId(ctx.producer_id))
                    .with_producer_epoch(0)
                    .with_generation_id(-1)
                    .with_member_id(s(&ctx.member))
                    .with_topics(rep(ctx, t)),
                version,
                corr,
            )
        }
        ApiKey::WriteTxnMarkers => {
            use write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
            let m = WritableTxnMarker::default()
                .with_producer_id(ProducerId(ctx.producer_id))
                .with_producer_epoch(0)
                .with_transaction_result(rng.chance(50))
                .with_coordinator_epoch(rng.range(-1, 3) as i32)
                .with_topics(vec![
                    WritableTxnMarkerTopic::default()
                        .with_name(topic(ctx))
                        .with_partition_indexes(vec![part]),
                ]);
            enc(
                WriteTxnMarkersRequest::default().with_markers(rep(ctx, m)),
                version,
                corr,
            )
        }
        ApiKey::DescribeTransactions => enc(
            DescribeTransactionsRequest::default().with_transactional_ids(rep(ctx, txn_id(ctx))),
            version,
            corr,
        ),
        ApiKey::ListTransactions => enc(
            ListTransactionsRequest::default()
                .with_state_filters(if rng.chance(50) {
                    vec![s("Ongoing")]
                } else {
                    vec![]
                })
                .with_duration_filter(-1),
            version,
            corr,
        ),
        ApiKey::DescribeProducers => {
            use describe_producers_request::TopicRequest;
            enc(
                DescribeProducersRequest::default().with_topics(rep(
                    ctx,
                    TopicRequest::default()
                        .with_name(topic(ctx))
                        .with_partition_indexes(vec![part]),
                )),
                version,
                corr,
            )
        }
        ApiKey::OffsetForLeaderEpoch => {
            let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                .with_partition(part)
                .with_current_leader_epoch(-1)
                .with_leader_epoch(rng.range(0, 2) as i32);
            let req = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(rep(
                    ctx,
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(topic(ctx))
                        .with_partitions(vec![p]),
                ));
            enc(req, version, corr)
        }
        ApiKey::DescribeConfigs => {
            let r = describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(*rng.pick(&[2, 4]))
                .with_resource_name(s(if rng.chance(70) { &ctx.topic } else { "1" }));
            enc(
                DescribeConfigsRequest::default().with_resources(rep(ctx, r)),
                version,
                corr,
            )
        }
        ApiKey::AlterConfigs => {
            let r = alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(&ctx.topic))
                .with_configs(vec![
                    alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("3600000"))),
                ]);
            enc(
                AlterConfigsRequest::default().with_resources(rep(ctx, r)),
                version,
                corr,
            )
        }
        ApiKey::CreatePartitions => {
            let t = create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic(ctx))
                .with_count(ctx.partitions + rng.range(1, 2) as i32)
                // Null, as Kafka's admin clients send when the broker is to place the new
                // partitions (kafka-protocol's default is an empty list, which a broker
                // may refuse as not matching the count before looking at the count).
                .with_assignments(None);
            let req = CreatePartitionsRequest::default()
                .with_topics(rep(ctx, t))
                .with_timeout_ms(5000)
                .with_validate_only(rng.chance(20));
            enc(req, version, corr)
        }
        ApiKey::DeleteGroups => enc(
            DeleteGroupsRequest::default().with_groups_names(rep(ctx, group(ctx))),
            version,
            corr,
        ),
        ApiKey::IncrementalAlterConfigs => {
            let r = incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(&ctx.topic))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s(rng.pick(&[
                            "retention.ms",
                            "retention.bytes",
                            "segment.ms",
                        ])))
                        .with_config_operation(*rng.pick(&[0, 1]))
                        .with_value(Some(s("3600000"))),
                ]);
            enc(
                IncrementalAlterConfigsRequest::default().with_resources(rep(ctx, r)),
                version,
                corr,
            )
        }
        ApiKey::OffsetDelete => {
            let req = OffsetDeleteRequest::default()
                .with_group_id(group(ctx))
                .with_topics(rep(
                    ctx,
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic(ctx))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(part),
                        ]),
                ));
            enc(req, version, corr)
        }
        ApiKey::DescribeCluster => enc(DescribeClusterRequest::default(), version, corr),
        ApiKey::DescribeTopicPartitions => {
            use describe_topic_partitions_request::{Cursor, TopicRequest};
            let mut req = DescribeTopicPartitionsRequest::default()
                .with_topics(rep(ctx, TopicRequest::default().with_name(topic(ctx))))
                .with_response_partition_limit(rng.range(0, 3) as i32);
            if rng.chance(30) {
                req = req.with_cursor(Some(
                    Cursor::default()
                        .with_topic_name(topic(ctx))
                        .with_partition_index(rng.range(0, 4) as i32),
                ));
            }
            enc(req, version, corr)
        }
        other => anyhow::bail!("no template for {other:?}"),
    }
}

/// A ConsumerProtocol subscription (version 0) to one topic, as JoinGroup carries it.
fn consumer_subscription(topic: &str) -> Vec<u8> {
    let s = strom_group::Subscription {
        topics: vec![topic.to_string()],
        ..Default::default()
    };
    s.encode(0).to_vec()
}

/// A ConsumerProtocol assignment (version 0) of all partitions of one topic.
fn consumer_assignment(topic: &str, partitions: i32) -> Vec<u8> {
    let a = strom_group::Assignment {
        partitions: vec![strom_group::TopicPartitions {
            topic: topic.to_string(),
            partitions: (0..partitions).collect(),
        }],
        user_data: None,
    };
    a.encode(0).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Every api and version Strom advertises has a template, and the broker's own decoder
    /// (strom-wire) reads each one back as that api: the corpus is real requests.
    #[test]
    fn every_advertised_api_and_version_builds_and_decodes() {
        let mut rng = Rng::new(5);
        let ctx = Ctx::new(&mut rng, 1);
        for range in strom_wire::SUPPORTED_APIS {
            for version in buildable_versions(range) {
                let msg = build(range.key, version, 7, &ctx, &mut rng)
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", range.key));
                assert_eq!(msg.api_key, range.key as i16);
                if !strom_wire::is_usable(msg.api_key, version) {
                    continue;
                }
                let req = strom_wire::decode_request(Bytes::from(msg.bytes.clone()))
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", range.key));
                assert_eq!(req.header.request_api_key, range.key as i16);
                assert_eq!(req.header.correlation_id, 7);
                if let kafka_protocol::messages::RequestKind::CreatePartitions(cp) = &req.body {
                    // Like a real admin client: the broker places the new partitions.
                    assert!(cp.topics.iter().all(|t| t.assignments.is_none()));
                }
                // Metadata for all topics (a null topic list) has no field worth mutating.
                let all_topics = matches!(
                    &req.body,
                    kafka_protocol::messages::RequestKind::Metadata(m) if m.topics.is_none()
                );
                assert!(
                    msg.fields.iter().any(|f| f.pos >= msg.body_start)
                        || all_topics
                        || matches!(
                            range.key,
                            ApiKey::ListGroups
                                | ApiKey::ListTransactions
                                | ApiKey::DescribeCluster
                                | ApiKey::ApiVersions
                        ),
                    "{:?} v{version}: no body field recorded",
                    range.key
                );
            }
        }
    }
}
