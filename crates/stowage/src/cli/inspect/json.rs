//! `inspect --json`: the whole model the parser keeps, every tag and every attribute, as the crate's root
//! docs describe it (a test checks the two against each other).
//!
//! Each tag with an attribute list is shown through a table of the attributes it knows (JSON name,
//! attribute name, how its value is shown); whatever else the tag carries, client attributes and
//! attributes of newer versions of HLS, is kept in its `other_attributes`, as written.

use anyhow::Context;
use serde_json::{Map, Value, json};
use stowage_playlist::{
    AttributeList, ByteRange, MasterPlaylist, MasterTag, MediaPlaylist, MediaTag, ResolvedMedia,
    ResolvedSegment, Warning, resolve_uri,
};

use super::{Child, estimated_bytes, hex, media_type_name, playlist_type_name};

/// How an attribute's value is shown.
#[derive(Clone, Copy)]
enum Shape {
    /// decimal-integer: a number.
    Int,
    /// decimal-floating-point: a number.
    Float,
    /// quoted-string, enumerated-string, hexadecimal-sequence: the text as written.
    Text,
    /// `YES`/`NO`: a boolean.
    YesNo,
    /// decimal-resolution: `{width, height}`.
    Resolution,
    /// A quoted date: RFC 3339 text.
    Date,
    /// A quoted `length[@offset]`: `{length, offset}`.
    Range,
}

/// An attribute a tag knows: its JSON name, its name in the playlist, and how its value is shown.
type Field = (&'static str, &'static str, Shape);

use Shape::{Date, Float, Int, Range, Resolution, Text, YesNo};

const START: &[Field] = &[("time_offset", "TIME-OFFSET", Float), ("precise", "PRECISE", YesNo)];
const DEFINE: &[Field] = &[
    ("name", "NAME", Text),
    ("value", "VALUE", Text),
    ("import", "IMPORT", Text),
    ("query_param", "QUERYPARAM", Text),
];
const PART_INF: &[Field] = &[("part_target", "PART-TARGET", Float)];
const SERVER_CONTROL: &[Field] = &[
    ("can_skip_until", "CAN-SKIP-UNTIL", Float),
    ("can_skip_dateranges", "CAN-SKIP-DATERANGES", YesNo),
    ("hold_back", "HOLD-BACK", Float),
    ("part_hold_back", "PART-HOLD-BACK", Float),
    ("can_block_reload", "CAN-BLOCK-RELOAD", YesNo),
];
const SKIP: &[Field] = &[
    ("skipped_segments", "SKIPPED-SEGMENTS", Int),
    ("recently_removed_dateranges", "RECENTLY-REMOVED-DATERANGES", Text),
];
const KEY: &[Field] = &[
    ("method", "METHOD", Text),
    ("uri", "URI", Text),
    ("iv", "IV", Text),
    ("keyformat", "KEYFORMAT", Text),
    ("keyformat_versions", "KEYFORMATVERSIONS", Text),
];
const MAP: &[Field] = &[("uri", "URI", Text), ("byte_range", "BYTERANGE", Range)];
const DATE_RANGE: &[Field] = &[
    ("id", "ID", Text),
    ("class", "CLASS", Text),
    ("start_date", "START-DATE", Date),
    ("cue", "CUE", Text),
    ("end_date", "END-DATE", Date),
    ("duration", "DURATION", Float),
    ("planned_duration", "PLANNED-DURATION", Float),
    ("scte35_cmd", "SCTE35-CMD", Text),
    ("scte35_out", "SCTE35-OUT", Text),
    ("scte35_in", "SCTE35-IN", Text),
    ("end_on_next", "END-ON-NEXT", YesNo),
];
const PART: &[Field] = &[
    ("uri", "URI", Text),
    ("duration", "DURATION", Float),
    ("independent", "INDEPENDENT", YesNo),
    ("byte_range", "BYTERANGE", Range),
    ("gap", "GAP", YesNo),
];
const PRELOAD_HINT: &[Field] = &[
    ("type", "TYPE", Text),
    ("uri", "URI", Text),
    ("byte_range_start", "BYTERANGE-START", Int),
    ("byte_range_length", "BYTERANGE-LENGTH", Int),
];
const RENDITION_REPORT: &[Field] =
    &[("uri", "URI", Text), ("last_msn", "LAST-MSN", Int), ("last_part", "LAST-PART", Int)];
const RENDITION: &[Field] = &[
    ("type", "TYPE", Text),
    ("uri", "URI", Text),
    ("group_id", "GROUP-ID", Text),
    ("language", "LANGUAGE", Text),
    ("assoc_language", "ASSOC-LANGUAGE", Text),
    ("name", "NAME", Text),
    ("stable_rendition_id", "STABLE-RENDITION-ID", Text),
    ("default", "DEFAULT", YesNo),
    ("autoselect", "AUTOSELECT", YesNo),
    ("forced", "FORCED", YesNo),
    ("instream_id", "INSTREAM-ID", Text),
    ("bit_depth", "BIT-DEPTH", Int),
    ("sample_rate", "SAMPLE-RATE", Int),
    ("characteristics", "CHARACTERISTICS", Text),
    ("channels", "CHANNELS", Text),
];
const STREAM_INF: &[Field] = &[
    ("bandwidth", "BANDWIDTH", Int),
    ("average_bandwidth", "AVERAGE-BANDWIDTH", Int),
    ("score", "SCORE", Float),
    ("codecs", "CODECS", Text),
    ("supplemental_codecs", "SUPPLEMENTAL-CODECS", Text),
    ("resolution", "RESOLUTION", Resolution),
    ("frame_rate", "FRAME-RATE", Float),
    ("hdcp_level", "HDCP-LEVEL", Text),
    ("allowed_cpc", "ALLOWED-CPC", Text),
    ("video_range", "VIDEO-RANGE", Text),
    ("req_video_layout", "REQ-VIDEO-LAYOUT", Text),
    ("stable_variant_id", "STABLE-VARIANT-ID", Text),
    ("audio", "AUDIO", Text),
    ("video", "VIDEO", Text),
    ("subtitles", "SUBTITLES", Text),
    ("closed_captions", "CLOSED-CAPTIONS", Text),
    ("pathway_id", "PATHWAY-ID", Text),
    ("program_id", "PROGRAM-ID", Int),
];
const I_FRAME_STREAM_INF: &[Field] = &[
    ("uri", "URI", Text),
    ("bandwidth", "BANDWIDTH", Int),
    ("average_bandwidth", "AVERAGE-BANDWIDTH", Int),
    ("score", "SCORE", Float),
    ("codecs", "CODECS", Text),
    ("supplemental_codecs", "SUPPLEMENTAL-CODECS", Text),
    ("resolution", "RESOLUTION", Resolution),
    ("hdcp_level", "HDCP-LEVEL", Text),
    ("allowed_cpc", "ALLOWED-CPC", Text),
    ("video_range", "VIDEO-RANGE", Text),
    ("req_video_layout", "REQ-VIDEO-LAYOUT", Text),
    ("stable_variant_id", "STABLE-VARIANT-ID", Text),
    ("video", "VIDEO", Text),
    ("pathway_id", "PATHWAY-ID", Text),
    ("program_id", "PROGRAM-ID", Int),
];
const SESSION_DATA: &[Field] = &[
    ("data_id", "DATA-ID", Text),
    ("value", "VALUE", Text),
    ("uri", "URI", Text),
    ("format", "FORMAT", Text),
    ("language", "LANGUAGE", Text),
];
const CONTENT_STEERING: &[Field] = &[("server_uri", "SERVER-URI", Text), ("pathway_id", "PATHWAY-ID", Text)];

fn range_json(range: Option<ByteRange>) -> Value {
    match range {
        Some(r) => json!({"length": r.length, "offset": r.offset}),
        None => Value::Null,
    }
}

/// One attribute's value, or `null` when it is absent (or, after a lenient parse, not of its type).
fn value(list: &AttributeList<'_>, name: &str, shape: Shape) -> Value {
    match shape {
        Int => json!(list.integer(name)),
        Float => json!(list.float(name)),
        Text => json!(list.text(name)),
        YesNo => json!(list.yes_no(name)),
        Resolution => {
            list.resolution(name).map_or(Value::Null, |r| json!({"width": r.width, "height": r.height}))
        }
        Date => json!(list.date(name).map(|d| d.to_string())),
        Range => range_json(list.byte_range(name)),
    }
}

/// A tag's attributes: those of `fields` under their JSON names, every other one (as written) in
/// `other_attributes`, less those `skip` takes elsewhere.
fn tag_object(list: &AttributeList<'_>, fields: &[Field], skip: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut object = Map::new();
    for &(key, name, shape) in fields {
        object.insert(key.to_owned(), value(list, name, shape));
    }
    let other: Map<String, Value> = list
        .iter()
        .filter(|a| !fields.iter().any(|(_, name, _)| a.name == *name) && !skip(&a.name))
        .map(|a| (a.name.to_string(), json!(a.value.as_str())))
        .collect();
    object.insert("other_attributes".to_owned(), Value::Object(other));
    object
}

fn attributes(list: &AttributeList<'_>, fields: &[Field]) -> Map<String, Value> {
    tag_object(list, fields, |_| false)
}

fn resolve_opt(base: Option<&str>, uri: &str) -> anyhow::Result<String> {
    match base {
        Some(base) => Ok(resolve_uri(base, uri)?),
        None => Ok(uri.to_owned()),
    }
}

/// Replaces the URI attribute `key` with its resolved form and adds `{key}_as_written`.
fn resolve_field(object: &mut Map<String, Value>, key: &str, base: Option<&str>) -> anyhow::Result<()> {
    let written = object.get(key).and_then(Value::as_str).map(str::to_owned);
    let resolved = match &written {
        Some(uri) => json!(resolve_opt(base, uri).with_context(|| format!("{key} {uri}"))?),
        None => Value::Null,
    };
    object.insert(key.to_owned(), resolved);
    object.insert(format!("{key}_as_written"), json!(written));
    Ok(())
}

fn warnings_json(warnings: &[Warning]) -> Value {
    warnings
        .iter()
        .map(|w| json!({"line": w.line, "column": w.column, "message": w.kind.to_string()}))
        .collect()
}

fn child_json(child: Option<&Child>) -> (Value, Value) {
    match child {
        Some(Ok(c)) => (json!({"duration": c.duration, "segments": c.segments}), Value::Null),
        Some(Err(e)) => (Value::Null, json!(e)),
        None => (Value::Null, Value::Null),
    }
}

pub(super) fn master_json(
    master: &MasterPlaylist<'_>,
    base: Option<&str>,
    children: &[Child],
    warnings: &[Warning],
) -> anyhow::Result<Value> {
    let mut variants = Vec::new();
    for (i, v) in master.variants().enumerate() {
        let child = children.get(i);
        let (media, error) = child_json(child);
        let mut object = attributes(v.stream_inf.attributes(), STREAM_INF);
        object.insert("uri".to_owned(), json!(v.uri));
        resolve_field(&mut object, "uri", base)?;
        object.insert("media".to_owned(), media);
        object.insert("media_error".to_owned(), error);
        object.insert("estimated_bytes".to_owned(), json!(estimated_bytes(v, child)));
        variants.push(Value::Object(object));
    }
    let mut renditions = Vec::new();
    let mut child_index = master.variants().count();
    for r in master.renditions() {
        let child = if r.uri().is_some() {
            child_index += 1;
            children.get(child_index - 1)
        } else {
            None
        };
        let (media, error) = child_json(child);
        let mut object = attributes(r.attributes(), RENDITION);
        object.insert("type".to_owned(), json!(media_type_name(r.media_type(), r.media_type_text())));
        for flag in ["default", "autoselect", "forced"] {
            // Absent means NO.
            if object[flag].is_null() {
                object.insert(flag.to_owned(), json!(false));
            }
        }
        resolve_field(&mut object, "uri", base)?;
        object.insert("media".to_owned(), media);
        object.insert("media_error".to_owned(), error);
        renditions.push(Value::Object(object));
    }
    let mut i_frame_variants = Vec::new();
    for v in master.i_frame_variants() {
        let mut object = attributes(v.attributes(), I_FRAME_STREAM_INF);
        resolve_field(&mut object, "uri", base)?;
        i_frame_variants.push(Value::Object(object));
    }
    let mut session_keys = Vec::new();
    for k in master.session_keys() {
        let mut object = attributes(k.attributes(), KEY);
        object.insert("keyformat".to_owned(), json!(k.keyformat()));
        resolve_field(&mut object, "uri", base)?;
        session_keys.push(Value::Object(object));
    }
    let mut session_data = Vec::new();
    for d in master.session_data() {
        let mut object = attributes(d.attributes(), SESSION_DATA);
        resolve_field(&mut object, "uri", base)?;
        session_data.push(Value::Object(object));
    }
    let content_steering = match master.content_steering() {
        Some(c) => {
            let mut object = attributes(c.attributes(), CONTENT_STEERING);
            resolve_field(&mut object, "server_uri", base)?;
            Value::Object(object)
        }
        None => Value::Null,
    };
    let mut unknown_tags = Vec::new();
    let mut comments = Vec::new();
    for tag in master.tags() {
        match tag {
            MasterTag::Unknown(line) => unknown_tags.push(json!({"tag": line})),
            MasterTag::Comment(line) => comments.push(json!({"text": line})),
            _ => {}
        }
    }
    Ok(json!({
        "kind": "master",
        "version": master.version(),
        "independent_segments": master.has_independent_segments(),
        "start": master.start().map(|s| Value::Object(attributes(s.attributes(), START))),
        "defines": master.defines().map(|d| Value::Object(attributes(d.attributes(), DEFINE))).collect::<Vec<_>>(),
        "variants": variants,
        "renditions": renditions,
        "i_frame_variants": i_frame_variants,
        "session_keys": session_keys,
        "session_data": session_data,
        "content_steering": content_steering,
        "unknown_tags": unknown_tags,
        "comments": comments,
        "warnings": warnings_json(warnings),
    }))
}

/// Where a tag of a media playlist was written: before segment `Some(i)`'s URI, or in the header or after
/// the last segment (`None`).
fn placed_tags<'p, 'a>(
    media: &'p MediaPlaylist<'a>,
) -> impl Iterator<Item = (Option<usize>, &'p MediaTag<'a>)> {
    let segments = (0..media.segments().len())
        .flat_map(move |i| media.segment_tags(i).iter().map(move |t| (Some(i), t)));
    media.header().iter().map(|t| (None, t)).chain(segments).chain(media.trailer().iter().map(|t| (None, t)))
}

fn part_json(part: &stowage_playlist::Part<'_>, base: Option<&str>) -> anyhow::Result<Value> {
    let mut object = attributes(part.attributes(), PART);
    resolve_field(&mut object, "uri", base)?;
    Ok(Value::Object(object))
}

fn segment_json(s: &ResolvedSegment<'_>, parts: Vec<Value>) -> Value {
    let map = match &s.map {
        Some(m) => {
            let mut object = attributes(m.map.attributes(), MAP);
            object.insert("uri".to_owned(), json!(m.uri));
            object.insert("uri_as_written".to_owned(), json!(m.map.uri()));
            object.insert("byte_range".to_owned(), range_json(m.byte_range));
            Value::Object(object)
        }
        None => Value::Null,
    };
    let keys: Vec<Value> = s
        .keys
        .iter()
        .map(|k| {
            let mut object = attributes(k.key.attributes(), KEY);
            object.insert("keyformat".to_owned(), json!(k.keyformat));
            object.insert("uri".to_owned(), json!(k.uri));
            object.insert("uri_as_written".to_owned(), json!(k.key.uri()));
            object.insert("iv".to_owned(), json!(hex(&k.iv)));
            object.insert("iv_is_explicit".to_owned(), json!(k.iv_is_explicit));
            Value::Object(object)
        })
        .collect();
    json!({
        "media_sequence": s.media_sequence,
        "discontinuity_sequence": s.discontinuity_sequence,
        "discontinuity": s.discontinuity,
        "gap": s.gap,
        "uri": s.uri,
        "uri_as_written": s.uri_as_written,
        "duration": s.duration.to_f64(),
        "title": s.title,
        "start": s.start,
        "program_date_time": s.program_date_time.map(|t| t.to_string()),
        "bitrate": s.bitrate,
        "byte_range": range_json(s.byte_range),
        "map": map,
        "keys": keys,
        "parts": parts,
    })
}

pub(super) fn media_json(
    media: &MediaPlaylist<'_>,
    resolved: &ResolvedMedia<'_>,
    base: Option<&str>,
    warnings: &[Warning],
) -> anyhow::Result<Value> {
    let mut parts: Vec<Vec<Value>> = vec![Vec::new(); media.segments().len()];
    let mut pending_parts = Vec::new();
    let mut date_ranges = Vec::new();
    let mut preload_hints = Vec::new();
    let mut rendition_reports = Vec::new();
    let mut unknown_tags = Vec::new();
    let mut comments = Vec::new();
    for (segment, tag) in placed_tags(media) {
        match tag {
            MediaTag::Part(p) => match segment.and_then(|i| parts.get_mut(i)) {
                Some(of) => of.push(part_json(p, base)?),
                None => pending_parts.push(part_json(p, base)?),
            },
            MediaTag::DateRange(d) => {
                let mut object = tag_object(d.attributes(), DATE_RANGE, |name| name.starts_with("X-"));
                let client: Map<String, Value> =
                    d.client_attributes().map(|a| (a.name.to_string(), json!(a.value.as_str()))).collect();
                object.insert("client_attributes".to_owned(), Value::Object(client));
                object.insert("segment".to_owned(), json!(segment));
                date_ranges.push(Value::Object(object));
            }
            MediaTag::PreloadHint(h) => {
                let mut object = attributes(h.attributes(), PRELOAD_HINT);
                resolve_field(&mut object, "uri", base)?;
                preload_hints.push(Value::Object(object));
            }
            MediaTag::RenditionReport(r) => {
                let mut object = attributes(r.attributes(), RENDITION_REPORT);
                resolve_field(&mut object, "uri", base)?;
                rendition_reports.push(Value::Object(object));
            }
            MediaTag::Unknown(line) => unknown_tags.push(json!({"tag": line, "segment": segment})),
            MediaTag::Comment(line) => comments.push(json!({"text": line, "segment": segment})),
            _ => {}
        }
    }
    let mut segments = Vec::with_capacity(resolved.segments.len());
    for (s, parts) in resolved.segments.iter().zip(parts) {
        segments.push(segment_json(s, parts));
    }
    let object = |list: Option<&AttributeList<'_>>, fields: &[Field]| {
        list.map_or(Value::Null, |l| Value::Object(attributes(l, fields)))
    };
    Ok(json!({
        "kind": "media",
        "version": media.version(),
        "target_duration": media.target_duration().map(|d| d.to_f64()),
        "media_sequence": media.media_sequence(),
        "discontinuity_sequence": media.discontinuity_sequence(),
        "playlist_type": playlist_type_name(media.playlist_type()),
        "ended": media.is_ended(),
        "i_frames_only": media.is_i_frames_only(),
        "independent_segments": media.has_independent_segments(),
        "total_duration": resolved.total_duration,
        "start": object(media.start().map(|s| s.attributes()), START),
        "server_control": object(media.server_control().map(|s| s.attributes()), SERVER_CONTROL),
        "part_inf": object(media.part_inf().map(|p| p.attributes()), PART_INF),
        "skip": object(media.skip().map(|s| s.attributes()), SKIP),
        "defines": media.defines().map(|d| Value::Object(attributes(d.attributes(), DEFINE))).collect::<Vec<_>>(),
        "segments": segments,
        "pending_parts": pending_parts,
        "date_ranges": date_ranges,
        "preload_hints": preload_hints,
        "rendition_reports": rendition_reports,
        "unknown_tags": unknown_tags,
        "comments": comments,
        "warnings": warnings_json(warnings),
    }))
}
