#![no_main]
//! Round-trip stability: parse → write → parse gives an equal playlist, and writing it again gives the
//! same text.

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{ParserOptions, Playlist};

fuzz_target!(|data: &[u8]| {
    let options = ParserOptions::lenient();
    let Ok(first) = Playlist::parse_with(data, &options) else { return };
    let text = first.playlist.to_string();
    let second = Playlist::parse_with(&text, &options).expect("a written playlist parses");
    assert_eq!(first.playlist, second.playlist, "parse -> write -> parse changed the playlist");
    assert_eq!(second.playlist.to_string(), text);
});
