//! Fuzz target: arbitrary bytes as record batches through strom-batch's parsing,
//! validation and iteration, and strom-wire's Produce splitting.
//!
//! Checks that nothing panics and that the views agree: every batch `split_batches`
//! accepts is also yielded by `BatchIter` at the same range and validates on its own.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_batch::{BatchIter, RecordBatchHeader, split_batches};

fuzz_target!(|data: &[u8]| {
    let _ = RecordBatchHeader::parse(data, 0);
    let _ = RecordBatchHeader::validate(data, 0);
    let iterated: Vec<_> = BatchIter::new(data).collect();
    if let Ok(batches) = split_batches(data) {
        assert_eq!(batches.len(), iterated.len());
        for ((header, range), item) in batches.iter().zip(&iterated) {
            let (iter_header, iter_range) = item.as_ref().expect("split batches iterate");
            assert_eq!(header, iter_header);
            assert_eq!(range, iter_range);
            assert_eq!(range.len(), header.total_size());
            assert_eq!(
                RecordBatchHeader::validate(&data[range.clone()], 0).as_ref(),
                Ok(header)
            );
        }
        let produced = strom_wire::produced_batches(&Bytes::copy_from_slice(data))
            .expect("what split_batches accepts, produced_batches accepts");
        assert_eq!(produced.len(), batches.len());
    }
});
