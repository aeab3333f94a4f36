//! The per-partition `checkpoint` file: what a restart may trust without rescanning.
//!
//! Two 64-byte slots of a [`SlotFile`], written alternately so a torn write of one
//! leaves the other readable; the slot with the higher sequence number and a valid CRC
//! wins.
//!
//! ```text
//! offset size field
//!      0    8 magic "STRMCKPT"
//!      8    2 version (1)
//!     10    1 clean (1 = written by a clean shutdown)
//!     11    1 reserved
//!     12    8 sequence
//!     20    8 log_start_offset
//!     28    8 durable_offset         every offset below it was fsynced
//!     36    8 durable_segment_base   segment holding the durable end
//!     44    8 durable_segment_bytes  bytes of that segment that were fsynced
//!     52    4 start_epoch            leader epoch of the batch just below the first segment
//!     56    4 reserved
//!     60    4 crc32 (crc32fast, IEEE) of bytes 0..60
//! ```
//! Durability-progress checkpoints are written without fsync: they are written only
//! after the data they vouch for was fsynced, so losing one only means a longer
//! recovery scan. Clean-shutdown and log-start changes are fsynced.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::slot_file::{Durability, SlotFile, SlotSize};

pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";
const MAGIC: &[u8; 8] = b"STRMCKPT";
const VERSION: u16 = 1;
const SLOT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    pub clean: bool,
    pub log_start_offset: i64,
    pub durable_offset: i64,
    pub durable_segment_base: i64,
    pub durable_segment_bytes: u64,
    /// Leader epoch (Raft term) of the last batch before the first segment: what a
    /// Raft log needs to know about the entry just before its first one. 0 when none.
    pub start_epoch: i32,
}

#[derive(Debug)]
pub(crate) struct CheckpointFile {
    file: SlotFile,
}

impl Checkpoint {
    fn encode(&self, sequence: u64, b: &mut [u8]) {
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_be_bytes());
        b[10] = self.clean as u8;
        b[12..20].copy_from_slice(&sequence.to_be_bytes());
        b[20..28].copy_from_slice(&self.log_start_offset.to_be_bytes());
        b[28..36].copy_from_slice(&self.durable_offset.to_be_bytes());
        b[36..44].copy_from_slice(&self.durable_segment_base.to_be_bytes());
        b[44..52].copy_from_slice(&self.durable_segment_bytes.to_be_bytes());
        b[52..56].copy_from_slice(&self.start_epoch.to_be_bytes());
        crate::slot_file::seal(b, 60);
    }

    fn decode(b: &[u8]) -> Option<(u64, Checkpoint)> {
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        if b.len() < SLOT || &b[0..8] != MAGIC || b[8..10] != VERSION.to_be_bytes() {
            return None;
        }
        if !crate::slot_file::is_sealed(b, 60) {
            return None;
        }
        Some((
            u64::from_be_bytes(b[12..20].try_into().unwrap()),
            Checkpoint {
                clean: b[10] == 1,
                log_start_offset: i64_at(20),
                durable_offset: i64_at(28),
                durable_segment_base: i64_at(36),
                durable_segment_bytes: i64_at(44) as u64,
                start_epoch: i32::from_be_bytes(b[52..56].try_into().unwrap()),
            },
        ))
    }
}

impl CheckpointFile {
    /// Reads the newest valid checkpoint of a log directory, if any.
    pub(crate) fn load(dir: &Path) -> Result<(CheckpointFile, Option<Checkpoint>)> {
        let path = dir.join(CHECKPOINT_FILE);
        let (file, best) =
            SlotFile::open(path.clone(), SlotSize::Fixed(SLOT), Checkpoint::decode).at(&path)?;
        Ok((CheckpointFile { file }, best))
    }

    /// Writes `cp` into the older slot; fsyncs when `sync` is set. (The log's directory
    /// entry for the file is synced with the log's first flush, as for its segments.)
    pub(crate) fn write(&mut self, cp: &Checkpoint, sync: bool) -> Result<()> {
        let durability = match sync {
            true => Durability::Synced,
            false => Durability::Written,
        };
        let path = self.file.path().to_path_buf();
        self.file
            .write(SLOT, durability, |sequence, slot| cp.encode(sequence, slot))
            .at(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, none) = CheckpointFile::load(dir.path()).unwrap();
        assert!(none.is_none());
        let a = Checkpoint {
            durable_offset: 5,
            ..Default::default()
        };
        let b = Checkpoint {
            durable_offset: 9,
            clean: true,
            ..Default::default()
        };
        f.write(&a, false).unwrap();
        f.write(&b, true).unwrap();
        assert_eq!(CheckpointFile::load(dir.path()).unwrap().1, Some(b));
        // Garble the newer slot: the older one is still there.
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(CheckpointFile::load(dir.path()).unwrap().1, Some(a));
    }

    /// The bytes of the format, slot by slot, as the layout above gives them: a data
    /// directory written before must open, so they may never change.
    #[test]
    fn the_file_holds_exactly_the_documented_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = CheckpointFile::load(dir.path()).unwrap();
        f.write(&Checkpoint::default(), false).unwrap();
        let cp = Checkpoint {
            clean: true,
            log_start_offset: 5,
            durable_offset: 300,
            durable_segment_base: 256,
            durable_segment_bytes: 4096,
            start_epoch: 7,
        };
        f.write(&cp, true).unwrap();
        // Slot 0: sequence 2, `cp`; slot 1: sequence 1, all zeros but magic and version.
        let expected: String = [
            "5354524d434b5054000101000000000000000002000000000000000500000000",
            "0000012c000000000000010000000000000010000000000700000000668bf970",
            "5354524d434b5054000100000000000000000001000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000016925e02",
        ]
        .concat();
        let bytes = std::fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(CheckpointFile::load(dir.path()).unwrap().1, Some(cp));
    }
}
