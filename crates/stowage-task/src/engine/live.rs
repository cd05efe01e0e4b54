//! The engine's books of a recording: when each live rendition's playlist is reloaded, what a reload
//! brought, and when the recording ends (see the module documentation of the engine).

use std::fmt;
use std::time::{Duration, Instant};

use super::{Action, Failure};

/// How a live rendition's playlist is reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveSpec {
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: Duration,
    /// Whether the server can block playlist reloads (`EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`): then each
    /// reload asks for the next media sequence number and is held by the server until it is there.
    pub blocking: bool,
    /// The media sequence number after the last one listed so far (what a blocking reload asks for).
    pub next_media_sequence: u64,
}

impl LiveSpec {
    /// A rendition reloaded by polling, with this target duration.
    pub fn new(target_duration: Duration) -> Self {
        Self { target_duration, blocking: false, next_media_sequence: 0 }
    }

    /// Reloads with blocking requests, the first asking for `next_media_sequence`.
    #[must_use]
    pub fn blocking(mut self, next_media_sequence: u64) -> Self {
        self.blocking = true;
        self.next_media_sequence = next_media_sequence;
        self
    }
}

/// What a reload of a live rendition's playlist brought, as the driver reports it with
/// [`Engine::handle_reload`](super::Engine::handle_reload).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reload {
    /// New segments were listed (and their jobs added with [`Engine::add_jobs`](super::Engine::add_jobs));
    /// `next` is the media sequence number after the last one listed.
    Changed {
        /// What a blocking reload asks for next.
        next: u64,
    },
    /// Nothing new: the same playlist, or a copy older than one already seen (a stale cache).
    Unchanged,
    /// The rendition is over, its last segments added: its playlist ended, or the recording's span is
    /// reached.
    Ended(RecordingEnd),
    /// The reload failed (the origin unreachable, an error status, a timeout, a playlist that cannot be
    /// read).
    Failed(Failure),
}

/// Why a recording (or one of its renditions) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordingEnd {
    /// The playlist ended with `EXT-X-ENDLIST`.
    EndList,
    /// The span of media the recording was asked for is recorded.
    Duration,
    /// The instant the recording was to end at came.
    Until,
    /// Nothing new came for longer than [`EngineConfig::max_outage`](super::EngineConfig::max_outage).
    Outage(Duration),
    /// The recording was stopped (Ctrl-C, a cancel that keeps what was recorded).
    Stopped,
}

impl fmt::Display for RecordingEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndList => f.write_str("the playlist ended (EXT-X-ENDLIST)"),
            Self::Duration => f.write_str("the duration asked for is recorded"),
            Self::Until => f.write_str("the time to stop came"),
            Self::Outage(d) => write!(f, "nothing new came for {:.0} s (the outage limit)", d.as_secs_f64()),
            Self::Stopped => f.write_str("the recording was stopped"),
        }
    }
}

/// What the origin of a recording looks like from its reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginState {
    /// Reloads bring new segments.
    Live,
    /// Every live rendition's reloads fail, since this instant.
    Unreachable {
        /// When the first of the failures in a row was reported.
        since: Instant,
    },
    /// Reloads are answered but bring nothing new, for three target durations or more, since this instant.
    NotChanging {
        /// When the last new segment was listed.
        since: Instant,
    },
    /// The recording ended.
    Ended,
}

/// Where a recording stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingStatus {
    /// What the origin looks like.
    pub origin: OriginState,
    /// Why the recording ended, once it did (segments already listed may still be being fetched).
    pub ended: Option<RecordingEnd>,
    /// The outage limit, if there is one.
    pub max_outage: Option<Duration>,
}

/// Where one live rendition's reloads stand.
#[derive(Debug, Clone)]
struct LiveRendition {
    target: Duration,
    blocking: bool,
    next_msn: u64,
    /// When the next reload is due; `None` while one is out, or before the first resume.
    due: Option<Instant>,
    /// When the reload out now started.
    started: Option<Instant>,
    /// Failed reloads in a row.
    failures: u32,
    failing_since: Option<Instant>,
    /// When a reload last brought something new (or the recording started or resumed).
    last_news: Option<Instant>,
    ended: bool,
}

/// The engine's books of a recording: one entry per rendition (`None` for renditions that are not live).
#[derive(Debug, Clone, Default)]
pub(super) struct Reloads {
    renditions: Vec<Option<LiveRendition>>,
    end_at: Option<Instant>,
    ended: Option<RecordingEnd>,
    /// After the recording ended: when the jobs still pending are given up.
    abandon_at: Option<Instant>,
    max_outage: Option<Duration>,
    grace: Duration,
}

impl Reloads {
    pub(super) fn new(max_outage: Option<Duration>, grace: Duration) -> Self {
        Self { max_outage, grace, ..Self::default() }
    }

    pub(super) fn add_rendition(&mut self, spec: Option<&LiveSpec>) {
        self.renditions.push(spec.map(|s| LiveRendition {
            target: s.target_duration.max(Duration::from_millis(1)),
            blocking: s.blocking,
            next_msn: s.next_media_sequence,
            due: None,
            started: None,
            failures: 0,
            failing_since: None,
            last_news: None,
            ended: false,
        }));
    }

    /// Whether any rendition is live.
    pub(super) fn is_recording(&self) -> bool {
        self.renditions.iter().any(Option::is_some)
    }

    /// Whether no live rendition will bring more jobs.
    pub(super) fn all_ended(&self) -> bool {
        self.ended.is_some() || self.renditions.iter().flatten().all(|r| r.ended)
    }

    pub(super) fn ended(&self) -> Option<RecordingEnd> {
        self.ended
    }

    pub(super) fn abandon_at(&self) -> Option<Instant> {
        self.abandon_at
    }

    /// The engine runs (again): the first reload is due after half a target duration (the playlist was
    /// just read), a blocking one at once; after a suspend, every reload is due at once.
    pub(super) fn resume(&mut self, now: Instant, first: bool) {
        for r in self.renditions.iter_mut().flatten().filter(|r| !r.ended) {
            r.started = None;
            r.due = Some(if first && !r.blocking { now + r.target / 2 } else { now });
            // An outage is measured from here: a recording resumed after a long pause is not over at once.
            r.last_news = Some(now);
        }
    }

    /// The engine stopped: reloads out now are abandoned by the driver.
    pub(super) fn suspend(&mut self) {
        for r in self.renditions.iter_mut().flatten() {
            r.started = None;
            r.due = None;
        }
    }

    /// Asks for the reloads that are due.
    pub(super) fn poll(&mut self, now: Instant, actions: &mut std::collections::VecDeque<Action>) {
        if self.ended.is_some() {
            return;
        }
        for (index, slot) in self.renditions.iter_mut().enumerate() {
            let Some(r) = slot.as_mut().filter(|r| !r.ended) else { continue };
            if r.due.is_some_and(|due| due <= now) {
                r.due = None;
                r.started = Some(now);
                let (block, timeout) = if r.blocking {
                    // The server holds the request until the next segment is complete, and may hold it
                    // for three target durations before giving up (RFC 8216bis section 6.2.5.2).
                    (Some(r.next_msn), r.target * 4)
                } else {
                    (None, r.target * 2)
                };
                actions.push_back(Action::ReloadPlaylist { rendition: index, block, timeout });
            }
        }
    }

    /// The earliest instant the recording needs the engine's attention: a reload due, the end of the
    /// recording, the outage limit, or the end of the grace after it ended.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let mut next: Option<Instant> = self.abandon_at;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.ended.is_none() {
            for r in self.renditions.iter().flatten().filter(|r| !r.ended) {
                consider(r.due);
            }
            consider(self.end_at);
            consider(self.outage_deadline());
        }
        next
    }

    /// When the outage limit is reached if nothing new comes.
    fn outage_deadline(&self) -> Option<Instant> {
        let limit = self.max_outage?;
        let news = self.renditions.iter().flatten().filter(|r| !r.ended).filter_map(|r| r.last_news).max()?;
        news.checked_add(limit)
    }

    /// A reload of `rendition` was answered (or failed). Returns `false` for a report the engine did not
    /// ask for (an unknown rendition, one not live, or no reload out).
    pub(super) fn report(&mut self, now: Instant, rendition: usize, reload: Reload) -> bool {
        let Some(Some(r)) = self.renditions.get_mut(rendition) else { return false };
        let Some(started) = r.started.take() else { return false };
        if r.ended {
            return false;
        }
        match reload {
            Reload::Changed { next } => {
                r.failures = 0;
                r.failing_since = None;
                r.last_news = Some(now);
                r.next_msn = r.next_msn.max(next);
                // A blocking reload goes out again at once: the server holds it until there is news.
                r.due = Some(if r.blocking { now } else { (started + r.target).max(now) });
            }
            Reload::Unchanged => {
                r.failures = 0;
                r.failing_since = None;
                r.due = Some(now + r.target / 2);
            }
            Reload::Failed(_) => {
                r.failures = r.failures.saturating_add(1);
                r.failing_since.get_or_insert(now);
                let doublings = (r.failures - 1).min(8);
                let delay = (r.target / 2).saturating_mul(1 << doublings).min(r.target);
                r.due = Some(now + delay);
            }
            Reload::Ended(_) => {
                r.ended = true;
                r.due = None;
            }
        }
        true
    }

    /// Checks the recording's limits at `now`; returns the reason it ends now, if it does.
    pub(super) fn limit_reached(&self, now: Instant) -> Option<RecordingEnd> {
        if self.ended.is_some() || !self.is_recording() {
            return None;
        }
        if self.end_at.is_some_and(|at| at <= now) {
            return Some(RecordingEnd::Until);
        }
        match (self.max_outage, self.outage_deadline()) {
            (Some(limit), Some(deadline)) if deadline <= now => Some(RecordingEnd::Outage(limit)),
            _ => None,
        }
    }

    /// The recording ends: no more reloads; what is pending has `grace` (or none) to be fetched.
    pub(super) fn end(&mut self, now: Instant, why: RecordingEnd, grace: bool) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(why);
        for r in self.renditions.iter_mut().flatten() {
            r.ended = true;
            r.due = None;
            r.started = None;
        }
        self.abandon_at = Some(if grace { now + self.grace } else { now });
    }

    /// Every live rendition ended on its own: the reason the recording ended is theirs.
    pub(super) fn close(&mut self, why: RecordingEnd) {
        if self.ended.is_none() {
            self.ended = Some(why);
        }
    }

    pub(super) fn set_end_at(&mut self, at: Instant) {
        self.end_at = Some(at);
    }

    pub(super) fn status(&self, now: Instant) -> Option<RecordingStatus> {
        if !self.is_recording() {
            return None;
        }
        let live: Vec<&LiveRendition> = self.renditions.iter().flatten().filter(|r| !r.ended).collect();
        let origin = if self.ended.is_some() || live.is_empty() {
            OriginState::Ended
        } else if live.iter().all(|r| r.failures > 0) {
            let since = live.iter().filter_map(|r| r.failing_since).min().unwrap_or(now);
            OriginState::Unreachable { since }
        } else {
            let news = live.iter().filter_map(|r| r.last_news).max();
            let patience = live.iter().map(|r| r.target).max().unwrap_or_default() * 3;
            match news {
                Some(since) if now.saturating_duration_since(since) >= patience => {
                    OriginState::NotChanging { since }
                }
                _ => OriginState::Live,
            }
        };
        Some(RecordingStatus { origin, ended: self.ended, max_outage: self.max_outage })
    }
}
