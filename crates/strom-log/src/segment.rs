//! One segment of a partition log: a `.log` file of record batches plus its offset and
//! time indexes, named after the base offset of its first batch.
//!
//! ```text
//! 00000000000000000000.log        batches, back to back, exactly as on the wire
//! 00000000000000000000.index      sparse offset -> position (see index.rs)
//! 00000000000000000000.timeindex  sparse timestamp -> offset
//! ```
//! A segment only ever grows at its end while it is the active (last) segment; it is
//! truncated only by `truncate_to` and recovery.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_batch::{BATCH_HEADER_LEN, BatchError, LOG_OVERHEAD, RecordBatchHeader};

use crate::error::{IoContext, LogError, Result};
use crate::index::{IndexFile, OffsetEntry, TimeEntry};

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// Bytes read at a time while scanning a segment during recovery.
const SCAN_CHUNK: usize = 1 << 20;

/// The path of a segment file: `{base_offset:020}.{suffix}`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// The open files of a segment. Dropped by `release` so that thousands of idle
/// partitions do not hold file descriptors and mappings.
#[derive(Debug)]
struct Handles {
    file: Arc<File>,
    index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
}

/// What a recovery scan found.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// Bytes of valid batches kept.
    pub valid_bytes: u64,
    /// Bytes cut off the end as a torn write.
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    /// Bytes of batches in the file.
    pub size: u64,
    /// The offset after the last batch (== `base_offset` when empty).
    pub next_offset: i64,
    /// Largest batch max-timestamp in the segment, -1 when it has none.
    pub max_timestamp: i64,
    /// When the segment started to fill (wall-clock ms), for rolling by age.
    pub rolling_base_ms: Option<i64>,
    /// Whether this is the active segment (preallocated indexes, appends allowed).
    active: bool,
    /// Log bytes appended since the last offset-index entry.
    bytes_since_index_entry: u64,
    /// Valid entries of each index while handles are released.
    index_len: usize,
    time_index_len: usize,
    /// Preallocated index size while active.
    max_index_bytes: u32,
    /// Log bytes between offset-index entries, for rebuilding an index found damaged.
    index_interval: u32,
    handles: Option<Handles>,
}

impl Segment {
    /// Creates a new, empty, active segment.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        index_interval: u32,
    ) -> Result<Segment> {
        let mut seg = Segment {
            base_offset,
            dir: dir.to_path_buf(),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            rolling_base_ms: None,
            active: true,
            bytes_since_index_entry: 0,
            index_len: 0,
            time_index_len: 0,
            max_index_bytes,
            index_interval,
            handles: None,
        };
        // Leftover index files of an earlier segment with this base offset (after a
        // truncation) describe other data: start from empty ones.
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let p = seg.path(suffix);
            if p.exists() {
                std::fs::remove_file(&p).at(&p)?;
            }
        }
        let log = seg.path(LOG_SUFFIX);
        // Its directory entry becomes durable with the log's next flush, which syncs the
        // directory after a segment was created (see `PartitionLog::begin_flush`).
        crate::disk::create_empty(&log).at(&log)?;
        seg.open_handles()?;
        Ok(seg)
    }

    /// Opens an existing segment whose files were left trimmed (sealed, or active at a
    /// clean shutdown). `next_offset` is found by walking from the last index entry; the
    /// last entries of both indexes are checked against the log first (index files carry
    /// no checksum) and the indexes rebuilt if they do not match. When the walk meets
    /// damage, the error names the first damaged batch of the segment (found by a full
    /// CRC scan), not the place where the walk tripped over it: a damaged length field
    /// sends the walk past the damage.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        index_interval: u32,
    ) -> Result<Segment> {
        let mut seg = Self::open_untrusted(dir, base_offset, max_index_bytes, index_interval)?;
        match seg.load_trusted() {
            Ok(()) => Ok(seg),
            Err(e @ LogError::Corrupt { .. }) => Err(seg.verify().err().unwrap_or(e)),
            Err(e) => Err(e),
        }
    }

    /// The in-memory summary of a trusted segment, from its indexes and the batches
    /// after the last offset-index entry.
    fn load_trusted(&mut self) -> Result<()> {
        let time_last = self.handles_mut()?.time_index.last();
        if let Some(t) = time_last
            && self.time_entry_position(t)?.is_none()
        {
            self.repair_indexes("its last time-index entry does not match the log")?;
        }
        let last_entry = self.checked_entry(|index| index.last())?;
        let time_last = self.handles_mut()?.time_index.last();
        let base_offset = self.base_offset;
        let (mut pos, mut next) = match last_entry {
            Some(e) => (e.position as u64, base_offset + e.relative_offset as i64),
            None => (0, base_offset),
        };
        let mut since_entry = 0;
        let mut max_ts = time_last.map_or(-1, |t| t.max_timestamp);
        while pos < self.size {
            let header = self.header_at(pos)?;
            if header.base_offset != next {
                return Err(self.corrupt(
                    pos,
                    format!(
                        "base offset {} where {next} was expected",
                        header.base_offset
                    ),
                ));
            }
            next = header.last_offset() + 1;
            max_ts = max_ts.max(header.max_timestamp);
            since_entry += header.total_size() as u64;
            pos += header.total_size() as u64;
        }
        if pos != self.size {
            return Err(self.corrupt(pos, "last batch runs past the end of the file"));
        }
        self.next_offset = next;
        self.max_timestamp = max_ts;
        self.bytes_since_index_entry = since_entry;
        if self.size > 0 {
            let first = self.header_at(0)?;
            self.rolling_base_ms = Some(first.max_timestamp);
        }
        Ok(())
    }

    /// Opens a segment without trusting anything but its `.log` file; the caller must
    /// `recover` it before use.
    pub(crate) fn open_untrusted(
        dir: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        index_interval: u32,
    ) -> Result<Segment> {
        let log = segment_path(dir, base_offset, LOG_SUFFIX);
        let size = std::fs::metadata(&log).at(&log)?.len();
        let mut seg = Segment {
            base_offset,
            dir: dir.to_path_buf(),
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            rolling_base_ms: None,
            active: false,
            bytes_since_index_entry: 0,
            index_len: 0,
            time_index_len: 0,
            max_index_bytes,
            index_interval,
            handles: None,
        };
        seg.open_handles_exact()?;
        Ok(seg)
    }

    pub(crate) fn path(&self, suffix: &str) -> PathBuf {
        segment_path(&self.dir, self.base_offset, suffix)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// When the newest record of the segment was written, for retention by age: its
    /// largest batch timestamp, or — when producers sent no usable timestamps (-1, or
    /// librdkafka's 0 for "none") — the log file's modification time, as Kafka falls
    /// back to it. `None` if neither is known.
    pub(crate) fn newest_time_ms(&self) -> Option<i64> {
        if self.max_timestamp > 0 {
            return Some(self.max_timestamp);
        }
        let modified = std::fs::metadata(self.path(LOG_SUFFIX))
            .and_then(|m| m.modified())
            .ok()?;
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The log file, opened on demand.
    pub(crate) fn file(&mut self) -> Result<Arc<File>> {
        Ok(self.handles_mut()?.file.clone())
    }

    /// Closes the segment's files; they reopen on the next use.
    pub(crate) fn release(&mut self) {
        if let Some(h) = self.handles.take() {
            self.index_len = h.index.len();
            self.time_index_len = h.time_index.len();
        }
    }

    pub(crate) fn has_handles(&self) -> bool {
        self.handles.is_some()
    }

    fn open_handles(&mut self) -> Result<()> {
        let log = self.path(LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .at(&log)?;
        let capacity = self.active.then_some(self.max_index_bytes as u64);
        let index = IndexFile::open(&self.path(INDEX_SUFFIX), Some(self.index_len), capacity)?;
        let time_index = IndexFile::open(
            &self.path(TIME_INDEX_SUFFIX),
            Some(self.time_index_len),
            capacity,
        )?;
        self.handles = Some(Handles {
            file: Arc::new(file),
            index,
            time_index,
        });
        Ok(())
    }

    /// Opens the files taking the index files' lengths as exact.
    fn open_handles_exact(&mut self) -> Result<()> {
        let log = self.path(LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .at(&log)?;
        let index = IndexFile::open(&self.path(INDEX_SUFFIX), None, None)?;
        let time_index = IndexFile::open(&self.path(TIME_INDEX_SUFFIX), None, None)?;
        self.index_len = index.len();
        self.time_index_len = time_index.len();
        self.handles = Some(Handles {
            file: Arc::new(file),
            index,
            time_index,
        });
        Ok(())
    }

    fn handles_mut(&mut self) -> Result<&mut Handles> {
        if self.handles.is_none() {
            self.open_handles()?;
        }
        Ok(self.handles.as_mut().unwrap())
    }

    /// Empties both indexes and gives them room to be rebuilt; the segment counts as
    /// active until it is sealed again.
    fn reset_indexes(&mut self) -> Result<()> {
        self.release();
        self.index_len = 0;
        self.time_index_len = 0;
        self.active = true;
        self.open_handles()
    }

    /// The last offset of the batch that ends exactly at byte `end` (a batch boundary).
    pub(crate) fn last_offset_ending_at(&mut self, end: u64) -> Result<i64> {
        let mut pos = self
            .checked_entry(|index| {
                let i = index.partition_point(|e| (e.position as u64) < end);
                i.checked_sub(1).map(|i| index.get(i))
            })?
            .map_or(0, |e| e.position as u64);
        loop {
            let header = self.header_at(pos)?;
            let next = pos + header.total_size() as u64;
            if next >= end {
                return Ok(header.last_offset());
            }
            pos = next;
        }
    }

    /// Makes this (trimmed) segment the active one: its indexes get room to grow.
    pub(crate) fn activate(&mut self) -> Result<()> {
        self.release();
        self.active = true;
        self.open_handles()
    }

    fn corrupt(&self, position: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: self.path(LOG_SUFFIX),
            position,
            reason: reason.into(),
        }
    }

    fn batch_error(&self, position: u64, e: BatchError) -> LogError {
        self.corrupt(position, e.to_string())
    }

    /// Reads and parses the batch header at `pos` (no CRC check).
    pub(crate) fn header_at(&mut self, pos: u64) -> Result<RecordBatchHeader> {
        let size = self.size;
        let file = self.file()?;
        let mut buf = [0u8; BATCH_HEADER_LEN];
        let want = BATCH_HEADER_LEN.min((size - pos) as usize);
        // The path is formatted only on error: reads call this several times per fetch.
        file.read_exact_at(&mut buf[..want], pos)
            .map_err(|e| LogError::io(self.path(LOG_SUFFIX), e))?;
        let header =
            RecordBatchHeader::parse(&buf[..want], 0).map_err(|e| self.batch_error(pos, e))?;
        if pos + header.total_size() as u64 > size {
            return Err(self.corrupt(pos, "batch runs past the end of the segment"));
        }
        Ok(header)
    }

    /// Whether an offset-index entry points at the start of the batch it names. Index
    /// files carry no checksum, so an entry is checked against the log before a lookup
    /// relies on it: a damaged one must not send a read into the middle of a batch.
    /// Returns the header of that batch when the entry holds.
    fn entry_header(&mut self, e: OffsetEntry) -> Option<RecordBatchHeader> {
        let pos = e.position as u64;
        let expected = self.base_offset + e.relative_offset as i64;
        if pos >= self.size {
            return None;
        }
        self.header_at(pos)
            .ok()
            .filter(|h| h.base_offset == expected)
    }

    /// The offset-index entry that `pick` chooses, checked against the log. If it does
    /// not hold, both indexes are rebuilt from the log and `pick` chooses again.
    fn checked_entry(
        &mut self,
        pick: impl Fn(&IndexFile<OffsetEntry>) -> Option<OffsetEntry>,
    ) -> Result<Option<OffsetEntry>> {
        Ok(self.checked_entry_with_header(pick)?.map(|(e, _)| e))
    }

    /// Like [`checked_entry`](Self::checked_entry), with the header of the batch at the
    /// entry when the check read it (not after a repair): callers walking from the entry
    /// start with it instead of reading it again, one syscall less per lookup.
    fn checked_entry_with_header(
        &mut self,
        pick: impl Fn(&IndexFile<OffsetEntry>) -> Option<OffsetEntry>,
    ) -> Result<Option<(OffsetEntry, Option<RecordBatchHeader>)>> {
        let Some(e) = pick(&self.handles_mut()?.index) else {
            return Ok(None);
        };
        if let Some(h) = self.entry_header(e) {
            return Ok(Some((e, Some(h))));
        }
        self.repair_indexes("an offset-index entry does not match the log")?;
        Ok(pick(&self.handles_mut()?.index).map(|e| (e, None)))
    }

    /// Where the batch named by a time-index entry starts, if the entry matches the
    /// log: that batch exists and its timestamps are within the entry's maximum.
    fn time_entry_position(&mut self, t: TimeEntry) -> Result<Option<u64>> {
        let offset = self.base_offset + t.relative_offset as i64;
        Ok(match self.locate(offset)? {
            Some((pos, h)) if h.base_offset == offset && h.max_timestamp <= t.max_timestamp => {
                Some(pos)
            }
            _ => None,
        })
    }

    /// Rebuilds both indexes (and the in-memory summary) from the batch headers after
    /// damage was found in an index; a sealed segment is sealed again so that its
    /// trimmed files describe it on the next start.
    fn repair_indexes(&mut self, why: &str) -> Result<()> {
        tracing::warn!(path = %self.path(INDEX_SUFFIX).display(), why, "rebuilding damaged index");
        let was_active = self.active;
        let (size, interval) = (self.size, self.index_interval);
        self.rebuild_indexes(size, interval)?;
        if !was_active {
            self.seal()?;
        }
        Ok(())
    }

    /// Records a batch that now sits at `position` in the indexes: one offset-index
    /// entry every `interval` bytes, and a time-index entry whenever the segment's
    /// maximum timestamp grows at an offset-index entry.
    fn index_batch(&mut self, header: &RecordBatchHeader, position: u64, interval: u32) {
        let relative = (header.base_offset - self.base_offset) as u32;
        let grew = header.max_timestamp > self.max_timestamp;
        if grew {
            self.max_timestamp = header.max_timestamp;
        }
        let due = self.bytes_since_index_entry >= interval as u64 || position == 0;
        let h = self.handles.as_mut().expect("handles open while indexing");
        if due && !h.index.is_full() {
            h.index.append(OffsetEntry {
                relative_offset: relative,
                position: position as u32,
            });
            self.bytes_since_index_entry = 0;
            let newer = h
                .time_index
                .last()
                .is_none_or(|t| self.max_timestamp > t.max_timestamp);
            if newer && !h.time_index.is_full() {
                h.time_index.append(TimeEntry {
                    max_timestamp: self.max_timestamp,
                    relative_offset: relative,
                });
            }
        }
        self.bytes_since_index_entry += header.total_size() as u64;
        self.next_offset = header.last_offset() + 1;
    }

    /// True when appending `bytes` more (spanning up to `last_offset`) needs a new
    /// segment: size, age, index room or the 32-bit relative offset/position limits.
    pub(crate) fn needs_roll(
        &mut self,
        bytes: usize,
        last_offset: i64,
        segment_bytes: u64,
        segment_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool> {
        if self.size == 0 {
            return Ok(false);
        }
        if self.size + bytes as u64 > segment_bytes.min(u32::MAX as u64) {
            return Ok(true);
        }
        if last_offset - self.base_offset > u32::MAX as i64 {
            return Ok(true);
        }
        if let (Some(ms), Some(base)) = (segment_ms, self.rolling_base_ms)
            && now_ms - base >= ms
        {
            return Ok(true);
        }
        let h = self.handles_mut()?;
        Ok(h.index.is_full() || h.time_index.is_full())
    }

    /// Appends already validated and stamped batches (`headers` describe `bytes` in
    /// order) at the end of the segment.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        headers: &[(RecordBatchHeader, std::ops::Range<usize>)],
        interval: u32,
        now_ms: i64,
    ) -> Result<()> {
        debug_assert!(self.active);
        let start = self.size;
        let file = self.file()?;
        let path = self.path(LOG_SUFFIX);
        if let Err(e) = crate::disk::write_all_at(&file, bytes, start, &path) {
            // A short write (full disk) may have left part of the batch behind: cut it so
            // the file holds whole batches only, then report the failure.
            let _ = crate::disk::set_len(&file, start, &path);
            return Err(LogError::io(path, e));
        }
        if self.rolling_base_ms.is_none() {
            self.rolling_base_ms = Some(now_ms);
        }
        for (header, range) in headers {
            self.index_batch(header, start + range.start as u64, interval);
        }
        self.size = start + bytes.len() as u64;
        Ok(())
    }

    /// Finds the batch that contains `offset` (the first batch whose last offset is >=
    /// `offset`): its position and header. `None` when the segment ends before it.
    pub(crate) fn locate(&mut self, offset: i64) -> Result<Option<(u64, RecordBatchHeader)>> {
        let relative = (offset - self.base_offset).clamp(0, u32::MAX as i64);
        let (mut pos, mut known) =
            match self.checked_entry_with_header(|index| index.floor(relative))? {
                Some((e, header)) => (e.position as u64, header),
                None => (0, None),
            };
        while pos < self.size {
            let header = match known.take() {
                Some(h) => h,
                None => self.header_at(pos)?,
            };
            if header.last_offset() >= offset {
                return Ok(Some((pos, header)));
            }
            pos += header.total_size() as u64;
        }
        Ok(None)
    }

    /// The byte position where batches starting at or after `offset` begin (the end of
    /// the last batch whose base offset is below `offset`), walking from the index.
    pub(crate) fn position_of_bound(&mut self, offset: i64) -> Result<u64> {
        if offset >= self.next_offset {
            return Ok(self.size);
        }
        let relative = (offset - self.base_offset).clamp(0, u32::MAX as i64);
        let mut pos = self
            .checked_entry(|index| index.floor(relative))?
            .map_or(0, |e| e.position as u64);
        while pos < self.size {
            let header = self.header_at(pos)?;
            if header.base_offset >= offset {
                return Ok(pos);
            }
            pos += header.total_size() as u64;
        }
        Ok(pos)
    }

    /// The position of the last batch boundary at or before `limit` that is at or after
    /// `start`, where `start` is a batch boundary; used to stop a read at whole batches.
    /// Also returns the header of the batch starting there (`None` at the end of the
    /// segment), which the search has read anyway.
    pub(crate) fn boundary_at_or_before(
        &mut self,
        start: u64,
        limit: u64,
    ) -> Result<(u64, Option<RecordBatchHeader>)> {
        if limit >= self.size {
            return Ok((self.size, None));
        }
        let entry = self.checked_entry_with_header(|index| {
            let i = index.partition_point(|e| e.position as u64 <= limit);
            i.checked_sub(1).map(|i| index.get(i))
        })?;
        let (mut pos, mut known) = match entry {
            Some((e, header)) if e.position as u64 >= start => (e.position as u64, header),
            _ => (start, None),
        };
        loop {
            let header = match known.take() {
                Some(h) => h,
                None => self.header_at(pos)?,
            };
            let next = pos + header.total_size() as u64;
            if next > limit {
                return Ok((pos, Some(header)));
            }
            pos = next;
        }
    }

    /// The first batch in this segment whose max timestamp is >= `ts` and whose last
    /// offset is >= `min_offset` (batches wholly below the log start offset are gone for
    /// readers, so their timestamps must not answer), with its position; `None` if there
    /// is none.
    pub(crate) fn find_timestamp(
        &mut self,
        ts: i64,
        min_offset: i64,
    ) -> Result<Option<(u64, RecordBatchHeader)>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        // Every batch up to the last time entry older than `ts` is older than `ts`.
        let entry = {
            let h = self.handles_mut()?;
            let i = h.time_index.partition_point(|e| e.max_timestamp < ts);
            i.checked_sub(1).map(|i| h.time_index.get(i))
        };
        let mut pos = 0;
        if let Some(t) = entry {
            match self.time_entry_position(t)? {
                Some(p) => pos = p,
                // Searching from the start after the repair is slow but right.
                None => self.repair_indexes("a time-index entry does not match the log")?,
            }
        }
        while pos < self.size {
            let header = self.header_at(pos)?;
            if header.max_timestamp >= ts && header.last_offset() >= min_offset {
                return Ok(Some((pos, header)));
            }
            pos += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Removes every batch whose last offset is >= `offset`; returns the new next offset.
    pub(crate) fn truncate_to(&mut self, offset: i64, interval: u32) -> Result<i64> {
        let cut = match self.locate(offset)? {
            Some((pos, _)) => pos,
            None => return Ok(self.next_offset),
        };
        let path = self.path(LOG_SUFFIX);
        let file = self.file()?;
        crate::disk::set_len(&file, cut, &path).at(&path)?;
        crate::disk::sync_data(&file, &path).at(&path)?;
        // Rebuild the indexes for what is left: simpler than editing them and
        // truncation is rare (leader changes in Raft).
        self.rebuild_indexes(cut, interval)?;
        Ok(self.next_offset)
    }

    /// Rebuilds both indexes and the in-memory summary by walking the headers of the
    /// first `size` bytes (which must be whole, trusted batches).
    fn rebuild_indexes(&mut self, size: u64, interval: u32) -> Result<()> {
        self.reset_indexes()?;
        self.size = size;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.bytes_since_index_entry = 0;
        let mut pos = 0;
        while pos < size {
            let header = self.header_at(pos)?;
            self.index_batch(&header, pos, interval);
            pos += header.total_size() as u64;
        }
        Ok(())
    }

    /// Validates every batch of the segment (framing, CRC-32C, offsets following on),
    /// rebuilding the indexes as it goes. Damage is cut off as a torn tail only when it
    /// lies at or beyond `durable_bytes` and no valid batch follows it, neither later in
    /// this file nor in a later segment (`later_data` says whether one does); otherwise
    /// it is reported as corruption.
    pub(crate) fn recover(
        &mut self,
        durable_bytes: u64,
        interval: u32,
        later_data: &mut dyn FnMut() -> Result<bool>,
    ) -> Result<ScanOutcome> {
        let path = self.path(LOG_SUFFIX);
        let file_len = self.size;
        self.reset_indexes()?;
        let file = self.file()?;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.bytes_since_index_entry = 0;
        self.size = 0;

        let mut buf: Vec<u8> = Vec::with_capacity(SCAN_CHUNK);
        let mut buf_start: u64 = 0; // file position of buf[0]
        let mut pos: u64 = 0;
        let damage: Option<(u64, String)> = loop {
            if pos >= file_len {
                break None;
            }
            // Make sure the whole batch at `pos` is in `buf`.
            let need_header = LOG_OVERHEAD.min((file_len - pos) as usize);
            ensure_buffered(
                &file,
                &path,
                &mut buf,
                &mut buf_start,
                pos,
                need_header,
                file_len,
            )?;
            let at = (pos - buf_start) as usize;
            let total = match RecordBatchHeader::frame_size(&buf[at..], 0) {
                Ok(t) => t,
                Err(e) => break Some((pos, e.to_string())),
            };
            if pos + total as u64 > file_len {
                break Some((
                    pos,
                    format!("batch of {total} bytes runs past the end of the file"),
                ));
            }
            ensure_buffered(&file, &path, &mut buf, &mut buf_start, pos, total, file_len)?;
            let at = (pos - buf_start) as usize;
            let header = match RecordBatchHeader::validate(&buf[at..at + total], 0) {
                Ok(h) => h,
                Err(e) => break Some((pos, e.to_string())),
            };
            if header.base_offset != self.next_offset {
                break Some((
                    pos,
                    format!(
                        "base offset {} where {} was expected",
                        header.base_offset, self.next_offset
                    ),
                ));
            }
            self.index_batch(&header, pos, interval);
            pos += total as u64;
            self.size = pos;
        };
        let Some((bad, reason)) = damage else {
            return Ok(ScanOutcome {
                valid_bytes: pos,
                truncated_bytes: 0,
            });
        };
        if bad < durable_bytes {
            return Err(self.corrupt(bad, format!("{reason} (inside data known to be durable)")));
        }
        // Writes that never reached the disk read back as zeros (a hole, or pages the
        // kernel dropped after a failed fsync), and the disk may have kept later writes
        // around them: past the durable point that is lost data nobody was told was
        // stored, not corruption. Anything else followed by valid batches is.
        let lost_writes = starts_with_zeros(&file, &path, bad, file_len)?;
        if !lost_writes {
            if valid_batch_from(&file, &path, bad + 1, file_len)? {
                return Err(self.corrupt(bad, format!("{reason} (valid batches follow it)")));
            }
            if later_data()? {
                return Err(
                    self.corrupt(bad, format!("{reason} (later segments hold valid batches)"))
                );
            }
        } else {
            tracing::warn!(path = %path.display(), position = bad, "zeros where unsynced batches were written: writes lost before they were durable");
        }
        tracing::warn!(
            path = %path.display(), position = bad, discarded = file_len - bad, %reason,
            "cutting torn tail of segment"
        );
        crate::disk::set_len(&file, bad, &path).at(&path)?;
        crate::disk::sync_data(&file, &path).at(&path)?;
        Ok(ScanOutcome {
            valid_bytes: bad,
            truncated_bytes: file_len - bad,
        })
    }

    /// Calls `f` with the header of every batch from byte `from_pos` on, reading the file
    /// in large chunks (a start-up scan must not cost a syscall per batch).
    pub(crate) fn scan_headers(
        &mut self,
        from_pos: u64,
        f: &mut dyn FnMut(&RecordBatchHeader, Option<&[u8]>),
    ) -> Result<()> {
        let path = self.path(LOG_SUFFIX);
        let file = self.file()?;
        let mut buf = Vec::new();
        let mut buf_start = 0;
        let mut pos = from_pos;
        // Where batches are large, each header is read on its own instead of every
        // byte of the segment in big chunks.
        let mut chunk = SCAN_CHUNK;
        while pos < self.size {
            let need = BATCH_HEADER_LEN.min((self.size - pos) as usize);
            fill_buffer(
                &file,
                &path,
                &mut buf,
                &mut buf_start,
                pos,
                need,
                chunk,
                self.size,
            )?;
            let at = (pos - buf_start) as usize;
            let header = RecordBatchHeader::parse(&buf[at..at + need], 0)
                .map_err(|e| self.batch_error(pos, e))?;
            let size = header.total_size();
            chunk = if size > LARGE_BATCH { need } else { SCAN_CHUNK };
            if header.is_control() && size <= MAX_SCANNED_CONTROL_BATCH {
                let whole = size.min((self.size - pos) as usize);
                ensure_buffered(
                    &file,
                    &path,
                    &mut buf,
                    &mut buf_start,
                    pos,
                    whole,
                    self.size,
                )?;
                let at = (pos - buf_start) as usize;
                f(&header, Some(&buf[at..at + whole]));
            } else {
                f(&header, None);
            }
            pos += size as u64;
        }
        Ok(())
    }

    /// Checks every batch's CRC without changing anything (an operator's scrub).
    pub(crate) fn verify(&mut self) -> Result<()> {
        let path = self.path(LOG_SUFFIX);
        let file = self.file()?;
        let mut buf = Vec::new();
        let mut buf_start = 0;
        let mut pos = 0;
        let mut expected = self.base_offset;
        while pos < self.size {
            ensure_buffered(
                &file,
                &path,
                &mut buf,
                &mut buf_start,
                pos,
                LOG_OVERHEAD,
                self.size,
            )?;
            let at = (pos - buf_start) as usize;
            let total = RecordBatchHeader::frame_size(&buf[at..], 0)
                .map_err(|e| self.batch_error(pos, e))?;
            if pos + total as u64 > self.size {
                return Err(self.corrupt(pos, "batch runs past the end of the segment"));
            }
            ensure_buffered(
                &file,
                &path,
                &mut buf,
                &mut buf_start,
                pos,
                total,
                self.size,
            )?;
            let at = (pos - buf_start) as usize;
            let header = RecordBatchHeader::validate(&buf[at..at + total], 0)
                .map_err(|e| self.batch_error(pos, e))?;
            if header.base_offset != expected {
                return Err(self.corrupt(
                    pos,
                    format!(
                        "base offset {} where {expected} was expected",
                        header.base_offset
                    ),
                ));
            }
            expected = header.last_offset() + 1;
            pos += total as u64;
        }
        Ok(())
    }

    /// Makes the segment inactive: writes a final time-index entry carrying the maximum
    /// timestamp (so a reopened sealed segment knows it), trims and syncs both indexes.
    pub(crate) fn seal(&mut self) -> Result<()> {
        if self.active && self.handles.is_none() {
            // An active segment's index files are preallocated on disk whether or not
            // they are mapped now (the open-file budget releases idle logs): they must
            // be trimmed all the same, or the next start reads the zeros of the
            // preallocation as entries and rebuilds the indexes (an empty partition's
            // every restart did).
            self.open_handles()?;
        }
        let max_ts = self.max_timestamp;
        let last_base = self.last_batch_base()?;
        if let Some(h) = self.handles.as_mut()
            && let Some(base) = last_base
        {
            let newer = h.time_index.last().is_none_or(|t| max_ts > t.max_timestamp);
            if newer && max_ts >= 0 && !h.time_index.is_full() {
                h.time_index.append(TimeEntry {
                    max_timestamp: max_ts,
                    relative_offset: (base - self.base_offset) as u32,
                });
            }
        }
        if let Some(h) = self.handles.take() {
            self.index_len = h.index.len();
            self.time_index_len = h.time_index.len();
            h.index.trim()?;
            h.time_index.trim()?;
        }
        self.active = false;
        Ok(())
    }

    /// Base offset of the last batch, if any.
    fn last_batch_base(&mut self) -> Result<Option<i64>> {
        if self.size == 0 {
            return Ok(None);
        }
        Ok(self
            .locate(self.next_offset - 1)?
            .map(|(_, h)| h.base_offset))
    }

    /// fsyncs the log file (data only: its size is already covered by the write).
    pub(crate) fn sync_file(file: &File, path: &Path) -> Result<()> {
        crate::disk::sync_data(file, path).at(path)
    }

    /// Offset-index sanity after an unclean shutdown: keys increase and every position
    /// falls inside the file.
    pub(crate) fn indexes_look_sane(&mut self) -> Result<bool> {
        let size = self.size;
        let h = self.handles_mut()?;
        Ok(
            h.index.is_sane(|e| (e.position as u64) < size.max(1))
                && h.time_index.is_sane(|_| true),
        )
    }

    /// Rebuilds the indexes of a trusted segment from its headers (no CRC check); the
    /// caller seals the segment afterwards unless it stays active.
    pub(crate) fn reindex(&mut self, interval: u32) -> Result<()> {
        let size = self.size;
        self.rebuild_indexes(size, interval)
    }

    /// Deletes the segment's files (the caller has renamed or handed them off first if
    /// the unlink must not block).
    pub(crate) fn file_paths(&self) -> [PathBuf; 3] {
        [
            self.path(LOG_SUFFIX),
            self.path(INDEX_SUFFIX),
            self.path(TIME_INDEX_SUFFIX),
        ]
    }
}

/// Whether the batch header place at `pos` holds only zeros (at least a batch's length
/// and offset fields, or up to the end of the file).
fn starts_with_zeros(file: &File, path: &Path, pos: u64, file_len: u64) -> Result<bool> {
    let n = (LOG_OVERHEAD as u64).min(file_len - pos) as usize;
    let mut buf = [0u8; LOG_OVERHEAD];
    file.read_exact_at(&mut buf[..n], pos).at(path)?;
    Ok(n > 0 && buf[..n].iter().all(|&b| b == 0))
}

/// Whether a batch that passes its CRC starts anywhere in `[from, file_len)` of a
/// segment file. After damage this tells corruption inside a log from the torn end of
/// an interrupted write, after which nothing valid can follow. Every position is tried,
/// because a damaged length field says nothing about where the next batch starts.
pub(crate) fn valid_batch_from(file: &File, path: &Path, from: u64, file_len: u64) -> Result<bool> {
    let mut buf = Vec::new();
    let mut buf_start = 0;
    let mut pos = from;
    while pos + BATCH_HEADER_LEN as u64 <= file_len {
        ensure_buffered(
            file,
            path,
            &mut buf,
            &mut buf_start,
            pos,
            BATCH_HEADER_LEN,
            file_len,
        )?;
        let at = (pos - buf_start) as usize;
        // Framing and magic first: cheap, and they rule out almost every position.
        if let Ok(h) = RecordBatchHeader::parse(&buf[at..at + BATCH_HEADER_LEN], 0)
            && pos + h.total_size() as u64 <= file_len
        {
            let total = h.total_size();
            ensure_buffered(file, path, &mut buf, &mut buf_start, pos, total, file_len)?;
            let at = (pos - buf_start) as usize;
            if RecordBatchHeader::validate(&buf[at..at + total], 0).is_ok() {
                return Ok(true);
            }
        }
        pos += 1;
    }
    Ok(false)
}

/// Grows `buf` so that it holds file bytes `[pos, pos + need)`, reading ahead in chunks.
/// Control batches up to this size are handed whole to a header scan (a transaction
/// marker is about 80 bytes).
const MAX_SCANNED_CONTROL_BATCH: usize = 4096;

fn ensure_buffered(
    file: &File,
    path: &Path,
    buf: &mut Vec<u8>,
    buf_start: &mut u64,
    pos: u64,
    need: usize,
    file_len: u64,
) -> Result<()> {
    fill_buffer(file, path, buf, buf_start, pos, need, SCAN_CHUNK, file_len)
}

/// A batch above this size makes a header scan read the next header alone.
const LARGE_BATCH: usize = 8 * 1024;

/// [`ensure_buffered`] reading at least `chunk` bytes when it reads.
#[allow(clippy::too_many_arguments)]
fn fill_buffer(
    file: &File,
    path: &Path,
    buf: &mut Vec<u8>,
    buf_start: &mut u64,
    pos: u64,
    need: usize,
    chunk: usize,
    file_len: u64,
) -> Result<()> {
    let have_end = *buf_start + buf.len() as u64;
    if pos >= *buf_start && pos + need as u64 <= have_end {
        return Ok(());
    }
    // Keep the bytes from `pos` on, then read more after them.
    if pos >= *buf_start && pos <= have_end {
        buf.drain(..(pos - *buf_start) as usize);
    } else {
        buf.clear();
    }
    *buf_start = pos;
    let want = need.max(chunk).min((file_len - pos) as usize);
    let have = buf.len();
    if want > have {
        buf.resize(want, 0);
        file.read_exact_at(&mut buf[have..], pos + have as u64)
            .at(path)?;
    }
    Ok(())
}
