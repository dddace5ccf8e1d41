//! Untrusted text as a consumer's SQL-92 property filter, and untrusted bytes as a batch to
//! filter with it: errors, never panics, no stack exhaustion; a parsed condition prints back
//! to itself.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strata_format::BatchIter;
use strata_format::properties::{MAX_FILTER_LEN, PropertyFilter};
use strata_format::select::{Selector, filter_batch};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let Ok(filter) = PropertyFilter::parse(text) else {
        return;
    };
    let printed = filter.to_string();
    // Printing may lengthen a condition (quotes, number forms) past the limit.
    if printed.len() <= MAX_FILTER_LEN {
        assert_eq!(PropertyFilter::parse(&printed).as_ref(), Ok(&filter));
    }
    let selector = Selector::parse("*", text).expect("parsed above");
    let rest = Bytes::copy_from_slice(data.get(split + 1..).unwrap_or_default());
    for batch in BatchIter::new(rest) {
        match batch {
            Ok(batch) => {
                let _ = filter_batch(&batch, &selector);
            }
            Err(_) => break,
        }
    }
});
