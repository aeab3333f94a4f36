//! The cluster as a Metadata answer describes it: brokers, controller, topics, and for
//! each partition its leader, replicas and in-sync replicas.

use kafka_protocol::messages::MetadataResponse;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub error_code: i16,
    /// Node id of the leader, -1 when there is none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

impl PartitionInfo {
    /// Replicas that are not in sync with the leader.
    pub fn out_of_sync(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.isr.contains(r))
            .collect()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub error_code: i16,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

/// A Metadata answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

impl Metadata {
    pub fn from_response(r: MetadataResponse) -> Metadata {
        let mut brokers: Vec<BrokerInfo> = r
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        let mut topics: Vec<TopicInfo> = r
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        error_code: p.error_code,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.into_iter().map(|n| n.0).collect(),
                        isr: p.isr_nodes.into_iter().map(|n| n.0).collect(),
                        offline: p.offline_replicas.into_iter().map(|n| n.0).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicInfo {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    topic_id: t.topic_id,
                    error_code: t.error_code,
                    internal: t.is_internal,
                    partitions,
                }
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Metadata {
            cluster_id: r.cluster_id.map(|c| c.to_string()),
            controller_id: r.controller_id.0,
            brokers,
            topics,
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}
