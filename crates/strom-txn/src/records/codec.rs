//! Schema primitives for the `__transaction_state` records: strom-bytes's bounds-checked
//! reader with this crate's error; strom-bytes's [`Writer`] writes them.

use strom_bytes::ReadError;
pub(crate) use strom_bytes::Writer;

use crate::error::TxnError;

/// A cursor over one key or value. Every failed read is a [`TxnError::Corrupt`] naming the
/// record; nothing is allocated from a length the input gave before it is checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    inner: strom_bytes::Reader<'a>,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            inner: strom_bytes::Reader::new(buf),
            what,
        }
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> TxnError {
        TxnError::Corrupt {
            record: self.what,
            position: self.inner.position(),
            reason: reason.into(),
        }
    }

    fn failed(&self, e: ReadError) -> TxnError {
        TxnError::Corrupt {
            record: self.what,
            position: e.at(),
            reason: e.to_string(),
        }
    }

    pub(crate) fn i8(&mut self) -> Result<i8, TxnError> {
        self.inner.i8().map_err(|e| self.failed(e))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, TxnError> {
        self.inner.i16().map_err(|e| self.failed(e))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, TxnError> {
        self.inner.i32().map_err(|e| self.failed(e))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, TxnError> {
        self.inner.i64().map_err(|e| self.failed(e))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u32, TxnError> {
        self.inner.uvarint().map_err(|e| self.failed(e))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], TxnError> {
        self.inner.take(n).map_err(|e| self.failed(e))
    }

    pub(crate) fn string(&mut self) -> Result<String, TxnError> {
        match self.inner.nullable_string().map_err(|e| self.failed(e))? {
            Some(s) => Ok(s.to_owned()),
            None => Err(self.corrupt("null in a non-nullable string")),
        }
    }

    pub(crate) fn compact_string(&mut self) -> Result<String, TxnError> {
        match self
            .inner
            .compact_nullable_string()
            .map_err(|e| self.failed(e))?
        {
            Some(s) => Ok(s.to_owned()),
            None => Err(self.corrupt("null in a non-nullable compact string")),
        }
    }

    /// An `int32` count, `None` when null; checked against the bytes left.
    pub(crate) fn nullable_array_len(&mut self, min: usize) -> Result<Option<usize>, TxnError> {
        self.inner.array_len(min).map_err(|e| self.failed(e))
    }

    pub(crate) fn array_len(&mut self, min: usize) -> Result<usize, TxnError> {
        self.nullable_array_len(min)?
            .ok_or_else(|| self.corrupt("null in a non-nullable array"))
    }

    pub(crate) fn compact_nullable_array_len(
        &mut self,
        min: usize,
    ) -> Result<Option<usize>, TxnError> {
        self.inner
            .compact_array_len(min)
            .map_err(|e| self.failed(e))
    }

    pub(crate) fn compact_array_len(&mut self, min: usize) -> Result<usize, TxnError> {
        self.compact_nullable_array_len(min)?
            .ok_or_else(|| self.corrupt("null in a non-nullable compact array"))
    }

    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), TxnError> {
        self.inner.skip_tagged_fields().map_err(|e| self.failed(e))
    }

    /// Fails unless every byte was read: a record with bytes after its last field was not
    /// written by this schema.
    pub(crate) fn finish(self) -> Result<(), TxnError> {
        if self.inner.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt(format!("{} trailing bytes", self.inner.remaining())))
        }
    }
}
