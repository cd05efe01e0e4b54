#![no_main]
//! `data:` URIs for keys: parsing never panics, and percent-encoding any bytes decodes back to them.

use libfuzzer_sys::fuzz_target;
use stowage_fetch::keys::parse_data_uri;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_data_uri(text);
        let _ = parse_data_uri(&format!("data:{text}"));
    }
    let mut uri = String::from("data:application/octet-stream,");
    for b in data {
        uri.push_str(&format!("%{b:02X}"));
    }
    assert_eq!(parse_data_uri(&uri).expect("percent-encoded data parses"), data);
});
