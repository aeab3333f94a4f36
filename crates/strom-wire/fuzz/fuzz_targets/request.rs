//! Fuzz target: arbitrary bytes as a request frame through `decode_request`, and through
//! `unsupported_version_reply` when the version is refused.
//!
//! Any result is fine except a panic, an abort (such as an allocation failure, which
//! libFuzzer reports as out-of-memory) or a hang.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strom_wire::{WireError, decode_request, encode_response_header, unsupported_version_reply};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    match decode_request(frame.clone()) {
        Ok(request) => {
            // A decoded request must agree with its own header.
            assert_eq!(request.api_key as i16, request.header.request_api_key);
            let mut out = bytes::BytesMut::new();
            encode_response_header(
                &mut out,
                request.correlation_id(),
                request.response_header_version(),
            )
            .expect("a decoded request has a valid response header version");
        }
        Err(WireError::UnsupportedVersion { .. }) => {
            let _ = unsupported_version_reply(&frame);
        }
        Err(_) => {}
    }
});
