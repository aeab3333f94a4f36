//! `OffsetMap`: where each Raft entry of a partition log sits among Kafka offsets
//! (docs/adr/0005-kafka-offsets.md).
//!
//! A partition's Raft log has two kinds of entries: *data* entries, one record batch
//! each, written to the segment log at consecutive Kafka offsets (a batch of n records
//! takes n), and each leader's *empty* entry, the first of its term, which takes no
//! offset and is not in the segment log at all. So the Raft index of a batch is not a
//! function of its offset; this map relates the two from three sources:
//!
//! - **epochs** (`EpochStart`, durable in the `raft-state` file): for every term in the
//!   log, the index of its empty entry and the offset where its data starts. The first
//!   one is the *start record*, the entry just before the log's first. Terms of any
//!   index, and which indices are empty entries, come from here alone.
//! - **the batches themselves**: inside a term, data entries are consecutive indices
//!   after the empty entry, in offset order, so walking batch headers from any known
//!   point numbers every batch after it: the next batch of the same term is the next
//!   index; a batch of a new term is the index after that term's empty entry.
//! - **anchors** (`anchors.rs`): known `(index, offset)` pairs of data entries that
//!   bound those walks: one per MiB appended, and one per segment's first batch (fsynced:
//!   retention removes whole segments, so every segment start must stay known).
//!
//! Recent data entries are also kept in memory, so the high watermark (the offset after
//! the committed index) and a leader's appends to followers that keep up need no walk.

use std::collections::VecDeque;

use strom_batch::RecordBatchHeader;

use crate::error::{RaftError, Result};

/// A term's empty entry and where the term's data starts; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    pub term: u64,
    /// The empty entry (or, for the start record, the entry before the log's first).
    pub index: u64,
    /// The offset of the term's first data entry (or where it would be).
    pub offset: i64,
}

/// A data entry: its index and offsets `[base, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataEntry {
    pub index: u64,
    pub base: i64,
    pub end: i64,
}

/// Walking state: the entry `prev_index` (of `prev_term`) ends before `offset`, where
/// the next batch (if any) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub prev_index: u64,
    pub prev_term: u64,
    pub offset: i64,
}

/// Data entries kept in memory beyond the uncommitted ones.
const RECENT_COMMITTED: usize = 64;

/// The map of one partition log; see the module docs.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    epochs: Vec<EpochStart>,
    anchors: Vec<(u64, i64)>,
    recent: VecDeque<DataEntry>,
    last_index: u64,
    end_offset: i64,
}

impl OffsetMap {
    /// A map of `epochs` (non-empty, the start record first) and `anchors` whose last
    /// entry is `last_index` and whose log ends at `end_offset`.
    pub fn new(
        epochs: Vec<EpochStart>,
        anchors: Vec<(u64, i64)>,
        last_index: u64,
        end_offset: i64,
    ) -> OffsetMap {
        debug_assert!(!epochs.is_empty());
        OffsetMap {
            epochs,
            anchors,
            recent: VecDeque::new(),
            last_index,
            end_offset,
        }
    }

    pub fn epochs(&self) -> &[EpochStart] {
        &self.epochs
    }

    pub fn anchors(&self) -> &[(u64, i64)] {
        &self.anchors
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The offset after the last entry: the log end offset.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// The start record: the entry before the log's first.
    pub fn start(&self) -> EpochStart {
        self.epochs[0]
    }

    /// The term of entry `index`; `None` below the start record or past the end.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index < self.epochs[0].index || index > self.last_index {
            return None;
        }
        let i = self.epochs.partition_point(|e| e.index <= index);
        Some(self.epochs[i - 1].term)
    }

    /// The epoch record of `term`, if the log holds its empty entry (or starts in it).
    pub fn epoch_of(&self, term: u64) -> Option<EpochStart> {
        let i = self.epochs.partition_point(|e| e.term < term);
        self.epochs.get(i).copied().filter(|e| e.term == term)
    }

    /// Whether entry `index` is a leader's empty entry (the start record is not an
    /// entry of the log).
    pub fn is_empty_entry(&self, index: u64) -> bool {
        index > self.epochs[0].index
            && self
                .epochs
                .binary_search_by_key(&index, |e| e.index)
                .is_ok()
    }

    /// A cursor right before the first data entry at or after `index` (its `offset` is
    /// where entry `index`'s records start, or the next data's for an empty entry), from
    /// what memory holds; `None` when only a walk from further back can tell.
    pub fn known_cursor_before(&self, index: u64) -> Option<Cursor> {
        if index > self.last_index {
            return Some(Cursor {
                prev_index: self.last_index,
                prev_term: self.term(self.last_index)?,
                offset: self.end_offset,
            });
        }
        let front = self.recent.front()?;
        if front.index > index {
            return None;
        }
        // The first recent data entry at or after `index`: everything between `index`
        // and it is empty entries.
        let i = self.recent.partition_point(|d| d.index < index);
        Some(match self.recent.get(i) {
            Some(d) => Cursor {
                prev_index: d.index - 1,
                prev_term: self.term(d.index)?,
                offset: d.base,
            },
            None => Cursor {
                prev_index: self.last_index,
                prev_term: self.term(self.last_index)?,
                offset: self.end_offset,
            },
        })
    }

    /// A cursor right after the epoch record `e` (before its term's first data).
    fn epoch_cursor(e: EpochStart) -> Cursor {
        Cursor {
            prev_index: e.index,
            prev_term: e.term,
            offset: e.offset,
        }
    }

    /// A cursor right before the data entry an anchor names.
    fn anchor_cursor(&self, (index, offset): (u64, i64)) -> Option<Cursor> {
        Some(Cursor {
            prev_index: index - 1,
            prev_term: self.term(index)?,
            offset,
        })
    }

    /// The best point to walk from towards `index`: the latest epoch record or anchor
    /// at or before it (a cursor right before it).
    pub fn walk_start_for_index(&self, index: u64) -> Cursor {
        let e = self.epochs[self.epochs.partition_point(|e| e.index <= index).max(1) - 1];
        let best = Self::epoch_cursor(e);
        let a = self.anchors.partition_point(|&(i, _)| i <= index);
        a.checked_sub(1)
            .map(|a| self.anchors[a])
            .filter(|&(i, _)| i > best.prev_index)
            .and_then(|a| self.anchor_cursor(a))
            .unwrap_or(best)
    }

    /// The best point to walk from towards `offset` (a batch boundary). Several terms
    /// may start at one offset (empty entries with no data between): the last of them is
    /// right before the batch there, and `partition_point` finds exactly that one.
    pub fn walk_start_for_offset(&self, offset: i64) -> Cursor {
        let e = self.epochs[self.epochs.partition_point(|e| e.offset <= offset).max(1) - 1];
        let best = Self::epoch_cursor(e);
        let a = self.anchors.partition_point(|&(_, o)| o <= offset);
        a.checked_sub(1)
            .map(|a| self.anchors[a])
            .filter(|&(_, o)| o > best.offset)
            .and_then(|a| self.anchor_cursor(a))
            .unwrap_or(best)
    }

    /// Numbers the batch `h` that starts at `cur.offset` and moves the cursor past it.
    pub fn step(&self, cur: &mut Cursor, h: &RecordBatchHeader) -> Result<u64> {
        let term = h.partition_leader_epoch.max(0) as u64;
        let index = if term == cur.prev_term {
            cur.prev_index + 1
        } else {
            match self.epoch_of(term) {
                Some(e)
                    if term > cur.prev_term
                        && e.index >= cur.prev_index
                        && e.offset == cur.offset =>
                {
                    e.index + 1
                }
                _ => {
                    return Err(RaftError::BadEntry {
                        index: cur.prev_index + 1,
                        reason: format!(
                            "the batch at offset {} has leader epoch {term}, which the log's \
                             epochs do not place after epoch {} at index {}",
                            cur.offset, cur.prev_term, cur.prev_index
                        ),
                    });
                }
            }
        };
        if h.base_offset != cur.offset {
            return Err(RaftError::BadEntry {
                index,
                reason: format!(
                    "expected a batch at offset {}, found one at {}",
                    cur.offset, h.base_offset
                ),
            });
        }
        *cur = Cursor {
            prev_index: index,
            prev_term: term,
            offset: h.last_offset() + 1,
        };
        Ok(index)
    }

    /// Sets the last entry and the log end (when opening a log, after walking it).
    pub fn set_end(&mut self, last_index: u64, end_offset: i64) {
        self.last_index = last_index;
        self.end_offset = end_offset;
    }

    /// The last recent data entry that lies wholly below `durable`, if memory knows.
    pub fn durable_data_index(&self, durable: i64) -> Option<u64> {
        let i = self.recent.partition_point(|d| d.end <= durable);
        i.checked_sub(1).map(|i| self.recent[i].index)
    }

    /// Records an appended empty entry (a new leader's first) at `index` of `term`.
    pub fn push_empty(&mut self, index: u64, term: u64) {
        self.epochs.push(EpochStart {
            term,
            index,
            offset: self.end_offset,
        });
        self.last_index = index;
    }

    /// Records an appended data entry of `records` records at `index`; returns it.
    pub fn push_data(&mut self, index: u64, records: i64) -> DataEntry {
        let d = DataEntry {
            index,
            base: self.end_offset,
            end: self.end_offset + records,
        };
        self.recent.push_back(d);
        self.last_index = index;
        self.end_offset = d.end;
        d
    }

    pub fn push_anchor(&mut self, index: u64, offset: i64) {
        if self
            .anchors
            .last()
            .is_none_or(|&(i, o)| i < index && o < offset)
        {
            self.anchors.push((index, offset));
        }
    }

    /// Forgets entries from `index` on, whose records started at `offset`.
    pub fn truncate(&mut self, index: u64, offset: i64) {
        self.epochs.retain(|e| e.index < index);
        self.anchors.retain(|&(i, _)| i < index);
        while self.recent.back().is_some_and(|d| d.index >= index) {
            self.recent.pop_back();
        }
        self.last_index = index - 1;
        self.end_offset = offset;
    }

    /// Starts over with an empty log after `start` (a snapshot from the leader).
    pub fn reset(&mut self, start: EpochStart) {
        self.epochs = vec![start];
        self.anchors.clear();
        self.recent.clear();
        self.last_index = start.index;
        self.end_offset = start.offset;
    }

    /// Forgets recent entries that are committed (`commit`), but a few.
    pub fn forget_committed(&mut self, commit: u64) {
        let committed = self.recent.partition_point(|d| d.index <= commit);
        let drop = committed.saturating_sub(RECENT_COMMITTED);
        self.recent.drain(..drop);
    }

    /// The last data entry at or before `index` among the recent ones.
    pub fn recent_data_at_or_before(&self, index: u64) -> Option<DataEntry> {
        let i = self.recent.partition_point(|d| d.index <= index);
        i.checked_sub(1).map(|i| self.recent[i])
    }

    /// Drops what lies before the log's new first entry `first` at `offset` (retention):
    /// the start record becomes the entry before it.
    pub fn set_start(&mut self, first: u64, offset: i64) {
        let Some(term) = self.term(first).or_else(|| self.term(first - 1)) else {
            return;
        };
        let keep = self.epochs.partition_point(|e| e.index < first);
        self.epochs.drain(..keep);
        self.epochs.insert(
            0,
            EpochStart {
                term,
                index: first - 1,
                offset,
            },
        );
        // Several records may now sit at one index: keep the start record's.
        self.epochs.dedup_by_key(|e| e.index);
        self.anchors.retain(|&(i, _)| i >= first);
        while self.recent.front().is_some_and(|d| d.index < first) {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: i64, records: i32, epoch: i32) -> RecordBatchHeader {
        let mut b = strom_batch::RecordBatchBuilder::new();
        for _ in 0..records {
            b.push(0, None, Some(b"v"), &[]);
        }
        let mut bytes = b.build();
        RecordBatchHeader::stamp_base_offset(&mut bytes, base);
        RecordBatchHeader::stamp_leader_epoch(&mut bytes, epoch);
        RecordBatchHeader::parse(&bytes, 0).unwrap()
    }

    /// Term 1: empty entry 1, batches 2 (3 records), 3 (2 records); term 2: empty
    /// entry 4, term 3: empty entry 5, batch 6 (1 record).
    fn sample() -> (OffsetMap, Vec<RecordBatchHeader>) {
        let mut m = OffsetMap::new(
            vec![EpochStart {
                term: 0,
                index: 0,
                offset: 0,
            }],
            vec![],
            0,
            0,
        );
        m.push_empty(1, 1);
        m.push_data(2, 3);
        m.push_data(3, 2);
        m.push_empty(4, 2);
        m.push_empty(5, 3);
        m.push_data(6, 1);
        let hs = vec![header(0, 3, 1), header(3, 2, 1), header(5, 1, 3)];
        (m, hs)
    }

    #[test]
    fn terms_and_empty_entries_come_from_the_epochs() {
        let (m, _) = sample();
        let terms: Vec<_> = (0..=7).map(|i| m.term(i)).collect();
        assert_eq!(
            terms,
            vec![
                Some(0),
                Some(1),
                Some(1),
                Some(1),
                Some(2),
                Some(3),
                Some(3),
                None
            ]
        );
        let empty: Vec<_> = (0..=6).filter(|&i| m.is_empty_entry(i)).collect();
        assert_eq!(empty, vec![1, 4, 5]);
        assert_eq!((m.last_index(), m.end_offset()), (6, 6));
    }

    #[test]
    fn a_walk_numbers_batches_across_terms_with_and_without_data() {
        let (m, hs) = sample();
        let mut cur = m.walk_start_for_index(2);
        let got: Vec<_> = hs.iter().map(|h| m.step(&mut cur, h).unwrap()).collect();
        assert_eq!(got, vec![2, 3, 6]);
        assert_eq!(cur.offset, 6);
        // From the offset side: the batch at offset 5 is entry 6.
        let mut cur = m.walk_start_for_offset(5);
        assert_eq!(cur.offset, 5, "term 3 starts right there");
        assert_eq!(m.step(&mut cur, &hs[2]).unwrap(), 6);
    }

    #[test]
    fn known_offsets_cover_recent_entries_and_empty_ones_between() {
        let (m, _) = sample();
        let offsets: Vec<_> = (2..=7)
            .map(|i| m.known_cursor_before(i).map(|c| c.offset))
            .collect();
        assert_eq!(
            offsets,
            vec![Some(0), Some(3), Some(5), Some(5), Some(5), Some(6)]
        );
    }

    #[test]
    fn a_batch_of_an_unknown_term_is_refused() {
        let (m, _) = sample();
        let mut cur = m.walk_start_for_index(2);
        assert!(
            m.step(&mut cur, &header(0, 3, 2)).is_err(),
            "term 2 has no data"
        );
        let mut cur = m.walk_start_for_index(2);
        assert!(m.step(&mut cur, &header(1, 3, 1)).is_err(), "wrong offset");
    }

    #[test]
    fn truncation_and_a_new_start_forget_what_they_cut() {
        let (mut m, _) = sample();
        m.truncate(4, 5);
        assert_eq!((m.last_index(), m.end_offset(), m.term(4)), (3, 5, None));
        m.push_empty(4, 4);
        assert_eq!(m.term(4), Some(4));
        m.set_start(3, 3);
        assert_eq!(
            m.start(),
            EpochStart {
                term: 1,
                index: 2,
                offset: 3
            }
        );
        assert_eq!(m.term(2), Some(1));
        assert_eq!(m.term(1), None);
    }
}
