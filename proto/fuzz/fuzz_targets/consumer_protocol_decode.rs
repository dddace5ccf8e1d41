//! Member metadata and assignments arrive from clients as opaque bytes that the group
//! coordinator decodes: any bytes must give a value or a typed error, never a panic, and a
//! decoded value must encode back to bytes that decode to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_proto::consumer_protocol::{Assignment, Subscription};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Subscription::decode(data) {
        assert_eq!(Subscription::decode(&s.encode()).as_ref(), Ok(&s));
    }
    if let Ok(a) = Assignment::decode(data) {
        assert_eq!(Assignment::decode(&a.encode()).as_ref(), Ok(&a));
    }
});
