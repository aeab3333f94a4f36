//! `LogStorage`: raft's `Storage` over a partition's segment log, which holds the data
//! entries of the Raft log (one record batch each); each leader's empty entry takes no
//! offset and lives in the group's epochs. `OffsetMap` (`offsets.rs`) relates Raft
//! indexes and Kafka offsets; hard state and epochs are in the `raft-state` file
//! (`state_file.rs`), walk anchors in `raft-anchors` (`anchors.rs`).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use strom_batch::RecordBatchHeader;
use strom_log::{LogManager, PartitionLog, TopicPartition};

use crate::anchors::AnchorFile;
use crate::entry::{EntryKind, classify};
use crate::error::{RaftError, Result};
use crate::offsets::{Cursor, EpochStart, OffsetMap};
use crate::state_file::{PersistedState, StateFile};

/// Bytes read from the log per step when raft asks for entries without a size limit.
const READ_CHUNK: usize = 1 << 20;
/// Batch headers read per step of a walk.
const WALK_CHUNK: usize = 1024;
/// Data bytes between two anchors (hints: bound every walk to about this much).
const ANCHOR_BYTES: u64 = 1 << 20;

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

/// Raft storage of one group.
#[derive(Debug)]
pub struct LogStorage {
    log: LogRef,
    hard: HardState,
    voters: Vec<u64>,
    state_file: StateFile,
    /// Whether term, vote or epochs changed since the state file was written.
    state_dirty: bool,
    anchor_file: AnchorFile,
    map: RefCell<OffsetMap>,
    /// The first segment's base offset the map's start record stands for.
    start_offset: Cell<i64>,
    /// Where the last read of entries ended, to continue the next one without a walk.
    read_cursor: Cell<Option<Cursor>>,
    /// Data bytes appended since the last anchor.
    since_anchor: u64,
    /// The log keeps the segment holding this offset and all later ones: the base of
    /// the newest committed batch, so that retention never leaves the log without a
    /// batch to go on numbering from (`PartitionLog::set_keep_from`).
    keep_from: i64,
    /// Whether committed entries handed out for applying carry their data (the
    /// metadata group applies commands; partition groups apply nothing and save the
    /// reads).
    full_entries_on_apply: bool,
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
        let (mut anchor_file, mut anchors) = AnchorFile::load(&dir)?;
        let (mut first_base, mut end) = log.with(|l| (l.raft_start().0, l.log_end_offset()))?;
        let saved = match saved {
            Some(s) if !s.epochs.is_empty() => s,
            _ => {
                let s = PersistedState {
                    voters: voters.to_vec(),
                    epochs: vec![EpochStart {
                        term: 0,
                        index: 0,
                        offset: first_base,
                    }],
                    ..PersistedState::default()
                };
                state_file.write_initial(&s)?;
                s
            }
        };
        let mut epochs = saved.epochs.clone();
        let start = epochs[0];
        if start.offset > first_base {
            // A reset to a leader's snapshot was under way: the state goes first, the
            // log follows (see `apply_snapshot`).
            log.with(|l| l.reset_to(start.offset, start.term as i32))??;
            (first_base, end) = (start.offset, start.offset);
        }
        // Epochs whose data would start past the log end came with entries a crash lost
        // before they were durable (so before they were acknowledged).
        let kept = epochs.len();
        epochs.retain(|e| e.index == start.index || e.offset <= end);
        let mut rewrite = kept != epochs.len();
        let before = anchors.len();
        anchors.retain(|&(_, o)| o >= first_base && o < end);
        rewrite |= anchors.len() != before;
        let mut map = OffsetMap::new(epochs, anchors, u64::MAX, end);
        // Number the batches from the last known point before the log's last batch.
        let last_batch = match end > first_base {
            true => log.with(|l| l.batch_containing(end - 1))??,
            false => None,
        };
        let mut cur = map.walk_start_for_offset(last_batch.map_or(end, |h| h.base_offset));
        walk(&log, &map, &mut cur, end, |_, _| true)?;
        let last_empty = map.epochs().last().map_or(0, |e| e.index);
        let last_index = cur.prev_index.max(last_empty);
        map.set_end(last_index, end);
        if rewrite {
            anchor_file.rewrite(map.anchors())?;
        }
        // Until the replica says what is committed, the newest batch's segment stays.
        let keep_from = last_batch.map_or(end, |h| h.base_offset);
        let mut storage = LogStorage {
            log,
            hard: HardState::default(),
            voters: saved.voters.clone(),
            state_file,
            state_dirty: false,
            anchor_file,
            map: RefCell::new(map),
            start_offset: Cell::new(start.offset.min(first_base)),
            read_cursor: Cell::new(None),
            since_anchor: 0,
            keep_from,
            full_entries_on_apply,
            proposed: None,
        };
        storage.log.with(|l| l.set_keep_from(Some(keep_from)))?;
        storage.sync_start()?;
        let first_index = storage.map.get_mut().start().index + 1;
        let mut hard = HardState::default();
        hard.term = saved.term;
        hard.vote = saved.vote;
        // Everything below the log start was committed (retention stops at the commit
        // index), and raft insists the commit index is not below it.
        hard.commit = saved.commit.max(first_index - 1).min(last_index);
        if saved.voters.len() == 1 {
            // A group of one: whatever survived in its log was fsynced by its only
            // voter, so it is committed (its leader would commit it at once anyway);
            // the high watermark is right from the first moment after a restart.
            hard.commit = last_index;
        }
        storage.hard = hard;
        Ok(storage)
    }

    /// Writes the group's own files again, fsynced, after a storage error in its
    /// directory: what a failed fsync left in the page cache is readable but may not be
    /// durable, and no later fsync of the same file can be trusted to make it so
    /// (fsyncgate). The anchors get a new file; the state goes to the other slot.
    pub fn rewrite_after_fault(dir: &std::path::Path) -> Result<()> {
        let (mut anchors, kept) = AnchorFile::load(dir)?;
        anchors.rewrite(&kept)?;
        let (mut state_file, saved) = StateFile::open(dir)?;
        if let Some(saved) = saved {
            state_file.write(&saved)?;
        }
        Ok(())
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

    /// Takes raft's new hard state. A term or vote change must be durable before any
    /// message that depends on it goes out: it is written by the next
    /// [`sync_state`](Self::sync_state) (with an append's epochs, in one fsync); a
    /// commit index alone is kept in memory and saved with the next change (a restart
    /// may see an older commit index, which is safe).
    pub fn set_hard_state(&mut self, hs: &HardState) {
        self.state_dirty |= hs.term != self.hard.term || hs.vote != self.hard.vote;
        self.hard = hs.clone();
    }

    /// Writes the state file if term, vote or epochs changed since it was last written.
    pub fn sync_state(&mut self) -> Result<()> {
        if self.state_dirty {
            self.persist_state()?;
        }
        Ok(())
    }

    /// Saves the current state (term, vote, epochs, commit capped at the durable log
    /// end).
    pub fn persist_state(&mut self) -> Result<()> {
        let durable = self.log.with(|l| l.durable_offset())?;
        let map = self.map.get_mut();
        let durable_index = if durable >= map.end_offset() {
            map.last_index()
        } else {
            map.durable_data_index(durable).unwrap_or(map.start().index)
        };
        let state = PersistedState {
            term: self.hard.term,
            vote: self.hard.vote,
            commit: self.hard.commit.min(durable_index),
            voters: self.voters.clone(),
            epochs: map.epochs().to_vec(),
        };
        self.state_file.write(&state)?;
        self.state_dirty = false;
        Ok(())
    }

    /// Follows the log's first segment when retention or DeleteRecords removed
    /// segments: the map's start record moves to the entry before the new first batch.
    fn sync_start(&self) -> Result<()> {
        let first_base = self.log.with(|l| l.raft_start().0)?;
        if first_base <= self.start_offset.get() {
            return Ok(());
        }
        let first = {
            let map = self.map.borrow();
            if first_base >= map.end_offset() {
                map.last_index() + 1
            } else {
                let mut cur = map.walk_start_for_offset(first_base);
                walk(&self.log, &map, &mut cur, first_base, |_, _| true)?;
                if cur.offset != first_base {
                    return Err(RaftError::BadEntry {
                        index: cur.prev_index,
                        reason: format!("no batch starts at the first segment's base {first_base}"),
                    });
                }
                let h = self.log.with(|l| l.headers_from(first_base, 1))??;
                let h = h.first().ok_or_else(|| RaftError::BadEntry {
                    index: cur.prev_index + 1,
                    reason: format!("no batch at offset {first_base}"),
                })?;
                map.step(&mut cur.clone(), h)?
            }
        };
        self.map.borrow_mut().set_start(first, first_base);
        self.start_offset.set(first_base);
        self.read_cursor.set(None);
        Ok(())
    }

    /// A cursor right before the first data entry at or after `index`.
    fn locate(&self, index: u64) -> Result<Cursor> {
        let map = self.map.borrow();
        if let Some(c) = map.known_cursor_before(index) {
            return Ok(c);
        }
        let mut cur = match self.read_cursor.get() {
            Some(c) if c.prev_index < index && c.prev_index >= map.start().index => c,
            _ => map.walk_start_for_index(index),
        };
        let end = map.end_offset();
        walk(&self.log, &map, &mut cur, end, |i, _| i < index)?;
        Ok(cur)
    }

    /// The Kafka offset after entry `index`: the high watermark when `index` is the
    /// commit index.
    pub fn offset_after(&self, index: u64) -> Result<i64> {
        Ok(self.locate(index + 1)?.offset)
    }

    /// The log end offset as the Raft log knows it.
    pub fn end_offset(&self) -> i64 {
        self.map.borrow().end_offset()
    }

    /// Where the entry at `index` would start: the Kafka offset a batch proposed at
    /// `index` gets (entries before it being in this log).
    pub fn offset_before(&self, index: u64) -> Result<i64> {
        Ok(self.locate(index)?.offset)
    }

    /// Notes that entries up to `commit` are committed, at high watermark `hw`: the
    /// log may expire what is below `hw` but keeps the newest committed batch's
    /// segment; recent entries the commit covers are forgotten (but a few).
    pub fn committed(&mut self, commit: u64, hw: i64) -> Result<()> {
        let map = self.map.get_mut();
        if let Some(d) = map.recent_data_at_or_before(commit) {
            self.keep_from = d.base;
        }
        map.forget_committed(commit);
        let keep = self.keep_from;
        self.log.with(|l| {
            l.set_retention_ceiling(Some(hw));
            l.set_keep_from(Some(keep));
        })
    }

    /// Writes the entries of a Ready: truncates a conflicting tail first, writes each
    /// batch's bytes with one append and records each empty entry in the epochs (made
    /// durable by the [`sync_state`](Self::sync_state) that follows). Batches are not
    /// durable until the log is flushed.
    pub fn append(&mut self, entries: &[Entry], now_ms: i64) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        self.sync_start()?;
        let last_index = self.map.get_mut().last_index();
        if first.index <= last_index {
            let cut = self.locate(first.index)?.offset;
            self.log.with(|l| l.truncate_to(cut))??;
            let map = self.map.get_mut();
            map.truncate(first.index, cut);
            self.anchor_file.rewrite(map.anchors())?;
            if self.keep_from >= cut {
                self.keep_from = map
                    .recent_data_at_or_before(first.index - 1)
                    .map_or(self.start_offset.get(), |d| d.base);
                let keep = self.keep_from;
                self.log.with(|l| l.set_keep_from(Some(keep)))?;
            }
            self.read_cursor.set(None);
            self.state_dirty = true;
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
        // then not checked a second time).
        let mut all_validated = true;
        let mut written = Vec::new();
        let map = self.map.get_mut();
        for e in entries {
            let bad = |reason: String| RaftError::BadEntry {
                index: e.index,
                reason,
            };
            if e.index != map.last_index() + 1 {
                return Err(bad(format!("an entry after index {}", map.last_index())));
            }
            match classify(e) {
                Some(EntryKind::Batch { records }) => {
                    let h = RecordBatchHeader::parse(&e.data, 0).map_err(|x| bad(x.to_string()))?;
                    // One entry is one batch: a peer's entry holding more (or less) would
                    // be written whole while the offsets counted only its first batch.
                    if h.total_size() != e.data.len() {
                        return Err(bad(format!(
                            "an entry of {} bytes holding a batch of {}",
                            e.data.len(),
                            h.total_size()
                        )));
                    }
                    let ours = proposed.is_some_and(|p| p.contains(e.index, e.term));
                    all_validated &= ours;
                    let base = map.end_offset();
                    // What `Replica::propose` predicted (and told the producer) is where
                    // the batch lands: offsets dense, one batch per entry.
                    debug_assert!(
                        !ours
                            || (h.base_offset == base
                                && h.partition_leader_epoch as u64 == e.term
                                && h.total_size() == e.data.len()),
                        "entry {} of term {} was proposed at offset {} (epoch {}, {} of {} bytes) \
                         but lands at {base}",
                        e.index,
                        e.term,
                        h.base_offset,
                        h.partition_leader_epoch,
                        h.total_size(),
                        e.data.len()
                    );
                    if h.base_offset != base || h.partition_leader_epoch as u64 != e.term {
                        // A command forwarded by a follower travels unstamped: offset
                        // and epoch follow from the entry on every replica alike.
                        let mut b = e.data.to_vec();
                        RecordBatchHeader::stamp_base_offset(&mut b, base);
                        RecordBatchHeader::stamp_leader_epoch(&mut b, e.term as i32);
                        parts.push(Cow::Owned(b));
                    } else {
                        parts.push(Cow::Borrowed(&e.data[..]));
                    }
                    let d = map.push_data(e.index, records);
                    written.push((d, e.data.len() as u64));
                }
                Some(EntryKind::Empty) => {
                    if map.term(e.index - 1).is_some_and(|t| t >= e.term) {
                        return Err(bad(format!(
                            "an empty entry of term {} after a later term",
                            e.term
                        )));
                    }
                    map.push_empty(e.index, e.term);
                    self.state_dirty = true;
                }
                None => return Err(bad("not a partition entry".into())),
            }
        }
        if parts.is_empty() {
            return Ok(());
        }
        let bytes = match parts.len() {
            1 => parts.pop().unwrap(),
            _ => Cow::Owned(parts.concat()),
        };
        let end = self.map.get_mut().end_offset();
        let active = self.log.with(|l| -> Result<i64> {
            match all_validated {
                true => l.append_prevalidated(&bytes, now_ms)?,
                false => l.append_replicated(&bytes, now_ms)?,
            };
            // The segment log and the Raft log agree on the end: one entry is one batch.
            debug_assert_eq!(
                l.log_end_offset(),
                end,
                "the log and the offset map disagree"
            );
            Ok(l.active_segment_base())
        })??;
        self.note_anchors(&written, active)
    }

    /// Anchors for the batches just written: a synced one when the first of them
    /// starts a segment (unless its term's epoch already places it), a hint every
    /// `ANCHOR_BYTES`.
    fn note_anchors(
        &mut self,
        written: &[(crate::offsets::DataEntry, u64)],
        active: i64,
    ) -> Result<()> {
        for (i, &(d, len)) in written.iter().enumerate() {
            let map = self.map.get_mut();
            let starts_segment = i == 0 && d.base == active;
            let placed = map
                .term(d.index)
                .and_then(|t| map.epoch_of(t))
                .is_some_and(|e| e.index + 1 == d.index && e.offset == d.base);
            if starts_segment && !placed {
                map.push_anchor(d.index, d.base);
                self.anchor_file.append(d.index, d.base, true)?;
                self.since_anchor = 0;
            } else if self.since_anchor >= ANCHOR_BYTES {
                map.push_anchor(d.index, d.base);
                self.anchor_file.append(d.index, d.base, false)?;
                self.since_anchor = 0;
            }
            self.since_anchor += len;
        }
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
    /// leader's log start, so it continues from there with an empty log. The new start
    /// is written to the state file before the log is reset, so a crash in between
    /// finishes the reset when the group opens again.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        let meta = snap.get_metadata();
        let offset = snapshot_offset(snap)?;
        let start = EpochStart {
            term: meta.term,
            index: meta.index,
            offset,
        };
        self.map.get_mut().reset(start);
        self.hard.commit = self.hard.commit.max(meta.index);
        self.hard.term = self.hard.term.max(meta.term);
        let voters = meta.get_conf_state().voters.clone();
        if !voters.is_empty() {
            self.voters = voters;
        }
        self.persist_state()?;
        self.log.with(|l| l.reset_to(offset, meta.term as i32))??;
        self.anchor_file.rewrite(&[])?;
        self.start_offset.set(offset);
        self.read_cursor.set(None);
        self.since_anchor = 0;
        self.keep_from = offset;
        self.log.with(|l| l.set_keep_from(Some(offset)))?;
        Ok(())
    }

    /// Entries `[low, high)` as index and term only, without touching the log.
    ///
    /// For entries nobody reads: a group that applies nothing is still handed every
    /// committed entry, and raft-rs looks at no more of them than the index (to track
    /// what it handed out), the entry type (pending configuration changes, which
    /// partition groups never have) and the data's length (for an uncommitted-size limit
    /// partition groups do not set). Reading them back from the segment would cost a
    /// read of every committed byte; this costs one binary search per entry.
    fn placeholders(&self, low: u64, high: u64) -> Option<Vec<Entry>> {
        let map = self.map.borrow();
        let mut out = Vec::with_capacity(high.saturating_sub(low) as usize);
        for index in low..high {
            let mut e = Entry::default();
            e.index = index;
            e.term = map.term(index)?;
            out.push(e);
        }
        Some(out)
    }

    /// Reads entries `[low, high)` from the log (empty entries from the epochs).
    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: Option<u64>,
        copy: bool,
    ) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = Vec::new();
        let mut size = 0u64;
        let mut next = low;
        let mut cur = self.locate(low)?;
        let map = self.map.borrow();
        let end = map.end_offset();
        let empty = |index: u64| -> Result<Entry> {
            match (map.is_empty_entry(index), map.term(index)) {
                (true, Some(term)) => {
                    let mut e = Entry::default();
                    e.index = index;
                    e.term = term;
                    Ok(e)
                }
                _ => Err(RaftError::BadEntry {
                    index,
                    reason: "missing from the log".into(),
                }),
            }
        };
        'read: while next < high {
            if cur.offset >= end {
                while next < high {
                    out.push(empty(next)?);
                    next += 1;
                }
                break;
            }
            let budget = match max_size {
                Some(m) => (m.saturating_sub(size) as usize).clamp(1, READ_CHUNK),
                None => READ_CHUNK,
            };
            let bytes = self.log.with(|l| -> Result<Vec<u8>> {
                let r = l.read_stored(cur.offset, budget, None)?;
                match r.slice {
                    Some(s) => Ok(s.read_to_vec()?),
                    None => Ok(Vec::new()),
                }
            })??;
            if bytes.is_empty() {
                return Err(RaftError::BadEntry {
                    index: next,
                    reason: format!("nothing to read at offset {}", cur.offset),
                });
            }
            let bytes = Bytes::from(bytes);
            let mut pos = 0;
            while pos < bytes.len() {
                let h = RecordBatchHeader::parse(&bytes[pos..], pos)?;
                let batch_end = pos + h.total_size();
                let mut after = cur;
                let index = map.step(&mut after, &h)?;
                while next < index && next < high {
                    out.push(empty(next)?);
                    size += 16;
                    next += 1;
                }
                if index >= high {
                    break 'read;
                }
                let mut e = Entry::default();
                e.index = index;
                e.term = after.prev_term;
                e.data = match copy {
                    true => Bytes::copy_from_slice(&bytes[pos..batch_end]),
                    false => bytes.slice(pos..batch_end),
                };
                size += e.data.len() as u64 + 16;
                out.push(e);
                next = index + 1;
                cur = after;
                pos = batch_end;
                if max_size.is_some_and(|m| size >= m) {
                    break 'read;
                }
            }
        }
        self.read_cursor.set(Some(cur));
        if next < high && out.is_empty() {
            return Err(RaftError::BadEntry {
                index: next,
                reason: "missing from the log".into(),
            });
        }
        Ok(out)
    }
}

/// The Kafka offset a snapshot restarts the log at (its data: 8 bytes, big-endian).
fn snapshot_offset(snap: &Snapshot) -> Result<i64> {
    let data = snap.get_data();
    match <[u8; 8]>::try_from(data) {
        Ok(b) => Ok(i64::from_be_bytes(b)),
        Err(_) => Err(RaftError::BadEntry {
            index: snap.get_metadata().index,
            reason: format!(
                "a snapshot with {} bytes of data, not an offset",
                data.len()
            ),
        }),
    }
}

/// Walks the batches from `cur` towards offset `until`, numbering each; stops before a
/// batch for which `go_on(index, header)` is false (the cursor stays before it).
fn walk(
    log: &LogRef,
    map: &OffsetMap,
    cur: &mut Cursor,
    until: i64,
    mut go_on: impl FnMut(u64, &RecordBatchHeader) -> bool,
) -> Result<()> {
    while cur.offset < until {
        let from = cur.offset;
        let headers = log.with(|l| l.headers_from(from, WALK_CHUNK))??;
        if headers.is_empty() {
            return Err(RaftError::BadEntry {
                index: cur.prev_index + 1,
                reason: format!("no batch at offset {from}"),
            });
        }
        for h in &headers {
            if cur.offset >= until {
                return Ok(());
            }
            let mut next = *cur;
            let index = map.step(&mut next, h)?;
            if !go_on(index, h) {
                return Ok(());
            }
            *cur = next;
        }
    }
    Ok(())
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
        self.read_entries(low, high, max_size.into(), copy)
            .map_err(store_err)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        // Terms are facts of the epochs, right whether or not retention has moved the
        // start since: no need to look at the log.
        let map = self.map.borrow();
        match map.term(idx) {
            Some(t) => Ok(t),
            None if idx < map.start().index => Err(raft::Error::Store(StorageError::Compacted)),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.sync_start().map_err(store_err)?;
        Ok(self.map.borrow().start().index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.map.borrow().last_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // A follower behind the log start gets "restart from here": the snapshot holds
        // no data but the offset where the log now starts, with the position (the entry
        // before the first one) and the voters.
        self.sync_start().map_err(store_err)?;
        let start = self.map.borrow().start();
        let mut snap = Snapshot::default();
        snap.data = Bytes::copy_from_slice(&start.offset.to_be_bytes());
        let meta = snap.mut_metadata();
        meta.index = start.index;
        meta.term = start.term;
        meta.mut_conf_state().voters = self.voters.clone();
        Ok(snap)
    }
}
