//! The record checks of the produce path (docs/adr/0003-record-validation.md): the
//! rules a topic sets (timestamp type and bounds, its configs over the broker's
//! defaults), every record of every batch checked before anything is proposed
//! (strom-batch's `check_batch`), and each batch's header made to agree with its records.

use std::collections::BTreeMap;

use strom_batch::{
    CheckRules, CodecError, RecordBatchHeader, RecordError, TimestampType, check_batch,
};
use strom_wire::ErrorCode;

use crate::errors::Failure;

/// The broker-wide defaults of the record settings (Kafka's `log.message.timestamp.*`)
/// and the decompression bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordDefaults {
    pub log_append_time: bool,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
    pub difference_max_ms: i64,
    /// Largest records section a compressed batch may decompress to.
    pub max_decompressed_batch_bytes: usize,
}

/// One topic's timestamp rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampPolicy {
    /// `message.timestamp.type=LogAppendTime`: the broker's clock stamps each batch.
    pub log_append_time: bool,
    /// How far before / after the broker's clock a create time may be (KIP-937; the
    /// deprecated `message.timestamp.difference.max.ms` bounds both as well).
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampPolicy {
    /// The topic's configs (validated when set) over the broker's defaults.
    pub fn for_topic(defaults: &RecordDefaults, configs: &BTreeMap<String, String>) -> Self {
        let long = |k: &str, default: i64| {
            configs
                .get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        let difference = long(
            "message.timestamp.difference.max.ms",
            defaults.difference_max_ms,
        );
        TimestampPolicy {
            log_append_time: configs
                .get("message.timestamp.type")
                .map_or(defaults.log_append_time, |t| t == "LogAppendTime"),
            before_max_ms: long("message.timestamp.before.max.ms", defaults.before_max_ms)
                .min(difference),
            after_max_ms: long("message.timestamp.after.max.ms", defaults.after_max_ms)
                .min(difference),
        }
    }

    fn rules(
        &self,
        now: i64,
        max_decompressed_bytes: usize,
        sequence_required: bool,
    ) -> CheckRules {
        let unbounded = self.before_max_ms == i64::MAX && self.after_max_ms == i64::MAX;
        CheckRules {
            max_decompressed_bytes,
            sequence_required,
            timestamps: (!self.log_append_time && !unbounded).then(|| {
                (
                    now.saturating_sub(self.before_max_ms),
                    now.saturating_add(self.after_max_ms),
                )
            }),
        }
    }
}

/// Decompressed records kept at most this large between batches on a thread; a larger
/// buffer is given back after use.
const SCRATCH_KEEP_BYTES: usize = 4 << 20;

thread_local! {
    /// Where compressed batches are decompressed to be checked: one buffer per thread,
    /// reused, so a stream of compressed batches does not allocate per batch.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's decompression buffer.
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| {
        // Re-entered only if `f` itself called here, which the produce path never does.
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            return f(&mut Vec::new());
        };
        let r = f(&mut scratch);
        if scratch.capacity() > SCRATCH_KEEP_BYTES {
            *scratch = Vec::new();
        }
        r
    })
}

/// What a batch's header must say once checked: the timestamp type and max timestamp
/// [`stamp`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    timestamp_type: TimestampType,
    max_timestamp: i64,
}

/// Checks every record of the batch `batch` (whose header and CRC are valid) against
/// the topic's policy at `now`, and returns the header fields it must carry.
pub fn check(
    batch: &[u8],
    header: &RecordBatchHeader,
    policy: &TimestampPolicy,
    now: i64,
    max_decompressed_bytes: usize,
    sequence_required: bool,
    scratch: &mut Vec<u8>,
) -> Result<Stamp, Failure> {
    let rules = policy.rules(now, max_decompressed_bytes, sequence_required);
    let checked = check_batch(batch, header, &rules, scratch).map_err(failure)?;
    Ok(if policy.log_append_time {
        Stamp {
            timestamp_type: TimestampType::LogAppendTime,
            max_timestamp: now,
        }
    } else {
        Stamp {
            timestamp_type: TimestampType::CreateTime,
            max_timestamp: checked.max_timestamp,
        }
    })
}

/// Writes the checked header fields into the proposer's copy of a batch (a new CRC only
/// when a field changes, as Kafka's `setMaxTimestamp`).
pub fn stamp(batch: &mut [u8], stamp: Stamp) {
    RecordBatchHeader::set_max_timestamp(batch, stamp.timestamp_type, stamp.max_timestamp);
}

/// The Kafka error for refused records: INVALID_TIMESTAMP for timestamps, the codec
/// errors by what they mean, INVALID_RECORD for the rest, with the record's index where
/// one record is to blame.
pub fn failure(e: RecordError) -> Failure {
    let code = match &e {
        RecordError::Timestamp { .. } | RecordError::LogAppendTimeSet => {
            ErrorCode::InvalidTimestamp
        }
        RecordError::Codec(CodecError::Unsupported(_)) => ErrorCode::UnsupportedCompressionType,
        RecordError::Codec(CodecError::TooLarge { .. }) => ErrorCode::MessageTooLarge,
        RecordError::Codec(CodecError::Corrupt { .. }) => ErrorCode::CorruptMessage,
        _ => ErrorCode::InvalidRecord,
    };
    let mut f = Failure::new(code, e.to_string());
    f.record_index = e.record_index();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: RecordDefaults = RecordDefaults {
        log_append_time: false,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
        difference_max_ms: i64::MAX,
        max_decompressed_batch_bytes: 1 << 20,
    };

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn topic_configs_override_the_defaults() {
        let p = TimestampPolicy::for_topic(&DEFAULTS, &BTreeMap::new());
        assert!(!p.log_append_time);
        assert_eq!(p.rules(1000, 5, true).timestamps, None);
        let p = TimestampPolicy::for_topic(
            &DEFAULTS,
            &configs(&[
                ("message.timestamp.before.max.ms", "100"),
                ("message.timestamp.after.max.ms", "10"),
            ]),
        );
        assert_eq!(p.rules(1000, 5, true).timestamps, Some((900, 1010)));
        let p = TimestampPolicy::for_topic(
            &DEFAULTS,
            &configs(&[
                ("message.timestamp.difference.max.ms", "50"),
                ("message.timestamp.after.max.ms", "10"),
            ]),
        );
        assert_eq!(p.rules(1000, 5, true).timestamps, Some((950, 1010)));
        let p = TimestampPolicy::for_topic(
            &DEFAULTS,
            &configs(&[("message.timestamp.type", "LogAppendTime")]),
        );
        assert!(p.log_append_time);
        assert_eq!(p.rules(1000, 5, true).timestamps, None);
        let defaults = RecordDefaults {
            log_append_time: true,
            ..DEFAULTS
        };
        let p = TimestampPolicy::for_topic(
            &defaults,
            &configs(&[("message.timestamp.type", "CreateTime")]),
        );
        assert!(!p.log_append_time);
    }

    #[test]
    fn errors_map_to_kafkas_codes() {
        let f = failure(RecordError::Malformed {
            index: 3,
            reason: "x".into(),
        });
        assert_eq!(
            (f.code, f.record_index),
            (ErrorCode::InvalidRecord, Some(3))
        );
        assert_eq!(
            failure(RecordError::Codec(CodecError::Unsupported(6))).code,
            ErrorCode::UnsupportedCompressionType
        );
        assert_eq!(
            failure(RecordError::LogAppendTimeSet).code,
            ErrorCode::InvalidTimestamp
        );
        assert_eq!(
            failure(RecordError::CountMismatch {
                claimed: 2,
                found: 1
            })
            .record_index,
            None
        );
    }
}

/// The checks as `Broker::append` makes them, on a real single-node broker.
#[cfg(test)]
mod append_tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use strom_batch::{RecordBatchBuilder, RecordBatchHeader, TimestampType};
    use strom_log::TopicPartition;
    use strom_wire::ErrorCode;

    use crate::broker::now_ms;

    #[test]
    fn append_checks_records_and_stamps_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let rt = crate::test_broker::runtime();
        let _guard = rt.enter();
        let broker = crate::test_broker::open(dir.path(), &[("offsets_topic_partitions", "1")]);
        let lat = BTreeMap::from([(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        )]);
        for (name, configs) in [("ct", BTreeMap::new()), ("lat", lat)] {
            rt.block_on(
                broker
                    .control()
                    .create_topic(name, 1, -1, None, configs, false),
            )
            .unwrap();
        }
        let ct = TopicPartition::new("ct", 0);
        let t0 = now_ms() - 60_000;
        let mut b = RecordBatchBuilder::new();
        b.push(t0, None, Some(b"a"), &[]);
        b.push(t0 + 2000, None, Some(b"b"), &[]);
        let mut bytes = b.build();
        // What Sarama 1.22 sends: maxTimestamp -1.
        RecordBatchHeader::set_max_timestamp(&mut bytes, TimestampType::CreateTime, -1);
        let mut a = broker.data().append(&ct, &bytes).unwrap();
        assert_eq!(a.log_append_time, -1);
        rt.block_on(
            broker
                .data()
                .wait_committed(&ct, &mut a.commit, Duration::from_secs(5)),
        )
        .unwrap();
        let found = broker
            .data()
            .logs()
            .with_log(&ct, |l| l.offset_for_timestamp(t0 + 1000))
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((found.offset, found.timestamp), (a.base_offset, t0 + 2000));

        // A count the bytes cannot hold uses up no offsets.
        let mut huge = bytes.clone();
        huge[57..61].copy_from_slice(&(16i32 << 20).to_be_bytes());
        huge[23..27].copy_from_slice(&((16i32 << 20) - 1).to_be_bytes());
        // (Changing max_timestamp makes set_max_timestamp compute a CRC over the new count.)
        RecordBatchHeader::set_max_timestamp(&mut huge, TimestampType::CreateTime, t0);
        let f = broker.data().append(&ct, &huge).unwrap_err();
        assert_eq!(f.code, ErrorCode::InvalidRecord, "{}", f.message);
        assert_eq!(
            broker.data().append(&ct, &bytes).unwrap().base_offset,
            a.last_offset + 1
        );

        // LogAppendTime: the broker's clock, and the answer says so.
        let before = now_ms();
        let a = broker
            .data()
            .append(&TopicPartition::new("lat", 0), &bytes)
            .unwrap();
        assert!(a.log_append_time >= before, "{a:?}");
    }
}
