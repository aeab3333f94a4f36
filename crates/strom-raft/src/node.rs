//! `RaftNode`: every Raft group of this node under one driver — one tick thread for
//! all groups, outgoing messages handed to one transport (one connection per peer
//! node, batched), fsyncs through the log manager's group commit (one round serves all
//! groups that wrote), and listeners told about commits, leadership and (for groups
//! that apply entries) committed entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, Message};
use strom_log::{FlushPolicy, LogManager, TopicPartition};

use crate::error::{RaftError, Result};
use crate::replica::{Outbox, Proposed, Replica, ReplicaConfig, Waiter};
use crate::storage::{LogRef, LogStorage};

/// Carries messages to other nodes (never blocks; may drop).
pub trait Transport: Send + Sync {
    fn send(&self, to: u64, group: u64, msg: Message);
}

/// Told about one group's progress. Called without the group's lock held.
pub trait GroupListener: Send + Sync {
    /// The high watermark moved up.
    fn committed(&self, _group: u64, _high_watermark: i64) {}
    /// The leader or term changed (`leader` as this replica knows it).
    fn leadership(&self, _group: u64, _leader: Option<u64>, _term: u64, _is_leader: bool) {}
    /// Committed entries, in order (only for groups created with `apply_entries`).
    fn apply(&self, _group: u64, _entries: Vec<Entry>) {}
    /// The replica stopped after a storage error: it leads nothing and answers nothing
    /// until it is recovered, which is then told through `leadership` and `committed`.
    fn storage_failed(&self, _group: u64, _cause: &str) {}
}

/// What a group looks like from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub leader: Option<u64>,
    pub term: u64,
    pub is_leader: bool,
    pub high_watermark: i64,
    pub voters: Vec<u64>,
    pub in_sync: Vec<u64>,
}

struct Slot {
    group: u64,
    tp: TopicPartition,
    replica: Mutex<Replica>,
    /// Set (under the replica's lock) when the group is removed: a tick or a message
    /// that picked the slot up before must not touch raft, whose log may be gone.
    removed: AtomicBool,
    listener: Option<Arc<dyn GroupListener>>,
    /// How the group was added, to add it again after a storage error.
    voters: Vec<u64>,
    apply_entries: bool,
}

/// A group taken out of service by a storage error, waiting to be recovered.
struct FailedGroup {
    /// The stopped slot: how to add the group again (its log, voters, listener).
    slot: Arc<Slot>,
    cause: String,
    /// Whether the listener has been told (from the tick thread, see `fail_group`).
    notified: bool,
    attempts: u32,
    next_attempt: Instant,
}

/// First wait before recovering a failed group, doubled per failed attempt up to
/// [`RECOVERY_BACKOFF_MAX`] (a full disk may take a while to get space back).
const RECOVERY_BACKOFF: Duration = Duration::from_millis(100);
const RECOVERY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// All Raft groups of a node.
pub struct RaftNode {
    id: u64,
    manager: Arc<LogManager>,
    transport: Arc<dyn Transport>,
    config: ReplicaConfig,
    groups: RwLock<HashMap<u64, Arc<Slot>>>,
    /// Groups stopped by a storage error; the tick thread recovers them.
    failed: Mutex<HashMap<u64, FailedGroup>>,
    /// Storage errors that stopped a group, since start (a metric).
    storage_failures: AtomicU64,
    this: Weak<RaftNode>,
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("groups", &self.groups.read().unwrap().len())
            .finish()
    }
}

use strom_batch::now_ms;

impl RaftNode {
    /// Starts the driver; `tick` is the length of one Raft tick.
    pub fn start(
        id: u64,
        manager: Arc<LogManager>,
        transport: Arc<dyn Transport>,
        config: ReplicaConfig,
        tick: Duration,
    ) -> Arc<RaftNode> {
        let node = Arc::new_cyclic(|this| RaftNode {
            id,
            manager,
            transport,
            config,
            groups: RwLock::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            storage_failures: AtomicU64::new(0),
            this: this.clone(),
            stop: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
            ticker: Mutex::new(None),
        });
        let weak = Arc::downgrade(&node);
        let stop = node.stop.clone();
        let handle = std::thread::Builder::new()
            .name("strom-raft-tick".into())
            .spawn(move || tick_loop(weak, stop, tick))
            .expect("spawn raft tick thread");
        *node.ticker.lock().unwrap() = Some(handle);
        node
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn manager(&self) -> &Arc<LogManager> {
        &self.manager
    }

    /// Adds group `group` over the (existing) log of `tp`, with `voters` for a new group.
    pub fn add_group(
        &self,
        group: u64,
        tp: TopicPartition,
        voters: &[u64],
        apply_entries: bool,
        listener: Option<Arc<dyn GroupListener>>,
    ) -> Result<()> {
        if self.has_group(group) {
            return Ok(());
        }
        let log = LogRef {
            manager: self.manager.clone(),
            tp: tp.clone(),
        };
        let storage = LogStorage::open(log, voters, apply_entries)?;
        let replica = Replica::new(self.id, group, storage, &self.config, apply_entries)?;
        let slot = Arc::new(Slot {
            group,
            tp,
            replica: Mutex::new(replica),
            removed: AtomicBool::new(false),
            listener,
            voters: voters.to_vec(),
            apply_entries,
        });
        self.groups.write().unwrap().insert(group, slot.clone());
        if let Some(l) = &slot.listener {
            let r = slot.replica.lock().unwrap();
            let (leader, term, is_leader, hw) =
                (r.leader(), r.term(), r.is_leader(), r.high_watermark());
            drop(r);
            l.leadership(group, leader, term, is_leader);
            l.committed(group, hw);
        }
        self.drive(&slot, |_, _| Ok(()))
    }

    /// Removes a group (its log stays; the caller deletes it). Waiters fail.
    pub fn remove_group(&self, group: u64) {
        self.failed.lock().unwrap().remove(&group);
        if let Some(slot) = self.groups.write().unwrap().remove(&group) {
            let mut r = slot.replica.lock().unwrap();
            slot.removed.store(true, Ordering::Release);
            r.fail_waiters();
        }
    }

    /// Whether the group runs here (or is being recovered after a storage error).
    pub fn has_group(&self, group: u64) -> bool {
        self.groups.read().unwrap().contains_key(&group)
            || self.failed.lock().unwrap().contains_key(&group)
    }

    /// Groups stopped by a storage error right now, with the cause.
    pub fn offline_groups(&self) -> Vec<(u64, TopicPartition, String)> {
        self.failed
            .lock()
            .unwrap()
            .iter()
            .map(|(g, f)| (*g, f.slot.tp.clone(), f.cause.clone()))
            .collect()
    }

    /// Storage errors that stopped a group since the node started.
    pub fn storage_failures(&self) -> u64 {
        self.storage_failures.load(Ordering::Relaxed)
    }

    pub fn groups(&self) -> Vec<u64> {
        self.groups.read().unwrap().keys().copied().collect()
    }

    fn slot(&self, group: u64) -> Result<Arc<Slot>> {
        if let Some(slot) = self.groups.read().unwrap().get(&group) {
            return Ok(slot.clone());
        }
        match self.failed.lock().unwrap().get(&group) {
            Some(f) => Err(RaftError::Offline {
                tp: f.slot.tp.dir_name(),
                cause: f.cause.clone(),
            }),
            None => Err(RaftError::NotLeader { leader: None }),
        }
    }

    pub fn status(&self, group: u64) -> Option<GroupStatus> {
        let slot = self.slot(group).ok()?;
        let r = slot.replica.lock().unwrap();
        Some(GroupStatus {
            leader: r.leader(),
            term: r.term(),
            is_leader: r.is_leader(),
            high_watermark: r.high_watermark(),
            voters: r.voters(),
            in_sync: r.in_sync(),
        })
    }

    /// Proposes producer batches to a group this node leads (see [`Replica::propose`]).
    /// The batches are written to the local log before this returns.
    pub fn propose(
        &self,
        group: u64,
        batches: Vec<Vec<u8>>,
        on_commit: Option<Waiter>,
    ) -> Result<Proposed> {
        let slot = self.slot(group)?;
        self.drive(&slot, |r, _| r.propose(batches, on_commit))
    }

    /// Calls `w` once everything in the group's log now is committed in the leader's
    /// current term (see [`Replica::when_all_committed`]).
    pub fn when_all_committed(&self, group: u64, w: Waiter) -> Result<()> {
        let slot = self.slot(group)?;
        self.drive(&slot, |r, _| r.when_all_committed(w))
    }

    /// Proposes a command (forwarded to the leader by a follower).
    pub fn propose_command(&self, group: u64, batch: Vec<u8>) -> Result<()> {
        let slot = self.slot(group)?;
        self.drive(&slot, |r, _| r.propose_command(batch))
    }

    /// Steps a message that arrived from a peer.
    pub fn step(&self, group: u64, msg: Message) {
        let Ok(slot) = self.slot(group) else {
            return;
        };
        if let Err(e) = self.drive(&slot, |r, _| r.step(msg)) {
            tracing::warn!(group, error = %e, "raft step failed");
        }
    }

    /// Starts an election for `group` now instead of after an election timeout (a new
    /// group's preferred leader). Harmless if another node is already leader: with
    /// pre-vote, a node whose log is not up to date does not disturb it.
    pub fn campaign(&self, group: u64) -> Result<()> {
        let slot = self.slot(group)?;
        self.drive(&slot, |r, _| r.campaign())
    }

    /// Hands leadership of `group` to node `to`.
    pub fn transfer_leader(&self, group: u64, to: u64) -> Result<()> {
        let slot = self.slot(group)?;
        self.drive(&slot, |r, _| {
            r.transfer_leader(to);
            Ok(())
        })
    }

    /// Runs `f` on the group's replica, then carries out what it asks for: messages go
    /// to the transport, a flush to the group commit (whose completion comes back here),
    /// and listeners hear of commits and leadership changes. The replica's lock is not
    /// held while any of that happens.
    fn drive<R>(
        &self,
        slot: &Arc<Slot>,
        f: impl FnOnce(&mut Replica, &mut Outbox) -> Result<R>,
    ) -> Result<R> {
        let mut out = Outbox::default();
        let (result, before, after, failure) = {
            let mut r = slot.replica.lock().unwrap();
            if slot.removed.load(Ordering::Acquire) {
                return Err(RaftError::NotLeader { leader: None });
            }
            let before = (r.high_watermark(), r.leader(), r.term(), r.is_leader());
            let result = f(&mut r, &mut out);
            // A failure here comes from the group's storage (raft's own logic does not
            // fail): raft's memory and the log may now disagree, so the group stops
            // and is rebuilt from its log, never driven on.
            let failure = r.advance(now_ms(), &mut out).err();
            let after = (r.high_watermark(), r.leader(), r.term(), r.is_leader());
            (result, before, after, failure)
        };
        // Waiters are answered last, after the listener below has seen what they
        // wait for (the high watermark, applied entries); on every path.
        let answered = std::mem::take(&mut out.answered);
        let answer = move || {
            for (w, result) in answered {
                w(result);
            }
        };
        if let Some(e) = failure {
            let cause = e.to_string();
            self.fail_group(slot, cause.clone());
            answer();
            return Err(RaftError::Offline {
                tp: slot.tp.dir_name(),
                cause,
            });
        }
        for (group, m) in out.messages {
            self.transport.send(m.to, group, m);
        }
        if let Some(offset) = out.flush {
            self.request_flush(slot, offset);
        }
        if let Some(l) = &slot.listener {
            if !out.committed.is_empty() {
                l.apply(slot.group, out.committed);
            }
            if (after.1, after.2, after.3) != (before.1, before.2, before.3) {
                l.leadership(slot.group, after.1, after.2, after.3);
            }
            if after.0 > before.0 {
                l.committed(slot.group, after.0);
            }
        }
        answer();
        result
    }

    fn request_flush(&self, slot: &Arc<Slot>, offset: i64) {
        let per_append = self
            .manager
            .with_log(&slot.tp, |l| l.config().flush == FlushPolicy::EveryAppend)
            .unwrap_or(true);
        if !per_append {
            // The operator chose not to fsync per append (`flush` = interval, bytes or
            // os): written counts as persisted, and durability rests on replication
            // (Kafka's default trade-off). The log's own policy fsyncs later.
            let _ = self.drive(slot, |rep, out| {
                rep.on_durable(offset, out);
                Ok(())
            });
            return;
        }
        let this = self.this.clone();
        let weak_slot = Arc::downgrade(slot);
        self.manager.when_durable(
            &slot.tp,
            offset,
            Box::new(move |r| {
                let (Some(node), Some(slot)) = (this.upgrade(), weak_slot.upgrade()) else {
                    return;
                };
                match r {
                    Ok(durable) => {
                        let _ = node.drive(&slot, |rep, out| {
                            rep.on_durable(durable, out);
                            Ok(())
                        });
                    }
                    Err(e) => node.fail_group(&slot, format!("fsync failed: {e}")),
                }
            }),
        );
    }

    /// Takes a group out of service after a storage error: its waiters fail, its
    /// listener hears it, and the tick thread recovers it (log cut back to what was
    /// durable, group restarted from it) with backoff. Until then proposals get
    /// [`RaftError::Offline`]; in a cluster the other replicas elect a new leader, as
    /// after a crash of this node.
    fn fail_group(&self, slot: &Arc<Slot>, cause: String) {
        {
            let mut groups = self.groups.write().unwrap();
            match groups.get(&slot.group) {
                Some(s) if Arc::ptr_eq(s, slot) => {
                    groups.remove(&slot.group);
                }
                _ => return, // already failed or removed
            }
        }
        {
            let mut r = slot.replica.lock().unwrap();
            slot.removed.store(true, Ordering::Release);
            r.fail_waiters_with(|| RaftError::Offline {
                tp: slot.tp.dir_name(),
                cause: cause.clone(),
            });
        }
        self.storage_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(group = slot.group, partition = %slot.tp.dir_name(), %cause, "storage error: the replica stops until it is recovered");
        self.failed.lock().unwrap().insert(
            slot.group,
            FailedGroup {
                slot: slot.clone(),
                cause,
                notified: false,
                attempts: 0,
                next_attempt: Instant::now() + RECOVERY_BACKOFF,
            },
        );
        // The listener hears of it from the tick thread, not here: the failing call may
        // come from a proposer that holds its own locks (a producer's state, the group
        // coordinator), which the listener takes too.
        self.wake_ticker();
    }

    fn wake_ticker(&self) {
        self.stop.1.notify_all();
    }

    /// Tells listeners about groups that failed since the last tick.
    fn notify_failed(&self) {
        type Pending = (u64, Option<Arc<dyn GroupListener>>, String);
        let pending: Vec<Pending> = self
            .failed
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|(_, f)| !f.notified)
            .map(|(g, f)| {
                f.notified = true;
                (*g, f.slot.listener.clone(), f.cause.clone())
            })
            .collect();
        for (group, listener, cause) in pending {
            if let Some(l) = listener {
                l.storage_failed(group, &cause);
            }
        }
    }

    /// Recovers the failed groups whose backoff is over.
    fn recover_failed(&self) {
        self.notify_failed();
        let now = Instant::now();
        let due: Vec<u64> = self
            .failed
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f.notified && f.next_attempt <= now)
            .map(|(g, _)| *g)
            .collect();
        for group in due {
            let Some(mut f) = self.failed.lock().unwrap().remove(&group) else {
                continue;
            };
            let tp = f.slot.tp.clone();
            if !self.manager.contains(&tp) {
                continue; // deleted meanwhile
            }
            let result = self
                .manager
                .recover(&tp)
                .map_err(RaftError::from)
                .and_then(|_| {
                    LogStorage::rewrite_after_fault(&self.manager.data_dir().join(tp.dir_name()))
                })
                .and_then(|_| {
                    self.add_group(
                        group,
                        tp.clone(),
                        &f.slot.voters,
                        f.slot.apply_entries,
                        f.slot.listener.clone(),
                    )
                });
            match result {
                Ok(()) => {
                    tracing::info!(group, partition = %tp.dir_name(), attempts = f.attempts + 1, "replica recovered after a storage error");
                    // A group of one leads again at once rather than after an election
                    // timeout: nobody else can.
                    if self
                        .status(group)
                        .is_some_and(|s| s.voters == [self.id] && !s.is_leader)
                    {
                        let _ = self.campaign(group);
                    }
                }
                Err(e) => {
                    f.attempts += 1;
                    let wait = RECOVERY_BACKOFF
                        .saturating_mul(1 << f.attempts.min(8))
                        .min(RECOVERY_BACKOFF_MAX);
                    f.next_attempt = Instant::now() + wait;
                    tracing::warn!(group, partition = %tp.dir_name(), error = %e, retry_in = ?wait, "recovery after a storage error failed; will retry");
                    self.failed.lock().unwrap().insert(group, f);
                }
            }
        }
    }

    fn tick_all(&self) {
        for tp in self.manager.take_background_failures() {
            // A background flush (interval or size policy) took the log offline: stop
            // the group as if its own fsync had failed, so it is recovered.
            let slot = self
                .groups
                .read()
                .unwrap()
                .values()
                .find(|s| s.tp == tp)
                .cloned();
            if let Some(slot) = slot {
                self.fail_group(&slot, "background flush failed".to_string());
            }
        }
        if !self.failed.lock().unwrap().is_empty() {
            self.recover_failed();
        }
        let slots: Vec<Arc<Slot>> = self.groups.read().unwrap().values().cloned().collect();
        for slot in slots {
            // Driving a group looks at its log (raft asks the storage for its bounds);
            // for thousands of groups that never need a tick, that was the tick thread's
            // whole cost.
            if !slot.replica.lock().unwrap().needs_ticks() {
                continue;
            }
            let _ = self.drive(&slot, |r, _| {
                r.tick();
                Ok(())
            });
        }
    }

    /// Messages to `peer` were lost: every group stops assuming they arrived (a leader
    /// probes the peer again instead of waiting for answers that will not come).
    pub fn report_unreachable(&self, peer: u64) {
        let slots: Vec<Arc<Slot>> = self.groups.read().unwrap().values().cloned().collect();
        for slot in slots {
            let _ = self.drive(&slot, |r, _| {
                r.report_unreachable(peer);
                Ok(())
            });
        }
    }

    /// Stops the tick thread and fails every waiter.
    pub fn shutdown(&self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        if let Some(t) = self.ticker.lock().unwrap().take() {
            let _ = t.join();
        }
        for slot in self.groups.read().unwrap().values() {
            slot.replica.lock().unwrap().fail_waiters();
        }
    }
}

fn tick_loop(node: Weak<RaftNode>, stop: Arc<(Mutex<bool>, std::sync::Condvar)>, tick: Duration) {
    let (lock, cv) = &*stop;
    let mut stopped = lock.lock().unwrap();
    loop {
        let (guard, _) = cv.wait_timeout(stopped, tick).unwrap();
        stopped = guard;
        if *stopped {
            return;
        }
        let Some(node) = node.upgrade() else { return };
        drop(stopped);
        node.tick_all();
        drop(node);
        stopped = lock.lock().unwrap();
    }
}
