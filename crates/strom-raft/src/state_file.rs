//! The per-group `raft-state` file: Raft's hard state (term, vote, commit), the group's
//! voters and its epochs (each term's empty entry and where its data starts, see
//! `offsets.rs`), which must survive a crash before a vote or an append is answered.
//!
//! Two slots of equal size of a [`SlotFile`], written alternately (a torn write leaves
//! the other one), each: magic "STRMRAFT", format version u16, sequence u64, term u64, vote u64, commit
//! u64, voter count u16, 8 voter slots u64, epoch count u32, the epochs (term u64,
//! index u64, offset i64), CRC-32 (IEEE) of everything before it. The newest valid slot
//! wins. A slot is 512 bytes until the epochs need more; then the file is replaced by
//! one with larger slots. Every write but a new group's first is fsynced: it happens
//! only when term, vote or epochs change (elections, a Raft conflict, retention), or
//! when a caller asks to record a newer commit index. Writes are rare, so the file is
//! opened for each one rather than held open: a node with 10,000 partitions would
//! otherwise spend 10,000 descriptors on these files.
//!
//! The format version is the partition directory's: version 1 was written by Strom
//! before offsets were Kafka's (ADR 0001, one Raft entry per offset); such a directory
//! is refused with [`RaftError::OldFormat`], never misread.

use std::path::Path;

use strom_log::slot_file::{self, Durability, SlotFile, SlotSize};

use crate::error::{RaftError, Result};
use crate::offsets::EpochStart;

pub const STATE_FILE: &str = "raft-state";
const MAGIC: &[u8; 8] = b"STRMRAFT";
/// The on-disk format of a partition directory (docs/adr/0005-kafka-offsets.md).
pub const FORMAT_VERSION: u16 = 2;
const MIN_SLOT: usize = 512;
const EPOCHS_AT: usize = 112;
const EPOCH_LEN: usize = 24;
/// Replication factors above this are refused when a topic is created.
pub const MAX_VOTERS: usize = 8;

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistedState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
    pub voters: Vec<u64>,
    pub epochs: Vec<EpochStart>,
}

/// A state file: its slots (path, sequence number of the newest slot, slot size).
#[derive(Debug)]
pub struct StateFile {
    file: SlotFile,
}

impl PersistedState {
    fn encoded_len(&self) -> usize {
        EPOCHS_AT + self.epochs.len() * EPOCH_LEN + 4
    }

    fn encode(&self, sequence: u64, b: &mut [u8]) {
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        b[10..18].copy_from_slice(&sequence.to_be_bytes());
        b[18..26].copy_from_slice(&self.term.to_be_bytes());
        b[26..34].copy_from_slice(&self.vote.to_be_bytes());
        b[34..42].copy_from_slice(&self.commit.to_be_bytes());
        b[42..44].copy_from_slice(&(self.voters.len() as u16).to_be_bytes());
        for (i, v) in self.voters.iter().take(MAX_VOTERS).enumerate() {
            b[44 + i * 8..52 + i * 8].copy_from_slice(&v.to_be_bytes());
        }
        b[108..112].copy_from_slice(&(self.epochs.len() as u32).to_be_bytes());
        for (i, e) in self.epochs.iter().enumerate() {
            let at = EPOCHS_AT + i * EPOCH_LEN;
            b[at..at + 8].copy_from_slice(&e.term.to_be_bytes());
            b[at + 8..at + 16].copy_from_slice(&e.index.to_be_bytes());
            b[at + 16..at + 24].copy_from_slice(&e.offset.to_be_bytes());
        }
        slot_file::seal(b, self.encoded_len() - 4);
    }

    fn decode(b: &[u8]) -> Option<(u64, PersistedState)> {
        if b.len() < EPOCHS_AT + 4 || &b[0..8] != MAGIC || b[8..10] != FORMAT_VERSION.to_be_bytes()
        {
            return None;
        }
        let n_epochs = u32::from_be_bytes(b[108..112].try_into().unwrap()) as usize;
        let end = EPOCHS_AT.checked_add(n_epochs.checked_mul(EPOCH_LEN)?)?;
        if end + 4 > b.len() {
            return None;
        }
        if !slot_file::is_sealed(b, end) {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        let n = (u16::from_be_bytes([b[42], b[43]]) as usize).min(MAX_VOTERS);
        Some((
            u64_at(10),
            PersistedState {
                term: u64_at(18),
                vote: u64_at(26),
                commit: u64_at(34),
                voters: (0..n).map(|i| u64_at(44 + i * 8)).collect(),
                epochs: (0..n_epochs)
                    .map(|i| {
                        let at = EPOCHS_AT + i * EPOCH_LEN;
                        EpochStart {
                            term: u64_at(at),
                            index: u64_at(at + 8),
                            offset: u64_at(at + 16) as i64,
                        }
                    })
                    .collect(),
            },
        ))
    }
}

/// Whether a slot was written by an older format (its magic is ours, its version not).
fn older_format(b: &[u8]) -> Option<u16> {
    if b.len() < 10 || &b[0..8] != MAGIC {
        return None;
    }
    let v = u16::from_be_bytes([b[8], b[9]]);
    (v < FORMAT_VERSION).then_some(v)
}

/// Refuses a group directory whose state file is of an older format (a node must not
/// serve any of its partitions from a data directory it cannot read whole).
pub fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join(STATE_FILE);
    let mut head = [0u8; 10];
    let n = match std::fs::File::open(&path) {
        Ok(f) => std::os::unix::fs::FileExt::read_at(&f, &mut head, 0)
            .map_err(|e| RaftError::io(&path, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(RaftError::io(&path, e)),
    };
    match older_format(&head[..n]) {
        Some(version) => Err(RaftError::OldFormat {
            dir: dir.to_path_buf(),
            version,
        }),
        None => Ok(()),
    }
}

impl StateFile {
    /// Reads the state file in `dir` (which need not exist yet); returns the newest
    /// valid state. A file of an older format is an error that says what to do.
    pub fn open(dir: &Path) -> Result<(StateFile, Option<PersistedState>)> {
        let path = dir.join(STATE_FILE);
        let bytes = slot_file::read(&path).map_err(|e| RaftError::io(&path, e))?;
        if let Some(version) = older_format(&bytes) {
            return Err(RaftError::OldFormat {
                dir: dir.to_path_buf(),
                version,
            });
        }
        let (file, best) = SlotFile::from_contents(
            path,
            SlotSize::Growing { min: MIN_SLOT },
            &bytes,
            PersistedState::decode,
        );
        Ok((StateFile { file }, best))
    }

    /// Writes `state` into the older slot and fsyncs.
    pub fn write(&mut self, state: &PersistedState) -> Result<()> {
        self.write_slot(state, true)
    }

    /// Writes a new group's first state without waiting for the disk. Losing it in a
    /// crash loses nothing: without a state file the group starts again as new, with
    /// the voters its creator names, and it has voted for no one. Every later write
    /// (term, vote) is fsynced, which makes this one durable too. Creating thousands of
    /// partitions pays one fsync per group fewer.
    pub fn write_initial(&mut self, state: &PersistedState) -> Result<()> {
        self.write_slot(state, false)
    }

    fn write_slot(&mut self, state: &PersistedState, sync: bool) -> Result<()> {
        if state.voters.len() > MAX_VOTERS {
            return Err(RaftError::TooManyVoters(state.voters.len()));
        }
        // A term or vote in a file a power loss could unlink would let the node vote
        // twice in one term: a synced write makes the file's directory entry durable
        // too. More epochs than a slot holds replace the file with one of larger slots.
        let durability = match sync {
            true => Durability::SyncedWithEntry,
            false => Durability::Written,
        };
        let path = self.file.path().to_path_buf();
        self.file
            .write(state.encoded_len(), durability, |sequence, slot| {
                state.encode(sequence, slot)
            })
            .map_err(|e| RaftError::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, none) = StateFile::open(dir.path()).unwrap();
        assert_eq!(none, None);
        let a = PersistedState {
            term: 3,
            vote: 2,
            commit: 10,
            voters: vec![1, 2, 3],
            epochs: vec![EpochStart {
                term: 1,
                index: 1,
                offset: 0,
            }],
        };
        let b = PersistedState {
            term: 4,
            ..a.clone()
        };
        f.write(&a).unwrap();
        f.write(&b).unwrap();
        drop(f);
        let (f, got) = StateFile::open(dir.path()).unwrap();
        assert_eq!(got, Some(b.clone()));
        // A torn write of the next slot leaves the previous state readable.
        let slot = f.file.slot_position(f.file.sequence() + 1);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(f.file.path())
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0xff; 20], slot).unwrap();
        drop(f);
        let (_, got) = StateFile::open(dir.path()).unwrap();
        assert_eq!(got, Some(b));
    }

    #[test]
    fn a_first_state_is_readable_and_no_file_is_held_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, none) = StateFile::open(dir.path()).unwrap();
        assert_eq!(none, None);
        assert!(
            !dir.path().join(STATE_FILE).exists(),
            "reading creates nothing"
        );
        let s = PersistedState {
            voters: vec![1],
            ..PersistedState::default()
        };
        f.write_initial(&s).unwrap();
        // Removing the directory's file while the handle lives must not matter: the
        // next write opens it again (a handle held open would write to the unlinked
        // inode and the state would be lost).
        std::fs::remove_file(dir.path().join(STATE_FILE)).unwrap();
        let t = PersistedState {
            term: 1,
            vote: 1,
            ..s
        };
        f.write(&t).unwrap();
        let (_, got) = StateFile::open(dir.path()).unwrap();
        assert_eq!(got, Some(t));
    }

    #[test]
    fn many_epochs_grow_the_slots_and_an_old_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = StateFile::open(dir.path()).unwrap();
        let mut s = PersistedState {
            term: 1,
            voters: vec![1],
            ..PersistedState::default()
        };
        for t in 0..100u64 {
            s.epochs.push(EpochStart {
                term: t,
                index: t * 10,
                offset: t as i64 * 7,
            });
            s.term = t;
            f.write(&s).unwrap();
        }
        let (_, got) = StateFile::open(dir.path()).unwrap();
        assert_eq!(got, Some(s));
        // A version 1 file: magic, version 1, the rest of a 128-byte slot.
        let mut old = vec![0u8; 256];
        old[0..8].copy_from_slice(MAGIC);
        old[8..10].copy_from_slice(&1u16.to_be_bytes());
        std::fs::write(dir.path().join(STATE_FILE), &old).unwrap();
        let err = StateFile::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, RaftError::OldFormat { version: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    /// The bytes of the format as the layout above gives them: a data directory
    /// written before must open, so they may never change.
    #[test]
    fn the_file_holds_exactly_the_documented_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = StateFile::open(dir.path()).unwrap();
        let s = PersistedState {
            term: 3,
            vote: 2,
            commit: 10,
            voters: vec![1, 2, 3],
            epochs: vec![
                EpochStart {
                    term: 1,
                    index: 1,
                    offset: 0,
                },
                EpochStart {
                    term: 3,
                    index: 7,
                    offset: 42,
                },
            ],
        };
        f.write(&s).unwrap();
        // Sequence 1 goes to the second 512-byte slot; the first is still a hole.
        let slot: String = [
            "5354524d52414654000200000000000000010000000000000003000000000000",
            "0002000000000000000a00030000000000000001000000000000000200000000",
            "0000000300000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000200000000000000010000000000000001",
            "000000000000000000000000000000030000000000000007000000000000002a",
            "4e197f64",
        ]
        .concat();
        let bytes = std::fs::read(dir.path().join(STATE_FILE)).unwrap();
        assert_eq!(bytes.len(), 1024);
        assert!(
            bytes[..512]
                .iter()
                .chain(&bytes[512 + 164..])
                .all(|&b| b == 0)
        );
        let hex: String = bytes[512..512 + 164]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, slot);
        assert_eq!(StateFile::open(dir.path()).unwrap().1, Some(s));
    }
}
