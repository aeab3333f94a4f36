//! Fetch: whole batches from each requested partition, long-polling until `min_bytes`
//! have arrived or `max_wait_ms` has passed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strom_log::TopicPartition;
use strom_wire::ErrorCode;
use strom_wire::kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use strom_wire::kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind, TopicName};

use super::{Reply, check_leader_epoch, topic_name};
use crate::broker::Broker;

/// The longest a fetch may wait, whatever the client asks (protects shutdown).
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// One partition to read, resolved from name or topic id.
struct Wanted {
    topic: TopicName,
    topic_id: uuid::Uuid,
    known: bool,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
}

pub fn fetch(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> Reply {
    let mut wanted = Vec::new();
    for t in &req.topics {
        let meta = if version >= 13 {
            broker.topics.by_id(t.topic_id)
        } else {
            broker.topics.get(t.topic.0.as_str())
        };
        let (topic, known_partitions) = match &meta {
            Some(m) => (topic_name(m.name.clone()), m.partitions),
            None => (t.topic.clone(), 0),
        };
        for p in &t.partitions {
            wanted.push(Wanted {
                topic: topic.clone(),
                topic_id: t.topic_id,
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

    let (response, bytes, errors) = read_all(
        broker,
        &wanted,
        max_bytes,
        read_committed,
        unknown_topic_code,
    );
    if bytes >= min_bytes || errors || wait.is_zero() {
        return Reply::Now(ResponseKind::Fetch(response));
    }
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + wait;
        let mut appends = broker.subscribe_appends();
        loop {
            let (response, bytes, errors) = read_all(
                &broker,
                &wanted,
                max_bytes,
                read_committed,
                unknown_topic_code,
            );
            if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
                return ResponseKind::Fetch(response);
            }
            tokio::select! {
                changed = appends.changed() => {
                    if changed.is_err() {
                        return ResponseKind::Fetch(response);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }))
}

/// Reads every wanted partition once. Returns the response, the record bytes in it, and
/// whether any partition has an error (which ends long polling).
fn read_all(
    broker: &Broker,
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    unknown_topic: ErrorCode,
) -> (FetchResponse, usize, bool) {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut total = 0usize;
    let mut errors = false;
    for w in wanted {
        let mut pd = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new()))
            .with_aborted_transactions(read_committed.then(Vec::new))
            .with_preferred_read_replica((-1).into());
        let epoch_check = check_leader_epoch(w.leader_epoch);
        if !w.known {
            pd = pd.with_error_code(unknown_topic.code());
            errors = true;
        } else if epoch_check != ErrorCode::None {
            pd = pd.with_error_code(epoch_check.code());
            errors = true;
        } else {
            let tp = TopicPartition::new(w.topic.0.to_string(), w.partition);
            let (start, end) = broker.offsets(&tp).unwrap_or((0, 0));
            pd = pd
                .with_high_watermark(end)
                .with_last_stable_offset(end)
                .with_log_start_offset(start);
            if w.offset < start || w.offset > end {
                pd = pd.with_error_code(ErrorCode::OffsetOutOfRange.code());
                errors = true;
            } else if w.offset < end && (total < max_bytes || total == 0) {
                // The response limit is soft: the first partition with data returns at
                // least one whole batch.
                let budget = (w.max_bytes.max(0) as usize)
                    .min(max_bytes.saturating_sub(total))
                    .max(1);
                match broker.read(&tp, w.offset, budget) {
                    Ok(read) => {
                        total += read.records.len();
                        pd = pd
                            .with_high_watermark(read.high_watermark)
                            .with_last_stable_offset(read.high_watermark)
                            .with_records(Some(read.records));
                    }
                    Err(f) => {
                        tracing::warn!(partition = %tp.dir_name(), error = %f.message, "fetch read failed");
                        pd = pd.with_error_code(f.code.code());
                        errors = true;
                    }
                }
            }
        }
        match topics.last_mut() {
            Some(t) if t.topic == w.topic && t.topic_id == w.topic_id => t.partitions.push(pd),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(w.topic.clone())
                    .with_topic_id(w.topic_id)
                    .with_partitions(vec![pd]),
            ),
        }
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}
