//! The per-group `raft-state` file: Raft's hard state (term, vote, commit) and the
//! group's voters, which must survive a crash before a vote or an append is answered.
//!
//! Two 128-byte slots written alternately (a torn write leaves the other one), each:
//! magic "STRMRAFT", version u16, sequence u64, term u64, vote u64, commit u64, voter
//! count u16, up to 8 voters u64, CRC-32 (IEEE) of everything before it. The newest
//! valid slot wins. Every write but a new group's first is fsynced: it happens only when
//! term or vote change (elections), or when a caller asks to record a newer commit index.
//! Writes are rare, so the file is opened for each one rather than held open: a node
//! with 10,000 partitions would otherwise spend 10,000 descriptors on these files.

use std::path::{Path, PathBuf};

use strom_log::disk;

use crate::error::{RaftError, Result};

pub const STATE_FILE: &str = "raft-state";
const MAGIC: &[u8; 8] = b"STRMRAFT";
const VERSION: u16 = 1;
const SLOT: usize = 128;
/// Replication factors above this are refused when a topic is created.
pub const MAX_VOTERS: usize = 8;

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistedState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
    pub voters: Vec<u64>,
}

/// A state file: its path and the sequence number of its newest slot.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    sequence: u64,
    /// Whether the file's directory entry is known durable (it existed when opened, or
    /// its directory was fsynced after it was created): a term or vote in a file a power
    /// loss could unlink would let the node vote twice in one term.
    entry_durable: bool,
}

impl PersistedState {
    fn encode(&self, sequence: u64) -> [u8; SLOT] {
        let mut b = [0u8; SLOT];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_be_bytes());
        b[10..18].copy_from_slice(&sequence.to_be_bytes());
        b[18..26].copy_from_slice(&self.term.to_be_bytes());
        b[26..34].copy_from_slice(&self.vote.to_be_bytes());
        b[34..42].copy_from_slice(&self.commit.to_be_bytes());
        b[42..44].copy_from_slice(&(self.voters.len() as u16).to_be_bytes());
        for (i, v) in self.voters.iter().take(MAX_VOTERS).enumerate() {
            b[44 + i * 8..52 + i * 8].copy_from_slice(&v.to_be_bytes());
        }
        let end = 44 + MAX_VOTERS * 8;
        let crc = crc32fast::hash(&b[..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<(u64, PersistedState)> {
        let end = 44 + MAX_VOTERS * 8;
        if b.len() < SLOT || &b[0..8] != MAGIC || b[8..10] != VERSION.to_be_bytes() {
            return None;
        }
        let crc = u32::from_be_bytes(b[end..end + 4].try_into().unwrap());
        if crc != crc32fast::hash(&b[..end]) {
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
            },
        ))
    }
}

impl StateFile {
    /// Reads the state file in `dir` (which need not exist yet); returns the newest
    /// valid state.
    pub fn open(dir: &Path) -> Result<(StateFile, Option<PersistedState>)> {
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(RaftError::io(&path, e)),
        };
        let best = bytes
            .chunks(SLOT)
            .filter_map(PersistedState::decode)
            .max_by_key(|(seq, _)| *seq);
        let sequence = best.as_ref().map_or(0, |(s, _)| *s);
        let entry_durable = !bytes.is_empty();
        Ok((
            StateFile {
                path,
                sequence,
                entry_durable,
            },
            best.map(|(_, s)| s),
        ))
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
        self.sequence += 1;
        let slot = (self.sequence % 2) * SLOT as u64;
        let file = disk::open_or_create(&self.path).map_err(|e| RaftError::io(&self.path, e))?;
        disk::write_all_at(&file, &state.encode(self.sequence), slot, &self.path)
            .and_then(|_| {
                if !sync {
                    return Ok(());
                }
                disk::sync_data(&file, &self.path)?;
                if !self.entry_durable {
                    disk::sync_parent(&self.path)?;
                    self.entry_durable = true;
                }
                Ok(())
            })
            .map_err(|e| RaftError::io(&self.path, e))
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
        };
        let b = PersistedState {
            term: 4,
            ..a.clone()
        };
        f.write(&a).unwrap();
        f.write(&b).unwrap();
        drop(f);
        let (mut f, got) = StateFile::open(dir.path()).unwrap();
        assert_eq!(got, Some(b.clone()));
        // A torn write of the next slot leaves the previous state readable.
        f.sequence += 1;
        let slot = (f.sequence % 2) * SLOT as u64;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&f.path)
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
}
