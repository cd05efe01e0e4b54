#![no_main]
//! Master playlists: strict and lenient parses never panic; what parses writes and parses again; no line
//! carrying a URI is dropped without a warning.

#[path = "uri_lines.rs"]
mod uri_lines;

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{MasterPlaylist, ParserOptions, Rewrite};

fuzz_target!(|data: &[u8]| {
    let _ = MasterPlaylist::parse(data);
    if let Ok(parsed) = MasterPlaylist::parse_with(data, &ParserOptions::lenient()) {
        let text = parsed.playlist.to_string();
        let again =
            MasterPlaylist::parse_with(&text, &ParserOptions::lenient()).expect("written playlist parses");
        assert_eq!(again.playlist.to_string(), text);
        let mut uris = 0;
        let mut copy = parsed.playlist.clone();
        let _ = copy.rewrite_uris(|_| {
            uris += 1;
            Rewrite::Keep
        });
        uri_lines::assert_no_uri_dropped_silently(data, uris, &parsed.warnings);
        let _ = parsed.playlist.into_owned();
    }
});
