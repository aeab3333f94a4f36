//! `LogStorage`: raft's `Storage` over a partition's segment log, which is the Raft log
//! (see `entry.rs` for the index ↔ offset mapping). Entries are read back from the
//! segment files; terms come from the batches' leader epochs, with the recent ones
//! cached as runs of equal terms.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use strom_batch::RecordBatchHeader;
use strom_log::{LogManager, PartitionLog, TopicPartition};

use crate::entry::{
    EntryKind, classify, continuation, index_of, is_leader_change, leader_change_batch, offset_of,
};
use crate::error::{RaftError, Result};
use crate::state_file::{PersistedState, StateFile};

/// Bytes read from the log per step when raft asks for entries without a size limit.
const READ_CHUNK: usize = 1 << 20;

/// A partition's log inside the node's `LogManager`.
#[derive(Debug, Clone)]
pub struct LogRef {
    pub manager: Arc<LogManager>,
    pub tp: TopicPartition,
}

impl LogRef {
    pub fn with<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> Result<R> {
        self.manager
            .with_log(&self.tp, f)
            .ok_or_else(|| RaftError::LogGone(self.tp.dir_name()))
    }
}

/// Terms of recent entries as runs: `(first index, term)`, valid from `from` on.
#[derive(Debug, Default)]
struct TermRuns {
    runs: Vec<(u64, u64)>,
    from: u64,
}

impl TermRuns {
    fn get(&self, index: u64) -> Option<u64> {
        if index < self.from {
            return None;
        }
        let i = self.runs.partition_point(|&(s, _)| s <= index);
        (i > 0).then(|| self.runs[i - 1].1)
    }

    fn record(&mut self, first_index: u64, term: u64) {
        if self.runs.last().is_none_or(|&(_, t)| t != term) {
            if self.runs.is_empty() {
                self.from = first_index;
            }
            self.runs.push((first_index, term));
        }
    }

    /// Forgets everything above `index`.
    fn truncate(&mut self, index: u64) {
        self.runs.retain(|&(s, _)| s <= index);
        if self.runs.is_empty() {
            self.from = index + 1;
        }
    }

    fn reset(&mut self, index: u64, term: u64) {
        self.runs = vec![(index, term)];
        self.from = index;
    }
}

/// Raft storage of one group.
#[derive(Debug)]
pub struct LogStorage {
    log: LogRef,
    hard: HardState,
    voters: Vec<u64>,
    state_file: StateFile,
    /// Whether committed entries handed out for applying carry their data (the
    /// metadata group applies commands; partition groups apply nothing and save the
    /// reads).
    full_entries_on_apply: bool,
    terms: RefCell<TermRuns>,
    /// The entries this node just proposed as leader (see `note_proposed`).
    proposed: Option<ProposedRange>,
}

/// Entries `first..=last` of `term`, proposed by this node.
#[derive(Debug, Clone, Copy)]
struct ProposedRange {
    first: u64,
    last: u64,
    term: u64,
}

impl ProposedRange {
    fn contains(&self, index: u64, term: u64) -> bool {
        term == self.term && (self.first..=self.last).contains(&index)
    }
}

fn store_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.into()))
}

impl LogStorage {
    /// Opens the storage of a group whose log exists in the manager. `voters` is used
    /// when the group has no saved state yet (a new group).
    pub fn open(log: LogRef, voters: &[u64], full_entries_on_apply: bool) -> Result<LogStorage> {
        let dir = log.manager.data_dir().join(log.tp.dir_name());
        let (mut state_file, saved) = StateFile::open(&dir)?;
        let (start, start_epoch, end, last_epoch) = log.with(|l| {
            let (start, epoch) = l.raft_start();
            let end = l.log_end_offset();
            let last = if end > start {
                l.epoch_at(end - 1)
            } else {
                Ok(None)
            };
            last.map(|last| (start, epoch, end, last))
        })??;
        let saved = match saved {
            Some(s) => s,
            None => {
                let s = PersistedState {
                    voters: voters.to_vec(),
                    ..PersistedState::default()
                };
                state_file.write_initial(&s)?;
                s
            }
        };
        let last_index = index_of(end) - 1;
        let mut hard = HardState::default();
        hard.term = saved.term;
        hard.vote = saved.vote;
        // Everything below the log start was committed (retention stops at the commit
        // index), and raft insists the commit index is not below it.
        hard.commit = saved.commit.max(index_of(start) - 1).min(last_index);
        if saved.voters.len() == 1 {
            // A group of one: whatever survived in its log was fsynced by its only
            // voter, so it is committed (its leader would commit it at once anyway);
            // the high watermark is right from the first moment after a restart.
            hard.commit = last_index;
        }
        let mut terms = TermRuns::default();
        match last_epoch {
            Some(e) => terms.reset(last_index, e.max(0) as u64),
            None => terms.reset(index_of(start) - 1, start_epoch.max(0) as u64),
        }
        Ok(LogStorage {
            log,
            hard,
            voters: saved.voters,
            state_file,
            full_entries_on_apply,
            terms: RefCell::new(terms),
            proposed: None,
        })
    }

    pub fn log(&self) -> &LogRef {
        &self.log
    }

    pub fn voters(&self) -> &[u64] {
        &self.voters
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard
    }

    /// Takes raft's new hard state: term or vote changes are fsynced before returning
    /// (they must be durable before any message that depends on them goes out); a commit
    /// index alone is kept in memory and saved with the next change (a restart may see an
    /// older commit index, which is safe).
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<()> {
        let must_sync = hs.term != self.hard.term || hs.vote != self.hard.vote;
        self.hard = hs.clone();
        if must_sync {
            self.persist_state()?;
        }
        Ok(())
    }

    /// Saves the current state (term, vote, commit capped at the durable log end).
    pub fn persist_state(&mut self) -> Result<()> {
        let durable = self.log.with(|l| l.durable_offset())?;
        let state = PersistedState {
            term: self.hard.term,
            vote: self.hard.vote,
            commit: self.hard.commit.min(index_of(durable) - 1),
            voters: self.voters.clone(),
        };
        self.state_file.write(&state)
    }

    /// The term of the entry at `index` from the cache or the log.
    fn term_of(&self, index: u64) -> raft::Result<u64> {
        if let Some(t) = self.terms.borrow().get(index) {
            return Ok(t);
        }
        let first = self.first_index()?;
        let last = self.last_index()?;
        if index + 1 < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if index + 1 == first {
            let (_, start_epoch) = self.log.with(|l| l.raft_start()).map_err(store_err)?;
            return Ok(start_epoch.max(0) as u64);
        }
        let epoch = self
            .log
            .with(|l| l.epoch_at(offset_of(index)))
            .map_err(store_err)?
            .map_err(store_err)?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Ok(epoch.max(0) as u64)
    }

    /// Writes the entries of a Ready: truncates a conflicting tail first (at a batch
    /// boundary, which every conflict is), writes each batch's bytes (continuations are
    /// already covered by their batch) and raft's empty entries as control batches, all
    /// with one `append_replicated`. Not durable until the log is flushed.
    pub fn append(&mut self, entries: &[Entry], now_ms: i64) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let last_index = self.last_index()?;
        if first.index <= last_index {
            let offset = offset_of(first.index);
            let boundary = self.log.with(|l| -> Result<bool> {
                let r = l.read_stored(offset, 0, None)?;
                Ok(r.slice.is_none_or(|s| s.first_offset == offset))
            })??;
            if !boundary {
                return Err(RaftError::BadEntry {
                    index: first.index,
                    reason: "a conflict inside a batch".into(),
                });
            }
            self.log.with(|l| l.truncate_to(offset))??;
            self.terms.get_mut().truncate(first.index - 1);
        } else if first.index != last_index + 1 {
            return Err(RaftError::BadEntry {
                index: first.index,
                reason: format!("a gap after the last index {last_index}"),
            });
        }
        // What to write, batch by batch: borrowed from the entries where they can be
        // written as they are, so the usual Ready (one batch) is written without a copy.
        let mut parts: Vec<Cow<'_, [u8]>> = Vec::new();
        let proposed = self.proposed.take();
        // Whether every batch is one this node proposed and so validated (the CRC is
        // then not checked a second time); raft's empty entries are built here.
        let mut all_validated = true;
        let mut covered = first.index - 1;
        let terms = self.terms.get_mut();
        for e in entries {
            let bad = |reason: String| RaftError::BadEntry {
                index: e.index,
                reason,
            };
            match classify(e) {
                Some(EntryKind::Batch { last_index }) => {
                    if e.index != covered + 1 {
                        return Err(bad(format!("a batch after index {covered}")));
                    }
                    let h = RecordBatchHeader::parse(&e.data, 0).map_err(|x| bad(x.to_string()))?;
                    all_validated &= proposed.is_some_and(|p| p.contains(e.index, e.term));
                    if h.base_offset != offset_of(e.index)
                        || h.partition_leader_epoch as u64 != e.term
                    {
                        // A command forwarded by a follower travels unstamped: offset
                        // and epoch follow from the entry on every replica alike.
                        let mut b = e.data.to_vec();
                        RecordBatchHeader::stamp_base_offset(&mut b, offset_of(e.index));
                        RecordBatchHeader::stamp_leader_epoch(&mut b, e.term as i32);
                        parts.push(Cow::Owned(b));
                    } else {
                        parts.push(Cow::Borrowed(&e.data[..]));
                    }
                    covered = last_index;
                }
                Some(EntryKind::Continuation { last_index }) => {
                    if e.index > covered || last_index > covered {
                        return Err(bad("a continuation without its batch".into()));
                    }
                    continue;
                }
                Some(EntryKind::Noop) => {
                    if e.index != covered + 1 {
                        return Err(bad(format!("an empty entry after index {covered}")));
                    }
                    parts.push(Cow::Owned(leader_change_batch(offset_of(e.index), e.term)));
                    covered = e.index;
                }
                None => return Err(bad("not a partition entry".into())),
            }
            terms.record(e.index, e.term);
        }
        let bytes = match parts.len() {
            0 => return Ok(()),
            1 => parts.pop().unwrap(),
            _ => Cow::Owned(parts.concat()),
        };
        match all_validated {
            true => self.log.with(|l| l.append_prevalidated(&bytes, now_ms))??,
            false => self.log.with(|l| l.append_replicated(&bytes, now_ms))??,
        };
        Ok(())
    }

    /// Notes that the entries `first..=last` of `term` are batches this node proposed
    /// as leader, validated (CRC included) by whoever handed them to
    /// [`Replica::propose`](crate::Replica::propose). Good for the next `append` only,
    /// which is the one that writes them: the proposal and the Ready that carries it are
    /// handled under one lock of the replica.
    pub fn note_proposed(&mut self, first: u64, last: u64, term: u64) {
        self.proposed = Some(ProposedRange { first, last, term });
    }

    /// Restarts the log after a snapshot from the leader: the follower was behind the
    /// leader's log start, so it continues from there with an empty log.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        let meta = snap.get_metadata();
        self.log
            .with(|l| l.reset_to(meta.index as i64, meta.term as i32))??;
        self.terms.get_mut().reset(meta.index, meta.term);
        self.hard.commit = self.hard.commit.max(meta.index);
        self.hard.term = self.hard.term.max(meta.term);
        let voters = meta.get_conf_state().voters.clone();
        if !voters.is_empty() {
            self.voters = voters;
        }
        self.persist_state()
    }

    /// Entries `[low, high)` as index and term only, from the term cache, without
    /// touching the log; `None` when the cache does not reach back to `low`.
    ///
    /// For entries nobody reads: a group that applies nothing is still handed every
    /// committed entry, and raft-rs looks at no more of them than the index (to track
    /// what it handed out), the entry type (pending configuration changes, which
    /// partition groups never have) and the data's length (for an uncommitted-size limit
    /// partition groups do not set). Reading them back from the segment, as
    /// `read_entries` does, cost a read of every committed byte from the page cache and
    /// an allocation per continuation; this costs one binary search per entry.
    fn placeholders(&self, low: u64, high: u64) -> Option<Vec<Entry>> {
        let terms = self.terms.borrow();
        let mut out = Vec::with_capacity(high.saturating_sub(low) as usize);
        for index in low..high {
            let mut e = Entry::default();
            e.index = index;
            e.term = terms.get(index)?;
            out.push(e);
        }
        Some(out)
    }

    /// Reads entries `[low, high)` from the log.
    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: Option<u64>,
        with_data: bool,
        copy: bool,
    ) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        let mut size = 0u64;
        let mut next = low;
        while next < high {
            let budget = match max_size {
                Some(m) => (m.saturating_sub(size) as usize).clamp(1, READ_CHUNK),
                None => READ_CHUNK,
            };
            let bytes = self.log.with(|l| -> Result<Option<Vec<u8>>> {
                let r = l.read_stored(offset_of(next), budget, None)?;
                match r.slice {
                    Some(s) => Ok(Some(s.read_to_vec()?)),
                    None => Ok(None),
                }
            })??;
            let Some(bytes) = bytes else { break };
            let bytes = Bytes::from(bytes);
            let mut pos = 0;
            while pos < bytes.len() && next < high {
                let h = RecordBatchHeader::parse(&bytes, pos)?;
                let end = pos + h.total_size();
                let term = h.partition_leader_epoch.max(0) as u64;
                let first_index = index_of(h.base_offset);
                let last_index = index_of(h.last_offset());
                if next == first_index {
                    let mut e = Entry::default();
                    e.index = first_index;
                    e.term = term;
                    if !is_leader_change(&h) && with_data && copy {
                        e.data = Bytes::copy_from_slice(&bytes[pos..end]);
                    } else if !is_leader_change(&h) && with_data {
                        e.data = bytes.slice(pos..end);
                    } else if !is_leader_change(&h) {
                        // Raft only looks at the kind of a committed entry it hands out
                        // for applying; a partition applies nothing.
                        e.context = Bytes::copy_from_slice(&last_index.to_be_bytes());
                    }
                    size += e.data.len() as u64 + 16;
                    out.push(e);
                    next += 1;
                }
                while next <= last_index && next < high {
                    out.push(continuation(next, term, last_index));
                    size += 16;
                    next += 1;
                }
                pos = end;
                if max_size.is_some_and(|m| size >= m) && !out.is_empty() {
                    return Ok(out);
                }
            }
        }
        if next < high && out.is_empty() {
            return Err(RaftError::BadEntry {
                index: next,
                reason: "missing from the log".into(),
            });
        }
        Ok(out)
    }
}

impl raft::Storage for LogStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mut cs = ConfState::default();
        cs.voters = self.voters.clone();
        Ok(RaftState::new(self.hard.clone(), cs))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let first = self.first_index()?;
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index()? + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        // Entries are wanted with their data to send them (the only async-capable
        // context) or by a group that applies them.
        let with_data = context.can_async() || self.full_entries_on_apply;
        if !with_data && let Some(entries) = self.placeholders(low, high) {
            return Ok(entries);
        }
        // Entries handed out to be applied (the metadata group's commands) may live on
        // after the read (raft hands them out one Ready at a time, a replay collects a
        // whole log's worth before applying): each gets its own bytes rather than
        // keeping the whole read chunk alive. Replaying a metadata log of 2,000 commands
        // held 390 MB of chunks before.
        let copy = self.full_entries_on_apply && !context.can_async();
        self.read_entries(low, high, max_size.into(), with_data, copy)
            .map_err(store_err)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        let (start, _) = self.log.with(|l| l.raft_start()).map_err(store_err)?;
        Ok(index_of(start))
    }

    fn last_index(&self) -> raft::Result<u64> {
        let end = self.log.with(|l| l.log_end_offset()).map_err(store_err)?;
        Ok(index_of(end) - 1)
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // A follower behind the log start gets "restart from here": the snapshot holds
        // no data, only the position (the entry before the first one) and the voters.
        let (start, epoch) = self.log.with(|l| l.raft_start()).map_err(store_err)?;
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = index_of(start) - 1;
        meta.term = epoch.max(0) as u64;
        meta.mut_conf_state().voters = self.voters.clone();
        Ok(snap)
    }
}
