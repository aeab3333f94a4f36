//! Three `RaftNode`s in one process, talking over real TCP through `PeerTransport`:
//! a group elects a leader, commits what it is given on all three logs, and elects a
//! new leader when the old one goes away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_batch::RecordBatchBuilder;
use strom_log::{LogManager, ManagerConfig, TopicPartition};
use strom_raft::{PeerTransport, RaftNode, ReplicaConfig, serve_peers};

struct TestNode {
    node: Arc<RaftNode>,
    manager: Arc<LogManager>,
    server: tokio::task::JoinHandle<()>,
}

async fn start_node(
    id: u64,
    dir: &std::path::Path,
    peers: &HashMap<u64, String>,
    listener: tokio::net::TcpListener,
) -> TestNode {
    let manager = LogManager::open(ManagerConfig::new(dir.join(format!("n{id}")))).unwrap();
    let tp = TopicPartition::new("t", 0);
    if !manager.contains(&tp) {
        manager.create(&tp, None).unwrap();
    }
    let transport = PeerTransport::start(id, peers);
    let config = ReplicaConfig {
        election_tick: 10,
        heartbeat_tick: 2,
        ..ReplicaConfig::default()
    };
    let node = RaftNode::start(
        id,
        manager.clone(),
        transport,
        config,
        Duration::from_millis(20),
    );
    let inbound_node = node.clone();
    let server = tokio::spawn(serve_peers(
        listener,
        Arc::new(move |group, msg| inbound_node.step(group, msg)),
    ));
    node.add_group(1, tp, &[1, 2, 3], false, None).unwrap();
    TestNode {
        node,
        manager,
        server,
    }
}

fn batch(i: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new();
    for j in 0..3 {
        b.push(1000, None, Some(format!("m{i}-{j}").as_bytes()), &[]);
    }
    b.build()
}

async fn wait_leader(nodes: &[&TestNode], not: Option<u64>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, n) in nodes.iter().enumerate() {
            let s = n.node.status(1).unwrap();
            if s.is_leader && Some(n.node.id()) != not {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn propose_all(node: &RaftNode, range: std::ops::Range<usize>) {
    let mut waits = Vec::new();
    for i in range {
        let (tx, rx) = tokio::sync::oneshot::channel();
        node.propose(
            1,
            vec![batch(i)],
            Some(Box::new(move |r| {
                let _ = tx.send(r.is_ok());
            })),
        )
        .unwrap();
        waits.push(rx);
    }
    for w in waits {
        assert!(
            tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .unwrap()
                .unwrap()
        );
    }
}

fn log_bytes(m: &LogManager) -> Vec<u8> {
    m.with_log(&TopicPartition::new("t", 0), |l| {
        let mut out = Vec::new();
        let mut from = l.log_start_offset();
        while let Some(s) = l.read(from, 1 << 20, None).unwrap().slice {
            out.extend(s.read_to_vec().unwrap());
            from = s.last_offset + 1;
        }
        out
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_fail_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = Vec::new();
    let mut peers = HashMap::new();
    for id in 1..=3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, dir.path(), &peers, l).await);
    }
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let leader = wait_leader(&refs, None).await;
    propose_all(&nodes[leader].node, 0..200).await;

    // Every replica ends with the same bytes, committed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hws: Vec<i64> = nodes
            .iter()
            .map(|n| n.node.status(1).unwrap().high_watermark)
            .collect();
        if hws.iter().all(|&h| h == hws[0]) && hws[0] >= 600 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "followers did not catch up: {hws:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(&n.manager)).collect();
    assert!(
        logs[0] == logs[1] && logs[1] == logs[2],
        "replica logs differ"
    );

    // The leader goes away; the other two elect a new one and keep committing.
    let old = nodes.remove(leader);
    let old_id = old.node.id();
    old.node.shutdown();
    old.server.abort();
    drop(old);
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let started = Instant::now();
    let new_leader = wait_leader(&refs, Some(old_id)).await;
    eprintln!("new leader after {:?}", started.elapsed());
    propose_all(&nodes[new_leader].node, 200..250).await;
    for n in &nodes {
        n.node.shutdown();
    }
}

/// Remembers the high watermark it was told.
struct SeenWatermark(std::sync::atomic::AtomicI64);

impl strom_raft::GroupListener for SeenWatermark {
    fn committed(&self, _group: u64, high_watermark: i64) {
        self.0
            .fetch_max(high_watermark, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A proposer told "committed" finds the listener (the broker's partition status, which
/// Fetch and ListOffsets read) already past its records: read-your-writes after acks=all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_answered_after_the_listener_saw_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(ManagerConfig::new(dir.path().to_path_buf())).unwrap();
    let tp = TopicPartition::new("t", 0);
    manager.create(&tp, None).unwrap();
    let peers = HashMap::from([(1u64, "127.0.0.1:1".to_string())]);
    let node = RaftNode::start(
        1,
        manager,
        PeerTransport::start(1, &peers),
        ReplicaConfig::default(),
        Duration::from_millis(10),
    );
    let seen = Arc::new(SeenWatermark(std::sync::atomic::AtomicI64::new(-1)));
    node.add_group(1, tp, &[1], false, Some(seen.clone()))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.status(1).unwrap().is_leader {
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..200 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seen = seen.clone();
        node.propose(
            1,
            vec![batch(i)],
            Some(Box::new(move |r| {
                let last = r.unwrap();
                let hw = seen.0.load(std::sync::atomic::Ordering::SeqCst);
                let _ = tx.send((last, hw));
            })),
        )
        .unwrap();
        let (last, hw) = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
        assert!(
            hw > last,
            "told {last} committed while the listener saw {hw}"
        );
    }
}
