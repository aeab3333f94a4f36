//! The per-group `raft-anchors` file: known `(Raft index, Kafka offset)` pairs of data
//! entries, which bound the walks that number a partition log's batches (see
//! `offsets.rs`).
//!
//! Fixed 24-byte records, appended: index u64, offset i64, CRC-32 (IEEE) of the 16
//! bytes before it, 4 zero bytes. Most are hints, written without an fsync: a record
//! lost in a crash only makes a walk longer, a record whose data was lost points past
//! the log end and is dropped when the group opens. The anchors of segments' first
//! batches are fsynced (every segment start must stay known, since retention removes
//! whole segments). Anything that removes entries (a Raft conflict, a reset, a
//! recovery that cut the log) rewrites the file atomically before new entries follow,
//! so no stale record can outlive the entries it named.

use std::path::{Path, PathBuf};

use strom_log::disk;

use crate::error::{RaftError, Result};

pub const ANCHOR_FILE: &str = "raft-anchors";
const RECORD: usize = 24;

/// The anchors file of one group.
#[derive(Debug)]
pub struct AnchorFile {
    path: PathBuf,
    /// Where the next record goes.
    end: u64,
}

fn encode(index: u64, offset: i64) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..8].copy_from_slice(&index.to_be_bytes());
    b[8..16].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32fast::hash(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_be_bytes());
    b
}

fn decode(b: &[u8]) -> Option<(u64, i64)> {
    let crc = u32::from_be_bytes(b[16..20].try_into().unwrap());
    if crc != crc32fast::hash(&b[..16]) || b[..16].iter().all(|&x| x == 0) {
        return None;
    }
    Some((
        u64::from_be_bytes(b[0..8].try_into().unwrap()),
        i64::from_be_bytes(b[8..16].try_into().unwrap()),
    ))
}

impl AnchorFile {
    /// Reads the anchors in `dir` (the file need not exist): valid records, each above
    /// the one before it in both index and offset.
    pub fn load(dir: &Path) -> Result<(AnchorFile, Vec<(u64, i64)>)> {
        let path = dir.join(ANCHOR_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(RaftError::io(&path, e)),
        };
        let mut anchors: Vec<(u64, i64)> = Vec::new();
        for r in bytes.chunks_exact(RECORD).filter_map(decode) {
            if anchors.last().is_none_or(|&(i, o)| r.0 > i && r.1 > o) {
                anchors.push(r);
            }
        }
        let end = (bytes.len() as u64).div_ceil(RECORD as u64) * RECORD as u64;
        Ok((AnchorFile { path, end }, anchors))
    }

    /// Appends one anchor; `sync` fsyncs it (a segment's first batch).
    pub fn append(&mut self, index: u64, offset: i64, sync: bool) -> Result<()> {
        let io = |e| RaftError::io(&self.path, e);
        let file = disk::open_or_create(&self.path).map_err(io)?;
        disk::write_all_at(&file, &encode(index, offset), self.end, &self.path).map_err(io)?;
        self.end += RECORD as u64;
        if sync {
            disk::sync_data(&file, &self.path).map_err(io)?;
            if self.end == RECORD as u64 {
                disk::sync_parent(&self.path).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Replaces the file with exactly `anchors`, durably.
    pub fn rewrite(&mut self, anchors: &[(u64, i64)]) -> Result<()> {
        let mut bytes = Vec::with_capacity(anchors.len() * RECORD);
        for &(i, o) in anchors {
            bytes.extend_from_slice(&encode(i, o));
        }
        disk::replace_file(&self.path, &bytes).map_err(|e| RaftError::io(&self.path, e))?;
        self.end = bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_survive_reopening_and_damage_only_drops_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, got) = AnchorFile::load(dir.path()).unwrap();
        assert!(got.is_empty());
        f.append(2, 0, true).unwrap();
        f.append(9, 100, false).unwrap();
        f.append(20, 300, false).unwrap();
        let path = dir.path().join(ANCHOR_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[RECORD + 3] ^= 1; // the second record is damaged
        bytes.extend_from_slice(&[1, 2, 3]); // and a torn fourth
        std::fs::write(&path, &bytes).unwrap();
        let (mut f, got) = AnchorFile::load(dir.path()).unwrap();
        assert_eq!(got, vec![(2, 0), (20, 300)]);
        f.append(30, 400, true).unwrap();
        assert_eq!(
            AnchorFile::load(dir.path()).unwrap().1,
            vec![(2, 0), (20, 300), (30, 400)]
        );
        f.rewrite(&[(2, 0)]).unwrap();
        f.append(5, 50, false).unwrap();
        assert_eq!(
            AnchorFile::load(dir.path()).unwrap().1,
            vec![(2, 0), (5, 50)]
        );
    }
}
