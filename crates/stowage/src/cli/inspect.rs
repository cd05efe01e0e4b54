//! `stowage inspect`: what a playlist holds, as a readable summary or as JSON.
//!
//! The JSON shape is documented in the crate's root docs; keep the two in step.

mod json;

use std::fmt::Write as _;

use anyhow::Context;
use stowage_playlist::{
    ByteRange, IFrameStreamInf, KeyMethod, MasterPlaylist, MediaPlaylist, MediaType, ParserOptions, Playlist,
    PlaylistType, Rendition, ResolvedMedia, Variant, Warning, resolve_uri,
};

use super::output;
use super::request::RequestArgs;
use super::source::{Loaded, Loader, Location};
use super::table;
use super::units::{human_bytes, human_duration};

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The playlist: a file, `-` for standard input, or an http(s) URL.
    source: String,
    /// Resolve URIs against this absolute URL (default: the URL the playlist was fetched from).
    #[arg(long, value_name = "URL")]
    base: Option<String>,
    /// Parse on through known deviations (BOM, CRLF, missing #EXTM3U, ...) and list each as a warning.
    #[arg(long)]
    lenient: bool,
    /// Print the full resolved view as JSON instead of the summary.
    #[arg(long)]
    json: bool,
    /// Do not load the media playlists a master playlist refers to (no durations or size estimates).
    #[arg(long)]
    shallow: bool,
    /// List every segment of a media playlist in the summary.
    #[arg(long)]
    segments: bool,
    #[command(flatten)]
    request: RequestArgs,
}

pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let mut loader = Loader::new(&args.request)?;
    let loaded = loader.load(&args.source)?;
    let mut options = if args.lenient { ParserOptions::lenient() } else { ParserOptions::strict() };
    // EXT-X-DEFINE:QUERYPARAM takes its value from the query of the URL the playlist was loaded from:
    // the URL fetched, or for a file, the --base it stands for.
    if let Some(query) = loaded.location.base_url().or(args.base.as_deref()).and_then(query_of) {
        options = options.query(query);
    }
    let parsed = Playlist::parse_with(&loaded.bytes, &options)
        .with_context(|| format!("{}: not a valid playlist", loaded.location.describe()))?;
    let base = args.base.as_deref().or(loaded.location.base_url());
    if let Some(base) = args.base.as_deref() {
        // Checked up front so that a bad --base is reported as such, not as a failure of some URI.
        resolve_uri(base, "x").with_context(|| "--base")?;
    }
    let out = match &parsed.playlist {
        Playlist::Master(master) => {
            let children = if args.shallow {
                Vec::new()
            } else {
                load_children(&mut loader, &loaded.location, master, &parsed.variables)
            };
            if args.json {
                output::json(&json::master_json(master, base, &children, &parsed.warnings)?) + "\n"
            } else {
                master_text(master, &loaded.location, &children, &parsed.warnings)
            }
        }
        Playlist::Media(media) => {
            let resolved = media.resolve(base)?;
            if args.json {
                output::json(&json::media_json(media, &resolved, base, &parsed.warnings)?) + "\n"
            } else {
                media_text(media, &resolved, &loaded.location, &parsed.warnings, args.segments)
            }
        }
    };
    output::print(&out)
}

/// What a child media playlist told us: its duration, or why it could not be had.
type Child = Result<ChildSummary, String>;

struct ChildSummary {
    duration: f64,
    segments: usize,
    /// Exact bytes when every segment is a byte range of known length.
    exact_bytes: Option<u64>,
}

/// The URIs a master refers to, variants first then renditions with a URI, in document order.
fn child_uris<'m>(master: &'m MasterPlaylist<'_>) -> Vec<&'m str> {
    master.variants().map(|v| v.uri.as_ref()).chain(master.renditions().filter_map(Rendition::uri)).collect()
}

/// The query of a URL (after `?`, without the fragment), when it has one.
fn query_of(url: &str) -> Option<&str> {
    url.split('#').next()?.split_once('?').map(|(_, query)| query)
}

/// Loads the media playlists of `master` and reads each with the master's `variables` (for
/// `EXT-X-DEFINE:IMPORT`) and the query of the URI it was loaded from (for `QUERYPARAM`).
fn load_children(
    loader: &mut Loader,
    parent: &Location,
    master: &MasterPlaylist<'_>,
    variables: &[(String, String)],
) -> Vec<Child> {
    let uris = child_uris(master);
    let loaded = loader.load_children(parent, &uris);
    uris.iter()
        .zip(loaded)
        .map(|(uri, loaded)| {
            let Loaded { bytes, location } = loaded.map_err(|e| format!("{e:#}"))?;
            let mut options = ParserOptions::lenient();
            if let Some(query) = location.base_url().or(Some(uri)).and_then(query_of) {
                options = options.query(query);
            }
            for (name, value) in variables {
                options = options.import(name.clone(), value.clone());
            }
            let parsed = MediaPlaylist::parse_with(&bytes, &options)
                .map_err(|e| format!("not a valid media playlist: {e}"))?;
            let media = parsed.playlist;
            let duration = media.segments().iter().map(|s| s.duration().to_f64()).sum();
            let exact_bytes = media
                .segments()
                .iter()
                .map(|s| s.byte_range().map(|r: ByteRange| r.length))
                .sum::<Option<u64>>()
                .filter(|_| !media.segments().is_empty());
            Ok(ChildSummary { duration, segments: media.segments().len(), exact_bytes })
        })
        .collect()
}

fn estimated_bytes(variant: &Variant<'_>, child: Option<&Child>) -> Option<u64> {
    let child = child?.as_ref().ok()?;
    if let Some(bytes) = child.exact_bytes {
        return Some(bytes);
    }
    let inf = &variant.stream_inf;
    let bits_per_second = inf.average_bandwidth().or(inf.bandwidth())?;
    Some((bits_per_second as f64 * child.duration / 8.0).round() as u64)
}

fn human_rate(bits_per_second: u64) -> String {
    if bits_per_second >= 1_000_000 {
        format!("{:.2} Mb/s", bits_per_second as f64 / 1e6)
    } else {
        format!("{:.0} kb/s", bits_per_second as f64 / 1e3)
    }
}

fn warnings_text(out: &mut String, warnings: &[Warning]) {
    if warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nwarnings ({})", warnings.len());
    for w in warnings {
        let _ = writeln!(out, "  {w}");
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn master_text(
    master: &MasterPlaylist<'_>,
    location: &Location,
    children: &[Child],
    warnings: &[Warning],
) -> String {
    let mut out = String::new();
    let mut facts = Vec::new();
    if let Some(v) = master.version() {
        facts.push(format!("version {v}"));
    }
    if master.has_independent_segments() {
        facts.push("independent segments".to_owned());
    }
    let _ = writeln!(out, "master playlist  {}  ({})", location.describe(), facts.join(", "));

    let variants: Vec<&Variant<'_>> = master.variants().collect();
    let _ = writeln!(out, "\nvariants ({})", variants.len());
    let mut rows = vec![
        ["#", "bandwidth", "average", "resolution", "fps", "range", "codecs", "audio", "subs", "duration"]
            .iter()
            .chain(["est. size", "uri"].iter())
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>(),
    ];
    for (i, variant) in variants.iter().enumerate() {
        let inf = &variant.stream_inf;
        let child = children.get(i);
        rows.push(vec![
            i.to_string(),
            opt(inf.bandwidth().map(human_rate)),
            opt(inf.average_bandwidth().map(human_rate)),
            opt(inf.resolution()),
            opt(inf.frame_rate().map(|f| format!("{f:.3}"))),
            opt(inf.video_range()),
            opt(inf.codecs()),
            opt(inf.audio()),
            opt(inf.subtitles()),
            match child {
                Some(Ok(c)) => human_duration(c.duration),
                Some(Err(_)) => "?".to_owned(),
                None => "-".to_owned(),
            },
            opt(estimated_bytes(variant, child).map(|b| format!("~{}", human_bytes(b)))),
            variant.uri.to_string(),
        ]);
    }
    table(&mut out, &rows);

    let renditions: Vec<&Rendition<'_>> = master.renditions().collect();
    if !renditions.is_empty() {
        let _ = writeln!(out, "\nrenditions ({})", renditions.len());
        let mut rows = vec![
            ["type", "group", "language", "name", "default", "auto", "forced", "channels", "duration", "uri"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        ];
        let mut child_index = variants.len();
        for r in &renditions {
            let child = if r.uri().is_some() {
                child_index += 1;
                children.get(child_index - 1)
            } else {
                None
            };
            rows.push(vec![
                media_type_name(r.media_type(), r.media_type_text()).to_owned(),
                opt(r.group_id()),
                opt(r.language()),
                opt(r.name()),
                yes_no(r.default()),
                yes_no(r.autoselect()),
                yes_no(r.forced()),
                opt(r.channels()),
                match child {
                    Some(Ok(c)) => human_duration(c.duration),
                    Some(Err(_)) => "?".to_owned(),
                    None => "-".to_owned(),
                },
                r.uri().map_or_else(
                    || opt(r.instream_id().map(|id| format!("(in-stream {id})"))),
                    str::to_owned,
                ),
            ]);
        }
        table(&mut out, &rows);
    }

    let i_frames: Vec<&IFrameStreamInf<'_>> = master.i_frame_variants().collect();
    if !i_frames.is_empty() {
        let _ = writeln!(out, "\nI-frame variants ({})", i_frames.len());
        let mut rows = vec![vec!["bandwidth".to_owned(), "resolution".into(), "codecs".into(), "uri".into()]];
        for v in i_frames {
            rows.push(vec![
                opt(v.bandwidth().map(human_rate)),
                opt(v.resolution()),
                opt(v.codecs()),
                opt(v.uri()),
            ]);
        }
        table(&mut out, &rows);
    }

    let session_keys: Vec<_> = master.session_keys().collect();
    if !session_keys.is_empty() {
        let _ = writeln!(out, "\nsession keys ({})", session_keys.len());
        for k in session_keys {
            let _ = writeln!(out, "  {} {} {}", opt(k.method_text()), k.keyformat(), opt(k.uri()));
        }
    }
    let session_data: Vec<_> = master.session_data().collect();
    if !session_data.is_empty() {
        let _ = writeln!(out, "\nsession data ({})", session_data.len());
        for d in session_data {
            let _ = writeln!(out, "  {} = {}", opt(d.data_id()), opt(d.value().or(d.uri())));
        }
    }
    if let Some(steering) = master.content_steering() {
        let _ = writeln!(out, "\ncontent steering  {}", opt(steering.server_uri()));
    }
    let failed: Vec<(&str, &String)> = child_uris(master)
        .into_iter()
        .zip(children)
        .filter_map(|(uri, c)| c.as_ref().err().map(|e| (uri, e)))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\nnot loaded ({})", failed.len());
        for (uri, why) in failed {
            let _ = writeln!(out, "  {uri}: {why}");
        }
    }
    warnings_text(&mut out, warnings);
    out
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

fn media_type_name(t: MediaType, text: Option<&str>) -> &str {
    match t {
        MediaType::Audio => "AUDIO",
        MediaType::Video => "VIDEO",
        MediaType::Subtitles => "SUBTITLES",
        MediaType::ClosedCaptions => "CLOSED-CAPTIONS",
        MediaType::Other => text.unwrap_or("?"),
    }
}

fn method_name(method: KeyMethod) -> &'static str {
    match method {
        KeyMethod::None => "NONE",
        KeyMethod::Aes128 => "AES-128",
        KeyMethod::SampleAes => "SAMPLE-AES",
        KeyMethod::SampleAesCtr => "SAMPLE-AES-CTR",
        _ => "other",
    }
}

fn playlist_type_name(t: Option<PlaylistType>) -> Option<&'static str> {
    match t? {
        PlaylistType::Vod => Some("VOD"),
        PlaylistType::Event => Some("EVENT"),
    }
}

fn media_text(
    media: &MediaPlaylist<'_>,
    resolved: &ResolvedMedia<'_>,
    location: &Location,
    warnings: &[Warning],
    list_segments: bool,
) -> String {
    let mut out = String::new();
    let mut facts = Vec::new();
    if let Some(v) = media.version() {
        facts.push(format!("version {v}"));
    }
    if let Some(t) = playlist_type_name(media.playlist_type()) {
        facts.push(t.to_owned());
    }
    facts.push(if media.is_ended() { "ended".to_owned() } else { "live (no ENDLIST)".to_owned() });
    if media.is_i_frames_only() {
        facts.push("I-frames only".to_owned());
    }
    let _ = writeln!(out, "media playlist  {}  ({})", location.describe(), facts.join(", "));

    let segments = &resolved.segments;
    let mut rows =
        vec![vec!["target duration".to_owned(), opt(media.target_duration().map(|d| format!("{d} s")))]];
    rows.push(vec![
        "media sequence".to_owned(),
        format!("{} (discontinuity sequence {})", media.media_sequence(), media.discontinuity_sequence()),
    ]);
    let (shortest, longest) = segments.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
        let d = s.duration.to_f64();
        (lo.min(d), hi.max(d))
    });
    rows.push(vec![
        "segments".to_owned(),
        if segments.is_empty() {
            "none".to_owned()
        } else {
            format!(
                "{}, {:.3} s in all ({:.3} to {:.3} s each)",
                segments.len(),
                resolved.total_duration,
                shortest,
                longest
            )
        },
    ]);
    let discontinuities = segments.iter().filter(|s| s.discontinuity).count();
    rows.push(vec!["discontinuities".to_owned(), discontinuities.to_string()]);
    let gaps = segments.iter().filter(|s| s.gap).count();
    if gaps > 0 {
        rows.push(vec!["gaps".to_owned(), gaps.to_string()]);
    }
    let ranged: Vec<_> = segments.iter().filter(|s| s.byte_range.is_some()).collect();
    rows.push(vec![
        "byte ranges".to_owned(),
        if ranged.is_empty() {
            "none".to_owned()
        } else {
            let mut resources: Vec<&str> = ranged.iter().map(|s| s.uri.as_ref()).collect();
            resources.sort_unstable();
            resources.dedup();
            let bytes: u64 = ranged.iter().filter_map(|s| s.byte_range.map(|r| r.length)).sum();
            format!("{} segments in {} resource(s), {}", ranged.len(), resources.len(), human_bytes(bytes))
        },
    ]);
    let mut maps: Vec<&str> =
        segments.iter().filter_map(|s| s.map.as_ref().map(|m| m.uri.as_ref())).collect();
    maps.dedup();
    if !maps.is_empty() {
        rows.push(vec!["init sections".to_owned(), format!("{} ({})", maps.len(), maps.join(", "))]);
    }
    let mut keys: Vec<(&'static str, String, Option<&str>)> = Vec::new();
    let mut explicit_ivs = 0;
    let mut encrypted = 0;
    for s in segments {
        let mut any = false;
        for k in &s.keys {
            if k.method == KeyMethod::None {
                continue;
            }
            any = true;
            if k.iv_is_explicit {
                explicit_ivs += 1;
            }
            let entry = (method_name(k.method), k.keyformat.to_owned(), k.uri.as_deref());
            if !keys.contains(&entry) {
                keys.push(entry);
            }
        }
        encrypted += usize::from(any);
    }
    rows.push(vec![
        "keys".to_owned(),
        if keys.is_empty() {
            "none (clear)".to_owned()
        } else {
            let mut methods: Vec<String> = keys
                .iter()
                .map(|(m, f, _)| if f == "identity" { (*m).to_owned() } else { format!("{m} ({f})") })
                .collect();
            methods.dedup();
            format!(
                "{}: {} key(s) over {} of {} segments; IVs {}",
                methods.join(", "),
                keys.len(),
                encrypted,
                segments.len(),
                if explicit_ivs == 0 {
                    "from the media sequence number".to_owned()
                } else if explicit_ivs == encrypted {
                    "explicit".to_owned()
                } else {
                    format!("explicit for {explicit_ivs}, else from the media sequence number")
                }
            )
        },
    ]);
    if let (Some(first), Some(last)) = (
        segments.iter().find_map(|s| s.program_date_time),
        segments.iter().rev().find_map(|s| s.program_date_time),
    ) {
        rows.push(vec!["program date time".to_owned(), format!("{first} to {last}")]);
    }
    let date_ranges = media.date_ranges().count();
    if date_ranges > 0 {
        rows.push(vec!["date ranges".to_owned(), date_ranges.to_string()]);
    }
    if media.part_inf().is_some() {
        rows.push(vec!["low latency".to_owned(), "partial segments (EXT-X-PART-INF)".to_owned()]);
    }
    out.push('\n');
    table(&mut out, &rows);
    if list_segments && !segments.is_empty() {
        let _ = writeln!(out, "\nsegments");
        let mut rows =
            vec![["msn", "disc", "start", "duration", "range", "key", "uri"].map(str::to_owned).to_vec()];
        for s in segments {
            rows.push(vec![
                s.media_sequence.to_string(),
                s.discontinuity_sequence.to_string(),
                format!("{:.3}", s.start),
                s.duration.to_string(),
                opt(s.byte_range),
                s.keys
                    .iter()
                    .find(|k| k.method != KeyMethod::None)
                    .map_or_else(|| "-".to_owned(), |k| opt(k.uri.as_deref())),
                s.uri.to_string(),
            ]);
        }
        table(&mut out, &rows);
    }
    warnings_text(&mut out, warnings);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::from("0x"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
