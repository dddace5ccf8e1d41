//! PLAIN messages arrive before the client has proved anything: any bytes give a message or a
//! typed error, and a message's fields are exactly the bytes between its NULs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_sasl::plain::PlainMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = PlainMessage::parse(data) {
        assert!(!message.user.is_empty());
        assert!(!message.user.contains('\0') && !message.password.contains('\0'));
        assert_eq!(
            data.iter().filter(|b| **b == 0).count(),
            2,
            "three fields, two separators"
        );
    }
});
