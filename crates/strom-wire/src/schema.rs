//! The wire shape of every request body Strom decodes, as data: which fields each version
//! carries, and of which type. Used by the array-length guard ([`crate::guard`]).
//!
//! Transcribed from the `Decodable` impls kafka-protocol 0.18 generates (themselves
//! generated from Kafka's JSON schemas), because the guard must read exactly the bytes that
//! decoder reads; for the versions Kafka 4 removed, from Kafka 3.9's schemas (crate::legacy
//! reads those). The test `guard::tests::schema_matches_kafka_protocol` builds a populated
//! request for every api and version in [`crate::SUPPORTED_APIS`] from this table and checks
//! that kafka-protocol decodes it and re-encodes the same bytes, so a mistake here fails
//! the build's tests rather than a client's request.
//!
//! Only what decides where bytes go is recorded. Nullability is not (the guard accepts
//! null where the decoder may not; the decoder then refuses it), and neither are integer
//! meanings.

use kafka_protocol::messages::ApiKey;

/// How one field is laid out. String and byte fields switch between the INT16/INT32
/// length and the COMPACT (UNSIGNED_VARINT length + 1) forms with the message's flexible
/// versions, as do arrays; the walker applies that.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// INT8, and BOOLEAN, which is one byte too.
    I8,
    I16,
    I32,
    I64,
    Uuid,
    /// STRING / NULLABLE_STRING, or their compact forms.
    Str,
    /// BYTES / NULLABLE_BYTES / RECORDS, or their compact forms.
    Bytes,
    /// ARRAY of the given struct (nullable or not).
    Structs(&'static Struct),
    /// ARRAY of INT32.
    Int32s,
    /// ARRAY of INT64.
    Int64s,
    /// ARRAY of STRING.
    Strs,
    /// One struct inline (only used as a tagged field).
    Inline(&'static Struct),
    /// A nullable struct field: an INT8 marker (negative: null), then the struct.
    Optional(&'static Struct),
}

/// A field present in versions `min..=max`.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) min: i16,
    pub(crate) max: i16,
}

/// A tagged field kafka-protocol decodes by type (rather than skipping it by its size).
/// kafka-protocol refuses a known tag outside `min..=max`.
#[derive(Debug)]
pub(crate) struct Tagged {
    pub(crate) tag: u32,
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) min: i16,
    pub(crate) max: i16,
}

/// A struct: its fields in wire order, then (in flexible versions) a tagged-field section.
#[derive(Debug)]
pub(crate) struct Struct {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
    pub(crate) tagged: &'static [Tagged],
}

/// A request body: its top-level struct and the first flexible version.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) key: ApiKey,
    pub(crate) flexible_from: i16,
    pub(crate) body: &'static Struct,
}

impl Field {
    pub(crate) fn present(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

impl Tagged {
    pub(crate) fn present(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// "And every later version".
const ALL: i16 = i16::MAX;
/// Never flexible.
const NEVER: i16 = i16::MAX;

const fn f(name: &'static str, ty: Ty, min: i16, max: i16) -> Field {
    Field { name, ty, min, max }
}

const fn s(name: &'static str, fields: &'static [Field]) -> Struct {
    Struct {
        name,
        fields,
        tagged: &[],
    }
}

use Ty::*;

// Produce (0), served from v3.
const PARTITION_PRODUCE_DATA: Struct = s(
    "PartitionProduceData",
    &[f("index", I32, 0, ALL), f("records", Bytes, 0, ALL)],
);
const TOPIC_PRODUCE_DATA: Struct = s(
    "TopicProduceData",
    &[
        f("name", Str, 0, 12),
        f("topic_id", Uuid, 13, ALL),
        f("partition_data", Structs(&PARTITION_PRODUCE_DATA), 0, ALL),
    ],
);
const PRODUCE_REQUEST: Struct = s(
    "ProduceRequest",
    &[
        f("transactional_id", Str, 3, ALL),
        f("acks", I16, 0, ALL),
        f("timeout_ms", I32, 0, ALL),
        f("topic_data", Structs(&TOPIC_PRODUCE_DATA), 0, ALL),
    ],
);

// Fetch (1).
const FETCH_PARTITION: Struct = Struct {
    name: "FetchPartition",
    fields: &[
        f("partition", I32, 0, ALL),
        f("current_leader_epoch", I32, 9, ALL),
        f("fetch_offset", I64, 0, ALL),
        f("last_fetched_epoch", I32, 12, ALL),
        f("log_start_offset", I64, 5, ALL),
        f("partition_max_bytes", I32, 0, ALL),
    ],
    tagged: &[
        Tagged {
            tag: 0,
            name: "replica_directory_id",
            ty: Uuid,
            min: 17,
            max: ALL,
        },
        Tagged {
            tag: 1,
            name: "high_watermark",
            ty: I64,
            min: 18,
            max: ALL,
        },
    ],
};
const FETCH_TOPIC: Struct = s(
    "FetchTopic",
    &[
        f("topic", Str, 0, 12),
        f("topic_id", Uuid, 13, ALL),
        f("partitions", Structs(&FETCH_PARTITION), 0, ALL),
    ],
);
const FORGOTTEN_TOPIC: Struct = s(
    "ForgottenTopic",
    &[
        f("topic", Str, 7, 12),
        f("topic_id", Uuid, 13, ALL),
        f("partitions", Int32s, 7, ALL),
    ],
);
const REPLICA_STATE: Struct = s(
    "ReplicaState",
    &[
        f("replica_id", I32, 15, ALL),
        f("replica_epoch", I64, 15, ALL),
    ],
);
const FETCH_REQUEST: Struct = Struct {
    name: "FetchRequest",
    fields: &[
        f("replica_id", I32, 0, 14),
        f("max_wait_ms", I32, 0, ALL),
        f("min_bytes", I32, 0, ALL),
        f("max_bytes", I32, 0, ALL),
        f("isolation_level", I8, 0, ALL),
        f("session_id", I32, 7, ALL),
        f("session_epoch", I32, 7, ALL),
        f("topics", Structs(&FETCH_TOPIC), 0, ALL),
        f("forgotten_topics_data", Structs(&FORGOTTEN_TOPIC), 7, ALL),
        f("rack_id", Str, 11, ALL),
    ],
    tagged: &[
        Tagged {
            tag: 0,
            name: "cluster_id",
            ty: Str,
            min: 0,
            max: ALL,
        },
        Tagged {
            tag: 1,
            name: "replica_state",
            ty: Inline(&REPLICA_STATE),
            min: 15,
            max: ALL,
        },
    ],
};

// ListOffsets (2).
const LIST_OFFSETS_PARTITION: Struct = s(
    "ListOffsetsPartition",
    &[
        f("partition_index", I32, 0, ALL),
        f("current_leader_epoch", I32, 4, ALL),
        f("timestamp", I64, 0, ALL),
        f("max_num_offsets", I32, 0, 0),
    ],
);
const LIST_OFFSETS_TOPIC: Struct = s(
    "ListOffsetsTopic",
    &[
        f("name", Str, 0, ALL),
        f("partitions", Structs(&LIST_OFFSETS_PARTITION), 0, ALL),
    ],
);
const LIST_OFFSETS_REQUEST: Struct = s(
    "ListOffsetsRequest",
    &[
        f("replica_id", I32, 0, ALL),
        f("isolation_level", I8, 2, ALL),
        f("topics", Structs(&LIST_OFFSETS_TOPIC), 0, ALL),
        f("timeout_ms", I32, 10, ALL),
    ],
);

// Metadata (3).
const METADATA_REQUEST_TOPIC: Struct = s(
    "MetadataRequestTopic",
    &[f("topic_id", Uuid, 10, ALL), f("name", Str, 0, ALL)],
);
const METADATA_REQUEST: Struct = s(
    "MetadataRequest",
    &[
        f("topics", Structs(&METADATA_REQUEST_TOPIC), 0, ALL),
        f("allow_auto_topic_creation", I8, 4, ALL),
        f("include_cluster_authorized_operations", I8, 8, 10),
        f("include_topic_authorized_operations", I8, 8, ALL),
    ],
);

// OffsetCommit (8).
const OFFSET_COMMIT_REQUEST_PARTITION: Struct = s(
    "OffsetCommitRequestPartition",
    &[
        f("partition_index", I32, 0, ALL),
        f("committed_offset", I64, 0, ALL),
        f("committed_leader_epoch", I32, 6, ALL),
        f("commit_timestamp", I64, 1, 1),
        f("committed_metadata", Str, 0, ALL),
    ],
);
const OFFSET_COMMIT_REQUEST_TOPIC: Struct = s(
    "OffsetCommitRequestTopic",
    &[
        f("name", Str, 0, ALL),
        f(
            "partitions",
            Structs(&OFFSET_COMMIT_REQUEST_PARTITION),
            0,
            ALL,
        ),
    ],
);
const OFFSET_COMMIT_REQUEST: Struct = s(
    "OffsetCommitRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("generation_id_or_member_epoch", I32, 1, ALL),
        f("member_id", Str, 1, ALL),
        f("group_instance_id", Str, 7, ALL),
        f("retention_time_ms", I64, 2, 4),
        f("topics", Structs(&OFFSET_COMMIT_REQUEST_TOPIC), 0, ALL),
    ],
);

// OffsetFetch (9).
const OFFSET_FETCH_REQUEST_TOPIC: Struct = s(
    "OffsetFetchRequestTopic",
    &[f("name", Str, 0, 7), f("partition_indexes", Int32s, 0, 7)],
);
const OFFSET_FETCH_REQUEST_TOPICS: Struct = s(
    "OffsetFetchRequestTopics",
    &[
        f("name", Str, 8, ALL),
        f("partition_indexes", Int32s, 8, ALL),
    ],
);
const OFFSET_FETCH_REQUEST_GROUP: Struct = s(
    "OffsetFetchRequestGroup",
    &[
        f("group_id", Str, 8, ALL),
        f("member_id", Str, 9, ALL),
        f("member_epoch", I32, 9, ALL),
        f("topics", Structs(&OFFSET_FETCH_REQUEST_TOPICS), 8, ALL),
    ],
);
const OFFSET_FETCH_REQUEST: Struct = s(
    "OffsetFetchRequest",
    &[
        f("group_id", Str, 0, 7),
        f("topics", Structs(&OFFSET_FETCH_REQUEST_TOPIC), 0, 7),
        f("groups", Structs(&OFFSET_FETCH_REQUEST_GROUP), 8, ALL),
        f("require_stable", I8, 7, ALL),
    ],
);

// FindCoordinator (10).
const FIND_COORDINATOR_REQUEST: Struct = s(
    "FindCoordinatorRequest",
    &[
        f("key", Str, 0, 3),
        f("key_type", I8, 1, ALL),
        f("coordinator_keys", Strs, 4, ALL),
    ],
);

// JoinGroup (11).
const JOIN_GROUP_REQUEST_PROTOCOL: Struct = s(
    "JoinGroupRequestProtocol",
    &[f("name", Str, 0, ALL), f("metadata", Bytes, 0, ALL)],
);
const JOIN_GROUP_REQUEST: Struct = s(
    "JoinGroupRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("session_timeout_ms", I32, 0, ALL),
        f("rebalance_timeout_ms", I32, 1, ALL),
        f("member_id", Str, 0, ALL),
        f("group_instance_id", Str, 5, ALL),
        f("protocol_type", Str, 0, ALL),
        f("protocols", Structs(&JOIN_GROUP_REQUEST_PROTOCOL), 0, ALL),
        f("reason", Str, 8, ALL),
    ],
);

// Heartbeat (12).
const HEARTBEAT_REQUEST: Struct = s(
    "HeartbeatRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("generation_id", I32, 0, ALL),
        f("member_id", Str, 0, ALL),
        f("group_instance_id", Str, 3, ALL),
    ],
);

// LeaveGroup (13).
const MEMBER_IDENTITY: Struct = s(
    "MemberIdentity",
    &[
        f("member_id", Str, 3, ALL),
        f("group_instance_id", Str, 3, ALL),
        f("reason", Str, 5, ALL),
    ],
);
const LEAVE_GROUP_REQUEST: Struct = s(
    "LeaveGroupRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("member_id", Str, 0, 2),
        f("members", Structs(&MEMBER_IDENTITY), 3, ALL),
    ],
);

// SyncGroup (14).
const SYNC_GROUP_REQUEST_ASSIGNMENT: Struct = s(
    "SyncGroupRequestAssignment",
    &[f("member_id", Str, 0, ALL), f("assignment", Bytes, 0, ALL)],
);
const SYNC_GROUP_REQUEST: Struct = s(
    "SyncGroupRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("generation_id", I32, 0, ALL),
        f("member_id", Str, 0, ALL),
        f("group_instance_id", Str, 3, ALL),
        f("protocol_type", Str, 5, ALL),
        f("protocol_name", Str, 5, ALL),
        f(
            "assignments",
            Structs(&SYNC_GROUP_REQUEST_ASSIGNMENT),
            0,
            ALL,
        ),
    ],
);

// DescribeGroups (15), ListGroups (16), ApiVersions (18).
const DESCRIBE_GROUPS_REQUEST: Struct = s(
    "DescribeGroupsRequest",
    &[
        f("groups", Strs, 0, ALL),
        f("include_authorized_operations", I8, 3, ALL),
    ],
);
const LIST_GROUPS_REQUEST: Struct = s(
    "ListGroupsRequest",
    &[
        f("states_filter", Strs, 4, ALL),
        f("types_filter", Strs, 5, ALL),
    ],
);
const API_VERSIONS_REQUEST: Struct = s(
    "ApiVersionsRequest",
    &[
        f("client_software_name", Str, 3, ALL),
        f("client_software_version", Str, 3, ALL),
        f("cluster_id", Str, 5, ALL),
        f("node_id", I32, 5, ALL),
    ],
);

// CreateTopics (19).
const CREATABLE_REPLICA_ASSIGNMENT: Struct = s(
    "CreatableReplicaAssignment",
    &[
        f("partition_index", I32, 0, ALL),
        f("broker_ids", Int32s, 0, ALL),
    ],
);
const CREATABLE_TOPIC_CONFIG: Struct = s(
    "CreatableTopicConfig",
    &[f("name", Str, 0, ALL), f("value", Str, 0, ALL)],
);
const CREATABLE_TOPIC: Struct = s(
    "CreatableTopic",
    &[
        f("name", Str, 0, ALL),
        f("num_partitions", I32, 0, ALL),
        f("replication_factor", I16, 0, ALL),
        f(
            "assignments",
            Structs(&CREATABLE_REPLICA_ASSIGNMENT),
            0,
            ALL,
        ),
        f("configs", Structs(&CREATABLE_TOPIC_CONFIG), 0, ALL),
    ],
);
const CREATE_TOPICS_REQUEST: Struct = s(
    "CreateTopicsRequest",
    &[
        f("topics", Structs(&CREATABLE_TOPIC), 0, ALL),
        f("timeout_ms", I32, 0, ALL),
        f("validate_only", I8, 1, ALL),
    ],
);

// DeleteTopics (20).
const DELETE_TOPIC_STATE: Struct = s(
    "DeleteTopicState",
    &[f("name", Str, 6, ALL), f("topic_id", Uuid, 6, ALL)],
);
const DELETE_TOPICS_REQUEST: Struct = s(
    "DeleteTopicsRequest",
    &[
        f("topics", Structs(&DELETE_TOPIC_STATE), 6, ALL),
        f("topic_names", Strs, 0, 5),
        f("timeout_ms", I32, 0, ALL),
    ],
);

// DeleteRecords (21).
const DELETE_RECORDS_PARTITION: Struct = s(
    "DeleteRecordsPartition",
    &[f("partition_index", I32, 0, ALL), f("offset", I64, 0, ALL)],
);
const DELETE_RECORDS_TOPIC: Struct = s(
    "DeleteRecordsTopic",
    &[
        f("name", Str, 0, ALL),
        f("partitions", Structs(&DELETE_RECORDS_PARTITION), 0, ALL),
    ],
);
const DELETE_RECORDS_REQUEST: Struct = s(
    "DeleteRecordsRequest",
    &[
        f("topics", Structs(&DELETE_RECORDS_TOPIC), 0, ALL),
        f("timeout_ms", I32, 0, ALL),
    ],
);

// InitProducerId (22).
const INIT_PRODUCER_ID_REQUEST: Struct = s(
    "InitProducerIdRequest",
    &[
        f("transactional_id", Str, 0, ALL),
        f("transaction_timeout_ms", I32, 0, ALL),
        f("producer_id", I64, 3, ALL),
        f("producer_epoch", I16, 3, ALL),
    ],
);

// OffsetForLeaderEpoch (23).
const OFFSET_FOR_LEADER_PARTITION: Struct = s(
    "OffsetForLeaderPartition",
    &[
        f("partition", I32, 0, ALL),
        f("current_leader_epoch", I32, 2, ALL),
        f("leader_epoch", I32, 0, ALL),
    ],
);
const OFFSET_FOR_LEADER_TOPIC: Struct = s(
    "OffsetForLeaderTopic",
    &[
        f("topic", Str, 0, ALL),
        f("partitions", Structs(&OFFSET_FOR_LEADER_PARTITION), 0, ALL),
    ],
);
const OFFSET_FOR_LEADER_EPOCH_REQUEST: Struct = s(
    "OffsetForLeaderEpochRequest",
    &[
        f("replica_id", I32, 3, ALL),
        f("topics", Structs(&OFFSET_FOR_LEADER_TOPIC), 0, ALL),
    ],
);

// DescribeConfigs (32).
const DESCRIBE_CONFIGS_RESOURCE: Struct = s(
    "DescribeConfigsResource",
    &[
        f("resource_type", I8, 0, ALL),
        f("resource_name", Str, 0, ALL),
        f("configuration_keys", Strs, 0, ALL),
    ],
);
const DESCRIBE_CONFIGS_REQUEST: Struct = s(
    "DescribeConfigsRequest",
    &[
        f("resources", Structs(&DESCRIBE_CONFIGS_RESOURCE), 0, ALL),
        f("include_synonyms", I8, 1, ALL),
        f("include_documentation", I8, 3, ALL),
    ],
);

// AlterConfigs (33).
const ALTERABLE_CONFIG: Struct = s(
    "AlterableConfig",
    &[f("name", Str, 0, ALL), f("value", Str, 0, ALL)],
);
const ALTER_CONFIGS_RESOURCE: Struct = s(
    "AlterConfigsResource",
    &[
        f("resource_type", I8, 0, ALL),
        f("resource_name", Str, 0, ALL),
        f("configs", Structs(&ALTERABLE_CONFIG), 0, ALL),
    ],
);
const ALTER_CONFIGS_REQUEST: Struct = s(
    "AlterConfigsRequest",
    &[
        f("resources", Structs(&ALTER_CONFIGS_RESOURCE), 0, ALL),
        f("validate_only", I8, 0, ALL),
    ],
);

// CreatePartitions (37).
const CREATE_PARTITIONS_ASSIGNMENT: Struct = s(
    "CreatePartitionsAssignment",
    &[f("broker_ids", Int32s, 0, ALL)],
);
const CREATE_PARTITIONS_TOPIC: Struct = s(
    "CreatePartitionsTopic",
    &[
        f("name", Str, 0, ALL),
        f("count", I32, 0, ALL),
        f(
            "assignments",
            Structs(&CREATE_PARTITIONS_ASSIGNMENT),
            0,
            ALL,
        ),
    ],
);
const CREATE_PARTITIONS_REQUEST: Struct = s(
    "CreatePartitionsRequest",
    &[
        f("topics", Structs(&CREATE_PARTITIONS_TOPIC), 0, ALL),
        f("timeout_ms", I32, 0, ALL),
        f("validate_only", I8, 0, ALL),
    ],
);

// DeleteGroups (42).
const DELETE_GROUPS_REQUEST: Struct = s("DeleteGroupsRequest", &[f("groups_names", Strs, 0, ALL)]);

// IncrementalAlterConfigs (44): same names as AlterConfigs' structs, one more field.
const INCREMENTAL_ALTERABLE_CONFIG: Struct = s(
    "AlterableConfig",
    &[
        f("name", Str, 0, ALL),
        f("config_operation", I8, 0, ALL),
        f("value", Str, 0, ALL),
    ],
);
const INCREMENTAL_ALTER_CONFIGS_RESOURCE: Struct = s(
    "AlterConfigsResource",
    &[
        f("resource_type", I8, 0, ALL),
        f("resource_name", Str, 0, ALL),
        f("configs", Structs(&INCREMENTAL_ALTERABLE_CONFIG), 0, ALL),
    ],
);
const INCREMENTAL_ALTER_CONFIGS_REQUEST: Struct = s(
    "IncrementalAlterConfigsRequest",
    &[
        f(
            "resources",
            Structs(&INCREMENTAL_ALTER_CONFIGS_RESOURCE),
            0,
            ALL,
        ),
        f("validate_only", I8, 0, ALL),
    ],
);

// OffsetDelete (47): never flexible.
const OFFSET_DELETE_REQUEST_PARTITION: Struct = s(
    "OffsetDeleteRequestPartition",
    &[f("partition_index", I32, 0, ALL)],
);
const OFFSET_DELETE_REQUEST_TOPIC: Struct = s(
    "OffsetDeleteRequestTopic",
    &[
        f("name", Str, 0, ALL),
        f(
            "partitions",
            Structs(&OFFSET_DELETE_REQUEST_PARTITION),
            0,
            ALL,
        ),
    ],
);
const OFFSET_DELETE_REQUEST: Struct = s(
    "OffsetDeleteRequest",
    &[
        f("group_id", Str, 0, ALL),
        f("topics", Structs(&OFFSET_DELETE_REQUEST_TOPIC), 0, ALL),
    ],
);

// DescribeCluster (60): flexible from v0.
const DESCRIBE_CLUSTER_REQUEST: Struct = s(
    "DescribeClusterRequest",
    &[
        f("include_cluster_authorized_operations", I8, 0, ALL),
        f("endpoint_type", I8, 1, ALL),
        f("include_fenced_brokers", I8, 2, ALL),
    ],
);

// DescribeTopicPartitions (75): flexible from v0.
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: Struct = s("TopicRequest", &[f("name", Str, 0, ALL)]);
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: Struct = s(
    "Cursor",
    &[
        f("topic_name", Str, 0, ALL),
        f("partition_index", I32, 0, ALL),
    ],
);
const DESCRIBE_TOPIC_PARTITIONS_REQUEST: Struct = s(
    "DescribeTopicPartitionsRequest",
    &[
        f("topics", Structs(&DESCRIBE_TOPIC_PARTITIONS_TOPIC), 0, ALL),
        f("response_partition_limit", I32, 0, ALL),
        f(
            "cursor",
            Optional(&DESCRIBE_TOPIC_PARTITIONS_CURSOR),
            0,
            ALL,
        ),
    ],
);

// AddPartitionsToTxn (24): flexible from v3; v4+ is the brokers' batched form.
const ADD_PARTITIONS_TO_TXN_TOPIC: Struct = s(
    "AddPartitionsToTxnTopic",
    &[f("name", Str, 0, ALL), f("partitions", Int32s, 0, ALL)],
);
const ADD_PARTITIONS_TO_TXN_TRANSACTION: Struct = s(
    "AddPartitionsToTxnTransaction",
    &[
        f("transactional_id", Str, 4, ALL),
        f("producer_id", I64, 4, ALL),
        f("producer_epoch", I16, 4, ALL),
        f("verify_only", I8, 4, ALL),
        f("topics", Structs(&ADD_PARTITIONS_TO_TXN_TOPIC), 4, ALL),
    ],
);
const ADD_PARTITIONS_TO_TXN_REQUEST: Struct = s(
    "AddPartitionsToTxnRequest",
    &[
        f(
            "transactions",
            Structs(&ADD_PARTITIONS_TO_TXN_TRANSACTION),
            4,
            ALL,
        ),
        f("v3_and_below_transactional_id", Str, 0, 3),
        f("v3_and_below_producer_id", I64, 0, 3),
        f("v3_and_below_producer_epoch", I16, 0, 3),
        f(
            "v3_and_below_topics",
            Structs(&ADD_PARTITIONS_TO_TXN_TOPIC),
            0,
            3,
        ),
    ],
);

// AddOffsetsToTxn (25): flexible from v3.
const ADD_OFFSETS_TO_TXN_REQUEST: Struct = s(
    "AddOffsetsToTxnRequest",
    &[
        f("transactional_id", Str, 0, ALL),
        f("producer_id", I64, 0, ALL),
        f("producer_epoch", I16, 0, ALL),
        f("group_id", Str, 0, ALL),
    ],
);

// EndTxn (26): flexible from v3.
const END_TXN_REQUEST: Struct = s(
    "EndTxnRequest",
    &[
        f("transactional_id", Str, 0, ALL),
        f("producer_id", I64, 0, ALL),
        f("producer_epoch", I16, 0, ALL),
        f("committed", I8, 0, ALL),
    ],
);

// WriteTxnMarkers (27): v1 only here, flexible.
const WRITABLE_TXN_MARKER_TOPIC: Struct = s(
    "WritableTxnMarkerTopic",
    &[
        f("name", Str, 0, ALL),
        f("partition_indexes", Int32s, 0, ALL),
    ],
);
const WRITABLE_TXN_MARKER: Struct = s(
    "WritableTxnMarker",
    &[
        f("producer_id", I64, 0, ALL),
        f("producer_epoch", I16, 0, ALL),
        f("transaction_result", I8, 0, ALL),
        f("topics", Structs(&WRITABLE_TXN_MARKER_TOPIC), 0, ALL),
        f("coordinator_epoch", I32, 0, ALL),
    ],
);
const WRITE_TXN_MARKERS_REQUEST: Struct = s(
    "WriteTxnMarkersRequest",
    &[f("markers", Structs(&WRITABLE_TXN_MARKER), 0, ALL)],
);

// TxnOffsetCommit (28): flexible from v3.
const TXN_OFFSET_COMMIT_PARTITION: Struct = s(
    "TxnOffsetCommitRequestPartition",
    &[
        f("partition_index", I32, 0, ALL),
        f("committed_offset", I64, 0, ALL),
        f("committed_leader_epoch", I32, 2, ALL),
        f("committed_metadata", Str, 0, ALL),
    ],
);
const TXN_OFFSET_COMMIT_TOPIC: Struct = s(
    "TxnOffsetCommitRequestTopic",
    &[
        f("name", Str, 0, ALL),
        f("partitions", Structs(&TXN_OFFSET_COMMIT_PARTITION), 0, ALL),
    ],
);
const TXN_OFFSET_COMMIT_REQUEST: Struct = s(
    "TxnOffsetCommitRequest",
    &[
        f("transactional_id", Str, 0, ALL),
        f("group_id", Str, 0, ALL),
        f("producer_id", I64, 0, ALL),
        f("producer_epoch", I16, 0, ALL),
        f("generation_id", I32, 3, ALL),
        f("member_id", Str, 3, ALL),
        f("group_instance_id", Str, 3, ALL),
        f("topics", Structs(&TXN_OFFSET_COMMIT_TOPIC), 0, ALL),
    ],
);

// DescribeProducers (61): flexible from v0.
const DESCRIBE_PRODUCERS_TOPIC: Struct = s(
    "TopicRequest",
    &[
        f("name", Str, 0, ALL),
        f("partition_indexes", Int32s, 0, ALL),
    ],
);
const DESCRIBE_PRODUCERS_REQUEST: Struct = s(
    "DescribeProducersRequest",
    &[f("topics", Structs(&DESCRIBE_PRODUCERS_TOPIC), 0, ALL)],
);

// DescribeTransactions (65): flexible from v0.
const DESCRIBE_TRANSACTIONS_REQUEST: Struct = s(
    "DescribeTransactionsRequest",
    &[f("transactional_ids", Strs, 0, ALL)],
);

// ListTransactions (66): flexible from v0.
const LIST_TRANSACTIONS_REQUEST: Struct = s(
    "ListTransactionsRequest",
    &[
        f("state_filters", Strs, 0, ALL),
        f("producer_id_filters", Int64s, 0, ALL),
        f("duration_filter", I64, 1, ALL),
        f("transactional_id_pattern", Str, 2, ALL),
    ],
);

const fn m(key: ApiKey, flexible_from: i16, body: &'static Struct) -> Message {
    Message {
        key,
        flexible_from,
        body,
    }
}

/// The request bodies of every api in [`crate::SUPPORTED_APIS`].
pub(crate) const MESSAGES: &[Message] = &[
    m(ApiKey::Produce, 9, &PRODUCE_REQUEST),
    m(ApiKey::Fetch, 12, &FETCH_REQUEST),
    m(ApiKey::ListOffsets, 6, &LIST_OFFSETS_REQUEST),
    m(ApiKey::Metadata, 9, &METADATA_REQUEST),
    m(ApiKey::OffsetCommit, 8, &OFFSET_COMMIT_REQUEST),
    m(ApiKey::OffsetFetch, 6, &OFFSET_FETCH_REQUEST),
    m(ApiKey::FindCoordinator, 3, &FIND_COORDINATOR_REQUEST),
    m(ApiKey::JoinGroup, 6, &JOIN_GROUP_REQUEST),
    m(ApiKey::Heartbeat, 4, &HEARTBEAT_REQUEST),
    m(ApiKey::LeaveGroup, 4, &LEAVE_GROUP_REQUEST),
    m(ApiKey::SyncGroup, 4, &SYNC_GROUP_REQUEST),
    m(ApiKey::DescribeGroups, 5, &DESCRIBE_GROUPS_REQUEST),
    m(ApiKey::ListGroups, 3, &LIST_GROUPS_REQUEST),
    m(ApiKey::ApiVersions, 3, &API_VERSIONS_REQUEST),
    m(ApiKey::CreateTopics, 5, &CREATE_TOPICS_REQUEST),
    m(ApiKey::DeleteTopics, 4, &DELETE_TOPICS_REQUEST),
    m(ApiKey::DeleteRecords, 2, &DELETE_RECORDS_REQUEST),
    m(ApiKey::InitProducerId, 2, &INIT_PRODUCER_ID_REQUEST),
    m(
        ApiKey::OffsetForLeaderEpoch,
        4,
        &OFFSET_FOR_LEADER_EPOCH_REQUEST,
    ),
    m(ApiKey::DescribeConfigs, 4, &DESCRIBE_CONFIGS_REQUEST),
    m(ApiKey::AlterConfigs, 2, &ALTER_CONFIGS_REQUEST),
    m(ApiKey::CreatePartitions, 2, &CREATE_PARTITIONS_REQUEST),
    m(ApiKey::DeleteGroups, 2, &DELETE_GROUPS_REQUEST),
    m(
        ApiKey::IncrementalAlterConfigs,
        1,
        &INCREMENTAL_ALTER_CONFIGS_REQUEST,
    ),
    m(ApiKey::OffsetDelete, NEVER, &OFFSET_DELETE_REQUEST),
    m(ApiKey::DescribeCluster, 0, &DESCRIBE_CLUSTER_REQUEST),
    m(
        ApiKey::DescribeTopicPartitions,
        0,
        &DESCRIBE_TOPIC_PARTITIONS_REQUEST,
    ),
    m(
        ApiKey::AddPartitionsToTxn,
        3,
        &ADD_PARTITIONS_TO_TXN_REQUEST,
    ),
    m(ApiKey::AddOffsetsToTxn, 3, &ADD_OFFSETS_TO_TXN_REQUEST),
    m(ApiKey::EndTxn, 3, &END_TXN_REQUEST),
    m(ApiKey::WriteTxnMarkers, 1, &WRITE_TXN_MARKERS_REQUEST),
    m(ApiKey::TxnOffsetCommit, 3, &TXN_OFFSET_COMMIT_REQUEST),
    m(ApiKey::DescribeProducers, 0, &DESCRIBE_PRODUCERS_REQUEST),
    m(
        ApiKey::DescribeTransactions,
        0,
        &DESCRIBE_TRANSACTIONS_REQUEST,
    ),
    m(ApiKey::ListTransactions, 0, &LIST_TRANSACTIONS_REQUEST),
];

/// The request body schema for an api, if Strom decodes it.
pub(crate) fn message(key: ApiKey) -> Option<&'static Message> {
    MESSAGES.iter().find(|m| m.key == key)
}
