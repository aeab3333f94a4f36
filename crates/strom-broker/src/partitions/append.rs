//! Appending a producer's (or the group coordinator's) batches to a partition this node
//! leads: validation, idempotent deduplication, back pressure, then one Raft proposal.

use std::collections::BTreeMap;

use strom_batch::{RecordBatchHeader, now_ms, read_marker, split_batches};
use strom_log::TopicPartition;
use strom_wire::ErrorCode;

use super::{Commit, Partition, Partitions};
use crate::errors::{Failure, partition_raft_failure, unknown_partition};
use crate::producers::{ProducerStates, SequenceCheck};
use crate::record_check;

/// Producers whose newest batch is older than this are forgotten (Kafka's
/// `producer.id.expiration.ms` default, one day), when the state is rebuilt and then at
/// most every [`EXPIRE_CHECK_EVERY`] appends that grow it past [`EXPIRE_CHECK_ABOVE`].
const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;
const EXPIRE_CHECK_ABOVE: usize = 10_000;
const EXPIRE_CHECK_EVERY: u64 = 1_000;

/// Bytes a partition's leader accepts beyond its high watermark before it answers
/// produce requests with a retriable error: a leader whose followers (or disk) cannot
/// keep up says so instead of queueing without bound.
const MAX_UNCOMMITTED_BYTES: u64 = 256 << 20;

/// What an append did.
#[derive(Debug)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already written; nothing new was appended.
    pub duplicate: bool,
    /// Resolves when the records are committed (see `Partitions::wait_committed`).
    pub commit: Commit,
    /// The broker's clock stamped on the batches (LogAppendTime topics), else -1.
    pub log_append_time: i64,
}

impl Partitions {
    /// Appends a Produce request's records for one partition this node leads: validates
    /// every batch, deduplicates idempotent retries, and proposes the batches to the
    /// partition's Raft group, which stamps offsets and epoch and writes them locally
    /// before this returns. Commitment is awaited with
    /// [`wait_committed`](Self::wait_committed).
    pub fn append(&self, tp: &TopicPartition, records: &[u8]) -> Result<Appended, Failure> {
        self.append_from(tp, records, Origin::Client { verified: None })
    }

    /// [`append`](Self::append) for a producer or for the group coordinator
    /// (`origin`), which writes transactional offset commits without sequence numbers.
    pub fn append_from(
        &self,
        tp: &TopicPartition,
        records: &[u8],
        origin: Origin,
    ) -> Result<Appended, Failure> {
        let partition = self.get(tp).ok_or_else(|| unknown_partition(tp))?;
        let status = *partition.status.borrow();
        status.check_leading(tp)?;
        let batches = split_batches(records).map_err(Failure::from)?;
        let first = batches[0].0;
        let transactional = first.is_transactional();
        if batches.iter().any(|(h, _)| h.is_control()) {
            return Err(Failure::new(
                ErrorCode::InvalidRecord,
                "control batches are written by transaction coordinators only",
            ));
        }
        if transactional && !first.has_producer_id() {
            return Err(Failure::new(
                ErrorCode::InvalidRecord,
                "a transactional batch needs a producer id",
            ));
        }
        let (max_bytes, log_start_offset) = self
            .logs
            .with_log(tp, |l| (l.config().max_message_bytes, l.log_start_offset()))
            .ok_or_else(|| unknown_partition(tp))?;
        if let Some((h, _)) = batches.iter().find(|(h, _)| h.total_size() > max_bytes) {
            return Err(Failure::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "a batch of {} bytes exceeds max.message.bytes {max_bytes}",
                    h.total_size()
                ),
            ));
        }
        // Every record is checked before anything is proposed: a count the bytes cannot
        // hold would otherwise become that many Raft entries (docs/adr/0002).
        let topic = self.topics.get(&tp.topic);
        let no_configs = BTreeMap::new();
        let policy = record_check::TimestampPolicy::for_topic(
            &self.records,
            topic.as_deref().map_or(&no_configs, |t| &t.configs),
        );
        let now = now_ms();
        let stamps = record_check::with_scratch(|scratch| {
            batches
                .iter()
                .map(|(h, range)| {
                    record_check::check(
                        &records[range.clone()],
                        h,
                        &policy,
                        now,
                        self.records.max_decompressed_batch_bytes,
                        matches!(origin, Origin::Client { .. }),
                        scratch,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let log_append_time = if policy.log_append_time { now } else { -1 };
        let pending = partition.uncommitted.lock().unwrap().1;
        if pending > MAX_UNCOMMITTED_BYTES {
            return Err(Failure::new(
                ErrorCode::RequestTimedOut,
                format!(
                    "{} has {pending} bytes not yet replicated to a majority; retry",
                    tp.dir_name()
                ),
            ));
        }
        let idempotent = first.has_producer_id();
        if idempotent && batches.len() > 1 {
            return Err(Failure::new(
                ErrorCode::InvalidRecord,
                "an idempotent producer sends one batch per partition",
            ));
        }
        let mut guard = partition.producers.lock().unwrap();
        if idempotent {
            let states = self.producer_states(tp, &mut guard)?;
            let pid = first.producer_id;
            states
                .check_txn(pid, transactional)
                .map_err(|code| Failure::new(code, format!("producer {pid} has a transaction open in {}; only transactional batches until it ends", tp.dir_name())))?;
            if transactional
                && let Origin::Client { verified } = origin
                && !states.verified(pid, verified)
            {
                return Err(Failure::new(
                    ErrorCode::InvalidTxnState,
                    format!(
                        "{} is not verified to be in the transaction of producer {pid}",
                        tp.dir_name()
                    ),
                ));
            }
        }
        let sequenced = idempotent && matches!(origin, Origin::Client { .. });
        if idempotent
            && !sequenced
            && let Some(current) = guard.as_ref().and_then(|s| s.epoch(first.producer_id))
            && first.producer_epoch < current
        {
            // A fenced producer's offset commit: its transaction was aborted already.
            return Err(Failure::new(
                ErrorCode::InvalidProducerEpoch,
                format!(
                    "producer {} epoch {} is fenced by epoch {current}",
                    first.producer_id, first.producer_epoch
                ),
            ));
        }
        if sequenced {
            let states = guard.as_ref().expect("loaded above");
            match states.check(
                first.producer_id,
                first.producer_epoch,
                first.base_sequence,
                first.records_count,
            ) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                } => {
                    // Answered as the first time once everything in the log is
                    // committed: the batch is in it.
                    let (waiter, commit) = Commit::new();
                    self.raft
                        .when_all_committed(partition.group, waiter)
                        .map_err(|e| partition_raft_failure(tp, e))?;
                    return Ok(Appended {
                        base_offset,
                        last_offset,
                        log_start_offset,
                        duplicate: true,
                        commit,
                        log_append_time: -1,
                    });
                }
                SequenceCheck::Reject(code) => {
                    return Err(Failure::new(
                        code,
                        format!(
                            "producer {} epoch {} sequence {} refused",
                            first.producer_id, first.producer_epoch, first.base_sequence
                        ),
                    ));
                }
            }
        }
        let copies: Vec<Vec<u8>> = batches
            .iter()
            .zip(stamps)
            .map(|((_, range), stamp)| {
                let mut copy = records[range.clone()].to_vec();
                record_check::stamp(&mut copy, stamp);
                copy
            })
            .collect();
        let (proposed, commit) = self.propose(tp, &partition, copies, records.len() as u64)?;
        if idempotent && let Some(states) = guard.as_mut() {
            states.record(
                first.producer_id,
                first.producer_epoch,
                if sequenced { first.base_sequence } else { -1 },
                first.records_count,
                proposed.base_offset,
                proposed.last_offset,
            );
            states.set_last_timestamp(first.producer_id, first.max_timestamp);
            if transactional {
                states.record_txn_data(first.producer_id, proposed.base_offset);
            }
            if states.len() > EXPIRE_CHECK_ABOVE
                && states.recorded().is_multiple_of(EXPIRE_CHECK_EVERY)
            {
                states.expire(now, PRODUCER_ID_EXPIRATION_MS);
            }
        }
        drop(guard);
        self.metrics.bytes_in(&tp.topic, records.len());
        Ok(Appended {
            base_offset: proposed.base_offset,
            last_offset: proposed.last_offset,
            log_start_offset,
            duplicate: false,
            commit,
            log_append_time,
        })
    }

    /// The one proposal of a leader's batches to the partition's Raft group (which stamps
    /// their offsets and writes them here before this returns), counted as uncommitted
    /// until the commit passes them; the commit is awaited with `wait_committed`.
    pub(super) fn propose(
        &self,
        tp: &TopicPartition,
        partition: &Partition,
        batches: Vec<Vec<u8>>,
        bytes: u64,
    ) -> Result<(strom_raft::Proposed, Commit), Failure> {
        let (waiter, commit) = Commit::new();
        let proposed = self
            .raft
            .propose(partition.group, batches, Some(waiter))
            .map_err(|e| partition_raft_failure(tp, e))?;
        let mut u = partition.uncommitted.lock().unwrap();
        u.0.push_back((proposed.last_offset + 1, bytes));
        u.1 += bytes;
        Ok((proposed, commit))
    }

    /// The partition's producer state, rebuilt from its log first if this leader has
    /// none yet (after start-up or a leadership change).
    pub(super) fn producer_states<'a>(
        &self,
        tp: &TopicPartition,
        guard: &'a mut Option<ProducerStates>,
    ) -> Result<&'a mut ProducerStates, Failure> {
        if guard.is_none() {
            *guard = Some(self.rebuild_producer_state(tp)?);
        }
        Ok(guard.as_mut().expect("set above"))
    }

    /// Reads every batch header of this node's copy (the leader's log holds everything
    /// that will be committed), and every transaction marker: idempotence needs only the
    /// newest batches, but an open transaction may start anywhere, and read_committed
    /// fetches need every abort. Headers only: about 60 bytes read per batch.
    fn rebuild_producer_state(&self, tp: &TopicPartition) -> Result<ProducerStates, Failure> {
        let mut states = ProducerStates::default();
        let mut record = |h: &RecordBatchHeader, control: Option<&[u8]>| {
            if !h.has_producer_id() {
                return;
            }
            if h.is_control() {
                if let Some((kind, coordinator_epoch)) = control.and_then(read_marker) {
                    states.record_marker(
                        h.producer_id,
                        h.producer_epoch,
                        coordinator_epoch,
                        kind,
                        h.base_offset,
                        h.max_timestamp,
                    );
                }
                return;
            }
            states.record(
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.records_count,
                h.base_offset,
                h.last_offset(),
            );
            states.set_last_timestamp(h.producer_id, h.max_timestamp);
            if h.is_transactional() {
                states.record_txn_data(h.producer_id, h.base_offset);
            }
        };
        let start = self
            .logs
            .with_log(tp, |log| {
                log.scan_recent_headers(usize::MAX, &mut record)?;
                Ok::<_, strom_log::LogError>(log.log_start_offset())
            })
            .unwrap_or(Ok(0))?;
        states.forget_below(start);
        states.expire(now_ms(), PRODUCER_ID_EXPIRATION_MS);
        Ok(states)
    }
}

/// Who is appending: decides which producer checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A Produce request: sequences are checked; a transactional batch that would open
    /// its producer's transaction here needs the token of a successful KIP-890 check.
    Client { verified: Option<u64> },
    /// The group coordinator's transactional offset commits: no sequences.
    Coordinator,
}
