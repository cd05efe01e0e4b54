//! A live HLS origin: an ffmpeg-made asset played as a live (sliding window) or EVENT stream, on a clock
//! that may run faster than real time, with faults on a script, low-latency HLS, and an oracle that tells
//! a test exactly what a recording should hold.
//!
//! # The stream
//!
//! A [`LiveOrigin`] takes a clear [`LiveSource`] (a master playlist with its variants, audio, video and
//! subtitle renditions, or a single media playlist) and serves it under a mount point (`/live` by default)
//! as a stream that never ends unless its [`Script`] ends it: the source's segments are played in a loop,
//! every rendition in step, a new segment every `segment_duration` of stream time, with a growing media
//! sequence number, an `EXT-X-DISCONTINUITY` at each loop point (and `EXT-X-DISCONTINUITY-SEQUENCE` kept
//! right as those leave the window) and an `EXT-X-PROGRAM-DATE-TIME` on every segment. Media sequence
//! number *n* carries the same stretch of content in every rendition, with the same program date time.
//!
//! - [`PlaylistKind::Live`]: a sliding window of `window` segments, no `EXT-X-PLAYLIST-TYPE`.
//! - [`PlaylistKind::Event`]: `EXT-X-PLAYLIST-TYPE:EVENT`, starting with `window` segments and growing,
//!   never sliding.
//!
//! Either ends with `EXT-X-ENDLIST` when the script says so ([`Script::end_list`]).
//!
//! Time is the origin's [`Clock`]: at speed 1 it is real time; at speed 600 an hour of stream passes in
//! six seconds, and with a manual clock ([`LiveConfig::speed`] 0) it moves only when the test calls
//! [`Clock::advance`]. Playlists say what the stream says (`EXT-X-TARGETDURATION:2` for 2 s segments,
//! whatever the speed), so a client that should keep pace with an accelerated stream must run on the
//! same clock ([`LiveOrigin::clock`]: [`Clock::now`] for its deadlines, [`Clock::wait_until`] to sleep);
//! at speed 1 any client keeps pace.
//!
//! # URLs
//!
//! Under the mount point, the master playlist keeps its name and every media playlist its path relative
//! to the master (`/live/master.m3u8`, `/live/video0/index.m3u8`). Beside a media playlist named
//! `STEM.m3u8`, media sequence number *n* is `STEM-n.EXT` (`index-1234.ts`), its partial segment *j*
//! `STEM-n.j.EXT`, key number *k* `STEM-keyk.key`, the initialisation section `STEM-init.EXT`. Segments can
//! be fetched from the moment they are made until `retention` after they leave the window.
//!
//! # Faults
//!
//! A [`Script`] is a timeline of events in stream or wall time: outages (black hole, refused connections,
//! a burst of any status), playlist stalls, stale copies whose media sequence goes backwards, content
//! switches, media sequence jumps, the end of the stream and a late `EXT-X-ENDLIST`. Outages and other
//! request faults are ordinary [`FaultRule`](crate::FaultRule)s with a stream-time window, added to the
//! origin's [`Faults`](crate::Faults), where a test can add more at any time. AES-128 with keys changing
//! every N segments is [`LiveConfig::keys`].
//!
//! # Low-latency HLS
//!
//! With [`LiveConfig::low_latency`], playlists carry `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES` with
//! `PART-HOLD-BACK`, `EXT-X-PART-INF:PART-TARGET`, `EXT-X-PART` for the segments of the last three target
//! durations and the one being made, and `EXT-X-PRELOAD-HINT` for the next part. A playlist request with
//! `_HLS_msn=M` (and `_HLS_part=P`) is held until the playlist holds segment M complete (or part P of
//! segment M) or something later, answered at once when it already does, answered 400 when M is beyond
//! the last segment plus two, and 503 when it cannot be satisfied within the blocking timeout (three
//! target durations by default), as RFC 8216bis section 6.2.5.2 asks; a request for the hinted part is
//! held until the part exists. Parts are made by cutting each segment into equal spans of time and its
//! bytes at the matching MPEG-TS packet boundaries (at byte boundaries for other formats): the parts of a
//! segment put together are the segment, byte for byte, but only the first of a segment starts with a key
//! frame, and a part is not a decodable unit on its own, which is enough for a recorder (that stores
//! whole segments) and not meant for a player. [`LiveOrigin::playlist_stats`] counts playlist requests
//! per rendition, to check a client's request budget. Low latency and encryption do not go together.
//!
//! # The oracle
//!
//! - [`LiveOrigin::segment`]: what media sequence number *n* of a rendition carries: the source segment and
//!   its clear bytes, the bytes as served, key and IV, times, discontinuity sequence, parts.
//! - [`Timeline`] ([`LiveOrigin::timeline`]): every question about the stream as pure functions of stream
//!   time; [`Timeline::lost_to_outages`] is what no client could have had, however often it reloaded
//!   (what a recorder that keeps up must report as gaps, and all it may miss), and
//!   [`Timeline::left_window_during`] the segments that left the window in a span.
//! - [`LiveOrigin::unlisted`]: what the clients were actually never shown, from the playlists the origin
//!   answered: the exact expected gap ledger of a recorder that fetched every segment it was shown.
//!
//! ```
//! use std::time::Duration;
//! use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};
//! use stowage_origin::Files;
//!
//! // A one-rendition source of three 2-second segments.
//! let files = Files::new().with_bytes(
//!     "/src/index.m3u8",
//!     "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXTINF:2,\nc.ts\n#EXT-X-ENDLIST\n",
//! );
//! for (name, byte) in [("a", 1u8), ("b", 2), ("c", 3)] {
//!     files.insert_bytes(&format!("/src/{name}.ts"), vec![byte; 188]);
//! }
//! let source = LiveSource::from_files(&files, "/src/index.m3u8")?;
//! // A window of 3 segments at 200 times real time: a new segment every 10 ms; the stream ends after 60 s.
//! let s = Duration::from_secs;
//! let config = LiveConfig::default().window(3).speed(200.0).script(Script::new().end_list(s(60)));
//! let live = LiveOrigin::start(source, config)?;
//! let get = |path: &str| -> std::io::Result<String> {
//!     use std::io::{Read, Write};
//!     let mut stream = std::net::TcpStream::connect(live.origin().addr())?;
//!     write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//!     let mut answer = Vec::new();
//!     stream.read_to_end(&mut answer)?;
//!     Ok(String::from_utf8_lossy(&answer).into_owned())
//! };
//!
//! live.clock().sleep_until(s(10));
//! let playlist = get("/live/index.m3u8")?;
//! assert!(playlist.contains("#EXT-X-TARGETDURATION:2"));
//! assert!(!playlist.contains("#EXT-X-ENDLIST"));
//!
//! // Position 4 loops back to the first source segment after a discontinuity.
//! let msn = live.timeline().media_sequence(4);
//! let segment = live.segment("index.m3u8", msn).unwrap();
//! assert_eq!((segment.source_index, segment.discontinuity, &segment.body[..2]), (1, false, &[2u8, 2][..]));
//!
//! live.clock().sleep_until(s(60));
//! let last = get("/live/index.m3u8")?;
//! assert!(last.trim_end().ends_with("#EXT-X-ENDLIST"));
//! assert!(last.contains("#EXT-X-DISCONTINUITY-SEQUENCE:"));
//! assert_eq!(live.timeline().final_count(), Some(33));
//! assert!(live.playlist_stats("index.m3u8").unwrap().requests >= 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod script;
mod serve;
mod source;
mod timeline;

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

pub use script::{Action, At, Outage, OutageKind, Script, ScriptEvent};
pub use source::{LiveSource, RenditionKind};
pub use timeline::{Loss, Timeline};

use crate::hls::IvMode;
use crate::{Clock, Origin, OriginConfig, OriginError};
pub(crate) use serve::LiveState;

/// Whether the stream slides or grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaylistKind {
    /// A sliding window, no `EXT-X-PLAYLIST-TYPE`.
    #[default]
    Live,
    /// `EXT-X-PLAYLIST-TYPE:EVENT`: segments are only ever added.
    Event,
}

/// AES-128 encryption of the live stream's video and audio renditions (subtitles stay clear), with a new
/// key every `every` media sequence numbers: key *k* covers media sequence numbers `k × every` to
/// `(k + 1) × every − 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRotation {
    /// Media sequence numbers per key (at least 1).
    pub every: u64,
    /// Where IVs come from: the media sequence number, or an explicit IV written for every segment.
    pub iv: IvMode,
}

impl KeyRotation {
    /// A new key every `segments` media sequence numbers, IVs from the media sequence number.
    pub fn every(segments: u64) -> Self {
        Self { every: segments.max(1), iv: IvMode::MediaSequence }
    }

    /// Writes an explicit IV for every segment instead.
    #[must_use]
    pub fn explicit_ivs(mut self) -> Self {
        self.iv = IvMode::Explicit;
        self
    }
}

/// Low-latency HLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LowLatency {
    /// `EXT-X-PART-INF:PART-TARGET`: each segment is cut into the fewest parts of at most this length.
    pub part_target: Duration,
    /// `PART-HOLD-BACK`; `None` gives three part targets.
    pub part_hold_back: Option<Duration>,
    /// Whether playlists end with `EXT-X-PRELOAD-HINT` for the next part.
    pub preload_hint: bool,
}

impl LowLatency {
    /// Parts of at most `part_target`, the other settings at their defaults.
    pub fn part_target(part_target: Duration) -> Self {
        Self { part_target, part_hold_back: None, preload_hint: true }
    }

    /// Sets `PART-HOLD-BACK`.
    #[must_use]
    pub fn part_hold_back(mut self, hold_back: Duration) -> Self {
        self.part_hold_back = Some(hold_back);
        self
    }

    /// Leaves out `EXT-X-PRELOAD-HINT`.
    #[must_use]
    pub fn without_preload_hint(mut self) -> Self {
        self.preload_hint = false;
        self
    }
}

/// How a [`LiveOrigin`] plays its source. `Default`: live, a window of 6 segments of the source's
/// duration, real time, media sequence from 0, mounted at `/live`, no script (it runs for ever).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LiveConfig {
    /// Live (sliding) or EVENT (growing).
    pub kind: PlaylistKind,
    /// Segments listed by a live playlist, and by an EVENT playlist at the start (at least 1).
    pub window: usize,
    /// The duration of every segment (its `EXTINF`, and the pace at which they are made); `None` takes
    /// [`LiveSource::mean_duration`], rounded to the millisecond. A duration that differs from the media's own only
    /// changes the pace and what playlists say, not the bytes.
    pub segment_duration: Option<Duration>,
    /// Stream seconds per wall second; 0 for a manual clock.
    pub speed: f64,
    /// The path the stream is served under.
    pub mount: String,
    /// The media sequence number of the first segment listed at the start.
    pub first_media_sequence: u64,
    /// The program date time of the first segment listed at the start; `None`: such that the last segment
    /// listed at the start ends now.
    pub program_date_time: Option<SystemTime>,
    /// AES-128 with key rotation; `None` serves clear segments.
    pub keys: Option<KeyRotation>,
    /// Low-latency HLS; `None` serves whole segments only.
    pub low_latency: Option<LowLatency>,
    /// How long a segment stays available after it leaves the window; `None`: the window's duration.
    pub retention: Option<Duration>,
    /// How long a blocking playlist reload (or a request for the hinted part) is held before it is
    /// answered 503; `None`: three target durations.
    pub blocking_timeout: Option<Duration>,
    /// Seed of the keys and explicit IVs.
    pub seed: u64,
    /// What happens, when.
    pub script: Script,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            kind: PlaylistKind::Live,
            window: 6,
            segment_duration: None,
            speed: 1.0,
            mount: "/live".to_owned(),
            first_media_sequence: 0,
            program_date_time: None,
            keys: None,
            low_latency: None,
            retention: None,
            blocking_timeout: None,
            seed: 0x4C49_5645,
            script: Script::new(),
        }
    }
}

impl LiveConfig {
    /// Live or EVENT.
    #[must_use]
    pub fn kind(mut self, kind: PlaylistKind) -> Self {
        self.kind = kind;
        self
    }

    /// Segments in the window (at least 1).
    #[must_use]
    pub fn window(mut self, segments: usize) -> Self {
        self.window = segments.max(1);
        self
    }

    /// The duration of every segment.
    #[must_use]
    pub fn segment_duration(mut self, duration: Duration) -> Self {
        self.segment_duration = Some(duration);
        self
    }

    /// Stream seconds per wall second (0: a manual clock).
    #[must_use]
    pub fn speed(mut self, speed: f64) -> Self {
        self.speed = speed;
        self
    }

    /// The path the stream is served under (for example `/live`).
    #[must_use]
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// The media sequence number of the first segment.
    #[must_use]
    pub fn first_media_sequence(mut self, msn: u64) -> Self {
        self.first_media_sequence = msn;
        self
    }

    /// The program date time of the first segment.
    #[must_use]
    pub fn program_date_time(mut self, at: SystemTime) -> Self {
        self.program_date_time = Some(at);
        self
    }

    /// AES-128 with key rotation.
    #[must_use]
    pub fn keys(mut self, keys: KeyRotation) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Low-latency HLS.
    #[must_use]
    pub fn low_latency(mut self, low_latency: LowLatency) -> Self {
        self.low_latency = Some(low_latency);
        self
    }

    /// How long segments stay available after leaving the window.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How long blocking requests are held before a 503.
    #[must_use]
    pub fn blocking_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_timeout = Some(timeout);
        self
    }

    /// The seed of keys and IVs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The script.
    #[must_use]
    pub fn script(mut self, script: Script) -> Self {
        self.script = script;
        self
    }
}

/// A rendition of a live origin.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rendition {
    /// Its name: the playlist's URI relative to the master (the file name without a master).
    pub name: String,
    /// Variant, audio, video or subtitles.
    pub kind: RenditionKind,
    /// The media playlist's path on the origin.
    pub path: String,
    /// Whether its segments are served encrypted.
    pub encrypted: bool,
}

/// The key and IV of an encrypted segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveKey {
    /// The key's number.
    pub index: u64,
    /// The key's path on the origin.
    pub path: String,
    /// The key.
    pub key: [u8; 16],
    /// The segment's IV.
    pub iv: [u8; 16],
}

/// What one media sequence number of one rendition carries: the oracle a recording is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveSegment {
    /// Its position in the order segments are made (see [`Timeline`]).
    pub position: u64,
    /// Its media sequence number.
    pub media_sequence: u64,
    /// Its discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Whether `EXT-X-DISCONTINUITY` precedes it.
    pub discontinuity: bool,
    /// The index of the source segment it plays.
    pub source_index: usize,
    /// The source segment's path in the source's file map.
    pub source_path: String,
    /// Its path on the origin.
    pub path: String,
    /// Its `EXTINF`.
    pub duration: Duration,
    /// Its `EXT-X-PROGRAM-DATE-TIME`.
    pub program_date_time: SystemTime,
    /// Stream time it is made (zero: before the origin started).
    pub published_at: Duration,
    /// Stream time it leaves the window, if it does.
    pub leaves_window_at: Option<Duration>,
    /// The source's bytes: what a recorder that decrypts must have stored.
    pub clear: Bytes,
    /// The bytes served (encrypted when the rendition is).
    pub body: Bytes,
    /// The key and IV, for an encrypted segment.
    pub key: Option<LiveKey>,
    /// The byte ranges of `body` its parts are, with low latency.
    pub parts: Vec<Range<usize>>,
}

/// Counts of one rendition's media playlist requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlaylistStats {
    /// Every request for the playlist that reached the live origin (not those a fault answered first).
    pub requests: u64,
    /// Those with `_HLS_msn` (blocking reloads).
    pub blocking: u64,
    /// Blocking reloads that had to wait.
    pub held: u64,
    /// Blocking reloads answered 503 after the blocking timeout.
    pub timed_out: u64,
    /// Requests answered 400 (a malformed or too distant `_HLS_msn`/`_HLS_part`).
    pub rejected: u64,
    /// Requests answered with a stale copy.
    pub stale: u64,
    /// Requests answered during a stall.
    pub stalled: u64,
}

/// Segments between the first and the last a rendition's playlists listed that no playlist the origin
/// answered ever listed (see [`LiveOrigin::unlisted`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unlisted {
    /// The segments, by position.
    pub positions: Range<u64>,
    /// Their media sequence numbers (split where the sequence jumps).
    pub media_sequences: Vec<RangeInclusive<u64>>,
    /// From the program date time of the first to the end of the last.
    pub program_date_times: Range<SystemTime>,
    /// The script's outages during the time they were listed.
    pub outages: Vec<Outage>,
}

/// A running live origin: an [`Origin`] whose files include a live stream. Dropping it stops it.
#[derive(Debug)]
pub struct LiveOrigin {
    origin: Origin,
    state: Arc<LiveState>,
}

impl LiveOrigin {
    /// Starts serving `source` as `config` says, with the default [`OriginConfig`].
    pub fn start(source: LiveSource, config: LiveConfig) -> Result<Self, OriginError> {
        Self::start_with(source, config, OriginConfig::default())
    }

    /// Starts serving `source` as `config` says, on an origin configured by `origin`, whose clock is
    /// replaced by one running at [`LiveConfig::speed`]. The live stream itself holds no state per segment
    /// (its memory does not grow with the recording); for runs of many thousands of requests, also bound
    /// the request log with [`OriginConfig::log_limit`].
    pub fn start_with(
        source: LiveSource,
        config: LiveConfig,
        origin: OriginConfig,
    ) -> Result<Self, OriginError> {
        let clock = Clock::new(config.speed);
        let (state, files, rules) = serve::build(source, &config, clock.clone())?;
        let state = Arc::new(state);
        let origin = Origin::launch(files, origin.clock(clock), Some(Arc::clone(&state)))?;
        for rule in rules {
            origin.faults().add(rule);
        }
        Ok(Self { origin, state })
    }

    /// The origin serving the stream: its address, files, faults and request log.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The URL to give a client: the master playlist's, or the media playlist's without a master.
    pub fn url(&self) -> String {
        self.origin.url(&self.state.entry_path())
    }

    /// The URL of a rendition's media playlist.
    pub fn playlist_url(&self, rendition: &str) -> Option<String> {
        self.state.rendition(rendition).map(|r| self.origin.url(&r.playlist_path))
    }

    /// The renditions, in master playlist order.
    pub fn renditions(&self) -> Vec<Rendition> {
        self.state.renditions()
    }

    /// The stream's clock.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// The stream's timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.state.timeline
    }

    /// What media sequence number `msn` of `rendition` carries, whether or not it has been made yet;
    /// `None` for an unknown rendition, a number skipped by a jump, or one never made (after the stream
    /// stops).
    pub fn segment(&self, rendition: &str, msn: u64) -> Option<LiveSegment> {
        self.state.segment(rendition, msn)
    }

    /// Counts of `rendition`'s playlist requests so far.
    pub fn playlist_stats(&self, rendition: &str) -> Option<PlaylistStats> {
        self.state.stats(rendition)
    }

    /// The positions listed by the playlists of `rendition` answered so far (200, stale copies included),
    /// as disjoint ranges in order.
    pub fn listed(&self, rendition: &str) -> Vec<Range<u64>> {
        self.state.listed(rendition)
    }

    /// The segments of `rendition` that no playlist answered so far listed, between the first and the last
    /// listed: with a single client that fetched every segment it was shown, exactly the gaps its
    /// recording must report (the script's outages during their listing time say why).
    pub fn unlisted(&self, rendition: &str) -> Vec<Unlisted> {
        self.state.unlisted(rendition)
    }

    /// Stops accepting connections, lets requests in flight finish, then stops.
    pub fn shutdown(self) {
        self.origin.shutdown();
    }
}
