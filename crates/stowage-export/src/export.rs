//! One export, from the bundle to the output file: what goes in, where each part of the asset goes on the
//! timeline, and which writer makes the file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use stowage_bundle::{Hole, MediaFormat, RenditionKind, SegmentKind};
use stowage_playlist::webvtt;

use crate::error::{Error, Result};
use crate::options::{
    Container, ExportOptions, ExportReport, GapReport, Method, Progress, Selection, Track, TrackKind,
};
use crate::source::Source;
use crate::timeline::{PartMeasure, Timeline};
use crate::{fmp4, lang, ts};

/// A rendition chosen for the output.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    pub(crate) index: usize,
    pub(crate) kind: TrackKind,
    pub(crate) default: bool,
    pub(crate) forced: bool,
}

/// Bytes and segments read so far, shared with the threads that feed ffmpeg.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pub(crate) bytes: AtomicU64,
    pub(crate) segments: AtomicU64,
    pub(crate) bytes_total: u64,
    pub(crate) segments_total: u64,
}

impl Meter {
    pub(crate) fn add(&self, bytes: u64, segments: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.segments.fetch_add(segments, Ordering::Relaxed);
    }

    pub(crate) fn progress(&self) -> Progress {
        Progress {
            bytes_done: self.bytes.load(Ordering::Relaxed),
            bytes_total: self.bytes_total,
            segments_done: self.segments.load(Ordering::Relaxed),
            segments_total: self.segments_total,
        }
    }
}

/// The progress callback and what it is told, for the writers that run on the caller's thread.
pub(crate) struct Ticker<'a> {
    pub(crate) meter: &'a Meter,
    pub(crate) callback: &'a mut dyn FnMut(&Progress) -> ControlFlow<()>,
    pub(crate) output: &'a Path,
}

impl Ticker<'_> {
    /// Counts what was read and tells the callback; a callback that breaks cancels the export.
    pub(crate) fn tick(&mut self, bytes: u64, segments: u64) -> Result<()> {
        self.meter.add(bytes, segments);
        self.report()
    }

    pub(crate) fn report(&mut self) -> Result<()> {
        match (self.callback)(&self.meter.progress()) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Cancelled { path: self.output.to_path_buf() }),
        }
    }
}

/// Everything a writer needs to know.
pub(crate) struct Job<'a> {
    pub(crate) source: &'a Source,
    pub(crate) container: Container,
    pub(crate) media: Vec<Selected>,
    pub(crate) subtitles: Vec<Selected>,
    pub(crate) timeline: Timeline,
}

pub(crate) fn run(
    bundle: &Path,
    options: &ExportOptions,
    callback: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<ExportReport> {
    let source = Source::open(bundle)?;
    let container = options
        .container
        .or_else(|| Container::from_path(&options.output))
        .ok_or_else(|| Error::UnknownContainer { path: options.output.clone() })?;
    let mut notes = Vec::new();
    let (media, subtitles) = select(&source, container, options, &mut notes)?;
    // A recording's holes are named first: a hole says which media sequences the recording missed and why,
    // where the missing entries it may have in the plan (written as `EXT-X-GAP`) say only the first.
    let holes: Vec<&Hole> = media.iter().chain(&subtitles).flat_map(|s| holes_of(&source, s.index)).collect();
    if let Some(first) = holes.first()
        && !options.allow_gaps
    {
        return Err(Error::Holes { holes: holes.len(), first: Box::new((*first).clone()) });
    }
    let missing = missing(&source, media.iter().chain(&subtitles));
    if let Some(&(r, e)) = missing.first()
        && !options.allow_gaps
    {
        return Err(Error::Incomplete { missing: missing.len(), first: source.id(r, e) });
    }
    for s in &media {
        let format = source.rendition(s.index).plan.format;
        if !matches!(format, MediaFormat::Ts | MediaFormat::Fmp4) {
            return Err(Error::Unsupported {
                container: container.extension(),
                reason: format!(
                    "rendition {} is packed audio ({}), which export does not read; choose other audio with \
                     --audio",
                    source.rendition(s.index).plan.id,
                    format.segment_extension()
                ),
            });
        }
    }
    let method = method(&source, container, &media, &subtitles);
    // The subtitle files line up with what a default export of the same bundle would hold.
    let clock: Vec<usize> =
        if media.is_empty() { default_media(&source) } else { media.iter().map(|s| s.index).collect() };
    let timeline = measure(&source, &clock, &subtitles.iter().map(|s| s.index).collect::<Vec<_>>())?;
    let meter = Meter {
        bytes_total: media.iter().chain(&subtitles).map(|s| stored_bytes(&source, s.index)).sum(),
        segments_total: media.iter().chain(&subtitles).map(|s| stored_count(&source, s.index)).sum(),
        ..Meter::default()
    };
    let job = Job { source: &source, container, media, subtitles, timeline };
    let mut ticker = Ticker { meter: &meter, callback, output: &options.output };
    ticker.report()?;
    let mut output = crate::output::Output::create(&options.output)?;
    match method {
        // `method` chose TsConcat for exactly one media rendition, Subtitles for exactly one subtitle one.
        Method::TsConcat => {
            write_ts(&job, job.media[0].index, true, &mut output, &mut |b, s| ticker.tick(b, s))?;
        }
        Method::Fmp4 => {
            let indices: Vec<usize> = job.media.iter().map(|s| s.index).collect();
            let muxer = write_fmp4(&job, &indices, &mut output, &mut |b, s| ticker.tick(b, s))?;
            let (at, bytes) = muxer.duration_patch();
            drop(muxer);
            output.patch(at, &bytes)?;
        }
        Method::Subtitles => {
            let text = subtitle_file(&job, job.subtitles[0].index, container, &mut |b, s| ticker.tick(b, s))?;
            output.write_all(text.as_bytes()).map_err(|e| output.error(e))?;
        }
        Method::Ffmpeg => crate::ffmpeg::run(&job, options, &mut output, &mut ticker)?,
    }
    ticker.report()?;
    let bytes = output.commit()?;
    let tracks = job
        .media
        .iter()
        .chain(&job.subtitles)
        .map(|s| {
            let plan = &source.rendition(s.index).plan;
            Track {
                kind: s.kind,
                rendition: plan.id.to_string(),
                language: plan.language.clone(),
                language_code: if container == Container::Mkv || container == Container::Ts {
                    lang::iso639_2b(plan.language.as_deref())
                } else {
                    lang::iso639_2t(plan.language.as_deref())
                },
                name: plan.name.clone(),
                default: s.default,
            }
        })
        .collect();
    let mut gaps = gap_report(&source, &job.timeline, &missing);
    gaps.extend(hole_report(&source, &job.timeline, &clock, job.media.iter().chain(&job.subtitles)));
    Ok(ExportReport {
        output: options.output.clone(),
        container,
        method,
        tracks,
        bytes,
        duration: job.timeline.duration(),
        gaps,
        notes,
    })
}

fn describe(source: &Source, kind: RenditionKind) -> String {
    let list: Vec<String> = source
        .manifest()
        .renditions
        .iter()
        .filter(|r| r.plan.kind == kind)
        .map(|r| match (&r.plan.language, &r.plan.name) {
            (Some(l), Some(n)) => format!("{} ({l}, {n})", r.plan.id),
            (Some(l), None) => format!("{} ({l})", r.plan.id),
            (None, Some(n)) => format!("{} ({n})", r.plan.id),
            (None, None) => r.plan.id.to_string(),
        })
        .collect();
    if list.is_empty() { format!("no {} rendition", kind.as_str()) } else { list.join(", ") }
}

/// The renditions of `kind` that `selection` names, in its order.
fn pick(source: &Source, kind: RenditionKind, selection: &Selection) -> Result<Vec<usize>> {
    let candidates: Vec<usize> =
        (0..source.manifest().renditions.len()).filter(|&i| source.rendition(i).plan.kind == kind).collect();
    match selection {
        Selection::All => Ok(candidates),
        Selection::None => Ok(Vec::new()),
        Selection::Only(wanted) => {
            let mut out = Vec::new();
            for w in wanted {
                let found: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let plan = &source.rendition(i).plan;
                        plan.id.as_str() == w
                            || plan.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(w))
                            || lang::matches(plan.language.as_deref(), w)
                    })
                    .collect();
                if found.is_empty() {
                    return Err(Error::NoSuchRendition {
                        kind: kind.as_str(),
                        wanted: w.clone(),
                        available: describe(source, kind),
                    });
                }
                for i in found {
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The video rendition of a default export: the primary one, the highest bandwidth among several.
fn default_video(source: &Source) -> Option<usize> {
    let renditions = &source.manifest().renditions;
    let videos = || (0..renditions.len()).filter(|&i| renditions[i].plan.kind == RenditionKind::Video);
    let best = |it: Vec<usize>| it.into_iter().max_by_key(|&i| renditions[i].plan.bandwidth.unwrap_or(0));
    best(videos().filter(|&i| renditions[i].plan.primary).collect()).or_else(|| best(videos().collect()))
}

/// The media renditions of a default export: the video and every audio rendition.
fn default_media(source: &Source) -> Vec<usize> {
    let mut out: Vec<usize> = default_video(source).into_iter().collect();
    out.extend(
        (0..source.manifest().renditions.len())
            .filter(|&i| source.rendition(i).plan.kind == RenditionKind::Audio),
    );
    out
}

fn select(
    source: &Source,
    container: Container,
    options: &ExportOptions,
    notes: &mut Vec<String>,
) -> Result<(Vec<Selected>, Vec<Selected>)> {
    let unsupported = |reason: String| Error::Unsupported { container: container.extension(), reason };
    let mut media = Vec::new();
    if !container.is_subtitles() {
        if container != Container::M4a {
            let video = match &options.video {
                Some(id) => Some(
                    (0..source.manifest().renditions.len())
                        .find(|&i| {
                            let plan = &source.rendition(i).plan;
                            plan.kind == RenditionKind::Video && plan.id.as_str() == id
                        })
                        .ok_or_else(|| Error::NoSuchRendition {
                            kind: "video",
                            wanted: id.clone(),
                            available: describe(source, RenditionKind::Video),
                        })?,
                ),
                None => default_video(source),
            };
            media.extend(video.map(|index| Selected {
                index,
                kind: TrackKind::Video,
                default: true,
                forced: false,
            }));
        }
        let audio = pick(source, RenditionKind::Audio, &options.audio)?;
        let default = audio.iter().copied().find(|&i| source.is_default(i)).or(audio.first().copied());
        media.extend(audio.iter().map(|&index| Selected {
            index,
            kind: TrackKind::Audio,
            default: Some(index) == default,
            forced: false,
        }));
    }
    if media.is_empty() && !container.is_subtitles() {
        return Err(unsupported(format!(
            "nothing to export: the selection holds no video or audio rendition (the bundle holds: {}; {})",
            describe(source, RenditionKind::Video),
            describe(source, RenditionKind::Audio)
        )));
    }
    let mut subtitles = pick(source, RenditionKind::Subtitles, &options.subtitles)?;
    if !container.carries_subtitles() && !container.is_subtitles() && !subtitles.is_empty() {
        if options.subtitles == Selection::All {
            notes.push(format!(
                "{} subtitle rendition(s) left out: .{} does not carry subtitles (export them to .vtt or .srt)",
                subtitles.len(),
                container.extension()
            ));
            subtitles.clear();
        } else {
            return Err(unsupported(
                "this format does not carry subtitles; export them to .vtt or .srt".into(),
            ));
        }
    }
    if container.is_subtitles() && subtitles.len() != 1 {
        return Err(unsupported(if subtitles.is_empty() {
            format!(
                "no subtitle rendition to write (the bundle holds: {})",
                describe(source, RenditionKind::Subtitles)
            )
        } else {
            format!(
                "a subtitle file holds one rendition, and {} are selected ({}); choose one with --subs LANG",
                subtitles.len(),
                describe(source, RenditionKind::Subtitles)
            )
        }));
    }
    let default = subtitles.iter().copied().find(|&i| source.is_default(i));
    let subtitles = subtitles
        .into_iter()
        .map(|index| Selected {
            index,
            kind: TrackKind::Subtitles,
            default: Some(index) == default,
            forced: source.is_forced(index),
        })
        .collect();
    Ok((media, subtitles))
}

/// The planned entries of the selected renditions that are not stored, as (rendition, entry).
fn missing<'a>(source: &Source, selected: impl Iterator<Item = &'a Selected>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for s in selected {
        for (e, entry) in source.rendition(s.index).plan.segments.iter().enumerate() {
            if source.stored_len(s.index, entry).is_none() {
                out.push((s.index, e));
            }
        }
    }
    out
}

fn stored_bytes(source: &Source, r: usize) -> u64 {
    source.rendition(r).plan.segments.iter().filter_map(|e| source.stored_len(r, e)).sum()
}

fn stored_count(source: &Source, r: usize) -> u64 {
    source.rendition(r).plan.segments.iter().filter(|e| source.stored_len(r, e).is_some()).count() as u64
}

fn method(source: &Source, container: Container, media: &[Selected], subtitles: &[Selected]) -> Method {
    let format = |s: &Selected| source.rendition(s.index).plan.format;
    match container {
        Container::WebVtt | Container::Srt => Method::Subtitles,
        Container::Ts if media.len() == 1 && format(&media[0]) == MediaFormat::Ts => Method::TsConcat,
        Container::Mp4 | Container::M4a
            if subtitles.is_empty() && media.iter().all(|s| format(s) == MediaFormat::Fmp4) =>
        {
            Method::Fmp4
        }
        _ => Method::Ffmpeg,
    }
}

/// For each media entry of a rendition, the index of the initialization section in force (an entry index),
/// if any.
pub(crate) fn inits_in_force(source: &Source, r: usize) -> Vec<Option<usize>> {
    let mut current = None;
    source
        .rendition(r)
        .plan
        .segments
        .iter()
        .enumerate()
        .map(|(e, entry)| {
            if entry.kind == SegmentKind::Init {
                current = Some(e);
            }
            current
        })
        .collect()
}

/// Where one stored media entry starts and ends, on its part's clock (seconds).
fn probe_entry(
    source: &Source,
    r: usize,
    e: usize,
    init: Option<&fmp4::Init>,
) -> Result<Option<(f64, f64, Option<u64>)>> {
    let bytes = source.read(r, e)?;
    let id = || source.id(r, e);
    match source.rendition(r).plan.format {
        MediaFormat::Fmp4 => {
            let init =
                init.ok_or_else(|| Error::media(&id(), "no initialization section is stored for it"))?;
            let found = fmp4::probe(init, &bytes).map_err(|m| Error::media(&id(), m))?;
            Ok(found.map(|(s, e)| (s, e, None)))
        }
        _ => {
            let found = ts::probe(&bytes).map_err(|m| Error::media(&id(), m))?;
            Ok(found.map(|x| {
                (
                    x.start as f64 / ts::CLOCK,
                    (x.start as f64 + (x.end - x.start) as f64) / ts::CLOCK,
                    Some(x.start),
                )
            }))
        }
    }
}

/// Reads and parses an initialization section entry.
pub(crate) fn read_init(source: &Source, r: usize, e: usize) -> Result<fmp4::Init> {
    let bytes = source.read(r, e)?;
    if bytes.len() as u64 > fmp4::MAX_INIT_LEN {
        return Err(Error::media(&source.id(r, e), "the initialization section is larger than 16 MiB"));
    }
    fmp4::Init::parse(&bytes).map_err(|m| Error::media(&source.id(r, e), m))
}

/// Measures the renditions part by part (first and last stored media of each part) and builds the
/// timeline.
fn measure(source: &Source, media: &[usize], subtitles: &[usize]) -> Result<Timeline> {
    // Times of MPEG-TS renditions are 33-bit; within a part they are unwrapped near the first one measured.
    let mut references: HashMap<u64, f64> = HashMap::new();
    let mut unwrap = |d: u64, secs: f64, ticks: Option<u64>| -> f64 {
        match (references.get(&d), ticks) {
            (Some(&reference), Some(t)) => {
                let r = ((reference * ts::CLOCK).round() as i64).rem_euclid(ts::WRAP as i64) as u64;
                reference + ts::ts_diff(t, r) as f64 / ts::CLOCK
            }
            (Some(_), None) => secs,
            (None, _) => {
                references.insert(d, secs);
                secs
            }
        }
    };
    let mut measured = Vec::new();
    for &r in media {
        let plan = &source.rendition(r).plan;
        let inits = inits_in_force(source, r);
        let mut parsed: HashMap<usize, fmp4::Init> = HashMap::new();
        let mut parts: Vec<(u64, PartMeasure)> = Vec::new();
        let entries: Vec<usize> =
            (0..plan.segments.len()).filter(|&e| plan.segments[e].kind == SegmentKind::Media).collect();
        // The recording's holes, each with the entry after it, which starts a part.
        let leads: Vec<(usize, f64)> =
            hole_entries(source, r).into_iter().filter_map(|(hole, e)| Some((e?, seconds(hole)))).collect();
        let mut d_entries: Vec<(u64, Vec<usize>)> = Vec::new();
        for &e in &entries {
            let d = plan.segments[e].discontinuity_sequence;
            match d_entries.last_mut() {
                Some((last, list)) if *last == d => list.push(e),
                _ => d_entries.push((d, vec![e])),
            }
        }
        for (d, list) in d_entries {
            let declared: f64 = list.iter().map(|&e| plan.segments[e].duration).sum();
            let usable = |e: usize| {
                source.stored_len(r, &plan.segments[e]).is_some()
                    && match (plan.format, inits[e]) {
                        (MediaFormat::Fmp4, Some(i)) => source.stored_len(r, &plan.segments[i]).is_some(),
                        (MediaFormat::Fmp4, None) => false,
                        _ => true,
                    }
            };
            let mut init_for = |e: usize| -> Result<Option<fmp4::Init>> {
                match (plan.format, inits[e]) {
                    (MediaFormat::Fmp4, Some(i)) => {
                        if let Some(init) = parsed.get(&i) {
                            return Ok(Some(init.clone()));
                        }
                        let init = read_init(source, r, i)?;
                        parsed.insert(i, init.clone());
                        Ok(Some(init))
                    }
                    _ => Ok(None),
                }
            };
            let lead = leads.iter().filter(|(e, _)| *e == list[0]).map(|(_, length)| length).sum();
            let mut measure = PartMeasure { start: None, end: None, declared, lead };
            let mut before = 0.0;
            for &e in &list {
                if usable(e) {
                    let init = init_for(e)?;
                    if let Some((start, _, ticks)) = probe_entry(source, r, e, init.as_ref())? {
                        measure.start = Some(unwrap(d, start, ticks) - before);
                        break;
                    }
                }
                before += plan.segments[e].duration;
            }
            let mut after = 0.0;
            for &e in list.iter().rev() {
                if usable(e) {
                    let init = init_for(e)?;
                    if let Some((start, end, ticks)) = probe_entry(source, r, e, init.as_ref())? {
                        measure.end = Some(unwrap(d, start, ticks) + (end - start) + after);
                        break;
                    }
                }
                after += plan.segments[e].duration;
            }
            parts.push((d, measure));
        }
        measured.push(parts);
    }
    let others: Vec<Vec<(u64, PartMeasure)>> = subtitles
        .iter()
        .map(|&r| {
            let leads = hole_entries(source, r);
            let mut parts: Vec<(u64, PartMeasure)> = Vec::new();
            for (e, entry) in source.rendition(r).plan.segments.iter().enumerate() {
                let d = entry.discontinuity_sequence;
                match parts.last_mut() {
                    Some((last, m)) if *last == d => m.declared += entry.duration,
                    _ => {
                        let lead = leads
                            .iter()
                            .filter(|(_, after)| *after == Some(e))
                            .map(|(h, _)| seconds(h))
                            .sum();
                        parts.push((
                            d,
                            PartMeasure { declared: entry.duration, lead, ..PartMeasure::default() },
                        ));
                    }
                }
            }
            parts
        })
        .collect();
    Ok(Timeline::new(&measured, &others))
}

/// The 90 kHz offset that carries MPEG-TS part `d` onto the timeline, keeping the first part's clock.
pub(crate) fn ts_offset(timeline: &Timeline, d: u64) -> u64 {
    if !timeline.has_discontinuities() {
        return 0;
    }
    let secs = timeline.shift(d) + timeline.origin();
    ((secs * ts::CLOCK).round() as i64).rem_euclid(ts::WRAP as i64) as u64
}

/// Reads whole-packet chunks of a segment, retimes them and writes them.
fn copy_ts(
    retimer: &mut ts::Retimer,
    reader: &mut dyn Read,
    out: &mut dyn Write,
    buffer: &mut [u8],
) -> std::result::Result<(), (bool, String)> {
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buffer[filled..]).map_err(|e| (true, e.to_string()))?;
        filled += n;
        if n == 0 || filled + ts::PACKET > buffer.len() {
            let whole = filled / ts::PACKET * ts::PACKET;
            let end = if n == 0 { filled } else { whole };
            retimer.process(&mut buffer[..end]).map_err(|e| (true, e))?;
            out.write_all(&buffer[..end]).map_err(|e| (false, e.to_string()))?;
            buffer.copy_within(end..filled, 0);
            filled -= end;
            if n == 0 {
                return Ok(());
            }
        }
    }
}

/// Writes one MPEG-TS rendition: its stored segments in order, timestamps carried across discontinuities
/// (keeping the first part's clock) when `continuous`, continuity counters mended at gaps.
pub(crate) fn write_ts(
    job: &Job<'_>,
    r: usize,
    continuous: bool,
    out: &mut dyn Write,
    tick: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<()> {
    let source = job.source;
    let plan = &source.rendition(r).plan;
    let mut retimer = ts::Retimer::new();
    let mut buffer = vec![0u8; 5577 * ts::PACKET];
    let mut splice = false;
    let mut previous: Option<u64> = None;
    for (e, entry) in plan.segments.iter().enumerate() {
        if source.stored_len(r, entry).is_none() {
            splice = true;
            continue;
        }
        let d = entry.discontinuity_sequence;
        if previous.is_some_and(|p| p != d) {
            splice = true;
        }
        previous = Some(d);
        let offset = if continuous { ts_offset(&job.timeline, d) } else { 0 };
        retimer.begin_segment(offset, splice);
        splice = false;
        let (mut reader, len) = source.open_entry(r, e)?;
        copy_ts(&mut retimer, &mut reader, out, &mut buffer).map_err(|(input, m)| {
            if input {
                Error::media(&source.id(r, e), m)
            } else {
                Error::Output { path: "output".into(), source: std::io::Error::other(m) }
            }
        })?;
        tick(len, 1)?;
    }
    Ok(())
}

/// Writes fMP4 renditions as the tracks of one fragmented MP4 (one track for a single rendition).
pub(crate) fn write_fmp4<'w>(
    job: &Job<'_>,
    renditions: &[usize],
    out: &'w mut dyn Write,
    tick: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<fmp4::Muxer<&'w mut dyn Write>> {
    let source = job.source;
    let mut specs = Vec::new();
    // Per track: entry index of each init section, and for each of them its index among the track's inits.
    let mut init_numbers: Vec<HashMap<usize, usize>> = Vec::new();
    for &r in renditions {
        let plan = &source.rendition(r).plan;
        let mut inits = Vec::new();
        let mut numbers = HashMap::new();
        for (e, entry) in plan.segments.iter().enumerate() {
            if entry.kind == SegmentKind::Init && source.stored_len(r, entry).is_some() {
                numbers.insert(e, inits.len());
                inits.push(read_init(source, r, e)?);
            }
        }
        if inits.is_empty() {
            return Err(Error::Unsupported {
                container: job.container.extension(),
                reason: format!("rendition {} has no stored initialization section", plan.id),
            });
        }
        let selected = job.media.iter().find(|s| s.index == r);
        let kind = selected.map_or(TrackKind::Video, |s| s.kind);
        specs.push(fmp4::TrackSpec {
            inits,
            language: lang::iso639_2t(plan.language.as_deref()),
            name: plan.name.clone(),
            default: selected.is_none_or(|s| s.default),
            alternate_group: match kind {
                TrackKind::Audio => 1,
                TrackKind::Subtitles => 2,
                TrackKind::Video => 0,
            },
        });
        init_numbers.push(numbers);
    }
    let muxer_error = |e: fmp4::MuxError, id: Option<stowage_bundle::SegmentId>| match e {
        fmp4::MuxError::Output(source) => Error::Output { path: "output".into(), source },
        fmp4::MuxError::Input(m) => match id {
            Some(id) => Error::media(&id, m),
            None => Error::Unsupported { container: "mp4", reason: m },
        },
    };
    let mut muxer =
        fmp4::Muxer::new(out, specs, job.timeline.duration()).map_err(|e| muxer_error(e, None))?;
    // Segments are written in presentation order across tracks, so that the tracks interleave.
    let mut schedule: Vec<(f64, usize, usize, usize)> = Vec::new();
    for (t, &r) in renditions.iter().enumerate() {
        let plan = &source.rendition(r).plan;
        let inits = inits_in_force(source, r);
        let mut elapsed: HashMap<u64, f64> = HashMap::new();
        for (e, entry) in plan.segments.iter().enumerate() {
            if entry.kind != SegmentKind::Media {
                continue;
            }
            let d = entry.discontinuity_sequence;
            let before = elapsed.entry(d).or_insert(0.0);
            let at = job.timeline.part(d).map_or(0.0, |p| p.start) + *before;
            *before += entry.duration;
            let init = inits[e].and_then(|i| init_numbers[t].get(&i).copied());
            if let (Some(init), Some(_)) = (init, source.stored_len(r, entry)) {
                schedule.push((at, t, e, init));
            }
        }
    }
    schedule.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, t, e, init) in schedule {
        let r = renditions[t];
        let entry = &source.rendition(r).plan.segments[e];
        let timescale = muxer.timescale(t);
        let shift = (job.timeline.shift(entry.discontinuity_sequence) * f64::from(timescale)).round() as i64;
        let (reader, len) = source.open_entry(r, e)?;
        muxer
            .write_segment(t, init, shift, reader, len)
            .map_err(|m| muxer_error(m, Some(source.id(r, e))))?;
        tick(len, 1)?;
    }
    Ok(muxer)
}

/// The cues of one subtitle rendition on the presentation timeline, written as the container wants them.
pub(crate) fn subtitle_file(
    job: &Job<'_>,
    r: usize,
    container: Container,
    tick: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<String> {
    let (blocks, cues) = subtitle_cues(job, r, tick)?;
    Ok(match container {
        Container::Srt => webvtt::write_srt(&cues),
        _ => webvtt::write_vtt(&blocks, &cues),
    })
}

pub(crate) fn subtitle_cues(
    job: &Job<'_>,
    r: usize,
    tick: &mut dyn FnMut(u64, u64) -> Result<()>,
) -> Result<(Vec<String>, Vec<webvtt::Cue>)> {
    let source = job.source;
    let plan = &source.rendition(r).plan;
    let mut joiner = webvtt::Joiner::default();
    for (e, entry) in plan.segments.iter().enumerate() {
        let Some(len) = source.stored_len(r, entry) else { continue };
        if entry.kind != SegmentKind::Media {
            tick(len, 1)?;
            continue;
        }
        let bytes = source.read(r, e)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::media(&source.id(r, e), "the WebVTT file is not UTF-8"))?;
        let file = webvtt::parse(&text).map_err(|m| Error::media(&source.id(r, e), m.to_string()))?;
        joiner.segment(&file.blocks);
        let d = entry.discontinuity_sequence;
        let part = job.timeline.part(d);
        for mut cue in file.cues {
            // Local cue time to media time through X-TIMESTAMP-MAP, then onto the presentation timeline.
            let to_presentation = |local: i64| -> i64 {
                let secs = match (file.map, part) {
                    (Some(map), Some(part)) => {
                        let reference =
                            ((part.base * ts::CLOCK).round() as i64).rem_euclid(ts::WRAP as i64) as u64;
                        let media = part.base + ts::ts_diff(map.mpegts, reference) as f64 / ts::CLOCK;
                        media + (local - map.local) as f64 / 1000.0 + part.start - part.base
                    }
                    (Some(map), None) => map.mpegts as f64 / ts::CLOCK + (local - map.local) as f64 / 1000.0,
                    // Without a map the cue times are taken as presentation times.
                    (None, _) => local as f64 / 1000.0,
                };
                (secs * 1000.0).round() as i64
            };
            cue.start = to_presentation(cue.start);
            cue.end = to_presentation(cue.end);
            joiner.push(cue);
        }
        tick(len, 1)?;
    }
    Ok(joiner.finish())
}

fn gap_report(source: &Source, timeline: &Timeline, missing: &[(usize, usize)]) -> Vec<GapReport> {
    let mut out: Vec<GapReport> = Vec::new();
    for &(r, e) in missing {
        let plan = &source.rendition(r).plan;
        let entry = &plan.segments[e];
        if entry.kind != SegmentKind::Media {
            continue;
        }
        let d = entry.discontinuity_sequence;
        let before: f64 = plan.segments[..e]
            .iter()
            .filter(|s| s.kind == SegmentKind::Media && s.discontinuity_sequence == d)
            .map(|s| s.duration)
            .sum();
        let start = timeline.part(d).map_or(0.0, |p| p.start) + before;
        // Missing segments one after another (a recording's hole listed as gaps, a run of failed segments)
        // are one gap.
        match out.last_mut() {
            Some(last)
                if last.rendition == plan.id.as_str()
                    && (last.start + last.duration - start).abs() < 1e-3 =>
            {
                last.duration += entry.duration;
            }
            _ => out.push(GapReport { rendition: plan.id.to_string(), start, duration: entry.duration }),
        }
    }
    out
}

/// The recording's holes in rendition `r` (none for a bundle that is not a recording).
fn holes_of(source: &Source, r: usize) -> impl Iterator<Item = &Hole> {
    let id = &source.rendition(r).plan.id;
    source.manifest().recording.iter().flat_map(|rec| &rec.holes).filter(move |h| &h.rendition == id)
}

/// The length of a hole, in seconds.
fn seconds(hole: &Hole) -> f64 {
    hole.time.duration().as_secs_f64()
}

/// Each hole of rendition `r` that the plan does not list, with the plan entry that follows it: the first
/// media entry numbered after the hole's last missing segment (`None` for a hole at the end of the
/// recording). A hole whose missing segments the plan lists (as gap entries, with their durations) takes
/// its place on the timeline through them, as any gap does, so it is not counted again here.
fn hole_entries(source: &Source, r: usize) -> Vec<(&Hole, Option<usize>)> {
    let segments = &source.rendition(r).plan.segments;
    holes_of(source, r)
        .filter(|hole| {
            let (first, last) = hole.media_sequences;
            !segments
                .iter()
                .any(|e| e.kind == SegmentKind::Media && (first..=last).contains(&e.media_sequence))
        })
        .map(|hole| {
            let after = segments
                .iter()
                .position(|e| e.kind == SegmentKind::Media && e.media_sequence > hole.media_sequences.1);
            (hole, after)
        })
        .collect()
}

/// Where each hole of the selected renditions is on the output's timeline: it ends where the rendition's
/// media after it starts (`clock`: the renditions the timeline was measured on), or at the end for a hole
/// nothing follows.
fn hole_report<'a>(
    source: &Source,
    timeline: &Timeline,
    clock: &[usize],
    selected: impl Iterator<Item = &'a Selected>,
) -> Vec<GapReport> {
    let mut out = Vec::new();
    for s in selected {
        let plan = &source.rendition(s.index).plan;
        let mut holes = hole_entries(source, s.index);
        holes.sort_by_key(|(h, _)| h.media_sequences);
        for (i, (hole, after)) in holes.iter().enumerate() {
            let length = seconds(hole);
            let start = match after {
                // Holes before the same entry follow one another: this one ends where the later ones begin.
                Some(e) => {
                    let later: f64 =
                        holes[i + 1..].iter().filter(|(_, a)| a == after).map(|(h, _)| seconds(h)).sum();
                    let d = plan.segments[*e].discontinuity_sequence;
                    let on_clock = clock.iter().position(|&c| c == s.index);
                    let next = on_clock
                        .and_then(|m| timeline.media_start(m, d))
                        .or_else(|| timeline.part(d).map(|p| p.start))
                        .unwrap_or(0.0);
                    next - later - length
                }
                // A hole at the end of the recording starts where the output ends, after those before it.
                None => {
                    timeline.duration()
                        + holes[..i].iter().filter(|(_, a)| a.is_none()).map(|(h, _)| seconds(h)).sum::<f64>()
                }
            };
            out.push(GapReport { rendition: plan.id.to_string(), start, duration: length });
        }
    }
    out
}
