//! `TransactionLogKey`, the key of every `__transaction_state` record.
//!
//! ```text
//! version                int16   0
//! TransactionalId        string  int16 length, UTF-8 bytes
//! ```

use bytes::Bytes;

use super::codec::{Reader, Writer};
use crate::error::TxnError;

/// The only key version Kafka defines (it is also the record type of the coordinator
/// record serde).
pub const TRANSACTION_LOG_KEY_VERSION: i16 = 0;

/// The key of a transactional id's record: compaction keeps the newest value per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogKey {
    pub transactional_id: String,
}

impl TransactionLogKey {
    pub fn new(transactional_id: impl Into<String>) -> Self {
        TransactionLogKey {
            transactional_id: transactional_id.into(),
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut w = Writer::default();
        w.i16(TRANSACTION_LOG_KEY_VERSION);
        w.string(&self.transactional_id);
        w.finish()
    }

    /// The key, or `None` for a key version this coordinator does not know: Kafka skips
    /// such records when loading ("a left over from an aborted upgrade"), and so does
    /// [`replay`](crate::TransactionCoordinator::replay).
    pub fn decode(buf: &[u8]) -> Result<Option<TransactionLogKey>, TxnError> {
        let mut r = Reader::new(buf, "transaction log key");
        if r.i16()? != TRANSACTION_LOG_KEY_VERSION {
            return Ok(None);
        }
        let transactional_id = r.string()?;
        r.finish()?;
        Ok(Some(TransactionLogKey { transactional_id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_version_then_string() {
        let key = TransactionLogKey::new("tx-1");
        let bytes = key.encode();
        assert_eq!(&bytes[..], &[0, 0, 0, 4, b't', b'x', b'-', b'1']);
        assert_eq!(TransactionLogKey::decode(&bytes).unwrap(), Some(key));
    }

    #[test]
    fn other_key_versions_are_skipped_not_refused() {
        assert_eq!(
            TransactionLogKey::decode(&[0, 1, 0, 1, b'x']).unwrap(),
            None
        );
    }

    #[test]
    fn truncated_and_padded_keys_are_corrupt() {
        let bytes = TransactionLogKey::new("abc").encode();
        for cut in 0..bytes.len() {
            assert!(
                TransactionLogKey::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(TransactionLogKey::decode(&padded).is_err());
        // Null transactional id.
        assert!(TransactionLogKey::decode(&[0, 0, 0xff, 0xff]).is_err());
    }
}
