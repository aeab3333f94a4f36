//! Fuzz target: arbitrary bytes through `FrameCodec`, in arbitrary chunk sizes.
//!
//! Checks that decoding never panics, that frames come out no larger than the limit, and
//! that feeding the same bytes whole or in pieces yields the same frames and the same
//! outcome (an incomplete frame is not an error; a bad length is, at the same point).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strom_wire::FrameCodec;
use tokio_util::codec::Decoder;

/// Small, so that the fuzzer reaches both "too large" and "fits" with short inputs.
const MAX: usize = 64;

/// Decodes everything decodable from `chunks`, returning the frames and whether an error
/// stopped it.
fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<BytesMut>, bool) {
    let mut codec = FrameCodec::new(MAX);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size for the piecewise run.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 16) + 1;
    let whole = run(std::iter::once(rest));
    let pieces = run(rest.chunks(chunk));
    assert_eq!(whole, pieces);
});
