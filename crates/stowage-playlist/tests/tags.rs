//! One test per tag: it parses strictly, its typed getters read what was written, it writes back byte for
//! byte, and a malformed form is a located error.

use stowage_playlist::{
    ByteRange, Error, KeyMethod, Limits, MasterPlaylist, MasterTag, MediaPlaylist, MediaTag, MediaType,
    ParserOptions, PlaylistKind, PlaylistType, Rewrite, UriRole, WarningKind, detect,
};

const HEAD: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n";

/// Parses a media playlist made of `HEAD`, `lines` and one segment, checks it writes back identically.
fn media(lines: &str) -> MediaPlaylist<'static> {
    let text = format!("{HEAD}{lines}#EXTINF:9.5,\nseg.ts\n");
    let playlist = MediaPlaylist::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(playlist.to_string(), text);
    playlist.into_owned()
}

fn media_error(lines: &str) -> Error {
    let text = format!("{HEAD}{lines}#EXTINF:9.5,\nseg.ts\n");
    MediaPlaylist::parse(&text).expect_err(&text)
}

fn master(lines: &str) -> MasterPlaylist<'static> {
    let text = format!("#EXTM3U\n{lines}");
    let playlist = MasterPlaylist::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(playlist.to_string(), text);
    playlist.into_owned()
}

fn location(e: &Error) -> (usize, usize) {
    match e {
        Error::Syntax { line, column, .. } => (*line, *column),
        other => panic!("not a syntax error: {other}"),
    }
}

#[test]
fn extm3u_is_required_first() {
    let e = MediaPlaylist::parse("#EXT-X-TARGETDURATION:1\n").unwrap_err();
    assert_eq!(location(&e), (1, 1));
    let p = MediaPlaylist::parse_with("#EXT-X-TARGETDURATION:1\n", &ParserOptions::lenient()).unwrap();
    assert_eq!(p.warnings[0].kind, WarningKind::MissingHeader);
}

#[test]
fn version() {
    assert_eq!(media("#EXT-X-VERSION:7\n").version(), Some(7));
    assert_eq!(location(&media_error("#EXT-X-VERSION:x\n")), (3, 16));
}

#[test]
fn extinf_keeps_duration_and_title() {
    let p = media("#EXTINF:6.006,Title, with comma\nfirst.ts\n");
    assert_eq!(p.segments()[0].duration().to_string(), "6.006");
    assert_eq!(p.segments()[0].title(), "Title, with comma");
    assert_eq!(location(&media_error("#EXTINF:abc,\na.ts\n")), (3, 9));
    assert_eq!(location(&media_error("#EXTINF:4\na.ts\n")), (3, 10));
}

#[test]
fn byterange() {
    let p = media("#EXTINF:1,\n#EXT-X-BYTERANGE:100@5\na.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:50\na.ts\n");
    assert_eq!(p.segments()[1].byte_range(), Some(ByteRange::new(None, 50)));
    let r = p.resolve(None).unwrap();
    assert_eq!(r.segments[1].byte_range, Some(ByteRange::new(Some(105), 50)));
    assert_eq!(location(&media_error("#EXTINF:1,\n#EXT-X-BYTERANGE:@5\na.ts\n")), (4, 18));
}

#[test]
fn discontinuity_and_sequence() {
    let p = media("#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXTINF:1,\na.ts\n#EXT-X-DISCONTINUITY\n");
    assert_eq!(p.discontinuity_sequence(), 4);
    let r = p.resolve(None).unwrap();
    assert_eq!((r.segments[0].discontinuity_sequence, r.segments[1].discontinuity_sequence), (4, 5));
    assert!(r.segments[1].discontinuity);
    assert_eq!(location(&media_error("#EXT-X-DISCONTINUITY:1\n")), (3, 21));
}

#[test]
fn keys_of_every_method_and_several_formats() {
    let p = media(
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0x0A\n\
         #EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1/2\"\n\
         #EXTINF:1,\na.ts\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k2\"\n#EXTINF:1,\nb.ts\n#EXT-X-KEY:METHOD=NONE\n",
    );
    let r = p.resolve(Some("https://h.example/p/x.m3u8")).unwrap();
    let k0 = &r.segments[0].keys;
    assert_eq!(k0.len(), 2);
    assert_eq!((k0[0].method, k0[0].iv[15], k0[0].iv_is_explicit), (KeyMethod::Aes128, 10, true));
    assert_eq!(k0[0].uri.as_deref(), Some("https://h.example/p/k1"));
    assert_eq!(k0[1].key.keyformat_versions(), vec![1, 2]);
    let k1 = &r.segments[1].keys;
    assert_eq!(
        (k1[0].method, k1[0].iv, k1[1].method),
        (KeyMethod::SampleAes, 1u128.to_be_bytes(), KeyMethod::SampleAesCtr)
    );
    assert!(r.segments[2].keys.is_empty());
    assert_eq!(location(&media_error("#EXT-X-KEY:METHOD=AES-128\n")), (3, 12));
    assert_eq!(location(&media_error("#EXT-X-KEY:METHOD=NONE,URI=\"x\"\n")), (3, 12));
    // An IV longer than an AES block is refused, not replaced by the implicit one.
    let long_iv = "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x0000000000000000000000000000000000000001\n";
    assert_eq!(location(&media_error(long_iv)), (3, 12));
}

#[test]
fn map() {
    let p = media("#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"600@0\"\n");
    let r = p.resolve(None).unwrap();
    let map = r.segments[0].map.as_ref().unwrap();
    assert_eq!((&*map.uri, map.byte_range), ("init.mp4", Some(ByteRange::new(Some(0), 600))));
    assert_eq!(location(&media_error("#EXT-X-MAP:BYTERANGE=\"1@0\"\n")), (3, 12));
}

#[test]
fn program_date_time_offsets() {
    for date in ["2010-02-19T14:54:23.031+08:00", "2010-02-19T14:54:23Z", "2010-02-19T06:54:23.031+0000"] {
        let p = media(&format!("#EXT-X-PROGRAM-DATE-TIME:{date}\n"));
        let r = p.resolve(None).unwrap();
        assert_eq!(r.segments[0].program_date_time.unwrap().to_string(), date);
    }
    let p = media("#EXTINF:2,\na.ts\n#EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:10Z\n");
    let r = p.resolve(None).unwrap();
    assert_eq!(r.segments[0].program_date_time.unwrap().to_string(), "2020-01-01T00:00:08.000Z");
    assert_eq!(location(&media_error("#EXT-X-PROGRAM-DATE-TIME:yesterday\n")), (3, 26));
}

#[test]
fn date_ranges() {
    let p = media(
        "#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2020-01-01T00:00:00Z\",END-ON-NEXT=YES,CLASS=\"c\",X-COM-K=\"v\"\n\
         #EXT-X-DATERANGE:ID=\"b\",START-DATE=\"2020-01-01T00:00:05Z\",DURATION=5.5,SCTE35-CMD=0xFC01\n",
    );
    let d: Vec<_> = p.date_ranges().collect();
    assert_eq!(d.len(), 2);
    assert!(d[0].end_on_next());
    assert_eq!(d[0].client_attributes().count(), 1);
    assert_eq!((d[1].duration(), d[1].scte35_cmd()), (Some(5.5), Some(vec![0xFC, 0x01])));
    assert_eq!(location(&media_error("#EXT-X-DATERANGE:START-DATE=\"2020-01-01T00:00:00Z\"\n")), (3, 18));
}

#[test]
fn gap_bitrate() {
    let p = media("#EXT-X-BITRATE:800\n#EXT-X-GAP\n");
    let r = p.resolve(None).unwrap();
    assert_eq!((r.segments[0].gap, r.segments[0].bitrate), (true, Some(800)));
}

#[test]
fn target_duration_media_sequence_endlist_type() {
    let p = media(
        "#EXT-X-MEDIA-SEQUENCE:9\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-INDEPENDENT-SEGMENTS\n",
    );
    assert_eq!(p.target_duration().unwrap().round(), 10);
    assert_eq!((p.media_sequence(), p.playlist_type()), (9, Some(PlaylistType::Event)));
    assert!(p.is_i_frames_only() && p.has_independent_segments() && !p.is_ended());
    let e = MediaPlaylist::parse("#EXTM3U\n#EXTINF:1,\na.ts\n").unwrap_err();
    assert!(e.to_string().contains("EXT-X-TARGETDURATION"), "{e}");
    assert_eq!(location(&media_error("#EXT-X-PLAYLIST-TYPE:LIVE\n")), (3, 22));
    let text = format!("{HEAD}#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n");
    assert!(MediaPlaylist::parse(&text).unwrap().is_ended());
}

#[test]
fn start() {
    let p = media("#EXT-X-START:TIME-OFFSET=-3.5,PRECISE=YES\n");
    let s = p.start().unwrap();
    assert_eq!((s.time_offset(), s.precise()), (Some(-3.5), Some(true)));
    assert_eq!(location(&media_error("#EXT-X-START:PRECISE=YES\n")), (3, 14));
}

#[test]
fn define_substitutes_in_uris_and_quoted_strings() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-DEFINE:NAME=\"p\",VALUE=\"https://a.example\"\n\
                #EXT-X-DEFINE:IMPORT=\"tok\"\n#EXT-X-MAP:URI=\"{$p}/i.mp4\"\n#EXTINF:1,\n{$p}/s.ts?{$tok}\n";
    let opts = ParserOptions::default().import("tok", "t=1");
    let p = MediaPlaylist::parse_with(text, &opts).unwrap().playlist;
    assert_eq!(p.segments()[0].uri(), "https://a.example/s.ts?t=1");
    assert_eq!(p.defines().count(), 2);
    let e = MediaPlaylist::parse(text).unwrap_err();
    assert!(matches!(e, Error::UndefinedVariable { line: 4, .. }), "{e}");
}

#[test]
fn a_master_playlists_variables_are_what_its_media_playlists_import() {
    let master = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"https://cdn.example\"\n\
                  #EXT-X-DEFINE:QUERYPARAM=\"token\"\n#EXT-X-DEFINE:QUERYPARAM=\"missing\"\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=1\n{$cdn}/v.m3u8?token={$token}\n";
    let opts = ParserOptions::lenient().query("a=1&token=t%3D1");
    let parsed = MasterPlaylist::parse_with(master, &opts).unwrap();
    // The undefined QUERYPARAM is tolerated (and warned about), so it has no value to give.
    assert_eq!(
        parsed.variables,
        [("cdn".to_owned(), "https://cdn.example".to_owned()), ("token".to_owned(), "t=1".to_owned())]
    );
    assert_eq!(parsed.playlist.variants().next().unwrap().uri, "https://cdn.example/v.m3u8?token=t=1");
    let media = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-DEFINE:IMPORT=\"cdn\"\n\
                 #EXT-X-DEFINE:NAME=\"local\",VALUE=\"x\"\n#EXTINF:1,\n{$cdn}/{$local}.ts\n";
    let opts = parsed.variables.iter().fold(ParserOptions::default(), |o, (n, v)| o.import(n, v));
    let media = MediaPlaylist::parse_with(media, &opts).unwrap();
    assert_eq!(media.playlist.segments()[0].uri(), "https://cdn.example/x.ts");
    let names: Vec<&str> = media.variables.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cdn", "local"]);
    // A playlist without definitions has no variables.
    assert!(
        MediaPlaylist::parse_with("#EXTM3U\n#EXT-X-TARGETDURATION:1\n", &ParserOptions::default())
            .unwrap()
            .variables
            .is_empty()
    );
}

#[test]
fn low_latency_tags() {
    let p = media(
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,CAN-SKIP-DATERANGES=YES,HOLD-BACK=9.0,PART-HOLD-BACK=1.5\n\
         #EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2,RECENTLY-REMOVED-DATERANGES=\"a\tb\"\n\
         #EXT-X-PART:DURATION=0.5,URI=\"p.0.mp4\",INDEPENDENT=YES,GAP=NO\n\
         #EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init.mp4\",BYTERANGE-START=0,BYTERANGE-LENGTH=10\n\
         #EXT-X-RENDITION-REPORT:URI=\"../b.m3u8\",LAST-MSN=3,LAST-PART=1\n",
    );
    let sc = p.server_control().unwrap();
    assert_eq!(
        (sc.can_block_reload(), sc.hold_back(), sc.can_skip_dateranges()),
        (Some(true), Some(9.0), Some(true))
    );
    assert_eq!(p.part_inf().unwrap().part_target(), Some(0.5));
    assert_eq!(p.skip().unwrap().skipped_segments(), Some(2));
    let r = p.resolve(None).unwrap();
    assert_eq!(r.segments[0].media_sequence, 2);
    let hint = p.preload_hints().next().unwrap();
    assert_eq!((hint.hint_type(), hint.byte_range_length()), (Some("MAP"), Some(10)));
    assert_eq!(p.rendition_reports().next().unwrap().last_msn(), Some(3));
    assert!(matches!(p.segment_tags(0).before[0], MediaTag::Part(_)));
    assert_eq!(location(&media_error("#EXT-X-PART:URI=\"p\"\n")), (3, 13));
}

#[test]
fn unknown_tags_attributes_and_comments_stay_in_place() {
    let p = media("#EXT-X-OLD\n#EXT-X-KEY:METHOD=AES-128,X-FUTURE=9,URI=\"k\"\n#EXT-X-NEW:A=1\n# comment\n");
    assert!(matches!(&p.header()[1], MediaTag::Unknown(s) if s == "#EXT-X-OLD"));
    let tags = p.segment_tags(0);
    let MediaTag::Key(key) = &tags.before[0] else { panic!("{:?}", tags.before[0]) };
    assert_eq!(key.attributes().iter().nth(1).unwrap().name, "X-FUTURE");
    assert!(matches!(&tags.before[1], MediaTag::Unknown(s) if s == "#EXT-X-NEW:A=1"));
    assert!(matches!(&tags.before[2], MediaTag::Comment(s) if s == "# comment"));
}

#[test]
fn master_tags() {
    let m = master(
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"English\",LANGUAGE=\"en\",CHANNELS=\"2\",DEFAULT=YES,URI=\"a.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=100,RESOLUTION=10x20,CODECS=\"avc1\",AUDIO=\"a\",VIDEO-RANGE=HLG,SCORE=2.0\nv.m3u8\n\
         #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=10,URI=\"i.m3u8\"\n\
         #EXT-X-SESSION-DATA:DATA-ID=\"d\",VALUE=\"v\"\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k\"\n\
         #EXT-X-CONTENT-STEERING:SERVER-URI=\"s.json\"\n",
    );
    let r = m.renditions().next().unwrap();
    assert_eq!((r.media_type(), r.channels(), r.default()), (MediaType::Audio, Some("2"), Some(true)));
    let v = m.variants().next().unwrap();
    assert_eq!((v.stream_inf.bandwidth(), v.stream_inf.resolution().unwrap().height), (Some(100), 20));
    assert_eq!((v.stream_inf.video_range(), v.stream_inf.score()), (Some("HLG"), Some(2.0)));
    assert_eq!(m.i_frame_variants().next().unwrap().uri(), Some("i.m3u8"));
    assert_eq!(m.session_data().next().unwrap().value(), Some("v"));
    assert_eq!(m.session_keys().next().unwrap().method(), KeyMethod::Aes128);
    assert_eq!(m.content_steering().unwrap().server_uri(), Some("s.json"));
    let e = MasterPlaylist::parse("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x\"\n").unwrap_err();
    assert_eq!(location(&e), (2, 14));
    let e = MasterPlaylist::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-ENDLIST\n").unwrap_err();
    assert!(matches!(e, Error::Syntax { line: 2, .. }), "{e}");
    let e = MasterPlaylist::parse("#EXTM3U\n#EXTINF:1,\n").unwrap_err();
    assert!(matches!(e, Error::WrongKind { expected: PlaylistKind::Master, line: 2, .. }), "{e}");
}

#[test]
fn detection() {
    assert_eq!(detect(b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA:TYPE=AUDIO\n"), Some(PlaylistKind::Master));
    assert_eq!(detect(b"#EXTM3U\n#EXTINF:1,\n"), Some(PlaylistKind::Media));
    assert_eq!(detect(b""), None);
}

#[test]
fn limits_are_errors() {
    let text = format!("{HEAD}#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n");
    let opts = |l: Limits| ParserOptions::default().limits(l);
    let e = MediaPlaylist::parse_with(&text, &opts(Limits::default().max_segments(1))).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    let e = MediaPlaylist::parse_with(&text, &opts(Limits::default().max_input_bytes(10))).unwrap_err();
    assert!(matches!(e, Error::Limit { line: 0, .. }), "{e}");
    let e = MediaPlaylist::parse_with(&text, &opts(Limits::default().max_line_bytes(8))).unwrap_err();
    assert!(matches!(e, Error::Limit { line: 2, .. }), "{e}");
    let key = format!("{HEAD}#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x1\n#EXTINF:1,\na.ts\n");
    let e = MediaPlaylist::parse_with(&key, &opts(Limits::default().max_attributes_per_tag(2))).unwrap_err();
    assert!(matches!(e, Error::Limit { line: 3, .. }), "{e}");
}

#[test]
fn rewrite_media_uris_keeps_everything_else() {
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"100@0\"\n\
                #EXTINF:4,\n#EXT-X-BYTERANGE:1000@100\nmain.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:1000\nmain.mp4\n\
                #EXT-X-PART:DURATION=1,URI=\"p.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"q.mp4\"\n\
                #EXT-X-RENDITION-REPORT:URI=\"o.m3u8\"\n#EXT-X-ENDLIST\n";
    let mut p = MediaPlaylist::parse(text).unwrap();
    let mut seen = Vec::new();
    p.rewrite_uris(|u| {
        seen.push((u.role, u.index, u.media_sequence));
        match u.role {
            UriRole::Map => Rewrite::ReplaceWhole("init.mp4".into()),
            UriRole::Segment if u.index == Some(0) => Rewrite::ReplaceWhole("0.mp4".into()),
            UriRole::Segment => Rewrite::Replace("local.mp4".into()),
            UriRole::Part | UriRole::PreloadHint | UriRole::RenditionReport => Rewrite::Remove,
            _ => Rewrite::Keep,
        }
    })
    .unwrap();
    assert_eq!(seen.len(), 6);
    assert_eq!(
        p.to_string(),
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\n0.mp4\n\
         #EXTINF:4,\n#EXT-X-BYTERANGE:1000@1100\nlocal.mp4\n#EXT-X-ENDLIST\n"
    );
    let e = p.rewrite_uris(|_| Rewrite::Remove).unwrap_err();
    assert!(matches!(e, Error::CannotRemove { .. }), "{e}");
}

#[test]
fn rewrite_master_and_drop_renditions() {
    let mut m = MasterPlaylist::parse(
        "#EXTM3U\n#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"a\",INSTREAM-ID=\"CC1\"\n\
         #EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",
    )
    .unwrap();
    m.retain_renditions(|r| r.media_type() != MediaType::ClosedCaptions);
    m.rewrite_uris(|u| match u.role {
        UriRole::SessionKey => Rewrite::Remove,
        _ => Rewrite::Replace(format!("local/{}", u.uri)),
    })
    .unwrap();
    assert_eq!(m.to_string(), "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlocal/v.m3u8\n");
    assert!(matches!(m.tags()[0], MasterTag::Variant(_)));
}

/// Every URI a media playlist can carry, one line each, all on the origin.
const MEDIA_URIS: &[(&str, UriRole)] = &[
    ("#EXT-X-KEY:METHOD=AES-128,URI=\"https://origin.example/key\"", UriRole::Key),
    ("#EXT-X-MAP:URI=\"https://origin.example/init.mp4\",BYTERANGE=\"600@0\"", UriRole::Map),
    ("#EXT-X-PART:DURATION=1,URI=\"https://origin.example/part.mp4\"", UriRole::Part),
    ("#EXTINF:4,\nhttps://origin.example/segment.mp4", UriRole::Segment),
    ("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"https://origin.example/hint.mp4\"", UriRole::PreloadHint),
    (
        "#EXT-X-RENDITION-REPORT:URI=\"https://origin.example/other.m3u8\",LAST-MSN=1",
        UriRole::RenditionReport,
    ),
];

/// Every URI a master playlist can carry, one line each, all on the origin.
const MASTER_URIS: &[(&str, UriRole)] = &[
    (
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"https://origin.example/en.m3u8\"",
        UriRole::Rendition,
    ),
    ("#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nhttps://origin.example/v.m3u8", UriRole::Variant),
    ("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"https://origin.example/i.m3u8\"", UriRole::IFrameVariant),
    ("#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://origin.example/key\"", UriRole::SessionKey),
    ("#EXT-X-SESSION-DATA:DATA-ID=\"d\",URI=\"https://origin.example/data.json\"", UriRole::SessionData),
    ("#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://origin.example/steer\"", UriRole::ContentSteering),
];

/// An offline copy must not point at the origin: every URI-bearing tag is offered to the rewrite under
/// its role, and replacing every URI leaves none of the origin's in the written playlist.
#[test]
fn every_uri_bearing_tag_is_offered_and_rewritten() {
    let lines: String = MEDIA_URIS.iter().map(|(line, _)| format!("{line}\n")).collect();
    let text = format!("{HEAD}{lines}#EXT-X-ENDLIST\n");
    let mut p = MediaPlaylist::parse(&text).unwrap();
    let mut offered = Vec::new();
    p.rewrite_uris(|u| {
        offered.push(u.role);
        Rewrite::ReplaceWhole(format!("local-{}", offered.len()))
    })
    .unwrap();
    let expected: Vec<UriRole> = MEDIA_URIS.iter().map(|(_, role)| *role).collect();
    assert_eq!(offered, expected);
    let written = p.to_string();
    assert!(!written.contains("origin.example"), "{written}");
    assert!(written.contains("#EXT-X-MAP:URI=\"local-2\"\n"), "{written}");

    let lines: String = MASTER_URIS.iter().map(|(line, _)| format!("{line}\n")).collect();
    let text = format!("#EXTM3U\n{lines}");
    let mut m = MasterPlaylist::parse(&text).unwrap();
    let mut offered = Vec::new();
    m.rewrite_uris(|u| {
        offered.push(u.role);
        Rewrite::Replace(format!("local-{}", offered.len()))
    })
    .unwrap();
    let expected: Vec<UriRole> = MASTER_URIS.iter().map(|(_, role)| *role).collect();
    assert_eq!(offered, expected);
    let written = m.to_string();
    assert!(!written.contains("origin.example"), "{written}");
    assert!(written.contains("\nlocal-2\n"), "{written}");

    // Removing each one removes its line.
    let mut m = MasterPlaylist::parse(&text).unwrap();
    m.rewrite_uris(|_| Rewrite::Remove).unwrap();
    assert_eq!(m.to_string(), "#EXTM3U\n");
}

/// EXT-X-PROGRAM-DATE-TIME without its colon and date is malformed, as every known tag without its
/// value is: an error, or leniently a line kept verbatim with a warning.
#[test]
fn program_date_time_without_value_is_malformed() {
    let e = media_error("#EXT-X-PROGRAM-DATE-TIME\n");
    assert_eq!(location(&e), (3, 25));
    assert!(e.to_string().contains("RFC 3339 date"), "{e}");
    let text = format!("{HEAD}#EXT-X-PROGRAM-DATE-TIME\n#EXTINF:9.5,\nseg.ts\n");
    let parsed = MediaPlaylist::parse_with(&text, &ParserOptions::lenient()).unwrap();
    assert!(
        matches!(&parsed.warnings[..], [w] if matches!(&w.kind, WarningKind::MalformedTag { tag, .. } if tag == "EXT-X-PROGRAM-DATE-TIME")),
        "{:?}",
        parsed.warnings
    );
    assert!(matches!(&parsed.playlist.header()[1], MediaTag::Unknown(s) if s == "#EXT-X-PROGRAM-DATE-TIME"));
    assert_eq!(parsed.playlist.to_string(), text);
}

#[test]
fn lenient_duplicate_byte_ranges_after_extinf_round_trip() {
    // Of two EXT-X-BYTERANGE the later applies; the earlier is kept verbatim where it was. Written back,
    // the applied one must still come later, or a second reading would pick the other one.
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:6,\n#EXT-X-BYTERANGE:100@0\n#X-OTHER:1\n\
                #EXT-X-BYTERANGE:200@0\n#X-MORE:2\nmain.ts\n#EXT-X-ENDLIST\n";
    let options = ParserOptions::lenient();
    let first = MediaPlaylist::parse_with(text, &options).unwrap();
    assert_eq!(first.playlist.segments()[0].byte_range().unwrap().length, 200);
    assert_eq!(first.warnings.len(), 1, "{:?}", first.warnings);
    let written = first.playlist.to_string();
    let second = MediaPlaylist::parse_with(&written, &options).unwrap();
    assert_eq!(second.playlist, first.playlist, "{written}");
    assert_eq!(second.playlist.to_string(), written);
    // A playlist with one range per segment keeps the canonical place, right after the #EXTINF.
    let canonical =
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:6,\n#EXT-X-BYTERANGE:100@0\n#X-OTHER:1\nmain.ts\n";
    assert_eq!(MediaPlaylist::parse(canonical).unwrap().to_string(), canonical);
}

#[test]
fn lenient_demoted_range_and_extinf_keep_their_order() {
    // A trailing EXT-X-BYTERANGE and #EXTINF with no URI after them are kept verbatim, in the order they
    // were read, whichever came first, so that a second reading gives the same playlist.
    let options = ParserOptions::lenient();
    for tail in ["#EXT-X-BYTERANGE:5\n#EXTINF:6,\n", "#EXTINF:6,\n#EXT-X-BYTERANGE:5\n"] {
        let text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\na.ts\n{tail}");
        let first = MediaPlaylist::parse_with(&text, &options).unwrap();
        let written = first.playlist.to_string();
        assert!(written.ends_with(tail), "{written}");
        let second = MediaPlaylist::parse_with(&written, &options).unwrap();
        assert_eq!(second.playlist, first.playlist, "{written}");
    }
}

#[test]
fn lenient_valueless_tags_followed_by_spaces_keep_their_meaning() {
    // Kept as unknown tags, these would read an ended playlist as live and lose a discontinuity.
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2 \n#EXTINF:2,\na.ts\n#EXT-X-DISCONTINUITY\t\n#EXTINF:2,\nb.ts\n\
                #EXT-X-ENDLIST \n";
    let parsed = MediaPlaylist::parse_with(text, &ParserOptions::lenient()).unwrap();
    let p = &parsed.playlist;
    assert!(p.is_ended());
    assert!(p.resolve(None).unwrap().segments[1].discontinuity);
    let spaces: Vec<usize> =
        parsed.warnings.iter().filter(|w| w.kind == WarningKind::Whitespace).map(|w| w.line).collect();
    assert_eq!(spaces, [2, 5, 8]);
    assert!(MediaPlaylist::parse(text).is_err());

    let master = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS  \n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n";
    let parsed = MasterPlaylist::parse_with(master, &ParserOptions::lenient()).unwrap();
    assert!(parsed.playlist.has_independent_segments());
    assert_eq!(parsed.warnings.len(), 1);
}
