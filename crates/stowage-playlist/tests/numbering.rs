//! Segment identities: the numbers a URI rewrite offers for each URI (media sequence, discontinuity
//! sequence, byte range with its offset made explicit) are those of the resolved view, and rewriting
//! changes none of them. Checked over the media playlists of the peer corpus (skipped when it is not
//! there, see `stowage_testkit::peer_corpus`) and over seeded generated playlists with discontinuities (also before the first
//! segment), EXT-X-SKIP, byte ranges with implicit offsets and EXT-X-MAP changes.

use stowage_playlist::{ByteRange, MediaPlaylist, ParserOptions, Rewrite, UriRole};

/// One segment's identity: index, discontinuity sequence, media sequence, byte range (offset explicit).
type Identity = (usize, u64, u64, Option<ByteRange>);

/// The identities the rewrite offers for segments, and for each MAP: the index of the segment it is
/// written before, its URI and its byte range with the offset made explicit.
#[derive(Debug, Default, PartialEq)]
struct Offered {
    segments: Vec<Identity>,
    maps: Vec<(usize, String, Option<ByteRange>)>,
}

fn offered(
    playlist: &mut MediaPlaylist<'_>,
    mut action: impl FnMut(UriRole, usize, &str) -> Rewrite,
) -> Offered {
    let mut out = Offered::default();
    playlist
        .rewrite_uris(|u| {
            match (u.role, u.index) {
                (UriRole::Segment, Some(i)) => out.segments.push((
                    i,
                    u.discontinuity_sequence.unwrap(),
                    u.media_sequence.unwrap(),
                    u.absolute_byte_range,
                )),
                (UriRole::Map, Some(i)) => out.maps.push((i, u.uri.to_owned(), u.absolute_byte_range)),
                _ => {}
            }
            action(u.role, u.index.unwrap_or(usize::MAX), u.uri)
        })
        .unwrap();
    out
}

fn resolved_identities(playlist: &MediaPlaylist<'_>) -> Option<Vec<Identity>> {
    let resolved = playlist.resolve(None).ok()?;
    Some(
        resolved
            .segments
            .iter()
            .map(|s| (s.index, s.discontinuity_sequence, s.media_sequence, s.byte_range))
            .collect(),
    )
}

/// Checks the property for one playlist; returns whether it could be resolved (an invalid implicit
/// byte range cannot).
fn check(name: &str, text: &str) -> bool {
    let parsed = match MediaPlaylist::parse_with(text, &ParserOptions::lenient()) {
        Ok(p) => p.playlist,
        Err(_) => return false,
    };
    let Ok(resolved) = parsed.resolve(None) else {
        // Even when the view cannot be built, the numbers offered are the ones it would give, and a
        // rewrite that keeps everything changes nothing.
        let mut copy = parsed.clone();
        let seen = offered(&mut copy, |_, _, _| Rewrite::Keep);
        assert_eq!(copy, parsed, "{name}: keeping every URI changed the playlist");
        assert_eq!(seen.segments.len(), parsed.segments().len(), "{name}");
        return false;
    };
    let expected: Vec<Identity> = resolved
        .segments
        .iter()
        .map(|s| (s.index, s.discontinuity_sequence, s.media_sequence, s.byte_range))
        .collect();

    // What the callback sees matches the resolved view, segment by segment.
    let mut copy = parsed.clone();
    let seen = offered(&mut copy, |_, _, _| Rewrite::Keep);
    assert_eq!(seen.segments, expected, "{name}: offered identities differ from the resolved view");
    // Of several MAPs before one segment, the last is the one in force there.
    for (k, (i, uri, range)) in seen.maps.iter().enumerate() {
        if seen.maps.get(k + 1).is_some_and(|next| next.0 == *i) {
            continue;
        }
        let map = resolved.segments[*i].map.as_ref().unwrap_or_else(|| panic!("{name}: no map at {i}"));
        assert_eq!((map.uri.as_ref(), map.byte_range), (uri.as_str(), *range), "{name}: map at segment {i}");
    }

    // Renaming every resource (one new name per old one, same bytes at the same offsets) keeps every
    // identity, implicit offsets included.
    let mut renamed = parsed.clone();
    offered(&mut renamed, |role, _, uri| match role {
        UriRole::Segment | UriRole::Map => Rewrite::Replace(format!("local/{uri}")),
        _ => Rewrite::Keep,
    });
    let text2 = renamed.to_string();
    let reparsed = MediaPlaylist::parse_with(&text2, &ParserOptions::lenient()).unwrap().playlist;
    assert_eq!(
        resolved_identities(&reparsed).as_ref(),
        Some(&expected),
        "{name}: renaming changed identities"
    );

    // Renaming each segment to a file of its own (as an offline bundle does) with the range dropped keeps
    // the sequence numbers.
    let mut whole = parsed.clone();
    let seen_whole = offered(&mut whole, |role, i, _| match role {
        UriRole::Segment => Rewrite::ReplaceWhole(format!("seg-{i}.ts")),
        UriRole::Map => Rewrite::ReplaceWhole(format!("init-{i}.mp4")),
        _ => Rewrite::Keep,
    });
    assert_eq!(seen_whole, seen, "{name}: the identities offered depend on the answers given");
    let text3 = whole.to_string();
    let reparsed = MediaPlaylist::parse_with(&text3, &ParserOptions::lenient()).unwrap().playlist;
    let numbers = |v: &[Identity]| v.iter().map(|&(i, d, m, _)| (i, d, m)).collect::<Vec<_>>();
    assert_eq!(
        numbers(&resolved_identities(&reparsed).unwrap()),
        numbers(&expected),
        "{name}: a rewrite to whole files changed sequence numbers"
    );
    true
}

#[test]
fn peer_corpus_media_playlists() {
    let Some(dir) = stowage_testkit::peer_corpus() else { return };
    let paths: Vec<_> = stowage_testkit::corpus_playlists(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "m3u8" || e == "m3u"))
        .collect();
    let (mut media, mut resolved) = (0, 0);
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        if stowage_playlist::detect(text.as_bytes()) != Some(stowage_playlist::PlaylistKind::Media) {
            continue;
        }
        media += 1;
        if check(&path.display().to_string(), text) {
            resolved += 1;
        }
    }
    // The corpus holds well over a hundred media playlists; most resolve.
    assert!(media >= 100 && resolved * 10 >= media * 8, "{media} media playlists, {resolved} resolved");
}

/// A small deterministic generator (xorshift64*), so that a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn generate(rng: &mut Rng) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:6\n");
    if rng.chance(70) {
        let msn = if rng.chance(10) { u64::MAX - rng.below(3) } else { rng.below(1_000_000) };
        out.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{msn}\n"));
    }
    if rng.chance(50) {
        out.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{}\n", rng.below(50)));
    }
    if rng.chance(30) {
        out.push_str("#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=36\n");
        out.push_str(&format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={}\n", rng.below(40)));
    }
    let segments = 1 + rng.below(12);
    // The resource the current run of sub-ranges reads from, and where the last one ended.
    let mut resource = 0;
    let mut prev_ranged = false;
    for i in 0..segments {
        if rng.chance(if i == 0 { 50 } else { 20 }) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if rng.chance(if i == 0 { 60 } else { 20 }) {
            let map = rng.below(3);
            match rng.below(3) {
                0 => out.push_str(&format!("#EXT-X-MAP:URI=\"init{map}.mp4\"\n")),
                1 => out.push_str(&format!(
                    "#EXT-X-MAP:URI=\"init{map}.mp4\",BYTERANGE=\"{}\"\n",
                    1 + rng.below(900)
                )),
                _ => out.push_str(&format!(
                    "#EXT-X-MAP:URI=\"init{map}.mp4\",BYTERANGE=\"{}@{}\"\n",
                    1 + rng.below(900),
                    rng.below(5000)
                )),
            }
        }
        if rng.chance(10) {
            out.push_str("#EXT-X-GAP\n");
        }
        out.push_str("#EXTINF:4.004,\n");
        // Byte ranges: none, explicit, or implicit (which is valid only after a sub-range of the same
        // resource; invalid cases are generated too, and must be numbered alike where they can be).
        let kind = match rng.below(4) {
            // Mostly, an implicit offset follows a sub-range.
            2 | 3 if !prev_ranged && rng.chance(90) => 1,
            k => k,
        };
        prev_ranged = kind != 0;
        match kind {
            0 => out.push_str(&format!("seg{i}.ts\n")),
            1 => {
                if rng.chance(20) {
                    resource += 1;
                }
                out.push_str(&format!(
                    "#EXT-X-BYTERANGE:{}@{}\nmedia{resource}.ts\n",
                    1 + rng.below(100_000),
                    rng.below(1_000_000)
                ));
            }
            _ => {
                if rng.chance(10) {
                    resource += 1;
                }
                out.push_str(&format!("#EXT-X-BYTERANGE:{}\nmedia{resource}.ts\n", 1 + rng.below(100_000)));
            }
        }
    }
    if rng.chance(50) {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[test]
fn generated_playlists() {
    let (mut resolved, mut runs) = (0, 0);
    for seed in 1..=2_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let text = generate(&mut rng);
        runs += 1;
        if check(&format!("seed {seed}:\n{text}"), &text) {
            resolved += 1;
        }
    }
    // Both the valid and the invalid byte-range cases are exercised.
    assert!(resolved * 4 > runs && resolved < runs, "{resolved} of {runs} generated playlists resolved");
}

#[test]
fn discontinuity_before_the_first_segment_counts_in_both_views() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-DISCONTINUITY-SEQUENCE:7\n#EXT-X-DISCONTINUITY\n\
                #EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n";
    let mut playlist = MediaPlaylist::parse(text).unwrap();
    let resolved = resolved_identities(&playlist).unwrap();
    assert_eq!(resolved, [(0, 8, 0, None), (1, 8, 1, None)]);
    assert_eq!(offered(&mut playlist, |_, _, _| Rewrite::Keep).segments, resolved);
}

#[test]
fn skipped_segments_count_in_both_views() {
    let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:20\n\
                #EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n";
    let mut playlist = MediaPlaylist::parse(text).unwrap();
    let resolved = resolved_identities(&playlist).unwrap();
    assert_eq!(resolved, [(0, 0, 23, None), (1, 0, 24, None)]);
    assert_eq!(offered(&mut playlist, |_, _, _| Rewrite::Keep).segments, resolved);
}

#[test]
fn implicit_offsets_are_offered_explicit() {
    let text = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n\
                #EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"600\"\n\
                #EXTINF:4,\n#EXT-X-BYTERANGE:1000@600\nall.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:500\nall.mp4\n";
    let mut playlist = MediaPlaylist::parse(text).unwrap();
    let seen = offered(&mut playlist, |_, _, _| Rewrite::Keep);
    assert_eq!(
        seen.segments,
        [(0, 0, 0, Some(ByteRange::new(Some(600), 1000))), (1, 0, 1, Some(ByteRange::new(Some(1600), 500)))]
    );
    assert_eq!(seen.maps, [(0, "init.mp4".to_owned(), Some(ByteRange::new(Some(0), 600)))]);
}
