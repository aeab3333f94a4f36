//! Unit tests of every handler and its error paths, through the harness.

use strom_codes::ErrorCode;

use super::harness::{COORDINATOR_EPOCH, Harness};
use super::*;
use crate::config::TxnConfig;
use crate::effects::TransactionResult;
use crate::request::*;
use crate::state::TransactionState::*;

use ErrorCode as E;

const T: &str = "txn-a";

/// A transaction with partitions `t-0` and `t-1` added: (producer id, epoch).
fn ongoing(h: &mut Harness) -> (i64, i16) {
    let r = h.init(T);
    assert_eq!(
        h.add(T, r.producer_id, r.producer_epoch, &[("t", 0), ("t", 1)]),
        E::None
    );
    (r.producer_id, r.producer_epoch)
}

fn init_req(txn: &str, timeout: i32) -> InitProducerIdRequest {
    InitProducerIdRequest {
        api_version: 4,
        transactional_id: txn.into(),
        transaction_timeout_ms: timeout,
        producer_id: -1,
        producer_epoch: -1,
    }
}

// ---- InitProducerId ----

#[test]
fn init_creates_an_id_at_epoch_zero_and_records_it() {
    let mut h = Harness::new();
    let r = h.init(T);
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, 1000, 0)
    );
    let p = h.c.partition_for(T);
    assert_eq!(h.log[&p].len(), 1);
    let m = h.meta(T);
    assert_eq!((m.state, m.timeout_ms, m.pending), (Empty, 60_000, None));
}

#[test]
fn init_again_bumps_the_epoch_of_the_same_id() {
    let mut h = Harness::new();
    h.init(T);
    let r = h.init_with(T, 30_000, None);
    assert_eq!((r.producer_id, r.producer_epoch), (1000, 1));
    assert_eq!(h.meta(T).timeout_ms, 30_000);
    assert_eq!(h.next_producer_id, 1001, "no second id allocated");
}

#[test]
fn init_refuses_bad_requests_and_timeouts() {
    let mut h = Harness::new();
    assert_eq!(h.init_with("", 1000, None).error, E::InvalidRequest);
    let id = h.send_init(InitProducerIdRequest {
        producer_id: 5,
        ..init_req(T, 1000)
    });
    assert_eq!(h.answer(id).unwrap().error(), E::InvalidRequest);
    assert_eq!(h.init_with(T, 0, None).error, E::InvalidTransactionTimeout);
    assert_eq!(
        h.init_with(T, 15 * 60 * 1000 + 1, None).error,
        E::InvalidTransactionTimeout
    );
    assert_eq!(h.init_with(T, 15 * 60 * 1000, None).error, E::None);
}

#[test]
fn init_of_a_partition_not_served_or_loading() {
    let mut h = Harness::new();
    let p = h.c.partition_for(T);
    h.c.unload(p);
    assert_eq!(h.init(T).error, E::NotCoordinator);
    h.c.begin_load(p, 9);
    assert_eq!(h.init(T).error, E::CoordinatorLoadInProgress);
    h.c.finish_load(p, h.now);
    assert_eq!(h.init(T).error, E::None);
}

#[test]
fn init_while_a_record_is_in_flight_is_concurrent() {
    let mut h = Harness::new();
    h.auto_complete = false;
    let first = h.send_init(init_req(T, 1000));
    assert_eq!(
        h.answer(first),
        None,
        "not answered before the record is durable"
    );
    assert_eq!(h.init(T).error, E::ConcurrentTransactions);
    h.complete_writes();
    assert_eq!(h.answer(first).unwrap().error(), E::None);
}

#[test]
fn init_answers_the_allocators_error() {
    let mut h = Harness::new();
    let fx =
        h.c.init_producer_id(RequestId(1), &init_req(T, 1000), h.now, || {
            Err(E::CoordinatorLoadInProgress)
        });
    assert_eq!(fx.responses[0].1.error(), E::CoordinatorLoadInProgress);
    assert!(fx.writes.is_empty());
}

#[test]
fn failed_init_record_is_answered_and_leaves_nothing_pending() {
    let mut h = Harness::new();
    h.init(T);
    h.auto_complete = false;
    let id = h.send_init(init_req(T, 1000));
    h.fail_write(ErrorCode::NotEnoughReplicas);
    assert_eq!(h.answer(id).unwrap().error(), E::CoordinatorNotAvailable);
    assert_eq!(h.meta(T).pending, None);
    assert_eq!(h.meta(T).producer_epoch, 0);
    h.auto_complete = true;
    assert_eq!(h.init(T).producer_epoch, 1);
}

#[test]
fn init_fences_an_ongoing_transaction_and_asks_to_retry() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    assert_eq!(h.init(T).error, E::ConcurrentTransactions);
    // The abort is durable, with the old producer fenced by a bumped epoch.
    let m = h.meta(T);
    assert_eq!((m.state, m.producer_epoch), (PrepareAbort, epoch + 1));
    assert_eq!(h.markers.len(), 1);
    let work = h.markers[0].clone();
    assert_eq!(work.result, TransactionResult::Abort);
    assert_eq!((work.producer_id, work.producer_epoch), (pid, epoch + 1));
    assert_eq!(work.coordinator_epoch, COORDINATOR_EPOCH);
    assert_eq!(h.add(T, pid, epoch, &[("t", 2)]), E::ProducerFenced);
    // Until the markers are written, a retry is still concurrent.
    assert_eq!(h.init(T).error, E::ConcurrentTransactions);
    h.write_markers();
    assert_eq!(h.meta(T).state, CompleteAbort);
    let r = h.init(T);
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, pid, epoch + 2)
    );
}

#[test]
fn init_kip_360_recovery() {
    let mut h = Harness::new();
    let r = h.init(T);
    let (pid, e0) = (r.producer_id, r.producer_epoch);
    // The producer re-initialises with its current id and epoch: bumped.
    let r = h.init_with(T, 60_000, Some((pid, e0)));
    assert_eq!((r.error, r.producer_epoch), (E::None, e0 + 1));
    // A retry of that call (the answer was lost) gets the same epoch.
    let r = h.init_with(T, 60_000, Some((pid, e0)));
    assert_eq!((r.error, r.producer_epoch), (E::None, e0 + 1));
    // An older epoch, or another id, is fenced; old versions say INVALID_PRODUCER_EPOCH.
    h.init(T); // a new producer: last epoch forgotten
    assert_eq!(
        h.init_with(T, 60_000, Some((pid, e0 + 1))).error,
        E::ProducerFenced
    );
    assert_eq!(
        h.init_with(T, 60_000, Some((pid + 7, 0))).error,
        E::ProducerFenced
    );
    let id = h.send_init(InitProducerIdRequest {
        api_version: 3,
        producer_id: pid + 7,
        producer_epoch: 0,
        ..init_req(T, 60_000)
    });
    assert_eq!(h.answer(id).unwrap().error(), E::InvalidProducerEpoch);
}

#[test]
fn exhausted_epoch_gets_a_new_producer_id() {
    let mut h = Harness::new();
    let r = h.init(T);
    h.c.txns.get_mut(T).unwrap().producer_epoch = i16::MAX - 1;
    // A KIP-360 producer re-initialising at the last epoch gets a new id at epoch 0.
    let r2 = h.init_with(T, 60_000, Some((r.producer_id, i16::MAX - 1)));
    assert_eq!((r2.error, r2.producer_epoch), (E::None, 0));
    assert_ne!(r2.producer_id, r.producer_id);
    assert_eq!(h.meta(T).previous_producer_id, r.producer_id);
    assert_eq!(h.meta(T).last_producer_epoch, i16::MAX - 1);
    // A retry of that call (old id, exhausted epoch) gets the same answer.
    let r3 = h.init_with(T, 60_000, Some((r.producer_id, i16::MAX - 1)));
    assert_eq!(
        (r3.error, r3.producer_id, r3.producer_epoch),
        (E::None, r2.producer_id, 0)
    );
    // Without an expected epoch, exhaustion also rotates.
    h.c.txns.get_mut(T).unwrap().producer_epoch = i16::MAX - 1;
    let r4 = h.init(T);
    assert_eq!((r4.error, r4.producer_epoch), (E::None, 0));
    assert_ne!(r4.producer_id, r2.producer_id);
}

// ---- AddPartitionsToTxn / AddOffsetsToTxn / verify ----

#[test]
fn add_partitions_errors() {
    let mut h = Harness::new();
    assert_eq!(h.add(T, 1, 0, &[("t", 0)]), E::InvalidProducerIdMapping);
    let r = h.init(T);
    let (pid, epoch) = (r.producer_id, r.producer_epoch);
    assert_eq!(h.add("", pid, epoch, &[("t", 0)]), E::InvalidRequest);
    assert_eq!(
        h.add(T, pid + 1, epoch, &[("t", 0)]),
        E::InvalidProducerIdMapping
    );
    assert_eq!(h.add(T, pid, epoch + 1, &[("t", 0)]), E::ProducerFenced);
    let id = h.c.add_partitions_to_txn(
        RequestId(99),
        &AddPartitionsToTxnRequest {
            api_version: 1,
            transactional_id: T.into(),
            producer_id: pid,
            producer_epoch: epoch + 1,
            partitions: vec![TopicPartition::new("t", 0)],
            transaction_version: 0,
        },
        h.now,
    );
    assert_eq!(id.responses[0].1.error(), E::InvalidProducerEpoch);
}

#[test]
fn add_partitions_starts_the_transaction_and_skips_known_partitions() {
    let mut h = Harness::new();
    h.now = 5_000;
    let (pid, epoch) = ongoing(&mut h);
    let m = h.meta(T);
    assert_eq!(
        (m.state, m.start_timestamp, m.partitions.len()),
        (Ongoing, 5_000, 2)
    );
    let p = h.c.partition_for(T);
    let records = h.log[&p].len();
    h.now = 6_000;
    let id = h.send_add(T, pid, epoch, &[("t", 1)], 0);
    match h.answer(id) {
        Some(Response::AddPartitionsToTxn(r)) => {
            assert_eq!(r.transactional_id, T);
            assert_eq!(r.results, vec![(TopicPartition::new("t", 1), E::None)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.log[&p].len(), records, "nothing written");
    assert_eq!(h.add(T, pid, epoch, &[("u", 0)]), E::None);
    assert_eq!(h.meta(T).start_timestamp, 5_000);
    assert_eq!(h.log[&p].len(), records + 1);
}

#[test]
fn add_partitions_while_ending_is_concurrent() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    assert_eq!(h.end(T, pid, epoch, true), E::None);
    assert_eq!(h.add(T, pid, epoch, &[("t", 9)]), E::ConcurrentTransactions);
    h.auto_complete = false;
    h.write_markers();
    // The Complete record is in flight: still pending.
    assert_eq!(h.add(T, pid, epoch, &[("t", 9)]), E::ConcurrentTransactions);
    h.complete_writes();
    assert_eq!(h.meta(T).state, CompleteCommit);
}

#[test]
fn add_offsets_adds_the_groups_offsets_partition() {
    let mut h = Harness::new();
    let r = h.init(T);
    assert_eq!(
        h.add_offsets(T, r.producer_id, r.producer_epoch, "my-group"),
        E::None
    );
    let expected = TopicPartition::new(
        CONSUMER_OFFSETS_TOPIC,
        strom_group::partition_for("my-group", 50),
    );
    assert!(h.meta(T).partitions.contains(&expected));
    assert_eq!(h.meta(T).state, Ongoing);
    assert_eq!(
        h.add_offsets(T, r.producer_id, r.producer_epoch + 1, "my-group"),
        E::ProducerFenced
    );
}

#[test]
fn verify_only_answers_membership_and_writes_nothing() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    let parts = [TopicPartition::new("t", 0), TopicPartition::new("t", 5)];
    let r = h.c.verify_partitions(T, pid, epoch, &parts);
    assert_eq!(
        r.results,
        vec![
            (parts[0].clone(), E::None),
            (parts[1].clone(), E::TransactionAbortable)
        ]
    );
    let first = |r: AddPartitionsToTxnResponse| r.results[0].1;
    assert_eq!(
        first(h.c.verify_partitions(T, pid, epoch + 1, &parts)),
        E::ProducerFenced
    );
    assert_eq!(
        first(h.c.verify_partitions(T, pid + 1, epoch, &parts)),
        E::InvalidProducerIdMapping
    );
    assert_eq!(
        first(h.c.verify_partitions("nope", pid, epoch, &parts)),
        E::InvalidProducerIdMapping
    );
    assert_eq!(
        first(h.c.verify_partitions("", pid, epoch, &parts)),
        E::InvalidRequest
    );
    assert_eq!(h.end(T, pid, epoch, true), E::None);
    assert_eq!(
        first(h.c.verify_partitions(T, pid, epoch, &parts)),
        E::ConcurrentTransactions
    );
}

// ---- EndTxn, transaction version 1 ----

#[test]
fn commit_answers_after_prepare_and_hands_out_markers() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.auto_complete = false;
    let id = h.send_end(T, pid, epoch, true, 3);
    assert_eq!(h.answer(id), None);
    assert!(h.markers.is_empty(), "no markers before Prepare is durable");
    h.complete_writes();
    let r = h.answer(id).unwrap();
    assert_eq!(r, Response::EndTxn(EndTxnResponse::error(E::None)));
    assert_eq!(h.meta(T).state, PrepareCommit);
    assert_eq!(h.markers.len(), 1);
    let m = &h.markers[0];
    assert_eq!(m.result, TransactionResult::Commit);
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.transaction_version),
        (pid, epoch, 0)
    );
    assert_eq!(
        m.partitions,
        vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
    );
}

#[test]
fn end_v1_retries_and_wrong_states() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    assert_eq!(h.end(T, pid + 1, epoch, true), E::InvalidProducerIdMapping);
    assert_eq!(h.end(T, pid, epoch + 1, true), E::ProducerFenced);
    assert_eq!(
        h.end_with(T, pid, epoch + 1, true, 1).error,
        E::InvalidProducerEpoch
    );
    assert_eq!(h.end(T, pid, epoch, true), E::None);
    // Markers in flight: a retried commit is concurrent, an abort is the wrong state.
    assert_eq!(h.end(T, pid, epoch, true), E::ConcurrentTransactions);
    h.write_markers();
    assert_eq!(h.meta(T).state, CompleteCommit);
    assert_eq!(h.end(T, pid, epoch, true), E::None, "retried commit");
    assert_eq!(h.end(T, pid, epoch, false), E::InvalidTxnState);
    assert_eq!(
        h.end("unknown", pid, epoch, false),
        E::InvalidProducerIdMapping
    );
    assert_eq!(h.end("", pid, epoch, false), E::InvalidRequest);
    // Empty: nothing to end.
    let r = h.init("txn-b");
    assert_eq!(
        h.end("txn-b", r.producer_id, r.producer_epoch, false),
        E::InvalidTxnState
    );
}

#[test]
fn prepare_states_refuse_the_other_outcome() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    assert_eq!(h.end(T, pid, epoch, false), E::None);
    // While markers are written the pending Complete makes everything concurrent.
    assert_eq!(h.end(T, pid, epoch, true), E::ConcurrentTransactions);
    // Without a pending transition (a loaded PrepareAbort), Kafka's state checks apply.
    h.c.txns.get_mut(T).unwrap().pending = None;
    assert_eq!(h.end(T, pid, epoch, true), E::InvalidTxnState);
    assert_eq!(h.end(T, pid, epoch, false), E::ConcurrentTransactions);
}

#[test]
fn failed_prepare_record_is_answered_and_the_transaction_stays_ongoing() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.auto_complete = false;
    let id = h.send_end(T, pid, epoch, true, 3);
    h.fail_write(ErrorCode::NotLeaderOrFollower);
    assert_eq!(h.answer(id).unwrap().error(), E::NotCoordinator);
    assert_eq!((h.meta(T).state, h.meta(T).pending), (Ongoing, None));
    assert!(h.markers.is_empty());
}

// ---- EndTxn, transaction version 2 ----

#[test]
fn end_v2_bumps_the_epoch_and_answers_it() {
    let mut h = Harness::new();
    let r = h.init(T);
    let (pid, e) = (r.producer_id, r.producer_epoch);
    let id = h.send_add(T, pid, e, &[("t", 0)], 2);
    assert_eq!(h.answer(id).unwrap().error(), E::None);
    let r = h.end_with(T, pid, e, true, 5);
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, pid, e + 1)
    );
    assert_eq!(h.markers[0].producer_epoch, e + 1);
    assert_eq!(h.markers[0].transaction_version, 2);
    h.write_markers();
    let m = h.meta(T);
    assert_eq!(
        (m.state, m.producer_epoch, m.last_producer_epoch),
        (CompleteCommit, e + 1, e)
    );
    // A retry with the old epoch: NONE and the current epoch. An abort retry: ITS.
    let r = h.end_with(T, pid, e, true, 5);
    assert_eq!((r.error, r.producer_epoch), (E::None, e + 1));
    assert_eq!(h.end_with(T, pid, e, false, 5).error, E::InvalidTxnState);
    // A commit with the current epoch and nothing open: ITS.
    assert_eq!(h.end_with(T, pid, e + 1, true, 5).error, E::InvalidTxnState);
    // An older epoch still is fenced.
    assert_eq!(h.end_with(T, pid, e - 1, true, 5).error, E::ProducerFenced);
}

#[test]
fn end_v2_abort_of_nothing_completes_without_markers() {
    let mut h = Harness::new();
    let r = h.init(T);
    let (pid, e) = (r.producer_id, r.producer_epoch);
    assert_eq!(h.end_with(T, pid, e + 1, false, 5).error, E::ProducerFenced);
    let r = h.end_with(T, pid, e, false, 5);
    assert_eq!((r.error, r.producer_epoch), (E::None, e + 1));
    assert!(h.markers.is_empty());
    assert_eq!(h.meta(T).state, CompleteAbort);
    // Retried: NONE.
    assert_eq!(h.end_with(T, pid, e, false, 5).error, E::None);
    // Empty + commit is the wrong state; Empty + abort retry is fenced.
    let r = h.init("txn-b");
    assert_eq!(
        h.end_with("txn-b", r.producer_id, r.producer_epoch, true, 5)
            .error,
        E::InvalidTxnState
    );
}

#[test]
fn end_v2_at_the_last_epoch_moves_to_a_new_producer_id() {
    let mut h = Harness::new();
    let r = h.init(T);
    let pid = r.producer_id;
    let last = i16::MAX - 1;
    h.c.txns.get_mut(T).unwrap().producer_epoch = last;
    let id = h.send_add(T, pid, last, &[("t", 0)], 2);
    assert_eq!(h.answer(id).unwrap().error(), E::None);
    let r = h.end_with(T, pid, last, true, 5);
    let new_pid = h.next_producer_id - 1;
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, new_pid, 0)
    );
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.write_markers();
    let m = h.meta(T);
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.previous_producer_id),
        (new_pid, 0, pid)
    );
    // The retry with the old id and last epoch is recognised.
    let r = h.end_with(T, pid, last, true, 5);
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, new_pid, 0)
    );
}

// ---- Markers and time ----

#[test]
fn partial_marker_reports_and_failures_are_retried() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    assert_eq!(h.end(T, pid, epoch, true), E::None);
    let work = h.markers.remove(0);
    // One partition done.
    let fx =
        h.c.markers_written(T, pid, epoch, &work.partitions[..1], h.now);
    assert!(fx.is_empty());
    // A stale report (old epoch) is ignored.
    let fx =
        h.c.markers_written(T, pid, epoch - 1, &work.partitions, h.now);
    assert!(fx.is_empty());
    h.c.markers_failed(T, pid, epoch, h.now);
    assert_eq!(h.c.next_deadline(), Some(h.now + 100));
    h.now += 99;
    h.tick();
    assert!(h.markers.is_empty());
    h.now += 1;
    h.tick();
    assert_eq!(h.markers.len(), 1);
    assert_eq!(h.markers[0].partitions, work.partitions[1..].to_vec());
    h.write_markers();
    assert_eq!(h.meta(T).state, CompleteCommit);
    assert_eq!(h.c.next_deadline(), None);
}

#[test]
fn unreported_markers_are_handed_out_again() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.end(T, pid, epoch, false);
    h.markers.clear(); // the broker lost them
    h.now += 30_000;
    h.tick();
    assert_eq!(h.markers.len(), 1);
}

#[test]
fn failed_complete_record_is_written_again() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.end(T, pid, epoch, true);
    h.auto_complete = false;
    h.write_markers();
    h.fail_write(ErrorCode::NotEnoughReplicas);
    assert_eq!(h.meta(T).pending, Some(CompleteCommit));
    h.now += 100;
    h.tick();
    assert_eq!(h.in_flight.len(), 1);
    h.complete_writes();
    assert_eq!((h.meta(T).state, h.meta(T).pending), (CompleteCommit, None));
}

#[test]
fn timed_out_transactions_are_aborted_with_a_bumped_epoch() {
    let mut h = Harness::new();
    let r = h.init_with(T, 10_000, None);
    let (pid, epoch) = (r.producer_id, r.producer_epoch);
    h.add(T, pid, epoch, &[("t", 0)]);
    let start = h.meta(T).start_timestamp;
    assert_eq!(h.c.next_deadline(), Some(start + 10_001));
    h.now = start + 10_000;
    h.tick();
    assert_eq!(h.meta(T).state, Ongoing, "not past the timeout yet");
    h.now += 1;
    h.tick();
    let m = h.meta(T);
    assert_eq!((m.state, m.producer_epoch), (PrepareAbort, epoch + 1));
    assert_eq!(h.markers[0].result, TransactionResult::Abort);
    h.write_markers();
    assert_eq!(h.meta(T).state, CompleteAbort);
    // The producer is fenced.
    assert_eq!(h.add(T, pid, epoch, &[("t", 0)]), E::ProducerFenced);
    assert_eq!(h.end(T, pid, epoch, true), E::ProducerFenced);
}

#[test]
fn a_failed_fence_is_not_bumped_twice() {
    let mut h = Harness::new();
    let r = h.init_with(T, 10_000, None);
    h.add(T, r.producer_id, r.producer_epoch, &[("t", 0)]);
    h.auto_complete = false;
    h.now += 20_000;
    h.tick();
    h.fail_write(ErrorCode::RequestTimedOut);
    assert_eq!(h.meta(T).producer_epoch, r.producer_epoch + 1);
    h.auto_complete = true;
    h.tick();
    assert_eq!(h.meta(T).producer_epoch, r.producer_epoch + 1);
    assert_eq!(h.meta(T).state, PrepareAbort);
}

// ---- Loading ----

#[test]
fn replay_requires_a_loading_partition() {
    let mut h = Harness::new();
    h.init(T);
    let (k, v) = h.log[&h.c.partition_for(T)][0].clone();
    assert!(matches!(
        h.c.replay(&k, v.as_deref()),
        Err(TxnError::NotLoading { .. })
    ));
    // Corrupt values are errors, unknown key versions are skipped.
    let p = h.c.partition_for(T);
    h.c.begin_load(p, 4);
    assert!(h.c.replay(&k, Some(&[0, 1, 2])).is_err());
    assert!(h.c.replay(&[0, 9, 0, 0], Some(&[1])).is_ok());
}

#[test]
fn a_tombstone_forgets_the_id() {
    let mut h = Harness::new();
    h.init(T);
    let p = h.c.partition_for(T);
    h.log
        .get_mut(&p)
        .unwrap()
        .push((TransactionLogKey::new(T).encode(), None));
    let h2 = h.reloaded();
    assert!(h2.c.transaction(T).is_none());
}

#[test]
fn loading_a_prepared_transaction_finishes_it() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.end(T, pid, epoch, true);
    let mut h2 = h.reloaded();
    assert_eq!(h2.markers.len(), 1);
    assert_eq!(h2.markers[0].coordinator_epoch, COORDINATOR_EPOCH + 1);
    assert_eq!(h2.meta(T).pending, Some(CompleteCommit));
    h2.write_markers();
    assert_eq!(h2.meta(T).state, CompleteCommit);
}

#[test]
fn unload_answers_waiting_requests_and_forgets_everything() {
    let mut h = Harness::new();
    let (pid, epoch) = ongoing(&mut h);
    h.auto_complete = false;
    let id = h.send_end(T, pid, epoch, true, 3);
    let p = h.c.partition_for(T);
    let fx = h.c.unload(p);
    assert_eq!(
        fx.responses,
        vec![(
            id,
            Response::EndTxn(EndTxnResponse::error(E::NotCoordinator))
        )]
    );
    assert!(h.c.transaction(T).is_none());
    // The late report of the dropped record is ignored.
    let w = h.in_flight.remove(0);
    assert!(h.c.write_completed(w.id, Ok(()), h.now).is_empty());
}

// ---- Describe and List ----

#[test]
fn describe_transactions() {
    let mut h = Harness::new();
    h.now = 7_000;
    let (pid, epoch) = ongoing(&mut h);
    h.add(T, pid, epoch, &[("a", 3)]);
    let d =
        h.c.describe_transactions(&[T.into(), "nope".into(), "".into()]);
    assert_eq!(d[0].error, E::None);
    assert_eq!(d[0].transaction_state, "Ongoing");
    assert_eq!((d[0].producer_id, d[0].producer_epoch), (pid, epoch));
    assert_eq!(d[0].transaction_timeout_ms, 60_000);
    assert_eq!(d[0].transaction_start_time_ms, 7_000);
    assert_eq!(
        d[0].topics,
        vec![("a".into(), vec![3]), ("t".into(), vec![0, 1])]
    );
    assert_eq!(d[1].error, E::TransactionalIdNotFound);
    assert_eq!(d[2].error, E::InvalidRequest);
    h.c.unload(h.c.partition_for(T));
    assert_eq!(
        h.c.describe_transactions(&[T.into()])[0].error,
        E::NotCoordinator
    );
}

#[test]
fn list_transactions_filters() {
    let mut h = Harness::new();
    h.now = 1_000;
    let (pid, _) = ongoing(&mut h);
    h.now = 5_000;
    h.init("txn-b");
    let all = h.c.list_transactions(
        &ListTransactionsRequest {
            duration_filter_ms: -1,
            ..Default::default()
        },
        h.now,
    );
    assert_eq!(all.error, E::None);
    assert_eq!(all.transaction_states.len(), 2);
    let ongoing_only = h.c.list_transactions(
        &ListTransactionsRequest {
            state_filters: vec!["Ongoing".into(), "Bogus".into()],
            duration_filter_ms: -1,
            ..Default::default()
        },
        h.now,
    );
    assert_eq!(
        ongoing_only.unknown_state_filters,
        vec!["Bogus".to_string()]
    );
    assert_eq!(ongoing_only.transaction_states.len(), 1);
    assert_eq!(ongoing_only.transaction_states[0].transactional_id, T);
    let by_pid = h.c.list_transactions(
        &ListTransactionsRequest {
            producer_id_filters: vec![pid],
            duration_filter_ms: -1,
            ..Default::default()
        },
        h.now,
    );
    assert_eq!(by_pid.transaction_states.len(), 1);
    // Running longer than 3 s: only the transaction that started at 1 000.
    let long = h.c.list_transactions(
        &ListTransactionsRequest {
            state_filters: vec!["Ongoing".into()],
            duration_filter_ms: 3_000,
            ..Default::default()
        },
        h.now,
    );
    assert_eq!(long.transaction_states.len(), 1);
    let longer = h.c.list_transactions(
        &ListTransactionsRequest {
            duration_filter_ms: 4_000,
            state_filters: vec!["Ongoing".into()],
            ..Default::default()
        },
        h.now,
    );
    assert!(longer.transaction_states.is_empty());
    h.c.begin_load(h.c.partition_for("zzz"), 5);
    let loading =
        h.c.list_transactions(&ListTransactionsRequest::default(), h.now);
    assert_eq!(loading.error, E::CoordinatorLoadInProgress);
}

#[test]
fn set_partition_counts() {
    let mut c = TransactionCoordinator::new(TxnConfig::default());
    c.set_transaction_state_partitions(1);
    assert_eq!(c.partition_for("anything"), 0);
    c.set_offsets_topic_partitions(0);
    assert_eq!(c.config().offsets_topic_partitions, 1);
}

/// A partition's snapshot alone, replayed into a new coordinator, gives the same
/// transactions as its whole history; it is refused while a record is in flight.
#[test]
fn a_snapshot_restates_every_transaction_of_its_partition() {
    let mut h = Harness::with_config(TxnConfig {
        transaction_state_partitions: 1,
        ..TxnConfig::default()
    });
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let r = h.init(id);
        let tp = ("t", i as i32);
        assert_eq!(
            h.add(id, r.producer_id, r.producer_epoch, &[tp]),
            ErrorCode::None
        );
        match i {
            0 => {
                assert_eq!(
                    h.end(id, r.producer_id, r.producer_epoch, true),
                    ErrorCode::None
                );
                h.write_markers();
            }
            // Decided, markers not written: PrepareAbort must survive the snapshot.
            1 => assert_eq!(
                h.end(id, r.producer_id, r.producer_epoch, false),
                ErrorCode::None
            ),
            // Re-initialised: a bumped epoch.
            2 => {
                h.end(id, r.producer_id, r.producer_epoch, true);
                h.write_markers();
                h.init(id);
            }
            _ => {}
        }
    }
    let snapshot = h.c.snapshot(0).expect("nothing in flight");
    assert_eq!(snapshot.len(), 4);
    let mut from_snapshot = h.reloaded();
    from_snapshot
        .log
        .insert(0, snapshot.into_iter().map(|(k, v)| (k, Some(v))).collect());
    let replayed = from_snapshot.reloaded();
    let full = h.reloaded();
    for id in ["a", "b", "c", "d"] {
        let (mut x, mut y) = (full.meta(id), replayed.meta(id));
        // Neither side knows the last epoch after a replay.
        x.last_producer_epoch = -1;
        y.last_producer_epoch = -1;
        assert_eq!(x, y, "{id}");
    }
    // A record in flight: no snapshot until it is reported.
    h.auto_complete = false;
    h.send_init(InitProducerIdRequest {
        api_version: 4,
        transactional_id: "e".into(),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    });
    assert!(h.c.snapshot(0).is_none());
    h.complete_writes();
    assert!(h.c.snapshot(0).is_some());
}
