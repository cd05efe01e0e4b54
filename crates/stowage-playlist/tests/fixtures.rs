//! Data-driven tests: every `data/*.m3u8` is parsed (leniently when its name starts with `lenient-`,
//! with the options of a sibling `.options` file if any), rendered as a readable summary of the resolved
//! view and the round-trip, and compared with the sibling `.expected` file. Adding a case is adding a file:
//! run with `STOWAGE_BLESS=1` to write its `.expected`, then review it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use stowage_playlist::{MasterPlaylist, MasterTag, MediaPlaylist, MediaTag, ParserOptions, Playlist, detect};
use stowage_testkit::Snapshots;

const BASE: &str = "https://example.com/path/index.m3u8";

fn options_for(path: &Path) -> ParserOptions {
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut options =
        if name.starts_with("lenient-") { ParserOptions::lenient() } else { ParserOptions::default() };
    let extra = path.with_extension("options");
    if let Ok(text) = std::fs::read_to_string(&extra) {
        for line in text.lines() {
            let mut words = line.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("query"), Some(q), None) => options = options.query(q),
                (Some("import"), Some(n), Some(v)) => options = options.import(n, v),
                _ => panic!("{}: unknown option line {line:?}", extra.display()),
            }
        }
    }
    options
}

fn render_media(out: &mut String, p: &MediaPlaylist<'_>) {
    let _ = writeln!(
        out,
        "media playlist: {} segments, version {:?}, target duration {:?}, media sequence {}, \
         discontinuity sequence {}, type {:?}, ended {}, i-frames only {}",
        p.segments().len(),
        p.version(),
        p.target_duration().map(|d| d.to_string()),
        p.media_sequence(),
        p.discontinuity_sequence(),
        p.playlist_type(),
        p.is_ended(),
        p.is_i_frames_only(),
    );
    if let Some(s) = p.server_control() {
        let _ = writeln!(
            out,
            "server control: can block reload {:?}, can skip until {:?}, part hold back {:?}",
            s.can_block_reload(),
            s.can_skip_until(),
            s.part_hold_back()
        );
    }
    if let Some(s) = p.part_inf() {
        let _ = writeln!(out, "part target {:?}", s.part_target());
    }
    for d in p.date_ranges() {
        let _ = writeln!(
            out,
            "date range {:?} class {:?} start {:?} duration {:?} planned {:?} out {:?} in {:?} end on next {} \
             client {:?}",
            d.id(),
            d.class(),
            d.start_date().map(|d| d.to_string()),
            d.duration(),
            d.planned_duration(),
            d.scte35_out().map(|b| b.len()),
            d.scte35_in().map(|b| b.len()),
            d.end_on_next(),
            d.client_attributes().map(|a| format!("{}={}", a.name, a.value.as_str())).collect::<Vec<_>>()
        );
    }
    for h in p.preload_hints() {
        let _ = writeln!(out, "preload hint {:?} {:?}", h.hint_type(), h.uri());
    }
    for r in p.rendition_reports() {
        let _ =
            writeln!(out, "rendition report {:?} msn {:?} part {:?}", r.uri(), r.last_msn(), r.last_part());
    }
    for t in p.tags() {
        if let MediaTag::Unknown(s) | MediaTag::Comment(s) = t {
            let _ = writeln!(out, "kept line {s:?}");
        }
    }
    let resolved = match p.resolve(Some(BASE)) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "resolve error: {e}");
            return;
        }
    };
    let _ = writeln!(out, "total duration {:.3}", resolved.total_duration);
    for s in &resolved.segments {
        let _ = writeln!(
            out,
            "segment {}: msn {} dsn {}{}{} start {:.3} duration {} title {:?} uri {}",
            s.index,
            s.media_sequence,
            s.discontinuity_sequence,
            if s.discontinuity { " discontinuity" } else { "" },
            if s.gap { " gap" } else { "" },
            s.start,
            s.duration,
            s.title,
            s.uri
        );
        if let Some(r) = s.byte_range {
            let _ = writeln!(out, "  range {r}");
        }
        if let Some(m) = &s.map {
            let _ = writeln!(out, "  map {} {:?}", m.uri, m.byte_range.map(|r| r.to_string()));
        }
        for k in &s.keys {
            let iv: String = k.iv.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(
                out,
                "  key {:?} {} {:?} iv {iv}{} versions {:?}",
                k.method,
                k.keyformat,
                k.uri,
                if k.iv_is_explicit { " (explicit)" } else { "" },
                k.key.keyformat_versions()
            );
        }
        if let Some(d) = s.program_date_time {
            let _ = writeln!(out, "  date {d}");
        }
        if let Some(b) = s.bitrate {
            let _ = writeln!(out, "  bitrate {b}");
        }
        for t in p.segment_tags(s.index).iter() {
            if let MediaTag::Part(part) = t {
                let _ = writeln!(
                    out,
                    "  part {:?} {:?} independent {:?} range {:?}",
                    part.uri(),
                    part.duration(),
                    part.independent(),
                    part.byte_range().map(|r| r.to_string())
                );
            }
        }
    }
}

fn render_master(out: &mut String, p: &MasterPlaylist<'_>) {
    let _ = writeln!(
        out,
        "master playlist: version {:?}, independent segments {}, start {:?}",
        p.version(),
        p.has_independent_segments(),
        p.start().map(|s| (s.time_offset(), s.precise()))
    );
    for t in p.tags() {
        let _ = match t {
            MasterTag::Variant(v) => {
                let s = &v.stream_inf;
                writeln!(
                    out,
                    "variant {} bandwidth {:?} average {:?} codecs {:?} supplemental {:?} resolution {:?} \
                     frame rate {:?} audio {:?} subtitles {:?} cc {:?} hdcp {:?} range {:?} score {:?} \
                     stable id {:?} pathway {:?} cpc {:?} layout {:?} attributes {}",
                    v.uri,
                    s.bandwidth(),
                    s.average_bandwidth(),
                    s.codecs(),
                    s.supplemental_codecs(),
                    s.resolution().map(|r| r.to_string()),
                    s.frame_rate(),
                    s.audio(),
                    s.subtitles(),
                    s.closed_captions(),
                    s.hdcp_level(),
                    s.video_range(),
                    s.score(),
                    s.stable_variant_id(),
                    s.pathway_id(),
                    s.allowed_cpc(),
                    s.req_video_layout(),
                    s.attributes().len()
                )
            }
            MasterTag::Rendition(r) => writeln!(
                out,
                "rendition {:?} group {:?} name {:?} language {:?} assoc {:?} default {:?} autoselect {:?} \
                 forced {:?} channels {:?} bit depth {:?} sample rate {:?} instream {:?} characteristics {:?} \
                 stable id {:?} uri {:?}",
                r.media_type(),
                r.group_id(),
                r.name(),
                r.language(),
                r.assoc_language(),
                r.default(),
                r.autoselect(),
                r.forced(),
                r.channels(),
                r.bit_depth(),
                r.sample_rate(),
                r.instream_id(),
                r.characteristics(),
                r.stable_rendition_id(),
                r.uri()
            ),
            MasterTag::IFrameVariant(v) => writeln!(
                out,
                "i-frame variant {:?} bandwidth {:?} codecs {:?} resolution {:?}",
                v.uri(),
                v.bandwidth(),
                v.codecs(),
                v.resolution().map(|r| r.to_string())
            ),
            MasterTag::SessionData(d) => {
                writeln!(
                    out,
                    "session data {:?} value {:?} uri {:?} language {:?}",
                    d.data_id(),
                    d.value(),
                    d.uri(),
                    d.language()
                )
            }
            MasterTag::SessionKey(k) => {
                writeln!(out, "session key {:?} {:?} {}", k.method(), k.uri(), k.keyformat())
            }
            MasterTag::ContentSteering(c) => {
                writeln!(out, "content steering {:?} pathway {:?}", c.server_uri(), c.pathway_id())
            }
            MasterTag::Define(d) => writeln!(out, "define {:?} = {:?}", d.name(), d.value()),
            MasterTag::Unknown(s) | MasterTag::Comment(s) => writeln!(out, "kept line {s:?}"),
            other => writeln!(out, "tag {other:?}"),
        };
    }
}

fn render(input: &[u8], options: &ParserOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "detected: {:?}", detect(input));
    let parsed = match Playlist::parse_with(input, options) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return out;
        }
    };
    for w in &parsed.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    match &parsed.playlist {
        Playlist::Media(p) => render_media(&mut out, p),
        Playlist::Master(p) => render_master(&mut out, p),
    }
    // Round-trip: the written text parses to an equal playlist, and is the input itself when the input
    // was written canonically.
    let written = parsed.playlist.to_string();
    let again = Playlist::parse_with(&written, options).expect("the written playlist parses").playlist;
    assert_eq!(again, parsed.playlist, "parse -> write -> parse changed the playlist");
    let identical = written.as_bytes() == input;
    let _ = writeln!(out, "round-trip: {}", if identical { "identical" } else { "equal (normalised)" });
    let owned = parsed.playlist.clone().into_owned();
    assert_eq!(owned, parsed.playlist);
    out
}

fn check_dir(dir: &Path) {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "m3u8"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut snapshots = Snapshots::new();
    for case in &cases {
        let input = std::fs::read(case).unwrap();
        let actual = render(&input, &options_for(case));
        snapshots.check(&case.with_extension("expected"), &actual);
    }
    snapshots.finish();
}

#[test]
fn data_files() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"));
}
