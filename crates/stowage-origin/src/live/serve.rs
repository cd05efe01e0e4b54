//! The live origin's state and how it answers requests: media playlists (blocking or not, stale or not),
//! segments, parts, keys and initialisation sections.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;

use super::script::{self, Outage};
use super::source::{LiveSource, RenditionKind, SourceSegment};
use super::timeline::{Timeline, format_date_time};
use super::{LiveConfig, LiveKey, LiveSegment, PlaylistKind, PlaylistStats, Rendition, Unlisted};
use crate::files::Resource;
use crate::hls::{IvMode, SplitMix, encrypt_aes128_cbc, sequence_iv};
use crate::poison::lock;
use crate::{Clock, FaultRule, Files, OriginError};

/// One rendition as the live origin serves it.
#[derive(Debug)]
pub(crate) struct LiveRendition {
    pub(crate) name: String,
    kind: RenditionKind,
    /// The media playlist's path on the origin.
    pub(crate) playlist_path: String,
    /// Its directory, with the trailing `/`.
    dir: String,
    /// The playlist's file name without `.m3u8`: the prefix of everything served beside it.
    stem: String,
    extension: String,
    segments: Vec<SourceSegment>,
    map: Option<(Bytes, String)>,
    encrypted: bool,
}

/// Per-rendition counters and what its answered playlists listed.
#[derive(Debug, Default)]
struct RenditionRecord {
    stats: PlaylistStats,
    /// Listed positions: disjoint, sorted, non-adjacent half-open ranges.
    listed: Vec<(u64, u64)>,
    /// Requests counted in each stale span of the timeline.
    stale_counts: Vec<u64>,
}

/// Everything the server needs to answer for a live stream.
#[derive(Debug)]
pub(crate) struct LiveState {
    pub(crate) clock: Clock,
    pub(crate) timeline: Timeline,
    renditions: Vec<LiveRendition>,
    /// The master playlist's path, if there is one.
    master_path: Option<String>,
    target_duration: u64,
    keys: Option<super::KeyRotation>,
    seed: u64,
    low_latency: Option<(Duration, Duration, bool)>,
    retention: Duration,
    blocking_timeout: Duration,
    records: Mutex<Vec<RenditionRecord>>,
}

/// What a request maps to.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Playlist(usize),
    Segment(usize, u64),
    Part(usize, u64, u64),
    Key(usize, u64),
    Init(usize),
}

/// A live answer that is not a resource: a status with a short reason.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
}

fn refusal(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal { status, reason: reason.into() }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Checks the configuration and lays out the stream: the state, the static files (master playlist) and the
/// fault rules of the script.
pub(crate) fn build(
    source: LiveSource,
    config: &LiveConfig,
    clock: Clock,
) -> Result<(LiveState, Files, Vec<FaultRule>), OriginError> {
    let invalid = |reason: String| OriginError::Live { reason };
    let mount = format!("/{}", config.mount.trim_matches('/'));
    let mount = mount.trim_end_matches('/').to_owned();
    if mount.contains(['?', '#']) || mount.split('/').any(|p| p == "..") {
        return Err(invalid(format!("the mount point {:?} is not a plain path", config.mount)));
    }
    let events = script::resolve(&config.script, clock.speed()).map_err(invalid)?;
    if config.kind == PlaylistKind::Event
        && events.iter().any(|e| matches!(e.action, script::Action::JumpMediaSequence { .. }))
    {
        return Err(invalid("an EVENT playlist cannot jump its media sequence (it only grows)".to_owned()));
    }
    let segment = match config.segment_duration {
        Some(d) => d,
        // Milliseconds are as fine as EXTINF values usually go.
        None => Duration::from_millis((source.mean_duration().as_secs_f64() * 1000.0).round() as u64),
    };
    if segment < Duration::from_millis(1) {
        return Err(invalid(format!("the segment duration {segment:?} is shorter than a millisecond")));
    }
    let window = config.window.max(1) as u64;
    let parts = match &config.low_latency {
        None => 0,
        Some(_) if config.keys.is_some() => {
            return Err(invalid("low latency and encryption together are not supported".to_owned()));
        }
        Some(ll) if ll.part_target.is_zero() => return Err(invalid("the part target is zero".to_owned())),
        Some(ll) => (ns(segment).div_ceil(ns(ll.part_target))).max(1),
    };
    let target_duration = segment.as_secs() + u64::from(segment.subsec_nanos() > 0);
    let pdt0 = config.program_date_time.unwrap_or_else(|| {
        let listed = segment.saturating_mul(u32::try_from(window).unwrap_or(u32::MAX));
        SystemTime::now().checked_sub(listed).unwrap_or(SystemTime::UNIX_EPOCH)
    });
    let timeline = Timeline::new(
        config.kind,
        window,
        segment,
        config.first_media_sequence,
        source.len as u64,
        pdt0,
        parts,
        &events,
    );
    let rules: Vec<FaultRule> = events.iter().filter_map(script::fault_rule).collect();

    let files = Files::new();
    let master_path = source.master.as_ref().map(|(name, text)| {
        let path = format!("{mount}/{name}");
        files.insert(&path, Resource::new(text.clone(), "application/vnd.apple.mpegurl"));
        path
    });
    let renditions: Vec<LiveRendition> = source
        .renditions
        .into_iter()
        .map(|r| {
            let playlist_path = format!("{mount}/{}", r.name);
            let split = playlist_path.rfind('/').map_or(0, |i| i + 1);
            let dir = playlist_path[..split].to_owned();
            let file = &playlist_path[split..];
            let stem =
                file.strip_suffix(".m3u8").or_else(|| file.strip_suffix(".m3u")).unwrap_or(file).to_owned();
            let encrypted = config.keys.is_some() && r.kind != RenditionKind::Subtitles;
            LiveRendition {
                name: r.name,
                kind: r.kind,
                playlist_path,
                dir,
                stem,
                extension: r.extension,
                segments: r.segments,
                map: r.map,
                encrypted,
            }
        })
        .collect();
    let stale_spans = timeline.stales.len();
    let records = renditions
        .iter()
        .map(|_| RenditionRecord { stale_counts: vec![0; stale_spans], ..RenditionRecord::default() })
        .collect();
    let target = Duration::from_secs(target_duration);
    let state = LiveState {
        clock,
        timeline,
        renditions,
        master_path,
        target_duration,
        keys: config.keys.clone(),
        seed: config.seed,
        low_latency: config
            .low_latency
            .as_ref()
            .map(|ll| (ll.part_target, ll.part_hold_back.unwrap_or(ll.part_target * 3), ll.preload_hint)),
        retention: config
            .retention
            .unwrap_or(segment.saturating_mul(u32::try_from(window).unwrap_or(u32::MAX))),
        blocking_timeout: config.blocking_timeout.unwrap_or(target * 3),
        records: Mutex::new(records),
    };
    Ok((state, files, rules))
}

impl LiveState {
    /// The path a client starts from.
    pub(crate) fn entry_path(&self) -> String {
        self.master_path.clone().unwrap_or_else(|| self.renditions[0].playlist_path.clone())
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.renditions.iter().position(|r| r.name == name)
    }

    pub(crate) fn rendition(&self, name: &str) -> Option<&LiveRendition> {
        self.index(name).map(|i| &self.renditions[i])
    }

    pub(crate) fn renditions(&self) -> Vec<Rendition> {
        self.renditions
            .iter()
            .map(|r| Rendition {
                name: r.name.clone(),
                kind: r.kind,
                path: r.playlist_path.clone(),
                encrypted: r.encrypted,
            })
            .collect()
    }

    fn records(&self) -> MutexGuard<'_, Vec<RenditionRecord>> {
        // Each update is a counter bump or a range merge finished before the guard drops, so a poisoned
        // lock still holds consistent records.
        lock(&self.records)
    }

    pub(crate) fn stats(&self, name: &str) -> Option<PlaylistStats> {
        let index = self.index(name)?;
        Some(self.records()[index].stats.clone())
    }

    pub(crate) fn listed(&self, name: &str) -> Vec<Range<u64>> {
        let Some(index) = self.index(name) else { return Vec::new() };
        self.records()[index].listed.iter().map(|&(a, b)| a..b).collect()
    }

    pub(crate) fn unlisted(&self, name: &str) -> Vec<Unlisted> {
        let listed = self.listed(name);
        let t = &self.timeline;
        listed
            .windows(2)
            .map(|pair| {
                let positions = pair[0].end..pair[1].start;
                // They were listed from when the first was made until the last left the window.
                let from = t.published_at(positions.start).unwrap_or_default();
                let until = t.leaves_window_at(positions.end - 1).unwrap_or(Duration::MAX);
                let outages: Vec<Outage> =
                    t.outages().iter().filter(|o| o.from < until && o.until > from).copied().collect();
                Unlisted {
                    media_sequences: t.media_sequences(positions.clone()),
                    program_date_times: t.program_date_time(positions.start)
                        ..t.program_date_time(positions.end),
                    positions,
                    outages,
                }
            })
            .collect()
    }

    fn segment_path(&self, r: &LiveRendition, msn: u64) -> String {
        format!("{}{}-{msn}.{}", r.dir, r.stem, r.extension)
    }

    fn key_bytes(&self, rendition: usize, index: u64) -> [u8; 16] {
        let mut rng = SplitMix(
            self.seed
                ^ (rendition as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ index.wrapping_mul(0xff51_afd7_ed55_8ccd),
        );
        let mut key = [0u8; 16];
        rng.fill(&mut key);
        key
    }

    fn iv(&self, rendition: usize, msn: u64) -> [u8; 16] {
        match self.keys.as_ref().map(|k| k.iv) {
            Some(IvMode::Explicit) => {
                let mut rng = SplitMix(!self.seed ^ (rendition as u64).rotate_left(32) ^ msn);
                let mut iv = [0u8; 16];
                rng.fill(&mut iv);
                iv
            }
            _ => sequence_iv(msn),
        }
    }

    fn key_index(&self, msn: u64) -> u64 {
        self.keys.as_ref().map_or(0, |k| msn / k.every.max(1))
    }

    /// The segment at `position` of rendition `index`: clear bytes, served bytes, key.
    fn body(&self, index: usize, position: u64) -> (Bytes, Bytes, Option<LiveKey>) {
        let r = &self.renditions[index];
        let clear = r.segments[self.timeline.source_index(position)].bytes.clone();
        if !r.encrypted {
            return (clear.clone(), clear, None);
        }
        let msn = self.timeline.media_sequence(position);
        let key_index = self.key_index(msn);
        let key = LiveKey {
            index: key_index,
            path: format!("{}{}-key{key_index}.key", r.dir, r.stem),
            key: self.key_bytes(index, key_index),
            iv: self.iv(index, msn),
        };
        let body = Bytes::from(encrypt_aes128_cbc(&key.key, &key.iv, &clear));
        (clear, body, Some(key))
    }

    /// Byte ranges of the parts of a segment of `len` bytes: equal spans cut at MPEG-TS packet boundaries
    /// (188 bytes) when the segment is made of whole packets.
    fn part_ranges(&self, len: usize) -> Vec<Range<usize>> {
        let parts = self.timeline.parts_per_segment() as usize;
        if parts == 0 {
            return Vec::new();
        }
        let unit = if len.is_multiple_of(188) { 188 } else { 1 };
        let units = len / unit;
        let cut = |j: usize| if j == parts { len } else { units * j / parts * unit };
        (0..parts).map(|j| cut(j)..cut(j + 1)).collect()
    }

    pub(crate) fn segment(&self, name: &str, msn: u64) -> Option<LiveSegment> {
        let index = self.index(name)?;
        let t = &self.timeline;
        let position = t.position(msn)?;
        let published_at = t.published_at(position)?;
        let r = &self.renditions[index];
        let (clear, body, key) = self.body(index, position);
        let parts = self.part_ranges(body.len());
        let source_index = t.source_index(position);
        Some(LiveSegment {
            position,
            media_sequence: msn,
            discontinuity_sequence: t.discontinuity_sequence(position),
            discontinuity: t.has_discontinuity(position),
            source_index,
            source_path: r.segments[source_index].path.clone(),
            path: self.segment_path(r, msn),
            duration: t.segment_duration(),
            program_date_time: t.program_date_time(position),
            published_at,
            leaves_window_at: t.leaves_window_at(position),
            clear,
            body,
            key,
            parts,
        })
    }

    fn route(&self, path: &str) -> Option<Route> {
        let split = path.rfind('/')? + 1;
        let (dir, file) = path.split_at(split);
        for (i, r) in self.renditions.iter().enumerate() {
            if r.dir != dir {
                continue;
            }
            if path == r.playlist_path {
                return Some(Route::Playlist(i));
            }
            let Some(rest) = file.strip_prefix(r.stem.as_str()).and_then(|f| f.strip_prefix('-')) else {
                continue;
            };
            if let Some((_, ext)) = &r.map
                && rest.strip_prefix("init.") == Some(ext.as_str())
            {
                return Some(Route::Init(i));
            }
            if let Some(k) = rest.strip_prefix("key").and_then(|k| k.strip_suffix(".key"))
                && let Ok(k) = k.parse()
            {
                return Some(Route::Key(i, k));
            }
            let Some(numbers) = rest.strip_suffix(r.extension.as_str()).and_then(|n| n.strip_suffix('.'))
            else {
                continue;
            };
            let route = match numbers.split_once('.') {
                None => numbers.parse().ok().map(|msn| Route::Segment(i, msn)),
                Some((msn, part)) => {
                    msn.parse().ok().zip(part.parse().ok()).map(|(m, j)| Route::Part(i, m, j))
                }
            };
            // Another rendition in the same folder may own the name (stems such as `a` and `a-b`).
            if route.is_some() {
                return route;
            }
        }
        None
    }

    /// Answers a request if its path is the live stream's: `None` for other paths.
    pub(crate) async fn answer(&self, path: &str, query: Option<&str>) -> Option<Result<Resource, Refusal>> {
        let route = self.route(path)?;
        Some(match route {
            Route::Playlist(i) => self.playlist(i, query).await,
            Route::Segment(i, msn) => self.segment_resource(i, msn),
            Route::Part(i, msn, part) => self.part(i, msn, part).await,
            Route::Key(i, k) => self.key(i, k),
            Route::Init(i) => {
                let r = &self.renditions[i];
                let (bytes, ext) = r.map.as_ref()?;
                let path = format!("{}{}-init.{ext}", r.dir, r.stem);
                Ok(Resource::new(bytes.clone(), crate::content_type_for(&path)))
            }
        })
    }

    /// The position of `msn` if it is made by stream time `now` and still available.
    fn available(&self, msn: u64, now: u64) -> Result<u64, Refusal> {
        let t = &self.timeline;
        let gone = || refusal(StatusCode::NOT_FOUND, format!("no segment {msn} in the stream"));
        let position = t.position(msn).ok_or_else(gone)?;
        if position >= t.published_ns(now) {
            return Err(refusal(StatusCode::NOT_FOUND, format!("segment {msn} is not made yet")));
        }
        if let Some(left) = t.leaves_window_at(position)
            && ns(left).saturating_add(ns(self.retention)) < now
        {
            return Err(refusal(StatusCode::NOT_FOUND, format!("segment {msn} has expired")));
        }
        Ok(position)
    }

    fn segment_resource(&self, index: usize, msn: u64) -> Result<Resource, Refusal> {
        let position = self.available(msn, ns(self.clock.now()))?;
        let (_, body, _) = self.body(index, position);
        Ok(self.media_resource(index, msn, None, body))
    }

    fn media_resource(&self, index: usize, msn: u64, part: Option<u64>, body: Bytes) -> Resource {
        let r = &self.renditions[index];
        let path = self.segment_path(r, msn);
        // A URL's bytes never change, so its number and length make a strong validator without hashing.
        let etag = match part {
            None => format!("\"{index}-{msn}-{}\"", body.len()),
            Some(j) => format!("\"{index}-{msn}.{j}-{}\"", body.len()),
        };
        Resource::new(Bytes::new(), crate::content_type_for(&path)).with_body(body, Some(etag))
    }

    async fn part(&self, index: usize, msn: u64, part: u64) -> Result<Resource, Refusal> {
        let t = &self.timeline;
        let parts = t.parts_per_segment();
        if parts == 0 || part >= parts {
            return Err(refusal(StatusCode::NOT_FOUND, format!("no part {part} of segment {msn}")));
        }
        let position =
            t.position(msn).ok_or_else(|| refusal(StatusCode::NOT_FOUND, format!("no segment {msn}")))?;
        if t.final_count().is_some_and(|n| position >= n) {
            return Err(refusal(StatusCode::NOT_FOUND, format!("segment {msn} is never made")));
        }
        let arrived = self.clock.now();
        let done_at = t.part_done_at(position, part);
        if done_at > i128::from(ns(arrived)) {
            // Only the part the playlists hint at is worth waiting for.
            let hinted = t.in_progress(ns(arrived)) == Some((position, part));
            if !hinted {
                return Err(refusal(
                    StatusCode::NOT_FOUND,
                    format!("part {part} of segment {msn} is not made yet"),
                ));
            }
            let deadline = arrived + self.blocking_timeout;
            let done = Duration::from_nanos(done_at as u64);
            if done > deadline {
                self.clock.wait_until(deadline).await;
                return Err(refusal(StatusCode::SERVICE_UNAVAILABLE, "the hinted part was not made in time"));
            }
            self.clock.wait_until(done).await;
        } else if let Some(left) = t.leaves_window_at(position)
            && ns(left).saturating_add(ns(self.retention)) < ns(arrived)
        {
            return Err(refusal(StatusCode::NOT_FOUND, format!("segment {msn} has expired")));
        }
        let (_, body, _) = self.body(index, position);
        let range = self.part_ranges(body.len()).swap_remove(part as usize);
        Ok(self.media_resource(index, msn, Some(part), body.slice(range)))
    }

    fn key(&self, index: usize, k: u64) -> Result<Resource, Refusal> {
        let r = &self.renditions[index];
        let not_found = || refusal(StatusCode::NOT_FOUND, format!("no key {k}"));
        let every =
            self.keys.as_ref().filter(|_| r.encrypted).map(|k| k.every.max(1)).ok_or_else(not_found)?;
        let made = self.timeline.published_ns(ns(self.clock.now()));
        let last_msn = made.checked_sub(1).map(|p| self.timeline.media_sequence(p)).ok_or_else(not_found)?;
        if k.saturating_mul(every) > last_msn {
            return Err(not_found());
        }
        Ok(Resource::new(self.key_bytes(index, k).to_vec(), "application/octet-stream"))
    }

    async fn playlist(&self, index: usize, query: Option<&str>) -> Result<Resource, Refusal> {
        let mut msn: Option<u64> = None;
        let mut part: Option<u64> = None;
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let parse =
                |what: &str| value.parse::<u64>().map_err(|_| format!("{what} {value:?} is not a number"));
            let parsed = match name {
                "_HLS_msn" => parse("_HLS_msn").map(|v| msn = Some(v)),
                "_HLS_part" => parse("_HLS_part").map(|v| part = Some(v)),
                _ => Ok(()),
            };
            if let Err(reason) = parsed {
                self.records()[index].stats.rejected += 1;
                return Err(refusal(StatusCode::BAD_REQUEST, reason));
            }
        }
        let arrived = ns(self.clock.now());
        self.records()[index].stats.requests += 1;
        let blocking = self.low_latency.is_some() && msn.is_some();
        if part.is_some() && msn.is_none() {
            self.records()[index].stats.rejected += 1;
            return Err(refusal(StatusCode::BAD_REQUEST, "_HLS_part without _HLS_msn"));
        }
        let at = if blocking {
            self.records()[index].stats.blocking += 1;
            self.wait_for(index, msn.unwrap_or(0), part, arrived).await?
        } else {
            let mut at = self.timeline.effective(arrived);
            let mut records = self.records();
            let record = &mut records[index];
            if self.timeline.stalled(arrived) {
                record.stats.stalled += 1;
            }
            for (i, span) in self.timeline.stales.iter().enumerate() {
                if span.from <= arrived && arrived < span.until {
                    record.stale_counts[i] += 1;
                    if record.stale_counts[i].is_multiple_of(u64::from(span.every)) {
                        at = at.saturating_sub(span.lag);
                        record.stats.stale += 1;
                    }
                }
            }
            at
        };
        let window = self.timeline.window_ns(at);
        if !window.is_empty() {
            merge(&mut self.records()[index].listed, window.start, window.end);
        }
        Ok(Resource::new(self.render(index, at), "application/vnd.apple.mpegurl").with_last_modified(None))
    }

    /// Holds a blocking reload until the playlist holds what it asks for; returns the time to render.
    async fn wait_for(
        &self,
        index: usize,
        msn: u64,
        part: Option<u64>,
        arrived: u64,
    ) -> Result<u64, Refusal> {
        let t = &self.timeline;
        let deadline = arrived.saturating_add(ns(self.blocking_timeout));
        let parts = t.parts_per_segment().max(1);
        // What is asked for, as (position, part): part P of segment M, or M complete (its last part).
        let target = t.first_position_from(msn).map(|position| {
            if t.position(msn) != Some(position) {
                // M was skipped by a jump: any part of the next segment is later than anything of M.
                (position, 0)
            } else {
                match part {
                    Some(p) if p >= parts => (position + 1, 0),
                    Some(p) => (position, p),
                    None => (position, parts - 1),
                }
            }
        });
        let mut first = true;
        loop {
            let now = ns(self.clock.now());
            let at = t.effective(now);
            let made = t.published_ns(at);
            // The latest part listed: in the segment being made, or the last of the last segment made.
            let latest = match t.in_progress(at) {
                Some((position, done)) if done > 0 => Some((position, done - 1)),
                _ => made.checked_sub(1).map(|p| (p, parts - 1)),
            };
            let satisfied = match (target, latest) {
                (None, _) => true,
                (Some(target), Some(latest)) => latest >= target,
                (Some(_), None) => false,
            };
            if satisfied || t.ended_ns(at) {
                return Ok(at);
            }
            if first {
                let last_msn = made.checked_sub(1).map(|p| t.media_sequence(p));
                if last_msn.is_some_and(|last| msn > last.saturating_add(2)) {
                    self.records()[index].stats.rejected += 1;
                    return Err(refusal(
                        StatusCode::BAD_REQUEST,
                        format!("_HLS_msn={msn} is more than two segments beyond the playlist"),
                    ));
                }
                self.records()[index].stats.held += 1;
                first = false;
            }
            if now >= deadline {
                self.records()[index].stats.timed_out += 1;
                return Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the playlist did not reach _HLS_msn={msn} in time"),
                ));
            }
            let wake = self.next_change(now).unwrap_or(u64::MAX).min(deadline).max(now + 1);
            self.clock.wait_until(Duration::from_nanos(wake)).await;
        }
    }

    /// The next stream time after `now` at which a playlist may change.
    fn next_change(&self, now: u64) -> Option<u64> {
        let t = &self.timeline;
        let at = t.effective(now);
        let mut next: Vec<u64> = Vec::new();
        if let Some(end) = t.stall_end(now) {
            // Stalled: nothing changes before the stall ends.
            next.push(end);
        }
        let made = t.published_ns(at);
        if t.final_count().is_none_or(|n| made < n) {
            let segment_at = t.made_at(made);
            next.push(segment_at.max(0) as u64);
            if let Some((position, done)) = t.in_progress(at) {
                next.push(t.part_done_at(position, done).max(0) as u64);
            }
        }
        next.into_iter().filter(|&n| n > now).min()
    }

    /// The media playlist of rendition `index` as it is at stream time `at`.
    fn render(&self, index: usize, at: u64) -> String {
        let t = &self.timeline;
        let r = &self.renditions[index];
        let window = t.window_ns(at);
        let ended = t.ended_ns(at);
        let seconds = |d: Duration| d.as_secs_f64();
        let mut out = String::with_capacity(256 + 128 * (window.end - window.start) as usize);
        // Writing to a String cannot fail.
        let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{}", self.target_duration);
        if let Some((part_target, hold_back, _)) = self.low_latency {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n#EXT-X-PART-INF:PART-TARGET={:.5}",
                seconds(hold_back),
                seconds(part_target)
            );
        }
        let first = window.start;
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            t.media_sequence(first),
            t.discontinuity_sequence(first)
        );
        if t.kind() == PlaylistKind::Event {
            out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        }
        if let Some((_, ext)) = &r.map {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}-init.{ext}\"", r.stem);
        }
        let duration = seconds(t.segment_duration());
        // Parts are listed for the segments of the last three target durations.
        let parts_since = i128::from(at) - 3 * i128::from(self.target_duration) * 1_000_000_000;
        let mut last_key: Option<u64> = None;
        for position in window {
            let msn = t.media_sequence(position);
            if position != first && t.has_discontinuity(position) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if r.encrypted {
                let key = self.key_index(msn);
                let explicit = self.keys.as_ref().is_some_and(|k| k.iv == IvMode::Explicit);
                if explicit || last_key != Some(key) {
                    let _ = write!(out, "#EXT-X-KEY:METHOD=AES-128,URI=\"{}-key{key}.key\"", r.stem);
                    if explicit {
                        out.push_str(",IV=0x");
                        for b in self.iv(index, msn) {
                            let _ = write!(out, "{b:02x}");
                        }
                    }
                    out.push('\n');
                    last_key = Some(key);
                }
            }
            let _ =
                writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_date_time(t.program_date_time(position)));
            if t.parts_per_segment() > 0 && t.made_at(position) > parts_since {
                self.write_parts(&mut out, r, msn, t.parts_per_segment());
            }
            let _ = writeln!(out, "#EXTINF:{duration:.5},\n{}-{msn}.{}", r.stem, r.extension);
        }
        if !ended && let Some((position, done)) = t.in_progress(at) {
            let msn = t.media_sequence(position);
            if done > 0 && t.has_discontinuity(position) {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            self.write_parts(&mut out, r, msn, done);
            if self.low_latency.is_some_and(|(_, _, hint)| hint) {
                let _ = writeln!(
                    out,
                    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}-{msn}.{done}.{}\"",
                    r.stem, r.extension
                );
            }
        }
        if ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }

    fn write_parts(&self, out: &mut String, r: &LiveRendition, msn: u64, count: u64) {
        for j in 0..count {
            let duration = self.timeline.part_duration(j).as_secs_f64();
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={duration:.5},URI=\"{}-{msn}.{j}.{}\"",
                r.stem, r.extension
            );
            out.push_str(if j == 0 { ",INDEPENDENT=YES\n" } else { "\n" });
        }
    }
}

/// Adds `start..end` to disjoint sorted ranges, merging what touches.
fn merge(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    let first = ranges.partition_point(|&(_, e)| e < start);
    let mut last = first;
    let (mut a, mut b) = (start, end);
    while last < ranges.len() && ranges[last].0 <= end {
        a = a.min(ranges[last].0);
        b = b.max(ranges[last].1);
        last += 1;
    }
    ranges.splice(first..last, [(a, b)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        let mut r = Vec::new();
        merge(&mut r, 10, 20);
        merge(&mut r, 30, 40);
        assert_eq!(r, [(10, 20), (30, 40)]);
        merge(&mut r, 20, 25);
        assert_eq!(r, [(10, 25), (30, 40)]);
        merge(&mut r, 0, 5);
        merge(&mut r, 24, 31);
        assert_eq!(r, [(0, 5), (10, 40)]);
        merge(&mut r, 12, 13);
        assert_eq!(r, [(0, 5), (10, 40)]);
        merge(&mut r, 1, 100);
        assert_eq!(r, [(0, 100)]);
    }
}
