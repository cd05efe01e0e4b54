#![no_main]
//! Master playlists: strict and lenient parses never panic; what parses writes and parses again.

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{MasterPlaylist, ParserOptions};

fuzz_target!(|data: &[u8]| {
    let _ = MasterPlaylist::parse(data);
    if let Ok(parsed) = MasterPlaylist::parse_with(data, &ParserOptions::lenient()) {
        let text = parsed.playlist.to_string();
        let again = MasterPlaylist::parse_with(&text, &ParserOptions::lenient()).expect("written playlist parses");
        assert_eq!(again.playlist.to_string(), text);
        let _ = parsed.playlist.into_owned();
    }
});
