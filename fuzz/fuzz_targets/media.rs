#![no_main]
//! Media playlists: strict and lenient parses never panic; the resolved view never panics.

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{MediaPlaylist, ParserOptions};

fuzz_target!(|data: &[u8]| {
    let _ = MediaPlaylist::parse(data);
    if let Ok(parsed) = MediaPlaylist::parse_with(data, &ParserOptions::lenient()) {
        let _ = parsed.playlist.resolve(Some("https://example.com/a/b/index.m3u8?x=1"));
        let _ = parsed.playlist.resolve(None);
        let _ = parsed.playlist.to_string();
    }
});
