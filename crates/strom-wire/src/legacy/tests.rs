//! The legacy versions byte for byte, as Kafka 3.9's schemas lay them out.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{decode, encode, is_legacy};
use crate::request::tests::frame;
use crate::{decode_request, encode_response};

/// A body written field by field.
#[derive(Default)]
struct W(BytesMut);

impl W {
    fn i8(mut self, v: i8) -> Self {
        self.0.put_i8(v);
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.put_i16(v);
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.put_i32(v);
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.put_i64(v);
        self
    }
    fn s(mut self, v: &str) -> Self {
        self.0.put_i16(v.len() as i16);
        self.0.put_slice(v.as_bytes());
        self
    }
    fn null(self) -> Self {
        self.i16(-1)
    }
    fn bytes(self) -> Bytes {
        self.0.freeze()
    }
}

fn sb(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn decoded(key: ApiKey, version: i16, body: Bytes) -> RequestKind {
    let mut rest = body;
    let kind = decode(key, version, &mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{key:?} v{version}: {} bytes unread",
        rest.len()
    );
    kind
}

fn encoded(body: impl Into<ResponseKind>, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    encode(&body.into(), version, &mut out).unwrap().unwrap();
    out.freeze()
}

#[test]
fn only_the_versions_below_kafka_protocol_are_legacy() {
    assert!(is_legacy(ApiKey::OffsetCommit, 1));
    assert!(!is_legacy(ApiKey::OffsetCommit, 2));
    assert!(is_legacy(ApiKey::DescribeConfigs, 0));
    assert!(!is_legacy(ApiKey::Metadata, 0));
    let mut out = BytesMut::new();
    let modern: ResponseKind = OffsetCommitResponse::default().into();
    assert!(encode(&modern, 2, &mut out).is_none());
}

#[test]
fn offset_commit_v1_carries_generation_member_and_a_timestamp_per_partition() {
    let body = W::default()
        .s("g")
        .i32(7)
        .s("m-1")
        .i32(1)
        .s("t")
        .i32(2)
        .i32(0)
        .i64(42)
        .i64(1_700_000_000_000) // commit_timestamp: read and dropped
        .s("meta")
        .i32(3)
        .i64(9)
        .i64(-1)
        .null()
        .bytes();
    let RequestKind::OffsetCommit(r) = decoded(ApiKey::OffsetCommit, 1, body) else {
        panic!("wrong kind")
    };
    assert_eq!(r.group_id.0.as_str(), "g");
    assert_eq!(r.generation_id_or_member_epoch, 7);
    assert_eq!(r.member_id.as_str(), "m-1");
    assert_eq!(r.retention_time_ms, -1);
    let p = &r.topics[0].partitions;
    assert_eq!(r.topics[0].name.0.as_str(), "t");
    assert_eq!((p[0].partition_index, p[0].committed_offset), (0, 42));
    assert_eq!(p[0].committed_metadata.as_deref(), Some("meta"));
    assert_eq!((p[1].partition_index, p[1].committed_offset), (3, 9));
    assert_eq!(p[1].committed_metadata, None);
    assert_eq!(p[0].committed_leader_epoch, -1);
}

#[test]
fn offset_commit_v0_is_a_commit_outside_any_generation() {
    let body = W::default()
        .s("g")
        .i32(1)
        .s("t")
        .i32(1)
        .i32(5)
        .i64(100)
        .s("")
        .bytes();
    let RequestKind::OffsetCommit(r) = decoded(ApiKey::OffsetCommit, 0, body) else {
        panic!("wrong kind")
    };
    assert_eq!(
        (r.generation_id_or_member_epoch, r.member_id.as_str()),
        (-1, "")
    );
    assert_eq!(r.topics[0].partitions[0].committed_offset, 100);
}

#[test]
fn offset_commit_v0_v1_answers_in_the_v2_layout() {
    let response = OffsetCommitResponse::default()
        .with_throttle_time_ms(99) // not in v0-v2
        .with_topics(vec![
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partitions(vec![
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(4)
                        .with_error_code(25),
                ]),
        ]);
    let want = W::default().i32(1).s("t").i32(1).i32(4).i16(25).bytes();
    assert_eq!(encoded(response.clone(), 0), want);
    assert_eq!(encoded(response, 1), want);
}

#[test]
fn offset_fetch_v0_is_v1() {
    let body = W::default()
        .s("g")
        .i32(1)
        .s("t")
        .i32(2)
        .i32(0)
        .i32(1)
        .bytes();
    let RequestKind::OffsetFetch(r) = decoded(ApiKey::OffsetFetch, 0, body) else {
        panic!("wrong kind")
    };
    assert_eq!(r.group_id.0.as_str(), "g");
    let t = &r.topics.as_ref().unwrap()[0];
    assert_eq!(
        (t.name.0.as_str(), &t.partition_indexes[..]),
        ("t", &[0, 1][..])
    );
}

#[test]
fn list_offsets_v0_answers_a_list_of_one_offset_or_none() {
    let body = W::default()
        .i32(-1)
        .i32(1)
        .s("t")
        .i32(2)
        .i32(0)
        .i64(-1)
        .i32(1)
        .i32(1)
        .i64(1_000)
        .i32(10)
        .bytes();
    let RequestKind::ListOffsets(r) = decoded(ApiKey::ListOffsets, 0, body) else {
        panic!("wrong kind")
    };
    assert_eq!(r.replica_id.0, -1);
    let p = &r.topics[0].partitions;
    assert_eq!((p[0].partition_index, p[0].timestamp), (0, -1));
    assert_eq!((p[1].partition_index, p[1].timestamp), (1, 1_000));
    assert_eq!(p[0].current_leader_epoch, -1);

    let part = |i, code, offset| {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(i)
            .with_error_code(code)
            .with_offset(offset)
            .with_timestamp(5)
    };
    let response = ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default()
            .with_name(TopicName(sb("t")))
            .with_partitions(vec![part(0, 0, 17), part(1, 0, -1), part(2, 6, 3)]),
    ]);
    let want = W::default()
        .i32(1)
        .s("t")
        .i32(3)
        .i32(0)
        .i16(0)
        .i32(1)
        .i64(17)
        .i32(1)
        .i16(0)
        .i32(0) // no offset at or after that time: an empty list
        .i32(2)
        .i16(6)
        .i32(0)
        .bytes();
    assert_eq!(encoded(response, 0), want);
}

#[test]
fn offset_for_leader_epoch_v0_v1() {
    let body = W::default().i32(1).s("t").i32(1).i32(2).i32(5).bytes();
    for version in [0, 1] {
        let RequestKind::OffsetForLeaderEpoch(r) =
            decoded(ApiKey::OffsetForLeaderEpoch, version, body.clone())
        else {
            panic!("wrong kind")
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition, p.leader_epoch, p.current_leader_epoch),
            (2, 5, -1)
        );
    }
    let response = OffsetForLeaderEpochResponse::default().with_topics(vec![
        OffsetForLeaderTopicResult::default()
            .with_topic(TopicName(sb("t")))
            .with_partitions(vec![
                EpochEndOffset::default()
                    .with_error_code(0)
                    .with_partition(2)
                    .with_leader_epoch(5)
                    .with_end_offset(77),
            ]),
    ]);
    let v0 = W::default()
        .i32(1)
        .s("t")
        .i32(1)
        .i16(0)
        .i32(2)
        .i64(77)
        .bytes();
    let v1 = W::default()
        .i32(1)
        .s("t")
        .i32(1)
        .i16(0)
        .i32(2)
        .i32(5)
        .i64(77)
        .bytes();
    assert_eq!(encoded(response.clone(), 0), v0);
    assert_eq!(encoded(response, 1), v1);
}

#[test]
fn create_topics_v0_v1() {
    let topic = W::default()
        .i32(1)
        .s("t")
        .i32(3)
        .i16(1)
        .i32(1) // one assignment
        .i32(0)
        .i32(2)
        .i32(1)
        .i32(2)
        .i32(1) // one config
        .s("retention.ms")
        .null()
        .i32(5000);
    let RequestKind::CreateTopics(r) = decoded(ApiKey::CreateTopics, 0, topic.0.clone().freeze())
    else {
        panic!("wrong kind")
    };
    let t = &r.topics[0];
    assert_eq!(
        (t.name.0.as_str(), t.num_partitions, t.replication_factor),
        ("t", 3, 1)
    );
    let ids: Vec<i32> = t.assignments[0].broker_ids.iter().map(|b| b.0).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        (t.configs[0].name.as_str(), t.configs[0].value.clone()),
        ("retention.ms", None)
    );
    assert_eq!((r.timeout_ms, r.validate_only), (5000, false));
    let v1 = W(topic.0).i8(1).bytes();
    let RequestKind::CreateTopics(r) = decoded(ApiKey::CreateTopics, 1, v1) else {
        panic!("wrong kind")
    };
    assert!(r.validate_only);

    let response = CreateTopicsResponse::default().with_topics(vec![
        CreatableTopicResult::default()
            .with_name(TopicName(sb("t")))
            .with_error_code(36)
            .with_error_message(Some(sb("exists"))),
    ]);
    assert_eq!(
        encoded(response.clone(), 0),
        W::default().i32(1).s("t").i16(36).bytes()
    );
    assert_eq!(
        encoded(response, 1),
        W::default().i32(1).s("t").i16(36).s("exists").bytes()
    );
}

#[test]
fn delete_topics_v0() {
    let body = W::default().i32(2).s("a").s("b").i32(100).bytes();
    let RequestKind::DeleteTopics(r) = decoded(ApiKey::DeleteTopics, 0, body) else {
        panic!("wrong kind")
    };
    let names: Vec<&str> = r.topic_names.iter().map(|n| n.0.as_str()).collect();
    assert_eq!((names, r.timeout_ms), (vec!["a", "b"], 100));
    let response = DeleteTopicsResponse::default()
        .with_throttle_time_ms(5)
        .with_responses(vec![
            DeletableTopicResult::default()
                .with_name(Some(TopicName(sb("a"))))
                .with_error_code(3),
        ]);
    assert_eq!(
        encoded(response, 0),
        W::default().i32(1).s("a").i16(3).bytes()
    );
}

#[test]
fn describe_configs_v0_reports_is_default_for_the_config_source() {
    let body = W::default()
        .i32(2)
        .i8(2)
        .s("t")
        .i32(-1) // all keys
        .i8(4)
        .s("1")
        .i32(1)
        .s("log.dirs")
        .bytes();
    let RequestKind::DescribeConfigs(r) = decoded(ApiKey::DescribeConfigs, 0, body) else {
        panic!("wrong kind")
    };
    assert_eq!(r.resources[0].configuration_keys, None);
    assert_eq!(
        r.resources[1].configuration_keys,
        Some(vec![sb("log.dirs")])
    );
    assert!(!r.include_synonyms);

    let config = |name: &'static str, source| {
        DescribeConfigsResourceResult::default()
            .with_name(sb(name))
            .with_value(Some(sb("1")))
            .with_config_source(source)
    };
    let response = DescribeConfigsResponse::default().with_results(vec![
        DescribeConfigsResult::default()
            .with_error_message(None)
            .with_resource_type(2)
            .with_resource_name(sb("t"))
            .with_configs(vec![config("a", 5), config("b", 1)]),
    ]);
    let want = W::default()
        .i32(0)
        .i32(1)
        .i16(0)
        .null()
        .i8(2)
        .s("t")
        .i32(2)
        .s("a")
        .s("1")
        .i8(0)
        .i8(1) // DEFAULT_CONFIG
        .i8(0)
        .s("b")
        .s("1")
        .i8(0)
        .i8(0) // set on the topic
        .i8(0)
        .bytes();
    assert_eq!(encoded(response, 0), want);
}

#[test]
fn hostile_bodies_are_errors_at_every_cut_and_for_impossible_counts() {
    let body = W::default()
        .s("g")
        .i32(7)
        .s("m")
        .i32(1)
        .s("t")
        .i32(1)
        .i32(0)
        .i64(1)
        .i64(2)
        .s("x")
        .bytes();
    for cut in 0..body.len() {
        let mut b = body.slice(..cut);
        assert!(
            decode(ApiKey::OffsetCommit, 1, &mut b).is_err(),
            "cut {cut}"
        );
    }
    let huge = W::default().i32(-1).i32(i32::MAX).bytes();
    assert!(decode(ApiKey::ListOffsets, 0, &mut huge.clone()).is_err());
    let null_topics = W::default().s("g").i32(-1).bytes();
    assert!(decode(ApiKey::OffsetCommit, 0, &mut null_topics.clone()).is_err());
}

#[test]
fn a_whole_frame_round_trips_through_the_public_api() {
    let body = W::default().i32(1).i8(2).s("t").i32(-1).bytes();
    let request = decode_request(frame(ApiKey::DescribeConfigs, 0, 9, &body)).unwrap();
    assert_eq!(
        (request.api_key, request.api_version()),
        (ApiKey::DescribeConfigs, 0)
    );
    assert!(matches!(request.body, RequestKind::DescribeConfigs(_)));
    let response: ResponseKind = DescribeConfigsResponse::default().into();
    let bytes = encode_response(9, 0, &response).unwrap();
    // Header v0 (the correlation id alone), throttle, no results.
    assert_eq!(&bytes[..], &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
}
