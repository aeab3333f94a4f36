//! Fetch: whole batches from each requested partition, long-polling until `min_bytes`
//! have arrived or `max_wait_ms` has passed. The answer carries file slices, not record
//! bytes: the connection writes them to the socket with `sendfile`.

use std::sync::Arc;
use std::time::Duration;

use strom_log::TopicPartition;
use strom_wire::kafka_protocol::messages::FetchRequest;
use strom_wire::{ErrorCode, FetchPartitionOut, FetchTopicOut};

use super::{Reply, Response};
use crate::broker::Broker;
use crate::fetch_out::FetchOut;

/// The longest a fetch may wait, whatever the client asks (protects shutdown).
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// One partition to read, resolved from name or topic id.
struct Wanted {
    topic: String,
    topic_id: uuid::Uuid,
    known: bool,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
}

pub(super) fn fetch(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> Reply {
    let mut wanted = Vec::new();
    for t in &req.topics {
        let meta = if version >= 13 {
            broker.topics().by_id(t.topic_id)
        } else {
            broker.topics().get(t.topic.0.as_str())
        };
        let (topic, known_partitions) = match &meta {
            Some(m) => (m.name.clone(), m.partitions),
            None => (t.topic.0.to_string(), 0),
        };
        for p in &t.partitions {
            wanted.push(Wanted {
                topic: topic.clone(),
                topic_id: meta.as_ref().map_or(t.topic_id, |m| m.id),
                known: meta.is_some() && p.partition >= 0 && p.partition < known_partitions,
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                leader_epoch: p.current_leader_epoch,
            });
        }
    }
    let read_committed = req.isolation_level == 1;
    let max_bytes = if req.max_bytes <= 0 {
        i32::MAX
    } else {
        req.max_bytes
    } as usize;
    let min_bytes = req.min_bytes.max(0) as usize;
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let unknown_topic_code = if version >= 13 {
        ErrorCode::UnknownTopicId
    } else {
        ErrorCode::UnknownTopicOrPartition
    };

    let (out, bytes, errors) = read_all(
        broker,
        &wanted,
        max_bytes,
        read_committed,
        unknown_topic_code,
    );
    if bytes >= min_bytes || errors || wait.is_zero() {
        return Reply::now(Response::Fetch(out));
    }
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + wait;
        // Woken by the partitions this fetch reads, not by every commit of the node.
        let mut watched: Vec<_> = wanted
            .iter()
            .filter_map(|w| {
                broker
                    .data()
                    .subscribe(&TopicPartition::new(w.topic.clone(), w.partition))
            })
            .collect();
        for rx in &mut watched {
            rx.mark_unchanged();
        }
        let mut stopping = broker.subscribe_stopping();
        loop {
            let (out, bytes, errors) = read_all(
                &broker,
                &wanted,
                max_bytes,
                read_committed,
                unknown_topic_code,
            );
            if bytes >= min_bytes
                || errors
                || tokio::time::Instant::now() >= deadline
                || *stopping.borrow()
            {
                return Response::Fetch(out);
            }
            let any_changed = async {
                if watched.is_empty() {
                    return std::future::pending().await;
                }
                let changes = watched.iter_mut().map(|rx| Box::pin(rx.changed()));
                futures_util::future::select_all(changes).await.0
            };
            tokio::select! {
                changed = any_changed => {
                    // A partition stopped being served here: the next read says why.
                    if changed.is_err() {
                        watched.clear();
                        let (out, _, _) = read_all(&broker, &wanted, max_bytes, read_committed, unknown_topic_code);
                        return Response::Fetch(out);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
                _ = stopping.changed() => {}
            }
        }
    }))
}

/// Reads every wanted partition once. Returns the answer, the record bytes in it, and
/// whether any partition has an error (which ends long polling).
fn read_all(
    broker: &Broker,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    unknown_topic: ErrorCode,
) -> (FetchOut, usize, bool) {
    let mut topics: Vec<FetchTopicOut> = Vec::new();
    let mut records = Vec::with_capacity(wanted.len());
    let mut total = 0usize;
    let mut errors = false;
    for w in wanted {
        let mut pd = FetchPartitionOut {
            partition_index: w.partition,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: read_committed.then(Vec::new),
            preferred_read_replica: -1,
            records_len: 0,
        };
        let mut slice = None;
        // The topic the request named must still be the one it resolved to: a long poll
        // may outlive it, and a topic of the same name created since is another topic.
        let known = w.known
            && broker
                .topics()
                .get(&w.topic)
                .is_some_and(|t| t.id == w.topic_id);
        // The response limit is soft: the first partition with data returns at least
        // one whole batch.
        let budget = if total < max_bytes || total == 0 {
            (w.max_bytes.max(0) as usize)
                .min(max_bytes.saturating_sub(total))
                .max(1)
        } else {
            0
        };
        let tp = TopicPartition::new(w.topic.clone(), w.partition);
        match known.then(|| {
            broker
                .data()
                .fetch(&tp, w.offset, budget, w.leader_epoch, read_committed)
        }) {
            None => {
                pd.error_code = unknown_topic.code();
                errors = true;
            }
            Some(Ok(f)) => {
                pd.high_watermark = f.high_watermark;
                pd.last_stable_offset = f.last_stable_offset;
                pd.log_start_offset = f.log_start_offset;
                if let Some(list) = pd.aborted_transactions.as_mut() {
                    list.extend(f.aborted.iter().map(|a| (a.producer_id, a.first_offset)));
                }
                if f.out_of_range {
                    pd.error_code = ErrorCode::OffsetOutOfRange.code();
                    errors = true;
                } else if let Some(s) = f.slice {
                    total += s.len as usize;
                    pd.records_len = s.len as usize;
                    slice = Some(s);
                }
            }
            Some(Err(f)) => {
                if f.code == ErrorCode::KafkaStorageError {
                    tracing::warn!(partition = %tp.dir_name(), error = %f.message, "fetch read failed");
                }
                pd.error_code = match f.code {
                    ErrorCode::UnknownTopicOrPartition => unknown_topic.code(),
                    code => code.code(),
                };
                errors = true;
            }
        }
        records.push(slice);
        match topics.last_mut() {
            Some(t) if t.name == w.topic && t.topic_id == *w.topic_id.as_bytes() => {
                t.partitions.push(pd)
            }
            _ => topics.push(FetchTopicOut {
                name: w.topic.clone(),
                topic_id: *w.topic_id.as_bytes(),
                partitions: vec![pd],
            }),
        }
    }
    (
        FetchOut {
            error_code: 0,
            topics,
            records,
        },
        total,
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use strom_wire::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    /// A long poll that outlives its topic answers UNKNOWN_TOPIC_OR_PARTITION, not
    /// OFFSET_OUT_OF_RANGE (librdkafka would reset its position on the latter).
    #[test]
    fn long_poll_over_a_deleted_topic_reports_it_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The broker's tasks (group commits) run on the runtime it opens in.
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[]);
        rt.block_on(
            broker
                .control()
                .create_topic("t", 1, -1, None, BTreeMap::new(), false),
        )
        .unwrap();
        let req = FetchRequest::default()
            .with_max_wait_ms(50)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(crate::handlers::topic_name("t"))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_current_leader_epoch(-1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]);
        let Reply::Later(pending) = fetch(&broker, req, 12) else {
            panic!("an empty partition long-polls");
        };
        rt.block_on(broker.control().delete_topic("t")).unwrap();
        let Response::Fetch(out) = rt.block_on(pending) else {
            panic!("a Fetch answer");
        };
        let p = &out.topics[0].partitions[0];
        assert_eq!(p.error_code, ErrorCode::UnknownTopicOrPartition.code());
        broker.close().unwrap();
    }

    fn fetch_by_id(id: uuid::Uuid) -> FetchRequest {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_current_leader_epoch(-1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    }

    fn fetch_error(broker: &Arc<Broker>, id: uuid::Uuid) -> (i16, [u8; 16]) {
        let Reply::Now(reply) = fetch(broker, fetch_by_id(id), 13) else {
            panic!("an immediate Fetch answer");
        };
        let Response::Fetch(out) = *reply else {
            panic!("a Fetch answer");
        };
        let t = &out.topics[0];
        (t.partitions[0].error_code, t.topic_id)
    }

    /// Fetch v13+ names topics by id: the id of a topic deleted and created again under
    /// its name is stale (UNKNOWN_TOPIC_ID), the new id reads the new topic.
    #[test]
    fn fetch_by_a_stale_topic_id_is_unknown_topic_id() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[("offsets_topic_partitions", "1")]);
        let create = || {
            rt.block_on(
                broker
                    .control()
                    .create_topic("t", 1, -1, None, BTreeMap::new(), false),
            )
            .unwrap()
        };
        let old = create();
        let (code, id) = fetch_error(&broker, old.id);
        assert_eq!((code, id), (0, *old.id.as_bytes()));
        rt.block_on(broker.control().delete_topic("t")).unwrap();
        let new = create();
        assert_ne!(new.id, old.id);
        assert_eq!(
            fetch_error(&broker, old.id),
            (ErrorCode::UnknownTopicId.code(), *old.id.as_bytes())
        );
        assert_eq!(fetch_error(&broker, new.id), (0, *new.id.as_bytes()));
        assert_eq!(
            fetch_error(&broker, uuid::Uuid::nil()).0,
            ErrorCode::UnknownTopicId.code()
        );
        broker.close().unwrap();
    }
}
