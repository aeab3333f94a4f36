//! Fuzz target: arbitrary bytes as the records of one batch, through strom-batch's
//! record decoder (`decode_records`, used by the CLI consumer and tools).
//!
//! The harness fixes up the batch length, magic and CRC-32C before decoding, so that the
//! fuzzer's effort goes into the record parser rather than into guessing checksums.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_batch::{BATCH_HEADER_LEN, LOG_OVERHEAD, decode_records};

fuzz_target!(|data: &[u8]| {
    if data.len() < BATCH_HEADER_LEN {
        return;
    }
    let mut batch = data.to_vec();
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[16] = 2; // magic
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let _ = decode_records(&batch);
});
