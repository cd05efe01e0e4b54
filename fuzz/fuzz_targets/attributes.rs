#![no_main]
//! Attribute lists: parsing never panics, and what parses writes back to the same text.

use libfuzzer_sys::fuzz_target;
use stowage_playlist::AttributeList;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(list) = AttributeList::parse(text) {
        let mut out = String::new();
        list.write_to(&mut out);
        assert_eq!(out, text);
        for a in &list {
            let _ = (list.integer(&a.name), list.float(&a.name), list.hex(&a.name), list.resolution(&a.name));
            let _ = (list.date(&a.name), list.byte_range(&a.name), list.yes_no(&a.name));
        }
    }
});
