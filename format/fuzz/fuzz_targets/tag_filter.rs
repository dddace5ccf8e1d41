//! Untrusted text as a consumer's tag expression, and untrusted bytes as a batch to filter
//! with it: errors, never panics; a parsed expression prints back to itself.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_format::BatchIter;
use strata_format::select::filter_batch;
use strata_format::tags::TagFilter;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Ok(filter) = TagFilter::parse(text) else {
        return;
    };
    assert_eq!(TagFilter::parse(&filter.to_string()).as_ref(), Ok(&filter));
    let rest = Bytes::copy_from_slice(data.get(split + 1..).unwrap_or_default());
    for batch in BatchIter::new(rest) {
        match batch {
            Ok(batch) => {
                let _ = filter_batch(&batch, &filter.clone().into());
            }
            Err(_) => break,
        }
    }
});
