//! How a partition's Kafka record batches are Raft entries (docs/adr/0001-raft-offsets.md).
//!
//! Raft index = Kafka offset + 1, so that Raft's first index (1) is offset 0 and the
//! commit index is the high watermark. A batch of `n` records occupies `n` offsets, so
//! it is `n` consecutive entries: the first carries the batch's bytes, the other `n - 1`
//! are *continuations* with no data whose context names the batch's last index. Only
//! the first is ever written; the segment log holds nothing else. Raft's own empty entry
//! (a new leader's first) becomes a one-record control batch, which clients skip.
//!
//! A log must only ever hold whole batches, so no message may end inside one:
//! [`complete_last_batch`] adds the missing continuations to an outgoing append.

use bytes::Bytes;
use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use strom_batch::{RecordBatchBuilder, RecordBatchHeader};

/// The Raft index of the entry holding Kafka offset `offset`.
pub fn index_of(offset: i64) -> u64 {
    (offset + 1) as u64
}

/// The Kafka offset held by the entry at Raft index `index` (>= 1).
pub fn offset_of(index: u64) -> i64 {
    index as i64 - 1
}

/// What an entry of a partition group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The first entry of a record batch; its data is the batch.
    Batch { last_index: u64 },
    /// One of the entries after a batch's first; nothing to write.
    Continuation { last_index: u64 },
    /// Raft's empty entry: written as a leader-change control batch.
    Noop,
}

/// Classifies an entry; `None` for entries a partition group never has (configuration
/// changes, damaged contexts).
pub fn classify(e: &Entry) -> Option<EntryKind> {
    if e.get_entry_type() != EntryType::EntryNormal {
        return None;
    }
    if !e.data.is_empty() {
        let header = RecordBatchHeader::parse(&e.data, 0).ok()?;
        return Some(EntryKind::Batch {
            last_index: e.index + header.last_offset_delta.max(0) as u64,
        });
    }
    match e.context.len() {
        0 => Some(EntryKind::Noop),
        8 => Some(EntryKind::Continuation {
            last_index: u64::from_be_bytes(e.context[..8].try_into().unwrap()),
        }),
        _ => None,
    }
}

/// The last index of the batch an entry belongs to.
pub fn batch_last_index(e: &Entry) -> u64 {
    match classify(e) {
        Some(EntryKind::Batch { last_index } | EntryKind::Continuation { last_index }) => {
            last_index.max(e.index)
        }
        _ => e.index,
    }
}

/// A continuation entry at `index` of the batch ending at `last_index`.
pub fn continuation(index: u64, term: u64, last_index: u64) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e.context = Bytes::copy_from_slice(&last_index.to_be_bytes());
    e
}

/// The entries that propose `batch` (already stamped with its base offset and epoch)
/// when it is to start at `first_index`. Raft assigns index and term itself on
/// proposal; they are set here too so the caller can check the assignment.
pub fn batch_entries(batch: Bytes, first_index: u64, term: u64, out: &mut Vec<Entry>) {
    let delta = RecordBatchHeader::parse(&batch, 0).map_or(0, |h| h.last_offset_delta.max(0));
    let last_index = first_index + delta as u64;
    let mut e = Entry::default();
    e.index = first_index;
    e.term = term;
    e.data = batch;
    out.push(e);
    push_continuations(first_index + 1, term, last_index, out);
}

/// Pushes the continuations `from..=last_index` of the batch ending at `last_index`.
/// They all carry the same context, so they share one buffer: a 1 MiB batch of 1 KiB
/// records has about a thousand of them, and an allocation each was a measurable part
/// of the produce path.
fn push_continuations(from: u64, term: u64, last_index: u64, out: &mut Vec<Entry>) {
    if from > last_index {
        return;
    }
    out.reserve((last_index - from + 1) as usize);
    let context = Bytes::copy_from_slice(&last_index.to_be_bytes());
    for index in from..=last_index {
        let mut e = Entry::default();
        e.index = index;
        e.term = term;
        e.context = context.clone();
        out.push(e);
    }
}

/// The control batch that stands for Raft's empty entry at `offset`: a LEADER_CHANGE
/// control record (key version 0, type 2, as KRaft writes), no value, no timestamp. It
/// depends only on offset and term, so every replica writes the same bytes.
pub fn leader_change_batch(offset: i64, term: u64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new().control();
    b.push(-1, Some(&[0, 0, 0, 2]), None, &[]);
    let mut bytes = b.build();
    RecordBatchHeader::stamp_base_offset(&mut bytes, offset);
    RecordBatchHeader::stamp_leader_epoch(&mut bytes, term as i32);
    bytes
}

/// Whether a stored batch stands for Raft's empty entry: clients cannot produce
/// control batches, so every control batch in a partition log is one of ours.
pub fn is_leader_change(header: &RecordBatchHeader) -> bool {
    header.is_control()
}

/// Makes an append message end at a batch boundary by adding the continuations of its
/// last batch that raft's size limit left out (the leader holds them all: a batch is
/// appended whole). Other messages are left alone.
pub fn complete_last_batch(msg: &mut Message) {
    if msg.get_msg_type() != MessageType::MsgAppend {
        return;
    }
    let Some(last) = msg.entries.last() else {
        return;
    };
    let (index, term) = (last.index, last.term);
    let end = batch_last_index(last);
    let mut added = Vec::new();
    push_continuations(index + 1, term, end, &mut added);
    for e in added {
        msg.entries.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new();
        for i in 0..records {
            b.push(1, None, Some(format!("v{i}").as_bytes()), &[]);
        }
        Bytes::from(b.build())
    }

    #[test]
    fn a_batch_is_one_entry_per_offset() {
        let mut out = Vec::new();
        batch_entries(batch(3), 10, 4, &mut out);
        let kinds: Vec<_> = out
            .iter()
            .map(|e| (e.index, classify(e).unwrap()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (10, EntryKind::Batch { last_index: 12 }),
                (11, EntryKind::Continuation { last_index: 12 }),
                (12, EntryKind::Continuation { last_index: 12 }),
            ]
        );
        assert!(out.iter().all(|e| e.term == 4));
        assert_eq!((index_of(9), offset_of(10)), (10, 9));
    }

    #[test]
    fn appends_are_completed_to_the_batch_end() {
        let mut all = Vec::new();
        batch_entries(batch(4), 1, 2, &mut all);
        for cut in 1..=4 {
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgAppend);
            m.entries = all[..cut].to_vec().into();
            complete_last_batch(&mut m);
            assert_eq!(m.entries.len(), 4, "cut after {cut}");
            assert_eq!(m.entries[3].index, 4);
            assert_eq!(classify(&m.entries[3]), classify(&all[3]));
        }
    }

    #[test]
    fn the_leader_change_batch_is_a_valid_deterministic_control_batch() {
        let a = leader_change_batch(7, 3);
        assert_eq!(a, leader_change_batch(7, 3));
        let h = RecordBatchHeader::validate(&a, 0).unwrap();
        assert!(h.is_control());
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (7, 3, 7)
        );
        assert!(is_leader_change(&h));
        let mut noop = Entry::default();
        noop.index = 8;
        assert_eq!(classify(&noop), Some(EntryKind::Noop));
    }
}
