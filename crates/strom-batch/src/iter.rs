//! Walking a buffer of concatenated batches, as found in a Produce request's records
//! field or a segment file.

use crate::header::{BatchError, RecordBatchHeader};

/// Iterates the batches of a buffer, yielding each header with its byte range. Stops at
/// the first error (which it yields) or at the end of the buffer. Does not check CRCs.
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            pos: 0,
            failed: false,
        }
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Result<(RecordBatchHeader, std::ops::Range<usize>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let result = RecordBatchHeader::parse(rest, self.pos).and_then(|h| {
            let total = h.total_size();
            if rest.len() < total {
                Err(BatchError::Truncated {
                    at: self.pos,
                    needed: total,
                    available: rest.len(),
                })
            } else {
                Ok(h)
            }
        });
        match result {
            Ok(h) => {
                let range = self.pos..self.pos + h.total_size();
                self.pos = range.end;
                Some(Ok((h, range)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates every batch in `buf` (lengths, magic, CRC, producer-batch record counts) and
/// returns their headers and byte ranges. The buffer must consist of whole batches only.
pub fn split_batches(
    buf: &[u8],
) -> Result<Vec<(RecordBatchHeader, std::ops::Range<usize>)>, BatchError> {
    let mut out = Vec::with_capacity(1);
    let mut pos = 0;
    while pos < buf.len() {
        let header = RecordBatchHeader::validate_produced(&buf[pos..], pos)?;
        let end = pos + header.total_size();
        out.push((header, pos..end));
        pos = end;
    }
    if out.is_empty() {
        return Err(BatchError::Truncated {
            at: 0,
            needed: crate::BATCH_HEADER_LEN,
            available: 0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::make_batch;

    #[test]
    fn iterates_concatenated_batches() {
        let mut buf = make_batch(2, 3, 0);
        buf.extend(make_batch(5, 1, 0));
        let got: Vec<_> = BatchIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0.records_count, 5);
        assert_eq!(got[1].1.end, buf.len());
        assert_eq!(split_batches(&buf).unwrap().len(), 2);
    }

    #[test]
    fn partial_tail_is_an_error() {
        let mut buf = make_batch(2, 3, 0);
        let one = buf.len();
        buf.extend(&make_batch(1, 9, 0)[..20]);
        let got: Vec<_> = BatchIter::new(&buf).collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Err(BatchError::Truncated { at, .. }) if at == one));
        assert!(split_batches(&buf).is_err());
        assert!(split_batches(&[]).is_err());
    }
}
