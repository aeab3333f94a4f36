//! What a read returns: a view of whole batches inside a segment file, not a copy.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{IoContext, Result};

/// `len` bytes at `position` of a segment file, holding whole batches from
/// `first_offset` to `last_offset`. Holding the slice keeps the file open, so it stays
/// readable even if retention deletes the segment meanwhile. Hand it to `sendfile` via
/// [`raw_fd`](Self::raw_fd), or copy it out with [`read_to_vec`](Self::read_to_vec).
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub position: u64,
    pub len: u64,
    /// Base offset of the first batch (may be below the offset asked for: the client
    /// skips the records before it).
    pub first_offset: i64,
    /// Last offset of the last batch.
    pub last_offset: i64,
}

impl FileSlice {
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Copies the bytes into `buf`, which must be `len` long.
    pub fn read_into(&self, buf: &mut [u8]) -> Result<()> {
        self.file.read_exact_at(buf, self.position).at(&self.path)
    }

    pub fn read_to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.len as usize];
        self.read_into(&mut v)?;
        Ok(v)
    }
}

/// The result of [`PartitionLog::read`](crate::PartitionLog::read).
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// `None` when there is nothing to return at that offset (yet).
    pub slice: Option<FileSlice>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}
