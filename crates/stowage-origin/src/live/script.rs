//! Scripts: what happens to a live stream, and when.

use std::time::Duration;

use crate::{Fault, FaultRule};

/// A moment of a [`Script`], counted from the live origin's start: in stream time (the origin's
/// [`Clock`](crate::Clock), which may run faster than real time) or in wall time (converted to stream time
/// at start, with the clock's speed). A `Duration` converts to stream time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum At {
    /// Stream time.
    Stream(Duration),
    /// Wall time: at speed 60, `At::Wall(1 s)` is stream time 60 s. Not allowed on a manual clock.
    Wall(Duration),
}

impl At {
    /// A moment in stream time.
    pub fn stream(at: Duration) -> Self {
        Self::Stream(at)
    }

    /// A moment in wall time.
    pub fn wall(at: Duration) -> Self {
        Self::Wall(at)
    }
}

impl From<Duration> for At {
    fn from(at: Duration) -> Self {
        Self::Stream(at)
    }
}

/// What a [`ScriptEvent`] does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Every request is read and never answered ([`Fault::BlackHole`]): the origin is unreachable.
    BlackHole,
    /// Connections are refused ([`Fault::Refuse`]): the origin is unreachable.
    Refuse,
    /// Every request is answered with this status (a burst of 5xx): the origin is unreachable.
    Status(u16),
    /// Any fault rule, applied during the event's span (its own window, if any, is replaced). Not counted
    /// as an outage.
    Fault(FaultRule),
    /// The media playlists stop changing: every playlist answered during the span is the one of the span's
    /// start. Segments go on being made underneath, so the first playlist after the stall has moved on by
    /// the span's length.
    Stall,
    /// A cache serving an older copy: every `every`-th request for each media playlist during the span
    /// (counting from the first) is answered with the playlist as it was `lag` of stream time earlier, so
    /// that its media sequence goes backwards. Blocking reloads are never answered stale.
    Stale {
        /// How old the stale copy is.
        lag: Duration,
        /// One request in this many is stale (1: all of them).
        every: u32,
    },
    /// A content switch: the next segment made after this moment is preceded by `EXT-X-DISCONTINUITY` and
    /// plays the source from its segment `to` (an index into the source, taken modulo its length).
    ContentSwitch {
        /// The source segment the new content starts with.
        to: usize,
    },
    /// The media sequence of the segments made after this moment jumps ahead by `by` (the numbers in
    /// between never exist), as after an encoder restart that keeps counting from the clock. One playlist
    /// cannot list both sides of a jump (its segments are numbered by their place in it), so the segments
    /// before the jump leave the window when the first after it is made, and the window fills up again
    /// from there. Not allowed in EVENT playlists, which only ever grow.
    JumpMediaSequence {
        /// How far it jumps (the normal step of 1 included: `by: 5` goes from n to n + 6).
        by: u64,
    },
    /// No segment is made after this moment; without [`Action::EndList`] the playlist simply stops
    /// growing, as when an encoder dies.
    StopPublishing,
    /// From this moment on the playlists end with `EXT-X-ENDLIST` (and no segment is made after it). After
    /// an earlier [`Action::StopPublishing`], a late ENDLIST.
    EndList,
}

/// One event of a [`Script`]: an action at a moment, lasting a span (zero for instant actions).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScriptEvent {
    /// When it starts.
    pub at: At,
    /// How long it lasts, in the same time base as `at`.
    pub length: Duration,
    /// What happens.
    pub action: Action,
}

/// A timeline of events for a live origin: outages, stalls, stale copies, content switches, media sequence
/// jumps, the end. Events may overlap and scripts compose with [`Script::and`]; times are counted from the
/// origin's start (when the first window is already listed).
///
/// ```
/// use std::time::Duration;
/// use stowage_origin::live::{At, Script};
///
/// let s = Duration::from_secs;
/// let script = Script::new()
///     .black_hole(s(60), s(120))                  // unreachable from 1:00 to 3:00 of stream time
///     .stall(s(200), s(6))                         // the playlist does not change for 3 × 2 s
///     .and(Script::new().refuse(At::wall(s(1)), s(1)))  // a one-second refusal, in wall time
///     .end_list(s(300));
/// assert_eq!(script.events().len(), 4);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    events: Vec<ScriptEvent>,
}

impl Script {
    /// An empty script: the stream runs for ever.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event.
    #[must_use]
    pub fn event(mut self, at: impl Into<At>, length: Duration, action: Action) -> Self {
        self.events.push(ScriptEvent { at: at.into(), length, action });
        self
    }

    /// The events, in the order they were added.
    pub fn events(&self) -> &[ScriptEvent] {
        &self.events
    }

    /// Both scripts' events.
    #[must_use]
    pub fn and(mut self, other: Self) -> Self {
        self.events.extend(other.events);
        self
    }

    /// Black-holed for `length` from `at`: requests are read and never answered ([`Action::BlackHole`]).
    #[must_use]
    pub fn black_hole(self, at: impl Into<At>, length: Duration) -> Self {
        self.event(at, length, Action::BlackHole)
    }

    /// Connections refused for `length` from `at` ([`Action::Refuse`]).
    #[must_use]
    pub fn refuse(self, at: impl Into<At>, length: Duration) -> Self {
        self.event(at, length, Action::Refuse)
    }

    /// Every request answered with `status` (for example 503) for `length` from `at`.
    #[must_use]
    pub fn status(self, at: impl Into<At>, length: Duration, status: u16) -> Self {
        self.event(at, length, Action::Status(status))
    }

    /// Any fault rule, applied for `length` from `at`.
    #[must_use]
    pub fn fault(self, at: impl Into<At>, length: Duration, rule: FaultRule) -> Self {
        self.event(at, length, Action::Fault(rule))
    }

    /// The playlists stop changing for `length` from `at` ([`Action::Stall`]); three target durations is
    /// the classic stall.
    #[must_use]
    pub fn stall(self, at: impl Into<At>, length: Duration) -> Self {
        self.event(at, length, Action::Stall)
    }

    /// One playlist request in `every` answered `lag` out of date, for `length` from `at`
    /// ([`Action::Stale`]).
    #[must_use]
    pub fn stale(self, at: impl Into<At>, length: Duration, lag: Duration, every: u32) -> Self {
        self.event(at, length, Action::Stale { lag, every: every.max(1) })
    }

    /// A content switch at `at`: a discontinuity, then the source from its first segment.
    #[must_use]
    pub fn discontinuity(self, at: impl Into<At>) -> Self {
        self.switch_content(at, 0)
    }

    /// A content switch at `at`: a discontinuity, then the source from its segment `to`.
    #[must_use]
    pub fn switch_content(self, at: impl Into<At>, to: usize) -> Self {
        self.event(at, Duration::ZERO, Action::ContentSwitch { to })
    }

    /// The media sequence jumps ahead by `by` at `at`.
    #[must_use]
    pub fn jump(self, at: impl Into<At>, by: u64) -> Self {
        self.event(at, Duration::ZERO, Action::JumpMediaSequence { by })
    }

    /// No segment made after `at`.
    #[must_use]
    pub fn stop(self, at: impl Into<At>) -> Self {
        self.event(at, Duration::ZERO, Action::StopPublishing)
    }

    /// `EXT-X-ENDLIST` from `at` on.
    #[must_use]
    pub fn end_list(self, at: impl Into<At>) -> Self {
        self.event(at, Duration::ZERO, Action::EndList)
    }
}

/// What made the origin unreachable during an [`Outage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutageKind {
    /// Requests read and never answered.
    BlackHole,
    /// Connections refused.
    Refused,
    /// Every request answered with this status.
    Status(u16),
}

/// A span of stream time during which a script made the whole origin unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outage {
    /// How.
    pub kind: OutageKind,
    /// Stream time it starts.
    pub from: Duration,
    /// Stream time it ends (exclusive).
    pub until: Duration,
}

/// A script event with its span resolved to stream time.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) from: Duration,
    pub(crate) until: Duration,
    pub(crate) action: Action,
}

/// Resolves every event to stream time at `speed` (0 for a manual clock, where wall times are refused).
pub(crate) fn resolve(script: &Script, speed: f64) -> Result<Vec<Resolved>, String> {
    script
        .events
        .iter()
        .map(|event| {
            let (from, length) = match event.at {
                At::Stream(at) => (at, event.length),
                At::Wall(at) if speed > 0.0 => (at.mul_f64(speed), event.length.mul_f64(speed)),
                At::Wall(at) => {
                    return Err(format!(
                        "the event {:?} at wall time {at:?} cannot happen on a manual clock",
                        event.action
                    ));
                }
            };
            Ok(Resolved { from, until: from + length, action: event.action.clone() })
        })
        .collect()
}

/// The fault rule that carries an outage or a fault event out, if it is one.
pub(crate) fn fault_rule(event: &Resolved) -> Option<FaultRule> {
    let rule = match &event.action {
        Action::BlackHole => FaultRule::new(Fault::BlackHole),
        Action::Refuse => FaultRule::new(Fault::Refuse),
        Action::Status(status) => FaultRule::new(Fault::status(*status)),
        Action::Fault(rule) => rule.clone(),
        _ => return None,
    };
    Some(rule.during(event.from, event.until))
}

/// The outage an event makes, if it is one.
pub(crate) fn outage(event: &Resolved) -> Option<Outage> {
    let kind = match event.action {
        Action::BlackHole => OutageKind::BlackHole,
        Action::Refuse => OutageKind::Refused,
        Action::Status(status) => OutageKind::Status(status),
        _ => return None,
    };
    (event.until > event.from).then_some(Outage { kind, from: event.from, until: event.until })
}
