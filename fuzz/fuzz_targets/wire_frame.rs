//! Fuzzes the bounded wire decoder: any byte string must decode to a value or an error, never a
//! panic, and whatever decodes must re-encode to exactly the same bytes (canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockade_core::wire::{decode_frame, encode_frame, DecodeLimits};

/// A shape that exercises every generic decoder: varint lengths, nesting, options, strings.
type Shape = Vec<(u64, Option<Vec<u8>>, (String, Vec<Vec<u32>>, bool))>;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode_frame::<Shape>(data, DecodeLimits::MESSAGE) {
        assert_eq!(encode_frame(&value), data, "decoding is canonical");
    }
});
