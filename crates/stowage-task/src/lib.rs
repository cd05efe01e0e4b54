//! Download orchestration for HLS assets: what to download, in which order, and what to tell the user.
//!
//! This crate is the layer of stowage that joins the others. It holds:
//!
//! * [`config`]: the [`DownloadConfiguration`] of a task (Apple's `AVAssetDownloadConfiguration` done in the
//!   open): ordered variant qualifiers, media selections, title, artwork, storage, key and integrity
//!   policies.
//! * [`selection`]: resolving a configuration against a parsed master playlist: which variant (ordered
//!   qualifiers, then automatic) and which audio, subtitle and closed-caption renditions.
//! * [`engine`]: the sans-IO scheduler. It owns the plan of jobs and decides what to fetch next under
//!   global, per-host and adaptive concurrency limits, retries with jittered backoff, applies the integrity
//!   policy, and keeps progress and loaded time ranges. It never reads the clock, never spawns and never
//!   does IO, so every schedule can be tested with a fake clock in microseconds.
//! * [`events`]: the events of a task as plain data.
//! * [`DownloadSession`] and [`DownloadTask`]: the public API that runs downloads end to end on tokio (Apple's
//!   `AVAssetDownloadURLSession` and `AVAssetDownloadTask`): a tokio driver per task fetches and resolves the
//!   playlists, creates or opens the bundle, runs the engine, and streams every segment through decryption
//!   into the bundle chunk by chunk; tasks are suspended, resumed, cancelled, augmented with media
//!   selections, and found again after a restart with [`DownloadSession::restore`].
//!
//! # What it does not do
//!
//! It does not speak HTTP itself (that is `stowage-fetch`), does not touch the disk itself (that is
//! `stowage-bundle`), and does not parse playlists (that is `stowage-playlist`). The driver carries out the
//! engine's actions with those crates; the engine's module documentation describes that loop.
//!
//! # Where it sits
//!
//! ```text
//! stowage            facade and CLI
//!   stowage-task     configuration, selection, events, the engine, the session   <- this crate
//!     stowage-fetch    HTTP(S) and decryption
//!     stowage-bundle   the offline bundle on disk
//!       stowage-playlist parser and writer
//! ```
//!
//! # Quick start
//!
//! Plan two renditions, run the engine with a fake clock and scripted outcomes:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stowage_task::engine::{Action, Engine, EngineConfig, Failure, JobId, JobSpec, Outcome, Plan, RenditionSpec};
//!
//! let mut plan = Plan::new();
//! let video = plan.add_rendition(RenditionSpec::new().bandwidth(3_000_000));
//! let audio = plan.add_rendition(RenditionSpec::new().bandwidth(128_000));
//! let six = Duration::from_secs(6);
//! for i in 0..4u32 {
//!     let at = six * i;
//!     plan.add_job(JobSpec::new(JobId(u64::from(i)), video, at, six, "cdn.example"));
//!     plan.add_job(JobSpec::new(JobId(100 + u64::from(i)), audio, at, six, "cdn.example"));
//! }
//! let mut engine = Engine::new(EngineConfig::default().seed(7), plan)?;
//! let mut now = Instant::now();
//! engine.resume(now);
//! let mut first_failure = true;
//! loop {
//!     match engine.poll_action() {
//!         Some(Action::Start { job, .. }) => {
//!             now += Duration::from_millis(30);
//!             // The first attempt of the first segment fails once, then everything succeeds.
//!             let outcome = if std::mem::take(&mut first_failure) {
//!                 Outcome::Failure(Failure::retryable("connection reset"))
//!             } else {
//!                 Outcome::success(500_000)
//!             };
//!             engine.handle_completed(now, job, outcome);
//!         }
//!         Some(Action::Finished { complete, .. }) => {
//!             assert!(complete);
//!             break;
//!         }
//!         Some(_) => {}
//!         None => {
//!             // Nothing to do until a retry is due: jump the fake clock there.
//!             now = engine.poll_timeout().expect("a retry is waiting");
//!             engine.handle_timeout(now);
//!         }
//!     }
//! }
//! assert_eq!(engine.progress().segments_done, 8);
//! assert_eq!(engine.loaded_ranges(video).len(), 1);
//! # Ok::<(), stowage_task::Error>(())
//! ```

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

// The pure parts: plain data and plain functions, no tokio and no IO.
pub mod config;
pub mod engine;
mod error;
pub mod events;
mod planning;
mod poison;
pub mod selection;
// The tokio parts: the session, the task handles, and the driver of each task.
mod runtime;

pub use config::{
    ContentConfiguration, DownloadConfiguration, IntegrityPolicy, MediaSelection, VariantQualifier,
};
pub use engine::Engine;
pub use error::{ChangedRendition, Error};
pub use events::SessionEvent;
pub use events::TaskEvent;
pub use runtime::{
    CancelMode, DownloadSession, DownloadTask, Refresh, RefreshFuture, RefreshHook, RefreshRequest,
    SessionConfig, SessionEvents, TaskEvents, TaskState, asset_id_for, refresh_fn,
};
pub use selection::ResolvedSelection;
