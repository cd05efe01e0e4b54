#![no_main]
//! Auto-detection: `detect` and `Playlist::parse_with` agree on the kind and never panic.

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{ParserOptions, Playlist, PlaylistKind, detect};

fuzz_target!(|data: &[u8]| {
    let kind = detect(data);
    let _ = Playlist::parse(data);
    if let Ok(parsed) = Playlist::parse_with(data, &ParserOptions::lenient()) {
        let expected = if kind == Some(PlaylistKind::Master) { PlaylistKind::Master } else { PlaylistKind::Media };
        assert_eq!(parsed.playlist.kind(), expected);
    }
});
