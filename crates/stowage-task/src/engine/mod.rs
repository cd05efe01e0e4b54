//! The sans-IO download engine: it owns the plan and decides what to fetch next.
//!
//! The [`Engine`] is a state machine in the manner of quinn-proto's `Connection`. It never reads a clock,
//! never spawns, and never touches the network or the disk. A driver feeds it events
//! ([`Engine::handle_completed`], [`Engine::handle_timeout`], [`Engine::suspend`], [`Engine::resume`],
//! [`Engine::cancel`], [`Engine::add_jobs`], [`Engine::handle_refreshed`]) and carries out the
//! [`Action`]s it pulls with [`Engine::poll_action`], waking the engine again at [`Engine::poll_timeout`].
//! Time is an [`Instant`](std::time::Instant) passed in, so tests run hours of retries and backoff in microseconds.
//!
//! # Scheduling
//!
//! Ready jobs are started in timeline order across all renditions (earliest start time first, then the
//! lower rendition index, then the order in which the jobs were added), so every selected rendition
//! advances together and the loaded time ranges grow from the start: a player can begin on a partly
//! downloaded asset. A retried job keeps its place on the timeline, so it goes ahead of later segments
//! once its backoff is over.
//!
//! Prefetches ([`JobSpec::prefetch`]), such as the decryption keys of an encrypted rendition, are jobs
//! of their own, given the start of the first job that needs them and started
//! [`EngineConfig::prefetch_lead`] earlier on the timeline (and before every other job of the same
//! time), in the order in which they are first needed: a key is fetched while earlier segments are, and
//! is there when the first segment that needs it starts, instead of being fetched inside that segment's
//! job while the other segments of its key wait. They count against the limits like any job, and stay
//! out of the progress.
//!
//! Three limits apply at once: the global limit and the per-host limit of [`ConcurrencyLimits`], and the
//! adaptive window (see [`ConcurrencyLimits::adaptive`]), which moves between one and the global limit as
//! measured throughput, round trips and throttling answers dictate. The global limit is never exceeded.
//! The per-host limit is not exceeded either, except by the adaptive window on a host that has not
//! pushed back, and then never past [`ConcurrencyLimits::per_host_ceiling`].
//!
//! # Retries
//!
//! A retryable failure puts the job to sleep for a delay drawn with *full jitter*: uniformly from zero to
//! `min(cap, base × 2^(n−1))` after the n-th failed attempt, from a generator seeded by
//! [`EngineConfig::seed`]. A `Retry-After` given with the failure replaces the jittered delay. A throttled
//! answer with `Retry-After` also pauses every new start on that host until then, since the origin asked
//! for quiet, not just for this one segment. A job gives up after [`RetryPolicy::max_attempts`] attempts,
//! or when the next attempt would come later than [`RetryPolicy::max_retry_time`] after the start of its
//! first failed attempt (so a hostile `Retry-After` cannot hang the task, and the time an attempt spent
//! failing, the fetch layer's own retries included, counts). Starts cancelled by a suspend and refusals that ask
//! for fresh URLs are not counted as attempts; refusals have their own bound,
//! [`RetryPolicy::max_refreshes`].
//!
//! Refusals (401, 403, 410) ask the driver for fresh URLs once: while [`Action::RefreshUrls`] is
//! pending, further refusals wait for the same refresh, and no job starts. A refusal the driver reports
//! as [`Failure::Superseded`] (the refused URL had been replaced by a refresh already) just starts the
//! job again with its current URL, so that jobs refused together cause one refresh, not one each.
//!
//! # Integrity
//!
//! A job that gives up is handled by the [`IntegrityPolicy`](crate::config::IntegrityPolicy): under [`IntegrityPolicy::Strict`](crate::config::IntegrityPolicy::Strict) the whole
//! task fails with [`Action::Failed`] naming the job; under [`IntegrityPolicy::Tolerant`](crate::config::IntegrityPolicy::Tolerant) the engine emits
//! [`Action::GapRecorded`] and goes on, and [`Action::Finished`] then says the asset is incomplete. A job
//! is never dropped silently.
//!
//! # Recording live streams
//!
//! A rendition given with [`RenditionSpec::live`] is a live one being recorded: the engine asks for its
//! playlist to be reloaded ([`Action::ReloadPlaylist`]) on the schedule of RFC 8216bis section 6.3.4: one
//! target duration after the start of a reload that found the playlist changed, half a target duration
//! after one that found it unchanged (or found a copy older than one already seen), and after a failed
//! reload half a target duration, doubling with each failure in a row up to one target duration, so that a
//! recording notices the origin's return within one target duration, before anything listed then can
//! leave a playlist that holds at least three. With `CAN-BLOCK-RELOAD` ([`LiveSpec::blocking`]) each
//! reload is a blocking request for the segment after the last one listed, sent as soon as the previous
//! one is answered: one request per segment, whatever the part target. The driver reports each reload
//! with [`Engine::handle_reload`], after adding the jobs of the segments it brought.
//!
//! An outage (reloads failing, or playlists that bring nothing new) never ends a recording by itself: it
//! ends when every live rendition has ended ([`Reload::Ended`]: its playlist ended, or the driver reached
//! the span it was asked to record), at the instant given to [`Engine::end_recording_at`], when nothing
//! new came for [`EngineConfig::max_outage`], or when the driver calls [`Engine::end_recording`]. Then
//! reloads stop ([`Action::RecordingEnded`]), the segments already listed get
//! [`EngineConfig::stop_grace`] to be fetched, and those still missing after it are recorded as gaps
//! ([`GiveUpReason::RecordingEnded`]), as are live segments that expired during an outage
//! ([`Failure::Expired`]), whatever the integrity policy: they are holes of the recording, not segments
//! the recorder failed to get. [`Engine::recording_status`] tells what the origin looks like.
//!
//! A recording's jobs keep coming for as long as it runs, so its engine does not keep a record of every
//! one: when jobs are added, the records of the oldest jobs that are over (done, gaps) go, up to the first
//! one that is not. What the engine holds then follows what is under way, not the length of the recording
//! ([`Engine::jobs_kept`]); the progress still counts every job.
//!
//! # Adaptive concurrency
//!
//! The window is one for the whole engine (not per host: in practice the hosts of one asset are one CDN,
//! and one measurement converges faster than several). It starts at [`ConcurrencyLimits::initial`]:
//!
//! * throughput is measured over epochs, each ending once as many jobs started inside it have completed
//!   as the window is wide (one round trip of every slot);
//! * while each epoch's throughput grows by 10 % or more, the window doubles (ramp); the first epoch that
//!   does not grow ends the ramp and restores the previous window;
//! * after that, every fourth epoch probes one more slot and keeps it only for a 5 % gain (additive
//!   increase), so the window follows a link that gets faster;
//! * a 429, a 503 or a stall halves the window (multiplicative decrease), once per round trip: failures of
//!   jobs started before the last decrease describe the old window and do not count again;
//! * an epoch in which the window was not what limited the starts (too few ready jobs, a per-host limit,
//!   a paused host) never widens it;
//! * past the per-host limit, the window grows only while the epoch's mean round trip stays within 25 %
//!   of the shortest measured since the last decrease, and steps back when it does not: a slow origin
//!   that answers in the same time however many requests it has is waiting, not working, and up to the
//!   per-host ceiling (64 by default) more requests in flight shorten the download in proportion;
//! * a host that pushes back (a 429 or 503, a stall, a transient failure such as a connection error,
//!   reported as a failure or, when the layer below retried it on its own, with
//!   [`Engine::handle_pushback`]) is held to the per-host limit for the rest of the run.
//!
//! # Driving the engine
//!
//! A driver (the tokio one, or a test) runs this loop:
//!
//! 1. [`Engine::new`] with the plan (finished jobs marked, for a resumed download), then
//!    [`Engine::resume`].
//! 2. Pull every action with [`Engine::poll_action`] and carry it out: spawn the fetch of
//!    [`Action::Start`] (remembering its `attempt`), abort the one of [`Action::Cancel`], report
//!    [`Action::Retried`] and [`Action::GapRecorded`] as events, obtain fresh URLs on
//!    [`Action::RefreshUrls`], stop on [`Action::Finished`], [`Action::Failed`] or [`Action::Cancelled`].
//! 3. Wait for the first of: a fetch ending (report it with [`Engine::handle_attempt_completed`], after
//!    its bytes are durable for a success), the instant of [`Engine::poll_timeout`] (then
//!    [`Engine::handle_timeout`]), or a user's suspend, resume, cancel or added selection. Go to 2.
//!
//! The engine does not time out fetches in flight: the fetch layer's connect, header, idle-body,
//! minimum-rate and total timeouts do, and report [`Failure::Stalled`] or [`Failure::Retryable`].

// One file per concept. The engine's vocabulary: `plan` (what it is given), `outcome` (what the driver
// reports back), `action` (what it asks for, where it stands), `progress` (what it has done, in the
// bundle's time ranges), `settings` (how it is configured). The machine: `scheduler` (the `Engine` and
// its decisions), `books` (its private per-job, per-rendition and per-host records), `concurrency` (the
// adaptive window) and `rng` (the jitter). Nothing here reads a clock, spawns or does IO; of the rest of
// the crate it uses only its error type, and of stowage-bundle the integrity policy and the time ranges
// with their merging, which are one concept on both sides.
mod action;
mod books;
mod concurrency;
mod live;
mod outcome;
mod plan;
mod progress;
mod rng;
mod scheduler;
mod settings;

pub use action::{Action, EngineState, JobStatus};
pub use live::{LiveSpec, OriginState, RecordingEnd, RecordingStatus, Reload};
pub use outcome::{Failure, GiveUpReason, JobFailure, Outcome};
pub use plan::{JobId, JobSpec, Plan, RenditionSpec};
pub use progress::{LoadedTimeRange, Progress, RenditionProgress};
pub use scheduler::Engine;
pub use settings::{ConcurrencyLimits, EngineConfig, RetryPolicy};
/// Time ranges are the bundle's, merged the same way there and here, so that a rendition's manifest and its
/// task's events agree.
pub use stowage_bundle::TimeRange;
