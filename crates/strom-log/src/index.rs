//! Sparse, memory-mapped index files: the offset index (`.index`) and the time index
//! (`.timeindex`) that sit beside every segment.
//!
//! Both are arrays of fixed-width big-endian entries, sorted by key, with no header: a
//! file's length says how many entries it holds once it is trimmed (at roll or clean
//! shutdown). While a segment is active its index files are preallocated to
//! `max_index_bytes` (sparse, so the zeros cost no disk) and the number of valid entries
//! is kept in memory; after a crash they are rebuilt from the segment. Index files carry
//! no checksum: every entry a lookup relies on is first checked against the batch header
//! it points at, and an index found damaged is rebuilt from the segment.
//!
//! ```text
//! .index      entry = relative_offset: u32 | position: u32            (8 bytes)
//! .timeindex  entry = max_timestamp:   i64 | relative_offset: u32     (12 bytes)
//! ```
//! An offset-index entry says "the batch whose base offset is `base + relative_offset`
//! starts at byte `position` of the segment". A time-index entry says "every batch up to
//! and including the one starting at `base + relative_offset` has timestamps <=
//! `max_timestamp`", and timestamps grow strictly from entry to entry.

use std::fs::OpenOptions;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut};

use crate::error::{IoContext, Result};

/// One fixed-width index entry.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn decode(bytes: &[u8]) -> Self;
    fn encode(&self, bytes: &mut [u8]);
    /// The sort key the file is searched by.
    fn key(&self) -> i64;
}

/// `.index` entry: where a batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(b[0..4].try_into().unwrap()),
            position: u32::from_be_bytes(b[4..8].try_into().unwrap()),
        }
    }
    fn encode(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn key(&self) -> i64 {
        self.relative_offset as i64
    }
}

/// `.timeindex` entry: the running maximum timestamp up to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub max_timestamp: i64,
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            max_timestamp: i64::from_be_bytes(b[0..8].try_into().unwrap()),
            relative_offset: u32::from_be_bytes(b[8..12].try_into().unwrap()),
        }
    }
    fn encode(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn key(&self) -> i64 {
        self.max_timestamp
    }
}

/// A memory-mapped index file of `E` entries. The mapping keeps the file alive, so no
/// descriptor is held: with thousands of partitions, a log with open files costs one
/// descriptor (its segment) instead of three.
#[derive(Debug)]
pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    mmap: MmapMut,
    /// Valid entries; the mapping may be longer (preallocated) than `len * E::SIZE`.
    len: usize,
    _entry: PhantomData<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (creating if absent) an index file. `entries` is how many entries are valid;
    /// `None` takes the file's length as exact (a trimmed file). `capacity_bytes`, when
    /// given, preallocates the file so appends can proceed without remapping.
    #[allow(unsafe_code)] // the mmap below: see its SAFETY comment
    pub(crate) fn open(
        path: &Path,
        entries: Option<usize>,
        capacity_bytes: Option<u64>,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let file_len = file.metadata().at(path)?.len();
        let len = entries.unwrap_or((file_len / E::SIZE as u64) as usize);
        let wanted = match capacity_bytes {
            Some(cap) => {
                let cap = cap - cap % E::SIZE as u64;
                cap.max((len * E::SIZE) as u64)
            }
            None => (len * E::SIZE) as u64,
        };
        if wanted != file_len {
            file.set_len(wanted).at(path)?;
        }
        // SAFETY: index files are private to this process (one log owner per directory)
        // and never shrunk while mapped except through `trim`, which remaps.
        let mmap = unsafe { MmapMut::map_mut(&file) }.at(path)?;
        // Entries are appended one page at a time and looked up by binary search, so
        // readahead only costs: a first touch of a preallocated (sparse) file would
        // otherwise read and zero a large folio of holes, which made creating a
        // partition take milliseconds and its index pages cost memory.
        if !mmap.is_empty() {
            mmap.advise(Advice::Random).at(path)?;
        }
        Ok(IndexFile {
            path: path.to_path_buf(),
            mmap,
            len,
            _entry: PhantomData,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        (self.len + 1) * E::SIZE > self.mmap.len()
    }

    pub(crate) fn get(&self, i: usize) -> E {
        E::decode(&self.mmap[i * E::SIZE..(i + 1) * E::SIZE])
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.len.checked_sub(1).map(|i| self.get(i))
    }

    /// Appends an entry; the caller keeps keys increasing and checks `is_full` first.
    pub(crate) fn append(&mut self, entry: E) {
        let at = self.len * E::SIZE;
        entry.encode(&mut self.mmap[at..at + E::SIZE]);
        self.len += 1;
    }

    /// The index of the first entry for which `pred` is false, given that `pred` is true
    /// for a prefix of the entries.
    pub(crate) fn partition_point(&self, pred: impl Fn(&E) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(&self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The last entry whose key is <= `key`.
    pub(crate) fn floor(&self, key: i64) -> Option<E> {
        let i = self.partition_point(|e| e.key() <= key);
        i.checked_sub(1).map(|i| self.get(i))
    }

    /// Forgets every entry from `len` on.
    #[cfg(test)]
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    /// Shrinks the file to exactly its valid entries (done when a segment stops being
    /// active, so the file length alone describes it) and syncs it.
    pub(crate) fn trim(self) -> Result<()> {
        self.mmap.flush().at(&self.path)?;
        let exact = (self.len * E::SIZE) as u64;
        let IndexFile { path, mmap, .. } = self;
        drop(mmap);
        let file = OpenOptions::new().write(true).open(&path).at(&path)?;
        file.set_len(exact).at(&path)?;
        file.sync_all().at(&path)
    }

    /// Checks that keys strictly increase and every entry satisfies `valid`; used to
    /// decide whether an index left by an unclean shutdown can be trusted.
    pub(crate) fn is_sane(&self, valid: impl Fn(&E) -> bool) -> bool {
        let mut prev: Option<i64> = None;
        for i in 0..self.len {
            let e = self.get(i);
            if prev.is_some_and(|p| e.key() <= p) || !valid(&e) {
                return false;
            }
            prev = Some(e.key());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_floor_and_reopen_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = IndexFile::<OffsetEntry>::open(&path, Some(0), Some(800)).unwrap();
        for i in 0..10u32 {
            idx.append(OffsetEntry {
                relative_offset: i * 10,
                position: i * 100,
            });
        }
        assert_eq!(idx.floor(-1), None);
        assert_eq!(idx.floor(0).unwrap().position, 0);
        assert_eq!(idx.floor(55).unwrap().relative_offset, 50);
        assert_eq!(idx.floor(1000).unwrap().relative_offset, 90);
        assert!(idx.is_sane(|_| true));
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
        let idx = IndexFile::<OffsetEntry>::open(&path, None, None).unwrap();
        assert_eq!(idx.len(), 10);
        assert_eq!(idx.last().unwrap().position, 900);
    }

    #[test]
    fn fills_up_and_detects_insane_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = IndexFile::<TimeEntry>::open(&path, Some(0), Some(30)).unwrap();
        idx.append(TimeEntry {
            max_timestamp: 5,
            relative_offset: 0,
        });
        idx.append(TimeEntry {
            max_timestamp: 3,
            relative_offset: 1,
        });
        assert!(idx.is_full());
        assert!(!idx.is_sane(|_| true));
        idx.truncate(1);
        assert!(idx.is_sane(|_| true));
        assert!(!idx.is_sane(|e| e.max_timestamp > 10));
    }
}
