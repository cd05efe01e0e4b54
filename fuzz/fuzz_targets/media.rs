#![no_main]
//! Media playlists: strict and lenient parses never panic; the resolved view never panics; a URI rewrite
//! never panics and offers every segment with the identity (media sequence, discontinuity sequence,
//! byte range) the resolved view gives it; no line carrying a URI is dropped without a warning.

#[path = "uri_lines.rs"]
mod uri_lines;

use libfuzzer_sys::fuzz_target;
use stowage_playlist::{MediaPlaylist, ParserOptions, Rewrite, UriRole};

fuzz_target!(|data: &[u8]| {
    let _ = MediaPlaylist::parse(data);
    if let Ok(parsed) = MediaPlaylist::parse_with(data, &ParserOptions::lenient()) {
        let _ = parsed.playlist.resolve(Some("https://example.com/a/b/index.m3u8?x=1"));
        let resolved = parsed.playlist.resolve(None);
        let _ = parsed.playlist.to_string();

        let mut offered = Vec::new();
        let mut uris = 0;
        let mut copy = parsed.playlist.clone();
        let rewritten = copy.rewrite_uris(|u| {
            uris += 1;
            if u.role == UriRole::Segment {
                offered.push((u.index, u.discontinuity_sequence, u.media_sequence, u.absolute_byte_range));
            }
            Rewrite::Keep
        });
        // Keeping every URI changes nothing (and removes nothing, so it cannot fail).
        assert!(rewritten.is_ok(), "keeping every URI failed: {rewritten:?}");
        assert_eq!(copy, parsed.playlist, "keeping every URI changed the playlist");
        assert_eq!(offered.len(), parsed.playlist.segments().len());
        uri_lines::assert_no_uri_dropped_silently(data, uris, &parsed.warnings);
        if let Ok(resolved) = resolved {
            let expected: Vec<_> = resolved
                .segments
                .iter()
                .map(|s| {
                    (Some(s.index), Some(s.discontinuity_sequence), Some(s.media_sequence), s.byte_range)
                })
                .collect();
            assert_eq!(offered, expected, "the rewrite and the resolved view number segments differently");
        }
    }
});
