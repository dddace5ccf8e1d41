//! Untrusted bytes as a flush object: the table of contents, then each section it lists read
//! the way a segment reader would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_format::{FlushToc, Footer};

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let _ = FlushToc::tail_len_from_trailer(data);
    let Ok(toc) = FlushToc::decode(data, size) else {
        return;
    };
    // A TOC that decodes promises in-bounds sections; trust but verify.
    for section in &toc.sections {
        let Ok(range) = section.footer_range() else {
            continue;
        };
        let tail = &data[range.start as usize..range.end as usize];
        let _ = Footer::decode_for(tail, &section.meta);
    }
});
