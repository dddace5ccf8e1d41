//! Untrusted bytes as a segment object: footer decoding and the batches it indexes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_format::{BatchIter, Footer};

fuzz_target!(|data: &[u8]| {
    let Ok(footer) = Footer::decode(data, data.len() as u64) else {
        return;
    };
    // A footer that decodes promises in-bounds index entries; trust but verify.
    let data = Bytes::copy_from_slice(data);
    for block in 0..footer.index.len() {
        let range = footer.block_range(block);
        let slice = data.slice(range.start as usize..range.end as usize);
        for batch in BatchIter::new(slice) {
            if batch.is_err() {
                break;
            }
        }
    }
    let _ = footer.block_for_timestamp(i64::MIN);
    let _ = footer.block_for_offset(footer.base_offset);
});
