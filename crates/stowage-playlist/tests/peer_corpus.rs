//! The peer corpus: real-world playlists collected by five other HLS parsers, kept outside the repository
//! (`stowage_testkit::peer_corpus` says where). Every file must parse leniently without panicking (or
//! fail with a typed error listed below with its reason), round-trip (parse → write → parse gives an
//! equal playlist), and for the videojs cases the fields both models share must match videojs's expected
//! parse. No line carrying a URI may be dropped without a warning (the check the fuzz targets make too).
//!
//! When the corpus is missing the test is skipped with the reason printed, unless `STOWAGE_REQUIRE_CORPUS`
//! is set (as CI sets it), in which case it fails.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stowage_playlist::{
    KeyMethod, MasterPlaylist, MediaPlaylist, MediaType, ParserOptions, Playlist, Rewrite,
};

#[path = "../../../fuzz/fuzz_targets/uri_lines.rs"]
mod uri_lines;

/// Inputs that no parse accepts, even leniently, and why that is right.
const EXPECTED_ERRORS: &[(&str, &str)] = &[];

/// videojs cases whose expected parse differs from ours on purpose, and why.
const DIFFERENT_ON_PURPOSE: &[(&str, &str)] = &[
    (
        "byteRange",
        "an EXT-X-BYTERANGE without offset after a sub-range of another resource is invalid (RFC 8216 \
         4.3.2.2); our resolved view refuses to guess an offset, videojs continues from the other file",
    ),
    (
        "llhls-byte-range",
        "same as byteRange: an implicit offset following a different resource (and a malformed `587500@`, \
         kept verbatim)",
    ),
    (
        "extinf",
        "#EXTINF lines with an unparseable duration are kept verbatim with a warning and their URIs are not \
         made segments; videojs substitutes the target duration",
    ),
    (
        "missingExtinf",
        "a URI without #EXTINF has no duration: kept verbatim with a warning, never turned into a segment \
         with an invented duration (videojs uses the target duration)",
    ),
    ("missingSegmentDuration", "same as missingExtinf"),
    ("liveMissingSegmentDuration", "same as missingExtinf"),
    ("multipleTargetDurations", "same as missingExtinf; of two TARGETDURATION tags the first is reported"),
    (
        "negativeMediaSequence",
        "EXT-X-MEDIA-SEQUENCE:-11 is not a decimal-integer: kept verbatim with a warning, so the media \
         sequence is the default 0",
    ),
    ("twoMediaSequences", "of two EXT-X-MEDIA-SEQUENCE tags the first is reported; videojs keeps the last"),
    ("zeroDuration", "#EXTINF:0 is kept as 0; videojs replaces a zero duration by 0.01"),
    (
        "streamInfInvalid",
        "EXT-X-STREAM-INF without the required BANDWIDTH: kept verbatim with a warning, not a variant",
    ),
];

#[derive(Default)]
struct Row {
    files: usize,
    strict_ok: usize,
    lenient_ok: usize,
    expected_errors: usize,
    warnings: usize,
    identical: usize,
    compared: usize,
    matching: usize,
}

fn num(v: f64) -> Value {
    json!(v)
}

/// Our media playlist in the shape of videojs's manifest object (only the shared fields).
fn media_as_videojs(p: &MediaPlaylist<'_>) -> Value {
    let resolved = p.resolve(None).ok();
    let mut segments = Vec::new();
    let mut discontinuity_starts = Vec::new();
    if let Some(r) = &resolved {
        for s in &r.segments {
            let mut seg = serde_json::Map::new();
            seg.insert("duration".into(), num(s.duration.to_f64()));
            seg.insert("uri".into(), json!(s.uri_as_written));
            seg.insert("timeline".into(), json!(s.discontinuity_sequence));
            if s.discontinuity {
                seg.insert("discontinuity".into(), json!(true));
                discontinuity_starts.push(s.index);
            }
            if let Some(b) = s.byte_range {
                seg.insert("byterange".into(), json!({"length": b.length, "offset": b.offset}));
            }
            if let Some(k) = s.keys.iter().find(|k| k.keyformat == "identity").or_else(|| s.keys.first()) {
                let method = match k.method {
                    KeyMethod::Aes128 => "AES-128",
                    KeyMethod::SampleAes => "SAMPLE-AES",
                    KeyMethod::SampleAesCtr => "SAMPLE-AES-CTR",
                    _ => "?",
                };
                let mut key = json!({"method": method, "uri": k.key.uri()});
                if k.iv_is_explicit {
                    let w: Vec<u32> =
                        k.iv.chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
                    key["iv"] = json!({"$uint32array": w});
                }
                seg.insert("key".into(), key);
            }
            if let Some(m) = &s.map {
                let mut map = json!({"uri": m.uri});
                if let Some(b) = m.byte_range {
                    map["byterange"] = json!({"length": b.length, "offset": b.offset});
                }
                seg.insert("map".into(), map);
            }
            segments.push(Value::Object(seg));
        }
    }
    let mut v = json!({
        "segments": segments,
        "discontinuityStarts": discontinuity_starts,
        "mediaSequence": p.media_sequence(),
        "discontinuitySequence": p.discontinuity_sequence(),
        "endList": p.is_ended(),
    });
    if let Some(t) = p.target_duration() {
        v["targetDuration"] = num(t.to_f64());
    }
    v
}

fn master_as_videojs(p: &MasterPlaylist<'_>) -> Value {
    let playlists: Vec<Value> = p
        .variants()
        .map(|v| {
            let s = &v.stream_inf;
            let mut attrs = serde_json::Map::new();
            if let Some(b) = s.bandwidth() {
                attrs.insert("BANDWIDTH".into(), json!(b));
            }
            if let Some(r) = s.resolution() {
                attrs.insert("RESOLUTION".into(), json!({"width": r.width, "height": r.height}));
            }
            if let Some(c) = s.codecs() {
                attrs.insert("CODECS".into(), json!(c));
            }
            if let Some(a) = s.audio() {
                attrs.insert("AUDIO".into(), json!(a));
            }
            if let Some(a) = s.subtitles() {
                attrs.insert("SUBTITLES".into(), json!(a));
            }
            if let Some(a) = s.video() {
                attrs.insert("VIDEO".into(), json!(a));
            }
            if let Some(f) = s.frame_rate() {
                attrs.insert("FRAME-RATE".into(), json!(f));
            }
            if let Some(id) = s.program_id() {
                attrs.insert("PROGRAM-ID".into(), json!(id));
            }
            json!({"uri": v.uri, "attributes": attrs})
        })
        .collect();
    let mut groups = json!({"AUDIO": {}, "VIDEO": {}, "SUBTITLES": {}, "CLOSED-CAPTIONS": {}});
    for r in p.renditions() {
        let t = match r.media_type() {
            MediaType::Audio => "AUDIO",
            MediaType::Video => "VIDEO",
            MediaType::Subtitles => "SUBTITLES",
            MediaType::ClosedCaptions => "CLOSED-CAPTIONS",
            MediaType::Other => continue,
        };
        let mut m = serde_json::Map::new();
        m.insert("default".into(), json!(r.default().unwrap_or(false)));
        m.insert("autoselect".into(), json!(r.autoselect().unwrap_or(false)));
        if let Some(l) = r.language() {
            m.insert("language".into(), json!(l));
        }
        if let Some(u) = r.uri() {
            m.insert("uri".into(), json!(u));
        }
        if let Some(i) = r.instream_id() {
            m.insert("instreamId".into(), json!(i));
        }
        if let Some(c) = r.characteristics() {
            m.insert("characteristics".into(), json!(c));
        }
        if let Some(f) = r.forced() {
            m.insert("forced".into(), json!(f));
        }
        let group = groups[t]
            .as_object_mut()
            .unwrap()
            .entry(r.group_id().unwrap_or_default().to_owned())
            .or_insert_with(|| json!({}));
        group[r.name().unwrap_or_default()] = Value::Object(m);
    }
    json!({"playlists": playlists, "mediaGroups": groups})
}

/// Compares the fields of `ours` with the same fields in `expected`; returns the differences.
fn compare(path: &str, ours: &Value, expected: &Value, diffs: &mut Vec<String>) {
    match (ours, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => compare(&format!("{path}.{k}"), va, vb, diffs),
                    // videojs leaves out some fields at their default value.
                    None => {
                        let default = matches!(va, Value::Bool(false))
                            || va == &json!(0)
                            || va.as_array().is_some_and(Vec::is_empty)
                            || va.as_object().is_some_and(serde_json::Map::is_empty)
                            || (k == "timeline" || k == "endList");
                        if !default {
                            diffs.push(format!("{path}.{k}: ours {va}, theirs absent"));
                        }
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                diffs.push(format!("{path}: {} items, theirs {}", a.len(), b.len()));
            }
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), va, vb, diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            if (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() > 1e-9 {
                diffs.push(format!("{path}: ours {a}, theirs {b}"));
            }
        }
        (a, b) if a == b => {}
        (a, b) => diffs.push(format!("{path}: ours {a}, theirs {b}")),
    }
}

#[test]
fn peer_corpus() {
    let Some(dir) = stowage_testkit::peer_corpus() else { return };
    let lenient = ParserOptions::lenient();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut on_purpose = Vec::new();
    for path in stowage_testkit::corpus_playlists(&dir) {
        let rel = path.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
        let folder = rel.split('/').next().unwrap().to_owned();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let row = rows.entry(folder.clone()).or_default();
        row.files += 1;
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            let strict = Playlist::parse(&input[..]).is_ok();
            let parsed = Playlist::parse_with(&input[..], &lenient);
            (strict, parsed.map(|p| (p.playlist.into_owned(), p.warnings)))
        });
        let Ok((strict, parsed)) = outcome else {
            failures.push(format!("{rel}: panicked"));
            continue;
        };
        row.strict_ok += usize::from(strict);
        let (playlist, warnings) = match parsed {
            Ok(p) => p,
            Err(e) => {
                match EXPECTED_ERRORS.iter().find(|(n, _)| rel.ends_with(n)) {
                    Some((_, why)) => {
                        row.expected_errors += 1;
                        on_purpose.push(format!("{rel}: error `{e}`: {why}"));
                    }
                    None => failures.push(format!("{rel}: lenient parse failed: {e}")),
                }
                continue;
            }
        };
        row.lenient_ok += 1;
        row.warnings += warnings.len();
        let mut uris = 0;
        let mut copy = playlist.clone();
        let _ = match &mut copy {
            Playlist::Media(m) => m.rewrite_uris(|_| {
                uris += 1;
                Rewrite::Keep
            }),
            Playlist::Master(m) => m.rewrite_uris(|_| {
                uris += 1;
                Rewrite::Keep
            }),
        };
        let check =
            std::panic::catch_unwind(|| uri_lines::assert_no_uri_dropped_silently(&input, uris, &warnings));
        if let Err(panic) = check {
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(format!("{rel}: {message}"));
        }
        let written = playlist.to_string();
        match Playlist::parse_with(&written, &lenient) {
            Ok(again) if again.playlist == playlist => {}
            Ok(_) => failures.push(format!("{rel}: parse -> write -> parse is not equal")),
            Err(e) => failures.push(format!("{rel}: the written playlist does not parse: {e}")),
        }
        row.identical += usize::from(written.as_bytes() == &input[..]);

        if folder == "videojs-m3u8-parser" {
            let expected_path = dir.join(&folder).join("expected").join(format!("{name}.json"));
            let Ok(text) = std::fs::read_to_string(&expected_path) else { continue };
            let expected: Value = serde_json::from_str(&text).unwrap();
            let ours = match &playlist {
                Playlist::Media(m) if expected.get("playlists").is_none() => media_as_videojs(m),
                Playlist::Master(m) => master_as_videojs(m),
                Playlist::Media(m) => media_as_videojs(m),
            };
            row.compared += 1;
            let mut diffs = Vec::new();
            compare("", &ours, &expected, &mut diffs);
            if diffs.is_empty() {
                row.matching += 1;
            } else if let Some((_, why)) = DIFFERENT_ON_PURPOSE.iter().find(|(n, _)| *n == name) {
                on_purpose.push(format!("{rel}: differs from videojs: {why} ({})", diffs.join("; ")));
            } else {
                failures.push(format!("{rel}: differs from videojs:\n    {}", diffs.join("\n    ")));
            }
        }
    }
    println!(
        "\n| folder | files | strict ok | lenient ok | expected errors | warnings | byte-identical | videojs compared | videojs equal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut total = Row::default();
    for (folder, r) in &rows {
        println!(
            "| {folder} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.files,
            r.strict_ok,
            r.lenient_ok,
            r.expected_errors,
            r.warnings,
            r.identical,
            r.compared,
            r.matching
        );
        total.files += r.files;
        total.strict_ok += r.strict_ok;
        total.lenient_ok += r.lenient_ok;
        total.expected_errors += r.expected_errors;
        total.identical += r.identical;
        total.compared += r.compared;
        total.matching += r.matching;
    }
    println!(
        "| total | {} | {} | {} | {} | | {} | {} | {} |",
        total.files,
        total.strict_ok,
        total.lenient_ok,
        total.expected_errors,
        total.identical,
        total.compared,
        total.matching
    );
    println!("\nDifferent on purpose:");
    for line in &on_purpose {
        println!("- {line}");
    }
    assert!(failures.is_empty(), "{} peer case(s) failed:\n{}", failures.len(), failures.join("\n"));
}
