//! `Replica`: one Raft group on this node, the state handling around raft-rs's
//! `RawNode`. No sockets, no timers, no threads: the caller steps messages in, ticks it,
//! and carries out what it asks for in an [`Outbox`] (messages to send, a flush to
//! request). The caller reports durability back with [`Replica::on_durable`]. This is
//! the same code the node driver and the deterministic simulation run.
//!
//! Persistence follows raft's rules: term and vote are fsynced before anything that
//! depends on them is sent; a follower's answers to appends wait until the appended
//! entries are fsynced (by the log's group commit, shared by all groups of a round); a
//! leader sends appends before its own fsync (raft thesis 10.2.1) but counts itself
//! towards the commit only once it is durable.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use raft::eraftpb::{Entry, Message, MessageType};
use raft::{Config, RawNode, StateRole};
use strom_batch::RecordBatchHeader;

use crate::entry::{batch_entry, offsets_taken};
use crate::error::{RaftError, Result};
use crate::logger::raft_logger;
use crate::storage::LogStorage;

/// Called once a proposal is committed (`Ok` with its last offset) or can no longer be
/// (`Err`: leadership lost and the entry replaced, or the group stopped).
pub type Waiter = Box<dyn FnOnce(Result<i64, RaftError>) + Send>;

/// Tunables of a group (in ticks of the driver's timer).
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    /// Uncommitted bytes a leader accepts before refusing proposals. raft-rs counts
    /// them down from the committed entries it hands out, which a partition group reads
    /// back without data, so for those it must stay unlimited (`u64::MAX`): the broker
    /// keeps its own count (see `Broker::append`).
    pub max_uncommitted_size: u64,
    /// Randomised election timeout range; `None` = raft's default `[election, 2*election)`.
    pub election_range: Option<(usize, usize)>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            election_tick: 10,
            heartbeat_tick: 2,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_uncommitted_size: u64::MAX,
            election_range: None,
        }
    }
}

/// What a replica asks its caller to do.
#[derive(Default)]
pub struct Outbox {
    /// Messages to send, tagged with their group.
    pub messages: Vec<(u64, Message)>,
    /// Make the group's log durable up to this offset, then call `on_durable`.
    pub flush: Option<i64>,
    /// Committed entries with data (groups that apply entries: the metadata group).
    pub committed: Vec<Entry>,
    /// Waiters answered by this step. The node calls them after its listener has seen
    /// the new high watermark, so whoever was told "committed" reads it there at once.
    pub answered: Vec<(Waiter, Result<i64>)>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("messages", &self.messages.len())
            .field("flush", &self.flush)
            .field("committed", &self.committed.len())
            .field("answered", &self.answered.len())
            .finish()
    }
}

/// A Ready whose effects wait for the log to be durable up to `needed`.
#[derive(Debug)]
struct Unpersisted {
    number: u64,
    needed: i64,
    messages: Vec<Message>,
}

/// Where a proposal landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposed {
    pub base_offset: i64,
    pub last_offset: i64,
    pub term: u64,
}

/// One Raft group on this node.
pub struct Replica {
    group: u64,
    node: RawNode<LogStorage>,
    unpersisted: VecDeque<Unpersisted>,
    commit: u64,
    /// The Kafka offset after the committed entries.
    high_watermark: i64,
    /// Term in which this replica last led; waiters belong to it.
    leading_term: Option<u64>,
    /// By the Raft index of a proposal's last entry (and the order they came in, as
    /// several may wait on one index): its term, its last offset and whom to tell.
    waiters: BTreeMap<(u64, u64), (u64, i64, Waiter)>,
    next_waiter: u64,
    apply_entries: bool,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("group", &self.group)
            .field("id", &self.node.raft.id)
            .field("term", &self.node.raft.term)
            .field("leader", &self.node.raft.leader_id)
            .field("commit", &self.commit)
            .finish()
    }
}

impl Replica {
    /// Starts the replica of `group` with node id `id` over `storage`.
    pub fn new(
        id: u64,
        group: u64,
        storage: LogStorage,
        config: &ReplicaConfig,
        apply_entries: bool,
    ) -> Result<Replica> {
        let commit = storage.hard_state().commit;
        let high_watermark = storage.offset_after(commit)?;
        // A group that applies entries keeps its state machine in memory only: it must
        // be handed every committed entry again after a restart, from the log's start.
        let applied = match apply_entries {
            true => raft::Storage::first_index(&storage)? - 1,
            false => commit,
        };
        let mut c = Config {
            id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            max_size_per_msg: config.max_size_per_msg,
            max_inflight_msgs: config.max_inflight_msgs,
            max_uncommitted_size: config.max_uncommitted_size,
            check_quorum: true,
            pre_vote: true,
            applied,
            ..Config::default()
        };
        if let Some((min, max)) = config.election_range {
            c.min_election_tick = min;
            c.max_election_tick = max;
        }
        c.validate()?;
        let node = RawNode::new(&c, storage, &raft_logger(group))?;
        let mut r = Replica {
            group,
            node,
            unpersisted: VecDeque::new(),
            commit,
            high_watermark,
            leading_term: None,
            waiters: BTreeMap::new(),
            next_waiter: 0,
            apply_entries,
        };
        r.set_ceiling();
        // A group of one needs no election timeout to find its leader.
        if r.node.raft.prs().conf().voters().ids().len() == 1
            && r.node.raft.prs().conf().voters().contains(id)
        {
            r.node.campaign()?;
        }
        Ok(r)
    }

    pub fn group(&self) -> u64 {
        self.group
    }

    pub fn id(&self) -> u64 {
        self.node.raft.id
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The leader's node id as this replica knows it (`None` while unknown).
    pub fn leader(&self) -> Option<u64> {
        Some(self.node.raft.leader_id).filter(|&l| l != raft::INVALID_ID)
    }

    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The high watermark: offsets below it are committed.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn voters(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.node.raft.prs().conf().voters().ids().iter().collect();
        v.sort_unstable();
        v
    }

    /// Voters whose log matches the leader's up to its commit index (the leader's view;
    /// all voters when not leader, as this replica cannot tell).
    pub fn in_sync(&self) -> Vec<u64> {
        let mut v: Vec<u64> = match self.is_leader() {
            true => self
                .node
                .raft
                .prs()
                .iter()
                .filter(|(id, pr)| {
                    **id == self.id() || pr.recent_active && pr.matched + 64 >= self.commit
                })
                .map(|(id, _)| *id)
                .collect(),
            false => self.voters(),
        };
        v.sort_unstable();
        v
    }

    pub fn storage(&self) -> &LogStorage {
        self.node.store()
    }

    /// Proposes producer batches (each already validated, CRC-32C included: the log
    /// does not check these bytes again): stamps each with its offset and the current
    /// term, and appends them as entries. Answers where they landed;
    /// `on_commit` is called when they commit (or cannot).
    pub fn propose(
        &mut self,
        batches: Vec<Vec<u8>>,
        on_commit: Option<Waiter>,
    ) -> Result<Proposed> {
        if !self.is_leader() {
            return Err(RaftError::NotLeader {
                leader: self.leader(),
            });
        }
        let term = self.term();
        let first_index = self.node.raft.raft_log.last_index() + 1;
        let base_offset = self.next_offset()?;
        let mut next = base_offset;
        let mut entries = Vec::with_capacity(batches.len());
        for (i, mut b) in batches.into_iter().enumerate() {
            // One entry is one whole batch, which takes at least one offset.
            debug_assert!(
                RecordBatchHeader::parse(&b, 0).is_ok_and(|h| h.total_size() == b.len()),
                "a proposal is one whole record batch per entry"
            );
            RecordBatchHeader::stamp_base_offset(&mut b, next);
            RecordBatchHeader::stamp_leader_epoch(&mut b, term as i32);
            let e = batch_entry(Bytes::from(b), first_index + i as u64, term);
            debug_assert!(offsets_taken(&e) > 0);
            next += offsets_taken(&e);
            entries.push(e);
        }
        let last_index = first_index + entries.len() as u64 - 1;
        let last_offset = next - 1;
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.id();
        m.entries = entries.into();
        match self.node.step(m) {
            Ok(()) => {}
            Err(raft::Error::ProposalDropped) => return Err(RaftError::Dropped),
            Err(e) => return Err(e.into()),
        }
        let got = self.node.raft.raft_log.last_index();
        if got != last_index {
            return Err(RaftError::BadEntry {
                index: got,
                reason: format!("raft placed the proposal ending at {last_index} elsewhere"),
            });
        }
        self.node
            .mut_store()
            .note_proposed(first_index, last_index, term);
        if let Some(w) = on_commit {
            self.add_waiter(last_index, term, last_offset, w);
        }
        Ok(Proposed {
            base_offset,
            last_offset,
            term,
        })
    }

    /// The Kafka offset the next proposed batch gets: the stored log's end plus the
    /// records of entries raft holds that are not written yet.
    fn next_offset(&self) -> Result<i64> {
        let log = &self.node.raft.raft_log;
        let unstable = &log.unstable;
        if unstable.entries.is_empty() {
            return Ok(log.store.end_offset());
        }
        let base = log.store.offset_before(unstable.offset)?;
        Ok(base + unstable.entries.iter().map(offsets_taken).sum::<i64>())
    }

    /// Proposes one command of the metadata group (forwarded to the leader by
    /// followers): `batch` is a record batch whose offset and epoch raft assigns.
    pub fn propose_command(&mut self, batch: Vec<u8>) -> Result<()> {
        if self.is_leader() {
            return self.propose(vec![batch], None).map(|_| ());
        }
        // A follower cannot know the index: the leader stamps forwarded batches when it
        // appends them (see `LogStorage::append`'s check), so send the raw batch.
        let mut e = Entry::default();
        e.data = Bytes::from(batch);
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.id();
        m.entries = vec![e].into();
        self.node.step(m).map_err(|e| match e {
            raft::Error::ProposalDropped => RaftError::NotLeader {
                leader: self.leader(),
            },
            e => e.into(),
        })
    }

    /// Steps a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<()> {
        match self.node.step(m) {
            Ok(()) | Err(raft::Error::StepPeerNotFound) => Ok(()),
            Err(raft::Error::ProposalDropped) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether ticking can change anything: not for a leader that is its group's only
    /// voter, which has nobody to send heartbeats to, no quorum to lose and no election
    /// to time out. A node of 10,000 single-node partitions skips them all.
    pub fn needs_ticks(&self) -> bool {
        let conf = self.node.raft.prs().conf();
        !(self.is_leader()
            && conf.voters().ids().len() == 1
            && conf.voters().contains(self.id())
            && conf.learners().is_empty())
    }

    /// Advances the group's logical clock by one tick.
    pub fn tick(&mut self) -> bool {
        self.node.tick()
    }

    /// Starts an election now (tests, leadership transfer).
    pub fn campaign(&mut self) -> Result<()> {
        Ok(self.node.campaign()?)
    }

    /// Hands leadership to `to` (a caught-up voter).
    pub fn transfer_leader(&mut self, to: u64) {
        self.node.transfer_leader(to);
    }

    /// Tells raft a peer could not be reached (its messages were dropped).
    pub fn report_unreachable(&mut self, to: u64) {
        self.node.report_unreachable(to);
    }

    /// Does whatever raft has ready: persists, queues messages, notes commits.
    pub fn advance(&mut self, now_ms: i64, out: &mut Outbox) -> Result<()> {
        while self.node.has_ready() {
            self.handle_ready(now_ms, out)?;
        }
        self.after_change(out);
        Ok(())
    }

    fn handle_ready(&mut self, now_ms: i64, out: &mut Outbox) -> Result<()> {
        let mut rd = self.node.ready();
        // What was committed before this Ready: entries it replaces come after it.
        let commit_before = self.node.store().hard_state().commit;
        if let Some(hs) = rd.hs() {
            let commit_moved = hs.commit > self.node.store().hard_state().commit;
            self.node.mut_store().set_hard_state(hs);
            if commit_moved && self.apply_entries {
                // Metadata changes are rare and a restarted node should know them at
                // once, before any leader tells it the commit index again.
                self.node.mut_store().persist_state()?;
            }
        }
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.node.mut_store().apply_snapshot(&snap)?;
            self.commit = self.commit.max(snap.get_metadata().index);
            self.set_ceiling();
        }
        let wrote = !rd.entries().is_empty();
        if wrote {
            // Raft replaces only entries it had not committed (raft-rs refuses the others
            // too): committed batches, acknowledged to producers, stay. (The Ready's own
            // commit index may cover the entries it brings, which may replace others.)
            debug_assert!(
                rd.entries()[0].index > commit_before,
                "entries from {} would replace the committed index {commit_before}",
                rd.entries()[0].index
            );
            self.node.mut_store().append(rd.entries(), now_ms)?;
        }
        // Term, vote and new epochs are durable before any message goes out.
        self.node.mut_store().sync_state()?;
        let mut snapshots_sent = Vec::new();
        for m in rd.take_messages() {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                snapshots_sent.push(m.to);
            }
            out.messages.push((self.group, m));
        }
        let committed = rd.take_committed_entries();
        if self.apply_entries {
            out.committed.extend(committed);
        }
        let needed = if wrote {
            self.node.store().log().with(|l| l.log_end_offset())?
        } else {
            i64::MIN
        };
        let persisted = rd.take_persisted_messages();
        self.unpersisted.push_back(Unpersisted {
            number: rd.number(),
            needed,
            messages: persisted,
        });
        self.node.advance_append_async(rd);
        // A snapshot here carries no data ("restart at offset X"), so sending it is all
        // there is to it: without this report the follower's progress would wait for it
        // forever (until the follower answers an append, which it is never sent).
        for to in snapshots_sent {
            self.node.report_snapshot(to, raft::SnapshotStatus::Finish);
        }
        if wrote {
            out.flush = Some(out.flush.map_or(needed, |f| f.max(needed)));
        }
        let durable = self.node.store().log().with(|l| l.durable_offset())?;
        self.release_persisted(durable, out);
        Ok(())
    }

    /// Reports that the group's log is durable below `durable`. The caller then calls
    /// [`advance`](Self::advance), as after any other input, so a storage error that
    /// follows comes out of `advance` where the driver looks for it.
    pub fn on_durable(&mut self, durable: i64, out: &mut Outbox) {
        self.release_persisted(durable, out);
    }

    fn release_persisted(&mut self, durable: i64, out: &mut Outbox) {
        let mut last = None;
        while self
            .unpersisted
            .front()
            .is_some_and(|u| u.needed <= durable)
        {
            let u = self.unpersisted.pop_front().unwrap();
            out.messages
                .extend(u.messages.into_iter().map(|m| (self.group, m)));
            last = Some(u.number);
        }
        if let Some(n) = last {
            self.node.on_persist_ready(n);
        }
        self.advance_applied();
    }

    /// Moves raft's applied index as far as it may go: up to what is both committed and
    /// persisted here. (Partition groups apply nothing; the metadata group applied its
    /// entries as they were handed out. A snapshot counts once it is persisted.)
    fn advance_applied(&mut self) {
        let log = &self.node.raft.raft_log;
        let target = log.committed.min(log.persisted);
        if target > log.applied {
            self.node.advance_apply_to(target);
        }
    }

    /// Calls `w` once everything in this leader's log now is committed in its current
    /// term (with the offset after it), or cannot be promised. A retried batch found in
    /// the log waits this way: whatever holds it is at or below the last entry.
    pub fn when_all_committed(&mut self, w: Waiter) -> Result<()> {
        if !self.is_leader() {
            return Err(RaftError::NotLeader {
                leader: self.leader(),
            });
        }
        let term = self.term();
        let last_index = self.node.raft.raft_log.last_index();
        let end = self.next_offset()?;
        // The last entry is this term's (a leader's log ends with an entry of its term,
        // at least its empty one), so its commit in this term commits all below it.
        debug_assert_eq!(self.node.raft.raft_log.term(last_index).ok(), Some(term));
        // `advance`, which the node runs after this, answers it if it is already
        // committed.
        self.add_waiter(last_index, term, end - 1, w);
        Ok(())
    }

    fn add_waiter(&mut self, index: u64, term: u64, last_offset: i64, w: Waiter) {
        self.leading_term = Some(term);
        self.waiters
            .insert((index, self.next_waiter), (term, last_offset, w));
        self.next_waiter += 1;
    }

    /// Notes commit-index progress and leadership changes: answers waiters.
    fn after_change(&mut self, out: &mut Outbox) {
        if self
            .leading_term
            .is_some_and(|t| t != self.term() || !self.is_leader())
        {
            self.leading_term = None;
        }
        let commit = self.node.raft.raft_log.committed;
        if commit > self.commit {
            self.commit = commit;
            self.set_ceiling();
        }
        while let Some(entry) = self.waiters.first_entry() {
            let (index, _) = *entry.key();
            let (term, _, _) = entry.get();
            let term = *term;
            if index <= self.commit {
                let (_, last_offset, w) = entry.remove();
                let answer = match self.node.raft.raft_log.term(index) {
                    Ok(t) if t == term => Ok(last_offset),
                    _ => Err(RaftError::NotLeader {
                        leader: self.leader(),
                    }),
                };
                out.answered.push((w, answer));
            } else if self.leading_term != Some(term) {
                // Leadership moved on: the entry may yet commit under the new leader, but
                // this replica cannot promise it. Kafka answers NOT_LEADER_OR_FOLLOWER and
                // an idempotent producer's retry is deduplicated.
                let (_, _, w) = entry.remove();
                let leader = self.leader();
                out.answered.push((w, Err(RaftError::NotLeader { leader })));
            } else {
                break;
            }
        }
    }

    /// Follows the commit index: the high watermark, and what the log may expire.
    fn set_ceiling(&mut self) {
        let commit = self.commit;
        match self.node.store().offset_after(commit) {
            Ok(hw) => self.high_watermark = self.high_watermark.max(hw),
            Err(e) => {
                tracing::warn!(group = self.group, commit, error = %e, "cannot place the commit index among offsets")
            }
        }
        let hw = self.high_watermark;
        let _ = self.node.mut_store().committed(commit, hw);
    }

    /// Fails every waiter (the group is being removed or the node stops).
    pub fn fail_waiters(&mut self) {
        let leader = self.leader();
        self.fail_waiters_with(|| RaftError::NotLeader { leader });
    }

    /// Fails every waiter with `error` (a storage failure says so, so the proposer can
    /// answer KAFKA_STORAGE_ERROR rather than "not the leader").
    pub fn fail_waiters_with(&mut self, error: impl Fn() -> RaftError) {
        for (_, (_, _, w)) in std::mem::take(&mut self.waiters) {
            w(Err(error()));
        }
    }

    /// The log end offset as Raft sees it.
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }
}
