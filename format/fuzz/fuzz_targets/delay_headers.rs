//! Untrusted bytes as a produced batch on a topic that accepts delays: every record's delay
//! header is judged (an error, never a panic), the batch is filtered as consumers read it,
//! and a delivered copy of each record parses back to its original's offset and is never
//! itself delayed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_format::delay::{check_record, delayed_from, delivered_copy, is_delayed};
use strata_format::select::{Selector, filter_batch};
use strata_format::{BatchIter, decode_batch};

fuzz_target!(|data: &[u8]| {
    let hiding = Selector::ALL.hiding_delayed();
    for batch in BatchIter::new(Bytes::copy_from_slice(data)) {
        let Ok(batch) = batch else { break };
        let _ = filter_batch(&batch, &hiding);
        let Ok(records) = decode_batch(&batch) else {
            continue;
        };
        for record in records {
            let offset = record.offset;
            if let Ok(Some(due)) = check_record(&record, "fuzz", i64::MAX, record.timestamp) {
                let copy = delivered_copy(record, offset, due);
                assert!(!is_delayed(&copy.headers));
                assert_eq!(delayed_from(&copy.headers), Some(offset));
            }
        }
    }
});
