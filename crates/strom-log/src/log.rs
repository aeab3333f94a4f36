//! `PartitionLog`: one partition's ordered sequence of segments, with append, read,
//! time lookup, truncation, retention, durability tracking and crash recovery.
//!
//! Offsets: every offset below `log_start_offset` is gone; `[log_start_offset,
//! log_end_offset)` is readable; offsets below `durable_offset` are fsynced. Segments
//! sort by base offset and tile the offsets without gaps; the last one is active.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_batch::RecordBatchHeader;

use crate::checkpoint::{Checkpoint, CheckpointFile};
use crate::config::LogConfig;
use crate::deleter::{DELETED_SUFFIX, Deleter};
use crate::error::{IoContext, LogError, Result};
use crate::segment::{LOG_SUFFIX, Segment};
use crate::slice::{FileSlice, ReadResult};

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest batch max-timestamp among the appended batches.
    pub max_timestamp: i64,
    /// Bytes written.
    pub bytes: usize,
    /// Number of batches written.
    pub batches: usize,
}

/// An offset found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    /// Expired segments kept on disk for the Raft log (see `set_keep_from`) whose
    /// offsets the log start offset moved past.
    pub segments_hidden: usize,
}

/// What opening a log had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// True when the last shutdown was clean and nothing was rescanned.
    pub clean: bool,
    pub segments_scanned: usize,
    pub bytes_scanned: u64,
    pub bytes_truncated: u64,
    pub segments_dropped: usize,
}

/// fsync work taken out of a log so it can run without the log's lock; see
/// [`PartitionLog::begin_flush`].
#[derive(Debug)]
pub struct FlushPlan {
    files: Vec<(Arc<File>, PathBuf)>,
    /// The log's directory, when segments were created in it since its last fsync:
    /// their directory entries are part of what this flush makes durable.
    dir: Option<PathBuf>,
    /// The log's count of directory changes when the plan was made.
    dir_changes: u64,
    target_offset: i64,
    segment_base: i64,
    segment_bytes: u64,
    truncations: u64,
}

impl FlushPlan {
    /// fsyncs the files (the slow part). Safe to run on any thread.
    pub fn execute(&self) -> Result<()> {
        for (file, path) in &self.files {
            Segment::sync_file(file, path)?;
        }
        if let Some(dir) = &self.dir {
            crate::disk::sync_dir(dir).at(dir)?;
        }
        Ok(())
    }

    /// The offset that will be durable once the plan has run.
    pub fn target_offset(&self) -> i64 {
        self.target_offset
    }
}

/// One partition's log. Not internally synchronised: the owner wraps it in a lock.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: VecDeque<Segment>,
    log_start_offset: i64,
    durable_offset: i64,
    /// Sealed segments whose data has not been fsynced yet, oldest first.
    unsynced_sealed: Vec<(Arc<File>, PathBuf, i64)>,
    /// Bytes appended since the last completed flush, and when the first of them came.
    unflushed_bytes: u64,
    first_unflushed_ms: Option<i64>,
    /// Bumped by every truncation so a flush planned before it cannot advance the
    /// durable offset over rewritten data.
    truncations: u64,
    /// Leader epoch of the last batch below the first segment (see [`raft_start`](Self::raft_start)).
    start_epoch: i32,
    /// Retention never deletes a segment holding offsets at or above this (a Raft
    /// log's commit index: uncommitted entries may still be replaced, never expired).
    retention_ceiling: Option<i64>,
    /// The segment holding this offset and every later one stay on disk, whatever
    /// retention or DeleteRecords say: a Raft log keeps its last committed batch, the
    /// point its entry numbering continues from (docs/adr/0005-kafka-offsets.md). What
    /// they would have removed is hidden instead (the log start offset moves past it).
    keep_from: Option<i64>,
    checkpoint: CheckpointFile,
    deleter: Deleter,
    closed: bool,
    /// Why the log is offline, after a write or fsync failed (see [`LogError::Offline`]).
    failed: Option<String>,
    /// Files created in the directory so far, and how many of those creations a
    /// directory fsync has covered: a new segment's entry is synced with the next flush.
    dir_changes: u64,
    dir_synced_changes: u64,
}

impl PartitionLog {
    /// Opens the log in `dir` (creating it if needed), recovering from an unclean
    /// shutdown. Returns the log and what recovery did.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        deleter: Deleter,
    ) -> Result<(PartitionLog, RecoveryReport)> {
        crate::disk::create_dir_all(dir).at(dir)?;
        let (checkpoint, saved) = CheckpointFile::load(dir)?;
        let mut bases = Vec::new();
        let mut leftovers = Vec::new();
        for entry in std::fs::read_dir(dir).at(dir)? {
            let path = entry.at(dir)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(DELETED_SUFFIX) {
                leftovers.push(path.clone());
            } else if let Some(stem) = name.strip_suffix(".log")
                && let Ok(base) = stem.parse::<i64>()
            {
                bases.push(base);
            }
        }
        deleter.delete_renamed(leftovers);
        bases.sort_unstable();

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments: VecDeque::new(),
            log_start_offset: 0,
            durable_offset: 0,
            unsynced_sealed: Vec::new(),
            unflushed_bytes: 0,
            first_unflushed_ms: None,
            truncations: 0,
            start_epoch: saved.map_or(0, |c| c.start_epoch),
            retention_ceiling: None,
            keep_from: None,
            checkpoint,
            deleter,
            // Stays closed until loading succeeds, so a failed open does not "close"
            // (and write a clean checkpoint for) a half-loaded log on drop.
            closed: true,
            failed: None,
            // A new log's files, or files a recovery rewrote, are not known to be in the
            // directory durably until its first flush syncs it.
            dir_changes: u64::from(bases.is_empty() || saved.is_none_or(|c| !c.clean)),
            dir_synced_changes: 0,
        };
        let mut report = log.load_segments(&bases, saved)?;
        if let Some(c) = saved
            && c.log_start_offset > log.log_end_offset()
        {
            // A reset (`reset_to`) was under way: its checkpoint is written first.
            for mut seg in std::mem::take(&mut log.segments) {
                seg.release();
                log.deleter.delete_files(seg.file_paths()).at(dir)?;
            }
            let config = &log.config;
            log.segments.push_back(Segment::create(
                dir,
                c.log_start_offset,
                config.max_index_bytes,
                config.index_interval_bytes,
            )?);
            report.clean = false;
        }
        log.closed = false;
        let first_base = log.segments.front().map_or(0, |s| s.base_offset);
        log.log_start_offset = saved
            .map_or(first_base, |c| c.log_start_offset)
            .clamp(first_base, log.log_end_offset());
        log.durable_offset = log.log_end_offset();
        log.write_checkpoint(false)?;
        tracing::debug!(dir = %dir.display(), ?report, start = log.log_start_offset, end = log.log_end_offset(), "log opened");
        Ok((log, report))
    }

    fn load_segments(
        &mut self,
        bases: &[i64],
        saved: Option<Checkpoint>,
    ) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let interval = self.config.index_interval_bytes;
        let max_index = self.config.max_index_bytes;
        let Some(&last_base) = bases.last() else {
            let start = saved.map_or(0, |c| c.log_start_offset.max(0));
            self.segments
                .push_back(Segment::create(&self.dir, start, max_index, interval)?);
            report.clean = saved.is_some_and(|c| c.clean);
            return Ok(report);
        };
        let last_len = std::fs::metadata(self.segment_log_path(last_base))
            .map(|m| m.len())
            .ok();
        let clean = saved.is_some_and(|c| {
            c.clean
                && c.durable_segment_base == last_base
                && Some(c.durable_segment_bytes) == last_len
        });
        report.clean = clean;
        // Segments wholly below the durable segment were fsynced before the checkpoint
        // was written: they are trusted. The rest is validated batch by batch.
        let (recover_from, durable_bytes) = match saved {
            _ if clean => (i64::MAX, 0),
            Some(c) => (c.durable_segment_base, c.durable_segment_bytes),
            None => (i64::MIN, 0),
        };
        let mut cut = false;
        for (i, &base) in bases.iter().enumerate() {
            if cut {
                self.drop_segment_files(base)?;
                report.segments_dropped += 1;
                continue;
            }
            let expected = self.segments.back().map(|s| s.next_offset);
            if expected.is_some_and(|e| e != base) {
                // A wrong end is most likely a damaged header in the previous segment:
                // name that rather than this file, and never drop durable segments
                // because of it.
                self.segments.back_mut().unwrap().verify()?;
                if base >= recover_from {
                    // A gap after the point that was known durable: the files after it
                    // cannot hold acknowledged data.
                    self.drop_segment_files(base)?;
                    report.segments_dropped += 1;
                    cut = true;
                    continue;
                }
                return Err(LogError::Corrupt {
                    path: self.segment_log_path(base),
                    position: 0,
                    reason: format!(
                        "segment starts at {base} but the previous one ends at {}",
                        expected.unwrap()
                    ),
                });
            }
            let seg = if base < recover_from {
                if !clean {
                    let mut seg = Segment::open_untrusted(&self.dir, base, max_index, interval)?;
                    if !seg.indexes_look_sane()? {
                        tracing::warn!(segment = base, dir = %self.dir.display(), "rebuilding damaged index");
                        seg.reindex(interval)?;
                        seg.seal()?;
                    }
                }
                Segment::open_trusted(&self.dir, base, max_index, interval)?
            } else {
                let mut seg = Segment::open_untrusted(&self.dir, base, max_index, interval)?;
                let durable = if base == recover_from {
                    durable_bytes
                } else {
                    0
                };
                let later = &bases[i + 1..];
                let dir = &self.dir;
                let outcome = seg.recover(durable, interval, &mut || {
                    later_segments_hold_data(dir, later)
                })?;
                report.segments_scanned += 1;
                report.bytes_scanned += outcome.valid_bytes + outcome.truncated_bytes;
                report.bytes_truncated += outcome.truncated_bytes;
                // What survived recovery is on disk now only if we make it so.
                let file = seg.file()?;
                Segment::sync_file(&file, &seg.path(LOG_SUFFIX))?;
                if outcome.truncated_bytes > 0 {
                    cut = true;
                }
                seg
            };
            self.segments.push_back(seg);
        }
        // Every segment but the last is sealed (trimmed indexes, no open files until it
        // is read); the last one is active.
        let n = self.segments.len();
        for seg in self.segments.iter_mut().take(n - 1) {
            if seg.is_active() {
                seg.seal()?;
            }
            seg.release();
        }
        let last = self.segments.back_mut().expect("at least one segment");
        if !last.is_active() {
            last.activate()?;
        }
        Ok(report)
    }

    fn segment_log_path(&self, base: i64) -> PathBuf {
        crate::segment::segment_path(&self.dir, base, LOG_SUFFIX)
    }

    fn drop_segment_files(&self, base: i64) -> Result<()> {
        let paths = [
            LOG_SUFFIX,
            crate::segment::INDEX_SUFFIX,
            crate::segment::TIME_INDEX_SUFFIX,
        ]
        .map(|s| crate::segment::segment_path(&self.dir, base, s));
        self.deleter.delete_files(paths).at(&self.dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Changes settings; they apply from the next append or retention pass.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.segments.back().map_or(0, |s| s.next_offset)
    }

    /// Every offset below this has been fsynced.
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes appended but not yet fsynced, and the time of the oldest such append.
    pub fn unflushed(&self) -> (u64, Option<i64>) {
        (self.unflushed_bytes, self.first_unflushed_ms)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(LogError::Closed {
                path: self.dir.clone(),
            });
        }
        if let Some(cause) = &self.failed {
            return Err(LogError::Offline {
                path: self.dir.clone(),
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    /// Why the log is offline, if a write or fsync failed.
    pub fn offline_cause(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Takes the log offline when `r` is a failure of the disk: after a failed write or
    /// fsync nothing more may be written or acknowledged ("fsyncgate": a later fsync
    /// that succeeds proves nothing about pages the kernel dropped after the failed
    /// one). Errors about the caller's input leave the log as it is.
    fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && matches!(e, LogError::Io { .. } | LogError::Corrupt { .. })
            && self.failed.is_none()
        {
            tracing::error!(dir = %self.dir.display(), error = %e, "storage error: the log goes offline until it is recovered");
            self.failed = Some(e.to_string());
        }
        r
    }

    /// Marks the log offline because a flush of it failed (called by whoever ran the
    /// plan's fsyncs outside the lock).
    pub fn fail_flush(&mut self, error: &LogError) {
        if self.failed.is_none() {
            tracing::error!(dir = %self.dir.display(), error = %error, "fsync failed: the log goes offline until it is recovered");
            self.failed = Some(error.to_string());
        }
    }

    /// Brings an offline log back: everything after the last successful fsync is cut
    /// off (it may never have reached the disk, and nothing acknowledged depends on it:
    /// acknowledgements wait for the fsync), the cut is made durable, and the log is
    /// reopened from its files as at start-up. Fails, leaving the log offline, while
    /// the disk still fails; the caller tries again later.
    pub fn recover_after_fault(&mut self) -> Result<()> {
        if self.failed.is_none() || self.closed {
            return Ok(());
        }
        let durable = self.durable_offset.max(self.log_start_offset);
        // Every attempt starts again from the files: a failed attempt may have changed
        // them (a cut made, its fsync failed) behind this value's in-memory state.
        self.release_handles();
        let (mut fresh, report) =
            PartitionLog::open(&self.dir, self.config.clone(), self.deleter.clone())?;
        let cut = fresh.truncate_inner(durable).and_then(|()| {
            crate::disk::sync_dir(&fresh.dir).at(&fresh.dir)?;
            fresh.write_checkpoint(true)
        });
        if let Err(e) = cut {
            // Dropped as it is: no clean checkpoint for a log that is not recovered.
            fresh.release_handles();
            fresh.closed = true;
            return Err(e);
        }
        fresh.dir_synced_changes = fresh.dir_changes;
        tracing::info!(dir = %self.dir.display(), end = fresh.log_end_offset(), ?report, "log recovered after a storage error");
        // The old value must not write a clean checkpoint as it goes.
        self.closed = true;
        *self = fresh;
        Ok(())
    }

    /// Appends batches that already carry their offsets and leader epoch (stamped by
    /// the Raft leader; a follower copies its leader's): they must be valid and continue
    /// exactly at the log end offset. With [`append_prevalidated`](Self::append_prevalidated)
    /// the only way into the log: the offsets are Raft's to assign, not the log's.
    pub fn append_replicated(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_stamped(batches, now_ms, true)
    }

    /// Like [`append_replicated`](Self::append_replicated), for batches whose CRC-32C
    /// the caller has already checked on these very bytes (a Raft leader writing the
    /// batches it validated when they were produced and has since stamped, which touches
    /// only fields outside the CRC). Lengths, magic and offsets are still checked; the
    /// CRC, a pass over every byte, is not checked a second time.
    pub fn append_prevalidated(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_stamped(batches, now_ms, false)
    }

    fn append_stamped(
        &mut self,
        batches: &[u8],
        now_ms: i64,
        check_crc: bool,
    ) -> Result<AppendInfo> {
        self.check_open()?;
        let mut headers = Vec::new();
        let mut pos = 0;
        let mut expected = self.log_end_offset();
        while pos < batches.len() {
            let header = if check_crc {
                RecordBatchHeader::validate(&batches[pos..], pos)?
            } else {
                let h = RecordBatchHeader::parse(&batches[pos..], pos)?;
                if batches.len() - pos < h.total_size() {
                    return Err(strom_batch::BatchError::Truncated {
                        at: pos,
                        needed: h.total_size(),
                        available: batches.len() - pos,
                    }
                    .into());
                }
                h
            };
            if header.base_offset != expected {
                return Err(LogError::NonContiguous {
                    expected,
                    got: header.base_offset,
                });
            }
            expected = header.last_offset() + 1;
            let end = pos + header.total_size();
            headers.push((header, pos..end));
            pos = end;
        }
        if headers.is_empty() {
            return Err(strom_batch::BatchError::Truncated {
                at: 0,
                needed: strom_batch::BATCH_HEADER_LEN,
                available: 0,
            }
            .into());
        }
        self.check_sizes(&headers)?;
        self.write(batches, &headers, now_ms)
    }

    fn check_sizes(&self, headers: &[(RecordBatchHeader, std::ops::Range<usize>)]) -> Result<()> {
        for (h, _) in headers {
            if h.total_size() > self.config.max_message_bytes {
                return Err(LogError::MessageTooLarge {
                    size: h.total_size(),
                    max: self.config.max_message_bytes,
                });
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        bytes: &[u8],
        headers: &[(RecordBatchHeader, std::ops::Range<usize>)],
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let r = self.write_inner(bytes, headers, now_ms);
        self.guard(r)
    }

    fn write_inner(
        &mut self,
        bytes: &[u8],
        headers: &[(RecordBatchHeader, std::ops::Range<usize>)],
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let base_offset = headers[0].0.base_offset;
        let last_offset = headers.last().unwrap().0.last_offset();
        // Offsets only grow and are dense: the batches continue the log and each other
        // (the callers check their input; this is the write itself).
        let end_before = self.log_end_offset();
        debug_assert_eq!(base_offset, end_before, "a write must continue the log");
        debug_assert!(
            headers
                .windows(2)
                .all(|w| w[1].0.base_offset == w[0].0.last_offset() + 1),
            "the batches of a write must be contiguous"
        );
        debug_assert!(
            last_offset >= base_offset,
            "a batch takes at least one offset"
        );
        let seg_bytes = self.config.segment_bytes;
        let seg_ms = self.config.segment_ms;
        if self
            .active()
            .needs_roll(bytes.len(), last_offset, seg_bytes, seg_ms, now_ms)?
        {
            self.roll()?;
        }
        let interval = self.config.index_interval_bytes;
        self.active().append(bytes, headers, interval, now_ms)?;
        debug_assert_eq!(
            self.log_end_offset(),
            last_offset + 1,
            "the end follows the write"
        );
        debug_assert!(self.durable_offset <= end_before);
        self.unflushed_bytes += bytes.len() as u64;
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: headers
                .iter()
                .map(|(h, _)| h.max_timestamp)
                .max()
                .unwrap_or(-1),
            bytes: bytes.len(),
            batches: headers.len(),
        })
    }

    fn active(&mut self) -> &mut Segment {
        self.segments
            .back_mut()
            .expect("a log always has an active segment")
    }

    /// Starts a new segment at the log end offset. The old one is sealed (indexes
    /// trimmed) and queued for fsync by the next flush.
    pub fn roll(&mut self) -> Result<()> {
        self.check_open()?;
        let r = self.roll_inner();
        self.guard(r)
    }

    fn roll_inner(&mut self) -> Result<()> {
        let next = self.log_end_offset();
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let file = active.file()?;
        let path = active.path(LOG_SUFFIX);
        let base = active.base_offset;
        active.seal()?;
        active.release();
        self.unsynced_sealed.push((file, path, base));
        let seg = Segment::create(
            &self.dir,
            next,
            self.config.max_index_bytes,
            self.config.index_interval_bytes,
        )?;
        self.segments.push_back(seg);
        self.dir_changes += 1;
        tracing::debug!(dir = %self.dir.display(), base = next, "rolled segment");
        Ok(())
    }

    /// The index of the segment that holds `offset` (the last one whose base is <= it).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// Opens files of the segment at `i`, releasing the handles of other sealed segments
    /// so a log holds at most one sealed segment's files at a time.
    fn segment_for_read(&mut self, i: usize) -> &mut Segment {
        let last = self.segments.len() - 1;
        for (j, seg) in self.segments.iter_mut().enumerate() {
            if j != i && j != last && seg.has_handles() {
                seg.release();
            }
        }
        &mut self.segments[i]
    }

    /// Reads whole batches starting with the one that contains `from`, up to about
    /// `max_bytes` (but always at least one whole batch), from a single segment, never
    /// including batches at or above `upper_bound` (e.g. the high watermark).
    pub fn read(
        &mut self,
        from: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
    ) -> Result<ReadResult> {
        self.read_from(from, max_bytes, upper_bound, self.log_start_offset)
    }

    /// Like [`read`](Self::read), but anything still in the segments may be read, below
    /// the log start offset too (which DeleteRecords may move inside a segment): a Raft
    /// leader sends its followers every entry it still holds.
    pub fn read_stored(
        &mut self,
        from: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
    ) -> Result<ReadResult> {
        self.read_from(from, max_bytes, upper_bound, self.segments[0].base_offset)
    }

    fn read_from(
        &mut self,
        from: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
        lowest: i64,
    ) -> Result<ReadResult> {
        self.check_open()?;
        let (start, end) = (self.log_start_offset, self.log_end_offset());
        if from < lowest.min(start) || from > end {
            return Err(LogError::OffsetOutOfRange {
                requested: from,
                start,
                end,
            });
        }
        let bound = upper_bound.unwrap_or(end).min(end);
        let empty = ReadResult {
            slice: None,
            log_start_offset: start,
            log_end_offset: end,
        };
        if from >= bound {
            return Ok(empty);
        }
        let mut i = self.segment_index_for(from);
        loop {
            let seg = self.segment_for_read(i);
            if let Some((pos, first)) = seg.locate(from)? {
                if first.base_offset >= bound {
                    return Ok(empty);
                }
                let bound_pos = seg.position_of_bound(bound)?;
                let limit = bound_pos.min(pos.saturating_add(max_bytes as u64));
                // The first batch always goes out whole. When nothing fits after it, its
                // header already says where the read ends: each header lookup skipped is
                // a syscall saved, the bulk of a small fetch's cost.
                let first_end = pos + first.total_size() as u64;
                let (end_pos, at_end) = match limit <= first_end {
                    true => (first_end, None),
                    false => match seg.boundary_at_or_before(pos, limit)? {
                        (boundary, _) if boundary <= pos => (first_end, None),
                        found => found,
                    },
                };
                let last = if end_pos >= seg.size {
                    seg.next_offset - 1
                } else if end_pos == first_end {
                    first.last_offset()
                } else if let Some(next) = at_end {
                    // Offsets within a segment follow on without gaps (append, replication
                    // and recovery all enforce it): the read ends just before the batch
                    // that starts at `end_pos`, whose header the search has read.
                    next.base_offset - 1
                } else {
                    seg.last_offset_ending_at(end_pos)?
                };
                let file = seg.file()?;
                return Ok(ReadResult {
                    slice: Some(FileSlice {
                        file,
                        path: seg.path(LOG_SUFFIX),
                        position: pos,
                        len: end_pos - pos,
                        first_offset: first.base_offset,
                        last_offset: last.min(bound - 1),
                    }),
                    log_start_offset: start,
                    log_end_offset: end,
                });
            }
            if i + 1 >= self.segments.len() {
                return Ok(empty);
            }
            i += 1;
        }
    }

    /// The first batch at least partly at or above the log start offset whose max
    /// timestamp is at least `ts`: its base offset (no lower than the log start) and that
    /// timestamp. `None` when every such record is older. (Records inside the batch are not
    /// inspected; a client skips those older than it asked for.)
    pub fn offset_for_timestamp(&mut self, ts: i64) -> Result<Option<TimestampOffset>> {
        self.check_open()?;
        let start = self.log_start_offset;
        for i in 0..self.segments.len() {
            if self.segments[i].next_offset <= start || self.segments[i].max_timestamp < ts {
                continue;
            }
            let seg = self.segment_for_read(i);
            if let Some((_, h)) = seg.find_timestamp(ts, start)? {
                return Ok(Some(TimestampOffset {
                    offset: h.base_offset.max(start),
                    timestamp: h.max_timestamp,
                }));
            }
        }
        Ok(None)
    }

    /// The batch holding the largest timestamp in the log (Kafka's MAX_TIMESTAMP
    /// lookup): its last offset and that timestamp.
    pub fn max_timestamp_offset(&mut self) -> Result<Option<TimestampOffset>> {
        self.check_open()?;
        let start = self.log_start_offset;
        let best = (0..self.segments.len())
            .filter(|&i| {
                self.segments[i].next_offset > start && self.segments[i].max_timestamp >= 0
            })
            .max_by_key(|&i| (self.segments[i].max_timestamp, std::cmp::Reverse(i)));
        let Some(i) = best else { return Ok(None) };
        let ts = self.segments[i].max_timestamp;
        let seg = self.segment_for_read(i);
        Ok(seg
            .find_timestamp(ts, i64::MIN)?
            .map(|(_, h)| TimestampOffset {
                offset: h.last_offset().max(start),
                timestamp: ts,
            }))
    }

    /// Removes every batch whose last offset is >= `offset`, so the log ends at or
    /// before `offset` (exactly there when `offset` is a batch boundary, as Raft's
    /// entries are).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.check_open()?;
        let r = self.truncate_inner(offset);
        self.guard(r)
    }

    fn truncate_inner(&mut self, offset: i64) -> Result<()> {
        let end_before = self.log_end_offset();
        if offset >= end_before {
            // Never above the end: a truncation only ever removes.
            return Ok(());
        }
        if offset < self.log_start_offset {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end: self.log_end_offset(),
            });
        }
        self.truncations += 1;
        // Whole segments above the cut go away.
        while self.segments.len() > 1 && self.segments.back().unwrap().base_offset >= offset {
            let mut seg = self.segments.pop_back().unwrap();
            seg.release();
            self.unsynced_sealed
                .retain(|(_, _, b)| *b != seg.base_offset);
            self.deleter.delete_files(seg.file_paths()).at(&self.dir)?;
        }
        let interval = self.config.index_interval_bytes;
        let last = self.segments.back_mut().unwrap();
        if !last.is_active() {
            last.activate()?;
        }
        last.truncate_to(offset, interval)?;
        let end = self.log_end_offset();
        // The log ends at or before the cut (at a batch boundary), never below the
        // segments that remain.
        debug_assert!(
            end <= offset && end < end_before,
            "truncated to {offset}: end {end}"
        );
        debug_assert!(end >= self.segments[0].base_offset);
        self.durable_offset = self.durable_offset.min(end);
        if self.durable_offset == end {
            // Everything unflushed was cut off: nothing is waiting for an fsync, and an
            // interval or size flush policy must not keep asking for one.
            self.unflushed_bytes = 0;
            self.first_unflushed_ms = None;
        }
        self.log_start_offset = self.log_start_offset.min(end);
        self.write_checkpoint(true)?;
        Ok(())
    }

    /// Moves the log start offset up to `before` (Kafka DeleteRecords); whole segments
    /// below it are deleted off-thread. Returns the new log start offset.
    pub fn delete_records(&mut self, before: i64) -> Result<i64> {
        self.check_open()?;
        let end = self.log_end_offset();
        if before > end || before < 0 {
            return Err(LogError::OffsetOutOfRange {
                requested: before,
                start: self.log_start_offset,
                end,
            });
        }
        if before > self.log_start_offset {
            self.log_start_offset = before;
            self.delete_segments_below_start()?;
            self.write_checkpoint(true)?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self) -> Result<RetentionOutcome> {
        let mut out = RetentionOutcome::default();
        if self.active_ref().next_offset <= self.log_start_offset && !self.active_ref().is_empty() {
            self.roll()?;
        }
        while self.segments.len() > 1 && self.segments[0].next_offset <= self.log_start_offset {
            if !self.removable(&self.segments[0]) {
                break;
            }
            out.bytes_deleted += self.remove_oldest()?;
            out.segments_deleted += 1;
        }
        Ok(out)
    }

    /// Whether `keep_from` lets the segment go.
    fn removable(&self, s: &Segment) -> bool {
        self.keep_from.is_none_or(|k| s.next_offset <= k)
    }

    fn active_ref(&self) -> &Segment {
        self.segments
            .back()
            .expect("a log always has an active segment")
    }

    fn remove_oldest(&mut self) -> Result<u64> {
        // The segment holding `keep_from` (a Raft log's newest committed batch) and all
        // later ones stay, whatever removes segments (retention, DeleteRecords).
        debug_assert!(
            self.removable(&self.segments[0]),
            "removing a segment ending at {} at or past keep_from {:?}",
            self.segments[0].next_offset,
            self.keep_from
        );
        debug_assert!(
            self.segments.len() > 1,
            "the active segment is never removed"
        );
        let mut seg = self.segments.pop_front().unwrap();
        if !seg.is_empty()
            && let Some((_, last)) = seg.locate(seg.next_offset - 1)?
        {
            self.start_epoch = last.partition_leader_epoch;
        }
        seg.release();
        self.unsynced_sealed
            .retain(|(_, _, b)| *b != seg.base_offset);
        self.deleter.delete_files(seg.file_paths()).at(&self.dir)?;
        Ok(seg.size)
    }

    /// Applies retention by age (`retention_ms`, judged by each segment's newest
    /// timestamp) and by size (`retention_bytes`), deleting whole segments from the
    /// oldest on, off-thread. When every segment has expired the active one is rolled
    /// first so the whole log can go, as a TTL should.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        self.check_open()?;
        let mut out = RetentionOutcome::default();
        let ceiling = self.retention_ceiling.unwrap_or(i64::MAX);
        let start_before = self.log_start_offset;
        let below_ceiling = |s: &Segment| s.next_offset <= ceiling;
        if let Some(ttl) = self.config.retention_ms {
            let expired = |s: &Segment| {
                !s.is_empty()
                    && below_ceiling(s)
                    && s.newest_time_ms().is_some_and(|t| t < now_ms - ttl)
            };
            let all_expired = self.segments.iter().all(|s| expired(s) || s.is_empty())
                && !self.active_ref().is_empty();
            if all_expired {
                self.roll()?;
            }
            while self.segments.len() > 1 && expired(&self.segments[0]) {
                if !self.removable(&self.segments[0]) {
                    // Kept for the Raft log, gone for clients.
                    let hidden = self.segments[0].next_offset;
                    if hidden > self.log_start_offset {
                        self.log_start_offset = hidden;
                        out.segments_hidden += 1;
                    }
                    break;
                }
                out.bytes_deleted += self.remove_oldest()?;
                out.segments_deleted += 1;
            }
        }
        if let Some(limit) = self.config.retention_bytes {
            let mut size = self.size_bytes();
            while self.segments.len() > 1
                && below_ceiling(&self.segments[0])
                && size.saturating_sub(self.segments[0].size) >= limit
                && size > limit
                && self.removable(&self.segments[0])
            {
                let removed = self.remove_oldest()?;
                size -= removed;
                out.bytes_deleted += removed;
                out.segments_deleted += 1;
            }
        }
        let first = self.segments[0].base_offset;
        let more = self.delete_segments_below_start()?;
        out.segments_deleted += more.segments_deleted;
        out.bytes_deleted += more.bytes_deleted;
        if first > self.log_start_offset {
            self.log_start_offset = first;
        }
        // Retention never moves the log start past the commit index (DeleteRecords
        // may have moved it further before; retention does not add to that).
        debug_assert!(
            self.log_start_offset <= start_before.max(ceiling),
            "retention moved the log start to {} past the ceiling {ceiling}",
            self.log_start_offset
        );
        debug_assert!(self.log_start_offset <= self.log_end_offset());
        if out.segments_deleted > 0 || out.segments_hidden > 0 {
            self.write_checkpoint(true)?;
            tracing::info!(dir = %self.dir.display(), segments = out.segments_deleted, bytes = out.bytes_deleted, start = self.log_start_offset, "retention deleted segments");
        }
        Ok(out)
    }

    /// Where the log physically begins, for a Raft log: the base offset of the first
    /// segment (a batch boundary, at or below the log start offset, which DeleteRecords
    /// may have moved inside a segment) and the leader epoch of the batch just before
    /// it (0 when there was none).
    pub fn raft_start(&self) -> (i64, i32) {
        (self.segments[0].base_offset, self.start_epoch)
    }

    /// The leader epoch stamped on the batch that holds `offset`; `None` outside the
    /// stored batches.
    pub fn epoch_at(&mut self, offset: i64) -> Result<Option<i32>> {
        self.check_open()?;
        if offset < self.segments[0].base_offset || offset >= self.log_end_offset() {
            return Ok(None);
        }
        let i = self.segment_index_for(offset);
        let seg = self.segment_for_read(i);
        Ok(seg.locate(offset)?.map(|(_, h)| h.partition_leader_epoch))
    }

    /// The header of the stored batch that holds `offset`; `None` outside the stored
    /// batches.
    pub fn batch_containing(&mut self, offset: i64) -> Result<Option<RecordBatchHeader>> {
        self.check_open()?;
        if offset < self.segments[0].base_offset || offset >= self.log_end_offset() {
            return Ok(None);
        }
        let i = self.segment_index_for(offset);
        let seg = self.segment_for_read(i);
        Ok(seg.locate(offset)?.map(|(_, h)| h))
    }

    /// Keeps retention below `ceiling` (see the field); `None` lifts the limit.
    pub fn set_retention_ceiling(&mut self, ceiling: Option<i64>) {
        self.retention_ceiling = ceiling;
    }

    /// Keeps the segment holding `offset` and all later ones on disk (see the field).
    pub fn set_keep_from(&mut self, offset: Option<i64>) {
        self.keep_from = offset;
    }

    /// The base offset of the active (last) segment.
    pub fn active_segment_base(&self) -> i64 {
        self.active_ref().base_offset
    }

    /// The headers of up to `max` stored batches, from the one that starts at `from`
    /// (which must be a batch boundary at or above the first segment's base) on, across
    /// segments: a Raft log numbers its entries by walking them.
    pub fn headers_from(&mut self, from: i64, max: usize) -> Result<Vec<RecordBatchHeader>> {
        self.check_open()?;
        let end = self.log_end_offset();
        if from < self.segments[0].base_offset || from > end {
            return Err(LogError::OffsetOutOfRange {
                requested: from,
                start: self.segments[0].base_offset,
                end,
            });
        }
        let mut out = Vec::new();
        let mut next = from;
        while out.len() < max && next < end {
            let i = self.segment_index_for(next);
            let seg = self.segment_for_read(i);
            let Some((mut pos, first)) = seg.locate(next)? else {
                break;
            };
            if first.base_offset != next {
                return Err(LogError::Corrupt {
                    path: seg.path(crate::segment::LOG_SUFFIX),
                    position: pos,
                    reason: format!("offset {next} is not the start of a batch"),
                });
            }
            let mut h = first;
            loop {
                next = h.last_offset() + 1;
                pos += h.total_size() as u64;
                out.push(h);
                if out.len() >= max || pos >= seg.size {
                    break;
                }
                h = seg.header_at(pos)?;
            }
        }
        Ok(out)
    }

    /// Throws the whole log away and starts it empty at `offset`, recording `epoch` as
    /// the epoch of the batch before it: a Raft follower that fell behind its leader's
    /// log start restarts from there. Durable when it returns.
    pub fn reset_to(&mut self, offset: i64, epoch: i32) -> Result<()> {
        self.check_open()?;
        let r = self.reset_inner(offset, epoch);
        self.guard(r)
    }

    fn reset_inner(&mut self, offset: i64, epoch: i32) -> Result<()> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end: self.log_end_offset(),
            });
        }
        self.truncations += 1;
        // The checkpoint goes first: a crash after it finds a log start beyond the
        // remaining data, which `open` finishes as this reset.
        self.log_start_offset = offset;
        self.start_epoch = epoch;
        self.durable_offset = offset;
        self.checkpoint.write(
            &Checkpoint {
                clean: false,
                log_start_offset: offset,
                durable_offset: offset,
                durable_segment_base: offset,
                durable_segment_bytes: 0,
                start_epoch: epoch,
            },
            true,
        )?;
        for mut seg in std::mem::take(&mut self.segments) {
            seg.release();
            self.deleter.delete_files(seg.file_paths()).at(&self.dir)?;
        }
        self.unsynced_sealed.clear();
        let interval = self.config.index_interval_bytes;
        let max_index = self.config.max_index_bytes;
        self.segments
            .push_back(Segment::create(&self.dir, offset, max_index, interval)?);
        self.unflushed_bytes = 0;
        self.first_unflushed_ms = None;
        self.write_checkpoint(true)?;
        crate::disk::sync_dir(&self.dir).at(&self.dir)?;
        self.dir_synced_changes = self.dir_changes;
        Ok(())
    }

    /// Takes what must be fsynced for everything appended so far to be durable. Run
    /// [`FlushPlan::execute`] (possibly without holding the log's lock, in parallel with
    /// other logs' plans), then hand it back to [`finish_flush`](Self::finish_flush).
    /// `None` when everything is durable already.
    pub fn begin_flush(&mut self) -> Result<Option<FlushPlan>> {
        self.check_open()?;
        let end = self.log_end_offset();
        let dir_unsynced = self.dir_changes > self.dir_synced_changes;
        if end == self.durable_offset && self.unsynced_sealed.is_empty() && !dir_unsynced {
            return Ok(None);
        }
        let mut files: Vec<(Arc<File>, PathBuf)> = self
            .unsynced_sealed
            .iter()
            .map(|(f, p, _)| (f.clone(), p.clone()))
            .collect();
        // A log whose files the open-file budget closed keeps them closed: the plan's
        // own handle is enough, and it goes when the plan does. A round over thousands
        // of idle-but-written logs would otherwise leave every one of them open.
        let had_handles = self.has_open_handles();
        let active = self.active();
        let (base, size) = (active.base_offset, active.size);
        files.push((active.file()?, active.path(LOG_SUFFIX)));
        if !had_handles {
            self.release_handles();
        }
        Ok(Some(FlushPlan {
            files,
            dir: dir_unsynced.then(|| self.dir.clone()),
            dir_changes: self.dir_changes,
            target_offset: end,
            segment_base: base,
            segment_bytes: size,
            truncations: self.truncations,
        }))
    }

    /// Records that a plan ran: advances the durable offset and writes a (non-synced)
    /// checkpoint so a crash recovery can start from here.
    pub fn finish_flush(&mut self, plan: FlushPlan) -> Result<i64> {
        self.check_open()?;
        let r = self.finish_inner(plan);
        self.guard(r)
    }

    fn finish_inner(&mut self, plan: FlushPlan) -> Result<i64> {
        if plan.dir.is_some() {
            self.dir_synced_changes = self.dir_synced_changes.max(plan.dir_changes);
        }
        if plan.truncations != self.truncations {
            // The log was truncated while the plan ran; what it synced may be gone.
            return Ok(self.durable_offset);
        }
        // Only segments that were already sealed when the plan was made are now synced
        // in full. The plan's last file is the segment that was active then: if it has
        // been rolled meanwhile, bytes appended after the plan was made may have missed
        // its fsync, so it stays queued for the next flush.
        let sealed = &plan.files[..plan.files.len() - 1];
        self.unsynced_sealed
            .retain(|(f, _, _)| !sealed.iter().any(|(g, _)| Arc::ptr_eq(f, g)));
        if plan.target_offset > self.durable_offset {
            // The plan is of this log as it still is (no truncation since): what it
            // made durable is still there.
            debug_assert!(plan.target_offset <= self.log_end_offset());
            self.durable_offset = plan.target_offset;
            self.checkpoint.write(
                &Checkpoint {
                    clean: false,
                    log_start_offset: self.log_start_offset,
                    durable_offset: self.durable_offset,
                    durable_segment_base: plan.segment_base,
                    durable_segment_bytes: plan.segment_bytes,
                    start_epoch: self.start_epoch,
                },
                false,
            )?;
        }
        if self.log_end_offset() == self.durable_offset {
            self.unflushed_bytes = 0;
            self.first_unflushed_ms = None;
        }
        Ok(self.durable_offset)
    }

    /// fsyncs everything appended so far, on the caller's thread.
    pub fn flush(&mut self) -> Result<i64> {
        match self.begin_flush()? {
            Some(plan) => {
                if let Err(e) = plan.execute() {
                    self.fail_flush(&e);
                    return Err(e);
                }
                self.finish_flush(plan)
            }
            None => Ok(self.durable_offset),
        }
    }

    fn write_checkpoint(&mut self, sync: bool) -> Result<()> {
        let active = self.segments.back().expect("active segment");
        let oldest_unsynced = self.unsynced_sealed.iter().map(|(_, _, b)| *b).min();
        let (base, bytes) = if let Some(base) = oldest_unsynced {
            // Segments rolled since the last flush were never fsynced: recovery must
            // read them, not trust them, even though they are sealed.
            (base, 0)
        } else if self.durable_offset >= active.next_offset {
            (active.base_offset, active.size)
        } else {
            // Only what an earlier flush synced is known durable; without a better
            // position, recovery rescans the active segment from its start.
            (active.base_offset, 0)
        };
        let cp = Checkpoint {
            clean: false,
            log_start_offset: self.log_start_offset,
            durable_offset: self.durable_offset,
            durable_segment_base: base,
            durable_segment_bytes: bytes,
            start_epoch: self.start_epoch,
        };
        self.checkpoint.write(&cp, sync)
    }

    /// Calls `f` with the header of every batch in the last `segments` segments (at
    /// least the active one; `usize::MAX` for all), oldest first, and for a control
    /// batch (a transaction marker) its whole bytes too: enough to rebuild per-producer
    /// and transaction state without reading the records.
    pub fn scan_recent_headers(
        &mut self,
        segments: usize,
        mut f: impl FnMut(&RecordBatchHeader, Option<&[u8]>),
    ) -> Result<()> {
        self.check_open()?;
        let n = self.segments.len();
        for i in n.saturating_sub(segments.max(1))..n {
            self.segment_for_read(i).scan_headers(0, &mut f)?;
        }
        Ok(())
    }

    /// Checks every batch's CRC in every segment: a scrub for damage that recovery does
    /// not look at (data that was durable before the last checkpoint).
    pub fn verify(&mut self) -> Result<()> {
        self.check_open()?;
        for i in 0..self.segments.len() {
            self.segment_for_read(i).verify()?;
        }
        Ok(())
    }

    /// Closes every file of the log; they reopen on the next use. Lets a manager of
    /// thousands of partitions stay within file-descriptor and mapping limits.
    pub fn release_handles(&mut self) {
        for seg in self.segments.iter_mut() {
            seg.release();
        }
    }

    /// Whether any file of the log is open.
    pub fn has_open_handles(&self) -> bool {
        self.segments.iter().any(|s| s.has_handles())
    }

    /// Clean shutdown: fsync everything, trim the active segment's indexes and write a
    /// synced clean checkpoint so the next open does not rescan.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        if let Some(cause) = &self.failed {
            // Nothing of an offline log can be trusted to be flushed: no clean
            // checkpoint, and the next start recovers it like after a crash.
            tracing::warn!(dir = %self.dir.display(), %cause, "closing an offline log without flushing it");
            self.release_handles();
            self.closed = true;
            return Ok(());
        }
        self.flush()?;
        let active = self.active();
        active.seal()?;
        let (base, size) = (active.base_offset, active.size);
        self.checkpoint.write(
            &Checkpoint {
                clean: true,
                log_start_offset: self.log_start_offset,
                durable_offset: self.durable_offset,
                durable_segment_base: base,
                durable_segment_bytes: size,
                start_epoch: self.start_epoch,
            },
            true,
        )?;
        self.release_handles();
        self.closed = true;
        Ok(())
    }

    /// Closes the log and removes its directory off-thread; later calls get `Closed`.
    pub fn delete(&mut self) -> Result<()> {
        self.release_handles();
        self.closed = true;
        // A name no earlier deletion used: the same partition may be deleted again (its
        // topic created anew) before the last deletion's files are gone, and a rename
        // onto that directory would fail and leave this log in place.
        static DELETIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = DELETIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut target = self.dir.clone().into_os_string();
        target.push(format!(".{nanos:x}-{n}{DELETED_SUFFIX}"));
        let target = PathBuf::from(target);
        crate::disk::rename(&self.dir, &target).at(&self.dir)?;
        self.deleter.delete_dir(target);
        Ok(())
    }
}

/// Whether any of the segments with these base offsets holds a batch that passes its
/// CRC: then damage in an earlier segment is not a torn tail.
fn later_segments_hold_data(dir: &Path, bases: &[i64]) -> Result<bool> {
    for &base in bases {
        let path = crate::segment::segment_path(dir, base, LOG_SUFFIX);
        let file = File::open(&path).at(&path)?;
        let len = file.metadata().at(&path)?.len();
        if crate::segment::valid_batch_from(&file, &path, 0, len)? {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if !self.closed
            && let Err(e) = self.close()
        {
            tracing::error!(dir = %self.dir.display(), error = %e, "closing log on drop failed");
        }
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
