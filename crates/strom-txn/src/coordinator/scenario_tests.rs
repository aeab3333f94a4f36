//! A producer's life through the coordinator, end to end: transactions committed and
//! aborted, a timeout, a fencing InitProducerId, and a reload from the log that must
//! reproduce the same state.

use super::harness::Harness;
use crate::effects::TransactionResult;
use crate::metadata::{TopicPartition, TransactionMetadata};
use crate::state::TransactionState::*;
use strom_codes::ErrorCode as E;

const T: &str = "orders-processor";

/// What the log records of a transactional id (the last epoch is memory only).
fn durable(m: &TransactionMetadata) -> TransactionMetadata {
    TransactionMetadata {
        last_producer_epoch: -1,
        ..m.clone()
    }
}

#[test]
fn a_producers_life_and_a_reload() {
    let mut h = Harness::new();

    // 1. InitProducerId.
    let r = h.init_with(T, 20_000, None);
    assert_eq!(r.error, E::None);
    let (pid, e) = (r.producer_id, r.producer_epoch);

    // 2. A consume-transform-produce transaction: partitions, offsets, commit.
    h.now += 10;
    assert_eq!(h.add(T, pid, e, &[("out", 0), ("out", 1)]), E::None);
    assert_eq!(h.add_offsets(T, pid, e, "orders-group"), E::None);
    let offsets = TopicPartition::new(
        "__consumer_offsets",
        strom_group::partition_for("orders-group", 50),
    );
    assert_eq!(h.meta(T).partitions.len(), 3);
    assert_eq!(h.end(T, pid, e, true), E::None);
    assert_eq!(h.meta(T).state, PrepareCommit);

    // 3. The markers reach every partition, including the offsets partition.
    let work = h.write_markers();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].result, TransactionResult::Commit);
    assert!(work[0].partitions.contains(&offsets));
    assert_eq!(h.meta(T).state, CompleteCommit);
    assert!(h.meta(T).partitions.is_empty());

    // 4. The next transaction, aborted by the client.
    h.now += 10;
    assert_eq!(h.add(T, pid, e, &[("out", 2)]), E::None);
    assert_eq!(h.meta(T).start_timestamp, h.now);
    assert_eq!(h.end(T, pid, e, false), E::None);
    assert_eq!(h.write_markers()[0].result, TransactionResult::Abort);
    assert_eq!(h.meta(T).state, CompleteAbort);

    // 5. A transaction the producer forgets: the timeout aborts it and fences the producer.
    h.now += 10;
    assert_eq!(h.add(T, pid, e, &[("out", 0)]), E::None);
    h.now += 20_001;
    h.tick();
    assert_eq!(h.meta(T).producer_epoch, e + 1);
    h.write_markers();
    assert_eq!(h.meta(T).state, CompleteAbort);
    assert_eq!(h.add(T, pid, e, &[("out", 0)]), E::ProducerFenced);

    // 6. The producer restarts: a new epoch; it starts another transaction.
    let r = h.init_with(T, 20_000, None);
    assert_eq!(
        (r.error, r.producer_id, r.producer_epoch),
        (E::None, pid, e + 2)
    );
    let e2 = r.producer_epoch;
    assert_eq!(h.add(T, pid, e2, &[("out", 1)]), E::None);

    // 7. A second instance with the same transactional id fences it: the open
    //    transaction is aborted first and the newcomer retries.
    let r = h.init_with(T, 20_000, None);
    assert_eq!(r.error, E::ConcurrentTransactions);
    assert_eq!(h.end(T, pid, e2, true), E::ProducerFenced);
    let fence = h.write_markers();
    assert_eq!(
        (fence[0].result, fence[0].producer_epoch),
        (TransactionResult::Abort, e2 + 1)
    );
    let r = h.init_with(T, 20_000, None);
    assert_eq!((r.error, r.producer_epoch), (E::None, e2 + 2));
    let e3 = r.producer_epoch;

    // 8. Other transactional ids in other states, left open across the reload.
    let b = h.init("other-b");
    assert_eq!(
        h.add("other-b", b.producer_id, b.producer_epoch, &[("x", 0)]),
        E::None
    );
    let c = h.init("other-c");
    assert_eq!(
        h.add("other-c", c.producer_id, c.producer_epoch, &[("y", 3)]),
        E::None
    );
    assert_eq!(
        h.end("other-c", c.producer_id, c.producer_epoch, true),
        E::None
    );
    h.markers.clear(); // the node dies before writing other-c's markers

    // 9. Reload from the log: the same state, and the prepared commit finishes.
    let mut h2 = h.reloaded();
    for id in [T, "other-b"] {
        assert_eq!(h2.meta(id), durable(&h.meta(id)), "{id}");
    }
    let c_before = h.meta("other-c");
    let c_after = h2.meta("other-c");
    assert_eq!(c_after.state, PrepareCommit);
    assert_eq!(c_after.pending, Some(CompleteCommit));
    assert_eq!(
        TransactionMetadata {
            pending: None,
            ..c_after
        },
        durable(&TransactionMetadata {
            pending: None,
            ..c_before
        })
    );
    let redo = h2.write_markers();
    assert_eq!(redo.len(), 1);
    assert_eq!(redo[0].transactional_id, "other-c");
    assert_eq!(h2.meta("other-c").state, CompleteCommit);

    // 10. The reloaded coordinator serves the producer as before.
    assert_eq!(h2.add(T, pid, e3, &[("out", 0)]), E::None);
    assert_eq!(h2.end(T, pid, e3, true), E::None);
    h2.write_markers();
    assert_eq!(h2.meta(T).state, CompleteCommit);
    // And a reload of the reloaded log agrees with it.
    let h3 = h2.reloaded();
    for id in [T, "other-b", "other-c"] {
        assert_eq!(h3.meta(id), durable(&h2.meta(id)), "{id}");
    }
}
