//! How a partition's Kafka record batches are Raft entries (docs/adr/0005-kafka-offsets.md).
//!
//! One entry per record batch: its data is the batch, stamped with its base offset and
//! with the entry's term as partition leader epoch. Raft's own empty entry (each new
//! leader's first) takes no Kafka offset and is not written to the segment log; the
//! group's epochs record it (see `offsets.rs`).

use bytes::Bytes;
use raft::eraftpb::{Entry, EntryType};
use strom_batch::RecordBatchHeader;

/// What an entry of a partition group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A record batch of `records` offsets.
    Batch { records: i64 },
    /// Raft's empty entry: a new leader's first.
    Empty,
}

/// Classifies an entry; `None` for entries a partition group never has (configuration
/// changes, data that is not a record batch, and the context-carrying "continuations"
/// a Strom of partition format 1 sent: a node of the old format cannot be mixed in).
pub fn classify(e: &Entry) -> Option<EntryKind> {
    if e.get_entry_type() != EntryType::EntryNormal || !e.context.is_empty() {
        return None;
    }
    if e.data.is_empty() {
        return Some(EntryKind::Empty);
    }
    let header = RecordBatchHeader::parse(&e.data, 0).ok()?;
    Some(EntryKind::Batch {
        records: header.last_offset_delta.max(0) as i64 + 1,
    })
}

/// The number of offsets an entry takes: a batch's records, none for anything else.
pub fn offsets_taken(e: &Entry) -> i64 {
    match classify(e) {
        Some(EntryKind::Batch { records }) => records,
        _ => 0,
    }
}

/// The entry that proposes `batch` (already stamped with its base offset and epoch) at
/// `index`. Raft assigns index and term itself on proposal; they are set here too so
/// the caller can check the assignment.
pub fn batch_entry(batch: Bytes, index: u64, term: u64) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e.data = batch;
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_batch::RecordBatchBuilder;

    #[test]
    fn a_batch_is_one_entry_taking_one_offset_per_record() {
        let mut b = RecordBatchBuilder::new();
        for i in 0..3 {
            b.push(1, None, Some(format!("v{i}").as_bytes()), &[]);
        }
        let e = batch_entry(Bytes::from(b.build()), 10, 4);
        assert_eq!(classify(&e), Some(EntryKind::Batch { records: 3 }));
        assert_eq!(offsets_taken(&e), 3);
        let empty = Entry::default();
        assert_eq!(classify(&empty), Some(EntryKind::Empty));
        assert_eq!(offsets_taken(&empty), 0);
        let mut old_continuation = Entry::default();
        old_continuation.context = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 12]);
        assert_eq!(classify(&old_continuation), None);
    }
}
