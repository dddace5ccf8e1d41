//! Every frame a Kafka client sends goes through `request::parse` before any handler sees it:
//! any bytes must give a request, an unsupported-version marker or a typed error, never a
//! panic or an allocation the frame's size does not justify.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_kafka::request;

fuzz_target!(|data: &[u8]| {
    let _ = request::parse(bytes::Bytes::copy_from_slice(data));
});
