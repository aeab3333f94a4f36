//! A simulated node: a `LogManager` over its own directory and one `Replica` per group,
//! driven synchronously. A crash drops every write after a random point past the
//! last fsync; a restart reopens the logs and Raft state from disk. A failed fsync
//! stops one group's replica and recovers it the way `RaftNode` does: its log cut back to
//! what was durable, the replica rebuilt from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use strom_log::{LogConfig, LogError, LogManager, ManagerConfig, TopicPartition};
use strom_raft::{LogRef, LogStorage, Message, Outbox, Replica, ReplicaConfig, Waiter};

fn tp(group: u64) -> TopicPartition {
    TopicPartition::new("sim", group as i32)
}

struct Up {
    manager: Arc<LogManager>,
    replicas: BTreeMap<u64, Replica>,
    flush_wanted: BTreeMap<u64, i64>,
}

pub(crate) struct SimNode {
    pub id: u64,
    dir: PathBuf,
    voters: Vec<u64>,
    groups: u64,
    election: usize,
    up: Option<Up>,
}

impl SimNode {
    pub(crate) fn new(
        id: u64,
        dir: PathBuf,
        voters: &[u64],
        groups: u64,
        election: usize,
    ) -> SimNode {
        let mut n = SimNode {
            id,
            dir,
            voters: voters.to_vec(),
            groups,
            election,
            up: None,
        };
        n.restart();
        n
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.is_some()
    }

    pub(crate) fn restart(&mut self) {
        let mut config = ManagerConfig::new(&self.dir);
        config.default_log = LogConfig {
            segment_bytes: 4 * 1024,
            index_interval_bytes: 512,
            max_index_bytes: 64 * 1024,
            retention_ms: None,
            ..LogConfig::default()
        };
        // Retention runs only when the simulation says so (`apply_retention`).
        config.retention_check_interval = std::time::Duration::from_secs(365 * 86_400);
        let manager = LogManager::open(config).expect("open logs");
        let mut replicas = BTreeMap::new();
        for g in 0..self.groups {
            if !manager.contains(&tp(g)) {
                manager.create(&tp(g), None).expect("create log");
            }
            replicas.insert(g, self.open_replica(&manager, g));
        }
        self.up = Some(Up {
            manager,
            replicas,
            flush_wanted: BTreeMap::new(),
        });
    }

    fn open_replica(&self, manager: &Arc<LogManager>, g: u64) -> Replica {
        let rc = ReplicaConfig {
            election_tick: self.election,
            heartbeat_tick: 3,
            max_size_per_msg: 256,
            election_range: Some((self.election, self.election + 1)),
            ..ReplicaConfig::default()
        };
        let log = LogRef {
            manager: manager.clone(),
            tp: tp(g),
        };
        let storage = LogStorage::open(log, &self.voters, false).expect("open storage");
        Replica::new(self.id, g, storage, &rc, false).expect("replica")
    }

    /// An fsync of `group`'s log fails: the log goes offline, the replica stops (its
    /// waiters fail: nothing it had not yet acknowledged ever will be), the log is cut
    /// back to its last successful fsync and the replica is rebuilt from it.
    pub(crate) fn fail_fsync(&mut self, group: u64) -> bool {
        let Some(mut up) = self.up.take() else {
            return false;
        };
        let failed = up
            .manager
            .with_log(&tp(group), |l| {
                let error = LogError::Io {
                    path: l.dir().to_path_buf(),
                    source: std::io::Error::from_raw_os_error(5),
                };
                l.fail_flush(&error);
            })
            .is_some();
        if failed {
            if let Some(mut r) = up.replicas.remove(&group) {
                r.fail_waiters();
            }
            up.flush_wanted.remove(&group);
            up.manager.recover(&tp(group)).expect("recover the log");
            LogStorage::rewrite_after_fault(&self.dir.join(tp(group).dir_name()))
                .expect("rewrite the group's files");
            let r = self.open_replica(&up.manager, group);
            up.replicas.insert(group, r);
        }
        self.up = Some(up);
        failed
    }

    /// Crashes: of what was written since the last fsync, only the part before a point
    /// `keep` of the way survives (whole batches, as a torn tail is cut on recovery).
    pub(crate) fn crash(&mut self, keep: f64) {
        let Some(up) = self.up.take() else { return };
        for g in 0..self.groups {
            up.manager.with_log(&tp(g), |l| {
                let (durable, end) = (l.durable_offset(), l.log_end_offset());
                let cut = durable + ((end - durable) as f64 * keep) as i64;
                l.truncate_to(cut).expect("cut unsynced writes");
            });
        }
        drop(up.replicas);
        up.manager.close().expect("close logs");
    }

    fn collect(up: &mut Up, group: u64, out: Outbox) -> Vec<(u64, Message)> {
        if let Some(f) = out.flush {
            let w = up.flush_wanted.entry(group).or_insert(f);
            *w = (*w).max(f);
        }
        for (w, result) in out.answered {
            w(result);
        }
        out.messages
    }

    pub(crate) fn step(&mut self, group: u64, m: Message, now_ms: i64) -> Vec<(u64, Message)> {
        let Some(up) = self.up.as_mut() else {
            return Vec::new();
        };
        let r = up.replicas.get_mut(&group).expect("group");
        let mut out = Outbox::default();
        r.step(m).expect("step");
        r.advance(now_ms, &mut out).expect("advance");
        Self::collect(up, group, out)
    }

    pub(crate) fn tick(&mut self, now_ms: i64) -> Vec<(u64, Message)> {
        let Some(up) = self.up.as_mut() else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for g in 0..self.groups {
            let r = up.replicas.get_mut(&g).unwrap();
            let mut out = Outbox::default();
            r.tick();
            r.advance(now_ms, &mut out).expect("advance");
            all.extend(Self::collect(up, g, out));
        }
        all
    }

    /// Applies size retention to a group's log: at most `bytes` of whole segments stay
    /// (and what Raft keeps). Followers behind the new log start are sent a snapshot.
    pub(crate) fn apply_retention(&mut self, group: u64, bytes: u64, now_ms: i64) -> bool {
        let Some(up) = self.up.as_ref() else {
            return false;
        };
        up.manager
            .with_log(&tp(group), |l| {
                let mut c = l.config().clone();
                c.retention_bytes = Some(bytes);
                l.set_config(c);
                l.apply_retention(now_ms)
                    .is_ok_and(|r| r.segments_deleted > 0)
            })
            .unwrap_or(false)
    }

    /// The log start offset of a group's log.
    pub(crate) fn log_start(&self, group: u64) -> i64 {
        let up = self.up.as_ref().expect("node up");
        up.manager
            .with_log(&tp(group), |l| l.log_start_offset())
            .unwrap()
    }

    /// Runs the fsyncs the groups asked for and reports them durable.
    pub(crate) fn flush(&mut self, now_ms: i64) -> Vec<(u64, Message)> {
        let Some(up) = self.up.as_mut() else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for (g, _) in std::mem::take(&mut up.flush_wanted) {
            let durable = up
                .manager
                .with_log(&tp(g), |l| l.flush())
                .unwrap()
                .expect("flush");
            let r = up.replicas.get_mut(&g).unwrap();
            let mut out = Outbox::default();
            r.on_durable(durable, &mut out);
            r.advance(now_ms, &mut out).expect("advance");
            all.extend(Self::collect(up, g, out));
        }
        all
    }

    pub(crate) fn propose(
        &mut self,
        group: u64,
        batch: Vec<u8>,
        waiter: Waiter,
        now_ms: i64,
    ) -> Option<(i64, Vec<(u64, Message)>)> {
        let up = self.up.as_mut()?;
        let r = up.replicas.get_mut(&group)?;
        if !r.is_leader() {
            return None;
        }
        let proposed = r.propose(vec![batch], Some(waiter)).ok()?;
        let mut out = Outbox::default();
        r.advance(now_ms, &mut out).expect("advance");
        Some((proposed.base_offset, Self::collect(up, group, out)))
    }

    /// Asks the group's leader here to tell `waiter` once everything in its log is
    /// committed (how the broker answers a retried idempotent batch). False when this
    /// node does not lead the group.
    pub(crate) fn when_all_committed(
        &mut self,
        group: u64,
        waiter: Waiter,
        now_ms: i64,
    ) -> Option<Vec<(u64, Message)>> {
        let up = self.up.as_mut()?;
        let r = up.replicas.get_mut(&group)?;
        r.when_all_committed(waiter).ok()?;
        let mut out = Outbox::default();
        r.advance(now_ms, &mut out).expect("advance");
        Some(Self::collect(up, group, out))
    }

    /// (group, term) of every group this node leads.
    pub(crate) fn leading(&self) -> Vec<(u64, u64)> {
        self.up.as_ref().map_or(Vec::new(), |up| {
            up.replicas
                .iter()
                .filter(|(_, r)| r.is_leader())
                .map(|(g, r)| (*g, r.term()))
                .collect()
        })
    }

    /// (log end offset, high watermark, leader?) of a group.
    pub(crate) fn group_state(&self, group: u64) -> Option<(i64, i64, bool)> {
        let up = self.up.as_ref()?;
        let r = up.replicas.get(&group)?;
        let end = up.manager.with_log(&tp(group), |l| l.log_end_offset())?;
        Some((end, r.high_watermark(), r.is_leader()))
    }

    pub(crate) fn nothing_unsynced(&self) -> bool {
        self.up.as_ref().is_some_and(|up| {
            up.flush_wanted.is_empty()
                && (0..self.groups).all(|g| {
                    up.manager
                        .with_log(&tp(g), |l| l.durable_offset() == l.log_end_offset())
                        .unwrap_or(false)
                })
        })
    }

    /// The log of a group from offset `from` (a batch boundary) as bytes.
    pub(crate) fn log_bytes(&mut self, group: u64, from: i64) -> Vec<u8> {
        let up = self.up.as_ref().expect("node up");
        up.manager
            .with_log(&tp(group), |l| {
                let mut out = Vec::new();
                let mut from = from;
                loop {
                    let r = l.read(from, 1 << 20, None).expect("read");
                    let Some(s) = r.slice else { break };
                    out.extend(s.read_to_vec().expect("read bytes"));
                    from = s.last_offset + 1;
                }
                out
            })
            .unwrap()
    }

    /// The values of the `n` records starting at `offset`.
    pub(crate) fn values_at(&mut self, group: u64, offset: i64, n: usize) -> Vec<Vec<u8>> {
        let up = self.up.as_ref().expect("node up");
        up.manager
            .with_log(&tp(group), |l| {
                let r = l.read(offset, 1, None).expect("read");
                let Some(s) = r.slice else { return Vec::new() };
                let bytes = s.read_to_vec().expect("read bytes");
                let (_, records) = strom_batch::decode_records(&bytes).expect("decode");
                records
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .take(n)
                    .map(|r| r.value.unwrap_or_default())
                    .collect()
            })
            .unwrap()
    }

    pub(crate) fn summary(&self) -> String {
        match &self.up {
            None => format!("node {}: down", self.id),
            Some(up) => {
                let groups: Vec<String> = up
                    .replicas
                    .iter()
                    .map(|(g, r)| {
                        let (end, durable) = up
                            .manager
                            .with_log(&tp(*g), |l| (l.log_end_offset(), l.durable_offset()))
                            .unwrap();
                        format!(
                            "g{g}: {r:?} end {end} durable {durable} hw {}",
                            r.high_watermark()
                        )
                    })
                    .collect();
                format!("node {}: {}", self.id, groups.join("; "))
            }
        }
    }
}
