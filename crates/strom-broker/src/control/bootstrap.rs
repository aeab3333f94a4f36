//! What a node does once its Raft groups run, in the background until done: register
//! its Kafka address in the metadata log, carry over the topics of a pre-Raft
//! single-node data directory, and create `__consumer_offsets`. The node reports ready
//! when its registration and the offsets topic are in the metadata.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{ControlPlane, PROPOSAL_RETRY};
use crate::cluster::{BrokerAddr, Command, assign_replicas};
use crate::groups::OFFSETS_TOPIC;
use crate::topics::{TopicMeta, read_legacy_topics, retire_legacy_topics};
use crate::txns::TXN_TOPIC;

pub(crate) fn start(control: &Arc<ControlPlane>, stopping: watch::Receiver<bool>) {
    let weak = Arc::downgrade(control);
    std::thread::Builder::new()
        .name("strom-bootstrap".into())
        .spawn(move || run(weak, stopping))
        .expect("spawn bootstrap thread");
}

fn run(weak: Weak<ControlPlane>, stopping: watch::Receiver<bool>) {
    let mut last_try: BTreeMap<&'static str, Instant> = BTreeMap::new();
    let mut due = |what: &'static str| {
        let now = Instant::now();
        match last_try.get(what) {
            Some(t) if now.duration_since(*t) < PROPOSAL_RETRY => false,
            _ => {
                last_try.insert(what, now);
                true
            }
        }
    };
    let mut legacy = None;
    loop {
        let Some(b) = weak.upgrade() else { return };
        if *stopping.borrow() {
            return;
        }
        let me = b.config.node_id;
        let (host, port) = b.config.advertised();
        let addr = BrokerAddr {
            host,
            port: i32::from(port),
        };
        let registered = b.brokers().get(&me) == Some(&addr);
        if !registered && due("register") {
            b.propose(&Command::RegisterBroker {
                id: me,
                addr,
                cluster_id: b.own_cluster_id.clone(),
            });
        }
        let legacy_done = migrate_legacy(&b, &mut legacy, &mut due);
        let offsets = b.topics.contains(OFFSETS_TOPIC);
        if !offsets && legacy_done && due("offsets") {
            b.propose(&Command::CreateTopic {
                meta: offsets_topic(&b),
            });
        }
        if registered && offsets && legacy_done {
            b.set_ready();
            tracing::info!(node = me, "node registered; ready");
            return;
        }
        drop(b);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Topics of a single-node data directory written before Raft (`topics.json`) become
/// metadata commands once; their logs are already in place. True when nothing is left.
fn migrate_legacy(
    b: &ControlPlane,
    legacy: &mut Option<Vec<TopicMeta>>,
    due: &mut impl FnMut(&'static str) -> bool,
) -> bool {
    let topics = legacy.get_or_insert_with(|| match read_legacy_topics(&b.config.data_dir) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the old topics.json; its topics are not carried over");
            Vec::new()
        }
    });
    if topics.is_empty() {
        return true;
    }
    let missing: Vec<&TopicMeta> = topics
        .iter()
        .filter(|t| !b.topics.contains(&t.name))
        .collect();
    if missing.is_empty() {
        if let Err(e) = retire_legacy_topics(&b.config.data_dir) {
            tracing::warn!(error = %e, "cannot rename topics.json");
        }
        tracing::info!(
            topics = topics.len(),
            "carried the topics of topics.json into the metadata log"
        );
        topics.clear();
        return true;
    }
    if due("legacy") {
        for t in missing {
            let mut meta = t.clone();
            meta.replicas = vec![vec![b.config.node_id]; meta.partitions as usize];
            meta.groups = Vec::new();
            b.propose(&Command::CreateTopic { meta });
        }
    }
    false
}

/// `__consumer_offsets`: compacted by snapshot (never by time or size), replicated like
/// any topic.
fn offsets_topic(b: &ControlPlane) -> TopicMeta {
    internal_topic(b, OFFSETS_TOPIC, b.config.group.offsets_topic_partitions)
}

/// `__transaction_state`, created when the first transactional producer looks for its
/// coordinator, as Kafka does: compacted like `__consumer_offsets`.
pub(super) fn transaction_topic(b: &ControlPlane) -> TopicMeta {
    internal_topic(b, TXN_TOPIC, b.config.txn.transaction_state_partitions)
}

/// A coordinator's internal topic: compacted (never deleted by time or size), replicated
/// like any topic.
fn internal_topic(b: &ControlPlane, name: &str, partitions: i32) -> TopicMeta {
    let configs: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("retention.ms", "-1"),
        ("retention.bytes", "-1"),
        ("segment.bytes", "104857600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let rf = b.default_replication_factor().max(1) as usize;
    TopicMeta {
        name: name.to_string(),
        id: uuid::Uuid::new_v4(),
        partitions,
        configs,
        internal: true,
        replicas: assign_replicas(&b.node_ids(), 0, partitions, rf, 0),
        groups: Vec::new(),
    }
}
