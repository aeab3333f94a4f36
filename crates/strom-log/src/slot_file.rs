//! A small file of two slots written alternately, each slot CRC-checked, so that a
//! torn or lost write of one slot leaves the other one readable: the per-partition
//! `checkpoint` (`checkpoint.rs`) and Raft's per-group `raft-state` (strom-raft) are
//! both one.
//!
//! ```text
//! offset       size  content
//!      0       slot  slot 0: written by even sequence numbers
//!   slot       slot  slot 1: written by odd sequence numbers
//! ```
//! What a slot holds is its user's format: the primitive only needs a slot to carry its
//! sequence number, which the user's `decode` returns with the value. The slot with the
//! highest sequence number among those that decode wins; a write goes to the other one,
//! with the next sequence number. [`seal`] and [`is_sealed`] are the CRC both formats
//! use: CRC-32 (IEEE, `crc32fast`), big-endian, of the slot's bytes before it, stored
//! right after them.
//!
//! A slot is zero-filled before it is encoded, so every byte of it is defined. The slot
//! size is fixed ([`SlotSize::Fixed`]), or grows ([`SlotSize::Growing`]): a value that
//! does not fit makes the file be replaced, atomically, by one with slots of the next
//! power of two at least its size, and an existing file's slot size is half its length.
//!
//! The file is opened for each write rather than held open (a node with 10,000
//! partitions would otherwise hold 10,000 more descriptors), and every write, fsync and
//! create goes through [`crate::disk`], so injected faults and the durability journal
//! see them. A failed write or fsync is returned to the caller, which must not
//! acknowledge anything that depends on it.

use std::io;
use std::path::{Path, PathBuf};

use crate::disk;

/// How big a file's slots are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSize {
    /// Always this many bytes; a value that needs more is refused.
    Fixed(usize),
    /// At least this many bytes; half the file's length when that is more, and grown
    /// when a value needs more.
    Growing { min: usize },
}

/// What a write must have reached before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The page cache: the caller can lose the write in a crash and loses nothing by it
    /// (it records progress that will be recorded again, or a state whose loss is safe).
    Written,
    /// The file's data: fdatasync before returning.
    Synced,
    /// The file's data and, the first time, its directory entry: a value written into a
    /// file that a power loss could unlink is not durable either.
    SyncedWithEntry,
}

/// One two-slot file: its path, the sequence number of its newest slot and its slot
/// size. Holds no open file.
#[derive(Debug)]
pub struct SlotFile {
    path: PathBuf,
    size: SlotSize,
    /// The current slot size in bytes.
    slot: usize,
    /// The sequence number of the newest valid slot (0 when there is none).
    sequence: u64,
    /// Whether the file's directory entry is known durable: it existed when read, or
    /// its directory was fsynced after it was created, or it was replaced (which syncs
    /// the directory).
    entry_durable: bool,
}

/// Writes the CRC of `slot[..end]` into `slot[end..end + 4]`.
pub fn seal(slot: &mut [u8], end: usize) {
    let crc = crc32fast::hash(&slot[..end]);
    slot[end..end + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Whether `slot[end..end + 4]` holds the CRC of `slot[..end]` (false when the slot is
/// too short to hold both).
pub fn is_sealed(slot: &[u8], end: usize) -> bool {
    let Some(stored) = end.checked_add(4).and_then(|e| slot.get(end..e)) else {
        return false;
    };
    stored == crc32fast::hash(&slot[..end]).to_be_bytes()
}

/// The contents of the file at `path`, empty when it does not exist.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl SlotFile {
    /// Reads the file at `path` (which need not exist) and returns it with the value of
    /// its newest slot that `decode` accepts. `decode` gets one slot's bytes (a short
    /// last one when the file's length is not a whole number of slots) and returns the
    /// slot's sequence number and value, or `None` for a slot that is empty, torn or
    /// damaged.
    pub fn open<T>(
        path: PathBuf,
        size: SlotSize,
        decode: impl FnMut(&[u8]) -> Option<(u64, T)>,
    ) -> io::Result<(SlotFile, Option<T>)> {
        let contents = read(&path)?;
        Ok(SlotFile::from_contents(path, size, &contents, decode))
    }

    /// Like [`open`](Self::open), for contents the caller has read (with [`read`]) and
    /// looked at first, e.g. to refuse an older format before anything is decoded.
    pub fn from_contents<T>(
        path: PathBuf,
        size: SlotSize,
        contents: &[u8],
        decode: impl FnMut(&[u8]) -> Option<(u64, T)>,
    ) -> (SlotFile, Option<T>) {
        let slot = match size {
            SlotSize::Fixed(n) => n,
            SlotSize::Growing { min } => (contents.len() / 2).max(min),
        };
        let newest = contents
            .chunks(slot)
            .filter_map(decode)
            .max_by_key(|(seq, _)| *seq);
        let file = SlotFile {
            path,
            size,
            slot,
            sequence: newest.as_ref().map_or(0, |(s, _)| *s),
            entry_durable: !contents.is_empty(),
        };
        (file, newest.map(|(_, v)| v))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current slot size in bytes.
    pub fn slot_len(&self) -> usize {
        self.slot
    }

    /// The sequence number of the last slot written or read (0 for none).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The byte position of the slot that sequence number `sequence` is written to.
    pub fn slot_position(&self, sequence: u64) -> u64 {
        (sequence % 2) * self.slot as u64
    }

    /// Writes a value into the slot not holding the newest one, with the next sequence
    /// number. `len` is how many bytes of a slot the value needs; `encode` gets the
    /// sequence number and the zeroed slot (of the slot size) to fill in. The sequence
    /// number is used up even when the write fails: a slot half written by a failed
    /// write is never the one the next write takes for the older one.
    pub fn write(
        &mut self,
        len: usize,
        durability: Durability,
        encode: impl FnOnce(u64, &mut [u8]),
    ) -> io::Result<()> {
        if len > self.slot {
            let SlotSize::Growing { .. } = self.size else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{len} bytes do not fit a {}-byte slot", self.slot),
                ));
            };
            self.sequence += 1;
            // A new file with larger slots replaces the old one in one step (the other
            // slot starts empty); replacing syncs the file and its directory. The new
            // size is taken before the replacement runs: when only its directory fsync
            // fails, the larger file is in place already.
            self.slot = len.next_power_of_two();
            let mut bytes = vec![0u8; 2 * self.slot];
            let at = self.slot_position(self.sequence) as usize;
            encode(self.sequence, &mut bytes[at..at + self.slot]);
            disk::replace_file(&self.path, &bytes)?;
            self.entry_durable = true;
            return Ok(());
        }
        self.sequence += 1;
        let mut bytes = vec![0u8; self.slot];
        encode(self.sequence, &mut bytes);
        let at = self.slot_position(self.sequence);
        let file = disk::open_or_create(&self.path)?;
        disk::write_all_at(&file, &bytes, at, &self.path)?;
        if durability == Durability::Written {
            return Ok(());
        }
        disk::sync_data(&file, &self.path)?;
        if durability == Durability::SyncedWithEntry && !self.entry_durable {
            disk::sync_parent(&self.path)?;
            self.entry_durable = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Op;
    use crate::disk::faults::{self, Rule};

    const MAGIC: &[u8; 4] = b"TEST";

    /// A test format: magic, sequence u64, a value of `n` bytes, each `n as u8`, CRC.
    fn encode(value: u8, sequence: u64, slot: &mut [u8]) {
        let n = value as usize;
        slot[0..4].copy_from_slice(MAGIC);
        slot[4..12].copy_from_slice(&sequence.to_be_bytes());
        slot[12] = value;
        slot[13..13 + n].fill(value);
        seal(slot, 13 + n);
    }

    fn len(value: u8) -> usize {
        13 + value as usize + 4
    }

    fn decode(slot: &[u8]) -> Option<(u64, u8)> {
        if slot.len() < 13 || &slot[0..4] != MAGIC {
            return None;
        }
        let value = slot[12];
        if !is_sealed(slot, 13 + value as usize) {
            return None;
        }
        Some((u64::from_be_bytes(slot[4..12].try_into().unwrap()), value))
    }

    const FIXED: SlotSize = SlotSize::Fixed(32);

    fn open(dir: &Path, size: SlotSize) -> (SlotFile, Option<u8>) {
        SlotFile::open(dir.join("slots"), size, decode).unwrap()
    }

    fn put(f: &mut SlotFile, value: u8) -> io::Result<()> {
        f.write(len(value), Durability::Synced, |seq, slot| {
            encode(value, seq, slot)
        })
    }

    #[test]
    fn slots_alternate_and_the_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, none) = open(dir.path(), FIXED);
        assert_eq!(none, None);
        assert!(!f.path().exists(), "reading creates nothing");
        put(&mut f, 1).unwrap();
        put(&mut f, 2).unwrap();
        put(&mut f, 3).unwrap();
        let bytes = std::fs::read(f.path()).unwrap();
        assert_eq!(bytes.len(), 64);
        // Sequence 3 (odd) went to slot 1, sequence 2 to slot 0.
        assert_eq!(decode(&bytes[32..]), Some((3, 3)));
        assert_eq!(decode(&bytes[..32]), Some((2, 2)));
        let (f, got) = open(dir.path(), FIXED);
        assert_eq!((got, f.sequence()), (Some(3), 3));
    }

    #[test]
    fn a_torn_write_leaves_the_other_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = open(dir.path(), FIXED);
        put(&mut f, 4).unwrap();
        put(&mut f, 5).unwrap();
        let path = f.path().to_path_buf();
        let good = std::fs::read(&path).unwrap();
        // The next write (sequence 3, slot 1) torn after every byte count short of its
        // CRC's end: the new bytes start the slot, the old ones follow.
        let mut next = [0u8; 32];
        encode(6, 3, &mut next);
        for torn in 0..len(6) {
            let mut bytes = good.clone();
            bytes[32..32 + torn].copy_from_slice(&next[..torn]);
            std::fs::write(&path, &bytes).unwrap();
            let (f, got) = open(dir.path(), FIXED);
            assert_eq!((got, f.sequence()), (Some(5), 2), "torn after {torn} bytes");
            // Or the file ends inside the slot being written.
            std::fs::write(&path, &bytes[..32 + torn]).unwrap();
            let (_, got) = open(dir.path(), FIXED);
            assert_eq!(got, Some(5), "file cut after {torn} bytes of slot 1");
        }
    }

    #[test]
    fn any_flipped_bit_of_a_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = open(dir.path(), FIXED);
        put(&mut f, 7).unwrap(); // sequence 1, slot 1
        put(&mut f, 8).unwrap(); // sequence 2, slot 0
        let path = f.path().to_path_buf();
        let good = std::fs::read(&path).unwrap();
        for bit in 0..len(8) * 8 {
            let mut bytes = good.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, &bytes).unwrap();
            let (_, got) = open(dir.path(), FIXED);
            assert_eq!(got, Some(7), "bit {bit} of the newer slot flipped");
        }
        for bit in 0..len(7) * 8 {
            let mut bytes = good.clone();
            bytes[32 + bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, &bytes).unwrap();
            let (_, got) = open(dir.path(), FIXED);
            assert_eq!(got, Some(8), "bit {bit} of the older slot flipped");
        }
        // Both damaged: nothing to trust, and the file starts again from sequence 1.
        let mut bytes = good.clone();
        bytes[20] ^= 1;
        bytes[52] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (mut f, got) = open(dir.path(), FIXED);
        assert_eq!((got, f.sequence()), (None, 0));
        put(&mut f, 9).unwrap();
        assert_eq!(open(dir.path(), FIXED).1, Some(9));
    }

    #[test]
    fn a_fixed_slot_refuses_a_value_too_large_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = open(dir.path(), FIXED);
        put(&mut f, 1).unwrap();
        let err = put(&mut f, 40).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(f.sequence(), 1);
        assert_eq!(open(dir.path(), FIXED).1, Some(1));
    }

    #[test]
    fn growing_slots_replace_the_file_and_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let size = SlotSize::Growing { min: 32 };
        let (mut f, _) = open(dir.path(), size);
        put(&mut f, 3).unwrap();
        assert_eq!(f.slot_len(), 32);
        put(&mut f, 100).unwrap();
        assert_eq!(f.slot_len(), 128);
        assert_eq!(std::fs::metadata(f.path()).unwrap().len(), 256);
        put(&mut f, 2).unwrap();
        let (f, got) = open(dir.path(), size);
        assert_eq!((got, f.slot_len(), f.sequence()), (Some(2), 128, 3));
        // The replacement held only the value that grew it: damage to the newest slot
        // falls back to it, not to anything from before the growth.
        let mut bytes = std::fs::read(f.path()).unwrap();
        let at = f.slot_position(3) as usize;
        bytes[at + 14] ^= 1;
        std::fs::write(f.path(), &bytes).unwrap();
        assert_eq!(open(dir.path(), size).1, Some(100));
    }

    #[test]
    fn a_failed_write_or_fsync_is_returned_and_the_entry_sync_retried() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().to_string_lossy().into_owned();
        let (mut f, _) = open(dir.path(), FIXED);
        let entry = |f: &mut SlotFile, value: u8| {
            f.write(len(value), Durability::SyncedWithEntry, |seq, slot| {
                encode(value, seq, slot)
            })
        };
        faults::inject(Rule::new(Op::Sync, key.clone(), 5).times(1));
        assert!(put(&mut f, 1).is_err(), "a failed fsync is an error");
        faults::inject(Rule::new(Op::Write, key.clone(), 28).times(1));
        assert!(put(&mut f, 2).is_err(), "a failed write is an error");
        // A new file's directory entry is synced by the first write that asks for it,
        // and again by the next one when that sync failed.
        faults::inject(Rule::new(Op::SyncDir, key.clone(), 5).times(1));
        assert!(entry(&mut f, 3).is_err());
        faults::inject(Rule::new(Op::SyncDir, key.clone(), 5).times(1));
        assert!(entry(&mut f, 4).is_err(), "the entry sync is retried");
        entry(&mut f, 5).unwrap();
        faults::inject(Rule::new(Op::SyncDir, key.clone(), 5).times(1));
        entry(&mut f, 6).unwrap();
        faults::clear(&key);
        assert_eq!(open(dir.path(), FIXED).1, Some(6));
    }
}
