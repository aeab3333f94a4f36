//! Stamps batches as a Raft leader does before they reach a log: each batch's base
//! offset (dense from a given offset on) and its leader epoch, both outside the CRC.
//!
//! The log has one write path, the one Raft uses (`append_replicated` and
//! `append_prevalidated` take batches that already carry their offsets), so tests and
//! benches stamp first and then append through it. This file depends on `strom-batch`
//! only, so the unit tests, the integration tests and the benches include the same code.

use strom_batch::RecordBatchHeader;

/// Stamps the batches in `bytes`, in place, with base offsets from `first` on and
/// `epoch`; returns the offset after the last batch stamped. Stops at the first batch
/// whose header does not parse: the log refuses such input whole when it is appended,
/// which is what a test of bad input wants to see.
pub(crate) fn stamp_batches(bytes: &mut [u8], first: i64, epoch: i32) -> i64 {
    let mut pos = 0;
    let mut next = first;
    while pos < bytes.len() {
        let Ok(header) = RecordBatchHeader::parse(&bytes[pos..], pos) else {
            break;
        };
        let end = (pos + header.total_size()).min(bytes.len());
        RecordBatchHeader::stamp_base_offset(&mut bytes[pos..end], next);
        RecordBatchHeader::stamp_leader_epoch(&mut bytes[pos..end], epoch);
        next += header.offset_count();
        pos = end;
    }
    next
}
