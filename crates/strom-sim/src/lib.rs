//! A seeded, deterministic simulation of a Strom cluster. It runs the real replication
//! code (`strom_raft::Replica` over `strom_log` segment logs in temporary directories)
//! on an in-memory network that delays, reorders, drops and partitions messages, with
//! nodes that crash (losing whatever was not yet fsynced) and restart. One seed, one
//! run: a failure is reproduced by its seed.
//!
//! Checked at the end of every run, after healing the network and letting it settle:
//! every acknowledged (committed) batch is on every node at its offset, the replicas'
//! logs are identical byte for byte, and no term ever had two leaders.

mod network;
mod node;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_batch::{RecordBatchBuilder, RecordBatchHeader};

use network::Network;
use node::SimNode;

/// What a run does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    pub groups: u64,
    pub steps: usize,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Per-step probabilities of faults.
    pub crash_rate: f64,
    pub partition_rate: f64,
    /// Per-step probability that one group's fsync on one node fails.
    pub fsync_failure_rate: f64,
    /// Per-step probability that one node applies size retention to one group's log.
    pub retention_rate: f64,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 3,
            groups: 2,
            steps: 4000,
            drop_rate: 0.05,
            crash_rate: 0.002,
            partition_rate: 0.002,
            fsync_failure_rate: 0.002,
            retention_rate: 0.003,
        }
    }
}

/// A batch whose commit was acknowledged to the (simulated) producer.
#[derive(Debug, Clone)]
pub struct Acked {
    pub group: u64,
    pub base_offset: i64,
    pub values: Vec<Vec<u8>>,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct SimReport {
    pub acked: usize,
    /// `when_all_committed` waits that were answered "committed" (and then checked).
    pub all_committed: usize,
    pub proposals: usize,
    pub crashes: usize,
    pub fsync_failures: usize,
    pub retentions: usize,
    pub partitions: usize,
    pub elections: usize,
    pub final_offsets: Vec<i64>,
}

/// A simulated cluster.
#[allow(missing_debug_implementations)]
pub struct Sim {
    config: SimConfig,
    rng: StdRng,
    now_ms: i64,
    nodes: Vec<SimNode>,
    net: Network,
    acked: Arc<Mutex<Vec<Acked>>>,
    /// Offsets below which a leader said everything was committed (`when_all_committed`).
    committed_up_to: Arc<Mutex<Vec<(u64, i64)>>>,
    leaders: BTreeMap<(u64, u64), u64>,
    report: SimReport,
    next_value: u64,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut rng = StdRng::seed_from_u64(config.seed);
        let voters: Vec<u64> = (1..=config.nodes).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                // raft draws election timeouts from the thread's RNG; a fixed, distinct
                // timeout per node keeps runs reproducible and still breaks ties.
                let election = 10 + rng.gen_range(0..10) * 2 + id as usize;
                SimNode::new(
                    id,
                    dir.path().join(format!("node-{id}")),
                    &voters,
                    config.groups,
                    election,
                )
            })
            .collect();
        Sim {
            net: Network::new(config.drop_rate),
            config,
            rng,
            now_ms: 1_000_000,
            nodes,
            acked: Arc::new(Mutex::new(Vec::new())),
            committed_up_to: Arc::new(Mutex::new(Vec::new())),
            leaders: BTreeMap::new(),
            report: SimReport::default(),
            next_value: 0,
            _dir: dir,
        }
    }

    /// Runs the configured number of random steps, then heals everything, settles, and
    /// checks the invariants. Panics (with the seed) when one is broken.
    pub fn run(mut self) -> SimReport {
        for _ in 0..self.config.steps {
            self.random_step(true);
        }
        self.net.heal();
        for n in 0..self.nodes.len() {
            if !self.nodes[n].is_up() {
                self.nodes[n].restart();
            }
        }
        let mut settled = false;
        for _ in 0..200_000 {
            self.random_step(false);
            if self.converged() {
                settled = true;
                break;
            }
        }
        assert!(
            settled,
            "seed {}: the cluster did not converge after healing: {:?}",
            self.config.seed,
            self.nodes.iter().map(|n| n.summary()).collect::<Vec<_>>()
        );
        self.check();
        self.report
    }

    fn random_step(&mut self, faults: bool) {
        self.now_ms += 1;
        let roll: f64 = self.rng.r#gen();
        if faults && roll < self.config.crash_rate {
            let down = self.nodes.iter().filter(|n| !n.is_up()).count();
            let i = self.rng.gen_range(0..self.nodes.len());
            if self.nodes[i].is_up() && down == 0 {
                let keep: f64 = self.rng.r#gen();
                self.nodes[i].crash(keep);
                self.net.drop_node(self.nodes[i].id);
                self.report.crashes += 1;
            } else if !self.nodes[i].is_up() {
                self.nodes[i].restart();
            }
            return;
        }
        if faults && roll < self.config.crash_rate + self.config.partition_rate {
            if self.net.is_partitioned() {
                self.net.heal();
            } else {
                let id = self.rng.gen_range(1..=self.config.nodes);
                self.net.isolate(id, self.config.nodes);
                self.report.partitions += 1;
            }
            return;
        }
        let failure_at = self.config.crash_rate + self.config.partition_rate;
        if faults && roll < failure_at + self.config.fsync_failure_rate {
            let i = self.rng.gen_range(0..self.nodes.len());
            let group = self.rng.gen_range(0..self.config.groups);
            if self.nodes[i].fail_fsync(group) {
                self.report.fsync_failures += 1;
            }
            return;
        }
        let retention_at = failure_at + self.config.fsync_failure_rate;
        if faults && roll < retention_at + self.config.retention_rate {
            let i = self.rng.gen_range(0..self.nodes.len());
            let group = self.rng.gen_range(0..self.config.groups);
            if self.nodes[i].apply_retention(group, 8 * 1024, self.now_ms) {
                self.report.retentions += 1;
            }
            return;
        }
        let i = self.rng.gen_range(0..self.nodes.len());
        match self.rng.gen_range(0..100) {
            0..=49 => {
                if let Some((to, group, m)) = self.net.take(&mut self.rng) {
                    let node = &mut self.nodes[(to - 1) as usize];
                    let out = node.step(group, m, self.now_ms);
                    self.net.send_all(out, &mut self.rng);
                }
            }
            50..=69 => {
                let out = self.nodes[i].tick(self.now_ms);
                self.net.send_all(out, &mut self.rng);
            }
            70..=84 => {
                let out = self.nodes[i].flush(self.now_ms);
                self.net.send_all(out, &mut self.rng);
            }
            _ if faults => self.propose(i),
            _ => {}
        }
        self.observe_leaders();
    }

    fn propose(&mut self, i: usize) {
        let group = self.rng.gen_range(0..self.config.groups);
        let records = self.rng.gen_range(1..=12);
        let mut b = RecordBatchBuilder::new();
        let mut values = Vec::new();
        for _ in 0..records {
            self.next_value += 1;
            let pad = "x".repeat(self.rng.gen_range(0..48));
            let v = format!("v{}-{}{pad}", self.config.seed, self.next_value).into_bytes();
            b.push(self.now_ms, None, Some(&v), &[]);
            values.push(v);
        }
        let acked = self.acked.clone();
        let cell: Arc<Mutex<Option<i64>>> = Arc::new(Mutex::new(None));
        let base = cell.clone();
        let waiter = Box::new(move |r: strom_raft::Result<i64>| {
            if r.is_ok()
                && let Some(base_offset) = *base.lock().unwrap()
            {
                acked.lock().unwrap().push(Acked {
                    group,
                    base_offset,
                    values,
                });
            }
        });
        if let Some((proposed, out)) = self.nodes[i].propose(group, b.build(), waiter, self.now_ms)
        {
            *cell.lock().unwrap() = Some(proposed);
            self.report.proposals += 1;
            self.net.send_all(out, &mut self.rng);
            // Now and then the same batch "comes again" (an idempotent retry) and waits
            // for everything in the leader's log, as the broker answers duplicates.
            if self.rng.gen_range(0..4) == 0 {
                let seen = self.committed_up_to.clone();
                let waiter = Box::new(move |r: strom_raft::Result<i64>| {
                    if let Ok(last) = r {
                        seen.lock().unwrap().push((group, last + 1));
                    }
                });
                if let Some(out) = self.nodes[i].when_all_committed(group, waiter, self.now_ms) {
                    self.net.send_all(out, &mut self.rng);
                }
            }
        }
    }

    fn observe_leaders(&mut self) {
        for n in &self.nodes {
            for (group, term) in n.leading() {
                let prev = self.leaders.insert((group, term), n.id);
                assert!(
                    prev.is_none_or(|p| p == n.id),
                    "seed {}: group {group} term {term} has two leaders: {prev:?} and {}",
                    self.config.seed,
                    n.id
                );
                if prev.is_none() {
                    self.report.elections += 1;
                }
            }
        }
    }

    /// Every group has one leader, every replica has the leader's whole log committed,
    /// and nothing waits for an fsync.
    fn converged(&self) -> bool {
        (0..self.config.groups).all(|g| {
            let states: Vec<_> = self.nodes.iter().map(|n| n.group_state(g)).collect();
            let Some(states) = states.into_iter().collect::<Option<Vec<_>>>() else {
                return false;
            };
            states.iter().filter(|s| s.2).count() == 1
                && states
                    .iter()
                    .all(|s| (s.0, s.1) == (states[0].0, states[0].0))
        }) && self.nodes.iter().all(|n| n.nothing_unsynced())
    }

    fn check(&mut self) {
        let seed = self.config.seed;
        let acked = self.acked.lock().unwrap().clone();
        self.report.acked = acked.len();
        for g in 0..self.config.groups {
            // Retention ran on each node on its own: compare what all still hold.
            let from = self.nodes.iter().map(|n| n.log_start(g)).max().unwrap_or(0);
            let logs: Vec<Vec<u8>> = self
                .nodes
                .iter_mut()
                .map(|n| n.log_bytes(g, from))
                .collect();
            for (i, l) in logs.iter().enumerate().skip(1) {
                assert!(
                    *l == logs[0],
                    "seed {seed}: group {g}: node {} and node 1 differ ({} vs {} bytes)",
                    i + 1,
                    l.len(),
                    logs[0].len()
                );
            }
            // Kafka's offsets: the first batch at the log start, each next one right after the last
            // (leader changes took none), no control batches, epochs never going back.
            let (mut next, mut epoch, mut pos) = (from, 0i32, 0usize);
            while pos < logs[0].len() {
                let h = RecordBatchHeader::parse(&logs[0][pos..], pos).unwrap();
                assert!(
                    h.base_offset == next && !h.is_control() && h.partition_leader_epoch >= epoch,
                    "seed {seed}: group {g}: a batch at {} (epoch {}) after offset {} (epoch {epoch})",
                    h.base_offset,
                    h.partition_leader_epoch,
                    next - 1
                );
                (next, epoch) = (h.last_offset() + 1, h.partition_leader_epoch);
                pos += h.total_size();
            }
            let hw = self.nodes[0].group_state(g).map_or(0, |s| s.1);
            assert_eq!(
                hw, next,
                "seed {seed}: group {g}: high watermark and log end"
            );
            self.report.final_offsets.push(hw);
        }
        // What a leader called committed is in every final log.
        let up_to = self.committed_up_to.lock().unwrap().clone();
        self.report.all_committed = up_to.len();
        for &(g, end) in &up_to {
            let final_end = self.report.final_offsets[g as usize];
            assert!(
                end <= final_end,
                "seed {seed}: group {g}: said committed up to {end}, the log ends at {final_end}"
            );
        }
        for a in &acked {
            for n in self.nodes.iter_mut() {
                if a.base_offset < n.log_start(a.group) {
                    continue;
                }
                let got = n.values_at(a.group, a.base_offset, a.values.len());
                assert_eq!(
                    got, a.values,
                    "seed {seed}: node {} lost acknowledged batch at {}/{}",
                    n.id, a.group, a.base_offset
                );
            }
        }
    }
}
