#![no_main]
//! Response headers the fetch client acts on: `Content-Range`, `Retry-After` and HTTP-dates never panic,
//! and a parsed `Content-Range` is consistent and prints back to a value that parses the same.

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use stowage_fetch::__fuzz::{parse_content_range, parse_http_date, parse_retry_after};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(cr) = parse_content_range(text) {
        assert!(cr.first <= cr.last);
        assert!(cr.complete_length.is_none_or(|c| c > cr.last));
        let printed = match cr.complete_length {
            Some(c) => format!("bytes {}-{}/{c}", cr.first, cr.last),
            None => format!("bytes {}-{}/*", cr.first, cr.last),
        };
        assert_eq!(parse_content_range(&printed), Some(cr));
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = parse_retry_after(text, now);
    if let Some(t) = parse_http_date(text) {
        assert!(t >= UNIX_EPOCH);
    }
});
