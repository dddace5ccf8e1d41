//! Untrusted bytes as a stream of record batches: validation and full decoding must return
//! errors, never panic or allocate without bound.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_format::{BatchIter, decode_batch};

fuzz_target!(|data: &[u8]| {
    for batch in BatchIter::new(Bytes::copy_from_slice(data)) {
        match batch {
            Ok(batch) => {
                let _ = decode_batch(&batch);
            }
            Err(_) => break,
        }
    }
});
